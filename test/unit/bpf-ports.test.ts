// The port sightings of ct-attribute --bpf: the BPF programs' records, and who had
// a port when a flow began (src/attribute/sources/bpf/ports.ts), and how an event waits for a
// sighting still on its way (src/attribute/sources/bpf/hook.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PortTable, type Sighting } from '../../src/attribute/sources/bpf/ports.js';
import { PortHook, type AttributedRecord } from '../../src/attribute/sources/bpf/hook.js';
import { decodeSightings, RECORD_SIZE } from '../../src/native/bpf.js';
import { readFileSync } from 'node:fs';
import { ROOT } from '../helpers.js';
import { CgroupIds, cgroup2Mounts } from '../../src/attribute/sources/bpf/cgroups.js';
import { mkdtempSync, mkdirSync, rmSync, statSync, readdirSync, writeFileSync, symlinkSync } from 'node:fs';
import { ProcessReader } from '../../src/proc/process.js';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FlowEvent } from '../../src/event.js';

const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);
const NS = 4026531840;

function sighting(over: Partial<Sighting>): Sighting {
  return { kind: 'send', t: T0, pid: 100, ppid: 1, uid: 0, gid: 0, netns: 4026531840, family: 'ipv4', proto: 17, sport: 40000, dport: 0, start: 5000, cgroup: 1, comm: 'dig', ...over };
}

/** One struct ct_sighting (native/bpf/sighting.h) as the kernel writes it (little-endian). */
function record(f: { ts: bigint; start: bigint; cgroup: bigint; pid: number; ppid: number; uid: number; gid: number; netns: number; sport: number; dport: number; kind: number; family: number; proto: number; comm: string }): Buffer {
  const b = Buffer.alloc(RECORD_SIZE, 0xee);
  b.writeBigUInt64LE(f.ts, 0);
  b.writeBigUInt64LE(f.start, 8);
  b.writeBigUInt64LE(f.cgroup, 16);
  b.writeUInt32LE(f.pid, 24);
  b.writeUInt32LE(f.ppid, 28);
  b.writeUInt32LE(f.uid, 32);
  b.writeUInt32LE(f.gid, 36);
  b.writeUInt32LE(f.netns, 40);
  b.writeUInt16LE(f.sport, 44);
  b.writeUInt16LE(f.dport, 46);
  b[48] = f.kind;
  b[49] = f.family;
  b[50] = f.proto;
  b.fill(0, 56);
  b.write(f.comm, 56, 15, 'utf8');
  return b;
}

test('a ring buffer record becomes a sighting; the clocks are converted, the comm keeps its spaces', () => {
  const base = { ts: 2000000000n, start: 1915913340404n, cgroup: 8765n, pid: 4242, ppid: 17, uid: 1000, gid: 1001, netns: 4026531840, sport: 51234, dport: 443, kind: 1, family: 10, proto: 6, comm: 'my prog' };
  // ts 2,000,000,000 ns on the monotonic clock; epoch ms = ts/1e6 + offset.
  const { sightings, bad } = decodeSightings(Buffer.concat([
    record(base),
    record({ ...base, kind: 2, family: 2, proto: 17, dport: 0, comm: 'exactly15chars!' }),
    // Not sightings: an unknown kind, another family, no pid, no port.
    record({ ...base, kind: 3 }), record({ ...base, family: 1 }), record({ ...base, pid: 0 }), record({ ...base, sport: 0 }),
    Buffer.alloc(10), // a part record at the end is not read
  ]), T0 - 2000);
  assert.equal(bad, 4);
  assert.deepEqual(sightings[0], {
    kind: 'connect', t: T0, pid: 4242, ppid: 17, uid: 1000, gid: 1001, netns: 4026531840, family: 'ipv6', proto: 6,
    sport: 51234, dport: 443, start: 191591, cgroup: 8765, comm: 'my prog',
  });
  assert.equal(sightings[1].kind, 'send');
  assert.equal(sightings[1].family, 'ipv4');
  assert.equal(sightings[1].comm, 'exactly15chars!');
  assert.equal(sightings.length, 2);
});

test('the record layout: sighting.h says 72 bytes, as the decoder reads', () => {
  const h = readFileSync(`${ROOT}/native/bpf/sighting.h`, 'utf8');
  assert.match(h, /#define CT_SIGHTING_SIZE 72\b/);
  assert.equal(RECORD_SIZE, 72);
});

test('the owner is the latest process seen with the port at or before the flow; later sightings are later sockets\'', () => {
  const t = new PortTable({ guardMs: 100 });
  t.add(sighting({ pid: 1, t: T0 - 5000 }));
  t.add(sighting({ pid: 2, t: T0 - 1000 }));
  const a = t.resolve(NS, 17, 40000, 53, T0);
  assert.equal(a.kind, 'match');
  assert.equal(a.kind === 'match' && a.sighting.pid, 2);
  // A flow received before the second socket was seen: the first one's.
  const b = t.resolve(NS, 17, 40000, 53, T0 - 2000);
  assert.equal(b.kind === 'match' && b.sighting.pid, 1);
  // Before anyone was seen with it, or another protocol, or another port: nothing.
  assert.equal(t.resolve(NS, 17, 40000, 53, T0 - 6000).kind, 'none');
  assert.equal(t.resolve(NS, 6, 40000, 53, T0).kind, 'none');
  assert.equal(t.resolve(NS, 17, 40001, 53, T0).kind, 'none');
  // A sighting stamped a moment after the event was received still counts (skew).
  t.add(sighting({ pid: 9, sport: 40002, t: T0 + 3 }));
  assert.equal(t.resolve(NS, 17, 40002, 53, T0).kind, 'match');
  t.add(sighting({ pid: 9, sport: 40003, t: T0 + 50 }));
  assert.equal(t.resolve(NS, 17, 40003, 53, T0).kind, 'none');
});

test('two processes seen with the port shortly before the flow: ambiguous, never a guess', () => {
  const t = new PortTable({ guardMs: 2000 });
  t.add(sighting({ pid: 1, t: T0 - 1500 }));
  t.add(sighting({ pid: 2, t: T0 - 100 }));
  const a = t.resolve(NS, 17, 40000, 53, T0);
  assert.equal(a.kind, 'ambiguous');
  assert.deepEqual(a.kind === 'ambiguous' && a.pids.sort(), [1, 2]);
  // The same pid again (the same process, another socket) is not ambiguous...
  const u = new PortTable({ guardMs: 2000 });
  u.add(sighting({ pid: 7, t: T0 - 1500 }));
  u.add(sighting({ pid: 7, t: T0 - 100 }));
  assert.equal(u.resolve(NS, 17, 40000, 53, T0).kind, 'match');
  // ...but a reused pid (another start) is another process.
  u.add(sighting({ pid: 7, start: 9999, t: T0 - 50 }));
  assert.equal(u.resolve(NS, 17, 40000, 53, T0).kind, 'ambiguous');
});

test('a connected socket names its remote port; ports are per network namespace; old sightings say nothing', () => {
  const t = new PortTable({ maxAgeMs: 30000 });
  t.add(sighting({ netns: 2, proto: 6, sport: 50000, dport: 443, pid: 5, t: T0 - 20 }));
  t.add(sighting({ netns: 1, proto: 6, sport: 50000, dport: 443, pid: 6, t: T0 - 10 }));
  assert.equal(t.resolve(1, 6, 50000, 80, T0).kind, 'none', 'another remote port');
  const m = t.resolve(1, 6, 50000, 443, T0);
  assert.equal(m.kind === 'match' && m.sighting.pid, 6);
  const o = t.resolve(2, 6, 50000, 443, T0);
  assert.equal(o.kind === 'match' && o.sighting.pid, 5, 'the same port in another namespace is another socket');
  assert.equal(t.resolve(3, 6, 50000, 443, T0).kind, 'none');
  assert.equal(t.resolve(1, 6, 50000, 443, T0 + 40000).kind, 'none', 'too old');
});

test('the table is bounded: ports least recently seen are forgotten, and a port keeps its last sightings', () => {
  const t = new PortTable({ maxPorts: 4, perPort: 2 });
  for (let p = 1; p <= 5; p++) t.add(sighting({ sport: p, t: T0 + p }));
  assert.ok(t.size <= 4 && t.size >= 2, `${t.size} ports kept`);
  assert.equal(t.forgotten, 5 - t.size);
  assert.equal(t.resolve(NS, 17, 1, 0, T0 + 10).kind, 'none');
  assert.equal(t.resolve(NS, 17, 5, 0, T0 + 10).kind, 'match');
  for (let i = 0; i < 5; i++) t.add(sighting({ sport: 5, pid: 10 + i, t: T0 + 100 + i }));
  const a = t.resolve(NS, 17, 5, 0, T0 + 200);
  assert.equal(a.kind, 'ambiguous');
  assert.deepEqual(a.kind === 'ambiguous' && a.pids.sort(), [13, 14], 'only the last two sightings are kept');
});

function newEvent(over: Partial<FlowEvent> = {}): FlowEvent {
  return { ts: new Date().toISOString(), event: 'new', id: 1, family: 'ipv4', proto: 'udp', src: '10.0.0.1', sport: 40000, dst: '10.0.0.2', dport: 53, reply: { src: '10.0.0.2', sport: 53, dst: '10.0.0.1', dport: 40000 }, ...over } as FlowEvent;
}
const gone = (): AttributedRecord => ({ direction: 'out', attribution: { method: 'sock_diag', ok: false, reason: 'socket-gone' } });

test('an event whose socket is gone takes the process seen with its port; sock_diag\'s answer stands', async () => {
  const hook = new PortHook(new PortTable(), { netns: NS, windowMs: 30 });
  const now = Date.now();
  hook.table.add(sighting({ pid: 321, uid: 65534, gid: 65534, comm: 'curl', t: now - 5 }));
  const r = await hook.resolve(newEvent(), gone());
  assert.deepEqual(r.attribution, { method: 'bpf', ok: true });
  assert.equal(r.process?.pid, 321);
  assert.equal(r.process?.uid, 65534);
  assert.equal(r.process?.comm, 'curl');
  const found = { direction: 'out' as const, process: { pid: 1 }, attribution: { method: 'sock_diag', ok: true } };
  assert.equal(await hook.resolve(newEvent(), found), found);
  // Inbound flows, DESTROY events and saved events from long ago are left as they are.
  const inbound: AttributedRecord = { ...gone(), direction: 'in' };
  assert.equal(await hook.resolve(newEvent(), inbound), inbound);
  const d = gone();
  assert.equal(await hook.resolve(newEvent({ event: 'destroy' }), d), d);
  const old = gone();
  assert.equal(await hook.resolve(newEvent({ ts: new Date(now - 3600e3).toISOString() }), old), old);
});

test('an event waits for a sighting still on its way, and no longer than the window', async () => {
  const hook = new PortHook(new PortTable(), { netns: NS, windowMs: 200 });
  const ev = newEvent({ sport: 41000 });
  const p = hook.resolve(ev, gone());
  // The line comes 20 ms later, stamped when the send was made.
  await new Promise((r) => setTimeout(r, 20));
  const s = sighting({ sport: 41000, pid: 777, t: Date.parse(ev.ts) });
  hook.sighted(hook.table.add(s), s);
  const r = await p;
  assert.equal(r.process?.pid, 777);
  assert.equal(hook.stats.waited, 1);
  // A sighting of the port that is later than the flow does not answer it; the window ends the wait.
  const ev2 = newEvent({ sport: 42000 });
  const t0 = Date.now();
  const p2 = hook.resolve(ev2, gone());
  const later = sighting({ sport: 42000, pid: 778, t: Date.parse(ev2.ts) + 100 });
  hook.sighted(hook.table.add(later), later);
  const r2 = await p2;
  assert.equal(r2.process, undefined);
  assert.equal(r2.attribution.reason, 'socket-gone');
  assert.ok(Date.now() - t0 >= 150, 'it waited for the window');
  assert.equal(hook.stats.none, 1);
});

test('a forwarded flow from a container whose socket is gone: the port as seen in that namespace', async () => {
  const hook = new PortHook(new PortTable(), { netns: NS, windowMs: 0 });
  const now = Date.now();
  hook.table.add(sighting({ pid: 55, netns: 777, t: now - 5 }));
  hook.table.add(sighting({ pid: 66, netns: NS, t: now - 5 }));
  const fwd = (extra: object): AttributedRecord => ({ direction: 'fwd', attribution: { method: 'netns-sock_diag', ok: false, reason: 'socket-gone', side: 'src', ...extra } });
  const r = await hook.resolve(newEvent(), fwd({ netns: 777 }));
  assert.deepEqual(r.attribution, { method: 'bpf', ok: true, side: 'src' });
  assert.equal(r.process?.pid, 55);
  assert.equal(r.process?.netns, 777);
  // Not when the namespace is not known, or the flow was received there (side dst).
  const unknown = fwd({});
  assert.equal(await hook.resolve(newEvent(), unknown), unknown);
  const dst: AttributedRecord = { direction: 'fwd', attribution: { method: 'netns-sock_diag', ok: false, reason: 'socket-gone', side: 'dst', netns: 777 } };
  assert.equal(await hook.resolve(newEvent(), dst), dst);
});

test('two processes with the port: the flow says ambiguous and names nobody', async () => {
  const hook = new PortHook(new PortTable(), { netns: NS, windowMs: 0 });
  const now = Date.now();
  hook.table.add(sighting({ pid: 1, t: now - 300 }));
  hook.table.add(sighting({ pid: 2, t: now - 100 }));
  const r = await hook.resolve(newEvent(), gone());
  assert.deepEqual(r.attribution, { method: 'bpf', ok: false, reason: 'ambiguous' });
  assert.equal('process' in r, false);
});

test('the BPF programs attach only to BTF-typed tracepoints (no kprobes, no tracefs), and report TCP connects and UDP sends', () => {
  const c = readFileSync(`${ROOT}/native/bpf/sightings.bpf.c`, 'utf8');
  const sections = [...c.matchAll(/SEC\("([^"]+)"\)/g)].map((m) => m[1]).filter((x) => x !== 'license' && x !== '.maps');
  assert.deepEqual(sections, ['tp_btf/inet_sock_set_state', 'tp_btf/sock_send_length', 'tp_btf/sys_exit']);
  assert.match(c, /BPF_MAP_TYPE_RINGBUF/);
});

test('cgroup ids: the directory inode in the cgroup2 hierarchy to the path /proc/PID/cgroup shows; walked again at once for an id not looked for before (a cgroup made since), and for one not found only after rescanMs', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'ct-cg-'));
  try {
    mkdirSync(path.join(root, 'system.slice', 'docker-abc.scope'), { recursive: true });
    let now = 0;
    const ids = new CgroupIds({ root, rescanMs: 1000, now: () => now });
    const ino = (rel: string) => statSync(path.join(root, rel)).ino;
    assert.equal(ids.path(ino('system.slice/docker-abc.scope')), '/system.slice/docker-abc.scope');
    assert.equal(ids.path(ino('.')), '/');
    assert.equal(ids.scans, 1);
    // A cgroup made after the walk: found at once, whatever its id beside the ones seen.
    mkdirSync(path.join(root, 'run-1.scope'));
    assert.equal(ids.path(ino('run-1.scope')), '/run-1.scope', 'walked again at once');
    assert.equal(ids.scans, 2);
    // An id found nowhere (a cgroup removed) walks once, then not again within rescanMs.
    const ghost = ino('run-1.scope') + 1000000;
    assert.equal(ids.path(ghost), null);
    assert.equal(ids.path(ghost), null);
    assert.equal(ids.scans, 3, 'the same unknown id does not walk the hierarchy again');
    // Another new cgroup still walks at once, within rescanMs of the last walk.
    mkdirSync(path.join(root, 'run-2.scope'));
    assert.equal(ids.path(ino('run-2.scope')), '/run-2.scope');
    assert.equal(ids.scans, 4);
    assert.equal(ids.path(ghost), null);
    assert.equal(ids.scans, 4, 'the unknown id still waits its turn');
    mkdirSync(path.join(root, 'user.slice'));
    now = 1500;
    assert.equal(ids.path(ino('user.slice')), '/user.slice', 'walked again after rescanMs');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  assert.deepEqual(cgroup2Mounts([
    '25 1 0:23 / /sys rw,nosuid - sysfs sysfs rw',
    '30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate',
    '31 25 0:27 / /sys/fs/cgroup/my\\040dir rw - cgroup2 none rw',
    '32 25 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory',
  ].join('\n')), ['/sys/fs/cgroup/unified', '/sys/fs/cgroup/my dir']);
});

test('a sighting of a process gone before /proc was read: its cgroup, unit and container from the cgroup id', async () => {
  const root = mkdtempSync(path.join(tmpdir(), 'ct-cg-'));
  const id = 'a'.repeat(64);
  try {
    mkdirSync(path.join(root, 'system.slice', `docker-${id}.scope`), { recursive: true });
    const hook = new PortHook(new PortTable(), { netns: NS, windowMs: 0, cgroups: new CgroupIds({ root }) });
    const cg = statSync(path.join(root, 'system.slice', `docker-${id}.scope`)).ino;
    hook.table.add(sighting({ pid: 99999999, cgroup: cg, t: Date.now() - 5 }));
    hook.table.add(sighting({ pid: 99999998, sport: 40001, cgroup: statSync(root).ino, t: Date.now() - 5 }));
    const r = await hook.resolve(newEvent(), gone());
    assert.equal(r.process?.cgroup, `/system.slice/docker-${id}.scope`);
    assert.equal(r.process?.unit, `docker-${id}.scope`);
    assert.equal(r.process?.container?.id, id);
    assert.equal(r.process?.container?.runtime, 'docker');
    const top = await hook.resolve(newEvent({ sport: 40001 }), gone());
    assert.equal(top.process?.pid, 99999998);
    assert.equal(top.process?.cgroup, undefined, 'the root says nothing');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a process reaped while /proc was read (its exe read, its cgroup file gone): the cgroup comes from the sighting\'s cgroup id', async () => {
  // /proc as ct-attribute found it when the client exited between reading
  // /proc/PID/exe and /proc/PID/cgroup: every file but the cgroup.
  const root = mkdtempSync(path.join(tmpdir(), 'ct-cg-'));
  const proc = mkdtempSync(path.join(tmpdir(), 'ct-proc-'));
  const id = 'b'.repeat(64);
  try {
    const dir = path.join(root, 'ctpbpf1.slice', 'system.slice', `docker-${id}.scope`);
    mkdirSync(dir, { recursive: true });
    const pid = 4242, start = 777;
    mkdirSync(path.join(proc, String(pid)));
    writeFileSync(path.join(proc, String(pid), 'stat'), `${pid} (python3) S 1 ${Array(17).fill(0).join(' ')} ${start} 0 0 0\n`);
    writeFileSync(path.join(proc, String(pid), 'status'), 'Name:\tpython3\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n');
    writeFileSync(path.join(proc, String(pid), 'cmdline'), 'python3\0-c\0x\0');
    symlinkSync('/usr/bin/python3', path.join(proc, String(pid), 'exe'));
    const procs = new ProcessReader({ proc });
    const hook = new PortHook(new PortTable(), { netns: NS, windowMs: 0, procs, cgroups: new CgroupIds({ root }) });
    const s = sighting({ pid, start, cgroup: statSync(dir).ino, comm: 'python3', t: Date.now() - 5 });
    hook.table.add(s);
    hook.sighted(PortTable.key(NS, 17, 40000), s);
    await new Promise((r) => setImmediate(r)); // the hook reads /proc on the next turn, as it does for a live sighting
    rmSync(path.join(proc, String(pid)), { recursive: true }); // then it is reaped
    const r = await hook.resolve(newEvent(), gone());
    assert.equal(r.process?.pid, pid);
    assert.equal(r.process?.exe, '/usr/bin/python3', 'what /proc gave is kept');
    assert.deepEqual(r.process?.cmdline, ['python3', '-c', 'x']);
    assert.equal(r.process?.cgroup, `/ctpbpf1.slice/system.slice/docker-${id}.scope`);
    assert.equal(r.process?.unit, `docker-${id}.scope`);
    assert.equal(r.process?.container?.id, id);
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(proc, { recursive: true, force: true });
  }
});

test('no bpftrace anywhere under src/: the bpf method is the addon\'s own programs', () => {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/bpftrace/i.test(readFileSync(p, 'utf8'))) found.push(path.relative(ROOT, p));
    }
  };
  walk(path.join(ROOT, 'src'));
  assert.deepEqual(found, []);
});
