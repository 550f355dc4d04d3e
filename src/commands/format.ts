// ct-format: events as lines people (and other tools' parsers) read: a
// template with <field> placeholders, or a preset reproducing another tool's
// format. Special records go to stderr as notes, not into the output.
import { availableParallelism } from 'node:os';
import { commandLine, parseArgs, warn, UsageError, type Command, type IO } from '../cli.js';
import { protectDash, restoreDash, sourcesFrom } from '../input.js';
import { runLines } from '../lines/run.js';
import { compileFormat, type FormatProcessorOptions } from '../format/processor.js';
import { isTimeZone, isTsFormat, PRESETS, PRESET_NAMES, TemplateError, TS_FORMATS, type PresetOptions } from '../format/template.js';

const NAME = 'ct-format';

function options(argv: string[], io: IO) {
  const width = Math.max(...PRESET_NAMES.map((n) => n.length)) + 2;
  const presets = PRESET_NAMES.map((n) => `  ${n.padEnd(width)}${PRESETS[n].description}`).join('\n');
  const y = commandLine(NAME, `Usage: ${NAME} [options] [TEMPLATE] [file...]\n\nRender each event (ct-event(5)) from files or stdin as one line: by TEMPLATE, where <path> is a field (<src>, <reply.src>, <process.pid>, <process.cmdline>) and <path|text> gives a default, or by a preset. A first argument containing '<' is the template. Special records (overrun, stats) are written to stderr; dns records (data for ct-attribute) are skipped.\n\nPresets:\n${presets}`)
    // Declared so that strict mode accepts the template and file arguments.
    .command('$0 [args..]', false)
    .option('template', { alias: 't', type: 'string', requiresArg: true, description: 'The template (instead of the first argument)' })
    .option('preset', { alias: 'p', type: 'string', requiresArg: true, choices: PRESET_NAMES as string[], description: 'A preset format (-p is an old spelling: -p is --proto elsewhere)' })
    .option('missing', { alias: 'm', type: 'string', requiresArg: true, description: "Text for an absent field (default '-'; empty for csv and tsv)" })
    .option('ts-format', { type: 'string', requiresArg: true, description: `Timestamps: ${TS_FORMATS.join(', ')} or strftime (%Y-%m-%d %H:%M:%S.%f); default iso, or the preset's own` })
    .option('tz', { type: 'string', requiresArg: true, description: "Time zone for --ts-format: utc, local, or an IANA name such as Europe/Berlin (default utc, or the preset's own)" })
    .option('fields', { type: 'string', requiresArg: true, description: 'csv/tsv columns, as field paths (comma-separated or repeated)' })
    .option('agent', { type: 'string', requiresArg: true, description: 'notrust: the agent UUID (default: derived from the host name)' })
    .option('color', { type: 'boolean', default: true, description: 'Colour on a terminal unless NO_COLOR is set (--no-color: never)' })
    .option('jobs', { type: 'number', description: 'Worker threads for bulk input such as files (default: CPUs, at most 4; 0: none)' })
    .example(`sudo ct-events | ct-attribute | ${NAME}`, 'the default one-line summary')
    .example(`${NAME} '<ts> <process.user> <process.comm> -> <dst>:<dport>' saved.ndjson`, 'a template, over a saved file')
    .example(`${NAME} --ts-format '%H:%M:%S' --tz Europe/Berlin '<ts> <proto> <src> <dst> <process.pid|?> <process.cmdline|process.comm>'`, "Berlin's clock time, ? when no owner, the command name when the command line is gone")
    .example(`${NAME} --preset conntrack-logger`, "conntrack-logger's line, for existing greps")
    .example(`${NAME} --preset csv --fields ts,src,dst,dport,process.comm > flows.csv`, 'chosen columns as CSV');
  return parseArgs(y, protectDash(argv), io, { '-p': '--preset' }).then((a) => a && restoreDash(a));
}

export async function main(argv: string[], io: IO): Promise<number> {
  const a = await options(argv, io);
  if (!a) return 0;
  const positional = (((a as any).args ?? []) as (string | number)[]).map(String);
  let template = a.template as string | undefined;
  const preset = a.preset as string | undefined;
  if (template !== undefined && preset !== undefined) throw new UsageError('give a template or --preset, not both');
  if (template === undefined && preset === undefined && positional.length && positional[0].includes('<')) template = positional.shift();
  if (template !== undefined && !template.includes('<')) throw new UsageError(`the template '${template}' has no <field> placeholder`);
  const tsFormat = a['ts-format'] as string | undefined;
  if (tsFormat !== undefined && !isTsFormat(tsFormat)) throw new UsageError(`--ts-format: '${tsFormat}' is not ${TS_FORMATS.join(', ')} or a strftime pattern with %`);
  const tz = a.tz === undefined ? undefined : String(a.tz).toLowerCase() === 'utc' || String(a.tz).toLowerCase() === 'local' ? String(a.tz).toLowerCase() : String(a.tz);
  if (tz !== undefined && !isTimeZone(tz)) throw new UsageError(`--tz: '${tz}' is not utc, local or a time zone name (Europe/Berlin, America/New_York, ...)`);
  const fields = (a.fields === undefined ? [] : Array.isArray(a.fields) ? a.fields.map(String) : [String(a.fields)]).flatMap((f) => f.split(',')).map((f) => f.trim()).filter(Boolean);
  for (const f of fields) if (!/^[A-Za-z_][\w-]*(\.[\w-]+)*$/.test(f)) throw new UsageError(`--fields: '${f}' is not a field path`);
  if (fields.length && preset !== 'csv' && preset !== 'tsv') throw new UsageError('--fields is for --preset csv or tsv');
  const jobs = a.jobs === undefined ? Math.min(4, availableParallelism()) : Number(a.jobs);
  if (!Number.isInteger(jobs) || jobs < 0) throw new UsageError('--jobs must be a whole number >= 0');

  const opts: PresetOptions = {
    missing: a.missing as string | undefined,
    tsFormat,
    tz,
    color: !!io.stdoutIsTTY && !io.env.NO_COLOR && a.color !== false,
    fields: fields.length ? fields : undefined,
    agent: a.agent as string | undefined,
  };
  const spec: FormatProcessorOptions = template !== undefined ? { template, options: opts } : { preset: preset ?? 'default', options: opts };
  let header: string | undefined;
  try {
    header = compileFormat(spec).header;
  } catch (e) {
    if (e instanceof TemplateError) throw new UsageError(e.message);
    throw e;
  }
  if (header !== undefined) io.stdout.write(header + '\n');

  const counts = await runLines({
    // NoTrust's close records carry their open's uuid: that state needs one thread.
    spec: { name: 'format', options: spec, parallel: spec.preset !== 'notrust' },
    sources: sourcesFrom(positional, io.stdin),
    out: io.stdout,
    signal: io.signal,
    jobs,
    onDiag: (text) => warn(io, NAME, text),
    onSourceError: (src, err) => warn(io, NAME, `${src.name}: ${err.message}`),
  });
  // Skipped input is never silent: a summary, and exit 1 (see EXIT STATUS in ct-format(1)).
  if (counts.bad) warn(io, NAME, `${counts.bad} bad line${counts.bad === 1 ? '' : 's'} skipped`);
  return counts.bad || counts.failedSources ? 1 : 0;
}

export const command: Command = { name: NAME, readsStdin: true, main };
