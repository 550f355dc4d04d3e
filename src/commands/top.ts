// ct-top: a live view of the stream: the top processes, users,
// destinations, ports and containers by connections or bytes over a
// sliding window, redrawn in the terminal; plain-text tables every interval
// when standard output is not a terminal; `--once` for the summary of a
// file. Counting lives in src/top/, drawing in src/top/render.ts.
import fs from 'node:fs';
import tty from 'node:tty';
import { Writable } from 'node:stream';
import { commandLine, parseArgs, warn, UsageError, type Command, type IO } from '../cli.js';
import { withCriteria, criteriaSpec } from './filter.js';
import { compileFilter, SpecError, type FilterSpec } from '../filter/match.js';
import { SelfDetector } from '../filter/self.js';
import { protectDash, restoreDash, sourcesFrom } from '../input.js';
import { runLines } from '../lines/run.js';
import { parseDuration } from '../units.js';
import { nowMicros } from '../event.js';
import { DIMENSIONS, TopModel, type SortBy } from '../top/model.js';
import { TopStage } from '../top/processor.js';
import { renderJson, renderPlain, renderScreen, type ScreenState } from '../top/render.js';

const NAME = 'ct-top';

function options(argv: string[], io: IO) {
  const y = withCriteria(commandLine(NAME, `Usage: ${NAME} [options] [file...]\n\nRead events (ct-event(5)) from files or stdin and show the top processes, users, destinations, ports and containers by connections or bytes over a sliding window: a table redrawn in the terminal (keys: c, b sort; 1-5 one table, 0 all; q quit), plain-text tables every interval when standard output is not a terminal, or with --once the summary of the whole input. ct-filter's criteria select what is counted.`)
    .command('$0 [file..]', false))
    .option('sort', { type: 'string', choices: ['connections', 'bytes'], default: 'connections', description: 'Order of the rows (in the terminal: c, b)' })
    .option('window', { type: 'string', requiresArg: true, description: 'Count what the last this much of the stream brought: 60s, 5m, 1h (default 60s; with --once the whole input)' })
    .option('interval', { type: 'string', requiresArg: true, default: '2s', description: 'Redraw (or print the tables) this often: 500ms, 2s, 1m' })
    .option('limit', { type: 'number', requiresArg: true, default: 10, description: 'Rows per table in plain text and JSON (the terminal shows what fits)' })
    .option('once', { type: 'boolean', default: false, description: 'Read the whole input, print its summary, exit' })
    .option('json', { type: 'boolean', default: false, description: 'With --once: the summary as one JSON object' })
    .example(`sudo ct-events | ct-attribute | ${NAME}`, 'live: who connects where, redrawn every 2 s')
    .example(`sudo ct-events | ct-attribute | ${NAME} --sort bytes --window 5m -p tcp`, 'the heaviest TCP talkers of the last 5 minutes')
    .example(`${NAME} --once saved.ndjson`, 'the summary of a recorded stream')
    .example(`${NAME} --once --json --user alice saved.ndjson | jq .destination`, "where alice's processes connected, as JSON")
    .example(`sudo ct-events | ct-attribute | ${NAME} --interval 1m > top.log`, 'plain-text tables every minute, into a file');
  return parseArgs(y, protectDash(argv), io).then((a) => a && restoreDash(a));
}

const wallUs = nowMicros;

function seconds(flag: string, text: string, min: number): number {
  const us = parseDuration(text);
  if (us === null || us < min * 1e6) throw new UsageError(`--${flag}: '${text}' is not a duration of ${min < 1 ? `${min * 1000}ms` : `${min}s`} or more (500ms, 30s, 5m, 1h)`);
  return us / 1e6;
}

export async function main(argv: string[], io: IO): Promise<number> {
  const a = await options(argv, io);
  if (!a) return 0;
  const files = (((a as any).file ?? []) as (string | number)[]).map(String);
  const sort0 = a.sort as SortBy;
  const once = a.once === true;
  if (a.json === true && !once) throw new UsageError('--json goes with --once (a live view is not JSON)');
  const interval = seconds('interval', String(a.interval), 0.1);
  const window = a.window === undefined ? (once ? null : 60) : Math.round(seconds('window', String(a.window), 1));
  const limit = Number(a.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit must be a whole number >= 1');
  if (!files.length && io.stdinIsTTY) throw new UsageError(`${NAME} reads events from a pipe or from files (sudo ct-events | ct-attribute | ${NAME})`);
  const spec: FilterSpec = criteriaSpec(a as Record<string, unknown>);
  try {
    spec.self = (a as Record<string, unknown>)['no-self'] === true ? new SelfDetector({ pid: process.pid }) : null;
    compileFilter(spec);
  } catch (e) {
    if (e instanceof SpecError) throw new UsageError(e.message);
    throw e;
  }

  const model = new TopModel({ window });
  const stage = new TopStage({ model, spec, now: wallUs });
  const interactive = !once && io.stdoutIsTTY === true;
  // In the terminal, diagnostics would be drawn over: they wait, counted on
  // the screen, and go to stderr when the view is left.
  const held: string[] = [];
  let heldCount = 0;
  const diag = (text: string) => {
    if (!interactive) return warn(io, NAME, text);
    heldCount++;
    if (held.length < 100) held.push(text);
  };
  const stop = new AbortController();
  const onAbort = () => stop.abort(io.signal.reason);
  if (io.signal.aborted) onAbort();
  io.signal.addEventListener('abort', onAbort, { once: true });
  let ended = false;
  const running = runLines({
    spec: { name: 'top', options: { stage }, parallel: false },
    sources: sourcesFrom(files, io.stdin),
    out: new Writable({ write: (_c, _e, cb) => cb() }),
    signal: stop.signal,
    jobs: 0,
    onDiag: (text) => diag(text),
    onSourceError: (src, err) => diag(`${src.name}: ${err.message}`),
  }).finally(() => { ended = true; });

  try {
    if (once) {
      const counts = await running;
      const snap = model.snapshot(sort0, limit);
      io.stdout.write(a.json === true ? renderJson(snap, sort0) : renderPlain(snap, sort0, limit));
      return exitCode(io, counts);
    }
    if (!interactive) {
      const print = () => {
        if (!ended) model.advance(wallUs());
        io.stdout.write(renderPlain(model.snapshot(sort0, limit), sort0, limit) + '\n');
      };
      const timer = setInterval(print, interval * 1000);
      let counts;
      try {
        counts = await running;
      } finally {
        clearInterval(timer);
      }
      if (!io.signal.aborted || (io.signal.reason as Error | undefined)?.message !== 'EPIPE') print();
      return exitCode(io, counts);
    }
    return await live(io, model, running, stop, { sort: sort0, view: 'all' }, interval, () => ended, () => heldCount, held);
  } finally {
    io.signal.removeEventListener('abort', onAbort);
  }
}

function exitCode(io: IO, counts: { bad: number; failedSources: number }): number {
  if (counts.bad) warn(io, NAME, `${counts.bad} bad line${counts.bad === 1 ? '' : 's'} skipped`);
  return counts.bad || counts.failedSources ? 1 : 0;
}

/** The terminal view: the alternate screen, keys from /dev/tty, a frame every interval and on each key, until q (or a signal). */
async function live(
  io: IO, model: TopModel, running: Promise<{ bad: number; failedSources: number; lines: number }>, stop: AbortController,
  st: ScreenState, interval: number, ended: () => boolean, heldCount: () => number, held: string[],
): Promise<number> {
  const out = io.stdout as Writable & { columns?: number; rows?: number };
  let keys: tty.ReadStream | null = null;
  try {
    keys = new tty.ReadStream(fs.openSync('/dev/tty', 'r'));
    keys.setRawMode(true);
  } catch {
    keys = null; // No terminal to read keys from: the view runs until a signal.
  }
  let quit: () => void = () => {};
  const quitting = new Promise<void>((r) => { quit = r; });
  const draw = () => {
    if (!ended()) model.advance(wallUs());
    const n = heldCount();
    st.note = [ended() ? 'input ended' : '', n ? `${n} diagnostic${n === 1 ? '' : 's'} (shown on exit)` : ''].filter(Boolean).join(', ') || undefined;
    out.write(renderScreen(model.snapshot(st.sort, 100), st, out.columns || 80, out.rows || 24));
  };
  const VIEWS = ['all', ...DIMENSIONS] as const;
  const onKey = (d: Buffer) => {
    for (const ch of d.toString('latin1')) {
      if (ch === 'q' || ch === 'Q' || ch === '\x03' || ch === '\x04') return quit();
      if (ch === 'c') st.sort = 'connections';
      else if (ch === 'b') st.sort = 'bytes';
      else if (ch >= '0' && ch <= '5') st.view = VIEWS[Number(ch)];
      else if (ch === 'a') st.view = 'all';
    }
    draw();
  };
  keys?.on('data', onKey);
  out.write('\x1b[?1049h\x1b[?25l');
  const onResize = () => draw();
  out.on('resize', onResize);
  const timer = setInterval(draw, interval * 1000);
  draw();
  const onAbort = () => quit();
  io.signal.addEventListener('abort', onAbort, { once: true });
  let counts = { bad: 0, failedSources: 0, lines: 0 };
  running.then((c) => { counts = c; draw(); }, () => quit());
  try {
    await quitting;
  } finally {
    clearInterval(timer);
    io.signal.removeEventListener('abort', onAbort);
    out.off('resize', onResize);
    out.write('\x1b[?25h\x1b[?1049l');
    if (keys) {
      keys.off('data', onKey);
      try { keys.setRawMode(false); } catch { /* the terminal is gone */ }
      keys.destroy();
    }
  }
  if (!ended()) {
    stop.abort(new Error('quit'));
    counts = await running.catch(() => counts);
  }
  for (const h of held) warn(io, NAME, h);
  if (heldCount() > held.length) warn(io, NAME, `... and ${heldCount() - held.length} more`);
  return exitCode(io, counts);
}

export const command: Command = { name: NAME, readsStdin: true, main };
