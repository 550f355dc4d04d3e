// Cutting a byte stream into runs of whole lines, the one place every line
// reader does it (runLines for ct-filter, ct-format, ct-flows, ct-top;
// ct-es's mapper; LineSplitter for ct-attribute and ct-syslog). A run ends
// at a line end, so it can be processed anywhere (this thread or a worker)
// and line numbers are counted within it. A line longer than maxLine is
// never held whole: its bytes are counted and dropped, and it is reported
// by length where it stands. A UTF-8 byte order mark at the very start is
// dropped (RFC 8259 section 8.1). Bytes after the last line end form the
// last run.

/** The UTF-8 byte order mark, which a source may start with (RFC 8259 section 8.1 lets a parser ignore it). */
export function bomLength(b: Buffer): number {
  return b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? 3 : 0;
}

export type Cut =
  /** Whole lines, each ending in `\n` (the last run of the input may lack its final one). */
  | { body: Buffer; overlong?: undefined }
  /** A line of this many bytes (at least), skipped. */
  | { overlong: number; body?: undefined };

/** The cutter's state between chunks: push() each chunk in order, then end(). */
export class LineCutter {
  private carry: Buffer | null = null;
  private skipping = 0; // bytes of an over-long line being dropped, 0 when not
  private atStart = true; // a byte order mark is dropped there

  constructor(private readonly maxLine: number) {}

  /** The runs (at most two) that this chunk completes, handed to `emit` in order. */
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
    if (this.carry) buf = Buffer.concat([this.carry, buf]);
    this.carry = null;
    // Past the first line end, or three bytes, a byte order mark can no longer come.
    if (this.atStart && (buf.length >= 3 || buf.indexOf(10) >= 0)) {
      this.atStart = false;
      buf = buf.subarray(bomLength(buf));
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
    else if (this.carry) emit({ body: this.carry.subarray(this.atStart ? bomLength(this.carry) : 0) });
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
