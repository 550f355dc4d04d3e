// The one place that turns a command's main() into a process: argument
// errors (exit 2), runtime errors (exit 1), a closed stdout (EPIPE, exit 0,
// silent), SIGINT/SIGTERM, and the exit code. Commands never call
// process.exit(); library code never sees `process`.
import fs from 'node:fs';
import { isatty } from 'node:tty';
import { EventEmitter } from 'node:events';
import { Writable, Readable } from 'node:stream';
import yargs from 'yargs';
import type { Argv } from 'yargs';
import { VERSION } from './version.js';
import { nearest } from './suggest.js';
import { addon } from './native/addon.js';

export interface IO {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
  /** Aborted on SIGTERM, and on SIGINT unless the command reads a pipe (see run()). */
  signal: AbortSignal;
  /** Emits 'SIGUSR1' (and other informational signals) for commands that report on demand. */
  signals: EventEmitter;
  /** True when stdin is a terminal (no piped input). */
  stdinIsTTY?: boolean;
  stdoutIsTTY?: boolean;
}

export interface Command {
  name: string;
  /** Commands that read stdin finish their input on Ctrl-C instead of stopping (pino's SIGINT guard). */
  readsStdin?: boolean;
  /**
   * Write a pipe through Node's own stdout (libuv, non-blocking, written at
   * once) rather than an fs stream (a thread-pool hop per write): lower
   * latency for commands that answer one event at a time.
   */
  libuvStdout?: boolean;
  main(argv: string[], io: IO): Promise<number | void>;
}

/** A usage error: exit 2 with `Try 'ct-x --help'.` */
export class UsageError extends Error {}

/** A runtime failure the user can fix: one line, exit 1, no stack. */
export class Failure extends Error {
  constructor(message: string, public exitCode = 1) {
    super(message);
  }
}

export function isEpipe(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException | undefined;
  return !!e && (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED' || e.code === 'ERR_STREAM_PREMATURE_CLOSE' && (e as any).epipe === true);
}

/**
 * Parse argv with a yargs instance built by the command. Returns null when
 * --help or --version was answered (already written to io.stdout).
 */
export async function parseArgs<T>(y: Argv<T>, argv: string[], io: IO, renamed: Renamed = {}): Promise<T | null> {
  y.exitProcess(false).strict().version('version', 'Show the version number', VERSION).alias('version', 'V').help('help', 'Show this help').alias('help', 'h').wrap(Math.min(100, yargsWidth(io)));
  return await new Promise<T | null>((resolve, reject) => {
    let failure: string | null = null;
    y.fail((msg, err) => {
      failure = msg || (err && err.message) || 'invalid arguments';
    });
    y.parse(argv, {}, (err, args, output) => {
      if (failure || err) return reject(new UsageError(suggestFlag(failure || (err as Error).message, y)));
      for (const [old, now] of usedRenamed(argv, renamed)) io.stderr.write(`${(y as any).$0}: ${old} is now ${now} (see ctpipe(7)); the old spelling goes in a later release\n`);
      const a = args as any;
      if (a.help || a.version || a.h || a.V) {
        const text = unglue(output);
        io.stdout.write(text.endsWith('\n') ? text : text + '\n');
        return resolve(null);
      }
      resolve(args as T);
    });
  });
}

/**
 * Old spellings of options kept as aliases for a release (ctpipe(7), OPTION
 * VOCABULARY): old flag as typed ("-p", "--events") -> the name to use now.
 * The alias itself is declared on the option; this only says so on stderr.
 */
export type Renamed = Record<string, string>;

function usedRenamed(argv: string[], renamed: Renamed): [string, string][] {
  const seen = new Map<string, string>();
  for (const tok of argv) {
    if (tok === '--') break;
    if (tok.startsWith('--')) {
      const name = tok.split('=')[0];
      if (renamed[name]) seen.set(name, renamed[name]);
    } else if (/^-[A-Za-z]/.test(tok)) {
      // A cluster of short flags (-zf) names each letter.
      for (const ch of tok.slice(1)) {
        if (!/[A-Za-z]/.test(ch)) break;
        if (renamed['-' + ch]) seen.set('-' + ch, renamed['-' + ch]);
      }
    }
  }
  return [...seen];
}

/** yargs' "Unknown argument: protoo" with "; did you mean --proto?" when one option is near. */
function suggestFlag(message: string, y: Argv<any>): string {
  const m = /^Unknown arguments?: (.+)$/.exec(message);
  if (!m) return message;
  const opts = (y as any).getOptions();
  const names = new Set<string>(Object.keys(opts.key ?? {}));
  for (const list of Object.values(opts.alias ?? {}) as string[][]) for (const n of list) names.add(n);
  const longs = [...names].filter((n) => n.length > 1 && n !== '$0' && !/^[a-z]+[A-Z]/.test(n));
  // yargs also lists the camelCase twin of a dashed name (no-dsn, noDsn).
  const camel = (n: string) => n.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  const all = m[1].split(', ');
  const unknown = all.filter((u) => !all.some((o) => o !== u && o.includes('-') && camel(o) === u));
  const said = `Unknown argument${unknown.length === 1 ? '' : 's'}: ${unknown.join(', ')}`;
  const first = unknown[0];
  const near = first.length < 2 ? undefined : nearest(first, longs);
  return near ? `${said}; did you mean --${near}?` : said;
}

/**
 * yargs (cliui) glues an option's [type] to a description that fills its
 * column exactly ("on stderr[boolean]"): move the tags to a line of their
 * own, right-aligned as yargs aligns them.
 */
export function unglue(help: string): string {
  return help.split('\n').map((line) => {
    const m = /^(.*\S)(\[(?:boolean|string|number|array|count)\].*)$/.exec(line);
    if (!m) return line;
    return `${m[1]}\n${m[2].padStart(line.length)}`;
  }).join('\n');
}

function yargsWidth(io: IO): number {
  const cols = (io.stdout as any).columns;
  return typeof cols === 'number' && cols > 40 ? cols : 100;
}

/** A yargs instance without process access, for a command's options. */
export function commandLine(name: string, usage: string): Argv<{}> {
  return yargs().scriptName(name).usage(usage).parserConfiguration({ 'strip-aliased': true });
}

/** Write one diagnostic line: `ct-x: message`. */
export function warn(io: IO, name: string, message: string): void {
  io.stderr.write(`${name}: ${message}\n`);
}

/**
 * stdout for a process: a terminal keeps Node's own stream; a pipe or file
 * gets an fs stream, whose writes run off the main thread. Node makes pipes
 * blocking on Linux, which would let a slow reader stall ct-events' netlink
 * draining.
 *
 * Merely reading proc.stdout (yargs does, when it is imported) opens fd 1
 * in libuv, which sets O_NONBLOCK on it; fs writes to a full pipe then fail
 * with EAGAIN. So a pipe is reopened through /proc/self/fd/1, which gives a
 * new open file description with its own (blocking) flags; a regular file
 * or device ignores O_NONBLOCK and keeps fd 1; anything else (a socket, as
 * systemd's journal stream) uses proc.stdout, which handles EAGAIN itself.
 */
function makeStdout(proc: NodeJS.Process, libuvPipe = false): { stream: Writable; isTTY: boolean } {
  if (isatty(1)) return { stream: proc.stdout, isTTY: true };
  let st: fs.Stats | null = null;
  try {
    st = fs.fstatSync(1);
  } catch { /* closed stdout: let proc.stdout report it */ }
  if (st && st.isFIFO()) widenPipe(1);
  if (st && st.isFIFO() && !libuvPipe) {
    try {
      // A FIFO's open for writing waits for a reader, for ever if the
      // reader has gone: ask first without waiting (ENXIO: no reader, and
      // proc.stdout will report EPIPE), then open it blocking, which
      // returns at once while the reader is there.
      const probe = fs.openSync('/proc/self/fd/1', fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
      try {
        const fd = fs.openSync('/proc/self/fd/1', 'w');
        return { stream: fs.createWriteStream('', { fd, autoClose: true, highWaterMark: 256 * 1024 }), isTTY: false };
      } finally {
        fs.closeSync(probe);
      }
    } catch { /* no /proc, or no reader: fall through */ }
  }
  if (st && (st.isFile() || st.isCharacterDevice() || st.isBlockDevice())) {
    return { stream: fs.createWriteStream('', { fd: 1, autoClose: false, highWaterMark: 256 * 1024 }), isTTY: false };
  }
  return { stream: proc.stdout, isTTY: false };
}

/**
 * The capacity a stage gives the pipe it writes into: 1 MiB, the most an
 * unprivileged process may ask for by default (/proc/sys/fs/pipe-max-size).
 * At the kernel's 64 KiB a stage writing a flood waits and is woken again
 * for every 64 KiB its reader takes, a cost paid per byte: ct-attribute
 * with every enrichment on (lines of 2 KB, bench/enrich.bench.js) spent
 * about a quarter more CPU than without them into a 64 KiB pipe, and a
 * tenth more into a 1 MiB one.
 */
export const PIPE_BYTES = 1 << 20;

/** Best effort: a pipe at its user's limit (pipe-user-pages-soft), or a host without the addon, keeps its size. */
function widenPipe(fd: number): void {
  try {
    if (addon().pipeSize(fd, 0) < PIPE_BYTES) addon().pipeSize(fd, PIPE_BYTES);
  } catch { /* left as it is */ }
}

/** Run a command as this process. The bin shims call only this. */
export async function run(cmd: Command, proc: NodeJS.Process = process): Promise<void> {
  const debug = proc.env.CT_DEBUG === '1';
  const { stream: stdout, isTTY } = makeStdout(proc, cmd.libuvStdout);
  const controller = new AbortController();
  let epipe = false;
  const onEpipe = () => {
    if (epipe) return;
    epipe = true;
    proc.exitCode = 0;
    controller.abort(new Error('EPIPE'));
    // Nothing downstream reads any more: the command cleans up and returns;
    // if it cannot within a moment, leave quietly anyway.
    setTimeout(() => proc.exit(0), 2000).unref();
  };
  stdout.on('error', (err) => {
    if ((err as NodeJS.ErrnoException).code === 'EPIPE') onEpipe();
    else {
      proc.stderr.write(`${cmd.name}: stdout: ${err.message}\n`);
      proc.exit(1);
    }
  });
  if (stdout === proc.stdout) proc.stdout.on('error', (err) => { if ((err as NodeJS.ErrnoException).code === 'EPIPE') onEpipe(); });

  const stdinIsTTY = !!proc.stdin.isTTY;
  let signalCount = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    // A filter reading a pipe ignores Ctrl-C: the producer upstream gets it
    // too, ends, and this command finishes its input so nothing is lost.
    if (sig === 'SIGINT' && cmd.readsStdin && !stdinIsTTY) return;
    signalCount++;
    if (signalCount > 1) proc.exit(128 + (sig === 'SIGINT' ? 2 : 15));
    controller.abort(new Error(sig));
  };
  proc.on('SIGINT', onSignal);
  proc.on('SIGTERM', onSignal);
  const signals = new EventEmitter();
  const onUsr1 = () => signals.emit('SIGUSR1');
  proc.on('SIGUSR1', onUsr1);

  const io: IO = {
    stdin: proc.stdin,
    stdout,
    stderr: proc.stderr,
    env: proc.env,
    signal: controller.signal,
    signals,
    stdinIsTTY,
    stdoutIsTTY: isTTY,
  };
  let code = 0;
  try {
    const r = await cmd.main(proc.argv.slice(2), io);
    code = typeof r === 'number' ? r : 0;
  } catch (err) {
    if (epipe || isEpipe(err)) {
      code = 0;
    } else if (err instanceof UsageError) {
      proc.stderr.write(`${cmd.name}: ${err.message}\nTry '${cmd.name} --help'.\n`);
      code = 2;
    } else {
      const e = err as Error;
      proc.stderr.write(`${cmd.name}: ${e && e.message ? e.message : String(err)}\n`);
      if (debug && e && e.stack) proc.stderr.write(e.stack + '\n');
      code = err instanceof Failure ? err.exitCode : 1;
    }
  }
  proc.exitCode = code;
  proc.off('SIGINT', onSignal);
  proc.off('SIGTERM', onSignal);
  proc.off('SIGUSR1', onUsr1);
  if (stdout !== proc.stdout && !epipe) {
    await new Promise<void>((resolve) => {
      if (stdout.writableFinished) return resolve();
      stdout.once('error', () => resolve());
      stdout.end(() => resolve());
    });
  }
  if (epipe) proc.exitCode = 0;
  // Let the event loop drain naturally; nothing may keep it alive past here.
}
