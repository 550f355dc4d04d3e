// SPDX-License-Identifier: MIT OR GPL-2.0
/* ct-attribute's syscall-time sightings: which process had which local port
 * (record: sighting.h), written to a BPF ring buffer that the addon
 * (src/bpf.c) reads.
 * - TCP: the BTF-typed tracepoint sock:inet_sock_set_state. The CLOSE ->
 *   SYN_SENT transition runs in the connecting thread (connect(2), or a TCP
 *   Fast Open sendto/sendmsg) before the port is chosen: the process is
 *   kept by socket address. The socket's next transition (ESTABLISHED, or
 *   CLOSE when refused, timed out or closed first) carries the ports and
 *   writes the record; the socket is gone only after it.
 * - UDP and UDP-Lite: sock:sock_send_length (Linux 6.3 and later) after each
 *   send, or on older kernels the exit of the send system calls (the addon
 *   loads one of the two routes). A record is written once per
 *   socket, process and port in each 10 s, so a flood from one socket is
 *   one record, and a socket still in use is seen again after that.
 * Only BTF-typed tracepoints, attached by name through the bpf(2) syscall:
 * no tracefs, no kprobes. The system call tracepoint only on kernels
 * without sock_send_length: while it is attached, every system call of
 * every process takes the slower exit path. The kernel structs
 * are the few fields read here, relocated by libbpf against the running
 * kernel's BTF (CO-RE), so no kernel headers are needed to build.
 * Loadable with CAP_BPF and CAP_PERFMON (Linux 5.8+: ring buffer).
 */
typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u32 __be32;
typedef __u64 __be64;
typedef __u16 __be16;
typedef __u32 __wsum;

/* libbpf's own BPF-side headers (libbpf-dev). */
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "sighting.h"

/* From include/uapi/linux/bpf.h (no kernel headers: see above). */
#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_MAP_TYPE_LRU_HASH 9
#define BPF_MAP_TYPE_RINGBUF 27
#define BPF_ANY 0
#define BPF_NOEXIST 1
#define BPF_RB_NO_WAKEUP 1
#define BPF_RB_FORCE_WAKEUP 2
#define BPF_RB_AVAIL_DATA 0
#define BPF_RB_RING_SIZE 1

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_UDPLITE 136
#define TCP_SYN_SENT 2
#define TCP_CLOSE 7

#define SEND_INTERVAL_NS (10ULL * 1000000000ULL)
/* A record wakes the reader only when none did in this long (see emit). */
#define WAKE_GAP_NS 1000000ULL

/* The kernel structs, as far as they are read (CO-RE: offsets come from the
 * running kernel's BTF, by name). */
struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
} __attribute__((preserve_access_index));

typedef struct {
	struct net *net;
} possible_net_t;

struct sock_common {
	unsigned short skc_family;
	__be16 skc_dport;
	possible_net_t skc_net;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
} __attribute__((preserve_access_index));

/* The local port as inet_sock keeps it (network order): skc_num is
 * already 0 when a refused connect's CLOSE transition is traced. */
struct inet_sock {
	__be16 inet_sport;
} __attribute__((preserve_access_index));

struct task_struct {
	int tgid;
	struct task_struct *real_parent;
	__u64 start_boottime;
} __attribute__((preserve_access_index));

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* the addon may change it before loading */
} sightings SEC(".maps");

/* The connecting process of each TCP socket in SYN_SENT, by socket address. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct ct_sighting);
} pending SEC(".maps");

struct send_key {
	__u64 sk;
	__u32 tgid;
	__u16 sport;
	__u16 pad;
};

/* When each socket, process and port was last reported (LRU: one forgotten is reported again, nothing is lost). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct send_key);
	__type(value, __u64);
} sent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CT_LOSSES);
	__type(key, __u32);
	__type(value, __u64);
} losses SEC(".maps");

static __always_inline void count_loss(__u32 which)
{
	__u64 *n = bpf_map_lookup_elem(&losses, &which);
	if (n)
		__sync_fetch_and_add(n, 1);
}

/* The current process's part of a record. */
static __always_inline void fill_task(struct ct_sighting *s)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();
	__u64 ug = bpf_get_current_uid_gid();

	s->ts = bpf_ktime_get_ns();
	s->pid = id >> 32;
	s->ppid = BPF_CORE_READ(task, real_parent, tgid);
	s->uid = (__u32)ug;
	s->gid = ug >> 32;
	s->start = BPF_CORE_READ(task, start_boottime);
	s->cgroup = bpf_get_current_cgroup_id();
	bpf_get_current_comm(s->comm, sizeof(s->comm));
}

/* The socket's part of a record. */
static __always_inline void fill_sock(struct ct_sighting *s, const struct sock *sk)
{
	s->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	s->sport = __builtin_bswap16(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
	s->dport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	s->netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

/* When a record last woke the reader (ns; CPUs race for it harmlessly:
 * one wake-up more or less). */
__u64 last_wake = 0;

/* Waking the reader is the costly part of a record for the process traced
 * (the kernel's default wakes it for every record it has caught up with: a
 * loop of connects would pay one wake-up each). So a record wakes it only
 * when none did in the last WAKE_GAP_NS, or when a quarter of the ring is
 * waiting; the reader looks again WAKE_GAP_NS after each batch it took
 * (native/src/bpf.c), which picks up the records that did not wake it. */
static __always_inline void emit(const struct ct_sighting *s)
{
	struct ct_sighting *r = bpf_ringbuf_reserve(&sightings, sizeof(*r), 0);
	if (!r) {
		count_loss(CT_LOST_RINGBUF);
		return;
	}
	__builtin_memcpy(r, s, sizeof(*r));
	__u64 now = bpf_ktime_get_ns();
	__u64 flags = BPF_RB_NO_WAKEUP;
	if (now - last_wake >= WAKE_GAP_NS || bpf_ringbuf_query(&sightings, BPF_RB_AVAIL_DATA) >= bpf_ringbuf_query(&sightings, BPF_RB_RING_SIZE) / 4) {
		last_wake = now;
		flags = BPF_RB_FORCE_WAKEUP;
	}
	bpf_ringbuf_submit(r, flags);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tcp_state, const struct sock *sk, const int oldstate, const int newstate)
{
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	__u64 key = (__u64)sk;
	if (oldstate == TCP_CLOSE && newstate == TCP_SYN_SENT) {
		struct ct_sighting s = {};
		fill_task(&s);
		s.kind = CT_CONNECT;
		s.proto = IPPROTO_TCP;
		if (bpf_map_update_elem(&pending, &key, &s, BPF_ANY))
			count_loss(CT_LOST_PENDING);
		return 0;
	}
	if (oldstate != TCP_SYN_SENT)
		return 0;
	struct ct_sighting *p = bpf_map_lookup_elem(&pending, &key);
	if (!p)
		return 0;
	struct ct_sighting s;
	__builtin_memcpy(&s, p, sizeof(s));
	bpf_map_delete_elem(&pending, &key);
	fill_sock(&s, sk);
	if (s.family == AF_INET || s.family == AF_INET6)
		emit(&s);
	return 0;
}

static __always_inline void udp_sent(struct sock *sk, int ret)
{
	if (ret < 0)
		return;
	__u16 proto = BPF_CORE_READ(sk, sk_protocol);
	if (proto != IPPROTO_UDP && proto != IPPROTO_UDPLITE)
		return;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return;
	__u64 id = bpf_get_current_pid_tgid();
	struct send_key k = { .sk = (__u64)sk, .tgid = id >> 32, .sport = BPF_CORE_READ((struct inet_sock *)sk, inet_sport) };
	if (k.sport == 0)
		return;
	__u64 now = bpf_ktime_get_ns();
	__u64 *last = bpf_map_lookup_elem(&sent, &k);
	if (last && now - *last < SEND_INTERVAL_NS)
		return;
	bpf_map_update_elem(&sent, &k, &now, BPF_ANY);
	struct ct_sighting s = {};
	fill_task(&s);
	fill_sock(&s, sk);
	s.kind = CT_SEND;
	s.proto = proto;
	emit(&s);
}

/* Linux 6.3 and later: after each sendmsg of any socket. */
SEC("tp_btf/sock_send_length")
int BPF_PROG(udp_send_tp, struct sock *sk, int ret, int flags)
{
	udp_sent(sk, ret);
	return 0;
}

/* Older kernels (no sock:sock_send_length): the exit of the send system
 * calls (sendto, sendmsg, sendmmsg, write, writev; their numbers set by the
 * addon for its architecture), the descriptor followed to its socket in the
 * caller's file table. It runs in the caller (the right process always,
 * unlike the network device tracepoints, which a packet queued for ARP
 * reaches in softirq). While attached, every system call of every process
 * takes the kernel's slower exit path: see bench/attribute.bench.js.
 * (fexit of udp_sendmsg would cost less, but needs BPF trampolines, which
 * some kernels refuse.) */
const volatile struct {
	__u32 nr[5];
} ct_syscalls = {};

/* pt_regs of x86-64 and of arm64: CO-RE picks the one this kernel has. */
struct pt_regs___x86 {
	unsigned long di;
	unsigned long orig_ax;
} __attribute__((preserve_access_index));

struct pt_regs___arm64 {
	unsigned long orig_x0;
	int syscallno;
} __attribute__((preserve_access_index));

struct inode {
	unsigned short i_mode;
} __attribute__((preserve_access_index));

struct file {
	struct inode *f_inode;
	void *private_data;
} __attribute__((preserve_access_index));

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __attribute__((preserve_access_index));

struct files_struct {
	struct fdtable *fdt;
} __attribute__((preserve_access_index));

struct task_struct___files {
	struct files_struct *files;
} __attribute__((preserve_access_index));

struct socket {
	struct sock *sk;
} __attribute__((preserve_access_index));

#define S_IFMT 00170000
#define S_IFSOCK 0140000

struct pt_regs;

SEC("tp_btf/sys_exit")
int BPF_PROG(udp_send_sys, struct pt_regs *regs, long ret)
{
	long nr;
	unsigned long fd;
	if (ret < 0)
		return 0;
	if (bpf_core_field_exists(((struct pt_regs___x86 *)0)->orig_ax)) {
		struct pt_regs___x86 *r = (void *)regs;
		nr = BPF_CORE_READ(r, orig_ax);
		fd = BPF_CORE_READ(r, di);
	} else {
		struct pt_regs___arm64 *r = (void *)regs;
		nr = BPF_CORE_READ(r, syscallno);
		fd = BPF_CORE_READ(r, orig_x0);
	}
	if (nr != ct_syscalls.nr[0] && nr != ct_syscalls.nr[1] && nr != ct_syscalls.nr[2] &&
	    nr != ct_syscalls.nr[3] && nr != ct_syscalls.nr[4])
		return 0;
	struct task_struct___files *task = (struct task_struct___files *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	bpf_core_read(&f, sizeof(f), fds + fd);
	if (!f || (BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return 0;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (sk)
		udp_sent(sk, 0);
	return 0;
}
