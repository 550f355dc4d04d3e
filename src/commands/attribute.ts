// ct-attribute: add the owner (process, user, unit, container) to each flow event.
import { createReadStream, WriteStream } from 'node:fs';
import { Socket } from 'node:net';
import v8 from 'node:v8';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { commandLine, parseArgs, warn, UsageError, Failure, type Command, type IO } from '../cli.js';
import { LineSplitter, parseObject, type Line } from '../ndjson.js';
import { isFlowEvent, nowTs, type FlowEvent } from '../event.js';
import { createEngine, describeMethods } from '../attribute/factory.js';
import { EngineError, type Engine } from '../attribute/engine.js';
import { protectDash, restoreDash, isRegularFile } from '../input.js';
import { compileRequired } from '../filter/validate.js';
import { compileRedactor, OwnerRedactor, PatternError } from '../attribute/redact.js';
import { DnsEnrichment } from '../attribute/enrichments/dns.js';
import { ProcessEnrichment } from '../attribute/enrichments/process.js';
import { NEEDS, missingCaps, ownEffectiveCaps } from '../caps.js';
import { EventReader } from '../event/reader.js';
import { TextBuffer } from '../lines/text-buffer.js';
import { appendOwner } from '../attribute/output.js';
import { testSwitches, dropEarly } from '../attribute/sources/bpf/early.js';

const NAME = 'ct-attribute';
/** What the attribution reads of an event: without these, or of another type, it is passed on unattributed. */
export const INPUT_CHECKED = ['id', 'family', 'proto', 'src', 'sport', 'dst', 'dport', 'reply'];
const checkInput = compileRequired(['id', 'proto', 'src', 'dst'], INPUT_CHECKED);

const isPort = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 65535;

/**
 * Whether a flow event has every field checkInput checks, each of its
 * type (the fields, and reply's members, of checkedFields(INPUT_CHECKED):
 * a test holds the two lists together): checkInput then finds nothing, so
 * a flow event of the usual shape is not walked through the contract's
 * check tree (a dozen keyed reads, each a lookup by name, for every event
 * of a flood). Any other event is checked by checkInput, whose message
 * says what is wrong.
 */
function plainInput(ev: Record<string, any>): boolean {
  const r = ev.reply;
  return Number.isInteger(ev.id) && typeof ev.family === 'string' && typeof ev.proto === 'string' && typeof ev.src === 'string' && isPort(ev.sport) &&
    typeof ev.dst === 'string' && isPort(ev.dport) && r !== null && typeof r === 'object' && !Array.isArray(r) &&
    typeof r.src === 'string' && isPort(r.sport) && typeof r.dst === 'string' && isPort(r.dport);
}

/** What is wrong with a flow event's fields for the attribution (checkInput's answer), or null. */
export function inputProblem(ev: Record<string, any>): string | null {
  return plainInput(ev) ? null : checkInput(ev);
}

/**
 * Every field of a flow event that the attribution reads (the engine, its
 * sources and enrichments, checkInput): on the fast path an event has these
 * alone (src/event/reader.ts), so a field read there must be named here.
 */
export const ATTRIBUTION_READS = ['ts', 'event', 'id', 'family', 'proto', 'src', 'sport', 'dst', 'dport', 'reply', 'start', 'host'] as const;
/** Fields of an event attributed before: such an event is read whole (its fields are replaced, see processBatch). */
const ADDED = ['direction', 'process', 'peer', 'attribution'];

/**
 * The fast path of ct-attribute's input: a flow event line's fields the
 * attribution reads, or undefined for a line read whole with parseObject
 * (not in compact form, attributed before, a special record).
 */
export function inputReader(enriched: readonly string[]): (line: Line) => Record<string, any> | undefined {
  const reader = new EventReader({ read: ATTRIBUTION_READS, decline: [...ADDED, ...enriched.filter((f) => !ADDED.includes(f))] });
  return (line) => {
    const r = reader.read(line.buf, line.start, line.end);
    return r !== undefined && isFlowEvent(r) ? r : undefined;
  };
}

/** --redact and --redact-pattern: null when off. */
function redactorOf(on: boolean, patterns: string[] = []): OwnerRedactor | null {
  if (!on && patterns.length) throw new UsageError('--redact-pattern needs --redact');
  if (!on) return null;
  try {
    return new OwnerRedactor(compileRedactor(patterns.map(String)));
  } catch (e) {
    throw e instanceof PatternError ? new UsageError(e.message) : e;
  }
}

/** Said once, at the first flow whose owner could not be read for want of privilege. */
function noPermissionMessage(): string {
  const missing = missingCaps(NEEDS.attribute, ownEffectiveCaps());
  return `other users' processes cannot be read (${missing.length ? `missing ${missing.join(' and ')}` : 'their /proc/PID/fd is not readable'}): their flows get attribution reason "no-permission"`;
}

function options(argv: string[], io: IO) {
  const y = commandLine(NAME, `Usage: ${NAME} [options] [file...]\n\nRead events (NDJSON from ct-events, or files) and add who owns each flow: "direction", "process" {pid, ppid, uid, user, gid, group, comm, exe, cmdline, cgroup, unit, container, inode, netns, start_time} and "attribution" {method, ok, reason}; forwarded flows of containers are looked up in their network namespaces. See ct-attribute(1).`)
    // Declared so that strict mode accepts file arguments.
    .command('$0 [file..]', false)
    .option('cmdline', { type: 'boolean', default: true, description: 'Include the command line (--no-cmdline leaves it out: it may hold secrets)' })
    .option('redact', { type: 'boolean', default: false, description: 'Replace secrets in command lines with *** (password=, token=, --password VALUE, Authorization: headers, user:password@ in URLs, ...; see ct-attribute(1))' })
    .option('redact-pattern', { type: 'string', array: true, requiresArg: true, description: 'With --redact, also this regular expression, matched in each argument (case-insensitive; its first group, or the whole match, is replaced); repeatable' })
    .option('cache', { type: 'boolean', default: true, description: 'Remember each flow\'s owner by conntrack id for its UPDATE and DESTROY events (--no-cache looks every event up anew)' })
    .option('peer', { type: 'boolean', default: true, description: 'For local flows (both ends on this host) also name the peer process in "peer"' })
    .option('max-flows', { type: 'number', default: 100000, description: 'Flows remembered at most (least recently used are forgotten)' })
    .option('max-processes', { type: 'number', default: 20000, description: 'Processes remembered at most' })
    .option('stats', { type: 'boolean', default: false, description: 'At the end, print attribution counts on stderr' })
    .option('stats-interval', { type: 'number', default: 0, description: 'Write an {"event":"attribution-stats"} record (answers by method and reason, methods live) every N seconds (0: never)' })
    .option('netns', { type: 'boolean', default: true, description: 'Find the owners of forwarded flows in the host\'s other network namespaces (containers); --no-netns leaves them "forwarded"' })
    .option('docker-root', { type: 'string', default: '/var/lib/docker', description: 'Docker\'s data root, for container names and images' })
    .option('containerd-state', { type: 'string', default: '/run/containerd', description: 'containerd\'s state directory, for container names and images (Kubernetes, nerdctl)' })
    .option('containers-storage', { type: 'string', array: true, default: ['/run/containers/storage', '/var/lib/containers/storage'], description: 'containers/storage roots, for container names and images (CRI-O, Podman); repeatable' })
    .option('bpf', { type: 'boolean', description: 'Also name owners from what BPF programs on kernel tracepoints saw at connect and send time: finds processes gone before sock_diag could see them. Needs CAP_BPF and CAP_PERFMON (or root) and a kernel with BTF (Linux 5.8+). Default: on when those capabilities are held and the input is a pipe, not a file; --no-bpf turns it off' })
    .option('bpf-window', { type: 'number', default: 30, description: 'With --bpf: how long an event whose socket is gone waits for the sighting of its port (ms)' })
    .option('audit', { type: 'boolean', default: false, description: 'Also name owners from the kernel\'s audit records of connect/sendto/sendmsg calls (NETLINK_AUDIT): finds processes gone before sock_diag could see them' })
    .option('audit-rules', { type: 'boolean', default: false, description: 'With --audit: add the audit rules it needs for the run (key ctpipe-PID) and remove exactly those at exit' })
    .option('audit-window', { type: 'number', default: 30, description: 'With --audit: a call matches an event when it began at most this many ms before the event was received; an event without an owner waits as long for a late record' })
    .option('audit-daemon', { type: 'boolean', default: false, description: 'With --audit: when no audit daemon is registered, register as it (records are then not written to the kernel log); released at exit' })
    .option('dns-names', { type: 'boolean', default: true, description: 'Name each flow\'s remote from the "dns" records ct-events writes (the name its client asked for, the CNAME chain, the answer\'s age) in "dns"; --no-dns-names passes the records on instead' })
    .option('pass-dns', { type: 'boolean', default: false, description: 'Also pass the "dns" records on downstream (they are used up here by default)' })
    .option('ancestry', { type: 'number', default: 4, description: 'Name the owner\'s parent and ancestors, this many processes in all ("process.parent", "process.ancestors"); 0: none' })
    .option('hash', { type: 'boolean', default: false, description: 'Add the SHA-256 of the owner\'s executable ("process.hash"), computed beside the stream and cached by file' })
    .option('hash-max-bytes', { type: 'number', default: 512 * 1024 * 1024, description: 'With --hash: larger executables are not read ("process.hash.error": "too-large")' })
    .example(`sudo ct-events | ${NAME}`, 'who owns each new and closed connection')
    .example(`sudo ct-events | ${NAME} --hash | ct-format who`, 'the names of remotes, the process lineage and the executable\'s digest')
    .example(`sudo ct-events | ${NAME} --audit --audit-rules`, 'also the owners of connections too brief to look up (audit)')
    .example(`sudo ct-events -p tcp | ${NAME} --no-cmdline | ct-format`, 'readable, without command lines')
    .example(`${NAME} < saved.ndjson`, 'attribute saved events (owners must still exist)')
    .example(`sudo ct-events | ${NAME} --stats-interval 60 | ct-filter -e attribution-stats`, 'every minute, how many flows each method named, and why the rest were not')
    .example(`sudo ct-events | ${NAME} | jq -c 'select(.process.container) | [.process.container.name, .dst, .dport]'`, 'connections made by containers');
  return parseArgs(y, protectDash(argv), io).then((a) => a && restoreDash(a));
}

export async function main(argv: string[], io: IO): Promise<number> {
  // V8's optimizing compiler inlines less into one function (200 bytes of
  // bytecode in all, not 920): the hot path's functions (the engine's
  // batch, the sources' look-ahead) are compiled again after each deopt,
  // on a thread of their own, and a flood paid about a quarter of
  // ct-attribute's CPU for it; the code made runs about as fast
  // (bench/pipeline.bench.js).
  v8.setFlagsFromString('--max-inlined-bytecode-size-cumulative=200');
  const stopHeapGrowth = heapGrowth();
  try {
    return await attributeMain(argv, io);
  } finally {
    stopHeapGrowth();
  }
}

/** The heap a full collection's limit may reach by more than 30% growth (heapGrowth). */
const ROOMY_HEAP = 48 * 1024 * 1024;

/**
 * How far V8 lets the heap grow past the live data before the next full
 * collection (--heap-growing-percent, read as each one ends): 30%, not
 * V8's default factor of up to 4, so that resident memory follows the
 * bounded flow and process memory (--max-flows, --max-processes;
 * bench/attribute.bench.js, RSS part); up to 100% while that keeps the
 * heap's limit within ROOMY_HEAP: at 30% throughout, a flood made a full
 * collection every few megabytes while the flow memory filled, and their
 * marking was about a fifth of ct-attribute's CPU in the pipeline bench's
 * 200,000 flows. The flag set after a collection is the next one's: its
 * limit is at most the live data then, which is at most this one's limit,
 * times the growth chosen now. Returns a function that stops watching.
 */
function heapGrowth(): () => void {
  let percent = 100;
  v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
  const follow = () => {
    const limit = v8.getHeapStatistics().used_heap_size * (1 + percent / 100);
    const p = Math.max(30, Math.min(100, Math.floor((ROOMY_HEAP / limit - 1) * 100)));
    if (p === percent) return;
    percent = p;
    v8.setFlagsFromString(`--heap-growing-percent=${p}`);
  };
  const watch = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if ((e as { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) return follow();
    }
  });
  watch.observe({ entryTypes: ['gc'] });
  return () => watch.disconnect();
}

async function attributeMain(argv: string[], io: IO): Promise<number> {
  const a = await options(argv, io);
  if (!a) return 0;
  for (const k of ['max-flows', 'max-processes'] as const) {
    const v = Number(a[k]);
    if (!Number.isInteger(v) || v < 1) throw new UsageError(`--${k} must be a positive whole number`);
  }
  const windowMs = Number(a['audit-window']);
  if (!Number.isFinite(windowMs) || windowMs < 0 || windowMs > 60000) throw new UsageError('--audit-window must be a number of milliseconds from 0 to 60000');
  const bpfWindow = Number(a['bpf-window']);
  if (!Number.isFinite(bpfWindow) || bpfWindow < 0 || bpfWindow > 60000) throw new UsageError('--bpf-window must be a number of milliseconds from 0 to 60000');
  const statsEvery = Number(a['stats-interval']);
  if (!(statsEvery >= 0)) throw new UsageError('--stats-interval must be a number of seconds >= 0');
  const files = (((a as any).file ?? []) as (string | number)[]).map(String);
  const live = !files.length && !isRegularFile(0);
  const redactor = redactorOf(a.redact as boolean, a['redact-pattern'] as string[] | undefined);
  const depth = Number(a.ancestry);
  if (!Number.isInteger(depth) || depth < 0 || depth > 64) throw new UsageError('--ancestry must be a whole number from 0 to 64');
  const hashMax = Number(a['hash-max-bytes']);
  if (!Number.isInteger(hashMax) || hashMax < 1) throw new UsageError('--hash-max-bytes must be a positive whole number');
  const enrichments = [];
  if (depth > 0 || a.hash) enrichments.push(new ProcessEnrichment({ depth, hash: a.hash as boolean, hashMaxBytes: hashMax, cmdline: a.cmdline as boolean, maxEntries: Number(a['max-processes']) }));
  if (a['dns-names']) enrichments.push(new DnsEnrichment({ pass: a['pass-dns'] as boolean }));
  const engine = createEngine({
    enrichments,
    cmdline: a.cmdline as boolean,
    flowCache: a.cache as boolean,
    peer: a.peer as boolean,
    maxFlows: Number(a['max-flows']),
    maxProcesses: Number(a['max-processes']),
    euid: process.geteuid?.(),
    caps: ownEffectiveCaps(),
    netns: a.netns ? { docker: String(a['docker-root']), containerd: String(a['containerd-state']), storage: (a['containers-storage'] as string[]).map(String) } : false,
    bpf: a.bpf as boolean | undefined,
    // Test-only switches (ct-attribute(1), ENVIRONMENT): the UDP route of
    // kernels before 6.3 forced on a newer one, a ring buffer small enough to overflow.
    // bin/ct-attribute's early load (sources/bpf/early.ts) reads them the same way.
    bpfUdp: testSwitches(io.env).udp,
    bpfRingBytes: testSwitches(io.env).ringBytes,
    // Sightings are about the live system: a saved file is not.
    live,
    bpfWindowMs: bpfWindow,
    audit: a.audit || a['audit-rules'] || a['audit-daemon'] ? { rules: a['audit-rules'] as boolean, daemon: a['audit-daemon'] as boolean, windowMs } : false,
    pid: process.pid,
    arch: process.arch,
    onWarning: (method, m) => warn(io, NAME, `${method}: ${m}`),
  });
  try {
    await engine.start();
  } catch (e) {
    throw e instanceof EngineError ? new Failure(e.message) : e;
  } finally {
    // The programs bin/ct-attribute attached early, when the options turned bpf off (a file, --no-bpf): detached.
    dropEarly();
  }
  // What runs, and why not the rest: said for a live input (a saved file
  // only gets sock_diag), or when bpf was asked for (whether it loaded).
  if (live || a.bpf === true) warn(io, NAME, `methods: ${describeMethods(engine.status())}`);
  const run: Run = { engine, busy: false, redactor, statsDue: false, slow: io.env.CTPIPE_TEST_SLOW_PATH === '1' };
  const stats = statsEvery > 0 ? setInterval(() => {
    run.statsDue = true;
    // Between batches (an idle input) it goes out at once.
    if (!run.busy) io.stdout.write(records(run));
  }, statsEvery * 1000) : null;
  stats?.unref();
  let bad = 0;
  let unreadable = 0;
  try {
    for (const file of files.length ? files : ['-']) {
      const n = await attributeInput(run, file, io);
      if (n < 0) unreadable++;
      else bad += n;
    }
  } finally {
    if (stats) clearInterval(stats);
    await engine.close();
    // The counts at the end of the input too, so the last interval is not lost.
    if (stats) run.statsDue = true;
    const rest = records(run);
    if (rest) io.stdout.write(rest);
  }
  if (a.stats) for (const l of engine.statsLines()) warn(io, NAME, l);
  if (bad) warn(io, NAME, `${bad} bad input line${bad === 1 ? '' : 's'} skipped`);
  return bad || unreadable ? 1 : 0;
}

/** One run's engine, and the state of its output between batches. */
interface Run {
  engine: Engine;
  /** A batch is being attributed: special records wait for its end. */
  busy: boolean;
  /** The --stats-interval timer fired: a stats record goes out after the batch. */
  statsDue: boolean;
  /** --redact: owners written with secrets taken out of their command lines. */
  redactor: OwnerRedactor | null;
  /** Every line parsed whole (CTPIPE_TEST_SLOW_PATH=1): for the tests that hold the fast path to it. */
  slow: boolean;
}

/** The sources' special records (lost audit records), placed in the stream where they were noticed; a stats record when due. */
function records(run: Run): string {
  const engine = run.engine;
  let s = '';
  if (run.statsDue) {
    run.statsDue = false;
    s += JSON.stringify(engine.statsRecord(nowTs())) + '\n';
  }
  for (const r of engine.takeRecords()) s += JSON.stringify(r) + '\n';
  return s;
}

/** Whether `ev` has one of `fields` (a loop: no closure made per event). */
function hasAny(ev: object, fields: readonly string[]): boolean {
  for (let i = 0; i < fields.length; i++) if (fields[i] in ev) return true;
  return false;
}

/** An input line's bytes, buf[start, end). */
type Bytes = Pick<Line, 'buf' | 'start' | 'end'>;

/** Input batches being attributed at once at most (see attributeInput). */
const MAX_BATCHES = 16;

/** Engines whose want of privilege was said (once per run). */
const warnedPermission = new WeakSet<Engine>();

/**
 * Attribute one input (a file, or '-' for stdin) onto stdout; returns the
 * number of bad lines, or -1 for a file that could not be read (said as
 * `file: why`, as the other commands say it; the next files are still read).
 */
async function attributeInput(run: Run, file: string, io: IO): Promise<number> {
  const engine = run.engine;
  let bad = 0;
  const label = file === '-' ? 'stdin' : file;
  const input = file === '-' ? io.stdin : createReadStream(file);
  const splitter = new LineSplitter((no, why) => {
    bad++;
    warn(io, NAME, `${label}:${no}: ${why}`);
  }, { lazyText: true });
  const fields = engine.enrichedFields;
  const fast = run.slow ? () => undefined : inputReader(fields);
  const redactor = run.redactor;
  const out = new TextBuffer();
  /** A batch's output: at once when every event was attributed without waiting (engine.runBatch), else a promise of it. */
  const processBatch = (batch: Line[]): Buffer | Promise<Buffer> => {
    const outs: (string | FlowEvent)[] = new Array(batch.length);
    /** The input lines that the owner is appended to (see appendOwner), by position. */
    const inputs: (Bytes | undefined)[] = new Array(batch.length);
    const events: FlowEvent[] = [];
    for (let i = 0; i < batch.length; i++) {
      const line = batch[i];
      let obj = fast(line);
      // The fast reader declines a line with any of the fields added here (inputReader).
      const plain = obj !== undefined;
      if (obj === undefined) {
        try {
          obj = parseObject(line.text);
        } catch (e) {
          bad++;
          warn(io, NAME, `${label}:${line.no}: ${(e as Error).message}`);
          outs[i] = '';
          continue;
        }
      }
      const why = isFlowEvent(obj) ? inputProblem(obj) : null;
      if (!isFlowEvent(obj) || why !== null) {
        if (why !== null) {
          bad++;
          warn(io, NAME, `${label}:${line.no}: ${why}, passed on unattributed`);
        }
        outs[i] = isFlowEvent(obj) || engine.record(obj) ? line.text + '\n' : '';
        continue;
      }
      const ev = obj as FlowEvent;
      outs[i] = ev;
      // The input text is kept and the owner appended to it, unless the
      // event was attributed before (its fields are then replaced).
      if (plain || !('direction' in ev || 'process' in ev || 'peer' in ev || 'attribution' in ev || hasAny(ev, fields))) inputs[i] = line;
      events.push(ev);
    }
    const w = engine.runBatch(events);
    if (!w) return output(outs, inputs);
    // The lines' bytes are a view of the input read, to be used before the
    // next batch (ndjson.ts): kept, as copies, while this one waits.
    for (let i = 0; i < inputs.length; i++) {
      const l = inputs[i];
      if (l !== undefined) inputs[i] = { buf: Buffer.from(l.buf.subarray(l.start, l.end)), start: 0, end: l.end - l.start };
    }
    return w.then(() => output(outs, inputs));
  };
  const output = (outs: (string | FlowEvent)[], inputs: (Bytes | undefined)[]): Buffer => {
    if (!warnedPermission.has(engine) && engine.answered('no-permission')) {
      warnedPermission.add(engine);
      warn(io, NAME, noPermissionMessage());
    }
    for (let i = 0; i < outs.length; i++) {
      const o = outs[i];
      if (typeof o === 'string') out.add(o);
      else {
        const l = inputs[i];
        if (l !== undefined) appendOwner(out, l.buf, l.start, l.end, redactor ? redactor.event(o) : o, fields);
        else out.add(JSON.stringify(redactor ? redactor.event(o) : o) + '\n');
      }
    }
    out.add(records(run));
    return out.take();
  };
  // Batches overlap: the next batch is read and its lookups go out while
  // an earlier one still waits for a miss (the fd index's rescan yields
  // between slices), and outputs leave in input order. At most
  // MAX_BATCHES wait, and none is taken in while the output is full.
  let inFlight = 0;
  let failed = false;
  let tail: Promise<void> = Promise.resolve();
  let held: ((e?: Error | null) => void) | null = null;
  // `asked`: the output side asks for more (its buffer is being emptied).
  const release = (asked = false) => {
    if (held && inFlight < MAX_BATCHES && (asked || attr.readableLength < attr.readableHighWaterMark)) {
      const cb = held;
      held = null;
      cb();
    }
  };
  const attr: Transform = new Transform({
    writableObjectMode: true,
    readableObjectMode: false,
    writableHighWaterMark: 4,
    transform(batch: Line[], _enc, cb) {
      let out: Buffer | Promise<Buffer>;
      try {
        out = processBatch(batch);
      } catch (e) {
        failed = true;
        cb(e as Error);
        return;
      }
      if (inFlight === 0 && !(out instanceof Promise)) {
        // Done at once, with nothing before it still waiting: out now,
        // without a turn through the promise chain.
        if (out.length && !failed) attr.push(out);
        cb();
        return;
      }
      inFlight++;
      run.busy = true;
      tail = tail.then(() => out).then((bytes) => {
        inFlight--;
        run.busy = inFlight > 0;
        if (bytes.length && !failed) attr.push(bytes);
        release();
      }, (e) => {
        inFlight--;
        if (!failed) {
          failed = true;
          attr.destroy(e as Error);
        }
      });
      held = cb;
      release();
    },
    read(size) {
      release(true);
      // Transform's own: a write that found the output full goes on now.
      (Transform.prototype as any)._read.call(attr, size);
    },
    flush(cb) {
      tail.then(() => cb(), cb);
    },
  });
  // SIGTERM: treat as end of input, so what was read is still written.
  const onAbort = () => { try { (input as any).push(null); } catch { /* already ended */ } };
  io.signal.addEventListener('abort', onAbort, { once: true });
  // A signal that came while the methods were starting (audit rules being set up) ends the input now.
  if (io.signal.aborted) onAbort();
  let inputError: unknown = null;
  if (input !== io.stdin) input.once('error', (e: Error) => { inputError = e; });
  const sink = outputSink(io.stdout, out, (e) => splitter.destroy(e));
  try {
    await pipeline(input, splitter, attr, sink.stream, { end: false });
  } catch (e) {
    if (e !== inputError) throw e;
    warn(io, NAME, `${label}: ${(e as Error).message}`);
    return -1;
  } finally {
    sink.done();
    io.signal.removeEventListener('abort', onAbort);
  }
  return bad;
}

/**
 * Where the batches' output goes: stdout, each batch's buffer given back
 * to `out` (TextBuffer.recycle) once stdout has written it, so that a
 * flood fills the same few buffers again instead of making one per batch.
 * Only for streams whose write callback means the bytes have left (a pipe,
 * socket or terminal; a file stream): another (an in-memory stream that
 * keeps the chunk it was given) is written to as it is, and keeps its chunks.
 * `onError`: stdout failed (the input is to be stopped).
 */
function outputSink(stdout: Writable, out: TextBuffer, onError: (e: Error) => void): { stream: Writable; done: () => void } {
  if (!(stdout instanceof Socket || stdout instanceof WriteStream)) return { stream: stdout, done: () => {} };
  let drained: (() => void) | null = null;
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (stdout.write(chunk, (err) => { if (!err) out.recycle(chunk); })) cb();
      else drained = cb;
    },
  });
  const onDrain = () => {
    const cb = drained;
    drained = null;
    cb?.();
  };
  // A write error (EPIPE: the reader left) ends the run at once, as it does
  // when stdout is in the pipeline itself: before any other listener (the
  // command's, which ends the input) lets what was read be taken as a
  // whole input (its last line cut).
  const onStdoutError = (e: Error) => {
    stream.destroy(e);
    onError(e);
  };
  stdout.on('drain', onDrain);
  stdout.prependListener('error', onStdoutError);
  return { stream, done: () => { stdout.off('drain', onDrain); stdout.off('error', onStdoutError); } };
}

export const command: Command = { name: NAME, readsStdin: true, libuvStdout: true, main };
