// ct-attribute's bench for containers (run as root): a host namespace H,
// CONTAINERS namespaces behind it (veth, masquerade, each with a long-lived
// "pause" process and clients under a Docker-shaped cgroup), and X, the
// internet. Prints:
//  - rate: pid-correct attribution of short-lived clients in the containers
//    (sockets held HOLD ms, 50 by default), `ct-events | ct-attribute` in H,
//    against the per-event scan baseline (bench/baseline-netns-scan.js) in a
//    separate pass of the same clients (NOBASE=1 skips it);
//  - cost: time per forwarded event of the namespace index and socket
//    tables (NetnsResolver, in this process, over HELD live sockets per
//    container), one event per event-loop turn and in batches of 64, against
//    the same baseline and, for scale, ct-attribute's host path (sock_diag)
//    on a loopback connection; and what a refresh of the index costs;
//  - router: ct-attribute's throughput on forwarded flows of no namespace
//    here (a router's), against --no-netns.
// Asserts nothing.
import { spawn, execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, rmSync, rmdirSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = (n) => path.join(ROOT, 'bin', n);
const K = Number(process.env.CONTAINERS ?? 4);
const N = Number(process.env.CLIENTS ?? 200);
const HOLD = Number(process.env.HOLD ?? 50);
const HELD = Number(process.env.HELD ?? 50);
const only = (process.env.ONLY ?? 'rate,cost,router').split(',');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
if (process.getuid() !== 0) { console.log('netns bench: needs root (network namespaces, cgroups)'); process.exit(0); }

const { NetnsResolver } = await import('../dist/src/attribute/sources/netns/resolver.js');
const { NetnsIndex } = await import('../dist/src/attribute/sources/netns/namespaces.js');
const { SocketIndex } = await import('../dist/src/proc/sockets.js');
const { ProcessReader } = await import('../dist/src/proc/process.js');
const { createEngine } = await import('../dist/src/attribute/factory.js');
const { ownerOf } = await import('./baseline-netns-scan.js');

const tmp = mkdtempSync(path.join(tmpdir(), 'ct-netns-bench-'));
const client = path.join(tmp, 'client');
execFileSync('cc', ['-O2', '-o', client, path.join(ROOT, 'bench', 'client.c')]);
const sh = (cmd) => execFileSync('sh', ['-c', cmd], { stdio: ['ignore', 'pipe', 'inherit'] }).toString();
const id = process.pid % 100000;
const H = `ctnbh${process.pid}`, X = `ctnbx${process.pid}`;
const C = Array.from({ length: K }, (_, i) => `ctnb${i}_${process.pid}`);
const addr = (i) => `10.247.${i + 1}.2`;
const XA = '10.247.99.2';

// The cgroup hierarchy /proc/PID/cgroup is read from first (cgroup v2, else name=systemd).
function cgroupMount() {
  let systemd = null;
  for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const [, dir, type, opts] = line.split(' ');
    if (type === 'cgroup2') return dir;
    if (type === 'cgroup' && opts?.split(',').includes('name=systemd')) systemd = dir;
  }
  return systemd;
}
const CG = cgroupMount();
const TOP = `ctnb${process.pid}.slice`;
const ids = C.map(() => randomBytes(32).toString('hex'));
const prefix = (i) => {
  if (!CG) return [];
  const dir = path.join(CG, TOP, 'system.slice', `docker-${ids[i]}.scope`);
  return ['sh', '-c', `echo $$ > '${dir}/cgroup.procs' && exec "$@"`, 'sh'];
};

const procs = [];
function setup() {
  sh(`ip netns add ${H}; ip -n ${H} link set lo up; ip netns add ${X}; ip -n ${X} link set lo up;
      ip link add hx${id} netns ${H} type veth peer name ex${id} netns ${X};
      ip -n ${H} addr add 10.247.99.1/24 dev hx${id}; ip -n ${X} addr add ${XA}/24 dev ex${id};
      ip -n ${H} link set hx${id} up; ip -n ${X} link set ex${id} up;
      ip netns exec ${H} sysctl -qw net.ipv4.ip_forward=1;
      ip netns exec ${H} sysctl -qw net.netfilter.nf_conntrack_max=1048576 2>/dev/null || true`);
  C.forEach((c, i) => sh(`ip netns add ${c}; ip -n ${c} link set lo up;
      ip link add h${i}x${id} netns ${H} type veth peer name e${i}x${id} netns ${c};
      ip -n ${H} addr add 10.247.${i + 1}.1/24 dev h${i}x${id}; ip -n ${c} addr add ${addr(i)}/24 dev e${i}x${id};
      ip -n ${H} link set h${i}x${id} up; ip -n ${c} link set e${i}x${id} up; ip -n ${c} route add default via 10.247.${i + 1}.1`));
  execFileSync('ip', ['netns', 'exec', H, 'nft', '-f', '-'], { input: `table inet ctnb {\n chain f { type filter hook forward priority 0; policy accept; ct state new counter; }\n}
table ip ctnbnat {\n chain post { type nat hook postrouting priority 100; policy accept; ip saddr 10.247.0.0/16 oifname "hx${id}" masquerade; }\n}\n` });
  for (let i = 0; i < K; i++) {
    if (CG) mkdirSync(path.join(CG, TOP, 'system.slice', `docker-${ids[i]}.scope`), { recursive: true });
    mkdirSync(path.join(tmp, 'docker', 'containers', ids[i]), { recursive: true });
    writeFileSync(path.join(tmp, 'docker', 'containers', ids[i], 'config.v2.json'), JSON.stringify({ Name: `/bench-${i}`, Config: { Image: 'bench:1' } }));
    // A container's first process lives as long as the container (pause, init).
    const argv = [...prefix(i), 'ip', 'netns', 'exec', C[i], 'sleep', 'infinity'];
    procs.push(spawn(argv[0], argv.slice(1), { stdio: 'ignore' }));
  }
}

function teardown() {
  for (const p of procs) { try { p.kill('SIGKILL'); } catch { /* gone */ } }
  for (const ns of [H, X, ...C]) spawnSync('ip', ['netns', 'del', ns]);
  if (CG && existsSync(path.join(CG, TOP))) {
    const rm = (d) => {
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) rm(path.join(d, e.name));
      for (let i = 0; i < 100; i++) { try { rmdirSync(d); return; } catch { spawnSync('sleep', ['0.05']); } }
    };
    rm(path.join(CG, TOP));
  }
}

async function startServer() {
  const code = `
    const net = require('net'), dgram = require('dgram');
    net.createServer((s) => { s.on('data', () => {}); s.on('error', () => {}); s.on('end', () => s.end()); }).listen(7000, '0.0.0.0');
    dgram.createSocket('udp4').bind(7001, '0.0.0.0');
    console.log('ready');`;
  const p = spawn('ip', ['netns', 'exec', X, process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  procs.push(p);
  await new Promise((resolve) => p.stdout.once('data', resolve));
}

function runClient(i, proto) {
  const argv = [...prefix(i), 'ip', 'netns', 'exec', C[i], client, proto, XA, proto === 'tcp' ? '7000' : '7001', String(HOLD)];
  const start = Date.now();
  return new Promise((resolve) => {
    const c = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('close', () => {
      const [pid, p, sport] = out.trim().split(' ');
      resolve(pid ? { pid: Number(pid), proto: p, sport: Number(sport), src: addr(i), start } : null);
    });
  });
}

// A client whose source port an earlier client of its container used, while
// that one's UDP flow was still in the table, makes no NEW event of its own
// (the packets belong to the existing flow): it is counted apart ("reused"),
// neither right nor wrong.
function score(file, clients) {
  const byKey = new Map();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    const ev = JSON.parse(line);
    if (ev.event !== 'new') continue;
    const k = `${ev.proto}/${ev.src}/${ev.sport}`;
    if (!byKey.has(k)) byKey.set(k, []);
    byKey.get(k).push(ev);
  }
  let seen = 0, right = 0, wrong = 0, reused = 0;
  for (const c of clients) {
    const all = byKey.get(`${c.proto}/${c.src}/${c.sport}`);
    if (!all) continue;
    const evs = all.filter((ev) => Date.parse(ev.ts) >= c.start - 5);
    if (!evs.length) { reused++; continue; }
    seen++;
    if (evs.some((ev) => ev.process && ev.process.pid === c.pid)) right++;
    else if (evs.some((ev) => ev.process)) wrong++;
  }
  return { seen, right, wrong, reused };
}

const pct = (x, n) => (n ? ((100 * x) / n).toFixed(1) : '-') + '%';

// One pass of clients through a pipeline in H; returns the clients and the output file.
async function pass(proto, stage, file) {
  const cmd = `${BIN('ct-events')} -p tcp -p udp | ${stage} > ${file}`;
  const p = spawn('ip', ['netns', 'exec', H, 'bash', '-c', cmd], { stdio: ['ignore', 'inherit', 'inherit'], detached: true });
  await sleep(1500);
  const clients = [];
  for (let i = 0; i < N; i += 4) {
    const batch = await Promise.all([0, 1, 2, 3].map((j) => runClient((i + j) % K, proto)));
    for (const c of batch) if (c) clients.push(c);
  }
  // The baseline may lag far behind: wait until its output stops growing.
  let last = -1;
  for (;;) {
    await sleep(1000);
    const n = existsSync(file) ? readFileSync(file).length : 0;
    if (n === last) break;
    last = n;
  }
  try { process.kill(-p.pid, 'SIGINT'); } catch { /* gone */ }
  await new Promise((r) => p.once('close', r));
  return clients;
}

// ct-attribute and the baseline in separate passes of the same clients, so
// that neither takes the other's CPU (the machine has two cores).
async function rates() {
  for (const proto of (process.env.PROTOS ?? 'tcp,udp').split(',')) {
    const fa = path.join(tmp, `a-${proto}.ndjson`), fb = path.join(tmp, `b-${proto}.ndjson`);
    const ca = await pass(proto, `${BIN('ct-attribute')} --docker-root ${tmp}/docker`, fa);
    const cb = process.env.NOBASE ? [] : await pass(proto, `node ${path.join(ROOT, 'bench', 'baseline-netns-scan.js')}`, fb);
    const a = score(fa, ca), b = process.env.NOBASE ? { seen: 0, right: 0, wrong: 0, reused: 0 } : score(fb, cb);
    const evs = readFileSync(fa, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e.event === 'new' && e.src.startsWith('10.247.'));
    const named = evs.filter((e) => e.process?.container?.name?.startsWith('bench-')).length;
    const reasons = {};
    for (const e of evs) if (!e.attribution?.ok) reasons[e.attribution?.reason] = (reasons[e.attribution?.reason] ?? 0) + 1;
    console.log(`rate ${proto}: ${ca.length} clients in ${K} containers (4 at a time), sockets held ${HOLD} ms, own NEW event seen for ${a.seen} (port reused from a live flow: ${a.reused}); ct-attribute pid-correct ${pct(a.right, a.seen)} of those (wrong ${a.wrong}, with container name ${named}, unattributed: ${Object.entries(reasons).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}); per-event scan baseline ${pct(b.right, b.seen)} of ${b.seen} (wrong ${b.wrong}); ratio ${(b.right ? (a.right / a.seen) / (b.right / b.seen) : Infinity).toFixed(2)}x`);
  }
}

// Live sockets held in each container: HELD TCP connections and HELD UDP sockets.
async function holders() {
  const code = `
    const net = require('net'), dgram = require('dgram');
    const M = Number(process.argv[1]); const ports = []; let n = 0;
    const done = () => { if (++n === 2 * M) console.log(JSON.stringify({ pid: process.pid, ports })); };
    for (let i = 0; i < M; i++) {
      const c = net.connect(7000, '${XA}', () => { ports.push(['tcp', c.localPort]); done(); });
      const u = dgram.createSocket('udp4'); u.send('x', 7001, '${XA}', () => { ports.push(['udp', u.address().port]); done(); });
    }
    setInterval(() => {}, 1e9);`;
  const out = [];
  for (let i = 0; i < K; i++) {
    const argv = [...prefix(i), 'ip', 'netns', 'exec', C[i], process.execPath, '-e', code, String(HELD)];
    const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
    procs.push(p);
    const line = await new Promise((r) => { let s = ''; p.stdout.on('data', (d) => { s += d; if (s.includes('\n')) r(s); }); });
    const h = JSON.parse(line);
    for (const [proto, sport] of h.ports) out.push({ pid: h.pid, ev: { ts: 'x', event: 'new', id: out.length + 1, family: 'ipv4', proto, src: addr(i), sport, dst: XA, dport: proto === 'tcp' ? 7000 : 7001, status: [], reply: { src: XA, sport: proto === 'tcp' ? 7000 : 7001, dst: '10.247.99.1', dport: sport } } });
  }
  return out;
}

const us = (ns, n) => (Number(ns) / 1000 / n).toFixed(1);

async function cost() {
  const held = await holders();
  const r = new NetnsResolver({ index: new SocketIndex(), procs: new ProcessReader({ freshMs: 50 }), peer: false, runtimes: { docker: path.join(tmp, 'docker') } });
  for (const h of held) await r.resolve(h.ev); // warm: namespaces, fd index, process details
  // One forwarded event per event-loop turn (idle: each pays for its table reads).
  let t = process.hrtime.bigint();
  let right = 0;
  const ROUNDS = 3;
  for (let k = 0; k < ROUNDS; k++) for (const h of held) { const x = await r.resolve(h.ev); if (x?.process?.pid === h.pid) right++; }
  const single = process.hrtime.bigint() - t;
  // Batches of 64 (a burst: one read of each table serves the batch).
  const B = 64;
  const order = [...held].sort(() => Math.random() - 0.5);
  t = process.hrtime.bigint();
  let rightB = 0;
  for (let k = 0; k < ROUNDS; k++) {
    for (let i = 0; i < order.length; i += B) {
      const part = order.slice(i, i + B);
      const res = await Promise.all(part.map((h) => r.resolve(h.ev)));
      res.forEach((x, j) => { if (x?.process?.pid === part[j].pid) rightB++; });
    }
  }
  const batched = process.hrtime.bigint() - t;
  // The baseline, on a sample (it is slow).
  const sample = held.filter((_, i) => i % Math.max(1, Math.floor(held.length / 40)) === 0);
  t = process.hrtime.bigint();
  let rightS = 0;
  for (const h of sample) if (ownerOf(h.ev) === h.pid) rightS++;
  const base = process.hrtime.bigint() - t;
  // The index's refreshes, in a steady state (no namespace or process young
  // enough to be read again at each refresh).
  const ix = r.namespaces;
  const steady = new NetnsIndex({ youngMs: 0, youngPidMs: 0 });
  steady.refresh(true);
  t = process.hrtime.bigint();
  for (let i = 0; i < 20; i++) steady.refresh();
  const inc = process.hrtime.bigint() - t;
  t = process.hrtime.bigint();
  for (let i = 0; i < 20; i++) steady.refresh(true);
  const full = process.hrtime.bigint() - t;
  const pids = readdirSync('/proc').filter((x) => /^\d+$/.test(x)).length;
  // ct-attribute's host path, for scale: a loopback TCP connection of this process, no flow memory.
  const srv = net.createServer((s) => s.on('data', () => {})).listen(0, '127.0.0.1');
  await new Promise((res) => srv.once('listening', res));
  const conn = net.connect(srv.address().port, '127.0.0.1');
  await new Promise((res) => conn.once('connect', res));
  const at = createEngine({ flowCache: false, euid: process.geteuid(), bpf: false, netns: false });
  const hev = (i) => ({ ts: 'x', event: 'new', id: i, family: 'ipv4', proto: 'tcp', src: '127.0.0.1', sport: conn.localPort, dst: '127.0.0.1', dport: srv.address().port, status: [],
    reply: { src: '127.0.0.1', sport: srv.address().port, dst: '127.0.0.1', dport: conn.localPort } });
  for (let i = 0; i < 50; i++) await at.attribute(hev(i));
  const HN = 600;
  t = process.hrtime.bigint();
  for (let i = 0; i < HN; i++) { at.beginBatch(); await at.attribute(hev(i)); }
  const host = process.hrtime.bigint() - t;
  at.close();
  conn.destroy();
  srv.close();
  const n1 = ROUNDS * held.length;
  console.log(`cost per forwarded event, ${K} containers x ${HELD} TCP + ${HELD} UDP live sockets, ${ix.size} namespaces on this machine:`);
  console.log(`  NetnsResolver one event per turn: ${us(single, n1)} us (pid-correct ${pct(right, n1)}); batches of ${B}: ${us(batched, n1)} us (pid-correct ${pct(rightB, n1)}); table reads ${r.stats.tableReads}`);
  console.log(`  per-event scan baseline: ${us(base, sample.length)} us (pid-correct ${pct(rightS, sample.length)} of ${sample.length}); ratio ${(Number(base) / sample.length / (Number(single) / n1)).toFixed(0)}x one per turn, ${(Number(base) / sample.length / (Number(batched) / n1)).toFixed(0)}x batched`);
  console.log(`  for scale, ct-attribute's host path (sock_diag, loopback TCP, both ends): ${us(host, HN)} us per event`);
  console.log(`  index refresh (${pids} processes, ${steady.size} namespaces): incremental ${us(inc, 20)} us (at most every 25 ms while unknown addresses come), full ${us(full, 20)} us (every namespace's addresses read again; in use, 8 at most every 250 ms, only while forwarded flows come)`);
}

// A router's forwarded flows (no address of any namespace here): what the
// namespace lookups add to ct-attribute's throughput, against --no-netns.
async function router() {
  const file = path.join(tmp, 'fwd.ndjson');
  const M = 200000;
  const parts = [];
  for (let i = 0; i < M; i++) {
    const src = `198.18.${(i >> 8) & 255}.${i & 255}`, sport = 10000 + (i % 50000);
    parts.push(JSON.stringify({ ts: '2026-11-23T07:41:33.965873Z', event: 'new', id: i + 1, family: 'ipv4', proto: i % 2 ? 'udp' : 'tcp', src, sport, dst: '203.0.113.9', dport: 443,
      reply: { src: '203.0.113.9', sport: 443, dst: src, dport: sport }, status: ['CONFIRMED'], mark: 0, zone: 0, host: 'bench' }));
  }
  writeFileSync(file, parts.join('\n') + '\n');
  const run = (args) => {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(BIN('ct-attribute'), [...args, file], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) throw new Error(`ct-attribute ${args.join(' ')} exited ${r.status}`);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  run(['--no-netns']); // warm the page cache
  let off = Infinity, on = Infinity;
  for (let i = 0; i < 3; i++) { off = Math.min(off, run(['--no-netns'])); on = Math.min(on, run([])); }
  console.log(`router: ${M} forwarded events with no namespace's address, best of 3 (interleaved): ct-attribute ${(M / on * 1000).toFixed(0)} events/s (${(on * 1000 / M).toFixed(2)} us each), --no-netns ${(M / off * 1000).toFixed(0)} events/s (${(off * 1000 / M).toFixed(2)} us each); ratio ${(on / off).toFixed(2)}x the time`);
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    teardown();
    rmSync(tmp, { recursive: true, force: true });
    process.exit(130);
  });
}

try {
  console.log(`load average at start: ${loadavg().map((x) => x.toFixed(2)).join(' ')} (2 cores, shared)`);
  setup();
  await startServer();
  if (only.includes('rate')) await rates();
  if (only.includes('cost')) await cost();
  if (only.includes('router')) await router();
  console.log(`load average at end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
} finally {
  teardown();
  rmSync(tmp, { recursive: true, force: true });
}
