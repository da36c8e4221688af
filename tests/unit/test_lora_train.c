/* test_lora_train.c — LoRA mode of the trainable model (src/train/tmodel.c):
 *  - target lists parse ("q,k,v,o,gate,up,down", "all", tensor names) and an
 *    unknown name is an error naming it;
 *  - the adapter table: names, shapes, order; PEFT-style init (A uniform in
 *    +-1/sqrt(in), B zero) leaves the model exactly the base model;
 *  - on an f32 base, the forward equals the full model with W + s B A merged
 *    in, and the adapter gradients are s B^T G and s G A^T of the merged
 *    model's weight gradient G (checked by finite differences elsewhere);
 *  - the same on a q8_0 base kept mapped (QLoRA-style), with the
 *    dequantization tiles forced small (ragged last tile) and at full size;
 *  - 1 and 2 threads give bit-identical results; training lowers the loss
 *    and leaves the base untouched;
 *  - the adapter GGUF loads in yan's engine (yan_model_apply_lora) with the
 *    training forward's logits, reads back bit for bit, and mismatched
 *    adapters are refused with the file named;
 *  - allocation failures while loading a LoRA model are clean errors. */
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "model/model.h"
#include "tensor/tensor.h"
#include "tokenizer/pretok.h"
#include "tokenizer/tok_gguf.h"
#include "train/adamw.h"
#include "train/tmodel.h"

/* ------------------------------------------------------------- helpers */

static void tiny_tok(yan_tokenizer *t) {
    yan_tok_init(t);
    t->pre = YAN_PRE_GPT2;
    for (int b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        yan_tok_set(t, b, &c, 1, YAN_TT_NORMAL, 0);
    }
    yan_tok_set(t, 256, "<|endoftext|>", 13, YAN_TT_CONTROL, 0);
    t->special[YAN_SPECIAL_EOS] = 256;
    CHECK(yan_tok_finalize(t) == YAN_OK);
}

static uint64_t rng_state;
static double urand(void) { /* [0, 1) */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

static yan_tconfig tiny_cfg(int V, bool tied) {
    yan_tconfig c;
    yan_tconfig_default(&c);
    c.n_vocab = V;
    c.n_ctx = 32;
    c.n_embd = 128; /* rows of 128: yan_matmul's fast q8_0 kernels (a mapped base's forward) */
    c.n_layer = 2;
    c.n_head = 4;
    c.n_head_kv = 2;
    c.n_ff = 128;
    c.tied_output = tied;
    return c;
}

static bool contains(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

/* A random model (matrices scaled up so that logits have signal) written to
 * DIR/name.gguf in f32, and the q8_0 version of it to DIR/name-q8.gguf. */
static void write_base(const char *name, bool tied, char *f32_path, char *q8_path, size_t cap) {
    yan_tokenizer tok;
    tiny_tok(&tok);
    yan_tconfig c = tiny_cfg(tok.n_vocab, tied);
    yan_tmodel *m = NULL;
    CHECK(yan_tmodel_new(&c, 1, 4, 1, &m) == YAN_OK);
    if (!m) return;
    yan_tmodel_init(m, 7);
    rng_state = 99;
    for (int i = 0; i < m->n_tensors; i++) {
        const yan_tparam *t = &m->tensors[i];
        for (int64_t j = 0; j < t->ne0 * t->ne1; j++)
            m->params[t->offset + j] = t->decay ? m->params[t->offset + j] * 4.0f : (float)(0.8 + 0.4 * urand());
    }
    snprintf(f32_path, cap, "%s/%s.gguf", yan_test_tmp_dir(), name);
    yan_gguf_writer *w = NULL;
    CHECK(yan_gguf_writer_new(&w) == YAN_OK);
    CHECK(yan_tmodel_to_gguf(m, &tok, NULL, name, w) == YAN_OK);
    CHECK(yan_gguf_w_write(w, f32_path) == YAN_OK);
    yan_gguf_writer_free(w);
    yan_tmodel_free(m);
    yan_tok_release(&tok);
    if (q8_path) {
        snprintf(q8_path, cap, "%s/%s-q8.gguf", yan_test_tmp_dir(), name);
        CHECK(yan_model_quantize(f32_path, q8_path, "q8_0", 1, NULL, NULL) == YAN_OK);
    }
}

static void fill_batch(int32_t *in, int32_t *tg, int n, int V) {
    for (int i = 0; i < n; i++) {
        in[i] = (int32_t)(urand() * V);
        tg[i] = i % 4 == 1 ? -1 : (int32_t)(urand() * V);
    }
}

static void random_adapters(yan_tmodel *m, double scale) {
    for (int i = 0; i < m->n_tensors; i++) {
        const yan_tparam *t = &m->tensors[i];
        for (int64_t j = 0; j < t->ne0 * t->ne1; j++) m->params[t->offset + j] = (float)(scale * (2 * urand() - 1));
    }
}

static const float *adapter(const yan_tmodel *m, float *base, int l, int k, char ab) {
    char b[96];
    snprintf(b, sizeof b, "blk.%d.%s.weight.lora_%c", l, yan_tlora_target_tensor(k), ab);
    const yan_tparam *t = yan_tmodel_find(m, b);
    CHECK(t != NULL);
    return t ? base + t->offset : NULL;
}

/* full: a full-training model of the same base. Merge ml's adapters into
 * full (W += s B A), run both on one batch, compare loss, logits and the
 * adapter gradients with s B^T G and s G A^T. Returns the worst relative
 * gradient error. */
static double compare_merged(yan_tmodel *ml, yan_tmodel *full, int B, int T, double tol) {
    const yan_tconfig *c = &ml->cfg;
    const int64_t r = ml->lora.rank;
    const double s = ml->lora.alpha / (double)r;
    for (int l = 0; l < c->n_layer; l++)
        for (int k = 0; k < YAN_LORA_N_TARGETS; k++) {
            if (!(ml->lora.targets & (1u << k))) continue;
            char b[96];
            snprintf(b, sizeof b, "blk.%d.%s.weight", l, yan_tlora_target_tensor(k));
            const yan_tparam *wt = yan_tmodel_find(full, b);
            const float *A = adapter(ml, ml->params, l, k, 'a'), *Bm = adapter(ml, ml->params, l, k, 'b');
            if (!wt || !A || !Bm) return 1;
            float *W = full->params + wt->offset;
            for (int64_t o = 0; o < wt->ne1; o++)
                for (int64_t i = 0; i < wt->ne0; i++) {
                    double acc = 0;
                    for (int64_t j = 0; j < r; j++) acc += (double)Bm[o * r + j] * A[j * wt->ne0 + i];
                    W[o * wt->ne0 + i] += (float)(s * acc);
                }
        }
    int32_t *in = malloc((size_t)B * T * 4), *tg = malloc((size_t)B * T * 4);
    fill_batch(in, tg, B * T, c->n_vocab);
    yan_tmodel_zero_grad(ml);
    yan_tmodel_zero_grad(full);
    float l1 = yan_tmodel_forward(ml, in, tg, B, T), l2 = yan_tmodel_forward(full, in, tg, B, T);
    CHECK_NEAR(l1, l2, 0.1 * tol * fabs(l2));
    const float *g1 = yan_tmodel_logits(ml), *g2 = yan_tmodel_logits(full);
    double lo = g2[0], hi = g2[0], err = 0;
    for (int64_t i = 0; i < (int64_t)B * T * c->n_vocab; i++) {
        lo = fmin(lo, g2[i]);
        hi = fmax(hi, g2[i]);
        err = fmax(err, fabs((double)g1[i] - g2[i]));
    }
    CHECK(hi - lo > 1.0);
    CHECK(err <= tol * (hi - lo));
    if (err > tol * (hi - lo) || getenv("YAN_TEST_VERBOSE"))
        fprintf(stderr, "  loss %.7g vs %.7g; logits within %.3g of the range\n", (double)l1, (double)l2,
                err / (hi - lo));
    yan_tmodel_backward(ml, 1.0f);
    yan_tmodel_backward(full, 1.0f);
    double worst = 0;
    for (int l = 0; l < c->n_layer; l++)
        for (int k = 0; k < YAN_LORA_N_TARGETS; k++) {
            if (!(ml->lora.targets & (1u << k))) continue;
            char b[96];
            snprintf(b, sizeof b, "blk.%d.%s.weight", l, yan_tlora_target_tensor(k));
            const yan_tparam *wt = yan_tmodel_find(full, b);
            const int64_t in_ = wt->ne0, out = wt->ne1;
            const float *G = full->grads + wt->offset;
            const float *A = adapter(ml, ml->params, l, k, 'a'), *Bm = adapter(ml, ml->params, l, k, 'b');
            const float *gA = adapter(ml, ml->grads, l, k, 'a'), *gB = adapter(ml, ml->grads, l, k, 'b');
            double mx = 0, e = 0;
            for (int64_t j = 0; j < r; j++) /* gA = s B^T G */
                for (int64_t i = 0; i < in_; i++) {
                    double acc = 0;
                    for (int64_t o = 0; o < out; o++) acc += (double)Bm[o * r + j] * G[o * in_ + i];
                    mx = fmax(mx, fabs(s * acc));
                    e = fmax(e, fabs(s * acc - gA[j * in_ + i]));
                }
            for (int64_t o = 0; o < out; o++) /* gB = s G A^T */
                for (int64_t j = 0; j < r; j++) {
                    double acc = 0;
                    for (int64_t i = 0; i < in_; i++) acc += (double)G[o * in_ + i] * A[j * in_ + i];
                    mx = fmax(mx, fabs(s * acc));
                    e = fmax(e, fabs(s * acc - gB[o * r + j]));
                }
            CHECK(mx > 0);
            worst = fmax(worst, e / mx);
        }
    free(in);
    free(tg);
    return worst;
}

/* --------------------------------------------------------------- tests */

TEST(lora_targets_parse) {
    uint32_t t = 0;
    CHECK(yan_tlora_parse_targets("q,k,v,o,gate,up,down", &t) == YAN_OK && t == YAN_LORA_ALL);
    CHECK(yan_tlora_parse_targets("all", &t) == YAN_OK && t == YAN_LORA_ALL);
    CHECK(yan_tlora_parse_targets(" v , q ", &t) == YAN_OK && t == (YAN_LORA_Q | YAN_LORA_V));
    CHECK(yan_tlora_parse_targets("attn_output,ffn_down", &t) == YAN_OK && t == (YAN_LORA_O | YAN_LORA_DOWN));
    CHECK(yan_tlora_parse_targets("q,qq", &t) == YAN_ERR_INVALID_ARG && t == 0);
    CHECK(contains(yan_last_error(), "'qq'") && contains(yan_last_error(), "gate"));
    CHECK(yan_tlora_parse_targets("", &t) == YAN_ERR_INVALID_ARG);
    CHECK(yan_tlora_parse_targets(",", &t) == YAN_ERR_INVALID_ARG);
    char buf[64];
    yan_tlora_targets_str(YAN_LORA_K | YAN_LORA_UP, buf, sizeof buf);
    CHECK(!strcmp(buf, "k,up"));
    yan_tlora_targets_str(YAN_LORA_ALL, buf, 8); /* truncated, terminated */
    CHECK(strlen(buf) < 8);
}

TEST(lora_table_and_init) {
    size_t before = yan_alloc_used();
    yan_tconfig c = tiny_cfg(257, false);
    yan_tlora lo = {.rank = 4, .alpha = 8, .targets = YAN_LORA_Q | YAN_LORA_V | YAN_LORA_DOWN};
    yan_tmodel *m = NULL;
    CHECK(yan_tmodel_new_lora(&c, &lo, 1, 4, 1, &m) == YAN_OK);
    if (!m) return;
    CHECK(m->n_tensors == 2 * 3 * c.n_layer);
    CHECK(!strcmp(m->tensors[0].name, "blk.0.attn_q.weight.lora_a") && m->tensors[0].ne0 == 128 &&
          m->tensors[0].ne1 == 4);
    CHECK(!strcmp(m->tensors[3].name, "blk.0.attn_v.weight.lora_b") && m->tensors[3].ne0 == 4 &&
          m->tensors[3].ne1 == 64); /* KD = 2 kv heads x 32 */
    CHECK(!strcmp(m->tensors[4].name, "blk.0.ffn_down.weight.lora_a") && m->tensors[4].ne0 == 128);
    CHECK(!strcmp(m->tensors[11].name, "blk.1.ffn_down.weight.lora_b") && m->tensors[11].ne1 == 128);
    for (int i = 0; i < m->n_tensors; i++) CHECK(m->tensors[i].offset % 16 == 0 && m->tensors[i].decay);
    CHECK(yan_tmodel_find_base(m, "blk.1.ffn_up.weight") != NULL && yan_tmodel_find(m, "blk.1.ffn_up.weight") == NULL);
    yan_tmodel_init(m, 3);
    bool b_zero = true, a_in = true, a_nonzero = false;
    for (int i = 0; i < m->n_tensors; i++) {
        const yan_tparam *t = &m->tensors[i];
        const double bound = 1.0 / sqrt((double)t->ne0);
        for (int64_t j = 0; j < t->ne0 * t->ne1; j++) {
            float v = m->params[t->offset + j];
            if (strstr(t->name, "lora_b")) b_zero &= v == 0;
            else {
                a_in &= fabs(v) <= bound;
                a_nonzero |= fabs(v) > 0.5 * bound;
            }
        }
    }
    CHECK(b_zero && a_in && a_nonzero);
    yan_tmodel_free(m);
    yan_tlora bad = lo;
    bad.rank = 0;
    CHECK(yan_tmodel_new_lora(&c, &bad, 1, 4, 1, &m) == YAN_ERR_INVALID_ARG && m == NULL);
    bad = lo;
    bad.targets = 0;
    CHECK(yan_tmodel_new_lora(&c, &bad, 1, 4, 1, &m) == YAN_ERR_INVALID_ARG);
    CHECK(yan_alloc_used() == before);
}

/* f32 base: at init the model is the base exactly; with random adapters it
 * is the merged model, and its adapter gradients follow from the merged
 * model's weight gradient. */
static void f32_case(bool tied) {
    size_t before = yan_alloc_used();
    char path[512];
    write_base(tied ? "lora-f32-tied" : "lora-f32", tied, path, NULL, sizeof path);
    const int B = 2, T = 20;
    yan_tlora lo = {.rank = 4, .alpha = 6, .targets = YAN_LORA_ALL};
    yan_tmodel *ml = NULL, *full = NULL;
    CHECK(yan_tmodel_load_lora(path, &lo, B, T, 2, &ml, NULL, NULL) == YAN_OK);
    CHECK(yan_tmodel_load_gguf(path, B, T, 2, &full, NULL, NULL) == YAN_OK);
    if (!ml || !full) goto out;
    CHECK(!ml->mapped && ml->base && ml->n_base == full->n_params);
    CHECK(!memcmp(ml->base, full->params, (size_t)full->n_params * 4));
    /* B = 0: exactly the base model */
    yan_tmodel_init(ml, 11);
    int32_t in[2 * 20], tg[2 * 20];
    rng_state = 5;
    fill_batch(in, tg, B * T, ml->cfg.n_vocab);
    float l1 = yan_tmodel_forward(ml, in, tg, B, T), l2 = yan_tmodel_forward(full, in, tg, B, T);
    CHECK(l1 == l2);
    CHECK(!memcmp(yan_tmodel_logits(ml), yan_tmodel_logits(full), (size_t)B * T * ml->cfg.n_vocab * 4));
    random_adapters(ml, 0.3);
    double worst = compare_merged(ml, full, B, T, 1e-4);
    CHECK(worst < 1e-4);
    if (worst >= 1e-4 || getenv("YAN_TEST_VERBOSE"))
        fprintf(stderr, "  LoRA f32 base: adapter gradients within %.3g of max |g|\n", worst);
out:
    yan_tmodel_free(ml);
    yan_tmodel_free(full);
    CHECK(yan_alloc_used() == before);
}

TEST(lora_f32_base_is_merged_model) { f32_case(false); }
TEST(lora_f32_base_is_merged_model_tied) { f32_case(true); }

/* q8_0 base kept mapped: with the exact forward (dequantized tiles), the
 * forward and gradients of the model whose weights are the dequantized q8_0
 * values, whatever the tile size; with the default forward (yan_matmul,
 * activations quantized to 8 bits) close to them. */
static void mapped_case(bool tied) {
    size_t before = yan_alloc_used();
    char path[512], q8[512];
    write_base(tied ? "lora-q-tied" : "lora-q", tied, path, q8, sizeof path);
    const int B = 2, T = 20;
    yan_tlora lo = {.rank = 3, .alpha = 3, .targets = YAN_LORA_ALL};
    for (int pass = 0; pass < 3; pass++) {
        yan_tmodel *ml = NULL, *full = NULL;
        CHECK(yan_tmodel_load_lora(q8, &lo, B, T, 2, &ml, NULL, NULL) == YAN_OK);
        CHECK(yan_tmodel_load_gguf(q8, B, T, 2, &full, NULL, NULL) == YAN_OK);
        if (!ml || !full) {
            yan_tmodel_free(ml);
            yan_tmodel_free(full);
            break;
        }
        CHECK(ml->mapped && ml->map != NULL);
        /* only the norms are held in f32 */
        CHECK(ml->n_base < 8 * ml->cfg.n_embd * (ml->cfg.n_layer + 1));
        if (pass == 0) yan_tmodel_set_tile_rows(ml, 7); /* many tiles, a ragged last one */
        yan_tmodel_set_mapped_forward(ml, pass == 2);
        rng_state = 21 + (uint64_t)pass;
        random_adapters(ml, 0.3);
        /* 8-bit activations: ~1.5% of the logit range and ~5% of the largest
         * adapter gradient on this (sharp, random) model; a wiring error
         * would be of order 1 */
        const double tol = pass == 2 ? 3e-2 : 1e-4, gtol = pass == 2 ? 0.15 : 1e-4;
        double worst = compare_merged(ml, full, B, T, tol);
        CHECK(worst < gtol);
        if (worst >= gtol || getenv("YAN_TEST_VERBOSE"))
            fprintf(stderr, "  LoRA q8_0 base (%s): adapter gradients within %.3g of max |g|\n",
                    pass == 0 ? "exact forward, tiles of 7 rows" : pass == 1 ? "exact forward" : "yan_matmul forward",
                    worst);
        yan_tmodel_free(ml);
        yan_tmodel_free(full);
    }
    CHECK(yan_alloc_used() == before);
}

TEST(lora_mapped_q8_base_untied) { mapped_case(false); }
TEST(lora_mapped_q8_base_tied) { mapped_case(true); }

TEST(lora_threads_bit_identical_and_training) {
    size_t before = yan_alloc_used();
    char path[512], q8[512];
    write_base("lora-thr", false, path, q8, sizeof path);
    const int B = 3, T = 24;
    yan_tlora lo = {.rank = 4, .alpha = 8, .targets = YAN_LORA_Q | YAN_LORA_O | YAN_LORA_UP | YAN_LORA_DOWN};
    int32_t in[3 * 24], tg[3 * 24];
    rng_state = 8;
    fill_batch(in, tg, B * T, 257);
    for (int which = 0; which < 2; which++) {
        const char *p = which ? q8 : path;
        yan_tmodel *m[2] = {NULL, NULL};
        float loss[2] = {0, 0};
        for (int k = 0; k < 2; k++) {
            CHECK(yan_tmodel_load_lora(p, &lo, B, T, k + 1, &m[k], NULL, NULL) == YAN_OK);
            if (!m[k]) continue;
            yan_tmodel_set_tile_rows(m[k], 13);
            yan_tmodel_init(m[k], 4);
            rng_state = 77;
            random_adapters(m[k], 0.2);
            yan_tmodel_zero_grad(m[k]);
            loss[k] = yan_tmodel_forward(m[k], in, tg, B, T);
            yan_tmodel_backward(m[k], 1.0f);
        }
        if (!m[0] || !m[1]) {
            yan_tmodel_free(m[0]);
            yan_tmodel_free(m[1]);
            continue;
        }
        CHECK(loss[0] == loss[1]);
        CHECK(!memcmp(yan_tmodel_logits(m[0]), yan_tmodel_logits(m[1]), (size_t)B * T * 257 * 4));
        CHECK(!memcmp(m[0]->grads, m[1]->grads, (size_t)m[0]->n_params * 4));
        /* a few AdamW steps lower the loss and leave the base alone */
        float *base0 = malloc((size_t)m[0]->n_base * 4);
        memcpy(base0, m[0]->base, (size_t)m[0]->n_base * 4);
        yan_adamw o;
        CHECK(yan_adamw_init(&o, m[0]) == YAN_OK);
        o.weight_decay = 0;
        float first = 0, last = 0;
        for (int s = 0; s < 12; s++) {
            yan_tmodel_zero_grad(m[0]);
            last = yan_tmodel_forward(m[0], in, tg, B, T);
            if (!s) first = last;
            yan_tmodel_backward(m[0], 1.0f);
            yan_grad_clip(m[0], 1.0f);
            yan_adamw_step(&o, m[0], 1e-2f);
        }
        CHECK(last < first - 0.1f);
        CHECK(!memcmp(base0, m[0]->base, (size_t)m[0]->n_base * 4));
        free(base0);
        yan_adamw_free(&o);
        yan_tmodel_free(m[0]);
        yan_tmodel_free(m[1]);
    }
    CHECK(yan_alloc_used() == before);
}

/* The adapter file: yan's engine applies it and computes the training
 * forward's logits; it reads back; mismatches are refused. */
TEST(lora_adapter_file) {
    size_t before = yan_alloc_used();
    char path[512], ad[512], ad2[512];
    write_base("lora-ad", false, path, NULL, sizeof path);
    const int T = 16;
    yan_tlora lo = {.rank = 4, .alpha = 16, .targets = YAN_LORA_ALL};
    yan_tmodel *ml = NULL, *m2 = NULL;
    CHECK(yan_tmodel_load_lora(path, &lo, 1, T, 2, &ml, NULL, NULL) == YAN_OK);
    if (!ml) return;
    rng_state = 31;
    random_adapters(ml, 0.2);
    int32_t in[16];
    for (int t = 0; t < T; t++) in[t] = (int32_t)(urand() * 257);
    yan_tmodel_forward(ml, in, NULL, 1, T);
    snprintf(ad, sizeof ad, "%s/adapter.gguf", yan_test_tmp_dir());
    yan_gguf_writer *w = NULL;
    CHECK(yan_gguf_writer_new(&w) == YAN_OK);
    CHECK(yan_tmodel_adapter_to_gguf(ml, "test-adapter", w) == YAN_OK);
    CHECK(yan_gguf_w_write(w, ad) == YAN_OK);
    yan_gguf_writer_free(w);
    yan_gguf *g = NULL;
    CHECK(yan_gguf_open(ad, &g) == YAN_OK);
    if (g) {
        const char *s;
        size_t n;
        float alpha = 0;
        CHECK(yan_gguf_get_str(g, "general.type", &s, &n) == YAN_OK && n == 7 && !memcmp(s, "adapter", 7));
        CHECK(yan_gguf_get_str(g, "adapter.type", &s, &n) == YAN_OK && n == 4 && !memcmp(s, "lora", 4));
        CHECK(yan_gguf_get_str(g, "general.architecture", &s, &n) == YAN_OK && n == 5);
        CHECK(yan_gguf_get_f32(g, "adapter.lora.alpha", &alpha) == YAN_OK && alpha == 16);
        const yan_gguf_tensor *t = yan_gguf_find_tensor(g, "blk.1.ffn_gate.weight.lora_b");
        CHECK(t && t->type == YAN_GGML_F32 && t->ne[0] == 4 && t->ne[1] == 128);
        yan_gguf_close(g);
    }
    /* the engine */
    yan_model *em = NULL;
    CHECK(yan_model_load(path, NULL, &em) == YAN_OK);
    if (em) {
        CHECK(yan_model_apply_lora(em, ad, 1.0f) == YAN_OK);
        yan_context_params cp = yan_context_params_default();
        cp.kv_type = YAN_KV_F32;
        cp.n_ctx = T;
        cp.n_threads = 2;
        yan_context *ctx = NULL;
        CHECK(yan_context_new(em, &cp, &ctx) == YAN_OK);
        CHECK(ctx && yan_eval(ctx, in, T, true) == YAN_OK);
        double worst = 0;
        for (int t = 0; t < T && ctx; t++) {
            const float *le = yan_logits(ctx, t), *lt = yan_tmodel_logits(ml) + (int64_t)t * 257;
            float lo_ = lt[0], hi = lt[0];
            double d = 0;
            for (int v = 0; v < 257; v++) {
                lo_ = fminf(lo_, lt[v]);
                hi = fmaxf(hi, lt[v]);
                d = fmax(d, fabs((double)le[v] - lt[v]));
            }
            worst = fmax(worst, d / (hi - lo_));
        }
        CHECK(worst < 1e-4);
        if (worst >= 1e-4 || getenv("YAN_TEST_VERBOSE"))
            fprintf(stderr, "  engine + adapter vs LoRA training logits: %.3g of the range\n", worst);
        yan_context_free(ctx);
        yan_model_free(em);
    }
    /* back in, bit for bit */
    CHECK(yan_tmodel_load_lora(path, &lo, 1, T, 1, &m2, NULL, NULL) == YAN_OK);
    if (m2) {
        CHECK(yan_tmodel_adapter_load(m2, ad) == YAN_OK);
        CHECK(!memcmp(m2->params, ml->params, (size_t)ml->n_params * 4));
        yan_tmodel_free(m2);
        m2 = NULL;
    }
    /* another alpha, other targets: refused, adapters untouched */
    yan_tlora other = lo;
    other.alpha = 8;
    CHECK(yan_tmodel_load_lora(path, &other, 1, T, 1, &m2, NULL, NULL) == YAN_OK);
    if (m2) {
        CHECK(yan_tmodel_adapter_load(m2, ad) == YAN_ERR_FORMAT);
        CHECK(contains(yan_last_error(), ad) && contains(yan_last_error(), "alpha"));
        yan_tmodel_free(m2);
        m2 = NULL;
    }
    other = lo;
    other.targets = YAN_LORA_Q;
    CHECK(yan_tmodel_load_lora(path, &other, 1, T, 1, &m2, NULL, NULL) == YAN_OK);
    if (m2) {
        CHECK(yan_tmodel_adapter_load(m2, ad) == YAN_ERR_FORMAT && contains(yan_last_error(), ad));
        /* the full model refuses to be written as a model; the base is not an adapter */
        snprintf(ad2, sizeof ad2, "%s/x.gguf", yan_test_tmp_dir());
        CHECK(yan_gguf_writer_new(&w) == YAN_OK);
        CHECK(yan_tmodel_to_gguf(m2, NULL, NULL, NULL, w) == YAN_ERR_INVALID_ARG);
        yan_gguf_writer_free(w);
        CHECK(yan_tmodel_adapter_load(m2, path) == YAN_ERR_FORMAT && contains(yan_last_error(), "not a LoRA adapter"));
        yan_tmodel_free(m2);
    }
    yan_tmodel_free(ml);
    CHECK(yan_alloc_used() == before);
}

TEST(lora_alloc_failures) {
    size_t before = yan_alloc_used();
    char path[512], q8[512];
    write_base("lora-oom", false, path, q8, sizeof path);
    yan_tlora lo = {.rank = 2, .alpha = 2, .targets = YAN_LORA_ALL};
    for (int which = 0; which < 2; which++) {
        bool done = false;
        for (long k = 1; k < 5000 && !done; k++) {
            yan_tmodel *m = (yan_tmodel *)1;
            yan_alloc_fail_after(k);
            yan_status st = yan_tmodel_load_lora(which ? q8 : path, &lo, 1, 4, 1, &m, NULL, NULL);
            yan_alloc_fail_after(0);
            if (st == YAN_OK) {
                done = true;
                CHECK(m->mapped == (which == 1));
                yan_tmodel_free(m);
            } else {
                CHECK(st == YAN_ERR_NOMEM && m == NULL);
            }
            CHECK(yan_alloc_used() == before);
        }
        CHECK(done);
    }
}
