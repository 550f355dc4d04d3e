// The syscalls that make outgoing flows, by audit architecture: numbers from
// the kernel's syscall tables (arch/x86/entry/syscalls/syscall_64.tbl and
// syscall_32.tbl, include/uapi/asm-generic/unistd.h for arm64,
// arch/arm/tools/syscall.tbl for 32-bit arm). Data only.

// include/uapi/linux/audit.h: EM_* | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE
export const AUDIT_ARCH_X86_64 = 0xc000003e;
export const AUDIT_ARCH_I386 = 0x40000003;
export const AUDIT_ARCH_AARCH64 = 0xc00000b7;
export const AUDIT_ARCH_ARM = 0x40000028;

export type NetCall = 'connect' | 'sendto' | 'sendmsg' | 'sendmmsg' | 'socketcall';

export interface ArchTable {
  arch: number;
  /** auditctl's name for the ABI. */
  abi: 'b64' | 'b32';
  calls: Partial<Record<NetCall, number>>;
}

export const ARCHES: ArchTable[] = [
  { arch: AUDIT_ARCH_X86_64, abi: 'b64', calls: { connect: 42, sendto: 44, sendmsg: 46, sendmmsg: 307 } },
  { arch: AUDIT_ARCH_I386, abi: 'b32', calls: { connect: 362, sendto: 369, sendmsg: 370, sendmmsg: 345, socketcall: 102 } },
  { arch: AUDIT_ARCH_AARCH64, abi: 'b64', calls: { connect: 203, sendto: 206, sendmsg: 211, sendmmsg: 269 } },
  { arch: AUDIT_ARCH_ARM, abi: 'b32', calls: { connect: 283, sendto: 290, sendmsg: 296, sendmmsg: 374 } },
];

/** The two ABIs of a machine (node's process.arch), 64-bit first; null when ctpipe has no table for it. */
export function abisOf(nodeArch: string): ArchTable[] | null {
  if (nodeArch === 'x64') return [ARCHES[0], ARCHES[1]];
  if (nodeArch === 'arm64') return [ARCHES[2], ARCHES[3]];
  return null;
}

// include/uapi/linux/net.h: socketcall(2) call numbers
export const SYS_BIND = 2, SYS_CONNECT = 3, SYS_SENDTO = 11, SYS_SENDMSG = 16, SYS_SENDMMSG = 20;
const SOCKETCALLS: Record<number, NetCall> = { [SYS_CONNECT]: 'connect', [SYS_SENDTO]: 'sendto', [SYS_SENDMSG]: 'sendmsg', [SYS_SENDMMSG]: 'sendmmsg' };

const BY_ARCH = new Map<number, Map<number, NetCall>>(
  ARCHES.map((t) => [t.arch, new Map(Object.entries(t.calls).map(([k, v]) => [v!, k as NetCall]))]),
);

/**
 * The network call a SYSCALL record names, or null for any other syscall.
 * socketcall(2) is resolved through its first argument (the call number).
 */
export function netCallOf(arch: number, syscall: number, a0?: number): Exclude<NetCall, 'socketcall'> | null {
  const c = BY_ARCH.get(arch)?.get(syscall);
  if (!c) return null;
  if (c === 'socketcall') {
    const s = a0 === undefined ? undefined : SOCKETCALLS[a0];
    return s && s !== 'socketcall' ? s : null;
  }
  return c;
}
