// ct-filter: keep or drop events by protocol, port, address, event kind,
// owner and direction; drop DNS, multicast, loopback, unattributed and the
// pipeline's own traffic. Kept lines are written exactly as they came in.
import { availableParallelism, networkInterfaces } from 'node:os';
import type { Argv } from 'yargs';
import { commandLine, parseArgs, warn, Failure, UsageError, type Command, type IO } from '../cli.js';
import { compileFilter, SpecError, DIRECTIONS, type FilterSpec } from '../filter/match.js';
import { SelfDetector } from '../filter/self.js';
import { broadcastOf } from '../filter/net.js';
import type { FilterProcessorOptions } from '../filter/processor.js';
import { protectDash, restoreDash, sourcesFrom } from '../input.js';
import { runLines } from '../lines/run.js';

const NAME = 'ct-filter';

function options(argv: string[], io: IO) {
  const y = withCriteria(commandLine(NAME, `Usage: ${NAME} [options] [file...]\n\nRead events (ct-event(5)) from files or stdin and write the ones that match, unchanged. Repeated values of one option are alternatives (OR); different options must all match (AND). Special records (overrun, stats) always pass.`)
    // Declared so that strict mode accepts file arguments.
    .command('$0 [file..]', false))
    .option('jobs', { type: 'number', description: 'Worker threads for bulk input such as files (default: CPUs, at most 4; 0: none)' })
    .example(`sudo ct-events | ct-attribute | ${NAME} -p tcp --dport 443`, 'HTTPS connections only')
    .example(`${NAME} --net 10.0.0.0/8 --net 192.168.0.0/16 -v`, 'everything not touching these networks')
    .example(`${NAME} --domain '*.example.com' --ancestor sshd`, 'connections to names under example.com by processes started under sshd')
    .example(`${NAME} --no-dns --no-multicast --no-loopback --no-self`, 'cut the noise before shipping')
    .example(`${NAME} --user alice --comm 'python*' saved.ndjson`, "alice's python processes, from a file")
    .example(`${NAME} --container '*' -e new`, 'new connections made from containers (and no stats or overrun records)')
    .example(`${NAME} -e new -e overrun`, 'new connections, and the records of lost events');
  return parseArgs(y, protectDash(argv), io).then((a) => a && restoreDash(a));
}

/**
 * ct-filter's criteria as options, defined once here and shared with
 * ct-top(1), which selects what it counts by the same criteria.
 */
export function withCriteria<T extends Argv<any>>(y: T): T {
  // Repeated flags give arrays by themselves; `array: true` would swallow the file arguments after them.
  const list = (description: string) => ({ type: 'string' as const, description, requiresArg: true });
  return y
    // The --no-* options are options of their own, not negations of --dns and friends.
    .parserConfiguration({ 'strip-aliased': true, 'boolean-negation': false })
    .option('proto', { alias: 'p', ...list('Protocols (tcp, udp, icmp, ...); repeatable or comma-separated') })
    .option('port', list('Port at either end, original or reply (NAT): 443, 8000-8999, 80,443'))
    .option('sport', list('Source port of the original direction'))
    .option('dport', list('Destination port of the original direction'))
    .option('net', list('Any address of the flow in this CIDR (original or reply), IPv4 or IPv6: 10.0.0.0/8, 2001:db8::/32, 192.168.1.0/255.255.255.0'))
    .option('src', list('Source address of the original direction in this CIDR'))
    .option('dst', list('Destination address of the original direction in this CIDR'))
    .option('event', { alias: 'e', ...list('Event kinds: new, update, destroy, flow (ct-flows\' records), and special records: overrun, stats, start, stop, attribution-stats, or special for all of them (without -e every special record passes)') })
    .option('uid', list('Owner uid: 1000, 1000-1999'))
    .option('user', list('Owner user name (glob)'))
    .option('comm', list('Owner command name (glob): curl, python*'))
    .option('exe', list('Owner executable path (glob): /usr/bin/*'))
    .option('unit', list('Owner systemd unit (glob): nginx.service, *.scope'))
    .option('container', list('Owner container id (full or 12-character), name or image (glob); * = any container'))
    .option('domain', list('The name the remote was resolved from, or one of its CNAMEs (glob, DNS names from ct-events): *.example.com'))
    .option('ancestor', list('Command name or executable of the owner\'s parent or a further ancestor (glob): sshd, */cron'))
    .option('direction', list(`Direction: ${DIRECTIONS.join(', ')}`))
    .option('invert', { alias: 'v', type: 'boolean', default: false, description: 'Keep what the criteria above do not match (the --no-* drops still apply)' })
    .option('no-dns', { type: 'boolean', default: false, description: 'Drop DNS, mDNS and LLMNR: TCP or UDP port 53, 5353 or 5355 at either end' })
    .option('no-multicast', { type: 'boolean', default: false, description: "Drop flows to multicast, 255.255.255.255 and this host's interfaces' broadcast addresses" })
    .option('no-loopback', { type: 'boolean', default: false, description: 'Drop flows from or to 127.0.0.0/8 and ::1' })
    .option('no-unattributed', { type: 'boolean', default: false, description: 'Drop flow events without a "process" (no owner found)' })
    .option('no-special', { type: 'boolean', default: false, description: 'Drop special records (overrun, stats, ...), which otherwise pass' })
    .option('no-self', { type: 'boolean', default: false, description: "Drop the pipeline's own traffic: processes in this process group (or session, without a terminal) and ct-* commands" }) as T;
}

/** The FilterSpec of parsed withCriteria() options (--no-multicast's broadcast addresses added). */
export function criteriaSpec(a: Record<string, unknown>): FilterSpec {
  const L = (k: string) => {
    const v = a[k];
    return v === undefined ? undefined : (Array.isArray(v) ? v : [v]).map(String);
  };
  const B = (k: string) => a[k] === true;
  const spec: FilterSpec = {
    proto: L('proto'), port: L('port'), sport: L('sport'), dport: L('dport'), net: L('net'), src: L('src'), dst: L('dst'),
    event: L('event'), uid: L('uid'), user: L('user'), comm: L('comm'), exe: L('exe'), unit: L('unit'), container: L('container'), domain: L('domain'), ancestor: L('ancestor'),
    direction: L('direction'), invert: B('invert'),
    noDns: B('no-dns'), noMulticast: B('no-multicast'), noLoopback: B('no-loopback'), noUnattributed: B('no-unattributed'), noSpecial: B('no-special'),
  };
  if (spec.noMulticast) spec.broadcast = localBroadcasts();
  return spec;
}

/** Directed broadcast addresses of this host's IPv4 interfaces. */
function localBroadcasts(): string[] {
  const out: string[] = [];
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family !== 'IPv4') continue;
      const b = broadcastOf(a.address, a.netmask);
      if (b) out.push(b);
    }
  }
  return out;
}

export async function main(argv: string[], io: IO): Promise<number> {
  const a = await options(argv, io);
  if (!a) return 0;
  const files = (((a as any).file ?? []) as (string | number)[]).map(String);
  const spec = criteriaSpec(a as Record<string, unknown>);
  const B = (k: string) => (a as Record<string, unknown>)[k] === true;
  const noSelf = B('no-self') ? { pid: process.pid } : null;
  // Build everything once here, so that a bad value is a usage error before any input is read.
  try {
    compileFilter({ ...spec, self: noSelf ? new SelfDetector(noSelf) : null });
  } catch (e) {
    if (e instanceof SpecError) throw new UsageError(e.message);
    if (noSelf) throw new Failure((e as Error).message);
    throw e;
  }
  const jobs = a.jobs === undefined ? Math.min(4, availableParallelism()) : Number(a.jobs);
  if (!Number.isInteger(jobs) || jobs < 0) throw new UsageError('--jobs must be a whole number >= 0');

  const procOptions: FilterProcessorOptions = { spec, noSelf };
  const warned = new Set<string>();
  const counts = await runLines({
    spec: { name: 'filter', options: procOptions, parallel: true },
    sources: sourcesFrom(files, io.stdin),
    out: io.stdout,
    signal: io.signal,
    jobs,
    onDiag: (text, d) => {
      if (d.once) {
        if (warned.has(d.once)) return;
        warned.add(d.once);
      }
      warn(io, NAME, text);
    },
    onSourceError: (src, err) => warn(io, NAME, `${src.name}: ${err.message}`),
  });
  // Skipped input is never silent: a summary, and exit 1 (see EXIT STATUS in ct-filter(1)).
  if (counts.bad) warn(io, NAME, `${counts.bad} bad line${counts.bad === 1 ? '' : 's'} skipped`);
  return counts.bad || counts.failedSources ? 1 : 0;
}

export const command: Command = { name: NAME, readsStdin: true, main };
