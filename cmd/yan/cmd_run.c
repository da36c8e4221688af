/* cmd_run.c — `yan run MODEL -p PROMPT`: one completion, streamed to stdout
 * as it is generated (yan_generate with an on_text callback). With --chat the
 * prompt is wrapped in the model's chat template as one user turn.
 * A prompt that does not fit the context together with -n tokens is an error,
 * never truncated. Also home of the option parsing shared by the inference
 * commands (sampler options, --kv-type, the default context). */
#include "cmd.h"

#include <errno.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------- shared option parsing */

double cmd_float(const char *opt, const char *val) {
    char *end;
    if (!val) {
        fprintf(stderr, "yan: %s needs a value\n", opt);
        exit(2);
    }
    errno = 0;
    double v = strtod(val, &end);
    if (errno || *end || end == val || !isfinite(v) || v < 0) {
        fprintf(stderr, "yan: %s: '%s' is not a non-negative number\n", opt, val);
        exit(2);
    }
    return v;
}

static uint64_t parse_u64(const char *opt, const char *val) {
    char *end;
    if (!val) {
        fprintf(stderr, "yan: %s needs a value\n", opt);
        exit(2);
    }
    errno = 0;
    unsigned long long v = strtoull(val, &end, 10);
    if (errno || *end || end == val || val[0] == '-') {
        fprintf(stderr, "yan: %s: '%s' is not a non-negative integer\n", opt, val);
        exit(2);
    }
    return (uint64_t)v;
}

int cmd_sampler_option(int argc, char **argv, int *i, yan_sampler_params *sp, bool *seeded) {
    const char *a = argv[*i];
    const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    if (!strcmp(a, "--temp")) sp->temperature = (float)cmd_float(a, v);
    else if (!strcmp(a, "--top-k")) sp->top_k = cmd_int(a, v);
    else if (!strcmp(a, "--top-p")) sp->top_p = (float)cmd_float(a, v);
    else if (!strcmp(a, "--min-p")) sp->min_p = (float)cmd_float(a, v);
    else if (!strcmp(a, "--repeat-penalty")) sp->repeat_penalty = (float)cmd_float(a, v);
    else if (!strcmp(a, "--repeat-last-n")) sp->repeat_last_n = cmd_int(a, v);
    else if (!strcmp(a, "--presence-penalty")) sp->presence_penalty = (float)cmd_float(a, v);
    else if (!strcmp(a, "--frequency-penalty")) sp->frequency_penalty = (float)cmd_float(a, v);
    else if (!strcmp(a, "--seed")) {
        sp->seed = parse_u64(a, v);
        if (seeded) *seeded = true;
    } else return 0;
    (*i)++;
    return 1;
}

const char *cmd_sampler_help(void) {
    return "  --temp T              temperature; 0 = greedy (default 0.8)\n"
           "  --top-k K             keep the K most likely tokens; 0 = off (default 40)\n"
           "  --top-p P             nucleus sampling; 1 = off (default 0.95)\n"
           "  --min-p P             drop tokens below P x the top probability; 0 = off (default 0.05)\n"
           "  --repeat-penalty X    penalise the last --repeat-last-n tokens; 1 = off (default 1)\n"
           "  --repeat-last-n N     history the penalties see (default 64)\n"
           "  --presence-penalty X, --frequency-penalty X   OpenAI-style penalties (default 0)\n"
           "  --seed S              random seed: same seed, same output (default: from the clock)\n";
}

int cmd_kv_type(const char *opt, const char *val, yan_kv_type *out) {
    if (val && !strcmp(val, "f16")) *out = YAN_KV_F16;
    else if (val && !strcmp(val, "f32")) *out = YAN_KV_F32;
    else {
        fprintf(stderr, "yan: %s must be f16 or f32, not '%s'\n", opt, val ? val : "");
        exit(2);
    }
    return 1;
}

int32_t cmd_default_ctx(const yan_model *m, int32_t requested) {
    if (requested > 0) return requested;
    int32_t t = yan_model_n_ctx_train(m);
    return t > 0 && t < CMD_DEFAULT_CTX ? t : CMD_DEFAULT_CTX;
}

uint64_t cmd_clock_seed(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_sec * 1000000007ull) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
}

/* ------------------------------------------------------------------ run */

static void usage(FILE *f) {
    fprintf(f,
            "usage: yan run [MODEL.gguf] -p PROMPT [options]\n\n"
            "Generates a continuation of PROMPT and streams it to stdout. Without MODEL,\n"
            "the built-in model (models/" CMD_DEFAULT_MODEL_FILE ", or $YAN_MODEL) is used.\n\n"
            "  -p, --prompt TEXT     the prompt\n"
            "  -f, --file FILE       read the prompt from FILE ('-' = stdin)\n"
            "  -n, --n-predict N     most tokens to generate (default 128; 0 = until the\n"
            "                        context is full)\n"
            "  --ctx N               context length in tokens (default: the model's, at most %d)\n"
            "  --threads N, -t N     threads (default: all cores)\n"
            "  --stop STR            stop when STR is generated (not printed); repeatable\n"
            "  --chat                wrap the prompt in the model's chat template as a user turn\n"
            "  --system TEXT         with --chat: a system message before it\n"
            "  --chat-template NAME  with --chat: chatml, llama2, llama3, zephyr, mistral,\n"
            "                        gemma or phi3 instead of the model's own template\n"
            "  --no-bos              do not add the BOS token the model asks for\n"
            "  --ignore-eos          keep generating past end-of-generation tokens\n"
            "  --kv-type f16|f32     KV cache precision (default f16)\n"
            "  --no-mmap, --mmap     copy the weights into huge-page memory (faster generation),\n"
            "                        or map the file (shared with other processes); default:\n"
            "                        copy when the file takes at most half of the free memory\n"
            "  --lora FILE           apply a LoRA adapter (GGUF; up to 8, in order)\n"
            "  --lora-scale S        scale of the adapters (default 1)\n"
            "  --verbose             timings and token counts on stderr\n"
            "%s\n"
            "A prompt that does not fit the context together with -n tokens is an error:\n"
            "use a larger --ctx or a smaller -n.\n\n"
            "example: yan run tinyllama-q4_K_M.gguf -p 'The capital of France is' -n 32 --temp 0\n",
            CMD_DEFAULT_CTX, cmd_sampler_help());
}

static bool on_text(const char *text, size_t len, void *ud) {
    bool *ended_nl = ud;
    if (len) {
        fwrite(text, 1, len, stdout);
        fflush(stdout);
        *ended_nl = text[len - 1] == '\n';
    }
    return !ferror(stdout);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Format one user turn (with an optional system message) with the chat
 * template; returns a malloc'ed string or NULL after printing the error. */
static char *format_chat(const yan_model *m, const char *tmpl, const char *system, const char *user) {
    yan_chat_message msgs[2];
    size_t n = 0;
    if (system) msgs[n++] = (yan_chat_message){"system", system};
    msgs[n++] = (yan_chat_message){"user", user};
    int64_t need = yan_chat_format(m, tmpl, msgs, n, true, NULL, 0);
    if (need == INT64_MIN) {
        cmd_fail("chat template", YAN_ERR_INVALID_ARG);
        return NULL;
    }
    size_t cap = need < 0 ? (size_t)-need : (size_t)need + 1;
    char *buf = malloc(cap);
    if (!buf || yan_chat_format(m, tmpl, msgs, n, true, buf, cap) < 0) {
        free(buf);
        cmd_fail("chat template", YAN_ERR_NOMEM);
        return NULL;
    }
    return buf;
}

int yan_cmd_run(int argc, char **argv) {
    const char *path = NULL, *prompt = NULL, *prompt_file = NULL, *system = NULL, *tmpl = NULL;
    int n_predict = 128;
    bool chat = false, no_bos = false, verbose = false, seeded = false, ignore_eos = false;
    yan_context_params cp = yan_context_params_default();
    yan_model_params mp = yan_model_params_default();
    yan_sampler_params sp = yan_sampler_params_default();
    const char *loras[8];
    int n_lora = 0;
    float lora_scale = 1.0f;
    const char **stops = calloc((size_t)argc + 1, sizeof *stops);
    int n_stop = 0;
    if (!stops) return cmd_fail("run", YAN_ERR_NOMEM);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cmd_is_help(a)) { usage(stdout); free(stops); return 0; }
        else if (cmd_sampler_option(argc, argv, &i, &sp, &seeded)) continue;
        else if ((!strcmp(a, "-p") || !strcmp(a, "--prompt")) && v) { prompt = v; i++; }
        else if ((!strcmp(a, "-f") || !strcmp(a, "--file")) && v) { prompt_file = v; i++; }
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) { n_predict = cmd_int(a, v); i++; }
        else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) { cp.n_ctx = cmd_int(a, v); i++; }
        else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) { cp.n_threads = cmd_int(a, v); i++; }
        else if (!strcmp(a, "--stop") && v) { stops[n_stop++] = v; i++; }
        else if (!strcmp(a, "--system") && v) { system = v; i++; }
        else if (!strcmp(a, "--chat-template") && v) { tmpl = v; i++; }
        else if (!strcmp(a, "--kv-type")) { cmd_kv_type(a, v, &cp.kv_type); i++; }
        else if (!strcmp(a, "--no-mmap")) mp.load = YAN_LOAD_COPY;
        else if (!strcmp(a, "--mmap")) mp.load = YAN_LOAD_MMAP;
        else if (!strcmp(a, "--lora") && v) { if (n_lora < 8) loras[n_lora++] = v; i++; }
        else if (!strcmp(a, "--lora-scale")) { lora_scale = (float)cmd_float(a, v); i++; }
        else if (!strcmp(a, "--chat")) chat = true;
        else if (!strcmp(a, "--no-bos")) no_bos = true;
        else if (!strcmp(a, "--ignore-eos")) ignore_eos = true;
        else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) verbose = true;
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "yan run: unknown option '%s' (or it needs a value)\n", a);
            usage(stderr);
            free(stops);
            return 2;
        } else if (!path) path = a;
        else {
            fprintf(stderr, "yan run: unexpected argument '%s' (quote the prompt: -p 'text')\n", a);
            free(stops);
            return 2;
        }
    }
    if (!prompt && !prompt_file) {
        fprintf(stderr, "yan run: -p PROMPT (or -f FILE) is required\n");
        usage(stderr);
        free(stops);
        return 2;
    }
    if (!path && !(path = cmd_default_model())) {
        usage(stderr);
        free(stops);
        return 2;
    }
    if ((system || tmpl) && !chat) fprintf(stderr, "yan run: note: --system and --chat-template apply only with --chat\n");

    int rc = 1;
    char *file_text = NULL, *formatted = NULL;
    yan_token *ids = NULL;
    yan_model *m = NULL;
    yan_context *ctx = NULL;
    yan_sampler *smp = NULL;
    if (prompt_file) {
        size_t len;
        if (!(file_text = cmd_read_all(prompt_file, &len))) goto out;
        prompt = file_text;
    }
    double t0 = now_s();
    yan_status s = yan_model_load(path, &mp, &m);
    if (s) { cmd_fail("cannot load model", s); goto out; }
    for (int k = 0; k < n_lora; k++)
        if ((s = yan_model_apply_lora(m, loras[k], lora_scale))) { cmd_fail("cannot apply the LoRA adapter", s); goto out; }
    double t_load = now_s() - t0;

    const char *text = prompt;
    uint32_t flags = no_bos ? 0 : YAN_TOKENIZE_ADD_BOS;
    if (chat) {
        if (!tmpl) {
            bool rec = false;
            const char *fam = yan_chat_template_family(m, &rec);
            if (!rec)
                fprintf(stderr, "yan run: %s; using the %s template\n",
                        yan_model_chat_template(m) ? "the model's chat template is not recognised"
                                                   : "the model has no chat template", fam);
        }
        if (!(formatted = format_chat(m, tmpl, system, prompt))) goto out;
        text = formatted;
        flags |= YAN_TOKENIZE_SPECIAL;
    }
    const yan_tokenizer *tok = yan_model_tokenizer(m);
    size_t n_ids;
    if ((s = yan_tokenize_alloc(tok, text, strlen(text), flags, &ids, &n_ids))) { cmd_fail("tokenize", s); goto out; }
    /* a template that writes BOS itself, plus the BOS the tokenizer adds */
    yan_token bos = yan_tokenizer_special(tok, YAN_SPECIAL_BOS);
    if (n_ids >= 2 && bos >= 0 && ids[0] == bos && ids[1] == bos) memmove(ids, ids + 1, --n_ids * sizeof *ids);
    if (n_ids == 0) {
        fprintf(stderr, "yan run: the prompt is empty (and the model adds no BOS token)\n");
        goto out;
    }

    cp.n_ctx = cmd_default_ctx(m, cp.n_ctx);
    if (n_predict > 0 && (uint64_t)n_ids + (uint64_t)n_predict > (uint64_t)cp.n_ctx) {
        fprintf(stderr,
                "yan run: the prompt (%zu tokens) plus -n %d tokens does not fit the context of %d tokens; "
                "use a larger --ctx (the model was trained with %d) or a smaller -n\n",
                n_ids, n_predict, cp.n_ctx, yan_model_n_ctx_train(m));
        goto out;
    }
    if (n_ids >= (size_t)cp.n_ctx) {
        fprintf(stderr, "yan run: the prompt (%zu tokens) does not fit the context of %d tokens; use a larger --ctx\n",
                n_ids, cp.n_ctx);
        goto out;
    }
    if ((s = yan_context_new(m, &cp, &ctx))) { cmd_fail("cannot create context", s); goto out; }
    if (!seeded) sp.seed = cmd_clock_seed();
    if ((s = yan_sampler_new(&sp, yan_model_n_vocab(m), &smp))) { cmd_fail("sampler", s); goto out; }

    bool ended_nl = true;
    yan_generate_params gp = yan_generate_params_default();
    gp.max_tokens = n_predict;
    gp.stop = stops;
    gp.n_stop = n_stop;
    gp.stop_at_eos = !ignore_eos;
    gp.on_text = on_text;
    gp.ud = &ended_nl;
    yan_generate_result res = {0};
    s = yan_generate(ctx, smp, ids, n_ids, &gp, &res);
    if (!ended_nl) fputc('\n', stdout);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "yan run: cannot write the output\n");
        goto out;
    }
    if (s) {
        if (s == YAN_ERR_CONTEXT_FULL)
            fprintf(stderr, "yan run: the prompt plus -n tokens does not fit the context; use a larger --ctx or a smaller -n\n");
        cmd_fail("generate", s);
        goto out;
    }
    if (verbose) {
        static const char *why[] = {"stop", "length", "aborted"};
        fprintf(stderr, "load: %.3f s\n", t_load);
        fprintf(stderr, "prompt: %d tokens in %.3f s (%.2f tok/s)\n", res.n_prompt, res.prompt_seconds,
                res.prompt_seconds > 0 ? res.n_prompt / res.prompt_seconds : 0.0);
        fprintf(stderr, "generation: %d tokens in %.3f s (%.2f tok/s)\n", res.n_generated, res.generate_seconds,
                res.generate_seconds > 0 ? res.n_generated / res.generate_seconds : 0.0);
        fprintf(stderr, "finish: %s, seed %llu, context %d tokens, %d threads\n",
                (unsigned)res.finish < 3 ? why[res.finish] : "?", (unsigned long long)sp.seed, cp.n_ctx,
                cp.n_threads ? cp.n_threads : yan_cpu_count());
    }
    rc = 0;
out:
    yan_sampler_free(smp);
    yan_context_free(ctx);
    yan_free_tokens(ids);
    yan_model_free(m);
    free(formatted);
    free(file_text);
    free(stops);
    return rc;
}

const char *cmd_default_model(void) {
    static char buf[4096];
    const char *env = getenv("YAN_MODEL");
    if (env && *env) return env;
    char exe[2048];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0; /* the binary's folder: <tree>/build or <prefix>/bin */
            snprintf(buf, sizeof buf, "%s/../models/" CMD_DEFAULT_MODEL_FILE, exe);
            if (access(buf, R_OK) == 0) return buf;
            snprintf(buf, sizeof buf, "%s/../share/yan/" CMD_DEFAULT_MODEL_FILE, exe);
            if (access(buf, R_OK) == 0) return buf;
        }
    }
    fprintf(stderr, "yan: no MODEL given and the built-in model (" CMD_DEFAULT_MODEL_FILE ") was not found "
                    "next to the yan binary; pass a GGUF file or set YAN_MODEL\n");
    return NULL;
}
