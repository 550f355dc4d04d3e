// Peak RSS and CPU of each stream stage on one million generated events
// (bench/gen-events.js), against jq -c . (the baseline: a one-thread stage
// that reads and writes every line) on the same file, in the same run.
// Every command reads the file on stdin; outputs go to /dev/null, except
// ct-record (files in a private temporary directory, removed after) and
// ct-syslog (TCP to a local sink in a process of its own that discards what
// it gets). Peak RSS and user+system CPU come from the kernel's account of a
// waited-for child (getrusage(RUSAGE_CHILDREN) in a python3 wrapper that
// runs nothing else). ct-attribute's RSS after a million events is in
// bench/attribute.bench.js (it needs root and a kernel to ask). Each figure
// is the median of RUNS runs (default 3); the load average is printed.
// EVENTS=n changes the input size, ONLY=filter,format,... picks stages.
// Prints figures; asserts nothing.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus, loadavg, tmpdir } from 'node:os';
import { spawn, spawnSync } from 'node:child_process';
import { openSync, closeSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { eventsFile } from './gen-events.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = (n) => path.join(ROOT, 'bin', n);
const N = Number(process.env.EVENTS ?? 1000000);
const RUNS = Math.max(1, Number(process.env.RUNS ?? 3));
const only = process.env.ONLY ? process.env.ONLY.split(',') : null;

// Runs argv[1:] with the inherited descriptors, then prints on fd 3 the
// child's peak RSS (KiB), user and system CPU seconds, and exit status.
const WRAP = `
import os, resource, subprocess, sys
r = subprocess.run(sys.argv[1:])
u = resource.getrusage(resource.RUSAGE_CHILDREN)
os.write(3, ('%d %.3f %.3f %d' % (u.ru_maxrss, u.ru_utime, u.ru_stime, r.returncode)).encode())
`;

function once(cmd, args, file) {
  const input = openSync(file, 'r');
  const out = openSync('/dev/null', 'w');
  const r = spawnSync('python3', ['-c', WRAP, cmd, ...args], { stdio: [input, out, 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  closeSync(input);
  closeSync(out);
  const [kb, user, sys, code] = String(r.output[3] ?? '').trim().split(' ').map(Number);
  return { mb: kb / 1024, cpu: user + sys, code, stderr: r.stderr.toString() };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function measure(label, cmd, args, file) {
  const runs = [];
  for (let i = 0; i < RUNS; i++) runs.push(once(cmd, args, file));
  const bad = runs.find((r) => r.code !== 0);
  const m = { mb: median(runs.map((r) => r.mb)), cpu: median(runs.map((r) => r.cpu)) };
  console.log(`${label.padEnd(40)} peak RSS ${m.mb.toFixed(0).padStart(5)} MB  CPU ${m.cpu.toFixed(2).padStart(6)} s` +
    `  (runs: ${runs.map((r) => `${r.mb.toFixed(0)} MB ${r.cpu.toFixed(2)} s`).join('; ')})` +
    (bad ? `  exit ${bad.code}: ${bad.stderr.trim().split('\n').pop()}` : '') + `  load ${loadavg()[0].toFixed(2)}`);
  return m;
}

// A TCP sink in a process of its own: counts bytes, reports its port.
async function sink() {
  const child = spawn(process.execPath, ['-e', `
    const s = require('net').createServer((c) => c.resume()).listen(0, '127.0.0.1', () => console.log(s.address().port));
    process.stdin.on('end', () => process.exit(0)).resume();`], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise((res) => child.stdout.once('data', (d) => res(Number(String(d).trim()))));
  return { port, close: () => child.stdin.end() };
}

const file = await eventsFile(N);
console.log(`${N.toLocaleString('en-US')} events (${(statSync(file).size / 1e6).toFixed(0)} MB), ${file}; median of ${RUNS} runs (RUNS=n); ` +
  `${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
const syslogSink = await sink();
const dir = mkdtempSync(path.join(tmpdir(), 'ct-rss-bench-'));
const stages = [
  ['filter', 'ct-filter -p tcp --jobs 0', bin('ct-filter'), ['-p', 'tcp', '--jobs', '0']],
  ['filter', 'ct-filter -p tcp (default jobs)', bin('ct-filter'), ['-p', 'tcp']],
  ['format', 'ct-format --jobs 0 (default template)', bin('ct-format'), ['--jobs', '0']],
  ['format', 'ct-format (default jobs)', bin('ct-format'), []],
  ['flows', 'ct-flows', bin('ct-flows'), []],
  ['record', 'ct-record --minutes 60', bin('ct-record'), ['-f', path.join(dir, 'ct-%Y%m%d%H%M'), '--minutes', '60']],
  ['syslog', 'ct-syslog --tcp', bin('ct-syslog'), ['--tcp', `127.0.0.1:${syslogSink.port}`]],
];
try {
  const base = measure('jq -c . (baseline)', 'jq', ['-c', '.'], file);
  for (const [key, label, cmd, args] of stages) {
    if (only && !only.includes(key)) continue;
    const m = measure(label, cmd, args, file);
    console.log(`${''.padEnd(40)} RSS ${(m.mb / base.mb).toFixed(2)}x jq's, CPU ${(m.cpu / base.cpu).toFixed(2)}x jq's` +
      (/default jobs/.test(label) ? ' (worker threads: CPU of all of them)' : ''));
  }
} finally {
  syslogSink.close();
  rmSync(dir, { recursive: true, force: true });
}
console.log(`load average now ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
