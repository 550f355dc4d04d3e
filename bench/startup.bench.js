// Start-up CPU of every command: `ct-x --version`, the whole process (node's
// own start, module loading, yargs, the answer), beside two named baselines
// run in the same rounds: `node -e 0` (the floor any Node command pays) and
// `conntrack --version` (the C tool ct-events stands in for).
//
// CPU is user + system of the child, from bash's `times` (millisecond
// resolution). Each round runs every command once, in an order that rotates
// round to round, so a change of load falls on all of them alike; the figure
// is the median of ROUNDS rounds (ROUNDS=n, default 9).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROUNDS = Number(process.env.ROUNDS) || 9;
const COMMANDS = Object.keys(JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).bin);

const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const med = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** CPU seconds (user + system) of one run of argv, as bash's `times` reports its children. */
function cpu(argv) {
  const r = spawnSync('bash', ['-c', '"$@" >/dev/null 2>&1; times', 'cpu', ...argv], { encoding: 'utf8' });
  const child = (r.stdout.trim().split('\n')[1] ?? '').match(/(\d+)m([\d.]+)s (\d+)m([\d.]+)s/);
  if (!child) throw new Error(`no times output for ${argv.join(' ')}`);
  return Number(child[1]) * 60 + Number(child[2]) + Number(child[3]) * 60 + Number(child[4]);
}

function conntrackWorks() {
  const r = spawnSync('conntrack', ['--version'], { encoding: 'utf8' });
  return r.status === 0;
}

async function main() {
  const rows = [['node -e 0', [process.execPath, '-e', '0']]];
  if (conntrackWorks()) rows.push(['conntrack --version', ['conntrack', '--version']]);
  else console.log('  (conntrack not installed: that baseline is left out)');
  for (const c of COMMANDS) rows.push([`${c} --version`, [path.join(ROOT, 'bin', c), '--version']]);

  console.log(`startup: CPU s (user + system) of each command's --version, median of ${ROUNDS} rounds (ROUNDS=n), order rotated each round`);
  console.log(`  load average before: ${load()}`);
  for (const [, argv] of rows) cpu(argv); // warm the page cache
  const samples = rows.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < rows.length; k++) {
      const i = (k + round) % rows.length;
      samples[i].push(cpu(rows[i][1]));
    }
  }
  const node = med(samples[0]);
  const width = Math.max(...rows.map(([n]) => n.length));
  for (let i = 0; i < rows.length; i++) {
    const m = med(samples[i]);
    const range = `(${Math.min(...samples[i]).toFixed(3)}..${Math.max(...samples[i]).toFixed(3)})`;
    const extra = i === 0 ? '' : `  ${(m / node).toFixed(2)}x node -e 0, ${((m - node) * 1000).toFixed(0).padStart(3)} ms above it`;
    console.log(`  ${rows[i][0].padEnd(width)}  ${m.toFixed(3)} s ${range.padEnd(14)}${extra}`);
  }
  const cmds = samples.slice(rows.length - COMMANDS.length).map(med);
  console.log(`  all ${COMMANDS.length} commands: median ${med(cmds).toFixed(3)} s, max ${Math.max(...cmds).toFixed(3)} s`);
  console.log(`  load average after: ${load()}`);
}

await main();
