// The attribution engine: for each flow event, its direction from the
// host's own addresses, then the chain of sources (source.ts) for a NEW
// event's owner, then the enrichments. The answer found at NEW is
// remembered by conntrack id (guarded by the tuple, since ids are reused)
// and given to the same flow's UPDATE and DESTROY events, even after the
// process has gone. The engine owns the flow memory, the order of work and
// the counts; it knows no method: those are the sources the factory
// (factory.ts) gave it. No `process` access.
import { networkInterfaces } from 'node:os';
import type { FlowEvent, ProcessInfo, Attribution, AttributionStatsRecord } from '../event.js';
import { IntBoundedMap } from '../lru.js';
import type { Answer, Enrichment, FlowMemo, MethodStatus, Source } from './source.js';
import { PROTO_NUM } from './sources/sockdiag.js';

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
class Remembered implements Base, Answer, FlowMemo {
  process?: ProcessInfo = undefined;
  peer?: ProcessInfo = undefined;
  kept?: unknown = undefined;
  readonly proto: string;
  readonly src: string;
  readonly sport?: number;
  readonly dst: string;
  readonly dport?: number;
  readonly direction: FlowEvent['direction'];
  constructor(ev: FlowEvent, direction: FlowEvent['direction'], public attribution: Attribution) {
    this.proto = ev.proto;
    this.src = ev.src;
    this.sport = ev.sport;
    this.dst = ev.dst;
    this.dport = ev.dport;
    this.direction = direction;
  }
}

/** A flow's record: its answer, tuple, and what an enrichment keeps for it (FlowMemo). */
export type Rec = Answer & Base & FlowMemo;

/** An event announced to the sources, its lookups still to run (tokens null: answered from memory by `known`). */
interface Pending {
  ev: FlowEvent;
  known: Rec | null;
  tokens: unknown[] | null;
  /** Lets its lookups begin (run(): in order of urgency). */
  start?: () => void;
}

/**
 * How soon an event's socket may vanish (lower: sooner): a flow that
 * already ended in this batch, then a UDP NEW (a datagram's sender often
 * closes at once), then other NEW events, then the rest.
 */
export function urgency(ev: FlowEvent, ending: Set<number>): number {
  if (ev.event === 'new') {
    if (ending.has(ev.id)) return 0;
    return ev.proto === 'tcp' ? 2 : 1;
  }
  return 3;
}

export interface EngineOptions {
  /** The methods, in the order they are consulted (the first answers from nothing). */
  sources: Source[];
  /** Run in this order on every flow event after its attribution. */
  enrichments?: Enrichment[];
  /** Remember flows by conntrack id (default true). */
  flowCache?: boolean;
  /** Flows remembered at most (LRU). */
  maxFlows?: number;
  /** Methods not in the chain, and why (for status()). */
  off?: MethodStatus[];
  /** Whether `addr` is an address of this host (default: this namespace's interfaces, loopback). */
  isLocal?: (addr: string) => boolean;
}

export interface EngineStats {
  ok: number;
  failed: number;
  cached: number;
  reasons: Record<string, number>;
  /** Flow events answered by ok, by method. */
  methods: Record<string, number>;
  /** Flow events by method and outcome (`ok` or the reason). */
  answers: Record<string, Record<string, number>>;
  events: number;
}

/** This network namespace's own addresses (refreshed every 2 s). */
export class Locality {
  private local = new Set<string>();
  private localAt = 0;
  /**
   * Whether the age of the list was checked since the last stale() (the
   * engine calls it once per batch): an event does not pay a Date.now(),
   * a call that makes a heap number, twice.
   */
  private checked = false;

  /** The next has() checks the list's age again. */
  stale(): void {
    this.checked = false;
  }

  constructor() {
    this.refresh();
  }

  private refresh(): void {
    const set = new Set<string>();
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) set.add(a.address.replace(/%.*$/, '').toLowerCase());
    }
    this.local = set;
    this.localAt = Date.now();
  }

  /** Is `addr` an address of this host (in this network namespace)? */
  has(addr: string): boolean {
    if (addr.startsWith('127.') || addr === '::1' || addr.startsWith('::ffff:127.')) return true;
    if (!this.checked) {
      this.checked = true;
      if (Date.now() - this.localAt > 2000) this.refresh();
    }
    return this.local.has(addr) || (addr.startsWith('::ffff:') && this.local.has(addr.slice(7)));
  }
}

const noop = () => {};

/**
 * The first answers (classify), shared by every event that starts from
 * them: never changed (a source that improves an answer sets a new
 * attribution), and frozen, so that ct-attribute's output makes their
 * JSON once (src/attribute/output.ts).
 */
const FIRST: Record<'forwarded' | 'unsupported-protocol' | 'socket-gone', Attribution> = {
  'forwarded': Object.freeze({ method: 'none', ok: false, reason: 'forwarded' }) as Attribution,
  'unsupported-protocol': Object.freeze({ method: 'none', ok: false, reason: 'unsupported-protocol' }) as Attribution,
  'socket-gone': Object.freeze({ method: 'none', ok: false, reason: 'socket-gone' }) as Attribution,
};
/** A NEW event not seen, or one whose flow was not attributed yet, tried again now with no socket found. */
const NOT_SEEN: Attribution = Object.freeze({ method: 'none', ok: false, reason: 'not-seen' }) as Attribution;

/** A source that could not start. */
export class EngineError extends Error {}

export class Engine {
  private closed = false;
  readonly sources: readonly Source[];
  readonly enrichments: readonly Enrichment[];
  /**
   * Remembered flows by conntrack id as an int32 (`id | 0`, one to one): a
   * u32 id past 2^31 is a heap number to V8, allocated and hashed at each
   * use of a Map, where an int32 is a small integer.
   */
  private flows: IntBoundedMap<Rec>;
  /** Flows with an event still being attributed, by id, across overlapping runs (see run()). */
  private waiting = new Map<number, Promise<unknown>>();
  private readonly isLocal: (addr: string) => boolean;
  /** The host's own addresses, unless the options gave isLocal. */
  private readonly locality: Locality | null = null;
  private readonly counts: EngineStats = { ok: 0, failed: 0, cached: 0, reasons: {}, methods: {}, answers: {}, events: 0 };
  /**
   * Answers given with one attribution object in a row, not counted yet
   * (see count()): a flood's events share one, and counting each by
   * method and reason in the maps cost four keyed lookups an event.
   */
  private streak: Attribution | null = null;
  private streakLength = 0;

  /** The counts so far. */
  get stats(): EngineStats {
    this.flushCounts();
    return this.counts;
  }

  /**
   * Whether an answer so far was unattributed for `reason`: what `stats`
   * would say, without adding up the run of answers not counted yet (asked
   * after every batch).
   */
  answered(reason: string): boolean {
    const a = this.streak;
    return (a !== null && !a.ok && a.reason === reason) || (this.counts.reasons[reason] ?? 0) > 0;
  }

  /** The top-level fields the enrichments may set, in their order. */
  readonly enrichedFields: readonly string[];

  constructor(private opts: EngineOptions) {
    this.sources = opts.sources;
    this.enrichments = opts.enrichments ?? [];
    this.enrichedFields = this.enrichments.flatMap((e) => e.fields ?? []);
    this.ahead = this.sources.filter((s) => s.lookAhead);
    this.flows = new IntBoundedMap(Math.max(2, opts.maxFlows ?? 100000));
    if (opts.isLocal) this.isLocal = opts.isLocal;
    else {
      const l = new Locality();
      this.locality = l;
      this.isLocal = (a) => l.has(a);
    }
  }

  /** The source of method `name`, if it is in the chain. */
  source<S extends Source = Source>(name: string): S | undefined {
    return this.sources.find((s) => s.name === name) as S | undefined;
  }

  /** Every method's status: the sources in chain order, then those left out and why. */
  status(): MethodStatus[] {
    return [...this.sources.map((s) => s.status()), ...(this.opts.off ?? [])];
  }

  /** Lines of counts for --stats: each source's, then the answers'. */
  statsLines(): string[] {
    const out: string[] = [];
    for (const s of this.sources) {
      const l = s.statsLine?.();
      if (l) out.push(l);
    }
    const s = this.stats;
    const reasons = Object.entries(s.reasons).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
    out.push(`attributed ${s.ok}, unattributed ${s.failed} (${reasons}), from flow memory ${s.cached}`);
    return out;
  }

  /** Special records the sources have for the stream now. */
  takeRecords(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const s of this.sources) if (s.takeRecords) out.push(...s.takeRecords());
    return out;
  }

  /**
   * Start the sources that run beside the stream, in chain order; when one
   * cannot start, the ones started are closed again and the error, prefixed
   * with the method's name, is thrown.
   */
  async start(): Promise<void> {
    for (const s of this.sources) {
      if (!s.start) continue;
      try {
        await s.start();
      } catch (e) {
        await this.close();
        throw new EngineError(`${s.name}: ${(e as Error).message}`);
      }
    }
  }

  /** Stop every source and enrichment. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.sources) await s.close?.();
    for (const e of this.enrichments) await e.close?.();
  }

  /** Direction, and the answer when no lookup is needed. */
  private classify(ev: FlowEvent): Rec {
    const srcLocal = this.isLocal(ev.src);
    const dstLocal = this.isLocal(ev.reply?.src ?? ev.dst);
    const direction: FlowEvent['direction'] = srcLocal && dstLocal ? 'local' : srcLocal ? 'out' : dstLocal ? 'in' : 'fwd';
    if (direction === 'fwd') return new Remembered(ev, direction, FIRST['forwarded']);
    if (!PROTO_NUM[ev.proto] || ev.sport === undefined) return new Remembered(ev, direction, FIRST['unsupported-protocol']);
    return new Remembered(ev, direction, FIRST['socket-gone']);
  }

  /**
   * Start a batch: call after reading a batch of events and before
   * attributing them (see SockDiagSource.beginBatch).
   */
  beginBatch(): void {
    this.locality?.stale();
    for (const s of this.sources) s.beginBatch?.();
  }

  /**
   * Attribute `ev` at once if no lookup needs waiting for (the flow is
   * remembered, or every source that wants it answers now): the flow's
   * record when done. Otherwise null, and attribute() must be awaited.
   */
  attributeNow(ev: FlowEvent, first?: Rec): Rec | null {
    let known: Rec | null = null;
    if (ev.event !== 'new') {
      known = this.recall(ev);
      if (known && this.fromMemory(ev, known)) return known;
    }
    let rec = first ?? this.classify(ev);
    for (const s of this.sources) {
      if (!s.wants(ev, rec, undefined)) continue;
      const r = s.refineNow ? s.refineNow(ev, rec) : null;
      if (!r) return null;
      rec = r;
    }
    if (ev.event === 'new') for (const s of this.sources) s.noteNow?.(ev, rec);
    return this.settle(ev, rec, known);
  }

  /** Add direction, process and attribution to one flow event (in place): the flow's record. */
  async attribute(ev: FlowEvent): Promise<Rec> {
    this.locality?.stale();
    const p = this.prepare(ev);
    return p.tokens ? this.resolve(p) : p.known!;
  }

  /**
   * The part of attribute() done in stream order: the flow memory, and
   * announcing the event to the sources (audit: see
   * sources/audit/correlator.ts). Its tokens are null when memory answered it.
   */
  private prepare(ev: FlowEvent): Pending {
    let known: Rec | null = null;
    if (ev.event !== 'new') {
      known = this.recall(ev);
      if (known && this.fromMemory(ev, known)) return { ev, known, tokens: null };
    }
    const srcs = this.sources;
    const tokens: unknown[] = new Array(srcs.length);
    for (let i = 0; i < srcs.length; i++) tokens[i] = srcs[i].expect?.(ev);
    return { ev, known, tokens };
  }

  /** The lookups of a prepared event, in chain order. */
  private async resolve(p: Pending): Promise<Rec> {
    const { ev } = p;
    const tokens = p.tokens!;
    const srcs = this.sources;
    let rec = this.classify(ev);
    for (let i = 0; i < srcs.length; i++) {
      if (srcs[i].wants(ev, rec, tokens[i])) rec = await srcs[i].refine(ev, rec, tokens[i]);
    }
    return this.settle(ev, rec, p.known);
  }

  /**
   * Attribute and enrich a batch of flow events read together, in place
   * (runBatch), resolving when all are done.
   */
  async run(events: FlowEvent[]): Promise<void> {
    const w = this.runBatch(events);
    if (w) await w;
  }

  /**
   * Attribute and enrich a batch of flow events read together, in place;
   * null when every one was done at once, else a promise of the rest.
   * The batch's NEW events are first shown to the sources together
   * (lookAhead: sock_diag asks for all their sockets in one datagram,
   * answered inside its send), and each event is then answered at once
   * when no lookup needs waiting for, with no promise made for it: at idle
   * that is every event, and what a promise per step of an event's way
   * allocated was most of its garbage (young-generation collections every
   * few hundred events, in the idle latency's tail).
   *
   * The others are announced in stream order; their lookups then start in
   * the order of how soon their sockets may vanish (urgency()), all in one
   * turn of the event loop, so that they leave together (one sock_diag
   * datagram) and are answered most urgent first. Events of one flow are
   * attributed in order (NEW before DESTROY), also across batches: runs may
   * overlap (a later batch is read and looked up while an earlier one
   * still waits for a miss), and a later batch's event of a flow whose
   * event still waits in an earlier one waits behind it.
   */
  runBatch(events: FlowEvent[]): Promise<void> | null {
    this.beginBatch();
    const waiting = this.waiting;
    const firsts = this.lookAhead(events);
    let work: Promise<unknown>[] | null = null;
    let byId: Map<number, Promise<unknown>> | null = null;
    let pending: { p: Pending; urgency: number; at: number }[] | null = null;
    let ending: Set<number> | null = null;
    const after = (ev: FlowEvent, q: Promise<unknown>) => {
      (byId ??= new Map()).set(ev.id, q);
      (work ??= []).push(q);
    };
    const wait = (ev: FlowEvent, p: Promise<Rec>) => {
      after(ev, this.enrichments.length > 0 ? p.then((rec) => this.enrich(ev, rec)) : p);
      waiting.set(ev.id, p);
      const done = () => { if (waiting.get(ev.id) === p) waiting.delete(ev.id); };
      p.then(done, done);
    };
    for (let i = 0; i < events.length; i++) {
      const ev = events[i];
      const prev = (byId as Map<number, Promise<unknown>> | null)?.get(ev.id) ?? (waiting.size ? waiting.get(ev.id) : undefined);
      if (prev) {
        wait(ev, prev.then(() => this.attribute(ev)));
        continue;
      }
      const now = this.attributeNow(ev, firsts?.[i]);
      if (now) {
        const e = this.enrich(ev, now);
        if (e) after(ev, e);
        continue;
      }
      const p = this.prepare(ev);
      if (!p.tokens) {
        const e = this.enrich(ev, p.known!);
        if (e) after(ev, e);
        continue;
      }
      if (!ending) {
        ending = new Set();
        for (const e of events) if (e.event === 'destroy') ending.add(e.id);
      }
      // The flow's later events wait behind this one, which waits for its turn.
      wait(ev, new Promise<void>((r) => (p.start = r)).then(() => this.resolve(p)));
      (pending ??= []).push({ p, urgency: urgency(ev, ending), at: pending.length });
    }
    for (const s of this.sources) s.endBatch?.();
    if (pending) {
      const list = pending as { p: Pending; urgency: number; at: number }[];
      if (list.length > 1) list.sort((a, b) => a.urgency - b.urgency || a.at - b.at);
      for (const x of list) x.p.start!();
    }
    if (!work) return null;
    return Promise.all(work as Promise<unknown>[]).then(noop);
  }

  /** Sources that look ahead at a batch (lookAhead). */
  private readonly ahead: readonly Source[] = [];

  /**
   * The batch's NEW events shown to the sources that look ahead, with
   * their first answers (classify), which are returned by position for
   * attributeNow; null when there are none. An event waiting behind an
   * earlier one of its flow is left out.
   */
  private lookAhead(events: FlowEvent[]): (Rec | undefined)[] | null {
    if (!this.ahead.length) return null;
    let firsts: (Rec | undefined)[] | null = null;
    let evs: FlowEvent[] | null = null;
    let recs: Rec[] | null = null;
    const waiting = this.waiting;
    for (let i = 0; i < events.length; i++) {
      const ev = events[i];
      if (ev.event !== 'new' || (waiting.size && waiting.has(ev.id))) continue;
      const rec = this.classify(ev);
      (firsts ??= new Array(events.length))[i] = rec;
      (evs ??= []).push(ev);
      (recs ??= []).push(rec);
    }
    if (evs) for (const s of this.ahead) s.lookAhead!(evs, recs!);
    return firsts;
  }

  /** A record that is not a flow event, shown to each enrichment in turn: whether it goes on downstream. */
  record(r: Record<string, unknown>): boolean {
    for (const e of this.enrichments) if (e.record && !e.record(r)) return false;
    return true;
  }

  /**
   * Run the enrichments on one attributed event, in order, with its flow's
   * record (what attribution applied: the remembered one for a flow's later
   * events): a promise only once one of them waits.
   */
  enrich(ev: FlowEvent, flow: FlowMemo): void | Promise<void> {
    const es = this.enrichments;
    for (let i = 0; i < es.length; i++) {
      const r = es[i].enrich(ev, ev.process, flow);
      if (r) return this.enrichAfter(ev, flow, i + 1, r);
    }
  }

  private async enrichAfter(ev: FlowEvent, flow: FlowMemo, from: number, first: Promise<void>): Promise<void> {
    await first;
    const es = this.enrichments;
    for (let i = from; i < es.length; i++) {
      const r = es[i].enrich(ev, ev.process, flow);
      if (r) await r;
    }
  }

  private remember(id: number, rec: Rec): void {
    if (this.opts.flowCache === false) return;
    this.flows.set(id | 0, rec);
  }

  private recall(ev: FlowEvent): Rec | null {
    const r = this.flows.get(ev.id | 0);
    if (!r) return null;
    if (r.proto !== ev.proto || r.src !== ev.src || r.sport !== ev.sport || r.dst !== ev.dst || r.dport !== ev.dport) return null;
    return r;
  }

  private apply(ev: FlowEvent, rec: Rec): void {
    ev.direction = rec.direction;
    if (rec.process) ev.process = rec.process;
    if (rec.peer) ev.peer = rec.peer;
    ev.attribution = rec.attribution;
    this.count(rec.attribution);
  }

  /** Count an answer: the same attribution object as the last one's adds to the run. */
  private count(a: Attribution): void {
    if (a === this.streak) {
      this.streakLength++;
      return;
    }
    this.flushCounts();
    this.streak = a;
    this.streakLength = 1;
  }

  /** Add the run of answers not counted yet to the counts. */
  private flushCounts(): void {
    const a = this.streak;
    if (a === null) return;
    const n = this.streakLength;
    this.streak = null;
    this.streakLength = 0;
    const s = this.counts;
    if (a.ok) s.ok += n;
    else s.failed += n;
    if (!a.ok && a.reason) s.reasons[a.reason] = (s.reasons[a.reason] ?? 0) + n;
    if (a.ok) s.methods[a.method] = (s.methods[a.method] ?? 0) + n;
    s.events += n;
    const by = s.answers[a.method] ?? (s.answers[a.method] = {});
    const k = a.ok ? 'ok' : a.reason ?? 'unknown';
    by[k] = (by[k] ?? 0) + n;
  }

  /** The counts as a special record for the stream (see ct-event(5)). */
  statsRecord(ts: string): AttributionStatsRecord {
    const answers: Record<string, Record<string, number>> = {};
    for (const [m, by] of Object.entries(this.stats.answers)) answers[m] = { ...by };
    return { ts, event: 'attribution-stats', events: this.stats.events, cached: this.stats.cached, answers, methods: this.status() };
  }

  private fromMemory(ev: FlowEvent, known: Rec): boolean {
    if (!(known.attribution.ok || ev.event === 'destroy' || known.direction === 'fwd')) return false;
    this.counts.cached++;
    this.apply(ev, known);
    if (ev.event === 'destroy') this.flows.delete(ev.id | 0);
    return true;
  }

  /** The answer applied to the event, and the flow's record it came from. */
  private settle(ev: FlowEvent, rec: Rec, known: Rec | null): Rec {
    if (ev.event === 'new') {
      this.remember(ev.id, rec);
      this.apply(ev, rec);
      return rec;
    }
    // NEW not seen (started before us, or lost), or not attributed yet: tried now.
    if (!rec.attribution.ok && rec.attribution.reason === 'socket-gone' && !known) {
      // A new object (or the shared one): an attribution may be shared by other events' answers.
      rec.attribution = rec.attribution === FIRST['socket-gone'] ? NOT_SEEN : { ...rec.attribution, reason: 'not-seen' };
    }
    const kept = rec.attribution.ok || !known ? rec : known;
    // A later answer replacing the remembered one keeps what the enrichments kept for the flow.
    if (known && kept !== known) kept.kept = known.kept;
    if (ev.event === 'destroy') this.flows.delete(ev.id | 0);
    else if (kept === rec) this.remember(ev.id, rec);
    this.apply(ev, kept);
    return kept;
  }

  get flowCount(): number {
    return this.flows.size;
  }
}
