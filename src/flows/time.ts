// Reading an event's ISO 8601 time as microseconds, fast, for ct-flows.
// No I/O.
import { parseIso, TimestampError } from '../format/time.js';

// Events from ct-events all have the form 2026-11-23T07:41:33.965873Z: the
// seconds part is read once per second of stream and kept, the microseconds
// read digit by digit. Other ISO 8601 forms take the general parser.
let cachedPrefix = '';
let cachedSec = 0;

/** Microseconds since the epoch of an ISO 8601 timestamp, or undefined when it is not one. */
export function tsMicros(s: string): number | undefined {
  if (s.length === 27 && s.charCodeAt(26) === 90 /* Z */ && s.charCodeAt(19) === 46 /* . */) {
    let sec: number;
    if (s.startsWith(cachedPrefix) && cachedPrefix !== '') sec = cachedSec;
    else {
      const p = s.slice(0, 19);
      try {
        sec = parseIso(p + 'Z').sec;
      } catch (e) {
        if (e instanceof TimestampError) return undefined;
        throw e;
      }
      cachedPrefix = p;
      cachedSec = sec;
    }
    let us = 0;
    for (let i = 20; i < 26; i++) {
      const d = s.charCodeAt(i) - 48;
      if (d < 0 || d > 9) return undefined;
      us = us * 10 + d;
    }
    return sec * 1e6 + us;
  }
  try {
    const t = parseIso(s);
    return t.sec * 1e6 + t.us;
  } catch (e) {
    if (e instanceof TimestampError) return undefined;
    throw e;
  }
}

// The same for the bytes of a timestamp (between its quotes), so that the
// fast path reads a line's time without making a string of it.
const prefixBytes = new Uint8Array(19);
let prefixSec = -1;

/** Microseconds since the epoch of the ISO 8601 timestamp buf[start, end) (ASCII), or undefined when it is not one. */
export function tsMicrosAt(buf: Uint8Array, start: number, end: number): number | undefined {
  if (end - start === 27 && buf[start + 26] === 90 /* Z */ && buf[start + 19] === 46 /* . */) {
    let same = prefixSec >= 0;
    for (let i = 0; same && i < 19; i++) if (buf[start + i] !== prefixBytes[i]) same = false;
    if (!same) {
      let p = '';
      for (let i = 0; i < 19; i++) p += String.fromCharCode(buf[start + i]);
      try {
        prefixSec = parseIso(p + 'Z').sec;
      } catch (e) {
        prefixSec = -1;
        if (e instanceof TimestampError) return undefined;
        throw e;
      }
      prefixBytes.set(buf.subarray(start, start + 19));
    }
    let us = 0;
    for (let i = start + 20; i < start + 26; i++) {
      const d = buf[i] - 48;
      if (d < 0 || d > 9) return undefined;
      us = us * 10 + d;
    }
    return prefixSec * 1e6 + us;
  }
  let s = '';
  for (let i = start; i < end; i++) s += String.fromCharCode(buf[i]);
  return tsMicros(s);
}
