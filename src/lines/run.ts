// Drive a line processor over input sources, in this thread or, for bulk
// input, in worker threads: JSON.parse is most of the cost of a stream
// stage, and one core cannot parse a million events a second. Chunks are
// cut at line ends, handed out in turn, and their results written strictly
// in input order, so order is preserved and `file:N:` numbers stay right.
// At most 2 chunks per worker are in flight: back-pressure from the output
// reaches the input. A file is bulk input: workers start at its first read
// of 32 KiB or more. A live stream (a pipe) stays in this thread as long as
// this thread keeps up with it, whatever the size of its reads: workers
// start only when a backlog builds, that is when processing has kept this
// thread busy for most of a stretch of time (a worker's copies, messages
// and cold code cost more CPU than the work of a stream one thread keeps up
// with: ct-filter behind ct-attribute in a flood). Processors that keep
// state across lines declare `parallel: false` and always run here. No
// `process`: streams, options and callbacks only.
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Writable } from 'node:stream';
import { processChunk, type ChunkResult, type Diag, type LineProcessor } from './chunk.js';
import { MAX_LINE } from '../ndjson.js';
import { packageUrl } from '../paths.js';
import { cutLines, LineCutter, type Cut } from './cut.js';
import { WorkerPool } from './pool.js';
import { createProcessor, type ProcessorName, type ProcessorOptions } from './processors.js';
import { Socket } from 'node:net';
import { flowingChunks, openPipe, type PipeChunks, type Source } from '../input.js';

/** Which processor to run (src/lines/processors.ts), with its options. */
export type ProcessorSpec = {
  [K in ProcessorName]: {
    name: K;
    /** Must survive structured cloning when parallel. */
    options: ProcessorOptions[K];
    /** False when the processor keeps state across lines: then it runs in one thread. */
    parallel: boolean;
  }
}[ProcessorName];

export interface RunOptions {
  spec: ProcessorSpec;
  sources: Source[];
  out: Writable;
  signal?: AbortSignal;
  /** Worker threads at most (0: never). */
  jobs: number;
  /** A diagnostic, already prefixed with `source:N: ` where it is about a line. */
  onDiag(text: string, d: Diag): void;
  /** A source that could not be read; the others still are. */
  onSourceError(source: Source, err: Error): void;
  maxLine?: number;
  /** Bytes a read must bring for workers to start (default 32 KiB). */
  parallelThreshold?: number;
  /** The stretch of time a stream's backlog is measured over (default BUSY_SPAN_MS). */
  busySpanMs?: number;
}

export interface RunCounts {
  lines: number;
  bad: number;
  failedSources: number;
  /** Whether worker threads were started. */
  parallel: boolean;
}

/**
 * A stream's backlog: this thread was busy processing it for at least
 * BUSY_SHARE of each of BUSY_SPANS stretches of BUSY_SPAN_MS in a row (time
 * waiting for input or for the output to drain is not busy; more than one
 * stretch, so that the first chunks, run before the code is compiled, do
 * not count as one).
 */
const BUSY_SPAN_MS = 50;
const BUSY_SPANS = 2;
const BUSY_SHARE = 0.5;

// tsc's output, also when this module is part of a command's bundle.
const WORKER_URL = packageUrl('dist/src/lines/worker.js');

interface PoolResult extends ChunkResult {
  /** The chunk's memory, to give back to the pool once the output is written. */
  recycle?: ArrayBuffer;
}

/** Worker threads running one processor; chunks go to the least busy. */
function processorPool(n: number, spec: ProcessorSpec, maxLine: number): WorkerPool<PoolResult> {
  return new WorkerPool<PoolResult>({
    size: n, url: WORKER_URL, workerData: { name: spec.name, options: spec.options, maxLine }, name: 'worker', minBuffer: 2 << 20,
    decode: (m) => {
      const whole = m.buf instanceof ArrayBuffer;
      return {
        out: whole ? Buffer.from(m.buf, 0, m.length) : Buffer.from(m.buf.buffer, m.buf.byteOffset, m.length),
        lines: m.lines, bad: m.bad, diags: m.diags,
        recycle: whole ? m.buf : undefined,
      };
    },
  });
}

const READ_SIZE = 1 << 20;

/**
 * A source's bytes. A regular file (named, or as stdin) is read with
 * fs.read into two buffers used again and again, in turn: the next read is
 * under way while the caller works on the chunk it was given (it is done
 * with a chunk when it asks for the next: run() copies or processes it at
 * once), fresh memory for every megabyte would cost page faults, and a
 * chunk ends at a line end, the start of the next line moved to the front
 * of the other buffer, so that the caller never has to join them. A pipe
 * is read into buffers used again once their output is written (openPipe;
 * `recycle`: the output's write callback means the bytes have left).
 * Anything else (a socket, a terminal) is read as a stream.
 */
function openChunks(src: Source, recycle: boolean, signal?: AbortSignal): { chunks: AsyncIterable<Buffer | string>; cleanup: () => void; bulk: boolean; pipe?: PipeChunks } {
  let fd = src.path !== undefined ? fs.openSync(src.path, 'r') : src.fd;
  const owned = src.path !== undefined;
  let pipe: PipeChunks | null = null;
  if (fd !== undefined && !owned) {
    try {
      if (!fs.fstatSync(fd).isFile()) {
        pipe = openPipe(fd, { recycle });
        fd = undefined;
      }
    } catch {
      fd = undefined;
    }
  }
  if (pipe) {
    const p = pipe;
    const onAbort = () => p.close();
    signal?.addEventListener('abort', onAbort, { once: true });
    return { chunks: p, pipe: p, cleanup: () => { signal?.removeEventListener('abort', onAbort); p.close(); }, bulk: false };
  }
  if (fd === undefined) {
    const stream = src.open();
    const onAbort = () => stream.destroy();
    signal?.addEventListener('abort', onAbort, { once: true });
    return { chunks: flowingChunks(stream), cleanup: () => signal?.removeEventListener('abort', onAbort), bulk: false };
  }
  const file = fd;
  const readInto = (b: Buffer, at: number) =>
    new Promise<number>((resolve, reject) => fs.read(file, b, at, READ_SIZE - at, null, (e, k) => (e ? reject(e) : resolve(k))));
  async function* read(): AsyncGenerator<Buffer> {
    let cur = Buffer.allocUnsafeSlow(READ_SIZE);
    let other = Buffer.allocUnsafeSlow(READ_SIZE);
    let next: Promise<number> | null = readInto(cur, 0);
    let len = 0; // bytes of cur already read: the start of a line
    try {
      for (;;) {
        const n: number = await next!;
        next = null;
        if (n === 0) {
          if (len > 0) yield cur.subarray(0, len);
          return;
        }
        len += n;
        if (signal?.aborted) return;
        const last = cur.lastIndexOf(10, len - 1);
        // No line end in a whole buffer: given as it is (run() keeps what it must).
        const end = last < 0 ? len : last + 1;
        const rest = len - end;
        cur.copy(other, 0, end, len);
        next = readInto(other, rest);
        yield cur.subarray(0, end);
        [cur, other] = [other, cur];
        len = rest;
      }
    } finally {
      // Never close the file under a read still under way (the number could be another file's by then).
      if (next) await next.catch(() => 0);
    }
  }
  return { chunks: read(), cleanup: () => { if (owned) fs.closeSync(file); }, bulk: true };
}

/**
 * A pipe's chunks cut into runs of whole lines (as cutLines), each run that
 * is a view of a chunk's memory held (PipeChunks.hold) until the caller
 * releases it, once the run's output is written.
 */
async function* pipeCuts(pipe: PipeChunks, maxLine: number): AsyncGenerator<Cut> {
  const cutter = new LineCutter(maxLine);
  const cuts: Cut[] = [];
  const collect = (c: Cut) => { cuts.push(c); };
  for await (const chunk of pipe) {
    cutter.push(chunk, collect);
    for (const c of cuts) if (c.body && c.body.buffer === chunk.buffer) pipe.hold(c.body);
    pipe.release(chunk);
    while (cuts.length) yield cuts.shift()!;
  }
  cutter.end(collect);
  while (cuts.length) yield cuts.shift()!;
}

/**
 * Output written at most every WRITE_EVERY_MS while it keeps coming: each
 * write to a pipe or file is a hop to libuv's thread pool and back (fs
 * streams, src/cli.ts), and in a flood a stream's chunks come a few dozen
 * lines at a time, a write each. A chunk's output that comes less than
 * BURST_MS after the previous chunk's, and sooner than WRITE_EVERY_MS after
 * the last write, is held, with what follows it, until then (or until
 * HOLD_MAX bytes are held) and written in one go. One that comes after a
 * quieter spell of BURST_MS is written at once, with anything held: lines
 * that come one by one, even a few hundred a second, are not delayed (when
 * the spell was measured from the last write, lines 5 ms apart were held
 * a millisecond or more each: bench/filter.bench.js, latency rows).
 */
const WRITE_EVERY_MS = 5;
const BURST_MS = 2;
const HOLD_MAX = 1 << 20;

export class Gate {
  private held: Buffer[] = [];
  /** Per held chunk: what to call once it is written (or dropped). */
  private written: ((() => void) | undefined)[] = [];
  private bytes = 0;
  private last = -Infinity;
  /** When the last chunk's output came. */
  private lastPut = -Infinity;
  private timer: NodeJS.Timeout | null = null;

  /** `clock` (ms) is for tests. */
  constructor(private readonly out: Writable, private readonly signal?: AbortSignal, private readonly clock: () => number = () => performance.now()) {}

  /** Write b now or soon (in order), then call `written`; resolves when more may be written. */
  async put(b: Buffer, written?: () => void): Promise<void> {
    if (this.out.writableNeedDrain) await waitDrain(this.out, this.signal);
    const now = this.clock();
    const burst = now - this.lastPut < BURST_MS;
    this.lastPut = now;
    if (this.held.length === 0 && (!burst || now - this.last >= WRITE_EVERY_MS)) {
      this.last = now;
      if (!this.out.write(b, written && (() => written()))) await waitDrain(this.out, this.signal);
      return;
    }
    this.held.push(b);
    this.written.push(written);
    this.bytes += b.length;
    if (this.bytes >= HOLD_MAX || !burst) return this.flush();
    this.timer ??= setTimeout(() => void this.flush(), Math.max(0, this.last + WRITE_EVERY_MS - now));
  }

  /** Write what is held now. */
  flush(): Promise<void> | undefined {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const held = this.held;
    const written = this.written;
    this.held = [];
    this.written = [];
    this.bytes = 0;
    if (held.length === 0 || this.out.destroyed) {
      for (const w of written) w?.();
      return;
    }
    this.last = this.clock();
    // Corked: the held chunks go in one writev.
    this.out.cork();
    let more = true;
    for (let k = 0; k < held.length; k++) {
      const w = written[k];
      more = this.out.write(held[k], w && (() => w()));
    }
    this.out.uncork();
    return more ? undefined : waitDrain(this.out, this.signal);
  }
}

function waitDrain(out: Writable, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('error', done);
      out.off('close', done);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    out.once('drain', done);
    out.once('error', done);
    out.once('close', done);
    signal?.addEventListener('abort', done, { once: true });
  });
}

export async function runLines(o: RunOptions): Promise<RunCounts> {
  const maxLine = o.maxLine ?? MAX_LINE;
  const threshold = o.parallelThreshold ?? 32 * 1024;
  const span = o.busySpanMs ?? BUSY_SPAN_MS;
  const local: LineProcessor = await createProcessor(o.spec.name, o.spec.options as never);
  let pool: WorkerPool<PoolResult> | null = null;
  const counts: RunCounts = { lines: 0, bad: 0, failedSources: 0, parallel: false };
  const stopped = () => !!o.signal?.aborted || o.out.destroyed;
  const gate = new Gate(o.out, o.signal);
  // An output whose write callback means the bytes have left (not one that may keep what it is given).
  const recycle = o.out instanceof Socket || o.out instanceof fs.WriteStream;

  try {
    for (const src of o.sources) {
      if (stopped()) break;
      let base = 0;
      let bulk = false;
      let reused = true;
      // The stretch of time being watched for a backlog, and the time spent processing in it.
      let spanStart = performance.now();
      let busy = 0;
      let busySpans = 0;
      const queue: Promise<PoolResult>[] = [];
      /** `written`: called once r.out is written (or dropped). */
      const emit = async (r: PoolResult, written?: () => void) => {
        for (const d of r.diags) {
          const text = d.kind === 'note' ? d.message : `${src.name}:${base + (d.no ?? 0)}: ${d.message}`;
          o.onDiag(text, d);
        }
        base += r.lines;
        counts.lines += r.lines;
        counts.bad += r.bad;
        if (r.out.length && !stopped()) {
          const ab = r.recycle;
          if (ab && pool) {
            // The memory is reused once written, not before: written now, after what is held.
            await gate.flush();
            const more = o.out.write(r.out, () => (pool as WorkerPool<PoolResult>).recycle(ab));
            if (!more) await waitDrain(o.out, o.signal);
          } else await gate.put(r.out, written);
          return;
        }
        if (r.recycle && pool) (pool as WorkerPool<PoolResult>).recycle(r.recycle);
        written?.();
      };
      const drainOne = async () => emit(await queue.shift()!);
      const parallel = o.jobs > 0 && o.spec.parallel;
      const dispatch = async (body: Buffer) => {
        if (!pool && parallel && bulk && body.length >= threshold) pool = processorPool(o.jobs, o.spec, maxLine);
        if (pool) {
          counts.parallel = true;
          // run() copies the chunk for the worker.
          queue.push(pool.run(body));
          pipe?.release(body);
          while (queue.length >= o.jobs * 2) await drainOne();
          return;
        }
        while (queue.length) await drainOne();
        const t0 = parallel ? performance.now() : 0;
        // A stream's chunks are memory of their own (a file's reads reuse two buffers): ct-filter's output may be a view of them.
        const r = processChunk(body, local, maxLine, reused ? false : 'view');
        if (parallel) {
          const t1 = performance.now();
          busy += t1 - t0;
          if (t1 - spanStart >= span) {
            // Input waited while this thread worked: from now on the workers take it.
            busySpans = busy >= BUSY_SHARE * (t1 - spanStart) ? busySpans + 1 : 0;
            if (busySpans >= BUSY_SPANS) bulk = true;
            spanStart = t1;
            busy = 0;
          }
        }
        if (!pipe) await emit(r);
        // A pipe's memory is read into again once what is a view of it is written.
        else if (r.out.buffer === body.buffer && r.out.length) {
          const p = pipe;
          await emit(r, () => p.release(body));
        } else {
          pipe.release(body);
          await emit(r);
        }
      };
      const overlong = (length: number) => {
        queue.push(Promise.resolve({ out: Buffer.alloc(0), lines: 1, bad: 1, diags: [{ kind: 'bad', no: 1, message: `line longer than ${maxLine} bytes (${length}+), skipped` }] }));
      };

      let chunks: AsyncIterable<Buffer | string>;
      let cleanup = () => {};
      let pipe: PipeChunks | undefined;
      try {
        ({ chunks, cleanup, bulk, pipe } = openChunks(src, recycle, o.signal));
        reused = bulk;
      } catch (e) {
        o.onSourceError(src, e as Error);
        counts.failedSources++;
        continue;
      }
      try {
        for await (const cut of pipe ? pipeCuts(pipe, maxLine) : cutLines(chunks, maxLine)) {
          if (stopped()) break;
          if (cut.body) await dispatch(cut.body);
          else overlong(cut.overlong);
        }
        while (queue.length) await drainOne();
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        if (stopped()) break;
        if (err.syscall === 'open' || err.syscall === 'read') {
          while (queue.length) await drainOne();
          o.onSourceError(src, err);
          counts.failedSources++;
          continue;
        }
        throw e;
      } finally {
        cleanup();
      }
    }
  } finally {
    if (pool) await (pool as WorkerPool<PoolResult>).close();
    // What is held is written (an interrupted run too: SIGINT flushes what is buffered).
    await gate.flush();
  }
  return counts;
}
