// src/attribute/sources/netns: /proc/PID/net text (captured from a real namespace by
// test/fixtures/netns/make.sh, with the inode of every socket in
// sockets.json), the namespace index over a /proc of our own making, and
// container names and images from runtime files laid out as the runtimes do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, mkdirSync, writeFileSync, symlinkSync, rmSync, unlinkSync } from 'node:fs';
import { endianness, tmpdir } from 'node:os';
import path from 'node:path';
import { FIXTURES } from '../helpers.js';
import { parseFibTrieLocal, parseIfInet6, procAddr, procPort, findSockets, tcpOwner, udpOwner } from '../../src/attribute/sources/netns/procnet.js';
import { NetnsIndex, nsInode } from '../../src/attribute/sources/netns/namespaces.js';
import { ContainerMeta, fromOciAnnotations, fromDockerConfig, fromStorageContainers } from '../../src/attribute/sources/netns/runtime.js';

const FX = path.join(FIXTURES, 'netns');
const fx = (f: string) => readFileSync(path.join(FX, f), 'latin1');
const S: Record<string, number> = JSON.parse(fx('sockets.json'));
const LE = endianness() === 'LE';

test('fib_trie: the namespace\'s own IPv4 addresses, each once, loopback included', () => {
  const a = parseFibTrieLocal(fx('fib_trie.txt')).sort();
  assert.deepEqual(a, ['10.250.1.2', '10.250.1.77', '127.0.0.1']);
  // The /8 "host LOCAL" route of 127.0.0.0 is a range, not an address; broadcast and network routes are not local.
  assert.ok(!a.includes('127.0.0.0') && !a.includes('10.250.1.255') && !a.includes('10.250.1.0'));
  assert.deepEqual(parseFibTrieLocal(''), []);
});

test('if_inet6: addresses in RFC 5952 text, as ct-events writes them', () => {
  const a = parseIfInet6(fx('if_inet6.txt'));
  assert.equal(a.length, fx('if_inet6.txt').trim().split('\n').length);
  assert.ok(a.includes('::1') && a.includes('fd00:250::2'));
  for (const x of a) assert.match(x, /^(::1|fd00:250::2|fe80::[0-9a-f:]+)$/);
  assert.deepEqual(parseIfInet6('fe80000000000000020c29fffe123456 02 40 20 80     eth0\nshort line\n'), ['fe80::20c:29ff:fe12:3456']);
});

test('procAddr/procPort: addresses as the socket tables print them', { skip: !LE && 'the fixtures were captured on a little-endian host' }, () => {
  assert.equal(procAddr('10.250.1.2', false), '0201FA0A');
  assert.equal(procAddr('10.250.1.2', true), '0000000000000000FFFF00000201FA0A');
  assert.equal(procAddr('::ffff:10.250.1.2', false), '0201FA0A');
  assert.equal(procAddr('fd00:250::2', true), '500200FD000000000000000002000000');
  assert.equal(procAddr('fd00:250::2', false), null, 'an IPv6 address has no IPv4 table form');
  assert.equal(procPort(8080), '1F90');
  assert.equal(procPort(53), '0035');
  // Every captured line is found by its own key.
  const lines = fx('tcp.txt').split('\n').slice(1).filter(Boolean);
  for (const l of lines) {
    const f = l.trim().split(/\s+/);
    assert.equal(findSockets(fx('tcp.txt'), f[1], f[2])[0].inode, Number(f[9]));
  }
});

test('tcpOwner: the connection first, the listener only for a receiving end, v4 flows in v6 tables', { skip: !LE && 'little-endian fixtures' }, () => {
  const t4 = fx('tcp.txt'), t6 = fx('tcp6.txt');
  const ep = (addr: string, port: number) => ({ addr, port });
  assert.equal(tcpOwner(t4, false, ep('10.250.1.2', 40000), ep('10.250.1.77', 8080), false)?.inode, S.tcp4_client_40000);
  const acc = tcpOwner(t4, false, ep('10.250.1.77', 8080), ep('10.250.1.2', 40000), true);
  assert.deepEqual(acc, { state: 1, uid: 0, inode: S.tcp4_accepted_8080, listener: false });
  // Accepted by a dual-stack listener: only the v6 table has it, v4-mapped.
  assert.equal(tcpOwner(t4, false, ep('10.250.1.2', 8443), ep('10.250.1.77', 40001), false), null);
  assert.equal(tcpOwner(t6, true, ep('10.250.1.2', 8443), ep('10.250.1.77', 40001), false)?.inode, S.tcp6_mapped_accepted_8443);
  assert.equal(tcpOwner(t6, true, ep('fd00:250::2', 40002), ep('fd00:250::2', 8443), false)?.inode, S.tcp6_client_40002);
  // No connection: the listener on the local port, wildcard or bound, only when asked for.
  assert.equal(tcpOwner(t4, false, ep('10.250.1.2', 8080), ep('10.9.9.9', 1234), false), null);
  const l = tcpOwner(t4, false, ep('10.250.1.2', 8080), ep('10.9.9.9', 1234), true);
  assert.equal(l?.inode, S.listen4_any_8080);
  assert.equal(l?.listener, true);
  assert.equal(tcpOwner(t4, false, ep('10.250.1.2', 9090), ep('10.9.9.9', 1234), true)?.inode, S.listen4_bound_9090);
  assert.equal(tcpOwner(t4, false, ep('10.250.1.77', 9090), ep('10.9.9.9', 1234), true), null, 'bound to another address');
  assert.equal(tcpOwner(t6, true, ep('10.250.1.77', 8443), ep('10.9.9.9', 1234), true)?.inode, S.listen6_dual_8443);
  assert.equal(tcpOwner(t4, false, ep('10.250.1.2', 7), ep('10.9.9.9', 1234), true), null);
});

test('udpOwner: connected, then bound to the address, then the wildcard; never another port', { skip: !LE && 'little-endian fixtures' }, () => {
  const u4 = fx('udp.txt'), u6 = fx('udp6.txt');
  const ep = (addr: string, port: number) => ({ addr, port });
  assert.equal(udpOwner(u4, false, ep('10.250.1.2', 5000), ep('10.250.1.77', 53))?.inode, S.udp4_connected_5000);
  // The connected socket does not receive from anyone else, and nothing else holds port 5000.
  assert.equal(udpOwner(u4, false, ep('10.250.1.2', 5000), ep('10.250.1.99', 53)), null);
  assert.equal(udpOwner(u4, false, ep('10.250.1.2', 5353), ep('10.9.9.9', 53))?.inode, S.udp4_bound_5353);
  assert.equal(udpOwner(u4, false, ep('10.250.1.77', 5353), ep('10.9.9.9', 53))?.inode, S.udp4_any_5353);
  assert.equal(udpOwner(u4, false, ep('10.250.1.77', 5001), ep('10.9.9.9', 53))?.inode, S.udp4_any_5001);
  assert.equal(udpOwner(u4, false, ep('10.250.1.2', 6000), ep('10.9.9.9', 53)), null);
  assert.equal(udpOwner(u6, true, ep('10.250.1.2', 6000), ep('10.9.9.9', 53))?.inode, S.udp6_dual_6000);
  assert.equal(udpOwner(u6, true, ep('fd00:250::2', 6001), ep('fd00::9', 53))?.inode, S.udp6_bound_6001);
  assert.equal(udpOwner(u6, true, ep('fd00:250::3', 6001), ep('fd00::9', 53)), null);
});

test('nsInode', () => {
  assert.equal(nsInode('net:[4026531840]'), 4026531840);
  assert.equal(nsInode('mnt:[4026531840]'), null);
  assert.equal(nsInode('net:[]'), null);
});

/** A /proc of our own: pid dirs with an ns/net link and net/ files. */
function fakeProc() {
  const root = mkdtempSync(path.join(tmpdir(), 'ct-netns-proc-'));
  const fib = (addrs: string[]) => 'Local:\n' + addrs.map((a) => `  |-- ${a}\n     /32 host LOCAL\n`).join('');
  const add = (pid: number | 'self', ino: number, addrs: string[] = [], v6: string[] = []) => {
    const d = path.join(root, String(pid));
    mkdirSync(path.join(d, 'ns'), { recursive: true });
    mkdirSync(path.join(d, 'net'), { recursive: true });
    symlinkSync(`net:[${ino}]`, path.join(d, 'ns', 'net'));
    writeFileSync(path.join(d, 'net', 'fib_trie'), fib(addrs));
    writeFileSync(path.join(d, 'net', 'if_inet6'), v6.map((h) => `${h} 02 40 00 82 eth0\n`).join(''));
  };
  const setAddrs = (pid: number, addrs: string[]) => writeFileSync(path.join(root, String(pid), 'net', 'fib_trie'), fib(addrs));
  const kill = (pid: number) => rmSync(path.join(root, String(pid)), { recursive: true, force: true });
  return { root, add, setAddrs, kill, done: () => rmSync(root, { recursive: true, force: true }) };
}

test('NetnsIndex: namespaces by address, refreshed incrementally, our own left out', () => {
  const p = fakeProc();
  try {
    p.add('self', 1000, ['192.0.2.1']);
    p.add(1, 1000, ['192.0.2.1']);
    p.add(10, 2000, ['10.0.0.2', '127.0.0.1'], ['fd000000000000000000000000000002']);
    p.add(11, 2000, ['10.0.0.2']);
    p.add(20, 3000, ['10.0.1.2']);
    const ix = new NetnsIndex({ proc: p.root, maxAgeMs: 60000, minRefreshMs: 0, youngMs: 0, youngPidMs: 0 });
    assert.equal(ix.self, 1000);
    assert.deepEqual(ix.lookup('10.0.0.2').map((n) => n.inode), [2000]);
    assert.deepEqual(ix.lookup('::ffff:10.0.0.2').map((n) => n.inode), [2000], 'v4-mapped text finds the IPv4 address');
    assert.deepEqual(ix.lookup('fd00::2').map((n) => n.inode), [2000]);
    assert.deepEqual(ix.lookup('192.0.2.1'), [], 'our own namespace is not a forwarding target');
    assert.deepEqual(ix.lookup('127.0.0.1'), [], 'loopback is everyone\'s');
    assert.deepEqual([...ix.get(2000)!.pids].sort(), [10, 11]);
    const read1 = ix.stats.pidsRead;
    // A new container: its first unknown address refreshes, reading only the new pid's link.
    p.add(30, 4000, ['10.0.2.2']);
    assert.deepEqual(ix.lookup('10.0.2.2').map((n) => n.inode), [4000]);
    assert.equal(ix.stats.pidsRead, read1 + 1);
    // One process of a namespace gone: the namespace is read through the other.
    p.kill(10);
    assert.ok('text' in ix.read(ix.get(2000)!, 'fib_trie'));
    assert.deepEqual([...ix.get(2000)!.pids], [11]);
    // Every process gone: the namespace is forgotten at the next refresh.
    p.kill(20);
    ix.refresh();
    assert.equal(ix.get(3000), undefined);
    assert.deepEqual(ix.lookup('10.0.1.2'), []);
    // Two namespaces with one address: both are candidates.
    p.add(40, 5000, ['10.0.0.2']);
    ix.refresh();
    assert.deepEqual(ix.lookup('10.0.0.2').map((n) => n.inode).sort(), [2000, 5000]);
    // An existing namespace's addresses change: seen at the next full refresh.
    p.setAddrs(11, ['10.0.0.9']);
    ix.refresh();
    assert.deepEqual(ix.lookup('10.0.0.9'), [], 'not young, not a full refresh');
    ix.refresh(true);
    assert.deepEqual(ix.lookup('10.0.0.9').map((n) => n.inode), [2000]);
    assert.deepEqual(ix.lookup('10.0.0.2').map((n) => n.inode), [5000]);
  } finally {
    p.done();
  }
});

test('NetnsIndex: a process that changes namespace right after it starts (ip netns exec, a runtime\'s exec) is moved', () => {
  const p = fakeProc();
  try {
    p.add('self', 1);
    p.add(2, 1, []);
    p.add(50, 1, []);
    p.add(60, 8000, ['10.8.0.2']);
    const ix = new NetnsIndex({ proc: p.root, maxAgeMs: 60000, minRefreshMs: 0, youngPidMs: 60000 });
    ix.refresh();
    assert.deepEqual([...ix.get(8000)!.pids], [60]);
    // pid 50 was still in our namespace when first read; now it has entered 8000.
    p.kill(50);
    p.add(50, 8000, ['10.8.0.2']);
    ix.refresh();
    assert.deepEqual([...ix.get(8000)!.pids].sort(), [50, 60]);
    assert.deepEqual([...ix.get(1)!.pids], [2]);
    const young = new NetnsIndex({ proc: p.root, maxAgeMs: 60000, minRefreshMs: 0, youngPidMs: 0 });
    young.refresh();
    const n = young.stats.pidsRead;
    young.refresh();
    assert.equal(young.stats.pidsRead, n, 'old pids are not read again');
  } finally {
    p.done();
  }
});

test('NetnsIndex: a young namespace\'s addresses are read again (a CNI plugin adds them after the process starts)', () => {
  const p = fakeProc();
  try {
    p.add('self', 1);
    p.add(5, 7000, []);
    const ix = new NetnsIndex({ proc: p.root, maxAgeMs: 60000, minRefreshMs: 0, youngMs: 60000 });
    assert.deepEqual(ix.lookup('10.7.0.2'), []);
    p.setAddrs(5, ['10.7.0.2']);
    assert.deepEqual(ix.lookup('10.7.0.2').map((n) => n.inode), [7000]);
  } finally {
    p.done();
  }
});

test('NetnsIndex: when every process known in a namespace has exited, /proc is listed again for new ones', () => {
  const p = fakeProc();
  try {
    p.add('self', 1);
    p.add(5, 9000, ['10.9.0.2']);
    const ix = new NetnsIndex({ proc: p.root, maxAgeMs: 60000, minRefreshMs: 60000, youngMs: 0 });
    const ns = ix.lookup('10.9.0.2');
    assert.deepEqual(ns.map((x) => x.inode), [9000]);
    // A short-lived process gone, another one started in the same namespace.
    p.kill(5);
    p.add(6, 9000, ['10.9.0.2']);
    const r = ix.read(ns[0], 'fib_trie');
    assert.ok('text' in r && r.text.includes('10.9.0.2'));
    assert.deepEqual([...ix.get(9000)!.pids], [6]);
    // No process left at all: the namespace is gone.
    p.kill(6);
    assert.deepEqual(ix.read(ix.get(9000)!, 'fib_trie'), { error: 'gone' });
    assert.equal(ix.get(9000), undefined);
  } finally {
    p.done();
  }
});

test('NetnsIndex: stale addresses are read a few namespaces at a time, oldest first', () => {
  const p = fakeProc();
  try {
    p.add('self', 1);
    for (let i = 0; i < 5; i++) p.add(10 + i, 100 + i, [`10.9.${i}.2`]);
    const ix = new NetnsIndex({ proc: p.root, maxAgeMs: 0, youngMs: 0, youngPidMs: 0 });
    ix.refresh();
    assert.equal(ix.stats.addrReads, 5, 'new namespaces are read at once');
    const t0 = ix.get(100)!.addrAt;
    p.setAddrs(10, ['10.9.9.9']);
    ix.refresh(2);
    assert.equal(ix.stats.addrReads, 7, 'two stale ones');
    ix.refresh(2);
    ix.refresh(2);
    assert.equal(ix.stats.addrReads, 11);
    // Every one has been read again (the oldest first), so 100's change is seen.
    for (let i = 0; i < 5; i++) assert.ok(ix.get(100 + i)!.addrAt >= t0);
    assert.deepEqual(ix.lookup('10.9.9.9').map((n) => n.inode), [100]);
  } finally {
    p.done();
  }
});

test('NetnsIndex: an unknown address refreshes at most every minRefreshMs', () => {
  const p = fakeProc();
  try {
    p.add('self', 1);
    const ix = new NetnsIndex({ proc: p.root, maxAgeMs: 60000, minRefreshMs: 60000 });
    assert.deepEqual(ix.lookup('10.8.0.2'), []);
    const n = ix.stats.refreshes;
    for (let i = 0; i < 100; i++) ix.lookup('10.8.0.2');
    assert.equal(ix.stats.refreshes, n, 'a router\'s forwarded flows do not rescan /proc each');
  } finally {
    p.done();
  }
});

const ID = 'd0b3604b67ac7930dd34ba3a796627e3e4717d12309e90a4afe3f38b6816ac98';

test('runtime files: Docker, containerd (CRI and nerdctl), CRI-O, Podman', () => {
  assert.deepEqual(fromDockerConfig({ ID, Name: '/web-1', Config: { Image: 'nginx:1.25', Hostname: 'x' }, Image: 'sha256:abc' }), { name: 'web-1', image: 'nginx:1.25' });
  assert.equal(fromDockerConfig(null), null);
  assert.equal(fromDockerConfig({}), null);
  assert.deepEqual(fromOciAnnotations({
    'io.kubernetes.cri.container-type': 'container', 'io.kubernetes.cri.container-name': 'app',
    'io.kubernetes.cri.image-name': 'registry.example/app:2', 'io.kubernetes.cri.sandbox-name': 'app-7d9f-x2x', 'io.kubernetes.cri.sandbox-namespace': 'shop',
  }), { name: 'app', image: 'registry.example/app:2', pod_name: 'app-7d9f-x2x', pod_namespace: 'shop' });
  // A pod's sandbox (pause) has no container name, but the pod's.
  assert.deepEqual(fromOciAnnotations({ 'io.kubernetes.cri.container-type': 'sandbox', 'io.kubernetes.cri.sandbox-name': 'p', 'io.kubernetes.cri.sandbox-namespace': 'n' }), { pod_name: 'p', pod_namespace: 'n' });
  assert.deepEqual(fromOciAnnotations({ 'nerdctl/name': 'db' }), { name: 'db' });
  assert.deepEqual(fromOciAnnotations({
    'io.kubernetes.cri-o.ImageName': 'quay.io/x/y:1',
    'io.kubernetes.cri-o.Labels': JSON.stringify({ 'io.kubernetes.container.name': 'y', 'io.kubernetes.pod.name': 'y-1', 'io.kubernetes.pod.namespace': 'default' }),
  }), { name: 'y', image: 'quay.io/x/y:1', pod_name: 'y-1', pod_namespace: 'default' });
  assert.equal(fromOciAnnotations({ 'io.kubernetes.cri-o.Labels': '{not json' }), null);
  assert.equal(fromOciAnnotations(undefined), null);
  assert.deepEqual(fromStorageContainers([{ id: 'x' }, { id: ID, names: ['cache'], metadata: JSON.stringify({ 'image-name': 'docker.io/library/redis:7', name: 'cache' }) }], ID), { name: 'cache', image: 'docker.io/library/redis:7' });
  assert.equal(fromStorageContainers([{ id: 'x' }], ID), null);
  assert.equal(fromStorageContainers({}, ID), null);
});

test('ContainerMeta: reads each runtime\'s files under configurable roots, caches, asks again for a missing one', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'ct-netns-rt-'));
  try {
    const docker = path.join(root, 'docker'), containerd = path.join(root, 'containerd'), storage = path.join(root, 'storage');
    const K8S = ID.split('').reverse().join('');
    const CRIO = 'a'.repeat(64), PODMAN = 'b'.repeat(64);
    mkdirSync(path.join(docker, 'containers', ID), { recursive: true });
    writeFileSync(path.join(docker, 'containers', ID, 'config.v2.json'), JSON.stringify({ Name: '/web', Config: { Image: 'nginx' } }));
    mkdirSync(path.join(containerd, 'io.containerd.runtime.v2.task', 'k8s.io', K8S), { recursive: true });
    writeFileSync(path.join(containerd, 'io.containerd.runtime.v2.task', 'k8s.io', K8S, 'config.json'), JSON.stringify({ ociVersion: '1.0.2', annotations: { 'io.kubernetes.cri.container-name': 'api', 'io.kubernetes.cri.image-name': 'api:3' } }));
    mkdirSync(path.join(storage, 'overlay-containers', CRIO, 'userdata'), { recursive: true });
    writeFileSync(path.join(storage, 'overlay-containers', CRIO, 'userdata', 'config.json'), JSON.stringify({ annotations: { 'io.kubernetes.container.name': 'c', 'io.kubernetes.cri-o.ImageName': 'c:1' } }));
    writeFileSync(path.join(storage, 'overlay-containers', 'containers.json'), JSON.stringify([{ id: PODMAN, names: ['pm'], metadata: '{"image-name":"alpine"}' }]));
    const m = new ContainerMeta({ docker, containerd, storage: [storage], retryMs: 60000 });
    assert.deepEqual(m.describe(ID, 'docker'), { name: 'web', image: 'nginx' });
    assert.deepEqual(m.describe(K8S, 'kubernetes'), { name: 'api', image: 'api:3' });
    assert.deepEqual(m.describe(CRIO, 'kubernetes'), { name: 'c', image: 'c:1' }, 'Kubernetes on CRI-O');
    assert.deepEqual(m.describe(CRIO, 'cri-o'), { name: 'c', image: 'c:1' });
    assert.deepEqual(m.describe(PODMAN, 'podman'), { name: 'pm', image: 'alpine' });
    assert.equal(m.describe('c1', 'lxc'), null);
    assert.equal(m.describe('../../etc', 'docker'), null, 'an id is never a path');
    const reads = m.reads;
    m.describe(ID, 'docker');
    assert.equal(m.reads, reads, 'cached');
    const NEW = 'c'.repeat(64);
    assert.equal(m.describe(NEW, 'docker'), null);
    mkdirSync(path.join(docker, 'containers', NEW), { recursive: true });
    writeFileSync(path.join(docker, 'containers', NEW, 'config.v2.json'), JSON.stringify({ Name: '/late' }));
    assert.equal(m.describe(NEW, 'docker'), null, 'a miss is remembered for retryMs');
    const m2 = new ContainerMeta({ docker, containerd, storage: [storage], retryMs: 0 });
    assert.deepEqual(m2.describe(NEW, 'docker'), { name: 'late' });
    unlinkSync(path.join(docker, 'containers', NEW, 'config.v2.json'));
    assert.deepEqual(m2.describe(NEW, 'docker'), { name: 'late' }, 'a container found stays found');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
