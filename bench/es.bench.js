// npm run bench -- es
//
// ct-es against the local _bulk endpoint of the tests (test/es-server.ts,
// storing index/_id/version only, so the endpoint is not what is measured):
//   1. one million events with the defaults: documents/s, best of RUNS (3);
//   2. the same million with the endpoint down for 10 s in the middle: the
//      RSS of the ct-es process sampled every 50 ms (its high-water mark must
//      stay bounded while input is paused), and every document still indexed
//      exactly once afterwards;
//   baselines, on 100,000 events: --raw (no ECS mapping: the cost of the
//   mapping), and --flush-bytes 1000 --concurrency 1 (pino-elasticsearch's
//   defaults: 1000-byte batches, one request at a time).
// Events come from bench/gen-events.js (realistic ct-attribute output), read
// from a file, so ct-es maps them in worker threads (--jobs default).
// The endpoint runs in this process, ct-es in its own; on a 2-core machine
// they share the CPU with whatever else runs: figures are indicative.
// CT_ES_BENCH_N=300000 runs a shorter version.
import { spawn } from 'node:child_process';
import { createWriteStream, openSync, closeSync, readFileSync, rmSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir, loadavg, cpus } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { EsServer } = await import(path.join(root, 'dist/test/es-server.js'));
const { generate } = await import(path.join(root, 'bench/gen-events.js'));
const bin = path.join(root, 'bin/ct-es');
const N = Number(process.env.CT_ES_BENCH_N ?? 1_000_000);
const NB = Math.min(N, 100_000);
const OUTAGE_MS = 10_000;
const RUNS = Number(process.env.RUNS ?? 3);

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

function rssKb(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    return { rss: Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0), hwm: Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0) };
  } catch {
    return null;
  }
}

/** Run ct-es on a file against a fresh endpoint; `during(server, child)` may script faults. */
async function run(file, args, during) {
  const server = await new EsServer({ store: 'ids' }).start();
  const fd = openSync(file, 'r');
  const t0 = performance.now();
  const child = spawn(process.execPath, [bin, '--node', server.url, ...args], { stdio: [fd, 'ignore', 'pipe'] });
  closeSync(fd);
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  const samples = [];
  let hwm = 0;
  const sampler = setInterval(() => {
    const m = rssKb(child.pid);
    if (m) {
      samples.push({ t: performance.now() - t0, rss: m.rss, docs: server.count(), phase: server.phase ?? 'up' });
      hwm = Math.max(hwm, m.hwm);
    }
  }, 50);
  const done = new Promise((r) => child.on('close', (code) => r(code)));
  const extra = during ? during(server, child) : null;
  const code = await done;
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  await extra;
  const docs = server.docs();
  const result = { code, seconds, count: server.count(), rewritten: docs.filter((d) => d.version > 1).length, bulk: server.bulkRequests, samples, hwm, stderr };
  await server.close();
  return result;
}

const mb = (kb) => (kb / 1024).toFixed(1) + ' MB';
const fmt = (n) => Math.round(n).toLocaleString('en-US');

const file = path.join(dir, 'events.ndjson');
const small = path.join(dir, 'events-small.ndjson');
let t = performance.now();
await writeEvents(file, N);
await writeEvents(small, NB);
console.log(`generated ${fmt(N)} events (${(statSync(file).size / 1e6).toFixed(0)} MB) in ${((performance.now() - t) / 1000).toFixed(1)} s`);

// 1. Throughput with the defaults: the best of RUNS runs (the machine is shared).
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
console.log(`load average before: ${load()} (${cpus().length} CPUs)`);
const runs = [];
for (let i = 0; i < RUNS; i++) {
  const a = await run(file, []);
  runs.push(a);
  console.log(`  run ${i + 1}: ${fmt(N / a.seconds)} documents/s (${a.seconds.toFixed(2)} s, exit ${a.code}, stored ${fmt(a.count)}, ${a.bulk} bulk requests, RSS high-water ${mb(a.hwm)})`);
  if (a.code !== 0 || a.count !== N) console.log(`  NOT ALL INDEXED: ${a.stderr.trim()}`);
}
const best = runs.reduce((x, y) => (y.seconds < x.seconds ? y : x));
const rate = N / best.seconds;
const sorted = runs.map((r) => N / r.seconds).sort((x, y) => x - y);
console.log(`defaults: ${fmt(N)} events, best of ${RUNS}: ${fmt(rate)} documents/s (median ${fmt(sorted[Math.floor(sorted.length / 2)])}); load average after: ${load()}`);

// Baselines on fewer events.
const oneThread = await run(small, ['--jobs', '0']);
const raw = await run(small, ['--raw']);
const ecsSmall = await run(small, []);
console.log(`baseline --raw, ${fmt(NB)} events: ${fmt(NB / raw.seconds)} documents/s; ECS mapping on the same: ${fmt(NB / ecsSmall.seconds)} documents/s (ratio ${(raw.seconds / ecsSmall.seconds).toFixed(2)})`);
console.log(`baseline --jobs 0 (mapping in the main thread), ${fmt(NB)} events: ${fmt(NB / oneThread.seconds)} documents/s; workers are ${(oneThread.seconds / ecsSmall.seconds).toFixed(2)}x that`);
const pino = await run(small, ['--flush-bytes', '1000', '--concurrency', '1']);
console.log(`baseline pino-elasticsearch defaults (--flush-bytes 1000 --concurrency 1), ${fmt(NB)} events: ${fmt(NB / pino.seconds)} documents/s in ${pino.bulk} requests; defaults are ${(pino.seconds / ecsSmall.seconds).toFixed(1)}x faster`);

// 2. Endpoint down for 10 s once a third of the documents are in.
const b = await run(file, [], async (server) => {
  while (server.count() < N / 3) await new Promise((r) => setTimeout(r, 20));
  server.phase = 'down';
  const downAt = server.count();
  await server.down(OUTAGE_MS);
  server.phase = 'after';
  return downAt;
});
const before = b.samples.filter((s) => s.phase === 'up');
const during = b.samples.filter((s) => s.phase === 'down');
const max = (xs) => xs.reduce((m, s) => Math.max(m, s.rss), 0);
const wallStart = during.length ? during[0].t : 0;
const wallEnd = during.length ? during[during.length - 1].t : 0;
console.log(`outage of ${OUTAGE_MS / 1000} s after ${fmt(N / 3)} documents: exit ${b.code}, stored ${fmt(b.count)} of ${fmt(N)} (${fmt(b.rewritten)} sent again and overwritten, no duplicates by construction), total ${b.seconds.toFixed(1)} s`);
console.log(`  RSS of ct-es sampled every 50 ms: before the outage max ${mb(max(before))}; during it max ${mb(max(during))} (first ${mb(during[0]?.rss ?? 0)}, last ${mb(during[during.length - 1]?.rss ?? 0)}, ${during.length} samples over ${((wallEnd - wallStart) / 1000).toFixed(1)} s); whole run ${mb(max(b.samples))}, kernel VmHWM ${mb(b.hwm)}`);
if (b.code !== 0 || b.count !== N) console.log(`  NOT ALL INDEXED: ${b.stderr.trim()}`);
console.log(`target: >= 50,000 documents/s with the defaults: ${rate >= 50000 ? 'met' : 'NOT met'} (${fmt(rate)}); memory bounded during the outage: ${max(during) <= max(before) * 1.5 + 20480 ? 'yes' : 'CHECK'}`);
