// ct-format with the default template on one million generated events
// (bench/gen-events.js), against the equivalent `jq -r '"..."'` on the same
// file. Prints lines per second and the ratio; asserts nothing (checks only
// that both write the same lines on a sample).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus, loadavg } from 'node:os';
import { spawnSync } from 'node:child_process';
import { eventsFile, generate } from './gen-events.js';
import { output, measure, RUNS } from './lines-bench.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'ct-format');
const N = Number(process.env.EVENTS ?? 1000000);

// ct-format's default template, written in jq (special records skipped, as ct-format sends them to stderr).
const cmd = '(if ((.process.cmdline // []) | length) > 0 then (.process.cmdline | join(" ")) else "-" end)';
const JQ = ['-r', `select(.event == "new" or .event == "update" or .event == "destroy") | "\\(.ts) \\(.event) \\(.family)/\\(.proto) \\(.src)/\\(.sport // "-") > \\(.dst)/\\(.dport // "-") :: \\(.process.pid // "?") \\(.process.user // "-"):\\(.process.group // "-") \\(.process.unit // "-") :: \\(${cmd})"`];

if (spawnSync('jq', ['--version']).error) {
  console.log('format bench: jq is not installed');
  process.exit(0);
}
const file = await eventsFile(N);
const sample = [...generate(20000, 9)].join('\n') + '\n';
const same = output(BIN, [], sample) === output('jq', JQ, sample);
console.log(`${N.toLocaleString('en-US')} events, ${file}; ${cpus().length} CPUs, load average ${loadavg()[0].toFixed(2)}`);
console.log(`ct-format (default template)  vs  jq -r '"<the same template>"'`);
console.log(`same output on a 20,000-event sample: ${same ? 'yes' : 'NO'}`);

console.log(`median of ${RUNS} runs each (RUNS=n to change; presets: one run)`);
const multi = measure('ct-format (up to 4 worker threads, default)', N, BIN, [], file);
const r1 = measure('ct-format --jobs 0 (one thread)', N, BIN, ['--jobs', '0'], file);
for (const p of ['conntrack-logger', 'ctrecorder', 'csv']) measure(`ct-format --preset ${p}`, N, BIN, ['--preset', p], file, 1);
const r2 = measure('jq -r "..."', N, 'jq', JQ, file);
// jq runs in one thread: the ratio is one thread against one thread; the worker threads' figure is labelled as such.
console.log(`ratio ct-format / jq, one thread each: ${(r1 / r2).toFixed(2)}x  (target: >= 200,000 lines/s and faster than jq)`);
console.log(`ratio ct-format with worker threads (multi-threaded) / jq (one thread): ${(multi / r2).toFixed(2)}x; load average now ${loadavg()[0].toFixed(2)}`);
