// npm run bench -- es     (CT_ES_BENCH_N=100000 RUNS=3 TIMEOUT=60 ONLY=ct,pino,pino-defaults,faults,outage[,no-ct])
//
// ct-es beside the real pino-elasticsearch (a devDependency; its CLI, with
// its own defaults: 1000-byte bulk requests, 30 s flush interval, and with
// large batches, --flush-bytes 5000000), each reading the same generated
// events (bench/gen-events.js) from a file, against the same local _bulk
// endpoint (test/es-server.ts's, Elasticsearch 8 flavour) running in a
// process of its own (bench/es-endpoint.js), a fresh one per run. What
// counts is what the endpoint stored: documents stored / wall time from
// starting the tool until it exited (or TIMEOUT s, then it is killed and the
// documents stored by then are counted). Each figure is the median of RUNS
// runs; the tools' CPU is sampled from /proc; the load average is printed.
// ct-es is one main thread with --jobs 0 (pino-elasticsearch has one); the
// default, ECS mapping in worker threads, is labelled multi-threaded.
//   faults:  every 7th _bulk request answered 429, every 50th item 429, and
//            the endpoint down for 3 s once a third of the documents are in;
//   outage:  ct-es's memory (RSS sampled every 50 ms) while the endpoint is
//            down for 10 s, and every document indexed once afterwards.
// ct-es's documents are larger (ECS fields plus the original event).
import { spawn, fork } from 'node:child_process';
import { createWriteStream, openSync, closeSync, readFileSync, rmSync, mkdtempSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir, loadavg, cpus } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generate } from './gen-events.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin/ct-es');
const N = Number(process.env.CT_ES_BENCH_N ?? 100_000);
const RUNS = Math.max(1, Number(process.env.RUNS ?? 3));
const TIMEOUT_S = Number(process.env.TIMEOUT ?? 60);
const ONLY = (process.env.ONLY ?? 'ct,pino,pino-defaults,faults,outage').split(',');
const OUTAGE_MS = 10_000;

let pinoCli;
try {
  const req = createRequire(import.meta.url);
  const pkg = req.resolve('pino-elasticsearch/package.json');
  pinoCli = path.join(path.dirname(pkg), JSON.parse(readFileSync(pkg, 'utf8')).bin['pino-elasticsearch']);
} catch {
  console.log('pino-elasticsearch is not installed (npm ci installs it: a devDependency): no baseline to measure against');
  process.exit(1);
}
const pinoVersion = JSON.parse(readFileSync(path.join(path.dirname(pinoCli), 'package.json'), 'utf8')).version;

const dir = mkdtempSync(path.join(tmpdir(), 'ct-es-bench-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

async function writeEvents(file, n) {
  const out = createWriteStream(file);
  let buf = '';
  for (const line of generate(n, 42)) {
    buf += line + '\n';
    if (buf.length > 1 << 20) {
      if (!out.write(buf)) await new Promise((r) => out.once('drain', r));
      buf = '';
    }
  }
  out.end(buf);
  await new Promise((r) => out.on('close', r));
}

/** The endpoint in its own process; ask() sends a message and waits for the answer. */
async function endpoint() {
  const child = fork(path.join(root, 'bench/es-endpoint.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const url = await new Promise((resolve, reject) => {
    child.once('message', (m) => resolve(m.url));
    child.once('exit', (c) => reject(new Error(`es-endpoint exited with ${c}`)));
  });
  let chain = Promise.resolve();
  const ask = (msg) => (chain = chain.then(() => new Promise((resolve) => {
    child.once('message', resolve);
    child.send(msg);
  })));
  return { url, ask, close: () => new Promise((r) => { child.once('exit', r); child.send({ op: 'close' }); }) };
}

function procStat(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    const st = readFileSync(`/proc/${pid}/status`, 'utf8');
    return { cpu: (Number(f[11]) + Number(f[12])) / 100, rss: Number(/VmRSS:\s+(\d+)/.exec(st)?.[1] ?? 0), hwm: Number(/VmHWM:\s+(\d+)/.exec(st)?.[1] ?? 0) };
  } catch {
    return null;
  }
}

/** One run of a tool on a file against a fresh endpoint; `during(ep)` may script faults. */
async function run(file, tool, during) {
  const ep = await endpoint();
  if (during?.before) await during.before(ep);
  const fd = openSync(file, 'r');
  const args = tool === 'ct' ? [bin, '--node', ep.url, ...during?.args ?? []] : [pinoCli, '--node', ep.url, '--index', 'ct', ...during?.args ?? []];
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { stdio: [fd, 'ignore', 'pipe'] });
  closeSync(fd);
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => { if (stderr.length < 1e6) stderr += d; });
  let cpu = 0, hwm = 0;
  const samples = [];
  const sampler = setInterval(async () => {
    const m = procStat(child.pid);
    if (m) {
      cpu = m.cpu;
      hwm = Math.max(hwm, m.hwm);
      samples.push({ t: performance.now() - t0, rss: m.rss, phase: ep.phase ?? 'up' });
    }
  }, 50);
  let timedOut = false;
  const killer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, TIMEOUT_S * 1000);
  const done = new Promise((r) => child.on('close', (code, sig) => { ep.exited = true; r(code ?? sig); }));
  const extra = during?.while ? during.while(ep) : null;
  const code = await done;
  const seconds = (performance.now() - t0) / 1000;
  clearTimeout(killer);
  clearInterval(sampler);
  await extra;
  const { count, bulk } = await ep.ask({ op: 'count' });
  await ep.close();
  return { code, seconds, count, bulk, cpu, hwm, samples, timedOut, stderr };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const mb = (kb) => (kb / 1024).toFixed(1) + ' MB';
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

/** RUNS runs; prints each and the median of stored documents per second. */
async function measure(label, file, tool, during, runs = RUNS) {
  const rs = [];
  for (let i = 0; i < runs; i++) rs.push(await run(file, tool, during));
  const rate = median(rs.map((r) => r.count / r.seconds));
  console.log(`${label.padEnd(58)} ${fmt(rate).padStart(7)} docs/s stored (median)  load ${loadavg()[0].toFixed(2)}`);
  for (const r of rs) {
    const why = r.timedOut ? `killed after ${TIMEOUT_S} s (TIMEOUT)` : `exit ${r.code}`;
    console.log(`    stored ${fmt(r.count)}/${fmt(N)} in ${r.seconds.toFixed(1)} s, ${why}, CPU ~${r.cpu.toFixed(1)} s, ${fmt(r.bulk)} bulk requests, RSS high-water ${mb(r.hwm)}`);
    if (!r.timedOut && r.count < N) console.log(`    LOST ${fmt(N - r.count)}; its first stderr line: ${r.stderr.trim().split('\n')[0]?.slice(0, 160) ?? ''}`);
  }
  return { rate, runs: rs };
}

const file = path.join(dir, 'events.ndjson');
await writeEvents(file, N);
console.log(`${fmt(N)} events (${(statSync(file).size / 1e6).toFixed(0)} MB) from bench/gen-events.js; pino-elasticsearch ${pinoVersion}; ` +
  `endpoint: test/es-server.ts in its own process; median of ${RUNS} runs (RUNS=n); ${cpus().length} CPUs, load average ${load()}`);

const r = {};
if (ONLY.includes('ct')) {
  r.ct1 = await measure('ct-es --jobs 0 (one thread)', file, 'ct', { args: ['--jobs', '0'] });
  r.ct = await measure('ct-es, defaults (ECS mapping in worker threads: multi-threaded)', file, 'ct');
}
if (ONLY.includes('pino')) {
  r.pinoBig = await measure('pino-elasticsearch --flush-bytes 5000000', file, 'pino', { args: ['--flush-bytes', '5000000'] });
}
if (ONLY.includes('pino-defaults')) {
  r.pino = await measure(`pino-elasticsearch, defaults (killed at TIMEOUT=${TIMEOUT_S} s)`, file, 'pino');
}
const ratio = (a, b) => (a && b ? `${(a.rate / b.rate).toFixed(2)}x` : 'n/a');
if (r.ct1 || r.ct) {
  console.log(`ratios of stored docs/s: ct-es --jobs 0 / pino-elasticsearch --flush-bytes 5000000 ${ratio(r.ct1, r.pinoBig)} (one thread each); ` +
    `ct-es / pino-elasticsearch defaults ${ratio(r.ct1, r.pino)} (one thread each); ct-es multi-threaded / pino large batches ${ratio(r.ct, r.pinoBig)}`);
}

if (ONLY.includes('faults')) {
  // Faults as a busy cluster gives them: rejections of whole requests and of items, and a short outage.
  const faults = (args) => ({
    args,
    before: (ep) => ep.ask({ op: 'faultEvery', request429: 7, item429: 50 }),
    while: async (ep) => {
      while (!ep.exited && (await ep.ask({ op: 'count' })).count < N / 3) await new Promise((res) => setTimeout(res, 20));
      if (ep.exited) return;
      await ep.ask({ op: 'down', ms: 3000 });
    },
  });
  console.log('faults injected: every 7th _bulk request 429, every 50th item 429, the endpoint down for 3 s once a third is stored');
  if (!ONLY.includes('no-ct')) await measure('ct-es, defaults, faults injected', file, 'ct', faults([]));
  await measure(`pino-elasticsearch --flush-bytes 5000000, faults injected (killed at TIMEOUT=${TIMEOUT_S} s)`, file, 'pino', faults(['--flush-bytes', '5000000']));
}

if (ONLY.includes('outage')) {
  // ct-es's memory while the endpoint is down for 10 s: input is paused, not buffered.
  const b = (await measure(`ct-es, defaults, endpoint down ${OUTAGE_MS / 1000} s after a third (memory)`, file, 'ct', {
    while: async (ep) => {
      while (!ep.exited && (await ep.ask({ op: 'count' })).count < N / 3) await new Promise((res) => setTimeout(res, 20));
      if (ep.exited) return;
      ep.phase = 'down';
      await ep.ask({ op: 'down', ms: OUTAGE_MS });
      ep.phase = 'after';
    },
  }, 1)).runs[0];
  const max = (xs) => xs.reduce((m, s) => Math.max(m, s.rss), 0);
  const before = b.samples.filter((s) => s.phase === 'up');
  const during = b.samples.filter((s) => s.phase === 'down');
  console.log(`    RSS of ct-es every 50 ms: before the outage max ${mb(max(before))}; during it max ${mb(max(during))} (${during.length} samples); memory bounded while down: ${max(during) <= max(before) * 1.5 + 20480 ? 'yes' : 'CHECK'}`);
}
console.log(`load average after: ${load()}`);
