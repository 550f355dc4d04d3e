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
