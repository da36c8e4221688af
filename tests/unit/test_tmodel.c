/* test_tmodel.c — the trainable llama model (src/train/tmodel.c) and AdamW
 * (src/train/adamw.c):
 *  - config validation names the bad field; new/free, the tensor table;
 *  - seeded init is reproducible and has the stated spread;
 *  - the GGUF written by yan_tmodel_to_gguf loads in yan's inference engine
 *    and gives the training forward's logits (f32 KV cache), tied and untied,
 *    GQA and not; it loads back bit for bit with yan_tmodel_load_gguf;
 *    a q8_0 llama GGUF loads dequantized;
 *  - load_gguf refuses another architecture and biases with a clear message;
 *  - 1, 2 and 3 threads give bit-identical loss, logits and gradients;
 *  - finite differences of the loss agree with the backward on a tiny model,
 *    for several elements of every tensor, with masked targets;
 *  - masked targets, gradient accumulation (scale), AdamW against a plain
 *    transcription of torch's update (bit for bit), gradient clipping;
 *  - every allocation failure in new, AdamW init and load_gguf is a clean
 *    error with nothing leaked. */
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/pool.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "tensor/tensor.h"
#include "tokenizer/pretok.h"
#include "tokenizer/tok_gguf.h"
#include "train/adamw.h"
#include "train/tmodel.h"

/* ------------------------------------------------------------- helpers */

/* 256 bytes, 3 merges, two CONTROL tokens: 261 tokens. */
static void tiny_tok(yan_tokenizer *t) {
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

static uint64_t rng_state;
static uint32_t rnd(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

static yan_tconfig tiny_cfg(int V, bool tied, int NKV) {
    yan_tconfig c;
    yan_tconfig_default(&c);
    c.n_vocab = V;
    c.n_ctx = 32;
    c.n_embd = 32;
    c.n_layer = 2;
    c.n_head = 4;
    c.n_head_kv = NKV;
    c.n_ff = 40;
    c.tied_output = tied;
    return c;
}

/* multiply every matrix by f: random weights of std 0.02 give flat logits */
static void scale_mats(yan_tmodel *m, float f) {
    for (int i = 0; i < m->n_tensors; i++) {
        const yan_tparam *t = &m->tensors[i];
        if (!t->decay) continue;
        for (int64_t j = 0; j < t->ne0 * t->ne1; j++) m->params[t->offset + j] *= f;
    }
}

static void fill_batch(int32_t *in, int32_t *tg, int n, int V, int mask_every) {
    for (int i = 0; i < n; i++) {
        in[i] = (int32_t)(rnd() % (uint32_t)V);
        tg[i] = (int32_t)(rnd() % (uint32_t)V);
        if (mask_every && i % mask_every == 1) tg[i] = -1;
    }
}

static bool contains(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

/* -------------------------------------------------------------- config */

TEST(tmodel_config_check) {
    yan_tconfig c;
    yan_tconfig_default(&c);
    CHECK(yan_tconfig_check(&c) == YAN_OK);
    CHECK(c.n_embd == 256 && c.n_layer == 4 && c.n_head == 4);
    yan_tconfig b = c;
    b.n_head_kv = 3;
    CHECK(yan_tconfig_check(&b) == YAN_ERR_INVALID_ARG);
    CHECK(contains(yan_last_error(), "n_head_kv"));
    b = c;
    b.n_head = 3;
    CHECK(yan_tconfig_check(&b) == YAN_ERR_INVALID_ARG);
    CHECK(contains(yan_last_error(), "n_head"));
    b = c;
    b.n_embd = 12;
    b.n_head = 4; /* head size 3: odd */
    b.n_head_kv = 4;
    CHECK(yan_tconfig_check(&b) == YAN_ERR_INVALID_ARG);
    CHECK(contains(yan_last_error(), "even"));
    b = c;
    b.n_vocab = 0;
    CHECK(yan_tconfig_check(&b) == YAN_ERR_INVALID_ARG);
    CHECK(contains(yan_last_error(), "n_vocab"));
    b = c;
    b.n_ff = -5;
    CHECK(yan_tconfig_check(&b) == YAN_ERR_INVALID_ARG);
    CHECK(contains(yan_last_error(), "n_ff"));
    b = c;
    b.norm_eps = 0;
    CHECK(yan_tconfig_check(&b) == YAN_ERR_INVALID_ARG);
    CHECK(contains(yan_last_error(), "norm_eps"));
    b = c;
    b.rope_base = NAN;
    CHECK(yan_tconfig_check(&b) == YAN_ERR_INVALID_ARG);
    CHECK(contains(yan_last_error(), "rope_base"));
    yan_tmodel *m = (yan_tmodel *)1;
    CHECK(yan_tmodel_new(&c, 1, c.n_ctx + 1, 1, &m) == YAN_ERR_INVALID_ARG && m == NULL);
    CHECK(yan_tmodel_new(&c, 0, 8, 1, &m) == YAN_ERR_INVALID_ARG && m == NULL);
    yan_tmodel_free(NULL);
}

TEST(tmodel_table_and_init) {
    size_t before = yan_alloc_used();
    yan_tconfig c = tiny_cfg(261, false, 2);
    yan_tmodel *m;
    CHECK(yan_tmodel_new(&c, 2, 8, 1, &m) == YAN_OK);
    CHECK(m->n_tensors == 9 * 2 + 3);
    CHECK(((uintptr_t)m->params & 63) == 0 && ((uintptr_t)m->grads & 63) == 0);
    CHECK(!strcmp(m->tensors[0].name, "token_embd.weight"));
    CHECK(!strcmp(m->tensors[1].name, "blk.0.attn_norm.weight"));
    CHECK(!strcmp(m->tensors[m->n_tensors - 1].name, "output.weight"));
    const yan_tparam *q = yan_tmodel_find(m, "blk.1.attn_q.weight"), *k = yan_tmodel_find(m, "blk.1.attn_k.weight");
    CHECK(q && k && q->ne0 == 32 && q->ne1 == 32 && k->ne1 == 16 && q->decay);
    CHECK(!yan_tmodel_find(m, "blk.2.attn_q.weight"));
    CHECK(!yan_tmodel_find(m, "blk.0.ffn_norm.weight")->decay);
    int64_t total = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const yan_tparam *t = &m->tensors[i];
        CHECK(t->offset + t->ne0 * t->ne1 <= m->n_params);
        if (i) CHECK(t->offset >= m->tensors[i - 1].offset + m->tensors[i - 1].ne0 * m->tensors[i - 1].ne1);
        total += t->ne0 * t->ne1;
    }
    CHECK(total <= m->n_params && m->n_params - total < 16 * m->n_tensors);
    yan_tmodel_init(m, 42);
    const yan_tparam *e = yan_tmodel_find(m, "token_embd.weight"), *o = yan_tmodel_find(m, "blk.0.ffn_down.weight");
    double s = 0, s2 = 0;
    int64_t n = e->ne0 * e->ne1;
    for (int64_t i = 0; i < n; i++) {
        s += m->params[e->offset + i];
        s2 += (double)m->params[e->offset + i] * m->params[e->offset + i];
    }
    CHECK(fabs(s / (double)n) < 0.002);
    CHECK_NEAR(sqrt(s2 / (double)n), 0.02, 0.001);
    s2 = 0;
    n = o->ne0 * o->ne1;
    for (int64_t i = 0; i < n; i++) s2 += (double)m->params[o->offset + i] * m->params[o->offset + i];
    CHECK_NEAR(sqrt(s2 / (double)n), 0.01, 0.001); /* 0.02 / sqrt(2 L) with L = 2 */
    CHECK(m->params[yan_tmodel_find(m, "output_norm.weight")->offset + 5] == 1.0f);
    float *copy = malloc((size_t)m->n_params * 4);
    memcpy(copy, m->params, (size_t)m->n_params * 4);
    yan_tmodel_init(m, 42);
    CHECK(!memcmp(copy, m->params, (size_t)m->n_params * 4));
    yan_tmodel_init(m, 43);
    CHECK(memcmp(copy, m->params, (size_t)m->n_params * 4) != 0);
    free(copy);
    yan_tmodel_free(m);
    CHECK(yan_alloc_used() == before);
}

/* ------------------------------------------------- against the engine */

static void engine_case(bool tied, int NKV) {
    yan_tokenizer tok;
    tiny_tok(&tok);
    yan_tconfig c = tiny_cfg(tok.n_vocab, tied, NKV);
    const int B = 2, T = 12;
    yan_tmodel *m;
    CHECK(yan_tmodel_new(&c, B, T, 2, &m) == YAN_OK);
    yan_tmodel_init(m, 7);
    scale_mats(m, 20.0f);
    int32_t in[24], tg[24];
    rng_state = 99;
    fill_batch(in, tg, B * T, c.n_vocab, 0);
    float loss = yan_tmodel_forward(m, in, tg, B, T);
    CHECK(isfinite(loss) && loss > 0);
    char path[512];
    snprintf(path, sizeof path, "%s/tm_%d_%d.gguf", yan_test_tmp_dir(), tied, NKV);
    yan_gguf_writer *w;
    CHECK(yan_gguf_writer_new(&w) == YAN_OK);
    CHECK(yan_tmodel_to_gguf(m, &tok, "{{ messages }}", "tiny-train", w) == YAN_OK);
    CHECK(yan_gguf_w_write(w, path) == YAN_OK);
    yan_gguf_writer_free(w);

    yan_model *em = NULL;
    CHECK(yan_model_load(path, NULL, &em) == YAN_OK);
    if (!em) goto out;
    CHECK(em->tied_output == tied);
    CHECK(em->hp.n_head_kv == NKV);
    yan_context_params cp = yan_context_params_default();
    cp.kv_type = YAN_KV_F32;
    cp.n_ctx = T;
    cp.n_threads = 2;
    yan_context *ctx = NULL;
    CHECK(yan_context_new(em, &cp, &ctx) == YAN_OK);
    double worst = 0;
    for (int b = 0; b < B && ctx; b++) {
        CHECK(yan_context_truncate(ctx, 0) == YAN_OK);
        CHECK(yan_eval(ctx, in + b * T, T, true) == YAN_OK);
        for (int t = 0; t < T; t++) {
            const float *le = yan_logits(ctx, t), *lt = yan_tmodel_logits(m) + (int64_t)(b * T + t) * c.n_vocab;
            float lo = lt[0], hi = lt[0];
            double d = 0;
            for (int v = 0; v < c.n_vocab; v++) {
                lo = fminf(lo, lt[v]);
                hi = fmaxf(hi, lt[v]);
                d = fmax(d, fabs((double)le[v] - lt[v]));
            }
            CHECK(hi - lo > 1.0f); /* the logits have signal */
            worst = fmax(worst, d / (hi - lo));
        }
    }
    CHECK(worst < 1e-4);
    if (worst >= 1e-4 || getenv("YAN_TEST_VERBOSE"))
        fprintf(stderr, "  engine vs training logits: max err %.3g of the logit range\n", worst);
    yan_context_free(ctx);
    yan_model_free(em);

    /* back in as a trainable model: bit for bit */
    yan_tmodel *m2 = NULL;
    yan_tokenizer *tok2 = NULL;
    char *tmpl = NULL;
    CHECK(yan_tmodel_load_gguf(path, B, T, 1, &m2, &tok2, &tmpl) == YAN_OK);
    if (m2) {
        CHECK(m2->cfg.tied_output == tied && m2->cfg.n_head_kv == NKV && m2->cfg.n_vocab == c.n_vocab);
        CHECK(m2->n_params == m->n_params);
        CHECK(!memcmp(m2->params, m->params, (size_t)m->n_params * 4));
        CHECK(tok2 && tok2->n_vocab == tok.n_vocab);
        CHECK(tmpl && !strcmp(tmpl, "{{ messages }}"));
        float loss2 = yan_tmodel_forward(m2, in, tg, B, T);
        CHECK(loss2 == loss);
    }
    yan_tmodel_free(m2);
    yan_tokenizer_free(tok2);
    yan_free(tmpl);
out:
    yan_tmodel_free(m);
    yan_tok_release(&tok);
}

TEST(tmodel_gguf_matches_engine_untied_gqa) { engine_case(false, 2); }
TEST(tmodel_gguf_matches_engine_tied) { engine_case(true, 4); }

/* ------------------------------------------------------ load refusals */

static void write_tiny_gguf(const char *path, const char *arch, bool bias) {
    yan_tokenizer tok;
    tiny_tok(&tok);
    yan_tconfig c = tiny_cfg(tok.n_vocab, true, 4);
    yan_tmodel *m;
    CHECK(yan_tmodel_new(&c, 1, 4, 1, &m) == YAN_OK);
    yan_tmodel_init(m, 1);
    yan_gguf_writer *w;
    CHECK(yan_gguf_writer_new(&w) == YAN_OK);
    CHECK(yan_tmodel_to_gguf(m, &tok, NULL, NULL, w) == YAN_OK);
    if (arch) CHECK(yan_gguf_w_set_str(w, "general.architecture", arch, strlen(arch)) == YAN_OK);
    float b[32] = {0};
    uint64_t dims[1] = {32};
    if (bias) CHECK(yan_gguf_w_add_tensor(w, "blk.0.attn_q.bias", YAN_GGML_F32, 1, dims, b) == YAN_OK);
    CHECK(yan_gguf_w_write(w, path) == YAN_OK);
    yan_gguf_writer_free(w);
    yan_tmodel_free(m);
    yan_tok_release(&tok);
}

TEST(tmodel_load_refuses) {
    size_t before = yan_alloc_used();
    char path[512];
    yan_tmodel *m = (yan_tmodel *)1;
    snprintf(path, sizeof path, "%s/qwen.gguf", yan_test_tmp_dir());
    write_tiny_gguf(path, "qwen2", false);
    CHECK(yan_tmodel_load_gguf(path, 1, 4, 1, &m, NULL, NULL) == YAN_ERR_UNSUPPORTED);
    CHECK(m == NULL);
    CHECK(contains(yan_last_error(), path) && contains(yan_last_error(), "qwen2"));
    snprintf(path, sizeof path, "%s/bias.gguf", yan_test_tmp_dir());
    write_tiny_gguf(path, NULL, true);
    CHECK(yan_tmodel_load_gguf(path, 1, 4, 1, &m, NULL, NULL) == YAN_ERR_UNSUPPORTED);
    CHECK(contains(yan_last_error(), path) && contains(yan_last_error(), "bias"));
    snprintf(path, sizeof path, "%s/ok.gguf", yan_test_tmp_dir());
    write_tiny_gguf(path, NULL, false);
    CHECK(yan_tmodel_load_gguf(path, 1, 64, 1, &m, NULL, NULL) == YAN_ERR_INVALID_ARG); /* T > n_ctx */
    CHECK(contains(yan_last_error(), "context length"));
    CHECK(yan_tmodel_load_gguf(path, 1, 4, 1, &m, NULL, NULL) == YAN_OK);
    CHECK(m && m->cfg.tied_output);
    yan_tmodel_free(m);
    snprintf(path, sizeof path, "%s/missing.gguf", yan_test_tmp_dir());
    CHECK(yan_tmodel_load_gguf(path, 1, 4, 1, &m, NULL, NULL) != YAN_OK);
    CHECK(yan_alloc_used() == before);
}

/* A llama GGUF with q8_0 matrices (written here, as a quantizer would):
 * load_gguf dequantizes them; the values are what the engine computes with. */
TEST(tmodel_load_quantized) {
    size_t before = yan_alloc_used();
    yan_tokenizer tok;
    tiny_tok(&tok);
    yan_tconfig c = tiny_cfg(tok.n_vocab, false, 2);
    c.n_ff = 64; /* q8_0 rows: multiples of 32 */
    yan_tmodel *m;
    CHECK(yan_tmodel_new(&c, 1, 4, 1, &m) == YAN_OK);
    yan_tmodel_init(m, 4);
    yan_gguf_writer *w;
    CHECK(yan_gguf_writer_new(&w) == YAN_OK);
    yan_gguf_w_set_str(w, "general.architecture", "llama", 5);
    yan_gguf_w_set_u32(w, "llama.context_length", (uint32_t)c.n_ctx);
    yan_gguf_w_set_u32(w, "llama.embedding_length", (uint32_t)c.n_embd);
    yan_gguf_w_set_u32(w, "llama.block_count", (uint32_t)c.n_layer);
    yan_gguf_w_set_u32(w, "llama.feed_forward_length", (uint32_t)c.n_ff);
    yan_gguf_w_set_u32(w, "llama.attention.head_count", (uint32_t)c.n_head);
    yan_gguf_w_set_u32(w, "llama.attention.head_count_kv", (uint32_t)c.n_head_kv);
    yan_gguf_w_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-6f);
    yan_gguf_w_set_f32(w, "llama.rope.freq_base", 5e5f);
    CHECK(yan_tok_save_gguf_kv(&tok, w) == YAN_OK);
    void *q[32] = {0};
    for (int i = 0; i < m->n_tensors; i++) {
        const yan_tparam *t = &m->tensors[i];
        uint64_t dims[2] = {(uint64_t)t->ne0, (uint64_t)t->ne1};
        if (t->ne1 == 1) {
            CHECK(yan_gguf_w_add_tensor(w, t->name, YAN_GGML_F32, 1, dims, m->params + t->offset) == YAN_OK);
            continue;
        }
        size_t rb = yan_type_row_bytes(YAN_T_Q8_0, t->ne0);
        q[i] = malloc(rb * (size_t)t->ne1);
        for (int64_t r = 0; r < t->ne1; r++)
            CHECK(yan_quantize_row(YAN_T_Q8_0, m->params + t->offset + r * t->ne0, (uint8_t *)q[i] + r * rb, t->ne0));
        CHECK(yan_gguf_w_add_tensor(w, t->name, YAN_GGML_Q8_0, 2, dims, q[i]) == YAN_OK);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/q8.gguf", yan_test_tmp_dir());
    CHECK(yan_gguf_w_write(w, path) == YAN_OK);
    yan_gguf_writer_free(w);
    yan_tmodel *m2 = NULL;
    CHECK(yan_tmodel_load_gguf(path, 1, 4, 1, &m2, NULL, NULL) == YAN_OK);
    if (m2) {
        CHECK(m2->cfg.norm_eps == 1e-6f && m2->cfg.rope_base == 5e5f && m2->cfg.n_ff == 64);
        float row[64];
        bool same = true;
        double err = 0;
        for (int i = 0; i < m->n_tensors; i++) {
            const yan_tparam *t = &m->tensors[i];
            if (!q[i]) {
                same &= !memcmp(m2->params + t->offset, m->params + t->offset, (size_t)t->ne0 * 4);
                continue;
            }
            size_t rb = yan_type_row_bytes(YAN_T_Q8_0, t->ne0);
            for (int64_t r = 0; r < t->ne1; r++) {
                yan_dequantize_row(YAN_T_Q8_0, (uint8_t *)q[i] + r * rb, row, t->ne0);
                same &= !memcmp(m2->params + t->offset + r * t->ne0, row, (size_t)t->ne0 * 4);
                for (int64_t k = 0; k < t->ne0; k++)
                    err = fmax(err, fabs((double)row[k] - m->params[t->offset + r * t->ne0 + k]));
            }
        }
        CHECK(same);
        CHECK(err > 0 && err < 1e-3);
    }
    for (int i = 0; i < 32; i++) free(q[i]);
    yan_tmodel_free(m2);
    yan_tmodel_free(m);
    yan_tok_release(&tok);
    CHECK(yan_alloc_used() == before);
}

/* ------------------------------------------------------------- threads */

TEST(tmodel_threads_bit_identical) {
    yan_tconfig c = tiny_cfg(261, false, 2);
    c.n_ctx = 80;
    const int B = 3, T = 70; /* T > one attention block of 64 rows */
    int32_t *in = malloc(B * T * 4), *tg = malloc(B * T * 4);
    rng_state = 5;
    fill_batch(in, tg, B * T, c.n_vocab, 3);
    float loss[3];
    float *logits[3], *grads[3];
    int64_t np = 0, nl = (int64_t)B * T * c.n_vocab;
    for (int k = 0; k < 3; k++) {
        yan_tmodel *m;
        CHECK(yan_tmodel_new(&c, B, T, k + 1, &m) == YAN_OK);
        yan_tmodel_init(m, 3);
        scale_mats(m, 10.0f);
        np = m->n_params;
        loss[k] = yan_tmodel_forward(m, in, tg, B, T);
        logits[k] = malloc((size_t)nl * 4);
        memcpy(logits[k], yan_tmodel_logits(m), (size_t)nl * 4);
        yan_tmodel_backward(m, 1.0f);
        grads[k] = malloc((size_t)np * 4);
        memcpy(grads[k], m->grads, (size_t)np * 4);
        yan_tmodel_free(m);
    }
    for (int k = 1; k < 3; k++) {
        CHECK(loss[k] == loss[0]);
        CHECK(!memcmp(logits[k], logits[0], (size_t)nl * 4));
        CHECK(!memcmp(grads[k], grads[0], (size_t)np * 4));
    }
    for (int k = 0; k < 3; k++) {
        free(logits[k]);
        free(grads[k]);
    }
    free(in);
    free(tg);
}

/* ------------------------------------------------- finite differences */

static double loss_at(yan_tmodel *m, const int32_t *in, const int32_t *tg, int B, int T) {
    return yan_tmodel_forward(m, in, tg, B, T);
}

static void fd_case(bool tied) {
    yan_tconfig c = tiny_cfg(19, tied, 2);
    c.n_embd = 16;
    c.n_ff = 24;
    const int B = 2, T = 6;
    yan_tmodel *m;
    CHECK(yan_tmodel_new(&c, B, T, 2, &m) == YAN_OK);
    yan_tmodel_init(m, 11);
    scale_mats(m, 25.0f); /* std 0.5: gradients well above float noise */
    for (int i = 0; i < m->n_tensors; i++) /* norm weights off 1 */
        if (!m->tensors[i].decay)
            for (int64_t j = 0; j < m->tensors[i].ne0; j++)
                m->params[m->tensors[i].offset + j] = 1.0f + 0.3f * ((float)(rnd() % 1000) / 1000.0f - 0.5f);
    int32_t in[12], tg[12];
    rng_state = 77;
    fill_batch(in, tg, B * T, c.n_vocab, 4);
    yan_tmodel_zero_grad(m);
    yan_tmodel_forward(m, in, tg, B, T);
    yan_tmodel_backward(m, 1.0f);
    float *g = malloc((size_t)m->n_params * 4);
    memcpy(g, m->grads, (size_t)m->n_params * 4);
    int bad = 0, checked = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const yan_tparam *t = &m->tensors[i];
        int64_t n = t->ne0 * t->ne1;
        /* the 3 largest gradients and 2 random elements */
        int64_t pick[5];
        for (int k = 0; k < 3; k++) {
            int64_t best = -1;
            for (int64_t j = 0; j < n; j++) {
                bool used = false;
                for (int q = 0; q < k; q++) used |= pick[q] == j;
                if (!used && (best < 0 || fabsf(g[t->offset + j]) > fabsf(g[t->offset + best]))) best = j;
            }
            pick[k] = best;
        }
        pick[3] = (int64_t)(rnd() % (uint32_t)n);
        pick[4] = (int64_t)(rnd() % (uint32_t)n);
        double gmax = fabs(g[t->offset + pick[0]]);
        for (int k = 0; k < 5; k++) {
            float *p = &m->params[t->offset + pick[k]];
            const float p0 = *p;
            /* central differences at h and h/2, Richardson-extrapolated */
            double d[2];
            for (int s = 0; s < 2; s++) {
                float h = s ? 2e-3f : 4e-3f;
                *p = p0 + h;
                double lp = loss_at(m, in, tg, B, T);
                *p = p0 - h;
                double lm = loss_at(m, in, tg, B, T);
                *p = p0;
                d[s] = (lp - lm) / (double)(((p0 + h) - (p0 - h)));
            }
            double fd = (4 * d[1] - d[0]) / 3;
            double an = g[t->offset + pick[k]];
            checked++;
            if (fabs(fd - an) > 2e-2 * fabs(an) + 2e-3 * gmax + 1e-5) {
                bad++;
                fprintf(stderr, "  %s[%lld]: backward %.6g, finite difference %.6g\n", t->name, (long long)pick[k], an,
                        fd);
            }
        }
    }
    CHECK(bad == 0);
    CHECK(checked == 5 * m->n_tensors);
    free(g);
    yan_tmodel_free(m);
}

TEST(tmodel_finite_differences_untied) { fd_case(false); }
TEST(tmodel_finite_differences_tied) { fd_case(true); }

/* ------------------------------------------------ masks, accumulation */

TEST(tmodel_masked_and_accumulated) {
    yan_tconfig c = tiny_cfg(50, false, 4);
    const int B = 2, T = 8;
    yan_tmodel *m;
    CHECK(yan_tmodel_new(&c, B, T, 2, &m) == YAN_OK);
    yan_tmodel_init(m, 9);
    int32_t in[16], tg[16], none[16];
    rng_state = 1;
    fill_batch(in, tg, 16, c.n_vocab, 2);
    for (int i = 0; i < 16; i++) none[i] = -1;
    CHECK(yan_tmodel_forward(m, in, none, B, T) == 0.0f);
    CHECK(yan_tmodel_n_targets(m) == 0);
    yan_tmodel_backward(m, 1.0f);
    bool zero = true;
    for (int64_t i = 0; i < m->n_params; i++) zero &= m->grads[i] == 0.0f;
    CHECK(zero);
    /* the mean cross-entropy over the counted targets only */
    float l1 = yan_tmodel_forward(m, in, tg, B, T);
    CHECK(yan_tmodel_n_targets(m) == 8);
    double sum = 0;
    for (int r = 0; r < B * T; r++) {
        if (tg[r] < 0) continue;
        const float *lg = yan_tmodel_logits(m) + (int64_t)r * c.n_vocab;
        double mx = lg[0], s = 0;
        for (int v = 0; v < c.n_vocab; v++) mx = fmax(mx, lg[v]);
        for (int v = 0; v < c.n_vocab; v++) s += exp(lg[v] - mx);
        sum += mx + log(s) - lg[tg[r]];
    }
    CHECK_NEAR(l1, sum / 8, 1e-5);
    /* two half-scaled backwards = one full one */
    yan_tmodel_zero_grad(m);
    yan_tmodel_forward(m, in, tg, B, T);
    yan_tmodel_backward(m, 1.0f);
    float *full = malloc((size_t)m->n_params * 4);
    memcpy(full, m->grads, (size_t)m->n_params * 4);
    yan_tmodel_zero_grad(m);
    for (int k = 0; k < 2; k++) {
        yan_tmodel_forward(m, in, tg, B, T);
        yan_tmodel_backward(m, 0.5f);
    }
    double worst = 0, gmax = 0;
    for (int64_t i = 0; i < m->n_params; i++) {
        worst = fmax(worst, fabs((double)m->grads[i] - full[i]));
        gmax = fmax(gmax, fabs(full[i]));
    }
    CHECK(gmax > 0 && worst <= 1e-6 * gmax);
    /* a smaller batch than the model was sized for */
    float ls = yan_tmodel_forward(m, in, tg, 1, 5);
    CHECK(isfinite(ls) && yan_tmodel_n_targets(m) == 3);
    yan_tmodel_backward(m, 1.0f);
    free(full);
    yan_tmodel_free(m);
}

/* --------------------------------------------------------------- AdamW */

TEST(tmodel_adamw_and_clip) {
    size_t before = yan_alloc_used();
    yan_tconfig c = tiny_cfg(40, false, 2);
    yan_tmodel *m[2];
    yan_adamw o[2];
    for (int k = 0; k < 2; k++) {
        CHECK(yan_tmodel_new(&c, 1, 4, k + 1, &m[k]) == YAN_OK);
        yan_tmodel_init(m[k], 5);
        CHECK(yan_adamw_init(&o[k], m[k]) == YAN_OK);
        CHECK(o[k].n == m[k]->n_params && o[k].t == 0 && ((uintptr_t)o[k].m & 63) == 0);
    }
    CHECK(o[0].beta1 == 0.9f && o[0].beta2 == 0.95f && o[0].eps == 1e-8f && o[0].weight_decay == 0.1f);
    const int64_t n = m[0]->n_params;
    float *p = malloc((size_t)n * 4), *mm = calloc((size_t)n, 4), *vv = calloc((size_t)n, 4);
    memcpy(p, m[0]->params, (size_t)n * 4);
    for (int step = 1; step <= 3; step++) {
        rng_state = (uint64_t)step;
        for (int64_t i = 0; i < n; i++) {
            float gi = ((float)(rnd() % 2001) - 1000.0f) * 1e-4f;
            m[0]->grads[i] = m[1]->grads[i] = gi;
        }
        float norm0 = yan_grad_clip(m[0], 1.0f), norm1 = yan_grad_clip(m[1], 1.0f);
        CHECK(norm0 == norm1 && norm0 > 1.0f);
        CHECK(!memcmp(m[0]->grads, m[1]->grads, (size_t)n * 4));
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += (double)m[0]->grads[i] * m[0]->grads[i];
        CHECK_NEAR(sqrt(s), 1.0, 1e-5);
        CHECK_NEAR(yan_grad_clip(m[0], 0), 1.0, 1e-5); /* 0: measure only */
        float lr = 1e-3f * (float)step;
        yan_adamw_step(&o[0], m[0], lr);
        yan_adamw_step(&o[1], m[1], lr);
        CHECK(!memcmp(m[0]->params, m[1]->params, (size_t)n * 4));
        /* torch.optim.AdamW's single-tensor update, transcribed */
        double bc1 = 1 - pow(0.9f, step), bc2 = 1 - pow(0.95f, step);
        float step_size = (float)(lr / bc1), bc2s = (float)sqrt(bc2);
        for (int t = 0; t < m[0]->n_tensors; t++) {
            const yan_tparam *tp = &m[0]->tensors[t];
            float dm = tp->decay ? (float)(1.0 - (double)lr * 0.1f) : 1.0f;
            for (int64_t i = tp->offset; i < tp->offset + tp->ne0 * tp->ne1; i++) {
                float gi = m[0]->grads[i];
                p[i] *= dm;
                mm[i] = mm[i] * 0.9f + (float)(1.0 - 0.9f) * gi;
                vv[i] = vv[i] * 0.95f + (float)(1.0 - 0.95f) * gi * gi;
                p[i] = p[i] + -step_size * mm[i] / (sqrtf(vv[i]) / bc2s + 1e-8f);
            }
        }
        CHECK(!memcmp(p, m[0]->params, (size_t)n * 4));
    }
    CHECK(o[0].t == 3);
    /* under the threshold: untouched */
    for (int64_t i = 0; i < n; i++) m[0]->grads[i] = 1e-5f;
    CHECK_NEAR(yan_grad_clip(m[0], 1.0f), 1e-5 * sqrt((double)n), 1e-9);
    CHECK(m[0]->grads[3] == 1e-5f);
    free(p);
    free(mm);
    free(vv);
    for (int k = 0; k < 2; k++) {
        yan_adamw_free(&o[k]);
        yan_tmodel_free(m[k]);
    }
    yan_adamw_free(NULL);
    CHECK(yan_alloc_used() == before);
}

/* ---------------------------------------------------- allocation failures */

TEST(tmodel_alloc_failures) {
    size_t before = yan_alloc_used();
    yan_tconfig c = tiny_cfg(261, false, 2);
    bool done = false;
    for (long k = 1; k < 100 && !done; k++) {
        yan_tmodel *m = (yan_tmodel *)1;
        yan_alloc_fail_after(k);
        yan_status st = yan_tmodel_new(&c, 2, 8, 2, &m);
        yan_alloc_fail_after(0);
        if (st == YAN_OK) {
            yan_adamw o;
            for (long j = 1; j < 10; j++) {
                yan_alloc_fail_after(j);
                st = yan_adamw_init(&o, m);
                yan_alloc_fail_after(0);
                if (st == YAN_OK) break;
                CHECK(st == YAN_ERR_NOMEM && o.m == NULL);
            }
            yan_adamw_free(&o);
            yan_tmodel_free(m);
            done = true;
        } else {
            CHECK(st == YAN_ERR_NOMEM && m == NULL);
        }
        CHECK(yan_alloc_used() == before);
    }
    CHECK(done);
    char path[512];
    snprintf(path, sizeof path, "%s/oom.gguf", yan_test_tmp_dir());
    write_tiny_gguf(path, NULL, false);
    done = false;
    for (long k = 1; k < 5000 && !done; k++) {
        yan_tmodel *m = (yan_tmodel *)1;
        yan_tokenizer *tok = NULL;
        char *tmpl = NULL;
        yan_alloc_fail_after(k);
        yan_status st = yan_tmodel_load_gguf(path, 1, 4, 1, &m, &tok, &tmpl);
        yan_alloc_fail_after(0);
        if (st == YAN_OK) {
            done = true;
            yan_tmodel_free(m);
            yan_tokenizer_free(tok);
            yan_free(tmpl);
        } else {
            CHECK(m == NULL && tok == NULL);
        }
        CHECK(yan_alloc_used() == before);
    }
    CHECK(done);
}
