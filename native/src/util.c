// Helpers shared by the modules: errors as JS exceptions, argument reading,
// and the test-only switch.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "addon.h"

static const struct { int n; const char *name; } ERRNO_NAMES[] = {
  { EPERM, "EPERM" }, { ENOENT, "ENOENT" }, { ESRCH, "ESRCH" }, { EINTR, "EINTR" },
  { EBADF, "EBADF" }, { EAGAIN, "EAGAIN" }, { ENOMEM, "ENOMEM" }, { EACCES, "EACCES" },
  { EFAULT, "EFAULT" }, { EINVAL, "EINVAL" }, { EMFILE, "EMFILE" }, { ENFILE, "ENFILE" },
  { ENOTSOCK, "ENOTSOCK" }, { ENOPROTOOPT, "ENOPROTOOPT" }, { EPROTONOSUPPORT, "EPROTONOSUPPORT" },
  { EAFNOSUPPORT, "EAFNOSUPPORT" }, { ENOBUFS, "ENOBUFS" }, { ECONNREFUSED, "ECONNREFUSED" },
  { EOPNOTSUPP, "EOPNOTSUPP" }, { ENOSYS, "ENOSYS" }, { EBUSY, "EBUSY" }, { EEXIST, "EEXIST" },
  { ENOTDIR, "ENOTDIR" }, { EMSGSIZE, "EMSGSIZE" }, { ENOSPC, "ENOSPC" },
};

static const char *errno_name(int err) {
  for (size_t i = 0; i < sizeof ERRNO_NAMES / sizeof ERRNO_NAMES[0]; i++)
    if (ERRNO_NAMES[i].n == err) return ERRNO_NAMES[i].name;
  return "EUNKNOWN";
}

napi_value ct_throw_errno(napi_env env, int err, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_value m, code, e, n;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, m, &e);
  napi_create_int32(env, err, &n);
  napi_set_named_property(env, e, "errno", n);
  napi_throw(env, e);
  return NULL;
}

napi_value ct_throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

int ct_arg_int(napi_env env, napi_value v, int32_t *out, const char *name) {
  napi_valuetype t;
  if (v == NULL || napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be a number", name);
    ct_throw_type(env, msg);
    return 0;
  }
  napi_get_value_int32(env, v, out);
  return 1;
}

void ct_export(napi_env env, napi_value exports, const char *name, napi_callback fn) {
  napi_value f;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &f);
  napi_set_named_property(env, exports, name, f);
}

napi_value ct_int(napi_env env, int32_t v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

napi_value ct_double(napi_env env, double v) {
  napi_value r;
  napi_create_double(env, v, &r);
  return r;
}

// CTPIPE_TEST_REFUSE, for tests only (README, "The native addon"): a
// comma-separated list of what this addon pretends the kernel refused with
// EPERM (NETLINK_NO_ENOBUFS, SO_RCVBUFFORCE, setns), so that the tests run
// the paths a kernel or a sandbox without them takes.
int ct_test_refuses(const char *what) {
  const char *s = getenv("CTPIPE_TEST_REFUSE");
  size_t n = strlen(what);
  while (s && *s) {
    const char *end = strchr(s, ',');
    size_t len = end ? (size_t)(end - s) : strlen(s);
    if (len == n && strncmp(s, what, n) == 0) return 1;
    s = end ? end + 1 : NULL;
  }
  return 0;
}
