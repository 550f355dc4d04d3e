// ct-attribute's check of an input flow event: the shortcut for events of
// the usual shape (plainInput) gives what the contract's check gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inputProblem, INPUT_CHECKED } from '../../src/commands/attribute.js';
import { checkedFields, compileRequired } from '../../src/filter/validate.js';

const full = compileRequired(['id', 'proto', 'src', 'dst'], INPUT_CHECKED);

test('the fields the shortcut checks are the ones the contract check covers', () => {
  // plainInput() names these; a field added under them in the schema table must be added there too.
  assert.deepEqual(checkedFields(INPUT_CHECKED).map((f) => `${f.path}:${f.type}`), [
    'id:integer', 'family:string', 'proto:string', 'src:string', 'sport:port', 'dst:string', 'dport:port',
    'reply:object', 'reply.src:string', 'reply.sport:port', 'reply.dst:string', 'reply.dport:port',
  ]);
});

test('every field, and reply\'s members, given every kind of value: the same answer as the contract check', () => {
  const base = () => ({
    ts: '2026-12-06T17:31:42.177010Z', event: 'new', id: 3908278304, family: 'ipv4', proto: 'udp', src: '127.0.0.1', sport: 44601, dst: '127.201.0.1', dport: 10002,
    reply: { src: '127.201.0.1', sport: 10002, dst: '127.0.0.1', dport: 44601 } as Record<string, unknown>, status: ['CONFIRMED'], timeout: 30, host: 'vm',
  } as Record<string, any>);
  const values: unknown[] = [undefined, null, 0, -0, -1, 1.5, 65535, 65536, 2 ** 40, NaN, Infinity, '', '80', 'udp', true, {}, [], ['a'], { src: 'x' }];
  let n = 0;
  const same = (ev: Record<string, any>) => {
    for (const event of ['new', 'update', 'destroy']) {
      ev.event = event;
      assert.equal(inputProblem(ev), full(ev), JSON.stringify(ev));
      n++;
    }
  };
  same(base());
  for (const f of [...INPUT_CHECKED, 'ts', 'host']) {
    for (const v of values) {
      const ev = base();
      if (v === undefined) delete ev[f];
      else ev[f] = v;
      same(ev);
    }
  }
  for (const f of ['src', 'sport', 'dst', 'dport', 'family']) {
    for (const v of values) {
      const ev = base();
      if (v === undefined) delete ev.reply[f];
      else ev.reply[f] = v;
      same(ev);
    }
  }
  // Two fields wrong at once: the first the contract check names is said.
  const ev = base();
  ev.sport = 'x';
  ev.reply.dport = -5;
  same(ev);
  assert.ok(n > 300);
  assert.equal(inputProblem(base()), null);
  assert.match(String(inputProblem({ ...base(), dport: 70000 })), /^dport: expected a port number/);
});
