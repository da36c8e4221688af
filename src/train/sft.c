/* sft.c — chat JSONL -> tokens with an assistant-only training mask (sft.h). */
#include "train/sft.h"

#include "base/json.h"
#include "model/chat.h"

#include <stdio.h>
#include <string.h>

/* growable arrays of the result */
typedef struct {
    yan_sft_data d;
    int64_t cap_tok, cap_ex;
} sft_builder;

static bool push_tokens(sft_builder *b, const yan_token *ids, size_t n, uint8_t trained) {
    if (b->d.n_tokens + (int64_t)n > b->cap_tok) {
        int64_t cap = b->cap_tok ? b->cap_tok : 4096;
        while (cap < b->d.n_tokens + (int64_t)n) cap *= 2;
        int32_t *t = yan_realloc(b->d.tokens, (size_t)cap * sizeof(int32_t));
        if (!t) return false;
        b->d.tokens = t;
        uint8_t *m = yan_realloc(b->d.trained, (size_t)cap);
        if (!m) return false;
        b->d.trained = m;
        b->cap_tok = cap;
    }
    memcpy(b->d.tokens + b->d.n_tokens, ids, n * sizeof(int32_t));
    memset(b->d.trained + b->d.n_tokens, trained, n);
    b->d.n_tokens += (int64_t)n;
    return true;
}

static bool push_start(sft_builder *b, int64_t at) {
    if (b->d.n_examples + 2 > b->cap_ex) {
        int64_t cap = b->cap_ex ? 2 * b->cap_ex : 256;
        int64_t *s = yan_realloc(b->d.start, (size_t)cap * sizeof(int64_t));
        if (!s) return false;
        b->d.start = s;
        b->cap_ex = cap;
    }
    b->d.start[b->d.n_examples] = at;
    return true;
}

/* Render msgs[0..n) into *buf (grown as needed). Returns the length or -1. */
static int64_t render(const char *family, const yan_chat_message *msgs, size_t n, bool add_assistant,
                      char **buf, size_t *cap) {
    for (;;) {
        int64_t r = yan_chat_format_family(family, msgs, n, add_assistant, *buf, *cap);
        if (r == INT64_MIN) return -1;
        if (r >= 0) return r;
        size_t need = (size_t)(-r);
        char *nb = yan_realloc(*buf, need);
        if (!nb) {
            yan_fail(YAN_ERR_NOMEM, "out of memory");
            return -1;
        }
        *buf = nb;
        *cap = need;
    }
}

/* Tokenize text[0..len) and append it with the given mask. bos: ask for BOS. */
static yan_status append_text(sft_builder *b, const yan_tokenizer *tok, const char *text, size_t len,
                              uint8_t trained, bool bos) {
    if (len == 0 && !bos) return YAN_OK;
    yan_token *ids = NULL;
    size_t n = 0;
    uint32_t flags = YAN_TOKENIZE_SPECIAL | (bos ? YAN_TOKENIZE_ADD_BOS : 0);
    yan_status s = yan_tokenize_alloc(tok, text, len, flags, &ids, &n);
    if (s != YAN_OK) return s;
    bool ok = push_tokens(b, ids, n, trained);
    yan_free_tokens(ids);
    return ok ? YAN_OK : yan_fail(YAN_ERR_NOMEM, "out of memory");
}

/* One conversation (a parsed line) -> tokens appended to b. */
static yan_status add_example(sft_builder *b, const yan_tokenizer *tok, const char *family, const yan_json *root,
                              const char *path, int64_t line, char **rbuf, size_t *rcap) {
    const yan_json *msgs = yan_json_get(root, "messages");
    if (!yan_json_is(msgs, YAN_JSON_ARRAY) || yan_json_len(msgs) == 0)
        return yan_fail(YAN_ERR_FORMAT, "%s:%lld: no \"messages\" array", path, (long long)line);
    size_t n = yan_json_len(msgs);
    yan_chat_message *m = yan_malloc(n * sizeof *m);
    char *prev = NULL; /* the render the next piece must extend */
    size_t prev_len = 0;
    yan_status s = YAN_OK;
    if (!m) return yan_fail(YAN_ERR_NOMEM, "out of memory");
    int n_assistant = 0;
    for (size_t i = 0; i < n; i++) {
        const yan_json *e = yan_json_at(msgs, i);
        m[i].role = yan_json_str(yan_json_get(e, "role"), NULL);
        m[i].content = yan_json_str(yan_json_get(e, "content"), NULL);
        if (!m[i].role || !m[i].content) {
            s = yan_fail(YAN_ERR_FORMAT, "%s:%lld: message %zu needs string \"role\" and \"content\"", path,
                         (long long)line, i);
            goto done;
        }
        if (strcmp(m[i].role, "assistant") == 0) n_assistant++;
    }
    if (n_assistant == 0) {
        s = yan_fail(YAN_ERR_FORMAT, "%s:%lld: the conversation has no assistant turn", path, (long long)line);
        goto done;
    }
    prev = yan_malloc(1);
    if (!prev) {
        s = yan_fail(YAN_ERR_NOMEM, "out of memory");
        goto done;
    }
    bool first = true;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && strcmp(m[i].role, "assistant") != 0) continue;
        /* untrained text up to the assistant opening (or the end) */
        int64_t lp = render(family, m, i, i < n, rbuf, rcap);
        if (lp < 0) {
            s = YAN_ERR_FORMAT; /* message set by the formatter */
            goto done;
        }
        if ((size_t)lp < prev_len || memcmp(*rbuf, prev, prev_len) != 0) goto inconsistent;
        s = append_text(b, tok, *rbuf + prev_len, (size_t)lp - prev_len, 0, first);
        if (s != YAN_OK) goto done;
        first = false;
        if (i == n) break;
        char *np = yan_realloc(prev, (size_t)lp + 1);
        if (!np) {
            s = yan_fail(YAN_ERR_NOMEM, "out of memory");
            goto done;
        }
        prev = np;
        memcpy(prev, *rbuf, (size_t)lp);
        prev_len = (size_t)lp;
        /* the trained span: the reply and the end-of-turn marker */
        int64_t lq = render(family, m, i + 1, false, rbuf, rcap);
        if (lq < 0) {
            s = YAN_ERR_FORMAT; /* message set by the formatter */
            goto done;
        }
        if ((size_t)lq < prev_len || memcmp(*rbuf, prev, prev_len) != 0) goto inconsistent;
        s = append_text(b, tok, *rbuf + prev_len, (size_t)lq - prev_len, 1, false);
        if (s != YAN_OK) goto done;
        np = yan_realloc(prev, (size_t)lq + 1);
        if (!np) {
            s = yan_fail(YAN_ERR_NOMEM, "out of memory");
            goto done;
        }
        prev = np;
        memcpy(prev, *rbuf, (size_t)lq);
        prev_len = (size_t)lq;
    }
    goto done;
inconsistent:
    s = yan_fail(YAN_ERR_FORMAT, "%s:%lld: the %s template renders a turn that does not extend the text before it",
                 path, (long long)line, family);
done:
    yan_free(prev);
    yan_free(m);
    return s;
}

yan_status yan_sft_load(const char *path, const yan_tokenizer *tok, const char *family, int max_len,
                        yan_sft_data *out) {
    memset(out, 0, sizeof *out);
    if (!yan_chat_family_known(family))
        return yan_fail(YAN_ERR_UNSUPPORTED, "unknown chat template \"%s\" (known: %s)", family,
                        yan_chat_family_names());
    uint8_t *text = NULL;
    size_t len = 0;
    yan_status s = yan_read_file(path, &text, &len);
    if (s != YAN_OK) return s;
    sft_builder b;
    memset(&b, 0, sizeof b);
    yan_arena arena;
    yan_arena_init(&arena, 1 << 16);
    char *rbuf = NULL;
    size_t rcap = 0;
    int64_t line = 0;
    for (size_t at = 0; at < len;) {
        const uint8_t *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) : len;
        line++;
        size_t a = at, e = end;
        at = nl ? end + 1 : len;
        while (a < e && (text[a] == ' ' || text[a] == '\t' || text[a] == '\r')) a++;
        while (e > a && (text[e - 1] == ' ' || text[e - 1] == '\t' || text[e - 1] == '\r')) e--;
        if (a == e) continue;
        yan_json *root = NULL;
        yan_arena_reset(&arena);
        s = yan_json_parse((const char *)text + a, e - a, &arena, &root);
        if (s != YAN_OK) {
            char where[4200];
            snprintf(where, sizeof where, "%s:%lld", path, (long long)line);
            yan_error_prefix("invalid JSON");
            yan_error_prefix(where); /* "FILE:LINE: invalid JSON: ..." */
            goto fail;
        }
        int64_t first = b.d.n_tokens;
        if (!push_start(&b, first)) {
            s = yan_fail(YAN_ERR_NOMEM, "out of memory");
            goto fail;
        }
        s = add_example(&b, tok, family, root, path, line, &rbuf, &rcap);
        if (s != YAN_OK) goto fail;
        if (max_len > 0 && b.d.n_tokens - first > max_len) {
            b.d.n_tokens = first + max_len;
            b.d.n_truncated++;
        }
        int64_t trained = 0;
        for (int64_t i = first + 1; i < b.d.n_tokens; i++) trained += b.d.trained[i];
        if (trained == 0) {
            s = yan_fail(YAN_ERR_FORMAT, "%s:%lld: no assistant token is left within %d tokens", path,
                         (long long)line, max_len);
            goto fail;
        }
        b.d.n_trained += trained;
        b.d.n_examples++;
    }
    if (b.d.n_examples == 0) {
        s = yan_fail(YAN_ERR_FORMAT, "%s: no conversations", path);
        goto fail;
    }
    if (!push_start(&b, b.d.n_tokens)) {
        s = yan_fail(YAN_ERR_NOMEM, "out of memory");
        goto fail;
    }
    *out = b.d;
    goto done;
fail:
    yan_sft_free(&b.d);
done:
    yan_free(rbuf);
    yan_arena_free(&arena);
    yan_free(text);
    return s;
}

void yan_sft_free(yan_sft_data *d) {
    yan_free(d->tokens);
    yan_free(d->trained);
    yan_free(d->start);
    memset(d, 0, sizeof *d);
}

void yan_sft_batch(const yan_sft_data *d, const int64_t *perm, uint64_t *pos, int B, int T, int32_t pad,
                   int32_t *inputs, int32_t *targets) {
    for (int b = 0; b < B; b++) {
        uint64_t k = (*pos + (uint64_t)b) % (uint64_t)d->n_examples;
        int64_t ex = perm ? perm[k] : (int64_t)k;
        const int32_t *tk = d->tokens + d->start[ex];
        const uint8_t *tr = d->trained + d->start[ex];
        int64_t n = d->start[ex + 1] - d->start[ex];
        int32_t *in = inputs + (size_t)b * (size_t)T, *tg = targets + (size_t)b * (size_t)T;
        for (int t = 0; t < T; t++) {
            in[t] = t < n ? tk[t] : pad;
            tg[t] = t + 1 < n && tr[t + 1] ? tk[t + 1] : -1;
        }
    }
    *pos = (*pos + (uint64_t)B) % (uint64_t)d->n_examples;
}

yan_status yan_sft_select(const yan_sft_data *d, const uint8_t *keep, yan_sft_data *out) {
    memset(out, 0, sizeof *out);
    int64_t ne = 0, nt = 0;
    for (int64_t i = 0; i < d->n_examples; i++)
        if (keep[i]) {
            ne++;
            nt += d->start[i + 1] - d->start[i];
        }
    out->tokens = yan_malloc((size_t)(nt ? nt : 1) * sizeof(int32_t));
    out->trained = yan_malloc((size_t)(nt ? nt : 1));
    out->start = yan_malloc((size_t)(ne + 1) * sizeof(int64_t));
    if (!out->tokens || !out->trained || !out->start) {
        yan_sft_free(out);
        return yan_fail(YAN_ERR_NOMEM, "out of memory");
    }
    for (int64_t i = 0; i < d->n_examples; i++) {
        if (!keep[i]) continue;
        int64_t a = d->start[i], n = d->start[i + 1] - a;
        out->start[out->n_examples++] = out->n_tokens;
        memcpy(out->tokens + out->n_tokens, d->tokens + a, (size_t)n * sizeof(int32_t));
        memcpy(out->trained + out->n_tokens, d->trained + a, (size_t)n);
        for (int64_t k = 1; k < n; k++) out->n_trained += d->trained[a + k];
        out->n_tokens += n;
    }
    out->start[out->n_examples] = out->n_tokens;
    return YAN_OK;
}

int64_t *yan_sft_shuffle(int64_t n, uint64_t seed) {
    int64_t *p = yan_malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    if (!p) return NULL;
    for (int64_t i = 0; i < n; i++) p[i] = i;
    uint64_t s = seed;
    for (int64_t i = n - 1; i > 0; i--) {
        s += 0x9E3779B97F4A7C15ULL;
        uint64_t z = s;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        int64_t j = (int64_t)(z % (uint64_t)(i + 1));
        int64_t t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
    return p;
}
