// DNS messages (RFC 1035 section 4): the header, the question, and the
// answer section's A, AAAA (RFC 3596) and CNAME records, which is what naming
// a flow's remote needs. The input is whatever arrived from port 53: hostile.
// Every length is checked against the buffer, names are at most 255 bytes
// (RFC 1035 2.3.4) with labels of at most 63, a compression pointer
// (4.1.4) must point before the name that uses it and a name follows at
// most MAX_POINTERS of them, and at most MAX_RECORDS answers are read.
// Throws DnsError on a malformed message; never reads out of bounds.
import { ipv4, ipv6 } from '../ip.js';

export class DnsError extends Error {}

export const TYPE_A = 1, TYPE_CNAME = 5, TYPE_AAAA = 28;
const MAX_POINTERS = 16;
const MAX_NAME = 255;
export const MAX_RECORDS = 64;

export interface DnsRR {
  name: string;
  type: number;
  ttl: number;
  /** An address (A, AAAA) or a name (CNAME); undefined for other types. */
  data?: string;
}

export interface DnsMessage {
  id: number;
  /** QR: a response. */
  response: boolean;
  /** TC: truncated (the client will ask again over TCP). */
  truncated: boolean;
  rcode: number;
  question?: { name: string; type: number };
  answers: DnsRR[];
}

/**
 * Read the name at `off` of `msg` (`end`: the message's end). Returns the
 * name in lower case without the final dot ('' for the root) and where the
 * name ends in place (after its pointer, if any).
 */
export function readName(msg: Buffer, off: number, end: number): { name: string; next: number } {
  let pos = off;
  let next = -1;
  let pointers = 0;
  let len = 0;
  /** Pointers must go strictly backwards: to before the lowest offset read so far. */
  let floor = off;
  const labels: string[] = [];
  for (;;) {
    if (pos >= end) throw new DnsError(`name at ${off} runs past the message`);
    const b = msg[pos]!;
    if (b === 0) {
      if (next < 0) next = pos + 1;
      break;
    }
    const kind = b & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= end) throw new DnsError(`name at ${off}: pointer cut off`);
      const target = ((b & 0x3f) << 8) | msg[pos + 1]!;
      if (++pointers > MAX_POINTERS) throw new DnsError(`name at ${off}: more than ${MAX_POINTERS} compression pointers`);
      if (target >= floor) throw new DnsError(`name at ${off}: compression pointer to ${target} does not point back`);
      if (next < 0) next = pos + 2;
      floor = target;
      pos = target;
      continue;
    }
    if (kind !== 0) throw new DnsError(`name at ${off}: label type 0x${kind.toString(16)} not supported`);
    if (pos + 1 + b > end) throw new DnsError(`name at ${off}: label runs past the message`);
    len += b + 1;
    if (len > MAX_NAME) throw new DnsError(`name at ${off} is longer than ${MAX_NAME} bytes`);
    labels.push(labelText(msg, pos + 1, pos + 1 + b));
    pos += 1 + b;
  }
  return { name: labels.join('.'), next };
}

/**
 * A label as text: letters lower-cased (names compare without case, RFC
 * 4343); bytes outside printable ASCII, and the dot and backslash, escaped
 * as \DDD (RFC 4343 2.1), so a hostile label cannot forge a dot or a line.
 */
function labelText(b: Buffer, from: number, to: number): string {
  let plain = true;
  for (let i = from; i < to; i++) {
    const c = b[i]!;
    if (c <= 0x20 || c >= 0x7f || c === 0x2e || c === 0x5c || c === 0x22) { plain = false; break; }
  }
  if (plain) return b.toString('latin1', from, to).toLowerCase();
  let s = '';
  for (let i = from; i < to; i++) {
    const c = b[i]!;
    if (c <= 0x20 || c >= 0x7f || c === 0x2e || c === 0x5c || c === 0x22) s += '\\' + String(c).padStart(3, '0');
    else s += String.fromCharCode(c).toLowerCase();
  }
  return s;
}

/** Parse a DNS message occupying msg[start, end). */
export function parseMessage(msg: Buffer, start = 0, end = msg.length): DnsMessage {
  if (end - start < 12) throw new DnsError(`message of ${end - start} bytes is shorter than its header`);
  // Offsets inside the message (pointers) count from its first byte.
  const m = start === 0 && end === msg.length ? msg : msg.subarray(start, end);
  const n = m.length;
  const flags = m.readUInt16BE(2);
  const qd = m.readUInt16BE(4);
  const an = m.readUInt16BE(6);
  const out: DnsMessage = {
    id: m.readUInt16BE(0), response: (flags & 0x8000) !== 0, truncated: (flags & 0x0200) !== 0,
    rcode: flags & 0xf, answers: [],
  };
  let pos = 12;
  for (let i = 0; i < qd; i++) {
    const q = readName(m, pos, n);
    if (q.next + 4 > n) throw new DnsError('question cut off');
    // Only the first question is used; servers answer one (RFC 9619).
    if (i === 0) out.question = { name: q.name, type: m.readUInt16BE(q.next) };
    pos = q.next + 4;
    if (i >= 3) throw new DnsError(`${qd} questions`);
  }
  const count = Math.min(an, MAX_RECORDS);
  for (let i = 0; i < count; i++) {
    const r = readName(m, pos, n);
    pos = r.next;
    if (pos + 10 > n) throw new DnsError('answer record cut off');
    const type = m.readUInt16BE(pos);
    const ttl = m.readUInt32BE(pos + 4);
    const rdlen = m.readUInt16BE(pos + 8);
    pos += 10;
    if (pos + rdlen > n) throw new DnsError('answer data cut off');
    const rr: DnsRR = { name: r.name, type, ttl: ttl > 0x7fffffff ? 0 : ttl }; // RFC 2181 8: a TTL with the top bit set is 0
    if (type === TYPE_A) {
      if (rdlen !== 4) throw new DnsError(`A record of ${rdlen} bytes`);
      rr.data = ipv4(m, pos);
    } else if (type === TYPE_AAAA) {
      if (rdlen !== 16) throw new DnsError(`AAAA record of ${rdlen} bytes`);
      rr.data = ipv6(m, pos);
    } else if (type === TYPE_CNAME) {
      const c = readName(m, pos, n);
      if (c.next > pos + rdlen) throw new DnsError('CNAME runs past its record');
      rr.data = c.name;
    }
    out.answers.push(rr);
    pos += rdlen;
  }
  return out;
}

export interface Resolution {
  name: string;
  cnames: string[];
  answers: { addr: string; ttl: number }[];
}

/**
 * What the answer says the question resolved to: the CNAME chain from the
 * question (at most 16 links, no loops) and the addresses owned by the
 * question or a name of the chain. Null when there is no address.
 */
export function resolution(msg: DnsMessage): Resolution | null {
  if (!msg.response || msg.rcode !== 0 || !msg.question) return null;
  const q = msg.question.name;
  const cnames: string[] = [];
  const owners = new Set([q]);
  let cur = q;
  for (let hop = 0; hop < 16; hop++) {
    const c = msg.answers.find((r) => r.type === TYPE_CNAME && r.name === cur && r.data !== undefined);
    if (!c || owners.has(c.data!)) break;
    cur = c.data!;
    cnames.push(cur);
    owners.add(cur);
  }
  const answers: { addr: string; ttl: number }[] = [];
  for (const r of msg.answers) {
    if ((r.type === TYPE_A || r.type === TYPE_AAAA) && owners.has(r.name) && r.data !== undefined) answers.push({ addr: r.data, ttl: r.ttl });
  }
  return answers.length ? { name: q, cnames, answers } : null;
}
