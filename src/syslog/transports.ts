// The ways a syslog message leaves: the local datagram socket (/dev/log),
// UDP (RFC 5426), TCP (RFC 6587), TLS (RFC 5425) and RELP. Each transport
// opens one connection at a time and tells the shipper, in order, which of
// the messages handed to it are done (`confirm`), refused for good
// (`reject`), or that the connection is gone (`down`): whatever was handed
// over and not confirmed is then sent again on the next connection. What
// "done" means differs, and is the whole difference in reliability:
//   unix   the datagram is in the receiving daemon's socket queue (sendto()
//          succeeded; a full queue makes it wait, never drop)
//   relp   the server answered `200 OK` for it
//   tcp/tls  the bytes were handed to the kernel; TCP gives no word on what
//          the peer's program read, so a lost connection may lose some
//   udp    the datagram was handed to the kernel; a loss is only seen when
//          an ICMP port-unreachable comes back
// Queueing, back-pressure, reconnecting and draining are shipper.ts's. No
// module here touches `process`.
import net from 'node:net';
import tls from 'node:tls';
import dgram from 'node:dgram';
import dns from 'node:dns/promises';
import fs from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import { EventEmitter } from 'node:events';
import { frameAll, type Framing, type Message } from './framing.js';
import { packageUrl } from '../paths.js';
import { RelpReader, relpFrame, relpFrames, openOffers, rspStatus, nextTxnr, RelpProtocolError } from './relp.js';

export type { Message } from './framing.js';

export interface Handlers {
  /** The `n` oldest messages handed over and not yet settled are delivered (as far as this transport can tell). */
  confirm(n: number): void;
  /** The oldest message handed over and not yet settled was refused for good (e.g. too large); it is not sent again. */
  reject(err: Error): void;
  /** The connection is gone; nothing more comes from it. */
  down(err: Error, info?: { lostDatagrams?: number }): void;
  /** room() may be larger again. */
  writable(): void;
}

export interface Connection {
  /** How many more messages may be handed over now. */
  room(): number;
  send(msgs: Message[]): void;
  /**
   * End the session cleanly once everything handed over is settled; destroy()
   * after `ms`. Resolves with the error that ended it instead, if any: on an
   * unacknowledged transport the last messages may then be lost.
   */
  close(ms: number): Promise<Error | void>;
  destroy(): void;
}

export interface Transport {
  /** For messages: `tcp 127.0.0.1:514`. */
  readonly name: string;
  /** True when confirm() comes from the receiving side (RELP's answer, the daemon's socket queue), not just from our kernel. */
  readonly acknowledged: boolean;
  /**
   * What a lost connection may have cost, for the line that reports it,
   * given how many messages were sent on it; null when nothing confirmed
   * can be lost (RELP).
   */
  lossNote(sent: number): string | null;
  /** Said once when the server keeps closing new connections at once; null where that cannot be told (datagrams). */
  readonly quickCloseNote: string | null;
  connect(h: Handlers): Promise<Connection>;
}

/** A connection attempt that must not be retried: the configuration is wrong (e.g. the server's certificate is not trusted). */
export class FatalTransportError extends Error {}

/** `host`, `host:port`, `[v6]`, `[v6]:port`, or a bare IPv6 address. */
export function parseHostPort(s: string, defaultPort: number): { host: string; port: number } {
  let host = s.trim();
  let port = defaultPort;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(host);
  if (bracket) {
    host = bracket[1];
    if (bracket[2] !== undefined) port = Number(bracket[2]);
  } else if ((host.match(/:/g) ?? []).length === 1) {
    const i = host.lastIndexOf(':');
    const p = host.slice(i + 1);
    if (!/^\d+$/.test(p)) throw new Error(`bad port in '${s}'`);
    port = Number(p);
    host = host.slice(0, i);
  }
  if (host === '') throw new Error(`no host in '${s}'`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`bad port in '${s}'`);
  return { host, port };
}

function showHost(host: string, port: number): string {
  return (host.includes(':') ? `[${host}]` : host) + ':' + port;
}

const CONNECT_TIMEOUT_MS = 10_000;

/** Why an error happened, in one line: `connect ECONNREFUSED 127.0.0.1:514`. */
export function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e && e.message ? e.message : String(err);
}

// ---------------------------------------------------------------- TCP and TLS

export interface TlsOptions {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** Accept any certificate (tests, or a server known by other means). */
  insecure?: boolean;
  /** The name the server's certificate must carry (default: the host). */
  serverName?: string;
}

/** Messages per write: enough to amortise the write call, small enough to keep confirmations flowing. */
const STREAM_BATCH = 512;

// TLS alerts that say the server will not accept this client: retrying
// cannot help, so they end ct-syslog instead of being retried for ever.
const TLS_REFUSED = /ALERT_(CERTIFICATE|BAD_CERTIFICATE|UNKNOWN_CA|ACCESS_DENIED|HANDSHAKE_FAILURE|UNSUPPORTED_CERTIFICATE|DECRYPT_ERROR)/;

function streamError(e: Error): Error {
  const code = (e as NodeJS.ErrnoException).code ?? '';
  return TLS_REFUSED.test(code) ? new FatalTransportError(`TLS: the server refused this client: ${e.message}`) : e;
}

class StreamConnection implements Connection {
  private dead = false;

  constructor(private sock: net.Socket, private h: Handlers, private framing: Framing) {
    sock.setKeepAlive(true, 30_000);
    // The server sends nothing on a syslog stream; read to see FIN and RST.
    sock.on('data', () => {});
    sock.on('error', (e) => this.fail(e));
    sock.on('end', () => this.fail(new Error('closed by the server')));
    sock.on('close', () => this.fail(new Error('connection closed')));
    sock.on('drain', () => { if (!this.dead) h.writable(); });
  }

  private fail(e: Error): void {
    if (this.dead) return;
    this.dead = true;
    this.sock.destroy();
    this.h.down(streamError(e));
  }

  room(): number {
    return this.dead || this.sock.writableNeedDrain ? 0 : STREAM_BATCH;
  }

  send(msgs: Message[]): void {
    const n = msgs.length;
    // Write callbacks come in order; success means the kernel has the bytes.
    this.sock.write(frameAll(this.framing, msgs), (err) => {
      if (this.dead) return;
      if (err) this.fail(err);
      else this.h.confirm(n);
    });
  }

  close(ms: number): Promise<Error | void> {
    return new Promise((resolve) => {
      if (this.dead) return resolve();
      this.dead = true;
      let failure: Error | undefined;
      const t = setTimeout(() => this.sock.destroy(), ms);
      // An error while closing (a TLS alert, a reset) means the server may not have read everything.
      this.sock.on('error', (e) => { failure ??= streamError(e); });
      this.sock.once('close', () => {
        clearTimeout(t);
        resolve(failure);
      });
      this.sock.end();
    });
  }

  destroy(): void {
    this.dead = true;
    this.sock.destroy();
  }
}

function openSocket(host: string, port: number, tlsOpts: TlsOptions | null): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = tlsOpts
      ? tls.connect({
        host, port,
        ca: tlsOpts.ca, cert: tlsOpts.cert, key: tlsOpts.key,
        rejectUnauthorized: !tlsOpts.insecure,
        // SNI only for names (RFC 6066 section 3); the check below covers addresses too.
        servername: net.isIP(tlsOpts.serverName ?? host) ? undefined : tlsOpts.serverName ?? host,
        checkServerIdentity: (_h, cert) => (tlsOpts.insecure ? undefined : tls.checkServerIdentity(tlsOpts.serverName ?? host, cert)),
      })
      : net.connect({ host, port });
    const timer = setTimeout(() => sock.destroy(new Error(`connect timed out after ${CONNECT_TIMEOUT_MS / 1000} s`)), CONNECT_TIMEOUT_MS);
    const onError = (e: Error) => {
      clearTimeout(timer);
      sock.destroy();
      const code = (e as NodeJS.ErrnoException).code ?? '';
      // A certificate the client cannot accept will not become acceptable by retrying.
      if (tlsOpts && (/CERT|SELF_SIGNED|UNABLE_TO|HOSTNAME|ERR_TLS_CERT_ALTNAME/.test(code) || /certificate/i.test(e.message))) {
        reject(new FatalTransportError(`TLS: ${e.message}`));
      } else reject(e);
    };
    sock.once('error', onError);
    sock.once(tlsOpts ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      sock.off('error', onError);
      resolve(sock);
    });
  });
}

/** Syslog over TCP (RFC 6587) or TLS (RFC 5425), framed by octet counting or LF. */
export class StreamTransport implements Transport {
  readonly name: string;
  readonly acknowledged = false;
  readonly quickCloseNote: string;
  constructor(private host: string, private port: number, private framing: Framing, private tlsOpts: TlsOptions | null = null) {
    this.name = `${tlsOpts ? 'tls' : 'tcp'} ${showHost(host, port)}`;
    this.quickCloseNote = 'the server closes each new connection at once' + (tlsOpts ? ' (a TLS server that wants a client certificate does that: see --cert and --key)' : '');
  }

  lossNote(sent: number): string | null {
    return sent > 0 ? `${sent} message${sent === 1 ? ' was' : 's were'} sent on it, and the server never says what it received, so the last of them may be lost` : null;
  }

  async connect(h: Handlers): Promise<Connection> {
    const sock = await openSocket(this.host, this.port, this.tlsOpts);
    return new StreamConnection(sock, h, this.framing);
  }
}

// ---------------------------------------------------------------- UDP

/** Datagrams handed to the kernel and not yet called back. */
const UDP_WINDOW = 256;

/**
 * The pace for a receiver on this host when none is given: UDP has no flow
 * control, and a local syslog daemon shares the CPUs with the sender. At
 * this pace rsyslog's imudp with its default receive buffer (the kernel's
 * net.core.rmem_default, 208 KiB: about 90 datagrams of a 1 KB event) loses
 * nothing unless it is kept off a CPU for more than ~45 ms; an unpaced burst
 * fills that buffer in well under a millisecond.
 */
export const LOCAL_UDP_RATE = 2000;

/**
 * A token bucket of messages: `take()` says how many may go now (at most
 * `burst`, refilled at `rate` a second). Pure arithmetic on the clock given.
 */
export class Pacer {
  private tokens: number;
  private at: number;
  readonly burst: number;

  constructor(readonly rate: number, private now: () => number = () => performance.now()) {
    // 10 ms' worth at once: fewer timer wake-ups, still far below a receive buffer.
    this.burst = Math.max(1, Math.floor(rate / 100));
    this.tokens = this.burst;
    this.at = now();
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.at) * this.rate) / 1000);
    this.at = t;
  }

  /** Messages that may be sent now. */
  available(): number {
    this.refill();
    return Math.floor(this.tokens);
  }

  take(n: number): void {
    this.tokens -= n;
  }

  /** Milliseconds until a whole burst may go again. */
  waitMs(): number {
    this.refill();
    return Math.max(1, Math.ceil(((this.burst - this.tokens) * 1000) / this.rate));
  }
}

class UdpConnection implements Connection {
  private dead = false;
  private inflight = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private sock: dgram.Socket, private h: Handlers, private pacer: Pacer | null) {
    sock.on('error', (e) => this.fail(e));
  }

  private fail(e: Error, info?: { lostDatagrams?: number }): void {
    if (this.dead) return;
    this.dead = true;
    this.stopTimer();
    this.sock.close();
    this.h.down(e, info);
  }

  private stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  room(): number {
    if (this.dead) return 0;
    const window = UDP_WINDOW - this.inflight;
    if (!this.pacer) return window;
    const tokens = this.pacer.available();
    if (tokens <= 0 && !this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        if (!this.dead) this.h.writable();
      }, this.pacer.waitMs());
    }
    return Math.min(window, tokens);
  }

  send(msgs: Message[]): void {
    this.pacer?.take(msgs.length);
    for (const m of msgs) {
      this.inflight++;
      this.sock.send(m, (err) => {
        this.inflight--;
        if (this.dead) return;
        if (!err) {
          this.h.confirm(1);
          if (this.inflight === UDP_WINDOW / 2) this.h.writable();
          return;
        }
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EMSGSIZE') this.h.reject(err);
        // On a connected UDP socket, ECONNREFUSED reports an ICMP port
        // unreachable that an earlier datagram drew: that one is lost, and
        // nobody listens now.
        else if (code === 'ECONNREFUSED') this.fail(new Error('port unreachable: nothing listens there (ECONNREFUSED)'), { lostDatagrams: 1 });
        else this.fail(err);
      });
    }
  }

  async close(): Promise<void> {
    this.destroy();
  }

  destroy(): void {
    if (this.dead) return;
    this.dead = true;
    this.stopTimer();
    this.sock.close();
  }
}

/** True for a loopback address or one of this host's own interface addresses. */
export function isLocalAddress(address: string, interfaces = os.networkInterfaces()): boolean {
  if (/^127\./.test(address) || address === '::1' || /^::ffff:127\./i.test(address)) return true;
  return Object.values(interfaces).some((list) => (list ?? []).some((i) => i.address === address));
}

export interface UdpOptions {
  /**
   * Messages a second at most: a number, 0 for no pacing, or 'auto'
   * (default): LOCAL_UDP_RATE when the server is on this host, else none.
   */
  rate?: number | 'auto';
}

/** Syslog over UDP (RFC 5426): one message a datagram. */
export class UdpTransport implements Transport {
  readonly name: string;
  readonly acknowledged = false;
  readonly quickCloseNote = null;
  /** The pace of the last connection, messages a second (0: none); known once connected. */
  pace = 0;
  lossNote(): null {
    return null;
  }

  constructor(private host: string, private port: number, private o: UdpOptions = {}) {
    this.name = `udp ${showHost(host, port)}`;
  }

  async connect(h: Handlers): Promise<Connection> {
    const { address, family } = await dns.lookup(this.host);
    const sock = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      // A connected socket hears ICMP errors back (see UdpConnection).
      sock.connect(this.port, address, () => {
        sock.off('error', reject);
        resolve();
      });
    }).catch((e) => {
      sock.close();
      throw e;
    });
    const rate = this.o.rate ?? 'auto';
    this.pace = rate === 'auto' ? (isLocalAddress(address) ? LOCAL_UDP_RATE : 0) : rate;
    return new UdpConnection(sock, h, this.pace > 0 ? new Pacer(this.pace) : null);
  }
}

// ---------------------------------------------------------------- the local datagram socket

// Node's core cannot open an AF_UNIX SOCK_DGRAM socket. The N-API addon of
// node-unix-socket 0.2.7 can; its prebuilt binaries come in one npm package
// per platform (node-unix-socket-linux-x64-gnu, -musl), which ctpipe depends
// on directly: its JS package also lists platform packages the registry does
// not have, which leaves the lock file incomplete and `npm ci` failing. So
// the few lines of JS around the addon's DgramSocketWrap are here. Rules
// found by stress-testing 0.2.7: never call sendTo() or close() from inside
// one of its callbacks (re-entering spins, or frees twice), so every reaction
// is deferred with setImmediate; errors come as text, without a code.
interface DgramSocketWrap {
  init(self: DgramSocketWrap): void;
  startRecv(): void;
  sendTo(buf: Buffer, off: number, len: number, path: string, cb?: (err: Error | undefined) => void): void;
  close(): void;
}
type DgramSocketWrapCtor = new (ee: { emit(ev: string, ...a: unknown[]): boolean }) => DgramSocketWrap;

interface DgramSocketLike {
  on(ev: 'error', f: (e: Error) => void): void;
  sendTo(buf: Buffer, off: number, len: number, path: string, cb?: (err: Error | undefined) => void): void;
  close(): void;
}

/** One unbound datagram socket: the addon reports errors by emitting `_error` on the emitter it is given. */
class UnixDgramSocket extends EventEmitter implements DgramSocketLike {
  private wrap: DgramSocketWrap;
  private closed = false;
  constructor(Wrap: DgramSocketWrapCtor) {
    super();
    this.wrap = new Wrap({ emit: (ev: string, ...a: unknown[]) => (ev === '_error' ? this.emit('error', a[0]) : true) });
    this.wrap.init(this.wrap);
    this.wrap.startRecv();
  }
  sendTo(buf: Buffer, off: number, len: number, path: string, cb?: (err: Error | undefined) => void): void {
    if (this.closed) throw new Error('socket closed');
    this.wrap.sendTo(buf, off, len, path, cb);
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.wrap.close();
  }
}

let wrapCtor: DgramSocketWrapCtor | null = null;
function unixDgram(): new () => DgramSocketLike {
  if (!wrapCtor) {
    // From the package root: the same in tsc's output and in a command's bundle.
    const req = createRequire(packageUrl('package.json'));
    const errors: string[] = [];
    // glibc first; on a musl system that binary fails to load and the musl one is taken.
    for (const pkg of ['node-unix-socket-linux-x64-gnu', 'node-unix-socket-linux-x64-musl']) {
      try {
        wrapCtor = (req(pkg) as { DgramSocketWrap: DgramSocketWrapCtor }).DgramSocketWrap;
        break;
      } catch (e) {
        errors.push(`${pkg}: ${reason(e).split('\n')[0]}`);
      }
    }
    if (!wrapCtor) throw new FatalTransportError(`the local socket needs node-unix-socket's prebuilt binary, which exists for Linux x64 only (${errors.join('; ')}); use --udp 127.0.0.1 or --tcp to the local daemon instead`);
  }
  const W = wrapCtor;
  return class extends UnixDgramSocket {
    constructor() {
      super(W);
    }
  };
}

/** Datagrams queued in node-unix-socket and not yet called back. */
const UNIX_WINDOW = 32;

/** errno text as the module reports it (it gives no code). */
function unixErrorKind(e: Error): 'too-large' | 'gone' | 'other' {
  const m = e.message;
  if (/too long|EMSGSIZE|No buffer space/i.test(m)) return 'too-large';
  if (/refused|No such file|ENOENT|ECONNREFUSED|not a socket|Not a directory|Permission denied/i.test(m)) return 'gone';
  return 'other';
}

class UnixConnection implements Connection {
  private dead = false;
  private inflight = 0;

  constructor(private sock: DgramSocketLike, private path: string, private h: Handlers) {
    sock.on('error', (e) => setImmediate(() => this.fail(e)));
  }

  private fail(e: Error): void {
    if (this.dead) return;
    this.dead = true;
    const s = this.sock;
    setImmediate(() => s.close());
    this.h.down(e);
  }

  room(): number {
    return this.dead ? 0 : UNIX_WINDOW - this.inflight;
  }

  send(msgs: Message[]): void {
    for (const m of msgs) {
      const buf = typeof m === 'string' ? Buffer.from(m, 'utf8') : m;
      this.inflight++;
      this.sock.sendTo(buf, 0, buf.length, this.path, (err) => {
        setImmediate(() => {
          this.inflight--;
          if (this.dead) return;
          if (!err) {
            this.h.confirm(1);
            if (this.inflight === UNIX_WINDOW / 2) this.h.writable();
          } else if (unixErrorKind(err) === 'too-large') this.h.reject(err);
          else this.fail(err);
        });
      });
    }
  }

  async close(): Promise<void> {
    this.destroy();
  }

  destroy(): void {
    if (this.dead) return;
    this.dead = true;
    const s = this.sock;
    setImmediate(() => s.close());
  }
}

/** Nothing to connect to: said as it is, without the transport's name and errno in front. */
export class NoListenerError extends Error {}

/** The local syslog socket (`/dev/log`): an AF_UNIX datagram socket. */
export class UnixTransport implements Transport {
  readonly name: string;
  readonly acknowledged = true;
  readonly quickCloseNote = null;
  lossNote(sent: number): string | null {
    // A datagram in the socket queue of a daemon that stops goes with it, as does what the daemon read and had not yet written out.
    return sent > 0 ? 'messages still in the daemon\'s socket queue when it stopped went with it' : null;
  }

  constructor(private path: string) {
    this.name = `unix ${path}`;
  }

  async connect(h: Handlers): Promise<Connection> {
    const Ctor = unixDgram();
    let st: fs.Stats;
    try {
      st = await fs.promises.stat(this.path);
    } catch (e) {
      // The daemon makes the socket when it starts (rsyslog, systemd-journald's /run/systemd/journal/dev-log).
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NoListenerError(`no syslog daemon is listening on ${this.path}`);
      throw e;
    }
    if (!st.isSocket()) throw new Error(`${this.path} is not a socket`);
    return new UnixConnection(new Ctor(), this.path, h);
  }
}

// ---------------------------------------------------------------- RELP

export interface RelpOptions {
  /** Commands sent and not yet answered (librelp's default window is 128). */
  window?: number;
  /** `relp_software` offer. */
  software?: string;
  /** RELP over TLS (librelp's, as rsyslog's imrelp `tls="on"` speaks it): the session runs inside a TLS connection. */
  tls?: TlsOptions;
}

class RelpConnection implements Connection {
  private dead = false;
  private txnr: number;
  /** TXNRs of `syslog` commands not yet answered, oldest first. */
  private outstanding: number[] = [];
  private head = 0;
  private closing: { txnr: number; done: () => void } | null = null;

  constructor(private sock: net.Socket, private reader: RelpReader, private h: Handlers, lastTxnr: number, private window: number) {
    this.txnr = lastTxnr;
    sock.setKeepAlive(true, 30_000);
    // Each answer lets the next commands go: Nagle's wait for the peer's delayed ACK would stall the window.
    sock.setNoDelay(true);
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('error', (e) => this.fail(e));
    sock.on('end', () => this.fail(new Error('closed by the server')));
    sock.on('close', () => this.fail(new Error('connection closed')));
  }

  private get pending(): number {
    return this.outstanding.length - this.head;
  }

  private onData(d: Buffer): void {
    if (this.dead && !this.closing) return;
    let frames;
    try {
      frames = this.reader.push(d);
    } catch (e) {
      return this.fail(e as Error);
    }
    let ok = 0;
    for (const f of frames) {
      if (f.command === 'serverclose') {
        if (ok) this.h.confirm(ok);
        return this.fail(new Error('the server closed the session'));
      }
      if (f.command !== 'rsp') continue;
      if (this.closing && f.txnr === this.closing.txnr) {
        this.closing.done();
        continue;
      }
      // Answers come in the order of the commands (RELP spec, "DESCRIPTION").
      if (this.pending === 0 || this.outstanding[this.head] !== f.txnr) {
        if (ok) this.h.confirm(ok);
        return this.fail(new RelpProtocolError(`answer for transaction ${f.txnr}, expected ${this.pending ? this.outstanding[this.head] : 'none'}`));
      }
      const st = rspStatus(f.data);
      if (st.code !== 200) {
        if (ok) this.h.confirm(ok);
        return this.fail(new Error(`the server answered ${st.code} ${st.text}`.trim()));
      }
      this.head++;
      ok++;
    }
    if (this.head > 1024 && this.head * 2 > this.outstanding.length) {
      this.outstanding = this.outstanding.slice(this.head);
      this.head = 0;
    }
    if (ok) {
      this.h.confirm(ok);
      this.h.writable();
    }
  }

  private fail(e: Error): void {
    if (this.dead) return;
    this.dead = true;
    this.sock.destroy();
    this.h.down(e);
  }

  room(): number {
    return this.dead ? 0 : this.window - this.pending;
  }

  send(msgs: Message[]): void {
    this.sock.write(relpFrames(msgs, () => {
      this.txnr = nextTxnr(this.txnr);
      this.outstanding.push(this.txnr);
      return this.txnr;
    }));
  }

  /** RELP "Command close": send it, wait for its answer, then close the TCP connection. Every message was answered before, so no error matters here. */
  close(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.dead) return resolve();
      this.dead = true;
      const t = setTimeout(() => this.sock.destroy(), ms);
      this.sock.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      this.txnr = nextTxnr(this.txnr);
      this.closing = { txnr: this.txnr, done: () => this.sock.end() };
      this.sock.write(relpFrame(this.txnr, 'close'));
    });
  }

  destroy(): void {
    this.dead = true;
    this.sock.destroy();
  }
}

/** RELP over TCP or TLS: every message is answered by the server, and nothing unanswered is forgotten. */
export class RelpTransport implements Transport {
  readonly name: string;
  readonly acknowledged = true;
  readonly quickCloseNote: string;
  lossNote(): null {
    return null;
  }
  private window: number;
  private software: string;
  private tlsOpts: TlsOptions | null;

  constructor(private host: string, private port: number, o: RelpOptions = {}) {
    this.tlsOpts = o.tls ?? null;
    this.name = `${this.tlsOpts ? 'relp (TLS)' : 'relp'} ${showHost(host, port)}`;
    this.quickCloseNote = 'the server closes each new connection at once' + (this.tlsOpts ? ' (an imrelp with tls.authMode closes sessions of a client without an accepted certificate: see --cert and --key)' : '');
    this.window = o.window ?? 128;
    this.software = o.software ?? 'ctpipe';
  }

  async connect(h: Handlers): Promise<Connection> {
    const sock = await openSocket(this.host, this.port, this.tlsOpts);
    const reader = new RelpReader();
    // The session is usable only after the answer to `open` (RELP spec, "Command open").
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`no answer to RELP open within ${CONNECT_TIMEOUT_MS / 1000} s`)), CONNECT_TIMEOUT_MS);
      const done = (e?: Error) => {
        clearTimeout(timer);
        sock.off('data', onData);
        sock.off('error', onErr);
        sock.off('close', onClose);
        if (e) {
          sock.destroy();
          reject(e);
        } else resolve();
      };
      const onErr = (e: Error) => done(e);
      const onClose = () => done(new Error('connection closed during RELP open'));
      const onData = (d: Buffer) => {
        let frames;
        try {
          frames = reader.push(d);
        } catch (e) {
          return done(e as Error);
        }
        for (const f of frames) {
          if (f.command !== 'rsp' || f.txnr !== 1) continue;
          const st = rspStatus(f.data);
          if (st.code !== 200) return done(new Error(`RELP open refused: ${st.code} ${st.text}`));
          if (!/(^|\n)commands=([^\n]*,)?syslog(,|\n|$)/.test(st.rest)) return done(new FatalTransportError('the RELP server does not accept the syslog command'));
          return done();
        }
      };
      sock.on('data', onData);
      sock.once('error', onErr);
      sock.once('close', onClose);
      sock.write(relpFrame(1, 'open', openOffers(this.software)));
    });
    return new RelpConnection(sock, reader, h, 1, this.window);
  }
}
