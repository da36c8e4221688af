/* fuzz_tiktoken.c — libFuzzer harness: arbitrary bytes as a tiktoken rank
 * file; a file that loads must also encode and round-trip a fixed text. */
#include "tokenizer/pretok.h"
#include "tokenizer/tok.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    yan_tokenizer t;
    yan_tok_init(&t);
    if (yan_load_tiktoken(&t, data, size, "fuzz.tiktoken") == YAN_OK) {
        t.pre = YAN_PRE_CL100K;
        if (yan_tok_finalize(&t) == YAN_OK) {
            static const char text[] = "Hello, world! 123 \xe4\xb8\xad\xe6\x96\x87 \xff tokens";
            yan_token *ids;
            size_t n;
            if (yan_tokenize_alloc(&t, text, sizeof text - 1, 0, &ids, &n) == YAN_OK) {
                char back[256];
                int64_t k = yan_detokenize(&t, ids, n, back, sizeof back, false);
                if (k != (int64_t)(sizeof text - 1) || memcmp(back, text, sizeof text - 1) != 0) abort();
                yan_free_tokens(ids);
            }
        }
    }
    yan_tok_release(&t);
    return 0;
}
