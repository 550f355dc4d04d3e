// Addresses as text (the event's `src`/`dst`) against CIDR prefixes, IPv4
// and IPv6, and the well-known address sets ct-filter drops (multicast,
// broadcast, loopback). Parses RFC 4291 section 2.2 text forms (`::`,
// embedded dotted quad, a `%zone` suffix) and treats IPv4-mapped IPv6
// (`::ffff:a.b.c.d`, RFC 4291 section 2.5.5.2) as the IPv4 address it maps,
// as the kernel shows dual-stack sockets' peers. No I/O.

/** An address: IPv4 as one 32-bit word, IPv6 as four. */
export interface Addr {
  v4: boolean;
  w: number[];
}

export class CidrError extends Error {}

/** Dotted quad to an unsigned 32-bit number; -1 when not one. */
export function parseIpv4(s: string, start = 0, end = s.length): number {
  let n = 0, part = 0, digits = 0, dots = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      n = n * 256 + part;
      part = 0; digits = 0; dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return -1; // no leading zeros (RFC 6943 section 3.1.1)
      part = part * 10 + (c - 48);
      if (part > 255 || ++digits > 3) return -1;
    } else return -1;
  }
  if (dots !== 3 || digits === 0) return -1;
  return n * 256 + part;
}

/** IPv6 text to eight 16-bit groups; null when not IPv6. */
function parseIpv6Groups(s: string): number[] | null {
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  if (s.length < 2) return null;
  let head: string[], tail: string[];
  const dc = s.indexOf('::');
  if (dc >= 0) {
    if (s.indexOf('::', dc + 1) >= 0) return null;
    head = dc === 0 ? [] : s.slice(0, dc).split(':');
    tail = dc + 2 === s.length ? [] : s.slice(dc + 2).split(':');
  } else {
    head = s.split(':');
    tail = [];
  }
  const groups = (parts: string[], last: boolean): number[] | null => {
    const out: number[] = [];
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (last && i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIpv4(p);
        if (v4 < 0) return null;
        out.push(Math.floor(v4 / 65536), v4 % 65536);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return null;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  const h = groups(head, tail.length === 0);
  const t = groups(tail, true);
  if (!h || !t) return null;
  if (dc >= 0) {
    if (h.length + t.length > 7) return null;
    return [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
  }
  return h.length === 8 ? h : null;
}

/** Parse an address; IPv4-mapped IPv6 comes back as IPv4. null when not an address. */
export function parseAddr(s: string): Addr | null {
  const v4 = parseIpv4(s);
  if (v4 >= 0) return { v4: true, w: [v4] };
  const g = parseIpv6Groups(s);
  if (!g) return null;
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return { v4: true, w: [g[6] * 65536 + g[7]] };
  }
  return { v4: false, w: [g[0] * 65536 + g[1], g[2] * 65536 + g[3], g[4] * 65536 + g[5], g[6] * 65536 + g[7]] };
}

export interface Cidr {
  text: string;
  v4: boolean;
  /** Network words, already masked. */
  net: number[];
  bits: number;
}

function maskWord(word: number, bitsLeft: number): number {
  if (bitsLeft >= 32) return word;
  if (bitsLeft <= 0) return 0;
  return (word - (word % 2 ** (32 - bitsLeft)));
}

/** `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a /32 or /128). ctrecorder's `IP/MASK` with a dotted mask works too. */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const a = parseAddr(addrText.trim());
  if (!a) throw new CidrError(`'${text}' is not an address or CIDR prefix`);
  const max = a.v4 ? 32 : 128;
  let bits = max;
  if (slash >= 0) {
    const m = text.slice(slash + 1).trim();
    if (/^\d{1,3}$/.test(m)) bits = Number(m);
    else if (a.v4 && parseIpv4(m) >= 0) {
      // A dotted netmask must be contiguous ones.
      const mask = parseIpv4(m);
      bits = 0;
      while (bits < 32 && Math.floor(mask / 2 ** (31 - bits)) % 2 === 1) bits++;
      if (maskWord(0xffffffff, bits) !== mask) throw new CidrError(`'${m}' is not a contiguous netmask`);
    } else throw new CidrError(`'${text}': bad prefix length`);
    // An IPv4-mapped prefix given in IPv6 form counts its bits from the IPv4 part.
    if (a.v4 && addrText.includes(':')) bits -= 96;
    if (bits < 0 || bits > max) throw new CidrError(`'${text}': prefix length must be 0-${max}`);
  }
  const net = a.w.map((w, i) => maskWord(w, bits - 32 * i));
  return { text, v4: a.v4, net, bits };
}

export function inCidr(a: Addr, c: Cidr): boolean {
  if (a.v4 !== c.v4) return false;
  for (let i = 0; i < c.net.length; i++) {
    if (maskWord(a.w[i], c.bits - 32 * i) !== c.net[i]) return false;
  }
  return true;
}

/**
 * Address text -> parsed, remembered: a stream repeats the same few
 * thousand addresses. Bounded: cleared when full.
 */
export class AddrCache {
  private map = new Map<string, Addr | null>();
  constructor(private max = 65536) {}
  get(s: string): Addr | null {
    let a = this.map.get(s);
    if (a === undefined) {
      a = parseAddr(s);
      if (this.map.size >= this.max) this.map.clear();
      this.map.set(s, a);
    }
    return a;
  }
}

/** A set of prefixes with a per-address answer cache. */
export class PrefixSet {
  private answers = new Map<string, boolean>();
  constructor(private cidrs: Cidr[], private addrs: AddrCache = new AddrCache()) {}
  has(s: unknown): boolean {
    if (typeof s !== 'string') return false;
    let r = this.answers.get(s);
    if (r === undefined) {
      const a = this.addrs.get(s);
      r = !!a && this.cidrs.some((c) => inCidr(a, c));
      if (this.answers.size >= 65536) this.answers.clear();
      this.answers.set(s, r);
    }
    return r;
  }
}

/** Multicast (RFC 5771, RFC 4291 section 2.7) and the limited broadcast address (RFC 919). */
export const MULTICAST = ['224.0.0.0/4', 'ff00::/8', '255.255.255.255/32'];
/** Loopback: 127/8 (RFC 1122 section 3.2.1.3) and ::1 (RFC 4291 section 2.5.3). */
export const LOOPBACK = ['127.0.0.0/8', '::1/128'];

/** Directed broadcast address of an interface address and netmask (what `ip addr` shows as brd). */
export function broadcastOf(address: string, netmask: string): string | null {
  const a = parseIpv4(address), m = parseIpv4(netmask);
  if (a < 0 || m < 0 || m >= 0xfffffffe) return null; // /31 and /32 have no broadcast address (RFC 3021)
  const b = (a - (a % (0xffffffff - m + 1))) + (0xffffffff - m);
  return [b >>> 24 & 255, b >>> 16 & 255, b >>> 8 & 255, b & 255].join('.');
}
