/* bench/gemm.c — speed of yan_sgemm at the trainer's shapes: every linear
 * layer's three products (forward y = x W^T: ta=0 tb=1; dx = dy W: 0 0;
 * dW += dy^T x: 1 0, beta 1) for T = 2048 tokens and (in, out) among the
 * model's widths, plus the per-head attention products through yan_sgemm_1,
 * on 1 and 2 threads.
 *
 * usage: build/bench_gemm [--quick] [--threads 1,2] [--path 0|1|2] [--reps N]
 *                         [--layout L] [--shape MxNxK] [--cpu-time] [--list]
 * --layout: only that product kind, fwd, dx, dw, or (with --shape) qk, pv,
 * ptdo, the attention kinds (ta tb = 0 1, 0 0, 1 0 through yan_sgemm_1);
 * --shape: one product of that size instead of the list. --list: print the
 * products (layout ta tb M N K threads) without running them.
 * (--path forces a kernel family: 0 plain C, 1 AVX2, 2 AVX-512; default:
 * the dispatch's. --cpu-time: time by the calling thread's CPU clock, which
 * leaves out time the thread spent descheduled on a shared machine; only
 * meaningful with --threads 1.) Prints one line per (layout, shape, threads):
 *   layout ta tb M N K threads ms GFLOP/s
 * GFLOP/s = 2 M N K / best time over reps (each rep runs for >= 0.2 s). */
#include "tensor/gemm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static clockid_t g_clock = CLOCK_MONOTONIC;

static double now(void) {
    struct timespec ts;
    clock_gettime(g_clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    const char *layout;
    bool ta, tb;
    float beta;
    int64_t M, N, K;
    bool single; /* through yan_sgemm_1 (the attention products) */
} shape;

/* The linear layers of the models the trainer runs, T = 2048 tokens:
 * (in, out) of q/k/v/o, FFN up/gate and down, and the output head. */
static const int64_t k_linear[][2] = {
    {256, 256}, {256, 704}, {704, 256}, {384, 384}, {384, 1024}, {1024, 384},
    {1024, 1024}, {1024, 4096}, {4096, 1024}, {1024, 8192},
};
static const int64_t k_linear_quick[][2] = {{256, 704}, {1024, 1024}, {1024, 4096}};
enum { T = 2048 };

/* the product kinds: layout, ta, tb, beta, through yan_sgemm_1 */
static const shape k_kinds[] = {
    {"fwd", false, true, 0.0f, 0, 0, 0, false},  {"dx", false, false, 0.0f, 0, 0, 0, false},
    {"dw", true, false, 1.0f, 0, 0, 0, false},   {"qk", false, true, 0.0f, 0, 0, 0, true},
    {"pv", false, false, 0.0f, 0, 0, 0, true},   {"ptdo", true, false, 0.0f, 0, 0, 0, true},
};

static const shape *kind(const char *layout) {
    for (size_t i = 0; i < sizeof k_kinds / sizeof k_kinds[0]; i++)
        if (!strcmp(k_kinds[i].layout, layout)) return &k_kinds[i];
    return NULL;
}

static shape sized(const char *layout, int64_t M, int64_t N, int64_t K) {
    shape s = *kind(layout);
    s.M = M, s.N = N, s.K = K;
    return s;
}

/* the three products of a linear layer (in -> out) at T tokens */
static int add_linear(shape *s, int n, int64_t in, int64_t out, const char *only) {
    if (!only || !strcmp(only, "fwd")) s[n++] = sized("fwd", T, out, in);
    if (!only || !strcmp(only, "dx")) s[n++] = sized("dx", T, in, out);
    if (!only || !strcmp(only, "dw")) s[n++] = sized("dw", out, in, T);
    return n;
}

static void fill(float *p, size_t n, uint64_t seed) {
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        p[i] = (float)((double)(s >> 11) / 9007199254740992.0) - 0.5f;
    }
}

static void run(const shape *sh, yan_pool *pool, int path, int reps) {
    int64_t M = sh->M, N = sh->N, K = sh->K;
    int64_t lda = sh->ta ? M : K, ldb = sh->tb ? K : N;
    float *A = malloc(sizeof(float) * (size_t)(M * K)), *B = malloc(sizeof(float) * (size_t)(K * N));
    float *C = malloc(sizeof(float) * (size_t)(M * N));
    fill(A, (size_t)(M * K), 1), fill(B, (size_t)(K * N), 2), fill(C, (size_t)(M * N), 3);
    double best = 1e30;
    for (int r = 0; r < reps + 1; r++) { /* the first rep warms caches and pack buffers */
        int calls = 0;
        double t0 = now(), t;
        do {
            if (sh->single && path < 0)
                yan_sgemm_1(sh->ta, sh->tb, M, N, K, A, lda, B, ldb, sh->beta, C, N);
            else if (path < 0)
                yan_sgemm(pool, sh->ta, sh->tb, M, N, K, A, lda, B, ldb, sh->beta, C, N);
            else
                yan_sgemm_path(path, sh->single ? NULL : pool, sh->ta, sh->tb, M, N, K, A, lda, B, ldb, sh->beta, C,
                               N);
            calls++;
            t = now() - t0;
        } while (t < 0.2);
        if (r > 0 && t / calls < best) best = t / calls;
    }
    double gflops = 2.0 * (double)M * (double)N * (double)K / best / 1e9;
    printf("%-4s %d %d %5lld %5lld %5lld %d %9.3f %7.1f\n", sh->layout, sh->ta, sh->tb, (long long)M, (long long)N,
           (long long)K, sh->single ? 1 : yan_pool_size(pool), best * 1e3, gflops);
    fflush(stdout);
    free(A), free(B), free(C);
}

int main(int argc, char **argv) {
    bool quick = false, list = false;
    int path = -1, reps = 3, threads[8] = {1, 2}, n_threads = 2;
    const char *only = NULL;
    long long sm = 0, sn = 0, sk = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            quick = true;
        } else if (!strcmp(argv[i], "--cpu-time")) {
            g_clock = CLOCK_THREAD_CPUTIME_ID;
        } else if (!strcmp(argv[i], "--list")) {
            list = true;
        } else if (!strcmp(argv[i], "--path") && i + 1 < argc) {
            path = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--layout") && i + 1 < argc) {
            only = argv[++i];
        } else if (!strcmp(argv[i], "--shape") && i + 1 < argc) {
            if (sscanf(argv[++i], "%lldx%lldx%lld", &sm, &sn, &sk) != 3) sm = 0;
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            n_threads = 0;
            for (char *p = argv[++i]; *p && n_threads < 8; p++) {
                threads[n_threads++] = (int)strtol(p, &p, 10);
                if (!*p) break;
            }
        } else {
            fprintf(stderr, "usage: %s [--quick] [--threads 1,2] [--path 0|1|2] [--reps N] [--layout L] "
                            "[--shape MxNxK] [--cpu-time] [--list]\n", argv[0]);
            return 2;
        }
    }
    if (only && (!kind(only) || (kind(only)->single && sm <= 0))) {
        fprintf(stderr, "--layout: fwd, dx, dw, or with --shape also qk, pv, ptdo\n");
        return 2;
    }
    if (path >= 0 && !yan_sgemm_path_name(path)) {
        fprintf(stderr, "path %d is not available on this CPU\n", path);
        return 1;
    }
    shape s[64];
    int n = 0;
    if (sm > 0) {
        s[n++] = sized(only ? only : "fwd", sm, sn, sk);
    } else {
        const int64_t(*lin)[2] = quick ? k_linear_quick : k_linear;
        int nl = quick ? (int)(sizeof k_linear_quick / sizeof k_linear_quick[0])
                       : (int)(sizeof k_linear / sizeof k_linear[0]);
        for (int i = 0; i < nl; i++) n = add_linear(s, n, lin[i][0], lin[i][1], only);
        /* per attention head (T = 256 per sequence, head size 64), through
         * yan_sgemm_1: scores Q K^T, P V, and the backward's dP = dO V^T,
         * dV = P^T dO, dQ = dS K, dK = dS^T Q */
        if (!only) {
            s[n++] = sized("qk", 256, 256, 64);
            s[n++] = sized("pv", 256, 64, 256);
            s[n++] = sized("ptdo", 256, 64, 256);
        }
    }
    if (list) {
        for (int t = 0; t < n_threads; t++)
            for (int i = 0; i < n; i++)
                if (!s[i].single || t == 0)
                    printf("%-4s %d %d %5lld %5lld %5lld %d\n", s[i].layout, s[i].ta, s[i].tb, (long long)s[i].M,
                           (long long)s[i].N, (long long)s[i].K, s[i].single ? 1 : threads[t]);
        return 0;
    }
    printf("# kernel family: %s\n", yan_sgemm_path_name(path >= 0 ? path : yan_sgemm_path_id()));
    printf("# layout ta tb M N K threads ms GFLOP/s\n");
    for (int t = 0; t < n_threads; t++) {
        yan_pool *pool = NULL;
        if (yan_pool_new(threads[t], &pool) != YAN_OK) return 1;
        for (int i = 0; i < n; i++) {
            if (s[i].single && t > 0) continue; /* yan_sgemm_1 runs on one thread */
            run(&s[i], pool, path, reps);
        }
        yan_pool_free(pool);
    }
    return 0;
}
