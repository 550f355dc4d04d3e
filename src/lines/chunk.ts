// One chunk of NDJSON bytes through a line processor: split at `\n` (a
// trailing `\r` removed, blank lines skipped but counted), decode each line,
// and collect the output as bytes. A processor answers `true` to pass the
// line through byte for byte (ct-filter), a string to write that text
// (ct-format), or null for nothing. Used the same way in the main thread and
// in worker threads (see run.ts). No I/O.

export interface Diag {
  /** bad: a skipped line (counted); warn: about a line, said once per `once` key; note: said as it is. */
  kind: 'bad' | 'warn' | 'note';
  message: string;
  once?: string;
  /** Line number within the chunk (1-based), filled in by processChunk. */
  no?: number;
}

export type Report = (d: Diag) => void;

export interface LineProcessor {
  line(text: string, report: Report): true | string | null;
}

export interface ChunkResult {
  out: Buffer;
  /** Lines in the chunk, blank ones included (for line numbers). */
  lines: number;
  bad: number;
  diags: Diag[];
}

export function processChunk(buf: Buffer, p: LineProcessor, maxLine: number): ChunkResult {
  let out = Buffer.allocUnsafeSlow(Math.max(buf.length + 4096, 16384));
  let pos = 0;
  const diags: Diag[] = [];
  let no = 0, bad = 0;
  const report: Report = (d) => {
    d.no = no;
    if (d.kind === 'bad') bad++;
    diags.push(d);
  };
  const room = (n: number) => {
    if (pos + n <= out.length) return;
    const bigger = Buffer.allocUnsafeSlow(Math.max(out.length * 2, pos + n));
    out.copy(bigger, 0, 0, pos);
    out = bigger;
  };
  const len = buf.length;
  let start = 0;
  while (start < len) {
    const nl = buf.indexOf(10, start);
    const stop = nl < 0 ? len : nl;
    no++;
    let end = stop;
    if (end > start && buf[end - 1] === 13) end--;
    if (end - start > maxLine) {
      report({ kind: 'bad', message: `line longer than ${maxLine} bytes (${end - start}), skipped` });
    } else if (end > start) {
      const text = buf.toString('utf8', start, end);
      if (text.charCodeAt(0) === 123 /* { */ || text.trim() !== '') {
        const r = p.line(text, report);
        if (r === true) {
          room(end - start + 1);
          buf.copy(out, pos, start, end);
          pos += end - start;
          out[pos++] = 10;
        } else if (r) {
          room(r.length * 3);
          pos += out.write(r, pos);
        }
      }
    }
    start = stop + 1;
  }
  return { out: out.subarray(0, pos), lines: no, bad, diags };
}
