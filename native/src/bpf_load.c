/* Loads the CO-RE object of bpf/sightings.bpf.c (embedded at build time,
 * see bpf/embed.js) with libbpf, attaches its BTF-typed hooks by name (the
 * bpf(2) syscall only: no tracefs, no perf kprobes), and reads its ring
 * buffer. Before loading it checks what is most often missing, so that a
 * failure is one line naming the reason: BTF, the kernel version (5.8 for
 * the ring buffer and CAP_BPF), the capabilities (CAP_BPF and CAP_PERFMON,
 * or CAP_SYS_ADMIN).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <linux/capability.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "bpf_load.h"
#include "sightings.bpf.obj.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

const char *ct_bpf_route_name(enum ct_udp_route r)
{
	switch (r) {
	case CT_UDP_TRACEPOINT: return "tracepoint";
	case CT_UDP_SYSCALL: return "syscall";
	case CT_UDP_NONE: return "none";
	default: return "auto";
	}
}

/* libbpf's last warning, kept for the error line instead of printed. */
static char last_log[256];

static int keep_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	char line[sizeof(last_log)];
	vsnprintf(line, sizeof(line), fmt, ap);
	size_t n = strcspn(line, "\n");
	line[n] = 0;
	if (n)
		memcpy(last_log, line, n + 1);
	return 0;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Whether this process holds capability `cap` in its effective set. */
static int has_cap(int cap)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) != 0)
		return 0;
	return (d[cap / 32].effective >> (cap % 32)) & 1;
}

static int kernel_at_least(int major, int minor, char *release, size_t len)
{
	struct utsname u;
	int ma = 0, mi = 0;
	if (uname(&u) != 0)
		return 1;
	snprintf(release, len, "%s", u.release);
	if (sscanf(u.release, "%d.%d", &ma, &mi) != 2)
		return 1;
	return ma > major || (ma == major && mi >= minor);
}

/* Whether a seccomp filter watches this process's system calls (systemd's
 * SystemCallFilter=: bpf(2) is in none of its usual groups). */
static int seccomp_filtered(void)
{
	char line[128];
	int mode = 0;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Seccomp: %d", &mode) == 1)
			break;
	fclose(f);
	return mode == 2;
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct ct_bpf *b = ctx;
	if (size < CT_SIGHTING_SIZE)
		return 0;
	if (b->len + CT_SIGHTING_SIZE > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64 * CT_SIGHTING_SIZE;
		unsigned char *p = realloc(b->buf, cap);
		if (!p) {
			/* Out of memory: the record is dropped and counted. */
			b->nomem++;
			return 0;
		}
		b->buf = p;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, data, CT_SIGHTING_SIZE);
	b->len += CT_SIGHTING_SIZE;
	return 0;
}

static int attach(struct ct_bpf *b, const char *name, char *err, size_t errlen)
{
	struct bpf_program *p = bpf_object__find_program_by_name(b->obj, name);
	struct bpf_link *l = p ? bpf_program__attach(p) : NULL;
	if (!l)
		return fail(err, errlen, "cannot attach %s: %s", name, strerror(p ? errno : ENOENT));
	b->links[b->nlinks++] = l;
	return 0;
}

/* Which hooks this kernel has, by their BTF types: read only to name why a
 * load failed (or to fall back to the system call route), because libbpf
 * reads the kernel's BTF again for the load itself: read up front too, it
 * cost a third of the time to attach. */
static int probe_hooks(int *has_state, int *has_send, int *has_exit)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	if (!vmlinux)
		return -1;
	*has_state = btf__find_by_name_kind(vmlinux, "btf_trace_inet_sock_set_state", BTF_KIND_TYPEDEF) > 0;
	*has_send = btf__find_by_name_kind(vmlinux, "btf_trace_sock_send_length", BTF_KIND_TYPEDEF) > 0;
	*has_exit = btf__find_by_name_kind(vmlinux, "btf_trace_sys_exit", BTF_KIND_TYPEDEF) > 0;
	btf__free(vmlinux);
	return 0;
}

/* Open, load and attach the programs of route b->udp; on failure all is freed and `err` says why. */
static int load(struct ct_bpf *b, unsigned int ring, char *err, size_t errlen)
{
	last_log[0] = 0;
	LIBBPF_OPTS(bpf_object_open_opts, oo, .object_name = "ctpipe_sightings");
	b->obj = bpf_object__open_mem(ct_sightings_obj, sizeof(ct_sightings_obj), &oo);
	if (!b->obj) {
		int e = errno;
		b->obj = NULL;
		return fail(err, errlen, "cannot open the BPF object: %s%s%s", strerror(e), last_log[0] ? ": " : "", last_log);
	}
	bpf_program__set_autoload(bpf_object__find_program_by_name(b->obj, "udp_send_tp"), b->udp == CT_UDP_TRACEPOINT);
	bpf_program__set_autoload(bpf_object__find_program_by_name(b->obj, "udp_send_sys"), b->udp == CT_UDP_SYSCALL);
	/* The send system calls of this architecture (the addon is built for it). */
	struct { __u32 nr[5]; } calls = { { __NR_sendto, __NR_sendmsg, __NR_sendmmsg, __NR_write, __NR_writev } };
	struct bpf_map *rodata = bpf_object__find_map_by_name(b->obj, ".rodata");
	if (!rodata || bpf_map__set_initial_value(rodata, &calls, sizeof(calls)) != 0) {
		ct_bpf_close(b);
		return fail(err, errlen, "the BPF object has no room for the system call numbers");
	}
	bpf_map__set_max_entries(bpf_object__find_map_by_name(b->obj, "sightings"), ring);
	if (bpf_object__load(b->obj) != 0) {
		int e = errno;
		/* The capabilities were checked above: a seccomp filter is the likelier refusal. */
		const char *why = (e == EPERM || e == EACCES) && seccomp_filtered() ? "permission denied under a seccomp system call filter (systemd: SystemCallFilter=bpf)"
			: e == EPERM || e == EACCES ? "permission denied (CAP_BPF and CAP_PERFMON in the initial user namespace, and kernel.unprivileged_bpf_disabled or a security module allowing them)" : strerror(e);
		snprintf(err, errlen, "cannot load the BPF programs: %s%s%s", why, last_log[0] ? ": libbpf: " : "", last_log);
		ct_bpf_close(b);
		return -1;
	}
	if (attach(b, "tcp_state", err, errlen) != 0 ||
	    (b->udp == CT_UDP_TRACEPOINT && attach(b, "udp_send_tp", err, errlen) != 0) ||
	    (b->udp == CT_UDP_SYSCALL && attach(b, "udp_send_sys", err, errlen) != 0)) {
		ct_bpf_close(b);
		return -1;
	}
	b->losses_fd = bpf_map__fd(bpf_object__find_map_by_name(b->obj, "losses"));
	b->rb = ring_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(b->obj, "sightings")), on_record, b, NULL);
	if (!b->rb) {
		snprintf(err, errlen, "cannot read the BPF ring buffer: %s", strerror(errno));
		ct_bpf_close(b);
		return -1;
	}
	return 0;
}

int ct_bpf_open(struct ct_bpf *b, const struct ct_bpf_opts *o, char *err, size_t errlen)
{
	char release[65] = "";
	memset(b, 0, sizeof(*b));
	b->losses_fd = -1;
	libbpf_set_print(keep_log);
	last_log[0] = 0;

	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
		return fail(err, errlen, "this kernel has no BTF (/sys/kernel/btf/vmlinux: CONFIG_DEBUG_INFO_BTF), which the BPF programs need");
	if (!kernel_at_least(5, 8, release, sizeof(release)))
		return fail(err, errlen, "kernel %s is too old: the BPF programs need Linux 5.8 or later (BPF ring buffer, CAP_BPF)", release);
	if (!has_cap(CAP_SYS_ADMIN) && !(has_cap(CAP_BPF) && has_cap(CAP_PERFMON))) {
		int bpf = has_cap(CAP_BPF), perf = has_cap(CAP_PERFMON);
		return fail(err, errlen, "missing %s%s%s to load BPF programs", bpf ? "" : "CAP_BPF", !bpf && !perf ? " and " : "", perf ? "" : "CAP_PERFMON");
	}
	unsigned int ring = o->ring_bytes ? o->ring_bytes : 4u << 20;
	if (ring < 4096 || (ring & (ring - 1)))
		return fail(err, errlen, "ring buffer size %u is not a power of two of at least 4096 bytes", ring);

	/* UDP by sock:sock_send_length unless told otherwise: Linux 6.3 and
	 * later have it. Only when the load fails is the kernel's BTF asked
	 * which hooks it has, to fall back or to name the reason. */
	b->udp = o->udp == CT_UDP_AUTO ? CT_UDP_TRACEPOINT : o->udp;
	if (load(b, ring, err, errlen) == 0)
		return 0;
	int has_state, has_send, has_exit;
	if (probe_hooks(&has_state, &has_send, &has_exit) != 0)
		return -1; /* the load's own reason stands */
	if (!has_state)
		return fail(err, errlen, "kernel %s has no BTF-typed tracepoint sock:inet_sock_set_state", release);
	if (b->udp == CT_UDP_TRACEPOINT && !has_send) {
		if (o->udp != CT_UDP_AUTO)
			return fail(err, errlen, "kernel %s has no tracepoint sock:sock_send_length (Linux 6.3 and later)", release);
		b->udp = has_exit ? CT_UDP_SYSCALL : CT_UDP_NONE;
		return load(b, ring, err, errlen);
	}
	if (b->udp == CT_UDP_SYSCALL && !has_exit)
		return fail(err, errlen, "kernel %s has no tracepoint raw_syscalls:sys_exit", release);
	return -1;
}

int ct_bpf_fd(const struct ct_bpf *b)
{
	return b->rb ? ring_buffer__epoll_fd(b->rb) : -1;
}

int ct_bpf_consume(struct ct_bpf *b)
{
	b->len = 0;
	if (!b->rb)
		return 0;
	int n = ring_buffer__consume(b->rb);
	if (n < 0)
		return n;
	return (int)(b->len / CT_SIGHTING_SIZE);
}

__u64 ct_bpf_lost(struct ct_bpf *b)
{
	__u64 lost = b->nomem;
	b->nomem = 0;
	if (b->losses_fd < 0)
		return lost;
	for (__u32 i = 0; i < CT_LOSSES; i++) {
		__u64 v = 0;
		if (bpf_map_lookup_elem(b->losses_fd, &i, &v) == 0 && v > b->lost_seen[i]) {
			lost += v - b->lost_seen[i];
			b->lost_seen[i] = v;
		}
	}
	return lost;
}

void ct_bpf_close(struct ct_bpf *b)
{
	if (b->rb)
		ring_buffer__free(b->rb);
	b->rb = NULL;
	for (int i = 0; i < b->nlinks; i++)
		bpf_link__destroy(b->links[i]);
	b->nlinks = 0;
	if (b->obj)
		bpf_object__close(b->obj);
	b->obj = NULL;
	b->losses_fd = -1;
	free(b->buf);
	b->buf = NULL;
	b->len = b->cap = 0;
}
