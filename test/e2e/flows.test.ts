// bin/ct-events | bin/ct-flows against the real kernel, as root: a network
// namespace of the test's own with tracking on and, in that namespace only,
// packet/byte accounting and flow timestamps (nf_conntrack_acct,
// nf_conntrack_timestamp). Real TCP and UDP connections carry a known
// number of bytes; the flow records must count them exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { BIN, needRoot, makeNetns, delNetns, inNetns, enableTracking, waitFor, withoutMethods } from '../helpers.js';

const skip = needRoot();

/** ct-events in the namespace, its output piped into ct-flows; ct-flows' records parsed as they come. */
class Pipeline {
  readonly events: ChildProcess;
  readonly flows: ChildProcess;
  readonly out: any[] = [];
  stderr = '';
  private partial = '';
  readonly flowsClosed: Promise<number | null>;
  private eventsClosed: Promise<number | null>;

  constructor(ns: string, flowArgs: string[] = [], eventArgs: string[] = []) {
    this.events = spawn('ip', ['netns', 'exec', ns, BIN('ct-events'), '-p', 'tcp,udp', ...eventArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.flows = spawn(BIN('ct-flows'), flowArgs, { stdio: ['pipe', 'pipe', 'pipe'] });
    // The pipe between them, relayed here: its end reaches ct-flows when ct-events exits.
    this.events.stdout!.pipe(this.flows.stdin!);
    this.flows.stdin!.on('error', () => {});
    this.flows.stdout!.setEncoding('utf8').on('data', (d: string) => {
      const parts = (this.partial + d).split('\n');
      this.partial = parts.pop()!;
      for (const p of parts) if (p) this.out.push(JSON.parse(p));
    });
    this.events.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += `ct-events: ${d}`));
    this.flows.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += `ct-flows: ${d}`));
    this.eventsClosed = new Promise((r) => this.events.on('close', r));
    this.flowsClosed = new Promise((r) => this.flows.on('close', r));
  }

  async record(pred: (r: any) => boolean, what: string, ms = 8000): Promise<any> {
    await waitFor(() => this.out.some(pred), ms, `${what}; stderr: ${this.stderr}`);
    return this.out.find(pred);
  }

  /** SIGTERM to ct-events; ct-flows then sees the end of its input. Returns ct-flows' exit code. */
  async stop(): Promise<number | null> {
    this.events.kill('SIGTERM');
    const t = setTimeout(() => { this.events.kill('SIGKILL'); this.flows.kill('SIGKILL'); }, 10000);
    await this.eventsClosed;
    const code = await this.flowsClosed;
    clearTimeout(t);
    return code;
  }
}

/** A namespace with tracking, accounting and timestamps on, and TCP options that make header sizes exact. */
function accountedNs(): string {
  const ns = makeNetns('ctfl');
  enableTracking(ns);
  inNetns(ns, 'sysctl', ['-qw', 'net.netfilter.nf_conntrack_acct=1', 'net.netfilter.nf_conntrack_timestamp=1']);
  // Without timestamps, SACK and window scaling, every TCP header is 20 bytes
  // except on SYN and SYN-ACK, which carry only the MSS option (4 bytes).
  inNetns(ns, 'sysctl', ['-qw', 'net.ipv4.tcp_timestamps=0', 'net.ipv4.tcp_sack=0', 'net.ipv4.tcp_window_scaling=0']);
  assert.equal(inNetns(ns, 'sysctl', ['-n', 'net.netfilter.nf_conntrack_acct']).trim(), '1');
  assert.equal(inNetns(ns, 'sysctl', ['-n', 'net.netfilter.nf_conntrack_timestamp']).trim(), '1');
  return ns;
}

function conntrackDelete(ns: string, args: string[]): void {
  spawnSync('ip', ['netns', 'exec', ns, 'conntrack', '-D', ...args], { stdio: 'ignore' });
}

/** Probe until ct-events is subscribed: a UDP datagram to port 9, deleted at once, shows up as a flow record. */
async function ready(ns: string, p: Pipeline): Promise<void> {
  for (let i = 0; i < 50; i++) {
    inNetns(ns, 'python3', ['-c', "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', 9))"]);
    conntrackDelete(ns, ['-p', 'udp', '--dport', '9']);
    try {
      await p.record((r) => r.event === 'flow' && r.dport === 9, 'probe', 200);
      return;
    } catch { /* not subscribed yet */ }
  }
  throw new Error(`no probe flow came through; stderr: ${p.stderr}`);
}

const TCP_OUT = 100000, TCP_BACK = 5000;
const UDP_OUT = [100, 200, 300], UDP_BACK = 50;

// Known payloads each way: TCP with data both ways and a clean close, UDP
// datagrams with one reply, and a UDP flow left open. Prints the ports.
const TRAFFIC = `
import socket, json
out = {}
l = socket.socket(); l.bind(('127.0.0.1', 8084)); l.listen()
c = socket.create_connection(('127.0.0.1', 8084)); a, _ = l.accept()
c.sendall(b'x' * ${TCP_OUT}); n = 0
while n < ${TCP_OUT}: n += len(a.recv(65536))
a.sendall(b'y' * ${TCP_BACK}); m = 0
while m < ${TCP_BACK}: m += len(c.recv(65536))
out['tcp'] = c.getsockname()[1]
c.close(); a.recv(16); a.close(); l.close()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 5304))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for k in ${JSON.stringify(UDP_OUT)}: u.sendto(b'z' * k, ('127.0.0.1', 5304))
for k in range(${UDP_OUT.length}): d, peer = s.recvfrom(4096)
s.sendto(b'w' * ${UDP_BACK}, peer); u.recv(4096)
out['udp'] = u.getsockname()[1]
o = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); o.sendto(b'still open', ('127.0.0.1', 5399))
out['open'] = o.getsockname()[1]
print(json.dumps(out))
`;

test('real TCP and UDP flows: one record each, byte and packet counts as sent, kernel start and stop, open flows at the end', { skip }, async () => {
  const ns = accountedNs();
  const p = new Pipeline(ns);
  try {
    await ready(ns, p);
    const before = Date.now();
    const got = JSON.parse(inNetns(ns, 'python3', ['-c', TRAFFIC]));
    // The kernel would keep these for minutes (TIME_WAIT, UDP timeouts): deleting them sends their DESTROY now.
    conntrackDelete(ns, ['-p', 'tcp', '--dport', '8084']);
    conntrackDelete(ns, ['-p', 'udp', '--dport', '5304']);
    const after = Date.now();

    const tcp = await p.record((r) => r.event === 'flow' && r.proto === 'tcp' && r.dport === 8084, 'tcp flow record');
    const udp = await p.record((r) => r.event === 'flow' && r.proto === 'udp' && r.dport === 5304, 'udp flow record');

    for (const [r, sport, port] of [[tcp, got.tcp, 8084], [udp, got.udp, 5304]] as [any, number, number][]) {
      assert.equal(r.finished, true);
      assert.equal(r.incomplete, undefined, 'its NEW was seen');
      assert.equal(r.reason, undefined);
      assert.equal(r.family, 'ipv4');
      assert.equal(r.src, '127.0.0.1');
      assert.equal(r.sport, sport);
      assert.deepEqual(r.reply, { src: '127.0.0.1', sport: port, dst: '127.0.0.1', dport: sport });
      assert.match(r.community_id, /^1:[A-Za-z0-9+/]{27}=$/);
      // Kernel timestamps, inside the time the test ran, and the duration between them.
      const start = Date.parse(r.start), stop = Date.parse(r.stop);
      assert.ok(start >= before - 1000 && start <= stop && stop <= after + 1000, `${r.start} .. ${r.stop} within the test`);
      const us = (s: string) => Date.parse(s) * 1000 + Number(s.slice(23, 26));
      assert.equal(Math.round(r.duration * 1e6), us(r.stop) - us(r.start));
      assert.ok(r.status.includes('SEEN_REPLY'), r.status.join());
    }

    // UDP: each datagram counts its IP (20) and UDP (8) headers.
    assert.ok(tcp.counters && udp.counters, 'counters with nf_conntrack_acct=1');
    assert.deepEqual(udp.counters, {
      orig: { packets: UDP_OUT.length, bytes: UDP_OUT.reduce((a, b) => a + b, 0) + 28 * UDP_OUT.length },
      reply: { packets: 1, bytes: UDP_BACK + 28 },
    });
    // TCP: every packet counts 20 bytes of IP and 20 of TCP header; the SYN
    // (original direction) and the SYN-ACK (reply) also an MSS option of 4.
    // The payload is what was sent; the packet counts are the kernel's.
    const o = tcp.counters.orig, b = tcp.counters.reply;
    assert.equal(o.bytes, TCP_OUT + 40 * o.packets + 4, JSON.stringify(tcp.counters));
    assert.equal(b.bytes, TCP_BACK + 40 * b.packets + 4, JSON.stringify(tcp.counters));
    // SYN, ACK, at least one data segment, FIN; and not absurdly many (64 KiB loopback segments).
    assert.ok(o.packets >= 4 && o.packets <= 40, `orig packets ${o.packets}`);
    assert.ok(b.packets >= 3 && b.packets <= 40, `reply packets ${b.packets}`);
    assert.ok(['TIME_WAIT', 'CLOSE', 'LAST_ACK', 'CLOSE_WAIT', 'FIN_WAIT'].includes(tcp.state), tcp.state);

    // End of input: ct-events stops, ct-flows writes the flow still open and exits 0.
    assert.equal(await p.stop(), 0, p.stderr);
    const open = p.out.find((r) => r.event === 'flow' && r.dport === 5399);
    assert.ok(open, `the open UDP flow; stderr: ${p.stderr}`);
    assert.equal(open.finished, false);
    assert.equal(open.reason, 'end-of-input');
    assert.equal(open.stop, undefined);
    assert.equal(open.sport, got.open);
    assert.ok(Date.parse(open.start) >= before - 1000, 'start: the NEW event time (NEW events carry no kernel timestamp)');
    assert.equal(p.out.filter((r) => r.event === 'flow' && (r.dport === 8084 || r.dport === 5304)).length, 2, 'one record per connection');
    assert.match(p.stderr, /ct-events: tracking on in this namespace; listening for new, destroy \(tcp,udp\); counters of open flows every 60s[;\n]/m, 'the ready line');
    assert.equal(withoutMethods(p.stderr), '');
  } finally {
    p.events.kill('SIGKILL');
    p.flows.kill('SIGKILL');
    delNetns(ns);
  }
});

// A long-lived TCP connection that sends a known payload, then waits for a
// line on stdin before the next (the test's go-ahead), three times; a fourth
// line closes it. It prints its port, then the payload sent so far.
const LONG = `
import socket, sys
l = socket.socket(); l.bind(('127.0.0.1', 8086)); l.listen()
c = socket.create_connection(('127.0.0.1', 8086)); a, _ = l.accept()
print(c.getsockname()[1], flush=True)
for i in range(1, 4):
    c.sendall(b'x' * 10000); n = 0
    while n < 10000: n += len(a.recv(65536))
    print(i * 10000, flush=True)
    sys.stdin.readline()
sys.stdin.readline()
c.close(); a.close(); l.close()
`;

test('a long-lived flow: interim records carry its bytes so far, from ct-events polling the open flows\' counters', { skip }, async () => {
  const ns = accountedNs();
  const p = new Pipeline(ns, ['--report-every', '1s'], ['--counters-every', '1s']);
  const sent: number[] = [];
  let port = 0;
  let py: ReturnType<typeof spawn> | null = null;
  try {
    // Only once ct-events is subscribed: the connection's NEW must be seen (ct-flows folds counters into open flows only).
    await ready(ns, p);
    py = spawn('ip', ['netns', 'exec', ns, 'python3', '-c', LONG], { stdio: ['pipe', 'pipe', 'inherit'] });
    py.stdout!.setEncoding('utf8').on('data', (d: string) => {
      for (const l of d.split('\n').filter(Boolean)) {
        if (!port) port = Number(l);
        else sent.push(Number(l));
      }
    });
    const mine = (r: any) => r.event === 'flow' && r.dport === 8086 && r.sport === port;
    // Header bytes as in the first test (no TCP options but the SYN's MSS).
    const payload = (c: any) => c.orig.bytes - 40 * c.orig.packets - 4;
    const interim = () => p.out.filter((r) => mine(r) && r.reason === 'interim' && r.counters);
    // Each amount in turn, while the connection stays open: an interim record
    // with exactly the payload sent so far, then the go-ahead for the next.
    for (const amount of [10000, 20000, 30000]) {
      await waitFor(() => sent.includes(amount), 20000, `python sent ${amount}`);
      await waitFor(() => interim().some((r) => payload(r.counters) === amount), 30000,
        `an interim record with ${amount} bytes; got ${JSON.stringify(interim().map((r) => r.counters))}; stderr: ${p.stderr}`);
      py.stdin!.write('\n');
    }
    const seen = interim().map((r) => payload(r.counters));
    for (const r of interim()) {
      assert.equal(r.finished, false);
      assert.equal(r.stop, undefined);
      assert.ok([10000, 20000, 30000].includes(payload(r.counters)), `payload so far is a sum sent: ${JSON.stringify(r.counters)}`);
      assert.equal(r.state, 'ESTABLISHED', 'the state so far, not the SYN_SENT of its NEW');
      assert.equal(r.counters.reply.bytes, 40 * r.counters.reply.packets + 4, 'nothing sent back: headers only');
    }
    assert.ok(seen.every((b, i) => i === 0 || b >= seen[i - 1]), `bytes so far never go down: ${seen}`);
    // The stream carried them as counters records (ct-flows folds them, and does not pass them on).
    assert.equal(p.out.filter((r) => r.event === 'counters').length, 0);
    py.stdin!.end('\n');
    await new Promise((r) => py!.on('close', r));
    conntrackDelete(ns, ['-p', 'tcp', '--dport', '8086']);
    const fin = await p.record((r) => mine(r) && r.finished === true, 'final record');
    assert.equal(payload(fin.counters), 30000, JSON.stringify(fin.counters));
    assert.equal(await p.stop(), 0, p.stderr);
    assert.match(p.stderr, /counters of open flows every 1s/);
    assert.equal(withoutMethods(p.stderr), '');
  } finally {
    py?.kill('SIGKILL');
    p.events.kill('SIGKILL');
    p.flows.kill('SIGKILL');
    delNetns(ns);
  }
});
