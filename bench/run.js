// npm run bench [-- name...]: run bench/<name>.bench.js (all of them by default), one after another.
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const dir = path.dirname(fileURLToPath(import.meta.url));
const want = process.argv.slice(2);
const all = readdirSync(dir).filter((f) => f.endsWith('.bench.js')).sort();
const pick = want.length ? all.filter((f) => want.some((w) => f.startsWith(w))) : all;
let failed = 0;
for (const f of pick) {
  console.log(`\n== ${f}`);
  const r = spawnSync(process.execPath, [path.join(dir, f)], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exitCode = failed ? 1 : 0;
