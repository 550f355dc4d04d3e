// Index name patterns (src/es/index-name.ts) and deterministic document ids
// (src/es/doc-id.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePattern, invalidIndexName } from '../../src/es/index-name.js';
import { documentId } from '../../src/es/doc-id.js';

test('date parts come from the event time, in UTC', () => {
  const p = compilePattern('ct-%Y.%m.%d');
  assert.equal(p.format('2026-11-23T23:59:59.999999Z'), 'ct-2026.11.23');
  assert.equal(p.format('2026-11-24T00:00:00.000000Z'), 'ct-2026.11.24');
  assert.equal(p.format('2026-11-23T23:30:00-02:00'), 'ct-2026.11.24', 'an offset is converted to UTC');
  assert.equal(p.format('2026-11-24T00:30:00+01:00'), 'ct-2026.11.23');
  assert.equal(p.format('not a time'), null);
  assert.equal(p.wildcard, 'ct-*');
  assert.ok(p.dated);
  // The cache keyed by the date prefix gives the right name when the day changes back and forth.
  assert.equal(p.format('2026-11-23T10:00:00Z'), 'ct-2026.11.23');
  assert.equal(p.format('2026-11-24T10:00:00Z'), 'ct-2026.11.24');
});

test('hours, two-digit years, days of the year, ISO weeks, literal %', () => {
  assert.equal(compilePattern('ct-%Y.%m.%d.%H').format('2026-11-23T07:41:33.965873Z'), 'ct-2026.11.23.07');
  assert.equal(compilePattern('ct-%y%m').format('2026-01-05T00:00:00Z'), 'ct-2601');
  assert.equal(compilePattern('ct-%Y-%j').format('2026-12-31T12:00:00Z'), 'ct-2026-365');
  assert.equal(compilePattern('ct-%Y-%j').format('2028-12-31T12:00:00Z'), 'ct-2028-366');
  const w = compilePattern('ct-%G.%V');
  assert.equal(w.format('2026-01-01T00:00:00Z'), 'ct-2026.01', 'a Thursday: week 1');
  assert.equal(w.format('2027-01-01T00:00:00Z'), 'ct-2026.53', 'a Friday: still the last week of 2026');
  assert.equal(w.format('2024-12-30T00:00:00Z'), 'ct-2025.01', 'a Monday in week 1 of 2025');
  assert.equal(w.wildcard, 'ct-*');
  assert.equal(compilePattern('ct-%%-%Y').format('2026-01-01T00:00:00Z'), 'ct-%-2026');
  const fixed = compilePattern('connections');
  assert.equal(fixed.format('2026-01-01T00:00:00Z'), 'connections');
  assert.equal(fixed.dated, false);
  assert.equal(fixed.wildcard, 'connections');
});

test('patterns that make names Elasticsearch refuses are errors at once', () => {
  assert.throws(() => compilePattern('CT-%Y'), /lower case/);
  assert.throws(() => compilePattern('ct-%Q'), /unknown date part %Q/);
  assert.throws(() => compilePattern('ct-%'), /lone %/);
  assert.throws(() => compilePattern('ct %Y'), /must not contain ' '/);
  assert.throws(() => compilePattern('_ct-%Y'), /must not start/);
  assert.throws(() => compilePattern('ct/%Y'), /must not contain '\/'/);
  assert.throws(() => compilePattern('x'.repeat(256)), /255 bytes/);
});

test('invalidIndexName', () => {
  assert.equal(invalidIndexName('logs-ctpipe-default'), null);
  assert.equal(invalidIndexName('ünïcode'), null);
  assert.match(invalidIndexName('..')!, /not allowed/);
  assert.match(invalidIndexName('')!, /empty/);
  assert.match(invalidIndexName('a,b')!, /','/);
  assert.match(invalidIndexName('a:b')!, /':'/);
});

const flow = { ts: '2026-11-24T00:00:01.250000Z', event: 'destroy', id: 1934007538, zone: 0, family: 'ipv4', proto: 'tcp', src: '10.0.0.5', sport: 38064, dst: '93.184.216.34', dport: 443, state: 'TIME_WAIT', host: 'web-1' };

test('a document id is stable, URL-safe, and changes with what identifies the event', () => {
  const line = JSON.stringify(flow);
  const id = documentId(flow, line);
  assert.match(id, /^[A-Za-z0-9_-]{27}$/);
  assert.equal(documentId({ ...flow }, line), id);
  // What later stages add does not change it: attributing a recording again gives the same ids.
  const attributed = { ...flow, direction: 'out', process: { pid: 1 }, attribution: { ok: true } };
  assert.equal(documentId(attributed, JSON.stringify(attributed)), id);
  const others = [
    { ts: '2026-11-24T00:00:01.250001Z' }, { event: 'update' }, { id: 1934007539 }, { host: 'web-2' }, { zone: 1 },
    { proto: 'udp' }, { src: '10.0.0.6' }, { sport: 38065 }, { dst: '93.184.216.35' }, { dport: 444 }, { state: 'CLOSE' },
  ];
  const seen = new Set([id]);
  for (const o of others) {
    const e = { ...flow, ...o };
    const x = documentId(e, JSON.stringify(e));
    assert.ok(!seen.has(x), `changing ${JSON.stringify(o)} must change the id`);
    seen.add(x);
  }
});

test('special records are identified by their whole line', () => {
  const a = { ts: '2026-11-24T00:00:04Z', event: 'overrun', lost: 12, host: 'web-1' };
  const b = { ...a, lost: 13 };
  assert.notEqual(documentId(a, JSON.stringify(a)), documentId(b, JSON.stringify(b)));
  assert.equal(documentId(a, JSON.stringify(a)), documentId(a, JSON.stringify(a)));
});
