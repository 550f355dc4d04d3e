// ct-events: conntrack events from the kernel as NDJSON.
import { hostname } from 'node:os';
import { pipeline } from 'node:stream/promises';
import { stage } from '../stage.js';
import { commandLine, parseArgs, warn, Failure, UsageError, type Command, type IO } from '../cli.js';
import { ConntrackSource, CtnetlinkError, EventLines } from '../netlink/socket.js';
import { FLOW_EVENTS, nowTs, type FlowEventKind } from '../event.js';
import { LineWriter } from '../event-json.js';
import { DnsObserver, dnsTableName } from '../dns/observer.js';
import type { DnsRecord } from '../event.js';
import { CounterPoller, acctSysctl } from '../netlink/counters.js';
import { parseDuration } from '../units.js';
import { type TrackingState, trackingState, enableTracking, disableTracking, trackingTableName, eventsSysctl, TrackingError } from '../tracking.js';

const NAME = 'ct-events';
/** Bytes of event lines pushed to stdout at a time (the stream's own high-water mark). */
const BATCH = 16 * 1024;
const PROTOS = ['tcp', 'udp', 'icmp', 'icmpv6', 'sctp', 'dccp', 'udplite', 'gre', 'all'];

/** `-p tcp -p udp` and `-p tcp,udp` both work. */
export function listOption(v: unknown): string[] {
  const arr = Array.isArray(v) ? v : v === undefined ? [] : [v];
  return arr.flatMap((x) => String(x).split(',')).map((x) => x.trim().toLowerCase()).filter(Boolean);
}

function options(argv: string[], io: IO) {
  const y = commandLine(NAME, `Usage: ${NAME} [options]\n\nWrite conntrack NEW/UPDATE/DESTROY events from the kernel as NDJSON, one event per line (see ct-event(5)).`)
    .option('proto', { alias: 'p', type: 'string', array: true, description: `Only these protocols (${PROTOS.join(', ')}); repeatable or comma-separated`, default: ['all'] })
    .option('family', { alias: 'f', type: 'string', choices: ['ipv4', 'ipv6'], description: 'Only this address family (-f is an old spelling: -f is --file elsewhere)' })
    .option('event', { alias: ['e', 'events'], type: 'string', description: 'Event kinds, comma-separated: new, update, destroy, or all (--events is the old spelling)', default: 'new,destroy' })
    .option('dump', { type: 'boolean', default: false, description: 'List the current table first (marked "dump": true), then follow events' })
    .option('rcvbuf', { type: 'number', description: 'Socket receive buffer in bytes (default: 256 MiB, or net.core.rmem_max if larger)' })
    .option('queue', { type: 'number', default: 100000, description: 'Events held for a slow reader before they are counted as lost' })
    .option('enable-tracking', { type: 'boolean', default: false, description: 'Switch conntrack on in this network namespace with a passive nftables table (removed on exit)' })
    .option('host', { type: 'string', description: 'Value of the "host" field (default: this host\'s name)' })
    .option('counters-every', { type: 'string', default: '60s', requiresArg: true, description: 'Poll the table this often for the packet and byte counters of flows still open (the kernel sends them only when a flow ends) and write them as "counters" records: 30s, 5m (needs nf_conntrack_acct=1; 0: never)' })
    .option('stats-interval', { type: 'number', default: 0, description: 'Write a {"event":"stats"} record every N seconds (0: never; SIGUSR1: now)' })
    .option('dns-names', { type: 'boolean', description: 'Observe DNS answers (an nftables table that logs packets from port 53 to an NFLOG group, removed on exit) and write them as "dns" records, for ct-attribute to name each flow\'s remote. Default: on when it can be done, else one line on stderr says why; --dns-names: fail when it cannot be done; --no-dns-names: off' })
    .option('dns-group', { type: 'number', default: 5300, description: 'The NFLOG group for the DNS answers (the next 15 are tried when taken)' })
    .option('dns-queue', { type: 'number', default: 10000, description: 'DNS records held for a slow reader before they are counted as lost' })
    .example(`sudo ${NAME} -p tcp`, 'TCP connections as they open and close')
    .example(`sudo ${NAME} --dump -e all | jq .`, 'the current table, then every event')
    .example(`sudo ${NAME} --enable-tracking --stats-interval 60`, 'in a namespace with no conntrack rule, with a heartbeat')
    .example(`sudo ${NAME} --no-dns-names -p tcp`, 'no DNS observation (no nftables table, no "dns" records)')
    .example(`sudo ${NAME} | ct-attribute | ct-format`, 'who opened what, readable')
    .example(`sudo ${NAME} --counters-every 10s | ct-flows --report-every 1m`, 'long flows: their bytes so far, every minute');
  return parseArgs(y, argv, io, { '--events': '--event', '-f': '--family' });
}

export async function main(argv: string[], io: IO): Promise<number> {
  const a = await options(argv, io);
  if (!a) return 0;
  const protos = listOption(a.proto);
  for (const p of protos) if (!PROTOS.includes(p)) throw new UsageError(`unknown protocol '${p}' (choose from ${PROTOS.join(', ')})`);
  let kinds = listOption(a.event);
  if (kinds.includes('all')) kinds = [...FLOW_EVENTS];
  for (const k of kinds) if (!(FLOW_EVENTS as readonly string[]).includes(k)) throw new UsageError(`unknown event kind '${k}' (choose from new, update, destroy, all)`);
  if (!kinds.length) throw new UsageError('--events needs at least one event kind');
  const queue = Number(a.queue);
  if (!Number.isInteger(queue) || queue < 1) throw new UsageError('--queue must be a positive whole number');
  const statsEvery = Number(a['stats-interval']);
  if (!(statsEvery >= 0)) throw new UsageError('--stats-interval must be a number of seconds >= 0');
  const host = (a.host as string | undefined) ?? hostname();
  const dnsGroup = Number(a['dns-group']);
  if (!Number.isInteger(dnsGroup) || dnsGroup < 0 || dnsGroup > 65535) throw new UsageError('--dns-group must be a whole number from 0 to 65535');
  const dnsQueue = Number(a['dns-queue']);
  if (!Number.isInteger(dnsQueue) || dnsQueue < 1) throw new UsageError('--dns-queue must be a positive whole number');
  const countersEvery = countersPeriod(String(a['counters-every']));

  const source = new ConntrackSource({
    events: kinds as FlowEventKind[],
    protos,
    family: a.family as 'ipv4' | 'ipv6' | undefined,
    dump: a.dump as boolean,
    rcvbuf: a.rcvbuf as number | undefined,
    queue,
    host,
    onWarning: (m) => warn(io, NAME, m),
    beforeBatch: (ts) => dns?.drain(ts),
    lines: true,
  });
  let dns: DnsObserver | null = null;
  try {
    source.start();
  } catch (e) {
    if (e instanceof CtnetlinkError) throw new Failure(e.message);
    throw e;
  }

  if (eventsSysctl() === 0) {
    warn(io, NAME, 'net.netfilter.nf_conntrack_events is 0, so the kernel sends no events; enable them: sysctl -w net.netfilter.nf_conntrack_events=1');
  }
  let table: string | null = null;
  let tracking: TrackingState | 'enabled' = 'enabled';
  if (a['enable-tracking']) {
    table = trackingTableName(process.pid);
    try {
      await enableTracking(table);
    } catch (e) {
      source.destroy();
      if (e instanceof TrackingError) throw new Failure(e.message);
      throw e;
    }
  } else {
    const state = tracking = await trackingState();
    if (state === 'off') {
      warn(io, NAME, 'conntrack is not active in this network namespace (no netfilter rule uses it), so no events will come; use --enable-tracking, or add a rule: nft add table inet t; nft add chain inet t c "{ type filter hook output priority 0; }"; nft add rule inet t c ct state new counter');
    }
  }

  // DNS answers: records wait here (bounded) and go into the stream before
  // the next event, or at once when the stream is idle.
  const dnsPending: DnsRecord[] = [];
  let dnsLost = 0, dnsLostReason = '', dnsFlushQueued = false;
  const loseDns = (n: number, reason: string) => {
    dnsLost += n;
    if (!dnsLostReason.split(',').includes(reason)) dnsLostReason = dnsLostReason ? `${dnsLostReason},${reason}` : reason;
    queueDnsFlush();
  };
  const drainDns = () => {
    for (const r of dnsPending) lines.line(r);
    dnsPending.length = 0;
    if (dnsLost) {
      lines.line({ ts: nowTs(), event: 'overrun', lost: dnsLost, reason: dnsLostReason, host });
      warn(io, NAME, `lost ${dnsLost} DNS answer${dnsLost === 1 ? '' : 's'} (${dnsLostReason})`);
      dnsLost = 0;
      dnsLostReason = '';
    }
  };
  const queueDnsFlush = () => {
    if (dnsFlushQueued) return;
    dnsFlushQueued = true;
    setImmediate(function flushDns() {
      if (serialize.destroyed || serialize.writableEnded) return;
      // The reader is behind: the records go out with the next event, or here a little later.
      if (serialize.readableLength >= serialize.readableHighWaterMark) { setTimeout(flushDns, 10); return; }
      dnsFlushQueued = false;
      drainDns();
      flushLines();
    });
  };
  // Default: on when it can be done, one line when not; --dns-names
  // demands it; --no-dns-names leaves the ruleset alone.
  const wantDns = a['dns-names'] as boolean | undefined;
  if (wantDns !== false) {
    const observer = new DnsObserver({
      group: dnsGroup, table: dnsTableName(process.pid), host,
      onRecord: (r) => {
        if (dnsPending.length >= dnsQueue) return loseDns(1, 'dns-queue');
        dnsPending.push(r);
        queueDnsFlush();
      },
      onLost: loseDns,
      onWarning: (m) => warn(io, NAME, `dns: ${m}`),
    });
    try {
      await observer.start();
      dns = observer;
    } catch (e) {
      if (wantDns === true) {
        source.destroy();
        if (table) await disableTracking(table).catch(() => undefined);
        throw new Failure(`--dns-names: ${(e as Error).message}`);
      }
      warn(io, NAME, `DNS names not live: ${(e as Error).message}; flows carry no "dns" (--no-dns-names: do not try)`);
    }
  }
  const counters = countersEvery ? startCounters(countersEvery, protos, a.family as 'ipv4' | 'ipv6' | undefined, host, io, () => feedCounters()) : null;
  warn(io, NAME, readyLine(tracking, kinds, protos, a.family as string | undefined, counters ? countersEvery : 0) + (dns ? '; DNS answers observed' : wantDns === false ? '' : '; no DNS names (see above)'));

  let written = 0;
  const statsRecord = () => ({
    ts: nowTs(), event: 'stats', received: source.counts.received, written, lost: source.counts.lost,
    queued: source.counts.queued, rcvbuf: source.counts.rcvbuf, host,
  });
  let injectStats = false;
  // Lines go into one LineWriter (JSON.stringify's text, written as bytes
  // directly; most events come as their lines already, written by the
  // addon) and leave as one chunk per batch: at BATCH bytes, or when this
  // turn of the event loop is over (a burst of datagrams is one write to
  // stdout, not one per event). A full batch, and every line once the reader
  // is behind, goes out through the transform callback, which then waits for
  // the reader: what is held here beyond the stream's own buffer stays under
  // one batch.
  const lines = new LineWriter();
  let flushQueued = false;
  const flushLines = () => {
    flushQueued = false;
    if (lines.pending && !serialize.destroyed) serialize.push(lines.take());
  };
  const serialize = stage({
    writableObjectMode: true,
    readableObjectMode: false,
    // Records, each an event or a batch of events' lines: few wait here, so
    // that what waits for a slow reader is in the source's queue (--queue).
    writableHighWaterMark: 16,
  }, function (rec, _enc, cb) {
    if (dnsPending.length || dnsLost) drainDns();
    if (counters?.pending) for (const r of counters.take()) lines.line(r);
    if (rec instanceof EventLines) {
      // Lines the addon wrote go out as they are, after what waits here.
      if (lines.pending) this.push(lines.take());
      written += rec.count;
      if (injectStats) {
        injectStats = false;
        lines.line(statsRecord());
      }
      if (!lines.pending) return cb(null, rec.buf);
      this.push(rec.buf);
      return cb(null, lines.take());
    }
    lines.line(rec);
    if (rec.event !== 'overrun') written++;
    if (injectStats) {
      injectStats = false;
      lines.line(statsRecord());
    }
    // Through the callback when the batch is full or the reader is behind:
    // then the transform waits for the reader, and so does the source.
    if (lines.pending >= BATCH || this.readableLength >= this.readableHighWaterMark) {
      cb(null, lines.take());
      return;
    }
    if (!flushQueued) {
      flushQueued = true;
      setImmediate(flushLines);
    }
    cb();
  }, function (cb) {
    drainDns();
    if (counters?.pending) for (const r of counters.take()) lines.line(r);
    cb(null, lines.pending ? lines.take() : undefined);
  });
  // Counters records go out before the next event, or at once when the
  // stream is idle; while the reader is behind they wait (and the poller
  // skips its polls until they are out).
  const feedCounters = () => {
    if (!counters?.pending || serialize.destroyed || serialize.writableEnded) return;
    if (source.counts.queued !== 0 || serialize.writableLength !== 0 || serialize.readableLength >= serialize.readableHighWaterMark) return;
    for (const r of counters.take()) lines.line(r);
    flushLines();
  };
  // A stats record goes into the stream at once when the stream is idle;
  // otherwise right after the event being written.
  const requestStats = () => {
    if (source.counts.queued === 0 && serialize.writableLength === 0) {
      if (serialize.destroyed || serialize.writableEnded) return;
      lines.line(statsRecord());
      flushLines(); // with any lines still waiting for their batch, in order
    } else {
      injectStats = true;
    }
  };
  const onUsr1 = () => {
    const s = statsRecord();
    warn(io, NAME, `received ${s.received}, written ${s.written}, lost ${s.lost}, queued ${s.queued}`);
    requestStats();
  };
  io.signals.on('SIGUSR1', onUsr1);
  const timer = statsEvery > 0 ? setInterval(requestStats, statsEvery * 1000) : null;
  // The DNS table goes on SIGTERM/SIGINT too: close() is awaited below.
  let dnsClosed: Promise<void> | null = null;
  const closeDns = () => (dnsClosed ??= dns ? dns.close() : Promise.resolve());
  const onAbort = () => { source.close(); void closeDns(); };
  if (io.signal.aborted) onAbort();
  io.signal.addEventListener('abort', onAbort, { once: true });
  try {
    await pipeline(source, serialize, io.stdout, { end: false });
  } finally {
    if (timer) clearInterval(timer);
    counters?.close();
    io.signals.off('SIGUSR1', onUsr1);
    io.signal.removeEventListener('abort', onAbort);
    source.destroy();
    await closeDns();
    if (table) {
      try {
        await disableTracking(table);
      } catch (e) {
        warn(io, NAME, (e as Error).message);
      }
    }
  }
  return 0;
}

export const command: Command = { name: NAME, main };

/** --counters-every: a duration, 0 for never; at least 1 s (each poll lists the whole table). */
function countersPeriod(text: string): number {
  const us = parseDuration(text);
  if (us === null || (us !== 0 && us < 1e6)) throw new UsageError(`--counters-every: '${text}' is not 0 or a duration of 1s or more (30s, 5m, 1h)`);
  return us / 1000;
}

/** The poller of open flows' counters (src/netlink/counters.ts); null, with a warning, when it cannot start. */
function startCounters(every: number, protos: string[], family: 'ipv4' | 'ipv6' | undefined, host: string, io: IO, onReady: () => void): CounterPoller | null {
  const p = new CounterPoller({
    every, family, host, onReady,
    protos: protos.length && !protos.includes('all') ? new Set(protos) : null,
    onWarning: (m) => warn(io, NAME, m),
  });
  try {
    p.start();
  } catch (e) {
    warn(io, NAME, `counters of open flows: no socket for polling the table (${(e as Error).message}); going on without them`);
    return null;
  }
  return p;
}

/**
 * The line that says the stage is ready, which ct-attribute's `methods:`
 * line continues: whether the kernel tracks anything here, what is
 * listened for, and whether open flows' counters will come.
 */
export function readyLine(tracking: TrackingState | 'enabled', kinds: string[], protos: string[], family: string | undefined, countersEvery: number, acct = acctSysctl()): string {
  const t = tracking === 'enabled' ? 'tracking on in this namespace (--enable-tracking)'
    : tracking === 'on' ? 'tracking on in this namespace'
      : tracking === 'off' ? 'tracking OFF in this namespace (see above)'
        : 'tracking in this namespace not known';
  const what = [protos.length && !protos.includes('all') ? protos.join(',') : '', family ?? ''].filter(Boolean).join(' ');
  const c = !countersEvery ? 'counters at the end of each flow'
    : acct ? `counters of open flows every ${countersEvery / 1000}s`
      : 'no counters (net.netfilter.nf_conntrack_acct=0)';
  return `${t}; listening for ${kinds.join(', ')}${what ? ` (${what})` : ''}; ${c}`;
}
