/* cmd_info.c — `yan info MODEL`: what a GGUF model is (architecture, sizes,
 * tensor types, tokenizer, chat template) and the memory it will take at a
 * context length: weights (mapped from the file) + KV cache + scratch. The
 * model is opened with mmap, so no weight is read. */
#include "cmd.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: yan info MODEL.gguf [--ctx N] [--kv-type f16|f32]\n\n"
            "Describes a GGUF model: architecture, parameters, tensor types, tokenizer\n"
            "and chat template, and the memory plan for a context of N tokens.\n\n"
            "  --ctx N         context length for the memory plan (default: the model's\n"
            "                  training context)\n"
            "  --kv-type T     KV cache type for the plan: f16 (default) or f32\n\n"
            "example: yan info tinyllama-q4_K_M.gguf --ctx 4096\n");
}

static void mib(const char *label, uint64_t bytes) {
    printf("  %-26s %10.2f MiB\n", label, (double)bytes / 1048576.0);
}

int yan_cmd_info(int argc, char **argv) {
    const char *path = NULL;
    yan_context_params cp = yan_context_params_default();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cmd_is_help(a)) { usage(stdout); return 0; }
        else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) cp.n_ctx = cmd_int(a, i + 1 < argc ? argv[++i] : NULL);
        else if (!strcmp(a, "--kv-type") && i + 1 < argc) {
            const char *v = argv[++i];
            if (!strcmp(v, "f16")) cp.kv_type = YAN_KV_F16;
            else if (!strcmp(v, "f32")) cp.kv_type = YAN_KV_F32;
            else {
                fprintf(stderr, "yan info: --kv-type must be f16 or f32, not '%s'\n", v);
                return 2;
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "yan info: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (!path) path = a;
        else {
            fprintf(stderr, "yan info: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "yan info: MODEL is required\n");
        usage(stderr);
        return 2;
    }
    yan_model *m;
    yan_model_params mp = yan_model_params_default();
    mp.load = YAN_LOAD_MMAP; /* describing a model reads only what it needs */
    yan_status s = yan_model_load(path, &mp, &m);
    if (s) return cmd_fail("cannot load model", s);

    printf("file: %s\n", path);
    int64_t need = yan_model_describe(m, NULL, 0);
    size_t cap = need < 0 ? (size_t)-need : 1;
    char *desc = malloc(cap);
    if (desc && yan_model_describe(m, desc, cap) >= 0) {
        fputs(desc, stdout);
        if (cap > 1 && desc[strlen(desc) - 1] != '\n') fputc('\n', stdout);
    }
    free(desc);

    const yan_tokenizer *tok = yan_model_tokenizer(m);
    printf("tokenizer: %s, pre-tokenizer %s, %d tokens\n", yan_tokenizer_kind(tok), yan_tokenizer_pre(tok),
           yan_tokenizer_n_vocab(tok));
    bool rec = false;
    const char *fam = yan_chat_template_family(m, &rec);
    printf("chat template: %s\n", yan_model_chat_template(m) ? (rec ? fam : "present but not recognised") : "none");
    if (!rec) printf("  (chat falls back to %s)\n", fam);

    int32_t n_ctx = cp.n_ctx > 0 ? cp.n_ctx : yan_model_n_ctx_train(m);
    uint64_t w = yan_model_weight_bytes(m);
    uint64_t ctx_bytes = yan_context_bytes(m, &cp);
    /* the scratch does not depend on the KV type and an f32 cache is twice an
     * f16 one, so the difference of the two plans is the f16 cache */
    yan_context_params c16 = cp, c32 = cp;
    c16.kv_type = YAN_KV_F16;
    c32.kv_type = YAN_KV_F32;
    uint64_t b16 = yan_context_bytes(m, &c16), b32 = yan_context_bytes(m, &c32);
    uint64_t kv = b32 > b16 ? (cp.kv_type == YAN_KV_F32 ? 2 * (b32 - b16) : b32 - b16) : 0;
    char label[64];
    printf("memory plan at %d tokens of context:\n", n_ctx);
    mib("weights", w);
    snprintf(label, sizeof label, "KV cache (%s)", cp.kv_type == YAN_KV_F32 ? "f32" : "f16");
    mib(label, kv);
    mib("scratch", ctx_bytes - kv);
    mib("total", w + ctx_bytes);
    printf("  (run, chat, serve: the weights are read into memory when they take at most half of the\n"
           "   free memory, else the file is mapped; --no-mmap / --mmap choose)\n");
    yan_model_free(m);
    return fflush(stdout) ? 1 : 0;
}
