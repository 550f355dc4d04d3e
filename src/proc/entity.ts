// process.entity_id: one value per process instance. A pid names a process
// only until it exits and the pid is handed out again, and start times
// repeat across boots; the boot id (random, set at each boot:
// /proc/sys/kernel/random/boot_id, see random(4)), the pid and the start
// time in clock ticks since boot (proc(5), /proc/PID/stat field 22) together
// do not. Reads only; owns no cache beyond the boot id.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

let cachedBootId: string | null = null;

/** This boot's id (a UUID), or '' when it cannot be read. */
export function bootId(proc = '/proc'): string {
  if (cachedBootId !== null && proc === '/proc') return cachedBootId;
  let id = '';
  try {
    id = readFileSync(`${proc}/sys/kernel/random/boot_id`, 'utf8').trim();
  } catch { /* no procfs: ids are still unique within this boot's readers */ }
  if (proc === '/proc') cachedBootId = id;
  return id;
}

/**
 * The entity id of the process `pid` started `startTicks` clock ticks after
 * boot: base64url of the first 16 bytes of SHA-256("boot|pid|ticks"),
 * 22 characters. Stable across ctpipe runs within one boot.
 */
export function entityId(boot: string, pid: number, startTicks: number): string {
  return createHash('sha256').update(`${boot}|${pid}|${startTicks}`).digest().subarray(0, 16).toString('base64url');
}
