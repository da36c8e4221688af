/* buf.c — the growable byte buffer (one append buffer that builds a whole
 * output and writes it once) and the bump arena. */
#include "base/base.h"

bool yan_buf_reserve(yan_buf *b, size_t extra) {
    if (b->oom) return false;
    size_t need;
    if (yan_add_ovf(b->len, extra, &need) || yan_add_ovf(need, 1, &need)) return !(b->oom = true);
    if (need <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) { cap = need; break; }
        cap *= 2;
    }
    char *d = yan_realloc(b->data, cap);
    if (!d) return !(b->oom = true);
    b->data = d;
    b->cap = cap;
    return true;
}

bool yan_buf_append(yan_buf *b, const void *p, size_t n) {
    if (!yan_buf_reserve(b, n)) return false;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return true;
}

bool yan_buf_putc(yan_buf *b, char c) { return yan_buf_append(b, &c, 1); }
bool yan_buf_puts(yan_buf *b, const char *s) { return yan_buf_append(b, s, strlen(s)); }

bool yan_buf_printf(yan_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !yan_buf_reserve(b, (size_t)n)) return false;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return true;
}

void yan_buf_free(yan_buf *b) {
    yan_free(b->data);
    memset(b, 0, sizeof *b);
}

struct yan_arena_block {
    yan_arena_block *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

void yan_arena_init(yan_arena *a, size_t block_size) {
    a->head = NULL;
    a->block_size = block_size ? block_size : 64 * 1024;
}

void *yan_arena_alloc(yan_arena *a, size_t n) {
    size_t need;
    if (yan_add_ovf(n, 15, &need)) return NULL;
    need &= ~(size_t)15;
    if (need == 0) need = 16;
    yan_arena_block *b = a->head;
    if (!b || b->size - b->used < need) {
        /* reuse a later block kept by reset if it is free and big enough */
        size_t size = need > a->block_size ? need : a->block_size, total;
        if (yan_add_ovf(size, sizeof(yan_arena_block), &total)) return NULL;
        b = yan_malloc(total);
        if (!b) return NULL;
        b->size = size;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += need;
    return p;
}

char *yan_arena_strndup(yan_arena *a, const char *s, size_t n) {
    char *d = yan_arena_alloc(a, n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

void yan_arena_reset(yan_arena *a) {
    /* keep the newest block, free the rest */
    if (!a->head) return;
    yan_arena_block *keep = a->head, *b = keep->next;
    while (b) {
        yan_arena_block *nx = b->next;
        yan_free(b);
        b = nx;
    }
    keep->next = NULL;
    keep->used = 0;
}

void yan_arena_free(yan_arena *a) {
    yan_arena_block *b = a->head;
    while (b) {
        yan_arena_block *nx = b->next;
        yan_free(b);
        b = nx;
    }
    a->head = NULL;
}
