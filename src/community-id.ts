// Community ID v1 flow hashing: the direction-free flow identifier that Zeek,
// Suricata, Arkime and Elastic attach to their records, so a ctpipe event can
// be joined against theirs by plain string equality.
//
// Spec: https://github.com/corelight/community-id-spec, README sections
// "Pseudo code" (hash input layout and base64 rendering) and "Technical
// details" (endpoint ordering, per-protocol fields, ICMP type/code handling,
// which the spec defers to Zeek and the pycommunityid reference).
//
// This module owns only the hash: it takes addresses as raw network-order
// bytes. The caller decides which addresses a flow has (e.g. whether an
// IPv4-mapped IPv6 address should be unmapped first to match what a wire
// sensor would see).

import * as crypto from 'node:crypto';
import { isIP } from 'node:net';

const PROTO_ICMP = 1;
const PROTO_TCP = 6;
const PROTO_UDP = 17;
const PROTO_ICMPV6 = 58;
const PROTO_SCTP = 132;

// Hash input: seed(2) addr addr proto(1) pad(1) [port(2) port(2)]. The largest
// case (IPv6 with ports) is 40 bytes. One module-level buffer serves every
// call: the function is synchronous and never hands the buffer out.
const scratch = Buffer.alloc(40);
// Fixed views for the four possible input lengths, so a call allocates no
// view object of its own.
const view4 = scratch.subarray(0, 12);
const view4Ports = scratch.subarray(0, 16);
const view6 = scratch.subarray(0, 36);
const view6Ports = scratch.subarray(0, 40);

// crypto.hash (Node >= 20.12) skips the Hash object and is markedly cheaper
// for tiny inputs; older Node 20 releases fall back to createHash.
const sha1Base64: (data: Buffer) => string =
  typeof crypto.hash === 'function'
    ? (data) => crypto.hash('sha1', data, 'base64')
    : (data) => crypto.createHash('sha1').update(data).digest('base64');

// ICMP types that form request/reply pairs, mapped to their counterpart; -1
// means the message is one-way. The pairs are those of Zeek's
// ICMP4_counterpart/ICMP6_counterpart, which the spec adopts.
const NONE = -1;

function icmp4Counterpart(type: number): number {
  switch (type) {
    case 8: return 0; // echo request -> echo reply
    case 0: return 8;
    case 13: return 14; // timestamp -> timestamp reply
    case 14: return 13;
    case 15: return 16; // information request -> reply
    case 16: return 15;
    case 10: return 9; // router solicitation -> router advertisement
    case 9: return 10;
    case 17: return 18; // address mask request -> reply
    case 18: return 17;
    default: return NONE;
  }
}

function icmp6Counterpart(type: number): number {
  switch (type) {
    case 128: return 129; // echo request -> echo reply
    case 129: return 128;
    case 130: return 131; // MLD listener query -> report
    case 131: return 130;
    case 133: return 134; // router solicitation -> advertisement
    case 134: return 133;
    case 135: return 136; // neighbor solicitation -> advertisement
    case 136: return 135;
    case 139: return 140; // node information (who-are-you) query -> reply
    case 140: return 139;
    case 144: return 145; // home agent address discovery request -> reply
    case 145: return 144;
    default: return NONE;
  }
}

function isU16(n: number): boolean {
  return (n & 0xffff) === n;
}

/**
 * Community ID v1 of a flow, e.g. `1:LQU9qZlK+B5F3KDmev6m5PMibrg=`.
 *
 * `saddr`/`daddr` are network-order address bytes, both 4 (IPv4) or both 16
 * (IPv6) long. For ICMP (1) and ICMPv6 (58) pass the message type as `sport`
 * and the code as `dport`. Ports are ignored for protocols other than TCP,
 * UDP, SCTP, ICMP and ICMPv6. Throws RangeError on malformed input.
 */
export function communityId(
  proto: number,
  saddr: Buffer,
  daddr: Buffer,
  sport: number,
  dport: number,
  seed = 0,
): string {
  const alen = saddr.length;
  if ((alen !== 4 && alen !== 16) || daddr.length !== alen) {
    throw new RangeError(`community-id: addresses must both be 4 or 16 bytes (got ${alen} and ${daddr.length})`);
  }
  if ((proto & 0xff) !== proto) throw new RangeError(`community-id: bad protocol number ${proto}`);
  if (!isU16(seed)) throw new RangeError(`community-id: bad seed ${seed}`);

  const hasPorts =
    proto === PROTO_TCP || proto === PROTO_UDP || proto === PROTO_SCTP || proto === PROTO_ICMP || proto === PROTO_ICMPV6;

  // A one-way ICMP message has no reply to pair with, so the spec keeps its
  // direction instead of canonicalising it.
  let oneWay = false;
  if (hasPorts) {
    if (!isU16(sport) || !isU16(dport)) {
      throw new RangeError(`community-id: bad port/type/code ${sport}/${dport}`);
    }
    if (proto === PROTO_ICMP || proto === PROTO_ICMPV6) {
      const counter = proto === PROTO_ICMP ? icmp4Counterpart(sport) : icmp6Counterpart(sport);
      // Two-way: the counterpart type stands in for the destination port (the
      // code is ignored), so request and reply land on the same tuple.
      // One-way: the code is the destination port.
      if (counter === NONE) oneWay = true;
      else dport = counter;
    }
  }

  // Canonical order puts the smaller address first; on equal addresses the
  // smaller port does. Addresses have equal length, so byte-wise comparison
  // is numeric comparison.
  let swap = false;
  if (!oneWay) {
    let cmp = 0;
    for (let i = 0; i < alen; i++) {
      const d = saddr[i]! - daddr[i]!;
      if (d !== 0) {
        cmp = d;
        break;
      }
    }
    swap = cmp > 0 || (cmp === 0 && hasPorts && sport > dport);
  }

  const first = swap ? daddr : saddr;
  const second = swap ? saddr : daddr;
  const buf = scratch;
  buf[0] = seed >>> 8;
  buf[1] = seed & 0xff;
  buf.set(first, 2);
  let off = 2 + alen;
  buf.set(second, off);
  off += alen;
  buf[off++] = proto;
  buf[off++] = 0;
  if (hasPorts) {
    const p1 = swap ? dport : sport;
    const p2 = swap ? sport : dport;
    buf[off++] = p1 >>> 8;
    buf[off++] = p1 & 0xff;
    buf[off++] = p2 >>> 8;
    buf[off] = p2 & 0xff;
  }

  const view = alen === 4 ? (hasPorts ? view4Ports : view4) : hasPorts ? view6Ports : view6;
  return '1:' + sha1Base64(view);
}

// Address buffers for communityIdFromStrings; safe to reuse for the same
// reason as `scratch`.
const srcBytes = Buffer.alloc(16);
const dstBytes = Buffer.alloc(16);
const src4 = srcBytes.subarray(0, 4);
const dst4 = dstBytes.subarray(0, 4);

// Hex groups of the IPv6 address being parsed, in order of appearance.
const groups = new Uint16Array(8);

/** Writes the dotted quad at text[start..end) (validated by isIP) to out[off..off+4). */
function writeIPv4(text: string, start: number, end: number, out: Buffer, off: number): void {
  let octet = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e /* . */) {
      out[off++] = octet;
      octet = 0;
    } else {
      octet = octet * 10 + (c - 0x30);
    }
  }
  out[off] = octet;
}

/**
 * Writes an IPv6 address (validated by isIP) to out[0..16) in one pass over
 * the characters: this may run per event, and split()/parseInt() cost several
 * times the hash itself.
 */
function writeIPv6(text: string, out: Buffer): void {
  let end = text.indexOf('%'); // zone suffix: not part of the address
  if (end === -1) end = text.length;

  let n = 0; // groups seen
  let gapAt = -1; // group index where "::" stands
  let cur = 0;
  let digits = 0;
  let tokenStart = 0;
  let slots = 8; // a trailing dotted quad takes the last two
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x3a /* : */) {
      if (digits > 0) groups[n++] = cur;
      cur = 0;
      digits = 0;
      if (text.charCodeAt(i + 1) === 0x3a) {
        gapAt = n;
        i++;
      }
      tokenStart = i + 1;
    } else if (c === 0x2e /* . */) {
      // The token is an embedded IPv4 address (::ffff:a.b.c.d and kin),
      // which isIP only allows last.
      writeIPv4(text, tokenStart, end, out, 12);
      slots = 6;
      digits = 0;
      break;
    } else {
      cur = (cur << 4) | (c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57);
      digits++;
    }
  }
  if (digits > 0) groups[n++] = cur;

  // Groups before the gap go to the front, those after it to the back, and
  // the gap itself is zeros.
  const head = gapAt === -1 ? n : gapAt;
  const tailStart = slots - (n - head);
  let k = 0;
  for (; k < head; k++) {
    out[2 * k] = groups[k]! >>> 8;
    out[2 * k + 1] = groups[k]! & 0xff;
  }
  for (; k < tailStart; k++) {
    out[2 * k] = 0;
    out[2 * k + 1] = 0;
  }
  for (let g = head; k < slots; k++, g++) {
    out[2 * k] = groups[g]! >>> 8;
    out[2 * k + 1] = groups[g]! & 0xff;
  }
}

function toBytes(text: string, family: number, full: Buffer, v4: Buffer): Buffer {
  if (family === 4) {
    writeIPv4(text, 0, text.length, v4, 0);
    return v4;
  }
  writeIPv6(text, full);
  return full;
}

/**
 * communityId() for textual addresses ("192.0.2.1", "2001:db8::1",
 * "::ffff:192.0.2.1", optionally with an IPv6 zone suffix, which is not part
 * of the hash). Both must be of the same family. An IPv4-mapped IPv6 address
 * stays a 16-byte IPv6 address. Throws RangeError on unparsable input.
 */
export function communityIdFromStrings(
  proto: number,
  src: string,
  dst: string,
  sport: number,
  dport: number,
  seed = 0,
): string {
  const sf = isIP(src);
  const df = isIP(dst);
  if (sf === 0) throw new RangeError(`community-id: not an IP address: ${JSON.stringify(src)}`);
  if (df === 0) throw new RangeError(`community-id: not an IP address: ${JSON.stringify(dst)}`);
  if (sf !== df) throw new RangeError(`community-id: address families differ: ${src} vs ${dst}`);
  return communityId(
    proto,
    toBytes(src, sf, srcBytes, src4),
    toBytes(dst, df, dstBytes, dst4),
    sport,
    dport,
    seed,
  );
}
