// A local stand-in for an Elasticsearch or OpenSearch cluster, for ct-es's
// tests and bench: it speaks the documented REST API over real HTTP(S) on
// 127.0.0.1:0 and keeps what it was sent, so tests assert on what arrived.
//
// What it follows (Elasticsearch reference, docs-bulk.html and friends):
// - POST /_bulk and /<index>/_bulk: NDJSON body of action/metadata and source
//   line pairs (index, create, delete; update is refused), which must end
//   with "\n"; Content-Type application/json or application/x-ndjson (else
//   406); answer 200 `{"took","errors","items":[{"<op>":{"_index","_id",
//   "_version","result","status",...}}]}` in request order, with per-item
//   `status` and `error` {type, reason}; op_type create on an existing _id is
//   409 version_conflict_engine_exception; over http.max_content_length 413.
// - mappings: fields of a matching index template are checked for their type
//   (ip, long, integer, date, boolean, keyword, object), unmapped ones are
//   mapped dynamically from their first value (date_detection on) and later
//   values of another kind are refused, as mapper_parsing_exception
//   (document_parsing_exception from Elasticsearch 8.8 on).
// - data streams: a name matching a template with `data_stream: {}` (or
//   created with PUT _data_stream/<name>) takes only op_type create, needs
//   `@timestamp`, and stores into backing index .ds-<name>-<date>-000001.
// - index names are checked as Elasticsearch does (lower case, no \ / * ? "
//   < > | space , # :, not starting with - _ +): invalid_index_name_exception.
// - GET / answers like Elasticsearch 7/8/9 or OpenSearch 1/2/3
//   ("distribution": "opensearch"); PUT/GET/DELETE _index_template, PUT
//   _template (legacy), PUT/GET _data_stream.
// - security: with users or API keys configured, a missing or wrong
//   Authorization header is 401 security_exception with WWW-Authenticate.
//
// Faults are scripted per test: failNext(n, status), dropRequest(k, when),
// dropNext(n, when), rejectId(id, ...), reject429Items(n), slow(ms, n),
// down(ms), unavailable(ms), faultEvery({request429, item429}).
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo, Socket } from 'node:net';

export interface Flavor {
  product: 'elasticsearch' | 'opensearch';
  version: string;
}

export const FLAVORS: Record<string, Flavor> = {
  es7: { product: 'elasticsearch', version: '7.17.22' },
  'es7.5': { product: 'elasticsearch', version: '7.5.2' },
  es8: { product: 'elasticsearch', version: '8.15.0' },
  es9: { product: 'elasticsearch', version: '9.1.0' },
  opensearch1: { product: 'opensearch', version: '1.3.19' },
  opensearch2: { product: 'opensearch', version: '2.17.1' },
  opensearch3: { product: 'opensearch', version: '3.1.0' },
};

export interface EsServerOptions {
  flavor?: Flavor;
  tls?: { key: string | Buffer; cert: string | Buffer };
  /** When given, every request must authenticate as one of these. */
  users?: Record<string, string>;
  /** API keys by id: `Authorization: ApiKey base64(id:key)`. */
  apiKeys?: Record<string, string>;
  /**
   * 'full' (default): keep each document's source and check it against the
   * mappings. 'ids': keep only index, _id and version, and parse only the
   * action lines (for the bench, where the endpoint must not be the bottleneck).
   */
  store?: 'full' | 'ids';
  /** http.max_content_length (default 100 MB, as Elasticsearch). */
  maxContentLength?: number;
}

export interface StoredDoc {
  source: any;
  version: number;
}

interface Template {
  name: string;
  patterns: string[];
  priority: number;
  dataStream: boolean;
  properties: Record<string, any>;
  legacy: boolean;
}

type FieldType = string;

interface Fault {
  status: number;
  body?: string;
}

interface BulkOp {
  op: string;
  index: string;
  id: string;
  source?: string;
}

const MB = 1024 * 1024;

/** Glob `*` matching, as index_patterns use it. */
function globMatch(glob: string, name: string): boolean {
  const re = new RegExp('^' + glob.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
  return re.test(name);
}

function invalidIndexName(name: string): string | null {
  if (!name) return 'must not be empty';
  if (name !== name.toLowerCase()) return 'must be lowercase';
  if (/^[-_+]/.test(name)) return 'must not start with \'_\', \'-\', or \'+\'';
  if (/[\\/*?"<>| ,#:]/.test(name)) return 'must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?]';
  if (name === '.' || name === '..') return 'must not be \'.\' or \'..\'';
  return null;
}

/**
 * Response filtering (Elasticsearch common options, "Response Filtering"):
 * `filter_path=a.b,c.*.d` keeps only those paths; `*` matches one key;
 * arrays are transparent (the path applies to each element); objects left
 * empty are dropped.
 */
const FILTER_MEMO = new WeakMap<string[][], Map<string, { whole: boolean; sub: string[][] | null }>>();

export function filterPath(v: unknown, patterns: string[][]): unknown {
  if (Array.isArray(v)) {
    const out: unknown[] = [];
    for (const x of v) {
      const r = filterPath(x, patterns);
      if (r !== undefined) out.push(r);
    }
    return out;
  }
  if (v === null || typeof v !== 'object') return undefined;
  const out: Record<string, unknown> = {};
  let any = false;
  let memo = FILTER_MEMO.get(patterns);
  if (!memo) FILTER_MEMO.set(patterns, (memo = new Map()));
  for (const k in v as Record<string, unknown>) {
    const x = (v as Record<string, unknown>)[k];
    // What the patterns say about key k, worked out once per pattern list and
    // key (a bulk answer has thousands of items with the same keys).
    let m = memo.get(k);
    if (!m) {
      let whole = false;
      let sub: string[][] | null = null;
      for (const p of patterns) {
        if (p[0] !== k && p[0] !== '*') continue;
        if (p.length === 1) { whole = true; break; }
        (sub ??= []).push(p.slice(1));
      }
      memo.set(k, (m = { whole, sub }));
    }
    const { whole, sub } = m;
    if (whole) { out[k] = x; any = true; continue; }
    if (!sub) continue;
    const r = filterPath(x, sub);
    if (r !== undefined && !(typeof r === 'object' && r !== null && !Array.isArray(r) && Object.keys(r).length === 0)) { out[k] = r; any = true; }
  }
  return any ? out : undefined;
}

/** ES's strict_date_optional_time, roughly: what dynamic date detection accepts. */
const DATE_LIKE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?$/;

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

export class EsServer {
  readonly flavor: Flavor;
  private server: http.Server | https.Server;
  private sockets = new Set<Socket>();
  port = 0;
  url = '';
  /** Stored documents: index -> _id -> document. */
  readonly indices = new Map<string, Map<string, StoredDoc>>();
  readonly templates = new Map<string, Template>();
  readonly dataStreams = new Map<string, string>(); // name -> backing index
  /** Dynamic mappings per index: dotted field -> type. */
  private dynamic = new Map<string, Map<string, FieldType>>();
  /** Every request: method, url, headers, body size. */
  readonly log: { method: string; url: string; headers: http.IncomingHttpHeaders; bytes: number }[] = [];
  /** _bulk requests received (including failed and dropped ones). */
  bulkRequests = 0;
  /** Item writes applied (index/create that stored a document). */
  writes = 0;
  /** TCP connections accepted. */
  connections = 0;

  private validIndices = new Set<string>();
  private faults: Fault[] = [];
  private drops = new Map<number, 'request' | 'response'>();
  private rejects = new Map<string, { status: number; type: string; reason: string }>();
  private item429 = 0;
  private every: { request429?: number; item429?: number } = {};
  private itemsSeen = 0;
  private slowMs = 0;
  private slowLeft = 0;
  private unavailableUntil = 0;
  private isDown = false;
  private seq = 0;

  constructor(private opts: EsServerOptions = {}) {
    this.flavor = opts.flavor ?? FLAVORS.es8;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      this.handle(req, res).catch((e) => {
        if (!res.headersSent) this.json(res, 500, { error: { type: 'exception', reason: String(e && e.stack || e) }, status: 500 });
        else res.destroy();
      });
    };
    this.server = opts.tls ? https.createServer({ key: opts.tls.key, cert: opts.tls.cert }, handler) : http.createServer(handler);
    this.server.keepAliveTimeout = 30000;
    this.server.on('connection', (s: Socket) => {
      this.connections++;
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  async start(port = 0): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = (this.server.address() as AddressInfo).port;
    this.url = `${this.opts.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- faults -----------------------------------------------------------

  /** Answer the next `n` _bulk requests with `status` as a whole (429, 500, 502, 503, ...). */
  failNext(n: number, status = 429, body?: string): void {
    for (let i = 0; i < n; i++) this.faults.push({ status, body });
  }

  /**
   * Drop the connection of the k-th _bulk request from now (1 = the next):
   * 'request' while its body is arriving (nothing applied), 'response' after
   * applying it but before answering (the client cannot know it worked).
   */
  dropRequest(k: number, when: 'request' | 'response' = 'response'): void {
    this.drops.set(this.bulkRequests + k, when);
  }

  dropNext(n: number, when: 'request' | 'response' = 'response'): void {
    for (let i = 1; i <= n; i++) this.dropRequest(i, when);
  }

  /** Refuse the item with this _id, every time it comes. */
  rejectId(id: string, type = 'mapper_parsing_exception', status = 400, reason = 'failed to parse'): void {
    this.rejects.set(id, { status, type, reason });
  }

  /** Answer the next `n` items 429 es_rejected_execution_exception (the request itself succeeds). */
  reject429Items(n: number): void {
    this.item429 += n;
  }

  /** From now on, answer every `request429`-th _bulk request 429 as a whole, and every `item429`-th item 429 (0 or absent: never). */
  faultEvery(o: { request429?: number; item429?: number }): void {
    this.every = o;
  }

  /** Delay the next `n` responses (all, by default) by `ms`. */
  slow(ms: number, n = Infinity): void {
    this.slowMs = ms;
    this.slowLeft = n;
  }

  /** Stop listening for `ms` (connections refused, open ones cut), then listen again on the same port. */
  async down(ms: number): Promise<void> {
    this.isDown = true;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await new Promise((r) => setTimeout(r, ms));
    await this.start(this.port);
    this.isDown = false;
  }

  /** Answer every request 503 (cluster_block_exception) for `ms`. */
  unavailable(ms: number): void {
    this.unavailableUntil = Date.now() + ms;
  }

  // ---- what was stored --------------------------------------------------

  /** All stored documents with their index and _id. */
  docs(): { index: string; id: string; source: any; version: number }[] {
    const out = [];
    for (const [index, m] of this.indices) for (const [id, d] of m) out.push({ index, id, source: d.source, version: d.version });
    return out;
  }

  count(): number {
    let n = 0;
    for (const m of this.indices.values()) n += m.size;
    return n;
  }

  get(index: string, id: string): StoredDoc | undefined {
    return this.indices.get(index)?.get(id);
  }

  // ---- HTTP -------------------------------------------------------------

  private json(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
    const filter = (res as any).filterPath as string[][] | undefined;
    const text = JSON.stringify(filter ? filterPath(body, filter) ?? {} : body);
    const h: http.OutgoingHttpHeaders = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers };
    if (this.flavor.product === 'elasticsearch' && this.major() >= 7) h['x-elastic-product'] = 'Elasticsearch';
    res.writeHead(status, h);
    res.end(text);
  }

  private error(res: http.ServerResponse, status: number, type: string, reason: string, headers?: http.OutgoingHttpHeaders): void {
    this.json(res, status, { error: { root_cause: [{ type, reason }], type, reason }, status }, headers);
  }

  private major(): number {
    return parseInt(this.flavor.version, 10);
  }

  private minor(): number {
    return parseInt(this.flavor.version.split('.')[1], 10);
  }

  private parseErrorType(): string {
    return this.flavor.product === 'elasticsearch' && (this.major() > 8 || (this.major() === 8 && this.minor() >= 8)) ? 'document_parsing_exception' : 'mapper_parsing_exception';
  }

  private authenticate(req: http.IncomingMessage): string | null {
    const { users, apiKeys } = this.opts;
    if (!users && !apiKeys) return null;
    const h = req.headers.authorization;
    const path = (req.url ?? '/').split('?')[0];
    if (!h) return `missing authentication credentials for REST request [${path}]`;
    const [scheme, cred] = h.split(' ', 2);
    const decoded = Buffer.from(cred ?? '', 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    const a = decoded.slice(0, i), b = decoded.slice(i + 1);
    if (scheme === 'Basic' && users && i > 0 && users[a] === b) return null;
    if (scheme === 'ApiKey' && apiKeys && i > 0 && apiKeys[a] === b) return null;
    if (scheme === 'Basic') return `unable to authenticate user [${a}] for REST request [${path}]`;
    if (scheme === 'ApiKey') return 'unable to authenticate with provided credentials and anonymous access is not allowed for this request';
    return `missing authentication credentials for REST request [${path}]`;
  }

  private readBody(req: http.IncomingMessage, onFirstChunk?: () => boolean): Promise<Buffer | null> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let first = true;
      req.on('data', (c: Buffer) => {
        if (first && onFirstChunk) {
          first = false;
          if (onFirstChunk()) return resolve(null);
        }
        chunks.push(c);
      });
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
      req.on('aborted', () => resolve(null));
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const p = url.pathname;
    const method = req.method ?? 'GET';
    const entry = { method, url: req.url ?? '/', headers: req.headers, bytes: 0 };
    const fp = url.searchParams.get('filter_path');
    if (fp) (res as any).filterPath = fp.split(',').map((x) => x.trim().split('.'));
    this.log.push(entry);
    const isBulk = method === 'POST' || method === 'PUT' ? /^\/(?:[^/_][^/]*\/)?_bulk$/.test(p) : false;
    let k = 0;
    if (isBulk) k = ++this.bulkRequests;
    const drop = isBulk ? this.drops.get(k) : undefined;
    if (drop) this.drops.delete(k);

    // Dropped while the request is arriving: nothing is applied.
    const body = await this.readBody(req, drop === 'request' ? () => { req.socket.destroy(); return true; } : undefined);
    if (body === null) return;
    entry.bytes = body.length;

    const authErr = this.authenticate(req);
    if (authErr) {
      return this.error(res, 401, 'security_exception', authErr, { 'www-authenticate': ['Basic realm="security" charset="UTF-8"', 'ApiKey'] });
    }
    if (Date.now() < this.unavailableUntil) {
      return this.error(res, 503, 'cluster_block_exception', 'blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];');
    }
    if (isBulk) return this.bulk(req, res, body, p, drop, k);
    if (method === 'GET' && p === '/') return this.root(res);
    if (method === 'HEAD' && p === '/') return this.json(res, 200, {});
    let m: RegExpExecArray | null;
    if ((m = /^\/([^/_][^/]*)\/_refresh$/.exec(p)) && (method === 'POST' || method === 'GET')) return this.json(res, 200, { _shards: { total: 1, successful: 1, failed: 0 } });
    if ((m = /^\/_index_template\/([^/]+)$/.exec(p))) return this.indexTemplate(res, method, decodeURIComponent(m[1]), body);
    if ((m = /^\/_template\/([^/]+)$/.exec(p))) return this.legacyTemplate(res, method, decodeURIComponent(m[1]), body);
    if ((m = /^\/_data_stream\/([^/]+)$/.exec(p))) return this.dataStream(res, method, decodeURIComponent(m[1]));
    return this.error(res, 400, 'illegal_argument_exception', `no handler found for uri [${p}] and method [${method}]`);
  }

  private root(res: http.ServerResponse): void {
    const f = this.flavor;
    const version: Record<string, unknown> = { number: f.version, build_type: 'tar', build_hash: '0'.repeat(40), build_date: '2025-01-01T00:00:00.000Z', build_snapshot: false, lucene_version: '9.11.1', minimum_wire_compatibility_version: '7.17.0', minimum_index_compatibility_version: '7.0.0' };
    if (f.product === 'opensearch') version.distribution = 'opensearch';
    else version.build_flavor = 'default';
    this.json(res, 200, {
      name: 'node-1', cluster_name: f.product === 'opensearch' ? 'opensearch' : 'elasticsearch', cluster_uuid: 'ctpipe-test-cluster', version,
      tagline: f.product === 'opensearch' ? 'The OpenSearch Project: https://opensearch.org/' : 'You Know, for Search',
    });
  }

  private composableSupported(): boolean {
    return this.flavor.product === 'opensearch' || this.major() > 7 || (this.major() === 7 && this.minor() >= 8);
  }

  private indexTemplate(res: http.ServerResponse, method: string, name: string, body: Buffer): void {
    if (!this.composableSupported()) return this.error(res, 405, 'illegal_argument_exception', `Incorrect HTTP method for uri [/_index_template/${name}] and method [${method}], allowed: []`);
    if (method === 'GET') {
      const t = this.templates.get(name);
      if (!t || t.legacy) return this.error(res, 404, 'resource_not_found_exception', `index template matching [${name}] not found`);
      return this.json(res, 200, { index_templates: [{ name, index_template: { index_patterns: t.patterns } }] });
    }
    if (method === 'DELETE') {
      this.templates.delete(name);
      return this.json(res, 200, { acknowledged: true });
    }
    if (method !== 'PUT' && method !== 'POST') return this.error(res, 405, 'illegal_argument_exception', `Incorrect HTTP method [${method}]`);
    let t: any;
    try { t = JSON.parse(body.toString('utf8')); } catch (e) { return this.error(res, 400, 'x_content_parse_exception', String(e)); }
    if (!t || !Array.isArray(t.index_patterns) || !t.index_patterns.length) return this.error(res, 400, 'action_request_validation_exception', 'Validation Failed: 1: index patterns are missing;');
    for (const k of Object.keys(t)) if (!['index_patterns', 'template', 'priority', 'data_stream', '_meta', 'composed_of', 'version'].includes(k)) return this.error(res, 400, 'x_content_parse_exception', `[1:2] [index_template] unknown field [${k}]`);
    const mappings = t.template?.mappings ?? {};
    const check = this.checkMappings(mappings.properties ?? {});
    if (check) return this.error(res, 400, 'mapper_parsing_exception', check);
    this.templates.set(name, { name, patterns: t.index_patterns, priority: t.priority ?? 0, dataStream: !!t.data_stream, properties: mappings.properties ?? {}, legacy: false });
    this.json(res, 200, { acknowledged: true });
  }

  private legacyTemplate(res: http.ServerResponse, method: string, name: string, body: Buffer): void {
    if (method !== 'PUT' && method !== 'POST') return this.error(res, 405, 'illegal_argument_exception', `Incorrect HTTP method [${method}]`);
    let t: any;
    try { t = JSON.parse(body.toString('utf8')); } catch (e) { return this.error(res, 400, 'x_content_parse_exception', String(e)); }
    const mappings = t.mappings ?? {};
    const check = this.checkMappings(mappings.properties ?? {});
    if (check) return this.error(res, 400, 'mapper_parsing_exception', check);
    this.templates.set(name, { name, patterns: t.index_patterns ?? [], priority: t.order ?? 0, dataStream: false, properties: mappings.properties ?? {}, legacy: true });
    this.json(res, 200, { acknowledged: true });
  }

  /** Types both products know; anything else is refused as ES would ("No handler for type"). */
  private checkMappings(props: Record<string, any>, prefix = ''): string | null {
    const known = new Set(['ip', 'keyword', 'date', 'long', 'integer', 'boolean', 'object', 'text', 'date_nanos', 'float', 'double', 'short', 'byte', 'nested']);
    for (const [k, v] of Object.entries(props)) {
      if (v.properties) {
        const r = this.checkMappings(v.properties, prefix + k + '.');
        if (r) return r;
      } else if (v.type && !known.has(v.type)) {
        return `No handler for type [${v.type}] declared on field [${prefix + k}]`;
      }
    }
    return null;
  }

  private dataStream(res: http.ServerResponse, method: string, name: string): void {
    if (method === 'GET') {
      if (!this.dataStreams.has(name)) return this.error(res, 404, 'index_not_found_exception', `no such index [${name}]`);
      return this.json(res, 200, { data_streams: [{ name, timestamp_field: { name: '@timestamp' }, indices: [{ index_name: this.dataStreams.get(name) }], generation: 1, status: 'GREEN' }] });
    }
    if (method !== 'PUT') return this.error(res, 405, 'illegal_argument_exception', `Incorrect HTTP method [${method}]`);
    if (this.dataStreams.has(name)) return this.error(res, 400, 'resource_already_exists_exception', `data_stream [${name}] already exists`);
    const t = this.templateFor(name);
    if (!t || !t.dataStream) return this.error(res, 400, 'illegal_argument_exception', `no matching index template found for data stream [${name}]`);
    this.createDataStream(name);
    this.json(res, 200, { acknowledged: true });
  }

  private createDataStream(name: string): string {
    const d = new Date().toISOString().slice(0, 10).replace(/-/g, '.');
    const backing = `.ds-${name}-${d}-000001`;
    this.dataStreams.set(name, backing);
    return backing;
  }

  /** The highest-priority template matching an index name. */
  private templateFor(index: string): Template | undefined {
    let best: Template | undefined;
    for (const t of this.templates.values()) {
      if (t.patterns.some((g) => globMatch(g, index)) && (!best || t.priority > best.priority)) best = t;
    }
    return best;
  }

  private async bulk(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, p: string, drop: 'request' | 'response' | undefined, k: number): Promise<void> {
    const started = Date.now();
    const ct = String(req.headers['content-type'] ?? '');
    if (!/^application\/(json|x-ndjson|vnd\.elasticsearch\+(json|x-ndjson))\b/.test(ct)) {
      return this.error(res, 406, 'media_type_header_exception', `Content-Type header [${ct}] is not supported`);
    }
    if (body.length > (this.opts.maxContentLength ?? 100 * MB)) {
      res.writeHead(413, { 'content-length': 0, connection: 'close' });
      res.end();
      return;
    }
    const fault = this.faults.shift() ?? (this.every.request429 && k % this.every.request429 === 0 ? { status: 429 } : undefined);
    if (fault) return this.wholeFailure(res, fault);

    if (body.length && body[body.length - 1] !== 10) return this.error(res, 400, 'illegal_argument_exception', 'The bulk request must be terminated by a newline [\\n]');
    const pathIndex = /^\/([^/]+)\/_bulk$/.exec(p)?.[1];
    // Walk the body line by line on the bytes: in 'ids' mode only action
    // lines are decoded, so the endpoint stays cheaper than the client.
    const keepSource = this.opts.store !== 'ids';
    const ops: BulkOp[] = [];
    let pos = 0;
    let no = 0;
    const nextLine = (): [number, number] | null => {
      if (pos >= body.length) return null;
      const nl = body.indexOf(10, pos);
      const r: [number, number] = [pos, nl];
      pos = nl + 1;
      no++;
      return r;
    };
    for (let l = nextLine(); l; l = nextLine()) {
      if (l[1] === l[0]) continue;
      const lineNo = no;
      let action: any;
      try { action = JSON.parse(body.toString('utf8', l[0], l[1])); } catch { return this.error(res, 400, 'x_content_parse_exception', `[1:1] Malformed action/metadata line [${lineNo}]`); }
      const op = action && typeof action === 'object' ? Object.keys(action)[0] : undefined;
      if (!op || !['index', 'create', 'delete', 'update'].includes(op)) {
        return this.error(res, 400, 'illegal_argument_exception', `Malformed action/metadata line [${lineNo}], expected one of [create, delete, index, update] but found [${op}]`);
      }
      const meta = action[op] ?? {};
      const index = meta._index ?? pathIndex;
      if (!index) return this.error(res, 400, 'action_request_validation_exception', 'Validation Failed: 1: index is missing;');
      const id = meta._id !== undefined ? String(meta._id) : this.autoId();
      if (op === 'delete') { ops.push({ op, index, id }); continue; }
      const src = nextLine();
      if (!src) return this.error(res, 400, 'illegal_argument_exception', `Validation Failed: 1: no requests added;`);
      ops.push({ op, index, id, source: keepSource ? body.toString('utf8', src[0], src[1]) : undefined });
    }
    const items = ops.map((o) => ({ [o.op]: this.apply(o) }));
    if (drop === 'response') {
      req.socket.destroy();
      return;
    }
    if (this.slowLeft > 0) {
      this.slowLeft--;
      await new Promise((r) => setTimeout(r, this.slowMs));
      if (res.destroyed) return;
    }
    const errors = items.some((it) => (Object.values(it)[0] as any).status >= 300);
    this.json(res, 200, { took: Date.now() - started, errors, items });
  }

  private wholeFailure(res: http.ServerResponse, f: Fault): void {
    if (f.body !== undefined) {
      res.writeHead(f.status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(f.body) });
      res.end(f.body);
      return;
    }
    switch (f.status) {
      case 429: return this.error(res, 429, 'es_rejected_execution_exception', 'rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=5242880, max_coordinating_and_primary_bytes=0]');
      case 502: case 504: {
        const html = `<html>\r\n<head><title>${f.status} ${http.STATUS_CODES[f.status]}</title></head>\r\n<body>\r\n<center><h1>${f.status} ${http.STATUS_CODES[f.status]}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
        res.writeHead(f.status, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(html) });
        res.end(html);
        return;
      }
      case 503: return this.error(res, 503, 'cluster_block_exception', 'blocked by: [SERVICE_UNAVAILABLE/2/no master];');
      case 401: return this.error(res, 401, 'security_exception', 'unable to authenticate user [x] for REST request [/_bulk]');
      case 403: return this.error(res, 403, 'security_exception', 'action [indices:data/write/bulk] is unauthorized for user [x] with effective roles [viewer]');
      default: return this.error(res, f.status, 'exception', `scripted failure ${f.status}`);
    }
  }

  private autoId(): string {
    return Buffer.from(`auto-${++this.seq}-${Date.now()}`).toString('base64url').slice(0, 20);
  }

  private itemError(o: BulkOp, status: number, type: string, reason: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
    const r: Record<string, unknown> = { _index: o.index, _id: o.id, status, error: { type, reason, index_uuid: 'aAbBcCdDeEfFgGhH', index: o.index, ...extra } };
    if (this.flavor.product === 'elasticsearch' && this.major() === 7) r._type = '_doc';
    return r;
  }

  /** Apply one operation; returns its response item. */
  private apply(o: BulkOp): Record<string, unknown> {
    const why = this.validIndices.has(o.index) ? null : invalidIndexName(o.index);
    if (!why) this.validIndices.add(o.index);
    if (why) return this.itemError(o, 400, 'invalid_index_name_exception', `Invalid index name [${o.index}], ${why}`);
    const rej = this.rejects.get(o.id);
    if (rej) return this.itemError(o, rej.status, rej.type, rej.reason);
    const periodic = this.every.item429 ? ++this.itemsSeen % this.every.item429 === 0 : false;
    if (this.item429 > 0 || periodic) {
      if (!periodic) this.item429--;
      return this.itemError(o, 429, 'es_rejected_execution_exception', `rejected execution of primary operation [shard_detail=[${o.index}][0][P], shard_operation_bytes=1024, max_write_bytes=0]`);
    }
    if (o.op === 'update') return this.itemError(o, 400, 'action_request_validation_exception', 'Validation Failed: 1: script or doc is missing;');

    // Data streams: only create, @timestamp required, stored in the backing index.
    let target = o.index;
    let ds = this.dataStreams.has(o.index);
    if (!ds && !this.indices.has(o.index)) {
      const t = this.templateFor(o.index);
      if (t?.dataStream) {
        this.createDataStream(o.index);
        ds = true;
      }
    }
    if (ds) {
      target = this.dataStreams.get(o.index)!;
      if (o.op !== 'create') return this.itemError(o, 400, 'illegal_argument_exception', `only write ops with an op_type of create are allowed in data streams`);
    }

    let docs = this.indices.get(target);
    if (o.op === 'delete') {
      const had = docs?.get(o.id);
      if (had) docs!.delete(o.id);
      return this.ok(o, target, had ? had.version + 1 : 1, had ? 'deleted' : 'not_found', had ? 200 : 404);
    }

    const existing = docs?.get(o.id);
    if (o.op === 'create' && existing) {
      return this.itemError({ ...o, index: target }, 409, 'version_conflict_engine_exception', `[${o.id}]: version conflict, document already exists (current version [${existing.version}])`, { shard: '0' });
    }
    let source: any = null;
    if (this.opts.store !== 'ids') {
      try {
        source = JSON.parse(o.source!);
      } catch (e) {
        return this.itemError(o, 400, this.parseErrorType(), `failed to parse`, { caused_by: { type: 'json_parse_exception', reason: String((e as Error).message) } });
      }
      if (!source || typeof source !== 'object' || Array.isArray(source)) return this.itemError(o, 400, this.parseErrorType(), 'failed to parse, document is empty');
      if (ds && !('@timestamp' in source)) return this.itemError(o, 400, this.parseErrorType(), `[1:2] failed to parse: data stream timestamp field [@timestamp] is missing`);
      const bad = this.checkDocument(target, o.index, source, o.id);
      if (bad) return this.itemError(o, 400, this.parseErrorType(), bad.reason, { caused_by: bad.causedBy });
    }
    if (!docs) this.indices.set(target, (docs = new Map()));
    const version = existing ? existing.version + 1 : 1;
    docs.set(o.id, { source, version });
    this.writes++;
    return this.ok(o, target, version, existing ? 'updated' : 'created', existing ? 200 : 201);
  }

  private ok(o: BulkOp, index: string, version: number, result: string, status: number): Record<string, unknown> {
    const r: Record<string, unknown> = { _index: index, _id: o.id, _version: version, result, _shards: { total: 2, successful: 1, failed: 0 }, _seq_no: this.seq++, _primary_term: 1, status };
    if (this.flavor.product === 'elasticsearch' && this.major() === 7) r._type = '_doc';
    return r;
  }

  /** Check a document's fields against the template's and the index's dynamic mappings. */
  private checkDocument(target: string, name: string, source: any, id: string): { reason: string; causedBy: unknown } | null {
    const t = this.templateFor(name);
    let dyn = this.dynamic.get(target);
    if (!dyn) this.dynamic.set(target, (dyn = new Map()));
    const pending: [string, FieldType][] = [];
    const walk = (obj: any, props: Record<string, any> | null, prefix: string): { reason: string; causedBy: unknown } | null => {
      for (const [k0, v] of Object.entries(obj)) {
        // Dots in a field name mean objects, as in Elasticsearch.
        const parts = k0.split('.');
        let mapping: any = props;
        let field = prefix;
        for (let i = 0; i < parts.length; i++) {
          field += (field ? '.' : '') + parts[i];
          const m = mapping ? mapping[parts[i]] : undefined;
          mapping = i < parts.length - 1 ? (m?.properties ?? null) : m;
        }
        if (mapping && mapping.type === 'object' && mapping.enabled === false) continue;
        const values = Array.isArray(v) ? v : [v];
        for (const x of values) {
          if (x === null) continue;
          const declared: string | undefined = mapping?.properties ? 'object' : mapping?.type;
          if (x !== null && typeof x === 'object') {
            if (declared && declared !== 'object' && declared !== 'nested') {
              return { reason: `failed to parse field [${field}] of type [${declared}] in document with id '${id}'. Preview of field's value: '${JSON.stringify(x)}'`, causedBy: { type: 'illegal_state_exception', reason: `Can't get text on a START_OBJECT` } };
            }
            const dt = dyn!.get(field);
            if (!declared && dt && dt !== 'object') return { reason: `object mapping for [${field}] tried to parse field [${field}] as object, but found a concrete value`, causedBy: null };
            if (!declared && !dt) pending.push([field, 'object']);
            const r = walk(x, mapping?.properties ?? null, field);
            if (r) return r;
            continue;
          }
          const type = declared ?? dyn!.get(field) ?? pending.find((e) => e[0] === field)?.[1];
          if (type === 'object') return { reason: `object mapping for [${field}] tried to parse field [${parts[parts.length - 1]}] as object, but found a concrete value`, causedBy: null };
          if (!type) {
            pending.push([field, typeof x === 'string' ? (DATE_LIKE.test(x) ? 'date' : 'keyword') : typeof x === 'number' ? (Number.isInteger(x) ? 'long' : 'float') : 'boolean']);
            continue;
          }
          const bad = this.badValue(type, x);
          if (bad) return { reason: `failed to parse field [${field}] of type [${type}] in document with id '${id}'. Preview of field's value: '${String(x)}'`, causedBy: { type: 'illegal_argument_exception', reason: bad } };
        }
      }
      return null;
    };
    const r = walk(source, t ? t.properties : null, '');
    if (r) return r;
    for (const [f, ty] of pending) if (!dyn.has(f)) dyn.set(f, ty);
    return null;
  }

  private badValue(type: string, x: unknown): string | null {
    switch (type) {
      case 'ip':
        return typeof x === 'string' && net.isIP(x) ? null : `'${String(x)}' is not an IP string literal.`;
      case 'long': case 'integer': case 'short': case 'byte':
        if (typeof x === 'number' && Number.isInteger(x)) return null;
        if (typeof x === 'string' && /^-?\d+$/.test(x)) return null; // coerce
        return `For input string: "${String(x)}"`;
      case 'float': case 'double':
        return typeof x === 'number' || (typeof x === 'string' && x.trim() !== '' && !Number.isNaN(Number(x))) ? null : `For input string: "${String(x)}"`;
      case 'date': case 'date_nanos':
        if (typeof x === 'number') return null;
        return typeof x === 'string' && DATE_LIKE.test(x) && !Number.isNaN(Date.parse(x)) ? null : `failed to parse date field [${String(x)}] with format [strict_date_optional_time||epoch_millis]`;
      case 'boolean':
        return x === true || x === false || x === 'true' || x === 'false' ? null : `Failed to parse value [${String(x)}] as only [true] or [false] are allowed.`;
      case 'keyword': case 'text':
        return typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean' ? null : `unexpected ${kindOf(x)}`;
      default:
        return null;
    }
  }
}

/** A self-signed certificate for 127.0.0.1 and localhost, made with openssl in a temporary directory. */
export function makeCertificate(): { key: string; cert: string; certPath: string; dir: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'ct-es-tls-'));
  const keyPath = path.join(dir, 'key.pem');
  const certPath = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  return { key: readFileSync(keyPath, 'utf8'), cert: readFileSync(certPath, 'utf8'), certPath, dir };
}
