// The bpftrace program behind ct-attribute --bpf. It reports, at syscall
// time, which process had which local port, one line per sighting
// (src/attribute/sources/bpf/ports.ts parses them):
// - TCP: sock:inet_sock_set_state. The CLOSE -> SYN_SENT transition runs in
//   the connecting thread (connect(2), or a TCP Fast Open sendto/sendmsg),
//   before the port is chosen: the process and the time are kept by socket
//   address. The socket's next transition (ESTABLISHED, or CLOSE when the
//   connection is refused, times out or is closed first) carries the ports
//   and prints the line. The socket is gone only after that transition, so
//   the line is out by the time sock_diag can no longer find the socket.
// - UDP and UDP-Lite: sock:sock_send_length (Linux 6.3 and later) after
//   each send; printed once per socket and process in each 10 s interval,
//   so a flood from one socket is one line, and a socket still in use is
//   seen again after the interval.
// Only tracepoints of the network stack: no kprobes, no kernel headers, and
// no syscall tracepoints (enabling one sends every system call of every
// process through the slow path). The kernel's BTF gives the fields of
// struct sock and of the current task. Each line also gives the process's
// cgroup (v2) id, so that a process gone before /proc was read still has
// its cgroup, unit and container (src/attribute/sources/bpf/cgroups.ts).
export const SCRIPT_INTERVAL_S = 10;

export function bpfScript(): string {
  const task = 'curtask->real_parent->tgid, uid, gid, curtask->start_boottime, cgroup, comm';
  const netns = '((struct sock *)args->skaddr)->__sk_common.skc_net.net->ns.inum';
  return [
    'BEGIN { printf("ready\\n"); }',
    // The comm in a map of its own: one tuple with it does not fit the BPF stack (512 bytes) with the printf.
    `tracepoint:sock:inet_sock_set_state /args->protocol == 6 && args->oldstate == 7 && args->newstate == 2/ { @syn[args->skaddr] = (nsecs, pid, ${task.replace(', comm', '')}); @sync[args->skaddr] = comm; }`,
    'tracepoint:sock:inet_sock_set_state /args->protocol == 6 && args->oldstate == 2/ {',
    '  $v = @syn[args->skaddr];',
    '  if ($v.1 != 0) {',
    `    printf("C %llu %d %d %d %d %u %d 6 %d %d %llu %llu %s\\n", $v.0, $v.1, $v.2, $v.3, $v.4, ${netns}, args->family, args->sport, args->dport, $v.5, $v.6, @sync[args->skaddr]);`,
    '    delete(@syn[args->skaddr]); delete(@sync[args->skaddr]);',
    '  }',
    '}',
    'tracepoint:sock:sock_send_length /args->ret >= 0 && (args->family == 2 || args->family == 10) && (args->protocol == 17 || args->protocol == 136) && !@seen[args->sk, pid]/ {',
    '  @seen[args->sk, pid] = 1;',
    '  $sk = (struct sock *)args->sk;',
    `  printf("S %llu %d %d %d %d %u %d %d %d %d %llu %llu %s\\n", nsecs, pid, ${task.split(', ').slice(0, 3).join(', ')}, $sk->__sk_common.skc_net.net->ns.inum, args->family, args->protocol, bswap(((struct inet_sock *)$sk)->inet_sport), bswap($sk->__sk_common.skc_dport), curtask->start_boottime, cgroup, comm);`,
    '}',
    // The tick also makes bpftrace write now and then: were ct-attribute gone
    // (killed), bpftrace learns it from the closed pipe (SIGPIPE) and exits.
    `interval:s:${SCRIPT_INTERVAL_S} { clear(@seen); printf("tick\\n"); }`,
    'END { clear(@seen); clear(@syn); clear(@sync); }',
    '',
  ].join('\n');
}
