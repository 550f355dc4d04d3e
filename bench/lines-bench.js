// Shared by filter.bench.js and format.bench.js: time a command line that
// reads a file on stdin and writes to /dev/null, and print lines per second.
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

export function report(name, lines, secs) {
  const rate = lines / secs;
  console.log(`${name.padEnd(44)} ${secs.toFixed(2).padStart(7)} s  ${Math.round(rate).toLocaleString('en-US').padStart(10)} lines/s`);
  return rate;
}
