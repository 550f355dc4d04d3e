// The process enrichment: a flow's owner with its parent and ancestors, its
// executable's digest and whether that file is deleted or a memfd
// (src/proc/enrich.ts). The owner object is shared by every event of the
// process, so it is replaced by an enriched copy, never changed.
import type { FlowEvent, ProcessInfo } from '../../event.js';
import { ProcessEnricher, type ProcessEnricherOptions } from '../../proc/enrich.js';

export class ProcessEnrichment {
  readonly name = 'process';
  readonly fields = [] as const;
  readonly enricher: ProcessEnricher;

  constructor(opts: ProcessEnricherOptions = {}) {
    this.enricher = new ProcessEnricher(opts);
  }

  enrich(ev: FlowEvent, _owner?: ProcessInfo): void {
    if (ev.process) ev.process = this.enricher.enrich(ev.process);
  }

  /** Digests still being computed finish (or are dropped) before exit. */
  async close(): Promise<void> {
    await this.enricher.hasher?.settled();
  }
}
