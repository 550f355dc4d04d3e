// ct-attribute as a command: input handling, exit codes, pass-through.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { runBin, lines, BIN, withoutMethods, ROOT, ndjsonFixturesInput } from '../helpers.js';

const EV = (id: number, sport: number) => JSON.stringify({ ts: '2026-11-23T07:41:33.965873Z', event: 'new', id, family: 'ipv4', proto: 'udp', src: '203.0.113.5', sport, dst: '198.51.100.7', dport: 53, reply: { src: '198.51.100.7', sport: 53, dst: '203.0.113.5', dport: sport }, status: ['CONFIRMED'], custom: { kept: true } });

test('empty input: no output, exit 0', async () => {
  const r = await runBin('ct-attribute', [], '');
  assert.equal(r.code, 0);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^ct-attribute: methods: sock_diag live/);
  assert.equal(withoutMethods(r.stderr), '');
});

test('a bad line is reported with its line number, skipped, the rest kept in order; exit 1', async () => {
  const input = [EV(1, 1000), '{not json', '[1,2]', '{"ts":"x","event":"overrun","lost":7}', EV(2, 1001)].join('\n') + '\n';
  const r = await runBin('ct-attribute', [], input);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^ct-attribute: stdin:2: not JSON/m);
  assert.match(r.stderr, /^ct-attribute: stdin:3: not a JSON object: array/m);
  assert.match(r.stderr, /2 bad input lines skipped/);
  const out = lines(r.stdout);
  assert.deepEqual(out.map((e) => e.id ?? e.event), [1, 'overrun', 2]);
  // Forwarded traffic (neither end is this host) has no local owner, and says so.
  assert.equal(out[0].direction, 'fwd');
  assert.equal(out[0].process, undefined);
  assert.deepEqual(out[0].attribution, { method: 'none', ok: false, reason: 'forwarded' });
  // Unknown fields pass through; special records pass untouched.
  assert.deepEqual(out[0].custom, { kept: true });
  assert.deepEqual(out[1], { ts: 'x', event: 'overrun', lost: 7 });
});

test('files as arguments, and - for stdin', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cta-'));
  const f = path.join(dir, 'a.ndjson');
  writeFileSync(f, EV(5, 2000) + '\n');
  const r = await runBin('ct-attribute', [f, '-'], EV(6, 2001) + '\n');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(lines(r.stdout).map((e) => e.id), [5, 6]);
});

test('a file that cannot be read is named with its path, as the other commands do; the others are still read; exit 1', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cta-'));
  const f = path.join(dir, 'a.ndjson');
  writeFileSync(f, EV(5, 2000) + '\n');
  const missing = path.join(dir, 'missing.ndjson');
  const r = await runBin('ct-attribute', [missing, f], '');
  assert.equal(r.code, 1);
  assert.deepEqual(lines(r.stdout).map((e) => e.id), [5]);
  assert.match(r.stderr, new RegExp(`^ct-attribute: ${missing.replace(/[.]/g, '\\.')}: ENOENT: no such file or directory`, 'm'));
});

test('unknown flag: exit 2 with a hint', async () => {
  const r = await runBin('ct-attribute', ['--bogus'], '');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Unknown argument: bogus\nTry 'ct-attribute --help'\./);
});

test('--help: exit 0, examples on stdout', async () => {
  const r = await runBin('ct-attribute', ['--help'], '');
  assert.equal(r.code, 0);
  assert.match(r.stdout, /Examples:/);
  assert.match(r.stdout, /--no-cmdline/);
});

test('| head -1: exit 0, nothing on stderr', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cta-'));
  const f = path.join(dir, 'many.ndjson');
  writeFileSync(f, Array.from({ length: 20000 }, (_, i) => EV(i + 1, 1024 + (i % 60000))).join('\n') + '\n');
  // pipefail: the status is ct-attribute's (head's is 0 anyway); stderr must stay empty.
  const r = execFileSync('bash', ['-c', `set -o pipefail; ${BIN('ct-attribute')} < ${f} 2>${dir}/err | head -1; echo "status $?"; cat ${dir}/err`], { encoding: 'utf8' });
  const [first, status, ...rest] = r.split('\n');
  assert.equal(JSON.parse(first).id, 1);
  assert.equal(status, 'status 0');
  assert.equal(rest.join(''), '', 'nothing on stderr');
});

test('the owner is added at the end of each line; an attributed stream attributed again has each field once', async (t) => {
  const dgram = await import('node:dgram');
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  t.after(() => sock.close());
  const port = sock.address().port;
  const ev = (id: number) => JSON.stringify({ ts: '2026-11-23T07:41:33.965873Z', event: 'new', id, family: 'ipv4', proto: 'udp', src: '127.0.0.1', sport: port, dst: '198.51.100.7', dport: 53, reply: { src: '198.51.100.7', sport: 53, dst: '127.0.0.1', dport: port }, status: [], custom: 'x' });
  const input = [ev(1), ev(2), ev(3)].join('\n') + '\n';
  const r = await runBin('ct-attribute', [], input);
  assert.equal(r.code, 0, r.stderr);
  const outLines = r.stdout.trimEnd().split('\n');
  assert.equal(outLines.length, 3);
  for (const [i, text] of outLines.entries()) {
    const o = JSON.parse(text);
    // Byte for byte what serializing the attributed event gives.
    assert.equal(text, JSON.stringify(o));
    assert.deepEqual(Object.keys(o).slice(-3), ['direction', 'process', 'attribution']);
    assert.equal(o.id, i + 1);
    assert.equal(o.direction, 'out');
    assert.equal(o.process.pid, process.pid);
    assert.deepEqual(o.attribution, { method: 'sock_diag', ok: true });
  }
  const again = await runBin('ct-attribute', [], r.stdout);
  assert.equal(again.code, 0, again.stderr);
  for (const text of again.stdout.trimEnd().split('\n')) {
    assert.equal(text, JSON.stringify(JSON.parse(text)));
    assert.equal((text.match(/"process":/g) ?? []).length, 1);
    assert.equal(JSON.parse(text).process.pid, process.pid);
  }
});

/**
 * A process of its own (run through `prefix`, e.g. setpriv) holding a UDP
 * socket on 127.0.0.1 until its stdin ends; killed after the test.
 */
async function udpOwner(t: { after: (fn: () => void) => void }, prefix: string[] = []): Promise<{ owner: ChildProcess; port: number }> {
  const argv = [...prefix, process.execPath, '-e', `
    const s = require('dgram').createSocket('udp4');
    s.bind(0, '127.0.0.1', () => process.stdout.write(s.address().port + '\\n'));
    process.stdin.on('end', () => process.exit(0)).resume();
  `];
  const owner = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => owner.kill());
  const [portText] = await once(owner.stdout!.setEncoding('utf8'), 'data');
  return { owner, port: Number(String(portText).trim()) };
}

test('a closed UDP socket still owns the flows received before it was last seen held, and none after', async (t) => {
  const { owner, port } = await udpOwner(t);
  const attr = spawn(BIN('ct-attribute'), [], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.after(() => attr.kill());
  const out = attr.stdout!.setEncoding('utf8');
  let buf = '';
  const next = async (): Promise<any> => {
    while (!buf.includes('\n')) {
      const [d] = await once(out, 'data');
      buf += d;
    }
    const i = buf.indexOf('\n');
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    return JSON.parse(line);
  };
  const ev = (id: number, ts: string) => JSON.stringify({ ts, event: 'new', id, family: 'ipv4', proto: 'udp', src: '127.0.0.1', sport: port, dst: '198.51.100.7', dport: 5000 + id, reply: { src: '198.51.100.7', sport: 5000 + id, dst: '127.0.0.1', dport: port }, status: [] }) + '\n';
  const now = () => new Date().toISOString();
  attr.stdin!.write(ev(1, now()));
  const e1 = await next();
  assert.equal(e1.process?.pid, owner.pid, JSON.stringify(e1.attribution));
  const beforeLastSeen = now();
  await new Promise((r) => setTimeout(r, 5));
  attr.stdin!.write(ev(2, now()));
  assert.equal((await next()).process?.pid, owner.pid);
  // The owner closes its socket and exits.
  owner.stdin!.end();
  await once(owner, 'exit');
  await new Promise((r) => setTimeout(r, 5));
  // Received while the socket was still there (it was seen held after): its owner.
  attr.stdin!.write(ev(3, beforeLastSeen));
  const e3 = await next();
  assert.equal(e3.process?.pid, owner.pid, JSON.stringify(e3.attribution));
  assert.deepEqual(e3.attribution, { method: 'sock_diag', ok: true });
  // Received after: nobody's, and said so.
  attr.stdin!.write(ev(4, now()));
  const e4 = await next();
  assert.equal(e4.process, undefined);
  assert.equal(e4.attribution.ok, false);
  assert.equal(e4.attribution.reason, 'socket-gone');
  attr.stdin!.end();
  await once(attr, 'close');
});

test('root without CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE: another user\'s socket is "no-permission", not "no-process"', async (t) => {
  assert.equal(process.getuid?.(), 0, 'run the tests as root');
  // A UDP socket held by nobody.
  const { owner, port } = await udpOwner(t, ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups']);
  const ev = JSON.stringify({ ts: new Date().toISOString(), event: 'new', id: 1, family: 'ipv4', proto: 'udp', src: '127.0.0.1', sport: port, dst: '198.51.100.7', dport: 53, reply: { src: '198.51.100.7', sport: 53, dst: '127.0.0.1', dport: port }, status: [] }) + '\n';
  // Root keeps its uid but loses the two capabilities (bounding set, so the exec'd node never has them).
  const r = await runBin('ct-attribute', [], ev, { prefix: ['setpriv', '--bounding-set=-dac_read_search,-sys_ptrace', process.execPath] });
  assert.equal(r.code, 0, r.stderr);
  const [out] = lines(r.stdout);
  assert.equal(out.process, undefined);
  assert.equal(out.attribution.reason, 'no-permission', JSON.stringify(out.attribution));
  assert.match(r.stderr, /missing CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE/);
  // With them, the owner is found.
  const full = await runBin('ct-attribute', [], ev);
  assert.equal(lines(full.stdout)[0].process?.pid, owner.pid);
});

test('--stats-interval: attribution-stats records between batches and on an idle input, counting answers by method and reason', async () => {
  const p = spawn(BIN('ct-attribute'), ['--stats-interval', '0.3', '--no-bpf'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  p.stdout!.setEncoding('utf8').on('data', (d) => (out += d));
  p.stdin!.write(EV(1, 40001) + '\n' + EV(2, 40002) + '\n');
  // Until a record came after both events (however slowly this machine starts node).
  for (let i = 0; i < 200 && !/"id":2,[^\n]*\n[^]*attribution-stats/.test(out); i++) await new Promise((r) => setTimeout(r, 50));
  p.stdin!.end();
  const [code] = await once(p, 'close');
  assert.equal(code, 0);
  const recs = lines(out);
  const stats = recs.filter((r) => r.event === 'attribution-stats');
  assert.ok(stats.length >= 1, out);
  const last = stats[stats.length - 1];
  assert.equal(last.events, 2);
  // Neither end is local: forwarded, answered by no method.
  assert.deepEqual(last.answers, { none: { forwarded: 2 } });
  assert.deepEqual(last.methods.map((m: any) => [m.method, m.live]), [['sock_diag', true], ['netns', true], ['bpf', false], ['audit', false]]);
  assert.equal(last.methods[2].why, 'turned off (--no-bpf)');
  assert.equal(recs.filter((r) => r.event === 'new').length, 2);
  assert.ok(recs.findIndex((r) => r.event === 'attribution-stats') > recs.findIndex((r) => r.id === 2), 'after the events it counts');
  const bad = await runBin('ct-attribute', ['--stats-interval', '-1'], '');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--stats-interval must be a number of seconds >= 0/);
});

test('--redact: secrets in the owner\'s command line are replaced by ***, the rest kept; off by default; --redact-pattern adds an expression', async (t) => {
  // A UDP socket held by a process whose command line carries secrets in the usual forms.
  const secrets = ['--password', 'hunter2', 'token=T0KEN', 'Authorization: Bearer abc.def', 'https://bob:pw@example.com/x?api_key=K&x=1', '-pmysqlpw', '--port', '8080'];
  const owner = spawn(process.execPath, ['-e', `
    const s = require('dgram').createSocket('udp4');
    s.bind(0, '127.0.0.1', () => process.stdout.write(s.address().port + '\\n'));
    process.stdin.on('end', () => process.exit(0)).resume();
  `, '--', ...secrets], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => owner.kill());
  const [portText] = await once(owner.stdout!.setEncoding('utf8'), 'data');
  const port = Number(String(portText).trim());
  const ev = JSON.stringify({ ts: new Date().toISOString(), event: 'new', id: 1, family: 'ipv4', proto: 'udp', src: '127.0.0.1', sport: port, dst: '198.51.100.7', dport: 53, reply: { src: '198.51.100.7', sport: 53, dst: '127.0.0.1', dport: port }, status: [] }) + '\n';
  const plain = await runBin('ct-attribute', ['--no-bpf'], ev);
  assert.equal(plain.code, 0, plain.stderr);
  assert.deepEqual(lines(plain.stdout)[0].process.cmdline.slice(-secrets.length), secrets, 'off by default');
  const r = await runBin('ct-attribute', ['--no-bpf', '--redact'], ev);
  assert.equal(r.code, 0, r.stderr);
  const [out] = lines(r.stdout);
  assert.equal(out.process.pid, owner.pid);
  assert.deepEqual(out.process.cmdline.slice(-secrets.length), ['--password', '***', 'token=***', 'Authorization: Bearer ***', 'https://bob:***@example.com/x?api_key=***&x=1', '-pmysqlpw', '--port', '8080']);
  assert.doesNotMatch(r.stdout, /hunter2|T0KEN|abc\.def|:pw@|=K&/);
  // An input already attributed (written again whole) is redacted too.
  const again = await runBin('ct-attribute', ['--no-bpf', '--redact', '--redact-pattern', '^-p(.+)'], plain.stdout);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(lines(again.stdout)[0].process.cmdline.slice(-3), ['-p***', '--port', '8080']);
  assert.doesNotMatch(again.stdout, /hunter2|T0KEN|mysqlpw/);
  const bad = await runBin('ct-attribute', ['--redact', '--redact-pattern', '(['], '');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^ct-attribute: --redact-pattern '\(\[': /);
  const without = await runBin('ct-attribute', ['--redact-pattern', 'x'], '');
  assert.equal(without.code, 2);
  assert.match(without.stderr, /--redact-pattern needs --redact/);
});

test('the fast input path (src/event/reader.ts) and the slow one (JSON.parse, CTPIPE_TEST_SLOW_PATH=1) write the same bytes and say the same things', async () => {
  const { generate } = await import(pathToFileURL(path.join(ROOT, 'bench', 'gen-events.js')).href);
  // Generated events without what ct-attribute adds (as it reads them), some attributed ones, and every NDJSON fixture's lines, hostile ones included.
  const parts: string[] = [];
  let k = 0;
  for (const line of generate(6000, 3) as Iterable<string>) {
    const ev = JSON.parse(line);
    if (k++ % 10) for (const f of ['process', 'peer', 'direction', 'attribution']) delete ev[f];
    parts.push(JSON.stringify(ev));
  }
  const input = Buffer.concat([Buffer.from(parts.join('\n') + '\n'), ndjsonFixturesInput()]);
  // A file, not a pipe: no live methods (sightings, process events), so both runs look up alike; no flow memory: every event is looked up.
  const dir = mkdtempSync(path.join(tmpdir(), 'cta-paths-'));
  const file = path.join(dir, 'in.ndjson');
  writeFileSync(file, input);
  const args = ['--no-cache', file];
  // As root, each run in a network namespace of its own, empty: the host's sockets and addresses, which other
  // programs change between the two runs, would otherwise answer some generated tuples in one run and not the other.
  const prefix = process.geteuid?.() === 0 ? ['unshare', '--net'] : undefined;
  const fast = await runBin('ct-attribute', args, '', { timeoutMs: 120000, prefix });
  const slow = await runBin('ct-attribute', args, '', { timeoutMs: 120000, prefix, env: { ...process.env, CTPIPE_TEST_SLOW_PATH: '1' } });
  assert.equal(fast.code, slow.code, `exits: ${fast.signal} ${slow.signal} ${slow.stderr.slice(-500)}`);
  assert.equal(fast.code, 1, 'the hostile fixtures have bad lines');
  // The splitter's reports (not UTF-8) and the parser's may interleave differently from run to run: compared in order of line number.
  const sorted = (t: string) => t.split('\n').sort().join('\n');
  assert.equal(sorted(fast.stderr), sorted(slow.stderr));
  assert.match(fast.stderr, /^ct-attribute: \S+in\.ndjson:\d+: /m);
  assert.ok(fast.stdout.length > 1e6 && fast.stdout === slow.stdout, `outputs differ (${fast.stdout.length} and ${slow.stdout.length} bytes)`);
});
