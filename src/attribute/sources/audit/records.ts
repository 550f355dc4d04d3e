// Audit record text into events. A record is
// `audit(SECONDS.MILLIS:SERIAL): key=value ...`; the records of one syscall
// share the stamp and serial and end with an EOE record (kernel/auditsc.c,
// audit_log_exit). Values are bare tokens, "quoted" strings, or, for
// untrusted strings holding spaces, quotes or control bytes, upper-case hex
// of the bytes (audit_log_n_untrustedstring). SOCKADDR carries the raw
// struct sockaddr as hex, PROCTITLE the command line (NUL-separated, cut at
// 128 bytes), EXECVE the arguments of an execve. Pure functions and a
// bounded grouping buffer; no sockets, no /proc.
import { endianness } from 'node:os';
import { ipText } from '../../../ip.js';
import type { ProcessInfo } from '../../../event.js';
import { AUDIT_SYSCALL, AUDIT_SOCKADDR, AUDIT_EOE, AUDIT_PROCTITLE, AUDIT_EXECVE } from '../../../netlink/audit.js';
import { netCallOf } from './syscalls.js';

const LE = endianness() === 'LE';
export const AUDIT_SOCKETCALL = 1304;
/** MAX_PROCTITLE_AUDIT_LEN (kernel/auditsc.c): a PROCTITLE this long may have been cut. */
export const PROCTITLE_MAX = 128;
const UNSET_ID = 4294967295;

export interface RecordHead {
  /** Stamp of the syscall's entry, ms since the epoch (a coarse clock: one tick of CONFIG_HZ). */
  time: number;
  serial: number;
  /** Where the fields start in the text. */
  body: number;
}

export class RecordError extends Error {}

const HEAD = /^audit\((\d+)\.(\d{3}):(\d+)\): ?/;

export function parseHead(text: string): RecordHead {
  const m = HEAD.exec(text);
  if (!m) throw new RecordError(`not an audit record: ${JSON.stringify(text.slice(0, 40))}`);
  return { time: Number(m[1]) * 1000 + Number(m[2]), serial: Number(m[3]), body: m[0].length };
}

/**
 * The key=value fields of a record body, in order. Quoted values keep their
 * text without the quotes; a value of (null) is null. Text that is not
 * key=value (seen in some records) is skipped.
 */
export function parseFields(text: string, start = 0): Map<string, string | null> {
  const out = new Map<string, string | null>();
  const n = text.length;
  let i = start;
  while (i < n) {
    while (i < n && text.charCodeAt(i) === 32) i++;
    if (i >= n) break;
    const eq = text.indexOf('=', i);
    const sp = text.indexOf(' ', i);
    if (eq < 0 || (sp >= 0 && sp < eq)) {
      // A word without "=": skip it.
      i = sp < 0 ? n : sp + 1;
      continue;
    }
    const key = text.slice(i, eq);
    let j = eq + 1;
    let value: string | null;
    const q = text[j];
    if (q === '"' || q === "'") {
      const close = text.indexOf(q, j + 1);
      const end = close < 0 ? n : close;
      value = text.slice(j + 1, end);
      j = close < 0 ? n : close + 1;
    } else {
      const end = text.indexOf(' ', j);
      value = text.slice(j, end < 0 ? n : end);
      j = end < 0 ? n : end;
      if (value === '(null)' || value === '(none)') value = null;
    }
    if (!out.has(key)) out.set(key, value);
    i = j;
  }
  return out;
}

const HEX = /^(?:[0-9A-F]{2})+$/;

/**
 * An untrusted string field: quoted text as it is, hex as the bytes it
 * encodes. `wasQuoted` must be known by the caller: parseFields drops the
 * quotes, so it is decided here from the raw text instead.
 */
export function untrusted(raw: string | null | undefined, quoted: boolean): Buffer | null {
  if (raw === null || raw === undefined) return null;
  if (quoted || !HEX.test(raw)) return Buffer.from(raw, 'latin1');
  return Buffer.from(raw, 'hex');
}

/** Field values with whether each was quoted (untrusted strings need it). */
function quotedKeys(text: string, start: number): Set<string> {
  const s = new Set<string>();
  const re = /(?:^| )([A-Za-z0-9_\[\]-]+)="/g;
  re.lastIndex = start > 0 ? start - 1 : 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) s.add(m[1]);
  return s;
}

export interface SockAddr {
  family: 'ipv4' | 'ipv6';
  addr: string;
  port: number;
  /** AF_INET6 with an IPv4-mapped address, shown here as plain IPv4 (as conntrack shows the flow). */
  mapped?: boolean;
}

/** struct sockaddr_in / sockaddr_in6 from SOCKADDR's hex; null for other families or short data. */
export function decodeSockaddr(hex: string): SockAddr | null {
  if (!HEX.test(hex)) return null;
  const b = Buffer.from(hex, 'hex');
  if (b.length < 2) return null;
  const fam = LE ? b.readUInt16LE(0) : b.readUInt16BE(0);
  if (fam === 2 && b.length >= 8) return { family: 'ipv4', port: b.readUInt16BE(2), addr: ipText(b, 4, 4) };
  if (fam === 10 && b.length >= 24) {
    const port = b.readUInt16BE(2);
    const isMapped = b.readUInt32BE(8) === 0 && b.readUInt32BE(12) === 0 && b.readUInt32BE(16) === 0xffff;
    if (isMapped) return { family: 'ipv4', port, addr: ipText(b, 20, 4), mapped: true };
    return { family: 'ipv6', port, addr: ipText(b, 8, 16) };
  }
  return null;
}

/** PROCTITLE bytes into argv (NUL-separated); `cut` when the kernel may have truncated it. */
export function decodeProctitle(bytes: Buffer): { argv: string[]; cut: boolean } {
  const cut = bytes.length >= PROCTITLE_MAX;
  let t = bytes.toString('utf8');
  if (t.endsWith('\0')) t = t.slice(0, -1);
  return { argv: t.split('\0'), cut };
}

/** One syscall as its records tell it. */
export interface AuditEvent {
  serial: number;
  /** Syscall entry, ms since the epoch (coarse). */
  time: number;
  arch: number;
  syscall: number;
  /** The network call (socketcall resolved), or null for other syscalls. */
  call: 'connect' | 'sendto' | 'sendmsg' | 'sendmmsg' | null;
  success: boolean;
  exit: number;
  /** The socket's descriptor (a0, or the SOCKETCALL record's a0). */
  fd: number | null;
  /** The third and fourth arguments (flags of sendmsg and sendto), NaN when unknown. */
  a2: number;
  a3: number;
  pid: number;
  ppid: number;
  uid: number;
  gid: number;
  euid: number;
  egid: number;
  fsuid: number;
  /** Login uid, or null when unset. */
  auid: number | null;
  comm: string | null;
  exe: string | null;
  keys: string[];
  /** The address from SOCKADDR, when it is an IPv4 or IPv6 one. */
  addr: SockAddr | null;
  /** From PROCTITLE (or EXECVE when present). */
  cmdline: string[] | null;
  cmdlineCut: boolean;
  /** The live process's details from /proc, when the reader could verify them (set by AuditSource). */
  proc?: ProcessInfo;
}

function num(v: string | null | undefined, radix = 10): number {
  if (v === null || v === undefined || v === '') return NaN;
  return radix === 16 ? parseInt(v, 16) : Number(v);
}

/** Partial state of one serial while its records arrive. */
interface Partial {
  time: number;
  serial: number;
  first: number;
  syscall?: Map<string, string | null>;
  quoted?: Set<string>;
  sockaddr?: string | null;
  scArg0?: number;
  scArgs?: number[];
  proctitle?: Buffer | null;
  execve?: Map<string, string | null>;
  execveQuoted?: Set<string>;
}

/** EXECVE's arguments, including ones split into a<i>[<j>] pieces (a<i>_len=). */
export function decodeExecve(f: Map<string, string | null>, quoted: Set<string>): string[] {
  const argc = num(f.get('argc'));
  const out: string[] = [];
  if (!Number.isInteger(argc) || argc < 0) return out;
  for (let i = 0; i < argc; i++) {
    if (f.has(`a${i}`)) {
      out.push(untrusted(f.get(`a${i}`), quoted.has(`a${i}`))?.toString('utf8') ?? '');
      continue;
    }
    let s = '';
    for (let j = 0; f.has(`a${i}[${j}]`); j++) s += untrusted(f.get(`a${i}[${j}]`), quoted.has(`a${i}[${j}]`))?.toString('utf8') ?? '';
    out.push(s);
  }
  return out;
}

function idOf(v: string | null | undefined): number {
  const n = num(v);
  return Number.isFinite(n) ? n : -1;
}

function finish(p: Partial): AuditEvent | null {
  const f = p.syscall;
  if (!f) return null;
  const arch = num(f.get('arch'), 16);
  const syscall = num(f.get('syscall'));
  const a0raw = f.get('a0');
  const a0 = a0raw && a0raw.length <= 13 ? num(a0raw, 16) : NaN;
  const call = netCallOf(arch, syscall, Number.isFinite(a0) ? a0 : undefined);
  const isSocketcall = call !== null && (arch === 0x40000003 && syscall === 102);
  const fd = isSocketcall ? p.scArg0 ?? null : Number.isFinite(a0) ? a0 : null;
  // Through socketcall(2) the arguments are in the SOCKETCALL record.
  const a2 = isSocketcall ? p.scArgs?.[2] ?? NaN : num(f.get('a2'), 16);
  const a3 = isSocketcall ? p.scArgs?.[3] ?? NaN : num(f.get('a3'), 16);
  const quoted = p.quoted ?? new Set<string>();
  const auid = idOf(f.get('auid'));
  const keyRaw = untrusted(f.get('key'), quoted.has('key'));
  let cmdline: string[] | null = null;
  let cut = false;
  if (p.execve) cmdline = decodeExecve(p.execve, p.execveQuoted ?? new Set());
  else if (p.proctitle) ({ argv: cmdline, cut } = decodeProctitle(p.proctitle));
  return {
    serial: p.serial,
    time: p.time,
    arch,
    syscall,
    call,
    success: f.get('success') === 'yes',
    exit: num(f.get('exit')),
    fd,
    a2,
    a3,
    pid: idOf(f.get('pid')),
    ppid: idOf(f.get('ppid')),
    uid: idOf(f.get('uid')),
    gid: idOf(f.get('gid')),
    euid: idOf(f.get('euid')),
    egid: idOf(f.get('egid')),
    fsuid: idOf(f.get('fsuid')),
    auid: auid === UNSET_ID || auid < 0 ? null : auid,
    comm: untrusted(f.get('comm'), quoted.has('comm'))?.toString('utf8') ?? null,
    exe: untrusted(f.get('exe'), quoted.has('exe'))?.toString('utf8') ?? null,
    keys: keyRaw ? keyRaw.toString('utf8').split('\x01') : [],
    addr: p.sockaddr ? decodeSockaddr(p.sockaddr) : null,
    cmdline,
    cmdlineCut: cut,
  };
}

export interface AssemblerStats {
  records: number;
  events: number;
  /** Records that were not audit records at all. */
  malformed: number;
  /** Serials flushed without their EOE (it was lost, or never sent). */
  incomplete: number;
}

/**
 * Groups records by serial into events. A group ends at its EOE; groups
 * whose EOE does not come within `maxAgeMs` (lost records) are finished
 * as they are by sweep(). At most `maxOpen` groups are held.
 */
export class Assembler {
  private open = new Map<number, Partial>();
  readonly stats: AssemblerStats = { records: 0, events: 0, malformed: 0, incomplete: 0 };

  constructor(private onEvent: (e: AuditEvent) => void, private maxAgeMs = 1000, private maxOpen = 4096) {}

  /** Add one record (type and text as received); `now` in ms. */
  add(type: number, text: string, now = Date.now()): void {
    this.stats.records++;
    let h: RecordHead;
    try {
      h = parseHead(text);
    } catch {
      this.stats.malformed++;
      return;
    }
    let p = this.open.get(h.serial);
    if (type === AUDIT_EOE) {
      if (p) {
        this.open.delete(h.serial);
        this.emit(p);
      }
      return;
    }
    if (type !== AUDIT_SYSCALL && type !== AUDIT_SOCKADDR && type !== AUDIT_PROCTITLE && type !== AUDIT_EXECVE && type !== AUDIT_SOCKETCALL) {
      // Records of no interest still open their serial, so that its EOE
      // closes it quietly; a record without EOE ages out in sweep().
      if (!p) this.track(h, now);
      return;
    }
    if (!p) p = this.track(h, now);
    switch (type) {
      case AUDIT_SYSCALL:
        p.syscall = parseFields(text, h.body);
        p.quoted = quotedKeys(text, h.body);
        break;
      case AUDIT_SOCKADDR:
        p.sockaddr = parseFields(text, h.body).get('saddr') ?? null;
        break;
      case AUDIT_SOCKETCALL: {
        const f = parseFields(text, h.body);
        p.scArgs = [0, 1, 2, 3].map((i) => num(f.get(`a${i}`), 16));
        p.scArg0 = p.scArgs[0];
        break;
      }
      case AUDIT_PROCTITLE: {
        const f = parseFields(text, h.body);
        p.proctitle = untrusted(f.get('proctitle'), quotedKeys(text, h.body).has('proctitle'));
        break;
      }
      case AUDIT_EXECVE: {
        // Long argument lists come as several EXECVE records; merge them.
        const f = parseFields(text, h.body);
        const q = quotedKeys(text, h.body);
        if (!p.execve) { p.execve = f; p.execveQuoted = q; } else {
          for (const [k, v] of f) if (!p.execve.has(k)) p.execve.set(k, v);
          for (const k of q) p.execveQuoted!.add(k);
        }
        break;
      }
    }
  }

  private track(h: RecordHead, now: number): Partial {
    if (this.open.size >= this.maxOpen) this.sweep(Infinity);
    const p: Partial = { time: h.time, serial: h.serial, first: now };
    this.open.set(h.serial, p);
    return p;
  }

  private emit(p: Partial): void {
    const e = finish(p);
    if (e) {
      this.stats.events++;
      this.onEvent(e);
    }
  }

  /** Finish groups older than `maxAgeMs` (all of them with Infinity). */
  sweep(now = Date.now()): void {
    for (const [serial, p] of this.open) {
      if (now !== Infinity && now - p.first < this.maxAgeMs) continue;
      this.open.delete(serial);
      if (p.syscall) this.stats.incomplete++;
      this.emit(p);
    }
  }

  get pending(): number {
    return this.open.size;
  }
}
