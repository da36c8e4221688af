/* test_ops.c — the small ops against their formulas computed in double:
 * rmsnorm, layernorm, softmax, SwiGLU, GELU (tanh form, known values), dot and
 * axpy over f32 and f16 at odd lengths, and rotary embeddings in both of
 * llama.cpp's layouts (NORM: adjacent pairs, NEOX: halves) with linear
 * frequency scaling and partial rotation. */
#include "tensor/tensor.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}
static float rng_unit(uint64_t *s) { return (float)((double)(rng_next(s) >> 11) / 9007199254740992.0) * 2.f - 1.f; }

TEST(ops_rmsnorm_layernorm) {
    enum { N = 77 };
    float x[N], w[N], b[N], out[N];
    uint64_t s = 1;
    for (int i = 0; i < N; i++) x[i] = rng_unit(&s) * 3, w[i] = rng_unit(&s), b[i] = rng_unit(&s);
    double ss = 0;
    for (int i = 0; i < N; i++) ss += (double)x[i] * x[i];
    double sc = 1 / sqrt(ss / N + 1e-5);
    yan_rmsnorm(out, x, w, N, 1e-5f);
    for (int i = 0; i < N; i++) CHECK_NEAR(out[i], x[i] * sc * w[i], 1e-5);
    yan_rmsnorm(out, x, NULL, N, 1e-5f);
    for (int i = 0; i < N; i++) CHECK_NEAR(out[i], x[i] * sc, 1e-5);
    memcpy(out, x, sizeof x);
    yan_rmsnorm(out, out, w, N, 1e-5f); /* in place */
    CHECK_NEAR(out[5], x[5] * sc * w[5], 1e-5);

    double mean = 0, var = 0;
    for (int i = 0; i < N; i++) mean += x[i];
    mean /= N;
    for (int i = 0; i < N; i++) var += (x[i] - mean) * (x[i] - mean);
    double inv = 1 / sqrt(var / N + 1e-5);
    yan_layernorm(out, x, w, b, N, 1e-5f);
    for (int i = 0; i < N; i++) CHECK_NEAR(out[i], (x[i] - mean) * inv * w[i] + b[i], 1e-5);
    yan_layernorm(out, x, NULL, NULL, N, 1e-5f);
    double m2 = 0;
    for (int i = 0; i < N; i++) m2 += out[i];
    CHECK_NEAR(m2 / N, 0, 1e-6);
}

TEST(ops_softmax) {
    float x[5] = {1, 2, 3, 1000, -1000};
    yan_softmax(x, 5);
    CHECK_NEAR(x[3], 1, 1e-6);
    CHECK(x[4] == 0);
    float y[3] = {0, log(2.f), log(5.f)};
    yan_softmax(y, 3);
    CHECK_NEAR(y[0], 1 / 8., 1e-6);
    CHECK_NEAR(y[1], 2 / 8., 1e-6);
    CHECK_NEAR(y[2], 5 / 8., 1e-6);
}

TEST(ops_activations) {
    float g[4] = {1, -1, 0, 3};
    yan_gelu(g, 4);
    CHECK_NEAR(g[0], 0.841191990, 1e-6); /* 0.5(1 + tanh(sqrt(2/pi)(1.044715))) */
    CHECK_NEAR(g[1], -0.158808010, 1e-6);
    CHECK(g[2] == 0);
    CHECK_NEAR(g[3], 2.996362972, 1e-5);
    float a[3] = {1, -2, 0}, b[3] = {2, 3, 5};
    yan_silu_mul(a, b, 3);
    CHECK_NEAR(a[0], 2 / (1 + exp(-1.0)), 1e-6);
    CHECK_NEAR(a[1], 3 * -2 / (1 + exp(2.0)), 1e-6);
    CHECK(a[2] == 0);
}

TEST(ops_dot_axpy) {
    enum { N = 4099 };
    float *a = malloc(sizeof(float) * N), *b = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N);
    uint16_t *h = malloc(sizeof(uint16_t) * N);
    uint64_t s = 9;
    for (int i = 0; i < N; i++) a[i] = rng_unit(&s), b[i] = rng_unit(&s);
    yan_f32_to_f16_row(b, h, N);
    int lens[] = {0, 1, 15, 16, 17, 31, 33, 128, 4099};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        int n = lens[k];
        double d = 0, dh = 0;
        for (int i = 0; i < n; i++) d += (double)a[i] * b[i], dh += (double)a[i] * yan_f16_to_f32(h[i]);
        CHECK_NEAR(yan_dot_f32(a, b, n), d, 1e-4 * (1 + sqrt(n)));
        CHECK_NEAR(yan_dot_f16(a, h, n), dh, 1e-4 * (1 + sqrt(n)));
        for (int i = 0; i < n; i++) y[i] = a[i];
        yan_axpy_f32(y, 0.5f, b, n);
        int bad = 0;
        for (int i = 0; i < n; i++) bad += fabsf(y[i] - (a[i] + 0.5f * b[i])) > 1e-6f;
        for (int i = 0; i < n; i++) y[i] = a[i];
        yan_axpy_f16(y, -2.f, h, n);
        for (int i = 0; i < n; i++) bad += fabsf(y[i] - (a[i] - 2.f * yan_f16_to_f32(h[i]))) > 1e-5f;
        CHECK(bad == 0);
    }
    free(a), free(b), free(y), free(h);
}

/* The blocked attention kernels against the per-key loops (yan_dot_f16 /
 * yan_axpy_f16 and the scalar reference) on random data, odd head sizes and
 * key counts; tolerance 1e-5 of the sum of the terms' magnitudes. */
TEST(ops_attn_blocked) {
    enum { NK = 133, HDMAX = 136 };
    float *q = malloc(sizeof(float) * HDMAX), *kf = malloc(sizeof(float) * NK * HDMAX);
    uint16_t *K = malloc(sizeof(uint16_t) * NK * HDMAX), *V = malloc(sizeof(uint16_t) * NK * HDMAX);
    float *sc = malloc(sizeof(float) * NK), *sr = malloc(sizeof(float) * NK), *w = malloc(sizeof(float) * NK);
    float *o = malloc(sizeof(float) * HDMAX), *oref = malloc(sizeof(float) * HDMAX), *o2 = malloc(sizeof(float) * HDMAX);
    uint64_t s = 77;
    for (int i = 0; i < NK * HDMAX; i++) kf[i] = rng_unit(&s) * 2;
    yan_f32_to_f16_row(kf, K, NK * HDMAX);
    for (int i = 0; i < NK * HDMAX; i++) kf[i] = rng_unit(&s);
    yan_f32_to_f16_row(kf, V, NK * HDMAX);
    int hds[] = {1, 7, 8, 15, 16, 17, 33, 63, 64, 65, 80, 100, 128, 136};
    int nks[] = {0, 1, 5, 7, 8, 9, 16, 31, 64, 133};
    int bad = 0;
    for (size_t a = 0; a < sizeof hds / sizeof hds[0]; a++)
        for (size_t b = 0; b < sizeof nks / sizeof nks[0]; b++) {
            int hd = hds[a], nk = nks[b];
            float scale = 1.f / sqrtf((float)hd);
            for (int i = 0; i < hd; i++) q[i] = rng_unit(&s);
            yan_attn_scores_f16(q, K, nk, hd, scale, sc);
            yan_attn_scores_f16_ref(q, K, nk, hd, scale, sr);
            for (int j = 0; j < nk; j++) {
                double mag = 0;
                for (int i = 0; i < hd; i++) mag += fabs((double)q[i] * yan_f16_to_f32(K[j * hd + i]));
                double tol = 1e-5 * mag * scale + 1e-30;
                float perkey = yan_dot_f16(q, K + j * hd, hd) * scale;
                bad += fabs((double)sc[j] - sr[j]) > tol;
                bad += fabs((double)sc[j] - perkey) > tol;
            }
            /* softmax: against yan_softmax */
            memcpy(w, sc, sizeof(float) * nk);
            memcpy(sr, sc, sizeof(float) * nk);
            yan_attn_softmax(w, nk);
            yan_softmax(sr, nk);
            for (int j = 0; j < nk; j++) bad += fabsf(w[j] - sr[j]) > 1e-5f * sr[j] + 1e-12f;
            /* values: against the per-key axpy loop and the scalar reference */
            yan_attn_values_f16(o, w, V, nk, hd);
            yan_attn_values_f16_ref(oref, w, V, nk, hd);
            for (int i = 0; i < hd; i++) o2[i] = 0;
            for (int j = 0; j < nk; j++) yan_axpy_f16(o2, w[j], V + j * hd, hd);
            for (int i = 0; i < hd; i++) {
                double mag = 0;
                for (int j = 0; j < nk; j++) mag += fabs((double)w[j] * yan_f16_to_f32(V[j * hd + i]));
                double tol = 1e-5 * mag + 1e-30;
                bad += fabs((double)o[i] - oref[i]) > tol;
                bad += fabs((double)o[i] - o2[i]) > tol;
            }
        }
    CHECK(bad == 0);
    /* large and very negative scores: no overflow, zeros where expf underflows */
    float x[19];
    for (int i = 0; i < 19; i++) x[i] = i == 3 ? 1000.f : -1000.f + (float)i;
    yan_attn_softmax(x, 19);
    CHECK_NEAR(x[3], 1, 1e-6);
    CHECK(x[0] == 0 && x[18] == 0);
    free(q), free(kf), free(K), free(V), free(sc), free(sr), free(w), free(o), free(oref), free(o2);
}

/* RoPE from the definition, in double. */
static void rope_def(double *x, int n_rot, int pos, double base, double fs, bool neox) {
    for (int i = 0; i < n_rot / 2; i++) {
        double th = pos * fs * pow(base, -2.0 * i / n_rot);
        int a = neox ? i : 2 * i, b = neox ? i + n_rot / 2 : 2 * i + 1;
        double x0 = x[a], x1 = x[b];
        x[a] = x0 * cos(th) - x1 * sin(th);
        x[b] = x0 * sin(th) + x1 * cos(th);
    }
}

TEST(ops_rope_layouts) {
    enum { HD = 64 };
    uint64_t s = 11;
    float x0[HD];
    for (int i = 0; i < HD; i++) x0[i] = rng_unit(&s);
    struct { int n_rot, pos; float base, fs; bool neox; } cs[] = {
        {64, 0, 10000, 1, false}, {64, 7, 10000, 1, false}, {64, 7, 10000, 1, true},
        {64, 123, 1e6f, 0.25f, true}, {32, 45, 10000, 1, false}, {32, 45, 10000, 0.5f, true},
    };
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        float x[HD];
        double xd[HD];
        for (int i = 0; i < HD; i++) x[i] = x0[i], xd[i] = x0[i];
        yan_rope(x, HD, cs[k].n_rot, cs[k].pos, cs[k].base, cs[k].fs, cs[k].neox);
        rope_def(xd, cs[k].n_rot, cs[k].pos, cs[k].base, cs[k].fs, cs[k].neox);
        double md = 0;
        for (int i = 0; i < HD; i++) md = fmax(md, fabs(x[i] - xd[i]));
        /* float angles at pos 123: ~1e-5 of absolute error */
        CHECK(md < 1e-4);
        for (int i = cs[k].n_rot; i < HD; i++) CHECK(x[i] == x0[i]); /* unrotated tail */
    }
    /* layouts differ: NORM rotates (x0, x1) — pos 1, dim pair 0 has theta = 1 */
    float a[4] = {1, 0, 0, 0}, b[4] = {1, 0, 0, 0};
    yan_rope(a, 4, 4, 1, 10000, 1, false);
    yan_rope(b, 4, 4, 1, 10000, 1, true);
    CHECK_NEAR(a[1], sin(1.0), 1e-6);
    CHECK(b[1] == 0);
    CHECK_NEAR(b[2], sin(1.0), 1e-6);
}
