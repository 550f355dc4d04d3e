// The bpf method's cost (issue 17), run as root after a build:
// npm run bench -- bpf. Prints figures; asserts nothing.
//
// 1. What tracing costs the traced workload. bench/connect-loop.c, in a
//    network namespace of its own, does LOOPS (default 20,000) TCP
//    connect+close to a listener there (127.0.0.1), or UDP
//    socket+sendto+close (one datagram to 127.0.0.1, nobody listening): each
//    is one sighting for the tracer. Three columns, in the same run:
//    (a) nothing traced;
//    (b) the bpf method as ct-attribute loads it: ct-attribute --bpf
//        itself (the addon's programs, native/bpf, through libbpf), reading
//        a quiet stdin pipe, stdout to /dev/null, so that its consumption
//        of the ring buffer runs as in a pipeline;
//    (c) the baseline, bpftrace running the program ct-attribute ran
//        before 70fc45b (src/attribute/sources/bpf/script.ts then; it lives
//        here only, never under src/), output to a file: what it used to
//        feed ct-attribute, whose parsing of it is not counted.
//    ROUNDS rounds (default 5), the columns' order rotated each round; the
//    medians of the loop's ops/s and CPU µs per op (its own user + system
//    time: BPF programs run inside its system calls), and the medians of
//    each round's ratios to (a). Counted: the operations that completed, and
//    what each tracer saw and lost.
// 2. Attach time: from spawning ct-attribute --bpf (a pipe on stdin) to the
//    moment its programs were attached: bin/ct-attribute attaches them
//    before it imports the rest (src/attribute/sources/bpf/early.ts) and
//    notes the wall-clock time then, which its --stats line prints
//    ("attached at"); the bench subtracts its own Date.now() taken just
//    before spawn (same clock, ms resolution). Also from spawn to its
//    "methods" line on stderr (written once every method has started),
//    median of ATTACH_RUNS (default 7), with where the time goes: a bare
//    node's start (spawn to its first stderr byte), ct-attribute --no-bpf to
//    the same line, and the addon's own open+load+attach time that the line
//    reports; and bpftrace's spawn to its "ready" line (3 runs).
// bpftrace is not needed: without it, (c) and its attach time are left
// out, and the bench says so.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, openSync, closeSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = (n) => path.join(ROOT, 'bin', n);
const LOOPS = Number(process.env.LOOPS ?? 20000);
const ROUNDS = Math.max(1, Number(process.env.ROUNDS ?? 5));
const ATTACH_RUNS = Math.max(1, Number(process.env.ATTACH_RUNS ?? 7));
const ONLY = (process.env.ONLY ?? 'loops,attach').split(',');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const uptime = () => spawnSync('uptime', { encoding: 'utf8' }).stdout?.trim() ?? `load average ${load()}`;

if (process.getuid() !== 0) {
  console.log('bpf bench: needs root (network namespaces, BPF programs)');
  process.exit(0);
}

// The program ct-attribute ran through bpftrace before 70fc45b, as its
// script.ts built it (SCRIPT_INTERVAL_S 10): TCP by sock:inet_sock_set_state
// (SYN_SENT kept by socket, printed at the next transition), UDP by
// sock:sock_send_length once per socket and process in 10 s; one printf line each.
const TASK = 'curtask->real_parent->tgid, uid, gid, curtask->start_boottime, cgroup';
const NETNS = '((struct sock *)args->skaddr)->__sk_common.skc_net.net->ns.inum';
const BPFTRACE_SCRIPT = [
  'BEGIN { printf("ready\\n"); }',
  `tracepoint:sock:inet_sock_set_state /args->protocol == 6 && args->oldstate == 7 && args->newstate == 2/ { @syn[args->skaddr] = (nsecs, pid, ${TASK}); @sync[args->skaddr] = comm; }`,
  'tracepoint:sock:inet_sock_set_state /args->protocol == 6 && args->oldstate == 2/ {',
  '  $v = @syn[args->skaddr];',
  '  if ($v.1 != 0) {',
  `    printf("C %llu %d %d %d %d %u %d 6 %d %d %llu %llu %s\\n", $v.0, $v.1, $v.2, $v.3, $v.4, ${NETNS}, args->family, args->sport, args->dport, $v.5, $v.6, @sync[args->skaddr]);`,
  '    delete(@syn[args->skaddr]); delete(@sync[args->skaddr]);',
  '  }',
  '}',
  'tracepoint:sock:sock_send_length /args->ret >= 0 && (args->family == 2 || args->family == 10) && (args->protocol == 17 || args->protocol == 136) && !@seen[args->sk, pid]/ {',
  '  @seen[args->sk, pid] = 1;',
  '  $sk = (struct sock *)args->sk;',
  '  printf("S %llu %d %d %d %d %u %d %d %d %d %llu %llu %s\\n", nsecs, pid, curtask->real_parent->tgid, uid, gid, $sk->__sk_common.skc_net.net->ns.inum, args->family, args->protocol, bswap(((struct inet_sock *)$sk)->inet_sport), bswap($sk->__sk_common.skc_dport), curtask->start_boottime, cgroup, comm);',
  '}',
  'interval:s:10 { clear(@seen); printf("tick\\n"); }',
  'END { clear(@seen); clear(@syn); clear(@sync); }',
  '',
].join('\n');

const hasBpftrace = spawnSync('bpftrace', ['--version'], { encoding: 'utf8' });
const BPFTRACE = hasBpftrace.status === 0 ? hasBpftrace.stdout.trim() : null;
if (!BPFTRACE) console.log('bpf bench: bpftrace is NOT installed (Debian: apt-get install bpftrace): the bpftrace baseline column and its attach time are left out');

/** bpftrace's argv as ct-attribute ran it: in a mount namespace of its own with tracefs mounted, where it is not. */
function bpftraceArgv() {
  const args = ['-B', 'line', '-e', BPFTRACE_SCRIPT];
  const tracefs = ['/sys/kernel/tracing/events', '/sys/kernel/debug/tracing/events'].some((d) => spawnSync('test', ['-d', d]).status === 0);
  return tracefs ? ['bpftrace', ...args] : ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', 'mount -t tracefs tracefs /sys/kernel/tracing && exec "$0" "$@"', 'bpftrace', ...args];
}
const BPFTRACE_ENV = { ...process.env, BPFTRACE_MAP_KEYS_MAX: '65536', BPFTRACE_STRLEN: '16' };

/** Resolves with the ms from now until `re` shows in the child's `stream` (null when it exits first). */
function until(child, stream, re) {
  const t0 = performance.now();
  return new Promise((resolve) => {
    let text = '';
    const on = (d) => {
      text += d;
      if (re.test(text)) {
        child[stream].off('data', on);
        resolve({ ms: performance.now() - t0, text });
      }
    };
    child[stream].setEncoding('utf8').on('data', on);
    child.once('close', () => resolve({ ms: null, text }));
  });
}

const tmp = mkdtempSync(path.join(tmpdir(), 'ct-bpf-bench-'));
const NS = `ctbpf${process.pid}`;
let listener = null;

async function loopsBench() {
  const loop = path.join(tmp, 'connect-loop');
  execFileSync('cc', ['-O2', '-o', loop, path.join(ROOT, 'bench', 'connect-loop.c')]);
  execFileSync('ip', ['netns', 'add', NS]);
  execFileSync('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  listener = spawn('ip', ['netns', 'exec', NS, loop, 'listen', '7002'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => listener.stdout.once('data', r));

  /** Start a tracer; resolves with a stop() that resolves with what it saw. */
  const tracers = {
    none: async () => ({ stop: async () => ({}) }),
    bpf: async (tag) => {
      const errFile = path.join(tmp, `${tag}.err`);
      const p = spawn(BIN('ct-attribute'), ['--bpf', '--stats'], { stdio: ['pipe', 'ignore', 'pipe'] });
      let err = '';
      p.stderr.setEncoding('utf8').on('data', (d) => (err += d));
      const r = await until(p, 'stderr', /methods: .*bpf (live|not live)/);
      if (!/bpf live/.test(r.text)) throw new Error(`ct-attribute --bpf did not load its programs: ${r.text.trim()}`);
      return {
        stop: async () => {
          p.stdin.end();
          if (p.exitCode === null) await new Promise((res) => p.once('close', res));
          const m = /bpf: attached in [\d.]+ ms \(UDP: \w+\), sightings (\d+), lost (\d+)/.exec(err);
          if (!m) console.log(`    ct-attribute's stderr had no bpf stats line: ${err.trim().replace(/\n/g, ' | ')} (${errFile})`);
          return { seen: m ? Number(m[1]) : NaN, lost: m ? Number(m[2]) : NaN };
        },
      };
    },
    bpftrace: async (tag) => {
      const outFile = path.join(tmp, `${tag}.out`);
      const out = openSync(outFile, 'w');
      const argv = bpftraceArgv();
      const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', out, 'pipe'], env: BPFTRACE_ENV });
      closeSync(out);
      let err = '';
      p.stderr.setEncoding('utf8').on('data', (d) => (err += d));
      for (let i = 0; i < 300 && !/^ready$/m.test(readFileSync(outFile, 'utf8')); i++) {
        if (p.exitCode !== null) throw new Error(`bpftrace exited: ${err.trim()}`);
        await sleep(50);
      }
      return {
        stop: async () => {
          // What its perf buffers still hold is printed a moment later: until its output stops growing.
          const count = () => readFileSync(outFile, 'utf8').split('\n').filter((l) => l.startsWith('C ') || l.startsWith('S ')).length;
          for (let last = -1, i = 0; i < 30; i++) {
            const n = count();
            if (n === last) break;
            last = n;
            await sleep(200);
          }
          p.kill('SIGINT');
          if (p.exitCode === null) await new Promise((res) => p.once('close', res));
          const text = readFileSync(outFile, 'utf8');
          const seen = count();
          // bpftrace reports what its perf buffer dropped as "Lost N events".
          let lost = 0;
          for (const m of (text + err).matchAll(/Lost (\d+) events/g)) lost += Number(m[1]);
          return { seen, lost };
        },
      };
    },
  };
  const COLS = [['none', '(a) no tracing'], ['bpf', '(b) ct-attribute --bpf'], ...(BPFTRACE ? [['bpftrace', '(c) bpftrace (before 70fc45b)']] : [])];
  console.log(`loops: ${LOOPS} operations per loop, ${ROUNDS} rounds (ROUNDS=n, LOOPS=n), columns' order rotated each round; ${BPFTRACE ? BPFTRACE : 'no bpftrace'}; ${uptime()}`);
  for (const proto of ['tcp', 'udp']) {
    const what = proto === 'tcp' ? 'TCP connect+close' : 'UDP socket+sendto+close';
    const res = Object.fromEntries(COLS.map(([k]) => [k, { ops: [], cpu: [], okAll: 0, seen: 0, lost: 0, rOps: [], rCpu: [] }]));
    for (let round = 0; round < ROUNDS; round++) {
      const order = COLS.map((_, i) => COLS[(i + round) % COLS.length]);
      const thisRound = {};
      for (const [k] of order) {
        const t = await tracers[k](`${proto}-${round}-${k}`);
        await sleep(300);
        const out = execFileSync('ip', ['netns', 'exec', NS, loop, proto, '127.0.0.1', proto === 'tcp' ? '7002' : '7001', String(LOOPS)], { encoding: 'utf8' });
        const saw = await t.stop();
        const [ok, secs, cpuSecs] = out.trim().split(' ').map(Number);
        const r = res[k];
        r.ops.push(ok / secs);
        r.cpu.push((cpuSecs / ok) * 1e6);
        r.okAll += ok;
        if (saw.seen !== undefined) { r.seen += saw.seen; r.lost += saw.lost; }
        thisRound[k] = { ops: ok / secs, cpu: (cpuSecs / ok) * 1e6 };
      }
      for (const [k] of COLS) {
        res[k].rOps.push(thisRound.none.ops / thisRound[k].ops);
        res[k].rCpu.push(thisRound[k].cpu / thisRound.none.cpu);
      }
    }
    console.log(`${what}, median of ${ROUNDS} rounds (slowdown: median of each round's time per operation over (a)'s; CPU: the loop's own user+system µs per operation):`);
    for (const [k, name] of COLS) {
      const r = res[k];
      const saw = k === 'none' ? '' : `; tracer saw ${r.seen} sightings (host-wide), lost ${r.lost}, for ${r.okAll} operations`;
      console.log(`  ${name.padEnd(31)} ${String(Math.round(median(r.ops))).padStart(7)} ops/s (slowdown ${median(r.rOps).toFixed(2)}x), CPU ${median(r.cpu).toFixed(2)} µs/op (${median(r.rCpu).toFixed(2)}x); completed ${r.okAll} of ${LOOPS * ROUNDS}${saw}`);
    }
    if (res.bpftrace) console.log(`  (b) against (c): slowdown ${(median(res.bpf.rOps) / median(res.bpftrace.rOps)).toFixed(2)}x of bpftrace's, CPU ${(median(res.bpf.rCpu) / median(res.bpftrace.rCpu)).toFixed(2)}x of bpftrace's; ${uptime()}`);
  }
}

async function attachBench() {
  console.log(`\nattach: ct-attribute --bpf from spawn to its programs attached and to its "methods" line, ${ATTACH_RUNS} runs, the three kinds alternated; ${uptime()}`);
  const kinds = {
    // A bare node: its own start, before any of ct-attribute's modules.
    node: { argv: [process.execPath, '-e', 'process.stderr.write("x\\n")'], re: /x/ },
    nobpf: { argv: [BIN('ct-attribute'), '--no-bpf'], re: /methods: / },
    bpf: { argv: [BIN('ct-attribute'), '--bpf', '--stats'], re: /methods: .*bpf (live|not live)/ },
  };
  const ms = { node: [], nobpf: [], bpf: [] };
  const addon = [];
  const attached = [];
  for (let i = 0; i < ATTACH_RUNS; i++) {
    const order = Object.keys(kinds);
    for (let j = 0; j < i % order.length; j++) order.push(order.shift());
    for (const k of order) {
      const { argv, re } = kinds[k];
      const t0 = Date.now();
      const p = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'ignore', 'pipe'] });
      let err = '';
      p.stderr.on('data', (d) => (err += d));
      const r = await until(p, 'stderr', re);
      p.stdin.end();
      if (p.exitCode === null) await new Promise((res) => p.once('close', res));
      if (k === 'bpf') {
        const m = /bpf live \(attached in (\d+) ms/.exec(r.text);
        if (!m) throw new Error(`ct-attribute --bpf did not load its programs: ${r.text.trim()}`);
        addon.push(Number(m[1]));
        // The wall-clock time ct-attribute took when the addon's open returned, from its --stats line.
        const at = /bpf: attached in .*; attached at (\S+Z)/.exec(err);
        if (!at) throw new Error(`ct-attribute --bpf --stats gave no attach time: ${err.trim()}`);
        attached.push(Date.parse(at[1]) - t0);
      }
      ms[k].push(r.ms);
      await sleep(100);
    }
  }
  const f = (xs) => `${median(xs).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)})`;
  console.log(`  ct-attribute --bpf, spawn to the programs attached (the wall-clock time it noted when the addon's open returned, in its --stats line; ms resolution): median ${f(attached)}`);
  console.log(`  ct-attribute --bpf, spawn to its methods line (all methods started, the options parsed): median ${f(ms.bpf)}`);
  console.log(`    of which: a bare node's start ${f(ms.node)}; ct-attribute --no-bpf to the same line ${f(ms.nobpf)}; the addon's open+load+attach (as the line says) ${f(addon)}`);
  if (BPFTRACE) {
    const bt = [];
    for (let i = 0; i < 3; i++) {
      const argv = bpftraceArgv();
      const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: BPFTRACE_ENV });
      const r = await until(p, 'stdout', /^ready$/m);
      p.kill('SIGINT');
      if (p.exitCode === null) await new Promise((res) => p.once('close', res));
      bt.push(r.ms);
    }
    console.log(`  bpftrace (before 70fc45b), spawn to its "ready" line: median ${f(bt)}`);
  }
  console.log(`  ${uptime()}`);
}

try {
  if (ONLY.includes('loops')) await loopsBench();
  if (ONLY.includes('attach')) await attachBench();
} finally {
  listener?.kill();
  spawnSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
  rmSync(tmp, { recursive: true, force: true });
}
