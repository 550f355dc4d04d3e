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

/** Each shared (frozen) attribution's `,"attribution":` and JSON, as UTF-8 bytes. */
const attributionBytes = new WeakMap<object, Buffer>();

function attributionOf(a: object): Buffer {
  let b = attributionBytes.get(a);
  if (b === undefined) {
    b = Buffer.from(',"attribution":' + JSON.stringify(a), 'utf8');
    attributionBytes.set(a, b);
  }
  return b;
}

const DIRECTIONS = ['out', 'in', 'local', 'fwd'];
/** `,"direction":...` for each direction, as bytes; and with `,"process":` after it. */
const DIRECTION: Record<string, Buffer> = Object.fromEntries(DIRECTIONS.map((d) => [d, Buffer.from(',"direction":' + JSON.stringify(d))]));
const DIRECTION_PROCESS: Record<string, Buffer> = Object.fromEntries(DIRECTIONS.map((d) => [d, Buffer.from(',"direction":' + JSON.stringify(d) + ',"process":')]));
const PEER = Buffer.from(',"peer":');

/**
 * Append to `out` the line of `ev`, whose input line is buf[start, end)
 * (a JSON object: it ends in `}`, perhaps followed by white space), with
 * its owner and the enrichments' `fields` added at its end.
 */
export function appendOwner(out: TextBuffer, buf: Uint8Array, start: number, end: number, ev: FlowEvent, fields: readonly string[] = []): void {
  // The input's bytes up to its last `}` (a byte that is never part of a
  // longer UTF-8 character), then the added fields: bytes made once where
  // they are shared (the direction's, an owner's, a shared attribution's).
  let close = end - 1;
  while (close > start && buf[close] !== 125 /* } */) close--;
  out.addRange(buf, start, close);
  const d = (ev.process ? DIRECTION_PROCESS : DIRECTION)[ev.direction as string];
  if (d !== undefined) out.addBytes(d);
  else out.add(',"direction":' + JSON.stringify(ev.direction) + (ev.process ? ',"process":' : ''));
  if (ev.process) out.addBytes(bytesOf(ev.process));
  if (ev.peer) {
    out.addBytes(PEER);
    out.addBytes(bytesOf(ev.peer));
  }
  // A frozen attribution is shared by many events (sources/sockdiag.ts: FOUND): its bytes are made once.
  const a = ev.attribution;
  if (a && Object.isFrozen(a)) out.addBytes(attributionOf(a));
  else out.add(',"attribution":' + JSON.stringify(a));
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i];
    const v = (ev as unknown as Record<string, unknown>)[f];
    if (v !== undefined) out.add(',' + JSON.stringify(f) + ':' + JSON.stringify(v));
  }
  out.addByte(125 /* } */);
  out.addByte(10 /* \n */);
}
