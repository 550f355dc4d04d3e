// ct-syslog: events (or any text lines) to syslog, locally or over the network.
import fs, { createReadStream, ReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { hostname } from 'node:os';
import { pipeline } from 'node:stream/promises';
import { stage } from '../stage.js';
import { isRegularFile } from '../input.js';
import { commandLine, parseArgs, warn, Failure, UsageError, type Command, type IO } from '../cli.js';
import { LineSplitter, type Line } from '../ndjson.js';
import { VERSION } from '../version.js';
import { compileTemplate, compilePreset, TemplateError, PRESET_NAMES, type Renderer } from '../format/template.js';
import { facilityCode, severityCode, validSdId, RFC3164_MAX, type SyslogFormat } from '../syslog/message.js';
import { Encoder, LineError, type InputKind } from '../syslog/encode.js';
import { Shipper } from '../syslog/shipper.js';
import { parseHostPort, StreamTransport, UdpTransport, LOCAL_UDP_RATE, UnixTransport, RelpTransport, type Message, type Transport } from '../syslog/transports.js';
import type { Framing } from '../syslog/framing.js';

const NAME = 'ct-syslog';

/** The local syslog socket, as logger(1) and syslog(3) use it. */
export const DEFAULT_SOCKET = '/dev/log';
/** rsyslog's default largest message (global maxMessageSize "8k", which it takes as 8096 bytes): what is sent arrives whole. */
export const DEFAULT_MAX_SIZE = 8096;
/** Default severities per event kind: records about lost events deserve attention. */
export const DEFAULT_KIND_SEVERITY: Record<string, string> = { overrun: 'warning' };

function options(argv: string[], io: IO) {
  const y = commandLine(NAME, `Usage: ${NAME} [--udp|--tcp|--tls|--relp host[:port] | --unix path] [options]\n\n` +
    'Send each input line to syslog: events (NDJSON, see ct-event(5)) as JSON or through a template, other lines as they are. ' +
    'Without a transport option, to the local socket /dev/log. A full queue makes ct-syslog stop reading its input rather than lose anything.')
    .option('unix', { type: 'string', description: `Local datagram socket (default ${DEFAULT_SOCKET} when no other transport is given)` })
    .option('udp', { type: 'string', description: 'UDP (RFC 5426), host[:port], port 514 by default' })
    .option('tcp', { type: 'string', description: 'TCP (RFC 6587), host[:port], port 514 by default' })
    .option('tls', { type: 'string', description: 'TLS (RFC 5425), host[:port], port 6514 by default' })
    .option('relp', { type: 'string', description: 'RELP (acknowledged; nothing lost across server restarts), host[:port], port 2514 by default' })
    .option('format', { type: 'string', choices: ['rfc5424', 'rfc3164'], description: 'Message format (default rfc5424; rfc3164 on the local socket, as logger(1))' })
    .option('framing', { type: 'string', choices: ['octet', 'lf'], default: 'octet', description: 'TCP/TLS framing (RFC 6587): octet counting or an LF after each message' })
    .option('ca', { type: 'string', description: 'TLS: CA certificates (PEM) to check the server with (default: the system\'s)' })
    .option('cert', { type: 'string', description: 'TLS: client certificate (PEM)' })
    .option('key', { type: 'string', description: 'TLS: client private key (PEM)' })
    .option('server-name', { type: 'string', description: 'TLS: the name the server certificate must carry (default: the host given)' })
    .option('insecure', { type: 'boolean', default: false, description: 'TLS: do not check the server certificate' })
    .option('rate', { type: 'string', description: `UDP: messages a second at most, as N/s or N; 0 or none: no pacing (default: ${LOCAL_UDP_RATE}/s to an address of this host, none to others)` })
    .option('relp-tls', { type: 'boolean', default: false, description: 'RELP over TLS (rsyslog imrelp tls="on"), with --ca, --cert, --key, --server-name and --insecure as for --tls' })
    .option('window', { type: 'number', default: 128, description: 'RELP: messages sent and not yet acknowledged, at most' })
    .option('facility', { type: 'string', default: 'user', description: 'Facility: a name (user, daemon, authpriv, local0..local7, ...) or 0-23' })
    .option('severity', { type: 'string', array: true, description: 'Severity (default info), or per event kind as kind=severity (default overrun=warning); repeatable' })
    .option('app-name', { type: 'string', default: NAME, description: 'APP-NAME (RFC 5424) or TAG (RFC 3164)' })
    .option('procid', { type: 'string', description: 'PROCID (default: the pid of ct-syslog; - for none)' })
    .option('hostname', { type: 'string', description: 'HOSTNAME (default: the event\'s "host", else this host\'s name)' })
    .option('sd', { type: 'boolean', default: false, description: 'RFC 5424 structured data with the 5-tuple and the owner\'s pid' })
    .option('sd-id', { type: 'string', default: 'ct@32473', description: 'SD-ID of that element (name@<your private enterprise number>)' })
    .option('cee', { type: 'boolean', default: false, description: 'Prefix the JSON body with @cee: (for rsyslog\'s mmjsonparse)' })
    .option('template', { alias: 't', type: 'string', description: 'Message body of an event from a ct-format template, e.g. \'<proto> <src>:<sport> > <dst>:<dport> <process.comm>\'' })
    .option('preset', { type: 'string', choices: PRESET_NAMES as string[], description: 'Message body from a ct-format preset (packettrail, kv, ...)' })
    .option('input', { type: 'string', choices: ['auto', 'json', 'text'], default: 'auto', description: 'auto: lines starting with { are events, others text; json: every line is an event; text: every line is a message' })
    .option('max-size', { type: 'number', description: `Largest message in bytes (default ${DEFAULT_MAX_SIZE}; ${RFC3164_MAX} for rfc3164 over the network). JSON is never cut: long fields (the command line first) are shortened and named in "truncated"; text is cut` })
    .option('queue', { type: 'number', default: 10000, description: 'Messages held while the server is slow or away; when full, stop reading input' })
    .option('drop-when-full', { type: 'boolean', default: false, description: 'When the queue is full, drop new messages and count them instead of waiting' })
    .option('drain-timeout', { type: 'number', default: 10, description: 'At end of input or on SIGTERM, seconds to go on sending what is queued (0: no limit)' })
    .option('retry-max', { type: 'number', default: 30, description: 'Longest wait between reconnection attempts, in seconds (the wait doubles from 0.2 s)' })
    .example(`sudo ct-events | ct-attribute | ${NAME}`, 'to the local syslog daemon, one JSON event a message')
    .example(`sudo ct-events | ${NAME} --relp logs.example --sd`, 'to a remote rsyslog, acknowledged, with the 5-tuple as structured data')
    .example(`sudo ct-events | ${NAME} --tls logs.example --ca /etc/ssl/ca.pem --facility local3`, 'over TLS, checking the server certificate')
    .example(`sudo ct-events | ${NAME} --relp logs.example --relp-tls --ca ca.pem --cert web-1.pem --key web-1.key`, 'RELP over TLS, with a client certificate')
    .example(`sudo ct-events | ct-attribute | ${NAME} --udp 10.0.0.2 --preset packettrail`, 'packetTrail\'s message body over UDP')
    .example(`sudo ct-events | ${NAME} --udp logs.example --rate 5000/s`, 'over UDP, at most 5,000 messages a second (a receiver with a small buffer)')
    .example(`ct-format '<src> > <dst>' < events.ndjson | ${NAME} --tcp 127.0.0.1:5140 --framing lf`, 'text lines as they are');
  return parseArgs(y, argv, io);
}

function positive(v: unknown, what: string, allowZero = false): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0)) throw new UsageError(`${what} must be a ${allowZero ? 'number >= 0' : 'positive number'}`);
  return n;
}

/** `--rate`: `N/s` or `N` messages a second; `0` or `none`: unpaced; absent: 'auto'. */
export function parseRate(v: unknown): number | 'auto' {
  if (v === undefined) return 'auto';
  const t = String(v).trim().toLowerCase();
  if (t === 'none') return 0;
  const m = /^(\d+(?:\.\d+)?)(?:\/s)?$/.exec(t);
  if (!m) throw new UsageError(`--rate '${v}' is not a rate (N/s, N, 0 or none)`);
  return Number(m[1]);
}

function readFile(path: string | undefined, what: string): Buffer | undefined {
  if (path === undefined) return undefined;
  try {
    return fs.readFileSync(path);
  } catch (e) {
    throw new Failure(`${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function makeTransport(a: Record<string, any>): { transport: Transport; local: boolean } {
  const picked = ['unix', 'udp', 'tcp', 'tls', 'relp'].filter((k) => a[k] !== undefined);
  if (picked.length > 1) throw new UsageError(`choose one transport, not ${picked.map((k) => '--' + k).join(' and ')}`);
  const kind = picked[0] ?? 'unix';
  const addr = (port: number) => {
    const v = a[kind];
    if (typeof v !== 'string' || v === '') throw new UsageError(`--${kind} needs host[:port]`);
    try {
      return parseHostPort(v, port);
    } catch (e) {
      throw new UsageError(`--${kind}: ${(e as Error).message}`);
    }
  };
  const tlsOnly = ['ca', 'cert', 'key', 'server-name'].filter((k) => a[k] !== undefined).concat(a.insecure ? ['insecure'] : []);
  const relpTls = a['relp-tls'] === true;
  if (relpTls && kind !== 'relp') throw new UsageError('--relp-tls is for --relp');
  if (kind === 'relp' && !relpTls && tlsOnly.length) throw new UsageError(`--${tlsOnly[0]} with --relp needs --relp-tls (RELP over TLS)`);
  if (kind !== 'tls' && kind !== 'relp' && tlsOnly.length) throw new UsageError(`--${tlsOnly[0]} is for --tls and --relp --relp-tls`);
  if (kind !== 'udp' && a.rate !== undefined) throw new UsageError('--rate is for --udp (the other transports have flow control)');
  if ((a.cert === undefined) !== (a.key === undefined)) throw new UsageError('--cert and --key go together');
  switch (kind) {
    case 'unix': {
      const path = typeof a.unix === 'string' && a.unix !== '' ? a.unix : DEFAULT_SOCKET;
      return { transport: new UnixTransport(path), local: true };
    }
    case 'udp': {
      const { host, port } = addr(514);
      return { transport: new UdpTransport(host, port, { rate: parseRate(a.rate) }), local: false };
    }
    case 'tcp': {
      const { host, port } = addr(514);
      return { transport: new StreamTransport(host, port, a.framing as Framing), local: false };
    }
    case 'tls': {
      const { host, port } = addr(6514);
      return {
        transport: new StreamTransport(host, port, a.framing as Framing, {
          ca: readFile(a.ca, 'CA file'), cert: readFile(a.cert, 'certificate'), key: readFile(a.key, 'key'),
          insecure: a.insecure as boolean, serverName: a['server-name'] as string | undefined,
        }),
        local: false,
      };
    }
    default: {
      const { host, port } = addr(2514);
      const window = positive(a.window, '--window');
      if (!Number.isInteger(window)) throw new UsageError('--window must be a whole number');
      const tls = relpTls ? {
        ca: readFile(a.ca, 'CA file'), cert: readFile(a.cert, 'certificate'), key: readFile(a.key, 'key'),
        insecure: a.insecure as boolean, serverName: a['server-name'] as string | undefined,
      } : undefined;
      return { transport: new RelpTransport(host, port, { window, software: `ctpipe,${VERSION}`, tls }), local: false };
    }
  }
}

function severities(list: string[] | undefined): { severity: number; byKind: Record<string, number> } {
  let severity = 6;
  const byKind: Record<string, number> = {};
  for (const [k, v] of Object.entries(DEFAULT_KIND_SEVERITY)) byKind[k] = severityCode(v)!;
  for (const item of (list ?? []).flatMap((s) => String(s).split(',')).filter((s) => s.trim() !== '')) {
    const eq = item.indexOf('=');
    const name = eq < 0 ? item : item.slice(eq + 1);
    const code = severityCode(name);
    if (code === undefined) throw new UsageError(`unknown severity '${name}' (emerg, alert, crit, err, warning, notice, info, debug or 0-7)`);
    if (eq < 0) severity = code;
    else byKind[item.slice(0, eq).trim()] = code;
  }
  return { severity, byKind };
}

/**
 * A saved file on stdin (`< events.ndjson`) is read this much at a time:
 * node reads a file through libuv's thread pool, 64 KiB a trip by default,
 * and each trip costs the main thread about as much as sending the lines
 * it brings (200k bench events: 2,450 reads, ~0.1 s).
 */
const FILE_CHUNK = 1 << 20;

/** The standard input; when it is node's stream of a regular file, the file read FILE_CHUNK at a time instead. */
function stdinOf(io: IO): Readable {
  const s = io.stdin;
  if (!(s instanceof ReadStream) || (s as unknown as { fd: unknown }).fd !== 0 || !isRegularFile(0)) return s;
  return createReadStream('', { fd: 0, highWaterMark: FILE_CHUNK, autoClose: false });
}

export async function main(argv: string[], io: IO): Promise<number> {
  const a = await options(argv, io);
  if (!a) return 0;
  const { transport, local } = makeTransport(a);
  const format = ((a.format as string | undefined) ?? (local ? 'rfc3164' : 'rfc5424')) as SyslogFormat;
  const facility = facilityCode(String(a.facility));
  if (facility === undefined) throw new UsageError(`unknown facility '${a.facility}' (kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, local0..local7 or 0-23)`);
  const { severity, byKind } = severities(a.severity as string[] | undefined);
  if (a.sd && format !== 'rfc5424') throw new UsageError('--sd needs --format rfc5424 (RFC 3164 has no structured data)');
  const sdId = String(a['sd-id']);
  if (!validSdId(sdId)) throw new UsageError(`--sd-id '${sdId}' is not an SD-ID (name@<enterprise number>, printable ASCII, no = ] " or space)`);
  const bodies = (['template', 'preset', 'cee'] as const).filter((k) => a[k] !== undefined && a[k] !== false);
  if (bodies.length > 1) throw new UsageError(`choose one of --template, --preset and --cee, not ${bodies.map((k) => '--' + k).join(' and ')}`);
  let body: 'json' | 'cee' | Renderer = a.cee ? 'cee' : 'json';
  try {
    if (a.template !== undefined) body = compileTemplate(String(a.template));
    else if (a.preset !== undefined) body = compilePreset(String(a.preset)).render;
  } catch (e) {
    if (e instanceof TemplateError) throw new UsageError(e.message);
    throw e;
  }
  // The local daemon takes rsyslog's 8096 bytes (journald more) in either
  // format; RFC 3164's 1024 is for relays on the network.
  const maxSize = a['max-size'] !== undefined ? positive(a['max-size'], '--max-size') : format === 'rfc3164' && !local ? RFC3164_MAX : DEFAULT_MAX_SIZE;
  if (format === 'rfc3164' && !local && maxSize > RFC3164_MAX) warn(io, NAME, `--max-size ${maxSize} is over RFC 3164's limit of ${RFC3164_MAX} bytes; receivers may cut or refuse longer messages`);
  const queue = positive(a.queue, '--queue');
  if (!Number.isInteger(queue)) throw new UsageError('--queue must be a whole number');
  const drainMs = positive(a['drain-timeout'], '--drain-timeout', true) * 1000;
  const retryMaxMs = positive(a['retry-max'], '--retry-max') * 1000;

  const encoder = new Encoder({
    format, local, facility, severity, severityByKind: byKind,
    hostname: a.hostname as string | undefined, defaultHostname: hostname(),
    appName: String(a['app-name']), procid: a.procid !== undefined ? String(a.procid) : String(process.pid),
    input: a.input as InputKind, body, sdId: a.sd ? sdId : undefined, maxSize,
    slowPath: io.env.CTPIPE_TEST_SLOW_PATH === '1',
  });

  // Over UDP, which has no flow control, big reads only make an unpaced burst denser (more of it lost: bench syslog-burst).
  const input = transport instanceof UdpTransport ? io.stdin : stdinOf(io);
  let bad = 0;
  // Lines' text is made only for the lines that need it: an event line on the fast path goes out as its own bytes.
  const splitter = new LineSplitter((no, why) => {
    bad++;
    warn(io, NAME, `stdin:${no}: ${why}`);
  }, { lazyText: true });
  const encode = stage({
    writableObjectMode: true,
    readableObjectMode: true,
    // Batches (one per input chunk) are the unit here: hold few, so that a full queue stops stdin soon.
    writableHighWaterMark: 1,
    readableHighWaterMark: 1,
  }, function (batch: Line[], _enc, cb) {
    const out: Message[] = [];
    for (const line of batch) {
      const before = encoder.truncated;
      const shortened = encoder.shortened;
      const oversize = encoder.oversize;
      try {
        const m = encoder.encodeLine(line);
        if (m !== null) out.push(m);
      } catch (e) {
        if (!(e instanceof LineError)) return cb(e as Error);
        bad++;
        warn(io, NAME, `stdin:${line.no}: ${e.message}`);
        continue;
      }
      if (before === 0 && encoder.truncated === 1) {
        warn(io, NAME, `stdin:${line.no}: message longer than ${maxSize} bytes, cut to fit (--max-size); further cuts are counted`);
      }
      if (shortened === 0 && encoder.shortened === 1) {
        warn(io, NAME, `stdin:${line.no}: event longer than ${maxSize} bytes: its command line (or other long fields) shortened to fit, named in its "truncated" field (--max-size); further ones are counted`);
      }
      if (oversize === 0 && encoder.oversize === 1) {
        warn(io, NAME, `stdin:${line.no}: event longer than ${maxSize} bytes even with its long fields shortened: sent whole, the receiver may refuse or cut it (--max-size); further ones are counted`);
      }
    }
    if (out.length) this.push(out);
    cb();
  });
  const shipper = new Shipper({
    transport, queue, dropWhenFull: a['drop-when-full'] as boolean, drainTimeoutMs: drainMs, backoffMaxMs: retryMaxMs,
    notice: (line) => warn(io, NAME, line),
  });
  shipper.start();

  // Stop reading on SIGTERM (or Ctrl-C at a terminal), then send what is queued.
  const stopInput = () => {
    shipper.endInput();
    input.unpipe(splitter);
    input.pause();
    splitter.end();
  };
  input.once('end', () => shipper.endInput());
  if (io.signal.aborted) stopInput();
  io.signal.addEventListener('abort', stopInput, { once: true });
  input.on('error', (e) => splitter.destroy(e));
  input.pipe(splitter);
  try {
    await pipeline(splitter, encode, shipper);
  } finally {
    io.signal.removeEventListener('abort', stopInput);
    if (io.signal.aborted) input.destroy();
  }
  if (encoder.shortened > 1) warn(io, NAME, `${encoder.shortened} events had long fields shortened to fit --max-size ${maxSize} bytes`);
  if (encoder.oversize > 1) warn(io, NAME, `${encoder.oversize} events were sent whole over --max-size ${maxSize} bytes`);
  if (encoder.truncated > 1) warn(io, NAME, `${encoder.truncated} messages were cut to --max-size ${maxSize} bytes`);
  if (bad) warn(io, NAME, `${bad} bad input line${bad === 1 ? '' : 's'} skipped`);
  return bad || shipper.stats.unsent || shipper.stats.closeError ? 1 : 0;
}

export const command: Command = { name: NAME, readsStdin: true, main };
