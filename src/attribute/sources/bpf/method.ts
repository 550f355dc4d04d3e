// The bpf method as a source of the engine's chain (src/attribute/source.ts):
// the BPF programs (source.ts, through the addon) feed sightings to the
// port table (ports.ts), the hook (hook.ts) answers from it. start() loads
// them before the first event is read (tens of ms). When they cannot be
// loaded, status() says why (ct-attribute's one line naming the methods),
// and the other methods go on without this one.
import type { FlowEvent } from '../../../event.js';
import type { ProcessReader } from '../../../proc/process.js';
import type { Answer, MethodStatus, Source } from '../../source.js';
import { PortTable } from './ports.js';
import { PortHook } from './hook.js';
import { CgroupIds } from './cgroups.js';
import { BpfSource } from './source.js';
import type { UdpRoute } from '../../../native/bpf.js';

export interface BpfMethodOptions {
  procs: ProcessReader;
  /** This process's network namespace (inode): that of outgoing and local flows. */
  netns: number | null;
  windowMs?: number;
  cmdline?: boolean;
  /** How UDP sends are seen (default: the tracepoint where the kernel has it). */
  udp?: 'auto' | UdpRoute;
  /** The ring buffer's size in bytes (default 4 MiB). */
  ringBytes?: number;
  host?: string;
  onWarning?: (m: string) => void;
}

export class BpfMethod implements Source {
  readonly name = 'bpf';
  readonly hook: PortHook;
  private readonly runner: BpfSource;
  /** Why it never started, once known. */
  private failed: string | null = null;

  constructor(private opts: BpfMethodOptions) {
    this.hook = new PortHook(new PortTable(), { procs: opts.procs, netns: opts.netns, windowMs: opts.windowMs, cmdline: opts.cmdline, cgroups: new CgroupIds(), drain: () => this.runner.drain() });
    const hook = this.hook;
    this.runner = new BpfSource({
      table: hook.table,
      onSighting: (k, s) => hook.sighted(k, s),
      onWarning: (m) => opts.onWarning?.(m),
      udp: opts.udp,
      ringBytes: opts.ringBytes,
      host: opts.host,
    });
  }

  async start(): Promise<void> {
    try {
      await this.runner.start();
    } catch (e) {
      this.failed = (e as Error).message;
      this.hook.active = false;
    }
  }

  wants(ev: FlowEvent, rec: Answer): boolean {
    return this.hook.wants(ev, rec);
  }

  refine<R extends Answer>(ev: FlowEvent, rec: R): Promise<R> {
    return this.hook.resolve(ev, rec);
  }

  refineNow<R extends Answer>(ev: FlowEvent, rec: R): R | null {
    return this.hook.resolveNow(ev, rec);
  }

  status(): MethodStatus {
    if (this.failed) return { method: this.name, live: false, why: this.failed };
    const { udp, attachMs } = this.runner.stats;
    const detail = `attached in ${attachMs.toFixed(0)} ms; ${udp === 'tracepoint' ? 'UDP sends by sock:sock_send_length' : udp === 'syscall' ? 'UDP sends by the exit of the send system calls' : 'TCP connects only'}`;
    return { method: this.name, live: true, detail, ...(udp === 'none' ? { why: 'UDP sends are not seen (the kernel has neither sock:sock_send_length nor raw_syscalls:sys_exit)' } : {}) };
  }

  statsLine(): string | null {
    if (!this.hook.active) return null;
    const b = this.hook.stats;
    const r = this.runner.stats;
    return `bpf: attached in ${r.attachMs.toFixed(1)} ms (UDP: ${r.udp}), sightings ${this.hook.table.stats.sightings}, lost ${r.lost}, ports ${this.hook.table.size}; NEW events asked ${b.asked}, named ${b.match}, ambiguous ${b.ambiguous}, no sighting ${b.none}, waited ${b.waited}; attached at ${new Date(r.attachedAt).toISOString()}`;
  }

  /** Overrun records for the sightings lost since the last call. */
  takeRecords(): Record<string, unknown>[] {
    return this.runner.takeOverruns() as unknown as Record<string, unknown>[];
  }

  async close(): Promise<void> {
    await this.runner.close();
  }
}
