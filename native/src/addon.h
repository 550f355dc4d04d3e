// ctpipe's own N-API addons: the few system calls Node.js lacks. Each module
// (one .c file) registers its functions on the exports object through one
// function declared here; addon.c calls them all for ctpipe.node. The BPF
// part (bpf.c) is ctpipe_bpf.node, initialised in bpf.c, with util.c's
// helpers compiled in. No function here may abort
// the process: kernel errors become JS exceptions carrying `code` (the errno
// name) and `errno`, or counted losses.
#ifndef CTPIPE_ADDON_H
#define CTPIPE_ADDON_H

#include <node_api.h>

// Modules.
void ct_register_sockopt(napi_env env, napi_value exports);
void ct_register_nlsock(napi_env env, napi_value exports);
void ct_register_netns(napi_env env, napi_value exports);

// Helpers shared by the modules (util.c).

/** Throw an Error "what: strerror" with .code (ENOBUFS, ...) and .errno; returns NULL. */
napi_value ct_throw_errno(napi_env env, int err, const char *what);
/** Throw a TypeError; returns NULL. */
napi_value ct_throw_type(napi_env env, const char *msg);
/** Read argument i as an int32 (TypeError when it is not a number). */
int ct_arg_int(napi_env env, napi_value v, int32_t *out, const char *name);
/** Add function fn as exports[name]. */
void ct_export(napi_env env, napi_value exports, const char *name, napi_callback fn);
/** An int32 value. */
napi_value ct_int(napi_env env, int32_t v);
/** A double value (counters past 2^31). */
napi_value ct_double(napi_env env, double v);
/** Whether the test-only switch CTPIPE_TEST_REFUSE lists `what` (comma-separated). */
int ct_test_refuses(const char *what);
/** Whether the test switch refuses this socket option (sockopt.c). */
int ct_refused_option(int level, int name);

#endif
