/* cmd_detokenize.c — `yan detokenize`: token ids -> the exact bytes. */
#include "cmd.h"

#include <ctype.h>

static void usage(FILE *f) {
    fprintf(f, "usage: yan detokenize --vocab FILE [--pre NAME] [--skip-special] [ID...]\n\n"
               "Reads whitespace-separated token ids from the arguments or stdin and writes\n"
               "the text they stand for, byte for byte, to stdout.\n\n"
               "example: yan tokenize --vocab v.json < a.txt | yan detokenize --vocab v.json\n");
}

static int push_id(yan_token **ids, size_t *n, size_t *cap, const char *s, size_t len) {
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]) || v > 100000000) {
            fprintf(stderr, "yan detokenize: '%.*s' is not a token id\n", (int)len, s);
            return 1;
        }
        v = v * 10 + (s[i] - '0');
    }
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        yan_token *nv = realloc(*ids, *cap * sizeof **ids);
        if (!nv) return cmd_fail("detokenize", YAN_ERR_NOMEM);
        *ids = nv;
    }
    (*ids)[(*n)++] = (yan_token)v;
    return 0;
}

int yan_cmd_detokenize(int argc, char **argv) {
    const char *vocab = NULL;
    yan_tokenizer_params tp = yan_tokenizer_params_default();
    bool skip = false;
    yan_token *ids = NULL;
    size_t n = 0, cap = 0;
    int rc = 0, from_args = 0;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i];
        if (cmd_is_help(a)) { usage(stdout); free(ids); return 0; }
        else if (!strcmp(a, "--vocab") && i + 1 < argc) vocab = argv[++i];
        else if (!strcmp(a, "--pre") && i + 1 < argc) tp.pre = argv[++i];
        else if (!strcmp(a, "--skip-special")) skip = true;
        else if (a[0] == '-') {
            fprintf(stderr, "yan detokenize: unknown option '%s'\n", a);
            rc = 2;
        } else {
            from_args = 1;
            rc = push_id(&ids, &n, &cap, a, strlen(a));
        }
    }
    if (!rc && !vocab) {
        fprintf(stderr, "yan detokenize: --vocab FILE is required\n");
        rc = 2;
    }
    if (!rc && !from_args) {
        size_t len;
        char *text = cmd_read_all("-", &len);
        if (!text) rc = 1;
        for (size_t i = 0; !rc && text && i < len;) {
            while (i < len && isspace((unsigned char)text[i])) i++;
            size_t j = i;
            while (j < len && !isspace((unsigned char)text[j])) j++;
            if (j > i) rc = push_id(&ids, &n, &cap, text + i, j - i);
            i = j;
        }
        free(text);
    }
    yan_tokenizer *tok = NULL;
    if (!rc) {
        yan_status s = yan_tokenizer_load(vocab, &tp, &tok);
        if (s) rc = cmd_fail("cannot load vocabulary", s);
    }
    if (!rc) {
        int64_t need = yan_detokenize(tok, ids, n, NULL, 0, skip);
        if (need == INT64_MIN) rc = cmd_fail("detokenize", YAN_ERR_INVALID_ARG);
        else {
            size_t sz = (size_t)(need < 0 ? -need : need + 1);
            char *out = malloc(sz);
            int64_t k = out ? yan_detokenize(tok, ids, n, out, sz, skip) : INT64_MIN;
            if (k < 0) rc = cmd_fail("detokenize", YAN_ERR_NOMEM);
            else fwrite(out, 1, (size_t)k, stdout);
            free(out);
        }
    }
    yan_tokenizer_free(tok);
    free(ids);
    if (fflush(stdout) != 0) rc = 1;
    return rc;
}
