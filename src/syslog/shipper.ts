// The reliable part of ct-syslog: a bounded queue between the input and one
// transport connection, with back-pressure (a full queue holds the writer's
// callback, so the pipeline stops reading stdin), or counted tail drops with
// `dropWhenFull`; reconnecting with capped exponential backoff; sending again
// whatever a lost connection had not confirmed; and draining the queue at the
// end within a time limit. It speaks to the user only through `notice` (one
// line per change of state, never one per message), and never touches
// `process`.
import { Writable } from 'node:stream';
import { FatalTransportError, NoListenerError, reason, type Connection, type Handlers, type Message, type Transport } from './transports.js';

export interface ShipperOptions {
  transport: Transport;
  /** Messages held at most (queued and in flight). */
  queue: number;
  /** When the queue is full, drop new messages (and count them) instead of waiting. */
  dropWhenFull?: boolean;
  /** At the end, how long to go on sending what is queued; 0: no limit. */
  drainTimeoutMs: number;
  /** First reconnect delay; it doubles on each failure up to backoffMaxMs. */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** A connection counts as regained once it has stayed up this long. */
  stableMs?: number;
  /** A one-line report for stderr. */
  notice: (line: string) => void;
  /** Random source for backoff jitter (tests pass a fixed one). */
  random?: () => number;
}

export interface ShipperStats {
  /** Messages taken from the input into the queue. */
  queued: number;
  /** Messages confirmed by the transport (see transports.ts for what that means for each). */
  sent: number;
  /** Dropped because the queue was full (dropWhenFull). */
  dropped: number;
  /** Refused for good by the transport (too large for a datagram). */
  refused: number;
  /** Datagrams known to be lost (ICMP port unreachable). */
  lost: number;
  /** Connections lost. */
  disconnects: number;
  /** Messages still queued when the drain time ran out. */
  unsent: number;
  /** The last connection ended with an error after its messages were handed over (TCP, TLS). */
  closeError?: string;
}

/** A fixed-size ring of messages. */
class Ring {
  private buf: (Message | undefined)[];
  private head = 0;
  length = 0;
  constructor(readonly capacity: number) {
    this.buf = new Array(capacity);
  }
  push(m: Message): void {
    this.buf[(this.head + this.length) % this.capacity] = m;
    this.length++;
  }
  at(i: number): Message {
    return this.buf[(this.head + i) % this.capacity] as Message;
  }
  shift(n: number): void {
    for (let i = 0; i < n; i++) this.buf[(this.head + i) % this.capacity] = undefined;
    this.head = (this.head + n) % this.capacity;
    this.length -= n;
  }
}

/** Messages taken from the queue per send() call at most. */
const MAX_BATCH = 512;

/**
 * A Writable (object mode) of messages: a message (text, or its UTF-8 bytes), or an array of them
 * (one input batch). It finishes when everything queued is sent, or when the
 * drain time has run out; `stats` says which.
 */
export class Shipper extends Writable {
  readonly stats: ShipperStats = { queued: 0, sent: 0, dropped: 0, refused: 0, lost: 0, disconnects: 0, unsent: 0 };
  private q: Ring;
  /** The first `inflight` queued messages have been handed to the connection and are not settled. */
  private inflight = 0;
  private conn: Connection | null = null;
  private connecting = false;
  private everConnected = false;
  /** Between a failure and a connection that stayed up: reported once at each end. */
  private outage: { since: number; sentBefore: number } | null = null;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private stableTimer: NodeJS.Timeout | null = null;
  private pumpScheduled = false;
  /** A write waiting for room: the rest of its batch and its callback. */
  private waiting: { msgs: Message[]; i: number; cb: (e?: Error | null) => void } | null = null;
  private dropping = 0;
  /** When the input ended, the drain clock started: until then 0. */
  private deadline = 0;
  private drainTimer: NodeJS.Timeout | null = null;
  /** _final's callback: the input is over and every write has been taken. */
  private finalCb: ((e?: Error | null) => void) | null = null;
  /** The drain time ran out: nothing more is sent, what comes is counted as unsent. */
  private abandoned = false;
  /** Closing or closed: no more connections. */
  private finished = false;
  private sentOnConn = 0;
  private connAt = 0;
  /** The connection that ends the outage is the first one ever. */
  private regainedFirst = false;
  /** Connections in a row that the server closed before they became stable. */
  private quickCloses = 0;
  private readonly o: Required<Omit<ShipperOptions, 'random'>> & { random: () => number };

  constructor(o: ShipperOptions) {
    super({ objectMode: true, highWaterMark: 1 });
    if (!(o.queue >= 1)) throw new RangeError('queue must be at least 1');
    this.o = { dropWhenFull: false, backoffMinMs: 200, backoffMaxMs: 30_000, stableMs: 1000, random: Math.random, ...o } as any;
    this.q = new Ring(o.queue);
  }

  /** Connect now rather than with the first message, so a wrong address shows at once. */
  start(): void {
    this.connect();
  }

  get connected(): boolean {
    return this.conn !== null;
  }

  get queued(): number {
    return this.q.length;
  }

  // ------------------------------------------------------------ input side

  override _write(chunk: Message | Message[], _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    const msgs = Array.isArray(chunk) ? chunk : [chunk];
    if (this.abandoned) {
      this.stats.unsent += msgs.length;
      return cb();
    }
    this.admit(msgs, 0, cb);
  }

  private admit(msgs: Message[], i: number, cb: (e?: Error | null) => void): void {
    const q = this.q;
    while (i < msgs.length && q.length < q.capacity) {
      q.push(msgs[i++]);
      this.stats.queued++;
    }
    if (i > 0 && this.dropping) this.endDropping();
    this.schedulePump();
    if (i === msgs.length) return cb();
    if (this.o.dropWhenFull) {
      const n = msgs.length - i;
      if (!this.dropping) this.o.notice(`${this.o.transport.name}: queue full (${q.capacity} messages): dropping new messages (--drop-when-full)`);
      this.dropping += n;
      this.stats.dropped += n;
      return cb();
    }
    // Back-pressure: the callback waits until confirmations make room.
    this.waiting = { msgs, i, cb };
  }

  private endDropping(): void {
    this.o.notice(`${this.o.transport.name}: queue has room again; ${this.dropping} message${this.dropping === 1 ? '' : 's'} dropped while it was full`);
    this.dropping = 0;
  }

  /**
   * The input is over (end of stdin, or a signal): start the drain clock.
   * Called by the command as soon as it knows, because _final() only comes
   * once every write was taken, and with a full queue and no server that is
   * never.
   */
  endInput(): void {
    if (this.deadline) return;
    const ms = this.o.drainTimeoutMs;
    this.deadline = ms > 0 ? Date.now() + ms : Infinity;
    if (ms > 0) this.drainTimer = setTimeout(() => this.giveUp(), ms);
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.endInput();
    this.finalCb = cb;
    if (this.abandoned) this.finish();
    else this.checkDrained();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.stopTimers();
    if (this.drainTimer) clearTimeout(this.drainTimer);
    this.conn?.destroy();
    this.conn = null;
    cb(err);
  }

  // ------------------------------------------------------------ output side

  private schedulePump(): void {
    if (this.pumpScheduled || !this.conn) return;
    this.pumpScheduled = true;
    // Always from a fresh tick: transports may not be re-entered from their own callbacks.
    setImmediate(() => this.pump());
  }

  private pump(): void {
    this.pumpScheduled = false;
    const c = this.conn;
    if (!c) return;
    const q = this.q;
    while (q.length > this.inflight) {
      const room = c.room();
      if (room <= 0) break;
      const n = Math.min(room, q.length - this.inflight, MAX_BATCH);
      const msgs = new Array<Message>(n);
      for (let k = 0; k < n; k++) msgs[k] = q.at(this.inflight + k);
      this.inflight += n;
      c.send(msgs);
      if (this.conn !== c) return;
    }
  }

  private settled(n: number): void {
    this.q.shift(n);
    this.inflight -= n;
    const w = this.waiting;
    if (w) {
      this.waiting = null;
      this.admit(w.msgs, w.i, w.cb);
    }
    this.schedulePump();
    this.checkDrained();
  }

  private handlers(): Handlers {
    let mine: Connection | null = null;
    const live = () => mine !== null && mine === this.conn;
    const h: Handlers & { bind(c: Connection): void } = {
      bind: (c) => { mine = c; },
      confirm: (n) => {
        if (!live()) return;
        this.stats.sent += n;
        this.sentOnConn += n;
        // An answer from the receiver itself proves the connection works; a local write proves nothing.
        if (this.outage && this.o.transport.acknowledged) this.regained();
        this.settled(n);
      },
      reject: (err) => {
        if (!live()) return;
        this.stats.refused++;
        if (this.stats.refused === 1) this.o.notice(`${this.o.transport.name}: a message was refused and is skipped: ${reason(err)} (see --max-size)`);
        this.settled(1);
      },
      down: (err, info) => {
        if (!live()) return;
        this.conn = null;
        this.inflight = 0;
        if (err instanceof FatalTransportError) return this.fatal(err);
        this.stats.disconnects++;
        const qn = this.o.transport.quickCloseNote;
        if (qn && Date.now() - this.connAt < this.o.stableMs && ++this.quickCloses === 3) this.o.notice(`${this.o.transport.name}: ${qn}`);
        if (info?.lostDatagrams) this.stats.lost += info.lostDatagrams;
        if (this.stableTimer) clearTimeout(this.stableTimer);
        this.stableTimer = null;
        if (!this.outage) {
          let line = `${this.o.transport.name}: connection lost: ${reason(err)}`;
          if (info?.lostDatagrams) line += `; ${info.lostDatagrams} datagram was lost`;
          else {
            const note = this.o.transport.lossNote(this.sentOnConn);
            if (note) line += `; ${note}`;
          }
          line += `; retrying, ${this.q.length} queued`;
          this.o.notice(line);
          this.outage = { since: Date.now(), sentBefore: this.stats.sent };
        }
        this.sentOnConn = 0;
        this.checkDrained();
        this.retryLater();
      },
      writable: () => {
        if (live()) this.schedulePump();
      },
    };
    return h;
  }

  private connect(): void {
    if (this.conn || this.connecting || this.finished || this.abandoned) return;
    this.connecting = true;
    const h = this.handlers() as Handlers & { bind(c: Connection): void };
    this.o.transport.connect(h).then(
      (c) => {
        this.connecting = false;
        if (this.finished || this.abandoned) return c.destroy();
        this.conn = c;
        h.bind(c);
        this.sentOnConn = 0;
        this.connAt = Date.now();
        const first = !this.everConnected;
        this.everConnected = true;
        if (this.outage) {
          const c0 = c;
          // Regained only once it stays up: a server that accepts and drops at once is still an outage.
          this.regainedFirst = first;
          this.stableTimer = setTimeout(() => {
            this.stableTimer = null;
            if (this.conn === c0) this.regained();
          }, this.o.stableMs);
        } else this.attempt = 0;
        this.schedulePump();
        this.checkDrained();
      },
      (err) => {
        this.connecting = false;
        if (this.finished || this.abandoned) return;
        if (err instanceof FatalTransportError && !this.everConnected) return this.fatal(err);
        if (!this.outage) {
          this.o.notice(err instanceof NoListenerError ? `${err.message}; retrying` : `${this.o.transport.name}: cannot connect: ${reason(err)}; retrying`);
          this.outage = { since: Date.now(), sentBefore: this.stats.sent };
        }
        this.retryLater();
      },
    );
  }

  /** The outage is over: say so once, and start the backoff from the beginning again. */
  private regained(): void {
    const o = this.outage;
    if (!o || !this.conn) return;
    if (this.stableTimer) clearTimeout(this.stableTimer);
    this.stableTimer = null;
    const secs = ((Date.now() - o.since) / 1000).toFixed(1);
    this.o.notice(`${this.o.transport.name}: connected${this.regainedFirst ? '' : ' again'} after ${secs} s`);
    this.outage = null;
    this.attempt = 0;
    this.quickCloses = 0;
  }

  /** A configuration the server will never accept: end with the reason (exit 1) instead of retrying for ever. */
  private fatal(err: Error): void {
    this.finished = true;
    this.stopTimers();
    this.conn?.destroy();
    this.conn = null;
    this.destroy(new Error(`${this.o.transport.name}: ${reason(err)}`));
  }

  /** Capped exponential backoff with +-20% jitter, so many senders do not return in step. */
  backoffMs(attempt: number): number {
    const base = Math.min(this.o.backoffMaxMs, this.o.backoffMinMs * 2 ** Math.min(attempt, 30));
    return Math.round(base * (0.8 + 0.4 * this.o.random()));
  }

  private retryLater(): void {
    if (this.retryTimer || this.finished || this.abandoned) return;
    // Nothing left to send at the end: no reason to reconnect.
    if (this.finalCb && this.q.length === 0 && !this.waiting) return;
    const ms = this.backoffMs(this.attempt++);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, ms);
  }

  private checkDrained(): void {
    if (!this.finalCb || this.finished || this.q.length > 0 || this.waiting) return;
    // Everything went out on this connection: it worked, however short it was.
    if (this.conn && this.sentOnConn > 0) this.regained();
    this.finished = true;
    this.stopTimers();
    const c = this.conn;
    this.conn = null;
    const left = this.deadline === Infinity ? 5000 : Math.max(100, this.deadline - Date.now());
    const done = (err?: Error | void) => {
      if (err) {
        this.stats.closeError = reason(err);
        this.o.notice(`${this.o.transport.name}: the connection ended with an error: ${reason(err)}; the server may not have received the last ${this.sentOnConn} message${this.sentOnConn === 1 ? '' : 's'} sent on it`);
      }
      this.finish();
    };
    if (c) c.close(left).then(done, done);
    else done();
  }

  /** The drain time is up: stop sending; what is queued, waiting or still to come is counted as unsent. */
  private giveUp(): void {
    this.drainTimer = null;
    if (this.finished || this.abandoned) return;
    this.abandoned = true;
    this.stopTimers();
    this.conn?.destroy();
    this.conn = null;
    this.inflight = 0;
    this.stats.unsent += this.q.length;
    this.q.shift(this.q.length);
    const w = this.waiting;
    this.waiting = null;
    if (w) {
      this.stats.unsent += w.msgs.length - w.i;
      w.cb();
    }
    if (this.finalCb) this.finish();
  }

  private finish(): void {
    this.finished = true;
    if (this.drainTimer) clearTimeout(this.drainTimer);
    this.drainTimer = null;
    const u = this.stats.unsent;
    if (u) this.o.notice(`${this.o.transport.name}: drain time limit reached: ${u} message${u === 1 ? '' : 's'} not sent`);
    this.summary();
    const cb = this.finalCb!;
    this.finalCb = null;
    cb();
  }

  private summary(): void {
    const s = this.stats;
    if (this.dropping) this.endDropping();
    if (s.disconnects || s.dropped || s.refused || s.lost) {
      this.o.notice(`${this.o.transport.name}: ${s.sent} sent, ${s.dropped} dropped (queue full), ${s.refused} refused, ` +
        `${s.disconnects} connection loss${s.disconnects === 1 ? '' : 'es'}` +
        (s.lost ? `, ${s.lost} datagram${s.lost === 1 ? '' : 's'} known lost` : '') +
        (s.disconnects && this.o.transport.lossNote(1) ? ' (messages sent just before a loss may be missing on the server)' : ''));
    }
  }

  private stopTimers(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.stableTimer) clearTimeout(this.stableTimer);
    this.retryTimer = this.stableTimer = null;
  }
}
