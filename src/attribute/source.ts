// The two interfaces of the attribution engine (src/attribute/engine.ts),
// and nothing else: what a method of finding a flow's owner is, and what a
// stage that adds to an attributed event is.
//
// A Source is one method (sock_diag with the fd index, other network
// namespaces, bpf sightings, audit records). The factory (factory.ts) puts
// the sources in one chain, in that order, and the engine hands each NEW
// event's answer along it: a source whose `wants` says so turns the answer
// into a better one (`refine`), or hands it on unchanged. The answer starts
// as the direction alone (engine.ts: classify) with reason "socket-gone".
// A source never reaches into another: what it needs from the others (the
// process reader, the fd index) it is given by the factory when it is made.
//   - expect(ev): each flow event, in stream order, before any lookup of
//     it starts (audit notes when the event was received); the token it
//     returns comes back to wants/refine.
//   - refineNow(ev, rec): answer without waiting, or null when a wait is
//     needed; sources without it make every event they want wait.
//   - noteNow(ev, rec): an answer given without waiting, for sources that
//     keep track of answers (audit).
//   - lookAhead(evs, recs): a batch's NEW events and their first answers,
//     before any of them is refined: lookups they will need may go out
//     together now (sock_diag: one datagram, answered inside the send),
//     so that refineNow can answer them without waiting; endBatch() says
//     when every event of the batch has been tried.
//   - status(): whether the method is live, and if not, why and the fix.
//   - takeRecords(): special records (overruns) to put in the stream now.
//
// An Enrichment adds fields to a flow event once its owner is known (or
// known to be unknown): DNS names, ancestry, entity ids, executable hashes.
// Enrichments run in the order they were registered with the factory, for
// every flow event, after its attribution; events leave in input order
// whatever each enrichment waits for. An enrichment sets top-level fields it
// declares in `fields` (so the fast serializer knows them); one that adds
// to `process` replaces `ev.process` with a copy, since one process object
// is shared by all the events of that process.
import type { FlowEvent, ProcessInfo, Attribution } from '../event.js';

/** What is known of a flow's owner: what the engine writes into the event. */
export interface Answer {
  direction: FlowEvent['direction'];
  process?: ProcessInfo;
  peer?: ProcessInfo;
  attribution: Attribution;
}

/** Whether a method is in use; when not, why and how to make it so. */
export interface MethodStatus {
  method: string;
  live: boolean;
  /** Why it is not live (or what limits it, when live). */
  why?: string;
  /** What to do about it. */
  fix?: string;
  /** How it works here, when that matters (e.g. where new pids come from). */
  detail?: string;
}

export interface Source {
  /** The method's name as `attribution.method` gives it. */
  readonly name: string;
  /** Begin what the method runs beside the stream; rejects with why it cannot. */
  start?(): Promise<void>;
  expect?(ev: FlowEvent): unknown;
  /** Whether this source may change `rec` (`token`: what expect returned, undefined on the no-wait path). */
  wants(ev: FlowEvent, rec: Answer, token: unknown): boolean;
  refine<R extends Answer>(ev: FlowEvent, rec: R, token: unknown): Promise<R> | R;
  refineNow?<R extends Answer>(ev: FlowEvent, rec: R): R | null;
  noteNow?(ev: FlowEvent, rec: Answer): void;
  lookAhead?(evs: readonly FlowEvent[], recs: readonly Answer[]): void;
  /** Start of an input batch (lookups of one batch go out together). */
  beginBatch?(): void;
  /** Every event of the batch begun has been tried at once (what lookAhead learnt for them alone is dropped). */
  endBatch?(): void;
  status(): MethodStatus;
  takeRecords?(): Record<string, unknown>[];
  /** A line of counts for --stats, or null. */
  statsLine?(): string | null;
  close?(): Promise<void> | void;
}

/**
 * The engine's record of one flow, as an enrichment sees it: `kept` is what
 * an enrichment keeps for the flow's later events (the dns enrichment: the
 * name found at its NEW, or null), undefined until one sets it. It goes
 * when the engine forgets the flow (its DESTROY, or the least recently used
 * beyond --max-flows); with the flow memory off (--no-cache) each event has
 * a record of its own. One slot: the dns enrichment is its only user.
 */
export interface FlowMemo {
  kept?: unknown;
}

export interface Enrichment {
  readonly name: string;
  /** Top-level event fields it may set. */
  readonly fields?: readonly string[];
  enrich(ev: FlowEvent, owner: ProcessInfo | undefined, flow: FlowMemo): void | Promise<void>;
  /**
   * A record that is not a flow event (a `dns` record, an overrun), in
   * stream order, before the flow events read with it are enriched.
   * Returns whether the record goes on downstream.
   */
  record?(r: Record<string, unknown>): boolean;
  close?(): Promise<void> | void;
}
