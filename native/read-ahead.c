/*
 * Directories read ahead of the scan's walk (src/storage/scan.ts, ListingsAhead): each is opened and its entries
 * read by one of a few threads of this module's own, then let go, so that the walk's own listing finds its blocks
 * in the kernel's caches. A cold walk is one disk read per directory, one after the other; several under way at
 * once are served together.
 *
 * Files read ahead of the capture of databases (src/sqlite/capture.ts): the kernel is asked to bring a whole file
 * into its page cache (POSIX_FADV_WILLNEED), which it does in the background. SQLite reads a database page by page
 * on one thread, and the first connection to a WAL database reads the whole -wal to rebuild its index: cold, each
 * read waits for the disk while the other cores have nothing to do yet.
 *
 * Why native: fs.readdir hands every name back to JavaScript, as strings, on the thread that walks, where they wait
 * in memory until its event loop turns (up to a window of listings), and it queues on libuv's thread pool behind
 * the file workers' reads. Here a read ahead is a queued path: nothing comes back, the walking thread's event loop
 * need not turn, and libuv's pool is left to the reads.
 *
 *   readAhead(path)      path: a string (UTF-8) or a Buffer (the bytes of a name that is not UTF-8); no return
 *                        value. A symlink as the last component is never followed (O_NOFOLLOW); one put on the way
 *                        since the walk listed it costs a wasted read, never a leak: nothing read is kept or handed
 *                        back. Every failure is ignored (the walk meets it itself). Arguments that do not fit throw a
 *                        TypeError (a caller's bug).
 *   readFileAhead(path)  the same for a regular file: anything else (a directory, a device, a FIFO, a symlink) is
 *                        not opened for its contents, so opening has no side effect.
 *
 * The threads start on the first call and are stopped and joined when the JavaScript environment (the scan's
 * worker thread) ends; what is still queued then is dropped unread.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fole_native.h"

/* Reads under way at once: enough for the disk to serve several together, few enough to leave the cores alone. */
#define READERS 4

typedef struct item {
  struct item *next;
  int file; /* a regular file to bring into the page cache; else a directory to list */
  char path[]; /* NUL-terminated */
} item;

/* One per JavaScript environment, freed when it ends. */
typedef struct {
  pthread_mutex_t lock;
  pthread_cond_t wake;
  item *head, *tail;
  int stopping;
  int started; /* threads in `threads` */
  int tried;   /* the threads were started (or tried to be), on the first call */
  pthread_t threads[READERS];
} readers;

static void read_dir(const char *path) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    close(fd);
    return;
  }
  while (readdir(d) != NULL) {
  }
  closedir(d);
}

static void advise_file(const char *path) {
  struct stat st;
  /* lstat first: opening a device or a FIFO can have effects of its own; fstat after, for a swap in between */
  if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) return;
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
  close(fd);
}

static void *reader(void *arg) {
  readers *r = arg;
  pthread_mutex_lock(&r->lock);
  for (;;) {
    while (!r->stopping && r->head == NULL) pthread_cond_wait(&r->wake, &r->lock);
    if (r->stopping) break;
    item *it = r->head;
    r->head = it->next;
    if (r->head == NULL) r->tail = NULL;
    pthread_mutex_unlock(&r->lock);
    if (it->file) advise_file(it->path);
    else read_dir(it->path);
    free(it);
    pthread_mutex_lock(&r->lock);
  }
  pthread_mutex_unlock(&r->lock);
  return NULL;
}

static void stop(void *arg) {
  readers *r = arg;
  pthread_mutex_lock(&r->lock);
  r->stopping = 1;
  pthread_cond_broadcast(&r->wake);
  pthread_mutex_unlock(&r->lock);
  for (int i = 0; i < r->started; i++) pthread_join(r->threads[i], NULL);
  for (item *it = r->head; it != NULL;) {
    item *next = it->next;
    free(it);
    it = next;
  }
  pthread_cond_destroy(&r->wake);
  pthread_mutex_destroy(&r->lock);
  free(r);
}

/* Queue `it`; starts the threads on first use. Takes `it` in every case. */
static void enqueue(readers *r, item *it) {
  pthread_mutex_lock(&r->lock);
  if (!r->tried) {
    r->tried = 1;
    while (r->started < READERS && pthread_create(&r->threads[r->started], NULL, reader, r) == 0) r->started++;
  }
  if (r->started == 0) { /* no thread could be started: nothing is read ahead, which is allowed */
    pthread_mutex_unlock(&r->lock);
    free(it);
    return;
  }
  it->next = NULL;
  if (r->tail == NULL) r->head = it;
  else r->tail->next = it;
  r->tail = it;
  pthread_cond_signal(&r->wake);
  pthread_mutex_unlock(&r->lock);
}

static napi_value fail(napi_env env, const char *name, const char *message) {
  char text[128];
  snprintf(text, sizeof text, "%s: %s", name, message);
  napi_throw_type_error(env, NULL, text);
  return NULL;
}

/* Queue the path given as the one argument, a directory's or a file's: `name` is the function's, for its errors. */
static napi_value queue_path(napi_env env, napi_callback_info info, int file, const char *name) {
  size_t argc = 1;
  napi_value arg;
  napi_valuetype type;
  bool is_buffer = false;
  readers *r;
  if (napi_get_cb_info(env, info, &argc, &arg, NULL, (void **)&r) != napi_ok || argc < 1 ||
      napi_typeof(env, arg, &type) != napi_ok)
    return fail(env, name, "a path is needed");
  if (type != napi_string && (napi_is_buffer(env, arg, &is_buffer) != napi_ok || !is_buffer))
    return fail(env, name, "the path must be a string or a Buffer");
  size_t n;
  void *bytes = NULL;
  if (is_buffer ? napi_get_buffer_info(env, arg, &bytes, &n) != napi_ok
                : napi_get_value_string_utf8(env, arg, NULL, 0, &n) != napi_ok)
    return fail(env, name, "unreadable path");
  if (n == 0 || n > 65536) return fail(env, name, "path length out of range");
  item *it = malloc(sizeof *it + n + 1);
  if (it == NULL) return NULL; /* out of memory: nothing read ahead, which is allowed */
  if (is_buffer) {
    memcpy(it->path, bytes, n);
    it->path[n] = '\0';
  } else if (napi_get_value_string_utf8(env, arg, it->path, n + 1, &n) != napi_ok) {
    free(it);
    return fail(env, name, "unreadable path");
  }
  if (strlen(it->path) != n) {
    free(it);
    return fail(env, name, "a path holds no NUL");
  }
  it->file = file;
  enqueue(r, it);
  return NULL;
}

static napi_value read_ahead(napi_env env, napi_callback_info info) {
  return queue_path(env, info, 0, "readAhead");
}

static napi_value read_file_ahead(napi_env env, napi_callback_info info) {
  return queue_path(env, info, 1, "readFileAhead");
}

int register_read_ahead(napi_env env, napi_value exports) {
  readers *r = calloc(1, sizeof *r);
  if (r == NULL) return 0;
  if (pthread_mutex_init(&r->lock, NULL) != 0) {
    free(r);
    return 0;
  }
  if (pthread_cond_init(&r->wake, NULL) != 0) {
    pthread_mutex_destroy(&r->lock);
    free(r);
    return 0;
  }
  napi_value f, g;
  if (napi_add_env_cleanup_hook(env, stop, r) != napi_ok) {
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->lock);
    free(r);
    return 0;
  }
  return napi_create_function(env, "readAhead", NAPI_AUTO_LENGTH, read_ahead, r, &f) == napi_ok &&
         napi_set_named_property(env, exports, "readAhead", f) == napi_ok &&
         napi_create_function(env, "readFileAhead", NAPI_AUTO_LENGTH, read_file_ahead, r, &g) == napi_ok &&
         napi_set_named_property(env, exports, "readFileAhead", g) == napi_ok;
}
