// Who owns a flow: direction from the host's own addresses, the socket from
// sock_diag (exact-tuple lookups, many in flight), its inode's process from
// the /proc fd index, the process's details from /proc/PID. The answer found
// at NEW is remembered by conntrack id (guarded by the tuple, since ids are
// reused) and given to the same flow's UPDATE and DESTROY events, even after
// the process has gone. A failed lookup says why; a pid is never guessed.
import { networkInterfaces } from 'node:os';
import type { FlowEvent, ProcessInfo, Attribution } from '../event.js';
import { SockDiag, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE, type SockInfo } from '../netlink/sockdiag.js';
import { SocketIndex } from '../proc/sockets.js';
import { ProcessReader } from '../proc/process.js';

export interface AttributorOptions {
  proc?: string;
  /** Include cmdline (default true). */
  cmdline?: boolean;
  /** Remember flows by conntrack id (default true). */
  flowCache?: boolean;
  /** Flows remembered at most (LRU). */
  maxFlows?: number;
  /** Processes remembered at most (LRU). */
  maxProcesses?: number;
  /** Name the peer process of local (both ends on this host) flows. */
  peer?: boolean;
  /** This process's effective uid, to tell no-permission from no-process. */
  selfUid?: number;
}

interface Remembered {
  proto: string;
  src: string;
  sport?: number;
  dst: string;
  dport?: number;
  direction: FlowEvent['direction'];
  process?: ProcessInfo;
  peer?: ProcessInfo;
  attribution: Attribution;
}

const PROTO_NUM: Record<string, number> = { tcp: IPPROTO_TCP, udp: IPPROTO_UDP, udplite: IPPROTO_UDPLITE };

interface Endpoint { addr: string; port: number }

const UDP_OWNER_MS = 200;

export class Attributor {
  private diag: SockDiag;
  readonly index: SocketIndex;
  readonly procs: ProcessReader;
  private flows = new Map<number, Remembered>();
  private local = new Set<string>();
  private localAt = 0;
  private readonly maxFlows: number;
  readonly stats = { lookups: 0, ok: 0, failed: 0, cached: 0, reasons: {} as Record<string, number> };

  constructor(private opts: AttributorOptions = {}) {
    this.diag = new SockDiag();
    this.index = new SocketIndex({ proc: opts.proc });
    this.procs = new ProcessReader({ proc: opts.proc, cmdline: opts.cmdline, maxEntries: opts.maxProcesses, freshMs: 50 });
    this.maxFlows = opts.maxFlows ?? 100000;
    this.refreshLocal();
  }

  close(): void {
    this.diag.close();
  }

  private refreshLocal(): void {
    const set = new Set<string>();
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) set.add(a.address.replace(/%.*$/, '').toLowerCase());
    }
    this.local = set;
    this.localAt = Date.now();
  }

  /** Is `addr` an address of this host (in this network namespace)? */
  isLocal(addr: string): boolean {
    if (addr.startsWith('127.') || addr === '::1' || addr.startsWith('::ffff:127.')) return true;
    if (Date.now() - this.localAt > 2000) this.refreshLocal();
    return this.local.has(addr) || (addr.startsWith('::ffff:') && this.local.has(addr.slice(7)));
  }

  /**
   * UDP owners by local endpoint, for a moment: a flood of flows from one
   * socket needs one sock_diag answer, not one per flow. An entry is used
   * only while its socket is still held (the fd index re-checks the inode
   * with a readlink), so a closed socket is never named.
   */
  private udpOwners = new Map<string, { sock: SockInfo; at: number }>();

  private async findSocket(family: 'ipv4' | 'ipv6', proto: number, local: Endpoint, remote: Endpoint): Promise<SockInfo | null> {
    if (proto !== IPPROTO_TCP) {
      const key = `${proto}|${local.addr}|${local.port}`;
      const hit = this.udpOwners.get(key);
      if (hit && Date.now() - hit.at < UDP_OWNER_MS && this.index.holds(hit.sock.inode)) return hit.sock;
      const s = await this.findSocketNow(family, proto, local, remote);
      if (s && s.inode) {
        if (this.udpOwners.size > 4096) this.udpOwners.clear();
        this.udpOwners.set(key, { sock: s, at: Date.now() });
      } else this.udpOwners.delete(key);
      return s;
    }
    return this.findSocketNow(family, proto, local, remote);
  }

  private async findSocketNow(family: 'ipv4' | 'ipv6', proto: number, local: Endpoint, remote: Endpoint): Promise<SockInfo | null> {
    // TCP looks a socket up by (local, remote); UDP the way the receive path
    // does, from the remote end to the local one (udp_diag.c, udp_dump_one).
    const exact = proto === IPPROTO_TCP
      ? { src: local.addr, sport: local.port, dst: remote.addr, dport: remote.port }
      : { src: remote.addr, sport: remote.port, dst: local.addr, dport: local.port };
    const r = await this.diag.query({ family, proto, exact });
    let s = r[0] ?? null;
    if (proto === IPPROTO_TCP && (!s || s.inode === 0)) {
      // A half-open inbound connection is a request socket with no inode:
      // its owner is the listener on the local port.
      s = (await this.findListener(family, local)) ?? s;
    }
    return s;
  }

  private async findListener(family: 'ipv4' | 'ipv6', local: Endpoint): Promise<SockInfo | null> {
    const any = family === 'ipv4' ? '0.0.0.0' : '::';
    const l = await this.diag.query({ family, proto: IPPROTO_TCP, exact: { src: local.addr, sport: local.port, dst: any, dport: 0 } });
    return l[0] && l[0].inode !== 0 && l[0].state === 10 ? l[0] : null;
  }

  private owner(sock: SockInfo): { process?: ProcessInfo; reason?: string; holders?: number } {
    const found = this.index.lookup(sock.inode);
    if (!found.holders.length) {
      const self = this.opts.selfUid;
      if (found.denied > 0 && self !== undefined && self !== 0 && sock.uid !== self) return { reason: 'no-permission' };
      return { reason: 'no-process' };
    }
    let best: ProcessInfo | null = null;
    for (const h of found.holders) {
      const p = this.procs.get(h.pid);
      if (!p) continue;
      // Several holders (inherited or passed sockets): the youngest process
      // is the one that most likely used it.
      if (!best || (p.start_time ?? '') > (best.start_time ?? '')) best = p;
    }
    if (!best) return { reason: 'socket-gone' };
    return { process: { ...best, inode: sock.inode }, holders: found.holders.length };
  }

  private async lookup(ev: FlowEvent): Promise<Remembered> {
    const srcLocal = this.isLocal(ev.src);
    const dstLocal = this.isLocal(ev.reply?.src ?? ev.dst);
    const direction: FlowEvent['direction'] = srcLocal && dstLocal ? 'local' : srcLocal ? 'out' : dstLocal ? 'in' : 'fwd';
    const base = { proto: ev.proto, src: ev.src, sport: ev.sport, dst: ev.dst, dport: ev.dport, direction };
    if (direction === 'fwd') return { ...base, attribution: { method: 'none', ok: false, reason: 'forwarded' } };
    const proto = PROTO_NUM[ev.proto];
    if (!proto || ev.sport === undefined) return { ...base, attribution: { method: 'none', ok: false, reason: 'unsupported-protocol' } };
    this.stats.lookups++;
    const fam = ev.family;
    const r = ev.reply;
    const out = { addr: ev.src, port: ev.sport! };
    const outRemote = { addr: ev.dst, port: ev.dport! };
    const inLocal = { addr: r.src, port: r.sport! };
    const inRemote = { addr: r.dst, port: r.dport! };
    try {
      const [a, b] = await Promise.all([
        direction !== 'in' ? this.findSocket(fam, proto, out, outRemote) : Promise.resolve(null),
        direction !== 'out' && (direction === 'in' || this.opts.peer !== false) ? this.findSocket(fam, proto, inLocal, inRemote) : Promise.resolve(null),
      ]);
      const mine = direction === 'in' ? b : a;
      if (!mine) return { ...base, attribution: { method: 'sock_diag', ok: false, reason: 'socket-gone' } };
      let o = this.owner(mine);
      if (!o.process && proto === IPPROTO_TCP && direction === 'in') {
        // The accepted socket was closed before its owner could be read: the
        // connection was received by the listener's process.
        const l = await this.findListener(fam, inLocal);
        if (l) {
          const lo = this.owner(l);
          if (lo.process) o = lo;
        }
      }
      const rec: Remembered = { ...base, attribution: o.process ? { method: 'sock_diag', ok: true } : { method: 'sock_diag', ok: false, reason: o.reason } };
      if (!o.process) (rec.attribution as any).uid = mine.uid;
      if (o.process) rec.process = o.process;
      if (o.holders && o.holders > 1) (rec.attribution as any).holders = o.holders;
      if (direction === 'local' && b) {
        const p = this.owner(b);
        if (p.process) rec.peer = p.process;
      }
      return rec;
    } catch (e) {
      return { ...base, attribution: { method: 'sock_diag', ok: false, reason: `error: ${(e as Error).message}` } };
    }
  }

  private remember(id: number, rec: Remembered): void {
    if (this.opts.flowCache === false) return;
    this.flows.delete(id);
    this.flows.set(id, rec);
    if (this.flows.size > this.maxFlows) this.flows.delete(this.flows.keys().next().value!);
  }

  private recall(ev: FlowEvent): Remembered | null {
    const r = this.flows.get(ev.id);
    if (!r) return null;
    if (r.proto !== ev.proto || r.src !== ev.src || r.sport !== ev.sport || r.dst !== ev.dst || r.dport !== ev.dport) return null;
    return r;
  }

  private apply(ev: FlowEvent, rec: Remembered): void {
    ev.direction = rec.direction;
    if (rec.process) ev.process = rec.process;
    if (rec.peer) ev.peer = rec.peer;
    ev.attribution = rec.attribution;
    this.stats[rec.attribution.ok ? 'ok' : 'failed']++;
    if (!rec.attribution.ok && rec.attribution.reason) {
      const k = rec.attribution.reason;
      this.stats.reasons[k] = (this.stats.reasons[k] ?? 0) + 1;
    }
  }

  /** Add direction, process and attribution to one flow event (in place). */
  async attribute(ev: FlowEvent): Promise<void> {
    if (ev.event === 'new') {
      const rec = await this.lookup(ev);
      this.remember(ev.id, rec);
      this.apply(ev, rec);
      return;
    }
    const known = this.recall(ev);
    if (known && (known.attribution.ok || ev.event === 'destroy' || known.direction === 'fwd')) {
      this.stats.cached++;
      this.apply(ev, known);
      if (ev.event === 'destroy') this.flows.delete(ev.id);
      return;
    }
    // NEW not seen (started before us, or lost), or not attributed yet: try now.
    const rec = await this.lookup(ev);
    if (!rec.attribution.ok && rec.attribution.reason === 'socket-gone' && !known) rec.attribution.reason = 'not-seen';
    if (ev.event === 'destroy') this.flows.delete(ev.id);
    else if (rec.attribution.ok || !known) this.remember(ev.id, rec);
    this.apply(ev, rec.attribution.ok || !known ? rec : known);
  }

  get flowCount(): number {
    return this.flows.size;
  }
}
