// The syscall-time sightings: loads the BPF programs of
// native/bpf/sightings.bpf.c through the project's addon (libbpf, CO-RE,
// BTF-typed tracepoints attached by name; CAP_BPF and CAP_PERFMON suffice)
// and feeds what they see to a PortTable. Records come from a BPF ring
// buffer in batches, read in C as soon as its descriptor is readable; the
// records the kernel could not write (ring buffer full) are counted and
// become overrun records in the stream (reason "bpf-lost"). start() is
// synchronous in effect (tens of ms); it rejects with one line naming the
// reason (a capability, BTF, the kernel's version). The programs are
// detached on close(), or by the kernel when the process ends.
import { PortTable, type Sighting } from './ports.js';
import { nowTs, type OverrunRecord } from '../../../event.js';
import { openSightings, decodeSightings, type BpfHandle, type UdpRoute } from '../../../native/bpf.js';
import { adoptEarly } from './early.js';

export class BpfError extends Error {}

export interface BpfSourceOptions {
  table: PortTable;
  /** Called for each sighting kept, with its key. */
  onSighting?: (key: string, s: Sighting) => void;
  onWarning?: (m: string) => void;
  /** How UDP sends are seen (default: the tracepoint where the kernel has it). */
  udp?: 'auto' | UdpRoute;
  /** The ring buffer's size in bytes (default 4 MiB); tests shrink it to make losses. */
  ringBytes?: number;
  /** How often records lost with nothing else to read are looked for (ms). */
  drainMs?: number;
  host?: string;
}

export class BpfSource {
  private handle: BpfHandle | null = null;
  private timer: NodeJS.Timeout | null = null;
  private overruns: OverrunRecord[] = [];
  /** attachedAt: when the programs were attached (ms since the epoch), early (early.ts) or here. */
  readonly stats = { sightings: 0, bad: 0, lost: 0, attachMs: 0, attachedAt: 0, udp: '' as UdpRoute | 'none' | '' };

  constructor(private opts: BpfSourceOptions) {}

  async start(): Promise<void> {
    const opts = { udp: this.opts.udp ?? 'auto', ringBytes: this.opts.ringBytes ?? 0 };
    const onBatch = (buf: Buffer, lost: number, offset: number) => this.take(buf, lost, offset);
    // Loaded while ct-attribute's modules were (early.ts): its sightings since are taken now.
    const early = adoptEarly(opts, onBatch);
    if (early && 'error' in early) throw new BpfError(early.error);
    if (early) {
      this.handle = early.handle;
      this.stats.attachedAt = early.attachedAt;
    } else {
      try {
        this.handle = openSightings(opts, onBatch);
      } catch (e) {
        throw new BpfError((e as Error).message);
      }
      this.stats.attachedAt = Date.now();
    }
    this.stats.attachMs = this.handle.attachMs;
    this.stats.udp = this.handle.udp;
    if (this.handle.udp === 'none') this.opts.onWarning?.('this kernel has neither sock:sock_send_length nor raw_syscalls:sys_exit: UDP sends are not seen, TCP connects are');
    // Losses show up with the next records; with none coming, at this pace.
    this.timer = setInterval(() => this.handle?.drain(), this.opts.drainMs ?? 1000);
    this.timer.unref();
  }

  private take(buf: Buffer, lost: number, offset: number): void {
    if (lost > 0) {
      this.stats.lost += lost;
      this.overruns.push({ ts: nowTs(), event: 'overrun', lost, reason: 'bpf-lost', ...(this.opts.host !== undefined ? { host: this.opts.host } : {}) });
      this.opts.onWarning?.(`lost ${lost} sighting${lost === 1 ? '' : 's'} (the BPF ring buffer was full): flows of that moment may be unattributed`);
    }
    if (!buf.length) return;
    const { sightings, bad } = decodeSightings(buf, offset);
    this.stats.bad += bad;
    for (const s of sightings) {
      this.stats.sightings++;
      const key = this.opts.table.add(s);
      this.opts.onSighting?.(key, s);
    }
  }

  /** Hand over the records waiting now (synchronously). */
  drain(): void {
    this.handle?.drain();
  }

  /** Overrun records for the stream since the last call. */
  takeOverruns(): OverrunRecord[] {
    return this.overruns.length ? this.overruns.splice(0) : [];
  }

  /** Take what waits, then detach the programs. Safe to call more than once. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const h = this.handle;
    this.handle = null;
    h?.close();
  }
}
