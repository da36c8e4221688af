/* bench/matmul.c — kernel speed: for each weight type, GEMV (T = 1, decode)
 * and GEMM (T = 512 by default, prompt processing) at the shapes of a
 * TinyLlama-sized model, on 1 and 2 threads split by row ranges through
 * yan_parallel_for, plus the machine's raw read bandwidth (a sum over a 1 GB
 * buffer) that GEMV is reported against.
 *
 * usage: build/bench_matmul [--quick] [--types q4_0,q8_0,...] [--T 512] [--threads 1,2] [--path 0|1|2]
 * (--path forces a kernel family: 0 scalar, 1 AVX2, 2 AVX-512; default: the dispatch's.)
 * Prints one line per (type, shape, T, threads): ms per call, GFLOP/s (2 *
 * rows * cols * T / s), and for T = 1 GB/s of weights read and the fraction
 * of measured bandwidth. */
#include "tensor/tensor.h"

#include <immintrin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------ bandwidth */

typedef struct {
    const float *buf;
    size_t n;
    int parts;
    double sums[64];
} bw_job;

__attribute__((target("avx512f"))) static double sum_avx512(const float *p, size_t n) {
    __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps(), c = _mm512_setzero_ps(), d = _mm512_setzero_ps();
    for (size_t i = 0; i + 64 <= n; i += 64) {
        a = _mm512_add_ps(a, _mm512_loadu_ps(p + i));
        b = _mm512_add_ps(b, _mm512_loadu_ps(p + i + 16));
        c = _mm512_add_ps(c, _mm512_loadu_ps(p + i + 32));
        d = _mm512_add_ps(d, _mm512_loadu_ps(p + i + 48));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a, b), _mm512_add_ps(c, d)));
}

static void bw_task(void *ud, int task) {
    bw_job *j = ud;
    size_t chunk = j->n / (size_t)j->parts;
    const float *p = j->buf + chunk * (size_t)task;
    double s = 0;
    if (yan_cpu_get()->avx512f)
        s = sum_avx512(p, chunk);
    else
        for (size_t i = 0; i < chunk; i++) s += p[i];
    j->sums[task] = s;
}

static double bandwidth(int threads, size_t bytes) {
    float *buf = malloc(bytes);
    size_t n = bytes / sizeof(float);
    for (size_t i = 0; i < n; i++) buf[i] = (float)(i & 7);
    bw_job j = {buf, n, threads, {0}};
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t = now();
        yan_parallel_for(threads, threads, bw_task, &j);
        t = now() - t;
        if (bytes / t > best) best = (double)bytes / t;
    }
    free(buf);
    return best / 1e9;
}

/* -------------------------------------------------------------- matmul */

typedef struct {
    const yan_mat *w;
    const void *scratch;
    const float *x;
    int T;
    float *y;
    int parts;
    int path; /* -1: yan_matmul_rows' choice */
} mm_job;

static void mm_task(void *ud, int task) {
    mm_job *j = ud;
    int64_t n = j->w->ne1, per = (n + j->parts - 1) / j->parts;
    int64_t r0 = per * task, r1 = r0 + per < n ? r0 + per : n;
    if (j->path < 0) yan_matmul_rows(j->w, j->scratch, j->x, j->T, j->y, j->w->ne1, r0, r1);
    else yan_matmul_rows_path(j->path, j->w, j->scratch, j->x, j->T, j->y, j->w->ne1, r0, r1);
}

static uint64_t rng(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

static void bench_one(int type, int64_t ne0, int64_t ne1, int T, int threads, double bw, int path) {
    yan_mat w = {type, ne0, ne1, yan_type_row_bytes(type, ne0), NULL};
    size_t wbytes = w.row_bytes * (size_t)ne1;
    uint8_t *data = malloc(wbytes);
    float *row = malloc(sizeof(float) * (size_t)ne0);
    uint64_t s = 99;
    /* quantize a few distinct rows and replicate them (quantizing 65M values is slow) */
    for (int64_t r = 0; r < ne1; r++) {
        if (r < 16) {
            for (int64_t i = 0; i < ne0; i++) row[i] = (float)((int64_t)(rng(&s) % 2001) - 1000) * 2e-5f;
            yan_quantize_row(type, row, data + (size_t)r * w.row_bytes, ne0);
        } else {
            memcpy(data + (size_t)r * w.row_bytes, data + (size_t)(r % 16) * w.row_bytes, w.row_bytes);
        }
    }
    w.data = data;
    float *x = malloc(sizeof(float) * (size_t)(ne0 * T)), *y = malloc(sizeof(float) * (size_t)(ne1 * T));
    for (int64_t i = 0; i < ne0 * T; i++) x[i] = (float)((int64_t)(rng(&s) % 2001) - 1000) * 1e-3f;
    size_t sb = yan_matmul_scratch_bytes(&w, T);
    void *scratch = malloc(sb ? sb : 64);
    mm_job j = {&w, scratch, x, T, y, threads * 4, path};
    static const char *const k_path[] = {"scalar", "avx2", "avx512"};
    double flops = 2.0 * (double)ne0 * (double)ne1 * T;
    int reps = (int)(2e9 / flops) + 1;
    if (reps > 200) reps = 200;
    if (T == 1 && reps < 20) reps = 20;
    double best = 1e30;
    for (int rep = 0; rep < reps + 1; rep++) {
        double t = now();
        yan_matmul_prepare(&w, x, T, 0, T, scratch);
        yan_parallel_for(threads, j.parts, mm_task, &j);
        t = now() - t;
        if (rep > 0 && t < best) best = t; /* rep 0 warms caches and pages */
    }
    printf("%-5s %6lldx%-6lld T=%-4d thr=%d %-10s %9.3f ms %8.1f GFLOP/s", yan_type_name(type), (long long)ne1,
           (long long)ne0, T, threads, path < 0 ? yan_matmul_path(type) : k_path[path], best * 1e3, flops / best / 1e9);
    if (T == 1) printf(" %6.1f GB/s (%3.0f%% of read bw)", (double)wbytes / best / 1e9, 100 * (double)wbytes / best / 1e9 / bw);
    printf("\n");
    fflush(stdout);
    free(data), free(row), free(x), free(y), free(scratch);
}

int main(int argc, char **argv) {
    const char *types = "q4_0,q8_0,q4_K,q5_K,q6_K,f16,bf16,f32";
    const char *thr = "1,2";
    int Tbig = 512, path = -1;
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = true;
        else if (!strcmp(argv[i], "--types") && i + 1 < argc) types = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) thr = argv[++i];
        else if (!strcmp(argv[i], "--T") && i + 1 < argc) Tbig = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--path") && i + 1 < argc && (path = atoi(argv[++i])) >= 0 && path <= 2) continue;
        else {
            fprintf(stderr, "usage: %s [--quick] [--types q4_0,...] [--threads 1,2] [--T 512] [--path 0|1|2]\n", argv[0]);
            return 2;
        }
    }
    printf("cpu: %s\n", yan_cpu_features());
    int tlist[8], nt = 0;
    for (const char *p = thr; *p && nt < 8;) {
        tlist[nt++] = atoi(p);
        p = strchr(p, ',');
        if (!p) break;
        p++;
    }
    double bw[8];
    for (int i = 0; i < nt; i++) {
        bw[i] = bandwidth(tlist[i], quick ? (size_t)256 << 20 : (size_t)1 << 30);
        printf("read bandwidth, %d thread(s): %.1f GB/s\n", tlist[i], bw[i]);
    }
    static const struct { int64_t ne1, ne0; } shapes[] = {{2048, 2048}, {5632, 2048}, {2048, 5632}, {32000, 2048}};
    int nshape = quick ? 2 : 4;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", types);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int type = -1;
        for (int t = 0; t < 31; t++)
            if (!strcmp(yan_type_name(t), tok)) type = t;
        if (type < 0 || !yan_type_supported(type)) {
            fprintf(stderr, "unknown type %s\n", tok);
            continue;
        }
        for (int i = 0; i < nt; i++)
            for (int s = 0; s < nshape; s++) {
                bench_one(type, shapes[s].ne0, shapes[s].ne1, 1, tlist[i], bw[i], path);
                if (!quick || s == 0) bench_one(type, shapes[s].ne0, shapes[s].ne1, Tbig, tlist[i], bw[i], path);
            }
    }
    return 0;
}
