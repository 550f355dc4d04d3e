// Test "containers" without a container runtime: cgroup directories shaped
// like Docker's and Kubernetes', made in the hierarchy that
// src/proc/cgroup.ts reads a process's path from first (the cgroup v2 mount,
// else name=systemd), and a command line that moves itself into one before
// it execs (so every process it becomes is inside). Root only.
import { readFileSync, readdirSync, mkdirSync, rmdirSync, existsSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';

/** The mount point of the hierarchy a process's cgroup path is read from. */
export function cgroupMount(): string {
  let systemd: string | null = null;
  for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const [, dir, type, opts] = line.split(' ');
    if (type === 'cgroup2') return dir;
    if (type === 'cgroup' && opts?.split(',').includes('name=systemd')) systemd = dir;
  }
  if (systemd) return systemd;
  throw new Error('no cgroup v2 or name=systemd hierarchy is mounted');
}

export const hex64 = () => randomBytes(32).toString('hex');

export interface FakeContainer {
  id: string;
  /** The cgroup path as /proc/PID/cgroup will show it. */
  cgroup: string;
  dir: string;
  pod?: string;
  /** argv prefix that runs a command inside this cgroup: [...prefix, cmd, ...args]. */
  prefix: string[];
}

/** Top directory for one test run, removed by removeCgroups(). */
export function cgroupTop(tag: string): string {
  return `/${tag}${process.pid}.slice`;
}

function make(rel: string): FakeContainer & { id: string } {
  const dir = path.join(cgroupMount(), rel);
  mkdirSync(dir, { recursive: true });
  return { id: '', cgroup: rel, dir, prefix: ['sh', '-c', `echo $$ > '${dir}/cgroup.procs' && exec "$@"`, 'sh'] };
}

/** Docker with the systemd cgroup driver: <top>/system.slice/docker-<id>.scope. */
export function dockerCgroup(top: string): FakeContainer {
  const id = hex64();
  return { ...make(`${top}/system.slice/docker-${id}.scope`), id };
}

/** Kubernetes on containerd, systemd driver: kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid>.slice/cri-containerd-<id>.scope. */
export function kubeCgroup(top: string): FakeContainer {
  const id = hex64();
  const pod = randomUUID();
  const p = pod.replace(/-/g, '_');
  return { ...make(`${top}/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${p}.slice/cri-containerd-${id}.scope`), id, pod };
}

/** Remove the run's cgroup tree, deepest first (its processes must have exited). */
export function removeCgroups(top: string): void {
  const root = path.join(cgroupMount(), top);
  if (!existsSync(root)) return;
  const walk = (d: string): string[] => {
    const out: string[] = [];
    let names: string[] = [];
    try { names = readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name); } catch { /* gone */ }
    for (const n of names) out.push(...walk(path.join(d, n)));
    out.push(d);
    return out;
  };
  for (const d of walk(root)) {
    for (let i = 0; i < 50; i++) {
      try { rmdirSync(d); break; } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') break;
        if (code !== 'EBUSY' || i === 49) throw e;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20); // exiting processes leave the cgroup a moment later
      }
    }
  }
}
