// ct-record's file names and rotation times: a strftime pattern checked once
// and expanded for an instant (local time or UTC), the `.N` suffix that makes
// a taken name free, and the clock-aligned boundaries of `-t MINUTES`.
// Pure functions of their arguments: never reads the clock or `process`
// (local time is the TZ the runtime was started with, as for strftime(3)).
import path from 'node:path';
import { compileTsFormat, type TimeZoneMode } from '../format/time.js';

export type { TimeZoneMode };

/** A pattern that cannot name files. */
export class PatternError extends Error {}

/**
 * The conversions a file name may use: those of ct-format's timestamps
 * (src/format/time.ts expands them), without `%n` and `%t`. Anything else
 * after a `%` is refused rather than written literally into a name.
 */
export const CONVERSIONS: Record<string, string> = {
  Y: 'year (2026)', y: 'year in the century (00-99)', C: 'century (20)', m: 'month (01-12)', d: 'day of the month (01-31)',
  e: 'day of the month, space-padded', j: 'day of the year (001-366)', H: 'hour (00-23)', I: 'hour (01-12)', p: 'AM or PM',
  M: 'minute (00-59)', S: 'second (00-60)', s: 'seconds since the epoch', a: 'weekday (Mon)', A: 'weekday (Monday)',
  b: 'month (Jan)', h: 'month (Jan)', B: 'month (January)', u: 'weekday (1-7, Monday is 1)', w: 'weekday (0-6, Sunday is 0)',
  z: 'offset from UTC (+0100)', Z: 'time zone abbreviation', F: '%Y-%m-%d', T: '%H:%M:%S', R: '%H:%M', D: '%m/%d/%y (makes directories)',
  f: 'microseconds (000000-999999)', L: 'milliseconds (000-999)', '%': 'a literal %',
};

export interface Namer {
  /** The file name for an instant (milliseconds since the epoch). */
  (ms: number): string;
}

/** Check `pattern` and return its expansion; throws PatternError. */
export function compileNamePattern(pattern: string, tz: TimeZoneMode): Namer {
  if (pattern === '') throw new PatternError('the file name pattern is empty');
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] !== '%') continue;
    const c = pattern[++i];
    if (c === undefined) throw new PatternError(`pattern '${pattern}' ends with a lone %`);
    if (!(c in CONVERSIONS)) throw new PatternError(`pattern '${pattern}': unknown conversion %${c} (known: ${Object.keys(CONVERSIONS).map((k) => '%' + k).join(' ')})`);
  }
  const fmt = compileTsFormat(pattern, tz);
  return (ms) => {
    const name = fmt(isoMillis(ms));
    if (name.endsWith('/') || path.basename(name) === '.' || path.basename(name) === '..') throw new PatternError(`pattern '${pattern}' gives '${name}', which is not a file name`);
    return name;
  };
}

function isoMillis(ms: number): string {
  return new Date(Math.floor(ms)).toISOString();
}

/**
 * `name` made distinct by `n` (1, 2, ...): the number goes before the
 * extension when the name has one made of letters only
 * (`tcp-080000.ndjson` -> `tcp-080000.1.ndjson`, so that `ls -v` and
 * `sort -V` list the files in the order they were written), and at the end
 * otherwise (`tcp-2026.11.23` -> `tcp-2026.11.23.1`).
 */
export function withSuffix(name: string, n: number): string {
  const base = path.basename(name);
  const m = /^(.+?)(\.[A-Za-z]+)$/.exec(base);
  return name.slice(0, name.length - base.length) + (m ? `${m[1]}.${n}${m[2]}` : `${base}.${n}`);
}

/**
 * Rotation every `minutes` (1..1440), aligned to the clock: periods start at
 * midnight (local or UTC) and every `minutes` of wall-clock time after it;
 * when `minutes` does not divide a day, the day's last period is shorter.
 * Wall-clock times skipped or repeated by a daylight-saving change are
 * resolved as JavaScript's Date does (a skipped time moves forward).
 */
export class Periods {
  constructor(private minutes: number, private tz: TimeZoneMode) {
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > 1440) throw new RangeError('minutes must be a whole number from 1 to 1440');
  }

  /** Boundaries of the day of `ms`, ascending, ending with the next midnight. */
  private day(ms: number): number[] {
    const d = new Date(ms);
    const utc = this.tz === 'utc';
    const Y = utc ? d.getUTCFullYear() : d.getFullYear();
    const M = utc ? d.getUTCMonth() : d.getMonth();
    const D = utc ? d.getUTCDate() : d.getDate();
    const at = (min: number) => (utc ? Date.UTC(Y, M, D, 0, min) : new Date(Y, M, D, 0, min).getTime());
    const out: number[] = [];
    for (let min = 0; min < 1440; min += this.minutes) out.push(at(min));
    out.push(utc ? Date.UTC(Y, M, D + 1) : new Date(Y, M, D + 1).getTime());
    return out;
  }

  /** The first boundary strictly after `ms`. */
  next(ms: number): number {
    for (const b of this.day(ms)) if (b > ms) return b;
    // Only reachable if a day's end is not after ms (it always is); be safe.
    return this.next(ms + 3600_000);
  }

  /** The last boundary at or before `ms`: when the period holding `ms` began. */
  start(ms: number): number {
    let best = -Infinity;
    for (const b of this.day(ms)) if (b <= ms && b > best) best = b;
    return best === -Infinity ? ms : best;
  }
}
