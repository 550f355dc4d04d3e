// src/lru.ts: the bounded map behind flow and process memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BoundedMap } from '../../src/lru.js';

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
