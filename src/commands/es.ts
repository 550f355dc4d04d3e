// ct-es: ship the event stream to Elasticsearch or OpenSearch with _bulk.
import fs from 'node:fs';
import { availableParallelism } from 'node:os';
import { commandLine, parseArgs, warn, UsageError, Failure, type Command, type IO } from '../cli.js';
import { parseSize } from '../units.js';
import { MAX_LINE } from '../ndjson.js';
import { compilePattern, invalidIndexName, type IndexPattern } from '../es/index-name.js';
import { itemSource, itemAction, type OpType } from '../es/bulk.js';
import type { MapperOptions, MappedChunk } from '../es/mapper.js';
import { mapInput } from '../es/workers.js';
import { Transport, parseNode, type Auth } from '../es/http.js';
import { Shipper, type DeadLetter } from '../es/shipper.js';
import { setup, SetupError } from '../es/setup.js';
import { openPrivate, nodeFs } from '../record/fs.js';

const NAME = 'ct-es';
const DEFAULT_NODE = 'http://localhost:9200';
const DEFAULT_INDEX = 'ctpipe-%Y.%m.%d';
/** How many rejected documents are named one by one on stderr before they are only counted. */
const REJECTS_SHOWN = 10;

function options(argv: string[], io: IO) {
  const y = commandLine(NAME, `Usage: ${NAME} [options]\n\nRead events (NDJSON, see ct-event(5)) and index them into Elasticsearch or OpenSearch with _bulk requests, as Elastic Common Schema documents (or --raw). Each document's _id is derived from the event, so retries and replays never duplicate. Requests that fail are retried without end; input waits meanwhile. Exit 0 when every document was indexed. See ct-es(1).`)
    .option('node', { alias: 'n', type: 'string', array: true, description: `Node URL, repeatable (several nodes of one cluster share the load and stand in for each other)`, default: [DEFAULT_NODE] })
    .option('index', { alias: 'i', type: 'string', description: 'Index name pattern; %Y %m %d %H %j %G %V %y are taken from each event\'s own "ts" (UTC)', default: DEFAULT_INDEX })
    .option('data-stream', { type: 'string', description: 'Write to this data stream instead (op_type create, "@timestamp")' })
    .option('op-type', { type: 'string', choices: ['index', 'create'], description: 'index: a document sent again overwrites itself; create: it is refused as a conflict and counted as already indexed (default: index; data streams: create)' })
    .option('raw', { type: 'boolean', default: false, description: 'Ship events as they are, without the ECS fields' })
    .option('user', { alias: 'u', type: 'string', description: 'User for basic authentication (or $CT_ES_USER)' })
    .option('password', { type: 'string', description: 'Password (prefer $CT_ES_PASSWORD: the command line is visible in ps)' })
    .option('api-key', { type: 'string', description: 'API key, "id:key" or its base64 form (prefer $CT_ES_API_KEY)' })
    .option('ca', { type: 'string', description: 'PEM file of the CA that signed the nodes\' certificates' })
    .option('insecure', { type: 'boolean', default: false, description: 'Do not verify the nodes\' TLS certificates' })
    .option('setup', { type: 'boolean', default: false, description: 'First install the index template (and create the data stream); with a terminal as input, stop there' })
    .option('index-template', { alias: 'template', type: 'string', description: 'Name of the template --setup installs (default: the index pattern up to its first date part, or the data stream)' })
    .option('flush-bytes', { type: 'string', default: '5m', description: 'Send a bulk request when this much is batched (bytes; k and m suffixes)' })
    .option('flush-interval', { type: 'number', default: 1, description: 'Send what is batched after this many seconds' })
    .option('concurrency', { alias: 'c', type: 'number', default: 2, description: 'Bulk requests in flight at most' })
    .option('timeout', { type: 'number', default: 30, description: 'Seconds without an answer before a request is abandoned and retried' })
    .option('backoff-max', { type: 'number', default: 10, description: 'Longest wait between retries, in seconds' })
    .option('drain-timeout', { type: 'number', default: 30, description: 'At the end, wait this many seconds for acknowledgements (0: as long as it takes)' })
    .option('dead-letter', { type: 'string', description: 'Append documents the cluster refused, or that were never acknowledged, to this file (NDJSON)' })
    .option('jobs', { type: 'number', description: 'Worker threads mapping bulk input such as a saved file (default: CPUs - 1, 1 to 4; 0: none)' })
    .option('stats', { type: 'boolean', default: false, description: 'At the end, print the counts on stderr (SIGUSR1: now)' })
    .example(`sudo ct-events | ct-attribute | ${NAME} --node http://es1:9200 --node http://es2:9200`, 'every connection into daily ctpipe-YYYY.MM.DD indices')
    .example(`CT_ES_API_KEY=... ${NAME} --node https://es:9200 --ca ca.pem --data-stream logs-ctpipe-default --setup`, 'into a data stream, template installed first')
    .example(`${NAME} --setup --index 'ct-%G.%V' < /dev/null`, 'only install the template for weekly indices')
    .example(`${NAME} --dead-letter failed.ndjson < saved.ndjson`, 'replay a saved stream; refused documents kept aside')
    .example(`jq -c .document.ctpipe failed.ndjson | ${NAME}`, 'send dead letters again once the cause is fixed');
  return parseArgs(y, argv, io, { '--template': '--index-template' });
}

function positive(a: Record<string, unknown>, key: string, allowZero = false): number {
  const v = Number(a[key]);
  if (!Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) throw new UsageError(`--${key} must be a number ${allowZero ? '>= 0' : '> 0'}`);
  return v;
}

export async function main(argv: string[], io: IO): Promise<number> {
  const a = await options(argv, io);
  if (!a) return 0;
  const nodes = (a.node as string[]).flatMap((s) => String(s).split(',')).map((s) => s.trim()).filter(Boolean);
  for (const n of nodes) {
    try { parseNode(n); } catch (e) { throw new UsageError(`--node ${(e as Error).message}`); }
  }
  const dataStream = a['data-stream'] as string | undefined;
  let pattern: IndexPattern | null = null;
  if (dataStream !== undefined) {
    const why = invalidIndexName(dataStream);
    if (why) throw new UsageError(`--data-stream '${dataStream}' is not a valid name: ${why}`);
    if (a['op-type'] === 'index') throw new UsageError('data streams take only op_type create (--op-type index cannot be used with --data-stream)');
  } else {
    try { pattern = compilePattern(a.index as string); } catch (e) { throw new UsageError((e as Error).message); }
  }
  const op: OpType = dataStream !== undefined ? 'create' : ((a['op-type'] as OpType | undefined) ?? 'index');
  const flushBytes = parseSize(String(a['flush-bytes']));
  if (!flushBytes) throw new UsageError(`--flush-bytes '${a['flush-bytes']}' is not a size (e.g. 5m, 512k, 100000)`);
  const flushInterval = positive(a, 'flush-interval');
  const concurrency = positive(a, 'concurrency');
  if (!Number.isInteger(concurrency)) throw new UsageError('--concurrency must be a whole number');
  const timeout = positive(a, 'timeout');
  const backoffMax = positive(a, 'backoff-max');
  const drainTimeout = positive(a, 'drain-timeout', true);
  // One CPU is left to the main thread (HTTP, batching) and the stages upstream.
  const jobs = a.jobs === undefined ? Math.max(1, Math.min(4, availableParallelism() - 1)) : Number(a.jobs);
  if (!Number.isInteger(jobs) || jobs < 0) throw new UsageError('--jobs must be a whole number >= 0');

  const user = (a.user as string | undefined) ?? io.env.CT_ES_USER;
  const password = (a.password as string | undefined) ?? io.env.CT_ES_PASSWORD;
  const apiKey = (a['api-key'] as string | undefined) ?? io.env.CT_ES_API_KEY;
  let auth: Auth = null;
  if (apiKey && user) throw new UsageError('give either an API key or a user, not both');
  if (apiKey) auth = { apiKey };
  else if (user) {
    if (password === undefined) throw new UsageError('--user needs a password: set $CT_ES_PASSWORD (or --password)');
    auth = { user, password };
  } else if (a.password !== undefined) throw new UsageError('--password needs --user');

  let ca: Buffer | undefined;
  if (a.ca) {
    try { ca = fs.readFileSync(a.ca as string); } catch (e) { throw new Failure(`--ca ${a.ca}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`); }
  }

  let deadFile: fs.WriteStream | null = null;
  const deadPath = a['dead-letter'] as string | undefined;
  if (deadPath) {
    let fd: number;
    // As ct-record's files: never through a symlink, mode 0600, one name, ours.
    try { fd = await openPrivate(nodeFs, deadPath, { uid: process.geteuid?.() ?? 0 }); } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new Failure(`--dead-letter ${deadPath}: ${err.code === 'ELOOP' ? 'is a symbolic link; give the file itself' : err.message}`);
    }
    deadFile = fs.createWriteStream('', { fd });
    deadFile.on('error', (e) => warn(io, NAME, `--dead-letter ${deadPath}: ${e.message}`));
  }

  // Credentials (options, environment or user:password@ in a URL) over plain http: said once, in one line.
  const plain = nodes.map((n) => parseNode(n)).filter((u) => u.protocol === 'http:' && (auth || u.username));
  if (plain.length) warn(io, NAME, `credentials would go in clear text over plain http to ${plain.map((u) => u.host).join(', ')}: use https:// (and --ca) unless the network is trusted`);
  const transport = new Transport({ nodes, auth, ca, insecure: a.insecure as boolean, timeoutMs: timeout * 1000, maxSockets: concurrency + 1 });
  let shown = 0;
  const onDead = (d: DeadLetter) => {
    if (deadFile) {
      let document: unknown;
      const text = itemSource(d.item);
      try { document = JSON.parse(text); } catch { document = text; }
      const { index, id } = itemAction(d.item);
      deadFile.write(JSON.stringify({
        ts: new Date().toISOString(), reason: d.reason, status: d.status, error: d.error,
        index, _id: id, op, line: d.item.line, document,
      }) + '\n');
    }
    if (d.reason === 'rejected') {
      if (shown < REJECTS_SHOWN) warn(io, NAME, `stdin:${d.item.line}: refused by the cluster (${d.status} ${d.error.type}: ${d.error.reason})${deadFile ? '' : ', not indexed'}`);
      else if (shown === REJECTS_SHOWN) warn(io, NAME, 'more documents refused; from now on they are only counted');
      shown++;
    }
  };
  const shipper = new Shipper({
    transport, op, flushBytes, flushIntervalMs: flushInterval * 1000, concurrency, backoffMaxMs: backoffMax * 1000,
    deadLetter: onDead,
    onWarning: (m) => warn(io, NAME, m),
  });

  let bad = 0;
  const summary = () => {
    const s = shipper.stats;
    const indexed = s.created + s.updated + s.exists;
    return `${indexed} indexed (${s.created} new, ${s.updated + s.exists} already there), ${s.rejected} refused, ${s.notIndexed} not indexed, ${s.pending} pending, ${bad} bad input line${bad === 1 ? '' : 's'}; ${s.requests} requests, ${s.retriedRequests} retried, ${s.retriedItems} items retried${deadFile ? `; dead letters in ${deadPath}` : ''}`;
  };
  const onUsr1 = () => warn(io, NAME, summary());
  io.signals.on('SIGUSR1', onUsr1);

  try {
    if (a.setup) {
      const name = (a['index-template'] as string | undefined) ?? (dataStream ?? pattern!.wildcard.replace(/\*/g, '').replace(/[-._]+$/, '')) ?? 'ctpipe';
      try {
        const said = await setup(transport, { name: name || 'ctpipe', pattern: dataStream ?? pattern!.wildcard, dataStream: dataStream !== undefined, raw: a.raw as boolean });
        for (const s of said) warn(io, NAME, s);
      } catch (e) {
        if (e instanceof SetupError) throw new Failure(`--setup: ${e.message}`);
        throw new Failure(`--setup: ${(e as Error).message}`);
      }
      if (io.stdinIsTTY) return 0;
    }

    const mapper: MapperOptions = { op, raw: a.raw as boolean, index: dataStream === undefined ? (a.index as string) : null, dataStream: dataStream ?? null, maxLine: MAX_LINE };
    const onChunk = (c: MappedChunk, base: number): Promise<void> | void => {
      for (const b of c.bad) {
        bad++;
        warn(io, NAME, `stdin:${base + b.no}: ${b.message}`);
      }
      const m = c.meta;
      for (let k = 0; k < c.items; k++) shipper.addEncoded(c.out, m[4 * k], m[4 * k + 1], m[4 * k + 2], base + m[4 * k + 3]);
      if (shipper.full) return shipper.room();
    };

    // SIGTERM (and SIGINT from a terminal): stop reading as at the end of
    // input, and give the cluster --drain-timeout from now to acknowledge.
    let drainTimer: NodeJS.Timeout | null = null;
    const onAbort = () => {
      try { (io.stdin as any).push(null); } catch { /* already ended */ }
      if (drainTimeout > 0) drainTimer = setTimeout(() => shipper.abort(new Error(`not acknowledged within --drain-timeout (${drainTimeout} s) after the signal`)), drainTimeout * 1000);
    };
    if (io.signal.aborted) onAbort();
    else io.signal.addEventListener('abort', onAbort, { once: true });
    try {
      await mapInput({ input: io.stdin, mapper, jobs, onChunk });
    } catch (e) {
      // The shipper stopped (a failure retrying cannot fix, or the drain
      // timeout after a signal): report below. Anything else is ours.
      if (!shipper.failure && !io.signal.aborted) throw e;
    } finally {
      io.signal.removeEventListener('abort', onAbort);
    }
    const complete = await shipper.drain(drainTimer ? 0 : drainTimeout * 1000);
    if (drainTimer) clearTimeout(drainTimer);
    if (shipper.failure) warn(io, NAME, `stopped: ${shipper.failure.message}`);
    if (!complete || bad || a.stats) warn(io, NAME, summary());
    return complete && bad === 0 && !shipper.failure ? 0 : 1;
  } finally {
    io.signals.off('SIGUSR1', onUsr1);
    transport.close();
    if (deadFile) await new Promise<void>((resolve) => deadFile!.end(() => resolve()));
  }
}

export const command: Command = { name: NAME, readsStdin: true, main };
