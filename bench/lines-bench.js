// Shared by filter.bench.js and format.bench.js: time a command line that
// reads a file on stdin and writes to /dev/null, and print lines per second.
// The machine may be shared (CI, other engineers): each figure is the median
// of RUNS runs (default 3), with every run's time and the load average.
import { spawnSync } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';

/** Run `cmd args < file > /dev/null`; returns seconds of wall time (and stderr). */
export function timeRun(cmd, args, file, env = process.env) {
  const input = openSync(file, 'r');
  const out = openSync('/dev/null', 'w');
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: [input, out, 'pipe'], env, maxBuffer: 64 << 20 });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  closeSync(input);
  closeSync(out);
  if (r.error) throw r.error;
  return { secs, status: r.status, stderr: r.stderr.toString() };
}

/** Output of a command on a small input, for checking that two commands agree. */
export function output(cmd, args, input) {
  const r = spawnSync(cmd, args, { input, maxBuffer: 1 << 30 });
  if (r.error) throw r.error;
  return r.stdout.toString();
}

/** Runs per measurement; the median is kept. */
export const RUNS = Math.max(1, Number(process.env.RUNS ?? 3));

/** Time `runs` runs; print the median as lines/s, with every run's time. Returns the median rate. */
export function measure(name, lines, cmd, args, file, runs = RUNS) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const r = timeRun(cmd, args, file);
    if (r.status !== 0) console.log(`${name}: exit ${r.status}: ${r.stderr.slice(0, 300)}`);
    times.push(r.secs);
  }
  // The median run, not the best: one lucky run on a shared machine says little.
  const sorted = [...times].sort((a, b) => a - b);
  const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  const rate = lines / median;
  const all = times.length > 1 ? `  (runs: ${times.map((t) => t.toFixed(2)).join(', ')} s)` : '';
  console.log(`${name.padEnd(44)} ${median.toFixed(2).padStart(7)} s  ${Math.round(rate).toLocaleString('en-US').padStart(10)} lines/s${all}`);
  return rate;
}

// ---------------------------------------------------------------- latency
//
// The time a line takes through a command on a live stream, against `cat`
// in the same place: the line engine may hold output for a while to write
// it in fewer, larger writes (the Gate in src/lines/run.ts). A writer
// process feeds a FIFO at a steady rate, in writes of `batch` lines, each
// line stamped (an extra field, which the commands pass through) with the
// monotonic clock just before its write; this process reads the command's
// output from another FIFO and notes, for every line that comes out, the
// clock minus its stamp. Both clocks are CLOCK_MONOTONIC (process.hrtime),
// the same in both processes.

const WRITER = `
import fs from 'node:fs';
const [fifo, rate, batch, n, file] = process.argv.slice(1);
const lines = fs.readFileSync(file, 'latin1').split('\\n').filter(Boolean);
const fd = fs.openSync(fifo, 'w');
// The command's start (module loading, a second or so on a busy machine) is not a line's latency.
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500);
const us = () => Number(process.hrtime.bigint() / 1000n);
const sleep = new Int32Array(new SharedArrayBuffer(4));
const t0 = us();
for (let i = 0; i < +n; i += +batch) {
  const due = t0 + (i * 1e6) / +rate;
  for (let now = us(); now < due; now = us()) if (due - now > 300) Atomics.wait(sleep, 0, 0, (due - now - 200) / 1000);
  const now = us();
  let s = '';
  for (let k = i; k < Math.min(+n, i + +batch); k++) { const l = lines[k % lines.length]; s += l.slice(0, -1) + ',"x_sent":' + now + '}\\n'; }
  fs.writeSync(fd, s);
}
fs.closeSync(fd);
`;

/**
 * Feed `cmd args` `n` lines of `file` at `rate` lines/s in writes of
 * `batch`; returns the delays of the lines that came out (ms, sorted).
 */
export async function delays(cmd, args, file, { rate, batch, n }) {
  const { spawn, execFileSync } = await import('node:child_process');
  const fs = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = fs.mkdtempSync(`${tmpdir()}/ct-latency-`);
  const fin = `${dir}/in`, fout = `${dir}/out`;
  execFileSync('mkfifo', [fin, fout]);
  try {
    const child = spawn('sh', ['-c', 'i=$1 o=$2; shift 2; exec "$@" < "$i" > "$o"', 'sh', fin, fout, cmd, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
    const writer = spawn(process.execPath, ['--input-type=module', '-e', WRITER, fin, String(rate), String(batch), String(n), file], { stdio: ['ignore', 'ignore', 'inherit'] });
    const exited = Promise.all([new Promise((r) => child.on('exit', r)), new Promise((r) => writer.on('exit', r))]);
    const out = [];
    let rest = '';
    const us = () => Number(process.hrtime.bigint() / 1000n);
    await new Promise((resolve, reject) => {
      const rs = fs.createReadStream(fout, { encoding: 'latin1', highWaterMark: 1 << 20 });
      rs.on('data', (s) => {
        const now = us();
        const text = rest + s;
        const last = text.lastIndexOf('\n');
        rest = text.slice(last + 1);
        for (let at = text.indexOf('"x_sent":'); at >= 0 && at < last; at = text.indexOf('"x_sent":', at + 9)) {
          out.push((now - Number(text.slice(at + 9, text.indexOf('}', at)))) / 1000);
        }
      });
      rs.on('end', resolve);
      rs.on('error', reject);
    });
    await exited;
    // The first 5% (the command's code not yet compiled, the reader's stream starting) left out.
    return out.slice(Math.floor(out.length / 20)).sort((a, b) => a - b);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const pctl = (xs, p) => xs.length ? xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] : NaN;

/**
 * Print a command's added latency over cat's at each of `loads`
 * ({ rate, batch, n }): the 50th, 90th and 99th percentiles, each the
 * median of `runs` runs, the command and cat alternating (p99 on a busy
 * machine says more about the machine than about the command).
 */
export async function latencyRows(name, cmd, args, file, loads, runs = RUNS) {
  const med = (xs) => [...xs].sort((a, b) => a - b)[(xs.length - 1) >> 1];
  for (const load of loads) {
    const a = { p50: [], p90: [], p99: [], n: [] }, c = { p50: [], p90: [], p99: [] };
    for (let i = 0; i < runs; i++) {
      const d = await delays(cmd, args, file, load);
      const k = await delays('cat', [], file, load);
      for (const p of [50, 90, 99]) {
        a[`p${p}`].push(pctl(d, p));
        c[`p${p}`].push(pctl(k, p));
      }
      a.n.push(d.length);
    }
    const f = (x) => x.toFixed(2);
    const row = (x) => `p50 ${f(med(x.p50))} ms, p90 ${f(med(x.p90))}, p99 ${f(med(x.p99))}`;
    console.log(`${name} at ${load.rate.toLocaleString('en-US')} lines/s in writes of ${load.batch} (${med(a.n).toLocaleString('en-US')} lines out, median of ${runs} runs):\n` +
      `  ${row(a)}; cat ${row(c)}; added over cat: p50 ${f(med(a.p50) - med(c.p50))} ms, p90 ${f(med(a.p90) - med(c.p90))} ms`);
  }
}
