// bin/ct-format as a process: templates and presets against goldens made by
// jq (test/fixtures/format/make.sh), csv/tsv/kv/notrust checked field by
// field against the JSON, special records on stderr, colour only on a
// terminal, bad lines, usage errors, EPIPE.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { spawn } from 'node:child_process';
import { runBin, BIN, FIXTURES, ROOT } from '../helpers.js';

const DIR = path.join(FIXTURES, 'format');
const EVENTS = path.join(DIR, 'events.ndjson');
const events = readFileSync(EVENTS, 'utf8');
const records = events.split('\n').filter(Boolean).map((l) => JSON.parse(l));
const golden = (name: string) => readFileSync(path.join(DIR, `${name}.golden`), 'utf8');
const MIXED = readFileSync(path.join(FIXTURES, 'filter', 'events.ndjson'), 'utf8'); // has a special record and odd values

let tmp = '';
let big = '';
before(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'ctf-fmt-'));
  const { generate } = await import(pathToFileURL(path.join(ROOT, 'bench', 'gen-events.js')).href);
  const lines: string[] = [];
  for (const l of generate(30000, 5)) lines.push(l);
  big = path.join(tmp, 'big.ndjson');
  writeFileSync(big, lines.join('\n') + '\n');
});
after(() => rmSync(tmp, { recursive: true, force: true }));

function shell(cmd: string, opts: { env?: NodeJS.ProcessEnv; sh?: string[] } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const sh = opts.sh ?? ['sh'];
    const child = spawn(sh[0], [...sh.slice(1), '-c', cmd], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    let stdout = '', stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const UTC = { env: { ...process.env, TZ: 'UTC' } };

for (const [name, args] of [['default', []], ['conntrack-logger', ['--preset', 'conntrack-logger']], ['ctrecorder', ['--preset', 'ctrecorder']], ['packettrail', ['--preset', 'packettrail']]] as [string, string[]][]) {
  test(`ct-format ${args.join(' ') || '(default)'}: the same lines as jq`, async () => {
    const r = await runBin('ct-format', args, events, UTC);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assert.equal(r.stdout, golden(name));
  });
}

test('a template as the first argument or with -t; files after it', async () => {
  const want = records.map((e) => `${e.proto} ${e.src} ${e.process?.pid ?? '?'} ${e.process?.cmdline?.length ? e.process.cmdline.join(' ') : 'none'}`).join('\n') + '\n';
  const tpl = '<proto> <src> <process.pid|?> <process.cmdline|none>';
  const a = await runBin('ct-format', [tpl], events);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(a.stdout, want);
  const b = await runBin('ct-format', ['-t', tpl, EVENTS, EVENTS]);
  assert.equal(b.stdout, want + want);
  const c = await runBin('ct-format', [tpl, EVENTS]);
  assert.equal(c.stdout, want);
});

test('placeholders of fields whose names hash alike (<extra:Aa> <extra:BB>): each value printed, the stream ends', async () => {
  const r = await runBin('ct-format', ['<extra:Aa> <extra:BB> <extra:Ab>'], '{"ts":"2026-01-01T00:00:00Z","event":"new","Aa":1,"BB":"two","Ab":3}\n{"ts":"2026-01-01T00:00:01Z","event":"new","BB":4}\n');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '1 two 3\n- 4 -\n');
});

test('--ts-format and --tz; -m for missing fields', async () => {
  const r = await runBin('ct-format', ['--ts-format', '%d/%m/%Y %H:%M:%S.%f', '--tz', 'local', '-m', 'N/A', '<ts> <process.container.name>'], events, { env: { ...process.env, TZ: 'Asia/Kolkata' } });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, records.length);
  assert.equal(lines[0], '23/11/2026 05:30:00.000205 ' + (records[0].process?.container?.name ?? 'N/A'));
  const e = await runBin('ct-format', ['--ts-format', 'epoch', '<ts>'], events);
  assert.deepEqual(e.stdout.trimEnd().split('\n'), records.map((x) => String(Math.floor(Date.parse(x.ts) / 1000))));
});

/** A small RFC 4180 reader, for checking what ct-format writes. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [], field = '', q = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (q) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') q = false;
      else field += c;
    } else if (c === '"') q = true;
    else if (c === ',') { row.push(field); field = ''; }
    else if (c === '\n') { row.push(field); rows.push(row); row = []; field = ''; }
    else field += c;
  }
  return rows;
}

const text = (v: unknown) => (v === undefined || v === null || v === '' ? '' : Array.isArray(v) ? v.join(' ') : String(v));
const at = (o: any, p: string) => p.split('.').reduce((x, k) => (x === null || x === undefined ? undefined : x[k]), o);

test('csv: a header, one row per event, every field as in the JSON', async () => {
  const r = await runBin('ct-format', ['--preset', 'csv'], events);
  assert.equal(r.code, 0, r.stderr);
  const rows = parseCsv(r.stdout);
  const header = rows[0];
  assert.ok(header.includes('process.cmdline') && header.includes('reply.src'));
  assert.equal(rows.length, records.length + 1);
  records.forEach((e, i) => header.forEach((h, j) => assert.equal(rows[i + 1][j], text(at(e, h)), `row ${i + 1} ${h}`)));
  const f = await runBin('ct-format', ['--preset', 'csv', '--fields', 'ts,dport', '--fields', 'process.user'], events);
  assert.equal(f.stdout.split('\n')[0], 'ts,dport,process.user');
  const quoted = await runBin('ct-format', ['--preset', 'csv', '--fields', 'process.cmdline'], '{"event":"new","process":{"pid":1,"cmdline":["sh","-c","echo \\"a,b\\""]}}\n');
  assert.equal(quoted.stdout, 'process.cmdline\n"sh -c echo ""a,b"""\n');
});

test('tsv: a header, tab-separated, every field as in the JSON', async () => {
  const r = await runBin('ct-format', ['--preset', 'tsv', '--fields', 'ts,src,dport,process.cmdline'], events);
  assert.equal(r.code, 0, r.stderr);
  const rows = r.stdout.replace(/\n$/, '').split('\n').map((l) => l.split('\t'));
  assert.deepEqual(rows[0], ['ts', 'src', 'dport', 'process.cmdline']);
  records.forEach((e, i) => assert.deepEqual(rows[i + 1], [e.ts, e.src, text(e.dport), text(e.process?.cmdline)]));
});

test('kv: every field of every event, dotted keys', async () => {
  const r = await runBin('ct-format', ['--preset', 'kv'], events);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, records.length);
  records.forEach((e, i) => {
    assert.ok(lines[i].startsWith(`ts=${e.ts} event=${e.event} id=${e.id} `), lines[i]);
    assert.ok(lines[i].includes(` reply.dst=${e.reply.dst} `));
    if (e.process) assert.ok(lines[i].includes(` process.pid=${e.process.pid} `));
  });
});

test('notrust: open records for new, close records for destroy carrying the open uuid, nothing for updates', async () => {
  const r = await runBin('ct-format', ['--preset', 'notrust', '--agent', '3f1e0c1e-0000-4000-8000-000000000001'], events);
  assert.equal(r.code, 0, r.stderr);
  const out = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
  const flows = records.filter((e) => e.event !== 'update');
  assert.equal(out.length, flows.length);
  const opened = new Map<string, string>();
  let matched = 0;
  out.forEach((o, i) => {
    const e = flows[i];
    assert.equal(o.agent, '3f1e0c1e-0000-4000-8000-000000000001');
    assert.equal(o.protocol, e.proto.toUpperCase());
    assert.deepEqual([o.source, o.destination, o.source_port ?? 0], [e.src, e.dst, e.sport ?? 0]);
    const key = `${e.proto} ${e.src} ${e.sport} ${e.dst} ${e.dport}`;
    if (e.event === 'new') {
      assert.match(o.uuid, /^[0-9a-f-]{36}$/);
      assert.equal(o.program_details === null, !e.process);
      opened.set(key, o.uuid);
    } else {
      assert.equal(o.uuid, opened.get(key) ?? null);
      if (o.uuid) matched++;
      opened.delete(key);
    }
  });
  assert.ok(matched > 10, 'closes carry their open uuid');
});

test('special records go to stderr as a readable line, not into the output', async () => {
  const r = await runBin('ct-format', ['<event> <src>'], MIXED);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /^start /m);
  assert.equal(r.stderr, 'ct-format: start at 2026-11-23T00:01:00.000002Z on web-1: {"version":"0.1.0"}\n');
  const o = await runBin('ct-format', [], '{"ts":"2026-11-23T00:00:01.5Z","event":"overrun","lost":12,"reason":"enobufs","host":"h"}\n{"ts":"2026-11-23T00:00:02Z","event":"stats","received":5,"written":4,"lost":1,"queued":0}\n');
  assert.equal(o.stdout, '');
  assert.equal(o.stderr, 'ct-format: overrun at 2026-11-23T00:00:01.5Z on h: 12 events lost (enobufs)\nct-format: stats at 2026-11-23T00:00:02Z: received 5, written 4, lost 1, queued 0\n');
});

test('dns records (data for ct-attribute, one per DNS answer) are skipped without a word', async () => {
  const dns = '{"ts":"2026-11-23T00:00:01Z","event":"dns","proto":"udp","client":"10.0.0.5","cport":40000,"server":"10.0.0.53","sport":53,"name":"a.test","answers":[{"addr":"10.9.9.9","ttl":60}]}\n';
  const r = await runBin('ct-format', ['<event> <dst>'], dns + '{"ts":"2026-11-23T00:00:02Z","event":"new","id":1,"family":"ipv4","proto":"tcp","src":"10.0.0.5","sport":41000,"dst":"10.9.9.9","dport":443}\n' + dns);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'new 10.9.9.9\n');
  assert.equal(r.stderr, '');
});

test('control characters from a process stay escaped on one line', async () => {
  const r = await runBin('ct-format', ['<process.comm> <process.cmdline>'], MIXED.split('\n').filter((l) => l.includes('evil')).join('\n'));
  assert.equal(r.stdout, 'evil\\x1b[31m evil line1\\nline2 tab\\there\n');
});

test('colour on a terminal only, and never with NO_COLOR', async () => {
  // script(1) gives the command a pseudo-terminal for stdout.
  const cmd = `script -qec '"${BIN('ct-format')}" "<ts> <event>" < "${EVENTS}"' /dev/null`;
  const tty = await shell(cmd, { env: { NO_COLOR: '' } });
  assert.equal(tty.code, 0, tty.stderr);
  assert.match(tty.stdout, /\x1b\[32mnew\x1b\[39m/);
  const no = await shell(cmd, { env: { NO_COLOR: '1' } });
  assert.doesNotMatch(no.stdout, /\x1b\[/);
  const flag = await shell(`script -qec '"${BIN('ct-format')}" --no-color "<ts> <event>" < "${EVENTS}"' /dev/null`, { env: { NO_COLOR: '' } });
  assert.doesNotMatch(flag.stdout, /\x1b\[/);
  const pipe = await runBin('ct-format', ['<ts> <event>'], events, { env: { ...process.env, NO_COLOR: '' } });
  assert.doesNotMatch(pipe.stdout, /\x1b/);
});

test('bad lines: named with their line number, skipped, the rest formatted; summary and exit 1', async () => {
  const good = events.split('\n')[0];
  const input = [good, '{"event":"new",', '42', '{"event":"new","ts":"yesterday","src":"x"}', '{"event":"new","ts":7}', '{"event":"new","process":"me","ts":"2026-11-23T00:00:00Z"}', good].join('\n');
  const r = await runBin('ct-format', [], input);
  assert.equal(r.code, 1);
  const want = golden('default').split('\n')[0] + '\n';
  assert.equal(r.stdout, want + want);
  const err = r.stderr.trimEnd().split('\n');
  assert.match(err[0], /^ct-format: stdin:2: not JSON: /);
  assert.match(err[1], /^ct-format: stdin:3: not a JSON object: number$/);
  assert.match(err[2], /^ct-format: stdin:4: ts: not an ISO 8601 timestamp: "yesterday"$/);
  assert.match(err[3], /^ct-format: stdin:5: ts: expected a string, got number 7$/);
  assert.match(err[4], /^ct-format: stdin:6: process: expected an object, got string "me"$/);
  assert.equal(err[5], 'ct-format: 5 bad lines skipped');
});

test('empty input: nothing (csv: the header), exit 0', async () => {
  const r = await runBin('ct-format', [], '');
  assert.deepEqual([r.code, r.stdout, r.stderr], [0, '', '']);
  const c = await runBin('ct-format', ['--preset', 'csv', '--fields', 'ts,src'], '');
  assert.deepEqual([c.code, c.stdout, c.stderr], [0, 'ts,src\n', '']);
});

async function usage(args: string[], why: RegExp) {
  const r = await runBin('ct-format', args);
  assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, why);
  assert.match(r.stderr, /Try 'ct-format --help'\.\n$/);
}

test('unknown flags and bad values: usage errors, exit 2', async () => {
  await usage(['--frobnicate'], /frobnicate/);
  await usage(['--preset', 'syslog-ng'], /syslog-ng/);
  await usage(['--preset', 'kv', '-t', '<ts>'], /not both/);
  await usage(['-t', 'no placeholder'], /has no <field> placeholder/);
  await usage(['--ts-format', 'rfc'], /--ts-format: 'rfc'/);
  await usage(['--tz', 'mars', '<ts>'], /mars/);
  await usage(['--fields', 'ts'], /--fields is for --preset csv or tsv/);
  await usage(['--preset', 'csv', '--fields', 'a b'], /not a field path/);
});

test('template typos: exit 2, nothing written, the nearest field named', async () => {
  await usage(['<process.pdi> <dts>'], /^ct-format: '<process\.pdi>' names no field of ct-event\(5\): did you mean process\.pid\? \(a field from another tool: <extra:process\.pdi>\)\n/);
  await usage(['<ts> <dts>'], /did you mean ts\?/);
  await usage(['-t', '<ts> <src'], /^ct-format: unclosed placeholder '<src' at character 6: end it with >, or write \\< for a literal <\n/);
  await usage(['<process.cmdline|process.comn>'], /did you mean process\.comm\?/);
});

test('fallback fields and fields from other tools (extra:)', async () => {
  const input = '{"event":"new","proto":"udp","geo":{"country":"NL"},"process":{"pid":12135,"comm":"getent","cmdline":[]}}\n'
    + '{"event":"new","proto":"tcp","process":{"pid":7,"comm":"curl","cmdline":["curl","-s"]}}\n';
  const r = await runBin('ct-format', ['<proto> <process.cmdline|process.comm> <extra:geo.country|?>'], input);
  assert.equal(r.stderr, '');
  assert.equal(r.code, 0);
  assert.equal(r.stdout, 'udp getent NL\ntcp curl -s ?\n');
});

test('--tz takes IANA zone names', async () => {
  const input = '{"ts":"2026-07-01T12:00:00.000001Z","event":"new"}\n{"ts":"2026-12-01T12:00:00.000001Z","event":"new"}\n';
  const r = await runBin('ct-format', ['--tz', 'Europe/Berlin', '--ts-format', '%F %T.%f %z', '<ts>'], input);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '2026-07-01 14:00:00.000001 +0200\n2026-12-01 13:00:00.000001 +0100\n');
  const iso = await runBin('ct-format', ['--tz', 'America/New_York', '<ts>'], input);
  assert.equal(iso.stdout, '2026-07-01T08:00:00.000001-04:00\n2026-12-01T07:00:00.000001-05:00\n');
  await usage(['--tz', 'Mars/Olympus_Mons', '<ts>'], /--tz: 'Mars\/Olympus_Mons' is not utc, local or a time zone name/);
});

test('--help: usage, presets, options, examples; exit 0', async () => {
  const r = await runBin('ct-format', ['--help']);
  assert.equal(r.code, 0);
  assert.equal(r.stderr, '');
  assert.match(r.stdout, /^Usage: ct-format \[options\] \[TEMPLATE\] \[file\.\.\.\]/);
  for (const s of ['conntrack-logger', 'ctrecorder', 'packettrail', 'notrust', 'kv', 'csv', 'tsv', '--template', '--preset', '--missing', '--ts-format', '--tz', '--fields', 'Examples:']) assert.ok(r.stdout.includes(s), s);
});

test('| head -1: exit 0, nothing on stderr', async () => {
  const r = await shell(`"${BIN('ct-format')}" < "${big}" | head -1 > /dev/null`, { sh: ['bash', '-o', 'pipefail'] });
  assert.equal(r.stderr, '');
  assert.equal(r.code, 0);
});

test('worker threads and one thread give the same output', async () => {
  const one = await runBin('ct-format', ['--jobs', '0', '--preset', 'ctrecorder'], readFileSync(big), UTC);
  const many = await runBin('ct-format', ['--jobs', '2', '--preset', 'ctrecorder'], readFileSync(big), UTC);
  assert.equal(one.code, 0, one.stderr);
  assert.ok(one.stdout.split('\n').length > 29000);
  assert.equal(many.stdout, one.stdout);
});
