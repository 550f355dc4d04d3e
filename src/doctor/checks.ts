// ct-doctor's checks of the running machine: each looks at one prerequisite
// of the pipeline the way the commands themselves would meet it (a real
// ctnetlink request, a real group join, real /proc reads), and says pass,
// warn or fail with the fix. Checks report; they change nothing.
import { loadAddon } from '../native/addon.js';
import { existsSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { probeCtnetlink, probeEventGroup } from '../netlink/probe.js';
import { trackingState } from '../tracking.js';
import { NEEDS, effectiveCaps, missingCaps } from '../caps.js';
import { methodPlan, describeMethods } from '../attribute/factory.js';
import type { MethodStatus } from '../attribute/source.js';
import { ProcConnector } from '../netlink/cnproc.js';
import { openSightings } from '../native/bpf.js';
import { NflogSource } from '../netlink/nflog-source.js';
import { dnsRules } from '../dns/observer.js';

export type Status = 'pass' | 'warn' | 'fail';

export interface CheckResult {
  check: string;
  status: Status;
  detail: string;
  fix?: string;
  /** attribute-methods: each of ct-attribute's methods, live or not (why, fix), as ct-attribute says at start. */
  methods?: MethodStatus[];
}

export interface CheckContext {
  /** Mount point of procfs (tests give a fake tree for the /proc readers). */
  proc: string;
  /** This process's effective uid. */
  euid: number;
}

const pass = (check: string, detail: string): CheckResult => ({ check, status: 'pass', detail });
const warn = (check: string, detail: string, fix?: string): CheckResult => ({ check, status: 'warn', detail, ...(fix ? { fix } : {}) });
const fail = (check: string, detail: string, fix?: string): CheckResult => ({ check, status: 'fail', detail, ...(fix ? { fix } : {}) });

const GRANT_NET_ADMIN = 'run as root, or grant it: setpriv --inh-caps +net_admin --ambient-caps +net_admin ..., or AmbientCapabilities=CAP_NET_ADMIN in the unit';

function readSysctl(ctx: CheckContext, name: string): number | null {
  try {
    const v = Number(readFileSync(`${ctx.proc}/sys/net/netfilter/${name}`, 'utf8').trim());
    return Number.isFinite(v) ? v : null;
  } catch {
    return null;
  }
}

function ownCaps(ctx: CheckContext): Set<number> | null {
  try {
    return effectiveCaps(readFileSync(`${ctx.proc}/self/status`, 'utf8'));
  } catch {
    return null;
  }
}

/** Does the kernel answer ctnetlink requests? */
export async function checkCtnetlink(): Promise<CheckResult> {
  const r = await probeCtnetlink();
  if (r.ok) return pass('ctnetlink', `the kernel answers ctnetlink requests${r.entries !== undefined ? ` (${r.entries} connection${r.entries === 1 ? '' : 's'} tracked here)` : ''}`);
  if (r.code === 'EPERM' || r.code === 'EACCES') return warn('ctnetlink', 'cannot ask the kernel: every ctnetlink request needs CAP_NET_ADMIN', GRANT_NET_ADMIN);
  if (['EPROTONOSUPPORT', 'EAFNOSUPPORT', 'EOPNOTSUPP', 'ENOENT'].includes(r.code)) {
    return fail('ctnetlink', `the kernel has no ctnetlink (${r.code})`, 'modprobe nf_conntrack_netlink (kernel option CONFIG_NF_CT_NETLINK)');
  }
  return fail('ctnetlink', `ctnetlink request failed: ${r.code} ${r.message}`);
}

/** May this process subscribe to conntrack events, and does the kernel send them? */
export function checkEvents(ctx: CheckContext): CheckResult {
  const sysctl = readSysctl(ctx, 'nf_conntrack_events');
  if (sysctl === 0) return fail('events', 'net.netfilter.nf_conntrack_events is 0: the kernel sends no conntrack events', 'sysctl -w net.netfilter.nf_conntrack_events=1');
  const r = probeEventGroup();
  if (!r.ok) {
    if (r.code === 'EPERM' || r.code === 'EACCES') return fail('events', 'cannot subscribe to conntrack events: missing CAP_NET_ADMIN', GRANT_NET_ADMIN);
    return fail('events', `cannot subscribe to conntrack events: ${r.message}`, 'modprobe nf_conntrack_netlink (kernel option CONFIG_NF_CONNTRACK_EVENTS)');
  }
  return pass('events', `conntrack event groups can be joined${sysctl === null ? '' : ` (nf_conntrack_events=${sysctl})`}`);
}

const TRACK_FIX = 'ct-events --enable-tracking (in the service: CT_EVENTS_OPTS in /etc/default/ctpipe), or a permanent rule: nft add table inet track; nft add chain inet track out \'{ type filter hook output priority 0; }\'; nft add rule inet track out ct state new counter';

/** Is conntrack active in this network namespace? */
export async function checkTracking(): Promise<CheckResult> {
  const s = await trackingState();
  if (s === 'on') return pass('tracking', 'conntrack is active in this network namespace');
  if (s === 'off') return fail('tracking', 'conntrack is not active in this network namespace (no netfilter rule uses it): no events will come', TRACK_FIX);
  return warn('tracking', 'cannot tell whether conntrack is active: nothing is tracked now and nft could not list the ruleset (missing, no CAP_NET_ADMIN, or iptables-legacy rules)', TRACK_FIX);
}

/** An optional conntrack extension switched by a sysctl. */
export function checkSysctl(ctx: CheckContext, check: string, name: string, gives: string): CheckResult {
  const v = readSysctl(ctx, name);
  if (v === null) return warn(check, `net.netfilter.${name} cannot be read: no conntrack in this kernel or namespace`, 'modprobe nf_conntrack');
  if (v === 0) return warn(check, `net.netfilter.${name} is 0: events carry no ${gives}`, `sysctl -w net.netfilter.${name}=1 (and in /etc/sysctl.d/ to keep it)`);
  return pass(check, `net.netfilter.${name} is ${v}: events carry ${gives}`);
}

/** The capability ct-events needs. */
export function checkCapEvents(ctx: CheckContext): CheckResult {
  const held = ownCaps(ctx);
  if (!held) return warn('cap-events', `cannot read CapEff from ${ctx.proc}/self/status`);
  const missing = missingCaps(NEEDS.events, held);
  if (missing.length) return fail('cap-events', `missing ${missing.join(', ')}: ct-events cannot subscribe to conntrack events`, GRANT_NET_ADMIN);
  return pass('cap-events', `${NEEDS.events.join(', ')} held (ct-events)`);
}

/** The capabilities ct-attribute needs for other users' processes. */
export function checkCapAttribute(ctx: CheckContext): CheckResult {
  const held = ownCaps(ctx);
  if (!held) return warn('cap-attribute', `cannot read CapEff from ${ctx.proc}/self/status`);
  const missing = missingCaps(NEEDS.attribute, held);
  if (missing.length) {
    const caps = NEEDS.attribute;
    const lower = caps.map((c) => '+' + c.slice(4).toLowerCase()).join(',');
    return warn('cap-attribute', `missing ${missing.join(', ')}: ct-attribute cannot name other users' processes (their flows get reason no-permission)`,
      `run as root, or grant them: setpriv --inh-caps ${lower} --ambient-caps ${lower} ..., or AmbientCapabilities=${caps.join(' ')}`);
  }
  return pass('cap-attribute', `${NEEDS.attribute.join(', ')} held (ct-attribute)`);
}

function procHidepid(ctx: CheckContext): string | null {
  try {
    for (const line of readFileSync(`${ctx.proc}/self/mountinfo`, 'utf8').split('\n')) {
      const f = line.split(' ');
      const sep = f.indexOf('-');
      if (f[4] !== ctx.proc || sep < 0 || f[sep + 1] !== 'proc') continue;
      const m = /(?:^|,)hidepid=([^,]+)/.exec(f[sep + 3] ?? '');
      if (m && m[1] !== '0' && m[1] !== 'off') return m[1];
    }
  } catch { /* no mountinfo: nothing to say */ }
  return null;
}

/**
 * Can this process list and read other users' /proc/PID/fd, as ct-attribute
 * must? Tried on up to `limit` processes of other users that hold open files.
 */
export function checkProc(ctx: CheckContext, limit = 20): CheckResult {
  let tried = 0, ok = 0;
  let denied: { pid: number; uid: number; code: string } | null = null;
  let entries: string[];
  try {
    entries = readdirSync(ctx.proc);
  } catch (e) {
    return fail('proc', `cannot list ${ctx.proc}: ${(e as NodeJS.ErrnoException).code}`, 'mount procfs: mount -t proc proc /proc');
  }
  for (const name of entries) {
    if (tried >= limit) break;
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    let uid: number;
    try {
      uid = statSync(`${ctx.proc}/${pid}`).uid;
    } catch { continue; }
    if (uid === ctx.euid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`${ctx.proc}/${pid}/fd`);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      if (code === 'ENOENT') continue; // exited meanwhile
      tried++;
      denied ??= { pid, uid, code };
      continue;
    }
    if (!fds.length) continue; // a kernel thread: nothing to read
    tried++;
    try {
      readlinkSync(`${ctx.proc}/${pid}/fd/${fds[0]}`);
      ok++;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      if (code === 'ENOENT') { tried--; continue; }
      denied ??= { pid, uid, code };
    }
  }
  const hide = procHidepid(ctx);
  if (denied) {
    const shown = `pid ${denied.pid}, uid ${denied.uid}: ${denied.code}`;
    // Refused although both capabilities are held: something else (an LSM,
    // a process of an ancestor user namespace) protects that process, and
    // no privilege ctpipe could be given would change it.
    if (!missingCaps(NEEDS.attribute, ownCaps(ctx)).length && ok > 0) {
      return pass('proc', `other users' open files are readable (${ok} of ${tried} processes tried; refused despite ${NEEDS.attribute.join(' and ')}: ${shown}, protected by something else)`);
    }
    return warn('proc', `cannot read other users' open files in ${ctx.proc} (${shown}; ${ok} of ${tried} readable)`,
      `grant ${NEEDS.attribute.join(' and ')} (both: listing /proc/PID/fd and reading its links)`);
  }
  if (!tried) {
    if (hide) return warn('proc', `${ctx.proc} is mounted with hidepid=${hide}: other users' processes are invisible`, `mount -o remount,hidepid=0 ${ctx.proc} (or gid= with a group the service user is in)`);
    return pass('proc', `no process of another user holds open files here; ${ctx.proc} itself is readable`);
  }
  return pass('proc', `other users' open files are readable (${ok} of ${tried} processes tried)`);
}

function version(cmd: string, args: string[]): Promise<{ ok: boolean; text: string; missing: boolean }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 5000 }, (err, stdout, stderr) => {
      const e = err as NodeJS.ErrnoException | null;
      resolve({ ok: !e, text: String(stdout || stderr).trim().split('\n')[0] ?? '', missing: !!e && e.code === 'ENOENT' });
    });
  });
}

/** nft: ct-events --enable-tracking runs it, and the tracking check reads the ruleset with it. */
export async function checkNft(): Promise<CheckResult> {
  const r = await version('nft', ['--version']);
  if (r.missing) return warn('nft', "the 'nft' command is missing: ct-events --enable-tracking cannot switch tracking on, nor can ct-events tell whether it is on", 'apt-get install nftables');
  if (!r.ok) return warn('nft', `nft --version failed: ${r.text}`);
  return pass('nft', r.text);
}

/** What ct-events' DNS observation would meet here: an NFLOG group bound, then its rules checked by nft without applying them. */
export type DnsProbe = () => Promise<void>;

export async function probeDnsNames(): Promise<void> {
  const src = new NflogSource({ group: 5300, tries: 16, onPacket: () => {}, onLost: () => {} });
  try {
    await src.start();
  } finally {
    src.close();
  }
  const r = await new Promise<{ err: NodeJS.ErrnoException | null; stderr: string }>((resolve) => {
    const child = execFile('nft', ['--check', '-f', '-'], { timeout: 5000 }, (err, _o, stderr) => resolve({ err: err as NodeJS.ErrnoException | null, stderr: String(stderr) }));
    child.stdin?.end(dnsRules('ctpipe_dns_check', 5300));
  });
  if (r.err?.code === 'ENOENT') throw new Error("the 'nft' command is missing");
  if (r.err) {
    const why = r.stderr.split('\n').find((l) => /Error|denied|permitted/i.test(l)) ?? r.stderr.trim().split('\n')[0] ?? r.err.message;
    throw new Error(`nft refuses its log rules: ${why.trim()}${/permit|denied/i.test(why) ? ' (needs CAP_NET_ADMIN)' : ''}`);
  }
}

/**
 * dns-names: ct-events observes DNS answers by default (an nftables log
 * rule feeding an NFLOG group) when it can; when it cannot, flows carry no
 * `dns` name. Tried as ct-events would, nothing installed. Optional: WARN.
 */
export async function checkDnsNames(probe: DnsProbe = probeDnsNames): Promise<CheckResult> {
  try {
    await probe();
  } catch (e) {
    const why = (e as Error).message;
    const fix = /CAP_NET_ADMIN/.test(why) ? GRANT_NET_ADMIN : /nft' command/.test(why) ? 'apt-get install nftables' : undefined;
    return warn('dns-names', `ct-events cannot observe DNS answers (${why}): flows will carry no "dns" name`, fix);
  }
  return pass('dns-names', 'ct-events can observe DNS answers (NFLOG group bound, nft accepts its log rules): flows get the name their remote was resolved from');
}

/** ctpipe's native addon (native/): ct-events' socket, namespace lookups, the audit socket (the bpf method's part: checkBpf). */
export async function checkAddon(): Promise<CheckResult> {
  try {
    const { path } = loadAddon();
    return pass('addon', `ctpipe's native addon loads (${/[\\/]prebuilds[\\/]/.test(path) ? 'prebuilt' : 'built from source'}: ${path})`);
  } catch (e) {
    return fail('addon', (e as Error).message, 'npm run native:build (needs build-essential and python3)');
  }
}

/** What loading the bpf method's programs gave: the UDP route and the time taken, or a thrown reason. */
export type BpfProbe = () => { udp: string; attachMs: number };

/** Load ct-attribute's BPF programs as it would, and detach them at once. */
export function probeBpf(): { udp: string; attachMs: number } {
  const h = openSightings({}, () => {});
  const r = { udp: h.udp, attachMs: h.attachMs };
  h.close();
  return r;
}

/**
 * bpf: ct-attribute's BPF programs (native/bpf, loaded through the addon)
 * see local ports at connect and send time, which names the owners of
 * connections closed before any lookup. Tried for real, as ct-attribute
 * would. Optional: WARN when they cannot be used.
 */
export async function checkBpf(ctx: CheckContext, probe: BpfProbe = probeBpf): Promise<CheckResult> {
  const what = "ct-attribute's bpf method (it names the owners of connections closed before any lookup: connect-send-close-exit clients)";
  const caps = ownCaps(ctx);
  const missing = missingCaps(NEEDS.bpf, caps);
  if (missing.length && missingCaps(['CAP_SYS_ADMIN'], caps).length) {
    return warn('bpf', `missing ${missing.join(' and ')}: ${what} is off`, 'grant CAP_BPF and CAP_PERFMON: AmbientCapabilities=CAP_BPF CAP_PERFMON in the unit, or setpriv --inh-caps +bpf,+perfmon --ambient-caps +bpf,+perfmon ..., or run as root');
  }
  let r: { udp: string; attachMs: number };
  try {
    r = probe();
  } catch (e) {
    const m = (e as Error).message;
    // The BPF part of the addon is the only one linked with libbpf: without it, only this method is off.
    if (/libbpf\.so\.1 missing/.test(m)) return warn('bpf', `${what} is off: ${m}`, 'apt-get install libbpf1');
    return warn('bpf', `${what} cannot load its programs: ${m}`);
  }
  const t = `programs loaded and attached in ${r.attachMs.toFixed(0)} ms`;
  if (r.udp === 'none') return warn('bpf', `${t}; this kernel has neither sock:sock_send_length nor raw_syscalls:sys_exit: TCP connects are seen, UDP sends are not`);
  if (r.udp === 'syscall') return pass('bpf', `${t}; no sock:sock_send_length (Linux 6.3 and later): UDP sends are seen at the exit of the send system calls, which slows every system call a little while ct-attribute runs`);
  return pass('bpf', `${t}; TCP connects and UDP sends are seen (${what})`);
}

/**
 * Which of ct-attribute's methods would be live here, run as this user, and
 * for those that would not, why and the fix (what ct-attribute says at
 * start); the process connector is tried for real. Informative: PASS.
 */
export async function checkAttributeMethods(ctx: CheckContext): Promise<CheckResult> {
  const plan = methodPlan({ euid: ctx.euid, caps: ownCaps(ctx), proc: ctx.proc });
  const c = new ProcConnector();
  let why: string | null = null;
  try {
    await c.start(300);
  } catch (e) {
    why = (e as Error).message;
  } finally {
    c.close();
  }
  plan[0] = { ...plan[0], detail: why === null ? 'new processes from the process connector' : `new processes from diffs of the /proc listing (process connector: ${why})` };
  return { check: 'attribute-methods', status: 'pass', detail: describeMethods(plan), methods: plan };
}

/** Every machine check, in order. */
export async function machineChecks(ctx: CheckContext): Promise<CheckResult[]> {
  return [
    await checkCtnetlink(),
    checkEvents(ctx),
    await checkTracking(),
    checkSysctl(ctx, 'acct', 'nf_conntrack_acct', 'packet and byte counters'),
    checkSysctl(ctx, 'timestamp', 'nf_conntrack_timestamp', 'flow start and stop times'),
    checkCapEvents(ctx),
    checkCapAttribute(ctx),
    checkProc(ctx),
    await checkNft(),
    await checkDnsNames(),
    await checkAddon(),
    await checkBpf(ctx),
    await checkAttributeMethods(ctx),
  ];
}
