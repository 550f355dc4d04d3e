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
