// /proc/net/netlink: the kernel's per-socket drop counter (sk_drops), which
// netlink_overrun() increments once per message it could not queue. It is the
// only exact count of conntrack events lost to a full receive buffer.
import { readFileSync } from 'node:fs';

/** Drops counted for the netlink socket bound to `portid` in this namespace, or null. */
export function netlinkDrops(portid: number, text?: string): number | null {
  const r = netlinkSocketInfo(portid, text);
  return r ? r.drops : null;
}

/** Drop counter and inode of the netlink socket bound to `portid`, or null. */
export function netlinkSocketInfo(portid: number, text?: string): { drops: number; inode: number } | null {
  let t = text;
  if (t === undefined) {
    try {
      t = readFileSync('/proc/self/net/netlink', 'utf8');
    } catch {
      return null;
    }
  }
  const lines = t.split('\n');
  const header = lines[0].trim().split(/\s+/);
  const pidCol = header.indexOf('Pid');
  const dropsCol = header.indexOf('Drops');
  const inodeCol = header.indexOf('Inode');
  if (pidCol < 0 || dropsCol < 0) return null;
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i].trim().split(/\s+/);
    if (f.length > dropsCol && Number(f[pidCol]) === portid) return { drops: Number(f[dropsCol]), inode: inodeCol >= 0 ? Number(f[inodeCol]) : 0 };
  }
  return null;
}
