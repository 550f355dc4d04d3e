// bin/ct-filter as a process: fixtures in, output compared with goldens made
// by jq (test/fixtures/filter/make.sh), exit codes, diagnostics, EPIPE,
// worker threads, and --no-self inside a real pipeline.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { spawn } from 'node:child_process';
import { runBin, BIN, FIXTURES, ROOT } from '../helpers.js';

const DIR = path.join(FIXTURES, 'filter');
const EVENTS = path.join(DIR, 'events.ndjson');
const events = readFileSync(EVENTS, 'utf8');
const golden = (name: string) => readFileSync(path.join(DIR, `${name}.golden`), 'utf8');

let tmp = '';
let big = '';
before(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'ctf-cli-'));
  // A file large enough for worker threads and for `| head -1` to close the pipe early.
  const { generate } = await import(pathToFileURL(path.join(ROOT, 'bench', 'gen-events.js')).href);
  const lines: string[] = [];
  for (const l of generate(30000, 3)) lines.push(l);
  big = path.join(tmp, 'big.ndjson');
  writeFileSync(big, lines.join('\n') + '\n');
});
after(() => rmSync(tmp, { recursive: true, force: true }));

const CASES: [string, string[]][] = [
  ['tcp-dport-443', ['-p', 'tcp', '--dport', '443']],
  ['no-dns', ['--no-dns']],
  ['port-22-8000s', ['--port', '22,8000-8999']],
  ['alice-c-or-python', ['--user', 'alice', '--comm', 'c*', '--comm', 'python3']],
  ['new-destroy-in', ['-e', 'new', '-e', 'destroy', '--direction', 'in']],
  ['not-udp-and-443', ['-v', '-p', 'udp', '--dport', '443']],
  ['any-container', ['--container', '*']],
  ['no-unattributed', ['--no-unattributed']],
];

for (const [name, args] of CASES) {
  test(`ct-filter ${args.join(' ')}: the same lines as jq, byte for byte`, async () => {
    const r = await runBin('ct-filter', args, events);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assert.equal(r.stdout, golden(name));
  });
}

test('files as arguments, in order; - is stdin', async () => {
  const r = await runBin('ct-filter', ['-p', 'tcp', '--dport', '443', EVENTS, '-', EVENTS], events);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, golden('tcp-dport-443').repeat(3));
});

test('a file that cannot be read is reported; the others are still read; exit 1', async () => {
  const r = await runBin('ct-filter', ['-p', 'tcp', '--dport', '443', path.join(tmp, 'nope.ndjson'), EVENTS]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^ct-filter: .*nope\.ndjson: ENOENT/);
  assert.equal(r.stdout, golden('tcp-dport-443'));
});

test('empty input: no output, exit 0', async () => {
  for (const input of ['', '\n\n  \n']) {
    const r = await runBin('ct-filter', ['-p', 'tcp'], input);
    assert.deepEqual([r.code, r.stdout, r.stderr], [0, '', '']);
  }
});

test('bad lines: each named with its line number, skipped, the rest processed; summary and exit 1', async () => {
  const good = events.split('\n')[0];
  const input = [
    good,
    'this is not json',
    '[1,2,3]',
    '{"ts":"2026-11-23T00:00:00Z","event":"new","proto":"tcp","sport":"80","dport":443}',
    '{"ts":"2026-11-23T00:00:00Z","proto":"tcp"}',
    '"just a string"',
    good,
  ].join('\n') + '\n';
  const r = await runBin('ct-filter', ['--sport', '0-65535'], input);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, `${good}\n${good}\n`, 'nothing valid is lost');
  const err = r.stderr.trimEnd().split('\n');
  assert.match(err[0], /^ct-filter: stdin:2: not JSON: /);
  assert.match(err[1], /^ct-filter: stdin:3: not a JSON object: array$/);
  assert.match(err[2], /^ct-filter: stdin:4: sport: expected a port number \(0-65535\), got string "80"$/);
  assert.match(err[3], /^ct-filter: stdin:5: no "event" field$/);
  assert.match(err[4], /^ct-filter: stdin:6: not a JSON object: string$/);
  assert.equal(err[5], 'ct-filter: 5 bad lines skipped');
  assert.equal(err.length, 6);
});

test('a field the criteria do not read is not checked', async () => {
  const line = '{"event":"new","proto":"tcp","sport":"eighty","dport":443}';
  const r = await runBin('ct-filter', ['-p', 'tcp'], line + '\n');
  assert.deepEqual([r.code, r.stdout, r.stderr], [0, line + '\n', '']);
});

test('owner criteria on input without ct-attribute: said once on stderr', async () => {
  const plain = events.split('\n').filter(Boolean).slice(0, 20).map((l) => {
    const o = JSON.parse(l);
    delete o.process; delete o.attribution; delete o.direction;
    return JSON.stringify(o);
  });
  const r = await runBin('ct-filter', ['--user', 'alice'], plain.join('\n') + '\n');
  assert.equal(r.code, 0);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^ct-filter: stdin:1: --user reads the fields ct-attribute adds, .*is ct-attribute missing upstream/);
});

async function usage(args: string[], why: RegExp) {
  const r = await runBin('ct-filter', args);
  assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, why);
  assert.match(r.stderr, /Try 'ct-filter --help'\.\n$/);
}

test('unknown flags and bad values: usage errors, exit 2', async () => {
  await usage(['--frobnicate'], /frobnicate/);
  await usage(['--port', 'http'], /--port: 'http' is not a number/);
  await usage(['--dport', '1-70000'], /out of range/);
  await usage(['--net', '10.0.0.0/40'], /--net: .*prefix length/);
  await usage(['--src', 'example.com'], /--src: 'example.com' is not an address/);
  await usage(['-e', 'created'], /--event: 'created'/);
  await usage(['--direction', 'up'], /--direction: 'up'/);
  await usage(['-v'], /needs a criterion/);
  await usage(['--uid', 'root'], /--uid/);
  await usage(['--jobs', '-1'], /--jobs/);
});

test('--help: usage, the options, examples; exit 0', async () => {
  const r = await runBin('ct-filter', ['--help']);
  assert.equal(r.code, 0);
  assert.equal(r.stderr, '');
  assert.match(r.stdout, /^Usage: ct-filter \[options\] \[file\.\.\.\]/);
  for (const o of ['--proto', '--port', '--sport', '--dport', '--net', '--src', '--dst', '--event', '--uid', '--user', '--comm', '--exe', '--unit', '--container', '--direction', '--invert', '--no-dns', '--no-multicast', '--no-loopback', '--no-unattributed', '--no-self']) {
    assert.ok(r.stdout.includes(o), o);
  }
  assert.match(r.stdout, /Examples:/);
});

test('| head -1: exit 0, nothing on stderr', async () => {
  const r = await shell(`"${BIN('ct-filter')}" --no-dns < "${big}" | head -1 > /dev/null`, 'bash', ['-o', 'pipefail']);
  assert.equal(r.stderr, '');
  assert.equal(r.code, 0);
});

/** Run a shell command line; collect stdout, stderr, exit code. */
function shell(cmd: string, sh = 'sh', shArgs: string[] = [], opts: { detached?: boolean; input?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(sh, [...shArgs, '-c', cmd], { stdio: ['pipe', 'pipe', 'pipe'], detached: opts.detached });
    let stdout = '', stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

test('worker threads: same output, same order, right line numbers as one thread', async () => {
  const lines = readFileSync(big, 'utf8').split('\n');
  lines.splice(24999, 0, '{"event":"new","proto":5}');
  const input = lines.join('\n');
  const one = await runBin('ct-filter', ['--jobs', '0', '-p', 'tcp,udp', '--no-loopback'], input);
  const many = await runBin('ct-filter', ['--jobs', '2', '-p', 'tcp,udp', '--no-loopback'], input);
  assert.equal(one.code, 1);
  assert.equal(many.code, 1);
  assert.ok(one.stdout.length > 1_000_000);
  assert.equal(many.stdout, one.stdout);
  assert.match(many.stderr, /^ct-filter: stdin:25000: proto: expected a string, got number 5\n/);
  assert.equal(many.stderr, one.stderr);
});

test('--no-self in a real pipeline: drops its own process group and ct-* commands, keeps the rest', async () => {
  // sh -c without job control runs the whole pipeline in sh's process group;
  // detached makes that group (and session) the pipeline's own.
  const line = (pid: number | string, cmdline: string[]) => JSON.stringify({
    ts: '2026-11-23T00:00:00.000001Z', event: 'new', id: 1, family: 'ipv4', proto: 'tcp', src: '10.0.0.5', sport: 40000,
    dst: '203.0.113.10', dport: 514, process: { pid, uid: 0, user: 'root', comm: cmdline[0], cmdline }, attribution: { method: 'sock_diag', ok: true },
  });
  const input = path.join(tmp, 'self.ndjson');
  writeFileSync(input, [line(1, ['init']), line('PIDX', ['sleep', '30']), line(999999, ['node', '/opt/ctpipe/bin/ct-syslog', '--tcp', 'logs:514'])].join('\n') + '\n');
  // The background sleep stands for a shipper in the pipeline: its pid goes into the events.
  const script = `sleep 30 & S=$!; sed "s/\\"PIDX\\"/$S/" "${input}" | "${BIN('ct-filter')}" --no-self; kill $S`;
  const r = await shell(script, 'sh', [], { detached: true });
  assert.equal(r.stderr, '');
  assert.equal(r.code, 0);
  const out = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(out.map((o) => o.process.pid), [1], 'the sleep in our group and the ct-syslog are dropped');
});

test('a pipeline of ct-* commands: ct-filter | ct-filter | ct-format, compared with jq', async () => {
  const r = await shell(`"${BIN('ct-filter')}" --no-dns < "${EVENTS}" | "${BIN('ct-filter')}" -p tcp --dport 443 | "${BIN('ct-format')}" --preset conntrack-logger`);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^(ct-format: start at .*\n)?$/);
  const jq = await shell(`jq -r 'select((.event == "new" or .event == "update" or .event == "destroy") and .proto == "tcp" and .dport == 443) | "\\(.ts | sub("\\\\.[0-9]+Z$"; "Z") | fromdate): \\(.family)/\\(.proto) \\(.src)/\\(.sport) > \\(.dst)/\\(.dport) :: \\(.process.pid // "?") \\(.process.uid // "-"):\\(.process.gid // "-") \\(.process.cgroup // "-") :: \\(.process.cmdline // ["-"] | join(" "))"' "${EVENTS}"`);
  assert.equal(jq.code, 0, jq.stderr);
  assert.ok(jq.stdout.split('\n').length > 50);
  assert.equal(r.stdout, jq.stdout);
});

test('stdout a FIFO whose reader has gone: exits at once, quietly, instead of waiting in open(2)', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ctf-fifo-'));
  try {
    const fifo = path.join(dir, 'out');
    const script = `
      mkfifo "$1"
      sleep 5 < "$1" & R=$!
      exec 5>"$1"
      kill $R; wait $R 2>/dev/null
      printf '%s\\n' '{"ts":"x","event":"overrun","lost":1}' | timeout 10 "$2" >&5
      echo "rc=$?" >&2`;
    const r = await runBin('ct-filter', [], null, { prefix: ['sh', '-c', script, 'sh', fifo] });
    assert.match(r.stderr, /rc=0\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ct-flows\' flow records are matched like flow events, -e flow keeps only them; special records pass unless -e names other kinds', async () => {
  const flow = (proto: string, dport: number, pid: number) => JSON.stringify({
    ts: '2026-11-23T12:00:01.000000Z', event: 'flow', id: pid, family: 'ipv4', proto, src: '10.0.0.1', sport: 40000 + pid, dst: '10.0.0.2', dport,
    reply: { src: '10.0.0.2', sport: dport, dst: '10.0.0.1', dport: 40000 + pid }, direction: 'out', process: { pid, user: 'alice', comm: 'curl' },
    attribution: { method: 'sock_diag', ok: true }, start: '2026-11-23T12:00:00.000000Z', stop: '2026-11-23T12:00:01.000000Z', duration: 1, finished: true,
  });
  const newEv = JSON.stringify({ ts: '2026-11-23T12:00:00.000000Z', event: 'new', id: 9, family: 'ipv4', proto: 'tcp', src: '10.0.0.1', sport: 1, dst: '10.0.0.2', dport: 443, reply: { src: '10.0.0.2', sport: 443, dst: '10.0.0.1', dport: 1 } });
  const stats = '{"ts":"2026-11-23T12:00:02.000000Z","event":"stats","received":3}';
  const input = [flow('tcp', 443, 1), flow('udp', 53, 2), newEv, stats].join('\n') + '\n';
  const tcp = await runBin('ct-filter', ['-p', 'tcp'], input);
  assert.equal(tcp.code, 0, tcp.stderr);
  assert.equal(tcp.stdout, [flow('tcp', 443, 1), newEv, stats].join('\n') + '\n');
  const onlyFlows = await runBin('ct-filter', ['-e', 'flow', '--user', 'alice'], input);
  assert.equal(onlyFlows.stdout, [flow('tcp', 443, 1), flow('udp', 53, 2)].join('\n') + '\n');
  // -e names kinds: a special record passes when its kind is named.
  const newOnly = await runBin('ct-filter', ['-e', 'new'], input);
  assert.equal(newOnly.stdout, newEv + '\n');
  const newAndStats = await runBin('ct-filter', ['-e', 'new,stats'], input);
  assert.equal(newAndStats.stdout, [newEv, stats].join('\n') + '\n');
  const special = await runBin('ct-filter', ['-e', 'special'], input);
  assert.equal(special.stdout, stats + '\n');
  const noSpecial = await runBin('ct-filter', ['--no-special', '-p', 'tcp'], input);
  assert.equal(noSpecial.stdout, [flow('tcp', 443, 1), newEv].join('\n') + '\n');
  const noDns = await runBin('ct-filter', ['--no-dns'], input);
  assert.equal(noDns.stdout, [flow('tcp', 443, 1), newEv, stats].join('\n') + '\n');
  const bad = await runBin('ct-filter', ['-e', 'flows'], input);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--event: 'flows' is not one of new, update, destroy, flow, overrun, stats, start, stop, attribution-stats, dns, counters, special/);
});
