// The audit method as a source of the engine's chain (src/attribute/source.ts):
// the records' reader (source.ts) and the hook that turns the correlator's
// verdict into an answer (hook.ts). Every NEW event is announced in stream
// order (expect) and settled after the lookups before it in the chain.
import type { FlowEvent } from '../../../event.js';
import type { ProcessReader } from '../../../proc/process.js';
import type { SocketIndex } from '../../../proc/sockets.js';
import type { Answer, MethodStatus, Source } from '../../source.js';
import { AuditSource } from './source.js';
import { AuditHook } from './hook.js';
import type { Ticket } from './correlator.js';

export interface AuditMethodOptions {
  procs: ProcessReader;
  index: SocketIndex;
  rules?: boolean;
  daemon?: boolean;
  windowMs?: number;
  cmdline?: boolean;
  pid: number;
  arch: string;
  onWarning?: (m: string) => void;
}

export class AuditMethod implements Source {
  readonly name = 'audit';
  readonly source: AuditSource;
  private readonly hook: AuditHook;

  constructor(opts: AuditMethodOptions) {
    this.source = new AuditSource({
      rules: opts.rules, daemon: opts.daemon, windowMs: opts.windowMs,
      pid: opts.pid, arch: opts.arch, procs: opts.procs, onWarning: opts.onWarning,
    });
    this.hook = new AuditHook(this.source.correlator, { cmdline: opts.cmdline, users: opts.procs.users, index: opts.index });
  }

  start(): Promise<void> {
    return this.source.start();
  }

  expect(ev: FlowEvent): Ticket | null {
    return this.hook.expect(ev);
  }

  wants(_ev: FlowEvent, _rec: Answer, token: unknown): boolean {
    return token !== null && token !== undefined;
  }

  refine<R extends Answer>(_ev: FlowEvent, rec: R, token: unknown): Promise<R> {
    return this.hook.settle(token as Ticket, rec);
  }

  noteNow(ev: FlowEvent, rec: Answer): void {
    this.hook.note(ev, rec);
  }

  takeRecords(): Record<string, unknown>[] {
    return this.source.takeOverruns() as unknown as Record<string, unknown>[];
  }

  status(): MethodStatus {
    return { method: this.name, live: true, why: `records by ${this.source.stats.mode}` };
  }

  statsLine(): string {
    const c = this.source.correlator.stats, s = this.source.stats;
    return `audit: ${s.mode}, records ${s.records}, network calls ${c.records}, lost ${s.lost}; NEW events confirmed ${c.agree}, named by audit alone ${c.match}, ambiguous ${c.ambiguous}, disagreeing ${c.disagree}, no record ${c.none}, waited for a late record ${c.waited}`;
  }

  close(): Promise<void> {
    return this.source.close();
  }
}
