// The `dns` enrichment: names each flow's remote from the `dns` records
// ct-events writes into the stream (src/dns/names.ts keeps them). Records
// are taken in stream order before the flow events read with them; a
// flow's name is found at its NEW and kept for its UPDATE and DESTROY
// events, so every event of a flow carries the same name. The name is kept
// in the engine's own record of the flow (FlowMemo: found with the flow's
// owner, guarded by its tuple, forgotten with it), not in a second map of
// flows here: that map's upkeep (a set per NEW, a lookup and a delete per
// later event, its collection) was the largest cost of the enrichments in
// bench/enrich.bench.js.
import { isDnsRecord, type DnsName, type FlowEvent, type ProcessInfo } from '../../event.js';
import { NameMap } from '../../dns/names.js';
import type { FlowMemo } from '../source.js';

export interface DnsEnrichmentOptions {
  /** Pass the dns records on downstream (default: they are used up here). */
  pass?: boolean;
  /** Addresses remembered at most (default 100000). */
  maxAddresses?: number;
}

export class DnsEnrichment {
  readonly name = 'dns';
  readonly fields = ['dns'] as const;
  readonly names: NameMap;
  private readonly pass: boolean;

  constructor(opts: DnsEnrichmentOptions = {}) {
    this.names = new NameMap({ maxAddresses: opts.maxAddresses });
    this.pass = opts.pass === true;
  }

  /**
   * A record that is not a flow event, in stream order: a `dns` record is
   * taken in. Returns whether the record goes on downstream.
   */
  record(r: Record<string, unknown>): boolean {
    if (!isDnsRecord(r)) return true;
    this.names.add(r);
    return this.pass;
  }

  /**
   * `flow.kept` is the name found at the flow's NEW (null: none): its later
   * events carry it. A flow whose NEW was not seen is looked up at the
   * first event seen, and keeps that answer.
   */
  enrich(ev: FlowEvent, _owner: ProcessInfo | undefined, flow: FlowMemo): void {
    if (ev.event === 'new') this.names.noteQuery(ev);
    if (ev.direction === 'in') return;
    let d = flow.kept as DnsName | null | undefined;
    if (ev.event === 'new' || d === undefined) flow.kept = d = this.names.lookup(ev) ?? null;
    if (d) ev.dns = d;
  }
}
