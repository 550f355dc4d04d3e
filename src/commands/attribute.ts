// ct-attribute: add the owner (process, user, unit, container) to each flow event.
import { createReadStream } from 'node:fs';
import v8 from 'node:v8';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { commandLine, parseArgs, warn, UsageError, Failure, type Command, type IO } from '../cli.js';
import { LineSplitter, parseObject, type Line } from '../ndjson.js';
import { isFlowEvent, type FlowEvent, type ProcessInfo } from '../event.js';
import { Attributor } from '../attribute/attributor.js';
import { protectDash, restoreDash } from '../input.js';
import { NEEDS, missingCaps, ownEffectiveCaps } from '../caps.js';
import { NetnsResolver } from '../netns/resolver.js';
import { AuditSource } from '../audit/source.js';
import { AuditHook } from '../audit/hook.js';
import { BpfSource, findBpftrace, ownNetns } from '../bpf/source.js';
import { PortTable } from '../bpf/ports.js';
import { PortHook } from '../bpf/hook.js';
import { CgroupIds } from '../bpf/cgroups.js';
import { fstatSync } from 'node:fs';

const NAME = 'ct-attribute';

// Each process object's JSON, made once: a busy process owns many flows.
const processJson = new WeakMap<ProcessInfo, string>();
function jsonOf(p: ProcessInfo): string {
  let j = processJson.get(p);
  if (j === undefined) {
    j = JSON.stringify(p);
    processJson.set(p, j);
  }
  return j;
}

/**
 * The event's own text with direction, process, peer and attribution added
 * at its end: what JSON.stringify of the attributed event gives for a
 * compact input line, without serializing the event again.
 */
export function appendOwner(text: string, ev: FlowEvent): string {
  const end = text.lastIndexOf('}');
  let s = text.slice(0, end) + ',"direction":' + JSON.stringify(ev.direction);
  if (ev.process) s += ',"process":' + jsonOf(ev.process);
  if (ev.peer) s += ',"peer":' + jsonOf(ev.peer);
  return s + ',"attribution":' + JSON.stringify(ev.attribution) + '}\n';
}

/** Said once, at the first flow whose owner could not be read for want of privilege. */
function noPermissionMessage(): string {
  const missing = missingCaps(NEEDS.attribute, ownEffectiveCaps());
  return `other users' processes cannot be read (${missing.length ? `missing ${missing.join(' and ')}` : 'their /proc/PID/fd is not readable'}): their flows get attribution reason "no-permission"`;
}

function options(argv: string[], io: IO) {
  const y = commandLine(NAME, `Usage: ${NAME} [options] [file...]\n\nRead events (NDJSON from ct-events, or files) and add who owns each flow: "direction", "process" {pid, ppid, uid, user, gid, group, comm, exe, cmdline, cgroup, unit, container, inode, netns, start_time} and "attribution" {method, ok, reason}; forwarded flows of containers are looked up in their network namespaces. See ct-attribute(1).`)
    // Declared so that strict mode accepts file arguments.
    .command('$0 [file..]', false)
    .option('cmdline', { type: 'boolean', default: true, description: 'Include the command line (--no-cmdline leaves it out: it may hold secrets)' })
    .option('cache', { type: 'boolean', default: true, description: 'Remember each flow\'s owner by conntrack id for its UPDATE and DESTROY events (--no-cache looks every event up anew)' })
    .option('peer', { type: 'boolean', default: true, description: 'For local flows (both ends on this host) also name the peer process in "peer"' })
    .option('max-flows', { type: 'number', default: 100000, description: 'Flows remembered at most (least recently used are forgotten)' })
    .option('max-processes', { type: 'number', default: 20000, description: 'Processes remembered at most' })
    .option('stats', { type: 'boolean', default: false, description: 'At the end, print attribution counts on stderr' })
    .option('netns', { type: 'boolean', default: true, description: 'Find the owners of forwarded flows in the host\'s other network namespaces (containers); --no-netns leaves them "forwarded"' })
    .option('docker-root', { type: 'string', default: '/var/lib/docker', description: 'Docker\'s data root, for container names and images' })
    .option('containerd-state', { type: 'string', default: '/run/containerd', description: 'containerd\'s state directory, for container names and images (Kubernetes, nerdctl)' })
    .option('containers-storage', { type: 'string', array: true, default: ['/run/containers/storage', '/var/lib/containers/storage'], description: 'containers/storage roots, for container names and images (CRI-O, Podman); repeatable' })
    .option('bpf', { type: 'boolean', description: 'Also name owners from what kernel tracepoints saw at connect and send time (bpftrace): finds processes gone before sock_diag could see them. Default: on when run as root with bpftrace installed and reading a pipe, not a file; --no-bpf turns it off' })
    .option('bpf-window', { type: 'number', default: 30, description: 'With --bpf: how long an event whose socket is gone waits for the sighting of its port (ms)' })
    .option('audit', { type: 'boolean', default: false, description: 'Also name owners from the kernel\'s audit records of connect/sendto/sendmsg calls (NETLINK_AUDIT): finds processes gone before sock_diag could see them' })
    .option('audit-rules', { type: 'boolean', default: false, description: 'With --audit: add the audit rules it needs for the run (key ctpipe-PID) and remove exactly those at exit' })
    .option('audit-window', { type: 'number', default: 30, description: 'With --audit: a call matches an event when it began at most this many ms before the event was received; an event without an owner waits as long for a late record' })
    .option('audit-daemon', { type: 'boolean', default: false, description: 'With --audit: when no audit daemon is registered, register as it (records are then not written to the kernel log); released at exit' })
    .example(`sudo ct-events | ${NAME}`, 'who owns each new and closed connection')
    .example(`sudo ct-events | ${NAME} --audit --audit-rules`, 'also the owners of connections too brief to look up (audit)')
    .example(`sudo ct-events -p tcp | ${NAME} --no-cmdline | ct-format`, 'readable, without command lines')
    .example(`${NAME} < saved.ndjson`, 'attribute saved events (owners must still exist)')
    .example(`sudo ct-events | ${NAME} | jq -c 'select(.process.container) | [.process.container.name, .dst, .dport]'`, 'connections made by containers');
  return parseArgs(y, protectDash(argv), io).then((a) => a && restoreDash(a));
}

/** Whether descriptor `fd` is a regular file (input from a saved file, not a live pipe). */
function isRegularFile(fd: number): boolean {
  try {
    return fstatSync(fd).isFile();
  } catch {
    return false;
  }
}

export async function main(argv: string[], io: IO): Promise<number> {
  // A long-running filter whose live data is bounded (--max-flows,
  // --max-processes): let V8 grow its heap by 30% past what is live after
  // a full collection, not by its default factor of up to 4, so resident
  // memory follows the live data. The flag is read at each collection;
  // measured in bench/attribute.bench.js (RSS part).
  v8.setFlagsFromString('--heap-growing-percent=30');
  const a = await options(argv, io);
  if (!a) return 0;
  for (const k of ['max-flows', 'max-processes'] as const) {
    const v = Number(a[k]);
    if (!Number.isInteger(v) || v < 1) throw new UsageError(`--${k} must be a positive whole number`);
  }
  const audit = !!(a.audit || a['audit-rules'] || a['audit-daemon']);
  const windowMs = Number(a['audit-window']);
  if (!Number.isFinite(windowMs) || windowMs < 0 || windowMs > 60000) throw new UsageError('--audit-window must be a number of milliseconds from 0 to 60000');
  const files = (((a as any).file ?? []) as (string | number)[]).map(String);
  const bpfWindow = Number(a['bpf-window']);
  if (!Number.isFinite(bpfWindow) || bpfWindow < 0 || bpfWindow > 60000) throw new UsageError('--bpf-window must be a number of milliseconds from 0 to 60000');
  // Sightings are about the live system: a saved file is not.
  const live = !files.length && !isRegularFile(0);
  const bpfAsked = a.bpf as boolean | undefined;
  // bpftrace runs as root only, and loads BPF (CAP_SYS_ADMIN, or CAP_BPF and CAP_PERFMON).
  const bpf = bpfAsked ?? (live && process.geteuid?.() === 0 && missingCaps(NEEDS.bpf, ownEffectiveCaps()).length === 0 && findBpftrace() !== null);
  const portHook = bpf ? new PortHook(new PortTable(), { netns: ownNetns(), windowMs: bpfWindow, cmdline: a.cmdline as boolean, cgroups: new CgroupIds() }) : undefined;
  const bpfSource = portHook ? new BpfSource({
    table: portHook.table,
    onSighting: (k, s) => portHook?.sighted(k, s),
    onWarning: (m) => warn(io, NAME, `bpf: ${m}`),
  }) : null;
  /** Set when ct-attribute is stopping: bpftrace stopped before it attached is no news then. */
  let stopping = false;
  if (bpfSource && portHook) {
    if (bpfAsked) {
      // Asked for: fail before any output when it cannot run.
      try {
        await bpfSource.start();
      } catch (e) {
        throw new Failure(`bpf: ${(e as Error).message}`);
      }
    } else {
      // The default: events are attributed from the first on, and the
      // syscall-time method joins once bpftrace has attached its probes
      // (one to a few seconds of compiling). Waiting for it would leave the
      // first events' sockets time to close, and it has seen nothing of
      // the calls before it attached anyway.
      const hook = portHook;
      hook.active = false;
      bpfSource.start().then(() => { hook.active = true; }, (e) => {
        if (!stopping) warn(io, NAME, `bpf: not used: ${(e as Error).message}`);
      });
    }
  }
  let netns = null as NetnsResolver | null;
  const auditSource = audit ? new AuditSource({
    rules: a['audit-rules'] as boolean, daemon: a['audit-daemon'] as boolean, windowMs,
    pid: process.pid, arch: process.arch, onWarning: (m) => warn(io, NAME, `audit: ${m}`),
  }) : null;
  const auditHook = auditSource ? new AuditHook(auditSource.correlator, { cmdline: a.cmdline as boolean }) : undefined;
  const viewer = {
    selfUid: typeof process.geteuid === 'function' ? process.geteuid() : undefined,
    // Root without CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE is refused too.
    privileged: missingCaps(NEEDS.attribute, ownEffectiveCaps()).length === 0,
  };
  const attributor = new Attributor({
    cmdline: a.cmdline as boolean,
    flowCache: a.cache as boolean,
    peer: a.peer as boolean,
    maxFlows: Number(a['max-flows']),
    maxProcesses: Number(a['max-processes']),
    ...viewer,
    forwarded: a.netns ? (index, procs) => (netns = new NetnsResolver({
      index, procs, peer: a.peer as boolean, ...viewer,
      runtimes: { docker: String(a['docker-root']), containerd: String(a['containerd-state']), storage: (a['containers-storage'] as string[]).map(String) },
    })) : undefined,
    audit: auditHook,
    ports: portHook,
  });
  if (portHook) portHook.procs = attributor.procs;
  if (auditSource && auditHook) {
    auditSource.procs = attributor.procs;
    auditHook.users = attributor.procs.users;
    try {
      await auditSource.start();
    } catch (e) {
      await auditSource.close();
      stopping = true;
      await bpfSource?.close();
      attributor.close();
      throw new Failure(`audit: ${(e as Error).message}`);
    }
  }
  /** Records about lost audit records, placed in the stream where they were noticed. */
  const auditOverruns = (): string => {
    let s = '';
    if (auditSource) for (const r of auditSource.takeOverruns()) s += JSON.stringify(r) + '\n';
    return s;
  };
  let bad = 0;
  let warnedPermission = false;
  try {
    const sources = files.length ? files : ['-'];
    for (const file of sources) {
      const label = file === '-' ? 'stdin' : file;
      const input = file === '-' ? io.stdin : createReadStream(file);
      const splitter = new LineSplitter((no, len) => {
        bad++;
        warn(io, NAME, `${label}:${no}: line of ${len} bytes is too long, skipped`);
      });
      const attr = new Transform({
        writableObjectMode: true,
        readableObjectMode: false,
        writableHighWaterMark: 4,
        transform(batch: Line[], _enc, cb) {
          processBatch(batch).then((out) => cb(null, out || undefined), cb);
        },
      });
      const processBatch = async (batch: Line[]): Promise<string> => {
        attributor.beginBatch();
        const outs: (string | FlowEvent)[] = new Array(batch.length);
        const texts: string[] = new Array(batch.length);
        const work: Promise<void>[] = [];
        const byId = new Map<number, Promise<void>>();
        for (let i = 0; i < batch.length; i++) {
          const line = batch[i];
          let obj: Record<string, any>;
          try {
            obj = parseObject(line.text);
          } catch (e) {
            bad++;
            warn(io, NAME, `${label}:${line.no}: ${(e as Error).message}`);
            outs[i] = '';
            continue;
          }
          if (!isFlowEvent(obj) || typeof obj.id !== 'number' || typeof obj.src !== 'string') {
            if (isFlowEvent(obj)) {
              bad++;
              warn(io, NAME, `${label}:${line.no}: flow event without "id" or "src", passed on unattributed`);
            }
            outs[i] = line.text + '\n';
            continue;
          }
          const ev = obj as FlowEvent;
          outs[i] = ev;
          // The input text is kept and the owner appended to it, unless the
          // event was attributed before (its fields are then replaced).
          if (!('direction' in ev || 'process' in ev || 'peer' in ev || 'attribution' in ev)) texts[i] = line.text;
          // Events of one flow are attributed in order (NEW before DESTROY).
          const prev = byId.get(ev.id);
          if (!prev && attributor.attributeNow(ev)) continue;
          const p = prev ? prev.then(() => attributor.attribute(ev)) : attributor.attribute(ev);
          byId.set(ev.id, p);
          work.push(p);
        }
        if (work.length) await Promise.all(work);
        if (!warnedPermission && attributor.stats.reasons['no-permission']) {
          warnedPermission = true;
          warn(io, NAME, noPermissionMessage());
        }
        let out = '';
        for (let i = 0; i < outs.length; i++) {
          const o = outs[i];
          if (typeof o === 'string') out += o;
          else if (texts[i] !== undefined) out += appendOwner(texts[i], o);
          else out += JSON.stringify(o) + '\n';
        }
        return out + auditOverruns();
      };
      // SIGTERM: treat as end of input, so what was read is still written.
      const onAbort = () => { try { (input as any).push(null); } catch { /* already ended */ } };
      io.signal.addEventListener('abort', onAbort, { once: true });
      try {
        await pipeline(input, splitter, attr, io.stdout, { end: false });
      } finally {
        io.signal.removeEventListener('abort', onAbort);
      }
    }
  } finally {
    stopping = true;
    if (bpfSource) await bpfSource.close();
    if (auditSource) {
      await auditSource.close();
      const rest = auditOverruns();
      if (rest) io.stdout.write(rest);
    }
    attributor.close();
  }
  if (a.stats) {
    const s = attributor.stats;
    if (auditSource) {
      const c = auditSource.correlator.stats;
      warn(io, NAME, `audit: ${auditSource.stats.mode}, records ${auditSource.stats.records}, network calls ${c.records}, lost ${auditSource.stats.lost}; NEW events confirmed ${c.agree}, named by audit alone ${c.match}, ambiguous ${c.ambiguous}, disagreeing ${c.disagree}, no record ${c.none}, waited for a late record ${c.waited}`);
    }
    if (portHook && portHook.active) {
      const b = portHook.stats;
      warn(io, NAME, `bpf: sightings ${portHook.table.stats.sightings}, ports ${portHook.table.size}; NEW events asked ${b.asked}, named ${b.match}, ambiguous ${b.ambiguous}, no sighting ${b.none}, waited ${b.waited}`);
    }
    warn(io, NAME, `attributed ${s.ok}, unattributed ${s.failed} (${Object.entries(s.reasons).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}), from flow memory ${s.cached}, sock_diag lookups ${s.lookups}${netns ? `, other-namespace lookups ${netns.stats.lookups} (${netns.stats.ok} attributed, ${netns.namespaces.size} namespaces, ${netns.stats.tableReads} table reads)` : ''}`);
  }
  if (bad) {
    warn(io, NAME, `${bad} bad input line${bad === 1 ? '' : 's'} skipped`);
    return 1;
  }
  return 0;
}

export const command: Command = { name: NAME, readsStdin: true, libuvStdout: true, main };
