// Where a stream command's input comes from: the files named on its command
// line in order (`-` is standard input), or standard input when none is
// named. Each source has a name for diagnostics (`file:42:`, `stdin:42:`);
// src/lines/run.ts reads them in turn.
import { createReadStream, fstatSync } from 'node:fs';
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
      const queue: (Buffer | string)[] = [];
      let head = 0;
      let bytes = 0;
      let done = false;
      let error: Error | null = null;
      let wake: (() => void) | null = null;
      const signal = () => {
        const w = wake;
        wake = null;
        w?.();
      };
      const onData = (c: Buffer | string) => {
        queue.push(c);
        bytes += c.length;
        if (bytes >= limit) stream.pause();
        signal();
      };
      const onEnd = () => {
        done = true;
        signal();
      };
      const onClose = () => {
        if (!done && !error) error = Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
        done = true;
        signal();
      };
      const onError = (e: Error) => {
        error ??= e;
        done = true;
        signal();
      };
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
          for (;;) {
            if (head < queue.length) {
              const c = queue[head];
              queue[head++] = '';
              if (head === queue.length) {
                queue.length = 0;
                head = 0;
              }
              bytes -= c.length;
              if (bytes <= limit / 2 && stream.isPaused() && !done) stream.resume();
              return { value: c, done: false };
            }
            if (error) {
              detach();
              throw error;
            }
            if (done) {
              detach();
              return { value: undefined, done: true };
            }
            await new Promise<void>((r) => { wake = r; });
          }
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
