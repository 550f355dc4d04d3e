// ct-record's input as whole lines, without parsing it: the bytes are cut
// by src/lines/cut.ts, the one cutter every reader uses, kept as they came
// (a byte order mark too), and handed on as views of the chunks read (only
// a line that two chunks share is copied). Lines are counted so that an
// over-long line can be named; one longer than the bound is reported and
// skipped, whether it spans chunks (the cutter never holds it) or lies
// within one, so memory stays bounded.
import { LineCutter as Cutter, countLines, type Cut } from '../lines/cut.js';

export class LineCutter {
  private readonly cutter: Cutter;
  private out: Buffer[] = [];
  private readonly onCut = (c: Cut) => {
    if (c.body) this.body(c.body);
    else this.tooLong(++this.lines, c.overlong);
  };
  /** Line ends seen: the number of the last complete line. */
  lines = 0;
  /** Over-long lines skipped. */
  skipped = 0;

  constructor(private readonly maxLine: number, private readonly onTooLong: (lineNo: number, length: number) => void) {
    this.cutter = new Cutter(maxLine, { keepBom: true });
  }

  /** Bytes of an incomplete last line held. */
  get pending(): number {
    return this.cutter.pending;
  }

  /** The complete lines of `chunk` (with what came before them), as buffers ending in `\n`. */
  cut(chunk: Buffer): Buffer[] {
    this.cutter.push(chunk, this.onCut);
    return this.take();
  }

  /** At the end of input: a last line without `\n` gets one. */
  finish(): Buffer[] {
    this.cutter.end(this.onCut);
    const out = this.take();
    if (out.length) {
      // Only a last line without its line end is left at the end.
      this.lines++;
      out.push(NEWLINE);
    }
    return out;
  }

  private take(): Buffer[] {
    const out = this.out;
    this.out = [];
    return out;
  }

  /** A run of whole lines: passed on, but for any line in it longer than the bound. */
  private body(b: Buffer): void {
    const max = this.maxLine;
    // Only a run longer than the bound can hold a whole over-long line.
    if (b.length <= max + 1) {
      this.out.push(b);
      this.lines += countLines(b);
      return;
    }
    let seg = 0;
    let start = 0;
    for (let nl = b.indexOf(10); nl >= 0; nl = b.indexOf(10, start)) {
      this.lines++;
      if (nl - start > max) {
        this.tooLong(this.lines, nl - start);
        if (start > seg) this.out.push(b.subarray(seg, start));
        seg = nl + 1;
      }
      start = nl + 1;
    }
    if (b.length > seg) this.out.push(b.subarray(seg));
  }

  private tooLong(no: number, length: number): void {
    this.skipped++;
    this.onTooLong(no, length);
  }
}

const NEWLINE = Buffer.from('\n');
