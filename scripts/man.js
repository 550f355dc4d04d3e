// Build man pages: man/<name>.<section>.md (ronn-style Markdown) -> man/<name>.<section>, with marked-man.
// --no-breaks: a line break in the source is a space, as in Markdown, not
// a forced .br (marked-man's default turns every source line into one).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const bin = path.join(root, 'node_modules', 'marked-man', 'bin', 'marked-man.js');
const { version } = JSON.parse((await import('node:fs')).readFileSync(path.join(root, 'package.json'), 'utf8'));
for (const f of readdirSync(path.join(root, 'man'))) {
  const m = /^(.+)\.(\d)\.md$/.exec(f);
  if (!m) continue;
  const out = path.join(root, 'man', `${m[1]}.${m[2]}`);
  execFileSync(process.execPath, [bin, '--no-breaks', '--version', `ctpipe ${version}`, '--manual', 'ctpipe manual', '--output', out, path.join(root, 'man', f)], { stdio: 'inherit' });
  // marked-man leaves the HTML entities of inline code (&quot; and the like)
  // in the roff text; man would print them as they are.
  const roff = readFileSync(out, 'utf8')
    .replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')
    // A text line must not begin with a quote, roff's other control character.
    .replace(/^'/gm, "\\&'")
    // Ragged right (.na): pages quote long JSON and paths that no justified
    // line can hold, which troff reports as "cannot adjust line".
    .replace(/^(\.TH .*\n)/m, '$1.na\n')
    // ronn's definition lists ("  * `--opt` <arg>:" then the text on the
    // next lines) as man's own tagged paragraphs: the term on a line of its
    // own, the text indented below.
    .replace(/^\.IP \\\(bu 2\n(\\fB(?:(?!: ).)*):\n/gm, '.TP\n$1\n');
  writeFileSync(out, roff);
}
