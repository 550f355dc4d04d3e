// sock_diag inside other network namespaces. A netlink socket answers for
// the namespace it was created in, and Node cannot setns(2), so ctpipe's
// addon makes one NETLINK_SOCK_DIAG socket per namespace from a short-lived
// thread of its own that enters the namespace through /proc/PID/ns/net (no
// fork, no helper program; native/src/netns.c), and the lookups go over it
// from here. Requests are built and answers decoded with
// src/netlink/sockdiag.ts's codec, so the lookups are the kernel's exact ones
// (inet_diag_find_one_icsk, udp_dump_one): a hash lookup, where reading
// /proc/PID/net/tcp walks the whole established hash table (milliseconds on
// a host with much memory).
//
// The socket holds its namespace alive, so it is closed as soon as the
// namespace's last known process has gone (close()). Requests of one
// event-loop turn for one namespace go in one datagram and one round trip;
// the kernel answers them inside the send (sock_diag_rcv runs in the
// sender's context), so the answers are read at once.
import { buildSockDiagRequest, decodeSockMsg, SOCK_DIAG_BY_FAMILY, type SockQuery, type SockInfo } from '../../../netlink/sockdiag.js';
import { splitMessages, nlError, NLMSG_ERROR, NLMSG_DONE } from '../../../netlink/conntrack.js';
import { NetlinkSocket, socketInNetns, forEachDatagram, type NetlinkBatch } from '../../../native/netlink.js';
import { addon } from '../../../native/addon.js';

const NETLINK_SOCK_DIAG = 4;
const NLM_F_MULTI = 0x2;
/** A dump part is at most 32 KiB (netlink_recvmsg caps max_recvmsg_len). */
const SLOT = 32768;

/** Sockets kept at most (each is a file descriptor); the least recently used is closed first. */
const MAX_SOCKETS = 512;

export class NsDiagError extends Error {
  constructor(message: string, public errno: number) {
    super(message);
  }
}

interface Waiter {
  results: SockInfo[];
  resolve: (r: SockInfo[]) => void;
  reject: (e: Error) => void;
}

interface NsSocket {
  sock: NetlinkSocket;
  seq: number;
  waiting: Map<number, Waiter>;
}

interface Batch {
  pid: number;
  queries: SockQuery[];
  waiters: Waiter[];
}

/** Exact sock_diag lookups in other network namespaces, through sockets the addon makes there. */
export class NsDiag {
  /** Namespaces with a socket, least recently used first. */
  private socks = new Map<number, NsSocket>();
  private batches = new Map<number, Batch>();
  private checked = false;
  /** Why sockets cannot be made at all (the addon does not load); then callers read /proc/PID/net instead. */
  failed: string | null = null;
  readonly stats = { roundTrips: 0, requests: 0 };

  private usable(): boolean {
    if (!this.checked) {
      this.checked = true;
      try {
        addon();
      } catch (e) {
        this.failed = (e as Error).message;
      }
    }
    return !this.failed;
  }

  /**
   * Look `q` up in the namespace `ino`, entered through process `pid` (its
   * link is checked against `ino`, so a reused pid is refused). Lookups of
   * one turn for one namespace share a round trip.
   */
  query(ino: number, pid: number, q: SockQuery): Promise<SockInfo[]> {
    if (!this.usable()) return Promise.reject(new NsDiagError(this.failed!, 0));
    let b = this.batches.get(ino);
    if (!b) {
      b = { pid, queries: [], waiters: [] };
      this.batches.set(ino, b);
      if (this.batches.size === 1) queueMicrotask(() => this.flush());
    }
    b.queries.push(q);
    return new Promise((resolve, reject) => b!.waiters.push({ results: [], resolve, reject }));
  }

  private flush(): void {
    const all = this.batches;
    this.batches = new Map();
    for (const [ino, b] of all) this.send(ino, b);
  }

  private open(ino: number, pid: number): NsSocket {
    let s = this.socks.get(ino);
    if (s) {
      this.socks.delete(ino); // most recently used last
      this.socks.set(ino, s);
      return s;
    }
    let fd: number;
    try {
      fd = socketInNetns(`/proc/${pid}/ns/net`, ino, NETLINK_SOCK_DIAG);
    } catch (e) {
      const err = e as Error & { errno?: number };
      throw new NsDiagError(`sock_diag in network namespace ${ino}: ${err.message}`, err.errno ?? 0);
    }
    const ns: NsSocket = {
      sock: new NetlinkSocket(NETLINK_SOCK_DIAG, { fd, slot: SLOT, onBatch: (b) => this.onBatch(ns, b) }),
      seq: 0,
      waiting: new Map(),
    };
    ns.sock.start();
    ns.sock.unref();
    if (this.socks.size >= MAX_SOCKETS) this.close(this.socks.keys().next().value!);
    this.socks.set(ino, ns);
    return ns;
  }

  private send(ino: number, b: Batch): void {
    let ns: NsSocket;
    try {
      ns = this.open(ino, b.pid);
    } catch (e) {
      for (const w of b.waiters) w.reject(e as Error);
      return;
    }
    const reqs = b.queries.map((q, i) => {
      const seq = ns.seq = (ns.seq + 1) >>> 0 || 1;
      ns.waiting.set(seq, b.waiters[i]);
      return buildSockDiagRequest(q, seq);
    });
    this.stats.roundTrips++;
    this.stats.requests += reqs.length;
    try {
      ns.sock.send(Buffer.concat(reqs));
    } catch (e) {
      this.fail(ns, new NsDiagError(`sock_diag in network namespace ${ino}: ${(e as Error).message}`, (e as { errno?: number }).errno ?? 0));
      return;
    }
    // Answered inside the send: read them now, not a turn of the loop later.
    ns.sock.drain();
    if (ns.waiting.size) ns.sock.ref();
  }

  private onBatch(ns: NsSocket, b: NetlinkBatch): void {
    forEachDatagram(b.buf, (start, end) => this.onDatagram(ns, b.buf.subarray(start, end)));
    if (b.error || b.drops || b.truncated) {
      this.fail(ns, new NsDiagError(`sock_diag: ${b.error ? b.error.message : 'answers lost'}`, b.errno));
    }
    if (!ns.waiting.size) ns.sock.unref();
  }

  private onDatagram(ns: NsSocket, buf: Buffer): void {
    let msgs;
    try {
      msgs = splitMessages(buf);
    } catch (e) {
      this.fail(ns, e as Error);
      return;
    }
    for (const m of msgs) {
      const w = ns.waiting.get(m.seq);
      if (!w) continue;
      if (m.type === SOCK_DIAG_BY_FAMILY) {
        try {
          w.results.push(decodeSockMsg(buf, m.start, m.end));
        } catch (e) {
          ns.waiting.delete(m.seq);
          w.reject(e as Error);
          continue;
        }
        // An exact lookup answers with one message and no DONE.
        if (!(m.flags & NLM_F_MULTI)) {
          ns.waiting.delete(m.seq);
          w.resolve(w.results);
        }
      } else if (m.type === NLMSG_DONE) {
        ns.waiting.delete(m.seq);
        w.resolve(w.results);
      } else if (m.type === NLMSG_ERROR) {
        const code = nlError(buf, m);
        ns.waiting.delete(m.seq);
        // ENOENT on an exact lookup: no such socket, an answer.
        if (code === 0 || code === -2) w.resolve(w.results);
        else w.reject(new NsDiagError(`sock_diag: errno ${-code}`, -code));
      }
    }
  }

  private fail(ns: NsSocket, e: Error): void {
    const w = [...ns.waiting.values()];
    ns.waiting.clear();
    for (const x of w) x.reject(e);
    for (const [ino, s] of this.socks) if (s === ns) this.close(ino);
  }

  /** Close the namespace's socket: it keeps the namespace alive. */
  close(ino: number): void {
    const s = this.socks.get(ino);
    if (!s) return;
    this.socks.delete(ino);
    s.sock.close();
    const w = [...s.waiting.values()];
    s.waiting.clear();
    for (const x of w) x.reject(new NsDiagError('sock_diag socket closed', 0));
  }

  /** Close every socket. */
  stop(): void {
    for (const ino of [...this.socks.keys()]) this.close(ino);
  }

  get sockets(): number {
    return this.socks.size;
  }
}
