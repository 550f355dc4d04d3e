// The kernel-enforced part of the packaged unit's sandbox
// (packaging/ctpipe.service), for tests on machines where systemd is not
// PID 1: its system call filter (SystemCallFilter=, groups expanded by
// `systemd-analyze syscall-filter`, everything else EPERM, as
// SystemCallErrorNumber=EPERM says), SystemCallArchitectures=native,
// RestrictNamespaces=yes (setns, unshare and namespace-making clone refused;
// clone3, whose flags a filter cannot read, ENOSYS) and NoNewPrivileges=yes.
// A python3 helper sets them with prctl(2) and seccomp, then execs the rest
// of its command line. The filesystem settings (ProtectSystem= and the
// like) are not emulated: they need a mount namespace of systemd's making.
// x86_64 only (CI's): system call numbers from <asm/unistd_64.h>.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, PY } from './helpers.js';

/** Values of each [Service] setting of the unit, in order (SystemCallFilter= lines add up, as in systemd). */
export function unitSettings(): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const line of readFileSync(path.join(ROOT, 'packaging', 'ctpipe.service'), 'utf8').split('\n')) {
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (kv) m.set(kv[1], [...(m.get(kv[1]) ?? []), kv[2]]);
  }
  return m;
}

/** The system calls the unit's SystemCallFilter= lines allow, by name. */
export function unitSyscalls(): Set<string> {
  const groups = new Map<string, string[]>();
  let cur: string | null = null;
  for (const line of execFileSync('systemd-analyze', ['syscall-filter'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')) {
    const t = line.trim();
    if (line.startsWith('@')) groups.set((cur = t), []);
    else if (t && !t.startsWith('#') && cur) groups.get(cur)!.push(t);
  }
  const expand = (name: string, out: Set<string>): void => {
    if (!name.startsWith('@')) { out.add(name); return; }
    for (const m of groups.get(name) ?? []) expand(m, out);
  };
  const out = new Set<string>();
  for (const value of unitSettings().get('SystemCallFilter') ?? []) {
    if (value.startsWith('~')) throw new Error('a deny-list SystemCallFilter= is not emulated here');
    for (const name of value.split(/\s+/).filter(Boolean)) expand(name, out);
  }
  return out;
}

const SECCOMP = `
import ctypes, json, os, struct, sys
allow = json.loads(sys.argv[1])
LD, JEQ, JSET, RET = 0x20, 0x15, 0x45, 0x06
ALLOW, EPERM, ENOSYS = 0x7fff0000, 0x00050000 | 1, 0x00050000 | 38
NEW_NS = 0x7E020080  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWTIME
ins = []
def op(code, jt, jf, k): ins.append(struct.pack('HBBI', code, jt, jf, k))
op(LD, 0, 0, 4); op(JEQ, 1, 0, 0xc000003e); op(RET, 0, 0, EPERM)  # native (x86_64) only
op(LD, 0, 0, 0)
op(JEQ, 0, 1, 308); op(RET, 0, 0, EPERM)    # setns
op(JEQ, 0, 1, 272); op(RET, 0, 0, EPERM)    # unshare
op(JEQ, 0, 1, 435); op(RET, 0, 0, ENOSYS)   # clone3
op(JEQ, 0, 4, 56); op(LD, 0, 0, 16); op(JSET, 0, 1, NEW_NS); op(RET, 0, 0, EPERM); op(RET, 0, 0, ALLOW)  # clone
for nr in allow:
    op(JEQ, 0, 1, nr); op(RET, 0, 0, ALLOW)
op(RET, 0, 0, EPERM)
libc = ctypes.CDLL(None, use_errno=True)
class Prog(ctypes.Structure):
    _fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.c_void_p)]
code = ctypes.create_string_buffer(b''.join(ins))
prog = Prog(len(ins), ctypes.addressof(code))
if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:
    sys.exit('sandbox: prctl: ' + os.strerror(ctypes.get_errno()))
os.execvp(sys.argv[2], sys.argv[2:])
`;

/** argv prefix that runs a command under the unit's system call filter, RestrictNamespaces=yes and NoNewPrivileges=yes. */
export function unitSandbox(): string[] {
  if (process.arch !== 'x64') throw new Error(`the unit's sandbox is emulated on x86_64 only, not ${process.arch}`);
  const numbers = new Map<string, number>();
  for (const m of readFileSync('/usr/include/x86_64-linux-gnu/asm/unistd_64.h', 'utf8').matchAll(/^#define __NR_(\w+) (\d+)$/gm)) numbers.set(m[1], Number(m[2]));
  const nrs = [...unitSyscalls()].map((n) => numbers.get(n)).filter((n): n is number => n !== undefined).sort((a, b) => a - b);
  return [PY, '-c', SECCOMP, JSON.stringify(nrs)];
}
