// Cutting ct-record's input into whole lines without parsing it: each chunk
// is split at its last newline, the rest is kept until its newline comes.
// The bytes are handed on as slices of the chunks read (no copies). Lines
// are counted so that an over-long line can be named; one longer than the
// bound is reported and skipped, so memory stays bounded.

export class LineCutter {
  private tail: Buffer[] = [];
  private tailLen = 0;
  private skipping = false;
  /** Newlines seen: the number of the last complete line. */
  lines = 0;
  /** Over-long lines skipped. */
  skipped = 0;

  constructor(private maxLine: number, private onTooLong: (lineNo: number, length: number) => void) {}

  /** Bytes of an incomplete last line held. */
  get pending(): number {
    return this.tailLen;
  }

  /** The complete lines of `chunk` (with what came before them), as slices ending in `\n`. */
  cut(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let nl = chunk.indexOf(10);
    if (nl < 0) {
      if (!this.skipping) this.hold(chunk);
      return out;
    }
    this.lines++;
    let seg: number;
    if (this.skipping || this.tailLen + nl > this.maxLine) {
      if (!this.skipping) this.tooLong(this.lines, this.tailLen + nl);
      this.skipping = false;
      seg = nl + 1;
    } else {
      for (const t of this.tail) out.push(t);
      seg = 0;
    }
    this.tail = [];
    this.tailLen = 0;
    let start = nl + 1;
    const max = this.maxLine;
    if (chunk.length - start > max) {
      // Only a chunk longer than the bound can hold a whole over-long line.
      for (nl = chunk.indexOf(10, start); nl >= 0; nl = chunk.indexOf(10, start)) {
        this.lines++;
        if (nl - start > max) {
          this.tooLong(this.lines, nl - start);
          if (start > seg) out.push(chunk.subarray(seg, start));
          seg = nl + 1;
        }
        start = nl + 1;
      }
    } else {
      for (nl = chunk.indexOf(10, start); nl >= 0; nl = chunk.indexOf(10, nl + 1)) {
        this.lines++;
        start = nl + 1;
      }
    }
    if (start > seg) out.push(chunk.subarray(seg, start));
    if (start < chunk.length) this.hold(chunk.subarray(start));
    return out;
  }

  /** At the end of input: a last line without `\n` gets one. */
  finish(): Buffer[] {
    if (this.skipping || this.tailLen === 0) {
      this.skipping = false;
      return [];
    }
    this.lines++;
    const out = [...this.tail, Buffer.from('\n')];
    this.tail = [];
    this.tailLen = 0;
    return out;
  }

  private hold(b: Buffer): void {
    this.tail.push(b);
    this.tailLen += b.length;
    if (this.tailLen > this.maxLine) {
      this.tooLong(this.lines + 1, this.tailLen);
      this.skipping = true;
      this.tail = [];
      this.tailLen = 0;
    }
  }

  private tooLong(no: number, length: number): void {
    this.skipped++;
    this.onTooLong(no, length);
  }
}
