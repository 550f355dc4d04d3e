// ct-attribute --bpf end to end: real kernel tracepoints through bpftrace.
// Clients in namespace A connect (TCP) or send (UDP) to a server in B,
// close and exit at once, IPv4 and IPv6, some as user nobody. Their NEW
// events (from ct-events in A) are handed to ct-attribute only after every
// client has exited, so sock_diag can find none of their sockets: the
// owners can only come from what the tracepoints saw at syscall time. The
// same events through `ct-attribute --no-bpf` show that. Namespace C plays
// a container: its flows to B are forwarded and masqueraded by A, and its
// clients' ports are looked up in C's namespace.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, symlinkSync, rmSync, readdirSync, readlinkSync, writeFileSync, chmodSync, existsSync, readFileSync } from 'node:fs';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BIN, needRoot, sleep, delNetns, lines, PY, PY_CLIENT, PY_SINK, runBin, withoutMethods } from '../helpers.js';
import { dockerCgroup, cgroupTop, removeCgroups } from '../cgroups.js';

const skip = needRoot();
const A = `ctpa${process.pid}`;
const B = `ctpb${process.pid}`;
const VA = `vpa${process.pid % 100000}`;
const VB = `vpb${process.pid % 100000}`;
const C = `ctpc${process.pid}`;
const VC = `vpc${process.pid % 100000}`;
const VAC = `vpd${process.pid % 100000}`;


interface Client { pid: number; sport: number; proto: string; user: string }

function client(proto: string, host: string, asNobody = false, ns = A, pre: string[] = []): Client {
  const cmd = [...pre, 'ip'];
  const r = execFileSync(cmd[0], [...cmd.slice(1), 'netns', 'exec', ns, ...(asNobody ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : []),
    PY, '-c', PY_CLIENT, proto, host, proto === 'tcp' ? '7000' : '7001', '0'], { encoding: 'utf8' });
  const [pid, sport] = r.trim().split(' ').map(Number);
  return { pid, sport, proto, user: asNobody ? 'nobody' : 'root' };
}

let events: ChildProcess | null = null;
let attr: ChildProcess | null = null;
let sink: ChildProcess | null = null;
/** The container's long-running process (what keeps a container's namespace known). */
let cInit: ChildProcess | null = null;
let evText = '';
let attrOut = '';
let attrErr = '';

before(async () => {
  if (skip) return;
  execFileSync('sh', ['-c', `ip netns add ${A}; ip netns add ${B}; ip -n ${A} link set lo up; ip -n ${B} link set lo up;
      ip link add ${VA} netns ${A} type veth peer name ${VB} netns ${B};
      ip -n ${A} addr add 10.233.0.1/24 dev ${VA}; ip -n ${B} addr add 10.233.0.2/24 dev ${VB};
      ip -n ${A} addr add fd00:233::1/64 dev ${VA} nodad; ip -n ${B} addr add fd00:233::2/64 dev ${VB} nodad;
      ip -n ${A} link set ${VA} up; ip -n ${B} link set ${VB} up;
      ip netns add ${C}; ip -n ${C} link set lo up;
      ip link add ${VAC} netns ${A} type veth peer name ${VC} netns ${C};
      ip -n ${A} addr add 10.234.0.1/24 dev ${VAC}; ip -n ${C} addr add 10.234.0.2/24 dev ${VC};
      ip -n ${A} link set ${VAC} up; ip -n ${C} link set ${VC} up;
      ip -n ${C} route add default via 10.234.0.1;
      ip netns exec ${A} sysctl -qw net.ipv4.ip_forward=1`], { stdio: 'ignore' });
  execFileSync('ip', ['netns', 'exec', A, 'nft', '-f', '-'], { input: `table inet ctt {\n chain out { type filter hook output priority 0; policy accept; ct state new counter; }\n}\ntable ip ctnat {\n chain post { type nat hook postrouting priority 100; oifname "${VA}" masquerade; }\n}\n` });
  cInit = spawn('ip', ['netns', 'exec', C, 'sleep', '600'], { stdio: 'ignore' });
  sink = spawn('ip', ['netns', 'exec', B, PY, '-c', PY_SINK], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => sink!.stdout!.once('data', r));
  events = spawn('ip', ['netns', 'exec', A, BIN('ct-events'), '-e', 'new'], { stdio: ['ignore', 'pipe', 'inherit'] });
  events.stdout!.setEncoding('utf8').on('data', (d) => (evText += d));
  attr = spawn('ip', ['netns', 'exec', A, BIN('ct-attribute'), '--bpf', '--stats'], { stdio: ['pipe', 'pipe', 'pipe'] });
  attr.stdout!.setEncoding('utf8').on('data', (d) => (attrOut += d));
  attr.stderr!.setEncoding('utf8').on('data', (d) => (attrErr += d));
});

after(() => {
  if (skip) return;
  for (const p of [events, attr, sink, cInit]) if (p && p.exitCode === null) p.kill('SIGKILL');
  delNetns(A);
  delNetns(B);
  delNetns(C);
  try { removeCgroups(cgroupTop('ctpbpf')); } catch { /* not made, or removed */ }
});

/** Hand ct-attribute the events ct-events wrote since the last call. */
let fed = 0;
function feed(): void {
  const end = evText.lastIndexOf('\n') + 1;
  attr!.stdin!.write(evText.slice(fed, end));
  fed = end;
}

test('--bpf names the owners of connect-send-close-exit clients that sock_diag can no longer see', { skip }, async () => {
  // Ready when a warm-up client's flow, handed over after it exited, comes back named by bpf.
  const deadline = Date.now() + 30000;
  for (;;) {
    assert.ok(Date.now() < deadline, `ct-attribute --bpf never named a warm-up client; its stderr: ${attrErr}`);
    const w = client('udp', '10.233.0.2');
    await sleep(300);
    feed();
    await sleep(300);
    if (lines(attrOut).some((e) => e.sport === w.sport && e.attribution?.method === 'bpf' && e.process?.pid === w.pid)) break;
  }
  const clients: Client[] = [];
  for (const host of ['10.233.0.2', 'fd00:233::2']) {
    for (const proto of ['tcp', 'udp']) {
      clients.push(client(proto, host), client(proto, host), client(proto, host, true));
    }
  }
  // A client in a Docker-shaped cgroup: gone before /proc was read, its
  // container still comes from the cgroup id the tracepoint saw.
  const top = cgroupTop('ctpbpf');
  const docker = dockerCgroup(top);
  const inDocker = client('udp', '10.233.0.2', false, A, docker.prefix);
  // Clients in the container: flows forwarded (and masqueraded) by A.
  const inC: Client[] = [client('tcp', '10.233.0.2', false, C), client('udp', '10.233.0.2', false, C), client('tcp', '10.233.0.2', true, C), client('udp', '10.233.0.2', true, C)];
  await sleep(500); // every client has exited: none of their sockets is left to look up
  const from = fed;
  feed();
  const batch = evText.slice(from, fed);
  attr!.stdin!.end();
  const code = await new Promise<number | null>((r) => (attr!.exitCode !== null ? r(attr!.exitCode) : attr!.once('close', r)));
  assert.equal(code, 0, attrErr);
  const news = lines(attrOut).filter((e) => e.event === 'new');
  for (const c of clients) {
    const ev = news.find((e) => e.proto === c.proto && e.sport === c.sport && e.dport === (c.proto === 'tcp' ? 7000 : 7001));
    assert.ok(ev, `NEW for ${c.proto} sport ${c.sport}`);
    assert.equal(ev.direction, 'out');
    assert.deepEqual(ev.attribution, { method: 'bpf', ok: true }, JSON.stringify(ev));
    assert.equal(ev.process.pid, c.pid, JSON.stringify(ev));
    assert.equal(ev.process.uid, c.user === 'nobody' ? 65534 : 0);
    assert.equal(ev.process.user, c.user);
    assert.equal(ev.process.comm, 'python3');
  }
  const dev = news.find((e) => e.proto === 'udp' && e.sport === inDocker.sport && e.src === '10.233.0.1');
  assert.ok(dev, 'NEW for the client in a Docker-shaped cgroup');
  assert.equal(dev.process?.pid, inDocker.pid, JSON.stringify(dev));
  assert.equal(dev.process.cgroup, docker.cgroup, JSON.stringify(dev));
  assert.equal(dev.process.container?.id, docker.id);
  removeCgroups(top);
  const cNetns = Number(/net:\[(\d+)\]/.exec(execFileSync('readlink', [`/proc/${cInit!.pid}/ns/net`], { encoding: 'utf8' }))?.[1] ?? NaN);
  for (const c of inC) {
    const ev = news.find((e) => e.proto === c.proto && e.sport === c.sport && e.src === '10.234.0.2');
    assert.ok(ev, `NEW for the container's ${c.proto} sport ${c.sport}`);
    assert.equal(ev.direction, 'fwd');
    assert.deepEqual(ev.attribution, { method: 'bpf', ok: true, side: 'src' }, JSON.stringify(ev));
    assert.equal(ev.process.pid, c.pid, JSON.stringify(ev));
    assert.equal(ev.process.user, c.user);
    assert.equal(ev.process.netns, cNetns);
  }
  assert.match(attrErr, /bpf: sightings \d+/);

  // The same events without --bpf: sock_diag finds none of these owners.
  const plain = await runBin('ct-attribute', ['--no-bpf'], batch, { prefix: ['ip', 'netns', 'exec', A] });
  assert.equal(plain.code, 0, plain.stderr);
  const plainNews = lines(plain.stdout).filter((e) => e.event === 'new');
  for (const c of [...clients, ...inC]) {
    const ev = plainNews.find((e) => e.proto === c.proto && e.sport === c.sport);
    assert.ok(ev, `NEW for ${c.proto} sport ${c.sport} without --bpf`);
    assert.equal(ev.process, undefined, JSON.stringify(ev));
    assert.match(ev.attribution.method, /sock_diag$/);
  }
});

test('--bpf without bpftrace: a one-line error and exit status 1; without --bpf it runs on, quietly', { skip }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ct-nobpf-'));
  try {
    symlinkSync(process.execPath, path.join(dir, 'node'));
    const env = { ...process.env, PATH: dir };
    const r = spawnSync(BIN('ct-attribute'), ['--bpf'], { input: '', env, encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'ct-attribute: bpf: bpftrace is not installed (Debian: apt-get install bpftrace)\n');
    const ev = JSON.stringify({ ts: new Date().toISOString(), event: 'new', id: 1, family: 'ipv4', proto: 'udp', src: '127.0.0.1', sport: 1, dst: '127.0.0.1', dport: 9, reply: { src: '127.0.0.1', sport: 9, dst: '127.0.0.1', dport: 1 } });
    const auto = spawnSync('/bin/sh', ['-c', `echo '${ev}' | ${BIN('ct-attribute')}`], { env, encoding: 'utf8' });
    assert.equal(auto.status, 0, auto.stderr);
    assert.match(auto.stderr, /^ct-attribute: methods: sock_diag live .*bpf not live: bpftrace is not installed \(fix: apt-get install bpftrace\)/, 'why bpf is not live, and the fix');
    assert.equal(withoutMethods(auto.stderr), '');
    assert.equal(lines(auto.stdout)[0].attribution.method, 'sock_diag');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('by default, events are attributed while bpftrace is still attaching; one that never attached is stopped quietly at the end', { skip }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ct-slowbpf-'));
  const mark = path.join(dir, 'started');
  // A bpftrace that starts and never attaches (never says "ready").
  writeFileSync(path.join(dir, 'bpftrace'), `#!/bin/sh\necho $$ > '${mark}'\nexec sleep 600\n`);
  chmodSync(path.join(dir, 'bpftrace'), 0o755);
  const sock = dgram.createSocket('udp4');
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  const sport = sock.address().port;
  const p = spawn(BIN('ct-attribute'), [], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } });
  let out = '', err = '';
  p.stdout!.setEncoding('utf8').on('data', (d) => (out += d));
  p.stderr!.setEncoding('utf8').on('data', (d) => (err += d));
  try {
    for (let i = 0; i < 100 && !existsSync(mark); i++) await sleep(100);
    assert.ok(existsSync(mark), 'ct-attribute started its bpftrace');
    const ev = { ts: new Date().toISOString(), event: 'new', id: 1, family: 'ipv4', proto: 'udp', src: '127.0.0.1', sport, dst: '192.0.2.1', dport: 9, reply: { src: '192.0.2.1', sport: 9, dst: '127.0.0.1', dport: sport } };
    p.stdin!.write(JSON.stringify(ev) + '\n');
    // Answered by sock_diag long before this bpftrace could attach (it never will).
    for (let i = 0; i < 100 && !out.includes('\n'); i++) await sleep(100);
    const got = lines(out);
    assert.equal(got.length, 1, `an answer while bpftrace is attaching; stderr: ${err}`);
    assert.equal(got[0].process?.pid, process.pid);
    assert.equal(got[0].attribution.method, 'sock_diag');
    p.stdin!.end();
    const [code] = await once(p, 'close');
    assert.equal(code, 0, err);
    assert.match(err, /^ct-attribute: methods: .*bpf live \(starting: bpftrace attaching its probes/, 'said at start: bpf is starting');
    assert.equal(withoutMethods(err), '', 'a bpftrace stopped before it attached is no news at the end');
  } finally {
    if (p.exitCode === null) p.kill('SIGKILL');
    // The fake bpftrace has a process group of its own: stopped here if ct-attribute did not.
    try { process.kill(Number(readFileSync(mark, 'utf8')), 'SIGKILL'); } catch { /* stopped, or never started */ }
    sock.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bpftrace gone in the middle of a run: one line on stderr, and ct-attribute goes on without it', { skip }, async () => {
  const p = spawn(BIN('ct-attribute'), ['--bpf'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '', err = '';
  p.stdout!.setEncoding('utf8').on('data', (d) => (out += d));
  p.stderr!.setEncoding('utf8').on('data', (d) => (err += d));
  // bpftrace is ct-attribute's child (unshare and sh, when used, exec it).
  let child = 0;
  for (let i = 0; i < 300 && !child; i++) {
    await sleep(100);
    const r = spawnSync('pgrep', ['-P', String(p.pid), '-x', 'bpftrace'], { encoding: 'utf8' });
    child = Number(r.stdout.trim().split('\n')[0]) || 0;
  }
  assert.ok(child, 'bpftrace started');
  // Attached once it holds the tracepoints' perf events (and a moment for its "ready").
  const attached = () => {
    try { return readdirSync(`/proc/${child}/fd`).some((f) => { try { return readlinkSync(`/proc/${child}/fd/${f}`) === 'anon_inode:[perf_event]'; } catch { return false; } }); } catch { return false; }
  };
  for (let i = 0; i < 300 && !attached(); i++) await sleep(100);
  assert.ok(attached(), 'bpftrace attached its probes');
  await sleep(500);
  process.kill(child, 'SIGKILL');
  for (let i = 0; i < 50 && !/bpftrace exited/.test(err); i++) await sleep(100);
  assert.match(err, /^ct-attribute: bpf: bpftrace exited \(SIGKILL\); owners are no longer seen at syscall time$/m);
  const ev = { ts: new Date().toISOString(), event: 'new', id: 7, family: 'ipv4', proto: 'udp', src: '127.0.0.1', sport: 1, dst: '127.0.0.1', dport: 9, reply: { src: '127.0.0.1', sport: 9, dst: '127.0.0.1', dport: 1 } };
  p.stdin!.end(JSON.stringify(ev) + '\n');
  const code = await new Promise<number | null>((r) => p.once('close', r));
  assert.equal(code, 0, err);
  assert.equal(lines(out)[0].id, 7);
  assert.equal(withoutMethods(err).trim().split('\n').length, 1, err);
});
