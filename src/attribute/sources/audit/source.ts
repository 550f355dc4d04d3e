// The audit side of ct-attribute: reads records from the kernel, groups them
// into syscalls, keeps the network calls for the correlator, and watches
// for lost records. On request it adds ct-attribute's rules (key
// ctpipe-PID) and switches auditing on, and on close() undoes exactly
// that: its own rules go (nobody else's are touched or reordered), the
// enabled flag returns to what it was (unless another live ct-attribute
// still has rules in place), and the daemon registration, when it took
// one, is released. Library code: the caller passes pid, arch and what to
// say on stderr.
import { existsSync } from 'node:fs';
import { nowTs, type OverrunRecord } from '../../../event.js';
import {
  AuditSocket, AuditRelay, AuditError, initialNetns, AUDIT_STATUS_ENABLED, AUDIT_STATUS_PID, AUDIT_STATUS_BACKLOG_LIMIT, AUDIT_EOE,
  type AuditRule, type AuditStatus,
} from '../../../netlink/audit.js';
import { Assembler, type AuditEvent } from './records.js';
import { Correlator } from './correlator.js';
import { buildRules, ruleKey, ruleText, ctpipeRules, rulesCatchConnect } from './rules.js';
import { abisOf } from './syscalls.js';
import type { ProcessReader } from '../../../proc/process.js';

/** The audit queue length of auditd's stock rules (-b 8192), set for a run that adds records (see raiseBacklog). */
export const BACKLOG_LIMIT = 8192;

export interface AuditSourceOptions {
  /** Add ct-attribute's rules for the run. */
  rules?: boolean;
  /** Register as the audit daemon when none is (records by unicast, none to the kernel log). */
  daemon?: boolean;
  /** Correlation window (ms). */
  windowMs?: number;
  /** This process: its pid (rule key, daemon registration) and node's process.arch. */
  pid: number;
  arch: string;
  /** Receive buffer for records. */
  rcvbuf?: number;
  proc?: string;
  /** Process details of live pids (shared with the other methods). */
  procs?: ProcessReader;
  onWarning?: (message: string) => void;
  /** How often lost records are looked for (ms). */
  pollMs?: number;
  host?: string;
}

export interface AuditSourceStats {
  mode: 'multicast' | 'relay' | 'daemon' | 'none';
  records: number;
  events: number;
  lost: number;
  rulesAdded: number;
}

const DEFAULT_RCVBUF = 16 << 20;
/** How long a serial in flight holds decisions back before it is given up (ms). */
const GAP_MS = 30;

function describe(e: unknown, what: string): AuditError {
  const err = e as AuditError;
  const n = err.errno;
  if (n === 1 || n === 13) return new AuditError(`${what}: permission denied (needs CAP_AUDIT_CONTROL; reading records needs CAP_AUDIT_READ)`, n);
  if (n === 111) return new AuditError(`${what}: refused: the kernel accepts audit control only from the initial user and pid namespaces`, n);
  return new AuditError(`${what}: ${err.message}`, n);
}

export class AuditSource {
  readonly correlator: Correlator;
  readonly assembler: Assembler;
  private ctl: AuditSocket | null = null;
  private reader: AuditSocket | null = null;
  private relay: AuditRelay | null = null;
  private added: AuditRule[] = [];
  private enabledBefore: number | null = null;
  /** The kernel's audit queue length before this run raised it (see raiseBacklog), or null. */
  private backlogBefore: number | null = null;
  private registered = false;
  private timer: NodeJS.Timeout | null = null;
  private lostBase: number | null = null;
  private dropsBase = 0;
  private overruns: OverrunRecord[] = [];
  private closed = false;
  private canControl = true;
  private readonly procs: ProcessReader | undefined;
  readonly stats: AuditSourceStats = { mode: 'none', records: 0, events: 0, lost: 0, rulesAdded: 0 };

  constructor(private opts: AuditSourceOptions) {
    this.correlator = new Correlator({ windowMs: opts.windowMs, incomplete: (serial) => this.incomplete(serial) });
    this.procs = opts.procs;
    this.assembler = new Assembler((e) => this.onEvent(e));
  }

  private warn(m: string): void {
    this.opts.onWarning?.(m);
  }

  private onEvent(e: AuditEvent): void {
    this.stats.events++;
    if (!e.call || !e.addr) return;
    const procs = this.procs;
    // While the process lives, /proc has what records lack (cgroup, the
    // whole command line, start time); a pid now held by a newer process
    // (started after the call) or running another program is not it.
    if (procs && existsSync(`${this.opts.proc ?? '/proc'}/${e.pid}`)) {
      const info = procs.get(e.pid);
      if (info && info.exe === e.exe && (!info.start_time || Date.parse(info.start_time) <= e.time + 1000)) e.proc = info;
    }
    this.correlator.add(e);
  }

  private onRecord(type: number, text: string): void {
    this.stats.records++;
    this.track(type, text);
    this.assembler.add(type, text);
  }

  /**
   * Serials in flight: skipped over by a later one, or begun and not yet
   * ended by their EOE. Given up on after GAP_MS (records that never come:
   * dropped by the rate limit, or kinds that have no EOE).
   */
  private inFlight = new Map<number, number>();
  private highSerial = 0;

  private track(type: number, text: string): void {
    const m = /^audit\(\d+\.\d+:(\d+)\)/.exec(text);
    if (!m) return;
    const s = Number(m[1]);
    const now = Date.now();
    if (s > this.highSerial) {
      if (this.highSerial && s - this.highSerial <= 1000) for (let g = this.highSerial + 1; g < s; g++) this.inFlight.set(g, now);
      this.highSerial = s;
      if (type !== AUDIT_EOE) this.inFlight.set(s, now);
    }
    if (type === AUDIT_EOE) {
      this.inFlight.delete(s);
      if (this.correlator.waiting) this.correlator.kick();
    }
    if (this.inFlight.size > 4096) this.ageInFlight(now, true);
  }

  private ageInFlight(now: number, all = false): void {
    for (const [s, t] of this.inFlight) if (all || now - t >= GAP_MS) this.inFlight.delete(s);
  }

  private incomplete(serial: number): boolean {
    const now = Date.now();
    for (const [s, t] of this.inFlight) {
      if (now - t >= GAP_MS) { this.inFlight.delete(s); continue; }
      if (s <= serial) return true;
    }
    return false;
  }

  /** Connect, add rules, switch auditing on as asked; throws AuditError with the remedy. */
  async start(): Promise<void> {
    const o = this.opts;
    this.ctl = new AuditSocket();
    this.ctl.on('error', (e: Error) => this.warn(e.message));
    let status: AuditStatus | null = null;
    try {
      status = await this.ctl.status();
    } catch (e) {
      if (o.rules || o.daemon) throw describe(e, 'reading the audit status');
      this.canControl = false;
      this.warn(`${describe(e, 'reading the audit status').message}: lost records are not counted and the rules are not checked`);
    }
    if (status && status.enabled === 2 && o.rules) {
      throw new AuditError('the audit configuration is locked (enabled=2, auditctl -e 2): rules cannot be added until reboot; run without --audit-rules to use the rules in place');
    }
    if (status) this.lostBase = status.lost;

    await this.openReader(status);

    const abis = abisOf(o.arch);
    if (o.rules) {
      if (!abis) throw new AuditError(`no syscall table for this architecture (${o.arch}): --audit-rules cannot build its rules`);
      await this.addRules(abis);
    } else if (this.canControl && abis) {
      try {
        const rules = await this.ctl.listRules();
        if (!rulesCatchConnect(rules, abis[0])) this.warn('no audit rule reports connect(2) calls, so audit will attribute nothing (add --audit-rules, or a rule such as: auditctl -a always,exit -F arch=b64 -S connect,sendto,sendmsg,sendmmsg -F success=1)');
      } catch (e) {
        this.warn(describe(e, 'listing the audit rules').message);
      }
    }

    if (status && status.enabled === 0) {
      try {
        await this.ctl.setStatus({ mask: AUDIT_STATUS_ENABLED, enabled: 1 });
        this.enabledBefore = 0;
        this.warn('auditing was off: switched on for this run (it is switched off again at exit)');
      } catch (e) {
        throw describe(e, 'switching auditing on');
      }
    }
    if (status && (o.rules || this.registered)) await this.raiseBacklog(status.backlog_limit);
    this.timer = setInterval(() => this.poll(), o.pollMs ?? 500);
    this.timer.unref();
  }

  /**
   * The kernel queues records for its audit thread; past `backlog_limit`
   * (64 unless someone set it) every process making an audited call waits,
   * up to `backlog_wait_time` (60 s). Linux checks the queue and then goes
   * to sleep without checking again, so a wake-up that comes in between is
   * missed and the process sleeps the whole 60 s although the queue has long
   * been emptied (seen here: a connect loop asleep in audit_log_start for
   * 60 s with the queue at 0, under load). With rules of ours adding records,
   * or as the daemon, the queue is made as long as auditd's stock rules make
   * it (-b 8192) for the run, so that bursts fit, and restored at exit.
   */
  private async raiseBacklog(limit: number): Promise<void> {
    if (limit === 0 || limit >= BACKLOG_LIMIT) return; // 0: no limit
    try {
      await this.ctl!.setStatus({ mask: AUDIT_STATUS_BACKLOG_LIMIT, backlog_limit: BACKLOG_LIMIT });
      this.backlogBefore = limit;
      this.warn(`the kernel's audit queue (backlog_limit) was ${limit} records: set to ${BACKLOG_LIMIT} for this run, so that bursts of audited calls do not make processes wait (it is set back at exit)`);
    } catch (e) {
      this.warn(describe(e, 'lengthening the audit queue (backlog_limit)').message);
    }
  }

  private async openReader(status: AuditStatus | null): Promise<void> {
    const o = this.opts;
    const rcvbuf = o.rcvbuf ?? DEFAULT_RCVBUF;
    if (o.daemon && status) {
      if (status.pid === 0) {
        const r = new AuditSocket();
        r.on('error', (e: Error) => this.warn(e.message));
        r.on('record', (t: number, x: string) => this.onRecord(t, x));
        for (const m of r.tune(rcvbuf)) this.warn(`audit socket: ${m}`);
        this.reader = r;
        try {
          await r.setStatus({ mask: AUDIT_STATUS_PID, pid: o.pid });
        } catch (e) {
          r.close();
          this.reader = null;
          if ((e as AuditError).errno !== 17) throw describe(e, 'registering as the audit daemon');
          this.warn('an audit daemon registered meanwhile: reading the multicast copy instead');
          return this.openReader({ ...status, pid: -1 });
        }
        r.startReading();
        this.registered = true;
        this.stats.mode = 'daemon';
        return;
      }
      this.warn(`an audit daemon is registered (pid ${status.pid}): --audit-daemon steps back and reads the multicast copy`);
    } else if (status && status.pid === 0) {
      this.warn('no audit daemon is registered: the kernel also writes each audit record to its own log, rate-limited (see ct-attribute(1); --audit-daemon avoids it)');
    }
    const initNs = initialNetns(o.proc);
    if (initNs === undefined) this.warn('cannot tell whether this is the initial network namespace (pid 1 unreadable): assuming it is; audit records reach only that one');
    if (!initNs) {
      const r = new AuditSocket();
      r.on('error', (e: Error) => this.warn(e.message));
      r.on('record', (t: number, x: string) => this.onRecord(t, x));
      for (const m of r.tune(rcvbuf)) this.warn(`audit socket: ${m}`);
      r.joinReadlog();
      this.reader = r;
      this.stats.mode = 'multicast';
      return;
    }
    // Multicast audit records reach only the initial network namespace.
    const relay = new AuditRelay(rcvbuf, initNs);
    this.relay = relay;
    relay.on('record', (t: number, x: string) => this.onRecord(t, x));
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new AuditError('the audit relay did not start within 5 s')), 5000);
      relay.once('ready', () => { clearTimeout(t); resolve(); });
      relay.once('error', (e: Error) => { clearTimeout(t); reject(e); });
    }).catch((e) => {
      relay.close();
      this.relay = null;
      throw e;
    });
    relay.on('error', (e: Error) => this.warn(e.message));
    this.stats.mode = 'relay';
  }

  private async addRules(abis: NonNullable<ReturnType<typeof abisOf>>): Promise<void> {
    const ctl = this.ctl!;
    const o = this.opts;
    let existing: AuditRule[] = [];
    try {
      existing = await ctl.listRules();
    } catch (e) {
      throw describe(e, 'listing the audit rules');
    }
    // Rules of a ct-attribute that died without cleaning up (SIGKILL, a
    // crash): keyed with its pid, which no longer exists.
    const stale = ctpipeRules(existing).filter((r) => r.pid !== o.pid && !existsSync(`${o.proc ?? '/proc'}/${r.pid}`));
    for (const s of stale) {
      try {
        await ctl.deleteRule(s.rule);
        this.warn(`removed a rule left behind by ct-attribute pid ${s.pid}, which is gone: ${ruleText(s.rule)}`);
      } catch (e) {
        this.warn(describe(e, `removing a stale rule (${ruleText(s.rule)})`).message);
      }
    }
    const key = ruleKey(o.pid);
    let rules = buildRules(abis, { key });
    for (let i = 0; i < rules.length; i++) {
      try {
        await ctl.addRule(rules[i]);
        this.added.push(rules[i]);
      } catch (e) {
        const n = (e as AuditError).errno;
        if (n === 17) continue; // the very same rule exists already (not ours to remove)
        if (n === 22 && i === 0 && !this.added.length) {
          // Kernels before 5.9 know no saddr_fam.
          this.warn('the kernel cannot filter audit rules by address family (saddr_fam, Linux 5.9): every successful connect, sendto and sendmsg is audited, AF_UNIX ones included');
          rules = buildRules(abis, { key, saddrFam: false });
          i = -1;
          continue;
        }
        await this.removeRules();
        throw describe(e, `adding the audit rule ${ruleText(rules[i])}`);
      }
    }
    this.stats.rulesAdded = this.added.length;
  }

  private async removeRules(): Promise<void> {
    const ctl = this.ctl;
    if (!ctl) return;
    for (const r of this.added.splice(0).reverse()) {
      try {
        await ctl.deleteRule(r);
      } catch (e) {
        if ((e as AuditError).errno !== 2) this.warn(describe(e, `removing the audit rule ${ruleText(r)}`).message);
      }
    }
  }

  /** Lost records: the kernel's counter (backlog, rate limit) and our socket's drops. */
  private poll(): void {
    this.ageInFlight(Date.now());
    this.assembler.sweep();
    this.correlator.prune();
    const drops = this.reader ? this.reader.drops() : this.relay ? this.relay.drops() : null;
    if (drops !== null && drops > this.dropsBase) {
      this.lose(drops - this.dropsBase, 'audit-enobufs');
      this.dropsBase = drops;
    }
    if (this.canControl && this.ctl && this.lostBase !== null) {
      this.ctl.status().then((s) => {
        if (this.lostBase === null) return;
        // auditctl --reset-lost sets it back to 0.
        const n = s.lost >= this.lostBase ? s.lost - this.lostBase : s.lost;
        this.lostBase = s.lost;
        if (n > 0) this.lose(n, 'audit-lost');
      }, () => { /* asked again at the next poll */ });
    }
  }

  private lose(n: number, reason: string): void {
    this.stats.lost += n;
    this.overruns.push({ ts: nowTs(), event: 'overrun', lost: n, reason, ...(this.opts.host !== undefined ? { host: this.opts.host } : {}) });
    const what = reason === 'audit-lost'
      ? 'the kernel\'s audit lost counter rose (backlog or rate limit; records of all audit readers)'
      : 'the audit socket overflowed';
    this.warn(`lost ${n} audit record${n === 1 ? '' : 's'}: ${what}; flows of that moment may be unattributed`);
  }

  /** Overrun records for the stream since the last call. */
  takeOverruns(): OverrunRecord[] {
    return this.overruns.length ? this.overruns.splice(0) : [];
  }

  /** Undo what start() did. Safe to call more than once. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.correlator.close();
    const ctl = this.ctl;
    try {
      // Another ct-attribute still running with its rules needs auditing on, and the longer queue.
      let others = false;
      if (ctl && (this.enabledBefore !== null || this.backlogBefore !== null)) {
        try {
          const rules = await ctl.listRules();
          others = ctpipeRules(rules).some((r) => r.pid !== this.opts.pid && existsSync(`${this.opts.proc ?? '/proc'}/${r.pid}`));
        } catch { /* restore anyway */ }
      }
      if (ctl && this.enabledBefore !== null) {
        if (others) this.warn('auditing left on: another ct-attribute is still using it');
        else {
          try {
            await ctl.setStatus({ mask: AUDIT_STATUS_ENABLED, enabled: this.enabledBefore });
          } catch (e) {
            this.warn(describe(e, 'switching auditing off again').message);
          }
        }
      }
      if (ctl && this.backlogBefore !== null && !others) {
        try {
          // Unless someone has set another length meanwhile.
          if ((await ctl.status()).backlog_limit === BACKLOG_LIMIT) await ctl.setStatus({ mask: AUDIT_STATUS_BACKLOG_LIMIT, backlog_limit: this.backlogBefore });
        } catch (e) {
          this.warn(describe(e, 'setting the audit queue length back').message);
        }
      }
      await this.removeRules();
      if (this.registered && this.reader) {
        try {
          await this.reader.setStatus({ mask: AUDIT_STATUS_PID, pid: 0 });
        } catch (e) {
          this.warn(describe(e, 'releasing the audit daemon registration').message);
        }
      }
    } finally {
      this.reader?.close();
      this.relay?.close();
      ctl?.close();
    }
  }
}
