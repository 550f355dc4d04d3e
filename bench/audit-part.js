// ct-attribute --audit figures, run by bench/attribute.bench.js (ONLY=audit)
// in its namespaces, with its server and clients:
// 1. pid-correct attribution of connect-send-close-exit clients (four at a
//    time), TCP and UDP, IPv4 and IPv6: `ct-attribute --audit --audit-rules`
//    and the default method (plain ct-attribute) fed the very same
//    ct-events stream through tee, in the same run;
// 2. what the rules cost a connect-heavy workload (bench/connect-loop.c):
//    connections per second with `ct-events | ct-attribute --audit
//    --audit-rules` running, and with --audit-daemon (no kernel log), as a
//    ratio to the same pipeline without --audit. Rounds alternate and the
//    median of each is reported, with the load average.
// Prints figures; asserts nothing. Leaves the audit state as it found it.
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { newEventsByPort } from './lib.js';

const auditctl = (...a) => execFileSync('auditctl', a, { encoding: 'utf8' });
const ctpipeRules = () => auditctl('-l').split('\n').filter((l) => /key=ctpipe-\d+/.test(l));
const status = () => Object.fromEntries(auditctl('-s').split('\n').map((l) => l.trim().split(/\s+/)).filter((x) => x.length === 2).map(([k, v]) => [k, Number(v)]));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Each client against the NEW event of its own flow: same protocol and
 * source port, received while the client ran. (A UDP client whose port and
 * destination repeat an entry still in the conntrack table makes no NEW
 * event: it is left out, rather than scored against the earlier flow.)
 */
function scoreByTime(file, clients) {
  const byKey = newEventsByPort(file);
  let seen = 0, right = 0, wrong = 0;
  for (const c of clients) {
    const ev = (byKey.get(`${c.proto}/${c.sport}`) ?? []).find((e) => { const t = Date.parse(e.ts); return t >= c.t0 - 5 && t <= c.t1 + 50; });
    if (!ev) continue;
    seen++;
    if (ev.process && ev.process.pid === c.pid) right++;
    else if (ev.process) {
      wrong++;
      if (process.env.AUDIT_DEBUG) console.log(`    wrong: client pid ${c.pid} ${c.proto}/${c.sport} ran ${c.t0}..${c.t1}; event ts ${ev.ts} names pid ${ev.process.pid} (${ev.process.comm}) by ${JSON.stringify(ev.attribution)}`);
    }
  }
  return { seen, right, wrong };
}

export async function auditBench(ctx) {
  const { A, ROOT, BIN, tmp, startServer, runClient, sleep, N } = ctx; // and ctx.B
  try {
    auditctl('-s');
  } catch {
    console.log('audit: auditctl (package auditd) not found; skipped');
    return;
  }
  const before = status();
  const server = await startServer();
  const waitRules = async () => {
    for (let i = 0; i < 100 && !ctpipeRules().length; i++) await sleep(100);
    await sleep(500);
  };
  const stop = async (p) => {
    try { process.kill(-p.pid, 'SIGINT'); } catch { /* gone */ }
    await new Promise((r) => p.once('close', r));
    for (let i = 0; i < 50 && ctpipeRules().length; i++) await sleep(100);
  };
  const pct = (x, n) => (n ? ((100 * x) / n).toFixed(1) : '-') + '%';
  const parts = (process.env.AUDIT_PARTS ?? 'rate,cost').split(',');
  try {
    if (parts.includes('rate')) {
    console.log(`audit: clients connect (TCP) or send (UDP), close and exit at once, ${N} per row, four at a time (as in the rate rows) or one at a time; ct-attribute --audit --audit-rules against the default method on the same ct-events stream`);
    const rows = [['tcp', '10.231.0.2', 4], ['udp', '10.231.0.2', 4], ['tcp', 'fd00:231::2', 4], ['udp', 'fd00:231::2', 4], ['tcp', '10.231.0.2', 1], ['udp', '10.231.0.2', 1]];
    // AUDIT_ROWS=tcp/1,udp/4 picks rows by protocol and parallelism.
    const pick = process.env.AUDIT_ROWS ? process.env.AUDIT_ROWS.split(',') : null;
    for (const [proto, host, parallel] of rows.filter(([p, h, n]) => !pick || pick.includes(`${p}/${n}`))) {
      const fa = path.join(tmp, `audit-${proto}-${host}-${parallel}.ndjson`), fd = path.join(tmp, `default-${proto}-${host}-${parallel}.ndjson`), fe = path.join(tmp, `audit-${proto}.err`);
      const fb = path.join(tmp, `bpf-${proto}-${host}-${parallel}.ndjson`);
      // --audit alone (no bpf), sock_diag alone, and the default here (as root: with the bpf method).
      const cmd = `${BIN('ct-events')} -p tcp -p udp | tee >(${BIN('ct-attribute')} --no-bpf > ${fd}) >(${BIN('ct-attribute')} > ${fb}) | ${BIN('ct-attribute')} --no-bpf --audit --audit-rules --stats > ${fa} 2> ${fe}`;
      const p = spawn('ip', ['netns', 'exec', A, 'bash', '-c', cmd], { stdio: ['ignore', 'inherit', 'inherit'], detached: true });
      await waitRules();
      await sleep(3000); // the pipelines start, the bpf method attaches its programs
      const clients = [];
      const port = proto === 'tcp' ? '7000' : '7001';
      for (let i = 0; i < N; i += parallel) {
        const batch = await Promise.all(Array.from({ length: parallel }, async () => {
          const t0 = Date.now();
          const c = await runClient([proto, host, port, '0']);
          return c && { ...c, t0, t1: Date.now() };
        }));
        for (const c of batch) if (c) clients.push(c);
      }
      await sleep(1000);
      await stop(p);
      const a = scoreByTime(fa, clients), d = scoreByTime(fd, clients), b = scoreByTime(fb, clients);
      const reasons = {};
      for (const line of readFileSync(fa, 'utf8').split('\n')) {
        if (!line) continue;
        const ev = JSON.parse(line);
        if (ev.event === 'new' && ev.attribution && !ev.attribution.ok) reasons[ev.attribution.reason] = (reasons[ev.attribution.reason] ?? 0) + 1;
      }
      const methods = {};
      for (const line of readFileSync(fa, 'utf8').split('\n')) {
        if (!line) continue;
        const ev = JSON.parse(line);
        if (ev.event === 'new' && ev.attribution?.ok) methods[ev.attribution.method] = (methods[ev.attribution.method] ?? 0) + 1;
      }
      const stats = (readFileSync(fe, 'utf8').match(/audit: (relay|multicast|daemon),.*$/m) ?? [''])[0];
      console.log(`${proto.padEnd(3)} ${host.padEnd(12)} ${parallel === 1 ? 'one at a time' : `${parallel} at a time`}: clients ${clients.length}, with a NEW event of their own ${a.seen}; --audit pid-correct ${pct(a.right, a.seen)} (wrong ${a.wrong}; by method ${JSON.stringify(methods)}; unattributed ${JSON.stringify(reasons)}); sock_diag alone ${pct(d.right, d.seen)} (wrong ${d.wrong}); ratio ${(d.right ? a.right / d.right : Infinity).toFixed(2)}x; default here (bpf) ${pct(b.right, b.seen)} (wrong ${b.wrong})`);
      if (stats) console.log(`    ${stats}`);
    }

    }
    if (parts.includes('cost')) {
    const loop = path.join(tmp, 'connect-loop');
    execFileSync('cc', ['-O2', '-o', loop, path.join(ROOT, 'bench', 'connect-loop.c')]);
    // A C server in B on port 7002: the node server's accept rate would be the limit.
    const fast = spawn('ip', ['netns', 'exec', ctx.B, loop, 'listen', '7002'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((r) => fast.stdout.once('data', r));
    const M = Number(process.env.AUDIT_CONNECTS ?? 20000);
    const variants = [['--no-bpf, no audit', '--no-bpf'], ['--no-bpf --audit --audit-rules', '--no-bpf --audit --audit-rules'], ['--no-bpf --audit --audit-rules --audit-daemon', '--no-bpf --audit --audit-rules --audit-daemon'], ['--bpf', '--bpf']];
    // AUDIT_PROTOS=tcp and AUDIT_VARIANTS=2,3 (1-based) pick protocols and variants; the first variant is always run (the ratios' base).
    const vpick = process.env.AUDIT_VARIANTS ? process.env.AUDIT_VARIANTS.split(',').map(Number) : null;
    if (vpick) for (let i = variants.length - 1; i > 0; i--) if (!vpick.includes(i + 1)) variants.splice(i, 1);
    for (const proto of (process.env.AUDIT_PROTOS ?? 'tcp,udp').split(',')) {
      const cps = new Map(variants.map(([name]) => [name, []]));
      const cpu = new Map(variants.map(([name]) => [name, []]));
      const lost = new Map(variants.map(([name]) => [name, 0]));
      for (let round = 0; round < 3; round++) {
        for (const [name, flags] of variants) {
          const err = path.join(tmp, `loop-${proto}-${round}-${flags.length}.err`);
          const cmd = `${BIN('ct-events')} -p ${proto} -e new | ${BIN('ct-attribute')} ${flags} > /dev/null 2> ${err}`;
          const p = spawn('ip', ['netns', 'exec', A, 'bash', '-c', cmd], { stdio: ['ignore', 'inherit', 'inherit'], detached: true });
          if (flags.includes('--audit')) await waitRules(); else await sleep(flags.includes('--bpf') && !flags.includes('--no-bpf') ? 4000 : 1500);
          const lost0 = status().lost;
          const out = execFileSync('ip', ['netns', 'exec', A, loop, proto, '10.231.0.2', proto === 'tcp' ? '7002' : '7001', String(M)], { encoding: 'utf8' });
          lost.set(name, lost.get(name) + (status().lost - lost0));
          const [ok, secs, cpuSecs] = out.trim().split(' ').map(Number);
          cps.get(name).push(ok / secs);
          cpu.get(name).push((cpuSecs / ok) * 1e6);
          await stop(p);
          const st = status();
          if (st.enabled !== before.enabled || ctpipeRules().length) console.log(`audit: after "${name}": enabled ${st.enabled}, ctpipe rules ${ctpipeRules().length}; its stderr: ${readFileSync(err, 'utf8').trim().replace(/\n/g, ' | ')}`);
        }
      }
      const base = median(cps.get(variants[0][0]));
      const baseCpu = median(cpu.get(variants[0][0]));
      const row = variants.map(([name]) => `${name} ${Math.round(median(cps.get(name)))}/s (${(median(cps.get(name)) / base).toFixed(2)}x), ${median(cpu.get(name)).toFixed(1)} us CPU each (${(median(cpu.get(name)) / baseCpu).toFixed(2)}x)${lost.get(name) ? `, audit lost ${lost.get(name)}` : ''}`).join('; ');
      console.log(`audit overhead, ${proto} ${proto === 'tcp' ? 'connect' : 'socket+sendto'}+close loop, ${M} per round, median of 3 rounds: ${row}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    }
    fast.kill();
    }
  } finally {
    server.kill();
    const after = status();
    if (ctpipeRules().length || after.enabled !== before.enabled) console.log(`audit: state not restored: enabled ${before.enabled} -> ${after.enabled}, ctpipe rules ${ctpipeRules().length}`);
  }
}

