// Loads ctpipe's own N-API addons (native/, C) and types what the main one
// exports: ctpipe.node (sockets, setns, socket options; libc only) and the
// BPF part, ctpipe_bpf.node (src/native/bpf.ts), the only one linked with
// libbpf, so that a host without libbpf.so.1 loses the bpf method alone. A
// binary built from source here (native/build/Release, `npm run
// native:build`) is preferred, so that CI tests what it built; else the
// prebuilt one committed for this platform (native/prebuilds/<platform>-<arch>/
// <name>.<libc>.node, the node-gyp-build/prebuildify layout). When none
// loads, one line says why. Loaded once, on first use: commands that never
// need one never load it.
import { createRequire } from 'node:module';
import { existsSync, readdirSync } from 'node:fs';
import { arch, platform } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../paths.js';

/** An error from the addon: `code` is the errno name (EPERM, ENOBUFS, ...). */
export interface NativeError extends Error {
  code: string;
  errno: number;
}

/** One wake-up's worth of datagrams (native/src/nlsock.c). */
export type BatchCallback = (buf: Buffer, count: number, truncated: number, drops: number, errno: number) => void;

/** The addon's netlink socket, read in C (native/src/nlsock.c); wrapped by src/native/netlink.ts. */
export interface NativeNetlinkSocket {
  fd(): number;
  portid(): number;
  send(buf: Buffer): number;
  start(): void;
  stop(): void;
  ref(): void;
  unref(): void;
  /** The socket's drop counter (sk_drops) as the kernel has it. */
  drops(): number;
  /** Read what is queued now, through the batch callback. */
  drain(): void;
  /** Under load, leave the socket unwatched this many ms after a batch (default 1; 0: never). */
  coalesce(ms: number): void;
  /** Conntrack mode (nlsock.c): ctnetlink events become NDJSON lines in C; see src/native/netlink.ts. */
  lines(host: Buffer | null, protos: Buffer | null, family: number): void;
  close(): void;
}

export interface Addon {
  NetlinkSocket: new (protocol: number, fd: number, slot: number, onBatch: BatchCallback) => NativeNetlinkSocket;
  /** A bound netlink socket made inside the network namespace `nsPath` (checked against `inode` unless 0); throws a NativeError. */
  socketInNetns(nsPath: string, inode: number, protocol: number): number;
  /** setsockopt(2) with an int value; throws a NativeError. */
  setsockopt(fd: number, level: number, name: number, value: number): void;
  /** getsockopt(2) of an int option; throws a NativeError. */
  getsockopt(fd: number, level: number, name: number): number;
  /** A pipe's capacity set to `bytes` (fcntl F_SETPIPE_SZ; 0: only asked), and returned as the kernel rounded it; throws a NativeError. */
  pipeSize(fd: number, bytes: number): number;
  /** Conntrack mode's conversion of one datagram (for tests): [lines, lines written, events decoded], or null when left to JavaScript. */
  conntrackLines(datagram: Buffer, ts: string, host: Buffer | null, protos: Buffer | null, family: number): [Buffer, number, number] | null;
}

export class AddonError extends Error {}

/** native/ of this package. */
export const NATIVE_DIR = join(ROOT, 'native');

/** The binaries of addon `name` (ctpipe, ctpipe_bpf) tried, in order. */
export function candidates(dir = NATIVE_DIR, name = 'ctpipe'): string[] {
  const out: string[] = [];
  const built = join(dir, 'build', 'Release', `${name}.node`);
  if (existsSync(built)) out.push(built);
  const pre = join(dir, 'prebuilds', `${platform()}-${arch()}`);
  let files: string[] = [];
  try {
    files = readdirSync(pre).filter((f) => f.startsWith(`${name}.`) && f.endsWith('.node')).sort();
  } catch { /* none for this platform */ }
  // glibc before musl: loading the other libc's binary fails, and the next is tried.
  files.sort((a, b) => Number(a.includes('musl')) - Number(b.includes('musl')));
  for (const f of files) out.push(join(pre, f));
  return out;
}

/** What loading an addon gave, once. */
interface Loaded<T> { addon?: T; path?: string; failure?: AddonError }
const loads = new Map<string, Loaded<unknown>>();

/** Load addon `name` (once); throws AddonError naming why, in one line. */
function load<T>(name: string, dir = NATIVE_DIR): { addon: T; path: string } {
  const key = `${dir}\0${name}`;
  let l = loads.get(key) as Loaded<T> | undefined;
  if (!l) {
    l = {};
    loads.set(key, l);
    const require = createRequire(import.meta.url);
    const tried: string[] = [];
    for (const p of candidates(dir, name)) {
      try {
        l.addon = require(p) as T;
        l.path = p;
        break;
      } catch (e) {
        tried.push(`${p}: ${String((e as Error).message).split('\n')[0]}`);
      }
    }
    if (!l.addon) {
      // The BPF part is linked with libbpf.so.1 (Debian's libbpf1): its absence is a missing package, not a broken build.
      if (tried.some((t) => /libbpf\.so\.1: cannot open shared object file/.test(t))) l.failure = new AddonError('libbpf.so.1 missing (install libbpf1)');
      else l.failure = new AddonError(tried.length
        ? `ctpipe's native addon ${name}.node does not load (${tried.join('; ')}); rebuild it: npm run native:build`
        : `ctpipe's native addon ${name}.node has no binary for ${platform()}-${arch()} in ${dir}; build it from source: npm run native:build`);
    }
  }
  if (l.failure) throw l.failure;
  return { addon: l.addon!, path: l.path! };
}

/** Load (once) and return the addon and the binary it came from; throws AddonError. */
export function loadAddon(): { addon: Addon; path: string } {
  return load<Addon>('ctpipe');
}

/**
 * Load (once) the BPF part, ctpipe_bpf.node; throws AddonError, whose
 * message is "libbpf.so.1 missing (install libbpf1)" when that is why.
 * `dir` is for tests.
 */
export function loadBpfAddon<T>(dir = NATIVE_DIR): { addon: T; path: string } {
  return load<T>('ctpipe_bpf', dir);
}

/** The addon's functions; throws AddonError when it cannot be loaded. */
export function addon(): Addon {
  return loadAddon().addon;
}
