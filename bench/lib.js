// Pieces the attribution benches share.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

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
