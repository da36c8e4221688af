/* membw.c — the memory-read bandwidth of this machine, and the bandwidth
 * bound of token generation for GGUF models (bench/llm.sh).
 *
 *   bench_membw [-t THREADS] [-m MiB]     read bandwidth in GB/s (1e9 bytes/s):
 *       THREADS threads (default 2) each sum their own slice of a buffer of
 *       MiB (default 1024; far beyond the caches, advised for huge pages),
 *       the best of 10 passes after two warm-up passes, half of them with a
 *       software prefetch 8 KiB ahead (as the GEMV kernels; more reads in
 *       flight than the hardware prefetchers keep alone, so it is the
 *       higher one on most machines). Prints "membw_gbs=X threads=T mib=M".
 *   bench_membw --gguf FILE...             bytes of weights read per generated
 *       token: every tensor except token_embd (one row of it is read per token)
 *       and position_embd. Prints "FILE bytes_per_token=N".
 *
 * The read loop uses GCC vector extensions (16-byte lanes, four accumulators)
 * so it is not limited by scalar loads; it needs no SIMD flags. */
#include "base/base.h"
#include "gguf/gguf.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

typedef long long v2 __attribute__((vector_size(16)));

typedef struct {
    const v2 *p;
    size_t n; /* vectors */
    bool pf;  /* prefetch 8 KiB ahead into L2, as the GEMV kernels do */
    long long sum;
} slice;

static void *read_slice(void *arg) {
    slice *s = arg;
    v2 a = {0, 0}, b = {0, 0}, c = {0, 0}, d = {0, 0};
    for (size_t i = 0; i + 4 <= s->n; i += 4) {
        if (s->pf) __builtin_prefetch(s->p + i + 512, 0, 2); /* past the end: harmless */
        a += s->p[i];
        b += s->p[i + 1];
        c += s->p[i + 2];
        d += s->p[i + 3];
    }
    v2 t = a + b + c + d;
    s->sum = t[0] + t[1];
    return NULL;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int bandwidth(int threads, size_t mib) {
    size_t bytes = mib << 20;
    v2 *buf = NULL;
    if (posix_memalign((void **)&buf, 4096, bytes)) { fprintf(stderr, "bench_membw: out of memory\n"); return 1; }
    madvise(buf, bytes, MADV_HUGEPAGE); /* as yan's copy of the weights */
    memset(buf, 1, bytes); /* fault every page in */
    size_t nv = bytes / sizeof(v2);
    slice sl[64];
    pthread_t th[64];
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    double best = 0;
    long long check = 0;
    for (int pass = 0; pass < 12; pass++) {
        double t0 = now();
        for (int i = 0; i < threads; i++) {
            size_t a = nv * (size_t)i / (size_t)threads, b = nv * (size_t)(i + 1) / (size_t)threads;
            sl[i] = (slice){buf + a, b - a, pass % 2 == 1, 0};
            if (i && pthread_create(&th[i], NULL, read_slice, &sl[i])) { fprintf(stderr, "bench_membw: no threads\n"); return 1; }
        }
        read_slice(&sl[0]);
        for (int i = 1; i < threads; i++) pthread_join(th[i], NULL);
        double dt = now() - t0;
        for (int i = 0; i < threads; i++) check += sl[i].sum;
        double gbs = (double)bytes / dt / 1e9;
        if (pass > 1 && gbs > best) best = gbs;
    }
    volatile long long sink = check; /* keep the reads */
    (void)sink;
    printf("membw_gbs=%.1f threads=%d mib=%zu\n", best, threads, mib);
    free(buf);
    return 0;
}

static int gguf_bytes(int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        yan_gguf *g = NULL;
        if (yan_gguf_open(argv[i], &g) != YAN_OK) {
            fprintf(stderr, "bench_membw: %s\n", yan_last_error());
            return 1;
        }
        uint64_t total = 0;
        for (int64_t k = 0; k < yan_gguf_n_tensors(g); k++) {
            const yan_gguf_tensor *t = yan_gguf_tensor_at(g, k);
            if ((t->name_len == 17 && !memcmp(t->name, "token_embd.weight", 17)) ||
                (t->name_len == 20 && !memcmp(t->name, "position_embd.weight", 20)))
                continue;
            total += t->nbytes;
        }
        printf("%s bytes_per_token=%llu\n", argv[i], (unsigned long long)total);
        yan_gguf_close(g);
    }
    return 0;
}

int main(int argc, char **argv) {
    int threads = 2;
    size_t mib = 1024;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--gguf")) return gguf_bytes(argc - i - 1, argv + i + 1);
        if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-m") && i + 1 < argc) mib = (size_t)atol(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_membw [-t THREADS] [-m MiB] | --gguf FILE...\n");
            return 2;
        }
    }
    return bandwidth(threads, mib);
}
