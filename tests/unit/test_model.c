/* test_model.c — model loading, the forward pass, the KV cache, the thread
 * pool and generation, on tiny random-weight GGUF models written here for
 * each architecture (llama, qwen2, qwen3, gpt2) and weight type. The
 * reference is a naive f32 forward pass in this file (no KV cache, plain
 * loops over the dequantized weights), independent of src/model. */
#include "test.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/pool.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "tensor/tensor.h"
#include "tokenizer/pretok.h"
#include "tokenizer/tok_gguf.h"

/* ---------------------------------------------------------------- pool */

typedef struct {
    yan_pool *p;
    int vals[8][64];
    _Atomic int bad;
} pool_job;

static void pool_fn(void *ud, int ith, int nth) {
    pool_job *j = ud;
    for (int phase = 0; phase < 64; phase++) {
        j->vals[ith][phase] = phase * 10 + ith;
        yan_pool_barrier(j->p);
        for (int o = 0; o < nth; o++)
            if (j->vals[o][phase] != phase * 10 + o) atomic_fetch_add(&j->bad, 1);
        yan_pool_barrier(j->p);
    }
}

TEST(pool_barrier_phases) {
    size_t before = yan_alloc_used();
    for (int n = 1; n <= 4; n++) {
        yan_pool *p;
        CHECK(yan_pool_new(n, &p) == YAN_OK);
        CHECK(yan_pool_size(p) == n);
        for (int run = 0; run < 20; run++) {
            pool_job j = {.p = p};
            yan_pool_run(p, pool_fn, &j);
            CHECK(atomic_load(&j.bad) == 0);
        }
        yan_pool_free(p);
    }
    yan_pool_free(NULL);
    CHECK(yan_alloc_used() == before);
}

/* ------------------------------------------------------------ tokenizer */

static uint64_t g_rng;
static float frand(void) { /* uniform in [-1, 1) */
    g_rng += 0x9E3779B97F4A7C15ull;
    uint64_t z = g_rng;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)((double)(z >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* 256 bytes, merges th, the, " t", then two CONTROL tokens. */
static void make_tok(yan_tokenizer *t) {
    yan_tok_init(t);
    t->pre = YAN_PRE_GPT2;
    for (int b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        yan_tok_set(t, b, &c, 1, YAN_TT_NORMAL, 0);
    }
    yan_tok_set(t, 256, "th", 2, YAN_TT_NORMAL, 0);
    yan_tok_set(t, 257, "the", 3, YAN_TT_NORMAL, 0);
    yan_tok_set(t, 258, " t", 2, YAN_TT_NORMAL, 0);
    yan_tok_add_merge(t, 't', 'h');
    yan_tok_add_merge(t, 256, 'e');
    yan_tok_add_merge(t, ' ', 't');
    yan_tok_set(t, 259, "<|endoftext|>", 13, YAN_TT_CONTROL, 0);
    yan_tok_set(t, 260, "<|im_end|>", 10, YAN_TT_CONTROL, 0);
    t->special[YAN_SPECIAL_EOS] = 259;
    CHECK(yan_tok_finalize(t) == YAN_OK);
}

/* --------------------------------------------------------- model writer */

typedef struct {
    char name[64];
    int type;
    int64_t ne0, ne1; /* ne1 = 1 for vectors */
    int n_dims;
    float *f;         /* dequantized values (what the file holds) */
    void *q;          /* encoded bytes written to the file */
} tw;

typedef struct {
    const char *arch;
    int C, L, NH, NKV, HD, FF, ctx_train;
    int wtype;            /* 2-D matrices (not token_embd) */
    int embd_type;
    bool tied, rope_freqs;
    float rope_factor;    /* 0 = no scaling keys */
    float rope_base;
    int n_rot;            /* 0 = head dim */
    const char *omit;     /* tensor left out */
    const char *bad_shape;/* tensor written with one row too many */
    const char *q41;      /* tensor written as q4_1 (unsupported) */
    const char *arch_name;/* general.architecture override */
    int eos_id;           /* >= 0: override tokenizer.ggml.eos_token_id */
    bool zero_out_norm;   /* output_norm.weight = 0 */
} spec;

typedef struct {
    spec s;
    int V;
    tw t[256];
    int n;
} wmodel;

static tw *find_w(wmodel *w, const char *name) {
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->t[i].name, name)) return &w->t[i];
    return NULL;
}

static void add_t(wmodel *w, const char *name, int type, int64_t ne0, int64_t ne1, int n_dims, float scale, float bias) {
    tw *t = &w->t[w->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type;
    t->ne0 = ne0;
    t->ne1 = ne1;
    t->n_dims = n_dims;
    size_t n = (size_t)(ne0 * ne1);
    t->f = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) t->f[i] = bias + scale * frand();
    if (w->s.zero_out_norm && !strcmp(name, "output_norm.weight"))
        for (size_t i = 0; i < n; i++) t->f[i] = 0;
    size_t rb = yan_type_row_bytes(type, ne0);
    t->q = calloc((size_t)ne1, rb);
    for (int64_t r = 0; r < ne1; r++) {
        CHECK(yan_quantize_row(type, t->f + r * ne0, (uint8_t *)t->q + r * rb, ne0));
        yan_dequantize_row(type, (uint8_t *)t->q + r * rb, t->f + r * ne0, ne0);
    }
}

static void add_mat(wmodel *w, const char *name, int64_t in, int64_t out) {
    add_t(w, name, w->s.wtype, in, out, 2, sqrtf(3.0f / (float)in), 0);
}
static void add_vec(wmodel *w, const char *name, int64_t n, float scale, float bias) {
    add_t(w, name, YAN_T_F32, n, 1, 1, scale, bias);
}

static void wmodel_free(wmodel *w) {
    for (int i = 0; i < w->n; i++) {
        free(w->t[i].f);
        free(w->t[i].q);
    }
    w->n = 0;
}

/* Build the weights of s in w and write the GGUF to path. */
static void write_model(const spec *s, wmodel *w, const char *path) {
    memset(w, 0, sizeof *w);
    w->s = *s;
    g_rng = 12345;
    yan_tokenizer tok;
    make_tok(&tok);
    w->V = tok.n_vocab;
    const int C = s->C, NH = s->NH, NKV = s->NKV, HD = s->HD, FF = s->FF, V = w->V;
    bool gpt2 = !strcmp(s->arch, "gpt2");
    add_t(w, "token_embd.weight", s->embd_type, C, V, 2, 1.0f, 0);
    if (gpt2) add_t(w, "position_embd.weight", YAN_T_F32, C, s->ctx_train, 2, 0.5f, 0);
    add_vec(w, "output_norm.weight", C, 0.2f, 1.0f);
    if (gpt2) add_vec(w, "output_norm.bias", C, 0.1f, 0);
    if (!s->tied) add_mat(w, "output.weight", C, V);
    int n_rot = s->n_rot ? s->n_rot : HD;
    if (s->rope_freqs) add_vec(w, "rope_freqs.weight", n_rot / 2, 0.5f, 2.0f);
    char b[96];
#define NAME(fmt) (snprintf(b, sizeof b, "blk.%d." fmt, l), b)
    for (int l = 0; l < s->L; l++) {
        add_vec(w, NAME("attn_norm.weight"), C, 0.2f, 1.0f);
        add_vec(w, NAME("ffn_norm.weight"), C, 0.2f, 1.0f);
        if (gpt2) {
            add_vec(w, NAME("attn_norm.bias"), C, 0.1f, 0);
            add_vec(w, NAME("ffn_norm.bias"), C, 0.1f, 0);
            add_mat(w, NAME("attn_qkv.weight"), C, 3 * C);
            add_vec(w, NAME("attn_qkv.bias"), 3 * C, 0.1f, 0);
            add_mat(w, NAME("attn_output.weight"), C, C);
            add_vec(w, NAME("attn_output.bias"), C, 0.1f, 0);
            add_mat(w, NAME("ffn_up.weight"), C, FF);
            add_vec(w, NAME("ffn_up.bias"), FF, 0.1f, 0);
            add_mat(w, NAME("ffn_down.weight"), FF, C);
            add_vec(w, NAME("ffn_down.bias"), C, 0.1f, 0);
            continue;
        }
        add_mat(w, NAME("attn_q.weight"), C, NH * HD);
        add_mat(w, NAME("attn_k.weight"), C, NKV * HD);
        add_mat(w, NAME("attn_v.weight"), C, NKV * HD);
        if (!strcmp(s->arch, "qwen2")) {
            add_vec(w, NAME("attn_q.bias"), NH * HD, 0.3f, 0);
            add_vec(w, NAME("attn_k.bias"), NKV * HD, 0.3f, 0);
            add_vec(w, NAME("attn_v.bias"), NKV * HD, 0.3f, 0);
        }
        if (!strcmp(s->arch, "qwen3")) {
            add_vec(w, NAME("attn_q_norm.weight"), HD, 0.3f, 1.0f);
            add_vec(w, NAME("attn_k_norm.weight"), HD, 0.3f, 1.0f);
        }
        add_mat(w, NAME("attn_output.weight"), NH * HD, C);
        add_mat(w, NAME("ffn_gate.weight"), C, FF);
        add_mat(w, NAME("ffn_up.weight"), C, FF);
        add_mat(w, NAME("ffn_down.weight"), FF, C);
    }
#undef NAME
    yan_gguf_writer *gw;
    CHECK(yan_gguf_writer_new(&gw) == YAN_OK);
    const char *an = s->arch_name ? s->arch_name : s->arch;
    yan_gguf_w_set_str(gw, "general.architecture", an, strlen(an));
    yan_gguf_w_set_str(gw, "general.name", "tiny", 4);
    char k[128];
#define KEY(x) (snprintf(k, sizeof k, "%s." x, an), k)
    yan_gguf_w_set_u32(gw, KEY("context_length"), (uint32_t)s->ctx_train);
    yan_gguf_w_set_u32(gw, KEY("embedding_length"), (uint32_t)C);
    yan_gguf_w_set_u32(gw, KEY("block_count"), (uint32_t)s->L);
    yan_gguf_w_set_u32(gw, KEY("feed_forward_length"), (uint32_t)FF);
    yan_gguf_w_set_u32(gw, KEY("attention.head_count"), (uint32_t)NH);
    yan_gguf_w_set_u32(gw, KEY("attention.head_count_kv"), (uint32_t)NKV);
    if (gpt2) {
        yan_gguf_w_set_f32(gw, KEY("attention.layer_norm_epsilon"), 1e-5f);
    } else {
        yan_gguf_w_set_f32(gw, KEY("attention.layer_norm_rms_epsilon"), 1e-6f);
        yan_gguf_w_set_u32(gw, KEY("attention.key_length"), (uint32_t)HD);
        yan_gguf_w_set_u32(gw, KEY("attention.value_length"), (uint32_t)HD);
        yan_gguf_w_set_u32(gw, KEY("rope.dimension_count"), (uint32_t)n_rot);
        yan_gguf_w_set_f32(gw, KEY("rope.freq_base"), s->rope_base > 0 ? s->rope_base : 10000.0f);
        if (s->rope_factor > 0) {
            yan_gguf_w_set_str(gw, KEY("rope.scaling.type"), "linear", 6);
            yan_gguf_w_set_f32(gw, KEY("rope.scaling.factor"), s->rope_factor);
        }
    }
#undef KEY
    CHECK(yan_tok_save_gguf_kv(&tok, gw) == YAN_OK);
    if (s->eos_id >= 0) yan_gguf_w_set_u32(gw, "tokenizer.ggml.eos_token_id", (uint32_t)s->eos_id);
    uint8_t zeros[4096] = {0};
    for (int i = 0; i < w->n; i++) {
        tw *t = &w->t[i];
        if (s->omit && !strcmp(s->omit, t->name)) continue;
        uint64_t dims[2] = {(uint64_t)t->ne0, (uint64_t)t->ne1};
        if (s->q41 && !strcmp(s->q41, t->name)) {
            CHECK((size_t)(t->ne0 * t->ne1 / 32 * 36) <= sizeof zeros);
            CHECK(yan_gguf_w_add_tensor(gw, t->name, YAN_GGML_Q8_1, (uint32_t)t->n_dims, dims, zeros) == YAN_OK);
            continue;
        }
        if (s->bad_shape && !strcmp(s->bad_shape, t->name)) {
            dims[1] -= 1; /* fewer rows: the data is big enough */
            if (t->n_dims == 1) dims[0] -= 1;
        }
        CHECK(yan_gguf_w_add_tensor(gw, t->name, (uint32_t)t->type, (uint32_t)t->n_dims, dims, t->q) == YAN_OK);
    }
    CHECK(yan_gguf_w_write(gw, path) == YAN_OK);
    yan_gguf_writer_free(gw);
    yan_tok_release(&tok);
}

static spec base_spec(const char *arch) {
    spec s = {0};
    s.arch = arch;
    s.C = 64;
    s.L = 2;
    s.NH = 4;
    s.NKV = 2;
    s.HD = 16;
    s.FF = 96;
    s.ctx_train = 64;
    s.wtype = YAN_T_F32;
    s.embd_type = YAN_T_F32;
    s.eos_id = -1;
    if (!strcmp(arch, "gpt2")) s.NKV = 4;
    if (!strcmp(arch, "qwen3")) s.HD = 32; /* NH * HD = 128 != C */
    return s;
}

/* ------------------------------------------------------ naive reference */

static void matvec(const tw *w, const float *x, float *y) {
    for (int64_t r = 0; r < w->ne1; r++) {
        double s = 0;
        for (int64_t c = 0; c < w->ne0; c++) s += (double)w->f[r * w->ne0 + c] * x[c];
        y[r] = (float)s;
    }
}

static void ref_norm(const wmodel *w, const float *x, float *out, int n, const float *g, const float *b) {
    bool ln = !strcmp(w->s.arch, "gpt2");
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++) mean += x[i];
    mean /= n;
    if (ln) {
        for (int i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
        var /= n;
        for (int i = 0; i < n; i++) out[i] = (float)((x[i] - mean) / sqrt(var + 1e-5)) * g[i] + b[i];
    } else {
        double ss = 0;
        for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
        float sc = (float)(1.0 / sqrt(ss / n + 1e-6));
        for (int i = 0; i < n; i++) out[i] = x[i] * sc * g[i];
    }
}

static void ref_rope(const wmodel *w, float *v, int pos, bool neox) {
    int HD = w->s.HD, n_rot = w->s.n_rot ? w->s.n_rot : HD;
    (void)HD;
    float fs = w->s.rope_factor > 0 ? 1.0f / w->s.rope_factor : 1.0f;
    float base = w->s.rope_base > 0 ? w->s.rope_base : 10000.0f;
    const tw *ff = find_w((wmodel *)w, "rope_freqs.weight");
    for (int i = 0; i < n_rot / 2; i++) {
        double th = pos * fs * pow(base, -2.0 * i / n_rot) / (ff ? ff->f[i] : 1.0);
        double c = cos(th), s = sin(th);
        int a = neox ? i : 2 * i, b2 = neox ? i + n_rot / 2 : 2 * i + 1;
        float x0 = v[a], x1 = v[b2];
        v[a] = (float)(x0 * c - x1 * s);
        v[b2] = (float)(x0 * s + x1 * c);
    }
}

#define W(fmt) (snprintf(nb, sizeof nb, fmt, l), find_w(w, nb))

/* logits (n, V) for tokens[0..n) */
static void ref_forward(wmodel *w, const yan_token *tokens, int n, float *logits) {
    const spec *s = &w->s;
    const int C = s->C, NH = s->NH, NKV = s->NKV, HD = s->HD, FF = s->FF, V = w->V;
    bool gpt2 = !strcmp(s->arch, "gpt2"), neox = strcmp(s->arch, "llama") != 0;
    float *x = calloc((size_t)(n * C), 4), *xn = calloc((size_t)C, 4);
    float *q = calloc((size_t)(n * NH * HD), 4), *k = calloc((size_t)(n * NKV * HD), 4),
          *v = calloc((size_t)(n * NKV * HD), 4);
    float *att = calloc((size_t)(NH * HD), 4), *o = calloc((size_t)C, 4), *g = calloc((size_t)FF, 4),
          *u = calloc((size_t)FF, 4), *qkv = calloc((size_t)(3 * C), 4), *sc = calloc((size_t)n, 4);
    char nb[96];
    int l = 0;
    const tw *E = find_w(w, "token_embd.weight"), *P = find_w(w, "position_embd.weight");
    for (int t = 0; t < n; t++)
        for (int i = 0; i < C; i++) x[t * C + i] = E->f[tokens[t] * C + i] + (gpt2 ? P->f[t * C + i] : 0);
    for (l = 0; l < s->L; l++) {
        for (int t = 0; t < n; t++) {
            const tw *nb_ = gpt2 ? W("blk.%d.attn_norm.bias") : NULL;
            ref_norm(w, x + t * C, xn, C, W("blk.%d.attn_norm.weight")->f, nb_ ? nb_->f : NULL);
            float *qt = q + t * NH * HD, *kt = k + t * NKV * HD, *vt = v + t * NKV * HD;
            if (gpt2) {
                matvec(W("blk.%d.attn_qkv.weight"), xn, qkv);
                const float *bb = W("blk.%d.attn_qkv.bias")->f;
                for (int i = 0; i < 3 * C; i++) qkv[i] += bb[i];
                memcpy(qt, qkv, (size_t)C * 4);
                memcpy(kt, qkv + C, (size_t)C * 4);
                memcpy(vt, qkv + 2 * C, (size_t)C * 4);
            } else {
                matvec(W("blk.%d.attn_q.weight"), xn, qt);
                matvec(W("blk.%d.attn_k.weight"), xn, kt);
                matvec(W("blk.%d.attn_v.weight"), xn, vt);
                const tw *bq = W("blk.%d.attn_q.bias"), *bk = W("blk.%d.attn_k.bias"), *bv = W("blk.%d.attn_v.bias");
                for (int i = 0; bq && i < NH * HD; i++) qt[i] += bq->f[i];
                for (int i = 0; bk && i < NKV * HD; i++) kt[i] += bk->f[i];
                for (int i = 0; bv && i < NKV * HD; i++) vt[i] += bv->f[i];
                const tw *qn = W("blk.%d.attn_q_norm.weight"), *kn = W("blk.%d.attn_k_norm.weight");
                for (int h = 0; qn && h < NH; h++) {
                    float tmp[256];
                    ref_norm(w, qt + h * HD, tmp, HD, qn->f, NULL);
                    memcpy(qt + h * HD, tmp, (size_t)HD * 4);
                }
                for (int h = 0; kn && h < NKV; h++) {
                    float tmp[256];
                    ref_norm(w, kt + h * HD, tmp, HD, kn->f, NULL);
                    memcpy(kt + h * HD, tmp, (size_t)HD * 4);
                }
                for (int h = 0; h < NH; h++) ref_rope(w, qt + h * HD, t, neox);
                for (int h = 0; h < NKV; h++) ref_rope(w, kt + h * HD, t, neox);
            }
        }
        for (int t = 0; t < n; t++) {
            for (int h = 0; h < NH; h++) {
                int kvh = h / (NH / NKV);
                double mx = -1e30;
                for (int j = 0; j <= t; j++) {
                    double d = 0;
                    for (int i = 0; i < HD; i++) d += (double)q[t * NH * HD + h * HD + i] * k[j * NKV * HD + kvh * HD + i];
                    sc[j] = (float)(d / sqrt((double)HD));
                    if (sc[j] > mx) mx = sc[j];
                }
                double sum = 0;
                for (int j = 0; j <= t; j++) sum += exp(sc[j] - mx);
                for (int i = 0; i < HD; i++) {
                    double a = 0;
                    for (int j = 0; j <= t; j++) a += exp(sc[j] - mx) / sum * v[j * NKV * HD + kvh * HD + i];
                    att[h * HD + i] = (float)a;
                }
            }
            matvec(W("blk.%d.attn_output.weight"), att, o);
            const tw *bo = W("blk.%d.attn_output.bias");
            for (int i = 0; i < C; i++) x[t * C + i] += o[i] + (bo ? bo->f[i] : 0);
            const tw *nb_ = gpt2 ? W("blk.%d.ffn_norm.bias") : NULL;
            ref_norm(w, x + t * C, xn, C, W("blk.%d.ffn_norm.weight")->f, nb_ ? nb_->f : NULL);
            matvec(W("blk.%d.ffn_up.weight"), xn, u);
            if (gpt2) {
                const float *bu = W("blk.%d.ffn_up.bias")->f;
                for (int i = 0; i < FF; i++) {
                    double z = u[i] + bu[i];
                    g[i] = (float)(0.5 * z * (1 + tanh(0.7978845608028654 * (z + 0.044715 * z * z * z))));
                }
            } else {
                matvec(W("blk.%d.ffn_gate.weight"), xn, g);
                for (int i = 0; i < FF; i++) g[i] = (float)(g[i] / (1 + exp(-(double)g[i])) * u[i]);
            }
            matvec(W("blk.%d.ffn_down.weight"), g, o);
            const tw *bd = W("blk.%d.ffn_down.bias");
            for (int i = 0; i < C; i++) x[t * C + i] += o[i] + (bd ? bd->f[i] : 0);
        }
    }
    const tw *on = find_w(w, "output_norm.weight"), *onb = find_w(w, "output_norm.bias");
    const tw *out = find_w(w, "output.weight");
    if (!out) out = E;
    for (int t = 0; t < n; t++) {
        ref_norm(w, x + t * C, xn, C, on->f, onb ? onb->f : NULL);
        matvec(out, xn, logits + (size_t)t * V);
    }
    free(x); free(xn); free(q); free(k); free(v); free(att); free(o); free(g); free(u); free(qkv); free(sc);
}
#undef W

/* -------------------------------------------------------------- helpers */

static const char *tmp_path(const char *name) {
    static char buf[8][512];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof buf[i], "%s/%s", yan_test_tmp_dir(), name);
    return buf[i];
}

static float range_of(const float *x, int n) {
    float lo = x[0], hi = x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
    }
    return hi - lo;
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* max |a - b| over n values, relative to the range of b (at least 1) */
static double rel_diff(const float *a, const float *b, int n) {
    double d = 0;
    for (int i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (e > d || isnan(e)) d = isnan(e) ? 1e9 : e;
    }
    double r = range_of(b, n);
    return d / (r > 1 ? r : 1);
}

static const yan_token k_toks[] = {72, 101, 256, 257, 32, 258, 1, 200, 99, 257, 10, 33, 45, 120, 7, 258, 64, 90};
#define N_TOKS ((int)(sizeof k_toks / sizeof k_toks[0]))

static yan_context *new_ctx(yan_model *m, int n_ctx, int n_batch, int n_threads, yan_kv_type kv) {
    yan_context_params cp = yan_context_params_default();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_batch;
    cp.n_threads = n_threads;
    cp.kv_type = kv;
    yan_context *c = NULL;
    yan_status st = yan_context_new(m, &cp, &c);
    if (st) fprintf(stderr, "  context: %s\n", yan_last_error());
    CHECK(st == YAN_OK);
    return c;
}

/* Full check of one model file against the reference; tol relative to the
 * logit range for f32 KV, kv16_tol for the f16 cache. Returns top-1 agreement. */
static double check_model(const spec *s, double tol, double kv16_tol) {
    wmodel w;
    const char *path = tmp_path("m.gguf");
    write_model(s, &w, path);
    const int V = w.V;
    float *ref = malloc((size_t)N_TOKS * V * 4);
    ref_forward(&w, k_toks, N_TOKS, ref);
    yan_model *m = NULL;
    yan_status st = yan_model_load(path, NULL, &m);
    if (st) fprintf(stderr, "  load: %s\n", yan_last_error());
    CHECK(st == YAN_OK);
    double agree = 0;
    if (!m) goto out;
    CHECK(yan_model_n_vocab(m) == V && yan_model_n_layer(m) == s->L && yan_model_n_embd(m) == s->C);
    CHECK(!strcmp(yan_model_arch(m), s->arch) && !strcmp(yan_model_name(m), "tiny"));

    /* (1) one call with all logits vs the reference */
    yan_context *c = new_ctx(m, 32, 0, 2, YAN_KV_F32);
    CHECK(yan_eval(c, k_toks, N_TOKS, true) == YAN_OK);
    CHECK(yan_context_n_past(c) == N_TOKS);
    double worst = 0;
    int top = 0;
    for (int t = 0; t < N_TOKS; t++) {
        const float *lg = yan_logits(c, t);
        CHECK(lg != NULL);
        if (!lg) break;
        double d = rel_diff(lg, ref + (size_t)t * V, V);
        if (d > worst) worst = d;
        top += argmax(lg, V) == argmax(ref + (size_t)t * V, V);
    }
    agree = (double)top / N_TOKS;
    if (worst > tol) fprintf(stderr, "  %s type %d: max rel diff vs reference %g > %g\n", s->arch, s->wtype, worst, tol);
    CHECK(worst <= tol);
    CHECK(yan_logits(c, -1) == yan_logits(c, N_TOKS - 1) && yan_logits(c, N_TOKS) == NULL);

    /* (2) token by token, 1 thread, batch 4 chunks: the same numbers */
    yan_context *c1 = new_ctx(m, 32, 4, 1, YAN_KV_F32);
    for (int t = 0; t < N_TOKS; t++) {
        CHECK(yan_eval(c1, &k_toks[t], 1, false) == YAN_OK);
        const float *a = yan_logits(c1, -1), *b = yan_logits(c, t);
        CHECK(a && b && rel_diff(a, b, V) <= 1e-4);
        CHECK(yan_logits(c1, 0) == a);
    }
    /* (3) truncate + re-eval reproduces; batch of 4 splits 18 tokens into chunks */
    CHECK(yan_context_truncate(c1, 5) == YAN_OK && yan_context_n_past(c1) == 5);
    CHECK(yan_logits(c1, -1) == NULL);
    CHECK(yan_eval(c1, k_toks + 5, N_TOKS - 5, true) == YAN_OK);
    for (int t = 5; t < N_TOKS; t++) CHECK(rel_diff(yan_logits(c1, t - 5), yan_logits(c, t), V) <= 1e-4);
    CHECK(yan_context_truncate(c1, 0) == YAN_OK);
    CHECK(yan_eval(c1, k_toks, N_TOKS, false) == YAN_OK);
    CHECK(rel_diff(yan_logits(c1, -1), yan_logits(c, N_TOKS - 1), V) <= 1e-4);
    CHECK(yan_logits(c1, 0) == NULL);
    CHECK(yan_context_truncate(c1, 30) == YAN_ERR_INVALID_ARG);

    /* (4) f16 KV cache */
    yan_context *c16 = new_ctx(m, 32, 0, 2, YAN_KV_F16);
    CHECK(yan_eval(c16, k_toks, N_TOKS, true) == YAN_OK);
    double w16 = 0;
    for (int t = 0; t < N_TOKS; t++) {
        double d = rel_diff(yan_logits(c16, t), yan_logits(c, t), V);
        if (d > w16) w16 = d;
    }
    if (w16 > kv16_tol) fprintf(stderr, "  f16 KV: %g > %g\n", w16, kv16_tol);
    CHECK(w16 <= kv16_tol);
    yan_context_free(c16);
    yan_context_free(c1);
    yan_context_free(c);
    yan_model_free(m);
out:
    free(ref);
    wmodel_free(&w);
    return agree;
}

/* -------------------------------------------------------------- tests */

TEST(model_llama_f32_matches_reference) {
    size_t before = yan_alloc_used();
    spec s = base_spec("llama");
    CHECK(check_model(&s, 1e-4, 2e-3) == 1.0);
    s.tied = true;           /* output tied to token_embd */
    s.rope_factor = 2.0f;    /* linear scaling */
    s.rope_freqs = true;     /* Llama 3 frequency divisors */
    s.rope_base = 500000.0f;
    CHECK(check_model(&s, 1e-4, 2e-3) == 1.0);
    s = base_spec("llama");
    s.n_rot = 8;             /* partial rotation */
    s.NKV = 1;               /* 4 query heads share one kv head */
    CHECK(check_model(&s, 1e-4, 2e-3) == 1.0);
    CHECK(yan_alloc_used() == before);
}

TEST(model_qwen2_f32_matches_reference) {
    spec s = base_spec("qwen2");
    s.rope_base = 1000000.0f;
    s.tied = true;
    CHECK(check_model(&s, 1e-4, 2e-3) == 1.0);
}

TEST(model_qwen3_f32_matches_reference) {
    spec s = base_spec("qwen3");
    s.rope_base = 1000000.0f;
    CHECK(check_model(&s, 1e-4, 2e-3) == 1.0);
}

TEST(model_gpt2_f32_matches_reference) {
    spec s = base_spec("gpt2");
    CHECK(check_model(&s, 1e-4, 2e-3) == 1.0);
    s.tied = true;
    CHECK(check_model(&s, 1e-4, 2e-3) == 1.0);
}

TEST(model_weight_types) {
    /* f16 / bf16 weights are exact in the reference (it uses the dequantized
     * values); bf16 rounds activations to bf16, q8_0 / q4_0 / k-quants quantize
     * activations to 8 bits: looser bounds, and top-1 agreement. */
    const struct { int type; int embd; double tol; double agree; } cases[] = {
        {YAN_T_F16, YAN_T_F16, 1e-4, 1.0},   {YAN_T_BF16, YAN_T_BF16, 3e-2, 0.9},
        {YAN_T_Q8_0, YAN_T_Q8_0, 3e-2, 0.9}, {YAN_T_Q4_0, YAN_T_Q4_0, 5e-2, 0.8},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        spec s = base_spec(i % 2 ? "qwen2" : "llama");
        s.wtype = cases[i].type;
        s.embd_type = cases[i].embd;
        double a = check_model(&s, cases[i].tol, 2e-2);
        if (a < cases[i].agree) fprintf(stderr, "  type %d: top-1 agreement %.2f\n", cases[i].type, a);
        CHECK(a >= cases[i].agree);
    }
    const int kq[] = {YAN_T_Q4_K, YAN_T_Q5_K, YAN_T_Q6_K};
    for (int i = 0; i < 3; i++) { /* k-quants need rows of 256 */
        spec s = base_spec(i == 1 ? "qwen3" : "llama");
        s.C = 256;
        s.HD = 64;
        s.FF = 512;
        s.wtype = kq[i];
        s.embd_type = YAN_T_Q6_K;
        double a = check_model(&s, 8e-2, 2e-2);
        if (a < 0.8) fprintf(stderr, "  type %d: top-1 agreement %.2f\n", kq[i], a);
        CHECK(a >= 0.8);
    }
}

TEST(model_no_mmap_and_describe) {
    spec s = base_spec("llama");
    wmodel w;
    const char *path = tmp_path("nommap.gguf");
    write_model(&s, &w, path);
    yan_model_params mp = yan_model_params_default();
    mp.use_mmap = false;
    mp.check_tensors = true;
    yan_model *a = NULL, *b = NULL;
    CHECK(yan_model_load(path, &mp, &a) == YAN_OK);
    CHECK(yan_model_load(path, NULL, &b) == YAN_OK);
    if (a && b) {
        yan_context *ca = new_ctx(a, 16, 0, 1, YAN_KV_F16), *cb = new_ctx(b, 16, 0, 1, YAN_KV_F16);
        CHECK(yan_eval(ca, k_toks, 8, false) == YAN_OK && yan_eval(cb, k_toks, 8, false) == YAN_OK);
        CHECK(memcmp(yan_logits(ca, -1), yan_logits(cb, -1), (size_t)w.V * 4) == 0);
        yan_context_free(ca);
        yan_context_free(cb);
        char small[8];
        int64_t need = yan_model_describe(a, small, sizeof small);
        CHECK(need < -8);
        char *buf = malloc((size_t)-need);
        CHECK(yan_model_describe(a, buf, (size_t)-need) == -need - 1);
        CHECK(strstr(buf, "architecture: llama") && strstr(buf, "f32"));
        free(buf);
        CHECK(yan_model_n_params(a) > 0 && yan_model_weight_bytes(a) >= 4 * yan_model_n_params(a));
        CHECK(yan_model_chat_template(a) == NULL);
        const yan_tokenizer *tk = yan_model_tokenizer(a);
        CHECK(yan_tokenizer_n_vocab(tk) == w.V);
        CHECK(yan_model_is_eog(a, 259) && yan_model_is_eog(a, 260) && !yan_model_is_eog(a, 257));
        yan_context_params cp = yan_context_params_default();
        cp.n_ctx = 16;
        uint64_t b16 = yan_context_bytes(a, &cp);
        cp.n_ctx = 64;
        uint64_t b64 = yan_context_bytes(a, &cp);
        /* K and V of 2 layers, 2 kv heads x 16 dims, f16: 256 bytes per token */
        CHECK(b16 > 0 && b64 - b16 >= 48 * 256);
    }
    yan_model_free(a);
    yan_model_free(b);
    wmodel_free(&w);
}

TEST(model_context_full) {
    spec s = base_spec("qwen2");
    wmodel w;
    const char *path = tmp_path("full.gguf");
    write_model(&s, &w, path);
    yan_model *m = NULL;
    CHECK(yan_model_load(path, NULL, &m) == YAN_OK);
    if (m) {
        yan_context *c = new_ctx(m, 8, 0, 2, YAN_KV_F16);
        CHECK(yan_context_n_ctx(c) == 8);
        CHECK(yan_eval(c, k_toks, 6, false) == YAN_OK);
        const float *before = yan_logits(c, -1);
        CHECK(yan_eval(c, k_toks, 3, false) == YAN_ERR_CONTEXT_FULL);
        CHECK(strstr(yan_last_error(), "do not fit") != NULL);
        CHECK(yan_context_n_past(c) == 6 && yan_logits(c, -1) == before);
        YAN_TESTCASE(yan_context_n_past(c) + 2 == yan_context_n_ctx(c));
        CHECK(yan_eval(c, k_toks, 2, false) == YAN_OK && yan_context_n_past(c) == 8);
        CHECK(yan_eval(c, k_toks, 1, false) == YAN_ERR_CONTEXT_FULL);
        yan_token bad = 100000;
        CHECK(yan_context_truncate(c, 0) == YAN_OK);
        CHECK(yan_eval(c, &bad, 1, false) == YAN_ERR_INVALID_ARG);
        CHECK(yan_eval(c, k_toks, 0, false) == YAN_ERR_INVALID_ARG);
        /* generate: prompt + max_tokens must fit, nothing evaluated otherwise */
        yan_sampler_params sp = yan_sampler_params_default();
        sp.temperature = 0;
        yan_sampler *smp = NULL;
        CHECK(yan_sampler_new(&sp, yan_model_n_vocab(m), &smp) == YAN_OK);
        yan_generate_params gp = yan_generate_params_default();
        gp.max_tokens = 4;
        yan_generate_result r;
        CHECK(yan_generate(c, smp, k_toks, 5, &gp, &r) == YAN_ERR_CONTEXT_FULL);
        CHECK(yan_context_n_past(c) == 0);
        yan_sampler_free(smp);
        yan_context_free(c);
        /* gpt2: no context beyond its learned positions */
        yan_model_free(m);
        m = NULL;
    }
    wmodel_free(&w);
    s = base_spec("gpt2");
    write_model(&s, &w, path);
    CHECK(yan_model_load(path, NULL, &m) == YAN_OK);
    if (m) {
        yan_context_params cp = yan_context_params_default();
        cp.n_ctx = 65;
        yan_context *c = NULL;
        CHECK(yan_context_new(m, &cp, &c) == YAN_ERR_INVALID_ARG && c == NULL);
        cp.n_ctx = 0; /* = the training context */
        CHECK(yan_context_new(m, &cp, &c) == YAN_OK && yan_context_n_ctx(c) == 64);
        yan_context_free(c);
        yan_model_free(m);
    }
    wmodel_free(&w);
}

static void expect_load_error(const spec *s, yan_status want, const char *needle) {
    wmodel w;
    const char *path = tmp_path("bad.gguf");
    write_model(s, &w, path);
    wmodel_free(&w);
    size_t before = yan_alloc_used();
    yan_model *m = (yan_model *)1;
    yan_status st = yan_model_load(path, NULL, &m);
    CHECK(st == want && m == NULL);
    const char *e = yan_last_error();
    if (!strstr(e, needle) || !strstr(e, "bad.gguf")) fprintf(stderr, "  message: %s (want '%s')\n", e, needle);
    CHECK(strstr(e, needle) != NULL && strstr(e, "bad.gguf") != NULL);
    CHECK(yan_alloc_used() == before);
}

TEST(model_bad_files) {
    spec s = base_spec("llama");
    s.omit = "blk.1.ffn_down.weight";
    expect_load_error(&s, YAN_ERR_FORMAT, "missing tensor 'blk.1.ffn_down.weight'");
    s = base_spec("qwen2");
    s.omit = "blk.0.attn_k.bias";
    expect_load_error(&s, YAN_ERR_FORMAT, "'blk.0.attn_k.bias'");
    s = base_spec("qwen3");
    s.bad_shape = "blk.0.attn_q.weight";
    expect_load_error(&s, YAN_ERR_FORMAT, "'blk.0.attn_q.weight' has shape [64, 127");
    s = base_spec("gpt2");
    s.bad_shape = "blk.1.ffn_up.bias";
    expect_load_error(&s, YAN_ERR_FORMAT, "'blk.1.ffn_up.bias'");
    s = base_spec("llama");
    s.q41 = "blk.0.attn_v.weight";
    expect_load_error(&s, YAN_ERR_UNSUPPORTED, "'blk.0.attn_v.weight' has type q8_1");
    s = base_spec("llama");
    s.arch_name = "mamba";
    expect_load_error(&s, YAN_ERR_UNSUPPORTED, "architecture 'mamba' is not supported");
    yan_model *m = (yan_model *)1;
    CHECK(yan_model_load(tmp_path("no-such-file.gguf"), NULL, &m) != YAN_OK && m == NULL);
}

static bool abort_at_half(float f, void *ud) {
    (*(int *)ud)++;
    return f < 0.5f;
}

TEST(model_load_abort_and_alloc_failures) {
    spec s = base_spec("qwen3");
    wmodel w;
    const char *path = tmp_path("fail.gguf");
    write_model(&s, &w, path);
    wmodel_free(&w);
    size_t before = yan_alloc_used();
    int calls = 0;
    yan_model_params mp = yan_model_params_default();
    mp.progress = abort_at_half;
    mp.progress_ud = &calls;
    yan_model *m = NULL;
    CHECK(yan_model_load(path, &mp, &m) == YAN_ERR_ABORTED && m == NULL && calls > 1);
    CHECK(yan_alloc_used() == before);
    int failures = 0;
    for (long k = 1; k < 10000; k++) {
        yan_alloc_fail_after(k);
        yan_status st = yan_model_load(path, NULL, &m);
        yan_context *c = NULL;
        yan_status cs = YAN_OK;
        if (st == YAN_OK) cs = yan_context_new(m, NULL, &c);
        yan_alloc_fail_after(0);
        if (st == YAN_OK && cs == YAN_OK) {
            CHECK(yan_eval(c, k_toks, 4, false) == YAN_OK);
            yan_context_free(c);
            yan_model_free(m);
            CHECK(yan_alloc_used() == before);
            break;
        }
        failures++;
        CHECK((st ? st : cs) == YAN_ERR_NOMEM && yan_last_error()[0] != 0);
        CHECK(c == NULL);
        yan_model_free(m);
        m = NULL;
        CHECK(yan_alloc_used() == before);
    }
    CHECK(failures > 5);
}

/* ----------------------------------------------------------- generation */

typedef struct { char text[4096]; size_t len; int calls; int stop_after; } sink;

static bool on_text(const char *t, size_t n, void *ud) {
    sink *s = ud;
    if (s->len + n < sizeof s->text) {
        memcpy(s->text + s->len, t, n);
        s->len += n;
        s->text[s->len] = 0;
    }
    s->calls++;
    return s->stop_after == 0 || s->calls < s->stop_after;
}

TEST(model_generate) {
    spec s = base_spec("llama");
    wmodel w;
    const char *path = tmp_path("gen.gguf");
    write_model(&s, &w, path);
    size_t before = yan_alloc_used();
    yan_model *m = NULL;
    CHECK(yan_model_load(path, NULL, &m) == YAN_OK);
    if (!m) return;
    const yan_tokenizer *tk = yan_model_tokenizer(m);
    const int V = w.V, NG = 12;
    /* greedy by hand: eval + argmax */
    yan_context *c = new_ctx(m, 64, 0, 2, YAN_KV_F16);
    yan_token want[64];
    CHECK(yan_eval(c, k_toks, 6, false) == YAN_OK);
    for (int i = 0; i < NG; i++) {
        want[i] = argmax(yan_logits(c, -1), V);
        CHECK(yan_eval(c, &want[i], 1, false) == YAN_OK);
    }
    char want_text[1024];
    CHECK(yan_detokenize(tk, want, NG, want_text, sizeof want_text, false) >= 0);

    yan_sampler_params sp = yan_sampler_params_default();
    sp.temperature = 0;
    sp.repeat_penalty = 1.0f;
    yan_sampler *smp = NULL;
    CHECK(yan_sampler_new(&sp, V, &smp) == YAN_OK);
    yan_generate_params gp = yan_generate_params_default();
    gp.max_tokens = NG;
    gp.stop_at_eos = false;
    sink out = {0};
    gp.on_text = on_text;
    gp.ud = &out;
    yan_generate_result r;
    CHECK(yan_context_truncate(c, 0) == YAN_OK);
    CHECK(yan_generate(c, smp, k_toks, 6, &gp, &r) == YAN_OK);
    CHECK(r.n_prompt == 6 && r.n_generated == NG && r.finish == YAN_FINISH_LENGTH);
    CHECK(r.prompt_seconds >= 0 && r.generate_seconds >= 0);
    CHECK(strcmp(out.text, want_text) == 0);
    CHECK(yan_context_n_past(c) == 6 + NG - 1);

    /* a stop string from the middle of the greedy text: cut before it */
    size_t wl = strlen(want_text);
    if (wl >= 6) {
        char stop[3] = {want_text[wl / 2], want_text[wl / 2 + 1], 0};
        const char *stops[] = {"zzzz-never", stop};
        size_t at = (size_t)(strstr(want_text, stop) - want_text);
        gp.stop = stops;
        gp.n_stop = 2;
        memset(&out, 0, sizeof out);
        yan_sampler_reset(smp, 1);
        CHECK(yan_context_truncate(c, 0) == YAN_OK);
        CHECK(yan_generate(c, smp, k_toks, 6, &gp, &r) == YAN_OK);
        CHECK(r.finish == YAN_FINISH_STOP && out.len == at && !memcmp(out.text, want_text, at));
        gp.stop = NULL;
        gp.n_stop = 0;
    }
    /* the callback stops it */
    memset(&out, 0, sizeof out);
    out.stop_after = 2;
    CHECK(yan_context_truncate(c, 0) == YAN_OK);
    CHECK(yan_generate(c, smp, k_toks, 6, &gp, &r) == YAN_OK);
    CHECK(r.finish == YAN_FINISH_ABORTED && out.calls == 2);
    yan_sampler_free(smp);
    yan_context_free(c);
    yan_model_free(m);
    wmodel_free(&w);

    /* an end-of-generation token first: zero output norm makes every logit 0,
     * greedy picks id 0, which this file declares as EOS */
    s.zero_out_norm = true;
    s.eos_id = 0;
    write_model(&s, &w, path);
    CHECK(yan_model_load(path, NULL, &m) == YAN_OK);
    if (m) {
        c = new_ctx(m, 32, 0, 1, YAN_KV_F16);
        CHECK(yan_sampler_new(&sp, V, &smp) == YAN_OK);
        gp = yan_generate_params_default();
        CHECK(yan_generate(c, smp, k_toks, 3, &gp, &r) == YAN_OK);
        CHECK(r.finish == YAN_FINISH_STOP && r.n_generated == 0);
        yan_sampler_free(smp);
        yan_context_free(c);
        yan_model_free(m);
    }
    wmodel_free(&w);
    CHECK(yan_alloc_used() == before);
}

/* ------------------------------------------------------------------- LoRA */

typedef struct {
    const char *target;
    int64_t in, out;
    float *a, *b; /* r x in, out x r */
} lora_t;

/* Write an adapter for the targets (rank r, alpha); mutate: "type", "arch",
 * "shape" or NULL. */
static void write_adapter(const char *path, lora_t *lt, int n, int r, float alpha, const char *mutate) {
    yan_gguf_writer *gw = NULL;
    CHECK(yan_gguf_writer_new(&gw) == YAN_OK);
    const char *arch = mutate && !strcmp(mutate, "arch") ? "qwen2" : "llama";
    const char *type = mutate && !strcmp(mutate, "type") ? "model" : "adapter";
    CHECK(yan_gguf_w_set_str(gw, "general.architecture", arch, strlen(arch)) == YAN_OK);
    CHECK(yan_gguf_w_set_str(gw, "general.type", type, strlen(type)) == YAN_OK);
    CHECK(yan_gguf_w_set_str(gw, "adapter.type", "lora", 4) == YAN_OK);
    CHECK(yan_gguf_w_set_f32(gw, "adapter.lora.alpha", alpha) == YAN_OK);
    char name[128];
    for (int i = 0; i < n; i++) {
        uint64_t da[2] = {(uint64_t)lt[i].in + (mutate && !strcmp(mutate, "shape") ? 1 : 0), (uint64_t)r};
        uint64_t db[2] = {(uint64_t)r, (uint64_t)lt[i].out};
        snprintf(name, sizeof name, "%s.lora_a", lt[i].target);
        CHECK(yan_gguf_w_add_tensor(gw, name, YAN_T_F32, 2, da, lt[i].a) == YAN_OK);
        snprintf(name, sizeof name, "%s.lora_b", lt[i].target);
        CHECK(yan_gguf_w_add_tensor(gw, name, YAN_T_F32, 2, db, lt[i].b) == YAN_OK);
    }
    CHECK(yan_gguf_w_write(gw, path) == YAN_OK);
    yan_gguf_writer_free(gw);
}

static double lora_vs_ref(const char *model_path, const char *adapter, const float *ref, int V) {
    yan_model *m = NULL;
    CHECK(yan_model_load(model_path, NULL, &m) == YAN_OK);
    if (!m) return 1e9;
    if (adapter) {
        yan_status st = yan_model_apply_lora(m, adapter, 1.0f);
        if (st) fprintf(stderr, "  apply: %s\n", yan_last_error());
        CHECK(st == YAN_OK);
    }
    yan_context *c = new_ctx(m, 32, 0, 2, YAN_KV_F32);
    CHECK(yan_eval(c, k_toks, N_TOKS, true) == YAN_OK);
    double worst = 0;
    for (int t = 0; t < N_TOKS; t++) {
        double d = rel_diff(yan_logits(c, t), ref + (size_t)t * V, V);
        if (d > worst) worst = d;
    }
    yan_context_free(c);
    yan_model_free(m);
    return worst;
}

TEST(model_lora_apply_and_merge) {
    for (int q = 0; q < 2; q++) {
        spec s = base_spec("llama");
        s.wtype = q ? YAN_T_Q8_0 : YAN_T_F32;
        wmodel w;
        const char *path = tmp_path("lora_base.gguf"), *ad = tmp_path("lora.gguf");
        write_model(&s, &w, path);
        const int r = 4;
        const float alpha = 8;
        lora_t lt[2] = {{"blk.0.attn_q.weight", s.C, s.NH * s.HD, NULL, NULL},
                        {"blk.1.ffn_down.weight", s.FF, s.C, NULL, NULL}};
        for (int i = 0; i < 2; i++) {
            lt[i].a = malloc(sizeof(float) * (size_t)(r * lt[i].in));
            lt[i].b = malloc(sizeof(float) * (size_t)(r * lt[i].out));
            for (int64_t k = 0; k < r * lt[i].in; k++) lt[i].a[k] = 0.3f * frand();
            for (int64_t k = 0; k < r * lt[i].out; k++) lt[i].b[k] = 0.3f * frand();
            /* the reference weights: W + alpha / r * B A */
            tw *t = find_w(&w, lt[i].target);
            CHECK(t != NULL);
            for (int64_t o = 0; o < lt[i].out; o++)
                for (int64_t j = 0; j < lt[i].in; j++) {
                    double acc = 0;
                    for (int k = 0; k < r; k++) acc += (double)lt[i].b[o * r + k] * lt[i].a[k * lt[i].in + j];
                    t->f[o * lt[i].in + j] += (float)(alpha / r * acc);
                }
        }
        write_adapter(ad, lt, 2, r, alpha, NULL);
        float *ref = malloc((size_t)N_TOKS * w.V * 4);
        ref_forward(&w, k_toks, N_TOKS, ref);
        double d = lora_vs_ref(path, ad, ref, w.V);
        /* q8_0: the other matrices stay q8_0 (activations quantized on the fly) */
        if (d > (q ? 3e-2 : 1e-4)) fprintf(stderr, "  lora apply (%s): %g\n", q ? "q8_0" : "f32", d);
        CHECK(d <= (q ? 3e-2 : 1e-4));
        /* merged: f32 exact; q8_0 re-encoded, so within quantization error */
        const char *merged = tmp_path("lora_merged.gguf");
        CHECK(yan_lora_merge(path, ad, 1.0f, merged) == YAN_OK);
        d = lora_vs_ref(merged, NULL, ref, w.V);
        if (d > (q ? 3e-2 : 1e-4)) fprintf(stderr, "  lora merge (%s): %g\n", q ? "q8_0" : "f32", d);
        CHECK(d <= (q ? 3e-2 : 1e-4));

        if (q == 0) {
            /* bad adapters: the model is left unchanged and the error names the file */
            const char *bad = tmp_path("lora_bad.gguf");
            const char *muts[] = {"type", "arch", "shape"};
            yan_model *m = NULL;
            CHECK(yan_model_load(path, NULL, &m) == YAN_OK);
            for (int k = 0; k < 3 && m; k++) {
                write_adapter(bad, lt, 2, r, alpha, muts[k]);
                CHECK(yan_model_apply_lora(m, bad, 1.0f) == YAN_ERR_FORMAT);
                CHECK(strstr(yan_last_error(), "lora_bad.gguf") != NULL);
                CHECK(yan_lora_merge(path, bad, 1.0f, merged) != YAN_OK);
            }
            lora_t missing = lt[0];
            missing.target = "blk.7.attn_q.weight";
            write_adapter(bad, &missing, 1, r, alpha, NULL);
            CHECK(yan_model_apply_lora(m, bad, 1.0f) == YAN_ERR_FORMAT);
            CHECK(strstr(yan_last_error(), "blk.7.attn_q.weight") != NULL);
            CHECK(yan_model_apply_lora(m, path, 1.0f) == YAN_ERR_FORMAT); /* a model is not an adapter */
            yan_model_free(m);
            CHECK(lora_vs_ref(path, NULL, ref, w.V) > 1e-3); /* the adapter does change the logits */
        }
        for (int i = 0; i < 2; i++) {
            free(lt[i].a);
            free(lt[i].b);
        }
        free(ref);
        wmodel_free(&w);
    }
}
