// bin/ct-events as a process: help, version, usage errors. These need no
// privileges (options are checked before the netlink socket is opened); the
// kernel side is in test/e2e/events.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { runBin, ROOT } from '../helpers.js';

const VERSION = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;

test('--help: usage, every option, examples; exit 0, nothing on stderr', async () => {
  for (const flag of ['--help', '-h']) {
    const r = await runBin('ct-events', [flag]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /^Usage: ct-events \[options\]/);
    for (const opt of ['--proto', '--family', '--event', '--dump', '--rcvbuf', '--queue', '--enable-tracking', '--host', '--stats-interval', '--version']) {
      assert.ok(r.stdout.includes(opt), `--help mentions ${opt}`);
    }
    assert.match(r.stdout, /Examples:/);
    assert.match(r.stdout, /ct-events -p tcp/);
  }
});

test('--version and -V print the package version', async () => {
  for (const flag of ['--version', '-V']) {
    const r = await runBin('ct-events', [flag]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout.trim(), VERSION);
    assert.equal(r.stderr, '');
  }
});

/** A usage error: exit 2, nothing on stdout, the reason then the hint on stderr. */
async function usage(args: string[], why: RegExp) {
  const r = await runBin('ct-events', args);
  assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trimEnd().split('\n');
  assert.match(lines[0], /^ct-events: /);
  assert.match(r.stderr, why);
  assert.equal(lines[lines.length - 1], "Try 'ct-events --help'.");
}

test('an unknown flag is a usage error (exit 2)', async () => {
  await usage(['--frobnicate'], /frobnicate/i);
  await usage(['-z'], /\bz\b/);
});

test('a bad -p value is a usage error naming it', async () => {
  await usage(['-p', 'tpc'], /unknown protocol 'tpc'/);
  await usage(['-p', 'tcp,bogus'], /unknown protocol 'bogus'/);
  await usage(['--proto', 'tcp', '--proto', 'xyz'], /unknown protocol 'xyz'/);
});

test('other bad values are usage errors', async () => {
  await usage(['-e', 'new,created'], /unknown event kind 'created'/);
  await usage(['-e', ','], /at least one event kind/);
  await usage(['-f', 'ipv5'], /ipv5/);
  await usage(['--queue', '0'], /--queue must be a positive whole number/);
  await usage(['--queue', '1.5'], /--queue/);
  await usage(['--stats-interval', '-1'], /--stats-interval/);
  await usage(['--stats-interval', 'soon'], /--stats-interval/);
});
