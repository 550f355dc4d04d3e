// Which process owns a socket, from the processes found holding it: shared
// by the host's lookups (sources/sockdiag.ts) and other namespaces' (src/attribute/sources/netns).
import type { ProcessInfo } from '../event.js';
import type { Holder } from '../proc/sockets.js';
import type { ProcessReader } from '../proc/process.js';

/** Who this process is, to tell a socket nobody holds from one it may not see. */
export interface Viewer {
  /** This process's effective uid. */
  selfUid?: number;
  /** Whether it may read every process's fd table (default: when selfUid is 0). */
  privileged?: boolean;
}

/**
 * The holder most likely to have used the socket, or why there is none:
 * `no-permission` when fd tables of others could not be read and the socket
 * is another user's, `no-process` when nobody holds it, `socket-gone` when
 * every holder has gone. Several holders (inherited or passed sockets): the
 * youngest process.
 */
export function pickHolder(holders: Holder[], denied: number, sockUid: number, procs: ProcessReader, who: Viewer):
  { best: ProcessInfo; reason?: undefined } | { best?: undefined; reason: string } {
  if (!holders.length) {
    const self = who.selfUid;
    const privileged = who.privileged ?? self === 0;
    return { reason: denied > 0 && self !== undefined && !privileged && sockUid !== self ? 'no-permission' : 'no-process' };
  }
  let best: ProcessInfo | null = null;
  for (const h of holders) {
    const p = procs.get(h.pid);
    if (!p) continue;
    if (!best || (p.start_time ?? '') > (best.start_time ?? '')) best = p;
  }
  return best ? { best } : { reason: 'socket-gone' };
}
