/* cmd_bench.c — `yan bench MODEL`: prompt-processing and generation speed,
 * measured as llama-bench measures them and printed as its markdown table:
 *  - ppP: P random tokens evaluated in one yan_eval from an empty cache;
 *  - tgN: N random tokens evaluated one at a time (yan_eval of one token,
 *    positions 0..N-1) from an empty cache.
 * One warm-up run of each test, then -r timed repetitions; the table shows
 * the mean and the standard deviation of the per-repetition tokens/s. */
#include "cmd.h"

#include <math.h>
#include <time.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: yan bench MODEL.gguf [-p N] [-n N] [-t N] [-r N] [--kv-type f16|f32] [--no-mmap|--mmap]\n\n"
            "Measures prompt processing (ppN: N tokens in one batch) and generation\n"
            "(tgN: N tokens one at a time) in tokens per second, like llama-bench, and\n"
            "prints a markdown table with the mean +/- standard deviation over the runs.\n\n"
            "  -p, --n-prompt N  prompt tokens (default 512; 0 = skip the test)\n"
            "  -n, --n-gen N     generated tokens (default 128; 0 = skip the test)\n"
            "  -t, --threads N   threads (default: all cores)\n"
            "  -r, --repetitions N  timed runs of each test (default 3)\n"
            "  --kv-type f16|f32 KV cache precision (default f16)\n"
            "  --no-mmap, --mmap copy the weights into huge-page memory, or map the file\n"
            "                    (default: copy when it takes at most half of the free memory)\n\n"
            "example: yan bench tinyllama-q4_0.gguf -p 512 -n 128 -t 2\n");
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One timed run; returns seconds, or a negative value after printing the error. */
static double run_once(yan_context *ctx, const yan_token *toks, int n, bool one_by_one) {
    yan_status s = yan_context_truncate(ctx, 0);
    if (s) return cmd_fail("truncate", s), -1;
    double t0 = now_s();
    if (one_by_one) {
        for (int i = 0; i < n && !s; i++) s = yan_eval(ctx, toks + i, 1, false);
    } else {
        s = yan_eval(ctx, toks, (size_t)n, false);
    }
    double dt = now_s() - t0;
    if (s) return cmd_fail("eval", s), -1;
    return dt;
}

/* "1.10 B", "124.44 M" (sep " "), or "1.10B" (sep "") */
static void fmt_count(char *buf, size_t cap, uint64_t n, const char *sep) {
    if (n >= 1000000000ull) snprintf(buf, cap, "%.2f%sB", (double)n / 1e9, sep);
    else if (n >= 1000000ull) snprintf(buf, cap, "%.2f%sM", (double)n / 1e6, sep);
    else snprintf(buf, cap, "%.2f%sK", (double)n / 1e3, sep);
}

static void fmt_bytes(char *buf, size_t cap, uint64_t n) {
    if (n >= (1ull << 30)) snprintf(buf, cap, "%.2f GiB", (double)n / (double)(1ull << 30));
    else snprintf(buf, cap, "%.2f MiB", (double)n / (double)(1ull << 20));
}

int yan_cmd_bench(int argc, char **argv) {
    const char *path = NULL;
    int n_prompt = 512, n_gen = 128, reps = 3;
    yan_context_params cp = yan_context_params_default();
    yan_model_params mp = yan_model_params_default();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cmd_is_help(a)) { usage(stdout); return 0; }
        else if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) { n_prompt = cmd_int(a, v); i++; }
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) { n_gen = cmd_int(a, v); i++; }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { cp.n_threads = cmd_int(a, v); i++; }
        else if (!strcmp(a, "-r") || !strcmp(a, "--repetitions")) { reps = cmd_int(a, v); i++; }
        else if (!strcmp(a, "--kv-type")) { cmd_kv_type(a, v, &cp.kv_type); i++; }
        else if (!strcmp(a, "--no-mmap")) mp.load = YAN_LOAD_COPY;
        else if (!strcmp(a, "--mmap")) mp.load = YAN_LOAD_MMAP;
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "yan bench: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (!path) path = a;
        else {
            fprintf(stderr, "yan bench: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "yan bench: MODEL is required\n");
        usage(stderr);
        return 2;
    }
    if (reps < 1) reps = 1;
    int rc = 1;
    yan_model *m = NULL;
    yan_context *ctx = NULL;
    yan_token *toks = NULL;
    yan_status s = yan_model_load(path, &mp, &m);
    if (s) { cmd_fail("cannot load model", s); goto out; }
    int n_max = n_prompt > n_gen ? n_prompt : n_gen;
    cp.n_ctx = n_max > 0 ? n_max : 1;
    if ((s = yan_context_new(m, &cp, &ctx))) { cmd_fail("cannot create context", s); goto out; }
    if (!(toks = malloc(((size_t)n_max + 1) * sizeof *toks))) { cmd_fail("bench", YAN_ERR_NOMEM); goto out; }
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    int32_t n_vocab = yan_model_n_vocab(m);
    for (int i = 0; i < n_max; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        toks[i] = (yan_token)(rng % (uint64_t)n_vocab);
    }

    char name[128], size[32], params[32], short_params[32];
    uint64_t np = yan_model_n_params(m), wb = yan_model_weight_bytes(m);
    fmt_count(params, sizeof params, np, " ");
    fmt_count(short_params, sizeof short_params, np, "");
    fmt_bytes(size, sizeof size, wb);
    /* llama-bench names the size class and the file type ("llama 1B Q4_0");
     * yan names the parameter count and the bits per weight */
    snprintf(name, sizeof name, "%s %s %.2f bpw", yan_model_arch(m), short_params,
             np ? (double)wb * 8.0 / (double)np : 0.0);
    int threads = cp.n_threads > 0 ? cp.n_threads : yan_cpu_count();
    printf("| %-30s | %10s | %10s | %-10s | %7s | %13s | %20s |\n", "model", "size", "params", "backend", "threads",
           "test", "t/s");
    printf("| ------------------------------ | ---------: | ---------: | ---------- | ------: | ------------: | "
           "-------------------: |\n");
    fflush(stdout);
    for (int test = 0; test < 2; test++) {
        int n = test == 0 ? n_prompt : n_gen;
        if (n == 0) continue;
        bool tg = test == 1;
        if (run_once(ctx, toks, tg ? 1 : n, tg) < 0) goto out; /* warm-up */
        double sum = 0, sum2 = 0;
        for (int r = 0; r < reps; r++) {
            double dt = run_once(ctx, toks, n, tg);
            if (dt < 0) goto out;
            double ts = dt > 0 ? n / dt : 0;
            sum += ts;
            sum2 += ts * ts;
        }
        double mean = sum / reps;
        double sd = reps > 1 ? sqrt(fmax(0.0, (sum2 - reps * mean * mean) / (reps - 1))) : 0.0;
        char label[32], tps[48];
        snprintf(label, sizeof label, "%s%d", tg ? "tg" : "pp", n);
        snprintf(tps, sizeof tps, "%.2f ± %.2f", mean, sd);
        /* "±" is two bytes: pad by one more so the column lines up */
        printf("| %-30s | %10s | %10s | %-10s | %7d | %13s | %21s |\n", name, size, params, "CPU", threads, label, tps);
        fflush(stdout);
    }
    printf("\nyan %s, cpu: %s\n", yan_version(), yan_cpu_features());
    rc = fflush(stdout) ? 1 : 0;
out:
    free(toks);
    yan_context_free(ctx);
    yan_model_free(m);
    return rc;
}
