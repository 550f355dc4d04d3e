// Socket options the 'netlink' package cannot set (NETLINK_NO_ENOBUFS,
// SO_RCVBUFFORCE) on a socket it opened: the descriptor is found through
// /proc/self/fd and the option set with setsockopt(2) from ctpipe's own
// addon (src/native/addon.ts). netlink 0.3.0 aborts the whole process when
// the kernel reports ENOBUFS on a socket, so a socket read through it must
// have NETLINK_NO_ENOBUFS, and losses are counted from the drop counter.
import { readdirSync, readlinkSync } from 'node:fs';
import { addon } from '../native/addon.js';

export const SOL_SOCKET = 1, SO_RCVBUF = 8, SO_RCVBUFFORCE = 33;
export const SOL_NETLINK = 270, NETLINK_NO_ENOBUFS = 5;

/** This process's file descriptor for socket inode `inode`, or null. */
export function fdOfInode(inode: number): number | null {
  const want = `socket:[${inode}]`;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === want) return Number(fd);
    } catch { /* closed meanwhile */ }
  }
  return null;
}

const NAMES: Record<string, string> = { [`${SOL_SOCKET},${SO_RCVBUFFORCE}`]: 'SO_RCVBUFFORCE', [`${SOL_SOCKET},${SO_RCVBUF}`]: 'SO_RCVBUF', [`${SOL_NETLINK},${NETLINK_NO_ENOBUFS}`]: 'NETLINK_NO_ENOBUFS' };

/** Set integer socket options on `fd`; returns an error message per option that failed. */
export function setIntOptions(fd: number, opts: Array<[level: number, name: number, value: number]>): string[] {
  const errors: string[] = [];
  for (const [level, name, value] of opts) {
    try {
      addon().setsockopt(fd, level, name, value);
    } catch (e) {
      errors.push(`${NAMES[`${level},${name}`] ?? `${level},${name}`}: ${(e as Error).message}`);
    }
  }
  return errors;
}

/** getsockopt(2) of an int option; throws the addon's error. */
export function getIntOption(fd: number, level: number, name: number): number {
  return addon().getsockopt(fd, level, name);
}
