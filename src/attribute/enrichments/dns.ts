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

/**
 * What a flow was named at its NEW, by conntrack id: the id alone is the
 * key (a small integer, so no string is built per event), and the ports
 * (and the remote, for a named flow) are checked on recall, so an id the
 * kernel hands out again to another flow is not taken for the old one. A
 * flow that had no name is remembered as its ports alone, a small integer
 * held in the map itself. Measured with the RSS part of
 * bench/attribute.bench.js: a key string per flow ("id|proto|src|sport|dst|dport")
 * held about 170 bytes of heap per remembered flow.
 */
type Remembered = number | Named;
interface Named {
  d: DnsName;
  ports: number;
  dst: string;
}

/** Both ports in one 32-bit integer (0 for protocols without ports). */
const portsOf = (ev: FlowEvent): number => ((ev.sport ?? 0) << 16) | ((ev.dport ?? 0) & 0xffff);

export class DnsEnrichment {
  readonly name = 'dns';
  readonly fields = ['dns'] as const;
  readonly names: NameMap;
  private flows: BoundedMap<number, Remembered>;
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
    // The conntrack id (a u32) as an int32, one to one: ids from 2^31 up are
    // heap numbers, slow as Map keys, and half of all ids are that high.
    const id = ev.id | 0;
    const ports = portsOf(ev);
    let d: DnsName | undefined;
    if (ev.event === 'new') {
      d = this.names.lookup(ev);
      this.flows.set(id, d ? { d, ports, dst: ev.dst } : ports);
    } else {
      const known = this.flows.get(id);
      const same = known === undefined ? false : typeof known === 'number' ? known === ports : known.ports === ports && known.dst === ev.dst;
      d = same ? (typeof known === 'number' ? undefined : known!.d) : this.names.lookup(ev);
      if (ev.event === 'destroy' && same) this.flows.delete(id);
    }
    if (d) ev.dns = d;
  }
}
