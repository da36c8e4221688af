/* alloc.c — the one allocator wrapper (redis zmalloc style).
 * Every allocation in libyan goes through yan_malloc & co so that bytes in use
 * can be counted and the k-th allocation can be made to fail in tests.
 * A small header in front of each block records its size. */
#include "base/base.h"

#include <stdatomic.h>
#include <stdlib.h>

#define HDR 16 /* keeps 16-byte alignment of the user pointer */

static _Atomic size_t g_used;     /* statistics only */
static _Atomic long g_fail_after; /* test hook: 0 = off */

void yan_alloc_fail_after(long k) { atomic_store(&g_fail_after, k); }
size_t yan_alloc_used(void) { return atomic_load(&g_used); }

static bool should_fail(void) {
    long k = atomic_load_explicit(&g_fail_after, memory_order_relaxed);
    if (YAN_LIKELY(k == 0)) return false;
    long left = atomic_fetch_sub(&g_fail_after, 1) - 1;
    if (left == 0) return true;
    if (left < 0) atomic_store(&g_fail_after, 0);
    return false;
}

void *yan_malloc(size_t n) {
    size_t total;
    if (yan_add_ovf(n, HDR, &total) || should_fail()) return NULL;
    unsigned char *p = malloc(total);
    if (!p) return NULL;
    memcpy(p, &n, sizeof n);
    atomic_fetch_add_explicit(&g_used, n, memory_order_relaxed);
    return p + HDR;
}

void *yan_calloc(size_t n, size_t size) {
    size_t total;
    if (yan_mul_ovf(n, size, &total)) return NULL;
    void *p = yan_malloc(total);
    if (p) memset(p, 0, total);
    return p;
}

void *yan_realloc(void *p, size_t n) {
    if (!p) return yan_malloc(n);
    size_t total, old;
    if (yan_add_ovf(n, HDR, &total) || should_fail()) return NULL;
    unsigned char *base = (unsigned char *)p - HDR;
    memcpy(&old, base, sizeof old);
    unsigned char *q = realloc(base, total);
    if (!q) return NULL;
    memcpy(q, &n, sizeof n);
    atomic_fetch_add_explicit(&g_used, n - old, memory_order_relaxed);
    return q + HDR;
}

void yan_free(void *p) {
    if (!p) return;
    unsigned char *base = (unsigned char *)p - HDR;
    size_t n;
    memcpy(&n, base, sizeof n);
    atomic_fetch_sub_explicit(&g_used, n, memory_order_relaxed);
    free(base);
}

char *yan_strndup(const char *s, size_t n) {
    char *d = yan_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *yan_strdup(const char *s) { return s ? yan_strndup(s, strlen(s)) : NULL; }

void *yan_malloc64(size_t bytes) {
    size_t n;
    if (yan_add_ovf(bytes, 64 + sizeof(void *), &n)) return NULL;
    uint8_t *raw = yan_malloc(n);
    if (!raw) return NULL;
    uintptr_t a = ((uintptr_t)raw + sizeof(void *) + 63) & ~(uintptr_t)63;
    ((void **)a)[-1] = raw;
    return (void *)a;
}

void yan_free64(void *p) {
    if (p) yan_free(((void **)p)[-1]);
}
