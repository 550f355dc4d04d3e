// The attribution engine's chain and enrichments, with sources made here:
// which source is asked, in what order, what the event ends up with.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/attribute/engine.js';
import type { Answer, Enrichment, Source } from '../../src/attribute/source.js';
import type { FlowEvent, ProcessInfo } from '../../src/event.js';

const flow = (id: number, event: 'new' | 'destroy' = 'new'): FlowEvent => ({
  ts: new Date().toISOString(), event, id, family: 'ipv4', proto: 'tcp',
  src: '10.0.0.1', sport: 40000 + id, dst: '192.0.2.1', dport: 443,
  reply: { src: '192.0.2.1', sport: 443, dst: '10.0.0.1', dport: 40000 + id }, status: [],
} as unknown as FlowEvent);

const P: ProcessInfo = { pid: 42, comm: 'curl' };

/** A source that names P for even ids, and records what it was asked. */
function namer(log: string[]): Source {
  return {
    name: 'first',
    wants: (_ev, rec) => !rec.process,
    async refine<R extends Answer>(ev: FlowEvent, rec: R): Promise<R> {
      log.push(`first ${ev.id}`);
      return ev.id % 2 === 0 ? { ...rec, process: P, attribution: { method: 'first', ok: true } } : { ...rec, attribution: { method: 'first', ok: false, reason: 'no-process' } };
    },
    status: () => ({ method: 'first', live: true }),
  };
}

/** A later source that only looks at what the first could not name, and is announced every event in order. */
function second(log: string[]): Source {
  return {
    name: 'second',
    expect: (ev) => { log.push(`expect ${ev.id}`); return ev.id; },
    wants: (_ev, rec, token) => token !== undefined && !rec.process,
    refine<R extends Answer>(ev: FlowEvent, rec: R, token: unknown): R {
      log.push(`second ${ev.id} token ${token}`);
      return { ...rec, attribution: { method: 'second', ok: false, reason: 'ambiguous' } };
    },
    status: () => ({ method: 'second', live: false, why: 'test' }),
  };
}

test('engine: sources in chain order, a later one only for what the earlier left, enrichments in order after', async () => {
  const log: string[] = [];
  const enrich = (name: string): Enrichment => ({
    name, fields: [name],
    async enrich(ev, owner) {
      await new Promise((r) => setTimeout(r, name === 'a' ? 5 : 0));
      log.push(`${name} ${ev.id} ${owner?.pid ?? '-'}`);
      (ev as any)[name] = (ev as any).a ? 'after-a' : 'first';
    },
  });
  const e = new Engine({ sources: [namer(log), second(log)], enrichments: [enrich('a'), enrich('b')], isLocal: (a) => a === '10.0.0.1', off: [{ method: 'third', live: false, why: 'off' }] });
  const evs = [flow(2), flow(3)];
  await e.run(evs);
  assert.equal(evs[0].process?.pid, 42);
  assert.deepEqual(evs[0].attribution, { method: 'first', ok: true });
  assert.deepEqual(evs[1].attribution, { method: 'second', ok: false, reason: 'ambiguous' });
  assert.equal(evs[1].direction, 'out');
  assert.deepEqual((evs[0] as any).b, 'after-a', 'b ran after a');
  assert.deepEqual(log.filter((l) => l.startsWith('expect')), ['expect 2', 'expect 3'], 'announced in stream order');
  assert.ok(log.includes('second 3 token 3') && !log.some((l) => l.startsWith('second 2')));
  // Per event, in registration order, with the owner found (events themselves run side by side).
  for (const [x, y] of [['a 2 42', 'b 2 42'], ['a 3 -', 'b 3 -']]) assert.ok(log.indexOf(x) >= 0 && log.indexOf(x) < log.indexOf(y), `${x} before ${y}: ${log}`);
  assert.deepEqual(e.enrichedFields, ['a', 'b']);
  assert.deepEqual(e.status().map((s) => [s.method, s.live]), [['first', true], ['second', false], ['third', false]]);
  // The DESTROY of a named flow comes from memory, without asking the sources.
  const n = log.length;
  const d = flow(2, 'destroy');
  await e.run([d]);
  assert.equal(d.process?.pid, 42);
  assert.equal(log.slice(n).filter((l) => l.startsWith('first')).length, 0);
  assert.equal(e.stats.cached, 1);
  assert.equal(e.stats.methods.first, 2);
  // The stats record: answers by method and outcome, and the methods.
  const r = e.statsRecord('2026-01-01T00:00:00.000000Z');
  assert.deepEqual(r, {
    ts: '2026-01-01T00:00:00.000000Z', event: 'attribution-stats', events: 3, cached: 1,
    answers: { first: { ok: 2 }, second: { ambiguous: 1 } },
    methods: [{ method: 'first', live: true }, { method: 'second', live: false, why: 'test' }, { method: 'third', live: false, why: 'off' }],
  });
});

test('engine: a batch is announced in stream order, and looked up most urgent first (ended in the batch, UDP, TCP, the rest)', async () => {
  const log: string[] = [];
  const src: Source = {
    name: 'first',
    expect: (ev) => { log.push(`expect ${ev.id}/${ev.event}`); return null; },
    wants: (_ev, rec) => !rec.process,
    refine<R extends Answer>(ev: FlowEvent, rec: R): R {
      log.push(`look ${ev.id}/${ev.event}`);
      return { ...rec, attribution: { method: 'first', ok: false, reason: 'no-process' } };
    },
    status: () => ({ method: 'first', live: true }),
  };
  const e = new Engine({ sources: [src], isLocal: (a) => a === '10.0.0.1' });
  const udp = (id: number) => ({ ...flow(id), proto: 'udp' } as FlowEvent);
  const upd = { ...flow(4), event: 'update' } as unknown as FlowEvent;
  await e.run([flow(1), udp(2), flow(3), upd, flow(3, 'destroy')]);
  // The DESTROY of flow 3 waits for its NEW, then comes from memory.
  assert.deepEqual(log.filter((l) => l.startsWith('expect')), ['expect 1/new', 'expect 2/new', 'expect 3/new', 'expect 4/update']);
  assert.deepEqual(log.filter((l) => l.startsWith('look')), ['look 3/new', 'look 2/new', 'look 1/new', 'look 4/update']);
  assert.equal(e.stats.cached, 1);
});

test('engine: runs may overlap; a later batch\'s event of a flow still being looked up in an earlier one waits for it and gets its answer', async () => {
  const log: string[] = [];
  let release!: () => void;
  const slow = new Promise<void>((r) => (release = r));
  const src: Source = {
    name: 'slow',
    wants: (_ev, rec) => !rec.process,
    async refine<R extends Answer>(ev: FlowEvent, rec: R): Promise<R> {
      log.push(`refine ${ev.id} ${ev.event}`);
      // The NEW of flow 2 waits (a miss being searched for); the others answer at once.
      if (ev.id === 2 && ev.event === 'new') await slow;
      return ev.event === 'new' ? { ...rec, process: P, attribution: { method: 'slow', ok: true } } : { ...rec, attribution: { method: 'slow', ok: false, reason: 'socket-gone' } };
    },
    status: () => ({ method: 'slow', live: true }),
  };
  const e = new Engine({ sources: [src], isLocal: (a) => a === '10.0.0.1' });
  const first = [flow(2), flow(4)];
  const second = [flow(2, 'destroy'), flow(6)];
  const r1 = e.run(first);
  const r2 = e.run(second);
  let secondDone = false;
  r2.then(() => (secondDone = true));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(second[1].process?.pid, 42, 'the later batch\'s own flows are answered meanwhile');
  assert.equal(secondDone, false, 'its DESTROY of flow 2 waits for the NEW');
  release();
  await Promise.all([r1, r2]);
  assert.deepEqual(second[0].attribution, { method: 'slow', ok: true }, 'the DESTROY gets the NEW\'s answer from flow memory');
  assert.equal(second[0].process?.pid, 42);
  assert.ok(!log.includes('refine 2 destroy'), 'and is not looked up itself');
});

test('engine: answered(reason) says what stats would, before and after the run of answers is counted', async () => {
  const shared = Object.freeze({ method: 'first', ok: false, reason: 'no-permission' });
  const denier: Source = {
    name: 'first',
    wants: (_ev, rec) => !rec.process,
    refine: <R extends Answer>(ev: FlowEvent, rec: R): R => ({ ...rec, attribution: ev.id < 10 ? { method: 'first', ok: true } : shared }),
    status: () => ({ method: 'first', live: true }),
  };
  const e = new Engine({ sources: [denier], isLocal: (a) => a === '10.0.0.1' });
  await e.run([flow(1), flow(2)]);
  assert.equal(e.answered('no-permission'), false);
  // A run of one shared answer, not counted yet.
  await e.run([flow(11), flow(12)]);
  assert.equal(e.answered('no-permission'), true);
  assert.equal(e.answered('no-process'), false);
  assert.equal(e.stats.reasons['no-permission'], 2);
  // Counted, and a run of other answers after it.
  await e.run([flow(3)]);
  assert.equal(e.answered('no-permission'), true);
  assert.equal(e.answered('no-process'), false);
});
