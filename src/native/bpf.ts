// The addon's BPF part (native/src/bpf.c, programs in native/bpf/; a .node
// of its own, ctpipe_bpf.node, the only one that needs libbpf.so.1), typed:
// open the syscall-time sightings and decode the binary records it hands
// over in batches. The record layout is native/bpf/sighting.h's struct
// ct_sighting; decodeSightings is the one place that reads it.
import { loadBpfAddon } from './addon.js';

/** How UDP sends are seen: sock:sock_send_length (Linux 6.3+), or the exit of the send system calls (older kernels). */
export type UdpRoute = 'tracepoint' | 'syscall';

export interface BpfOpenOptions {
  /** Default: the tracepoint where the kernel has it, else the system calls. */
  udp?: 'auto' | UdpRoute;
  /** The ring buffer's size in bytes (a power of two, at least 4096; default 4 MiB). */
  ringBytes?: number;
}

/** An open set of programs. */
export interface BpfHandle {
  /** The UDP route taken; `none` when the kernel has neither (TCP only). */
  readonly udp: UdpRoute | 'none';
  /** How long loading and attaching took (ms). */
  readonly attachMs: number;
  /** Hand over what waits now (records and losses), synchronously. */
  drain(): void;
  /** Hand over what waits, then detach and free the programs. */
  close(): void;
}

/**
 * Called with the records waiting (a Buffer of RECORD_SIZE-byte records),
 * the records lost since the last call, and the ms to add to a record's
 * monotonic time (ns / 1e6) for ms since the epoch.
 */
export type BatchHandler = (records: Buffer, lost: number, monoToEpochMs: number) => void;

interface BpfAddon {
  bpfOpen(opts: BpfOpenOptions, onBatch: BatchHandler): BpfHandle;
}

/** Load and attach; throws an Error whose message is one line naming the reason (or the addon's load failure). */
export function openSightings(opts: BpfOpenOptions, onBatch: BatchHandler): BpfHandle {
  return loadBpfAddon<BpfAddon>().addon.bpfOpen(opts, onBatch);
}

export const RECORD_SIZE = 72;

/** A process seen with a local port (the fields of struct ct_sighting, times converted). */
export interface SightingRecord {
  kind: 'connect' | 'send';
  /** ms since the epoch. */
  t: number;
  pid: number;
  ppid: number;
  uid: number;
  gid: number;
  netns: number;
  family: 'ipv4' | 'ipv6';
  proto: number;
  sport: number;
  dport: number;
  /** Process start in clock ticks since boot (field 22 of /proc/PID/stat). */
  start: number;
  cgroup: number;
  comm: string;
}

/** The records of a batch; a record that cannot be a sighting (no pid or port, another family) is left out and counted in `bad`. */
export function decodeSightings(buf: Buffer, monoToEpochMs: number): { sightings: SightingRecord[]; bad: number } {
  const out: SightingRecord[] = [];
  let bad = 0;
  for (let o = 0; o + RECORD_SIZE <= buf.length; o += RECORD_SIZE) {
    const kind = buf[o + 48];
    const fam = buf[o + 49];
    const pid = buf.readUInt32LE(o + 24);
    const sport = buf.readUInt16LE(o + 44);
    if ((kind !== 1 && kind !== 2) || (fam !== 2 && fam !== 10) || !pid || !sport) {
      bad++;
      continue;
    }
    const end = buf.indexOf(0, o + 56);
    out.push({
      kind: kind === 1 ? 'connect' : 'send',
      t: Number(buf.readBigUInt64LE(o)) / 1e6 + monoToEpochMs,
      // USER_HZ is 100 on every architecture Linux exports it for: 1e7 ns a tick.
      start: Math.floor(Number(buf.readBigUInt64LE(o + 8)) / 1e7),
      cgroup: Number(buf.readBigUInt64LE(o + 16)),
      pid,
      ppid: buf.readUInt32LE(o + 28),
      uid: buf.readUInt32LE(o + 32),
      gid: buf.readUInt32LE(o + 36),
      netns: buf.readUInt32LE(o + 40),
      sport,
      dport: buf.readUInt16LE(o + 46),
      family: fam === 2 ? 'ipv4' : 'ipv6',
      proto: buf[o + 50],
      comm: buf.toString('utf8', o + 56, end < 0 || end > o + 72 ? o + 72 : end),
    });
  }
  return { sightings: out, bad };
}
