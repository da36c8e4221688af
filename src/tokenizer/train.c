/* train.c — learns a byte-level BPE vocabulary from text files and writes it
 * as a Hugging Face tokenizer.json.
 *
 * Pipeline:
 *  1. count: the files are mapped, cut into ~1 MiB chunks at points where the
 *     pre-tokenizer's pieces do not change (yan_pretok_safe_split), and every
 *     piece is counted into one hash map per thread slot; the maps are merged
 *     and the distinct words sorted by their bytes, so nothing that follows
 *     depends on the thread count;
 *  2. learn (yan_bpe_learn): the 256 bytes are the first tokens; the most
 *     frequent adjacent pair is merged, again and again. Pair counts are kept
 *     up to date incrementally: each pair keeps a list of the words it may
 *     occur in, and merging a pair only rewrites those words and adjusts the
 *     counts of their neighbouring pairs. A max-heap with lazy deletion picks
 *     the next pair;
 *  3. write: tokenizer.json (model BPE, GPT-2 byte alphabet, the reference
 *     regex of the pre-tokenizer in a Split step) through an atomic write;
 *     or, when the output path ends in ".gguf", GGUF tokenizer metadata
 *     (through yan_tok_write_gguf).
 *
 * Deliberately not done: normalisation, dropout, continuing-subword prefixes,
 * pieces longer than 64 KiB (whitespace runs, binary junk: skipped).
 * Depends on base (allocation, mmap, atomic write, parallel-for), json.h (the
 * string escaper), pretok (the splitters), tokenizer.c (yan_gpt2_byte, the
 * yan_tokenizer builder) and save_gguf.c (yan_tok_write_gguf). */
#include "tokenizer/train.h"

#include "base/json.h"
#include "tokenizer/pretok.h"
#include "tokenizer/tok.h"
#include "tokenizer/tok_gguf.h"

#include <assert.h>
#include <limits.h>
#include <stdlib.h>
#include <time.h>

#define TRAIN_CHUNK_DEFAULT ((size_t)1 << 20)
#define TRAIN_MAX_PIECE 65536u
#define TRAIN_DEFAULT_PRE "cl100k"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Grow *p (elements of elem bytes, capacity *cap) to hold need elements. */
static bool grow(void *pp, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 16, bytes;
    while (c < need) c *= 2;
    if (yan_mul_ovf(c, elem, &bytes)) return false;
    void **p = pp;
    void *q = yan_realloc(*p, bytes);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

/* =================================================================== learner */

typedef struct {
    int32_t a, b;     /* left, right token ids */
    int32_t head;     /* first node of the list of words it may occur in; -1 = none */
    int32_t rank;     /* merge rank once merged, else -1 */
    int32_t dirty;    /* step that last raised count (dedupes the push list) */
    int64_t count;    /* sum of word frequencies over occurrences */
    int64_t pushed;   /* value of the last heap entry pushed for it */
} bpe_pair;

typedef struct {
    int32_t word, next;
} bpe_node;

typedef struct {
    int64_t count;
    int32_t a, b, pid;
} bpe_heap_ent;

typedef struct {
    /* words: word w is sym[off[w] .. off[w] + len[w]) */
    size_t n_words;
    int32_t *sym;
    size_t *off;
    uint32_t *len;
    int64_t *freq;
    int32_t *stamp;   /* last step that rewrote the word */

    /* tokens */
    uint8_t *blob;
    size_t blob_len, blob_cap;
    size_t *tok_off;
    uint32_t *tok_len;
    size_t n_tok, cap_tok, cap_tok_len;
    int32_t *tok_ht;  /* open addressing over ids, -1 = empty */
    size_t tok_ht_cap;

    /* pairs */
    bpe_pair *pairs;
    size_t n_pairs, cap_pairs;
    int32_t *pair_ht;
    size_t pair_ht_cap;

    bpe_node *nodes;
    size_t n_nodes, cap_nodes;

    bpe_heap_ent *heap;
    size_t n_heap, cap_heap;

    int32_t *dirty;   /* pairs whose count rose in this step */
    size_t n_dirty, cap_dirty;

    int32_t *merges;  /* (n_merges, 3) */
    int64_t *mcount;
    size_t n_merges, cap_merges, cap_mcount;

    int32_t *scratch;
    size_t cap_scratch;
} bpe_ctx;

/* ---- token table (bytes -> id, to find merges that produce a known token) */

static uint64_t tok_hash(const uint8_t *p, size_t n) { return yan_hash_bytes(p, n, 0x7a3b); }

static bool tok_rehash(bpe_ctx *c, size_t cap) {
    int32_t *ht = yan_malloc(cap * sizeof *ht);
    if (!ht) return false;
    memset(ht, 0xff, cap * sizeof *ht);
    for (size_t id = 0; id < c->n_tok; id++) {
        size_t i = tok_hash(c->blob + c->tok_off[id], c->tok_len[id]) & (cap - 1);
        while (ht[i] >= 0) i = (i + 1) & (cap - 1);
        ht[i] = (int32_t)id;
    }
    yan_free(c->tok_ht);
    c->tok_ht = ht;
    c->tok_ht_cap = cap;
    return true;
}

static int32_t tok_find(const bpe_ctx *c, const uint8_t *p, size_t n) {
    size_t i = tok_hash(p, n) & (c->tok_ht_cap - 1);
    for (int32_t id; (id = c->tok_ht[i]) >= 0; i = (i + 1) & (c->tok_ht_cap - 1))
        if (c->tok_len[id] == n && memcmp(c->blob + c->tok_off[id], p, n) == 0) return id;
    return -1;
}

/* Id of the concatenation of tokens a and b, adding it when new (*is_new).
 * Returns -1 on OOM. */
static int32_t tok_concat(bpe_ctx *c, int32_t a, int32_t b, bool *is_new) {
    size_t la = c->tok_len[a], lb = c->tok_len[b], n = la + lb;
    if (n > UINT32_MAX || !grow(&c->blob, &c->blob_cap, c->blob_len + n, 1)) return -1;
    uint8_t *dst = c->blob + c->blob_len;
    memcpy(dst, c->blob + c->tok_off[a], la);
    memcpy(dst + la, c->blob + c->tok_off[b], lb);
    int32_t id = tok_find(c, dst, n);
    *is_new = id < 0;
    if (id >= 0) return id;
    if (c->n_tok >= INT32_MAX) return -1;
    if (!grow(&c->tok_off, &c->cap_tok, c->n_tok + 1, sizeof *c->tok_off) ||
        !grow(&c->tok_len, &c->cap_tok_len, c->n_tok + 1, sizeof *c->tok_len))
        return -1;
    if ((c->n_tok + 1) * 2 > c->tok_ht_cap && !tok_rehash(c, c->tok_ht_cap * 2)) return -1;
    id = (int32_t)c->n_tok++;
    c->tok_off[id] = c->blob_len;
    c->tok_len[id] = (uint32_t)n;
    c->blob_len += n;
    size_t i = tok_hash(dst, n) & (c->tok_ht_cap - 1);
    while (c->tok_ht[i] >= 0) i = (i + 1) & (c->tok_ht_cap - 1);
    c->tok_ht[i] = id;
    return id;
}

/* ---- pair table */

static uint64_t pair_hash(int32_t a, int32_t b) {
    return yan_hash_u64(((uint64_t)(uint32_t)a << 32) | (uint32_t)b);
}

static bool pair_rehash(bpe_ctx *c, size_t cap) {
    int32_t *ht = yan_malloc(cap * sizeof *ht);
    if (!ht) return false;
    memset(ht, 0xff, cap * sizeof *ht);
    for (size_t pid = 0; pid < c->n_pairs; pid++) {
        size_t i = pair_hash(c->pairs[pid].a, c->pairs[pid].b) & (cap - 1);
        while (ht[i] >= 0) i = (i + 1) & (cap - 1);
        ht[i] = (int32_t)pid;
    }
    yan_free(c->pair_ht);
    c->pair_ht = ht;
    c->pair_ht_cap = cap;
    return true;
}

static int32_t pair_find(const bpe_ctx *c, int32_t a, int32_t b) {
    size_t i = pair_hash(a, b) & (c->pair_ht_cap - 1);
    for (int32_t pid; (pid = c->pair_ht[i]) >= 0; i = (i + 1) & (c->pair_ht_cap - 1))
        if (c->pairs[pid].a == a && c->pairs[pid].b == b) return pid;
    return -1;
}

/* Id of pair (a, b), created with count 0 when absent; -1 on OOM. */
static int32_t pair_get(bpe_ctx *c, int32_t a, int32_t b) {
    size_t i = pair_hash(a, b) & (c->pair_ht_cap - 1);
    for (int32_t pid; (pid = c->pair_ht[i]) >= 0; i = (i + 1) & (c->pair_ht_cap - 1))
        if (c->pairs[pid].a == a && c->pairs[pid].b == b) return pid;
    if (c->n_pairs >= INT32_MAX || !grow(&c->pairs, &c->cap_pairs, c->n_pairs + 1, sizeof *c->pairs))
        return -1;
    int32_t pid = (int32_t)c->n_pairs++;
    c->pairs[pid] = (bpe_pair){a, b, -1, -1, 0, 0, 0};
    if (c->n_pairs * 2 > c->pair_ht_cap) {
        if (!pair_rehash(c, c->pair_ht_cap * 2)) {
            c->n_pairs--;
            return -1;
        }
    } else {
        c->pair_ht[i] = pid;
    }
    return pid;
}

/* Record that word w may contain pair pid (skipped when it is already the
 * list's head, which catches repeats within one word). */
static bool pair_note_word(bpe_ctx *c, int32_t pid, int32_t w) {
    int32_t h = c->pairs[pid].head;
    if (h >= 0 && c->nodes[h].word == w) return true;
    if (c->n_nodes >= INT32_MAX || !grow(&c->nodes, &c->cap_nodes, c->n_nodes + 1, sizeof *c->nodes))
        return false;
    c->nodes[c->n_nodes] = (bpe_node){w, h};
    c->pairs[pid].head = (int32_t)c->n_nodes++;
    return true;
}

/* ---- heap: largest count first, ties to the smaller (a, b) */

static bool heap_better(const bpe_heap_ent *x, const bpe_heap_ent *y) {
    if (x->count != y->count) return x->count > y->count;
    if (x->a != y->a) return x->a < y->a;
    return x->b < y->b;
}

static bool heap_push(bpe_ctx *c, int32_t pid) {
    if (!grow(&c->heap, &c->cap_heap, c->n_heap + 1, sizeof *c->heap)) return false;
    bpe_pair *p = &c->pairs[pid];
    bpe_heap_ent e = {p->count, p->a, p->b, pid};
    p->pushed = p->count;
    size_t i = c->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_better(&e, &c->heap[parent])) break;
        c->heap[i] = c->heap[parent];
        i = parent;
    }
    c->heap[i] = e;
    return true;
}

static bpe_heap_ent heap_pop(bpe_ctx *c) {
    bpe_heap_ent top = c->heap[0], e = c->heap[--c->n_heap];
    size_t i = 0, n = c->n_heap;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const bpe_heap_ent *best = &e;
        if (l < n && heap_better(&c->heap[l], best)) { m = l; best = &c->heap[l]; }
        if (r < n && heap_better(&c->heap[r], best)) m = r;
        if (m == i) break;
        c->heap[i] = c->heap[m];
        i = m;
    }
    if (n) c->heap[i] = e;
    return top;
}

/* ---- count updates during a merge step */

static void pair_dec(bpe_ctx *c, int32_t a, int32_t b, int64_t f) {
    int32_t pid = pair_find(c, a, b);
    YAN_ASSERT(pid >= 0);
    c->pairs[pid].count -= f;
    YAN_ASSERT(c->pairs[pid].count >= 0);
}

static bool pair_inc(bpe_ctx *c, int32_t a, int32_t b, int64_t f, int32_t w, int32_t step) {
    int32_t pid = pair_get(c, a, b);
    if (pid < 0) return false;
    c->pairs[pid].count += f;
    if (c->pairs[pid].dirty != step) {
        if (!grow(&c->dirty, &c->cap_dirty, c->n_dirty + 1, sizeof *c->dirty)) return false;
        c->pairs[pid].dirty = step;
        c->dirty[c->n_dirty++] = pid;
    }
    return pair_note_word(c, pid, w);
}

/* The hot loop: rewrite every (a, b) in word w as x, left to right, and move
 * the counts of the neighbouring pairs. Used when x is a brand-new token, so
 * no earlier merge can apply to the pairs it forms. */
static bool word_merge_fast(bpe_ctx *c, int32_t w, int32_t a, int32_t b, int32_t x, int32_t step) {
    int32_t *s = c->sym + c->off[w];
    uint32_t n = c->len[w], o = 0, i = 0;
    int64_t f = c->freq[w];
    while (i < n) {
        if (i + 1 < n && s[i] == a && s[i + 1] == b) {
            if (o > 0) {
                pair_dec(c, s[o - 1], a, f);
                if (!pair_inc(c, s[o - 1], x, f, w, step)) return false;
            }
            if (i + 2 < n) {
                pair_dec(c, b, s[i + 2], f);
                if (!pair_inc(c, x, s[i + 2], f, w, step)) return false;
            }
            pair_dec(c, a, b, f);
            s[o++] = x;
            i += 2;
        } else {
            s[o++] = s[i++];
        }
    }
    c->len[w] = o;
    return true;
}

/* General rewrite of word w after merge `rank`, used when that merge produced
 * a token that already existed: earlier merges may then apply again, so this
 * runs the encoder itself (lowest rank first, leftmost on ties, ranks <= rank)
 * and recounts the word's pairs. Rare, so simplicity wins over speed. */
static bool word_merge_slow(bpe_ctx *c, int32_t w, int32_t rank, int32_t step) {
    int32_t *s = c->sym + c->off[w];
    uint32_t n = c->len[w];
    int64_t f = c->freq[w];
    for (uint32_t i = 0; i + 1 < n; i++) pair_dec(c, s[i], s[i + 1], f);
    for (;;) {
        int32_t best_rank = INT32_MAX;
        uint32_t best = 0;
        for (uint32_t i = 0; i + 1 < n; i++) {
            int32_t pid = pair_find(c, s[i], s[i + 1]);
            if (pid < 0) continue;
            int32_t r = c->pairs[pid].rank;
            if (r >= 0 && r <= rank && r < best_rank) {
                best_rank = r;
                best = i;
            }
        }
        if (best_rank == INT32_MAX) break;
        s[best] = c->merges[3 * (size_t)best_rank + 2];
        memmove(s + best + 1, s + best + 2, (n - best - 2) * sizeof *s);
        n--;
    }
    c->len[w] = n;
    for (uint32_t i = 0; i + 1 < n; i++)
        if (!pair_inc(c, s[i], s[i + 1], f, w, step)) return false;
    return true;
}

static void bpe_ctx_free(bpe_ctx *c) {
    yan_free(c->sym);
    yan_free(c->off);
    yan_free(c->len);
    yan_free(c->freq);
    yan_free(c->stamp);
    yan_free(c->blob);
    yan_free(c->tok_off);
    yan_free(c->tok_len);
    yan_free(c->tok_ht);
    yan_free(c->pairs);
    yan_free(c->pair_ht);
    yan_free(c->nodes);
    yan_free(c->heap);
    yan_free(c->dirty);
    yan_free(c->merges);
    yan_free(c->mcount);
    yan_free(c->scratch);
    memset(c, 0, sizeof *c);
}

void yan_bpe_free(yan_bpe *b) {
    if (!b) return;
    yan_free(b->blob);
    yan_free(b->tok_off);
    yan_free(b->tok_len);
    yan_free(b->merges);
    yan_free(b->merge_count);
    yan_free(b->seg);
    yan_free(b->seg_off);
    yan_free(b->seg_len);
    memset(b, 0, sizeof *b);
}

static yan_status bpe_init(bpe_ctx *c, const uint8_t *const *words, const uint32_t *lens,
                           const uint64_t *freqs, size_t n_words) {
    size_t total = 0;
    for (size_t w = 0; w < n_words; w++)
        if (yan_add_ovf(total, lens[w], &total)) return YAN_ERR_NOMEM;
    if (n_words > INT32_MAX) return yan_fail(YAN_ERR_INVALID_ARG, "BPE: too many distinct words (%zu)", n_words);
    c->n_words = n_words;
    c->sym = yan_malloc((total ? total : 1) * sizeof *c->sym);
    c->off = yan_malloc((n_words ? n_words : 1) * sizeof *c->off);
    c->len = yan_malloc((n_words ? n_words : 1) * sizeof *c->len);
    c->freq = yan_malloc((n_words ? n_words : 1) * sizeof *c->freq);
    c->stamp = yan_calloc(n_words ? n_words : 1, sizeof *c->stamp);
    if (!c->sym || !c->off || !c->len || !c->freq || !c->stamp) return YAN_ERR_NOMEM;
    size_t o = 0;
    for (size_t w = 0; w < n_words; w++) {
        c->off[w] = o;
        c->len[w] = lens[w];
        c->freq[w] = freqs[w] > (uint64_t)INT64_MAX / 4 ? INT64_MAX / 4 : (int64_t)freqs[w];
        for (uint32_t i = 0; i < lens[w]; i++) c->sym[o + i] = words[w][i];
        o += lens[w];
    }
    /* the 256 byte tokens */
    if (!grow(&c->blob, &c->blob_cap, 4096, 1) || !grow(&c->tok_off, &c->cap_tok, 1024, sizeof *c->tok_off) ||
        !grow(&c->tok_len, &c->cap_tok_len, 1024, sizeof *c->tok_len))
        return YAN_ERR_NOMEM;
    for (int i = 0; i < 256; i++) {
        c->blob[i] = (uint8_t)i;
        c->tok_off[i] = (size_t)i;
        c->tok_len[i] = 1;
    }
    c->blob_len = 256;
    c->n_tok = 256;
    if (!tok_rehash(c, 1024)) return YAN_ERR_NOMEM;
    if (!pair_rehash(c, 4096)) return YAN_ERR_NOMEM;
    /* initial pair counts and word lists */
    for (size_t w = 0; w < n_words; w++) {
        const int32_t *s = c->sym + c->off[w];
        for (uint32_t i = 0; i + 1 < c->len[w]; i++) {
            int32_t pid = pair_get(c, s[i], s[i + 1]);
            if (pid < 0 || !pair_note_word(c, pid, (int32_t)w)) return YAN_ERR_NOMEM;
            c->pairs[pid].count += c->freq[w];
        }
    }
    for (size_t pid = 0; pid < c->n_pairs; pid++)
        if (c->pairs[pid].count > 0 && !heap_push(c, (int32_t)pid)) return YAN_ERR_NOMEM;
    return YAN_OK;
}

/* Pop until a valid entry: one whose value is its pair's current count.
 * Invariant: every live pair has an entry whose value is `pushed` >= count.
 * Returns the pair id or -1 when no pair is left. */
static int32_t bpe_next_pair(bpe_ctx *c, bool *oom) {
    while (c->n_heap) {
        bpe_heap_ent e = heap_pop(c);
        bpe_pair *p = &c->pairs[e.pid];
        if (p->rank >= 0 || p->count <= 0) continue;
        if (e.count == p->count) return e.pid;
        if (e.count == p->pushed && p->count < e.count && !heap_push(c, e.pid)) {
            *oom = true;
            return -1;
        }
    }
    return -1;
}

yan_status yan_bpe_learn(const uint8_t *const *words, const uint32_t *lens, const uint64_t *freqs,
                         size_t n_words, int32_t max_tok, int64_t min_freq,
                         yan_progress_fn progress, void *progress_ud, float p0, float p1,
                         yan_bpe *out) {
    memset(out, 0, sizeof *out);
    if (max_tok < 256) return yan_fail(YAN_ERR_INVALID_ARG, "BPE: vocabulary of %d is below the 256 byte tokens", (int)max_tok);
    if (min_freq < 1) min_freq = 1;
    bpe_ctx c;
    memset(&c, 0, sizeof c);
    yan_status s = bpe_init(&c, words, lens, freqs, n_words);
    if (s == YAN_ERR_NOMEM) s = yan_fail(YAN_ERR_NOMEM, "BPE: out of memory preparing %zu words", n_words);
    bool oom = false;
    int32_t step = 0;
    size_t span = (size_t)max_tok - 256;
    while (s == YAN_OK && c.n_tok < (size_t)max_tok) {
        int32_t pid = bpe_next_pair(&c, &oom);
        if (pid < 0 || c.pairs[pid].count < min_freq) break;
        int32_t a = c.pairs[pid].a, b = c.pairs[pid].b;
        int64_t cnt = c.pairs[pid].count;
        bool is_new = false;
        int32_t x = tok_concat(&c, a, b, &is_new);
        if (x < 0 || c.n_merges >= INT32_MAX ||
            !grow(&c.merges, &c.cap_merges, 3 * (c.n_merges + 1), sizeof *c.merges) ||
            !grow(&c.mcount, &c.cap_mcount, c.n_merges + 1, sizeof *c.mcount)) {
            oom = true;
            break;
        }
        int32_t rank = (int32_t)c.n_merges++;
        c.merges[3 * (size_t)rank] = a;
        c.merges[3 * (size_t)rank + 1] = b;
        c.merges[3 * (size_t)rank + 2] = x;
        c.mcount[rank] = cnt;
        c.pairs[pid].rank = rank;
        step = rank + 1;
        c.n_dirty = 0;
        for (int32_t nd = c.pairs[pid].head; nd >= 0 && !oom; nd = c.nodes[nd].next) {
            int32_t w = c.nodes[nd].word;
            if (c.stamp[w] == step) continue;
            c.stamp[w] = step;
            oom = is_new ? !word_merge_fast(&c, w, a, b, x, step) : !word_merge_slow(&c, w, rank, step);
        }
        if (oom) break;
        YAN_ASSERT(c.pairs[pid].count == 0);
        c.pairs[pid].head = -1;
        for (size_t i = 0; i < c.n_dirty && !oom; i++) {
            bpe_pair *p = &c.pairs[c.dirty[i]];
            if (p->count > p->pushed) oom = !heap_push(&c, c.dirty[i]);
        }
        if (progress && (rank & 63) == 0 &&
            !progress(p0 + (p1 - p0) * (float)((double)(c.n_tok - 256) / (double)(span ? span : 1)), progress_ud))
            s = yan_fail(YAN_ERR_ABORTED, "tokenizer training aborted by the progress callback");
    }
    if (s == YAN_OK && oom) s = yan_fail(YAN_ERR_NOMEM, "BPE: out of memory after %zu merges", c.n_merges);
    if (s != YAN_OK) {
        bpe_ctx_free(&c);
        return s;
    }
    out->n_tok = (int32_t)c.n_tok;
    out->blob = c.blob;
    out->tok_off = c.tok_off;
    out->tok_len = c.tok_len;
    out->n_merges = c.n_merges;
    out->merges = c.merges;
    out->merge_count = c.mcount;
    out->n_words = c.n_words;
    out->seg = c.sym;
    out->seg_off = c.off;
    out->seg_len = c.len;
    c.blob = NULL;
    c.tok_off = NULL;
    c.tok_len = NULL;
    c.merges = NULL;
    c.mcount = NULL;
    c.sym = NULL;
    c.off = NULL;
    c.len = NULL;
    bpe_ctx_free(&c);
    return YAN_OK;
}

/* =================================================================== counting */

typedef struct {
    const uint8_t *p; /* points into a file mapping */
    uint32_t len;
    uint32_t hash;
    uint64_t count;
} wc_ent;

typedef struct {
    wc_ent *e;
    size_t cap, n;
    bool oom;
    uint64_t pieces, bytes, skipped;
} wc_map;

static uint32_t wc_hash(const uint8_t *p, size_t n) { return (uint32_t)yan_hash_bytes(p, n, 0x5eed); }

static bool wc_resize(wc_map *m, size_t cap) {
    wc_ent *e = yan_calloc(cap, sizeof *e);
    if (!e) return false;
    for (size_t j = 0; j < m->cap; j++) {
        if (!m->e[j].p) continue;
        size_t i = m->e[j].hash & (cap - 1);
        while (e[i].p) i = (i + 1) & (cap - 1);
        e[i] = m->e[j];
    }
    yan_free(m->e);
    m->e = e;
    m->cap = cap;
    return true;
}

static bool wc_add(wc_map *m, const uint8_t *p, uint32_t len, uint32_t h, uint64_t count) {
    if ((m->n + 1) * 2 > m->cap && !wc_resize(m, m->cap ? m->cap * 2 : 4096)) return false;
    size_t i = h & (m->cap - 1);
    for (; m->e[i].p; i = (i + 1) & (m->cap - 1)) {
        wc_ent *e = &m->e[i];
        if (e->hash == h && e->len == len && memcmp(e->p, p, len) == 0) {
            e->count += count;
            return true;
        }
    }
    m->e[i] = (wc_ent){p, len, h, count};
    m->n++;
    return true;
}

typedef struct {
    const uint8_t *p;
    size_t n;
} train_chunk;

typedef struct {
    int pre;
    const train_chunk *chunks;
    size_t first, count; /* this batch */
    int n_slots;
    wc_map *maps;        /* (n_slots) */
} count_job;

/* Thread slot `slot` counts chunks first+slot, first+slot+n_slots, ... */
static void count_task(void *ud, int slot) {
    count_job *j = ud;
    /* work on a copy: the slots sit side by side, so updating them in place
     * would bounce one cache line between the threads */
    wc_map m = j->maps[slot];
    for (size_t k = j->first + (size_t)slot; k < j->first + j->count && !m.oom; k += (size_t)j->n_slots) {
        const uint8_t *s = j->chunks[k].p;
        size_t n = j->chunks[k].n, pos = 0;
        while (pos < n) {
            size_t end = yan_pretok_next(j->pre, s, n, pos);
            if (end <= pos || end > n) end = pos + 1; /* defensive: always progress */
            size_t len = end - pos;
            m.pieces++;
            m.bytes += len;
            if (len > TRAIN_MAX_PIECE) {
                m.skipped += len;
            } else if (!wc_add(&m, s + pos, (uint32_t)len, wc_hash(s + pos, len), 1)) {
                m.oom = true;
                break;
            }
            pos = end;
        }
    }
    j->maps[slot] = m;
}

static int wc_cmp(const void *x, const void *y) {
    const wc_ent *a = x, *b = y;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->p, b->p, n);
    if (c) return c;
    return (a->len > b->len) - (a->len < b->len);
}

/* =================================================================== writing */

static const char *const k_pre_regex[] = {
    /* YAN_PRE_GPT2 */
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
    /* YAN_PRE_CL100K */
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    /* YAN_PRE_O200K */
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    /* YAN_PRE_QWEN2 */
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};
static_assert(sizeof k_pre_regex / sizeof k_pre_regex[0] == YAN_PRE_COUNT, "one regex per pre-tokenizer");

static void put_str(yan_buf *b, const char *s, size_t n) { yan_json_write_string(b, s, n); }

/* Token id's text in the GPT-2 byte alphabet (tmp holds 2 * longest token). */
static size_t tok_text(const yan_bpe *m, int32_t id, char *tmp) {
    return yan_gpt2_byte(m->blob + m->tok_off[id], m->tok_len[id], tmp);
}

/* Builds tokenizer.json into b. Fails (YAN_ERR_INVALID_ARG) when a special
 * token's text equals a learned token's text, which tokenizer.json cannot
 * express (the vocab is a map from text to id). */
static yan_status write_json(yan_buf *b, const yan_bpe *m, int pre, const char *const *special, int n_special) {
    uint32_t maxlen = 1;
    for (int32_t id = 0; id < m->n_tok; id++)
        if (m->tok_len[id] > maxlen) maxlen = m->tok_len[id];
    char *tmp = yan_malloc(2 * (size_t)maxlen + 1), *tmp2 = yan_malloc(2 * (size_t)maxlen + 1);
    if (!tmp || !tmp2) {
        yan_free(tmp);
        yan_free(tmp2);
        return yan_fail(YAN_ERR_NOMEM, "tokenizer.json: out of memory");
    }
    yan_status s = YAN_OK;
    yan_buf_puts(b, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [");
    for (int i = 0; i < n_special; i++) {
        yan_buf_printf(b, "%s\n    {\"id\": %d, \"content\": ", i ? "," : "", (int)m->n_tok + i);
        put_str(b, special[i], strlen(special[i]));
        yan_buf_puts(b, ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, "
                        "\"normalized\": false, \"special\": true}");
    }
    yan_buf_puts(b, n_special ? "\n  ],\n" : "],\n");
    yan_buf_puts(b, "  \"normalizer\": null,\n  \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [\n"
                    "    {\"type\": \"Split\", \"pattern\": {\"Regex\": ");
    put_str(b, k_pre_regex[pre], strlen(k_pre_regex[pre]));
    yan_buf_puts(b, "}, \"behavior\": \"Isolated\", \"invert\": false},\n"
                    "    {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false}\n"
                    "  ]},\n  \"post_processor\": null,\n"
                    "  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false},\n"
                    "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n"
                    "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n"
                    "    \"fuse_unk\": false,\n    \"byte_fallback\": false,\n    \"ignore_merges\": false,\n"
                    "    \"vocab\": {");
    for (int32_t id = 0; id < m->n_tok && s == YAN_OK; id++) {
        size_t n = tok_text(m, id, tmp);
        for (int i = 0; i < n_special; i++)
            if (strlen(special[i]) == n && memcmp(special[i], tmp, n) == 0)
                s = yan_fail(YAN_ERR_INVALID_ARG, "special token \"%s\" is also a learned token; pick a text that cannot occur in the corpus (e.g. <|name|>)", special[i]);
        yan_buf_puts(b, id ? ",\n      " : "\n      ");
        put_str(b, tmp, n);
        yan_buf_printf(b, ": %d", (int)id);
    }
    for (int i = 0; i < n_special; i++) {
        yan_buf_puts(b, ",\n      ");
        put_str(b, special[i], strlen(special[i]));
        yan_buf_printf(b, ": %d", (int)m->n_tok + i);
    }
    yan_buf_puts(b, "\n    },\n    \"merges\": [");
    for (size_t r = 0; r < m->n_merges; r++) {
        size_t na = tok_text(m, m->merges[3 * r], tmp), nb = tok_text(m, m->merges[3 * r + 1], tmp2);
        yan_buf_puts(b, r ? ",\n      [" : "\n      [");
        put_str(b, tmp, na);
        yan_buf_puts(b, ", ");
        put_str(b, tmp2, nb);
        yan_buf_putc(b, ']');
    }
    yan_buf_puts(b, m->n_merges ? "\n    ]\n  }\n}\n" : "]\n  }\n}\n");
    yan_free(tmp);
    yan_free(tmp2);
    if (s == YAN_OK && b->oom) s = yan_fail(YAN_ERR_NOMEM, "tokenizer.json: out of memory");
    return s;
}

/* Well-known special-token texts and the role they get in GGUF metadata. */
static int special_role(const char *text) {
    static const struct { const char *text; int role; } k[] = {
        {"<|endoftext|>", YAN_SPECIAL_EOS}, {"</s>", YAN_SPECIAL_EOS}, {"<|end_of_text|>", YAN_SPECIAL_EOS},
        {"<s>", YAN_SPECIAL_BOS}, {"<|begin_of_text|>", YAN_SPECIAL_BOS}, {"<|im_end|>", YAN_SPECIAL_EOT},
        {"<|eot_id|>", YAN_SPECIAL_EOT}, {"<unk>", YAN_SPECIAL_UNK}, {"<pad>", YAN_SPECIAL_PAD},
        {"<|pad|>", YAN_SPECIAL_PAD}, {"<mask>", YAN_SPECIAL_MASK},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (strcmp(text, k[i].text) == 0) return k[i].role;
    return -1;
}

/* Builds a yan_tokenizer from the learned model and writes it as GGUF
 * tokenizer metadata (tokenizer.ggml.model "gpt2"). Specials are CONTROL
 * tokens; well-known texts (<|endoftext|>, <s>, </s>, ...) also set the
 * matching special-token id. */
static yan_status write_gguf(const yan_bpe *m, int pre, const char *const *special, int n_special,
                             const char *path) {
    yan_tokenizer t;
    yan_tok_init(&t);
    t.kind = YAN_TOK_BPE;
    t.pre = pre;
    t.merge_mode = YAN_MERGE_PAIRS;
    t.path = yan_strdup(path);
    yan_status s = t.path ? YAN_OK : yan_fail(YAN_ERR_NOMEM, "%s: out of memory", path);
    for (int32_t id = 0; id < m->n_tok && s == YAN_OK; id++)
        s = yan_tok_set(&t, id, m->blob + m->tok_off[id], m->tok_len[id], YAN_TT_NORMAL, 0.0f);
    for (int i = 0; i < n_special && s == YAN_OK; i++) {
        int32_t id = m->n_tok + i;
        s = yan_tok_set(&t, id, special[i], strlen(special[i]), YAN_TT_CONTROL, 0.0f);
        int role = special_role(special[i]);
        if (role >= 0 && t.special[role] < 0) t.special[role] = id;
    }
    for (size_t r = 0; r < m->n_merges && s == YAN_OK; r++)
        s = yan_tok_add_merge(&t, m->merges[3 * r], m->merges[3 * r + 1]);
    if (s == YAN_OK) s = yan_tok_finalize(&t);
    if (s == YAN_OK) s = yan_tok_write_gguf(&t, path);
    yan_tok_release(&t);
    return s;
}

/* =================================================================== public */

yan_train_tokenizer_params yan_train_tokenizer_params_default(void) {
    yan_train_tokenizer_params p;
    memset(&p, 0, sizeof p);
    p.vocab_size = 32000;
    p.pre = NULL;
    p.min_frequency = 0;
    return p;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static bool valid_utf8(const char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        int32_t cp;
        int k = yan_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        if (cp < 0) return false;
        i += (size_t)k;
    }
    return true;
}

static yan_status check_params(const char *const *files, int n_files, const yan_train_tokenizer_params *p,
                               const char *out_path, int *pre) {
    if (!p) return yan_fail(YAN_ERR_INVALID_ARG, "tokenizer train: no parameters");
    if (!out_path || !*out_path) return yan_fail(YAN_ERR_INVALID_ARG, "tokenizer train: no output path");
    if (!files || n_files <= 0) return yan_fail(YAN_ERR_INVALID_ARG, "tokenizer train: no input files");
    for (int i = 0; i < n_files; i++)
        if (!files[i]) return yan_fail(YAN_ERR_INVALID_ARG, "tokenizer train: input file %d is NULL", i);
    const char *name = p->pre ? p->pre : TRAIN_DEFAULT_PRE;
    *pre = yan_pre_from_name(name);
    if (*pre < 0 || *pre >= YAN_PRE_COUNT)
        return yan_fail(YAN_ERR_UNSUPPORTED, "tokenizer train: unknown pre-tokenizer \"%s\" (known: %s)", name, yan_pre_names());
    if (p->n_special < 0 || (p->n_special > 0 && !p->special))
        return yan_fail(YAN_ERR_INVALID_ARG, "tokenizer train: bad special token list");
    for (int i = 0; i < p->n_special; i++) {
        const char *t = p->special[i];
        if (!t || !*t) return yan_fail(YAN_ERR_INVALID_ARG, "tokenizer train: special token %d is empty", i);
        if (!valid_utf8(t)) return yan_fail(YAN_ERR_INVALID_ARG, "tokenizer train: special token %d is not valid UTF-8", i);
        for (int j = 0; j < i; j++)
            if (strcmp(t, p->special[j]) == 0)
                return yan_fail(YAN_ERR_INVALID_ARG, "tokenizer train: special token \"%s\" given twice", t);
    }
    if ((int64_t)p->vocab_size < 256 + (int64_t)p->n_special)
        return yan_fail(YAN_ERR_INVALID_ARG, "tokenizer train: vocab_size %d is below 256 byte tokens + %d special tokens",
                        (int)p->vocab_size, p->n_special);
    if (p->min_frequency < 0)
        return yan_fail(YAN_ERR_INVALID_ARG, "tokenizer train: min_frequency %d is negative", (int)p->min_frequency);
    return YAN_OK;
}

/* Reads, pre-tokenizes and counts the corpus into a sorted word table
 * (*ents, *n_ents; entries point into maps[]). */
static yan_status count_corpus(const char *const *files, int n_files, int pre, int n_threads, size_t chunk_bytes,
                               const yan_mmap *maps, const yan_train_tokenizer_params *p,
                               wc_ent **ents_out, size_t *n_ents_out, yan_train_stats *st) {
    *ents_out = NULL;
    *n_ents_out = 0;
    train_chunk *chunks = NULL;
    size_t n_chunks = 0, cap_chunks = 0;
    uint64_t total = 0;
    yan_status s = YAN_OK;
    for (int f = 0; f < n_files; f++) {
        const uint8_t *d = maps[f].data;
        size_t n = maps[f].len, pos = 0;
        total += n;
        while (pos < n) {
            size_t end = n - pos <= chunk_bytes ? n : yan_pretok_safe_split(pre, d, n, pos + chunk_bytes);
            if (end <= pos || end > n) end = n;
            if (!grow(&chunks, &cap_chunks, n_chunks + 1, sizeof *chunks)) {
                yan_free(chunks);
                return yan_fail(YAN_ERR_NOMEM, "%s: out of memory splitting the corpus", files[f]);
            }
            chunks[n_chunks++] = (train_chunk){d + pos, end - pos};
            pos = end;
        }
    }
    int n_slots = n_threads;
    wc_map *slot = yan_calloc((size_t)n_slots, sizeof *slot);
    if (!slot) {
        yan_free(chunks);
        return yan_fail(YAN_ERR_NOMEM, "tokenizer train: out of memory");
    }
    count_job job = {pre, chunks, 0, 0, n_slots, slot};
    size_t batch = (size_t)n_slots * 4;
    uint64_t done = 0;
    for (size_t first = 0; first < n_chunks && s == YAN_OK; first += batch) {
        job.first = first;
        job.count = n_chunks - first < batch ? n_chunks - first : batch;
        yan_parallel_for(n_slots, n_slots, count_task, &job);
        for (size_t k = first; k < first + job.count; k++) done += chunks[k].n;
        for (int i = 0; i < n_slots; i++)
            if (slot[i].oom) s = yan_fail(YAN_ERR_NOMEM, "tokenizer train: out of memory counting words");
        if (s == YAN_OK && p->progress && !p->progress(0.15f * (float)((double)done / (double)(total ? total : 1)), p->progress_ud))
            s = yan_fail(YAN_ERR_ABORTED, "tokenizer training aborted by the progress callback");
    }
    /* merge the slot maps */
    wc_map all = {0};
    for (int i = 0; i < n_slots; i++) {
        st->n_pieces += slot[i].pieces;
        st->n_bytes += slot[i].bytes;
        st->n_skipped += slot[i].skipped;
        for (size_t j = 0; j < slot[i].cap && s == YAN_OK; j++) {
            const wc_ent *e = &slot[i].e[j];
            if (e->p && !wc_add(&all, e->p, e->len, e->hash, e->count))
                s = yan_fail(YAN_ERR_NOMEM, "tokenizer train: out of memory merging word counts");
        }
        yan_free(slot[i].e);
    }
    yan_free(slot);
    yan_free(chunks);
    if (s != YAN_OK) {
        yan_free(all.e);
        return s;
    }
    /* compact and sort by bytes */
    size_t n = 0;
    for (size_t j = 0; j < all.cap; j++)
        if (all.e[j].p) all.e[n++] = all.e[j];
    if (n) qsort(all.e, n, sizeof *all.e, wc_cmp);
    *ents_out = all.e;
    *n_ents_out = n;
    return YAN_OK;
}

yan_status yan_tokenizer_train_ex(const char *const *files, int n_files,
                                  const yan_train_tokenizer_params *p, const char *out_path,
                                  const yan_train_opts *opts, yan_train_stats *stats) {
    double t0 = now_s();
    yan_train_stats st;
    memset(&st, 0, sizeof st);
    if (stats) *stats = st;
    int pre = 0;
    yan_status s = check_params(files, n_files, p, out_path, &pre);
    if (s) return s;
    size_t chunk_bytes = opts && opts->chunk_bytes ? opts->chunk_bytes : TRAIN_CHUNK_DEFAULT;
    int n_threads = yan_threads_resolve(p->n_threads);
    bool gguf = ends_with(out_path, ".gguf");

    yan_mmap *maps = yan_calloc((size_t)n_files, sizeof *maps);
    if (!maps) return yan_fail(YAN_ERR_NOMEM, "tokenizer train: out of memory");
    wc_ent *ents = NULL;
    size_t n_ents = 0;
    const uint8_t **wp = NULL;
    uint32_t *wl = NULL;
    uint64_t *wf = NULL;
    yan_bpe bpe;
    memset(&bpe, 0, sizeof bpe);
    yan_buf json = {0};

    for (int f = 0; f < n_files && s == YAN_OK; f++) s = yan_mmap_open(files[f], &maps[f]);
    if (s == YAN_OK) s = count_corpus(files, n_files, pre, n_threads, chunk_bytes, maps, p, &ents, &n_ents, &st);
    double t1 = now_s();
    st.seconds_count = t1 - t0;

    /* the learner gets the words of two bytes or more */
    size_t n_w = 0;
    if (s == YAN_OK) {
        wp = yan_malloc((n_ents ? n_ents : 1) * sizeof *wp);
        wl = yan_malloc((n_ents ? n_ents : 1) * sizeof *wl);
        wf = yan_malloc((n_ents ? n_ents : 1) * sizeof *wf);
        if (!wp || !wl || !wf) s = yan_fail(YAN_ERR_NOMEM, "tokenizer train: out of memory");
    }
    if (s == YAN_OK) {
        for (size_t i = 0; i < n_ents; i++) {
            if (ents[i].len < 2) {
                st.n_tokens += ents[i].count;
                continue;
            }
            wp[n_w] = ents[i].p;
            wl[n_w] = ents[i].len;
            wf[n_w] = ents[i].count;
            n_w++;
        }
        int64_t min_freq = p->min_frequency > 0 ? p->min_frequency : 2;
        s = yan_bpe_learn(wp, wl, wf, n_w, p->vocab_size - p->n_special, min_freq, p->progress,
                          p->progress_ud, 0.15f, 0.98f, &bpe);
    }
    double t2 = now_s();
    st.seconds_learn = t2 - t1;
    if (s == YAN_OK) {
        for (size_t w = 0; w < bpe.n_words; w++) st.n_tokens += wf[w] * bpe.seg_len[w];
        st.n_words = n_ents;
        st.n_learned = bpe.n_tok - 256;
        st.n_merges = bpe.n_merges;
        st.n_vocab = bpe.n_tok + p->n_special;
        if (!gguf) s = write_json(&json, &bpe, pre, p->special, p->n_special);
    }
    if (s == YAN_OK && p->progress && !p->progress(0.99f, p->progress_ud))
        s = yan_fail(YAN_ERR_ABORTED, "tokenizer training aborted by the progress callback");
    if (s == YAN_OK) s = gguf ? write_gguf(&bpe, pre, p->special, p->n_special, out_path)
                              : yan_write_atomic(out_path, json.data, json.len);
    if (s == YAN_OK && p->progress) p->progress(1.0f, p->progress_ud);

    yan_buf_free(&json);
    yan_bpe_free(&bpe);
    yan_free(wp);
    yan_free(wl);
    yan_free(wf);
    yan_free(ents);
    for (int f = 0; f < n_files; f++) yan_mmap_close(&maps[f]);
    yan_free(maps);
    st.seconds_total = now_s() - t0;
    if (stats && s == YAN_OK) *stats = st;
    return s;
}

yan_status yan_tokenizer_train(const char *const *files, int n_files,
                               const yan_train_tokenizer_params *p, const char *out_path) {
    return yan_tokenizer_train_ex(files, n_files, p, out_path, NULL, p ? p->stats : NULL);
}
