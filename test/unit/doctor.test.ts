// Capability masks, ct-doctor's target parsing, its sysctl and capability
// checks over a fake /proc tree, and its line format.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseCapMask, effectiveCaps, missingCaps, CAPS } from '../../src/caps.js';
import { parseSyslogTarget, parseEsTarget, TargetError } from '../../src/doctor/outputs.js';
import { checkSysctl, checkCapEvents, checkCapAttribute, checkBpf, checkDnsNames, type BpfProbe } from '../../src/doctor/checks.js';
import { isRoot, inCI } from '../helpers.js';
import { formatLine } from '../../src/commands/doctor.js';

test('capability masks: bits from the low end, 64 bits and more', () => {
  assert.deepEqual([...parseCapMask('0000000000081004')].sort((a, b) => a - b), [2, 12, 19]);
  assert.deepEqual([...parseCapMask('0')], []);
  const all = parseCapMask('000001ffffffffff');
  assert.equal(all.size, 41);
  assert.ok(all.has(40) && !all.has(41));
  assert.ok(!parseCapMask('000001fffeffffff').has(24));
  assert.throws(() => parseCapMask('xyz'), /not a capability mask/);
});

test('CapEff from a status text; missing capabilities by name', () => {
  const status = 'Name:\tnode\nCapInh:\t0000000000000000\nCapPrm:\t0000000000001000\nCapEff:\t0000000000001000\nCapBnd:\t000001ffffffffff\n';
  const eff = effectiveCaps(status)!;
  assert.deepEqual([...eff], [CAPS.CAP_NET_ADMIN]);
  assert.deepEqual(missingCaps(['CAP_NET_ADMIN', 'CAP_SYS_PTRACE'], eff), ['CAP_SYS_PTRACE']);
  assert.deepEqual(missingCaps(['CAP_NET_ADMIN'], null), ['CAP_NET_ADMIN']);
  assert.equal(effectiveCaps('Name:\tx\n'), null);
});

test('syslog targets: schemes, default ports, IPv6, paths', () => {
  assert.deepEqual(parseSyslogTarget('tcp://logs.example'), { kind: 'syslog', transport: 'tcp', host: 'logs.example', port: 514, label: 'tcp://logs.example:514' });
  assert.equal((parseSyslogTarget('tls://h') as any).port, 6514);
  assert.equal((parseSyslogTarget('relp://h') as any).port, 2514);
  assert.equal((parseSyslogTarget('udp://h:5140') as any).port, 5140);
  assert.deepEqual(parseSyslogTarget('udp://[::1]:600'), { kind: 'syslog', transport: 'udp', host: '::1', port: 600, label: 'udp://[::1]:600' });
  assert.deepEqual(parseSyslogTarget('/dev/log'), { kind: 'syslog', transport: 'unix', path: '/dev/log', label: 'unix:/dev/log' });
  assert.equal((parseSyslogTarget('unix:/run/x.sock') as any).path, '/run/x.sock');
  for (const bad of ['logs.example:514', 'ftp://h', 'tcp://', 'tcp://h:99999', 'unix:relative']) {
    assert.throws(() => parseSyslogTarget(bad), TargetError, bad);
  }
});

test('es targets as ct-es takes --node; credentials stay out of the label', () => {
  assert.equal(parseEsTarget('https://u:p@es1:9200').label, 'https://es1:9200');
  assert.equal(parseEsTarget('es1:9200').label, 'http://es1:9200');
  assert.throws(() => parseEsTarget('ftp://es1'), TargetError);
});

test('sysctl and capability checks over a fake /proc', () => {
  const proc = mkdtempSync(path.join(tmpdir(), 'ctdoc-proc-'));
  try {
    mkdirSync(path.join(proc, 'sys/net/netfilter'), { recursive: true });
    mkdirSync(path.join(proc, 'self'));
    writeFileSync(path.join(proc, 'sys/net/netfilter/nf_conntrack_acct'), '1\n');
    writeFileSync(path.join(proc, 'sys/net/netfilter/nf_conntrack_timestamp'), '0\n');
    const ctx = { proc, euid: 1000 };
    assert.equal(checkSysctl(ctx, 'acct', 'nf_conntrack_acct', 'counters').status, 'pass');
    const ts = checkSysctl(ctx, 'timestamp', 'nf_conntrack_timestamp', 'times');
    assert.equal(ts.status, 'warn');
    assert.equal(ts.fix, 'sysctl -w net.netfilter.nf_conntrack_timestamp=1 (and in /etc/sysctl.d/ to keep it)');
    assert.equal(checkSysctl(ctx, 'x', 'nf_conntrack_nothing', 'x').status, 'warn');

    writeFileSync(path.join(proc, 'self/status'), 'CapEff:\t0000000000001000\n');
    assert.equal(checkCapEvents(ctx).status, 'pass');
    const attr = checkCapAttribute(ctx);
    assert.equal(attr.status, 'warn');
    assert.match(attr.detail, /^missing CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE: /);
    assert.match(attr.fix!, /AmbientCapabilities=CAP_DAC_READ_SEARCH CAP_SYS_PTRACE/);
    writeFileSync(path.join(proc, 'self/status'), 'CapEff:\t0000000000080004\n');
    const ev = checkCapEvents(ctx);
    assert.equal(ev.status, 'fail');
    assert.match(ev.detail, /^missing CAP_NET_ADMIN/);
    assert.equal(checkCapAttribute(ctx).status, 'pass');
  } finally {
    rmSync(proc, { recursive: true, force: true });
  }
});

test('a line per check: status, name, detail, fix', () => {
  assert.equal(formatLine({ check: 'acct', status: 'warn', detail: 'off', fix: 'switch it on' }), 'WARN  acct          off -- fix: switch it on');
  assert.equal(formatLine({ check: 'nft', status: 'pass', detail: 'v1' }), 'PASS  nft           v1');
});

test('bpf: missing capabilities and a failed load warn with the reason; a kernel without sock_send_length passes on the system call route; otherwise it passes', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ct-doc-bpf-'));
  try {
    // A /proc of the test's own: every capability; CAP_BPF and CAP_PERFMON only; neither (nor CAP_SYS_ADMIN).
    const status = (name: string, capEff: string) => {
      mkdirSync(path.join(dir, name, 'self'), { recursive: true });
      writeFileSync(path.join(dir, name, 'self', 'status'), `Name:\tnode\nCapEff:\t${capEff}\n`);
      return path.join(dir, name);
    };
    const all = status('all', '000001ffffffffff');
    const bpfOnly = status('bpf', (2n ** 38n + 2n ** 39n).toString(16).padStart(16, '0'));
    const none = status('none', '0000000000000000');
    const tp: BpfProbe = () => ({ udp: 'tracepoint', attachMs: 21 });
    const noCaps = await checkBpf({ proc: none, euid: 1000 }, () => { throw new Error('not to be tried'); });
    assert.equal(noCaps.status, 'warn');
    assert.match(noCaps.detail, /^missing CAP_BPF and CAP_PERFMON: ct-attribute's bpf method/);
    assert.match(noCaps.fix!, /AmbientCapabilities=CAP_BPF CAP_PERFMON/);
    assert.equal((await checkBpf({ proc: bpfOnly, euid: 1000 }, tp)).status, 'pass');
    const failed = await checkBpf({ proc: all, euid: 0 }, () => { throw new Error('this kernel has no BTF (/sys/kernel/btf/vmlinux: CONFIG_DEBUG_INFO_BTF), which the BPF programs need'); });
    assert.equal(failed.status, 'warn');
    assert.match(failed.detail, /cannot load its programs: this kernel has no BTF/);
    const old = await checkBpf({ proc: all, euid: 0 }, () => ({ udp: 'syscall', attachMs: 30 }));
    assert.equal(old.status, 'pass');
    assert.match(old.detail, /UDP sends are seen at the exit of the send system calls/);
    assert.equal((await checkBpf({ proc: all, euid: 0 }, () => ({ udp: 'none', attachMs: 30 }))).status, 'warn');
    const ok = await checkBpf({ proc: all, euid: 0 }, tp);
    assert.equal(ok.status, 'pass', ok.detail);
    assert.match(ok.detail, /^programs loaded and attached in 21 ms; TCP connects and UDP sends are seen/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bpf: the real programs load here as root (the check tries them as ct-attribute would)', { skip: isRoot || inCI ? false : 'needs root (CAP_BPF and CAP_PERFMON)' }, async () => {
  const r = await checkBpf({ proc: '/proc', euid: 0 });
  assert.equal(r.status, 'pass', r.detail);
});

test('dns-names: pass when ct-events could observe DNS answers; else warn with why and the fix', async () => {
  const ok = await checkDnsNames(async () => {});
  assert.equal(ok.status, 'pass');
  assert.match(ok.detail, /^ct-events can observe DNS answers/);
  const perm = await checkDnsNames(async () => { throw new Error('binding an NFLOG group needs CAP_NET_ADMIN'); });
  assert.deepEqual([perm.status, perm.detail], ['warn', 'ct-events cannot observe DNS answers (binding an NFLOG group needs CAP_NET_ADMIN): flows will carry no "dns" name']);
  assert.match(perm.fix!, /--ambient-caps \+net_admin/);
  const nft = await checkDnsNames(async () => { throw new Error("the 'nft' command is missing"); });
  assert.equal(nft.fix, 'apt-get install nftables');
  const other = await checkDnsNames(async () => { throw new Error('binding NFLOG group 5300: errno 22'); });
  assert.equal(other.status, 'warn');
  assert.equal(other.fix, undefined);
});
