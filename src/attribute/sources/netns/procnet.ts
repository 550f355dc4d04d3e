// Another network namespace's view, as /proc/PID/net/* prints it for any
// process PID inside it: its local addresses (fib_trie, if_inet6) and its
// socket tables (tcp, tcp6, udp, udp6, udplite, udplite6). Pure text
// handling: the files are read by the caller. Node cannot setns(2), and
// sock_diag only answers for the namespace its socket was made in, so these
// files are the way into a namespace ctpipe does not run in.
//
// Formats (net/ipv4/fib_trie.c fib_triestat/fib_trie_seq_show,
// net/ipv6/addrconf.c if6_seq_show, net/ipv4/tcp_ipv4.c get_tcp4_sock,
// net/ipv6/tcp_ipv6.c get_tcp6_sock, net/ipv4/udp.c udp4_format_sock): a
// socket line is "%4d: %08X:%04X %08X:%04X %02X ..." where each 32-bit word
// of an address is printed as the host-order value of its network-order
// bytes, and the port in ordinary hex.
import { endianness } from 'node:os';
import { addrBytes } from '../../../netlink/sockdiag.js';
import { ipv6 } from '../../../ip.js';

const LE = endianness() === 'LE';

/** IPv4 addresses the namespace owns: the fib_trie's "/32 host LOCAL" leaves. */
export function parseFibTrieLocal(text: string): string[] {
  const out = new Set<string>();
  let leaf = '';
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t.startsWith('|-- ')) leaf = t.slice(4);
    else if (t.startsWith('/32 host LOCAL') && leaf) out.add(leaf);
  }
  return [...out];
}

/** IPv6 addresses of the namespace's interfaces (if_inet6: 32 hex digits, then index, prefix, scope, flags, name). */
export function parseIfInet6(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const hex = line.slice(0, 32);
    if (hex.length !== 32 || !/^[0-9a-f]{32}$/i.test(hex)) continue;
    out.push(ipv6(Buffer.from(hex, 'hex')));
  }
  return out;
}

/** Loopback addresses belong to every namespace and are never forwarded. */
export function isLoopback(addr: string): boolean {
  return addr.startsWith('127.') || addr === '::1' || addr.startsWith('::ffff:127.');
}

function words(b: Buffer, from: number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) {
    const o = from + 4 * i;
    const v = LE ? b.readUInt32LE(o) : b.readUInt32BE(o);
    s += v.toString(16).toUpperCase().padStart(8, '0');
  }
  return s;
}

const scratch = Buffer.alloc(16);

/**
 * An address as the socket table of `v6` (tcp6/udp6) or IPv4 (tcp/udp)
 * files prints it. An IPv4 address in a v6 table is the v4-mapped form (a
 * dual-stack socket); an IPv6 address has no form in a v4 table (null).
 */
export function procAddr(addr: string, v6: boolean): string | null {
  const isV6 = addr.includes(':');
  if (!v6) {
    if (isV6) {
      if (!addr.startsWith('::ffff:') || !addr.includes('.')) return null;
      addrBytes(addr.slice(7), 'ipv4', scratch, 0);
    } else addrBytes(addr, 'ipv4', scratch, 0);
    return words(scratch, 0, 1);
  }
  addrBytes(isV6 ? addr : `::ffff:${addr}`, 'ipv6', scratch, 0);
  return words(scratch, 0, 4);
}

export function procPort(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, '0');
}

/** One socket line's fields that attribution needs. */
export interface ProcSocket {
  /** TCP state (include/net/tcp_states.h; UDP sockets say 7, CLOSE, or 1 when connected). */
  state: number;
  uid: number;
  /** 0 for sockets no file holds (TIME_WAIT, request sockets, orphans). */
  inode: number;
}

/**
 * Sockets whose local and remote endpoints print exactly as `local` and
 * `remote` ("HEX:PORT"). The text is searched, not parsed: a container's
 * table is small, and a lookup needs one or two keys of it.
 */
export function findSockets(text: string, local: string, remote: string): ProcSocket[] {
  const needle = `: ${local} ${remote} `;
  const out: ProcSocket[] = [];
  let at = text.indexOf(needle);
  while (at >= 0) {
    const start = at + needle.length;
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    // After the remote address: st tx:rx tr:when retrnsmt uid timeout inode ...
    const f = text.slice(start, end).trim().split(/\s+/);
    if (f.length >= 7) out.push({ state: parseInt(f[0], 16), uid: Number(f[4]), inode: Number(f[6]) });
    at = text.indexOf(needle, end);
  }
  return out;
}

export const TCP_SYN_RECV = 3, TCP_TIME_WAIT = 6, TCP_LISTEN = 10;

export interface Endpoint { addr: string; port: number }

/**
 * The socket that owns the `local` end of a TCP flow talking to `remote`, in
 * one table: the connection itself, else (a request socket or an accepted
 * connection already gone) the listener on the local port. `listener` says
 * which was found.
 */
export function tcpOwner(text: string, v6: boolean, local: Endpoint, remote: Endpoint, allowListener: boolean): (ProcSocket & { listener: boolean }) | null {
  const la = procAddr(local.addr, v6), ra = procAddr(remote.addr, v6);
  if (la === null || ra === null) return null;
  const lp = procPort(local.port);
  for (const s of findSockets(text, `${la}:${lp}`, `${ra}:${procPort(remote.port)}`)) {
    if (s.inode !== 0) return { ...s, listener: false };
  }
  if (!allowListener) return null;
  const anyRemote = `${v6 ? '0'.repeat(32) : '00000000'}:0000`;
  for (const l of [la, v6 ? '0'.repeat(32) : '00000000']) {
    for (const s of findSockets(text, `${l}:${lp}`, anyRemote)) {
      if (s.state === TCP_LISTEN && s.inode !== 0) return { ...s, listener: true };
    }
  }
  return null;
}

/**
 * The socket that owns the `local` end of a UDP flow with `remote`, the way
 * the receive path picks one (net/ipv4/udp.c compute_score): a connected
 * socket first, then one bound to the address, then the wildcard.
 */
export function udpOwner(text: string, v6: boolean, local: Endpoint, remote: Endpoint): ProcSocket | null {
  const la = procAddr(local.addr, v6), ra = procAddr(remote.addr, v6);
  if (la === null || ra === null) return null;
  const lp = procPort(local.port);
  const any = v6 ? '0'.repeat(32) : '00000000';
  const anyRemote = `${any}:0000`;
  for (const [l, r] of [[`${la}:${lp}`, `${ra}:${procPort(remote.port)}`], [`${la}:${lp}`, anyRemote], [`${any}:${lp}`, anyRemote]]) {
    for (const s of findSockets(text, l, r)) if (s.inode !== 0) return s;
  }
  return null;
}
