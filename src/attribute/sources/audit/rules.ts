// ct-attribute's audit rules: the smallest set that reports outgoing
// connects and UDP sends, and their text as auditctl(8) would list it.
// Per ABI (64-bit and 32-bit):
//   -a always,exit -F arch=ABI -S connect,sendto,sendmsg,sendmmsg -F success=1
//      -F saddr_fam>=2 -F saddr_fam<=10 -k KEY
//   -a always,exit -F arch=ABI -S connect -F exit=-EINPROGRESS
//      -F saddr_fam>=2 -F saddr_fam<=10 -k KEY
// and on i386 the same two through socketcall(2) (a0 is the call; bind,
// which also passes an address, is left out). saddr_fam (the address the
// call passed, kernel 5.9+) keeps AF_UNIX connects and calls without an
// address (send on a connected socket) out; 2..10 is AF_INET to AF_INET6,
// families between them (ax25, ipx, appletalk, x25, ...) are too rare to
// cost anything. A non-blocking connect returns -EINPROGRESS with its SYN
// already sent, so it counts as success. Pure data and functions.
import {
  AUDIT_FILTER_EXIT, AUDIT_ALWAYS, AUDIT_ARCH, AUDIT_EXIT, AUDIT_SUCCESS, AUDIT_SADDR_FAM, AUDIT_ARG0, AUDIT_FILTERKEY,
  AUDIT_EQUAL, AUDIT_NOT_EQUAL, AUDIT_GREATER_THAN_OR_EQUAL, AUDIT_LESS_THAN_OR_EQUAL, AUDIT_LESS_THAN, AUDIT_GREATER_THAN, AUDIT_NEVER,
  ruleKeys, type AuditRule, type RuleField,
} from '../../../netlink/audit.js';
import { ARCHES, SYS_BIND, SYS_CONNECT, type ArchTable } from './syscalls.js';

export const KEY_PREFIX = 'ctpipe-';
const EINPROGRESS = 115;
const AF_INET = 2, AF_INET6 = 10;

/** The key of this instance's rules: ctpipe-PID, so each instance removes exactly its own. */
export function ruleKey(pid: number): string {
  return `${KEY_PREFIX}${pid}`;
}

/** The pid in a key of ours, or null for anyone else's key. */
export function keyPid(key: string): number | null {
  const m = /^ctpipe-(\d+)$/.exec(key);
  return m ? Number(m[1]) : null;
}

export interface RuleOptions {
  key: string;
  /** Filter on the address family (saddr_fam, Linux 5.9+). */
  saddrFam?: boolean;
}

function common(t: ArchTable, o: RuleOptions): { head: RuleField[]; tail: RuleField[] } {
  const fam: RuleField[] = o.saddrFam === false ? [] : [
    { type: AUDIT_SADDR_FAM, op: AUDIT_GREATER_THAN_OR_EQUAL, value: AF_INET },
    { type: AUDIT_SADDR_FAM, op: AUDIT_LESS_THAN_OR_EQUAL, value: AF_INET6 },
  ];
  return { head: [{ type: AUDIT_ARCH, op: AUDIT_EQUAL, value: t.arch }], tail: [...fam, { type: AUDIT_FILTERKEY, op: AUDIT_EQUAL, text: o.key }] };
}

/** The rules for the given ABIs, in the order they are added. */
export function buildRules(abis: ArchTable[], o: RuleOptions): AuditRule[] {
  const out: AuditRule[] = [];
  for (const t of abis) {
    const { head, tail } = common(t, o);
    const c = t.calls;
    const direct = [c.connect, c.sendto, c.sendmsg, c.sendmmsg].filter((n): n is number => n !== undefined);
    const success: RuleField = { type: AUDIT_SUCCESS, op: AUDIT_EQUAL, value: 1 };
    const inProgress: RuleField = { type: AUDIT_EXIT, op: AUDIT_EQUAL, value: -EINPROGRESS >>> 0 };
    out.push({ list: AUDIT_FILTER_EXIT, action: AUDIT_ALWAYS, syscalls: direct, fields: [...head, success, ...tail] });
    if (c.connect !== undefined) out.push({ list: AUDIT_FILTER_EXIT, action: AUDIT_ALWAYS, syscalls: [c.connect], fields: [...head, inProgress, ...tail] });
    if (c.socketcall !== undefined) {
      out.push({ list: AUDIT_FILTER_EXIT, action: AUDIT_ALWAYS, syscalls: [c.socketcall], fields: [...head, success, { type: AUDIT_ARG0, op: AUDIT_NOT_EQUAL, value: SYS_BIND }, ...tail] });
      out.push({ list: AUDIT_FILTER_EXIT, action: AUDIT_ALWAYS, syscalls: [c.socketcall], fields: [...head, { type: AUDIT_ARG0, op: AUDIT_EQUAL, value: SYS_CONNECT }, inProgress, ...tail] });
    }
  }
  return out;
}

const OPS: Record<number, string> = {
  [AUDIT_EQUAL]: '=', [AUDIT_NOT_EQUAL]: '!=', [AUDIT_LESS_THAN]: '<', [AUDIT_GREATER_THAN]: '>',
  [AUDIT_LESS_THAN_OR_EQUAL]: '<=', [AUDIT_GREATER_THAN_OR_EQUAL]: '>=', 0x08000000: '&', 0x48000000: '&=',
};
const FIELD_NAMES: Record<number, string> = {
  0: 'pid', 1: 'uid', 2: 'euid', 3: 'suid', 4: 'fsuid', 5: 'gid', 6: 'egid', 7: 'sgid', 8: 'fsgid', 9: 'auid', 10: 'pers',
  [AUDIT_ARCH]: 'arch', 12: 'msgtype', 18: 'ppid', 24: 'loginuid_set', 25: 'sessionid', 26: 'fstype',
  [AUDIT_EXIT]: 'exit', [AUDIT_SUCCESS]: 'success', 105: 'path', 106: 'perm', 107: 'dir', 108: 'filetype', 109: 'obj_uid', 110: 'obj_gid',
  111: 'field_compare', 112: 'exe', [AUDIT_SADDR_FAM]: 'saddr_fam', 200: 'a0', 201: 'a1', 202: 'a2', 203: 'a3', [AUDIT_FILTERKEY]: 'key',
};
const LISTS: Record<number, string> = { 0: 'user', 1: 'task', 2: 'entry', 4: 'exit', 5: 'exclude', 6: 'filesystem', 7: 'io_uring' };

/** A rule as text, close to what `auditctl -l` prints (for messages). */
export function ruleText(r: AuditRule): string {
  const action = r.action === AUDIT_ALWAYS ? 'always' : r.action === AUDIT_NEVER ? 'never' : String(r.action);
  let s = `-a ${action},${LISTS[r.list & 0x7] ?? r.list}`;
  const arch = r.fields.find((f) => f.type === AUDIT_ARCH);
  const table = arch ? ARCHES.find((t) => t.arch === arch.value) : undefined;
  for (const f of r.fields) {
    if (f.type !== AUDIT_ARCH) continue;
    s += ` -F arch=${table ? table.abi : (f.value! >>> 0).toString(16)}`;
  }
  if (r.syscalls === 'all') s += ' -S all';
  else if (r.syscalls.length) {
    const names = [...r.syscalls].sort((x, y) => x - y).map((n) => (table ? Object.entries(table.calls).find(([, v]) => v === n)?.[0] : undefined) ?? String(n));
    s += ` -S ${names.join(',')}`;
  }
  for (const f of r.fields) {
    if (f.type === AUDIT_ARCH) continue;
    const name = FIELD_NAMES[f.type] ?? `field${f.type}`;
    let v: string;
    if (f.text !== undefined) v = f.text;
    else if (f.type === AUDIT_EXIT) v = (f.value! | 0) === -EINPROGRESS ? '-EINPROGRESS' : String(f.value! | 0);
    else if (f.type >= 200 && f.type <= 203) v = `0x${(f.value! >>> 0).toString(16)}`;
    else v = String(f.value! >>> 0);
    s += ` -F ${name}${OPS[f.op] ?? '?'}${v}`;
  }
  return s;
}

/** Rules carrying a key of ours (any instance's). */
export function ctpipeRules(rules: AuditRule[]): { rule: AuditRule; pid: number }[] {
  const out: { rule: AuditRule; pid: number }[] = [];
  for (const r of rules) {
    for (const k of ruleKeys(r)) {
      const pid = keyPid(k);
      if (pid !== null) { out.push({ rule: r, pid }); break; }
    }
  }
  return out;
}

/**
 * Whether some existing rule can report outgoing flows: an `always` rule on
 * the exit list whose syscalls include connect for the machine's 64-bit
 * ABI (or all syscalls), restricted to that ABI or to none. A rough check
 * for a warning, not a proof: other fields may narrow it further.
 */
export function rulesCatchConnect(rules: AuditRule[], native: ArchTable): boolean {
  const connect = native.calls.connect!;
  return rules.some((r) => {
    if ((r.list & 0x7) !== AUDIT_FILTER_EXIT || r.action !== AUDIT_ALWAYS) return false;
    if (r.syscalls !== 'all' && !r.syscalls.includes(connect)) return false;
    const arch = r.fields.find((f) => f.type === AUDIT_ARCH);
    return !arch || (arch.op === AUDIT_EQUAL && arch.value === native.arch);
  });
}
