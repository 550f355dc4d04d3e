// ct-flows on one million generated events (bench/gen-events.js: flows that
// open, update and close, a few hundred open at a time), against baselines
// on the same file: `cat` (reading the bytes), a minimal NDJSON stage in
// Node (JSON.parse and JSON.stringify of every line, nothing else), and
// ct-filter in one thread (parse and type checks, lines passed as bytes).
// ct-flows pairs in one thread: its state is the whole stream. Lines written
// as ctpipe writes them are read from their bytes; the same events with a
// space after each colon show the speed when every line is parsed. Then peak RSS with
// many flows open, for two --max-flows values, against an idle ct-flows.
// Prints figures and ratios; asserts nothing.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus, loadavg, tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, statSync, renameSync } from 'node:fs';
import { eventsFile, generate } from './gen-events.js';
import { measure, RUNS } from './lines-bench.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'ct-flows');
const N = Number(process.env.EVENTS ?? 1000000);
const OPEN = Number(process.env.OPEN ?? 1000000);

// The minimal stage: read stdin in 1 MiB blocks, parse each line, write it back serialized.
const JSON_LOOP = `
const fs = require('fs');
const buf = Buffer.allocUnsafe(1 << 20);
let rest = '', n;
while ((n = fs.readSync(0, buf, 0, buf.length, null)) > 0) {
  const lines = (rest + buf.toString('utf8', 0, n)).split('\\n');
  rest = lines.pop();
  let out = '';
  for (const l of lines) if (l) out += JSON.stringify(JSON.parse(l)) + '\\n';
  fs.writeSync(1, out);
}`;

const file = await eventsFile(N);
console.log(`${N.toLocaleString('en-US')} events, ${file}; ${cpus().length} CPUs, load average ${loadavg()[0].toFixed(2)}`);
const out = spawnSync(BIN, [file], { maxBuffer: 1 << 30 });
const recs = out.stdout.toString().split('\n').filter(Boolean).map((l) => JSON.parse(l));
const flows = recs.filter((r) => r.event === 'flow');
console.log(`ct-flows writes ${flows.length.toLocaleString('en-US')} flow records (${flows.filter((r) => r.finished).length.toLocaleString('en-US')} finished, ` +
  `${flows.filter((r) => r.incomplete).length} incomplete, ${flows.filter((r) => r.reason === 'end-of-input').length} open at the end) ` +
  `and passes ${(recs.length - flows.length).toLocaleString('en-US')} special records; exit ${out.status}`);

console.log(`\nthroughput, the median of ${RUNS} runs each (RUNS=n to change)`);
const rFlows = measure('ct-flows', N, BIN, [], file);
const rReport = measure('ct-flows --report-every 10s', N, BIN, ['--report-every', '10s'], file);
const rJson = measure('node: JSON.parse + JSON.stringify a line', N, process.execPath, ['-e', JSON_LOOP], file);
const rFilter = measure('ct-filter --jobs 0 -p tcp (parse + check)', N, path.join(ROOT, 'bin', 'ct-filter'), ['--jobs', '0', '-p', 'tcp'], file);
const rCat = measure('cat', N, 'cat', [], file);
console.log(`ratio ct-flows / JSON loop: ${(rFlows / rJson).toFixed(2)}x; with --report-every: ${(rReport / rJson).toFixed(2)}x; ` +
  `ct-flows / ct-filter --jobs 0: ${(rFlows / rFilter).toFixed(2)}x; ct-flows / cat: ${(rFlows / rCat).toFixed(3)}x  (target, issue 18: >= 250,000 events/s; load average now ${loadavg()[0].toFixed(2)})`);

// Lines not in JSON.stringify's form (here: a space after each colon) are
// parsed: the same records, at the speed of parsing. On part of the input.
const M = Math.min(N, 250000);
const [plainPart, spaced] = await spacedFiles(file, M);
const rPlain = measure(`ct-flows, first ${M.toLocaleString('en-US')} events`, M, BIN, [], plainPart);
const rSpaced = measure('ct-flows, the same with ": " (all parsed)', M, BIN, [], spaced);
// (Other records pass as they came, spaces and all: only the flow records are compared.)
const flowLines = (f) => spawnSync(BIN, [f], { maxBuffer: 1 << 30 }).stdout.toString().split('\n').filter((l) => l.startsWith('{"ts":') && l.includes(',"event":"flow",'));
const [fp, fs] = [flowLines(plainPart), flowLines(spaced)];
const same = fp.length > 0 && fp.length === fs.length && fp.every((l, i) => l === fs[i]);
console.log(`ratio as written / all parsed: ${(rPlain / rSpaced).toFixed(2)}x; the same ${fp.length.toLocaleString('en-US')} flow records, byte for byte: ${same ? 'yes' : 'NO'}`);

/** The first m lines of `from`, and the same with a space after each key's colon (JSON that JSON.parse reads the same). */
async function spacedFiles(from, m) {
  const a = path.join(tmpdir(), `ctpipe-bench-events-${m}-head.ndjson`);
  const b = path.join(tmpdir(), `ctpipe-bench-events-${m}-spaced.ndjson`);
  if (existsSync(a) && existsSync(b) && statSync(b).size > 0) return [a, b];
  const spacedText = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)
    ? '{' + Object.entries(v).map(([k, x]) => JSON.stringify(k) + ': ' + spacedText(x)).join(',') + '}'
    : Array.isArray(v) ? '[' + v.map(spacedText).join(',') + ']' : JSON.stringify(v);
  const lines = [];
  for (const l of generate(m)) lines.push(l);
  await writeWhole(a, lines);
  await writeWhole(b, lines.map((l) => spacedText(JSON.parse(l))));
  return [a, b];
}

async function writeWhole(f, lines) {
  const part = `${f}.${process.pid}.part`;
  const w = createWriteStream(part);
  for (let i = 0; i < lines.length; i += 10000) {
    if (!w.write(lines.slice(i, i + 10000).join('\n') + '\n')) await new Promise((r) => w.once('drain', r));
  }
  await new Promise((r, j) => w.end((e) => (e ? j(e) : r())));
  renameSync(part, f);
}

// ---------------------------------------------------------------- memory

/** OPEN distinct NEW events and nothing else: every flow stays open. Shapes and sizes as the generator's. */
async function openFlowsFile(n) {
  const f = path.join(tmpdir(), `ctpipe-bench-open-${n}.ndjson`);
  if (existsSync(f) && statSync(f).size > 0) return f;
  const news = [];
  for (const l of generate(20000, 5)) {
    const e = JSON.parse(l);
    if (e.event === 'new') news.push(e);
  }
  const part = `${f}.${process.pid}.part`;
  const w = createWriteStream(part);
  let buf = '';
  const t0 = Date.UTC(2026, 10, 23) * 1000;
  for (let i = 0; i < n; i++) {
    const e = news[i % news.length];
    e.id = 2000000000 + i;
    const us = t0 + i * 100;
    e.ts = new Date(Math.floor(us / 1000)).toISOString().slice(0, 20) + String(us % 1000000).padStart(6, '0') + 'Z';
    buf += JSON.stringify(e) + '\n';
    if (buf.length > 1 << 20) {
      if (!w.write(buf)) await new Promise((r) => w.once('drain', r));
      buf = '';
    }
  }
  await new Promise((r, j) => w.end(buf, (e) => (e ? j(e) : r())));
  renameSync(part, f);
  return f;
}

/** Peak RSS (MiB) of `cmd args < input > /dev/null`, from the kernel's rusage of the child (python3 reads it). */
function peakRss(cmd, args, input) {
  const py = 'import resource, subprocess, sys\n' +
    'with open(sys.argv[1], "rb") as i: subprocess.run(sys.argv[2:], stdin=i, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n' +
    'print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)';
  const r = spawnSync('python3', ['-c', py, input, cmd, ...args]);
  if (r.status !== 0) throw new Error(`python3: ${r.stderr}`);
  return Number(r.stdout.toString().trim()) / 1024;
}

if (spawnSync('python3', ['--version']).error) {
  console.log('\nmemory: python3 is not installed (it reads the child rusage)');
  process.exit(0);
}
const openFile = await openFlowsFile(OPEN);
console.log(`\npeak RSS, ${OPEN.toLocaleString('en-US')} NEW events and no DESTROY (${openFile}): every flow stays open until evicted or written at the end`);
const idle = peakRss(BIN, [], '/dev/null');
console.log(`${'ct-flows, empty input'.padEnd(40)} ${idle.toFixed(0).padStart(6)} MiB`);
// What reading a million lines costs any stage (the garbage collector lets the heap grow), keeping nothing.
const floor = peakRss(path.join(ROOT, 'bin', 'ct-filter'), ['--jobs', '0', '-p', 'tcp'], openFile);
console.log(`${'ct-filter --jobs 0 -p tcp, same input'.padEnd(40)} ${floor.toFixed(0).padStart(6)} MiB  (a stage that keeps nothing)`);
const sizes = [10000, 100000];
const rss = sizes.map((m) => {
  const v = peakRss(BIN, ['--max-flows', String(m)], openFile);
  console.log(`${`ct-flows --max-flows ${m}`.padEnd(40)} ${v.toFixed(0).padStart(6)} MiB  (${(v / idle).toFixed(2)}x the empty run)`);
  return v;
});
const perFlow = ((rss[1] - rss[0]) * 1024 * 1024) / (sizes[1] - sizes[0]);
console.log(`about ${Math.round(perFlow).toLocaleString('en-US')} bytes per open flow; RSS follows --max-flows, not the number of flows in the input. load average now ${loadavg()[0].toFixed(2)}`);
