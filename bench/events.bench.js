// ct-events' bench (run as root after a build: npm run bench -- events).
// Prints figures; asserts nothing.
//
// 1. Flood: FLOWS (default 200,000) new UDP flows in a network namespace, as
//    fast as one process can open them, captured at the same time by
//    ct-events with its defaults (but --counters-every 0: the counters poll,
//    on by default since issue 21, is not what is measured here; it would
//    only add a table dump every 60 s) and by the baseline `conntrack -E -e NEW`
//    given the same receive buffer (`-b`, ct-events' default). Both outputs
//    go to files; the bench counts the flood's events in each, reads both CPU
//    times from /proc/<pid>/stat, and prints the capture and CPU ratios:
//    RUNS runs (default 5), each in a fresh namespace, and their medians,
//    with the load average. The flood generator is picked by measurement
//    first (a C program compiled here with cc, sendto or sendmmsg; python3).
// 2. Slow consumer: ct-events --queue QUEUE piped into a reader that reads
//    slowly while a flood runs (SLOW_FLOWS at SLOW_RATE a second, a pace
//    ct-events' socket draining keeps up with, so that only the queue can
//    overflow): events queue up to the bound, the rest are counted in
//    overrun records, and received + lost = flows.
// 3. Decode + serialize from the captured datagrams in test/fixtures, in
//    memory, on one core: events/s (target >= 300,000/s) for the path
//    ct-events takes (nowTs per datagram, decodeConntrack, LineWriter bytes),
//    beside the JSON.stringify path it replaced.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, readdirSync, rmSync, statSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, floodNamespaces, DST_NET, PER_ADDR } from './lib.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'ct-events');
const FLOWS = Number(process.env.FLOWS ?? 200000);
const QUEUE = Number(process.env.QUEUE ?? 20000);
const SLOW_FLOWS = Number(process.env.SLOW_FLOWS ?? 100000);
const SLOW_RATE = Number(process.env.SLOW_RATE ?? 20000);
const only = (process.env.ONLY ?? 'flood,slow,decode').split(',');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const pct = (a, b) => `${((100 * a) / b).toFixed(3)}%`;

const tmp = mkdtempSync(path.join(tmpdir(), 'ct-events-bench-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
const { floodNs, delNs } = floodNamespaces('ctbe');

// One process, one socket; flow i goes to address DST_NET.0.(1 + i / PER_ADDR),
// port 10000 + i % PER_ADDR.
const FLOOD_C = `
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#define BATCH 64
int main(int argc, char **argv) {
  long n = atol(argv[1]); int mmsg = argc > 2 && !strcmp(argv[2], "mmsg");
  long first = argc > 3 ? atol(argv[3]) : 0;
  double rate = argc > 4 ? atof(argv[4]) : 0; /* flows/s; 0: as fast as possible */
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0) { perror("socket"); return 1; }
  struct sockaddr_in to[BATCH]; struct mmsghdr m[BATCH]; struct iovec iov = { "x", 1 };
  memset(to, 0, sizeof to); memset(m, 0, sizeof m);
  for (int k = 0; k < BATCH; k++) {
    to[k].sin_family = AF_INET;
    m[k].msg_hdr.msg_name = &to[k]; m[k].msg_hdr.msg_namelen = sizeof to[k];
    m[k].msg_hdr.msg_iov = &iov; m[k].msg_hdr.msg_iovlen = 1;
  }
  struct timespec t0, t1; clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = first; i < first + n; ) {
    if (rate > 0) for (;;) { /* pace: no further ahead than the rate allows */
      clock_gettime(CLOCK_MONOTONIC, &t1);
      double el = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
      if ((i - first) <= el * rate) break;
      usleep(1000);
    }
    int k = 0;
    for (; k < BATCH && i < first + n; k++, i++) {
      to[k].sin_addr.s_addr = htonl((${DST_NET.split('.').map(Number).reduce((a, b) => a * 256 + b)}u << 16) | (1 + i / ${PER_ADDR}));
      to[k].sin_port = htons(10000 + i % ${PER_ADDR});
      if (!mmsg && sendto(s, "x", 1, 0, (struct sockaddr *)&to[k], sizeof to[k]) < 0) { perror("sendto"); return 1; }
    }
    if (mmsg) for (int done = 0; done < k; ) {
      int r = sendmmsg(s, m + done, k - done, 0);
      if (r < 0) { perror("sendmmsg"); return 1; }
      done += r;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("%.6f\\n", (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
  return 0;
}
`;
const FLOOD_PY = `
import socket, sys, time
n = int(sys.argv[1]); first = int(sys.argv[2]) if len(sys.argv) > 2 else 0
rate = float(sys.argv[3]) if len(sys.argv) > 3 else 0
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
t0 = time.monotonic()
for i in range(first, first + n):
    while rate and (i - first) > (time.monotonic() - t0) * rate: time.sleep(0.001)
    s.sendto(b'x', ('${DST_NET}.0.%d' % (1 + i // ${PER_ADDR}), 10000 + i % ${PER_ADDR}))
print('%.6f' % (time.monotonic() - t0))
`;

function generators() {
  const gens = [];
  const cc = spawnSync('cc', ['-O2', '-o', path.join(tmp, 'flood'), '-x', 'c', '-'], { input: FLOOD_C, encoding: 'utf8' });
  if (cc.status === 0) {
    gens.push({ name: 'C sendto', argv: (n, first = 0, rate = 0) => [path.join(tmp, 'flood'), String(n), 'sendto', String(first), String(rate)] });
    gens.push({ name: 'C sendmmsg', argv: (n, first = 0, rate = 0) => [path.join(tmp, 'flood'), String(n), 'mmsg', String(first), String(rate)] });
  } else {
    console.log(`  (no C generator: cc failed: ${(cc.stderr || cc.error?.message || '').trim().split('\n')[0]})`);
  }
  if (spawnSync('python3', ['-c', '1']).status === 0) {
    writeFileSync(path.join(tmp, 'flood.py'), FLOOD_PY);
    gens.push({ name: 'python3 sendto', argv: (n, first = 0, rate = 0) => ['python3', path.join(tmp, 'flood.py'), String(n), String(first), String(rate)] });
  }
  return gens;
}

/** Run a generator in a namespace; returns seconds the sending took. */
function flood(ns, gen, n, first = 0, rate = 0) {
  const [cmd, ...args] = gen.argv(n, first, rate);
  const r = spawnSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${gen.name}: ${r.stderr}`);
  return Number(r.stdout.trim());
}

/** Lines in a file so far (fast enough for a poll every 200 ms). */
function countLines(file) {
  const b = readFileSync(file);
  let n = 0;
  for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) n++;
  return n;
}
const size = (f) => { try { return statSync(f).size; } catch { return 0; } };

/** Wait until a file has stopped growing for `quiet` ms (or `max` ms passed). */
async function settle(files, quiet = 1500, max = 120000) {
  const end = Date.now() + max;
  let last = files.map(size), since = Date.now();
  while (Date.now() < end) {
    await sleep(200);
    const now = files.map(size);
    if (now.some((s, i) => s !== last[i])) { last = now; since = Date.now(); }
    else if (Date.now() - since >= quiet) return;
  }
}

function spawnTo(ns, argv, outFile, errFile) {
  const out = openSync(outFile, 'w');
  const err = openSync(errFile, 'w');
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', out, err] });
  closeSync(out);
  closeSync(err);
  const exited = new Promise((r) => child.on('close', (code, sig) => r({ code, sig })));
  return { child, exited };
}

/** Probe flows to a port outside the flood's range until `file` shows one. */
async function waitSubscribed(ns, file, probePort) {
  const probe = `import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.sendto(b'p', ('${DST_NET}.255.1', ${probePort}))`;
  for (let i = 0; i < 100; i++) {
    spawnSync('ip', ['netns', 'exec', ns, 'python3', '-c', probe]);
    await sleep(100);
    if (readFileSync(file, 'utf8').includes(String(probePort))) return;
  }
  throw new Error('ct-events never showed the probe');
}

const inFlood = (addr, port) => addr?.startsWith(`${DST_NET}.0.`) && port >= 10000 && port < 10000 + PER_ADDR;

function readCtEvents(file) {
  let flows = 0, lost = 0, overruns = 0, other = 0;
  const text = readFileSync(file, 'utf8');
  let start = 0;
  for (let nl = text.indexOf('\n'); nl !== -1; start = nl + 1, nl = text.indexOf('\n', start)) {
    const e = JSON.parse(text.slice(start, nl));
    if (e.event === 'new' && inFlood(e.dst, e.dport)) flows++;
    else if (e.event === 'overrun') { overruns++; lost += e.lost; }
    else other++;
  }
  return { flows, lost, overruns, other };
}

function readConntrack(file) {
  let flows = 0;
  const re = /dst=(\S+) sport=\d+ dport=(\d+)/;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = re.exec(line);
    if (m && inFlood(m[1], Number(m[2]))) flows++;
  }
  return flows;
}

async function floodBench() {
  const rmem = readFileSync('/proc/sys/net/core/rmem_max', 'utf8').trim();
  const rdef = readFileSync('/proc/sys/net/core/rmem_default', 'utf8').trim();
  const { DEFAULT_RCVBUF } = await import(path.join(ROOT, 'dist', 'src', 'netlink', 'socket.js'));
  const ctBuf = Math.max(Number(rmem), DEFAULT_RCVBUF);
  console.log(`flood: ${fmt(FLOWS)} new UDP flows; ct-events' default receive buffer ${fmt(ctBuf)} bytes ` +
    `(the larger of net.core.rmem_max ${rmem} and its DEFAULT_RCVBUF ${fmt(DEFAULT_RCVBUF)}, beyond rmem_max set with SO_RCVBUFFORCE); ` +
    `conntrack's: net.core.rmem_default ${rdef}`);
  console.log(`  nf_conntrack_max ${readFileSync('/proc/sys/net/netfilter/nf_conntrack_max', 'utf8').trim()} (a global limit; each namespace counts its own entries against it)`);

  // Which generator opens flows fastest, with nobody listening.
  const gens = generators();
  const TRIAL = Math.min(FLOWS, 50000);
  let best = null;
  for (const g of gens) {
    const ns = floodNs();
    const secs = flood(ns, g, TRIAL);
    delNs(ns);
    const rate = TRIAL / secs;
    console.log(`  generator ${g.name.padEnd(15)} ${fmt(rate).padStart(10)} flows/s (${fmt(TRIAL)} flows, no listener)`);
    if (!best || rate > best.rate) best = { ...g, rate };
  }
  console.log(`  using: ${best.name}`);

  const RUNS = Math.max(1, Number(process.env.RUNS ?? 5));
  const { loadavg } = await import('node:os');
  const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(`  ${RUNS} runs (RUNS=n); conntrack -E -e NEW -b ${ctBuf} (the same buffer as ct-events); load average before: ${load()}`);
  const runs = [];
  for (let run = 1; run <= RUNS; run++) {
    const ns = floodNs();
    const f = (n) => path.join(tmp, n);
    const ct = spawnTo(ns, [BIN, '--counters-every', '0'], f('ct-events.out'), f('ct-events.err'));
    const base = spawnTo(ns, ['conntrack', '-E', '-e', 'NEW', '-b', String(ctBuf)], f('conntrack.out'), f('conntrack.err'));
    await waitSubscribed(ns, f('ct-events.out'), 9);
    await waitSubscribed(ns, f('conntrack.out'), 9);
    await sleep(300);
    const cpu0 = { ct: cpuSeconds(ct.child.pid), base: cpuSeconds(base.child.pid) };
    const secs = flood(ns, best, FLOWS);
    await settle([f('ct-events.out'), f('conntrack.out')]);
    const cpu1 = { ct: cpuSeconds(ct.child.pid), base: cpuSeconds(base.child.pid) };
    ct.child.kill('SIGTERM');
    base.child.kill('SIGINT');
    const [ctExit, baseExit] = await Promise.all([ct.exited, base.exited]);
    // The kernel's own count of the flows made: the namespace's rule counter.
    const nft = spawnSync('ip', ['netns', 'exec', ns, 'nft', 'list', 'chain', 'inet', 'bench', 'out'], { encoding: 'utf8' }).stdout;
    const made = Number(/packets (\d+)/.exec(nft)?.[1] ?? NaN);
    delNs(ns);
    const c = readCtEvents(f('ct-events.out'));
    const b = readConntrack(f('conntrack.out'));
    const r = { secs, c, b, made, ctCpu: cpu1.ct - cpu0.ct, baseCpu: cpu1.base - cpu0.base, ctExit: ctExit.code ?? ctExit.sig, baseExit: baseExit.code ?? baseExit.sig };
    runs.push(r);
    console.log(`  run ${run}: flood ${secs.toFixed(2)} s (${fmt(FLOWS / secs)} flows/s), new flows counted by the kernel's rule ${fmt(made)} (incl. probes); ` +
      `ct-events ${fmt(c.flows)} captured (${pct(c.flows, FLOWS)}) + lost ${fmt(c.lost)} in ${c.overruns} overrun records, CPU ${r.ctCpu.toFixed(2)} s, exit ${r.ctExit}; ` +
      `conntrack ${fmt(b)} captured (${pct(b, FLOWS)}), CPU ${r.baseCpu.toFixed(2)} s, exit ${r.baseExit}; CPU ratio ${(r.ctCpu / r.baseCpu).toFixed(2)}x`);
    const show = (name, text) => {
      if (!text) return;
      const lines = text.split('\n');
      console.log(`    ${name} stderr (${lines.length} lines): ${lines.slice(0, 3).join(' | ')}${lines.length > 3 ? ' | …' : ''}`);
    };
    show('ct-events', readFileSync(f('ct-events.err'), 'utf8').trim());
    show('conntrack', readFileSync(f('conntrack.err'), 'utf8').trim());
  }
  const med = (xs) => { const a = [...xs].sort((x, y) => x - y); const m = a.length >> 1; return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2; };
  const mc = med(runs.map((r) => r.ctCpu)), mb = med(runs.map((r) => r.baseCpu));
  console.log(`  median of ${RUNS}: ct-events captured ${fmt(med(runs.map((r) => r.c.flows)))} of ${fmt(FLOWS)}, CPU ${mc.toFixed(2)} s (${(1e6 * mc / FLOWS).toFixed(2)} µs a flow); ` +
    `conntrack -E -e NEW -b ${ctBuf} captured ${fmt(med(runs.map((r) => r.b)))}, CPU ${mb.toFixed(2)} s (${(1e6 * mb / FLOWS).toFixed(2)} µs a flow)`);
  console.log(`  ratio ct-events/conntrack (median of the runs' ratios): CPU ${med(runs.map((r) => r.ctCpu / r.baseCpu)).toFixed(2)}x (target <= 1.0x); captured ${med(runs.map((r) => r.c.flows / r.b)).toFixed(3)}x`);
  console.log(`  load average after: ${load()}`);
  return best;
}

// The slow reader: reads a chunk, then pauses, until SIGUSR2, then reads at
// full speed; counts lines and flood events, and prints them at the end.
const READER = `
const inFlood = ${inFlood.toString().replace(/DST_NET/g, JSON.stringify(DST_NET)).replace(/PER_ADDR/g, String(PER_ADDR))};
let slow = true, rest = '', flows = 0, lost = 0, overruns = 0, lines = 0, maxQueued = 0;
process.on('SIGUSR2', () => { slow = false; process.stdin.resume(); });
process.stdin.on('data', (d) => {
  const parts = (rest + d).split('\\n'); rest = parts.pop();
  for (const p of parts) {
    lines++;
    const e = JSON.parse(p);
    if (e.event === 'new' && inFlood(e.dst, e.dport)) flows++;
    else if (e.event === 'overrun') { overruns++; lost += e.lost; }
    else if (e.event === 'stats') maxQueued = Math.max(maxQueued, e.queued);
  }
  if (slow) { process.stdin.pause(); setTimeout(() => process.stdin.resume(), 20); }
});
process.stdin.on('end', () => console.log(JSON.stringify({ lines, flows, lost, overruns, maxQueued })));
`;

async function slowBench(gen) {
  const FLOWS = SLOW_FLOWS;
  console.log(`\nslow consumer: ct-events --queue ${fmt(QUEUE)} | a reader taking one pipe read per 20 ms during the flood; ${fmt(FLOWS)} flows at ${fmt(SLOW_RATE)}/s`);
  const ns = floodNs();
  writeFileSync(path.join(tmp, 'reader.js'), READER);
  const errFile = path.join(tmp, 'slow.err');
  // ct-events' stdout is the pipe into the reader; stats every 0.2 s show the queue.
  const ct = spawn('ip', ['netns', 'exec', ns, BIN, '--counters-every', '0', '--queue', String(QUEUE), '--stats-interval', '0.2'], { stdio: ['ignore', 'pipe', openSync(errFile, 'w')] });
  const reader = spawn(process.execPath, [path.join(tmp, 'reader.js')], { stdio: [ct.stdout, 'pipe', 'inherit'] });
  let readerOut = '';
  reader.stdout.setEncoding('utf8').on('data', (d) => (readerOut += d));
  const readerDone = new Promise((r) => reader.on('close', r));
  const ctDone = new Promise((r) => ct.on('exit', (code, sig) => r(code ?? sig)));
  await sleep(1500); // ct-events subscribed (no probe here: the reader is deliberately slow)
  const secs = flood(ns, gen, FLOWS, 0, SLOW_RATE);
  console.log(`  flood sent in ${secs.toFixed(2)} s`);
  await sleep(2000);
  reader.kill('SIGUSR2'); // now read everything that is queued
  await sleep(3000);
  ct.kill('SIGTERM');
  const [ctExit] = await Promise.all([ctDone, readerDone]);
  delNs(ns);
  const r = JSON.parse(readerOut);
  console.log(`  ct-events exit: ${ctExit}; reader read ${fmt(r.lines)} lines`);
  console.log(`  reader received ${fmt(r.flows)} flood events; overrun records ${r.overruns} with lost ${fmt(r.lost)}`);
  console.log(`  received + lost = ${fmt(r.flows + r.lost)} of ${fmt(FLOWS)} flows (${r.flows + r.lost === FLOWS ? 'all accounted for' : `${fmt(FLOWS - r.flows - r.lost)} unaccounted`})`);
  console.log(`  largest queue in the stats records: ${fmt(r.maxQueued)} (bound ${fmt(QUEUE)})`);
  const err = readFileSync(errFile, 'utf8').trim();
  if (err) {
    const lines = err.split('\n');
    console.log(`  ct-events stderr (${lines.length} lines):\n    ${lines.slice(0, 4).join('\n    ')}${lines.length > 4 ? '\n    …' : ''}`);
  }
}

// Each measurement runs in a process of its own (this script with
// DECODE_PART set), so that none inherits another's JIT feedback; the best of
// RUNS runs is kept, since the machine is shared.
const DECODE_PARTS = [
  ['decode', 'split + decode'],
  ['decode-nocid', 'split + decode, no community_id'],
  ['json-text', 'split + decode + nowTs + JSON.stringify text'],
  ['json-bytes', 'split + decode + nowTs + JSON.stringify + UTF-8 bytes (ct-events before)'],
  ['writer', 'split + decode + nowTs + LineWriter bytes'],
  ['writer-cache', 'the same + community_id cache (ct-events)'],
  ['writer-nd', 'NEW+DESTROY only (the default -e): LineWriter, no cache'],
  ['writer-nd-cache', 'NEW+DESTROY only: + community_id cache (ct-events)'],
];

/** One decode measurement, in this process: prints {wall, cpu, bytes} as JSON. */
async function decodePart(part) {
  const { splitMessages, decodeConntrack, CommunityIdCache } = await import(path.join(ROOT, 'dist', 'src', 'netlink', 'conntrack.js'));
  const { nowTs } = await import(path.join(ROOT, 'dist', 'src', 'event.js'));
  const { LineWriter } = await import(path.join(ROOT, 'dist', 'src', 'event-json.js'));
  // The -nd parts replay only NEW and DESTROY messages, as ct-events' default
  // stream has them. Each replayed lifecycle ends in a DESTROY, which ends
  // its cache entry, so every pass hashes each NEW anew, as for new flows.
  const grams = fixtureGrams(part.includes('-nd') ? /-new|-destroy/ : null);
  const cidCache = part.endsWith('-cache') ? new CommunityIdCache() : undefined;
  const ts = nowTs();
  const w = new LineWriter();
  let lines = 0;
  // As the serializer does under load: the lines of a run of events become one chunk.
  const take = () => { const b = w.take(); lines = 0; return b.length; };
  const fns = {
    'decode': (b) => { for (const m of splitMessages(b)) decodeConntrack(b, m, { ts, host: 'h' }); return 0; },
    'decode-nocid': (b) => { for (const m of splitMessages(b)) decodeConntrack(b, m, { ts, host: 'h', communityId: false }); return 0; },
    'json-text': (b) => {
      const t = nowTs();
      let len = 0;
      for (const m of splitMessages(b)) len += (JSON.stringify(decodeConntrack(b, m, { ts: t, host: 'h' })) + '\n').length;
      return len;
    },
    'json-bytes': (b) => {
      const t = nowTs();
      let len = 0;
      for (const m of splitMessages(b)) len += Buffer.from(JSON.stringify(decodeConntrack(b, m, { ts: t, host: 'h' })) + '\n').length;
      return len;
    },
    'writer': (b) => {
      const t = nowTs();
      let len = 0;
      for (const m of splitMessages(b)) {
        w.line(decodeConntrack(b, m, { ts: t, host: 'h', cidCache }));
        if (++lines === 64) len += take();
      }
      return len;
    },
  };
  const fn = fns[part.startsWith('writer') ? 'writer' : part];
  // Warm up, then time about 2 s.
  for (let i = 0; i < 100000; i++) fn(grams[i % grams.length]);
  let n = 0, bytes = 0;
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const end = t0 + 2_000_000_000n;
  let now = t0;
  while (now < end) {
    for (let i = 0; i < 20000; i++) bytes += fn(grams[(n + i) % grams.length]);
    n += 20000;
    now = process.hrtime.bigint();
  }
  const c = process.cpuUsage(c0);
  const hitRate = cidCache ? cidCache.hits / (cidCache.hits + cidCache.misses) : undefined;
  console.log(JSON.stringify({ wall: n / (Number(now - t0) / 1e9), cpu: n / ((c.user + c.system) / 1e6), bytes: bytes / n, hitRate }));
}

function fixtureGrams(only = null) {
  const dir = path.join(ROOT, 'test', 'fixtures', 'netlink');
  return readdirSync(dir).sort().filter((n) => n.endsWith('.hex') && !n.startsWith('dump-') && (!only || only.test(n)))
    .map((n) => Buffer.from(readFileSync(path.join(dir, n), 'utf8').trim(), 'hex'));
}

async function decodeBench() {
  const RUNS = Math.max(1, Number(process.env.RUNS ?? 3));
  const { loadavg } = await import('node:os');
  const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(`\ndecode + serialize: ${fixtureGrams().length} captured event datagrams (TCP/UDP/ICMP, IPv4/IPv6, NEW/UPDATE/DESTROY), in memory, one core;` +
    ` best of ${RUNS} runs (RUNS=n), each in a process of its own; load average before: ${load()}`);
  const rate = {};
  for (const [part, label] of DECODE_PARTS) {
    let best = null;
    for (let r = 0; r < RUNS; r++) {
      const out = spawnSync(process.execPath, [fileURLToPath(import.meta.url)], { env: { ...process.env, DECODE_PART: part }, encoding: 'utf8' });
      if (out.status !== 0) throw new Error(`${part}: ${out.stderr}`);
      const x = JSON.parse(out.stdout.trim().split('\n').pop());
      if (!best || x.wall > best.wall) best = x;
    }
    rate[part] = best.wall;
    console.log(`  ${label.padEnd(76)} ${fmt(best.wall).padStart(10)} events/s` +
      ` (${fmt(best.cpu)}/CPU-s)${best.bytes > 1 ? `  ${best.bytes.toFixed(0)} bytes a line` : ''}${best.hitRate !== undefined ? `  cache hits ${(100 * best.hitRate).toFixed(0)}%` : ''}`);
  }
  const full = rate.writer;
  console.log(`  ratio LineWriter / JSON.stringify + bytes: ${(full / rate['json-bytes']).toFixed(2)}x; / JSON.stringify text alone: ${(full / rate['json-text']).toFixed(2)}x`);
  console.log(`  community_id cache: all messages ${(rate['writer-cache'] / full).toFixed(2)}x; NEW+DESTROY ${(rate['writer-nd-cache'] / rate['writer-nd']).toFixed(2)}x`);
  for (const [part, what] of [['writer-cache', 'all captured messages'], ['writer-nd-cache', 'NEW+DESTROY, the default stream']]) {
    const r = rate[part];
    console.log(`  target >= 300,000 events/s, as ct-events runs (${what}): ${r >= 300000 ? 'met' : 'NOT met'} (${(r / 300000).toFixed(2)}x)`);
  }
  console.log(`  load average after: ${load()}`);
}

if (process.env.DECODE_PART) {
  await decodePart(process.env.DECODE_PART);
  process.exit(0);
}

console.log(`ct-events bench: ${new Date().toISOString()}, node ${process.version}, ${(await import('node:os')).cpus().length} cores (shared with other work: figures vary)`);
if (process.getuid?.() !== 0 && (only.includes('flood') || only.includes('slow'))) {
  console.log('flood and slow-consumer parts need root (network namespaces): skipped');
} else {
  let gen = null;
  if (only.includes('flood')) gen = await floodBench();
  if (only.includes('slow')) {
    gen ??= generators()[0];
    await slowBench(gen);
  }
}
if (only.includes('decode')) await decodeBench();
