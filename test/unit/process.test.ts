// src/proc/process.ts and src/proc/sockets.ts: process details from /proc
// (this process, a child that exits, a fake /proc tree for pid reuse and
// cache bounds) and the socket inode -> pid index.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, readFileSync, readlinkSync, realpathSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ProcessReader } from '../../src/proc/process.js';
import { SocketIndex, procStartTime } from '../../src/proc/sockets.js';
import { Users } from '../../src/proc/users.js';

/** A /proc/PID/stat line: fields after comm as the kernel writes them (proc(5)). */
function statLine(pid: number, comm: string, ppid: number, start: number, state = 'S'): string {
  const after = [state, String(ppid), String(pid), String(pid), '0', '-1', '4194560', '100', '0', '0', '0', '3', '1', '0', '0', '20', '0', '1', '0', String(start), '12345678', '500', '18446744073709551615'];
  return `${pid} (${comm}) ${after.join(' ')}\n`;
}

test('parseStat: plain comm, comm with spaces, parentheses and a trailing ")"', () => {
  assert.deepEqual(ProcessReader.parseStat(statLine(42, 'nginx', 1, 1234)), { comm: 'nginx', ppid: 1, start: 1234, state: 'S' });
  assert.deepEqual(ProcessReader.parseStat(statLine(42, 'Web Content', 7, 99)), { comm: 'Web Content', ppid: 7, start: 99, state: 'S' });
  assert.deepEqual(ProcessReader.parseStat(statLine(42, 'a) S 9 9 (b', 3, 555)), { comm: 'a) S 9 9 (b', ppid: 3, start: 555, state: 'S' });
  assert.deepEqual(ProcessReader.parseStat(statLine(42, 'x)', 3, 556)), { comm: 'x)', ppid: 3, start: 556, state: 'S' });
  assert.deepEqual(ProcessReader.parseStat(statLine(42, '((', 3, 557)), { comm: '((', ppid: 3, start: 557, state: 'S' });
  // A zombie (getStarted skips it: it has let go of its exe, cmdline and cgroup).
  assert.deepEqual(ProcessReader.parseStat(statLine(43, 'gone', 1, 600, 'Z')), { comm: 'gone', ppid: 1, start: 600, state: 'Z' });
  // The real file of this process.
  const self = ProcessReader.parseStat(readFileSync('/proc/self/stat', 'latin1'));
  assert.equal(self.ppid, process.ppid);
  assert.equal(self.comm, readFileSync('/proc/self/comm', 'utf8').trimEnd());
  assert.equal(self.start, procStartTime(process.pid));
});

test('get(process.pid): this process as /proc shows it', () => {
  const r = new ProcessReader();
  const p = r.get(process.pid);
  assert.ok(p);
  assert.equal(p.pid, process.pid);
  assert.equal(p.ppid, process.ppid);
  assert.equal(p.uid, process.getuid!());
  assert.equal(p.gid, process.getgid!());
  assert.equal(typeof p.user, 'string');
  if (process.getuid!() === 0) assert.equal(p.user, 'root');
  assert.equal(p.comm, readFileSync('/proc/self/comm', 'utf8').trimEnd());
  assert.equal(p.exe, realpathSync(process.execPath));
  assert.deepEqual(p.cmdline, readFileSync('/proc/self/cmdline', 'utf8').split('\0').slice(0, -1));
  assert.ok(p.cmdline!.some((a) => a.endsWith('process.test.js')), 'the test file is in the command line');
  assert.equal(typeof p.cgroup, 'string');
  const started = Date.parse(p.start_time!);
  assert.ok(started <= Date.now() && started > Date.now() - 24 * 3600e3 * 365, p.start_time);
  assert.ok(Date.now() - started < process.uptime() * 1000 + 5000, 'start time agrees with process.uptime()');
  // The same object from the cache the second time.
  assert.equal(r.get(process.pid), p);
  // cmdline: false leaves it out.
  assert.equal('cmdline' in new ProcessReader({ cmdline: false }).get(process.pid)!, false);
  assert.equal(r.get(2 ** 22 + 12345), null, 'a pid that does not exist');
});

test('a child that exits: its details stay available from the cache', async () => {
  const r = new ProcessReader();
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  await once(child, 'spawn');
  // exec may still be in progress right after spawn, and exec keeps the start
  // time: look with throw-away readers until the comm is sleep's, then cache it.
  for (let i = 0; i < 400 && new ProcessReader().get(child.pid!)?.comm !== 'sleep'; i++) await new Promise((res) => setTimeout(res, 5));
  const seen = r.get(child.pid!);
  assert.equal(seen?.comm, 'sleep');
  assert.deepEqual(seen.cmdline, ['sleep', '30']);
  assert.equal(seen.ppid, process.pid);
  child.kill('SIGKILL');
  await once(child, 'exit');
  // Reaped: /proc/PID is gone, the cache still answers.
  for (let i = 0; i < 100; i++) {
    try { readFileSync(`/proc/${child.pid}/stat`); } catch { break; }
    await new Promise((res) => setTimeout(res, 10));
  }
  const after = r.get(child.pid!);
  assert.ok(after);
  assert.equal(after.comm, 'sleep');
  assert.deepEqual(after.cmdline, ['sleep', '30']);
  assert.equal(after.start_time, seen.start_time);
  // A reader that never saw it knows nothing.
  assert.equal(new ProcessReader().get(child.pid!), null);
});

/** A fake /proc with one process; returns a function to (re)write it. */
function fakeProc(t: { after: (fn: () => void) => void }) {
  const root = mkdtempSync(path.join(tmpdir(), 'ct-proc-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  writeFileSync(path.join(root, 'stat'), 'cpu  1 2 3\nbtime 1700000000\nprocesses 5\n');
  const write = (pid: number, o: { comm: string; start: number; uid: number; gid?: number; cmdline: string[]; exe: string; cgroup: string }) => {
    const dir = path.join(root, String(pid));
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'stat'), statLine(pid, o.comm, 1, o.start));
    const g = o.gid ?? o.uid;
    writeFileSync(path.join(dir, 'status'), `Name:\t${o.comm}\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t${pid}\nPid:\t${pid}\nPPid:\t1\nUid:\t${o.uid}\t${o.uid}\t${o.uid}\t${o.uid}\nGid:\t${g}\t${g}\t${g}\t${g}\n`);
    writeFileSync(path.join(dir, 'cmdline'), o.cmdline.map((a) => a + '\0').join(''));
    writeFileSync(path.join(dir, 'cgroup'), o.cgroup);
    symlinkSync(o.exe, path.join(dir, 'exe'));
  };
  const etc = path.join(root, 'etc');
  mkdirSync(etc);
  writeFileSync(path.join(etc, 'passwd'), 'root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n');
  writeFileSync(path.join(etc, 'group'), 'root:x:0:\nalice:x:1000:\n');
  const users = new Users({ etc, getent: false });
  return { root, write, users };
}

test('pid reuse: a new start time is a new process, never the old details', (t) => {
  const { root, write, users } = fakeProc(t);
  const r = new ProcessReader({ proc: root, users });
  write(4242, { comm: 'curl', start: 1000, uid: 1000, cmdline: ['curl', 'https://example.org/'], exe: '/usr/bin/curl', cgroup: '0::/user.slice/user-1000.slice/session-3.scope\n' });
  const a = r.get(4242)!;
  assert.deepEqual(a, {
    pid: 4242, ppid: 1, uid: 1000, user: 'alice', gid: 1000, group: 'alice', comm: 'curl', exe: '/usr/bin/curl',
    cmdline: ['curl', 'https://example.org/'], cgroup: '/user.slice/user-1000.slice/session-3.scope',
    unit: 'session-3.scope', container: null,
    start_time: new Date(1700000000 * 1000 + 1000 * 10).toISOString(),
  });
  // The pid comes back as another process (another start time).
  write(4242, { comm: 'nginx', start: 2000, uid: 33, cmdline: ['nginx: worker process'], exe: '/usr/sbin/nginx', cgroup: '0::/system.slice/nginx.service\n' });
  const b = r.get(4242)!;
  assert.equal(b.comm, 'nginx');
  assert.equal(b.exe, '/usr/sbin/nginx');
  assert.equal(b.uid, 33);
  assert.equal(b.user, '33', 'a uid with no name keeps its number');
  assert.equal(b.group, '33');
  assert.equal(b.unit, 'nginx.service');
  assert.equal(b.start_time, new Date(1700000000 * 1000 + 2000 * 10).toISOString());
  // Same start time, other files changed: still the cached process (details are captured at first sight).
  writeFileSync(path.join(root, '4242', 'cmdline'), 'changed\0');
  assert.equal(r.get(4242), b);
  // Gone: the last process seen under that pid.
  rmSync(path.join(root, '4242'), { recursive: true });
  assert.equal(r.get(4242), b);
});

test('the process cache is bounded (least recently used goes first)', (t) => {
  const { root, write, users } = fakeProc(t);
  const r = new ProcessReader({ proc: root, users, maxEntries: 2 });
  for (const pid of [101, 102, 103]) write(pid, { comm: `p${pid}`, start: pid, uid: 0, cmdline: [`p${pid}`], exe: '/bin/true', cgroup: '0::/\n' });
  r.get(101);
  r.get(102);
  r.get(101); // 101 is now the most recent
  r.get(103); // evicts 102
  for (const pid of [101, 102, 103]) rmSync(path.join(root, String(pid)), { recursive: true });
  assert.equal(r.get(101)?.comm, 'p101');
  assert.equal(r.get(103)?.comm, 'p103');
  assert.equal(r.get(102), null);
});

test('a process whose exe cannot be read (kernel thread, exited) has exe null', (t) => {
  const { root, write, users } = fakeProc(t);
  write(7, { comm: 'kworker/0:1', start: 5, uid: 0, cmdline: [], exe: '/nonexistent', cgroup: '0::/\n' });
  rmSync(path.join(root, '7', 'exe'));
  const p = new ProcessReader({ proc: root, users }).get(7)!;
  assert.equal(p.exe, null);
  assert.deepEqual(p.cmdline, []);
  assert.equal(p.user, 'root');
  assert.equal(p.cgroup, '/');
  assert.equal(p.unit, null);
});

/** The socket inode of a Node socket handle, from /proc/self/fd. */
function inodeOf(handle: { fd: number }): { inode: number; fd: number } {
  const link = readlinkSync(`/proc/self/fd/${handle.fd}`);
  const m = /^socket:\[(\d+)\]$/.exec(link);
  assert.ok(m, link);
  return { inode: Number(m[1]), fd: handle.fd };
}

test('SocketIndex.lookup: a socket of this process', async (t) => {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const { inode, fd } = inodeOf((server as any)._handle);
  const idx = new SocketIndex();
  const r = idx.lookup(inode);
  assert.deepEqual(r.holders.find((h) => h.pid === process.pid), { pid: process.pid, fd });
  assert.ok(idx.size > 0);
  // Asked again: answered from the index (no new scan of unseen pids needed).
  const fresh = idx.scans.fresh;
  assert.deepEqual(idx.lookup(inode).holders.find((h) => h.pid === process.pid), { pid: process.pid, fd });
  assert.equal(idx.scans.fresh, fresh);
  // An inode nobody holds.
  assert.deepEqual(idx.lookup(4294967295).holders, []);
});

/** A child process listening on a TCP socket until its stdin ends: its pid, the socket's inode and fd. */
async function listeningChild() {
  const child = spawn(process.execPath, ['-e', `
    const s = require('net').createServer().listen(0, '127.0.0.1', () => {
      const l = require('fs').readlinkSync('/proc/self/fd/' + s._handle.fd);
      process.stdout.write(l.slice(8, -1) + ' ' + s._handle.fd + '\\n');
    });
    process.stdin.on('end', () => process.exit(0)).resume();
  `], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [line] = await once(child.stdout!.setEncoding('utf8'), 'data');
  const [inode, fd] = String(line).trim().split(' ').map(Number);
  return { child, inode: inode!, fd: fd! };
}

test('SocketIndex.lookup: a new process is found, and forgotten once its socket is gone', async () => {
  const idx = new SocketIndex({ fullScanInterval: 0 });
  idx.lookup(1); // warm: every current pid is known
  const { child, inode, fd } = await listeningChild();
  const r = idx.lookup(inode);
  assert.deepEqual(r.holders, [{ pid: child.pid, fd }]);
  child.stdin!.end();
  await once(child, 'exit');
  // The stale entry is re-checked with a readlink and never reported.
  assert.deepEqual(idx.lookup(inode).holders, []);
});

test('SocketIndex epochs: a holder is confirmed once per epoch, and again in the next', async () => {
  const idx = new SocketIndex({ fullScanInterval: 0 });
  const { child, inode, fd } = await listeningChild();
  idx.newEpoch();
  assert.deepEqual(idx.lookup(inode).holders, [{ pid: child.pid, fd }]);
  child.stdin!.end();
  await once(child, 'exit');
  // Same epoch: the confirmation stands (events of one batch all happened
  // before it was made).
  assert.equal(idx.holds(inode), true);
  // Next epoch: checked anew, and the closed socket is not reported.
  idx.newEpoch();
  assert.equal(idx.holds(inode), false);
  assert.deepEqual(idx.lookup(inode).holders, []);
});
