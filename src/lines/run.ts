// Drive a line processor over input sources, in this thread or, for bulk
// input, in worker threads: JSON.parse is most of the cost of a stream
// stage, and one core cannot parse a million events a second. Chunks are
// cut at line ends, handed out in turn, and their results written strictly
// in input order, so order is preserved and `file:N:` numbers stay right.
// At most 2 chunks per worker are in flight: back-pressure from the output
// reaches the input. A live stream (small reads) stays in this thread, with
// no added latency; workers start only when a read brings 32 KiB or more.
// Processors that keep state across lines declare `parallel: false` and
// always run here. No `process`: streams, options and callbacks only.
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { Writable } from 'node:stream';
import { processChunk, type ChunkResult, type Diag, type LineProcessor } from './chunk.js';
import { MAX_LINE, bomLength } from '../ndjson.js';
import type { Source } from '../input.js';

export interface ProcessorSpec {
  /** URL of a module exporting `createProcessor(options): LineProcessor | Promise<LineProcessor>`. */
  module: string;
  /** Passed to createProcessor; must survive structured cloning when parallel. */
  options: unknown;
  /** False when the processor keeps state across lines: then it runs in one thread. */
  parallel: boolean;
}

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
}

export interface RunCounts {
  lines: number;
  bad: number;
  failedSources: number;
}

const WORKER_URL = new URL('./worker.js', import.meta.url);

interface PoolResult extends ChunkResult {
  /** The chunk's memory, to give back to the pool once the output is written. */
  recycle?: ArrayBuffer;
}

interface Pending { resolve(r: PoolResult): void; reject(e: Error): void }

/** Worker threads running one processor; chunks go to the least busy. */
class Pool {
  private workers: { w: Worker; busy: number }[] = [];
  private pending = new Map<number, Pending>();
  private nextId = 0;
  private failure: Error | null = null;

  constructor(n: number, spec: ProcessorSpec, maxLine: number) {
    for (let i = 0; i < n; i++) {
      const w = new Worker(WORKER_URL, { workerData: { module: spec.module, options: spec.options, maxLine } });
      const slot = { w, busy: 0 };
      w.on('message', (m) => {
        if (m.ready) return;
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        slot.busy--;
        if (m.error) return p.reject(new Error(`worker: ${m.error}`));
        const whole = m.buf instanceof ArrayBuffer;
        p.resolve({
          out: whole ? Buffer.from(m.buf, 0, m.length) : Buffer.from(m.buf.buffer, m.buf.byteOffset, m.length),
          lines: m.lines, bad: m.bad, diags: m.diags,
          recycle: whole ? m.buf : undefined,
        });
      });
      w.on('error', (e) => this.fail(e));
      w.on('exit', (code) => { if (code !== 0 && !this.closing) this.fail(new Error(`worker exited with code ${code}`)); });
      this.workers.push(slot);
    }
  }

  private closing = false;

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  /** Memory that came back from the workers, for the next chunks (fresh memory costs page faults). */
  private free: ArrayBuffer[] = [];

  recycle(ab: ArrayBuffer): void {
    if (this.free.length < this.workers.length * 3) this.free.push(ab);
  }

  run(buf: Buffer): Promise<PoolResult> {
    if (this.failure) return Promise.reject(this.failure);
    let slot = this.workers[0];
    for (const s of this.workers) if (s.busy < slot.busy) slot = s;
    // A copy the worker can own: the input chunk may share memory with others.
    let ab: ArrayBuffer | undefined;
    while ((ab = this.free.pop()) && ab.byteLength < buf.length + 1);
    if (!ab) ab = new ArrayBuffer(Math.max(buf.length + 4096, 2 << 20));
    buf.copy(Buffer.from(ab));
    const id = this.nextId++;
    slot.busy++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      slot.w.postMessage({ id, buf: ab, length: buf.length }, [ab]);
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers.map((s) => s.w.terminate()));
  }
}

const READ_SIZE = 1 << 20;

/**
 * A source's bytes. A regular file (named, or as stdin) is read with
 * fs.read into two buffers used again and again, in turn: the next read is
 * under way while the caller works on the chunk it was given (it is done
 * with a chunk when it asks for the next: run() copies or processes it at
 * once), fresh memory for every megabyte would cost page faults, and a
 * chunk ends at a line end, the start of the next line moved to the front
 * of the other buffer, so that the caller never has to join them. Anything
 * else (a pipe, a terminal) is read as a stream.
 */
function openChunks(src: Source, signal?: AbortSignal): { chunks: AsyncIterable<Buffer | string>; cleanup: () => void } {
  let fd = src.path !== undefined ? fs.openSync(src.path, 'r') : src.fd;
  const owned = src.path !== undefined;
  if (fd !== undefined && !owned) {
    try {
      if (!fs.fstatSync(fd).isFile()) fd = undefined;
    } catch {
      fd = undefined;
    }
  }
  if (fd === undefined) {
    const stream = src.open();
    const onAbort = () => stream.destroy();
    signal?.addEventListener('abort', onAbort, { once: true });
    return { chunks: stream, cleanup: () => signal?.removeEventListener('abort', onAbort) };
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
  return { chunks: read(), cleanup: () => { if (owned) fs.closeSync(file); } };
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
  const mod = await import(o.spec.module);
  const local: LineProcessor = await mod.createProcessor(o.spec.options);
  let pool: Pool | null = null;
  const counts: RunCounts = { lines: 0, bad: 0, failedSources: 0 };
  const stopped = () => !!o.signal?.aborted || o.out.destroyed;

  try {
    for (const src of o.sources) {
      if (stopped()) break;
      let base = 0;
      const queue: Promise<PoolResult>[] = [];
      const emit = async (r: PoolResult) => {
        for (const d of r.diags) {
          const text = d.kind === 'note' ? d.message : `${src.name}:${base + (d.no ?? 0)}: ${d.message}`;
          o.onDiag(text, d);
        }
        base += r.lines;
        counts.lines += r.lines;
        counts.bad += r.bad;
        if (r.out.length && !stopped()) {
          const ab = r.recycle;
          // The memory is reused once written, not before.
          const more = o.out.write(r.out, ab && pool ? () => (pool as Pool).recycle(ab) : undefined);
          if (!more) await waitDrain(o.out, o.signal);
        } else if (r.recycle && pool) (pool as Pool).recycle(r.recycle);
      };
      const drainOne = async () => emit(await queue.shift()!);
      const dispatch = async (body: Buffer) => {
        if (!pool && o.jobs > 0 && o.spec.parallel && body.length >= threshold) pool = new Pool(o.jobs, o.spec, maxLine);
        if (pool) {
          queue.push(pool.run(body));
          while (queue.length >= o.jobs * 2) await drainOne();
        } else {
          while (queue.length) await drainOne();
          await emit(processChunk(body, local, maxLine));
        }
      };
      const overlong = (length: number) => {
        queue.push(Promise.resolve({ out: Buffer.alloc(0), lines: 1, bad: 1, diags: [{ kind: 'bad', no: 1, message: `line longer than ${maxLine} bytes (${length}+), skipped` }] }));
      };

      let chunks: AsyncIterable<Buffer | string>;
      let cleanup = () => {};
      try {
        ({ chunks, cleanup } = openChunks(src, o.signal));
      } catch (e) {
        o.onSourceError(src, e as Error);
        counts.failedSources++;
        continue;
      }
      let carry: Buffer | null = null;
      let skipping = 0; // bytes of an over-long line being dropped, 0 when not
      let atStart = true; // a byte order mark is dropped there
      try {
        for await (const chunk of chunks) {
          if (stopped()) break;
          let buf: Buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
          if (skipping) {
            const nl = buf.indexOf(10);
            if (nl < 0) { skipping += buf.length; continue; }
            overlong(skipping + nl);
            skipping = 0;
            buf = buf.subarray(nl + 1);
          }
          if (carry) buf = Buffer.concat([carry, buf]);
          carry = null;
          if (atStart && buf.length >= 3) {
            atStart = false;
            buf = buf.subarray(bomLength(buf));
          }
          const last = buf.lastIndexOf(10);
          if (last < 0) {
            if (buf.length > maxLine) skipping = buf.length;
            else carry = Buffer.from(buf);
            continue;
          }
          if (last + 1 < buf.length) {
            const rest = buf.subarray(last + 1);
            if (rest.length > maxLine) skipping = rest.length;
            else carry = Buffer.from(rest);
          }
          await dispatch(buf.subarray(0, last + 1));
        }
        if (skipping) overlong(skipping);
        else if (carry && !stopped()) await dispatch(carry.subarray(atStart ? bomLength(carry) : 0));
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
    if (pool) await (pool as Pool).close();
  }
  return counts;
}
