// bin/ct-flows as a process: records out of generated events, bad lines,
// usage errors, EPIPE, open flows written out at the end of the input and on
// SIGTERM, SIGINT ignored while reading a pipe, interim records on a quiet
// live input, evictions reported, and ct-format's squeezed preset after it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { runBin, BIN, ROOT, lines, waitFor } from '../helpers.js';

let tmp = '';
let big = '';
let bigLines: string[] = [];
before(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'ctf-flows-'));
  const { generate } = await import(pathToFileURL(path.join(ROOT, 'bench', 'gen-events.js')).href);
  for (const l of generate(30000, 3)) bigLines.push(l);
  // Special records where ct-events would put them.
  bigLines.splice(1000, 0, JSON.stringify({ ts: JSON.parse(bigLines[999]).ts, event: 'overrun', lost: 12, reason: 'enobufs', host: 'web-1' }));
  bigLines.splice(20000, 0, JSON.stringify({ ts: JSON.parse(bigLines[19999]).ts, event: 'stats', received: 20011, written: 19999, lost: 12, queued: 0, host: 'web-1' }));
  big = path.join(tmp, 'big.ndjson');
  writeFileSync(big, bigLines.join('\n') + '\n');
});
after(() => rmSync(tmp, { recursive: true, force: true }));

const TS = (s: number) => new Date(Date.UTC(2026, 10, 23, 9, 0, 0) + s * 1000).toISOString().replace('Z', '000Z');

function ev(event: string, s: number, id: number, over: Record<string, unknown> = {}): string {
  const sport = 40000 + id;
  return JSON.stringify({
    ts: TS(s), event, id, family: 'ipv4', proto: 'tcp', src: '10.0.0.5', sport, dst: '93.184.216.34', dport: 443,
    reply: { src: '93.184.216.34', sport: 443, dst: '192.0.2.7', dport: sport },
    state: event === 'new' ? 'SYN_SENT' : 'TIME_WAIT', status: ['CONFIRMED'], host: 'web-1', ...over,
  });
}

/** ct-flows with stdin, stdout and stderr as pipes; stdout parsed as it comes. */
class Flows {
  readonly child: ChildProcess;
  readonly out: any[] = [];
  stderr = '';
  private partial = '';
  readonly closed: Promise<number | null>;
  constructor(args: string[]) {
    this.child = spawn(BIN('ct-flows'), args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      const parts = (this.partial + d).split('\n');
      this.partial = parts.pop()!;
      for (const p of parts) if (p) this.out.push(JSON.parse(p));
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.closed = new Promise((resolve) => this.child.on('close', (code) => resolve(code)));
    const t = setTimeout(() => this.child.kill('SIGKILL'), 20000);
    this.closed.then(() => clearTimeout(t));
  }
  write(...l: string[]): void {
    this.child.stdin!.write(l.join('\n') + '\n');
  }
}

test('generated events: one record per connection, special records passed in place, open flows written at the end', async () => {
  const r = await runBin('ct-flows', [big]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const recs = lines(r.stdout);
  const input = bigLines.map((l) => JSON.parse(l));
  const specials = input.filter((e) => !['new', 'update', 'destroy'].includes(e.event));
  assert.ok(specials.length >= 1);
  assert.deepEqual(recs.filter((e) => e.event !== 'flow'), specials, 'overrun and stats records, unchanged and in order');
  // In place: after the records of the DESTROYs before it, before the others.
  const overrunAt = recs.findIndex((e) => e.event === 'overrun');
  assert.equal(overrunAt, input.slice(0, 1000).filter((e) => e.event === 'destroy').length);
  const flows = recs.filter((e) => e.event === 'flow');
  const destroys = input.filter((e) => e.event === 'destroy');
  const news = input.filter((e) => e.event === 'new');
  assert.equal(flows.filter((f) => f.finished).length, destroys.length);
  assert.equal(flows.filter((f) => !f.finished).length, news.length - destroys.length);
  assert.ok(flows.filter((f) => !f.finished).every((f) => f.reason === 'end-of-input' && f.stop === undefined));
  // Each finished record has its NEW's process and its DESTROY's counters.
  const byId = new Map(news.map((e) => [e.id, e]));
  for (const f of flows.filter((x) => x.finished).slice(0, 500)) {
    const n = byId.get(f.id)!;
    const d = destroys.find((e) => e.id === f.id)!;
    assert.deepEqual(f.process, n.process);
    assert.deepEqual(f.counters, d.counters);
    assert.equal(f.start, n.ts);
    assert.equal(f.stop, d.ts);
    assert.equal(f.ts, d.ts);
  }
});

test('files as arguments, in order; - is stdin', async () => {
  const a = ev('new', 0, 1), b = ev('destroy', 1, 1);
  const f1 = path.join(tmp, 'a.ndjson');
  writeFileSync(f1, a + '\n');
  const r = await runBin('ct-flows', [f1, '-'], b + '\n');
  assert.equal(r.code, 0, r.stderr);
  const recs = lines(r.stdout);
  assert.deepEqual(recs.map((x) => [x.id, x.finished, x.start, x.stop]), [[1, true, TS(0), TS(1)]]);
});

test('empty input: no output, exit 0', async () => {
  for (const input of ['', '\n\n  \n']) {
    const r = await runBin('ct-flows', [], input);
    assert.deepEqual([r.code, r.stdout, r.stderr], [0, '', '']);
  }
});

test('bad lines: each named with its line number, skipped, the stream goes on; summary and exit 1', async () => {
  const input = [
    ev('new', 0, 1),
    'this is not json',
    '{"ts":"2026-11-23T09:00:00.000000Z","event":"new","id":2,"sport":"80"}',
    '{"event":"destroy","id":1}',
    '{"ts":"2026-11-23T09:00:01.000000Z","event":"destroy"}',
    ev('new', 1, 3),
    ev('destroy', 2, 1),
  ].join('\n') + '\n';
  const r = await runBin('ct-flows', [], input);
  assert.equal(r.code, 1);
  const err = r.stderr.split('\n').filter(Boolean);
  assert.match(err[0], /^ct-flows: stdin:2: not JSON: /);
  assert.deepEqual(err.slice(1), [
    'ct-flows: stdin:3: sport: expected a port number (0-65535), got string "80"',
    'ct-flows: stdin:4: no "ts" field',
    'ct-flows: stdin:5: no "id" field: a flow event without its conntrack id cannot be paired',
    'ct-flows: 4 bad lines skipped',
  ]);
  const recs = lines(r.stdout);
  assert.deepEqual(recs.map((x) => [x.id, x.finished, x.reason ?? null]), [[1, true, null], [3, false, 'end-of-input']]);
});

test('usage errors: exit 2 with a hint', async () => {
  for (const args of [['--nope'], ['--report-every', 'soon'], ['--report-every', '0'], ['--max-flows', '0'], ['--max-flows', '1.5'], ['--max-flows']]) {
    const r = await runBin('ct-flows', args);
    assert.equal(r.code, 2, args.join(' '));
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^ct-flows: .+\nTry 'ct-flows --help'\.\n$/, args.join(' '));
  }
});

test('--help and --version', async () => {
  const r = await runBin('ct-flows', ['--help']);
  assert.equal(r.code, 0);
  for (const s of ['--report-every', '--max-flows', 'Examples:', 'ctrecorder-squeeze', 'nf_conntrack_acct']) assert.ok(r.stdout.includes(s), s);
  const v = await runBin('ct-flows', ['--version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^\d+\.\d+\.\d+/);
});

test('| head -1: exit 0, nothing on stderr', () => {
  const r = execFileSync('bash', ['-c', `set -o pipefail; ${BIN('ct-flows')} < ${big} 2>${tmp}/err | head -1; echo "status $?"; cat ${tmp}/err`], { encoding: 'utf8' });
  const [first, status, ...rest] = r.split('\n');
  assert.equal(JSON.parse(first).event, 'flow');
  assert.equal(status, 'status 0');
  assert.equal(rest.join(''), '');
});

test('SIGTERM: reading stops, open flows are written out (reason "signal"), exit 0', async () => {
  const f = new Flows([]);
  // B opens first: once A's record is out, B's NEW has been read.
  f.write(ev('new', 0, 2), ev('new', 1, 1), ev('destroy', 2, 1));
  await waitFor(() => f.out.length >= 1, 10000, 'the record of flow 1');
  f.child.kill('SIGTERM');
  assert.equal(await f.closed, 0);
  assert.deepEqual(f.out.map((x) => [x.id, x.finished, x.reason ?? null]), [[1, true, null], [2, false, 'signal']]);
  assert.equal(f.out[1].start, TS(0));
  assert.equal(f.stderr, '');
});

test('SIGINT while reading a pipe is ignored: the input is finished, then open flows are written (end-of-input)', async () => {
  const f = new Flows([]);
  f.write(ev('new', 0, 2), ev('new', 1, 1), ev('destroy', 2, 1));
  await waitFor(() => f.out.length >= 1, 10000, 'the record of flow 1');
  f.child.kill('SIGINT');
  // Still reading: a later DESTROY is paired.
  f.write(ev('new', 3, 3), ev('destroy', 4, 3));
  await waitFor(() => f.out.length >= 2, 10000, 'the record of flow 3');
  f.child.stdin!.end();
  assert.equal(await f.closed, 0);
  assert.deepEqual(f.out.map((x) => [x.id, x.finished, x.reason ?? null]), [[1, true, null], [3, true, null], [2, false, 'end-of-input']]);
});

test('--report-every on a quiet live input: interim records come by the wall clock, then the final record', async () => {
  const f = new Flows(['--report-every', '200ms']);
  const now = new Date();
  const at = (ms: number) => new Date(now.getTime() + ms).toISOString().replace('Z', '000Z');
  f.write(ev('new', 0, 5, { ts: at(0) }));
  await waitFor(() => f.out.length >= 2, 10000, 'two interim records');
  assert.deepEqual(f.out.slice(0, 2).map((x) => [x.id, x.finished, x.reason, x.stop]), [[5, false, 'interim', undefined], [5, false, 'interim', undefined]]);
  assert.ok(f.out[1].duration > f.out[0].duration, 'duration so far grows');
  f.write(ev('destroy', 0, 5, { ts: at(60000) }));
  f.child.stdin!.end();
  assert.equal(await f.closed, 0);
  const last = f.out.at(-1);
  assert.deepEqual([last.finished, last.duration], [true, 60]);
  assert.ok(f.out.slice(0, -1).every((x) => x.reason === 'interim'));
});

test('SIGUSR1: a line of counts on stderr; the stream goes on', async () => {
  const f = new Flows([]);
  f.write(ev('new', 0, 2), ev('new', 1, 1), ev('destroy', 2, 1));
  await waitFor(() => f.out.length >= 1, 10000, 'the record of flow 1');
  f.child.kill('SIGUSR1');
  await waitFor(() => f.stderr.includes('\n'), 10000, 'the counts');
  assert.equal(f.stderr, 'ct-flows: open 1, finished 1, incomplete 0, interim 0, evicted 0, id reused 0\n');
  f.child.stdin!.end();
  assert.equal(await f.closed, 0);
  assert.equal(f.out.length, 2);
});

test('--max-flows: evicted flows are written out early and counted on stderr', async () => {
  const news = [1, 2, 3, 4, 5].map((i) => ev('new', i, i));
  const r = await runBin('ct-flows', ['--max-flows', '2'], [...news, ev('destroy', 9, 5)].join('\n') + '\n');
  assert.equal(r.code, 0);
  assert.equal(r.stderr, 'ct-flows: 3 flows were written out early (reason "evicted") to stay within --max-flows 2\n');
  assert.deepEqual(lines(r.stdout).map((x) => [x.id, x.reason ?? 'finished']), [[1, 'evicted'], [2, 'evicted'], [3, 'evicted'], [5, 'finished'], [4, 'end-of-input']]);
});

test('ct-flows | ct-format --preset ctrecorder-squeeze: one line per connection, start and end', () => {
  const input = path.join(tmp, 'sq.ndjson');
  writeFileSync(input, [ev('new', 0, 1), ev('new', 0.5, 2), ev('destroy', 2.25, 1, { start: TS(-1), stop: TS(2) }), '{"ts":"2026-11-23T09:00:03.000000Z","event":"overrun","lost":2,"reason":"enobufs"}'].join('\n') + '\n');
  const r = execFileSync('bash', ['-c', `set -o pipefail; ${BIN('ct-flows')} ${input} | ${BIN('ct-format')} --preset ctrecorder-squeeze 2>${tmp}/fmt-err; echo "status $?"; cat ${tmp}/fmt-err`], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
  const t = 'src=10.0.0.5:4000%d dst=93.184.216.34:443 src=93.184.216.34:443 dst=192.0.2.7:4000%d';
  assert.equal(r, [
    `2026.11.23 08:59:59.000000 2026.11.23 09:00:02.000000 ${t.replace(/%d/g, '1')}`,
    `2026.11.23 09:00:00.500000 -          -               ${t.replace(/%d/g, '2')}`,
    'status 0',
    'ct-format: overrun at 2026-11-23T09:00:03.000000Z: 2 events lost (enobufs)',
    '',
  ].join('\n'));
});
