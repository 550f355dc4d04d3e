// NetnsResolver against real namespaces and processes (root): a "container"
// (its own network namespace, a Docker-shaped cgroup, Docker's config file in
// a data root of the test's own) holds TCP and UDP sockets; flows from and to
// its address are resolved to its process, its container's name and image
// and its namespace, and nothing is named when it cannot be told apart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { needRoot, delNetns } from '../helpers.js';
import { dockerCgroup, cgroupTop, removeCgroups, type FakeContainer } from '../cgroups.js';
import { NetnsResolver } from '../../src/attribute/sources/netns/resolver.js';
import { NsDiag } from '../../src/attribute/sources/netns/nsdiag.js';
import { SocketIndex } from '../../src/proc/sockets.js';
import { ProcessReader } from '../../src/proc/process.js';
import type { FlowEvent } from '../../src/event.js';

const skip = needRoot();
const PY = '/usr/bin/python3';
const C = `ctrc${process.pid}`, D = `ctrd${process.pid}`, E = `ctre${process.pid}`;
const ADDR = '10.245.0.2';
const TOP = cgroupTop('ctrr');

const HOLD = `
import socket, sys, os
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('0.0.0.0', int(sys.argv[2])))
port = 0
if sys.argv[1] == 'full':
    l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(('0.0.0.0', 8080)); l.listen(8)
    c = socket.socket(); c.connect(('${ADDR}', 8080)); a, _ = l.accept(); port = c.getsockname()[1]
print(os.getpid(), port, flush=True)
sys.stdin.read()
`;

let root = '';
let ctr: FakeContainer;
let full: { pid: number; port: number } | null = null;
const procs: ChildProcess[] = [];

function hold(ns: string, mode: string, udpPort: number, prefix: string[] = []): Promise<{ pid: number; port: number }> {
  const argv = [...prefix, 'ip', 'netns', 'exec', ns, PY, '-c', HOLD, mode, String(udpPort)];
  const p = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  procs.push(p);
  return new Promise((resolve, reject) => {
    p.once('error', reject);
    let out = '';
    p.stdout!.on('data', (d) => {
      out += d;
      if (!out.includes('\n')) return;
      const [pid, port] = out.trim().split(' ').map(Number);
      resolve({ pid, port });
    });
  });
}

function ev(proto: string, src: string, sport: number, dst: string, dport: number, reply?: Partial<FlowEvent['reply']>): FlowEvent {
  return { ts: '2026-11-23T00:00:00.000000Z', event: 'new', id: 1, family: 'ipv4', proto, src, sport, dst, dport, status: [],
    reply: { src: dst, sport: dport, dst: src, dport: sport, ...reply } };
}

function resolver(diag: NsDiag | false) {
  return new NetnsResolver({ diag, index: new SocketIndex(), procs: new ProcessReader({ cmdline: true }), runtimes: { docker: path.join(root, 'docker'), containerd: path.join(root, 'none'), storage: [] } });
}

const MODES = [
  { name: 'sock_diag inside the namespace', diag: () => new NsDiag(), method: 'netns-sock_diag' },
  { name: '/proc/PID/net tables', diag: () => false as const, method: 'netns-proc' },
];
const diags: NsDiag[] = [];

before(async () => {
  if (skip) return;
  root = mkdtempSync(path.join(tmpdir(), 'ct-netns-res-'));
  for (const ns of [C, D, E]) {
    execFileSync('sh', ['-c', `ip netns add ${ns} && ip -n ${ns} link set lo up && ip -n ${ns} link add v0 type veth peer name v1 && ip -n ${ns} addr add ${ADDR}/24 dev v0 && ip -n ${ns} link set v0 up && ip -n ${ns} link set v1 up`]);
  }
  ctr = dockerCgroup(TOP);
  mkdirSync(path.join(root, 'docker', 'containers', ctr.id), { recursive: true });
  writeFileSync(path.join(root, 'docker', 'containers', ctr.id, 'config.v2.json'), JSON.stringify({ ID: ctr.id, Name: '/shop-web', Config: { Image: 'nginx:1.27' } }));
  full = await hold(C, 'full', 5000, ctr.prefix);
});

let twins: Promise<unknown> | null = null;

after(async () => {
  if (skip) return;
  for (const p of procs) {
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGKILL');
      await new Promise((r) => p.once('close', r));
    }
  }
  for (const d of diags) d.stop();
  for (const ns of [C, D, E]) delNetns(ns);
  removeCgroups(TOP);
  rmSync(root, { recursive: true, force: true });
});

for (const mode of MODES) {
  test(`${mode.name}: forwarded flows from and to a namespace's address name its process, container and namespace`, { skip }, async () => {
    const h = full!;
    const netns = Number(/\d+/.exec(readlinkSync(`/proc/${h.pid}/ns/net`))![0]);
    const d = mode.diag();
    if (d) diags.push(d);
    const r = resolver(d);
    const method = mode.method;
    // TCP, both ends in the namespace: the client is `process`, the accepted socket's owner `peer`.
    const t = await r.resolve(ev('tcp', ADDR, h.port, ADDR, 8080));
    assert.ok(t, 'the address is a namespace\'s');
    assert.deepEqual(t.attribution, { method, ok: true, side: 'src' });
    assert.equal(t.process?.pid, h.pid);
    assert.equal(t.process?.comm, 'python3');
    assert.equal(t.process?.netns, netns);
    assert.ok(t.process!.inode! > 0);
    assert.equal(t.process?.cgroup, ctr.cgroup);
    assert.deepEqual(t.process?.container, { id: ctr.id, runtime: 'docker', name: 'shop-web', image: 'nginx:1.27' });
    assert.equal(t.peer?.pid, h.pid);
    assert.notEqual(t.peer?.inode, t.process?.inode, 'the peer is the other socket');
    // Only the receiving end is a namespace's (inbound DNAT): `process` is the receiver; a
    // connection not (or no longer) there falls back to the listener on the port.
    const dnat = await r.resolve(ev('tcp', '198.51.100.7', 40000, '192.0.2.1', 80, { src: ADDR, sport: 8080 }));
    assert.equal(dnat?.attribution.side, 'dst');
    assert.equal(dnat?.process?.pid, h.pid);
    // UDP from a wildcard-bound socket, to anywhere (masqueraded: the reply goes to the host's address).
    const u = await r.resolve(ev('udp', ADDR, 5000, '203.0.113.53', 53, { dst: '192.0.2.1', dport: 61000 }));
    assert.equal(u?.process?.pid, h.pid);
    assert.equal(u?.peer, undefined);
    // A port no socket holds: socket-gone, with the namespace the address belongs to.
    const g = await r.resolve(ev('udp', ADDR, 5999, '203.0.113.53', 53));
    assert.deepEqual(g, { attribution: { method, ok: false, reason: 'socket-gone', side: 'src', netns } });
    // No socket to look up for ICMP: the namespace is still told.
    const i = await r.resolve({ ...ev('icmp', ADDR, 0, '203.0.113.53', 0), sport: undefined, dport: undefined, reply: { src: '203.0.113.53', dst: ADDR } });
    assert.deepEqual(i, { attribution: { method, ok: false, reason: 'unsupported-protocol', side: 'src', netns } });
    // Neither address is a namespace's: not ours (the attributor says "forwarded").
    assert.equal(await r.resolve(ev('tcp', '198.51.100.7', 1, '203.0.113.9', 2)), null);
    // Lookups of one turn share one round trip, or one read of each table.
    const reads = r.stats.tableReads, trips = d ? d.stats.roundTrips : 0;
    const many = await Promise.all(Array.from({ length: 20 }, () => r.resolve(ev('udp', ADDR, 5000, '203.0.113.53', 53))));
    assert.ok(many.every((m) => m?.process?.pid === h.pid));
    if (d) {
      assert.equal(d.stats.roundTrips - trips, 1, 'one round trip for 20 lookups');
      assert.equal(r.stats.tableReads, 0, 'no table read');
    } else assert.equal(r.stats.tableReads - reads, 1, 'one read of udp for 20 lookups');
  });
}

test('a namespace\'s sock_diag socket is closed when its last process has gone (it would keep the namespace alive)', { skip }, async () => {
  const d = new NsDiag();
  diags.push(d);
  const r = resolver(d);
  const p = await hold(E, 'udp', 5002);
  const e = await r.resolve(ev('udp', ADDR, 5002, '203.0.113.53', 53));
  assert.equal(e?.process?.pid, p.pid);
  // E and C own the address: both were asked.
  assert.equal(d.sockets, 2);
  const child = procs[procs.length - 1];
  child.kill('SIGKILL');
  await new Promise((res) => child.once('close', res));
  r.namespaces.refresh();
  assert.equal(d.sockets, 1, 'E\'s socket closed, C\'s kept');
});

test('where setns is refused (CTPIPE_TEST_REFUSE=setns, as without CAP_SYS_ADMIN), the tables are read instead', { skip }, async () => {
  process.env.CTPIPE_TEST_REFUSE = 'setns';
  try {
    const d = new NsDiag();
    diags.push(d);
    const r = resolver(d);
    const u = await r.resolve(ev('udp', ADDR, 5000, '203.0.113.53', 53));
    assert.equal(u?.process?.pid, full!.pid);
    assert.equal(u?.attribution.method, 'netns-proc');
    assert.equal(d.sockets, 0);
    const again = await r.resolve(ev('tcp', ADDR, full!.port, ADDR, 8080));
    assert.equal(again?.process?.pid, full!.pid);
    assert.equal(again?.attribution.method, 'netns-proc');
  } finally {
    delete process.env.CTPIPE_TEST_REFUSE;
  }
});

for (const mode of MODES) {
  test(`${mode.name}: an address of two namespaces whose sockets both match names no one`, { skip }, async () => {
    twins ??= Promise.all([hold(C, 'udp', 5001), hold(D, 'udp', 5001)]);
    await twins;
    const d = mode.diag();
    if (d) diags.push(d);
    const r = resolver(d);
    const a = await r.resolve(ev('udp', ADDR, 5001, '203.0.113.53', 53));
    assert.deepEqual(a, { attribution: { method: mode.method, ok: false, reason: 'ambiguous', side: 'src' } });
    // Only one of them holds the TCP connection: that one is named.
    const t = await r.resolve(ev('tcp', ADDR, full!.port, ADDR, 8080));
    assert.equal(t?.process?.pid, full!.pid);
    const g = await r.resolve(ev('tcp', ADDR, 1, '203.0.113.9', 443));
    assert.equal(g?.attribution.reason, 'socket-gone');
    assert.equal(g?.attribution.netns, undefined, 'two candidates: no single namespace to name');
  });
}
