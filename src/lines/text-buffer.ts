// Output text gathered into one Buffer, line by line, as UTF-8. A stage
// that appends thousands of lines to one string makes a rope, which is
// flattened and encoded again when written: several times the cost of
// encoding each line into a buffer as it comes (bench/attribute.bench.js,
// cached part). No I/O.

export class TextBuffer {
  private buf: Buffer;
  private pos = 0;

  /** What the next buffer starts with: a little more than the last output took, so that it rarely grows. */
  private size: number;

  constructor(private readonly least = 1 << 16) {
    this.size = least;
    this.buf = Buffer.allocUnsafeSlow(least);
  }

  /** Append `s` (UTF-8). */
  add(s: string): void {
    // A UTF-16 unit takes three UTF-8 bytes at most.
    if (s.length * 3 > this.buf.length - this.pos) this.grow(s.length * 3);
    this.pos += this.buf.write(s, this.pos);
  }

  /** Append bytes already encoded (ct-attribute's owner JSON, made once per owner). */
  addBytes(b: Buffer): void {
    if (b.length > this.buf.length - this.pos) this.grow(b.length);
    this.pos += b.copy(this.buf, this.pos);
  }

  get length(): number {
    return this.pos;
  }

  /** What was added since the last take(); the buffer is the caller's. */
  take(): Buffer {
    if (this.pos * 4 < this.buf.length) {
      // Little text (a live stream's few lines): a copy, and the buffer is used again.
      const small = Buffer.allocUnsafe(this.pos);
      this.buf.copy(small, 0, 0, this.pos);
      this.pos = 0;
      return small;
    }
    const out = this.buf.subarray(0, this.pos);
    this.size = Math.max(this.least, Math.ceil(this.pos * 1.25));
    this.buf = Buffer.allocUnsafeSlow(this.size);
    this.pos = 0;
    return out;
  }

  private grow(n: number): void {
    const bigger = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }
}
