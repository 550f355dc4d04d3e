// The whole pipeline's bench (run as root after a build: npm run bench -- pipeline).
// Prints figures; asserts nothing.
//
// The flood of issue 18: FLOWS (default 200,000) new UDP flows from one
// process, which opens a new socket every SOCKET_EVERY (default 60,000)
// sends, at about RATE (default 95,000) flows/s, in a network namespace of
// its own. At the same time, in that namespace:
//   the pipeline  ct-events -e new --counters-every 0 | ct-attribute | ct-filter --no-dns
//   the baseline  conntrack -E -e NEW -b <ct-events' default receive buffer>
// (ct-attribute with its defaults: as root on a pipe, bpf and sock_diag.)
// Each writes to a file (in memory: see outBase). The bench counts the flood's flows that arrived at
// the pipeline's end and in conntrack's output, how many of the pipeline's
// name the flooding process's pid, the CPU time of each stage (from
// /proc/<pid>/stat; its system part too) and their total against conntrack's, each one's read and
// write system calls per flow (/proc/<pid>/io), the CPU per flow each
// captured (conntrack -E loses part of the flood), and the time from
// the flood's end until the pipeline wrote its last line (the output file's
// mtime). RUNS runs (default 3), each in a fresh namespace; medians; the
// load average before and after. ct-attribute runs with --stats (its counts
// are printed: sock_diag requests, bpf answers). ATTR_ARGS and FILTER_ARGS
// add options to ct-attribute and ct-filter (say FILTER_ARGS='--jobs 0');
// PROFILE=dir runs the three stages under node --cpu-prof into dir; KEEP=dir
// keeps each run's pipeline output there.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { accessSync, constants, copyFileSync, mkdtempSync, readFileSync, writeFileSync, rmSync, statSync, openSync, closeSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, floodNamespaces, DST_NET, PER_ADDR } from './lib.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PROFILE = process.env.PROFILE; // a directory: the stages run under node --cpu-prof into it
const bin = (n) => path.join(ROOT, 'bin', n);
const stage = (n, ...args) => PROFILE ? [process.execPath, '--cpu-prof', '--cpu-prof-dir', path.resolve(PROFILE), '--cpu-prof-name', `${n}.cpuprofile`, bin(n), ...args] : [bin(n), ...args];
const FLOWS = Number(process.env.FLOWS ?? 200000);
const RATE = Number(process.env.RATE ?? 95000);
const SOCKET_EVERY = Number(process.env.SOCKET_EVERY ?? 60000);
const RUNS = Math.max(1, Number(process.env.RUNS ?? 3));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const pct = (a, b) => `${((100 * a) / b).toFixed(2)}%`;
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const med = (xs) => { const a = [...xs].sort((x, y) => x - y); const m = a.length >> 1; return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2; };

const tmp = mkdtempSync(path.join(tmpdir(), 'ct-pipeline-bench-'));
// The outputs (300 MB of the pipeline's a run) go to memory (tmpfs,
// /dev/shm; OUT_DIR=dir elsewhere) and are removed after each run: on a
// disk, a few GB written made the system time of the writer, whichever it
// was (even `cat`), swing from 1x to 15x as the page cache filled, which
// showed here as ct-filter's CPU.
const outBase = process.env.OUT_DIR ?? (isWritableDir('/dev/shm') ? '/dev/shm' : tmpdir());
const outs = mkdtempSync(path.join(outBase, 'ct-pipeline-bench-'));
process.on('exit', () => {
  rmSync(tmp, { recursive: true, force: true });
  rmSync(outs, { recursive: true, force: true });
});

function isWritableDir(d) {
  try {
    accessSync(d, constants.W_OK);
    return statSync(d).isDirectory();
  } catch {
    return false;
  }
}
const { floodNs, delNs } = floodNamespaces('ctpb');

// One process: flow i goes to DST_NET.0.(1 + i / PER_ADDR), port 10000 +
// i % PER_ADDR, one sendto each; every `every` sends the socket is closed
// and a new one opened; paced to `rate` flows/s. Prints its pid, then the
// seconds the sending took.
const FLOOD_C = `
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
  long n = atol(argv[1]), every = atol(argv[2]); double rate = atof(argv[3]);
  printf("%d\\n", (int)getpid()); fflush(stdout);
  int s = -1;
  struct sockaddr_in to = { 0 }; to.sin_family = AF_INET;
  struct timespec t0, t1; clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < n; i++) {
    if (i % every == 0) {
      if (s >= 0) close(s);
      s = socket(AF_INET, SOCK_DGRAM, 0);
      if (s < 0) { perror("socket"); return 1; }
    }
    if (rate > 0 && (i & 63) == 0) for (;;) {
      clock_gettime(CLOCK_MONOTONIC, &t1);
      double el = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
      if (i <= el * rate) break;
      usleep(200);
    }
    to.sin_addr.s_addr = htonl((${DST_NET.split('.').map(Number).reduce((a, b) => a * 256 + b)}u << 16) | (1 + i / ${PER_ADDR}));
    to.sin_port = htons(10000 + i % ${PER_ADDR});
    if (sendto(s, "x", 1, 0, (struct sockaddr *)&to, sizeof to) < 0) { perror("sendto"); return 1; }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  close(s);
  printf("%.6f\\n", (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
  return 0;
}
`;

const inFlood = (addr, port) => addr?.startsWith(`${DST_NET}.0.`) && port >= 10000 && port < 10000 + PER_ADDR;

function spawnIn(ns, argv, stdio) {
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio });
  const exited = new Promise((r) => child.on('exit', (code, sig) => r(code ?? sig)));
  return { child, exited };
}

const size = (f) => { try { return statSync(f).size; } catch { return 0; } };
/** Wait until the files have stopped growing for `quiet` ms (or `max` ms passed). */
async function settle(files, quiet = 3000, max = 180000) {
  const end = Date.now() + max;
  let last = files.map(size), since = Date.now();
  while (Date.now() < end) {
    await sleep(100);
    const now = files.map(size);
    if (now.some((s, i) => s !== last[i])) { last = now; since = Date.now(); }
    else if (Date.now() - since >= quiet) return;
  }
}

/** Probe flows to a port outside the flood's range until `file` shows one. */
async function waitSubscribed(ns, file, probePort) {
  const probe = `import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.sendto(b'p', ('${DST_NET}.255.1', ${probePort}))`;
  for (let i = 0; i < 200; i++) {
    spawnSync('ip', ['netns', 'exec', ns, 'python3', '-c', probe]);
    await sleep(100);
    if (readFileSync(file, 'utf8').includes(`"dport":${probePort}`) || readFileSync(file, 'utf8').includes(`dport=${probePort} `)) return;
  }
  throw new Error(`${path.basename(file)} never showed the probe`);
}

/** A process's system CPU seconds (stime), the kernel's share of cpuSeconds (pipe copies, system calls). */
function sysSeconds(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[12]) / CLK_TCK;
  } catch {
    return NaN;
  }
}
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

function readPipeline(file, pid) {
  let flows = 0, mine = 0, overruns = 0, lost = 0, other = 0;
  const reasons = {};
  const text = readFileSync(file, 'utf8');
  let start = 0;
  for (let nl = text.indexOf('\n'); nl !== -1; start = nl + 1, nl = text.indexOf('\n', start)) {
    const e = JSON.parse(text.slice(start, nl));
    if (e.event === 'new' && inFlood(e.dst, e.dport)) {
      flows++;
      if (e.process?.pid === pid) mine++;
      else {
        const why = e.process ? `pid ${e.process.pid}` : `${e.attribution?.method}:${e.attribution?.reason}`;
        reasons[why] = (reasons[why] ?? 0) + 1;
      }
    } else if (e.event === 'overrun') { overruns++; lost += e.lost ?? 0; }
    else other++;
  }
  return { flows, mine, overruns, lost, other, reasons };
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

/** A process's read and write system calls and bytes, from /proc/<pid>/io. */
function ioCounts(pid) {
  const out = { syscr: NaN, syscw: NaN, wchar: NaN };
  try {
    for (const l of readFileSync(`/proc/${pid}/io`, 'utf8').split('\n')) {
      const [k, v] = l.split(': ');
      if (k in out) out[k] = Number(v);
    }
  } catch { /* gone */ }
  return out;
}

const STAGES = ['ct-events', 'ct-attribute', 'ct-filter'];

async function oneRun(run, floodBin, ctBuf) {
  const ns = floodNs();
  const f = (n) => path.join(outs, `${run}-${n}`);
  const out = openSync(f('pipeline.out'), 'w');
  const errs = STAGES.map((s) => openSync(f(`${s}.err`), 'w'));
  const ev = spawnIn(ns, stage('ct-events', '-e', 'new', '--counters-every', '0'), ['ignore', 'pipe', errs[0]]);
  const at = spawnIn(ns, stage('ct-attribute', '--stats', ...(process.env.ATTR_ARGS ? process.env.ATTR_ARGS.split(' ') : [])), [ev.child.stdout, 'pipe', errs[1]]);
  const fl = spawnIn(ns, stage('ct-filter', '--no-dns', ...(process.env.FILTER_ARGS ? process.env.FILTER_ARGS.split(' ') : [])), [at.child.stdout, out, errs[2]]);
  const ctOut = openSync(f('conntrack.out'), 'w');
  const ctErr = openSync(f('conntrack.err'), 'w');
  const base = spawnIn(ns, ['conntrack', '-E', '-e', 'NEW', '-b', String(ctBuf)], ['ignore', ctOut, ctErr]);
  for (const fd of [out, ctOut, ctErr, ...errs]) closeSync(fd);
  const stages = [ev, at, fl];
  await waitSubscribed(ns, f('pipeline.out'), 9);
  await waitSubscribed(ns, f('conntrack.out'), 9);
  await sleep(500);
  const pids = [...stages.map((s) => s.child.pid), base.child.pid];
  const cpu0 = pids.map(cpuSeconds);
  const sys0 = pids.map(sysSeconds);
  const io0 = pids.map(ioCounts);
  const r = spawnSync('ip', ['netns', 'exec', ns, floodBin, String(FLOWS), String(SOCKET_EVERY), String(RATE)], { encoding: 'utf8' });
  const floodEnd = Date.now();
  if (r.status !== 0) throw new Error(`flood: ${r.stderr}`);
  const [floodPid, secs] = r.stdout.trim().split('\n').map(Number);
  await settle([f('pipeline.out'), f('conntrack.out')]);
  const cpu1 = pids.map(cpuSeconds);
  const sys1 = pids.map(sysSeconds);
  const io1 = pids.map(ioCounts);
  const lastLine = statSync(f('pipeline.out')).mtimeMs;
  ev.child.kill('SIGTERM');
  base.child.kill('SIGINT');
  const exits = await Promise.all([...stages.map((s) => s.exited), base.exited]);
  const nft = spawnSync('ip', ['netns', 'exec', ns, 'nft', 'list', 'chain', 'inet', 'bench', 'out'], { encoding: 'utf8' }).stdout;
  const made = Number(/packets (\d+)/.exec(nft)?.[1] ?? NaN);
  delNs(ns);
  if (process.env.KEEP) copyFileSync(f('pipeline.out'), path.join(path.resolve(process.env.KEEP), `${run}-pipeline.out`));
  const p = readPipeline(f('pipeline.out'), floodPid);
  const b = readConntrack(f('conntrack.out'));
  for (const n of ['pipeline.out', 'conntrack.out']) rmSync(f(n), { force: true });
  const cpu = cpu1.map((c, i) => c - cpu0[i]);
  const sys = sys1.map((c, i) => c - sys0[i]);
  const total = cpu[0] + cpu[1] + cpu[2];
  // Per flow captured as well: conntrack -E loses part of a flood, and its CPU is spent on what it printed.
  const perFlow = (total / p.flows) / (cpu[3] / b);
  const res = { secs, p, b, made, cpu, sys, total, base: cpu[3], ratio: total / cpu[3], perFlow, catchUp: (lastLine - floodEnd) / 1000, exits };
  console.log(`  run ${run}: flood ${secs.toFixed(2)} s (${fmt(FLOWS / secs)} flows/s), kernel's rule counted ${fmt(made)} new flows (incl. probes)`);
  console.log(`    pipeline: ${fmt(p.flows)} captured (${pct(p.flows, FLOWS)}), lost ${fmt(p.lost)} in ${p.overruns} overrun records; ` +
    `${fmt(p.mine)} attributed to the flooder pid ${floodPid} (${pct(p.mine, FLOWS)} of the flood, ${pct(p.mine, p.flows)} of those captured); ` +
    `caught up ${res.catchUp.toFixed(2)} s after the flood's end`);
  const others = Object.entries(p.reasons).sort((x, y) => y[1] - x[1]).slice(0, 4).map(([k, v]) => `${k} ${fmt(v)}`).join(', ');
  if (others) console.log(`    not the flooder: ${others}`);
  console.log(`    conntrack -E: ${fmt(b)} captured (${pct(b, FLOWS)})`);
  console.log(`    CPU s: ${STAGES.map((s, i) => `${s} ${cpu[i].toFixed(2)}`).join(', ')}; total ${total.toFixed(2)}; conntrack ${cpu[3].toFixed(2)}; ratio ${res.ratio.toFixed(2)}x; ` +
    `per flow captured ${(1e6 * total / p.flows).toFixed(1)} us against ${(1e6 * cpu[3] / b).toFixed(1)} us, ${perFlow.toFixed(2)}x`);
  console.log(`    of which system (kernel) CPU s: ${[...STAGES, 'conntrack'].map((s, i) => `${s} ${sys[i].toFixed(2)}`).join(', ')}`);
  const io = io1.map((c, i) => Object.fromEntries(Object.keys(c).map((k) => [k, c[k] - io0[i][k]])));
  console.log(`    system calls per flow (reads/writes, bytes written): ${[...STAGES, 'conntrack'].map((s, i) => `${s} ${(io[i].syscr / FLOWS).toFixed(2)}/${(io[i].syscw / FLOWS).toFixed(2)}, ${Math.round(io[i].wchar / FLOWS)} B`).join('; ')}`);
  console.log(`    exits: ${[...STAGES, 'conntrack'].map((s, i) => `${s} ${exits[i]}`).join(', ')}`);
  for (const s of STAGES) {
    const all = readFileSync(f(`${s}.err`), 'utf8').trim().split('\n');
    // ct-attribute's --stats lines (its counts at the end), the rest of stderr abridged.
    const stats = s === 'ct-attribute' ? all.filter((l) => /^ct-attribute: (sock_diag:|bpf|netns|audit|attributed )/.test(l)) : [];
    const lines = all.filter((l) => l && !/ready|methods:|listening for/.test(l) && !stats.includes(l));
    for (const l of stats) console.log(`    ${l}`);
    if (lines.length) console.log(`    ${s} stderr (${lines.length} lines): ${lines.slice(0, 3).join(' | ')}`);
  }
  return res;
}

async function main() {
  if (process.geteuid?.() !== 0) {
    console.log('pipeline bench: needs root (network namespaces, ctnetlink, bpf)');
    process.exitCode = 1;
    return;
  }
  const floodBin = path.join(tmp, 'flood');
  const cc = spawnSync('cc', ['-O2', '-o', floodBin, '-x', 'c', '-'], { input: FLOOD_C, encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`cc: ${cc.stderr}`);
  const rmem = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8').trim());
  const { DEFAULT_RCVBUF } = await import(path.join(ROOT, 'dist', 'src', 'netlink', 'socket.js'));
  const ctBuf = Math.max(rmem, DEFAULT_RCVBUF);
  console.log(`pipeline: ${fmt(FLOWS)} new UDP flows from one process (a new socket every ${fmt(SOCKET_EVERY)} sends, paced to ${fmt(RATE)}/s)`);
  console.log(`  ct-events -e new --counters-every 0 | ct-attribute | ct-filter --no-dns, beside conntrack -E -e NEW -b ${ctBuf} (ct-events' default buffer)`);
  console.log(`  ${RUNS} runs (RUNS=n), each in a fresh namespace; load average before: ${load()}`);
  const runs = [];
  for (let run = 1; run <= RUNS; run++) runs.push(await oneRun(run, floodBin, ctBuf));
  const m = (fn) => med(runs.map(fn));
  console.log(`  median of ${RUNS}: pipeline captured ${fmt(m((r) => r.p.flows))} (${pct(m((r) => r.p.flows), FLOWS)}), conntrack -E ${fmt(m((r) => r.b))} (${pct(m((r) => r.b), FLOWS)}); ` +
    `attributed to the flooder ${pct(m((r) => r.p.mine), FLOWS)} of the flood (target >= 99%)`);
  console.log(`  median CPU s: ${STAGES.map((s, i) => `${s} ${m((r) => r.cpu[i]).toFixed(2)}`).join(', ')}; total ${m((r) => r.total).toFixed(2)}; conntrack ${m((r) => r.base).toFixed(2)}; ` +
    `ratio pipeline/conntrack (median of the runs' ratios) ${m((r) => r.ratio).toFixed(2)}x (target <= 3x); ` +
    `per flow each captured ${m((r) => r.perFlow).toFixed(2)}x`);
  console.log(`  median system CPU s: ${[...STAGES, 'conntrack'].map((s, i) => `${s} ${m((r) => r.sys[i]).toFixed(2)}`).join(', ')}`);
  console.log(`  median catch-up after the flood's end: ${m((r) => r.catchUp).toFixed(2)} s (target <= 2 s)`);
  const starts = [...STAGES.map((n) => [n, bin(n)]), ['conntrack', 'conntrack']].map(([n, cmd]) => `${n} ${startCpu(cmd).toFixed(2)}`);
  console.log(`  start-up CPU s (\`--version\`, median of 3; the figures above hold it once per stage): ${starts.join(', ')}`);
  console.log(`  load average after: ${load()}`);
}

/** The CPU seconds (user + system) of `cmd --version`, median of 3: what starting the command costs before any event (bash's \`times\`). */
function startCpu(cmd) {
  const one = () => {
    const r = spawnSync('bash', ['-c', '"$0" --version >/dev/null 2>&1; times', cmd], { encoding: 'utf8' });
    const child = (r.stdout.trim().split('\n')[1] ?? '').match(/(\d+)m([\d.]+)s (\d+)m([\d.]+)s/);
    return child ? Number(child[1]) * 60 + Number(child[2]) + Number(child[3]) * 60 + Number(child[4]) : NaN;
  };
  return med([one(), one(), one()]);
}

await main();
