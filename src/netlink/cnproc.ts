// The process connector: fork, exec and exit of every process, as the
// kernel multicasts them on NETLINK_CONNECTOR group CN_IDX_PROC
// (include/uapi/linux/connector.h, include/uapi/linux/cn_proc.h). The
// kernel sends them only while someone has asked with
// PROC_CN_MCAST_LISTEN, which needs CAP_NET_ADMIN, the initial user and pid
// namespaces (otherwise the request is ignored without an answer), and the
// initial network namespace (the connector exists only there). Decoders are
// pure functions of a Buffer; the socket reports births and exits. The
// events come at the kernel's pace (a fork storm is thousands a second), so
// the socket is the addon's (src/native/netlink.ts), which counts an
// overflow instead of aborting the process as the 'netlink' package does on
// ENOBUFS.
import { endianness } from 'node:os';
import { EventEmitter } from 'node:events';
import { NetlinkSocket, forEachDatagram, SOL_SOCKET, SO_RCVBUF, type NetlinkBatch } from '../native/netlink.js';

export const NETLINK_CONNECTOR = 11;
export const CN_IDX_PROC = 1;
export const CN_VAL_PROC = 1;
export const PROC_CN_MCAST_LISTEN = 1;
export const PROC_CN_MCAST_IGNORE = 2;
export const PROC_EVENT_NONE = 0;
export const PROC_EVENT_FORK = 0x1;
export const PROC_EVENT_EXEC = 0x2;
export const PROC_EVENT_EXIT = 0x80000000;
const NLMSG_DONE = 3;
const NLMSG_HDRLEN = 16;
/** struct cn_msg: cb_id {idx, val}, seq, ack, len (u16), flags (u16). */
const CN_MSG_LEN = 20;
/** struct proc_event up to event_data: what, cpu, timestamp_ns (u64). */
const PROC_EVENT_HDR = 16;

const LE = endianness() === 'LE';
const u32 = (b: Buffer, o: number) => (LE ? b.readUInt32LE(o) : b.readUInt32BE(o));
const u16 = (b: Buffer, o: number) => (LE ? b.readUInt16LE(o) : b.readUInt16BE(o));

/** The request to start (or stop) the events: nlmsghdr + cn_msg + the op. */
export function buildMcastOp(op: number, portid: number, seq = 1): Buffer {
  const b = Buffer.alloc(NLMSG_HDRLEN + CN_MSG_LEN + 4);
  const w32 = (v: number, o: number) => (LE ? b.writeUInt32LE(v >>> 0, o) : b.writeUInt32BE(v >>> 0, o));
  const w16 = (v: number, o: number) => (LE ? b.writeUInt16LE(v, o) : b.writeUInt16BE(v, o));
  w32(b.length, 0);
  w16(NLMSG_DONE, 4);
  w16(0, 6);
  w32(seq, 8);
  w32(portid, 12);
  w32(CN_IDX_PROC, 16);
  w32(CN_VAL_PROC, 20);
  w32(seq, 24);
  w32(0, 28);
  w16(4, 32);
  w16(0, 34);
  w32(op, 36);
  return b;
}

export type ProcEvent =
  | { what: 'fork'; pid: number; tgid: number; parentTgid: number }
  | { what: 'exec'; pid: number; tgid: number }
  | { what: 'exit'; pid: number; tgid: number }
  | { what: 'ack'; err: number };

/**
 * The process events in one datagram (several netlink messages may share
 * it); others (uid/gid changes, comm, ptrace, ...) are skipped. Throws on a
 * message that claims more bytes than the datagram has.
 */
export function decodeProcEvents(buf: Buffer): ProcEvent[] {
  const out: ProcEvent[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = u32(buf, off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) throw new Error(`netlink message of ${len} bytes at ${off} in a datagram of ${buf.length}`);
    const cn = off + NLMSG_HDRLEN;
    const ev = cn + CN_MSG_LEN;
    if (len >= NLMSG_HDRLEN + CN_MSG_LEN + PROC_EVENT_HDR + 4 && u32(buf, cn) === CN_IDX_PROC && u32(buf, cn + 4) === CN_VAL_PROC) {
      const dataLen = u16(buf, cn + 16);
      const end = Math.min(off + len, ev + dataLen);
      const what = u32(buf, ev);
      const d = ev + PROC_EVENT_HDR;
      if (what === PROC_EVENT_FORK && d + 16 <= end) out.push({ what: 'fork', pid: u32(buf, d + 8), tgid: u32(buf, d + 12), parentTgid: u32(buf, d + 4) });
      else if (what === PROC_EVENT_EXEC && d + 8 <= end) out.push({ what: 'exec', pid: u32(buf, d), tgid: u32(buf, d + 4) });
      else if (what === PROC_EVENT_EXIT && d + 8 <= end) out.push({ what: 'exit', pid: u32(buf, d), tgid: u32(buf, d + 4) });
      else if (what === PROC_EVENT_NONE && d + 4 <= end) out.push({ what: 'ack', err: u32(buf, d) });
    }
    off += (len + 3) & ~3;
  }
  return out;
}

/**
 * A NETLINK_CONNECTOR socket listening to process events. Emits 'born'
 * (pid: a new process or an exec), 'ended' (pid), 'lost' (the socket
 * overflowed: events were dropped) and 'error' (a receive error; only when
 * someone listens). start() resolves when the kernel acknowledged the
 * request, and rejects with why it will not send.
 */
export class ProcConnector extends EventEmitter {
  private sock: NetlinkSocket | null = null;
  private acked = false;
  private onAck: ((err: number) => void) | null = null;

  /** `rcvbuf`: the socket's receive buffer (SO_RCVBUF, capped by net.core.rmem_max); the kernel's default when not given. */
  async start(timeoutMs = 1000, opts: { rcvbuf?: number } = {}): Promise<void> {
    let sock: NetlinkSocket;
    try {
      sock = new NetlinkSocket(NETLINK_CONNECTOR, { slot: 4096, onBatch: (b) => this.onBatch(b) });
      if (opts.rcvbuf) sock.setInt(SOL_SOCKET, SO_RCVBUF, opts.rcvbuf);
    } catch (e) {
      const err = e as { code?: string; message: string };
      throw new Error(err.code === 'EPROTONOSUPPORT' ? 'no process connector in this network namespace (it exists only in the initial one)' : `connector socket: ${err.message}`);
    }
    this.sock = sock;
    try {
      sock.addMembership(CN_IDX_PROC);
    } catch (e) {
      this.close();
      const err = e as { code?: string; message: string };
      throw new Error(err.code === 'EPERM' || err.code === 'EACCES' ? 'joining the process events group needs CAP_NET_ADMIN' : `connector: ${err.message}`);
    }
    sock.start();
    sock.unref();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.onAck = null;
        this.close();
        reject(new Error('the kernel did not answer the request for process events (it answers only the initial user and pid namespaces)'));
      }, timeoutMs);
      this.onAck = (err) => {
        this.onAck = null;
        clearTimeout(timer);
        if (err !== 0) {
          this.close();
          reject(new Error(err === 1 ? 'process events need CAP_NET_ADMIN' : `process events refused (errno ${err})`));
          return;
        }
        this.acked = true;
        resolve();
      };
      try {
        sock.send(buildMcastOp(PROC_CN_MCAST_LISTEN, sock.portid));
      } catch (e) {
        this.onAck = null;
        clearTimeout(timer);
        this.close();
        const err = e as { code?: string; message: string };
        reject(new Error(err.code === 'EPERM' ? 'process events need CAP_NET_ADMIN' : err.code === 'ECONNREFUSED' ? 'no process connector in this network namespace (it exists only in the initial one)' : `connector: ${err.message}`));
      }
    });
  }

  private onBatch(b: NetlinkBatch): void {
    if (b.drops || b.truncated) this.emit('lost');
    if (b.error && this.listenerCount('error')) this.emit('error', b.error);
    forEachDatagram(b.buf, (start, end) => {
      let evs: ProcEvent[];
      try {
        evs = decodeProcEvents(b.buf.subarray(start, end));
      } catch {
        return;
      }
      for (const e of evs) {
        if (e.what === 'ack') {
          if (!this.acked && this.onAck) this.onAck(e.err);
        } else if (e.what === 'exit') {
          if (e.pid === e.tgid) this.emit('ended', e.tgid);
        } else if (e.pid === e.tgid) this.emit('born', e.tgid);
      }
    });
  }

  close(): void {
    const s = this.sock;
    if (!s) return;
    this.sock = null;
    // The kernel counts listeners: say we stop, so it stops sending when nobody listens.
    if (this.acked) {
      try { s.send(buildMcastOp(PROC_CN_MCAST_IGNORE, s.portid)); } catch { /* closing anyway */ }
    }
    try { s.close(); } catch { /* closed */ }
  }
}
