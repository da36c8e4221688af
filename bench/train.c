/* train.c — yan's side of bench/train.sh: one training step (forward,
 * backward, gradient clipping, AdamW) of a llama model on random tokens,
 * timed as bench/train_torch.py times PyTorch's.
 *
 * Usage: bench_train LAYERS DIM HEADS FF SEQ BATCH VOCAB STEPS [THREADS]
 * Prints "yan ms_per_step=... tokens_per_s=... peak_rss_mb=... gflops=..." */
#include "train/adamw.h"
#include "train/tmodel.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 9) {
        fprintf(stderr, "usage: %s LAYERS DIM HEADS FF SEQ BATCH VOCAB STEPS [THREADS]\n", argv[0]);
        return 2;
    }
    yan_tconfig c;
    yan_tconfig_default(&c);
    c.n_layer = atoi(argv[1]);
    c.n_embd = atoi(argv[2]);
    c.n_head = c.n_head_kv = atoi(argv[3]);
    c.n_ff = atoi(argv[4]);
    int T = atoi(argv[5]), B = atoi(argv[6]);
    c.n_vocab = atoi(argv[7]);
    c.n_ctx = T;
    c.tied_output = false;
    int steps = atoi(argv[8]);
    int threads = argc > 9 ? atoi(argv[9]) : 2;

    yan_tmodel *m = NULL;
    if (yan_tmodel_new(&c, B, T, threads, &m) != YAN_OK) {
        fprintf(stderr, "bench_train: %s\n", yan_last_error());
        return 1;
    }
    yan_tmodel_init(m, 0);
    yan_adamw opt;
    if (yan_adamw_init(&opt, m) != YAN_OK) return 1;
    int32_t *in = malloc(sizeof(int32_t) * (size_t)B * (size_t)T);
    int32_t *tg = malloc(sizeof(int32_t) * (size_t)B * (size_t)T);
    double *times = malloc(sizeof(double) * (size_t)(steps + 2));
    uint64_t s = 1;
    float loss = 0;
    for (int i = 0; i < steps + 2; i++) { /* two warm-up steps */
        for (int j = 0; j < B * T; j++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            in[j] = (int32_t)((s >> 33) % (uint64_t)c.n_vocab);
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            tg[j] = (int32_t)((s >> 33) % (uint64_t)c.n_vocab);
        }
        double t0 = now_s();
        yan_tmodel_zero_grad(m);
        loss = yan_tmodel_forward(m, in, tg, B, T);
        yan_tmodel_backward(m, 1.0f);
        yan_grad_clip(m, 1.0f);
        yan_adamw_step(&opt, m, 3e-4f);
        times[i] = now_s() - t0;
    }
    qsort(times + 2, (size_t)steps, sizeof(double), cmp_double);
    double t = times[2 + steps / 2]; /* median */
    /* matmul FLOPs of a step: 6 per weight per token (forward 2, backward 4)
     * for every matrix but the embedding lookup, plus attention (QK^T and PV:
     * 2 * 2 * T^2/2... counted full as PyTorch computes it: 4 T^2 C per
     * sequence and layer forward, times 3 with the backward). */
    double C = c.n_embd, FF = c.n_ff, V = c.n_vocab, L = c.n_layer;
    double per_tok = L * (4 * C * C + 3 * C * FF) + C * V;
    double flops = 6.0 * per_tok * B * T + 3.0 * L * B * 4.0 * (double)T * T * C;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("yan ms_per_step=%.1f tokens_per_s=%.0f peak_rss_mb=%.0f gflops=%.1f loss=%.4f\n", t * 1e3,
           B * T / t, ru.ru_maxrss / 1024.0, flops / t * 1e-9, loss);
    yan_adamw_free(&opt);
    yan_tmodel_free(m);
    free(in);
    free(tg);
    free(times);
    return 0;
}
