// Why ctpipe splits lines itself: split2 (+ a through2 transform per line)
// against src/ndjson.ts's LineSplitter (one array of numbered lines per
// chunk), both parsing every line with JSON.parse, on the same generated
// events in memory. Prints lines/s and the ratio.
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import split2 from 'split2';
import { transform } from 'through2';
import { LineSplitter } from '../dist/src/ndjson.js';
import { generate } from './gen-events.js';

const N = Number(process.env.LINES ?? 300000);
const text = Buffer.from([...generate(N)].map((l) => (typeof l === "string" ? l : JSON.stringify(l)).replace(/\n$/, "") + "\n").join(""));
const chunks = [];
for (let i = 0; i < text.length; i += 65536) chunks.push(text.subarray(i, i + 65536));
const sink = () => new Writable({ objectMode: true, write(_c, _e, cb) { cb(); } });

async function viaSplit2() {
  let n = 0;
  await pipeline(Readable.from(chunks), split2(), transform({ objectMode: true }, (line, _e, cb) => { JSON.parse(line); n++; cb(null, line); }), sink());
  return n;
}
async function viaBatches() {
  let n = 0;
  await pipeline(Readable.from(chunks), new LineSplitter(), new Writable({ objectMode: true, write(batch, _e, cb) { for (const l of batch) { JSON.parse(l.text); n++; } cb(); } }));
  return n;
}
const best = async (fn) => { let t = Infinity, n = 0; for (let i = 0; i < 3; i++) { const s = process.hrtime.bigint(); n = await fn(); t = Math.min(t, Number(process.hrtime.bigint() - s) / 1e9); } return { n, rate: n / t }; };
const a = await best(viaSplit2);
const b = await best(viaBatches);
console.log(`split2 + through2, a line per push: ${Math.round(a.rate).toLocaleString('en')} lines/s (${a.n} lines)`);
console.log(`LineSplitter batches:               ${Math.round(b.rate).toLocaleString('en')} lines/s (${b.n} lines); ratio ${(b.rate / a.rate).toFixed(2)}x`);
