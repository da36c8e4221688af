/* logits.c — yan's side of the llama.cpp comparison (tests/e2e/test_llama_peer.sh),
 * through the public API of include/yan.h only.
 *
 *   logits eval MODEL IDS OUT.bin [--gen N] [--kv f16|f32] [--threads T] [--batch B]
 *       Evaluates the token ids in file IDS (whitespace separated) from
 *       position 0 with all logits, writes the log-softmax of every position
 *       (n_ids * n_vocab float32) to OUT.bin, then continues greedily for N
 *       tokens (argmax, lowest id on ties). Prints one JSON line:
 *       {"n_vocab":V,"n_ids":N,"greedy":[...],"seconds":S}
 *       (the same shape as tests/peers/llama_peer.mjs prints).
 *   logits compare A.bin B.bin N_VOCAB
 *       A = the reference (llama.cpp), B = yan. Per position: the logit range
 *       (max - min of B's log-softmax, which equals that of the logits), the
 *       largest |A - B|, the argmax of each, and KL(A || B). Prints
 *       positions=P max_abs=X max_rel=X (max_abs / range, worst position)
 *       top1=F (fraction of positions whose argmax agrees) kl_mean=X kl_max=X.
 *       Entries that are -inf in either file (a probability that underflowed
 *       in the peer's float32 softmax) are left out of max_abs.
 */
#include "yan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void die(const char *fmt, const char *a) {
    fprintf(stderr, "logits: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n");
    exit(1);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static yan_token *read_ids(const char *path, size_t *n) {
    FILE *f = fopen(path, "r");
    if (!f) die("cannot open %s", path);
    size_t cap = 256, k = 0;
    yan_token *ids = malloc(cap * sizeof *ids);
    long v;
    while (ids && fscanf(f, "%ld", &v) == 1) {
        if (v < 0 || v > INT32_MAX) die("%s: bad token id", path);
        if (k == cap) ids = realloc(ids, (cap *= 2) * sizeof *ids);
        if (ids) ids[k++] = (yan_token)v;
    }
    if (!ids) die("%s: out of memory", path);
    if (!feof(f)) die("%s: not a list of token ids", path);
    fclose(f);
    *n = k;
    return ids;
}

/* log-softmax of n logits in double, written as float; returns the argmax
 * (lowest id on ties) */
static int log_softmax(const float *x, int n, float *out) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    double m = x[best], s = 0;
    for (int i = 0; i < n; i++) s += exp((double)x[i] - m);
    double ls = log(s);
    if (out)
        for (int i = 0; i < n; i++) out[i] = (float)((double)x[i] - m - ls);
    return best;
}

static void check(yan_status s, const char *what) {
    if (s != YAN_OK) {
        fprintf(stderr, "logits: %s: %s (%s)\n", what, yan_last_error(), yan_status_str(s));
        exit(1);
    }
}

static int cmd_eval(int argc, char **argv) {
    const char *model_path = NULL, *ids_path = NULL, *out_path = NULL;
    int gen = 0, threads = 0, batch = 0;
    yan_kv_type kv = YAN_KV_F16;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--gen") && i + 1 < argc) gen = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--kv") && i + 1 < argc) kv = !strcmp(argv[++i], "f32") ? YAN_KV_F32 : YAN_KV_F16;
        else if (!model_path) model_path = argv[i];
        else if (!ids_path) ids_path = argv[i];
        else if (!out_path) out_path = argv[i];
        else die("unexpected argument %s", argv[i]);
    }
    if (!out_path) die("%s", "usage: logits eval MODEL IDS OUT.bin [--gen N] [--kv f16|f32] [--threads T]");
    double t0 = now();
    size_t n = 0;
    yan_token *ids = read_ids(ids_path, &n);
    if (n == 0) die("%s: no token ids", ids_path);

    yan_model_params mp = yan_model_params_default();
    yan_model *m = NULL;
    check(yan_model_load(model_path, &mp, &m), model_path);
    yan_context_params cp = yan_context_params_default();
    cp.n_ctx = (int32_t)(n + (size_t)gen + 8);
    if (cp.n_ctx < 256) cp.n_ctx = 256;
    cp.n_threads = threads;
    cp.n_batch = batch;
    cp.kv_type = kv;
    yan_context *ctx = NULL;
    check(yan_context_new(m, &cp, &ctx), "context");
    const int V = yan_model_n_vocab(m);

    check(yan_eval(ctx, ids, n, true), "eval");
    float *lp = malloc((size_t)V * sizeof *lp);
    FILE *f = fopen(out_path, "wb");
    if (!lp || !f) die("cannot write %s", out_path);
    int best = 0;
    for (size_t i = 0; i < n; i++) {
        const float *lg = yan_logits(ctx, (int32_t)i);
        if (!lg) die("%s", "no logits for a position (all_logits not honoured)");
        best = log_softmax(lg, V, lp);
        if (fwrite(lp, sizeof *lp, (size_t)V, f) != (size_t)V) die("cannot write %s", out_path);
    }
    if (fclose(f)) die("cannot write %s", out_path);

    printf("{\"n_vocab\":%d,\"n_ids\":%zu,\"greedy\":[", V, n);
    for (int k = 0; k < gen; k++) {
        printf("%s%d", k ? "," : "", best);
        if (k + 1 == gen) break;
        yan_token t = best;
        check(yan_eval(ctx, &t, 1, false), "eval");
        best = log_softmax(yan_logits(ctx, -1), V, NULL);
    }
    printf("],\"seconds\":%.3f}\n", now() - t0);
    free(lp);
    free(ids);
    yan_context_free(ctx);
    yan_model_free(m);
    return 0;
}

static float *read_bin(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    float *x = malloc(len > 0 ? (size_t)len : 1);
    if (!x || fread(x, 1, (size_t)len, f) != (size_t)len) die("cannot read %s", path);
    fclose(f);
    *n = (size_t)len / sizeof(float);
    return x;
}

static int cmd_compare(int argc, char **argv) {
    if (argc != 3) die("%s", "usage: logits compare REF.bin YAN.bin N_VOCAB");
    size_t na, nb;
    float *a = read_bin(argv[0], &na), *b = read_bin(argv[1], &nb);
    long V = atol(argv[2]);
    if (V <= 0 || na != nb || na % (size_t)V) die("%s", "the files differ in size or do not hold whole rows");
    size_t P = na / (size_t)V;
    double max_abs = 0, max_rel = 0, kl_sum = 0, kl_max = 0;
    size_t agree = 0;
    for (size_t p = 0; p < P; p++) {
        const float *x = a + p * (size_t)V, *y = b + p * (size_t)V;
        float lo = INFINITY, hi = -INFINITY;
        long ax = 0, ay = 0;
        double d = 0, kl = 0;
        for (long i = 0; i < V; i++) {
            if (y[i] < lo) lo = y[i];
            if (y[i] > hi) hi = y[i];
            if (x[i] > x[ax]) ax = i;
            if (y[i] > y[ay]) ay = i;
            if (isfinite(x[i]) && isfinite(y[i])) {
                double e = fabs((double)x[i] - (double)y[i]);
                if (e > d) d = e;
            }
            if (isfinite(x[i])) kl += exp((double)x[i]) * ((double)x[i] - (double)(isfinite(y[i]) ? y[i] : -1e4f));
        }
        double range = (double)hi - (double)lo;
        if (d > max_abs) max_abs = d;
        if (range > 0 && d / range > max_rel) max_rel = d / range;
        if (kl < 0) kl = 0; /* rounding */
        kl_sum += kl;
        if (kl > kl_max) kl_max = kl;
        agree += ax == ay;
    }
    printf("positions=%zu max_abs=%.3g max_rel=%.3g top1=%.4f kl_mean=%.3g kl_max=%.3g\n", P, max_abs, max_rel,
           (double)agree / (double)P, kl_sum / (double)P, kl_max);
    free(a);
    free(b);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "eval")) return cmd_eval(argc - 2, argv + 2);
    if (argc >= 2 && !strcmp(argv[1], "compare")) return cmd_compare(argc - 2, argv + 2);
    fprintf(stderr, "usage: logits eval MODEL IDS OUT.bin [--gen N] [--kv f16|f32] [--threads T]\n"
                    "       logits compare REF.bin YAN.bin N_VOCAB\n");
    return 2;
}
