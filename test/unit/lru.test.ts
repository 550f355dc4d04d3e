// src/lru.ts: the bounded map behind flow and process memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BoundedMap, IntBoundedMap } from '../../src/lru.js';

test('BoundedMap: never holds more than max, and keeps at least the max/2 used last', () => {
  const m = new BoundedMap<number, number>(10);
  for (let i = 0; i < 1000; i++) {
    m.set(i, i * 2);
    assert.ok(m.size <= 10, `size ${m.size} after ${i + 1} sets`);
    for (let j = Math.max(0, i - 4); j <= i; j++) assert.equal(m.peek(j), j * 2, `entry ${j} after setting ${i}`);
  }
  assert.ok(m.evicted >= 990 && m.evicted <= 995, `evicted ${m.evicted}`);
});

test('BoundedMap: an entry in use is kept while newer ones come and go', () => {
  const m = new BoundedMap<string, number>(8);
  m.set('keep', 1);
  for (let i = 0; i < 100; i++) {
    m.set(`x${i}`, i);
    assert.equal(m.get('keep'), 1, `lost after ${i + 1} others`);
  }
  // Unused, it goes once two turns pass.
  for (let i = 0; i < 8; i++) m.set(`y${i}`, i);
  assert.equal(m.get('keep'), undefined);
});

test('BoundedMap: set replaces, delete removes from either generation, clear empties', () => {
  const m = new BoundedMap<number, string>(4);
  m.set(1, 'a').set(2, 'b');
  m.set(3, 'c'); // 1 and 2 are now the old generation
  m.set(1, 'A');
  assert.equal(m.get(1), 'A');
  assert.equal(m.size, 3);
  assert.equal(m.delete(2), true);
  assert.equal(m.delete(2), false);
  assert.equal(m.has(2), false);
  assert.equal(m.size, 2);
  m.clear();
  assert.equal(m.size, 0);
  assert.equal(m.get(3), undefined);
  assert.throws(() => new BoundedMap(1), RangeError);
});

test('IntBoundedMap: the same answers as a BoundedMap, through collisions, deletions, turns of the generations and growth', () => {
  // A small key range makes the same keys come back, deleted and set again.
  let seed = 7;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) | 0;
    return (seed >>> 8) % n;
  };
  for (const max of [2, 3, 10, 64, 1000]) {
    const a = new BoundedMap<number, number>(max);
    const b = new IntBoundedMap<number>(max);
    const keys = [0, -1, 2 ** 31 - 1, -(2 ** 31), ...Array.from({ length: 3 * max }, () => rnd(2 ** 31) * (rnd(2) ? 1 : -1))];
    for (let step = 0; step < 20000; step++) {
      const k = keys[rnd(keys.length)];
      const op = rnd(10);
      if (op < 4) assert.equal(b.set(k, step), b);
      if (op < 4) a.set(k, step);
      else if (op < 7) assert.equal(b.get(k), a.get(k), `get ${k} at step ${step} (max ${max})`);
      else if (op < 8) assert.equal(b.peek(k), a.peek(k), `peek ${k} at step ${step} (max ${max})`);
      else if (op < 9) assert.equal(b.delete(k), a.delete(k), `delete ${k} at step ${step} (max ${max})`);
      else assert.equal(b.has(k), a.has(k), `has ${k} at step ${step} (max ${max})`);
      assert.equal(b.size, a.size, `size at step ${step} (max ${max})`);
      assert.ok(b.size <= max);
    }
    assert.equal(b.evicted, a.evicted);
    for (const k of keys) assert.equal(b.peek(k), a.peek(k));
    b.clear();
    assert.equal(b.size, 0);
    for (const k of keys) assert.equal(b.peek(k), undefined);
  }
  assert.throws(() => new IntBoundedMap(1), RangeError);
});

test('IntBoundedMap: a generation of many keys that share their slots is found whole after deletions in its runs', () => {
  const m = new IntBoundedMap<number>(200000);
  // Keys whose hashes crowd (multiples of a power of two), set, half deleted, the rest still found.
  const keys = Array.from({ length: 50000 }, (_, i) => (i * 65536) | 0);
  for (const k of keys) m.set(k, k + 1);
  for (let i = 0; i < keys.length; i += 2) assert.equal(m.delete(keys[i]), true);
  for (let i = 0; i < keys.length; i++) assert.equal(m.peek(keys[i]), i % 2 ? keys[i] + 1 : undefined);
  assert.equal(m.size, 25000);
});
