// ct-attribute and containers, end to end: real kernel, real processes, no
// container runtime. A "host" namespace H (where `ct-events | ct-attribute`
// runs, as on a Docker or Kubernetes node) is joined by veth pairs to two
// "containers", C1 and C2 (network namespaces whose processes run under a
// Docker-shaped and a Kubernetes-shaped cgroup, with the runtimes' files in
// a data root of the test's own), and to X, "the internet". H forwards and
// masquerades what leaves towards X, as Docker does, and publishes C2's port
// 80 on its own 8080 (DNAT). The forwarded flows must carry the container
// process's pid, comm, uid and container; the flows of H's own processes
// must be as before.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BIN, needRoot, sleep, delNetns, lines, PY, PY_CLIENT as CLIENT, withoutMethods } from '../helpers.js';
import { dockerCgroup, kubeCgroup, cgroupTop, removeCgroups, type FakeContainer } from '../cgroups.js';
import { unitSandbox } from '../sandbox.js';

const skip = needRoot();
const n = process.pid % 100000;
const H = `ctnh${process.pid}`, C1 = `ctn1${process.pid}`, C2 = `ctn2${process.pid}`, X = `ctnx${process.pid}`;
const TOP = cgroupTop('ctne');

// TCP on every port in argv (v4 and v6), UDP on the first one + 1.
const SERVER = `
import socket, sys, os, threading
def tcp(fam, addr, port):
    l = socket.socket(fam, socket.SOCK_STREAM)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6: l.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    l.bind((addr, port)); l.listen(128)
    while True:
        c, _ = l.accept()
        threading.Thread(target=lambda c=c: (c.recv(100), c.recv(100), c.close()), daemon=True).start()
def udp(port):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('0.0.0.0', port))
    while True: u.recv(100)
ports = [int(p) for p in sys.argv[1:]]
for p in ports:
    threading.Thread(target=tcp, args=(socket.AF_INET, '0.0.0.0', p), daemon=True).start()
    threading.Thread(target=tcp, args=(socket.AF_INET6, '::', p), daemon=True).start()
threading.Thread(target=udp, args=(ports[0] + 1,), daemon=True).start()
print(os.getpid(), flush=True)
threading.Event().wait()
`;

function sh(cmd: string): void {
  execFileSync('sh', ['-c', cmd], { stdio: ['ignore', 'ignore', 'inherit'] });
}

interface Run { pid: number; sport: number }

/** Run a client in namespace `ns` (inside a container's cgroup when given); resolves when it has exited. */
function client(ns: string, ctr: FakeContainer | null, proto: string, host: string, port: number, hold = 0.3, asNobody = false): Promise<Run> {
  const argv = [...(ctr ? ctr.prefix : []), 'ip', 'netns', 'exec', ns, ...(asNobody ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : []), PY, '-c', CLIENT, proto, host, String(port), String(hold)];
  return new Promise((resolve, reject) => {
    const c = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    c.on('close', (code) => {
      const [pid, sport] = out.trim().split(' ').map(Number);
      if (code !== 0 || !pid) return reject(new Error(`client in ${ns} failed (${code}): ${err}`));
      resolve({ pid, sport });
    });
  });
}

const servers: ChildProcess[] = [];
function server(ns: string, ctr: FakeContainer | null, ports: number[]): Promise<number> {
  const argv = [...(ctr ? ctr.prefix : []), 'ip', 'netns', 'exec', ns, PY, '-c', SERVER, ...ports.map(String)];
  const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  servers.push(p);
  return new Promise((resolve, reject) => {
    let out = '';
    p.once('error', reject);
    p.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
  });
}

const nsInode = (ns: string) => Number(execFileSync('stat', ['-L', '-c', '%i', `/run/netns/${ns}`], { encoding: 'utf8' }).trim());

let root = '';
let docker: FakeContainer, kube: FakeContainer;
let pipeline: ChildProcess | null = null;
let out = '', err = '';
let x = 0, c2 = 0;

before(async () => {
  if (skip) return;
  root = mkdtempSync(path.join(tmpdir(), 'ct-netns-e2e-'));
  for (const ns of [H, C1, C2, X]) sh(`ip netns add ${ns} && ip -n ${ns} link set lo up`);
  // veth pairs: H side hN<pid>, other side eN<pid>.
  const link = (ns: string, i: string, hAddr: string, addr: string, v6?: [string, string]) => {
    sh(`ip link add h${i}${n} netns ${H} type veth peer name e${i}${n} netns ${ns} &&
        ip -n ${H} addr add ${hAddr}/24 dev h${i}${n} && ip -n ${ns} addr add ${addr}/24 dev e${i}${n} &&
        ${v6 ? `ip -n ${H} addr add ${v6[0]}/64 dev h${i}${n} nodad && ip -n ${ns} addr add ${v6[1]}/64 dev e${i}${n} nodad &&` : ''}
        ip -n ${H} link set h${i}${n} up && ip -n ${ns} link set e${i}${n} up`);
  };
  link(C1, '1', '10.246.1.1', '10.246.1.2', ['fd00:246:1::1', 'fd00:246:1::2']);
  link(C2, '2', '10.246.2.1', '10.246.2.2');
  link(X, 'x', '10.246.9.1', '10.246.9.2', ['fd00:246:9::1', 'fd00:246:9::2']);
  // X is a namespace of this machine too, so its own addresses would name its
  // processes: its connections to the published port leave from an address
  // no namespace owns (X source-NATs them, as a router out there would).
  sh(`ip -n ${X} link set ex${n} address 02:00:00:00:09:02 &&
      ip -n ${H} neigh add 10.246.9.200 lladdr 02:00:00:00:09:02 dev hx${n} nud permanent`);
  execFileSync('ip', ['netns', 'exec', X, 'nft', '-f', '-'], { input: 'table ip xnat {\n chain post { type nat hook postrouting priority 100; policy accept; ip daddr 10.246.9.1 tcp dport 8080 snat to 10.246.9.200; }\n}\n' });
  // Containers route through the host; X knows nothing of their networks (so H must masquerade).
  sh(`ip -n ${C1} route add default via 10.246.1.1 && ip -n ${C1} -6 route add default via fd00:246:1::1 &&
      ip -n ${C2} route add default via 10.246.2.1 &&
      ip netns exec ${H} sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1`);
  execFileSync('ip', ['netns', 'exec', H, 'nft', '-f', '-'], { input: `
table inet ctn {
  chain tfwd { type filter hook forward priority 0; policy accept; ct state new counter; }
  chain out { type filter hook output priority 0; policy accept; ct state new counter; }
}
table ip ctnat {
  chain pre { type nat hook prerouting priority -100; policy accept; iifname "hx${n}" tcp dport 8080 dnat to 10.246.2.2:80; }
  chain post { type nat hook postrouting priority 100; policy accept; ip saddr 10.246.0.0/16 oifname "hx${n}" masquerade; }
}
table ip6 ctnat6 {
  chain post { type nat hook postrouting priority 100; policy accept; ip6 saddr fd00:246:1::/64 oifname "hx${n}" masquerade; }
}
` });
  docker = dockerCgroup(TOP);
  kube = kubeCgroup(TOP);
  mkdirSync(path.join(root, 'docker', 'containers', docker.id), { recursive: true });
  writeFileSync(path.join(root, 'docker', 'containers', docker.id, 'config.v2.json'), JSON.stringify({ ID: docker.id, Name: '/shop-web', Config: { Image: 'shop/web:1.4' } }));
  const task = path.join(root, 'containerd', 'io.containerd.runtime.v2.task', 'k8s.io', kube.id);
  mkdirSync(task, { recursive: true });
  writeFileSync(path.join(task, 'config.json'), JSON.stringify({ ociVersion: '1.1.0', annotations: {
    'io.kubernetes.cri.container-type': 'container', 'io.kubernetes.cri.container-name': 'api', 'io.kubernetes.cri.image-name': 'registry.example/api:2.1',
    'io.kubernetes.cri.sandbox-name': 'api-6d8f9-abcde', 'io.kubernetes.cri.sandbox-namespace': 'shop' } }));
  x = await server(X, null, [7000]);
  c2 = await server(C2, kube, [7100, 80]);
  const attr = `${BIN('ct-attribute')} --docker-root ${root}/docker --containerd-state ${root}/containerd --containers-storage ${root}/none`;
  pipeline = spawn('ip', ['netns', 'exec', H, 'sh', '-c', `trap : INT; ${BIN('ct-events')} -e new,destroy | ${attr}`], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  pipeline.stdout!.setEncoding('utf8').on('data', (d) => (out += d));
  pipeline.stderr!.setEncoding('utf8').on('data', (d) => (err += d));
  await sleep(1500);
});

after(async () => {
  if (skip) return;
  if (pipeline && pipeline.exitCode === null) {
    try { process.kill(-pipeline.pid!, 'SIGKILL'); } catch { /* gone */ }
  }
  for (const s of servers) {
    if (s.exitCode === null && s.signalCode === null) {
      s.kill('SIGKILL');
      await new Promise((r) => s.once('close', r));
    }
  }
  for (const ns of [H, C1, C2, X]) delNetns(ns);
  removeCgroups(TOP);
  rmSync(root, { recursive: true, force: true });
});

test('forwarded flows of container processes name the process, user and container; the host\'s own flows are unchanged', { skip }, async () => {
  const C1ns = nsInode(C1), C2ns = nsInode(C2);
  const web = { id: docker.id, runtime: 'docker', name: 'shop-web', image: 'shop/web:1.4' };
  const api = { id: kube.id, runtime: 'kubernetes', pod: kube.pod, name: 'api', image: 'registry.example/api:2.1', pod_name: 'api-6d8f9-abcde', pod_namespace: 'shop' };
  // C1 (Docker) to the internet: TCP and UDP, IPv4 and IPv6, as root and as nobody.
  const out4 = await client(C1, docker, 'tcp', '10.246.9.2', 7000);
  const udp4 = await client(C1, docker, 'udp', '10.246.9.2', 7001);
  const nobody = await client(C1, docker, 'tcp', '10.246.9.2', 7000, 0.3, true);
  const out6 = await client(C1, docker, 'tcp', 'fd00:246:9::2', 7000);
  // C1 to C2: container to container, both ends named.
  const c2c = await client(C1, docker, 'tcp', '10.246.2.2', 7100);
  const c2cU = await client(C1, docker, 'udp', '10.246.2.2', 7101);
  // C2 (Kubernetes) to the internet.
  const kOut = await client(C2, kube, 'tcp', '10.246.9.2', 7000);
  // The internet to C2's published port (DNAT on H).
  const dnat = await client(X, null, 'tcp', '10.246.9.1', 8080);
  // H's own process.
  const own = await client(H, null, 'tcp', '10.246.9.2', 7000);
  await sleep(500);
  execFileSync('ip', ['netns', 'exec', H, 'conntrack', '-F'], { stdio: 'ignore' });
  await sleep(1000);
  process.kill(-pipeline!.pid!, 'SIGINT');
  const code = await new Promise<number | null>((r) => (pipeline!.exitCode !== null ? r(pipeline!.exitCode) : pipeline!.once('close', r)));
  assert.equal(code, 0, err);
  const evs = lines(out);
  const news = evs.filter((e) => e.event === 'new');
  const destroys = evs.filter((e) => e.event === 'destroy');
  const find = (list: any[], proto: string, sport: number) => list.find((e) => e.proto === proto && e.sport === sport);

  const check = (c: Run, proto: string, uid: number, user: string, container: object, netns: number, what: string) => {
    const ev = find(news, proto, c.sport);
    assert.ok(ev, `NEW of ${what}`);
    assert.equal(ev.direction, 'fwd', what);
    assert.deepEqual(ev.attribution, { method: 'netns-sock_diag', ok: true, side: 'src' }, `${what}: ${JSON.stringify(ev)}`);
    assert.equal(ev.process.pid, c.pid, what);
    assert.equal(ev.process.comm, 'python3', what);
    assert.equal(ev.process.uid, uid, what);
    assert.equal(ev.process.user, user, what);
    assert.match(ev.process.exe, /python3/, what);
    assert.deepEqual(ev.process.container, container, what);
    assert.equal(ev.process.netns, netns, what);
    assert.ok(ev.process.inode > 0, what);
    const d = find(destroys, proto, c.sport);
    assert.ok(d, `DESTROY of ${what}`);
    assert.equal(d.process?.pid, c.pid, `DESTROY of ${what} carries the process`);
    return ev;
  };
  const e4 = check(out4, 'tcp', 0, 'root', web, C1ns, 'C1 TCP out');
  assert.equal(e4.reply.dst, '10.246.9.1', 'masqueraded to the host\'s address');
  // "The internet" is a namespace of this machine: its server is named as the peer.
  assert.equal(e4.peer?.pid, x, 'the other end, in another namespace of this host');
  assert.equal(e4.peer?.container, null);
  check(udp4, 'udp', 0, 'root', web, C1ns, 'C1 UDP out');
  check(nobody, 'tcp', 65534, 'nobody', web, C1ns, 'C1 TCP out as nobody');
  const e6 = check(out6, 'tcp', 0, 'root', web, C1ns, 'C1 TCP out over IPv6');
  assert.equal(e6.family, 'ipv6');
  assert.equal(e6.reply.dst, 'fd00:246:9::1');
  check(kOut, 'tcp', 0, 'root', api, C2ns, 'C2 (Kubernetes) TCP out');
  for (const [c, proto] of [[c2c, 'tcp'], [c2cU, 'udp']] as const) {
    const ev = check(c, proto, 0, 'root', web, C1ns, `C1 to C2 ${proto}`);
    assert.equal(ev.peer?.pid, c2, `C1 to C2 ${proto}: the peer is C2's server`);
    assert.deepEqual(ev.peer?.container, api);
    assert.equal(ev.peer?.netns, C2ns);
  }
  // Published port: only the receiving end is a container's.
  const d = news.find((e) => e.proto === 'tcp' && e.sport === dnat.sport && e.dport === 8080);
  assert.ok(d, 'NEW of the DNAT connection');
  assert.equal(d.direction, 'fwd');
  assert.equal(d.src, '10.246.9.200');
  assert.equal(d.reply.src, '10.246.2.2');
  assert.deepEqual(d.attribution, { method: 'netns-sock_diag', ok: true, side: 'dst' }, JSON.stringify(d));
  assert.equal(d.process.pid, c2);
  assert.deepEqual(d.process.container, api);
  // The host namespace's own process: as ever, sock_diag, no namespace fields.
  const h = find(news, 'tcp', own.sport);
  assert.ok(h, 'NEW of H\'s own connection');
  assert.equal(h.direction, 'out');
  assert.deepEqual(h.attribution, { method: 'sock_diag', ok: true });
  assert.equal(h.process.pid, own.pid);
  assert.equal(h.process.netns, undefined);
  assert.equal(h.peer, undefined);
  assert.ok(!('netns' in h.attribution));
  assert.equal(withoutMethods(err).replace(/^ct-events: conntrack is not active.*\n/m, ''), '', 'no diagnostics');
});

// The service runs ct-attribute as an unprivileged user with a few
// capabilities (packaging/ctpipe.service): without CAP_SYS_ADMIN the addon's
// setns(2) is refused, and the namespace's tables name the owner instead;
// with it, the addon's socket inside the namespace does.
// Under the unit's system call filter, RestrictNamespaces= and
// NoNewPrivileges= (test/sandbox.ts), with all its capabilities, setns(2)
// is refused by the filter as well.
for (const [caps, method, sandboxed] of [['+net_admin,+dac_read_search,+sys_ptrace', 'netns-proc', false], ['+net_admin,+dac_read_search,+sys_ptrace,+sys_admin', 'netns-sock_diag', false], ['+net_admin,+dac_read_search,+sys_ptrace,+bpf,+perfmon', 'netns-proc', true]] as const) {
  test(`as nobody with ${caps}${sandboxed ? ', under the unit\'s sandbox' : ''}: container flows are named (${method})`, { skip }, async () => {
    const attr = `${BIN('ct-attribute')} --docker-root ${root}/docker --containerd-state ${root}/containerd --containers-storage ${root}/none`;
    const p = spawn('ip', ['netns', 'exec', H, ...(sandboxed ? unitSandbox() : []), 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', `--inh-caps=-all,${caps}`, `--ambient-caps=${caps}`, `--bounding-set=-all,${caps}`,
      'sh', '-c', `trap : INT; ${BIN('ct-events')} -e new | ${attr}`], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let o = '', e = '';
    p.stdout!.setEncoding('utf8').on('data', (d) => (o += d));
    p.stderr!.setEncoding('utf8').on('data', (d) => (e += d));
    try {
      await sleep(1500);
      const tcp = await client(C1, docker, 'tcp', '10.246.9.2', 7000);
      const udp = await client(C1, docker, 'udp', '10.246.9.2', 7001);
      const seen = (c: Run) => lines(o).find((ev) => ev.event === 'new' && ev.sport === c.sport);
      const start = Date.now();
      while (!(seen(tcp) && seen(udp)) && Date.now() - start < 10000) await sleep(100);
      for (const [c, what] of [[tcp, 'TCP'], [udp, 'UDP']] as const) {
        const ev = seen(c);
        assert.ok(ev, `NEW of C1's ${what} flow; stderr: ${e}`);
        assert.deepEqual(ev.attribution, { method, ok: true, side: 'src' }, `${what}: ${JSON.stringify(ev)}; stderr: ${e}`);
        assert.equal(ev.process.pid, c.pid, what);
        assert.equal(ev.process.netns, nsInode(C1), what);
      }
    } finally {
      try { process.kill(-p.pid!, 'SIGKILL'); } catch { /* gone */ }
    }
  });
}
