// ct-record's writer: whole lines into files named by a strftime pattern,
// rotated on clock-aligned boundaries, by size and on request (SIGHUP);
// never over an existing file; no line lost or cut by a write error.
//
// Everything read waits in one ordered queue of buffers and marks (rotate,
// reopen, end) and leaves it only once it is in a file as whole lines. A
// write error (ENOSPC, EDQUOT, EIO, ...) starts an episode: reported once,
// the partial line the failed write left is cut off (ftruncate), the write is
// retried with a doubling delay, and the queue goes on filling up to its
// bound, after which write() says stop (the reader stops reading: the
// back-pressure reaches the pipe). Owns no `process`: the clock, timers,
// file system and messages are given.
import fs from 'node:fs';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { compileNamePattern, withSuffix, Periods, type Namer, type TimeZoneMode } from './pattern.js';
import { nodeFs, checkPrivate, openPrivate, type RecordFs } from './fs.js';
import { gzipFile, fsyncDir } from './gzip.js';

const { O_WRONLY, O_APPEND, O_NOFOLLOW } = fs.constants;

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** A clock that reads `startMs` now and runs at the real rate from there (for tests: CT_RECORD_CLOCK). */
export function clockFrom(startMs: number): Clock {
  const t0 = performance.now();
  return { ...systemClock, now: () => startMs + (performance.now() - t0) };
}

export interface RecorderOptions {
  /** strftime pattern of the file names (see pattern.ts). */
  pattern: string;
  tz: TimeZoneMode;
  /** Rotate every this many minutes, aligned to the clock (1..1440). */
  minutes?: number;
  /** Rotate before a line would make the file larger than this. */
  maxBytes?: number;
  /** Compress closed files to NAME.gz. */
  gzip?: boolean;
  /** Bytes held in memory (read, not yet written) before write() says stop. */
  buffer: number;
  /** The effective uid: directories must be owned by it or by root. */
  uid: number;
  /** One diagnostic line (without the command's name). */
  log: (message: string) => void;
  clock?: Clock;
  fs?: RecordFs;
  /** First and longest delay between retries, ms (default 50 and 1000). */
  retryMin?: number;
  retryMax?: number;
}

type Mark = { mark: 'rotate' | 'reopen' | 'end'; at: number };
type Item = Buffer | Mark;

interface OpenFile {
  fd: number;
  path: string;
  /** Bytes this writer believes the file holds. */
  size: number;
  /** Offset just after the last whole line written. */
  good: number;
}

export interface RecordResult {
  /** Every file written to, in order (the name before compression). */
  files: string[];
  /** Files compressed to NAME.gz. */
  gzipped: number;
  /** An fsync failed: some written lines may not be on disk. */
  fsyncFailed: boolean;
}

/** Bytes given to one writev at most, and buffers in it (below IOV_MAX). */
const MAX_WRITE = 4 << 20;
const MAX_IOV = 512;
const NL = 10;

function errText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (!e || typeof e !== 'object') return String(err);
  const msg = String(e.message ?? e);
  // Node's errno messages are `ENOSPC: no space left on device, write`: drop the syscall name.
  return msg.replace(/, (write|open|fsync|ftruncate|fstat|close|mkdir|stat|lstat|fchmod)( '[^']*')?$/, '');
}

export class Recorder extends EventEmitter {
  private readonly fs: RecordFs;
  private readonly clock: Clock;
  private readonly name: Namer;
  private readonly periods: Periods | null;
  private readonly items: Item[] = [];
  /** Bytes of data in `items`. */
  private heldBytes = 0;
  /** Bytes at the front of the queue already in the file, after its last whole line. */
  private sent = 0;
  private file: OpenFile | null = null;
  private needTruncate = false;
  private splitNow = false;
  /** Set by reuseEmpty() for the file it hands back. */
  private reused = false;
  private wake: (() => void) | null = null;
  private loopDone: Promise<void> | null = null;
  private timer: unknown = null;
  private boundary = 0;
  private ended = false;
  private blocked = false;
  private episode: { since: number; code: string; delay: number } | null = null;
  private gzipChain: Promise<void> = Promise.resolve();
  private readonly compressing = new Set<string>();
  private readonly result: RecordResult = { files: [], gzipped: 0, fsyncFailed: false };

  constructor(private readonly opts: RecorderOptions) {
    super();
    this.fs = opts.fs ?? nodeFs;
    this.clock = opts.clock ?? systemClock;
    this.name = compileNamePattern(opts.pattern, opts.tz);
    this.periods = opts.minutes ? new Periods(opts.minutes, opts.tz) : null;
  }

  /** Bytes read and not yet in a file. */
  get held(): number {
    return this.heldBytes;
  }

  /** In a write-error episode (retrying). */
  get failing(): boolean {
    return this.episode !== null;
  }

  /** The file being written, if any. */
  get current(): string | null {
    return this.file?.path ?? null;
  }

  /** Open the first file (its errors are thrown: a bad pattern or directory stops the command before it reads). */
  async start(): Promise<string> {
    await this.openFile(this.clock.now());
    if (this.periods) this.schedule();
    this.loopDone = this.loop();
    return this.file!.path;
  }

  /**
   * Queue whole lines (each buffer's end is a line's end, or the next
   * buffer continues the line). Returns false once the bound is reached:
   * stop reading until 'drain'.
   */
  write(bufs: Buffer[]): boolean {
    if (this.ended) throw new Error('write after end');
    for (const b of bufs) {
      if (b.length === 0) continue;
      this.items.push(b);
      this.heldBytes += b.length;
    }
    this.kick();
    if (this.heldBytes >= this.opts.buffer) this.blocked = true;
    return !this.blocked;
  }

  /** Close the current file and open a new one by the pattern, after what is already queued (SIGHUP). */
  reopen(): void {
    if (this.ended) return;
    this.push({ mark: 'reopen', at: this.clock.now() });
  }

  /** Write everything queued, close (fsync) the last file, finish compressing. */
  async end(): Promise<RecordResult> {
    if (!this.ended) {
      this.ended = true;
      if (this.timer !== null) this.clock.clearTimeout(this.timer);
      this.timer = null;
      this.push({ mark: 'end', at: this.clock.now() });
    }
    await this.loopDone;
    await this.gzipChain;
    return this.result;
  }

  private push(m: Mark): void {
    this.items.push(m);
    this.kick();
  }

  private kick(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private schedule(): void {
    const now = this.clock.now();
    this.boundary = this.periods!.next(now);
    this.timer = this.clock.setTimeout(() => this.onBoundary(), Math.max(1, this.boundary - now));
  }

  private onBoundary(): void {
    this.timer = null;
    if (this.ended) return;
    const now = this.clock.now();
    if (now < this.boundary) {
      // The timer ran early by this clock (it was set back): wait again.
      this.timer = this.clock.setTimeout(() => this.onBoundary(), Math.max(1, this.boundary - now));
      return;
    }
    // Named by the start of the period now running (after a suspend, not by a boundary long past).
    this.push({ mark: 'rotate', at: this.periods!.start(now) });
    this.schedule();
  }

  private async loop(): Promise<void> {
    for (;;) {
      if (this.items.length === 0) {
        await new Promise<void>((r) => (this.wake = r));
        continue;
      }
      const head = this.items[0];
      try {
        if (this.needTruncate) await this.truncatePartial();
        if (this.splitNow) {
          await this.closeFile();
          this.splitNow = false;
        }
        if (!Buffer.isBuffer(head)) {
          await this.closeFile();
          if (head.mark === 'end') {
            this.items.shift();
            this.recovered();
            return;
          }
          await this.openFile(head.at);
          this.items.shift();
        } else {
          if (!this.file) await this.openFile(this.clock.now());
          // A write that was cut short (by the room left) does not end an episode.
          if (!(await this.writeSome())) continue;
        }
        this.recovered();
      } catch (err) {
        await this.failed(err);
      }
    }
  }

  /**
   * One writev of queued data (up to the next mark, MAX_WRITE, and the room
   * --max-bytes leaves). Returns whether it wrote all it meant to.
   */
  private async writeSome(): Promise<boolean> {
    const f = this.file!;
    // The data to write: from byte `sent` of the queue to the first mark.
    const bufs: Buffer[] = [];
    let skip = this.sent;
    let total = 0;
    for (const it of this.items) {
      if (!Buffer.isBuffer(it)) break;
      if (skip >= it.length) {
        skip -= it.length;
        continue;
      }
      const b = skip ? it.subarray(skip) : it;
      skip = 0;
      bufs.push(b);
      total += b.length;
      if (total >= MAX_WRITE || bufs.length >= MAX_IOV) break;
    }
    if (total === 0) {
      // Nothing to write before a mark: only possible with a partial line at a mark, which cannot happen.
      throw new Error('internal: nothing to write');
    }
    const max = this.opts.maxBytes;
    if (max && f.size + total > max) {
      const room = max - f.size;
      // The last line end within the room, or (when the file holds no whole line yet, or one is half written) the end of the current line.
      let len = room > 0 ? lastNewline(bufs, room) : 0;
      if (len === 0) {
        if (f.good > 0 && this.sent === 0) {
          // The next line does not fit: a new file, then this line.
          await this.closeFile();
          return true;
        }
        len = firstNewline(bufs);
        if (len === 0) len = total;
      }
      cutTo(bufs, len);
      total = len;
    }
    let whole = true;
    if (this.episode?.code === 'ENOSPC' && this.fs.statfs) {
      // While the disk is full, write only whole lines that fit (a short
      // write would leave half a line until the next attempt cuts it off).
      const room = await this.freeBytes(f.path);
      if (room < total) {
        const len = lastNewline(bufs, room);
        if (len === 0) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
        cutTo(bufs, len);
        total = len;
        whole = false;
      }
    }
    const n = await this.fs.writev(f.fd, bufs);
    if (n <= 0) throw Object.assign(new Error('EIO: the write wrote nothing'), { code: 'EIO' });
    this.account(f, n);
    return whole && n === total;
  }

  /** Bytes this process may still write on the file system of `file` (root may use the blocks reserved for it). */
  private async freeBytes(file: string): Promise<number> {
    try {
      const s = await this.fs.statfs!(path.dirname(file));
      return (this.opts.uid === 0 ? s.bfree : s.bavail) * s.bsize;
    } catch {
      return Infinity;
    }
  }

  /** `n` bytes went into the file: whatever now ends in a whole line leaves the queue. */
  private account(f: OpenFile, n: number): void {
    f.size += n;
    this.sent += n;
    const g = this.wholeLines(this.sent);
    if (g === 0) return;
    this.consume(g);
    this.sent -= g;
    f.good += g;
    this.heldBytes -= g;
    if (this.blocked && this.heldBytes <= this.opts.buffer / 2) {
      this.blocked = false;
      this.emit('drain');
    }
  }

  /** Bytes up to and including the last `\n` within the first `k` bytes of the queue. */
  private wholeLines(k: number): number {
    // The buffer holding byte k-1, then backwards from there.
    let i = 0;
    let off = 0;
    for (;;) {
      const len = (this.items[i] as Buffer).length;
      if (off + len >= k) break;
      off += len;
      i++;
    }
    let end = k - off;
    for (;;) {
      const p = end > 0 ? (this.items[i] as Buffer).lastIndexOf(NL, end - 1) : -1;
      if (p >= 0) return off + p + 1;
      if (i === 0) return 0;
      i--;
      end = (this.items[i] as Buffer).length;
      off -= end;
    }
  }

  private consume(n: number): void {
    while (n > 0) {
      const it = this.items[0] as Buffer;
      if (it.length <= n) {
        this.items.shift();
        n -= it.length;
      } else {
        this.items[0] = it.subarray(n);
        n = 0;
      }
    }
  }

  /**
   * Cut off the incomplete line a failed (or short) write left at the end
   * of the file. The file is opened O_APPEND, so this writer's bytes are the
   * last ones in it even if someone truncated it meanwhile (logrotate's
   * copytruncate): the cut is made from the end.
   */
  private async truncatePartial(): Promise<void> {
    const f = this.file;
    if (!f) {
      this.needTruncate = false;
      this.sent = 0;
      return;
    }
    const st = await this.fs.fstat(f.fd);
    const target = st.size >= f.size ? f.good : Math.max(0, st.size - this.sent);
    if (st.size !== target) await this.fs.ftruncate(f.fd, target);
    f.size = f.good = target;
    this.sent = 0;
    this.needTruncate = false;
  }

  private async failed(err: unknown): Promise<void> {
    const e = err as NodeJS.ErrnoException;
    const code = String(e?.code ?? 'ERROR');
    if (this.file && this.sent > 0) this.needTruncate = true;
    // A file at the largest size the file system allows: go on in a new one.
    if (code === 'EFBIG' && this.file) this.splitNow = true;
    // Cut off a partial line at once, not after the wait (it fails again when the file system fails: the loop tries again).
    if (this.needTruncate) await this.truncatePartial().catch(() => {});
    const where = this.file ? this.file.path : 'opening a file';
    if (!this.episode || this.episode.code !== code) {
      const first = !this.episode;
      this.episode = { since: this.episode?.since ?? this.clock.now(), code, delay: this.episode?.delay ?? (this.opts.retryMin ?? 50) };
      this.opts.log(first
        ? `${where}: ${errText(err)}; holding lines in memory (up to ${this.opts.buffer} bytes, then reading stops) and retrying`
        : `${where}: now ${errText(err)}; still retrying`);
    }
    const delay = this.episode.delay;
    this.episode.delay = Math.min(delay * 2, this.opts.retryMax ?? 1000);
    await new Promise<void>((r) => this.clock.setTimeout(r, delay));
  }

  private recovered(): void {
    if (!this.episode) return;
    const secs = ((this.clock.now() - this.episode.since) / 1000).toFixed(1);
    this.opts.log(`${this.file ? this.file.path : 'writing'}: writing again after ${secs} s; nothing was lost`);
    this.episode = null;
  }

  /** Open a new file named by the pattern for `at`: created 0600 with O_EXCL, or the next free name. */
  private async openFile(at: number): Promise<void> {
    const name = this.name(at);
    const dir = path.dirname(name);
    await this.fs.mkdir(dir, 0o700);
    await checkPrivate(this.fs, dir, this.opts.uid);
    for (let n = 0; n < 10000; n++) {
      const cand = n === 0 ? name : withSuffix(name, n);
      if (this.compressing.has(cand)) continue;
      // NAME.gz takes NAME too (a file compressed by this or an earlier run, with --gzip or not).
      if (await exists(this.fs, cand + '.gz')) continue;
      let fd = -1;
      try {
        fd = await openPrivate(this.fs, cand, { uid: this.opts.uid, exclusive: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        fd = await this.reuseEmpty(cand);
        if (fd < 0) continue;
      }
      this.reused = false;
      if (n > 0) this.opts.log(`${name} exists; writing to ${cand}`);
      this.file = { fd, path: cand, size: 0, good: 0 };
      this.sent = 0;
      this.needTruncate = false;
      this.result.files.push(cand);
      this.emit('open', cand);
      return;
    }
    throw new Error(`${name}: no free name (tried up to ${withSuffix(name, 9999)})`);
  }

  /**
   * An existing empty regular file (as logrotate's `create` leaves) holds
   * nothing that could be overwritten: append to it. Its mode and owner
   * are left as they are, unless others could read it.
   */
  private async reuseEmpty(cand: string): Promise<number> {
    let st;
    try {
      st = await this.fs.lstat(cand);
    } catch {
      return -1;
    }
    if (!st.isFile() || st.size !== 0 || st.nlink !== 1) return -1;
    let fd = -1;
    try {
      fd = await this.fs.open(cand, O_WRONLY | O_APPEND | O_NOFOLLOW, 0);
      const now = await this.fs.fstat(fd);
      if (now.ino === st.ino && now.dev === st.dev && now.size === 0) {
        if (now.mode & 0o007) await this.fs.fchmod(fd, now.mode & 0o770);
        this.reused = true;
        return fd;
      }
    } catch {
      /* not usable: take the next name */
    }
    if (fd >= 0) await this.fs.close(fd).catch(() => {});
    return -1;
  }

  /** fsync and close the current file; then compress it (in the background) with --gzip. */
  private async closeFile(): Promise<void> {
    const f = this.file;
    if (!f) return;
    try {
      await this.fs.fsync(f.fd);
    } catch (e) {
      // Linux reports a failed write-back once and drops the pages: retrying fsync would claim success.
      this.result.fsyncFailed = true;
      this.opts.log(`${f.path}: fsync failed: ${errText(e)}; lines written to it may not be on disk`);
    }
    this.file = null;
    this.sent = 0;
    this.needTruncate = false;
    try {
      await this.fs.close(f.fd);
    } catch (e) {
      this.opts.log(`${f.path}: close: ${errText(e)}`);
    }
    await fsyncDir(this.fs, path.dirname(f.path));
    this.emit('close', f.path);
    if (this.opts.gzip) this.compress(f.path);
  }

  private compress(file: string): void {
    this.compressing.add(file);
    this.gzipChain = this.gzipChain.then(async () => {
      try {
        await gzipFile(this.fs, file);
        this.result.gzipped++;
        this.emit('gzip', file + '.gz');
      } catch (e) {
        this.opts.log(`${file}: not compressed (${errText(e)}); the uncompressed file is kept`);
      } finally {
        this.compressing.delete(file);
      }
    });
  }
}

async function exists(fsx: RecordFs, p: string): Promise<boolean> {
  try {
    await fsx.lstat(p);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/** Length up to and including the last `\n` within the first `limit` bytes of `bufs` (0: none). */
function lastNewline(bufs: Buffer[], limit: number): number {
  let off = 0;
  let best = 0;
  for (const b of bufs) {
    if (off >= limit) break;
    const end = Math.min(b.length, limit - off);
    const p = b.lastIndexOf(NL, end - 1);
    if (p >= 0) best = off + p + 1;
    off += b.length;
  }
  return best;
}

/** Length up to and including the first `\n` in `bufs` (0: none). */
function firstNewline(bufs: Buffer[]): number {
  let off = 0;
  for (const b of bufs) {
    const p = b.indexOf(NL);
    if (p >= 0) return off + p + 1;
    off += b.length;
  }
  return 0;
}

/** Shorten `bufs` in place to its first `len` bytes. */
function cutTo(bufs: Buffer[], len: number): void {
  let off = 0;
  for (let i = 0; i < bufs.length; i++) {
    if (off + bufs[i].length >= len) {
      bufs[i] = bufs[i].subarray(0, len - off);
      bufs.length = i + 1;
      return;
    }
    off += bufs[i].length;
  }
}
