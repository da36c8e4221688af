/* model_util.c — see model_util.h. */
#include "model_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "gguf/gguf.h"
#include "tensor/tensor.h"
#include "tokenizer/pretok.h"
#include "tokenizer/tok_gguf.h"

/* ------------------------------------------------------------ tokenizer */

uint64_t g_rng;
float frand(void) { /* uniform in [-1, 1) */
    g_rng += 0x9E3779B97F4A7C15ull;
    uint64_t z = g_rng;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)((double)(z >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* 256 bytes, merges th, the, " t", then two CONTROL tokens. */
void make_tok(yan_tokenizer *t) {
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

tw *find_w(wmodel *w, const char *name) {
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->t[i].name, name)) return &w->t[i];
    return NULL;
}

void add_t(wmodel *w, const char *name, int type, int64_t ne0, int64_t ne1, int n_dims, float scale, float bias) {
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

void add_mat(wmodel *w, const char *name, int64_t in, int64_t out) {
    add_t(w, name, w->s.wtype, in, out, 2, sqrtf(3.0f / (float)in), 0);
}
void add_vec(wmodel *w, const char *name, int64_t n, float scale, float bias) {
    add_t(w, name, YAN_T_F32, n, 1, 1, scale, bias);
}

void wmodel_free(wmodel *w) {
    for (int i = 0; i < w->n; i++) {
        free(w->t[i].f);
        free(w->t[i].q);
    }
    w->n = 0;
}

/* Build the weights of s in w and write the GGUF to path. */
void write_model(const spec *s, wmodel *w, const char *path) {
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

spec base_spec(const char *arch) {
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

void matvec(const tw *w, const float *x, float *y) {
    for (int64_t r = 0; r < w->ne1; r++) {
        double s = 0;
        for (int64_t c = 0; c < w->ne0; c++) s += (double)w->f[r * w->ne0 + c] * x[c];
        y[r] = (float)s;
    }
}

void ref_norm(const wmodel *w, const float *x, float *out, int n, const float *g, const float *b) {
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

void ref_rope(const wmodel *w, float *v, int pos, bool neox) {
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

void ref_forward(wmodel *w, const yan_token *tokens, int n, float *logits) { ref_forward_ex(w, tokens, n, logits, NULL); }

void ref_forward_ex(wmodel *w, const yan_token *tokens, int n, float *logits, float *hidden) {
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
        if (hidden) memcpy(hidden + (size_t)t * C, xn, (size_t)C * 4);
        if (logits) matvec(out, xn, logits + (size_t)t * V);
    }
    free(x); free(xn); free(q); free(k); free(v); free(att); free(o); free(g); free(u); free(qkv); free(sc);
}
#undef W

/* -------------------------------------------------------------- helpers */

const char *tmp_path(const char *name) {
    static char buf[8][512];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof buf[i], "%s/%s", yan_test_tmp_dir(), name);
    return buf[i];
}

float range_of(const float *x, int n) {
    float lo = x[0], hi = x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
    }
    return hi - lo;
}

int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* max |a - b| over n values, relative to the range of b (at least 1) */
double rel_diff(const float *a, const float *b, int n) {
    double d = 0;
    for (int i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (e > d || isnan(e)) d = isnan(e) ? 1e9 : e;
    }
    double r = range_of(b, n);
    return d / (r > 1 ? r : 1);
}

const yan_token k_toks[N_TOKS] = {72, 101, 256, 257, 32, 258, 1, 200, 99, 257, 10, 33, 45, 120, 7, 258, 64, 90};

yan_context *new_ctx(yan_model *m, int n_ctx, int n_batch, int n_threads, yan_kv_type kv) {
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
