/*
 * AES-256-GCM for src/crypto/aead.ts, through the OpenSSL that Node itself
 * links (its symbols and headers), with the cipher context and key schedule
 * kept per thread and the output written into the caller's buffer.
 *
 * Why not node:crypto: a Cipheriv per 16 KiB blob costs ~11 µs, of which
 * AES-GCM itself is ~3.5 µs; the rest is the object, a provider lookup, the key
 * schedule and a zero-filled output buffer per call. A backup or a restore of
 * database pages opens or seals tens of thousands of blobs per second per
 * core, so that overhead was most of their encryption cost. The ciphertext is
 * the same AES-256-GCM either way (the tests cross-check with node:crypto).
 *
 *   seal(key, nonce, plaintext, aad, out, offset) -> sealed length
 *     writes nonce (12) | ciphertext | tag (16) into out at offset
 *   open(key, sealed, aad, out) -> true, or false when authentication fails
 *     sealed is nonce | ciphertext | tag; the plaintext goes to out[0, n) and
 *     out is zeroed when authentication fails: unverified plaintext is never
 *     left behind
 * Arguments that do not fit throw a TypeError (a caller's bug, not bad data).
 */
#include <limits.h>
#include <node_api.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "fole_native.h"

#define KEY_BYTES 32
#define NONCE_BYTES 12
#define TAG_BYTES 16

/* One per JavaScript environment (the main thread, each worker thread). */
typedef struct {
  EVP_CIPHER_CTX *ctx[2]; /* 0: decrypt, 1: encrypt */
  unsigned char key[2][KEY_BYTES];
  int keyed[2];
} state;

static void finalize_state(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  state *s = data;
  for (int i = 0; i < 2; i++)
    if (s->ctx[i] != NULL) EVP_CIPHER_CTX_free(s->ctx[i]);
  OPENSSL_cleanse(s, sizeof *s);
  free(s);
}

static napi_value fail(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

static napi_value internal(napi_env env, const char *message) {
  napi_throw_error(env, "INTERNAL", message);
  return NULL;
}

/* The bytes of a Uint8Array (a Buffer is one). */
static int bytes(napi_env env, napi_value v, unsigned char **p, size_t *n) {
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  void *data;
  if (napi_get_typedarray_info(env, v, &type, n, &data, &buffer, &offset) != napi_ok || type != napi_uint8_array)
    return 0;
  *p = data;
  return 1;
}

static int overlap(const unsigned char *a, size_t an, const unsigned char *b, size_t bn) {
  return an > 0 && bn > 0 && a < b + bn && b < a + an;
}

/* This thread's context for `enc`, keyed with `key` (the key schedule is redone only when the key changes). */
static EVP_CIPHER_CTX *context(napi_env env, int enc, const unsigned char *key) {
  state *s;
  if (napi_get_instance_data(env, (void **)&s) != napi_ok) return NULL;
  if (s == NULL) {
    s = calloc(1, sizeof *s);
    if (s == NULL) return NULL;
    if (napi_set_instance_data(env, s, finalize_state, NULL) != napi_ok) {
      free(s);
      return NULL;
    }
  }
  if (s->ctx[enc] == NULL) {
    s->ctx[enc] = EVP_CIPHER_CTX_new();
    if (s->ctx[enc] == NULL) return NULL;
  }
  if (!s->keyed[enc] || CRYPTO_memcmp(s->key[enc], key, KEY_BYTES) != 0) {
    s->keyed[enc] = 0;
    if (EVP_CipherInit_ex(s->ctx[enc], EVP_aes_256_gcm(), NULL, key, NULL, enc) != 1) return NULL;
    memcpy(s->key[enc], key, KEY_BYTES);
    s->keyed[enc] = 1;
  }
  return s->ctx[enc];
}

static napi_value seal(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  unsigned char *key, *nonce, *plain, *aad, *out;
  size_t key_n, nonce_n, plain_n, aad_n, out_n;
  uint32_t offset;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 6) return fail(env, "seal: 6 arguments");
  if (!bytes(env, argv[0], &key, &key_n) || key_n != KEY_BYTES) return fail(env, "seal: key is 32 bytes");
  if (!bytes(env, argv[1], &nonce, &nonce_n) || nonce_n != NONCE_BYTES) return fail(env, "seal: nonce is 12 bytes");
  if (!bytes(env, argv[2], &plain, &plain_n) || plain_n > INT_MAX - NONCE_BYTES - TAG_BYTES)
    return fail(env, "seal: plaintext is a Uint8Array under 2 GiB");
  if (!bytes(env, argv[3], &aad, &aad_n) || aad_n > INT_MAX) return fail(env, "seal: aad is a Uint8Array");
  if (!bytes(env, argv[4], &out, &out_n)) return fail(env, "seal: out is a Uint8Array");
  if (napi_get_value_uint32(env, argv[5], &offset) != napi_ok) return fail(env, "seal: offset is a uint32");
  size_t sealed_n = NONCE_BYTES + plain_n + TAG_BYTES;
  if (offset > out_n || out_n - offset < sealed_n) return fail(env, "seal: out has no room at offset");
  unsigned char *at = out + offset;
  if (overlap(at, sealed_n, plain, plain_n) || overlap(at, sealed_n, aad, aad_n) || overlap(at, sealed_n, key, key_n) ||
      overlap(at, sealed_n, nonce, nonce_n))
    return fail(env, "seal: out overlaps an input");

  EVP_CIPHER_CTX *ctx = context(env, 1, key);
  int n = 0, tail = 0;
  if (ctx == NULL || EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1 ||
      (aad_n > 0 && EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_n) != 1) ||
      EVP_EncryptUpdate(ctx, at + NONCE_BYTES, &n, plain, (int)plain_n) != 1 ||
      EVP_EncryptFinal_ex(ctx, at + NONCE_BYTES + n, &tail) != 1 || (size_t)(n + tail) != plain_n ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_BYTES, at + NONCE_BYTES + plain_n) != 1)
    return internal(env, "seal: AES-256-GCM failed");
  memmove(at, nonce, NONCE_BYTES);
  napi_value result;
  napi_create_uint32(env, (uint32_t)sealed_n, &result);
  return result;
}

static napi_value open_(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  unsigned char *key, *sealed, *aad, *out;
  size_t key_n, sealed_n, aad_n, out_n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 4) return fail(env, "open: 4 arguments");
  if (!bytes(env, argv[0], &key, &key_n) || key_n != KEY_BYTES) return fail(env, "open: key is 32 bytes");
  if (!bytes(env, argv[1], &sealed, &sealed_n) || sealed_n < NONCE_BYTES + TAG_BYTES || sealed_n > INT_MAX)
    return fail(env, "open: sealed is a Uint8Array of 28 bytes to 2 GiB");
  if (!bytes(env, argv[2], &aad, &aad_n) || aad_n > INT_MAX) return fail(env, "open: aad is a Uint8Array");
  size_t plain_n = sealed_n - NONCE_BYTES - TAG_BYTES;
  if (!bytes(env, argv[3], &out, &out_n) || out_n < plain_n) return fail(env, "open: out has no room");
  if (overlap(out, plain_n, sealed, sealed_n) || overlap(out, plain_n, aad, aad_n) || overlap(out, plain_n, key, key_n))
    return fail(env, "open: out overlaps an input");

  EVP_CIPHER_CTX *ctx = context(env, 0, key);
  int n = 0, tail = 0;
  /* the tag is set before the data so that the final step can check it */
  if (ctx == NULL || EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, sealed) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_BYTES, sealed + sealed_n - TAG_BYTES) != 1 ||
      (aad_n > 0 && EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_n) != 1) ||
      EVP_DecryptUpdate(ctx, out, &n, sealed + NONCE_BYTES, (int)plain_n) != 1)
    return internal(env, "open: AES-256-GCM failed");
  int ok = EVP_DecryptFinal_ex(ctx, out + n, &tail) == 1 && (size_t)(n + tail) == plain_n;
  if (!ok) OPENSSL_cleanse(out, plain_n);
  napi_value result;
  napi_get_boolean(env, ok, &result);
  return result;
}

int register_aead(napi_env env, napi_value exports) {
  napi_value f;
  return napi_create_function(env, "seal", NAPI_AUTO_LENGTH, seal, NULL, &f) == napi_ok &&
         napi_set_named_property(env, exports, "seal", f) == napi_ok &&
         napi_create_function(env, "open", NAPI_AUTO_LENGTH, open_, NULL, &f) == napi_ok &&
         napi_set_named_property(env, exports, "open", f) == napi_ok;
}
