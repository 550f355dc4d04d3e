// NDJSON in and out: splitting a byte stream into numbered lines, parsing a
// line into an object with an error that names where it was, and writing
// `\n`-terminated JSON. Lines are handed on in batches (one array per input
// chunk) so that per-line stream overhead is paid once per chunk; see
// bench/ndjson.js for the comparison with split2.
import { Transform, type TransformCallback } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

export interface Line {
  text: string;
  /** 1-based line number in its source. */
  no: number;
}

/** The largest line accepted; a longer one is reported and skipped, so memory stays bounded. */
export const MAX_LINE = 1 << 20;

export class BadLine extends Error {
  constructor(public source: string, public no: number, message: string) {
    super(`${source}:${no}: ${message}`);
  }
}

/**
 * Bytes in, `Line[]` out (object mode). Blank lines are counted but not
 * passed on; a trailing `\r` is removed; a final line without `\n` is kept.
 */
export class LineSplitter extends Transform {
  private decoder = new StringDecoder('utf8');
  private rest = '';
  private no = 0;
  private overlong = false;
  constructor(private onTooLong?: (no: number, length: number) => void) {
    super({ readableObjectMode: true, writableObjectMode: false, readableHighWaterMark: 4 });
  }

  override _transform(chunk: Buffer | string, _enc: BufferEncoding, cb: TransformCallback): void {
    const s = typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    this.split(s, false);
    cb();
  }

  override _flush(cb: TransformCallback): void {
    this.split(this.decoder.end(), true);
    cb();
  }

  private split(s: string, end: boolean): void {
    const out: Line[] = [];
    let start = 0;
    let text = this.rest + s;
    this.rest = '';
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      this.emitLine(text, start, nl, out);
      start = nl + 1;
    }
    if (start < text.length) {
      if (end) {
        this.emitLine(text, start, text.length, out);
      } else if (text.length - start > MAX_LINE) {
        // Keep counting but drop the text of an over-long line until its end.
        if (!this.overlong) this.onTooLong?.(this.no + 1, text.length - start);
        this.overlong = true;
      } else {
        this.rest = text.slice(start);
      }
    }
    if (out.length) this.push(out);
  }

  private emitLine(text: string, start: number, end: number, out: Line[]): void {
    this.no++;
    if (this.overlong) {
      this.overlong = false;
      return;
    }
    if (end > start && text.charCodeAt(end - 1) === 13) end--;
    if (end - start > MAX_LINE) {
      this.onTooLong?.(this.no, end - start);
      return;
    }
    if (end === start) return;
    const line = text.slice(start, end);
    if (line.trim() === '') return;
    out.push({ text: line, no: this.no });
  }
}

/** Parse one line as a JSON object; throws a message fit for `stdin:N: …`. */
export function parseObject(text: string): Record<string, any> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`not JSON: ${(e as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new Error(`not a JSON object: ${Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v}`);
  }
  return v as Record<string, any>;
}

/** Serialize one record as a line. */
export function toLine(obj: unknown): string {
  return JSON.stringify(obj) + '\n';
}

/**
 * A transform from `Line[]` batches to text: `fn` returns the output for a
 * line ('' for nothing). One string is pushed per batch.
 */
export function mapLines(fn: (line: Line) => string): Transform {
  return new Transform({
    writableObjectMode: true,
    readableObjectMode: false,
    transform(batch: Line[], _enc, cb) {
      let out = '';
      try {
        for (const line of batch) out += fn(line);
      } catch (e) {
        return cb(e as Error);
      }
      if (out) this.push(out);
      cb();
    },
  });
}
