// Index names from a pattern with strftime-style date parts, filled from each
// event's own `ts` (UTC), so a day's events land in that day's index however
// late they are shipped (a replay of last week goes to last week's indices).
//
// Name rules are Elasticsearch's (docs: indices-create-index.html, "Index
// name"): lower case; none of \ / * ? " < > | space , # :; not starting with
// - _ +; not . or ..; at most 255 bytes. OpenSearch has the same rules.
//
// This module owns the pattern; it does no I/O.

const PARTS: Record<string, string> = {
  Y: 'year (2026)', y: 'year, two digits (26)', m: 'month (01-12)', d: 'day (01-31)', H: 'hour (00-23)',
  j: 'day of the year (001-366)', G: 'ISO 8601 week-based year', V: 'ISO 8601 week (01-53)', '%': 'a literal %',
};
export const PATTERN_PARTS: Readonly<Record<string, string>> = PARTS;

const BAD_CHARS = /[\\/*?"<>| ,#:A-Z]/;

/** Why a concrete index or data stream name would be refused, or null when it is fine. */
export function invalidIndexName(name: string): string | null {
  if (name === '') return 'it is empty';
  if (name === '.' || name === '..') return `'${name}' is not allowed`;
  if (/^[-_+]/.test(name)) return 'it must not start with -, _ or +';
  const bad = BAD_CHARS.exec(name);
  if (bad) return /[A-Z]/.test(bad[0]) ? 'it must be lower case' : `it must not contain '${bad[0]}'`;
  if (Buffer.byteLength(name) > 255) return 'it is longer than 255 bytes';
  return null;
}

/** ISO 8601 week and week-based year of a UTC date. */
function isoWeek(d: Date): [number, number] {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - day); // the Thursday of this week decides the year
  const y = t.getUTCFullYear();
  const week = Math.ceil(((t.getTime() - Date.UTC(y, 0, 1)) / 86400000 + 1) / 7);
  return [y, week];
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

export interface IndexPattern {
  readonly pattern: string;
  /** True when the pattern has date parts (the name depends on the event). */
  readonly dated: boolean;
  /** The index for an event time (ISO 8601); null when `ts` is not a time. */
  format(ts: string): string | null;
  /** A glob every name of the pattern matches, for a template's index_patterns: `ct-%Y.%m.%d` gives `ct-*`. */
  readonly wildcard: string;
}

/** Compile a pattern; throws an Error whose message says what is wrong with it. */
export function compilePattern(pattern: string): IndexPattern {
  const pieces: (string | ((d: Date) => string))[] = [];
  let lit = '';
  let prefix = ''; // literal text before the first date part
  let dated = false;
  let hourly = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c !== '%') { lit += c; continue; }
    const k = pattern[++i];
    if (k === undefined) throw new Error(`pattern '${pattern}' ends with a lone %`);
    if (!(k in PARTS)) throw new Error(`pattern '${pattern}': unknown date part %${k} (known: ${Object.keys(PARTS).map((x) => '%' + x).join(' ')})`);
    if (k === '%') { lit += '%'; continue; }
    if (!dated) prefix = lit;
    if (lit) pieces.push(lit);
    lit = '';
    dated = true;
    if (k === 'H') hourly = true;
    switch (k) {
      case 'Y': pieces.push((d) => String(d.getUTCFullYear())); break;
      case 'y': pieces.push((d) => pad(d.getUTCFullYear() % 100)); break;
      case 'm': pieces.push((d) => pad(d.getUTCMonth() + 1)); break;
      case 'd': pieces.push((d) => pad(d.getUTCDate())); break;
      case 'H': pieces.push((d) => pad(d.getUTCHours())); break;
      case 'j': pieces.push((d) => pad(Math.floor((Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86400000) + 1, 3)); break;
      case 'G': pieces.push((d) => String(isoWeek(d)[0])); break;
      case 'V': pieces.push((d) => pad(isoWeek(d)[1])); break;
    }
  }
  if (lit) pieces.push(lit);
  // What every name of the pattern matches: the text before the first date
  // part, anything, the text after the last one.
  const wildcard = dated ? prefix + '*' + lit : lit;
  // Check the name the pattern makes for a sample date, so a bad pattern is a
  // usage error now rather than every document rejected later.
  const render = (d: Date) => pieces.map((p) => (typeof p === 'string' ? p : p(d))).join('');
  const why = invalidIndexName(render(new Date(Date.UTC(2026, 10, 23, 7))));
  if (why) throw new Error(`index pattern '${pattern}' makes a name Elasticsearch refuses: ${why}`);

  // Names change at most once an hour (once a day without %H): cache by the
  // `ts` prefix that decides them, so the common case is one slice and a lookup.
  const keyLen = hourly ? 13 : 10; // "YYYY-MM-DDTHH" / "YYYY-MM-DD"
  let lastKey = '';
  let lastName = '';
  const fixed = dated ? null : render(new Date(0));
  return {
    pattern,
    dated,
    wildcard,
    format(ts: string): string | null {
      if (fixed !== null) return fixed;
      // ctpipe's own times are UTC ("...Z"); the prefix is then the date.
      const utc = ts.length > keyLen && ts.charCodeAt(ts.length - 1) === 90 /* Z */;
      if (utc) {
        const key = ts.slice(0, keyLen);
        if (key === lastKey) return lastName;
        const ms = Date.parse(ts);
        if (Number.isNaN(ms)) return null;
        lastKey = key;
        lastName = render(new Date(ms));
        return lastName;
      }
      const ms = Date.parse(ts);
      return Number.isNaN(ms) ? null : render(new Date(ms));
    },
  };
}
