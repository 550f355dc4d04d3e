// NDJSON in and out: splitting a byte stream into numbered lines, parsing a
// line into an object with an error that names where it was, and writing
// `\n`-terminated JSON. Lines are handed on in batches (one array per input
// chunk) so that per-line stream overhead is paid once per chunk; see
// bench/ndjson.js for the comparison with split2.
import { Transform, type TransformCallback } from 'node:stream';
import { isAscii, isUtf8 } from 'node:buffer';

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
 * Nesting a line may have. Deeper lines are refused when parsed: V8's
 * JSON.parse copes with any depth, but JSON.stringify and every recursive
 * walk of the value (a stage writing the record again, a mapper, a
 * template) overflow the stack some thousands of levels down, on a line of
 * a few kilobytes. A ctpipe record nests 4 deep; 1000 leaves room for any
 * field a user adds.
 */
export const MAX_DEPTH = 1000;

/** The UTF-8 byte order mark, which a source may start with (RFC 8259 section 8.1 lets a parser ignore it). */
export function bomLength(b: Buffer): number {
  return b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? 3 : 0;
}

/** Why the line buf[start, end) is skipped before it is parsed: JSON text is UTF-8 (RFC 8259 section 8.1). */
export function notText(buf: Buffer, start: number, end: number): string | null {
  return isUtf8(buf.subarray(start, end)) ? null : 'not valid UTF-8, skipped';
}

/** Whether `text` nests arrays and objects deeper than `max` (strings skipped). */
export function nestsDeeper(text: string, max = MAX_DEPTH): boolean {
  // A line shorter than 2 * max + 1 cannot: each level takes an opening and a closing character.
  if (text.length <= 2 * max) return false;
  let d = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      for (i++; i < n; i++) {
        const q = text.charCodeAt(i);
        if (q === 92 /* \ */) i++;
        else if (q === 34) break;
      }
    } else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++d > max) return true;
    } else if (c === 125 || c === 93) d--;
  }
  return false;
}

/**
 * Bytes in, `Line[]` out (object mode). Blank lines are counted but not
 * passed on; a trailing `\r` is removed; a final line without `\n` is kept;
 * a byte order mark at the very start is dropped. A line that is too long
 * or not UTF-8 is reported through `onBad` (with why) and not passed on.
 */
export class LineSplitter extends Transform {
  private rest: Buffer | null = null;
  private no = 0;
  private skipping = 0; // bytes of an over-long line being dropped, 0 when not
  private atStart = true;
  constructor(private onBad?: (no: number, why: string) => void) {
    super({ readableObjectMode: true, writableObjectMode: false, readableHighWaterMark: 4 });
  }

  override _transform(chunk: Buffer | string, _enc: BufferEncoding, cb: TransformCallback): void {
    this.split(typeof chunk === 'string' ? Buffer.from(chunk) : chunk, false);
    cb();
  }

  override _flush(cb: TransformCallback): void {
    this.split(Buffer.alloc(0), true);
    cb();
  }

  private split(chunk: Buffer, end: boolean): void {
    const out: Line[] = [];
    let buf = chunk;
    if (this.skipping) {
      const nl = buf.indexOf(10);
      if (nl < 0 && !end) {
        this.skipping += buf.length;
        return;
      }
      this.no++;
      this.onBad?.(this.no, `line of ${this.skipping + (nl < 0 ? buf.length : nl)} bytes is too long, skipped`);
      this.skipping = 0;
      buf = nl < 0 ? Buffer.alloc(0) : buf.subarray(nl + 1);
    }
    if (this.rest) {
      buf = Buffer.concat([this.rest, buf]);
      this.rest = null;
    }
    if (this.atStart && (buf.length >= 3 || end || buf.indexOf(10) >= 0)) {
      this.atStart = false;
      buf = buf.subarray(bomLength(buf));
    }
    // One check for the whole chunk; each line again only when it fails.
    const whole = isAscii(buf) || isUtf8(buf);
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(10, start);
      if (nl < 0) break;
      this.emitLine(buf, start, nl, whole, out);
      start = nl + 1;
    }
    if (start < buf.length) {
      if (end) this.emitLine(buf, start, buf.length, whole, out);
      else if (buf.length - start > MAX_LINE) this.skipping = buf.length - start;
      else this.rest = Buffer.from(buf.subarray(start));
    }
    if (out.length) this.push(out);
  }

  private emitLine(buf: Buffer, start: number, end: number, utf8: boolean, out: Line[]): void {
    this.no++;
    if (end > start && buf[end - 1] === 13) end--;
    if (end - start > MAX_LINE) {
      this.onBad?.(this.no, `line of ${end - start} bytes is too long, skipped`);
      return;
    }
    if (end === start) return;
    const why = utf8 ? null : notText(buf, start, end);
    if (why) {
      this.onBad?.(this.no, why);
      return;
    }
    const line = buf.toString('utf8', start, end);
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
  if (nestsDeeper(text)) throw new Error(`nested deeper than ${MAX_DEPTH} levels`);
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
