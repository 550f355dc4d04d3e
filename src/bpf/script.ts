// The bpftrace program behind ct-attribute --bpf. It reports, at syscall
// time, which process had which local port, one line per sighting
// (src/bpf/ports.ts parses them):
// - TCP: the CLOSE -> SYN_SENT transition (sock:inet_sock_set_state) runs
//   in the connecting thread, before the port is chosen; the line is
//   printed when that thread's connect (or Fast Open sendto/sendmsg)
//   returns, by which time the socket has its port (inet_sport, which is
//   kept even when the connection was refused at once), with the time of
//   the transition (when the SYN left, not when a blocking connect ended);
// - UDP and UDP-Lite: sock:sock_send_length (Linux 6.3 and later) after
//   each send; printed once per socket and process in each 10 s interval,
//   so a flood from one socket is one line, and a socket still in use is
//   seen again after the interval.
// Only stable tracepoints and struct sock fields (through the kernel's BTF)
// are used: no kprobes, no kernel headers.
export const SCRIPT_INTERVAL_S = 10;

export function bpfScript(): string {
  const fields = (time: string) => `${time}, pid, curtask->real_parent->tgid, uid, gid, $sk->__sk_common.skc_net.net->ns.inum, ` +
    '$sk->__sk_common.skc_family, $sk->sk_protocol, bswap(((struct inet_sock *)$sk)->inet_sport), ' +
    'bswap($sk->__sk_common.skc_dport), curtask->start_boottime, comm';
  const fmt = '%llu %d %d %d %d %u %d %d %d %d %llu %s\\n';
  return [
    'BEGIN { printf("ready\\n"); }',
    'tracepoint:sock:inet_sock_set_state /args->protocol == 6 && args->oldstate == 7 && args->newstate == 2/ { @syn[tid] = args->skaddr; @synt[tid] = nsecs; }',
    'tracepoint:syscalls:sys_exit_connect, tracepoint:syscalls:sys_exit_sendto, tracepoint:syscalls:sys_exit_sendmsg /@syn[tid]/ {',
    '  $sk = (struct sock *)@syn[tid]; $t = @synt[tid]; delete(@syn[tid]); delete(@synt[tid]);',
    `  printf("C ${fmt}", ${fields('$t')});`,
    '}',
    'tracepoint:sock:sock_send_length /args->ret >= 0 && (args->family == 2 || args->family == 10) && (args->protocol == 17 || args->protocol == 136) && !@seen[args->sk, pid]/ {',
    '  @seen[args->sk, pid] = 1;',
    '  $sk = (struct sock *)args->sk;',
    `  printf("S ${fmt}", ${fields('nsecs')});`,
    '}',
    `interval:s:${SCRIPT_INTERVAL_S} { clear(@seen); }`,
    'END { clear(@seen); clear(@syn); clear(@synt); }',
    '',
  ].join('\n');
}
