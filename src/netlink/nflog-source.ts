// An NFLOG socket: a NETLINK_NETFILTER socket bound to one nfnetlink_log
// group, read by ctpipe's addon (src/native/netlink.ts: every datagram
// waiting at each wake-up, overruns counted, never an abort). Each logged
// packet goes to `onPacket` with its datagram and bounds; losses go to
// `onLost`, counted exactly from the instance's sequence numbers
// (NFULNL_CFG_F_SEQ: a gap is packets the kernel could not queue to us) and,
// before the first numbered packet, from the socket's drop counter.
import { readFileSync } from 'node:fs';
import { NetlinkSocket, forEachDatagram, type NetlinkBatch } from '../native/netlink.js';
import { splitMessages, nlError, NLMSG_ERROR, DecodeError } from './conntrack.js';
import { bindRequest, configRequest, cmdAttr, decodeLogged, NFULNL_CFG_CMD_UNBIND, type LoggedPacket } from './nflog.js';

const NETLINK_NETFILTER = 12;
const EBUSY = 16, EPERM = 1;
/** Largest datagram: one packet of up to COPY bytes and its attributes. */
const COPY = 8192;
const SLOT = 16384;

export type NflogLoss = 'dns-gap' | 'dns-enobufs' | 'dns-malformed';

export interface NflogOptions {
  /** The first group to try; with `tries` > 1, the next ones when a group is taken. */
  group: number;
  tries?: number;
  /** Receive buffer in bytes (default 64 MiB; forced past rmem_max with CAP_NET_ADMIN). */
  rcvbuf?: number;
  onPacket: (buf: Buffer, p: LoggedPacket) => void;
  onLost: (n: number, reason: NflogLoss) => void;
  onWarning?: (m: string) => void;
}

export class NflogError extends Error {}

function rmemMax(): number {
  try {
    return Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8').trim()) || 212992;
  } catch {
    return 212992;
  }
}

export class NflogSource {
  private sock: NetlinkSocket | null = null;
  private nextSeq: number | null = null;
  private pendingAck: { seq: number; done: (code: number) => void } | null = null;
  /** The group bound, once started. */
  group = -1;
  readonly counts = { packets: 0, lost: 0, datagrams: 0 };

  constructor(private opts: NflogOptions) {}

  async start(): Promise<void> {
    let sock: NetlinkSocket;
    try {
      sock = new NetlinkSocket(NETLINK_NETFILTER, { slot: SLOT, onBatch: (b) => this.onBatch(b) });
    } catch (e) {
      throw new NflogError(`netlink socket: ${(e as Error).message}`);
    }
    this.sock = sock;
    const errors = sock.setRcvbuf(this.opts.rcvbuf ?? 64 << 20, rmemMax());
    const e = sock.noEnobufs();
    if (e) errors.push(e);
    if (errors.length) this.opts.onWarning?.(`NFLOG socket options: ${errors.join('; ')}; losses are still counted`);
    sock.start();
    const tries = Math.max(1, this.opts.tries ?? 1);
    for (let i = 0; i < tries; i++) {
      const g = (this.opts.group + i) & 0xffff;
      const code = await this.request(bindRequest(g, 1 + i, COPY));
      if (code === 0) {
        this.group = g;
        return;
      }
      if (code === -EBUSY && i + 1 < tries) continue;
      this.close();
      if (code === -EPERM) throw new NflogError('binding an NFLOG group needs CAP_NET_ADMIN');
      if (code === -EBUSY) throw new NflogError(`NFLOG groups ${this.opts.group} to ${g} are all taken by other programs`);
      throw new NflogError(`binding NFLOG group ${g}: ${code === -110 ? 'no answer from the kernel (is nfnetlink_log available?)' : `errno ${-code}`}`);
    }
  }

  /** Send a config request; resolves with its ACK's error code (0: done). */
  private request(msg: Buffer): Promise<number> {
    const seq = msg.readUInt32LE(8);
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.pendingAck = null; resolve(-110); }, 3000);
      this.pendingAck = { seq, done: (c) => { clearTimeout(timer); this.pendingAck = null; resolve(c); } };
      try {
        this.sock!.send(msg);
      } catch (err) {
        this.pendingAck.done(-(Math.abs((err as { errno?: number }).errno ?? 1)));
      }
    });
  }

  private lose(n: number, reason: NflogLoss): void {
    this.counts.lost += n;
    this.opts.onLost(n, reason);
  }

  private onBatch(b: NetlinkBatch): void {
    if (b.count) forEachDatagram(b.buf, (start, end) => this.onDatagram(b.buf.subarray(start, end)));
    // Every message the kernel could not queue is a gap in the sequence
    // numbers too, counted there exactly when the next packet comes; the
    // drop counter is used only before the first numbered packet.
    if (b.drops && this.nextSeq === null) this.lose(b.drops, 'dns-enobufs');
    if (b.truncated) this.lose(b.truncated, 'dns-malformed');
    if (b.error) this.opts.onWarning?.(`NFLOG socket: ${b.error.message}`);
  }

  private onDatagram(buf: Buffer): void {
    this.counts.datagrams++;
    let msgs;
    try {
      msgs = splitMessages(buf);
    } catch {
      return this.lose(1, 'dns-malformed');
    }
    for (const m of msgs) {
      if (m.type === NLMSG_ERROR) {
        if (this.pendingAck && m.seq === this.pendingAck.seq) this.pendingAck.done(nlError(buf, m));
        continue;
      }
      let p: LoggedPacket | null;
      try {
        p = decodeLogged(buf, m);
      } catch (e) {
        if (e instanceof DecodeError) { this.lose(1, 'dns-malformed'); continue; }
        throw e;
      }
      if (!p) continue;
      if (p.seq !== undefined) {
        if (this.nextSeq !== null && p.seq !== this.nextSeq) {
          const gap = (p.seq - this.nextSeq) >>> 0;
          if (gap > 0 && gap < 0x80000000) this.lose(gap, 'dns-gap');
        }
        this.nextSeq = (p.seq + 1) >>> 0;
      }
      this.counts.packets++;
      this.opts.onPacket(buf, p);
    }
  }

  /** Read what the kernel has queued now, synchronously (through onPacket). */
  drain(): void {
    this.sock?.drain();
  }

  close(): void {
    const s = this.sock;
    this.sock = null;
    if (!s) return;
    // Closing the socket releases the group too; the unbind says so at once.
    if (this.group >= 0) {
      try { s.send(configRequest(this.group, 99, 0, [cmdAttr(NFULNL_CFG_CMD_UNBIND)])); } catch { /* closed anyway */ }
    }
    s.close();
  }
}
