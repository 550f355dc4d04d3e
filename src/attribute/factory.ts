// The one place the attribution engine is assembled: which methods run, in
// which order (sock_diag with the fd index, other network namespaces, bpf,
// audit: each later one only changes what the earlier ones could not
// settle), and the shared parts each is given when it is made (the /proc
// process reader and the fd index). Decides from what it is told (euid,
// capabilities, a live input), so it is library code: no `process`.
import { SocketIndex } from '../proc/sockets.js';
import { ListingWatch, PreferredWatch } from '../proc/pids.js';
import { ProcessReader } from '../proc/process.js';
import { ownNetns } from '../proc/netns.js';
import { NEEDS, missingCaps } from '../caps.js';
import { Engine } from './engine.js';
import type { Enrichment, MethodStatus, Source } from './source.js';
import { SockDiagSource } from './sources/sockdiag.js';
import { NetnsMethod } from './sources/netns/method.js';
import type { RuntimeRoots } from './sources/netns/runtime.js';
import { BpfMethod } from './sources/bpf/method.js';
import type { UdpRoute } from '../native/bpf.js';
import { AuditMethod } from './sources/audit/method.js';

export interface EngineConfig {
  proc?: string;
  /** Include the command line (default true). */
  cmdline?: boolean;
  /** Learn new pids from the process connector when it works (default true); else from /proc listings. */
  connector?: boolean;
  flowCache?: boolean;
  maxFlows?: number;
  maxProcesses?: number;
  /** Name the peer process of local flows (default true). */
  peer?: boolean;
  /** This process's effective uid, and capabilities (null: unknown). */
  euid?: number;
  caps?: Set<number> | null;
  /** Owners of forwarded flows in other namespaces: the container runtimes' roots, or false. */
  netns?: RuntimeRoots | false;
  /** The bpf method: true asked for (tried even without the capabilities), false off, undefined the default (on when it can run). */
  bpf?: boolean;
  /** Test only: the bpf method's UDP route forced, and its ring buffer's size (bytes). */
  bpfUdp?: 'auto' | UdpRoute;
  bpfRingBytes?: number;
  /** Whether the input is live (a pipe, not a saved file): sightings are about now. */
  live?: boolean;
  bpfWindowMs?: number;
  /** The audit method, or false. */
  audit?: { rules?: boolean; daemon?: boolean; windowMs?: number } | false;
  /** This process's pid and node's process.arch (audit rule keys, syscall numbers). */
  pid?: number;
  arch?: string;
  enrichments?: Enrichment[];
  /** Something worth a line on stderr, from method `method`. */
  onWarning?: (method: string, message: string) => void;
}

/** Why bpf cannot run here, with the fix; null when it can. */
function bpfBlocked(c: EngineConfig): MethodStatus | null {
  if (c.live === false) return { method: 'bpf', live: false, why: 'the input is a saved file: sightings are about the live system', fix: 'read a live ct-events pipe' };
  // CAP_SYS_ADMIN (root) also loads BPF programs.
  const missing = missingCaps(NEEDS.bpf, c.caps ?? null);
  if (missing.length && missingCaps(['CAP_SYS_ADMIN'], c.caps ?? null).length) return { method: 'bpf', live: false, why: `missing ${missing.join(' and ')}`, fix: 'grant CAP_BPF and CAP_PERFMON (AmbientCapabilities= in a unit, setpriv --inh-caps and --ambient-caps), or run as root' };
  return null;
}

export function createEngine(c: EngineConfig = {}): Engine {
  // New pids from diffs of the /proc listing until the process connector's events flow.
  const pids = new PreferredWatch(new ListingWatch({ proc: c.proc }));
  const index = new SocketIndex({ proc: c.proc, pids });
  const procs = new ProcessReader({ proc: c.proc, cmdline: c.cmdline, maxEntries: c.maxProcesses, freshMs: 50 });
  const viewer = {
    selfUid: c.euid,
    // Root without CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE is refused too.
    privileged: c.caps === undefined ? c.euid === 0 : missingCaps(NEEDS.attribute, c.caps).length === 0,
  };
  const warn = (m: string) => (s: string) => c.onWarning?.(m, s);
  const sources: Source[] = [new SockDiagSource({ index, procs, peer: c.peer, pids, connector: c.connector, ...viewer })];
  const off: MethodStatus[] = [];
  if (c.netns !== false) {
    sources.push(new NetnsMethod({ index, procs, peer: c.peer, ...viewer, runtimes: c.netns }));
  } else off.push({ method: 'netns', live: false, why: 'turned off (--no-netns)', fix: 'leave out --no-netns' });
  const blocked = c.bpf === false ? { method: 'bpf', live: false, why: 'turned off (--no-bpf)', fix: 'leave out --no-bpf' } : c.bpf ? null : bpfBlocked(c);
  if (!blocked) {
    sources.push(new BpfMethod({ procs, netns: ownNetns(c.proc), windowMs: c.bpfWindowMs, cmdline: c.cmdline, udp: c.bpfUdp, ringBytes: c.bpfRingBytes, onWarning: warn('bpf') }));
  } else off.push(blocked);
  if (c.audit) {
    sources.push(new AuditMethod({
      procs, index, rules: c.audit.rules, daemon: c.audit.daemon, windowMs: c.audit.windowMs, cmdline: c.cmdline,
      pid: c.pid ?? 0, arch: c.arch ?? 'x64', onWarning: warn('audit'),
    }));
  } else off.push({ method: 'audit', live: false, why: 'not asked for', fix: '--audit, with --audit-rules, as root' });
  return new Engine({ sources, off, enrichments: c.enrichments, flowCache: c.flowCache, maxFlows: c.maxFlows });
}

/**
 * What createEngine would run here and why not the rest, without starting
 * anything (ct-doctor): the methods' statuses in chain order.
 */
export function methodPlan(c: EngineConfig = {}): MethodStatus[] {
  const out: MethodStatus[] = [{ method: 'sock_diag', live: true, detail: 'new processes from the process connector where it may listen (CAP_NET_ADMIN, the initial namespaces), else from diffs of the /proc listing' }];
  out.push(c.netns === false ? { method: 'netns', live: false, why: 'turned off (--no-netns)', fix: 'leave out --no-netns' } : { method: 'netns', live: true });
  const blocked = c.bpf === false ? { method: 'bpf', live: false, why: 'turned off (--no-bpf)', fix: 'leave out --no-bpf' } : bpfBlocked(c);
  // Whether the programs load (BTF, the kernel's version) is known only by loading them: ct-doctor's bpf check does.
  out.push(blocked ?? { method: 'bpf', live: true });
  out.push(c.audit ? { method: 'audit', live: true } : { method: 'audit', live: false, why: 'not asked for', fix: '--audit, with --audit-rules, as root' });
  return out;
}

/** Statuses as one line: "sock_diag live (...), bpf not live: why (fix: ...), ...". */
export function describeMethods(list: MethodStatus[]): string {
  return list.map((m) => {
    if (!m.live) return `${m.method} not live: ${m.why ?? 'unknown'}${m.fix ? ` (fix: ${m.fix})` : ''}`;
    const notes = [m.detail, m.why].filter(Boolean).join('; ');
    return `${m.method} live${notes ? ` (${notes}${m.fix ? `; fix: ${m.fix}` : ''})` : ''}`;
  }).join(', ');
}
