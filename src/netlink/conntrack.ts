// ctnetlink decoding: netlink datagrams from NETLINK_NETFILTER (subsystem
// CTNETLINK) into ctpipe events. Follows include/uapi/linux/netfilter/
// nfnetlink_conntrack.h, nfnetlink.h and nf_conntrack_common.h. Attribute
// tables are data: number -> kernel name -> field -> decoder. Pure functions
// over Buffers; no sockets, no process access.
import { endianness } from 'node:os';
import { ipText } from '../ip.js';
import { communityId } from '../community-id.js';
import { isoNanos, type FlowEvent, type FlowEventKind, type Tuple, type Family } from '../event.js';

const LE = endianness() === 'LE';
const u16h = (b: Buffer, o: number) => (LE ? b.readUInt16LE(o) : b.readUInt16BE(o));
const u32h = (b: Buffer, o: number) => (LE ? b.readUInt32LE(o) : b.readUInt32BE(o));

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

/** Unsigned 64-bit big-endian (kernel counters, timestamps) as a JS number. */
export function u64be(b: Buffer, o: number): number {
  return Number(b.readBigUInt64BE(o));
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

/** Scratch state while decoding one message: raw tuple bytes kept for community_id. */
interface RawTuple {
  src?: Buffer; dst?: Buffer; sport?: number; dport?: number; proto?: number;
  icmpType?: number; icmpCode?: number; icmpId?: number; zone?: number;
}
interface Ctx {
  ev: Partial<FlowEvent> & Record<string, any>;
  unknown: Record<string, string> | null;
}

type Decoder<T> = (b: Buffer, s: number, e: number, target: T, ctx: Ctx, path: string) => void;
interface AttrSpec<T> { name: string; decode: Decoder<T>; min?: number }
type AttrTable<T> = Record<number, AttrSpec<T>>;

function walk<T>(table: AttrTable<T>, b: Buffer, s: number, e: number, target: T, ctx: Ctx, path: string): void {
  while (s + 4 <= e) {
    const len = u16h(b, s);
    const type = u16h(b, s + 2) & NLA_TYPE_MASK;
    if (len < 4 || s + len > e) throw new DecodeError(`${path || 'message'}: attribute ${type} length ${len} runs past the end (${e - s} bytes left)`);
    const spec = table[type];
    if (spec) {
      if (spec.min && len - 4 < spec.min) throw new DecodeError(`${spec.name}: ${len - 4} bytes, expected at least ${spec.min}`);
      // The full path, so that the same unknown attribute under the orig and
      // the reply tuple gets two keys, not one.
      spec.decode(b, s + 4, s + len, target, ctx, path ? `${path}.${spec.name}` : spec.name);
    } else {
      // Kept, not dropped: a newer kernel's attribute is still visible downstream.
      (ctx.unknown ??= {})[`${path ? path + '.' : ''}${type}`] = b.subarray(s + 4, s + len).toString('hex');
    }
    s += (len + 3) & ~3;
  }
  if (s < e && e - s < 4 && s !== e) {
    // Trailing bytes smaller than an attribute header: the message is cut.
    throw new DecodeError(`${path || 'message'}: ${e - s} trailing bytes`);
  }
}

const nested = <T, U>(table: AttrTable<U>, pick: (t: T) => U): Decoder<T> =>
  (b, s, e, t, ctx, path) => walk(table, b, s, e, pick(t), ctx, path);
const skip: Decoder<any> = () => {};

// CTA_IP_*
const IP_TABLE: AttrTable<RawTuple> = {
  1: { name: 'CTA_IP_V4_SRC', min: 4, decode: (b, s, _e, t) => { t.src = b.subarray(s, s + 4); } },
  2: { name: 'CTA_IP_V4_DST', min: 4, decode: (b, s, _e, t) => { t.dst = b.subarray(s, s + 4); } },
  3: { name: 'CTA_IP_V6_SRC', min: 16, decode: (b, s, _e, t) => { t.src = b.subarray(s, s + 16); } },
  4: { name: 'CTA_IP_V6_DST', min: 16, decode: (b, s, _e, t) => { t.dst = b.subarray(s, s + 16); } },
};
// CTA_PROTO_*
const PROTO_TABLE: AttrTable<RawTuple> = {
  1: { name: 'CTA_PROTO_NUM', min: 1, decode: (b, s, _e, t) => { t.proto = b[s]; } },
  2: { name: 'CTA_PROTO_SRC_PORT', min: 2, decode: (b, s, _e, t) => { t.sport = b.readUInt16BE(s); } },
  3: { name: 'CTA_PROTO_DST_PORT', min: 2, decode: (b, s, _e, t) => { t.dport = b.readUInt16BE(s); } },
  4: { name: 'CTA_PROTO_ICMP_ID', min: 2, decode: (b, s, _e, t) => { t.icmpId = b.readUInt16BE(s); } },
  5: { name: 'CTA_PROTO_ICMP_TYPE', min: 1, decode: (b, s, _e, t) => { t.icmpType = b[s]; } },
  6: { name: 'CTA_PROTO_ICMP_CODE', min: 1, decode: (b, s, _e, t) => { t.icmpCode = b[s]; } },
  7: { name: 'CTA_PROTO_ICMPV6_ID', min: 2, decode: (b, s, _e, t) => { t.icmpId = b.readUInt16BE(s); } },
  8: { name: 'CTA_PROTO_ICMPV6_TYPE', min: 1, decode: (b, s, _e, t) => { t.icmpType = b[s]; } },
  9: { name: 'CTA_PROTO_ICMPV6_CODE', min: 1, decode: (b, s, _e, t) => { t.icmpCode = b[s]; } },
};
// CTA_TUPLE_*
const TUPLE_TABLE: AttrTable<RawTuple> = {
  1: { name: 'CTA_TUPLE_IP', decode: nested(IP_TABLE, (t) => t) },
  2: { name: 'CTA_TUPLE_PROTO', decode: nested(PROTO_TABLE, (t) => t) },
  3: { name: 'CTA_TUPLE_ZONE', min: 2, decode: (b, s, _e, t) => { t.zone = b.readUInt16BE(s); } },
};

interface ProtoInfo { tcp?: number; sctp?: number; dccp?: number }
const TCP_TABLE: AttrTable<ProtoInfo> = {
  1: { name: 'CTA_PROTOINFO_TCP_STATE', min: 1, decode: (b, s, _e, t) => { t.tcp = b[s]; } },
  2: { name: 'CTA_PROTOINFO_TCP_WSCALE_ORIGINAL', decode: skip },
  3: { name: 'CTA_PROTOINFO_TCP_WSCALE_REPLY', decode: skip },
  4: { name: 'CTA_PROTOINFO_TCP_FLAGS_ORIGINAL', decode: skip },
  5: { name: 'CTA_PROTOINFO_TCP_FLAGS_REPLY', decode: skip },
};
const SCTP_TABLE: AttrTable<ProtoInfo> = {
  1: { name: 'CTA_PROTOINFO_SCTP_STATE', min: 1, decode: (b, s, _e, t) => { t.sctp = b[s]; } },
  2: { name: 'CTA_PROTOINFO_SCTP_VTAG_ORIGINAL', decode: skip },
  3: { name: 'CTA_PROTOINFO_SCTP_VTAG_REPLY', decode: skip },
};
const DCCP_TABLE: AttrTable<ProtoInfo> = {
  1: { name: 'CTA_PROTOINFO_DCCP_STATE', min: 1, decode: (b, s, _e, t) => { t.dccp = b[s]; } },
  2: { name: 'CTA_PROTOINFO_DCCP_ROLE', decode: skip },
  3: { name: 'CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ', decode: skip },
  4: { name: 'CTA_PROTOINFO_DCCP_PAD', decode: skip },
};
const PROTOINFO_TABLE: AttrTable<ProtoInfo> = {
  1: { name: 'CTA_PROTOINFO_TCP', decode: nested(TCP_TABLE, (t) => t) },
  2: { name: 'CTA_PROTOINFO_DCCP', decode: nested(DCCP_TABLE, (t) => t) },
  3: { name: 'CTA_PROTOINFO_SCTP', decode: nested(SCTP_TABLE, (t) => t) },
};

interface Counter { packets?: number; bytes?: number }
// CTA_COUNTERS_*: the 64-bit pair is what current kernels send; 32-bit ones are legacy.
const COUNTERS_TABLE: AttrTable<Counter> = {
  1: { name: 'CTA_COUNTERS_PACKETS', min: 8, decode: (b, s, _e, t) => { t.packets = u64be(b, s); } },
  2: { name: 'CTA_COUNTERS_BYTES', min: 8, decode: (b, s, _e, t) => { t.bytes = u64be(b, s); } },
  3: { name: 'CTA_COUNTERS32_PACKETS', min: 4, decode: (b, s, _e, t) => { t.packets = b.readUInt32BE(s); } },
  4: { name: 'CTA_COUNTERS32_BYTES', min: 4, decode: (b, s, _e, t) => { t.bytes = b.readUInt32BE(s); } },
  5: { name: 'CTA_COUNTERS_PAD', decode: skip },
};
interface Stamps { start?: bigint; stop?: bigint }
const TIMESTAMP_TABLE: AttrTable<Stamps> = {
  1: { name: 'CTA_TIMESTAMP_START', min: 8, decode: (b, s, _e, t) => { t.start = b.readBigUInt64BE(s); } },
  2: { name: 'CTA_TIMESTAMP_STOP', min: 8, decode: (b, s, _e, t) => { t.stop = b.readBigUInt64BE(s); } },
  3: { name: 'CTA_TIMESTAMP_PAD', decode: skip },
};
const HELP_TABLE: AttrTable<{ name?: string }> = {
  1: { name: 'CTA_HELP_NAME', decode: (b, s, e, t) => { t.name = cString(b, s, e); } },
  2: { name: 'CTA_HELP_INFO', decode: skip },
};

function cString(b: Buffer, s: number, e: number): string {
  const z = b.indexOf(0, s);
  return b.toString('utf8', s, z >= 0 && z < e ? z : e);
}

/** Everything one CTA_* pass collects before it becomes an event. */
interface Raw {
  orig: RawTuple; reply: RawTuple; status?: number; protoinfo: ProtoInfo;
  timeout?: number; mark?: number; id?: number; zone?: number; use?: number; secmark?: number;
  corig: Counter; creply: Counter; ts: Stamps; labels?: number[]; helper: { name?: string };
  secctx?: string; eventTs?: bigint;
}

// CTA_* (enum ctattr_type)
const CTA_TABLE: AttrTable<Raw> = {
  1: { name: 'CTA_TUPLE_ORIG', decode: nested(TUPLE_TABLE, (r) => r.orig) },
  2: { name: 'CTA_TUPLE_REPLY', decode: nested(TUPLE_TABLE, (r) => r.reply) },
  3: { name: 'CTA_STATUS', min: 4, decode: (b, s, _e, r) => { r.status = b.readUInt32BE(s); } },
  4: { name: 'CTA_PROTOINFO', decode: nested(PROTOINFO_TABLE, (r) => r.protoinfo) },
  5: { name: 'CTA_HELP', decode: nested(HELP_TABLE, (r) => r.helper) },
  6: { name: 'CTA_NAT_SRC', decode: skip },
  7: { name: 'CTA_TIMEOUT', min: 4, decode: (b, s, _e, r) => { r.timeout = b.readUInt32BE(s); } },
  8: { name: 'CTA_MARK', min: 4, decode: (b, s, _e, r) => { r.mark = b.readUInt32BE(s); } },
  9: { name: 'CTA_COUNTERS_ORIG', decode: nested(COUNTERS_TABLE, (r) => r.corig) },
  10: { name: 'CTA_COUNTERS_REPLY', decode: nested(COUNTERS_TABLE, (r) => r.creply) },
  11: { name: 'CTA_USE', min: 4, decode: (b, s, _e, r) => { r.use = b.readUInt32BE(s); } },
  12: { name: 'CTA_ID', min: 4, decode: (b, s, _e, r) => { r.id = b.readUInt32BE(s); } },
  13: { name: 'CTA_NAT_DST', decode: skip },
  14: { name: 'CTA_TUPLE_MASTER', decode: skip },
  15: { name: 'CTA_SEQ_ADJ_ORIG', decode: skip },
  16: { name: 'CTA_SEQ_ADJ_REPLY', decode: skip },
  17: { name: 'CTA_SECMARK', min: 4, decode: (b, s, _e, r) => { r.secmark = b.readUInt32BE(s); } },
  18: { name: 'CTA_ZONE', min: 2, decode: (b, s, _e, r) => { r.zone = b.readUInt16BE(s); } },
  19: { name: 'CTA_SECCTX', decode: (b, s, e, r) => { r.secctx = b.subarray(s, e).toString('hex'); } },
  20: { name: 'CTA_TIMESTAMP', decode: nested(TIMESTAMP_TABLE, (r) => r.ts) },
  21: { name: 'CTA_MARK_MASK', decode: skip },
  22: { name: 'CTA_LABELS', decode: (b, s, e, r) => { r.labels = bitList(b, s, e); } },
  23: { name: 'CTA_LABELS_MASK', decode: skip },
  24: { name: 'CTA_SYNPROXY', decode: skip },
  25: { name: 'CTA_FILTER', decode: skip },
  26: { name: 'CTA_STATUS_MASK', decode: skip },
  27: { name: 'CTA_TIMESTAMP_EVENT', min: 8, decode: (b, s, _e, r) => { r.eventTs = b.readBigUInt64BE(s); } },
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

function statusNames(v: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < STATUS_BITS.length; i++) if (v & (1 << i)) out.push(STATUS_BITS[i]);
  for (let i = STATUS_BITS.length; i < 32; i++) if (v & (1 << i)) out.push(`BIT${i}`);
  return out;
}

function tupleOut(t: RawTuple, path: string): Tuple {
  if (!t.src || !t.dst) throw new DecodeError(`${path}: no addresses`);
  if (t.src.length !== t.dst.length) throw new DecodeError(`${path}: source and destination addresses of different families`);
  const src = ipText(t.src, 0, t.src.length);
  const dst = ipText(t.dst, 0, t.dst.length);
  return t.sport !== undefined ? { src, sport: t.sport, dst, dport: t.dport } : { src, dst };
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
  const raw: Raw = { orig: {}, reply: {}, protoinfo: {}, corig: {}, creply: {}, ts: {}, helper: {} };
  const ctx: Ctx = { ev: {}, unknown: null };
  walk(CTA_TABLE, buf, m.start + 4, m.end, raw, ctx, '');
  if (!raw.orig.src) throw new DecodeError('conntrack message without CTA_TUPLE_ORIG addresses');
  if (raw.id === undefined) throw new DecodeError('conntrack message without CTA_ID');

  const orig = tupleOut(raw.orig, 'CTA_TUPLE_ORIG');
  const protoNum = raw.orig.proto ?? 0;
  const ev: FlowEvent = {
    ts: opts.ts,
    event: kind,
    id: raw.id,
    family: family ?? (raw.orig.src.length === 4 ? 'ipv4' : 'ipv6'),
    proto: PROTO_NAMES[protoNum] ?? String(protoNum),
    src: orig.src,
    sport: orig.sport,
    dst: orig.dst,
    dport: orig.dport,
    reply: raw.reply.src ? tupleOut(raw.reply, 'CTA_TUPLE_REPLY') : orig.sport !== undefined ? { src: orig.dst, sport: orig.dport, dst: orig.src, dport: orig.sport } : { src: orig.dst, dst: orig.src },
  } as FlowEvent;
  if (orig.sport === undefined) { delete ev.sport; delete ev.dport; }
  if (raw.protoinfo.tcp !== undefined) ev.state = TCP_STATES[raw.protoinfo.tcp] ?? String(raw.protoinfo.tcp);
  else if (raw.protoinfo.sctp !== undefined) ev.state = SCTP_STATES[raw.protoinfo.sctp] ?? String(raw.protoinfo.sctp);
  else if (raw.protoinfo.dccp !== undefined) ev.state = DCCP_STATES[raw.protoinfo.dccp] ?? String(raw.protoinfo.dccp);
  ev.status = raw.status !== undefined ? statusNames(raw.status) : [];
  if (raw.timeout !== undefined) ev.timeout = raw.timeout;
  ev.mark = raw.mark ?? 0;
  ev.zone = raw.zone ?? raw.orig.zone ?? 0;
  if (raw.orig.icmpType !== undefined) {
    ev.icmp = { type: raw.orig.icmpType, code: raw.orig.icmpCode ?? 0, id: raw.orig.icmpId ?? 0 };
  }
  if (opts.communityId !== false && raw.orig.dst) {
    const icmp = raw.orig.icmpType !== undefined;
    ev.community_id = communityId(protoNum, raw.orig.src, raw.orig.dst,
      icmp ? raw.orig.icmpType! : (raw.orig.sport ?? 0), icmp ? (raw.orig.icmpCode ?? 0) : (raw.orig.dport ?? 0));
  }
  if (opts.host !== undefined) ev.host = opts.host;
  if (raw.corig.packets !== undefined || raw.creply.packets !== undefined) {
    ev.counters = {
      orig: { packets: raw.corig.packets ?? 0, bytes: raw.corig.bytes ?? 0 },
      reply: { packets: raw.creply.packets ?? 0, bytes: raw.creply.bytes ?? 0 },
    };
  }
  if (raw.ts.start !== undefined && raw.ts.start > 0n) ev.start = isoNanos(raw.ts.start);
  if (raw.ts.stop !== undefined && raw.ts.stop > 0n) ev.stop = isoNanos(raw.ts.stop);
  if (raw.labels && raw.labels.length) ev.labels = raw.labels;
  if (raw.helper.name) ev.helper = raw.helper.name;
  if (raw.secmark) ev.secmark = raw.secmark;
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
