// The bpf method as a source of the engine's chain (src/attribute/source.ts):
// the bpftrace runner (source.ts) feeds sightings to the port table
// (ports.ts), the hook (hook.ts) answers from it. Started in the
// background unless asked for: events are attributed from the first on,
// and sightings join once the probes are attached.
import type { FlowEvent } from '../../../event.js';
import type { ProcessReader } from '../../../proc/process.js';
import type { Answer, MethodStatus, Source } from '../../source.js';
import { PortTable } from './ports.js';
import { PortHook } from './hook.js';
import { CgroupIds } from './cgroups.js';
import { BpfSource } from './source.js';

export interface BpfMethodOptions {
  procs: ProcessReader;
  /** This process's network namespace (inode): that of outgoing and local flows. */
  netns: number | null;
  windowMs?: number;
  cmdline?: boolean;
  /** Asked for (--bpf): start() fails when it cannot run; else it starts in the background. */
  required?: boolean;
  onWarning?: (m: string) => void;
  /** What this kernel does not let it see (no UDP send tracepoint). */
  limit?: string;
}

export class BpfMethod implements Source {
  readonly name = 'bpf';
  readonly hook: PortHook;
  private readonly runner: BpfSource;
  private stopping = false;
  /** Why it stopped or never started, once known. */
  private failed: string | null = null;

  constructor(private opts: BpfMethodOptions) {
    this.hook = new PortHook(new PortTable(), { procs: opts.procs, netns: opts.netns, windowMs: opts.windowMs, cmdline: opts.cmdline, cgroups: new CgroupIds() });
    const hook = this.hook;
    this.runner = new BpfSource({
      table: hook.table,
      onSighting: (k, s) => hook.sighted(k, s),
      onWarning: (m) => opts.onWarning?.(m),
    });
  }

  async start(): Promise<void> {
    if (this.opts.required) {
      await this.runner.start();
      return;
    }
    // The probes take one to a few seconds to compile and attach; waiting
    // would leave the first events' sockets time to close, and nothing of
    // the calls before they attached is seen anyway.
    const hook = this.hook;
    hook.active = false;
    this.runner.start().then(() => { hook.active = true; }, (e) => {
      this.failed = (e as Error).message;
      if (!this.stopping) this.opts.onWarning?.(`not used: ${this.failed}`);
    });
  }

  wants(ev: FlowEvent, rec: Answer): boolean {
    return this.hook.wants(ev, rec);
  }

  refine<R extends Answer>(ev: FlowEvent, rec: R): Promise<R> {
    return this.hook.resolve(ev, rec);
  }

  status(): MethodStatus {
    if (this.failed) return { method: this.name, live: false, why: this.failed, fix: this.failed.includes('not installed') ? 'apt-get install bpftrace' : undefined };
    const why = [this.hook.active ? '' : 'starting: bpftrace attaching its probes', this.opts.limit ?? ''].filter(Boolean).join('; ');
    return { method: this.name, live: true, ...(why ? { why } : {}), ...(this.opts.limit ? { fix: 'a kernel of 6.3 or later for UDP' } : {}) };
  }

  statsLine(): string | null {
    if (!this.hook.active) return null;
    const b = this.hook.stats;
    return `bpf: sightings ${this.hook.table.stats.sightings}, ports ${this.hook.table.size}; NEW events asked ${b.asked}, named ${b.match}, ambiguous ${b.ambiguous}, no sighting ${b.none}, waited ${b.waited}`;
  }

  async close(): Promise<void> {
    this.stopping = true;
    await this.runner.close();
  }
}
