// src/ip.ts: address text from network-order bytes. IPv6 follows RFC 5952
// section 4 (leading zeros, lower case, :: for the longest run of two or more
// zero groups, the first on a tie, never for one group) and section 5 (IPv4-
// mapped addresses dotted).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4, ipv6, ipText } from '../../src/ip.js';

/** Bytes of an IPv6 address written out as eight full groups. */
function v6(groups: string): Buffer {
  const g = groups.split(':');
  assert.equal(g.length, 8);
  return Buffer.from(g.map((x) => x.padStart(4, '0')).join(''), 'hex');
}

test('IPv4: dotted quad, no leading zeros, at an offset', () => {
  assert.equal(ipv4(Buffer.from([10, 0, 0, 1])), '10.0.0.1');
  assert.equal(ipv4(Buffer.from([0, 0, 0, 0])), '0.0.0.0');
  assert.equal(ipv4(Buffer.from([255, 255, 255, 255])), '255.255.255.255');
  assert.equal(ipv4(Buffer.from([9, 9, 192, 0, 2, 7]), 2), '192.0.2.7');
  assert.equal(ipText(Buffer.from([1, 127, 0, 0, 1]), 1, 4), '127.0.0.1');
});

const CASES: Array<[string, string, string]> = [
  // [eight groups, RFC 5952 text, why]
  ['2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1', '4.1 leading zeros dropped; 4.2.1 longest run compressed'],
  ['2001:0db8:0000:0001:0001:0001:0001:0001', '2001:db8:0:1:1:1:1:1', '4.2.2 a single zero group is not compressed'],
  ['2001:0db8:0000:0000:0001:0000:0000:0001', '2001:db8::1:0:0:1', '4.2.3 equal runs: the first is compressed'],
  ['2001:0000:0000:0001:0000:0000:0000:0001', '2001:0:0:1::1', '4.2.3 the longest run wins over an earlier shorter one'],
  ['2001:0DB8:AAAA:BBBB:CCCC:DDDD:EEEE:0AAA', '2001:db8:aaaa:bbbb:cccc:dddd:eeee:aaa', '4.3 lower case'],
  ['0000:0000:0000:0000:0000:0000:0000:0000', '::', 'unspecified'],
  ['0000:0000:0000:0000:0000:0000:0000:0001', '::1', 'loopback'],
  ['2001:0db8:0000:0000:0000:0000:0000:0000', '2001:db8::', 'run at the end'],
  ['0000:0000:0000:0000:0000:0000:0000:0002', '::2', 'run at the start'],
  ['fe80:0000:0000:0000:0202:b3ff:fe1e:8329', 'fe80::202:b3ff:fe1e:8329', 'link-local'],
  ['0001:0000:0001:0000:0001:0000:0001:0000', '1:0:1:0:1:0:1:0', 'only single zero groups'],
  ['0000:0000:0000:0000:0000:ffff:c000:0201', '::ffff:192.0.2.1', '5 IPv4-mapped, dotted'],
  ['0000:0000:0000:0000:0000:0000:c000:0201', '::c000:201', 'IPv4-compatible (deprecated) is not dotted'],
  ['0064:ff9b:0000:0000:0000:0000:c000:0201', '64:ff9b::c000:201', 'NAT64 well-known prefix stays hex'],
  ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'no zeros'],
];

for (const [groups, want, why] of CASES) {
  test(`IPv6 ${want}: ${why}`, () => {
    assert.equal(ipv6(v6(groups)), want);
    // At an offset inside a larger buffer, as in a netlink attribute.
    const b = Buffer.concat([Buffer.from([0xaa, 0xbb, 0xcc]), v6(groups), Buffer.from([0xdd])]);
    assert.equal(ipv6(b, 3), want);
    assert.equal(ipText(b, 3, 16), want);
  });
}

test('IPv6 agrees with the WHATWG URL serializer (also RFC 5952 compression) on random addresses', () => {
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xffff;
  for (let i = 0; i < 5000; i++) {
    // Mostly zero groups, so that runs of every length and position occur.
    const g = Array.from({ length: 8 }, () => (rnd() % 3 === 0 ? rnd() : 0));
    if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) continue; // mapped: dotted here, hex there
    const b = Buffer.alloc(16);
    g.forEach((x, j) => b.writeUInt16BE(x, 2 * j));
    const url = new URL(`http://[${g.map((x) => x.toString(16)).join(':')}]/`).hostname.slice(1, -1);
    assert.equal(ipv6(b), url, g.join(':'));
  }
});
