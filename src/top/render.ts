// ct-top's output: a Snapshot (model.ts) as plain-text tables (--once, and
// every interval when standard output is not a terminal), as JSON, or as
// one full-screen frame of ANSI text for a terminal of any size from 80x24
// up. Plain ANSI (cursor home, erase to end of line, reverse video, the
// alternate screen): every terminal and ssh session has them, and a library
// would add a dependency for five tables. Pure functions of their inputs.
import { isoMicros } from '../event.js';
import { DIMENSIONS, type Dimension, type Row, type Snapshot, type SortBy } from './model.js';

export const TITLES: Record<Dimension, string> = {
  process: 'PROCESS', user: 'USER', destination: 'DESTINATION', port: 'PORT', container: 'CONTAINER',
};

/** 1234 -> "1.2K", bytes as 1024 powers: "12.3M". Always at most 6 characters. */
export function human(n: number): string {
  if (n < 1000) return String(Math.round(n));
  const units = ['K', 'M', 'G', 'T', 'P'];
  let v = n;
  let u = -1;
  do {
    v /= 1024;
    u++;
  } while (v >= 1000 && u < units.length - 1);
  return (v < 10 ? v.toFixed(1) : String(Math.round(v))) + units[u];
}

/** Control characters and the like out of text from the stream (a crafted comm must not drive the terminal). */
export function clean(s: string): string {
  return s.replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]/g, '?');
}

/** Fit to exactly `w` columns: cut with `~` at the end, or padded. */
function fit(s: string, w: number, right = false): string {
  if (w <= 0) return '';
  const chars = [...s];
  if (chars.length > w) return chars.slice(0, Math.max(0, w - 1)).join('') + '~';
  const pad = ' '.repeat(w - chars.length);
  return right ? pad + s : s + pad;
}

function label(d: Dimension, r: Row): string {
  const n = clean(r.name);
  return d === 'destination' && r.dns ? `${clean(r.dns)} ${n}` : n;
}

/** A table's lines at width `w`: the title line, then at most `rows` rows. */
export function tableLines(d: Dimension, rows: Row[], w: number, max: number, sort: SortBy): string[] {
  const nw = w - 16;
  const mark = (s: SortBy, t: string) => (s === sort ? `${t}*` : t);
  const out = [fit(TITLES[d], nw) + fit(mark('connections', 'CONNS'), 8, true) + fit(mark('bytes', 'BYTES'), 8, true)];
  for (const r of rows.slice(0, max)) out.push(fit(label(d, r), nw) + fit(String(r.connections), 8, true) + fit(human(r.bytes), 8, true));
  return out;
}

/** The summary line. */
export function headline(s: Snapshot, sort: SortBy): string {
  const when = s.clock ? isoMicros(s.clock).slice(0, 19).replace('T', ' ') + 'Z' : '-';
  const over = s.window === null ? 'all input' : `last ${s.window}s`;
  return `ct-top ${when}  ${over}: ${s.connections} connections, ${human(s.bytes)}B` +
    `${s.lost ? `, ${s.lost} events lost` : ''}  by ${sort}`;
}

/** Plain-text tables, one after another (non-terminal output, --once). */
export function renderPlain(s: Snapshot, sort: SortBy, limit: number, width = 80): string {
  let out = headline(s, sort) + '\n';
  for (const d of DIMENSIONS) {
    out += '\n' + tableLines(d, s.tables[d], width, limit, sort).map((l) => l.trimEnd()).join('\n') + '\n';
  }
  return out;
}

/** --once --json: the snapshot as one JSON document. */
export function renderJson(s: Snapshot, sort: SortBy): string {
  return JSON.stringify({
    ts: s.clock ? isoMicros(s.clock) : null, window: s.window, sort, connections: s.connections, bytes: s.bytes, lost: s.lost,
    ...s.tables,
  }) + '\n';
}

export interface ScreenState {
  sort: SortBy;
  /** One table full screen, or all of them. */
  view: Dimension | 'all';
  /** A note for the second line (input ended, ...). */
  note?: string;
}

const REV = '\x1b[7m', BOLD = '\x1b[1m', OFF = '\x1b[m', EOL = '\x1b[K';

/**
 * One frame for a terminal of `cols` x `rows` (at least 80x24 assumed; a
 * smaller one is drawn as far as it goes): the headline, a key line, then
 * the tables, two columns of them, or one table full screen. Starts at the
 * top left and erases what each line does not cover, so that a frame
 * replaces the last without a flicker.
 */
export function renderScreen(s: Snapshot, st: ScreenState, cols: number, rows: number): string {
  const w = Math.max(40, cols);
  const lines: string[] = [];
  lines.push(BOLD + fit(headline(s, st.sort), w) + OFF);
  lines.push(fit(`${st.note ? st.note + '  ' : ''}c: by connections  b: by bytes  1-5: one table  0: all  q: quit`, w));
  const body = Math.max(2, rows - 2);
  // A title line is marked with a leading NUL here, drawn in reverse video below.
  const T = '\x00';
  const draw = (l: string, width: number) => (l.startsWith(T) ? REV + fit(l.slice(1), width) + OFF : fit(l, width));
  const titled = (t: string[]) => t.map((l, i) => (i === 0 ? T + l : l));
  let grid: string[];
  if (st.view !== 'all') {
    grid = titled(tableLines(st.view, s.tables[st.view], w, body - 1, st.sort)).map((l) => draw(l, w));
  } else {
    // Left: processes, users, containers; right: destinations, ports.
    const lw = Math.floor((w - 1) / 2), rw = w - 1 - lw;
    const stack = (ds: Dimension[], width: number): string[] => {
      const out: string[] = [];
      ds.forEach((d, i) => {
        const h = i === ds.length - 1 ? body - out.length : Math.floor(body / ds.length);
        const t = titled(tableLines(d, s.tables[d], width, h - 1, st.sort));
        while (t.length < h) t.push('');
        out.push(...t.slice(0, h));
      });
      return out;
    };
    const left = stack(['process', 'user', 'container'], lw), right = stack(['destination', 'port'], rw);
    grid = left.map((l, i) => draw(l, lw) + ' ' + draw(right[i] ?? '', rw));
  }
  for (const g of grid.slice(0, body)) lines.push(g);
  return '\x1b[H' + lines.map((l) => l + EOL).join('\r\n') + '\x1b[J';
}
