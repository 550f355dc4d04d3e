// Syslog over a byte stream (TCP, TLS): RFC 6587 framing. Octet counting
// (section 3.4.1, and the only framing RFC 5425 section 4.3 allows on TLS)
// and non-transparent framing with an LF trailer (section 3.4.2), plus a
// reader for octet-counted streams. Pure functions over strings and Buffers.

export type Framing = 'octet' | 'lf';

/** A message as ct-syslog holds it: text, or its UTF-8 bytes. */
export type Message = string | Buffer;

/** RFC 6587 section 3.4.1: `MSG-LEN SP SYSLOG-MSG`, MSG-LEN in octets. */
export function frameOctet(msg: string): string {
  return Buffer.byteLength(msg, 'utf8') + ' ' + msg;
}

// Non-transparent framing cannot carry an LF inside a message (section
// 3.4.2): it would end the message early. It is written as `#012`, the
// escape rsyslog itself uses for control characters it receives.
const LF = /\n/g;

/** RFC 6587 section 3.4.2: the message followed by LF, inner LFs escaped. */
export function frameLf(msg: string): string {
  return (msg.includes('\n') ? msg.replace(LF, '#012') : msg) + '\n';
}

/** A message for LF framing: itself when it holds no LF, else its text with the LFs escaped (frameLf). */
function lfSafe(m: Message): Message {
  if (typeof m === 'string') return m.includes('\n') ? m.replace(LF, '#012') : m;
  return m.indexOf(10) < 0 ? m : m.toString('utf8').replace(LF, '#012');
}

/**
 * Messages framed one after another into one Buffer, for one write: the
 * same bytes as frameOctet or frameLf of each, without a string made of
 * the batch (bytes are copied, text is encoded once, into place).
 */
export function frameAll(f: Framing, msgs: readonly Message[]): Buffer {
  const n = msgs.length;
  const items = f === 'lf' ? msgs.map(lfSafe) : msgs;
  const lens = new Array<number>(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const m = items[i];
    const len = typeof m === 'string' ? Buffer.byteLength(m, 'utf8') : m.length;
    lens[i] = len;
    total += len + 1 + (f === 'octet' ? digits(len) : 0);
  }
  const out = Buffer.allocUnsafe(total);
  let off = 0;
  for (let i = 0; i < n; i++) {
    const m = items[i];
    const len = lens[i];
    if (f === 'octet') {
      off += out.write(String(len), off, 'latin1');
      out[off++] = 32;
    }
    if (typeof m === 'string') out.write(m, off, 'utf8');
    else m.copy(out, off);
    off += len;
    if (f === 'lf') out[off++] = 10;
  }
  return out;
}

function digits(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

/**
 * Reads octet-counted frames from a stream of Buffers. `push()` returns the
 * complete messages so far; a malformed length throws (a receiver closes the
 * connection then, RFC 6587 section 3.4.1).
 */
export class OctetReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: Buffer[] = [];
    let off = 0;
    for (;;) {
      const sp = this.buf.indexOf(0x20, off);
      if (sp < 0) {
        if (this.buf.length - off > 10) throw new Error('octet-counted frame: no length');
        break;
      }
      const lenText = this.buf.toString('latin1', off, sp);
      if (!/^[1-9]\d{0,9}$/.test(lenText)) throw new Error(`octet-counted frame: bad length ${JSON.stringify(lenText)}`);
      const len = Number(lenText);
      if (sp + 1 + len > this.buf.length) break;
      out.push(this.buf.subarray(sp + 1, sp + 1 + len));
      off = sp + 1 + len;
    }
    this.buf = this.buf.subarray(off);
    return out;
  }

  /** Bytes held for an incomplete frame. */
  get pending(): number {
    return this.buf.length;
  }
}
