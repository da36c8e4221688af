/* fuzz_json.c — libFuzzer harness for the JSON parser: any input must parse
 * or fail cleanly; a parsed tree is walked completely and re-escaped. */
#include "base/json.h"

static size_t walk(const yan_json *v, yan_buf *b, int depth) {
    size_t n = 1;
    switch (yan_json_typeof(v)) {
    case YAN_JSON_STRING: {
        size_t len;
        const char *s = yan_json_str(v, &len);
        yan_json_write_string(b, s, len);
        break;
    }
    case YAN_JSON_ARRAY:
    case YAN_JSON_OBJECT:
        for (size_t i = 0; i < yan_json_len(v); i++) {
            size_t kl;
            const char *k = yan_json_key(v, i, &kl);
            if (k) {
                yan_json_write_string(b, k, kl);
                if (yan_json_get_n(v, k, kl) == NULL) __builtin_trap();
            }
            n += walk(yan_json_at(v, i), b, depth + 1);
        }
        break;
    default: {
        double d;
        int64_t i;
        bool bo;
        (void)yan_json_num(v, &d);
        (void)yan_json_int(v, &i);
        (void)yan_json_bool(v, &bo);
    }
    }
    if (depth > YAN_JSON_MAX_DEPTH + 1) __builtin_trap();
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    yan_arena a;
    yan_arena_init(&a, 4096);
    yan_json *root = NULL;
    if (yan_json_parse((const char *)data, size, &a, &root) == YAN_OK) {
        yan_buf b = {0};
        walk(root, &b, 0);
        /* every escaped string parses back */
        if (b.len) {
            yan_buf q = {0};
            yan_json_write_string(&q, b.data, b.len);
            yan_json *r = NULL;
            if (!q.oom && yan_json_parse(q.data, q.len, &a, &r) != YAN_OK) __builtin_trap();
            yan_buf_free(&q);
        }
        yan_buf_free(&b);
    } else if (root != NULL) {
        __builtin_trap();
    }
    yan_arena_free(&a);
    return 0;
}
