// ctnetlink decoding: netlink datagrams from NETLINK_NETFILTER (subsystem
// CTNETLINK) into ctpipe events. Follows include/uapi/linux/netfilter/
// nfnetlink_conntrack.h, nfnetlink.h and nf_conntrack_common.h. Attribute
// tables are data: number -> kernel name -> field -> decoder. Pure functions
// over Buffers; no sockets, no process access.
import { endianness } from 'node:os';
import { ipText } from '../ip.js';
import { communityId } from '../community-id.js';
import { BoundedMap } from '../lru.js';
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

// Decoding has two steps. walk() goes over the attributes with the tables
// below and stores what each one holds in a slot of R, a scratch array of
// numbers (values, or offsets into the datagram for addresses, strings and
// stamps); then decodeConntrack() builds the event from the slots. The
// tables say, for each attribute number, its kernel name, its kind and its
// slot: data, read by one switch, rather than a decoding function each.

// Slots of a tuple (CTA_TUPLE_*), relative to the tuple's first slot.
const T_SRC = 0, T_SRC_LEN = 1, T_DST = 2, T_DST_LEN = 3, T_SPORT = 4, T_DPORT = 5, T_PROTO = 6;
const T_ICMP_TYPE = 7, T_ICMP_CODE = 8, T_ICMP_ID = 9, T_ZONE = 10, TUPLE_SLOTS = 11;
// Slots of a counter pair (CTA_COUNTERS_*), relative likewise.
const C_PACKETS = 0, C_BYTES = 1;
// The message's slots.
const ORIG = 0, REPLY = ORIG + TUPLE_SLOTS, CORIG = REPLY + TUPLE_SLOTS, CREPLY = CORIG + 2;
const STATUS = CREPLY + 2, TIMEOUT = STATUS + 1, MARK = STATUS + 2, ID = STATUS + 3, ZONE = STATUS + 4, USE = STATUS + 5;
const SECMARK = STATUS + 6, TCP_STATE = STATUS + 7, SCTP_STATE = STATUS + 8, DCCP_STATE = STATUS + 9;
// Offsets of the 8-byte stamps; [start, end) of HELPER, SECCTX and LABELS.
const START = STATUS + 10, STOP = STATUS + 11, EVENT_TS = STATUS + 12, HELPER = STATUS + 13, SECCTX = STATUS + 15, LABELS = STATUS + 17;
const SLOTS = LABELS + 2;

/**
 * The scratch slots: -1 is "absent" (no kernel value, offset or length is
 * negative). One array serves every message: decoding is synchronous and
 * calls nothing that could decode in turn.
 */
const R = new Float64Array(SLOTS);

// Kinds of attribute.
const SKIP = 0, U8 = 1, U16 = 2, U32 = 3, U64 = 4;
/** An address of `size` bytes: its offset to the slot, its size to the next. */
const ADDR = 5;
/** A value read later (an 8-byte stamp): its offset to the slot. */
const AT = 6;
/** A string or bitmap: its start to the slot, its end to the next. */
const SPAN = 7;
/** A nest: its attributes, by `table`, into slots from this slot (relative) on. */
const NEST = 8;

interface AttrSpec { name: string; kind: number; slot: number; min: number; size: number; table: AttrTable | null }
/** Specs by attribute type, written as an object literal; walk() reads it as a dense array. */
type AttrTable = Array<AttrSpec | null>;
const attrs = (specs: Record<number, AttrSpec>): AttrTable => {
  const out: AttrTable = new Array(Math.max(...Object.keys(specs).map(Number)) + 1).fill(null);
  for (const [type, a] of Object.entries(specs)) out[Number(type)] = a;
  return out;
};

const spec = (name: string, kind: number, slot: number, min: number, size = 0, table: AttrTable | null = null): AttrSpec =>
  ({ name, kind, slot, min, size, table });
const skip = (name: string) => spec(name, SKIP, 0, 0);
const u8 = (name: string, slot: number) => spec(name, U8, slot, 1);
const u16 = (name: string, slot: number) => spec(name, U16, slot, 2);
const u32 = (name: string, slot: number) => spec(name, U32, slot, 4);
const u64 = (name: string, slot: number) => spec(name, U64, slot, 8);
const addr = (name: string, slot: number, size: number) => spec(name, ADDR, slot, size, size);
const at = (name: string, slot: number, min: number) => spec(name, AT, slot, min);
const span = (name: string, slot: number) => spec(name, SPAN, slot, 0);
const nest = (name: string, table: AttrTable, slot = 0) => spec(name, NEST, slot, 0, 0, table);

// CTA_IP_*
const IP_TABLE = attrs({
  1: addr('CTA_IP_V4_SRC', T_SRC, 4),
  2: addr('CTA_IP_V4_DST', T_DST, 4),
  3: addr('CTA_IP_V6_SRC', T_SRC, 16),
  4: addr('CTA_IP_V6_DST', T_DST, 16),
});
// CTA_PROTO_*
const PROTO_TABLE = attrs({
  1: u8('CTA_PROTO_NUM', T_PROTO),
  2: u16('CTA_PROTO_SRC_PORT', T_SPORT),
  3: u16('CTA_PROTO_DST_PORT', T_DPORT),
  4: u16('CTA_PROTO_ICMP_ID', T_ICMP_ID),
  5: u8('CTA_PROTO_ICMP_TYPE', T_ICMP_TYPE),
  6: u8('CTA_PROTO_ICMP_CODE', T_ICMP_CODE),
  7: u16('CTA_PROTO_ICMPV6_ID', T_ICMP_ID),
  8: u8('CTA_PROTO_ICMPV6_TYPE', T_ICMP_TYPE),
  9: u8('CTA_PROTO_ICMPV6_CODE', T_ICMP_CODE),
});
// CTA_TUPLE_*
const TUPLE_TABLE = attrs({
  1: nest('CTA_TUPLE_IP', IP_TABLE),
  2: nest('CTA_TUPLE_PROTO', PROTO_TABLE),
  3: u16('CTA_TUPLE_ZONE', T_ZONE),
});

// CTA_PROTOINFO_*
const TCP_TABLE = attrs({
  1: u8('CTA_PROTOINFO_TCP_STATE', TCP_STATE),
  2: skip('CTA_PROTOINFO_TCP_WSCALE_ORIGINAL'),
  3: skip('CTA_PROTOINFO_TCP_WSCALE_REPLY'),
  4: skip('CTA_PROTOINFO_TCP_FLAGS_ORIGINAL'),
  5: skip('CTA_PROTOINFO_TCP_FLAGS_REPLY'),
});
const SCTP_TABLE = attrs({
  1: u8('CTA_PROTOINFO_SCTP_STATE', SCTP_STATE),
  2: skip('CTA_PROTOINFO_SCTP_VTAG_ORIGINAL'),
  3: skip('CTA_PROTOINFO_SCTP_VTAG_REPLY'),
});
const DCCP_TABLE = attrs({
  1: u8('CTA_PROTOINFO_DCCP_STATE', DCCP_STATE),
  2: skip('CTA_PROTOINFO_DCCP_ROLE'),
  3: skip('CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ'),
  4: skip('CTA_PROTOINFO_DCCP_PAD'),
});
const PROTOINFO_TABLE = attrs({
  1: nest('CTA_PROTOINFO_TCP', TCP_TABLE),
  2: nest('CTA_PROTOINFO_DCCP', DCCP_TABLE),
  3: nest('CTA_PROTOINFO_SCTP', SCTP_TABLE),
});

// CTA_COUNTERS_*: the 64-bit pair is what current kernels send; 32-bit ones are legacy.
const COUNTERS_TABLE = attrs({
  1: u64('CTA_COUNTERS_PACKETS', C_PACKETS),
  2: u64('CTA_COUNTERS_BYTES', C_BYTES),
  3: u32('CTA_COUNTERS32_PACKETS', C_PACKETS),
  4: u32('CTA_COUNTERS32_BYTES', C_BYTES),
  5: skip('CTA_COUNTERS_PAD'),
});
// CTA_TIMESTAMP_*
const TIMESTAMP_TABLE = attrs({
  1: at('CTA_TIMESTAMP_START', START, 8),
  2: at('CTA_TIMESTAMP_STOP', STOP, 8),
  3: skip('CTA_TIMESTAMP_PAD'),
});
// CTA_HELP_*
const HELP_TABLE = attrs({
  1: span('CTA_HELP_NAME', HELPER),
  2: skip('CTA_HELP_INFO'),
});

// CTA_* (enum ctattr_type)
const CTA_TABLE = attrs({
  1: nest('CTA_TUPLE_ORIG', TUPLE_TABLE, ORIG),
  2: nest('CTA_TUPLE_REPLY', TUPLE_TABLE, REPLY),
  3: u32('CTA_STATUS', STATUS),
  4: nest('CTA_PROTOINFO', PROTOINFO_TABLE),
  5: nest('CTA_HELP', HELP_TABLE),
  6: skip('CTA_NAT_SRC'),
  7: u32('CTA_TIMEOUT', TIMEOUT),
  8: u32('CTA_MARK', MARK),
  9: nest('CTA_COUNTERS_ORIG', COUNTERS_TABLE, CORIG),
  10: nest('CTA_COUNTERS_REPLY', COUNTERS_TABLE, CREPLY),
  11: u32('CTA_USE', USE),
  12: u32('CTA_ID', ID),
  13: skip('CTA_NAT_DST'),
  14: skip('CTA_TUPLE_MASTER'),
  15: skip('CTA_SEQ_ADJ_ORIG'),
  16: skip('CTA_SEQ_ADJ_REPLY'),
  17: u32('CTA_SECMARK', SECMARK),
  18: u16('CTA_ZONE', ZONE),
  19: span('CTA_SECCTX', SECCTX),
  20: nest('CTA_TIMESTAMP', TIMESTAMP_TABLE),
  21: skip('CTA_MARK_MASK'),
  22: span('CTA_LABELS', LABELS),
  23: skip('CTA_LABELS_MASK'),
  24: skip('CTA_SYNPROXY'),
  25: skip('CTA_FILTER'),
  26: skip('CTA_STATUS_MASK'),
  27: at('CTA_TIMESTAMP_EVENT', EVENT_TS, 8),
});

interface Ctx {
  /** Names of the nests being walked, for error messages and `unknown` keys. */
  path: string[];
  /** How many of `path` are current (set by index, not pushed: this runs per nest). */
  depth: number;
  unknown: Record<string, string> | null;
}

/** The walk's context, like R one for every message; `unknown` is a new object each time. */
const CTX: Ctx = { path: [], depth: 0, unknown: null };

function pathText(ctx: Ctx): string {
  return ctx.path.slice(0, ctx.depth).join('.');
}

/** Walk the attributes in [s, e) by `table`, into the slots from `base` on. */
function walk(table: AttrTable, b: Buffer, s: number, e: number, base: number, ctx: Ctx): void {
  while (s + 4 <= e) {
    const len = u16h(b, s);
    const type = u16h(b, s + 2) & NLA_TYPE_MASK;
    if (len < 4 || s + len > e) throw new DecodeError(`${pathText(ctx) || 'message'}: attribute ${type} length ${len} runs past the end (${e - s} bytes left)`);
    const a = type < table.length ? table[type] : null;
    if (a !== null) {
      if (len - 4 < a.min) throw new DecodeError(`${a.name}: ${len - 4} bytes, expected at least ${a.min}`);
      const p = s + 4, slot = base + a.slot;
      switch (a.kind) {
        case U8: R[slot] = b[p]!; break;
        case U16: R[slot] = u16be(b, p); break;
        case U32: R[slot] = u32be(b, p); break;
        case U64: R[slot] = u64be(b, p); break;
        case ADDR: R[slot] = p; R[slot + 1] = a.size; break;
        case AT: R[slot] = p; break;
        case SPAN: R[slot] = p; R[slot + 1] = s + len; break;
        case NEST:
          ctx.path[ctx.depth++] = a.name;
          walk(a.table!, b, p, s + len, slot, ctx);
          ctx.depth--;
          break;
      }
    } else {
      // Kept, not dropped: a newer kernel's attribute is still visible
      // downstream. The key is the full path, so that the same unknown
      // attribute under the orig and the reply tuple gets two keys, not one.
      const path = pathText(ctx);
      (ctx.unknown ??= {})[`${path ? path + '.' : ''}${type}`] = b.toString('hex', s + 4, s + len);
    }
    s += (len + 3) & ~3;
  }
  if (s < e && e - s < 4 && s !== e) {
    // Trailing bytes smaller than an attribute header: the message is cut.
    throw new DecodeError(`${pathText(ctx) || 'message'}: ${e - s} trailing bytes`);
  }
}

/** The text of a stamp slot (nanoseconds at that offset), or undefined for none or 0. */
function stampText(b: Buffer, slot: number): string | undefined {
  const o = R[slot]!;
  if (o === -1 || (u32be(b, o) === 0 && u32be(b, o + 4) === 0)) return undefined;
  const us = nanosToMicros(b, o);
  return us >= 0 ? isoMicros(us) : isoNanos(b.readBigUInt64BE(o));
}

function cString(b: Buffer, s: number, e: number): string {
  const z = b.indexOf(0, s);
  return b.toString('utf8', s, z >= 0 && z < e ? z : e);
}

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

/**
 * The text of the tuple in the slots from `t`; the caller has checked that it
 * has addresses. `other` is the original tuple's first slot and `otherText`
 * its text when this is the reply tuple: without NAT the reply's addresses
 * are the original's swapped, and their text is reused rather than
 * formatted again.
 */
function tupleOut(b: Buffer, t: number, path: string, other = -1, otherText?: Tuple): Tuple {
  const srcLen = R[t + T_SRC_LEN]!, dstLen = R[t + T_DST_LEN]!;
  if (srcLen !== dstLen) throw new DecodeError(`${path}: source and destination addresses of different families`);
  const src = other >= 0 && sameAddr(b, t + T_SRC, other + T_DST) ? otherText!.dst : ipText(b, R[t + T_SRC]!, srcLen);
  const dst = other >= 0 && sameAddr(b, t + T_DST, other + T_SRC) ? otherText!.src : ipText(b, R[t + T_DST]!, dstLen);
  const sport = R[t + T_SPORT]!, dport = R[t + T_DPORT]!;
  return sport !== -1 ? { src, sport, dst, dport: dport !== -1 ? dport : undefined } : { src, dst };
}

/** Whether the addresses in slots x and y (offset, then size) have the same bytes. */
function sameAddr(b: Buffer, x: number, y: number): boolean {
  const len = R[x + 1]!;
  if (len !== R[y + 1]) return false;
  const xo = R[x]!, yo = R[y]!;
  for (let i = 0; i < len; i++) if (b[xo + i] !== b[yo + i]) return false;
  return true;
}

// Address bytes for communityId(), which copies them before it returns: one
// pair of buffers serves every call instead of four views per message.
const cidSrc4 = Buffer.alloc(4), cidDst4 = Buffer.alloc(4), cidSrc16 = Buffer.alloc(16), cidDst16 = Buffer.alloc(16);
function addrBytes(b: Buffer, off: number, len: number, into: Buffer): Buffer {
  for (let i = 0; i < len; i++) into[i] = b[off + i]!;
  return into;
}

function stateName(): string | undefined {
  const tcp = R[TCP_STATE]!, sctp = R[SCTP_STATE]!, dccp = R[DCCP_STATE]!;
  if (tcp !== -1) return TCP_STATES[tcp] ?? String(tcp);
  if (sctp !== -1) return SCTP_STATES[sctp] ?? String(sctp);
  if (dccp !== -1) return DCCP_STATES[dccp] ?? String(dccp);
  return undefined;
}

export interface DecodeOptions {
  /** Event time, when the caller has one (receive time); default: now. */
  ts: string;
  host?: string;
  /** Compute community_id (default true). */
  communityId?: boolean;
  /** Reuse a flow's community_id for its later events (see CommunityIdCache). */
  cidCache?: CommunityIdCache;
}

// What community_id hashes besides addresses and protocol: ports, or ICMP type and code.
const portA = (ev: FlowEvent) => ev.sport ?? ev.icmp?.type ?? -1;
const portB = (ev: FlowEvent) => ev.dport ?? ev.icmp?.code ?? -1;

interface CidEntry {
  proto: string;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  cid: string;
}

/**
 * A flow's community_id by conntrack id, so that its UPDATE and DESTROY
 * events reuse the hash made for its NEW event. Ids are reused by the
 * kernel, so an entry is used only when the whole tuple matches; DESTROY
 * ends it. Bounded: flows whose DESTROY never comes are forgotten.
 */
export class CommunityIdCache {
  private map: BoundedMap<number, CidEntry>;
  hits = 0;
  misses = 0;
  constructor(max = 65536) {
    this.map = new BoundedMap(max);
  }
  /** @internal */
  take(id: number, ev: FlowEvent, kind: FlowEventKind): string | undefined {
    // A NEW is a flow's first event: nothing to find (and a miss in two
    // Maps keyed by ids past 2^30 costs more than the rest of the cache).
    if (kind === 'new') {
      this.misses++;
      return undefined;
    }
    // Keyed by the id as an int32: a small integer for V8's Map, where a
    // u32 past 2^31 is a heap number, allocated and hashed at each use.
    const key = id | 0;
    const e = kind === 'destroy' ? this.map.peek(key) : this.map.get(key);
    if (e && e.src === ev.src && e.dst === ev.dst && e.proto === ev.proto && e.sport === portA(ev) && e.dport === portB(ev)) {
      this.hits++;
      if (kind === 'destroy') this.map.delete(key);
      return e.cid;
    }
    this.misses++;
    return undefined;
  }
  /** @internal */
  put(id: number, ev: FlowEvent, kind: FlowEventKind, cid: string): void {
    if (kind === 'destroy') {
      this.map.delete(id | 0);
      return;
    }
    this.map.set(id | 0, { proto: ev.proto, src: ev.src, dst: ev.dst, sport: portA(ev), dport: portB(ev), cid });
  }
  clear(): void {
    this.map.clear();
  }
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
  for (let i = 0; i < SLOTS; i++) R[i] = -1;
  const ctx = CTX;
  ctx.depth = 0;
  ctx.unknown = null;
  walk(CTA_TABLE, buf, m.start + 4, m.end, 0, ctx);
  if (R[ORIG + T_SRC] === -1) throw new DecodeError('conntrack message without CTA_TUPLE_ORIG addresses');
  const id = R[ID]!;
  if (id === -1) throw new DecodeError('conntrack message without CTA_ID');
  if (R[ORIG + T_DST] === -1) throw new DecodeError('CTA_TUPLE_ORIG: no addresses');
  const orig = tupleOut(buf, ORIG, 'CTA_TUPLE_ORIG');
  const protoNum = R[ORIG + T_PROTO] !== -1 ? R[ORIG + T_PROTO]! : 0;
  let reply: Tuple;
  if (R[REPLY + T_SRC] !== -1) {
    if (R[REPLY + T_DST] === -1) throw new DecodeError('CTA_TUPLE_REPLY: no addresses');
    reply = tupleOut(buf, REPLY, 'CTA_TUPLE_REPLY', ORIG, orig);
  } else {
    reply = orig.sport !== undefined ? { src: orig.dst, sport: orig.dport, dst: orig.src, dport: orig.sport } : { src: orig.dst, dst: orig.src };
  }
  const addrLen = R[ORIG + T_SRC_LEN]!;
  // Built whole, in the order of ct-event(5), rather than by deleting the
  // port fields afterwards (a delete turns the object into a slow dictionary).
  const ev: FlowEvent = orig.sport !== undefined
    ? {
      ts: opts.ts, event: kind, id, family: family ?? (addrLen === 4 ? 'ipv4' : 'ipv6'),
      proto: PROTO_NAMES[protoNum] ?? String(protoNum),
      src: orig.src, sport: orig.sport, dst: orig.dst, dport: orig.dport, reply,
    } as FlowEvent
    : {
      ts: opts.ts, event: kind, id, family: family ?? (addrLen === 4 ? 'ipv4' : 'ipv6'),
      proto: PROTO_NAMES[protoNum] ?? String(protoNum),
      src: orig.src, dst: orig.dst, reply,
    } as FlowEvent;
  const state = stateName();
  if (state !== undefined) ev.state = state;
  ev.status = R[STATUS] !== -1 ? statusNames(R[STATUS]!) : [];
  if (R[TIMEOUT] !== -1) ev.timeout = R[TIMEOUT]!;
  ev.mark = R[MARK] !== -1 ? R[MARK]! : 0;
  ev.zone = R[ZONE] !== -1 ? R[ZONE]! : R[ORIG + T_ZONE] !== -1 ? R[ORIG + T_ZONE]! : 0;
  const icmpType = R[ORIG + T_ICMP_TYPE]!, icmpCode = R[ORIG + T_ICMP_CODE] !== -1 ? R[ORIG + T_ICMP_CODE]! : 0;
  const icmp = icmpType !== -1;
  if (icmp) ev.icmp = { type: icmpType, code: icmpCode, id: R[ORIG + T_ICMP_ID] !== -1 ? R[ORIG + T_ICMP_ID]! : 0 };
  const cache = opts.cidCache;
  const cached = opts.communityId !== false && cache ? cache.take(id, ev, kind) : undefined;
  if (cached !== undefined) ev.community_id = cached;
  else if (opts.communityId !== false) {
    const v4 = addrLen === 4;
    const sport = R[ORIG + T_SPORT]!, dport = R[ORIG + T_DPORT]!;
    ev.community_id = communityId(protoNum,
      addrBytes(buf, R[ORIG + T_SRC]!, addrLen, v4 ? cidSrc4 : cidSrc16), addrBytes(buf, R[ORIG + T_DST]!, addrLen, v4 ? cidDst4 : cidDst16),
      icmp ? icmpType : (sport !== -1 ? sport : 0), icmp ? icmpCode : (dport !== -1 ? dport : 0));
    if (cache && ev.community_id !== undefined) cache.put(id, ev, kind, ev.community_id);
  }
  if (opts.host !== undefined) ev.host = opts.host;
  if (R[CORIG + C_PACKETS] !== -1 || R[CREPLY + C_PACKETS] !== -1) {
    const n = (slot: number) => (R[slot] !== -1 ? R[slot]! : 0);
    ev.counters = {
      orig: { packets: n(CORIG + C_PACKETS), bytes: n(CORIG + C_BYTES) },
      reply: { packets: n(CREPLY + C_PACKETS), bytes: n(CREPLY + C_BYTES) },
    };
  }
  const start = stampText(buf, START);
  if (start !== undefined) ev.start = start;
  const stop = stampText(buf, STOP);
  if (stop !== undefined) ev.stop = stop;
  if (R[LABELS] !== -1) {
    const labels = bitList(buf, R[LABELS]!, R[LABELS + 1]!);
    if (labels.length) ev.labels = labels;
  }
  if (R[HELPER] !== -1) {
    const helper = cString(buf, R[HELPER]!, R[HELPER + 1]!);
    if (helper) ev.helper = helper;
  }
  if (R[SECMARK]! > 0) ev.secmark = R[SECMARK]!;
  if (R[SECCTX] !== -1 && R[SECCTX + 1]! > R[SECCTX]!) (ev as any).secctx = buf.toString('hex', R[SECCTX]!, R[SECCTX + 1]!);
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
