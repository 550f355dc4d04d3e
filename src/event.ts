// The event: the contract between ctpipe's commands and with its users.
// Field names live in the schema table (src/event/schema.ts), whose types
// these interfaces spell out for TypeScript, and in man/ct-event.5.md, which
// a test holds to the table; renaming one is a breaking change (bump
// SCHEMA_VERSION's major).

import { FIELDS } from './event/schema.js';

export const SCHEMA_VERSION = '1.0';

/** Flow events, as ctnetlink reports them. */
export const FLOW_EVENTS = ['new', 'update', 'destroy'] as const;
export type FlowEventKind = (typeof FLOW_EVENTS)[number];

/** Records about the stream itself; every stage passes them on. */
export const SPECIAL_EVENTS = ['overrun', 'stats', 'start', 'stop', 'attribution-stats', 'dns', 'counters'] as const;

export type Family = 'ipv4' | 'ipv6';
export type Proto = 'tcp' | 'udp' | 'icmp' | 'icmpv6' | 'sctp' | 'dccp' | 'udplite' | 'gre' | string;

export interface Tuple {
  src: string;
  sport?: number;
  dst: string;
  dport?: number;
}

export interface Counters {
  packets: number;
  bytes: number;
}

export interface Icmp {
  type: number;
  code: number;
  id: number;
}

export interface ProcessInfo {
  pid: number;
  ppid?: number;
  uid?: number;
  user?: string;
  gid?: number;
  group?: string;
  comm?: string;
  exe?: string | null;
  cmdline?: string[];
  cgroup?: string | null;
  unit?: string | null;
  container?: { id: string; runtime: string; pod?: string; name?: string; image?: string; pod_name?: string; pod_namespace?: string } | null;
  inode?: number;
  /** The network namespace (inode) of the socket, for a socket in another namespace than ct-attribute's. */
  netns?: number;
  start_time?: string;
  /** Login uid from audit records (`attribution.method` "audit"), when set. */
  auid?: number;
  /** Digest of boot id, pid and start time: one value per process instance (ECS process.entity_id). */
  entity_id?: string;
  /** The parent process, as it was when first seen (ECS process.parent.*). */
  parent?: ProcessRef;
  /** The parent's ancestors, nearest first (grandparent, ...), up to ct-attribute --ancestry. */
  ancestors?: ProcessRef[];
  /** Digest of the file /proc/PID/exe opens (ECS process.hash.sha256), or why there is none yet. */
  hash?: ExeHash;
  /** The executable was deleted (or replaced) after the process started it. */
  exe_deleted?: true;
  /** The executable is a memfd (fileless: memfd_create + execve). */
  exe_memfd?: true;
}

/** An ancestor of a flow's process. */
export interface ProcessRef {
  pid: number;
  comm?: string;
  exe?: string | null;
  cmdline?: string[];
  start_time?: string;
  entity_id?: string;
}

export interface ExeHash {
  /** Lower-case hex SHA-256 of the executable's content. */
  sha256?: string;
  /** True while the digest is being computed (later events of the process carry it). */
  pending?: true;
  /** Why it cannot be computed (e.g. "EACCES", "too-large"). */
  error?: string;
}

/** The name a flow's remote address was resolved from (ct-attribute, from `dns` records). */
export interface DnsName {
  /** The name the client asked for (the question). */
  name: string;
  /** The CNAME chain from the question to the address record's owner, in order. */
  cnames?: string[];
  /** Seconds between the answer and this event. */
  age: number;
  /** The server that answered. */
  server?: string;
}

export interface Attribution {
  method: string;
  ok: boolean;
  reason?: string;
  /** The socket's owner uid, when the socket was found but no process. */
  uid?: number;
  /** How many processes hold the socket, when more than one. */
  holders?: number;
  /** For a `fwd` flow: whether `process` is the end that opened it (`src`) or received it (`dst`). */
  side?: 'src' | 'dst';
  /** For a `fwd` flow not attributed: the namespace its address belongs to. */
  netns?: number;
}

export interface FlowEvent {
  ts: string;
  event: FlowEventKind;
  /** Present and true for entries listed by `ct-events --dump`. */
  dump?: boolean;
  id: number;
  family: Family;
  proto: Proto;
  src: string;
  sport?: number;
  dst: string;
  dport?: number;
  reply: Tuple;
  state?: string;
  status: string[];
  timeout?: number;
  mark?: number;
  zone?: number;
  community_id?: string;
  host?: string;
  counters?: { orig: Counters; reply: Counters };
  start?: string;
  stop?: string;
  labels?: number[];
  icmp?: Icmp;
  helper?: string;
  secmark?: number;
  use?: number;
  /** Attributes ctpipe does not decode, kept as `{type: hex}`. */
  unknown?: Record<string, string>;
  // Added by ct-attribute.
  direction?: 'out' | 'in' | 'local' | 'fwd';
  process?: ProcessInfo;
  peer?: ProcessInfo;
  attribution?: Attribution;
  /** The name the remote (`dst`) was resolved from by this flow's client. */
  dns?: DnsName;
}

export interface OverrunRecord {
  ts: string;
  event: 'overrun';
  lost: number;
  reason: string;
  host?: string;
}

/**
 * The counters of a flow still open, from ct-events' poll of the table
 * (`--counters-every`): conntrack sends counters only with a DESTROY. One per
 * flow open across two polls whose counters moved; ct-flows folds them into
 * its interim records, ct-top counts their bytes.
 */
export interface CountersRecord extends Pick<FlowEvent, 'ts' | 'id' | 'family' | 'proto' | 'src' | 'sport' | 'dst' | 'dport' | 'icmp' | 'state' | 'status' | 'host'> {
  event: 'counters';
  counters: { orig: Counters; reply: Counters };
  /** Kernel timestamp of the flow's start (nf_conntrack_timestamp). */
  start?: string;
}

export function isCountersRecord(r: { event?: unknown }): r is CountersRecord {
  return r.event === 'counters';
}

export interface StatsRecord {
  ts: string;
  event: 'stats';
  received: number;
  written: number;
  lost: number;
  queued: number;
  host?: string;
}

/**
 * ct-attribute's counts (--stats-interval): since it started, the flow
 * events answered, by method (`attribution.method`) and outcome (`ok`, or
 * the reason given), and which methods are live.
 */
export interface AttributionStatsRecord {
  ts: string;
  event: 'attribution-stats';
  /** Flow events attributed. */
  events: number;
  /** Of those, answered from flow memory (UPDATE/DESTROY of a flow whose NEW was answered). */
  cached: number;
  /** method -> outcome (`ok` or a reason) -> count. */
  answers: Record<string, Record<string, number>>;
  /** The methods, live or not (why, fix). */
  methods: { method: string; live: boolean; why?: string; fix?: string; detail?: string }[];
}

export type AnyRecord = FlowEvent | OverrunRecord | StatsRecord | AttributionStatsRecord | { ts?: string; event: string; [k: string]: unknown };

// ---------------------------------------------------------------- field paths

/**
 * Every dotted path of the contract, as templates and --fields name them:
 * flow events, what ct-attribute adds, ct-flows' records and the special
 * records, from the schema table (src/event/schema.ts). ct-format refuses a
 * placeholder naming no path listed here.
 */
export const FIELD_PATHS: readonly string[] = [...new Set(FIELDS.map((f) => f.path))];

/** Paths under which any key may come: arrays by index, kernel attributes kept undecoded. */
const OPEN_PATHS = FIELDS.filter((f) => f.open).map((f) => f.path);
const KNOWN = new Set(FIELD_PATHS);

/** Whether a dotted path names a field of the contract (or an element of an array field, a key of `unknown`). */
export function isContractPath(path: string): boolean {
  if (KNOWN.has(path)) return true;
  for (const open of OPEN_PATHS) if (path.startsWith(open + '.')) return true;
  return false;
}

/**
 * A DNS answer seen by ct-events (NFLOG on answers from port 53): which
 * addresses `name` resolved to, for the client at `client`/`cport`.
 */
export interface DnsRecord {
  ts: string;
  event: 'dns';
  proto: 'udp' | 'tcp';
  client: string;
  cport: number;
  server: string;
  sport: number;
  name: string;
  cnames?: string[];
  answers: { addr: string; ttl: number }[];
  /** Network namespace (inode) the answer was seen in: ct-events's. */
  netns?: number;
  host?: string;
}

export function isDnsRecord(r: { event?: unknown }): r is DnsRecord {
  return r.event === 'dns';
}


export function isFlowEvent(r: { event?: unknown }): r is FlowEvent {
  return r.event === 'new' || r.event === 'update' || r.event === 'destroy';
}

/** Why a flow record was written before its DESTROY: see `reason` in ct-event(5). */
export type FlowEndReason = 'interim' | 'end-of-input' | 'signal' | 'evicted' | 'id-reused';

/**
 * One connection from NEW to DESTROY, written by ct-flows: the flow event's
 * fields (tuples, process, community_id, ...) from its NEW, the final state,
 * status and counters, and its times.
 */
export interface FlowRecord extends Omit<FlowEvent, 'event' | 'timeout' | 'dump'> {
  event: 'flow';
  /** Set when the flow's first event was a `--dump` entry. */
  dump?: boolean;
  /** Seconds from start to stop; for a flow not finished, from start to ts. */
  duration?: number;
  /** True when the DESTROY was seen: stop is the flow's end. */
  finished: boolean;
  /** Why a record was written for a flow not finished. */
  reason?: FlowEndReason;
  /** True when the flow's NEW was not seen (begun before the input, or lost). */
  incomplete?: true;
}

export function isFlowRecord(r: { event?: unknown }): r is FlowRecord {
  return r.event === 'flow';
}

// Timestamps are formatted once per event (and twice more for a DESTROY with
// start/stop), so the text of a second ("YYYY-MM-DDTHH:MM:SS.") is kept in a
// small direct-mapped cache keyed by the second: a cache hit costs one
// integer division and a concatenation instead of BigInt arithmetic and a
// Date. Slot = second mod SLOTS; nowTs() hits the same slot for a whole
// second, and start/stop times of different seconds rarely collide.
const SLOTS = 256;
const slotSecond = new Float64Array(SLOTS).fill(-1);
const slotText: string[] = new Array<string>(SLOTS).fill('');

// "000" .. "999": the microseconds as two table lookups. Converting a new
// number to text each time would also push V8's number-to-string cache
// entries out (those of 0-255 that IPv4 addresses are made of, for one), and
// that cost ct-events more than the conversion itself.
const DIGITS3: string[] = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));

function secondText(sec: number): string {
  const i = sec % SLOTS;
  if (slotSecond[i] !== sec) {
    slotText[i] = new Date(sec * 1000).toISOString().slice(0, 20);
    slotSecond[i] = sec;
  }
  return slotText[i]!;
}

/** The general case (negative or beyond 2^53 microseconds): exact BigInt arithmetic. */
function isoMicrosBig(u: bigint): string {
  const ms = Number(u / 1000n);
  const iso = new Date(ms).toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  const micro = Number(u % 1000000n);
  return iso.slice(0, 20) + String(micro).padStart(6, '0') + 'Z';
}

/** ISO 8601 UTC with microseconds, from microseconds since the epoch. */
export function isoMicros(us: bigint | number): string {
  const n = typeof us === 'bigint' ? Number(us) : Math.round(us);
  // 0 .. 2^53 µs is 1970 to the year 2255: always a four-digit year, and every
  // value exact as a double.
  if (!(n >= 0 && n <= Number.MAX_SAFE_INTEGER)) return isoMicrosBig(typeof us === 'bigint' ? us : BigInt(n));
  const sec = Math.floor(n / 1e6);
  const micro = n - sec * 1e6;
  const milli = Math.floor(micro / 1000);
  return secondText(sec) + DIGITS3[milli]! + DIGITS3[micro - milli * 1000]! + 'Z';
}

/** ISO 8601 UTC with microseconds, from nanoseconds since the epoch (kernel timestamps). */
export function isoNanos(ns: bigint): string {
  return isoMicros(ns / 1000n);
}

/**
 * A wall clock in microseconds since the epoch, with the monotonic clock's
 * resolution: `mono()` (ms, fractional) plus an offset to the wall clock
 * `wall()` (ms, whole). The offset is taken again whenever the two part by
 * more than `slackMs`, so a step of the system clock (NTP's first sync after
 * boot, an admin's `date -s`) shows in the very next stamp instead of never:
 * the monotonic clock alone would stay on the time the process started with,
 * apart from the kernel's own stamps (ct-events' C path reads
 * CLOCK_REALTIME). Within the slack the stamps keep the monotonic clock's
 * microseconds and never go back.
 */
export function wallClock(wall: () => number = Date.now, mono: () => number = () => performance.now(), slackMs = 2): () => number {
  let offset = performance.timeOrigin;
  return () => {
    const m = mono();
    const w = wall();
    if (Math.abs(w - (offset + m)) > slackMs) offset = w - m;
    return Math.round((offset + m) * 1000);
  };
}

/** The current wall-clock time in microseconds since the epoch (see wallClock). */
export const nowMicros = wallClock();

/** The current time as an event `ts`: wall clock, microsecond resolution. */
export function nowTs(): string {
  return isoMicros(nowMicros());
}
