// The kernel's audit state for tests that change it (auditctl(8) from the
// auditd package): a snapshot taken before, and a restore that runs even
// after a failure. Other test runs may share the kernel, so the restore
// removes only what the test added (its keys, rules of ct-attribute
// processes that are gone) and switches auditing back off only when no
// live ct-attribute still has rules in place.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface AuditSnapshot {
  enabled: number;
  pid: number;
  rate_limit: number;
  backlog_limit: number;
  rules: string[];
}

export function auditctl(...args: string[]): string {
  return execFileSync('auditctl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function auditStatus(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of auditctl('-s').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^\d+$/.test(v)) out[k] = Number(v);
  }
  return out;
}

export function auditRules(): string[] {
  return auditctl('-l').split('\n').map((l) => l.trim()).filter((l) => l && l !== 'No rules');
}

export function snapshotAudit(): AuditSnapshot {
  const s = auditStatus();
  return { enabled: s.enabled, pid: s.pid, rate_limit: s.rate_limit, backlog_limit: s.backlog_limit, rules: auditRules() };
}

/** Keys of ct-attribute rules whose process is gone. */
function staleCtpipeKeys(): string[] {
  const keys = new Set<string>();
  for (const r of auditRules()) {
    const m = /key=ctpipe-(\d+)\b/.exec(r);
    if (m && !existsSync(`/proc/${m[1]}`)) keys.add(`ctpipe-${m[1]}`);
  }
  return [...keys];
}

export function restoreAudit(snap: AuditSnapshot, testKeys: string[] = []): void {
  const now = auditStatus();
  try {
    if (now.rate_limit !== snap.rate_limit) auditctl('-r', String(snap.rate_limit));
    if (now.backlog_limit !== snap.backlog_limit) auditctl('-b', String(snap.backlog_limit));
  } catch { /* locked */ }
  for (const k of [...testKeys, ...staleCtpipeKeys()]) {
    try { auditctl('-D', '-k', k); } catch { /* none left */ }
  }
  const live = auditRules().some((r) => /key=ctpipe-\d+\b/.test(r));
  if (!live && auditStatus().enabled !== snap.enabled && snap.enabled !== 2) {
    try { auditctl('-e', String(snap.enabled)); } catch { /* locked meanwhile */ }
  }
}

// A stand-in for auditd: registers as the audit daemon (AUDIT_SET with its
// pid), counts the SYSCALL records of the pids it is told about, and on
// stdin's end unregisters (AUDIT_SET pid 0) and prints the counts as JSON.
const FAKE_AUDITD = String.raw`
import socket, struct, sys, os, threading, json
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 9)
s.bind((0, 0))
def aset(pid):
    body = struct.pack('=11I', 4, 0, 0, pid, 0, 0, 0, 0, 0, 0, 0)
    s.send(struct.pack('=IHHII', 16 + len(body), 1001, 5, 1, 0) + body)
aset(os.getpid())
counts = {}
lock = threading.Lock()
ready = False
def reader():
    global ready
    while True:
        d = s.recv(1 << 16)
        typ = struct.unpack_from('=H', d, 4)[0]
        if typ == 2:
            err = struct.unpack_from('=i', d, 16)[0]
            if err != 0:
                print(json.dumps({'error': err}), flush=True); os._exit(1)
            if not ready:
                ready = True
                print(json.dumps({'ready': os.getpid()}), flush=True)
            continue
        if typ == 1300:
            t = d[16:].decode('latin1')
            for tok in t.split(' '):
                if tok.startswith('pid='):
                    with lock: counts[tok[4:]] = counts.get(tok[4:], 0) + 1
threading.Thread(target=reader, daemon=True).start()
sys.stdin.read()
aset(0)
with lock: print(json.dumps({'counts': counts}), flush=True)
`;

export interface FakeAuditd {
  pid: number;
  /** Unregister and return how many SYSCALL records each pid had. */
  stop(): Promise<Record<string, number>>;
  kill(): void;
}

export function startFakeAuditd(python = '/usr/bin/python3'): Promise<FakeAuditd> {
  const p: ChildProcess = spawn(python, ['-c', FAKE_AUDITD], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  return new Promise((resolve, reject) => {
    p.on('error', reject);
    p.stdout!.setEncoding('utf8').on('data', (d) => {
      out += d;
      const first = out.split('\n')[0];
      if (!out.includes('\n')) return;
      const msg = JSON.parse(first);
      if (msg.error) return reject(new Error(`fake auditd: AUDIT_SET failed with ${msg.error}`));
      if (msg.ready && !('done' in p)) {
        (p as any).done = true;
        resolve({
          pid: msg.ready,
          stop: () => new Promise((res) => {
            p.once('close', () => {
              const last = out.trim().split('\n').pop()!;
              res(JSON.parse(last).counts ?? {});
            });
            p.stdin!.end();
          }),
          kill: () => { try { p.kill('SIGKILL'); } catch { /* gone */ } },
        });
      }
    });
  });
}
