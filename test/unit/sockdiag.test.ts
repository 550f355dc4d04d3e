// src/netlink/sockdiag.ts: inet_diag_req_v2 / inet_diag_msg codec
// (include/uapi/linux/inet_diag.h) checked byte by byte, and, as root, the
// client against this process's own TCP and UDP sockets: the inode it answers
// must be the one /proc/self/fd shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import dgram from 'node:dgram';
import { readlinkSync, mkdtempSync, openSync, closeSync, statSync, rmSync } from 'node:fs';
import { endianness, tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import {
  buildSockDiagRequest, addrBytes, decodeSockMsg, SockDiag,
  SOCK_DIAG_BY_FAMILY, IPPROTO_TCP, IPPROTO_UDP, ALL_STATES, TCP_LISTEN,
} from '../../src/netlink/sockdiag.js';
import { DecodeError } from '../../src/netlink/conntrack.js';
import { needRoot } from '../helpers.js';

const LE = endianness() === 'LE';
// Host-endian fields (nlmsghdr, idiag_states, idiag_uid, idiag_inode, nlattr).
const u16h = (b: Buffer, o: number) => (LE ? b.readUInt16LE(o) : b.readUInt16BE(o));
const u32h = (b: Buffer, o: number) => (LE ? b.readUInt32LE(o) : b.readUInt32BE(o));
const w16h = (b: Buffer, v: number, o: number) => (LE ? b.writeUInt16LE(v, o) : b.writeUInt16BE(v, o));
const w32h = (b: Buffer, v: number, o: number) => (LE ? b.writeUInt32LE(v, o) : b.writeUInt32BE(v, o));

/** 16 bytes of an IPv6 address given as eight full groups. */
const v6 = (groups: string) => Buffer.from(groups.replace(/:/g, ''), 'hex');
function addr(text: string, family: 'ipv4' | 'ipv6'): Buffer {
  const b = Buffer.alloc(16, 0xaa); // addrBytes must clear what it does not write
  addrBytes(text, family, b, 0);
  return b;
}

test('addrBytes: IPv4 in the first 4 bytes, the rest zero', () => {
  assert.deepEqual(addr('192.0.2.7', 'ipv4'), Buffer.from([192, 0, 2, 7, ...new Array(12).fill(0)]));
  assert.deepEqual(addr('0.0.0.0', 'ipv4'), Buffer.alloc(16));
  assert.deepEqual(addr('255.255.255.255', 'ipv4').subarray(0, 4), Buffer.from([255, 255, 255, 255]));
  // At an offset, leaving the neighbours alone.
  const b = Buffer.alloc(20, 0xee);
  addrBytes('10.0.0.1', 'ipv4', b, 2);
  assert.deepEqual(b.subarray(0, 2), Buffer.from([0xee, 0xee]));
  assert.deepEqual(b.subarray(2, 6), Buffer.from([10, 0, 0, 1]));
  assert.deepEqual(b.subarray(6, 18), Buffer.alloc(12));
  assert.deepEqual(b.subarray(18), Buffer.from([0xee, 0xee]));
});

test('addrBytes: IPv6 forms', () => {
  assert.deepEqual(addr('::', 'ipv6'), Buffer.alloc(16));
  assert.deepEqual(addr('::1', 'ipv6'), v6('0000:0000:0000:0000:0000:0000:0000:0001'));
  assert.deepEqual(addr('2001:db8::', 'ipv6'), v6('2001:0db8:0000:0000:0000:0000:0000:0000'));
  assert.deepEqual(addr('2001:db8::2:1', 'ipv6'), v6('2001:0db8:0000:0000:0000:0000:0002:0001'));
  assert.deepEqual(addr('fe80::202:b3ff:fe1e:8329', 'ipv6'), v6('fe80:0000:0000:0000:0202:b3ff:fe1e:8329'));
  assert.deepEqual(addr('2001:db8:aaaa:bbbb:cccc:dddd:eeee:aaa', 'ipv6'), v6('2001:0db8:aaaa:bbbb:cccc:dddd:eeee:0aaa'));
  assert.deepEqual(addr('2001:0DB8:0:0:1:0:0:1', 'ipv6'), v6('2001:0db8:0000:0000:0001:0000:0000:0001'));
  assert.deepEqual(addr('::ffff:192.0.2.1', 'ipv6'), v6('0000:0000:0000:0000:0000:ffff:c000:0201'));
  assert.deepEqual(addr('::ffff:127.0.0.1', 'ipv6'), v6('0000:0000:0000:0000:0000:ffff:7f00:0001'));
  assert.deepEqual(addr('64:ff9b::192.0.2.33', 'ipv6'), v6('0064:ff9b:0000:0000:0000:0000:c000:0221'));
});

test('buildSockDiagRequest: exact TCP/IPv4 lookup, byte by byte', () => {
  const b = buildSockDiagRequest({ family: 'ipv4', proto: IPPROTO_TCP, exact: { src: '10.0.0.5', sport: 38064, dst: '93.184.216.34', dport: 443 } }, 0x01020304);
  assert.equal(b.length, 16 + 56);
  // nlmsghdr (linux/netlink.h)
  assert.equal(u32h(b, 0), 72, 'nlmsg_len');
  assert.equal(u16h(b, 4), SOCK_DIAG_BY_FAMILY);
  assert.equal(SOCK_DIAG_BY_FAMILY, 20);
  assert.equal(u16h(b, 6), 0x1, 'NLM_F_REQUEST only: an exact lookup');
  assert.equal(u32h(b, 8), 0x01020304, 'nlmsg_seq');
  assert.equal(u32h(b, 12), 0, 'nlmsg_pid');
  // inet_diag_req_v2
  const o = 16;
  assert.equal(b[o], 2, 'sdiag_family AF_INET');
  assert.equal(b[o + 1], 6, 'sdiag_protocol IPPROTO_TCP');
  assert.equal(b[o + 2], 0, 'idiag_ext');
  assert.equal(b[o + 3], 0, 'pad');
  assert.equal(u32h(b, o + 4), ALL_STATES, 'idiag_states');
  // inet_diag_sockid: ports and addresses in network order
  assert.equal(b.readUInt16BE(o + 8), 38064, 'idiag_sport');
  assert.equal(b.readUInt16BE(o + 10), 443, 'idiag_dport');
  assert.deepEqual(b.subarray(o + 12, o + 28), Buffer.from([10, 0, 0, 5, ...new Array(12).fill(0)]), 'idiag_src');
  assert.deepEqual(b.subarray(o + 28, o + 44), Buffer.from([93, 184, 216, 34, ...new Array(12).fill(0)]), 'idiag_dst');
  assert.equal(u32h(b, o + 44), 0, 'idiag_if: any');
  assert.deepEqual(b.subarray(o + 48, o + 56), Buffer.alloc(8, 0xff), 'idiag_cookie INET_DIAG_NOCOOKIE');
});

test('buildSockDiagRequest: dump flags, state mask, IPv6 addresses', () => {
  const d = buildSockDiagRequest({ family: 'ipv6', proto: IPPROTO_UDP, states: 1 << TCP_LISTEN }, 7);
  assert.equal(u16h(d, 6), 0x301, 'NLM_F_REQUEST | NLM_F_DUMP');
  assert.equal(d[16], 10, 'AF_INET6');
  assert.equal(d[17], 17, 'IPPROTO_UDP');
  assert.equal(u32h(d, 20), 1 << 10);
  assert.deepEqual(d.subarray(24, 60), Buffer.alloc(36), 'no tuple in a dump');
  assert.deepEqual(d.subarray(64, 72), Buffer.alloc(8, 0xff));

  const e = buildSockDiagRequest({ family: 'ipv6', proto: IPPROTO_TCP, exact: { src: '::1', sport: 1, dst: '2001:db8:1:2:3:4:5:6', dport: 65535 } }, 8);
  assert.equal(u16h(e, 6), 0x1);
  assert.equal(e.readUInt16BE(24), 1);
  assert.equal(e.readUInt16BE(26), 65535);
  assert.deepEqual(e.subarray(28, 44), v6('0000:0000:0000:0000:0000:0000:0000:0001'));
  assert.deepEqual(e.subarray(44, 60), v6('2001:0db8:0001:0002:0003:0004:0005:0006'));
  const m = buildSockDiagRequest({ family: 'ipv6', proto: IPPROTO_UDP, exact: { src: '::ffff:10.1.2.3', sport: 53, dst: '::', dport: 0 } }, 9);
  assert.deepEqual(m.subarray(28, 44), v6('0000:0000:0000:0000:0000:ffff:0a01:0203'));
  assert.deepEqual(m.subarray(44, 60), Buffer.alloc(16));
});

const CGROUP_ID = 21; // INET_DIAG_CGROUP_ID

/** An inet_diag_msg as the kernel writes it, plus attributes. */
function diagMsg(f: { family: number; state: number; sport: number; dport: number; src: Buffer; dst: Buffer; uid: number; inode: number }, attrs: Buffer[] = []): Buffer {
  const m = Buffer.alloc(72);
  m[0] = f.family;
  m[1] = f.state;
  m[2] = 1; // idiag_timer
  m[3] = 0; // idiag_retrans
  m.writeUInt16BE(f.sport, 4);
  m.writeUInt16BE(f.dport, 6);
  f.src.copy(m, 8);
  f.dst.copy(m, 24);
  w32h(m, 3, 40); // idiag_if
  m.writeUInt32LE(0x12345678, 44); // cookie
  m.writeUInt32LE(0x9abcdef0, 48);
  w32h(m, 200, 52); // expires
  w32h(m, 0, 56); // rqueue
  w32h(m, 17, 60); // wqueue
  w32h(m, f.uid, 64);
  w32h(m, f.inode, 68);
  return Buffer.concat([m, ...attrs]);
}

function attr(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const a = Buffer.alloc((len + 3) & ~3);
  w16h(a, len, 0);
  w16h(a, type, 2);
  payload.copy(a, 4);
  return a;
}

function u64h(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  if (LE) b.writeBigUInt64LE(v); else b.writeBigUInt64BE(v);
  return b;
}

test('decodeSockMsg: IPv4 TCP message with a cgroup id and an unknown attribute', () => {
  const src = Buffer.alloc(16); Buffer.from([10, 0, 0, 5]).copy(src);
  const dst = Buffer.alloc(16); Buffer.from([93, 184, 216, 34]).copy(dst);
  const body = diagMsg({ family: 2, state: 1, sport: 38064, dport: 443, src, dst, uid: 1000, inode: 631905 }, [
    attr(4, Buffer.from([0, 0, 0, 0, 0])), // INET_DIAG_INFO, odd length: padded, skipped
    attr(CGROUP_ID, u64h(0x1_0000_2a2an)),
  ]);
  // At an offset inside a larger buffer, as in a netlink datagram.
  const buf = Buffer.concat([Buffer.alloc(16, 0x55), body, Buffer.alloc(8, 0x66)]);
  const info = decodeSockMsg(buf, 16, 16 + body.length);
  assert.deepEqual(info, { family: 'ipv4', state: 1, sport: 38064, dport: 443, src: '10.0.0.5', dst: '93.184.216.34', uid: 1000, inode: 631905, cgroupId: 0x1_0000_2a2an });
});

test('decodeSockMsg: IPv6 listener, no attributes, large uid and inode', () => {
  const body = diagMsg({ family: 10, state: TCP_LISTEN, sport: 22, dport: 0, src: v6('0000:0000:0000:0000:0000:ffff:c000:0201'), dst: Buffer.alloc(16), uid: 4294967294, inode: 4000000000 });
  const info = decodeSockMsg(body, 0, body.length);
  assert.deepEqual(info, { family: 'ipv6', state: 10, sport: 22, dport: 0, src: '::ffff:192.0.2.1', dst: '::', uid: 4294967294, inode: 4000000000 });
  assert.equal('cgroupId' in info, false);
});

test('decodeSockMsg: truncated input throws DecodeError', () => {
  const body = diagMsg({ family: 2, state: 1, sport: 1, dport: 2, src: Buffer.alloc(16), dst: Buffer.alloc(16), uid: 0, inode: 1 }, [attr(CGROUP_ID, u64h(5n))]);
  assert.throws(() => decodeSockMsg(body, 0, 71), DecodeError);
  assert.throws(() => decodeSockMsg(body, 0, 0), DecodeError);
  assert.throws(() => decodeSockMsg(body, 10, 72), DecodeError);
  // The attribute cut short: its length runs past the end.
  assert.throws(() => decodeSockMsg(body, 0, 72 + 8), DecodeError);
  // An attribute length below its own header.
  const bad = Buffer.from(body);
  w16h(bad, 2, 72);
  assert.throws(() => decodeSockMsg(bad, 0, bad.length), DecodeError);
  // Fewer than 4 trailing bytes are padding, not an attribute.
  assert.equal(decodeSockMsg(body, 0, 75).inode, 1);
});

/** The inode /proc/self/fd shows for a Node socket. */
function inodeOf(handle: unknown): number {
  const fd = (handle as { fd?: number }).fd;
  assert.ok(typeof fd === 'number' && fd >= 0, 'a socket handle with an fd');
  const link = readlinkSync(`/proc/self/fd/${fd}`);
  const m = /^socket:\[(\d+)\]$/.exec(link);
  assert.ok(m, link);
  return Number(m[1]);
}

/** A listener on loopback and a client connected to it, closed after the test. */
async function tcpPair(t: { after: (fn: () => void) => void }): Promise<{ server: net.Server; accepted: net.Socket[]; port: number; client: net.Socket }> {
  const accepted: net.Socket[] = [];
  const server = net.createServer((s) => accepted.push(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  const client = net.connect(port, '127.0.0.1');
  await once(client, 'connect');
  t.after(() => client.destroy());
  t.after(() => { for (const s of accepted) s.destroy(); });
  return { server, accepted, port, client };
}

test('SockDiag against this process\'s TCP sockets: client, accepted, listener', { skip: needRoot() }, async (t) => {
  const diag = new SockDiag();
  t.after(() => diag.close());
  const { server, accepted, port, client } = await tcpPair(t);
  while (!accepted.length) await new Promise((r) => setImmediate(r));
  const cport = client.localPort!;
  const uid = process.getuid!();

  const [c] = await diag.query({ family: 'ipv4', proto: IPPROTO_TCP, exact: { src: '127.0.0.1', sport: cport, dst: '127.0.0.1', dport: port } });
  assert.ok(c, 'the client socket is found');
  assert.equal(c.inode, inodeOf((client as any)._handle));
  assert.equal(c.uid, uid);
  assert.equal(c.state, 1, 'ESTABLISHED');
  assert.deepEqual([c.src, c.sport, c.dst, c.dport], ['127.0.0.1', cport, '127.0.0.1', port]);

  const [a] = await diag.query({ family: 'ipv4', proto: IPPROTO_TCP, exact: { src: '127.0.0.1', sport: port, dst: '127.0.0.1', dport: cport } });
  assert.equal(a.inode, inodeOf((accepted[0] as any)._handle));
  assert.notEqual(a.inode, c.inode);

  const [l] = await diag.query({ family: 'ipv4', proto: IPPROTO_TCP, exact: { src: '127.0.0.1', sport: port, dst: '0.0.0.0', dport: 0 } });
  assert.equal(l.state, TCP_LISTEN);
  assert.equal(l.inode, inodeOf((server as any)._handle));

  // No such socket: an empty answer, not an error.
  assert.deepEqual(await diag.query({ family: 'ipv4', proto: IPPROTO_TCP, exact: { src: '127.0.0.1', sport: cport, dst: '127.0.0.1', dport: 1 } }), []);

  // An IPv4 connection accepted by a dual-stack IPv6 listener: found by an IPv4 lookup, v4-mapped addresses.
  const accepted6: net.Socket[] = [];
  const server6 = net.createServer((s) => accepted6.push(s));
  server6.listen({ port: 0, host: '::', ipv6Only: false });
  await once(server6, 'listening');
  t.after(() => server6.close());
  const port6 = (server6.address() as net.AddressInfo).port;
  const client6 = net.connect(port6, '127.0.0.1');
  await once(client6, 'connect');
  t.after(() => client6.destroy());
  while (!accepted6.length) await new Promise((r) => setImmediate(r));
  const [m] = await diag.query({ family: 'ipv4', proto: IPPROTO_TCP, exact: { src: '127.0.0.1', sport: port6, dst: '127.0.0.1', dport: client6.localPort! } });
  assert.equal(m.inode, inodeOf((accepted6[0] as any)._handle));
  assert.deepEqual([m.family, m.src, m.dst], ['ipv6', '::ffff:127.0.0.1', '::ffff:127.0.0.1']);
  for (const s of accepted6) s.destroy();

  // A dump of listeners includes ours.
  const all = await diag.query({ family: 'ipv4', proto: IPPROTO_TCP, states: 1 << TCP_LISTEN });
  assert.ok(all.some((s) => s.inode === l.inode && s.sport === port));
  assert.ok(all.every((s) => s.state === TCP_LISTEN));
  for (const s of accepted) s.destroy();
});

test('SockDiag reads answers in the call that sent the request, and answers the same as through the event loop', { skip: needRoot() }, async (t) => {
  const { server, port, client } = await tcpPair(t);
  const cport = client.localPort!;
  // 300 lookups in one turn (more than may be in flight at once), half of
  // them for no socket, then a dump of listeners, which comes in parts.
  const ask = async (diag: SockDiag) => {
    const qs = [];
    for (let i = 0; i < 300; i++) {
      qs.push(diag.query({ family: 'ipv4', proto: IPPROTO_TCP, exact: { src: '127.0.0.1', sport: cport, dst: '127.0.0.1', dport: i % 2 ? port : 1 + i } }));
    }
    const found = (await Promise.all(qs)).map((r) => r.map((x) => x.inode));
    const dump = (await diag.query({ family: 'ipv4', proto: IPPROTO_TCP, states: 1 << TCP_LISTEN })).map((x) => x.inode).sort();
    return { found, dump };
  };
  const direct = new SockDiag();
  t.after(() => direct.close());
  const looped = new SockDiag(2000, { direct: false });
  t.after(() => looped.close());
  const a = await ask(direct);
  const b = await ask(looped);
  const inode = inodeOf((client as any)._handle);
  assert.deepEqual(a.found, b.found);
  assert.deepEqual(a.found[1], [inode]);
  assert.deepEqual(a.found[0], []);
  assert.ok(a.dump.includes(inodeOf((server as any)._handle)));
  assert.deepEqual(a.dump, b.dump);
  assert.equal(direct.direct.datagrams, direct.sent.datagrams, 'every datagram answered at once');
  assert.ok(direct.direct.reads >= 301, `answers read at once: ${direct.direct.reads}`);
  assert.equal(looped.direct.reads, 0);
});

test('SockDiag closed with a lookup on its way: the lookup fails, and nothing is written to a file that took the socket\'s number', { skip: needRoot() }, async () => {
  const diag = new SockDiag();
  const fd = (diag as any).fd as number | null;
  assert.ok(typeof fd === 'number', 'the socket\'s descriptor was found');
  const dir = mkdtempSync(path.join(tmpdir(), 'ctp-sockdiag-'));
  const file = path.join(dir, 'f');
  const opened: number[] = [];
  try {
    // Asked, then closed in the same turn: the request leaves (or not) after close().
    const q = diag.query({ family: 'ipv4', proto: IPPROTO_TCP, exact: { src: '127.0.0.1', sport: 1, dst: '127.0.0.1', dport: 2 } });
    diag.close();
    // Open files until one gets the closed socket's number (the lowest free one is given).
    for (let i = 0; i < 256 && !opened.includes(fd!); i++) opened.push(openSync(file, 'a'));
    assert.ok(opened.includes(fd!), 'a file got the socket\'s number');
    await assert.rejects(q, /closed/);
    assert.equal(statSync(file).size, 0, 'nothing written to the file');
  } finally {
    for (const f of opened) closeSync(f);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SockDiag against this process\'s UDP sockets: looked up from the remote end, as the receive path does', { skip: needRoot() }, async (t) => {
  const diag = new SockDiag();
  t.after(() => diag.close());
  const uid = process.getuid!();

  // Unconnected, bound to one address.
  const a = dgram.createSocket('udp4');
  a.bind(0, '127.0.0.1');
  await once(a, 'listening');
  t.after(() => a.close());
  const aport = a.address().port;
  const [ra] = await diag.query({ family: 'ipv4', proto: IPPROTO_UDP, exact: { src: '127.0.0.1', sport: 40000, dst: '127.0.0.1', dport: aport } });
  assert.ok(ra, 'the unconnected socket is found');
  assert.equal(ra.inode, inodeOf(handleOf(a)));
  assert.equal(ra.uid, uid);

  // Connected: the remote end must match.
  const b = dgram.createSocket('udp4');
  b.bind(0, '127.0.0.1');
  await once(b, 'listening');
  b.connect(aport, '127.0.0.1');
  await once(b, 'connect');
  t.after(() => b.close());
  const bport = b.address().port;
  const [rb] = await diag.query({ family: 'ipv4', proto: IPPROTO_UDP, exact: { src: '127.0.0.1', sport: aport, dst: '127.0.0.1', dport: bport } });
  assert.equal(rb.inode, inodeOf(handleOf(b)));
  assert.equal(rb.dport, aport, 'a connected socket reports its peer');

  // Bound to the IPv6 wildcard: found for an IPv6 lookup to any local address.
  const c = dgram.createSocket({ type: 'udp6', ipv6Only: true });
  c.bind(0, '::');
  await once(c, 'listening');
  t.after(() => c.close());
  const cport = c.address().port;
  const [rc] = await diag.query({ family: 'ipv6', proto: IPPROTO_UDP, exact: { src: '::1', sport: 40001, dst: '::1', dport: cport } });
  assert.equal(rc.inode, inodeOf(handleOf(c)));
  assert.equal(rc.src, '::');

  // Dual-stack, bound to '::': an IPv4 lookup (what an IPv4 conntrack event asks) finds it.
  const e = dgram.createSocket({ type: 'udp6', ipv6Only: false });
  e.bind(0, '::');
  await once(e, 'listening');
  t.after(() => e.close());
  const [re] = await diag.query({ family: 'ipv4', proto: IPPROTO_UDP, exact: { src: '127.0.0.1', sport: 40003, dst: '127.0.0.1', dport: e.address().port } });
  assert.equal(re.inode, inodeOf(handleOf(e)));
  assert.equal(re.family, 'ipv6', 'the socket says its own family');
  const [rm] = await diag.query({ family: 'ipv6', proto: IPPROTO_UDP, exact: { src: '::ffff:127.0.0.1', sport: 40003, dst: '::ffff:127.0.0.1', dport: e.address().port } });
  assert.equal(rm.inode, re.inode, 'v4-mapped IPv6 lookup, same socket');

  // Bound to 0.0.0.0.
  const d = dgram.createSocket('udp4');
  d.bind(0, '0.0.0.0');
  await once(d, 'listening');
  t.after(() => d.close());
  const [rd] = await diag.query({ family: 'ipv4', proto: IPPROTO_UDP, exact: { src: '127.0.0.1', sport: 40002, dst: '127.0.0.1', dport: d.address().port } });
  assert.equal(rd.inode, inodeOf(handleOf(d)));
});

/** The libuv handle of a dgram socket (Node keeps it under Symbol(state symbol)). */
function handleOf(s: dgram.Socket): unknown {
  const sym = Object.getOwnPropertySymbols(s).find((x) => x.description === 'state symbol');
  assert.ok(sym, 'dgram socket state');
  return (s as any)[sym].handle;
}
