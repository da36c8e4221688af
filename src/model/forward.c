/* forward.c — the forward pass (yan_fwd: thread pool, scratch, KV blocks)
 * and the single-sequence contexts built on it.
 *
 * A step is a batch of T tokens, each with its own position and its own
 * sequence's KV block table (model.h: yan_fwd_batch), so the same code runs
 * a yan_context (one sequence, T tokens at consecutive positions) and the
 * continuous-batching engine (engine.c: prefill chunks of several prompts
 * next to one decode token of each running sequence). The weight matrices
 * are read once per step whatever the mix; attention runs per token over
 * its own sequence's blocks.
 *
 * One step is ONE yan_pool_run: every thread walks the same sequence of
 * phases separated by yan_pool_barrier —
 *   embed | per layer: norm+prepare | q,k,v rows | bias/qk-norm/rope/KV store
 *   | attention | prepare | wo rows + residual | norm+prepare | gate,up rows
 *   + activation | prepare | down rows + residual | final norm+prepare |
 *   output rows.
 * Matmul phases split the OUTPUT ROWS across threads (weighted by bytes, so
 * decode reads each weight once, spread over all cores); token-wise phases
 * split tokens; attention splits (token, head) pairs. Decode of one token
 * drops the barriers after each norm+prepare (every thread prepares its own
 * copy) and, when the KV heads split evenly, fuses q,k,v rows + rope + KV
 * store + attention into one phase per thread's KV heads: 4 barriers a layer
 * instead of 10. No allocation happens in a step: everything is carved at
 * creation for n_batch tokens. The only exception is a context's logits
 * buffer, grown when all_logits is asked for more tokens than it holds
 * (checked before anything is evaluated).
 *
 * KV cache: blocks of kv_block positions, each (L) x [K (NKV, kv_block, HD) |
 * V (NKV, kv_block, HDV)] in f16 or f32 (model.h). A context is one block of
 * n_ctx positions — per layer K then V, each (NKV, NCTX, HD), the keys of one
 * head contiguous over all positions — so its attention streams one run of
 * keys per head as before; the engine's blocks are YAN_KV_BLOCK positions
 * and attention walks the table one block at a time. Math follows llama.cpp
 * for each architecture (see model.h). RoPE is computed here (not yan_rope)
 * because Llama 3 files carry per-dimension frequency divisors
 * (rope_freqs.weight), with llama.cpp's exact recurrence for the angles
 * (theta_{i+1} = theta_i * base^(-2/n_rot) in float).
 * Dependencies: model.h, tensor.h kernels, pool.h. */
#include "model/model.h"

#include <math.h>

#define ALIGN 64
#define ROW_ALIGN 16  /* matmul row ranges start at multiples of this */

struct yan_fwd {
    yan_model *m;
    yan_fwd_plan plan;
    yan_pool *pool;
    uint8_t *kv;               /* (n_blocks) x block: (L) x [K (NKV, kv_block, HD) | V (NKV, kv_block, HDV)] */
    uint8_t *scratch;          /* one block carved below */
    float *x;                  /* (B, C) residual stream */
    float *xn;                 /* (B, C) normed input of a matmul; hidden states of a hidden-only step */
    float *qkv;                /* (B, QD + KD + VD): q | k | v per token */
    float *att;                /* (B, NH*HDV) attention output */
    float *tmp;                /* (B, C) matmul output before the residual add */
    float *gate, *up;          /* (B, FF) */
    float *rope_cs;            /* (B, n_rot): n_rot/2 cosines then n_rot/2 sines */
    float *scores;             /* (nth, scores_stride) per-thread attention row, then HDV floats */
    size_t scores_stride;      /* floats */
    size_t vtmp_off;           /* floats into a scores row: the thread's HDV partial values of one block */
    void *mm[3];               /* prepared activations for up to 3 matmuls at once */
    const yan_fwd_batch *b;    /* the step being run */
};

struct yan_context {
    yan_fwd *f;
    int32_t n_past;
    int32_t table[1];          /* the one block of the sequence */
    int32_t *pos;              /* (n_batch) positions of the step being run */
    const int32_t **tables;    /* (n_batch) all = table */
    int32_t *iota;             /* (n_batch) 0, 1, 2, ... (output token indices) */
    float *logits;             /* (logits_cap, V) */
    int64_t logits_cap;
    int32_t last_n;            /* tokens of the last yan_eval; 0 = no logits */
    bool last_all;
};

/* ------------------------------------------------------------- params */

yan_context_params yan_context_params_default(void) {
    yan_context_params p = {0};
    p.n_ctx = 0;
    p.n_batch = 512;
    p.n_threads = 0;
    p.kv_type = YAN_KV_F16;
    return p;
}

static size_t al(size_t n) { return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1); }
static size_t al16(size_t n) { return (n + 15) & ~(size_t)15; }

/* scratch regions in bytes (aligned each); scores_stride and vtmp_off in floats */
typedef struct { size_t x, xn, qkv, att, tmp, gate, up, rope, scores, scores_stride, vtmp_off, mm; } scratch_sizes;

static scratch_sizes sizes_for(const yan_model *m, int32_t n_ctx, int32_t B, int nth) {
    const yan_hparams *hp = &m->hp;
    scratch_sizes s;
    size_t C = (size_t)hp->n_embd, QD = (size_t)hp->n_head * (size_t)hp->head_dim,
           KD = (size_t)hp->n_head_kv * (size_t)hp->head_dim, VD = (size_t)hp->n_head_kv * (size_t)hp->head_dim_v;
    s.x = s.xn = s.tmp = al((size_t)B * C * 4);
    s.qkv = al((size_t)B * (QD + KD + VD) * 4);
    s.att = al((size_t)B * (size_t)hp->n_head * (size_t)hp->head_dim_v * 4);
    s.gate = s.up = al((size_t)B * (size_t)hp->n_ff * 4);
    s.rope = al((size_t)B * (size_t)(hp->n_rot > 0 ? hp->n_rot : 1) * 4);
    /* a thread's row: scores over n_ctx keys (or HD floats of q/k-norm
     * scratch), then HDV floats for the values of one block */
    s.vtmp_off = al16((size_t)(n_ctx > hp->head_dim ? n_ctx : hp->head_dim));
    s.scores_stride = s.vtmp_off + al16((size_t)hp->head_dim_v);
    s.scores = al((size_t)nth * s.scores_stride * 4);
    s.mm = al(yan_model_matmul_scratch(m, B));
    return s;
}

static size_t sizes_total(const scratch_sizes *s) {
    return s->x + s->xn + s->qkv + s->att + s->tmp + s->gate + s->up + s->rope + s->scores + 3 * s->mm + ALIGN;
}

yan_status yan_fwd_plan_make(const yan_model *m, int32_t n_ctx, int32_t n_batch, int n_threads, yan_kv_type kv_type,
                             int32_t kv_block, int64_t n_blocks, yan_fwd_plan *out) {
    const yan_hparams *hp = &m->hp;
    memset(out, 0, sizeof *out);
    if (n_ctx < 1 || n_ctx > (1 << 24))
        return yan_fail(YAN_ERR_INVALID_ARG, "context length %d is out of range [1, %d]", n_ctx, 1 << 24);
    if (hp->layernorm && n_ctx > hp->n_ctx_train)
        return yan_fail(YAN_ERR_INVALID_ARG,
                        "context length %d exceeds the %d positions this %s model has learned embeddings for", n_ctx,
                        hp->n_ctx_train, m->arch_name);
    if (kv_type != YAN_KV_F16 && kv_type != YAN_KV_F32)
        return yan_fail(YAN_ERR_INVALID_ARG, "unknown KV cache type %d", (int)kv_type);
    if (n_batch < 0) return yan_fail(YAN_ERR_INVALID_ARG, "n_batch %d is negative", n_batch);
    if (kv_block < 0 || n_blocks < 1)
        return yan_fail(YAN_ERR_INVALID_ARG, "bad KV block layout (%d positions x %lld blocks)", kv_block,
                        (long long)n_blocks);
    int32_t B = n_batch > 0 ? n_batch : 512;
    if (!hp->causal || B > n_ctx) B = n_ctx; /* non-causal: the whole input is one step */
    out->n_ctx = n_ctx;
    out->n_batch = B;
    out->n_threads = yan_threads_resolve(n_threads);
    out->kv_type = kv_type;
    out->kv_elt = kv_type == YAN_KV_F32 ? 4 : 2;
    out->kv_block = kv_block > 0 ? kv_block : n_ctx;
    out->n_blocks = n_blocks;
    size_t k, v, blk;
    if (yan_mul_ovf((size_t)hp->n_head_kv * (size_t)hp->head_dim * out->kv_elt, (size_t)out->kv_block, &k) ||
        yan_mul_ovf((size_t)hp->n_head_kv * (size_t)hp->head_dim_v * out->kv_elt, (size_t)out->kv_block, &v) ||
        yan_mul_ovf(k + v, (size_t)hp->n_layer, &blk) || yan_mul_ovf(blk, (size_t)n_blocks, &out->kv_bytes))
        return yan_fail(YAN_ERR_INVALID_ARG, "a KV cache of %lld blocks of %d tokens does not fit in memory",
                        (long long)n_blocks, out->kv_block);
    out->kv_layer_k = k;
    out->kv_layer_v = v;
    out->kv_block_bytes = blk;
    scratch_sizes s = sizes_for(m, n_ctx, B, out->n_threads);
    out->scratch_bytes = sizes_total(&s);
    return YAN_OK;
}

/* ------------------------------------------------------------ machine */

yan_status yan_fwd_new(yan_model *m, const yan_fwd_plan *plan, yan_fwd **out) {
    *out = NULL;
    yan_fwd *f = yan_calloc(1, sizeof *f);
    if (!f) return yan_fail(YAN_ERR_NOMEM, "out of memory creating a context");
    f->m = m;
    f->plan = *plan;
    scratch_sizes s = sizes_for(m, plan->n_ctx, plan->n_batch, plan->n_threads);
    f->kv = yan_malloc(plan->kv_bytes ? plan->kv_bytes : 1);
    f->scratch = yan_malloc(sizes_total(&s));
    if (!f->kv || !f->scratch) {
        yan_status st = yan_fail(YAN_ERR_NOMEM, "out of memory allocating %.1f MiB of KV cache for %lld x %d tokens",
                                 (double)plan->kv_bytes / 1048576.0, (long long)plan->n_blocks, plan->kv_block);
        yan_fwd_free(f);
        return st;
    }
    uint8_t *b = (uint8_t *)(((uintptr_t)f->scratch + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1));
#define CARVE(field, bytes) (f->field = (void *)b, b += (bytes))
    CARVE(x, s.x);
    CARVE(xn, s.xn);
    CARVE(qkv, s.qkv);
    CARVE(att, s.att);
    CARVE(tmp, s.tmp);
    CARVE(gate, s.gate);
    CARVE(up, s.up);
    CARVE(rope_cs, s.rope);
    CARVE(scores, s.scores);
    for (int i = 0; i < 3; i++) CARVE(mm[i], s.mm);
#undef CARVE
    f->scores_stride = s.scores_stride;
    f->vtmp_off = s.vtmp_off;
    yan_status st = yan_pool_new(plan->n_threads, &f->pool);
    if (st) {
        yan_fwd_free(f);
        return st;
    }
    /* the scores region was sized for n_threads; the pool never has more */
    *out = f;
    return YAN_OK;
}

void yan_fwd_free(yan_fwd *f) {
    if (!f) return;
    yan_pool_free(f->pool);
    yan_free(f->kv);
    yan_free(f->scratch);
    yan_free(f);
}

const yan_fwd_plan *yan_fwd_plan_of(const yan_fwd *f) { return &f->plan; }
const float *yan_fwd_hidden(const yan_fwd *f) { return f->xn; }
uint8_t *yan_fwd_block(yan_fwd *f, int64_t b) { return f->kv + (size_t)b * f->plan.kv_block_bytes; }

/* ------------------------------------------------------------- context */

static yan_status ctx_plan(const yan_model *m, const yan_context_params *p, yan_fwd_plan *out) {
    if (p->n_ctx < 0)
        return yan_fail(YAN_ERR_INVALID_ARG, "context length %d is out of range [1, %d]", p->n_ctx, 1 << 24);
    int32_t n_ctx = p->n_ctx > 0 ? p->n_ctx : m->hp.n_ctx_train;
    return yan_fwd_plan_make(m, n_ctx, p->n_batch, p->n_threads, p->kv_type, 0, 1, out);
}

uint64_t yan_context_bytes(const yan_model *m, const yan_context_params *p) {
    yan_context_params dp = yan_context_params_default();
    yan_fwd_plan plan;
    if (ctx_plan(m, p ? p : &dp, &plan)) return 0;
    return (uint64_t)plan.kv_bytes + (uint64_t)plan.scratch_bytes + (uint64_t)m->hp.n_vocab * 4;
}

yan_status yan_context_new(yan_model *m, const yan_context_params *p, yan_context **out) {
    if (!out) return yan_fail(YAN_ERR_INVALID_ARG, "yan_context_new: out is NULL");
    *out = NULL;
    if (!m) return yan_fail(YAN_ERR_INVALID_ARG, "yan_context_new: no model");
    yan_context_params dp = yan_context_params_default();
    if (!p) p = &dp;
    yan_fwd_plan plan;
    yan_status st = ctx_plan(m, p, &plan);
    if (st) return st;
    yan_context *c = yan_calloc(1, sizeof *c);
    if (!c) return yan_fail(YAN_ERR_NOMEM, "out of memory creating a context");
    if ((st = yan_fwd_new(m, &plan, &c->f))) {
        yan_free(c);
        return st;
    }
    size_t B = (size_t)plan.n_batch;
    c->pos = yan_malloc(B * sizeof *c->pos);
    c->tables = yan_malloc(B * sizeof *c->tables);
    c->iota = yan_malloc(B * sizeof *c->iota);
    c->logits = yan_malloc((size_t)m->hp.n_vocab * sizeof(float));
    c->logits_cap = 1;
    if (!c->pos || !c->tables || !c->iota || !c->logits) {
        yan_context_free(c);
        return yan_fail(YAN_ERR_NOMEM, "out of memory creating a context");
    }
    c->table[0] = 0;
    for (size_t i = 0; i < B; i++) {
        c->tables[i] = c->table;
        c->iota[i] = (int32_t)i;
    }
    *out = c;
    return YAN_OK;
}

void yan_context_free(yan_context *c) {
    if (!c) return;
    yan_fwd_free(c->f);
    yan_free(c->pos);
    yan_free(c->tables);
    yan_free(c->iota);
    yan_free(c->logits);
    yan_free(c);
}

const yan_model *yan_context_model(const yan_context *c) { return c->f->m; }
int32_t yan_context_n_ctx(const yan_context *c) { return c->f->plan.n_ctx; }
int32_t yan_context_n_past(const yan_context *c) { return c->n_past; }

yan_status yan_context_truncate(yan_context *c, int32_t n_past) {
    if (n_past < 0 || n_past > c->n_past)
        return yan_fail(YAN_ERR_INVALID_ARG, "cannot truncate a context of %d tokens to %d", c->n_past, n_past);
    c->n_past = n_past;
    c->last_n = 0;
    return YAN_OK;
}

/* ----------------------------------------------- attention vector helpers */

static inline float kv_dot(const yan_fwd *f, const float *q, const void *k, int n) {
    return f->plan.kv_type == YAN_KV_F32 ? yan_dot_f32(q, k, n) : yan_dot_f16(q, k, n);
}

static inline void kv_axpy(const yan_fwd *f, float *y, float a, const void *v, int n) {
    if (f->plan.kv_type == YAN_KV_F32) yan_axpy_f32(y, a, v, n);
    else yan_axpy_f16(y, a, v, n);
}

static inline void kv_store(const yan_fwd *f, void *dst, const float *x, int n) {
    if (f->plan.kv_type == YAN_KV_F32) memcpy(dst, x, (size_t)n * 4);
    else yan_f32_to_f16_row(x, dst, n);
}

/* ------------------------------------------------------------ helpers */

/* Rows [*r0, *r1) of matrix i among n matrices whose rows are split across
 * nth threads in proportion to bytes, boundaries rounded to ROW_ALIGN. */
static int64_t split_bound(const yan_mat *const *ws, int n, int i, int k, int nth) {
    int64_t total = 0, off = 0;
    for (int j = 0; j < n; j++) {
        int64_t b = ws[j]->ne1 * (int64_t)ws[j]->row_bytes;
        if (j < i) off += b;
        total += b;
    }
    int64_t lo = (int64_t)((__int128)total * k / nth);
    int64_t rb = (int64_t)ws[i]->row_bytes;
    int64_t r = lo - off <= 0 ? 0 : (lo - off + rb - 1) / rb;
    r = (r + ROW_ALIGN - 1) / ROW_ALIGN * ROW_ALIGN;
    return r > ws[i]->ne1 ? ws[i]->ne1 : r;
}

static void my_rows(const yan_mat *const *ws, int n, int i, int ith, int nth, int64_t *r0, int64_t *r1) {
    *r0 = split_bound(ws, n, i, ith, nth);
    *r1 = split_bound(ws, n, i, ith + 1, nth);
}

static void norm_row(const yan_model *m, float *out, const float *x, const float *w, const float *b) {
    if (m->hp.layernorm) yan_layernorm(out, x, w, b, m->hp.n_embd, m->hp.eps);
    else yan_rmsnorm(out, x, w, m->hp.n_embd, m->hp.eps);
}

/* Post-norm (bert): x = LayerNorm(x) in place, and the same values in out
 * (the next matmul's input); w NULL: x is already normalised, only copied. */
static void post_norm_row(const yan_model *m, float *out, float *x, const float *w, const float *b) {
    if (w) {
        yan_layernorm(out, x, w, b, m->hp.n_embd, m->hp.eps);
        memcpy(x, out, (size_t)m->hp.n_embd * 4);
    } else {
        memcpy(out, x, (size_t)m->hp.n_embd * 4);
    }
}

static void rope_table(const yan_model *m, float *cs, int32_t pos) {
    const yan_hparams *hp = &m->hp;
    const int half = hp->n_rot / 2;
    const float theta_scale = powf(hp->rope_base, -2.0f / (float)hp->n_rot);
    const float *ff = m->rope_freqs;
    float theta = (float)pos;
    for (int i = 0; i < half; i++) {
        float th = hp->rope_freq_scale * (ff ? theta / ff[i] : theta);
        cs[i] = cosf(th);
        cs[half + i] = sinf(th);
        theta *= theta_scale;
    }
}

static void rope_apply(float *x, const float *cs, int n_rot, bool neox) {
    const int half = n_rot / 2;
    const float *cs_sin = cs + half;
    if (neox) {
        for (int i = 0; i < half; i++) {
            float x0 = x[i], x1 = x[i + half];
            x[i] = x0 * cs[i] - x1 * cs_sin[i];
            x[i + half] = x0 * cs_sin[i] + x1 * cs[i];
        }
    } else {
        for (int i = 0; i < half; i++) {
            float x0 = x[2 * i], x1 = x[2 * i + 1];
            x[2 * i] = x0 * cs[i] - x1 * cs_sin[i];
            x[2 * i + 1] = x0 * cs_sin[i] + x1 * cs[i];
        }
    }
}

/* K and V rows of KV head h, layer l, in block blk: kv_block rows of HD
 * (HDV) values, one per position of the block. */
static inline uint8_t *k_rows(const yan_fwd *f, int32_t blk, int l, int h) {
    const yan_fwd_plan *p = &f->plan;
    return f->kv + (size_t)blk * p->kv_block_bytes + (size_t)l * (p->kv_layer_k + p->kv_layer_v) +
           (size_t)h * (size_t)p->kv_block * (size_t)f->m->hp.head_dim * p->kv_elt;
}
static inline uint8_t *v_rows(const yan_fwd *f, int32_t blk, int l, int h) {
    const yan_fwd_plan *p = &f->plan;
    return f->kv + (size_t)blk * p->kv_block_bytes + (size_t)l * (p->kv_layer_k + p->kv_layer_v) + p->kv_layer_k +
           (size_t)h * (size_t)p->kv_block * (size_t)f->m->hp.head_dim_v * p->kv_elt;
}

/* ------------------------------------------------------------- a step */

/* Prepare activations x (T, ne0) for the n matrices ws (tokens [t0, t1));
 * matrices of the same type and width share one prepared copy. slot[i] is
 * the scratch used for ws[i]. priv >= 0 (one token, see `solo` below): the
 * calling thread prepares the whole token into its own row priv of the slots. */
static void prepare_group(yan_fwd *f, const yan_mat *const *ws, int n, const float *x, int T, int t0, int t1,
                          void **slot, int priv) {
    for (int i = 0; i < n; i++) {
        slot[i] = NULL;
        for (int j = 0; j < i; j++)
            if (ws[j]->type == ws[i]->type && ws[j]->ne0 == ws[i]->ne0) slot[i] = slot[j];
        if (slot[i]) continue;
        slot[i] = f->mm[i];
        if (priv >= 0) {
            slot[i] = (char *)f->mm[i] + (size_t)priv * yan_matmul_scratch_bytes(ws[i], 1);
            yan_matmul_prepare(ws[i], x, 1, 0, 1, slot[i]);
        } else if (t1 > t0) {
            yan_matmul_prepare(ws[i], x, T, t0, t1, slot[i]);
        }
    }
}

static void add_bias_rows(float *y, int64_t ldy, const float *b, int T, int64_t r0, int64_t r1) {
    if (!b || r1 <= r0) return;
    for (int t = 0; t < T; t++)
        for (int64_t r = r0; r < r1; r++) y[(int64_t)t * ldy + r] += b[r];
}

/* Attention of token t, query head h, into f->att over positions
 * 0..pos[t] of the token's sequence, one KV block (one contiguous run of
 * keys per head) at a time; s: the thread's scores row (vtmp after it). */
static void attention_head(yan_fwd *f, int l, int t, int h, float *s) {
    const yan_hparams *hp = &f->m->hp;
    const int NH = hp->n_head, HD = hp->head_dim, HDV = hp->head_dim_v;
    const int kvh = h / (NH / hp->n_head_kv);
    const int64_t QKVD = (int64_t)(NH + hp->n_head_kv) * HD + (int64_t)hp->n_head_kv * HDV;
    const float scale = 1.0f / sqrtf((float)HD);
    const int32_t *tab = f->b->table[t], n_kv = f->b->kv_len > 0 ? f->b->kv_len : f->b->pos[t] + 1,
                  bs = f->plan.kv_block;
    const float *q = f->qkv + t * QKVD + (int64_t)h * HD;
    float *o = f->att + (int64_t)t * NH * HDV + (int64_t)h * HDV;
    if (f->plan.kv_type == YAN_KV_F16) {
        /* keys/values of one KV head are contiguous rows within a block: blocked kernels */
        for (int32_t j0 = 0, i = 0; j0 < n_kv; j0 += bs, i++) {
            int32_t n = n_kv - j0 < bs ? n_kv - j0 : bs;
            yan_attn_scores_f16(q, (const uint16_t *)k_rows(f, tab[i], l, kvh), n, HD, scale, s + j0);
        }
        yan_attn_softmax(s, n_kv);
        float *vtmp = s + f->vtmp_off;
        for (int32_t j0 = 0, i = 0; j0 < n_kv; j0 += bs, i++) {
            int32_t n = n_kv - j0 < bs ? n_kv - j0 : bs;
            const uint16_t *vb = (const uint16_t *)v_rows(f, tab[i], l, kvh);
            if (i == 0) {
                yan_attn_values_f16(o, s, vb, n, HDV);
            } else {
                yan_attn_values_f16(vtmp, s + j0, vb, n, HDV);
                for (int d = 0; d < HDV; d++) o[d] += vtmp[d];
            }
        }
    } else {
        const size_t kstride = (size_t)HD * 4, vstride = (size_t)HDV * 4;
        for (int32_t j0 = 0, i = 0; j0 < n_kv; j0 += bs, i++) {
            int32_t n = n_kv - j0 < bs ? n_kv - j0 : bs;
            const uint8_t *kb = k_rows(f, tab[i], l, kvh);
            for (int32_t j = 0; j < n; j++) s[j0 + j] = kv_dot(f, q, kb + (size_t)j * kstride, HD) * scale;
        }
        yan_attn_softmax(s, n_kv);
        memset(o, 0, (size_t)HDV * 4);
        for (int32_t j0 = 0, i = 0; j0 < n_kv; j0 += bs, i++) {
            int32_t n = n_kv - j0 < bs ? n_kv - j0 : bs;
            const uint8_t *vb = v_rows(f, tab[i], l, kvh);
            for (int32_t j = 0; j < n; j++) kv_axpy(f, o, s[j0 + j], vb + (size_t)j * vstride, HDV);
        }
    }
}

static void attention_layer(yan_fwd *f, int l, int ith, int nth) {
    const int NH = f->m->hp.n_head;
    float *s = f->scores + (size_t)ith * f->scores_stride;
    for (int task = ith; task < f->b->T * NH; task += nth) attention_head(f, l, task / NH, task % NH, s);
}

/* q/k norm (qwen3), rope and KV store of token t's head h: h < NH a query
 * head, else key/value head h - NH. tmpv: HD floats of the thread's scratch. */
static void qk_head(yan_fwd *f, const yan_layer *y, int l, int t, int h, float *tmpv) {
    const yan_hparams *hp = &f->m->hp;
    const int NH = hp->n_head, NKV = hp->n_head_kv, HD = hp->head_dim, HDV = hp->head_dim_v;
    const int64_t QD = (int64_t)NH * HD, KD = (int64_t)NKV * HD, QKVD = QD + KD + (int64_t)NKV * HDV;
    float *row = f->qkv + t * QKVD;
    const float *cs = f->rope_cs + (int64_t)t * hp->n_rot;
    if (h < NH) {
        float *q = row + (int64_t)h * HD;
        if (y->q_norm) {
            yan_rmsnorm(tmpv, q, y->q_norm, HD, hp->eps);
            memcpy(q, tmpv, (size_t)HD * 4);
        }
        if (hp->n_rot > 0) rope_apply(q, cs, hp->n_rot, hp->rope_neox);
    } else {
        h -= NH;
        float *k = row + QD + (int64_t)h * HD, *v = row + QD + KD + (int64_t)h * HDV;
        if (y->k_norm) {
            yan_rmsnorm(tmpv, k, y->k_norm, HD, hp->eps);
            memcpy(k, tmpv, (size_t)HD * 4);
        }
        if (hp->n_rot > 0) rope_apply(k, cs, hp->n_rot, hp->rope_neox);
        const int32_t pos = f->b->pos[t], bs = f->plan.kv_block, blk = f->b->table[t][pos / bs];
        const size_t row_in_blk = (size_t)(pos % bs);
        kv_store(f, k_rows(f, blk, l, h) + row_in_blk * (size_t)HD * f->plan.kv_elt, k, HD);
        kv_store(f, v_rows(f, blk, l, h) + row_in_blk * (size_t)HDV * f->plan.kv_elt, v, HDV);
    }
}

static void step_worker(void *ud, int ith, int nth) {
    yan_fwd *c = ud;
    const yan_fwd_batch *b = c->b;
    const yan_model *m = c->m;
    const yan_hparams *hp = &m->hp;
    yan_pool *pool = c->pool;
    const int T = b->T, C = hp->n_embd, NH = hp->n_head, NKV = hp->n_head_kv, HD = hp->head_dim,
              HDV = hp->head_dim_v, FF = hp->n_ff;
    const int64_t QD = (int64_t)NH * HD, KD = (int64_t)NKV * HD, VD = (int64_t)NKV * HDV, QKVD = QD + KD + VD;
    const int t0 = T * ith / nth, t1 = T * (ith + 1) / nth;
    const bool gpt2 = m->arch == YAN_ARCH_GPT2;
    const bool post = hp->post_norm;         /* bert: LayerNorm after each residual add */
    const bool gelu = gpt2 || post;          /* up (+bias) -> GELU -> down, no gate */
    void *slot[3];
    /* solo: a single token (decode). Each thread then normalises and prepares
     * the matmul inputs itself, into its own row ith of xn and of the matmul
     * slots (both hold n_batch >= nth rows), so no barrier is needed between
     * preparing an input and the matmul reading it. */
    const bool solo = T == 1 && nth > 1 && nth <= c->plan.n_batch && !post;
    const int priv = solo ? ith : -1;
    float *xn_in = solo ? c->xn + (int64_t)ith * C : c->xn; /* this thread's normed input */

    /* embeddings (+ learned positions) and this step's rope angles */
    for (int t = t0; t < t1; t++) {
        float *x = c->x + (int64_t)t * C;
        const yan_mat *e = &m->tok_embd;
        yan_dequantize_row(e->type, (const uint8_t *)e->data + (size_t)b->tok[t] * e->row_bytes, x, C);
        if (m->type_embd)
            for (int i = 0; i < C; i++) x[i] += m->type_embd[i];
        if (m->pos_embd.data) {
            const yan_mat *pe = &m->pos_embd;
            float *tmp = c->tmp + (int64_t)t * C;
            yan_dequantize_row(pe->type, (const uint8_t *)pe->data + (size_t)b->pos[t] * pe->row_bytes, tmp, C);
            for (int i = 0; i < C; i++) x[i] += tmp[i];
            if (m->tok_norm) { /* bert: the residual stream starts normalised */
                yan_layernorm(tmp, x, m->tok_norm, m->tok_norm_b, C, hp->eps);
                memcpy(x, tmp, (size_t)C * 4);
            }
        } else if (hp->n_rot > 0) {
            rope_table(m, c->rope_cs + (int64_t)t * hp->n_rot, b->pos[t]);
        }
    }
    yan_pool_barrier(pool);

    for (int l = 0; l < hp->n_layer; l++) {
        const yan_layer *y = &m->layers[l];
        /* ---- attention: norm, prepare (post-norm: the previous layer's output
         * norm, applied to the residual stream itself) */
        if (solo)
            norm_row(m, xn_in, c->x, y->attn_norm, y->attn_norm_b);
        else if (post)
            for (int t = t0; t < t1; t++)
                post_norm_row(m, c->xn + (int64_t)t * C, c->x + (int64_t)t * C, l ? m->layers[l - 1].out_norm : NULL,
                              l ? m->layers[l - 1].out_norm_b : NULL);
        else
            for (int t = t0; t < t1; t++)
                norm_row(m, c->xn + (int64_t)t * C, c->x + (int64_t)t * C, y->attn_norm, y->attn_norm_b);
        const yan_mat *wqkv[3] = {&y->wq, &y->wk, &y->wv};
        int n_w = 3;
        if (y->wqkv.data) {
            wqkv[0] = &y->wqkv;
            n_w = 1;
        }
        prepare_group(c, wqkv, n_w, xn_in, T, t0, t1, slot, priv);
        if (solo && !gpt2 && NKV % nth == 0) {
            /* one token, KV heads split evenly: each thread computes the q, k,
             * v rows of its own KV heads and their query heads, ropes them and
             * runs their attention, with no barrier in between */
            const int group = NH / NKV, kv0 = NKV * ith / nth, kv1 = NKV * (ith + 1) / nth;
            const int64_t lo[3] = {(int64_t)kv0 * group * HD, (int64_t)kv0 * HD, (int64_t)kv0 * HDV};
            const int64_t hi[3] = {(int64_t)kv1 * group * HD, (int64_t)kv1 * HD, (int64_t)kv1 * HDV};
            const int64_t off[3] = {0, QD, QD + KD};
            const float *bias[3] = {y->bq, y->bk, y->bv};
            for (int i = 0; i < 3; i++) {
                yan_matmul_rows(wqkv[i], slot[i], xn_in, 1, c->qkv + off[i], QKVD, lo[i], hi[i]);
                add_bias_rows(c->qkv + off[i], QKVD, bias[i], 1, lo[i], hi[i]);
            }
            float *tmpv = c->scores + (size_t)ith * c->scores_stride;
            for (int h = kv0 * group; h < kv1 * group; h++) qk_head(c, y, l, 0, h, tmpv);
            for (int h = kv0; h < kv1; h++) qk_head(c, y, l, 0, NH + h, tmpv);
            for (int h = kv0 * group; h < kv1 * group; h++) attention_head(c, l, 0, h, tmpv);
            yan_pool_barrier(pool);
        } else {
            if (!solo) yan_pool_barrier(pool);
            /* ---- q, k, v rows (+ bias) */
            {
                int64_t off[3] = {0, QD, QD + KD};
                const float *bias[3] = {y->bq, y->bk, y->bv};
                if (y->wqkv.data) bias[0] = y->bqkv;
                for (int i = 0; i < n_w; i++) {
                    int64_t r0, r1;
                    my_rows(wqkv, n_w, i, ith, nth, &r0, &r1);
                    if (r1 <= r0) continue;
                    yan_matmul_rows(wqkv[i], slot[i], xn_in, T, c->qkv + off[i], QKVD, r0, r1);
                    add_bias_rows(c->qkv + off[i], QKVD, bias[i], T, r0, r1);
                }
            }
            yan_pool_barrier(pool);
            /* ---- per head: q/k norm (qwen3), rope, KV store */
            {
                float *tmpv = c->scores + (size_t)ith * c->scores_stride;
                for (int task = ith; task < T * (NH + NKV); task += nth)
                    qk_head(c, y, l, task / (NH + NKV), task % (NH + NKV), tmpv);
            }
            yan_pool_barrier(pool);
            /* ---- attention */
            attention_layer(c, l, ith, nth);
            yan_pool_barrier(pool);
        }
        /* ---- output projection + residual */
        {
            const yan_mat *wo[1] = {&y->wo};
            prepare_group(c, wo, 1, c->att, T, t0, t1, slot, priv);
            if (!solo) yan_pool_barrier(pool);
            int64_t r0, r1;
            my_rows(wo, 1, 0, ith, nth, &r0, &r1);
            if (r1 > r0) {
                yan_matmul_rows(wo[0], slot[0], c->att, T, c->tmp, C, r0, r1);
                for (int t = 0; t < T; t++) {
                    float *x = c->x + (int64_t)t * C;
                    const float *o = c->tmp + (int64_t)t * C;
                    if (y->bo)
                        for (int64_t r = r0; r < r1; r++) x[r] += o[r] + y->bo[r];
                    else
                        for (int64_t r = r0; r < r1; r++) x[r] += o[r];
                }
            }
        }
        yan_pool_barrier(pool);
        /* ---- feed-forward: norm, prepare */
        if (solo)
            norm_row(m, xn_in, c->x, y->ffn_norm, y->ffn_norm_b);
        else if (post)
            for (int t = t0; t < t1; t++)
                post_norm_row(m, c->xn + (int64_t)t * C, c->x + (int64_t)t * C, y->attn_out_norm, y->attn_out_norm_b);
        else
            for (int t = t0; t < t1; t++)
                norm_row(m, c->xn + (int64_t)t * C, c->x + (int64_t)t * C, y->ffn_norm, y->ffn_norm_b);
        const yan_mat *wgu[2] = {&y->w_up, &y->w_gate};
        int n_gu = gelu ? 1 : 2;
        prepare_group(c, wgu, n_gu, xn_in, T, t0, t1, slot, priv);
        if (!solo) yan_pool_barrier(pool);
        /* ---- gate/up rows + activation (same rows on one thread) */
        {
            int64_t r0, r1;
            my_rows(wgu, 1, 0, ith, nth, &r0, &r1);
            if (r1 > r0) {
                yan_matmul_rows(&y->w_up, slot[0], xn_in, T, c->up, FF, r0, r1);
                if (gelu) {
                    add_bias_rows(c->up, FF, y->b_up, T, r0, r1);
                    for (int t = 0; t < T; t++) yan_gelu(c->up + (int64_t)t * FF + r0, r1 - r0);
                } else {
                    yan_matmul_rows(&y->w_gate, slot[1], xn_in, T, c->gate, FF, r0, r1);
                    for (int t = 0; t < T; t++)
                        yan_silu_mul(c->gate + (int64_t)t * FF + r0, c->up + (int64_t)t * FF + r0, r1 - r0);
                }
            }
        }
        yan_pool_barrier(pool);
        /* ---- down projection + residual */
        {
            const yan_mat *wd[1] = {&y->w_down};
            const float *in = gelu ? c->up : c->gate;
            prepare_group(c, wd, 1, in, T, t0, t1, slot, priv);
            if (!solo) yan_pool_barrier(pool);
            int64_t r0, r1;
            my_rows(wd, 1, 0, ith, nth, &r0, &r1);
            if (r1 > r0) {
                yan_matmul_rows(wd[0], slot[0], in, T, c->tmp, C, r0, r1);
                for (int t = 0; t < T; t++) {
                    float *x = c->x + (int64_t)t * C;
                    const float *o = c->tmp + (int64_t)t * C;
                    if (y->b_down)
                        for (int64_t r = r0; r < r1; r++) x[r] += o[r] + y->b_down[r];
                    else
                        for (int64_t r = r0; r < r1; r++) x[r] += o[r];
                }
            }
        }
        yan_pool_barrier(pool);
    }

    /* ---- final norm and logits (or hidden states) for the tokens asked */
    if (b->n_out == 0) return;
    const int NO = b->n_out;
    const int o0 = NO * ith / nth, o1 = NO * (ith + 1) / nth;
    if (!b->logits) {
        /* hidden states only: rows 0..NO of xn, read after the run */
        for (int i = o0; i < o1; i++)
            norm_row(m, c->xn + (int64_t)i * C, c->x + (int64_t)b->out_tok[i] * C, m->output_norm,
                     m->output_norm_b);
        return;
    }
    const bool osolo = NO == 1 && nth > 1 && nth <= c->plan.n_batch;
    float *oin = osolo ? c->xn + (int64_t)ith * C : c->xn;
    if (osolo)
        norm_row(m, oin, c->x + (int64_t)b->out_tok[0] * C, m->output_norm, m->output_norm_b);
    else
        for (int i = o0; i < o1; i++)
            norm_row(m, c->xn + (int64_t)i * C, c->x + (int64_t)b->out_tok[i] * C, m->output_norm,
                     m->output_norm_b);
    const yan_mat *wout[1] = {&m->output};
    prepare_group(c, wout, 1, oin, NO, o0, o1, slot, osolo ? ith : -1);
    if (!osolo) yan_pool_barrier(pool);
    int64_t r0, r1;
    my_rows(wout, 1, 0, ith, nth, &r0, &r1);
    if (r1 > r0) yan_matmul_rows(wout[0], slot[0], oin, NO, b->logits, hp->n_vocab, r0, r1);
}

void yan_fwd_eval(yan_fwd *f, const yan_fwd_batch *b) {
    YAN_ASSERT(b->T >= 1 && b->T <= f->plan.n_batch && b->n_out >= 0 && b->n_out <= b->T);
    f->b = b;
    yan_pool_run(f->pool, step_worker, f);
    f->b = NULL;
}

/* ------------------------------------------------------------- yan_eval */

static yan_status check_tokens(const yan_model *m, const yan_token *tokens, size_t n) {
    const int32_t V = m->hp.n_vocab;
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return yan_fail(YAN_ERR_INVALID_ARG, "token %zu has id %d, outside the vocabulary [0, %d)", i, tokens[i],
                            V);
    return YAN_OK;
}

/* The step of tokens[0..T) at positions n_past.. of the context's one block. */
static void ctx_batch(yan_context *c, yan_fwd_batch *b, const yan_token *tokens, int T) {
    for (int t = 0; t < T; t++) c->pos[t] = c->n_past + t;
    memset(b, 0, sizeof *b);
    b->T = T;
    b->tok = tokens;
    b->pos = c->pos;
    b->table = c->tables;
}

yan_status yan_eval(yan_context *c, const yan_token *tokens, size_t n, bool all_logits) {
    if (!c) return yan_fail(YAN_ERR_INVALID_ARG, "yan_eval: no context");
    if (n == 0 || !tokens) return yan_fail(YAN_ERR_INVALID_ARG, "yan_eval: no tokens given");
    const yan_fwd_plan *p = &c->f->plan;
    const int32_t V = c->f->m->hp.n_vocab;
    if (!yan_model_has_lm_head(c->f->m) || !c->f->m->hp.causal)
        return yan_fail(YAN_ERR_UNSUPPORTED, "this %s model computes embeddings only (no output layer%s): use "
                        "yan_embed (`yan embed`)", c->f->m->arch_name, c->f->m->hp.causal ? "" : ", bidirectional attention");
    if (n > (size_t)(p->n_ctx - c->n_past))
        return yan_fail(YAN_ERR_CONTEXT_FULL, "%zu tokens do not fit: the context holds %d of %d tokens", n, c->n_past,
                        p->n_ctx);
    yan_status st = check_tokens(c->f->m, tokens, n);
    if (st) return st;
    if (all_logits && (int64_t)n > c->logits_cap) {
        float *lg = yan_realloc(c->logits, n * (size_t)V * sizeof(float));
        if (!lg) return yan_fail(YAN_ERR_NOMEM, "out of memory for the logits of %zu tokens", n);
        c->logits = lg;
        c->logits_cap = (int64_t)n;
    }
    c->last_n = 0;
    for (size_t done = 0; done < n;) {
        int T = (int)((n - done) < (size_t)p->n_batch ? (n - done) : (size_t)p->n_batch);
        bool last = done + (size_t)T == n;
        yan_fwd_batch b;
        ctx_batch(c, &b, tokens + done, T);
        if (all_logits) {
            b.n_out = T;
            b.out_tok = c->iota;
            b.logits = c->logits + done * (size_t)V;
        } else {
            b.n_out = last ? 1 : 0;
            b.out_tok = c->iota + T - 1;
            b.logits = c->logits;
        }
        yan_fwd_eval(c->f, &b);
        c->n_past += T;
        done += (size_t)T;
    }
    c->last_n = (int32_t)n;
    c->last_all = all_logits;
    return YAN_OK;
}

const float *yan_logits(const yan_context *c, int32_t i) {
    if (!c || c->last_n == 0) return NULL;
    if (i == -1) i = c->last_n - 1;
    if (i < 0 || i >= c->last_n) return NULL;
    if (c->last_all) return c->logits + (size_t)i * (size_t)c->f->m->hp.n_vocab;
    return i == c->last_n - 1 ? c->logits : NULL;
}

/* ---------------------------------------------------------- embeddings */

void yan_embed_finish(const double *sum, int32_t C, int64_t n, float *out) {
    double ss = 0;
    for (int32_t i = 0; i < C; i++) {
        double v = sum[i] / (double)n;
        ss += v * v;
    }
    double inv = ss > 0 ? 1.0 / sqrt(ss) : 0.0;
    for (int32_t i = 0; i < C; i++) out[i] = (float)(sum[i] / (double)n * inv);
}

yan_status yan_fwd_embed(yan_fwd *f, const yan_token *tokens, int32_t n, const int32_t *table, int32_t *pos,
                         const int32_t **tables, int32_t *out_tok, yan_pooling pooling, float *out) {
    const yan_model *m = f->m;
    const int32_t C = m->hp.n_embd, B = f->plan.n_batch;
    if (pooling == YAN_POOLING_MODEL) pooling = m->hp.pooling;
    if (!yan_pooling_name(pooling)) return yan_fail(YAN_ERR_INVALID_ARG, "unknown pooling %d", (int)pooling);
    const bool causal = m->hp.causal;
    if (!causal && n > B)
        return yan_fail(YAN_ERR_INVALID_ARG, "%d tokens do not fit in one step of %d (bidirectional attention)", n, B);
    double *sum = yan_calloc((size_t)C, sizeof *sum);
    if (!sum) return yan_fail(YAN_ERR_NOMEM, "out of memory for an embedding");
    int64_t n_pooled = 0;
    for (int32_t done = 0; done < n;) {
        const int32_t T = n - done < B ? n - done : B;
        for (int32_t t = 0; t < T; t++) {
            pos[t] = done + t;
            tables[t] = table;
            out_tok[t] = t;
        }
        yan_fwd_batch b = {.T = T, .tok = tokens + done, .pos = pos, .table = tables, .out_tok = out_tok,
                           .kv_len = causal ? 0 : n};
        /* only the pooled rows go through the final norm */
        if (pooling == YAN_POOLING_MEAN) b.n_out = T;
        else if (pooling == YAN_POOLING_CLS) b.n_out = done == 0;
        else if (done + T == n) {
            b.n_out = 1;
            b.out_tok = out_tok + T - 1;
        }
        yan_fwd_eval(f, &b);
        const float *h = yan_fwd_hidden(f);
        for (int32_t r = 0; r < b.n_out; r++)
            for (int32_t i = 0; i < C; i++) sum[i] += h[(size_t)r * (size_t)C + (size_t)i];
        n_pooled += b.n_out;
        done += T;
    }
    yan_embed_finish(sum, C, n_pooled, out);
    yan_free(sum);
    return YAN_OK;
}

yan_status yan_embed_pooled(yan_context *c, const yan_token *tokens, size_t n, yan_pooling pooling, float *out,
                            size_t cap) {
    if (!c || !tokens || n == 0 || !out)
        return yan_fail(YAN_ERR_INVALID_ARG, "yan_embed: no context, tokens or output");
    const yan_model *m = c->f->m;
    const int32_t C = m->hp.n_embd;
    const yan_fwd_plan *p = &c->f->plan;
    if (cap < (size_t)C)
        return yan_fail(YAN_ERR_TOO_SMALL, "yan_embed: the output holds %zu floats, the model's embeddings have %d",
                        cap, C);
    if (n > (size_t)p->n_ctx)
        return yan_fail(YAN_ERR_CONTEXT_FULL, "%zu tokens do not fit in a context of %d tokens", n, p->n_ctx);
    if (pooling != YAN_POOLING_MODEL && !yan_pooling_name(pooling))
        return yan_fail(YAN_ERR_INVALID_ARG, "yan_embed: unknown pooling %d", (int)pooling);
    yan_status st = check_tokens(m, tokens, n);
    if (st) return st;
    st = yan_fwd_embed(c->f, tokens, (int32_t)n, c->table, c->pos, c->tables, c->iota, pooling, out);
    if (st == YAN_OK) { /* the cache now holds this text's K/V, which nothing may continue */
        c->n_past = 0;
        c->last_n = 0;
    }
    return st;
}

yan_status yan_embed(yan_context *c, const yan_token *tokens, size_t n, float *out, size_t cap) {
    return yan_embed_pooled(c, tokens, n, YAN_POOLING_MODEL, out, cap);
}
