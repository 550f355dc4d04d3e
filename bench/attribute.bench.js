// ct-attribute's bench (run as root): pid-correct attribution of short-lived
// client processes in a namespace (each started right before it connects),
// for three method sets (default, --no-bpf, the packaged service's
// capabilities) against the per-event /proc scan baseline
// (bench/baseline-procscan.js) fed the very same ct-events stream, with and
// without two CPU hogs; a flood of UDP flows from one process; added latency
// at idle; RSS after a million events. Prints figures; asserts nothing.
// ONLY=rate,flood,latency,rss,audit,cached picks parts; CLIENTS, REPEAT, HOGS=0,2
// and RATE_ROWS (row names, separated by ;) size the matrix. The cached
// part: events of flows whose owner is already known, one thread, against
// jq -c . on the same file (CACHED_EVENTS, CACHED_RUNS).
import { spawn, execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import path from 'node:path';
import { newEventsByPort } from './lib.js';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import { auditBench } from './audit-part.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = (n) => path.join(ROOT, 'bin', n);
const N = Number(process.env.CLIENTS ?? 100);
const FLOOD = Number(process.env.FLOOD ?? 200000);
// How long the flooding process keeps its socket after the flood (ms).
const FLOOD_HOLD = Number(process.env.FLOOD_HOLD ?? 0);
const only = (process.env.ONLY ?? 'rate,flood,latency,rss,audit,cached').split(',');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
if (process.getuid() !== 0) { console.log('attribute bench: needs root (network namespaces)'); process.exit(0); }

const tmp = mkdtempSync(path.join(tmpdir(), 'ct-attr-bench-'));
const client = path.join(tmp, 'client');
execFileSync('cc', ['-O2', '-o', client, path.join(ROOT, 'bench', 'client.c')]);

const sh = (cmd) => execFileSync('sh', ['-c', cmd], { stdio: ['ignore', 'pipe', 'inherit'] }).toString();
const A = `ctba${process.pid}`, B = `ctbb${process.pid}`;
function setup() {
  sh(`ip netns add ${A}; ip netns add ${B}; ip -n ${A} link set lo up; ip -n ${B} link set lo up;
      ip link add va${process.pid} netns ${A} type veth peer name vb${process.pid} netns ${B};
      ip -n ${A} addr add 10.231.0.1/24 dev va${process.pid}; ip -n ${B} addr add 10.231.0.2/24 dev vb${process.pid};
      ip -n ${A} addr add fd00:231::1/64 dev va${process.pid} nodad; ip -n ${B} addr add fd00:231::2/64 dev vb${process.pid} nodad;
      ip -n ${A} link set va${process.pid} up; ip -n ${B} link set vb${process.pid} up;
      ip -n ${A} route add 10.99.0.0/16 via 10.231.0.2;
      ip netns exec ${A} sysctl -qw net.netfilter.nf_conntrack_max=1048576 2>/dev/null || true`);
  execFileSync('ip', ['netns', 'exec', A, 'nft', '-f', '-'], { input: 'table inet ctb {\n chain out { type filter hook output priority 0; policy accept; ct state new counter; }\n}\n' });
}
function teardown() {
  spawnSync('ip', ['netns', 'del', A]);
  spawnSync('ip', ['netns', 'del', B]);
}

// A server in B: TCP accept+read+close on 7000, UDP sink on 7001 (v4 and v6).
function startServer() {
  const code = `
    const net = require('net'), dgram = require('dgram');
    for (const h of ['0.0.0.0', '::']) {
      net.createServer({}, (s) => { s.on('data', () => {}); s.on('error', () => {}); s.on('end', () => s.end()); }).listen({ port: 7000, host: h, ipv6Only: h === '::' });
      const u = h === '::' ? dgram.createSocket({ type: 'udp6', ipv6Only: true }) : dgram.createSocket('udp4'); u.bind(7001, h);
    }
    console.log('ready');`;
  const p = spawn('ip', ['netns', 'exec', B, process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve) => p.stdout.once('data', () => resolve(p)));
}

async function stopPipeline(p) {
  try { process.kill(-p.pid, 'SIGINT'); } catch { /* gone */ }
  await new Promise((r) => p.once('close', r));
  await sleep(300);
}

function runClient(args) {
  const nobody = args[0] === '--as-nobody';
  const argv = nobody ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', client, ...args.slice(1)] : [client, ...args];
  return new Promise((resolve) => {
    const c = spawn('ip', ['netns', 'exec', A, ...argv], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('close', () => {
      const [pid, proto, sport] = out.trim().split(' ');
      resolve(pid ? { pid: Number(pid), proto, sport: Number(sport) } : null);
    });
  });
}

// Ephemeral ports are reused across a run, so one (proto, sport) can name
// several flows: a client counts as right when a NEW event with its port
// names its pid, and as wrong only when every such event names another.
// Two clients of one row that got the same port to the same server make one
// flow between them (the second datagram or connection joins or follows
// the first's entry), so neither is scored: `shared` counts them.
function score(file, clients) {
  const byKey = newEventsByPort(file);
  const uses = new Map();
  for (const c of clients) uses.set(`${c.proto}/${c.sport}`, (uses.get(`${c.proto}/${c.sport}`) ?? 0) + 1);
  let seen = 0, right = 0, wrong = 0, shared = 0;
  /** Why the clients not named were not, by reason. */
  const missed = {};
  for (const c of clients) {
    if (uses.get(`${c.proto}/${c.sport}`) > 1) { shared++; continue; }
    const evs = byKey.get(`${c.proto}/${c.sport}`);
    if (!evs) { missed['no NEW event'] = (missed['no NEW event'] ?? 0) + 1; continue; }
    seen++;
    if (evs.some((ev) => ev.process && ev.process.pid === c.pid)) right++;
    else {
      if (evs.some((ev) => ev.process)) wrong++;
      else {
        const r = evs[evs.length - 1].attribution?.reason ?? 'none';
        missed[r] = (missed[r] ?? 0) + 1;
      }
      // RATE_DEBUG=1: what the events of clients not named right say.
      if (process.env.RATE_DEBUG) console.log(`    ${file.split('/').pop()}: client pid ${c.pid} ${c.proto}/${c.sport}: ${evs.map((ev) => `${ev.ts} ${ev.direction} ${ev.process ? `pid ${ev.process.pid}` : 'no process'} ${JSON.stringify(ev.attribution)}`).join('; ')}`);
    }
  }
  return { seen, right, wrong, shared, missed };
}

// The matrix: method sets (columns: the default, as root, where the bpf
// method loads the addon's own BPF programs through libbpf; --no-bpf; the packaged service's capability set, as nobody
// through setpriv; and the per-event /proc scan baseline), all fed the same
// ct-events stream, against client kinds (rows), without and with two CPU
// hogs beside the pipeline. Each cell is the median of REPEAT runs of
// CLIENTS clients, each a process started right before it connects.
const REPEAT = Number(process.env.REPEAT ?? 3);
// What packaging/ctpipe-pipeline gives ct-attribute.
const SERVICE_CAPS = '+dac_read_search,+sys_ptrace,+bpf,+perfmon';
const KINDS = [
  { name: 'TCP, closed at once', proto: 'tcp', host: '10.231.0.2', hold: 0, at: 10 },
  { name: 'UDP, closed at once', proto: 'udp', host: '10.231.0.2', hold: 0, at: 10 },
  { name: 'TCP6, closed at once', proto: 'tcp', host: 'fd00:231::2', hold: 0, at: 10 },
  { name: 'TCP, held 50 ms', proto: 'tcp', host: '10.231.0.2', hold: 50, at: 10 },
  { name: 'UDP as nobody, held 50 ms', proto: 'udp', host: '10.231.0.2', hold: 50, at: 10, nobody: true },
  { name: 'TCP, held 50 ms, bursts of 20', proto: 'tcp', host: '10.231.0.2', hold: 50, at: 20 },
];
const COLUMNS = [['default', 'a'], ['--no-bpf', 'q'], ['service caps', 's'], ['/proc-scan baseline', 'b']];

function startMatrixPipeline(files) {
  const svc = `setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps ${SERVICE_CAPS} --ambient-caps ${SERVICE_CAPS} ${BIN('ct-attribute')}`;
  const cmd = `${BIN('ct-events')} -p tcp -p udp | tee >(node ${path.join(ROOT, 'bench', 'baseline-procscan.js')} > ${files.b}) >(${BIN('ct-attribute')} --no-bpf > ${files.q} 2> ${files.q}.err) >(${svc} > ${files.s} 2> ${files.s}.err) | ${BIN('ct-attribute')} --stats > ${files.a} 2> ${files.a}.err`;
  return spawn('ip', ['netns', 'exec', A, 'bash', '-c', cmd], { stdio: ['ignore', 'inherit', 'inherit'], detached: true });
}

function hogs(n) {
  return Array.from({ length: n }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
}

async function cell(kind, hogCount, rep) {
  const tag = `${kind.proto}-${kind.hold}-${kind.at}-${kind.nobody ? 'n' : 'r'}-${kind.host.includes(':') ? 6 : 4}-h${hogCount}-${rep}`;
  const files = Object.fromEntries(COLUMNS.map(([, k]) => [k, path.join(tmp, `${k}-${tag}.ndjson`)]));
  const p = startMatrixPipeline(files);
  // Four node processes start on two shared cores, the bpf method loads and
  // attaches the addon's programs, ct-events subscribes: all before the first client.
  await sleep(4000);
  const h = hogs(hogCount);
  await sleep(200);
  const clients = [];
  const port = kind.proto === 'tcp' ? '7000' : '7001';
  const args = [kind.proto, kind.host, port, String(kind.hold)];
  for (let i = 0; i < N; i += kind.at) {
    const batch = await Promise.all(Array.from({ length: Math.min(kind.at, N - i) }, () => runClient(kind.nobody ? ['--as-nobody', ...args] : args)));
    for (const c of batch) if (c) clients.push(c);
  }
  await sleep(1000);
  for (const x of h) x.kill('SIGKILL');
  await stopPipeline(p);
  const out = {};
  for (const [, k] of COLUMNS) out[k] = score(files[k], clients);
  out.clients = clients.length;
  out.methods = (readFileSync(`${files.s}.err`, 'utf8').match(/^ct-attribute: methods: (.*)$/m) ?? [, '?'])[1];
  return out;
}

async function rates() {
  const server = await startServer();
  const pick = process.env.RATE_ROWS ? process.env.RATE_ROWS.split(';') : null;
  const hogSet = (process.env.HOGS ?? '0,2').split(',').map(Number);
  const median = (xs) => { const a = [...xs].sort((x, y) => x - y); return a[Math.floor((a.length - 1) / 2)]; };
  console.log(`pid-correct share of scored clients per cell (median of ${REPEAT} runs of ${N} clients; min-max in brackets; wrong pids summed over runs); load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  let serviceMethods = null;
  for (const hogCount of hogSet) {
    console.log(`  ${hogCount ? `with ${hogCount} CPU hogs (node busy loops) beside the pipeline` : 'no CPU hogs'}:`);
    for (const kind of KINDS.filter((k) => !pick || pick.includes(k.name))) {
      const runs = [];
      for (let r = 0; r < REPEAT; r++) runs.push(await cell(kind, hogCount, r));
      serviceMethods ??= runs[0].methods;
      const cols = COLUMNS.map(([label, k]) => {
        const pct = runs.map((x) => { const n = x.clients - x[k].shared; return n ? (100 * x[k].right) / n : 0; });
        const wrong = runs.reduce((s, x) => s + x[k].wrong, 0);
        const why = {};
        for (const x of runs) for (const [r, n] of Object.entries(x[k].missed ?? {})) why[r] = (why[r] ?? 0) + n;
        const whyText = Object.entries(why).map(([r, n]) => `${r} ${n}`).join(', ');
        return `${label} ${median(pct).toFixed(1)}% [${Math.min(...pct).toFixed(1)}-${Math.max(...pct).toFixed(1)}] wrong ${wrong}${k !== 'b' && whyText ? ` (missed: ${whyText})` : ''}`;
      });
      const shared = runs.reduce((s, x) => s + x.a.shared, 0);
      console.log(`    ${kind.name.padEnd(30)} ${cols.join('; ')}  (clients ${runs.map((x) => x.clients).join('/')}, ${shared} sharing a port not scored; load ${loadavg()[0].toFixed(2)})`);
    }
  }
  console.log(`  the service column's ct-attribute said: ${serviceMethods}`);
  server.kill();
}

async function flood() {
  // As ct-attribute runs by default here (as root: with the bpf method), and with --no-bpf.
  for (const flags of ['', '--no-bpf']) {
    const fa = path.join(tmp, `flood-a${flags}.ndjson`);
    const cmd = `${BIN('ct-events')} -p udp -e new | ${BIN('ct-attribute')} ${flags} --stats > ${fa} 2> ${fa}.err`;
    const p = spawn('ip', ['netns', 'exec', A, 'bash', '-c', cmd], { stdio: ['ignore', 'inherit', 'inherit'], detached: true });
    await sleep(4000);
    const t0 = Date.now();
    // Past 64,000 ports the flood moves to the next address; 10.99/16 is routed
    // through B, so no address waits for ARP.
    const c = await runClient(['udp', '10.99.0.1', '7001', String(FLOOD_HOLD), String(FLOOD)]);
    const dt = Date.now() - t0;
    // Let the pipeline catch up, then stop it.
    let last = -1;
    for (;;) {
      await sleep(1000);
      const n = readFileSync(fa, 'utf8').length;
      if (n === last) break;
      last = n;
    }
    await stopPipeline(p);
    let news = 0, mine = 0, lost = 0, overruns = 0;
    for (const line of readFileSync(fa, 'utf8').split('\n')) {
      if (!line) continue;
      const ev = JSON.parse(line);
      if (ev.event === 'overrun') { overruns++; lost += ev.lost; }
      if (ev.event === 'new') { news++; if (ev.process && ev.process.pid === c.pid) mine++; }
    }
    const bpf = (readFileSync(`${fa}.err`, 'utf8').match(/bpf: (sightings.*)$/m) ?? [, 'bpf not used'])[1];
    console.log(`flood, ct-attribute ${flags || '(default)'}: ${FLOOD} UDP flows from pid ${c.pid} in ${dt} ms (${Math.round(FLOOD / (dt / 1000))} flows/s), socket held ${FLOOD_HOLD} ms after; ct-events | ct-attribute wrote ${news} NEW events, ${mine} attributed to the flooding pid (${((100 * mine) / FLOOD).toFixed(2)}% of flows), overrun records ${overruns}, lost ${lost}; load average ${loadavg()[0].toFixed(2)}\n    ${bpf}`);
  }
}

// Added latency at idle: one NEW event a time for a live TCP connection,
// write -> read back, through ct-attribute and through `cat` (the baseline).
// A pipeline runs for days: its steady state is what the target is about.
// V8 compiles a function's optimized code only after many calls, and at one
// event per 5 ms that takes a few thousand events; until then some events
// pay for compiling, or run unoptimized code. So two windows are reported:
// SAMPLES events after COLD (300) events, and SAMPLES after WARMUP (3000).
const COLD = Number(process.env.COLD ?? 300);
const WARMUP = Number(process.env.WARMUP ?? 3000);
const SAMPLES = Number(process.env.SAMPLES ?? 1000);
const pcts = (t) => {
  const a = [...t].sort((x, y) => x - y);
  return { p50: a[Math.floor(a.length * 0.5)], p99: a[Math.floor(a.length * 0.99)], max: a[a.length - 1] };
};
async function latency() {
  const srv = net.createServer((s) => s.on('data', () => {})).listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const port = srv.address().port;
  const conn = net.connect(port, '127.0.0.1');
  await new Promise((r) => conn.once('connect', r));
  const ev = { ts: new Date().toISOString(), event: 'new', id: 1, family: 'ipv4', proto: 'tcp', src: '127.0.0.1', sport: conn.localPort, dst: '127.0.0.1', dport: port,
    reply: { src: '127.0.0.1', sport: port, dst: '127.0.0.1', dport: conn.localPort }, state: 'SYN_SENT', status: ['CONFIRMED'] };
  const total = Math.max(COLD, WARMUP) + SAMPLES;
  const windows = (times) => ({ cold: pcts(times.slice(COLD, COLD + SAMPLES)), warm: pcts(times.slice(WARMUP, WARMUP + SAMPLES)) });
  async function measure(cmd, args) {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    const times = [];
    let pending = null;
    let buf = '';
    p.stdout.on('data', (d) => { buf += d; if (buf.includes('\n') && pending) { buf = ''; const r = pending; pending = null; r(); } });
    for (let i = 0; i < total; i++) {
      const e = { ...ev, id: i + 1, ts: new Date().toISOString() };
      const t = process.hrtime.bigint();
      await new Promise((r) => { pending = r; p.stdin.write(JSON.stringify(e) + '\n'); });
      times.push(Number(process.hrtime.bigint() - t) / 1e6);
      await sleep(5);
    }
    p.stdin.end();
    await new Promise((r) => p.once('close', r));
    return windows(times);
  }
  const load0 = loadavg()[0];
  const a = await measure(BIN('ct-attribute'), []);
  const b = await measure('cat', []);
  const f = (x) => `p50 ${x.p50.toFixed(3)} ms p99 ${x.p99.toFixed(3)} ms max ${x.max.toFixed(3)} ms`;
  for (const [w, label] of [['warm', `after ${WARMUP} events (steady state)`], ['cold', `after ${COLD} events (still compiling)`]]) {
    console.log(`latency at idle, ${SAMPLES} events one at a time ${label}; load average ${load0.toFixed(2)}-${loadavg()[0].toFixed(2)}: ct-attribute ${f(a[w])}; cat ${f(b[w])}; added p50 ${(a[w].p50 - b[w].p50).toFixed(3)} ms, p99 ${(a[w].p99 - b[w].p99).toFixed(3)} ms`);
  }
  // The same lookups in this process, with no pipes between: what
  // attributing costs by itself (the rest above is two processes waking
  // each other up through pipes).
  const { createEngine } = await import(path.join(ROOT, 'dist', 'src', 'attribute', 'factory.js'));
  const attr = createEngine({ euid: 0, bpf: false, netns: false });
  const inproc = [];
  for (let i = 0; i < total; i++) {
    const e = { ...ev, id: 1000000 + i, ts: new Date().toISOString() };
    const t = process.hrtime.bigint();
    attr.beginBatch();
    if (!attr.attributeNow(e)) await attr.attribute(e);
    inproc.push(Number(process.hrtime.bigint() - t) / 1e6);
    await sleep(5);
  }
  attr.close();
  const ip = windows(inproc);
  console.log(`    the same events attributed in this process (no pipes): steady state ${f(ip.warm)}; after ${COLD} events ${f(ip.cold)}`);
  conn.destroy();
  srv.close();
}

// RSS after one million events: flows whose sockets do not exist (each is
// looked up and remembered), so the flow memory fills to its bound; by
// default, without the DNS names, and without any enrichment, RSS_RUNS (3)
// runs of each, alternating; peak RSS is the kernel's high-water mark
// (VmHWM), read until the process ends; medians.
const RSS_RUNS = Number(process.env.RSS_RUNS ?? 3);
async function rss() {
  const file = path.join(tmp, 'million.ndjson');
  const parts = [];
  for (let i = 0; i < 1000000; i++) {
    const sport = 10000 + (i % 50000);
    parts.push(JSON.stringify({ ts: '2026-11-23T07:41:33.965873Z', event: i % 3 === 2 ? 'destroy' : 'new', id: i + 1, family: 'ipv4', proto: i % 2 ? 'udp' : 'tcp', src: '127.0.0.1', sport, dst: '127.0.0.1', dport: 9, reply: { src: '127.0.0.1', sport: 9, dst: '127.0.0.1', dport: sport }, status: ['CONFIRMED'], mark: 0, zone: 0, host: 'bench' }));
  }
  writeFileSync(file, parts.join('\n') + '\n');
  const SETS = [['defaults (DNS names, ancestry 4)', []], ['--no-dns-names', ['--no-dns-names']], ['--no-dns-names --ancestry 0', ['--no-dns-names', '--ancestry', '0']]];
  const peaks = SETS.map(() => []);
  console.log(`one million events through ct-attribute (flows whose sockets do not exist), ${RSS_RUNS} runs of each option set alternating; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  for (let i = 0; i < RSS_RUNS; i++) {
    for (const [k, [label, flags]] of SETS.entries()) {
      const t0 = Date.now();
      const p = spawn(BIN('ct-attribute'), [...flags, file], { stdio: ['ignore', 'ignore', 'inherit'] });
      let hwm = 0;
      const timer = setInterval(() => {
        try { const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${p.pid}/status`, 'utf8')); if (m) hwm = Math.max(hwm, Number(m[1])); } catch { /* exited */ }
      }, 200);
      await new Promise((r) => p.once('close', r));
      clearInterval(timer);
      const dt = (Date.now() - t0) / 1000;
      peaks[k].push(hwm / 1024);
      console.log(`  run ${i + 1}, ${label}: ${dt.toFixed(1)} s (${Math.round(1e6 / dt)} events/s), peak RSS ${(hwm / 1024).toFixed(0)} MB; load ${loadavg()[0].toFixed(2)}`);
    }
  }
  const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  console.log(`  median peak RSS: ${SETS.map(([label], k) => `${label} ${med(peaks[k]).toFixed(0)} MB`).join(', ')} (target < 150 MB); load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
}

// Throughput on flows whose owner is already known: one process in A holds
// SOCKETS UDP sockets connected to addresses routed through B; a file has a
// NEW event for each (as ct-events writes them), then UPDATE events of
// those flows in turn, which ct-attribute's flow memory answers. It reads
// the file as a saved input (sock_diag only) in one thread; `jq -c .` (one
// thread) reads the same file as the baseline, `cat` for the cost of the
// pipe alone. Output to /dev/null; a first run's output, counted, says
// every event arrived and was attributed to the holder.
const CACHED = Number(process.env.CACHED_EVENTS ?? 500000);
const CACHED_RUNS = Number(process.env.CACHED_RUNS ?? 3);
async function cached() {
  const SOCKETS = 200;
  const holderCode = `
    const dgram = require('dgram');
    const socks = [];
    let left = ${SOCKETS};
    for (let i = 0; i < ${SOCKETS}; i++) {
      const s = dgram.createSocket('udp4');
      socks.push(s);
      s.connect(7001, '10.99.' + (1 + (i >> 8)) + '.' + (1 + (i & 255)), () => { if (--left === 0) console.log(JSON.stringify({ pid: process.pid, socks: socks.map((x) => [x.address().address, x.address().port, x.remoteAddress().address]) })); });
    }
    process.stdin.on('end', () => process.exit(0)).resume();`;
  const holder = spawn('ip', ['netns', 'exec', A, process.execPath, '-e', holderCode], { stdio: ['pipe', 'pipe', 'inherit'] });
  const info = await new Promise((resolve) => { let b = ''; holder.stdout.on('data', (d) => { b += d; if (b.includes('\n')) resolve(JSON.parse(b)); }); });
  const file = path.join(tmp, 'cached.ndjson');
  const ev = (kind, i, n) => {
    const [src, sport, dst] = info.socks[i];
    return JSON.stringify({ ts: new Date(Date.UTC(2026, 10, 23) + n).toISOString().replace('Z', '123Z'), event: kind, id: 3000000 + i, family: 'ipv4', proto: 'udp', src, sport, dst, dport: 7001,
      reply: { src: dst, sport: 7001, dst: src, dport: sport }, status: kind === 'new' ? ['CONFIRMED'] : ['SEEN_REPLY', 'CONFIRMED'], timeout: kind === 'new' ? 30 : 120, mark: 0, zone: 0,
      community_id: '1:' + Buffer.from(String(i).padStart(20, '0')).toString('base64').slice(0, 27) + '=', host: 'bench' });
  };
  const parts = [];
  for (let i = 0; i < SOCKETS; i++) parts.push(ev('new', i, i));
  for (let n = SOCKETS; n < CACHED; n++) parts.push(ev('update', n % SOCKETS, n));
  writeFileSync(file, parts.join('\n') + '\n');
  // One counted run: every event arrives, each attributed to the holder.
  const counter = path.join(tmp, 'count.js');
  writeFileSync(counter, `let n = 0, mine = 0, b = '';
process.stdin.setEncoding('utf8').on('data', (d) => {
  b += d;
  for (let i; (i = b.indexOf('\\n')) >= 0; b = b.slice(i + 1)) { const e = JSON.parse(b.slice(0, i)); n++; if (e.process && e.process.pid === ${info.pid}) mine++; }
}).on('end', () => console.log(n + ' ' + mine));`);
  const check = spawnSync('sh', ['-c', `ip netns exec ${A} ${BIN('ct-attribute')} < ${file} | ${process.execPath} ${counter}`], { encoding: 'utf8', maxBuffer: 1 << 20 });
  const [arrived, mine] = check.stdout.trim().split(' ').map(Number);
  const time = (cmd) => {
    const t0 = process.hrtime.bigint();
    const r = spawnSync('sh', ['-c', `${cmd} < ${file} > /dev/null`], { stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0) console.log(`  ${cmd}: exit ${r.status}: ${r.stderr.toString().slice(0, 300)}`);
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  const median = (xs) => { const a = [...xs].sort((x, y) => x - y); return a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2; };
  const rows = [
    ['ct-attribute (defaults)', `ip netns exec ${A} ${BIN('ct-attribute')}`],
    ['ct-attribute --ancestry 0 --no-dns-names', `ip netns exec ${A} ${BIN('ct-attribute')} --ancestry 0 --no-dns-names`],
    ['jq -c .', 'jq -c .'],
    ['cat', 'cat'],
  ];
  console.log(`cached owners: ${CACHED.toLocaleString('en-US')} events (${SOCKETS} NEW, then UPDATEs of those flows) of UDP sockets held by pid ${info.pid}; counted run: ${arrived} arrived, ${mine} attributed to the holder; median of ${CACHED_RUNS} runs, one thread each; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const times = rows.map(() => []);
  // In turn, so that a change of load touches every row alike.
  for (let r = 0; r < CACHED_RUNS; r++) rows.forEach(([, cmd], k) => times[k].push(time(cmd)));
  const rate = {};
  rows.forEach(([name], k) => {
    rate[name] = CACHED / median(times[k]);
    console.log(`  ${name.padEnd(42)} ${Math.round(rate[name]).toLocaleString('en-US').padStart(10)} events/s  (runs: ${times[k].map((t) => t.toFixed(2)).join(', ')} s)`);
  });
  console.log(`  ratio ct-attribute / jq -c ., one thread each: ${(rate['ct-attribute (defaults)'] / rate['jq -c .']).toFixed(2)}x (without enrichments ${(rate['ct-attribute --ancestry 0 --no-dns-names'] / rate['jq -c .']).toFixed(2)}x); target >= 300,000 events/s; load average now ${loadavg()[0].toFixed(2)}`);
  holder.stdin.end();
}

try {
  setup();
  if (only.includes('cached')) await cached();
  if (only.includes('rate')) await rates();
  if (only.includes('flood')) await flood();
  if (only.includes('latency')) await latency();
  if (only.includes('rss')) await rss();
  if (only.includes('audit')) await auditBench({ A, B, ROOT, BIN, tmp, startServer, runClient, score, sleep, N });
} finally {
  teardown();
  rmSync(tmp, { recursive: true, force: true });
}
