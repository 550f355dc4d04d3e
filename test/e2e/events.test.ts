// bin/ct-events against the real kernel, as root: each test makes its own
// network namespace (addresses that exist only there), switches tracking on,
// runs ct-events inside it with `ip netns exec`, makes real connections from
// python3 processes, and checks what ct-events printed.
import { installForOthers } from '../installed.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  BIN, ROOT, needRoot, makeNetns, delNetns, inNetns, enableTracking, sleep, waitFor, lines, withoutMethods,
} from '../helpers.js';

const skip = needRoot();

/** ct-events running in a namespace; stdout parsed as it comes. */
class Events {
  readonly child: ChildProcess;
  readonly out: any[] = [];
  stderr = '';
  code: number | null | undefined = undefined;
  private partial = '';
  private closed: Promise<void>;

  constructor(ns: string, args: string[], prefix: string[] = []) {
    this.child = spawn('ip', ['netns', 'exec', ns, ...prefix, prefix.includes('setpriv') ? installForOthers().bin('ct-events') : BIN('ct-events'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      const parts = (this.partial + d).split('\n');
      this.partial = parts.pop()!;
      for (const p of parts) if (p) this.out.push(JSON.parse(p));
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.closed = new Promise((resolve) => this.child.on('close', (code) => { this.code = code; resolve(); }));
  }

  flows(pred: (e: any) => boolean = () => true): any[] {
    return this.out.filter((e) => ['new', 'update', 'destroy'].includes(e.event) && pred(e));
  }

  async waitFor(pred: (e: any) => boolean, what: string, ms = 8000): Promise<any> {
    await waitFor(() => this.out.some(pred) || this.code !== undefined, ms, `${what}; stderr: ${this.stderr}`);
    const hit = this.out.find(pred);
    assert.ok(hit, `${what}: ct-events exited ${this.code}: ${this.stderr}`);
    return hit;
  }

  /** The exit code, once it has exited by itself. */
  async exited(ms = 10000): Promise<number | null> {
    const t = setTimeout(() => this.child.kill('SIGKILL'), ms);
    await this.closed;
    clearTimeout(t);
    return this.code!;
  }

  /** SIGTERM, then the exit code. */
  async stop(): Promise<number | null> {
    if (this.code === undefined) this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 10000);
    await this.closed;
    clearTimeout(t);
    return this.code!;
  }
}

/** Run python3 code inside a namespace; its stdout parsed as JSON. */
function py(ns: string, code: string): any {
  const out = inNetns(ns, 'python3', ['-c', code]);
  return out.trim() ? JSON.parse(out) : null;
}

/**
 * Connections over one family, each from a process of its own kind: TCP with
 * data both ways, UDP with a reply, an ICMP echo over a ping socket. Prints
 * the source ports and ICMP id the kernel picked.
 */
const TRAFFIC = (v6: boolean, tcpPort: number, udpPort: number) => `
import socket, json
F = socket.AF_INET6 if ${v6 ? 'True' : 'False'} else socket.AF_INET
H = '::1' if F == socket.AF_INET6 else '127.0.0.1'
out = {}
l = socket.socket(F); l.bind((H, ${tcpPort})); l.listen()
c = socket.create_connection((H, ${tcpPort})); a, _ = l.accept()
c.sendall(b'hello'); a.recv(16); a.sendall(b'world'); c.recv(16)
out['tcp'] = c.getsockname()[1]; c.close(); a.close(); l.close()
s = socket.socket(F, socket.SOCK_DGRAM); s.bind((H, ${udpPort}))
u = socket.socket(F, socket.SOCK_DGRAM); u.sendto(b'ping', (H, ${udpPort}))
d, peer = s.recvfrom(64); s.sendto(b'pong', peer); u.recv(64)
out['udp'] = u.getsockname()[1]
P = socket.IPPROTO_ICMPV6 if F == socket.AF_INET6 else socket.IPPROTO_ICMP
p = socket.socket(F, socket.SOCK_DGRAM, P)
p.sendto(bytes([128 if F == socket.AF_INET6 else 8, 0, 0, 0, 0, 0, 0, 1]) + b'ctpipe', (H, 0))
p.settimeout(3); p.recv(64)
out['icmp_id'] = p.getsockname()[1]
print(json.dumps(out))
`;

const UDP_TO = (host: string, ports: number[] | string, from = '') => `
import socket
s = socket.socket(socket.AF_INET6 if ':' in '${host}' else socket.AF_INET, socket.SOCK_DGRAM)
${from ? `s.bind(('${from}', 0))` : ''}
for p in ${Array.isArray(ports) ? JSON.stringify(ports) : ports}: s.sendto(b'x', ('${host}', p))
`;

/** A namespace with tracking on and unprivileged ICMP echo allowed. */
function trackedNs(): string {
  const ns = makeNetns('ctev');
  enableTracking(ns);
  inNetns(ns, 'sysctl', ['-qw', 'net.ipv4.ping_group_range=0 2147483647']);
  return ns;
}

/** Send probe datagrams until ct-events shows one: it is subscribed from then on. */
async function ready(ns: string, ev: Events, port = 9): Promise<void> {
  for (let i = 0; i < 50; i++) {
    py(ns, UDP_TO('127.0.0.1', [port]));
    try {
      await ev.waitFor((e) => e.dport === port && e.event === 'new', 'probe', 200);
      return;
    } catch { /* not subscribed yet */ }
  }
  throw new Error(`ct-events never showed a probe flow; stderr: ${ev.stderr}`);
}

function conntrackDelete(ns: string, args: string[] = []): void {
  spawnSync('ip', ['netns', 'exec', ns, 'conntrack', '-D', ...args], { stdio: 'ignore' });
}

test('real TCP, UDP, ICMP over IPv4 and IPv6: tuples, reply tuples, ids and kinds', { skip }, async () => {
  const ns = trackedNs();
  const ev = new Events(ns, ['-e', 'all', '--host', 'e2e-host']);
  try {
    await ready(ns, ev);
    for (const v6 of [false, true]) {
      const H = v6 ? '::1' : '127.0.0.1';
      const family = v6 ? 'ipv6' : 'ipv4';
      const tcpPort = v6 ? 8086 : 8084, udpPort = v6 ? 5306 : 5304;
      const got = py(ns, TRAFFIC(v6, tcpPort, udpPort));

      const tcp = await ev.waitFor((e) => e.event === 'new' && e.proto === 'tcp' && e.dport === tcpPort, `${family} tcp new`);
      assert.equal(tcp.family, family);
      assert.equal(tcp.src, H);
      assert.equal(tcp.sport, got.tcp);
      assert.equal(tcp.dst, H);
      assert.deepEqual(tcp.reply, { src: H, sport: tcpPort, dst: H, dport: got.tcp });
      assert.equal(tcp.state, 'SYN_SENT');
      assert.equal(tcp.host, 'e2e-host');
      assert.match(tcp.community_id, /^1:[A-Za-z0-9+/]{27}=$/);
      assert.ok(Number.isInteger(tcp.id) && tcp.id > 0);
      // The handshake and the close come as updates of the same id.
      await ev.waitFor((e) => e.id === tcp.id && e.event === 'update' && e.state === 'TIME_WAIT', `${family} tcp TIME_WAIT`);
      const states = ev.flows((e) => e.id === tcp.id).map((e) => e.state);
      assert.ok(states.includes('ESTABLISHED'), states.join());
      for (const e of ev.flows((x) => x.id === tcp.id)) {
        assert.equal(e.sport, got.tcp);
        assert.equal(e.community_id, tcp.community_id);
      }

      const udp = await ev.waitFor((e) => e.event === 'new' && e.proto === 'udp' && e.dport === udpPort, `${family} udp new`);
      assert.equal(udp.sport, got.udp);
      assert.deepEqual(udp.reply, { src: H, sport: udpPort, dst: H, dport: got.udp });
      assert.equal(udp.state, undefined);
      const udpSeen = await ev.waitFor((e) => e.id === udp.id && e.event === 'update', `${family} udp reply seen`);
      assert.ok(udpSeen.status.includes('SEEN_REPLY'));

      const proto = v6 ? 'icmpv6' : 'icmp';
      const icmp = await ev.waitFor((e) => e.event === 'new' && e.proto === proto && e.icmp?.id === got.icmp_id, `${family} ${proto} new`);
      assert.deepEqual(icmp.icmp, { type: v6 ? 128 : 8, code: 0, id: got.icmp_id });
      assert.equal(icmp.src, H);
      assert.equal(icmp.sport, undefined);

      // Deleting the entries gives DESTROY for each id, with the same tuple.
      conntrackDelete(ns);
      for (const flow of [tcp, udp, icmp]) {
        const d = await ev.waitFor((e) => e.event === 'destroy' && e.id === flow.id, `${family} ${flow.proto} destroy`);
        assert.equal(d.src, flow.src);
        assert.equal(d.sport, flow.sport);
        assert.deepEqual(d.reply, flow.reply);
        assert.equal(d.community_id, flow.community_id);
        assert.ok(d.status.includes('DYING'));
      }
    }
    assert.equal(await ev.stop(), 0);
    assert.equal(withoutMethods(ev.stderr), '');
    // Events of one id come in order: new first, destroy last. (Probes sent
    // before ct-events had subscribed have a destroy without a new.)
    const ids = new Set(ev.flows((e) => e.dport !== 9).map((e) => e.id));
    for (const id of ids) {
      const kinds = ev.flows((e) => e.id === id).map((e) => e.event);
      assert.equal(kinds[0], 'new', `${id}: ${kinds}`);
      assert.ok(kinds.indexOf('destroy') === -1 || kinds.indexOf('destroy') === kinds.length - 1, `${id}: ${kinds}`);
    }
  } finally {
    await ev.stop();
    delNetns(ns);
  }
});

test('DESTROY when an expired entry is reaped, without deleting it', { skip }, async () => {
  const ns = trackedNs();
  inNetns(ns, 'sysctl', ['-qw', 'net.netfilter.nf_conntrack_udp_timeout=1']);
  const ev = new Events(ns, []); // default: new,destroy
  try {
    await ready(ns, ev);
    py(ns, UDP_TO('127.0.0.1', [5310]));
    const n = await ev.waitFor((e) => e.event === 'new' && e.dport === 5310, 'udp new');
    await sleep(1500);
    // A table listing reaps the expired entries it walks over (the periodic
    // GC would too, later).
    inNetns(ns, 'conntrack', ['-L']);
    const d = await ev.waitFor((e) => e.event === 'destroy' && e.id === n.id, 'destroy after expiry');
    assert.equal(d.dport, 5310);
    assert.equal(ev.flows((e) => e.event === 'update').length, 0, 'no updates by default');
    assert.equal(await ev.stop(), 0);
  } finally {
    await ev.stop();
    delNetns(ns);
  }
});

test('NAT: two namespaces joined by a veth pair, masquerade; the reply tuple shows the translated address', { skip }, async () => {
  const a = trackedNs();
  const b = makeNetns('ctevb');
  const vA = `cta${process.pid % 100000}`, vB = `ctb${process.pid % 100000}`;
  const ev = new Events(a, ['-p', 'tcp']);
  try {
    inNetns(a, 'ip', ['link', 'add', vA, 'type', 'veth', 'peer', 'name', vB, 'netns', b]);
    inNetns(a, 'ip', ['addr', 'add', '10.98.0.1/24', 'dev', vA]);
    inNetns(a, 'ip', ['addr', 'add', '192.168.98.1/32', 'dev', 'lo']);
    inNetns(b, 'ip', ['addr', 'add', '10.98.0.2/24', 'dev', vB]);
    inNetns(a, 'ip', ['link', 'set', vA, 'up']);
    inNetns(b, 'ip', ['link', 'set', vB, 'up']);
    inNetns(a, 'nft', ['-f', '-'], `table ip ctnat {\n chain post { type nat hook postrouting priority srcnat; policy accept; oifname "${vA}" masquerade; }\n}\n`);
    const server = spawn('ip', ['netns', 'exec', b, 'python3', '-c', `
import socket
l = socket.socket(); l.bind(('10.98.0.2', 8090)); l.listen(); print('ready', flush=True)
a, peer = l.accept(); a.sendall(('%s:%d' % peer).encode()); a.close()
`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((r) => server.stdout!.once('data', r));
    await sleep(300); // ct-events subscribes meanwhile; the flow below is then seen
    const seenByServer = inNetns(a, 'python3', ['-c', `
import socket
c = socket.socket(); c.bind(('192.168.98.1', 0)); c.connect(('10.98.0.2', 8090))
print(c.getsockname()[1], c.recv(64).decode())
`]).trim().split(' ');
    const sport = Number(seenByServer[0]);
    const [peerAddr, peerPort] = seenByServer[1].split(':');
    assert.equal(peerAddr, '10.98.0.1', 'the server saw the masqueraded address');

    const n = await ev.waitFor((e) => e.event === 'new' && e.dport === 8090, 'nat new');
    assert.equal(n.src, '192.168.98.1');
    assert.equal(n.sport, sport);
    assert.equal(n.dst, '10.98.0.2');
    assert.deepEqual(n.reply, { src: '10.98.0.2', sport: 8090, dst: '10.98.0.1', dport: Number(peerPort) });
    assert.ok(n.status.includes('SRC_NAT'), n.status.join());
    conntrackDelete(a, ['-p', 'tcp']);
    const d = await ev.waitFor((e) => e.event === 'destroy' && e.id === n.id, 'nat destroy');
    assert.deepEqual(d.reply, n.reply);
    assert.equal(await ev.stop(), 0);
  } finally {
    await ev.stop();
    delNetns(a);
    delNetns(b);
  }
});

test('--dump lists the flows that exist before it starts, marked, then follows new ones', { skip }, async () => {
  const ns = trackedNs();
  py(ns, UDP_TO('127.0.0.1', [7101, 7102, 7103]));
  py(ns, UDP_TO('::1', [7104]));
  const ev = new Events(ns, ['--dump']);
  try {
    await ev.waitFor((e) => e.dport === 7104, 'the IPv6 entry in the dump');
    await sleep(300);
    const dumped = ev.flows((e) => e.dump === true);
    assert.deepEqual(dumped.map((e) => e.dport).filter((p) => p > 7100).sort(), [7101, 7102, 7103, 7104]);
    for (const e of dumped) {
      assert.equal(e.event, 'new', 'ct-event(5): a listed entry is a new event');
      assert.equal(e.proto, 'udp');
      assert.ok(e.status.includes('CONFIRMED'));
      assert.ok(Number.isInteger(e.id));
    }
    assert.equal(ev.flows((e) => !e.dump).length, 0, 'nothing but the dump yet');
    py(ns, UDP_TO('127.0.0.1', [7105]));
    const fresh = await ev.waitFor((e) => e.dport === 7105, 'a new flow after the dump');
    assert.equal(fresh.event, 'new');
    assert.equal(fresh.dump, undefined);
    assert.ok(ev.out.indexOf(fresh) > ev.out.indexOf(dumped[dumped.length - 1]), 'dump first');
    assert.equal(await ev.stop(), 0);
    assert.equal(withoutMethods(ev.stderr), '');
  } finally {
    await ev.stop();
    delNetns(ns);
  }
});

test('--enable-tracking in a fresh namespace: events come, and no table is left behind', { skip }, async () => {
  const ns = makeNetns('ctevt');
  try {
    // Without it, ct-events says why nothing will come, and how to fix it.
    const off = new Events(ns, []);
    await waitFor(() => off.stderr.includes('\n'), 8000, 'a warning');
    assert.match(off.stderr, /conntrack is not active in this network namespace.*--enable-tracking/);
    assert.equal(await off.stop(), 0);
    assert.equal(inNetns(ns, 'nft', ['list', 'tables']).trim(), '');

    const ev = new Events(ns, ['--enable-tracking']);
    try {
      await ready(ns, ev, 7201);
      assert.match(inNetns(ns, 'nft', ['list', 'tables']), /table inet ctpipe_track_\d+/);
      assert.equal(withoutMethods(ev.stderr), '');
      assert.equal(await ev.stop(), 0);
      assert.equal(withoutMethods(ev.stderr), '');
      assert.equal(inNetns(ns, 'nft', ['list', 'tables']).trim(), '', 'the table is removed on exit');
    } finally {
      await ev.stop();
    }
  } finally {
    delNetns(ns);
  }
});

test('| head -1: exit 0, one line, nothing on stderr', { skip }, async () => {
  const ns = trackedNs();
  const child = spawn('ip', ['netns', 'exec', ns, 'bash', '-c', `set -o pipefail; '${BIN('ct-events')}' | head -1`], { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
  let stdout = '', stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  let code: number | null | undefined;
  const closed = new Promise<void>((r) => child.on('close', (c) => { code = c; r(); }));
  try {
    // Flows until the pipeline ends: head takes the first, ct-events meets
    // the closed pipe on a later one.
    for (let port = 7300; code === undefined && port < 7400; port++) {
      py(ns, UDP_TO('127.0.0.1', [port]));
      await sleep(50);
    }
    await Promise.race([closed, sleep(5000)]);
    assert.equal(code, 0, stderr);
    assert.equal(withoutMethods(stderr), '');
    assert.equal(lines(stdout).length, 1);
    assert.equal(lines(stdout)[0].event, 'new');
  } finally {
    child.kill('SIGKILL');
    delNetns(ns);
  }
});

// netlink 0.3.0 aborts the process when the kernel reports ENOBUFS, so
// socket.ts sets NETLINK_NO_ENOBUFS and counts losses from the drop counter:
// this test proves a flood into a tiny buffer is survived and counted.
test('overrun: a tiny --rcvbuf and a flood give an overrun record with lost > 0, and events go on', { skip }, async () => {
  const ns = trackedNs();
  const ev = new Events(ns, ['--rcvbuf', '4096']);
  const N = 5000;
  try {
    await ready(ns, ev);
    // One process, one socket, N destination ports: N new flows at once.
    py(ns, UDP_TO('127.0.0.1', `range(20000, ${20000 + N})`));
    const over = await ev.waitFor((e) => e.event === 'overrun', 'an overrun record');
    assert.ok(over.lost > 0, JSON.stringify(over));
    assert.match(over.reason, /enobufs/);
    assert.match(ev.stderr, /ct-events: lost \d+ conntrack events? \(enobufs\)/);
    // Still running, still reporting.
    await sleep(300);
    assert.equal(ev.code, undefined);
    py(ns, UDP_TO('127.0.0.1', [30001]));
    const after = await ev.waitFor((e) => e.dport === 30001, 'an event after the flood');
    assert.ok(ev.out.indexOf(after) > ev.out.indexOf(over));
    assert.equal(await ev.stop(), 0);
    // Nothing lost silently: every flood flow was written or counted.
    const seen = ev.flows((e) => e.event === 'new' && e.dport >= 20000 && e.dport < 20000 + N).length;
    const lost = ev.out.filter((e) => e.event === 'overrun').reduce((s, e) => s + e.lost, 0);
    assert.ok(seen < N, `${seen} of ${N} seen`);
    assert.equal(seen + lost, N, `${seen} written + ${lost} lost`);
  } finally {
    await ev.stop();
    delNetns(ns);
  }
});

test('a slow reader costs no kernel events: they queue up to --queue, the rest are counted in one overrun record', { skip }, async () => {
  const ns = trackedNs();
  const N = 6000;
  // stdout is a pipe nobody reads until the flood is over.
  const ev = new Events(ns, ['--queue', '100']);
  try {
    await ready(ns, ev);
    ev.child.stdout!.pause();
    // Paced well within what ct-events drains from the socket, so that only
    // the queue can overflow.
    py(ns, `
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(${N}):
    s.sendto(b'x', ('127.0.0.1', 20000 + i))
    if i % 100 == 99: time.sleep(0.02)
`);
    await sleep(500);
    ev.child.stdout!.resume();
    await ev.waitFor((e) => e.event === 'overrun', 'an overrun record');
    await sleep(500);
    assert.equal(await ev.stop(), 0);
    const seen = ev.flows((e) => e.event === 'new' && e.dport >= 20000 && e.dport < 20000 + N).length;
    const overruns = ev.out.filter((e) => e.event === 'overrun');
    const lost = overruns.reduce((s, e) => s + e.lost, 0);
    assert.ok(overruns.every((o) => o.reason === 'queue'), JSON.stringify(overruns));
    assert.equal(seen + lost, N, `${seen} written + ${lost} lost`);
    assert.ok(seen >= 100 && lost > 0);
    // One run of losses, one record (and one warning).
    assert.equal(overruns.length, 1, JSON.stringify(overruns));
    assert.equal(withoutMethods(ev.stderr).trimEnd().split('\n').length, 1, ev.stderr);
    // Nobody read until the flood was over: the first flows were kept, in
    // order, and the rest of the run was lost; the record follows the kept ones.
    const at = ev.out.indexOf(overruns[0]);
    const kept = ev.out.slice(0, at).filter((e) => e.dport >= 20000).map((e) => e.dport);
    assert.deepEqual(kept, Array.from({ length: seen }, (_, i) => 20000 + i));
  } finally {
    await ev.stop();
    delNetns(ns);
  }
});

test('without CAP_NET_ADMIN: one line naming the fix, exit 1', { skip }, async () => {
  const ns = trackedNs();
  try {
    const ev = new Events(ns, [], ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']);
    assert.equal(await ev.exited(), 1);
    assert.deepEqual(ev.out, []);
    const errLines = ev.stderr.trimEnd().split('\n');
    assert.equal(errLines.length, 1, ev.stderr);
    assert.match(errLines[0], /^ct-events: .*CAP_NET_ADMIN/);
  } finally {
    delNetns(ns);
  }
});

test('--stats-interval and SIGUSR1 give stats records', { skip }, async () => {
  const ns = trackedNs();
  const ev = new Events(ns, ['--stats-interval', '1']);
  try {
    const first = await ev.waitFor((e) => e.event === 'stats', 'a periodic stats record', 5000);
    for (const k of ['received', 'written', 'lost', 'queued']) assert.ok(Number.isInteger(first[k]), k);
    assert.match(first.ts, /Z$/);
    py(ns, UDP_TO('127.0.0.1', [7401, 7402]));
    await ev.waitFor((e) => e.dport === 7402, 'the flows');
    const later = await ev.waitFor((e) => e.event === 'stats' && e.written >= 2, 'stats counting the flows', 5000);
    assert.ok(later.received >= 2);
    assert.equal(later.lost, 0);
    assert.ok(ev.out.indexOf(later) > ev.out.indexOf(first));

    // SIGUSR1: a record now (well before the next interval would be due on
    // a 60 s interval) and a line on stderr.
    const ev2 = new Events(ns, ['--stats-interval', '60']);
    try {
      await ready(ns, ev2, 7403);
      assert.equal(ev2.out.filter((e) => e.event === 'stats').length, 0);
      ev2.child.kill('SIGUSR1');
      const s = await ev2.waitFor((e) => e.event === 'stats', 'stats after SIGUSR1', 3000);
      assert.ok(s.written >= 1);
      assert.match(ev2.stderr, /ct-events: received \d+, written \d+, lost 0/);
      assert.equal(ev2.code, undefined, 'still running');
      assert.equal(await ev2.stop(), 0);
    } finally {
      await ev2.stop();
    }
    assert.equal(await ev.stop(), 0);
  } finally {
    await ev.stop();
    delNetns(ns);
  }
});
