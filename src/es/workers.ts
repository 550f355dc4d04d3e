// Reading the input and mapping it to bulk items, in worker threads when the
// input comes in bulk: parsing each event and writing its ECS document is
// nearly all of ct-es's CPU time, and one core does not make the 50,000
// documents a second a replay of a saved day needs. Chunks are cut at line
// ends, handed out in turn, and taken back strictly in input order, so
// documents keep their order and `stdin:N` numbers stay right. At most two
// chunks per worker are out at a time, and the next is read only when the
// caller has taken the last one: the caller's back-pressure reaches the
// input. A live stream (small reads) is mapped in this thread, with no added
// latency; workers start when one read brings 32 KiB or more.
//
// No `process`: a stream, options and a callback.
import { Worker } from 'node:worker_threads';
import type { Readable } from 'node:stream';
import { lineMapper, mapChunk, type MappedChunk, type MapperOptions } from './mapper.js';
import { bomLength } from '../ndjson.js';

const WORKER_URL = new URL('./worker.js', import.meta.url);

export interface MapInputOptions {
  input: Readable;
  mapper: MapperOptions;
  /** Worker threads at most (0: map in this thread). */
  jobs: number;
  /** Bytes one read must bring before workers start (default 32 KiB). */
  parallelThreshold?: number;
  /**
   * Each mapped chunk, in input order; `base` is the number of the line
   * before its first. The next chunk comes when the returned promise settles.
   */
  onChunk(c: MappedChunk, base: number): void | Promise<void>;
}

interface Pending {
  resolve(c: MappedChunk): void;
  reject(e: Error): void;
}

class Pool {
  private workers: { w: Worker; busy: number }[] = [];
  private pending = new Map<number, Pending>();
  private next = 0;
  private failure: Error | null = null;
  private closing = false;

  constructor(n: number, mapper: MapperOptions) {
    for (let i = 0; i < n; i++) {
      const w = new Worker(WORKER_URL, { workerData: mapper });
      const slot = { w, busy: 0 };
      w.on('message', (m) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        slot.busy--;
        if (m.error) return p.reject(new Error(`mapping worker: ${m.error}`));
        p.resolve({ out: Buffer.from(m.out, 0, m.outLength), meta: new Int32Array(m.meta), items: m.items, lines: m.lines, bad: m.bad });
      });
      w.on('error', (e) => this.fail(e));
      w.on('exit', (code) => {
        if (!this.closing) this.fail(new Error(`mapping worker exited with code ${code}`));
      });
      this.workers.push(slot);
    }
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  map(buf: Buffer): Promise<MappedChunk> {
    if (this.failure) return Promise.reject(this.failure);
    let slot = this.workers[0];
    for (const s of this.workers) if (s.busy < slot.busy) slot = s;
    // A copy the worker can own: an input chunk may share memory with others.
    const ab = new ArrayBuffer(buf.length);
    buf.copy(Buffer.from(ab));
    const id = this.next++;
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

/** Read `input` to its end, mapping every line; resolves with the number of lines read. */
export async function mapInput(o: MapInputOptions): Promise<number> {
  const threshold = o.parallelThreshold ?? 32 * 1024;
  const maxLine = o.mapper.maxLine;
  const local = lineMapper(o.mapper);
  let pool: Pool | null = null;
  const queue: Promise<MappedChunk>[] = [];
  let base = 0;

  const take = async () => {
    const c = await queue.shift()!;
    const b = base;
    base += c.lines;
    await o.onChunk(c, b);
  };
  const dispatch = async (buf: Buffer) => {
    if (!pool && o.jobs > 0 && buf.length >= threshold) pool = new Pool(o.jobs, o.mapper);
    if (pool) {
      queue.push(pool.map(buf));
      while (queue.length >= o.jobs * 2) await take();
    } else {
      while (queue.length) await take();
      queue.push(Promise.resolve(mapChunk(buf, local, o.mapper)));
      await take();
    }
  };
  /** A line too long to keep: counted and reported where it stands, never held whole. */
  const overlong = (length: number) => {
    queue.push(Promise.resolve({ out: Buffer.alloc(0), meta: new Int32Array(0), items: 0, lines: 1, bad: [{ no: 1, message: `line of ${length} bytes is too long, skipped` }] }));
  };

  try {
    let carry: Buffer | null = null;
    let skipping = 0; // bytes of an over-long line being dropped
    let atStart = true; // a byte order mark is dropped there
    for await (const chunk of o.input) {
      let buf: Buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (skipping) {
        const nl = buf.indexOf(10);
        if (nl < 0) {
          skipping += buf.length;
          continue;
        }
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
    else if (carry) await dispatch(carry.subarray(atStart ? bomLength(carry) : 0));
    while (queue.length) await take();
  } finally {
    if (pool) await (pool as Pool).close();
  }
  return base;
}
