// Where a stream command's input comes from: the files named on its command
// line in order (`-` is standard input), or standard input when none is
// named. Each source has a name for diagnostics (`file:42:`, `stdin:42:`);
// src/lines/run.ts reads them in turn.
import { closeSync, constants, createReadStream, fstatSync, openSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Readable } from 'node:stream';

export interface Source {
  /** `stdin` or the file name as given. */
  name: string;
  /** A stream of the bytes. */
  open(): Readable;
  /** A file to read directly, by name. */
  path?: string;
  /** A descriptor to read directly when it is a regular file (stdin redirected from a file). */
  fd?: number;
}

export function sourcesFrom(files: string[], stdin: Readable): Source[] {
  const fd = typeof (stdin as { fd?: unknown }).fd === 'number' ? (stdin as unknown as { fd: number }).fd : undefined;
  const std: Source = { name: 'stdin', open: () => stdin, fd };
  if (files.length === 0) return [std];
  return files.map((f) => (f === '-' ? std : { name: f, path: f, open: () => createReadStream(f, { highWaterMark: 1024 * 1024 }) }));
}

// yargs drops a lone `-` from the arguments; it is swapped for a marker
// before parsing and back afterwards (in file lists and option values).
const DASH = '\u0000-';

export function protectDash(argv: string[]): string[] {
  return argv.map((x) => (x === '-' ? DASH : x));
}

/** Put `-` back in every parsed value. */
export function restoreDash<T extends Record<string, unknown>>(args: T): T {
  const fix = (v: unknown): unknown => (v === DASH ? '-' : Array.isArray(v) ? v.map(fix) : v);
  for (const k of Object.keys(args)) (args as Record<string, unknown>)[k] = fix(args[k]);
  return args;
}

/** Whether descriptor `fd` is a regular file (input from a saved file, not a live pipe). */
export function isRegularFile(fd: number): boolean {
  try {
    return fstatSync(fd).isFile();
  } catch {
    return false;
  }
}

/**
 * Chunks waiting between a reader that hands them over and a taker that
 * takes them in order (flowingChunks, openPipe). The reader is told to
 * stop (`pause`) when `limit` bytes wait, and to go on (`resume`) once the
 * taker has taken half of them. take() gives the next chunk, undefined
 * at the end, or throws the reader's error once every chunk before it was
 * taken.
 */
class ChunkQueue<T extends Buffer | string> {
  private queue: T[] = [];
  private head = 0;
  private bytes = 0;
  private paused = false;
  private wake: (() => void) | null = null;
  done = false;
  error: Error | null = null;

  constructor(private readonly limit: number, private readonly empty: T, private readonly pause: () => void, private readonly resume: () => void) {}

  /** A chunk read; false when the reader should stop (`pause` was called). */
  push(c: T): boolean {
    this.queue.push(c);
    this.bytes += c.length;
    if (this.bytes >= this.limit && !this.paused) {
      this.paused = true;
      this.pause();
    }
    this.signal();
    return !this.paused;
  }

  end(): void {
    this.done = true;
    this.signal();
  }

  /** The reader failed: the first error is the one thrown. */
  fail(e: Error): void {
    this.error ??= e;
    this.done = true;
    this.signal();
  }

  async take(): Promise<T | undefined> {
    for (;;) {
      if (this.head < this.queue.length) {
        const c = this.queue[this.head];
        this.queue[this.head++] = this.empty;
        if (this.head === this.queue.length) {
          this.queue.length = 0;
          this.head = 0;
        }
        this.bytes -= c.length;
        if (this.paused && this.bytes <= this.limit / 2 && !this.done) {
          this.paused = false;
          this.resume();
        }
        return c;
      }
      if (this.error) throw this.error;
      if (this.done) return undefined;
      await new Promise<void>((r) => { this.wake = r; });
    }
  }

  private signal(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}

/**
 * A byte stream's chunks as an async iterable that keeps the stream
 * flowing while less than `limit` bytes wait to be taken. A stream's own
 * async iterator reads in paused mode: a read beyond the stream's
 * highWaterMark (16 KiB for a pipe on Node 20, less than one of libuv's
 * 64 KiB reads) stops the descriptor being watched, and the next take
 * starts it again: two epoll_ctl calls and a trip through the stream's
 * buffering a chunk. Here the stream is paused only when `limit` bytes
 * wait, and resumed once the taker has taken half of them. As the stream's
 * own iterator: an error is thrown where the chunks are taken, a stream
 * closed before its end throws ERR_STREAM_PREMATURE_CLOSE, and leaving the
 * loop early destroys the stream.
 */
const ignore = () => {};

export function flowingChunks(stream: Readable, limit = 1 << 20): AsyncIterable<Buffer | string> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<Buffer | string> {
      const q = new ChunkQueue<Buffer | string>(limit, '', () => stream.pause(), () => stream.resume());
      const onData = (c: Buffer | string) => {
        q.push(c);
      };
      const onEnd = () => q.end();
      const onClose = () => {
        if (!q.done) q.fail(Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
      };
      const onError = (e: Error) => q.fail(e);
      const detach = () => {
        stream.off('data', onData);
        stream.off('end', onEnd);
        stream.off('close', onClose);
        stream.off('error', onError);
        // A late error (the stream being torn down) has nowhere to go, and must not be thrown as an unhandled 'error' event.
        stream.on('error', ignore);
      };
      stream.on('data', onData);
      stream.on('end', onEnd);
      stream.on('close', onClose);
      stream.on('error', onError);
      return {
        async next(): Promise<IteratorResult<Buffer | string>> {
          let c: Buffer | string | undefined;
          try {
            c = await q.take();
          } catch (e) {
            detach();
            throw e;
          }
          if (c === undefined) {
            detach();
            return { value: undefined, done: true };
          }
          return { value: c, done: false };
        },
        async return(): Promise<IteratorResult<Buffer | string>> {
          detach();
          stream.destroy();
          return { value: undefined, done: true };
        },
      };
    },
  };
}

/** A pipe's reads: each into a buffer of this many bytes (a widened pipe holds up to 1 MiB). */
export const PIPE_READ = 256 * 1024;

/** Chunks of a pipe (openPipe), each a view of a buffer of the reader's own, and what says when one is done with. */
export interface PipeChunks extends AsyncIterable<Buffer> {
  /**
   * One more user of the memory of `b` (a chunk, or a view of one): it is
   * not read into again until each user has released it.
   */
  hold(b: Buffer): void;
  /** A user of the memory of `b` is done with it (its output written). */
  release(b: Buffer): void;
  /** Stop reading and close the pipe's descriptor of our own. */
  close(): void;
}

/**
 * A pipe (descriptor `fd`) read into buffers of PIPE_READ bytes that are
 * used again once done with, or null when `fd` is not a pipe (a socket,
 * a terminal: read those as streams). A stream reading a pipe gets a new
 * buffer of 64 KiB from libuv for every read, whatever it holds: in a
 * flood of lines that is a read, an allocation and a bit of the garbage
 * collector's work every 50 KB or so. Here each read takes a free buffer
 * (a new one only when every buffer is in use) and may bring up to
 * PIPE_READ bytes. The pipe is opened again (/proc/self/fd), so that this
 * reader's descriptor, set non-blocking by libuv, is ours to close and
 * the one it came from (stdin) is left as it was. Each chunk is held once
 * when handed out; the caller releases it (and anything it held) when
 * done. With `recycle` false buffers are never used again (for an output
 * that may keep what it is given). Paused while `limit` bytes wait to be
 * taken, as flowingChunks().
 */
export function openPipe(fd: number, o: { recycle: boolean; limit?: number }): PipeChunks | null {
  let own: number;
  try {
    if (!fstatSync(fd).isFIFO()) return null;
    // Not blocking: opening a named pipe for reading otherwise waits for a writer.
    own = openSync(`/proc/self/fd/${fd}`, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return null;
  }
  const limit = o.limit ?? 1 << 20;
  const free: Buffer[] = [];
  const users = new Map<ArrayBufferLike, number>();
  const take = (): Buffer => free.pop() ?? Buffer.allocUnsafeSlow(PIPE_READ);
  const hold = (b: Buffer) => {
    users.set(b.buffer, (users.get(b.buffer) ?? 0) + 1);
  };
  const release = (b: Buffer) => {
    const n = users.get(b.buffer);
    if (n === undefined) return;
    if (n > 1) users.set(b.buffer, n - 1);
    else {
      users.delete(b.buffer);
      if (o.recycle && free.length < 8) free.push(Buffer.from(b.buffer, 0, PIPE_READ));
    }
  };
  // Reading stops when the onread callback returns false (push's result), and starts again at resume().
  const q = new ChunkQueue<Buffer>(limit, EMPTY, () => {}, () => sock.resume());
  let sock: Socket;
  try {
    // onread (Node >= 12) is not in @types/node's constructor options.
    sock = new Socket({
      fd: own, readable: true, writable: false,
      onread: {
        buffer: take,
        callback: (n: number, buf: Uint8Array) => {
          const c = Buffer.from(buf.buffer, buf.byteOffset, n);
          hold(c);
          // false: reading stops until the taker catches up.
          return q.push(c);
        },
      },
    } as ConstructorParameters<typeof Socket>[0]);
  } catch {
    closeSync(own);
    return null;
  }
  sock.on('end', () => q.end());
  sock.on('error', (e) => q.fail(e));
  sock.on('close', () => q.end());
  const close = () => {
    if (!sock.destroyed) sock.destroy();
  };
  return {
    hold,
    release,
    close,
    [Symbol.asyncIterator](): AsyncIterator<Buffer> {
      return {
        async next(): Promise<IteratorResult<Buffer>> {
          const c = await q.take();
          return c === undefined ? { value: undefined, done: true } : { value: c, done: false };
        },
        async return(): Promise<IteratorResult<Buffer>> {
          close();
          return { value: undefined, done: true };
        },
      };
    },
  };
}
const EMPTY = Buffer.alloc(0);
