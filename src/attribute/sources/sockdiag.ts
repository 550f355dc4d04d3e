// The sock_diag method: the socket of a flow's local end from an exact
// sock_diag lookup (NETLINK_SOCK_DIAG, many in flight), its inode's
// process from the /proc fd index (src/proc/sockets.ts), the process's
// details from /proc/PID. First in the engine's chain: it answers outgoing,
// inbound and local flows of this network namespace; a failed lookup says
// why, a pid is never guessed.
import type { FlowEvent, ProcessInfo, Attribution } from '../../event.js';
import { SockDiag, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE, type SockInfo } from '../../netlink/sockdiag.js';
import type { LookupResult, SocketIndex } from '../../proc/sockets.js';
import { EventWatch, type PreferredWatch } from '../../proc/pids.js';
import { ProcConnector } from '../../netlink/cnproc.js';
import type { ProcessReader } from '../../proc/process.js';
import { pickHolder, type Viewer } from '../owner.js';
import type { Answer, MethodStatus, Source } from '../source.js';

export const PROTO_NUM: Record<string, number> = { tcp: IPPROTO_TCP, udp: IPPROTO_UDP, udplite: IPPROTO_UDPLITE };

interface Endpoint { addr: string; port: number }

/** A socket's owner, or why none. */
interface Owner { process?: ProcessInfo; reason?: string; holders?: number }

/** The sockets lookAhead() found for a TCP event (before any listener is looked for). */
interface Ahead { l: Lookup; a: SockInfo | null; b: SockInfo | null }

/** What an answer is built from: the flow's direction and when it began. */
interface Want {
  direction: FlowEvent['direction'];
  /** When the flow began (ms; see eventMs). */
  since: number;
}

/** What one flow needs looked up. */
interface Lookup extends Want {
  direction: FlowEvent['direction'];
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
  /** When the flow began (ms; see eventMs). */
  since: number;
}

/**
 * When the flow began, as closely as the event tells (ms since the epoch):
 * the kernel's start timestamp (nf_conntrack_timestamp=1), else the time
 * ct-events received the event, which is later; Infinity when neither is
 * known (never matches a closed socket).
 */
function eventMs(ev: FlowEvent): number {
  const start = typeof ev.start === 'string' ? Date.parse(ev.start) : NaN;
  const t = tsMs(ev.ts);
  if (!Number.isNaN(start) && !(start > t)) return start;
  return Number.isNaN(t) ? Infinity : t;
}

/** The last `ts` parsed and its time: the events of one batch of ct-events share their `ts`. */
let lastTs = '';
let lastTsMs = NaN;
function tsMs(ts: string): number {
  if (ts !== lastTs) {
    lastTsMs = Date.parse(ts);
    lastTs = ts;
  }
  return lastTsMs;
}

/** The attribution of an owner found (shared: never changed; one with `holders` is made for its event). */
const FOUND: Attribution = Object.freeze({ method: 'sock_diag', ok: true }) as Attribution;

const UDP_OWNER_MS = 200;

/** An entry of EndpointMap: one address at a (protocol, port), and the next at the same one. */
interface EndpointEntry<V> { addr: string; v: V; next: EndpointEntry<V> | null }

/**
 * Values by UDP local endpoint (protocol, address, port), keyed by a small
 * integer (protocol and port) with the address compared in its chain: a
 * lookup builds no key string, where a flood asks for two endpoints per
 * event (its socket's, and a new peer port each time).
 */
export class EndpointMap<V> {
  private byPort = new Map<number, EndpointEntry<V>>();
  size = 0;

  get(proto: number, addr: string, port: number): V | undefined {
    let e: EndpointEntry<V> | null = this.byPort.get(proto * 65536 + port) ?? null;
    while (e !== null && e.addr !== addr) e = e.next;
    return e !== null ? e.v : undefined;
  }

  set(proto: number, addr: string, port: number, v: V): void {
    const k = proto * 65536 + port;
    const first = this.byPort.get(k) ?? null;
    for (let e: EndpointEntry<V> | null = first; e; e = e.next) {
      if (e.addr === addr) {
        e.v = v;
        return;
      }
    }
    this.byPort.set(k, { addr, v, next: first });
    this.size++;
  }

  delete(proto: number, addr: string, port: number): void {
    const k = proto * 65536 + port;
    let prev: EndpointEntry<V> | null = null;
    for (let e = this.byPort.get(k) ?? null; e; prev = e, e = e.next) {
      if (e.addr !== addr) continue;
      if (prev) prev.next = e.next;
      else if (e.next) this.byPort.set(k, e.next);
      else this.byPort.delete(k);
      this.size--;
      return;
    }
  }

  clear(): void {
    this.byPort = new Map();
    this.size = 0;
  }
}
/**
 * A census of a protocol's UDP ports (see SockDiagSource.census): begun at
 * `at` (ms), the ports listed once the dump is read (null until then).
 */
interface Census { at: number; ports: Set<number> | null; taking: Promise<Set<number> | null> }

/** A UDP end whose owner entry is to be renewed before a batch is tried (SockDiagSource.ownersAhead), and a remote end to ask from. */
interface ExpiredEnd { hit: UdpOwner; proto: number; family: 'ipv4' | 'ipv6'; addr: string; port: number; raddr: string; rport: number }

/** A UDP owner entry (SockDiagSource.udpOwners). */
interface UdpOwner { sock: SockInfo; at: number; confirmedAt: number }

/** Exact UDP lookups finding nothing before a census of the table's ports is taken (see SockDiagSource.census). */
const CENSUS_AFTER = 32;

export interface SockDiagSourceOptions extends Viewer {
  index: SocketIndex;
  procs: ProcessReader;
  /** Name the peer process of local (both ends on this host) flows (default true). */
  peer?: boolean;
  /** The index's source of new pids: switched to the process connector's events once they flow. */
  pids?: PreferredWatch;
  /** Try the process connector (default true when pids is given). */
  connector?: boolean;
}

export class SockDiagSource implements Source {
  readonly name = 'sock_diag';
  private diag: SockDiag;
  private readonly index: SocketIndex;
  private readonly procs: ProcessReader;
  /** Lookups; owners waited for (a rescan); sockets gone while their holder was searched for. */
  readonly stats = { lookups: 0, waited: 0, goneWhileFinding: 0, censuses: 0, censusesAhead: 0, renewedAhead: 0 };

  constructor(private opts: SockDiagSourceOptions) {
    this.diag = new SockDiag();
    this.index = opts.index;
    this.procs = opts.procs;
  }

  private connector: ProcConnector | null = null;
  /** Why the process connector is not used, once known. */
  private connectorWhy: string | null = null;

  /**
   * Start learning new pids from the process connector, in the background:
   * until its events flow (or when they cannot), diffs of the /proc listing.
   */
  async start(): Promise<void> {
    const watch = this.opts.pids;
    // What runs now is not new; what is born from here on is, from the first miss on.
    watch?.take();
    if (!watch || this.opts.connector === false) return;
    const c = new ProcConnector();
    const events = new EventWatch();
    c.on('born', (pid: number) => events.born(pid));
    c.on('ended', (pid: number) => events.ended(pid));
    c.on('lost', () => watch.lost());
    c.on('error', () => { /* a receive error: the listing diff catches up */ watch.lost(); });
    this.connector = c;
    // The kernel acknowledges at once where it will send; waited for (briefly) so that status() is right from the start.
    await c.start(300).then(() => watch.prefer(events), (e) => { this.connectorWhy = (e as Error).message; this.connector = null; });
  }

  status(): MethodStatus {
    const mode = this.opts.pids?.mode ?? 'listing';
    return {
      method: this.name, live: true,
      detail: mode === 'connector' ? 'new processes from the process connector' : `new processes from diffs of the /proc listing${this.connectorWhy ? ` (process connector: ${this.connectorWhy})` : ''}`,
    };
  }

  statsLine(): string {
    const x = this.index.scans;
    return `sock_diag: lookups ${this.stats.lookups} (requests ${this.diag.sent.requests} in ${this.diag.sent.datagrams} datagrams, UDP port censuses ${this.stats.censuses} (${this.stats.censusesAhead} before their batch), UDP owners renewed before their batch ${this.stats.renewedAhead}; owners waited for ${this.stats.waited}, sockets gone meanwhile ${this.stats.goneWhileFinding}); fd index: holders found among new processes ${x.foundYoung}, recent socket owners ${x.foundRecent}, full rescans ${x.foundFull} (full rescans ${x.full}, ${x.fullMs.toFixed(0)} ms; new-pid listings ${x.learnMs.toFixed(0)} ms; fd tables read ${x.pidsRead}; new pids from ${this.opts.pids?.mode ?? 'listing'})`;
  }

  close(): void {
    this.connector?.close();
    this.diag.close();
  }

  /**
   * Start a batch: call after reading a batch of events and before
   * attributing them. Socket holders confirmed once in a batch are not
   * confirmed again for each of its events (all of them happened before
   * the check, as with a check per event).
   */
  beginBatch(): void {
    this.batchAt = Date.now();
    this.epoch++;
    this.index.newEpoch();
    this.lookedAhead = false;
    this.aheadCensus = null;
  }

  /** The batch's events have all been tried at once: a census taken ahead of it answers for no later event. */
  endBatch(): void {
    this.aheadCensus = null;
  }

  /**
   * TCP sockets of a batch's events looked up together (lookAhead), by
   * event: the refinement then needs no wait when their holders are known.
   */
  private ahead = new WeakMap<FlowEvent, Ahead>();
  /** lookAhead() ran in this batch: an event it did not look up waits (refine). */
  private lookedAhead = false;

  /**
   * The TCP lookups of a batch's NEW events in one datagram, answered
   * inside its send(2) (SockDiag.beginNow): what refine() would ask, asked
   * at once for all. UDP lookups have their own sharing (findSocket).
   */
  lookAhead(evs: readonly FlowEvent[], recs: readonly Answer[]): void {
    this.lookedAhead = true;
    this.ownersAhead(evs, recs);
    this.censusAhead(evs, recs);
    const diag = this.diag;
    let pending: { ev: FlowEvent; l: Lookup; a: number; b: number }[] | null = null;
    for (let i = 0; i < evs.length; i++) {
      const ev = evs[i];
      if (ev.proto !== 'tcp' || !this.wants(ev, recs[i])) continue;
      if (!pending) {
        if (!diag.beginNow()) return;
        pending = [];
      }
      const l = this.lookupOf(ev, recs[i].direction);
      const a = l.wantOut ? diag.lookNow(l.family, l.proto, l.out.addr, l.out.port, l.outRemote.addr, l.outRemote.port) : -2;
      const b = l.wantIn ? diag.lookNow(l.family, l.proto, l.inLocal.addr, l.inLocal.port, l.inRemote.addr, l.inRemote.port) : -2;
      if (a === -1 || b === -1) break;
      pending.push({ ev, l, a, b });
    }
    if (!pending) return;
    const answers = diag.nowAnswers();
    for (const x of pending) {
      const a = x.a === -2 ? null : answers[x.a];
      const b = x.b === -2 ? null : answers[x.b];
      if (a !== undefined && b !== undefined) this.ahead.set(x.ev, { l: x.l, a, b });
    }
  }

  /**
   * A batch's UDP ends whose owner entry is too old to be used
   * (UDP_OWNER_MS) while its socket is still held: sock_diag asked again
   * for each, in one datagram answered inside its send (as for TCP below),
   * and the entries renewed as askUdpOwner() renews them, before any event
   * is tried; otherwise every event of the end in the first batch after
   * each expiry took refine()'s way. An end found no more, or without an
   * inode, is left to refine(), which asks again.
   */
  private ownersAhead(evs: readonly FlowEvent[], recs: readonly Answer[]): void {
    let ends: ExpiredEnd[] | null = null;
    const now = this.batchAt || Date.now();
    for (let i = 0; i < evs.length; i++) {
      const ev = evs[i];
      if (ev.proto === 'tcp') continue;
      const rec = recs[i];
      if (!this.wants(ev, rec)) continue;
      const d = rec.direction;
      const p = PROTO_NUM[ev.proto];
      if (d !== 'in') ends = this.expired(ends, p, ev.family, ev.src, ev.sport!, ev.dst, ev.dport!, now);
      if (d !== 'out' && (d === 'in' || this.opts.peer !== false)) ends = this.expired(ends, p, ev.family, ev.reply.src, ev.reply.sport!, ev.reply.dst, ev.reply.dport!, now);
    }
    if (!ends || !this.diag.beginNow()) return;
    const asked = Date.now();
    const slots = ends.map((e) => this.diag.lookNow(e.family, e.proto, e.raddr, e.rport, e.addr, e.port));
    const answers = this.diag.nowAnswers();
    for (let k = 0; k < ends.length; k++) {
      const s = slots[k] < 0 ? undefined : answers[slots[k]];
      if (!s || !s.inode) continue;
      const e = ends[k];
      this.udpOwners.set(e.proto, e.addr, e.port, { sock: s, at: asked, confirmedAt: asked });
      this.udpAbsent.delete(e.proto, e.addr, e.port);
      this.stats.renewedAhead++;
    }
  }

  /** `ends` with the UDP end (proto, addr, port) added when its entry is too old and its socket still held (ownersAhead). */
  private expired(ends: ExpiredEnd[] | null, proto: number, family: 'ipv4' | 'ipv6', addr: string, port: number, raddr: string, rport: number, now: number): ExpiredEnd[] | null {
    const hit = this.udpOwners.get(proto, addr, port);
    if (!hit || now - hit.at < UDP_OWNER_MS || this.closedOwner.has(hit.sock)) return ends;
    if (ends) for (const e of ends) if (e.hit === hit) return ends;
    // A socket no longer held keeps its entry for the flows it had (cachedUdpOwner): not asked for.
    if (!this.index.holds(hit.sock.inode)) return ends;
    (ends ??= []).push({ hit, proto, family, addr, port, raddr, rport });
    return ends;
  }

  /**
   * A batch's UDP events that only a census begun after they were received
   * can answer at once (an end with no entry of its own, and the last
   * census older than the event): when a census is due for them by the
   * rule of censusFor(), it is taken now, read at once (SockDiag.dumpNow),
   * before any of them is attributed, so that refineNow() answers them all
   * from it instead of each one taking refine()'s way (a promise, and a
   * wait for a census or an exact lookup). In a flood of local flows to
   * fresh ports that was every event of a batch read after the last census
   * began. An end the census lists still asks sock_diag, as before.
   */
  private censusAhead(evs: readonly FlowEvent[], recs: readonly Answer[]): void {
    if (this.censusBusy) return;
    let stale = 0;
    let proto = 0;
    for (let i = 0; i < evs.length; i++) {
      const ev = evs[i];
      if (ev.proto === 'tcp') continue;
      const rec = recs[i];
      if (!this.wants(ev, rec)) continue;
      const p = PROTO_NUM[ev.proto];
      // One protocol a batch (a flood's): another one's events take their usual way.
      if (proto !== 0 && p !== proto) continue;
      const c = this.census.get(p);
      // Only where a census has been found worth taking (censusFor) and has been taken.
      if (!c || !c.ports) continue;
      const since = eventMs(ev);
      if (since < c.at) continue;
      const d = rec.direction;
      const out = d !== 'in' && this.endUnknown(p, ev.src, ev.sport!, since);
      const inn = d !== 'out' && (d === 'in' || this.opts.peer !== false) && this.endUnknown(p, ev.reply.src, ev.reply.sport!, since);
      if (out || inn) {
        proto = p;
        stale++;
      }
    }
    if (!stale) return;
    const c = this.census.get(proto)!;
    if (this.noneSinceCensus + stale < CENSUS_AFTER + c.ports!.size) return;
    const at = Date.now();
    const v4 = this.diag.dumpNow({ family: 'ipv4', proto });
    const v6 = v4 && this.diag.dumpNow({ family: 'ipv6', proto });
    if (!v4 || !v6) return;
    const ports = new Set<number>();
    for (const x of v4) ports.add(x.sport);
    for (const x of v6) ports.add(x.sport);
    const c2: Census = { at, ports, taking: Promise.resolve(ports) };
    this.census.set(proto, c2);
    this.aheadCensus = c2;
    this.noneSinceCensus = 0;
    this.stats.censuses++;
    this.stats.censusesAhead++;
  }

  /**
   * The census censusAhead() took for the batch being tried: every event of
   * that batch was read before it began, so each flow began before it (its
   * conntrack entry was made before ct-events could read it): for those it
   * answers whatever their times say, which are stamped to the microsecond
   * and compared to the millisecond (a flood's events are read within the
   * millisecond they were stamped in). Cleared at the batch's end (endBatch)
   * and at the next one's start.
   */
  private aheadCensus: Census | null = null;

  /** Whether the UDP end (proto, addr, port) has no entry that answers for a flow begun at `since` (cachedUdpOwner before its census). */
  private endUnknown(proto: number, addr: string, port: number, since: number): boolean {
    if (this.udpOwners.get(proto, addr, port)) return false;
    return !(this.udpAbsent.size && since < (this.udpAbsent.get(proto, addr, port) ?? -Infinity));
  }

  wants(ev: FlowEvent, rec: Answer): boolean {
    return rec.direction !== 'fwd' && PROTO_NUM[ev.proto] !== undefined && ev.sport !== undefined && !rec.process && rec.attribution.method === 'none';
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
  private udpOwners = new EndpointMap<UdpOwner>();
  /** Sockets seen closed, with the process that held them (see udpOwners). */
  private closedOwner = new WeakMap<SockInfo, ProcessInfo>();
  /** When the current batch began (see beginBatch), or 0. */
  private batchAt = 0;

  /**
   * The UDP owner of `local` if known; null when no socket can be the flow's (udpAbsent, census); undefined when sock_diag must be
   * asked. `since` is when the flow began (eventMs, ms), for closed sockets and empty endpoints;
   * `now`: the time (ms) an entry's age is measured at (refineNow: when the batch began, which
   * all its events share: Date.now() costs a call and a heap number each time); `ahead`: the census
   * taken ahead of the batch the flow's event is in (see censusAhead), which answers for it whatever its time.
   */
  private cachedUdpOwner(proto: number, addr: string, port: number, since: number, now = Date.now(), ahead: Census | null = null): SockInfo | null | undefined {
    const hit = this.udpOwners.get(proto, addr, port);
    if (hit) {
      if (this.closedOwner.has(hit.sock)) {
        if (since <= hit.confirmedAt) return hit.sock;
      } else {
        // A confirmation made in this batch was made after it began.
        const t = this.batchAt || Date.now();
        if (this.index.holds(hit.sock.inode)) {
          if (t > hit.confirmedAt) hit.confirmedAt = t;
          return now - hit.at < UDP_OWNER_MS ? hit.sock : undefined;
        }
        const last = this.withInode.get(hit.sock.inode);
        if (last) {
          this.closedOwner.set(hit.sock, last.info);
          if (since <= hit.confirmedAt) return hit.sock;
        }
      }
    }
    if (this.udpAbsent.size && since < (this.udpAbsent.get(proto, addr, port) ?? -Infinity)) return null;
    const c = this.census.get(proto);
    // A census taken ahead of the batch being tried (censusAhead) began after every one of its events was read.
    if (c && c.ports && !c.ports.has(port) && (since < c.at || c === ahead)) {
      this.noneSinceCensus++;
      return null;
    }
    return undefined;
  }

  /**
   * The UDP ports with a socket (of either family), by protocol, from a
   * dump of the table begun at `at` (ms): a port not in it had no socket
   * then, so an event received before then gets null at once, as an exact
   * lookup would answer (see udpAbsent). Taken when exact lookups keep
   * finding nothing at distinct ports (a flood of local flows to ports
   * nobody listens on, each asking for its peer): once CENSUS_AFTER
   * ports, plus one for each socket the last dump listed, were found
   * empty by exact lookups or by the last census.
   */
  private census = new Map<number, Census>();
  private noneSinceCensus = 0;
  private censusBusy = false;

  /** A census that can answer for an event received at `since` (ms), begun now if due; null when none is. */
  private censusFor(proto: number, since: number): Census | null {
    const c = this.census.get(proto);
    if (c && since < c.at) return c;
    // One dump at a time (a netlink socket runs one: EBUSY).
    if (this.censusBusy || this.noneSinceCensus < CENSUS_AFTER + (c?.ports?.size ?? 0)) return null;
    this.censusBusy = true;
    this.noneSinceCensus = 0;
    const at = Date.now();
    const next: Census = { at, ports: null, taking: Promise.resolve(null) };
    const both = async () => [await this.diag.query({ family: 'ipv4', proto }), await this.diag.query({ family: 'ipv6', proto })];
    next.taking = both().then(([v4, v6]) => {
      const ports = new Set<number>();
      for (const x of v4) ports.add(x.sport);
      for (const x of v6) ports.add(x.sport);
      next.ports = ports;
      this.stats.censuses++;
      return ports;
    }, () => {
      // A failed dump answers nothing: exact lookups go on.
      if (this.census.get(proto) === next) this.census.delete(proto);
      return null;
    }).finally(() => { this.censusBusy = false; });
    this.census.set(proto, next);
    return since < at ? next : null;
  }

  /**
   * UDP local endpoints sock_diag found no socket at, with when it was
   * asked (ms): a flow whose event was received before then had its socket
   * closed by then, so asking again could only find a later socket that
   * took the port (never its owner). Its events are answered "socket-gone"
   * at once: a flood from closed sockets asks sock_diag once per port, not
   * once per flow, and leaves the rest to the methods that saw the sends.
   */
  private udpAbsent = new EndpointMap<number>();

  private async findSocket(family: 'ipv4' | 'ipv6', proto: number, local: Endpoint, remote: Endpoint, since: number): Promise<SockInfo | null> {
    if (proto !== IPPROTO_TCP) {
      const cached = this.cachedUdpOwner(proto, local.addr, local.port, since);
      if (cached !== undefined) return cached;
      const c = this.censusFor(proto, since);
      if (c) {
        const ports = c.ports ?? await c.taking;
        // Nobody had the port when the census began, after the event came.
        if (ports && !ports.has(local.port)) {
          this.noneSinceCensus++;
          return null;
        }
      }
      // Events read together all miss together (when the entry expires, or
      // for a new socket): one question for them all, not one each.
      const inflight = this.udpAsking.get(proto, local.addr, local.port);
      if (inflight) return inflight;
      const asking = this.askUdpOwner(family, proto, local, remote);
      this.udpAsking.set(proto, local.addr, local.port, asking);
      try {
        return await asking;
      } finally {
        this.udpAsking.delete(proto, local.addr, local.port);
      }
    }
    return this.findSocketNow(family, proto, local, remote);
  }

  /** UDP owner lookups on their way, by local endpoint (see findSocket). */
  private udpAsking = new EndpointMap<Promise<SockInfo | null>>();

  private async askUdpOwner(family: 'ipv4' | 'ipv6', proto: number, local: Endpoint, remote: Endpoint): Promise<SockInfo | null> {
    const asked = Date.now();
    const s = await this.findSocketNow(family, proto, local, remote);
    const { addr, port } = local;
    if (s && s.inode) {
      if (this.udpOwners.size > 4096) this.udpOwners.clear();
      this.udpOwners.set(proto, addr, port, { sock: s, at: asked, confirmedAt: asked });
      this.udpAbsent.delete(proto, addr, port);
    } else {
      if (!s) {
        if (this.udpAbsent.size > 4096) this.udpAbsent.clear();
        this.udpAbsent.set(proto, addr, port, asked);
        this.noneSinceCensus++;
      }
      // Nothing there now: a closed socket's entry stays, for its flows still to come.
      const old = this.udpOwners.get(proto, addr, port);
      if (old && !this.closedOwner.has(old.sock)) this.udpOwners.delete(proto, addr, port);
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
    const s = r[0] ?? null;
    return proto === IPPROTO_TCP ? this.withListener(family, local, s) : s;
  }

  /** A TCP lookup's socket `s`, or when it has no inode (or none was found) the listener on `local`'s port, if any. */
  private async withListener(family: 'ipv4' | 'ipv6', local: Endpoint, s: SockInfo | null): Promise<SockInfo | null> {
    // A half-open inbound connection is a request socket with no inode:
    // its owner is the listener on the local port.
    if (!s || s.inode === 0) return (await this.findListener(family, local)) ?? s;
    return s;
  }

  private async findListener(family: 'ipv4' | 'ipv6', local: Endpoint): Promise<SockInfo | null> {
    const any = family === 'ipv4' ? '0.0.0.0' : '::';
    const l = await this.diag.query({ family, proto: IPPROTO_TCP, exact: { src: local.addr, sport: local.port, dst: any, dport: 0 } });
    return l[0] && l[0].inode !== 0 && l[0].state === 10 ? l[0] : null;
  }

  /** The process-with-inode objects handed out, reused while the same. */
  private withInode = new Map<number, { base: ProcessInfo; info: ProcessInfo }>();

  /** The owner of a socket whose holders are known (or known to be none). */
  private ownerFrom(sock: SockInfo, found: LookupResult): Owner {
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

  /** The owner when no lookup is needed (a closed socket's, or none possible); undefined otherwise. */
  private ownerKnown(sock: SockInfo): Owner | undefined {
    const closed = this.closedOwner.get(sock);
    if (closed) return { process: closed };
    // No inode: closed by its owner (TIME_WAIT, or orphaned while it ends); no process can hold it.
    if (sock.inode === 0) return { reason: 'socket-gone' };
    return undefined;
  }

  /** Batches begun (beginBatch); 0: none, every lookup is on its own. */
  private epoch = 0;
  /**
   * The last owner found in this batch, and its socket: a flood's events
   * of one batch ask for the same socket's owner, which the fd index
   * confirms once per batch (newEpoch) and would answer the same.
   */
  private lastOwner: { epoch: number; sock: SockInfo | null; owner: Owner | null } = { epoch: 0, sock: null, owner: null };

  /** The owner of a socket, looked up at once (the fd index's lookup: a rescan is done in full). */
  private owner(sock: SockInfo, since?: number): Owner {
    const last = this.lastOwner;
    if (last.sock === sock && last.epoch === this.epoch && this.epoch !== 0) return last.owner!;
    const o = this.ownerKnown(sock) ?? this.ownerFrom(sock, this.index.lookup(sock.inode, since));
    if (o.process) {
      last.epoch = this.epoch;
      last.sock = sock;
      last.owner = o;
    }
    return o;
  }

  /**
   * The owner of a socket sock_diag has just seen: a miss waits for the
   * fd index's shared rescan (find()), which leaves the event loop free
   * between its slices for later events' lookups.
   */
  private ownerSoon(sock: SockInfo, since?: number): Owner | Promise<Owner> {
    const known = this.ownerKnown(sock);
    if (known) return known;
    const found = this.index.find(sock.inode, since);
    if (!(found instanceof Promise)) return this.ownerFrom(sock, found);
    this.stats.waited++;
    return found.then((f) => this.ownerFrom(sock, f));
  }

  /** The answer from the sockets found (`a` for the originating end, `b` for the replying end) and their owners. */
  private answer<R extends Answer>(rec0: R, l: Want, mine: SockInfo | null, o: Owner | null, peer: Owner | null): R {
    if (!mine || !o) return { ...rec0, attribution: { method: 'sock_diag', ok: false, reason: 'socket-gone' } };
    const rec: R = o.process
      ? { ...rec0, process: o.process, attribution: o.holders && o.holders > 1 ? { method: 'sock_diag', ok: true } : FOUND }
      // An orphaned or TIME_WAIT socket (no inode) has no owner's uid: the kernel says 0.
      : { ...rec0, attribution: { method: 'sock_diag', ok: false, reason: o.reason, ...(mine.inode ? { uid: mine.uid } : {}) } as Attribution };
    if (o.holders && o.holders > 1) (rec.attribution as any).holders = o.holders;
    if (l.direction === 'local' && peer?.process) rec.peer = peer.process;
    return rec;
  }

  /**
   * build() without waiting: every owner looked up at once. The owner found
   * is written into `rec` itself (the engine's answer for this event alone,
   * refineNow's), not into a copy: this runs for every event of a flood.
   */
  private build<R extends Answer>(rec: R, l: Want, a: SockInfo | null, b: SockInfo | null): R {
    const mine = l.direction === 'in' ? b : a;
    const o = mine ? this.owner(mine, l.since) : null;
    const p = l.direction === 'local' && b && o ? this.owner(b, l.since) : null;
    if (!mine || !o || !o.process || (o.holders !== undefined && o.holders > 1)) return this.answer(rec, l, mine, o, p);
    rec.process = o.process;
    rec.attribution = FOUND;
    if (l.direction === 'local' && p?.process) rec.peer = p.process;
    return rec;
  }

  /**
   * The answer for sockets sock_diag has just seen. When nobody was found
   * holding the flow's own socket after a wait, sock_diag is asked again:
   * a socket gone meanwhile is "socket-gone" (it closed before its holder
   * was read), so "no-process" stays for a socket that is there and held
   * by no process.
   */
  private async buildSoon<R extends Answer>(rec0: R, l: Lookup, a: SockInfo | null, b: SockInfo | null): Promise<R> {
    const mine = l.direction === 'in' ? b : a;
    const po = mine ? this.ownerSoon(mine, l.since) : null;
    const pp = l.direction === 'local' && b && mine ? this.ownerSoon(b, l.since) : null;
    const waited = po instanceof Promise;
    const [o, p] = po instanceof Promise || pp instanceof Promise ? await Promise.all([po, pp]) : [po, pp];
    if (waited && mine && o && !o.process && o.reason === 'no-process') {
      const again = l.direction === 'in' ? await this.findSocketNow(l.family, l.proto, l.inLocal, l.inRemote) : await this.findSocketNow(l.family, l.proto, l.out, l.outRemote);
      if (!again || again.inode !== mine.inode) {
        this.stats.goneWhileFinding++;
        return this.answer(rec0, l, mine, { reason: 'socket-gone' }, p);
      }
    }
    return this.answer(rec0, l, mine, o, p);
  }

  async refine<R extends Answer>(ev: FlowEvent, rec0: R): Promise<R> {
    const got = this.ahead.get(ev);
    if (got) this.ahead.delete(ev);
    const l = got?.l ?? this.lookupOf(ev, rec0.direction);
    this.stats.lookups++;
    try {
      const [a, b] = got ? [
        l.wantOut ? await this.withListener(l.family, l.out, got.a) : null,
        l.wantIn ? await this.withListener(l.family, l.inLocal, got.b) : null,
      ] : await Promise.all([
        l.wantOut ? this.findSocket(l.family, l.proto, l.out, l.outRemote, l.since) : Promise.resolve(null),
        l.wantIn ? this.findSocket(l.family, l.proto, l.inLocal, l.inRemote, l.since) : Promise.resolve(null),
      ]);
      const rec = await this.buildSoon(rec0, l, a, b);
      if (!rec.process && l.direction === 'in' && l.proto === IPPROTO_TCP && b) {
        // The accepted socket was closed before its owner could be read: the
        // connection was received by the listener's process.
        const ls = await this.findListener(l.family, l.inLocal);
        if (ls) {
          const lo = this.owner(ls);
          if (lo.process) {
            const fixed: R = { ...rec0, process: lo.process, attribution: lo.holders && lo.holders > 1 ? { method: 'sock_diag', ok: true } : FOUND };
            if (lo.holders && lo.holders > 1) (fixed.attribution as any).holders = lo.holders;
            return fixed;
          }
        }
      }
      return rec;
    } catch (e) {
      return { ...rec0, attribution: { method: 'sock_diag', ok: false, reason: `error: ${(e as Error).message}` } };
    }
  }

  private lookupOf(ev: FlowEvent, direction: FlowEvent['direction']): Lookup {
    const r = ev.reply;
    return {
      direction,
      proto: PROTO_NUM[ev.proto],
      family: ev.family,
      out: { addr: ev.src, port: ev.sport! },
      outRemote: { addr: ev.dst, port: ev.dport! },
      inLocal: { addr: r.src, port: r.sport! },
      inRemote: { addr: r.dst, port: r.dport! },
      wantOut: direction !== 'in',
      wantIn: direction !== 'out' && (direction === 'in' || this.opts.peer !== false),
      since: eventMs(ev),
    };
  }

  /**
   * Answer without waiting when every socket needed is a UDP owner still
   * held (see udpOwners); null when sock_diag must be asked.
   */
  refineNow<R extends Answer>(ev: FlowEvent, rec: R): R | null {
    if (ev.proto === 'tcp') return this.tcpNow(ev, rec);
    // What lookupOf() would say, without its objects: this runs for every event of a flood.
    const direction = rec.direction;
    const proto = PROTO_NUM[ev.proto];
    const since = eventMs(ev);
    // Called in a batch (Engine.runBatch, after beginBatch): its time.
    const now = this.batchAt || Date.now();
    const ahead = this.aheadCensus;
    const a = direction !== 'in' ? this.cachedUdpOwner(proto, ev.src, ev.sport!, since, now, ahead) : null;
    if (a === undefined) return null;
    const b = direction !== 'out' && (direction === 'in' || this.opts.peer !== false) ? this.cachedUdpOwner(proto, ev.reply.src, ev.reply.sport!, since, now, ahead) : null;
    if (b === undefined) return null;
    this.stats.lookups++;
    return this.build(rec, { direction, since }, a, b);
  }

  /**
   * A TCP event answered without waiting: its sockets found by lookAhead()
   * (or, outside a batch, asked now alone), each with an inode, and their
   * holders in the fd index at once. Null otherwise (a listener to look
   * for, a holder to search for): refine() goes on from there.
   */
  private tcpNow<R extends Answer>(ev: FlowEvent, rec0: R): R | null {
    let got = this.ahead.get(ev);
    if (!got) {
      if (this.lookedAhead) return null;
      this.lookAhead([ev], [rec0]);
      this.lookedAhead = false;
      got = this.ahead.get(ev);
      if (!got) return null;
    }
    const { l, a, b } = got;
    if (l.wantOut && (!a || a.inode === 0)) return null;
    if (l.wantIn && (!b || b.inode === 0)) return null;
    const mine = l.direction === 'in' ? b : a;
    const o = mine ? this.ownerIfKnown(mine, l.since) : null;
    if (o === undefined) return null;
    const p = l.direction === 'local' && b && mine ? this.ownerIfKnown(b, l.since) : null;
    if (p === undefined) return null;
    // The accepted socket closed before its owner was read: refine() names the listener's process.
    if (l.direction === 'in' && b && !o?.process) return null;
    this.ahead.delete(ev);
    this.stats.lookups++;
    return this.answer(rec0, l, mine, o, p);
  }

  /** The owner of a socket sock_diag has just seen, if known without waiting (ownerSoon); undefined when a rescan must be waited for. */
  private ownerIfKnown(sock: SockInfo, since: number): Owner | undefined {
    const known = this.ownerKnown(sock);
    if (known) return known;
    const found = this.index.find(sock.inode, since);
    return found instanceof Promise ? undefined : this.ownerFrom(sock, found);
  }
}
