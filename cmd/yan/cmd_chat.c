/* cmd_chat.c — `yan chat MODEL`: an interactive conversation on stdin/stdout.
 *
 * Each user line is added to the history, the whole conversation is
 * formatted with the chat template and tokenized, and only the tokens after
 * the longest prefix the KV cache already holds are evaluated: the system
 * prompt and earlier turns are computed once. The answer is sampled here
 * token by token (so the exact ids in the cache are known) and streamed as
 * complete UTF-8. It ends at an end-of-generation token (EOS, EOT, or the
 * template's end-of-turn marker such as <|im_end|> or <|eot_id|>), at -n
 * tokens, or when the context is full.
 *
 * When the conversation no longer fits the context, the history is cleared
 * (the system message is kept), a message says so on stderr, and the chat
 * goes on with the latest user message alone. Commands: /reset clears the
 * history, /exit (or end of input) quits. The "> " prompt is shown only when
 * stdin is a terminal, so the command also works in a pipe. */
#include "cmd.h"

#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: yan chat [MODEL.gguf] [options]\n\n"
            "Talks with a model (without MODEL: the built-in one, models/" CMD_DEFAULT_MODEL_FILE ").\n"
            "Type a message and press enter; the answer streams back.\n"
            "The history is kept (earlier turns are not recomputed). '/reset' starts over,\n"
            "'/exit' or end of input quits. Works with input from a pipe (one message a line).\n"
            "When the history no longer fits the context, it is cleared (the system\n"
            "message is kept) with a message on stderr, and the chat goes on.\n\n"
            "  --system TEXT         system message\n"
            "  --chat-template NAME  chatml, llama2, llama3, zephyr, mistral, gemma or phi3\n"
            "                        (default: recognised from the model's template)\n"
            "  -n, --n-predict N     most tokens per answer (default 0 = until the context is full)\n"
            "  --ctx N               context length in tokens (default: the model's, at most %d)\n"
            "  --threads N, -t N     threads (default: all cores)\n"
            "  --kv-type f16|f32     KV cache precision (default f16)\n"
            "  --no-mmap, --mmap     copy the weights into huge-page memory (faster generation),\n"
            "                        or map the file (shared with other processes); default:\n"
            "                        copy when the file takes at most half of the free memory\n"
            "  --lora FILE           apply a LoRA adapter (GGUF; up to 8, in order)\n"
            "  --lora-scale S        scale of the adapters (default 1)\n"
            "  --verbose             after each answer, on stderr: prompt tokens evaluated and\n"
            "                        reused from the cache, answer tokens and speed\n"
            "%s\n"
            "example: yan chat qwen2.5-0.5b-instruct-q8_0.gguf --system 'You are terse.' --temp 0.7\n",
            CMD_DEFAULT_CTX, cmd_sampler_help());
}

/* ------------------------------------------------------------ conversation */

typedef struct {
    yan_chat_message *msgs;
    size_t n, cap;
} history;

static bool hist_push(history *h, const char *role, const char *content) {
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 8;
        yan_chat_message *nm = realloc(h->msgs, nc * sizeof *nm);
        if (!nm) return false;
        h->msgs = nm;
        h->cap = nc;
    }
    char *c = strdup(content);
    if (!c) return false;
    h->msgs[h->n++] = (yan_chat_message){role, c};
    return true;
}

/* Drop everything after the first keep messages. */
static void hist_truncate(history *h, size_t keep) {
    while (h->n > keep) free((char *)h->msgs[--h->n].content);
}

typedef struct {
    yan_token *v;
    size_t n, cap;
} tokvec;

static bool tv_push(tokvec *t, yan_token x) {
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 256;
        yan_token *nv = realloc(t->v, nc * sizeof *nv);
        if (!nv) return false;
        t->v = nv;
        t->cap = nc;
    }
    t->v[t->n++] = x;
    return true;
}

typedef struct {
    yan_model *m;
    const yan_tokenizer *tok;
    yan_context *ctx;
    yan_sampler *smp;
    const char *tmpl;     /* --chat-template or NULL */
    int n_predict;
    int32_t n_ctx;
    history h;
    size_t n_keep;        /* messages /reset keeps (the system message) */
    tokvec cached;        /* exactly the tokens in the KV cache */
    yan_token eog[16];    /* end-of-generation ids */
    int n_eog;
    bool verbose;         /* per-turn token counts and speed on stderr */
} chat;

static bool is_eog(const chat *c, yan_token t) {
    for (int i = 0; i < c->n_eog; i++)
        if (c->eog[i] == t) return true;
    return false;
}

static void add_eog(chat *c, yan_token t) {
    if (t < 0 || is_eog(c, t) || c->n_eog == (int)(sizeof c->eog / sizeof c->eog[0])) return;
    c->eog[c->n_eog++] = t;
}

/* End-of-generation ids: the vocabulary's EOS/EOT and the end-of-turn markers
 * of the template families, where the vocabulary has them as one token. */
static void find_eog(chat *c) {
    add_eog(c, yan_tokenizer_special(c->tok, YAN_SPECIAL_EOS));
    add_eog(c, yan_tokenizer_special(c->tok, YAN_SPECIAL_EOT));
    static const char *const markers[] = {"<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end|>",
                                          "<end_of_turn>", "<|endoftext|>", "</s>"};
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++)
        add_eog(c, yan_tokenizer_find(c->tok, markers[i], strlen(markers[i])));
}

/* Format the conversation and tokenize it; *ids is malloc'ed by the library
 * (yan_free_tokens). Returns 0 or prints the error and returns 1. */
static int encode_history(chat *c, yan_token **ids, size_t *n) {
    int64_t need = yan_chat_format(c->m, c->tmpl, c->h.msgs, c->h.n, true, NULL, 0);
    if (need == INT64_MIN) return cmd_fail("chat template", YAN_ERR_INVALID_ARG);
    size_t cap = need < 0 ? (size_t)-need : (size_t)need + 1;
    char *text = malloc(cap);
    if (!text) return cmd_fail("chat", YAN_ERR_NOMEM);
    int64_t len = yan_chat_format(c->m, c->tmpl, c->h.msgs, c->h.n, true, text, cap);
    if (len < 0) {
        free(text);
        return cmd_fail("chat template", YAN_ERR_NOMEM);
    }
    yan_status s = yan_tokenize_alloc(c->tok, text, (size_t)len, YAN_TOKENIZE_ADD_BOS | YAN_TOKENIZE_SPECIAL, ids, n);
    free(text);
    if (s) return cmd_fail("tokenize", s);
    yan_token bos = yan_tokenizer_special(c->tok, YAN_SPECIAL_BOS);
    if (*n >= 2 && bos >= 0 && (*ids)[0] == bos && (*ids)[1] == bos) memmove(*ids, *ids + 1, --*n * sizeof **ids);
    return 0;
}

static void reset_history(chat *c) {
    hist_truncate(&c->h, c->n_keep);
    c->cached.n = 0;
    yan_context_truncate(c->ctx, 0);
}

/* Room a turn needs after its prompt. */
static size_t reserve(const chat *c) { return c->n_predict > 0 ? (size_t)c->n_predict : 1; }

/* One user turn: returns 0 on success (the answer was printed), 1 on a fatal
 * error. A message too long for the context is reported and dropped. */
static int turn(chat *c, const char *line) {
    if (!hist_push(&c->h, "user", line)) return cmd_fail("chat", YAN_ERR_NOMEM);
    yan_token *ids = NULL;
    size_t n = 0;
    if (encode_history(c, &ids, &n)) return 1;
    if (n + reserve(c) > (size_t)c->n_ctx && c->h.n > c->n_keep + 1) {
        fprintf(stderr,
                "yan chat: the conversation (%zu tokens) no longer fits the context of %d tokens; "
                "history cleared, continuing with your last message (use --ctx for a longer one)\n",
                n, c->n_ctx);
        yan_free_tokens(ids);
        char *keep = strdup(line);
        if (!keep) return cmd_fail("chat", YAN_ERR_NOMEM);
        reset_history(c);
        bool ok = hist_push(&c->h, "user", keep);
        free(keep);
        if (!ok) return cmd_fail("chat", YAN_ERR_NOMEM);
        if (encode_history(c, &ids, &n)) return 1;
    }
    if (n + reserve(c) > (size_t)c->n_ctx) {
        fprintf(stderr, "yan chat: this message (%zu tokens with the template) does not fit the context of %d tokens; "
                        "it was dropped (use a larger --ctx)\n", n, c->n_ctx);
        yan_free_tokens(ids);
        hist_truncate(&c->h, c->h.n - 1);
        return 0;
    }
    /* reuse the longest cached prefix; at least one token is evaluated for logits */
    size_t p = 0;
    while (p < n && p < c->cached.n && ids[p] == c->cached.v[p]) p++;
    if (p == n) p--;
    double t0 = now_s();
    yan_status s = yan_context_truncate(c->ctx, (int32_t)p);
    if (!s) s = yan_eval(c->ctx, ids + p, n - p, false);
    if (s) {
        yan_free_tokens(ids);
        return cmd_fail("eval", s);
    }
    c->cached.n = p;
    for (size_t i = p; i < n; i++)
        if (!tv_push(&c->cached, ids[i])) {
            yan_free_tokens(ids);
            return cmd_fail("chat", YAN_ERR_NOMEM);
        }
    yan_free_tokens(ids);
    double t1 = now_s();

    /* the answer */
    yan_decoder *dec;
    if ((s = yan_decoder_new(c->tok, &dec))) return cmd_fail("decoder", s);
    char *answer = NULL;
    size_t alen = 0, acap = 0;
    char piece[1024];
    int n_gen = 0;
    bool full = false;
    for (;;) {
        const float *logits = yan_logits(c->ctx, -1);
        if (!logits) { s = YAN_ERR_INVALID_ARG; break; }
        yan_token t = yan_sampler_sample(c->smp, logits, NULL, 0);
        if (is_eog(c, t)) break;
        int64_t k = yan_decoder_push(dec, t, piece, sizeof piece);
        if (k > 0) {
            fwrite(piece, 1, (size_t)k, stdout);
            fflush(stdout);
            if (alen + (size_t)k + 1 > acap) {
                size_t nc = (alen + (size_t)k + 1) * 2;
                char *na = realloc(answer, nc);
                if (!na) { s = YAN_ERR_NOMEM; break; }
                answer = na;
                acap = nc;
            }
            memcpy(answer + alen, piece, (size_t)k);
            alen += (size_t)k;
        }
        if (++n_gen == c->n_predict && c->n_predict > 0) break;
        if (yan_context_n_past(c->ctx) + 1 > c->n_ctx) { full = true; break; }
        if ((s = yan_eval(c->ctx, &t, 1, false))) break;
        if (!tv_push(&c->cached, t)) { s = YAN_ERR_NOMEM; break; }
    }
    int64_t k = yan_decoder_flush(dec, piece, sizeof piece);
    if (k > 0) fwrite(piece, 1, (size_t)k, stdout);
    yan_decoder_free(dec);
    fputc('\n', stdout);
    fflush(stdout);
    if (s) {
        free(answer);
        return cmd_fail("generate", s);
    }
    if (c->verbose) {
        double t2 = now_s();
        fprintf(stderr, "[prompt: %zu tokens evaluated, %zu reused from the cache, %.2f s; answer: %d tokens, %.2f tok/s]\n",
                n - p, p, t1 - t0, n_gen, t2 > t1 ? n_gen / (t2 - t1) : 0.0);
    }
    if (full) fprintf(stderr, "yan chat: the context is full (%d tokens); the next message starts a new history\n", c->n_ctx);
    bool ok = hist_push(&c->h, "assistant", answer ? (answer[alen] = 0, answer) : "");
    free(answer);
    if (!ok) return cmd_fail("chat", YAN_ERR_NOMEM);
    if (full) reset_history(c);
    return 0;
}

int yan_cmd_chat(int argc, char **argv) {
    const char *path = NULL, *system = NULL;
    bool seeded = false;
    yan_context_params cp = yan_context_params_default();
    yan_model_params mp = yan_model_params_default();
    yan_sampler_params sp = yan_sampler_params_default();
    const char *loras[8];
    int n_lora = 0;
    float lora_scale = 1.0f;
    chat c = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cmd_is_help(a)) { usage(stdout); return 0; }
        else if (cmd_sampler_option(argc, argv, &i, &sp, &seeded)) continue;
        else if (!strcmp(a, "--system") && v) { system = v; i++; }
        else if (!strcmp(a, "--chat-template") && v) { c.tmpl = v; i++; }
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) { c.n_predict = cmd_int(a, v); i++; }
        else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) { cp.n_ctx = cmd_int(a, v); i++; }
        else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) { cp.n_threads = cmd_int(a, v); i++; }
        else if (!strcmp(a, "--kv-type")) { cmd_kv_type(a, v, &cp.kv_type); i++; }
        else if (!strcmp(a, "--no-mmap")) mp.load = YAN_LOAD_COPY;
        else if (!strcmp(a, "--mmap")) mp.load = YAN_LOAD_MMAP;
        else if (!strcmp(a, "--lora") && v) { if (n_lora < 8) loras[n_lora++] = v; i++; }
        else if (!strcmp(a, "--lora-scale")) { lora_scale = (float)cmd_float(a, v); i++; }
        else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) c.verbose = true;
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "yan chat: unknown option '%s' (or it needs a value)\n", a);
            usage(stderr);
            return 2;
        } else if (!path) path = a;
        else {
            fprintf(stderr, "yan chat: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!path && !(path = cmd_default_model())) {
        usage(stderr);
        return 2;
    }
    int rc = 1;
    char *line = NULL;
    yan_status s = yan_model_load(path, &mp, &c.m);
    if (s) { cmd_fail("cannot load model", s); goto out; }
    for (int k = 0; k < n_lora; k++)
        if ((s = yan_model_apply_lora(c.m, loras[k], lora_scale))) { cmd_fail("cannot apply the LoRA adapter", s); goto out; }
    c.tok = yan_model_tokenizer(c.m);
    if (!c.tmpl) {
        bool rec = false;
        const char *fam = yan_chat_template_family(c.m, &rec);
        if (!rec)
            fprintf(stderr, "yan chat: %s; using the %s template (choose one with --chat-template)\n",
                    yan_model_chat_template(c.m) ? "the model's chat template is not recognised"
                                                 : "the model has no chat template", fam);
    } else {
        yan_chat_message probe = {"user", "x"};
        if (yan_chat_format(c.m, c.tmpl, &probe, 1, true, NULL, 0) == INT64_MIN) {
            cmd_fail("--chat-template", YAN_ERR_INVALID_ARG);
            goto out;
        }
    }
    cp.n_ctx = c.n_ctx = cmd_default_ctx(c.m, cp.n_ctx);
    if ((s = yan_context_new(c.m, &cp, &c.ctx))) { cmd_fail("cannot create context", s); goto out; }
    if (!seeded) sp.seed = cmd_clock_seed();
    if ((s = yan_sampler_new(&sp, yan_model_n_vocab(c.m), &c.smp))) { cmd_fail("sampler", s); goto out; }
    find_eog(&c);
    if (system) {
        if (!hist_push(&c.h, "system", system)) { cmd_fail("chat", YAN_ERR_NOMEM); goto out; }
        c.n_keep = 1;
    }
    bool tty = isatty(0);
    size_t lcap = 0;
    for (;;) {
        if (tty) {
            fputs("> ", stdout);
            fflush(stdout);
        }
        ssize_t r = getline(&line, &lcap, stdin);
        if (r < 0) break;
        while (r > 0 && (line[r - 1] == '\n' || line[r - 1] == '\r')) line[--r] = 0;
        if (r == 0) continue;
        if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) break;
        if (!strcmp(line, "/reset")) {
            reset_history(&c);
            yan_sampler_reset(c.smp, sp.seed);
            fprintf(stderr, "(history cleared)\n");
            continue;
        }
        if (turn(&c, line)) goto out;
    }
    if (tty) fputc('\n', stdout);
    rc = fflush(stdout) ? 1 : 0;
out:
    free(line);
    hist_truncate(&c.h, 0);
    free(c.h.msgs);
    free(c.cached.v);
    yan_sampler_free(c.smp);
    yan_context_free(c.ctx);
    yan_model_free(c.m);
    return rc;
}
