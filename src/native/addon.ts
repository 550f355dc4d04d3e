// Loads ctpipe's own N-API addon (native/, C) and types what it exports. A
// binary built from source here (native/build/Release, `npm run
// native:build`) is preferred, so that CI tests what it built; else the
// prebuilt one committed for this platform (native/prebuilds/<platform>-<arch>/
// ctpipe.<libc>.node, the node-gyp-build/prebuildify layout). When none
// loads, one line says why. Loaded once, on first use: commands that never
// need it never load it.
import { createRequire } from 'node:module';
import { existsSync, readdirSync } from 'node:fs';
import { arch, platform } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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
}

export class AddonError extends Error {}

/** native/ of this package (dist/src/native/ -> ../../../native). */
export const NATIVE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'native');

/** The binaries tried, in order. */
export function candidates(dir = NATIVE_DIR): string[] {
  const out: string[] = [];
  const built = join(dir, 'build', 'Release', 'ctpipe.node');
  if (existsSync(built)) out.push(built);
  const pre = join(dir, 'prebuilds', `${platform()}-${arch()}`);
  let files: string[] = [];
  try {
    files = readdirSync(pre).filter((f) => /^ctpipe\..*node$/.test(f)).sort();
  } catch { /* none for this platform */ }
  // glibc before musl: loading the other libc's binary fails, and the next is tried.
  files.sort((a, b) => Number(a.includes('musl')) - Number(b.includes('musl')));
  for (const f of files) out.push(join(pre, f));
  return out;
}

let loaded: { addon: Addon; path: string } | null = null;
let failure: AddonError | null = null;

/** Load (once) and return the addon and the binary it came from; throws AddonError. */
export function loadAddon(): { addon: Addon; path: string } {
  if (loaded) return loaded;
  if (failure) throw failure;
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  for (const p of candidates()) {
    try {
      loaded = { addon: require(p) as Addon, path: p };
      return loaded;
    } catch (e) {
      tried.push(`${p}: ${String((e as Error).message).split('\n')[0]}`);
    }
  }
  failure = new AddonError(tried.length
    ? `ctpipe's native addon does not load (${tried.join('; ')}); rebuild it: npm run native:build`
    : `ctpipe's native addon has no binary for ${platform()}-${arch()} in ${NATIVE_DIR}; build it from source: npm run native:build`);
  throw failure;
}

/** The addon's functions; throws AddonError when it cannot be loaded. */
export function addon(): Addon {
  return loadAddon().addon;
}
