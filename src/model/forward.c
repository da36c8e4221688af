/* forward.c — contexts (KV cache, scratch, thread pool) and the forward pass.
 *
 * yan_eval runs the transformer over n tokens in steps of at most n_batch.
 * One step is ONE yan_pool_run: every thread walks the same sequence of
 * phases separated by yan_pool_barrier —
 *   embed | per layer: norm+prepare | q,k,v rows | bias/qk-norm/rope/KV store
 *   | attention | prepare | wo rows + residual | norm+prepare | gate,up rows
 *   + activation | prepare | down rows + residual | final norm+prepare |
 *   output rows.
 * Matmul phases split the OUTPUT ROWS across threads (weighted by bytes, so
 * decode reads each weight once, spread over all cores); token-wise phases
 * split tokens; attention splits (token, head) pairs. Decode (one token)
 * drops the barriers after each norm+prepare (every thread prepares its own
 * copy) and, when the KV heads split evenly, fuses q,k,v rows + rope + KV
 * store + attention into one phase per thread's KV heads: 4 barriers a layer
 * instead of 10. No allocation happens in
 * a step: everything is carved at context creation for n_batch tokens. The
 * only exception is the logits buffer, grown when all_logits is asked for more
 * tokens than it holds (checked before anything is evaluated).
 *
 * KV cache: per layer, K then V, each (NKV, NCTX, HD) in f16 or f32, so the
 * keys of one head are contiguous over positions: decode attention streams
 * them. Math follows llama.cpp for each architecture (see model.h). RoPE is
 * computed here (not yan_rope) because Llama 3 files carry per-dimension
 * frequency divisors (rope_freqs.weight), with llama.cpp's exact recurrence
 * for the angles (theta_{i+1} = theta_i * base^(-2/n_rot) in float).
 * Dependencies: model.h, tensor.h kernels, pool.h. */
#include "model/model.h"

#include <math.h>

#define ALIGN 64
#define ROW_ALIGN 16  /* matmul row ranges start at multiples of this */

struct yan_context {
    yan_model *m;
    yan_ctx_plan plan;
    yan_kv_type kv_type;
    yan_pool *pool;
    int32_t n_past;
    uint8_t *kv;               /* (L) x [K (NKV, NCTX, HD) | V (NKV, NCTX, HDV)] */
    uint8_t *scratch;          /* one block carved below */
    float *x;                  /* (B, C) residual stream */
    float *xn;                 /* (B, C) normed input of a matmul */
    float *qkv;                /* (B, QD + KD + VD): q | k | v per token */
    float *att;                /* (B, NH*HDV) attention output */
    float *tmp;                /* (B, C) matmul output before the residual add */
    float *gate, *up;          /* (B, FF) */
    float *rope_cs;            /* (B, n_rot): n_rot/2 cosines then n_rot/2 sines */
    float *scores;             /* (nth, max(NCTX, HD)) per-thread attention row */
    size_t scores_stride;
    void *mm[3];               /* prepared activations for up to 3 matmuls at once */
    float *logits;             /* (logits_cap, V) */
    int64_t logits_cap;
    int32_t last_n;            /* tokens of the last yan_eval; 0 = no logits */
    bool last_all;
    /* the step being run */
    const yan_token *tok;
    int T;
    int32_t pos0;
    int out_first, n_out;      /* tokens of the step that produce logits */
    float *out;                /* where their logits go (ldy = V) */
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

/* scratch regions in floats (aligned each); NULL base = just size them */
typedef struct { size_t x, xn, qkv, att, tmp, gate, up, rope, scores, scores_stride, mm; } scratch_sizes;

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
    s.scores_stride = (size_t)(n_ctx > hp->head_dim ? n_ctx : hp->head_dim);
    s.scores_stride = (s.scores_stride + 15) & ~(size_t)15;
    s.scores = al((size_t)nth * s.scores_stride * 4);
    s.mm = al(yan_model_matmul_scratch(m, B));
    return s;
}

static size_t sizes_total(const scratch_sizes *s) {
    return s->x + s->xn + s->qkv + s->att + s->tmp + s->gate + s->up + s->rope + s->scores + 3 * s->mm + ALIGN;
}

yan_status yan_ctx_plan_make(const yan_model *m, const yan_context_params *p, yan_ctx_plan *out) {
    const yan_hparams *hp = &m->hp;
    memset(out, 0, sizeof *out);
    int32_t n_ctx = p->n_ctx > 0 ? p->n_ctx : hp->n_ctx_train;
    if (p->n_ctx < 0 || n_ctx > (1 << 24))
        return yan_fail(YAN_ERR_INVALID_ARG, "context length %d is out of range [1, %d]", p->n_ctx, 1 << 24);
    if (hp->layernorm && n_ctx > hp->n_ctx_train)
        return yan_fail(YAN_ERR_INVALID_ARG,
                        "context length %d exceeds the %d positions this %s model has learned embeddings for", n_ctx,
                        hp->n_ctx_train, m->arch_name);
    if (p->kv_type != YAN_KV_F16 && p->kv_type != YAN_KV_F32)
        return yan_fail(YAN_ERR_INVALID_ARG, "unknown KV cache type %d", (int)p->kv_type);
    if (p->n_batch < 0) return yan_fail(YAN_ERR_INVALID_ARG, "n_batch %d is negative", p->n_batch);
    int32_t B = p->n_batch > 0 ? p->n_batch : 512;
    if (B > n_ctx) B = n_ctx;
    out->n_ctx = n_ctx;
    out->n_batch = B;
    out->n_threads = yan_threads_resolve(p->n_threads);
    out->kv_elt = p->kv_type == YAN_KV_F32 ? 4 : 2;
    size_t k, v;
    if (yan_mul_ovf((size_t)hp->n_head_kv * (size_t)hp->head_dim * out->kv_elt, (size_t)n_ctx, &k) ||
        yan_mul_ovf((size_t)hp->n_head_kv * (size_t)hp->head_dim_v * out->kv_elt, (size_t)n_ctx, &v) ||
        yan_mul_ovf(k + v, (size_t)hp->n_layer, &out->kv_bytes))
        return yan_fail(YAN_ERR_INVALID_ARG, "the KV cache for %d tokens does not fit in memory", n_ctx);
    out->kv_layer_k = k;
    out->kv_layer_v = v;
    scratch_sizes s = sizes_for(m, n_ctx, B, out->n_threads);
    out->scratch_bytes = sizes_total(&s) + (size_t)hp->n_vocab * 4;
    return YAN_OK;
}

uint64_t yan_context_bytes(const yan_model *m, const yan_context_params *p) {
    yan_context_params dp = yan_context_params_default();
    yan_ctx_plan plan;
    if (yan_ctx_plan_make(m, p ? p : &dp, &plan)) return 0;
    return (uint64_t)plan.kv_bytes + (uint64_t)plan.scratch_bytes;
}

/* ------------------------------------------------------------- context */

yan_status yan_context_new(yan_model *m, const yan_context_params *p, yan_context **out) {
    if (!out) return yan_fail(YAN_ERR_INVALID_ARG, "yan_context_new: out is NULL");
    *out = NULL;
    if (!m) return yan_fail(YAN_ERR_INVALID_ARG, "yan_context_new: no model");
    yan_context_params dp = yan_context_params_default();
    if (!p) p = &dp;
    yan_context *c = yan_calloc(1, sizeof *c);
    if (!c) return yan_fail(YAN_ERR_NOMEM, "out of memory creating a context");
    yan_status st = yan_ctx_plan_make(m, p, &c->plan);
    if (st) {
        yan_free(c);
        return st;
    }
    c->m = m;
    c->kv_type = p->kv_type;
    scratch_sizes s = sizes_for(m, c->plan.n_ctx, c->plan.n_batch, c->plan.n_threads);
    c->kv = yan_malloc(c->plan.kv_bytes ? c->plan.kv_bytes : 1);
    c->scratch = yan_malloc(sizes_total(&s));
    c->logits = yan_malloc((size_t)m->hp.n_vocab * sizeof(float));
    c->logits_cap = 1;
    if (!c->kv || !c->scratch || !c->logits) {
        st = yan_fail(YAN_ERR_NOMEM, "out of memory allocating a context of %d tokens (%.1f MiB KV cache)",
                      c->plan.n_ctx, (double)c->plan.kv_bytes / 1048576.0);
        yan_context_free(c);
        return st;
    }
    uint8_t *b = (uint8_t *)(((uintptr_t)c->scratch + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1));
#define CARVE(field, bytes) (c->field = (void *)b, b += (bytes))
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
    c->scores_stride = s.scores_stride;
    if ((st = yan_pool_new(c->plan.n_threads, &c->pool))) {
        yan_context_free(c);
        return st;
    }
    /* the scores region was sized for n_threads; the pool never has more */
    *out = c;
    return YAN_OK;
}

void yan_context_free(yan_context *c) {
    if (!c) return;
    yan_pool_free(c->pool);
    yan_free(c->kv);
    yan_free(c->scratch);
    yan_free(c->logits);
    yan_free(c);
}

const yan_model *yan_context_model(const yan_context *c) { return c->m; }
int32_t yan_context_n_ctx(const yan_context *c) { return c->plan.n_ctx; }
int32_t yan_context_n_past(const yan_context *c) { return c->n_past; }

yan_status yan_context_truncate(yan_context *c, int32_t n_past) {
    if (n_past < 0 || n_past > c->n_past)
        return yan_fail(YAN_ERR_INVALID_ARG, "cannot truncate a context of %d tokens to %d", c->n_past, n_past);
    c->n_past = n_past;
    c->last_n = 0;
    return YAN_OK;
}

/* ----------------------------------------------- attention vector helpers */

static inline float kv_dot(const yan_context *c, const float *q, const void *k, int n) {
    return c->kv_type == YAN_KV_F32 ? yan_dot_f32(q, k, n) : yan_dot_f16(q, k, n);
}

static inline void kv_axpy(const yan_context *c, float *y, float a, const void *v, int n) {
    if (c->kv_type == YAN_KV_F32) yan_axpy_f32(y, a, v, n);
    else yan_axpy_f16(y, a, v, n);
}

static inline void kv_store(const yan_context *c, void *dst, const float *x, int n) {
    if (c->kv_type == YAN_KV_F32) memcpy(dst, x, (size_t)n * 4);
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

static void rope_table(const yan_context *c, float *cs, int32_t pos) {
    const yan_hparams *hp = &c->m->hp;
    const int half = hp->n_rot / 2;
    const float theta_scale = powf(hp->rope_base, -2.0f / (float)hp->n_rot);
    const float *ff = c->m->rope_freqs;
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

static inline uint8_t *k_at(const yan_context *c, int l, int h, int32_t pos) {
    const yan_ctx_plan *p = &c->plan;
    return c->kv + (size_t)l * (p->kv_layer_k + p->kv_layer_v) +
           ((size_t)h * (size_t)p->n_ctx + (size_t)pos) * (size_t)c->m->hp.head_dim * p->kv_elt;
}
static inline uint8_t *v_at(const yan_context *c, int l, int h, int32_t pos) {
    const yan_ctx_plan *p = &c->plan;
    return c->kv + (size_t)l * (p->kv_layer_k + p->kv_layer_v) + p->kv_layer_k +
           ((size_t)h * (size_t)p->n_ctx + (size_t)pos) * (size_t)c->m->hp.head_dim_v * p->kv_elt;
}

/* ------------------------------------------------------------- a step */

/* Prepare activations x (T, ne0) for the n matrices ws (tokens [t0, t1));
 * matrices of the same type and width share one prepared copy. slot[i] is
 * the scratch used for ws[i]. priv >= 0 (one token, see `solo` below): the
 * calling thread prepares the whole token into its own row priv of the slots. */
static void prepare_group(yan_context *c, const yan_mat *const *ws, int n, const float *x, int T, int t0, int t1,
                          void **slot, int priv) {
    for (int i = 0; i < n; i++) {
        slot[i] = NULL;
        for (int j = 0; j < i; j++)
            if (ws[j]->type == ws[i]->type && ws[j]->ne0 == ws[i]->ne0) slot[i] = slot[j];
        if (slot[i]) continue;
        slot[i] = c->mm[i];
        if (priv >= 0) {
            slot[i] = (char *)c->mm[i] + (size_t)priv * yan_matmul_scratch_bytes(ws[i], 1);
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

/* Attention of token t, query head h, into c->att; s: the thread's scores row. */
static void attention_head(yan_context *c, int l, int t, int h, float *s) {
    const yan_model *m = c->m;
    const yan_hparams *hp = &m->hp;
    const int NH = hp->n_head, HD = hp->head_dim, HDV = hp->head_dim_v;
    const int group = NH / hp->n_head_kv;
    const int64_t QKVD = (int64_t)(NH + hp->n_head_kv) * HD + (int64_t)hp->n_head_kv * HDV;
    const float scale = 1.0f / sqrtf((float)HD);
    {
        int kvh = h / group;
        int32_t n_kv = c->pos0 + t + 1;
        const float *q = c->qkv + t * QKVD + (int64_t)h * HD;
        const uint8_t *kb = k_at(c, l, kvh, 0), *vb = v_at(c, l, kvh, 0);
        size_t kstride = (size_t)HD * c->plan.kv_elt, vstride = (size_t)HDV * c->plan.kv_elt;
        float *o = c->att + (int64_t)t * NH * HDV + (int64_t)h * HDV;
        if (c->kv_type == YAN_KV_F16) {
            /* keys/values of one KV head are contiguous rows: blocked kernels */
            yan_attn_scores_f16(q, (const uint16_t *)kb, n_kv, HD, scale, s);
            yan_attn_softmax(s, n_kv);
            yan_attn_values_f16(o, s, (const uint16_t *)vb, n_kv, HDV);
        } else {
            for (int32_t j = 0; j < n_kv; j++) s[j] = kv_dot(c, q, kb + (size_t)j * kstride, HD) * scale;
            yan_attn_softmax(s, n_kv);
            memset(o, 0, (size_t)HDV * 4);
            for (int32_t j = 0; j < n_kv; j++) kv_axpy(c, o, s[j], vb + (size_t)j * vstride, HDV);
        }
    }
}

static void attention_layer(yan_context *c, int l, int ith, int nth) {
    const int NH = c->m->hp.n_head;
    float *s = c->scores + (size_t)ith * c->scores_stride;
    for (int task = ith; task < c->T * NH; task += nth) attention_head(c, l, task / NH, task % NH, s);
}

/* q/k norm (qwen3), rope and KV store of token t's head h: h < NH a query
 * head, else key/value head h - NH. tmpv: HD floats of the thread's scratch. */
static void qk_head(yan_context *c, const yan_layer *y, int l, int t, int h, float *tmpv) {
    const yan_hparams *hp = &c->m->hp;
    const int NH = hp->n_head, NKV = hp->n_head_kv, HD = hp->head_dim, HDV = hp->head_dim_v;
    const int64_t QD = (int64_t)NH * HD, KD = (int64_t)NKV * HD, QKVD = QD + KD + (int64_t)NKV * HDV;
    float *row = c->qkv + t * QKVD;
    const float *cs = c->rope_cs + (int64_t)t * hp->n_rot;
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
        kv_store(c, k_at(c, l, h, c->pos0 + t), k, HD);
        kv_store(c, v_at(c, l, h, c->pos0 + t), v, HDV);
    }
}

static void step_worker(void *ud, int ith, int nth) {
    yan_context *c = ud;
    const yan_model *m = c->m;
    const yan_hparams *hp = &m->hp;
    yan_pool *pool = c->pool;
    const int T = c->T, C = hp->n_embd, NH = hp->n_head, NKV = hp->n_head_kv, HD = hp->head_dim,
              HDV = hp->head_dim_v, FF = hp->n_ff;
    const int64_t QD = (int64_t)NH * HD, KD = (int64_t)NKV * HD, VD = (int64_t)NKV * HDV, QKVD = QD + KD + VD;
    const int t0 = T * ith / nth, t1 = T * (ith + 1) / nth;
    const bool gpt2 = m->arch == YAN_ARCH_GPT2;
    void *slot[3];
    /* solo: a single token (decode). Each thread then normalises and prepares
     * the matmul inputs itself, into its own row ith of xn and of the matmul
     * slots (both hold n_batch >= nth rows), so no barrier is needed between
     * preparing an input and the matmul reading it. */
    const bool solo = T == 1 && nth > 1 && nth <= c->plan.n_batch;
    const int priv = solo ? ith : -1;
    float *xn_in = solo ? c->xn + (int64_t)ith * C : c->xn; /* this thread's normed input */

    /* embeddings (+ learned positions) and this step's rope angles */
    for (int t = t0; t < t1; t++) {
        float *x = c->x + (int64_t)t * C;
        const yan_mat *e = &m->tok_embd;
        yan_dequantize_row(e->type, (const uint8_t *)e->data + (size_t)c->tok[t] * e->row_bytes, x, C);
        if (gpt2) {
            const yan_mat *pe = &m->pos_embd;
            float *tmp = c->tmp + (int64_t)t * C;
            yan_dequantize_row(pe->type, (const uint8_t *)pe->data + (size_t)(c->pos0 + t) * pe->row_bytes, tmp, C);
            for (int i = 0; i < C; i++) x[i] += tmp[i];
        } else if (hp->n_rot > 0) {
            rope_table(c, c->rope_cs + (int64_t)t * hp->n_rot, c->pos0 + t);
        }
    }
    yan_pool_barrier(pool);

    for (int l = 0; l < hp->n_layer; l++) {
        const yan_layer *y = &m->layers[l];
        /* ---- attention: norm, prepare */
        if (solo)
            norm_row(m, xn_in, c->x, y->attn_norm, y->attn_norm_b);
        else
            for (int t = t0; t < t1; t++)
                norm_row(m, c->xn + (int64_t)t * C, c->x + (int64_t)t * C, y->attn_norm, y->attn_norm_b);
        const yan_mat *wqkv[3] = {&y->wq, &y->wk, &y->wv};
        int n_w = 3;
        if (gpt2) {
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
                if (gpt2) bias[0] = y->bqkv;
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
        else
            for (int t = t0; t < t1; t++)
                norm_row(m, c->xn + (int64_t)t * C, c->x + (int64_t)t * C, y->ffn_norm, y->ffn_norm_b);
        const yan_mat *wgu[2] = {&y->w_up, &y->w_gate};
        int n_gu = gpt2 ? 1 : 2;
        prepare_group(c, wgu, n_gu, xn_in, T, t0, t1, slot, priv);
        if (!solo) yan_pool_barrier(pool);
        /* ---- gate/up rows + activation (same rows on one thread) */
        {
            int64_t r0, r1;
            my_rows(wgu, 1, 0, ith, nth, &r0, &r1);
            if (r1 > r0) {
                yan_matmul_rows(&y->w_up, slot[0], xn_in, T, c->up, FF, r0, r1);
                if (gpt2) {
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
            const float *in = gpt2 ? c->up : c->gate;
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

    /* ---- final norm and logits for the tokens asked */
    if (c->n_out == 0) return;
    const int NO = c->n_out;
    const int o0 = NO * ith / nth, o1 = NO * (ith + 1) / nth;
    const bool osolo = NO == 1 && nth > 1 && nth <= c->plan.n_batch;
    float *oin = osolo ? c->xn + (int64_t)ith * C : c->xn;
    if (osolo)
        norm_row(m, oin, c->x + (int64_t)c->out_first * C, m->output_norm, m->output_norm_b);
    else
        for (int i = o0; i < o1; i++)
            norm_row(m, c->xn + (int64_t)i * C, c->x + (int64_t)(c->out_first + i) * C, m->output_norm,
                     m->output_norm_b);
    const yan_mat *wout[1] = {&m->output};
    prepare_group(c, wout, 1, oin, NO, o0, o1, slot, osolo ? ith : -1);
    if (!osolo) yan_pool_barrier(pool);
    int64_t r0, r1;
    my_rows(wout, 1, 0, ith, nth, &r0, &r1);
    if (r1 > r0) yan_matmul_rows(wout[0], slot[0], oin, NO, c->out, hp->n_vocab, r0, r1);
}

/* ------------------------------------------------------------- yan_eval */

yan_status yan_eval(yan_context *c, const yan_token *tokens, size_t n, bool all_logits) {
    if (!c) return yan_fail(YAN_ERR_INVALID_ARG, "yan_eval: no context");
    if (n == 0 || !tokens) return yan_fail(YAN_ERR_INVALID_ARG, "yan_eval: no tokens given");
    const yan_model *m = c->m;
    const int32_t V = m->hp.n_vocab;
    if (n > (size_t)(c->plan.n_ctx - c->n_past))
        return yan_fail(YAN_ERR_CONTEXT_FULL, "%zu tokens do not fit: the context holds %d of %d tokens", n, c->n_past,
                        c->plan.n_ctx);
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return yan_fail(YAN_ERR_INVALID_ARG, "token %zu has id %d, outside the vocabulary [0, %d)", i, tokens[i], V);
    if (all_logits && (int64_t)n > c->logits_cap) {
        float *p = yan_realloc(c->logits, n * (size_t)V * sizeof(float));
        if (!p) return yan_fail(YAN_ERR_NOMEM, "out of memory for the logits of %zu tokens", n);
        c->logits = p;
        c->logits_cap = (int64_t)n;
    }
    c->last_n = 0;
    for (size_t done = 0; done < n;) {
        int T = (int)((n - done) < (size_t)c->plan.n_batch ? (n - done) : (size_t)c->plan.n_batch);
        bool last = done + (size_t)T == n;
        c->tok = tokens + done;
        c->T = T;
        c->pos0 = c->n_past;
        if (all_logits) {
            c->out_first = 0;
            c->n_out = T;
            c->out = c->logits + done * (size_t)V;
        } else {
            c->out_first = T - 1;
            c->n_out = last ? 1 : 0;
            c->out = c->logits;
        }
        yan_pool_run(c->pool, step_worker, c);
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
    if (c->last_all) return c->logits + (size_t)i * (size_t)c->m->hp.n_vocab;
    return i == c->last_n - 1 ? c->logits : NULL;
}
