// Shared test helpers: run a built command as a real process, feed it input,
// collect its output until 'close'; namespaces for kernel tests.
import { spawn, execFileSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { nestsDeeper, MAX_DEPTH } from '../src/ndjson.js';

/** The repository root (tests run from dist/test/...). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = (name: string) => path.join(ROOT, 'bin', name);
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');

/** The NDJSON fixture files (test/fixtures/<dir>/*.ndjson, hostile ones included), each directory's sorted. */
export function ndjsonFixtureFiles(): string[] {
  const out: string[] = [];
  for (const dir of readdirSync(FIXTURES).sort()) {
    if (!statSync(path.join(FIXTURES, dir)).isDirectory()) continue;
    for (const n of readdirSync(path.join(FIXTURES, dir)).sort()) if (n.endsWith('.ndjson')) out.push(path.join(FIXTURES, dir, n));
  }
  return out;
}

/** A buffer's lines, split at \n only, without their line ends (a last line without one included). */
export function bufferLines(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let s = 0;
  for (let nl = b.indexOf(10); nl >= 0; nl = b.indexOf(10, s)) {
    out.push(b.subarray(s, nl));
    s = nl + 1;
  }
  if (s < b.length) out.push(b.subarray(s));
  return out;
}

/** Every NDJSON fixture's bytes, each ending with a line end, one after another. */
/**
 * A line damaged by 1 to 3 random edits: a piece of `pieces` put in, a few
 * characters taken out, the rest cut off, or a stretch of the line copied
 * elsewhere in it (a key or value swapped for another: repeats keys, moves
 * types around). `r` gives numbers in [0, 1).
 */
export function damage(line: string, r: () => number, pieces: readonly string[]): string {
  let s = line;
  const edits = 1 + Math.floor(r() * 3);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(r() * (s.length + 1));
    const x = r();
    if (x < 0.4) s = s.slice(0, at) + pieces[Math.floor(r() * pieces.length)] + s.slice(at);
    else if (x < 0.7) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(r() * 4));
    else if (x < 0.85) s = s.slice(0, at);
    else {
      const b = Math.floor(r() * s.length);
      s = s.slice(0, at) + s.slice(b, b + 1 + Math.floor(r() * 30)) + s.slice(at);
    }
  }
  return s;
}

/** JSON.parse's answer for a line: the object, or null when the slow path would call it bad (not JSON, not an object, nested too deep). */
export function slowPathObject(text: string): Record<string, unknown> | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v) || nestsDeeper(text, MAX_DEPTH)) return null;
  return v as Record<string, unknown>;
}

export function ndjsonFixturesInput(): Buffer {
  return Buffer.concat(ndjsonFixtureFiles().map((f) => readFileSync(f)).map((f) => (f.length && f[f.length - 1] !== 10 ? Buffer.concat([f, Buffer.from('\n')]) : f)));
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Spawn bin/<name> with args, write `input` to stdin (or leave it open when null), wait for close. */
export function runBin(name: string, args: string[], input: string | Buffer | null = '', opts: SpawnOptions & { timeoutMs?: number; prefix?: string[]; bin?: (name: string) => string } = {}): Promise<RunResult> {
  // `bin`: where the command is (another user runs an installed copy: see installed.ts).
  const file = (opts.bin ?? BIN)(name);
  const cmd = opts.prefix ? opts.prefix[0] : file;
  const argv = opts.prefix ? [...opts.prefix.slice(1), file, ...args] : args;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'], ...opts });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin!.on('error', () => {});
    if (input !== null) child.stdin!.end(input);
  });
}

/** Parse NDJSON output into objects (throws on a bad line, which a test should see). */
export function lines(text: string): any[] {
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
}

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
export const inCI = process.env.CI === 'true';

/**
 * For tests that need root: returns a reason to skip on a developer's
 * laptop; under CI=true it throws, so a missing privilege fails the run.
 */
export function needRoot(): string | false {
  if (isRoot) return false;
  if (inCI) throw new Error('this test needs root, and CI=true forbids skipping it');
  return 'needs root (network namespaces, conntrack)';
}

let nsCounter = 0;
/** Create a network namespace with lo up; returns its name. */
export function makeNetns(prefix = 'ctt'): string {
  const name = `${prefix}${process.pid}_${++nsCounter}`;
  execFileSync('ip', ['netns', 'add', name]);
  execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

export function delNetns(name: string): void {
  try { execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' }); } catch { /* already gone */ }
}

/** Run a shell command inside a namespace, synchronously. */
export function inNetns(ns: string, cmd: string, args: string[], input?: string): string {
  return execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', input });
}

/** Switch conntrack on in a namespace with a passive counting rule. */
export function enableTracking(ns: string): void {
  inNetns(ns, 'nft', ['-f', '-'], 'table inet ctt {\n chain out { type filter hook output priority 0; policy accept; ct state new counter; }\n}\n');
}

/** Two network namespaces joined by a veth pair (see linkedNetns). */
export interface NetnsPair {
  /** Where a pipeline runs: 10.N.0.1 and fd00:N::1, conntrack tracking on. */
  A: string;
  /** The other end: 10.N.0.2 and fd00:N::2. */
  B: string;
  VA: string;
  VB: string;
  /** B's addresses. */
  b4: string;
  b6: string;
}

/**
 * Namespaces A and B (named from `tag` and this process's pid) joined by
 * veth pair VA-VB, A at 10.`net`.0.1 and fd00:`net`::1, B at .2 and ::2,
 * with tracking on in A. `create` false only names them (a test that adds
 * more links first). delNetns(A) and delNetns(B) remove them.
 */
export function linkedNetns(tag: string, net: number, create = true): NetnsPair {
  const id = process.pid;
  const p: NetnsPair = {
    A: `ct${tag}a${id}`, B: `ct${tag}b${id}`, VA: `v${tag}a${id % 100000}`, VB: `v${tag}b${id % 100000}`,
    b4: `10.${net}.0.2`, b6: `fd00:${net}::2`,
  };
  if (!create) return p;
  const { A, B, VA, VB } = p;
  execFileSync('sh', ['-c', `ip netns add ${A}; ip netns add ${B}; ip -n ${A} link set lo up; ip -n ${B} link set lo up;
      ip link add ${VA} netns ${A} type veth peer name ${VB} netns ${B};
      ip -n ${A} addr add 10.${net}.0.1/24 dev ${VA}; ip -n ${B} addr add 10.${net}.0.2/24 dev ${VB};
      ip -n ${A} addr add fd00:${net}::1/64 dev ${VA} nodad; ip -n ${B} addr add fd00:${net}::2/64 dev ${VB} nodad;
      ip -n ${A} link set ${VA} up; ip -n ${B} link set ${VB} up`], { stdio: 'ignore' });
  enableTracking(A);
  return p;
}

/** Start `python3 -c code args` in namespace `ns`; resolves with the process and the first line it prints. */
export function startPy(ns: string, code: string, args: string[] = []): Promise<{ proc: ChildProcess; line: string }> {
  const proc = spawn('ip', ['netns', 'exec', ns, PY, '-c', code, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve) => proc.stdout!.once('data', (d) => resolve({ proc, line: String(d).trim() })));
}

/**
 * Run `python3 -c code args` in namespace `ns` (as nobody when asked) to
 * its end; resolves with its stdout's lines split into numbers (a client
 * prints "PID SPORT"), rejects when it fails or prints fewer than `n`.
 */
export function runPy(ns: string, code: string, args: string[], asNobody: boolean, n = 1): Promise<number[][]> {
  const argv = ['netns', 'exec', ns, ...(asNobody ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : []), PY, '-c', code, ...args];
  return new Promise((resolve, reject) => {
    const c = spawn('ip', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    c.stdout!.on('data', (d) => (out += d));
    c.stderr!.on('data', (d) => (err += d));
    c.on('close', (code) => {
      const got = out.trim().split('\n').filter(Boolean).map((l) => l.split(' ').map(Number));
      if (code !== 0 || got.length < n || got.some((x) => !x[0])) return reject(new Error(`client failed (${code}, ${got.length} of ${n} lines): ${err}`));
      resolve(got);
    });
  });
}

/** The pipeline's start-up lines (ct-events' ready line, ct-attribute's live methods), taken out of a stderr text. */
export function withoutMethods(stderr: string): string {
  return stderr.replace(/^ct-attribute: methods: .*\n/gm, '').replace(READY, '');
}

/** ct-events' ready line (see readyLine in src/commands/events.ts). */
export const READY = /^(?:ct-events: )*tracking [^;\n]*; listening for [^;\n]*; [^\n]*\n/gm;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait until `pred()` is true, polling; throws after `ms`. */
export async function waitFor(pred: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export const PY = '/usr/bin/python3';

/**
 * A client for `python3 -c`: argv proto (tcp|udp), host, port, hold
 * (seconds). It connects and sends (TCP) or sends (UDP), prints
 * "PID SPORT", keeps the socket `hold` seconds, closes it and exits.
 */
export const PY_CLIENT = `
import socket, sys, os, time
proto, host, port, hold = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
fam = socket.AF_INET6 if ':' in host else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM if proto == 'tcp' else socket.SOCK_DGRAM)
if proto == 'tcp':
    s.connect((host, port)); s.send(b'hi')
else:
    s.sendto(b'hi', (host, port))
print(os.getpid(), s.getsockname()[1], flush=True)
time.sleep(hold)
s.close()
`;

/**
 * A server for `python3 -c`: accepts TCP connections on port 7000, reads
 * each until the client closes, then closes it (no RST, which would close
 * a client's socket while it still holds it); reads UDP datagrams on 7001;
 * IPv4 and IPv6; prints "ready".
 */
export const PY_SINK = `
import socket, threading
def serve(c):
    while c.recv(100): pass
    c.close()
def tcp(fam, addr):
    l = socket.socket(fam, socket.SOCK_STREAM)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6: l.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    l.bind((addr, 7000)); l.listen(128)
    while True:
        c, _ = l.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
def udp(fam, addr):
    u = socket.socket(fam, socket.SOCK_DGRAM)
    if fam == socket.AF_INET6: u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    u.bind((addr, 7001))
    while True: u.recv(100)
for f, a in ((socket.AF_INET, '0.0.0.0'), (socket.AF_INET6, '::')):
    threading.Thread(target=tcp, args=(f, a), daemon=True).start()
    threading.Thread(target=udp, args=(f, a), daemon=True).start()
print('ready', flush=True)
threading.Event().wait()
`;
