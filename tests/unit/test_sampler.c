/* test_sampler.c — the sampler: greedy and ties, seeds, the empirical
 * distribution against softmax, top_k / top_p / min_p kept sets (including
 * top_p over a large vocabulary through the bucketing path), penalty
 * amounts, logprobs, reset, NaN/Inf logits, bad parameters and allocation
 * failures. Deterministic: fixed seeds everywhere. */
#include "base/base.h"
#include "test.h"

#include <float.h>
#include <stdlib.h>

static uint64_t trng = 0x1234567;
static float frand(void) { /* [0, 1) */
    trng ^= trng << 13; trng ^= trng >> 7; trng ^= trng << 17;
    return (float)(trng >> 40) / (float)(1u << 24);
}

static yan_sampler_params plain(void) {
    yan_sampler_params p = yan_sampler_params_default();
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    return p;
}

static yan_sampler *mk(const yan_sampler_params *p, int32_t V) {
    yan_sampler *s = NULL;
    yan_status st = yan_sampler_new(p, V, &s);
    if (st != YAN_OK) fprintf(stderr, "  sampler_new: %s\n", yan_last_error());
    return s;
}

TEST(sampler_defaults) {
    yan_sampler_params p = yan_sampler_params_default();
    CHECK_NEAR(p.temperature, 0.8, 1e-7);
    CHECK(p.top_k == 40);
    CHECK_NEAR(p.top_p, 0.95, 1e-7);
    CHECK_NEAR(p.min_p, 0.05, 1e-7);
    CHECK(p.repeat_penalty == 1.0f && p.repeat_last_n == 64);
    CHECK(p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f);
    CHECK(p.seed == 42);
}

TEST(sampler_greedy) {
    yan_sampler_params p = plain();
    p.temperature = 0.0f;
    yan_sampler *s = mk(&p, 6);
    const float l[6] = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f, 0.0f};
    CHECK(yan_sampler_sample(s, l, NULL, 0) == 1); /* tie 1 vs 3: lowest id */
    const float l2[6] = {-5, -4, -3, -2, -1, -0.5f};
    CHECK(yan_sampler_sample(s, l2, NULL, 0) == 5);
    p.temperature = -1.0f; /* negative is greedy too */
    yan_sampler *s2 = mk(&p, 6);
    CHECK(yan_sampler_sample(s2, l, NULL, 0) == 1);
    yan_sampler_free(s);
    yan_sampler_free(s2);
    yan_sampler_free(NULL);
}

TEST(sampler_top_k1_is_greedy) {
    yan_sampler_params p = yan_sampler_params_default();
    p.top_k = 1;
    p.temperature = 1.5f;
    enum { V = 5000 };
    static float l[V];
    yan_sampler *s = mk(&p, V);
    for (int round = 0; round < 50; round++) {
        size_t best = 0;
        for (size_t i = 0; i < V; i++) {
            l[i] = frand() * 10.0f - 5.0f;
            if (l[i] > l[best]) best = i;
        }
        CHECK(yan_sampler_sample(s, l, NULL, 0) == (yan_token)best);
    }
    yan_sampler_free(s);
}

static void draw_seq(uint64_t seed, yan_token *out, int n) {
    yan_sampler_params p = yan_sampler_params_default();
    p.seed = seed;
    enum { V = 1000 };
    static float l[V];
    for (size_t i = 0; i < V; i++) l[i] = (float)(i % 17) * 0.05f; /* fairly flat */
    yan_sampler *s = mk(&p, V);
    for (int i = 0; i < n; i++) out[i] = yan_sampler_sample(s, l, NULL, 0);
    yan_sampler_free(s);
}

TEST(sampler_seed) {
    yan_token a[200], b[200], c[200];
    draw_seq(7, a, 200);
    draw_seq(7, b, 200);
    draw_seq(8, c, 200);
    CHECK(memcmp(a, b, sizeof a) == 0);
    int same = 0;
    for (int i = 0; i < 200; i++) same += a[i] == c[i];
    CHECK(same < 100);
}

TEST(sampler_reset_reseeds) {
    yan_sampler_params p = plain();
    p.seed = 99;
    p.repeat_penalty = 1.5f;
    const float l[8] = {1, 1.2f, 0.3f, 0.9f, 1.1f, 0.2f, 0.0f, 0.5f};
    yan_sampler *s = mk(&p, 8);
    yan_token a[50], b[50];
    for (int i = 0; i < 50; i++) a[i] = yan_sampler_sample(s, l, NULL, 0);
    yan_sampler_reset(s, 99);
    for (int i = 0; i < 50; i++) b[i] = yan_sampler_sample(s, l, NULL, 0);
    CHECK(memcmp(a, b, sizeof a) == 0); /* same seed and history emptied */
    yan_sampler_reset(s, 100);
    int same = 0;
    for (int i = 0; i < 50; i++) same += yan_sampler_sample(s, l, NULL, 0) == a[i];
    CHECK(same < 40);
    yan_sampler_free(s);
}

/* Draw n times and return the frequency of each token. */
static void freqs(yan_sampler *s, const float *l, int V, int n, double *f) {
    for (int i = 0; i < V; i++) f[i] = 0;
    for (int i = 0; i < n; i++) {
        yan_token t = yan_sampler_sample(s, l, NULL, 0);
        if (t >= 0 && t < V) f[t] += 1.0 / n;
    }
}

static void softmax(const float *l, int V, double temp, double *p) {
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < V; i++) mx = l[i] > mx ? l[i] : mx;
    for (int i = 0; i < V; i++) sum += p[i] = exp((l[i] - mx) / temp);
    for (int i = 0; i < V; i++) p[i] /= sum;
}

TEST(sampler_distribution_matches_softmax) {
    enum { V = 8, N = 200000 };
    const float l[V] = {1.0f, 2.0f, 0.5f, -1.0f, 1.5f, 0.0f, 2.2f, -3.0f};
    double f[V], want[V];
    /* sigma of a frequency is <= sqrt(0.25 / N) ~ 0.0011; 0.006 is > 5 sigma */
    yan_sampler_params p = plain();
    yan_sampler *s = mk(&p, V);
    freqs(s, l, V, N, f);
    softmax(l, V, 1.0, want);
    for (int i = 0; i < V; i++) CHECK_NEAR(f[i], want[i], 0.006);
    yan_sampler_free(s);
    /* temperature 0.5 sharpens exactly as softmax(l / 0.5) */
    p.temperature = 0.5f;
    s = mk(&p, V);
    freqs(s, l, V, N, f);
    softmax(l, V, 0.5, want);
    for (int i = 0; i < V; i++) CHECK_NEAR(f[i], want[i], 0.006);
    yan_sampler_free(s);
}

TEST(sampler_top_k) {
    enum { V = 8, N = 100000 };
    const float l[V] = {1.0f, 2.0f, 0.5f, -1.0f, 1.5f, 0.0f, 2.2f, -3.0f};
    yan_sampler_params p = plain();
    p.top_k = 3; /* keeps 6, 1, 4 */
    yan_sampler *s = mk(&p, V);
    double f[V], want[V];
    freqs(s, l, V, N, f);
    const float kept[3] = {l[6], l[1], l[4]};
    double pk[3];
    softmax(kept, 3, 1.0, pk);
    for (int i = 0; i < V; i++) want[i] = 0;
    want[6] = pk[0], want[1] = pk[1], want[4] = pk[2];
    for (int i = 0; i < V; i++) CHECK_NEAR(f[i], want[i], 0.008);
    yan_sampler_free(s);
}

/* The set of tokens drawn at a huge temperature (survivors become uniform). */
static void kept_set(yan_sampler_params p, const float *l, int V, int n, bool *seen) {
    p.temperature = 1e9f;
    yan_sampler *s = mk(&p, V);
    for (int i = 0; i < V; i++) seen[i] = false;
    for (int i = 0; i < n; i++) {
        yan_token t = yan_sampler_sample(s, l, NULL, 0);
        if (t >= 0 && t < V) seen[t] = true;
    }
    yan_sampler_free(s);
}

TEST(sampler_top_p_small) {
    /* probabilities 0.5, 0.3, 0.15, 0.05 (in a shuffled order) */
    const float l[4] = {logf(0.15f), logf(0.5f), logf(0.05f), logf(0.3f)};
    bool seen[4];
    yan_sampler_params p = plain();
    p.top_p = 0.75f; /* 0.5 + 0.3 reach it */
    kept_set(p, l, 4, 2000, seen);
    CHECK(seen[1] && seen[3] && !seen[0] && !seen[2]);
    p.top_p = 0.85f; /* needs the 0.15 too */
    kept_set(p, l, 4, 2000, seen);
    CHECK(seen[1] && seen[3] && seen[0] && !seen[2]);
    p.top_p = 0.4f; /* the top token alone */
    kept_set(p, l, 4, 2000, seen);
    CHECK(seen[1] && !seen[3] && !seen[0] && !seen[2]);
    p.top_p = 0.0f; /* never empty */
    kept_set(p, l, 4, 2000, seen);
    CHECK(seen[1] && !seen[3] && !seen[0] && !seen[2]);
    /* after top_k the mass is renormalised over the k survivors:
     * top_k 2 leaves 0.625 / 0.375, so top_p 0.6 keeps one token */
    p.top_k = 2;
    p.top_p = 0.6f;
    kept_set(p, l, 4, 2000, seen);
    CHECK(seen[1] && !seen[3]);
}

TEST(sampler_top_p_large_vocab) {
    /* 50k tokens: 24 high ones spread over [8, 10.3), the rest in [-34, -30)
     * (no mass to speak of). The cut falls inside the high group. Without
     * top_k the full-vocabulary gathering finds it; with a top_k of 2000 the
     * candidate bucketing of top_p_select does. */
    enum { V = 50000 };
    static float l[V];
    static bool seen[V];
    static int order[V];
    for (int i = 0; i < V; i++) l[i] = frand() * 4.0f - 34.0f;
    for (int j = 0; j < 24; j++) l[(j * 4099 + 17) % V] = 8.0f + 0.1f * (float)j;
    /* expected: sort all by (logit desc, id asc), take the smallest prefix with mass >= p */
    double mx = 10.3, total = 0;
    for (int i = 0; i < V; i++) total += exp(l[i] - mx), order[i] = i;
    for (int i = 0; i < 60; i++) { /* partial selection sort of the top 60 is enough */
        int b = i;
        for (int k = i + 1; k < V; k++)
            if (l[order[k]] > l[order[b]] || (l[order[k]] == l[order[b]] && order[k] < order[b])) b = k;
        int t = order[i]; order[i] = order[b]; order[b] = t;
    }
    const float tps[3] = {0.5f, 0.8f, 0.95f};
    for (int q = 0; q < 6; q++) {
        double acc = 0;
        int want = 0;
        while (want < 60 && acc < tps[q % 3] * total) acc += exp(l[order[want++]] - mx);
        CHECK(want > 1 && want < 60);
        yan_sampler_params p = plain();
        p.top_p = tps[q % 3];
        p.top_k = q < 3 ? 0 : 2000;
        kept_set(p, l, V, 30 * want, seen); /* a survivor is missed with p < e^-30 */
        int n_seen = 0;
        for (int i = 0; i < V; i++) n_seen += seen[i];
        CHECK(n_seen == want);
        for (int i = 0; i < want; i++) CHECK(seen[order[i]]);
    }
}

TEST(sampler_top_p_flat) {
    /* all logits equal: top_p 0.5 keeps exactly the 100 lowest ids */
    enum { V = 200 };
    static float l[V];
    static bool seen[V];
    for (int i = 0; i < V; i++) l[i] = 0.25f;
    yan_sampler_params p = plain();
    p.top_p = 0.5f;
    kept_set(p, l, V, 4000, seen);
    int n_seen = 0, max_id = -1;
    for (int i = 0; i < V; i++)
        if (seen[i]) n_seen++, max_id = i;
    CHECK(n_seen == 100 && max_id == 99);
}

TEST(sampler_min_p) {
    /* probabilities 0.6, 0.3, 0.06, 0.04 */
    const float l[4] = {logf(0.06f), logf(0.6f), logf(0.04f), logf(0.3f)};
    bool seen[4];
    yan_sampler_params p = plain();
    p.min_p = 0.09f; /* threshold 0.054: keeps 0.6, 0.3, 0.06 */
    kept_set(p, l, 4, 2000, seen);
    CHECK(seen[1] && seen[3] && seen[0] && !seen[2]);
    p.min_p = 0.11f; /* threshold 0.066 */
    kept_set(p, l, 4, 2000, seen);
    CHECK(seen[1] && seen[3] && !seen[0] && !seen[2]);
    p.min_p = 1.0f; /* only the top */
    kept_set(p, l, 4, 2000, seen);
    CHECK(seen[1] && !seen[3] && !seen[0] && !seen[2]);
}

/* Greedy choice on two logits after the history hist[0..nh). */
static yan_token greedy_after(yan_sampler_params p, const yan_token *hist, int nh, float l0, float l1) {
    p.temperature = 0.0f;
    yan_sampler *s = mk(&p, 2);
    for (int i = 0; i < nh; i++) yan_sampler_accept(s, hist[i]);
    const float l[2] = {l0, l1};
    yan_token t = yan_sampler_sample(s, l, NULL, 0);
    yan_sampler_free(s);
    return t;
}

TEST(sampler_penalties) {
    const yan_token h0[1] = {0}, h000[3] = {0, 0, 0};
    yan_sampler_params p = plain();
    /* repeat penalty 2: positive logit 3 -> 1.5, negative -1 -> -2, once per token */
    p.repeat_penalty = 2.0f;
    CHECK(greedy_after(p, h0, 1, 3.0f, 1.51f) == 1);
    CHECK(greedy_after(p, h0, 1, 3.0f, 1.49f) == 0);
    CHECK(greedy_after(p, h0, 1, -1.0f, -1.99f) == 1);
    CHECK(greedy_after(p, h0, 1, -1.0f, -2.01f) == 0);
    CHECK(greedy_after(p, h000, 3, 3.0f, 1.49f) == 0); /* not applied three times */
    CHECK(greedy_after(p, NULL, 0, 3.0f, 1.51f) == 0);  /* no history, no penalty */
    /* frequency 0.5 times the count 3 = 1.5 */
    p = plain();
    p.frequency_penalty = 0.5f;
    CHECK(greedy_after(p, h000, 3, 3.0f, 1.51f) == 1);
    CHECK(greedy_after(p, h000, 3, 3.0f, 1.49f) == 0);
    /* presence 1.0 once, whatever the count */
    p = plain();
    p.presence_penalty = 1.0f;
    CHECK(greedy_after(p, h000, 3, 3.0f, 2.01f) == 1);
    CHECK(greedy_after(p, h000, 3, 3.0f, 1.99f) == 0);
    /* all three: (3 / 2) - 3 * 0.5 - 1.0 = -1.0 */
    p.repeat_penalty = 2.0f;
    p.frequency_penalty = 0.5f;
    CHECK(greedy_after(p, h000, 3, 3.0f, -0.99f) == 1);
    CHECK(greedy_after(p, h000, 3, 3.0f, -1.01f) == 0);
    /* the window: with repeat_last_n 2, token 0 has left after 0,1,1 */
    p = plain();
    p.repeat_penalty = 2.0f;
    p.repeat_last_n = 2;
    const yan_token h011[3] = {0, 1, 1};
    CHECK(greedy_after(p, h011, 3, 3.0f, 2.9f) == 0);   /* only 1 is penalised: 2.9 -> 1.45 */
    CHECK(greedy_after(p, h011, 3, 3.0f, 6.1f) == 1);   /* 6.1 -> 3.05 */
    p.repeat_last_n = 0; /* no history at all */
    CHECK(greedy_after(p, h000, 3, 3.0f, 2.9f) == 0);
    CHECK(greedy_after(p, h011, 3, 1.0f, 1.9f) == 1);
    /* sampled tokens enter the history: greedy with a strong penalty alternates */
    p = plain();
    p.temperature = 0.0f;
    p.repeat_penalty = 10.0f;
    p.repeat_last_n = 1;
    yan_sampler *s = mk(&p, 2);
    const float l[2] = {2.0f, 1.0f};
    CHECK(yan_sampler_sample(s, l, NULL, 0) == 0);
    CHECK(yan_sampler_sample(s, l, NULL, 0) == 1);
    CHECK(yan_sampler_sample(s, l, NULL, 0) == 0);
    yan_sampler_accept(s, -1); /* out of range: ignored */
    yan_sampler_accept(s, 2);
    CHECK(yan_sampler_sample(s, l, NULL, 0) == 1);
    yan_sampler_free(s);
}

TEST(sampler_logprobs) {
    const float l[4] = {1.0f, 2.0f, 3.0f, 0.0f};
    double lse = log(exp(1.0) + exp(2.0) + exp(3.0) + exp(0.0));
    yan_sampler_params p = plain();
    p.temperature = 0.0f;
    p.repeat_penalty = 5.0f; /* penalties do not touch the logprobs */
    yan_sampler *s = mk(&p, 4);
    yan_sampler_accept(s, 2);
    yan_token_logprob top[7];
    yan_token t = yan_sampler_sample(s, l, top, 7);
    CHECK(t == 1); /* 3 / 5 = 0.6 < 2 */
    CHECK(top[0].token == 1);
    CHECK_NEAR(top[0].logprob, 2.0 - lse, 1e-5);
    const yan_token order[4] = {2, 1, 0, 3};
    for (int i = 0; i < 4; i++) {
        CHECK(top[1 + i].token == order[i]);
        CHECK_NEAR(top[1 + i].logprob, l[order[i]] - lse, 1e-5);
    }
    CHECK(top[5].token == -1 && top[5].logprob == -INFINITY); /* more asked than the vocabulary */
    CHECK(top[6].token == -1);
    yan_token_logprob one;
    yan_sampler_sample(s, l, &one, 1);
    CHECK(one.token == 2 || one.token == 1 || one.token == 0 || one.token == 3);
    double sum = 0;
    for (int i = 0; i < 4; i++) sum += exp(top[1 + i].logprob);
    CHECK_NEAR(sum, 1.0, 1e-5);
    yan_sampler_free(s);
}

TEST(sampler_nan_inf) {
    const float nanv = NAN;
    const float a[5] = {nanv, 1.0f, 2.0f, nanv, -INFINITY};
    yan_sampler_params p = plain();
    p.temperature = 0.0f;
    yan_sampler *g = mk(&p, 5);
    CHECK(yan_sampler_sample(g, a, NULL, 0) == 2);
    const float allnan[5] = {nanv, nanv, nanv, nanv, nanv};
    CHECK(yan_sampler_sample(g, allnan, NULL, 0) == 0);
    yan_token_logprob top[3];
    CHECK(yan_sampler_sample(g, a, top, 3) == 2);
    CHECK(top[1].token == 2 && top[2].token == 1 && isfinite(top[0].logprob));
    yan_sampler_free(g);

    const float b[5] = {nanv, 1.0f, INFINITY, nanv, 0.5f};
    const float c[5] = {-INFINITY, nanv, -INFINITY, -INFINITY, nanv};
    for (int k = 0; k < 3; k++) {
        p = yan_sampler_params_default();
        p.top_k = k == 0 ? 0 : 3;
        p.top_p = k == 2 ? 0.5f : 1.0f;
        p.min_p = k == 2 ? 0.1f : 0.0f;
        yan_sampler *s = mk(&p, 5);
        bool ok = true;
        for (int i = 0; i < 500; i++) {
            yan_token t = yan_sampler_sample(s, a, NULL, 0);
            ok = ok && (t == 1 || t == 2);
            ok = ok && yan_sampler_sample(s, b, NULL, 0) == 2; /* +inf takes it all */
            ok = ok && yan_sampler_sample(s, c, NULL, 0) == 0; /* nothing finite: lowest id */
        }
        CHECK(ok);
        yan_sampler_free(s);
    }
}

TEST(sampler_bad_params_and_oom) {
    yan_sampler *s = (yan_sampler *)1;
    CHECK(yan_sampler_new(NULL, 0, &s) == YAN_ERR_INVALID_ARG && s == NULL);
    yan_sampler_params p = yan_sampler_params_default();
    p.repeat_penalty = 0.0f;
    CHECK(yan_sampler_new(&p, 10, &s) == YAN_ERR_INVALID_ARG);
    CHECK(strstr(yan_last_error(), "repeat_penalty") != NULL);
    p = yan_sampler_params_default();
    p.repeat_last_n = -1;
    CHECK(yan_sampler_new(&p, 10, &s) == YAN_ERR_INVALID_ARG);
    p = yan_sampler_params_default();
    p.top_p = NAN;
    CHECK(yan_sampler_new(&p, 10, &s) == YAN_ERR_INVALID_ARG);
    CHECK(yan_sampler_new(NULL, 10, NULL) == YAN_ERR_INVALID_ARG);
    CHECK(yan_sampler_new(NULL, 10, &s) == YAN_OK && s); /* NULL params = defaults */
    yan_sampler_free(s);

    size_t before = yan_alloc_used();
    int failures = 0;
    for (long k = 1; k <= 8; k++) {
        yan_alloc_fail_after(k);
        s = NULL;
        yan_status st = yan_sampler_new(NULL, 1000, &s);
        yan_alloc_fail_after(0);
        if (st == YAN_OK) {
            CHECK(s != NULL);
            yan_sampler_free(s);
        } else {
            failures++;
            CHECK(st == YAN_ERR_NOMEM && s == NULL);
        }
        CHECK(yan_alloc_used() == before);
    }
    CHECK(failures == 7); /* the struct and six buffers */
}
