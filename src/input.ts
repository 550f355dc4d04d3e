// Where a stream command's input comes from: the files named on its command
// line in order (`-` is standard input), or standard input when none is
// named. Each source is read through LineSplitter with its own line
// numbers, so a diagnostic can say `file:42:` or `stdin:42:`. A file that
// cannot be opened is reported and skipped; the others are still read.
import { createReadStream } from 'node:fs';
import type { Readable, Writable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { LineSplitter, MAX_LINE } from './ndjson.js';

export interface Source {
  /** `stdin` or the file name as given. */
  name: string;
  open(): Readable;
}

export function sourcesFrom(files: string[], stdin: Readable): Source[] {
  if (files.length === 0) return [{ name: 'stdin', open: () => stdin }];
  return files.map((f) => (f === '-' ? { name: 'stdin', open: () => stdin } : { name: f, open: () => createReadStream(f, { highWaterMark: 256 * 1024 }) }));
}

export interface ReadOptions {
  sources: Source[];
  /** The per-source transform from Line[] batches to text. */
  transform(source: Source): Transform;
  out: Writable;
  /** `name: reason` for a source that could not be read; reading goes on with the next. */
  onSourceError(source: Source, err: Error): void;
  /** `name:N: reason` for an over-long line. */
  onBadLine(source: Source, no: number, reason: string): void;
  signal?: AbortSignal;
}

/** Read every source in turn into `out` (which is left open). Returns how many sources failed. */
export async function readSources(o: ReadOptions): Promise<number> {
  let failed = 0;
  for (const src of o.sources) {
    if (o.signal?.aborted) break;
    const split = new LineSplitter((no, len) => o.onBadLine(src, no, `line longer than ${MAX_LINE} bytes (${len}+), skipped`));
    try {
      await pipeline(src.open(), split, o.transform(src), o.out, { end: false, signal: o.signal });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.name === 'AbortError' || o.signal?.aborted) break;
      if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED' || err.code === 'ERR_STREAM_PREMATURE_CLOSE') throw e;
      if (err.syscall === 'open' || err.syscall === 'read') {
        o.onSourceError(src, err);
        failed++;
        continue;
      }
      throw e;
    }
  }
  return failed;
}
