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
import { BoundedMap } from '../lru.js';
import { pickHolder, type Viewer } from './owner.js';
import type { ForwardedResolver } from '../netns/resolver.js';
import type { AuditHook } from '../audit/hook.js';
import type { PortHook } from '../bpf/hook.js';

export interface AttributorOptions extends Viewer {
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
  /** Owners of forwarded flows in other network namespaces of this host (src/netns: netnsResolver()). */
  forwarded?: (index: SocketIndex, procs: ProcessReader) => ForwardedResolver;
  /** Audit records of connect/send calls (src/audit/hook.ts): consulted for NEW events of outgoing and local flows. */
  audit?: AuditHook;
  /** Local ports seen at syscall time (src/bpf/hook.ts): consulted for NEW events of outgoing and local flows sock_diag found no process for. */
  ports?: PortHook;
}

/** A flow's tuple (to guard against reused ids) and direction. */
interface Base {
  proto: string;
  src: string;
  sport?: number;
  dst: string;
  dport?: number;
  direction: FlowEvent['direction'];
}

/** What is known of a flow's owner (one shape for all, made often). */
class Remembered implements Base {
  process?: ProcessInfo = undefined;
  peer?: ProcessInfo = undefined;
  readonly proto: string;
  readonly src: string;
  readonly sport?: number;
  readonly dst: string;
  readonly dport?: number;
  readonly direction: FlowEvent['direction'];
  constructor(b: Base, public attribution: Attribution, process?: ProcessInfo) {
    this.proto = b.proto;
    this.src = b.src;
    this.sport = b.sport;
    this.dst = b.dst;
    this.dport = b.dport;
    this.direction = b.direction;
    if (process) this.process = process;
  }
}

const PROTO_NUM: Record<string, number> = { tcp: IPPROTO_TCP, udp: IPPROTO_UDP, udplite: IPPROTO_UDPLITE };

interface Endpoint { addr: string; port: number }

/** What one flow needs looked up. */
interface Lookup {
  base: Base;
  proto: number;
  family: 'ipv4' | 'ipv6';
  out: Endpoint;
  outRemote: Endpoint;
  inLocal: Endpoint;
  inRemote: Endpoint;
  /** Look up the originating end (out, local). */
  wantOut: boolean;
  /** Look up the replying end (in; the peer of local). */
  wantIn: boolean;
}

const direction = (l: Lookup) => l.base.direction;

/**
 * When the flow began, as closely as the event tells (ms since the epoch):
 * the kernel's start timestamp (nf_conntrack_timestamp=1), else the time
 * ct-events received the event, which is later; Infinity when neither is
 * known (never matches a closed socket).
 */
function eventMs(ev: FlowEvent): number {
  const start = typeof ev.start === 'string' ? Date.parse(ev.start) : NaN;
  const t = Date.parse(ev.ts);
  if (!Number.isNaN(start) && !(start > t)) return start;
  return Number.isNaN(t) ? Infinity : t;
}

const UDP_OWNER_MS = 200;

export class Attributor {
  private diag: SockDiag;
  readonly index: SocketIndex;
  readonly procs: ProcessReader;
  private flows: BoundedMap<number, Remembered>;
  private local = new Set<string>();
  private localAt = 0;
  private readonly maxFlows: number;
  readonly stats = { lookups: 0, ok: 0, failed: 0, cached: 0, reasons: {} as Record<string, number> };

  constructor(private opts: AttributorOptions = {}) {
    this.diag = new SockDiag();
    this.index = new SocketIndex({ proc: opts.proc });
    this.procs = new ProcessReader({ proc: opts.proc, cmdline: opts.cmdline, maxEntries: opts.maxProcesses, freshMs: 50 });
    this.maxFlows = opts.maxFlows ?? 100000;
    this.flows = new BoundedMap(Math.max(2, this.maxFlows));
    this.fwd = opts.forwarded ? opts.forwarded(this.index, this.procs) : null;
    this.refreshLocal();
  }

  private readonly fwd: ForwardedResolver | null;

  /** A forwarded flow's owner in another network namespace of this host, if it has one there. */
  private async forwarded(ev: FlowEvent, rec: Remembered): Promise<Remembered> {
    const f = await this.fwd!.resolve(ev);
    if (!f) return rec;
    const out = new Remembered(rec, f.attribution, f.process);
    if (f.peer) out.peer = f.peer;
    return out;
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
   * UDP owners by local endpoint: a flood of flows from one socket needs
   * one sock_diag answer, not one per flow. An entry is used while its
   * socket is still held (the fd index re-checks the inode with a readlink)
   * and for UDP_OWNER_MS after sock_diag named it; then sock_diag is asked
   * again. Once the socket is closed, the entry still answers for flows
   * whose events were received before the last time the socket was seen
   * held (`confirmedAt`): at that moment, after the flow began, this socket
   * had the flow's local endpoint, and while it had it no other socket
   * could. A flow that began after that moment is never given to it.
   */
  private udpOwners = new Map<string, { sock: SockInfo; at: number; confirmedAt: number }>();
  /** Sockets seen closed, with the process that held them (see udpOwners). */
  private closedOwner = new WeakMap<SockInfo, ProcessInfo>();
  /** When the current batch began (see beginBatch), or 0. */
  private batchAt = 0;

  /**
   * The UDP owner of `local` if known; undefined when sock_diag must be
   * asked. `ts` is the event's receive time (ms), for closed sockets.
   */
  private cachedUdpOwner(proto: number, local: Endpoint, ev: FlowEvent): SockInfo | undefined {
    const hit = this.udpOwners.get(`${proto}|${local.addr}|${local.port}`);
    if (!hit) return undefined;
    if (this.closedOwner.has(hit.sock)) return eventMs(ev) <= hit.confirmedAt ? hit.sock : undefined;
    // A confirmation made in this batch was made after it began.
    const t = this.batchAt || Date.now();
    if (this.index.holds(hit.sock.inode)) {
      if (t > hit.confirmedAt) hit.confirmedAt = t;
      return Date.now() - hit.at < UDP_OWNER_MS ? hit.sock : undefined;
    }
    const last = this.withInode.get(hit.sock.inode);
    if (!last) return undefined;
    this.closedOwner.set(hit.sock, last.info);
    return eventMs(ev) <= hit.confirmedAt ? hit.sock : undefined;
  }

  private async findSocket(family: 'ipv4' | 'ipv6', proto: number, local: Endpoint, remote: Endpoint, ev: FlowEvent): Promise<SockInfo | null> {
    if (proto !== IPPROTO_TCP) {
      const cached = this.cachedUdpOwner(proto, local, ev);
      if (cached) return cached;
      const key = `${proto}|${local.addr}|${local.port}`;
      // Events read together all miss together (when the entry expires, or
      // for a new socket): one question for them all, not one each.
      const inflight = this.udpAsking.get(key);
      if (inflight) return inflight;
      const asking = this.askUdpOwner(key, family, proto, local, remote);
      this.udpAsking.set(key, asking);
      try {
        return await asking;
      } finally {
        this.udpAsking.delete(key);
      }
    }
    return this.findSocketNow(family, proto, local, remote);
  }

  /** UDP owner lookups on their way, by local endpoint (see findSocket). */
  private udpAsking = new Map<string, Promise<SockInfo | null>>();

  private async askUdpOwner(key: string, family: 'ipv4' | 'ipv6', proto: number, local: Endpoint, remote: Endpoint): Promise<SockInfo | null> {
    const asked = Date.now();
    const s = await this.findSocketNow(family, proto, local, remote);
    if (s && s.inode) {
      if (this.udpOwners.size > 4096) this.udpOwners.clear();
      this.udpOwners.set(key, { sock: s, at: asked, confirmedAt: asked });
    } else {
      // Nothing there now: a closed socket's entry stays, for its flows still to come.
      const old = this.udpOwners.get(key);
      if (old && !this.closedOwner.has(old.sock)) this.udpOwners.delete(key);
    }
    return s;
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

  /** The process-with-inode objects handed out, reused while the same. */
  private withInode = new Map<number, { base: ProcessInfo; info: ProcessInfo }>();

  private owner(sock: SockInfo): { process?: ProcessInfo; reason?: string; holders?: number } {
    const closed = this.closedOwner.get(sock);
    if (closed) return { process: closed };
    const found = this.index.lookup(sock.inode);
    const { best, reason } = pickHolder(found.holders, found.denied, sock.uid, this.procs, this.opts);
    if (!best) return { reason };
    // One object per (process, socket): a flood from one socket shares it.
    let w = this.withInode.get(sock.inode);
    if (!w || w.base !== best) {
      if (this.withInode.size >= 4096) this.withInode.clear();
      w = { base: best, info: { ...best, inode: sock.inode } };
      this.withInode.set(sock.inode, w);
    }
    return { process: w.info, holders: found.holders.length };
  }

  /** Direction and the endpoints to look up; a final answer when none is needed. */
  private classify(ev: FlowEvent): Lookup | Remembered {
    const srcLocal = this.isLocal(ev.src);
    const dstLocal = this.isLocal(ev.reply?.src ?? ev.dst);
    const direction: FlowEvent['direction'] = srcLocal && dstLocal ? 'local' : srcLocal ? 'out' : dstLocal ? 'in' : 'fwd';
    const base: Base = { proto: ev.proto, src: ev.src, sport: ev.sport, dst: ev.dst, dport: ev.dport, direction };
    if (direction === 'fwd') return new Remembered(base, { method: 'none', ok: false, reason: 'forwarded' });
    const proto = PROTO_NUM[ev.proto];
    if (!proto || ev.sport === undefined) return new Remembered(base, { method: 'none', ok: false, reason: 'unsupported-protocol' });
    const r = ev.reply;
    return {
      base,
      proto,
      family: ev.family,
      out: { addr: ev.src, port: ev.sport! },
      outRemote: { addr: ev.dst, port: ev.dport! },
      inLocal: { addr: r.src, port: r.sport! },
      inRemote: { addr: r.dst, port: r.dport! },
      wantOut: direction !== 'in',
      wantIn: direction !== 'out' && (direction === 'in' || this.opts.peer !== false),
    };
  }

  /** The answer from the sockets found (`a` for the originating end, `b` for the replying end). */
  private build(l: Lookup, a: SockInfo | null, b: SockInfo | null): Remembered {
    const direction = l.base.direction;
    const mine = direction === 'in' ? b : a;
    if (!mine) return new Remembered(l.base, { method: 'sock_diag', ok: false, reason: 'socket-gone' });
    const o = this.owner(mine);
    const rec = o.process
      ? new Remembered(l.base, { method: 'sock_diag', ok: true }, o.process)
      : new Remembered(l.base, { method: 'sock_diag', ok: false, reason: o.reason, uid: mine.uid } as Attribution);
    if (o.holders && o.holders > 1) (rec.attribution as any).holders = o.holders;
    if (direction === 'local' && b) {
      const p = this.owner(b);
      if (p.process) rec.peer = p.process;
    }
    return rec;
  }

  /**
   * Answer without waiting when every socket needed is a UDP owner still
   * held (see udpOwners); null when sock_diag must be asked.
   */
  private lookupNow(ev: FlowEvent): Remembered | null {
    const l = this.classify(ev);
    if (l instanceof Remembered) return l.direction === 'fwd' && this.fwd ? null : l;
    if (l.proto === IPPROTO_TCP) return null;
    const a = l.wantOut ? this.cachedUdpOwner(l.proto, l.out, ev) : null;
    if (a === undefined) return null;
    const b = l.wantIn ? this.cachedUdpOwner(l.proto, l.inLocal, ev) : null;
    if (b === undefined) return null;
    this.stats.lookups++;
    return this.build(l, a, b);
  }

  private async lookup(ev: FlowEvent): Promise<Remembered> {
    const l = this.classify(ev);
    if (l instanceof Remembered) return l.direction === 'fwd' && this.fwd ? this.forwarded(ev, l) : l;
    this.stats.lookups++;
    try {
      const [a, b] = await Promise.all([
        l.wantOut ? this.findSocket(l.family, l.proto, l.out, l.outRemote, ev) : Promise.resolve(null),
        l.wantIn ? this.findSocket(l.family, l.proto, l.inLocal, l.inRemote, ev) : Promise.resolve(null),
      ]);
      const rec = this.build(l, a, b);
      if (!rec.process && (direction(l) === 'in') && l.proto === IPPROTO_TCP && b) {
        // The accepted socket was closed before its owner could be read: the
        // connection was received by the listener's process.
        const ls = await this.findListener(l.family, l.inLocal);
        if (ls) {
          const lo = this.owner(ls);
          if (lo.process) {
            const fixed = new Remembered(l.base, { method: 'sock_diag', ok: true }, lo.process);
            if (lo.holders && lo.holders > 1) (fixed.attribution as any).holders = lo.holders;
            return fixed;
          }
        }
      }
      return rec;
    } catch (e) {
      return new Remembered(l.base, { method: 'sock_diag', ok: false, reason: `error: ${(e as Error).message}` });
    }
  }

  private remember(id: number, rec: Remembered): void {
    if (this.opts.flowCache === false) return;
    this.flows.set(id, rec);
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

  /**
   * Start a batch: call after reading a batch of events and before
   * attributing them. Socket holders confirmed once in a batch are not
   * confirmed again for each of its events (all of them happened before
   * the check, as with a check per event).
   */
  beginBatch(): void {
    this.batchAt = Date.now();
    this.index.newEpoch();
  }

  /**
   * Attribute `ev` at once if no lookup needs waiting for (the flow is
   * remembered, or its UDP socket's owner is known and still held): true
   * when done. Otherwise false, and attribute() must be awaited.
   */
  attributeNow(ev: FlowEvent): boolean {
    let known: Remembered | null = null;
    if (ev.event !== 'new') {
      known = this.recall(ev);
      if (known && this.fromMemory(ev, known)) return true;
    }
    const rec = this.lookupNow(ev);
    if (!rec) return false;
    if (ev.event === 'new') this.opts.audit?.note(ev, rec);
    this.settle(ev, rec, known);
    return true;
  }

  /** Add direction, process and attribution to one flow event (in place). */
  async attribute(ev: FlowEvent): Promise<void> {
    let known: Remembered | null = null;
    if (ev.event !== 'new') {
      known = this.recall(ev);
      if (known && this.fromMemory(ev, known)) return;
    }
    // Announced in stream order, before the lookup: see src/audit/correlator.ts.
    const ticket = this.opts.audit?.expect(ev) ?? null;
    let rec = await this.lookup(ev);
    const ports = this.opts.ports;
    if (ports && ports.wants(ev, rec)) rec = await ports.resolve(ev, rec);
    if (ticket) rec = await this.opts.audit!.settle(ticket, rec, this.index);
    this.settle(ev, rec, known);
  }

  private fromMemory(ev: FlowEvent, known: Remembered): boolean {
    if (!(known.attribution.ok || ev.event === 'destroy' || known.direction === 'fwd')) return false;
    this.stats.cached++;
    this.apply(ev, known);
    if (ev.event === 'destroy') this.flows.delete(ev.id);
    return true;
  }

  private settle(ev: FlowEvent, rec: Remembered, known: Remembered | null): void {
    if (ev.event === 'new') {
      this.remember(ev.id, rec);
      this.apply(ev, rec);
      return;
    }
    // NEW not seen (started before us, or lost), or not attributed yet: tried now.
    if (!rec.attribution.ok && rec.attribution.reason === 'socket-gone' && !known) rec.attribution.reason = 'not-seen';
    if (ev.event === 'destroy') this.flows.delete(ev.id);
    else if (rec.attribution.ok || !known) this.remember(ev.id, rec);
    this.apply(ev, rec.attribution.ok || !known ? rec : known);
  }

  get flowCount(): number {
    return this.flows.size;
  }
}
