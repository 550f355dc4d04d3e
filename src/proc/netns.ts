// Network namespace identities as /proc shows them: the inode in the
// `net:[INODE]` link of /proc/PID/ns/net. Shared by the attribution
// sources that key things by namespace (bpf sightings, other namespaces).
import { readlinkSync } from 'node:fs';

/** "net:[4026531840]" -> 4026531840 */
export function nsInode(link: string): number | null {
  const m = /^net:\[(\d+)\]$/.exec(link);
  return m ? Number(m[1]) : null;
}

/** This process's network namespace inode, or null. */
export function ownNetns(proc = '/proc'): number | null {
  try {
    return nsInode(readlinkSync(`${proc}/self/ns/net`));
  } catch {
    return null;
  }
}
