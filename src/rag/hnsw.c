/* hnsw.c — the HNSW vector index of the knowledge base (contract in hnsw.h).
 *
 * Layout, chosen for the search's memory traffic:
 *  - Level 0, where a search spends nearly all its time, is one flat array
 *    of fixed-size node blocks, 64-byte aligned and advised for huge pages
 *    (random reads then rarely miss the TLB): the vector (dim padded to 16
 *    floats with zeros, so the kernels have no tails) followed by the
 *    level-0 list of up to M0 = 2M node numbers, ended by NONE when shorter.
 *    For dim 384 and M 16 a block is 1536 + 128 bytes, exactly 26 lines.
 *  - sq8 (optional): the block holds an int8 code of the vector (per-vector
 *    scale, q8_meta) instead, 576 bytes for dim 384, and the f32 vectors
 *    live in a second array; the search walks the graph on the codes (VNNI
 *    dot products, a quarter of the bytes) and ranks the candidates it
 *    found with the f32 vectors, so the distances returned are exact.
 *  - Upper levels (a node reaches level l with probability M^-l) are lists
 *    of M u32 in one pool, each node's levels 1..L contiguous at
 *    upper_off[node].
 *  - Node numbers are dense u32 in insertion order; ext[node] is the
 *    caller's int64 id, and the id map is an open-addressing table of node
 *    numbers (the key is read back from ext[]), 8 bytes per live node.
 *
 * Search (beam): a sorted pool of the L best nodes seen so far, each flagged
 * once expanded; the loop expands the nearest unexpanded node until none is
 * left in the pool. This is the HNSW paper's candidate/result pair of heaps
 * in one array: a candidate that falls out of the top L would never be
 * expanded by the paper's stopping rule either. Visited nodes are marked
 * with a 16-bit epoch per node, so starting a search costs nothing (a full
 * clear every 65535 searches). The unvisited neighbours of the expanded node
 * are gathered first with their first lines prefetched, then measured four
 * at a time (one pass over the query for four vectors).
 *
 * Insertion is the paper's algorithm 1 with the neighbour-selection
 * heuristic (algorithm 4, without extending or keeping pruned candidates);
 * a full neighbour list that gains a node is re-selected with the same
 * heuristic. The build always measures f32 distances. Parallel inserts
 * (add_batch with threads) lock one node's lists at a time with a byte
 * spinlock, and the entry point with a mutex.
 *
 * Deleted nodes keep routing; a search widens its pool by the deleted share
 * and drops them from the answer. Compaction rebuilds from the live nodes.
 *
 * File format (little-endian; version 1): a 128-byte header (struct
 * file_hdr; the checksum covers the header with the checksum field zeroed,
 * then the body), then the body: ext ids (n int64), levels (n u8), deleted
 * flags (n u8), zero padding to 8, vectors (n x dim f32, unpadded), level-0
 * lists (n x M0 u32), upper lists (upper_len u32: nodes in order, each
 * node's levels 1..L in order, each M u32). A list ends at its first NONE
 * (0xffffffff) or at its capacity. sq8 codes are not stored: loading
 * computes them again. The checksum is a 4-lane 64-bit multiply-rotate hash
 * (~10 GB/s), enough to catch corruption, not an adversary; a load also
 * checks every list, level and id, so a file that passes cannot make the
 * index read out of bounds.
 *
 * Distances are measured by the kernels of hnsw_kernels.c (scalar, AVX2,
 * AVX-512, VNNI for int8), chosen once per index and called through
 * function pointers.
 *
 * Dependencies: base (allocation, errors, atomic files, mmap,
 * parallel-for), pthreads, hnsw_kernels.c. */
#include "rag/hnsw.h"
#include "rag/hnsw_kernels.h"

#include "base/base.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

enum {
    MAX_DIM = 65536,
    MAX_M = 100,
    MAX_LEVEL = 30,
    FILE_VERSION = 1,
};
#define NONE UINT32_MAX
#define EXPANDED 0x80000000u
#define MAX_NODES 0x7ffffff0u /* node numbers keep the top bit free for EXPANDED */

/* ================================================================== index */

typedef struct {
    float d;
    uint32_t id; /* node number; the EXPANDED bit marks a pool entry already expanded */
} cand;

/* Per-searcher scratch: one per concurrent search or insert thread. */
typedef struct scratch {
    struct scratch *next;
    uint16_t *vis;   /* (vis_n) epoch a node was last visited in */
    size_t vis_n;
    uint16_t epoch;
    cand *pool;      /* (pool_cap) the beam */
    size_t pool_cap;
    cand *tmp;       /* (tmp_cap) candidates of a neighbour-list re-selection */
    size_t tmp_cap;
    uint32_t *sel;   /* (M0 + 1) selected neighbours */
    float *sel_d;    /* (M0 + 1) their distances */
    uint32_t *todo;  /* (M0 + 4) unvisited neighbours of the node being expanded */
    uint32_t *lk;    /* (M0 + 1) a copy of a link list (parallel inserts) */
    uint32_t *lsel;  /* (MAX_LEVEL + 1, M) an insert's neighbours on each level */
    float *lsel_d;   /* (MAX_LEVEL + 1, M) their distances */
    int nsel[MAX_LEVEL + 1];
    float *q;        /* (dim_pad) the query, 64-byte aligned, zero padded */
    void *q_raw;
    int8_t *qc;      /* sq8: (code_bytes) the query's codes */
    uint8_t *qu;     /* sq8: (code_bytes) the codes + 128, for vpdpbusd */
    float qinv, qn2; /* sq8: the query's code scale and squared norm */
    size_t bytes;    /* held, for yan_hnsw_memory */
} scratch;

/* The index's mutable shared state, allocated apart so that compaction can
 * swap two indexes' contents without moving a mutex. */
typedef struct {
    pthread_mutex_t lock;       /* guards free and bytes */
    scratch *free;              /* idle scratches */
    size_t bytes;               /* held by all scratches */
    pthread_mutex_t entry_lock; /* entry and max_level during parallel inserts */
} scratch_pool;

/* A large, 64-byte aligned block; from 4 MiB on, 2 MiB aligned and advised
 * for transparent huge pages (random reads of vectors then miss the TLB far
 * less often). */
typedef struct {
    void *raw;
    uint8_t *p;
    size_t bytes;
} big_block;

struct yan_hnsw {
    yan_hnsw_params p;
    yan_hnsw_kernel kernel;  /* resolved */
    dist_fn dist;
    dist4_fn dist4;
    int M, M0;               /* list capacity on upper levels / level 0 */
    size_t dim_pad;          /* dim rounded up to 16 */
    size_t vec_bytes;        /* dim_pad * 4 */
    size_t node_bytes;       /* level-0 block: vector (or codes and q8_meta), then the list (M0 u32);
                              * a multiple of 64 */
    size_t links_off;        /* offset of the level-0 list in a block */
    size_t code_bytes;       /* sq8: dim rounded up to 64 */
    double ml;               /* level multiplier 1 / ln(M) */
    q8dot_fn q8dot;
    q8dot4_fn q8dot4;

    big_block blocks;        /* (cap, node_bytes) */
    big_block fvec;          /* sq8: (cap, vec_bytes) the f32 vectors */
    uint8_t *vec_base;       /* f32 vector of node i at vec_base + i * vec_stride (blocks or fvec) */
    size_t vec_stride;
    uint32_t n, cap;         /* nodes (live and deleted) / allocated */
    int64_t *ext;            /* (cap) caller ids */
    uint8_t *level;          /* (cap) top level of each node */
    uint8_t *deleted;        /* (cap) 1 = deleted */
    uint32_t *upper_off;     /* (cap) start of the node's level-1.. lists in upper */
    uint32_t *upper;         /* (upper_cap) lists of M u32 */
    size_t upper_len, upper_cap;
    uint32_t n_deleted;

    uint32_t *map;           /* (map_cap) node numbers by hash of ext id; NONE = empty */
    size_t map_cap;          /* power of two, >= 2 * live */

    uint32_t entry;          /* NONE when empty */
    int max_level;
    uint64_t rng;
    uint64_t stamp;

    _Atomic uint8_t *locks;  /* (cap) one spinlock per node's lists; parallel inserts only */

    scratch_pool *sp;
};

/* sq8: what a block holds after its codes. The code of x is round(x * 127 /
 * max|x|) per component; inv = max|x| / 127; sum = the sum of the codes (the
 * VNNI correction); norm2 = |x|^2 from the f32 vector (L2). */
typedef struct {
    float inv;
    int32_t sum;
    float norm2;
    float pad;
} q8_meta;

INLINE float *node_vec(const yan_hnsw *h, uint32_t i) { return (float *)(h->vec_base + (size_t)i * h->vec_stride); }
INLINE uint8_t *node_block(const yan_hnsw *h, uint32_t i) { return h->blocks.p + (size_t)i * h->node_bytes; }

INLINE uint32_t *node_links(const yan_hnsw *h, uint32_t i, int lc) {
    if (lc == 0) return (uint32_t *)(node_block(h, i) + h->links_off);
    return h->upper + h->upper_off[i] + (size_t)(lc - 1) * (size_t)h->M;
}

INLINE void node_lock(const yan_hnsw *h, uint32_t i) {
    while (atomic_exchange_explicit(&h->locks[i], 1, memory_order_acquire))
        while (atomic_load_explicit(&h->locks[i], memory_order_relaxed)) CPU_PAUSE();
}
INLINE void node_unlock(const yan_hnsw *h, uint32_t i) { atomic_store_explicit(&h->locks[i], 0, memory_order_release); }

static uint64_t rng_next(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int draw_level(yan_hnsw *h) {
    double u = ((double)(rng_next(&h->rng) >> 11) + 1.0) / 9007199254740993.0; /* (0, 1] */
    double l = -log(u) * h->ml;
    return l >= MAX_LEVEL ? MAX_LEVEL : (int)l;
}

/* ---------------------------------------------------------- big blocks */

static bool big_alloc(big_block *b, size_t bytes) {
    const size_t huge = (size_t)2 << 20;
    size_t align = bytes >= 2 * huge ? huge : 64, total;
    if (yan_add_ovf(bytes, align, &total)) return false;
    void *raw = yan_malloc(total);
    if (!raw) return false;
    b->raw = raw;
    b->p = (uint8_t *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
    b->bytes = bytes;
#ifdef MADV_HUGEPAGE
    if (align == huge) madvise(b->p, bytes & ~(huge - 1), MADV_HUGEPAGE);
#endif
    return true;
}

static void big_free(big_block *b) {
    yan_free(b->raw);
    memset(b, 0, sizeof *b);
}

/* --------------------------------------------------------------- scratch */

static void scratch_free(scratch *s) {
    if (!s) return;
    yan_free(s->vis);
    yan_free(s->pool);
    yan_free(s->tmp);
    yan_free(s->sel);
    yan_free(s->sel_d);
    yan_free(s->todo);
    yan_free(s->lk);
    yan_free(s->lsel);
    yan_free(s->lsel_d);
    yan_free(s->q_raw);
    yan_free(s->qc);
    yan_free(s);
}

static size_t scratch_bytes(const scratch *s, const yan_hnsw *h) {
    return sizeof *s + s->vis_n * 2 + s->pool_cap * sizeof(cand) + s->tmp_cap * sizeof(cand) +
           (size_t)(h->M0 + 1) * 12 + (size_t)(h->M0 + 4) * 4 + (size_t)(MAX_LEVEL + 1) * (size_t)h->M * 8 +
           h->vec_bytes + 64 + 2 * h->code_bytes;
}

/* Make s fit the index now: a visited slot per node, a pool of pool_need. */
static bool scratch_fit(const yan_hnsw *h, scratch *s, size_t pool_need) {
    if (s->vis_n < h->cap) {
        uint16_t *v = yan_calloc(h->cap, sizeof *v);
        if (!v) return false;
        yan_free(s->vis);
        s->vis = v;
        s->vis_n = h->cap;
        s->epoch = 0;
    }
    if (s->pool_cap < pool_need) {
        cand *c = yan_malloc(pool_need * sizeof *c);
        if (!c) return false;
        yan_free(s->pool);
        s->pool = c;
        s->pool_cap = pool_need;
    }
    return true;
}

static scratch *scratch_new(const yan_hnsw *h) {
    scratch *s = yan_calloc(1, sizeof *s);
    if (!s) return NULL;
    size_t m1 = (size_t)h->M0 + 1; /* a list and one more */
    s->tmp_cap = m1 + 1;
    s->tmp = yan_malloc(s->tmp_cap * sizeof *s->tmp);
    s->sel = yan_malloc(m1 * sizeof *s->sel);
    s->sel_d = yan_malloc(m1 * sizeof *s->sel_d);
    s->todo = yan_malloc(((size_t)h->M0 + 4) * sizeof *s->todo);
    s->lk = yan_malloc(m1 * sizeof *s->lk);
    s->lsel = yan_malloc((size_t)(MAX_LEVEL + 1) * (size_t)h->M * sizeof *s->lsel);
    s->lsel_d = yan_malloc((size_t)(MAX_LEVEL + 1) * (size_t)h->M * sizeof *s->lsel_d);
    s->q_raw = yan_malloc(h->vec_bytes + 64);
    if (h->code_bytes && (s->qc = yan_malloc(2 * h->code_bytes))) s->qu = (uint8_t *)(s->qc + h->code_bytes);
    if (!s->tmp || !s->sel || !s->sel_d || !s->todo || !s->lk || !s->lsel || !s->lsel_d || !s->q_raw ||
        (h->code_bytes && !s->qc)) {
        scratch_free(s);
        return NULL;
    }
    s->q = (float *)(((uintptr_t)s->q_raw + 63) & ~(uintptr_t)63);
    memset(s->q, 0, h->vec_bytes);
    return s;
}

/* A scratch fitted to the index with a pool of at least pool_need; NULL on
 * allocation failure (no message set). */
static scratch *scratch_get(const yan_hnsw *h, size_t pool_need) {
    scratch_pool *sp = h->sp;
    pthread_mutex_lock(&sp->lock);
    scratch *s = sp->free;
    if (s) {
        sp->free = s->next;
        sp->bytes -= s->bytes;
    }
    pthread_mutex_unlock(&sp->lock);
    if (!s && !(s = scratch_new(h))) return NULL;
    if (!scratch_fit(h, s, pool_need)) {
        scratch_free(s);
        return NULL;
    }
    return s;
}

static void scratch_put(const yan_hnsw *h, scratch *s) {
    scratch_pool *sp = h->sp;
    s->bytes = scratch_bytes(s, h);
    pthread_mutex_lock(&sp->lock);
    s->next = sp->free;
    sp->free = s;
    sp->bytes += s->bytes;
    pthread_mutex_unlock(&sp->lock);
}

/* A fresh visited epoch; the marks of earlier searches become stale. */
INLINE uint16_t visit_begin(scratch *s) {
    if (++s->epoch == 0) {
        memset(s->vis, 0, s->vis_n * sizeof *s->vis);
        s->epoch = 1;
    }
    return s->epoch;
}

/* ---------------------------------------------------------------- id map */

INLINE size_t map_home(const yan_hnsw *h, int64_t id) { return (size_t)yan_hash_u64((uint64_t)id) & (h->map_cap - 1); }

static uint32_t map_find(const yan_hnsw *h, int64_t id) {
    if (!h->map_cap) return NONE;
    for (size_t i = map_home(h, id);; i = (i + 1) & (h->map_cap - 1)) {
        uint32_t v = h->map[i];
        if (v == NONE || h->ext[v] == id) return v;
    }
}

/* Point id at node v (replacing any node it pointed at). Capacity must be
 * reserved (map_reserve). */
static void map_put(yan_hnsw *h, int64_t id, uint32_t v) {
    for (size_t i = map_home(h, id);; i = (i + 1) & (h->map_cap - 1)) {
        uint32_t u = h->map[i];
        if (u == NONE || h->ext[u] == id) {
            h->map[i] = v;
            return;
        }
    }
}

/* Remove id (present) by backward shifting the run after it. */
static void map_del(yan_hnsw *h, int64_t id) {
    size_t mask = h->map_cap - 1, i = map_home(h, id);
    while (h->map[i] != NONE && h->ext[h->map[i]] != id) i = (i + 1) & mask;
    if (h->map[i] == NONE) return;
    for (size_t j = (i + 1) & mask; h->map[j] != NONE; j = (j + 1) & mask) {
        size_t home = map_home(h, h->ext[h->map[j]]);
        /* j's entry may move to the hole at i when its home is not in (i, j] */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays) continue;
        h->map[i] = h->map[j];
        i = j;
    }
    h->map[i] = NONE;
}

/* Make room for live live ids (load factor <= 1/2). */
static bool map_reserve(yan_hnsw *h, size_t live) {
    size_t want = 16;
    while (want < 2 * live) want *= 2;
    if (want <= h->map_cap) return true;
    uint32_t *m = yan_malloc(want * sizeof *m);
    if (!m) return false;
    memset(m, 0xff, want * sizeof *m);
    uint32_t *old = h->map;
    size_t old_cap = h->map_cap;
    h->map = m;
    h->map_cap = want;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i] != NONE) map_put(h, h->ext[old[i]], old[i]);
    yan_free(old);
    return true;
}

/* ----------------------------------------------------------------- growth */

/* Grow the per-node arrays to hold at least want nodes. All or nothing. */
static bool reserve_nodes(yan_hnsw *h, size_t want) {
    if (want <= h->cap) return true;
    if (want > MAX_NODES) return false;
    size_t cap = (size_t)h->cap + h->cap / 2 + 16; /* geometric growth, or exactly what is asked for */
    if (cap < want) cap = want;
    if (cap > MAX_NODES) cap = MAX_NODES;
    size_t bytes;
    if (yan_mul_ovf(cap, h->node_bytes, &bytes)) return false;
    big_block nb, nf = {0};
    if (!big_alloc(&nb, bytes)) return false;
    if (h->p.sq8 && !big_alloc(&nf, cap * h->vec_bytes)) {
        big_free(&nb);
        return false;
    }
    int64_t *ext = yan_malloc(cap * sizeof *ext);
    uint8_t *lv = yan_malloc(cap), *del = yan_malloc(cap);
    uint32_t *uo = yan_malloc(cap * sizeof *uo);
    if (!ext || !lv || !del || !uo) {
        big_free(&nb);
        big_free(&nf);
        yan_free(ext), yan_free(lv), yan_free(del), yan_free(uo);
        return false;
    }
    if (h->n) {
        memcpy(nb.p, h->blocks.p, (size_t)h->n * h->node_bytes);
        if (h->p.sq8) memcpy(nf.p, h->fvec.p, (size_t)h->n * h->vec_bytes);
        memcpy(ext, h->ext, h->n * sizeof *ext);
        memcpy(lv, h->level, h->n);
        memcpy(del, h->deleted, h->n);
        memcpy(uo, h->upper_off, h->n * sizeof *uo);
    }
    big_free(&h->blocks);
    big_free(&h->fvec);
    yan_free(h->ext), yan_free(h->level), yan_free(h->deleted), yan_free(h->upper_off);
    h->blocks = nb;
    h->fvec = nf;
    h->vec_base = h->p.sq8 ? nf.p : nb.p;
    h->ext = ext;
    h->level = lv;
    h->deleted = del;
    h->upper_off = uo;
    h->cap = (uint32_t)cap;
    return true;
}

static bool reserve_upper(yan_hnsw *h, size_t want) {
    if (want <= h->upper_cap) return true;
    if (want > UINT32_MAX) return false;
    size_t cap = h->upper_cap ? h->upper_cap : 256;
    while (cap < want) cap *= 2;
    if (cap > UINT32_MAX) cap = UINT32_MAX;
    uint32_t *u = yan_realloc(h->upper, cap * sizeof *u);
    if (!u) return false;
    h->upper = u;
    h->upper_cap = cap;
    return true;
}

/* ---------------------------------------------------------------- create */

yan_hnsw_params yan_hnsw_params_default(int dim) {
    return (yan_hnsw_params){
        .dim = dim,
        .metric = YAN_HNSW_IP,
        .M = 16,
        .ef_construction = 200,
        .ef_search = 64,
        .seed = 100,
        .capacity = 1024,
        .kernel = YAN_HNSW_KERNEL_AUTO,
    };
}

static yan_status check_params(const yan_hnsw_params *p) {
    if (p->dim < 1 || p->dim > MAX_DIM) return yan_fail(YAN_ERR_INVALID_ARG, "hnsw: dim %d out of range 1..%d", p->dim, MAX_DIM);
    if (p->metric != YAN_HNSW_IP && p->metric != YAN_HNSW_L2 && p->metric != YAN_HNSW_COS)
        return yan_fail(YAN_ERR_INVALID_ARG, "hnsw: unknown metric %d", (int)p->metric);
    if (p->M < 2 || p->M > MAX_M) return yan_fail(YAN_ERR_INVALID_ARG, "hnsw: M %d out of range 2..%d", p->M, MAX_M);
    if (p->ef_construction < 1 || p->ef_construction > 100000)
        return yan_fail(YAN_ERR_INVALID_ARG, "hnsw: ef_construction %d out of range 1..100000", p->ef_construction);
    if (p->ef_search < 1 || p->ef_search > 100000)
        return yan_fail(YAN_ERR_INVALID_ARG, "hnsw: ef_search %d out of range 1..100000", p->ef_search);
    if (p->capacity < 0 || p->capacity > (int64_t)MAX_NODES)
        return yan_fail(YAN_ERR_INVALID_ARG, "hnsw: capacity %lld out of range", (long long)p->capacity);
    if ((int)p->kernel < 0 || p->kernel > YAN_HNSW_KERNEL_AVX512)
        return yan_fail(YAN_ERR_INVALID_ARG, "hnsw: unknown kernel %d", (int)p->kernel);
    if (!yan_hnswk_available(p->kernel))
        return yan_fail(YAN_ERR_UNSUPPORTED, "hnsw: this CPU lacks the %s distance kernel",
                        p->kernel == YAN_HNSW_KERNEL_AVX512 ? "avx512" : "avx2");
    return YAN_OK;
}

void yan_hnsw_free(yan_hnsw *h) {
    if (!h) return;
    big_free(&h->blocks);
    big_free(&h->fvec);
    yan_free(h->ext);
    yan_free(h->level);
    yan_free(h->deleted);
    yan_free(h->upper_off);
    yan_free(h->upper);
    yan_free(h->map);
    yan_free((void *)h->locks);
    if (h->sp) {
        for (scratch *s = h->sp->free, *nx; s; s = nx) {
            nx = s->next;
            scratch_free(s);
        }
        pthread_mutex_destroy(&h->sp->lock);
        pthread_mutex_destroy(&h->sp->entry_lock);
        yan_free(h->sp);
    }
    yan_free(h);
}

yan_status yan_hnsw_create(const yan_hnsw_params *p, yan_hnsw **out) {
    *out = NULL;
    yan_status s = check_params(p);
    if (s) return s;
    yan_hnsw *h = yan_calloc(1, sizeof *h);
    scratch_pool *sp = yan_calloc(1, sizeof *sp);
    if (!h || !sp) {
        yan_free(h);
        yan_free(sp);
        return yan_fail(YAN_ERR_NOMEM, "hnsw: out of memory");
    }
    pthread_mutex_init(&sp->lock, NULL);
    pthread_mutex_init(&sp->entry_lock, NULL);
    h->sp = sp;
    h->p = *p;
    h->kernel = yan_hnswk_resolve(p->kernel);
    yan_hnswk_pick(h->kernel, p->metric, &h->dist, &h->dist4);
    h->M = p->M;
    h->M0 = 2 * p->M;
    h->dim_pad = ((size_t)p->dim + 15) & ~(size_t)15;
    h->vec_bytes = h->dim_pad * sizeof(float);
    if (p->sq8) {
        h->code_bytes = ((size_t)p->dim + 63) & ~(size_t)63;
        h->links_off = h->code_bytes + sizeof(q8_meta);
        h->vec_stride = h->vec_bytes;
    } else {
        h->links_off = h->vec_bytes;
    }
    h->node_bytes = (h->links_off + (size_t)h->M0 * sizeof(uint32_t) + 63) & ~(size_t)63;
    if (!p->sq8) h->vec_stride = h->node_bytes;
    yan_hnswk_pick_q8(h->kernel, &h->q8dot, &h->q8dot4);
    h->ml = 1.0 / log((double)p->M);
    h->entry = NONE;
    h->max_level = -1;
    h->rng = p->seed;
    if (!reserve_nodes(h, (size_t)(p->capacity > 0 ? p->capacity : 16)) || !map_reserve(h, 0)) {
        yan_hnsw_free(h);
        return yan_fail(YAN_ERR_NOMEM, "hnsw: out of memory for %lld nodes of dim %d", (long long)p->capacity, p->dim);
    }
    *out = h;
    return YAN_OK;
}

/* ---------------------------------------------------------------- search */

/* sq8 codes of x (dim floats) into code[code_bytes] (zero padded) and m. */
static void q8_encode(const yan_hnsw *h, const float *x, int8_t *code, q8_meta *m) {
    const int dim = h->p.dim;
    float mx = 0;
    double n2 = 0;
    for (int i = 0; i < dim; i++) {
        mx = fabsf(x[i]) > mx ? fabsf(x[i]) : mx;
        n2 += (double)x[i] * x[i];
    }
    float sc = mx > 0 ? 127.f / mx : 0.f;
    int32_t sum = 0;
    for (int i = 0; i < dim; i++) {
        long c = lrintf(x[i] * sc);
        c = c > 127 ? 127 : c < -127 ? -127 : c;
        code[i] = (int8_t)c;
        sum += (int32_t)c;
    }
    memset(code + dim, 0, h->code_bytes - (size_t)dim);
    m->inv = mx / 127.f;
    m->sum = sum;
    m->norm2 = (float)n2;
    m->pad = 0;
}

/* Greedy walk on level lc (ef = 1): move to the nearest neighbour while it
 * is nearer. */
INLINE uint32_t greedy(const yan_hnsw *h, scratch *s, const float *q, uint32_t ep, float *d_ep, int lc, bool mt) {
    float best = *d_ep;
    const int max = lc ? h->M : h->M0;
    for (bool moved = true; moved;) {
        moved = false;
        const uint32_t *lk = node_links(h, ep, lc);
        if (mt) {
            node_lock(h, ep);
            memcpy(s->lk, lk, (size_t)max * sizeof *lk);
            node_unlock(h, ep);
            lk = s->lk;
        }
        for (int j = 0; j < max && lk[j] != NONE; j++) {
            float d = h->dist(q, node_vec(h, lk[j]), h->dim_pad);
            if (d < best) {
                best = d;
                ep = lk[j];
                moved = true;
            }
        }
    }
    *d_ep = best;
    return ep;
}

/* Insert (d, id) into the sorted pool[0..*n) of capacity L, dropping the
 * farthest when full; returns the position. Caller checked d < pool[L-1]. */
INLINE int pool_insert(cand *pool, int *n, int L, float d, uint32_t id) {
    int p = *n < L ? (*n)++ : L - 1;
    while (p > 0 && pool[p - 1].d > d) {
        pool[p] = pool[p - 1];
        p--;
    }
    pool[p] = (cand){d, id};
    return p;
}

/* sq8 distance estimate from an exact integer dot product. */
INLINE float q8_dist(const yan_hnsw *h, const scratch *s, int32_t raw, const q8_meta *m) {
    float dot = (float)raw * s->qinv * m->inv;
    return h->p.metric == YAN_HNSW_L2 ? s->qn2 + m->norm2 - 2.f * dot : 1.f - dot;
}

/* The beam search on level lc from ep (at distance d_ep): leaves the L
 * nearest nodes found in s->pool[0..n), nearest first, and returns n. The
 * EXPANDED bit may be set in the ids. With q8 the distances are the sq8
 * estimates against s->qc / s->qu (level 0 only), else exact against q.
 * This loop is where a search spends its time. */
INLINE int beam(const yan_hnsw *h, scratch *s, const float *q, uint32_t ep, float d_ep, int L, int lc, bool mt,
                bool q8) {
    cand *pool = s->pool;
    uint16_t *vis = s->vis, e = visit_begin(s);
    uint32_t *todo = s->todo;
    const size_t dp = h->dim_pad, cb = h->code_bytes;
    const int max = lc ? h->M : h->M0;
    int n = 1, cur = 0;
    pool[0] = (cand){d_ep, ep};
    vis[ep] = e;
    while (cur < n) {
        uint32_t c = pool[cur].id;
        pool[cur].id = c | EXPANDED;
        int next = cur + 1;
        const uint32_t *lk = node_links(h, c, lc);
        if (mt) {
            node_lock(h, c);
            memcpy(s->lk, lk, (size_t)max * sizeof *lk);
            node_unlock(h, c);
            lk = s->lk;
        }
        /* gather the unvisited neighbours and start their vectors coming:
         * all lines of an sq8 code (7 for dim 384); the first line of an
         * f32 vector, whose other 23 the hardware prefetcher streams (more
         * software prefetches only wait for fill buffers: measured) */
        int m = 0;
        for (int j = 0; j < max && lk[j] != NONE; j++) {
            uint32_t v = lk[j];
            if (vis[v] == e) continue;
            vis[v] = e;
            todo[m++] = v;
            if (q8) {
                const char *pb = (const char *)node_block(h, v);
                for (size_t l = 0; l < cb + sizeof(q8_meta); l += 64) PREFETCH(pb + l);
            } else {
                PREFETCH(node_vec(h, v));
            }
        }
        float lim = n == L ? pool[L - 1].d : INFINITY;
        for (int i = 0; i < m; i += 4) {
            float d[4];
            int w = m - i < 4 ? m - i : 4;
            if (q8) {
                const int8_t *xb[4];
                const q8_meta *xm[4];
                int32_t xs[4], raw[4];
                for (int t = 0; t < 4; t++) {
                    const uint8_t *blk = node_block(h, todo[i + (t < w ? t : 0)]);
                    xb[t] = (const int8_t *)blk;
                    xm[t] = (const q8_meta *)(blk + cb);
                    xs[t] = xm[t]->sum;
                }
                if (w == 4) h->q8dot4(s->qc, s->qu, xb, cb, xs, raw);
                else
                    for (int t = 0; t < w; t++) raw[t] = h->q8dot(s->qc, s->qu, xb[t], cb, xs[t]);
                for (int t = 0; t < w; t++) d[t] = q8_dist(h, s, raw[t], xm[t]);
            } else if (w == 4) {
                const float *b[4] = {node_vec(h, todo[i]), node_vec(h, todo[i + 1]), node_vec(h, todo[i + 2]),
                                     node_vec(h, todo[i + 3])};
                h->dist4(q, b, dp, d);
            } else {
                for (int t = 0; t < w; t++) d[t] = h->dist(q, node_vec(h, todo[i + t]), dp);
            }
            for (int t = 0; t < w; t++) {
                if (d[t] < lim) {
                    int p = pool_insert(pool, &n, L, d[t], todo[i + t]);
                    if (p < next) next = p;
                    lim = n == L ? pool[L - 1].d : INFINITY;
                }
            }
        }
        cur = next;
        while (cur < n && (pool[cur].id & EXPANDED)) cur++;
    }
    return n;
}

static int beam_st(const yan_hnsw *h, scratch *s, const float *q, uint32_t ep, float d_ep, int L, int lc) {
    return beam(h, s, q, ep, d_ep, L, lc, false, false);
}
static int beam_mt(const yan_hnsw *h, scratch *s, const float *q, uint32_t ep, float d_ep, int L, int lc) {
    return beam(h, s, q, ep, d_ep, L, lc, true, false);
}
static int beam_q8(const yan_hnsw *h, scratch *s, uint32_t ep, int L) {
    const uint8_t *blk = node_block(h, ep);
    const q8_meta *m = (const q8_meta *)(blk + h->code_bytes);
    float d = q8_dist(h, s, h->q8dot(s->qc, s->qu, (const int8_t *)blk, h->code_bytes, m->sum), m);
    return beam(h, s, NULL, ep, d, L, 0, false, true);
}

/* Copy q into s->q (normalised for COS; the padding stays zero). */
static void load_query(const yan_hnsw *h, scratch *s, const float *q) {
    float *d = s->q;
    memcpy(d, q, (size_t)h->p.dim * sizeof *d);
    if (h->p.metric == YAN_HNSW_COS) {
        double ss = 0;
        for (int i = 0; i < h->p.dim; i++) ss += (double)d[i] * d[i];
        if (ss > 0) {
            float inv = (float)(1.0 / sqrt(ss));
            for (int i = 0; i < h->p.dim; i++) d[i] *= inv;
        }
    }
}

static int cand_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    return x->d < y->d ? -1 : x->d > y->d ? 1 : (x->id > y->id) - (x->id < y->id);
}

/* sq8: replace the pool's estimates by exact distances, drop the deleted
 * nodes, sort; returns the count kept. */
static int rerank(const yan_hnsw *h, scratch *s, int n) {
    cand *pool = s->pool;
    int m = 0;
    for (int i = 0; i < n; i++) {
        uint32_t v = pool[i].id & ~EXPANDED;
        if (!h->deleted[v]) pool[m++].id = v;
    }
    for (int i = 0; i < m; i += 4) {
        if (m - i >= 4) {
            const float *b[4] = {node_vec(h, pool[i].id), node_vec(h, pool[i + 1].id), node_vec(h, pool[i + 2].id),
                                 node_vec(h, pool[i + 3].id)};
            float d[4];
            h->dist4(s->q, b, h->dim_pad, d);
            for (int t = 0; t < 4; t++) pool[i + t].d = d[t];
        } else {
            for (int t = i; t < m; t++) pool[t].d = h->dist(s->q, node_vec(h, pool[t].id), h->dim_pad);
        }
    }
    qsort(pool, (size_t)m, sizeof *pool, cand_cmp);
    return m;
}

yan_status yan_hnsw_search(const yan_hnsw *h, const float *q, int k, int ef, int64_t *ids, float *dists,
                           int *n_found) {
    *n_found = 0;
    if (k < 0 || ef < 0) return yan_fail(YAN_ERR_INVALID_ARG, "hnsw: search with k = %d, ef = %d", k, ef);
    uint32_t live = h->n - h->n_deleted;
    if (k == 0 || live == 0 || h->entry == NONE) return YAN_OK;
    if (ef == 0) ef = h->p.ef_search;
    size_t L = (size_t)(ef > k ? ef : k);
    /* deleted nodes take pool slots: widen the pool by the deleted share */
    if (h->n_deleted) L += (size_t)((double)L * h->n_deleted / live + 0.5);
    if (L > h->n) L = h->n;
    scratch *s = scratch_get(h, L + 1);
    if (!s) return yan_fail(YAN_ERR_NOMEM, "hnsw: out of memory for search scratch");
    load_query(h, s, q);
    uint32_t ep = h->entry;
    float d = h->dist(s->q, node_vec(h, ep), h->dim_pad);
    for (int lc = h->max_level; lc > 0; lc--) ep = greedy(h, s, s->q, ep, &d, lc, false);
    int n, got = 0;
    if (h->p.sq8) {
        q8_meta qm;
        q8_encode(h, s->q, s->qc, &qm);
        for (size_t i = 0; i < h->code_bytes; i++) s->qu[i] = (uint8_t)(s->qc[i] + 128);
        s->qinv = qm.inv;
        s->qn2 = qm.norm2;
        n = rerank(h, s, beam_q8(h, s, ep, (int)L));
    } else {
        n = beam_st(h, s, s->q, ep, d, (int)L, 0);
    }
    for (int i = 0; i < n && got < k; i++) {
        uint32_t v = s->pool[i].id & ~EXPANDED;
        if (h->deleted[v]) continue;
        ids[got] = h->ext[v];
        if (dists) dists[got] = s->pool[i].d;
        got++;
    }
    scratch_put(h, s);
    *n_found = got;
    return YAN_OK;
}

/* ---------------------------------------------------------------- insert */

/* The selection heuristic (paper, algorithm 4): walk the candidates nearest
 * first and keep one only when it is nearer to the base than to every one
 * kept so far, up to max. c[0..n) sorted by distance to the base; skip is a
 * node never to select (the base itself). Returns the count kept in
 * out/out_d. */
static int select_neighbors(const yan_hnsw *h, const cand *c, int n, int max, uint32_t skip, uint32_t *out,
                            float *out_d) {
    int m = 0;
    for (int i = 0; i < n && m < max; i++) {
        uint32_t e = c[i].id & ~EXPANDED;
        if (e == skip) continue;
        const float *ve = node_vec(h, e);
        bool keep = true;
        for (int j = 0; j < m && keep; j++)
            if (h->dist(ve, node_vec(h, out[j]), h->dim_pad) < c[i].d) keep = false;
        if (keep) {
            out[m] = e;
            out_d[m] = c[i].d;
            m++;
        }
    }
    return m;
}

/* Add node v (at distance d from r) to r's list on level lc; a full list is
 * re-selected by the heuristic over its members and v. */
static void link_back(const yan_hnsw *h, scratch *s, uint32_t r, uint32_t v, float d, int lc, bool mt) {
    if (mt) node_lock(h, r);
    uint32_t *lk = node_links(h, r, lc);
    const int max = lc ? h->M : h->M0;
    int cnt = 0;
    bool dup = false;
    for (; cnt < max && lk[cnt] != NONE; cnt++) dup |= lk[cnt] == v;
    if (dup) {
    } else if (cnt < max) {
        lk[cnt] = v;
    } else {
        cand *c = s->tmp;
        const float *vr = node_vec(h, r);
        int n = 0;
        c[n++] = (cand){d, v};
        for (int j = 0; j < cnt; j++) c[n++] = (cand){h->dist(vr, node_vec(h, lk[j]), h->dim_pad), lk[j]};
        for (int i = 1; i < n; i++) { /* insertion sort: n <= M0 + 1 */
            cand x = c[i];
            int j = i;
            while (j > 0 && c[j - 1].d > x.d) {
                c[j] = c[j - 1];
                j--;
            }
            c[j] = x;
        }
        int m = select_neighbors(h, c, n, max, r, s->sel, s->sel_d);
        memcpy(lk, s->sel, (size_t)m * sizeof *lk);
        for (int j = m; j < max; j++) lk[j] = NONE;
    }
    if (mt) node_unlock(h, r);
}

/* Link node i (its vector, level and ids already in place) into the graph. */
static void insert_node(yan_hnsw *h, scratch *s, uint32_t i, bool mt) {
    const float *q = node_vec(h, i);
    int level = h->level[i];
    if (mt) pthread_mutex_lock(&h->sp->entry_lock);
    uint32_t ep = h->entry;
    int top = h->max_level;
    bool hold = mt && level > top; /* a new top level: keep the entry locked */
    if (ep == NONE) {
        h->entry = i;
        h->max_level = level;
        if (mt) pthread_mutex_unlock(&h->sp->entry_lock);
        return;
    }
    if (mt && !hold) pthread_mutex_unlock(&h->sp->entry_lock);
    float d = h->dist(q, node_vec(h, ep), h->dim_pad);
    for (int lc = top; lc > level; lc--) ep = greedy(h, s, q, ep, &d, lc, mt);
    /* Find the neighbours on every level top-down, then connect bottom-up:
     * i becomes reachable on a level only once its lists below are in
     * place, so a concurrent insert entering through i never meets an empty
     * list. (A level's search reads only that level's lists, so the graph
     * is the same as connecting level by level.) */
    const int lmax = level < top ? level : top, M = h->M;
    for (int lc = lmax; lc >= 0; lc--) {
        int n = mt ? beam_mt(h, s, q, ep, d, h->p.ef_construction, lc) : beam_st(h, s, q, ep, d, h->p.ef_construction, lc);
        s->nsel[lc] = select_neighbors(h, s->pool, n, M, i, s->lsel + (size_t)lc * M, s->lsel_d + (size_t)lc * M);
        ep = s->pool[0].id & ~EXPANDED;
        d = s->pool[0].d;
        if (ep == i && n > 1) { /* reached through a concurrent link: start from the next */
            ep = s->pool[1].id & ~EXPANDED;
            d = s->pool[1].d;
        }
    }
    for (int lc = 0; lc <= lmax; lc++) {
        const uint32_t *sel = s->lsel + (size_t)lc * M;
        const float *sd = s->lsel_d + (size_t)lc * M;
        int m = s->nsel[lc];
        uint32_t *lk = node_links(h, i, lc);
        if (mt) node_lock(h, i);
        memcpy(lk, sel, (size_t)m * sizeof *lk);
        for (int j = m, max = lc ? M : h->M0; j < max; j++) lk[j] = NONE;
        if (mt) node_unlock(h, i);
        for (int j = 0; j < m; j++) link_back(h, s, sel[j], i, sd[j], lc, mt);
    }
    if (level > top) {
        h->entry = i;
        h->max_level = level;
    }
    if (hold) pthread_mutex_unlock(&h->sp->entry_lock);
}

typedef struct {
    yan_hnsw *h;
    scratch **sc;           /* one per task */
    uint32_t first, count;
    _Atomic uint32_t next;
} batch_job;

static void batch_task(void *ud, int task) {
    batch_job *j = ud;
    for (;;) {
        uint32_t k = atomic_fetch_add(&j->next, 1);
        if (k >= j->count) break;
        insert_node(j->h, j->sc[task], j->first + k, true);
    }
}

enum { MT_MIN_BATCH = 256 }; /* smaller batches are inserted on the caller's thread */

yan_status yan_hnsw_add_batch(yan_hnsw *h, const int64_t *ids, const float *vecs, int64_t n, int n_threads) {
    if (n < 0) return yan_fail(YAN_ERR_INVALID_ARG, "hnsw: add of %lld vectors", (long long)n);
    if (n == 0) return YAN_OK;
    const int dim = h->p.dim;
    for (int64_t r = 0; r < n; r++)
        for (int c = 0; c < dim; c++)
            if (!isfinite(vecs[r * dim + c]))
                return yan_fail(YAN_ERR_INVALID_ARG, "hnsw: vector %lld (id %lld) has a non-finite component %d",
                                (long long)r, (long long)ids[r], c);
    if ((uint64_t)h->n + (uint64_t)n > MAX_NODES)
        return yan_fail(YAN_ERR_INVALID_ARG, "hnsw: more than %u nodes", (unsigned)MAX_NODES);
    n_threads = n < MT_MIN_BATCH ? 1 : yan_threads_resolve(n_threads);
    if (n_threads > yan_cpu_count()) n_threads = yan_cpu_count(); /* spinlocks and oversubscription do not mix */

    /* Everything that can fail happens before the index changes. */
    size_t want = (size_t)h->n + (size_t)n;
    uint64_t rng0 = h->rng;
    scratch *sc[256] = {0};
    int n_sc = 0;
    if (!reserve_nodes(h, want) || !map_reserve(h, want - h->n_deleted)) goto nomem;
    size_t up = h->upper_len;
    for (int64_t r = 0; r < n; r++) {
        int l = draw_level(h);
        h->level[h->n + r] = (uint8_t)l;
        up += (size_t)l * (size_t)h->M;
    }
    if (!reserve_upper(h, up)) goto nomem;
    if (n_threads > 1 && !(h->locks = yan_calloc(h->cap, 1))) n_threads = 1;
    for (; n_sc < n_threads; n_sc++)
        if (!(sc[n_sc] = scratch_get(h, (size_t)h->p.ef_construction + 1))) break;
    if (n_sc == 0) goto nomem;
    n_threads = n_sc;

    uint32_t first = h->n;
    for (int64_t r = 0; r < n; r++) {
        uint32_t v = first + (uint32_t)r;
        float *dst = node_vec(h, v);
        memcpy(dst, vecs + r * dim, (size_t)dim * sizeof *dst);
        memset(dst + dim, 0, h->vec_bytes - (size_t)dim * sizeof *dst); /* padding */
        memset(node_links(h, v, 0), 0xff, (size_t)h->M0 * sizeof(uint32_t)); /* empty list */
        if (h->p.metric == YAN_HNSW_COS) {
            double ss = 0;
            for (int c = 0; c < dim; c++) ss += (double)dst[c] * dst[c];
            if (ss > 0) {
                float inv = (float)(1.0 / sqrt(ss));
                for (int c = 0; c < dim; c++) dst[c] *= inv;
            }
        }
        if (h->p.sq8) q8_encode(h, dst, (int8_t *)node_block(h, v), (q8_meta *)(node_block(h, v) + h->code_bytes));
        h->ext[v] = ids[r];
        h->deleted[v] = 0;
        h->upper_off[v] = (uint32_t)h->upper_len;
        size_t nu = (size_t)h->level[v] * (size_t)h->M;
        if (nu) memset(h->upper + h->upper_len, 0xff, nu * sizeof *h->upper);
        h->upper_len += nu;
        uint32_t old = map_find(h, ids[r]);
        if (old != NONE) { /* replaced: the old node stays as a deleted one */
            h->deleted[old] = 1;
            h->n_deleted++;
        }
        h->n = v + 1;
        map_put(h, ids[r], v);
    }
    if (n_threads == 1) {
        for (int64_t r = 0; r < n; r++) insert_node(h, sc[0], first + (uint32_t)r, false);
    } else {
        batch_job j = {.h = h, .sc = sc, .first = first, .count = (uint32_t)n};
        yan_parallel_for(n_threads, n_threads, batch_task, &j);
    }
    for (int t = 0; t < n_sc; t++) scratch_put(h, sc[t]);
    yan_free((void *)h->locks);
    h->locks = NULL;
    return YAN_OK;

nomem:
    h->rng = rng0;
    for (int t = 0; t < n_sc; t++) scratch_put(h, sc[t]);
    yan_free((void *)h->locks);
    h->locks = NULL;
    return yan_fail(YAN_ERR_NOMEM, "hnsw: out of memory growing to %zu nodes", want);
}

yan_status yan_hnsw_add(yan_hnsw *h, int64_t id, const float *vec) { return yan_hnsw_add_batch(h, &id, vec, 1, 1); }

yan_status yan_hnsw_delete(yan_hnsw *h, int64_t id) {
    uint32_t v = map_find(h, id);
    if (v == NONE) return yan_fail(YAN_ERR_NOT_FOUND, "hnsw: no vector with id %lld", (long long)id);
    map_del(h, id);
    h->deleted[v] = 1;
    h->n_deleted++;
    return YAN_OK;
}

yan_status yan_hnsw_compact(yan_hnsw *h, int n_threads) {
    if (!h->n_deleted) return YAN_OK;
    yan_hnsw_params p = h->p;
    uint32_t live = h->n - h->n_deleted;
    p.capacity = live ? live : 16;
    yan_hnsw *g;
    yan_status st = yan_hnsw_create(&p, &g);
    if (st) return st;
    int64_t *ids = yan_malloc(((size_t)live + 1) * sizeof *ids);
    float *vecs = yan_malloc(((size_t)live + 1) * (size_t)p.dim * sizeof *vecs);
    if (!ids || !vecs) {
        yan_free(ids);
        yan_free(vecs);
        yan_hnsw_free(g);
        return yan_fail(YAN_ERR_NOMEM, "hnsw: out of memory compacting %u nodes", live);
    }
    uint32_t k = 0;
    for (uint32_t v = 0; v < h->n; v++) {
        if (h->deleted[v]) continue;
        ids[k] = h->ext[v];
        memcpy(vecs + (size_t)k * (size_t)p.dim, node_vec(h, v), (size_t)p.dim * sizeof *vecs);
        k++;
    }
    st = yan_hnsw_add_batch(g, ids, vecs, k, n_threads);
    yan_free(ids);
    yan_free(vecs);
    if (st) {
        yan_hnsw_free(g);
        return st;
    }
    g->stamp = h->stamp;
    /* swap the contents, each struct keeping its own scratch pool (h's
     * scratches fit the smaller index too) */
    yan_hnsw tmp = *h;
    *h = *g;
    *g = tmp;
    scratch_pool *sp = h->sp;
    h->sp = g->sp;
    g->sp = sp;
    yan_hnsw_free(g);
    return YAN_OK;
}

/* --------------------------------------------------------------- queries */

int64_t yan_hnsw_count(const yan_hnsw *h) { return (int64_t)(h->n - h->n_deleted); }
int64_t yan_hnsw_n_deleted(const yan_hnsw *h) { return h->n_deleted; }
double yan_hnsw_deleted_share(const yan_hnsw *h) { return h->n ? (double)h->n_deleted / h->n : 0.0; }
bool yan_hnsw_contains(const yan_hnsw *h, int64_t id) { return map_find(h, id) != NONE; }
const yan_hnsw_params *yan_hnsw_get_params(const yan_hnsw *h) { return &h->p; }
void yan_hnsw_set_stamp(yan_hnsw *h, uint64_t stamp) { h->stamp = stamp; }
uint64_t yan_hnsw_stamp(const yan_hnsw *h) { return h->stamp; }

const char *yan_hnsw_kernel_name(const yan_hnsw *h) {
    switch (h->kernel) {
    case YAN_HNSW_KERNEL_AVX512: return "avx512";
    case YAN_HNSW_KERNEL_AVX2: return "avx2";
    default: return "scalar";
    }
}

yan_status yan_hnsw_get(const yan_hnsw *h, int64_t id, float *out) {
    uint32_t v = map_find(h, id);
    if (v == NONE) return yan_fail(YAN_ERR_NOT_FOUND, "hnsw: no vector with id %lld", (long long)id);
    memcpy(out, node_vec(h, v), (size_t)h->p.dim * sizeof *out);
    return YAN_OK;
}

size_t yan_hnsw_memory(const yan_hnsw *h) {
    size_t b = sizeof *h + sizeof *h->sp + h->blocks.bytes + h->fvec.bytes + (size_t)h->cap * (8 + 1 + 1 + 4) +
               h->upper_cap * 4 + h->map_cap * 4 + (h->locks ? h->cap : 0);
    pthread_mutex_lock(&h->sp->lock);
    b += h->sp->bytes;
    pthread_mutex_unlock(&h->sp->lock);
    return b;
}

/* ============================================================== the file */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "hnsw.c writes its files in host byte order, which must be little-endian"
#endif

static const char FILE_MAGIC[8] = {'Y', 'A', 'N', 'H', 'N', 'S', 'W', 0};
enum { FLAG_SQ8 = 1 }; /* the codes are not stored: they are computed again from the vectors */

typedef struct {
    char magic[8];         /* "YANHNSW\0" */
    uint32_t version;      /* FILE_VERSION */
    uint32_t header_bytes; /* sizeof(file_hdr) */
    uint32_t dim, metric, M, M0, ef_construction, ef_search;
    uint32_t max_level;    /* 0 when empty */
    uint32_t entry;        /* NONE when empty */
    uint64_t n;            /* nodes, live and deleted */
    uint64_t n_deleted;
    uint64_t upper_len;    /* u32 words of upper-level lists */
    uint64_t seed, rng, stamp;
    uint64_t body_bytes;
    uint64_t checksum;     /* over this header (checksum zeroed) and the body */
    uint32_t flags;        /* FLAG_SQ8 */
    uint8_t reserved[12];  /* zero */
} file_hdr;
_Static_assert(sizeof(file_hdr) == 128, "file_hdr is a fixed on-disk block");

/* ------------------------------------------------------------- checksum */

/* Four independent lanes over 32-byte blocks; each step is a bijection of
 * the lane state, so changing any one word always changes the lane. */
typedef struct {
    uint64_t v[4];
    uint8_t buf[32];
    size_t nbuf;
    uint64_t total;
} csum;

#define CK1 0x9E3779B97F4A7C15ULL
#define CK2 0xBF58476D1CE4E5B9ULL
#define CK3 0x94D049BB133111EBULL

INLINE uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
INLINE uint64_t cs_round(uint64_t v, uint64_t w) { return rotl64(v ^ (w * CK2), 31) * CK1; }

static void csum_init(csum *c) {
    memset(c, 0, sizeof *c);
    c->v[0] = CK1, c->v[1] = CK2, c->v[2] = CK3, c->v[3] = 0x2545F4914F6CDD1DULL;
}

INLINE void csum_block(csum *c, const uint8_t *p) {
    uint64_t w[4];
    memcpy(w, p, 32);
    c->v[0] = cs_round(c->v[0], w[0]);
    c->v[1] = cs_round(c->v[1], w[1]);
    c->v[2] = cs_round(c->v[2], w[2]);
    c->v[3] = cs_round(c->v[3], w[3]);
}

static void csum_update(csum *c, const void *data, size_t n) {
    const uint8_t *p = data;
    if (!n) return;
    c->total += n;
    if (c->nbuf) {
        size_t t = 32 - c->nbuf < n ? 32 - c->nbuf : n;
        memcpy(c->buf + c->nbuf, p, t);
        c->nbuf += t, p += t, n -= t;
        if (c->nbuf < 32) return;
        csum_block(c, c->buf);
        c->nbuf = 0;
    }
    for (; n >= 32; p += 32, n -= 32) csum_block(c, p);
    memcpy(c->buf, p, n);
    c->nbuf = n;
}

static uint64_t csum_final(const csum *c0) {
    csum c = *c0;
    if (c.nbuf) {
        memset(c.buf + c.nbuf, 0, 32 - c.nbuf);
        csum_block(&c, c.buf);
    }
    uint64_t h = c.total * CK3;
    for (int i = 0; i < 4; i++) h = rotl64(h ^ yan_hash_u64(c.v[i] + (uint64_t)i), 27) * CK1 + CK2;
    return yan_hash_u64(h);
}

/* --------------------------------------------------------------- writing */

typedef yan_status (*sink_fn)(void *ud, const void *p, size_t n);

static yan_status sink_hash(void *ud, const void *p, size_t n) {
    csum_update(ud, p, n);
    return YAN_OK;
}
static yan_status sink_file(void *ud, const void *p, size_t n) { return yan_afile_write(ud, p, n); }

static const uint8_t ZEROS[8];

static size_t pad8(size_t n) { return (8 - (n & 7)) & 7; }

/* The body, section by section (format in the file comment). */
static yan_status emit_body(const yan_hnsw *h, sink_fn put, void *ud) {
    yan_status s;
    size_t n = h->n, dim = (size_t)h->p.dim, l0 = (size_t)h->M0;
    if ((s = put(ud, h->ext, n * sizeof *h->ext)) || (s = put(ud, h->level, n)) || (s = put(ud, h->deleted, n)) ||
        (s = put(ud, ZEROS, pad8(2 * n))))
        return s;
    for (uint32_t i = 0; i < h->n; i++)
        if ((s = put(ud, node_vec(h, i), dim * sizeof(float)))) return s;
    for (uint32_t i = 0; i < h->n; i++)
        if ((s = put(ud, node_links(h, i, 0), l0 * sizeof(uint32_t)))) return s;
    return put(ud, h->upper, h->upper_len * sizeof *h->upper);
}

/* Body size for a header's counts; false on overflow. */
static bool body_size(uint64_t n, uint64_t dim, uint64_t M0, uint64_t upper_len, uint64_t *out) {
    if (n > MAX_NODES || dim > MAX_DIM || M0 > 2 * MAX_M || upper_len > UINT32_MAX) return false;
    *out = n * 8 + 2 * n + pad8((size_t)(2 * n)) + n * dim * 4 + n * M0 * 4 + upper_len * 4;
    return true;
}

yan_status yan_hnsw_save(const yan_hnsw *h, const char *path) {
    file_hdr hd = {0};
    memcpy(hd.magic, FILE_MAGIC, sizeof hd.magic);
    hd.version = FILE_VERSION;
    hd.header_bytes = sizeof hd;
    hd.dim = (uint32_t)h->p.dim;
    hd.metric = (uint32_t)h->p.metric;
    hd.M = (uint32_t)h->M;
    hd.M0 = (uint32_t)h->M0;
    hd.ef_construction = (uint32_t)h->p.ef_construction;
    hd.ef_search = (uint32_t)h->p.ef_search;
    hd.max_level = h->entry == NONE ? 0 : (uint32_t)h->max_level;
    hd.entry = h->entry;
    hd.n = h->n;
    hd.n_deleted = h->n_deleted;
    hd.upper_len = h->upper_len;
    hd.seed = h->p.seed;
    hd.rng = h->rng;
    hd.stamp = h->stamp;
    hd.flags = h->p.sq8 ? FLAG_SQ8 : 0;
    body_size(hd.n, hd.dim, hd.M0, hd.upper_len, &hd.body_bytes);
    csum c;
    csum_init(&c);
    csum_update(&c, &hd, sizeof hd);
    emit_body(h, sink_hash, &c);
    hd.checksum = csum_final(&c);

    yan_afile af;
    yan_status s = yan_afile_open(&af, path);
    if (s) return s;
    if ((s = yan_afile_write(&af, &hd, sizeof hd)) || (s = emit_body(h, sink_file, &af))) {
        yan_afile_abort(&af);
        return s;
    }
    return yan_afile_commit(&af);
}

/* --------------------------------------------------------------- reading */

/* Check the graph read from path: every list within its capacity and
 * pointing at nodes that exist on that level, the entry point on the top
 * level, the deleted count, unique live ids. */
static yan_status validate(yan_hnsw *h, const char *path) {
    uint32_t dels = 0;
    for (uint32_t i = 0; i < h->n; i++) {
        if (h->deleted[i] > 1) return yan_fail(YAN_ERR_FORMAT, "%s: node %u has a bad deleted flag", path, i);
        dels += h->deleted[i];
        for (int lc = 0; lc <= h->level[i]; lc++) {
            const uint32_t *lk = node_links(h, i, lc);
            int max = lc ? h->M : h->M0, cnt = 0;
            while (cnt < max && lk[cnt] != NONE) cnt++;
            for (int j = 0; j < max; j++) {
                if (j >= cnt ? lk[j] != NONE : (lk[j] >= h->n || h->level[lk[j]] < lc))
                    return yan_fail(YAN_ERR_FORMAT, "%s: node %u links to node %u, which is not on level %d", path, i,
                                    lk[j], lc);
            }
        }
    }
    if (dels != h->n_deleted)
        return yan_fail(YAN_ERR_FORMAT, "%s: %u nodes are flagged deleted, the header says %u", path, dels, h->n_deleted);
    if (h->n == 0 ? h->entry != NONE : (h->entry >= h->n || h->level[h->entry] != h->max_level))
        return yan_fail(YAN_ERR_FORMAT, "%s: bad entry point %u", path, h->entry);
    for (uint32_t i = 0; i < h->n; i++) {
        if (h->deleted[i]) continue;
        if (map_find(h, h->ext[i]) != NONE)
            return yan_fail(YAN_ERR_FORMAT, "%s: id %lld appears twice", path, (long long)h->ext[i]);
        map_put(h, h->ext[i], i);
    }
    return YAN_OK;
}

yan_status yan_hnsw_load(const char *path, yan_hnsw_kernel kernel, yan_hnsw **out) {
    *out = NULL;
    yan_mmap m;
    yan_status s = yan_mmap_open(path, &m);
    if (s) return s;
    file_hdr hd;
    uint64_t body = 0;
    yan_hnsw *h = NULL;
    if (m.len < sizeof hd || memcmp(m.data, FILE_MAGIC, sizeof FILE_MAGIC) != 0) {
        s = yan_fail(YAN_ERR_FORMAT, "%s: not a yan HNSW index (%s)", path,
                     m.len < sizeof hd ? "shorter than the header" : "bad magic");
        goto done;
    }
    memcpy(&hd, m.data, sizeof hd);
    if (hd.version != FILE_VERSION) {
        s = yan_fail(hd.version > FILE_VERSION ? YAN_ERR_UNSUPPORTED : YAN_ERR_FORMAT,
                     "%s: HNSW format version %u, this build reads %d; rebuild the index", path, hd.version, FILE_VERSION);
        goto done;
    }
    if (hd.header_bytes != sizeof hd || !body_size(hd.n, hd.dim, hd.M0, hd.upper_len, &body) || body != hd.body_bytes) {
        s = yan_fail(YAN_ERR_FORMAT, "%s: inconsistent HNSW header", path);
        goto done;
    }
    if (m.len != sizeof hd + body) {
        s = yan_fail(YAN_ERR_FORMAT, "%s: %s: %zu bytes, the header says %llu; rebuild the index", path,
                     m.len < sizeof hd + body ? "truncated" : "trailing bytes", m.len,
                     (unsigned long long)(sizeof hd + body));
        goto done;
    }
    {
        csum c;
        csum_init(&c);
        file_hdr z = hd;
        z.checksum = 0;
        csum_update(&c, &z, sizeof z);
        csum_update(&c, m.data + sizeof hd, (size_t)body);
        if (csum_final(&c) != hd.checksum) {
            s = yan_fail(YAN_ERR_FORMAT, "%s: checksum mismatch (the file is corrupt); rebuild the index", path);
            goto done;
        }
    }
    yan_hnsw_params p = yan_hnsw_params_default((int)hd.dim);
    p.metric = (yan_hnsw_metric)hd.metric;
    p.M = (int)hd.M;
    p.ef_construction = (int)hd.ef_construction;
    p.ef_search = (int)hd.ef_search;
    p.seed = hd.seed;
    p.capacity = (int64_t)hd.n;
    p.kernel = kernel;
    p.sq8 = (hd.flags & FLAG_SQ8) != 0;
    if ((hd.flags & ~(uint32_t)FLAG_SQ8) || hd.M0 != 2 * hd.M || hd.metric > YAN_HNSW_COS || hd.n_deleted > hd.n || hd.max_level > MAX_LEVEL) {
        s = yan_fail(YAN_ERR_FORMAT, "%s: HNSW parameters out of range", path);
        goto done;
    }
    if ((s = yan_hnsw_create(&p, &h))) {
        if (s == YAN_ERR_INVALID_ARG) s = YAN_ERR_FORMAT; /* a parameter out of range came from the file */
        yan_error_prefix(path);
        goto done;
    }
    const uint8_t *b = m.data + sizeof hd;
    size_t n = (size_t)hd.n, dim = hd.dim, l0 = (size_t)hd.M0, up = 0;
    if (!map_reserve(h, n) || !reserve_upper(h, (size_t)hd.upper_len)) {
        s = yan_fail(YAN_ERR_NOMEM, "%s: out of memory loading %zu nodes", path, n);
        goto done;
    }
    memcpy(h->ext, b, n * 8);
    b += n * 8;
    memcpy(h->level, b, n);
    memcpy(h->deleted, b + n, n);
    b += 2 * n + pad8(2 * n);
    for (size_t i = 0; i < n; i++) {
        if (h->level[i] > hd.max_level) {
            s = yan_fail(YAN_ERR_FORMAT, "%s: node %zu is on level %u, above the top level %u", path, i, h->level[i],
                         hd.max_level);
            goto done;
        }
        h->upper_off[i] = (uint32_t)up;
        up += (size_t)h->level[i] * (size_t)hd.M;
    }
    if (up != hd.upper_len) {
        s = yan_fail(YAN_ERR_FORMAT, "%s: the node levels need %zu upper-level words, the file has %llu", path, up,
                     (unsigned long long)hd.upper_len);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        float *v = node_vec(h, (uint32_t)i);
        memset(v, 0, h->vec_bytes);
        memcpy(v, b + i * dim * 4, dim * 4);
        if (hd.flags & FLAG_SQ8) q8_encode(h, v, (int8_t *)node_block(h, (uint32_t)i), (q8_meta *)(node_block(h, (uint32_t)i) + h->code_bytes));
    }
    b += n * dim * 4;
    for (size_t i = 0; i < n; i++) memcpy(node_links(h, (uint32_t)i, 0), b + i * l0 * 4, l0 * 4);
    b += n * l0 * 4;
    if (up) memcpy(h->upper, b, up * 4);
    h->upper_len = up;
    h->n = (uint32_t)n;
    h->n_deleted = (uint32_t)hd.n_deleted;
    h->entry = hd.entry;
    h->max_level = n ? (int)hd.max_level : -1;
    h->rng = hd.rng;
    h->stamp = hd.stamp;
    if ((s = validate(h, path))) goto done;
    *out = h;
    h = NULL;
done:
    yan_hnsw_free(h);
    yan_mmap_close(&m);
    return s;
}
