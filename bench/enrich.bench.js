// The enrichments' bench (issue 20; run as root after a build: npm run bench
// -- enrich). Prints figures; asserts nothing. ONLY=dns,latency,throughput
// picks parts; RUNS (default 3) runs of each, medians printed with every
// run's figure and the load average.
//
// 1. dns: DNS observation under load. A real DNS server from Debian
//    (dnsmasq, in namespace B, answering every name under b.test from its
//    own records) answers a real load generator (dnsperf, in namespace A)
//    at RATE queries/s (default 20,000) for SECONDS (default 5); ct-events
//    runs in A with its defaults (DNS observation on: its own nft log rule
//    into an NFLOG group). The truth is an nft counter of the answers that
//    reached A's input hook; the bench counts the `dns` records ct-events
//    wrote and the answers its overrun records say were lost, and reads
//    ct-events' CPU from /proc/PID/stat. Baseline, same load, same script:
//    tcpdump reading an NFLOG group fed by the same kind of log rule
//    (`tcpdump -n -i nflog:G`, decoding each answer to text), its count
//    from its own "captured/dropped" summary, and its CPU.
// 2. latency: the default pipeline's added latency at idle. One event at a
//    time (a `dns` record naming the remote, then the NEW of a live TCP
//    connection), write -> read back, through `ct-attribute` with its
//    defaults (DNS names, ancestry 4, entity_id), through `ct-attribute
//    --no-dns-names --ancestry 0` (no enrichments), and through `cat` (the
//    baseline). Steady state: the SAMPLES (1000) events after WARMUP (3000).
//    Also the same through ct-attribute's main() in this process, streams
//    in memory: the command's own work without the pipes' wake-ups (on a
//    loaded machine cat's own p99 is mostly the scheduler's).
// 3. throughput: ct-attribute reading a saved file of EVENTS (200,000) NEW
//    events of 100 live TCP connections held by 20 python processes (each
//    under bash under CHAIN (12) nested shells, orphaned at the top: a deep
//    lineage that does not depend on where the bench runs), one `dns`
//    record per 10 events: with none (`--no-dns-names --ancestry 0`, the
//    baseline), the defaults (DNS names, ancestry 4), all enrichments on
//    at the issue's defaults (`--hash`, ancestry 4, DNS names: the row of
//    the target, >= 0.8x none) and deep (`--hash --ancestry 16`),
//    alternating (each run starts one set later), one thread each. Each
//    into a pipe read by `wc -l` (as a
//    next stage reads it: the lines that arrived are counted) and into a
//    fresh file (what the lines say is checked there): events/s, ct-
//    attribute's CPU seconds (user + system), the bytes, and the time
//    `cat` takes to move the same bytes into the same sinks (the part of
//    the cost that is the output's size alone: a fresh file's pages cost
//    far more on a virtual machine whose memory the host backs lazily).
//    ct-attribute gives the pipe it writes into 1 MiB (src/cli.ts); cat
//    writes into the kernel's 64 KiB.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, openSync, closeSync, createReadStream, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir, loadavg } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { PassThrough, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { cpuSeconds } from './lib.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = (n) => path.join(ROOT, 'bin', n);
const RUNS = Number(process.env.RUNS ?? 3);
const RATE = Number(process.env.RATE ?? 20000);
const SECONDS = Number(process.env.SECONDS ?? 5);
const EVENTS = Number(process.env.EVENTS ?? 200000);
/** Shells above each holder's bash (throughput). */
const CHAIN = Number(process.env.CHAIN ?? 12);
const WARMUP = Number(process.env.WARMUP ?? 3000);
const SAMPLES = Number(process.env.SAMPLES ?? 1000);
const only = (process.env.ONLY ?? 'dns,latency,throughput').split(',');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const median = (xs) => { const a = [...xs].sort((x, y) => x - y); return a[Math.floor((a.length - 1) / 2)]; };
if (process.getuid() !== 0) { console.log('enrich bench: needs root (network namespaces, nft)'); process.exit(0); }

const tmp = mkdtempSync(path.join(tmpdir(), 'ct-enrich-bench-'));
const namespaces = [];
const children = [];
/** The throughput holders' python pids (orphaned: not children of this process). */
const holders = [];
process.on('exit', () => {
  for (const c of children) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
  for (const pid of holders) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  for (const ns of namespaces) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  rmSync(tmp, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

const sh = (cmd) => execFileSync('sh', ['-c', cmd], { stdio: ['ignore', 'pipe', 'inherit'] }).toString();
const nft = (ns, input) => execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input });

// ---- 1. DNS observation -------------------------------------------------

function dnsNamespaces(tag) {
  const A = `cteA${tag}`, B = `cteB${tag}`;
  namespaces.push(A, B);
  sh(`ip netns add ${A}; ip netns add ${B}; ip -n ${A} link set lo up; ip -n ${B} link set lo up;
      ip link add vea${tag} netns ${A} type veth peer name veb${tag} netns ${B};
      ip -n ${A} addr add 10.232.0.1/24 dev vea${tag}; ip -n ${B} addr add 10.232.0.2/24 dev veb${tag};
      ip -n ${A} link set vea${tag} up; ip -n ${B} link set veb${tag} up`);
  // The truth: every answer that reaches A's input hook, counted by the kernel.
  nft(A, 'table inet cnt {\n chain in { type filter hook input priority -300; policy accept; udp sport 53 counter; }\n chain out { type filter hook output priority 0; policy accept; ct state new counter; }\n}\n');
  return { A, B };
}

function answersCounted(A) {
  const t = execFileSync('ip', ['netns', 'exec', A, 'nft', 'list', 'chain', 'inet', 'cnt', 'in'], { encoding: 'utf8' });
  return Number(/udp sport 53 counter packets (\d+)/.exec(t)[1]);
}

async function startDnsmasq(B) {
  const d = spawn('ip', ['netns', 'exec', B, 'dnsmasq', '-k', '--conf-file=/dev/null', '--pid-file=', '--user=root', '--bind-interfaces', '--no-resolv', '--no-hosts',
    '--listen-address=10.232.0.2', '--address=/b.test/10.77.0.1', '--local-ttl=60', '--dns-forward-max=10000'], { stdio: 'ignore' });
  children.push(d);
  await sleep(300);
  return d;
}

/** dnsperf in A at RATE for SECONDS; its own summary (sent, completed, lost, qps). */
function dnsperf(A) {
  const qfile = path.join(tmp, 'queries.txt');
  writeFileSync(qfile, Array.from({ length: 1000 }, (_, i) => `n${i}.b.test A`).join('\n') + '\n');
  const r = spawnSync('ip', ['netns', 'exec', A, 'dnsperf', '-s', '10.232.0.2', '-d', qfile, '-l', String(SECONDS), '-Q', String(RATE), '-c', '1', '-q', '500'], { encoding: 'utf8' });
  const num = (re) => Number((re.exec(r.stdout) ?? [, 'NaN'])[1]);
  return { sent: num(/Queries sent:\s+(\d+)/), completed: num(/Queries completed:\s+(\d+)/), lost: num(/Queries lost:\s+(\d+)/), qps: num(/Queries per second:\s+([\d.]+)/), out: r.stdout + r.stderr };
}

async function dnsRun(i) {
  const { A, B } = dnsNamespaces(`${process.pid % 10000}${i}`);
  await startDnsmasq(B);
  // ct-events with its defaults: ip netns exec, env, sh and node exec in turn, so the pid is ct-events'.
  const file = path.join(tmp, `dns-${i}.ndjson`);
  const fd = openSync(file, 'w');
  const ev = spawn('ip', ['netns', 'exec', A, BIN('ct-events'), '-e', 'new'], { stdio: ['ignore', fd, 'pipe'] });
  closeSync(fd);
  let err = '';
  ev.stderr.on('data', (d) => (err += d));
  children.push(ev);
  for (let t = 0; t < 100 && !/ctpipe_dns_/.test(spawnSync('ip', ['netns', 'exec', A, 'nft', 'list', 'tables'], { encoding: 'utf8' }).stdout); t++) await sleep(100);
  await sleep(500);
  const before = answersCounted(A);
  const cpu0 = cpuSeconds(ev.pid), t0 = Date.now();
  const perf = dnsperf(A);
  const wall = (Date.now() - t0) / 1000;
  await sleep(1000);
  const cpu = cpuSeconds(ev.pid) - cpu0;
  const truth = answersCounted(A) - before;
  ev.kill('SIGTERM');
  await new Promise((r) => ev.once('close', r));
  let records = 0, lost = 0;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    const e = JSON.parse(line);
    if (e.event === 'dns') records++;
    else if (e.event === 'overrun') lost += e.lost;
  }

  // The baseline on the same load: tcpdump on an NFLOG group fed by the same rule.
  nft(A, 'table inet tdl {\n chain in { type filter hook input priority -150; policy accept; udp sport 53 log group 5399; }\n}\n');
  const td = spawn('ip', ['netns', 'exec', A, 'tcpdump', '-n', '-l', '-i', 'nflog:5399'], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(td);
  let tderr = '';
  td.stderr.on('data', (d) => (tderr += d));
  for (let t = 0; t < 100 && !/listening on/.test(tderr); t++) await sleep(100);
  await sleep(300);
  const tbefore = answersCounted(A);
  const tcpu0 = cpuSeconds(td.pid);
  const tperf = dnsperf(A);
  await sleep(1000);
  const tcpu = cpuSeconds(td.pid) - tcpu0;
  const ttruth = answersCounted(A) - tbefore;
  td.kill('SIGINT');
  await new Promise((r) => td.once('close', r));
  const captured = Number((/(\d+) packets captured/.exec(tderr) ?? [, 'NaN'])[1]);
  const dropped = Number((/(\d+) packets dropped by kernel/.exec(tderr) ?? [, 'NaN'])[1]);
  spawnSync('ip', ['netns', 'del', A]);
  spawnSync('ip', ['netns', 'del', B]);
  return { truth, records, lost, cpu, wall, perf, err, ttruth, captured, dropped, tcpu, tperf };
}

async function dnsBench() {
  console.log(`DNS observation: dnsmasq (namespace B) answering dnsperf (namespace A) at ${fmt(RATE)} queries/s for ${SECONDS} s; ct-events with its defaults in A; baseline tcpdump -i nflog on the same load; ${RUNS} runs; load average ${load()}`);
  const runs = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await dnsRun(i);
    runs.push(r);
    const share = r.truth ? (100 * r.records) / r.truth : NaN;
    console.log(`  run ${i + 1}: answers at A's input hook ${fmt(r.truth)} (dnsperf: ${fmt(r.perf.completed)} completed, ${fmt(r.perf.qps)} q/s); ct-events wrote ${fmt(r.records)} dns records (${share.toFixed(3)}%), overrun-counted lost ${r.lost}, missing uncounted ${r.truth - r.records - r.lost}; ct-events CPU ${(100 * r.cpu / r.wall).toFixed(1)}% of one core (${r.cpu.toFixed(2)} s over ${r.wall.toFixed(1)} s)` +
      ` | tcpdump: answers ${fmt(r.ttruth)}, captured ${fmt(r.captured)}, dropped by kernel ${r.dropped}, CPU ${(100 * r.tcpu / r.wall).toFixed(1)}%; load ${load()}${r.err.trim() ? `\n    ct-events stderr: ${r.err.trim()}` : ''}`);
  }
  const m = (f) => median(runs.map(f));
  const rate = m((r) => r.truth / SECONDS);
  console.log(`  median: ${fmt(rate)} answers/s at the hook; ct-events recorded ${m((r) => (100 * r.records) / r.truth).toFixed(3)}% of them, lost (counted) ${m((r) => r.lost)}, uncounted ${m((r) => r.truth - r.records - r.lost)}; CPU ct-events ${m((r) => (100 * r.cpu) / r.wall).toFixed(1)}% of one core vs tcpdump ${m((r) => (100 * r.tcpu) / r.wall).toFixed(1)}% (${m((r) => r.cpu / r.tcpu).toFixed(2)}x tcpdump's CPU); tcpdump captured ${m((r) => (100 * r.captured) / r.ttruth).toFixed(3)}%; load average ${load()}`);
}

// ---- 2. Added latency at idle -------------------------------------------

const pcts = (t) => {
  const a = [...t].sort((x, y) => x - y);
  return { p50: a[Math.floor(a.length * 0.5)], p99: a[Math.floor(a.length * 0.99)], max: a[a.length - 1] };
};

async function latencyRun() {
  const srv = net.createServer((s) => s.on('data', () => {})).listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const port = srv.address().port;
  const conn = net.connect(port, '127.0.0.1');
  await new Promise((r) => conn.once('connect', r));
  const flow = { event: 'new', family: 'ipv4', proto: 'tcp', src: '127.0.0.1', sport: conn.localPort, dst: '127.0.0.1', dport: port,
    reply: { src: '127.0.0.1', sport: port, dst: '127.0.0.1', dport: conn.localPort }, state: 'SYN_SENT', status: ['CONFIRMED'] };
  const total = WARMUP + SAMPLES;
  async function measure(cmd, args) {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'ignore'] });
    const times = [];
    let pending = null, buf = '', named = 0;
    p.stdout.setEncoding('utf8').on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.includes('"event":"new"')) continue;
        if (line.includes('"dns":{"name":"idle.b.test"')) named++;
        if (pending) { const r = pending; pending = null; r(); }
      }
    });
    for (let i = 0; i < total; i++) {
      const ts = new Date().toISOString();
      const rec = { ts, event: 'dns', proto: 'udp', client: '127.0.0.1', cport: 40000 + (i % 1000), server: '127.0.0.53', sport: 53, name: 'idle.b.test', answers: [{ addr: '127.0.0.1', ttl: 300 }] };
      const t = process.hrtime.bigint();
      await new Promise((r) => { pending = r; p.stdin.write(JSON.stringify(rec) + '\n' + JSON.stringify({ ts, ...flow, id: i + 1 }) + '\n'); });
      times.push(Number(process.hrtime.bigint() - t) / 1e6);
      await sleep(5);
    }
    p.stdin.end();
    await new Promise((r) => p.once('close', r));
    return { ...pcts(times.slice(WARMUP, WARMUP + SAMPLES)), named };
  }
  // The same records and events through ct-attribute's main() in this
  // process, its input and output streams in memory: the command's own
  // work (streams, parsing, lookups, enrichments, output), without the two
  // processes waking each other through pipes, which is what the
  // difference from the rows above is.
  const { main } = await import(path.join(ROOT, 'dist', 'src', 'commands', 'attribute.js'));
  async function inProcess(args) {
    const stdin = new PassThrough();
    let pending = null, buf = '';
    const stdout = new Writable({ write(chunk, _e, cb) {
      buf += chunk;
      if (buf.includes('"event":"new"') && pending) { buf = ''; const r = pending; pending = null; r(); }
      cb();
    } });
    const stderr = new PassThrough();
    stderr.resume();
    const done = main(args, { stdin, stdout, stderr, env: {}, signal: new AbortController().signal });
    const times = [];
    for (let i = 0; i < total; i++) {
      const ts = new Date().toISOString();
      const rec = { ts, event: 'dns', proto: 'udp', client: '127.0.0.1', cport: 40000 + (i % 1000), server: '127.0.0.53', sport: 53, name: 'idle.b.test', answers: [{ addr: '127.0.0.1', ttl: 300 }] };
      const t = process.hrtime.bigint();
      await new Promise((r) => { pending = r; stdin.write(JSON.stringify(rec) + '\n' + JSON.stringify({ ts, ...flow, id: 1000000 + i }) + '\n'); });
      times.push(Number(process.hrtime.bigint() - t) / 1e6);
      await sleep(5);
    }
    stdin.end();
    await done;
    return pcts(times.slice(WARMUP, WARMUP + SAMPLES));
  }
  const r = {
    full: await measure(BIN('ct-attribute'), []),
    none: await measure(BIN('ct-attribute'), ['--no-dns-names', '--ancestry', '0']),
    cat: await measure('cat', []),
    inFull: await inProcess(['--no-bpf']),
    inNone: await inProcess(['--no-bpf', '--no-dns-names', '--ancestry', '0']),
  };
  conn.destroy();
  srv.close();
  return r;
}

async function latencyBench() {
  console.log(`added latency at idle, one dns record + one NEW event at a time (5 ms apart), the ${SAMPLES} after ${WARMUP} (steady state); ${RUNS} runs; load average ${load()}`);
  const runs = [];
  const f = (x) => `p50 ${x.p50.toFixed(3)} p99 ${x.p99.toFixed(3)} max ${x.max.toFixed(3)} ms`;
  for (let i = 0; i < RUNS; i++) {
    const r = await latencyRun();
    runs.push(r);
    console.log(`  run ${i + 1}: ct-attribute (defaults: DNS names, ancestry 4) ${f(r.full)} (named ${r.full.named}/${WARMUP + SAMPLES}); --no-dns-names --ancestry 0 ${f(r.none)}; cat ${f(r.cat)}; load ${load()}` +
      `\n    in this process (no pipes, --no-bpf: the input is not a live pipe): defaults ${f(r.inFull)}; --no-dns-names --ancestry 0 ${f(r.inNone)}`);
  }
  const m = (g) => median(runs.map(g));
  console.log(`  median: added p99 over cat ${m((r) => r.full.p99 - r.cat.p99).toFixed(3)} ms with the enrichments (target < 1 ms), ${m((r) => r.none.p99 - r.cat.p99).toFixed(3)} ms without; the enrichments' own share of p99 ${m((r) => r.full.p99 - r.none.p99).toFixed(3)} ms; p50 added ${m((r) => r.full.p50 - r.cat.p50).toFixed(3)} ms; cat's own p99 ${m((r) => r.cat.p99).toFixed(3)} ms; load average ${load()}` +
    `\n  median in this process (no pipes): p99 ${m((r) => r.inFull.p99).toFixed(3)} ms with the enrichments, ${m((r) => r.inNone.p99).toFixed(3)} ms without; p50 ${m((r) => r.inFull.p50).toFixed(3)} and ${m((r) => r.inNone.p50).toFixed(3)} ms`);
}

// ---- 3. Throughput with all enrichments -----------------------------------

const HOLDER = `
import socket, sys, os, time
port = int(sys.argv[1])
socks = [socket.create_connection(('127.0.0.1', port)) for _ in range(5)]
print(os.getpid(), ' '.join(str(s.getsockname()[1]) for s in socks), flush=True)
time.sleep(3600)
`;

async function throughputBench() {
  const srv = net.createServer((s) => s.on('data', () => {}).on('error', () => {})).listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const port = srv.address().port;
  const ports = [];
  const holder = path.join(tmp, 'holder.py');
  writeFileSync(holder, HOLDER);
  // A lineage of its own, the same wherever the bench runs: the top shell is
  // orphaned at once (reparented to init or the nearest subreaper), and
  // each level forks the next: python3 < bash < sh x DEPTH.
  const chain = path.join(tmp, 'chain.sh');
  writeFileSync(chain, `n=$1; shift\nif [ "$n" -gt 0 ]; then sh ${chain} $((n - 1)) "$@"; else bash -c 'python3 "$0" "$1"; true' "$@"; fi\n`);
  for (let i = 0; i < 20; i++) {
    const h = spawn('sh', ['-c', `sh ${chain} ${CHAIN} ${holder} ${port} &`], { stdio: ['ignore', 'pipe', 'ignore'] });
    const line = await new Promise((r) => h.stdout.setEncoding('utf8').once('data', r));
    const [pid, ...mine] = line.trim().split(' ').map(Number);
    holders.push(pid);
    ports.push(...mine);
  }
  const file = path.join(tmp, 'throughput.ndjson');
  const out = [];
  const ts = new Date().toISOString();
  for (let i = 0; i < EVENTS; i++) {
    const sport = ports[i % ports.length];
    if (i % 10 === 0) out.push(JSON.stringify({ ts, event: 'dns', proto: 'udp', client: '127.0.0.1', cport: 30000 + (i % 5000), server: '127.0.0.53', sport: 53, name: `n${i % 97}.b.test`, answers: [{ addr: '127.0.0.1', ttl: 3600 }], host: 'bench' }));
    out.push(JSON.stringify({ ts, event: 'new', id: i + 1, family: 'ipv4', proto: 'tcp', src: '127.0.0.1', sport, dst: '127.0.0.1', dport: port,
      reply: { src: '127.0.0.1', sport: port, dst: '127.0.0.1', dport: sport }, state: 'ESTABLISHED', status: ['CONFIRMED'], mark: 0, zone: 0, host: 'bench' }));
  }
  writeFileSync(file, out.join('\n') + '\n');
  // The baseline first; the target row ("all enrichments on") is every
  // kind at the issue's default depth (ancestry 4); --ancestry 16 beside it.
  const SETS = [
    ['none (--no-dns-names --ancestry 0)', ['--no-dns-names', '--ancestry', '0']],
    ['defaults (DNS names, ancestry 4)', []],
    ['all enrichments on (DNS names, ancestry 4, --hash)', ['--hash']],
    ['deep (DNS names, --ancestry 16, --hash)', ['--hash', '--ancestry', '16']],
  ];
  const q = (x) => `'${String(x).replace(/'/g, `'\\''`)}'`;
  const err = path.join(tmp, 'thr-stderr');
  /**
   * `cmd` under bash, its output into `sink`; wall seconds, and the user +
   * system CPU seconds of `cmd` alone (the subshell's `times`), and what the
   * sink printed.
   */
  function timed(cmd, sink) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync('bash', ['-c', `( ${cmd} 2>${q(err)}; echo "exit $?" >&2; times >&2 ) ${sink}`], { encoding: 'utf8' });
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const tl = r.stderr.trim().split('\n');
    const t = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s/.exec(tl.pop() ?? '');
    const status = Number((/exit (\d+)/.exec(tl.join('\n')) ?? [, 'NaN'])[1]);
    const cpu = t ? Number(t[1]) * 60 + Number(t[2]) + Number(t[3]) * 60 + Number(t[4]) : NaN;
    return { wall, cpu, status, stdout: r.stdout.trim(), stderr: status ? readFileSync(err, 'utf8').trim().split('\n').pop() : '' };
  }
  const attr = (flags) => [BIN('ct-attribute'), ...flags, file].map(q).join(' ');
  const outFile = (k) => path.join(tmp, `thr-${k}.ndjson`);
  const fresh = path.join(tmp, 'thr-cat.ndjson');
  console.log(`throughput: ct-attribute reading ${fmt(EVENTS)} NEW events (+ ${fmt(EVENTS / 10)} dns records) of 100 live connections held by 20 python processes (each under bash under ${CHAIN} nested sh), one thread each; ${RUNS} runs alternating, each set into a pipe (read by wc -l, as a next stage would read it) and into a fresh file; CPU: ct-attribute's user + system seconds; load average ${load()}`);
  const runs = SETS.map(() => []);
  const checks = SETS.map(() => '');
  for (let i = 0; i < RUNS; i++) {
    // Each run starts one set later, so that no set always follows the
    // same one (the writeback of the bytes of the set before it).
    for (let j = 0; j < SETS.length; j++) {
      const k = (i + j) % SETS.length;
      const [name, flags] = SETS[k];
      const piped = timed(attr(flags), '| wc -l');
      rmSync(outFile(k), { force: true });
      const filed = timed(`${attr(flags)} > ${q(outFile(k))}`, '');
      // What the file says (first run): attributed, named, hashed, with ancestors.
      if (!checks[k]) {
        let ok = 0, named = 0, hashed = 0, anc = 0;
        for await (const line of createInterface({ input: createReadStream(outFile(k)), crlfDelay: Infinity })) {
          if (!line.includes('"event":"new"')) continue;
          const e = JSON.parse(line);
          if (e.process) ok++;
          if (e.dns) named++;
          if (e.process?.hash?.sha256) hashed++;
          if (e.process?.ancestors?.length) anc++;
        }
        checks[k] = `attributed ${fmt(ok)}, named ${fmt(named)}, hashed ${fmt(hashed)}, with ancestors ${fmt(anc)}`;
      }
      const bytes = statSync(outFile(k)).size;
      // The same bytes moved by cat: into the pipe, into a fresh file.
      const catPipe = timed(`cat ${q(outFile(k))}`, '| wc -l');
      rmSync(fresh, { force: true });
      const catFile = timed(`cat ${q(outFile(k))} > ${q(fresh)}`, '');
      rmSync(fresh, { force: true });
      const r = { piped, filed, bytes, lines: Number(piped.stdout), catPipe, catFile };
      runs[k].push(r);
      const bad = [piped, filed].find((x) => x.status);
      console.log(`  run ${i + 1}, ${name}: pipe ${fmt(EVENTS / piped.wall)} events/s (${piped.wall.toFixed(2)} s, CPU ${piped.cpu.toFixed(2)} s, ${fmt(r.lines)} lines arrived), file ${fmt(EVENTS / filed.wall)} events/s (${filed.wall.toFixed(2)} s, CPU ${filed.cpu.toFixed(2)} s, ${(bytes / 2 ** 20).toFixed(0)} MiB); cat of those bytes: pipe ${catPipe.wall.toFixed(2)} s, fresh file ${catFile.wall.toFixed(2)} s (CPU ${catFile.cpu.toFixed(2)} s)${bad ? `; exit ${bad.status}: ${bad.stderr}` : ''}; load ${load()}`);
    }
  }
  const m = (k, f) => median(runs[k].map(f));
  const ratio = (k, f, inverse = false) => (inverse ? m(0, f) / m(k, f) : m(k, f) / m(0, f)).toFixed(2);
  console.log(`  medians (ratios against none; target >= 0.8x for all enrichments on):`);
  for (const [k, [name]] of SETS.entries()) {
    console.log(`    ${name}: pipe ${fmt(EVENTS / m(k, (r) => r.piped.wall))} events/s, ${ratio(k, (r) => r.piped.wall, true)}x; events per CPU second ${fmt(EVENTS / m(k, (r) => r.piped.cpu))}, ${ratio(k, (r) => r.piped.cpu, true)}x;` +
      ` file ${fmt(EVENTS / m(k, (r) => r.filed.wall))} events/s, ${ratio(k, (r) => r.filed.wall, true)}x (CPU ${ratio(k, (r) => r.filed.cpu, true)}x); ${(m(k, (r) => r.bytes) / 2 ** 20).toFixed(0)} MiB, ${ratio(k, (r) => r.bytes)}x none's bytes;` +
      ` cat of the same bytes: into the pipe ${m(k, (r) => r.catPipe.wall).toFixed(2)} s, into a fresh file ${m(k, (r) => r.catFile.wall).toFixed(2)} s; ${checks[k]}`);
  }
  console.log(`  load average ${load()}`);
  for (const pid of holders) { try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ } }
  srv.close();
}

if (only.includes('dns')) await dnsBench();
if (only.includes('latency')) await latencyBench();
if (only.includes('throughput')) await throughputBench();
process.exit(0);
