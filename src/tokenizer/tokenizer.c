/* tokenizer.c — the tokenizer core: vocabulary tables, BPE encoding, decoding.
 *
 * Encoding pipeline:  text -> split out special/added tokens (exact match)
 *   -> [NFC if the vocabulary asks] -> pre-tokenizer pieces (pretok.c)
 *   -> per piece: whole-token shortcut, per-call cache, or BPE merges -> ids.
 * One merge loop serves the three merge rules (tok.h): each adjacent pair has
 * a priority (lower merges first, leftmost on ties) and a result id.
 * Short pieces use an O(n^2) scan over a small array (fast for words); long
 * pieces (CJK runs, whitespace runs, spm text) use a heap over a linked list.
 * Large inputs are cut at pre-tokenizer-safe points and encoded in parallel.
 * WordPiece vocabularies (kind YAN_TOK_WPM, BERT) hand each stretch between
 * special tokens to wordpiece.c instead, and get SEP appended (add_sep).
 *
 * What it does not do: read files (loaders), Unicode tables (unicode.c),
 * splitting rules (pretok.c).
 * Thread-safety: after yan_tok_finalize a tokenizer is read-only except for
 * the relaxed-atomic memo of which tokens are "merge-consistent"; any number of
 * threads may encode at once. */
#include "tokenizer/tok.h"
#include "tokenizer/pretok.h"
#include "tokenizer/unicode.h"
#include "tokenizer/wordpiece.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>

#define NO_PRIO UINT32_MAX
#define SMALL_PIECE 16
#define PAR_MIN_BYTES (256u << 10)

/* ===================================================================== tables */

typedef struct {
    uint64_t key;   /* (left << 32) | right; 0 = empty slot (pair 0,0 stored with tag) */
    uint32_t rank;
    int32_t result;
} pair_slot;

struct yan_tok_tables {
    uint64_t *vocab_slot; /* open addressing: (hash tag << 32 | id); VSLOT_EMPTY if free */
    size_t vocab_mask;
    uint64_t *filter;     /* one bit per hash value (bits 32.. of the hash): most misses
                             are answered here without touching the big slot table */
    unsigned filter_shift;
    pair_slot *pairs;     /* PAIRS mode */
    size_t pair_mask;
    uint32_t *score_rank; /* SCORE mode: rank of each token by descending score */
    int32_t byte_tok[256];/* token of each single byte (bpe) or <0xAB> (spm); -1 none */
    _Atomic uint8_t *consistent; /* PAIRS mode memo: 0 unknown, 1 token is its own BPE, 2 not */
    int32_t *specials;    /* ids matched in text, longest first */
    int n_specials;
    int n_user_defined;   /* of which added tokens, matched even without YAN_TOKENIZE_SPECIAL */
    uint8_t special_first[256]; /* bit 0: some special/added token starts with the byte;
                                   bit 1: some added (USER_DEFINED) token does */
};

static uint64_t hash_tok(const void *p, size_t n) { return yan_hash_bytes(p, n, 0x5851F42D4C957F2DULL); }

void yan_tok_init(yan_tokenizer *t) {
    memset(t, 0, sizeof *t);
    t->kind = YAN_TOK_BPE;
    t->pre = -1;
    t->merge_mode = YAN_MERGE_PAIRS;
    for (int i = 0; i < YAN_SPECIAL_COUNT; i++) t->special[i] = -1;
}

static void tables_free(yan_tok_tables *tb) {
    if (!tb) return;
    yan_free(tb->vocab_slot);
    yan_free(tb->filter);
    yan_free(tb->pairs);
    yan_free(tb->score_rank);
    yan_free((void *)tb->consistent);
    yan_free(tb->specials);
    yan_free(tb);
}

void yan_tok_release(yan_tokenizer *t) {
    yan_free(t->path);
    yan_free(t->name);
    yan_free(t->tok_off);
    yan_free(t->tok_len);
    yan_free(t->tok_type);
    yan_free(t->tok_score);
    yan_buf_free(&t->blob);
    yan_free(t->merges);
    tables_free(t->tables);
    memset(t, 0, sizeof *t);
}

static const char *tname(const yan_tokenizer *t) { return t->path ? t->path : "tokenizer"; }

static yan_status grow_vocab(yan_tokenizer *t, int32_t need) {
    if (need <= t->cap_vocab) return YAN_OK;
    int32_t cap = t->cap_vocab ? t->cap_vocab : 1024;
    while (cap < need) {
        if (cap > INT32_MAX / 2) { cap = need; break; }
        cap *= 2;
    }
    uint32_t *off = yan_realloc(t->tok_off, (size_t)cap * sizeof *off);
    if (off) t->tok_off = off;
    uint32_t *len = yan_realloc(t->tok_len, (size_t)cap * sizeof *len);
    if (len) t->tok_len = len;
    uint8_t *type = yan_realloc(t->tok_type, (size_t)cap);
    if (type) t->tok_type = type;
    float *score = yan_realloc(t->tok_score, (size_t)cap * sizeof *score);
    if (score) t->tok_score = score;
    if (!off || !len || !type || !score) return yan_fail(YAN_ERR_NOMEM, "%s: out of memory for %d tokens", tname(t), cap);
    for (int32_t i = t->cap_vocab; i < cap; i++) {
        t->tok_off[i] = 0;
        t->tok_len[i] = 0;
        t->tok_type[i] = YAN_TT_UNDEFINED;
        t->tok_score[i] = 0.0f;
    }
    t->cap_vocab = cap;
    return YAN_OK;
}

yan_status yan_tok_set(yan_tokenizer *t, int32_t id, const void *bytes, size_t len, int type, float score) {
    if (id < 0 || id >= (1 << 28))
        return yan_fail(YAN_ERR_FORMAT, "%s: token id %ld out of range", tname(t), (long)id);
    if (len > (1u << 20)) return yan_fail(YAN_ERR_FORMAT, "%s: token %d is %zu bytes long", tname(t), id, len);
    yan_status s = grow_vocab(t, id + 1);
    if (s) return s;
    if (t->tok_type[id] != YAN_TT_UNDEFINED)
        return yan_fail(YAN_ERR_FORMAT, "%s: duplicate token id %d", tname(t), id);
    if (t->blob.len + len > UINT32_MAX) return yan_fail(YAN_ERR_FORMAT, "%s: vocabulary text too large", tname(t));
    t->tok_off[id] = (uint32_t)t->blob.len;
    t->tok_len[id] = (uint32_t)len;
    if (!yan_buf_append(&t->blob, bytes, len)) return yan_fail(YAN_ERR_NOMEM, "%s: out of memory", tname(t));
    t->tok_type[id] = (uint8_t)(type == YAN_TT_UNDEFINED ? YAN_TT_NORMAL : type);
    t->tok_score[id] = score;
    if (id >= t->n_vocab) t->n_vocab = id + 1;
    if (t->tables) { tables_free(t->tables); t->tables = NULL; }
    return YAN_OK;
}

yan_status yan_tok_add_merge(yan_tokenizer *t, int32_t left, int32_t right) {
    if (t->n_merges == t->cap_merges) {
        size_t cap = t->cap_merges ? t->cap_merges * 2 : 4096, bytes;
        if (yan_mul_ovf(cap, 2 * sizeof(int32_t), &bytes)) return yan_fail(YAN_ERR_NOMEM, "%s: too many merges", tname(t));
        int32_t *m = yan_realloc(t->merges, bytes);
        if (!m) return yan_fail(YAN_ERR_NOMEM, "%s: out of memory for merges", tname(t));
        t->merges = m;
        t->cap_merges = cap;
    }
    t->merges[2 * t->n_merges] = left;
    t->merges[2 * t->n_merges + 1] = right;
    t->n_merges++;
    return YAN_OK;
}

/* ------------------------------------------------------------- vocab hash */

static bool tok_is_matchable_text(int type) { return type == YAN_TT_CONTROL || type == YAN_TT_USER_DEFINED; }

/* Normal (mergeable) tokens are indexed by bytes; special tokens are found
 * through the special matcher instead, so "<|endoftext|>" typed as plain
 * text encodes as ordinary text. */
static bool tok_in_vocab_index(const yan_tokenizer *t, int32_t id) {
    int ty = t->tok_type[id];
    return ty == YAN_TT_NORMAL || ty == YAN_TT_BYTE || ty == YAN_TT_UNKNOWN;
}

#define VSLOT_EMPTY UINT64_MAX

/* Tokens are short: a plain loop beats a call to memcmp. */
static inline bool bytes_eq(const uint8_t *a, const uint8_t *b, size_t n) {
    if (n > 16) return memcmp(a, b, n) == 0;
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return false;
    return true;
}

/* The slot keeps the hash's high half as a tag, so a probe that misses
 * rarely touches the token text. */
static int32_t vocab_find(const yan_tokenizer *t, const yan_tok_tables *tb, const uint8_t *s, size_t n) {
    uint64_t h = hash_tok(s, n), tag = h >> 32;
    uint64_t fb = h >> tb->filter_shift;
    if (!(tb->filter[fb >> 6] >> (fb & 63) & 1)) return -1;
    size_t i = (size_t)h & tb->vocab_mask;
    for (;;) {
        uint64_t v = tb->vocab_slot[i];
        if (v == VSLOT_EMPTY) return -1;
        int32_t id = (int32_t)(uint32_t)v;
        if ((v >> 32) == tag && t->tok_len[id] == n && bytes_eq((const uint8_t *)t->blob.data + t->tok_off[id], s, n))
            return id;
        i = (i + 1) & tb->vocab_mask;
    }
}

static yan_status build_vocab_index(const yan_tokenizer *t, yan_tok_tables *tb, bool all_types) {
    size_t cap = 16;
    while (cap < (size_t)t->n_vocab * 2 + 16) cap *= 2;
    tb->vocab_slot = yan_malloc(cap * sizeof(uint64_t));
    if (!tb->vocab_slot) return yan_fail(YAN_ERR_NOMEM, "%s: out of memory", tname(t));
    memset(tb->vocab_slot, 0xFF, cap * sizeof(uint64_t));
    tb->vocab_mask = cap - 1;
    unsigned fbits = 16;
    while (fbits < 24 && ((size_t)1 << fbits) < (size_t)t->n_vocab * 8) fbits++;
    tb->filter = yan_calloc((size_t)1 << (fbits - 6), sizeof(uint64_t));
    if (!tb->filter) return yan_fail(YAN_ERR_NOMEM, "%s: out of memory", tname(t));
    tb->filter_shift = 64 - fbits;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (!all_types && !tok_in_vocab_index(t, id)) continue;
        if (t->tok_type[id] == YAN_TT_UNDEFINED || t->tok_type[id] == YAN_TT_UNUSED) continue;
        size_t n;
        const uint8_t *s = yan_tok_bytes(t, id, &n);
        uint64_t h = hash_tok(s, n);
        size_t i = (size_t)h & tb->vocab_mask;
        for (;;) {
            uint64_t v = tb->vocab_slot[i];
            if (v == VSLOT_EMPTY) {
                uint64_t fb = h >> tb->filter_shift;
                tb->filter[fb >> 6] |= 1ull << (fb & 63);
                tb->vocab_slot[i] = (h >> 32) << 32 | (uint32_t)id;
                break;
            }
            int32_t o = (int32_t)(uint32_t)v;
            if (t->tok_len[o] == n && memcmp(t->blob.data + t->tok_off[o], s, n) == 0) {
                if (all_types) break; /* temporary index: first id wins */
                if (t->kind == YAN_TOK_WPM) {
                    /* converted BERT vocabularies may repeat a text: the last id wins, as in llama.cpp */
                    tb->vocab_slot[i] = (h >> 32) << 32 | (uint32_t)id;
                    break;
                }
                return yan_fail(YAN_ERR_FORMAT, "%s: tokens %d and %d have the same text", tname(t), o, id);
            }
            i = (i + 1) & tb->vocab_mask;
        }
    }
    return YAN_OK;
}

yan_status yan_tok_index(yan_tokenizer *t) {
    if (t->tables && t->tables->vocab_slot) return YAN_OK;
    tables_free(t->tables);
    t->tables = yan_calloc(1, sizeof(yan_tok_tables));
    if (!t->tables) return yan_fail(YAN_ERR_NOMEM, "%s: out of memory", tname(t));
    yan_status s = build_vocab_index(t, t->tables, true);
    if (s) {
        tables_free(t->tables);
        t->tables = NULL;
    }
    return s;
}

int32_t yan_tok_lookup(const yan_tokenizer *t, const void *bytes, size_t len) {
    /* before finalize: a temporary index over everything set so far (the
     * cache is not part of the tokenizer's value, hence the cast) */
    if ((!t->tables || !t->tables->vocab_slot) && yan_tok_index((yan_tokenizer *)t) != YAN_OK) return -1;
    int32_t id = vocab_find(t, t->tables, bytes, len);
    if (id >= 0) return id;
    /* specials are not in the index after finalize: scan them */
    for (int i = 0; i < t->tables->n_specials; i++) {
        int32_t sp = t->tables->specials[i];
        if (t->tok_len[sp] == len && memcmp(t->blob.data + t->tok_off[sp], bytes, len) == 0) return sp;
    }
    return -1;
}

/* -------------------------------------------------------------- pair hash */

static inline size_t pair_hash(uint64_t key, size_t mask) { return (size_t)yan_hash_u64(key) & mask; }
static inline uint64_t pair_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1; }

static inline bool pair_find(const yan_tok_tables *tb, int32_t a, int32_t b, uint32_t *rank, int32_t *result) {
    uint64_t key = pair_key(a, b);
    size_t i = pair_hash(key, tb->pair_mask);
    for (;;) {
        const pair_slot *ps = &tb->pairs[i];
        if (ps->key == key) { *rank = ps->rank; *result = ps->result; return true; }
        if (ps->key == 0) return false;
        i = (i + 1) & tb->pair_mask;
    }
}

static yan_status build_pairs(yan_tokenizer *t, yan_tok_tables *tb) {
    size_t cap = 16;
    while (cap < t->n_merges * 2 + 16) cap *= 2;
    tb->pairs = yan_calloc(cap, sizeof(pair_slot));
    if (!tb->pairs) return yan_fail(YAN_ERR_NOMEM, "%s: out of memory for merges", tname(t));
    tb->pair_mask = cap - 1;
    uint8_t small[256];
    yan_buf big = {0};
    for (size_t r = 0; r < t->n_merges; r++) {
        int32_t a = t->merges[2 * r], b = t->merges[2 * r + 1];
        if (a < 0 || b < 0 || a >= t->n_vocab || b >= t->n_vocab)
            return yan_fail(YAN_ERR_FORMAT, "%s: merge %zu names token ids %d %d outside the vocabulary", tname(t), r, a, b);
        size_t na, nb;
        const uint8_t *sa = yan_tok_bytes(t, a, &na), *sb = yan_tok_bytes(t, b, &nb);
        uint8_t *cat = small;
        if (na + nb > sizeof small) {
            big.len = 0;
            if (!yan_buf_append(&big, sa, na) || !yan_buf_append(&big, sb, nb)) {
                yan_buf_free(&big);
                return yan_fail(YAN_ERR_NOMEM, "%s: out of memory", tname(t));
            }
            cat = (uint8_t *)big.data;
        } else {
            memcpy(small, sa, na);
            memcpy(small + na, sb, nb);
        }
        int32_t res = vocab_find(t, tb, cat, na + nb);
        if (res < 0) {
            yan_buf_free(&big);
            return yan_fail(YAN_ERR_FORMAT, "%s: merge %zu (%d + %d) makes a token that is not in the vocabulary",
                            tname(t), r, a, b);
        }
        uint64_t key = pair_key(a, b);
        size_t i = pair_hash(key, tb->pair_mask);
        while (tb->pairs[i].key != 0 && tb->pairs[i].key != key) i = (i + 1) & tb->pair_mask;
        if (tb->pairs[i].key == key) continue; /* duplicate merge: the first (lower) rank wins */
        tb->pairs[i] = (pair_slot){key, (uint32_t)r, res};
    }
    yan_buf_free(&big);
    return YAN_OK;
}

/* ---------------------------------------------------------------- finalize */

static int cmp_score_desc(const void *a, const void *b, void *ctx) {
    const float *sc = ctx;
    float x = sc[*(const int32_t *)a], y = sc[*(const int32_t *)b];
    return x > y ? -1 : x < y ? 1 : 0;
}

static int cmp_len_desc(const void *a, const void *b, void *ctx) {
    const yan_tokenizer *t = ctx;
    uint32_t x = t->tok_len[*(const int32_t *)a], y = t->tok_len[*(const int32_t *)b];
    return x > y ? -1 : x < y ? 1 : (*(const int32_t *)a - *(const int32_t *)b);
}

static int hexval(int c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

yan_status yan_tok_finalize(yan_tokenizer *t) {
    if (t->tables) { tables_free(t->tables); t->tables = NULL; }
    if (t->n_vocab <= 0) return yan_fail(YAN_ERR_FORMAT, "%s: the vocabulary is empty", tname(t));
    t->max_tok_len = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (t->tok_type[id] == YAN_TT_UNDEFINED) t->tok_type[id] = YAN_TT_UNUSED;
        if (t->tok_len[id] > t->max_tok_len) t->max_tok_len = t->tok_len[id];
    }
    for (int i = 0; i < YAN_SPECIAL_COUNT; i++)
        if (t->special[i] >= t->n_vocab) t->special[i] = -1;
    if (t->kind == YAN_TOK_WPM && t->special[YAN_SPECIAL_UNK] < 0)
        return yan_fail(YAN_ERR_FORMAT, "%s: a WordPiece vocabulary needs an unknown token ([UNK])", tname(t));
    if (t->kind == YAN_TOK_BPE && t->pre < 0)
        return yan_fail(YAN_ERR_UNSUPPORTED, "%s: no pre-tokenizer chosen (known: %s)", tname(t), yan_pre_names());

    yan_tok_tables *tb = yan_calloc(1, sizeof *tb);
    if (!tb) return yan_fail(YAN_ERR_NOMEM, "%s: out of memory", tname(t));
    yan_status s = build_vocab_index(t, tb, false);
    if (s) goto fail;
    if (t->merge_mode == YAN_MERGE_PAIRS) {
        if ((s = build_pairs(t, tb))) goto fail;
        tb->consistent = yan_calloc((size_t)t->n_vocab, 1);
        if (!tb->consistent) { s = yan_fail(YAN_ERR_NOMEM, "%s: out of memory", tname(t)); goto fail; }
    }
    if (t->merge_mode == YAN_MERGE_SCORE) {
        int32_t *order = yan_malloc((size_t)t->n_vocab * sizeof *order);
        tb->score_rank = yan_malloc((size_t)t->n_vocab * sizeof *tb->score_rank);
        if (!order || !tb->score_rank) {
            yan_free(order);
            s = yan_fail(YAN_ERR_NOMEM, "%s: out of memory", tname(t));
            goto fail;
        }
        for (int32_t i = 0; i < t->n_vocab; i++) order[i] = i;
        qsort_r(order, (size_t)t->n_vocab, sizeof *order, cmp_score_desc, t->tok_score);
        uint32_t rank = 0;
        for (int32_t i = 0; i < t->n_vocab; i++) {
            if (i > 0 && t->tok_score[order[i]] != t->tok_score[order[i - 1]]) rank = (uint32_t)i;
            tb->score_rank[order[i]] = rank;
        }
        yan_free(order);
    }
    /* single-byte tokens */
    for (int b = 0; b < 256; b++) {
        tb->byte_tok[b] = -1;
        if (t->kind == YAN_TOK_BPE) {
            uint8_t c = (uint8_t)b;
            tb->byte_tok[b] = vocab_find(t, tb, &c, 1);
        }
    }
    if (t->kind == YAN_TOK_SPM) {
        for (int32_t id = 0; id < t->n_vocab; id++) {
            size_t n;
            const uint8_t *p = yan_tok_bytes(t, id, &n);
            if (t->tok_type[id] == YAN_TT_BYTE && n == 6 && p[0] == '<' && p[1] == '0' && p[2] == 'x' && p[5] == '>') {
                int hi = hexval(p[3]), lo = hexval(p[4]);
                if (hi >= 0 && lo >= 0) tb->byte_tok[hi * 16 + lo] = id;
            }
        }
    } else if (t->kind == YAN_TOK_BPE) {
        int missing = -1;
        for (int b = 0; b < 256; b++)
            if (tb->byte_tok[b] < 0) {
                if (t->special[YAN_SPECIAL_UNK] >= 0) tb->byte_tok[b] = t->special[YAN_SPECIAL_UNK];
                else if (missing < 0) missing = b;
            }
        if (missing >= 0) {
            s = yan_fail(YAN_ERR_FORMAT, "%s: byte 0x%02X has no token and there is no unknown token", tname(t), missing);
            goto fail;
        }
    }
    /* special / added tokens matched in text */
    int n_sp = 0;
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (tok_is_matchable_text(t->tok_type[id]) && t->tok_len[id] > 0) n_sp++;
    if (n_sp) {
        tb->specials = yan_malloc((size_t)n_sp * sizeof(int32_t));
        if (!tb->specials) { s = yan_fail(YAN_ERR_NOMEM, "%s: out of memory", tname(t)); goto fail; }
        for (int32_t id = 0; id < t->n_vocab; id++)
            if (tok_is_matchable_text(t->tok_type[id]) && t->tok_len[id] > 0) {
                tb->specials[tb->n_specials++] = id;
                if (t->tok_type[id] == YAN_TT_USER_DEFINED) tb->n_user_defined++;
                tb->special_first[(uint8_t)t->blob.data[t->tok_off[id]]] |=
                    t->tok_type[id] == YAN_TT_USER_DEFINED ? 3 : 1;
            }
        qsort_r(tb->specials, (size_t)tb->n_specials, sizeof(int32_t), cmp_len_desc, t);
    }
    t->tables = tb;
    return YAN_OK;
fail:
    tables_free(tb);
    return s;
}

/* ================================================================ GPT-2 bytes */

/* Bytes that are printable stand for themselves; the other 68 map to U+0100.. in order. */
static bool gpt2_self(int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

/* The non-printable bytes, in order, are 0x00-0x20 (33), 0x7F-0xA0 (34), 0xAD. */
static uint32_t gpt2_cp_of_byte(int b) {
    if (gpt2_self(b)) return (uint32_t)b;
    int n = b <= 0x20 ? b : b == 0xAD ? 67 : 33 + (b - 0x7F);
    return 0x100u + (uint32_t)n;
}

static int gpt2_byte_of_cp(int32_t cp) {
    if (cp < 0) return -1;
    if (cp < 256) return gpt2_self(cp) ? cp : -1;
    int n = cp - 0x100;
    if (n < 33) return n;
    if (n < 67) return 0x7F + (n - 33);
    return n == 67 ? 0xAD : -1;
}

long yan_gpt2_unbyte(const char *s, size_t len, uint8_t *out) {
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, o = 0;
    while (i < len) {
        if (p[i] < 0x80) {
            if (!gpt2_self(p[i])) return -1;
            out[o++] = p[i++];
            continue;
        }
        int32_t cp;
        int k = yan_utf8_decode(p + i, len - i, &cp);
        int b = gpt2_byte_of_cp(cp);
        if (b < 0) return -1;
        out[o++] = (uint8_t)b;
        i += (size_t)k;
    }
    return (long)o;
}

size_t yan_gpt2_byte(const uint8_t *s, size_t len, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t cp = gpt2_self(s[i]) ? s[i] : gpt2_cp_of_byte(s[i]);
        o += (size_t)yan_utf8_encode(cp, (uint8_t *)out + o);
    }
    return o;
}

/* ===================================================================== encode */

typedef struct {
    yan_token *v;
    size_t n, cap;
    bool oom;
} tokvec;

static inline bool tv_push(tokvec *tv, yan_token id) {
    if (YAN_UNLIKELY(tv->n == tv->cap)) {
        size_t cap = tv->cap ? tv->cap * 2 : 256;
        yan_token *v = yan_realloc(tv->v, cap * sizeof *v);
        if (!v) { tv->oom = true; return false; }
        tv->v = v;
        tv->cap = cap;
    }
    tv->v[tv->n++] = id;
    return true;
}

/* Per-call cache of piece -> ids for large inputs (words repeat). */
typedef struct {
    uint64_t *hash;   /* 0 = empty */
    uint32_t *key_off, *key_len, *val_off, *val_len;
    size_t mask, used;
    yan_buf keys;
    tokvec vals;
} piece_cache;

static bool cache_init(piece_cache *c, size_t slots) {
    memset(c, 0, sizeof *c);
    c->hash = yan_calloc(slots, sizeof *c->hash);
    c->key_off = yan_malloc(slots * sizeof(uint32_t));
    c->key_len = yan_malloc(slots * sizeof(uint32_t));
    c->val_off = yan_malloc(slots * sizeof(uint32_t));
    c->val_len = yan_malloc(slots * sizeof(uint32_t));
    c->mask = slots - 1;
    return c->hash && c->key_off && c->key_len && c->val_off && c->val_len;
}

static void cache_free(piece_cache *c) {
    yan_free(c->hash);
    yan_free(c->key_off);
    yan_free(c->key_len);
    yan_free(c->val_off);
    yan_free(c->val_len);
    yan_buf_free(&c->keys);
    yan_free(c->vals.v);
    memset(c, 0, sizeof *c);
}

static inline size_t cache_find(const piece_cache *c, const uint8_t *s, size_t n, uint64_t h, bool *found) {
    size_t i = (size_t)h & c->mask;
    for (;;) {
        if (c->hash[i] == 0) { *found = false; return i; }
        if (c->hash[i] == h && c->key_len[i] == n && memcmp(c->keys.data + c->key_off[i], s, n) == 0) {
            *found = true;
            return i;
        }
        i = (i + 1) & c->mask;
    }
}

/* The merge workspace for one piece. */
typedef struct {
    uint32_t *start;  /* (n+1) byte offset of part i within the piece */
    int32_t *id;      /* (n) token of part i, -1 if none (spm) */
    uint32_t *prio;   /* (n) priority of pair (i, i+1) */
    int32_t *res;     /* (n) result token of pair (i, i+1) */
    int32_t *prev, *next;
    uint64_t *heap;   /* (prio << 32 | part index) min-heap */
    size_t cap;
    pair_slot *memo;  /* RANK/SCORE modes: direct-mapped memo of pair lookups */
} merge_ws;

#define MEMO_BITS 15
static inline size_t memo_index(uint64_t key) { return (size_t)((key * 0x9E3779B97F4A7C15ULL) >> (64 - MEMO_BITS)); }

static void ws_free(merge_ws *w) {
    yan_free(w->memo);
    yan_free(w->start);
    yan_free(w->id);
    yan_free(w->prio);
    yan_free(w->res);
    yan_free(w->prev);
    yan_free(w->next);
    yan_free(w->heap);
    memset(w, 0, sizeof *w);
}

static bool ws_reserve(merge_ws *w, size_t n) {
    if (n + 1 <= w->cap) return true;
    size_t cap = w->cap ? w->cap : 64;
    while (cap < n + 1) cap *= 2;
    pair_slot *memo = w->memo;
    w->memo = NULL;
    ws_free(w);
    w->memo = memo;
    w->start = yan_malloc(cap * sizeof *w->start);
    w->id = yan_malloc(cap * sizeof *w->id);
    w->prio = yan_malloc(cap * sizeof *w->prio);
    w->res = yan_malloc(cap * sizeof *w->res);
    w->prev = yan_malloc(cap * sizeof *w->prev);
    w->next = yan_malloc(cap * sizeof *w->next);
    w->heap = yan_malloc(cap * sizeof *w->heap);
    if (!w->start || !w->id || !w->prio || !w->res || !w->prev || !w->next || !w->heap) {
        ws_free(w);
        return false;
    }
    w->cap = cap;
    return true;
}

/* Priority and result of merging the parts [a0,a1) and [a1,a2) of piece s.
 * In RANK/SCORE modes the answer depends only on the two ids when both parts
 * are tokens, so it is memoised per encoding call: text repeats pairs far
 * more often than it repeats pieces (CJK above all). */
static inline __attribute__((always_inline)) uint32_t pair_prio(const yan_tokenizer *t, merge_ws *w, const uint8_t *s, uint32_t a0, uint32_t a2,
                                 int32_t ida, int32_t idb, int32_t *res) {
    const yan_tok_tables *tb = t->tables;
    if (t->merge_mode == YAN_MERGE_PAIRS) {
        uint32_t r;
        if (ida >= 0 && idb >= 0 && pair_find(tb, ida, idb, &r, res)) return r;
        return NO_PRIO;
    }
    pair_slot *m = NULL;
    uint64_t key = 0;
    if (w->memo && ida >= 0 && idb >= 0) {
        key = pair_key(ida, idb);
        m = &w->memo[memo_index(key)];
        if (m->key == key) {
            *res = m->result;
            return m->rank;
        }
    }
    int32_t id = vocab_find(t, tb, s + a0, a2 - a0);
    uint32_t prio = id < 0 ? NO_PRIO : t->merge_mode == YAN_MERGE_RANK ? (uint32_t)id : tb->score_rank[id];
    if (m) *m = (pair_slot){key, prio, id};
    *res = id;
    return prio;
}

/* Small pieces: array scan, leftmost minimum, remove merged neighbour. */
/* The first pass over a piece's pairs touches up to n memo slots at random:
 * start all the loads before using any of them. */
static inline void prefetch_pairs(const yan_tokenizer *t, const merge_ws *w, size_t n) {
    if (!w->memo || t->merge_mode == YAN_MERGE_PAIRS) return;
    for (size_t i = 0; i + 1 < n; i++)
        __builtin_prefetch(&w->memo[memo_index(pair_key(w->id[i], w->id[i + 1]))]);
}

static size_t merge_scan(const yan_tokenizer *t, const uint8_t *s, merge_ws *w, size_t n) {
    prefetch_pairs(t, w, n);
    for (size_t i = 0; i + 1 < n; i++)
        w->prio[i] = pair_prio(t, w, s, w->start[i], w->start[i + 2], w->id[i], w->id[i + 1], &w->res[i]);
    while (n > 1) {
        uint32_t best = NO_PRIO;
        size_t bi = 0;
        for (size_t i = 0; i + 1 < n; i++)
            if (w->prio[i] < best) { best = w->prio[i]; bi = i; }
        if (best == NO_PRIO) break;
        w->id[bi] = w->res[bi];
        /* drop part bi+1 */
        memmove(&w->start[bi + 1], &w->start[bi + 2], (n - bi - 1) * sizeof *w->start);
        memmove(&w->id[bi + 1], &w->id[bi + 2], (n - bi - 2) * sizeof *w->id);
        memmove(&w->prio[bi + 1], &w->prio[bi + 2], (n - bi - 2) * sizeof *w->prio);
        memmove(&w->res[bi + 1], &w->res[bi + 2], (n - bi - 2) * sizeof *w->res);
        n--;
        if (bi + 1 < n)
            w->prio[bi] = pair_prio(t, w, s, w->start[bi], w->start[bi + 2], w->id[bi], w->id[bi + 1], &w->res[bi]);
        else
            w->prio[bi] = NO_PRIO;
        if (bi > 0)
            w->prio[bi - 1] = pair_prio(t, w, s, w->start[bi - 1], w->start[bi + 1], w->id[bi - 1], w->id[bi], &w->res[bi - 1]);
    }
    return n;
}

static inline void heap_push(uint64_t *h, size_t *n, uint64_t v) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p] <= v) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static inline uint64_t heap_pop(uint64_t *h, size_t *n) {
    uint64_t top = h[0], v = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && h[c + 1] < h[c]) c++;
        if (v <= h[c]) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = v;
    return top;
}

/* Long pieces: linked list of parts and a lazy min-heap keyed (prio, index).
 * Part indices are byte order, so the index breaks ties leftmost-first. */
static size_t merge_heap(const yan_tokenizer *t, const uint8_t *s, merge_ws *w, size_t n) {
    size_t hn = 0;
    uint32_t end_of_piece = w->start[n];
    for (size_t i = 0; i < n; i++) {
        w->prev[i] = (int32_t)i - 1;
        w->next[i] = i + 1 < n ? (int32_t)(i + 1) : -1;
    }
    /* start[i] stays the start of part i; its end is start[next[i]] */
#define PEND(i) (w->next[i] >= 0 ? w->start[w->next[i]] : end_of_piece)
    prefetch_pairs(t, w, n);
    for (size_t i = 0; i + 1 < n; i++) {
        w->prio[i] = pair_prio(t, w, s, w->start[i], PEND(i + 1), w->id[i], w->id[i + 1], &w->res[i]);
        if (w->prio[i] != NO_PRIO) heap_push(w->heap, &hn, (uint64_t)w->prio[i] << 32 | i);
    }
    if (n) w->prio[n - 1] = NO_PRIO;
    while (hn) {
        uint64_t top = heap_pop(w->heap, &hn);
        uint32_t i = (uint32_t)top, pr = (uint32_t)(top >> 32);
        if (w->prio[i] != pr || w->next[i] < 0) continue; /* stale */
        int32_t j = w->next[i];
        w->id[i] = w->res[i];
        w->next[i] = w->next[j];
        if (w->next[j] >= 0) w->prev[w->next[j]] = (int32_t)i;
        w->prio[j] = NO_PRIO;
        int32_t k = w->next[i];
        if (k >= 0) {
            w->prio[i] = pair_prio(t, w, s, w->start[i], PEND(k), w->id[i], w->id[k], &w->res[i]);
            if (w->prio[i] != NO_PRIO) heap_push(w->heap, &hn, (uint64_t)w->prio[i] << 32 | i);
        } else {
            w->prio[i] = NO_PRIO;
        }
        int32_t p = w->prev[i];
        if (p >= 0) {
            w->prio[p] = pair_prio(t, w, s, w->start[p], PEND(i), w->id[p], w->id[i], &w->res[p]);
            if (w->prio[p] != NO_PRIO) heap_push(w->heap, &hn, (uint64_t)w->prio[p] << 32 | (uint32_t)p);
        }
    }
#undef PEND
    /* compact the surviving parts into array order */
    size_t m = 0;
    for (int32_t i = 0; i >= 0; i = w->next[i]) {
        w->start[m] = w->start[i];
        w->id[m] = w->id[i];
        m++;
        if (w->next[i] < 0) break;
    }
    w->start[m] = end_of_piece;
    return m;
}

/* Run BPE over piece s[0..n) and append the ids. */
static bool bpe_piece(const yan_tokenizer *t, const uint8_t *s, size_t n, merge_ws *w, tokvec *out, size_t heap_from) {
    const yan_tok_tables *tb = t->tables;
    if (!ws_reserve(w, n)) return false;
    size_t parts = 0;
    if (t->kind == YAN_TOK_SPM) {
        for (size_t i = 0; i < n;) {
            int32_t cp;
            int k = yan_utf8_decode(s + i, n - i, &cp);
            w->start[parts] = (uint32_t)i;
            w->id[parts] = vocab_find(t, tb, s + i, (size_t)k);
            parts++;
            i += (size_t)k;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            w->start[parts] = (uint32_t)i;
            w->id[parts] = tb->byte_tok[s[i]];
            parts++;
        }
    }
    w->start[parts] = (uint32_t)n;
    parts = parts >= heap_from ? merge_heap(t, s, w, parts) : merge_scan(t, s, w, parts);
    for (size_t i = 0; i < parts; i++) {
        if (w->id[i] >= 0) {
            if (!tv_push(out, w->id[i])) return false;
            continue;
        }
        /* spm: a part that is no token falls back to byte tokens, else unk */
        for (uint32_t b = w->start[i]; b < w->start[i + 1]; b++) {
            int32_t bt = tb->byte_tok[s[b]];
            if (bt < 0) bt = t->special[YAN_SPECIAL_UNK];
            if (bt >= 0 && !tv_push(out, bt)) return false;
            if (bt == t->special[YAN_SPECIAL_UNK]) break; /* one unk per unknown character */
        }
    }
    return true;
}

typedef struct {
    const yan_tokenizer *t;
    merge_ws ws;
    piece_cache cache;
    bool use_cache;
    tokvec tmp;
    size_t heap_from;
} enc_state;

/* Is token id (which equals a whole piece) what BPE would produce for it? */
static bool token_is_consistent(enc_state *st, int32_t id, const uint8_t *s, size_t n) {
    const yan_tokenizer *t = st->t;
    _Atomic uint8_t *memo = t->tables->consistent;
    uint8_t v = atomic_load_explicit(&memo[id], memory_order_relaxed);
    if (v) return v == 1;
    st->tmp.n = 0;
    if (!bpe_piece(t, s, n, &st->ws, &st->tmp, st->heap_from)) return false; /* treated as not consistent */
    bool ok = st->tmp.n == 1 && st->tmp.v[0] == id;
    atomic_store_explicit(&memo[id], ok ? 1 : 2, memory_order_relaxed);
    return ok;
}

static bool encode_piece(enc_state *st, const uint8_t *s, size_t n, tokvec *out) {
    const yan_tokenizer *t = st->t;
    const yan_tok_tables *tb = t->tables;
    if (n == 1 && t->kind == YAN_TOK_BPE) return tv_push(out, tb->byte_tok[s[0]]);
    if (n <= 64) {
        int32_t id = vocab_find(t, tb, s, n);
        if (id >= 0) {
            if (t->merge_mode == YAN_MERGE_RANK || t->ignore_merges) return tv_push(out, id);
            if (t->merge_mode == YAN_MERGE_PAIRS && token_is_consistent(st, id, s, n)) return tv_push(out, id);
        }
    }
    if (!st->use_cache || n > 256) return bpe_piece(t, s, n, &st->ws, out, st->heap_from);
    piece_cache *c = &st->cache;
    uint64_t h = hash_tok(s, n) | 1;
    bool found;
    size_t slot = cache_find(c, s, n, h, &found);
    if (found) {
        for (uint32_t i = 0; i < c->val_len[slot]; i++)
            if (!tv_push(out, c->vals.v[c->val_off[slot] + i])) return false;
        return true;
    }
    size_t before = out->n;
    if (!bpe_piece(t, s, n, &st->ws, out, st->heap_from)) return false;
    if (c->used * 4 < (c->mask + 1) * 3 && c->keys.len + n < UINT32_MAX && c->vals.n + (out->n - before) < UINT32_MAX) {
        size_t koff = c->keys.len, voff = c->vals.n;
        if (!yan_buf_append(&c->keys, s, n)) return true; /* cache is best effort */
        for (size_t i = before; i < out->n; i++)
            if (!tv_push(&c->vals, out->v[i])) return true;
        c->hash[slot] = h;
        c->key_off[slot] = (uint32_t)koff;
        c->key_len[slot] = (uint32_t)n;
        c->val_off[slot] = (uint32_t)voff;
        c->val_len[slot] = (uint32_t)(out->n - before);
        c->used++;
    }
    return true;
}

static bool tv_push_cb(void *ud, yan_token id) { return tv_push(ud, id); }

/* Encode one stretch of ordinary text (no special tokens inside). */
static bool encode_text(enc_state *st, const uint8_t *s, size_t n, tokvec *out) {
    const yan_tokenizer *t = st->t;
    if (t->kind == YAN_TOK_WPM) return yan_wpm_encode(t, s, n, tv_push_cb, out);
    if (t->kind == YAN_TOK_SPM) return n == 0 || bpe_piece(t, s, n, &st->ws, out, st->heap_from);
    size_t pos = 0;
    while (pos < n) {
        size_t end = yan_pretok_next(t->pre, s, n, pos);
        if (!encode_piece(st, s + pos, end - pos, out)) return false;
        pos = end;
    }
    return true;
}

static void enc_state_init(enc_state *st, const yan_tokenizer *t, size_t text_len) {
    memset(st, 0, sizeof *st);
    st->t = t;
    st->heap_from = t->heap_from ? t->heap_from : SMALL_PIECE;
    if (text_len >= 4096 && t->merge_mode != YAN_MERGE_PAIRS) {
        st->ws.memo = yan_malloc(sizeof(pair_slot) << MEMO_BITS);
        if (st->ws.memo) memset(st->ws.memo, 0, sizeof(pair_slot) << MEMO_BITS);
    }
    if (text_len >= 16384) {
        size_t slots = 4096; /* distinct pieces grow far slower than text */
        while (slots < text_len / 64 && slots < (1u << 16)) slots *= 2;
        st->use_cache = cache_init(&st->cache, slots);
        if (!st->use_cache) cache_free(&st->cache);
    }
}

static void enc_state_free(enc_state *st) {
    ws_free(&st->ws);
    cache_free(&st->cache);
    yan_free(st->tmp.v);
}

/* Parallel encoding of one big stretch, cut at pre-tokenizer-safe points. */
typedef struct {
    const yan_tokenizer *t;
    const uint8_t *s;
    size_t *cut;      /* (n_chunks + 1) */
    tokvec *outs;     /* (n_chunks) */
    _Atomic int failed;
} par_job;

static void par_chunk(void *ud, int k) {
    par_job *j = ud;
    enc_state st;
    size_t a = j->cut[k], b = j->cut[k + 1];
    enc_state_init(&st, j->t, b - a);
    /* most text is 3-5 bytes a token: size the output once, not by doubling */
    tokvec *o = &j->outs[k];
    o->cap = (b - a) / 3 + 64;
    o->v = yan_malloc(o->cap * sizeof *o->v);
    if (!o->v) o->cap = 0;
    if (!encode_text(&st, j->s + a, b - a, &j->outs[k]) || j->outs[k].oom) atomic_store(&j->failed, 1);
    enc_state_free(&st);
}

static bool encode_text_par(const yan_tokenizer *t, enc_state *st, const uint8_t *s, size_t n, tokvec *out) {
    int nt = yan_threads_resolve(t->n_threads);
    if (nt <= 1 || n < PAR_MIN_BYTES || t->kind != YAN_TOK_BPE) return encode_text(st, s, n, out);
    /* one contiguous chunk per thread: each keeps its own cache and memo warm */
    size_t want = (size_t)nt;
    if (want > n / (64u << 10)) want = n / (64u << 10);
    size_t *cut = yan_malloc((want + 1) * sizeof *cut);
    tokvec *outs = yan_calloc(want, sizeof *outs);
    if (!cut || !outs) {
        yan_free(cut);
        yan_free(outs);
        return encode_text(st, s, n, out);
    }
    size_t nc = 0;
    cut[0] = 0;
    for (size_t k = 1; k < want; k++) {
        size_t p = yan_pretok_safe_split(t->pre, s, n, n / want * k);
        if (p > cut[nc] && p < n) cut[++nc] = p;
    }
    cut[++nc] = n;
    par_job j = {t, s, cut, outs, 0};
    yan_parallel_for(nt, (int)nc, par_chunk, &j);
    bool ok = !atomic_load(&j.failed);
    size_t total = out->n;
    for (size_t k = 0; k < nc; k++) total += outs[k].n;
    if (ok && total > out->cap) {
        yan_token *v = yan_realloc(out->v, total * sizeof *v);
        if (v) {
            out->v = v;
            out->cap = total;
        } else {
            ok = false;
        }
    }
    for (size_t k = 0; k < nc; k++) {
        if (ok && outs[k].n) {
            memcpy(out->v + out->n, outs[k].v, outs[k].n * sizeof *out->v);
            out->n += outs[k].n;
        }
        yan_free(outs[k].v);
    }
    yan_free(cut);
    yan_free(outs);
    return ok;
}

/* Find the next special token occurrence at or after pos; returns its id and start. */
static int32_t find_special(const yan_tokenizer *t, const uint8_t *s, size_t n, size_t pos, bool control, size_t *at) {
    const yan_tok_tables *tb = t->tables;
    uint8_t want = control ? 1 : 2;
    if (!tb->n_specials || (!control && !tb->n_user_defined)) return -1;
    for (size_t i = pos; i < n; i++) {
        if (!(tb->special_first[s[i]] & want)) continue;
        for (int k = 0; k < tb->n_specials; k++) {
            int32_t id = tb->specials[k];
            size_t len = t->tok_len[id];
            if (len > n - i) continue;
            if (!control && t->tok_type[id] == YAN_TT_CONTROL) continue;
            if (memcmp(s + i, t->blob.data + t->tok_off[id], len) == 0) {
                *at = i;
                return id;
            }
        }
    }
    return -1;
}

static const uint8_t SPM_SPACE[3] = {0xE2, 0x96, 0x81}; /* U+2581 "▁" */

/* Normalise one ordinary stretch the way the vocabulary expects (NFC, spm
 * space escaping) into buf; returns false on OOM. *p / *n are updated. */
static bool normalise(const yan_tokenizer *t, const uint8_t **p, size_t *n, bool first, yan_buf *buf) {
    if (t->nfc && !yan_nfc_is_quick(*p, *n)) {
        buf->len = 0;
        if (yan_nfc(*p, *n, buf) != YAN_OK) return false;
        *p = (const uint8_t *)buf->data;
        *n = buf->len;
    }
    if (t->kind == YAN_TOK_SPM) {
        yan_buf esc = {0};
        if ((first && t->add_space_prefix && *n > 0) && !yan_buf_append(&esc, SPM_SPACE, 3)) return false;
        for (size_t i = 0; i < *n; i++) {
            if ((*p)[i] == ' ') yan_buf_append(&esc, SPM_SPACE, 3);
            else yan_buf_putc(&esc, (char)(*p)[i]);
        }
        if (esc.oom) {
            yan_buf_free(&esc);
            return false;
        }
        yan_buf_free(buf);
        *buf = esc;
        *p = (const uint8_t *)buf->data;
        *n = buf->len;
    }
    return true;
}

static bool encode_all(const yan_tokenizer *t, const uint8_t *s, size_t n, uint32_t flags, tokvec *out) {
    enc_state st;
    enc_state_init(&st, t, n);
    yan_buf norm = {0};
    bool ok = true;
    if ((flags & YAN_TOKENIZE_ADD_BOS) && t->add_bos && t->special[YAN_SPECIAL_BOS] >= 0)
        ok = tv_push(out, t->special[YAN_SPECIAL_BOS]);
    bool control = (flags & YAN_TOKENIZE_SPECIAL) != 0;
    size_t pos = 0;
    bool first = true;
    while (ok && pos <= n) {
        size_t at = n;
        int32_t sp = find_special(t, s, n, pos, control, &at);
        if (sp < 0) at = n;
        const uint8_t *p = s + pos;
        size_t len = at - pos;
        if (len) {
            ok = normalise(t, &p, &len, first, &norm);
            if (ok) ok = p == s + pos ? encode_text_par(t, &st, p, len, out) : encode_text(&st, p, len, out);
        }
        first = false;
        if (sp < 0) break;
        ok = ok && tv_push(out, sp);
        pos = at + t->tok_len[sp];
    }
    if (ok && t->add_eos && (flags & YAN_TOKENIZE_ADD_BOS) && t->special[YAN_SPECIAL_EOS] >= 0)
        ok = tv_push(out, t->special[YAN_SPECIAL_EOS]);
    if (ok && t->add_sep && (flags & YAN_TOKENIZE_ADD_BOS) && t->special[YAN_SPECIAL_SEP] >= 0)
        ok = tv_push(out, t->special[YAN_SPECIAL_SEP]);
    yan_buf_free(&norm);
    enc_state_free(&st);
    return ok && !out->oom;
}

/* =================================================================== public */

yan_tokenizer_params yan_tokenizer_params_default(void) {
    yan_tokenizer_params p = {0};
    return p;
}

const char *yan_pretokenizer_names(void) { return yan_pre_names(); }

/* Recognise a vocabulary file from its content: 'G' GGUF, 'H' Hugging Face
 * tokenizer.json (a "model" key holding an object), 'E' GPT-2 encoder.json
 * (a flat object; its keys may include the word "model"), '0' empty,
 * 'T' anything else (tiktoken ranks). */
static int sniff_format(const uint8_t *b, size_t n) {
    if (n == 0) return '0';
    if (n >= 4 && memcmp(b, "GGUF", 4) == 0) return 'G';
    size_t i = 0;
    while (i < n && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t')) i++;
    if (i == n || b[i] != '{') return 'T';
    for (const uint8_t *p = b; (p = memmem(p, n - (size_t)(p - b), "\"model\"", 7)) != NULL; p += 7) {
        const uint8_t *q = p + 7, *end = b + n;
        while (q < end && (*q == ' ' || *q == '\n' || *q == '\r' || *q == '\t')) q++;
        if (q == end || *q++ != ':') continue;
        while (q < end && (*q == ' ' || *q == '\n' || *q == '\r' || *q == '\t')) q++;
        if (q < end && *q == '{') return 'H';
    }
    return 'E';
}

yan_status yan_tokenizer_load(const char *path, const yan_tokenizer_params *p, yan_tokenizer **out) {
    *out = NULL;
    yan_tokenizer_params dp = yan_tokenizer_params_default();
    if (!p) p = &dp;
    if (!path) return yan_fail(YAN_ERR_INVALID_ARG, "no vocabulary path given");
    yan_tokenizer *t = yan_malloc(sizeof *t);
    if (!t) return yan_fail(YAN_ERR_NOMEM, "%s: out of memory", path);
    yan_tok_init(t);
    t->path = yan_strdup(path);
    t->n_threads = p->n_threads;
    yan_status s = YAN_OK;
    yan_mmap m = {0};
    if (!t->path) { s = yan_fail(YAN_ERR_NOMEM, "%s: out of memory", path); goto done; }
    if ((s = yan_mmap_open(path, &m))) goto done;
    switch (sniff_format(m.data, m.len)) {
    case 'G':
        yan_mmap_close(&m);
        s = yan_load_gguf_vocab(t, path);
        break;
    case 'H': s = yan_load_hf(t, m.data, m.len, path); break;
    case 'E': s = yan_load_gpt2(t, m.data, m.len, path); break;
    case '0': s = yan_fail(YAN_ERR_FORMAT, "%s: the file is empty", path); break;
    default: s = yan_load_tiktoken(t, m.data, m.len, path); break;
    }
    yan_mmap_close(&m);
    if (s) goto done;
    if (p->pre) {
        int pre = yan_pre_from_name(p->pre);
        if (pre < 0) {
            s = yan_fail(YAN_ERR_UNSUPPORTED, "%s: unknown pre-tokenizer '%s' (known: %s)", path, p->pre, yan_pre_names());
            goto done;
        }
        if (t->kind == YAN_TOK_SPM) {
            s = yan_fail(YAN_ERR_UNSUPPORTED, "%s: a SentencePiece-style vocabulary takes no pre-tokenizer", path);
            goto done;
        }
        t->pre = pre;
    }
    s = yan_tok_finalize(t);
done:
    if (s) {
        yan_tok_release(t);
        yan_free(t);
        return s;
    }
    *out = t;
    return YAN_OK;
}

void yan_tokenizer_free(yan_tokenizer *t) {
    if (!t) return;
    yan_tok_release(t);
    yan_free(t);
}

int32_t yan_tokenizer_n_vocab(const yan_tokenizer *t) { return t->n_vocab; }
const char *yan_tokenizer_kind(const yan_tokenizer *t) {
    return t->kind == YAN_TOK_SPM ? "spm" : t->kind == YAN_TOK_WPM ? "wpm" : "bpe";
}
const char *yan_tokenizer_pre(const yan_tokenizer *t) { return t->kind != YAN_TOK_BPE ? "none" : yan_pre_name(t->pre); }

yan_token yan_tokenizer_special(const yan_tokenizer *t, yan_special which) {
    if ((int)which < 0 || which >= YAN_SPECIAL_COUNT) return -1;
    return t->special[which];
}

yan_token yan_tokenizer_find(const yan_tokenizer *t, const char *s, size_t len) {
    return yan_tok_lookup(t, s, len);
}

yan_status yan_tokenize_alloc(const yan_tokenizer *t, const char *text, size_t len, uint32_t flags, yan_token **out,
                              size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    tokvec tv = {0};
    if (!encode_all(t, (const uint8_t *)text, len, flags, &tv)) {
        yan_free(tv.v);
        return yan_fail(YAN_ERR_NOMEM, "out of memory while tokenizing %zu bytes", len);
    }
    *out = tv.v;
    *n_out = tv.n;
    return YAN_OK;
}

void yan_free_tokens(yan_token *ids) { yan_free(ids); }

int64_t yan_tokenize(const yan_tokenizer *t, const char *text, size_t len, yan_token *out, size_t cap, uint32_t flags) {
    yan_token *ids;
    size_t n;
    if (yan_tokenize_alloc(t, text, len, flags, &ids, &n) != YAN_OK) return INT64_MIN;
    if (n > cap) {
        yan_free(ids);
        return -(int64_t)n;
    }
    if (n) memcpy(out, ids, n * sizeof *ids);
    yan_free(ids);
    return (int64_t)n;
}

/* ===================================================================== decode */

/* Append the bytes token id stands for. spm: "▁" -> ' ', <0xAB> -> byte;
 * wpm: "▁" -> ' ' (a word-initial piece). */
static bool piece_bytes(const yan_tokenizer *t, yan_token id, yan_buf *b, bool skip_special) {
    size_t n;
    const uint8_t *p = yan_tok_bytes(t, id, &n);
    int ty = t->tok_type[id];
    if (skip_special && ty == YAN_TT_CONTROL) return true;
    if (ty == YAN_TT_UNUSED) return true;
    if (t->kind == YAN_TOK_SPM || t->kind == YAN_TOK_WPM) {
        if (ty == YAN_TT_BYTE && n == 6) {
            int hi = hexval(p[3]), lo = hexval(p[4]);
            if (hi >= 0 && lo >= 0) return yan_buf_putc(b, (char)(hi * 16 + lo));
        }
        if (ty == YAN_TT_NORMAL || ty == YAN_TT_USER_DEFINED) {
            for (size_t i = 0; i < n; i++) {
                if (i + 3 <= n && memcmp(p + i, SPM_SPACE, 3) == 0) {
                    yan_buf_putc(b, ' ');
                    i += 2;
                } else {
                    yan_buf_putc(b, (char)p[i]);
                }
            }
            return !b->oom;
        }
    }
    return yan_buf_append(b, p, n);
}

int64_t yan_token_to_piece(const yan_tokenizer *t, yan_token id, char *buf, size_t cap) {
    if (id < 0 || id >= t->n_vocab) return INT64_MIN;
    yan_buf b = {0};
    if (!piece_bytes(t, id, &b, false)) {
        yan_buf_free(&b);
        return INT64_MIN;
    }
    int64_t r = (int64_t)b.len;
    if (b.len > cap) r = -(int64_t)b.len;
    else if (b.len) memcpy(buf, b.data, b.len);
    yan_buf_free(&b);
    return r;
}

int64_t yan_detokenize(const yan_tokenizer *t, const yan_token *ids, size_t n, char *buf, size_t cap, bool skip_special) {
    yan_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab) {
            yan_buf_free(&b);
            yan_fail(YAN_ERR_INVALID_ARG, "token id %d out of range (vocabulary has %d)", ids[i], t->n_vocab);
            return INT64_MIN;
        }
        size_t before = b.len;
        piece_bytes(t, ids[i], &b, skip_special);
        /* spm: the space prefix added at encode time is not part of the text
         * (wpm: nor is the space of the first word-initial piece) */
        if (((t->kind == YAN_TOK_SPM && t->add_space_prefix) || t->kind == YAN_TOK_WPM) && before == 0 && b.len > 0 &&
            b.data[0] == ' ' && t->tok_type[ids[i]] == YAN_TT_NORMAL) {
            memmove(b.data, b.data + 1, b.len - 1);
            b.len--;
        }
    }
    if (b.oom) {
        yan_buf_free(&b);
        return INT64_MIN;
    }
    int64_t r = (int64_t)b.len;
    if (b.len + 1 > cap) r = -(int64_t)(b.len + 1);
    else {
        if (b.len) memcpy(buf, b.data, b.len);
        buf[b.len] = 0;
    }
    yan_buf_free(&b);
    return r;
}

struct yan_decoder {
    const yan_tokenizer *t;
    yan_buf held;   /* bytes of an incomplete character */
    bool started;
};

yan_status yan_decoder_new(const yan_tokenizer *t, yan_decoder **out) {
    *out = yan_calloc(1, sizeof **out);
    if (!*out) return yan_fail(YAN_ERR_NOMEM, "out of memory");
    (*out)->t = t;
    return YAN_OK;
}

void yan_decoder_free(yan_decoder *d) {
    if (!d) return;
    yan_buf_free(&d->held);
    yan_free(d);
}

int64_t yan_decoder_push(yan_decoder *d, yan_token id, char *buf, size_t cap) {
    const yan_tokenizer *t = d->t;
    if (id < 0 || id >= t->n_vocab) return INT64_MIN;
    yan_buf b = {0};
    yan_buf_append(&b, d->held.data, d->held.len);
    size_t before = b.len;
    piece_bytes(t, id, &b, false);
    if (((t->kind == YAN_TOK_SPM && t->add_space_prefix) || t->kind == YAN_TOK_WPM) && !d->started && b.len > before &&
        b.data[before] == ' ' && t->tok_type[id] == YAN_TT_NORMAL) {
        memmove(b.data + before, b.data + before + 1, b.len - before - 1);
        b.len--;
    }
    if (b.oom) {
        yan_buf_free(&b);
        return INT64_MIN;
    }
    size_t emit = yan_utf8_complete_prefix((const uint8_t *)b.data, b.len);
    if (emit + 1 > cap) {
        yan_buf_free(&b);
        return -(int64_t)(emit + 1);
    }
    if (emit) memcpy(buf, b.data, emit);
    buf[emit] = 0;
    d->held.len = 0;
    if (!yan_buf_append(&d->held, b.data + emit, b.len - emit)) {
        yan_buf_free(&b);
        return INT64_MIN;
    }
    d->started = true;
    yan_buf_free(&b);
    return (int64_t)emit;
}

int64_t yan_decoder_flush(yan_decoder *d, char *buf, size_t cap) {
    size_t n = d->held.len;
    if (n + 1 > cap) return -(int64_t)(n + 1);
    if (n) memcpy(buf, d->held.data, n);
    buf[n] = 0;
    d->held.len = 0;
    return (int64_t)n;
}
