// The `dns` enrichment: names each flow's remote from the `dns` records
// ct-events writes into the stream (src/dns/names.ts keeps them). Records
// are taken in stream order before the flow events read with them; a
// flow's name is found at its NEW and kept for its UPDATE and DESTROY
// events, so every event of a flow carries the same name.
import { isDnsRecord, type DnsName, type FlowEvent, type ProcessInfo } from '../../event.js';
import { NameMap } from '../../dns/names.js';
import { BoundedMap } from '../../lru.js';

export interface DnsEnrichmentOptions {
  /** Pass the dns records on downstream (default: they are used up here). */
  pass?: boolean;
  /** Addresses remembered at most (default 100000). */
  maxAddresses?: number;
  /** Flows whose name is remembered for their later events (default 100000). */
  maxFlows?: number;
}

const NONE: DnsName = { name: '', age: 0 };

export class DnsEnrichment {
  readonly name = 'dns';
  readonly fields = ['dns'] as const;
  readonly names: NameMap;
  private flows: BoundedMap<string, DnsName>;
  private readonly pass: boolean;

  constructor(opts: DnsEnrichmentOptions = {}) {
    this.names = new NameMap({ maxAddresses: opts.maxAddresses });
    this.flows = new BoundedMap(Math.max(2, opts.maxFlows ?? 100000));
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

  enrich(ev: FlowEvent, _owner?: ProcessInfo): void {
    if (ev.event === 'new') this.names.noteQuery(ev);
    if (ev.direction === 'in') return;
    const key = `${ev.id}|${ev.proto}|${ev.src}|${ev.sport}|${ev.dst}|${ev.dport}`;
    let d: DnsName | undefined;
    if (ev.event === 'new') {
      d = this.names.lookup(ev);
      this.flows.set(key, d ?? NONE);
    } else {
      const known = this.flows.get(key);
      d = known ? (known === NONE ? undefined : known) : this.names.lookup(ev);
      if (ev.event === 'destroy') this.flows.delete(key);
    }
    if (d) ev.dns = d;
  }
}
