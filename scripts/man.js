// Build man pages: man/<name>.<section>.md (ronn-style Markdown) -> man/<name>.<section>, with marked-man.
import { readdirSync } from 'node:fs';
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
}
