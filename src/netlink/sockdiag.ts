// sock_diag (NETLINK_SOCK_DIAG, inet_diag): who owns a TCP or UDP socket.
// Codec for inet_diag_req_v2 / inet_diag_msg (include/uapi/linux/inet_diag.h,
// sock_diag.h) and a small request/response client over the 'netlink'
// package's raw socket. It answers with socket inode, uid and cgroup id; the
// pid comes from /proc (src/proc/). No process access, no /proc parsing here.
import { endianness } from 'node:os';
import { readSync, writeSync } from 'node:fs';
import { RawNetlinkSocket } from 'netlink';
import { ipText } from '../ip.js';
import { netlinkSocketInfo } from '../proc/netlink.js';
import { fdOfInode, setIntOptions, SOL_NETLINK, NETLINK_NO_ENOBUFS } from './sockopt.js';
import { splitMessages, nlError, DecodeError, NLMSG_DONE, NLMSG_ERROR, NLM_F_REQUEST, NLM_F_DUMP, AF_INET, AF_INET6 } from './conntrack.js';

const LE = endianness() === 'LE';
export const NETLINK_SOCK_DIAG = 4;
export const SOCK_DIAG_BY_FAMILY = 20;
export const IPPROTO_TCP = 6, IPPROTO_UDP = 17, IPPROTO_UDPLITE = 136, IPPROTO_SCTP = 132;
// include/net/tcp_states.h
export const TCP_STATE_NAMES = ['', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING', 'NEW_SYN_RECV'];
export const TCP_LISTEN = 10;
export const ALL_STATES = 0xffffffff;
// inet_diag.h: INET_DIAG_* attribute numbers we read
const INET_DIAG_CGROUP_ID = 21;
const INET_DIAG_REQ_SIZE = 56; // inet_diag_req_v2
const INET_DIAG_MSG_SIZE = 72; // inet_diag_msg

export interface SockQuery {
  family: 'ipv4' | 'ipv6';
  proto: number;
  /** Bitmask of TCP states (1 << state); ALL_STATES for all. */
  states?: number;
  /** Exact lookup (no NLM_F_DUMP) when given; field meaning as the kernel's inet_diag_sockid. */
  exact?: { src: string; sport: number; dst: string; dport: number };
}

export interface SockInfo {
  family: 'ipv4' | 'ipv6';
  state: number;
  src: string;
  sport: number;
  dst: string;
  dport: number;
  uid: number;
  inode: number;
  cgroupId?: bigint;
}

/** Parse IPv4/IPv6 text into 16 bytes for inet_diag_sockid (IPv4 in the first 4). */
export function addrBytes(text: string, family: 'ipv4' | 'ipv6', out: Buffer, off: number): void {
  out.fill(0, off, off + 16);
  if (family === 'ipv4') {
    // Digit by digit: a lookup per event, no array or strings made for it.
    let i = 0, v = 0;
    for (let k = 0; k < text.length && i < 4; k++) {
      const c = text.charCodeAt(k);
      if (c === 46 /* . */) { out[off + i++] = v & 0xff; v = 0; } else v = v * 10 + (c - 48);
    }
    if (i < 4) out[off + i] = v & 0xff;
    return;
  }
  let t = text;
  let tail: number[] = [];
  const lastColon = t.lastIndexOf(':');
  if (t.indexOf('.', lastColon) > 0) {
    const v4 = t.slice(lastColon + 1).split('.').map(Number);
    tail = [(v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]];
    t = t.slice(0, lastColon + 1) + '0:0';
  }
  const [head, rest] = t.includes('::') ? t.split('::') : [t, null];
  const hs = head ? head.split(':').map((x) => parseInt(x, 16)) : [];
  const rs = rest !== null && rest !== undefined && rest !== '' ? rest.split(':').map((x) => parseInt(x, 16)) : [];
  const groups = rest === null ? hs : [...hs, ...new Array(8 - hs.length - rs.length).fill(0), ...rs];
  if (tail.length) { groups[6] = tail[0]; groups[7] = tail[1]; }
  for (let i = 0; i < 8; i++) out.writeUInt16BE(groups[i] & 0xffff, off + 2 * i);
}

export function buildSockDiagRequest(q: SockQuery, seq: number): Buffer {
  const b = Buffer.alloc(REQUEST_SIZE);
  const e = q.exact;
  writeRequest(b, 0, seq, q.family, q.proto, q.states ?? ALL_STATES, e ? e.src : null, e ? e.sport : 0, e ? e.dst : '', e ? e.dport : 0);
  return b;
}

/** The bytes of one request (nlmsghdr + inet_diag_req_v2). */
export const REQUEST_SIZE = 16 + INET_DIAG_REQ_SIZE;

/**
 * Write one request at out[off, off + REQUEST_SIZE): an exact lookup of
 * (src, sport, dst, dport) as the kernel's inet_diag_sockid means them, or
 * a dump when `src` is null. Flat arguments, so that a lookup per event
 * makes no query objects.
 */
export function writeRequest(b: Buffer, off: number, seq: number, family: 'ipv4' | 'ipv6', proto: number, states: number, src: string | null, sport: number, dst: string, dport: number): void {
  const len = REQUEST_SIZE;
  b.fill(0, off, off + len);
  const flags = NLM_F_REQUEST | (src !== null ? 0 : NLM_F_DUMP);
  if (LE) { b.writeUInt32LE(len, off); b.writeUInt16LE(SOCK_DIAG_BY_FAMILY, off + 4); b.writeUInt16LE(flags, off + 6); b.writeUInt32LE(seq, off + 8); }
  else { b.writeUInt32BE(len, off); b.writeUInt16BE(SOCK_DIAG_BY_FAMILY, off + 4); b.writeUInt16BE(flags, off + 6); b.writeUInt32BE(seq, off + 8); }
  const o = off + 16;
  b[o] = family === 'ipv4' ? AF_INET : AF_INET6;
  b[o + 1] = proto;
  b[o + 2] = 0; // idiag_ext: no extensions; the cgroup id comes unasked
  if (LE) b.writeUInt32LE(states >>> 0, o + 4); else b.writeUInt32BE(states >>> 0, o + 4);
  const id = o + 8; // inet_diag_sockid: sport, dport (be16), src[16], dst[16], if, cookie[2]
  if (src !== null) {
    b.writeUInt16BE(sport, id);
    b.writeUInt16BE(dport, id + 2);
    addrBytes(src, family, b, id + 4);
    addrBytes(dst, family, b, id + 20);
  }
  // INET_DIAG_NOCOOKIE: match by tuple, not by socket cookie.
  b.writeUInt32LE(0xffffffff, id + 40);
  b.writeUInt32LE(0xffffffff, id + 44);
}

/** Decode one inet_diag_msg payload (bounds within buf). */
export function decodeSockMsg(buf: Buffer, start: number, end: number): SockInfo {
  if (end - start < INET_DIAG_MSG_SIZE) throw new DecodeError(`inet_diag_msg of ${end - start} bytes, expected ${INET_DIAG_MSG_SIZE}`);
  const fam = buf[start];
  const family = fam === AF_INET ? 'ipv4' : 'ipv6';
  const alen = fam === AF_INET ? 4 : 16;
  const id = start + 4;
  const u32 = (o: number) => (LE ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const info: SockInfo = {
    family,
    state: buf[start + 1],
    sport: buf.readUInt16BE(id),
    dport: buf.readUInt16BE(id + 2),
    src: ipText(buf, id + 4, alen),
    dst: ipText(buf, id + 20, alen),
    uid: u32(start + 64),
    inode: u32(start + 68),
  };
  let s = start + INET_DIAG_MSG_SIZE;
  while (s + 4 <= end) {
    const len = LE ? buf.readUInt16LE(s) : buf.readUInt16BE(s);
    const type = (LE ? buf.readUInt16LE(s + 2) : buf.readUInt16BE(s + 2)) & 0x3fff;
    if (len < 4 || s + len > end) throw new DecodeError(`inet_diag attribute ${type} length ${len} runs past the end`);
    if (type === INET_DIAG_CGROUP_ID && len >= 12) info.cgroupId = LE ? buf.readBigUInt64LE(s + 4) : buf.readBigUInt64BE(s + 4);
    s += (len + 3) & ~3;
  }
  return info;
}

interface Pending {
  results: SockInfo[];
  resolve: (r: SockInfo[]) => void;
  reject: (e: Error) => void;
  /** When sent (ms), for the timeout. */
  at: number;
  /** A lookup of lookNow()'s batch: its answer goes into the batch's slot instead. */
  batch?: NowBatch;
  slot?: number;
}

/** The answers of one lookNow() batch: a socket, null for none, undefined for no answer yet (or an error). */
interface NowBatch {
  answers: (SockInfo | null | undefined)[];
}

const noop = () => {};

/**
 * Requests outstanding at most. Each answer waits in our receive buffer
 * (4 MiB asked for; an answer takes about 1 KiB of it there), and an answer
 * that does not fit is lost, so the rest wait their turn, in order.
 */
const MAX_IN_FLIGHT = 256;

export class SockDiagError extends Error {
  constructor(message: string, public errno?: number) {
    super(message);
  }
}

/**
 * One NETLINK_SOCK_DIAG socket with requests matched to replies by sequence
 * number, so many lookups can be in flight at once. Requests made in one
 * turn of the event loop leave in one datagram: the kernel answers each
 * netlink message of a datagram in turn (netlink_rcv_skb), so a batch of
 * lookups costs one system call, not one each.
 *
 * The kernel answers sock_diag requests inside the sendmsg(2) that carries
 * them (sock_diag_rcv runs in the sender's context), so by the time the
 * datagram has left, the answers already wait in our receive queue. They are
 * read there and then, with read(2) on the socket's own descriptor, instead
 * of a turn of the event loop later: at idle that turn (epoll, the binding's
 * peek-then-read per message, a callback into JS) was most of the time a
 * lookup took, and all of its tail. A dump's later parts are made by the
 * kernel as we read. Whatever is not there yet (EAGAIN) is left to the
 * binding's reader, which handles the same messages the same way.
 */
export class SockDiag {
  private sock: RawNetlinkSocket;
  private seq = 1;
  private pending = new Map<number, Pending>();
  private waiting: { q: SockQuery; resolve: (r: SockInfo[]) => void; reject: (e: Error) => void }[] = [];
  private outgoing: Buffer[] = [];
  private sweep: NodeJS.Timeout | null = null;
  /** Datagrams sent and requests in them, for the curious. */
  readonly sent = { datagrams: 0, requests: 0 };

  /** The socket's file descriptor, for reading answers at once; null if it could not be found. */
  private fd: number | null = null;
  private rbuf: Buffer | null = null;
  /** Datagrams sent whose answers were all read at once, and the datagrams of answers read so (the rest waited for the event loop). */
  readonly direct = { datagrams: 0, reads: 0 };

  constructor(private timeoutMs = 2000, opts: { direct?: boolean } = {}) {
    this.sock = new RawNetlinkSocket(NETLINK_SOCK_DIAG, {} as any);
    try { this.sock.setRecvBufferSize(4 << 20); } catch { /* a smaller buffer still works */ }
    if (opts.direct !== false) {
      const info = netlinkSocketInfo(this.sock.address().port);
      this.fd = info && info.inode ? fdOfInode(info.inode) : null;
      // An answer that does not fit would otherwise set the socket's error
      // (ENOBUFS), on which the 'netlink' package aborts the process: it
      // is lost (and its lookup times out) instead.
      if (this.fd !== null) setIntOptions(this.fd, [[SOL_NETLINK, NETLINK_NO_ENOBUFS, 1]]);
      // A dump part is at most 32 KiB (netlink_recvmsg caps max_recvmsg_len).
      if (this.fd !== null) this.rbuf = Buffer.allocUnsafe(64 << 10);
    }
    this.sock.on('message', (buf) => this.onMessage(buf));
    this.sock.on('error', (err) => {
      // The binding may have closed the socket, and its number may be
      // reused for another file: never write to it again.
      this.fd = null;
      this.failAll(new SockDiagError(`sock_diag: ${err.message}`));
    });
    this.sock.unref();
  }

  private failAll(err: Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(err);
    this.idle();
  }

  private onMessage(buf: Buffer): void {
    let msgs;
    try {
      msgs = splitMessages(buf);
    } catch {
      return;
    }
    for (const m of msgs) {
      const p = this.pending.get(m.seq);
      if (!p) continue;
      if (m.type === NLMSG_DONE) {
        this.finish(m.seq, p, null);
      } else if (m.type === NLMSG_ERROR) {
        const code = nlError(buf, m);
        // ENOENT on an exact lookup: no such socket, an answer, not a failure.
        if (code === 0 || code === -2) this.finish(m.seq, p, null);
        else this.finish(m.seq, p, new SockDiagError(`sock_diag: errno ${-code}`, -code));
      } else if (m.type === SOCK_DIAG_BY_FAMILY) {
        try {
          p.results.push(decodeSockMsg(buf, m.start, m.end));
        } catch (e) {
          this.finish(m.seq, p, e as Error);
          continue;
        }
        // An exact lookup answers with one message and no DONE.
        if (!(m.flags & 0x2)) this.finish(m.seq, p, null);
      }
    }
  }

  private finish(seq: number, p: Pending, err: Error | null): void {
    this.pending.delete(seq);
    if (p.batch) p.batch.answers[p.slot!] = err ? undefined : p.results[0] ?? null;
    else if (err) p.reject(err); else p.resolve(p.results);
    if (this.waiting.length) this.next();
    this.idle();
  }

  /**
   * Nothing outstanding: let the process exit. The timeout sweep (unref'd)
   * stays until close(): at one lookup per event, starting and stopping a
   * timer for each cost more than a sweep of nothing twice a second.
   */
  private idle(): void {
    if (this.pending.size || this.outgoing.length) return;
    if (!this.closed) this.sock.unref();
  }

  query(q: SockQuery): Promise<SockInfo[]> {
    if (this.pending.size < MAX_IN_FLIGHT && this.waiting.length === 0) return this.send(q);
    return new Promise((resolve, reject) => this.waiting.push({ q, resolve, reject }));
  }

  private next(): void {
    while (this.waiting.length && this.pending.size < MAX_IN_FLIGHT) {
      const w = this.waiting.shift()!;
      this.send(w.q).then(w.resolve, w.reject);
    }
  }

  private send(q: SockQuery): Promise<SockInfo[]> {
    const seq = this.seq = (this.seq + 1) >>> 0 || 1;
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new SockDiagError('sock_diag: the socket is closed'));
      this.track(seq, { results: [], resolve, reject, at: Date.now() });
      if (this.outgoing.push(buildSockDiagRequest(q, seq)) === 1) queueMicrotask(() => this.flush());
    });
  }

  private flush(): void {
    const bufs = this.outgoing;
    if (!bufs.length) return;
    this.outgoing = [];
    const seqs = bufs.map((b) => (LE ? b.readUInt32LE(8) : b.readUInt32BE(8)));
    this.sent.datagrams++;
    this.sent.requests += bufs.length;
    const data = bufs.length === 1 ? bufs[0] : Buffer.concat(bufs);
    if (this.fd !== null && this.sendNow(data)) {
      this.readNow(seqs[seqs.length - 1]);
      return;
    }
    const failed = (err: Error) => {
      for (const seq of seqs) {
        const p = this.pending.get(seq);
        if (p) this.finish(seq, p, new SockDiagError(`sock_diag: ${err.message}`));
      }
    };
    try {
      this.sock.send(data, {}, (err) => { if (err) failed(err); });
    } catch (e) {
      failed(e as Error); // closed: the binding throws at once
    }
  }

  /** Send `data` with write(2); false when it must go through the binding instead. */
  private sendNow(data: Buffer): boolean {
    try {
      writeSync(this.fd!, data); // a datagram: all of it, or an error
      return true;
    } catch {
      return false; // EAGAIN, ENOBUFS, ...: the binding queues and retries
    }
  }

  /**
   * Read answers already queued, until request `last` has its
   * answer (the kernel answers a datagram's requests in turn) or none is
   * left to read.
   */
  private readNow(last: number): void {
    while (this.pending.has(last)) {
      let n: number;
      try {
        n = readSync(this.fd!, this.rbuf!, 0, this.rbuf!.length, null);
      } catch {
        return; // EAGAIN: not there yet; the binding's reader gets it
      }
      if (n <= 0) return;
      this.onMessage(this.rbuf!.subarray(0, n));
      this.direct.reads++;
    }
    this.direct.datagrams++;
  }

  /** Exact lookups of the batch being gathered (lookNow), and the bytes of their requests. */
  private now: NowBatch | null = null;
  private nowBuf: Buffer = Buffer.alloc(0);
  private nowN = 0;

  /**
   * Begin a batch of exact lookups answered at once: add them with
   * lookNow(), send them in one datagram and read their answers with
   * nowAnswers(). False when that cannot be done (no descriptor of our own
   * to read, or lookups already wait their turn): query() then.
   */
  beginNow(): boolean {
    if (this.fd === null || this.closed || this.waiting.length) return false;
    this.now = { answers: [] };
    this.nowN = 0;
    return true;
  }

  /**
   * Add an exact lookup to the batch begun by beginNow() (arguments as
   * SockQuery's, flat): its slot in nowAnswers(), or -1 when the batch is
   * full (MAX_IN_FLIGHT outstanding).
   */
  lookNow(family: 'ipv4' | 'ipv6', proto: number, src: string, sport: number, dst: string, dport: number): number {
    const b = this.now;
    if (!b || this.pending.size >= MAX_IN_FLIGHT) return -1;
    const off = this.nowN * REQUEST_SIZE;
    if (this.nowBuf.length < off + REQUEST_SIZE) {
      const bigger = Buffer.alloc(Math.max(off + REQUEST_SIZE, this.nowBuf.length * 2, 16 * REQUEST_SIZE));
      this.nowBuf.copy(bigger, 0, 0, off);
      this.nowBuf = bigger;
    }
    const seq = this.seq = (this.seq + 1) >>> 0 || 1;
    writeRequest(this.nowBuf, off, seq, family, proto, ALL_STATES, src, sport, dst, dport);
    const slot = this.nowN++;
    b.answers.push(undefined);
    this.track(seq, { results: [], resolve: noop, reject: noop, at: Date.now(), batch: b, slot });
    return slot;
  }

  /**
   * Send the batch's lookups in one datagram and read their answers from
   * the receive queue (the kernel answers inside the send: see the class's
   * comment). An answer not there yet, or an error, is undefined: the
   * caller asks again with query().
   */
  nowAnswers(): (SockInfo | null | undefined)[] {
    const b = this.now;
    this.now = null;
    if (!b) return [];
    const n = this.nowN;
    this.nowN = 0;
    if (!n) return b.answers;
    const last = this.seq;
    this.sent.datagrams++;
    this.sent.requests += n;
    if (this.fd !== null && this.sendNow(this.nowBuf.subarray(0, n * REQUEST_SIZE))) this.readNow(last);
    else {
      // Not sent: nothing will answer them.
      for (const [seq, p] of this.pending) if (p.batch === b) this.pending.delete(seq);
    }
    // Those still unanswered are dropped when their answer comes (or expire).
    for (const [, p] of this.pending) if (p.batch === b) { p.batch = undefined; p.resolve = noop; }
    this.idle();
    return b.answers;
  }

  /**
   * A dump (q without `exact`) sent and read to its end at once, as
   * nowAnswers() reads lookups: the kernel makes a dump's first part inside
   * the send and each later one inside the read that empties the queue
   * (netlink_recvmsg), so the whole dump is there to read. Null when that
   * cannot be done (no descriptor of our own, lookups waiting their turn,
   * the send refused, or an answer not there yet: its rest is then dropped
   * when it comes): the caller uses query() or goes without.
   */
  dumpNow(q: SockQuery): SockInfo[] | null {
    if (this.fd === null || this.closed || this.waiting.length || this.pending.size >= MAX_IN_FLIGHT) return null;
    const seq = this.seq = (this.seq + 1) >>> 0 || 1;
    let got: SockInfo[] | null = null;
    const p: Pending = { results: [], resolve: (r) => { got = r; }, reject: noop, at: Date.now() };
    this.track(seq, p);
    this.sent.datagrams++;
    this.sent.requests++;
    if (this.fd === null || !this.sendNow(buildSockDiagRequest(q, seq))) {
      this.pending.delete(seq);
      this.idle();
      return null;
    }
    this.readNow(seq);
    // Not read to its end (or failed): what is left is dropped when it comes.
    p.resolve = noop;
    this.idle();
    return got;
  }

  /** A request now outstanding: the socket keeps the process alive, and the timeout sweep runs. */
  private track(seq: number, p: Pending): void {
    this.pending.set(seq, p);
    this.sock.ref();
    if (!this.sweep) {
      this.sweep = setInterval(() => this.expire(), Math.max(50, this.timeoutMs / 4));
      this.sweep.unref();
    }
  }

  /** Requests unanswered for timeoutMs fail (an answer lost, or a kernel that never replies). */
  private expire(): void {
    const old = Date.now() - this.timeoutMs;
    for (const [seq, p] of this.pending) {
      if (p.at > old) continue;
      this.finish(seq, p, new SockDiagError('sock_diag: no answer'));
    }
  }

  private closed = false;

  close(): void {
    this.fd = null; // the number may be reused for another file once closed
    this.closed = true;
    if (this.sweep) {
      clearInterval(this.sweep);
      this.sweep = null;
    }
    this.sock.close();
  }
}
