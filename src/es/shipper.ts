// The shipper: fills batches by bytes and by time, sends at most
// `concurrency` _bulk requests at once, and sees every document through to an
// answer. A request that got no usable answer (refused, reset, timed out, cut,
// 429, 5xx) is sent again after a capped exponential backoff with jitter,
// without end; items the cluster refused for now (429) are sent again; items
// refused for good go to the dead-letter sink. While requests are failing the
// batches stay where they are and add() makes its caller wait: memory stays
// at about (concurrency + 2) x flushBytes and the input stops being read.
//
// Only drain()'s deadline, a failure that retrying cannot fix (401/403, other
// 4xx on the whole request, a TLS certificate error) or abort() ends the
// retrying; whatever was not acknowledged then goes to the dead-letter sink
// as not indexed. Nothing leaves this module uncounted.
//
// It owns no process state: the transport, the clock's randomness and the
// sinks are given to it.
import { Batch, bulkBody, readBulkResponse, errorSummary, BadResponse, type BulkItem, type OpType, type EsError } from './bulk.js';
import { ConnectionError, type EsResponse } from './http.js';

export interface BulkTransport {
  request(method: string, path: string, body?: Buffer | string, opts?: { contentType?: string; signal?: AbortSignal }): Promise<EsResponse>;
  anyAlive(): boolean;
}

export interface DeadLetter {
  /** `rejected` by the cluster, or `not-indexed` when ct-es stopped before an answer. */
  reason: 'rejected' | 'not-indexed';
  status?: number;
  error: EsError;
  item: BulkItem;
}

export interface ShipperOptions {
  transport: BulkTransport;
  op: OpType;
  flushBytes: number;
  flushIntervalMs: number;
  concurrency: number;
  /** First retry after about this long (ms); doubled each time. */
  backoffBaseMs?: number;
  /** Retries wait at most this long (ms). */
  backoffMaxMs: number;
  /** Where refused and unsent documents go (written and counted). */
  deadLetter: (d: DeadLetter) => void;
  /** Once per outage and once per recovery, not per retry. */
  onWarning?: (message: string) => void;
  random?: () => number;
}

export interface ShipperStats {
  /** Documents handed to add(). */
  received: number;
  /** Indexed as new documents. */
  created: number;
  /** Indexed over a document with the same _id (a retry or a replay). */
  updated: number;
  /** op_type create refused as a conflict: already indexed. */
  exists: number;
  /** Refused by the cluster for good (dead letters). */
  rejected: number;
  /** Not acknowledged when shipping stopped (dead letters). */
  notIndexed: number;
  requests: number;
  /** Attempts that failed as a whole and were made again. */
  retriedRequests: number;
  /** Items answered 429/503 and sent again. */
  retriedItems: number;
  /** Documents waiting in batches or in flight. */
  pending: number;
}

/**
 * Response filtering (a common option of every Elasticsearch and OpenSearch
 * API) cuts each item of the answer from ~200 bytes to ~30: only what the
 * shipper reads. `error` and `status` keep whole-request failures readable.
 */
export const BULK_PATH = '/_bulk?filter_path=errors,items.*.status,items.*.result,items.*.error,error,status';

/** Whole-request statuses that are a passing state of the cluster (or a proxy in front of it). */
const RETRY_STATUS = (s: number) => s === 429 || s >= 500;

export class FatalError extends Error {}

export class Shipper {
  readonly stats: ShipperStats = {
    received: 0, created: 0, updated: 0, exists: 0, rejected: 0, notIndexed: 0,
    requests: 0, retriedRequests: 0, retriedItems: 0, pending: 0,
  };
  private filling: Batch;
  private spare: Buffer[] = [];
  private readonly slabSize: number;
  private ready: Batch[] = [];
  private active = 0;
  private timer: NodeJS.Timeout | null = null;
  private roomWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private idleWaiters: (() => void)[] = [];
  private stopper = new AbortController();
  private fatal: Error | null = null;
  private outageSince = 0;
  private random: () => number;
  private base: number;

  constructor(private opts: ShipperOptions) {
    this.slabSize = opts.flushBytes + 256 * 1024;
    this.filling = this.newBatch();
    this.random = opts.random ?? Math.random;
    this.base = opts.backoffBaseMs ?? 100;
  }

  /** Set when a failure that retrying cannot fix stopped the shipper. */
  get failure(): Error | null {
    return this.fatal;
  }

  /** Room for flushBytes and the document that crosses it, most of the time. */
  private newBatch(): Batch {
    return new Batch(this.opts.op, this.spare.pop() ?? Buffer.allocUnsafe(this.slabSize));
  }

  /** A sent batch's buffer, for the next one (allocating megabytes per batch made for costly GC). */
  private release(buf: Buffer): void {
    if (buf.length === this.slabSize && this.spare.length < 2) this.spare.push(buf);
  }

  /** True when the caller should wait (room()) before adding more. */
  get full(): boolean {
    return this.ready.length > 0 || this.fatal !== null;
  }

  /** Resolves when add() may be called again; rejects if the shipper failed. */
  room(): Promise<void> {
    if (this.fatal) return Promise.reject(this.fatal);
    if (!this.full) return Promise.resolve();
    return new Promise((resolve, reject) => this.roomWaiters.push({ resolve, reject }));
  }

  /** Queue one document (`source`: its JSON) for `index` under `id`; `line` is for messages. */
  add(index: string, id: string, source: string, line: number): void {
    this.stats.received++;
    this.stats.pending++;
    if (this.fatal) {
      const b = new Batch(this.opts.op, Buffer.alloc(0));
      b.add(index, id, source, line);
      this.deadLetter(b.items[0], 'not-indexed', undefined, { type: 'not_sent', reason: this.fatal.message });
      return;
    }
    if (!this.filling.add(index, id, source, line)) {
      this.seal();
      this.filling.add(index, id, source, line);
    }
    this.added();
  }

  /** Queue one item encoded by mapper.ts: src[start, end) holds its action and source lines. */
  addEncoded(src: Buffer, start: number, sourceAt: number, end: number, line: number): void {
    this.stats.received++;
    this.stats.pending++;
    if (this.fatal) {
      const b = new Batch(this.opts.op, Buffer.alloc(0));
      b.addEncoded(src, start, sourceAt, end, line);
      this.deadLetter(b.items[0], 'not-indexed', undefined, { type: 'not_sent', reason: this.fatal.message });
      return;
    }
    if (!this.filling.addEncoded(src, start, sourceAt, end, line)) {
      this.seal();
      this.filling.addEncoded(src, start, sourceAt, end, line);
    }
    this.added();
  }

  private added(): void {
    if (this.filling.bytes >= this.opts.flushBytes) {
      this.seal();
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.seal();
      }, this.opts.flushIntervalMs);
    }
  }

  /** Send what is being filled now (end of input, or the flush interval). */
  flush(): void {
    this.seal();
  }

  private seal(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.filling.length) {
      this.ready.push(this.filling);
      this.filling = this.newBatch();
    }
    this.pump();
  }

  private pump(): void {
    while (this.active < this.opts.concurrency && this.ready.length && !this.fatal) {
      const b = this.ready.shift()!;
      this.active++;
      this.send(b.items, b.body()).finally(() => {
        this.release(b.buf);
        this.active--;
        this.pump();
      });
    }
    if (!this.full && this.roomWaiters.length) {
      const w = this.roomWaiters;
      this.roomWaiters = [];
      for (const x of w) x.resolve();
    }
    if (this.active === 0 && this.ready.length === 0 && this.filling.length === 0) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
    }
  }

  /** Backoff for the n-th consecutive failure: capped exponential, between half and all of it. */
  backoff(attempt: number): number {
    const cap = Math.min(this.opts.backoffMaxMs, this.base * 2 ** Math.min(attempt - 1, 30));
    return Math.round(cap / 2 + (this.random() * cap) / 2);
  }

  private sleep(ms: number): Promise<void> {
    const signal = this.stopper.signal;
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }

  private outage(node: string, why: string): void {
    if (!this.outageSince) {
      this.outageSince = Date.now();
      this.opts.onWarning?.(`${node}: ${why}; retrying (documents wait in memory, input is paused when ${this.opts.concurrency + 1} batches wait)`);
    }
  }

  private recovered(node: string): void {
    if (this.outageSince) {
      this.opts.onWarning?.(`${node}: indexing again after ${((Date.now() - this.outageSince) / 1000).toFixed(1)} s`);
      this.outageSince = 0;
    }
  }

  private stop(err: Error): void {
    if (this.fatal) return;
    this.fatal = err;
    this.abort(err);
  }

  /** Send items until each has an answer, or shipping is stopped. */
  private async send(items: BulkItem[], body: Buffer | null = null): Promise<void> {
    let attempt = 0;
    while (items.length) {
      if (this.stopper.signal.aborted) {
        const why = (this.stopper.signal.reason as Error | undefined)?.message ?? 'stopped before the cluster acknowledged it';
        for (const it of items) this.deadLetter(it, 'not-indexed', undefined, { type: 'not_indexed', reason: why });
        return;
      }
      let res: EsResponse;
      this.stats.requests++;
      try {
        res = await this.opts.transport.request('POST', BULK_PATH, body ?? bulkBody(items), { contentType: 'application/x-ndjson', signal: this.stopper.signal });
      } catch (e) {
        if (this.stopper.signal.aborted) continue;
        if (e instanceof ConnectionError && e.permanent) {
          this.stop(new FatalError(`${e.node}: ${e.message}`));
          continue;
        }
        const node = e instanceof ConnectionError ? e.node : 'request';
        this.outage(node, (e as Error).message);
        this.stats.retriedRequests++;
        // Another node may take it at once; with none, wait.
        if (!(e instanceof ConnectionError && this.opts.transport.anyAlive())) await this.sleep(this.backoff(++attempt));
        continue;
      }
      if (res.status === 200) {
        let results;
        try {
          results = readBulkResponse(res.body, items.length, this.opts.op);
        } catch (e) {
          if (!(e instanceof BadResponse)) throw e;
          this.outage(res.node, e.message);
          this.stats.retriedRequests++;
          await this.sleep(this.backoff(++attempt));
          continue;
        }
        this.recovered(res.node);
        const again: BulkItem[] = [];
        for (let i = 0; i < items.length; i++) {
          const r = results[i];
          switch (r.outcome) {
            case 'created': this.stats.created++; this.stats.pending--; break;
            case 'updated': this.stats.updated++; this.stats.pending--; break;
            case 'exists': this.stats.exists++; this.stats.pending--; break;
            case 'retry': again.push(items[i]); break;
            case 'rejected': this.deadLetter(items[i], 'rejected', r.status, r.error!); break;
          }
        }
        this.stats.retriedItems += again.length;
        if (again.length !== items.length) body = null;
        items = again;
        // Items refused as overload: back off as for a refused request.
        if (items.length) await this.sleep(this.backoff(++attempt));
        else attempt = 0;
        continue;
      }
      if (RETRY_STATUS(res.status)) {
        this.outage(res.node, `HTTP ${res.status} ${errorSummary(res.body)}`);
        this.stats.retriedRequests++;
        await this.sleep(this.backoff(++attempt));
        continue;
      }
      if (res.status === 413 && items.length > 1) {
        // Larger than the cluster's http.max_content_length: halve and send
        // the halves one after the other in this same slot.
        const half = items.length >> 1;
        await this.send(items.slice(0, half));
        items = items.slice(half);
        body = null;
        continue;
      }
      if (res.status === 413) {
        this.deadLetter(items[0], 'rejected', 413, { type: 'request_entity_too_large', reason: 'the document alone is larger than the cluster accepts (http.max_content_length)' });
        return;
      }
      // 401, 403, 404, 400 on the whole request: credentials, privileges or
      // the URL are wrong, and will stay wrong.
      this.stop(new FatalError(`${res.node}: HTTP ${res.status} ${errorSummary(res.body)}`));
    }
  }

  private deadLetter(item: BulkItem, reason: DeadLetter['reason'], status: number | undefined, error: EsError): void {
    if (reason === 'rejected') this.stats.rejected++;
    else this.stats.notIndexed++;
    this.stats.pending--;
    this.opts.deadLetter({ reason, status, error, item });
  }

  /**
   * Send everything and wait for the answers, at most `timeoutMs` (0: no
   * limit). What has no answer by then is dead-lettered as not indexed.
   * Resolves true when every document was indexed.
   */
  async drain(timeoutMs: number): Promise<boolean> {
    this.seal();
    let timer: NodeJS.Timeout | null = null;
    const idle = new Promise<void>((resolve) => {
      if (this.active === 0 && this.ready.length === 0 && this.filling.length === 0) resolve();
      else this.idleWaiters.push(resolve);
    });
    if (timeoutMs > 0) {
      timer = setTimeout(() => this.abort(new Error(`not acknowledged within the drain timeout (${timeoutMs / 1000} s)`)), timeoutMs);
    }
    await idle;
    if (timer) clearTimeout(timer);
    return this.stats.rejected === 0 && this.stats.notIndexed === 0 && this.stats.pending === 0;
  }

  /** Stop retrying now: in-flight requests are cancelled and everything unacknowledged is dead-lettered. */
  abort(why: Error): void {
    if (!this.stopper.signal.aborted) this.stopper.abort(why);
    const w = this.roomWaiters;
    this.roomWaiters = [];
    for (const x of w) x.reject(why);
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    // Batches never sent: nothing will send them now.
    const left = [...this.ready.flatMap((b) => b.items), ...this.filling.items];
    this.ready = [];
    this.filling = this.newBatch();
    for (const it of left) this.deadLetter(it, 'not-indexed', undefined, { type: 'not_indexed', reason: why.message });
    this.pump();
  }
}
