/* fole_native.node: AES-256-GCM (aead.c), directories and files read ahead (read-ahead.c), and restored files'
 * bytes sent on to the disk (write-back.c). */
#include "fole_native.h"

NAPI_MODULE_INIT() {
  if (!register_aead(env, exports) || !register_read_ahead(env, exports) || !register_write_back(env, exports))
    return NULL;
  return exports;
}
