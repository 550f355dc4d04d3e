// npm run bench -- syslog-burst     (BURST=5000 RUNS=5 RATES=5000,10000)
//
// UDP has no flow control: what a burst puts in the receiver's socket buffer
// faster than the receiver reads it is lost, silently. This sends bursts of
// BURST generated events (bench/gen-events.js) over UDP to a real local
// rsyslog whose imudp has its default receive buffer (a stock
// `input(type="imudp")`: the kernel's net.core.rmem_default), a fresh one
// per run, and counts what arrived (one line per message in rsyslog's
// output file). Beside ct-syslog with its default pacing for a local
// receiver, ct-syslog unpaced (--rate none) and the baseline util-linux
// logger(1) --udp reading the same lines from stdin. Delivered/sent per run,
// the median, the time a burst took to arrive, and the load average. RATES
// adds ct-syslog at other paces (--rate N/s), to see where loss starts.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generate } from './gen-events.js';
import { lineCounter } from './lib.js';
import { Rsyslog, findRsyslogd } from '../dist/test/e2e/rsyslog.js';
import { LOCAL_UDP_RATE } from '../dist/src/syslog/transports.js';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const BURST = Number(process.env.BURST ?? 5000);
const RUNS = Math.max(1, Number(process.env.RUNS ?? 5));
const RATES = (process.env.RATES ?? '').split(',').filter(Boolean).map(Number);

if (!findRsyslogd()) {
  console.log('rsyslogd is not installed (apt-get install rsyslog): nothing to measure');
  process.exit(process.env.CI === 'true' ? 1 : 0);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ct-syslog-burst-'));
const file = path.join(dir, 'burst.ndjson');
fs.writeFileSync(file, [...generate(BURST, 7)].join('\n') + '\n');
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

async function once(cmd, args) {
  const rs = new Rsyslog({ inputs: ['udp'], template: '%app-name%\\n', udpRcvbuf: null });
  await rs.start();
  const count = lineCounter(rs.out);
  const t0 = process.hrtime.bigint();
  const child = spawn(cmd, args(rs.ports.udp), { stdio: [fs.openSync(file, 'r'), 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  const code = await new Promise((r) => child.on('close', r));
  // Whatever is still on its way arrives within a second of the sender's exit.
  let got = 0, lastAt = t0, still = Date.now();
  for (;;) {
    const n = count();
    if (n > got) { got = n; lastAt = process.hrtime.bigint(); still = Date.now(); }
    if (got >= BURST || Date.now() - still > 1500) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  await rs.close();
  return { got, secs: Number(lastAt - t0) / 1e9, code, err: stderr.trim().split('\n').pop() };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function measure(label, cmd, args) {
  const runs = [];
  for (let i = 0; i < RUNS; i++) runs.push(await once(cmd, args));
  const med = median(runs.map((r) => r.got));
  const bad = runs.find((r) => r.code);
  console.log(`${label.padEnd(40)} delivered/sent median ${med}/${BURST} (${(100 * med / BURST).toFixed(1)}%)  ` +
    `runs: ${runs.map((r) => `${r.got} in ${r.secs.toFixed(2)} s`).join(', ')}${bad ? `  exit ${bad.code}: ${bad.err}` : ''}  load ${os.loadavg()[0].toFixed(2)}`);
  return med;
}

const version = execFileSync(findRsyslogd(), ['-v'], { encoding: 'utf8' }).split('\n')[0].split(/\s+/)[1];
const rmem = fs.readFileSync('/proc/sys/net/core/rmem_default', 'utf8').trim();
console.log(`bursts of ${BURST} events (${(fs.statSync(file).size / BURST).toFixed(0)} bytes a line on average) over UDP to rsyslog ${version} on 127.0.0.1, ` +
  `imudp with its default receive buffer (net.core.rmem_default ${rmem}); ${RUNS} runs each (RUNS=n); ${os.cpus().length} CPUs, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
const bin = path.join(root, 'bin', 'ct-syslog');
const ct = (extra) => (p) => [bin, '--udp', `127.0.0.1:${p}`, '--app-name', 'ct-bench', ...extra];
const paced = await measure(`ct-syslog --udp (default: ${LOCAL_UDP_RATE}/s)`, process.execPath, ct([]));
for (const r of RATES) await measure(`ct-syslog --udp --rate ${r}/s`, process.execPath, ct(['--rate', `${r}/s`]));
const unpaced = await measure('ct-syslog --udp --rate none', process.execPath, ct(['--rate', 'none']));
const lg = await measure('logger --udp, baseline', 'logger', (p) => ['--udp', '--server', '127.0.0.1', '--port', String(p), '--tag', 'logger-bench', '--size', '65536']);
console.log(`median delivered: ct-syslog default ${paced}, unpaced ${unpaced}, logger --udp ${lg} of ${BURST}; load average now ${os.loadavg()[0].toFixed(2)}`);
