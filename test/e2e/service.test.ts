// The service as shipped (packaging/): the unit passes systemd-analyze verify
// and grants exactly the capabilities src/caps.ts says the commands need;
// its pipeline script, run as nobody holding only those capabilities in a
// namespace of the test's own, captures and attributes real connections made
// by root and by another user, and stops cleanly on SIGTERM or when its
// output fails. Without the capabilities, each command says in one line which
// one it lacks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, readFileSync, writeFileSync, chmodSync, existsSync, copyFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT, needRoot, makeNetns, delNetns, enableTracking, waitFor, lines, withoutMethods } from '../helpers.js';
import { installForOthers } from '../installed.js';
import { NEEDS } from '../../src/caps.js';

const skip = needRoot();
const UNIT = path.join(ROOT, 'packaging', 'ctpipe.service');
const SHIPPED_PIPELINE = path.join(ROOT, 'packaging', 'ctpipe-pipeline');
// nobody runs the commands and the script from an installed copy: the
// checkout may be in a directory nobody cannot enter (root's home).
const installed = skip ? null : installForOthers();
const BIN = (name: string) => installed!.bin(name);
const PIPELINE = skip ? SHIPPED_PIPELINE : path.join(installed!.prefix, 'ctpipe-pipeline');
if (installed) {
  copyFileSync(SHIPPED_PIPELINE, PIPELINE);
  chmodSync(PIPELINE, 0o755);
}
/** What the unit grants: what src/caps.ts says the commands need, and CAP_BPF + CAP_PERFMON for ct-attribute's native BPF method. */
const UNIT_CAPS = [...NEEDS.events, ...NEEDS.attribute, 'CAP_BPF', 'CAP_PERFMON'];
/** Capability numbers (linux/capability.h) of those. */
const CAP_NO: Record<string, number> = { CAP_DAC_READ_SEARCH: 2, CAP_NET_ADMIN: 12, CAP_SYS_PTRACE: 19, CAP_PERFMON: 38, CAP_BPF: 39 };
const mask = (caps: string[]) => caps.reduce((m, c) => m | (1n << BigInt(CAP_NO[c])), 0n);
const PY = '/usr/bin/python3';
const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
/** Another unprivileged user, not the pipeline's: daemon (uid 1) exists on every Debian system. */
const OTHER = ['setpriv', '--reuid=1', '--regid=1', '--clear-groups'];

/** Settings of the unit's [Service] section (last one wins, as in systemd). */
function unitSettings(): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of readFileSync(UNIT, 'utf8').split('\n')) {
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (kv) m.set(kv[1], kv[2]);
  }
  return m;
}

/** The unit's ambient capabilities as setpriv takes them: +net_admin,+... */
function unitCaps(): string {
  return unitSettings().get('AmbientCapabilities')!.split(/\s+/).map((c) => '+' + c.replace(/^CAP_/, '').toLowerCase()).join(',');
}

test('the unit passes systemd-analyze verify and grants exactly the capabilities the commands need', { skip }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ctunit-'));
  try {
    // The installed unit runs /usr/lib/ctpipe/ctpipe-pipeline; verify needs
    // the executable to exist, so a copy points at the repository's.
    const unit = path.join(dir, 'ctpipe.service');
    writeFileSync(unit, readFileSync(UNIT, 'utf8').replace(/^ExecStart=.*$/m, `ExecStart=${SHIPPED_PIPELINE}`));
    const r = spawnSyncText('systemd-analyze', ['verify', '--man=no', unit]);
    assert.equal(r.status, 0, r.stderr);
    // verify exits 0 on settings it ignores: any line it prints is a failure.
    assert.equal(r.stderr.trim(), '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const s = unitSettings();
  const want = [...UNIT_CAPS].sort();
  assert.deepEqual(s.get('AmbientCapabilities')!.split(/\s+/).sort(), want);
  assert.deepEqual(s.get('CapabilityBoundingSet')!.split(/\s+/).sort(), want);
  for (const [k, v] of [['User', 'ctpipe'], ['NoNewPrivileges', 'yes'], ['ProtectSystem', 'strict'], ['ProtectHome', 'yes'],
    ['PrivateTmp', 'yes'], ['Restart', 'on-failure'], ['KillMode', 'mixed'], ['EnvironmentFile', '-/etc/default/ctpipe'],
    ['ExecStart', '/usr/lib/ctpipe/ctpipe-pipeline']]) {
    assert.equal(s.get(k), v, k);
  }
  // Settings that would break attribution or the capture must stay unset.
  for (const k of ['PrivateNetwork', 'ProtectProc', 'ProcSubset', 'MemoryDenyWriteExecute', 'PrivateUsers']) assert.ok(!s.has(k), k);
});

function spawnSyncText(cmd: string, args: string[]) {
  try {
    const stdout = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { status: 0, stdout, stderr: '' };
  } catch (e: any) {
    return { status: e.status ?? 1, stdout: String(e.stdout ?? ''), stderr: String(e.stderr ?? e.message) };
  }
}

const LISTENER = `
import socket, threading, time
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind(('127.0.0.1', 7100)); t.listen(50)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('127.0.0.1', 7101))
held = []
def acc():
    while True: held.append(t.accept())
threading.Thread(target=acc, daemon=True).start()
print('ready', flush=True)
while True: u.recv(100)
`;

const CLIENT = `
import socket, sys, os, time
proto = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == 'tcp' else socket.SOCK_DGRAM)
if proto == 'tcp': s.connect(('127.0.0.1', 7100))
else: s.sendto(b'hi', ('127.0.0.1', 7101))
print(os.getpid(), s.getsockname()[1], flush=True)
time.sleep(1.5)
`;

interface Client { pid: number; sport: number; proto: string; uid: number }

/** A client in the namespace, run directly by `ip netns exec` (setpriv and python exec in turn: its pid is the spawned one). */
function client(ns: string, proto: 'tcp' | 'udp', as: string[], uid: number): Promise<Client> {
  return new Promise((resolve, reject) => {
    const c = spawn('ip', ['netns', 'exec', ns, ...as, PY, '-c', CLIENT, proto], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout!.setEncoding('utf8').on('data', (d) => {
      out += d;
      const m = /^(\d+) (\d+)\n/.exec(out);
      if (m) {
        assert.equal(Number(m[1]), c.pid, 'the client runs as the spawned pid');
        resolve({ pid: c.pid!, sport: Number(m[2]), proto, uid });
      }
    });
    c.on('error', reject);
    c.on('exit', (code) => { if (!/\n/.test(out)) reject(new Error(`client exited ${code}`)); });
  });
}

/** Connect (as root) until a connection shows up in `text()`: the subscription is then in place. */
async function untilCaptured(ns: string, text: () => string, what: () => string): Promise<Client> {
  for (let i = 0; i < 15; i++) {
    const c = await client(ns, 'tcp', [], 0);
    const seen = await waitFor(() => text().includes(`"sport":${c.sport},`), 2000, 'event').then(() => true, () => false);
    if (seen) return c;
  }
  throw new Error(`no connection was ever captured; ${what()}`);
}

function startListener(ns: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const l = spawn('ip', ['netns', 'exec', ns, PY, '-c', LISTENER], { stdio: ['ignore', 'pipe', 'inherit'] });
    l.stdout!.setEncoding('utf8').on('data', (d) => { if (d.includes('ready')) resolve(l); });
    l.on('error', reject);
    l.on('exit', (code) => reject(new Error(`listener exited ${code}`)));
  });
}

/**
 * ctpipe-pipeline as the service runs it: its own session (so the test's
 * clients are not "self" to ct-filter --no-self), the installed commands
 * on PATH, the output into a file.
 */
function startPipeline(ns: string, prefix: string[], env: Record<string, string>) {
  const child = spawn('ip', ['netns', 'exec', ns, ...prefix, PIPELINE], {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, PATH: `${path.join(installed!.prefix, 'bin')}:${process.env.PATH}`, ...env },
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d) => (stderr += d));
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, closed, stderr: () => stderr };
}

/** The processes the pipeline script started (its children), by command, with their capability sets from /proc/PID/status. */
function stagesOf(script: number): { pid: number; name: string; eff: bigint; prm: bigint; amb: bigint }[] {
  const out = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let status: string;
    try { status = readFileSync(`/proc/${d}/status`, 'utf8'); } catch { continue; }
    if (Number(/^PPid:\s*(\d+)/m.exec(status)![1]) !== script) continue;
    const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
    // node runs bin/ct-x as `node .../bin/ct-x`; anything else is the output.
    const ct = argv.find((a) => /\/ct-[a-z]+$/.test(a));
    const name = ct ? path.basename(ct) : 'output';
    const cap = (k: string) => BigInt('0x' + new RegExp(`^${k}:\\s*([0-9a-f]+)`, 'm').exec(status)![1]);
    out.push({ pid: Number(d), name, eff: cap('CapEff'), prm: cap('CapPrm'), amb: cap('CapAmb') });
  }
  return out;
}

async function exitOf(p: ReturnType<typeof startPipeline>, ms = 20000): Promise<number | null> {
  const t = setTimeout(() => { try { process.kill(-p.child.pid!, 'SIGKILL'); } catch { /* gone */ } }, ms);
  const code = await p.closed;
  clearTimeout(t);
  return code;
}

test('as nobody with only the unit\'s capabilities, the service pipeline captures and attributes root\'s and another user\'s connections', { skip }, async () => {
  const ns = makeNetns('ctsvc');
  const dir = mkdtempSync(path.join(tmpdir(), 'ctsvc-'));
  chmodSync(dir, 0o777);
  const out = path.join(dir, 'events.ndjson');
  let listener: ChildProcess | null = null;
  let p: ReturnType<typeof startPipeline> | null = null;
  try {
    enableTracking(ns);
    listener = await startListener(ns);
    const caps = unitCaps();
    assert.equal(caps, '+net_admin,+dac_read_search,+sys_ptrace,+bpf,+perfmon');
    p = startPipeline(ns, [...NOBODY, `--inh-caps=${caps}`, `--ambient-caps=${caps}`], {
      CT_EVENTS_OPTS: '-e new,destroy', CT_OUTPUT: `cat > '${out}'`, TMPDIR: dir,
    });
    const read = () => (existsSync(out) ? readFileSync(out, 'utf8') : '');
    await untilCaptured(ns, read, () => `stderr: ${p!.stderr()}`);
    const made = [
      await client(ns, 'tcp', [], 0),
      await client(ns, 'tcp', OTHER, 1),
      await client(ns, 'udp', OTHER, 1),
      await client(ns, 'udp', [], 0),
    ];
    await waitFor(() => made.every((c) => readFileSync(out, 'utf8').includes(`"sport":${c.sport},`)), 10000, 'every connection\'s event');
    // Least privilege per stage: each running stage holds only its own capabilities.
    const stages = stagesOf(p.child.pid!);
    assert.deepEqual(stages.map((st) => st.name).sort(), ['ct-attribute', 'ct-events', 'ct-filter', 'output'], JSON.stringify(stages.map((st) => [st.pid, st.name])));
    // The output's own processes too (its shell runs cat).
    const output = stages.find((st) => st.name === 'output')!;
    const outputs = stagesOf(output.pid).map((st) => ({ ...st, name: 'output' }));
    assert.ok(outputs.length >= 1, 'the output command runs');
    const wanted: Record<string, string[]> = { 'ct-events': ['CAP_NET_ADMIN'], 'ct-attribute': ['CAP_DAC_READ_SEARCH', 'CAP_SYS_PTRACE', 'CAP_BPF', 'CAP_PERFMON'], 'ct-filter': [], output: [] };
    for (const st of [...stages, ...outputs]) {
      assert.equal(st.eff, mask(wanted[st.name]), `${st.name}: CapEff ${st.eff.toString(16)}`);
      assert.equal(st.amb, mask(wanted[st.name]), `${st.name}: CapAmb ${st.amb.toString(16)}`);
      assert.equal(st.prm, mask(wanted[st.name]), `${st.name}: CapPrm ${st.prm.toString(16)}`);
    }
    process.kill(p.child.pid!, 'SIGTERM');
    const code = await exitOf(p);
    assert.equal(code, 0, p.stderr());
    // Nothing but the first warning-free start: no capability complaint, DNS observation live.
    assert.doesNotMatch(withoutMethods(p.stderr()), /CAP_|permission|not live/i);
    assert.match(p.stderr(), /^ct-attribute: methods: sock_diag live .*bpf live \(attached in \d+ ms; UDP sends by sock:sock_send_length\)/m, 'the service\'s CAP_BPF and CAP_PERFMON load the bpf method');
    const evs = lines(readFileSync(out, 'utf8'));
    for (const c of made) {
      const ev = evs.find((e) => e.event === 'new' && e.proto === c.proto && e.sport === c.sport);
      assert.ok(ev, `no NEW event for ${JSON.stringify(c)}`);
      assert.deepEqual(ev.attribution, { method: 'sock_diag', ok: true }, JSON.stringify(ev));
      assert.equal(ev.process.pid, c.pid);
      assert.equal(ev.process.uid, c.uid);
      assert.equal(ev.process.user, c.uid === 0 ? 'root' : 'daemon');
      assert.equal(ev.process.exe, execFileSync('readlink', ['-f', PY], { encoding: 'utf8' }).trim());
    }
  } finally {
    if (p && p.child.exitCode === null) { try { process.kill(-p.child.pid!, 'SIGKILL'); } catch { /* gone */ } }
    listener?.kill('SIGKILL');
    delNetns(ns);
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Resolve argv[1] through libc (the namespace's resolv.conf), connect to it on 7100, print "PID SPORT", hold 1.5 s. */
const RESOLVING_CLIENT = `
import socket, sys, os, time
addr = socket.getaddrinfo(sys.argv[1], 7100, socket.AF_INET, socket.SOCK_STREAM)[0][4]
s = socket.create_connection(addr)
print(os.getpid(), s.getsockname()[1], flush=True)
time.sleep(1.5)
`;

test('with only the unit\'s per-stage capabilities, the enrichments work: ct-events observes DNS answers, ct-attribute --hash digests root\'s and another user\'s executables', { skip }, async () => {
  const ns = makeNetns('ctsvd');
  const dir = mkdtempSync(path.join(tmpdir(), 'ctsvd-'));
  chmodSync(dir, 0o777);
  const out = path.join(dir, 'events.ndjson');
  const helpers: ChildProcess[] = [];
  let p: ReturnType<typeof startPipeline> | null = null;
  try {
    enableTracking(ns);
    execFileSync('ip', ['-n', ns, 'addr', 'add', '127.0.0.2/8', 'dev', 'lo']);
    // libc in the namespace asks dnsmasq on 127.0.0.2 (ip netns exec mounts /etc/netns/NS/resolv.conf).
    mkdirSync(`/etc/netns/${ns}`, { recursive: true });
    writeFileSync(`/etc/netns/${ns}/resolv.conf`, 'nameserver 127.0.0.2\noptions timeout:2 attempts:2\n');
    helpers.push(spawn('ip', ['netns', 'exec', ns, 'dnsmasq', '-k', '--conf-file=/dev/null', '--pid-file=', '--user=root', '--bind-interfaces', '--no-resolv', '--no-hosts',
      '--listen-address=127.0.0.2', '--host-record=svc.t.test,127.0.0.1'], { stdio: 'ignore' }));
    helpers.push(await startListener(ns));
    const caps = unitCaps();
    p = startPipeline(ns, [...NOBODY, `--inh-caps=${caps}`, `--ambient-caps=${caps}`], {
      CT_EVENTS_OPTS: '-e new,destroy', CT_ATTRIBUTE_OPTS: '--hash', CT_OUTPUT: `cat > '${out}'`, TMPDIR: dir,
    });
    const read = () => (existsSync(out) ? readFileSync(out, 'utf8') : '');
    await untilCaptured(ns, read, () => `stderr: ${p!.stderr()}`);
    // ct-events, as nobody with CAP_NET_ADMIN only, installed its DNS table.
    assert.match(execFileSync('ip', ['netns', 'exec', ns, 'nft', 'list', 'tables'], { encoding: 'utf8' }), /ctpipe_dns_\d+/);
    const made: Client[] = [];
    for (const [as, uid] of [[[], 0], [OTHER, 1]] as const) {
      const c = spawn('ip', ['netns', 'exec', ns, ...as, PY, '-c', RESOLVING_CLIENT, 'svc.t.test'], { stdio: ['ignore', 'pipe', 'inherit'] });
      const line = await new Promise<string>((resolve, reject) => {
        let o = '';
        c.stdout!.setEncoding('utf8').on('data', (d) => { o += d; if (o.includes('\n')) resolve(o); });
        c.on('exit', (code) => reject(new Error(`client exited ${code}`)));
      });
      const [pid, sport] = line.trim().split(' ').map(Number);
      made.push({ pid: pid!, sport: sport!, proto: 'tcp', uid });
    }
    await waitFor(() => made.every((c) => read().includes(`"sport":${c.sport},`)), 10000, 'every connection\'s NEW');
    // Their DESTROY too (the listener holds its ends: a flush ends them), when the digests begun at NEW are done.
    await new Promise((r) => setTimeout(r, 2000));
    execFileSync('ip', ['netns', 'exec', ns, 'conntrack', '-F'], { stdio: 'ignore' });
    await waitFor(() => made.every((c) => lines(read()).some((e) => e.event === 'destroy' && e.sport === c.sport && e.dport === 7100)), 15000, 'every connection\'s DESTROY');
    process.kill(p.child.pid!, 'SIGTERM');
    assert.equal(await exitOf(p), 0, p.stderr());
    assert.doesNotMatch(withoutMethods(p.stderr()), /CAP_|permission|not live/i);
    // The DNS table went with ct-events.
    assert.doesNotMatch(execFileSync('ip', ['netns', 'exec', ns, 'nft', 'list', 'tables'], { encoding: 'utf8' }), /ctpipe_dns_/);
    const evs = lines(read());
    const pySha = execFileSync('sha256sum', [execFileSync('readlink', ['-f', PY], { encoding: 'utf8' }).trim()], { encoding: 'utf8' }).split(' ')[0];
    for (const c of made) {
      const n = evs.find((e) => e.event === 'new' && e.sport === c.sport && e.dport === 7100);
      const d = evs.find((e) => e.event === 'destroy' && e.sport === c.sport && e.dport === 7100);
      assert.ok(n && d, `NEW and DESTROY of ${JSON.stringify(c)}`);
      assert.equal(n.process?.pid, c.pid, JSON.stringify(n));
      assert.equal(n.process.uid, c.uid);
      assert.equal(n.dns?.name, 'svc.t.test', JSON.stringify(n));
      assert.deepEqual(d.dns, n.dns);
      assert.match(n.process.entity_id, /^[A-Za-z0-9_-]{22}$/);
      assert.equal(d.process.entity_id, n.process.entity_id);
      assert.equal(d.process.hash?.sha256, pySha, JSON.stringify(d.process));
    }
  } finally {
    if (p && p.child.exitCode === null) { try { process.kill(-p.child.pid!, 'SIGKILL'); } catch { /* gone */ } }
    for (const h of helpers) h.kill('SIGKILL');
    delNetns(ns);
    rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
});

test('without CAP_NET_ADMIN, ct-events exits 1 with one line naming it', { skip }, async () => {
  const ns = makeNetns('ctsvc');
  try {
    const r = spawnSyncText('ip', ['netns', 'exec', ns, ...NOBODY, BIN('ct-events')]);
    assert.equal(r.status, 1);
    const err = r.stderr.trimEnd().split('\n').filter((l) => !/conntrack is not active/.test(l));
    assert.equal(err.length, 1, r.stderr);
    assert.match(err[0], /^ct-events: .*needs CAP_NET_ADMIN/);
  } finally {
    delNetns(ns);
  }
});

test('ct-attribute without CAP_DAC_READ_SEARCH or CAP_SYS_PTRACE: no-permission, and one line naming what is missing', { skip }, async () => {
  const ns = makeNetns('ctsvc');
  let listener: ChildProcess | null = null;
  try {
    enableTracking(ns);
    listener = await startListener(ns);
    // Each run: root's ct-events into ct-attribute as nobody with some capabilities.
    for (const [caps, missing] of [[null, 'CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE'], ['+sys_ptrace', 'CAP_DAC_READ_SEARCH'], ['+dac_read_search', 'CAP_SYS_PTRACE']] as const) {
      const as = caps ? [...NOBODY, `--inh-caps=${caps}`, `--ambient-caps=${caps}`] : NOBODY;
      const sh = spawn('ip', ['netns', 'exec', ns, 'sh', '-c', `trap '' INT; "$0" -e new | ${as.join(' ')} "$1"`, BIN('ct-events'), BIN('ct-attribute')], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      let out = '', err = '';
      sh.stdout!.setEncoding('utf8').on('data', (d) => (out += d));
      sh.stderr!.setEncoding('utf8').on('data', (d) => (err += d));
      const closed = new Promise((r) => sh.on('close', r));
      const seen = async (c: Client) => waitFor(() => out.includes(`"sport":${c.sport},`), 3000, 'event').then(() => true, () => false);
      const root = await untilCaptured(ns, () => out, () => `stderr: ${err}`);
      const other = await client(ns, 'tcp', OTHER, 1);
      assert.ok(await seen(other), 'the other user\'s connection');
      process.kill(-sh.pid!, 'SIGTERM');
      await closed;
      const evs = lines(out);
      for (const c of [root, other]) {
        const ev = evs.find((e) => e.event === 'new' && e.sport === c.sport);
        assert.ok(ev);
        assert.equal(ev.process, undefined, `owner named without permission: ${JSON.stringify(ev)}`);
        assert.equal(ev.attribution.reason, 'no-permission');
        assert.equal(ev.attribution.uid, c.uid);
      }
      const warnings = withoutMethods(err).split('\n').filter((l) => l.startsWith('ct-attribute:'));
      assert.deepEqual(warnings, [`ct-attribute: other users' processes cannot be read (missing ${missing}): their flows get attribution reason "no-permission"`], err);
    }
  } finally {
    listener?.kill('SIGKILL');
    delNetns(ns);
  }
});

test('the pipeline script stops everything and fails when its output fails while ct-events runs', { skip }, async () => {
  const ns = makeNetns('ctsvc');
  const dir = mkdtempSync(path.join(tmpdir(), 'ctsvc-'));
  try {
    enableTracking(ns);
    // The output fails after a while, with ct-events running and waiting for events.
    const p = startPipeline(ns, [], { CT_OUTPUT: 'sleep 2; exit 3', TMPDIR: dir });
    const code = await exitOf(p, 30000);
    assert.equal(code, 3, p.stderr());
    assert.match(p.stderr(), /ctpipe-pipeline: output ended \(status 3\) while ct-events was running; stopping the pipeline/);
    // Every stage has ended: nothing is left in the script's session.
    const left = execFileSync('ps', ['-e', '-o', 'sid=,pid=,stat=,args='], { encoding: 'utf8' }).split('\n')
      .filter((l) => Number(l.trim().split(/\s+/)[0]) === p.child.pid);
    assert.deepEqual(left, [], 'stages of the pipeline still running');
  } finally {
    delNetns(ns);
    rmSync(dir, { recursive: true, force: true });
  }
});
