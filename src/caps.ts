// Linux capabilities of a process as /proc/PID/status shows them (CapEff and
// friends, hex bit masks; numbers from linux/capability.h), and the ones each
// ctpipe command needs. Reads /proc only; decides nothing.
import { readFileSync } from 'node:fs';

/** The capabilities ctpipe cares about, by number (include/uapi/linux/capability.h). */
export const CAPS = {
  CAP_DAC_OVERRIDE: 1,
  CAP_DAC_READ_SEARCH: 2,
  CAP_NET_ADMIN: 12,
  CAP_SYS_PTRACE: 19,
  CAP_SYS_ADMIN: 21,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
} as const;
export type CapName = keyof typeof CAPS;

/**
 * What each part of the pipeline needs, found by experiment as an
 * unprivileged user (test/e2e/privilege.test.ts checks it):
 * - subscribing to ctnetlink groups and SO_RCVBUFFORCE: CAP_NET_ADMIN;
 * - listing another user's /proc/PID/fd (mode 0500): CAP_DAC_READ_SEARCH,
 *   and reading its links (a ptrace access check): CAP_SYS_PTRACE. Neither
 *   alone is enough;
 * - loading the bpf method's programs (tracing programs, a ring buffer):
 *   CAP_BPF and CAP_PERFMON (test/e2e/attribute-bpf.test.ts).
 */
export const NEEDS = {
  events: ['CAP_NET_ADMIN'] as CapName[],
  attribute: ['CAP_DAC_READ_SEARCH', 'CAP_SYS_PTRACE'] as CapName[],
  /** ct-attribute's bpf method: loading BPF programs and attaching them to tracepoints (Linux 5.8+; CAP_SYS_ADMIN also does). */
  bpf: ['CAP_BPF', 'CAP_PERFMON'] as CapName[],
};

/** A CapEff/CapPrm/... hex mask as a set of capability numbers. */
export function parseCapMask(hex: string): Set<number> {
  const out = new Set<number>();
  const h = hex.trim();
  if (!/^[0-9a-fA-F]+$/.test(h)) throw new Error(`not a capability mask: '${hex}'`);
  // From the low end, 4 bits per hex digit.
  for (let i = 0; i < h.length; i++) {
    const nibble = parseInt(h[h.length - 1 - i], 16);
    for (let b = 0; b < 4; b++) if (nibble & (1 << b)) out.add(i * 4 + b);
  }
  return out;
}

/** The effective capabilities in a status file's text, or null when it has no CapEff line. */
export function effectiveCaps(statusText: string): Set<number> | null {
  const m = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(statusText);
  return m ? parseCapMask(m[1]) : null;
}

/** This process's effective capabilities, or null when /proc cannot tell. */
export function ownEffectiveCaps(proc = '/proc'): Set<number> | null {
  try {
    return effectiveCaps(readFileSync(`${proc}/self/status`, 'utf8'));
  } catch {
    return null;
  }
}

/** Those of `wanted` not in `held` (all of them when `held` is null: unknown counts as missing). */
export function missingCaps(wanted: CapName[], held: Set<number> | null): CapName[] {
  return wanted.filter((c) => !held || !held.has(CAPS[c]));
}
