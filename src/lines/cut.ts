// Cutting a byte stream into runs of whole lines, the one place every bulk
// reader does it (runLines for ct-filter, ct-format, ct-flows; ct-es's
// mapper). A run ends at a line end, so it can be processed anywhere (this
// thread or a worker) and line numbers are counted within it. A line longer
// than maxLine is never held whole: its bytes are counted and dropped, and
// it is reported by length where it stands. A UTF-8 byte order mark at the
// very start is dropped (RFC 8259 section 8.1). Bytes after the last line
// end form the last run.

import { bomLength } from '../ndjson.js';

export type Cut =
  /** Whole lines, each ending in `\n` (the last run of the input may lack its final one). */
  | { body: Buffer; overlong?: undefined }
  /** A line of this many bytes (at least), skipped. */
  | { overlong: number; body?: undefined };

export async function* cutLines(chunks: AsyncIterable<Buffer | string>, maxLine: number): AsyncGenerator<Cut> {
  let carry: Buffer | null = null;
  let skipping = 0; // bytes of an over-long line being dropped, 0 when not
  let atStart = true; // a byte order mark is dropped there
  for await (const chunk of chunks) {
    let buf: Buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (skipping) {
      const nl = buf.indexOf(10);
      if (nl < 0) {
        skipping += buf.length;
        continue;
      }
      yield { overlong: skipping + nl };
      skipping = 0;
      buf = buf.subarray(nl + 1);
    }
    if (carry) buf = Buffer.concat([carry, buf]);
    carry = null;
    if (atStart && buf.length >= 3) {
      atStart = false;
      buf = buf.subarray(bomLength(buf));
    }
    const last = buf.lastIndexOf(10);
    if (last < 0) {
      if (buf.length > maxLine) skipping = buf.length;
      else carry = Buffer.from(buf);
      continue;
    }
    if (last + 1 < buf.length) {
      const rest = buf.subarray(last + 1);
      if (rest.length > maxLine) skipping = rest.length;
      else carry = Buffer.from(rest);
    }
    yield { body: buf.subarray(0, last + 1) };
  }
  if (skipping) yield { overlong: skipping };
  else if (carry) yield { body: carry.subarray(atStart ? bomLength(carry) : 0) };
}
