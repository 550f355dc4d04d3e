// Worker thread side of run.ts: builds the line processor named by the main
// thread (a module URL and its options), then turns each chunk it is sent
// into output bytes. Stateless between chunks apart from the processor.
import { parentPort, workerData } from 'node:worker_threads';
import { processChunk, type LineProcessor } from './chunk.js';

interface Init { module: string; options: unknown; maxLine: number }

const init = workerData as Init;
const mod = await import(init.module);
const proc: LineProcessor = await mod.createProcessor(init.options);

parentPort!.on('message', (m: { id: number; buf: ArrayBuffer; length: number }) => {
  try {
    // The output is written over the input in the same memory, which goes
    // back to the main thread with it and is used again for a later chunk.
    const r = processChunk(Buffer.from(m.buf, 0, m.length), proc, init.maxLine, true);
    const ab = r.out.buffer as ArrayBuffer;
    const own = r.out.byteOffset === 0;
    parentPort!.postMessage(
      { id: m.id, buf: own ? ab : r.out, length: r.out.length, lines: r.lines, bad: r.bad, diags: r.diags },
      own ? [ab] : [],
    );
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: (e as Error).stack ?? String(e) });
  }
});
parentPort!.postMessage({ ready: true });
