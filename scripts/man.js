// Build man pages: man/<name>.<section>.md (ronn-style Markdown) -> man/<name>.<section>, with marked-man.
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
  execFileSync(process.execPath, [bin, '--version', `ctpipe ${version}`, '--manual', 'ctpipe manual', '--output', out, path.join(root, 'man', f)], { stdio: 'inherit' });
  // marked-man leaves the HTML entities of inline code (&quot; and the like)
  // in the roff text; man would print them as they are.
  const roff = readFileSync(out, 'utf8')
    .replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')
    // A text line must not begin with a quote, roff's other control character.
    .replace(/^'/gm, "\\&'");
  writeFileSync(out, roff);
}
