// A stream stage that is one transform function (and a flush): through2's
// wrapper, as the design card asks, typed as node's Transform. Measured
// within 10% of a hand-written `new Transform` by bench/ndjson.bench.js
// (README, Packages used). Used where a command's stage is exactly that:
// ct-events' serializer and ct-syslog's encoder.
import through2 from 'through2';
import type { Transform, TransformCallback, TransformOptions } from 'node:stream';

export type StageFn = (this: Transform, chunk: any, encoding: BufferEncoding, callback: TransformCallback) => void;
export type StageFlush = (this: Transform, callback: TransformCallback) => void;

/** A Transform running `transform` (and `flush` at the end) with `options`. */
export function stage(options: TransformOptions, transform: StageFn, flush?: StageFlush): Transform {
  return through2(options as never, transform as never, flush as never) as unknown as Transform;
}
