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
  /** Target index or data stream. */
  index: string;
  /** Deterministic `_id` (doc-id.ts). */
  id: string;
  /** The document, one line of JSON. */
  source: string;
  /** Action line + source, each `\n`-terminated: the item's part of the body. */
  text: string;
  /** UTF-8 length of `text`. */
  bytes: number;
  /** Input line number, for messages and dead letters. */
  line: number;
}

/** `_id` values are base64url (doc-id.ts), so they need no escaping; index names are escaped anyway. */
export function actionLine(op: OpType, index: string, id: string): string {
  return `{"${op}":{"_index":${JSON.stringify(index)},"_id":${JSON.stringify(id)}}}`;
}

export function makeItem(op: OpType, index: string, id: string, source: string, line: number): BulkItem {
  const text = actionLine(op, index, id) + '\n' + source + '\n';
  return { index, id, source, text, bytes: Buffer.byteLength(text), line };
}

/** A batch being filled, sent, or retried in part. */
export class Batch {
  items: BulkItem[] = [];
  bytes = 0;
  add(item: BulkItem): void {
    this.items.push(item);
    this.bytes += item.bytes;
  }
  get length(): number {
    return this.items.length;
  }
}

/** The request body for some items. */
export function bulkBody(items: readonly BulkItem[]): Buffer {
  let s = '';
  for (const it of items) s += it.text;
  return Buffer.from(s);
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
