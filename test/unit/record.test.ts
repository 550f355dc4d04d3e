// src/record: file name patterns and suffixes, clock-aligned periods (UTC,
// local time across daylight-saving changes), cutting input into whole
// lines, and the Recorder on a real directory: rotation across boundaries
// with an injected clock, --max-bytes, never overwriting, the empty file
// logrotate's `create` leaves, and write errors injected between the
// Recorder and the real file system (ENOSPC with a short write, EIO, a
// failing ftruncate, EFBIG, a failing fsync): no partial line left, no line
// lost, back-pressure while the bound is reached.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { compileNamePattern, withSuffix, Periods, PatternError } from '../../src/record/pattern.js';
import { LineCutter } from '../../src/record/lines.js';
import { Recorder, systemClock, type Clock, type RecorderOptions } from '../../src/record/recorder.js';
import { nodeFs, checkPrivate, NotPrivate, type RecordFs } from '../../src/record/fs.js';
import { waitFor } from '../helpers.js';

const UID = typeof process.geteuid === 'function' ? process.geteuid() : 0;
let root = '';
let n = 0;
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ctrec-unit-'));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** A fresh private directory. */
function dir(): string {
  const d = path.join(root, `d${++n}`);
  fs.mkdirSync(d, { mode: 0o700 });
  fs.chmodSync(d, 0o700);
  return d;
}

/** Run `fn` with TZ set (Node applies a changed TZ at once). */
function withTZ<T>(tz: string, fn: () => T): T {
  const old = process.env.TZ;
  process.env.TZ = tz;
  try {
    return fn();
  } finally {
    if (old === undefined) delete process.env.TZ;
    else process.env.TZ = old;
  }
}

const T = (iso: string) => Date.parse(iso);

// ---- names

test('pattern: the usual conversions, in UTC', () => {
  const name = compileNamePattern('/var/log/ct/tcp-%Y%m%d-%H%M%S.ndjson', 'utc');
  assert.equal(name(T('2026-11-23T07:41:33.965Z')), '/var/log/ct/tcp-20261123-074133.ndjson');
  const all = compileNamePattern('%Y-%m-%d %H:%M:%S %j %s %% %y %e %a %b %F %T', 'utc');
  assert.equal(all(T('2026-02-03T04:05:06Z')), '2026-02-03 04:05:06 034 1770091506 % 26  3 Tue Feb 2026-02-03 04:05:06');
});

test('pattern: local time follows TZ, including its offset and zone', () => {
  const ms = T('2026-07-01T12:00:00Z');
  withTZ('Europe/Berlin', () => {
    assert.equal(compileNamePattern('%Y%m%d-%H%M%S%z', 'local')(ms), '20260701-140000+0200');
    assert.equal(compileNamePattern('%H', 'utc')(ms), '12');
  });
  withTZ('America/New_York', () => assert.equal(compileNamePattern('%H %Z', 'local')(ms), '08 EDT'));
});

test('pattern: unknown conversions, a lone % and names that are directories are refused', () => {
  assert.throws(() => compileNamePattern('x-%Q.ndjson', 'utc'), (e: Error) => e instanceof PatternError && /unknown conversion %Q/.test(e.message));
  assert.throws(() => compileNamePattern('x-%', 'utc'), /lone %/);
  assert.throws(() => compileNamePattern('x-%n', 'utc'), /unknown conversion %n/);
  assert.throws(() => compileNamePattern('', 'utc'), PatternError);
  assert.throws(() => compileNamePattern('logs/%Y/', 'utc')(0), /not a file name/);
});

test('withSuffix: the number goes before a letters-only extension, else at the end; ls -v order', () => {
  assert.equal(withSuffix('/var/log/ct/tcp-080000.ndjson', 1), '/var/log/ct/tcp-080000.1.ndjson');
  assert.equal(withSuffix('tcp-080000.ndjson', 12), 'tcp-080000.12.ndjson');
  assert.equal(withSuffix('./a.b.log', 2), './a.b.2.log');
  assert.equal(withSuffix('/x/tcp-2026.11.23', 1), '/x/tcp-2026.11.23.1');
  assert.equal(withSuffix('/x/ct', 3), '/x/ct.3');
  assert.equal(withSuffix('/x.d/.hidden', 1), '/x.d/.hidden.1');
});

// ---- periods

test('periods: aligned to the clock in UTC, next and start', () => {
  const p = new Periods(15, 'utc');
  assert.equal(p.next(T('2026-11-23T07:41:33Z')), T('2026-11-23T07:45:00Z'));
  assert.equal(p.start(T('2026-11-23T07:41:33Z')), T('2026-11-23T07:30:00Z'));
  assert.equal(p.next(T('2026-11-23T07:45:00Z')), T('2026-11-23T08:00:00Z'), 'a boundary itself: the next one');
  assert.equal(p.start(T('2026-11-23T07:45:00Z')), T('2026-11-23T07:45:00Z'));
  assert.equal(p.next(T('2026-11-23T23:59:59.999Z')), T('2026-11-24T00:00:00Z'));
  const day = new Periods(1440, 'utc');
  assert.equal(day.next(T('2026-12-31T13:00:00Z')), T('2027-01-01T00:00:00Z'));
});

test('periods: minutes that do not divide a day restart at midnight (the last period is shorter)', () => {
  const p = new Periods(7 * 60, 'utc'); // 00:00, 07:00, 14:00, 21:00, then midnight
  assert.equal(p.next(T('2026-11-23T21:30:00Z')), T('2026-11-24T00:00:00Z'));
  assert.equal(p.start(T('2026-11-23T21:30:00Z')), T('2026-11-23T21:00:00Z'));
  assert.equal(p.next(T('2026-11-24T00:00:00Z')), T('2026-11-24T07:00:00Z'));
});

test('periods: local midnight and hours across daylight-saving changes (Europe/Berlin)', () => {
  withTZ('Europe/Berlin', () => {
    const day = new Periods(1440, 'local');
    // Local midnight is 23:00 UTC in winter.
    assert.equal(day.next(T('2026-11-23T12:00:00Z')), T('2026-11-23T23:00:00Z'));
    const hour = new Periods(60, 'local');
    // 2026-03-29: 02:00 local does not exist (01:00 UTC is 03:00 CEST).
    assert.equal(hour.next(T('2026-03-29T00:30:00Z')), T('2026-03-29T01:00:00Z'));
    assert.equal(hour.next(T('2026-03-29T01:00:00Z')), T('2026-03-29T02:00:00Z'));
    // 2026-10-25: a 25-hour day; the next day's period starts at local midnight (23:00 UTC).
    assert.equal(day.next(T('2026-10-25T12:00:00Z')), T('2026-10-25T23:00:00Z'));
    assert.equal(day.start(T('2026-10-25T12:00:00Z')), T('2026-10-24T22:00:00Z'));
    const q = new Periods(30, 'local');
    for (let t = T('2026-10-24T20:00:00Z'); t < T('2026-10-26T02:00:00Z'); t += 7 * 60_000) {
      const nx = q.next(t);
      assert.ok(nx > t && nx - t <= 90 * 60_000, `next after ${new Date(t).toISOString()}`);
      assert.ok(q.start(t) <= t);
    }
  });
});

test('periods: minutes outside 1..1440 are refused', () => {
  for (const m of [0, -5, 1441, 1.5, NaN]) assert.throws(() => new Periods(m, 'utc'), RangeError);
});

// ---- whole lines

function cutAll(chunks: string[], max = 1 << 20) {
  const long: Array<[number, number]> = [];
  const c = new LineCutter(max, (no, len) => long.push([no, len]));
  let out = '';
  for (const ch of chunks) out += Buffer.concat(c.cut(Buffer.from(ch))).toString();
  const beforeEnd = out;
  out += Buffer.concat(c.finish()).toString();
  return { out, beforeEnd, long, lines: c.lines, skipped: c.skipped };
}

test('lines: only whole lines are handed on, whatever the chunking; blank lines and CRLF pass as they are', () => {
  const text = '{"a":1}\n\n{"b":2}\r\n   \n{"c":3}\n';
  for (let i = 0; i <= text.length; i++) {
    for (let j = i; j <= text.length; j++) {
      const r = cutAll([text.slice(0, i), text.slice(i, j), text.slice(j)]);
      assert.equal(r.beforeEnd, text);
      assert.equal(r.lines, 5);
    }
  }
  const r = cutAll(['{"a":', '1}\n{"b"', ':2}']);
  assert.equal(r.beforeEnd, '{"a":1}\n', 'the unfinished line is held');
  assert.equal(r.out, '{"a":1}\n{"b":2}\n', 'and at the end it gets its newline');
  assert.equal(r.lines, 2);
});

test('lines: the bytes as they came, a byte order mark at the start too (cut by src/lines/cut.ts, which drops it for the readers that parse)', () => {
  for (const chunks of [['\ufeff{"a":1}\n'], ['\ufeff', '{"a":1}\nb'], ['\ufeffx']]) {
    const r = cutAll(chunks);
    const all = chunks.join('');
    assert.equal(r.out, all.endsWith('\n') ? all : all + '\n');
  }
});

test('lines: an over-long line is reported with its number and skipped, the others kept', () => {
  const long = 'x'.repeat(40);
  let r = cutAll([`a\n${long}\nb\n`], 16);
  assert.equal(r.out, 'a\nb\n');
  assert.deepEqual(r.long, [[2, 40]]);
  r = cutAll(['a\n', long.slice(0, 20), long.slice(20), '\nb\n', 'c'], 16);
  assert.equal(r.out, 'a\nb\nc\n');
  assert.equal(r.long.length, 1);
  assert.equal(r.long[0][0], 2);
  assert.equal(r.skipped, 1);
  r = cutAll(['a\n', long], 16);
  assert.equal(r.out, 'a\n', 'an over-long last line is not written at the end either');
  r = cutAll([`${long}\nb\n${long}\n${long}\nc\n`], 16);
  assert.equal(r.out, 'b\nc\n');
  assert.deepEqual(r.long.map((x) => x[0]), [1, 3, 4]);
});

// ---- the Recorder

/** A clock whose time moves only when told; its timers fire as it passes them. */
class ManualClock implements Clock {
  private timers: { at: number; fn: () => void }[] = [];
  constructor(public t: number) {}
  now() {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number) {
    const h = { at: this.t + ms, fn };
    this.timers.push(h);
    return h;
  }
  clearTimeout(h: unknown) {
    this.timers = this.timers.filter((x) => x !== h);
  }
  /** Move to `to`, firing due timers in order at their own times; `jump`: all at `to` (a suspend). */
  advanceTo(to: number, jump = false) {
    if (jump) this.t = to;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const h = this.timers[0];
      if (!h || h.at > to) break;
      this.timers.shift();
      if (!jump) this.t = h.at;
      h.fn();
    }
    this.t = to;
  }
}

function recorder(o: Partial<RecorderOptions> & { pattern: string }) {
  const logs: string[] = [];
  const rec = new Recorder({ tz: 'utc', buffer: 1 << 20, uid: UID, log: (m) => logs.push(m), retryMin: 1, retryMax: 4, ...o });
  return { rec, logs };
}
const B = (s: string) => Buffer.from(s);
const read = (f: string) => fs.readFileSync(f, 'utf8');

test('recorder: rotation across clock boundaries; lines read before a boundary stay in the earlier file', async () => {
  const d = dir();
  const clock = new ManualClock(T('2026-11-23T07:58:58.500Z'));
  const { rec, logs } = recorder({ pattern: `${d}/tcp-%Y%m%d-%H%M%S.ndjson`, minutes: 1, clock });
  assert.equal(await rec.start(), `${d}/tcp-20261123-075858.ndjson`);
  rec.write([B('a\n'), B('b\n')]);
  clock.advanceTo(T('2026-11-23T07:59:30Z'));
  rec.write([B('c\n')]);
  clock.advanceTo(T('2026-11-23T08:00:10Z')); // passes 07:59 and 08:00
  rec.write([B('d\n')]);
  // A suspend: the clock jumps over several boundaries; the new file is named by the period now running.
  clock.advanceTo(T('2026-11-23T08:03:30Z'), true);
  rec.write([B('e\n')]);
  const r = await rec.end();
  assert.deepEqual(r.files.map((f) => path.basename(f)), [
    'tcp-20261123-075858.ndjson', 'tcp-20261123-075900.ndjson', 'tcp-20261123-080000.ndjson', 'tcp-20261123-080300.ndjson',
  ]);
  assert.deepEqual(r.files.map(read), ['a\nb\n', 'c\n', 'd\n', 'e\n']);
  for (const f of r.files) assert.equal(fs.statSync(f).mode & 0o777, 0o600);
  assert.deepEqual(logs, []);
});

test('recorder: a boundary with nothing written still closes the file (an empty file says nothing came)', async () => {
  const d = dir();
  const clock = new ManualClock(T('2026-11-23T07:59:59Z'));
  const { rec } = recorder({ pattern: `${d}/%H%M.ndjson`, minutes: 1, clock });
  await rec.start();
  clock.advanceTo(T('2026-11-23T08:01:00Z'));
  rec.write([B('x\n')]);
  const r = await rec.end();
  assert.deepEqual(r.files.map((f) => [path.basename(f), read(f)]), [['0759.ndjson', ''], ['0800.ndjson', ''], ['0801.ndjson', 'x\n']]);
});

test('recorder: --max-bytes starts a new file before a line would not fit; a longer line gets a file of its own', async () => {
  const d = dir();
  const { rec, logs } = recorder({ pattern: `${d}/s.ndjson`, maxBytes: 10 });
  await rec.start();
  rec.write([B('1234\n'), B('5678\n'), B('9\n'), B('a-line-longer-than-ten\n'), B('bb\n'), B('c')]);
  rec.write([B('c\n')]);
  const r = await rec.end();
  assert.deepEqual(r.files.map(read), ['1234\n5678\n', '9\n', 'a-line-longer-than-ten\n', 'bb\ncc\n']);
  assert.deepEqual(r.files.map((f) => path.basename(f)), ['s.ndjson', 's.1.ndjson', 's.2.ndjson', 's.3.ndjson']);
  assert.equal(logs.length, 3);
  assert.match(logs[0], /s\.ndjson exists; writing to .*s\.1\.ndjson$/);
});

test('recorder: never overwrites; an existing empty file (logrotate create) is appended to; SIGHUP-style reopen', async () => {
  const d = dir();
  fs.writeFileSync(`${d}/ct.ndjson`, 'old\n', { mode: 0o600 });
  fs.writeFileSync(`${d}/ct.1.ndjson`, 'older\n', { mode: 0o600 });
  const { rec, logs } = recorder({ pattern: `${d}/ct.ndjson` });
  assert.equal(await rec.start(), `${d}/ct.2.ndjson`);
  assert.deepEqual(logs, [`${d}/ct.ndjson exists; writing to ${d}/ct.2.ndjson`]);
  rec.write([B('one\n')]);
  // logrotate: rename, create an empty file (mode 0640), then HUP.
  await waitFor(() => rec.held === 0);
  fs.renameSync(`${d}/ct.2.ndjson`, `${d}/rotated`);
  fs.unlinkSync(`${d}/ct.ndjson`);
  fs.writeFileSync(`${d}/ct.ndjson`, '', { mode: 0o640 });
  rec.reopen();
  rec.write([B('two\n')]);
  const r = await rec.end();
  assert.deepEqual(r.files, [`${d}/ct.2.ndjson`, `${d}/ct.ndjson`]);
  assert.equal(read(`${d}/rotated`), 'one\n');
  assert.equal(read(`${d}/ct.ndjson`), 'two\n');
  assert.equal(fs.statSync(`${d}/ct.ndjson`).mode & 0o777, 0o640, 'the mode logrotate gave is kept');
  assert.equal(read(`${d}/ct.1.ndjson`), 'older\n');
  assert.equal(logs.length, 1);
});

test('recorder: files are 0600 whatever the umask; a directory that is missing is made 0700', async () => {
  const d = dir();
  const old = process.umask(0o000);
  try {
    const { rec } = recorder({ pattern: `${d}/a/b/x.ndjson` });
    await rec.start();
    rec.write([B('x\n')]);
    await rec.end();
  } finally {
    process.umask(old);
  }
  assert.equal(fs.statSync(`${d}/a/b/x.ndjson`).mode & 0o7777, 0o600);
  assert.equal(fs.statSync(`${d}/a/b`).mode & 0o7777, 0o700);
  assert.equal(fs.statSync(`${d}/a`).mode & 0o7777, 0o700);
});

test('private directories: what is refused and why', async () => {
  const d = dir();
  await checkPrivate(nodeFs, d, UID);
  fs.chmodSync(d, 0o711);
  await checkPrivate(nodeFs, d, UID); // search only: allowed
  for (const [mode, why] of [[0o750, /its group may read it/], [0o720, /its group may write it/], [0o705, /others may read it/], [0o1777, /its group may read and write it; others may read and write it/]] as const) {
    fs.chmodSync(d, mode);
    await assert.rejects(checkPrivate(nodeFs, d, UID), (e: Error) => e instanceof NotPrivate && why.test(e.message) && e.message.includes(`(mode ${mode.toString(8).padStart(4, '0')})`));
  }
  fs.chmodSync(d, 0o700);
  if (UID === 0) {
    fs.chownSync(d, 4242, 4242);
    await assert.rejects(checkPrivate(nodeFs, d, 0), /owned by uid 4242, not by uid 0 or root/);
    fs.chownSync(d, 0, 0);
  }
  // Root-owned is trusted for any user.
  if (UID === 0) await checkPrivate(nodeFs, d, 1000);
  const { rec } = recorder({ pattern: `${d}/x.ndjson` });
  fs.chmodSync(d, 0o755);
  await assert.rejects(rec.start(), /directory is not private \(mode 0755\)/);
  assert.deepEqual(fs.readdirSync(d), [], 'nothing created');
});

/** The real file system, with faults injected on demand. */
function faulty() {
  const f = {
    fs: { ...nodeFs } as RecordFs,
    /** Each writev takes the next plan: a number = write that many bytes at most (a short write), a code = fail. */
    writes: [] as (number | string)[],
    truncates: [] as string[],
    fsyncs: [] as string[],
    calls: [] as string[],
  };
  const err = (code: string) => Object.assign(new Error(`${code}: injected`), { code });
  f.fs.writev = async (fd, bufs) => {
    const plan = f.writes.shift();
    if (typeof plan === 'string') {
      f.calls.push(`writev:${plan}`);
      throw err(plan);
    }
    if (typeof plan === 'number') {
      const all = Buffer.concat(bufs).subarray(0, plan);
      f.calls.push(`writev:${all.length}`);
      return nodeFs.writev(fd, [all]);
    }
    return nodeFs.writev(fd, bufs);
  };
  f.fs.ftruncate = async (fd, len) => {
    const plan = f.truncates.shift();
    f.calls.push(`ftruncate:${plan ?? len}`);
    if (plan) throw err(plan);
    return nodeFs.ftruncate(fd, len);
  };
  f.fs.fsync = async (fd) => {
    const plan = f.fsyncs.shift();
    if (plan) throw err(plan);
    return nodeFs.fsync(fd);
  };
  // No statfs: retries just try to write (as on a file system whose free space statfs does not tell, or a quota).
  delete f.fs.statfs;
  return f;
}

test('recorder: a short write then ENOSPC: the partial line is cut off, retried, nothing lost; reported once, and the recovery', async () => {
  const d = dir();
  const f = faulty();
  f.writes.push(10, 'ENOSPC', 'ENOSPC', 'EDQUOT');
  const logs: string[] = [];
  let atReport = '';
  const { rec } = recorder({
    pattern: `${d}/x.ndjson`, fs: f.fs,
    log: (m) => {
      // When the failure is reported, the file holds whole lines only.
      if (!logs.length) atReport = read(`${d}/x.ndjson`);
      logs.push(m);
    },
  });
  await rec.start();
  rec.write([B('line-1\nline-2\n'), B('line-3\n')]);
  await waitFor(() => logs.length > 0);
  assert.equal(atReport, 'line-1\n');
  const r = await rec.end();
  assert.equal(read(r.files[0]), 'line-1\nline-2\nline-3\n');
  assert.deepEqual(f.calls.slice(0, 3), ['writev:10', 'writev:ENOSPC', 'ftruncate:7']);
  assert.equal(logs.length, 3, logs.join('\n'));
  assert.match(logs[0], /x\.ndjson: ENOSPC: injected; holding lines in memory \(up to 1048576 bytes, then reading stops\) and retrying/);
  assert.match(logs[1], /now EDQUOT: injected; still retrying/);
  assert.match(logs[2], /writing again after [\d.]+ s; nothing was lost/);
});

test('recorder: EIO with a failing ftruncate: no partial line survives, the write is retried', async () => {
  const d = dir();
  const f = faulty();
  f.writes.push(10, 'EIO', 'EIO');
  f.truncates.push('EIO');
  const { rec, logs } = recorder({ pattern: `${d}/x.ndjson`, fs: f.fs });
  await rec.start();
  rec.write([B('aaaa\nbbbbbbbb\ncc\n')]);
  const r = await rec.end();
  assert.equal(read(r.files[0]), 'aaaa\nbbbbbbbb\ncc\n');
  assert.ok(f.calls.includes('ftruncate:EIO'));
  assert.equal(f.calls.filter((c) => c === 'ftruncate:5').length, 1, f.calls.join(' '));
  assert.equal(logs.length, 2, logs.join('\n'));
});

test('recorder: EFBIG goes on in a new file', async () => {
  const d = dir();
  const f = faulty();
  f.writes.push(3, 'EFBIG');
  const { rec } = recorder({ pattern: `${d}/x.ndjson`, fs: f.fs });
  await rec.start();
  rec.write([B('ab\ncd\n')]);
  const r = await rec.end();
  assert.deepEqual(r.files.map(read), ['ab\n', 'cd\n']);
});

test('recorder: back-pressure: write() says stop at the bound and drain comes once the lines are written', async () => {
  const d = dir();
  const f = faulty();
  f.writes.push('ENOSPC', 'ENOSPC', 'ENOSPC');
  const { rec } = recorder({ pattern: `${d}/x.ndjson`, fs: f.fs, buffer: 20 });
  await rec.start();
  assert.equal(rec.write([B('0123456789\n')]), true);
  assert.equal(rec.write([B('0123456789\n')]), false, 'the bound is reached');
  assert.equal(rec.held, 22);
  await once(rec, 'drain');
  assert.equal(rec.held, 0);
  assert.equal(rec.write([B('z\n')]), true);
  const r = await rec.end();
  assert.equal(read(r.files[0]), '0123456789\n0123456789\nz\n');
});

test('recorder: a failed fsync is reported and counted', async () => {
  const d = dir();
  const f = faulty();
  f.fsyncs.push('EIO');
  const { rec, logs } = recorder({ pattern: `${d}/x.ndjson`, fs: f.fs });
  await rec.start();
  rec.write([B('a\n')]);
  const r = await rec.end();
  assert.equal(r.fsyncFailed, true);
  assert.match(logs.join('\n'), /x\.ndjson: fsync failed: EIO: injected; lines written to it may not be on disk/);
});

test('recorder: a file that cannot be opened after a rotation: lines wait in memory until it can', async () => {
  const d = dir();
  const clock = new ManualClock(T('2026-11-23T07:59:30Z'));
  const f = faulty();
  let fail = 2;
  f.fs.open = async (p, flags, mode) => {
    if (p.endsWith('0800.ndjson') && fail > 0) {
      fail--;
      throw Object.assign(new Error('ENOSPC: injected'), { code: 'ENOSPC' });
    }
    return nodeFs.open(p, flags, mode);
  };
  // The rotation timer on the manual clock, the (millisecond) retry delays on real timers.
  const both: Clock = { now: () => clock.now(), setTimeout: (fn, ms) => (ms > 1000 ? clock.setTimeout(fn, ms) : systemClock.setTimeout(fn, ms)), clearTimeout: (h) => clock.clearTimeout(h) };
  const { rec, logs } = recorder({ pattern: `${d}/%H%M.ndjson`, minutes: 1, fs: f.fs, clock: both });
  await rec.start();
  rec.write([B('a\n')]);
  clock.advanceTo(T('2026-11-23T08:00:00Z'));
  rec.write([B('b\n')]);
  const r = await rec.end();
  assert.deepEqual(r.files.map((x) => [path.basename(x), read(x)]), [['0759.ndjson', 'a\n'], ['0800.ndjson', 'b\n']]);
  assert.match(logs[0], /opening a file: ENOSPC: injected/);
  assert.match(logs[1], /0800\.ndjson: writing again/);
});

test('recorder: --gzip compresses closed files; zcat gives the input back; the name stays taken', async () => {
  const d = dir();
  const clock = new ManualClock(T('2026-11-23T07:59:59Z'));
  const { rec } = recorder({ pattern: `${d}/g-%H.ndjson`, minutes: 60, gzip: true, clock });
  await rec.start();
  const first = Array.from({ length: 500 }, (_, i) => `{"n":${i}}\n`).join('');
  rec.write([B(first)]);
  clock.advanceTo(T('2026-11-23T08:00:00Z'));
  rec.write([B('second\n')]);
  rec.reopen(); // the same hour: g-08.ndjson is being compressed, or exists as .gz: the next name
  rec.write([B('third\n')]);
  const r = await rec.end();
  assert.equal(r.gzipped, 3);
  const zlib = await import('node:zlib');
  assert.deepEqual(fs.readdirSync(d).sort(), ['g-07.ndjson.gz', 'g-08.1.ndjson.gz', 'g-08.ndjson.gz']);
  assert.equal(zlib.gunzipSync(fs.readFileSync(`${d}/g-07.ndjson.gz`)).toString(), first);
  assert.equal(zlib.gunzipSync(fs.readFileSync(`${d}/g-08.ndjson.gz`)).toString(), 'second\n');
  assert.equal(zlib.gunzipSync(fs.readFileSync(`${d}/g-08.1.ndjson.gz`)).toString(), 'third\n');
  for (const x of fs.readdirSync(d)) assert.equal(fs.statSync(path.join(d, x)).mode & 0o777, 0o600);
});

test('recorder: --gzip that fails (disk full) keeps the uncompressed file and says so; no partial .gz is left', async () => {
  const d = dir();
  const f = faulty();
  f.fs.fsync = async (fd) => {
    // The .gz is the file being fsynced while a compression runs: fail it.
    const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
    if (target.endsWith('.gz')) throw Object.assign(new Error('ENOSPC: injected'), { code: 'ENOSPC' });
    return nodeFs.fsync(fd);
  };
  const { rec, logs } = recorder({ pattern: `${d}/x.ndjson`, gzip: true, fs: f.fs });
  await rec.start();
  rec.write([B('kept\n')]);
  const r = await rec.end();
  assert.equal(r.gzipped, 0);
  assert.deepEqual(fs.readdirSync(d), ['x.ndjson']);
  assert.equal(read(`${d}/x.ndjson`), 'kept\n');
  assert.deepEqual(logs, [`${d}/x.ndjson: not compressed (ENOSPC: injected); the uncompressed file is kept`]);
});
