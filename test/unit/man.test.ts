// The built man pages (scripts/man.js): no HTML entities left by the
// Markdown converter, and every page renders with man(1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { ROOT } from '../helpers.js';

const DIR = path.join(ROOT, 'man');
const pages = readdirSync(DIR).filter((f) => /\.[157]$/.test(f));

test('every man page is built, without HTML entities, and renders', () => {
  const sources = readdirSync(DIR).filter((f) => f.endsWith('.md')).map((f) => f.slice(0, -3)).sort();
  assert.deepEqual([...pages].sort(), sources);
  for (const p of pages) {
    const roff = readFileSync(path.join(DIR, p), 'utf8');
    assert.doesNotMatch(roff, /&(quot|amp|lt|gt|#39);/, p);
    const text = execFileSync('man', ['-l', path.join(DIR, p)], { env: { ...process.env, MANWIDTH: '100' }, stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    assert.match(text, /NAME/, p);
    assert.doesNotMatch(text, /&quot;/, p);
  }
  // Inline code with quotes comes out as quotes.
  const flows = execFileSync('man', ['-l', path.join(DIR, 'ct-event.5')], { env: { ...process.env, MANWIDTH: '200' } }).toString();
  assert.match(flows, /"event":"overrun"/);
});

test('no forced line breaks from the source, and groff renders every page without a warning', () => {
  for (const p of pages) {
    const roff = readFileSync(path.join(DIR, p), 'utf8');
    // Source lines are joined into paragraphs: a .br would be marked-man's
    // "breaks" turning each line of Markdown into a line of its own.
    assert.equal((roff.match(/^\.br\b/gm) ?? []).length, 0, `${p}: .br`);
    for (const width of ['80', '100']) {
      const r = spawnSync('man', ['--warnings', '-l', path.join(DIR, p)], { env: { ...process.env, MANWIDTH: width, MAN_KEEP_FORMATTING: '' }, encoding: 'utf8' });
      assert.equal(r.status, 0, p);
      assert.equal(r.stderr, '', `${p} at ${width} columns`);
      // A list item that came out empty (a wrapped line read as a new list).
      assert.doesNotMatch(r.stdout, /^\s*•\s*$/m, p);
    }
  }
  // Options are man's tagged paragraphs: the option, then its text indented below.
  const events = execFileSync('man', ['-l', path.join(DIR, 'ct-events.1')], { env: { ...process.env, MANWIDTH: '80' } }).toString();
  assert.match(events, /^ +-e, --event <kinds>\n +Comma-separated event kinds/m);
});
