// Owners of forwarded flows that begin or end in another network namespace
// of this host (a container's): the flow's address names the namespace
// (NetnsIndex), an exact sock_diag lookup inside the namespace names the
// socket (NsDiag; method "netns-sock_diag"), or, where that cannot be done,
// the namespace's own socket tables (/proc/PID/net/tcp, udp, … read through
// any process inside it; method "netns-proc"), and the fd tables of the
// namespace's processes name its process (socket inodes are unique across
// namespaces). The container's name and image come from its runtime's files
// (ContainerMeta). No `process` access.
//
// Lookups are batched: every lookup asked for in one event-loop turn (one
// input batch of ct-attribute) shares one round trip, or one read per
// namespace and table, made after the events it serves arrived, so a socket
// that existed when its flow began is found unless it has closed since.
// Nothing is guessed: an address owned by several namespaces whose tables
// both hold a matching socket is `ambiguous`, and no process is named.
import type { FlowEvent, ProcessInfo, Attribution } from '../../../event.js';
import { readdirSync, readlinkSync } from 'node:fs';
import type { SocketIndex, Holder } from '../../../proc/sockets.js';
import type { ProcessReader } from '../../../proc/process.js';
import { NetnsIndex, type Netns, type NetnsIndexOptions, type ReadResult } from './namespaces.js';
import { ContainerMeta, type ContainerMetaOptions } from './runtime.js';
import { tcpOwner, udpOwner, type Endpoint, type ProcSocket } from './procnet.js';
import { NsDiag } from './nsdiag.js';
import { BoundedMap } from '../../../lru.js';
import { pickHolder, type Viewer } from '../../owner.js';
import { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE, TCP_LISTEN } from '../../../netlink/sockdiag.js';

export const METHOD_DIAG = 'netns-sock_diag';
export const METHOD_PROC = 'netns-proc';

/** What a forwarded flow's lookup found: the fields the engine gives the event. */
export interface ForwardedResult {
  process?: ProcessInfo;
  peer?: ProcessInfo;
  attribution: Attribution;
}

/** What the netns method (method.ts) consults for `fwd` flows: null when the flow is none of its business. */
export interface ForwardedResolver {
  resolve(ev: FlowEvent): Promise<ForwardedResult | null>;
}

export interface NetnsResolverOptions {
  index: SocketIndex;
  procs: ProcessReader;
  proc?: string;
  namespaces?: NetnsIndex | NetnsIndexOptions;
  /** Runtime roots for container names and images; false reads no runtime files. */
  runtimes?: ContainerMetaOptions | false;
  /** Name the other end too when both are in namespaces of this host (default true). */
  peer?: boolean;
  /** This process's effective uid, to tell no-permission from no-process. */
  selfUid?: number;
  /** Whether it may read every process's fd table (default: when selfUid is 0). */
  privileged?: boolean;
  /** sock_diag inside namespaces; false reads /proc/PID/net tables only. */
  diag?: NsDiag | false;
}

// Socket tables per protocol: a v4 flow may be a dual-stack v6 socket's.
const FILES: Record<string, { v4: string[]; v6: string[]; tcp: boolean; num: number }> = {
  tcp: { v4: ['tcp', 'tcp6'], v6: ['tcp6'], tcp: true, num: IPPROTO_TCP },
  udp: { v4: ['udp', 'udp6'], v6: ['udp6'], tcp: false, num: IPPROTO_UDP },
  udplite: { v4: ['udplite', 'udplite6'], v6: ['udplite6'], tcp: false, num: IPPROTO_UDPLITE },
};

/** What one end's lookup needs. */
interface End {
  family: 'ipv4' | 'ipv6';
  proto: (typeof FILES)[string];
  files: string[];
  local: Endpoint;
  remote: Endpoint;
  /** The end that received the flow: a TCP connection not found falls back to the listener. */
  receiving: boolean;
}

interface Side {
  method: string;
  netns?: number;
  process?: ProcessInfo;
  reason?: string;
  uid?: number;
  holders?: number;
}

export class NetnsResolver implements ForwardedResolver {
  readonly namespaces: NetnsIndex;
  readonly meta: ContainerMeta | null;
  private readonly index: SocketIndex;
  private readonly procs: ProcessReader;
  private readonly peer: boolean;
  private readonly viewer: Viewer;
  private readonly proc: string;
  private pending = new Map<string, Promise<ReadResult>>();
  readonly diag: NsDiag | null;
  readonly stats = { lookups: 0, ok: 0, tableReads: 0, diagErrors: 0 };

  constructor(opts: NetnsResolverOptions) {
    this.index = opts.index;
    this.procs = opts.procs;
    this.namespaces = opts.namespaces instanceof NetnsIndex ? opts.namespaces : new NetnsIndex({ proc: opts.proc, ...(opts.namespaces ?? {}) });
    this.meta = opts.runtimes === false ? null : new ContainerMeta(opts.runtimes ?? {});
    this.peer = opts.peer !== false;
    this.viewer = { selfUid: opts.selfUid, privileged: opts.privileged };
    this.proc = opts.proc ?? '/proc';
    this.diag = opts.diag === false ? null : opts.diag ?? new NsDiag();
    if (this.diag) {
      const d = this.diag;
      this.namespaces.onGone = (ino) => d.close(ino);
    }
  }

  /** One read of a namespace's table for every lookup of this event-loop turn. */
  private table(ns: Netns, file: string): Promise<ReadResult> {
    const key = `${ns.inode}/${file}`;
    let p = this.pending.get(key);
    if (!p) {
      p = Promise.resolve().then(() => {
        this.pending.delete(key);
        this.stats.tableReads++;
        return this.namespaces.read(ns, file);
      });
      this.pending.set(key, p);
    }
    return p;
  }

  /** The owners of a forwarded flow's ends in other namespaces; null when neither address is a namespace's. Never throws. */
  async resolve(ev: FlowEvent): Promise<ForwardedResult | null> {
    try {
      return await this.resolveOrThrow(ev);
    } catch (e) {
      return { attribution: { method: this.diag && !this.diag.failed ? METHOD_DIAG : METHOD_PROC, ok: false, reason: `error: ${(e as Error).message}` } };
    }
  }

  private async resolveOrThrow(ev: FlowEvent): Promise<ForwardedResult | null> {
    const r = ev.reply;
    const srcNs = this.namespaces.lookup(ev.src);
    const dstNs = r ? this.namespaces.lookup(r.src) : [];
    if (!srcNs.length && !dstNs.length) return null;
    this.stats.lookups++;
    const side = srcNs.length ? 'src' : 'dst';
    const files = FILES[ev.proto];
    if (!files || ev.sport === undefined || ev.dport === undefined || !r || r.sport === undefined || r.dport === undefined) {
      const att: Attribution = { method: this.diag && !this.diag.failed ? METHOD_DIAG : METHOD_PROC, ok: false, reason: 'unsupported-protocol', side };
      const only = side === 'src' ? srcNs : dstNs;
      if (only.length === 1) att.netns = only[0].inode;
      return { attribution: att };
    }
    const list = ev.family === 'ipv6' ? files.v6 : files.v4;
    const end = (local: Endpoint, remote: Endpoint, receiving: boolean): End => ({ family: ev.family, proto: files, files: list, local, remote, receiving });
    const [a, b] = await Promise.all([
      srcNs.length ? this.side(srcNs, end({ addr: ev.src, port: ev.sport }, { addr: ev.dst, port: ev.dport }, false)) : null,
      dstNs.length && (!srcNs.length || this.peer) ? this.side(dstNs, end({ addr: r.src, port: r.sport }, { addr: r.dst, port: r.dport }, true)) : null,
    ]);
    const mine = (side === 'src' ? a : b)!;
    const method = mine.method;
    const out: ForwardedResult = { attribution: mine.process ? { method, ok: true, side } : { method, ok: false, reason: mine.reason, side } };
    if (mine.process) {
      out.process = mine.process;
      this.stats.ok++;
    } else {
      if (mine.netns !== undefined) out.attribution.netns = mine.netns;
      if (mine.uid !== undefined) out.attribution.uid = mine.uid;
    }
    if (mine.holders && mine.holders > 1) out.attribution.holders = mine.holders;
    if (side === 'src' && b?.process) out.peer = b.process;
    return out;
  }

  /** The owner of one end of the flow, looked for in each namespace that owns its address. */
  private async side(candidates: Netns[], e: End): Promise<Side> {
    const found: Array<{ ns: Netns; sock: ProcSocket }> = [];
    let denied = 0;
    let method = METHOD_DIAG;
    for (const ns of candidates) {
      let sock = await this.byDiag(ns, e);
      if (sock === undefined) {
        method = METHOD_PROC;
        const t = await this.byTables(ns, e);
        if (t === 'no-permission') denied++;
        sock = t === 'no-permission' ? null : t;
      }
      if (sock) found.push({ ns, sock });
    }
    const netns = candidates.length === 1 ? candidates[0].inode : undefined;
    if (found.length > 1) return { method, reason: 'ambiguous' };
    if (!found.length) return { method, netns, reason: denied ? 'no-permission' : 'socket-gone' };
    const { ns, sock } = found[0];
    return { ...this.owner(sock, ns), method, netns: ns.inode };
  }

  /**
   * The socket by exact sock_diag lookups inside the namespace, as the
   * attributor does on the host: TCP by (local, remote), UDP from the remote
   * end to the local one; undefined when sock_diag cannot be used there.
   */
  private async byDiag(ns: Netns, e: End): Promise<ProcSocket | null | undefined> {
    const d = this.diag;
    const pid = ns.pids.values().next().value;
    if (!d || d.failed || pid === undefined) return undefined;
    const { family, local, remote } = e;
    const proto = e.proto.num;
    try {
      const exact = e.proto.tcp
        ? { src: local.addr, sport: local.port, dst: remote.addr, dport: remote.port }
        : { src: remote.addr, sport: remote.port, dst: local.addr, dport: local.port };
      const s = (await d.query(ns.inode, pid, { family, proto, exact })).find((x) => x.inode !== 0);
      if (s) return s;
      if (!(e.proto.tcp && e.receiving)) return null;
      // A half-open connection (a request socket) or one closed already: the listener's.
      const any = family === 'ipv4' ? '0.0.0.0' : '::';
      const l = (await d.query(ns.inode, pid, { family, proto, exact: { src: local.addr, sport: local.port, dst: any, dport: 0 } })).find((x) => x.inode !== 0 && x.state === TCP_LISTEN);
      return l ?? null;
    } catch {
      // The helper failed, or the pid left the namespace: the tables say.
      this.stats.diagErrors++;
      return undefined;
    }
  }

  /** The socket from the namespace's /proc/PID/net tables. */
  private async byTables(ns: Netns, e: End): Promise<ProcSocket | null | 'no-permission'> {
    let denied = false;
    // The connection itself in every table first, then (for the receiving
    // end of TCP) the listener: a v4-mapped connection beats a v4 listener.
    for (const pass of e.proto.tcp && e.receiving ? [false, true] : [false]) {
      for (const f of e.files) {
        const t = await this.table(ns, f);
        if (!('text' in t)) {
          if (t.error === 'no-permission') denied = true;
          continue;
        }
        const sock = e.proto.tcp ? tcpOwner(t.text, f.endsWith('6'), e.local, e.remote, pass) : udpOwner(t.text, f.endsWith('6'), e.local, e.remote);
        if (sock) return sock;
      }
    }
    return denied ? 'no-permission' : null;
  }

  /** The process objects handed out, one per (process, socket): a flood from one socket shares it. */
  private shared = new Map<number, { base: ProcessInfo; info: ProcessInfo }>();

  /**
   * Who holds socket `inode` among the namespace's own processes: a few fd
   * tables instead of the fd index's rescan of every process (which, on a
   * loaded host, can stall every other lookup long enough for short-lived
   * sockets to go). The pids are the index's, refreshed once if none of them
   * holds it (a new process). Every other socket seen on the way is
   * remembered too: a busy process's next sockets are found at once.
   */
  private holdersIn(ns: Netns, inode: number): { holders: Holder[]; denied: number } {
    const want = `socket:[${inode}]`;
    const holders: Holder[] = [];
    const seen = new Set<number>();
    const others = new Map<number, Holder[]>();
    let denied = 0;
    const scan = (pids: Iterable<number>) => {
      for (const pid of pids) {
        if (seen.has(pid)) continue;
        seen.add(pid);
        const dir = `${this.proc}/${pid}/fd`;
        let fds: string[];
        try { fds = readdirSync(dir); } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'EACCES' || code === 'EPERM') denied++;
          continue;
        }
        for (const fd of fds) {
          let link: string;
          try { link = readlinkSync(`${dir}/${fd}`); } catch { continue; }
          if (link.charCodeAt(0) !== 115 || !link.startsWith('socket:[')) continue;
          const h = { pid, fd: Number(fd) };
          if (link === want) { holders.push(h); continue; }
          const ino = Number(link.slice(8, -1));
          const l = others.get(ino);
          if (!l) others.set(ino, [h]);
          else if (!l.some((x) => x.pid === pid)) l.push(h);
        }
      }
    };
    scan(ns.pids);
    if (!holders.length) {
      this.namespaces.refresh(false, false);
      const cur = this.namespaces.get(ns.inode);
      if (cur) scan(cur.pids);
    }
    for (const [ino, l] of others) this.held.set(ino, l);
    return { holders, denied };
  }

  /** Holders found in namespaces, by socket inode; each use re-checked with one readlink. */
  private held = new BoundedMap<number, Holder[]>(65536);

  private cachedHolders(inode: number): Holder[] | null {
    const h = this.held.get(inode);
    if (!h) return null;
    const want = `socket:[${inode}]`;
    const ok = h.filter((x) => {
      try { return readlinkSync(`${this.proc}/${x.pid}/fd/${x.fd}`) === want; } catch { return false; }
    });
    return ok.length ? ok : null;
  }

  private owner(sock: ProcSocket, ns: Netns): Omit<Side, 'method'> {
    let got: { holders: Holder[]; denied: number };
    const cached = this.cachedHolders(sock.inode);
    if (cached) got = { holders: cached, denied: 0 };
    else if (this.index.holds(sock.inode)) got = this.index.lookup(sock.inode);
    else {
      // Not the fd index's full rescan: a socket held only by a process of
      // another namespace (passed to it, or kept across a setns) is missed.
      got = this.holdersIn(ns, sock.inode);
      if (got.holders.length) this.held.set(sock.inode, got.holders);
    }
    const netns = ns.inode;
    const { best, reason } = pickHolder(got.holders, got.denied, sock.uid, this.procs, this.viewer);
    if (!best) return { reason, uid: sock.uid };
    let w = this.shared.get(sock.inode);
    if (!w || w.base !== best) {
      if (this.shared.size >= 4096) this.shared.clear();
      w = { base: best, info: this.describe(best, sock.inode, netns) };
      this.shared.set(sock.inode, w);
    }
    return { process: w.info, holders: got.holders.length };
  }

  private describe(p: ProcessInfo, inode: number, netns: number): ProcessInfo {
    const out: ProcessInfo = { ...p, inode, netns };
    const c = p.container;
    if (c && this.meta) {
      const d = this.meta.describe(c.id, c.runtime);
      if (d) out.container = { ...c, ...d };
    }
    return out;
  }
}
