/* test_json.c — the strict JSON parser and the string escaper: values,
 * escapes, numbers, errors with positions, depth limit, allocation failures,
 * speed on a large synthetic vocabulary. */
#include "base/json.h"
#include "test.h"

#include <time.h>

static yan_json *P(yan_arena *a, const char *s) {
    yan_json *j = NULL;
    if (yan_json_parse(s, strlen(s), a, &j) != YAN_OK) return NULL;
    return j;
}

static bool bad(const char *s, const char *msg_part) {
    yan_arena a;
    yan_arena_init(&a, 4096);
    yan_json *j = (yan_json *)1;
    yan_status st = yan_json_parse(s, strlen(s), &a, &j);
    yan_arena_free(&a);
    if (st != YAN_ERR_FORMAT || j != NULL) return false;
    if (msg_part && !strstr(yan_last_error(), msg_part)) {
        fprintf(stderr, "  message was: %s\n", yan_last_error());
        return false;
    }
    return true;
}

TEST(json_values) {
    yan_arena a;
    yan_arena_init(&a, 1024);
    yan_json *j = P(&a, " {\"a\": 1, \"b\": [true, false, null, -2.5e1, \"x\"], \"c\": {}, \"d\": []} ");
    CHECK(j && yan_json_typeof(j) == YAN_JSON_OBJECT && yan_json_len(j) == 4);
    int64_t i = 0;
    CHECK(yan_json_int(yan_json_get(j, "a"), &i) && i == 1);
    const yan_json *b = yan_json_get(j, "b");
    CHECK(yan_json_is(b, YAN_JSON_ARRAY) && yan_json_len(b) == 5);
    bool bv = false;
    CHECK(yan_json_bool(yan_json_at(b, 0), &bv) && bv);
    CHECK(yan_json_bool(yan_json_at(b, 1), &bv) && !bv);
    CHECK(yan_json_typeof(yan_json_at(b, 2)) == YAN_JSON_NULL && yan_json_at(b, 2));
    double d = 0;
    CHECK(yan_json_num(yan_json_at(b, 3), &d) && d == -25.0);
    CHECK(yan_json_int(yan_json_at(b, 3), &i) && i == -25);
    CHECK(yan_json_str_eq(yan_json_at(b, 4), "x"));
    CHECK(yan_json_at(b, 5) == NULL);
    CHECK(yan_json_len(yan_json_get(j, "c")) == 0 && yan_json_is(yan_json_get(j, "c"), YAN_JSON_OBJECT));
    CHECK(yan_json_get(j, "zz") == NULL);
    size_t kl = 0;
    CHECK(strcmp(yan_json_key(j, 3, &kl), "d") == 0 && kl == 1);
    CHECK(yan_json_key(j, 4, &kl) == NULL);
    /* scalars at top level, duplicate keys keep order and get the first */
    CHECK(yan_json_str_eq(P(&a, "\"hi\""), "hi"));
    j = P(&a, "{\"k\":1,\"k\":2}");
    CHECK(j && yan_json_len(j) == 2 && yan_json_int(yan_json_get(j, "k"), &i) && i == 1);
    /* BOM is skipped */
    CHECK(P(&a, "\xEF\xBB\xBF[1]") != NULL);
    yan_arena_free(&a);
}

TEST(json_strings) {
    yan_arena a;
    yan_arena_init(&a, 1024);
    size_t n = 0;
    yan_json *j = P(&a, "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20ac\\ud83d\\ude00\"");
    const char *s = yan_json_str(j, &n);
    const char want[] = "a\"b\\c/d\b\f\n\r\tA\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
    CHECK(s && n == sizeof want - 1 && memcmp(s, want, n) == 0);
    j = P(&a, "\"x\\u0000y\"");
    s = yan_json_str(j, &n);
    CHECK(s && n == 3 && s[1] == 0 && s[2] == 'y' && s[3] == 0);
    j = P(&a, "{\"k\\u0000\":1}");
    size_t kl = 0;
    CHECK(j && yan_json_key(j, 0, &kl) && kl == 2);
    CHECK(yan_json_get_n(j, "k\0", 2) != NULL);
    /* raw UTF-8 passes through */
    j = P(&a, "\"\xC4\xA0\xE4\xBD\xA0\xF0\x9F\x98\x80\"");
    CHECK(yan_json_str(j, &n) && n == 9);
    yan_arena_free(&a);

    CHECK(bad("\"\\ud800\"", "lone high surrogate"));
    CHECK(bad("\"\\udc00\"", "lone low surrogate"));
    CHECK(bad("\"\\ud800\\u0041\"", "surrogate"));
    CHECK(bad("\"\\x\"", "invalid escape"));
    CHECK(bad("\"\\u12\"", "\\u"));
    CHECK(bad("\"abc", "unterminated string"));
    CHECK(bad("\"a\nb\"", "control character"));
    CHECK(bad("\"\xC0\x80\"", "UTF-8"));        /* overlong */
    CHECK(bad("\"\xED\xA0\x80\"", "UTF-8"));    /* encoded surrogate */
    CHECK(bad("\"\xF4\x90\x80\x80\"", "UTF-8")); /* > U+10FFFF */
    CHECK(bad("\"\xE4\xBD\"", "UTF-8"));        /* truncated */
    CHECK(bad("\"\\", "unterminated"));
}

TEST(json_numbers) {
    yan_arena a;
    yan_arena_init(&a, 1024);
    int64_t i = 0;
    double d = 0;
    CHECK(yan_json_int(P(&a, "9223372036854775807"), &i) && i == INT64_MAX);
    CHECK(yan_json_int(P(&a, "-9223372036854775808"), &i) && i == INT64_MIN);
    CHECK(!yan_json_int(P(&a, "9223372036854775808"), &i));
    CHECK(yan_json_num(P(&a, "9223372036854775808"), &d) && d == 9223372036854775808.0);
    CHECK(yan_json_int(P(&a, "-0"), &i) && i == 0);
    CHECK(yan_json_num(P(&a, "0.5"), &d) && d == 0.5);
    CHECK(!yan_json_int(P(&a, "0.5"), &i));
    CHECK(yan_json_int(P(&a, "1E3"), &i) && i == 1000);
    CHECK(yan_json_num(P(&a, "1e400"), &d) && isinf(d));
    CHECK(yan_json_num(P(&a, "-1.25e-2"), &d) && d == -0.0125);
    CHECK(yan_json_num(P(&a, "123456789012345678901234567890"), &d) && d > 1.2e29);
    yan_arena_free(&a);
    CHECK(bad("01", "leading zero"));
    CHECK(bad("+1", "expected a value"));
    CHECK(bad("1.", "digit"));
    CHECK(bad(".5", "expected a value"));
    CHECK(bad("1e", "exponent"));
    CHECK(bad("-", "invalid number"));
    CHECK(bad("NaN", NULL));
    CHECK(bad("Infinity", NULL));
}

TEST(json_errors) {
    CHECK(bad("", "expected a value"));
    CHECK(bad("   ", "expected a value"));
    CHECK(bad("[1,]", "expected a value"));
    CHECK(bad("{\"a\":1,}", "object key"));
    CHECK(bad("{\"a\" 1}", "expected ':'"));
    CHECK(bad("{a:1}", "object key"));
    CHECK(bad("[1 2]", "expected ',' or ']'"));
    CHECK(bad("[1", "unterminated array"));
    CHECK(bad("{\"a\":1", "unterminated object"));
    CHECK(bad("tru", NULL));
    CHECK(bad("nul", NULL));
    CHECK(bad("[1] x", "after the JSON value"));
    CHECK(bad("// c\n1", NULL));
    CHECK(bad("'a'", NULL));
    /* position: line 3, col 5 */
    CHECK(bad("{\n  \"a\": 1,\n    x}", "line 3 col 5"));
    /* depth limit */
    char deep[1200];
    memset(deep, '[', 600);
    memset(deep + 600, ']', 600);
    deep[1199] = 0;
    deep[1198] = 0;
    CHECK(bad(deep, "too deep"));
    memset(deep, '[', 512);
    memset(deep + 512, ']', 512);
    deep[1024] = 0;
    yan_arena a;
    yan_arena_init(&a, 1024);
    CHECK(P(&a, deep) != NULL);
    yan_arena_free(&a);
}

TEST(json_alloc_failures) {
    const char *doc = "{\"a\":[1,2,{\"b\":\"c\\n\"}],\"d\":\"e\",\"f\":[[],[[]]],\"g\":1.5e300}";
    for (long k = 1; k < 40; k++) {
        size_t before = yan_alloc_used();
        yan_arena a;
        yan_arena_init(&a, 16);
        yan_alloc_fail_after(k);
        yan_json *j = NULL;
        yan_status st = yan_json_parse(doc, strlen(doc), &a, &j);
        yan_alloc_fail_after(0);
        CHECK(st == YAN_OK || st == YAN_ERR_NOMEM);
        CHECK((st == YAN_OK) == (j != NULL));
        yan_arena_free(&a);
        CHECK(yan_alloc_used() == before);
    }
}

TEST(json_write_string) {
    yan_buf b = {0};
    CHECK(yan_json_write_string(&b, "a\"\\\n\x01\t\xC3\xA9", 8));
    CHECK(strcmp(b.data, "\"a\\\"\\\\\\n\\u0001\\t\xC3\xA9\"") == 0);
    b.len = 0;
    CHECK(yan_json_write_string(&b, "x\xFFy\xE4\xBD", 5)); /* invalid -> U+FFFD each */
    CHECK(strcmp(b.data, "\"x\xEF\xBF\xBDy\xEF\xBF\xBD\xEF\xBF\xBD\"") == 0);
    b.len = 0;
    CHECK(yan_json_write_string(&b, "n\0l", 3));
    CHECK(b.len == 10 && memcmp(b.data, "\"n\\u0000l\"", 10) == 0);
    /* round trip through the parser */
    yan_arena a;
    yan_arena_init(&a, 1024);
    yan_json *j = NULL;
    CHECK(yan_json_parse(b.data, b.len, &a, &j) == YAN_OK);
    size_t n = 0;
    const char *s = yan_json_str(j, &n);
    CHECK(s && n == 3 && memcmp(s, "n\0l", 3) == 0);
    yan_arena_free(&a);
    yan_buf_free(&b);
}

TEST(json_speed) {
    /* a tokenizer.json-shaped document: 150k vocab entries + 150k merges */
    yan_buf b = {0};
    yan_buf_puts(&b, "{\"model\":{\"vocab\":{");
    for (int i = 0; i < 150000; i++)
        yan_buf_printf(&b, "%s\"\xC4\xA0tok%d\\u00e9\":%d", i ? "," : "", i, i);
    yan_buf_puts(&b, "},\"merges\":[");
    for (int i = 0; i < 150000; i++) yan_buf_printf(&b, "%s[\"\xC4\xA0t\",\"ok%d\"]", i ? "," : "", i);
    yan_buf_puts(&b, "]}}");
    CHECK(!b.oom);
    yan_arena a;
    yan_arena_init(&a, 1 << 20);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    yan_json *j = NULL;
    CHECK(yan_json_parse(b.data, b.len, &a, &j) == YAN_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    fprintf(stderr, "  json: %.1f MB in %.1f ms\n", (double)b.len / 1e6, ms);
    const yan_json *v = yan_json_get(yan_json_get(j, "model"), "vocab");
    CHECK(yan_json_len(v) == 150000);
    int64_t id = 0;
    CHECK(yan_json_int(yan_json_at(v, 149999), &id) && id == 149999);
    CHECK(ms < 1000); /* generous: debug/sanitizer builds; release is ~10x faster */
    yan_arena_free(&a);
    yan_buf_free(&b);
}
