/* fuzz_encode.c — libFuzzer harness for the encoder: the first byte picks a
 * pre-tokenizer and merge rule, the rest is text. Every text must encode,
 * and decode back to the same bytes; 1 and 2 threads must agree. */
#include "tokenizer/pretok.h"
#include "tokenizer/tok.h"

#include <stdlib.h>

static const char *const EXTRA[] = {"th", "the", " the", "he", "in", " a", "an", "and", " and", "  ", "   ",
                                    "\n\n", "'s", "12", "123", "\xe4\xb8", "\xe4\xb8\xad", "\xc3\xa9", "e\xcc\x81"};

static yan_tokenizer *build(int pre, int mode) {
    yan_tokenizer *t = malloc(sizeof *t);
    yan_tok_init(t);
    t->pre = pre;
    t->merge_mode = mode;
    int32_t id = 0;
    for (int b = 0; b < 256; b++, id++) {
        uint8_t c = (uint8_t)b;
        yan_tok_set(t, id, &c, 1, YAN_TT_NORMAL, 0);
    }
    for (size_t i = 0; i < sizeof EXTRA / sizeof EXTRA[0]; i++, id++) {
        size_t n = strlen(EXTRA[i]);
        yan_tok_set(t, id, EXTRA[i], n, YAN_TT_NORMAL, 0);
        if (mode == YAN_MERGE_PAIRS) {
            /* merge = longest proper prefix that is a token + the rest */
            for (size_t k = n - 1; k > 0; k--) {
                int32_t a = yan_tok_lookup(t, EXTRA[i], k), b = yan_tok_lookup(t, EXTRA[i] + k, n - k);
                if (a >= 0 && b >= 0 && a != id && b != id) {
                    yan_tok_add_merge(t, a, b);
                    break;
                }
            }
        }
    }
    yan_tok_set(t, id, "<|eot|>", 7, YAN_TT_CONTROL, 0);
    if (yan_tok_finalize(t) != YAN_OK) abort();
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int pre = data[0] % YAN_PRE_COUNT, mode = (data[0] / YAN_PRE_COUNT) % 2 ? YAN_MERGE_PAIRS : YAN_MERGE_RANK;
    yan_tokenizer *t = build(pre, mode);
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    uint32_t flags = (data[0] & 0x80) ? YAN_TOKENIZE_SPECIAL : 0;
    yan_token *ids;
    size_t k;
    if (yan_tokenize_alloc(t, text, n, flags, &ids, &k) != YAN_OK) abort();
    char *back = malloc(n + 1);
    if (yan_detokenize(t, ids, k, back, n + 1, false) != (int64_t)n || memcmp(back, text, n) != 0) abort();
    t->heap_from = 2;
    yan_token *ids2;
    size_t k2;
    if (yan_tokenize_alloc(t, text, n, flags, &ids2, &k2) != YAN_OK) abort();
    if (k2 != k || memcmp(ids, ids2, k * sizeof *ids) != 0) abort();
    yan_free_tokens(ids);
    yan_free_tokens(ids2);
    free(back);
    yan_tok_release(t);
    free(t);
    return 0;
}
