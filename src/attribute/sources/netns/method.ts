// Other network namespaces as a source of the engine's chain
// (src/attribute/source.ts): a forwarded flow's owner looked up in the
// namespace (a container's) its address belongs to (resolver.ts).
import type { FlowEvent } from '../../../event.js';
import type { Answer, MethodStatus, Source } from '../../source.js';
import { NetnsResolver, type NetnsResolverOptions } from './resolver.js';

export class NetnsMethod implements Source {
  readonly name = 'netns';
  readonly resolver: NetnsResolver;

  constructor(opts: NetnsResolverOptions) {
    this.resolver = new NetnsResolver(opts);
  }

  wants(_ev: FlowEvent, rec: Answer): boolean {
    return rec.direction === 'fwd' && rec.attribution.method === 'none' && rec.attribution.reason === 'forwarded';
  }

  async refine<R extends Answer>(ev: FlowEvent, rec: R): Promise<R> {
    const f = await this.resolver.resolve(ev);
    if (!f) return rec;
    const out: R = { ...rec, attribution: f.attribution };
    if (f.process) out.process = f.process;
    if (f.peer) out.peer = f.peer;
    return out;
  }

  status(): MethodStatus {
    return { method: this.name, live: true };
  }

  statsLine(): string {
    const r = this.resolver;
    return `netns: lookups ${r.stats.lookups} (${r.stats.ok} attributed, ${r.namespaces.size} namespaces, ${r.stats.tableReads} table reads)`;
  }

  close(): void {
    this.resolver.diag?.stop();
  }
}
