// setsockopt(2) and getsockopt(2) with int values on a descriptor Node holds
// (socket(7), netlink(7)): Node exposes neither for netlink sockets. And a
// pipe's capacity (fcntl(2) F_SETPIPE_SZ, pipe(7)), which Node does not set:
// a stage writing a flood into a 64 KiB pipe is woken for every 64 KiB.
//   setsockopt(fd, level, name, value) -> undefined, throws {code, errno}
//   getsockopt(fd, level, name) -> number, throws {code, errno}
//   pipeSize(fd, bytes) -> the pipe's capacity after (bytes 0: asks only), throws {code, errno}
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include "addon.h"

/** Options the test switch can refuse, by level and name. */
int ct_refused_option(int level, int name) {
  if (level == SOL_SOCKET && name == SO_RCVBUFFORCE) return ct_test_refuses("SO_RCVBUFFORCE");
  if (level == SOL_NETLINK && name == NETLINK_NO_ENOBUFS) return ct_test_refuses("NETLINK_NO_ENOBUFS");
  return 0;
}

static napi_value js_setsockopt(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd, level, name, value;
  if (argc < 4) return ct_throw_type(env, "setsockopt(fd, level, name, value)");
  if (!ct_arg_int(env, argv[0], &fd, "fd") || !ct_arg_int(env, argv[1], &level, "level") ||
      !ct_arg_int(env, argv[2], &name, "name") || !ct_arg_int(env, argv[3], &value, "value")) return NULL;
  if (ct_refused_option(level, name)) return ct_throw_errno(env, EPERM, "setsockopt (refused by CTPIPE_TEST_REFUSE)");
  int v = value;
  if (setsockopt(fd, level, name, &v, sizeof v) != 0) return ct_throw_errno(env, errno, "setsockopt");
  return NULL;
}

static napi_value js_getsockopt(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd, level, name;
  if (argc < 3) return ct_throw_type(env, "getsockopt(fd, level, name)");
  if (!ct_arg_int(env, argv[0], &fd, "fd") || !ct_arg_int(env, argv[1], &level, "level") ||
      !ct_arg_int(env, argv[2], &name, "name")) return NULL;
  int v = 0;
  socklen_t len = sizeof v;
  if (getsockopt(fd, level, name, &v, &len) != 0) return ct_throw_errno(env, errno, "getsockopt");
  return ct_int(env, v);
}

static napi_value js_pipe_size(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd, bytes;
  if (argc < 2) return ct_throw_type(env, "pipeSize(fd, bytes)");
  if (!ct_arg_int(env, argv[0], &fd, "fd") || !ct_arg_int(env, argv[1], &bytes, "bytes")) return NULL;
  if (bytes < 0) return ct_throw_type(env, "pipeSize: bytes must be >= 0");
  if (bytes > 0 && fcntl(fd, F_SETPIPE_SZ, bytes) < 0) return ct_throw_errno(env, errno, "fcntl F_SETPIPE_SZ");
  int n = fcntl(fd, F_GETPIPE_SZ);
  if (n < 0) return ct_throw_errno(env, errno, "fcntl F_GETPIPE_SZ");
  return ct_int(env, n);
}

void ct_register_sockopt(napi_env env, napi_value exports) {
  ct_export(env, exports, "setsockopt", js_setsockopt);
  ct_export(env, exports, "getsockopt", js_getsockopt);
  ct_export(env, exports, "pipeSize", js_pipe_size);
}
