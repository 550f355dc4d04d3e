// A socket made inside another network namespace, without a fork and
// without moving Node's own threads: a short-lived thread of its own enters
// the namespace with setns(2) (which changes only the calling thread),
// creates and binds the socket there, and ends; the descriptor, which stays
// in the namespace it was made in, is handed back (setns(2), network_namespaces(7)).
//   socketInNetns(nsPath, inode, protocol) -> fd
//     nsPath  a namespace file, such as /proc/PID/ns/net
//     inode   the namespace's inode as known to the caller (0: any); the file
//             opened is checked against it, so a reused pid is refused (ESTALE)
//     protocol  NETLINK_* (the socket is AF_NETLINK, SOCK_RAW)
// Throws {code, errno}: EPERM without CAP_SYS_ADMIN (or when a sandbox
// forbids setns), ENOENT when the process is gone, ESTALE as above.
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/netlink.h>
#include "addon.h"

typedef struct {
  int nsfd;
  int protocol;
  int fd;
  int err;
  const char *step;
} job_t;

static void *in_netns(void *arg) {
  job_t *j = arg;
  if (setns(j->nsfd, CLONE_NEWNET) != 0) {
    j->err = errno;
    j->step = "setns";
    return NULL;
  }
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, j->protocol);
  if (fd < 0) {
    j->err = errno;
    j->step = "netlink socket in the namespace";
    return NULL;
  }
  struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    j->err = errno;
    j->step = "bind in the namespace";
    close(fd);
    return NULL;
  }
  j->fd = fd;
  return NULL;
}

static napi_value js_socket_in_netns(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3) return ct_throw_type(env, "socketInNetns(nsPath, inode, protocol)");
  char path[512];
  size_t plen;
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof path, &plen) != napi_ok) return ct_throw_type(env, "nsPath must be a string");
  if (plen >= sizeof path - 1) return ct_throw_type(env, "nsPath too long");
  double ino;
  if (napi_get_value_double(env, argv[1], &ino) != napi_ok) return ct_throw_type(env, "inode must be a number");
  int32_t protocol;
  if (!ct_arg_int(env, argv[2], &protocol, "protocol")) return NULL;

  int nsfd = open(path, O_RDONLY | O_CLOEXEC);
  if (nsfd < 0) return ct_throw_errno(env, errno, path);
  struct stat st;
  if (fstat(nsfd, &st) != 0) {
    int e = errno;
    close(nsfd);
    return ct_throw_errno(env, e, path);
  }
  if (ino > 0 && (double)st.st_ino != ino) {
    close(nsfd);
    return ct_throw_errno(env, ESTALE, "namespace changed (pid reused)");
  }
  if (ct_test_refuses("setns")) {
    close(nsfd);
    return ct_throw_errno(env, EPERM, "setns (refused by CTPIPE_TEST_REFUSE)");
  }
  job_t j = { .nsfd = nsfd, .protocol = protocol, .fd = -1, .err = 0, .step = "" };
  pthread_t t;
  int r = pthread_create(&t, NULL, in_netns, &j);
  if (r != 0) {
    close(nsfd);
    return ct_throw_errno(env, r, "thread for setns");
  }
  pthread_join(t, NULL);
  close(nsfd);
  if (j.fd < 0) return ct_throw_errno(env, j.err ? j.err : EIO, j.step);
  return ct_int(env, j.fd);
}

void ct_register_netns(napi_env env, napi_value exports) {
  ct_export(env, exports, "socketInNetns", js_socket_in_netns);
}
