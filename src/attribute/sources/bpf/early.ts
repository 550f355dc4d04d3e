// The bpf method's programs loaded and attached before the rest of
// ct-attribute is imported (yargs, the engine, the netlink package: 150 ms
// and more on a small machine), so that they see the connections made while
// it starts. bin/ct-attribute calls startEarly() first, when wantedEarly()
// says the method is likely wanted; BpfSource.start() then adopts the
// handle (or the load failure, reported later as it always was) instead of
// loading again, and the sightings made meanwhile, read from the ring
// buffer and kept here, are handed over then. When the full option parse
// turns the method off, dropEarly() detaches it. Kept small on purpose: it
// imports the addon's loader and nothing else, takes every fact it decides
// on as an argument, and never throws.
import { openSightings, type BatchHandler, type BpfHandle, type BpfOpenOptions, type UdpRoute } from '../../../native/bpf.js';

/** The options of the load, from the test-only switches (ct-attribute(1), ENVIRONMENT): the command reads them the same way. */
export function testSwitches(env: Record<string, string | undefined>): { udp: 'auto' | UdpRoute; ringBytes: number } {
  return {
    udp: env.CTPIPE_TEST_BPF_UDP === 'syscall' ? 'syscall' : 'auto',
    ringBytes: Number(env.CTPIPE_TEST_BPF_RING ?? 0) || 0,
  };
}

/** What the early load may go on: ct-attribute's arguments, what its stdin is, whether the capabilities are held. */
export interface EarlyFacts {
  argv: string[];
  stdin: 'pipe' | 'socket' | 'file' | 'tty' | 'other' | 'none';
  /** CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) held; null: unknown. */
  capable: boolean | null;
}

/**
 * Whether the bpf method is likely wanted, as ct-attribute's default
 * decides it (on when the capabilities are held and the input is a pipe),
 * without parsing the options: not with --no-bpf (--bpf=false), --help or
 * --version. A guess the full parse corrects (dropEarly()).
 */
export function wantedEarly(f: EarlyFacts): boolean {
  let asked = false;
  for (const a of f.argv) {
    if (a === '--') break;
    if (a === '--no-bpf' || /^--bpf=(false|no|0)$/i.test(a)) return false;
    if (a === '--help' || a === '--version' || /^-[A-Za-z]*[hV]/.test(a) && !a.startsWith('--')) return false;
    if (a === '--bpf' || /^--bpf=(true|yes|1)$/i.test(a)) asked = true;
  }
  if (f.stdin !== 'pipe' && f.stdin !== 'socket') return false;
  return asked || f.capable === true;
}

interface Early {
  opts: { udp: 'auto' | UdpRoute; ringBytes: number };
  handle: BpfHandle | null;
  /** The load's failure, one line naming the reason. */
  error: string | null;
  /** When it was attached (ms since the epoch). */
  attachedAt: number;
  /** Batches read before adoption (copies, from the addon). */
  kept: { buf: Buffer; lost: number; offset: number }[];
  keptBytes: number;
  /** Records not kept (more than KEEP_BYTES waited): counted as lost. */
  dropped: number;
  target: BatchHandler | null;
}

/** At most this many bytes of records wait for adoption (the default ring buffer's size). */
const KEEP_BYTES = 4 << 20;
const RECORD = 72;

let early: Early | null = null;

/** Load and attach now (once); a failure is kept for the adopter. Never throws. */
export function startEarly(opts: { udp: 'auto' | UdpRoute; ringBytes: number }, open: typeof openSightings = openSightings): void {
  if (early) return;
  const e: Early = { opts: { ...opts }, handle: null, error: null, attachedAt: 0, kept: [], keptBytes: 0, dropped: 0, target: null };
  early = e;
  try {
    e.handle = open({ udp: opts.udp, ringBytes: opts.ringBytes }, (buf, lost, offset) => {
      if (e.target) return e.target(buf, lost, offset);
      if (e.keptBytes + buf.length > KEEP_BYTES) {
        e.dropped += Math.floor(buf.length / RECORD) + lost;
        return;
      }
      e.kept.push({ buf, lost, offset });
      e.keptBytes += buf.length;
    });
    e.attachedAt = Date.now();
  } catch (err) {
    e.error = String((err as Error)?.message ?? err);
  }
}

/** What adopt() hands over: the attached handle, or why the load failed. */
export type Adopted = { handle: BpfHandle; attachedAt: number } | { error: string };

/**
 * The early load, when there was one with the same options: from now on
 * its batches go to `onBatch`, first those kept (synchronously, before
 * this returns). Null when there was none (or another's options: that one
 * is detached), and the caller loads for itself.
 */
export function adoptEarly(opts: { udp: 'auto' | UdpRoute; ringBytes: number }, onBatch: BatchHandler): Adopted | null {
  const e = early;
  if (!e || e.target) return null;
  if (e.opts.udp !== opts.udp || e.opts.ringBytes !== opts.ringBytes) {
    dropEarly();
    return null;
  }
  if (e.error !== null) {
    early = null;
    return { error: e.error };
  }
  e.target = onBatch;
  const kept = e.kept.splice(0);
  e.keptBytes = 0;
  const dropped = e.dropped;
  e.dropped = 0;
  for (let i = 0; i < kept.length; i++) {
    const k = kept[i];
    onBatch(k.buf, k.lost + (i === kept.length - 1 ? dropped : 0), k.offset);
  }
  if (!kept.length && dropped) onBatch(Buffer.alloc(0), dropped, 0);
  early = null;
  return { handle: e.handle!, attachedAt: e.attachedAt };
}

/** Detach an early load nobody adopted (the method turned out to be off); safe to call at any time. */
export function dropEarly(): void {
  const e = early;
  early = null;
  if (!e || e.target) return;
  e.kept = [];
  try {
    e.handle?.close();
  } catch { /* closing is best effort */ }
}

/** Whether an early load waits for adoption (for tests). */
export function earlyPending(): 'attached' | 'failed' | null {
  return early ? (early.error !== null ? 'failed' : 'attached') : null;
}
