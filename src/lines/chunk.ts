// One chunk of NDJSON bytes through a line processor: split at `\n` (a
// trailing `\r` removed, blank lines skipped but counted), decode each line,
// and collect the output as bytes. A processor answers `true` to pass the
// line through byte for byte (ct-filter), a string to write that text
// (ct-format), bytes to write (ct-flows' records, made as bytes), or null
// for nothing. Used the same way in the main thread and in worker threads
// (see run.ts). No I/O.

import { isAscii, isUtf8 } from 'node:buffer';
import { notText } from '../ndjson.js';

export interface Diag {
  /** bad: a skipped line (counted); warn: about a line, said once per `once` key; note: said as it is. */
  kind: 'bad' | 'warn' | 'note';
  message: string;
  once?: string;
  /** Line number within the chunk (1-based), filled in by processChunk. */
  no?: number;
}

export type Report = (d: Diag) => void;

/**
 * What a processor makes of a line: pass it (true), write this text or
 * these bytes (copied at once: the processor may use their memory again
 * for its next answer), or nothing (null).
 */
export type LineResult = true | string | Uint8Array | null;

export interface LineProcessor {
  /** `no` is the line's number within the chunk (1-based), for a processor that keeps its own account of lines (ct-es's items). */
  line(text: string, report: Report, no?: number): LineResult;
  /**
   * Optional, tried first on a line that starts with `{` (and is UTF-8):
   * the same answer from the line's bytes buf[start, end), without
   * decoding it, or undefined to have line() take it. It must not keep `buf`.
   */
  lineBytes?(buf: Buffer, start: number, end: number, report: Report): LineResult | undefined;
  /**
   * Optional, for a processor that gathers its lines' output as bytes itself
   * (ct-format): what it wrote since the last call, taken at the end of the
   * chunk. Its line() and lineBytes() then answer null.
   */
  flush?(): Buffer;
}

export interface ChunkResult {
  out: Buffer;
  /** Lines in the chunk, blank ones included (for line numbers). */
  lines: number;
  bad: number;
  diags: Diag[];
}

/** What a line longer than maxLine is reported as, by default. */
function longerThan(maxLine: number, length: number): string {
  return `line longer than ${maxLine} bytes (${length}), skipped`;
}

const NO_OUTPUT = Buffer.alloc(0);

/**
 * Where a chunk's output goes: `true`, written over the input it replaces
 * (it never gets ahead of the line being read; when it would, it moves to a
 * buffer of its own), so bulk input costs no new memory; `false`, memory of
 * its own, taken when there is output; `'view'`, as false, but when the
 * output is a stretch of the input's bytes as they are (every line passed,
 * ct-filter's common case) it is a view of the input, not a copy: for a
 * caller that never uses the input's memory again.
 */
export type OutputMemory = boolean | 'view';

/**
 * Process one chunk, its output in memory as `inPlace` says. `tooLong`
 * words the report of a line longer than maxLine.
 */
export function processChunk(buf: Buffer, p: LineProcessor, maxLine: number, inPlace: OutputMemory = false, tooLong?: (maxLine: number, length: number) => string): ChunkResult {
  const len = buf.length;
  let out = inPlace === true ? Buffer.from(buf.buffer, buf.byteOffset, buf.buffer.byteLength - buf.byteOffset) : NO_OUTPUT;
  let shared = inPlace === true;
  // Lines passed as they are, one after the other in the input, are copied
  // as one stretch, buf[runFrom, runTo), when something else comes (or the
  // chunk ends): one copy a stretch instead of one a line.
  let runFrom = 0, runTo = 0;
  let pos = 0;
  let start = 0;
  let pending = ''; // text output, encoded in one go rather than line by line
  const diags: Diag[] = [];
  let no = 0, bad = 0;
  const report: Report = (d) => {
    d.no = no;
    if (d.kind === 'bad') bad++;
    diags.push(d);
  };
  /** Make room for n more bytes at pos; `limit` is how far the output may reach over the input. */
  const room = (n: number, limit: number) => {
    if (pos + n <= (shared ? Math.min(limit, out.length) : out.length)) return;
    // The first output of a chunk is about as long as its input (ct-filter's, passing most lines), rarely longer.
    const bigger = Buffer.allocUnsafeSlow(Math.max(out === NO_OUTPUT ? len + 4096 : out.length * 2, pos + n, 16384));
    if (pos) out.copy(bigger, 0, 0, pos);
    out = bigger;
    shared = false;
  };
  const flushRun = () => {
    const n = runTo - runFrom;
    // In place, the stretch may already be where it goes (nothing before it was dropped).
    if (!(shared && pos === runFrom)) {
      room(n, runTo);
      buf.copy(out, pos, runFrom, runTo);
    }
    pos += n;
    runFrom = runTo = 0;
  };
  const flush = (limit: number) => {
    // Three bytes a UTF-16 unit at most: room for that is nearly always
    // there, and the text is then encoded once, without counting its bytes first.
    const most = pending.length * 3;
    if (pos + most > (shared ? Math.min(limit, out.length) : out.length)) room(Buffer.byteLength(pending), limit);
    pos += out.write(pending, pos);
    pending = '';
  };
  // Bulk input is nearly always ASCII: then one decode for the chunk (ASCII
  // decoding is several times faster than UTF-8), string offsets are byte
  // offsets, and lines are cheap slices. Otherwise each line is decoded, as
  // are only the lines a processor that reads bytes hands to line().
  const bytes = p.lineBytes !== undefined;
  const ascii = !bytes && isAscii(buf);
  const all = ascii ? buf.toString('ascii') : '';
  // Lines that are not UTF-8 are skipped; each is checked only when the chunk as a whole is not.
  const utf8 = ascii || isAscii(buf) || isUtf8(buf);
  while (start < len) {
    const nl = ascii ? all.indexOf('\n', start) : buf.indexOf(10, start);
    const stop = nl < 0 ? len : nl;
    no++;
    let end = stop;
    if (end > start && buf[end - 1] === 13) end--;
    if (end - start > maxLine) {
      report({ kind: 'bad', message: (tooLong ?? longerThan)(maxLine, end - start) });
    } else if (end > start) {
      let r: LineResult | undefined;
      const why = utf8 ? null : notText(buf, start, end);
      if (why) {
        report({ kind: 'bad', message: why });
        r = null;
      } else {
        // lineBytes sees UTF-8 only, as line() does.
        r = bytes && buf[start] === 123 /* { */ ? p.lineBytes!(buf, start, end, report) : undefined;
        if (r === undefined) {
          const text = ascii ? all.slice(start, end) : buf.toString('utf8', start, end);
          r = text.charCodeAt(0) === 123 /* { */ || text.trim() !== '' ? p.line(text, report, no) : null;
        }
      }
      if (r === true) {
        if (pending) flush(start);
        if (end === stop && stop < len) {
          // The line and its \n as they are in the input: part of a stretch.
          if (runTo !== start) {
            if (runTo > runFrom) flushRun();
            runFrom = start;
          }
          runTo = stop + 1;
        } else {
          if (runTo > runFrom) flushRun();
          // In place, pos <= start: copy() moves overlapping bytes correctly.
          room(end - start + 1, stop + 1);
          buf.copy(out, pos, start, end);
          pos += end - start;
          out[pos++] = 10;
        }
      } else if (typeof r === 'string') {
        if (r) {
          if (runTo > runFrom) flushRun();
          pending += r;
        }
      } else if (r) {
        if (runTo > runFrom) flushRun();
        if (pending) flush(start);
        room(r.length, stop + 1);
        out.set(r, pos);
        pos += r.length;
      }
    }
    start = stop + 1;
  }
  const own = p.flush?.();
  if (runTo > runFrom) {
    // Nothing but one stretch of the input's bytes: a view of them, when the caller allows it.
    if (inPlace === 'view' && out === NO_OUTPUT && !own?.length) return { out: buf.subarray(runFrom, runTo), lines: no, bad, diags };
    flushRun();
  }
  if (pending) flush(Infinity);
  if (own?.length) {
    room(own.length, Infinity);
    pos += own.copy(out, pos);
  }
  return { out: pos === 0 && out === NO_OUTPUT ? Buffer.alloc(0) : out.subarray(0, pos), lines: no, bad, diags };
}
