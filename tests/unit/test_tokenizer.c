/* test_tokenizer.c — the tokenizer core through the public API and tok.h:
 * encode/decode on small vocabularies written here, caller-buffer size
 * negotiation, streaming decode of split UTF-8, special tokens, both merge
 * loops agreeing, malformed rank files, and allocation-failure injection. */
#include "test.h"
#include "tokenizer/tok.h"

#include <stdlib.h>

/* Write a rank file: all 256 bytes (rank = byte), then the extra tokens. */
static char *write_ranks(const char *name, const char *const *extra, int n_extra) {
    static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *path = malloc(512);
    snprintf(path, 512, "%s/%s", yan_test_tmp_dir(), name);
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < 256 + n_extra; i++) {
        uint8_t bytes[64];
        size_t n;
        if (i < 256) {
            bytes[0] = (uint8_t)i;
            n = 1;
        } else {
            n = strlen(extra[i - 256]);
            memcpy(bytes, extra[i - 256], n);
        }
        char out[128];
        size_t o = 0;
        for (size_t k = 0; k < n; k += 3) {
            uint32_t v = (uint32_t)bytes[k] << 16 | (k + 1 < n ? (uint32_t)bytes[k + 1] << 8 : 0) | (k + 2 < n ? bytes[k + 2] : 0);
            out[o++] = B64[(v >> 18) & 63];
            out[o++] = B64[(v >> 12) & 63];
            out[o++] = k + 1 < n ? B64[(v >> 6) & 63] : '=';
            out[o++] = k + 2 < n ? B64[v & 63] : '=';
        }
        fprintf(f, "%.*s %d\n", (int)o, out, i);
    }
    fclose(f);
    return path;
}

static const char *const EXTRA[] = {"ab", "abc", " a", " ab", " abc", "cd", "abcd", "\xc3\xa9", "ll", "he", "hell", "hello"};
#define N_EXTRA (int)(sizeof EXTRA / sizeof EXTRA[0])

static yan_tokenizer *load_small(void) {
    char *path = write_ranks("small.tiktoken", EXTRA, N_EXTRA);
    yan_tokenizer_params p = yan_tokenizer_params_default();
    p.pre = "gpt2";
    yan_tokenizer *tok = NULL;
    yan_status s = yan_tokenizer_load(path, &p, &tok);
    if (s) fprintf(stderr, "  load: %s\n", yan_last_error());
    free(path);
    return tok;
}

static size_t enc(const yan_tokenizer *tok, const char *s, yan_token *out, size_t cap) {
    int64_t n = yan_tokenize(tok, s, strlen(s), out, cap, 0);
    return n < 0 ? 0 : (size_t)n;
}

TEST(tokenizer_small_vocab_encodes_by_rank) {
    yan_tokenizer *tok = load_small();
    CHECK(tok != NULL);
    if (!tok) return;
    CHECK(yan_tokenizer_n_vocab(tok) == 256 + N_EXTRA);
    CHECK(strcmp(yan_tokenizer_pre(tok), "gpt2") == 0);
    yan_token ids[64];
    /* "abcd abc": pieces "abcd", " abc" */
    size_t n = enc(tok, "abcd abc", ids, 64);
    CHECK(n == 2 && ids[0] == 256 + 6 && ids[1] == 256 + 4);
    /* "hello": h e l l o -> "he"(265) + "ll"(264) ... "hell" = he+ll, then + o has no token */
    n = enc(tok, "hello", ids, 64);
    CHECK(n == 1 && ids[0] == 256 + 11);
    n = enc(tok, "helloo", ids, 64);
    CHECK(n == 2 && ids[0] == 256 + 11 && ids[1] == (yan_token)'o');
    /* a 2-byte character that is one token */
    n = enc(tok, "\xc3\xa9", ids, 64);
    CHECK(n == 1 && ids[0] == 256 + 7);
    yan_tokenizer_free(tok);
}

TEST(tokenizer_buffer_negotiation) {
    yan_tokenizer *tok = load_small();
    if (!tok) { CHECK(0); return; }
    const char *s = "xyz xyz xyz";
    int64_t need = yan_tokenize(tok, s, strlen(s), NULL, 0, 0);
    CHECK(need < 0);
    yan_token ids[64];
    YAN_TESTCASE(need != 0); /* cap exactly the size */
    int64_t n = yan_tokenize(tok, s, strlen(s), ids, (size_t)-need, 0);
    CHECK(n == -need);
    CHECK(yan_tokenize(tok, s, strlen(s), ids, (size_t)-need - 1, 0) == need);
    char buf[64];
    int64_t d = yan_detokenize(tok, ids, (size_t)n, buf, 3, false);
    CHECK(d == -(int64_t)(strlen(s) + 1));
    d = yan_detokenize(tok, ids, (size_t)n, buf, strlen(s) + 1, false);
    CHECK(d == (int64_t)strlen(s) && strcmp(buf, s) == 0);
    yan_token bad = 1 << 20;
    CHECK(yan_detokenize(tok, &bad, 1, buf, sizeof buf, false) == INT64_MIN);
    CHECK(yan_token_to_piece(tok, 256, buf, 1) == -2);
    CHECK(yan_token_to_piece(tok, 256, buf, 2) == 2 && memcmp(buf, "ab", 2) == 0);
    yan_tokenizer_free(tok);
}

TEST(tokenizer_roundtrip_random_bytes) {
    yan_tokenizer *tok = load_small();
    if (!tok) { CHECK(0); return; }
    uint64_t rng = 42;
    char text[2048], back[4096];
    for (int iter = 0; iter < 300; iter++) {
        size_t n = 0, len = (size_t)(iter * 7 % 2000);
        for (; n < len; n++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            static const char pool[] = "ab cd\n\t  e'sAB1234\xc3\xa9\xe4\xb8\xad\xff\x80";
            text[n] = (rng >> 40) % 3 == 0 ? (char)(rng >> 48) : pool[(rng >> 33) % (sizeof pool - 1)];
        }
        yan_token *ids;
        size_t k;
        CHECK(yan_tokenize_alloc(tok, text, n, 0, &ids, &k) == YAN_OK);
        int64_t d = yan_detokenize(tok, ids, k, back, sizeof back, false);
        CHECK(d == (int64_t)n && memcmp(back, text, n) == 0);
        yan_free_tokens(ids);
    }
    yan_tokenizer_free(tok);
}

TEST(tokenizer_heap_and_scan_merges_agree) {
    yan_tokenizer *tok = load_small();
    if (!tok) { CHECK(0); return; }
    uint64_t rng = 7;
    char text[600];
    for (int iter = 0; iter < 200; iter++) {
        size_t n = 1 + (size_t)iter * 3 % 590;
        for (size_t i = 0; i < n; i++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            text[i] = "abcdhelo"[(rng >> 35) % 8]; /* one long piece */
        }
        yan_token *a, *b;
        size_t na, nb;
        tok->heap_from = 1 << 30; /* scan only */
        CHECK(yan_tokenize_alloc(tok, text, n, 0, &a, &na) == YAN_OK);
        tok->heap_from = 2; /* heap for everything */
        CHECK(yan_tokenize_alloc(tok, text, n, 0, &b, &nb) == YAN_OK);
        CHECK(na == nb && memcmp(a, b, na * sizeof *a) == 0);
        yan_free_tokens(a);
        yan_free_tokens(b);
    }
    tok->heap_from = 0;
    yan_tokenizer_free(tok);
}

TEST(tokenizer_stream_decoder_holds_split_characters) {
    yan_tokenizer *tok = load_small();
    if (!tok) { CHECK(0); return; }
    yan_decoder *d;
    CHECK(yan_decoder_new(tok, &d) == YAN_OK);
    char out[16];
    /* "中" = E4 B8 AD as three byte tokens */
    CHECK(yan_decoder_push(d, 0xE4, out, sizeof out) == 0 && out[0] == 0);
    CHECK(yan_decoder_push(d, 0xB8, out, sizeof out) == 0);
    CHECK(yan_decoder_push(d, 0xAD, out, sizeof out) == 3 && strcmp(out, "\xe4\xb8\xad") == 0);
    CHECK(yan_decoder_push(d, 'a', out, sizeof out) == 1 && strcmp(out, "a") == 0);
    /* an incomplete character at the end comes out on flush */
    CHECK(yan_decoder_push(d, 0xC3, out, sizeof out) == 0);
    CHECK(yan_decoder_flush(d, out, sizeof out) == 1 && (uint8_t)out[0] == 0xC3);
    /* too small a buffer consumes nothing */
    CHECK(yan_decoder_push(d, 256 + 3, out, 2) == -4);
    CHECK(yan_decoder_push(d, 256 + 3, out, 4) == 3 && strcmp(out, " ab") == 0);
    CHECK(yan_decoder_push(d, 1 << 20, out, sizeof out) == INT64_MIN);
    yan_decoder_free(d);
    yan_decoder_free(NULL);
    yan_tokenizer_free(tok);
}

TEST(tokenizer_special_tokens) {
    /* add a control token by hand through tok.h, as loaders do */
    yan_tokenizer *tok = load_small();
    if (!tok) { CHECK(0); return; }
    int32_t sp = yan_tokenizer_n_vocab(tok);
    CHECK(yan_tok_set(tok, sp, "<|end|>", 7, YAN_TT_CONTROL, 0) == YAN_OK);
    CHECK(yan_tok_finalize(tok) == YAN_OK);
    yan_token ids[64];
    const char *s = "ab<|end|>ab";
    int64_t n = yan_tokenize(tok, s, strlen(s), ids, 64, YAN_TOKENIZE_SPECIAL);
    CHECK(n == 3 && ids[1] == sp);
    n = yan_tokenize(tok, s, strlen(s), ids, 64, 0);
    CHECK(n > 3);
    for (int64_t i = 0; i < n; i++) CHECK(ids[i] != sp);
    CHECK(yan_tokenizer_find(tok, "<|end|>", 7) == sp);
    CHECK(yan_tokenizer_find(tok, "abc", 3) == 257);
    char buf[64];
    yan_token seq[3] = {256, sp, 256};
    CHECK(yan_detokenize(tok, seq, 3, buf, sizeof buf, false) == 11 && strcmp(buf, "ab<|end|>ab") == 0);
    CHECK(yan_detokenize(tok, seq, 3, buf, sizeof buf, true) == 4 && strcmp(buf, "abab") == 0);
    yan_tokenizer_free(tok);
}

static yan_status load_text(const char *name, const char *content, const char *pre) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", yan_test_tmp_dir(), name);
    FILE *f = fopen(path, "wb");
    fputs(content, f);
    fclose(f);
    yan_tokenizer_params p = yan_tokenizer_params_default();
    p.pre = pre;
    yan_tokenizer *tok = NULL;
    yan_status s = yan_tokenizer_load(path, &p, &tok);
    yan_tokenizer_free(tok);
    if (s) CHECK(tok == NULL && strstr(yan_last_error(), name) != NULL);
    return s;
}

TEST(tokenizer_malformed_rank_files) {
    CHECK(load_text("bad1.tiktoken", "QQ== 0\n!!! 1\n", "gpt2") == YAN_ERR_FORMAT);   /* bad base64 */
    CHECK(strstr(yan_last_error(), ":2:") != NULL);
    CHECK(load_text("bad2.tiktoken", "QQ== 0\nQg== 0\n", "gpt2") == YAN_ERR_FORMAT);  /* duplicate rank */
    CHECK(strstr(yan_last_error(), "duplicate") != NULL);
    CHECK(load_text("bad3.tiktoken", "QQ==\n", "gpt2") == YAN_ERR_FORMAT);            /* no rank */
    CHECK(load_text("bad4.tiktoken", "QQ== 0\nQg== 5\n", "gpt2") == YAN_ERR_FORMAT);  /* holes */
    CHECK(load_text("bad5.tiktoken", "QQ== 99999999999\n", "gpt2") == YAN_ERR_FORMAT);/* huge rank */
    CHECK(load_text("bad6.tiktoken", "QQ== 0\nQQ== 1\n", "gpt2") == YAN_ERR_FORMAT);  /* same bytes twice */
    CHECK(load_text("empty.tiktoken", "", "gpt2") == YAN_ERR_FORMAT);
    /* a valid file whose bytes do not all have tokens and no pre-tokenizer named */
    CHECK(load_text("nopre.tiktoken", "QQ== 0\n", NULL) != YAN_OK);
    CHECK(load_text("unknownpre.tiktoken", "QQ== 0\n", "nosuch") == YAN_ERR_UNSUPPORTED);
    CHECK(strstr(yan_last_error(), "cl100k") != NULL); /* lists the known ones */
    yan_tokenizer *tok = NULL;
    CHECK(yan_tokenizer_load("/nonexistent/file.json", NULL, &tok) == YAN_ERR_IO && tok == NULL);
}

TEST(tokenizer_allocation_failures_are_clean) {
    char *path = write_ranks("faults.tiktoken", EXTRA, N_EXTRA);
    yan_tokenizer_params p = yan_tokenizer_params_default();
    p.pre = "cl100k";
    size_t base = yan_alloc_used();
    int failures = 0;
    for (long k = 1; k < 400; k++) {
        yan_alloc_fail_after(k);
        yan_tokenizer *tok = NULL;
        yan_status s = yan_tokenizer_load(path, &p, &tok);
        if (s == YAN_OK) {
            yan_token *ids;
            size_t n;
            const char *text = "hello abcd \xe4\xb8\xad\xe6\x96\x87 ll he";
            yan_status e = yan_tokenize_alloc(tok, text, strlen(text), 0, &ids, &n);
            CHECK(e == YAN_OK || e == YAN_ERR_NOMEM);
            if (e == YAN_OK) yan_free_tokens(ids);
            else failures++;
        } else {
            CHECK(s == YAN_ERR_NOMEM && tok == NULL);
            failures++;
        }
        yan_alloc_fail_after(0);
        yan_tokenizer_free(tok);
        CHECK(yan_alloc_used() == base);
    }
    CHECK(failures > 5);
    free(path);
}

TEST(tokenizer_gpt2_byte_alphabet) {
    /* every byte maps into the alphabet and back; known fixed points */
    for (int b = 0; b < 256; b++) {
        uint8_t in = (uint8_t)b, back[4];
        char enc[4];
        size_t n = yan_gpt2_byte(&in, 1, enc);
        CHECK(n >= 1 && n <= 2);
        CHECK(yan_gpt2_unbyte(enc, n, back) == 1 && back[0] == in);
    }
    char enc[4];
    uint8_t sp = ' ', nl = '\n', shy = 0xAD, del = 0x7F;
    CHECK(yan_gpt2_byte(&sp, 1, enc) == 2 && memcmp(enc, "\xc4\xa0", 2) == 0);  /* U+0120 */
    CHECK(yan_gpt2_byte(&nl, 1, enc) == 2 && memcmp(enc, "\xc4\x8a", 2) == 0);  /* U+010A */
    CHECK(yan_gpt2_byte(&del, 1, enc) == 2 && memcmp(enc, "\xc4\xa1", 2) == 0); /* U+0121 */
    CHECK(yan_gpt2_byte(&shy, 1, enc) == 2 && memcmp(enc, "\xc5\x83", 2) == 0); /* U+0143 */
    uint8_t out[8];
    CHECK(yan_gpt2_unbyte("\xc5\x84", 2, out) == -1); /* U+0144 is outside */
    CHECK(yan_gpt2_unbyte(" ", 1, out) == -1);        /* a raw space is not in the alphabet */
}
