// Module init only: each module registers its own exports.
#include "addon.h"

static napi_value init(napi_env env, napi_value exports) {
  ct_register_sockopt(env, exports);
  ct_register_nlsock(env, exports);
  ct_register_netns(env, exports);
  ct_register_bpf(env, exports);
  return exports;
}

NAPI_MODULE_INIT() {
  return init(env, exports);
}
