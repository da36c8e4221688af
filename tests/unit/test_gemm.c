/* test_gemm.c — the blocked GEMM (yan_sgemm, yan_sgemm_1, every kernel
 * family this CPU has, and the small-block fallback) against yan_sgemm_ref on
 * random matrices: sizes 1 .. ~300 around every block boundary (MR = 4, 6,
 * 14; NR = 16, 32; KC = 256; MC, NC crossed by a few larger shapes), all four
 * ta/tb, beta 0 (C pre-filled with NaN) and 1, leading dimensions wider than
 * the rows (the gaps hold NaN, which would show in C if read, and C's gaps
 * must come back untouched), and a few full training shapes checked on a
 * sample of rows. Then the threading contract: 1, 2 and 3 threads give
 * bit-identical C, and yan_sgemm_1 run concurrently from a pool gives the
 * same bits as run alone.
 *
 * Bound: |C - ref| <= 1e-5 * (sum_k |a_ik| |b_kj| + |C_in|) per element (both
 * sides round each of K products and sums; random signs keep the error far
 * below the worst case K * 2^-24). */
#include "tensor/gemm.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}
static float rng_unit(uint64_t *s) { return (float)((double)(rng_next(s) >> 11) / 9007199254740992.0) * 2.f - 1.f; }

/* A rows x cols matrix with row stride ld >= cols; the gap columns hold NaN. */
static float *make_mat(int64_t rows, int64_t cols, int64_t ld, uint64_t *s) {
    float *m = malloc(sizeof(float) * (size_t)(rows * ld + 1));
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < ld; j++) m[i * ld + j] = j < cols ? rng_unit(s) : NAN;
    return m;
}

typedef struct {
    bool ta, tb;
    int64_t M, N, K, lda, ldb, ldc;
    float beta;
    float *A, *B, *C0; /* C0: C before the product (NaN for beta 0), ldc wide */
    float *ref, *bound;
} gcase;

static void abs_copy(float *d, const float *s, size_t n) {
    for (size_t i = 0; i < n; i++) d[i] = isnan(s[i]) ? 0.0f : fabsf(s[i]);
}

/* pad: extra leading-dimension width (0 = tight) */
static gcase make_case(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float beta, int64_t pad, uint64_t seed) {
    gcase g = {ta, tb, M, N, K, 0, 0, 0, beta, NULL, NULL, NULL, NULL, NULL};
    uint64_t s = seed;
    int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    g.lda = ac + pad, g.ldb = bc + pad, g.ldc = N + pad;
    g.A = make_mat(ar, ac, g.lda, &s);
    g.B = make_mat(br, bc, g.ldb, &s);
    g.C0 = make_mat(M, N, g.ldc, &s);
    if (beta == 0.0f)
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) g.C0[i * g.ldc + j] = NAN;
    size_t nc = (size_t)(M * g.ldc + 1);
    g.ref = malloc(sizeof(float) * nc);
    g.bound = malloc(sizeof(float) * nc);
    memcpy(g.ref, g.C0, sizeof(float) * nc);
    yan_sgemm_ref(ta, tb, M, N, K, g.A, g.lda, g.B, g.ldb, beta, g.ref, g.ldc);
    /* bound = sum |a||b| + |C_in| through the same reference on |A|, |B| */
    float *aa = malloc(sizeof(float) * (size_t)(ar * g.lda + 1));
    float *ab = malloc(sizeof(float) * (size_t)(br * g.ldb + 1));
    abs_copy(aa, g.A, (size_t)(ar * g.lda));
    abs_copy(ab, g.B, (size_t)(br * g.ldb));
    abs_copy(g.bound, g.C0, nc - 1);
    yan_sgemm_ref(ta, tb, M, N, K, aa, g.lda, ab, g.ldb, beta, g.bound, g.ldc);
    free(aa), free(ab);
    return g;
}

static void free_case(gcase *g) { free(g->A), free(g->B), free(g->C0), free(g->ref), free(g->bound); }

/* C (from C0 by some path) against the reference; gaps must be unchanged.
 * Returns the number of bad elements (reports the first). */
static int check_c(const gcase *g, const float *C, const char *what) {
    int bad = 0;
    for (int64_t i = 0; i < g->M; i++)
        for (int64_t j = 0; j < g->ldc; j++) {
            int64_t x = i * g->ldc + j;
            bool ok;
            if (j < g->N)
                ok = fabsf(C[x] - g->ref[x]) <= 1e-5f * g->bound[x] + 1e-30f;
            else
                ok = isnan(C[x]) && isnan(g->C0[x]); /* the gap holds NaN and must still */
            if (!ok && bad++ == 0)
                fprintf(stderr, "  %s ta=%d tb=%d M=%lld N=%lld K=%lld beta=%g ld+%lld: C[%lld,%lld] = %g, "
                        "ref %g (bound %g)\n", what, g->ta, g->tb, (long long)g->M, (long long)g->N,
                        (long long)g->K, (double)g->beta, (long long)(g->ldc - g->N), (long long)i, (long long)j,
                        (double)C[x], (double)g->ref[x], (double)g->bound[x]);
        }
    return bad;
}

/* Runs one path on a copy of C0; path -1: yan_sgemm_1, -2: yan_sgemm with
 * pool, 0..2 families, 16+f: family f with the stack-sized blocks. Returns C
 * (caller frees) or NULL when the CPU lacks the family. */
static float *run_path(const gcase *g, int path, yan_pool *pool) {
    size_t nc = (size_t)(g->M * g->ldc + 1);
    float *C = malloc(sizeof(float) * nc);
    memcpy(C, g->C0, sizeof(float) * nc);
    if (path == -1) {
        yan_sgemm_1(g->ta, g->tb, g->M, g->N, g->K, g->A, g->lda, g->B, g->ldb, g->beta, C, g->ldc);
    } else if (path == -2) {
        yan_sgemm(pool, g->ta, g->tb, g->M, g->N, g->K, g->A, g->lda, g->B, g->ldb, g->beta, C, g->ldc);
    } else if (!yan_sgemm_path(path, pool, g->ta, g->tb, g->M, g->N, g->K, g->A, g->lda, g->B, g->ldb, g->beta, C,
                               g->ldc)) {
        free(C);
        return NULL;
    }
    return C;
}

static const int k_paths[] = {-1, -2, 0, 1, 2, 16, 17, 18};
static const char *path_name(int p) {
    switch (p) {
    case -1: return "yan_sgemm_1";
    case -2: return "yan_sgemm(pool 2)";
    case 0: return "scalar";
    case 1: return "avx2";
    case 2: return "avx512";
    case 16: return "scalar/stack";
    case 17: return "avx2/stack";
    default: return "avx512/stack";
    }
}

/* every path on one shape, all four ta/tb, beta 0 and 1, tight and padded */
static void check_shape(int64_t M, int64_t N, int64_t K, yan_pool *pool, uint64_t seed) {
    for (int l = 0; l < 4; l++)
        for (int b = 0; b < 2; b++) {
            bool ta = l & 1, tb = l >> 1;
            gcase g = make_case(ta, tb, M, N, K, (float)b, (l + b) % 3 == 1 ? 3 : 0, seed + (uint64_t)(4 * l + b));
            for (size_t p = 0; p < sizeof k_paths / sizeof k_paths[0]; p++) {
                /* the plain C family only on the smaller shapes (slow under sanitizers) */
                if ((k_paths[p] & 15) == 0 && M * N * K > (1 << 22)) continue;
                float *C = run_path(&g, k_paths[p], pool);
                if (!C) continue;
                int bad = check_c(&g, C, path_name(k_paths[p]));
                CHECK(bad == 0);
                free(C);
            }
            free_case(&g);
        }
}

/* sizes at and around every family's MR, NR and the K block */
static const int64_t k_sizes[] = {1, 2, 3, 4, 5, 6, 7, 13, 14, 15, 16, 17, 28, 29, 31, 32, 33, 37, 42, 47, 64, 97};

TEST(gemm_small_shapes_all_paths) {
    yan_pool *pool = NULL;
    CHECK(yan_pool_new(2, &pool) == YAN_OK);
    int n = (int)(sizeof k_sizes / sizeof k_sizes[0]);
    uint64_t s = 99;
    for (int t = 0; t < 120; t++) {
        int64_t M = k_sizes[rng_next(&s) % (uint64_t)n], N = k_sizes[rng_next(&s) % (uint64_t)n];
        int64_t K = k_sizes[rng_next(&s) % (uint64_t)n];
        check_shape(M, N, K, pool, 1000 + (uint64_t)t * 16);
    }
    check_shape(1, 1, 1, pool, 7);
    yan_pool_free(pool);
}

/* K across one and two K blocks (255 .. 513), M across the AVX-512 MC (336),
 * N across its NC (2048), primes */
TEST(gemm_block_boundaries) {
    yan_pool *pool = NULL;
    CHECK(yan_pool_new(2, &pool) == YAN_OK);
    static const int64_t shapes[][3] = {
        {29, 33, 255}, {29, 33, 256}, {30, 31, 257}, {15, 47, 511}, {14, 32, 512}, {17, 35, 513}, {3, 5, 700},
        {337, 40, 33}, {350, 17, 300}, {673, 9, 20}, {13, 2049, 17}, {5, 2100, 260}, {131, 127, 251},
        {256, 256, 64}, {256, 64, 256}, {200, 150, 270}, {1, 300, 299}, {300, 1, 298}, {211, 223, 1},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        check_shape(shapes[i][0], shapes[i][1], shapes[i][2], pool, 5000 + i * 16);
    yan_pool_free(pool);
}

/* K = 0: C = 0 for beta 0, untouched for beta 1; M or N = 0: no-op */
TEST(gemm_empty_dimensions) {
    float A[4] = {1, 2, 3, 4}, B[4] = {1, 2, 3, 4}, C[6] = {NAN, NAN, NAN, 5, 6, 7};
    yan_sgemm_1(false, false, 2, 3, 0, A, 1, B, 3, 0.0f, C, 3);
    for (int i = 0; i < 6; i++) CHECK(C[i] == 0.0f);
    for (int i = 0; i < 6; i++) C[i] = (float)i;
    yan_sgemm(NULL, true, true, 2, 3, 0, A, 2, B, 1, 1.0f, C, 3);
    for (int i = 0; i < 6; i++) CHECK(C[i] == (float)i);
    yan_sgemm_1(false, false, 0, 3, 2, A, 2, B, 3, 0.0f, C, 3);
    yan_sgemm_1(false, false, 2, 0, 2, A, 2, B, 3, 0.0f, C, 3);
    for (int i = 0; i < 6; i++) CHECK(C[i] == (float)i);
}

/* The trainer's three products at full size, checked on 16 sampled rows of C
 * (the reference on those rows only). */
TEST(gemm_training_shapes) {
    yan_pool *pool = NULL;
    CHECK(yan_pool_new(2, &pool) == YAN_OK);
    static const int64_t lin[][2] = {{1024, 1024}, {256, 704}}; /* (in, out) */
    uint64_t s = 4242;
    for (size_t i = 0; i < sizeof lin / sizeof lin[0]; i++)
        for (int l = 0; l < 3; l++) {
            int64_t in = lin[i][0], out = lin[i][1], T = 2048;
            bool ta = l == 2, tb = l == 0;
            int64_t M = l == 2 ? out : T, N = l == 0 ? out : in, K = l == 0 ? in : l == 1 ? out : T;
            float beta = l == 2 ? 1.0f : 0.0f;
            int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
            float *A = make_mat(ar, ac, ac, &s), *B = make_mat(br, bc, bc, &s), *C = make_mat(M, N, N, &s);
            float *C0 = malloc(sizeof(float) * (size_t)(M * N));
            memcpy(C0, C, sizeof(float) * (size_t)(M * N));
            if (beta == 0.0f)
                for (int64_t x = 0; x < M * N; x++) C[x] = NAN;
            yan_sgemm(pool, ta, tb, M, N, K, A, ac, B, bc, beta, C, N);
            float *ref = malloc(sizeof(float) * (size_t)N), *bound = malloc(sizeof(float) * (size_t)N);
            float *aa = malloc(sizeof(float) * (size_t)(ar * ac)), *ab = malloc(sizeof(float) * (size_t)(br * bc));
            abs_copy(aa, A, (size_t)(ar * ac));
            abs_copy(ab, B, (size_t)(br * bc));
            int bad = 0;
            for (int r = 0; r < 16; r++) {
                int64_t row = r == 0 ? 0 : r == 1 ? M - 1 : (int64_t)(rng_next(&s) % (uint64_t)M);
                const float *Ar = ta ? A + row : A + row * ac;
                memcpy(ref, C0 + row * N, sizeof(float) * (size_t)N);
                yan_sgemm_ref(ta, tb, 1, N, K, Ar, ac, B, bc, beta, ref, N);
                abs_copy(bound, C0 + row * N, (size_t)N);
                yan_sgemm_ref(ta, tb, 1, N, K, ta ? aa + row : aa + row * ac, ac, ab, bc, beta, bound, N);
                for (int64_t j = 0; j < N; j++)
                    if (!(fabsf(C[row * N + j] - ref[j]) <= 1e-5f * bound[j]) && bad++ == 0)
                        fprintf(stderr, "  ta=%d tb=%d %lldx%lldx%lld: C[%lld,%lld] = %g, ref %g\n", ta, tb,
                                (long long)M, (long long)N, (long long)K, (long long)row, (long long)j,
                                (double)C[row * N + j], (double)ref[j]);
            }
            CHECK(bad == 0);
            free(A), free(B), free(C), free(C0), free(ref), free(bound), free(aa), free(ab);
        }
    yan_pool_free(pool);
}

/* 1, 2 and 3 threads (cut along M or along N) give the same bits */
TEST(gemm_threads_bit_identical) {
    yan_pool *p2 = NULL, *p3 = NULL;
    CHECK(yan_pool_new(2, &p2) == YAN_OK);
    CHECK(yan_pool_new(3, &p3) == YAN_OK);
    static const int64_t shapes[][3] = {{300, 200, 100}, {200, 301, 100}, {97, 1030, 270}, {1030, 45, 260},
                                        {2048, 256, 64}, {64, 640, 600}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int l = 0; l < 4; l++) {
            gcase g = make_case(l & 1, l >> 1, shapes[i][0], shapes[i][1], shapes[i][2], (float)(l & 1), i % 2 ? 5 : 0,
                                77 + i * 4 + (uint64_t)l);
            float *c1 = run_path(&g, -1, NULL);
            float *c2 = run_path(&g, -2, p2);
            float *c3 = run_path(&g, -2, p3);
            size_t bytes = sizeof(float) * (size_t)(g.M * g.ldc);
            CHECK(check_c(&g, c1, "1 thread") == 0);
            CHECK(memcmp(c1, c2, bytes) == 0);
            CHECK(memcmp(c1, c3, bytes) == 0);
            /* each family and its stack-block fallback, split or not (on the
             * smaller shapes: the plain C family is slow under sanitizers) */
            for (int f = 0; f < 3 && g.M * g.N * g.K <= (1 << 23); f++) {
                float *a = run_path(&g, f, NULL);
                if (!a) continue;
                float *b = run_path(&g, f, p3), *c = run_path(&g, 16 + f, p2);
                CHECK(memcmp(a, b, bytes) == 0);
                CHECK(memcmp(a, c, bytes) == 0);
                free(a), free(b), free(c);
            }
            free(c1), free(c2), free(c3);
            free_case(&g);
        }
    yan_pool_free(p2);
    yan_pool_free(p3);
}

/* yan_sgemm_1 from every thread of a pool run at once, as the attention
 * heads call it: each thread's products match the same calls made alone. */
typedef struct {
    gcase *cases;
    int n;
    float **out;
} conc_job;

static void conc_task(void *ud, int ith, int nth) {
    conc_job *j = ud;
    for (int rep = 0; rep < 3; rep++)
        for (int i = ith; i < j->n; i += nth) {
            gcase *g = &j->cases[i];
            memcpy(j->out[i], g->C0, sizeof(float) * (size_t)(g->M * g->ldc));
            yan_sgemm_1(g->ta, g->tb, g->M, g->N, g->K, g->A, g->lda, g->B, g->ldb, g->beta, j->out[i], g->ldc);
        }
}

TEST(gemm_sgemm_1_concurrent) {
    enum { NC = 12 };
    gcase cases[NC];
    float *alone[NC], *out[NC];
    for (int i = 0; i < NC; i++) {
        int64_t M = i % 3 == 0 ? 256 : 64 + 17 * i, N = i % 2 ? 64 : 256, K = i % 2 ? 256 : 64;
        cases[i] = make_case(i & 1, (i >> 1) & 1, M, N, K, (float)(i % 2), i % 4 == 3 ? 7 : 0, 900 + (uint64_t)i);
        alone[i] = run_path(&cases[i], -1, NULL);
        CHECK(check_c(&cases[i], alone[i], "alone") == 0);
        out[i] = malloc(sizeof(float) * (size_t)(cases[i].M * cases[i].ldc + 1));
    }
    yan_pool *pool = NULL;
    CHECK(yan_pool_new(4, &pool) == YAN_OK);
    conc_job j = {cases, NC, out};
    yan_pool_run(pool, conc_task, &j);
    for (int i = 0; i < NC; i++) {
        CHECK(memcmp(out[i], alone[i], sizeof(float) * (size_t)(cases[i].M * cases[i].ldc)) == 0);
        free(out[i]), free(alone[i]);
        free_case(&cases[i]);
    }
    yan_pool_free(pool);
}

TEST(gemm_path_names) {
    CHECK(yan_sgemm_path_name(0) != NULL);
    int id = yan_sgemm_path_id();
    CHECK(id >= 0 && id <= 2 && yan_sgemm_path_name(id) != NULL);
    CHECK(yan_sgemm_path_name(3) == NULL);
}
