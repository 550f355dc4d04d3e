// bin/ct-syslog as a process, against a TCP syslog collector made here:
// the exact messages for the fixture events in each format (goldens checked
// by hand against RFC 5424 section 6 and RFC 3164 section 4.1), bad lines,
// usage errors, empty input, EPIPE. rsyslog itself is in test/e2e.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { runBin, BIN, FIXTURES, ROOT, ndjsonFixturesInput } from '../helpers.js';
import { OctetReader } from '../../src/syslog/framing.js';

const DIR = path.join(FIXTURES, 'syslog');
const events = readFileSync(path.join(DIR, 'events.ndjson'), 'utf8');
const golden = (name: string) => readFileSync(path.join(DIR, `${name}.golden`), 'utf8');
const UTC = { env: { ...process.env, TZ: 'UTC' } };

let srv: net.Server;
let port = 0;
/** Messages by the APP-NAME/TAG each test gives, so tests do not see each other's. */
const got: string[] = [];
let tmp = '';

before(async () => {
  srv = net.createServer((s) => {
    const r = new OctetReader();
    s.on('data', (d) => { for (const m of r.push(d)) got.push(m.toString()); });
  });
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', () => res()));
  port = (srv.address() as net.AddressInfo).port;
  tmp = mkdtempSync(path.join(tmpdir(), 'ct-syslog-cli-'));
});
after(() => {
  srv.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function messages(tag: string, n: number): Promise<string[]> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const mine = got.filter((m) => m.includes(` ${tag} `) || m.includes(` ${tag}[`));
    if (mine.length >= n || Date.now() > deadline) return mine;
    await new Promise((r) => setTimeout(r, 20));
  }
}

const tcp = () => ['--tcp', `127.0.0.1:${port}`, '--procid', '4242'];

for (const [name, args] of [
  ['rfc5424', []],
  ['rfc5424-sd', ['--sd', '--facility', 'local3', '--severity', 'notice', '--severity', 'destroy=debug']],
  ['rfc3164', ['--format', 'rfc3164']],
  ['template', ['--template', '<event> <proto> <src>/<sport> > <dst>/<dport> <process.user|-> <process.cmdline|->']],
  ['cee', ['--cee', '--hostname', 'override.example']],
] as [string, string[]][]) {
  test(`ct-syslog ${args.join(' ') || '(default)'}: the golden messages`, async () => {
    const tag = `ct-${name}`;
    const r = await runBin('ct-syslog', [...tcp(), '--app-name', tag, ...args], events, UTC);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assert.equal(r.stdout, '', 'nothing on stdout');
    const mine = await messages(tag, 5);
    if (process.env.CT_UPDATE_GOLDEN === '1') writeFileSync(path.join(DIR, `${name}.golden`), mine.join('\n') + '\n');
    assert.equal(mine.join('\n') + '\n', golden(name));
  });
}

test('a bad line is named by its number and skipped, the rest is sent, exit 1', async () => {
  const input = readFileSync(path.join(DIR, 'bad-line.ndjson'), 'utf8');
  const r = await runBin('ct-syslog', [...tcp(), '--app-name', 'ct-bad', '--input', 'json'], input);
  assert.equal(r.code, 1);
  const lines = r.stderr.trim().split('\n');
  assert.match(lines[0], /^ct-syslog: stdin:2: not JSON: /);
  assert.match(lines[1], /^ct-syslog: stdin:3: not JSON: /);
  assert.equal(lines[2], 'ct-syslog: 2 bad input lines skipped');
  const mine = await messages('ct-bad', 2);
  assert.deepEqual(mine.map((m) => m.split(' ')[5]), ['new', 'destroy']);
  // With --input auto, a line that does not start with { is text.
  const a = await runBin('ct-syslog', [...tcp(), '--app-name', 'ct-auto'], input);
  assert.equal(a.code, 1);
  assert.match(a.stderr, /^ct-syslog: stdin:2: not JSON: /);
  assert.doesNotMatch(a.stderr, /stdin:3/);
  assert.ok((await messages('ct-auto', 3)).some((m) => m.endsWith(' - - not an event at all')));
});

test('empty input: nothing sent, nothing said, exit 0', async () => {
  const before = got.length;
  const r = await runBin('ct-syslog', [...tcp(), '--app-name', 'ct-empty'], '');
  assert.equal(r.code, 0);
  assert.equal(r.stderr, '');
  assert.equal(got.length, before);
});

test('usage errors exit 2 with a hint', async () => {
  for (const args of [
    ['--no-such-flag'],
    ['--tcp', 'a', '--udp', 'b'],
    ['--tcp', 'a:99999'],
    ['--udp', 'a', '--sd', '--format', 'rfc3164'],
    ['--facility', 'nope'],
    ['--severity', 'overrun=loud'],
    ['--template', '<src>', '--cee'],
    ['--tcp', 'a', '--ca', 'x.pem'],
    ['--tls', 'a', '--cert', 'c.pem'],
    ['--queue', '0'],
    ['--sd-id', 'bad id'],
    ['--relp', 'a', '--ca', 'x.pem'],
    ['--tcp', 'a', '--relp-tls'],
    ['--tcp', 'a', '--rate', '100/s'],
    ['--udp', 'a', '--rate', 'fast'],
  ]) {
    const r = await runBin('ct-syslog', args, '');
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^ct-syslog: .*\nTry 'ct-syslog --help'\.\n$/);
  }
});

test('a template typo is a usage error naming the nearest field, as in ct-format (one engine)', async () => {
  const r = await runBin('ct-syslog', ['--udp', '127.0.0.1:9', '-t', '<proto> <process.pdi>'], '');
  assert.equal(r.code, 2);
  assert.equal(r.stderr, "ct-syslog: '<process.pdi>' names no field of ct-event(5): did you mean process.pid? (a field from another tool: <extra:process.pdi>)\nTry 'ct-syslog --help'.\n");
  const u = await runBin('ct-syslog', ['--udp', '127.0.0.1:9', '-t', '<proto> <src'], '');
  assert.equal(u.code, 2);
  assert.match(u.stderr, /^ct-syslog: unclosed placeholder '<src' at character 9/);
});

test('no syslog daemon: says so in one line, and keeps trying until the drain limit', async () => {
  const sock = path.join(tmpdir(), `ct-no-daemon-${process.pid}.sock`);
  const r = await runBin('ct-syslog', ['--unix', sock, '--drain-timeout', '1'], '{"event":"new"}\n');
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`^ct-syslog: no syslog daemon is listening on ${sock.replace(/[.]/g, '\\.')}; retrying\n`));
});

test('--help shows every transport with examples; --version', async () => {
  const r = await runBin('ct-syslog', ['--help'], '');
  assert.equal(r.code, 0);
  for (const w of ['--udp', '--tcp', '--tls', '--relp', '--unix', '--framing', '--queue', '--drop-when-full', '--drain-timeout', 'Examples:']) assert.ok(r.stdout.includes(w), w);
  const v = await runBin('ct-syslog', ['--version'], '');
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^\d+\.\d+\.\d+/);
});

test('a missing TLS file is a runtime failure naming it', async () => {
  const r = await runBin('ct-syslog', ['--tls', '127.0.0.1:1', '--ca', path.join(tmp, 'none.pem')], '');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^ct-syslog: CA file .*none\.pem: ENOENT\n$/);
});

test('| head -1: exit 0, nothing on stderr (ct-syslog writes no stdout)', async () => {
  const big = path.join(tmp, 'big.ndjson');
  writeFileSync(big, events.repeat(4000));
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const c = spawn('sh', ['-c', `"${BIN('ct-syslog')}" --tcp 127.0.0.1:${port} --app-name ct-head < "${big}" | head -1`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    c.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    c.stdout.resume();
    c.on('close', (code) => resolve({ code, stderr }));
  });
  assert.equal(r.code, 0);
  assert.equal(r.stderr, '');
  assert.equal((await messages('ct-head', 20000)).length, 20000);
});

/** Every message with this tag, once no new one has come for 300 ms. */
async function settled(tag: string): Promise<string[]> {
  let n = -1;
  for (;;) {
    const mine = got.filter((m) => m.includes(` ${tag} `) || m.includes(` ${tag}[`));
    if (mine.length === n) return mine;
    n = mine.length;
    await new Promise((r) => setTimeout(r, 300));
  }
}

test('the fast path (an event line read from its bytes, src/event/reader.ts) and the slow one (parsed whole, CTPIPE_TEST_SLOW_PATH=1) send the same messages and say the same things', async () => {
  const { generate } = await import(pathToFileURL(path.join(ROOT, 'bench', 'gen-events.js')).href);
  // Generated events, some spaced out or with keys reordered (parsed whole
  // on either path), some with long command lines (shortened to fit), and
  // every NDJSON fixture's lines, hostile ones included.
  const parts: string[] = [];
  let k = 0;
  for (const line of generate(3000, 7) as Iterable<string>) {
    k++;
    if (k % 17 === 0) parts.push(line.replace(/":/g, '": '));
    else if (k % 13 === 0) parts.push(JSON.stringify(Object.fromEntries(Object.entries(JSON.parse(line)).reverse())));
    else if (k % 11 === 0) {
      const ev = JSON.parse(line);
      if (ev.process) ev.process.cmdline = ['/bin/sh', '-c', 'x'.repeat(3000)];
      parts.push(JSON.stringify(ev));
    } else parts.push(line);
  }
  const input = Buffer.concat([Buffer.from(parts.join('\n') + '\n'), ndjsonFixturesInput()]);
  const sorted = (t: string) => t.split('\n').sort().join('\n');
  for (const [name, extra] of [['json', []], ['sd', ['--sd']], ['cee', ['--cee', '--max-size', '1500']], ['rfc3164', ['--format', 'rfc3164']]] as [string, string[]][]) {
    const run = async (slow: boolean) => {
      const tag = `paths-${name}-${slow ? 'slow' : 'fast'}`;
      const r = await runBin('ct-syslog', [...tcp(), '--app-name', tag, ...extra], input, { timeoutMs: 60000, env: { ...process.env, TZ: 'UTC', ...(slow ? { CTPIPE_TEST_SLOW_PATH: '1' } : {}) } });
      // A line without a "ts" string (text, or an event with another type
      // there) has the time it was sent in its header.
      const now = (m: string) => {
        const r5424 = /^(<\d+>1 )(\S+) /.exec(m);
        if (r5424) return m.includes(`"ts":"${r5424[2]}"`) ? m : m.replace(r5424[0], `${r5424[1]}NOW `);
        return /TAG\[\d+\]: \{"ts":"/.test(m) ? m : m.replace(/^(<\d+>)\w{3} [ \d]\d \d\d:\d\d:\d\d /, '$1NOW ');
      };
      return { ...r, msgs: (await settled(tag)).map((m) => now(m.split(tag).join('TAG'))) };
    };
    const fast = await run(false);
    const slow = await run(true);
    assert.equal(fast.code, 1, `${name}: the hostile fixtures have bad lines`);
    assert.equal(slow.code, fast.code, name);
    assert.equal(sorted(fast.stderr), sorted(slow.stderr), name);
    assert.match(fast.stderr, /^ct-syslog: stdin:\d+: /m);
    assert.ok(fast.msgs.length > 3000, `${name}: ${fast.msgs.length} messages`);
    assert.deepEqual(fast.msgs, slow.msgs, name);
    if (name === 'cee') assert.ok(fast.msgs.some((m) => m.includes('"truncated":["process.cmdline"]')), 'long command lines shortened on both paths');
  }
});

test('a saved file on stdin (read 1 MiB at a time) sends what the same bytes through a pipe send, in order, and says the same things', async () => {
  const { generate } = await import(pathToFileURL(path.join(ROOT, 'bench', 'gen-events.js')).href);
  // About 5 MB: lines cut by the 1 MiB reads, then the hostile fixtures.
  const input = Buffer.concat([Buffer.from([...(generate(6000, 3) as Iterable<string>)].join('\n') + '\n'), ndjsonFixturesInput()]);
  const file = path.join(tmp, 'saved.ndjson');
  writeFileSync(file, input);
  const fromFile = async (tag: string) => {
    const fd = openSync(file, 'r');
    const child = spawn(BIN('ct-syslog'), [...tcp(), '--app-name', tag], { stdio: [fd, 'ignore', 'pipe'], env: UTC.env });
    closeSync(fd);
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((res) => child.on('close', res));
    return { code, stderr };
  };
  const f = await fromFile('saved-file');
  const p = await runBin('ct-syslog', [...tcp(), '--app-name', 'saved-pipe'], input, UTC);
  const sent = async (tag: string) => (await settled(tag)).map((m) => m.split(tag).join('TAG').replace(/^(<\d+>1 )(\S+) (?!.*"ts":"\2")/, '$1NOW '));
  const [a, b] = [await sent('saved-file'), await sent('saved-pipe')];
  assert.equal(f.code, 1, 'the hostile fixtures have bad lines');
  assert.equal(f.code, p.code);
  // Lines the splitter refuses are reported as it cuts a chunk, others as they are encoded: the order between the two follows the chunks.
  const sorted = (t: string) => t.split('\n').sort().join('\n');
  assert.equal(sorted(f.stderr), sorted(p.stderr));
  assert.ok(a.length > 6000, `${a.length} messages`);
  assert.deepEqual(a, b);
});
