/* The record the BPF programs of sightings.bpf.c write to their ring buffer
 * and the addon (src/bpf.c) reads: one process seen with a local port, at
 * syscall time. Shared by both sides; the includer provides __u8..__u64.
 * The layout is also decoded in src/native/bpf.ts (decodeSightings): a
 * change here is a change there.
 */
#ifndef CT_SIGHTING_H
#define CT_SIGHTING_H

enum ct_sighting_kind {
	CT_CONNECT = 1, /* TCP connect (or Fast Open send): the socket's transition out of SYN_SENT */
	CT_SEND = 2,    /* UDP or UDP-Lite send: first by this process on this socket and port in an interval */
};

/* Indexes of the loss counters (the `losses` array map). */
enum ct_loss {
	CT_LOST_RINGBUF = 0, /* the ring buffer was full */
	CT_LOST_PENDING = 1, /* too many TCP sockets in SYN_SENT to remember another's connecting process */
	CT_LOSSES = 2,
};

struct ct_sighting {
	__u64 ts;      /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 start;   /* the process's start, ns since boot (task_struct.start_boottime) */
	__u64 cgroup;  /* cgroup v2 id of the process */
	__u32 pid;     /* thread group id */
	__u32 ppid;    /* real parent's thread group id */
	__u32 uid;
	__u32 gid;
	__u32 netns;   /* inode of the socket's network namespace */
	__u16 sport;   /* host order */
	__u16 dport;   /* host order; 0 when not connected */
	__u8 kind;     /* enum ct_sighting_kind */
	__u8 family;   /* AF_INET 2, AF_INET6 10 */
	__u8 proto;    /* IPPROTO_TCP 6, IPPROTO_UDP 17, IPPROTO_UDPLITE 136 */
	__u8 pad[5];
	char comm[16];
};

#define CT_SIGHTING_SIZE 72

#endif
