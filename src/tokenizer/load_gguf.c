/* load_gguf.c — vocabulary loader for GGUF files (tokenizer.ggml.* keys, as
 * written by llama.cpp's converters and by save_gguf.c).
 *
 *  - model "gpt2": byte-level BPE, merges by list rank (YAN_MERGE_PAIRS).
 *    tokenizer.ggml.pre is REQUIRED and mapped with yan_pre_from_name; a
 *    missing or unknown name is YAN_ERR_UNSUPPORTED listing the known ones.
 *    Tokens are in the GPT-2 byte alphabet and are decoded to raw bytes,
 *    except CONTROL and USER_DEFINED tokens, which are plain text. A token of
 *    another type that is not in the alphabet is kept as text with type
 *    UNUSED (it can never be produced by BPE in llama.cpp either).
 *    Merges "a b" (split at the first space after the first character, as
 *    llama.cpp does) must name existing tokens.
 *  - model "llama": SentencePiece-style BPE by score (YAN_MERGE_SCORE), tokens
 *    kept as their UTF-8 text ("▁" stays, byte tokens stay "<0xAB>"),
 *    byte_fallback on, add_space_prefix from the file (default true).
 *  - model "bert": WordPiece (wordpiece.h), tokens kept as their text
 *    ("▁word" word-initial, "iece" continuation, CONTROL as is). As in
 *    llama.cpp: special ids default to BERT's (bos/[CLS] 101, unknown 100,
 *    seperator 102, padding 0, mask 103) when in range, [CLS] and [SEP] are
 *    always added around the text (with YAN_TOKENIZE_ADD_BOS),
 *    tokenizer.ggml.normalizer.lowercase defaults to true and
 *    tokenizer.ggml.normalizer.strip_accents to the lowercase flag.
 *  - special ids from tokenizer.ggml.{bos,eos,eot,unknown,padding,seperator,
 *    cls,mask}_token_id; add_bos/add_eos (defaults: llama true/false, gpt2
 *    false/false); token types from tokenizer.ggml.token_type.
 *  - yan-specific optional flags: yan.tokenizer.nfc (default: true for the
 *    qwen2 pre-tokenizer, as Hugging Face's Qwen tokenizers normalise to NFC)
 *    and yan.tokenizer.ignore_merges (default: true for "llama-bpe"/"llama3",
 *    as llama.cpp does).
 * Does not call yan_tok_finalize. Errors name the file and the key. */
#include "gguf/gguf.h"
#include "tokenizer/pretok.h"
#include "tokenizer/tok.h"
#include "tokenizer/tok_gguf.h"

static const struct {
    const char *key;
    int which;
} k_special_keys[] = {
    {"tokenizer.ggml.bos_token_id", YAN_SPECIAL_BOS},     {"tokenizer.ggml.eos_token_id", YAN_SPECIAL_EOS},
    {"tokenizer.ggml.eot_token_id", YAN_SPECIAL_EOT},     {"tokenizer.ggml.unknown_token_id", YAN_SPECIAL_UNK},
    {"tokenizer.ggml.padding_token_id", YAN_SPECIAL_PAD}, {"tokenizer.ggml.seperator_token_id", YAN_SPECIAL_SEP},
    {"tokenizer.ggml.cls_token_id", YAN_SPECIAL_CLS},     {"tokenizer.ggml.mask_token_id", YAN_SPECIAL_MASK},
};

/* Optional bool: missing -> def; wrong type -> error. */
static yan_status opt_bool(const yan_gguf *g, const char *key, bool def, bool *out) {
    yan_status st = yan_gguf_get_bool(g, key, out);
    if (st == YAN_ERR_NOT_FOUND) { *out = def; return YAN_OK; }
    return st;
}

static bool str_is(const char *s, size_t n, const char *lit) { return strlen(lit) == n && memcmp(s, lit, n) == 0; }

static yan_status load(yan_tokenizer *t, const yan_gguf *g, const char *path) {
    const char *s;
    size_t n;
    yan_status st = yan_gguf_get_str(g, "tokenizer.ggml.model", &s, &n);
    if (st == YAN_ERR_NOT_FOUND)
        return yan_fail(YAN_ERR_FORMAT, "%s: no tokenizer.ggml.model key (this GGUF holds no vocabulary)", path);
    if (st) return st;
    bool bpe = false, wpm = false;
    if (str_is(s, n, "gpt2")) bpe = true;
    else if (str_is(s, n, "bert")) wpm = true;
    else if (!str_is(s, n, "llama"))
        return yan_fail(YAN_ERR_UNSUPPORTED, "%s: tokenizer.ggml.model '%.*s' is not supported (supported: gpt2, llama, bert)",
                        path, (int)(n > 64 ? 64 : n), s);

    char pre_name[65] = "";
    if (bpe) {
        t->kind = YAN_TOK_BPE;
        t->merge_mode = YAN_MERGE_PAIRS;
        st = yan_gguf_get_str(g, "tokenizer.ggml.pre", &s, &n);
        if (st == YAN_ERR_NOT_FOUND)
            return yan_fail(YAN_ERR_UNSUPPORTED, "%s: no tokenizer.ggml.pre key; cannot choose a pre-tokenizer (known: %s)%s", path,
                            yan_pre_names(), " — pass one explicitly (params.pre)");
        if (st) return st;
        if (n < sizeof pre_name) { memcpy(pre_name, s, n); pre_name[n] = 0; }
        t->pre = (n < sizeof pre_name && memchr(s, 0, n) == NULL) ? yan_pre_from_name(pre_name) : -1;
        if (t->pre < 0)
            return yan_fail(YAN_ERR_UNSUPPORTED, "%s: unknown pre-tokenizer '%.*s' in tokenizer.ggml.pre (known: %s)", path,
                            (int)(n > 64 ? 64 : n), s, yan_pre_names());
    } else if (wpm) {
        t->kind = YAN_TOK_WPM;
        t->merge_mode = YAN_MERGE_RANK; /* unused: WordPiece matches whole tokens */
        t->pre = -1;
    } else {
        t->kind = YAN_TOK_SPM;
        t->merge_mode = YAN_MERGE_SCORE;
        t->pre = -1;
        t->byte_fallback = true;
    }

    /* ---- vocabulary arrays */
    yan_gguf_arr toks, scores = {0}, types = {0};
    st = yan_gguf_get_arr(g, "tokenizer.ggml.tokens", &toks);
    if (st == YAN_ERR_NOT_FOUND) return yan_fail(YAN_ERR_FORMAT, "%s: no tokenizer.ggml.tokens array", path);
    if (st) return st;
    if (toks.type != YAN_GGUF_STRING)
        return yan_fail(YAN_ERR_FORMAT, "%s: tokenizer.ggml.tokens is an array of %s, expected string", path, yan_gguf_type_name(toks.type));
    if (toks.n == 0 || toks.n > (1u << 28))
        return yan_fail(YAN_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %llu entries", path, (unsigned long long)toks.n);
    bool has_scores = false, has_types = false;
    st = yan_gguf_get_arr(g, "tokenizer.ggml.scores", &scores);
    if (st == YAN_OK) {
        if ((scores.type != YAN_GGUF_FLOAT32 && scores.type != YAN_GGUF_FLOAT64) || scores.n != toks.n)
            return yan_fail(YAN_ERR_FORMAT, "%s: tokenizer.ggml.scores must be %llu floats (has %llu of type %s)", path,
                            (unsigned long long)toks.n, (unsigned long long)scores.n, yan_gguf_type_name(scores.type));
        has_scores = true;
    } else if (st != YAN_ERR_NOT_FOUND) return st;
    st = yan_gguf_get_arr(g, "tokenizer.ggml.token_type", &types);
    if (st == YAN_OK) {
        if (yan_gguf_type_size(types.type) == 0 || types.type == YAN_GGUF_FLOAT32 || types.type == YAN_GGUF_FLOAT64 ||
            types.type == YAN_GGUF_BOOL || types.n != toks.n)
            return yan_fail(YAN_ERR_FORMAT, "%s: tokenizer.ggml.token_type must be %llu integers (has %llu of type %s)", path,
                            (unsigned long long)toks.n, (unsigned long long)types.n, yan_gguf_type_name(types.type));
        has_types = true;
    } else if (st != YAN_ERR_NOT_FOUND) return st;
    if (!bpe && !wpm && !has_scores) return yan_fail(YAN_ERR_FORMAT, "%s: a 'llama' vocabulary needs tokenizer.ggml.scores", path);

    uint8_t *tmp = NULL;
    size_t tmp_cap = 0;
    for (uint64_t i = 0; i < toks.n; i++) {
        size_t len;
        const char *tok = yan_gguf_arr_str(&toks, i, &len);
        int type = YAN_TT_NORMAL;
        if (has_types) {
            int64_t v = yan_gguf_arr_int(&types, i);
            if (v < YAN_TT_UNDEFINED || v > YAN_TT_BYTE) {
                yan_free(tmp);
                return yan_fail(YAN_ERR_FORMAT, "%s: tokenizer.ggml.token_type[%llu] = %lld is not a token type (0..6)", path,
                                (unsigned long long)i, (long long)v);
            }
            type = v == YAN_TT_UNDEFINED ? YAN_TT_NORMAL : (int)v;
        }
        float score = has_scores ? (float)yan_gguf_arr_float(&scores, i) : 0.0f;
        const void *bytes = tok;
        size_t nb = len;
        if (bpe && type != YAN_TT_CONTROL && type != YAN_TT_USER_DEFINED) {
            if (len > tmp_cap) {
                uint8_t *nt = yan_realloc(tmp, len);
                if (!nt) { yan_free(tmp); return yan_fail(YAN_ERR_NOMEM, "%s: out of memory", path); }
                tmp = nt;
                tmp_cap = len;
            }
            long r = yan_gpt2_unbyte(tok, len, tmp);
            if (r >= 0) { bytes = tmp; nb = (size_t)r; }
            else type = YAN_TT_UNUSED; /* not in the byte alphabet: unreachable, keep its text */
        }
        st = yan_tok_set(t, (int32_t)i, bytes, nb, type, score);
        if (st) { yan_free(tmp); return st; }
    }

    /* ---- merges (all tokens are set, so lookups share one temporary index) */
    if (bpe) {
        yan_gguf_arr merges;
        st = yan_gguf_get_arr(g, "tokenizer.ggml.merges", &merges);
        if (st == YAN_ERR_NOT_FOUND) st = yan_fail(YAN_ERR_FORMAT, "%s: a 'gpt2' vocabulary needs tokenizer.ggml.merges", path);
        else if (st == YAN_OK && merges.type != YAN_GGUF_STRING)
            st = yan_fail(YAN_ERR_FORMAT, "%s: tokenizer.ggml.merges is an array of %s, expected string", path,
                          yan_gguf_type_name(merges.type));
        if (st == YAN_OK) st = yan_tok_index(t);
        for (uint64_t r = 0; st == YAN_OK && r < merges.n; r++) {
            size_t len;
            const char *m = yan_gguf_arr_str(&merges, r, &len);
            const char *sp = len > 1 ? memchr(m + 1, ' ', len - 1) : NULL;
            if (!sp) {
                st = yan_fail(YAN_ERR_FORMAT, "%s: tokenizer.ggml.merges[%llu] '%.*s' is not \"a b\"", path, (unsigned long long)r,
                              (int)(len > 64 ? 64 : len), m);
                break;
            }
            if (len > tmp_cap) {
                uint8_t *nt = yan_realloc(tmp, len);
                if (!nt) { st = yan_fail(YAN_ERR_NOMEM, "%s: out of memory", path); break; }
                tmp = nt;
                tmp_cap = len;
            }
            size_t la = (size_t)(sp - m);
            long na = yan_gpt2_unbyte(m, la, tmp);
            int32_t a = na < 0 ? -1 : yan_tok_lookup(t, tmp, (size_t)na);
            long nb2 = yan_gpt2_unbyte(sp + 1, len - la - 1, tmp);
            int32_t b = nb2 < 0 ? -1 : yan_tok_lookup(t, tmp, (size_t)nb2);
            if (a < 0 || b < 0) {
                st = yan_fail(YAN_ERR_FORMAT, "%s: tokenizer.ggml.merges[%llu] '%.*s' names a token that is not in the vocabulary",
                              path, (unsigned long long)r, (int)(len > 64 ? 64 : len), m);
                break;
            }
            st = yan_tok_add_merge(t, a, b);
        }
    }
    yan_free(tmp);
    if (st) return st;

    /* ---- specials and flags */
    if (wpm) {
        static const struct { int which; int32_t id; } k_bert[] = {
            {YAN_SPECIAL_BOS, 101}, {YAN_SPECIAL_UNK, 100}, {YAN_SPECIAL_SEP, 102},
            {YAN_SPECIAL_PAD, 0},   {YAN_SPECIAL_MASK, 103}};
        for (size_t i = 0; i < sizeof k_bert / sizeof k_bert[0]; i++)
            if ((uint64_t)k_bert[i].id < toks.n) t->special[k_bert[i].which] = k_bert[i].id;
    }
    for (size_t i = 0; i < sizeof k_special_keys / sizeof k_special_keys[0]; i++) {
        int64_t id;
        st = yan_gguf_get_i64(g, k_special_keys[i].key, &id);
        if (st == YAN_ERR_NOT_FOUND) continue;
        if (st) return st;
        t->special[k_special_keys[i].which] = (id >= 0 && (uint64_t)id < toks.n) ? (int32_t)id : -1;
    }
    if (wpm) {
        /* llama.cpp adds [CLS] and [SEP] whatever add_bos_token / add_sep_token say */
        t->add_bos = t->add_sep = true;
        if (t->special[YAN_SPECIAL_CLS] < 0) t->special[YAN_SPECIAL_CLS] = t->special[YAN_SPECIAL_BOS];
        if ((st = opt_bool(g, "tokenizer.ggml.normalizer.lowercase", true, &t->wpm_lowercase))) return st;
        if ((st = opt_bool(g, "tokenizer.ggml.normalizer.strip_accents", t->wpm_lowercase, &t->wpm_strip_accents)))
            return st;
        return YAN_OK;
    }
    if ((st = opt_bool(g, "tokenizer.ggml.add_bos_token", !bpe, &t->add_bos))) return st;
    if ((st = opt_bool(g, "tokenizer.ggml.add_eos_token", false, &t->add_eos))) return st;
    if (!bpe && (st = opt_bool(g, "tokenizer.ggml.add_space_prefix", true, &t->add_space_prefix))) return st;
    bool llama3 = strcmp(pre_name, "llama-bpe") == 0 || strcmp(pre_name, "llama3") == 0;
    if ((st = opt_bool(g, "yan.tokenizer.nfc", bpe && t->pre == YAN_PRE_QWEN2, &t->nfc))) return st;
    if ((st = opt_bool(g, "yan.tokenizer.ignore_merges", bpe && llama3, &t->ignore_merges))) return st;
    return YAN_OK;
}

yan_status yan_load_gguf_vocab(yan_tokenizer *t, const char *path) {
    yan_gguf *g = NULL;
    yan_status st = yan_gguf_open(path, &g);
    if (st) return st;
    st = load(t, g, path);
    yan_gguf_close(g);
    return st;
}

yan_status yan_load_gguf_vocab_mem(yan_tokenizer *t, const uint8_t *buf, size_t len, const char *name) {
    yan_gguf *g = NULL;
    if (!name) name = "<memory>";
    yan_status st = yan_gguf_open_memory(buf, len, name, &g);
    if (st) return st;
    st = load(t, g, name);
    yan_gguf_close(g);
    return st;
}
