// From input bytes to bulk items: each line of a chunk becomes an action line
// and a document (ECS or raw, with its index from the event's date and its
// deterministic _id), written as UTF-8 into one output buffer, with a small
// table of where each item starts and which input line it came from. The
// same function runs in this thread and in worker threads (workers.ts), so
// everything it returns is transferable: a Buffer and an Int32Array.
//
// No I/O, no `process`; options are plain data (they cross to workers).
import { isAscii, isUtf8 } from 'node:buffer';
import { notText, parseObject } from '../ndjson.js';
import { compilePattern, type IndexPattern } from './index-name.js';
import { documentId } from './doc-id.js';
import { toEcsJson } from './ecs.js';
import { actionLine, type OpType } from './bulk.js';

export interface MapperOptions {
  op: OpType;
  raw: boolean;
  /** Index pattern (with date parts), or null with a data stream. */
  index: string | null;
  dataStream: string | null;
  maxLine: number;
}

export interface BadLine {
  /** Line number within the chunk, 1-based. */
  no: number;
  message: string;
}

/** A mapped chunk. Item k spans out[meta[4k], meta[4k+2]), its source starts at meta[4k+1], from chunk line meta[4k+3]. */
export interface MappedChunk {
  out: Buffer;
  meta: Int32Array;
  items: number;
  /** Lines in the chunk, blank ones included (for numbering the next chunk). */
  lines: number;
  bad: BadLine[];
}

const TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

export type LineResult = { index: string; id: string; source: string } | string;

/** The per-line mapping: a document, or why the line is skipped. */
export function lineMapper(o: MapperOptions): (text: string) => LineResult {
  const pattern: IndexPattern | null = o.index !== null ? compilePattern(o.index) : null;
  const ds = o.dataStream;
  return (text) => {
    let obj: Record<string, any>;
    try {
      obj = parseObject(text);
    } catch (e) {
      return (e as Error).message;
    }
    const ts = obj.ts;
    if (typeof ts !== 'string' || !TS.test(ts)) return `"ts" is ${ts === undefined ? 'missing' : 'not an ISO 8601 time'}, so the record has no date and no index`;
    const index = ds ?? pattern!.format(ts);
    if (index === null) return `"ts" ${JSON.stringify(ts)} is not a valid time`;
    const id = documentId(obj, text);
    let source: string;
    if (!o.raw) source = toEcsJson(obj, { id }, text);
    else if (ds !== null && !('@timestamp' in obj)) source = `{"@timestamp":"${ts}",` + text.trimStart().slice(1);
    else source = text;
    return { index, id, source };
  };
}

/**
 * Map the complete lines of `buf` (it must end at a line end, or be the
 * input's last bytes). Over-long lines are reported, not mapped.
 */
export function mapChunk(buf: Buffer, map: (text: string) => LineResult, o: MapperOptions): MappedChunk {
  // ECS documents are about 2.5 times their event; grown when that is not enough.
  let out = Buffer.allocUnsafeSlow(Math.max(65536, buf.length * 3));
  let pos = 0;
  let meta = new Int32Array(256);
  let items = 0;
  const bad: BadLine[] = [];
  const all = buf.toString('utf8');
  // When the chunk is ASCII, string offsets are byte offsets: lines are slices.
  const ascii = all.length === buf.length && isAscii(buf);
  // Lines that are not UTF-8 are skipped; each is checked only when the chunk as a whole is not.
  const utf8 = ascii || isUtf8(buf);
  let no = 0;
  let start = 0;
  while (start < buf.length) {
    const nl = ascii ? all.indexOf('\n', start) : buf.indexOf(10, start);
    const stop = nl < 0 ? buf.length : nl;
    no++;
    let end = stop;
    if (end > start && buf[end - 1] === 13) end--;
    if (end - start > o.maxLine) {
      bad.push({ no, message: `line of ${end - start} bytes is too long, skipped` });
    } else if (end > start && !utf8 && notText(buf, start, end)) {
      bad.push({ no, message: notText(buf, start, end)! });
    } else if (end > start) {
      const text = ascii ? all.slice(start, end) : buf.toString('utf8', start, end);
      if (text.trim() !== '') {
        const r = map(text);
        if (typeof r === 'string') {
          bad.push({ no, message: r });
        } else {
          const action = actionLine(o.op, r.index, r.id);
          // UTF-8 takes at most 3 bytes per UTF-16 unit.
          const need = (action.length + r.source.length) * 3 + 2;
          if (pos + need > out.length) {
            const bigger = Buffer.allocUnsafeSlow(Math.max(out.length * 2, pos + need));
            out.copy(bigger, 0, 0, pos);
            out = bigger;
          }
          if ((items + 1) * 4 > meta.length) {
            const m = new Int32Array(meta.length * 2);
            m.set(meta);
            meta = m;
          }
          const at = pos;
          pos += out.write(action, pos);
          out[pos++] = 10;
          const sourceAt = pos;
          pos += out.write(r.source, pos);
          out[pos++] = 10;
          meta[items * 4] = at;
          meta[items * 4 + 1] = sourceAt;
          meta[items * 4 + 2] = pos;
          meta[items * 4 + 3] = no;
          items++;
        }
      }
    }
    start = stop + 1;
  }
  return { out: out.subarray(0, pos), meta, items, lines: no, bad };
}
