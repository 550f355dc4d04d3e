// ct-record: write the stream to log files named by a strftime pattern,
// rotated every N minutes on clock boundaries (and by size), each created
// 0600 and never over an existing file; no line lost or cut when the disk
// fills (src/record/recorder.ts). Lines pass through as they are.
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { commandLine, parseArgs, warn, Failure, UsageError, type Command, type IO } from '../cli.js';
import { MAX_LINE } from '../ndjson.js';
import { parseSize } from '../units.js';
import { Recorder, clockFrom, systemClock, type RecordResult } from '../record/recorder.js';
import { LineCutter } from '../record/lines.js';
import { compileNamePattern, Periods, PatternError } from '../record/pattern.js';

const NAME = 'ct-record';
const DEFAULT_BUFFER = '64m';

function options(argv: string[], io: IO) {
  const y = commandLine(NAME, `Usage: ${NAME} -f PATTERN [--minutes MINUTES] [--max-bytes SIZE] [--gzip] [--utc]\n\nWrite standard input, line by line and unchanged, to files named by the strftime PATTERN (%Y %m %d %H %M %S %j %s %%, ...; local time unless --utc). Each file is created with mode 0600 in a private directory and never over an existing file: a taken name gets .1, .2, ... before its extension. When the disk is full, lines are held in memory (--buffer) and written once there is room again; no line is cut or lost. SIGHUP closes the file and opens a new one (for logrotate).`)
    .option('file', { alias: 'f', type: 'string', requiresArg: true, demandOption: true, description: 'strftime pattern of the file names: /var/log/ct/tcp-%Y%m%d-%H%M%S.ndjson' })
    .option('minutes', { alias: 't', type: 'number', requiresArg: true, description: 'Start a new file every MINUTES (1-1440), on boundaries aligned to midnight: --minutes 15 at :00, :15, :30, :45 (-t is an old spelling: -t is --template elsewhere)' })
    .option('max-bytes', { type: 'string', requiresArg: true, description: 'Start a new file before one would grow past SIZE (100m, 1g); a longer single line gets a file of its own' })
    .option('gzip', { alias: 'z', type: 'boolean', default: false, description: 'Compress each closed file to NAME.gz in the background (the uncompressed file is removed once NAME.gz is on disk)' })
    .option('utc', { type: 'boolean', default: false, description: 'Names and rotation boundaries in UTC instead of local time' })
    .option('buffer', { type: 'string', default: DEFAULT_BUFFER, requiresArg: true, description: 'Bytes held in memory while writing fails (disk full); when reached, stop reading input' })
    .example(`sudo ct-events | ct-attribute | ${NAME} -f '/var/log/ct/tcp-%Y%m%d-%H%M%S.ndjson' --minutes 60 --gzip`, 'a new file every hour, compressed once closed')
    .example(`${NAME} -f '/var/log/ct/%Y/%m/%d.ndjson' --utc`, 'one file a day in UTC; directories made as needed (mode 0700)')
    .example(`${NAME} -f /var/log/ct/ct.ndjson`, 'one file, for logrotate (nocreate or create, postrotate: kill -HUP)')
    .example(`zcat /var/log/ct/tcp-*.ndjson.gz | ct-filter --net 192.168.1.100 --port 80 | ct-format`, 'reading back');
  return parseArgs(y, argv, io, { '-t': '--minutes' });
}

export async function main(argv: string[], io: IO): Promise<number> {
  const a = await options(argv, io);
  if (!a) return 0;
  const pattern = String(a.file);
  const tz = a.utc ? 'utc' : 'local';
  try {
    compileNamePattern(pattern, tz)(Date.now());
  } catch (e) {
    if (e instanceof PatternError) throw new UsageError(e.message);
    throw e;
  }
  let minutes: number | undefined;
  if (a.minutes !== undefined) {
    minutes = Number(a.minutes);
    try {
      new Periods(minutes, tz);
    } catch {
      throw new UsageError(`--minutes '${a.minutes}' must be a whole number of minutes from 1 to 1440`);
    }
  }
  let maxBytes: number | undefined;
  if (a['max-bytes'] !== undefined) {
    const v = parseSize(String(a['max-bytes']));
    if (!v) throw new UsageError(`--max-bytes '${a['max-bytes']}' is not a size (e.g. 100m, 1g, 500000)`);
    maxBytes = v;
  }
  const buffer = parseSize(String(a.buffer));
  if (!buffer) throw new UsageError(`--buffer '${a.buffer}' is not a size (e.g. 64m, 512k)`);

  // For tests (documented in ct-record(1)): the clock starts at this time and runs at the real rate.
  let clock = systemClock;
  const fake = io.env.CT_RECORD_CLOCK;
  if (fake) {
    const ms = Date.parse(fake);
    if (Number.isNaN(ms)) throw new UsageError(`CT_RECORD_CLOCK '${fake}' is not an ISO 8601 time`);
    clock = clockFrom(ms);
  }

  const rec = new Recorder({
    pattern, tz, minutes, maxBytes, gzip: !!a.gzip, buffer,
    uid: typeof process.geteuid === 'function' ? process.geteuid() : 0,
    clock,
    log: (m) => warn(io, NAME, m),
  });
  // Registered before the first file exists, so that a SIGHUP sent once it does never kills the process.
  const onHup = () => rec.reopen();
  process.on('SIGHUP', onHup);
  try {
    try {
      await rec.start();
    } catch (e) {
      throw new Failure((e as Error).message);
    }
    const cutter = new LineCutter(MAX_LINE, (no, len) => warn(io, NAME, `stdin:${no}: line longer than ${MAX_LINE} bytes (${len}), skipped`));
    const readError = await readInto(io, rec, cutter);
    const result: RecordResult = await rec.end();
    if (cutter.skipped) warn(io, NAME, `${cutter.skipped} over-long line${cutter.skipped === 1 ? '' : 's'} skipped`);
    if (readError) throw new Failure(`stdin: ${readError.message}`);
    return cutter.skipped || result.fsyncFailed ? 1 : 0;
  } finally {
    process.off('SIGHUP', onHup);
  }
}

/**
 * Read stdin into the recorder until its end or a signal, stopping while
 * the recorder holds its bound. Returns a read error, if any (what was read
 * before it is still written).
 */
function readInto(io: IO, rec: Recorder, cutter: LineCutter): Promise<Error | null> {
  const input = fileInput(io.stdin) ?? io.stdin;
  return new Promise((resolve) => {
    let done = false;
    const finish = (err: Error | null, why: 'end' | 'signal' | 'error') => {
      if (done) return;
      done = true;
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', onError);
      io.signal.removeEventListener('abort', onAbort);
      rec.off('drain', onDrain);
      if (why !== 'end') input.pause();
      const pending = cutter.pending;
      const last = cutter.finish();
      if (last.length) {
        if (why !== 'end') warn(io, NAME, `stdin: the last line read (${pending} bytes) had no newline yet when reading stopped; written with one added`);
        rec.write(last);
      }
      if (why === 'signal' && rec.failing && rec.held > 0) {
        warn(io, NAME, `${rec.held} bytes still to write; retrying until they are written (signal again to quit without them)`);
      }
      resolve(err);
    };
    const onData = (chunk: Buffer) => {
      const bufs = cutter.cut(chunk);
      if (bufs.length && !rec.write(bufs)) input.pause();
    };
    const onDrain = () => {
      if (!done) input.resume();
    };
    const onEnd = () => finish(null, 'end');
    const onError = (err: Error) => finish(err, 'error');
    const onAbort = () => finish(null, 'signal');
    rec.on('drain', onDrain);
    input.on('data', onData);
    input.on('end', onEnd);
    input.on('error', onError);
    if (io.signal.aborted) onAbort();
    else io.signal.addEventListener('abort', onAbort);
  });
}

/**
 * stdin redirected from a regular file: read it in 1 MiB chunks in the
 * thread pool, rather than Node's 64 KiB synchronous reads on this thread.
 */
function fileInput(stdin: Readable): Readable | null {
  const fd = (stdin as { fd?: unknown }).fd;
  if (typeof fd !== 'number') return null;
  try {
    if (!fs.fstatSync(fd).isFile()) return null;
  } catch {
    return null;
  }
  return fs.createReadStream('', { fd, autoClose: false, highWaterMark: 1 << 20 });
}

export const command: Command = { name: NAME, readsStdin: true, main };
