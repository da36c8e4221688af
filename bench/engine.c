/* bench/engine.c — aggregate decode speed of the continuous-batching engine:
 * N sequences each get one token per step (one yan_engine_step of N tokens,
 * logits for every one, as a server's decode step), for N = 1, 4, 8, 16,
 * against one sequence decoding through a yan_context (yan_eval of one
 * token). Every sequence first holds a prompt of -p tokens (not timed), then
 * -n steps are timed; the best of -r repetitions is reported as tokens/s
 * (N * steps / wall seconds) and as a multiple of the context's speed, and
 * as tokens per CPU-second of the process (all threads; spinning barriers
 * count): on a shared machine the CPU figure at -t 1 is the steadier one.
 *
 * usage: build/bench_engine MODEL.gguf [-t threads] [-p prompt] [-n steps] [-r reps]
 *        [--seqs 1,4,8,16] [--kv-type f16|f32]
 * Tokens are random ids (speed does not depend on them). */
#include "model/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct { double wall, cpu; } speed; /* tokens per wall / CPU second, best of the repetitions */

static void keep_best(speed *b, double tokens, double t0, double c0) {
    double w = tokens / (now() - t0), c = tokens / (cpu_now() - c0);
    if (w > b->wall) b->wall = w;
    if (c > b->cpu) b->cpu = c;
}

static uint64_t g_state = 88172645463325252ull;
static yan_token rand_tok(int32_t V) {
    g_state ^= g_state << 13;
    g_state ^= g_state >> 7;
    g_state ^= g_state << 17;
    return (yan_token)(g_state % (uint64_t)V);
}

static int die(const char *what, yan_status s) {
    fprintf(stderr, "bench_engine: %s: %s (%s)\n", what, yan_status_str(s), yan_last_error());
    return 1;
}

/* tokens/s of one sequence through a context: prompt, then steps single-token evals */
static int bench_context(yan_model *m, int nth, yan_kv_type kv, int prompt, int steps, int reps, speed *best) {
    const int32_t V = yan_model_n_vocab(m);
    yan_context_params cp = yan_context_params_default();
    cp.n_ctx = prompt + steps + 1;
    cp.n_threads = nth;
    cp.kv_type = kv;
    yan_context *c = NULL;
    yan_status s = yan_context_new(m, &cp, &c);
    if (s) return die("context", s);
    yan_token *p = malloc((size_t)prompt * sizeof *p);
    for (int i = 0; i < prompt; i++) p[i] = rand_tok(V);
    *best = (speed){0, 0};
    for (int r = 0; r <= reps && !s; r++) { /* r = 0: warm-up */
        yan_context_truncate(c, 0);
        s = yan_eval(c, p, (size_t)prompt, false);
        double t0 = now(), c0 = cpu_now();
        for (int i = 0; i < steps && !s; i++) {
            yan_token t = rand_tok(V);
            s = yan_eval(c, &t, 1, false);
        }
        if (r > 0) keep_best(best, steps, t0, c0);
    }
    free(p);
    yan_context_free(c);
    return s ? die("eval", s) : 0;
}

/* aggregate tokens/s of n sequences decoding together */
static int bench_engine(yan_model *m, int nth, yan_kv_type kv, int n, int prompt, int steps, int reps,
                        speed *best) {
    const int32_t V = yan_model_n_vocab(m);
    yan_engine_params ep = yan_engine_params_default();
    ep.n_ctx = prompt + steps + 1;
    ep.n_seq_max = n;
    ep.n_batch = 512;
    ep.n_threads = nth;
    ep.kv_type = kv;
    yan_engine *e = NULL;
    yan_status s = yan_engine_new(m, &ep, &e);
    if (s) return die("engine", s);
    const int nb = yan_engine_n_batch(e);
    yan_engine_tok *st = malloc((size_t)(nb > n ? nb : n) * sizeof *st);
    int32_t *seq = malloc((size_t)n * sizeof *seq);
    *best = (speed){0, 0};
    for (int r = 0; r <= reps && !s; r++) {
        for (int i = 0; i < n && !s; i++) {
            s = yan_engine_seq_new(e, &seq[i]);
            /* different prompts: no prefix is shared */
            for (int done = 0; done < prompt && !s;) {
                int k = prompt - done < nb ? prompt - done : nb;
                for (int j = 0; j < k; j++) st[j] = (yan_engine_tok){seq[i], rand_tok(V), j == k - 1};
                s = yan_engine_step(e, st, k);
                done += k;
            }
        }
        double t0 = now(), c0 = cpu_now();
        for (int it = 0; it < steps && !s; it++) {
            for (int i = 0; i < n; i++) st[i] = (yan_engine_tok){seq[i], rand_tok(V), true};
            s = yan_engine_step(e, st, n);
        }
        if (r > 0) keep_best(best, (double)n * steps, t0, c0);
        for (int i = 0; i < n; i++) yan_engine_seq_free(e, seq[i]);
    }
    free(st);
    free(seq);
    yan_engine_free(e);
    return s ? die("step", s) : 0;
}

int main(int argc, char **argv) {
    const char *path = NULL, *seqs = "1,4,8,16";
    int nth = 2, prompt = 64, steps = 64, reps = 3;
    yan_kv_type kv = YAN_KV_F16;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-t") && v) nth = atoi(argv[++i]);
        else if (!strcmp(a, "-p") && v) prompt = atoi(argv[++i]);
        else if (!strcmp(a, "-n") && v) steps = atoi(argv[++i]);
        else if (!strcmp(a, "-r") && v) reps = atoi(argv[++i]);
        else if (!strcmp(a, "--seqs") && v) seqs = argv[++i];
        else if (!strcmp(a, "--kv-type") && v) kv = !strcmp(argv[++i], "f32") ? YAN_KV_F32 : YAN_KV_F16;
        else if (a[0] != '-' && !path) path = a;
        else {
            fprintf(stderr, "usage: bench_engine MODEL.gguf [-t threads] [-p prompt] [-n steps] [-r reps] "
                            "[--seqs 1,4,8,16] [--kv-type f16|f32]\n");
            return 2;
        }
    }
    if (!path || prompt < 1 || steps < 1 || reps < 1) {
        fprintf(stderr, "usage: bench_engine MODEL.gguf [-t threads] [-p prompt] [-n steps] [-r reps]\n");
        return 2;
    }
    yan_model *m = NULL;
    yan_status s = yan_model_load(path, NULL, &m);
    if (s) return die("load", s);
    speed ctx = {0, 0};
    if (bench_context(m, nth, kv, prompt, steps, reps, &ctx)) return 1;
    printf("model %s, %d threads, prompt %d, %d decode steps, best of %d\n", path, nth, prompt, steps, reps);
    printf("| %-22s | %10s | %8s | %10s | %8s |\n", "decode", "tok/s", "vs ctx", "tok/CPU-s", "vs ctx");
    printf("|------------------------|------------|----------|------------|----------|\n");
    printf("| %-22s | %10.1f | %7.2fx | %10.1f | %7.2fx |\n", "context, 1 sequence", ctx.wall, 1.0, ctx.cpu, 1.0);
    for (const char *q = seqs; *q;) {
        int n = atoi(q);
        if (n >= 1) {
            speed sp = {0, 0};
            if (bench_engine(m, nth, kv, n, prompt, steps, reps, &sp)) return 1;
            char name[64];
            snprintf(name, sizeof name, "engine, %d sequence%s", n, n > 1 ? "s" : "");
            printf("| %-22s | %10.1f | %7.2fx | %10.1f | %7.2fx |\n", name, sp.wall, sp.wall / ctx.wall, sp.cpu,
                   sp.cpu / ctx.cpu);
            fflush(stdout);
        }
        while (*q && *q != ',') q++;
        if (*q == ',') q++;
    }
    yan_model_free(m);
    return 0;
}
