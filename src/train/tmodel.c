/* tmodel.c — the trainable `llama` model of tmodel.h: parameter table, seeded
 * initialisation, GGUF in and out, and the training forward and backward
 * passes.
 *
 * Dimension vocabulary: B sequences of T tokens (BT = B * T rows), C = n_embd,
 * L layers, NH query heads and NKV kv heads of HD = C / NH, KD = NKV * HD,
 * QKVD = C + 2 KD, FF, V. Activations are row-major (BT, width).
 *
 * Layout of the parameter block: every tensor starts at a multiple of 16
 * floats (64 bytes), except attn_k and attn_v, which follow attn_q directly,
 * and ffn_up, which follows ffn_gate: q|k|v is then one (QKVD x C) matrix and
 * gate|up one (2FF x C) matrix, so each takes one GEMM forward and two
 * backward. The padding floats belong to no tensor and stay zero.
 *
 * Work: the big products go through yan_sgemm on the model's pool (called
 * from the caller's thread between pool runs); everything else runs in pool
 * runs split so that results do not depend on the thread count:
 *  - row phases (norms, residual adds, SwiGLU, RoPE, cross-entropy) split the
 *    BT rows, each row computed alone;
 *  - reductions over rows (norm weight gradients, embedding scatter-add) split
 *    the COLUMNS, each column summed over the rows in order;
 *  - attention splits (sequence, query head) tasks, each self-contained; GQA
 *    kv-head gradients are summed over their query heads in a following row
 *    phase, in head order;
 *  - the loss is summed in double, in row order, on the calling thread.
 * Attention keeps only each row's log-sum-exp: the backward recomputes the
 * probabilities block by block (64 query rows at a time, keys up to the
 * block's last row), so memory is O(BT) per layer, not O(B NH T^2).
 * exp in the hot loops is a vectorised polynomial (cephes' expf, ~1 ulp),
 * built for AVX-512, AVX2 and the baseline and picked at load (target_clones);
 * it uses no FMA contraction (ISO C mode), so every build gives the same bits.
 *
 * What each layer keeps for the backward (all (BT, width) f32):
 *   resid (C, the layer input = residual stream), rstd1, xn1 (C, normed),
 *   qkv (QKVD, q and k after RoPE), lse (NH per row), att (C, attention
 *   output), resid_mid (C, stream after attention), rstd2, xn2 (C),
 *   gu (2FF, gate|up pre-activations), h (FF, silu(gate) * up);
 * and once: the final stream, its rstd, the normed final xnf, the logits
 * (BT, V) and their row log-sum-exp. The backward overwrites the logits with
 * their gradient.
 *
 * LoRA mode (tmodel.h; its targets, adapters, frozen base and the base's
 * products are in tlora.c) shares everything here but the linear layers:
 * the forward and backward_lora call yan_tlorai_group_fwd / _bwd in place of
 * the GEMMs, the norm weights (and an f32 base's embedding) come from
 * m->base, and the base gets no gradient. tmodel_impl.h holds the structs
 * both files use.
 * Dependencies: tmodel_impl.h, tlora.c, gemm.h, pool.h, gguf.h, tensor.h
 * (dequantize), tokenizer. */
#include "train/tmodel_impl.h"

#include <math.h>

#include "tensor/gemm.h"
#include "tensor/tensor.h"
#include "tokenizer/tok_gguf.h"

#define RB 64        /* attention query rows per block */

/* -------------------------------------------------------- vector kernels */

/* 16 floats; GCC/clang vector extensions compile to AVX-512, AVX2 or SSE2
 * depending on the clone. */
#if defined(__GNUC__)
/* the helpers below are static and inlined: no ABI is crossed */
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
typedef float vf __attribute__((vector_size(64)));
typedef int32_t vi __attribute__((vector_size(64)));
#define VL 16

#if defined(__x86_64__) && !defined(__clang__)
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CLONES
#endif

/* Helpers take vectors by pointer: passing 64-byte vectors by value draws
 * ABI notes from gcc; everything here is inlined anyway. */
#define vsplat(a) ((vf){0} + (a))
#define vsel(m, a, b) ((vf)(((vi)(a) & (m)) | ((vi)(b) & ~(m))))
static inline vf vload(const float *p) {
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline vf vload_part(const float *p, int64_t n, float pad) {
    vf v = vsplat(pad);
    memcpy(&v, p, (size_t)n * sizeof(float));
    return v;
}
#define vstore(p, v) memcpy((p), &(v), sizeof(vf))
#define vstore_part(p, v, n) memcpy((p), &(v), (size_t)(n) * sizeof(float))
static inline float vhsum(const vf *v) {
    float s = 0;
    for (int i = 0; i < VL; i++) s += (*v)[i];
    return s;
}
static inline float vhmax(const vf *v) {
    float s = (*v)[0];
    for (int i = 1; i < VL; i++) s = (*v)[i] > s ? (*v)[i] : s;
    return s;
}

/* exp(x), cephes' expf: x clamped to [-87, 88], x = k ln2 + r, e^r by a
 * degree-5 polynomial, 2^k built in the exponent bits. */
static inline vf vexp(const vf *px) {
    const vf lo = vsplat(-87.0f), hi = vsplat(88.0f);
    vf x = *px;
    x = vsel(x < lo, lo, x);
    x = vsel(x > hi, hi, x);
    vf k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    vf r = x - k * 0.693359375f;
    r = r + k * 2.12194440e-4f;
    vf r2 = r * r;
    vf p = vsplat(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r2 + r + 1.0f;
    vi e = (__builtin_convertvector(k, vi) + 127) << 23;
    return p * (vf)e;
}

/* log(sum_j exp(x_j)) over n values (n >= 1). */
CLONES static float k_lse(const float *x, int64_t n) {
    vf mx = vsplat(-INFINITY), v, e;
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        v = vload(x + i);
        mx = vsel(v > mx, v, mx);
    }
    if (i < n) {
        v = vload_part(x + i, n - i, -INFINITY);
        mx = vsel(v > mx, v, mx);
    }
    const float m = vhmax(&mx);
    const vf vm = vsplat(m);
    vf s = vsplat(0);
    for (i = 0; i + VL <= n; i += VL) {
        v = vload(x + i) - vm;
        s += vexp(&v);
    }
    if (i < n) {
        v = vload_part(x + i, n - i, m) - vm;
        e = vexp(&v);
        for (int64_t j = n - i; j < VL; j++) e[j] = 0;
        s += e;
    }
    return m + logf(vhsum(&s));
}

/* In place: x = softmax(scale * x) over n values (n >= 1); returns the
 * log-sum-exp of scale * x. */
CLONES static float k_softmax(float *x, int64_t n, float scale) {
    vf mx = vsplat(-INFINITY), v, e;
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        v = vload(x + i) * scale;
        mx = vsel(v > mx, v, mx);
    }
    if (i < n) {
        v = vload_part(x + i, n - i, 0) * scale;
        for (int64_t j = n - i; j < VL; j++) v[j] = -INFINITY;
        mx = vsel(v > mx, v, mx);
    }
    const float m = vhmax(&mx);
    vf s = vsplat(0);
    for (i = 0; i + VL <= n; i += VL) {
        v = vload(x + i) * scale - m;
        e = vexp(&v);
        vstore(x + i, e);
        s += e;
    }
    if (i < n) {
        v = vload_part(x + i, n - i, 0) * scale - m;
        e = vexp(&v);
        for (int64_t j = n - i; j < VL; j++) e[j] = 0;
        vstore_part(x + i, e, n - i);
        s += e;
    }
    const float sum = vhsum(&s), inv = 1.0f / sum;
    for (i = 0; i + VL <= n; i += VL) {
        v = vload(x + i) * inv;
        vstore(x + i, v);
    }
    for (; i < n; i++) x[i] *= inv;
    return m + logf(sum);
}

/* y = exp(a * x - b) * c (y may be x). */
CLONES static void k_exp_affine(float *y, const float *x, int64_t n, float a, float b, float c) {
    vf v;
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        v = vload(x + i) * a - b;
        v = vexp(&v) * c;
        vstore(y + i, v);
    }
    if (i < n) {
        v = vload_part(x + i, n - i, 0) * a - b;
        v = vexp(&v) * c;
        vstore_part(y + i, v, n - i);
    }
}

/* h = silu(g) * u = g / (1 + exp(-g)) * u */
static inline vf swiglu(const vf *g, const vf *u) {
    vf t = -*g;
    return *g / (1.0f + vexp(&t)) * *u;
}

CLONES static void k_swiglu_fwd(float *h, const float *g, const float *u, int64_t n) {
    vf vg, vu, t;
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        vg = vload(g + i);
        vu = vload(u + i);
        t = swiglu(&vg, &vu);
        vstore(h + i, t);
    }
    if (i < n) {
        vg = vload_part(g + i, n - i, 0);
        vu = vload_part(u + i, n - i, 0);
        t = swiglu(&vg, &vu);
        vstore_part(h + i, t, n - i);
    }
}

/* s = sigmoid(g): dg = dh * u * s * (1 + g (1 - s)), du = dh * g * s */
static inline void swiglu_bwd(vf *dg, vf *du, const vf *dh, const vf *g, const vf *u) {
    vf t = -*g;
    vf s = 1.0f / (1.0f + vexp(&t));
    *dg = *dh * *u * s * (1.0f + *g * (1.0f - s));
    *du = *dh * *g * s;
}

CLONES static void k_swiglu_bwd(float *dg, float *du, const float *dh, const float *g, const float *u, int64_t n) {
    vf vg, vu, vd, a, b;
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        vg = vload(g + i);
        vu = vload(u + i);
        vd = vload(dh + i);
        swiglu_bwd(&a, &b, &vd, &vg, &vu);
        vstore(dg + i, a);
        vstore(du + i, b);
    }
    if (i < n) {
        vg = vload_part(g + i, n - i, 0);
        vu = vload_part(u + i, n - i, 0);
        vd = vload_part(dh + i, n - i, 0);
        swiglu_bwd(&a, &b, &vd, &vg, &vu);
        vstore_part(dg + i, a, n - i);
        vstore_part(du + i, b, n - i);
    }
}

/* out = x * r * w with r = 1 / sqrt(mean(x^2) + eps); returns r. */
CLONES static float k_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) {
    vf s = vsplat(0), v;
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        v = vload(x + i);
        s += v * v;
    }
    if (i < n) {
        v = vload_part(x + i, n - i, 0);
        s += v * v;
    }
    const float r = (float)(1.0 / sqrt((double)vhsum(&s) / (double)n + (double)eps));
    for (i = 0; i + VL <= n; i += VL) {
        v = vload(x + i) * r * vload(w + i);
        vstore(out + i, v);
    }
    for (; i < n; i++) out[i] = x[i] * r * w[i];
    return r;
}

/* RMSNorm backward of one row: dx (+)= r dy w - x r^2 mean, mean =
 * r sum(dy w x) / n, the mean of dy w xhat. */
CLONES static void k_rmsnorm_bwd(float *dx, const float *x, const float *dy, const float *w, float r, int64_t n,
                                 bool add) {
    vf s = vsplat(0), v;
    int64_t i = 0;
    for (; i + VL <= n; i += VL) s += vload(dy + i) * vload(w + i) * vload(x + i);
    if (i < n) s += vload_part(dy + i, n - i, 0) * vload_part(w + i, n - i, 0) * vload_part(x + i, n - i, 0);
    const float k = r * r * (r * vhsum(&s) / (float)n); /* r^2 mean */
    for (i = 0; i + VL <= n; i += VL) {
        v = r * (vload(dy + i) * vload(w + i)) - vload(x + i) * k;
        if (add) v += vload(dx + i);
        vstore(dx + i, v);
    }
    for (; i < n; i++) {
        float d = r * (dy[i] * w[i]) - x[i] * k;
        dx[i] = add ? dx[i] + d : d;
    }
}

/* g += dy * x * r */
CLONES static void k_gw(float *g, const float *dy, const float *x, float r, int64_t n) {
    vf v;
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        v = vload(g + i) + vload(dy + i) * vload(x + i) * r;
        vstore(g + i, v);
    }
    for (; i < n; i++) g[i] = g[i] + dy[i] * x[i] * r;
}

/* softmax backward of one row: dp = p (dp - D) scale */
CLONES static void k_dsoftmax(float *dp, const float *p, int64_t n, float D, float scale) {
    vf v;
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        v = vload(p + i) * (vload(dp + i) - D) * scale;
        vstore(dp + i, v);
    }
    for (; i < n; i++) dp[i] = p[i] * (dp[i] - D) * scale;
}

/* ------------------------------------------------------------ config */

void yan_tconfig_default(yan_tconfig *c) {
    memset(c, 0, sizeof *c);
    c->n_vocab = 4096;
    c->n_ctx = 256;
    c->n_embd = 256;
    c->n_layer = 4;
    c->n_head = 4;
    c->n_head_kv = 4;
    c->n_ff = 704;
    c->norm_eps = 1e-5f;
    c->rope_base = 10000.0f;
    c->tied_output = false;
}

yan_status yan_tconfig_check(const yan_tconfig *c) {
    static const struct { const char *name; size_t off; int32_t max; } f[] = {
        {"n_vocab", offsetof(yan_tconfig, n_vocab), 1 << 24},   {"n_ctx", offsetof(yan_tconfig, n_ctx), 1 << 24},
        {"n_embd", offsetof(yan_tconfig, n_embd), 1 << 16},     {"n_layer", offsetof(yan_tconfig, n_layer), 4096},
        {"n_head", offsetof(yan_tconfig, n_head), 4096},        {"n_head_kv", offsetof(yan_tconfig, n_head_kv), 4096},
        {"n_ff", offsetof(yan_tconfig, n_ff), 1 << 20},
    };
    if (!c) return yan_fail(YAN_ERR_INVALID_ARG, "model config: NULL");
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        int32_t v;
        memcpy(&v, (const char *)c + f[i].off, sizeof v);
        if (v < 1 || v > f[i].max)
            return yan_fail(YAN_ERR_INVALID_ARG, "model config: %s = %d is out of range [1, %d]", f[i].name, v,
                            f[i].max);
    }
    if (c->n_embd % c->n_head)
        return yan_fail(YAN_ERR_INVALID_ARG, "model config: n_embd %d is not a multiple of n_head %d", c->n_embd,
                        c->n_head);
    if ((c->n_embd / c->n_head) % 2)
        return yan_fail(YAN_ERR_INVALID_ARG, "model config: the head size n_embd / n_head = %d must be even (RoPE pairs)",
                        c->n_embd / c->n_head);
    if (c->n_head % c->n_head_kv)
        return yan_fail(YAN_ERR_INVALID_ARG, "model config: n_head %d is not a multiple of n_head_kv %d", c->n_head,
                        c->n_head_kv);
    if (!(c->norm_eps > 0) || !isfinite(c->norm_eps))
        return yan_fail(YAN_ERR_INVALID_ARG, "model config: norm_eps must be a positive number");
    if (!(c->rope_base > 0) || !isfinite(c->rope_base))
        return yan_fail(YAN_ERR_INVALID_ARG, "model config: rope_base must be a positive number");
    return YAN_OK;
}

/* ------------------------------------------------------------ new / free */

/* The llama tensor table into tab; returns the floats of its block. With
 * no_mats (a mapped base) the matrices get offset -1 and take no floats. */
static int64_t build_table(const yan_tconfig *c, bool no_mats, yan_tparam *tab, int *n_tab) {
    const int64_t C = c->n_embd, HD = C / c->n_head, KD = (int64_t)c->n_head_kv * HD, FF = c->n_ff;
    int64_t off = 0, none = 0;
    char b[64];
    *n_tab = 0;
#define MAT(name, ne0, ne1, fused)                                                                 \
    do {                                                                                           \
        add_tensor(tab, n_tab, no_mats ? &none : &off, name, ne0, ne1, true, fused);               \
        if (no_mats) tab[*n_tab - 1].offset = -1;                                                  \
    } while (0)
    MAT("token_embd.weight", C, c->n_vocab, false);
    for (int l = 0; l < c->n_layer; l++) {
#define NM(s) (snprintf(b, sizeof b, "blk.%d." s, l), b)
        add_tensor(tab, n_tab, &off, NM("attn_norm.weight"), C, 1, false, false);
        MAT(NM("attn_q.weight"), C, C, false);
        MAT(NM("attn_k.weight"), C, KD, true);
        MAT(NM("attn_v.weight"), C, KD, true);
        MAT(NM("attn_output.weight"), C, C, false);
        add_tensor(tab, n_tab, &off, NM("ffn_norm.weight"), C, 1, false, false);
        MAT(NM("ffn_gate.weight"), C, FF, false);
        MAT(NM("ffn_up.weight"), C, FF, true);
        MAT(NM("ffn_down.weight"), FF, C, false);
#undef NM
    }
    add_tensor(tab, n_tab, &off, "output_norm.weight", C, 1, false, false);
    if (!c->tied_output) MAT("output.weight", C, c->n_vocab, false);
#undef MAT
    return (off + ALIGN_F - 1) / ALIGN_F * ALIGN_F;
}

/* Carve the activation buffers; base NULL only sizes them. Returns bytes. */
static size_t carve(yan_tact *a, const yan_tconfig *c, int64_t BT, int64_t Tmax, int nth, uint8_t *base) {
    const int64_t C = c->n_embd, L = c->n_layer, NH = c->n_head, HD = C / NH, KD = (int64_t)c->n_head_kv * HD,
                  QKVD = C + 2 * KD, FF = c->n_ff, V = c->n_vocab;
    const int64_t big = 2 * FF > QKVD ? 2 * FF : QKVD;
    size_t pos = 0;
#define TAKE(field, floats)                                                   \
    do {                                                                      \
        if (base) a->field = (float *)(base + pos);                           \
        pos += ((size_t)(floats) * sizeof(float) + 63) & ~(size_t)63;         \
    } while (0)
    TAKE(rope, Tmax * HD);
    TAKE(resid, (L + 1) * BT * C);
    TAKE(resid_mid, L * BT * C);
    TAKE(xn1, L * BT * C);
    TAKE(xn2, L * BT * C);
    TAKE(rstd1, L * BT);
    TAKE(rstd2, L * BT);
    TAKE(qkv, L * BT * QKVD);
    TAKE(lse, L * BT * NH);
    TAKE(att, L * BT * C);
    TAKE(gu, L * BT * 2 * FF);
    TAKE(h, L * BT * FF);
    TAKE(xnf, BT * C);
    TAKE(rstdf, BT);
    TAKE(logits, BT * V);
    TAKE(lse_out, BT);
    TAKE(row_loss, BT);
    TAKE(dres, BT * C);
    TAKE(dxn, BT * C);
    TAKE(dh, BT * FF);
    TAKE(dbig, BT * big);
    TAKE(dkh, BT * C);
    TAKE(dvh, BT * C);
    a->scr_stride = (2 * RB * Tmax + Tmax + 15) / 16 * 16;
    TAKE(scr, (int64_t)nth * a->scr_stride);
#undef TAKE
    if (base) {
        a->inputs = (int32_t *)(base + pos);
        a->targets = a->inputs + BT;
    }
    pos += 2 * (size_t)BT * sizeof(int32_t);
    return pos;
}

/* The RoPE table: cos/sin of pos * base^(-2i/HD), with the angle computed as
 * the inference engine (and ggml) does: a running product in float. */
static void rope_table(float *tab, int T, int HD, float base) {
    const int half = HD / 2;
    const float theta_scale = powf(base, -2.0f / (float)HD);
    for (int t = 0; t < T; t++) {
        float theta = (float)t;
        float *row = tab + (int64_t)t * HD;
        for (int i = 0; i < half; i++) {
            row[i] = cosf(theta);
            row[half + i] = sinf(theta);
            theta *= theta_scale;
        }
    }
}

/* A model for full training (lora NULL) or LoRA mode (mapped: the base
 * matrices will be bound to a file mapping by the loader). */
static yan_status create(const yan_tconfig *cfg, const yan_tlora *lora, bool mapped, int B, int T, int n_threads,
                         yan_tmodel **out) {
    if (!out) return yan_fail(YAN_ERR_INVALID_ARG, "yan_tmodel_new: out is NULL");
    *out = NULL;
    yan_status st = yan_tconfig_check(cfg);
    if (st) return st;
    if (B < 1 || T < 1 || T > cfg->n_ctx)
        return yan_fail(YAN_ERR_INVALID_ARG, "yan_tmodel_new: batch %d x %d tokens is invalid (need B >= 1, 1 <= T <= n_ctx %d)",
                        B, T, cfg->n_ctx);
    if (lora && (st = yan_tlorai_check(lora))) return st;
    yan_tmodel *m = yan_calloc(1, sizeof *m);
    if (!m) return yan_fail(YAN_ERR_NOMEM, "out of memory creating a model");
    m->cfg = *cfg;
    m->B = B;
    m->T = T;
    const int L = cfg->n_layer;
    m->tensors = yan_calloc((size_t)(lora ? 2 * YAN_LORA_N_TARGETS * L : 9 * L + 3), sizeof *m->tensors);
    m->act = yan_calloc(1, sizeof *m->act);
    if (!m->tensors || !m->act) goto nomem;
    yan_tparam *tab = m->tensors; /* the llama table: params, or LoRA's base */
    int n_tab;
    if (lora) {
        m->lora = *lora;
        m->mapped = mapped;
        if (!(m->base_tensors = yan_calloc((size_t)(9 * L + 3), sizeof *m->base_tensors))) goto nomem;
        m->n_base = build_table(cfg, mapped, m->base_tensors, &m->n_base_tensors);
        m->n_params = yan_tlorai_build_table(cfg, lora, m->tensors, &m->n_tensors);
        tab = m->base_tensors;
        n_tab = m->n_base_tensors;
    } else {
        m->n_params = build_table(cfg, false, m->tensors, &m->n_tensors);
        n_tab = m->n_tensors;
    }
    yan_tact *a = m->act;
    a->lo = yan_calloc((size_t)L, sizeof *a->lo);
    if (!a->lo) goto nomem;
    for (int i = 0; i < n_tab; i++) {
        const yan_tparam *t = &tab[i];
        int l;
        char what[64];
        if (sscanf(t->name, "blk.%d.%63s", &l, what) == 2) {
            layer_off *o = &a->lo[l];
            if (!strcmp(what, "attn_norm.weight")) o->attn_norm = t->offset;
            else if (!strcmp(what, "attn_q.weight")) o->wqkv = t->offset;
            else if (!strcmp(what, "attn_output.weight")) o->wo = t->offset;
            else if (!strcmp(what, "ffn_norm.weight")) o->ffn_norm = t->offset;
            else if (!strcmp(what, "ffn_gate.weight")) o->wgu = t->offset;
            else if (!strcmp(what, "ffn_down.weight")) o->wdown = t->offset;
        } else if (!strcmp(t->name, "token_embd.weight")) a->off_embd = t->offset;
        else if (!strcmp(t->name, "output_norm.weight")) a->off_onorm = t->offset;
        else if (!strcmp(t->name, "output.weight")) a->off_out = t->offset;
    }
    if (cfg->tied_output) a->off_out = a->off_embd;
    st = yan_pool_new(n_threads, &m->pool);
    if (st) goto fail;
    a->nth = yan_pool_size(m->pool);
    a->BTmax = (int64_t)B * T;
    /* size checks in double first: a config whose activations cannot exist */
    {
        const double C = cfg->n_embd, FF = cfg->n_ff, V = cfg->n_vocab, BT = (double)a->BTmax;
        double floats = BT * (L * (8 * C + 3 * FF + 2 + cfg->n_head) + V + 8 * C + 2 * FF) +
                        2.0 * (double)m->n_params + (double)m->n_base;
        if (lora) floats += BT * (double)lora->rank * (YAN_LORA_N_TARGETS * L + 1);
        if (floats * 4 > 1e15) {
            st = yan_fail(YAN_ERR_INVALID_ARG, "yan_tmodel_new: %.3g GB of parameters and activations is too large",
                          floats * 4 / 1e9);
            goto fail;
        }
    }
    size_t bytes = carve(a, cfg, a->BTmax, T, a->nth, NULL);
    a->block = yan_malloc64(bytes);
    m->params = yan_malloc64((size_t)m->n_params * sizeof(float));
    m->grads = yan_malloc64((size_t)m->n_params * sizeof(float));
    if (!a->block || !m->params || !m->grads) goto nomem;
    carve(a, cfg, a->BTmax, T, a->nth, a->block);
    memset(m->params, 0, (size_t)m->n_params * sizeof(float));
    memset(m->grads, 0, (size_t)m->n_params * sizeof(float));
    rope_table(a->rope, T, cfg->n_embd / cfg->n_head, cfg->rope_base);
    if (lora && !yan_tlorai_alloc(m)) goto nomem; /* the base block, the adapters' buffers */
    *out = m;
    return YAN_OK;
nomem:
    st = yan_fail(YAN_ERR_NOMEM, "out of memory creating a model (%lld parameters, activations for %d x %d tokens)",
                  (long long)m->n_params, B, T);
fail:
    yan_tmodel_free(m);
    return st;
}

yan_status yan_tmodel_new(const yan_tconfig *cfg, int B, int T, int n_threads, yan_tmodel **out) {
    return create(cfg, NULL, false, B, T, n_threads, out);
}

yan_status yan_tmodel_new_lora(const yan_tconfig *cfg, const yan_tlora *lora, int B, int T, int n_threads,
                               yan_tmodel **out) {
    if (!lora) return yan_fail(YAN_ERR_INVALID_ARG, "yan_tmodel_new_lora: no LoRA settings");
    return create(cfg, lora, false, B, T, n_threads, out);
}

void yan_tmodel_free(yan_tmodel *m) {
    if (!m) return;
    yan_pool_free(m->pool);
    if (m->act) {
        yan_free(m->act->lo);
        yan_free64(m->act->block);
        yan_free64(m->act->lblock);
        yan_free64(m->act->qact);
        yan_free(m->act->ll);
        yan_free(m->act->bm);
        yan_free(m->act);
    }
    yan_free64(m->params);
    yan_free64(m->grads);
    yan_free64(m->base);
    yan_free(m->tensors);
    yan_free(m->base_tensors);
    yan_gguf_close(m->map);
    yan_free(m);
}

const yan_tparam *yan_tmodel_find(const yan_tmodel *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

static void ph_zero_grad(void *ud, int ith, int nth) {
    yan_tmodel *m = ud;
    int64_t a = m->n_params * ith / nth, b = m->n_params * (ith + 1) / nth;
    memset(m->grads + a, 0, (size_t)(b - a) * sizeof(float));
}

void yan_tmodel_zero_grad(yan_tmodel *m) { yan_pool_run(m->pool, ph_zero_grad, m); }

const float *yan_tmodel_logits(const yan_tmodel *m) { return m->act->logits; }
int64_t yan_tmodel_n_targets(const yan_tmodel *m) { return m->act->n_targets; }

/* ------------------------------------------------------------------ init */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct { uint64_t s[4]; } xoshiro;

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xo_next(xoshiro *x) { /* xoshiro256** */
    uint64_t *s = x->s;
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* uniform in (0, 1] with 53 bits */
static inline double xo_unit(xoshiro *x) { return ((double)(xo_next(x) >> 11) + 1.0) / 9007199254740992.0; }

void yan_tmodel_init(yan_tmodel *m, uint64_t seed) {
    const double std = 0.02, std_res = 0.02 / sqrt(2.0 * m->cfg.n_layer);
    for (int i = 0; i < m->n_tensors; i++) {
        const yan_tparam *t = &m->tensors[i];
        float *p = m->params + t->offset;
        int64_t n = t->ne0 * t->ne1;
        if (m->lora.rank) { /* A uniform in +-1/sqrt(in) (PEFT's kaiming_uniform_(a = sqrt(5))), B zero */
            size_t len = strlen(t->name);
            if (len > 7 && !strcmp(t->name + len - 7, ".lora_b")) {
                memset(p, 0, (size_t)n * sizeof(float));
                continue;
            }
            const double bound = 1.0 / sqrt((double)t->ne0);
            uint64_t sm = seed ^ (0xA0761D6478BD642Full * (uint64_t)(i + 1));
            xoshiro x;
            for (int k = 0; k < 4; k++) x.s[k] = splitmix64(&sm);
            for (int64_t j = 0; j < n; j++) p[j] = (float)(bound * (2.0 * xo_unit(&x) - 1.0));
            continue;
        }
        if (!t->decay) {
            for (int64_t j = 0; j < n; j++) p[j] = 1.0f;
            continue;
        }
        double sd = strstr(t->name, "attn_output") || strstr(t->name, "ffn_down") ? std_res : std;
        uint64_t sm = seed ^ (0xA0761D6478BD642Full * (uint64_t)(i + 1));
        xoshiro x;
        for (int k = 0; k < 4; k++) x.s[k] = splitmix64(&sm);
        for (int64_t j = 0; j < n; j += 2) { /* Box-Muller, both outputs */
            double u1 = xo_unit(&x), u2 = xo_unit(&x);
            double r = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
            p[j] = (float)(sd * r * cos(th));
            if (j + 1 < n) p[j + 1] = (float)(sd * r * sin(th));
        }
    }
}

/* ------------------------------------------------------------ row helpers */

static inline void rope_fwd(float *x, const float *cs, int half) {
    const float *sn = cs + half;
    for (int i = 0; i < half; i++) {
        float x0 = x[2 * i], x1 = x[2 * i + 1];
        x[2 * i] = x0 * cs[i] - x1 * sn[i];
        x[2 * i + 1] = x0 * sn[i] + x1 * cs[i];
    }
}

/* the transpose: rotation by the negative angle */
static inline void rope_bwd(float *x, const float *cs, int half) {
    const float *sn = cs + half;
    for (int i = 0; i < half; i++) {
        float d0 = x[2 * i], d1 = x[2 * i + 1];
        x[2 * i] = d0 * cs[i] + d1 * sn[i];
        x[2 * i + 1] = d1 * cs[i] - d0 * sn[i];
    }
}

/* ------------------------------------------------------------ phases */

typedef struct {
    yan_tmodel *m;
    int l;             /* layer */
    const float *add;  /* add_norm: added into acc first (NULL: none) */
    float *acc;        /* add_norm: the stream rows (embedded first when embed) */
    const float *w;    /* norm weight */
    float *xn, *rstd;
    bool embed;
    /* norm backward */
    const float *x, *dy;
    float *dx, *gw;
    bool dx_add, embed_bwd;
} phase;

/* acc = (embed ? embedding : acc) + add; xn = rmsnorm(acc) * w (rows) */
static void ph_add_norm(void *ud, int ith, int nth) {
    phase *p = ud;
    yan_tmodel *m = p->m;
    yan_tact *a = m->act;
    const int64_t C = m->cfg.n_embd, BT = (int64_t)a->B * a->T;
    int64_t r0, r1;
    split(BT, ith, nth, &r0, &r1);
    const yan_mat *eq = &a->embd_q; /* LoRA on a mapped base: rows decoded from the file */
    const float *E = eq->data ? NULL : (m->lora.rank ? m->base : m->params) + a->off_embd;
    for (int64_t t = r0; t < r1; t++) {
        float *x = p->acc + t * C;
        if (p->embed) {
            if (E) memcpy(x, E + (int64_t)a->inputs[t] * C, (size_t)C * sizeof(float));
            else yan_dequantize_row(eq->type, (const uint8_t *)eq->data + (size_t)a->inputs[t] * eq->row_bytes, x, C);
        }
        if (p->add) {
            const float *y = p->add + t * C;
            for (int64_t i = 0; i < C; i++) x[i] += y[i];
        }
        p->rstd[t] = k_rmsnorm(p->xn + t * C, x, p->w, C, m->cfg.norm_eps);
    }
}

/* RoPE on q and k (rows), barrier, then causal attention per (sequence, head) */
static void ph_attn_fwd(void *ud, int ith, int nth) {
    phase *p = ud;
    yan_tmodel *m = p->m;
    yan_tact *a = m->act;
    const yan_tconfig *c = &m->cfg;
    const int B = a->B, T = a->T, NH = c->n_head, NKV = c->n_head_kv, HD = c->n_embd / NH, half = HD / 2;
    const int group = NH / NKV;
    const int64_t C = c->n_embd, KD = (int64_t)NKV * HD, QKVD = C + 2 * KD, BT = (int64_t)B * T;
    float *qkv = a->qkv + (int64_t)p->l * a->BTmax * QKVD;
    float *att = a->att + (int64_t)p->l * a->BTmax * C;
    float *lse = a->lse + (int64_t)p->l * a->BTmax * NH;
    int64_t r0, r1;
    split(BT, ith, nth, &r0, &r1);
    for (int64_t t = r0; t < r1; t++) {
        float *row = qkv + t * QKVD;
        const float *cs = a->rope + (t % T) * HD;
        for (int h = 0; h < NH + NKV; h++) rope_fwd(row + (int64_t)h * HD, cs, half);
    }
    yan_pool_barrier(m->pool);
    const float scale = 1.0f / sqrtf((float)HD);
    float *S = a->scr + (int64_t)ith * a->scr_stride;
    for (int task = ith; task < B * NH; task += nth) {
        const int b = task / NH, h = task % NH, kvh = h / group;
        const float *Q = qkv + (int64_t)b * T * QKVD + (int64_t)h * HD;
        const float *K = qkv + (int64_t)b * T * QKVD + C + (int64_t)kvh * HD;
        const float *Vv = K + KD;
        float *O = att + (int64_t)b * T * C + (int64_t)h * HD;
        float *ls = lse + ((int64_t)b * NH + h) * T;
        for (int i0 = 0; i0 < T; i0 += RB) {
            const int i1 = i0 + RB < T ? i0 + RB : T, M = i1 - i0, N = i1;
            yan_sgemm_1(false, true, M, N, HD, Q + (int64_t)i0 * QKVD, QKVD, K, QKVD, 0.0f, S, N);
            for (int r = 0; r < M; r++) {
                float *s = S + (int64_t)r * N;
                const int i = i0 + r;
                ls[i] = k_softmax(s, i + 1, scale);
                for (int j = i + 1; j < N; j++) s[j] = 0;
            }
            yan_sgemm_1(false, false, M, HD, N, S, N, Vv, QKVD, 0.0f, O + (int64_t)i0 * C, C);
        }
    }
}

static void ph_swiglu_fwd(void *ud, int ith, int nth) {
    phase *p = ud;
    yan_tmodel *m = p->m;
    yan_tact *a = m->act;
    const int64_t FF = m->cfg.n_ff, BT = (int64_t)a->B * a->T;
    const float *gu = a->gu + (int64_t)p->l * a->BTmax * 2 * FF;
    float *h = a->h + (int64_t)p->l * a->BTmax * FF;
    int64_t r0, r1;
    split(BT, ith, nth, &r0, &r1);
    for (int64_t t = r0; t < r1; t++) k_swiglu_fwd(h + t * FF, gu + t * 2 * FF, gu + t * 2 * FF + FF, FF);
}

static void ph_ce_fwd(void *ud, int ith, int nth) {
    phase *p = ud;
    yan_tmodel *m = p->m;
    yan_tact *a = m->act;
    const int64_t V = m->cfg.n_vocab, BT = (int64_t)a->B * a->T;
    int64_t r0, r1;
    split(BT, ith, nth, &r0, &r1);
    for (int64_t t = r0; t < r1; t++) {
        int32_t y = a->targets[t];
        if (y < 0) {
            a->row_loss[t] = 0;
            continue;
        }
        const float *l = a->logits + t * V;
        float lse = k_lse(l, V);
        a->lse_out[t] = lse;
        a->row_loss[t] = lse - l[y];
    }
}

/* ------------------------------------------------------------ forward */

float yan_tmodel_forward(yan_tmodel *m, const int32_t *inputs, const int32_t *targets, int B, int T) {
    yan_tact *a = m->act;
    const yan_tconfig *c = &m->cfg;
    YAN_ASSERT(B >= 1 && T >= 1 && B <= m->B && T <= m->T);
    const int64_t BT = (int64_t)B * T, C = c->n_embd, NH = c->n_head, HD = C / NH, KD = (int64_t)c->n_head_kv * HD,
                  QKVD = C + 2 * KD, FF = c->n_ff, V = c->n_vocab, BTm = a->BTmax;
    a->B = B;
    a->T = T;
    a->has_targets = targets != NULL;
    a->backward_done = false;
    a->n_targets = 0;
    for (int64_t i = 0; i < BT; i++) {
        YAN_ASSERT(inputs[i] >= 0 && inputs[i] < V);
        a->inputs[i] = inputs[i];
        int32_t y = targets ? targets[i] : -1;
        YAN_ASSERT(y >= -1 && y < V);
        a->targets[i] = y < 0 ? -1 : y;
        a->n_targets += y >= 0;
    }
    const bool lora = m->lora.rank > 0;
    const float *P = lora ? m->base : m->params; /* norms (and f32 matrices) */
    phase ph = {.m = m};
    for (int l = 0; l < c->n_layer; l++) {
        const layer_off *o = &a->lo[l];
        float *resid = a->resid + l * BTm * C, *resid_mid = a->resid_mid + l * BTm * C;
        float *xn1 = a->xn1 + l * BTm * C, *xn2 = a->xn2 + l * BTm * C;
        float *qkv = a->qkv + l * BTm * QKVD, *att = a->att + l * BTm * C;
        float *gu = a->gu + l * BTm * 2 * FF, *h = a->h + l * BTm * FF;
        /* stream = previous layer's mid stream + its MLP output (or the
         * embedding); attention norm */
        ph = (phase){.m = m, .l = l, .acc = resid, .add = l ? a->resid_mid + (l - 1) * BTm * C : NULL,
                     .w = P + o->attn_norm, .xn = xn1, .rstd = a->rstd1 + l * BTm, .embed = l == 0};
        yan_pool_run(m->pool, ph_add_norm, &ph);
        if (!lora) yan_sgemm(m->pool, false, true, BT, QKVD, C, xn1, C, P + o->wqkv, C, 0.0f, qkv, QKVD);
        else yan_tlorai_group_fwd(m, l, G_QKV, xn1, BT, qkv);
        yan_pool_run(m->pool, ph_attn_fwd, &ph);
        if (!lora) yan_sgemm(m->pool, false, true, BT, C, C, att, C, P + o->wo, C, 0.0f, resid_mid, C);
        else yan_tlorai_group_fwd(m, l, G_O, att, BT, resid_mid);
        ph = (phase){.m = m, .l = l, .acc = resid_mid, .add = resid, .w = P + o->ffn_norm, .xn = xn2,
                     .rstd = a->rstd2 + l * BTm};
        yan_pool_run(m->pool, ph_add_norm, &ph);
        if (!lora) yan_sgemm(m->pool, false, true, BT, 2 * FF, C, xn2, C, P + o->wgu, C, 0.0f, gu, 2 * FF);
        else yan_tlorai_group_fwd(m, l, G_GU, xn2, BT, gu);
        yan_pool_run(m->pool, ph_swiglu_fwd, &ph);
        if (!lora) yan_sgemm(m->pool, false, true, BT, C, FF, h, FF, P + o->wdown, FF, 0.0f, a->resid + (l + 1) * BTm * C, C);
        else yan_tlorai_group_fwd(m, l, G_DOWN, h, BT, a->resid + (l + 1) * BTm * C);
    }
    const int L = c->n_layer;
    ph = (phase){.m = m, .l = L, .acc = a->resid + L * BTm * C, .add = a->resid_mid + (L - 1) * BTm * C,
                 .w = P + a->off_onorm, .xn = a->xnf, .rstd = a->rstdf};
    yan_pool_run(m->pool, ph_add_norm, &ph);
    if (!lora) yan_sgemm(m->pool, false, true, BT, V, C, a->xnf, C, P + a->off_out, C, 0.0f, a->logits, V);
    else yan_tlorai_lin_fwd(m, &a->w_out, a->xnf, BT, a->logits, V);
    if (!targets || a->n_targets == 0) return 0.0f;
    yan_pool_run(m->pool, ph_ce_fwd, &ph);
    double sum = 0;
    for (int64_t t = 0; t < BT; t++) sum += a->row_loss[t];
    return (float)(sum / (double)a->n_targets);
}

/* ------------------------------------------------------------ backward */

typedef struct {
    yan_tmodel *m;
    float k; /* scale / n_targets */
} ce_job;

/* dlogits = (softmax - onehot) * k in place; rows without a target: 0 */
static void ph_ce_bwd(void *ud, int ith, int nth) {
    ce_job *j = ud;
    yan_tact *a = j->m->act;
    const int64_t V = j->m->cfg.n_vocab, BT = (int64_t)a->B * a->T;
    int64_t r0, r1;
    split(BT, ith, nth, &r0, &r1);
    for (int64_t t = r0; t < r1; t++) {
        float *l = a->logits + t * V;
        int32_t y = a->targets[t];
        if (y < 0) {
            memset(l, 0, (size_t)V * sizeof(float));
            continue;
        }
        k_exp_affine(l, l, V, 1.0f, a->lse_out[t], j->k);
        l[y] -= j->k;
    }
}

/* RMSNorm backward. Rows: dx (= or +=) rstd (dy w - xhat mean(dy w xhat));
 * columns: gw += sum over rows of dy xhat (rows in order). With embed_bwd,
 * after a barrier, the embedding gradient rows += dx by column slices. */
static void ph_norm_bwd(void *ud, int ith, int nth) {
    phase *p = ud;
    yan_tmodel *m = p->m;
    yan_tact *a = m->act;
    const int64_t C = m->cfg.n_embd, BT = (int64_t)a->B * a->T;
    int64_t r0, r1, c0, c1;
    split(BT, ith, nth, &r0, &r1);
    split((C + VL - 1) / VL, ith, nth, &c0, &c1); /* whole vectors of columns */
    c0 = c0 * VL < C ? c0 * VL : C;
    c1 = c1 * VL < C ? c1 * VL : C;
    for (int64_t t = r0; t < r1; t++)
        k_rmsnorm_bwd(p->dx + t * C, p->x + t * C, p->dy + t * C, p->w, p->rstd[t], C, p->dx_add);
    if (c1 > c0 && p->gw) /* no gw: LoRA mode (frozen norms) */
        for (int64_t t = 0; t < BT; t++) k_gw(p->gw + c0, p->dy + t * C + c0, p->x + t * C + c0, p->rstd[t], c1 - c0);
    if (!p->embed_bwd) return;
    yan_pool_barrier(m->pool);
    float *gE = m->grads + a->off_embd;
    for (int64_t t = 0; t < BT; t++) {
        float *g = gE + (int64_t)a->inputs[t] * C;
        const float *d = p->dx + t * C;
        for (int64_t i = c0; i < c1; i++) g[i] += d[i];
    }
}

static void ph_swiglu_bwd(void *ud, int ith, int nth) {
    phase *p = ud;
    yan_tmodel *m = p->m;
    yan_tact *a = m->act;
    const int64_t FF = m->cfg.n_ff, BT = (int64_t)a->B * a->T;
    const float *gu = a->gu + (int64_t)p->l * a->BTmax * 2 * FF;
    int64_t r0, r1;
    split(BT, ith, nth, &r0, &r1);
    for (int64_t t = r0; t < r1; t++) {
        const float *g = gu + t * 2 * FF;
        float *d = a->dbig + t * 2 * FF;
        k_swiglu_bwd(d, d + FF, a->dh + t * FF, g, g + FF, FF);
    }
}

/* Attention backward per (sequence, query head), probabilities recomputed
 * from the kept log-sum-exp; barrier; then rows: the GQA sum of dK, dV over
 * each kv head's query heads and the RoPE backward of dq and dk, into dqkv. */
static void ph_attn_bwd(void *ud, int ith, int nth) {
    phase *p = ud;
    yan_tmodel *m = p->m;
    yan_tact *a = m->act;
    const yan_tconfig *c = &m->cfg;
    const int B = a->B, T = a->T, NH = c->n_head, NKV = c->n_head_kv, HD = c->n_embd / NH, half = HD / 2;
    const int group = NH / NKV;
    const int64_t C = c->n_embd, KD = (int64_t)NKV * HD, QKVD = C + 2 * KD, BT = (int64_t)B * T;
    const float *qkv = a->qkv + (int64_t)p->l * a->BTmax * QKVD;
    const float *att = a->att + (int64_t)p->l * a->BTmax * C;
    const float *lse = a->lse + (int64_t)p->l * a->BTmax * NH;
    const float *datt = a->dxn;
    float *dqkv = a->dbig;
    const float scale = 1.0f / sqrtf((float)HD);
    float *S = a->scr + (int64_t)ith * a->scr_stride, *dP = S + (int64_t)RB * T, *D = dP + (int64_t)RB * T;
    for (int task = ith; task < B * NH; task += nth) {
        const int b = task / NH, h = task % NH, kvh = h / group;
        const int64_t seq = (int64_t)b * T;
        const float *Q = qkv + seq * QKVD + (int64_t)h * HD;
        const float *K = qkv + seq * QKVD + C + (int64_t)kvh * HD;
        const float *Vv = K + KD;
        const float *O = att + seq * C + (int64_t)h * HD, *dO = datt + seq * C + (int64_t)h * HD;
        const float *ls = lse + ((int64_t)b * NH + h) * T;
        float *dQ = dqkv + seq * QKVD + (int64_t)h * HD;
        float *dK = a->dkh + seq * C + (int64_t)h * HD, *dV = a->dvh + seq * C + (int64_t)h * HD;
        for (int i = 0; i < T; i++) {
            D[i] = yan_dot_f32(O + (int64_t)i * C, dO + (int64_t)i * C, HD);
            memset(dK + (int64_t)i * C, 0, (size_t)HD * sizeof(float));
            memset(dV + (int64_t)i * C, 0, (size_t)HD * sizeof(float));
        }
        for (int i0 = 0; i0 < T; i0 += RB) {
            const int i1 = i0 + RB < T ? i0 + RB : T, M = i1 - i0, N = i1;
            yan_sgemm_1(false, true, M, N, HD, Q + (int64_t)i0 * QKVD, QKVD, K, QKVD, 0.0f, S, N);
            yan_sgemm_1(false, true, M, N, HD, dO + (int64_t)i0 * C, C, Vv, QKVD, 0.0f, dP, N);
            for (int r = 0; r < M; r++) {
                const int i = i0 + r;
                float *s = S + (int64_t)r * N, *dp = dP + (int64_t)r * N;
                k_exp_affine(s, s, i + 1, scale, ls[i], 1.0f);
                k_dsoftmax(dp, s, i + 1, D[i], scale);
                for (int j = i + 1; j < N; j++) s[j] = dp[j] = 0;
            }
            yan_sgemm_1(false, false, M, HD, N, dP, N, K, QKVD, 0.0f, dQ + (int64_t)i0 * QKVD, QKVD);
            yan_sgemm_1(true, false, N, HD, M, dP, N, Q + (int64_t)i0 * QKVD, QKVD, 1.0f, dK, C);
            yan_sgemm_1(true, false, N, HD, M, S, N, dO + (int64_t)i0 * C, C, 1.0f, dV, C);
        }
    }
    yan_pool_barrier(m->pool);
    int64_t r0, r1;
    split(BT, ith, nth, &r0, &r1);
    for (int64_t t = r0; t < r1; t++) {
        float *row = dqkv + t * QKVD;
        const float *cs = a->rope + (t % T) * HD;
        for (int h = 0; h < NH; h++) rope_bwd(row + (int64_t)h * HD, cs, half);
        const float *dk = a->dkh + t * C, *dv = a->dvh + t * C;
        for (int kvh = 0; kvh < NKV; kvh++) {
            float *ok = row + C + (int64_t)kvh * HD, *ov = ok + KD;
            const float *sk = dk + (int64_t)kvh * group * HD, *sv = dv + (int64_t)kvh * group * HD;
            memcpy(ok, sk, (size_t)HD * sizeof(float));
            memcpy(ov, sv, (size_t)HD * sizeof(float));
            for (int g = 1; g < group; g++)
                for (int e = 0; e < HD; e++) {
                    ok[e] += sk[(int64_t)g * HD + e];
                    ov[e] += sv[(int64_t)g * HD + e];
                }
            rope_bwd(ok, cs, half);
        }
    }
}

/* The backward of LoRA mode: dx through the frozen base and the adapters,
 * gradients for the adapters only. Layer 0's input gradient is not needed. */
static void backward_lora(yan_tmodel *m) {
    yan_tact *a = m->act;
    const yan_tconfig *c = &m->cfg;
    const int64_t BT = (int64_t)a->B * a->T, C = c->n_embd, FF = c->n_ff, V = c->n_vocab, BTm = a->BTmax;
    const int L = c->n_layer;
    const float *P = m->base;
    yan_tlorai_lin_dx(m, &a->w_out, a->logits, V, BT, a->dxn);
    phase ph = {.m = m, .x = a->resid + L * BTm * C, .rstd = a->rstdf, .w = P + a->off_onorm, .dy = a->dxn,
                .dx = a->dres, .gw = NULL, .dx_add = false};
    yan_pool_run(m->pool, ph_norm_bwd, &ph);
    for (int l = L - 1; l >= 0; l--) {
        const layer_off *o = &a->lo[l];
        const float *resid = a->resid + l * BTm * C, *resid_mid = a->resid_mid + l * BTm * C;
        const float *xn1 = a->xn1 + l * BTm * C, *xn2 = a->xn2 + l * BTm * C;
        const float *att = a->att + l * BTm * C, *h = a->h + l * BTm * FF;
        yan_tlorai_group_bwd(m, l, G_DOWN, h, BT, a->dres, a->dh);
        ph = (phase){.m = m, .l = l};
        yan_pool_run(m->pool, ph_swiglu_bwd, &ph);
        yan_tlorai_group_bwd(m, l, G_GU, xn2, BT, a->dbig, a->dxn);
        ph = (phase){.m = m, .x = resid_mid, .rstd = a->rstd2 + l * BTm, .w = P + o->ffn_norm, .dy = a->dxn,
                     .dx = a->dres, .gw = NULL, .dx_add = true};
        yan_pool_run(m->pool, ph_norm_bwd, &ph);
        yan_tlorai_group_bwd(m, l, G_O, att, BT, a->dres, a->dxn);
        ph = (phase){.m = m, .l = l};
        yan_pool_run(m->pool, ph_attn_bwd, &ph);
        yan_tlorai_group_bwd(m, l, G_QKV, xn1, BT, a->dbig, l ? a->dxn : NULL);
        if (l == 0) break;
        ph = (phase){.m = m, .x = resid, .rstd = a->rstd1 + l * BTm, .w = P + o->attn_norm, .dy = a->dxn,
                     .dx = a->dres, .gw = NULL, .dx_add = true};
        yan_pool_run(m->pool, ph_norm_bwd, &ph);
    }
}

void yan_tmodel_backward(yan_tmodel *m, float scale) {
    yan_tact *a = m->act;
    const yan_tconfig *c = &m->cfg;
    YAN_ASSERT(a->has_targets && !a->backward_done);
    a->backward_done = true;
    if (a->n_targets == 0) return;
    const int64_t BT = (int64_t)a->B * a->T, C = c->n_embd, NH = c->n_head, HD = C / NH,
                  KD = (int64_t)c->n_head_kv * HD, QKVD = C + 2 * KD, FF = c->n_ff, V = c->n_vocab, BTm = a->BTmax;
    const int L = c->n_layer;
    const float *P = m->params;
    float *G = m->grads;
    ce_job cj = {m, scale / (float)a->n_targets};
    yan_pool_run(m->pool, ph_ce_bwd, &cj);
    if (m->lora.rank) {
        backward_lora(m);
        return;
    }
    /* output projection (tied: into token_embd's gradient) and final norm */
    yan_sgemm(m->pool, false, false, BT, C, V, a->logits, V, P + a->off_out, C, 0.0f, a->dxn, C);
    yan_sgemm(m->pool, true, false, V, C, BT, a->logits, V, a->xnf, C, 1.0f, G + a->off_out, C);
    phase ph = {.m = m, .x = a->resid + L * BTm * C, .rstd = a->rstdf, .w = P + a->off_onorm, .dy = a->dxn,
                .dx = a->dres, .gw = G + a->off_onorm, .dx_add = false};
    yan_pool_run(m->pool, ph_norm_bwd, &ph);
    for (int l = L - 1; l >= 0; l--) {
        const layer_off *o = &a->lo[l];
        const float *resid = a->resid + l * BTm * C, *resid_mid = a->resid_mid + l * BTm * C;
        const float *xn1 = a->xn1 + l * BTm * C, *xn2 = a->xn2 + l * BTm * C;
        const float *att = a->att + l * BTm * C, *h = a->h + l * BTm * FF;
        /* MLP */
        yan_sgemm(m->pool, true, false, C, FF, BT, a->dres, C, h, FF, 1.0f, G + o->wdown, FF);
        yan_sgemm(m->pool, false, false, BT, FF, C, a->dres, C, P + o->wdown, FF, 0.0f, a->dh, FF);
        ph = (phase){.m = m, .l = l};
        yan_pool_run(m->pool, ph_swiglu_bwd, &ph);
        yan_sgemm(m->pool, true, false, 2 * FF, C, BT, a->dbig, 2 * FF, xn2, C, 1.0f, G + o->wgu, C);
        yan_sgemm(m->pool, false, false, BT, C, 2 * FF, a->dbig, 2 * FF, P + o->wgu, C, 0.0f, a->dxn, C);
        ph = (phase){.m = m, .x = resid_mid, .rstd = a->rstd2 + l * BTm, .w = P + o->ffn_norm, .dy = a->dxn,
                     .dx = a->dres, .gw = G + o->ffn_norm, .dx_add = true};
        yan_pool_run(m->pool, ph_norm_bwd, &ph);
        /* attention */
        yan_sgemm(m->pool, true, false, C, C, BT, a->dres, C, att, C, 1.0f, G + o->wo, C);
        yan_sgemm(m->pool, false, false, BT, C, C, a->dres, C, P + o->wo, C, 0.0f, a->dxn, C);
        ph = (phase){.m = m, .l = l};
        yan_pool_run(m->pool, ph_attn_bwd, &ph);
        yan_sgemm(m->pool, true, false, QKVD, C, BT, a->dbig, QKVD, xn1, C, 1.0f, G + o->wqkv, C);
        yan_sgemm(m->pool, false, false, BT, C, QKVD, a->dbig, QKVD, P + o->wqkv, C, 0.0f, a->dxn, C);
        ph = (phase){.m = m, .x = resid, .rstd = a->rstd1 + l * BTm, .w = P + o->attn_norm, .dy = a->dxn,
                     .dx = a->dres, .gw = G + o->attn_norm, .dx_add = true, .embed_bwd = l == 0};
        yan_pool_run(m->pool, ph_norm_bwd, &ph);
    }
}

/* ------------------------------------------------------------ GGUF in */

static yan_status key_int(const yan_gguf *g, const char *path, const char *key, bool required, int64_t def,
                          int64_t lo, int64_t hi, int32_t *out) {
    int64_t v;
    yan_status st = yan_gguf_get_i64(g, key, &v);
    if (st == YAN_ERR_NOT_FOUND) {
        if (required) return yan_fail(YAN_ERR_FORMAT, "%s: missing required key '%s'", path, key);
        v = def;
    } else if (st) {
        yan_error_prefix(path);
        return st;
    }
    if (v < lo || v > hi)
        return yan_fail(YAN_ERR_FORMAT, "%s: key '%s' = %lld is out of range [%lld, %lld]", path, key, (long long)v,
                        (long long)lo, (long long)hi);
    *out = (int32_t)v;
    return YAN_OK;
}

static yan_status key_float(const yan_gguf *g, const char *path, const char *key, float def, float *out) {
    yan_status st = yan_gguf_get_f32(g, key, out);
    if (st == YAN_ERR_NOT_FOUND) {
        *out = def;
        return YAN_OK;
    }
    if (st) {
        yan_error_prefix(path);
        return st;
    }
    if (!isfinite(*out)) return yan_fail(YAN_ERR_FORMAT, "%s: key '%s' is not a finite number", path, key);
    return YAN_OK;
}

static yan_status read_config(const yan_gguf *g, const char *path, yan_tconfig *c) {
    yan_status st;
    yan_tconfig_default(c);
    if ((st = key_int(g, path, "llama.context_length", true, 0, 1, 1 << 24, &c->n_ctx))) return st;
    if ((st = key_int(g, path, "llama.embedding_length", true, 0, 1, 1 << 16, &c->n_embd))) return st;
    if ((st = key_int(g, path, "llama.block_count", true, 0, 1, 4096, &c->n_layer))) return st;
    if ((st = key_int(g, path, "llama.feed_forward_length", true, 0, 1, 1 << 20, &c->n_ff))) return st;
    if ((st = key_int(g, path, "llama.attention.head_count", true, 0, 1, 4096, &c->n_head))) return st;
    if ((st = key_int(g, path, "llama.attention.head_count_kv", false, c->n_head, 1, 4096, &c->n_head_kv))) return st;
    if ((st = key_float(g, path, "llama.attention.layer_norm_rms_epsilon", 1e-5f, &c->norm_eps))) return st;
    if ((st = key_float(g, path, "llama.rope.freq_base", 10000.0f, &c->rope_base))) return st;
    if (c->n_embd % c->n_head)
        return yan_fail(YAN_ERR_UNSUPPORTED, "%s: embedding_length %d is not a multiple of head_count %d", path,
                        c->n_embd, c->n_head);
    const int32_t HD = c->n_embd / c->n_head;
    static const char *const same_hd[] = {"llama.attention.key_length", "llama.attention.value_length",
                                          "llama.rope.dimension_count"};
    for (size_t i = 0; i < sizeof same_hd / sizeof same_hd[0]; i++) {
        int32_t v;
        if ((st = key_int(g, path, same_hd[i], false, HD, 0, 1 << 16, &v))) return st;
        if (v != HD)
            return yan_fail(YAN_ERR_UNSUPPORTED, "%s: %s = %d differs from the head size %d: training supports only "
                            "full-width heads and RoPE", path, same_hd[i], v, HD);
    }
    const char *s;
    size_t n;
    st = yan_gguf_get_str(g, "llama.rope.scaling.type", &s, &n);
    if (st == YAN_OK && !(n == 4 && !memcmp(s, "none", 4)))
        return yan_fail(YAN_ERR_UNSUPPORTED, "%s: RoPE scaling '%.*s' is not supported for training", path,
                        (int)(n > 32 ? 32 : n), s);
    static const char *const one[] = {"llama.rope.scaling.factor", "llama.rope.scale_linear"};
    for (size_t i = 0; i < 2; i++) {
        float f;
        if ((st = key_float(g, path, one[i], 1.0f, &f))) return st;
        if (f != 1.0f && f != 0.0f)
            return yan_fail(YAN_ERR_UNSUPPORTED, "%s: %s = %g: RoPE scaling is not supported for training", path,
                            one[i], (double)f);
    }
    return YAN_OK;
}

/* Full training (lora NULL) or LoRA mode. */
static yan_status load(const char *path, const yan_tlora *lora, int B, int T, int n_threads, yan_tmodel **out,
                       yan_tokenizer **tok, char **chat_template) {
    if (!out || !path) return yan_fail(YAN_ERR_INVALID_ARG, "yan_tmodel_load_gguf: no path or out");
    *out = NULL;
    if (tok) *tok = NULL;
    if (chat_template) *chat_template = NULL;
    yan_gguf *g = NULL;
    yan_tmodel *m = NULL;
    yan_tokenizer *t = NULL;
    char *tmpl = NULL;
    float *row = NULL;
    yan_status st = yan_gguf_open(path, &g);
    if (st) return st;
    const char *s;
    size_t n;
    st = yan_gguf_get_str(g, "general.architecture", &s, &n);
    if (st) {
        if (st == YAN_ERR_NOT_FOUND) st = yan_fail(YAN_ERR_FORMAT, "%s: missing key 'general.architecture'", path);
        else yan_error_prefix(path);
        goto done;
    }
    if (!(n == 5 && !memcmp(s, "llama", 5))) {
        st = yan_fail(YAN_ERR_UNSUPPORTED, "%s: architecture '%.*s' cannot be trained (supported: llama)", path,
                      (int)(n > 64 ? 64 : n), s);
        goto done;
    }
    yan_tconfig cfg;
    if ((st = read_config(g, path, &cfg))) goto done;
    const yan_gguf_tensor *te = yan_gguf_find_tensor(g, "token_embd.weight");
    if (!te) {
        st = yan_fail(YAN_ERR_FORMAT, "%s: missing tensor 'token_embd.weight'", path);
        goto done;
    }
    if (te->ne[1] < 1 || te->ne[1] > (1u << 24)) {
        st = yan_fail(YAN_ERR_FORMAT, "%s: tensor 'token_embd.weight' has %llu rows (vocabulary size out of range)",
                      path, (unsigned long long)te->ne[1]);
        goto done;
    }
    cfg.n_vocab = (int32_t)te->ne[1];
    cfg.tied_output = yan_gguf_find_tensor(g, "output.weight") == NULL;
    if ((st = yan_tconfig_check(&cfg))) {
        yan_error_prefix(path);
        st = st == YAN_ERR_INVALID_ARG ? YAN_ERR_UNSUPPORTED : st;
        goto done;
    }
    if (T > cfg.n_ctx) {
        st = yan_fail(YAN_ERR_INVALID_ARG, "%s: sequences of %d tokens exceed the model's context length %d", path, T,
                      cfg.n_ctx);
        goto done;
    }
    /* LoRA: the matrices stay mapped when any of them is not f32 */
    bool mapped = lora && yan_tlorai_base_mapped(g);
    if ((st = create(&cfg, lora, mapped, B, T, n_threads, &m))) goto done;
    /* every tensor of the file must be one we train */
    const yan_tparam *tab = lora ? m->base_tensors : m->tensors;
    const int n_tab = lora ? m->n_base_tensors : m->n_tensors;
    float *block = lora ? m->base : m->params;
    for (int64_t i = 0; i < yan_gguf_n_tensors(g); i++) {
        const yan_gguf_tensor *gt = yan_gguf_tensor_at(g, i);
        char name[YAN_GGUF_MAX_NAME + 1];
        snprintf(name, sizeof name, "%.*s", (int)gt->name_len, gt->name);
        if (lora ? yan_tmodel_find_base(m, name) != NULL : yan_tmodel_find(m, name) != NULL) continue;
        if (gt->name_len >= 5 && !memcmp(gt->name + gt->name_len - 5, ".bias", 5))
            st = yan_fail(YAN_ERR_UNSUPPORTED, "%s: tensor '%s': biases are not supported for training", path, name);
        else
            st = yan_fail(YAN_ERR_UNSUPPORTED, "%s: tensor '%s' is not part of a trainable llama model", path, name);
        goto done;
    }
    row = yan_malloc((size_t)(cfg.n_embd > cfg.n_ff ? cfg.n_embd : cfg.n_ff) * sizeof(float) + 64);
    if (!row) {
        st = yan_fail(YAN_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < n_tab; i++) {
        const yan_tparam *p = &tab[i];
        const yan_gguf_tensor *gt = yan_gguf_find_tensor(g, p->name);
        if (!gt) {
            st = yan_fail(YAN_ERR_FORMAT, "%s: missing tensor '%s'", path, p->name);
            goto done;
        }
        uint64_t total = gt->ne[0] * gt->ne[1] * gt->ne[2] * gt->ne[3];
        if ((int64_t)gt->ne[0] != p->ne0 || total != (uint64_t)(p->ne0 * p->ne1)) {
            st = yan_fail(YAN_ERR_FORMAT, "%s: tensor '%s' has shape [%llu, %llu], expected [%lld, %lld]", path,
                          p->name, (unsigned long long)gt->ne[0],
                          (unsigned long long)(gt->ne[0] ? total / gt->ne[0] : 0),
                          (long long)p->ne0, (long long)p->ne1);
            goto done;
        }
        if (!yan_type_supported((int)gt->type)) {
            st = yan_fail(YAN_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s, which yan cannot read", path, p->name,
                          yan_type_name((int)gt->type));
            goto done;
        }
        size_t rb = yan_type_row_bytes((int)gt->type, p->ne0);
        if (p->offset < 0) { /* a matrix of a mapped base: used in place */
            m->act->bm[i] = (yan_mat){.type = (int)gt->type, .ne0 = p->ne0, .ne1 = p->ne1, .row_bytes = rb,
                                      .data = gt->data};
            continue;
        }
        float *dst = block + p->offset;
        for (int64_t r = 0; r < p->ne1; r++) {
            yan_dequantize_row((int)gt->type, gt->data + (size_t)r * rb, row, p->ne0);
            for (int64_t k = 0; k < p->ne0; k++)
                if (!isfinite(row[k])) {
                    st = yan_fail(YAN_ERR_FORMAT, "%s: tensor '%s' has a non-finite value at row %lld", path, p->name,
                                  (long long)r);
                    goto done;
                }
            memcpy(dst + r * p->ne0, row, (size_t)p->ne0 * sizeof(float));
        }
    }
    if (tok) {
        t = yan_malloc(sizeof *t);
        if (!t) {
            st = yan_fail(YAN_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
        yan_tok_init(t);
        if (!(t->path = yan_strdup(path))) {
            st = yan_fail(YAN_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
        size_t len;
        const uint8_t *bytes = yan_gguf_bytes(g, &len);
        if ((st = yan_load_gguf_vocab_mem(t, bytes, len, path))) goto done;
        if ((st = yan_tok_finalize(t))) goto done;
        if (t->n_vocab > cfg.n_vocab) {
            st = yan_fail(YAN_ERR_FORMAT, "%s: the vocabulary has %d tokens but token_embd.weight only %d rows", path,
                          t->n_vocab, cfg.n_vocab);
            goto done;
        }
    }
    if (chat_template && yan_gguf_get_str(g, "tokenizer.chat_template", &s, &n) == YAN_OK) {
        if (!(tmpl = yan_strndup(s, n))) {
            st = yan_fail(YAN_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
    }
    if (lora && mapped) {
        if ((st = yan_tlorai_bind_mapped(m, path))) goto done;
        m->map = g; /* the matrices live in its mapping */
        g = NULL;
    }
    st = YAN_OK;
done:
    yan_free(row);
    yan_gguf_close(g);
    if (st) {
        yan_tmodel_free(m);
        if (t) {
            yan_tok_release(t);
            yan_free(t);
        }
        yan_free(tmpl);
        return st;
    }
    *out = m;
    if (tok) *tok = t;
    if (chat_template) *chat_template = tmpl;
    return YAN_OK;
}

yan_status yan_tmodel_load_gguf(const char *path, int B, int T, int n_threads, yan_tmodel **out, yan_tokenizer **tok,
                                char **chat_template) {
    return load(path, NULL, B, T, n_threads, out, tok, chat_template);
}

yan_status yan_tmodel_load_lora(const char *path, const yan_tlora *lora, int B, int T, int n_threads,
                                yan_tmodel **out, yan_tokenizer **tok, char **chat_template) {
    if (!lora) return yan_fail(YAN_ERR_INVALID_ARG, "yan_tmodel_load_lora: no LoRA settings");
    return load(path, lora, B, T, n_threads, out, tok, chat_template);
}

/* ------------------------------------------------------------ GGUF out */

yan_status yan_tmodel_to_gguf(const yan_tmodel *m, const yan_tokenizer *tok, const char *chat_template,
                              const char *name, yan_gguf_writer *w) {
    const yan_tconfig *c = &m->cfg;
    if (m->lora.rank)
        return yan_fail(YAN_ERR_INVALID_ARG, "a LoRA-mode model has no full weights to write (write its adapter)");
    if (tok && tok->n_vocab > c->n_vocab)
        return yan_fail(YAN_ERR_INVALID_ARG, "the tokenizer has %d tokens but the model only %d embeddings",
                        tok->n_vocab, c->n_vocab);
    yan_status st;
#define CK(x)                                                                 \
    do {                                                                      \
        if ((st = (x))) return st;                                            \
    } while (0)
    CK(yan_gguf_w_set_str(w, "general.architecture", "llama", 5));
    if (name) CK(yan_gguf_w_set_str(w, "general.name", name, strlen(name)));
    CK(yan_gguf_w_set_u32(w, "general.file_type", 0));
    CK(yan_gguf_w_set_u32(w, "llama.context_length", (uint32_t)c->n_ctx));
    CK(yan_gguf_w_set_u32(w, "llama.embedding_length", (uint32_t)c->n_embd));
    CK(yan_gguf_w_set_u32(w, "llama.block_count", (uint32_t)c->n_layer));
    CK(yan_gguf_w_set_u32(w, "llama.feed_forward_length", (uint32_t)c->n_ff));
    CK(yan_gguf_w_set_u32(w, "llama.attention.head_count", (uint32_t)c->n_head));
    CK(yan_gguf_w_set_u32(w, "llama.attention.head_count_kv", (uint32_t)c->n_head_kv));
    CK(yan_gguf_w_set_f32(w, "llama.attention.layer_norm_rms_epsilon", c->norm_eps));
    CK(yan_gguf_w_set_f32(w, "llama.rope.freq_base", c->rope_base));
    CK(yan_gguf_w_set_u32(w, "llama.rope.dimension_count", (uint32_t)(c->n_embd / c->n_head)));
    CK(yan_gguf_w_set_u32(w, "llama.vocab_size", (uint32_t)c->n_vocab));
    if (tok) CK(yan_tok_save_gguf_kv(tok, w));
    if (chat_template) CK(yan_gguf_w_set_str(w, "tokenizer.chat_template", chat_template, strlen(chat_template)));
    for (int i = 0; i < m->n_tensors; i++) {
        const yan_tparam *t = &m->tensors[i];
        uint64_t dims[2] = {(uint64_t)t->ne0, (uint64_t)t->ne1};
        CK(yan_gguf_w_add_tensor(w, t->name, YAN_GGML_F32, t->ne1 == 1 ? 1 : 2, dims, m->params + t->offset));
    }
#undef CK
    return YAN_OK;
}
