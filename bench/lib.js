// Pieces the benches share.
import { readFileSync, readdirSync, readlinkSync, openSync, readSync, closeSync } from 'node:fs';
import { spawnSync, execFileSync } from 'node:child_process';

/** NEW events of an NDJSON file, by "proto/sport" (ephemeral ports are reused: a list each). */
export function newEventsByPort(file) {
  const byKey = new Map();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    const ev = JSON.parse(line);
    if (ev.event !== 'new') continue;
    const k = `${ev.proto}/${ev.sport}`;
    if (!byKey.has(k)) byKey.set(k, []);
    byKey.get(k).push(ev);
  }
  return byKey;
}

/** The baselines' inode -> pid: readlink every /proc/*\/fd/* until one points at the socket. */
export function findPid(inode) {
  const target = `socket:[${inode}]`;
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    let fds;
    try { fds = readdirSync(`/proc/${p}/fd`); } catch { continue; }
    for (const fd of fds) {
      try { if (readlinkSync(`/proc/${p}/fd/${fd}`) === target) return Number(p); } catch { /* gone */ }
    }
  }
  return null;
}

/** Count the lines rsyslog has written, reading only what was appended. */
export function lineCounter(file) {
  let off = 0, lines = 0;
  const buf = Buffer.alloc(1 << 20);
  return () => {
    let fd;
    try { fd = openSync(file, 'r'); } catch { return 0; }
    try {
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, off);
        if (n <= 0) break;
        off += n;
        for (let i = buf.indexOf(10, 0); i >= 0 && i < n; i = buf.indexOf(10, i + 1)) lines++;
      }
    } finally { closeSync(fd); }
    return lines;
  };
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
/** CPU seconds (user + system) a live process has used, from /proc/<pid>/stat; NaN once it is gone. */
export function cpuSeconds(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // fields 14 and 15: utime, stime
  } catch {
    return NaN;
  }
}

/**
 * The flood benches' namespaces. The flood goes to loopback addresses
 * (DST_NET.0.0/16) that an ingress rule on lo drops: no receiver, no ICMP
 * errors, and conntrack has confirmed (and announced) each flow on the way
 * out, before the drop; an output rule counts new flows. Flow i goes to
 * DST_NET.0.(1 + i / PER_ADDR), port 10000 + i % PER_ADDR. Every namespace
 * made is deleted at exit (SIGINT and SIGTERM exit too).
 */
export const DST_NET = '127.201';
export const PER_ADDR = 50000;
export function floodNamespaces(prefix) {
  const namespaces = [];
  let n = 0;
  const delNs = (ns) => spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  process.on('exit', () => { for (const ns of namespaces) delNs(ns); });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
  const floodNs = () => {
    const ns = `${prefix}${process.pid}_${++n}`;
    execFileSync('ip', ['netns', 'add', ns]);
    namespaces.push(ns);
    execFileSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
    execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], {
      input: [
        'table netdev benchdrop {',
        `  chain in { type filter hook ingress device "lo" priority 0; policy accept; ip daddr ${DST_NET}.0.0/16 drop; }`,
        '}',
        'table inet bench {',
        '  chain out { type filter hook output priority 0; policy accept; ct state new counter; }',
        '}',
        '',
      ].join('\n'),
    });
    return ns;
  };
  return { floodNs, delNs };
}
