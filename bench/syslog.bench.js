// npm run bench -- syslog
//
// One million events (bench/gen-events.js) over TCP to a local rsyslog (its
// own config, free loopback port; the test helper in test/e2e/rsyslog.ts),
// timed from the start of the sender until rsyslog has written the last
// message to its file. The baseline, run in the same script on the same
// lines: util-linux logger(1) reading them from stdin over TCP. ct-syslog is
// also timed with LF framing and over RELP (every message acknowledged).
// Figures vary with the machine's load (2 cores, shared with rsyslog and
// other work): compare the rates printed together, not across runs.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventsFile } from './gen-events.js';
import { Rsyslog, findRsyslogd } from '../dist/test/e2e/rsyslog.js';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const N = Number(process.env.CT_BENCH_N ?? 1_000_000);

if (!findRsyslogd()) {
  console.log('rsyslogd is not installed (apt-get install rsyslog rsyslog-relp): nothing to measure');
  process.exit(process.env.CI === 'true' ? 1 : 0);
}

/** Count the lines rsyslog has written, reading only what was appended. */
function lineCounter(file) {
  let off = 0, lines = 0;
  const buf = Buffer.alloc(1 << 20);
  return () => {
    let fd;
    try { fd = fs.openSync(file, 'r'); } catch { return 0; }
    try {
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, off);
        if (n <= 0) break;
        off += n;
        for (let i = buf.indexOf(10, 0); i >= 0 && i < n; i = buf.indexOf(10, i + 1)) lines++;
      }
    } finally { fs.closeSync(fd); }
    return lines;
  };
}

async function run(label, kind, cmd, args, input) {
  const rs = new Rsyslog({ inputs: [kind], template: '%app-name%\\n', maxMessageSize: '64k' });
  await rs.start();
  const port = rs.ports[kind];
  const count = lineCounter(rs.out);
  const t0 = process.hrtime.bigint();
  const child = spawn(cmd, args(port), { stdio: [fs.openSync(input, 'r'), 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  const exited = new Promise((r) => child.on('close', (code) => r(code)));
  let cpu = 0;
  const pid = child.pid;
  const sampleCpu = () => {
    try {
      const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
      cpu = (Number(rest[11]) + Number(rest[12])) / 100;
    } catch { /* gone */ }
  };
  const timer = setInterval(sampleCpu, 100);
  let code = null;
  exited.then((c) => { code = c; });
  let got = 0;
  const deadline = Date.now() + 600_000;
  while ((got = count()) < N || code === null) {
    if (code !== null && code !== 0) break;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  clearInterval(timer);
  await exited;
  await new Promise((r) => setTimeout(r, 300));
  got = count();
  await rs.close();
  const rate = N / secs;
  console.log(`${label.padEnd(42)} ${String(Math.round(rate)).padStart(9)} msg/s  ${secs.toFixed(2).padStart(6)} s  sender CPU ~${cpu.toFixed(1)} s  arrived ${got}/${N}${code ? `  exit ${code}: ${stderr.trim().split('\n').pop()}` : ''}`);
  return rate;
}

const file = await eventsFile(N);
console.log(`${N} events (${(fs.statSync(file).size / 1e6).toFixed(0)} MB) from ${path.relative(root, file) || file}, to rsyslog ${execFileSync(findRsyslogd(), ['-v'], { encoding: 'utf8' }).split('\n')[0].split(/\s+/)[1]} on 127.0.0.1`);
const bin = path.join(root, 'bin', 'ct-syslog');
const ct = await run('ct-syslog --tcp (octet-counted, RFC 5424)', 'tcp', process.execPath, (p) => [bin, '--tcp', `127.0.0.1:${p}`, '--app-name', 'ct-bench'], file);
const lg = await run('logger --tcp (LF, RFC 5424), baseline', 'tcp', 'logger', (p) => ['--tcp', '--server', '127.0.0.1', '--port', String(p), '--tag', 'logger-bench', '--size', '65536'], file);
const lf = await run('ct-syslog --tcp --framing lf', 'tcp', process.execPath, (p) => [bin, '--tcp', `127.0.0.1:${p}`, '--framing', 'lf', '--app-name', 'ct-bench'], file);
const relp = await run('ct-syslog --relp (acknowledged)', 'relp', process.execPath, (p) => [bin, '--relp', `127.0.0.1:${p}`, '--app-name', 'ct-bench'], file);
console.log(`ct-syslog --tcp / logger --tcp: ${(ct / lg).toFixed(2)}x  (target: at least 50,000 msg/s: ${ct >= 50000 ? 'met' : 'NOT met'}); --framing lf ${Math.round(lf)}, --relp ${Math.round(relp)} msg/s`);
