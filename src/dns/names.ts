// Which name each address was resolved from, by whom: the `dns` records of
// ct-events (ct-event(5)) kept for their answers' TTL, and looked up for the
// flows that follow. A client is first the process that owned the query's
// socket (its entity_id, learned from the query's own flow event), then the
// address the answer went to. For a flow, the name comes from the first of:
// what its own process asked last; what its source address asked last; what
// a local process asked a stub resolver on loopback last. Bounded: at most
// `maxAddresses` addresses, each with the last PER_ADDRESS answers.
import type { DnsName, DnsRecord, FlowEvent, ProcessInfo } from '../event.js';
import { BoundedMap } from '../lru.js';

const PER_ADDRESS = 8;
/** Query flows remembered (the owner of a DNS question's socket, by its local end). */
const QUERIES = 65536;

interface Entry {
  name: string;
  cnames?: string[];
  server: string;
  /** When the answer was seen and until when it holds (ms since the epoch). */
  at: number;
  until: number;
  /** The answer's destination: "proto|addr|port", to find its query's owner. */
  query: string;
  client: string;
  /** entity_id (or pid) of the query's owner, once known. */
  owner?: string;
  /** NameMap.noted when the owner was last looked for in vain: looked for again only once a query is noted since. */
  sought?: number;
  /**
   * The name last given from this answer: given again, the same object, to
   * the flows that follow at the same age (the events of one ct-events
   * batch share their time), rather than one object per flow held in each
   * flow's memory (src/attribute/enrichments/dns.ts). Never changed once given.
   */
  given?: DnsName;
}

export interface NameMapOptions {
  maxAddresses?: number;
  /** Shortest time an answer is kept, in seconds (TTLs of 0 are common). Default 1. */
  minTtl?: number;
}

function isLoopback(a: string): boolean {
  return a.startsWith('127.') || a === '::1' || a.startsWith('::ffff:127.');
}

function ownerKey(p: ProcessInfo | undefined): string | undefined {
  if (!p) return undefined;
  return p.entity_id ?? `pid:${p.pid}`;
}

export class NameMap {
  private byAddr: BoundedMap<string, Entry[]>;
  private queries = new BoundedMap<string, string>(QUERIES);
  /** Addresses of this host, learned from the sources of outbound flows. */
  private local = new BoundedMap<string, true>(1024);
  private readonly minTtlMs: number;
  /** Queries noted so far. */
  private noted = 0;
  /** The last flow time parsed: the events of one batch of ct-events share their stamp. */
  private lastTs = '';
  private lastT = NaN;
  /** The last record time parsed (add). */
  private lastAddTs = '';
  private lastAddAt = NaN;
  /** The last local address noted (noteQuery): a flood's NEW events mostly share their source. */
  private lastLocal = '';
  /** Records taken in (add): the last address's answers (lastList) hold until this moves. */
  private changes = 0;
  private lastHost = '';
  private lastDst = '';
  private lastChanges = -1;
  private lastList: Entry[] | undefined = undefined;
  readonly stats = { answers: 0, named: 0 };

  constructor(opts: NameMapOptions = {}) {
    this.byAddr = new BoundedMap(Math.max(4, opts.maxAddresses ?? 100000));
    this.minTtlMs = Math.max(0, opts.minTtl ?? 1) * 1000;
  }

  /** A DNS question's own flow, with its owner: remembered by its local end. */
  noteQuery(ev: FlowEvent): void {
    if (ev.event !== 'new') return;
    // The last address noted is still held: only a set of another evicts.
    if ((ev.direction === 'out' || ev.direction === 'local') && ev.src !== this.lastLocal) {
      this.lastLocal = ev.src;
      if (!this.local.peek(ev.src)) this.local.set(ev.src, true);
    }
    if (ev.dport !== 53 || ev.sport === undefined) return;
    const k = ownerKey(ev.process);
    if (k) {
      this.queries.set(`${ev.proto}|${ev.src}|${ev.sport}`, k);
      this.noted++;
    }
  }

  /** Take in one `dns` record. */
  add(r: DnsRecord): void {
    // The record came through a pipe: only well-formed parts are kept.
    if (typeof r.ts !== 'string' || !Array.isArray(r.answers) || typeof r.name !== 'string' || typeof r.client !== 'string' || typeof r.server !== 'string') return;
    // The records of one ct-events batch share their stamp: parsed once.
    if (r.ts !== this.lastAddTs) {
      this.lastAddTs = r.ts;
      this.lastAddAt = Date.parse(r.ts);
    }
    const at = this.lastAddAt;
    if (!Number.isFinite(at)) return;
    const cnames = Array.isArray(r.cnames) && r.cnames.length && r.cnames.every((c) => typeof c === 'string') ? r.cnames.slice(0, 16) : undefined;
    this.stats.answers++;
    this.changes++;
    const query = `${r.proto}|${r.client}|${r.cport}`;
    const host = r.host ?? '';
    for (const a of r.answers) {
      if (!a || typeof a.addr !== 'string') continue;
      const ttl = typeof a.ttl === 'number' && a.ttl > 0 ? a.ttl * 1000 : 0;
      const e: Entry = { name: r.name, server: r.server, at, until: at + Math.max(ttl, this.minTtlMs), query, client: r.client };
      if (cnames) e.cnames = cnames;
      const key = `${host}|${a.addr}`;
      let list = this.byAddr.get(key);
      if (!list) this.byAddr.set(key, (list = []));
      // The same client asking again replaces its older answer.
      for (let i = list.length - 1; i >= 0; i--) if (list[i]!.query === query || list[i]!.until < at) list.splice(i, 1);
      if (list.length >= PER_ADDRESS) list.shift();
      list.push(e);
    }
  }

  /** The name `ev`'s remote (dst) was resolved from, by the most specific client; undefined when none holds. */
  lookup(ev: FlowEvent): DnsName | undefined {
    if (ev.direction === 'in' || typeof ev.ts !== 'string') return undefined;
    // The address's answers found for the event before, unless a record came
    // since: no key string made and looked up per event of a busy remote.
    const host = ev.host ?? '';
    let list: Entry[] | undefined;
    if (ev.dst === this.lastDst && host === this.lastHost && this.changes === this.lastChanges) list = this.lastList;
    else {
      list = this.byAddr.peek(`${host}|${ev.dst}`);
      this.lastDst = ev.dst;
      this.lastHost = host;
      this.lastChanges = this.changes;
      this.lastList = list;
    }
    if (!list || !list.length) return undefined;
    if (ev.ts !== this.lastTs) {
      this.lastTs = ev.ts;
      this.lastT = Date.parse(ev.ts);
    }
    const t = this.lastT;
    if (!Number.isFinite(t)) return undefined;
    const owner = ownerKey(ev.process);
    let best: Entry | undefined;
    let bestTier = 4;
    // Newest first: the last answer of the best tier wins.
    for (let i = list.length - 1; i >= 0; i--) {
      const e = list[i]!;
      // Expired, or an answer that came after the flow (read in the same batch of lines).
      if (t > e.until || e.at > t) continue;
      if (e.owner === undefined && e.sought !== this.noted) {
        e.owner = this.queries.peek(e.query);
        e.sought = this.noted;
      }
      const tier = owner !== undefined && e.owner === owner ? 1
        : e.client === ev.src ? 2
        : ev.direction !== 'fwd' && (isLoopback(e.client) || this.local.peek(e.client) !== undefined) ? 3 : 4;
      if (tier < bestTier) {
        best = e;
        bestTier = tier;
        if (tier === 1) break;
      }
    }
    if (!best || bestTier === 4) return undefined;
    this.stats.named++;
    const age = Math.max(0, Math.round(t - best.at)) / 1000;
    const given = best.given;
    if (given !== undefined && given.age === age) return given;
    return (best.given = best.cnames ? { name: best.name, cnames: best.cnames, age, server: best.server } : { name: best.name, age, server: best.server });
  }
}
