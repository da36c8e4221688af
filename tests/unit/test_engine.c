/* test_engine.c — the continuous-batching engine (src/model/engine.c) on
 * tiny random-weight models (model_util.c) of each architecture:
 *  - sequences evaluated interleaved (staggered arrivals, prefill chunks of
 *    varying sizes next to decode tokens, sequences freed and slots reused)
 *    give the logits each gives alone through a yan_context;
 *  - prefix reuse, copy-on-write truncation, freeing, the LRU of cached
 *    blocks, duplicate prefixes prefilled at once;
 *  - every error leaves the engine unchanged;
 *  - embeddings (yan_embed, yan_engine_embed) against the naive reference;
 *  - 1 and 2 threads give identical numbers. */
#include "test.h"
#include "model_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/engine.h"
#include "tensor/tensor.h"

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static int rng_int(uint64_t *s, int n) { return (int)(rng_next(s) % (uint64_t)n); }

static void rand_tokens(yan_token *t, int n, uint64_t *s) {
    for (int i = 0; i < n; i++) t[i] = rng_int(s, 261);
}

static yan_model *load_typed(const char *arch, int ctx_train, int wtype, wmodel *w, const char *file) {
    spec s = base_spec(arch);
    s.ctx_train = ctx_train;
    s.wtype = s.embd_type = wtype;
    const char *path = tmp_path(file);
    write_model(&s, w, path);
    yan_model *m = NULL;
    yan_status st = yan_model_load(path, NULL, &m);
    if (st) fprintf(stderr, "  load: %s\n", yan_last_error());
    CHECK(st == YAN_OK);
    return m;
}

static yan_model *load_arch(const char *arch, int ctx_train, wmodel *w, const char *file) {
    return load_typed(arch, ctx_train, YAN_T_F32, w, file);
}

static yan_engine *new_engine(yan_model *m, int n_ctx, int n_seq, int n_batch, int64_t n_blocks, int nth,
                              yan_kv_type kv) {
    yan_engine_params p = yan_engine_params_default();
    p.n_ctx = n_ctx;
    p.n_seq_max = n_seq;
    p.n_batch = n_batch;
    p.n_blocks = n_blocks;
    p.n_threads = nth;
    p.kv_type = kv;
    yan_engine *e = NULL;
    yan_status st = yan_engine_new(m, &p, &e);
    if (st) fprintf(stderr, "  engine: %s\n", yan_last_error());
    CHECK(st == YAN_OK && e != NULL);
    return e;
}

/* logits (n, V) of tokens alone through a fresh context */
static float *context_logits(yan_model *m, const yan_token *t, int n, yan_kv_type kv) {
    const int V = yan_model_n_vocab(m);
    yan_context *c = new_ctx(m, n, 0, 2, kv);
    float *out = calloc((size_t)n * (size_t)V, 4);
    if (!c) return out;
    CHECK(yan_eval(c, t, (size_t)n, true) == YAN_OK);
    for (int i = 0; i < n; i++) {
        const float *lg = yan_logits(c, i);
        if (lg) memcpy(out + (size_t)i * V, lg, (size_t)V * 4);
    }
    yan_context_free(c);
    return out;
}

/* ------------------------------------------------------ interleaved runs */

typedef struct {
    int n, n_prompt;     /* tokens; the first n_prompt are prefilled in chunks, the rest one per step */
    int start;           /* step at which the job arrives */
    yan_token *toks;
    int done, seq;
    float *logits;       /* (n, V) */
    bool *have;          /* (n) logits kept for this position */
} job;

/* Run the jobs through e until all are done. Each step takes the jobs that
 * have arrived in a rotating order: a prefill chunk of 1..chunk_max tokens or
 * one decode token each, until n_batch is full. Logits are asked for a
 * random subset (always the last token of each chunk). Returns the steps. */
static int run_jobs(yan_engine *e, job *jobs, int nj, int chunk_max, uint64_t seed) {
    const int V = yan_model_n_vocab(yan_engine_model(e)), NB = yan_engine_n_batch(e);
    yan_engine_tok *st = calloc((size_t)NB, sizeof *st);
    int *owner = calloc((size_t)NB, sizeof *owner), *at = calloc((size_t)NB, sizeof *at);
    for (int j = 0; j < nj; j++) {
        jobs[j].done = 0;
        jobs[j].seq = -1;
        jobs[j].logits = calloc((size_t)jobs[j].n * (size_t)V, 4);
        jobs[j].have = calloc((size_t)jobs[j].n, 1);
    }
    int step = 0, left = nj;
    for (; left > 0 && step < 10000; step++) {
        int T = 0;
        for (int r = 0; r < nj && T < NB; r++) {
            job *jb = &jobs[(r + step) % nj];
            if (jb->start > step || jb->done == jb->n) continue;
            if (jb->seq < 0) { /* admitted when a sequence is free */
                if (yan_engine_seq_new(e, &jb->seq) != YAN_OK) {
                    jb->seq = -1;
                    continue;
                }
                CHECK(yan_engine_seq_len(e, jb->seq) == 0);
            }
            int k = jb->done < jb->n_prompt ? 1 + rng_int(&seed, chunk_max) : 1;
            if (jb->done < jb->n_prompt && k > jb->n_prompt - jb->done) k = jb->n_prompt - jb->done;
            if (k > NB - T) k = NB - T;
            for (int i = 0; i < k; i++) {
                st[T].seq = jb->seq;
                st[T].token = jb->toks[jb->done + i];
                st[T].logits = i == k - 1 || rng_int(&seed, 3) == 0;
                owner[T] = (int)(jb - jobs);
                at[T] = jb->done + i;
                T++;
            }
            jb->done += k;
        }
        if (T == 0) continue;
        yan_status s = yan_engine_step(e, st, T);
        if (s) fprintf(stderr, "  step %d: %s\n", step, yan_last_error());
        CHECK(s == YAN_OK);
        for (int i = 0; i < T; i++) {
            const float *lg = yan_engine_logits(e, i);
            CHECK((lg != NULL) == st[i].logits);
            if (!lg) continue;
            job *jb = &jobs[owner[i]];
            memcpy(jb->logits + (size_t)at[i] * V, lg, (size_t)V * 4);
            jb->have[at[i]] = true;
        }
        CHECK(yan_engine_logits(e, T) == NULL && yan_engine_logits(e, -1) == NULL);
        for (int j = 0; j < nj; j++)
            if (jobs[j].seq >= 0 && jobs[j].done == jobs[j].n) {
                CHECK(yan_engine_seq_len(e, jobs[j].seq) == jobs[j].n);
                yan_engine_seq_free(e, jobs[j].seq);
                jobs[j].seq = -2; /* finished */
                left--;
            }
    }
    CHECK(left == 0);
    free(st);
    free(owner);
    free(at);
    return step;
}

static void free_jobs(job *jobs, int nj) {
    for (int j = 0; j < nj; j++) {
        free(jobs[j].toks);
        free(jobs[j].logits);
        free(jobs[j].have);
    }
}

/* The jobs' engine logits against each alone through a context; returns the
 * worst relative difference over the kept positions. */
static double compare_jobs(yan_model *m, job *jobs, int nj, yan_kv_type kv) {
    const int V = yan_model_n_vocab(m);
    double worst = 0;
    int kept = 0;
    for (int j = 0; j < nj; j++) {
        float *ref = context_logits(m, jobs[j].toks, jobs[j].n, kv);
        for (int i = 0; i < jobs[j].n; i++) {
            if (!jobs[j].have[i]) continue;
            kept++;
            double d = rel_diff(jobs[j].logits + (size_t)i * V, ref + (size_t)i * V, V);
            if (d > worst) worst = d;
        }
        free(ref);
    }
    CHECK(kept > 0);
    return worst;
}

static void make_jobs(job *jobs, int nj, uint64_t seed) {
    /* lengths crossing block edges; some prompts long, some one token */
    const int lens[8][3] = {{70, 64, 0}, {5, 3, 1}, {100, 90, 2}, {33, 1, 0},
                            {47, 40, 6}, {96, 96, 3}, {12, 12, 9}, {64, 31, 4}};
    for (int j = 0; j < nj; j++) {
        jobs[j].n = lens[j % 8][0];
        jobs[j].n_prompt = lens[j % 8][1];
        jobs[j].start = lens[j % 8][2] + 5 * (j / 8);
        jobs[j].toks = malloc((size_t)jobs[j].n * sizeof(yan_token));
        rand_tokens(jobs[j].toks, jobs[j].n, &seed);
    }
}

static void check_interleaved(const char *arch, int wtype) {
    size_t before = yan_alloc_used();
    wmodel w;
    yan_model *m = load_typed(arch, 128, wtype, &w, "eng_arch.gguf");
    if (!m) {
        wmodel_free(&w);
        return;
    }
    const yan_kv_type kvs[2] = {YAN_KV_F32, YAN_KV_F16};
    for (int k = 0; k < 2; k++) {
        job jobs[8];
        make_jobs(jobs, 8, 77 + (uint64_t)k);
        /* 4 sequences at once for 8 jobs: slots are freed and reused */
        yan_engine *e = new_engine(m, 128, 4, 24, 0, 2, kvs[k]);
        if (!e) break;
        int steps = run_jobs(e, jobs, 8, 13, 5 + (uint64_t)k);
        CHECK(steps > 20);
        CHECK(yan_engine_blocks_free(e) == yan_engine_blocks_total(e));
        double d = compare_jobs(m, jobs, 8, kvs[k]);
        double tol = kvs[k] == YAN_KV_F32 ? 1e-5 : 1e-4;
        if (d > tol) fprintf(stderr, "  %s %s KV: engine vs context %g > %g\n", arch, k ? "f16" : "f32", d, tol);
        CHECK(d <= tol);
        yan_engine_free(e);
        free_jobs(jobs, 8);
    }
    yan_model_free(m);
    wmodel_free(&w);
    CHECK(yan_alloc_used() == before);
}

TEST(engine_interleaved_llama) { check_interleaved("llama", YAN_T_F32); }
TEST(engine_interleaved_qwen2) { check_interleaved("qwen2", YAN_T_F32); }
TEST(engine_interleaved_qwen3) { check_interleaved("qwen3", YAN_T_F32); }
TEST(engine_interleaved_gpt2) { check_interleaved("gpt2", YAN_T_F32); }
/* quantized weights: activations are quantized per token, so batching
 * changes nothing there either */
TEST(engine_interleaved_q8_0_q4_0) {
    check_interleaved("llama", YAN_T_Q8_0);
    check_interleaved("qwen2", YAN_T_Q4_0);
}

/* 1 and 2 threads (2: the fused one-token path when a step has one token)
 * give identical logits, and a rerun is identical. */
TEST(engine_threads_identical) {
    wmodel w;
    const char *archs[2] = {"qwen3", "gpt2"};
    for (int a = 0; a < 2; a++) {
        yan_model *m = load_arch(archs[a], 128, &w, "eng_thr.gguf");
        if (!m) break;
        const int V = yan_model_n_vocab(m);
        job j1[6], j2[6];
        make_jobs(j1, 6, 99);
        make_jobs(j2, 6, 99);
        yan_engine *e1 = new_engine(m, 128, 3, 16, 0, 1, YAN_KV_F16);
        yan_engine *e2 = new_engine(m, 128, 3, 16, 0, 2, YAN_KV_F16);
        if (e1 && e2) {
            run_jobs(e1, j1, 6, 9, 3);
            run_jobs(e2, j2, 6, 9, 3);
            for (int j = 0; j < 6; j++) {
                CHECK(!memcmp(j1[j].have, j2[j].have, (size_t)j1[j].n));
                for (int i = 0; i < j1[j].n; i++)
                    if (j1[j].have[i])
                        CHECK(!memcmp(j1[j].logits + (size_t)i * V, j2[j].logits + (size_t)i * V, (size_t)V * 4));
            }
        }
        yan_engine_free(e1);
        yan_engine_free(e2);
        free_jobs(j1, 6);
        free_jobs(j2, 6);
        yan_model_free(m);
        wmodel_free(&w);
    }
}

/* ------------------------------------------------------------ prefix reuse */

/* Evaluate t[from..n) of seq in steps of up to chunk tokens, all logits,
 * into out + from * V. */
static yan_status eval_seq(yan_engine *e, int32_t seq, const yan_token *t, int from, int n, int chunk, float *out) {
    const int V = yan_model_n_vocab(yan_engine_model(e));
    yan_engine_tok st[64];
    for (int i = from; i < n;) {
        int k = n - i < chunk ? n - i : chunk;
        for (int j = 0; j < k; j++) st[j] = (yan_engine_tok){seq, t[i + j], true};
        yan_status s = yan_engine_step(e, st, k);
        if (s) return s;
        for (int j = 0; out && j < k; j++) memcpy(out + (size_t)(i + j) * V, yan_engine_logits(e, j), (size_t)V * 4);
        i += k;
    }
    return YAN_OK;
}

static double worst_rows(const float *a, const float *b, int from, int to, int V) {
    double worst = 0;
    for (int i = from; i < to; i++) {
        double d = rel_diff(a + (size_t)i * V, b + (size_t)i * V, V);
        if (d > worst) worst = d;
    }
    return worst;
}

TEST(engine_prefix_reuse_cow_lru) {
    size_t before = yan_alloc_used();
    wmodel w;
    yan_model *m = load_arch("llama", 256, &w, "eng_prefix.gguf");
    if (!m) {
        wmodel_free(&w);
        return;
    }
    const int V = yan_model_n_vocab(m);
    uint64_t rs = 4242;
    yan_token a[90], b[90], c[90];
    rand_tokens(a, 90, &rs); /* a = P (70) + 20 */
    memcpy(b, a, 70 * sizeof *a);
    rand_tokens(b + 70, 20, &rs); /* b = P + another 20 */
    memcpy(c, a, 40 * sizeof *a);
    rand_tokens(c + 40, 50, &rs); /* c = P[0..40) + 50 */
    float *ra = context_logits(m, a, 90, YAN_KV_F32), *rb = context_logits(m, b, 90, YAN_KV_F32),
          *rc = context_logits(m, c, 90, YAN_KV_F32);
    float *la = calloc((size_t)90 * V, 4), *lb = calloc((size_t)90 * V, 4), *lc = calloc((size_t)90 * V, 4);
    yan_engine *e = new_engine(m, 256, 4, 32, 16, 2, YAN_KV_F32);
    if (!e) goto out;
    CHECK(yan_engine_blocks_total(e) == 16 && yan_engine_blocks_free(e) == 16);
    int32_t sa, sb;
    CHECK(yan_engine_seq_new(e, &sa) == YAN_OK);
    CHECK(yan_engine_seq_reuse(e, sa, a, 90) == 0); /* nothing cached yet */
    CHECK(eval_seq(e, sa, a, 0, 80, 7, la) == YAN_OK);
    CHECK(yan_engine_seq_len(e, sa) == 80 && yan_engine_blocks_free(e) == 13);
    CHECK(worst_rows(la, ra, 0, 80, V) <= 1e-5);

    /* b shares the 70-token prefix: 2 whole blocks (64 positions) are reused */
    CHECK(yan_engine_seq_new(e, &sb) == YAN_OK);
    CHECK(yan_engine_blocks_needed(e, sb, 90) == 3);
    CHECK(yan_engine_seq_reuse(e, sb, b, 90) == 64);
    CHECK(yan_engine_seq_len(e, sb) == 64 && yan_engine_blocks_free(e) == 13); /* taken by reference */
    CHECK(yan_engine_blocks_needed(e, sb, 90) == 1);
    CHECK(yan_engine_seq_reuse(e, sb, b, 90) == 0); /* not empty */
    CHECK(eval_seq(e, sb, b, 64, 90, 11, lb) == YAN_OK);
    CHECK(yan_engine_blocks_free(e) == 12);
    double d = worst_rows(lb, rb, 64, 90, V);
    if (d > 1e-5) fprintf(stderr, "  reused prefix: %g\n", d);
    CHECK(d <= 1e-5);

    /* truncate b into the shared block 1: copied first, a is untouched */
    CHECK(yan_engine_seq_truncate(e, sb, 91) == YAN_ERR_INVALID_ARG);
    CHECK(yan_engine_seq_truncate(e, sb, 40) == YAN_OK && yan_engine_seq_len(e, sb) == 40);
    CHECK(yan_engine_blocks_free(e) == 12); /* its block 2 freed, one taken for the copy */
    CHECK(eval_seq(e, sb, c, 40, 90, 9, lc) == YAN_OK);
    d = worst_rows(lc, rc, 40, 90, V);
    if (d > 1e-5) fprintf(stderr, "  after copy-on-write: %g\n", d);
    CHECK(d <= 1e-5);
    CHECK(eval_seq(e, sa, a, 80, 90, 4, la) == YAN_OK); /* a's shared blocks still hold P */
    CHECK(worst_rows(la, ra, 80, 90, V) <= 1e-5);
    /* truncating inside a block a owns alone, then continuing differently */
    CHECK(yan_engine_seq_truncate(e, sa, 70) == YAN_OK);
    CHECK(eval_seq(e, sa, b, 70, 90, 6, la) == YAN_OK);
    CHECK(worst_rows(la, rb, 70, 90, V) <= 1e-5);
    CHECK(yan_engine_seq_truncate(e, sa, 64) == YAN_OK && yan_engine_seq_truncate(e, sa, 0) == YAN_OK);
    CHECK(yan_engine_seq_len(e, sa) == 0);

    /* freeing returns every block; full ones stay cached */
    yan_engine_seq_free(e, sa);
    yan_engine_seq_free(e, sb);
    yan_engine_seq_free(e, sb); /* twice: a no-op */
    CHECK(yan_engine_blocks_free(e) == 16);
    int64_t cached = yan_engine_blocks_cached(e);
    CHECK(cached >= 3); /* P's blocks 0, 1 and c's 1 (b was freed with blocks 0, 1 of P and its own 1) */
    int32_t sc;
    CHECK(yan_engine_seq_new(e, &sc) == YAN_OK);
    CHECK(yan_engine_seq_reuse(e, sc, b, 90) == 64); /* back from the cache */
    CHECK(yan_engine_blocks_cached(e) == cached - 2 && yan_engine_blocks_free(e) == 14);
    CHECK(eval_seq(e, sc, b, 64, 90, 32, lb) == YAN_OK);
    CHECK(worst_rows(lb, rb, 64, 90, V) <= 1e-5);
    yan_engine_seq_free(e, sc);

    /* the LRU gives cached blocks back when the pool runs out: 16 blocks for
     * 2 sequences of 256 = 16 blocks */
    int32_t s1, s2;
    yan_token big[256];
    rand_tokens(big, 256, &rs);
    CHECK(yan_engine_seq_new(e, &s1) == YAN_OK && yan_engine_seq_new(e, &s2) == YAN_OK);
    CHECK(eval_seq(e, s1, big, 0, 128, 32, NULL) == YAN_OK);
    CHECK(eval_seq(e, s2, big, 0, 128, 32, NULL) == YAN_OK); /* dedup: the same 4 blocks */
    CHECK(yan_engine_blocks_free(e) == 12);
    CHECK(yan_engine_blocks_cached(e) > 0);
    yan_engine_seq_free(e, s2);
    CHECK(yan_engine_seq_new(e, &s2) == YAN_OK);
    CHECK(eval_seq(e, s1, big, 128, 256, 32, NULL) == YAN_OK);
    CHECK(yan_engine_blocks_free(e) == 8);
    yan_token other[256];
    rand_tokens(other, 256, &rs);
    CHECK(yan_engine_blocks_free(e) == 8 && yan_engine_blocks_cached(e) > 0);
    CHECK(eval_seq(e, s2, other, 0, 256, 32, NULL) == YAN_OK); /* takes back every cached block */
    CHECK(yan_engine_blocks_free(e) == 0 && yan_engine_blocks_cached(e) == 0);
    int32_t s3;
    CHECK(yan_engine_seq_new(e, &s3) == YAN_OK);
    CHECK(yan_engine_seq_reuse(e, s3, a, 90) == 0); /* P's blocks were taken back */
    CHECK(yan_engine_seq_reuse(e, s3, big, 256) == 224); /* blocks of a live sequence are shared too */
    CHECK(yan_engine_blocks_needed(e, s3, 256) == 1 && yan_engine_blocks_free(e) == 0);
    yan_engine_seq_free(e, s2);
    CHECK(yan_engine_blocks_free(e) == 8 && yan_engine_blocks_cached(e) == 8);
    yan_engine_seq_free(e, s3);
    yan_engine_seq_free(e, s1);
    CHECK(yan_engine_blocks_free(e) == 16 && yan_engine_blocks_cached(e) == 16);
    CHECK(yan_engine_seq_new(e, &s2) == YAN_OK);
    CHECK(yan_engine_seq_reuse(e, s2, other, 256) == 224);
    yan_engine_seq_free(e, s2);
    yan_engine_free(e);
out:
    free(ra); free(rb); free(rc); free(la); free(lb); free(lc);
    yan_model_free(m);
    wmodel_free(&w);
    CHECK(yan_alloc_used() == before);
}

/* Two prompts with the same 64-token prefix prefilled in the same steps:
 * the second switches to the first's blocks as they fill. */
TEST(engine_duplicate_prefix_dedup) {
    wmodel w;
    yan_model *m = load_arch("qwen2", 256, &w, "eng_dup.gguf");
    if (!m) {
        wmodel_free(&w);
        return;
    }
    const int V = yan_model_n_vocab(m);
    uint64_t rs = 1;
    yan_token a[80], b[80];
    rand_tokens(a, 80, &rs);
    memcpy(b, a, 64 * sizeof *a);
    rand_tokens(b + 64, 16, &rs);
    float *ra = context_logits(m, a, 80, YAN_KV_F32), *rb = context_logits(m, b, 80, YAN_KV_F32);
    yan_engine *e = new_engine(m, 256, 4, 64, 0, 2, YAN_KV_F32);
    if (e) {
        int32_t sa, sb;
        CHECK(yan_engine_seq_new(e, &sa) == YAN_OK && yan_engine_seq_new(e, &sb) == YAN_OK);
        int64_t f0 = yan_engine_blocks_free(e);
        yan_engine_tok st[64];
        float *la = calloc((size_t)80 * V, 4), *lb = calloc((size_t)80 * V, 4);
        for (int p = 0; p < 80; p += 10) {
            for (int j = 0; j < 10; j++) {
                st[j] = (yan_engine_tok){sa, a[p + j], true};
                st[10 + j] = (yan_engine_tok){sb, b[p + j], true};
            }
            CHECK(yan_engine_step(e, st, 20) == YAN_OK);
            for (int j = 0; j < 10; j++) {
                memcpy(la + (size_t)(p + j) * V, yan_engine_logits(e, j), (size_t)V * 4);
                memcpy(lb + (size_t)(p + j) * V, yan_engine_logits(e, 10 + j), (size_t)V * 4);
            }
        }
        /* 2 shared full blocks + a partial block each */
        CHECK(f0 - yan_engine_blocks_free(e) == 4);
        CHECK(worst_rows(la, ra, 0, 80, V) <= 1e-5 && worst_rows(lb, rb, 0, 80, V) <= 1e-5);
        free(la);
        free(lb);
    }
    yan_engine_free(e);
    free(ra);
    free(rb);
    yan_model_free(m);
    wmodel_free(&w);
}

/* ------------------------------------------------------------------ errors */

TEST(engine_errors_change_nothing) {
    size_t before = yan_alloc_used();
    wmodel w;
    yan_model *m = load_arch("llama", 128, &w, "eng_err.gguf");
    if (!m) {
        wmodel_free(&w);
        return;
    }
    const int V = yan_model_n_vocab(m);
    /* bad parameters */
    yan_engine_params p = yan_engine_params_default();
    yan_engine *e = (yan_engine *)1;
    p.n_seq_max = -1;
    CHECK(yan_engine_new(m, &p, &e) == YAN_ERR_INVALID_ARG && e == NULL);
    p = yan_engine_params_default();
    p.kv_type = (yan_kv_type)7;
    CHECK(yan_engine_new(m, &p, &e) == YAN_ERR_INVALID_ARG && e == NULL);
    CHECK(yan_engine_new(NULL, NULL, &e) == YAN_ERR_INVALID_ARG);
    yan_engine_free(NULL);
    /* defaults: n_ctx from the model, enough blocks for every sequence */
    CHECK(yan_engine_new(m, NULL, &e) == YAN_OK);
    if (e) {
        CHECK(yan_engine_n_ctx(e) == 128 && yan_engine_n_seq_max(e) == 16);
        CHECK(yan_engine_blocks_total(e) == 16 * 4 && yan_engine_blocks_cached(e) == 0);
        yan_engine_free(e);
    }

    /* 3 sequences, n_ctx 96 (3 blocks each), 5 blocks, steps of 16 */
    e = new_engine(m, 96, 3, 16, 5, 2, YAN_KV_F16);
    if (!e) goto out;
    uint64_t rs = 3;
    yan_token t[96];
    rand_tokens(t, 96, &rs);
    int32_t s0, s1, s2, s3 = -1;
    CHECK(yan_engine_seq_new(e, &s0) == YAN_OK && yan_engine_seq_new(e, &s1) == YAN_OK);
    CHECK(yan_engine_seq_new(e, &s2) == YAN_OK);
    CHECK(s0 == 0 && s1 == 1 && s2 == 2);
    CHECK(yan_engine_seq_new(e, &s3) == YAN_ERR_CONTEXT_FULL && s3 == -1); /* too many */
    CHECK(eval_seq(e, s0, t, 0, 64, 16, NULL) == YAN_OK); /* 2 blocks */
    CHECK(eval_seq(e, s1, t + 1, 0, 40, 16, NULL) == YAN_OK); /* 2 blocks */
    CHECK(yan_engine_blocks_free(e) == 1);
    yan_engine_tok st[20];
    float keep[512];
    CHECK(V <= 512);
    /* s2 needs 1 block, s1 none (40 -> 48): fits exactly */
    for (int i = 0; i < 16; i++) st[i] = (yan_engine_tok){i < 8 ? s2 : s1, t[i], true};
    CHECK(yan_engine_blocks_needed(e, s2, 8) == 1 && yan_engine_blocks_needed(e, s1, 48) == 0);
    CHECK(yan_engine_step(e, st, 16) == YAN_OK);
    YAN_TESTCASE(yan_engine_blocks_free(e) == 0);
    CHECK(yan_engine_blocks_free(e) == 0);
    for (int i = 0; i < 16; i++) st[i] = (yan_engine_tok){s1, t[i], i == 15};
    CHECK(yan_engine_step(e, st, 16) == YAN_OK); /* 48 -> 64: no new block */
    const float *lg = yan_engine_logits(e, 15);
    CHECK(lg != NULL && yan_engine_logits(e, 14) == NULL);
    if (lg) memcpy(keep, lg, (size_t)V * 4);
    const int32_t l0 = yan_engine_seq_len(e, s0), l1 = yan_engine_seq_len(e, s1), l2 = yan_engine_seq_len(e, s2);
    CHECK(l0 == 64 && l1 == 64 && l2 == 8);
    /* pool exhausted: s1 needs its third block */
    st[0] = (yan_engine_tok){s2, 1, false};
    st[1] = (yan_engine_tok){s1, 2, false};
    CHECK(yan_engine_step(e, st, 2) == YAN_ERR_NOMEM);
    CHECK(strstr(yan_last_error(), "KV blocks") != NULL);
    CHECK(yan_engine_seq_len(e, s0) == l0 && yan_engine_seq_len(e, s1) == l1 && yan_engine_seq_len(e, s2) == l2);
    CHECK(yan_engine_blocks_free(e) == 0);
    lg = yan_engine_logits(e, 15);
    CHECK(lg != NULL && lg && !memcmp(lg, keep, (size_t)V * 4)); /* the last step's logits stay */
    CHECK(yan_engine_seq_truncate(e, s1, 40) == YAN_OK); /* no block is shared: nothing copied */
    CHECK(yan_engine_blocks_free(e) == 0);
    CHECK(eval_seq(e, s0, t, 64, 96, 16, NULL) == YAN_ERR_NOMEM); /* s0 needs a third block */
    yan_engine_seq_free(e, s1);
    CHECK(yan_engine_blocks_free(e) == 2 && yan_engine_blocks_cached(e) == 1);
    CHECK(eval_seq(e, s0, t, 64, 96, 16, NULL) == YAN_OK);
    CHECK(yan_engine_seq_len(e, s0) == 96);
    /* n_ctx exceeded */
    st[0] = (yan_engine_tok){s0, 1, true};
    CHECK(yan_engine_step(e, st, 1) == YAN_ERR_CONTEXT_FULL);
    CHECK(strstr(yan_last_error(), "do not fit") != NULL);
    CHECK(yan_engine_seq_len(e, s0) == 96);
    st[0] = (yan_engine_tok){s2, 1, true};
    st[1] = (yan_engine_tok){s0, 1, true};
    CHECK(yan_engine_step(e, st, 2) == YAN_ERR_CONTEXT_FULL && yan_engine_seq_len(e, s2) == 8);
    /* dead sequences, bad ids, bad sizes */
    st[0] = (yan_engine_tok){s1, 1, true}; /* freed */
    CHECK(yan_engine_step(e, st, 1) == YAN_ERR_INVALID_ARG);
    st[0] = (yan_engine_tok){7, 1, true};
    CHECK(yan_engine_step(e, st, 1) == YAN_ERR_INVALID_ARG);
    st[0] = (yan_engine_tok){-1, 1, true};
    CHECK(yan_engine_step(e, st, 1) == YAN_ERR_INVALID_ARG);
    st[0] = (yan_engine_tok){s2, 1, true};
    st[1] = (yan_engine_tok){s2, V, true};
    CHECK(yan_engine_step(e, st, 2) == YAN_ERR_INVALID_ARG && yan_engine_seq_len(e, s2) == 8);
    CHECK(yan_engine_step(e, st, 0) == YAN_ERR_INVALID_ARG);
    CHECK(yan_engine_step(e, st, 17) == YAN_ERR_INVALID_ARG);
    CHECK(yan_engine_step(e, NULL, 1) == YAN_ERR_INVALID_ARG);
    CHECK(yan_engine_seq_len(e, s1) == -1 && yan_engine_blocks_needed(e, s1, 4) == -1);
    CHECK(yan_engine_seq_truncate(e, s1, 0) == YAN_ERR_INVALID_ARG);
    CHECK(yan_engine_seq_reuse(e, s1, t, 96) == 0);
    /* a step after the failures still works */
    CHECK(eval_seq(e, s2, t, 8, 16, 8, NULL) == YAN_OK && yan_engine_seq_len(e, s2) == 16);
    yan_engine_free(e);

    /* the logits buffer (2 rows at first) cannot grow: NOMEM, nothing changed */
    e = new_engine(m, 96, 2, 16, 0, 1, YAN_KV_F32);
    if (e) {
        CHECK(yan_engine_seq_new(e, &s0) == YAN_OK);
        for (int i = 0; i < 6; i++) st[i] = (yan_engine_tok){s0, t[i], true};
        CHECK(yan_engine_step(e, st, 2) == YAN_OK);
        const float *kept = yan_engine_logits(e, 1);
        yan_alloc_fail_after(1);
        CHECK(yan_engine_step(e, st + 2, 4) == YAN_ERR_NOMEM);
        yan_alloc_fail_after(0);
        CHECK(yan_engine_seq_len(e, s0) == 2 && yan_engine_logits(e, 1) == kept && yan_engine_logits(e, 2) == NULL);
        CHECK(yan_engine_step(e, st + 2, 4) == YAN_OK && yan_engine_seq_len(e, s0) == 6);
        CHECK(yan_engine_logits(e, 3) != NULL);
        yan_engine_free(e);
    }

    /* allocation failures while creating an engine: a clean NOMEM */
    int failures = 0;
    p = yan_engine_params_default();
    for (long k = 1; k < 1000; k++) {
        yan_alloc_fail_after(k);
        yan_status s = yan_engine_new(m, &p, &e);
        yan_alloc_fail_after(0);
        if (s != YAN_OK && s != YAN_ERR_NOMEM) fprintf(stderr, "  alloc failure %ld: %s\n", k, yan_last_error());
        if (s == YAN_OK) {
            yan_engine_free(e);
            break;
        }
        CHECK(s == YAN_ERR_NOMEM && e == NULL);
        failures++;
    }
    CHECK(failures > 10);
out:
    yan_model_free(m);
    wmodel_free(&w);
    CHECK(yan_alloc_used() == before);
}

/* -------------------------------------------------------------- embeddings */

static void ref_embedding(wmodel *w, const yan_token *t, int n, float *out) {
    const int C = w->s.C;
    float *h = malloc((size_t)n * C * 4);
    ref_forward_ex(w, t, n, NULL, h);
    double *sum = calloc((size_t)C, sizeof *sum), ss = 0;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++) sum[c] += h[(size_t)i * C + c];
    for (int c = 0; c < C; c++) ss += (sum[c] / n) * (sum[c] / n);
    for (int c = 0; c < C; c++) out[c] = (float)(sum[c] / n / sqrt(ss));
    free(sum);
    free(h);
}

static double dotf(const float *a, const float *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static double maxdiff(const float *a, const float *b, int n) {
    double d = 0;
    for (int i = 0; i < n; i++)
        if (fabs((double)a[i] - b[i]) > d) d = fabs((double)a[i] - b[i]);
    return d;
}

TEST(engine_embeddings) {
    size_t before = yan_alloc_used();
    const char *archs[4] = {"llama", "qwen2", "qwen3", "gpt2"};
    for (int a = 0; a < 4; a++) {
        wmodel w;
        yan_model *m = load_arch(archs[a], 128, &w, "eng_emb.gguf");
        if (!m) {
            wmodel_free(&w);
            continue;
        }
        const int C = yan_model_n_embd(m);
        uint64_t rs = 11 + (uint64_t)a;
        yan_token t1[70], t2[50];
        rand_tokens(t1, 70, &rs);
        rand_tokens(t2, 50, &rs);
        float ref[64], e1[64], e2[64], e3[64], g1[64];
        ref_embedding(&w, t1, 50, ref);
        /* context: steps of 16, f32 KV */
        yan_context *c = new_ctx(m, 64, 16, 2, YAN_KV_F32);
        CHECK(yan_eval(c, t2, 10, false) == YAN_OK);
        CHECK(yan_embed(c, t1, 50, e1, 63) == YAN_ERR_TOO_SMALL);
        CHECK(yan_embed(c, t1, 65, e1, 64) == YAN_ERR_CONTEXT_FULL);
        CHECK(yan_context_n_past(c) == 10); /* errors leave it */
        CHECK(yan_embed(c, t1, 0, e1, 64) == YAN_ERR_INVALID_ARG);
        CHECK(yan_embed(c, t1, 50, e1, 64) == YAN_OK);
        CHECK(yan_context_n_past(c) == 0 && yan_logits(c, -1) == NULL); /* cleared */
        double d = maxdiff(e1, ref, C);
        if (d > 1e-4) fprintf(stderr, "  %s: embedding vs reference %g\n", archs[a], d);
        CHECK(d <= 1e-4);
        CHECK(fabs(dotf(e1, e1, C) - 1.0) < 1e-5);
        CHECK(yan_embed(c, t1, 50, e2, 64) == YAN_OK);
        CHECK(!memcmp(e1, e2, (size_t)C * 4)); /* the same text, the same vector */
        CHECK(yan_embed(c, t2, 50, e3, 64) == YAN_OK);
        CHECK(dotf(e1, e3, C) < 0.9999);
        /* the context still evaluates normally afterwards */
        CHECK(yan_eval(c, t2, 20, false) == YAN_OK && yan_context_n_past(c) == 20);
        yan_context_free(c);
        /* the engine: same numbers, without disturbing its sequences */
        yan_engine *e = new_engine(m, 64, 2, 16, 0, 2, YAN_KV_F32);
        if (e) {
            int32_t s;
            CHECK(yan_engine_seq_new(e, &s) == YAN_OK);
            CHECK(eval_seq(e, s, t2, 0, 20, 16, NULL) == YAN_OK);
            int64_t fr = yan_engine_blocks_free(e);
            CHECK(yan_engine_embed(e, t1, 50, g1) == YAN_OK);
            CHECK(maxdiff(g1, e1, C) <= 1e-5);
            CHECK(yan_engine_blocks_free(e) == fr && yan_engine_blocks_cached(e) == 0);
            CHECK(yan_engine_seq_len(e, s) == 20);
            CHECK(yan_engine_embed(e, t1, 65, g1) == YAN_ERR_CONTEXT_FULL);
            CHECK(yan_engine_embed(e, t1, 0, g1) == YAN_ERR_INVALID_ARG);
            yan_engine_free(e);
        }
        /* one block left: too few for 50 tokens */
        e = new_engine(m, 64, 2, 16, 1, 1, YAN_KV_F16);
        if (e) {
            CHECK(yan_engine_embed(e, t1, 50, g1) == YAN_ERR_NOMEM);
            CHECK(yan_engine_embed(e, t1, 32, g1) == YAN_OK);
            CHECK(fabs(dotf(g1, g1, C) - 1.0) < 1e-5);
            yan_engine_free(e);
        }
        yan_model_free(m);
        wmodel_free(&w);
    }
    CHECK(yan_alloc_used() == before);
}
