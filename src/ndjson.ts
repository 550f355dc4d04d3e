// NDJSON in and out: splitting a byte stream into numbered lines, parsing a
// line into an object with an error that names where it was, and writing
// `\n`-terminated JSON. Lines are handed on in batches (one array per input
// chunk) so that per-line stream overhead is paid once per chunk; see
// bench/ndjson.js for the comparison with split2.
import { Transform, type TransformCallback } from 'node:stream';
import { isAscii, isUtf8 } from 'node:buffer';
import { LineCutter, type Cut } from './lines/cut.js';

export interface Line {
  text: string;
  /** 1-based line number in its source. */
  no: number;
  /** The line's bytes are buf[start, end) (a view of the input: read them before the next batch). */
  buf: Buffer;
  start: number;
  end: number;
}

/**
 * A line whose text is decoded from its bytes when first asked for
 * (LineSplitter's lazyText): a reader of the bytes that rarely needs the
 * text does not decode every line.
 */
class LazyLine implements Line {
  private t: string | undefined = undefined;
  constructor(readonly no: number, readonly buf: Buffer, readonly start: number, readonly end: number) {}

  get text(): string {
    if (this.t === undefined) this.t = this.buf.toString('utf8', this.start, this.end);
    return this.t;
  }
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

export { bomLength } from './lines/cut.js';

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
 * Lines are cut from the bytes by src/lines/cut.ts, as every reader's are.
 */
export class LineSplitter extends Transform {
  private readonly cutter = new LineCutter(MAX_LINE);
  private no = 0;
  private out: Line[] = [];
  private readonly onCut = (c: Cut) => {
    if (c.body) this.lines(c.body);
    else {
      this.no++;
      this.onBad?.(this.no, `line of ${c.overlong} bytes is too long, skipped`);
    }
  };

  /** Lines' text made when first asked for (LazyLine): for a reader of their bytes (ct-attribute). */
  private readonly lazyText: boolean;

  constructor(private onBad?: (no: number, why: string) => void, o: { lazyText?: boolean } = {}) {
    super({ readableObjectMode: true, writableObjectMode: false, readableHighWaterMark: 4 });
    this.lazyText = !!o.lazyText;
  }

  override _transform(chunk: Buffer | string, _enc: BufferEncoding, cb: TransformCallback): void {
    this.cutter.push(chunk, this.onCut);
    this.pushOut();
    cb();
  }

  override _flush(cb: TransformCallback): void {
    this.cutter.end(this.onCut);
    this.pushOut();
    cb();
  }

  private pushOut(): void {
    if (!this.out.length) return;
    this.push(this.out);
    this.out = [];
  }

  /** The lines of one run of whole lines. */
  private lines(buf: Buffer): void {
    // With lazyText a line's text is made when asked for (LazyLine); otherwise,
    // nearly always ASCII: then one decode for the run, and each line a slice of it.
    const lazy = this.lazyText;
    const ascii = !lazy && isAscii(buf);
    const all = ascii ? buf.toString('latin1') : '';
    // One check for the whole run; each line again only when it fails.
    const utf8 = ascii || isUtf8(buf);
    const len = buf.length;
    let start = 0;
    while (start < len) {
      const nl = ascii ? all.indexOf('\n', start) : buf.indexOf(10, start);
      const stop = nl < 0 ? len : nl;
      this.no++;
      let end = stop;
      if (end > start && buf[end - 1] === 13) end--;
      if (end - start > MAX_LINE) this.onBad?.(this.no, `line of ${end - start} bytes is too long, skipped`);
      else if (end > start) {
        const why = utf8 ? null : notText(buf, start, end);
        if (why) this.onBad?.(this.no, why);
        else if (lazy) {
          const line = new LazyLine(this.no, buf, start, end);
          if (buf[start] === 123 /* { */ || line.text.trim() !== '') this.out.push(line);
        } else {
          const line = ascii ? all.slice(start, end) : buf.toString('utf8', start, end);
          if (line.charCodeAt(0) === 123 /* { */ || line.trim() !== '') this.out.push({ text: line, no: this.no, buf, start, end });
        }
      }
      start = stop + 1;
    }
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
