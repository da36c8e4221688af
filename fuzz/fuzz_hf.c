/* fuzz_hf.c — libFuzzer harness for the Hugging Face tokenizer.json loader:
 * any input loads or fails cleanly (and a loaded vocabulary finalizes or
 * fails cleanly). */
#include "tokenizer/tok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    yan_tokenizer t;
    yan_tok_init(&t);
    if (yan_load_hf(&t, data, size, "/nonexistent/fuzz/tokenizer.json") == YAN_OK) (void)yan_tok_finalize(&t);
    yan_tok_release(&t);
    return 0;
}
