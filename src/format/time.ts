// Timestamps for people and for other tools' parsers: turns an event's ISO
// 8601 `ts` (UTC, microseconds, see ct-event(5)) into `iso`, epoch seconds or
// a strftime-style pattern, in UTC, local time or a named zone. Owns nothing else; never
// reads the clock or `process` (local time is the TZ the runtime was started
// with, as for strftime(3)).

/** `utc`, `local` (the runtime's TZ), or an IANA zone name (`Europe/Berlin`), through Intl. */
export type TimeZoneMode = 'utc' | 'local' | (string & {});

/** Whether `tz` is utc, local or a time zone Intl knows. */
export function isTimeZone(tz: string): boolean {
  if (tz === 'utc' || tz === 'local') return true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const zoneFormats = new Map<string, Intl.DateTimeFormat>();

/** The wall-clock fields of `sec` in the named zone, through Intl (one formatter per zone). */
function zoneFields(sec: number, zone: string): Fields {
  let f = zoneFormats.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    zoneFormats.set(zone, f);
  }
  const v: Record<string, number> = {};
  for (const p of f.formatToParts(new Date(sec * 1000))) if (p.type !== 'literal') v[p.type] = +p.value;
  const Y = v.year, m = v.month, d = v.day, H = v.hour % 24, M = v.minute, S = v.second;
  const wall = Date.UTC(Y, m - 1, d, H, M, S);
  return {
    Y, m, d, H, M, S,
    wday: new Date(Date.UTC(Y, m - 1, d)).getUTCDay(),
    yday: (Date.UTC(Y, m - 1, d) - Date.UTC(Y, 0, 1)) / 86400000 + 1,
    off: Math.round((wall - sec * 1000) / 60000),
  };
}

/** Named formats; anything else containing `%` is a strftime pattern. */
export const TS_FORMATS = ['iso', 'epoch', 'epoch-ms', 'epoch-us'] as const;

/** A timestamp text that could not be read as ISO 8601. */
export class TimestampError extends Error {}

export interface Instant {
  /** Whole seconds since the epoch. */
  sec: number;
  /** Microseconds within the second, 0..999999. */
  us: number;
}

const ISO_RE = /^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?(Z|z|[+-]\d\d(?::?\d\d)?)$/;

/** Read an ISO 8601 date-time with an explicit offset (RFC 3339 section 5.6). */
export function parseIso(ts: string): Instant {
  const m = ISO_RE.exec(ts);
  if (!m) throw new TimestampError(`not an ISO 8601 timestamp: ${JSON.stringify(ts).slice(0, 60)}`);
  const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  if (Number.isNaN(ms) || +m[2] > 12 || +m[3] > 31 || +m[4] > 23 || +m[5] > 59 || +m[6] > 60) {
    throw new TimestampError(`not a valid date: ${JSON.stringify(ts).slice(0, 60)}`);
  }
  let sec = ms / 1000;
  const z = m[8];
  if (z !== 'Z' && z !== 'z') {
    const sign = z[0] === '-' ? -1 : 1;
    const hh = +z.slice(1, 3);
    const mm = z.length > 3 ? +z.slice(z.length - 2) : 0;
    sec -= sign * (hh * 3600 + mm * 60);
  }
  const frac = m[7] ?? '';
  const us = frac ? +(frac + '00000').slice(0, 6) : 0;
  return { sec, us };
}

const pad2 = (n: number) => (n < 10 ? '0' + n : '' + n);
const pad3 = (n: number) => (n < 10 ? '00' + n : n < 100 ? '0' + n : '' + n);
const pad6 = (n: number) => ('00000' + n).slice(-6);
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

interface Fields {
  Y: number; m: number; d: number; H: number; M: number; S: number; wday: number; yday: number;
  /** Offset from UTC in minutes (east positive). */
  off: number;
}

function fieldsOf(sec: number, tz: TimeZoneMode): Fields {
  if (tz !== 'utc' && tz !== 'local') return zoneFields(sec, tz);
  const dt = new Date(sec * 1000);
  const utc = tz === 'utc';
  const Y = utc ? dt.getUTCFullYear() : dt.getFullYear();
  const m = (utc ? dt.getUTCMonth() : dt.getMonth()) + 1;
  const d = utc ? dt.getUTCDate() : dt.getDate();
  return {
    Y, m, d,
    H: utc ? dt.getUTCHours() : dt.getHours(),
    M: utc ? dt.getUTCMinutes() : dt.getMinutes(),
    S: utc ? dt.getUTCSeconds() : dt.getSeconds(),
    wday: utc ? dt.getUTCDay() : dt.getDay(),
    yday: (Date.UTC(Y, m - 1, d) - Date.UTC(Y, 0, 1)) / 86400000 + 1,
    off: utc ? 0 : -dt.getTimezoneOffset(),
  };
}

function offsetText(off: number, colon: boolean): string {
  const sign = off < 0 ? '-' : '+';
  const a = Math.abs(off);
  return sign + pad2(Math.floor(a / 60)) + (colon ? ':' : '') + pad2(a % 60);
}

function zoneName(sec: number, tz: TimeZoneMode): string {
  if (tz === 'utc') return 'UTC';
  try {
    const parts = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short', ...(tz === 'local' ? {} : { timeZone: tz }) }).formatToParts(new Date(sec * 1000));
    return parts.find((p) => p.type === 'timeZoneName')?.value ?? '';
  } catch {
    return offsetText(fieldsOf(sec, tz).off, false);
  }
}

/** One strftime directive: the per-second text (sub-second directives are filled in later). */
type Piece = string | ((f: Fields, sec: number) => string) | 'us' | 'ms';

function directive(c: string, tz: TimeZoneMode): Piece {
  switch (c) {
    case 'Y': return (f) => String(f.Y);
    case 'y': return (f) => pad2(f.Y % 100);
    case 'C': return (f) => pad2(Math.floor(f.Y / 100));
    case 'm': return (f) => pad2(f.m);
    case 'd': return (f) => pad2(f.d);
    case 'e': return (f) => (f.d < 10 ? ' ' + f.d : '' + f.d);
    case 'H': return (f) => pad2(f.H);
    case 'I': return (f) => pad2(f.H % 12 === 0 ? 12 : f.H % 12);
    case 'p': return (f) => (f.H < 12 ? 'AM' : 'PM');
    case 'M': return (f) => pad2(f.M);
    case 'S': return (f) => pad2(f.S);
    case 'j': return (f) => pad3(f.yday);
    case 'a': return (f) => DAYS[f.wday].slice(0, 3);
    case 'A': return (f) => DAYS[f.wday];
    case 'b': case 'h': return (f) => MONTHS[f.m - 1].slice(0, 3);
    case 'B': return (f) => MONTHS[f.m - 1];
    case 'u': return (f) => String(f.wday === 0 ? 7 : f.wday);
    case 'w': return (f) => String(f.wday);
    case 'z': return (f) => offsetText(f.off, false);
    case 'Z': return (_f, sec) => zoneName(sec, tz);
    case 's': return (_f, sec) => String(sec);
    case 'F': return (f) => `${f.Y}-${pad2(f.m)}-${pad2(f.d)}`;
    case 'T': return (f) => `${pad2(f.H)}:${pad2(f.M)}:${pad2(f.S)}`;
    case 'R': return (f) => `${pad2(f.H)}:${pad2(f.M)}`;
    case 'D': return (f) => `${pad2(f.m)}/${pad2(f.d)}/${pad2(f.Y % 100)}`;
    case 'f': return 'us'; // microseconds, as Python's datetime.strftime
    case 'L': return 'ms'; // milliseconds
    case 'n': return '\n';
    case 't': return '\t';
    case '%': return '%';
    default: return '%' + c; // unknown directives stay as written, as glibc does
  }
}

function compileStrftime(pattern: string, tz: TimeZoneMode): (t: Instant) => string {
  const pieces: Piece[] = [];
  let lit = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch !== '%' || i === pattern.length - 1) {
      lit += ch;
      continue;
    }
    const d = directive(pattern[++i], tz);
    if (typeof d === 'string' && d !== 'us' && d !== 'ms') {
      lit += d;
    } else {
      if (lit) pieces.push(lit);
      lit = '';
      pieces.push(d);
    }
  }
  if (lit) pieces.push(lit);
  const sub = pieces.filter((p) => p === 'us' || p === 'ms').length;
  // Events come in time order, many in the same second: the text for one
  // second is made once, split where the sub-second digits go.
  let lastSec = NaN;
  let parts: string[] = [];
  let subKinds: ('us' | 'ms')[] = [];
  const perSecond = (sec: number) => {
    const f = fieldsOf(sec, tz);
    parts = [];
    subKinds = [];
    let cur = '';
    for (const p of pieces) {
      if (p === 'us' || p === 'ms') {
        parts.push(cur);
        subKinds.push(p);
        cur = '';
      } else if (typeof p === 'string') cur += p;
      else cur += p(f, sec);
    }
    parts.push(cur);
    lastSec = sec;
  };
  if (sub === 0) {
    return (t) => {
      if (t.sec !== lastSec) perSecond(t.sec);
      return parts[0];
    };
  }
  return (t) => {
    if (t.sec !== lastSec) perSecond(t.sec);
    let out = parts[0];
    for (let i = 0; i < subKinds.length; i++) out += (subKinds[i] === 'us' ? pad6(t.us) : pad3(Math.floor(t.us / 1000))) + parts[i + 1];
    return out;
  };
}

/**
 * A function from an instant to text, in the format and zone of
 * compileTsFormat (which reads the timestamp text first).
 */
export function compileInstantFormat(fmt: string = 'iso', tz: TimeZoneMode = 'utc'): (t: Instant) => string {
  if (fmt === 'iso' && tz === 'utc') return (t) => new Date(t.sec * 1000).toISOString().slice(0, 19) + '.' + pad6(t.us) + 'Z';
  if (fmt === 'epoch') return (t) => String(t.sec);
  if (fmt === 'epoch-ms') return (t) => String(t.sec * 1000 + Math.floor(t.us / 1000));
  if (fmt === 'epoch-us') return (t) => (t.sec === 0 ? String(t.us) : String(t.sec) + pad6(t.us));
  const pattern = fmt === 'iso' ? '%Y-%m-%dT%H:%M:%S.%f' : fmt;
  const f = compileStrftime(pattern, tz);
  // Local ISO: the offset with a colon (RFC 3339), which strftime's %z lacks.
  if (fmt === 'iso') return (t) => f(t) + offsetText(fieldsOf(t.sec, tz).off, true);
  return f;
}

/**
 * A function from an event timestamp to text. `fmt`: `iso` (ISO 8601 with
 * microseconds: unchanged in UTC, with the offset in local time), `epoch`
 * (whole seconds, as strftime's `%s`), `epoch-ms`, `epoch-us`, or a strftime
 * pattern (`%Y %m %d %H %M %S %f %z %Z %s`...; `%f` is microseconds, `%L`
 * milliseconds). Throws TimestampError for a value that is not a timestamp.
 */
export function compileTsFormat(fmt: string = 'iso', tz: TimeZoneMode = 'utc'): (ts: string) => string {
  const f = compileInstantFormat(fmt, tz);
  if (fmt === 'iso' && tz === 'utc') {
    return (ts) => {
      // The event's own form is already what is wanted: pass it through.
      if (ts.length === 27 && ts.charCodeAt(26) === 90 /* Z */ && ts.charCodeAt(10) === 84 /* T */) return ts;
      return f(parseIso(ts));
    };
  }
  return (ts) => f(parseIso(ts));
}

/** The instant isoBytes() last read (one object, used again: read it before the next call). */
const lastInstant: Instant = { sec: 0, us: 0 };
let minuteKey = -1;
let minuteMs = 0;

/**
 * The instant of an event's own timestamp form, `YYYY-MM-DDTHH:MM:SS.ffffffZ`
 * (27 bytes at b[from]), as parseIso() reads it; null for any other text
 * (then parseIso() says what is wrong with it). The minute's start is kept
 * from the last call: events come in time order.
 */
export function isoBytes(b: Uint8Array, from: number, to: number): Instant | null {
  if (to - from !== 27 || b[from + 26] !== 90 || b[from + 10] !== 84 || b[from + 4] !== 45 || b[from + 7] !== 45 ||
    b[from + 13] !== 58 || b[from + 16] !== 58 || b[from + 19] !== 46) return null;
  const d = (k: number) => {
    const c = b[from + k] - 48;
    return c >= 0 && c <= 9 ? c : -1000000;
  };
  const Y = d(0) * 1000 + d(1) * 100 + d(2) * 10 + d(3);
  const m = d(5) * 10 + d(6), day = d(8) * 10 + d(9), H = d(11) * 10 + d(12), M = d(14) * 10 + d(15), S = d(17) * 10 + d(18);
  let us = 0;
  for (let k = 20; k < 26; k++) us = us * 10 + d(k);
  if (Y < 0 || m < 0 || day < 0 || H < 0 || M < 0 || S < 0 || us < 0 || m > 12 || day > 31 || H > 23 || M > 59 || S > 60) return null;
  const key = (((Y * 13 + m) * 32 + day) * 24 + H) * 60 + M;
  if (key !== minuteKey) {
    minuteMs = Date.UTC(Y, m - 1, day, H, M, 0);
    minuteKey = key;
  }
  lastInstant.sec = minuteMs / 1000 + S;
  lastInstant.us = us;
  return lastInstant;
}

/** Whether `fmt` is something compileTsFormat understands (a name, or a pattern with a directive). */
export function isTsFormat(fmt: string): boolean {
  return (TS_FORMATS as readonly string[]).includes(fmt) || fmt.includes('%');
}
