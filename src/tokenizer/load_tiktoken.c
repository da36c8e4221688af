/* load_tiktoken.c — tiktoken rank files: one "<base64 token bytes> <rank>" per
 * line, as OpenAI publishes them (r50k_base, p50k_base, cl100k_base,
 * o200k_base). The rank is both the token id and its merge priority (RANK
 * mode). The files name neither their pre-tokenizer nor their special tokens;
 * the standard encodings are recognised from their content (rank count and
 * the bytes of known tokens), anything else needs --pre. */
#include "tokenizer/tok.h"
#include "tokenizer/pretok.h"

/* Strict base64 (padding optional at the very end). Returns bytes or -1. */
static long b64_decode(const uint8_t *s, size_t n, uint8_t *out) {
    while (n && s[n - 1] == '=') n--;
    if (n % 4 == 1) return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = yan_base64_value(s[i], false);
        if (v < 0) return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits && (acc & ((1u << bits) - 1))) return -1; /* non-zero padding bits */
    return (long)o;
}

typedef struct {
    const char *name;
    int32_t n_ranks;
    int pre;
    const char *probe;    /* bytes of rank probe_rank */
    int32_t probe_rank;
    struct { const char *text; int32_t id; int role; } sp[8];
} std_encoding;

#define NONE (-1)
static const std_encoding STD[] = {
    {"r50k_base", 50256, YAN_PRE_GPT2, " the", 262, {{"<|endoftext|>", 50256, YAN_SPECIAL_EOS}}},
    {"p50k_base", 50280, YAN_PRE_GPT2, " the", 262, {{"<|endoftext|>", 50256, YAN_SPECIAL_EOS}}},
    {"cl100k_base", 100256, YAN_PRE_CL100K, " the", 279,
     {{"<|endoftext|>", 100257, YAN_SPECIAL_EOS}, {"<|fim_prefix|>", 100258, NONE}, {"<|fim_middle|>", 100259, NONE},
      {"<|fim_suffix|>", 100260, NONE}, {"<|endofprompt|>", 100276, NONE}}},
    {"o200k_base", 199998, YAN_PRE_O200K, " the", 290,
     {{"<|endoftext|>", 199999, YAN_SPECIAL_EOS}, {"<|endofprompt|>", 200018, NONE}}},
};

yan_status yan_load_tiktoken(yan_tokenizer *t, const uint8_t *buf, size_t len, const char *path) {
    t->kind = YAN_TOK_BPE;
    t->merge_mode = YAN_MERGE_RANK;
    size_t pos = 0, line = 0;
    int32_t n_ranks = 0;
    uint8_t tmp[1024];
    while (pos < len) {
        line++;
        const uint8_t *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len;
        size_t e = end;
        if (e > pos && buf[e - 1] == '\r') e--;
        if (e == pos) { pos = end + 1; continue; } /* blank line */
        const uint8_t *sp = memchr(buf + pos, ' ', e - pos);
        if (!sp) return yan_fail(YAN_ERR_FORMAT, "%s:%zu: expected '<base64> <rank>'", path, line);
        size_t b64n = (size_t)(sp - (buf + pos));
        if (b64n == 0 || b64n > sizeof tmp * 4 / 3)
            return yan_fail(YAN_ERR_FORMAT, "%s:%zu: token of %zu base64 characters", path, line, b64n);
        long nb = b64_decode(buf + pos, b64n, tmp);
        if (nb <= 0) return yan_fail(YAN_ERR_FORMAT, "%s:%zu: bad base64 '%.*s'", path, line, (int)(b64n > 40 ? 40 : b64n), buf + pos);
        int64_t rank = 0;
        size_t i = (size_t)(sp - buf) + 1;
        if (i >= e) return yan_fail(YAN_ERR_FORMAT, "%s:%zu: missing rank", path, line);
        for (; i < e; i++) {
            if (buf[i] < '0' || buf[i] > '9') return yan_fail(YAN_ERR_FORMAT, "%s:%zu: bad rank", path, line);
            rank = rank * 10 + (buf[i] - '0');
            /* ranks are contiguous from 0 and every line takes at least 4
             * bytes, so a rank the file cannot reach is an error before any
             * table is sized for it */
            if (rank >= (1 << 28) || (uint64_t)rank > len / 4)
                return yan_fail(YAN_ERR_FORMAT, "%s:%zu: rank too large for a file of %zu bytes", path, line, len);
        }
        if (rank < t->n_vocab && t->tok_type && t->tok_type[rank] != YAN_TT_UNDEFINED)
            return yan_fail(YAN_ERR_FORMAT, "%s:%zu: duplicate rank %ld", path, line, (long)rank);
        yan_status s = yan_tok_set(t, (int32_t)rank, tmp, (size_t)nb, YAN_TT_NORMAL, 0.0f);
        if (s) return s;
        n_ranks++;
        pos = end + 1;
    }
    if (n_ranks == 0) return yan_fail(YAN_ERR_FORMAT, "%s: no tokens", path);
    if (n_ranks != t->n_vocab)
        return yan_fail(YAN_ERR_FORMAT, "%s: ranks are not contiguous (%d ranks, highest %d)", path, n_ranks, t->n_vocab - 1);
    for (size_t e = 0; e < sizeof STD / sizeof STD[0]; e++) {
        const std_encoding *se = &STD[e];
        if (se->n_ranks != n_ranks) continue;
        size_t pn;
        const uint8_t *pb = yan_tok_bytes(t, se->probe_rank, &pn);
        if (pn != strlen(se->probe) || memcmp(pb, se->probe, pn) != 0) continue;
        t->pre = se->pre;
        t->name = yan_strdup(se->name);
        for (int k = 0; k < 8 && se->sp[k].text; k++) {
            yan_status s = yan_tok_set(t, se->sp[k].id, se->sp[k].text, strlen(se->sp[k].text), YAN_TT_CONTROL, 0.0f);
            if (s) return s;
            if (se->sp[k].role != NONE) t->special[se->sp[k].role] = se->sp[k].id;
        }
        break;
    }
    return YAN_OK;
}
