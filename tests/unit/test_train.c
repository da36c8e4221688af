/* test_train.c — the byte-level BPE trainer (src/tokenizer/train.c):
 * the learned merges re-encode every training word into the trainer's own
 * final segmentation (checked with a tiny reference encoder written here),
 * output is identical across thread counts and chunk sizes, specials get the
 * ids after the learned tokens, min_frequency stops training, an abort from
 * the progress callback writes nothing, bad inputs give clear errors, and
 * allocation failures are clean (no leak). */
#include "test.h"

#include "base/json.h"
#include "tokenizer/train.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------- helpers */

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Reference PAIRS-mode encoder: repeatedly merge the adjacent pair with the
 * lowest merge rank (leftmost on ties). Quadratic, obviously right. */
static size_t ref_encode(const yan_bpe *m, const uint8_t *w, size_t n, int32_t *out) {
    for (size_t i = 0; i < n; i++) out[i] = w[i];
    for (;;) {
        size_t best_rank = (size_t)-1, best = 0;
        for (size_t i = 0; i + 1 < n; i++)
            for (size_t r = 0; r < m->n_merges && r < best_rank; r++)
                if (m->merges[3 * r] == out[i] && m->merges[3 * r + 1] == out[i + 1]) {
                    best_rank = r;
                    best = i;
                    break;
                }
        if (best_rank == (size_t)-1) return n;
        out[best] = m->merges[3 * best_rank + 2];
        memmove(out + best + 1, out + best + 2, (n - best - 2) * sizeof *out);
        n--;
    }
}

/* A small word table over a 4-letter alphabet: many shared substrings, so
 * merges that produce an already known token (and ties) happen. */
typedef struct {
    size_t n;
    uint8_t words[400][12];
    uint32_t lens[400];
    uint64_t freqs[400];
} word_table;

static void make_words(word_table *t, uint64_t seed) {
    uint64_t s = seed;
    t->n = 0;
    while (t->n < 400) {
        uint32_t len = 1 + (uint32_t)(rng_next(&s) % 10);
        uint8_t w[12];
        for (uint32_t i = 0; i < len; i++) w[i] = (uint8_t)("abcd"[rng_next(&s) % 4]);
        bool dup = false;
        for (size_t j = 0; j < t->n && !dup; j++) dup = t->lens[j] == len && memcmp(t->words[j], w, len) == 0;
        if (dup) continue;
        memcpy(t->words[t->n], w, len);
        t->lens[t->n] = len;
        t->freqs[t->n] = 1 + rng_next(&s) % 50;
        t->n++;
    }
}

static bool write_text(const char *path, const char *s, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(s, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* A generated English-like corpus of about `bytes` bytes. */
static char *make_corpus(size_t bytes, uint64_t seed, size_t *n_out) {
    static const char *const vocab[] = {
        "the", "of", "and", "to", "in", "that", "is", "was", "he", "for", "it", "with", "as", "his",
        "on", "be", "at", "by", "I", "this", "had", "not", "are", "but", "from", "or", "have", "an",
        "they", "which", "one", "you", "were", "her", "all", "she", "there", "would", "their", "we",
        "him", "been", "has", "when", "who", "will", "more", "no", "if", "out", "so", "said", "what",
        "up", "its", "about", "into", "than", "them", "can", "only", "other", "new", "some", "could",
        "time", "these", "two", "may", "then", "do", "first", "any", "my", "now", "such", "like",
        "our", "over", "man", "me", "even", "most", "made", "after", "also", "did", "many", "before",
        "must", "through", "back", "years", "where", "much", "your", "way", "well", "down", "should",
        "because", "each", "just", "those", "people", "Mr.", "how", "too", "little", "state", "good",
        "very", "make", "world", "still", "own", "see", "men", "work", "long", "get", "here", "between",
        "both", "life", "being", "under", "never", "day", "same", "another", "know", "while", "last",
        "caf\xc3\xa9", "na\xc3\xafve", "\xe6\x97\xa5\xe6\x9c\xac", "1999", "42", "3.14", "--", "(", ")"};
    size_t nv = sizeof vocab / sizeof vocab[0];
    char *buf = malloc(bytes + 64);
    size_t n = 0;
    uint64_t s = seed;
    while (n < bytes) {
        /* Zipf-ish: the square of a uniform index favours the first words */
        uint64_t u = rng_next(&s) % 1000;
        const char *w = vocab[(u * u / 1000) * nv / 1000];
        size_t k = strlen(w);
        memcpy(buf + n, w, k);
        n += k;
        uint64_t r = rng_next(&s) % 100;
        buf[n++] = r < 6 ? ',' : r < 10 ? '.' : ' ';
        if (r < 10) buf[n++] = ' ';
        if (r == 99 || r == 98) buf[n++] = '\n';
    }
    buf[n] = 0;
    *n_out = n;
    return buf;
}

static char *path_in_tmp(const char *name) {
    const char *d = yan_test_tmp_dir();
    size_t n = strlen(d) + strlen(name) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", d, name);
    return p;
}

static char *slurp(const char *path, size_t *n) {
    uint8_t *d = NULL;
    if (yan_read_file(path, &d, n) != YAN_OK) return NULL;
    char *c = malloc(*n + 1);
    memcpy(c, d, *n + 1);
    yan_free(d);
    return c;
}

static bool file_exists(const char *path) { return access(path, F_OK) == 0; }

/* --------------------------------------------------------------- learner */

TEST(train_bpe_segmentation_matches_encoder) {
    static word_table t;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        make_words(&t, seed * 7919);
        const uint8_t *wp[400];
        for (size_t i = 0; i < t.n; i++) wp[i] = t.words[i];
        yan_bpe m;
        yan_status s = yan_bpe_learn(wp, t.lens, t.freqs, t.n, 256 + 300, 1, NULL, NULL, 0, 1, &m);
        CHECK(s == YAN_OK);
        if (s != YAN_OK) return;
        CHECK(m.n_tok > 256 + 50);
        CHECK(m.n_merges >= (size_t)(m.n_tok - 256));
        for (size_t r = 0; r < m.n_merges; r++) CHECK(m.merge_count[r] >= 1);
        int bad = 0;
        for (size_t w = 0; w < t.n; w++) {
            int32_t enc[12];
            size_t k = ref_encode(&m, t.words[w], t.lens[w], enc);
            if (k != m.seg_len[w] || memcmp(enc, m.seg + m.seg_off[w], k * sizeof *enc) != 0) bad++;
            /* the segments spell the word */
            size_t pos = 0;
            for (uint32_t i = 0; i < m.seg_len[w]; i++) {
                int32_t id = m.seg[m.seg_off[w] + i];
                if (pos + m.tok_len[id] > t.lens[w] ||
                    memcmp(m.blob + m.tok_off[id], t.words[w] + pos, m.tok_len[id]) != 0)
                    bad++;
                pos += m.tok_len[id];
            }
            if (pos != t.lens[w]) bad++;
        }
        CHECK(bad == 0);
        /* every token's bytes are its merge's parts */
        for (size_t r = 0; r < m.n_merges; r++) {
            int32_t a = m.merges[3 * r], b = m.merges[3 * r + 1], x = m.merges[3 * r + 2];
            CHECK(m.tok_len[x] == m.tok_len[a] + m.tok_len[b]);
            CHECK(memcmp(m.blob + m.tok_off[x], m.blob + m.tok_off[a], m.tok_len[a]) == 0);
        }
        yan_bpe_free(&m);
    }
}

TEST(train_bpe_picks_most_frequent_pair) {
    /* "ab" x10, "bc" x3: first merge must be (a,b) */
    const uint8_t *wp[2] = {(const uint8_t *)"ab", (const uint8_t *)"bc"};
    uint32_t lens[2] = {2, 2};
    uint64_t freqs[2] = {10, 3};
    yan_bpe m;
    CHECK(yan_bpe_learn(wp, lens, freqs, 2, 258, 1, NULL, NULL, 0, 1, &m) == YAN_OK);
    CHECK(m.n_merges == 2 && m.n_tok == 258);
    CHECK(m.merges[0] == 'a' && m.merges[1] == 'b' && m.merges[2] == 256);
    CHECK(m.merges[3] == 'b' && m.merges[4] == 'c' && m.merges[5] == 257);
    CHECK(m.merge_count[0] == 10 && m.merge_count[1] == 3);
    yan_bpe_free(&m);
    /* ties go to the smaller pair ids */
    freqs[0] = 3;
    const uint8_t *wq[2] = {(const uint8_t *)"yz", (const uint8_t *)"bc"};
    CHECK(yan_bpe_learn(wq, lens, freqs, 2, 257, 1, NULL, NULL, 0, 1, &m) == YAN_OK);
    CHECK(m.n_merges == 1 && m.merges[0] == 'b' && m.merges[1] == 'c');
    yan_bpe_free(&m);
}

TEST(train_bpe_min_frequency_stops) {
    static word_table t;
    make_words(&t, 4242);
    const uint8_t *wp[400];
    for (size_t i = 0; i < t.n; i++) wp[i] = t.words[i];
    yan_bpe m;
    CHECK(yan_bpe_learn(wp, t.lens, t.freqs, t.n, 256 + 5000, 40, NULL, NULL, 0, 1, &m) == YAN_OK);
    CHECK(m.n_tok < 256 + 5000); /* stopped by frequency, not by size */
    CHECK(m.n_merges > 0);
    for (size_t r = 0; r < m.n_merges; r++) CHECK(m.merge_count[r] >= 40);
    /* no pair left in the final segmentation occurs 40 times or more */
    int64_t best = 0;
    for (size_t w = 0; w < m.n_words; w++)
        for (uint32_t i = 0; i + 1 < m.seg_len[w]; i++) {
            int32_t a = m.seg[m.seg_off[w] + i], b = m.seg[m.seg_off[w] + i + 1];
            int64_t c = 0;
            for (size_t v = 0; v < m.n_words; v++)
                for (uint32_t j = 0; j + 1 < m.seg_len[v]; j++)
                    if (m.seg[m.seg_off[v] + j] == a && m.seg[m.seg_off[v] + j + 1] == b) c += (int64_t)t.freqs[v];
            if (c > best) best = c;
        }
    CHECK(best < 40);
    yan_bpe_free(&m);
}

/* ---------------------------------------------------------------- trainer */

static bool count_calls(float f, void *ud) {
    (void)f;
    (*(int *)ud)++;
    return true;
}

TEST(train_file_deterministic_and_specials) {
    size_t n;
    char *text = make_corpus(300000, 99, &n);
    char *in = path_in_tmp("train_corpus.txt");
    CHECK(write_text(in, text, n));
    const char *files[1] = {in};
    const char *special[2] = {"<|endoftext|>", "<|pad|>"};
    yan_train_tokenizer_params p = yan_train_tokenizer_params_default();
    p.vocab_size = 600;
    p.special = special;
    p.n_special = 2;
    int calls = 0;
    p.progress = count_calls;
    p.progress_ud = &calls;

    char *out1 = path_in_tmp("tok1.json"), *out2 = path_in_tmp("tok2.json"), *out3 = path_in_tmp("tok3.json");
    yan_train_stats st1, st2;
    yan_train_opts small = {4096}, big = {1u << 30};
    p.n_threads = 1;
    CHECK(yan_tokenizer_train_ex(files, 1, &p, out1, &small, &st1) == YAN_OK);
    p.n_threads = 2;
    CHECK(yan_tokenizer_train_ex(files, 1, &p, out2, &small, &st2) == YAN_OK);
    CHECK(yan_tokenizer_train_ex(files, 1, &p, out3, &big, NULL) == YAN_OK);
    CHECK(calls > 3);
    CHECK(st1.n_vocab == 600 && st1.n_learned == 598 - 256);
    CHECK(st1.n_bytes == n && st1.n_tokens > 0 && st1.n_tokens < n / 2);
    CHECK(st1.n_tokens == st2.n_tokens && st1.n_merges == st2.n_merges);
    size_t n1 = 0, n2 = 0, n3 = 0;
    char *j1 = slurp(out1, &n1), *j2 = slurp(out2, &n2), *j3 = slurp(out3, &n3);
    CHECK(j1 && j2 && j3);
    if (j1 && j2 && j3) {
        CHECK(n1 == n2 && memcmp(j1, j2, n1) == 0);  /* 1 vs 2 threads */
        CHECK(n1 == n3 && memcmp(j1, j3, n1) == 0);  /* many chunks vs one */
        CHECK(strstr(j1, "{\"id\": 598, \"content\": \"<|endoftext|>\"") != NULL);
        CHECK(strstr(j1, "{\"id\": 599, \"content\": \"<|pad|>\"") != NULL);
        CHECK(strstr(j1, "\"<|endoftext|>\": 598") != NULL);
        CHECK(strstr(j1, "\"<|pad|>\": 599") != NULL);
        CHECK(strstr(j1, "\"\\u0120the\": ") != NULL || strstr(j1, "\"\xc4\xa0the\": ") != NULL);
        CHECK(strstr(j1, "\"type\": \"BPE\"") != NULL);
        CHECK(strstr(j1, "\\\\p{N}{1,3}") != NULL); /* cl100k is the default */
        /* the output is valid JSON */
        yan_arena a;
        yan_arena_init(&a, 1 << 16);
        yan_json *root = NULL;
        CHECK(yan_json_parse(j1, n1, &a, &root) == YAN_OK);
        yan_arena_free(&a);
    }
    free(j1);
    free(j2);
    free(j3);

    /* min_frequency: nothing occurs a billion times, so no merge at all */
    p.min_frequency = 1000000000;
    yan_train_stats st;
    CHECK(yan_tokenizer_train_ex(files, 1, &p, out3, NULL, &st) == YAN_OK);
    CHECK(st.n_merges == 0 && st.n_vocab == 258);
    char *j = slurp(out3, &n3);
    CHECK(j && strstr(j, "{\"id\": 256, \"content\": \"<|endoftext|>\"") != NULL);
    free(j);
    free(text);
    free(in);
    free(out1);
    free(out2);
    free(out3);
}

static bool abort_after_3(float f, void *ud) {
    (void)f;
    return ++*(int *)ud < 3;
}

static bool abort_at_once(float f, void *ud) {
    (void)f;
    (void)ud;
    return false;
}

TEST(train_abort_writes_nothing) {
    size_t n;
    char *text = make_corpus(100000, 5, &n);
    char *in = path_in_tmp("abort_corpus.txt"), *out = path_in_tmp("abort.json");
    CHECK(write_text(in, text, n));
    const char *files[1] = {in};
    yan_train_tokenizer_params p = yan_train_tokenizer_params_default();
    p.vocab_size = 2000;
    int calls = 0;
    p.progress = abort_after_3;
    p.progress_ud = &calls;
    yan_train_opts o = {8192};
    CHECK(yan_tokenizer_train_ex(files, 1, &p, out, &o, NULL) == YAN_ERR_ABORTED);
    CHECK(!file_exists(out));
    CHECK(strstr(yan_last_error(), "abort") != NULL);
    p.progress = abort_at_once;
    CHECK(yan_tokenizer_train(files, 1, &p, out) == YAN_ERR_ABORTED);
    CHECK(!file_exists(out));
    /* no temporary left behind either */
    size_t dn = strlen(yan_test_tmp_dir());
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls %.*s | grep -q abort.json", (int)dn, yan_test_tmp_dir());
    CHECK(system(cmd) != 0);
    free(text);
    free(in);
    free(out);
}

TEST(train_errors_are_clear) {
    char *out = path_in_tmp("err.json");
    const char *missing[1] = {"/nonexistent/corpus.txt"};
    yan_train_tokenizer_params p = yan_train_tokenizer_params_default();
    p.vocab_size = 1000;
    CHECK(yan_tokenizer_train(missing, 1, &p, out) == YAN_ERR_IO);
    CHECK(strstr(yan_last_error(), "/nonexistent/corpus.txt") != NULL);
    CHECK(!file_exists(out));

    char *in = path_in_tmp("err_corpus.txt");
    CHECK(write_text(in, "hello hello world\n", 18));
    const char *files[1] = {in};
    CHECK(yan_tokenizer_train(files, 1, &p, "/nonexistent-dir/out.json") == YAN_ERR_IO);
    CHECK(strstr(yan_last_error(), "/nonexistent-dir/out.json") != NULL);

    p.pre = "no-such-pre";
    CHECK(yan_tokenizer_train(files, 1, &p, out) == YAN_ERR_UNSUPPORTED);
    CHECK(strstr(yan_last_error(), "no-such-pre") != NULL);
    p.pre = "gpt2";
    p.vocab_size = 100;
    CHECK(yan_tokenizer_train(files, 1, &p, out) == YAN_ERR_INVALID_ARG);
    CHECK(strstr(yan_last_error(), "256") != NULL);
    p.vocab_size = 1000;
    const char *dup[2] = {"<s>", "<s>"};
    p.special = dup;
    p.n_special = 2;
    CHECK(yan_tokenizer_train(files, 1, &p, out) == YAN_ERR_INVALID_ARG);
    const char *clash[1] = {"hello"}; /* learned from the corpus */
    p.special = clash;
    p.n_special = 1;
    CHECK(yan_tokenizer_train(files, 1, &p, out) == YAN_ERR_INVALID_ARG);
    CHECK(strstr(yan_last_error(), "hello") != NULL);
    CHECK(!file_exists(out));
    p.n_special = 0;
    CHECK(yan_tokenizer_train(files, 0, &p, out) == YAN_ERR_INVALID_ARG);

    /* an empty corpus is fine: 256 byte tokens, no merges */
    char *empty = path_in_tmp("empty.txt");
    CHECK(write_text(empty, "", 0));
    const char *ef[1] = {empty};
    yan_train_stats st;
    CHECK(yan_tokenizer_train_ex(ef, 1, &p, out, NULL, &st) == YAN_OK);
    CHECK(st.n_vocab == 256 && st.n_merges == 0);
    free(empty);
    free(in);
    free(out);
}

TEST(train_alloc_failures_are_clean) {
    size_t n;
    char *text = make_corpus(20000, 3, &n);
    char *in = path_in_tmp("oom_corpus.txt"), *out = path_in_tmp("oom.json");
    CHECK(write_text(in, text, n));
    const char *files[1] = {in};
    const char *special[1] = {"<|eot|>"};
    yan_train_tokenizer_params p = yan_train_tokenizer_params_default();
    p.vocab_size = 400;
    p.special = special;
    p.n_special = 1;
    p.n_threads = 1;
    yan_train_opts o = {4096};
    size_t base = yan_alloc_used();
    int failures = 0, k;
    for (k = 1; k < 2000; k++) {
        yan_alloc_fail_after(k);
        yan_status s = yan_tokenizer_train_ex(files, 1, &p, out, &o, NULL);
        yan_alloc_fail_after(0);
        CHECK(yan_alloc_used() == base);
        if (s == YAN_OK) break;
        CHECK(s == YAN_ERR_NOMEM);
        CHECK(!file_exists(out));
        failures++;
    }
    CHECK(k < 2000 && failures > 10);
    free(text);
    free(in);
    free(out);
}

/* The written vocabulary loads with yan_tokenizer_load, encodes the training
 * text into exactly the trainer's token count (the encoder applies the same
 * merges), round-trips any bytes, and the GGUF form encodes identically. */
TEST(train_output_loads_and_round_trips) {
    size_t n;
    char *text = make_corpus(200000, 77, &n);
    char *in = path_in_tmp("rt_corpus.txt"), *json = path_in_tmp("rt.json"), *gguf = path_in_tmp("rt.gguf");
    CHECK(write_text(in, text, n));
    const char *files[1] = {in};
    const char *special[1] = {"<|endoftext|>"};
    yan_train_tokenizer_params p = yan_train_tokenizer_params_default();
    p.vocab_size = 1000;
    p.special = special;
    p.n_special = 1;
    yan_train_stats st;
    CHECK(yan_tokenizer_train_ex(files, 1, &p, json, NULL, &st) == YAN_OK);
    yan_tokenizer *tok = NULL;
    yan_status s = yan_tokenizer_load(json, NULL, &tok);
    CHECK(s == YAN_OK);
    if (s != YAN_OK) {
        fprintf(stderr, "  load %s: %s\n", json, yan_last_error());
        goto out;
    }
    /* the small corpus runs out of pairs before 1000 */
    int32_t eot = st.n_vocab - 1;
    CHECK(st.n_vocab > 256 + 100 && st.n_vocab <= 1000);
    CHECK(yan_tokenizer_n_vocab(tok) == st.n_vocab);
    CHECK(yan_tokenizer_find(tok, "<|endoftext|>", 13) == eot);
    yan_token *ids = NULL;
    size_t n_ids = 0;
    CHECK(yan_tokenize_alloc(tok, text, n, 0, &ids, &n_ids) == YAN_OK);
    CHECK(n_ids == st.n_tokens);
    char *back = malloc(n + 1);
    CHECK(yan_detokenize(tok, ids, n_ids, back, n + 1, false) == (int64_t)n);
    CHECK(memcmp(back, text, n) == 0);
    free(back);
    /* arbitrary bytes, including invalid UTF-8 and the special's text */
    const char odd[] = "\xff\xfe caf\xc3\xa9 \xe6\x97\xa5 <|endoftext|>\r\n\t\t x\x80y 12345";
    yan_token oid[128];
    char ob[256];
    int64_t k = yan_tokenize(tok, odd, sizeof odd - 1, oid, 128, YAN_TOKENIZE_SPECIAL);
    CHECK(k > 0);
    bool has_special = false;
    for (int64_t i = 0; i < k; i++) has_special |= oid[i] == eot;
    CHECK(has_special);
    CHECK(yan_detokenize(tok, oid, (size_t)k, ob, sizeof ob, false) == (int64_t)(sizeof odd - 1));
    CHECK(memcmp(ob, odd, sizeof odd - 1) == 0);

    /* the same vocabulary as GGUF */
    CHECK(yan_tokenizer_train_ex(files, 1, &p, gguf, NULL, NULL) == YAN_OK);
    yan_tokenizer *tg = NULL;
    s = yan_tokenizer_load(gguf, NULL, &tg);
    CHECK(s == YAN_OK);
    if (s == YAN_OK) {
        yan_token *gid = NULL;
        size_t n_gid = 0;
        CHECK(yan_tokenize_alloc(tg, text, n, 0, &gid, &n_gid) == YAN_OK);
        CHECK(n_gid == n_ids && gid && memcmp(gid, ids, n_ids * sizeof *ids) == 0);
        CHECK(yan_tokenizer_special(tg, YAN_SPECIAL_EOS) == eot);
        yan_free_tokens(gid);
    } else {
        fprintf(stderr, "  load %s: %s\n", gguf, yan_last_error());
    }
    yan_tokenizer_free(tg);
    yan_free_tokens(ids);
out:
    yan_tokenizer_free(tok);
    free(text);
    free(in);
    free(json);
    free(gguf);
}

/* Each pre-tokenizer's regex is written so that a loader recognises it. */
TEST(train_each_pre_tokenizer_round_trips) {
    char *in = path_in_tmp("pre_corpus.txt"), *out = path_in_tmp("pre.json");
    const char text[] = "Hello world, it's 2024! Don't panic: 3.14159 caf\xc3\xa9\n\n  indented\tline\r\n";
    CHECK(write_text(in, text, sizeof text - 1));
    const char *files[1] = {in};
    static const char *const pres[] = {"gpt2", "cl100k", "o200k", "qwen2"};
    for (int i = 0; i < 4; i++) {
        yan_train_tokenizer_params p = yan_train_tokenizer_params_default();
        p.vocab_size = 300;
        p.pre = pres[i];
        p.min_frequency = 1;
        CHECK(yan_tokenizer_train(files, 1, &p, out) == YAN_OK);
        yan_tokenizer *tok = NULL;
        if (yan_tokenizer_load(out, NULL, &tok) != YAN_OK) {
            fprintf(stderr, "  %s: %s\n", pres[i], yan_last_error());
            CHECK(0);
            continue;
        }
        CHECK(strcmp(yan_tokenizer_pre(tok), pres[i]) == 0);
        yan_token ids[256];
        char back[256];
        int64_t k = yan_tokenize(tok, text, sizeof text - 1, ids, 256, 0);
        CHECK(k > 0 && k < (int64_t)sizeof text - 1);
        CHECK(yan_detokenize(tok, ids, (size_t)(k > 0 ? k : 0), back, sizeof back, false) == (int64_t)sizeof text - 1);
        CHECK(memcmp(back, text, sizeof text - 1) == 0);
        yan_tokenizer_free(tok);
    }
    free(in);
    free(out);
}
