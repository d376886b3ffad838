/*
 * A restored file's bytes sent on to the disk as they are written (src/restore/restore-worker.ts): the kernel is
 * asked to start writing a range back (sync_file_range, SYNC_FILE_RANGE_WRITE) and the call returns without
 * waiting for it. The restore's final syncfs then finds little left to write.
 *
 * Why not a syncfs every so many bytes (which the restore did): it waits for everything dirty on the filesystem and
 * commits the journal, and the writes of the restore's workers stalled behind each one (~65 ms each time, both
 * workers at once, restoring a 954 MB database). Node has no binding for sync_file_range.
 *
 *   writeBack(fd, offset, length)  fd: an open descriptor; offset, length: the range, in bytes (length 0: to the
 *                                  end of the file). No return value; every failure is ignored (it is a hint: the
 *                                  final sync is what makes the file durable). Arguments that are not whole
 *                                  numbers of 0 or more throw a TypeError (a caller's bug). Elsewhere than Linux
 *                                  it does nothing. "Without waiting" as far as the kernel allows: it may block
 *                                  while the disk's queue is full.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include "fole_native.h"

static napi_value write_back(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  double v[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) goto bad;
  /* numbers only, whole, not negative, below 2^53 (napi_get_value_int64 would take NaN for 0: stdin) */
  for (int i = 0; i < 3; i++)
    if (napi_get_value_double(env, argv[i], &v[i]) != napi_ok || !isfinite(v[i]) || v[i] < 0 ||
        v[i] > 9007199254740991.0 || (double)(int64_t)v[i] != v[i])
      goto bad;
  if (v[0] > 2147483647.0) goto bad;
#ifdef __linux__
  (void)sync_file_range((int)v[0], (off64_t)v[1], (off64_t)v[2], SYNC_FILE_RANGE_WRITE);
#endif
  return NULL;
bad:
  napi_throw_type_error(env, NULL, "writeBack: a descriptor, an offset and a length, none negative");
  return NULL;
}

int register_write_back(napi_env env, napi_value exports) {
  napi_value f;
  return napi_create_function(env, "writeBack", NAPI_AUTO_LENGTH, write_back, NULL, &f) == napi_ok &&
         napi_set_named_property(env, exports, "writeBack", f) == napi_ok;
}
