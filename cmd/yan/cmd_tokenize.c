/* cmd_tokenize.c — `yan tokenize`: text -> token ids, pieces or a count.
 * Each input (stdin, or each FILE) is encoded as one text, all bytes kept. */
#include "cmd.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: yan tokenize --vocab FILE [options] [FILE...]\n\n"
            "Encodes stdin (or each FILE, one output line per file) with a vocabulary:\n"
            "GGUF, Hugging Face tokenizer.json, a tiktoken rank file, or GPT-2 encoder.json\n"
            "(vocab.bpe beside it).\n\n"
            "  --vocab FILE    the vocabulary (required)\n"
            "  --pre NAME      pre-tokenizer, for rank files that do not name one (%s)\n"
            "  --ids           print token ids separated by spaces (default)\n"
            "  --pieces        print the tokens' text as a JSON array of strings\n"
            "  --count         print only the number of tokens\n"
            "  --special       recognise special-token text such as <|endoftext|>\n"
            "  --bos           add BOS/EOS as the vocabulary asks\n"
            "  --threads N     threads for large inputs (default: all cores)\n\n"
            "example: echo 'Hello world' | yan tokenize --vocab cl100k_base.tiktoken\n",
            yan_pretokenizer_names());
}

static void put_json_piece(FILE *out, const char *s, size_t n) {
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
        else if (c == '\n') fputs("\\n", out);
        else if (c == '\t') fputs("\\t", out);
        else if (c == '\r') fputs("\\r", out);
        else if (c < 0x20 || c == 0x7F) fprintf(out, "\\u%04x", c);
        else fputc(c, out);
    }
    fputc('"', out);
}

static int emit(const yan_tokenizer *tok, const char *text, size_t len, uint32_t flags, int mode) {
    yan_token *ids;
    size_t n;
    yan_status s = yan_tokenize_alloc(tok, text, len, flags, &ids, &n);
    if (s) return cmd_fail("tokenize", s);
    if (mode == 'c') {
        printf("%zu\n", n);
    } else if (mode == 'p') {
        char piece[4096];
        fputc('[', stdout);
        for (size_t i = 0; i < n; i++) {
            int64_t k = yan_token_to_piece(tok, ids[i], piece, sizeof piece);
            if (i) fputc(',', stdout);
            put_json_piece(stdout, piece, k > 0 ? (size_t)k : 0);
        }
        fputs("]\n", stdout);
    } else {
        /* ids: format into one buffer, written once */
        size_t cap = n * 12 + 2, o = 0;
        char *buf = malloc(cap);
        if (!buf) return cmd_fail("tokenize", YAN_ERR_NOMEM);
        for (size_t i = 0; i < n; i++) {
            char tmp[12];
            int k = 0;
            uint32_t v = (uint32_t)ids[i];
            do tmp[k++] = (char)('0' + v % 10); while ((v /= 10));
            if (i) buf[o++] = ' ';
            while (k) buf[o++] = tmp[--k];
        }
        buf[o++] = '\n';
        fwrite(buf, 1, o, stdout);
        free(buf);
    }
    yan_free_tokens(ids);
    return 0;
}

int yan_cmd_tokenize(int argc, char **argv) {
    const char *vocab = NULL;
    yan_tokenizer_params tp = yan_tokenizer_params_default();
    int mode = 'i';
    uint32_t flags = 0;
    const char **files = calloc((size_t)argc, sizeof *files);
    int nf = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cmd_is_help(a)) { usage(stdout); free(files); return 0; }
        else if (!strcmp(a, "--vocab") && i + 1 < argc) vocab = argv[++i];
        else if (!strcmp(a, "--pre") && i + 1 < argc) tp.pre = argv[++i];
        else if (!strcmp(a, "--threads")) tp.n_threads = cmd_int(a, i + 1 < argc ? argv[++i] : NULL);
        else if (!strcmp(a, "--ids")) mode = 'i';
        else if (!strcmp(a, "--pieces")) mode = 'p';
        else if (!strcmp(a, "--count")) mode = 'c';
        else if (!strcmp(a, "--special")) flags |= YAN_TOKENIZE_SPECIAL;
        else if (!strcmp(a, "--bos")) flags |= YAN_TOKENIZE_ADD_BOS;
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "yan tokenize: unknown option '%s'\n", a);
            usage(stderr);
            free(files);
            return 2;
        } else files[nf++] = a;
    }
    if (!vocab) {
        fprintf(stderr, "yan tokenize: --vocab FILE is required\n");
        usage(stderr);
        free(files);
        return 2;
    }
    yan_tokenizer *tok;
    yan_status s = yan_tokenizer_load(vocab, &tp, &tok);
    if (s) { free(files); return cmd_fail("cannot load vocabulary", s); }
    if (nf == 0) files[nf++] = "-";
    int rc = 0;
    for (int f = 0; f < nf && !rc; f++) {
        size_t len;
        char *text = cmd_read_all(files[f], &len);
        if (!text) { rc = 1; break; }
        rc = emit(tok, text, len, flags, mode);
        free(text);
    }
    yan_tokenizer_free(tok);
    free(files);
    if (fflush(stdout) != 0) rc = 1;
    return rc;
}
