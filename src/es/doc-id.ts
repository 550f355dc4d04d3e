// Deterministic document ids: the same event always gets the same `_id`, so a
// retried bulk request, or a whole replay of a saved stream, overwrites (op
// type index) or is refused as a conflict (op type create) instead of adding
// a second copy.
//
// A flow event is identified by what the kernel said and when: host, ts,
// event, conntrack id and zone, protocol, the original tuple and the state.
// Fields later stages add (process, direction, ...) are left out on purpose:
// attributing the same recording again gives the same ids. Special records
// have no such identity, so their whole line is hashed.
//
// This module does no I/O.
import * as crypto from 'node:crypto';
import { isFlowEvent } from '../event.js';

// crypto.hash (Node >= 20.12) avoids the Hash object; older Node 20 falls back.
const sha1Url: (s: string) => string =
  typeof (crypto as any).hash === 'function'
    ? (s) => (crypto as any).hash('sha1', s, 'base64url')
    : (s) => crypto.createHash('sha1').update(s).digest('base64url');

const part = (v: unknown) => (v === undefined || v === null ? '' : String(v));

/** The `_id` of a record: 27 URL-safe base64 characters (SHA-1, 160 bits). */
export function documentId(r: Record<string, any>, line: string): string {
  if (!isFlowEvent(r)) return sha1Url('s\u0000' + line);
  // NUL separates the parts: kernel-made values never contain it.
  return sha1Url(
    'f\u0000' + part(r.host) + '\u0000' + part(r.ts) + '\u0000' + r.event + '\u0000' + part(r.id) + '\u0000' + part(r.zone) +
      '\u0000' + part(r.proto) + '\u0000' + part(r.src) + '\u0000' + part(r.sport) + '\u0000' + part(r.dst) + '\u0000' + part(r.dport) +
      '\u0000' + part(r.state),
  );
}
