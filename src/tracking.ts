// Whether the kernel tracks connections in this network namespace, and a
// passive nftables table that switches tracking on. Conntrack is lazy: it is
// registered in a namespace only when some rule needs it (nft `ct`
// expressions, NAT, iptables state matches), so an empty namespace produces
// no events at all.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';

export type TrackingState = 'on' | 'off' | 'unknown';

/** Run nft(8) with `args` (and `input` on its stdin); `missing` when there is no nft command. */
export function nft(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string; missing: boolean }> {
  return new Promise((resolve) => {
    const child = execFile('nft', args, { timeout: 10000 }, (err, stdout, stderr) => {
      const e = err as NodeJS.ErrnoException | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout: String(stdout), stderr: String(stderr), missing: !!e && e.code === 'ENOENT' });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Connections the kernel tracks right now in this namespace, or null. */
export function trackedCount(): number | null {
  try {
    return Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_count', 'utf8').trim());
  } catch {
    return null;
  }
}

/** The nf_conntrack_events sysctl: 0 means the kernel sends no events at all. */
export function eventsSysctl(): number | null {
  try {
    return Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_events', 'utf8').trim());
  } catch {
    return null;
  }
}

/**
 * A best-effort answer: 'on' when entries exist or a rule that needs
 * conntrack is visible to nft; 'off' when nft shows no such rule and nothing
 * is tracked; 'unknown' when nft is missing or fails (iptables-legacy rules
 * are invisible to nft).
 */
export async function trackingState(): Promise<TrackingState> {
  const count = trackedCount();
  if (count !== null && count > 0) return 'on';
  const r = await nft(['list', 'ruleset']);
  if (r.code !== 0) return 'unknown';
  if (/\bct (state|status|mark|direction|original|reply|zone|helper|label|id|count)\b|\b(snat|dnat|masquerade|redirect)\b|xt (match|target) "?(state|conntrack|CT|MASQUERADE|SNAT|DNAT)/.test(r.stdout)) return 'on';
  try {
    const legacy = readFileSync('/proc/net/ip_tables_names', 'utf8').trim();
    if (legacy) return 'unknown';
  } catch { /* no legacy iptables loaded */ }
  return 'off';
}

export class TrackingError extends Error {}

/** The table ct-events --enable-tracking installs: one accept-policy chain, one counting rule, no verdicts. */
export function trackingTableName(pid: number): string {
  return `ctpipe_track_${pid}`;
}

export async function enableTracking(table: string): Promise<void> {
  const rules = `table inet ${table} {\n  chain track {\n    type filter hook output priority 0; policy accept;\n    ct state new counter\n  }\n}\n`;
  const r = await nft(['-f', '-'], rules);
  if (r.missing) throw new TrackingError("--enable-tracking needs the 'nft' command (apt-get install nftables)");
  if (r.code !== 0) {
    const why = r.stderr.split('\n').find((l) => /Error|denied|permitted/i.test(l)) ?? r.stderr.trim().split('\n')[0] ?? 'failed';
    throw new TrackingError(`--enable-tracking: nft could not add table inet ${table}: ${why.trim()}${/permit|denied/i.test(why) ? ' (needs CAP_NET_ADMIN)' : ''}`);
  }
}

export async function disableTracking(table: string): Promise<void> {
  const r = await nft(['delete', 'table', 'inet', table]);
  if (r.code !== 0 && !r.missing) throw new TrackingError(`could not remove nft table inet ${table}: ${r.stderr.trim().split('\n')[0]}`);
}
