/* save_gguf.c — write a tokenizer as GGUF tokenizer.ggml.* metadata, the
 * inverse of load_gguf.c (contract in tok_gguf.h).
 *
 * RANK vocabularies (tiktoken) have no merge list; llama.cpp's BPE needs one.
 * We derive it the way Hugging Face's tiktoken converter does: for each
 * NORMAL token of rank r (= id) with two or more bytes, run rank-BPE over its
 * own bytes using only tokens of rank < r; if that ends in exactly two parts
 * (a, b), then "a b" is the merge that creates the token, and merges are
 * listed in order of r. Merge-list BPE then picks, at every step, the pair
 * whose merged token has the lowest rank, as tiktoken does, so encodings
 * agree (a token reachable only through a different split is unreachable in
 * tiktoken too). Tokens whose own BPE does not end in two parts get no merge.
 * Since tiktoken looks a whole piece up before merging, the file also gets
 * yan.tokenizer.ignore_merges = true (llama.cpp does the same for
 * "llama-bpe"). */
#include "tokenizer/pretok.h"
#include "tokenizer/tok_gguf.h"

#include <stdio.h>

const char *yan_tok_gguf_pre_name(int pre) {
    switch (pre) {
    case YAN_PRE_GPT2: return "gpt-2";
    case YAN_PRE_CL100K: return "llama-bpe";
    case YAN_PRE_O200K: return "gpt-4o";
    case YAN_PRE_QWEN2: return "qwen2";
    default: return NULL;
    }
}

/* ------------------------------------------------------- merge derivation */

typedef struct {
    int32_t *v;
    size_t n, cap;
} ivec;

static bool ivec_push2(ivec *a, int32_t x, int32_t y) {
    if (a->n + 2 > a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 8192;
        int32_t *nv = yan_realloc(a->v, nc * sizeof *nv);
        if (!nv) return false;
        a->v = nv;
        a->cap = nc;
    }
    a->v[a->n++] = x;
    a->v[a->n++] = y;
    return true;
}

/* Rank-BPE of token id's bytes restricted to ranks < id; appends the final
 * two parts to out when there are exactly two. Scratch arrays hold >= len. */
static bool derive_one(const yan_tokenizer *t, int32_t id, size_t *start, int32_t *prank, ivec *out) {
    size_t len;
    const uint8_t *s = yan_tok_bytes(t, id, &len);
    size_t np = len;
    for (size_t i = 0; i < len; i++) start[i] = i;
    /* prank[i]: rank of merging part i with part i+1 (INT32_MAX = none) */
#define PEND(i) ((i) + 1 < np ? start[(i) + 1] : len)
#define PRANK(i) do { \
        int32_t r_ = (i) + 1 < np ? yan_tok_lookup(t, s + start[i], PEND((i) + 1) - start[i]) : -1; \
        prank[i] = (r_ >= 0 && r_ < id) ? r_ : INT32_MAX; } while (0)
    for (size_t i = 0; i < np; i++) PRANK(i);
    while (np > 2) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < np; i++)
            if (prank[i] < prank[best]) best = i;
        if (prank[best] == INT32_MAX) break;
        /* merge part best with best+1 */
        memmove(start + best + 1, start + best + 2, (np - best - 2) * sizeof *start);
        memmove(prank + best + 1, prank + best + 2, (np - best - 2) * sizeof *prank);
        np--;
        PRANK(best);
        if (best > 0) PRANK(best - 1);
    }
    if (np != 2) return true;
    int32_t a = yan_tok_lookup(t, s, start[1]);
    int32_t b = yan_tok_lookup(t, s + start[1], len - start[1]);
#undef PEND
#undef PRANK
    if (a < 0 || b < 0 || a >= id || b >= id) return true;
    return ivec_push2(out, a, b);
}

static yan_status derive_rank_merges(const yan_tokenizer *t, ivec *out) {
    size_t maxlen = 2;
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (t->tok_len[id] > maxlen) maxlen = t->tok_len[id];
    size_t *start = yan_malloc(maxlen * sizeof *start);
    int32_t *prank = yan_malloc(maxlen * sizeof *prank);
    yan_status st = YAN_OK;
    if (!start || !prank) st = yan_fail(YAN_ERR_NOMEM, "out of memory deriving merges");
    for (int32_t id = 0; st == YAN_OK && id < t->n_vocab; id++) {
        if (t->tok_type[id] != YAN_TT_NORMAL || t->tok_len[id] < 2) continue;
        if (!derive_one(t, id, start, prank, out)) st = yan_fail(YAN_ERR_NOMEM, "out of memory deriving merges");
    }
    yan_free(start);
    yan_free(prank);
    return st;
}

/* -------------------------------------------------------------- the keys */

/* Build n strings in one blob; ptrs/lens point into it afterwards. */
typedef struct {
    yan_buf blob;
    size_t *off, *len;
    size_t n, cap;
} strlist;

static bool sl_add(strlist *l, const void *p, size_t n) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 4096;
        size_t *no = yan_realloc(l->off, nc * sizeof *no);
        if (!no) return false;
        l->off = no;
        size_t *nl = yan_realloc(l->len, nc * sizeof *nl);
        if (!nl) return false;
        l->len = nl;
        l->cap = nc;
    }
    l->off[l->n] = l->blob.len;
    l->len[l->n] = n;
    l->n++;
    return yan_buf_append(&l->blob, p, n);
}

static yan_status sl_write(strlist *l, yan_gguf_writer *w, const char *key) {
    const char **ptrs = yan_malloc((l->n + 1) * sizeof *ptrs);
    if (!ptrs) return yan_fail(YAN_ERR_NOMEM, "out of memory writing %s", key);
    for (size_t i = 0; i < l->n; i++) ptrs[i] = l->blob.data + l->off[i];
    yan_status st = yan_gguf_w_set_arr_str(w, key, ptrs, l->len, l->n);
    yan_free(ptrs);
    return st;
}

static void sl_free(strlist *l) {
    yan_buf_free(&l->blob);
    yan_free(l->off);
    yan_free(l->len);
}

static const char *const k_special_keys[YAN_SPECIAL_COUNT] = {
    [YAN_SPECIAL_BOS] = "tokenizer.ggml.bos_token_id",     [YAN_SPECIAL_EOS] = "tokenizer.ggml.eos_token_id",
    [YAN_SPECIAL_EOT] = "tokenizer.ggml.eot_token_id",     [YAN_SPECIAL_UNK] = "tokenizer.ggml.unknown_token_id",
    [YAN_SPECIAL_PAD] = "tokenizer.ggml.padding_token_id", [YAN_SPECIAL_SEP] = "tokenizer.ggml.seperator_token_id",
    [YAN_SPECIAL_CLS] = "tokenizer.ggml.cls_token_id",     [YAN_SPECIAL_MASK] = "tokenizer.ggml.mask_token_id",
};

yan_status yan_tok_save_gguf_kv(const yan_tokenizer *t, yan_gguf_writer *w) {
    bool bpe = t->kind == YAN_TOK_BPE, wpm = t->kind == YAN_TOK_WPM;
    const char *pre = NULL;
    if (bpe) {
        pre = yan_tok_gguf_pre_name(t->pre);
        if (!pre) return yan_fail(YAN_ERR_UNSUPPORTED, "tokenizer: pre-tokenizer %d has no GGUF name", t->pre);
    }
    strlist toks = {0}, merges = {0};
    ivec derived = {0};
    int32_t *types = yan_malloc(((size_t)t->n_vocab + 1) * sizeof *types);
    char *enc = NULL;
    size_t enc_cap = 0;
    yan_status st = YAN_OK;
#define CK(x) do { if ((st = (x)) != YAN_OK) goto done; } while (0)
#define OOM() do { st = yan_fail(YAN_ERR_NOMEM, "out of memory writing the vocabulary"); goto done; } while (0)
    if (!types) OOM();
    const char *model = bpe ? "gpt2" : wpm ? "bert" : "llama";
    CK(yan_gguf_w_set_str(w, "tokenizer.ggml.model", model, strlen(model)));
    if (bpe) CK(yan_gguf_w_set_str(w, "tokenizer.ggml.pre", pre, strlen(pre)));
    for (int32_t id = 0; id < t->n_vocab; id++) {
        int ty = t->tok_type[id];
        if (ty == YAN_TT_UNDEFINED) ty = YAN_TT_UNUSED;
        types[id] = ty;
        size_t len;
        const uint8_t *s = yan_tok_bytes(t, id, &len);
        if (ty == YAN_TT_UNUSED && len == 0) {
            char pad[32];
            int k = snprintf(pad, sizeof pad, "[PAD%d]", (int)id);
            if (!sl_add(&toks, pad, (size_t)k)) OOM();
        } else if (!bpe || ty == YAN_TT_CONTROL || ty == YAN_TT_USER_DEFINED) {
            if (!sl_add(&toks, s, len)) OOM();
        } else {
            if (2 * len > enc_cap) {
                char *ne = yan_realloc(enc, 2 * len + 1);
                if (!ne) OOM();
                enc = ne;
                enc_cap = 2 * len + 1;
            }
            size_t k = yan_gpt2_byte(s, len, enc);
            if (!sl_add(&toks, enc, k)) OOM();
        }
    }
    if (toks.blob.oom) OOM();
    CK(sl_write(&toks, w, "tokenizer.ggml.tokens"));
    CK(yan_gguf_w_set_arr(w, "tokenizer.ggml.token_type", YAN_GGUF_INT32, types, (size_t)t->n_vocab));
    if (wpm) {
        CK(yan_gguf_w_set_bool(w, "tokenizer.ggml.normalizer.lowercase", t->wpm_lowercase));
        CK(yan_gguf_w_set_bool(w, "tokenizer.ggml.normalizer.strip_accents", t->wpm_strip_accents));
    } else if (!bpe) {
        float *sc = t->tok_score;
        float *zeros = NULL;
        if (!sc) {
            zeros = yan_calloc((size_t)t->n_vocab + 1, sizeof *zeros);
            if (!zeros) OOM();
            sc = zeros;
        }
        st = yan_gguf_w_set_arr(w, "tokenizer.ggml.scores", YAN_GGUF_FLOAT32, sc, (size_t)t->n_vocab);
        yan_free(zeros);
        if (st) goto done;
        CK(yan_gguf_w_set_bool(w, "tokenizer.ggml.add_space_prefix", t->add_space_prefix));
    } else {
        const int32_t *mp = t->merges;
        size_t nm = t->n_merges;
        if (t->merge_mode == YAN_MERGE_RANK) {
            CK(derive_rank_merges(t, &derived));
            mp = derived.v;
            nm = derived.n / 2;
        }
        for (size_t r = 0; r < nm; r++) {
            size_t la, lb;
            const uint8_t *a = yan_tok_bytes(t, mp[2 * r], &la), *b = yan_tok_bytes(t, mp[2 * r + 1], &lb);
            size_t need = 2 * (la + lb) + 2;
            if (need > enc_cap) {
                char *ne = yan_realloc(enc, need);
                if (!ne) OOM();
                enc = ne;
                enc_cap = need;
            }
            size_t k = yan_gpt2_byte(a, la, enc);
            enc[k++] = ' ';
            k += yan_gpt2_byte(b, lb, enc + k);
            if (!sl_add(&merges, enc, k)) OOM();
        }
        if (merges.blob.oom) OOM();
        CK(sl_write(&merges, w, "tokenizer.ggml.merges"));
    }
    for (int i = 0; i < YAN_SPECIAL_COUNT; i++)
        if (t->special[i] >= 0) CK(yan_gguf_w_set_u32(w, k_special_keys[i], (uint32_t)t->special[i]));
    CK(yan_gguf_w_set_bool(w, "tokenizer.ggml.add_bos_token", t->add_bos));
    CK(yan_gguf_w_set_bool(w, "tokenizer.ggml.add_eos_token", t->add_eos));
    if (bpe) {
        CK(yan_gguf_w_set_bool(w, "yan.tokenizer.nfc", t->nfc));
        CK(yan_gguf_w_set_bool(w, "yan.tokenizer.ignore_merges", t->ignore_merges || t->merge_mode == YAN_MERGE_RANK));
    }
#undef CK
#undef OOM
done:
    yan_free(types);
    yan_free(enc);
    yan_free(derived.v);
    sl_free(&toks);
    sl_free(&merges);
    return st;
}

yan_status yan_tok_write_gguf(const yan_tokenizer *t, const char *path) {
    yan_gguf_writer *w = NULL;
    yan_status st = yan_gguf_writer_new(&w);
    if (st) return st;
    st = yan_gguf_w_set_str(w, "general.architecture", YAN_TOK_GGUF_ARCH, strlen(YAN_TOK_GGUF_ARCH));
    if (!st) st = yan_gguf_w_set_u32(w, "general.alignment", YAN_GGUF_DEFAULT_ALIGNMENT);
    if (!st && t->name) st = yan_gguf_w_set_str(w, "general.name", t->name, strlen(t->name));
    if (!st) st = yan_tok_save_gguf_kv(t, w);
    if (!st) st = yan_gguf_w_write(w, path);
    yan_gguf_writer_free(w);
    return st;
}
