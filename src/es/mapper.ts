// From input bytes to bulk items: each line of a chunk becomes an action line
// and a document (ECS or raw, with its index from the event's date and its
// deterministic _id), written as UTF-8 into one output buffer, with a small
// table of where each item starts and which input line it came from. The
// lines are cut, numbered and checked by the one line engine
// (src/lines/chunk.ts). The same function runs in this thread and in worker
// threads (workers.ts), so everything it returns is transferable: a Buffer
// and an Int32Array.
//
// No I/O, no `process`; options are plain data (they cross to workers).
import { parseObject } from '../ndjson.js';
import { processChunk, type LineProcessor, type Report } from '../lines/chunk.js';
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

/** What a line too long to map is reported as (ct-es's words since its first version). */
const tooLong = (_max: number, length: number) => `line of ${length} bytes is too long, skipped`;

/**
 * The bulk items of a chunk's lines, as the line processor that
 * src/lines/chunk.ts drives: it cuts the lines, numbers them, skips blank
 * ones and reports those that are not text or too long, as for every
 * stream command; each line here becomes an action line and a document.
 */
class Items implements LineProcessor {
  out: Buffer;
  pos = 0;
  meta = new Int32Array(256);
  items = 0;

  constructor(private readonly map: (text: string) => LineResult, private readonly op: OpType, size: number) {
    // ECS documents are about 2.5 times their event; grown when that is not enough. Sized by the run:
    // a run of one line (the end of a line the chunk before began, see cut.ts) takes little.
    this.out = Buffer.allocUnsafeSlow(Math.max(4096, size * 3));
  }

  line(text: string, report: Report, no = 0): null {
    const r = this.map(text);
    if (typeof r === 'string') {
      report({ kind: 'bad', message: r });
      return null;
    }
    const action = actionLine(this.op, r.index, r.id);
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    const need = (action.length + r.source.length) * 3 + 2;
    let out = this.out;
    let pos = this.pos;
    if (pos + need > out.length) {
      const bigger = Buffer.allocUnsafeSlow(Math.max(out.length * 2, pos + need));
      out.copy(bigger, 0, 0, pos);
      this.out = out = bigger;
    }
    const k = this.items;
    if ((k + 1) * 4 > this.meta.length) {
      const m = new Int32Array(this.meta.length * 2);
      m.set(this.meta);
      this.meta = m;
    }
    const at = pos;
    pos += out.write(action, pos);
    out[pos++] = 10;
    const sourceAt = pos;
    pos += out.write(r.source, pos);
    out[pos++] = 10;
    const meta = this.meta;
    meta[k * 4] = at;
    meta[k * 4 + 1] = sourceAt;
    meta[k * 4 + 2] = pos;
    meta[k * 4 + 3] = no;
    this.items = k + 1;
    this.pos = pos;
    return null;
  }
}

/**
 * Map the complete lines of `buf` (it must end at a line end, or be the
 * input's last bytes). Over-long lines are reported, not mapped.
 */
export function mapChunk(buf: Buffer, map: (text: string) => LineResult, o: MapperOptions): MappedChunk {
  const items = new Items(map, o.op, buf.length);
  const r = processChunk(buf, items, o.maxLine, false, tooLong);
  const bad: BadLine[] = r.diags.map((d) => ({ no: d.no!, message: d.message }));
  return { out: items.out.subarray(0, items.pos), meta: items.meta, items: items.items, lines: r.lines, bad };
}
