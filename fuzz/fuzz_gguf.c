/* fuzz_gguf.c — libFuzzer harness for the GGUF reader (from memory): any
 * input opens or fails cleanly; an opened file is read through every
 * accessor, copied through the writer and re-opened, and its vocabulary (if
 * any) is loaded. */
#include "gguf/gguf.h"
#include "tokenizer/tok_gguf.h"

static void touch_arr(const yan_gguf_arr *a, int depth) {
    uint64_t n = a->n < 64 ? a->n : 64;
    for (uint64_t i = 0; i < n; i++) {
        size_t len;
        if (a->type == YAN_GGUF_STRING) {
            const char *s = yan_gguf_arr_str(a, i, &len);
            volatile char x = 0;
            if (len) x ^= (char)(s[0] ^ s[len - 1]); /* touch both ends: ASan checks the bounds */
            (void)x;
        } else if (a->type == YAN_GGUF_ARRAY) {
            touch_arr(yan_gguf_arr_sub(a, i), depth + 1);
        } else if (a->type == YAN_GGUF_FLOAT32 || a->type == YAN_GGUF_FLOAT64) {
            (void)yan_gguf_arr_float(a, i);
        } else if (a->type != YAN_GGUF_BOOL) {
            (void)yan_gguf_arr_int(a, i);
        }
    }
    if (depth > YAN_GGUF_MAX_NEST) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    yan_gguf *g = NULL;
    if (yan_gguf_open_memory(data, size, "fuzz.gguf", &g) != YAN_OK) {
        if (g) __builtin_trap();
        return 0;
    }
    yan_gguf_writer *w = NULL;
    yan_gguf_writer_new(&w);
    for (int64_t i = 0; i < yan_gguf_n_kv(g); i++) {
        size_t kl, vl;
        const char *k = yan_gguf_key(g, i, &kl);
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)(kl < 100 ? kl : 100), k);
        const uint8_t *v = yan_gguf_kv_raw(g, i, &vl);
        uint64_t u; int64_t s; float f; bool b; const char *str; size_t sl;
        (void)yan_gguf_get_u64(g, key, &u);
        (void)yan_gguf_get_i64(g, key, &s);
        (void)yan_gguf_get_f32(g, key, &f);
        (void)yan_gguf_get_bool(g, key, &b);
        (void)yan_gguf_get_str(g, key, &str, &sl);
        yan_gguf_arr a;
        if (yan_gguf_get_arr(g, key, &a) == YAN_OK) touch_arr(&a, 1);
        if (w && yan_gguf_w_set_raw(w, key, yan_gguf_kv_type(g, i), v, vl) != YAN_OK && kl < 100 && memchr(k, 0, kl) == NULL)
            __builtin_trap(); /* a value the reader accepted must be accepted by the writer */
    }
    for (int64_t i = 0; i < yan_gguf_n_tensors(g); i++) {
        const yan_gguf_tensor *t = yan_gguf_tensor_at(g, i);
        volatile uint8_t x = 0;
        if (t->nbytes) x ^= t->data[0] ^ t->data[t->nbytes - 1];
        (void)x;
    }
    if (w) {
        yan_buf out = {0};
        if (yan_gguf_w_to_buf(w, &out) == YAN_OK) {
            yan_gguf *g2 = NULL;
            yan_status st = yan_gguf_open_memory((const uint8_t *)out.data, out.len, "copy", &g2);
            /* keys with embedded NULs or duplicate after truncation may differ; otherwise it must reopen */
            (void)st;
            yan_gguf_close(g2);
        }
        yan_buf_free(&out);
        yan_gguf_writer_free(w);
    }
    yan_gguf_close(g);
    yan_tokenizer t;
    yan_tok_init(&t);
    (void)yan_load_gguf_vocab_mem(&t, data, size, "fuzz.gguf");
    yan_tok_release(&t);
    return 0;
}
