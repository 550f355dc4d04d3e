// A cgroup v2 id (what bpf_get_current_cgroup_id() gives: the inode of the
// cgroup's directory in the cgroup2 filesystem) to its path, as the `0::`
// line of /proc/PID/cgroup shows it: so that a process gone before /proc
// could be read still has its cgroup, systemd unit and container. The
// hierarchy is walked once, and again at once for an id no walk was made
// for yet (a cgroup made since the last walk: a container or unit just
// started, its first process the one to name); an id a walk did not find
// (a cgroup removed) walks it again only after `rescanMs`. An id is not
// judged new by being above every id the last walk saw: that rule (cgroup2
// numbers directories in increasing order) left a Docker-shaped cgroup
// unnamed in 2 of about 40 CI rehearsals, for a cause not found;
// under `ip netns exec` (a sysfs of its own, without the cgroup mounts) it
// is read through /proc/1/root, the initial mount namespace.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** Mount points of cgroup2 filesystems in a mountinfo text. */
export function cgroup2Mounts(mountinfo: string): string[] {
  const out: string[] = [];
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fstype = line.slice(sep + 3).split(' ')[0];
    if (fstype !== 'cgroup2') continue;
    const mount = line.slice(0, sep).split(' ')[4];
    // Octal escapes for spaces and the like (\040).
    if (mount) out.push(mount.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8))));
  }
  return out;
}

export interface CgroupIdsOptions {
  /** The cgroup2 root directory; default: found in /proc/self/mountinfo, else /proc/1/mountinfo under /proc/1/root. */
  root?: string | null;
  rescanMs?: number;
  /** Directories walked at most (a bound on the time one walk takes). */
  maxDirs?: number;
  now?: () => number;
}

/** Unknown ids remembered at most (each walks the hierarchy once; then a walk per `rescanMs` at most). */
const MISSED_MAX = 4096;

export class CgroupIds {
  private root: string | null | undefined;
  private paths = new Map<number, string>();
  private scannedAt = -Infinity;
  /** Ids a walk was made for and did not find (at most MISSED_MAX, then forgotten). */
  private missed = new Set<number>();
  /** Walks of the hierarchy so far. */
  scans = 0;
  private readonly rescanMs: number;
  private readonly maxDirs: number;
  private readonly now: () => number;

  constructor(opts: CgroupIdsOptions = {}) {
    this.root = opts.root;
    this.rescanMs = opts.rescanMs ?? 250;
    this.maxDirs = opts.maxDirs ?? 100000;
    this.now = opts.now ?? Date.now;
  }

  private findRoot(): string | null {
    try {
      const own = cgroup2Mounts(readFileSync('/proc/self/mountinfo', 'utf8'));
      if (own.length) return own[0];
      const init = cgroup2Mounts(readFileSync('/proc/1/mountinfo', 'utf8'));
      if (init.length) return path.join('/proc/1/root', init[0]);
    } catch { /* no /proc */ }
    return null;
  }

  private scan(): void {
    this.scans++;
    this.scannedAt = this.now();
    if (this.root === undefined) this.root = this.findRoot();
    const root = this.root;
    if (!root) return;
    const paths = new Map<number, string>();
    const stack: [string, string][] = [[root, '/']];
    let n = 0;
    while (stack.length && n < this.maxDirs) {
      const [dir, rel] = stack.pop()!;
      n++;
      try {
        const ino = statSync(dir).ino;
        paths.set(ino, rel);
        for (const e of readdirSync(dir, { withFileTypes: true })) {
          if (e.isDirectory()) stack.push([path.join(dir, e.name), rel === '/' ? `/${e.name}` : `${rel}/${e.name}`]);
        }
      } catch { /* removed while walking */ }
    }
    this.paths = paths;
  }

  /** The path of cgroup `id`, or null when it is not (or no longer) in the hierarchy. */
  path(id: number): string | null {
    let p = this.paths.get(id);
    if (p === undefined && (!this.missed.has(id) || this.now() - this.scannedAt >= this.rescanMs)) {
      this.scan();
      p = this.paths.get(id);
      if (p === undefined) {
        if (this.missed.size >= MISSED_MAX) this.missed.clear();
        this.missed.add(id);
      }
    }
    return p ?? null;
  }
}
