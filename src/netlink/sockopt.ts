// Socket options the 'netlink' package cannot set: NETLINK_NO_ENOBUFS and
// SO_RCVBUFFORCE. Node has no setsockopt(2), and netlink 0.3.0 aborts the
// whole process when the kernel reports ENOBUFS on a socket (its error path
// builds a JS string from a null pointer), so ct-events must stop the kernel
// from reporting it and count losses from the drop counter instead. The
// option is set on the same open socket through a tiny perl(1) child that
// inherits its file descriptor (perl-base is part of every Debian system).
import { readdirSync, readlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

export const SOL_SOCKET = 1, SO_RCVBUFFORCE = 33;
export const SOL_NETLINK = 270, NETLINK_NO_ENOBUFS = 5;

/** This process's file descriptor for socket inode `inode`, or null. */
export function fdOfInode(inode: number): number | null {
  const want = `socket:[${inode}]`;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === want) return Number(fd);
    } catch { /* closed meanwhile */ }
  }
  return null;
}

/** Set integer socket options on `fd`; returns an error message per option that failed. */
export function setIntOptions(fd: number, opts: Array<[level: number, name: number, value: number]>): string[] {
  const script = 'open(my $s, "+<&=", 3) or die "fd: $!\\n"; my @e; for (@ARGV) { my ($l,$n,$v) = split /,/; setsockopt($s, $l, $n, pack("i", $v)) or push @e, "$l,$n: $!"; } print join("\\n", @e);';
  const r = spawnSync('perl', ['-e', script, ...opts.map((o) => o.join(','))], { stdio: ['ignore', 'pipe', 'pipe', fd], encoding: 'utf8', timeout: 5000 });
  if (r.error) return opts.map(() => `perl: ${r.error!.message}`);
  if (r.status !== 0) return opts.map(() => (r.stderr || 'perl failed').trim());
  return r.stdout ? r.stdout.split('\n').filter(Boolean) : [];
}
