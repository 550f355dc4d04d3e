// A netlink socket read by ctpipe's addon (native/src/nlsock.c): the kernel
// error paths that make the 'netlink' package abort the process (ENOBUFS
// after an overrun, a pending socket error) are counted here instead, and
// each wake-up of the event loop hands over every datagram waiting, in one
// Buffer. Used where data flows at the kernel's pace: ct-events' conntrack
// events and table dump, audit records, sock_diag in other namespaces.
import { addon, type NativeNetlinkSocket } from './addon.js';

export const SOL_SOCKET = 1, SO_RCVBUF = 8, SO_RCVBUFFORCE = 33;
export const SOL_NETLINK = 270, NETLINK_ADD_MEMBERSHIP = 1, NETLINK_NO_ENOBUFS = 5;

export interface NetlinkBatch {
  /** Datagrams: a u32 length (host order), the bytes, padding to 4. See forEachDatagram. */
  buf: Buffer;
  count: number;
  /** Datagrams larger than the slot: dropped and counted. */
  truncated: number;
  /** Increase of the kernel's drop counter for this socket (exact losses). */
  drops: number;
  /** A receive error other than ENOBUFS/EAGAIN/EINTR (0: none), and as an Error with its name in `code`. */
  errno: number;
  error?: Error & { code: string; errno: number };
}

export interface NetlinkSocketOptions {
  /** An open netlink socket to adopt (such as one from socketInNetns). */
  fd?: number;
  /** Largest datagram expected; larger ones are counted as truncated. */
  slot?: number;
  onBatch: (b: NetlinkBatch) => void;
}

const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Call fn(start, end) for each datagram of a batch buffer. */
export function forEachDatagram(buf: Buffer, fn: (start: number, end: number) => void): void {
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = LE ? buf.readUInt32LE(off) : buf.readUInt32BE(off);
    const start = off + 4;
    if (start + len > buf.length) break;
    fn(start, start + len);
    off = start + ((len + 3) & ~3);
  }
}

/** Kinds of entry in a conntrack-mode batch (nlsock.c). */
export const ENTRY_RAW = 0, ENTRY_LINES = 1, ENTRY_TS = 2;

/**
 * Call fn(kind, start, end, lines, decoded) for each entry of a batch of a
 * socket in conntrack mode (NetlinkSocket#conntrackLines): ENTRY_TS (the
 * batch's `ts` text), ENTRY_LINES (NDJSON lines, `lines` of them, of
 * `decoded` events), ENTRY_RAW (a datagram for the JavaScript decoder).
 */
export function forEachEntry(buf: Buffer, fn: (kind: number, start: number, end: number, lines: number, decoded: number) => void): void {
  let off = 0;
  const u32 = (o: number) => (LE ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  while (off + 16 <= buf.length) {
    const len = u32(off), start = off + 16;
    if (start + len > buf.length) break;
    fn(u32(off + 4), start, start + len, u32(off + 8), u32(off + 12));
    off = start + ((len + 3) & ~3);
  }
}

/** What conntrack mode writes and keeps (see NetlinkSocket#conntrackLines). */
export interface ConntrackLinesOptions {
  /** The `host` field's value, or none. */
  host?: string;
  /** Keep only these protocol numbers (none: all). */
  protos?: number[] | null;
  /** Keep only this family: AF_INET (2) or AF_INET6 (10); 0: both. */
  family?: number;
}

/** The addon's arguments for conntrack mode. */
export function linesArgs(o: ConntrackLinesOptions): [Buffer | null, Buffer | null, number] {
  // The host's bytes as the JSON writer writes them (JSON.stringify's text, in UTF-8).
  const host = o.host !== undefined ? Buffer.from(`,"host":${JSON.stringify(o.host)}`, 'utf8') : null;
  let protos: Buffer | null = null;
  if (o.protos) {
    protos = Buffer.alloc(32);
    for (const p of o.protos) if (p >= 0 && p < 256) protos[p >> 3]! |= 1 << (p & 7);
  }
  return [host, protos, o.family ?? 0];
}

const ERRNO: Record<number, string> = { 1: 'EPERM', 9: 'EBADF', 13: 'EACCES', 22: 'EINVAL', 88: 'ENOTSOCK', 105: 'ENOBUFS', 111: 'ECONNREFUSED' };

/** A netlink socket read in C; throws the addon's errors ({code, errno}) or its AddonError. */
export class NetlinkSocket {
  private s: NativeNetlinkSocket;
  private closed = false;

  constructor(protocol: number, opts: NetlinkSocketOptions) {
    const cb = opts.onBatch;
    this.s = new (addon().NetlinkSocket)(protocol, opts.fd ?? -1, opts.slot ?? 16384, (buf, count, truncated, drops, errno) => {
      const b: NetlinkBatch = { buf, count, truncated, drops, errno };
      if (errno) {
        const code = ERRNO[errno] ?? `errno ${errno}`;
        b.error = Object.assign(new Error(`receiving: ${code}`), { code, errno });
      }
      cb(b);
    });
  }

  get fd(): number {
    return this.s.fd();
  }

  get portid(): number {
    return this.s.portid();
  }

  setInt(level: number, name: number, value: number): void {
    addon().setsockopt(this.s.fd(), level, name, value);
  }

  getInt(level: number, name: number): number {
    return addon().getsockopt(this.s.fd(), level, name);
  }

  addMembership(group: number): void {
    this.setInt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group);
  }

  /**
   * The receive buffer: SO_RCVBUFFORCE (CAP_NET_ADMIN; the size asked,
   * whatever net.core.rmem_max says), else SO_RCVBUF, which the kernel caps
   * at rmem_max. Returns what failed, one message each: the refusal of
   * SO_RCVBUFFORCE only when it matters (a size past rmem_max).
   */
  setRcvbuf(bytes: number, rmemMax: number): string[] {
    let forced: Error | null = null;
    try {
      this.setInt(SOL_SOCKET, SO_RCVBUFFORCE, bytes);
      return [];
    } catch (e) {
      forced = e as Error;
    }
    const errors = bytes > rmemMax ? [`SO_RCVBUFFORCE: ${forced.message}`] : [];
    try {
      this.setInt(SOL_SOCKET, SO_RCVBUF, Math.min(bytes, rmemMax));
    } catch (e) {
      errors.push(`SO_RCVBUF: ${(e as Error).message}`);
    }
    return errors;
  }

  /** The buffer the kernel grants (it doubles what was asked, socket(7)). */
  get rcvbuf(): number {
    return this.getInt(SOL_SOCKET, SO_RCVBUF);
  }

  /** NETLINK_NO_ENOBUFS; returns the error message, or null when set. */
  noEnobufs(): string | null {
    try {
      this.setInt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1);
      return null;
    } catch (e) {
      return `NETLINK_NO_ENOBUFS: ${(e as Error).message}`;
    }
  }

  /**
   * Conntrack mode: from now on each datagram of ctnetlink events is turned
   * into NDJSON lines in C, as decodeConntrack() and the LineWriter would
   * write them, and batches hold entries (forEachEntry) instead of datagrams.
   */
  conntrackLines(o: ConntrackLinesOptions): void {
    this.s.lines(...linesArgs(o));
  }

  send(buf: Buffer): void {
    this.s.send(buf);
  }

  /** Start reading (keeps the event loop alive until unref() or close()). */
  start(): void {
    this.s.start();
  }

  ref(): void {
    this.s.ref();
  }

  unref(): void {
    this.s.unref();
  }

  /** The kernel's drop counter for this socket. */
  drops(): number {
    return this.s.drops();
  }

  /** Read what is queued now (through onBatch). */
  drain(): void {
    if (!this.closed) this.s.drain();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.s.close();
  }
}

/** A bound netlink socket made inside another network namespace (by a thread of the addon's own); its fd. */
export function socketInNetns(nsPath: string, inode: number, protocol: number): number {
  return addon().socketInNetns(nsPath, inode, protocol);
}
