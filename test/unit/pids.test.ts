// The new-pid path of the fd index: a fake /proc (pid directories with a
// stat file and fd symlinks) and a clock of our own, so that what is
// scanned when is certain; the process connector's decoder against real
// datagrams (test/fixtures/cnproc).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SocketIndex } from '../../src/proc/sockets.js';
import { ListingWatch, EventWatch, PreferredWatch } from '../../src/proc/pids.js';
import { decodeProcEvents, buildMcastOp, PROC_CN_MCAST_LISTEN } from '../../src/netlink/cnproc.js';
import { FIXTURES } from '../helpers.js';

/** A /proc of our own: processes with a start time and socket fds. */
function fakeProc() {
  const root = mkdtempSync(path.join(tmpdir(), 'ct-pids-'));
  return {
    root,
    spawn(pid: number, start: number, sockets: number[] = []) {
      rmSync(path.join(root, String(pid)), { recursive: true, force: true });
      mkdirSync(path.join(root, String(pid), 'fd'), { recursive: true });
      writeFileSync(path.join(root, String(pid), 'stat'), `${pid} (client) S 1 ${pid} ${pid} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 ${start} 0 0\n`);
      sockets.forEach((inode, i) => this.open(pid, 3 + i, inode));
    },
    open(pid: number, fd: number, inode: number) {
      symlinkSync(`socket:[${inode}]`, path.join(root, String(pid), 'fd', String(fd)));
    },
    exit(pid: number) {
      rmSync(path.join(root, String(pid)), { recursive: true, force: true });
    },
    done() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

test('fd index: a pid that appears between two rescans, scanned before it opened its socket, is found without a full rescan', (t) => {
  const p = fakeProc();
  t.after(() => p.done());
  let now = 1_000_000;
  const clock = () => now;
  p.spawn(10, 100, [1000]);
  p.spawn(60, 50);
  const idx = new SocketIndex({ proc: p.root, fullScanInterval: 60_000, youngMs: 2000, now: clock });
  assert.deepEqual(idx.lookup(1000).holders, [{ pid: 10, fd: 3 }], 'the first lookup rescans everything');
  assert.equal(idx.scans.full, 1);
  // A client forks: seen (and scanned, holding nothing yet) by the next miss.
  now += 50;
  p.spawn(20, 200);
  assert.deepEqual(idx.lookup(4242).holders, []);
  assert.equal(idx.scans.full, 1, 'no full rescan within the interval');
  // It connects: its socket is found among the young pids, still without a full rescan.
  now += 30;
  p.open(20, 3, 2000);
  assert.deepEqual(idx.lookup(2000).holders, [{ pid: 20, fd: 3 }]);
  assert.equal(idx.scans.full, 1);
  assert.equal(idx.scans.foundYoung, 1);
  // Past youngMs it is still looked at as a recent socket owner.
  now += 3000;
  p.open(20, 4, 2001);
  assert.deepEqual(idx.lookup(2001).holders, [{ pid: 20, fd: 4 }]);
  assert.equal(idx.scans.foundRecent, 1);
  // An old process that held no socket opens one: a flow that began after the last full rescan gets one.
  p.open(60, 3, 6000);
  assert.deepEqual(idx.lookup(6000).holders, [], 'neither young nor recent, and no full rescan due');
  assert.deepEqual(idx.lookup(6000, now - 5).holders, [{ pid: 60, fd: 3 }]);
  assert.equal(idx.scans.full, 2);
});

test('fd index: a pid reused by another process (another start time) is a new process', (t) => {
  const p = fakeProc();
  t.after(() => p.done());
  let now = 5_000_000;
  p.spawn(10, 100, [1000]);
  p.spawn(30, 300);
  const idx = new SocketIndex({ proc: p.root, fullScanInterval: 60_000, youngMs: 2000, now: () => now, pids: new ListingWatch({ proc: p.root, verifyMs: 1000, now: () => now }) });
  assert.equal(idx.lookup(1000).holders.length, 1);
  // Pid 30 ends and a new process gets the same pid between two listings; it holds a socket.
  now += 5000;
  p.spawn(30, 900, [3000]);
  assert.deepEqual(idx.lookup(3000).holders, [{ pid: 30, fd: 3 }]);
  assert.equal(idx.scans.full, 1, 'found as a new process, not by a full rescan');
  assert.equal(idx.scans.foundYoung, 1);
});

test('ListingWatch: the first listing is what runs already; then appeared, reused (checked every verifyMs) and gone pids', (t) => {
  const p = fakeProc();
  t.after(() => p.done());
  let now = 0;
  p.spawn(1, 10);
  p.spawn(2, 20);
  const w = new ListingWatch({ proc: p.root, verifyMs: 1000, now: () => now });
  assert.deepEqual(w.take(), []);
  p.spawn(3, 30);
  assert.deepEqual(w.take(), [3]);
  p.spawn(2, 25);
  now += 500;
  assert.deepEqual(w.take(), [], 'start times are not checked again before verifyMs');
  now += 600;
  assert.deepEqual(w.take(), [2]);
  p.exit(1);
  w.take();
  assert.equal(w.alive(1), false);
  p.spawn(1, 40);
  assert.deepEqual(w.take(), [1], 'a pid back after it was seen gone is new');
});

test('EventWatch and PreferredWatch: connector births in order, a reused pid once, the listing diff after a loss', (t) => {
  const p = fakeProc();
  t.after(() => p.done());
  const e = new EventWatch({ max: 3 });
  e.born(5); e.born(6); e.born(5);
  assert.deepEqual(e.take(), [6, 5]);
  e.born(7); e.ended(7);
  assert.deepEqual(e.take(), []);
  e.born(1); e.born(2); e.born(3); e.born(4);
  assert.deepEqual(e.take(), [2, 3, 4], 'bounded: the oldest birth is dropped');
  p.spawn(50, 1);
  const w = new PreferredWatch(new ListingWatch({ proc: p.root }));
  assert.equal(w.mode, 'listing');
  w.take();
  w.prefer(e);
  assert.equal(w.mode, 'connector');
  p.spawn(51, 2);
  e.born(52);
  assert.deepEqual(w.take(), [52], 'the connector, not the listing');
  w.lost();
  assert.deepEqual(w.take(), [51], 'after a loss, the listing diff catches up once');
});

test('process connector: real datagrams decode to the ack and the fork, exec and exit of one sh', () => {
  const f = JSON.parse(readFileSync(path.join(FIXTURES, 'cnproc', 'events.json'), 'utf8'));
  const one = (hex: string) => decodeProcEvents(Buffer.from(hex, 'hex'));
  assert.deepEqual(one(f.ack), [{ what: 'ack', err: 0 }]);
  const fork = one(f.fork);
  assert.equal(fork.length, 1);
  assert.equal(fork[0].what, 'fork');
  assert.equal((fork[0] as any).tgid, f.sh_pid);
  assert.equal((fork[0] as any).pid, f.sh_pid);
  assert.ok((fork[0] as any).parentTgid > 0);
  assert.deepEqual(one(f.exec), [{ what: 'exec', pid: f.sh_pid, tgid: f.sh_pid }]);
  assert.deepEqual(one(f.exit), [{ what: 'exit', pid: f.sh_pid, tgid: f.sh_pid }]);
  // Two in one datagram; a truncated one is refused.
  assert.equal(decodeProcEvents(Buffer.concat([Buffer.from(f.exec, 'hex'), Buffer.from(f.exit, 'hex')])).length, 2);
  assert.throws(() => decodeProcEvents(Buffer.from(f.fork, 'hex').subarray(0, 40)), /netlink message of 76 bytes/);
  // The request: 40 bytes, NLMSG_DONE, the proc connector's id, the op.
  const r = buildMcastOp(PROC_CN_MCAST_LISTEN, 1234);
  assert.equal(r.length, 40);
  assert.equal(r.readUInt32LE(36), PROC_CN_MCAST_LISTEN);
  assert.equal(r.readUInt32LE(12), 1234);
});

test('fd index: within one batch (epoch) a young process is read once however many misses; the next batch reads it again', (t) => {
  const p = fakeProc();
  t.after(() => p.done());
  let now = 9_000_000;
  p.spawn(10, 100, [1000]);
  const idx = new SocketIndex({ proc: p.root, fullScanInterval: 60_000, youngMs: 2000, now: () => now });
  idx.newEpoch();
  idx.lookup(1000);
  now += 10;
  for (let pid = 20; pid < 40; pid++) p.spawn(pid, pid * 10);
  idx.newEpoch();
  for (let i = 0; i < 5; i++) assert.deepEqual(idx.lookup(5000 + i).holders, []);
  const read = idx.scans.pidsRead;
  for (let i = 0; i < 5; i++) idx.lookup(6000 + i);
  assert.equal(idx.scans.pidsRead, read, 'no fd table read again in the same batch');
  // Next batch: one of them has opened the socket since.
  p.open(33, 3, 7000);
  idx.newEpoch();
  assert.deepEqual(idx.lookup(7000).holders, [{ pid: 33, fd: 3 }]);
});

test('fd index find(): a miss waits for one shared rescan done in slices, newest pids first; the event loop runs between slices', async (t) => {
  const p = fakeProc();
  t.after(() => p.done());
  let now = 12_000_000;
  // Many old processes; the holders are an old one (low pid) and a new one (high pid).
  for (let pid = 100; pid < 400; pid++) p.spawn(pid, pid);
  // New pids not learnt (as when the connector lost them): only a rescan finds the holders.
  const idx = new SocketIndex({ proc: p.root, fullScanInterval: 60_000, youngMs: 2000, sliceMs: 0, now: () => now, pids: { mode: 'test', take: () => [] } });
  idx.newEpoch();
  assert.deepEqual(idx.lookup(1).holders, [], 'the first lookup rescans everything');
  now += 100;
  p.spawn(900, 900, [9900]);
  p.open(101, 4, 9102);
  idx.newEpoch();
  const since = now - 10;
  const a = idx.find(9102, since);
  const b = idx.find(9900, since);
  assert.ok(a instanceof Promise && b instanceof Promise, 'both wait for the rescan');
  assert.equal(idx.scans.full, 2, 'one rescan for both misses');
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 0);
  const order: number[] = [];
  const [ra, rb] = await Promise.all([a.then((r) => { order.push(9102); return r; }), b.then((r) => { order.push(9900); return r; })]);
  clearInterval(ticker);
  assert.deepEqual(ra.holders, [{ pid: 101, fd: 4 }]);
  assert.deepEqual(rb.holders, [{ pid: 900, fd: 3 }]);
  assert.deepEqual(order, [9900, 9102], 'the newest pid is read first, and its waiter answered before the rescan ends');
  assert.ok(ticks > 0, 'timers ran between slices');
  // A socket nobody holds: the rescan that began after its flow did says so; none is started again within the interval.
  const c = await idx.find(4444, since);
  assert.deepEqual(c.holders, []);
  assert.equal(idx.scans.full, 2);
  // A flow that began after that rescan started gets one of its own.
  now += 5;
  p.open(102, 3, 9103);
  assert.deepEqual((await idx.find(9103, now - 1)).holders, [{ pid: 102, fd: 3 }]);
  assert.equal(idx.scans.full, 3);
});
