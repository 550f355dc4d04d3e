// ctpipe_bpf.node: the syscall-time sightings (bpf_load.c) for JavaScript,
// in a .node of its own, the only one linked with libbpf (libbpf.so.1), so
// that ctpipe.node loads without it:
//   bpfOpen({udp, ringBytes}, onBatch) -> {udp, attachMs, drain(), close()}
// The ring buffer's epoll descriptor is watched with uv_poll on Node's own
// loop, and looked at again 1 ms after each batch (the programs wake the
// loop at most once a millisecond: see emit() in bpf/sightings.bpf.c);
// every waiting record is taken in C and handed
// to onBatch(records: Buffer of CT_SIGHTING_SIZE-byte records, lost: number
// of records lost since the last call, monoToEpochMs: add to a record's
// ts/1e6 for ms since the epoch). A failure to load throws an Error whose
// message is one line naming the reason.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>
#include "addon.h"
#include "bpf_load.h"

typedef struct {
  struct ct_bpf b;
  napi_env env;
  napi_ref self;
  napi_ref cb;
  napi_async_context actx;
  uv_poll_t *poll;
  // A second look 1 ms after a batch: the records that did not wake us (sightings.bpf.c's emit).
  uv_timer_t *again;
  int open;
} bpf_state;

static double now_ms(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

// Take the waiting records and hand them over; from_loop: called by uv_poll
// (outside JavaScript), else by drain() (inside a JavaScript call).
static int deliver(bpf_state *st, int from_loop) {
  napi_env env = st->env;
  if (!st->open) return 0;
  int n = ct_bpf_consume(&st->b);
  double lost = (double)ct_bpf_lost(&st->b);
  if (n <= 0 && lost == 0) return 0;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return n;
  napi_value argv[3], self, cb, buf;
  void *data;
  size_t len = n > 0 ? (size_t)n * CT_SIGHTING_SIZE : 0;
  napi_create_buffer_copy(env, len, len ? (const void *)st->b.buf : (const void *)"", &data, &buf);
  argv[0] = buf;
  napi_create_double(env, lost, &argv[1]);
  napi_create_double(env, now_ms(CLOCK_REALTIME) - now_ms(CLOCK_MONOTONIC), &argv[2]);
  napi_get_reference_value(env, st->self, &self);
  napi_get_reference_value(env, st->cb, &cb);
  if (from_loop) {
    napi_status s = napi_make_callback(env, st->actx, self, cb, 3, argv, NULL);
    if (s == napi_pending_exception) {
      // As any callback of Node's own would: to process.on('uncaughtException').
      napi_value e;
      napi_get_and_clear_last_exception(env, &e);
      napi_fatal_exception(env, e);
    }
  } else {
    napi_call_function(env, self, cb, 3, argv, NULL);
  }
  napi_close_handle_scope(env, scope);
  return n;
}

// After a batch, look again in 1 ms (and so on while records keep coming).
static void on_again(uv_timer_t *t) {
  bpf_state *st = t->data;
  if (deliver(st, 1) > 0 && st->again) uv_timer_start(st->again, on_again, 1, 0);
}

static void on_readable(uv_poll_t *h, int status, int events) {
  bpf_state *st = h->data;
  if (deliver(st, 1) > 0 && st->again) uv_timer_start(st->again, on_again, 1, 0);
}

static void free_handle(uv_handle_t *h) {
  free(h);
}

static void stop(bpf_state *st) {
  if (st->poll) {
    uv_poll_stop(st->poll);
    uv_close((uv_handle_t *)st->poll, free_handle);
    st->poll = NULL;
  }
  if (st->again) {
    uv_timer_stop(st->again);
    uv_close((uv_handle_t *)st->again, free_handle);
    st->again = NULL;
  }
  if (st->open) ct_bpf_close(&st->b);
  st->open = 0;
}

static void finalize(napi_env env, void *data, void *hint) {
  bpf_state *st = data;
  stop(st);
  if (st->cb) napi_delete_reference(env, st->cb);
  if (st->self) napi_delete_reference(env, st->self);
  if (st->actx) napi_async_destroy(env, st->actx);
  free(st);
}

static bpf_state *unwrap(napi_env env, napi_callback_info info) {
  napi_value self;
  void *st = NULL;
  napi_get_cb_info(env, info, NULL, NULL, &self, NULL);
  if (napi_unwrap(env, self, &st) != napi_ok || !st) {
    ct_throw_type(env, "not a bpf handle");
    return NULL;
  }
  return st;
}

static napi_value js_drain(napi_env env, napi_callback_info info) {
  bpf_state *st = unwrap(env, info);
  if (st) (void)deliver(st, 0);
  return NULL;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  bpf_state *st = unwrap(env, info);
  if (st) {
    // What is still waiting, and the last losses, before the programs go.
    deliver(st, 0);
    stop(st);
  }
  return NULL;
}

static int get_string(napi_env env, napi_value obj, const char *key, char *out, size_t len) {
  napi_value v;
  napi_valuetype t;
  out[0] = 0;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok || t != napi_string) return 0;
  size_t n;
  napi_get_value_string_utf8(env, v, out, len, &n);
  return 1;
}

static double get_number(napi_env env, napi_value obj, const char *key) {
  napi_value v;
  napi_valuetype t;
  double d = 0;
  if (napi_get_named_property(env, obj, key, &v) == napi_ok && napi_typeof(env, v, &t) == napi_ok && t == napi_number) napi_get_value_double(env, v, &d);
  return d;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_valuetype ta, tb;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || napi_typeof(env, argv[0], &ta) != napi_ok || ta != napi_object || napi_typeof(env, argv[1], &tb) != napi_ok || tb != napi_function)
    return ct_throw_type(env, "bpfOpen(options, onBatch)");
  struct ct_bpf_opts o = { CT_UDP_AUTO, 0 };
  char route[32];
  if (get_string(env, argv[0], "udp", route, sizeof route)) {
    if (!strcmp(route, "tracepoint")) o.udp = CT_UDP_TRACEPOINT;
    else if (!strcmp(route, "syscall")) o.udp = CT_UDP_SYSCALL;
    else if (strcmp(route, "auto")) return ct_throw_type(env, "udp must be auto, tracepoint or syscall");
  }
  double ring = get_number(env, argv[0], "ringBytes");
  if (ring < 0 || ring > (1u << 30)) return ct_throw_type(env, "ringBytes out of range");
  o.ring_bytes = (unsigned int)ring;

  bpf_state *st = calloc(1, sizeof(*st));
  if (!st) return ct_throw_errno(env, ENOMEM, "bpf");
  st->env = env;
  char err[512];
  double t0 = now_ms(CLOCK_MONOTONIC);
  if (ct_bpf_open(&st->b, &o, err, sizeof err) != 0) {
    free(st);
    napi_throw_error(env, NULL, err);
    return NULL;
  }
  double attach_ms = now_ms(CLOCK_MONOTONIC) - t0;
  st->open = 1;

  napi_value obj, v, name;
  napi_create_object(env, &obj);
  if (napi_wrap(env, obj, st, finalize, NULL, NULL) != napi_ok) {
    ct_bpf_close(&st->b);
    free(st);
    return ct_throw_errno(env, ENOMEM, "bpf");
  }
  napi_create_reference(env, argv[1], 1, &st->cb);
  napi_create_reference(env, obj, 0, &st->self);
  napi_create_string_utf8(env, "ctpipe:bpf", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, obj, name, &st->actx);
  napi_create_string_utf8(env, ct_bpf_route_name(st->b.udp), NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, obj, "udp", v);
  napi_create_double(env, attach_ms, &v);
  napi_set_named_property(env, obj, "attachMs", v);
  napi_value f;
  napi_create_function(env, "drain", NAPI_AUTO_LENGTH, js_drain, NULL, &f);
  napi_set_named_property(env, obj, "drain", f);
  napi_create_function(env, "close", NAPI_AUTO_LENGTH, js_close, NULL, &f);
  napi_set_named_property(env, obj, "close", f);

  uv_loop_t *loop;
  st->poll = calloc(1, sizeof(uv_poll_t));
  st->again = calloc(1, sizeof(uv_timer_t));
  if (!st->poll || !st->again || napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, st->poll, ct_bpf_fd(&st->b)) != 0) {
    free(st->poll);
    free(st->again);
    st->poll = NULL;
    st->again = NULL;
    stop(st);
    napi_throw_error(env, NULL, "cannot watch the BPF ring buffer");
    return NULL;
  }
  uv_timer_init(loop, st->again);
  st->again->data = st;
  st->poll->data = st;
  uv_poll_start(st->poll, UV_READABLE, on_readable);
  // The records never keep Node running: the input does.
  uv_unref((uv_handle_t *)st->poll);
  uv_unref((uv_handle_t *)st->again);
  return obj;
}

NAPI_MODULE_INIT() {
  ct_export(env, exports, "bpfOpen", js_open);
  return exports;
}
