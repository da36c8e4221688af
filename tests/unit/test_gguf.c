/* test_gguf.c — GGUF writer/reader: round trip of every value type, nested
 * arrays, tensors, the exact byte layout of a tiny file, strict rejection of
 * corrupt files (truncation at every byte, flipped fields), allocation
 * failures without leaks, and the ggml type table. */
#include "gguf/gguf.h"
#include "test.h"

static yan_gguf_writer *make_all_types(void) {
    yan_gguf_writer *w = NULL;
    if (yan_gguf_writer_new(&w) != YAN_OK) return NULL;
    yan_gguf_w_set_str(w, "general.architecture", "test", 4);
    yan_gguf_w_set_u8(w, "t.u8", 200);
    yan_gguf_w_set_i8(w, "t.i8", -100);
    yan_gguf_w_set_u16(w, "t.u16", 60000);
    yan_gguf_w_set_i16(w, "t.i16", -30000);
    yan_gguf_w_set_u32(w, "t.u32", 4000000000u);
    yan_gguf_w_set_i32(w, "t.i32", -2000000000);
    yan_gguf_w_set_f32(w, "t.f32", 1.5f);
    yan_gguf_w_set_bool(w, "t.bool", true);
    yan_gguf_w_set_u64(w, "t.u64", 18000000000000000000ull);
    yan_gguf_w_set_i64(w, "t.i64", -9000000000000000000ll);
    yan_gguf_w_set_f64(w, "t.f64", -2.25);
    yan_gguf_w_set_str(w, "t.str", "h\0i", 3);
    float fa[3] = {1, 2, 3};
    int32_t ia[4] = {-1, 0, 1, 2};
    uint8_t ba[2] = {0, 1};
    yan_gguf_w_set_arr(w, "t.arr_f32", YAN_GGUF_FLOAT32, fa, 3);
    yan_gguf_w_set_arr(w, "t.arr_i32", YAN_GGUF_INT32, ia, 4);
    yan_gguf_w_set_arr(w, "t.arr_bool", YAN_GGUF_BOOL, ba, 2);
    yan_gguf_w_set_arr(w, "t.arr_empty", YAN_GGUF_UINT64, NULL, 0);
    const char *ss[3] = {"a", "", "ccc"};
    yan_gguf_w_set_arr_str(w, "t.arr_str", ss, NULL, 3);
    /* nested: array of 2 arrays: [u16 {7,8}], [string {"x"}] */
    yan_buf nb = {0};
    uint32_t at = YAN_GGUF_ARRAY, u16t = YAN_GGUF_UINT16, st = YAN_GGUF_STRING;
    uint64_t n2 = 2, n1 = 1, l1 = 1;
    uint16_t v78[2] = {7, 8};
    yan_buf_append(&nb, &at, 4); yan_buf_append(&nb, &n2, 8);
    yan_buf_append(&nb, &u16t, 4); yan_buf_append(&nb, &n2, 8); yan_buf_append(&nb, v78, 4);
    yan_buf_append(&nb, &st, 4); yan_buf_append(&nb, &n1, 8); yan_buf_append(&nb, &l1, 8); yan_buf_append(&nb, "x", 1);
    yan_gguf_w_set_raw(w, "t.nested", YAN_GGUF_ARRAY, nb.data, nb.len);
    yan_buf_free(&nb);
    return w;
}

TEST(gguf_roundtrip_all_types) {
    size_t before = yan_alloc_used();
    yan_gguf_writer *w = make_all_types();
    CHECK(w != NULL);
    float t0[64];
    for (int i = 0; i < 64; i++) t0[i] = (float)i;
    uint8_t q8[2 * 34] = {0};
    q8[5] = 9;
    uint64_t d0[2] = {16, 4}, d1[1] = {64};
    CHECK(yan_gguf_w_add_tensor(w, "blk.0.w", YAN_GGML_F32, 2, d0, t0) == YAN_OK);
    CHECK(yan_gguf_w_add_tensor(w, "q", YAN_GGML_Q8_0, 1, d1, q8) == YAN_OK);
    CHECK(yan_gguf_w_add_tensor(w, "q", YAN_GGML_Q8_0, 1, d1, q8) == YAN_ERR_INVALID_ARG);
    uint64_t bad[1] = {33};
    CHECK(yan_gguf_w_add_tensor(w, "bad", YAN_GGML_Q8_0, 1, bad, q8) == YAN_ERR_INVALID_ARG);
    CHECK(yan_gguf_w_add_tensor(w, "bad", 4, 1, d1, q8) == YAN_ERR_INVALID_ARG);
    char path[512];
    snprintf(path, sizeof path, "%s/all.gguf", yan_test_tmp_dir());
    CHECK(yan_gguf_w_write(w, path) == YAN_OK);
    yan_gguf_writer_free(w);

    yan_gguf *g = NULL;
    CHECK(yan_gguf_open(path, &g) == YAN_OK);
    if (!g) return;
    CHECK(yan_gguf_version(g) == 3 && yan_gguf_alignment(g) == 32 && yan_gguf_n_kv(g) == 19);
    uint64_t u64; int64_t i64; uint32_t u32; int32_t i32; float f; double d; bool b;
    const char *s; size_t n;
    CHECK(yan_gguf_get_str(g, "general.architecture", &s, &n) == YAN_OK && n == 4 && memcmp(s, "test", 4) == 0);
    CHECK(yan_gguf_get_u32(g, "t.u8", &u32) == YAN_OK && u32 == 200);
    CHECK(yan_gguf_get_i32(g, "t.i8", &i32) == YAN_OK && i32 == -100);
    CHECK(yan_gguf_get_u32(g, "t.i8", &u32) == YAN_ERR_FORMAT); /* negative */
    CHECK(yan_gguf_get_u64(g, "t.u16", &u64) == YAN_OK && u64 == 60000);
    CHECK(yan_gguf_get_i64(g, "t.i16", &i64) == YAN_OK && i64 == -30000);
    CHECK(yan_gguf_get_u32(g, "t.u32", &u32) == YAN_OK && u32 == 4000000000u);
    CHECK(yan_gguf_get_i32(g, "t.u32", &i32) == YAN_ERR_FORMAT); /* does not fit */
    CHECK(yan_gguf_get_i32(g, "t.i32", &i32) == YAN_OK && i32 == -2000000000);
    CHECK(yan_gguf_get_f32(g, "t.f32", &f) == YAN_OK && f == 1.5f);
    CHECK(yan_gguf_get_bool(g, "t.bool", &b) == YAN_OK && b);
    CHECK(yan_gguf_get_u64(g, "t.u64", &u64) == YAN_OK && u64 == 18000000000000000000ull);
    CHECK(yan_gguf_get_i64(g, "t.u64", &i64) == YAN_ERR_FORMAT);
    CHECK(yan_gguf_get_i64(g, "t.i64", &i64) == YAN_OK && i64 == -9000000000000000000ll);
    CHECK(yan_gguf_get_f64(g, "t.f64", &d) == YAN_OK && d == -2.25);
    CHECK(yan_gguf_get_str(g, "t.str", &s, &n) == YAN_OK && n == 3 && s[1] == 0);
    CHECK(yan_gguf_get_str(g, "t.u8", &s, &n) == YAN_ERR_FORMAT && strstr(yan_last_error(), "t.u8"));
    CHECK(yan_gguf_get_u32(g, "nope", &u32) == YAN_ERR_NOT_FOUND);
    CHECK(yan_gguf_get_bool(g, "t.u8", &b) == YAN_ERR_FORMAT);
    yan_gguf_arr a;
    CHECK(yan_gguf_get_arr(g, "t.arr_f32", &a) == YAN_OK && a.type == YAN_GGUF_FLOAT32 && a.n == 3);
    CHECK(yan_gguf_arr_float(&a, 2) == 3.0);
    CHECK(yan_gguf_get_arr(g, "t.arr_i32", &a) == YAN_OK && a.n == 4 && yan_gguf_arr_int(&a, 0) == -1 && yan_gguf_arr_int(&a, 3) == 2);
    CHECK(yan_gguf_get_arr(g, "t.arr_bool", &a) == YAN_OK && a.n == 2 && a.data[1] == 1);
    CHECK(yan_gguf_get_arr(g, "t.arr_empty", &a) == YAN_OK && a.n == 0 && a.type == YAN_GGUF_UINT64);
    CHECK(yan_gguf_get_arr(g, "t.arr_str", &a) == YAN_OK && a.n == 3 && a.type == YAN_GGUF_STRING);
    s = yan_gguf_arr_str(&a, 2, &n);
    CHECK(n == 3 && memcmp(s, "ccc", 3) == 0);
    s = yan_gguf_arr_str(&a, 1, &n);
    CHECK(n == 0);
    CHECK(yan_gguf_get_arr(g, "t.nested", &a) == YAN_OK && a.type == YAN_GGUF_ARRAY && a.n == 2);
    const yan_gguf_arr *s0 = yan_gguf_arr_sub(&a, 0), *s1 = yan_gguf_arr_sub(&a, 1);
    CHECK(s0->type == YAN_GGUF_UINT16 && s0->n == 2 && yan_gguf_arr_int(s0, 1) == 8);
    CHECK(s1->type == YAN_GGUF_STRING && s1->n == 1);
    s = yan_gguf_arr_str(s1, 0, &n);
    CHECK(n == 1 && s[0] == 'x');
    CHECK(yan_gguf_get_arr(g, "t.u8", &a) == YAN_ERR_FORMAT);

    CHECK(yan_gguf_n_tensors(g) == 2);
    const yan_gguf_tensor *t = yan_gguf_find_tensor(g, "blk.0.w");
    CHECK(t && t->n_dims == 2 && t->ne[0] == 16 && t->ne[1] == 4 && t->ne[2] == 1 && t->type == YAN_GGML_F32);
    CHECK(t && t->nbytes == 256 && memcmp(t->data, t0, 256) == 0 && t->offset == 0);
    t = yan_gguf_find_tensor(g, "q");
    CHECK(t && t->nbytes == 68 && t->offset == 256 && t->data[5] == 9);
    CHECK(t && ((size_t)(t->data - yan_gguf_bytes(g, &n)) % 32) == 0);
    CHECK(yan_gguf_find_tensor(g, "zz") == NULL);

    /* copy every kv through set_raw and compare the bytes */
    yan_gguf_writer *w2 = NULL;
    CHECK(yan_gguf_writer_new(&w2) == YAN_OK);
    for (int64_t i = 0; i < yan_gguf_n_kv(g); i++) {
        size_t kl, vl;
        const char *k = yan_gguf_key(g, i, &kl);
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)kl, k);
        const uint8_t *v = yan_gguf_kv_raw(g, i, &vl);
        CHECK(yan_gguf_w_set_raw(w2, key, yan_gguf_kv_type(g, i), v, vl) == YAN_OK);
    }
    yan_buf out = {0};
    CHECK(yan_gguf_w_to_buf(w2, &out) == YAN_OK);
    yan_gguf *g2 = NULL;
    CHECK(yan_gguf_open_memory((const uint8_t *)out.data, out.len, "copy", &g2) == YAN_OK);
    CHECK(g2 && yan_gguf_n_kv(g2) == 19 && yan_gguf_n_tensors(g2) == 0);
    yan_gguf_close(g2);
    yan_buf_free(&out);
    yan_gguf_writer_free(w2);
    yan_gguf_close(g);
    CHECK(yan_alloc_used() == before);
}

/* The tiny file: kv a=u32 7, tensor t f32 [2] = {1, 2}. */
static const uint8_t k_tiny[128] = {
    'G', 'G', 'U', 'F', 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, /* header (24) */
    1, 0, 0, 0, 0, 0, 0, 0, 'a', 4, 0, 0, 0, 7, 0, 0, 0,                          /* kv (17) */
    1, 0, 0, 0, 0, 0, 0, 0, 't', 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,              /* name, n_dims, ne0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,                                           /* type, offset (33) */
    [96] = 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40,                          /* data at 96 */
};

TEST(gguf_byte_exact) {
    yan_gguf_writer *w = NULL;
    CHECK(yan_gguf_writer_new(&w) == YAN_OK);
    CHECK(yan_gguf_w_set_u32(w, "a", 7) == YAN_OK);
    float v[2] = {1, 2};
    uint64_t d[1] = {2};
    CHECK(yan_gguf_w_add_tensor(w, "t", YAN_GGML_F32, 1, d, v) == YAN_OK);
    yan_buf b = {0};
    CHECK(yan_gguf_w_to_buf(w, &b) == YAN_OK);
    CHECK(b.len == sizeof k_tiny && memcmp(b.data, k_tiny, sizeof k_tiny) == 0);
    /* replacing a key keeps its position */
    CHECK(yan_gguf_w_set_u32(w, "a", 9) == YAN_OK);
    b.len = 0;
    CHECK(yan_gguf_w_to_buf(w, &b) == YAN_OK);
    CHECK(b.len == 128 && b.data[37] == 9);
    yan_buf_free(&b);
    yan_gguf_writer_free(w);
    yan_gguf *g = NULL;
    CHECK(yan_gguf_open_memory(k_tiny, sizeof k_tiny, "tiny", &g) == YAN_OK);
    CHECK(g && yan_gguf_data_offset(g) == 96);
    yan_gguf_close(g);
}

static yan_status open_bytes(const uint8_t *p, size_t n) {
    yan_gguf *g = NULL;
    yan_status st = yan_gguf_open_memory(p, n, "bad.gguf", &g);
    if (st == YAN_OK) {
        if (!g) return YAN_ERR_INVALID_ARG;
        yan_gguf_close(g);
    } else if (g) {
        return YAN_ERR_INVALID_ARG;
    }
    return st;
}

TEST(gguf_corruption) {
    size_t before = yan_alloc_used();
    /* truncation at every byte: only the full file (or one that lost only the
     * final tensor padding) opens */
    for (size_t n = 0; n < sizeof k_tiny; n++) {
        yan_status st = open_bytes(k_tiny, n);
        CHECK(n >= 104 ? st == YAN_OK : st == YAN_ERR_FORMAT);
    }
    uint8_t b[128];
#define MUT(off, val, want, msg)                                                  \
    do {                                                                          \
        memcpy(b, k_tiny, sizeof b);                                              \
        b[off] = (uint8_t)(val);                                                  \
        CHECK(open_bytes(b, sizeof b) == (want));                                 \
        const char *m_ = (msg);                                                   \
        if (m_) CHECK(strstr(yan_last_error(), m_) != NULL);                      \
    } while (0)
    MUT(0, 'X', YAN_ERR_FORMAT, "bad magic");
    MUT(4, 1, YAN_ERR_UNSUPPORTED, "v1");
    MUT(4, 9, YAN_ERR_UNSUPPORTED, "version 9");
    MUT(8, 200, YAN_ERR_FORMAT, "tensor count");
    MUT(16, 200, YAN_ERR_FORMAT, "metadata count");
    MUT(23, 1, YAN_ERR_FORMAT, "metadata count");
    MUT(24, 200, YAN_ERR_FORMAT, "past the end");     /* key length */
    MUT(24, 0, YAN_ERR_FORMAT, "empty key");
    MUT(33, 13, YAN_ERR_FORMAT, "unknown value type");
    MUT(33, 7, YAN_ERR_FORMAT, "bool");               /* bool 7 */
    MUT(33, 8, YAN_ERR_FORMAT, NULL);                 /* string len 7 + garbage */
    MUT(33, 9, YAN_ERR_FORMAT, NULL);                 /* array of type 7 ... */
    MUT(41, 65, YAN_ERR_FORMAT, "name length");
    MUT(50, 5, YAN_ERR_FORMAT, "n_dims");
    MUT(54, 0, YAN_OK, NULL);                         /* ne0 = 0: empty tensor is fine */
    MUT(61, 0x80, YAN_ERR_FORMAT, "dims overflow");
    MUT(62, 2, YAN_ERR_FORMAT, "block size");         /* q4_0 with ne0 = 2 */
    MUT(62, 4, YAN_ERR_UNSUPPORTED, "unknown ggml type");
    MUT(66, 32, YAN_ERR_FORMAT, "past the end");      /* offset 32 -> beyond */
    MUT(66, 8, YAN_ERR_FORMAT, "alignment");
    MUT(54, 9, YAN_ERR_FORMAT, "past the end");       /* 9 floats do not fit */
#undef MUT
    /* duplicate key / tensor */
    {
        yan_gguf_writer *w = NULL;
        yan_gguf_writer_new(&w);
        yan_gguf_w_set_u32(w, "ab", 1);
        yan_gguf_w_set_u32(w, "ac", 2);
        yan_buf out = {0};
        yan_gguf_w_to_buf(w, &out);
        out.data[24 + 8 + 1] = 'b'; /* second key: "ab" again */
        out.data[24 + 8 + 2 + 4 + 4 + 8 + 1] = 'b';
        CHECK(open_bytes((const uint8_t *)out.data, out.len) == YAN_ERR_FORMAT);
        CHECK(strstr(yan_last_error(), "duplicate key") != NULL);
        /* alignment key of the wrong type / not a power of two / too large:
         * the writer refuses to write it, the reader refuses to read it */
        yan_gguf_w_set_u16(w, "general.alignment", 64);
        out.len = 0;
        CHECK(yan_gguf_w_to_buf(w, &out) == YAN_ERR_INVALID_ARG);
        yan_gguf_w_set_u32(w, "general.alignment", 48);
        CHECK(yan_gguf_w_to_buf(w, &out) == YAN_ERR_INVALID_ARG);
        yan_gguf_w_set_u32(w, "general.alignment", 1u << 21);
        CHECK(yan_gguf_w_to_buf(w, &out) == YAN_ERR_INVALID_ARG);
        yan_gguf_w_set_u32(w, "general.alignment", 64);
        out.len = 0;
        CHECK(yan_gguf_w_to_buf(w, &out) == YAN_OK && out.len % 64 == 0);
        uint8_t *val = (uint8_t *)memmem(out.data, out.len, "general.alignment", 17) + 17 + 4;
        static const uint32_t bad[] = {48, 0, 1u << 21, 1u << 31};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            memcpy(val, &bad[i], 4);
            CHECK(open_bytes((const uint8_t *)out.data, out.len) == YAN_ERR_FORMAT);
            CHECK(strstr(yan_last_error(), "power of two") != NULL);
        }
        memcpy(val, &(uint32_t){64}, 4);
        CHECK(open_bytes((const uint8_t *)out.data, out.len) == YAN_OK);
        val[-4] = YAN_GGUF_INT32;
        CHECK(open_bytes((const uint8_t *)out.data, out.len) == YAN_ERR_FORMAT);
        CHECK(strstr(yan_last_error(), "must be uint32") != NULL);
        yan_buf_free(&out);
        yan_gguf_writer_free(w);
    }
    /* every single-byte flip of the tiny file: clean result, no crash */
    for (size_t i = 0; i < sizeof k_tiny; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(b, k_tiny, sizeof b);
            b[i] ^= (uint8_t)(1u << bit);
            yan_status st = open_bytes(b, sizeof b);
            CHECK(st == YAN_OK || st == YAN_ERR_FORMAT || st == YAN_ERR_UNSUPPORTED);
        }
    }
    /* raw values are validated */
    yan_gguf_writer *w = NULL;
    yan_gguf_writer_new(&w);
    uint8_t raw[12] = {9, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    CHECK(yan_gguf_w_set_raw(w, "k", YAN_GGUF_ARRAY, raw, sizeof raw) == YAN_ERR_FORMAT);
    CHECK(yan_gguf_w_set_raw(w, "k", YAN_GGUF_UINT32, raw, 5) == YAN_ERR_FORMAT);
    uint8_t one = 2;
    CHECK(yan_gguf_w_set_arr(w, "k", YAN_GGUF_BOOL, &one, 1) == YAN_ERR_INVALID_ARG);
    yan_gguf_writer_free(w);
    CHECK(open_bytes(NULL, 0) == YAN_ERR_FORMAT);
    CHECK(yan_gguf_open("/nonexistent/x.gguf", &(yan_gguf *){NULL}) == YAN_ERR_IO);
    CHECK(yan_alloc_used() == before);
}

TEST(gguf_nesting_limit) {
    /* at most YAN_GGUF_MAX_NEST (8) levels of arrays */
    yan_buf v = {0};
    uint32_t at = YAN_GGUF_ARRAY, u8t = YAN_GGUF_UINT8;
    uint64_t one = 1, zero = 0;
    for (int i = 0; i < 9; i++) { yan_buf_append(&v, &at, 4); yan_buf_append(&v, &one, 8); }
    yan_buf_append(&v, &u8t, 4);
    yan_buf_append(&v, &zero, 8);
    yan_gguf_writer *w = NULL;
    yan_gguf_writer_new(&w);
    /* v holds 10 nested array values; skipping headers leaves fewer */
    CHECK(yan_gguf_w_set_raw(w, "deep", YAN_GGUF_ARRAY, v.data + 24, v.len - 24) == YAN_OK);  /* 8 levels */
    CHECK(yan_gguf_w_set_raw(w, "deep", YAN_GGUF_ARRAY, v.data + 12, v.len - 12) == YAN_ERR_FORMAT); /* 9 */
    CHECK(strstr(yan_last_error(), "nested too deep") != NULL);
    yan_gguf_writer_free(w);
    yan_buf_free(&v);
}

TEST(gguf_alloc_failures) {
    yan_gguf_writer *w = make_all_types();
    yan_buf file = {0};
    CHECK(w && yan_gguf_w_to_buf(w, &file) == YAN_OK);
    yan_gguf_writer_free(w);
    size_t before = yan_alloc_used();
    for (long k = 1; k < 30; k++) {
        yan_alloc_fail_after(k);
        yan_gguf *g = NULL;
        yan_status st = yan_gguf_open_memory((const uint8_t *)file.data, file.len, "f", &g);
        yan_alloc_fail_after(0);
        CHECK(st == YAN_OK || st == YAN_ERR_NOMEM);
        yan_gguf_close(g);
        CHECK(yan_alloc_used() == before);
    }
    for (long k = 1; k < 60; k++) {
        yan_alloc_fail_after(k);
        yan_gguf_writer *w2 = make_all_types();
        yan_buf out = {0};
        if (w2) yan_gguf_w_to_buf(w2, &out);
        yan_alloc_fail_after(0);
        yan_buf_free(&out);
        yan_gguf_writer_free(w2);
        CHECK(yan_alloc_used() == before);
    }
    yan_buf_free(&file);
}

TEST(gguf_ggml_types) {
    size_t n = 0;
    CHECK(yan_ggml_type(YAN_GGML_Q4_K)->type_size == 144 && yan_ggml_type(YAN_GGML_Q6_K)->type_size == 210);
    CHECK(yan_ggml_type(4) == NULL && yan_ggml_type(31) == NULL && yan_ggml_type(1000) == NULL);
    CHECK(yan_ggml_row_size(YAN_GGML_Q8_0, 4096, &n) && n == 4096 / 32 * 34);
    CHECK(!yan_ggml_row_size(YAN_GGML_Q4_K, 100, &n));
    uint64_t dims[2] = {4096, 11008};
    CHECK(yan_ggml_nbytes(YAN_GGML_Q4_K, 2, dims, &n) && n == (size_t)4096 / 256 * 144 * 11008);
    uint64_t huge[4] = {1ull << 40, 1ull << 40, 1, 1};
    CHECK(!yan_ggml_nbytes(YAN_GGML_F32, 4, huge, &n));
    CHECK(strcmp(yan_gguf_type_name(YAN_GGUF_STRING), "string") == 0);
}
