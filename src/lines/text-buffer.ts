// Output text gathered into one Buffer, line by line, as UTF-8. A stage
// that appends thousands of lines to one string makes a rope, which is
// flattened and encoded again when written: several times the cost of
// encoding each line into a buffer as it comes (bench/attribute.bench.js,
// cached part). A buffer taken and written out may be given back
// (recycle) and is then filled again: every buffer made is memory outside
// V8's heap that V8 counts towards its next full collection, and at a
// flood's pace a new one per batch set one off every few megabytes
// written. No I/O.

export class TextBuffer {
  private buf: Buffer;
  private pos = 0;

  /** What the next buffer starts with: a little more than the last output took, so that it rarely grows. */
  private size: number;
  /** Buffers taken and given back (recycle), to be filled again. */
  private spare: Buffer[] = [];
  /** The memory of the buffers handed out whole by take(): only those are taken back. */
  private lent = new WeakSet<ArrayBuffer>();

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
    // set(), not b.copy(): copy() makes a view of the source for each call.
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /**
   * Append s[from, to), a string whose characters are bytes (0-255: text
   * already encoded as UTF-8, or ASCII): copied as they are, no encoding.
   * A whole string or its start costs no new string.
   */
  addLatin1(s: string, from = 0, to = s.length): void {
    const n = to - from;
    if (n > this.buf.length - this.pos) this.grow(n);
    if (n < 24) {
      // Short ones by hand: the native write costs more than its characters below about 24 of them.
      const t = this.buf;
      let p = this.pos;
      for (let i = from; i < to; i++) t[p++] = s.charCodeAt(i);
      this.pos = p;
    } else this.pos += latin1Write.call(this.buf, from === 0 ? s : s.slice(from, to), this.pos, n);
  }

  /** Append b[start, end). */
  addRange(b: Uint8Array, start: number, end: number): void {
    const n = end - start;
    if (n > this.buf.length - this.pos) this.grow(n);
    const t = this.buf;
    let p = this.pos;
    // Short runs by hand: a native copy costs more than its bytes below about 32 of them.
    if (n < 32) for (let i = start; i < end; i++) t[p++] = b[i];
    else {
      t.set(b.subarray(start, end), p);
      p += n;
    }
    this.pos = p;
  }

  /** Append one byte. */
  addByte(c: number): void {
    if (this.pos >= this.buf.length) this.grow(1);
    this.buf[this.pos++] = c;
  }

  /**
   * What was added since the last take() or view(), as a view of this
   * buffer, valid only until the next add: for a caller that copies it at
   * once. The buffer is used again.
   */
  view(): Buffer {
    const v = this.buf.subarray(0, this.pos);
    this.pos = 0;
    return v;
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
    this.lent.add(out.buffer as ArrayBuffer);
    this.size = Math.max(this.least, Math.ceil(this.pos * 1.25));
    this.buf = this.fresh(this.size);
    this.pos = 0;
    return out;
  }

  /**
   * Give back a buffer take() returned, once nothing refers to its bytes
   * any more (it was written out): it is filled again by a later batch.
   * Others are ignored.
   */
  recycle(b: Buffer): void {
    const ab = b.buffer as ArrayBuffer;
    if (!this.lent.has(ab) || this.spare.length >= 4) return;
    this.lent.delete(ab);
    this.spare.push(Buffer.from(ab));
  }

  /** A buffer of at least `n` bytes: a spare one if one is big enough. */
  private fresh(n: number): Buffer {
    for (let i = this.spare.length - 1; i >= 0; i--) {
      const b = this.spare[i];
      if (b.length >= n) {
        this.spare.splice(i, 1);
        return b;
      }
    }
    return Buffer.allocUnsafeSlow(n);
  }

  private grow(n: number): void {
    const bigger = this.fresh(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }
}

// Buffer's own method under write(s, at, n, 'latin1'), without write()'s argument handling.
const latin1Write: (this: Buffer, s: string, at: number, n: number) => number =
  (Buffer.prototype as unknown as { latin1Write?: (this: Buffer, s: string, at: number, n: number) => number }).latin1Write ??
  function (this: Buffer, s: string, at: number, n: number) { return this.write(s, at, n, 'latin1'); };
