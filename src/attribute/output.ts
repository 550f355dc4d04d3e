// ct-attribute's output of an attributed event: its input line's bytes with
// direction, process, peer, attribution and the enrichments' fields
// appended (what JSON.stringify of the attributed event gives for a compact
// input line), into the batch's TextBuffer. An owner object is shared by
// every event of its process's socket, and its JSON (with the lineage of
// --ancestry, most of a line's bytes) is made once, as UTF-8 bytes, and
// copied into each line that names it rather than encoded again; the input
// line is copied as bytes too, never decoded and encoded again. Never
// changes an event.
import type { FlowEvent } from '../event.js';
import type { TextBuffer } from '../lines/text-buffer.js';

/** Each owner object's JSON, as UTF-8 bytes. */
const ownerBytes = new WeakMap<object, Buffer>();

function bytesOf(p: object): Buffer {
  let b = ownerBytes.get(p);
  if (b === undefined) {
    b = Buffer.from(JSON.stringify(p), 'utf8');
    ownerBytes.set(p, b);
  }
  return b;
}

/** `,"direction":...` for each direction. */
const DIRECTION: Record<string, string> = Object.fromEntries(['out', 'in', 'local', 'fwd'].map((d) => [d, ',"direction":' + JSON.stringify(d)]));

/**
 * Append to `out` the line of `ev`, whose input line is buf[start, end)
 * (a JSON object: it ends in `}`, perhaps followed by white space), with
 * its owner and the enrichments' `fields` added at its end.
 */
export function appendOwner(out: TextBuffer, buf: Uint8Array, start: number, end: number, ev: FlowEvent, fields: readonly string[] = []): void {
  // The input's bytes up to its last `}` (a byte that is never part of a
  // longer UTF-8 character), then the added fields piece by piece.
  let close = end - 1;
  while (close > start && buf[close] !== 125 /* } */) close--;
  out.addRange(buf, start, close);
  out.add(DIRECTION[ev.direction as string] ?? ',"direction":' + JSON.stringify(ev.direction));
  if (ev.process) {
    out.add(',"process":');
    out.addBytes(bytesOf(ev.process));
  }
  if (ev.peer) {
    out.add(',"peer":');
    out.addBytes(bytesOf(ev.peer));
  }
  // A frozen attribution is shared by many events (sources/sockdiag.ts: FOUND): its bytes are made once.
  const a = ev.attribution;
  if (a && Object.isFrozen(a)) {
    out.add(',"attribution":');
    out.addBytes(bytesOf(a));
  } else out.add(',"attribution":' + JSON.stringify(a));
  let s = '}\n';
  for (let i = fields.length - 1; i >= 0; i--) {
    const f = fields[i];
    const v = (ev as unknown as Record<string, unknown>)[f];
    if (v !== undefined) s = ',' + JSON.stringify(f) + ':' + JSON.stringify(v) + s;
  }
  out.add(s);
}
