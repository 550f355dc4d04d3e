// Issue 20 end to end: real DNS answers, real process chains, real
// binaries. Namespace B runs a DNS server from Debian (dnsmasq) with A,
// AAAA and CNAME records (TTL 1 s) and a TCP sink; namespace A runs
// `ct-events | ct-attribute --hash` (DNS observation on by default), a forwarding stub resolver (dnsmasq on
// 127.0.0.53) and the clients, which resolve through libc (python's
// getaddrinfo, getent) against B directly or through the stub, then
// connect. Every name, ancestor, entity id and digest is asserted on the
// events written.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync, rmSync, copyFileSync, chmodSync, realpathSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BIN, needRoot, sleep, delNetns, lines, PY, PY_SINK, makeNetns, enableTracking, waitFor, runBin, withoutMethods } from '../helpers.js';

const skip = needRoot();
const A = `ctda${process.pid}`;
const B = `ctdb${process.pid}`;
const VA = `vda${process.pid % 100000}`;
const VB = `vdb${process.pid % 100000}`;
const TMP = mkdtempSync(path.join(tmpdir(), 'ctdns-'));
const STUB_CONF = path.join(TMP, 'stub-resolv.conf');

/** Resolve argv[1] (family argv[2]: 4 or 6) through libc, print "resolved", wait (argv[3]: seconds, or "line" for a line on stdin), connect to port 7000, print "PID SPORT ADDR". */
const CONNECT = `
import socket, sys, os, time
name, fam, wait = sys.argv[1], sys.argv[2], sys.argv[3]
f = socket.AF_INET6 if fam == '6' else socket.AF_INET
addr = socket.getaddrinfo(name, 7000, f, socket.SOCK_STREAM)[0][4]
print('resolved', flush=True)
if wait == 'line': sys.stdin.readline()
elif float(wait) > 0: time.sleep(float(wait))
s = socket.socket(f, socket.SOCK_STREAM); s.connect(addr)
print(os.getpid(), s.getsockname()[1], addr[0], flush=True)
time.sleep(0.3)
s.close()
`;

/** A TCP server on 10.233.0.2:7003 that holds each connection 2 s, answering nothing. */
const HOLD = `
import socket, threading, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(('10.233.0.2', 7003)); l.listen(16)
def hold(c): time.sleep(2); c.close()
while True:
    c, _ = l.accept(); threading.Thread(target=hold, args=(c,), daemon=True).start()
`;

function sh(cmd: string): void {
  execFileSync('sh', ['-c', cmd], { stdio: 'ignore' });
}

interface Conn { pid: number; sport: number; addr: string }

/** Run a command in A; resolve with its last output line as a Conn. `stub`: resolve through the stub resolver. */
function run(args: string[], stub = false): { proc: ChildProcess; resolved: Promise<void>; done: Promise<Conn> } {
  const cmd = stub ? ['unshare', '-m', 'sh', '-c', `mount --bind ${STUB_CONF} /etc/resolv.conf && exec "$@"`, 'stub', ...args] : args;
  const proc = spawn('ip', ['netns', 'exec', A, ...cmd], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '', err = '';
  let onResolved: () => void;
  const resolved = new Promise<void>((r) => (onResolved = r));
  proc.stdout!.on('data', (d) => {
    out += d;
    if (out.includes('resolved')) onResolved();
  });
  proc.stderr!.on('data', (d) => (err += d));
  const done = new Promise<Conn>((resolve, reject) => proc.on('close', (code) => {
    const last = out.trim().split('\n').filter((l) => l !== 'resolved').pop() ?? '';
    const [pid, sport, addr] = last.split(' ');
    if (code !== 0 || !Number(pid)) return reject(new Error(`${args.join(' ')} failed (${code}): ${err}${out}`));
    resolve({ pid: Number(pid), sport: Number(sport), addr });
  }));
  return { proc, resolved, done };
}

const client = (name: string, fam: '4' | '6', wait = '0', stub = false) => run([PY, '-c', CONNECT, name, fam, wait], stub);

let pipeline: ChildProcess | null = null;
let out = '';
let err = '';
const daemons: ChildProcess[] = [];

function daemon(ns: string, args: string[]): void {
  const d = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  daemons.push(d);
}

before(async () => {
  if (skip) return;
  sh(`ip netns add ${A}; ip netns add ${B}; ip -n ${A} link set lo up; ip -n ${B} link set lo up;
      ip link add ${VA} netns ${A} type veth peer name ${VB} netns ${B};
      ip -n ${A} addr add 10.233.0.1/24 dev ${VA}; ip -n ${B} addr add 10.233.0.2/24 dev ${VB};
      ip -n ${A} addr add fd00:233::1/64 dev ${VA} nodad; ip -n ${B} addr add fd00:233::2/64 dev ${VB} nodad;
      ip -n ${A} addr add 127.0.0.53/8 dev lo;
      ip -n ${A} link set ${VA} up; ip -n ${B} link set ${VB} up`);
  execFileSync('ip', ['netns', 'exec', A, 'nft', '-f', '-'], { input: 'table inet ctt {\n chain out { type filter hook output priority 0; policy accept; ct state new counter; }\n}\n' });
  // libc in A asks B's server; the stub's clients ask 127.0.0.53.
  mkdirSync(`/etc/netns/${A}`, { recursive: true });
  writeFileSync(`/etc/netns/${A}/resolv.conf`, 'nameserver 10.233.0.2\noptions timeout:2 attempts:2\n');
  writeFileSync(STUB_CONF, 'nameserver 127.0.0.53\noptions timeout:2 attempts:2\n');
  const dm = ['dnsmasq', '-k', '--conf-file=/dev/null', '--pid-file=', '--user=root', '--bind-interfaces', '--no-resolv', '--no-hosts'];
  daemon(B, [...dm, '--listen-address=10.233.0.2', '--listen-address=fd00:233::2', '--local-ttl=1',
    '--host-record=web.t.test,10.233.0.2,fd00:233::2', '--host-record=other.t.test,10.233.0.2', '--cname=alias.t.test,web.t.test']);
  daemon(A, [...dm, '--listen-address=127.0.0.53', '--server=10.233.0.2', '--cache-size=0']);
  daemon(B, [PY, '-c', PY_SINK]);
  daemon(B, [PY, '-c', HOLD]);
  pipeline = spawn('ip', ['netns', 'exec', A, 'sh', '-c', `trap : INT; ${BIN('ct-events')} -e new,destroy | ${BIN('ct-attribute')} --hash`], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  pipeline.stdout!.setEncoding('utf8').on('data', (d) => (out += d));
  pipeline.stderr!.setEncoding('utf8').on('data', (d) => (err += d));
  // Both ready: ct-events observes DNS answers (its nft table is in) and
  // ct-attribute's methods are live (bpf: the owners of DNS questions'
  // sockets, closed at once, are its to name).
  await waitFor(() => /DNS answers observed/.test(err) && /ct-attribute: methods: /.test(err), 30000, 'the ready lines of ct-events and ct-attribute');
});

after(() => {
  if (skip) return;
  if (pipeline && pipeline.exitCode === null) {
    try { process.kill(-pipeline.pid!, 'SIGKILL'); } catch { /* gone */ }
  }
  for (const d of daemons) d.kill('SIGKILL');
  delNetns(A);
  delNetns(B);
  rmSync(`/etc/netns/${A}`, { recursive: true, force: true });
  rmSync(TMP, { recursive: true, force: true });
});

const conns: Record<string, Conn> = {};
let chain: { leaf: number; marker: string } | null = null;
const reused: number[] = [];
let deleted: { pid: number; sha: string } | null = null;
const sha256sum = (f: string) => execFileSync('sha256sum', [f], { encoding: 'utf8' }).split(' ')[0];

test('clients resolve through libc, getent and a forwarding stub, then connect (IPv4 and IPv6)', { skip }, async () => {
  conns.v4 = await client('alias.t.test', '4').done;
  conns.v6 = await client('alias.t.test', '6').done;
  conns.getent = await run(['sh', '-c', `ip=$(getent ahostsv4 web.t.test | awk 'NR==1{print $1}'); exec ${PY} -c "$0" "$ip" 4 0`, CONNECT]).done;
  conns.stub4 = await client('web.t.test', '4', '0', true).done;
  conns.stub6 = await client('alias.t.test', '6', '0', true).done;
  assert.equal(conns.v4.addr, '10.233.0.2');
  assert.equal(conns.v6.addr, 'fd00:233::2');
  assert.equal(conns.stub6.addr, 'fd00:233::2');
  // Past the 1 s TTL: asked, waited 1.6 s, connected.
  conns.expired = await client('other.t.test', '4', '1.6').done;
  // Two clients, two names of one address, asked before either connects.
  const x = client('web.t.test', '4', 'line');
  await x.resolved;
  const y = client('other.t.test', '4', 'line');
  await y.resolved;
  x.proc.stdin!.write('\n');
  conns.x = await x.done;
  y.proc.stdin!.write('\n');
  conns.y = await y.done;
});

test('a shell starts python, which starts curl; a pid reused; a deleted binary', { skip }, async () => {
  const marker = `level2-${process.pid}`;
  // python prints curl's pid once curl has ended: the server on 7003 holds each connection 2 s without
  // answering, curl gives up after 1 s (exit 28), so it runs while its owner is looked up and its exe read.
  const leaf = await run(['sh', '-c', `${PY} -c 'import subprocess,sys; p = subprocess.Popen(["curl", "-s", "-m", "1", "http://10.233.0.2:7003/"]); p.wait(); print(p.pid, 0, "x")' ${marker}`]).done;
  chain = { leaf: leaf.pid, marker };
  // The same pid for a new process: ns_last_pid set to pid-1 just before a fork, until the fork gets it.
  const first = await run(['bash', '-c', 'exec 3<>/dev/tcp/10.233.0.2/7000; echo $$ 0 x; read -t 0.3 || true']).done;
  const REUSE = `
import os, sys
want = int(sys.argv[1])
for i in range(2000):
    with open('/proc/sys/kernel/ns_last_pid', 'w') as f: f.write(str(want - 1))
    pid = os.fork()
    if pid == 0:
        if os.getpid() == want: os.execv('/bin/bash', ['bash', '-c', 'exec 3<>/dev/tcp/10.233.0.2/7000; echo $$ 0 x; read -t 0.3 || true'])
        os._exit(3)
    _, st = os.waitpid(pid, 0)
    if pid == want: sys.exit(os.waitstatus_to_exitcode(st))
sys.exit(4)
`;
  const second = await run([PY, '-c', REUSE, String(first.pid)]).done;
  assert.equal(second.pid, first.pid, 'the pid was reused');
  reused.push(first.pid);
  // A binary deleted before it connects, still running.
  const bin = path.join(TMP, 'delbash');
  copyFileSync(realpathSync('/bin/bash'), bin);
  chmodSync(bin, 0o755);
  const sha = sha256sum(bin);
  const d = await run([bin, '-c', `rm -f ${bin}; exec 3<>/dev/tcp/10.233.0.2/7000; echo $$ 0 x; read -t 0.5 || true`]).done;
  deleted = { pid: d.pid, sha };
});

let evs: any[] = [];

test('the pipeline stops cleanly and removes its DNS rules', { skip }, async () => {
  execFileSync('ip', ['netns', 'exec', A, 'conntrack', '-F'], { stdio: 'ignore' });
  await sleep(1000);
  process.kill(-pipeline!.pid!, 'SIGINT');
  const code = await new Promise<number | null>((r) => (pipeline!.exitCode !== null ? r(pipeline!.exitCode) : pipeline!.once('close', r)));
  assert.equal(code, 0, err);
  // Nothing on stderr but the start-up lines: ct-events' ready line, ct-attribute's methods.
  assert.match(err, /^ct-events: tracking [^;]*; listening for new, destroy; [^;]*; DNS answers observed$/m);
  assert.deepEqual(withoutMethods(err).split('\n').filter((l) => l), [], err);
  evs = lines(out);
  assert.equal(evs.filter((e) => e.event === 'dns').length, 0, 'dns records are used up by ct-attribute');
  assert.equal(evs.filter((e) => e.event === 'overrun').length, 0, 'nothing lost');
  const tables = execFileSync('ip', ['netns', 'exec', A, 'nft', 'list', 'tables'], { encoding: 'utf8' });
  assert.doesNotMatch(tables, /ctpipe_dns/);
});

const flowOf = (c: Conn, kind = 'new') => evs.find((e) => e.event === kind && e.proto === 'tcp' && e.sport === c.sport && e.dport === 7000);
const flowsOfPid = (pid: number, kind = 'new') => evs.filter((e) => e.event === kind && e.proto === 'tcp' && (e.dport === 7000 || e.dport === 7003) && e.process?.pid === pid);

test('names: the question, the CNAME chain, the answer\'s age, the server; IPv4 and IPv6', { skip }, () => {
  for (const k of ['v4', 'v6', 'stub6']) {
    const ev = flowOf(conns[k]);
    assert.ok(ev, `NEW of ${k}`);
    assert.equal(ev.dns?.name, 'alias.t.test', `${k}: ${JSON.stringify(ev)}`);
    assert.deepEqual(ev.dns.cnames, ['web.t.test'], k);
    assert.ok(ev.dns.age >= 0 && ev.dns.age < 1, `${k}: age ${ev.dns.age}`);
  }
  assert.equal(flowOf(conns.v4).dns.server, '10.233.0.2');
  assert.equal(flowOf(conns.v6).dst, 'fd00:233::2');
  // getent asked, another process connected: named by the client's address.
  assert.equal(flowOf(conns.getent).dns?.name, 'web.t.test');
  assert.equal(flowOf(conns.getent).dns.cnames, undefined);
  // Through the stub resolver on 127.0.0.53.
  assert.equal(flowOf(conns.stub4).dns?.name, 'web.t.test', JSON.stringify(flowOf(conns.stub4)));
  // DESTROY carries the NEW's name.
  assert.deepEqual(flowOf(conns.v4, 'destroy')?.dns, flowOf(conns.v4).dns);
});

test('names: a TTL of 1 s expires; two clients of one address each get the name they asked for', { skip }, () => {
  const expired = flowOf(conns.expired);
  assert.ok(expired);
  assert.equal(expired.dns, undefined, JSON.stringify(expired));
  assert.equal(flowOf(conns.x).dns?.name, 'web.t.test', JSON.stringify(flowOf(conns.x)));
  assert.equal(flowOf(conns.y).dns?.name, 'other.t.test', JSON.stringify(flowOf(conns.y)));
});

test('ancestry: curl, its parent python and grandparent sh, named after all three exited', { skip }, () => {
  const [ev] = flowsOfPid(chain!.leaf);
  assert.ok(ev, `flow of curl ${chain!.leaf}`);
  assert.equal(ev.process.comm, 'curl');
  assert.equal(ev.process.exe, realpathSync('/usr/bin/curl'));
  const p = ev.process.parent;
  assert.equal(p?.comm, 'python3', JSON.stringify(ev.process));
  assert.equal(p.pid, ev.process.ppid);
  assert.equal(p.exe, realpathSync(PY));
  assert.ok(p.cmdline.includes(chain!.marker), JSON.stringify(p.cmdline));
  assert.match(p.entity_id, /^[A-Za-z0-9_-]{22}$/);
  assert.equal(ev.process.ancestors?.[0]?.comm, 'sh');
  assert.equal(ev.process.ancestors[0].exe, realpathSync('/bin/sh'));
  assert.ok(ev.process.ancestors.length <= 3, 'parent + 3 ancestors at most (default depth 4)');
  assert.ok(Date.parse(ev.process.ancestors[0].start_time) <= Date.parse(p.start_time));
});

test('entity_id: the same on a flow\'s NEW and DESTROY, another for a reused pid', { skip }, () => {
  const n = flowOf(conns.v4);
  const d = flowOf(conns.v4, 'destroy');
  assert.match(n.process.entity_id, /^[A-Za-z0-9_-]{22}$/);
  assert.equal(d.process.entity_id, n.process.entity_id);
  const both = flowsOfPid(reused[0]!);
  assert.equal(both.length, 2, 'two processes with one pid connected');
  assert.notEqual(both[0].process.entity_id, both[1].process.entity_id);
  assert.notEqual(both[0].process.start_time === both[1].process.start_time && both[0].process.entity_id === both[1].process.entity_id, true);
});

test('hash: equals sha256sum of the binary; a deleted binary still running is flagged', { skip }, () => {
  const curlSha = sha256sum(realpathSync('/usr/bin/curl'));
  const [d] = flowsOfPid(chain!.leaf, 'destroy');
  assert.equal(d?.process.hash?.sha256, curlSha, JSON.stringify(d?.process));
  const [n] = flowsOfPid(chain!.leaf);
  assert.ok(n.process.hash.pending === true || n.process.hash.sha256 === curlSha, JSON.stringify(n.process.hash));
  assert.equal(flowOf(conns.v4, 'destroy').process.hash.sha256, sha256sum(realpathSync(PY)));
  const [dn] = flowsOfPid(deleted!.pid);
  assert.ok(dn, `flow of the deleted binary ${deleted!.pid}: ${JSON.stringify(evs.filter((e) => e.event === 'new' && e.dport === 7000).slice(-2).map((e) => [e.process?.pid, e.process?.comm, e.process?.exe, e.attribution]))}`);
  assert.equal(dn.process.exe_deleted, true, JSON.stringify(dn.process));
  assert.match(dn.process.exe, / \(deleted\)$/);
  const [dd] = flowsOfPid(deleted!.pid, 'destroy');
  assert.equal(dd.process.hash.sha256, deleted!.sha, 'the running file, though deleted');
});

test('ct-flows carries the name, entity_id, lineage and digest into the flow records', { skip }, async () => {
  const r = await runBin('ct-flows', [], out);
  assert.equal(r.code, 0, r.stderr);
  const flows = lines(r.stdout).filter((e) => e.event === 'flow' && e.proto === 'tcp' && (e.dport === 7000 || e.dport === 7003));
  const v4 = flows.find((f) => f.sport === conns.v4.sport);
  assert.ok(v4, 'the flow record of the IPv4 client');
  assert.deepEqual(v4.dns, flowOf(conns.v4).dns);
  assert.equal(v4.process.entity_id, flowOf(conns.v4).process.entity_id);
  const leaf = flows.find((f) => f.process?.pid === chain!.leaf);
  assert.ok(leaf, 'the flow record of curl');
  assert.equal(leaf.process.parent?.comm, 'python3');
  assert.equal(leaf.process.ancestors?.[0]?.comm, 'sh');
  const del = flows.find((f) => f.process?.pid === deleted!.pid);
  assert.equal(del?.process.exe_deleted, true, JSON.stringify(del));
});

/** One DNS question (A) for argv[1] to argv[2]:53 over UDP; prints the answer's size. */
const ASK = `
import socket, struct, sys
q = struct.pack('>HHHHHH', 0x4242, 0x0100, 1, 0, 0, 0) + b''.join(bytes([len(p)]) + p.encode() for p in sys.argv[1].split('.')) + b'\\0' + struct.pack('>HH', 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.sendto(q, (sys.argv[2], 53))
print(len(s.recv(4096)), flush=True)
`;

/** ct-events alone in `ns` (ip netns exec, env, sh and node exec in turn: the spawned pid is ct-events'). */
function events(ns: string, args: string[], pathEnv?: string) {
  const child = spawn('ip', ['netns', 'exec', ns, ...(pathEnv ? ['env', `PATH=${pathEnv}`] : []), BIN('ct-events'), '-e', 'new', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const r = { child, out: '', err: '', closed: null as unknown as Promise<number | null> };
  child.stdout!.setEncoding('utf8').on('data', (d) => (r.out += d));
  child.stderr!.setEncoding('utf8').on('data', (d) => (r.err += d));
  r.closed = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  return r;
}

const tables = (ns: string) => execFileSync('ip', ['netns', 'exec', ns, 'nft', 'list', 'tables', 'inet'], { encoding: 'utf8' }).match(/ctpipe_dns_\d+/g) ?? [];

/** Connect to the namespace's sink until ct-events shows the flow: it is then subscribed. */
async function untilSubscribed(ns: string, r: { out: string }): Promise<void> {
  for (let i = 0; i < 20; i++) {
    let port: string;
    try {
      port = execFileSync('ip', ['netns', 'exec', ns, PY, '-c', 'import socket; s = socket.create_connection(("127.0.0.1", 7000)); print(s.getsockname()[1])'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      await sleep(200); // the sink is not listening yet
      continue;
    }
    if (await waitFor(() => r.out.includes(`"sport":${port},`), 1500, 'flow').then(() => true, () => false)) return;
  }
  throw new Error('ct-events never showed a flow');
}

test('ct-events watches DNS by default and says nothing; --no-dns-names leaves the ruleset alone; without nft one line and the events go on, --dns-names then fails; SIGTERM and a SIGKILLed run leave no table', { skip }, async () => {
  const ns = makeNetns('ctdnsd');
  const bare = mkdtempSync(path.join(tmpdir(), 'ctdns-path-'));
  const helpers: ChildProcess[] = [];
  try {
    enableTracking(ns);
    execFileSync('ip', ['-n', ns, 'addr', 'add', '127.0.0.2/8', 'dev', 'lo']);
    const dm = spawn('ip', ['netns', 'exec', ns, 'dnsmasq', '-k', '--conf-file=/dev/null', '--pid-file=', '--user=root', '--bind-interfaces', '--no-resolv', '--no-hosts', '--listen-address=127.0.0.2', '--host-record=web.d.test,10.9.9.9'], { stdio: 'ignore' });
    helpers.push(dm, spawn('ip', ['netns', 'exec', ns, PY, '-c', PY_SINK], { stdio: 'ignore' }));
    const ask = () => execFileSync('ip', ['netns', 'exec', ns, PY, '-c', ASK, 'web.d.test', '127.0.0.2'], { encoding: 'utf8' });
    await waitFor(() => { try { ask(); return true; } catch { return false; } }, 10000, 'dnsmasq');

    // Default: on, silent; the answer is a dns record; SIGTERM removes the table.
    const on = events(ns, []);
    await untilSubscribed(ns, on);
    assert.deepEqual(tables(ns), [`ctpipe_dns_${on.child.pid}`]);
    ask();
    await waitFor(() => lines(on.out).some((e) => e.event === 'dns' && e.name === 'web.d.test'), 5000, 'the dns record');
    const rec = lines(on.out).find((e) => e.event === 'dns');
    assert.equal(rec.server, '127.0.0.2', JSON.stringify(rec));
    assert.match(rec.client, /^127\./);
    assert.deepEqual(rec.answers.map((x: any) => x.addr), ['10.9.9.9']);
    on.child.kill('SIGTERM');
    assert.equal(await on.closed, 0, on.err);
    assert.equal(withoutMethods(on.err), '');
    assert.deepEqual(tables(ns), []);

    // --no-dns-names: no table, no records.
    const off = events(ns, ['--no-dns-names']);
    await untilSubscribed(ns, off);
    assert.deepEqual(tables(ns), []);
    ask();
    await sleep(500);
    off.child.kill('SIGTERM');
    assert.equal(await off.closed, 0, off.err);
    assert.equal(withoutMethods(off.err), '');
    assert.equal(lines(off.out).filter((e) => e.event === 'dns').length, 0);

    // No nft on PATH (node only): one line saying DNS names are not live, and events go on.
    symlinkSync(process.execPath, path.join(bare, 'node'));
    const without = events(ns, [], bare);
    await untilSubscribed(ns, without);
    without.child.kill('SIGTERM');
    assert.equal(await without.closed, 0, without.err);
    assert.deepEqual(withoutMethods(without.err).trimEnd().split('\n'), ['ct-events: DNS names not live: needs the \'nft\' command (apt-get install nftables); flows carry no "dns" (--no-dns-names: do not try)']);
    // ... and --dns-names demands it: exit 1, one line.
    const demand = events(ns, ['--dns-names'], bare);
    assert.equal(await demand.closed, 1);
    assert.deepEqual(withoutMethods(demand.err).trimEnd().split('\n'), ['ct-events: --dns-names: needs the \'nft\' command (apt-get install nftables)']);
    assert.deepEqual(tables(ns), []);

    // A SIGKILLed run leaves its table; the next run removes it, says so once, and its own goes at SIGTERM.
    const killed = events(ns, []);
    await untilSubscribed(ns, killed);
    killed.child.kill('SIGKILL');
    await killed.closed;
    assert.deepEqual(tables(ns), [`ctpipe_dns_${killed.child.pid}`]);
    const next = events(ns, []);
    await untilSubscribed(ns, next);
    assert.deepEqual(tables(ns), [`ctpipe_dns_${next.child.pid}`]);
    next.child.kill('SIGTERM');
    assert.equal(await next.closed, 0, next.err);
    assert.deepEqual(withoutMethods(next.err).trimEnd().split('\n'), [`ct-events: dns: removed the table inet ctpipe_dns_${killed.child.pid} of a ct-events that no longer runs`]);
    assert.deepEqual(tables(ns), []);
  } finally {
    for (const h of helpers) h.kill('SIGKILL');
    delNetns(ns);
    rmSync(bare, { recursive: true, force: true });
  }
});

/** argv[1] rounds of: one DNS question for argv[2] to 127.0.0.2 (UDP, its answer awaited), then a TCP connect to 127.0.0.1:7001 at once. */
const ASK_THEN_CONNECT = `
import socket, struct, sys
q = struct.pack('>HHHHHH', 0x4242, 0x0100, 1, 0, 0, 0) + b''.join(bytes([len(p)]) + p.encode() for p in sys.argv[2].split('.')) + b'\\0' + struct.pack('>HH', 1, 1)
for i in range(int(sys.argv[1])):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(3)
    u.sendto(q, ('127.0.0.2', 53)); u.recv(4096); u.close()
    s = socket.socket(); s.setblocking(False)
    try: s.connect(('127.0.0.1', 7001))
    except BlockingIOError: pass
    s.close()
`;

test('ct-events: an answer is stamped no later than the flow its client starts at once after it (read in one turn, the answer was stamped after the flow\'s batch, and ct-attribute left such flows unnamed)', { skip }, async () => {
  const ns = makeNetns('ctdnso');
  const helpers: ChildProcess[] = [];
  try {
    enableTracking(ns);
    execFileSync('ip', ['-n', ns, 'addr', 'add', '127.0.0.2/8', 'dev', 'lo']);
    helpers.push(spawn('ip', ['netns', 'exec', ns, 'dnsmasq', '-k', '--conf-file=/dev/null', '--pid-file=', '--user=root', '--bind-interfaces', '--no-resolv', '--no-hosts', '--listen-address=127.0.0.2', '--host-record=race.d.test,127.0.0.1'], { stdio: 'ignore' }));
    helpers.push(spawn('ip', ['netns', 'exec', ns, PY, '-c', PY_SINK], { stdio: 'ignore' }));
    await waitFor(() => { try { execFileSync('ip', ['netns', 'exec', ns, PY, '-c', ASK, 'race.d.test', '127.0.0.2'], { stdio: 'ignore' }); return true; } catch { return false; } }, 10000, 'dnsmasq');
    const ev = events(ns, []);
    await untilSubscribed(ns, ev);
    await waitFor(() => /DNS answers observed/.test(ev.err), 5000, 'the ready line');
    const N = 1000;
    execFileSync('ip', ['netns', 'exec', ns, PY, '-c', ASK_THEN_CONNECT, String(N), 'race.d.test'], { stdio: 'ignore' });
    const got = () => lines(ev.out).filter((e) => e.event === 'new' && e.dport === 7001).length;
    await waitFor(() => got() >= N, 10000, `${N} flows`);
    ev.child.kill('SIGTERM');
    assert.equal(await ev.closed, 0, ev.err);
    const all = lines(ev.out);
    assert.equal(all.filter((e) => e.event === 'overrun').length, 0, 'nothing lost');
    // The i-th answer is the i-th flow's: written before it, and stamped no later.
    const seq = all.filter((e) => (e.event === 'dns' && e.name === 'race.d.test') || (e.event === 'new' && e.dport === 7001));
    const answers: any[] = [];
    let late = 0, misordered = 0, flows = 0;
    const examples: string[] = [];
    for (const e of seq) {
      if (e.event === 'dns') { answers.push(e); continue; }
      const a = answers[flows++];
      if (!a) { misordered++; continue; }
      if (a.ts > e.ts) {
        late++;
        if (examples.length < 3) examples.push(`answer ${a.ts} > flow ${e.ts}`);
      }
    }
    assert.equal(flows, N);
    assert.equal(misordered, 0, 'every answer is written before its flow');
    assert.equal(late, 0, `answers stamped later than their flow: ${late} of ${N} (${examples.join('; ')})`);
  } finally {
    for (const h of helpers) h.kill('SIGKILL');
    delNetns(ns);
  }
});
