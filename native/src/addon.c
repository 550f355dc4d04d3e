// ctpipe.node's init: each module registers its own exports. The BPF part is
// a .node of its own (bpf.c, ctpipe_bpf.node), the only one linked with
// libbpf, so that this one loads on a host without libbpf.so.1.
#include "addon.h"

static napi_value init(napi_env env, napi_value exports) {
  ct_register_sockopt(env, exports);
  ct_register_nlsock(env, exports);
  ct_register_netns(env, exports);
  return exports;
}

NAPI_MODULE_INIT() {
  return init(env, exports);
}
