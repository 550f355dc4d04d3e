// ct-top's counting (src/top/model.ts) and drawing (src/top/render.ts),
// in process: connections once per flow, bytes as they grow and never
// twice, the sliding window, and frames that fit the terminal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TopModel } from '../../src/top/model.js';
import { renderScreen, human, clean } from '../../src/top/render.js';

const S = 1e6;
const T0 = Date.UTC(2026, 10, 23, 9, 0, 0) * 1000;
const proc = (comm: string, pid: number, user: string, container: unknown = null) => ({ pid, comm, user, container });
function ev(event: string, id: number, over: Record<string, unknown> = {}) {
  return { event, id, proto: 'tcp', src: '10.0.0.5', sport: 40000 + id, dst: '192.0.2.1', dport: 443, host: 'h', ...over };
}
const ctr = (orig: number, reply: number) => ({ orig: { packets: 1, bytes: orig }, reply: { packets: 1, bytes: reply } });

test('a connection counts once; its bytes count as counters records and its destroy show more, never twice', () => {
  const m = new TopModel();
  const p = proc('curl', 10, 'alice');
  m.add(ev('new', 1, { process: p }), T0);
  m.add(ev('counters', 1, { counters: ctr(100, 900) }), T0 + S);
  m.add(ev('counters', 1, { counters: ctr(150, 1850) }), T0 + 2 * S);
  m.add(ev('destroy', 1, { counters: ctr(200, 2800) }), T0 + 3 * S);
  m.add(ev('new', 2, { process: proc('sshd', 20, 'root', { id: 'abcdef0123456789', name: 'web' }), dport: 22 }), T0 + 3 * S);
  const s = m.snapshot('bytes', 10);
  assert.equal(s.connections, 2);
  assert.equal(s.bytes, 3000);
  assert.deepEqual(s.tables.process, [{ name: 'curl[10]', connections: 1, bytes: 3000 }, { name: 'sshd[20]', connections: 1, bytes: 0 }]);
  assert.deepEqual(s.tables.port.map((r) => r.name), ['tcp/443', 'tcp/22']);
  assert.deepEqual(s.tables.container.map((r) => r.name), ['(host)', 'web']);
  // ct-flows' records of a flow already counted add nothing more.
  m.add({ ...ev('flow', 1, { process: p, counters: ctr(200, 2800) }), finished: true }, T0 + 4 * S);
  assert.equal(m.snapshot('bytes', 10).bytes, 3000);
});

test('the window: what is older than it leaves the counts; --once without a window keeps everything', () => {
  const m = new TopModel({ window: 60 });
  const all = new TopModel();
  for (let i = 0; i < 10; i++) {
    for (const x of [m, all]) x.add(ev('new', i, { process: proc('a', 1, 'u'), counters: ctr(10, 0) }), T0 + i * 20 * S);
  }
  assert.equal(all.snapshot('connections', 5).connections, 10);
  const s = m.snapshot('connections', 5);
  assert.equal(s.connections, 3, 'the flows of the last 60 s');
  assert.equal(s.bytes, 30);
  // A quiet live input: the clock follows the wall clock, and the counts empty.
  m.advance(T0 + 9 * 20 * S + 1);
  const wallAt = 1000 * S;
  m.add({ event: 'stats' }, T0 + 200 * S, wallAt);
  m.advance(wallAt + 120 * S);
  assert.equal(m.snapshot('connections', 5).connections, 0);
  assert.deepEqual(m.snapshot('connections', 5).tables.process, []);
});

test('frames: exactly the terminal\'s lines, none wider; hostile names cannot send escapes', () => {
  const m = new TopModel();
  for (let i = 0; i < 50; i++) m.add(ev('new', i, { process: proc(`x\x1b[2J${'y'.repeat(i)}`, i, 'u'), dst: `2001:db8::${i}` }), T0);
  for (const [cols, rows] of [[80, 24], [132, 50], [80, 30]]) {
    for (const view of ['all', 'process', 'destination'] as const) {
      const f = renderScreen(m.snapshot('connections', 100), { sort: 'connections', view }, cols, rows);
      assert.ok(f.startsWith('\x1b[H'));
      const lines = f.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').split('\r\n');
      assert.equal(lines.length, rows, `${cols}x${rows} ${view}`);
      for (const l of lines) assert.ok([...l].length <= cols, `${cols}x${rows} ${view}: ${l}`);
      assert.doesNotMatch(f.replace(/\x1b\[(H|1m|7m|m|K|J)/g, ''), /\x1b/, 'only the frame\'s own sequences');
    }
  }
  assert.equal(human(999), '999');
  assert.equal(human(1536), '1.5K');
  assert.equal(human(5 * 1024 ** 3), '5.0G');
  assert.equal(clean('a\x1b[31mb\u202ec'), 'a?[31mb?c');
});
