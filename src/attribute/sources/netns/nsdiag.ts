// sock_diag inside other network namespaces. A netlink socket answers for
// the namespace it was created in, and Node cannot setns(2), so one small
// perl(1) child (perl-base is on every Debian system; the same trick as
// src/netlink/sockopt.ts) keeps a NETLINK_SOCK_DIAG socket per namespace:
// it enters the namespace through /proc/PID/ns/net, creates the socket,
// returns to its own, and from then on only relays datagrams. Requests are
// built and answers decoded here (src/netlink/sockdiag.ts's codec), so the
// lookups are the kernel's exact ones (inet_diag_find_one_icsk,
// udp_dump_one): a hash lookup, where reading /proc/PID/net/tcp walks the
// whole established hash table (milliseconds on a host with much memory).
//
// The socket holds its namespace alive, so it is closed as soon as the
// namespace's last known process has gone (close()). Requests of one
// event-loop turn for one namespace go in one datagram and one round trip.
// Frames to the child: op, ns inode, pid, request count, length (u32 each,
// host order) and the datagram; from it: ns inode, errno (0 when fine),
// length, and the answers.
import { spawn, type ChildProcess } from 'node:child_process';
import { endianness, arch } from 'node:os';
import { buildSockDiagRequest, decodeSockMsg, SOCK_DIAG_BY_FAMILY, type SockQuery, type SockInfo } from '../../../netlink/sockdiag.js';
import { splitMessages, nlError, NLMSG_ERROR } from '../../../netlink/conntrack.js';

const LE = endianness() === 'LE';

// setns(2) by architecture (asm/unistd.h); elsewhere the helper is not used.
const SYS_SETNS: Record<string, number> = { x64: 308, arm64: 268, riscv64: 268, loong64: 268, arm: 375, ia32: 346, ppc64: 350, s390x: 339 };

const HELPER = String.raw`
use strict;
# Ctrl-C reaches the whole process group; ct-attribute finishes its input
# first, and this child ends when its standard input does.
$SIG{INT} = 'IGNORE';
my ($setns) = @ARGV;
open(my $home, '<', '/proc/self/ns/net') or die "own network namespace: $!\n";
my %sock;
binmode STDIN; binmode STDOUT;
sub readn { my ($n) = @_; my $b = ''; while (length($b) < $n) { my $r = sysread(STDIN, $b, $n - length($b), length($b)); return undef unless $r; } $b }
sub out { my ($ino, $err, $d) = @_; my $m = pack('LLL', $ino, $err, length($d)) . $d; while (length $m) { my $w = syswrite(STDOUT, $m); exit 0 unless $w; substr($m, 0, $w) = ''; } }
while (defined(my $h = readn(20))) {
  my ($op, $ino, $pid, $count, $len) = unpack('LLLLL', $h);
  my $req = $len ? readn($len) : '';
  exit 0 unless defined $req;
  if ($op == 2) { close(delete $sock{$ino}) if $sock{$ino}; next; }
  my $s = $sock{$ino};
  my $err = 0;
  unless ($s) {
    if (open(my $fh, '<', "/proc/$pid/ns/net")) {
      if ((stat $fh)[1] != $ino) { $err = 3; }
      elsif (syscall($setns, fileno($fh), 0x40000000) != 0) { $err = $! + 0; }
      else {
        $err = $! + 0 unless socket($s, 16, 2, 4);
        syscall($setns, fileno($home), 0x40000000) == 0 or die "back to own network namespace: $!\n";
        if (!$err) { setsockopt($s, 1, 20, pack('l!l!', 1, 0)); $sock{$ino} = $s; }
      }
      close $fh;
    } else { $err = $! + 0; }
    if ($err) { out($ino, $err, ''); next; }
  }
  my $got = '';
  if (!defined send($s, $req, 0)) { $err = $! + 0; }
  else { for (1 .. $count) { my $b; if (!defined recv($s, $b, 65536, 0)) { $err = $! + 0; last; } $got .= $b; } }
  out($ino, $err, $got);
}
`;

/** Sockets the child keeps at most (each is a file descriptor there); the least recently used is closed first. */
const MAX_SOCKETS = 512;

export class NsDiagError extends Error {
  constructor(message: string, public errno: number) {
    super(message);
  }
}

interface Waiter {
  ino: number;
  resolve: (answers: Buffer) => void;
  reject: (e: Error) => void;
}

interface Batch {
  pid: number;
  queries: SockQuery[];
  waiters: Array<{ resolve: (r: SockInfo[]) => void; reject: (e: Error) => void }>;
}

/** Exact sock_diag lookups in other network namespaces, through one perl child. */
export class NsDiag {
  private child: ChildProcess | null = null;
  private buf: Buffer = Buffer.alloc(0);
  private waiting: Waiter[] = [];
  private batches = new Map<number, Batch>();
  /** Namespaces with a socket in the child, least recently used first. */
  private open = new Map<number, true>();
  /** Why the helper cannot be used (then callers read /proc/PID/net instead). */
  failed: string | null = null;
  readonly stats = { roundTrips: 0, requests: 0 };

  constructor(private readonly perl = 'perl') {
    if (SYS_SETNS[arch()] === undefined) this.failed = `no setns(2) number known for ${arch()}`;
  }

  private start(): ChildProcess {
    const c = spawn(this.perl, ['-e', HELPER, String(SYS_SETNS[arch()])], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    c.stderr!.setEncoding('utf8').on('data', (d) => (stderr += d));
    c.stdout!.on('data', (d: Buffer) => this.onData(d));
    c.on('error', (e) => this.fail(`perl: ${e.message}`));
    c.on('exit', (code, sig) => this.fail(`perl helper exited (${sig ?? code})${stderr ? `: ${stderr.trim()}` : ''}`));
    c.stdin!.on('error', () => { /* reported by exit */ });
    this.child = c;
    this.idle();
    return c;
  }

  private fail(why: string): void {
    if (!this.failed) this.failed = why;
    this.child = null;
    const w = this.waiting;
    this.waiting = [];
    for (const x of w) x.reject(new NsDiagError(why, 0));
  }

  /** Keep the event loop alive only while answers are awaited. */
  private idle(): void {
    const c = this.child;
    if (!c) return;
    const m = this.waiting.length > 0 ? 'ref' : 'unref';
    c[m]();
    for (const h of [c.stdin, c.stdout, c.stderr] as any[]) h?.[m]?.();
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    while (this.buf.length >= 12) {
      const len = LE ? this.buf.readUInt32LE(8) : this.buf.readUInt32BE(8);
      if (this.buf.length < 12 + len) break;
      const err = LE ? this.buf.readUInt32LE(4) : this.buf.readUInt32BE(4);
      const body = this.buf.subarray(12, 12 + len);
      this.buf = this.buf.subarray(12 + len);
      const w = this.waiting.shift();
      if (!w) continue;
      if (err) w.reject(new NsDiagError(`sock_diag in network namespace ${w.ino}: errno ${err}`, err));
      else w.resolve(Buffer.from(body));
    }
    this.idle();
  }

  private frame(op: number, ino: number, pid: number, count: number, data: Buffer): Buffer {
    const h = Buffer.alloc(20);
    const w = (v: number, o: number) => (LE ? h.writeUInt32LE(v >>> 0, o) : h.writeUInt32BE(v >>> 0, o));
    w(op, 0); w(ino, 4); w(pid, 8); w(count, 12); w(data.length, 16);
    return data.length ? Buffer.concat([h, data]) : h;
  }

  /**
   * Look `q` up in the namespace `ino`, entered through process `pid` (its
   * link is checked against `ino`, so a reused pid is refused). Lookups of
   * one turn for one namespace share a round trip.
   */
  query(ino: number, pid: number, q: SockQuery): Promise<SockInfo[]> {
    if (this.failed) return Promise.reject(new NsDiagError(this.failed, 0));
    let b = this.batches.get(ino);
    if (!b) {
      b = { pid, queries: [], waiters: [] };
      this.batches.set(ino, b);
      if (this.batches.size === 1) queueMicrotask(() => this.flush());
    }
    b.queries.push(q);
    return new Promise((resolve, reject) => b!.waiters.push({ resolve, reject }));
  }

  private flush(): void {
    const all = this.batches;
    this.batches = new Map();
    for (const [ino, b] of all) this.send(ino, b);
  }

  private send(ino: number, b: Batch): void {
    let c = this.child;
    if (!c && !this.failed) c = this.start();
    if (!c) {
      for (const w of b.waiters) w.reject(new NsDiagError(this.failed ?? 'no helper', 0));
      return;
    }
    const reqs = b.queries.map((q, i) => buildSockDiagRequest(q, i + 1));
    this.open.delete(ino);
    if (this.open.size >= MAX_SOCKETS) this.close(this.open.keys().next().value!);
    this.open.set(ino, true);
    this.stats.roundTrips++;
    this.stats.requests += reqs.length;
    this.waiting.push({
      ino,
      resolve: (answers) => {
        const results: SockInfo[][] = b.queries.map(() => []);
        try {
          for (const m of splitMessages(answers)) {
            const i = m.seq - 1;
            if (i < 0 || i >= results.length) continue;
            if (m.type === SOCK_DIAG_BY_FAMILY) results[i].push(decodeSockMsg(answers, m.start, m.end));
            else if (m.type === NLMSG_ERROR) {
              const code = nlError(answers, m);
              // ENOENT on an exact lookup: no such socket, an answer.
              if (code !== 0 && code !== -2) throw new NsDiagError(`sock_diag: errno ${-code}`, -code);
            }
          }
        } catch (e) {
          for (const w of b.waiters) w.reject(e as Error);
          return;
        }
        b.waiters.forEach((w, i) => w.resolve(results[i]));
      },
      reject: (e) => { for (const w of b.waiters) w.reject(e); },
    });
    this.idle();
    c.stdin!.write(this.frame(1, ino, b.pid, reqs.length, Buffer.concat(reqs)));
  }

  /** Close the namespace's socket: it keeps the namespace alive. */
  close(ino: number): void {
    if (!this.open.delete(ino) || !this.child) return;
    this.child.stdin!.write(this.frame(2, ino, 0, 0, Buffer.alloc(0)));
  }

  /** Stop the helper (it also stops by itself when this process exits). */
  stop(): void {
    const c = this.child;
    this.child = null;
    if (c) { c.stdin!.end(); c.kill(); }
  }

  get sockets(): number {
    return this.open.size;
  }
}
