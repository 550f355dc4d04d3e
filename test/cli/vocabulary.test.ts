// One option vocabulary across the commands (ctpipe(7), OPTION VOCABULARY):
// a short flag means one long option in every command that has it, old
// spellings still work with a note naming the new one, and a mistyped
// option is answered with the nearest known one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runBin, FIXTURES, ROOT } from '../helpers.js';

const COMMANDS = Object.keys(JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).bin as Record<string, string>);
// Old short spellings kept for one release (ctpipe(7)); nothing else may differ.
const OLD_SHORT = new Set(['ct-events -f', 'ct-format -p', 'ct-record -t']);

test('every short flag means the same long option in every command (old spellings aside)', async () => {
  const meaning = new Map<string, Set<string>>();
  for (const cmd of COMMANDS) {
    const r = await runBin(cmd, ['--help'], null);
    assert.equal(r.code, 0, cmd);
    for (const m of r.stdout.matchAll(/^ {2}(-[A-Za-z]), (--[\w-]+)/gm)) {
      if (OLD_SHORT.has(`${cmd} ${m[1]}`)) continue;
      const set = meaning.get(m[1]) ?? new Set();
      set.add(m[2]);
      meaning.set(m[1], set);
    }
  }
  for (const [short, longs] of meaning) assert.equal(longs.size, 1, `${short} means ${[...longs].join(' and ')}`);
  assert.deepEqual([...meaning.get('-p')!], ['--proto']);
  assert.deepEqual([...meaning.get('-e')!], ['--event']);
  assert.deepEqual([...meaning.get('-t')!], ['--template']);
  assert.deepEqual([...meaning.get('-f')!], ['--file']);
});

test('old spellings work as aliases, with one note naming the new one', async () => {
  const events = readFileSync(path.join(FIXTURES, 'format', 'events.ndjson'), 'utf8');
  const now = await runBin('ct-format', ['--preset', 'kv'], events);
  const old = await runBin('ct-format', ['-p', 'kv'], events);
  assert.equal(now.stderr, '');
  assert.equal(old.code, 0);
  assert.equal(old.stdout, now.stdout);
  assert.equal(old.stderr, "ct-format: -p is now --preset (see ctpipe(7)); the old spelling goes in a later release\n");

  // ct-events --events: accepted (its value is checked, not the name).
  const ev = await runBin('ct-events', ['--events', 'bogus'], null);
  assert.equal(ev.code, 2);
  assert.match(ev.stderr, /^ct-events: --events is now --event .*\nct-events: unknown event kind 'bogus'/);

  const d = mkdtempSync(path.join(tmpdir(), 'ct-vocab-'));
  try {
    const rec = await runBin('ct-record', ['-f', path.join(d, 'x-%H%M.ndjson'), '-t', '15'], '{"a":1}\n');
    assert.equal(rec.code, 0, rec.stderr);
    assert.match(rec.stderr, /^ct-record: -t is now --minutes /);
    assert.equal(readdirSync(d).length, 1);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }

  const doc = await runBin('ct-doctor', ['--es', 'ftp://x'], null);
  assert.equal(doc.code, 2);
  assert.match(doc.stderr, /^ct-doctor: --es is now --node .*\nct-doctor: --node: .*only http/);
});

test('a mistyped option: exit 2, the nearest option named', async () => {
  const cases: [string, string[], string][] = [
    ['ct-filter', ['--protoo', 'tcp'], '--proto'],
    ['ct-events', ['--evnet', 'new'], '--event'],
    ['ct-format', ['--presett', 'kv'], '--preset'],
    ['ct-syslog', ['--tpc', 'h'], '--tcp'],
    ['ct-record', ['--minuts', '5', '-f', 'x'], '--minutes'],
    ['ct-filter', ['--no-dsn'], '--no-dns'],
  ];
  for (const [cmd, args, near] of cases) {
    const r = await runBin(cmd, args, '');
    assert.equal(r.code, 2, cmd);
    assert.equal(r.stderr, `${cmd}: Unknown argument: ${args[0].slice(2)}; did you mean ${near}?\nTry '${cmd} --help'.\n`);
  }
  // Nothing near: no guess.
  const r = await runBin('ct-filter', ['--zzzzzz'], '');
  assert.equal(r.code, 2);
  assert.equal(r.stderr, "ct-filter: Unknown argument: zzzzzz\nTry 'ct-filter --help'.\n");
});

test('help texts: no [type] glued to a description, preset names apart from their descriptions', async () => {
  for (const cmd of COMMANDS) {
    const r = await runBin(cmd, ['--help'], null);
    assert.doesNotMatch(r.stdout, /\S\[(boolean|string|number|array)\]/, cmd);
  }
  const f = await runBin('ct-format', ['--help'], null);
  assert.match(f.stdout, /^ *ctrecorder-squeeze {2,}ctrecorder's squeezed line/m);
});

test('DNS: the names switch is --dns-names in ct-events and ct-attribute; --no-dns is only ct-filter\'s drop of DNS traffic (and ct-top\'s, which takes its criteria); no --dns anywhere', async () => {
  const names: string[] = [], noDns: string[] = [];
  for (const cmd of COMMANDS) {
    const r = await runBin(cmd, ['--help'], null);
    assert.equal(r.code, 0, cmd);
    if (/^ +--dns-names\b/m.test(r.stdout)) names.push(cmd);
    if (/^ +--no-dns\b(?!-)/m.test(r.stdout)) noDns.push(cmd);
    assert.doesNotMatch(r.stdout, /^ +--dns\b(?!-)/m, cmd);
  }
  assert.deepEqual(names.sort(), ['ct-attribute', 'ct-events']);
  // ct-top selects what it counts by ct-filter's own criteria, --no-dns among them.
  assert.deepEqual(noDns.sort(), ['ct-filter', 'ct-top']);
  for (const cmd of ['ct-events', 'ct-attribute']) {
    const r = await runBin(cmd, ['--dns'], null);
    assert.equal(r.code, 2, `${cmd} --dns: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^${cmd}: Unknown argument: dns`));
  }
});
