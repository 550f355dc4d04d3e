// The built man pages (scripts/man.js): no HTML entities left by the
// Markdown converter, and every page renders with man(1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
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
