// The design card's stream packages against the paths ctpipe uses instead,
// measured evenly: the same generated events from memory, the same number
// of stages, every variant in every round with the order reversed from one
// round to the next, medians of RUNS rounds, one thread. Each variant's
// last stage counts what arrived (parsed records or written bytes), and
// the count must match.
//
//   split:     split2 -> JSON.parse each line   vs  LineSplitter (batches of numbered lines) -> JSON.parse each line
//   parse:     ndjson.parse()                   vs  LineSplitter -> JSON.parse each line
//   transform: through2.obj(fn)                 vs  new Transform({objectMode, transform: fn}), on LineSplitter's batches
//   write:     ndjson.stringify()               vs  one Transform writing a batch's records as one Buffer
//
// A ratio above 1.00x means ctpipe's path is faster. The rule applied in
// README "Packages": a package is used where it is within 10% of the path
// ctpipe would otherwise write.
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { loadavg } from 'node:os';
import split2 from 'split2';
import through2 from 'through2';
import ndjson from 'ndjson';
import { LineSplitter } from '../dist/src/ndjson.js';
import { generate } from './gen-events.js';

const N = Number(process.env.LINES ?? 200000);
const RUNS = Number(process.env.RUNS ?? 5);
const lines = [...generate(N)].map((l) => (typeof l === 'string' ? l : JSON.stringify(l)).replace(/\n$/, ''));
const text = Buffer.from(lines.map((l) => l + '\n').join(''));
const records = lines.map((l) => JSON.parse(l));
const chunks = [];
for (let i = 0; i < text.length; i += 65536) chunks.push(text.subarray(i, i + 65536));

/** The last stage: counts objects (or batches' members, or bytes). */
function counter(kind) {
  const c = { n: 0 };
  c.stream = new Writable({
    objectMode: kind !== 'bytes',
    highWaterMark: kind === 'bytes' ? 65536 : 16,
    write(x, _e, cb) { c.n += kind === 'batch' ? x.length : kind === 'bytes' ? x.length : 1; cb(); },
  });
  return c;
}
const parseBatch = (batch) => batch.map((l) => JSON.parse(l.text));

const PAIRS = {
  split: {
    package: async () => { const c = counter('one'); await pipeline(Readable.from(chunks), split2(JSON.parse), c.stream); return c.n; },
    ctpipe: async () => {
      const c = counter('batch');
      await pipeline(Readable.from(chunks), new LineSplitter(), new Transform({ objectMode: true, transform(b, _e, cb) { cb(null, parseBatch(b)); } }), c.stream);
      return c.n;
    },
  },
  parse: {
    package: async () => { const c = counter('one'); await pipeline(Readable.from(chunks), ndjson.parse({ strict: true }), c.stream); return c.n; },
    ctpipe: async () => {
      const c = counter('batch');
      await pipeline(Readable.from(chunks), new LineSplitter(), new Transform({ objectMode: true, transform(b, _e, cb) { cb(null, parseBatch(b)); } }), c.stream);
      return c.n;
    },
  },
  transform: {
    package: async () => {
      const c = counter('batch');
      await pipeline(Readable.from(chunks), new LineSplitter(), through2.obj(function (b, _e, cb) { cb(null, parseBatch(b)); }), c.stream);
      return c.n;
    },
    ctpipe: async () => {
      const c = counter('batch');
      await pipeline(Readable.from(chunks), new LineSplitter(), new Transform({ objectMode: true, transform(b, _e, cb) { cb(null, parseBatch(b)); } }), c.stream);
      return c.n;
    },
  },
  write: {
    package: async () => { const c = counter('bytes'); await pipeline(Readable.from(records), ndjson.stringify(), c.stream); return c.n; },
    ctpipe: async () => {
      const batches = [];
      for (let i = 0; i < records.length; i += 256) batches.push(records.slice(i, i + 256));
      const c = counter('bytes');
      await pipeline(Readable.from(batches), new Transform({
        writableObjectMode: true,
        transform(b, _e, cb) { let s = ''; for (const r of b) s += JSON.stringify(r) + '\n'; cb(null, Buffer.from(s)); },
      }), c.stream);
      return c.n;
    },
  },
};

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const want = process.env.ONLY ? process.env.ONLY.split(',') : Object.keys(PAIRS);

console.log(`${N} lines (${(text.length / 1e6).toFixed(1)} MB), ${RUNS} rounds, order reversed each round; load ${loadavg().map((x) => x.toFixed(2)).join(' ')}; one thread`);
for (const name of want) {
  const pair = PAIRS[name];
  const times = { package: [], ctpipe: [] };
  const counts = new Set();
  await pair.package(); await pair.ctpipe(); // warm-up, not counted
  for (let r = 0; r < RUNS; r++) {
    for (const side of r % 2 ? ['ctpipe', 'package'] : ['package', 'ctpipe']) {
      const t0 = process.hrtime.bigint();
      const n = await pair[side]();
      times[side].push(Number(process.hrtime.bigint() - t0) / 1e9);
      counts.add(n);
    }
  }
  const unit = name === 'write' ? 'records' : 'lines';
  const p = median(times.package), c = median(times.ctpipe);
  const same = counts.size === 1 ? `${[...counts][0]} ${name === 'write' ? 'bytes' : 'records'} each` : `COUNTS DIFFER: ${[...counts].join(' ')}`;
  console.log(`${name.padEnd(9)} package ${Math.round(N / p).toLocaleString('en').padStart(9)} ${unit}/s  ctpipe ${Math.round(N / c).toLocaleString('en').padStart(9)} ${unit}/s  ratio ${(p / c).toFixed(2)}x  (${same})`);
}
console.log(`load after: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
