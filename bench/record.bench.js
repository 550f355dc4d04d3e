// ct-record writing one million generated events (bench/gen-events.js) to a
// file on disk, against `cat > file` of the same input in the same script,
// both reading the events file on stdin, and both again reading a pipe
// (`cat events | ...`), as ct-record does behind ct-attribute. ct-record
// fsyncs its file at the end; `cat > file; sync file` is shown too, so the
// fsync is counted on both sides. Prints lines per second (the median of
// RUNS runs) and the ratios;
// checks that the files are the input, byte for byte. BENCH_DIR picks the
// directory (default: the system's temporary directory; its file system
// type is printed). Note: GNU cat copies a file to a file with
// copy_file_range(2), inside the kernel, which no program that looks at its
// lines can do; the pipe figures compare like with like (read + write).
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cpus, loadavg, tmpdir } from 'node:os';
import { spawnSync, execFileSync } from 'node:child_process';
import { eventsFile } from './gen-events.js';
import { RUNS } from './lines-bench.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'ct-record');
const N = Number(process.env.EVENTS ?? 1000000);

const file = await eventsFile(N);
const size = fs.statSync(file).size;
const base = fs.mkdtempSync(path.join(process.env.BENCH_DIR ?? tmpdir(), 'ctrec-bench-'));
fs.chmodSync(base, 0o700);
let fsType = '?';
try {
  fsType = execFileSync('df', ['--output=fstype', base], { encoding: 'utf8' }).trim().split('\n').pop();
} catch { /* df without --output */ }
console.log(`${N.toLocaleString('en-US')} events (${(size / 1e6).toFixed(0)} MB), ${file}`);
console.log(`writing to ${base} (${fsType}); ${cpus().length} CPUs, load average ${loadavg()[0].toFixed(2)}`);
console.log(`the median of ${RUNS} runs each (RUNS=n to change)`);

let run = 0;
/** Time `sh -c script` with the events file on stdin; the script writes $OUT. Returns the best lines/s. */
function measure(name, script) {
  const times = [];
  let same = true;
  for (let i = 0; i < RUNS; i++) {
    const dir = path.join(base, `r${++run}`);
    fs.mkdirSync(dir, { mode: 0o700 });
    const out = path.join(dir, 'out.ndjson');
    const input = fs.openSync(file, 'r');
    const t0 = process.hrtime.bigint();
    const r = spawnSync('sh', ['-c', script], { stdio: [input, 'ignore', 'pipe'], env: { ...process.env, OUT: out, BIN, IN: file } });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    fs.closeSync(input);
    if (r.status !== 0) console.log(`${name}: exit ${r.status}: ${r.stderr.toString().slice(0, 300)}`);
    times.push(secs);
    const st = fs.statSync(out);
    if (st.size !== size) same = false;
    else if (i === 0) same = sameBytes(out, file);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  // The median run: on a shared machine one lucky run says little.
  const sorted = [...times].sort((x, y) => x - y);
  const mid = sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  const rate = N / mid;
  const all = times.length > 1 ? `  (runs: ${times.map((t) => t.toFixed(2)).join(', ')} s)` : '';
  console.log(`${name.padEnd(44)} ${mid.toFixed(2).padStart(6)} s  ${Math.round(rate).toLocaleString('en-US').padStart(10)} lines/s  ${(size / mid / 1e6).toFixed(0).padStart(5)} MB/s${same ? '' : '  OUTPUT DIFFERS'}${all}`);
  return rate;
}

function sameBytes(a, b) {
  const fa = fs.openSync(a, 'r');
  const fb = fs.openSync(b, 'r');
  const ba = Buffer.alloc(1 << 20);
  const bb = Buffer.alloc(1 << 20);
  try {
    for (;;) {
      const na = fs.readSync(fa, ba);
      const nb = fs.readSync(fb, bb);
      if (na !== nb || !ba.subarray(0, na).equals(bb.subarray(0, nb))) return false;
      if (na === 0) return true;
    }
  } finally {
    fs.closeSync(fa);
    fs.closeSync(fb);
  }
}

const rec = measure('ct-record -f out.ndjson < events', '"$BIN" -f "$OUT"');
const cat = measure('cat > out.ndjson < events', 'cat > "$OUT"');
const catSync = measure('cat > out.ndjson; sync out.ndjson', 'cat > "$OUT" && sync "$OUT"');
const recPipe = measure('cat events | ct-record -f out.ndjson', 'cat "$IN" | "$BIN" -f "$OUT"');
const catPipe = measure('cat events | cat > out.ndjson', 'cat "$IN" | cat > "$OUT"');
fs.rmSync(base, { recursive: true, force: true });
console.log('(cat from a file to a file uses copy_file_range: no copy through user space)');
console.log(`ratio ct-record / cat > file: ${(rec / cat).toFixed(2)}x from a file, ${(recPipe / catPipe).toFixed(2)}x from a pipe; / cat with sync: ${(rec / catSync).toFixed(2)}x  (target: >= 200,000 lines/s); load average now ${loadavg()[0].toFixed(2)}`);
