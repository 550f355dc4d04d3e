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
  free(s);
}

static void on_closed(uv_handle_t *h) {
  nlsock_t *s = h->data;
  if (++s->closed_done < 2) return;
  if (s->finalized) free_sock(s);
}

static void do_close(nlsock_t *s) {
  if (s->closing) return;
  s->closing = 1;
  if (s->polling) {
    uv_poll_stop(&s->poll);
    uv_timer_stop(&s->timer);
    s->polling = 0;
    if (!s->finalized) napi_reference_unref(s->env, s->wrapper, NULL);
  }
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

static void on_poll(uv_poll_t *h, int status, int events);
static void on_timer(uv_timer_t *t);

static void drain(nlsock_t *s, int err_in) {
  size_t len = 0;
  int count = 0, truncated = 0, err = err_in;
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
      size_t padded = (got + 3) & ~(size_t)3;
      if (!grow(s, len + 4 + padded)) { truncated++; continue; }
      uint32_t l = (uint32_t)got;
      memcpy(s->out + len, &l, 4);
      memcpy(s->out + len + 4, s->iov[i].iov_base, got);
      memset(s->out + len + 4 + got, 0, padded - got);
      len += 4 + padded;
      count++;
    }
    if (n < VLEN) break;
  }
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
  if (!s || s->polling) return NULL;
  int r = uv_poll_start(&s->poll, UV_READABLE, on_poll);
  if (r != 0) return ct_throw_errno(env, -r, "uv_poll_start");
  s->polling = 1;
  napi_reference_ref(env, s->wrapper, NULL);
  return NULL;
}

static napi_value js_stop(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  nlsock_t *s = unwrap(env, info, &argc, NULL);
  if (!s || !s->polling || s->closing) return NULL;
  uv_poll_stop(&s->poll);
  uv_timer_stop(&s->timer);
  s->paused = 0;
  s->polling = 0;
  napi_reference_unref(env, s->wrapper, NULL);
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
    { "close", NULL, js_close, NULL, NULL, NULL, napi_default_method, NULL },
  };
  napi_value cls;
  napi_define_class(env, "NetlinkSocket", NAPI_AUTO_LENGTH, js_new, NULL, sizeof methods / sizeof methods[0], methods, &cls);
  napi_set_named_property(env, exports, "NetlinkSocket", cls);
}
