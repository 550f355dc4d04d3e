// Syslog messages: PRI, facility and severity names, the RFC 5424 and RFC
// 3164 headers, structured data, and the size limit. It builds one message
// (without transport framing) from already chosen header values; it does no
// I/O, knows nothing about events or transports, and never touches `process`.

/** RFC 5424 section 6.2.1, table 1 (the same codes as RFC 3164 section 4.1.1). */
export const FACILITIES: Readonly<Record<string, number>> = {
  kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, syslog: 5, lpr: 6, news: 7,
  uucp: 8, cron: 9, authpriv: 10, ftp: 11, ntp: 12, security: 13, console: 14, 'solaris-cron': 15,
  local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
};

/** RFC 5424 section 6.2.1, table 2; `warn`, `err`, `crit`, `emerg`, `panic` as syslog.conf(5) spells them. */
export const SEVERITIES: Readonly<Record<string, number>> = {
  emerg: 0, panic: 0, emergency: 0, alert: 1, crit: 2, critical: 2, err: 3, error: 3,
  warning: 4, warn: 4, notice: 5, info: 6, informational: 6, debug: 7,
};

export type SyslogFormat = 'rfc5424' | 'rfc3164';

/** A facility by name or number (0..23); undefined when it is neither. */
export function facilityCode(v: string): number | undefined {
  const s = v.trim().toLowerCase();
  if (/^\d+$/.test(s)) return Number(s) <= 23 ? Number(s) : undefined;
  return Object.prototype.hasOwnProperty.call(FACILITIES, s) ? FACILITIES[s] : undefined;
}

/** A severity by name or number (0..7); undefined when it is neither. */
export function severityCode(v: string): number | undefined {
  const s = v.trim().toLowerCase();
  if (/^\d+$/.test(s)) return Number(s) <= 7 ? Number(s) : undefined;
  return Object.prototype.hasOwnProperty.call(SEVERITIES, s) ? SEVERITIES[s] : undefined;
}

/** RFC 5424 section 6.2.1: PRI = facility * 8 + severity. */
export function pri(facility: number, severity: number): number {
  return facility * 8 + severity;
}

// RFC 5424 section 6: header fields are PRINTUSASCII (%d33-126) with a
// maximum length each; NILVALUE `-` stands for an empty one.
export const MAX_HOSTNAME = 255;
export const MAX_APP_NAME = 48;
export const MAX_PROCID = 128;
export const MAX_MSGID = 32;

const NOT_PRINTUSASCII = /[^\x21-\x7e]/g;

/** A header field made valid: printable US-ASCII only (others become `_`), cut to `max`, `-` when empty. */
export function headerField(v: string | undefined | null, max: number): string {
  if (v === undefined || v === null || v === '') return '-';
  const s = v.replace(NOT_PRINTUSASCII, '_');
  return s.length > max ? s.slice(0, max) : s;
}

// RFC 5424 section 6.3.3: inside PARAM-VALUE, `"`, `\` and `]` MUST be escaped with `\`.
const SD_ESCAPE = /["\\\]]/g;
export function sdValue(v: string): string {
  return v.replace(SD_ESCAPE, (c) => '\\' + c);
}

// SD-NAME (section 6.3.2): 1*32 PRINTUSASCII except `=`, SP, `]`, `"`.
const SD_NAME_BAD = /[^\x21-\x7e]|[= \]"]/g;
export function sdName(v: string): string {
  const s = v.replace(SD_NAME_BAD, '_');
  return s.length > 32 ? s.slice(0, 32) : s || '_';
}

/** One SD-ELEMENT: `[id name="value" ...]`; parameters with undefined values are left out. */
export function sdElement(id: string, params: Array<[string, string | number | undefined | null]>): string {
  let s = '[' + sdName(id);
  for (const [k, v] of params) {
    if (v === undefined || v === null || v === '') continue;
    s += ' ' + sdName(k) + '="' + sdValue(String(v)) + '"';
  }
  return s + ']';
}

/** Is `id` a valid SD-ID: an IANA-registered name, or `name@<private enterprise number>` (section 6.3.2, 7.2)? */
export function validSdId(id: string): boolean {
  return /^[\x21-\x7e]{1,32}$/.test(id) && !/[= \]"]/.test(id) && /^[^@]+(@\d+(\.\d+)*)?$/.test(id);
}

export interface Header {
  facility: number;
  severity: number;
  /** ISO 8601 timestamp, as an event's `ts` (microseconds, `Z`); undefined or invalid: the time of sending. */
  ts?: string;
  hostname?: string;
  appName?: string;
  procid?: string;
  msgid?: string;
  /** Zero or more SD-ELEMENTs already built with sdElement() (RFC 5424 only). */
  sd?: string;
}

// RFC 5424 section 6.2.3 (RFC 3339 with at most six fraction digits): what
// ct-events writes; anything else is re-read with Date and written again.
const RFC5424_TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/;

/** An RFC 5424 TIMESTAMP for `ts`, or for `now` when `ts` is absent or not a time. */
export function rfc5424Time(ts: string | undefined, now: () => Date): string {
  if (ts !== undefined && RFC5424_TS.test(ts)) return ts;
  let d = ts !== undefined ? new Date(ts) : null;
  if (!d || Number.isNaN(d.getTime())) d = now();
  return d.toISOString();
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const p2 = (n: number) => (n < 10 ? '0' + n : String(n));

/** RFC 3164 section 4.1.2: `Mmm dd hh:mm:ss` in local time, the day space-padded. */
export function rfc3164Time(ts: string | undefined, now: () => Date): string {
  let d = ts !== undefined ? new Date(ts) : null;
  if (!d || Number.isNaN(d.getTime())) d = now();
  const day = d.getDate();
  return `${MONTHS[d.getMonth()]} ${day < 10 ? ' ' + day : day} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
}

/** RFC 3164 section 5.3: the TAG is at most 32 alphanumeric characters; we keep `-`, `_`, `.` and `/` too, as syslog(3) callers do. */
export function rfc3164Tag(appName: string | undefined): string {
  const s = (appName ?? '').replace(/[^A-Za-z0-9_.\/-]/g, '_');
  return (s.length > 32 ? s.slice(0, 32) : s) || 'ct-syslog';
}

/**
 * RFC 5424's header on either side of its TIMESTAMP: `<PRI>1 ` and
 * ` HOSTNAME APP-NAME PROCID MSGID ` (SD and MSG follow). They change only
 * with the severity, host and kind, so a sender of many events can keep them.
 */
export function rfc5424Around(h: Header): [string, string] {
  return [`<${pri(h.facility, h.severity)}>1 `, ` ${headerField(h.hostname, MAX_HOSTNAME)} ` +
    `${headerField(h.appName, MAX_APP_NAME)} ${headerField(h.procid, MAX_PROCID)} ${headerField(h.msgid, MAX_MSGID)} `];
}

/** `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG` (RFC 5424 section 6). No BOM: see ct-syslog(1). */
export function formatRfc5424(h: Header, msg: string, now: () => Date = () => new Date()): string {
  const [pre, post] = rfc5424Around(h);
  return pre + rfc5424Time(h.ts, now) + post + (h.sd || '-') + (msg === '' ? '' : ' ' + msg);
}

/**
 * `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG` (RFC 3164 section 4.1). With
 * `local`, the HOSTNAME is left out, as syslog(3) and logger(1) write to
 * /dev/log: the local daemon adds its own, and its parser for that socket
 * expects none.
 */
export function formatRfc3164(h: Header, msg: string, opts: { local?: boolean } = {}, now: () => Date = () => new Date()): string {
  const tag = rfc3164Tag(h.appName) + (h.procid && h.procid !== '-' ? `[${h.procid.replace(/[^\x21-\x7e]|[\[\]]/g, '_')}]` : '');
  const host = opts.local ? '' : headerField(h.hostname, MAX_HOSTNAME) + ' ';
  return `<${pri(h.facility, h.severity)}>${rfc3164Time(h.ts, now)} ${host}${tag}: ${msg}`;
}

/** RFC 3164 section 4.1: "The total length of the packet MUST be 1024 bytes or less." */
export const RFC3164_MAX = 1024;

/**
 * Cut `msg` to at most `max` bytes of UTF-8, on a character boundary.
 * Returns the message itself when it fits (the common case, one length check).
 */
export function truncateUtf8(msg: string, max: number): string {
  // A UTF-16 unit is at most 3 bytes of UTF-8: short strings need no count.
  if (msg.length * 3 <= max) return msg;
  const buf = Buffer.from(msg, 'utf8');
  if (buf.length <= max) return msg;
  let end = max;
  // Step back over continuation bytes (10xxxxxx) to the start of a character.
  while (end > 0 && (buf[end] & 0xc0) === 0x80) end--;
  return buf.toString('utf8', 0, end);
}
