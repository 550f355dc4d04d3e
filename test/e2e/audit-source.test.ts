// The audit client and AuditSource against the real kernel (root, this
// test's own process in the initial network namespace): rules added and
// listed back byte-identical and as auditctl(8) shows them, removed
// exactly; records of real connects reaching the correlator with the right
// pid; rules left by a dead ct-attribute cleaned up, anyone else's left
// alone; the daemon registration taken only when free and given back; lost
// records (the kernel's counter and our socket's drops) reported as
// overrun records. The audit state is restored after each test, failures
// included.
import { test, afterEach, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, spawnSync } from 'node:child_process';
import net from 'node:net';
import dgram from 'node:dgram';
import { inCI, needRoot, sleep, waitFor } from '../helpers.js';
import { snapshotAudit, restoreAudit, auditctl, auditRules, auditStatus, startFakeAuditd, type AuditSnapshot, type FakeAuditd } from '../audit-state.js';
import { AuditSocket, sameRule, AUDIT_STATUS_ENABLED } from '../../src/netlink/audit.js';
import { AuditSource, BACKLOG_LIMIT } from '../../src/attribute/sources/audit/source.js';
import { buildRules, ruleText, ruleKey } from '../../src/attribute/sources/audit/rules.js';
import { abisOf } from '../../src/attribute/sources/audit/syscalls.js';
import type { FlowEvent } from '../../src/event.js';

const skip = needRoot();
const PY = '/usr/bin/python3';
let snap: AuditSnapshot;
const testKeys: string[] = [];
let fake: FakeAuditd | null = null;
const sources: AuditSource[] = [];

beforeEach(() => {
  if (skip) return;
  snap = snapshotAudit();
});
afterEach(async () => {
  if (skip) return;
  for (const s of sources.splice(0)) await s.close();
  if (fake) { try { await fake.stop(); } catch { /* gone */ } fake.kill(); fake = null; }
  restoreAudit(snap, testKeys.splice(0));
});

function source(extra: Partial<ConstructorParameters<typeof AuditSource>[0]> = {}, warnings: string[] = []): AuditSource {
  const s = new AuditSource({ pid: process.pid, arch: process.arch, windowMs: 2000, onWarning: (m) => warnings.push(m), ...extra });
  sources.push(s);
  return s;
}

function flow(proto: string, dst: string, dport: number): FlowEvent {
  return { ts: new Date().toISOString(), event: 'new', id: 1, family: dst.includes(':') ? 'ipv6' : 'ipv4', proto, src: '127.0.0.1', sport: 1, dst, dport, reply: { src: dst, sport: dport, dst: '127.0.0.1', dport: 1 }, status: [] };
}

/** A python client: connect (tcp) or sendto (udp) and exit; returns its pid. */
function client(proto: string, host: string, port: number): number {
  const code = `import socket, os, sys
s = socket.socket(socket.AF_INET6 if ':' in sys.argv[2] else socket.AF_INET, socket.SOCK_STREAM if sys.argv[1] == 'tcp' else socket.SOCK_DGRAM)
(s.connect((sys.argv[2], int(sys.argv[3]))) if sys.argv[1] == 'tcp' else s.sendto(b'x', (sys.argv[2], int(sys.argv[3]))))
print(os.getpid())`;
  return Number(execFileSync(PY, ['-c', code, proto, host, String(port)], { encoding: 'utf8' }).trim());
}

test('rules: added, listed back identical, shown by auditctl as ruleText, removed exactly', { skip }, async () => {
  const key = `ctpipe-test-${process.pid}`;
  testKeys.push(key);
  auditctl('-a', 'always,exit', '-F', 'arch=b64', '-S', 'bind', '-k', `keep-${process.pid}`);
  testKeys.push(`keep-${process.pid}`);
  const before = auditRules();
  const s = new AuditSocket();
  try {
    const rules = buildRules(abisOf(process.arch)!, { key });
    assert.equal(rules.length, process.arch === 'x64' ? 6 : 4);
    for (const r of rules) await s.addRule(r);
    const listed = await s.listRules();
    const ours = listed.filter((r) => r.fields.some((f) => f.text === key));
    assert.equal(ours.length, rules.length);
    rules.forEach((r, i) => assert.ok(sameRule(ours[i], r), `rule ${i} listed back as added`));
    const shown = auditRules().filter((l) => l.includes(key));
    assert.deepEqual(shown, rules.map(ruleText));
    // The same rule again: the kernel refuses the duplicate.
    await assert.rejects(s.addRule(rules[0]), (e: any) => e.errno === 17);
    for (const r of rules) await s.deleteRule(r);
    assert.deepEqual(auditRules(), before, 'only our rules went; the other rule kept its place');
    await assert.rejects(s.deleteRule(rules[0]), (e: any) => e.errno === 2);
  } finally {
    s.close();
  }
});

test('AuditSource: rules for the run, auditing on, records of real connects name their pids; close() undoes it all', { skip }, async () => {
  if (auditStatus().enabled === 1 && !auditRules().some((r) => /key=ctpipe-\d+/.test(r))) auditctl('-e', '0');
  // The kernel's own queue length: too short for a run that adds records (see AuditSource.raiseBacklog).
  auditctl('-b', '64');
  const before = snapshotAudit();
  const warnings: string[] = [];
  const s = source({ rules: true }, warnings);
  await s.start();
  assert.equal(auditStatus().backlog_limit, BACKLOG_LIMIT, 'the audit queue lengthened for the run');
  assert.ok(warnings.some((w) => /backlog_limit\) was 64 records: set to 8192/.test(w)), warnings.join('\n'));
  assert.equal(s.stats.mode, 'multicast');
  assert.equal(s.stats.rulesAdded, process.arch === 'x64' ? 6 : 4);
  assert.equal(auditRules().filter((r) => r.includes(`key=${ruleKey(process.pid)}`)).length, s.stats.rulesAdded);
  assert.equal(auditStatus().enabled, 1);
  if (before.enabled === 0) assert.ok(warnings.some((w) => /switched on for this run/.test(w)), warnings.join('\n'));

  const srv = net.createServer((c) => c.destroy()).listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const port = (srv.address() as net.AddressInfo).port;
  const sink = dgram.createSocket('udp6');
  await new Promise<void>((r) => sink.bind(0, '::1', () => r()));
  const uport = sink.address().port;
  try {
    const tcpPid = client('tcp', '127.0.0.1', port);
    const udpPid = client('udp', '::1', uport);
    const a = await s.correlator.settle(s.correlator.expect(flow('tcp', '127.0.0.1', port))!, { pid: null });
    const b = await s.correlator.settle(s.correlator.expect(flow('udp', '::1', uport))!, { pid: null });
    assert.equal(a.kind, 'match');
    assert.equal(b.kind, 'match');
    if (a.kind === 'match' && b.kind === 'match') {
      assert.equal(a.record.pid, tcpPid);
      assert.equal(a.record.call, 'connect');
      assert.match(a.record.exe!, /python3/);
      assert.equal(b.record.pid, udpPid);
      assert.equal(b.record.call, 'sendto');
      assert.deepEqual(b.record.addr, { family: 'ipv6', addr: '::1', port: uport });
    }
  } finally {
    srv.close();
    sink.close();
  }
  await s.close();
  assert.deepEqual(auditRules(), before.rules, 'our rules removed, nothing else');
  assert.equal(auditStatus().enabled, before.enabled, 'auditing back as it was');
  assert.equal(auditStatus().backlog_limit, 64, 'the audit queue length back as it was');
});

test('AuditSource: a queue length set longer by the admin is left as it is', { skip }, async () => {
  auditctl('-b', '10000');
  const warnings: string[] = [];
  const s = source({ rules: true }, warnings);
  await s.start();
  try {
    assert.equal(auditStatus().backlog_limit, 10000);
    assert.ok(!warnings.some((w) => /backlog_limit/.test(w)), warnings.join('\n'));
  } finally {
    await s.close();
  }
  assert.equal(auditStatus().backlog_limit, 10000);
});

test('AuditSource: rules of a ct-attribute that is gone are removed; others\' are kept', { skip }, async () => {
  const dead = spawnSync('true').pid!;
  const ctl = new AuditSocket();
  const staleRule = buildRules(abisOf(process.arch)!, { key: ruleKey(dead) })[0];
  const foreign = buildRules(abisOf(process.arch)!, { key: `notours-${process.pid}` })[0];
  testKeys.push(ruleKey(dead), `notours-${process.pid}`);
  try {
    await ctl.addRule(staleRule);
    await ctl.addRule(foreign);
  } finally {
    ctl.close();
  }
  const warnings: string[] = [];
  const s = source({ rules: true }, warnings);
  await s.start();
  const rules = auditRules();
  assert.ok(!rules.some((r) => r.includes(`key=${ruleKey(dead)}`)), 'the stale rule is gone');
  assert.ok(rules.some((r) => r.includes(`key=notours-${process.pid}`)), 'a foreign rule stays');
  assert.ok(warnings.some((w) => w.includes(`pid ${dead}, which is gone`)), warnings.join('\n'));
  await s.close();
  assert.ok(auditRules().some((r) => r.includes(`key=notours-${process.pid}`)));
});

test('AuditSource --audit-daemon: registers only when no daemon is, reads by unicast, gives the registration back', { skip }, async (t) => {
  const daemon = auditStatus().pid;
  if (daemon !== 0) {
    // A real auditd runs here: never take its place. In CI that is a failure (.ci/run stops it), not a pass.
    assert.ok(!inCI, `a real audit daemon (pid ${daemon}) is registered: CI must stop it for this test`);
    t.skip(`a real audit daemon (pid ${daemon}) is registered: not taking its place`);
    return;
  }
  const s = source({ rules: true, daemon: true });
  await s.start();
  assert.equal(s.stats.mode, 'daemon');
  assert.equal(auditStatus().pid, process.pid);
  const srv = net.createServer((c) => c.destroy()).listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const port = (srv.address() as net.AddressInfo).port;
  try {
    const pid = client('tcp', '127.0.0.1', port);
    const o = await s.correlator.settle(s.correlator.expect(flow('tcp', '127.0.0.1', port))!, { pid: null });
    assert.equal(o.kind === 'match' && o.record.pid, pid);
  } finally {
    srv.close();
  }
  await s.close();
  assert.equal(auditStatus().pid, 0, 'registration released');

  // With a daemon registered, --audit-daemon steps back to the multicast copy.
  fake = await startFakeAuditd(PY);
  const warnings: string[] = [];
  const s2 = source({ rules: true, daemon: true }, warnings);
  await s2.start();
  assert.equal(s2.stats.mode, 'multicast');
  assert.ok(warnings.some((w) => w.includes(`pid ${fake!.pid}`)), warnings.join('\n'));
  await s2.close();
  assert.equal(auditStatus().pid, fake.pid, 'the daemon keeps its registration');
});

test('lost records: the kernel\'s lost counter and our socket\'s drops become overrun records', { skip }, async () => {
  const warnings: string[] = [];
  const s = source({ rules: true, pollMs: 100, rcvbuf: 4096 }, warnings);
  await s.start();
  // A rate limit of 5 records a second: the kernel drops and counts the rest.
  auditctl('-r', '5');
  const burst = `import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(300): u.sendto(b'x', ('127.0.0.1', 9))`;
  execFileSync(PY, ['-c', burst]);
  auditctl('-r', String(snap.rate_limit));
  // The 4 KiB socket may overflow in this burst too (audit-enobufs): wait
  // for the kernel's counter to be noticed, whatever came first.
  let recs: ReturnType<typeof s.takeOverruns> = [];
  const seen = (reason: string) => {
    recs.push(...s.takeOverruns());
    return recs.some((r) => r.reason === reason && r.lost > 0);
  };
  await waitFor(() => seen('audit-lost'), 5000, 'the lost counter to be noticed');
  assert.ok(recs.every((r) => r.event === 'overrun' && typeof r.ts === 'string'));
  assert.ok(warnings.some((w) => /lost \d+ audit records?/.test(w)));
  // Our socket (a 4 KiB buffer) overflows while this process is busy.
  const before = s.stats.lost;
  const child = spawn(PY, ['-c', burst], { stdio: 'ignore' });
  const end = Date.now() + 1500;
  while (Date.now() < end) { /* not reading: the records pile up in the socket */ }
  await new Promise((r) => child.once('close', r));
  recs = [];
  await waitFor(() => seen('audit-enobufs'), 5000, 'socket drops to be noticed');
  assert.ok(s.stats.lost > before);
  await sleep(0);
});
