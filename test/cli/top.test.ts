// bin/ct-top as a process: --once against golden files made from a recorded
// stream (test/fixtures/top/, see make.sh), its totals checked against sums
// computed here from the stream; the plain-text tables a pipe gets every
// interval; the terminal view in a pseudo-terminal (script(1)), frame by
// frame, keys included; usage errors, bad lines, `| head`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { runBin, BIN, FIXTURES, waitFor } from '../helpers.js';

const DIR = path.join(FIXTURES, 'top');
const STREAM = path.join(DIR, 'stream.ndjson');
const golden = (f: string) => readFileSync(path.join(DIR, f), 'utf8');

test('--once: the summary of a recorded stream, as the golden files (plain text, by bytes over a window with a filter, JSON)', async () => {
  for (const [args, file] of [
    [['--once', STREAM], 'once.golden'],
    [['--once', '--sort', 'bytes', '--window', '60s', '-p', 'tcp', STREAM], 'once-bytes-tcp.golden'],
    [['--once', '--json', STREAM], 'once.json.golden'],
  ] as [string[], string][]) {
    const r = await runBin('ct-top', args);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, golden(file), file);
  }
  // The same from stdin.
  const r = await runBin('ct-top', ['--once'], readFileSync(STREAM));
  assert.equal(r.stdout, golden('once.golden'));
});

test('--once --json: totals as computed from the stream here: one connection per flow, its largest byte count, the overruns', async () => {
  const recs = readFileSync(STREAM, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const flows = new Map<string, number>();
  let lost = 0;
  for (const r of recs) {
    if (r.event === 'overrun') lost += r.lost;
    if (!['new', 'update', 'destroy', 'counters'].includes(r.event)) continue;
    const k = [r.host, r.id, r.proto, r.src, r.sport, r.dst, r.dport].join('|');
    const b = r.counters ? r.counters.orig.bytes + r.counters.reply.bytes : 0;
    flows.set(k, Math.max(flows.get(k) ?? 0, b));
  }
  const j = JSON.parse((await runBin('ct-top', ['--once', '--json', '--limit', '1000', STREAM])).stdout);
  assert.equal(j.connections, flows.size);
  assert.equal(j.bytes, [...flows.values()].reduce((a, b) => a + b, 0));
  assert.equal(j.lost, lost);
  assert.ok(j.bytes > 0 && lost > 0);
  // Every table adds up to the totals.
  for (const d of ['process', 'user', 'destination', 'port', 'container']) {
    assert.equal(j[d].reduce((a: number, r: any) => a + r.connections, 0), j.connections, d);
    assert.equal(j[d].reduce((a: number, r: any) => a + r.bytes, 0), j.bytes, d);
  }
  // The counters records' bytes count for their flows (ct-events' poll of open flows).
  const counted = recs.filter((r) => r.event === 'counters');
  assert.ok(counted.length >= 6);
  // The DNS name of a destination, the container's name.
  assert.ok(j.destination.some((r: any) => r.name === '93.184.216.34' && r.dns === 'www.example.com'));
  assert.ok(j.container.some((r: any) => r.name === 'db-client' && r.connections === 1));
  // ct-filter's criteria select what is counted.
  const alice = JSON.parse((await runBin('ct-top', ['--once', '--json', '--user', 'alice', STREAM])).stdout);
  assert.deepEqual(alice.user.map((r: any) => r.name), ['alice']);
  assert.ok(alice.connections > 0 && alice.connections < j.connections);
});

test('stdout not a terminal: plain-text tables every interval, no escape sequences, and a last one at the end of the input', async () => {
  const child = spawn(BIN('ct-top'), ['--interval', '200ms', '--limit', '3'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout!.setEncoding('utf8').on('data', (d) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d) => (err += d));
  const closed = new Promise<number | null>((r) => child.on('close', r));
  const lines = readFileSync(STREAM, 'utf8').split('\n');
  child.stdin!.write(lines.slice(0, 100).join('\n') + '\n');
  await waitFor(() => (out.match(/^ct-top /gm) ?? []).length >= 2, 10000, 'two periodic tables');
  child.stdin!.end(lines.slice(100).join('\n'));
  assert.equal(await closed, 0, err);
  assert.equal(err, '');
  assert.doesNotMatch(out, /\x1b/, 'no escape sequences');
  const blocks = out.split(/\n\n(?=ct-top )/);
  assert.ok(blocks.length >= 3, `${blocks.length} tables`);
  for (const b of blocks) {
    assert.match(b, /^ct-top \S+ \S+ {2}last 60s: \d+ connections/);
    for (const t of ['PROCESS', 'USER', 'DESTINATION', 'PORT', 'CONTAINER']) assert.match(b, new RegExp(`^${t} +CONNS\\* +BYTES$`, 'm'));
    for (const l of b.split('\n')) assert.ok(l.length <= 80, `fits 80 columns: ${l}`);
  }
  // The last one has seen the whole stream: the connections of its last minute.
  assert.match(blocks[blocks.length - 1], /last 60s: 48 connections/);
});

/** Strip a frame's escape sequences (what the terminal shows, line by line). */
const screen = (frame: string) => frame.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').split(/\r*\n/);

test('in a terminal (script(1) pseudo-terminal, 80x24): frames that fit, redrawn in place; keys sort and zoom; q restores the screen', async () => {
  assert.equal(spawnSync('script', ['--version']).status, 0, 'script(1) from util-linux');
  const cmd = `stty cols 80 rows 24; exec ${BIN('ct-top')} --interval 300ms ${STREAM}`;
  const child = spawn('script', ['-q', '-e', '-c', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let raw = '';
  child.stdout!.setEncoding('utf8').on('data', (d) => (raw += d));
  const closed = new Promise<number | null>((r) => child.on('close', r));
  const frames = () => raw.split('\x1b[H').slice(1);
  const last = () => screen(frames()[frames().length - 1] ?? '');
  try {
    await waitFor(() => last()[0]?.includes('48 connections') ?? false, 10000, 'a frame with the whole stream');
    assert.match(raw, /^\x1b\[\?1049h\x1b\[\?25l/, 'the alternate screen, cursor hidden');
    const f = last();
    assert.equal(f.length, 24, 'exactly 24 lines');
    for (const l of f) assert.ok(l.length <= 80, `fits 80 columns: ${JSON.stringify(l)}`);
    assert.match(f[0], /^ct-top 2026-11-23 09:02:59Z {2}last 60s: 48 connections, 2\.2MB {2}by connections/);
    assert.match(f[1], /^input ended {2}c: by connections/);
    assert.match(f[2], /^PROCESS +CONNS\* +BYTES DESTINATION +CONNS\* +BYTES$/);
    assert.match(f[3], /^firefox\[1201\] +10 +10K /);
    assert.ok(f.some((l) => /^USER +CONNS\*/.test(l)) && f.some((l) => /^CONTAINER +CONNS\*/.test(l)) && f.some((l) => / PORT +CONNS\*/.test(l)));
    // b: by bytes, at once.
    const n = frames().length;
    child.stdin!.write('b');
    await waitFor(() => frames().length > n && last()[2].includes('BYTES*'), 5000, 'sorted by bytes');
    assert.match(last()[3], /^postgres\[4102\] +\d+ +1\.3M /);
    // 2: the users table alone, full screen.
    child.stdin!.write('2');
    await waitFor(() => /^USER +CONNS +BYTES\*$/.test(last()[2] ?? ''), 5000, 'users full screen');
    assert.equal(last().filter((l) => /CONNS/.test(l)).length, 1, 'one table');
    child.stdin!.write('q');
    assert.equal(await closed, 0);
    assert.match(raw, /\x1b\[\?25h\x1b\[\?1049l/, 'screen and cursor restored');
  } finally {
    child.kill('SIGKILL');
  }
});

test('usage errors exit 2; a bad line is named and skipped (exit 1); | head -1 exits 0 quietly; empty input', async () => {
  for (const args of [['--json'], ['--sort', 'packets'], ['--window', 'soon'], ['--bogus'], ['--dport', 'x', '--once']]) {
    const r = await runBin('ct-top', args, '');
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /Try 'ct-top --help'/);
  }
  const help = await runBin('ct-top', ['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: ct-top \[options\] \[file\.\.\.\]/);
  for (const o of ['--once', '--json', '--sort', '--window', '--interval', '--limit', '--comm', '--dport', '--no-dns']) assert.ok(help.stdout.includes(o), o);
  assert.match(help.stdout, /Examples:/);
  const lines = readFileSync(STREAM, 'utf8').split('\n');
  const bad = await runBin('ct-top', ['--once'], [lines[0], '{"event":"new",', lines[1], ''].join('\n'));
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^ct-top: stdin:2: /m);
  assert.match(bad.stdout, /all input: 2 connections/);
  const empty = await runBin('ct-top', ['--once', '--json'], '');
  assert.equal(empty.code, 0, empty.stderr);
  assert.equal(JSON.parse(empty.stdout).connections, 0);
  const head = spawnSync('sh', ['-c', `"${BIN('ct-top')}" --once "${STREAM}" | head -1`], { encoding: 'utf8' });
  assert.equal(head.status, 0);
  assert.equal(head.stderr, '');
  assert.equal(head.stdout.split('\n').length, 2);
});
