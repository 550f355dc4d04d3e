// ct-filter on one million generated events (bench/gen-events.js) with two
// criteria, against the equivalent `jq -c 'select(...)'` on the same file.
// Prints lines per second and the ratio; asserts nothing (checks only that
// both write the same lines on a sample). Then the latency a line gets
// through ct-filter on a live stream, against cat's: a trickle, a steady
// 1,000 lines/s, and the pipeline bench's flood (95,000 lines/s in writes
// of 50 lines); LATENCY=0 leaves it out.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus, loadavg } from 'node:os';
import { spawnSync } from 'node:child_process';
import { eventsFile, generate } from './gen-events.js';
import { output, measure, latencyRows, RUNS } from './lines-bench.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'ct-filter');
const N = Number(process.env.EVENTS ?? 1000000);

// The same selection in both: TCP to port 443; special records always pass.
const ARGS = ['-p', 'tcp', '--dport', '443'];
const JQ = ['-c', 'select(((.event == "new" or .event == "update" or .event == "destroy") | not) or (.proto == "tcp" and .dport == 443))'];

if (spawnSync('jq', ['--version']).error) {
  console.log('filter bench: jq is not installed');
  process.exit(0);
}
const file = await eventsFile(N);
const sample = [...generate(20000, 9)].join('\n') + '\n';
const same = output(BIN, ARGS, sample) === output('jq', JQ, sample);
console.log(`${N.toLocaleString('en-US')} events, ${file}; ${cpus().length} CPUs, load average ${loadavg()[0].toFixed(2)}`);
console.log(`ct-filter ${ARGS.join(' ')}  vs  jq ${JQ.join(' ')}`);
console.log(`same output on a 20,000-event sample: ${same ? 'yes' : 'NO'}`);

console.log(`median of ${RUNS} runs each (RUNS=n to change)`);
const multi = measure('ct-filter (up to 4 worker threads, default)', N, BIN, ARGS, file);
const r1 = measure('ct-filter --jobs 0 (one thread)', N, BIN, ['--jobs', '0', ...ARGS], file);
const r2 = measure('jq -c select(...)', N, 'jq', JQ, file);
// jq runs in one thread: the ratio is one thread against one thread; the worker threads' figure is labelled as such.
console.log(`ratio ct-filter / jq, one thread each: ${(r1 / r2).toFixed(2)}x  (target: >= 200,000 lines/s and faster than jq)`);
console.log(`ratio ct-filter with worker threads (multi-threaded) / jq (one thread): ${(multi / r2).toFixed(2)}x; load average now ${loadavg()[0].toFixed(2)}`);

if (process.env.LATENCY !== '0') {
  const small = await eventsFile(20000, 3);
  console.log(`latency of a line through ct-filter --no-dns --jobs 0 on a live stream (FIFO in, FIFO out), against cat's; load average ${loadavg()[0].toFixed(2)}`);
  await latencyRows('ct-filter', BIN, ['--no-dns', '--jobs', '0'], small, [
    { rate: 200, batch: 1, n: 1000 },
    { rate: 1000, batch: 1, n: 4000 },
    { rate: 95000, batch: 50, n: 190000 },
  ]);
  console.log(`load average now ${loadavg()[0].toFixed(2)}`);
}
