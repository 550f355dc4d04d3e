// ct-attribute --audit end to end: real kernel, real audit subsystem, real
// processes. In a namespace of the test's own, `ct-events | ct-attribute
// --audit --audit-rules` watches clients that connect (or send), close and
// exit at once, TCP and UDP, IPv4 and IPv6, some as user nobody: each NEW
// must name the right pid, uid, user and exe, and DESTROY the same. Before
// the run the test adds a rule of its own and registers a stand-in audit
// daemon: afterwards the rule list is exactly as before (ct-attribute's
// rules gone, the test's rule in its place), the daemon is still the
// registered one and got the clients' records, and auditing is back in its
// state. Also: rules removed on SIGTERM, rules of a SIGKILLed instance
// removed by the next, errors and usage. The audit state is restored even
// when a test fails.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { BIN, needRoot, sleep, delNetns, lines, runBin, waitFor, PY_SINK, linkedNetns, startPy, type NetnsPair } from '../helpers.js';
import { snapshotAudit, restoreAudit, auditctl, auditRules, auditStatus, startFakeAuditd, type AuditSnapshot, type FakeAuditd } from '../audit-state.js';

const skip = needRoot();
const PY = '/usr/bin/python3';
let ns: NetnsPair;
const KEEP = `keep-${process.pid}`;

// Connect (TCP) or send (UDP), close, then report: by the time ct-attribute
// reads the NEW event the socket is usually gone, and soon the process too.
const CLIENT = `
import socket, sys, os
proto, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET, socket.SOCK_STREAM if proto == 'tcp' else socket.SOCK_DGRAM)
if proto == 'tcp':
    s.connect((host, port)); s.send(b'hi')
else:
    s.sendto(b'hi', (host, port))
sport = s.getsockname()[1]
s.close()
print(os.getpid(), sport, flush=True)
`;

interface Client { pid: number; sport: number; proto: string; user: string }

function client(proto: string, host: string, asNobody: boolean): Client {
  const args = ['netns', 'exec', ns.A, ...(asNobody ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : []), PY, '-c', CLIENT, proto, host, proto === 'tcp' ? '7000' : '7001'];
  const [pid, sport] = execFileSync('ip', args, { encoding: 'utf8' }).trim().split(' ').map(Number);
  return { pid, sport, proto, user: asNobody ? 'nobody' : 'root' };
}

let snap: AuditSnapshot;
let fake: FakeAuditd | null = null;
let server: ChildProcess | null = null;
let pipeline: ChildProcess | null = null;
const spawned: ChildProcess[] = [];

before(async () => {
  if (skip) return;
  snap = snapshotAudit();
  ns = linkedNetns('u', 234);
  server = (await startPy(ns.B, PY_SINK)).proc;
});

after(async () => {
  if (skip) return;
  for (const p of [pipeline, ...spawned]) {
    if (p && p.exitCode === null && p.signalCode === null) {
      try { process.kill(-p.pid!, 'SIGKILL'); } catch { try { p.kill('SIGKILL'); } catch { /* gone */ } }
    }
  }
  server?.kill('SIGKILL');
  if (fake) { fake.kill(); fake = null; }
  await sleep(200);
  restoreAudit(snap, [KEEP]);
  delNetns(ns.A);
  delNetns(ns.B);
});

test('ct-events | ct-attribute --audit --audit-rules: owners of connect-send-close-exit clients; nobody else\'s audit setup disturbed', { skip }, async () => {
  // Someone else's rule, and an audit daemon, both there before the run.
  auditctl('-a', 'always,exit', '-F', 'arch=b64', '-S', 'connect', '-F', 'success=1', '-k', KEEP);
  const rulesBefore = auditRules();
  const enabledBefore = auditStatus().enabled;
  fake = await startFakeAuditd(PY);
  assert.equal(auditStatus().pid, fake.pid);

  let out = '', err = '';
  pipeline = spawn('ip', ['netns', 'exec', ns.A, 'sh', '-c', `trap : INT; ${BIN('ct-events')} -e new,destroy | ${BIN('ct-attribute')} --no-bpf --audit --audit-rules --stats`], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  pipeline.stdout!.setEncoding('utf8').on('data', (d) => (out += d));
  pipeline.stderr!.setEncoding('utf8').on('data', (d) => (err += d));
  const mine = () => auditRules().filter((r) => /key=ctpipe-\d+$/.test(r) && !rulesBefore.includes(r));
  await waitFor(() => mine().length >= 4, 10000, 'ct-attribute\'s rules');
  await sleep(500);
  assert.equal(auditStatus().enabled, 1, 'auditing on during the run');

  const clients: Client[] = [];
  for (const asNobody of [false, true]) {
    for (const [proto, host] of [['tcp', '10.234.0.2'], ['udp', '10.234.0.2'], ['tcp', 'fd00:234::2'], ['udp', 'fd00:234::2']]) {
      clients.push(client(proto, host, asNobody));
    }
  }
  clients.push(client('tcp', '10.234.0.2', false), client('udp', 'fd00:234::2', true));
  await sleep(800);
  execFileSync('ip', ['netns', 'exec', ns.A, 'conntrack', '-F'], { stdio: 'ignore' });
  await sleep(800);
  process.kill(-pipeline.pid!, 'SIGINT');
  const code = await new Promise<number | null>((r) => (pipeline!.exitCode !== null ? r(pipeline!.exitCode) : pipeline!.once('close', r)));
  assert.equal(code, 0, err);

  const evs = lines(out);
  const news = evs.filter((e) => e.event === 'new');
  const destroys = evs.filter((e) => e.event === 'destroy');
  const find = (list: any[], c: Client) => list.find((e) => e.proto === c.proto && e.sport === c.sport);
  for (const c of clients) {
    const ev = find(news, c);
    assert.ok(ev, `NEW for ${c.proto} sport ${c.sport}`);
    assert.equal(ev.direction, 'out');
    assert.equal(ev.attribution.ok, true, JSON.stringify(ev));
    assert.ok(ev.attribution.method === 'audit' || ev.attribution.method === 'sock_diag', JSON.stringify(ev.attribution));
    assert.equal(ev.process.pid, c.pid, JSON.stringify(ev));
    assert.equal(ev.process.uid, c.user === 'nobody' ? 65534 : 0);
    assert.equal(ev.process.user, c.user);
    assert.match(ev.process.exe, /\/python3/);
    assert.equal(ev.process.comm, 'python3');
    const d = find(destroys, c);
    assert.ok(d, `DESTROY for ${c.proto} sport ${c.sport}`);
    assert.equal(d.process?.pid, c.pid, 'DESTROY carries the NEW event\'s process');
  }
  const byAudit = news.filter((e) => e.attribution.method === 'audit');
  assert.ok(byAudit.length > 0, `some owners were gone before sock_diag looked, and audit named them (${news.map((e) => e.attribution.method)})`);
  assert.match(err, /audit: relay, records \d+/, 'the records came through the relay in the initial network namespace');
  assert.doesNotMatch(err, /no audit daemon is registered/);
  assert.equal(evs.filter((e) => e.event === 'overrun').length, 0);

  // Nobody else's setup was touched.
  assert.deepEqual(auditRules(), rulesBefore, 'ct-attribute\'s rules gone, the test\'s rule kept in its place');
  assert.equal(auditStatus().pid, fake.pid, 'the audit daemon is still the registered one');
  assert.equal(auditStatus().enabled, enabledBefore, 'auditing back as it was');
  const counts = await fake.stop();
  fake = null;
  for (const c of clients) assert.ok((counts[String(c.pid)] ?? 0) >= 1, `the audit daemon received the record of pid ${c.pid}: ${JSON.stringify(counts)}`);
});

test('ct-attribute --audit-rules: SIGTERM removes its rules; a SIGKILLed instance\'s rules are removed by the next', { skip }, async () => {
  const before = auditRules();
  const start = () => {
    const p = spawn(BIN('ct-attribute'), ['--audit-rules'], { stdio: ['pipe', 'pipe', 'pipe'] });
    spawned.push(p);
    let err = '';
    p.stderr!.setEncoding('utf8').on('data', (d) => (err += d));
    return { p, err: () => err };
  };
  const killed = start();
  await waitFor(() => auditRules().some((r) => r.endsWith(`key=ctpipe-${killed.p.pid}`)), 10000, 'the first instance\'s rules');
  killed.p.kill('SIGKILL');
  await new Promise((r) => killed.p.once('close', r));
  assert.ok(auditRules().some((r) => r.endsWith(`key=ctpipe-${killed.p.pid}`)), 'SIGKILL leaves the rules behind');

  const next = start();
  await waitFor(() => auditRules().some((r) => r.endsWith(`key=ctpipe-${next.p.pid}`)), 10000, 'the second instance\'s rules');
  assert.ok(!auditRules().some((r) => r.endsWith(`key=ctpipe-${killed.p.pid}`)), 'the dead instance\'s rules are gone');
  assert.match(next.err(), new RegExp(`rule left behind by ct-attribute pid ${killed.p.pid}`));
  next.p.kill('SIGTERM');
  const code = await new Promise((r) => next.p.once('close', r));
  assert.equal(code, 0, next.err());
  assert.deepEqual(auditRules(), before, 'SIGTERM: its rules removed, nothing else');
});

test('ct-attribute --audit: usage and permission errors', { skip }, async () => {
  const r = await runBin('ct-attribute', ['--audit-window', 'soon']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--audit-window must be a number/);
  assert.match(r.stderr, /Try 'ct-attribute --help'\./);
  const h = await runBin('ct-attribute', ['--help']);
  assert.match(h.stdout, /--audit-rules/);
  // Without CAP_AUDIT_READ and CAP_AUDIT_CONTROL: one line, exit 1, nothing left behind.
  const before = auditRules();
  const n = await runBin('ct-attribute', ['--audit-rules'], '', { prefix: ['setpriv', '--inh-caps=-all', '--bounding-set=-audit_read,-audit_control'] });
  assert.equal(n.code, 1, n.stderr);
  assert.match(n.stderr, /^ct-attribute: audit: .*permission denied \(needs CAP_AUDIT_CONTROL/m);
  assert.equal(n.stdout, '');
  assert.deepEqual(auditRules(), before);
});
