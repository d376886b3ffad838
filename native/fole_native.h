/* The parts of fole_native.node (native/module.c puts them together); each returns 0 when it could not register. */
#ifndef FOLE_NATIVE_H
#define FOLE_NATIVE_H
#include <node_api.h>

int register_aead(napi_env env, napi_value exports);
int register_read_ahead(napi_env env, napi_value exports);
int register_write_back(napi_env env, napi_value exports);

#endif
