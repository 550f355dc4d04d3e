// DNS answers on this host, for ct-events: an nftables table of its own that
// logs every packet from port 53 (UDP and TCP) arriving at a local socket
// (hook input: answers from remote servers, and a local stub resolver's
// answers on loopback) or passing through (hook forward: containers' and
// VMs' answers), to an NFLOG group this process reads; each answer with
// addresses becomes a `dns` record (ct-event(5)). The table only logs: no
// verdict, policy accept; it is removed at close. Loss is counted.
import { existsSync, readlinkSync } from 'node:fs';
import { isoMicros, nowMicros, type DnsRecord } from '../event.js';
import { NflogSource, NflogError } from '../netlink/nflog-source.js';
import { parseAnswerPacket } from './packet.js';
import { DnsError } from './message.js';
import { nft } from '../tracking.js';

export interface DnsObserverOptions {
  group: number;
  /** The nft table's name (one per process). */
  table: string;
  host?: string;
  onRecord: (r: DnsRecord) => void;
  onLost: (n: number, reason: string) => void;
  onWarning?: (m: string) => void;
}

export class DnsObserverError extends Error {}

const TABLE_PREFIX = 'ctpipe_dns_';

/** The table of the ct-events with this pid. */
export function dnsTableName(pid: number): string {
  return `${TABLE_PREFIX}${pid}`;
}

/**
 * Tables left by a ct-events that was killed (SIGKILL, a crash): those of
 * pids that no longer run are removed, so their NFLOG rules do not log to
 * a group nobody reads for ever. A pid that runs again is left alone.
 */
async function removeStale(own: string, warnFn?: (m: string) => void): Promise<void> {
  const r = await nft(['list', 'tables', 'inet']);
  if (r.code !== 0) return;
  for (const m of r.stdout.matchAll(/^table inet (ctpipe_dns_(\d+))$/gm)) {
    if (m[1] === own || existsSync(`/proc/${m[2]}`)) continue;
    const d = await nft(['delete', 'table', 'inet', m[1]!]);
    if (d.code === 0) warnFn?.(`removed the table inet ${m[1]} of a ct-events that no longer runs`);
  }
}

/** The rules: log answers from port 53 to `group`, in the input and forward hooks. */
export function dnsRules(table: string, group: number): string {
  const log = `udp sport 53 log group ${group}\n    tcp sport 53 log group ${group}`;
  return `table inet ${table} {\n  chain answers_in {\n    type filter hook input priority -150; policy accept;\n    ${log}\n  }\n  chain answers_fwd {\n    type filter hook forward priority -150; policy accept;\n    ${log}\n  }\n}\n`;
}

function ownNetns(): number | undefined {
  try {
    const m = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/net'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** How far the kernel's stamp of a packet may be from our clock and still be taken: past it, the clock was set. */
const KERNEL_STAMP_SLACK_US = 60e6;

/**
 * An answer's ts: the kernel's stamp of the packet (when it came in, or was
 * logged), which is before its client had it and so before any flow the
 * client starts after it. The time it is read is not: the flow's event may
 * be read first, by the addon, and stamped then, while the answer waits its
 * turn in the event loop (11 of 1000 resolve-then-connect rounds in CI were
 * stamped 1 to 2 µs after their flow). Without a stamp (older kernels send
 * one only for a packet stamped on its way in), or with one far from our
 * clock, the time it is read.
 */
export function answerTs(kernelMicros: number | undefined, now: number): string {
  if (kernelMicros !== undefined && Math.abs(kernelMicros - now) <= KERNEL_STAMP_SLACK_US) return isoMicros(Math.min(kernelMicros, now));
  return isoMicros(now);
}

export class DnsObserver {
  private source: NflogSource;
  private installed = false;
  /** While drain() runs before a batch of flow events: that batch's ts. */
  private notAfter: string | undefined;
  private readonly netns = ownNetns();
  readonly counts = { answers: 0, records: 0, malformed: 0 };

  constructor(private opts: DnsObserverOptions) {
    this.source = new NflogSource({
      group: opts.group,
      tries: 16,
      onPacket: (buf, p) => this.onPacket(buf.subarray(p.start, p.end), p.micros),
      onLost: (n, reason) => opts.onLost(n, reason),
      onWarning: opts.onWarning,
    });
  }

  get group(): number {
    return this.source.group;
  }

  get lost(): number {
    return this.source.counts.lost;
  }

  /** Bind the NFLOG group, then install the rules that feed it. */
  async start(): Promise<void> {
    try {
      await this.source.start();
    } catch (e) {
      throw new DnsObserverError((e as Error).message);
    }
    await removeStale(this.opts.table, this.opts.onWarning);
    const r = await nft(['-f', '-'], dnsRules(this.opts.table, this.source.group));
    if (r.code !== 0) {
      this.source.close();
      // nft killed after its batch went in (a signal to the process group) leaves the table.
      if (!r.missing) await nft(['delete', 'table', 'inet', this.opts.table]);
      if (r.missing) throw new DnsObserverError("needs the 'nft' command (apt-get install nftables)");
      const why = r.stderr.split('\n').find((l) => /Error|denied|permitted/i.test(l)) ?? r.stderr.trim().split('\n')[0] ?? 'failed';
      throw new DnsObserverError(`nft could not add table inet ${this.opts.table}: ${why.trim()}${/permit|denied/i.test(why) ? ' (needs CAP_NET_ADMIN)' : ''}`);
    }
    this.installed = true;
  }

  private onPacket(p: Buffer, kernelMicros: number | undefined): void {
    this.counts.answers++;
    let rec: DnsRecord | null;
    let ts = answerTs(kernelMicros, nowMicros());
    // Read before a batch of flow events: no later than the batch (see drain()).
    if (this.notAfter !== undefined && ts > this.notAfter) ts = this.notAfter;
    try {
      rec = parseAnswerPacket(p, ts);
    } catch (e) {
      if (!(e instanceof DnsError)) throw e;
      this.counts.malformed++;
      return;
    }
    if (!rec) return;
    if (this.netns !== undefined) rec.netns = this.netns;
    if (this.opts.host !== undefined) rec.host = this.opts.host;
    this.counts.records++;
    this.opts.onRecord(rec);
  }

  /**
   * Handle the answers queued now, synchronously: call before handling a
   * batch of flow events, with the batch's ts. The answers were queued
   * before the batch was handled, and they are written before its events,
   * so they are stamped no later than it: an answer read just after the
   * batch, in the same turn, would otherwise carry a later ts than the
   * flow it names (ct-attribute names a flow only from answers stamped no
   * later than it).
   */
  drain(notAfter?: string): void {
    this.notAfter = notAfter;
    try {
      this.source.drain();
    } finally {
      this.notAfter = undefined;
    }
  }

  /** Remove the rules, then release the group. */
  async close(): Promise<void> {
    if (this.installed) {
      this.installed = false;
      const r = await nft(['delete', 'table', 'inet', this.opts.table]);
      if (r.code !== 0 && !r.missing) this.opts.onWarning?.(`could not remove nft table inet ${this.opts.table}: ${r.stderr.trim().split('\n')[0]}`);
    }
    this.source.close();
  }
}

export { NflogError };
