// Pieces the benches share.
import { readFileSync, readdirSync, readlinkSync, openSync, readSync, closeSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

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
