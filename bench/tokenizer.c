/* bench_tokenizer.c — time yan's tokenizer on one whole file.
 *
 *   bench_tokenizer VOCAB FILE [--threads N] [--repeat R] [--pre NAME] [--special]
 *
 * Loads the vocabulary (timed), reads FILE into memory, encodes it once to warm
 * up, then R more times (default 3) and prints one line:
 *
 *   vocab=... file=... bytes=B tokens=T threads=N load_ms=L median_s=S mb_s=M
 *
 * where mb_s is the bytes of input (10^6 per MB) divided by the median encode
 * time. Exit 0 on success, 1 on any failure (message on stderr). */
#include "yan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Read a whole file into a new buffer; NULL on failure (message printed). */
static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); return NULL; }
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        char *nb = realloc(buf, cap *= 2);
        if (!nb) { free(buf); buf = NULL; }
        else buf = nb;
    }
    if (!buf || ferror(f)) {
        fprintf(stderr, "bench_tokenizer: %s: read failed\n", path);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

static void usage(void) {
    fprintf(stderr, "usage: bench_tokenizer VOCAB FILE [--threads N] [--repeat R] [--pre NAME] [--special]\n");
    exit(1);
}

int main(int argc, char **argv) {
    const char *vocab = NULL, *file = NULL, *pre = NULL;
    int threads = 1, repeat = 3;
    uint32_t flags = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--pre") && i + 1 < argc) pre = argv[++i];
        else if (!strcmp(argv[i], "--special")) flags |= YAN_TOKENIZE_SPECIAL;
        else if (argv[i][0] == '-') usage();
        else if (!vocab) vocab = argv[i];
        else if (!file) file = argv[i];
        else usage();
    }
    if (!vocab || !file || repeat < 1 || repeat > 1000 || threads < 0) usage();

    size_t len = 0;
    char *text = read_file(file, &len);
    if (!text) return 1;

    yan_tokenizer_params p = yan_tokenizer_params_default();
    p.pre = pre;
    p.n_threads = threads;
    yan_tokenizer *tok = NULL;
    double t0 = now_s();
    yan_status st = yan_tokenizer_load(vocab, &p, &tok);
    double load_ms = (now_s() - t0) * 1e3;
    if (st != YAN_OK) {
        fprintf(stderr, "bench_tokenizer: %s: %s: %s\n", vocab, yan_status_str(st), yan_last_error());
        free(text);
        return 1;
    }

    double *times = calloc((size_t)repeat, sizeof *times);
    size_t n_tokens = 0;
    int rc = 0;
    if (!times) { fprintf(stderr, "bench_tokenizer: out of memory\n"); rc = 1; goto done; }
    for (int r = -1; r < repeat; r++) { /* r = -1: warm-up */
        yan_token *ids = NULL;
        size_t n = 0;
        double t = now_s();
        st = yan_tokenize_alloc(tok, text, len, flags, &ids, &n);
        t = now_s() - t;
        if (st != YAN_OK) {
            fprintf(stderr, "bench_tokenizer: tokenize: %s: %s\n", yan_status_str(st), yan_last_error());
            rc = 1;
            goto done;
        }
        yan_free_tokens(ids);
        n_tokens = n;
        if (r >= 0) times[r] = t;
    }
    qsort(times, (size_t)repeat, sizeof *times, cmp_double);
    double med = times[repeat / 2];
    printf("vocab=%s file=%s bytes=%zu tokens=%zu threads=%d load_ms=%.1f median_s=%.4f mb_s=%.2f\n",
           vocab, file, len, n_tokens, threads, load_ms, med, med > 0 ? (double)len / 1e6 / med : 0.0);
done:
    free(times);
    yan_tokenizer_free(tok);
    free(text);
    return rc;
}
