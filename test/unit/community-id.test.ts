import { test } from 'node:test';
import assert from 'node:assert/strict';
import { communityId, communityIdFromStrings } from '../../src/community-id.js';

// Published Community ID test vectors (data only). For ICMP/ICMPv6, sport/dport
// are the message type/code as seen on the wire.
//   spec-table: corelight/community-id-spec baseline/README.md tables
//               ("Default settings", "A custom seed=1 value")
//   spec-json:  corelight/community-id-spec baseline/baseline_deflt.json and
//               baseline_seed1.json (their ICMP port columns are already mapped;
//               converted back to type/code here: two-way types get code 0)
//   pycid:      corelight/pycommunityid tests/communityid_test.py
interface Vector {
  name: string;
  proto: number;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  seed: number;
  id: string;
  /** True when the reversed tuple must hash the same. */
  twoWay: boolean;
}

const V6A = 'fe80:0001:0203:0405:0607:0809:0A0B:0C0D';
const V6B = 'fe80:1011:1213:1415:1617:1819:1A1B:1C1D';

const vectors: Vector[] = [
  // spec-table, seed 0
  { name: 'TCP v4', proto: 6, src: '1.2.3.4', dst: '5.6.7.8', sport: 1122, dport: 3344, seed: 0, id: '1:wCb3OG7yAFWelaUydu0D+125CLM=', twoWay: true },
  { name: 'UDP v4', proto: 17, src: '1.2.3.4', dst: '5.6.7.8', sport: 1122, dport: 3344, seed: 0, id: '1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg=', twoWay: true },
  { name: 'SCTP v4', proto: 132, src: '1.2.3.4', dst: '5.6.7.8', sport: 1122, dport: 3344, seed: 0, id: '1:EKt4MsxuyaE6mL+hmrEkQ9csDD8=', twoWay: true },
  { name: 'ICMP echo request', proto: 1, src: '1.2.3.4', dst: '5.6.7.8', sport: 8, dport: 0, seed: 0, id: '1:crodRHL2FEsHjbv3UkRrfbs4bZ0=', twoWay: false },
  { name: 'ICMP echo reply', proto: 1, src: '5.6.7.8', dst: '1.2.3.4', sport: 0, dport: 0, seed: 0, id: '1:crodRHL2FEsHjbv3UkRrfbs4bZ0=', twoWay: false },
  { name: 'ICMP time exceeded (one-way)', proto: 1, src: '1.2.3.4', dst: '5.6.7.8', sport: 11, dport: 0, seed: 0, id: '1:f/YiSyWqczrTgfUCZlBUnvHRcPk=', twoWay: false },
  { name: 'ICMPv6 echo request', proto: 58, src: V6A, dst: V6B, sport: 128, dport: 0, seed: 0, id: '1:0bf7hyMJUwt3fMED7z8LIfRpBeo=', twoWay: false },
  { name: 'ICMPv6 echo reply', proto: 58, src: V6B, dst: V6A, sport: 129, dport: 0, seed: 0, id: '1:0bf7hyMJUwt3fMED7z8LIfRpBeo=', twoWay: false },
  { name: 'ICMPv6 type 146 (one-way)', proto: 58, src: V6A, dst: V6B, sport: 146, dport: 0, seed: 0, id: '1:fYC8+pz24E+EhANP1EZhpX0Dw10=', twoWay: false },
  { name: 'RSVP v4 (no ports)', proto: 46, src: '1.2.3.4', dst: '5.6.7.8', sport: 0, dport: 0, seed: 0, id: '1:ikv3kmf89luf73WPz1jOs49S768=', twoWay: true },
  { name: 'RSVP v6 (no ports)', proto: 46, src: V6A, dst: V6B, sport: 0, dport: 0, seed: 0, id: '1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0=', twoWay: true },

  // spec-table, seed 1
  { name: 'TCP v4 seed 1', proto: 6, src: '1.2.3.4', dst: '5.6.7.8', sport: 1122, dport: 3344, seed: 1, id: '1:HhA1B+6CoLbiKPEs5nhNYN4XWfk=', twoWay: true },
  { name: 'UDP v4 seed 1', proto: 17, src: '1.2.3.4', dst: '5.6.7.8', sport: 1122, dport: 3344, seed: 1, id: '1:OShq+iKDAMVouh/4bMxB9Sz4amw=', twoWay: true },
  { name: 'SCTP v4 seed 1', proto: 132, src: '1.2.3.4', dst: '5.6.7.8', sport: 1122, dport: 3344, seed: 1, id: '1:uitchpn5MMGAQKBJh7bIr/bAr7s=', twoWay: true },
  { name: 'ICMP echo request seed 1', proto: 1, src: '1.2.3.4', dst: '5.6.7.8', sport: 8, dport: 0, seed: 1, id: '1:9pr4ZGTICiuZoIh90RRYE2RyXpU=', twoWay: false },
  { name: 'ICMP echo reply seed 1', proto: 1, src: '5.6.7.8', dst: '1.2.3.4', sport: 0, dport: 0, seed: 1, id: '1:9pr4ZGTICiuZoIh90RRYE2RyXpU=', twoWay: false },
  { name: 'ICMP time exceeded seed 1', proto: 1, src: '1.2.3.4', dst: '5.6.7.8', sport: 11, dport: 0, seed: 1, id: '1:1DD7cWGC/Yg91YGsQeni8du3pIA=', twoWay: false },
  { name: 'ICMPv6 echo request seed 1', proto: 58, src: V6A, dst: V6B, sport: 128, dport: 0, seed: 1, id: '1:IO27GQzPuCtNnwFvjWALMHu5tJE=', twoWay: false },
  { name: 'ICMPv6 type 146 seed 1', proto: 58, src: V6A, dst: V6B, sport: 146, dport: 0, seed: 1, id: '1:Cv4IKJe56BNkF0MBW2YxQ3Nwc3s=', twoWay: false },
  { name: 'RSVP v4 seed 1', proto: 46, src: '1.2.3.4', dst: '5.6.7.8', sport: 0, dport: 0, seed: 1, id: '1:/buhqeOmaRCopOZFy9HnoJd5XW8=', twoWay: true },
  { name: 'RSVP v6 seed 1', proto: 46, src: V6A, dst: V6B, sport: 0, dport: 0, seed: 1, id: '1:j6EyyfBzL4vWKHFXgUqb5Az3OxM=', twoWay: true },

  // spec-json, seed 0
  { name: 'TCP v6', proto: 6, src: '2001:470:e5bf:dead:4957:2174:e82c:4887', dst: '2607:f8b0:400c:c03::1a', sport: 63943, dport: 25, seed: 0, id: '1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=', twoWay: true },
  { name: 'SCTP v4 equal ports', proto: 132, src: '192.168.170.8', dst: '192.168.170.56', sport: 7, dport: 7, seed: 0, id: '1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=', twoWay: true },
  { name: 'RSVP v4 10.1.12.x', proto: 46, src: '10.1.12.1', dst: '10.1.12.2', sport: 0, dport: 0, seed: 0, id: '1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=', twoWay: true },
  { name: 'ICMP time exceeded 10.0.0.x', proto: 1, src: '10.0.0.1', dst: '10.0.0.2', sport: 11, dport: 0, seed: 0, id: '1:YHxtAirCG//0OzkcVAukqKQN9xM=', twoWay: false },
  { name: 'ICMPv6 dest unreachable code 4 (one-way)', proto: 58, src: '3ffe:501:410:0:2c0:dfff:fe47:33e', dst: '3ffe:507:0:1:200:86ff:fe05:80da', sport: 1, dport: 4, seed: 0, id: '1:hLZd0XGWojozrvxqE0dWB1iM6R0=', twoWay: false },
  { name: 'ICMPv6 time exceeded (one-way)', proto: 58, src: '3ffe:501:1800:2345::2', dst: '3ffe:507:0:1:200:86ff:fe05:80da', sport: 3, dport: 0, seed: 0, id: '1:2ObVBgIn28oZvibYZhZMBgh7WdQ=', twoWay: false },
  { name: 'ICMPv6 echo request to ::2', proto: 58, src: '3ffe:507:0:1:200:86ff:fe05:80da', dst: '3ffe:501:0:1001::2', sport: 128, dport: 0, seed: 0, id: '1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=', twoWay: false },
  { name: 'ICMPv6 echo reply from ::2', proto: 58, src: '3ffe:501:0:1001::2', dst: '3ffe:507:0:1:200:86ff:fe05:80da', sport: 129, dport: 0, seed: 0, id: '1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=', twoWay: false },
  { name: 'ICMPv6 router solicitation', proto: 58, src: 'fe80::200:86ff:fe05:80da', dst: 'ff02::2', sport: 133, dport: 0, seed: 0, id: '1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0=', twoWay: false },
  { name: 'ICMPv6 router advertisement', proto: 58, src: 'fe80::260:97ff:fe07:69ea', dst: 'ff02::1', sport: 134, dport: 0, seed: 0, id: '1:pkvHqCL88/tg1k4cPigmZXUtL00=', twoWay: false },
  { name: 'ICMPv6 neighbor solicitation, reverse pair', proto: 58, src: 'fe80::260:97ff:fe07:69ea', dst: 'fe80::200:86ff:fe05:80da', sport: 135, dport: 0, seed: 0, id: '1:zavyT/cezQr1fmImYCwYnMXbgck=', twoWay: false },

  // spec-json, seed 1
  { name: 'TCP v6 seed 1', proto: 6, src: '2001:470:e5bf:dead:4957:2174:e82c:4887', dst: '2607:f8b0:400c:c03::1a', sport: 63943, dport: 25, seed: 1, id: '1:eJYTW6AOzFLlSUoESovMjnu7rMw=', twoWay: true },
  { name: 'ICMPv6 router solicitation seed 1', proto: 58, src: 'fe80::200:86ff:fe05:80da', dst: 'ff02::2', sport: 133, dport: 0, seed: 1, id: '1:L7Ka0ZMYu+J3bL4ulW2PrqyXNo8=', twoWay: false },

  // pycid, seed 0 and seed 1
  { name: 'TCP v4 (pycid)', proto: 6, src: '128.232.110.120', dst: '66.35.250.204', sport: 34855, dport: 80, seed: 0, id: '1:LQU9qZlK+B5F3KDmev6m5PMibrg=', twoWay: true },
  { name: 'TCP v4 (pycid) seed 1', proto: 6, src: '128.232.110.120', dst: '66.35.250.204', sport: 34855, dport: 80, seed: 1, id: '1:3V71V58M3Ksw/yuFALMcW0LAHvc=', twoWay: true },
  { name: 'TCP v4 pycommunityid#3', proto: 6, src: '10.0.0.1', dst: '10.0.0.2', sport: 10, dport: 11569, seed: 0, id: '1:SXBGMX1lBOwhhoDrZynfROxnhnM=', twoWay: true },
  { name: 'UDP v4 DNS', proto: 17, src: '192.168.1.52', dst: '8.8.8.8', sport: 54585, dport: 53, seed: 0, id: '1:d/FP5EW3wiY1vCndhwleRRKHowQ=', twoWay: true },
  { name: 'UDP v4 DNS seed 1', proto: 17, src: '192.168.1.52', dst: '8.8.8.8', sport: 54585, dport: 53, seed: 1, id: '1:Q9We8WO3piVF8yEQBNJF4uiSVrI=', twoWay: true },
  { name: 'SCTP v4 (pycid)', proto: 132, src: '192.168.170.8', dst: '192.168.170.56', sport: 7, dport: 80, seed: 0, id: '1:jQgCxbku+pNGw8WPbEc/TS/uTpQ=', twoWay: true },
  { name: 'IP proto 46 (pycid)', proto: 46, src: '10.1.24.4', dst: '10.1.12.1', sport: 0, dport: 0, seed: 0, id: '1:/nQI4Rh/TtY3mf0R2gJFBkVlgS4=', twoWay: true },
  { name: 'IP proto 46 (pycid) seed 1', proto: 46, src: '10.1.24.4', dst: '10.1.12.1', sport: 0, dport: 0, seed: 1, id: '1:BK3BVW3U2eemuwVQVN3zd/GULno=', twoWay: true },
  { name: 'ICMP echo request (pycid)', proto: 1, src: '192.168.0.89', dst: '192.168.0.1', sport: 8, dport: 0, seed: 0, id: '1:X0snYXpgwiv9TZtqg64sgzUn6Dk=', twoWay: false },
  { name: 'ICMP echo reply (pycid)', proto: 1, src: '192.168.0.1', dst: '192.168.0.89', sport: 0, dport: 8, seed: 0, id: '1:X0snYXpgwiv9TZtqg64sgzUn6Dk=', twoWay: false },
  { name: 'ICMP echo reply, code ignored (pycid)', proto: 1, src: '192.168.0.1', dst: '192.168.0.89', sport: 0, dport: 20, seed: 0, id: '1:X0snYXpgwiv9TZtqg64sgzUn6Dk=', twoWay: false },
  { name: 'ICMP echo request (pycid) seed 1', proto: 1, src: '192.168.0.89', dst: '192.168.0.1', sport: 8, dport: 0, seed: 1, id: '1:03g6IloqVBdcZlPyX8r0hgoE7kA=', twoWay: false },
  { name: 'ICMP type 20 code 0 (one-way)', proto: 1, src: '192.168.0.89', dst: '192.168.0.1', sport: 20, dport: 0, seed: 0, id: '1:3o2RFccXzUgjl7zDpqmY7yJi8rI=', twoWay: false },
  { name: 'ICMP type 20 code 1 (one-way)', proto: 1, src: '192.168.0.89', dst: '192.168.0.1', sport: 20, dport: 1, seed: 0, id: '1:tz/fHIDUHs19NkixVVoOZywde+I=', twoWay: false },
  { name: 'ICMPv6 neighbor solicitation', proto: 58, src: 'fe80::200:86ff:fe05:80da', dst: 'fe80::260:97ff:fe07:69ea', sport: 135, dport: 0, seed: 0, id: '1:dGHyGvjMfljg6Bppwm3bg0LO8TY=', twoWay: false },
  { name: 'ICMPv6 neighbor advertisement', proto: 58, src: 'fe80::260:97ff:fe07:69ea', dst: 'fe80::200:86ff:fe05:80da', sport: 136, dport: 0, seed: 0, id: '1:dGHyGvjMfljg6Bppwm3bg0LO8TY=', twoWay: false },
  { name: 'ICMPv6 neighbor solicitation seed 1', proto: 58, src: 'fe80::200:86ff:fe05:80da', dst: 'fe80::260:97ff:fe07:69ea', sport: 135, dport: 0, seed: 1, id: '1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY=', twoWay: false },
  { name: 'ICMPv6 time exceeded a->b (one-way)', proto: 58, src: '3ffe:507:0:1:260:97ff:fe07:69ea', dst: '3ffe:507:0:1:200:86ff:fe05:80da', sport: 3, dport: 0, seed: 0, id: '1:NdobDX8PQNJbAyfkWxhtL2Pqp5w=', twoWay: false },
  { name: 'ICMPv6 time exceeded b->a (one-way)', proto: 58, src: '3ffe:507:0:1:200:86ff:fe05:80da', dst: '3ffe:507:0:1:260:97ff:fe07:69ea', sport: 3, dport: 0, seed: 0, id: '1:/OGBt9BN1ofenrmSPWYicpij2Vc=', twoWay: false },
];

/** Test-side reference parser, independent of the module's own. */
function bytes(addr: string): Buffer {
  if (!addr.includes(':')) return Buffer.from(addr.split('.').map(Number));
  const [head = '', tail = ''] = addr.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = addr.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

test('published vectors, from raw address bytes', () => {
  for (const v of vectors) {
    assert.equal(communityId(v.proto, bytes(v.src), bytes(v.dst), v.sport, v.dport, v.seed), v.id, v.name);
  }
});

test('published vectors, from textual addresses', () => {
  for (const v of vectors) {
    assert.equal(communityIdFromStrings(v.proto, v.src, v.dst, v.sport, v.dport, v.seed), v.id, v.name);
  }
});

test('two-way flows: swapping the endpoints yields the same ID', () => {
  let checked = 0;
  for (const v of vectors) {
    if (!v.twoWay) continue;
    assert.equal(communityIdFromStrings(v.proto, v.dst, v.src, v.dport, v.sport, v.seed), v.id, v.name);
    checked++;
  }
  assert.ok(checked >= 10);
  // Equal addresses: the ports decide the order.
  const a = communityIdFromStrings(6, '127.0.0.1', '127.0.0.1', 40000, 80);
  assert.equal(communityIdFromStrings(6, '127.0.0.1', '127.0.0.1', 80, 40000), a);
  assert.notEqual(communityIdFromStrings(6, '127.0.0.1', '127.0.0.1', 40000, 81), a);
});

test('ICMP request/reply pairs share an ID; one-way messages keep direction', () => {
  const v4pairs: Array<[number, number]> = [[8, 0], [13, 14], [15, 16], [10, 9], [17, 18]];
  for (const [req, rep] of v4pairs) {
    assert.equal(
      communityIdFromStrings(1, '10.0.0.1', '10.0.0.2', req, 0),
      communityIdFromStrings(1, '10.0.0.2', '10.0.0.1', rep, 0),
      `icmp ${req}/${rep}`,
    );
  }
  const v6pairs: Array<[number, number]> = [[128, 129], [130, 131], [133, 134], [135, 136], [139, 140], [144, 145]];
  for (const [req, rep] of v6pairs) {
    assert.equal(
      communityIdFromStrings(58, '2001:db8::1', '2001:db8::2', req, 0),
      communityIdFromStrings(58, '2001:db8::2', '2001:db8::1', rep, 0),
      `icmpv6 ${req}/${rep}`,
    );
  }
  // Destination unreachable is one-way: direction and code both matter.
  const unreach = communityIdFromStrings(1, '10.0.0.1', '10.0.0.2', 3, 1);
  assert.notEqual(communityIdFromStrings(1, '10.0.0.2', '10.0.0.1', 3, 1), unreach);
  assert.notEqual(communityIdFromStrings(1, '10.0.0.1', '10.0.0.2', 3, 3), unreach);
});

test('ports are ignored for protocols without them', () => {
  const id = '1:ikv3kmf89luf73WPz1jOs49S768=';
  assert.equal(communityIdFromStrings(46, '1.2.3.4', '5.6.7.8', 1234, 80), id);
  // DCCP and UDP-Lite are not port protocols in v1 of the spec.
  assert.equal(
    communityIdFromStrings(33, '1.2.3.4', '5.6.7.8', 1, 2),
    communityIdFromStrings(33, '5.6.7.8', '1.2.3.4', 0, 0),
  );
});

test('textual forms: compression, case, zones, IPv4-mapped', () => {
  const full = communityIdFromStrings(6, V6A, V6B, 1, 2);
  assert.equal(communityIdFromStrings(6, 'fe80:1:203:405:607:809:a0b:c0d', 'FE80:1011:1213:1415:1617:1819:1a1b:1c1d', 1, 2), full);
  assert.equal(communityIdFromStrings(6, 'fe80:1:203:405:607:809:a0b:c0d%eth0', V6B, 1, 2), full);

  const mapped = Buffer.from('00000000000000000000ffffc0000201', 'hex');
  const other = Buffer.from('00000000000000000000000000000001', 'hex');
  const want = communityId(17, mapped, other, 5353, 53);
  assert.equal(communityIdFromStrings(17, '::ffff:192.0.2.1', '::1', 5353, 53), want);
  assert.equal(communityIdFromStrings(17, '0:0:0:0:0:ffff:192.0.2.1', '0::0001', 5353, 53), want);
  assert.equal(communityIdFromStrings(17, '::ffff:c000:201', '0:0:0:0:0:0:0:1', 5353, 53), want);
  // Mapped stays IPv6: it is a different flow from the bare IPv4 one.
  assert.notEqual(communityIdFromStrings(17, '::ffff:192.0.2.1', '::ffff:0.0.0.1', 5353, 53),
    communityIdFromStrings(17, '192.0.2.1', '0.0.0.1', 5353, 53));

  const compat = Buffer.alloc(16);
  compat.set([1, 2, 3, 4], 12);
  assert.equal(communityIdFromStrings(6, '::1.2.3.4', '::', 1, 2), communityId(6, compat, Buffer.alloc(16), 1, 2));
  const tailv4 = Buffer.from('00010002000300040005000601020304', 'hex');
  assert.equal(communityIdFromStrings(6, '1:2:3:4:5:6:1.2.3.4', '::', 1, 2), communityId(6, tailv4, Buffer.alloc(16), 1, 2));
  const mid = Buffer.from('20010db8000000000000000000010002', 'hex');
  assert.equal(communityIdFromStrings(6, '2001:db8::1:2', '::', 1, 2), communityId(6, mid, Buffer.alloc(16), 1, 2));
});

test('rejects malformed input', () => {
  assert.throws(() => communityIdFromStrings(6, 'example.com', '1.2.3.4', 1, 2), RangeError);
  assert.throws(() => communityIdFromStrings(6, '1.2.3.4', '::1', 1, 2), RangeError);
  assert.throws(() => communityId(6, Buffer.alloc(4), Buffer.alloc(16), 1, 2), RangeError);
  assert.throws(() => communityId(6, Buffer.alloc(5), Buffer.alloc(5), 1, 2), RangeError);
  assert.throws(() => communityId(6, Buffer.alloc(4), Buffer.alloc(4), 65536, 2), RangeError);
  assert.throws(() => communityId(6, Buffer.alloc(4), Buffer.alloc(4), -1, 2), RangeError);
  assert.throws(() => communityId(256, Buffer.alloc(4), Buffer.alloc(4), 1, 2), RangeError);
  assert.throws(() => communityId(6, Buffer.alloc(4), Buffer.alloc(4), 1, 2, 70000), RangeError);
  // The seed is 16 bits: the largest one is accepted.
  assert.match(communityId(6, Buffer.alloc(4), Buffer.alloc(4), 1, 2, 0xffff), /^1:[A-Za-z0-9+/]{27}=$/);
});
