// Runs the bpftrace program of src/attribute/sources/bpf/script.ts as a child process and
// feeds its sightings to a PortTable. bpftrace compiles and loads the
// program (about a second of CPU, about 110 MB resident while it runs);
// start() resolves once the probes are attached, or rejects with
// bpftrace's own first error line. The child goes with ct-attribute: it is
// stopped on close(), and if ct-attribute dies it dies at its next write
// to the closed pipe (at the latest the script's tick, every 10 s).
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import path from 'node:path';
import { bpfScript } from './script.js';
import { PortTable, parseSighting, type Sighting } from './ports.js';

export class BpfError extends Error {}

/** The bpftrace executable on PATH, or null. */
export function findBpftrace(envPath = process.env.PATH ?? ''): string | null {
  for (const dir of envPath.split(':')) {
    if (!dir) continue;
    const p = path.join(dir, 'bpftrace');
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch { /* next */ }
  }
  return null;
}


export interface BpfSourceOptions {
  table: PortTable;
  /** The bpftrace executable (default: found on PATH). */
  bpftrace?: string;
  /** Called for each sighting kept, with its key. */
  onSighting?: (key: string, s: Sighting) => void;
  onWarning?: (m: string) => void;
  /** How long start() waits for the probes to attach (ms). */
  startTimeoutMs?: number;
}

export class BpfSource {
  private child: ChildProcess | null = null;
  private rest = '';
  private ready = false;
  private closing = false;
  readonly stats = { lines: 0, bad: 0 };

  constructor(private opts: BpfSourceOptions) {}

  start(): Promise<void> {
    const exe = this.opts.bpftrace ?? findBpftrace();
    if (!exe) return Promise.reject(new BpfError('bpftrace is not installed (Debian: apt-get install bpftrace)'));
    // Maps hold one key per socket and process in an interval (beyond that, a
    // send is printed each time instead: more lines, nothing lost), and one
    // per TCP socket in SYN_SENT. Hash maps are allocated whole: 6 and 9 MB.
    const env = { ...process.env, BPFTRACE_MAP_KEYS_MAX: '65536', BPFTRACE_STRLEN: '16' };
    const args = ['-B', 'line', '-e', bpfScript()];
    // bpftrace finds tracepoints in tracefs. Where it is not mounted (a
    // machine without systemd's mount, or `ip netns exec`, which mounts a
    // sysfs of its own), it is mounted for bpftrace alone, in a mount
    // namespace of its own: the system's mounts are left as they are.
    const [cmd, argv] = existsSync('/sys/kernel/tracing/events') || existsSync('/sys/kernel/debug/tracing/events')
      ? [exe, args]
      : ['unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', 'mount -t tracefs tracefs /sys/kernel/tracing && exec "$0" "$@"', exe, ...args]];
    // A process group of its own: Ctrl-C at the terminal stops the pipeline,
    // and ct-attribute stops bpftrace itself (close()), after the last event.
    // Were ct-attribute killed, bpftrace exits at its next line (at the
    // latest the script's 10 s tick) on the closed pipe.
    const child = spawn(cmd, argv, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.child = child;
    let errText = '';
    return new Promise<void>((resolve, reject) => {
      const fail = (m: string) => {
        if (this.ready) return;
        this.ready = true; // settled
        clearTimeout(timer);
        try { child.kill('SIGKILL'); } catch { /* gone */ }
        reject(new BpfError(m));
      };
      const timer = setTimeout(() => fail(`bpftrace did not attach its probes within ${Math.round((this.opts.startTimeoutMs ?? 15000) / 1000)} s`), this.opts.startTimeoutMs ?? 15000);
      child.once('error', (e) => fail(`cannot run bpftrace: ${e.message}`));
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (d: string) => {
        for (const line of d.split('\n')) {
          // Harmless on kernels that account BPF memory to the cgroup (5.11+).
          if (!line.trim() || /RLIMIT_MEMLOCK/.test(line)) continue;
          if (!this.ready) errText += (errText ? ' ' : '') + line.trim();
          else if (!this.closing) this.opts.onWarning?.(`bpftrace: ${line.trim()}`);
        }
      });
      child.once('exit', (code, sig) => {
        if (!this.ready) fail(`bpftrace exited (${sig ?? `status ${code}`})${errText ? `: ${errText.slice(0, 400)}` : ''}`);
        else if (!this.closing) this.opts.onWarning?.(`bpftrace exited (${sig ?? `status ${code}`}); owners are no longer seen at syscall time`);
        this.child = null;
      });
      child.stdout!.setEncoding('utf8');
      child.stdout!.on('data', (d: string) => {
        const text = this.rest + d;
        const lines = text.split('\n');
        this.rest = lines.pop()!;
        // Monotonic nanoseconds to epoch ms: the offset now (both clocks move together).
        const offset = Date.now() - Number(process.hrtime.bigint()) / 1e6;
        for (const line of lines) {
          if (!this.ready) {
            if (line === 'ready') {
              this.ready = true;
              clearTimeout(timer);
              resolve();
            }
            continue;
          }
          this.take(line, offset);
        }
      });
    });
  }

  private take(line: string, offset: number): void {
    if (!line) return;
    const s = parseSighting(line, offset);
    if (!s) {
      // bpftrace prints the maps it still holds as it exits.
      if (!this.closing && (line.startsWith('C ') || line.startsWith('S '))) this.stats.bad++;
      return;
    }
    this.stats.lines++;
    const key = this.opts.table.add(s);
    if (key) this.opts.onSighting?.(key, s);
  }

  /** Stop bpftrace (it detaches its probes as it exits). */
  async close(): Promise<void> {
    const c = this.child;
    if (!c) return;
    this.closing = true;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    try { c.kill('SIGTERM'); } catch { /* gone */ }
    const t = setTimeout(() => { try { c.kill('SIGKILL'); } catch { /* gone */ } }, 3000);
    await gone;
    clearTimeout(t);
  }
}
