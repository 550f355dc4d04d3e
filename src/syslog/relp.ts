// RELP, rsyslog's Reliable Event Logging Protocol (librelp's doc/relp.md,
// "RELP FRAME" and "COMMAND SEMANTICS"): frames, the transaction number
// sequence, the `open` offers, and a reader for what the server sends back
// (`rsp` answers and the `serverclose` hint). The session itself (window,
// resending) lives in transports.ts; this module does no I/O.

/** TXNR is latched at 999,999,999; the next one is 1 (0 is reserved for hints). */
export const MAX_TXNR = 999_999_999;

export function nextTxnr(t: number): number {
  return t >= MAX_TXNR ? 1 : t + 1;
}

/** `TXNR SP COMMAND SP DATALEN [SP DATA] LF`; DATALEN counts octets of DATA. */
export function relpFrame(txnr: number, command: string, data = ''): string {
  if (data === '') return `${txnr} ${command} 0\n`;
  return `${txnr} ${command} ${Buffer.byteLength(data, 'utf8')} ${data}\n`;
}

/** `syslog` frames of messages (text or UTF-8 bytes) in one Buffer, each with the TXNR `next()` gives, in order. */
export function relpFrames(msgs: readonly (string | Buffer)[], next: () => number): Buffer {
  const n = msgs.length;
  const heads = new Array<string>(n);
  const lens = new Array<number>(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const m = msgs[i];
    const len = typeof m === 'string' ? Buffer.byteLength(m, 'utf8') : m.length;
    heads[i] = len === 0 ? `${next()} syslog 0` : `${next()} syslog ${len} `;
    lens[i] = len;
    total += heads[i].length + len + 1;
  }
  const out = Buffer.allocUnsafe(total);
  let off = 0;
  for (let i = 0; i < n; i++) {
    const m = msgs[i];
    off += out.write(heads[i], off, 'latin1');
    if (typeof m === 'string') out.write(m, off, 'utf8');
    else m.copy(out, off);
    off += lens[i];
    out[off++] = 10;
  }
  return out;
}

/**
 * The `open` offers. librelp (rsyslog's imrelp) still speaks and answers
 * relp_version=0, the version every deployed peer uses.
 */
export function openOffers(software: string): string {
  return `relp_version=0\nrelp_software=${software}\ncommands=syslog`;
}

export interface RelpFrame {
  txnr: number;
  command: string;
  data: Buffer;
}

/** The status of an `rsp`: its code (200 is OK) and the human text after it. */
export function rspStatus(data: Buffer): { code: number; text: string; rest: string } {
  const s = data.toString('utf8');
  const nl = s.indexOf('\n');
  const head = nl < 0 ? s : s.slice(0, nl);
  const m = /^(\d{3})(?: (.*))?$/.exec(head);
  return { code: m ? Number(m[1]) : 0, text: m ? m[2] ?? '' : head, rest: nl < 0 ? '' : s.slice(nl + 1) };
}

export class RelpProtocolError extends Error {}

/** Splits a byte stream into RELP frames; throws RelpProtocolError on a framing error. */
export class RelpReader {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private maxData = 128 * 1024 * 1024) {}

  push(chunk: Buffer): RelpFrame[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: RelpFrame[] = [];
    let off = 0;
    for (;;) {
      const f = this.parseOne(off);
      if (!f) break;
      out.push(f.frame);
      off = f.next;
    }
    this.buf = this.buf.subarray(off);
    return out;
  }

  private parseOne(off: number): { frame: RelpFrame; next: number } | null {
    const b = this.buf;
    // HEADER = TXNR SP COMMAND SP DATALEN: at most 9 + 1 + 32 + 1 + 9 octets.
    const sp1 = b.indexOf(0x20, off);
    if (sp1 < 0) return this.needMore(off, 10);
    const sp2 = b.indexOf(0x20, sp1 + 1);
    if (sp2 < 0) return this.needMore(off, 43);
    let end = sp2 + 1;
    while (end < b.length && b[end] >= 0x30 && b[end] <= 0x39) end++;
    if (end === b.length) return this.needMore(off, 53);
    const txnrText = b.toString('latin1', off, sp1);
    const command = b.toString('latin1', sp1 + 1, sp2);
    const lenText = b.toString('latin1', sp2 + 1, end);
    if (!/^\d{1,9}$/.test(txnrText) || !/^[A-Za-z]{1,32}$/.test(command) || !/^\d{1,9}$/.test(lenText)) {
      throw new RelpProtocolError(`bad frame header ${JSON.stringify(b.toString('latin1', off, Math.min(end + 1, off + 60)))}`);
    }
    const len = Number(lenText);
    if (len > this.maxData) throw new RelpProtocolError(`frame of ${len} bytes is too large`);
    if (len === 0) {
      if (b[end] !== 0x0a) throw new RelpProtocolError('frame without LF trailer');
      return { frame: { txnr: Number(txnrText), command, data: Buffer.alloc(0) }, next: end + 1 };
    }
    if (b[end] !== 0x20) throw new RelpProtocolError('no space before frame data');
    const dataEnd = end + 1 + len;
    if (dataEnd >= b.length) return null;
    if (b[dataEnd] !== 0x0a) throw new RelpProtocolError('frame without LF trailer');
    return { frame: { txnr: Number(txnrText), command, data: b.subarray(end + 1, dataEnd) }, next: dataEnd + 1 };
  }

  private needMore(off: number, maxHeader: number): null {
    if (this.buf.length - off > maxHeader) throw new RelpProtocolError('bad frame header');
    return null;
  }
}
