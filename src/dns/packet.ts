// A DNS answer as the kernel logs it (NFLOG payload: the IP packet from its
// network header): IPv4 (RFC 791) or IPv6 (RFC 8200, skipping extension
// headers), UDP (RFC 768) or TCP (RFC 9293) from port 53, then the DNS
// message (over TCP, RFC 1035 4.2.2: a two-byte length first; only a segment
// that holds a whole message is read). Returns the `dns` record of
// ct-event(5), or null for a packet that is not a DNS answer with addresses;
// throws DnsError when it is malformed.
import { ipv4, ipv6 } from '../ip.js';
import type { DnsRecord } from '../event.js';
import { DnsError, parseMessage, resolution } from './message.js';

const IPPROTO_TCP = 6, IPPROTO_UDP = 17;
/** IPv6 extension headers that may come before the transport header (RFC 8200 4). */
const IPV6_EXT = new Set([0, 43, 60]);
const IPV6_FRAGMENT = 44;

export function parseAnswerPacket(p: Buffer, ts: string): DnsRecord | null {
  if (p.length < 1) throw new DnsError('empty packet');
  const version = p[0]! >> 4;
  let proto: number, off: number, src: string, dst: string, end: number;
  if (version === 4) {
    if (p.length < 20) throw new DnsError('IPv4 header cut off');
    const ihl = (p[0]! & 0xf) * 4;
    const total = p.readUInt16BE(2);
    if (ihl < 20 || p.length < ihl) throw new DnsError(`IPv4 header length ${ihl}`);
    // A fragment (offset or more-fragments set): the kernel reassembles
    // before the filter hooks, so this only comes from a logged raw packet.
    if (p.readUInt16BE(6) & 0x3fff) return null;
    proto = p[9]!;
    src = ipv4(p, 12);
    dst = ipv4(p, 16);
    off = ihl;
    end = Math.min(p.length, total);
  } else if (version === 6) {
    if (p.length < 40) throw new DnsError('IPv6 header cut off');
    end = Math.min(p.length, 40 + p.readUInt16BE(4));
    src = ipv6(p, 8);
    dst = ipv6(p, 24);
    proto = p[6]!;
    off = 40;
    for (let i = 0; IPV6_EXT.has(proto); i++) {
      if (i >= 8 || off + 8 > end) throw new DnsError('IPv6 extension headers cut off or too many');
      const next = p[off]!;
      off += (p[off + 1]! + 1) * 8;
      proto = next;
    }
    if (proto === IPV6_FRAGMENT) return null;
  } else {
    throw new DnsError(`IP version ${version}`);
  }
  let sport: number, dport: number, msgStart: number, msgEnd: number;
  if (proto === IPPROTO_UDP) {
    if (off + 8 > end) throw new DnsError('UDP header cut off');
    sport = p.readUInt16BE(off);
    dport = p.readUInt16BE(off + 2);
    msgStart = off + 8;
    msgEnd = Math.min(end, off + Math.max(8, p.readUInt16BE(off + 4)));
  } else if (proto === IPPROTO_TCP) {
    if (off + 20 > end) throw new DnsError('TCP header cut off');
    sport = p.readUInt16BE(off);
    dport = p.readUInt16BE(off + 2);
    const doff = (p[off + 12]! >> 4) * 4;
    if (doff < 20 || off + doff > end) throw new DnsError(`TCP header length ${doff}`);
    const data = off + doff;
    if (data + 2 > end) return null; // no data: a SYN, an ACK, a FIN
    const len = p.readUInt16BE(data);
    if (data + 2 + len > end) return null; // the message goes on in other segments
    msgStart = data + 2;
    msgEnd = data + 2 + len;
  } else {
    return null;
  }
  if (sport !== 53) return null;
  const msg = parseMessage(p, msgStart, msgEnd);
  const r = resolution(msg);
  if (!r) return null;
  const rec: DnsRecord = {
    ts, event: 'dns', proto: proto === IPPROTO_TCP ? 'tcp' : 'udp',
    client: dst, cport: dport, server: src, sport, name: r.name,
    ...(r.cnames.length ? { cnames: r.cnames } : {}),
    answers: r.answers,
  };
  return rec;
}
