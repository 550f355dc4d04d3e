// Syslog over a byte stream (TCP, TLS): RFC 6587 framing. Octet counting
// (section 3.4.1, and the only framing RFC 5425 section 4.3 allows on TLS)
// and non-transparent framing with an LF trailer (section 3.4.2), plus a
// reader for octet-counted streams. Pure functions over strings and Buffers.

export type Framing = 'octet' | 'lf';

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

export function framer(f: Framing): (msg: string) => string {
  return f === 'octet' ? frameOctet : frameLf;
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
