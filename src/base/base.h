/* base.h — internal foundation shared by every module of libyan:
 * allocation (counted, failure-injectable), error messages, logging, checked
 * size arithmetic, growable buffers, arenas, whole-file reads, mmap, atomic
 * writes, UTF-8, hashing, CPU features and a parallel-for.
 * Nothing here is exported except through include/yan.h. */
#ifndef YAN_BASE_H
#define YAN_BASE_H

#include "yan.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__GNUC__)
#define YAN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define YAN_LIKELY(x) __builtin_expect(!!(x), 1)
#define YAN_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define YAN_PRINTF(a, b)
#define YAN_LIKELY(x) (x)
#define YAN_UNLIKELY(x) (x)
#endif

/* ---------------------------------------------------------------- asserts */

/* Programmer errors only; runtime conditions are returned as yan_status. */
void yan_assert_fail(const char *expr, const char *file, int line);
#define YAN_ASSERT(c) ((c) ? (void)0 : yan_assert_fail(#c, __FILE__, __LINE__))

/* ------------------------------------------------------------- allocation */

/* Every allocation goes through these. yan_free(NULL) is a no-op.
 * Return NULL on failure (no message is set: callers report YAN_ERR_NOMEM). */
void *yan_malloc(size_t n);
void *yan_calloc(size_t n, size_t size);
void *yan_realloc(void *p, size_t n);
void yan_free(void *p);
char *yan_strdup(const char *s);
char *yan_strndup(const char *s, size_t n);
/* A 64-byte aligned block through yan_malloc (the raw pointer sits just
 * below it); free it with yan_free64 (NULL is a no-op). */
void *yan_malloc64(size_t n);
void yan_free64(void *p);
/* Bytes currently allocated through yan_malloc & co. */
size_t yan_alloc_used(void);
/* Tests: make the k-th allocation from now fail (k >= 1); 0 disables. */
void yan_alloc_fail_after(long k);

/* Checked arithmetic: return true on overflow. */
static inline bool yan_mul_ovf(size_t a, size_t b, size_t *out) { return __builtin_mul_overflow(a, b, out); }
static inline bool yan_add_ovf(size_t a, size_t b, size_t *out) { return __builtin_add_overflow(a, b, out); }

/* ----------------------------------------------------------------- errors */

/* Set the calling thread's last-error message and return s. */
yan_status yan_fail(yan_status s, const char *fmt, ...) YAN_PRINTF(2, 3);
/* Prefix the current last-error message with "prefix: " (e.g. a file name). */
void yan_error_prefix(const char *prefix);
void yan_error_clear(void);

/* ---------------------------------------------------------------- logging */

void yan_log(yan_log_level level, const char *fmt, ...) YAN_PRINTF(2, 3);

/* ------------------------------------------------------ growable buffer */

typedef struct {
    char *data;   /* always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
    bool oom;     /* sticky: an append failed */
} yan_buf;

bool yan_buf_reserve(yan_buf *b, size_t extra);
bool yan_buf_append(yan_buf *b, const void *p, size_t n);
bool yan_buf_putc(yan_buf *b, char c);
bool yan_buf_puts(yan_buf *b, const char *s);
bool yan_buf_printf(yan_buf *b, const char *fmt, ...) YAN_PRINTF(2, 3);
void yan_buf_free(yan_buf *b);

/* ------------------------------------------------------------------ arena */

/* Bump allocator: many small allocations freed at once. Reset keeps the memory. */
typedef struct yan_arena_block yan_arena_block;
typedef struct {
    yan_arena_block *head;
    size_t block_size;
} yan_arena;

void yan_arena_init(yan_arena *a, size_t block_size);
void *yan_arena_alloc(yan_arena *a, size_t n);          /* 16-byte aligned; NULL on OOM */
char *yan_arena_strndup(yan_arena *a, const char *s, size_t n);
void yan_arena_reset(yan_arena *a);
void yan_arena_free(yan_arena *a);

/* ------------------------------------------------------------------ files */

/* Read a whole file into a new buffer (NUL-terminated, free with yan_free). */
yan_status yan_read_file(const char *path, uint8_t **out, size_t *len);

/* Read-only mapping of a whole file. */
typedef struct {
    const uint8_t *data;
    size_t len;
    size_t map_len;   /* bytes mapped when not len (the copy's 2 MiB rounding) */
} yan_mmap;
yan_status yan_mmap_open(const char *path, yan_mmap *m);
/* The same bytes copied into private, 2 MiB-aligned memory advised for huge
 * pages before it is filled (fewer TLB misses when the weights are streamed
 * every token; costs a read of the file, done by up to 4 threads, and its
 * size in memory). Released by yan_mmap_close. */
yan_status yan_mmap_copy(const char *path, yan_mmap *m);
/* Whether a copy of len bytes is worth it and affordable: transparent huge
 * pages are not disabled and len is at most half of MemAvailable (Linux;
 * false where that cannot be read). */
bool yan_copy_fits(size_t len);
void yan_mmap_close(yan_mmap *m);

/* Atomic write: data goes to "<path>.tmp.<pid>", is fsynced, then renamed over
 * path, and the directory is fsynced. On failure the old file is untouched and
 * the temporary is removed. */
yan_status yan_write_atomic(const char *path, const void *data, size_t len);

/* Streaming form of the same. */
typedef struct {
    FILE *f;
    char *path;
    char *tmp;
    bool failed;
} yan_afile;
yan_status yan_afile_open(yan_afile *af, const char *path);
yan_status yan_afile_write(yan_afile *af, const void *p, size_t n);
yan_status yan_afile_commit(yan_afile *af);  /* fsync + rename; always closes */
void yan_afile_abort(yan_afile *af);         /* remove the temporary */

/* ------------------------------------------------------------------ utf-8 */

/* Decode one code point from s[0..n). Returns its byte length (1..4) and sets
 * *cp; for an invalid or truncated sequence returns 1 and sets *cp = -1. */
int yan_utf8_decode(const uint8_t *s, size_t n, int32_t *cp);
/* Encode cp (<= 0x10FFFF) into out[4]; returns the byte length. */
int yan_utf8_encode(uint32_t cp, uint8_t *out);
/* Length of the longest prefix of s[0..n) that does not end inside an
 * incomplete (but so far valid) UTF-8 sequence. */
size_t yan_utf8_complete_prefix(const uint8_t *s, size_t n);

/* The 6-bit value of a base64 character (A-Z a-z 0-9 + /; with url also the
 * URL-safe - and _), or -1 for any other byte. */
int yan_base64_value(unsigned char c, bool url);

/* ---------------------------------------------------------------- hashing */

uint64_t yan_hash_bytes(const void *p, size_t n, uint64_t seed);
static inline uint64_t yan_hash_u64(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL; x ^= x >> 33; return x;
}

/* --------------------------------------------------------------------- cpu */

typedef struct {
    bool avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512vnni, avx512bf16, avx512vbmi;
} yan_cpu;
const yan_cpu *yan_cpu_get(void);

/* ---------------------------------------------------------------- threads */

/* Run fn(ud, task) for task in [0, n_tasks) on up to n_threads threads
 * (0 = all cores; the caller's thread takes part). Blocks until all are done.
 * Tasks are handed out dynamically. Falls back to the calling thread alone if
 * threads cannot be created. */
void yan_parallel_for(int n_threads, int n_tasks, void (*fn)(void *ud, int task), void *ud);
int yan_threads_resolve(int n_threads); /* 0 -> core count, clamp to [1, 256] */

#endif /* YAN_BASE_H */
