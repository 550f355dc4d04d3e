// ct-doctor: check each prerequisite of the pipeline on this machine, in this
// network namespace, with this process's privileges, and say how to fix what
// is missing. One line per check; the exit status says whether any failed.
import { commandLine, parseArgs, UsageError, type Command, type IO } from '../cli.js';
import { machineChecks, type CheckResult } from '../doctor/checks.js';
import { checkOutput, parseSyslogTarget, parseEsTarget, TargetError, type OutputTarget } from '../doctor/outputs.js';

const NAME = 'ct-doctor';

function options(argv: string[], io: IO) {
  const y = commandLine(NAME, `Usage: ${NAME} [options]\n\nCheck what ctpipe needs on this machine: ctnetlink and conntrack events in the kernel, tracking in this network namespace, the counter and timestamp extensions, the capabilities held, access to other users' /proc entries, the nft command and ctpipe's native addon, and the outputs given. One line per check: PASS, WARN (works, but less) or FAIL, with the fix. Run it as the user and in the network namespace the pipeline runs in.`)
    .option('udp', { type: 'string', requiresArg: true, description: 'A syslog server to try over UDP, host[:port] as ct-syslog takes it; repeatable' })
    .option('tcp', { type: 'string', requiresArg: true, description: 'A syslog server to try over TCP, host[:port]; repeatable' })
    .option('tls', { type: 'string', requiresArg: true, description: 'A syslog server to try over TLS, host[:port]; repeatable' })
    .option('relp', { type: 'string', requiresArg: true, description: 'A RELP server to try, host[:port]; repeatable' })
    .option('unix', { type: 'string', requiresArg: true, description: 'A local syslog socket to try (/dev/log); repeatable' })
    .option('node', { alias: ['n', 'es'], type: 'string', requiresArg: true, description: 'An Elasticsearch/OpenSearch node URL to try (GET /), as ct-es takes it; repeatable (--es is the old spelling)' })
    .option('syslog', { type: 'string', requiresArg: true, description: 'Old spelling: udp://, tcp://, tls://, relp://host[:port] or unix:PATH; repeatable' })
    .option('timeout', { type: 'number', default: 3, description: 'Seconds to wait for each output' })
    .option('json', { type: 'boolean', default: false, description: 'One JSON object per check: {"check","status","detail","fix"}' })
    .option('strict', { type: 'boolean', default: false, description: 'Exit 1 on warnings too' })
    .example(`sudo ${NAME}`, 'everything ct-events | ct-attribute needs, as root')
    .example(`sudo -u ctpipe ${NAME}`, 'without the service\'s capabilities: what the user alone may do')
    .example(`sudo ip netns exec blue ${NAME}`, 'in another network namespace')
    .example(`${NAME} --tcp logs.example:514 --node https://es1:9200`, 'and whether the outputs answer')
    .example(`${NAME} --json | jq -r 'select(.status != "pass") | .fix'`, 'only the fixes');
  return parseArgs(y, argv, io, { '--syslog': '--udp, --tcp, --tls, --relp or --unix', '--es': '--node' });
}

const LABEL = { pass: 'PASS', warn: 'WARN', fail: 'FAIL' } as const;

/** One check as one line of text. */
export function formatLine(r: CheckResult): string {
  return `${LABEL[r.status]}  ${r.check.padEnd(13)} ${r.detail}${r.fix ? ` -- fix: ${r.fix}` : ''}`;
}

const list = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]).map(String);

export async function main(argv: string[], io: IO): Promise<number> {
  const a = await options(argv, io);
  if (!a) return 0;
  const timeout = Number(a.timeout);
  if (!(timeout > 0)) throw new UsageError('--timeout must be a positive number of seconds');
  const targets: OutputTarget[] = [];
  try {
    for (const s of list(a.syslog)) targets.push(parseSyslogTarget(s));
    for (const t of ['udp', 'tcp', 'tls', 'relp'] as const) for (const s of list(a[t])) targets.push(parseSyslogTarget(`${t}://${s}`, `--${t} '${s}'`));
    for (const s of list(a.unix)) targets.push(parseSyslogTarget(`unix:${s}`, `--unix '${s}'`));
    for (const s of list(a.node)) targets.push(parseEsTarget(s));
  } catch (e) {
    if (e instanceof TargetError) throw new UsageError(e.message);
    throw e;
  }
  const euid = typeof process.geteuid === 'function' ? process.geteuid() : 0;
  const results: CheckResult[] = await machineChecks({ proc: '/proc', euid });
  for (const r of await Promise.all(targets.map((t) => checkOutput(t, timeout * 1000)))) results.push(r);
  for (const r of results) io.stdout.write(a.json ? JSON.stringify(r) + '\n' : formatLine(r) + '\n');
  const failed = results.filter((r) => r.status === 'fail').length;
  const warned = results.filter((r) => r.status === 'warn').length;
  if (!a.json && (failed || warned)) {
    io.stderr.write(`${NAME}: ${failed} check${failed === 1 ? '' : 's'} failed, ${warned} warned\n`);
  }
  return failed || (a.strict && warned) ? 1 : 0;
}

export const command: Command = { name: NAME, main };
