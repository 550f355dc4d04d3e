// nfnetlink_log (NFLOG) messages, following linux/netfilter/nfnetlink_log.h:
// the configuration request that binds a log group to a socket, and the
// packet messages the kernel then sends for each packet an nftables
// `log group N` rule logs. Buffers in, values out; no sockets here.
import { DecodeError, NLMSG_HDRLEN, NLM_F_REQUEST, NLM_F_ACK, type NlMessage } from './conntrack.js';

export const NFNL_SUBSYS_ULOG = 4;
export const NFULNL_MSG_PACKET = 0, NFULNL_MSG_CONFIG = 1;

/** enum nfulnl_attr_config */
export const NFULA_CFG_CMD = 1, NFULA_CFG_MODE = 2, NFULA_CFG_NLBUFSIZ = 3, NFULA_CFG_TIMEOUT = 4, NFULA_CFG_QTHRESH = 5, NFULA_CFG_FLAGS = 6;
/** enum nfulnl_msg_config_cmds */
export const NFULNL_CFG_CMD_BIND = 1, NFULNL_CFG_CMD_UNBIND = 2, NFULNL_CFG_CMD_PF_BIND = 3;
export const NFULNL_COPY_PACKET = 2;
/** NFULNL_CFG_F_SEQ: number each logged packet of the instance (NFULA_SEQ), so a gap is a loss. */
export const NFULNL_CFG_F_SEQ = 0x0001;

/** enum nfulnl_attr_type (the ones read here). */
export const NFULA_PACKET_HDR = 1, NFULA_TIMESTAMP = 3, NFULA_PAYLOAD = 9, NFULA_PREFIX = 10, NFULA_SEQ = 12;

const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function attr(type: number, value: Buffer): Buffer {
  const len = 4 + value.length;
  const b = Buffer.alloc((len + 3) & ~3);
  if (LE) { b.writeUInt16LE(len, 0); b.writeUInt16LE(type, 2); } else { b.writeUInt16BE(len, 0); b.writeUInt16BE(type, 2); }
  value.copy(b, 4);
  return b;
}

function be32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

/** An NFULNL_MSG_CONFIG request for `group` (nfgenmsg res_id, big-endian), asking for an ACK. */
export function configRequest(group: number, seq: number, family: number, attrs: Buffer[]): Buffer {
  const body = Buffer.concat(attrs);
  const len = NLMSG_HDRLEN + 4 + body.length;
  const b = Buffer.alloc(len);
  const type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
  const flags = NLM_F_REQUEST | NLM_F_ACK;
  if (LE) {
    b.writeUInt32LE(len, 0); b.writeUInt16LE(type, 4); b.writeUInt16LE(flags, 6); b.writeUInt32LE(seq, 8);
  } else {
    b.writeUInt32BE(len, 0); b.writeUInt16BE(type, 4); b.writeUInt16BE(flags, 6); b.writeUInt32BE(seq, 8);
  }
  b[16] = family; b[17] = 0; b.writeUInt16BE(group, 18);
  body.copy(b, 20);
  return b;
}

/** The command attribute (struct nfulnl_msg_config_cmd: one byte). */
export function cmdAttr(cmd: number): Buffer {
  return attr(NFULA_CFG_CMD, Buffer.from([cmd]));
}

/** Bind `group`, copy whole packets (up to `range` bytes), number them. */
export function bindRequest(group: number, seq: number, range = 0xffff): Buffer {
  const mode = Buffer.alloc(6); // struct nfulnl_msg_config_mode: __be32 copy_range, u8 copy_mode, u8 pad
  mode.writeUInt32BE(range, 0);
  mode[4] = NFULNL_COPY_PACKET;
  const flags = Buffer.alloc(2);
  flags.writeUInt16BE(NFULNL_CFG_F_SEQ);
  // qthresh 1: each packet goes out at once, so an answer reaches the
  // stream before the connection its client opens next.
  return configRequest(group, seq, 0, [cmdAttr(NFULNL_CFG_CMD_BIND), attr(NFULA_CFG_MODE, mode), attr(NFULA_CFG_QTHRESH, be32(1)), attr(NFULA_CFG_FLAGS, flags)]);
}

export interface LoggedPacket {
  /** Bounds of the packet (from its network header) in the datagram. */
  start: number;
  end: number;
  /** The instance's sequence number, when NFULNL_CFG_F_SEQ is set. */
  seq?: number;
  /** The netfilter hook the rule ran in (NF_INET_*), from NFULA_PACKET_HDR. */
  hook?: number;
  /**
   * When the kernel logged the packet (NFULA_TIMESTAMP: the packet's receive
   * stamp, or the wall clock as it was logged), in microseconds since the
   * epoch. Linux sends it for the prerouting, input and forward hooks.
   */
  micros?: number;
  /** The rule's `prefix`. */
  prefix?: string;
}

/**
 * Decode an NFULNL_MSG_PACKET message. Returns null for other messages;
 * throws DecodeError when an attribute runs past the message.
 */
export function decodeLogged(buf: Buffer, m: NlMessage): LoggedPacket | null {
  if (m.type !== ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET)) return null;
  if (m.end - m.start < 4) throw new DecodeError('NFLOG message without nfgenmsg header');
  const out: LoggedPacket = { start: 0, end: 0 };
  let payload = false;
  let off = m.start + 4;
  while (off + 4 <= m.end) {
    const len = LE ? buf.readUInt16LE(off) : buf.readUInt16BE(off);
    const type = (LE ? buf.readUInt16LE(off + 2) : buf.readUInt16BE(off + 2)) & 0x3fff;
    if (len < 4 || off + len > m.end) throw new DecodeError(`NFLOG attribute ${type} of length ${len} runs past the message`);
    const v = off + 4;
    const vlen = len - 4;
    if (type === NFULA_PAYLOAD) {
      out.start = v;
      out.end = v + vlen;
      payload = true;
    } else if (type === NFULA_SEQ && vlen >= 4) {
      out.seq = buf.readUInt32BE(v);
    } else if (type === NFULA_TIMESTAMP && vlen >= 16) {
      // struct nfulnl_msg_packet_timestamp: seconds and microseconds, big-endian 64-bit.
      const sec = Number(buf.readBigUInt64BE(v));
      const usec = Number(buf.readBigUInt64BE(v + 8));
      if (usec < 1e6) out.micros = sec * 1e6 + usec;
    } else if (type === NFULA_PACKET_HDR && vlen >= 3) {
      out.hook = buf[v + 2];
    } else if (type === NFULA_PREFIX) {
      const z = buf.indexOf(0, v);
      out.prefix = buf.toString('latin1', v, z >= v && z < v + vlen ? z : v + vlen);
    }
    off += (len + 3) & ~3;
  }
  if (!payload) throw new DecodeError('NFLOG packet without NFULA_PAYLOAD');
  return out;
}
