/* engine.c — continuous batching over a paged KV cache (the contract is in
 * engine.h): the block pool, the prefix index, sequences, and the step that
 * hands a mixed batch of prefill chunks and decode tokens to the forward
 * pass (forward.c: yan_fwd with blocks of YAN_KV_BLOCK positions).
 *
 * Blocks. Every block is in exactly one of three states:
 *  - in use: ref >= 1 sequence tables hold it;
 *  - cached: ref = 0 but indexed (its K/V are a known token prefix); kept on
 *    an LRU list and handed out again, least recently freed first, when the
 *    free stack is empty;
 *  - free: ref = 0 and not indexed, on the free stack.
 * A block is written only while it is the partial last block of exactly one
 * sequence (ref = 1, not indexed); full blocks are immutable.
 *
 * Prefix index. A full block b of a sequence is indexed by the hash of the
 * whole token prefix it ends, h_i = hash(tokens of block i, h_{i-1}), in a
 * chained hash table. Its entry also records its own tokens and its parent
 * (the block before it in the table) by id AND generation: a block's
 * generation changes whenever its content may change (taken from the free
 * stack or the LRU, or un-indexed to be written again), so a match of
 * (hash, tokens, parent id + generation) at every block of a walk from the
 * first proves the whole prefix equal — no hash collision can hand out
 * wrong K/V. Every full block of a live sequence is indexed: when a block
 * fills and an equal one is already indexed (two prompts with the same
 * prefix prefilled at once), the sequence switches to the indexed one and
 * its own goes back to the free stack, so chains stay whole.
 *
 * Dependencies: model.h (yan_fwd), base (allocation, errors, hashing). */
#include "model/engine.h"

#define B_POS YAN_KV_BLOCK
#define HASH_SEED 0x243F6A8885A308D3ull

typedef struct {
    bool live;
    bool no_index;       /* embed's temporary sequence: its blocks are never cached */
    int32_t len;         /* positions held */
    int32_t n_blocks;    /* entries of table in use: ceil(len / B_POS) */
    int32_t *table;      /* (max_blocks) block ids */
    yan_token *toks;     /* (n_ctx) the token at each position */
} eseq;

struct yan_engine {
    yan_model *m;
    yan_fwd *f;
    int32_t n_ctx, n_seq_max, n_batch;
    int32_t max_blocks;      /* ceil(n_ctx / B_POS): table entries of a sequence */
    int64_t n_blocks;
    /* block pool, (n_blocks) each */
    int32_t *ref;            /* sequence tables holding the block */
    uint32_t *gen;           /* generation: changes whenever the content may change */
    uint8_t *indexed;
    uint64_t *hash;          /* prefix hash of an indexed block */
    int32_t *parent;         /* previous block of the prefix (-1: the first block) */
    uint32_t *parent_gen;
    yan_token *btok;         /* (n_blocks, B_POS) tokens of an indexed block */
    int32_t *hnext;          /* next block in the same hash bucket, -1 = end */
    int32_t *bucket;         /* (n_buckets) first block of each bucket, -1 = empty */
    uint64_t bucket_mask;
    int32_t *free_stack;
    int64_t n_free;
    int32_t *lru_prev, *lru_next; /* cached blocks, head = least recently freed */
    int32_t lru_head, lru_tail;
    int64_t n_lru;
    /* sequences: n_seq_max + 1, the last one reserved for yan_engine_embed */
    eseq *seqs;
    int32_t *seq_tables;     /* (n_seq_max + 1, max_blocks) */
    yan_token *seq_toks;     /* (n_seq_max + 1, n_ctx) */
    /* step scratch, (n_batch) each unless said */
    int32_t *cnt;            /* (n_seq_max + 1) tokens of each sequence in the step */
    int32_t *touched;        /* distinct sequences of the step */
    yan_token *tok;
    int32_t *pos;
    const int32_t **tables;
    int32_t *out_tok;
    int32_t *row;            /* logits row of each token of the last step; -1 = none */
    float *logits;           /* (logits_cap, V) */
    int64_t logits_cap;
    int32_t last_n;          /* tokens of the last step */
};

yan_engine_params yan_engine_params_default(void) {
    yan_engine_params p = {0};
    p.n_ctx = 0;
    p.n_seq_max = 16;
    p.n_batch = 512;
    p.n_blocks = 0;
    p.n_threads = 0;
    p.kv_type = YAN_KV_F16;
    return p;
}

/* ------------------------------------------------------------ block pool */

static void lru_remove(yan_engine *e, int32_t b) {
    int32_t p = e->lru_prev[b], n = e->lru_next[b];
    if (p >= 0) e->lru_next[p] = n;
    else e->lru_head = n;
    if (n >= 0) e->lru_prev[n] = p;
    else e->lru_tail = p;
    e->lru_prev[b] = e->lru_next[b] = -1;
    e->n_lru--;
}

static void lru_push(yan_engine *e, int32_t b) { /* most recently freed end */
    e->lru_prev[b] = e->lru_tail;
    e->lru_next[b] = -1;
    if (e->lru_tail >= 0) e->lru_next[e->lru_tail] = b;
    else e->lru_head = b;
    e->lru_tail = b;
    e->n_lru++;
}

static void index_remove(yan_engine *e, int32_t b) {
    int32_t *link = &e->bucket[e->hash[b] & e->bucket_mask];
    while (*link != b) {
        YAN_ASSERT(*link >= 0);
        link = &e->hnext[*link];
    }
    *link = e->hnext[b];
    e->hnext[b] = -1;
    e->indexed[b] = 0;
}

/* The indexed block ending prefix hash h with these B_POS tokens after
 * block parent (-1 = none: the first block), or -1. */
static int32_t index_find(const yan_engine *e, uint64_t h, int32_t parent, const yan_token *toks) {
    for (int32_t b = e->bucket[h & e->bucket_mask]; b >= 0; b = e->hnext[b]) {
        if (e->hash[b] != h || e->parent[b] != parent) continue;
        if (parent >= 0 && e->parent_gen[b] != e->gen[parent]) continue;
        if (!memcmp(e->btok + (size_t)b * B_POS, toks, B_POS * sizeof *toks)) return b;
    }
    return -1;
}

static uint64_t prefix_hash(const yan_engine *e, int32_t parent, const yan_token *toks) {
    return yan_hash_bytes(toks, B_POS * sizeof *toks, parent >= 0 ? e->hash[parent] : HASH_SEED);
}

/* A block for new content: the free stack first, else the least recently
 * freed cached block (dropped from the index). The caller checked that one
 * exists. */
static int32_t block_alloc(yan_engine *e) {
    int32_t b;
    if (e->n_free > 0) {
        b = e->free_stack[--e->n_free];
    } else {
        b = e->lru_head;
        YAN_ASSERT(b >= 0);
        lru_remove(e, b);
        index_remove(e, b);
    }
    e->gen[b]++;
    e->ref[b] = 1;
    return b;
}

static void block_release(yan_engine *e, int32_t b) {
    YAN_ASSERT(e->ref[b] > 0);
    if (--e->ref[b] > 0) return;
    if (e->indexed[b]) lru_push(e, b);
    else e->free_stack[e->n_free++] = b;
}

static void block_take(yan_engine *e, int32_t b) { /* one more table holds an indexed block */
    if (e->ref[b]++ == 0) lru_remove(e, b);
}

/* Block i of s has just filled: index it, or switch s to the equal block
 * already indexed. */
static void index_full(yan_engine *e, eseq *s, int32_t i) {
    int32_t b = s->table[i], parent = i > 0 ? s->table[i - 1] : -1;
    const yan_token *toks = s->toks + (size_t)i * B_POS;
    YAN_ASSERT(!e->indexed[b] && e->ref[b] == 1 && (parent < 0 || e->indexed[parent]));
    uint64_t h = prefix_hash(e, parent, toks);
    int32_t d = index_find(e, h, parent, toks);
    if (d >= 0) {
        block_take(e, d);
        s->table[i] = d;
        block_release(e, b);
        return;
    }
    e->hash[b] = h;
    e->parent[b] = parent;
    e->parent_gen[b] = parent >= 0 ? e->gen[parent] : 0;
    memcpy(e->btok + (size_t)b * B_POS, toks, B_POS * sizeof *toks);
    int32_t *head = &e->bucket[h & e->bucket_mask];
    e->hnext[b] = *head;
    *head = b;
    e->indexed[b] = 1;
}

static int32_t blocks_for(int32_t n) { return (n + B_POS - 1) / B_POS; }

/* ---------------------------------------------------------------- engine */

yan_status yan_engine_new(yan_model *m, const yan_engine_params *p, yan_engine **out) {
    if (!out) return yan_fail(YAN_ERR_INVALID_ARG, "yan_engine_new: out is NULL");
    *out = NULL;
    if (!m) return yan_fail(YAN_ERR_INVALID_ARG, "yan_engine_new: no model");
    yan_engine_params dp = yan_engine_params_default();
    if (!p) p = &dp;
    if (p->n_ctx < 0 || p->n_seq_max < 0 || p->n_batch < 0 || p->n_blocks < 0)
        return yan_fail(YAN_ERR_INVALID_ARG,
                        "engine parameters must not be negative (n_ctx %d, n_seq_max %d, n_batch %d, n_blocks %lld)",
                        p->n_ctx, p->n_seq_max, p->n_batch, (long long)p->n_blocks);
    int32_t n_ctx = p->n_ctx;
    if (n_ctx == 0) n_ctx = m->hp.n_ctx_train < 4096 ? m->hp.n_ctx_train : 4096;
    int32_t n_seq = p->n_seq_max > 0 ? p->n_seq_max : 16;
    if (n_seq > 65536) return yan_fail(YAN_ERR_INVALID_ARG, "n_seq_max %d is above 65536", n_seq);
    if (n_ctx < 1 || n_ctx > (1 << 24))
        return yan_fail(YAN_ERR_INVALID_ARG, "context length %d is out of range [1, %d]", n_ctx, 1 << 24);
    int32_t max_blocks = blocks_for(n_ctx);
    int64_t n_blocks = p->n_blocks > 0 ? p->n_blocks : (int64_t)n_seq * max_blocks;
    if (n_blocks > INT32_MAX / 2)
        return yan_fail(YAN_ERR_INVALID_ARG, "a pool of %lld KV blocks is too large", (long long)n_blocks);
    yan_fwd_plan plan;
    yan_status st = yan_fwd_plan_make(m, n_ctx, p->n_batch, p->n_threads, p->kv_type, B_POS, n_blocks, &plan);
    if (st) return st;

    yan_engine *e = yan_calloc(1, sizeof *e);
    if (!e) return yan_fail(YAN_ERR_NOMEM, "out of memory creating an engine");
    e->m = m;
    e->n_ctx = plan.n_ctx;
    e->n_seq_max = n_seq;
    e->n_batch = plan.n_batch;
    e->max_blocks = max_blocks;
    e->n_blocks = n_blocks;
    size_t nb = (size_t)n_blocks, ns = (size_t)n_seq + 1, B = (size_t)plan.n_batch;
    size_t n_buckets = 16;
    while (n_buckets < nb) n_buckets *= 2;
    e->bucket_mask = n_buckets - 1;
    e->ref = yan_calloc(nb, sizeof *e->ref);
    e->gen = yan_calloc(nb, sizeof *e->gen);
    e->indexed = yan_calloc(nb, sizeof *e->indexed);
    e->hash = yan_calloc(nb, sizeof *e->hash);
    e->parent = yan_calloc(nb, sizeof *e->parent);
    e->parent_gen = yan_calloc(nb, sizeof *e->parent_gen);
    e->btok = yan_calloc(nb * B_POS, sizeof *e->btok);
    e->hnext = yan_calloc(nb, sizeof *e->hnext);
    e->bucket = yan_calloc(n_buckets, sizeof *e->bucket);
    e->free_stack = yan_calloc(nb, sizeof *e->free_stack);
    e->lru_prev = yan_calloc(nb, sizeof *e->lru_prev);
    e->lru_next = yan_calloc(nb, sizeof *e->lru_next);
    e->seqs = yan_calloc(ns, sizeof *e->seqs);
    e->seq_tables = yan_calloc(ns * (size_t)max_blocks, sizeof *e->seq_tables);
    e->seq_toks = yan_calloc(ns * (size_t)n_ctx, sizeof *e->seq_toks);
    e->cnt = yan_calloc(ns, sizeof *e->cnt);
    e->touched = yan_calloc(B, sizeof *e->touched);
    e->tok = yan_calloc(B, sizeof *e->tok);
    e->pos = yan_calloc(B, sizeof *e->pos);
    e->tables = yan_calloc(B, sizeof *e->tables);
    e->out_tok = yan_calloc(B, sizeof *e->out_tok);
    e->row = yan_calloc(B, sizeof *e->row);
    e->logits_cap = n_seq < plan.n_batch ? n_seq : plan.n_batch;
    e->logits = yan_calloc((size_t)e->logits_cap * (size_t)m->hp.n_vocab, sizeof *e->logits);
    if (!e->ref || !e->gen || !e->indexed || !e->hash || !e->parent || !e->parent_gen || !e->btok || !e->hnext ||
        !e->bucket || !e->free_stack || !e->lru_prev || !e->lru_next || !e->seqs || !e->seq_tables || !e->seq_toks ||
        !e->cnt || !e->touched || !e->tok || !e->pos || !e->tables || !e->out_tok || !e->row || !e->logits) {
        yan_engine_free(e);
        return yan_fail(YAN_ERR_NOMEM, "out of memory creating an engine (%lld KV blocks, %d sequences)",
                        (long long)n_blocks, n_seq);
    }
    if ((st = yan_fwd_new(m, &plan, &e->f))) {
        yan_engine_free(e);
        return st;
    }
    for (size_t i = 0; i < n_buckets; i++) e->bucket[i] = -1;
    for (size_t b = 0; b < nb; b++) {
        e->hnext[b] = e->lru_prev[b] = e->lru_next[b] = -1;
        e->free_stack[b] = (int32_t)(nb - 1 - b); /* block 0 first */
    }
    e->n_free = n_blocks;
    e->lru_head = e->lru_tail = -1;
    for (size_t i = 0; i < ns; i++) {
        e->seqs[i].table = e->seq_tables + i * (size_t)max_blocks;
        e->seqs[i].toks = e->seq_toks + i * (size_t)n_ctx;
    }
    *out = e;
    return YAN_OK;
}

void yan_engine_free(yan_engine *e) {
    if (!e) return;
    yan_fwd_free(e->f);
    void *bufs[] = {e->ref,      e->gen,     e->indexed, e->hash,     e->parent,     e->parent_gen,
                    e->btok,     e->hnext,   e->bucket,  e->free_stack, e->lru_prev, e->lru_next,
                    e->seqs,     e->seq_tables, e->seq_toks, e->cnt,  e->touched,    e->tok,
                    e->pos,      e->tables,  e->out_tok, e->row,      e->logits};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) yan_free(bufs[i]);
    yan_free(e);
}

const yan_model *yan_engine_model(const yan_engine *e) { return e->m; }
int32_t yan_engine_n_ctx(const yan_engine *e) { return e->n_ctx; }
int32_t yan_engine_n_batch(const yan_engine *e) { return e->n_batch; }
int32_t yan_engine_n_seq_max(const yan_engine *e) { return e->n_seq_max; }
int64_t yan_engine_blocks_total(const yan_engine *e) { return e->n_blocks; }
int64_t yan_engine_blocks_free(const yan_engine *e) { return e->n_free + e->n_lru; }
int64_t yan_engine_blocks_cached(const yan_engine *e) { return e->n_lru; }

/* ------------------------------------------------------------- sequences */

static eseq *live_seq(const yan_engine *e, int32_t seq) {
    if (!e || seq < 0 || seq >= e->n_seq_max || !e->seqs[seq].live) return NULL;
    return &e->seqs[seq];
}

yan_status yan_engine_seq_new(yan_engine *e, int32_t *seq) {
    if (!e || !seq) return yan_fail(YAN_ERR_INVALID_ARG, "yan_engine_seq_new: no engine or output");
    for (int32_t i = 0; i < e->n_seq_max; i++) {
        eseq *s = &e->seqs[i];
        if (s->live) continue;
        s->live = true;
        s->no_index = false;
        s->len = s->n_blocks = 0;
        *seq = i;
        return YAN_OK;
    }
    return yan_fail(YAN_ERR_CONTEXT_FULL, "all %d sequences of the engine are in use", e->n_seq_max);
}

static void seq_release(yan_engine *e, eseq *s) {
    /* last block first: the prefix blocks are then the most recently freed
     * and the last to be taken back */
    for (int32_t i = s->n_blocks - 1; i >= 0; i--) block_release(e, s->table[i]);
    s->live = false;
    s->len = s->n_blocks = 0;
}

void yan_engine_seq_free(yan_engine *e, int32_t seq) {
    eseq *s = live_seq(e, seq);
    if (s) seq_release(e, s);
}

int32_t yan_engine_seq_len(const yan_engine *e, int32_t seq) {
    const eseq *s = live_seq(e, seq);
    return s ? s->len : -1;
}

yan_status yan_engine_seq_truncate(yan_engine *e, int32_t seq, int32_t n) {
    eseq *s = live_seq(e, seq);
    if (!s) return yan_fail(YAN_ERR_INVALID_ARG, "sequence %d is not live", seq);
    if (n < 0 || n > s->len)
        return yan_fail(YAN_ERR_INVALID_ARG, "cannot truncate sequence %d of %d positions to %d", seq, s->len, n);
    const int32_t keep = blocks_for(n);
    const int32_t kb = n % B_POS ? s->table[keep - 1] : -1; /* the kept block that is only partly kept */
    const bool cow = kb >= 0 && e->ref[kb] > 1;
    if (cow) {
        int64_t avail = yan_engine_blocks_free(e);
        for (int32_t i = keep; i < s->n_blocks; i++) avail += e->ref[s->table[i]] == 1;
        if (avail < 1)
            return yan_fail(YAN_ERR_NOMEM, "no free KV block to copy the shared block of sequence %d into", seq);
    }
    for (int32_t i = s->n_blocks - 1; i >= keep; i--) block_release(e, s->table[i]);
    s->n_blocks = keep;
    if (cow) {
        int32_t nb = block_alloc(e);
        memcpy(yan_fwd_block(e->f, nb), yan_fwd_block(e->f, kb), yan_fwd_plan_of(e->f)->kv_block_bytes);
        s->table[keep - 1] = nb;
        block_release(e, kb);
    } else if (kb >= 0 && e->indexed[kb]) {
        /* ours alone: it will be written again, so it leaves the index and
         * its generation changes (cached blocks that followed it are orphaned) */
        index_remove(e, kb);
        e->gen[kb]++;
    }
    s->len = n;
    return YAN_OK;
}

int32_t yan_engine_seq_reuse(yan_engine *e, int32_t seq, const yan_token *tokens, int32_t n) {
    eseq *s = live_seq(e, seq);
    if (!s || s->len != 0 || !tokens || n < 1) return 0;
    int32_t i = 0, parent = -1;
    while ((i + 1) * B_POS < n && (i + 1) * B_POS <= e->n_ctx) {
        const yan_token *t = tokens + (size_t)i * B_POS;
        int32_t d = index_find(e, prefix_hash(e, parent, t), parent, t);
        if (d < 0) break;
        block_take(e, d);
        s->table[i] = d;
        memcpy(s->toks + (size_t)i * B_POS, t, B_POS * sizeof *t);
        parent = d;
        i++;
    }
    s->n_blocks = i;
    s->len = i * B_POS;
    return s->len;
}

int64_t yan_engine_blocks_needed(const yan_engine *e, int32_t seq, int32_t n) {
    const eseq *s = live_seq(e, seq);
    if (!s || n < 0) return -1;
    int32_t need = blocks_for(n) - s->n_blocks;
    return need > 0 ? need : 0;
}

/* ------------------------------------------------------------------ step */

yan_status yan_engine_step(yan_engine *e, const yan_engine_tok *toks, int32_t n) {
    if (!e) return yan_fail(YAN_ERR_INVALID_ARG, "yan_engine_step: no engine");
    if (!toks || n < 1 || n > e->n_batch)
        return yan_fail(YAN_ERR_INVALID_ARG, "a step takes 1 to %d tokens, not %d", e->n_batch, n);
    if (!yan_model_has_lm_head(e->m) || !e->m->hp.causal)
        return yan_fail(YAN_ERR_UNSUPPORTED, "this %s model computes embeddings only: use yan_engine_embed",
                        e->m->arch_name);
    const int32_t V = e->m->hp.n_vocab;
    yan_status st = YAN_OK;
    int32_t n_touched = 0, n_out = 0;
    for (int32_t i = 0; i < n && !st; i++) {
        const int32_t sq = toks[i].seq;
        if (!live_seq(e, sq))
            st = yan_fail(YAN_ERR_INVALID_ARG, "token %d of the step belongs to sequence %d, which is not live", i, sq);
        else if (toks[i].token < 0 || toks[i].token >= V)
            st = yan_fail(YAN_ERR_INVALID_ARG, "token %d of the step has id %d, outside the vocabulary [0, %d)", i,
                          toks[i].token, V);
        else if (e->cnt[sq]++ == 0)
            e->touched[n_touched++] = sq;
        n_out += toks[i].logits;
    }
    int64_t need = 0;
    for (int32_t k = 0; k < n_touched && !st; k++) {
        const eseq *s = &e->seqs[e->touched[k]];
        const int32_t c = e->cnt[e->touched[k]];
        if (c > e->n_ctx - s->len)
            st = yan_fail(YAN_ERR_CONTEXT_FULL, "sequence %d holds %d of %d positions: %d more do not fit",
                          e->touched[k], s->len, e->n_ctx, c);
        else
            need += yan_engine_blocks_needed(e, e->touched[k], s->len + c);
    }
    if (!st && need > yan_engine_blocks_free(e))
        st = yan_fail(YAN_ERR_NOMEM, "the step needs %lld KV blocks, %lld are free", (long long)need,
                      (long long)yan_engine_blocks_free(e));
    if (!st && n_out > e->logits_cap) {
        float *lg = yan_realloc(e->logits, (size_t)n_out * (size_t)V * sizeof(float));
        if (!lg) st = yan_fail(YAN_ERR_NOMEM, "out of memory for the logits of %d tokens", n_out);
        else {
            e->logits = lg;
            e->logits_cap = n_out;
        }
    }
    if (st) {
        for (int32_t k = 0; k < n_touched; k++) e->cnt[e->touched[k]] = 0;
        return st;
    }

    /* checked: from here on nothing fails */
    for (int32_t k = 0; k < n_touched; k++) {
        eseq *s = &e->seqs[e->touched[k]];
        const int32_t want = blocks_for(s->len + e->cnt[e->touched[k]]);
        while (s->n_blocks < want) s->table[s->n_blocks++] = block_alloc(e);
        e->cnt[e->touched[k]] = 0; /* now counts the tokens placed */
    }
    int32_t k_out = 0;
    for (int32_t i = 0; i < n; i++) {
        eseq *s = &e->seqs[toks[i].seq];
        const int32_t p = s->len + e->cnt[toks[i].seq]++;
        s->toks[p] = toks[i].token;
        e->tok[i] = toks[i].token;
        e->pos[i] = p;
        e->tables[i] = s->table;
        e->row[i] = -1;
        if (toks[i].logits) {
            e->row[i] = k_out;
            e->out_tok[k_out++] = i;
        }
    }
    yan_fwd_batch b = {.T = n, .tok = e->tok, .pos = e->pos, .table = e->tables, .n_out = n_out,
                       .out_tok = e->out_tok, .logits = e->logits};
    yan_fwd_eval(e->f, &b);
    e->last_n = n;
    for (int32_t k = 0; k < n_touched; k++) {
        eseq *s = &e->seqs[e->touched[k]];
        const int32_t old = s->len;
        s->len += e->cnt[e->touched[k]];
        e->cnt[e->touched[k]] = 0;
        if (!s->no_index)
            for (int32_t i = old / B_POS; i < s->len / B_POS; i++) index_full(e, s, i);
    }
    return YAN_OK;
}

const float *yan_engine_logits(const yan_engine *e, int32_t i) {
    if (!e || i < 0 || i >= e->last_n || e->row[i] < 0) return NULL;
    return e->logits + (size_t)e->row[i] * (size_t)e->m->hp.n_vocab;
}

/* ------------------------------------------------------------- embedding */

yan_status yan_engine_embed(yan_engine *e, const yan_token *tokens, int32_t n, float *out) {
    if (!e || !tokens || n < 1 || !out) return yan_fail(YAN_ERR_INVALID_ARG, "yan_engine_embed: no tokens or output");
    const int32_t V = e->m->hp.n_vocab;
    if (n > e->n_ctx) return yan_fail(YAN_ERR_CONTEXT_FULL, "%d tokens do not fit in %d positions", n, e->n_ctx);
    for (int32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return yan_fail(YAN_ERR_INVALID_ARG, "token %d has id %d, outside the vocabulary [0, %d)", i, tokens[i], V);
    if (blocks_for(n) > yan_engine_blocks_free(e))
        return yan_fail(YAN_ERR_NOMEM, "an embedding of %d tokens needs %d KV blocks, %lld are free", n, blocks_for(n),
                        (long long)yan_engine_blocks_free(e));
    eseq *s = &e->seqs[e->n_seq_max];
    s->live = true;
    s->no_index = true;
    s->len = s->n_blocks = 0;
    while (s->n_blocks < blocks_for(n)) s->table[s->n_blocks++] = block_alloc(e);
    s->len = n;
    /* the pass and the pooling are yan_embed's (forward.c) */
    yan_status st = yan_fwd_embed(e->f, tokens, n, s->table, e->pos, e->tables, e->out_tok, YAN_POOLING_MODEL, out);
    seq_release(e, s);
    return st;
}
