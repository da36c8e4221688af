/* test_bert.c — BERT-family embedding models:
 *  - WordPiece (src/tokenizer/wordpiece.c) on tricky text against ids
 *    derived by hand from Hugging Face's BertNormalizer / BertPreTokenizer /
 *    WordPiece rules on a small vocabulary in llama.cpp's GGUF form
 *    ("▁word" word-initial, "iece" continuation): lowercasing, accents
 *    (precomposed and combining), punctuation and ASCII symbols, CJK,
 *    controls and invisible format characters, unknown words, words over
 *    100 characters, special-token text, cased vocabularies, Hangul
 *    decomposition, decoding, the GGUF round trip and llama.cpp's defaults;
 *  - the bert forward pass (src/model: embeddings + segment + positions,
 *    LayerNorm, bidirectional attention with biases, post-norm layers, GELU
 *    FFN) against a naive f64 reference written here, for mean, CLS and
 *    last pooling, separate and fused q/k/v, through yan_embed and
 *    yan_engine_embed (the /v1/embeddings path), within 1e-4;
 *  - a bert model refuses yan_eval and engine steps with a clear error;
 *    pooling keys are honoured for decoder models too. */
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "model/engine.h"
#include "model/model.h"
#include "tensor/tensor.h"
#include "tokenizer/tok.h"
#include "tokenizer/tok_gguf.h"
#include "tokenizer/wordpiece.h"

/* ============================================================ tokenizer */

/* ids 0-4: [PAD] [UNK] [CLS] [SEP] [MASK]; then the pieces below, in order */
static const char *const k_pieces[] = {
    "\xE2\x96\x81hello", "\xE2\x96\x81world", "\xE2\x96\x81un",   "aff",   "able",
    "\xE2\x96\x81play",  "ing",               "\xE2\x96\x81,",    "\xE2\x96\x81!", "\xE2\x96\x81.",
    "\xE2\x96\x81" "cafe", "\xE2\x96\x81naive", "\xE2\x96\x81中", "\xE2\x96\x81文", "\xE2\x96\x81" "a",
    "a",                 "\xE2\x96\x81" "b",  "b",                "\xE2\x96\x81hel", "lo",
    "\xE2\x96\x81r\xC3\xA9sum\xC3\xA9", "\xE2\x96\x81" "Hello", "\xE2\x96\x81\xE1\x84\x92", "\xE1\x85\xA1",
    "\xE1\x86\xAB",      "\xE2\x96\x81[",     "\xE2\x96\x81]",
};
enum {
    T_PAD, T_UNK, T_CLS, T_SEP, T_MASK, T_HELLO, T_WORLD, T_UN, T_AFF, T_ABLE, T_PLAY, T_ING, T_COMMA, T_BANG, T_DOT,
    T_CAFE, T_NAIVE, T_ZHONG, T_WEN, T_A_W, T_A_C, T_B_W, T_B_C, T_HEL, T_LO, T_RESUME, T_HELLO_CASED, T_HIEUH,
    T_JA, T_JN, T_LBR, T_RBR, T_N
};
#define N_PIECES ((int)(sizeof k_pieces / sizeof k_pieces[0]))

static void make_wpm(yan_tokenizer *t, bool lowercase) {
    static const char *const sp[5] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    yan_tok_init(t);
    t->kind = YAN_TOK_WPM;
    t->merge_mode = YAN_MERGE_RANK;
    t->wpm_lowercase = t->wpm_strip_accents = lowercase;
    t->add_bos = t->add_sep = true;
    for (int i = 0; i < 5; i++) CHECK(yan_tok_set(t, i, sp[i], strlen(sp[i]), YAN_TT_CONTROL, 0) == YAN_OK);
    for (int i = 0; i < N_PIECES; i++)
        CHECK(yan_tok_set(t, 5 + i, k_pieces[i], strlen(k_pieces[i]), YAN_TT_NORMAL, 0) == YAN_OK);
    t->special[YAN_SPECIAL_PAD] = T_PAD;
    t->special[YAN_SPECIAL_UNK] = T_UNK;
    t->special[YAN_SPECIAL_BOS] = t->special[YAN_SPECIAL_CLS] = T_CLS;
    t->special[YAN_SPECIAL_SEP] = T_SEP;
    t->special[YAN_SPECIAL_MASK] = T_MASK;
    CHECK(yan_tok_finalize(t) == YAN_OK);
}

/* Encode text and compare with the n expected ids; prints both on a mismatch. */
static bool enc_is(const yan_tokenizer *t, const char *text, uint32_t flags, const yan_token *want, size_t n) {
    yan_token *ids = NULL;
    size_t got = 0;
    CHECK(yan_tokenize_alloc(t, text, strlen(text), flags, &ids, &got) == YAN_OK);
    bool ok = got == n && (n == 0 || !memcmp(ids, want, n * sizeof *ids));
    if (!ok) {
        fprintf(stderr, "  '%s': got", text);
        for (size_t i = 0; i < got; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, ", want");
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", want[i]);
        fprintf(stderr, "\n");
    }
    yan_free_tokens(ids);
    return ok;
}

#define ENC(t, text, flags, ...)                                                        \
    do {                                                                                \
        const yan_token want_[] = {__VA_ARGS__};                                        \
        CHECK(enc_is(t, text, flags, want_, sizeof want_ / sizeof want_[0]));           \
    } while (0)

TEST(wordpiece_basic_and_punctuation) {
    yan_tokenizer t;
    make_wpm(&t, true);
    CHECK(!strcmp(yan_tokenizer_kind(&t), "wpm") && !strcmp(yan_tokenizer_pre(&t), "none"));
    /* [CLS] ... [SEP] with ADD_BOS; lowercased; punctuation splits words */
    ENC(&t, "Hello, World!", YAN_TOKENIZE_ADD_BOS, T_CLS, T_HELLO, T_COMMA, T_WORLD, T_BANG, T_SEP);
    ENC(&t, "hello,world.", 0, T_HELLO, T_COMMA, T_WORLD, T_DOT);
    /* greedy longest match first: un + aff + able, play + ing, hel + lo is not
     * taken when the whole word exists */
    ENC(&t, "unaffable playing HELLO", 0, T_UN, T_AFF, T_ABLE, T_PLAY, T_ING, T_HELLO);
    ENC(&t, "hello", 0, T_HELLO);
    ENC(&t, "hellolo", 0, T_HELLO, T_LO);
    /* ASCII symbols are punctuation to BERT: "$" becomes its own (unknown) word */
    ENC(&t, "a$b", 0, T_A_W, T_UNK, T_B_W);
    ENC(&t, "a+b=ab", 0, T_A_W, T_UNK, T_B_W, T_UNK, T_A_W, T_B_C);
    /* whitespace of every kind separates; nothing at all gives nothing */
    ENC(&t, " \t hello\u3000world\n\r\u2029 ", 0, T_HELLO, T_WORLD);
    ENC(&t, "", YAN_TOKENIZE_ADD_BOS, T_CLS, T_SEP);
    CHECK(enc_is(&t, "  \n ", 0, NULL, 0));
    yan_tok_release(&t);
}

TEST(wordpiece_accents_cjk_controls) {
    yan_tokenizer t;
    make_wpm(&t, true);
    /* accents stripped when lowercasing: precomposed and combining forms */
    ENC(&t, "Café NAÏVE", 0, T_CAFE, T_NAIVE);
    ENC(&t, "Cafe\xCC\x81 nai\xCC\x88ve", 0, T_CAFE, T_NAIVE);
    ENC(&t, "résumé", 0, T_UNK); /* "resume" is not in the vocabulary; "▁résumé" cannot match any more */
    /* CJK ideographs are words of one character; an unknown one is [UNK] */
    ENC(&t, "中文字", 0, T_ZHONG, T_WEN, T_UNK);
    ENC(&t, "a中b", 0, T_A_W, T_ZHONG, T_B_W);
    /* controls, NUL, U+FFFD, invalid bytes and format characters (ZWSP, a
     * soft hyphen) vanish without splitting the word */
    ENC(&t, "hel\x01lo", 0, T_HELLO);
    ENC(&t, "hel\xE2\x80\x8Blo he\xC2\xADllo", 0, T_HELLO, T_HELLO);
    ENC(&t, "hel\xEF\xBF\xBDlo hel\xFFlo", 0, T_HELLO, T_HELLO);
    {
        const char s[] = {'h', 'e', 'l', 0, 'l', 'o'};
        yan_token ids[8];
        CHECK(yan_tokenize(&t, s, sizeof s, ids, 8, 0) == 1 && ids[0] == T_HELLO);
    }
    /* a Hangul syllable decomposes fully (U+D55C -> U+1112 U+1161 U+11AB); llama.cpp keeps only U+1112 */
    ENC(&t, "한", 0, T_HIEUH, T_JA, T_JN);
    yan_tok_release(&t);
}

TEST(wordpiece_unknown_and_long_words) {
    yan_tokenizer t;
    make_wpm(&t, true);
    /* one position that matches nothing makes the whole word unknown */
    ENC(&t, "helloq world", 0, T_UNK, T_WORLD);
    ENC(&t, "xyz", YAN_TOKENIZE_ADD_BOS, T_CLS, T_UNK, T_SEP);
    /* 100 characters is a word; 101 is [UNK] (max_input_chars_per_word) */
    char w[128];
    memset(w, 'a', sizeof w);
    yan_token *ids;
    size_t n;
    YAN_TESTCASE(YAN_WPM_MAX_WORD_CHARS == 100); /* a word exactly at the limit */
    CHECK(yan_tokenize_alloc(&t, w, 100, 0, &ids, &n) == YAN_OK);
    CHECK(n == 100 && ids[0] == T_A_W && ids[1] == T_A_C && ids[99] == T_A_C);
    yan_free_tokens(ids);
    CHECK(yan_tokenize_alloc(&t, w, 101, 0, &ids, &n) == YAN_OK);
    CHECK(n == 1 && ids[0] == T_UNK);
    yan_free_tokens(ids);
    /* the limit counts characters after normalisation, not bytes: 100 "ä" (200 bytes, 300 decomposed) */
    char u[512];
    size_t k = 0;
    for (int i = 0; i < 100; i++) { u[k++] = (char)0xC3; u[k++] = (char)0xA4; }
    CHECK(yan_tokenize_alloc(&t, u, k, 0, &ids, &n) == YAN_OK);
    CHECK(n == 100 && ids[0] == T_A_W && ids[99] == T_A_C);
    yan_free_tokens(ids);
    yan_tok_release(&t);
}

TEST(wordpiece_special_text_cased_and_decode) {
    yan_tokenizer t;
    make_wpm(&t, true);
    /* special-token text only with YAN_TOKENIZE_SPECIAL; otherwise "[" "cls" "]" */
    ENC(&t, "[CLS] hello", YAN_TOKENIZE_SPECIAL, T_CLS, T_HELLO);
    ENC(&t, "[CLS] hello", 0, T_LBR, T_UNK, T_RBR, T_HELLO);
    /* decoding: "▁" is a space, the first one dropped; specials skipped on request */
    const yan_token ids[] = {T_CLS, T_HELLO, T_COMMA, T_UN, T_AFF, T_ABLE, T_SEP};
    char buf[128];
    CHECK(yan_detokenize(&t, ids, 7, buf, sizeof buf, true) > 0 && !strcmp(buf, "hello , unaffable"));
    CHECK(yan_detokenize(&t, ids, 7, buf, sizeof buf, false) > 0 && !strcmp(buf, "[CLS] hello , unaffable[SEP]"));
    yan_tok_release(&t);
    /* a cased vocabulary: no lowercasing, accents kept */
    make_wpm(&t, false);
    ENC(&t, "Hello hello HELLO", 0, T_HELLO_CASED, T_HELLO, T_UNK);
    ENC(&t, "résumé Café", 0, T_RESUME, T_UNK);
    yan_tok_release(&t);
}

/* Any bytes encode to valid ids (no crash, no read past the text), and a
 * failed allocation at any point is a clean YAN_ERR_NOMEM without leaks. */
TEST(wordpiece_random_bytes_and_alloc_failures) {
    yan_tokenizer t;
    make_wpm(&t, true);
    static const char *const parts[] = {"hello", " ", "a", "\xC3\xA9", "e\xCC\x81", "\xE4\xB8\xAD", ",", "[CLS]",
                                        "\xED\x95\x9C", "\xF0\x9F\x99\x82", "\x80", "\xE4\xB8", "\t", "\xEF\xBF\xBD", "ab"};
    uint64_t r = 99;
    for (int it = 0; it < 300; it++) {
        char buf[256];
        size_t n = 0;
        for (int k = 0; k < 24; k++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            const char *p = parts[(r >> 33) % (sizeof parts / sizeof parts[0])];
            size_t l = strlen(p);
            if (n + l > sizeof buf) break;
            memcpy(buf + n, p, l);
            n += l;
        }
        if (it % 3 == 0) /* plain random bytes too */
            for (size_t k = 0; k < n; k++) { r = r * 6364136223846793005ull + 1; buf[k] = (char)(r >> 56); }
        char *heap = malloc(n ? n : 1); /* exact-size copy: ASan sees any over-read */
        memcpy(heap, buf, n);
        yan_token *ids;
        size_t m;
        CHECK(yan_tokenize_alloc(&t, heap, n, (r >> 40) & 1 ? YAN_TOKENIZE_SPECIAL : 0, &ids, &m) == YAN_OK);
        for (size_t k = 0; k < m; k++) CHECK(ids[k] >= 0 && ids[k] < t.n_vocab);
        yan_free_tokens(ids);
        free(heap);
    }
    size_t base = yan_alloc_used();
    const char *text = "Hello, unaffable wor\xC3\xA9ld! \xE4\xB8\xAD\xE6\x96\x87 playing xyz";
    int failures = 0;
    for (long k = 1; k < 40; k++) {
        yan_alloc_fail_after(k);
        yan_token *ids = NULL;
        size_t m;
        yan_status st = yan_tokenize_alloc(&t, text, strlen(text), YAN_TOKENIZE_ADD_BOS, &ids, &m);
        yan_alloc_fail_after(0);
        CHECK(st == YAN_OK || st == YAN_ERR_NOMEM);
        if (st == YAN_OK) yan_free_tokens(ids);
        else failures++;
        CHECK(yan_alloc_used() == base);
    }
    CHECK(failures > 0);
    yan_tok_release(&t);
}

/* The GGUF form: written by save_gguf.c, read by load_gguf.c; llama.cpp's
 * defaults when the normaliser keys and special ids are missing. */
TEST(wordpiece_gguf_round_trip) {
    yan_tokenizer t;
    make_wpm(&t, true);
    yan_gguf_writer *w;
    CHECK(yan_gguf_writer_new(&w) == YAN_OK);
    CHECK(yan_gguf_w_set_str(w, "general.architecture", "bert", 4) == YAN_OK);
    CHECK(yan_tok_save_gguf_kv(&t, w) == YAN_OK);
    yan_buf b = {0};
    CHECK(yan_gguf_w_to_buf(w, &b) == YAN_OK);
    yan_gguf_writer_free(w);
    yan_tokenizer r;
    yan_tok_init(&r);
    CHECK(yan_load_gguf_vocab_mem(&r, (const uint8_t *)b.data, b.len, "rt.gguf") == YAN_OK);
    CHECK(yan_tok_finalize(&r) == YAN_OK);
    CHECK(r.kind == YAN_TOK_WPM && r.wpm_lowercase && r.wpm_strip_accents && r.add_bos && r.add_sep);
    CHECK(r.special[YAN_SPECIAL_CLS] == T_CLS && r.special[YAN_SPECIAL_SEP] == T_SEP && r.special[YAN_SPECIAL_UNK] == T_UNK);
    ENC(&r, "Unaffable, café 中!", YAN_TOKENIZE_ADD_BOS, T_CLS, T_UN, T_AFF, T_ABLE, T_COMMA, T_CAFE, T_ZHONG, T_BANG, T_SEP);
    yan_tok_release(&r);
    yan_buf_free(&b);

    /* only tokens and types: lowercase on, BERT's default ids where they fit;
     * a text that appears twice is not an error */
    const char **toks = malloc(110 * sizeof *toks);
    size_t *lens = malloc(110 * sizeof *lens);
    int32_t types[110];
    char names[110][16];
    for (int i = 0; i < 110; i++) {
        snprintf(names[i], sizeof names[i], "\xE2\x96\x81w%d", i);
        types[i] = 1;
    }
    snprintf(names[100], sizeof names[100], "[UNK]");
    snprintf(names[101], sizeof names[101], "[CLS]");
    snprintf(names[102], sizeof names[102], "[SEP]");
    snprintf(names[7], sizeof names[7], "\xE2\x96\x81hello");
    snprintf(names[9], sizeof names[9], "\xE2\x96\x81hello"); /* a repeated text: the last id wins, as in llama.cpp */
    types[100] = types[101] = types[102] = 3;
    for (int i = 0; i < 110; i++) {
        toks[i] = names[i];
        lens[i] = strlen(names[i]);
    }
    CHECK(yan_gguf_writer_new(&w) == YAN_OK);
    CHECK(yan_gguf_w_set_str(w, "tokenizer.ggml.model", "bert", 4) == YAN_OK);
    CHECK(yan_gguf_w_set_arr_str(w, "tokenizer.ggml.tokens", toks, lens, 110) == YAN_OK);
    CHECK(yan_gguf_w_set_arr(w, "tokenizer.ggml.token_type", YAN_GGUF_INT32, types, 110) == YAN_OK);
    b = (yan_buf){0};
    CHECK(yan_gguf_w_to_buf(w, &b) == YAN_OK);
    yan_gguf_writer_free(w);
    yan_tok_init(&r);
    CHECK(yan_load_gguf_vocab_mem(&r, (const uint8_t *)b.data, b.len, "defaults.gguf") == YAN_OK);
    CHECK(yan_tok_finalize(&r) == YAN_OK);
    CHECK(r.wpm_lowercase && r.wpm_strip_accents);
    ENC(&r, "HELLO there", YAN_TOKENIZE_ADD_BOS, 101, 9, 100, 102);
    yan_tok_release(&r);
    yan_buf_free(&b);
    free(toks);
    free(lens);
    yan_tok_release(&t);
}

/* ================================================================ model */

static uint64_t g_brng;
static float brand(void) { /* uniform in [-1, 1) */
    uint64_t z = (g_brng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)((double)(z >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

typedef struct {
    char name[64];
    int64_t ne0, ne1;
    int n_dims;
    float *f;
} bt;

enum { BC = 64, BL = 2, BNH = 4, BHD = 16, BFF = 96, BCTX = 64 };

typedef struct {
    bt t[64];
    int n;
    int V;
    bool fused;   /* attn_qkv instead of attn_q/k/v */
    bool types;   /* token_types present */
} bmodel;

static bt *bget(bmodel *m, const char *name) {
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->t[i].name, name)) return &m->t[i];
    return NULL;
}

static void badd(bmodel *m, const char *name, int64_t ne0, int64_t ne1, float scale, float bias) {
    bt *t = &m->t[m->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ne0 = ne0;
    t->ne1 = ne1;
    t->n_dims = ne1 > 1 ? 2 : 1;
    t->f = malloc((size_t)(ne0 * ne1) * sizeof(float));
    for (int64_t i = 0; i < ne0 * ne1; i++) t->f[i] = bias + scale * brand();
}

static void bfree(bmodel *m) {
    for (int i = 0; i < m->n; i++) free(m->t[i].f);
    m->n = 0;
}

/* pooling_type < 0: no key; omit: a tensor left out of the file (or NULL). */
static void write_bert(bmodel *m, const char *path, int pooling_type, bool fused, bool types, const char *omit) {
    memset(m, 0, sizeof *m);
    m->fused = fused;
    m->types = types;
    g_brng = 777;
    yan_tokenizer tok;
    make_wpm(&tok, true);
    m->V = tok.n_vocab;
    const int C = BC;
    const float ms = sqrtf(3.0f / C); /* unit-gain matrices */
    badd(m, "token_embd.weight", C, m->V, 1.0f, 0);
    badd(m, "position_embd.weight", C, BCTX, 0.5f, 0);
    if (types) badd(m, "token_types.weight", C, 2, 0.5f, 0);
    badd(m, "token_embd_norm.weight", C, 1, 0.2f, 1.0f);
    badd(m, "token_embd_norm.bias", C, 1, 0.1f, 0);
    char b[96];
    for (int l = 0; l < BL; l++) {
#define N(x) (snprintf(b, sizeof b, "blk.%d." x, l), b)
        if (fused) {
            badd(m, N("attn_qkv.weight"), C, 3 * C, ms, 0);
            badd(m, N("attn_qkv.bias"), 3 * C, 1, 0.3f, 0);
        } else {
            badd(m, N("attn_q.weight"), C, C, ms, 0);
            badd(m, N("attn_q.bias"), C, 1, 0.3f, 0);
            badd(m, N("attn_k.weight"), C, C, ms, 0);
            badd(m, N("attn_k.bias"), C, 1, 0.3f, 0);
            badd(m, N("attn_v.weight"), C, C, ms, 0);
            badd(m, N("attn_v.bias"), C, 1, 0.3f, 0);
        }
        badd(m, N("attn_output.weight"), C, C, ms, 0);
        badd(m, N("attn_output.bias"), C, 1, 0.1f, 0);
        badd(m, N("attn_output_norm.weight"), C, 1, 0.2f, 1.0f);
        badd(m, N("attn_output_norm.bias"), C, 1, 0.1f, 0);
        badd(m, N("ffn_up.weight"), C, BFF, ms, 0);
        badd(m, N("ffn_up.bias"), BFF, 1, 0.1f, 0);
        badd(m, N("ffn_down.weight"), BFF, C, sqrtf(3.0f / BFF), 0);
        badd(m, N("ffn_down.bias"), C, 1, 0.1f, 0);
        badd(m, N("layer_output_norm.weight"), C, 1, 0.2f, 1.0f);
        badd(m, N("layer_output_norm.bias"), C, 1, 0.1f, 0);
#undef N
    }
    yan_gguf_writer *w;
    CHECK(yan_gguf_writer_new(&w) == YAN_OK);
    yan_gguf_w_set_str(w, "general.architecture", "bert", 4);
    yan_gguf_w_set_u32(w, "bert.context_length", BCTX);
    yan_gguf_w_set_u32(w, "bert.embedding_length", BC);
    yan_gguf_w_set_u32(w, "bert.block_count", BL);
    yan_gguf_w_set_u32(w, "bert.feed_forward_length", BFF);
    yan_gguf_w_set_u32(w, "bert.attention.head_count", BNH);
    yan_gguf_w_set_f32(w, "bert.attention.layer_norm_epsilon", 1e-12f);
    yan_gguf_w_set_bool(w, "bert.attention.causal", false);
    if (pooling_type >= 0) yan_gguf_w_set_u32(w, "bert.pooling_type", (uint32_t)pooling_type);
    CHECK(yan_tok_save_gguf_kv(&tok, w) == YAN_OK);
    yan_gguf_w_set_u32(w, "tokenizer.ggml.token_type_count", 2);
    for (int i = 0; i < m->n; i++) {
        bt *t = &m->t[i];
        if (omit && !strcmp(omit, t->name)) continue;
        uint64_t dims[2] = {(uint64_t)t->ne0, (uint64_t)t->ne1};
        CHECK(yan_gguf_w_add_tensor(w, t->name, YAN_T_F32, (uint32_t)t->n_dims, dims, t->f) == YAN_OK);
    }
    CHECK(yan_gguf_w_write(w, path) == YAN_OK);
    yan_gguf_writer_free(w);
    yan_tok_release(&tok);
}

/* ---------------------------------------------------- naive f64 reference */

static void ref_ln(double *x, const float *w, const float *b, int n) {
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++) mean += x[i];
    mean /= n;
    for (int i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= n;
    double inv = 1.0 / sqrt(var + 1e-12);
    for (int i = 0; i < n; i++) x[i] = (x[i] - mean) * inv * w[i] + b[i];
}

/* y (out) = W x + bias over a GGUF matrix (ne0 = in, ne1 = out) */
static void ref_mv(const bt *W, const float *bias, const double *x, double *y, int64_t row0, int64_t rows) {
    for (int64_t r = 0; r < rows; r++) {
        double s = bias ? bias[r] : 0;
        const float *w = W->f + (row0 + r) * W->ne0;
        for (int64_t i = 0; i < W->ne0; i++) s += (double)w[i] * x[i];
        y[r] = s;
    }
}

static double ref_gelu(double v) { return 0.5 * v * (1.0 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))); }

/* The pooled, L2-normalised embedding of tokens[0..n): 1 mean, 2 cls, 3 last. */
static void ref_bert(bmodel *m, const yan_token *tok, int n, int pooling, float *out) {
    const int C = BC;
    double *x = calloc((size_t)n * C, sizeof *x), *q = malloc((size_t)n * C * sizeof *q),
           *k = malloc((size_t)n * C * sizeof *k), *v = malloc((size_t)n * C * sizeof *v),
           *att = malloc((size_t)n * C * sizeof *att), *tmp = malloc((size_t)(3 * C > BFF ? 3 * C : BFF) * sizeof *tmp),
           *h = malloc(BFF * sizeof *h), *s = malloc((size_t)n * sizeof *s), *o = malloc(C * sizeof *o);
    const bt *te = bget(m, "token_embd.weight"), *pe = bget(m, "position_embd.weight"),
             *ty = bget(m, "token_types.weight");
    for (int t = 0; t < n; t++) {
        double *xt = x + (size_t)t * C;
        for (int i = 0; i < C; i++)
            xt[i] = (double)te->f[(size_t)tok[t] * C + i] + (ty ? ty->f[i] : 0.0) + pe->f[(size_t)t * C + i];
        ref_ln(xt, bget(m, "token_embd_norm.weight")->f, bget(m, "token_embd_norm.bias")->f, C);
    }
    char b[96];
#define W(l, x) bget(m, (snprintf(b, sizeof b, "blk.%d." x, l), b))
    for (int l = 0; l < BL; l++) {
        for (int t = 0; t < n; t++) {
            const double *xt = x + (size_t)t * C;
            if (m->fused) {
                ref_mv(W(l, "attn_qkv.weight"), W(l, "attn_qkv.bias")->f, xt, tmp, 0, 3 * C);
                memcpy(q + (size_t)t * C, tmp, C * sizeof *tmp);
                memcpy(k + (size_t)t * C, tmp + C, C * sizeof *tmp);
                memcpy(v + (size_t)t * C, tmp + 2 * C, C * sizeof *tmp);
            } else {
                ref_mv(W(l, "attn_q.weight"), W(l, "attn_q.bias")->f, xt, q + (size_t)t * C, 0, C);
                ref_mv(W(l, "attn_k.weight"), W(l, "attn_k.bias")->f, xt, k + (size_t)t * C, 0, C);
                ref_mv(W(l, "attn_v.weight"), W(l, "attn_v.bias")->f, xt, v + (size_t)t * C, 0, C);
            }
        }
        /* bidirectional attention: every token sees all n */
        for (int t = 0; t < n; t++)
            for (int hh = 0; hh < BNH; hh++) {
                double mx = -1e300, sum = 0;
                for (int j = 0; j < n; j++) {
                    double d = 0;
                    for (int i = 0; i < BHD; i++) d += q[(size_t)t * C + hh * BHD + i] * k[(size_t)j * C + hh * BHD + i];
                    s[j] = d / sqrt((double)BHD);
                    if (s[j] > mx) mx = s[j];
                }
                for (int j = 0; j < n; j++) sum += (s[j] = exp(s[j] - mx));
                for (int i = 0; i < BHD; i++) {
                    double a = 0;
                    for (int j = 0; j < n; j++) a += s[j] / sum * v[(size_t)j * C + hh * BHD + i];
                    att[(size_t)t * C + hh * BHD + i] = a;
                }
            }
        for (int t = 0; t < n; t++) {
            double *xt = x + (size_t)t * C;
            ref_mv(W(l, "attn_output.weight"), W(l, "attn_output.bias")->f, att + (size_t)t * C, o, 0, C);
            for (int i = 0; i < C; i++) xt[i] += o[i];
            ref_ln(xt, W(l, "attn_output_norm.weight")->f, W(l, "attn_output_norm.bias")->f, C);
            ref_mv(W(l, "ffn_up.weight"), W(l, "ffn_up.bias")->f, xt, h, 0, BFF);
            for (int i = 0; i < BFF; i++) h[i] = ref_gelu(h[i]);
            ref_mv(W(l, "ffn_down.weight"), W(l, "ffn_down.bias")->f, h, o, 0, C);
            for (int i = 0; i < C; i++) xt[i] += o[i];
            ref_ln(xt, W(l, "layer_output_norm.weight")->f, W(l, "layer_output_norm.bias")->f, C);
        }
    }
#undef W
    double ss = 0;
    for (int i = 0; i < C; i++) {
        double a = 0;
        if (pooling == 1)
            for (int t = 0; t < n; t++) a += x[(size_t)t * C + i] / n;
        else
            a = x[(size_t)(pooling == 2 ? 0 : n - 1) * C + i];
        o[i] = a;
        ss += a * a;
    }
    for (int i = 0; i < C; i++) out[i] = (float)(o[i] / sqrt(ss));
    free(x); free(q); free(k); free(v); free(att); free(tmp); free(h); free(s); free(o);
}

static double maxdiff(const float *a, const float *b, int n) {
    double d = 0;
    for (int i = 0; i < n; i++)
        if (fabs((double)a[i] - b[i]) > d) d = fabs((double)a[i] - b[i]);
    return d;
}

static double dot(const float *a, const float *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static yan_context *bctx(yan_model *m, int n_ctx, int n_batch, int nth, yan_kv_type kv) {
    yan_context_params cp = yan_context_params_default();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_batch;
    cp.n_threads = nth;
    cp.kv_type = kv;
    yan_context *c = NULL;
    yan_status st = yan_context_new(m, &cp, &c);
    if (st) fprintf(stderr, "  context: %s\n", yan_last_error());
    CHECK(st == YAN_OK);
    return c;
}

static const char *bpath(const char *name) {
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", yan_test_tmp_dir(), name);
    return p[k];
}

TEST(bert_forward_matches_reference) {
    size_t before = yan_alloc_used();
    /* (pooling key, fused q/k/v, segment embeddings) */
    static const int cases[4][3] = {{1, 0, 1}, {2, 1, 1}, {3, 0, 0}, {-1, 1, 0}};
    for (int c = 0; c < 4; c++) {
        bmodel bm;
        const char *path = bpath("bert.gguf");
        write_bert(&bm, path, cases[c][0], cases[c][1], cases[c][2], NULL);
        yan_model *m = NULL;
        yan_status st = yan_model_load(path, NULL, &m);
        if (st) fprintf(stderr, "  load: %s\n", yan_last_error());
        CHECK(st == YAN_OK);
        if (!m) { bfree(&bm); continue; }
        const int want_pool = cases[c][0] < 0 ? 1 : cases[c][0];
        CHECK(!strcmp(yan_model_arch(m), "bert") && yan_model_n_embd(m) == BC);
        CHECK((int)yan_model_pooling(m) == want_pool);
        const yan_tokenizer *tok = yan_model_tokenizer(m);
        const char *text = "Hello, world! Unaffable playing: café 中文, a b hello world.";
        yan_token *ids;
        size_t n;
        CHECK(yan_tokenize_alloc(tok, text, strlen(text), YAN_TOKENIZE_ADD_BOS, &ids, &n) == YAN_OK);
        CHECK(n > 16 && ids[0] == T_CLS && ids[n - 1] == T_SEP);
        float ref[BC], e[BC], e2[BC], g[BC];
        /* n_batch 8: a bidirectional model still runs the input as one step */
        yan_context *ctx = bctx(m, BCTX, 8, 2, YAN_KV_F32);
        for (int p = 1; p <= 3; p++) {
            ref_bert(&bm, ids, (int)n, p, ref);
            CHECK(yan_embed_pooled(ctx, ids, n, (yan_pooling)p, e, BC) == YAN_OK);
            double d = maxdiff(e, ref, BC);
            if (d > 1e-4) fprintf(stderr, "  case %d pooling %d: max |yan - ref| = %g\n", c, p, d);
            CHECK(d <= 1e-4);
            CHECK(fabs(dot(e, e, BC) - 1.0) < 1e-5);
        }
        /* the model's own pooling */
        ref_bert(&bm, ids, (int)n, want_pool, ref);
        CHECK(yan_embed(ctx, ids, n, e, BC) == YAN_OK && maxdiff(e, ref, BC) <= 1e-4);
        /* a different text gives a different vector; a prefix is not the same text */
        CHECK(yan_embed(ctx, ids, n - 3, e2, BC) == YAN_OK && dot(e, e2, BC) < 0.9999);
        /* generation is refused with a clear error; embeddings still work after */
        CHECK(yan_eval(ctx, ids, n, false) == YAN_ERR_UNSUPPORTED);
        CHECK(strstr(yan_last_error(), "embeddings only") != NULL);
        CHECK(yan_embed_pooled(ctx, ids, n, (yan_pooling)7, e2, BC) == YAN_ERR_INVALID_ARG);
        CHECK(yan_embed(ctx, ids, n, e2, BC) == YAN_OK && !memcmp(e, e2, sizeof e));
        yan_context_free(ctx);
        /* f16 KV (the default): close, not exact */
        ctx = bctx(m, BCTX, 0, 1, YAN_KV_F16);
        CHECK(yan_embed(ctx, ids, n, e2, BC) == YAN_OK && maxdiff(e2, ref, BC) <= 2e-3);
        /* the whole context in one input; one more token does not fit */
        yan_token full[BCTX + 1];
        for (int i = 0; i <= BCTX; i++) full[i] = ids[(size_t)i % n];
        YAN_TESTCASE(1);
        CHECK(yan_embed(ctx, full, BCTX, e2, BC) == YAN_OK);
        CHECK(yan_embed(ctx, full, BCTX + 1, e2, BC) == YAN_ERR_CONTEXT_FULL);
        yan_context_free(ctx);
        /* the engine (the /v1/embeddings path): the same numbers by the same code */
        yan_engine_params ep = yan_engine_params_default();
        ep.n_ctx = BCTX;
        ep.n_seq_max = 2;
        ep.n_batch = 16;
        ep.n_threads = 2;
        ep.kv_type = YAN_KV_F32;
        yan_engine *eng = NULL;
        CHECK(yan_engine_new(m, &ep, &eng) == YAN_OK);
        if (eng) {
            CHECK(yan_engine_n_batch(eng) == BCTX); /* bidirectional: one step holds the context */
            int64_t fr = yan_engine_blocks_free(eng);
            CHECK(yan_engine_embed(eng, ids, (int32_t)n, g) == YAN_OK);
            CHECK(maxdiff(g, e, BC) <= 1e-6);
            CHECK(yan_engine_blocks_free(eng) == fr);
            int32_t sq;
            CHECK(yan_engine_seq_new(eng, &sq) == YAN_OK);
            yan_engine_tok et = {sq, ids[0], true};
            CHECK(yan_engine_step(eng, &et, 1) == YAN_ERR_UNSUPPORTED);
            yan_engine_free(eng);
        }
        yan_free_tokens(ids);
        char desc[2048];
        CHECK(yan_model_describe(m, desc, sizeof desc) > 0 && strstr(desc, "bidirectional") && strstr(desc, "wpm"));
        yan_model_free(m);
        bfree(&bm);
    }
    CHECK(yan_alloc_used() == before);
}

TEST(bert_load_errors) {
    bmodel bm;
    const char *path = bpath("bert_rank.gguf");
    write_bert(&bm, path, 4, false, true, NULL);
    yan_model *m = NULL;
    CHECK(yan_model_load(path, NULL, &m) == YAN_ERR_UNSUPPORTED && m == NULL);
    CHECK(strstr(yan_last_error(), "pooling_type 4") != NULL);
    bfree(&bm);
    path = bpath("bert_missing.gguf");
    write_bert(&bm, path, 1, false, true, "token_embd_norm.bias");
    CHECK(yan_model_load(path, NULL, &m) == YAN_ERR_FORMAT && m == NULL);
    CHECK(strstr(yan_last_error(), "token_embd_norm.bias") != NULL);
    bfree(&bm);
    write_bert(&bm, path, 1, false, true, "blk.1.layer_output_norm.weight");
    CHECK(yan_model_load(path, NULL, &m) == YAN_ERR_FORMAT && m == NULL);
    CHECK(strstr(yan_last_error(), "blk.1.layer_output_norm.weight") != NULL);
    bfree(&bm);
}

/* ------------------------------------------------- decoder models' pooling */

#include "model_util.h"

/* Copy the GGUF at src to dst with <arch>.pooling_type = pt added. */
static void copy_with_pooling(const char *src, const char *dst, const char *arch, uint32_t pt) {
    yan_gguf *g;
    CHECK(yan_gguf_open(src, &g) == YAN_OK);
    yan_gguf_writer *w;
    CHECK(yan_gguf_writer_new(&w) == YAN_OK);
    for (int64_t i = 0; i < yan_gguf_n_kv(g); i++) {
        size_t kl, vl;
        const char *k = yan_gguf_key(g, i, &kl);
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)kl, k);
        const uint8_t *v = yan_gguf_kv_raw(g, i, &vl);
        CHECK(yan_gguf_w_set_raw(w, key, yan_gguf_kv_type(g, i), v, vl) == YAN_OK);
    }
    char key[128];
    snprintf(key, sizeof key, "%s.pooling_type", arch);
    CHECK(yan_gguf_w_set_u32(w, key, pt) == YAN_OK);
    for (int64_t i = 0; i < yan_gguf_n_tensors(g); i++) {
        const yan_gguf_tensor *t = yan_gguf_tensor_at(g, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name_len, t->name);
        CHECK(yan_gguf_w_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data) == YAN_OK);
    }
    CHECK(yan_gguf_w_write(w, dst) == YAN_OK);
    yan_gguf_writer_free(w);
    yan_gguf_close(g);
}

TEST(decoder_embedding_pooling) {
    size_t before = yan_alloc_used();
    const char *archs[2] = {"qwen3", "llama"};
    for (int a = 0; a < 2; a++) {
        wmodel w;
        spec s = base_spec(archs[a]);
        const char *p1 = bpath("dec.gguf"), *p2 = bpath("dec_last.gguf");
        write_model(&s, &w, p1);
        copy_with_pooling(p1, p2, archs[a], 3); /* Qwen3-Embedding: last token */
        yan_model *m0 = NULL, *m = NULL;
        CHECK(yan_model_load(p1, NULL, &m0) == YAN_OK && yan_model_load(p2, NULL, &m) == YAN_OK);
        if (!m0 || !m) {
            yan_model_free(m0);
            yan_model_free(m);
            wmodel_free(&w);
            continue;
        }
        CHECK(yan_model_pooling(m0) == YAN_POOLING_MEAN && yan_model_pooling(m) == YAN_POOLING_LAST);
        const int C = yan_model_n_embd(m), n = N_TOKS;
        float *h = malloc((size_t)n * C * sizeof *h), ref[256], e[256];
        ref_forward_ex(&w, k_toks, n, NULL, h);
        double ss = 0;
        for (int i = 0; i < C; i++) ss += (double)h[(size_t)(n - 1) * C + i] * h[(size_t)(n - 1) * C + i];
        for (int i = 0; i < C; i++) ref[i] = (float)(h[(size_t)(n - 1) * C + i] / sqrt(ss));
        /* steps of 8 tokens: the last one's state comes from the last step */
        yan_context *c = bctx(m, 64, 8, 2, YAN_KV_F32);
        CHECK(yan_embed(c, k_toks, (size_t)n, e, 256) == YAN_OK && maxdiff(e, ref, C) <= 1e-4);
        yan_context_free(c);
        c = bctx(m0, 64, 8, 2, YAN_KV_F32);
        CHECK(yan_embed_pooled(c, k_toks, (size_t)n, YAN_POOLING_LAST, e, 256) == YAN_OK && maxdiff(e, ref, C) <= 1e-4);
        /* cls on a decoder: the first token's state */
        ss = 0;
        for (int i = 0; i < C; i++) ss += (double)h[i] * h[i];
        for (int i = 0; i < C; i++) ref[i] = (float)(h[i] / sqrt(ss));
        CHECK(yan_embed_pooled(c, k_toks, (size_t)n, YAN_POOLING_CLS, e, 256) == YAN_OK && maxdiff(e, ref, C) <= 1e-4);
        /* a decoder still generates after embedding */
        CHECK(yan_eval(c, k_toks, 4, false) == YAN_OK);
        yan_context_free(c);
        free(h);
        yan_model_free(m0);
        yan_model_free(m);
        wmodel_free(&w);
    }
    CHECK(yan_alloc_used() == before);
}

/* Loading a bert model and embedding with it: a failed allocation anywhere
 * is a clean error (NOMEM) with nothing leaked. */
TEST(bert_alloc_failures) {
    bmodel bm;
    const char *path = bpath("bert_faults.gguf");
    write_bert(&bm, path, 2, false, true, NULL);
    const yan_token ids[6] = {T_CLS, T_HELLO, T_COMMA, T_WORLD, T_BANG, T_SEP};
    size_t base = yan_alloc_used();
    int failures = 0, oks = 0;
    for (long k = 1; k < 400 && oks < 3; k++) {
        yan_alloc_fail_after(k);
        yan_model *m = NULL;
        yan_context *c = NULL;
        float e[BC];
        yan_status st = yan_model_load(path, NULL, &m);
        if (st == YAN_OK) st = yan_context_new(m, NULL, &c);
        if (st == YAN_OK) st = yan_embed(c, ids, 6, e, BC);
        yan_alloc_fail_after(0);
        CHECK(st == YAN_OK || st == YAN_ERR_NOMEM);
        if (st == YAN_OK) oks++;
        else failures++;
        yan_context_free(c);
        yan_model_free(m);
        CHECK(yan_alloc_used() == base);
    }
    CHECK(failures > 5 && oks > 0);
    bfree(&bm);
}
