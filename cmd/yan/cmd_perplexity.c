/* cmd_perplexity.c — `yan perplexity MODEL FILE`: perplexity of a text, with
 * the same rule as llama.cpp's perplexity tool so the numbers compare:
 *  - the whole file is tokenized once, with BOS when the model adds one;
 *  - it is cut into floor(n_tokens / ctx) non-overlapping windows of ctx
 *    tokens (at least two windows are required); the tail is not scored;
 *  - when the model adds BOS, the first token of every window is replaced by
 *    BOS for the evaluation;
 *  - each window is evaluated from an empty cache with logits at every
 *    position, and only its second half is scored: the logits at positions
 *    first = ctx/2 .. ctx-2 predict the tokens at first+1 .. ctx-1;
 *  - after each window the running estimate exp(mean NLL) is printed as
 *    "[i]ppl,", and at the end "Final estimate: PPL = X +/- Y", where Y is
 *    PPL times the standard error of the mean NLL. */
#include "cmd.h"

#include <math.h>
#include <time.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: yan perplexity MODEL.gguf FILE [--ctx N] [--threads N] [--chunks N]\n\n"
            "Measures how well the model predicts FILE, as llama.cpp's perplexity tool does:\n"
            "non-overlapping windows of N tokens, each scored on its second half. FILE\n"
            "must hold at least 2 x N tokens. Lower is better.\n\n"
            "  --ctx N           window length in tokens (default 512)\n"
            "  --threads N, -t N threads (default: all cores)\n"
            "  --chunks N        score at most N windows (default: all)\n"
            "  --kv-type f16|f32 KV cache precision (default f16)\n"
            "  --no-mmap, --mmap copy the weights into huge-page memory, or map the file\n"
            "                    (default: copy when it takes at most half of the free memory)\n\n"
            "example: yan perplexity tinyllama-q8_0.gguf wiki.test.raw --ctx 512\n");
}

/* -log p(target) under softmax(logits), in double as llama.cpp does. */
static double nll_of(const float *logits, int32_t n_vocab, yan_token target) {
    float mx = logits[0];
    for (int32_t i = 1; i < n_vocab; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (int32_t i = 0; i < n_vocab; i++) sum += exp((double)logits[i] - mx);
    return -((double)logits[target] - mx - log(sum));
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int yan_cmd_perplexity(int argc, char **argv) {
    const char *path = NULL, *file = NULL;
    int max_chunks = 0;
    yan_context_params cp = yan_context_params_default();
    yan_model_params mp = yan_model_params_default();
    cp.n_ctx = 512;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cmd_is_help(a)) { usage(stdout); return 0; }
        else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) { cp.n_ctx = cmd_int(a, v); i++; }
        else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) { cp.n_threads = cmd_int(a, v); i++; }
        else if (!strcmp(a, "--chunks")) { max_chunks = cmd_int(a, v); i++; }
        else if (!strcmp(a, "--kv-type")) { cmd_kv_type(a, v, &cp.kv_type); i++; }
        else if (!strcmp(a, "--no-mmap")) mp.load = YAN_LOAD_COPY;
        else if (!strcmp(a, "--mmap")) mp.load = YAN_LOAD_MMAP;
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "yan perplexity: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (!path) path = a;
        else if (!file) file = a;
        else {
            fprintf(stderr, "yan perplexity: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!path || !file) {
        fprintf(stderr, "yan perplexity: MODEL and FILE are required\n");
        usage(stderr);
        return 2;
    }
    const int n_ctx = cp.n_ctx;
    if (n_ctx < 4) {
        fprintf(stderr, "yan perplexity: --ctx must be at least 4\n");
        return 2;
    }
    int rc = 1;
    char *text = NULL;
    yan_token *ids = NULL;
    yan_model *m = NULL;
    yan_context *ctx = NULL;
    size_t len, n = 0;
    if (!(text = cmd_read_all(file, &len))) goto out;
    yan_status s = yan_model_load(path, &mp, &m);
    if (s) { cmd_fail("cannot load model", s); goto out; }
    const yan_tokenizer *tok = yan_model_tokenizer(m);
    double t0 = now_s();
    if ((s = yan_tokenize_alloc(tok, text, len, YAN_TOKENIZE_ADD_BOS, &ids, &n))) { cmd_fail("tokenize", s); goto out; }
    fprintf(stderr, "perplexity: tokenized %zu bytes into %zu tokens in %.2f s\n", len, n, now_s() - t0);
    if (n < 2 * (size_t)n_ctx) {
        fprintf(stderr, "yan perplexity: %s has %zu tokens; at least %d (2 x --ctx %d) are needed: use a longer "
                        "text or a smaller --ctx\n", file, n, 2 * n_ctx, n_ctx);
        goto out;
    }
    /* does the tokenizer add BOS? then every window starts with it */
    yan_token bos = yan_tokenizer_special(tok, YAN_SPECIAL_BOS);
    yan_token probe[4];
    bool add_bos = bos >= 0 && yan_tokenize(tok, "a", 1, probe, 4, YAN_TOKENIZE_ADD_BOS) > 0 && probe[0] == bos;

    int n_chunk = (int)(n / (size_t)n_ctx);
    if (max_chunks > 0 && max_chunks < n_chunk) n_chunk = max_chunks;
    if ((s = yan_context_new(m, &cp, &ctx))) { cmd_fail("cannot create context", s); goto out; }
    const int32_t n_vocab = yan_model_n_vocab(m);
    const int first = n_ctx / 2;
    fprintf(stderr, "perplexity: %d chunks of %d tokens, scoring positions %d..%d of each\n", n_chunk, n_ctx, first,
            n_ctx - 2);
    double nll = 0, nll2 = 0;
    long count = 0;
    t0 = now_s();
    for (int c = 0; c < n_chunk; c++) {
        yan_token *w = ids + (size_t)c * (size_t)n_ctx;
        yan_token saved = w[0];
        if (add_bos) w[0] = bos;
        s = yan_context_truncate(ctx, 0);
        if (!s) s = yan_eval(ctx, w, (size_t)n_ctx, true);
        w[0] = saved;
        if (s) { cmd_fail("eval", s); goto out; }
        for (int p = first; p < n_ctx - 1; p++) {
            const float *lg = yan_logits(ctx, p);
            if (!lg) { cmd_fail("logits", YAN_ERR_INVALID_ARG); goto out; }
            double v = nll_of(lg, n_vocab, w[p + 1]);
            nll += v;
            nll2 += v * v;
            count++;
        }
        if (c == 0) fprintf(stderr, "perplexity: %.2f s per chunk\n", now_s() - t0);
        printf("[%d]%.4f,", c + 1, exp(nll / (double)count));
        fflush(stdout);
    }
    printf("\n");
    double mean = nll / (double)count;
    double var = nll2 / (double)count - mean * mean;
    double ppl = exp(mean);
    if (var > 0 && count > 1) printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl, sqrt(var / (double)(count - 1)) * ppl);
    else printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl, 0.0);
    rc = fflush(stdout) ? 1 : 0;
out:
    yan_context_free(ctx);
    yan_free_tokens(ids);
    yan_model_free(m);
    free(text);
    return rc;
}
