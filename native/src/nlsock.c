// A netlink socket read in C (netlink(7)): its readability is watched with a
// uv_poll on Node's own loop, and each wake-up drains it with recvmmsg(2)
// into one Buffer handed to JavaScript in one call (a batch), where the
// 'netlink' package makes one call and one Buffer per datagram. Nothing the
// kernel reports aborts: ENOBUFS (an overrun, when NETLINK_NO_ENOBUFS is not
// set) and a pending socket error are cleared and counted, EAGAIN ends the
// batch, a truncated datagram is counted and skipped, and any other errno is
// handed to JavaScript. Losses are exact: after each batch the socket's
// drop counter (sk_drops, SO_MEMINFO) is read, and its increase reported.
//
//   new NetlinkSocket(protocol, fd, slot, onBatch)
//     protocol  NETLINK_* (fd < 0: a new socket), or an open netlink socket
//               fd to adopt (netns.c makes them in other namespaces)
//     slot      bytes per datagram (larger ones are truncated, counted)
//     onBatch(buf, count, truncated, drops, errno)
//               buf: `count` datagrams, each a u32 length (host order) and
//               its bytes, padded to 4; drops: the drop counter's increase;
//               errno: 0, or a receive error other than those above
//   .fd() .portid() .send(buf) .start() .stop() .ref() .unref() .close()
//   .drops()  the drop counter (sk_drops) as the kernel has it
//   .drain()  read what is queued now, through onBatch (before a close)
//   .coalesce(ms)  the pause under load (see BUSY_BATCH; default 1, 0: none)
//   .lines(host, protos, family)  conntrack mode: each datagram of ctnetlink
//               events becomes NDJSON lines in C (ctlines.c); buf is then a
//               series of entries, each a header of four u32 (host order:
//               length, kind, lines, events decoded) and `length` bytes,
//               padded to 4. Kinds: ENTRY_TS (the batch's `ts`, first),
//               ENTRY_LINES (consecutive datagrams' lines), ENTRY_RAW (a
//               datagram ctlines.c leaves to the JavaScript decoder).
//               count: the datagrams read. host: the `,"host":...` bytes
//               or null; protos: a 32-byte bitmap of protocol numbers or
//               null (all); family: AF_INET, AF_INET6 or 0.
//
//   conntrackLines(datagram, ts, host, protos, family)  ctlines.c on one
//               datagram, for tests: [lines, count, decoded], or null when
//               it is left to the JavaScript decoder
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <uv.h>
#include "addon.h"
#include "ctlines.h"

#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif

/** Datagrams per recvmmsg(2) call. */
#define VLEN 64
/**
 * Datagrams per wake-up at most. Small enough that reading keeps pace with
 * what JavaScript writes out, so that a backlog waits in the socket buffer
 * (hundreds of MiB) rather than in ct-events' bounded queue: with 4096,
 * a loaded machine lost events to the queue while the socket buffer was
 * nearly empty.
 */
#define MAX_PER_WAKE 256
/**
 * Under load (a wake-up that found this many datagrams or more), the socket
 * is left unwatched for a millisecond, so that the next wake-up takes a
 * larger batch: fewer wake-ups, calls into JavaScript and writes, at the
 * price of at most 1 ms of latency, and only while events pour in.
 */
#define BUSY_BATCH 8

/** Kinds of entry in conntrack mode. */
enum { ENTRY_RAW, ENTRY_LINES, ENTRY_TS };
#define NO_BLOCK ((size_t)-1)

typedef struct {
  napi_env env;
  napi_ref wrapper;   // strong while polling
  napi_ref callback;
  napi_async_context async;
  uv_poll_t poll;
  uv_timer_t timer;   // the pause under load
  int fd;
  int polling;        // started by JavaScript (the poll may be paused meanwhile)
  int paused;
  int coalesce_ms;
  int closing;        // uv_close called
  int closed_done;    // both uv_close callbacks ran
  int finalized;
  size_t slot;
  char *arena;        // VLEN * slot
  struct mmsghdr msgs[VLEN];
  struct iovec iov[VLEN];
  char *out;
  size_t out_cap;
  uint32_t drops_seen;
  int lines;          // conntrack mode
  ct_lines_opts lo;
  char *host;         // lo.host's bytes
  size_t block;       // where the open ENTRY_LINES entry starts in out, or NO_BLOCK
} nlsock_t;

static int read_drops(int fd, uint32_t *out) {
  uint32_t mem[SK_MEMINFO_VARS];
  socklen_t len = sizeof mem;
  memset(mem, 0, sizeof mem);
  if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len) != 0) return -1;
  if (len <= SK_MEMINFO_DROPS * sizeof(uint32_t)) return -1;
  *out = mem[SK_MEMINFO_DROPS];
  return 0;
}

static void free_sock(nlsock_t *s) {
  free(s->arena);
  free(s->out);
  free(s->host);
  free(s);
}

static void on_closed(uv_handle_t *h) {
  nlsock_t *s = h->data;
  if (++s->closed_done < 2) return;
  if (s->finalized) free_sock(s);
}

static void on_poll(uv_poll_t *h, int status, int events);
static void on_timer(uv_timer_t *t);

/**
 * Start or stop watching the socket: while it is watched, the wrapper is
 * held strongly, so that the socket is not collected while it can deliver.
 * Returns 0, or the libuv error of a failed start.
 */
static int set_polling(nlsock_t *s, int on) {
  if (on == s->polling) return 0;
  if (on) {
    int r = uv_poll_start(&s->poll, UV_READABLE, on_poll);
    if (r != 0) return r;
  } else {
    uv_poll_stop(&s->poll);
    uv_timer_stop(&s->timer);
    s->paused = 0;
  }
  s->polling = on;
  if (!s->finalized) {
    if (on) napi_reference_ref(s->env, s->wrapper, NULL);
    else napi_reference_unref(s->env, s->wrapper, NULL);
  }
  return 0;
}

static void do_close(nlsock_t *s) {
  if (s->closing) return;
  s->closing = 1;
  set_polling(s, 0);
  uv_close((uv_handle_t *)&s->poll, on_closed);
  uv_close((uv_handle_t *)&s->timer, on_closed);
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
}

static int grow(nlsock_t *s, size_t need) {
  if (need <= s->out_cap) return 1;
  size_t cap = s->out_cap ? s->out_cap : 65536;
  while (cap < need) cap *= 2;
  char *p = realloc(s->out, cap);
  if (!p) return 0;
  s->out = p;
  s->out_cap = cap;
  return 1;
}

static void deliver(nlsock_t *s, size_t len, int count, int truncated, uint32_t drops, int err) {
  napi_env env = s->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb, recv, argv[5], result;
  napi_get_reference_value(env, s->callback, &cb);
  napi_get_reference_value(env, s->wrapper, &recv);
  void *data;
  if (napi_create_buffer_copy(env, len, len ? s->out : "", &data, &argv[0]) != napi_ok) {
    napi_get_null(env, &argv[0]);
  }
  argv[1] = ct_int(env, count);
  argv[2] = ct_int(env, truncated);
  argv[3] = ct_double(env, drops);
  argv[4] = ct_int(env, err);
  if (cb && recv) {
    napi_status st = napi_make_callback(env, s->async, recv, cb, 5, argv, &result);
    if (st == napi_pending_exception) {
      // A bug in the JavaScript callback: reported as any uncaught exception is.
      napi_value ex;
      napi_get_and_clear_last_exception(env, &ex);
      napi_fatal_exception(env, ex);
    }
  }
  napi_close_handle_scope(env, scope);
}

/**
 * Append a datagram, or in conntrack mode an entry of `kind`: its header,
 * its bytes, padding to 4. 0: out of memory.
 */
static int append(nlsock_t *s, size_t *len, const void *data, size_t n, int kind) {
  size_t head = s->lines ? 16 : 4;
  size_t padded = (n + 3) & ~(size_t)3;
  if (!grow(s, *len + head + padded)) return 0;
  uint32_t h[4] = { (uint32_t)n, (uint32_t)kind, 0, 0 };
  memcpy(s->out + *len, h, head);
  memcpy(s->out + *len + head, data, n);
  memset(s->out + *len + head + n, 0, padded - n);
  *len += head + padded;
  return 1;
}

/** Conntrack mode: the open ENTRY_LINES entry gets its length and padding. 0: out of memory. */
static int close_block(nlsock_t *s, size_t *len) {
  if (s->block == NO_BLOCK) return 1;
  uint32_t n = (uint32_t)(*len - s->block - 16);
  size_t pad = ((n + 3) & ~(uint32_t)3) - n;
  if (!grow(s, *len + pad)) return 0;
  memcpy(s->out + s->block, &n, 4);
  memset(s->out + *len, 0, pad);
  *len += pad;
  s->block = NO_BLOCK;
  return 1;
}

/** Conntrack mode: a datagram's lines into the open ENTRY_LINES entry, or the datagram as ENTRY_RAW. 0: out of memory. */
static int append_lines(nlsock_t *s, size_t *len, const uint8_t *d, size_t n) {
  for (;;) {
    if (s->block == NO_BLOCK) {
      uint32_t h[4] = { 0, ENTRY_LINES, 0, 0 };
      if (!grow(s, *len + 16)) return 0;
      memcpy(s->out + *len, h, 16);
      s->block = *len;
      *len += 16;
    }
    uint32_t counts[2];
    memcpy(counts, s->out + s->block + 8, 8);
    long r = ct_lines_datagram(d, n, s->out + *len, s->out_cap - *len, &s->lo, &counts[0], &counts[1]);
    if (r == CT_LINES_NO_ROOM) {
      if (!grow(s, s->out_cap + 65536)) return 0;
      continue;
    }
    if (r == CT_LINES_DECLINE) return close_block(s, len) && append(s, len, d, n, ENTRY_RAW);
    memcpy(s->out + s->block + 8, counts, 8);
    *len += (size_t)r;
    return 1;
  }
}

static void drain(nlsock_t *s, int err_in) {
  size_t len = 0;
  int count = 0, truncated = 0, err = err_in;
  s->block = NO_BLOCK;
  if (s->lines) {
    ct_lines_now(s->lo.ts);
    if (!append(s, &len, s->lo.ts, CT_TS_LEN, ENTRY_TS)) len = 0;
  }
  while (count < MAX_PER_WAKE && s->fd >= 0) {
    for (int i = 0; i < VLEN; i++) {
      s->iov[i].iov_base = s->arena + (size_t)i * s->slot;
      s->iov[i].iov_len = s->slot;
      memset(&s->msgs[i].msg_hdr, 0, sizeof s->msgs[i].msg_hdr);
      s->msgs[i].msg_hdr.msg_iov = &s->iov[i];
      s->msgs[i].msg_hdr.msg_iovlen = 1;
      s->msgs[i].msg_len = 0;
    }
    int n = recvmmsg(s->fd, s->msgs, VLEN, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      // An overrun reported (NETLINK_NO_ENOBUFS unset): the kernel cleared
      // it in reporting it; the lost datagrams are in the drop counter.
      if (errno == ENOBUFS) continue;
      err = errno;
      break;
    }
    for (int i = 0; i < n; i++) {
      size_t got = s->msgs[i].msg_len;
      if ((s->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) || got > s->slot) {
        truncated++;
        continue;
      }
      int ok = s->lines ? append_lines(s, &len, s->iov[i].iov_base, got) : append(s, &len, s->iov[i].iov_base, got, 0);
      if (!ok) { truncated++; continue; }
      count++;
    }
    if (n < VLEN) break;
  }
  if (!close_block(s, &len)) { truncated += count; count = 0; len = 0; } // no memory: counted as lost
  uint32_t drops = 0, now;
  if (s->fd >= 0 && read_drops(s->fd, &now) == 0) {
    drops = now - s->drops_seen;
    s->drops_seen = now;
  }
  if (count || truncated || drops || err) deliver(s, len, count, truncated, drops, err);
  if (s->polling && !s->closing && !s->paused && s->coalesce_ms > 0 && count >= BUSY_BATCH && count < MAX_PER_WAKE) {
    uv_poll_stop(&s->poll);
    s->paused = 1;
    uv_timer_start(&s->timer, on_timer, (uint64_t)s->coalesce_ms, 0);
  }
}

static void on_timer(uv_timer_t *t) {
  nlsock_t *s = t->data;
  s->paused = 0;
  if (!s->polling || s->closing) return;
  if (uv_poll_start(&s->poll, UV_READABLE, on_poll) != 0) {
    drain(s, EIO);
    return;
  }
  drain(s, 0);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  nlsock_t *s = h->data;
  if (s->closing) return;
  int err = 0;
  if (status < 0) {
    // libuv stops the handle on POLLERR (a pending socket error, such as
    // ENOBUFS after an overrun): take the error, which clears it, and go on.
    int soerr = 0;
    socklen_t l = sizeof soerr;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &l) != 0) soerr = errno;
    if (soerr != 0 && soerr != ENOBUFS) err = soerr;
    if (soerr == EBADF || soerr == ENOTSOCK || (soerr == 0 && status != UV_EBADF)) err = soerr ? soerr : EIO;
    if (s->polling && !s->paused && uv_poll_start(&s->poll, UV_READABLE, on_poll) != 0) {
      s->polling = 0;
      err = err ? err : EIO;
    }
  }
  drain(s, err);
}

static nlsock_t *unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  nlsock_t *s = NULL;
  napi_get_cb_info(env, info, argc, argv, &self, NULL);
  if (napi_unwrap(env, self, (void **)&s) != napi_ok || !s) {
    ct_throw_type(env, "not a NetlinkSocket");
    return NULL;
  }
  return s;
}

static nlsock_t *open_sock(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  nlsock_t *s = unwrap(env, info, argc, argv);
  if (s && s->fd < 0) {
    ct_throw_errno(env, EBADF, "netlink socket closed");
    return NULL;
  }
  return s;
}

static void finalize(napi_env env, void *data, void *hint) {
  nlsock_t *s = data;
  s->finalized = 1;
  napi_delete_reference(env, s->callback);
  napi_async_destroy(env, s->async);
  if (!s->closing) do_close(s);
  if (s->closed_done >= 2) free_sock(s);
}

static napi_value js_new(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], self;
  napi_get_cb_info(env, info, &argc, argv, &self, NULL);
  int32_t protocol, fd, slot;
  if (argc < 4) return ct_throw_type(env, "new NetlinkSocket(protocol, fd, slot, onBatch)");
  if (!ct_arg_int(env, argv[0], &protocol, "protocol") || !ct_arg_int(env, argv[1], &fd, "fd") || !ct_arg_int(env, argv[2], &slot, "slot")) return NULL;
  napi_valuetype t;
  napi_typeof(env, argv[3], &t);
  if (t != napi_function) return ct_throw_type(env, "onBatch must be a function");
  if (slot < 256 || slot > (1 << 20)) return ct_throw_type(env, "slot must be 256 bytes to 1 MiB");
  if (fd < 0) {
    fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol);
    if (fd < 0) return ct_throw_errno(env, errno, "netlink socket");
    struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
      int e = errno;
      close(fd);
      return ct_throw_errno(env, e, "bind netlink socket");
    }
  } else {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) return ct_throw_errno(env, errno, "adopted netlink socket");
  }
  nlsock_t *s = calloc(1, sizeof *s);
  if (!s) { close(fd); return ct_throw_errno(env, ENOMEM, "netlink socket"); }
  s->env = env;
  s->fd = fd;
  s->slot = (size_t)slot;
  s->arena = malloc((size_t)VLEN * s->slot);
  if (!s->arena) { close(fd); free(s); return ct_throw_errno(env, ENOMEM, "netlink socket buffer"); }
  read_drops(fd, &s->drops_seen);
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  int r = uv_poll_init_socket(loop, &s->poll, fd);
  if (r != 0) { close(fd); free_sock(s); return ct_throw_errno(env, -r, "uv_poll_init"); }  // before the timer: nothing to close yet
  s->poll.data = s;
  uv_timer_init(loop, &s->timer);
  s->timer.data = s;
  s->coalesce_ms = 1;
  s->closed_done = 0;
  napi_create_reference(env, argv[3], 1, &s->callback);
  napi_value name;
  napi_create_string_utf8(env, "ctpipe:NetlinkSocket", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, self, name, &s->async);
  napi_wrap(env, self, s, finalize, NULL, &s->wrapper);
  return self;
}

static napi_value js_fd(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  nlsock_t *s = unwrap(env, info, &argc, NULL);
  return s ? ct_int(env, s->fd) : NULL;
}

static napi_value js_portid(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  nlsock_t *s = open_sock(env, info, &argc, NULL);
  if (!s) return NULL;
  struct sockaddr_nl sa;
  socklen_t len = sizeof sa;
  if (getsockname(s->fd, (struct sockaddr *)&sa, &len) != 0) return ct_throw_errno(env, errno, "getsockname");
  return ct_double(env, sa.nl_pid);
}

static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  nlsock_t *s = open_sock(env, info, &argc, argv);
  if (!s) return NULL;
  void *data;
  size_t len;
  bool is;
  if (argc < 1 || napi_is_buffer(env, argv[0], &is) != napi_ok || !is) return ct_throw_type(env, "send(buffer)");
  napi_get_buffer_info(env, argv[0], &data, &len);
  struct sockaddr_nl to = { .nl_family = AF_NETLINK };
  ssize_t n;
  do n = sendto(s->fd, data, len, 0, (struct sockaddr *)&to, sizeof to);
  while (n < 0 && errno == EINTR);
  if (n < 0) return ct_throw_errno(env, errno, "netlink send");
  return ct_double(env, (double)n);
}

static napi_value js_start(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  nlsock_t *s = open_sock(env, info, &argc, NULL);
  int r = s ? set_polling(s, 1) : 0;
  return r != 0 ? ct_throw_errno(env, -r, "uv_poll_start") : NULL;
}

static napi_value js_stop(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  nlsock_t *s = unwrap(env, info, &argc, NULL);
  if (s && !s->closing) set_polling(s, 0);
  return NULL;
}

static napi_value js_ref(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  nlsock_t *s = unwrap(env, info, &argc, NULL);
  if (s && !s->closing) { uv_ref((uv_handle_t *)&s->poll); uv_ref((uv_handle_t *)&s->timer); }
  return NULL;
}

static napi_value js_unref(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  nlsock_t *s = unwrap(env, info, &argc, NULL);
  if (s && !s->closing) { uv_unref((uv_handle_t *)&s->poll); uv_unref((uv_handle_t *)&s->timer); }
  return NULL;
}

static napi_value js_drops(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  nlsock_t *s = open_sock(env, info, &argc, NULL);
  if (!s) return NULL;
  uint32_t now;
  if (read_drops(s->fd, &now) != 0) return ct_throw_errno(env, errno, "SO_MEMINFO");
  return ct_double(env, now);
}

static napi_value js_coalesce(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  nlsock_t *s = unwrap(env, info, &argc, argv);
  int32_t ms;
  if (!s || argc < 1 || !ct_arg_int(env, argv[0], &ms, "ms")) return NULL;
  s->coalesce_ms = ms < 0 ? 0 : ms;
  return NULL;
}

static napi_value js_drain(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  nlsock_t *s = unwrap(env, info, &argc, NULL);
  if (s && s->fd >= 0 && !s->closing) drain(s, 0);
  return NULL;
}

/**
 * Conntrack mode's options from (host, protos, family): host a Buffer or
 * null, protos a Buffer of 32 bytes or null, family a number. The host's
 * bytes are copied to *host (freed by the caller). 0: a TypeError is thrown.
 */
static int lines_opts(napi_env env, napi_value *argv, ct_lines_opts *o, char **host) {
  memset(o, 0, sizeof *o);
  *host = NULL;
  bool is;
  void *data;
  size_t n;
  napi_valuetype t;
  napi_typeof(env, argv[0], &t);
  if (t != napi_null) {
    if (napi_is_buffer(env, argv[0], &is) != napi_ok || !is) { ct_throw_type(env, "host must be a Buffer or null"); return 0; }
    napi_get_buffer_info(env, argv[0], &data, &n);
    *host = malloc(n ? n : 1);
    if (!*host) { ct_throw_errno(env, ENOMEM, "host"); return 0; }
    memcpy(*host, data, n);
    o->host = *host;
    o->host_len = n;
  }
  napi_typeof(env, argv[1], &t);
  if (t == napi_null) o->all_protos = 1;
  else {
    if (napi_is_buffer(env, argv[1], &is) != napi_ok || !is) { ct_throw_type(env, "protos must be a Buffer of 32 bytes or null"); return 0; }
    napi_get_buffer_info(env, argv[1], &data, &n);
    if (n != sizeof o->protos) { ct_throw_type(env, "protos must be a Buffer of 32 bytes or null"); return 0; }
    memcpy(o->protos, data, n);
  }
  int32_t fam;
  if (!ct_arg_int(env, argv[2], &fam, "family")) return 0;
  o->family = fam;
  return 1;
}

static napi_value js_lines(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  nlsock_t *s = unwrap(env, info, &argc, argv);
  if (!s) return NULL;
  if (argc < 3) return ct_throw_type(env, "lines(host, protos, family)");
  ct_lines_opts o;
  char *host;
  if (!lines_opts(env, argv, &o, &host)) { free(host); return NULL; }
  free(s->host);
  s->host = host;
  s->lo = o;
  s->lines = 1;
  return NULL;
}

static napi_value js_conntrack_lines(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], result = NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 5) return ct_throw_type(env, "conntrackLines(datagram, ts, host, protos, family)");
  bool is;
  void *d;
  size_t n, tslen;
  if (napi_is_buffer(env, argv[0], &is) != napi_ok || !is) return ct_throw_type(env, "datagram must be a Buffer");
  napi_get_buffer_info(env, argv[0], &d, &n);
  ct_lines_opts o;
  char *host;
  if (!lines_opts(env, argv + 2, &o, &host)) { free(host); return NULL; }
  if (napi_get_value_string_latin1(env, argv[1], o.ts, sizeof o.ts, &tslen) != napi_ok || tslen != CT_TS_LEN) {
    free(host);
    return ct_throw_type(env, "ts must be a string of 27 characters");
  }
  size_t cap = 4096 + 32 * n;
  char *out = malloc(cap);
  uint32_t emitted = 0, received = 0;
  long r = out ? ct_lines_datagram(d, n, out, cap, &o, &emitted, &received) : CT_LINES_NO_ROOM;
  if (r >= 0) {
    napi_value v[3];
    void *copy;
    napi_create_buffer_copy(env, (size_t)r, out, &copy, &v[0]);
    v[1] = ct_double(env, emitted);
    v[2] = ct_double(env, received);
    napi_create_array_with_length(env, 3, &result);
    for (uint32_t i = 0; i < 3; i++) napi_set_element(env, result, i, v[i]);
  } else if (r == CT_LINES_DECLINE) {
    napi_get_null(env, &result);
  } else {
    ct_throw_errno(env, ENOMEM, "conntrackLines");
  }
  free(out);
  free(host);
  return result;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  nlsock_t *s = unwrap(env, info, &argc, NULL);
  if (s) do_close(s);
  return NULL;
}

void ct_register_nlsock(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
    { "fd", NULL, js_fd, NULL, NULL, NULL, napi_default_method, NULL },
    { "portid", NULL, js_portid, NULL, NULL, NULL, napi_default_method, NULL },
    { "send", NULL, js_send, NULL, NULL, NULL, napi_default_method, NULL },
    { "start", NULL, js_start, NULL, NULL, NULL, napi_default_method, NULL },
    { "stop", NULL, js_stop, NULL, NULL, NULL, napi_default_method, NULL },
    { "ref", NULL, js_ref, NULL, NULL, NULL, napi_default_method, NULL },
    { "unref", NULL, js_unref, NULL, NULL, NULL, napi_default_method, NULL },
    { "drops", NULL, js_drops, NULL, NULL, NULL, napi_default_method, NULL },
    { "coalesce", NULL, js_coalesce, NULL, NULL, NULL, napi_default_method, NULL },
    { "drain", NULL, js_drain, NULL, NULL, NULL, napi_default_method, NULL },
    { "lines", NULL, js_lines, NULL, NULL, NULL, napi_default_method, NULL },
    { "close", NULL, js_close, NULL, NULL, NULL, napi_default_method, NULL },
  };
  napi_value cls;
  napi_define_class(env, "NetlinkSocket", NAPI_AUTO_LENGTH, js_new, NULL, sizeof methods / sizeof methods[0], methods, &cls);
  napi_set_named_property(env, exports, "NetlinkSocket", cls);
  ct_export(env, exports, "conntrackLines", js_conntrack_lines);
}
