// HTTP to the cluster's nodes with Node's own http/https and keep-alive
// agents. No Elasticsearch client library: the official one refuses to talk
// to OpenSearch (its product check, since 7.14), OpenSearch's client is
// another dependency for the same three requests, and neither adds anything
// ct-es needs over one POST with a body; retries, backoff and per-item results
// are ct-es's own (shipper.ts). Node's fetch is not used either: in Node 20 a
// custom CA or --insecure would need undici's Agent, which Node does not
// expose, while https.Agent takes `ca` and `rejectUnauthorized` directly.
//
// This module owns connections, node choice and failover, authentication
// headers and request timeouts. One call is one attempt: it never retries.
import http from 'node:http';
import https from 'node:https';

export type Auth = { user: string; password: string } | { apiKey: string } | null;

export interface TransportOptions {
  nodes: string[];
  auth?: Auth;
  /** PEM CA certificate(s) to trust for https nodes. */
  ca?: string | Buffer;
  /** Do not verify the server's certificate. */
  insecure?: boolean;
  /** Give up an attempt after this long without progress. */
  timeoutMs: number;
  /** Connections kept per node. */
  maxSockets: number;
}

export interface EsResponse {
  status: number;
  body: string;
  node: string;
  headers: http.IncomingHttpHeaders;
}

/** The request never got an HTTP response: refused, reset, timed out, cut. */
export class ConnectionError extends Error {
  /** A certificate or protocol mismatch: trying again cannot help. */
  readonly permanent: boolean;
  constructor(public node: string, message: string, public code?: string) {
    super(message);
    this.permanent = !!code && PERMANENT.has(code);
  }
}

/** TLS failures that mean a wrong --ca, host name or scheme, not an outage. */
const PERMANENT = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'CERT_UNTRUSTED', 'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID', 'ERR_SSL_WRONG_VERSION_NUMBER', 'EPROTO',
]);

interface Node {
  url: URL;
  label: string;
  /** Not chosen before this time (ms) after a connection failure. */
  deadUntil: number;
  failures: number;
}

/** `id:key` is sent encoded; an already encoded key (ES's "encoded" field) as it is. */
export function apiKeyHeader(key: string): string {
  return 'ApiKey ' + (key.includes(':') ? Buffer.from(key).toString('base64') : key);
}

export function parseNode(s: string): URL {
  let u: URL;
  try {
    u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(s) ? s : `http://${s}`);
  } catch {
    throw new Error(`'${s}' is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`'${s}': only http:// and https:// nodes are supported`);
  if (u.search || u.hash) throw new Error(`'${s}': a node URL takes no query or fragment`);
  return u;
}

/** A node URL for messages: without credentials. */
function label(u: URL): string {
  return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '')}`;
}

export class Transport {
  private nodes: Node[];
  private next = 0;
  private agents: { http: http.Agent; https: https.Agent };
  private authHeader: string | null;

  constructor(private opts: TransportOptions) {
    if (!opts.nodes.length) throw new Error('no node given');
    this.nodes = opts.nodes.map((s) => {
      const url = parseNode(s);
      return { url, label: label(url), deadUntil: 0, failures: 0 };
    });
    const common = { keepAlive: true, maxSockets: opts.maxSockets, maxFreeSockets: opts.maxSockets, scheduling: 'fifo' as const };
    this.agents = {
      http: new http.Agent(common),
      https: new https.Agent({ ...common, ca: opts.ca, rejectUnauthorized: !opts.insecure }),
    };
    const a = opts.auth;
    this.authHeader = !a ? null : 'apiKey' in a ? apiKeyHeader(a.apiKey) : 'Basic ' + Buffer.from(`${a.user}:${a.password}`).toString('base64');
  }

  get nodeLabels(): string[] {
    return this.nodes.map((n) => n.label);
  }

  /**
   * The node for the next attempt: round robin over the live ones; when all
   * failed recently, the one that comes back first.
   */
  private pick(): Node {
    const now = Date.now();
    const n = this.nodes.length;
    for (let i = 0; i < n; i++) {
      const node = this.nodes[(this.next + i) % n];
      if (node.deadUntil <= now) {
        this.next = (this.next + i + 1) % n;
        return node;
      }
    }
    return this.nodes.reduce((a, b) => (b.deadUntil < a.deadUntil ? b : a));
  }

  /** True when some node is not in its after-failure pause (a retry can go there at once). */
  anyAlive(): boolean {
    const now = Date.now();
    return this.nodes.some((n) => n.deadUntil <= now);
  }

  private markDead(node: Node): void {
    node.failures++;
    // Pause a failed node for 1 s, doubling to a minute, so the others take
    // the load; a node is never written off for good.
    node.deadUntil = Date.now() + Math.min(60000, 1000 * 2 ** Math.min(node.failures - 1, 6));
  }

  /** One HTTP request to one node. Rejects with ConnectionError when no response came. */
  request(method: string, path: string, body?: Buffer | string, opts: { contentType?: string; signal?: AbortSignal } = {}): Promise<EsResponse> {
    const node = this.pick();
    const u = node.url;
    const base = u.pathname.replace(/\/+$/, '');
    const headers: http.OutgoingHttpHeaders = { accept: 'application/json' };
    if (body !== undefined) {
      headers['content-type'] = opts.contentType ?? 'application/json';
      headers['content-length'] = Buffer.byteLength(body);
    }
    if (this.authHeader) headers.authorization = this.authHeader;
    else if (u.username) headers.authorization = 'Basic ' + Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
    const tls = u.protocol === 'https:';
    const mod = tls ? https : http;
    return new Promise<EsResponse>((resolve, reject) => {
      let settled = false;
      const fail = (err: Error & { code?: string }) => {
        if (settled) return;
        settled = true;
        req.destroy();
        if (opts.signal?.aborted) return reject(opts.signal.reason ?? err);
        this.markDead(node);
        reject(new ConnectionError(node.label, describe(err), err.code));
      };
      const req = mod.request(
        {
          protocol: u.protocol,
          hostname: u.hostname.replace(/^\[|\]$/g, ''),
          port: u.port || (tls ? 443 : 80),
          method,
          path: base + path,
          headers,
          agent: tls ? this.agents.https : this.agents.http,
          signal: opts.signal,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', fail);
          res.on('end', () => {
            if (settled) return;
            if (!res.complete) return fail(Object.assign(new Error('the connection closed in the middle of the response'), { code: 'ECONNRESET' }));
            settled = true;
            // An answer before the whole body went out (413, 401): stop
            // sending, so the caller may reuse the body's buffer at once.
            if (!req.writableFinished) req.destroy();
            node.failures = 0;
            node.deadUntil = 0;
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), node: node.label, headers: res.headers });
          });
          res.on('close', () => {
            if (!settled) fail(Object.assign(new Error('the connection closed in the middle of the response'), { code: 'ECONNRESET' }));
          });
        },
      );
      // An idle limit, not a total one: a large response that keeps coming is fine.
      req.setTimeout(this.opts.timeoutMs, () => fail(Object.assign(new Error(`no answer within ${this.opts.timeoutMs / 1000} s`), { code: 'ETIMEDOUT' })));
      req.on('error', fail);
      req.end(body);
    });
  }

  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }
}

function describe(err: Error & { code?: string }): string {
  switch (err.code) {
    case 'ECONNREFUSED': return 'connection refused';
    case 'ECONNRESET': return err.message.includes('middle') ? err.message : 'connection reset';
    case 'EPIPE': return 'connection closed while sending';
    case 'ETIMEDOUT': return err.message;
    case 'ENOTFOUND': return 'host not found';
    case 'EHOSTUNREACH': return 'host unreachable';
    case 'ENETUNREACH': return 'network unreachable';
    default: return err.message || String(err.code);
  }
}
