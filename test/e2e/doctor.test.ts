// bin/ct-doctor on the real machine: in a network namespace of the test's own
// with tracking off, then on (nf_conntrack_acct switched on there only), as
// root and as nobody without capabilities; its output checks against real
// listeners on 127.0.0.1 and a real unix socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { installForOthers } from '../installed.js';
import { BIN, runBin, needRoot, makeNetns, delNetns, inNetns, enableTracking, lines } from '../helpers.js';

const skip = needRoot();
const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

async function doctor(ns: string | null, args: string[], prefix: string[] = []) {
  // Another user runs an installed copy: the checkout may be closed to them.
  const bin = prefix.includes('setpriv') ? installForOthers().bin : undefined;
  const r = ns === null
    ? await runBin('ct-doctor', args, '', prefix.length ? { prefix, bin } : {})
    : await runBin('ct-doctor', args, '', { prefix: ['ip', 'netns', 'exec', ns, ...prefix], bin });
  return { ...r, checks: args.includes('--json') ? lines(r.stdout) : [] };
}

const byName = (checks: any[], name: string) => {
  const c = checks.find((x) => x.check === name);
  assert.ok(c, `no ${name} check in ${JSON.stringify(checks)}`);
  return c;
};

test('tracking off: the tracking check fails with the fix, the rest of the kernel is fine, exit 1', { skip }, async () => {
  const ns = makeNetns('ctdoc');
  try {
    const r = await doctor(ns, ['--json']);
    assert.equal(r.code, 1, r.stderr);
    const t = byName(r.checks, 'tracking');
    assert.equal(t.status, 'fail');
    assert.match(t.detail, /not active in this network namespace/);
    assert.match(t.fix, /--enable-tracking/);
    assert.equal(byName(r.checks, 'ctnetlink').status, 'pass');
    assert.equal(byName(r.checks, 'events').status, 'pass');
    assert.equal(byName(r.checks, 'cap-events').status, 'pass');
    assert.equal(byName(r.checks, 'cap-attribute').status, 'pass');
    assert.equal(byName(r.checks, 'acct').status, 'warn');
    // ct-attribute's methods, as it says them at start: in a namespace of its own, no process connector.
    const m = byName(r.checks, 'attribute-methods');
    assert.deepEqual(m.methods.map((x: any) => x.method), ['sock_diag', 'netns', 'bpf', 'audit']);
    assert.equal(m.methods[0].live, true);
    assert.match(m.methods[0].detail, /diffs of the \/proc listing \(process connector: no process connector in this network namespace/);
    assert.deepEqual(m.methods[3], { method: 'audit', live: false, why: 'not asked for', fix: '--audit, with --audit-rules, as root' });
    for (const c of r.checks) {
      assert.ok(['pass', 'warn', 'fail'].includes(c.status), JSON.stringify(c));
      if (c.status !== 'pass') assert.ok(c.fix, `a ${c.status} without a fix: ${JSON.stringify(c)}`);
    }
  } finally {
    delNetns(ns);
  }
});

test('tracking on, acct on: those checks pass, timestamp still warns, exit 0; --strict makes the warning count', { skip }, async () => {
  const ns = makeNetns('ctdoc');
  try {
    enableTracking(ns);
    inNetns(ns, 'sysctl', ['-q', '-w', 'net.netfilter.nf_conntrack_acct=1']);
    const r = await doctor(ns, ['--json']);
    const failed = r.checks.filter((c) => c.status === 'fail');
    assert.deepEqual(failed, []);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(byName(r.checks, 'tracking').status, 'pass');
    assert.equal(byName(r.checks, 'acct').status, 'pass');
    const ts = byName(r.checks, 'timestamp');
    assert.equal(ts.status, 'warn');
    assert.match(ts.fix, /nf_conntrack_timestamp=1/);
    const strict = await doctor(ns, ['--json', '--strict']);
    assert.equal(strict.code, 1);
  } finally {
    delNetns(ns);
  }
});

test('text output: one line per check, PASS/WARN/FAIL first, a fix on every other line, a count on stderr', { skip }, async () => {
  const ns = makeNetns('ctdoc');
  try {
    const r = await doctor(ns, []);
    const out = r.stdout.trimEnd().split('\n');
    assert.equal(out.length, 13, r.stdout);
    for (const l of out) {
      assert.match(l, /^(PASS|WARN|FAIL)  \S/);
      if (!l.startsWith('PASS')) assert.match(l, / -- fix: \S/);
    }
    assert.match(out.find((l) => /^\S+\s+tracking /.test(l))!, /^FAIL/);
    assert.match(r.stderr, /^ct-doctor: 1 check failed, \d+ warned\n$/);
  } finally {
    delNetns(ns);
  }
});

test('as nobody without capabilities: events and cap-events fail naming CAP_NET_ADMIN, attribution access warns', { skip }, async () => {
  const ns = makeNetns('ctdoc');
  try {
    enableTracking(ns);
    const r = await doctor(ns, ['--json'], NOBODY);
    assert.equal(r.code, 1, r.stderr);
    const ev = byName(r.checks, 'events');
    assert.equal(ev.status, 'fail');
    assert.match(ev.detail, /CAP_NET_ADMIN/);
    const cap = byName(r.checks, 'cap-events');
    assert.equal(cap.status, 'fail');
    assert.match(cap.detail, /missing CAP_NET_ADMIN/);
    const ca = byName(r.checks, 'cap-attribute');
    assert.equal(ca.status, 'warn');
    assert.match(ca.detail, /missing CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE/);
    // Root's processes (pid 1, this test runner) hold open files nobody may read.
    const proc = byName(r.checks, 'proc');
    assert.equal(proc.status, 'warn');
    assert.match(proc.detail, /uid 0: EACCES/);
    // Without CAP_NET_ADMIN the kernel answers EPERM: nothing can be said about support.
    const ct = byName(r.checks, 'ctnetlink');
    assert.equal(ct.status, 'warn');
    assert.match(ct.detail, /needs CAP_NET_ADMIN/);
    // As nobody, no bpf: the reason and the fix, in the JSON too.
    const bpf = byName(r.checks, 'attribute-methods').methods.find((x: any) => x.method === 'bpf');
    assert.deepEqual([bpf.live, bpf.why], [false, 'missing CAP_BPF and CAP_PERFMON']);
    assert.match(bpf.fix, /grant CAP_BPF and CAP_PERFMON/);
    // ct-events' DNS observation (on by default) would not be live: a warning naming the capability.
    const dns = byName(r.checks, 'dns-names');
    assert.equal(dns.status, 'warn', JSON.stringify(dns));
    assert.match(dns.detail, /CAP_NET_ADMIN/);
    assert.match(dns.fix, /net_admin/);
    // Nothing tracked yet, and nft may not list the ruleset: an honest "cannot tell".
    assert.equal(byName(r.checks, 'tracking').status, 'warn');
  } finally {
    delNetns(ns);
  }
});

test('as nobody with the three capabilities: every privilege check passes', { skip }, async () => {
  const ns = makeNetns('ctdoc');
  try {
    enableTracking(ns);
    const caps = '+net_admin,+dac_read_search,+sys_ptrace';
    const r = await doctor(ns, ['--json'], [...NOBODY, `--inh-caps=${caps}`, `--ambient-caps=${caps}`]);
    for (const name of ['ctnetlink', 'events', 'tracking', 'cap-events', 'cap-attribute', 'proc', 'dns-names']) {
      assert.equal(byName(r.checks, name).status, 'pass', JSON.stringify(byName(r.checks, name)));
    }
    assert.match(byName(r.checks, 'proc').detail, /other users' open files are readable/);
  } finally {
    delNetns(ns);
  }
});

test('outputs: a listening TCP port passes, a closed one fails, HTTP answers pass or warn (401), a unix socket must exist', { skip }, async () => {
  const tmp = mkdtempSync(path.join(tmpdir(), 'ctdoc-'));
  const tcp = net.createServer((s) => s.destroy()).listen(0, '127.0.0.1');
  const closed = net.createServer().listen(0, '127.0.0.1');
  const es = http.createServer((req, res) => res.writeHead(req.headers.authorization ? 200 : 401).end('{}')).listen(0, '127.0.0.1');
  const sock = path.join(tmp, 'log.sock');
  const unix = net.createServer().listen(sock);
  try {
    await Promise.all([tcp, closed, es, unix].map((s) => new Promise((r) => s.listening ? r(null) : s.once('listening', r))));
    const port = (s: net.Server | http.Server) => (s.address() as AddressInfo).port;
    const closedPort = port(closed);
    await new Promise((r) => closed.close(r));
    const r = await doctor(null, ['--json', '--timeout', '5',
      '--tcp', `127.0.0.1:${port(tcp)}`, '--relp', `127.0.0.1:${closedPort}`,
      '--unix', sock, '--syslog', path.join(tmp, 'missing.sock'), '--udp', '127.0.0.1',
      '--node', `http://127.0.0.1:${port(es)}`, '--es', `http://user:secret@127.0.0.1:${port(es)}`]);
    const outs = r.checks.filter((c) => c.target);
    const at = (t: string) => outs.filter((c) => c.target === t);
    assert.equal(at(`tcp://127.0.0.1:${port(tcp)}`)[0].status, 'pass');
    const refused = at(`relp://127.0.0.1:${closedPort}`)[0];
    assert.equal(refused.status, 'fail');
    assert.match(refused.detail, /ECONNREFUSED/);
    assert.equal(at(`unix:${sock}`)[0].status, 'pass');
    assert.equal(at(`unix:${path.join(tmp, 'missing.sock')}`)[0].status, 'fail');
    const udp = at('udp://127.0.0.1:514')[0];
    assert.equal(udp.status, 'pass');
    assert.match(udp.detail, /delivery cannot be confirmed/);
    const [anon, authed] = at(`http://127.0.0.1:${port(es)}`);
    assert.equal(anon.status, 'warn');
    assert.match(anon.detail, /HTTP 401/);
    assert.equal(authed.status, 'pass');
    assert.doesNotMatch(r.stdout, /secret/);
    assert.equal(r.code, 1); // the refused and the missing ones
  } finally {
    for (const s of [tcp, es, unix]) s.close();
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('a target in no known form is a usage error', async () => {
  const r = await runBin('ct-doctor', ['--syslog', 'ftp://x']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^ct-doctor: --syslog is now --udp, --tcp, --tls, --relp or --unix \(see ctpipe\(7\)\).*\nct-doctor: --syslog 'ftp:\/\/x': expected udp:\/\/.*\nTry 'ct-doctor --help'.\n$/);
  const t = await runBin('ct-doctor', ['--tcp', 'h:99999']);
  assert.equal(t.code, 2);
  assert.match(t.stderr, /^ct-doctor: --tcp 'h:99999': bad port/);
  const e = await runBin('ct-doctor', ['--node', 'ftp://x']);
  assert.equal(e.code, 2);
  assert.match(e.stderr, /only http:\/\/ and https:\/\//);
});

test('--help and --version', async () => {
  const h = await runBin('ct-doctor', ['--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /--tcp/);
  assert.match(h.stdout, /--node/);
  const v = await runBin('ct-doctor', ['--version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^\d+\.\d+\.\d+\n$/);
  assert.equal(execFileSync(BIN('ct-doctor'), ['-V'], { encoding: 'utf8' }), v.stdout);
});
