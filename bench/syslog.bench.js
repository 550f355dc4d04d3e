// npm run bench -- syslog     (CT_BENCH_N=200000 RUNS=3 ONLY=tcp,lf,relp INPUT=file|pipe)
//
// N generated events (bench/gen-events.js) to a real local rsyslog (its own
// config, free loopback ports; test/e2e/rsyslog.ts), one rsyslog per run.
// What counts is what arrived: rsyslog writes one line per message it
// received, the bench counts those lines, and a run's rate is the messages
// that arrived divided by the time from starting the sender to the last one
// arriving (a sender that loses messages is not credited with them). The
// baseline, run in the same script on the same lines: util-linux logger(1)
// reading them from stdin over TCP (LF framing, its only one). UDP bursts:
// bench/syslog-burst.bench.js.
// Each figure is the median of RUNS runs, the senders taking turns in an order
// reversed every other round; the load average is printed with each run (2
// shared cores: compare the figures printed together, not across runs).
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import os, { loadavg, cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { eventsFile } from './gen-events.js';
import { lineCounter } from './lib.js';
import { Rsyslog, findRsyslogd } from '../dist/test/e2e/rsyslog.js';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const N = Number(process.env.CT_BENCH_N ?? 200_000);
const RUNS = Math.max(1, Number(process.env.RUNS ?? 3));
const ONLY = (process.env.ONLY ?? 'tcp,lf,relp').split(',');
// file: each sender's stdin is the events file (as `< events.ndjson`); pipe: a pipe cat(1) writes the file into.
const INPUT = process.env.INPUT === 'pipe' ? 'pipe' : 'file';

if (!findRsyslogd()) {
  console.log('rsyslogd is not installed (apt-get install rsyslog rsyslog-relp): nothing to measure');
  process.exit(process.env.CI === 'true' ? 1 : 0);
}


/** One run: a fresh rsyslog, the sender on the file, the lines counted as they arrive. */
async function once(kind, cmd, args, input) {
  const rs = new Rsyslog({ inputs: [kind], template: '%app-name%\\n', maxMessageSize: '64k' });
  await rs.start();
  const count = lineCounter(rs.out);
  const t0 = process.hrtime.bigint();
  // The sender runs under bash, whose `times` prints, after it exits, the
  // user and system CPU it used (exact, unlike sampling /proc until it goes).
  const q = (a) => `'${String(a).replace(/'/g, `'\\''`)}'`;
  // pipe: a named pipe that cat(1) writes the file into, in a shell of its
  // own (its CPU is no sender's), the sender's shell reading it as stdin: a
  // real pipe of the default 64 KiB, as `... | sender` has.
  const fifo = INPUT === 'pipe' ? path.join(os.tmpdir(), `ctpipe-bench-syslog-${process.pid}.fifo`) : null;
  let feeder = null;
  if (fifo) {
    fs.rmSync(fifo, { force: true });
    execFileSync('mkfifo', [fifo]);
    feeder = spawn('bash', ['-c', `exec cat ${q(input)} > ${q(fifo)}`], { stdio: 'ignore' });
  }
  const fd = fifo ? 'ignore' : fs.openSync(input, 'r');
  const child = spawn('bash', ['-c', `${[cmd, ...args(rs.ports[kind])].map(q).join(' ')}${fifo ? ' < ' + q(fifo) : ''}; rc=$?; times >&2; exit $rc`], { stdio: [fd, 'ignore', 'pipe'] });
  if (typeof fd === 'number') fs.closeSync(fd);
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  let code = null;
  const exited = new Promise((r) => child.on('close', (c) => { code = c; r(c); }));
  let got = 0, lastAt = t0, exitAt = null;
  const deadline = Date.now() + 600_000;
  for (;;) {
    const n = count();
    const now = process.hrtime.bigint();
    if (n > got) { got = n; lastAt = now; }
    if (code !== null && exitAt === null) exitAt = now;
    if (got >= N && code !== null) break;
    // The sender is done and nothing more has come for 2 s: the rest is lost.
    if (exitAt !== null && Number(now - (lastAt > exitAt ? lastAt : exitAt)) / 1e9 > 2) break;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  await exited;
  if (feeder) {
    if (feeder.exitCode === null) feeder.kill();
    fs.rmSync(fifo, { force: true });
  }
  // `times`: the shell's own line, then its children's: "0m1.234s 0m0.567s".
  const tl = stderr.trim().split('\n');
  const m = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/.exec(tl.pop() ?? '');
  const cpu = m ? Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]) : NaN;
  tl.pop();
  stderr = tl.join('\n');
  await rs.close();
  const secs = Number(lastAt - t0) / 1e9;
  return { got, secs, rate: got / secs, cpu, code, err: stderr.split('\n').pop() };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** One sender's runs, printed with their median rate and CPU. */
function report(label, runs) {
  const rate = median(runs.map((r) => r.rate));
  const cpu = median(runs.map((r) => r.cpu));
  const bad = runs.find((r) => r.code);
  console.log(`${label.padEnd(44)} ${Math.round(rate).toLocaleString('en-US').padStart(8)} msg/s arrived  ` +
    `(runs: ${runs.map((r) => `${r.got}/${N} in ${r.secs.toFixed(2)} s, sender CPU ${r.cpu.toFixed(2)} s, load ${r.load.toFixed(2)}`).join('; ')})` +
    (bad ? `  exit ${bad.code}: ${bad.err}` : '') + `  load ${loadavg()[0].toFixed(2)}`);
  return { rate, cpu };
}

const file = await eventsFile(N);
const version = execFileSync(findRsyslogd(), ['-v'], { encoding: 'utf8' }).split('\n')[0].split(/\s+/)[1];
console.log(`${N.toLocaleString('en-US')} events (${(fs.statSync(file).size / 1e6).toFixed(0)} MB) on stdin ${INPUT === 'file' ? 'from the file' : 'through a pipe'} (INPUT=file|pipe), to rsyslog ${version} on 127.0.0.1; ` +
  `rate = messages that arrived / time to the last arrival, median of ${RUNS} runs (RUNS=n); ${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
const bin = path.join(root, 'bin', 'ct-syslog');
const ct = (extra) => (p) => [bin, ...extra(p), '--app-name', 'ct-bench'];
const logger = (mode) => (p) => [mode, '--server', '127.0.0.1', '--port', String(p), '--tag', 'logger-bench', '--size', '65536'];
// The senders take turns, one run each a round, in the opposite order every
// other round: none is always first (a cold page cache, a quiet machine) or
// always after another (its rsyslog's leftovers, a warm CPU).
const senders = [];
if (ONLY.includes('tcp')) senders.push({ key: 'tcp', label: 'ct-syslog --tcp (octet-counted, RFC 5424)', kind: 'tcp', cmd: process.execPath, args: ct((p) => ['--tcp', `127.0.0.1:${p}`]) });
if (ONLY.includes('tcp') || ONLY.includes('lf')) {
  senders.push({ key: 'lf', label: 'ct-syslog --tcp --framing lf', kind: 'tcp', cmd: process.execPath, args: ct((p) => ['--tcp', `127.0.0.1:${p}`, '--framing', 'lf']) });
  senders.push({ key: 'logger', label: 'logger --tcp (LF, RFC 5424), baseline', kind: 'tcp', cmd: 'logger', args: logger('--tcp') });
}
if (ONLY.includes('relp')) senders.push({ key: 'relp', label: 'ct-syslog --relp (every message acknowledged)', kind: 'relp', cmd: process.execPath, args: ct((p) => ['--relp', `127.0.0.1:${p}`]) });
const runs = Object.fromEntries(senders.map((s) => [s.key, []]));
for (let i = 0; i < RUNS; i++) {
  for (const s of i % 2 ? [...senders].reverse() : senders) runs[s.key].push({ ...(await once(s.kind, s.cmd, s.args, file)), load: loadavg()[0] });
}
const r = {};
for (const s of senders) r[s.key] = report(s.label, runs[s.key]);
const ratio = (a, b) => (a && b ? `${(a / b).toFixed(2)}x` : 'n/a');
const of = (k, f) => r[k]?.[f];
console.log(`ratios of arrived msg/s: ct-syslog --tcp / logger --tcp ${ratio(of('tcp', 'rate'), of('logger', 'rate'))}; --framing lf / logger --tcp ${ratio(of('lf', 'rate'), of('logger', 'rate'))}; ` +
  `--relp / logger --tcp ${ratio(of('relp', 'rate'), of('logger', 'rate'))}`);
console.log(`ratios of sender CPU (median user+system seconds of each process, all its threads, for the same ${N.toLocaleString('en-US')} lines): ct-syslog --tcp / logger --tcp ${ratio(of('tcp', 'cpu'), of('logger', 'cpu'))}; ` +
  `--framing lf / logger --tcp ${ratio(of('lf', 'cpu'), of('logger', 'cpu'))}; --relp / logger --tcp ${ratio(of('relp', 'cpu'), of('logger', 'cpu'))}; load average now ${loadavg()[0].toFixed(2)}`);
// The same ratios taken within each round (a sender against the logger run
// next to it), then their median: less moved by a load that drifts.
const paired = (k, f) => (runs[k] && runs.logger ? `${median(runs[k].map((x, i) => x[f] / runs.logger[i][f])).toFixed(2)}x` : 'n/a');
console.log(`median of the rounds' own ratios: ct-syslog --tcp / logger --tcp ${paired('tcp', 'rate')} the rate at ${paired('tcp', 'cpu')} the CPU; ` +
  `--framing lf ${paired('lf', 'rate')} at ${paired('lf', 'cpu')}; --relp ${paired('relp', 'rate')} at ${paired('relp', 'cpu')}`);
