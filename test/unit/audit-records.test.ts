// src/attribute/sources/audit/records.ts and the record/struct codecs of src/netlink/audit.ts,
// against real datagrams from the kernel's audit multicast group
// (test/fixtures/audit/records.hex, see its README): fields, hex-encoded
// untrusted strings, SOCKADDR of each family, PROCTITLE cut at 128 bytes,
// i386 calls (direct and through socketcall), grouping by serial with the
// records of several syscalls interleaved, lost EOE records, bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { endianness } from 'node:os';
import { FIXTURES } from '../helpers.js';
import { Assembler, parseHead, parseFields, decodeSockaddr, decodeProctitle, decodeExecve, untrusted, RecordError, type AuditEvent } from '../../src/attribute/sources/audit/records.js';
import {
  recordOf, decodeStatus, encodeStatus, encodeRule, decodeRule, sameRule, ruleKeys, buildAuditMessage,
  AUDIT_SYSCALL, AUDIT_SOCKADDR, AUDIT_EOE, AUDIT_PROCTITLE, AUDIT_EXECVE, AUDIT_GET, AUDIT_FILTER_EXIT, AUDIT_ALWAYS,
  AUDIT_ARCH, AUDIT_EQUAL, AUDIT_FILTERKEY, AUDIT_SUCCESS,
} from '../../src/netlink/audit.js';
import { DecodeError } from '../../src/netlink/conntrack.js';

const LE = endianness() === 'LE';
const datagrams = readFileSync(path.join(FIXTURES, 'audit', 'records.hex'), 'utf8').split('\n').filter(Boolean).map((l) => Buffer.from(l, 'hex'));
const records = datagrams.map((d) => recordOf(d)!);

function assemble(list: { type: number; text: string }[]): { events: AuditEvent[]; a: Assembler } {
  const events: AuditEvent[] = [];
  const a = new Assembler((e) => events.push(e));
  for (const r of list) a.add(r.type, r.text, 0);
  return { events, a };
}

test('recordOf: type and text of each datagram, the text running to the end', () => {
  assert.equal(records.length, 74);
  assert.ok(records.every((r) => r && r.type >= 1100 && r.text.startsWith('audit(')));
  const eoe = records.find((r) => r.type === AUDIT_EOE)!;
  assert.match(eoe.text, /^audit\(\d+\.\d{3}:\d+\): $/);
  // The unicast path (auditd) gets nlmsg_len = payload length only: the text is still whole.
  const sys = datagrams.find((d) => recordOf(d)!.type === AUDIT_SYSCALL)!;
  const quirk = Buffer.from(sys);
  if (LE) quirk.writeUInt32LE(sys.length - 16, 0); else quirk.writeUInt32BE(sys.length - 16, 0);
  assert.equal(recordOf(quirk)!.text, recordOf(sys)!.text);
  // Control messages are not records.
  assert.equal(recordOf(buildAuditMessage(AUDIT_GET, 1, 1)), null);
  assert.throws(() => recordOf(Buffer.alloc(8)), DecodeError);
});

test('parseHead: stamp in ms and serial; anything else is refused', () => {
  assert.deepEqual(parseHead('audit(1795450849.049:14): arch=c000003e'), { time: 1795450849049, serial: 14, body: 26 });
  assert.throws(() => parseHead('type=SYSCALL msg=audit(1:2): x=1'), RecordError);
  assert.throws(() => parseHead('audit(1795450849:14): x'), RecordError);
});

test('parseFields: bare, quoted, (null), single-quoted with spaces, words without =', () => {
  const f = parseFields('a=1 comm="my prog" exe=(null) msg=\'op=x res=1\' junk key=(null) k2="" tty=(none)');
  assert.equal(f.get('a'), '1');
  assert.equal(f.get('comm'), 'my prog');
  assert.equal(f.get('exe'), null);
  assert.equal(f.get('msg'), 'op=x res=1');
  assert.equal(f.get('key'), null);
  assert.equal(f.get('k2'), '');
  assert.equal(f.get('tty'), null);
  assert.equal(f.has('junk'), false);
  // The first of a repeated key wins (EXECVE pieces never repeat).
  assert.equal(parseFields('x=1 x=2').get('x'), '1');
});

test('untrusted: quoted text as is, hex as bytes', () => {
  assert.equal(untrusted('6D79207079', false)!.toString(), 'my py');
  assert.equal(untrusted('ABCD', true)!.toString(), 'ABCD');
  assert.equal(untrusted('python3', false)!.toString(), 'python3');
  assert.equal(untrusted(null, false), null);
});

test('decodeSockaddr: IPv4, IPv6, IPv4-mapped as plain IPv4, other families and short data', () => {
  assert.deepEqual(decodeSockaddr('020000357F0000010000000000000000'), { family: 'ipv4', port: 53, addr: '127.0.0.1' });
  assert.deepEqual(decodeSockaddr('0A008C1F000000000000000000000000000000000000000100000000'), { family: 'ipv6', port: 35871, addr: '::1' });
  assert.deepEqual(decodeSockaddr('0A0014EB0000000000000000000000000000FFFF7F00000100000000'), { family: 'ipv4', port: 5355, addr: '127.0.0.1', mapped: true });
  assert.equal(decodeSockaddr('01002F746D70'), null); // AF_UNIX
  assert.equal(decodeSockaddr('0200'), null);
  assert.equal(decodeSockaddr('0A0014EB00'), null);
  assert.equal(decodeSockaddr('zz'), null);
});

test('decodeProctitle and decodeExecve', () => {
  assert.deepEqual(decodeProctitle(Buffer.from('a\0b c\0')), { argv: ['a', 'b c'], cut: false });
  assert.equal(decodeProctitle(Buffer.alloc(128, 0x41)).cut, true);
  const f = parseFields('argc=3 a0="ls" a1=2D6C2061 a2_len=6 a2[0]="abc" a2[1]=646566');
  const q = new Set(['a0', 'a2[0]']);
  assert.deepEqual(decodeExecve(f, q), ['ls', '-l a', 'abcdef']);
});

test('Assembler: the fixture\'s syscalls, field by field', () => {
  const { events, a } = assemble(records);
  assert.deepEqual(a.stats, { records: 74, events: 18, malformed: 0, incomplete: 0 });
  assert.equal(a.pending, 0, 'every group closed by its EOE');
  const net = events.filter((e) => e.call);
  assert.equal(net.length, 16);
  const byPort = (p: number) => net.filter((e) => e.addr?.port === p);

  // TCP connect to 127.0.0.1 (blocking): every field a SYSCALL record has.
  const c = net[0];
  assert.equal(c.serial, 14);
  assert.equal(c.time, 1795450849049);
  assert.equal(c.arch, 0xc000003e);
  assert.equal(c.syscall, 42);
  assert.equal(c.call, 'connect');
  assert.equal(c.success, true);
  assert.equal(c.exit, 0);
  assert.equal(c.fd, 5);
  assert.deepEqual([c.pid, c.ppid, c.uid, c.gid, c.euid, c.egid, c.fsuid], [13156, 13103, 0, 0, 0, 0, 0]);
  assert.equal(c.auid, null, 'auid 4294967295 is unset');
  assert.equal(c.comm, 'python3');
  assert.equal(c.exe, '/root/.pyenv/versions/3.11.7/bin/python3.11');
  assert.deepEqual(c.keys, ['ctpipe-fixture']);
  assert.deepEqual(c.addr, { family: 'ipv4', port: 35447, addr: '127.0.0.1' });
  assert.deepEqual(c.cmdline, ['/root/.pyenv/versions/3.11.7/bin/python3', '/tmp/aud/gen.py']);
  assert.equal(c.cmdlineCut, false);

  assert.deepEqual(net[1].addr, { family: 'ipv6', port: 35871, addr: '::1' });
  // Non-blocking connect: failure with -EINPROGRESS, the SYN is out.
  const nb = byPort(443)[0];
  assert.equal(nb.success, false);
  assert.equal(nb.exit, -115);
  assert.equal(nb.addr!.addr, '192.0.2.1');
  assert.deepEqual(byPort(5353).map((e) => [e.call, e.addr!.family]), [['sendto', 'ipv4'], ['sendto', 'ipv6']]);
  assert.equal(byPort(5354)[0].call, 'sendmsg');
  assert.equal(byPort(5355)[0].addr!.mapped, true);
  assert.equal(byPort(53)[0].call, 'connect');

  // comm and exe with a space: hex in the record.
  const mine = byPort(5357);
  assert.equal(mine[0].comm, 'my py');
  assert.equal(mine[0].exe, '/tmp/aud/my py');
  assert.equal(mine[0].cmdlineCut, true, 'PROCTITLE stops at 128 bytes');
  assert.equal(Buffer.byteLength(mine[0].cmdline!.join('\0')), 128);
  assert.equal(mine[1].cmdlineCut, true);

  // i386 ABI: direct calls and socketcall(2) resolved through a0 (the fd
  // then comes from the SOCKETCALL record).
  const i386 = net.filter((e) => e.arch === 0x40000003);
  assert.deepEqual(i386.map((e) => [e.syscall, e.call, e.fd, e.addr!.port]), [[362, 'connect', 3, 7777], [369, 'sendto', 3, 5370], [102, 'connect', 3, 7777], [102, 'sendto', 3, 5371]]);
  assert.equal(i386[3].a3, 0, 'socketcall sendto flags from the SOCKETCALL record');

  // sendmmsg: only the last address is recorded.
  const mm = net.find((e) => e.call === 'sendmmsg')!;
  assert.equal(mm.addr!.port, 5361);
  assert.equal(mm.exit, 2);
  assert.deepEqual(mm.cmdline, ['/tmp/aud/mm'], 'a quoted PROCTITLE');

  const nobody = byPort(5356)[0];
  assert.deepEqual([nobody.uid, nobody.gid, nobody.euid, nobody.fsuid], [65534, 65534, 65534, 65534]);
  assert.equal(nobody.exe, '/usr/bin/python3.11');

  // The listener's own setsockopt: a syscall of no interest, no address.
  const other = events.filter((e) => !e.call);
  assert.equal(other.length, 2);
  assert.ok(other.every((e) => e.syscall === 54 && e.addr === null && e.keys.length === 0));
});

test('Assembler: records of several syscalls interleaved group by serial', () => {
  const groups = new Map<number, { type: number; text: string }[]>();
  for (const r of records) {
    const s = parseHead(r.text).serial;
    if (!groups.has(s)) groups.set(s, []);
    groups.get(s)!.push(r);
  }
  // Round-robin over the groups: no two records of one syscall in a row.
  const lists = [...groups.values()].map((g) => [...g]);
  const mixed: { type: number; text: string }[] = [];
  while (lists.some((l) => l.length)) for (const l of lists) if (l.length) mixed.push(l.shift()!);
  const a = assemble(records).events.map((e) => JSON.stringify(e)).sort();
  const b = assemble(mixed).events.map((e) => JSON.stringify(e)).sort();
  assert.deepEqual(b, a);
});

test('Assembler: a group whose EOE was lost ends after maxAgeMs; records of no interest vanish', () => {
  const noEoe = records.filter((r) => !(r.type === AUDIT_EOE && parseHead(r.text).serial === 14));
  const events: AuditEvent[] = [];
  const a = new Assembler((e) => events.push(e), 1000);
  for (const r of noEoe) a.add(r.type, r.text, 5000);
  assert.equal(events.some((e) => e.serial === 14), false);
  assert.equal(a.pending, 1);
  a.sweep(5500);
  assert.equal(a.pending, 1, 'not yet');
  a.sweep(6000);
  assert.equal(a.pending, 0);
  const e = events.find((x) => x.serial === 14)!;
  assert.equal(e.addr!.port, 35447);
  assert.equal(a.stats.incomplete, 1);
  // A SOCKADDR without its SYSCALL (lost) makes no event.
  const b = assemble([records.find((r) => r.type === AUDIT_SOCKADDR)!, { type: AUDIT_EOE, text: records.find((r) => r.type === AUDIT_SOCKADDR)!.text.replace(/saddr=.*/, '') }]);
  assert.equal(b.events.length, 0);
  // The listener record (1335) has no EOE; it ages out quietly.
  const c = assemble([records[0]]);
  assert.equal(c.a.pending, 1);
  c.a.sweep(Infinity);
  assert.deepEqual([c.events.length, c.a.pending, c.a.stats.incomplete], [0, 0, 0]);
});

test('Assembler: malformed records are counted, and the bound on open groups holds', () => {
  const { a, events } = assemble([{ type: AUDIT_SYSCALL, text: 'garbage' }, { type: AUDIT_PROCTITLE, text: 'audit(1.2:3)' }]);
  assert.equal(a.stats.malformed, 2);
  assert.equal(events.length, 0);
  const b = new Assembler(() => {}, 1000, 10);
  for (let i = 0; i < 25; i++) b.add(AUDIT_SYSCALL, `audit(1795450849.049:${i}): arch=c000003e syscall=42 success=yes exit=0 a0=3 pid=1`, 0);
  assert.ok(b.pending <= 10);
  // An EXECVE record gives the command line.
  const e = assemble([
    { type: AUDIT_SYSCALL, text: 'audit(1795450849.049:99): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=0 items=2 ppid=1 pid=2 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 comm="ls" exe="/usr/bin/ls" key=(null)' },
    { type: AUDIT_EXECVE, text: 'audit(1795450849.049:99): argc=2 a0="ls" a1="-l"' },
    { type: AUDIT_EOE, text: 'audit(1795450849.049:99): ' },
  ]).events[0];
  assert.deepEqual(e.cmdline, ['ls', '-l']);
  assert.equal(e.auid, 1000);
  assert.equal(e.call, null);
});

test('audit_status: decode, encode, and a short (older) struct', () => {
  const s = { mask: 1, enabled: 1, failure: 1, pid: 42, rate_limit: 0, backlog_limit: 64, lost: 7, backlog: 0, feature_bitmap: 0x7f, backlog_wait_time: 15000, backlog_wait_time_actual: 0 };
  const b = encodeStatus(s);
  assert.equal(b.length, 44);
  assert.deepEqual(decodeStatus(b), s);
  const short = decodeStatus(b.subarray(0, 36));
  assert.equal(short.feature_bitmap, 0x7f);
  assert.equal(short.backlog_wait_time, 0);
  assert.throws(() => decodeStatus(b.subarray(0, 20)), DecodeError);
});

test('audit_rule_data: encode and decode a rule with a key; sameRule; truncated data', () => {
  const rule = {
    list: AUDIT_FILTER_EXIT, action: AUDIT_ALWAYS, syscalls: [42, 44, 46, 307],
    fields: [{ type: AUDIT_ARCH, op: AUDIT_EQUAL, value: 0xc000003e }, { type: AUDIT_SUCCESS, op: AUDIT_EQUAL, value: 1 }, { type: AUDIT_FILTERKEY, op: AUDIT_EQUAL, text: 'ctpipe-1' }],
  };
  const b = encodeRule(rule);
  assert.equal(b.length, 1040 + 8);
  const u32 = (o: number) => (LE ? b.readUInt32LE(o) : b.readUInt32BE(o));
  assert.equal(u32(0), 4);
  assert.equal(u32(4), 2);
  assert.equal(u32(8), 3);
  assert.equal(u32(12 + 4), (1 << 10) | (1 << 12) | (1 << 14), 'syscalls 42, 44, 46 in mask word 1');
  assert.equal(u32(12 + 4 * 9), 1 << 19, 'syscall 307 in word 9');
  assert.equal(b.toString('utf8', 1040), 'ctpipe-1');
  const d = decodeRule(b);
  assert.deepEqual(d, rule);
  assert.ok(sameRule(d, rule));
  assert.deepEqual(ruleKeys(d), ['ctpipe-1']);
  assert.ok(!sameRule(d, { ...rule, fields: [...rule.fields.slice(0, 2), { type: AUDIT_FILTERKEY, op: AUDIT_EQUAL, text: 'other' }] }));
  assert.ok(!sameRule(d, { ...rule, syscalls: [42] }));
  assert.throws(() => decodeRule(b.subarray(0, 1044)), DecodeError);
  assert.throws(() => decodeRule(b.subarray(0, 500)), DecodeError);
  // Every syscall.
  assert.equal(decodeRule(encodeRule({ ...rule, syscalls: 'all' })).syscalls, 'all');
});
