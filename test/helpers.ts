// Shared test helpers: run a built command as a real process, feed it input,
// collect its output until 'close'; namespaces for kernel tests.
import { spawn, execFileSync, type SpawnOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The repository root (tests run from dist/test/...). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = (name: string) => path.join(ROOT, 'bin', name);
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');

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

/** ct-attribute's start-up line (which methods are live), taken out of a stderr text. */
export function withoutMethods(stderr: string): string {
  return stderr.replace(/^ct-attribute: methods: .*\n/gm, '');
}

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
 * A server for `python3 -c`: accepts TCP connections on port 7000 and
 * closes them, reads UDP datagrams on 7001, IPv4 and IPv6; prints "ready".
 */
export const PY_SINK = `
import socket, threading
def tcp(fam, addr):
    l = socket.socket(fam, socket.SOCK_STREAM)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6: l.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    l.bind((addr, 7000)); l.listen(128)
    while True:
        c, _ = l.accept(); c.close()
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
