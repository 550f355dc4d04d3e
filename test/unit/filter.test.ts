// ct-filter's library: criteria (src/filter/match.ts), addresses and CIDR
// prefixes (src/filter/net.ts), type checks (src/filter/validate.ts), and
// the line processor (src/filter/processor.ts), in process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileFilter, numberSet, globToRegExp, SpecError, type FilterSpec } from '../../src/filter/match.js';
import { parseAddr, parseCidr, parseIpv4, inCidr, broadcastOf, CidrError } from '../../src/filter/net.js';
import { compileCheck, checkRecord } from '../../src/filter/validate.js';
import { createProcessor } from '../../src/filter/processor.js';
import { processChunk, type Diag } from '../../src/lines/chunk.js';

const base = {
  ts: '2026-11-23T09:42:44.164506Z', event: 'new', id: 1, family: 'ipv4', proto: 'tcp',
  src: '10.0.0.5', sport: 41856, dst: '93.184.216.34', dport: 443,
  reply: { src: '93.184.216.34', sport: 443, dst: '192.0.2.7', dport: 41856 },
  status: ['CONFIRMED'], direction: 'out',
  process: { pid: 2314, uid: 1000, user: 'alice', comm: 'curl', exe: '/usr/bin/curl', unit: 'session-3.scope', container: null },
  attribution: { method: 'sock_diag', ok: true },
};
type Ev = Record<string, any>;
const ev = (over: Ev = {}): Ev => ({ ...base, ...over });
const keep = (spec: FilterSpec, e: Ev) => compileFilter(spec).keep(e);

test('parseIpv4: dotted quads only, no leading zeros', () => {
  assert.equal(parseIpv4('10.0.0.5'), 0x0a000005);
  assert.equal(parseIpv4('255.255.255.255'), 0xffffffff);
  for (const bad of ['10.0.0', '10.0.0.256', '010.0.0.1', '1.2.3.4.5', '1..2.3', 'a.b.c.d', '']) assert.equal(parseIpv4(bad), -1, bad);
});

test('parseAddr: IPv6 forms, zone ids, IPv4-mapped read as IPv4', () => {
  assert.deepEqual(parseAddr('::1'), { v4: false, w: [0, 0, 0, 1] });
  assert.deepEqual(parseAddr('2001:db8::1'), { v4: false, w: [0x20010db8, 0, 0, 1] });
  assert.deepEqual(parseAddr('fe80::1%eth0'), { v4: false, w: [0xfe800000, 0, 0, 1] });
  assert.deepEqual(parseAddr('::ffff:10.1.2.3'), { v4: true, w: [0x0a010203] });
  assert.deepEqual(parseAddr('64:ff9b::192.0.2.1'), { v4: false, w: [0x0064ff9b, 0, 0, 0xc0000201] });
  assert.deepEqual(parseAddr('1:2:3:4:5:6:7:8'), { v4: false, w: [0x10002, 0x30004, 0x50006, 0x70008] });
  for (const bad of ['1::2::3', '12345::', '1:2:3:4:5:6:7', 'g::1', ':::', 'example.com']) assert.equal(parseAddr(bad), null, bad);
});

test('parseCidr and inCidr: prefix lengths, dotted masks, bare addresses, mapped prefixes', () => {
  const a = (s: string) => parseAddr(s)!;
  assert.ok(inCidr(a('10.255.1.2'), parseCidr('10.0.0.0/8')));
  assert.ok(!inCidr(a('11.0.0.1'), parseCidr('10.0.0.0/8')));
  assert.ok(inCidr(a('192.168.1.77'), parseCidr('192.168.1.0/255.255.255.0')), "ctrecorder's IP/MASK");
  assert.ok(inCidr(a('192.168.1.77'), parseCidr('192.168.1.77')));
  assert.ok(!inCidr(a('192.168.1.78'), parseCidr('192.168.1.77')));
  assert.ok(inCidr(a('2001:db8:ffff::1'), parseCidr('2001:db8::/32')));
  assert.ok(!inCidr(a('2001:db9::1'), parseCidr('2001:db8::/32')));
  assert.ok(inCidr(a('2001:db8::1:0:1'), parseCidr('2001:db8::/80')));
  assert.ok(!inCidr(a('2001:db8:0:0:1::1'), parseCidr('2001:db8::/80')));
  assert.ok(inCidr(a('::ffff:10.1.2.3'), parseCidr('10.0.0.0/8')), 'mapped address in an IPv4 prefix');
  assert.ok(inCidr(a('10.1.2.3'), parseCidr('::ffff:10.0.0.0/104')), 'IPv4 address in a mapped prefix');
  assert.ok(!inCidr(a('10.1.2.3'), parseCidr('::/0')), 'families do not mix');
  assert.ok(inCidr(a('1.2.3.4'), parseCidr('0.0.0.0/0')));
  assert.ok(inCidr(a('172.31.255.255'), parseCidr('172.16.0.0/12')));
  assert.ok(!inCidr(a('172.32.0.0'), parseCidr('172.16.0.0/12')));
  for (const bad of ['10.0.0.0/33', '2001:db8::/129', '10.0.0.0/255.0.255.0', 'nonsense/8', '10.0.0.0/x']) {
    assert.throws(() => parseCidr(bad), CidrError, bad);
  }
});

test('broadcastOf: the directed broadcast address of an interface', () => {
  assert.equal(broadcastOf('192.168.1.20', '255.255.255.0'), '192.168.1.255');
  assert.equal(broadcastOf('10.0.4.9', '255.255.252.0'), '10.0.7.255');
  assert.equal(broadcastOf('10.0.0.1', '255.255.255.255'), null);
  assert.equal(broadcastOf('10.0.0.1', '255.255.255.254'), null);
});

test('numberSet: numbers, ranges, lists; bad values are SpecErrors', () => {
  const has = numberSet(['22', '8000-8999'], '--port', 65535);
  assert.ok(has(22) && has(8000) && has(8999) && !has(23) && !has(9000) && !has(undefined) && !has('22'));
  assert.throws(() => numberSet(['http'], '--port', 65535), SpecError);
  assert.throws(() => numberSet(['70000'], '--port', 65535), /out of range/);
  assert.throws(() => numberSet(['9-1'], '--port', 65535), /backwards/);
  assert.ok(numberSet(['1000-60000'], '--uid', 4294967295)(4000));
});

test('globToRegExp: * ? [..] [!..] and escapes, matching the whole text', () => {
  assert.ok(globToRegExp('python*').test('python3.11'));
  assert.ok(!globToRegExp('python*').test('ipython'));
  assert.ok(globToRegExp('/usr/*/curl').test('/usr/bin/curl'));
  assert.ok(globToRegExp('ct-?').test('ct-x') && !globToRegExp('ct-?').test('ct-xy'));
  assert.ok(globToRegExp('[a-c]x').test('bx') && !globToRegExp('[!a-c]x').test('bx'));
  assert.ok(globToRegExp('a.b+(c)').test('a.b+(c)') && !globToRegExp('a.b').test('axb'));
  assert.ok(globToRegExp('\\*').test('*') && !globToRegExp('\\*').test('x'));
});

test('one criterion: proto, event, ports, addresses, direction', () => {
  assert.ok(keep({ proto: ['udp,tcp'] }, ev()));
  assert.ok(!keep({ proto: ['udp'] }, ev()));
  assert.ok(keep({ event: ['new'] }, ev()) && !keep({ event: ['destroy'] }, ev()));
  assert.ok(keep({ port: ['443'] }, ev()) && keep({ port: ['41856'] }, ev()));
  assert.ok(keep({ port: ['8080'] }, ev({ dport: 80, reply: { ...base.reply, sport: 8080 } })), '--port sees the NATed port');
  assert.ok(keep({ sport: ['41856'] }, ev()) && !keep({ sport: ['443'] }, ev()));
  assert.ok(keep({ dport: ['400-500'] }, ev()) && !keep({ dport: ['41856'] }, ev()));
  assert.ok(keep({ net: ['192.0.2.0/24'] }, ev()), '--net sees the reply (SNAT) address');
  assert.ok(keep({ src: ['10.0.0.0/8'] }, ev()) && !keep({ dst: ['10.0.0.0/8'] }, ev()));
  assert.ok(keep({ dst: ['93.184.216.0/24', '2001:db8::/32'] }, ev()));
  assert.ok(keep({ direction: ['out'] }, ev()) && !keep({ direction: ['in,local'] }, ev()));
  assert.ok(!keep({ port: ['1'] }, ev({ proto: 'icmp', sport: undefined, dport: undefined, reply: { src: 'x', dst: 'y' } })));
});

test('owner criteria: uid, user, comm, exe, unit, container (id, short id, name, image)', () => {
  assert.ok(keep({ uid: ['1000'] }, ev()) && !keep({ uid: ['0'] }, ev()));
  assert.ok(keep({ user: ['al*'] }, ev()) && !keep({ user: ['root'] }, ev()));
  assert.ok(keep({ comm: ['curl'] }, ev()) && keep({ exe: ['/usr/bin/*'] }, ev()) && keep({ unit: ['*.scope'] }, ev()));
  assert.ok(!keep({ container: ['*'] }, ev()), 'no container');
  const c = ev({ process: { ...base.process, container: { id: '0123456789abcdef0123', runtime: 'docker', name: 'db', image: 'postgres:15' } } });
  for (const g of ['*', '0123456789ab', '0123456789abcdef0123', 'db', 'postgres:*']) assert.ok(keep({ container: [g] }, c), g);
  assert.ok(!keep({ container: ['web'] }, c));
  assert.ok(!keep({ user: ['*'] }, ev({ process: undefined })), 'no process: owner criteria do not match');
});

test('AND across criteria, OR within one; -v inverts the selection only', () => {
  const spec = { proto: ['tcp'], dport: ['443', '80'] };
  assert.ok(keep(spec, ev()));
  assert.ok(keep(spec, ev({ dport: 80 })));
  assert.ok(!keep(spec, ev({ dport: 22 })));
  assert.ok(!keep(spec, ev({ proto: 'udp' })));
  assert.ok(!keep({ ...spec, invert: true }, ev()));
  assert.ok(keep({ ...spec, invert: true }, ev({ proto: 'udp' })));
  // the drop sets still apply under -v
  assert.ok(!keep({ proto: ['tcp'], invert: true, noDns: true }, ev({ proto: 'udp', dport: 53 })));
  assert.throws(() => compileFilter({ invert: true }), /needs a criterion/);
});

test('--no-dns: 53, 5353, 5355 at either end, TCP and UDP only', () => {
  for (const [p, s, d] of [['udp', 40000, 53], ['tcp', 53, 40000], ['udp', 5353, 5353], ['udp', 40000, 5355]] as const) {
    assert.ok(!keep({ noDns: true }, ev({ proto: p, sport: s, dport: d })), `${p} ${s}->${d}`);
  }
  assert.ok(keep({ noDns: true }, ev()));
  assert.ok(keep({ noDns: true }, ev({ proto: 'sctp', dport: 53 })));
});

test('--no-multicast, --no-loopback, --no-unattributed', () => {
  for (const d of ['224.0.0.251', '239.1.2.3', 'ff02::fb', '255.255.255.255', '192.168.1.255']) {
    assert.ok(!keep({ noMulticast: true, broadcast: ['192.168.1.255'] }, ev({ dst: d })), d);
  }
  assert.ok(keep({ noMulticast: true }, ev()));
  for (const [s, d] of [['127.0.0.1', '127.0.0.1'], ['10.0.0.5', '127.0.0.53'], ['::1', '::1'], ['::ffff:127.0.0.1', '10.0.0.1']]) {
    assert.ok(!keep({ noLoopback: true }, ev({ src: s, dst: d })), `${s} ${d}`);
  }
  assert.ok(keep({ noLoopback: true }, ev()));
  assert.ok(!keep({ noUnattributed: true }, ev({ process: undefined })));
  assert.ok(keep({ noUnattributed: true }, ev()));
});

test('--no-self uses the detector it is given', () => {
  const self = { isSelf: (e: Ev) => e.process?.pid === 2314 };
  assert.ok(!keep({ self }, ev()));
  assert.ok(keep({ self }, ev({ process: { ...base.process, pid: 1 } })));
});

test('needsAttribution and fields say what the criteria read', () => {
  assert.deepEqual(compileFilter({ proto: ['tcp'], dport: ['1'] }).needsAttribution, []);
  assert.deepEqual(compileFilter({ user: ['x'], direction: ['in'], noUnattributed: true }).needsAttribution, ['--direction', '--user', '--no-unattributed']);
  assert.deepEqual(compileFilter({ proto: ['tcp'], port: ['1'] }).fields.sort(), ['dport', 'event', 'proto', 'reply', 'sport']);
});

test('bad option values are SpecErrors', () => {
  assert.throws(() => compileFilter({ event: ['created'] }), SpecError);
  assert.throws(() => compileFilter({ direction: ['up'] }), SpecError);
  assert.throws(() => compileFilter({ net: ['10.0.0.0/40'] }), /--net/);
  assert.throws(() => compileFilter({ uid: ['root'] }), /--uid/);
});

test('compileCheck: the event field, contract types of the fields read', () => {
  assert.equal(checkRecord(ev()), null);
  assert.equal(checkRecord({ ts: 'x' }), 'no "event" field');
  assert.match(checkRecord({ event: 5 })!, /^event: expected a string/);
  assert.equal(checkRecord({ event: 'overrun', lost: 'many' }), null, 'special records are not checked');
  assert.match(checkRecord(ev({ sport: '80' }))!, /^sport: expected a port number/);
  assert.match(checkRecord(ev({ dport: 70000 }))!, /^dport: /);
  assert.match(checkRecord(ev({ reply: { src: 1 } }))!, /^reply\.src: expected a string/);
  assert.match(checkRecord(ev({ process: 'curl' }))!, /^process: expected an object/);
  assert.match(checkRecord(ev({ process: { pid: '1' } }))!, /^process\.pid: expected a whole number/);
  assert.match(checkRecord(ev({ process: { pid: 1, cmdline: 'a b' } }))!, /^process\.cmdline: expected an array of strings/);
  assert.match(checkRecord(ev({ process: { pid: 1, container: 'x' } }))!, /^process\.container: /);
  assert.match(checkRecord(ev({ status: 'CONFIRMED' }))!, /^status: /);
  // a check limited to some fields ignores the others
  const c = compileCheck(['proto', 'dport']);
  assert.equal(c(ev({ sport: 'x' })), null);
  assert.match(c(ev({ dport: 'x' }))!, /^dport/);
});

test('processor: passes kept lines byte for byte, special records always, reports bad lines', () => {
  const p = createProcessor({ spec: { proto: ['udp'] } });
  const lines = [
    JSON.stringify(ev({ proto: 'udp' })).replace('{', '{ '), // odd spacing survives untouched
    JSON.stringify(ev()),
    '{"ts":"2026-11-23T09:42:45Z","event":"overrun","lost":3}',
    'not json',
    '[1,2]',
    JSON.stringify(ev({ proto: 5 })),
    '',
    '   ',
    JSON.stringify(ev({ proto: 'udp', x: '\u00e9\u2603' })) + '\r',
  ];
  const r = processChunk(Buffer.from(lines.join('\n') + '\n'), p, 1 << 20);
  assert.equal(r.out.toString(), [lines[0], lines[2], lines[8].slice(0, -1)].join('\n') + '\n');
  assert.equal(r.lines, 9);
  assert.equal(r.bad, 3);
  assert.deepEqual(r.diags.map((d: Diag) => [d.no, d.kind]), [[4, 'bad'], [5, 'bad'], [6, 'bad']]);
  assert.match(r.diags[0].message, /^not JSON: /);
  assert.match(r.diags[1].message, /^not a JSON object: array/);
  assert.match(r.diags[2].message, /^proto: expected a string/);
});

test('processor: says once when owner criteria meet input without ct-attribute fields', () => {
  const p = createProcessor({ spec: { user: ['alice'] } });
  const bare = JSON.stringify({ ...ev(), process: undefined, attribution: undefined, direction: undefined });
  const r = processChunk(Buffer.from([bare, bare, JSON.stringify(ev())].join('\n')), p, 1 << 20);
  const warns = r.diags.filter((d) => d.kind === 'warn');
  assert.equal(warns.length, 1);
  assert.match(warns[0].message, /--user reads the fields ct-attribute adds.*ct-attribute missing upstream/);
  assert.equal(r.out.toString().split('\n').filter(Boolean).length, 1, 'the attributed event of alice is kept');
  // no warning when nothing reads them
  const q = createProcessor({ spec: { proto: ['tcp'] } });
  assert.equal(processChunk(Buffer.from(bare + '\n'), q, 1 << 20).diags.length, 0);
});

test('processChunk: over-long lines are reported and skipped', () => {
  const p = createProcessor({ spec: {} });
  const r = processChunk(Buffer.from(`{"event":"x"}\n{"event":"${'a'.repeat(100)}"}\n{"event":"y"}`), p, 50);
  assert.equal(r.out.toString(), '{"event":"x"}\n{"event":"y"}\n');
  assert.equal(r.bad, 1);
  assert.equal(r.diags[0].no, 2);
  assert.match(r.diags[0].message, /longer than 50 bytes/);
});

test('processChunk in place: output over the input, or a buffer of its own when it would overtake it', () => {
  const lines = ['{"event":"new","proto":"udp"}', '{"event":"new","proto":"tcp"}', '{"event":"stats"}'];
  const text = lines.join('\r\n'); // no final newline, CRLF line ends
  const ab = new ArrayBuffer(text.length + 16);
  const buf = Buffer.from(ab, 0, text.length);
  buf.write(text);
  const r = processChunk(buf, createProcessor({ spec: { proto: ['tcp'] } }), 1 << 20, true);
  assert.equal(r.out.toString(), `${lines[1]}\n${lines[2]}\n`);
  assert.equal(r.out.buffer, ab, 'the same memory');
  // a processor whose output is longer than its input
  const long = { line: (t: string) => t + t + t + '\n' };
  const ab2 = new ArrayBuffer(64);
  const b2 = Buffer.from(ab2, 0, 8);
  b2.write('{"a":1}\n');
  const r2 = processChunk(b2, long, 1 << 20, true);
  assert.equal(r2.out.toString(), '{"a":1}{"a":1}{"a":1}\n');
  // non-ASCII input is decoded line by line
  const u = processChunk(Buffer.from('{"event":"x","é":"☃"}\n'), createProcessor({ spec: {} }), 1 << 20);
  assert.equal(u.out.toString(), '{"event":"x","é":"☃"}\n');
});

test('processChunk: passed lines copied a stretch at a time; a view of the input when the caller allows it and the output is one stretch of it', () => {
  const p = createProcessor({ spec: { proto: ['tcp'] } });
  const tcp = (n: number) => JSON.stringify(ev({ id: n }));
  const udp = (n: number) => JSON.stringify(ev({ id: n, proto: 'udp' }));
  // Passed lines in stretches broken by dropped ones, a blank line, a CRLF line end, a bad line, and a last line without its newline.
  const lines = [tcp(1), tcp(2), udp(3), tcp(4), '', tcp(5), tcp(6) + '\r', tcp(7), 'x', tcp(8), udp(9), tcp(10)];
  const want = [1, 2, 4, 5, 6, 7, 8, 10].map(tcp).join('\n') + '\n';
  const input = lines.join('\n');
  for (const mode of [false, 'view', true] as const) {
    const r = processChunk(Buffer.from(input), p, 1 << 20, mode);
    assert.equal(r.out.toString(), want, String(mode));
    assert.equal(r.bad, 1);
    const r2 = processChunk(Buffer.from(input + '\n'), p, 1 << 20, mode);
    assert.equal(r2.out.toString(), want, String(mode));
  }
  // Every line passed: a view with 'view', a copy otherwise.
  const all = Buffer.from([tcp(1), tcp(2), tcp(3)].join('\n') + '\n');
  const v = processChunk(all, p, 1 << 20, 'view');
  assert.equal(v.out.buffer, all.buffer);
  assert.equal(v.out.toString(), all.toString());
  const c = processChunk(all, p, 1 << 20, false);
  assert.notEqual(c.out.buffer, all.buffer);
  assert.equal(c.out.toString(), all.toString());
  // Dropped lines first, then one stretch: still a view, of the stretch alone.
  const tail = Buffer.from([udp(1), tcp(2), tcp(3)].join('\n') + '\n');
  const t = processChunk(tail, p, 1 << 20, 'view');
  assert.equal(t.out.buffer, tail.buffer);
  assert.equal(t.out.toString(), [tcp(2), tcp(3)].join('\n') + '\n');
});

test('compileCheck with member paths checks those members only', () => {
  const c = compileCheck(['process.uid']);
  assert.equal(c(ev({ process: { pid: 'x', uid: 1 } })), null);
  assert.match(c(ev({ process: { pid: 1, uid: 'x' } }))!, /^process\.uid: /);
  assert.match(c(ev({ process: 5 }))!, /^process: expected an object/);
  assert.equal(compileCheck(['process.container.id'])(ev({ process: { pid: 'x', container: null } })), null);
  assert.match(compileCheck(['process.container.id'])(ev({ process: { container: 'x' } }))!, /^process\.container: /);
  assert.match(compileCheck(['process'])(ev({ process: { pid: 'x' } }))!, /^process\.pid: /);
});

test('--domain: the question or a CNAME, globs, case and a final dot ignored; --ancestor: parent or ancestors, comm or exe', () => {
  const e = {
    ts: 'T', event: 'new', id: 1, family: 'ipv4', proto: 'tcp', src: '10.0.0.5', sport: 1, dst: '1.2.3.4', dport: 443, reply: {}, status: [],
    dns: { name: 'www.example.com', cnames: ['edge.cdn.test'], age: 0.1 },
    process: { pid: 5, comm: 'curl', parent: { pid: 4, comm: 'python3', exe: '/usr/bin/python3.11' }, ancestors: [{ pid: 3, comm: 'bash', exe: '/usr/bin/bash' }, { pid: 1, comm: 'systemd' }] },
  };
  assert.equal(keep({ domain: ['*.example.com'] }, e), true);
  assert.equal(keep({ domain: ['WWW.Example.COM.'] }, e), true);
  assert.equal(keep({ domain: ['*.cdn.test'] }, e), true, 'a name of the CNAME chain');
  assert.equal(keep({ domain: ['example.com'] }, e), false);
  assert.equal(keep({ domain: ['*'] }, { ...e, dns: undefined }), false, 'no name: no match');
  assert.equal(keep({ domain: ['*'], invert: true }, { ...e, dns: undefined }), true);
  assert.equal(keep({ ancestor: ['python*'] }, e), true);
  assert.equal(keep({ ancestor: ['/usr/bin/bash'] }, e), true);
  assert.equal(keep({ ancestor: ['systemd'] }, e), true);
  assert.equal(keep({ ancestor: ['curl'] }, e), false, 'the process itself is not its ancestor');
  assert.equal(keep({ ancestor: ['bash'] }, { ...e, process: { pid: 5 } }), false);
  // Wrong types are reported on the line, not crashed on.
  assert.match(String(compileCheck(['dns'])({ ...e, dns: 'x' })), /dns: expected an object/);
  assert.match(String(compileCheck(['process.ancestors'])({ ...e, process: { pid: 1, ancestors: [1] } })), /process.ancestors: expected an array of objects/);
});
