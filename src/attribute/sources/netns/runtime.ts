// A container's name and image, from the files its runtime keeps on the
// host, never from a daemon's API (no socket to Docker, containerd or CRI-O;
// they may be slow, down, or not ours to call). What is read:
//
//   Docker      <docker>/containers/<id>/config.v2.json: "Name", "Config.Image"
//   containerd  <containerd>/io.containerd.runtime.v2.task/<ns>/<id>/config.json
//               (the OCI bundle; also runtime.v1.linux): the CRI plugin's
//               annotations io.kubernetes.cri.container-name, .image-name,
//               .sandbox-name, .sandbox-namespace; nerdctl's "nerdctl/name"
//   CRI-O       <storage>/overlay-containers/<id>/userdata/config.json:
//               io.kubernetes.container.name (or inside io.kubernetes.cri-o.Labels),
//               io.kubernetes.cri-o.ImageName, io.kubernetes.pod.name, .namespace
//   Podman      <storage>/overlay-containers/containers.json: "names", and
//               "metadata" (libpod's JSON text: "image-name")
//
// The roots are options, so tests (and hosts with moved data roots) can point
// elsewhere. Answers are cached by id; a container with no files found is
// asked again after `retryMs` (its files may not be written yet).
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

export interface RuntimeRoots {
  /** Docker's data root (default /var/lib/docker). */
  docker?: string;
  /** containerd's state directory (default /run/containerd). */
  containerd?: string;
  /** containers/storage roots for CRI-O and Podman (default /run/containers/storage, /var/lib/containers/storage). */
  storage?: string[];
}

export interface ContainerDetails {
  name?: string;
  image?: string;
  pod_name?: string;
  pod_namespace?: string;
}

export interface ContainerMetaOptions extends RuntimeRoots {
  maxEntries?: number;
  retryMs?: number;
}

const SAFE_ID = /^[0-9A-Za-z][0-9A-Za-z_.-]*$/;

function readJson(file: string): any {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function clean(d: ContainerDetails): ContainerDetails | null {
  const out: ContainerDetails = {};
  for (const k of ['name', 'image', 'pod_name', 'pod_namespace'] as const) if (d[k] !== undefined) out[k] = d[k];
  return Object.keys(out).length ? out : null;
}

/** Name and image from an OCI runtime config's annotations (containerd's CRI plugin, nerdctl, CRI-O). */
export function fromOciAnnotations(a: Record<string, unknown> | undefined): ContainerDetails | null {
  if (!a || typeof a !== 'object') return null;
  let labels: Record<string, unknown> = {};
  const l = str(a['io.kubernetes.cri-o.Labels']);
  if (l) {
    try { labels = JSON.parse(l) ?? {}; } catch { /* not JSON */ }
  }
  return clean({
    name: str(a['io.kubernetes.cri.container-name']) ?? str(a['io.kubernetes.container.name']) ?? str(labels['io.kubernetes.container.name']) ?? str(a['nerdctl/name']),
    image: str(a['io.kubernetes.cri.image-name']) ?? str(a['io.kubernetes.cri-o.ImageName']),
    pod_name: str(a['io.kubernetes.cri.sandbox-name']) ?? str(a['io.kubernetes.pod.name']) ?? str(labels['io.kubernetes.pod.name']),
    pod_namespace: str(a['io.kubernetes.cri.sandbox-namespace']) ?? str(a['io.kubernetes.pod.namespace']) ?? str(labels['io.kubernetes.pod.namespace']),
  });
}

/** Name and image from Docker's config.v2.json. */
export function fromDockerConfig(c: any): ContainerDetails | null {
  if (!c || typeof c !== 'object') return null;
  const name = str(c.Name);
  return clean({ name: name?.replace(/^\//, ''), image: str(c.Config?.Image) });
}

/** Name and image of container `id` from a containers/storage containers.json (Podman). */
export function fromStorageContainers(list: any, id: string): ContainerDetails | null {
  if (!Array.isArray(list)) return null;
  const c = list.find((x) => x && x.id === id);
  if (!c) return null;
  let meta: any = {};
  if (typeof c.metadata === 'string') {
    try { meta = JSON.parse(c.metadata) ?? {}; } catch { /* not JSON */ }
  }
  return clean({ name: str(Array.isArray(c.names) ? c.names[0] : undefined) ?? str(meta.name), image: str(meta['image-name']) });
}

export class ContainerMeta {
  private readonly docker: string;
  private readonly containerd: string;
  private readonly storage: string[];
  private readonly max: number;
  private readonly retryMs: number;
  private cache = new Map<string, { d: ContainerDetails | null; at: number }>();
  reads = 0;

  constructor(opts: ContainerMetaOptions = {}) {
    this.docker = opts.docker ?? '/var/lib/docker';
    this.containerd = opts.containerd ?? '/run/containerd';
    this.storage = opts.storage ?? ['/run/containers/storage', '/var/lib/containers/storage'];
    this.max = opts.maxEntries ?? 4096;
    this.retryMs = opts.retryMs ?? 10000;
  }

  /** Details of container `id` of `runtime` (as src/proc/cgroup.ts names it), or null. */
  describe(id: string, runtime: string): ContainerDetails | null {
    if (!SAFE_ID.test(id)) return null;
    const hit = this.cache.get(id);
    const now = Date.now();
    if (hit && (hit.d || now - hit.at < this.retryMs)) return hit.d;
    this.reads++;
    const d = this.find(id, runtime);
    this.cache.delete(id);
    this.cache.set(id, { d, at: now });
    if (this.cache.size > this.max) this.cache.delete(this.cache.keys().next().value!);
    return d;
  }

  private find(id: string, runtime: string): ContainerDetails | null {
    const order: Array<() => ContainerDetails | null> = [];
    const docker = () => fromDockerConfig(readJson(path.join(this.docker, 'containers', id, 'config.v2.json')));
    const containerd = (first: string[]) => () => this.fromContainerd(id, first);
    const crio = () => {
      for (const root of this.storage) {
        const d = fromOciAnnotations(readJson(path.join(root, 'overlay-containers', id, 'userdata', 'config.json'))?.annotations);
        if (d) return d;
      }
      return null;
    };
    const podman = () => {
      for (const root of this.storage) {
        const d = fromStorageContainers(readJson(path.join(root, 'overlay-containers', 'containers.json')), id);
        if (d) return d;
      }
      return null;
    };
    switch (runtime) {
      case 'docker': order.push(docker, containerd(['moby'])); break;
      case 'kubernetes': order.push(containerd(['k8s.io']), crio); break;
      case 'containerd': order.push(containerd(['default', 'k8s.io'])); break;
      case 'cri-o': order.push(crio); break;
      case 'podman': order.push(podman, crio); break;
      default: return null;
    }
    for (const f of order) {
      const d = f();
      if (d) return d;
    }
    return null;
  }

  private fromContainerd(id: string, first: string[]): ContainerDetails | null {
    for (const shim of ['io.containerd.runtime.v2.task', 'io.containerd.runtime.v1.linux']) {
      const base = path.join(this.containerd, shim);
      let spaces: string[];
      try { spaces = readdirSync(base); } catch { continue; }
      spaces.sort((a, b) => (first.includes(b) ? 1 : 0) - (first.includes(a) ? 1 : 0));
      for (const ns of spaces) {
        const d = fromOciAnnotations(readJson(path.join(base, ns, id, 'config.json'))?.annotations);
        if (d) return d;
      }
    }
    return null;
  }
}
