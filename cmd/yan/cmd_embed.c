/* cmd_embed.c — `yan embed`: one embedding per input text, by the code
 * /v1/embeddings uses (yan_embed and yan_engine_embed share yan_fwd_embed):
 * the text is tokenized as the model's vocabulary asks (BERT: [CLS] text
 * [SEP]), evaluated from position 0, pooled (the model's pooling unless
 * --pooling says otherwise) and L2-normalised. */
#include "cmd.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: yan embed MODEL [options] TEXT...\n"
            "       yan embed MODEL [options] -f FILE     (one text per line; - = stdin)\n\n"
            "Prints the embedding of each text: one line of n_embd numbers per text, or JSON.\n"
            "Models: bert (bge, all-MiniLM, gte: WordPiece, bidirectional) and decoder models\n"
            "(llama, qwen2, qwen3, gpt2; Qwen3-Embedding uses last-token pooling).\n\n"
            "  --pooling P     mean, cls or last (default: the model's <arch>.pooling_type, else mean)\n"
            "  --json          print {\"model\", \"pooling\", \"n_embd\", \"data\": [{\"index\", \"n_tokens\",\n"
            "                  \"embedding\"}]} (with --tokens also \"tokens\": the ids evaluated)\n"
            "  --tokens        also print the token ids (a line \"# ids ...\" before each vector)\n"
            "  -f FILE         read the texts from FILE, one per line (empty lines are skipped)\n"
            "  --ctx N         context length (default: the model's, at most %d)\n"
            "  --threads N     threads (default: all cores)\n"
            "  --kv f16|f32    KV cache type (default f16)\n\n"
            "example: yan embed bge-small-en-v1.5-f16.gguf 'a cat sat on the mat' 'a dog lay on the rug'\n",
            CMD_DEFAULT_CTX);
}

static int pooling_of(const char *v, yan_pooling *out) {
    if (v && !strcmp(v, "mean")) *out = YAN_POOLING_MEAN;
    else if (v && !strcmp(v, "cls")) *out = YAN_POOLING_CLS;
    else if (v && !strcmp(v, "last")) *out = YAN_POOLING_LAST;
    else {
        fprintf(stderr, "yan embed: --pooling must be mean, cls or last, not '%s'\n", v ? v : "");
        return 0;
    }
    return 1;
}

/* Split buf into lines (in place); empty lines (and a trailing \r) dropped. */
static size_t split_lines(char *buf, size_t len, char ***out) {
    size_t cap = 16, n = 0;
    char **v = malloc(cap * sizeof *v);
    for (size_t i = 0; v && i < len;) {
        size_t j = i;
        while (j < len && buf[j] != '\n') j++;
        buf[j] = 0;
        if (j > i && buf[j - 1] == '\r') buf[j - 1] = 0;
        if (buf[i]) {
            if (n == cap) {
                cap *= 2;
                char **nv = realloc(v, cap * sizeof *v);
                if (!nv) { free(v); v = NULL; break; }
                v = nv;
            }
            v[n++] = buf + i;
        }
        i = j + 1;
    }
    *out = v;
    return v ? n : 0;
}

static void put_json_str(FILE *out, const char *s) {
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
        else if (c == '\n') fputs("\\n", out);
        else if (c < 0x20 || c == 0x7F) fprintf(out, "\\u%04x", c);
        else fputc(c, out);
    }
    fputc('"', out);
}

int yan_cmd_embed(int argc, char **argv) {
    const char *model_path = NULL, *file = NULL;
    yan_context_params cp = yan_context_params_default();
    yan_pooling pooling = YAN_POOLING_MODEL;
    bool json = false, show_ids = false;
    const char **texts = calloc((size_t)argc + 1, sizeof *texts);
    int nt = 0;
    if (!texts) return cmd_fail("embed", YAN_ERR_NOMEM);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cmd_is_help(a)) { usage(stdout); free(texts); return 0; }
        else if (!strcmp(a, "--pooling")) {
            if (!pooling_of(i + 1 < argc ? argv[++i] : NULL, &pooling)) { free(texts); return 2; }
        } else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--tokens")) show_ids = true;
        else if (!strcmp(a, "-f") && i + 1 < argc) file = argv[++i];
        else if (!strcmp(a, "--ctx")) cp.n_ctx = cmd_int(a, i + 1 < argc ? argv[++i] : NULL);
        else if (!strcmp(a, "--threads")) cp.n_threads = cmd_int(a, i + 1 < argc ? argv[++i] : NULL);
        else if (!strcmp(a, "--kv")) cmd_kv_type(a, i + 1 < argc ? argv[++i] : NULL, &cp.kv_type);
        else if (!strcmp(a, "--")) { while (++i < argc) texts[nt++] = argv[i]; }
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "yan embed: unknown option '%s'\n", a);
            usage(stderr);
            free(texts);
            return 2;
        } else if (!model_path) model_path = a;
        else texts[nt++] = a;
    }
    if (!model_path || (nt == 0 && !file) || (nt > 0 && file)) {
        fprintf(stderr, "yan embed: give a MODEL and either TEXT... or -f FILE\n");
        usage(stderr);
        free(texts);
        return 2;
    }
    char *buf = NULL, **lines = NULL;
    if (file) {
        size_t len;
        if (!(buf = cmd_read_all(file, &len))) { free(texts); return 1; }
        nt = (int)split_lines(buf, len, &lines);
        if (nt == 0) {
            fprintf(stderr, "yan embed: %s holds no text\n", file);
            free(buf);
            free(lines);
            free(texts);
            return 1;
        }
    }
    const char *const *in = file ? (const char *const *)lines : texts;

    int rc = 1;
    yan_model *m = NULL;
    yan_context *ctx = NULL;
    float *vec = NULL;
    yan_model_params mp = yan_model_params_default();
    yan_status s = yan_model_load(model_path, &mp, &m);
    if (s) { rc = cmd_fail("cannot load model", s); goto out; }
    cp.n_ctx = cmd_default_ctx(m, cp.n_ctx);
    if ((s = yan_context_new(m, &cp, &ctx))) { rc = cmd_fail("cannot create a context", s); goto out; }
    const int32_t C = yan_model_n_embd(m);
    const yan_tokenizer *tok = yan_model_tokenizer(m);
    if (!(vec = malloc((size_t)C * sizeof *vec))) { rc = cmd_fail("embed", YAN_ERR_NOMEM); goto out; }
    const yan_pooling used = pooling == YAN_POOLING_MODEL ? yan_model_pooling(m) : pooling;
    if (json) {
        printf("{\"object\":\"list\",\"model\":");
        put_json_str(stdout, model_path);
        printf(",\"architecture\":\"%s\",\"pooling\":\"%s\",\"n_embd\":%d,\"data\":[", yan_model_arch(m),
               yan_pooling_name(used), C);
    }
    for (int i = 0; i < nt; i++) {
        yan_token *ids;
        size_t n;
        if ((s = yan_tokenize_alloc(tok, in[i], strlen(in[i]), YAN_TOKENIZE_ADD_BOS, &ids, &n))) {
            rc = cmd_fail("tokenize", s);
            goto out;
        }
        if (n == 0) {
            fprintf(stderr, "yan embed: text %d has no tokens\n", i + 1);
            yan_free_tokens(ids);
            goto out;
        }
        if (n > (size_t)yan_context_n_ctx(ctx)) {
            fprintf(stderr, "yan embed: text %d has %zu tokens, more than the context of %d; use a larger --ctx "
                            "(the model was trained with %d)\n",
                    i + 1, n, yan_context_n_ctx(ctx), yan_model_n_ctx_train(m));
            yan_free_tokens(ids);
            goto out;
        }
        s = yan_embed_pooled(ctx, ids, n, pooling, vec, (size_t)C);
        if (s) {
            yan_free_tokens(ids);
            rc = cmd_fail("embed", s);
            goto out;
        }
        if (json) {
            printf("%s{\"object\":\"embedding\",\"index\":%d,\"n_tokens\":%zu,", i ? "," : "", i, n);
            if (show_ids) {
                printf("\"tokens\":[");
                for (size_t k = 0; k < n; k++) printf("%s%d", k ? "," : "", ids[k]);
                printf("],");
            }
            printf("\"embedding\":[");
            for (int32_t k = 0; k < C; k++) printf("%s%.9g", k ? "," : "", (double)vec[k]);
            printf("]}");
        } else {
            if (show_ids) {
                printf("# ids");
                for (size_t k = 0; k < n; k++) printf(" %d", ids[k]);
                printf("\n");
            }
            for (int32_t k = 0; k < C; k++) printf("%s%.9g", k ? " " : "", (double)vec[k]);
            printf("\n");
        }
        yan_free_tokens(ids);
    }
    if (json) printf("]}\n");
    rc = fflush(stdout) != 0;
out:
    free(vec);
    yan_context_free(ctx);
    yan_model_free(m);
    free(buf);
    free(lines);
    free(texts);
    return rc;
}
