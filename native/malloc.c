/* How glibc's malloc gives freed memory back to the system (src/host/malloc.ts says why). */
#include "fole_native.h"
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* fixMmapThreshold(bytes): blocks of at least `bytes` get a mapping of their own, and the threshold stops
 * following the blocks freed. true when it was set (glibc), false where there is no such setting. */
static napi_value fix_mmap_threshold(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  double bytes = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_double(env, argv[0], &bytes) != napi_ok || !(bytes >= 1 && bytes <= (double)(32u << 20)) ||
      bytes != (double)(int)bytes) {
    napi_throw_range_error(env, NULL, "fixMmapThreshold: bytes must be an integer from 1 to 32 MiB");
    return NULL;
  }
  int set = 0;
#ifdef __GLIBC__
  set = mallopt(M_MMAP_THRESHOLD, (int)bytes) == 1;
#endif
  napi_value result;
  napi_get_boolean(env, set, &result);
  return result;
}

int register_malloc(napi_env env, napi_value exports) {
  napi_value f;
  return napi_create_function(env, "fixMmapThreshold", NAPI_AUTO_LENGTH, fix_mmap_threshold, NULL, &f) == napi_ok &&
         napi_set_named_property(env, exports, "fixMmapThreshold", f) == napi_ok;
}
