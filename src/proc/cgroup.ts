// What a process's cgroup path says: its systemd unit, and the container it
// runs in (Docker, containerd, CRI-O, Podman, Kubernetes, LXC). Pure string
// parsing of /proc/PID/cgroup text; see systemd's unit naming
// (systemd.unit(5)) and the runtimes' cgroup layouts.

export interface ContainerRef {
  id: string;
  runtime: 'docker' | 'containerd' | 'cri-o' | 'podman' | 'kubernetes' | 'lxc' | string;
  pod?: string;
  name?: string;
}

/**
 * The path that places the process: the cgroup v2 line ("0::/path"), else
 * name=systemd, else the first v1 controller. A "/" says nothing (a hybrid
 * host's unused unified line, a controller such as rdma left at the root), so
 * a more specific line wins over it.
 */
export function cgroupPath(text: string): string | null {
  let v2: string | null = null;
  let systemd: string | null = null;
  let v1: string | null = null;
  let v1Root: string | null = null;
  for (const line of text.split('\n')) {
    if (!line) continue;
    const a = line.indexOf(':');
    const b = line.indexOf(':', a + 1);
    if (a < 0 || b < 0) continue;
    const id = line.slice(0, a);
    const ctrl = line.slice(a + 1, b);
    const path = line.slice(b + 1);
    if (id === '0' && ctrl === '') v2 = path;
    else if (ctrl === 'name=systemd') systemd = path;
    else if (path !== '/') v1 ??= path;
    else v1Root ??= path;
  }
  for (const p of [v2, systemd, v1]) if (p !== null && p !== '/') return p;
  return v2 ?? systemd ?? v1Root;
}

const UNIT_SUFFIX = /\.(service|scope|socket|mount|swap|timer|path|target|device)$/;

/** The deepest systemd service or scope in the path (what `systemctl status PID` names). */
export function unitOf(path: string | null): string | null {
  if (!path) return null;
  const parts = path.split('/').filter(Boolean);
  for (let i = parts.length - 1; i >= 0; i--) {
    const p = parts[i];
    // user@1000.service holds a user's own units: prefer what is inside it.
    if (UNIT_SUFFIX.test(p) && !p.endsWith('.slice')) return p;
  }
  return null;
}

const HEX64 = /[0-9a-f]{64}/;

// A Kubernetes pod's cgroup: "pod<uid>" (cgroupfs) or "kubepods-<qos>-pod<uid with _>.slice"
// (systemd); static pods have a 32-hex config hash instead of a uid.
const POD = /(?:^|-)pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}|[0-9a-f]{32})(?:\.slice)?$/;
// containerd with the systemd driver on v1 controllers systemd does not
// manage writes its cgroupsPath as is: "<slice>:<prefix>:<id>".
const COLON_FORM = /^(.+\.slice):([a-z-]+):([0-9a-f]{64})$/;

/** The container a cgroup path belongs to, or null. */
export function containerOf(path: string | null): ContainerRef | null {
  if (!path) return null;
  const parts: string[] = [];
  for (const p of path.split('/')) {
    if (!p) continue;
    const c = COLON_FORM.exec(p);
    if (c) parts.push(c[1], `${c[2]}-${c[3]}.scope`);
    else parts.push(p);
  }
  let pod: string | undefined;
  const kube = parts.some((p) => p.includes('kubepods'));
  if (kube) {
    for (const p of parts) {
      const m = POD.exec(p);
      if (m) pod = m[1].replace(/_/g, '-');
    }
  }
  for (let i = parts.length - 1; i >= 0; i--) {
    const p = parts[i];
    let m: RegExpExecArray | null;
    if ((m = /^docker-([0-9a-f]{64})\.scope$/.exec(p))) return ref(m[1], kube ? 'kubernetes' : 'docker', pod);
    if ((m = /^cri-containerd-([0-9a-f]{64})\.scope$/.exec(p))) return ref(m[1], kube ? 'kubernetes' : 'containerd', pod);
    if ((m = /^crio-(?:conmon-)?([0-9a-f]{64})\.scope$/.exec(p))) return ref(m[1], kube ? 'kubernetes' : 'cri-o', pod);
    if ((m = /^libpod-(?:conmon-)?([0-9a-f]{64})\.scope$/.exec(p))) return ref(m[1], 'podman', pod);
    if (p === 'docker' && parts[i + 1] && HEX64.test(parts[i + 1])) return ref(parts[i + 1].match(HEX64)![0], 'docker', pod);
    if ((m = /^lxc\.payload\.(.+)$/.exec(p)) || (p === 'lxc' && parts[i + 1] && (m = /^(.+)$/.exec(parts[i + 1])))) {
      return { id: m[1], runtime: 'lxc', name: m[1] };
    }
  }
  if (kube) {
    // cgroupfs driver: /kubepods/burstable/pod<uid>/<64hex>
    for (let i = parts.length - 1; i >= 0; i--) if (/^[0-9a-f]{64}$/.test(parts[i])) return ref(parts[i], 'kubernetes', pod);
  }
  return null;
}

function ref(id: string, runtime: string, pod?: string): ContainerRef {
  return pod ? { id, runtime, pod } : { id, runtime };
}
