// ct-flows: one `flow` record per connection, from its NEW to its DESTROY,
// with start, stop, duration, final state, counters and the process that
// opened it. Interim records for long flows, a bound on open flows, and the
// open ones written out (not finished) when the input ends or on a signal.
import type { Writable } from 'node:stream';
import v8 from 'node:v8';
import { commandLine, parseArgs, warn, UsageError, type Command, type IO } from '../cli.js';
import { parseDuration } from '../units.js';
import { protectDash, restoreDash, sourcesFrom } from '../input.js';
import { runLines } from '../lines/run.js';
import { FlowsStage } from '../flows/processor.js';

const NAME = 'ct-flows';
export const DEFAULT_MAX_FLOWS = 100000;

function options(argv: string[], io: IO) {
  const y = commandLine(NAME, `Usage: ${NAME} [options] [file...]\n\nRead events (ct-event(5)) from files or stdin and write one {"event":"flow"} record per connection when its DESTROY comes: start and stop (kernel timestamps when the events have them), duration, final state and status, packets and bytes each way (when counters are on), both tuples, community_id, and the process, direction and attribution of its NEW. new, update and destroy events are consumed; every other record (overrun, stats, ...) passes through unchanged. Open flows are written out, marked "finished":false, when the input ends or on SIGTERM.`)
    // Declared so that strict mode accepts file arguments.
    .command('$0 [file..]', false)
    .option('report-every', { type: 'string', requiresArg: true, description: 'Also write an interim record (finished false, reason "interim") for each flow open this long, and again each time as long again: 90, 30s, 15m, 1h, 1d (default: never). Its counters so far are those of the last "counters" record of ct-events --counters-every' })
    .option('max-flows', { type: 'number', requiresArg: true, default: DEFAULT_MAX_FLOWS, description: 'Open flows kept at most; for room, the oldest is written out early (reason "evicted") and counted' })
    .example(`sudo ct-events | ct-attribute | ${NAME}`, 'one record per finished connection')
    .example(`sudo sysctl -w net.netfilter.nf_conntrack_acct=1 net.netfilter.nf_conntrack_timestamp=1`, 'byte counters and kernel start/stop times')
    .example(`sudo ct-events --dump | ct-attribute | ${NAME} --report-every 1h`, 'flows open before the start too; long ones hourly')
    .example(`${NAME} saved.ndjson | ct-format --preset ctrecorder-squeeze`, "ctrecorder's squeezed lines: start, end, both tuples")
    .example(`ct-filter --dport 443 saved.ndjson | ${NAME} | jq -c 'select(.finished) | [.process.comm, .dst, .counters.reply.bytes]'`, 'bytes received per HTTPS connection');
  return parseArgs(y, protectDash(argv), io).then((a) => a && restoreDash(a));
}

function drained(out: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('close', done);
      out.off('error', done);
      resolve();
    };
    out.once('drain', done);
    out.once('close', done);
    out.once('error', done);
  });
}

export async function main(argv: string[], io: IO): Promise<number> {
  const a = await options(argv, io);
  if (!a) return 0;
  // Open flows live long and die old. V8 lets its old generation grow to up
  // to four times what is live before collecting it: with --max-flows
  // 100000 full, 610 MB of RSS for 110 MB of open flows. Growing by half at
  // a time keeps RSS near what --max-flows holds (320 MB), at no cost
  // measurable in the throughput bench (more full collections only when
  // nearly every flow is evicted, and then no slower than before).
  v8.setFlagsFromString('--heap-growing-percent=50');
  const files = (((a as any).file ?? []) as (string | number)[]).map(String);
  const maxFlows = Number(a['max-flows']);
  if (!Number.isInteger(maxFlows) || maxFlows < 1) throw new UsageError('--max-flows must be a whole number >= 1');
  let reportEvery = 0;
  if (a['report-every'] !== undefined) {
    const d = parseDuration(String(a['report-every']));
    if (d === null || d < 1000) throw new UsageError(`--report-every: '${a['report-every']}' is not a duration of 1ms or more (90, 30s, 15m, 1h, 1d)`);
    reportEvery = d;
  }

  const stage = new FlowsStage({ maxFlows, reportEvery });
  const { tracker } = stage;
  const writeOut = () => {
    const s = stage.take();
    if (s.length && !io.stdout.destroyed && !io.stdout.writableEnded) io.stdout.write(s);
  };
  // A live input can be quiet for long: the stream clock then follows the
  // wall clock, and interim records still come when they are due.
  const timer = reportEvery
    ? setInterval(() => {
      tracker.advance();
      writeOut();
    }, Math.min(1000, Math.max(10, Math.floor(reportEvery / 1000 / 2))))
    : null;
  const report = () => {
    const c = tracker.counts;
    warn(io, NAME, `open ${tracker.size}, finished ${c.finished}, incomplete ${c.incomplete}, interim ${c.interim}, evicted ${c.evicted}, id reused ${c.idReused}`);
  };
  io.signals.on('SIGUSR1', report);

  let counts;
  try {
    counts = await runLines({
      spec: { name: 'flows', options: { stage }, parallel: false },
      sources: sourcesFrom(files, io.stdin),
      out: io.stdout,
      signal: io.signal,
      jobs: 0,
      onDiag: (text) => warn(io, NAME, text),
      onSourceError: (src, err) => warn(io, NAME, `${src.name}: ${err.message}`),
    });
  } finally {
    if (timer) clearInterval(timer);
    io.signals.off('SIGUSR1', report);
  }
  // Open flows are written out, not dropped: at the end of the input, or on
  // SIGTERM (and SIGINT from a terminal). Not when stdout is gone (EPIPE).
  const reason = io.signal.aborted ? (io.signal.reason as Error | undefined)?.message : undefined;
  if (reason !== 'EPIPE') {
    // In parts, waiting for the reader: a full table is hundreds of megabytes of text.
    let more = true;
    while (more && !io.stdout.destroyed) {
      more = tracker.flush(reason === undefined ? 'end-of-input' : 'signal', 4096);
      const s = stage.take();
      if (s.length && !io.stdout.write(s) && more) await drained(io.stdout);
    }
  }
  const c = tracker.counts;
  // Evictions are never silent: each evicted flow has its record, and here is the count.
  if (c.evicted) warn(io, NAME, `${c.evicted} flow${c.evicted === 1 ? ' was' : 's were'} written out early (reason "evicted") to stay within --max-flows ${maxFlows}`);
  if (counts.bad) warn(io, NAME, `${counts.bad} bad line${counts.bad === 1 ? '' : 's'} skipped`);
  return counts.bad || counts.failedSources ? 1 : 0;
}

export const command: Command = { name: NAME, readsStdin: true, main };
