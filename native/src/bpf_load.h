/* Loading, attaching and reading the BPF programs of bpf/sightings.bpf.c
 * through libbpf (bpf_load.c). Plain C, no N-API: bpf.c gives it to
 * JavaScript. Nothing here writes to stderr or aborts: failures are one
 * line of text naming the reason.
 */
#ifndef CT_BPF_LOAD_H
#define CT_BPF_LOAD_H

#include <stddef.h>
#include <linux/types.h>
#include "../bpf/sighting.h"

/* How UDP sends are seen. */
enum ct_udp_route {
	CT_UDP_AUTO = 0,       /* open: the tracepoint where the kernel has it, else the system calls */
	CT_UDP_TRACEPOINT = 1, /* tp_btf/sock_send_length (Linux 6.3+) */
	CT_UDP_SYSCALL = 2,    /* tp_btf/sys_exit of the send system calls */
	CT_UDP_NONE = 3,       /* neither is available: TCP only */
};

struct ct_bpf_opts {
	enum ct_udp_route udp;
	/* Ring buffer size in bytes (a power of two, at least a page); 0: the default (4 MiB). */
	unsigned int ring_bytes;
};

struct bpf_object;
struct bpf_link;
struct ring_buffer;

struct ct_bpf {
	struct bpf_object *obj;
	struct bpf_link *links[4];
	int nlinks;
	struct ring_buffer *rb;
	int losses_fd;
	__u64 lost_seen[CT_LOSSES];
	enum ct_udp_route udp;
	/* Records taken by the last ct_bpf_consume (CT_SIGHTING_SIZE bytes each). */
	unsigned char *buf;
	size_t len, cap;
	int nomem;
};

/* Open, load and attach; 0, or -1 with a one-line reason in err. */
int ct_bpf_open(struct ct_bpf *b, const struct ct_bpf_opts *o, char *err, size_t errlen);
/* Epoll descriptor that becomes readable when records wait. */
int ct_bpf_fd(const struct ct_bpf *b);
/* Take every waiting record into b->buf (replacing what was there); the count, or -errno. */
int ct_bpf_consume(struct ct_bpf *b);
/* Records lost since the last call (ring buffer full, or no room to remember a connecting socket). */
__u64 ct_bpf_lost(struct ct_bpf *b);
/* Detach and free; b may be closed twice. */
void ct_bpf_close(struct ct_bpf *b);
/* Name of a route. */
const char *ct_bpf_route_name(enum ct_udp_route r);

#endif
