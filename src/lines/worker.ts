// Worker thread side of run.ts: builds the line processor named by the main
// thread (a name of processors.ts and its options), then turns each chunk it is sent
// into output bytes. Stateless between chunks apart from the processor.
import { parentPort, workerData } from 'node:worker_threads';
import { processChunk, type LineProcessor } from './chunk.js';
import { createProcessor, type ProcessorName } from './processors.js';

interface Init { name: ProcessorName; options: never; maxLine: number }

const init = workerData as Init;
const proc: LineProcessor = await createProcessor(init.name, init.options);

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
