// Cutting a byte stream into runs of whole lines, the one place every line
// reader does it (runLines for ct-filter, ct-format, ct-flows, ct-top;
// ct-es's mapper; LineSplitter for ct-attribute and ct-syslog; ct-record).
// A run ends at a line end, so it can be processed anywhere (this thread or
// a worker) and line numbers are counted within it. A line longer than
// maxLine is never held whole: its bytes are counted and dropped, and it is
// reported by length where it stands. A UTF-8 byte order mark at the very
// start is dropped (RFC 8259 section 8.1), unless the reader keeps the
// bytes as they came (ct-record). Bytes after the last line end form the
// last run.
//
// A run is a view of the chunk read, never a copy of it: the start of a
// line that a chunk ends in is kept (a copy of at most one line), and joined
// to its end, from the next chunk, as a run of its own. Copying every chunk
// after such a start would cost a new buffer of the chunk's size each time.

/** The UTF-8 byte order mark, which a source may start with (RFC 8259 section 8.1 lets a parser ignore it). */
export function bomLength(b: Buffer): number {
  return b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? 3 : 0;
}

export type Cut =
  /** Whole lines, each ending in `\n` (the last run of the input may lack its final one). */
  | { body: Buffer; overlong?: undefined }
  /** A line of this many bytes (at least), skipped. */
  | { overlong: number; body?: undefined };

export interface CutterOptions {
  /** Keep a byte order mark at the start as it came (a reader that writes its input unchanged). */
  keepBom?: boolean;
}

/** The cutter's state between chunks: push() each chunk in order, then end(). */
export class LineCutter {
  private carry: Buffer | null = null;
  private skipping = 0; // bytes of an over-long line being dropped, 0 when not
  private atStart = true; // a byte order mark is dropped there
  private readonly keepBom: boolean;

  constructor(private readonly maxLine: number, o: CutterOptions = {}) {
    this.keepBom = !!o.keepBom;
  }

  /** Bytes of a line begun and not ended yet, held. */
  get pending(): number {
    return this.carry ? this.carry.length : 0;
  }

  /** The runs (at most three) that this chunk completes, handed to `emit` in order. */
  push(chunk: Buffer | string, emit: (c: Cut) => void): void {
    let buf: Buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (this.skipping) {
      const nl = buf.indexOf(10);
      if (nl < 0) {
        this.skipping += buf.length;
        return;
      }
      emit({ overlong: this.skipping + nl });
      this.skipping = 0;
      buf = buf.subarray(nl + 1);
    }
    if (this.atStart) {
      if (this.carry) buf = Buffer.concat([this.carry, buf]);
      this.carry = null;
      // Past the first line end, or three bytes, a byte order mark can no longer come.
      if (buf.length >= 3 || buf.indexOf(10) >= 0) {
        this.atStart = false;
        if (!this.keepBom) buf = buf.subarray(bomLength(buf));
      }
    } else if (this.carry) {
      // The line begun in an earlier chunk: joined to its end, as a run of its own.
      const nl = buf.indexOf(10);
      const held = this.carry.length;
      if (nl < 0) {
        if (held + buf.length > this.maxLine) {
          this.skipping = held + buf.length;
          this.carry = null;
        } else this.carry = Buffer.concat([this.carry, buf]);
        return;
      }
      const line = Buffer.concat([this.carry, buf.subarray(0, nl + 1)]);
      this.carry = null;
      emit({ body: line });
      buf = buf.subarray(nl + 1);
    }
    const last = buf.lastIndexOf(10);
    if (last < 0) {
      if (buf.length > this.maxLine) this.skipping = buf.length;
      else if (buf.length) this.carry = Buffer.from(buf);
      return;
    }
    if (last + 1 < buf.length) {
      const rest = buf.subarray(last + 1);
      if (rest.length > this.maxLine) this.skipping = rest.length;
      else this.carry = Buffer.from(rest);
    }
    emit({ body: buf.subarray(0, last + 1) });
  }

  /** The input ended: what is left, if anything. */
  end(emit: (c: Cut) => void): void {
    if (this.skipping) emit({ overlong: this.skipping });
    else if (this.carry) emit({ body: this.carry.subarray(this.atStart && !this.keepBom ? bomLength(this.carry) : 0) });
    this.skipping = 0;
    this.carry = null;
  }
}

export async function* cutLines(chunks: AsyncIterable<Buffer | string>, maxLine: number): AsyncGenerator<Cut> {
  const cutter = new LineCutter(maxLine);
  const cuts: Cut[] = [];
  const emit = (c: Cut) => { cuts.push(c); };
  for await (const chunk of chunks) {
    cutter.push(chunk, emit);
    while (cuts.length) yield cuts.shift()!;
  }
  cutter.end(emit);
  while (cuts.length) yield cuts.shift()!;
}

/** Line ends in b. */
export function countLines(b: Uint8Array): number {
  let n = 0;
  for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) n++;
  return n;
}
