// ct-filter's and ct-format's fast path (lineBytes: the fields they read,
// from the line's bytes, src/event/reader.ts) against their slow path
// (line(): JSON.parse of the whole line): for many criteria, every preset
// and some templates, on every NDJSON fixture's lines and on generated
// events, the same answer for every line and the same reports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createProcessor as filterProcessor } from '../../src/filter/processor.js';
import { createProcessor as formatProcessor, type FormatProcessorOptions } from '../../src/format/processor.js';
import { PRESETS } from '../../src/format/template.js';
import type { Diag, LineProcessor } from '../../src/lines/chunk.js';
import type { FilterSpec } from '../../src/filter/match.js';
import { ROOT, ndjsonFixtureFiles, bufferLines } from '../helpers.js';

async function corpus(): Promise<Buffer[]> {
  const out: Buffer[] = [];
  const { generate } = await import(pathToFileURL(path.join(ROOT, 'bench', 'gen-events.js')).href);
  for (const line of generate(5000, 5) as Iterable<string>) out.push(Buffer.from(line));
  for (const f of ndjsonFixtureFiles()) out.push(...bufferLines(readFileSync(f)));
  return out;
}

/** Each line through a fresh processor's lineBytes (falling back to line()) and another's line(): answers and reports must agree. */
function compare(name: string, make: () => LineProcessor, lines: Buffer[]): number {
  const fast = make(), slow = make();
  assert.ok(fast.lineBytes, `${name}: has a fast path`);
  let taken = 0;
  for (const b of lines) {
    if (b.length === 0 || b[0] !== 123) continue;
    const text = b.toString('utf8');
    if (Buffer.from(text).compare(b) !== 0) continue; // not UTF-8: skipped before either path (chunk.ts)
    const fr: Diag[] = [], sr: Diag[] = [];
    let f = fast.lineBytes!(b, 0, b.length, (d) => fr.push(d));
    if (f !== undefined) taken++;
    else f = fast.line(text, (d) => fr.push(d));
    const s = slow.line(text, (d) => sr.push(d));
    assert.deepEqual(f, s, `${name}: ${text.slice(0, 300)}`);
    // A processor that writes its output itself (ct-format): the same bytes.
    assert.equal(fast.flush?.().toString('utf8'), slow.flush?.().toString('utf8'), `${name}: output of ${text.slice(0, 300)}`);
    assert.deepEqual(fr, sr, `${name}: reports on ${text.slice(0, 300)}`);
  }
  return taken;
}

const FILTERS: Omit<FilterSpec, 'self'>[] = [
  {}, { proto: ['tcp'], dport: ['443'] }, { port: ['53', '5353'] }, { net: ['10.0.0.0/8', '2001:db8::/32'] }, { src: ['10.0.0.5'] }, { dst: ['93.184.216.34'] },
  { event: ['new', 'destroy'] }, { event: ['special'] }, { user: ['alice'] }, { uid: ['0-100'] }, { comm: ['curl', 'python*'] }, { exe: ['/usr/bin/*'] }, { unit: ['ssh.service'] },
  { container: ['web'] }, { domain: ['example.com'] }, { direction: ['in'] }, { noDns: true }, { noMulticast: true, broadcast: ['10.0.0.255'] }, { noLoopback: true },
  { noUnattributed: true }, { noSpecial: true }, { proto: ['udp'], invert: true }, { sport: ['1024-65535'], ancestor: ['sshd'] },
];

test('ct-filter: the fast path decides as the slow one, for every criterion, on fixtures and generated events', async () => {
  const lines = await corpus();
  for (const spec of FILTERS) {
    const taken = compare(`filter ${JSON.stringify(spec)}`, () => filterProcessor({ spec }), lines);
    assert.ok(taken > 4000, `filter ${JSON.stringify(spec)}: ${taken} lines on the fast path`);
  }
});

test('ct-format: the fast path renders as the slow one, for every preset that names its fields and some templates', async () => {
  const lines = await corpus();
  const formats: FormatProcessorOptions[] = [
    ...Object.keys(PRESETS).filter((p) => p !== 'kv').map((preset) => ({ preset, options: preset === 'notrust' ? { uuid: () => 'u' } : {} })),
    { preset: 'csv', options: { fields: ['ts', 'process.cmdline', 'counters.orig.bytes', 'reply'] } },
    { template: '<ts> <event> <proto> <src>:<sport|-> <dns.name> <process.ancestors> <counters> <status> <unknown.x>', options: { tsFormat: 'epoch-ms' } },
    { template: '<start> <stop> <process.start_time> <labels.0> <icmp.type>', options: { tsFormat: '%H:%M:%S.%f', tz: 'utc' } },
  ];
  for (const o of formats) {
    const taken = compare(`format ${JSON.stringify(o)}`, () => formatProcessor(o), lines);
    assert.ok(taken > 4000, `format ${JSON.stringify(o)}: ${taken} lines on the fast path`);
  }
  // kv shows every field: it parses every line whole.
  assert.equal(formatProcessor({ preset: 'kv', options: {} }).lineBytes, undefined);
});

/** Generated events with tricky values put in the fields the formats show: what the byte renderers copy must be what the slow path writes. */
async function trickyCorpus(): Promise<Buffer[]> {
  const { generate, rng } = await import(pathToFileURL(path.join(ROOT, 'bench', 'gen-events.js')).href);
  const r = rng(99);
  const VALUES: unknown[] = ['', 'x\u007fy', 'é', 'tab\there', 'new\nline', '\u0085c1', '=SUM(1)', '+1', '-5', '-x', '@me', 'a,b', 'say "hi"', 'back\\slash', '2001:db8::1',
    null, 0, -0, 1.5, 1e21, 1.0, 12345678901234567, true, false, [], [''], ['a', 'b c'], ['x', null, 3, { y: 1 }], ['=cmd', 'p'], ['é', 'ü'], ['\u007f'], {}, { k: 'v' },
    '2026-11-23T07:41:33Z', '2026-11-23 07:41:33.1+02:00', '2026-13-40T25:61:61.000000Z', '2026-11-23T07:41:33.965873Z', 'not a time', 42, 443.0, -1, 70000];
  const SPOTS = ['ts', 'src', 'sport', 'dst', 'dport', 'family', 'proto', 'status', 'host', 'state', 'start', 'stop',
    'process.pid', 'process.user', 'process.group', 'process.unit', 'process.cmdline', 'process.comm', 'process.exe', 'process.uid', 'process.container',
    'reply.src', 'reply.sport', 'reply.dst', 'reply.dport', 'process', 'reply'];
  const out: Buffer[] = [];
  for (const line of generate(3000, 17) as Iterable<string>) {
    const ev = JSON.parse(line);
    for (let k = 0, n = 1 + Math.floor(r() * 3); k < n; k++) {
      const spot = SPOTS[Math.floor(r() * SPOTS.length)].split('.');
      const v = VALUES[Math.floor(r() * VALUES.length)];
      if (spot.length === 1) ev[spot[0]] = v;
      else if (ev[spot[0]] && typeof ev[spot[0]] === 'object') ev[spot[0]][spot[1]] = v;
    }
    if (r() < 0.2) ev.status = r() < 0.5 ? ['SEEN_REPLY', 'ASSURED'] : ['SEEN_\u0052EPLY'];
    let text = JSON.stringify(ev);
    // Some with an escape written another way, or a key repeated.
    if (r() < 0.1) text = text.replace('"SEEN_REPLY"', '"SEEN_\\u0052EPLY"');
    if (r() < 0.05) text = text.slice(0, -1) + ',"src":"10.9.9.9"}';
    out.push(Buffer.from(text));
  }
  return out;
}

test('ct-format: the fast path writes what the slow one writes for tricky values, in every format it has', async () => {
  const lines = [...await trickyCorpus(), ...await corpus()];
  const formats: FormatProcessorOptions[] = [
    ...Object.keys(PRESETS).filter((p) => p !== 'kv').map((preset) => ({ preset, options: preset === 'notrust' ? { uuid: () => 'u' } : {} })),
    { preset: 'ctrecorder', options: { tz: 'utc', missing: '?' } },
    { preset: 'csv', options: { tsFormat: '%n%Y' } },
    { preset: 'tsv', options: { tsFormat: 'epoch-us', missing: 'NA' } },
    { preset: 'csv', options: { fields: ['process.cmdline', 'status', 'process', 'reply.sport', 'start'] } },
    { template: '<ts>|<process.cmdline|process.comm|?>|<start|ts>|<process.pid|-> <process> <reply>', options: { tsFormat: 'epoch', missing: '' } },
    { template: '<ts> <stop>', options: { tsFormat: 'iso', tz: 'Europe/Berlin' } },
    { template: '<ts> <src>', options: { tsFormat: '%Y-%m-%d %H:%M:%S.%L %z', tz: 'local' } },
  ];
  for (const o of formats) compare(`format ${JSON.stringify(o)}`, () => formatProcessor(o), lines);
});
