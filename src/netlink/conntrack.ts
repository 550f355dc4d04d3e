// ctnetlink decoding: netlink datagrams from NETLINK_NETFILTER (subsystem
// CTNETLINK) into ctpipe events. Follows include/uapi/linux/netfilter/
// nfnetlink_conntrack.h, nfnetlink.h and nf_conntrack_common.h. Attribute
// tables are data: number -> kernel name -> field -> decoder. Pure functions
// over Buffers; no sockets, no process access.
import { endianness } from 'node:os';
import { ipText } from '../ip.js';
import { communityId } from '../community-id.js';
import { isoMicros, isoNanos, type FlowEvent, type FlowEventKind, type Tuple, type Family } from '../event.js';

const LE = endianness() === 'LE';
// Byte arithmetic rather than Buffer#readUInt*: these run ~40 times per
// message, and callers have already checked the bounds (walk() and
// splitMessages() never read past the attribute or message they checked).
const u16h = LE ? (b: Buffer, o: number) => b[o]! | (b[o + 1]! << 8) : (b: Buffer, o: number) => (b[o]! << 8) | b[o + 1]!;
const u32h = LE
  ? (b: Buffer, o: number) => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16)) + b[o + 3]! * 0x1000000
  : (b: Buffer, o: number) => b[o]! * 0x1000000 + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);
const u16be = (b: Buffer, o: number) => (b[o]! << 8) | b[o + 1]!;
const u32be = (b: Buffer, o: number) => b[o]! * 0x1000000 + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);

export class DecodeError extends Error {}

// linux/netlink.h
export const NLMSG_HDRLEN = 16;
export const NLMSG_NOOP = 1, NLMSG_ERROR = 2, NLMSG_DONE = 3, NLMSG_OVERRUN = 4;
export const NLM_F_REQUEST = 0x1, NLM_F_MULTI = 0x2, NLM_F_ACK = 0x4, NLM_F_DUMP = 0x300;
export const NLM_F_EXCL = 0x200, NLM_F_CREATE = 0x400;
const NLA_TYPE_MASK = 0x3fff; // drops NLA_F_NESTED and NLA_F_NET_BYTEORDER

// linux/netfilter/nfnetlink.h, nfnetlink_compat.h
export const NFNL_SUBSYS_CTNETLINK = 1;
export const NFNLGRP_CONNTRACK_NEW = 1, NFNLGRP_CONNTRACK_UPDATE = 2, NFNLGRP_CONNTRACK_DESTROY = 3;
// nfnetlink_conntrack.h: enum cntl_msg_types
export const IPCTNL_MSG_CT_NEW = 0, IPCTNL_MSG_CT_GET = 1, IPCTNL_MSG_CT_DELETE = 2;

export const AF_INET = 2, AF_INET6 = 10;

/**
 * Unsigned 64-bit big-endian (kernel counters) as a JS number: the two
 * halves in double arithmetic, which rounds once, as Number(bigint) does,
 * without allocating a BigInt.
 */
export function u64be(b: Buffer, o: number): number {
  return u32be(b, o) * 0x100000000 + u32be(b, o + 4);
}

/**
 * A 64-bit big-endian nanosecond count (CTA_TIMESTAMP_*) as whole
 * microseconds, exact: hi * 2^32 + lo is split as (1000a + r) * 2^32 + lo so
 * that no intermediate exceeds 2^53. -1 when the result would not be exact
 * (after the year 2255); the caller falls back to BigInt then.
 */
function nanosToMicros(b: Buffer, o: number): number {
  const hi = u32be(b, o), lo = u32be(b, o + 4);
  const a = Math.floor(hi / 1000), r = hi - a * 1000;
  const us = a * 0x100000000 + Math.floor((r * 0x100000000 + lo) / 1000);
  return us <= Number.MAX_SAFE_INTEGER ? us : -1;
}

export const PROTO_NAMES: Record<number, string> = {
  1: 'icmp', 2: 'igmp', 6: 'tcp', 17: 'udp', 33: 'dccp', 47: 'gre', 58: 'icmpv6', 132: 'sctp', 136: 'udplite',
};
export const PROTO_NUMBERS: Record<string, number> = Object.fromEntries(
  Object.entries(PROTO_NAMES).map(([n, name]) => [name, Number(n)]),
);

// nf_conntrack_tcp.h: enum tcp_conntrack
const TCP_STATES = ['NONE', 'SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSE_WAIT', 'LAST_ACK', 'TIME_WAIT', 'CLOSE', 'SYN_SENT2'];
// nf_conntrack_sctp.h: enum sctp_conntrack
const SCTP_STATES = ['NONE', 'CLOSED', 'COOKIE_WAIT', 'COOKIE_ECHOED', 'ESTABLISHED', 'SHUTDOWN_SENT', 'SHUTDOWN_RECD', 'SHUTDOWN_ACK_SENT', 'HEARTBEAT_SENT', 'HEARTBEAT_ACKED'];
// nf_conntrack_dccp.h: enum ct_dccp_states
const DCCP_STATES = ['NONE', 'REQUEST', 'RESPOND', 'PARTOPEN', 'OPEN', 'CLOSEREQ', 'CLOSING', 'TIMEWAIT', 'IGNORE', 'INVALID'];
// nf_conntrack_common.h: enum ip_conntrack_status, bit -> name
export const STATUS_BITS = [
  'EXPECTED', 'SEEN_REPLY', 'ASSURED', 'CONFIRMED', 'SRC_NAT', 'DST_NAT', 'SEQ_ADJUST', 'SRC_NAT_DONE',
  'DST_NAT_DONE', 'DYING', 'FIXED_TIMEOUT', 'TEMPLATE', 'NAT_CLASH', 'HELPER', 'OFFLOAD', 'HW_OFFLOAD',
];

/**
 * Scratch state while decoding one message. Every field starts at -1
 * ("absent": no kernel value is negative), so that each object keeps one
 * shape; addresses are kept as offsets into the datagram, for the text and
 * for community_id.
 */
interface RawTuple {
  src: number; srcLen: number; dst: number; dstLen: number; sport: number; dport: number; proto: number;
  icmpType: number; icmpCode: number; icmpId: number; zone: number;
}
const rawTuple = (): RawTuple => ({
  src: -1, srcLen: 0, dst: -1, dstLen: 0, sport: -1, dport: -1, proto: -1, icmpType: -1, icmpCode: -1, icmpId: -1, zone: -1,
});
interface Counter { packets: number; bytes: number }
/** Everything one CTA_* pass collects before it becomes an event. */
interface Raw {
  orig: RawTuple; reply: RawTuple; corig: Counter; creply: Counter;
  status: number; timeout: number; mark: number; id: number; zone: number; use: number; secmark: number;
  // CTA_PROTOINFO_{TCP,SCTP,DCCP}_STATE
  tcp: number; sctp: number; dccp: number;
  // CTA_TIMESTAMP_*, CTA_TIMESTAMP_EVENT: microseconds (-2: too large for a double, see stamp())
  start: number; stop: number; eventTs: number;
  startBig: bigint | null; stopBig: bigint | null;
  helper: string | null; secctx: string | null; labels: number[] | null;
}
interface Ctx {
  /** Names of the nests being walked, for error messages and `unknown` keys. */
  path: string[];
  unknown: Record<string, string> | null;
}

// The decoder gets its own spec so that a nest can name itself in the path.
type Decoder<T> = (b: Buffer, s: number, e: number, target: T, ctx: Ctx, spec: AttrSpec<T>) => void;
interface AttrSpec<T> { name: string; decode: Decoder<T>; min?: number }
type AttrTable<T> = Record<number, AttrSpec<T>>;

function walk<T>(table: AttrTable<T>, b: Buffer, s: number, e: number, target: T, ctx: Ctx): void {
  while (s + 4 <= e) {
    const len = u16h(b, s);
    const type = u16h(b, s + 2) & NLA_TYPE_MASK;
    if (len < 4 || s + len > e) throw new DecodeError(`${ctx.path.join('.') || 'message'}: attribute ${type} length ${len} runs past the end (${e - s} bytes left)`);
    const spec = table[type];
    if (spec) {
      if (spec.min && len - 4 < spec.min) throw new DecodeError(`${spec.name}: ${len - 4} bytes, expected at least ${spec.min}`);
      spec.decode(b, s + 4, s + len, target, ctx, spec);
    } else {
      // Kept, not dropped: a newer kernel's attribute is still visible
      // downstream. The key is the full path, so that the same unknown
      // attribute under the orig and the reply tuple gets two keys, not one.
      const path = ctx.path.join('.');
      (ctx.unknown ??= {})[`${path ? path + '.' : ''}${type}`] = b.toString('hex', s + 4, s + len);
    }
    s += (len + 3) & ~3;
  }
  if (s < e && e - s < 4 && s !== e) {
    // Trailing bytes smaller than an attribute header: the message is cut.
    throw new DecodeError(`${ctx.path.join('.') || 'message'}: ${e - s} trailing bytes`);
  }
}

const nested = <T, U>(table: AttrTable<U>, pick: (t: T) => U): Decoder<T> =>
  (b, s, e, t, ctx, spec) => {
    ctx.path.push(spec.name);
    walk(table, b, s, e, pick(t), ctx);
    ctx.path.pop();
  };
const skip: Decoder<any> = () => {};

// CTA_IP_*
const IP_TABLE: AttrTable<RawTuple> = {
  1: { name: 'CTA_IP_V4_SRC', min: 4, decode: (_b, s, _e, t) => { t.src = s; t.srcLen = 4; } },
  2: { name: 'CTA_IP_V4_DST', min: 4, decode: (_b, s, _e, t) => { t.dst = s; t.dstLen = 4; } },
  3: { name: 'CTA_IP_V6_SRC', min: 16, decode: (_b, s, _e, t) => { t.src = s; t.srcLen = 16; } },
  4: { name: 'CTA_IP_V6_DST', min: 16, decode: (_b, s, _e, t) => { t.dst = s; t.dstLen = 16; } },
};
// CTA_PROTO_*
const PROTO_TABLE: AttrTable<RawTuple> = {
  1: { name: 'CTA_PROTO_NUM', min: 1, decode: (b, s, _e, t) => { t.proto = b[s]!; } },
  2: { name: 'CTA_PROTO_SRC_PORT', min: 2, decode: (b, s, _e, t) => { t.sport = u16be(b, s); } },
  3: { name: 'CTA_PROTO_DST_PORT', min: 2, decode: (b, s, _e, t) => { t.dport = u16be(b, s); } },
  4: { name: 'CTA_PROTO_ICMP_ID', min: 2, decode: (b, s, _e, t) => { t.icmpId = u16be(b, s); } },
  5: { name: 'CTA_PROTO_ICMP_TYPE', min: 1, decode: (b, s, _e, t) => { t.icmpType = b[s]!; } },
  6: { name: 'CTA_PROTO_ICMP_CODE', min: 1, decode: (b, s, _e, t) => { t.icmpCode = b[s]!; } },
  7: { name: 'CTA_PROTO_ICMPV6_ID', min: 2, decode: (b, s, _e, t) => { t.icmpId = u16be(b, s); } },
  8: { name: 'CTA_PROTO_ICMPV6_TYPE', min: 1, decode: (b, s, _e, t) => { t.icmpType = b[s]!; } },
  9: { name: 'CTA_PROTO_ICMPV6_CODE', min: 1, decode: (b, s, _e, t) => { t.icmpCode = b[s]!; } },
};
// CTA_TUPLE_*
const TUPLE_TABLE: AttrTable<RawTuple> = {
  1: { name: 'CTA_TUPLE_IP', decode: nested(IP_TABLE, (t) => t) },
  2: { name: 'CTA_TUPLE_PROTO', decode: nested(PROTO_TABLE, (t) => t) },
  3: { name: 'CTA_TUPLE_ZONE', min: 2, decode: (b, s, _e, t) => { t.zone = u16be(b, s); } },
};

const TCP_TABLE: AttrTable<Raw> = {
  1: { name: 'CTA_PROTOINFO_TCP_STATE', min: 1, decode: (b, s, _e, r) => { r.tcp = b[s]!; } },
  2: { name: 'CTA_PROTOINFO_TCP_WSCALE_ORIGINAL', decode: skip },
  3: { name: 'CTA_PROTOINFO_TCP_WSCALE_REPLY', decode: skip },
  4: { name: 'CTA_PROTOINFO_TCP_FLAGS_ORIGINAL', decode: skip },
  5: { name: 'CTA_PROTOINFO_TCP_FLAGS_REPLY', decode: skip },
};
const SCTP_TABLE: AttrTable<Raw> = {
  1: { name: 'CTA_PROTOINFO_SCTP_STATE', min: 1, decode: (b, s, _e, r) => { r.sctp = b[s]!; } },
  2: { name: 'CTA_PROTOINFO_SCTP_VTAG_ORIGINAL', decode: skip },
  3: { name: 'CTA_PROTOINFO_SCTP_VTAG_REPLY', decode: skip },
};
const DCCP_TABLE: AttrTable<Raw> = {
  1: { name: 'CTA_PROTOINFO_DCCP_STATE', min: 1, decode: (b, s, _e, r) => { r.dccp = b[s]!; } },
  2: { name: 'CTA_PROTOINFO_DCCP_ROLE', decode: skip },
  3: { name: 'CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ', decode: skip },
  4: { name: 'CTA_PROTOINFO_DCCP_PAD', decode: skip },
};
const PROTOINFO_TABLE: AttrTable<Raw> = {
  1: { name: 'CTA_PROTOINFO_TCP', decode: nested(TCP_TABLE, (r) => r) },
  2: { name: 'CTA_PROTOINFO_DCCP', decode: nested(DCCP_TABLE, (r) => r) },
  3: { name: 'CTA_PROTOINFO_SCTP', decode: nested(SCTP_TABLE, (r) => r) },
};

// CTA_COUNTERS_*: the 64-bit pair is what current kernels send; 32-bit ones are legacy.
const COUNTERS_TABLE: AttrTable<Counter> = {
  1: { name: 'CTA_COUNTERS_PACKETS', min: 8, decode: (b, s, _e, t) => { t.packets = u64be(b, s); } },
  2: { name: 'CTA_COUNTERS_BYTES', min: 8, decode: (b, s, _e, t) => { t.bytes = u64be(b, s); } },
  3: { name: 'CTA_COUNTERS32_PACKETS', min: 4, decode: (b, s, _e, t) => { t.packets = u32be(b, s); } },
  4: { name: 'CTA_COUNTERS32_BYTES', min: 4, decode: (b, s, _e, t) => { t.bytes = u32be(b, s); } },
  5: { name: 'CTA_COUNTERS_PAD', decode: skip },
};
const TIMESTAMP_TABLE: AttrTable<Raw> = {
  1: { name: 'CTA_TIMESTAMP_START', min: 8, decode: (b, s, _e, r) => { r.start = stamp(b, s); if (r.start === -2) r.startBig = b.readBigUInt64BE(s); } },
  2: { name: 'CTA_TIMESTAMP_STOP', min: 8, decode: (b, s, _e, r) => { r.stop = stamp(b, s); if (r.stop === -2) r.stopBig = b.readBigUInt64BE(s); } },
  3: { name: 'CTA_TIMESTAMP_PAD', decode: skip },
};
const HELP_TABLE: AttrTable<Raw> = {
  1: { name: 'CTA_HELP_NAME', decode: (b, s, e, r) => { r.helper = cString(b, s, e); } },
  2: { name: 'CTA_HELP_INFO', decode: skip },
};

/** Microseconds of a kernel nanosecond stamp; -1 for 0, -2 when only BigInt holds it exactly. */
function stamp(b: Buffer, s: number): number {
  // A zero stamp is no stamp (the event leaves the field out, as for an absent one).
  if (u32be(b, s) === 0 && u32be(b, s + 4) === 0) return -1;
  const us = nanosToMicros(b, s);
  return us < 0 ? -2 : us;
}

function cString(b: Buffer, s: number, e: number): string {
  const z = b.indexOf(0, s);
  return b.toString('utf8', s, z >= 0 && z < e ? z : e);
}

// CTA_* (enum ctattr_type)
const CTA_TABLE: AttrTable<Raw> = {
  1: { name: 'CTA_TUPLE_ORIG', decode: nested(TUPLE_TABLE, (r) => r.orig) },
  2: { name: 'CTA_TUPLE_REPLY', decode: nested(TUPLE_TABLE, (r) => r.reply) },
  3: { name: 'CTA_STATUS', min: 4, decode: (b, s, _e, r) => { r.status = u32be(b, s); } },
  4: { name: 'CTA_PROTOINFO', decode: nested(PROTOINFO_TABLE, (r) => r) },
  5: { name: 'CTA_HELP', decode: nested(HELP_TABLE, (r) => r) },
  6: { name: 'CTA_NAT_SRC', decode: skip },
  7: { name: 'CTA_TIMEOUT', min: 4, decode: (b, s, _e, r) => { r.timeout = u32be(b, s); } },
  8: { name: 'CTA_MARK', min: 4, decode: (b, s, _e, r) => { r.mark = u32be(b, s); } },
  9: { name: 'CTA_COUNTERS_ORIG', decode: nested(COUNTERS_TABLE, (r) => r.corig) },
  10: { name: 'CTA_COUNTERS_REPLY', decode: nested(COUNTERS_TABLE, (r) => r.creply) },
  11: { name: 'CTA_USE', min: 4, decode: (b, s, _e, r) => { r.use = u32be(b, s); } },
  12: { name: 'CTA_ID', min: 4, decode: (b, s, _e, r) => { r.id = u32be(b, s); } },
  13: { name: 'CTA_NAT_DST', decode: skip },
  14: { name: 'CTA_TUPLE_MASTER', decode: skip },
  15: { name: 'CTA_SEQ_ADJ_ORIG', decode: skip },
  16: { name: 'CTA_SEQ_ADJ_REPLY', decode: skip },
  17: { name: 'CTA_SECMARK', min: 4, decode: (b, s, _e, r) => { r.secmark = u32be(b, s); } },
  18: { name: 'CTA_ZONE', min: 2, decode: (b, s, _e, r) => { r.zone = u16be(b, s); } },
  19: { name: 'CTA_SECCTX', decode: (b, s, e, r) => { r.secctx = b.toString('hex', s, e); } },
  20: { name: 'CTA_TIMESTAMP', decode: nested(TIMESTAMP_TABLE, (r) => r) },
  21: { name: 'CTA_MARK_MASK', decode: skip },
  22: { name: 'CTA_LABELS', decode: (b, s, e, r) => { r.labels = bitList(b, s, e); } },
  23: { name: 'CTA_LABELS_MASK', decode: skip },
  24: { name: 'CTA_SYNPROXY', decode: skip },
  25: { name: 'CTA_FILTER', decode: skip },
  26: { name: 'CTA_STATUS_MASK', decode: skip },
  27: { name: 'CTA_TIMESTAMP_EVENT', min: 8, decode: (b, s, _e, r) => { r.eventTs = stamp(b, s); } },
};

/** CTA_LABELS is a bitmap of host-order longs; bit n set means label n. */
function bitList(b: Buffer, s: number, e: number): number[] {
  const out: number[] = [];
  for (let word = 0; s + 4 * word + 4 <= e; word++) {
    const v = u32h(b, s + 4 * word);
    if (v === 0) continue;
    for (let bit = 0; bit < 32; bit++) if (v & (1 << bit)) out.push(word * 32 + bit);
  }
  return out;
}

/** Names of the set bits, lowest first; bits without a name are `BIT<n>`. */
function statusNames(v: number): string[] {
  const out: string[] = [];
  // Only the set bits: the lowest one is x & -x (in int32 arithmetic).
  for (let x = v | 0; x !== 0; ) {
    const low = x & -x;
    const i = 31 - Math.clz32(low);
    out.push(i < STATUS_BITS.length ? STATUS_BITS[i]! : `BIT${i}`);
    x ^= low;
  }
  return out;
}

/** The text of a tuple; the caller has checked that it has addresses. */
function tupleOut(b: Buffer, t: RawTuple, path: string): Tuple {
  if (t.srcLen !== t.dstLen) throw new DecodeError(`${path}: source and destination addresses of different families`);
  const src = ipText(b, t.src, t.srcLen);
  const dst = ipText(b, t.dst, t.dstLen);
  return t.sport !== -1 ? { src, sport: t.sport, dst, dport: t.dport !== -1 ? t.dport : undefined } : { src, dst };
}

// Address bytes for communityId(), which copies them before it returns: one
// pair of buffers serves every call instead of four views per message.
const cidSrc4 = Buffer.alloc(4), cidDst4 = Buffer.alloc(4), cidSrc16 = Buffer.alloc(16), cidDst16 = Buffer.alloc(16);
function addrBytes(b: Buffer, off: number, len: number, into: Buffer): Buffer {
  for (let i = 0; i < len; i++) into[i] = b[off + i]!;
  return into;
}

function stateName(r: Raw): string | undefined {
  if (r.tcp !== -1) return TCP_STATES[r.tcp] ?? String(r.tcp);
  if (r.sctp !== -1) return SCTP_STATES[r.sctp] ?? String(r.sctp);
  if (r.dccp !== -1) return DCCP_STATES[r.dccp] ?? String(r.dccp);
  return undefined;
}

export interface DecodeOptions {
  /** Event time, when the caller has one (receive time); default: now. */
  ts: string;
  host?: string;
  /** Compute community_id (default true). */
  communityId?: boolean;
}

export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** Payload bounds within the datagram. */
  start: number;
  end: number;
}

/** Split a datagram into netlink messages; throws DecodeError on a cut or malformed header. */
export function splitMessages(buf: Buffer): NlMessage[] {
  const out: NlMessage[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < NLMSG_HDRLEN) throw new DecodeError(`truncated netlink header: ${buf.length - off} bytes at offset ${off}`);
    const len = u32h(buf, off);
    if (len < NLMSG_HDRLEN) throw new DecodeError(`netlink message length ${len} at offset ${off} is shorter than its header`);
    if (off + len > buf.length) throw new DecodeError(`truncated netlink message: length ${len}, ${buf.length - off} bytes received`);
    out.push({ type: u16h(buf, off + 4), flags: u16h(buf, off + 6), seq: u32h(buf, off + 8), pid: u32h(buf, off + 12), start: off + NLMSG_HDRLEN, end: off + len });
    off += (len + 3) & ~3;
  }
  return out;
}

/**
 * Decode one ctnetlink conntrack message (NEW or DELETE) into an event.
 * Returns null for messages of other subsystems or types.
 */
export function decodeConntrack(buf: Buffer, m: NlMessage, opts: DecodeOptions): FlowEvent | null {
  if (m.type >> 8 !== NFNL_SUBSYS_CTNETLINK) return null;
  const msg = m.type & 0xff;
  let kind: FlowEventKind;
  if (msg === IPCTNL_MSG_CT_DELETE) kind = 'destroy';
  else if (msg === IPCTNL_MSG_CT_NEW) kind = m.flags & (NLM_F_CREATE | NLM_F_EXCL) ? 'new' : 'update';
  else return null;
  if (m.end - m.start < 4) throw new DecodeError(`ctnetlink message of ${m.end - m.start} bytes has no nfgenmsg header`);
  const nfFamily = buf[m.start];
  const family: Family | null = nfFamily === AF_INET ? 'ipv4' : nfFamily === AF_INET6 ? 'ipv6' : null;
  const raw: Raw = {
    orig: rawTuple(), reply: rawTuple(), corig: { packets: -1, bytes: -1 }, creply: { packets: -1, bytes: -1 },
    status: -1, timeout: -1, mark: -1, id: -1, zone: -1, use: -1, secmark: -1, tcp: -1, sctp: -1, dccp: -1,
    start: -1, stop: -1, eventTs: -1, startBig: null, stopBig: null, helper: null, secctx: null, labels: null,
  };
  const ctx: Ctx = { path: [], unknown: null };
  walk(CTA_TABLE, buf, m.start + 4, m.end, raw, ctx);
  const o = raw.orig;
  if (o.src === -1) throw new DecodeError('conntrack message without CTA_TUPLE_ORIG addresses');
  if (raw.id === -1) throw new DecodeError('conntrack message without CTA_ID');
  if (o.dst === -1) throw new DecodeError('CTA_TUPLE_ORIG: no addresses');
  const orig = tupleOut(buf, o, 'CTA_TUPLE_ORIG');
  const protoNum = o.proto !== -1 ? o.proto : 0;
  const r = raw.reply;
  let reply: Tuple;
  if (r.src !== -1) {
    if (r.dst === -1) throw new DecodeError('CTA_TUPLE_REPLY: no addresses');
    reply = tupleOut(buf, r, 'CTA_TUPLE_REPLY');
  } else {
    reply = orig.sport !== undefined ? { src: orig.dst, sport: orig.dport, dst: orig.src, dport: orig.sport } : { src: orig.dst, dst: orig.src };
  }
  // Built whole, in the order of ct-event(5), rather than by deleting the
  // port fields afterwards (a delete turns the object into a slow dictionary).
  const ev: FlowEvent = orig.sport !== undefined
    ? {
      ts: opts.ts, event: kind, id: raw.id, family: family ?? (o.srcLen === 4 ? 'ipv4' : 'ipv6'),
      proto: PROTO_NAMES[protoNum] ?? String(protoNum),
      src: orig.src, sport: orig.sport, dst: orig.dst, dport: orig.dport, reply,
    } as FlowEvent
    : {
      ts: opts.ts, event: kind, id: raw.id, family: family ?? (o.srcLen === 4 ? 'ipv4' : 'ipv6'),
      proto: PROTO_NAMES[protoNum] ?? String(protoNum),
      src: orig.src, dst: orig.dst, reply,
    } as FlowEvent;
  const state = stateName(raw);
  if (state !== undefined) ev.state = state;
  ev.status = raw.status !== -1 ? statusNames(raw.status) : [];
  if (raw.timeout !== -1) ev.timeout = raw.timeout;
  ev.mark = raw.mark !== -1 ? raw.mark : 0;
  ev.zone = raw.zone !== -1 ? raw.zone : o.zone !== -1 ? o.zone : 0;
  const icmp = o.icmpType !== -1;
  if (icmp) {
    ev.icmp = { type: o.icmpType, code: o.icmpCode !== -1 ? o.icmpCode : 0, id: o.icmpId !== -1 ? o.icmpId : 0 };
  }
  if (opts.communityId !== false) {
    const v4 = o.srcLen === 4;
    ev.community_id = communityId(protoNum,
      addrBytes(buf, o.src, o.srcLen, v4 ? cidSrc4 : cidSrc16), addrBytes(buf, o.dst, o.dstLen, v4 ? cidDst4 : cidDst16),
      icmp ? o.icmpType : (o.sport !== -1 ? o.sport : 0), icmp ? (o.icmpCode !== -1 ? o.icmpCode : 0) : (o.dport !== -1 ? o.dport : 0));
  }
  if (opts.host !== undefined) ev.host = opts.host;
  const co = raw.corig, cr = raw.creply;
  if (co.packets !== -1 || cr.packets !== -1) {
    ev.counters = {
      orig: { packets: co.packets !== -1 ? co.packets : 0, bytes: co.bytes !== -1 ? co.bytes : 0 },
      reply: { packets: cr.packets !== -1 ? cr.packets : 0, bytes: cr.bytes !== -1 ? cr.bytes : 0 },
    };
  }
  if (raw.start !== -1) ev.start = raw.start === -2 ? isoNanos(raw.startBig!) : isoMicros(raw.start);
  if (raw.stop !== -1) ev.stop = raw.stop === -2 ? isoNanos(raw.stopBig!) : isoMicros(raw.stop);
  if (raw.labels && raw.labels.length) ev.labels = raw.labels;
  if (raw.helper) ev.helper = raw.helper;
  if (raw.secmark > 0) ev.secmark = raw.secmark;
  if (raw.secctx) (ev as any).secctx = raw.secctx;
  if (ctx.unknown) ev.unknown = ctx.unknown;
  return ev;
}

/** The netlink error code carried by an NLMSG_ERROR message (0 is an ACK). */
export function nlError(buf: Buffer, m: NlMessage): number {
  if (m.end - m.start < 4) throw new DecodeError('truncated NLMSG_ERROR');
  return LE ? buf.readInt32LE(m.start) : buf.readInt32BE(m.start);
}

/** Build a netlink request: header + nfgenmsg + optional attributes. */
export function buildRequest(type: number, flags: number, seq: number, family: number, attrs: Buffer = Buffer.alloc(0)): Buffer {
  const len = NLMSG_HDRLEN + 4 + attrs.length;
  const b = Buffer.alloc(len);
  if (LE) {
    b.writeUInt32LE(len, 0); b.writeUInt16LE(type, 4); b.writeUInt16LE(flags, 6); b.writeUInt32LE(seq, 8); b.writeUInt32LE(0, 12);
  } else {
    b.writeUInt32BE(len, 0); b.writeUInt16BE(type, 4); b.writeUInt16BE(flags, 6); b.writeUInt32BE(seq, 8); b.writeUInt32BE(0, 12);
  }
  b[16] = family; b[17] = 0; b.writeUInt16BE(0, 18);
  attrs.copy(b, 20);
  return b;
}
