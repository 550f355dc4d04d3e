// Worker thread side of workers.ts: maps each chunk of input bytes it is sent
// into bulk items (mapper.ts) and hands the result back without a copy.
import { parentPort, workerData } from 'node:worker_threads';
import { lineMapper, mapChunk, type MapperOptions } from './mapper.js';

const options = workerData as MapperOptions;
const map = lineMapper(options);

parentPort!.on('message', (m: { id: number; buf: ArrayBuffer; length: number }) => {
  try {
    const c = mapChunk(Buffer.from(m.buf, 0, m.length), map, options);
    // mapChunk's buffers own their memory from offset 0: transferable.
    const out = c.out.buffer as ArrayBuffer;
    const meta = c.meta.buffer as ArrayBuffer;
    parentPort!.postMessage({ id: m.id, out, outLength: c.out.length, meta, items: c.items, lines: c.lines, bad: c.bad }, [out, meta]);
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: (e as Error).stack ?? String(e) });
  }
});
