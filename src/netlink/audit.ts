// NETLINK_AUDIT: the kernel audit subsystem's control messages (status,
// rules) and its records, following include/uapi/linux/audit.h and
// kernel/audit.c. Codec for struct audit_status and struct audit_rule_data
// (pure functions over Buffers), a request/reply client over the addon's
// netlink socket (src/native/netlink.ts: records come at the kernel's pace,
// and an overrun must be counted, not abort the process as the 'netlink'
// package does), and the two ways of receiving records:
// - the read-only multicast group AUDIT_NLGRP_READLOG (CAP_AUDIT_READ),
//   which leaves a running audit daemon untouched. The kernel delivers it
//   only to sockets of the initial network namespace, so from any other
//   namespace the socket is made there by the addon (setns(2) on a thread
//   of its own, CAP_SYS_ADMIN) and read here as any other;
// - the unicast audit-daemon connection (AUDIT_SET pid), taken only when
//   asked for and only when no daemon is registered.
// Record text is decoded in src/attribute/sources/audit/records.ts, not here.
import { endianness } from 'node:os';
import { EventEmitter } from 'node:events';
import { readFileSync, readlinkSync, readdirSync } from 'node:fs';
import { splitMessages, nlError, DecodeError, NLMSG_HDRLEN, NLMSG_ERROR, NLMSG_DONE, NLM_F_REQUEST, NLM_F_ACK } from './conntrack.js';
import { NetlinkSocket, socketInNetns, forEachDatagram, type NetlinkBatch } from '../native/netlink.js';

const LE = endianness() === 'LE';

export const NETLINK_AUDIT = 9;
export const AUDIT_NLGRP_READLOG = 1;
// Message types (audit.h)
export const AUDIT_GET = 1000, AUDIT_SET = 1001, AUDIT_ADD_RULE = 1011, AUDIT_DEL_RULE = 1012, AUDIT_LIST_RULES = 1013;
export const AUDIT_SYSCALL = 1300, AUDIT_PATH = 1302, AUDIT_SOCKADDR = 1306, AUDIT_CWD = 1307, AUDIT_EXECVE = 1309;
export const AUDIT_EOE = 1320, AUDIT_PROCTITLE = 1327, AUDIT_EVENT_LISTENER = 1335;
/** Types from here on are records (events), not control messages. */
export const AUDIT_FIRST_EVENT = 1100;
// audit_status.mask bits
export const AUDIT_STATUS_ENABLED = 0x1, AUDIT_STATUS_FAILURE = 0x2, AUDIT_STATUS_PID = 0x4, AUDIT_STATUS_BACKLOG_LIMIT = 0x10;
// Rule lists, actions, fields, operators
export const AUDIT_FILTER_EXIT = 0x04, AUDIT_ALWAYS = 2, AUDIT_NEVER = 0;
export const AUDIT_ARCH = 11, AUDIT_EXIT = 103, AUDIT_SUCCESS = 104, AUDIT_SADDR_FAM = 113, AUDIT_ARG0 = 200, AUDIT_FILTERKEY = 210;
export const AUDIT_LESS_THAN = 0x10000000, AUDIT_GREATER_THAN = 0x20000000, AUDIT_NOT_EQUAL = 0x30000000, AUDIT_EQUAL = 0x40000000;
export const AUDIT_LESS_THAN_OR_EQUAL = AUDIT_LESS_THAN | AUDIT_EQUAL, AUDIT_GREATER_THAN_OR_EQUAL = AUDIT_GREATER_THAN | AUDIT_EQUAL;
export const AUDIT_BITMASK_SIZE = 64, AUDIT_MAX_FIELDS = 64, AUDIT_MAX_KEY_LEN = 256;

export interface AuditStatus {
  mask: number;
  enabled: number;
  failure: number;
  pid: number;
  rate_limit: number;
  backlog_limit: number;
  lost: number;
  backlog: number;
  feature_bitmap: number;
  backlog_wait_time: number;
  backlog_wait_time_actual: number;
}

const STATUS_FIELDS: (keyof AuditStatus)[] = ['mask', 'enabled', 'failure', 'pid', 'rate_limit', 'backlog_limit', 'lost', 'backlog', 'feature_bitmap', 'backlog_wait_time', 'backlog_wait_time_actual'];

const u32 = (b: Buffer, o: number) => (LE ? b.readUInt32LE(o) : b.readUInt32BE(o));
const w32 = (b: Buffer, v: number, o: number) => (LE ? b.writeUInt32LE(v >>> 0, o) : b.writeUInt32BE(v >>> 0, o));

/** struct audit_status from a reply payload; fields a shorter (older) struct lacks read as 0. */
export function decodeStatus(buf: Buffer, start = 0, end = buf.length): AuditStatus {
  if (end - start < 32) throw new DecodeError(`audit_status of ${end - start} bytes, expected at least 32`);
  const s = {} as AuditStatus;
  STATUS_FIELDS.forEach((k, i) => {
    s[k] = start + 4 * i + 4 <= end ? u32(buf, start + 4 * i) : 0;
  });
  return s;
}

export function encodeStatus(s: Partial<AuditStatus> & { mask: number }): Buffer {
  const b = Buffer.alloc(4 * STATUS_FIELDS.length);
  STATUS_FIELDS.forEach((k, i) => w32(b, s[k] ?? 0, 4 * i));
  return b;
}

export interface RuleField {
  /** AUDIT_ARCH, AUDIT_SUCCESS, ... */
  type: number;
  /** AUDIT_EQUAL, ... */
  op: number;
  /** Integer fields: the value as the kernel compares it (u32; negative numbers as their two's complement). */
  value?: number;
  /** String fields (AUDIT_FILTERKEY, ...). */
  text?: string;
}

export interface AuditRule {
  /** Filter list (AUDIT_FILTER_EXIT). */
  list: number;
  action: number;
  /** Syscall numbers the rule applies to (the bit mask); 'all' for every one. */
  syscalls: number[] | 'all';
  fields: RuleField[];
}

const RULE_SIZE = 4 * (3 + AUDIT_BITMASK_SIZE + 3 * AUDIT_MAX_FIELDS + 1);

/** struct audit_rule_data (with its string buffer) for AUDIT_ADD_RULE / AUDIT_DEL_RULE. */
export function encodeRule(r: AuditRule): Buffer {
  if (r.fields.length > AUDIT_MAX_FIELDS) throw new RangeError(`a rule holds at most ${AUDIT_MAX_FIELDS} fields`);
  const strings = r.fields.filter((f) => f.text !== undefined).map((f) => Buffer.from(f.text!, 'utf8'));
  const buflen = strings.reduce((n, s) => n + s.length, 0);
  const b = Buffer.alloc(RULE_SIZE + buflen);
  w32(b, r.list, 0);
  w32(b, r.action, 4);
  w32(b, r.fields.length, 8);
  const mask = 12;
  if (r.syscalls === 'all') for (let i = 0; i < AUDIT_BITMASK_SIZE; i++) w32(b, 0xffffffff, mask + 4 * i);
  else for (const n of r.syscalls) {
    const word = mask + 4 * Math.floor(n / 32);
    w32(b, (u32(b, word) | (1 << (n % 32))) >>> 0, word);
  }
  const fields = mask + 4 * AUDIT_BITMASK_SIZE;
  const values = fields + 4 * AUDIT_MAX_FIELDS;
  const flags = values + 4 * AUDIT_MAX_FIELDS;
  const buflenAt = flags + 4 * AUDIT_MAX_FIELDS;
  let s = 0;
  let off = RULE_SIZE;
  r.fields.forEach((f, i) => {
    w32(b, f.type, fields + 4 * i);
    w32(b, f.op, flags + 4 * i);
    if (f.text !== undefined) {
      const t = strings[s++];
      w32(b, t.length, values + 4 * i);
      t.copy(b, off);
      off += t.length;
    } else {
      w32(b, (f.value ?? 0) >>> 0, values + 4 * i);
    }
  });
  w32(b, buflen, buflenAt);
  return b;
}

/** Decode a struct audit_rule_data (an AUDIT_LIST_RULES reply). */
export function decodeRule(buf: Buffer, start = 0, end = buf.length): AuditRule {
  if (end - start < RULE_SIZE) throw new DecodeError(`audit_rule_data of ${end - start} bytes, expected at least ${RULE_SIZE}`);
  const list = u32(buf, start);
  const action = u32(buf, start + 4);
  const count = u32(buf, start + 8);
  if (count > AUDIT_MAX_FIELDS) throw new DecodeError(`audit_rule_data with ${count} fields`);
  const mask = start + 12;
  const syscalls: number[] = [];
  let all = true;
  for (let i = 0; i < AUDIT_BITMASK_SIZE; i++) {
    const w = u32(buf, mask + 4 * i);
    if (w !== 0xffffffff) all = false;
    for (let bit = 0; bit < 32; bit++) if (w & (1 << bit)) syscalls.push(32 * i + bit);
  }
  const fields = mask + 4 * AUDIT_BITMASK_SIZE;
  const values = fields + 4 * AUDIT_MAX_FIELDS;
  const flags = values + 4 * AUDIT_MAX_FIELDS;
  const buflen = u32(buf, flags + 4 * AUDIT_MAX_FIELDS);
  if (start + RULE_SIZE + buflen > end) throw new DecodeError(`audit_rule_data string buffer of ${buflen} bytes runs past the end`);
  let off = start + RULE_SIZE;
  const out: RuleField[] = [];
  for (let i = 0; i < count; i++) {
    const type = u32(buf, fields + 4 * i);
    const op = u32(buf, flags + 4 * i);
    const value = u32(buf, values + 4 * i);
    if (isStringField(type)) {
      if (off + value > start + RULE_SIZE + buflen) throw new DecodeError(`string field ${type} of ${value} bytes runs past the buffer`);
      out.push({ type, op, text: buf.toString('utf8', off, off + value) });
      off += value;
    } else out.push({ type, op, value });
  }
  return { list, action, syscalls: all ? 'all' : syscalls, fields: out };
}

// Fields whose value is a string in buf (kernel/auditfilter.c,
// audit_data_to_entry): SUBJ_USER..SUBJ_CLR (13-17), OBJ_USER..OBJ_LEV_HIGH
// (19-23), WATCH (105), DIR (107), EXE (112), FILTERKEY (210).
function isStringField(type: number): boolean {
  return (type >= 13 && type <= 17) || (type >= 19 && type <= 23) || type === 105 || type === 107 || type === 112 || type === AUDIT_FILTERKEY;
}

/** Two rules are the same rule for the kernel when every part matches (kernel/auditfilter.c, audit_compare_rule). */
export function sameRule(a: AuditRule, b: AuditRule): boolean {
  if (a.list !== b.list || a.action !== b.action || a.fields.length !== b.fields.length) return false;
  const sa = a.syscalls === 'all' ? 'all' : [...a.syscalls].sort((x, y) => x - y).join(',');
  const sb = b.syscalls === 'all' ? 'all' : [...b.syscalls].sort((x, y) => x - y).join(',');
  if (sa !== sb) return false;
  return a.fields.every((f, i) => {
    const g = b.fields[i];
    return f.type === g.type && f.op === g.op && (f.text !== undefined ? f.text === g.text : (f.value ?? 0) >>> 0 === (g.value ?? 0) >>> 0);
  });
}

/** The filter keys of a rule (a rule has at most one key field; auditctl joins several keys with \x01). */
export function ruleKeys(r: AuditRule): string[] {
  const f = r.fields.find((x) => x.type === AUDIT_FILTERKEY);
  return f && f.text ? f.text.split('\x01') : [];
}

export function buildAuditMessage(type: number, flags: number, seq: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const len = NLMSG_HDRLEN + payload.length;
  const b = Buffer.alloc((len + 3) & ~3);
  w32(b, len, 0);
  if (LE) { b.writeUInt16LE(type, 4); b.writeUInt16LE(flags, 6); } else { b.writeUInt16BE(type, 4); b.writeUInt16BE(flags, 6); }
  w32(b, seq, 8);
  w32(b, 0, 12);
  payload.copy(b, NLMSG_HDRLEN);
  return b;
}

/**
 * The record in one datagram from the audit subsystem: its type and text.
 * kauditd sends one record per datagram. On the unicast (daemon) path the
 * kernel sets nlmsg_len to the payload length only (a quirk auditd relies
 * on; the multicast copy is corrected), so the text runs to the end of the
 * datagram, whatever nlmsg_len says. Returns null for non-record messages.
 */
export function recordOf(buf: Buffer): { type: number; text: string } | null {
  if (buf.length < NLMSG_HDRLEN) throw new DecodeError(`audit datagram of ${buf.length} bytes`);
  const type = LE ? buf.readUInt16LE(4) : buf.readUInt16BE(4);
  if (type < AUDIT_FIRST_EVENT) return null;
  let end = buf.length;
  while (end > NLMSG_HDRLEN && buf[end - 1] === 0) end--;
  return { type, text: buf.toString('latin1', NLMSG_HDRLEN, end) };
}

export class AuditError extends Error {
  constructor(message: string, public errno?: number) {
    super(message);
  }
}

const ERRNO: Record<number, string> = { 1: 'EPERM', 2: 'ENOENT', 13: 'EACCES', 17: 'EEXIST', 22: 'EINVAL', 111: 'ECONNREFUSED' };
export function errnoName(n: number): string {
  return ERRNO[n] ?? `errno ${n}`;
}

interface Pending {
  type: number;
  multi: boolean;
  replies: Buffer[];
  resolve: (r: Buffer[]) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * One NETLINK_AUDIT socket: requests matched to replies by sequence number,
 * and (when it joins the multicast group or registers as the daemon) the
 * records, emitted as 'record' (type, text). 'error' carries an AuditError.
 */
export class AuditSocket extends EventEmitter {
  private sock: NetlinkSocket;
  private seq = 1;
  private pending = new Map<number, Pending>();
  private closed = false;
  /** sk_drops of this socket when it was tuned. */
  private dropsBase = 0;
  private tuned = false;

  /** `fd`: an audit netlink socket made elsewhere (AuditRelay's, in another namespace). */
  constructor(private timeoutMs = 3000, fd?: number) {
    super();
    try {
      // A record is at most MAX_AUDIT_MESSAGE_LENGTH (8970) bytes and a header.
      this.sock = new NetlinkSocket(NETLINK_AUDIT, { fd, slot: 16384, onBatch: (b) => this.onBatch(b) });
      this.sock.start();
    } catch (e) {
      throw new AuditError(`audit netlink socket: ${(e as Error).message} (is the kernel built with CONFIG_AUDIT?)`);
    }
    this.sock.unref();
  }

  get portid(): number {
    return this.sock.portid;
  }

  private onBatch(b: NetlinkBatch): void {
    forEachDatagram(b.buf, (start, end) => this.onMessage(b.buf.subarray(start, end)));
    // Drops are read from the counter (drops()); an error is worth a line.
    if (b.error) this.emit('error', new AuditError(`audit socket: ${b.error.message}`, b.errno));
  }

  private onMessage(buf: Buffer): void {
    // Replies to our requests carry our sequence number; records carry 0.
    const type = buf.length >= NLMSG_HDRLEN ? (LE ? buf.readUInt16LE(4) : buf.readUInt16BE(4)) : 0;
    if (type >= AUDIT_FIRST_EVENT && type !== AUDIT_LIST_RULES) {
      const r = recordOf(buf);
      if (r) this.emit('record', r.type, r.text);
      return;
    }
    let msgs;
    try {
      msgs = splitMessages(buf);
    } catch {
      return;
    }
    for (const m of msgs) {
      const p = this.pending.get(m.seq);
      if (!p) continue;
      if (m.type === NLMSG_ERROR) {
        const code = nlError(buf, m);
        if (code === 0) {
          if (!p.multi && p.type === 0) this.finish(m.seq, p, null);
          continue;
        }
        this.finish(m.seq, p, new AuditError(errnoName(-code), -code));
      } else if (m.type === NLMSG_DONE) {
        this.finish(m.seq, p, null);
      } else if (m.type === p.type) {
        p.replies.push(Buffer.from(buf.subarray(m.start, m.end)));
        if (!p.multi) this.finish(m.seq, p, null);
      }
    }
  }

  private finish(seq: number, p: Pending, err: Error | null): void {
    clearTimeout(p.timer);
    this.pending.delete(seq);
    if (this.pending.size === 0 && !this.reading) this.sock.unref();
    if (err) p.reject(err); else p.resolve(p.replies);
  }

  /**
   * Send one request. `reply`: the message type of the answer (AUDIT_GET,
   * AUDIT_LIST_RULES), or 0 when only an acknowledgement is expected.
   */
  request(type: number, payload: Buffer, reply = 0, multi = false): Promise<Buffer[]> {
    if (this.closed) return Promise.reject(new AuditError('audit socket closed'));
    const seq = this.seq = (this.seq + 1) >>> 0 || 1;
    // Answers come from a kernel thread after the acknowledgement, so a
    // request that has an answer does not ask for the acknowledgement too.
    const flags = NLM_F_REQUEST | (reply === 0 ? NLM_F_ACK : 0);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        reject(new AuditError('no answer from the audit subsystem'));
      }, this.timeoutMs);
      this.pending.set(seq, { type: reply, multi, replies: [], resolve, reject, timer });
      this.sock.ref();
      try {
        this.sock.send(buildAuditMessage(type, flags, seq, payload));
      } catch (e) {
        const err = e as Error & { code?: string; errno?: number };
        const p = this.pending.get(seq);
        if (p) this.finish(seq, p, new AuditError(err.code ?? err.message, err.errno));
      }
    });
  }

  async status(): Promise<AuditStatus> {
    const r = await this.request(AUDIT_GET, Buffer.alloc(0), AUDIT_GET);
    if (!r.length) throw new AuditError('empty AUDIT_GET answer');
    return decodeStatus(r[0]);
  }

  async setStatus(s: Partial<AuditStatus> & { mask: number }): Promise<void> {
    await this.request(AUDIT_SET, encodeStatus(s));
  }

  async listRules(): Promise<AuditRule[]> {
    const r = await this.request(AUDIT_LIST_RULES, Buffer.alloc(0), AUDIT_LIST_RULES, true);
    return r.map((b) => decodeRule(b));
  }

  async addRule(rule: AuditRule): Promise<void> {
    await this.request(AUDIT_ADD_RULE, encodeRule(rule));
  }

  async deleteRule(rule: AuditRule): Promise<void> {
    await this.request(AUDIT_DEL_RULE, encodeRule(rule));
  }

  private reading = false;

  /** Receive records: join the read-only multicast group (needs CAP_AUDIT_READ). */
  joinReadlog(): void {
    try {
      this.sock.addMembership(AUDIT_NLGRP_READLOG);
    } catch (e) {
      const code = (e as any).code;
      throw new AuditError(code === 'EPERM' || code === 'EACCES'
        ? 'joining the audit multicast group: permission denied (needs CAP_AUDIT_READ)'
        : `joining the audit multicast group: ${(e as Error).message}`, code === 'EPERM' ? 1 : undefined);
    }
    this.startReading();
  }

  /** Records sent to this socket as the registered audit daemon (see AuditSource). */
  startReading(): void {
    this.reading = true;
    this.sock.ref();
  }

  /**
   * A large receive buffer and NETLINK_NO_ENOBUFS (netlink 0.3.0 aborts the
   * process on an ENOBUFS report; losses are read from sk_drops instead).
   * Returns what could not be set.
   */
  tune(rcvbuf: number): string[] {
    const errors = this.sock.setRcvbuf(rcvbuf, rmemMax());
    const e = this.sock.noEnobufs();
    if (e) errors.push(e);
    try {
      this.dropsBase = this.sock.drops();
      this.tuned = true;
    } catch (err) {
      errors.push(`its drop counter: ${(err as Error).message}`);
    }
    return errors;
  }

  /** Records the kernel could not queue to this socket since it was tuned, or null when unknown. */
  drops(): number | null {
    if (!this.tuned || this.closed) return null;
    try {
      return this.sock.drops() - this.dropsBase;
    } catch {
      return null;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const [seq, p] of this.pending) this.finish(seq, p, new AuditError('audit socket closed'));
    this.sock.close();
  }
}

function rmemMax(): number {
  try {
    return Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8').trim()) || 212992;
  } catch {
    return 212992;
  }
}

// include/linux/proc_ns.h: since Linux 6.16 the initial namespaces have
// fixed inode numbers below PROC_DYNAMIC_FIRST (the others are allocated
// from it up), so the initial network namespace is known by its number.
const PROC_NET_INIT_INO = 0xeffffff9;
const PROC_USER_INIT_INO = 0xeffffffd;
const PROC_DYNAMIC_FIRST = 0xf0000000;

function nsInode(path: string): number | null {
  try {
    const m = /\[(\d+)\]$/.exec(readlinkSync(path));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * The ns/net link of a process in the initial network namespace (where
 * audit multicast is delivered): pid 1's, or where pid 1 cannot be read
 * (some sandboxes), another process's found by the fixed inode number.
 * Null when this process is there itself; undefined when it cannot tell.
 */
export function initialNetns(proc = '/proc'): string | null | undefined {
  const mine = nsInode(`${proc}/self/ns/net`);
  if (mine === null || mine === PROC_NET_INIT_INO) return null;
  const one = nsInode(`${proc}/1/ns/net`);
  if (one !== null) return one === mine ? null : `${proc}/1/ns/net`;
  const fixed = nsInode(`${proc}/self/ns/user`) === PROC_USER_INIT_INO || mine < PROC_DYNAMIC_FIRST;
  if (!fixed) return undefined;
  for (const d of readdirSync(proc)) {
    if (!/^\d+$/.test(d)) continue;
    if (nsInode(`${proc}/${d}/ns/net`) === PROC_NET_INIT_INO) return `${proc}/${d}/ns/net`;
  }
  return undefined;
}

/**
 * Audit records read from the initial network namespace (where audit
 * multicast is delivered) by a socket the addon makes there: setns(2) on a
 * thread of its own (CAP_SYS_ADMIN), no helper process.
 * Emits 'record' (type, text), 'ready' once subscribed, 'error' (AuditError).
 */
export class AuditRelay extends EventEmitter {
  private sock: AuditSocket | null = null;
  private stopped = false;

  /** `netns`: the ns/net link of a process in the initial network namespace (initialNetns()). */
  constructor(rcvbuf: number, netns: string) {
    super();
    // Once the caller has its listeners on.
    setImmediate(() => this.open(rcvbuf, netns));
  }

  private open(rcvbuf: number, netns: string): void {
    if (this.stopped) return;
    let fd: number;
    try {
      fd = socketInNetns(netns, 0, NETLINK_AUDIT);
    } catch (e) {
      const err = e as Error & { code?: string };
      const perm = err.code === 'EPERM' || err.code === 'EACCES';
      this.emit('error', new AuditError(`the audit socket in the initial network namespace: ${err.message}${perm ? ' (entering it needs CAP_SYS_ADMIN)' : ''}`));
      return;
    }
    try {
      const s = new AuditSocket(3000, fd);
      this.sock = s;
      s.on('record', (type: number, text: string) => this.emit('record', type, text));
      s.on('error', (e: Error) => this.emit('error', e));
      s.tune(rcvbuf);
      s.joinReadlog();
    } catch (e) {
      this.sock?.close();
      this.sock = null;
      this.emit('error', e instanceof AuditError ? e : new AuditError(`the audit socket in the initial network namespace: ${(e as Error).message}`));
      return;
    }
    this.emit('ready');
  }

  /** The socket's kernel drop counter since it was tuned, or null. */
  drops(): number | null {
    return this.sock ? this.sock.drops() : null;
  }

  close(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.sock?.close();
    this.sock = null;
  }
}
