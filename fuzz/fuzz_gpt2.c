/* fuzz_gpt2.c — libFuzzer harness for the GPT-2 encoder.json + vocab.bpe
 * loader: the input is split at the first NUL byte into the two files. */
#include "tokenizer/tok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t a = nul ? (size_t)(nul - data) : size;
    const uint8_t *m = nul ? nul + 1 : data + size;
    size_t mn = nul ? size - a - 1 : 0;
    yan_tokenizer t;
    yan_tok_init(&t);
    if (yan_load_gpt2_parts(&t, data, a, m, mn, "encoder.json", "vocab.bpe") == YAN_OK && yan_tok_finalize(&t) == YAN_OK) {
        yan_token *ids;
        size_t n;
        static const char text[] = "Hello there, it's 2024!\n";
        if (yan_tokenize_alloc(&t, text, sizeof text - 1, 0, &ids, &n) == YAN_OK) yan_free_tokens(ids);
    }
    yan_tok_release(&t);
    return 0;
}
