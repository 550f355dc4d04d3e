// process.hash.sha256: the SHA-256 of the file a process executes, read
// through /proc/PID/exe (the file the kernel opened for execve, which may be
// deleted, replaced, or a memfd with no path at all), never through the path
// its link text shows. Digests are computed off the event path (asynchronous
// reads, a few at a time) and cached by device, inode, size and modification
// time, bounded. Callers get what is known now: the digest, "pending", or an
// error; they ask again later.
import { createHash } from 'node:crypto';
import { statSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import type { ExeHash } from '../event.js';
import { BoundedMap } from '../lru.js';

export interface ExeHasherOptions {
  proc?: string;
  /** Files larger than this are not read (error "too-large"); default 512 MiB. */
  maxBytes?: number;
  /** Digests remembered at most (default 4096). */
  maxEntries?: number;
  /** Files read at the same time at most (default 2). */
  concurrency?: number;
  /** Called when a digest is done (or failed), so a caller may refresh what it handed out. */
  onDone?: () => void;
}

/**
 * Bytes hashed per step. The digest is updated on the event loop's thread
 * between reads, so a step is time taken from events: 64 KiB is about
 * 0.1 ms of SHA-256 on one core, well inside the idle p99 budget of 1 ms.
 */
const CHUNK = 64 * 1024;

/** Device, inode, size and mtime: the identity of one version of a file. */
export function fileKey(st: Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
}

/** What the link text of /proc/PID/exe says about the file: deleted, memfd, or neither. */
export function exeKind(link: unknown): 'memfd' | 'deleted' | null {
  if (typeof link !== 'string') return null;
  if (link.startsWith('/memfd:')) return 'memfd';
  if (link.endsWith(' (deleted)')) return 'deleted';
  return null;
}

export class ExeHasher {
  private readonly proc: string;
  private readonly maxBytes: number;
  private readonly concurrency: number;
  private cache: BoundedMap<string, ExeHash>;
  /** Files waiting to be read: key -> pid to open it through. */
  private waiting = new Map<string, number>();
  private running = 0;
  /** The file key of each process seen (by entity_id), for when it has exited. */
  private keys = new BoundedMap<string, string>(20000);
  /** Digests made, files read, and get()'s stats of an exe link, for --stats, the tests and the bench. */
  readonly stats = { hashed: 0, bytes: 0, failed: 0, looks: 0 };
  /**
   * Files finished (hashed or failed) so far: an answer that was pending
   * when this count was N can only have changed once it is above N, so a
   * caller holding a pending answer asks again (a stat) only then.
   */
  finished = 0;
  private idle: (() => void)[] = [];

  constructor(private opts: ExeHasherOptions = {}) {
    this.proc = opts.proc ?? '/proc';
    this.maxBytes = opts.maxBytes ?? 512 * 1024 * 1024;
    this.concurrency = Math.max(1, opts.concurrency ?? 2);
    this.cache = new BoundedMap(Math.max(4, opts.maxEntries ?? 4096));
  }

  /**
   * What is known of `pid`'s executable now: a stat of /proc/PID/exe (one
   * system call) and a cache lookup; a file not seen before is queued.
   */
  get(pid: number, id?: string): ExeHash {
    let st: Stats;
    this.stats.looks++;
    try {
      st = statSync(`${this.proc}/${pid}/exe`);
    } catch (e) {
      // Exited: its file's digest, if it was seen while it ran.
      const k = id !== undefined ? this.keys.get(id) : undefined;
      const known = k !== undefined ? this.cache.get(k) : undefined;
      return known ?? { error: (e as NodeJS.ErrnoException).code ?? 'stat' };
    }
    const key = fileKey(st);
    if (id !== undefined) this.keys.set(id, key);
    const known = this.cache.get(key);
    if (known) return known;
    if (st.size > this.maxBytes) {
      const r = { error: 'too-large' };
      this.cache.set(key, r);
      return r;
    }
    // Bounded: a flood of new binaries waits at most this many files deep.
    if (this.waiting.size >= 1024) return { pending: true };
    const pending: ExeHash = { pending: true };
    this.cache.set(key, pending);
    this.waiting.set(key, pid);
    this.pump();
    return pending;
  }

  private pump(): void {
    while (this.running < this.concurrency && this.waiting.size) {
      const [key, pid] = this.waiting.entries().next().value as [string, number];
      this.waiting.delete(key);
      this.running++;
      this.hash(key, pid).then((r) => {
        this.cache.set(key, r);
        if (r.sha256) this.stats.hashed++;
        else this.stats.failed++;
      }).finally(() => {
        this.finished++;
        this.running--;
        this.opts.onDone?.();
        this.pump();
        if (!this.running && !this.waiting.size) for (const f of this.idle.splice(0)) f();
      });
    }
  }

  /** Read the file through the process's exe link, checking it is still the one keyed. */
  private async hash(key: string, pid: number): Promise<ExeHash> {
    let fh;
    try {
      fh = await open(`${this.proc}/${pid}/exe`, 'r');
    } catch (e) {
      return { error: (e as NodeJS.ErrnoException).code ?? 'open' };
    }
    try {
      const st = await fh.stat();
      // The process exited and its pid went to another program meanwhile.
      if (fileKey(st) !== key) return { error: 'changed' };
      const h = createHash('sha256');
      const buf = Buffer.allocUnsafe(CHUNK);
      let pos = 0;
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, CHUNK, pos);
        if (bytesRead === 0) break;
        h.update(buf.subarray(0, bytesRead));
        pos += bytesRead;
        if (pos > this.maxBytes) return { error: 'too-large' };
      }
      this.stats.bytes += pos;
      return { sha256: h.digest('hex') };
    } catch (e) {
      return { error: (e as NodeJS.ErrnoException).code ?? 'read' };
    } finally {
      await fh.close();
    }
  }

  /** Resolves when no file is being read or waiting (tests, shutdown). */
  settled(): Promise<void> {
    if (!this.running && !this.waiting.size) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }
}
