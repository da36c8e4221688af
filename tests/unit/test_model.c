/* test_model.c — model loading, the forward pass, the KV cache, the thread
 * pool and generation, on tiny random-weight GGUF models (model_util.c
 * writes them for each architecture — llama, qwen2, qwen3, gpt2 — and
 * weight type). The reference is model_util.c's naive f32 forward pass (no
 * KV cache, plain loops over the dequantized weights), independent of
 * src/model. */
#include "test.h"
#include "model_util.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/pool.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "tensor/tensor.h"

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
    mp.load = YAN_LOAD_COPY;
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
            lt[i].a = calloc((size_t)(r * (lt[i].in + 1)), sizeof(float)); /* + 1: the "shape" mutation */
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
