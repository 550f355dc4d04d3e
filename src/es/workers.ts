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
import type { Readable } from 'node:stream';
import { lineMapper, mapChunk, type MappedChunk, type MapperOptions } from './mapper.js';
import { cutLines } from '../lines/cut.js';
import { WorkerPool } from '../lines/pool.js';
import { packageUrl } from '../paths.js';

// tsc's output, also when this module is part of a command's bundle.
const WORKER_URL = packageUrl('dist/src/es/worker.js');

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

/** Worker threads mapping runs of lines to bulk items. */
function mapperPool(n: number, mapper: MapperOptions): WorkerPool<MappedChunk> {
  return new WorkerPool<MappedChunk>({
    size: n, url: WORKER_URL, workerData: mapper, name: 'mapping worker',
    decode: (m) => ({ out: Buffer.from(m.out, 0, m.outLength), meta: new Int32Array(m.meta), items: m.items, lines: m.lines, bad: m.bad }),
  });
}

/** Read `input` to its end, mapping every line; resolves with the number of lines read. */
export async function mapInput(o: MapInputOptions): Promise<number> {
  const threshold = o.parallelThreshold ?? 32 * 1024;
  const maxLine = o.mapper.maxLine;
  const local = lineMapper(o.mapper);
  let pool: WorkerPool<MappedChunk> | null = null;
  const queue: Promise<MappedChunk>[] = [];
  let base = 0;

  const take = async () => {
    const c = await queue.shift()!;
    const b = base;
    base += c.lines;
    await o.onChunk(c, b);
  };
  const dispatch = async (buf: Buffer) => {
    if (!pool && o.jobs > 0 && buf.length >= threshold) pool = mapperPool(o.jobs, o.mapper);
    if (pool) {
      queue.push(pool.run(buf));
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
    for await (const cut of cutLines(o.input, maxLine)) {
      if (cut.body) await dispatch(cut.body);
      else overlong(cut.overlong);
    }
    while (queue.length) await take();
  } finally {
    if (pool) await (pool as WorkerPool<MappedChunk>).close();
  }
  return base;
}
