// An NFLOG socket: a NETLINK_NETFILTER socket bound to one nfnetlink_log
// group, read continuously. Each logged packet goes to `onPacket` with the
// datagram and its bounds; losses go to `onLost`, counted exactly from the
// instance's sequence numbers (NFULNL_CFG_F_SEQ: a gap is packets the kernel
// could not queue to us) and the socket's drop counter. ENOBUFS is switched
// off (NETLINK_NO_ENOBUFS), as for the conntrack socket: losses are counted,
// never fatal. This folder is the only importer of 'netlink'.
import { readFileSync } from 'node:fs';
import { RawNetlinkSocket } from 'netlink';
import { splitMessages, nlError, NLMSG_ERROR, DecodeError } from './conntrack.js';
import { bindRequest, configRequest, cmdAttr, decodeLogged, NFULNL_CFG_CMD_UNBIND, type LoggedPacket } from './nflog.js';
import { netlinkSocketInfo } from '../proc/netlink.js';
import { fdOfInode, setIntOptions, SOL_NETLINK, NETLINK_NO_ENOBUFS, SOL_SOCKET, SO_RCVBUFFORCE } from './sockopt.js';

const NETLINK_NETFILTER = 12;
const EBUSY = 16, EPERM = 1;

export interface NflogOptions {
  /** The first group to try; with `tries` > 1, the next ones when a group is taken. */
  group: number;
  tries?: number;
  /** Receive buffer in bytes (default 64 MiB; forced past rmem_max with CAP_NET_ADMIN). */
  rcvbuf?: number;
  onPacket: (buf: Buffer, p: LoggedPacket) => void;
  onLost: (n: number, reason: 'dns-gap' | 'dns-enobufs' | 'dns-malformed') => void;
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
  private sock: RawNetlinkSocket | null = null;
  private nextSeq: number | null = null;
  private drops = 0;
  private dropTimer: NodeJS.Timeout | null = null;
  private pendingAck: { seq: number; done: (code: number) => void } | null = null;
  /** The group bound, once started. */
  group = -1;
  readonly counts = { packets: 0, lost: 0, datagrams: 0 };

  constructor(private opts: NflogOptions) {}

  async start(): Promise<void> {
    let sock: RawNetlinkSocket;
    try {
      sock = new RawNetlinkSocket(NETLINK_NETFILTER, {} as any);
    } catch (e) {
      throw new NflogError(`netlink socket: ${(e as Error).message}`);
    }
    this.sock = sock;
    sock.on('message', (msg: Buffer, rinfo: { truncated?: number }) => this.onDatagram(msg, rinfo?.truncated));
    sock.on('error', (err: any) => {
      if (err && err.code === 'ENOBUFS') return this.pollDrops();
      this.opts.onWarning?.(`NFLOG socket: ${err?.message ?? err}`);
    });
    const want = this.opts.rcvbuf ?? 64 << 20;
    try { sock.setRecvBufferSize(Math.min(want, rmemMax())); } catch { /* the default still works */ }
    const info = netlinkSocketInfo(sock.address().port);
    const fd = info ? fdOfInode(info.inode) : null;
    if (fd !== null) {
      this.drops = info!.drops;
      const o: Array<[number, number, number]> = [[SOL_NETLINK, NETLINK_NO_ENOBUFS, 1]];
      if (want > rmemMax()) o.push([SOL_SOCKET, SO_RCVBUFFORCE, want]);
      const errors = setIntOptions(fd, o);
      if (errors.length) this.opts.onWarning?.(`NFLOG socket options: ${errors.join('; ')}`);
    } else {
      this.opts.onWarning?.('could not find the NFLOG socket\'s descriptor to tune it');
    }
    const tries = Math.max(1, this.opts.tries ?? 1);
    for (let i = 0; i < tries; i++) {
      const g = (this.opts.group + i) & 0xffff;
      const code = await this.request(bindRequest(g, 1 + i));
      if (code === 0) {
        this.group = g;
        break;
      }
      if (code === -EBUSY && i + 1 < tries) continue;
      this.close();
      if (code === -EPERM) throw new NflogError('binding an NFLOG group needs CAP_NET_ADMIN');
      if (code === -EBUSY) throw new NflogError(`NFLOG groups ${this.opts.group}..${g} are all taken by other programs`);
      throw new NflogError(`binding NFLOG group ${g}: errno ${-code}`);
    }
    this.dropTimer = setInterval(() => this.pollDrops(), 200);
    this.dropTimer.unref();
  }

  /** Send a config request; resolves with its ACK's error code (0: done). */
  private request(msg: Buffer): Promise<number> {
    const seq = msg.readUInt32LE(8);
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.pendingAck = null; resolve(-110); }, 3000);
      this.pendingAck = { seq, done: (c) => { clearTimeout(timer); this.pendingAck = null; resolve(c); } };
      this.sock!.send(msg, {}, (err?: any) => {
        if (err) this.pendingAck?.done(-(err.errno ? Math.abs(err.errno) : 1));
      });
    });
  }

  private pollDrops(): void {
    if (!this.sock) return;
    const info = netlinkSocketInfo(this.sock.address().port);
    if (info && info.drops > this.drops) {
      const n = info.drops - this.drops;
      this.drops = info.drops;
      // Each dropped message is also a gap in the sequence numbers: counted
      // there, exactly, when the next packet arrives. Counted here only
      // when no packet has been numbered (the first ones lost).
      if (this.nextSeq === null) this.lose(n, 'dns-enobufs');
    }
  }

  private lose(n: number, reason: 'dns-gap' | 'dns-enobufs' | 'dns-malformed'): void {
    this.counts.lost += n;
    this.opts.onLost(n, reason);
  }

  private onDatagram(buf: Buffer, truncated?: number): void {
    this.counts.datagrams++;
    if (truncated) return this.lose(1, 'dns-malformed');
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

  close(): void {
    if (this.dropTimer) clearInterval(this.dropTimer);
    this.dropTimer = null;
    const s = this.sock;
    this.sock = null;
    if (!s) return;
    // Unbind explicitly; closing the socket also releases the group.
    if (this.group >= 0) {
      try { s.send(configRequest(this.group, 99, 0, [cmdAttr(NFULNL_CFG_CMD_UNBIND)]), {}, () => s.close()); return; } catch { /* closed below */ }
    }
    s.close();
  }
}
