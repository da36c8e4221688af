/* load_gpt2.c — OpenAI's original GPT-2 vocabulary: encoder.json (a flat map
 * token -> id, tokens in the GPT-2 byte alphabet) and vocab.bpe beside it
 * ("#version" line, then one "left right" merge per line, in rank order).
 * Tokens of the form <|...|> are special (CONTROL); <|endoftext|> is EOS. */
#include "base/json.h"
#include "tokenizer/pretok.h"
#include "tokenizer/tok.h"

#include <libgen.h>

/* vocab.bpe path: same folder as encoder.json. */
static char *sibling(const char *path, const char *name) {
    char *copy = yan_strdup(path);
    if (!copy) return NULL;
    yan_buf b = {0};
    yan_buf_printf(&b, "%s/%s", dirname(copy), name);
    yan_free(copy);
    return b.oom ? (yan_buf_free(&b), NULL) : b.data;
}

static bool is_control_text(const char *s, size_t n) {
    return n >= 4 && s[0] == '<' && s[1] == '|' && s[n - 2] == '|' && s[n - 1] == '>';
}

static yan_status load_merges(yan_tokenizer *t, const uint8_t *b, size_t n, const char *mpath) {
    size_t pos = 0, line = 0;
    uint8_t *tmp = NULL;
    size_t tmp_cap = 0;
    yan_status s = yan_tok_index(t);
    while (pos < n && s == YAN_OK) {
        line++;
        const uint8_t *nl = memchr(b + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - b) : n, e = end;
        if (e > pos && b[e - 1] == '\r') e--;
        const char *ln = (const char *)b + pos;
        size_t len = e - pos;
        pos = end + 1;
        if (len == 0 || (line == 1 && len >= 8 && memcmp(ln, "#version", 8) == 0)) continue;
        const char *sp = memchr(ln, ' ', len);
        if (!sp || sp == ln || sp == ln + len - 1 || memchr(sp + 1, ' ', (size_t)(ln + len - sp - 1))) {
            s = yan_fail(YAN_ERR_FORMAT, "%s:%zu: expected 'left right'", mpath, line);
            break;
        }
        if (len > tmp_cap) {
            yan_free(tmp);
            tmp_cap = len * 2;
            tmp = yan_malloc(tmp_cap);
            if (!tmp) { s = yan_fail(YAN_ERR_NOMEM, "%s: out of memory", mpath); break; }
        }
        size_t la = (size_t)(sp - ln);
        long na = yan_gpt2_unbyte(ln, la, tmp);
        long nb = na < 0 ? -1 : yan_gpt2_unbyte(sp + 1, len - la - 1, tmp + na);
        if (na < 0 || nb < 0) {
            s = yan_fail(YAN_ERR_FORMAT, "%s:%zu: character outside the GPT-2 byte alphabet", mpath, line);
            break;
        }
        int32_t a = yan_tok_lookup(t, tmp, (size_t)na), c = yan_tok_lookup(t, tmp + na, (size_t)nb);
        if (a < 0 || c < 0) {
            s = yan_fail(YAN_ERR_FORMAT, "%s:%zu: merge '%.*s' names a token that is not in encoder.json", mpath, line,
                         (int)(len > 60 ? 60 : len), ln);
            break;
        }
        s = yan_tok_add_merge(t, a, c);
    }
    yan_free(tmp);
    return s;
}

yan_status yan_load_gpt2_parts(yan_tokenizer *t, const uint8_t *buf, size_t len, const uint8_t *mb, size_t mn,
                              const char *path, const char *mpath) {
    t->kind = YAN_TOK_BPE;
    t->merge_mode = YAN_MERGE_PAIRS;
    t->pre = YAN_PRE_GPT2;
    yan_arena a;
    yan_arena_init(&a, 1 << 20);
    yan_json *root;
    yan_status s = yan_json_parse((const char *)buf, len, &a, &root);
    if (s) {
        yan_error_prefix(path);
        yan_arena_free(&a);
        return s;
    }
    if (!yan_json_is(root, YAN_JSON_OBJECT)) {
        yan_arena_free(&a);
        return yan_fail(YAN_ERR_FORMAT, "%s: expected a JSON object mapping tokens to ids", path);
    }
    size_t n = yan_json_len(root);
    uint8_t *tmp = NULL;
    size_t tmp_cap = 0;
    for (size_t i = 0; i < n && s == YAN_OK; i++) {
        size_t kl;
        const char *k = yan_json_key(root, i, &kl);
        int64_t id;
        /* ids index the vocabulary: one far beyond the entry count would only
         * make us size tables for a hostile number */
        if (!yan_json_int(yan_json_at(root, i), &id) || id < 0 || id >= (1 << 28) || (uint64_t)id >= n + 65536) {
            s = yan_fail(YAN_ERR_FORMAT, "%s: token '%.*s' has no valid id", path, (int)(kl > 60 ? 60 : kl), k);
            break;
        }
        if (kl > tmp_cap) {
            yan_free(tmp);
            tmp_cap = kl * 2 + 16;
            tmp = yan_malloc(tmp_cap);
            if (!tmp) { s = yan_fail(YAN_ERR_NOMEM, "%s: out of memory", path); break; }
        }
        if (is_control_text(k, kl)) {
            s = yan_tok_set(t, (int32_t)id, k, kl, YAN_TT_CONTROL, 0.0f);
            if (!s && kl == 13 && memcmp(k, "<|endoftext|>", 13) == 0) {
                t->special[YAN_SPECIAL_EOS] = (int32_t)id;
                t->special[YAN_SPECIAL_BOS] = (int32_t)id;
            }
            continue;
        }
        long nb = yan_gpt2_unbyte(k, kl, tmp);
        if (nb < 0) {
            s = yan_fail(YAN_ERR_FORMAT, "%s: token '%.*s' has a character outside the GPT-2 byte alphabet", path,
                         (int)(kl > 60 ? 60 : kl), k);
            break;
        }
        s = yan_tok_set(t, (int32_t)id, tmp, (size_t)nb, YAN_TT_NORMAL, 0.0f);
    }
    yan_free(tmp);
    yan_arena_free(&a);
    if (s) return s;

    return load_merges(t, mb, mn, mpath);
}

yan_status yan_load_gpt2(yan_tokenizer *t, const uint8_t *buf, size_t len, const char *path) {
    char *mpath = sibling(path, "vocab.bpe");
    if (!mpath) return yan_fail(YAN_ERR_NOMEM, "out of memory");
    uint8_t *mb;
    size_t mn;
    yan_status s = yan_read_file(mpath, &mb, &mn);
    if (s) {
        yan_fail(s, "%s: GPT-2 encoder.json needs its merges file %s beside it", path, mpath);
        yan_free(mpath);
        return s;
    }
    s = yan_load_gpt2_parts(t, buf, len, mb, mn, path, mpath);
    yan_free(mb);
    yan_free(mpath);
    return s;
}
