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

const auditctl = (...a) => execFileSync('auditctl', a, { encoding: 'utf8' });
const ctpipeRules = () => auditctl('-l').split('\n').filter((l) => /key=ctpipe-\d+/.test(l));
const status = () => Object.fromEntries(auditctl('-s').split('\n').map((l) => l.trim().split(/\s+/)).filter((x) => x.length === 2).map(([k, v]) => [k, Number(v)]));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function auditBench(ctx) {
  const { A, ROOT, BIN, tmp, startServer, runClient, score, sleep, N } = ctx;
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
    for (const [proto, host, parallel] of rows) {
      const fa = path.join(tmp, `audit-${proto}-${host}-${parallel}.ndjson`), fd = path.join(tmp, `default-${proto}-${host}-${parallel}.ndjson`), fe = path.join(tmp, `audit-${proto}.err`);
      const cmd = `${BIN('ct-events')} -p tcp -p udp | tee >(${BIN('ct-attribute')} > ${fd}) | ${BIN('ct-attribute')} --audit --audit-rules --stats > ${fa} 2> ${fe}`;
      const p = spawn('ip', ['netns', 'exec', A, 'bash', '-c', cmd], { stdio: ['ignore', 'inherit', 'inherit'], detached: true });
      await waitRules();
      const clients = [];
      const port = proto === 'tcp' ? '7000' : '7001';
      for (let i = 0; i < N; i += parallel) {
        const batch = await Promise.all(Array.from({ length: parallel }, () => runClient([proto, host, port, '0'])));
        for (const c of batch) if (c) clients.push(c);
      }
      await sleep(1000);
      await stop(p);
      const a = score(fa, clients), d = score(fd, clients);
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
      console.log(`${proto.padEnd(3)} ${host.padEnd(12)} ${parallel === 1 ? 'one at a time' : `${parallel} at a time`}: clients ${clients.length}, events seen ${a.seen}; --audit pid-correct ${pct(a.right, clients.length)} (wrong ${a.wrong}; by method ${JSON.stringify(methods)}; unattributed ${JSON.stringify(reasons)}); default method ${pct(d.right, clients.length)} (wrong ${d.wrong}); ratio ${(d.right ? a.right / d.right : Infinity).toFixed(2)}x`);
      if (stats) console.log(`    ${stats}`);
    }

    }
    if (parts.includes('cost')) {
    const loop = path.join(tmp, 'connect-loop');
    execFileSync('cc', ['-O2', '-o', loop, path.join(ROOT, 'bench', 'connect-loop.c')]);
    const M = Number(process.env.AUDIT_CONNECTS ?? 20000);
    const variants = [['without --audit', ''], ['--audit --audit-rules', '--audit --audit-rules'], ['--audit --audit-rules --audit-daemon', '--audit --audit-rules --audit-daemon']];
    for (const proto of ['tcp', 'udp']) {
      const cps = new Map(variants.map(([name]) => [name, []]));
      const lost = new Map(variants.map(([name]) => [name, 0]));
      for (let round = 0; round < 3; round++) {
        for (const [name, flags] of variants) {
          const cmd = `${BIN('ct-events')} -p ${proto} -e new | ${BIN('ct-attribute')} ${flags} > /dev/null 2>> ${path.join(tmp, 'loop.err')}`;
          const p = spawn('ip', ['netns', 'exec', A, 'bash', '-c', cmd], { stdio: ['ignore', 'inherit', 'inherit'], detached: true });
          if (flags) await waitRules(); else await sleep(1500);
          const lost0 = status().lost;
          const out = execFileSync('ip', ['netns', 'exec', A, loop, proto, '10.231.0.2', proto === 'tcp' ? '7000' : '7001', String(M)], { encoding: 'utf8' });
          lost.set(name, lost.get(name) + (status().lost - lost0));
          const [ok, secs] = out.trim().split(' ').map(Number);
          cps.get(name).push(ok / secs);
          await stop(p);
        }
      }
      const base = median(cps.get(variants[0][0]));
      const row = variants.map(([name]) => `${name} ${Math.round(median(cps.get(name)))}/s (${(median(cps.get(name)) / base).toFixed(2)}x${lost.get(name) ? `, audit lost ${lost.get(name)}` : ''})`).join('; ');
      console.log(`audit overhead, ${proto} ${proto === 'tcp' ? 'connect' : 'socket+sendto'}+close loop, ${M} per round, median of 3: ${row}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    }
    }
  } finally {
    server.kill();
    const after = status();
    if (ctpipeRules().length || after.enabled !== before.enabled) console.log(`audit: state not restored: enabled ${before.enabled} -> ${after.enabled}, ctpipe rules ${ctpipeRules().length}`);
  }
}

