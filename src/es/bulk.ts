// The _bulk request and its response, following the Elasticsearch reference
// (docs-bulk.html): an NDJSON body of action/metadata line + source line
// pairs, ending in "\n"; a response `{"took","errors","items":[...]}` whose
// items are in request order, each `{"<op>":{"_index","_id","status",
// "result"|"error"}}`. OpenSearch's _bulk is the same API.
//
// This module owns batching by bytes and the reading of results; it does no
// I/O and keeps no timers (the shipper decides when to send).

export type OpType = 'index' | 'create';

export interface BulkItem {
  /** The buffer of the batch it was written into. */
  buf: Buffer;
  /** Its part of the body is buf[start, end): action line and source, each `\n`-terminated. */
  start: number;
  /** Where the source starts in buf. */
  sourceAt: number;
  end: number;
  /** Input line number, for messages and dead letters. */
  line: number;
}

/** `_id` values are base64url (doc-id.ts), so they need no escaping; index names are escaped anyway. */
export function actionLine(op: OpType, index: string, id: string): string {
  return `{"${op}":{"_index":${JSON.stringify(index)},"_id":${JSON.stringify(id)}}}`;
}

/** Index and _id of an item, read back from its action line (only messages and dead letters need them). */
export function itemAction(item: BulkItem): { index: string; id: string } {
  try {
    const a = JSON.parse(item.buf.toString('utf8', item.start, item.sourceAt - 1));
    const m = a && (a.index ?? a.create);
    return { index: String(m?._index ?? ''), id: String(m?._id ?? '') };
  } catch {
    return { index: '', id: '' };
  }
}

/** The source line of an item, as text. */
export function itemSource(item: BulkItem): string {
  return item.buf.toString('utf8', item.sourceAt, item.end - 1);
}

/**
 * A batch being filled: items are written as UTF-8 into one buffer, which is
 * then the request body as it is. Bytes, not strings: a batch is megabytes,
 * and held as JS strings it kept the garbage collector busy. The buffer can
 * be one used before (the shipper keeps a few), so nothing is allocated per
 * document beyond its small item record.
 */
export class Batch {
  readonly items: BulkItem[] = [];
  private used = 0;

  constructor(readonly op: OpType, public buf: Buffer) {}

  get bytes(): number {
    return this.used;
  }

  get length(): number {
    return this.items.length;
  }

  /**
   * Append one document. Returns false when it does not fit in what is left
   * (the caller sends this batch and starts another); an empty batch always
   * takes it, growing if it must.
   */
  add(index: string, id: string, source: string, line: number): boolean {
    const action = actionLine(this.op, index, id);
    const room = this.buf.length - this.used;
    // UTF-8 takes at most 3 bytes per UTF-16 unit: measure only when that bound does not fit.
    if ((action.length + source.length) * 3 + 2 > room) {
      const need = Buffer.byteLength(action) + Buffer.byteLength(source) + 2;
      if (need > room) {
        if (this.items.length) return false;
        this.buf = Buffer.allocUnsafe(need);
      }
    }
    const buf = this.buf;
    const start = this.used;
    let at = start + buf.write(action, start);
    buf[at++] = 10;
    const sourceAt = at;
    at += buf.write(source, at);
    buf[at++] = 10;
    this.used = at;
    this.items.push({ buf, start, sourceAt, end: at, line });
    return true;
  }

  /**
   * Append an item already encoded elsewhere (by mapper.ts, maybe in a
   * worker): src[start, end) is its action and source lines, the source
   * starting at sourceAt. Same contract as add().
   */
  addEncoded(src: Buffer, start: number, sourceAt: number, end: number, line: number): boolean {
    const n = end - start;
    if (this.used + n > this.buf.length) {
      if (this.items.length) return false;
      this.buf = Buffer.allocUnsafe(n);
    }
    const at = this.used;
    src.copy(this.buf, at, start, end);
    this.used = at + n;
    this.items.push({ buf: this.buf, start: at, sourceAt: at + (sourceAt - start), end: at + n, line });
    return true;
  }

  /** The request body for all items. */
  body(): Buffer {
    return this.buf.subarray(0, this.used);
  }
}

/** The request body for some items (a retry of part of a batch). */
export function bulkBody(items: readonly BulkItem[]): Buffer {
  let n = 0;
  for (const it of items) n += it.end - it.start;
  const body = Buffer.allocUnsafe(n);
  let at = 0;
  for (const it of items) at += it.buf.copy(body, at, it.start, it.end);
  return body;
}

export interface EsError {
  type: string;
  reason: string;
  [k: string]: unknown;
}

/**
 * What became of one item:
 * - `created`, `updated`: indexed (updated: a document with this `_id` was
 *   already there, i.e. a retry or a replay, and was overwritten by itself);
 * - `exists`: op_type create refused as a version conflict: it is already
 *   indexed, which counts as indexed;
 * - `retry`: refused for now (429 es_rejected_execution_exception, or a
 *   transient 502/503/504 such as unavailable shards): send again later;
 * - `rejected`: refused for good (mapping error, bad index name, ...): dead letter.
 */
export type Outcome = 'created' | 'updated' | 'exists' | 'retry' | 'rejected';

export interface ItemResult {
  outcome: Outcome;
  status: number;
  error?: EsError;
}

/** Per-item statuses worth sending again: overload and temporarily missing shards. */
const RETRY_ITEM = new Set([429, 502, 503, 504]);

export class BadResponse extends Error {}

function asError(e: unknown): EsError {
  if (e && typeof e === 'object') {
    const o = e as Record<string, unknown>;
    return { ...o, type: String(o.type ?? 'unknown'), reason: String(o.reason ?? '') } as EsError;
  }
  return { type: 'unknown', reason: String(e) };
}

/**
 * Read a _bulk response for `count` items. Throws BadResponse when it is not
 * one (truncated, or a proxy's page): the caller retries the whole request.
 */
export function readBulkResponse(text: string, count: number, op: OpType): ItemResult[] {
  let r: any;
  try {
    r = JSON.parse(text);
  } catch {
    throw new BadResponse(`the _bulk response is not JSON (${text.length} bytes: ${JSON.stringify(text.slice(0, 80))})`);
  }
  if (!r || !Array.isArray(r.items)) throw new BadResponse('the _bulk response has no "items"');
  if (r.items.length !== count) throw new BadResponse(`the _bulk response has ${r.items.length} items for ${count} sent`);
  const out: ItemResult[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const wrap = r.items[i];
    const it = wrap && typeof wrap === 'object' ? (wrap[op] ?? Object.values(wrap)[0]) : undefined;
    if (!it || typeof it.status !== 'number') throw new BadResponse(`item ${i} of the _bulk response has no status`);
    const status: number = it.status;
    if (status >= 200 && status < 300) {
      out[i] = { outcome: it.result === 'created' || status === 201 ? 'created' : 'updated', status };
    } else {
      const error = asError(it.error);
      let outcome: Outcome = 'rejected';
      if (status === 409 && op === 'create' && error.type === 'version_conflict_engine_exception') outcome = 'exists';
      else if (RETRY_ITEM.has(status)) outcome = 'retry';
      out[i] = { outcome, status, error };
    }
  }
  return out;
}

/** The `error` of a whole-request failure body (`{"error":{...},"status":N}`), as one line. */
export function errorSummary(body: string): string {
  try {
    const r = JSON.parse(body);
    const e = r && r.error;
    if (typeof e === 'string') return e;
    if (e && typeof e === 'object') return `${e.type ?? 'error'}: ${e.reason ?? ''}`.trim();
  } catch {
    /* not JSON: show the start of it */
  }
  const s = body.replace(/\s+/g, ' ').trim();
  return s.length > 120 ? s.slice(0, 120) + '...' : s;
}
