/* fole_native.node: AES-256-GCM (aead.c), and directories and files read ahead (read-ahead.c). */
#include "fole_native.h"

NAPI_MODULE_INIT() {
  if (!register_aead(env, exports) || !register_read_ahead(env, exports)) return NULL;
  return exports;
}
