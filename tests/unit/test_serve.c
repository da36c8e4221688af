/* test_serve.c — the server's pure parts: the JSON grammar constraint (every
 * document it lets through parses, every budget is met), the SSE encoder,
 * the stop-string filter, UTF-8 sanitising, token buckets and the rate
 * limiter, constant-time key comparison and the keyring, request parsing and
 * validation (fields named in errors), the error JSON, the metrics text and
 * the upload parsers (multipart file part, base64, safe file names), and the
 * output moderation of proxied answers (JSON bodies and SSE streams fed in
 * pieces of every size: no byte of a match ever goes out). */
#include "base/json.h"
#include "serve/auth.h"
#include "serve/jsongram.h"
#include "serve/metrics.h"
#include "serve/proxy_filter.h"
#include "serve/request.h"
#include "serve/sse.h"
#include "serve/upload.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>

/* ------------------------------------------------------------ json grammar */

static bool jg_accepts(const char *s) {
    yan_jg g;
    yan_jg_init(&g);
    return yan_jg_feed(&g, s, strlen(s)) && yan_jg_done(&g);
}

/* feeds without error but is not complete */
static bool jg_prefix(const char *s) {
    yan_jg g;
    yan_jg_init(&g);
    return yan_jg_feed(&g, s, strlen(s)) && !yan_jg_done(&g);
}

TEST(jsongram_accepts_valid_objects) {
    CHECK(jg_accepts("{}"));
    CHECK(jg_accepts("{\"a\":1}"));
    CHECK(jg_accepts("{\"a\": [1, -2.5e+3, 0, 0.5, 1E9, true, false, null, \"x\"], \"b\": {\"c\": {}}}"));
    CHECK(jg_accepts("{\"esc\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\"}"));
    CHECK(jg_accepts("{\"utf8\":\"h\xc3\xa9llo \xe4\xb8\xad \xf0\x9f\x98\x80\"}"));
    CHECK(jg_accepts("{\n  \"a\" : [ ] ,\n  \"b\" : { }\n}"));
    CHECK(jg_accepts("{\"n\":[-0,-0.0e-0]}"));
}

TEST(jsongram_rejects_invalid) {
    CHECK(!jg_prefix(" {}"));         /* no leading blank */
    CHECK(!jg_prefix("[]"));          /* the top level is an object */
    CHECK(!jg_prefix("{\"a\":01}"));  /* leading zero */
    CHECK(!jg_prefix("{\"a\":1.}"));
    CHECK(!jg_prefix("{\"a\":.5}"));
    CHECK(!jg_prefix("{\"a\":+1}"));
    CHECK(!jg_prefix("{\"a\":tru}"));
    CHECK(!jg_prefix("{a:1}"));
    CHECK(!jg_prefix("{\"a\" 1}"));
    CHECK(!jg_prefix("{\"a\":1,}"));
    CHECK(!jg_prefix("{\"a\":[1,]}"));
    CHECK(!jg_prefix("{\"a\":1]"));
    CHECK(!jg_prefix("{\"a\":\"\\x\"}"));
    CHECK(!jg_prefix("{\"a\":\"\\u12G4\"}"));
    CHECK(jg_accepts("{\"a\":\"\\ud83d\\ude00 \\uD7FF \\uE000\"}")); /* a pair; no surrogates */
    CHECK(!jg_prefix("{\"a\":\"\\ud83d\"}"));       /* a lone high surrogate */
    CHECK(!jg_prefix("{\"a\":\"\\ud83d\\u0041\"}")); /* high + not low */
    CHECK(!jg_prefix("{\"a\":\"\\udc"));             /* a lone low surrogate, seen early */
    CHECK(!jg_prefix("{\"a\":\"\n\"}"));            /* raw control character */
    CHECK(!jg_prefix("{\"a\":\"\xc0\xaf\"}"));      /* overlong */
    CHECK(!jg_prefix("{\"a\":\"\xed\xa0\x80\"}"));  /* surrogate */
    CHECK(!jg_prefix("{\"a\":\"\xf4\x90\x80\x80\"}")); /* > U+10FFFF */
    CHECK(!jg_prefix("{}x"));                       /* nothing after the end */
    CHECK(!jg_prefix("{} "));
    /* partial but valid so far */
    CHECK(jg_prefix("{\"a\":[1,2"));
    CHECK(jg_prefix("{\"a\":\"\xe4\xb8"));
    CHECK(jg_prefix("{\"a\":fal"));
}

TEST(jsongram_depth_and_blank_limits) {
    yan_jg g;
    yan_jg_init(&g);
    CHECK(yan_jg_feed(&g, "{\"a\":", 5));
    int opened = 1;
    while (yan_jg_byte(&g, '[')) opened++;
    CHECK(opened == YAN_JG_MAX_DEPTH);
    yan_jg_init(&g);
    CHECK(yan_jg_byte(&g, '{'));
    int ws = 0;
    while (yan_jg_byte(&g, ' ')) ws++;
    CHECK(ws == YAN_JG_MAX_WS);
}

TEST(jsongram_need_is_exact_for_a_greedy_closer) {
    /* from many states, feeding the canonical closing bytes (one per need)
     * finishes exactly */
    const char *prefixes[] = {"{", "{\"", "{\"ab", "{\"a\"", "{\"a\":", "{\"a\":\"x", "{\"a\":\"\\", "{\"a\":\"\\u0", "{\"a\":\"\\uD8", "{\"a\":\"\\uD83D", "{\"a\":\"\\uD83D\\", "{\"a\":\"\\uD83D\\uD", "{\"a\":\"\\uD",
                              "{\"a\":-", "{\"a\":1", "{\"a\":1.", "{\"a\":1e", "{\"a\":1e+", "{\"a\":t",
                              "{\"a\":[", "{\"a\":[{", "{\"a\":[1,", "{\"a\":1,", "{\"a\":\"\xe4"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        yan_jg g;
        yan_jg_init(&g);
        CHECK(yan_jg_feed(&g, prefixes[i], strlen(prefixes[i])));
        int need = yan_jg_need(&g), used = 0;
        /* greedy: any single byte that lowers need by one */
        while (!yan_jg_done(&g) && used < 64) {
            bool moved = false;
            for (int c = 1; c < 256 && !moved; c++) {
                yan_jg t = g;
                if (yan_jg_byte(&t, (uint8_t)c) && yan_jg_need(&t) == yan_jg_need(&g) - 1) {
                    g = t;
                    moved = true;
                }
            }
            if (!moved) break;
            used++;
        }
        CHECK(yan_jg_done(&g));
        if (used != need) fprintf(stderr, "  prefix %s: need %d, closed in %d\n", prefixes[i], need, used);
        CHECK(used == need);
    }
}

/* A synthetic vocabulary: all single bytes plus some JSON-ish multi-byte
 * pieces, and one end-of-generation token. */
static void toy_vocab(yan_jg_vocab *v) {
    static const char *multi[] = {"{\"", "\":", "\",", "\"}", "true", "null", "false", "123", "0.5", "e-3", "[{", "}]",
                                  "}}", "]]", "\\u00", "hello", " world", "\n  ", ", \"", "\\n", "\xc3\xa9", "\xe4\xb8",
                                  "\xad", "{}", "[]", "-", "\"\"", "  "};
    const int nm = (int)(sizeof multi / sizeof multi[0]);
    v->n_vocab = 256 + nm + 1;
    v->off = malloc(((size_t)v->n_vocab + 1) * sizeof *v->off);
    v->flags = calloc((size_t)v->n_vocab, 1);
    v->bytes = malloc(4096);
    uint32_t o = 0;
    for (int b = 0; b < 256; b++) {
        v->off[b] = o;
        v->bytes[o++] = (uint8_t)b;
    }
    v->flags[0] = 1; /* NUL: never */
    for (int i = 0; i < nm; i++) {
        v->off[256 + i] = o;
        memcpy(v->bytes + o, multi[i], strlen(multi[i]));
        o += (uint32_t)strlen(multi[i]);
    }
    v->off[256 + nm] = o; /* the end-of-generation token: empty, never allowed */
    v->flags[256 + nm] = 1;
    v->off[v->n_vocab] = o;
}

TEST(jsongram_mask_random_walks_always_parse_within_budget) {
    yan_jg_vocab v;
    toy_vocab(&v);
    float *logits = malloc((size_t)v.n_vocab * sizeof *logits);
    uint64_t rng = 12345;
    int complete = 0;
    for (int trial = 0; trial < 300; trial++) {
        int budget = 2 + trial % 40;
        yan_jg g;
        yan_jg_init(&g);
        yan_buf out = {0};
        int used = 0;
        while (!yan_jg_done(&g) && used < budget) {
            for (int32_t i = 0; i < v.n_vocab; i++) logits[i] = 0;
            int32_t allowed = yan_jg_mask(&g, &v, logits, budget - used);
            CHECK(allowed > 0);
            if (allowed <= 0) break;
            /* a random allowed token */
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            int32_t pick = (int32_t)((rng >> 33) % (uint64_t)allowed);
            int32_t id = 0;
            for (; id < v.n_vocab; id++)
                if (logits[id] == 0 && pick-- == 0) break;
            CHECK(id < v.n_vocab);
            CHECK(!(v.flags[id] & 1));
            const uint8_t *p = v.bytes + v.off[id];
            size_t n = v.off[id + 1] - v.off[id];
            CHECK(yan_jg_feed(&g, p, n));
            yan_buf_append(&out, p, n);
            used++;
        }
        CHECK(yan_jg_done(&g));
        /* and the strict JSON parser agrees */
        yan_arena a;
        yan_arena_init(&a, 4096);
        yan_json *root = NULL;
        bool ok = out.data && yan_json_parse(out.data, out.len, &a, &root) == YAN_OK && yan_json_is(root, YAN_JSON_OBJECT);
        if (!ok) fprintf(stderr, "  not JSON: %s\n", out.data ? out.data : "(empty)");
        CHECK(ok);
        complete += ok;
        yan_arena_free(&a);
        yan_buf_free(&out);
    }
    CHECK(complete == 300);
    free(logits);
    free(v.off);
    free(v.flags);
    free(v.bytes);
}

TEST(jsongram_mask_keeps_minus_infinity) {
    yan_jg_vocab v;
    toy_vocab(&v);
    float *logits = malloc((size_t)v.n_vocab * sizeof *logits);
    for (int32_t i = 0; i < v.n_vocab; i++) logits[i] = 1;
    yan_jg g;
    yan_jg_init(&g);
    int32_t n = yan_jg_mask(&g, &v, logits, 100);
    /* only tokens starting with '{' are allowed at the start */
    for (int32_t i = 0; i < v.n_vocab; i++)
        if (logits[i] == 1) CHECK(v.bytes[v.off[i]] == '{');
    CHECK(n >= 2); /* "{" and "{\"" at least ("{}" too) */
    CHECK(logits['{'] == 1);
    CHECK(isinf(logits['[']) && logits['['] < 0);
    free(logits);
    free(v.off);
    free(v.flags);
    free(v.bytes);
}

/* ------------------------------------------------------------------- SSE */

TEST(sse_framing) {
    yan_buf b = {0};
    yan_sse_event(&b, "{\"a\":1}", 7);
    CHECK(!strcmp(b.data, "data: {\"a\":1}\n\n"));
    b.len = 0;
    yan_sse_event(&b, "line1\nline2\r\nline3\rx", 20);
    CHECK(!strcmp(b.data, "data: line1\ndata: line2\ndata: line3\ndata: x\n\n"));
    b.len = 0;
    yan_sse_event(&b, "", 0);
    CHECK(!strcmp(b.data, "data: \n\n"));
    b.len = 0;
    yan_sse_event(&b, "end\n", 4); /* a trailing newline is an empty last line */
    CHECK(!strcmp(b.data, "data: end\ndata: \n\n"));
    b.len = 0;
    yan_sse_comment(&b, "ping\nx");
    CHECK(!strcmp(b.data, ": pingx\n\n"));
    b.len = 0;
    yan_sse_done(&b);
    CHECK(!strcmp(b.data, "data: [DONE]\n\n"));
    yan_buf_free(&b);
}

/* ----------------------------------------------------------- stop strings */

static const char *push_all(yan_stopper *s, const char *const *pieces, int n, yan_buf *out) {
    for (int i = 0; i < n; i++) yan_stopper_push(s, pieces[i], strlen(pieces[i]), out);
    yan_stopper_flush(s, out);
    return out->data ? out->data : "";
}

TEST(stopper_holds_back_partial_stop_strings) {
    const char *stops[] = {"STOP", "\n\n"};
    yan_stopper s;
    yan_buf out = {0};
    yan_stopper_init(&s, stops, 2);
    /* "ST" could begin STOP: held until "OP" arrives */
    yan_stopper_push(&s, "abc ST", 6, &out);
    CHECK(out.len == 4 && !memcmp(out.data, "abc ", 4));
    yan_stopper_push(&s, "OP tail", 7, &out);
    CHECK(s.stopped);
    CHECK(out.len == 4);
    yan_stopper_flush(&s, &out);
    CHECK(out.len == 4);
    yan_stopper_free(&s);
    yan_buf_free(&out);

    /* a false start is released */
    yan_stopper_init(&s, stops, 2);
    const char *p1[] = {"x S", "T", "ART", " go"};
    CHECK(!strcmp(push_all(&s, p1, 4, &out), "x START go"));
    CHECK(!s.stopped);
    yan_stopper_free(&s);
    yan_buf_free(&out);

    /* the earliest of several stop strings wins; split across pieces */
    yan_stopper_init(&s, stops, 2);
    const char *p2[] = {"one\n", "\ntwo STOP"};
    CHECK(!strcmp(push_all(&s, p2, 2, &out), "one"));
    yan_stopper_free(&s);
    yan_buf_free(&out);

    /* no stop strings: everything passes at once */
    yan_stopper_init(&s, NULL, 0);
    yan_stopper_push(&s, "abc", 3, &out);
    CHECK(out.len == 3);
    yan_stopper_free(&s);
    yan_buf_free(&out);
    CHECK(yan_stop_holdback(stops, 2, "xxST", 4) == 2);
    CHECK(yan_stop_holdback(stops, 2, "xx\n", 3) == 1);
    CHECK(yan_stop_find(stops, 2, "aSTOPb", 6) == 1);
}

TEST(utf8_sanitize) {
    yan_buf b = {0};
    yan_utf8_sanitize(&b, "ok \xc3\xa9", 5);
    CHECK(!strcmp(b.data, "ok \xc3\xa9"));
    b.len = 0;
    yan_utf8_sanitize(&b, "a\xff" "b\xe4\xb8", 5);
    CHECK(!strcmp(b.data, "a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd"));
    b.len = 0;
    yan_utf8_sanitize(&b, "a\0b", 3); /* NUL cannot go through C-string JSON writers */
    CHECK(!strcmp(b.data, "a\xef\xbf\xbd" "b"));
    CHECK(yan_utf8_valid("h\xc3\xa9", 3));
    CHECK(!yan_utf8_valid("\xc3", 1));
    CHECK(!yan_utf8_valid("\xed\xa0\x80", 3));
    yan_buf_free(&b);
}

/* ----------------------------------------------------------- auth, limits */

TEST(ct_equal_and_keyring) {
    CHECK(yan_ct_equal("secret", 6, "secret", 6));
    CHECK(!yan_ct_equal("secreT", 6, "secret", 6));
    CHECK(!yan_ct_equal("secret1", 7, "secret", 6));
    CHECK(!yan_ct_equal("secre", 5, "secret", 6));
    CHECK(!yan_ct_equal("", 0, "secret", 6));
    yan_keyring kr = {0};
    CHECK(yan_keyring_add(&kr, NULL, "sk-one", 6) == YAN_OK);
    CHECK(yan_keyring_add(&kr, "ci", "sk-two", 6) == YAN_OK);
    CHECK(yan_keyring_add(&kr, NULL, "bad key", 7) == YAN_ERR_INVALID_ARG);
    CHECK(yan_keyring_add(&kr, NULL, "", 0) == YAN_ERR_INVALID_ARG);
    CHECK(!strcmp(kr.keys[0].id, "key1") && !strcmp(kr.keys[1].id, "ci"));
    CHECK(yan_keyring_match(&kr, "Bearer sk-one") == 0);
    CHECK(yan_keyring_match(&kr, "bearer   sk-two ") == 1);
    CHECK(yan_keyring_match(&kr, "Bearer sk-on") == -1);
    CHECK(yan_keyring_match(&kr, "Basic sk-one") == -1);
    CHECK(yan_keyring_match(&kr, "Bearersk-one") == -1);
    CHECK(yan_keyring_match(&kr, NULL) == -1);
    yan_keyring_free(&kr);

    char path[512];
    snprintf(path, sizeof path, "%s/keys.txt", yan_test_tmp_dir());
    FILE *f = fopen(path, "w");
    fputs("# keys\n\nalice:sk-alice\n  sk-anon  \nbob:sk-bob\n", f);
    fclose(f);
    CHECK(yan_keyring_load(&kr, path) == YAN_OK);
    CHECK(kr.n == 3);
    CHECK(yan_keyring_match(&kr, "Bearer sk-bob") == 2 && !strcmp(kr.keys[2].id, "bob"));
    CHECK(!strcmp(kr.keys[1].id, "key2"));
    yan_keyring_free(&kr);
    f = fopen(path, "w");
    fputs("ok:sk-1\n:nokey\n", f);
    fclose(f);
    CHECK(yan_keyring_load(&kr, path) == YAN_ERR_FORMAT);
    CHECK(strstr(yan_last_error(), ":2:") != NULL);
    yan_keyring_free(&kr);
    f = fopen(path, "w");
    fputs("# nothing\n", f);
    fclose(f);
    CHECK(yan_keyring_load(&kr, path) == YAN_ERR_FORMAT);
    yan_keyring_free(&kr);
}

TEST(token_bucket) {
    yan_bucket b;
    yan_bucket_init(&b, 60, 100.0); /* 60 per minute = 1 per second, burst 60 */
    double retry = 0;
    for (int i = 0; i < 60; i++) CHECK(yan_bucket_take(&b, 100.0, 1, 1, &retry));
    CHECK(!yan_bucket_take(&b, 100.0, 1, 1, &retry));
    CHECK_NEAR(retry, 1.0, 1e-9);
    CHECK(!yan_bucket_take(&b, 100.5, 1, 1, &retry));
    CHECK_NEAR(retry, 0.5, 1e-9);
    CHECK(yan_bucket_take(&b, 101.0, 1, 1, &retry));
    /* refill stops at the cap */
    CHECK(yan_bucket_take(&b, 1000.0, 1, 0, &retry));
    CHECK_NEAR(b.level, 60.0, 1e-9);
    /* debts: a positive balance lets a request in; the charge may go below zero */
    yan_bucket_init(&b, 600, 0);
    yan_bucket_charge(&b, 0, 700);
    CHECK(!yan_bucket_take(&b, 0, 0, 0, &retry));
    CHECK_NEAR(retry, 10.0, 1e-9); /* 100 tokens at 10 a second */
    CHECK(yan_bucket_take(&b, 10.01, 0, 0, &retry));
    /* unlimited */
    yan_bucket_init(&b, 0, 0);
    for (int i = 0; i < 1000; i++) CHECK(yan_bucket_take(&b, 0, 1, 1, NULL));
}

TEST(rate_limiter_per_key) {
    yan_limiter l;
    CHECK(yan_limiter_init(&l, 2, 2, 0, 0) == YAN_OK);
    double retry = 0;
    const char *which = NULL;
    CHECK(yan_limiter_admit(&l, 0, 0, &retry, &which));
    CHECK(yan_limiter_admit(&l, 0, 0, &retry, &which));
    CHECK(!yan_limiter_admit(&l, 0, 0, &retry, &which));
    CHECK(!strcmp(which, "requests") && retry >= 1);
    CHECK(yan_limiter_admit(&l, 1, 0, &retry, &which)); /* another key has its own bucket */
    CHECK(yan_limiter_admit(&l, -1, 0, &retry, &which)); /* anonymous too */
    CHECK(yan_limiter_admit(&l, 0, 31, &retry, &which)); /* one refilled after 30 s */
    yan_limiter_free(&l);
    CHECK(yan_limiter_init(&l, 1, 0, 120, 0) == YAN_OK);
    CHECK(yan_limiter_admit(&l, 0, 0, &retry, &which));
    yan_limiter_tokens(&l, 0, 0, 200);
    CHECK(!yan_limiter_admit(&l, 0, 0, &retry, &which));
    CHECK(!strcmp(which, "tokens") && retry == 40); /* 80 tokens short at 2 a second */
    yan_limiter_free(&l);
}

/* --------------------------------------------------------------- requests */

static yan_status parse(yan_rq_kind kind, const char *body, yan_arena *a, yan_api_req *r, yan_api_error *e) {
    return yan_api_parse(kind, body, strlen(body), a, r, e);
}

/* expect a 400 whose param is `param` ("" = null) and whose message has `frag` */
static bool rejects(yan_rq_kind kind, const char *body, const char *param, const char *frag) {
    yan_arena a;
    yan_arena_init(&a, 4096);
    yan_api_req r;
    yan_api_error e;
    memset(&e, 0, sizeof e);
    bool ok = parse(kind, body, &a, &r, &e) == YAN_ERR_INVALID_ARG && e.status == 400 &&
              !strcmp(e.type, "invalid_request_error") && !strcmp(e.param, param) && strstr(e.message, frag);
    if (!ok) fprintf(stderr, "  body %s: status %d param '%s' message '%s'\n", body, e.status, e.param, e.message);
    yan_arena_free(&a);
    return ok;
}

TEST(request_chat_full) {
    yan_arena a;
    yan_arena_init(&a, 4096);
    yan_api_req r;
    yan_api_error e;
    const char *body =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"developer\",\"content\":\"be brief\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"},{\"type\":\"text\",\"text\":\"there\"}]},"
        "{\"role\":\"assistant\",\"content\":null}],"
        "\"max_completion_tokens\":7,\"temperature\":0.5,\"top_p\":0.9,\"seed\":-3,\"stop\":[\"a\",\"\",\"bc\"],"
        "\"n\":2,\"logprobs\":true,\"top_logprobs\":3,\"presence_penalty\":1,\"frequency_penalty\":-1,"
        "\"stream\":true,\"stream_options\":{\"include_usage\":true},\"response_format\":{\"type\":\"json_object\"},"
        "\"user\":\"u1\",\"tools\":[],\"unknown_field\":{\"x\":[1,2]}}";
    CHECK(parse(YAN_RQ_CHAT, body, &a, &r, &e) == YAN_OK);
    CHECK(!strcmp(r.model, "m"));
    CHECK(r.n_msgs == 3);
    CHECK(!strcmp(r.msgs[0].role, "system") && !strcmp(r.msgs[0].content, "be brief"));
    CHECK(!strcmp(r.msgs[1].content, "hi\nthere"));
    CHECK(!strcmp(r.msgs[2].role, "assistant") && !strcmp(r.msgs[2].content, ""));
    CHECK(r.max_tokens == 7 && r.n == 2 && r.logprobs == 3);
    CHECK(r.has_temperature && r.temperature == 0.5f && r.has_top_p);
    CHECK(r.has_seed && r.seed == (uint64_t)(int64_t)-3);
    CHECK(r.n_stop == 2 && !strcmp(r.stop[0], "a") && !strcmp(r.stop[1], "bc"));
    CHECK(r.stream && r.include_usage && r.json_mode);
    CHECK(r.presence_penalty == 1 && r.frequency_penalty == -1);
    yan_arena_free(&a);

    yan_arena_init(&a, 4096);
    CHECK(parse(YAN_RQ_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":\"END\",\"max_tokens\":null}",
                &a, &r, &e) == YAN_OK);
    CHECK(r.n_stop == 1 && !strcmp(r.stop[0], "END") && r.max_tokens == -1 && r.model == NULL && r.logprobs == -1);
    CHECK(!r.stream && r.n == 1 && !r.has_temperature);
    yan_arena_free(&a);
}

TEST(request_chat_errors_name_the_field) {
    CHECK(rejects(YAN_RQ_CHAT, "", "", "empty"));
    CHECK(rejects(YAN_RQ_CHAT, "{\"messages\":", "", "not valid JSON"));
    CHECK(rejects(YAN_RQ_CHAT, "{} x", "", "extra data"));
    CHECK(rejects(YAN_RQ_CHAT, "[1,2]", "", "JSON object"));
    CHECK(rejects(YAN_RQ_CHAT, "{}", "messages", "required"));
    CHECK(rejects(YAN_RQ_CHAT, "{\"messages\":\"hi\"}", "messages", "array"));
    CHECK(rejects(YAN_RQ_CHAT, "{\"messages\":[]}", "messages", "empty"));
    CHECK(rejects(YAN_RQ_CHAT, "{\"messages\":[1]}", "messages[0]", "object"));
    CHECK(rejects(YAN_RQ_CHAT, "{\"messages\":[{\"content\":\"x\"}]}", "messages[0].role", "string"));
    CHECK(rejects(YAN_RQ_CHAT, "{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}", "messages[0].role", "robot"));
    CHECK(rejects(YAN_RQ_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", "messages[0].content", "string"));
    CHECK(rejects(YAN_RQ_CHAT,
                  "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{}}]}]}",
                  "messages[0].content", "image_url"));
    const char *ok = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]";
    char b[512];
#define WITH(extra) (snprintf(b, sizeof b, "%s,%s}", ok, extra), b)
    CHECK(rejects(YAN_RQ_CHAT, WITH("\"model\":7"), "model", "string"));
    CHECK(rejects(YAN_RQ_CHAT, WITH("\"temperature\":\"hot\""), "temperature", "number"));
    CHECK(rejects(YAN_RQ_CHAT, WITH("\"temperature\":3"), "temperature", "between 0 and 2"));
    CHECK(rejects(YAN_RQ_CHAT, WITH("\"top_p\":1.5"), "top_p", "between"));
    CHECK(rejects(YAN_RQ_CHAT, WITH("\"max_tokens\":0"), "max_tokens", "between 1"));
    CHECK(rejects(YAN_RQ_CHAT, WITH("\"max_tokens\":2.5"), "max_tokens", "integer"));
    CHECK(rejects(YAN_RQ_CHAT, WITH("\"max_tokens\":\"9\""), "max_tokens", "integer"));
    CHECK(rejects(YAN_RQ_CHAT, WITH("\"n\":0"), "n", "between 1 and 16"));
    CHECK(rejects(YAN_RQ_CHAT, WITH("\"n\":17"), "n", "between 1 and 16"));
    CHECK(rejects(YAN_RQ_CHAT, WITH("\"stream\":\"yes\""), "stream", "boolean"));
    CHECK(rejects(YAN_RQ_CHAT, WITH("\"stream_options\":{\"include_usage\":1}"), "stream_options.include_usage", "boolean"));
    CHECK(rejects(YAN_RQ_CHAT, WITH("\"stop\":5"), "stop", "string"));
    CHECK(rejects(YAN_RQ_CHAT, WITH("\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]"), "stop", "at most 4"));
    CHECK(rejects(YAN_RQ_CHAT, WITH("\"stop\":[\"a\",1]"), "stop", "stop[1]"));
    CHECK(rejects(YAN_RQ_CHAT, WITH("\"seed\":1.5"), "seed", "integer"));
    CHECK(rejects(YAN_RQ_CHAT, WITH("\"presence_penalty\":-3"), "presence_penalty", "between"));
    CHECK(rejects(YAN_RQ_CHAT, WITH("\"top_logprobs\":2"), "top_logprobs", "logprobs"));
    CHECK(rejects(YAN_RQ_CHAT, WITH("\"logprobs\":true,\"top_logprobs\":21"), "top_logprobs", "between 0 and 20"));
    CHECK(rejects(YAN_RQ_CHAT, WITH("\"logprobs\":1"), "logprobs", "boolean"));
    CHECK(rejects(YAN_RQ_CHAT, WITH("\"response_format\":{\"type\":\"json_schema\"}"), "response_format.type", "json_schema"));
    CHECK(rejects(YAN_RQ_CHAT, WITH("\"response_format\":\"json\""), "response_format", "object"));
    CHECK(rejects(YAN_RQ_CHAT, WITH("\"tools\":[{\"type\":\"function\"}]"), "tools", "not supported"));
#undef WITH
}

TEST(request_completion_embed_tokenize) {
    yan_arena a;
    yan_api_req r;
    yan_api_error e;
    yan_arena_init(&a, 4096);
    CHECK(parse(YAN_RQ_COMPLETION, "{\"prompt\":\"once\",\"logprobs\":2,\"echo\":true}", &a, &r, &e) == YAN_OK);
    CHECK(r.n_inputs == 1 && !r.inputs_are_tokens && !strcmp(r.texts[0], "once") && r.logprobs == 2 && r.echo);
    CHECK(parse(YAN_RQ_COMPLETION, "{\"prompt\":[1,2,3]}", &a, &r, &e) == YAN_OK);
    CHECK(r.n_inputs == 1 && r.inputs_are_tokens && r.tok_lens[0] == 3 && r.toks[0][2] == 3);
    CHECK(parse(YAN_RQ_COMPLETION, "{\"prompt\":[[1],[2,3]],\"n\":2}", &a, &r, &e) == YAN_OK);
    CHECK(r.n_inputs == 2 && r.tok_lens[1] == 2);
    CHECK(parse(YAN_RQ_COMPLETION, "{\"prompt\":[\"a\",\"b\"]}", &a, &r, &e) == YAN_OK);
    CHECK(r.n_inputs == 2 && !strcmp(r.texts[1], "b"));
    CHECK(parse(YAN_RQ_EMBED, "{\"input\":\"x\",\"encoding_format\":\"base64\"}", &a, &r, &e) == YAN_OK);
    CHECK(r.base64 && r.n_inputs == 1);
    CHECK(parse(YAN_RQ_TOKENIZE, "{\"content\":\"hello\",\"add_special\":true}", &a, &r, &e) == YAN_OK);
    CHECK(r.add_special && r.parse_special && !r.with_pieces && r.text_lens[0] == 5);
    CHECK(parse(YAN_RQ_DETOKENIZE, "{\"tokens\":[5,6]}", &a, &r, &e) == YAN_OK);
    CHECK(r.tok_lens[0] == 2 && r.toks[0][1] == 6);
    CHECK(parse(YAN_RQ_DETOKENIZE, "{\"tokens\":[]}", &a, &r, &e) == YAN_OK);
    CHECK(parse(YAN_RQ_MODERATION, "{\"input\":[\"a\",{\"type\":\"text\",\"text\":\"b\"}]}", &a, &r, &e) == YAN_OK);
    CHECK(r.n_inputs == 2 && !strcmp(r.texts[1], "b"));
    yan_arena_free(&a);

    CHECK(rejects(YAN_RQ_COMPLETION, "{}", "prompt", "required"));
    CHECK(rejects(YAN_RQ_COMPLETION, "{\"prompt\":[]}", "prompt", "empty"));
    CHECK(rejects(YAN_RQ_COMPLETION, "{\"prompt\":[1,-2]}", "prompt", "token ids"));
    CHECK(rejects(YAN_RQ_COMPLETION, "{\"prompt\":[1,\"x\"]}", "prompt", "token ids"));
    CHECK(rejects(YAN_RQ_COMPLETION, "{\"prompt\":[\"a\",3]}", "prompt[1]", "string"));
    CHECK(rejects(YAN_RQ_COMPLETION, "{\"prompt\":[[1],[]]}", "prompt[1]", "non-empty"));
    CHECK(rejects(YAN_RQ_COMPLETION, "{\"prompt\":{}}", "prompt", "string"));
    CHECK(rejects(YAN_RQ_COMPLETION, "{\"prompt\":\"x\",\"logprobs\":6}", "logprobs", "between 0 and 5"));
    CHECK(rejects(YAN_RQ_COMPLETION, "{\"prompt\":\"x\",\"suffix\":\"y\"}", "suffix", "not supported"));
    CHECK(rejects(YAN_RQ_COMPLETION, "{\"prompt\":[\"a\",\"b\",\"c\"],\"n\":6}", "n", "at most 16"));
    CHECK(rejects(YAN_RQ_EMBED, "{\"input\":\"\"}", "input", "empty"));
    CHECK(rejects(YAN_RQ_EMBED, "{\"input\":\"x\",\"encoding_format\":\"hex\"}", "encoding_format", "float"));
    CHECK(rejects(YAN_RQ_EMBED, "{\"input\":\"x\",\"dimensions\":0}", "dimensions", "between"));
    CHECK(rejects(YAN_RQ_TOKENIZE, "{\"content\":1}", "content", "string"));
    CHECK(rejects(YAN_RQ_TOKENIZE, "{}", "content", "required"));
    CHECK(rejects(YAN_RQ_DETOKENIZE, "{\"tokens\":\"1 2\"}", "tokens", "array"));
    CHECK(rejects(YAN_RQ_DETOKENIZE, "{\"tokens\":[1.5]}", "tokens", "token ids"));
    CHECK(rejects(YAN_RQ_MODERATION, "{\"input\":[{\"type\":\"image_url\"}]}", "input[0]", "only text"));
}

TEST(request_parse_survives_allocation_failures) {
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}],\"stop\":[\"x\",\"y\"],\"n\":2}";
    for (long k = 1; k < 40; k++) {
        yan_arena a;
        yan_arena_init(&a, 64); /* tiny blocks: many allocations */
        yan_api_req r;
        yan_api_error e;
        yan_alloc_fail_after(k);
        yan_status st = parse(YAN_RQ_CHAT, body, &a, &r, &e);
        yan_alloc_fail_after(0);
        CHECK(st == YAN_OK || (st == YAN_ERR_INVALID_ARG && e.status == 500));
        yan_arena_free(&a);
    }
}

TEST(error_json_shape) {
    yan_api_error e;
    yan_api_error_set(&e, 404, "invalid_request_error", "model_not_found", "model", "The model '%s' does not exist", "x");
    yan_buf b = {0};
    CHECK(yan_api_error_json(&e, &b));
    CHECK(!strcmp(b.data, "{\"error\":{\"message\":\"The model 'x' does not exist\",\"type\":\"invalid_request_error\","
                          "\"param\":\"model\",\"code\":\"model_not_found\"}}"));
    b.len = 0;
    yan_api_error_set(&e, 500, "server_error", NULL, NULL, "a \"quoted\"\nline");
    CHECK(yan_api_error_json(&e, &b));
    CHECK(!strcmp(b.data, "{\"error\":{\"message\":\"a \\\"quoted\\\"\\nline\",\"type\":\"server_error\",\"param\":null,"
                          "\"code\":null}}"));
    yan_buf_free(&b);
}

/* ---------------------------------------------------------------- metrics */

/* ------------------------------------------------------------- uploads */

TEST(upload_multipart_file_part) {
    static const char body[] =
        "preamble\r\n"
        "--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nkb\r\n"
        "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"dir/notes.md\"\r\n"
        "Content-Type: text/markdown\r\n\r\n# Notes\r\n\r\nsee --XyZ mid-line\r\n--XyZ-not-a-delimiter\r\n"
        "--XyZ--\r\n";
    const char *name, *data;
    size_t nl, dl;
    CHECK(yan_upload_multipart_file("multipart/form-data; boundary=XyZ", body, sizeof body - 1, &name, &nl, &data, &dl));
    CHECK(nl == 12 && !memcmp(name, "dir/notes.md", 12));
    static const char want[] = "# Notes\r\n\r\nsee --XyZ mid-line";
    CHECK(dl == sizeof want - 1 && !memcmp(data, want, dl));
    /* a quoted boundary, LF line ends, an empty file */
    static const char lf[] = "--a b\nContent-Disposition: form-data; name=\"f\"; filename=\"e.txt\"\n\n\n--a b--\n";
    CHECK(yan_upload_multipart_file("multipart/form-data; boundary=\"a b\"; charset=x", lf, sizeof lf - 1, &name, &nl, &data, &dl));
    CHECK(nl == 5 && dl == 0);
    /* no file part, no closing delimiter, no boundary, a boundary too long */
    static const char nofile[] = "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--XyZ--\r\n";
    CHECK(!yan_upload_multipart_file("multipart/form-data; boundary=XyZ", nofile, sizeof nofile - 1, &name, &nl, &data, &dl));
    static const char open[] = "--XyZ\r\nContent-Disposition: form-data; filename=\"a.txt\"\r\n\r\nunterminated";
    CHECK(!yan_upload_multipart_file("multipart/form-data; boundary=XyZ", open, sizeof open - 1, &name, &nl, &data, &dl));
    CHECK(!yan_upload_multipart_file("multipart/form-data", body, sizeof body - 1, &name, &nl, &data, &dl));
    char longb[200] = "multipart/form-data; boundary=";
    memset(longb + strlen(longb), 'b', 100);
    CHECK(!yan_upload_multipart_file(longb, body, sizeof body - 1, &name, &nl, &data, &dl));
}

TEST(upload_base64_and_names) {
    yan_buf b = {0};
    CHECK(yan_upload_b64_decode("SGVs bG8s\nIHdv cmxkIQ==", &b) && b.len == 13 && !memcmp(b.data, "Hello, world!", 13));
    b.len = 0;
    CHECK(yan_upload_b64_decode("-_8", &b) && b.len == 2 && (uint8_t)b.data[0] == 0xFB && (uint8_t)b.data[1] == 0xFF);
    CHECK(!yan_upload_b64_decode("abc*", &b));
    yan_buf_free(&b);
    char out[YAN_UPLOAD_MAX_NAME + 1];
    const char *why = NULL;
    CHECK(yan_upload_safe_name("../../etc/pass wd.TXT", 21, out, sizeof out, &why) && !strcmp(out, "pass_wd.TXT"));
    CHECK(yan_upload_safe_name("C:\\docs\\.hidden.md", 18, out, sizeof out, &why) && !strcmp(out, "_hidden.md"));
    CHECK(!yan_upload_safe_name("a.exe", 5, out, sizeof out, &why) && strstr(why, ".txt"));
    CHECK(!yan_upload_safe_name("dir/", 4, out, sizeof out, &why) && strstr(why, "1 to 128"));
    char big[200];
    memset(big, 'a', sizeof big);
    memcpy(big + sizeof big - 4, ".txt", 4);
    CHECK(!yan_upload_safe_name(big, sizeof big, out, sizeof out, &why));
}

TEST(metrics_text) {
    yan_metrics m;
    yan_metrics_init(&m);
    yan_metrics_request(&m, YAN_EP_CHAT, 200, 0.5);
    yan_metrics_request(&m, YAN_EP_CHAT, 200, 1.5);
    yan_metrics_request(&m, YAN_EP_CHAT, 429, 0.001);
    yan_metrics_tokens(&m, 10, 20, 4);
    yan_metrics_ttft(&m, 0.03);
    yan_metrics_tpot(&m, 0.004);
    yan_metrics_cancel(&m, YAN_CANCEL_CLIENT);
    yan_gauges g = {.queue_depth = 2, .running = 1, .kv_blocks_used = 5, .kv_blocks_total = 64};
    yan_buf b = {0};
    CHECK(yan_metrics_render(&m, &g, &b));
    CHECK(strstr(b.data, "yan_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"} 2\n"));
    CHECK(strstr(b.data, "yan_requests_total{endpoint=\"/v1/chat/completions\",status=\"429\"} 1\n"));
    CHECK(strstr(b.data, "yan_prompt_tokens_total 10\n") && strstr(b.data, "yan_completion_tokens_total 20\n"));
    CHECK(strstr(b.data, "yan_time_to_first_token_seconds_bucket{le=\"0.025\"} 0\n"));
    CHECK(strstr(b.data, "yan_time_to_first_token_seconds_bucket{le=\"0.05\"} 1\n"));
    CHECK(strstr(b.data, "yan_time_to_first_token_seconds_bucket{le=\"+Inf\"} 1\n"));
    CHECK(strstr(b.data, "yan_time_per_output_token_seconds_count 1\n"));
    CHECK(strstr(b.data, "yan_requests_cancelled_total{reason=\"client_disconnect\"} 1\n"));
    CHECK(strstr(b.data, "yan_queue_depth 2\n") && strstr(b.data, "yan_kv_blocks_total 64\n"));
    CHECK(strstr(b.data, "# TYPE yan_request_duration_seconds histogram\n"));
    /* every line is a comment or "name{labels} value" */
    for (char *line = b.data; *line;) {
        char *nl = strchr(line, '\n');
        CHECK(nl != NULL);
        if (!nl) break;
        if (line[0] != '#') {
            char *sp = memchr(line, ' ', (size_t)(nl - line));
            CHECK(sp != NULL);
            if (sp) {
                char *end;
                strtod(sp + 1, &end);
                CHECK(end == nl);
            }
        }
        line = nl + 1;
    }
    yan_buf_free(&b);
    yan_metrics_free(&m);
}

/* -------------------------------------------------------------- scheduler */

#include "model_util.h"
#include "serve/sched.h"

#include <time.h>

static yan_model *sched_model(wmodel *w, int ctx) {
    spec sp = base_spec("llama");
    sp.ctx_train = ctx;
    const char *path = tmp_path("sched.gguf");
    write_model(&sp, w, path);
    yan_model *m = NULL;
    CHECK(yan_model_load(path, NULL, &m) == YAN_OK);
    return m;
}

static yan_sched *sched_start(yan_model *m, int n_seq, int n_batch, int64_t n_blocks, yan_engine **e,
                              yan_metrics *mx) {
    yan_engine_params ep = yan_engine_params_default();
    ep.n_ctx = 128;
    ep.n_seq_max = n_seq;
    ep.n_batch = n_batch;
    ep.n_blocks = n_blocks;
    ep.n_threads = 1;
    CHECK(yan_engine_new(m, &ep, e) == YAN_OK);
    yan_sched_params p = {.queue_max = 16, .metrics = mx};
    yan_sched *s = NULL;
    CHECK(yan_sched_new(*e, &p, &s) == YAN_OK);
    return s;
}

static yan_job *gen_job(const yan_token *prompt, int n, int n_choices, float temp, uint64_t seed, int max_tokens) {
    yan_job *j = yan_job_new(YAN_JOB_GEN, 1, n_choices);
    j->prompts[0] = yan_malloc((size_t)n * sizeof(yan_token));
    memcpy(j->prompts[0], prompt, (size_t)n * sizeof(yan_token));
    j->n_prompt[0] = n;
    j->sp = yan_sampler_params_default();
    j->sp.temperature = temp;
    j->sp.seed = seed;
    j->max_tokens = max_tokens;
    j->t_arrival = yan_now();
    return j;
}

static void wait_done(yan_sched *s, yan_job *j) {
    yan_sched_lock(s);
    for (int i = 0; j->phase != YAN_PHASE_DONE && i < 2000; i++) yan_sched_wait(s, j, 10);
    CHECK(j->phase == YAN_PHASE_DONE);
    yan_sched_unlock(s);
}

typedef struct {
    yan_buf b;
} collect;
static bool collect_text(const char *t, size_t n, void *ud) { return yan_buf_append(&((collect *)ud)->b, t, n); }

/* What yan_generate produces for the same prompt and sampler (sanitized as the server publishes it). */
static void reference_text(yan_model *m, const yan_token *prompt, int n, float temp, uint64_t seed, int max_tokens,
                           const char *const *stop, int n_stop, yan_buf *out) {
    yan_context *ctx = new_ctx(m, 128, 64, 1, YAN_KV_F16);
    yan_sampler_params sp = yan_sampler_params_default();
    sp.temperature = temp;
    sp.seed = seed;
    yan_sampler *smp = NULL;
    CHECK(yan_sampler_new(&sp, yan_model_n_vocab(m), &smp) == YAN_OK);
    collect c = {{0}};
    yan_generate_params gp = yan_generate_params_default();
    gp.max_tokens = max_tokens;
    gp.stop = stop;
    gp.n_stop = n_stop;
    gp.on_text = collect_text;
    gp.ud = &c;
    /* the server's sampler sees no prompt tokens in its history: no penalties here anyway */
    CHECK(yan_generate(ctx, smp, prompt, (size_t)n, &gp, NULL) == YAN_OK);
    yan_utf8_sanitize(out, c.b.data ? c.b.data : "", c.b.len);
    yan_buf_free(&c.b);
    yan_sampler_free(smp);
    yan_context_free(ctx);
}

TEST(sched_batched_jobs_equal_each_alone) {
    wmodel w;
    yan_model *m = sched_model(&w, 128);
    if (!m) return;
    yan_engine *e = NULL;
    yan_metrics mx;
    yan_metrics_init(&mx);
    yan_sched *s = sched_start(m, 6, 16, 0, &e, &mx); /* a small step budget: prompts are chunked */
    uint64_t rng = 7;
    enum { NJ = 6 };
    yan_token prompts[NJ][40];
    int np[NJ];
    yan_job *jobs[NJ];
    yan_api_error err;
    for (int k = 0; k < NJ; k++) {
        np[k] = 5 + 7 * k;
        for (int t = 0; t < np[k]; t++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            prompts[k][t] = (yan_token)((rng >> 33) % 259);
        }
        if (k == 4) memcpy(prompts[4], prompts[3], 20 * sizeof(yan_token)); /* a shared prefix (prompts[3] is filled) */
        jobs[k] = gen_job(prompts[k], np[k], 1, k % 2 ? 0.0f : 0.9f, 100 + (uint64_t)k, 10 + 3 * k);
        CHECK(yan_sched_submit(s, jobs[k], &err) == YAN_OK);
    }
    for (int k = 0; k < NJ; k++) wait_done(s, jobs[k]);
    for (int k = 0; k < NJ; k++) {
        yan_buf ref = {0};
        reference_text(m, prompts[k], np[k], k % 2 ? 0.0f : 0.9f, 100 + (uint64_t)k, 10 + 3 * k, NULL, 0, &ref);
        const yan_choice *c = &jobs[k]->ch[0];
        bool same = c->text.len == ref.len && (!ref.len || !memcmp(c->text.data, ref.data, ref.len));
        if (!same) fprintf(stderr, "  job %d: %zu vs %zu bytes\n", k, c->text.len, ref.len);
        CHECK(same);
        CHECK(c->finish == YAN_FIN_STOP || c->finish == YAN_FIN_LENGTH);
        CHECK(c->n_gen <= 10 + 3 * k);
        yan_buf_free(&ref);
        yan_sched_release(s, jobs[k], YAN_CANCEL_CLIENT);
    }
    yan_gauges g;
    yan_sched_gauges(s, &g);
    CHECK(g.running == 0 && g.seqs_used == 0 && g.queue_depth == 0);
    CHECK(g.kv_blocks_used == 0);
    CHECK(mx.completion_tokens > 0 && mx.ttft.total == NJ);
    yan_sched_free(s);
    yan_engine_free(e);
    yan_metrics_free(&mx);
    yan_model_free(m);
    wmodel_free(&w);
}

TEST(sched_n_choices_stop_strings_and_json) {
    wmodel w;
    yan_model *m = sched_model(&w, 128);
    if (!m) return;
    yan_engine *e = NULL;
    yan_sched *s = sched_start(m, 4, 64, 0, &e, NULL);
    const yan_token prompt[] = {116, 104, 101, 32, 116, 104, 101, 32, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106,
                                107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 65, 66};
    const int np = (int)(sizeof prompt / sizeof prompt[0]);
    yan_api_error err;
    /* n = 3: choice 0 is the n = 1 answer; every choice is its seed's answer */
    yan_job *three = gen_job(prompt, np, 3, 1.0f, 42, 12);
    CHECK(yan_sched_submit(s, three, &err) == YAN_OK);
    wait_done(s, three);
    for (int i = 0; i < 3; i++) {
        yan_buf ref = {0};
        reference_text(m, prompt, np, 1.0f, 42 + (uint64_t)i, 12, NULL, 0, &ref);
        CHECK(three->ch[i].text.len == ref.len && (!ref.len || !memcmp(three->ch[i].text.data, ref.data, ref.len)));
        yan_buf_free(&ref);
    }
    CHECK(three->ch[1].n_cached >= 32); /* the later choices took the first one's full block */
    yan_sched_release(s, three, YAN_CANCEL_CLIENT);

    /* stop strings: the text ends where yan_generate's does */
    yan_buf full = {0};
    reference_text(m, prompt, np, 0.0f, 1, 30, NULL, 0, &full);
    size_t at = 1; /* two printable ASCII bytes after the first byte */
    while (at + 1 < full.len && !(full.data[at] > 32 && full.data[at] < 127 && full.data[at + 1] > 32 &&
                                  full.data[at + 1] < 127))
        at++;
    if (at + 1 < full.len) {
        char stop[3] = {full.data[at], full.data[at + 1], 0};
        const char *stops[1] = {stop};
        yan_job *j = gen_job(prompt, np, 1, 0.0f, 1, 30);
        CHECK(yan_job_set_stop(j, stops, 1));
        CHECK(yan_sched_submit(s, j, &err) == YAN_OK);
        wait_done(s, j);
        yan_buf ref = {0};
        reference_text(m, prompt, np, 0.0f, 1, 30, stops, 1, &ref);
        CHECK(j->ch[0].text.len == ref.len && !memcmp(j->ch[0].text.data, ref.data, ref.len));
        CHECK(j->ch[0].finish == YAN_FIN_STOP);
        CHECK(!strstr(j->ch[0].text.data ? j->ch[0].text.data : "", stop));
        yan_buf_free(&ref);
        yan_sched_release(s, j, YAN_CANCEL_CLIENT);
    }
    yan_buf_free(&full);

    /* JSON mode: the text is an object, for any seed and a small budget */
    for (int seed = 0; seed < 6; seed++) {
        yan_job *j = gen_job(prompt, np, 1, 1.0f, (uint64_t)seed, 8 + seed * 4);
        j->json_mode = true;
        CHECK(yan_sched_submit(s, j, &err) == YAN_OK);
        wait_done(s, j);
        yan_arena a;
        yan_arena_init(&a, 1024);
        yan_json *root = NULL;
        const yan_choice *c = &j->ch[0];
        bool ok = c->text.data && yan_json_parse(c->text.data, c->text.len, &a, &root) == YAN_OK &&
                  yan_json_is(root, YAN_JSON_OBJECT);
        if (!ok) fprintf(stderr, "  json seed %d: %s\n", seed, c->text.data ? c->text.data : "(none)");
        CHECK(ok);
        CHECK(c->finish == YAN_FIN_STOP);
        yan_arena_free(&a);
        yan_sched_release(s, j, YAN_CANCEL_CLIENT);
    }
    yan_sched_free(s);
    yan_engine_free(e);
    yan_model_free(m);
    wmodel_free(&w);
}

/* A filter that flags the first 't' and cuts there. */
static void *ff_open(void *ud) {
    (void)ud;
    return yan_calloc(1, sizeof(uint64_t));
}
static bool ff_feed(void *ud, void *st, const char *p, size_t n, bool final, uint64_t *cut) {
    (void)ud, (void)final;
    uint64_t *off = st;
    for (size_t i = 0; i < n; i++)
        if (p[i] == 't') {
            *cut = *off + i;
            return true;
        }
    *off += n;
    return false;
}
static void ff_close(void *ud, void *st) {
    (void)ud;
    yan_free(st);
}

TEST(sched_output_filter_cuts_before_the_match) {
    wmodel w;
    yan_model *m = sched_model(&w, 128);
    if (!m) return;
    yan_engine *e = NULL;
    yan_sched *s = sched_start(m, 4, 64, 0, &e, NULL);
    const yan_output_filter f = {ff_open, ff_feed, ff_close, NULL};
    const yan_token prompt[] = {116, 104, 101, 32, 97, 32, 98};
    yan_api_error err;
    int filtered = 0;
    for (int seed = 0; seed < 8; seed++) {
        yan_buf ref = {0};
        reference_text(m, prompt, 7, 1.0f, (uint64_t)seed, 40, NULL, 0, &ref);
        yan_job *j = gen_job(prompt, 7, 1, 1.0f, (uint64_t)seed, 40);
        j->filter = &f;
        CHECK(yan_sched_submit(s, j, &err) == YAN_OK);
        wait_done(s, j);
        const yan_choice *c = &j->ch[0];
        const char *hit = ref.data ? memchr(ref.data, 't', ref.len) : NULL;
        if (hit) {
            size_t want = (size_t)(hit - ref.data);
            /* the released text is exactly what came before the match */
            CHECK(c->finish == YAN_FIN_CONTENT_FILTER);
            CHECK(c->text.len == want && (!want || !memcmp(c->text.data, ref.data, want)));
            filtered++;
        } else {
            CHECK(c->finish != YAN_FIN_CONTENT_FILTER);
            CHECK(c->text.len == ref.len);
        }
        yan_buf_free(&ref);
        yan_sched_release(s, j, YAN_CANCEL_CLIENT);
    }
    CHECK(filtered > 0);
    yan_sched_free(s);
    yan_engine_free(e);
    yan_model_free(m);
    wmodel_free(&w);
}

TEST(sched_admission_cancel_and_limits) {
    wmodel w;
    yan_model *m = sched_model(&w, 128);
    if (!m) return;
    yan_engine *e = NULL;
    yan_metrics mx;
    yan_metrics_init(&mx);
    /* 8 blocks of 32 positions */
    yan_sched *s = sched_start(m, 4, 64, 8, &e, &mx);
    yan_token prompt[64];
    for (int i = 0; i < 64; i++) prompt[i] = (yan_token)(32 + i);
    yan_api_error err;
    /* more blocks than the pool has (3 choices x 4 blocks > 8): refused at once */
    yan_job *big = gen_job(prompt, 64, 3, 1.0f, 1, 64);
    CHECK(yan_sched_submit(s, big, &err) == YAN_ERR_INVALID_ARG && err.status == 400);
    CHECK(!strcmp(err.type, "exceed_context_size_error"));
    yan_sched_release(s, big, YAN_CANCEL_CLIENT);
    /* prompt + max_tokens beyond the context: 400 */
    yan_job *ctx = gen_job(prompt, 64, 1, 1.0f, 1, 100);
    CHECK(yan_sched_submit(s, ctx, &err) == YAN_ERR_INVALID_ARG && !strcmp(err.type, "exceed_context_size_error"));
    yan_sched_release(s, ctx, YAN_CANCEL_CLIENT);
    /* more choices than sequences: 400 naming n */
    yan_job *wide = gen_job(prompt, 4, 5, 1.0f, 1, 2);
    CHECK(yan_sched_submit(s, wide, &err) == YAN_ERR_INVALID_ARG && !strcmp(err.param, "n"));
    yan_sched_release(s, wide, YAN_CANCEL_CLIENT);
    /* exactly the whole pool: 2 choices grown to the whole context (no max_tokens) */
    yan_job *whole = gen_job(prompt, 64, 2, 1.0f, 1, -1);
    CHECK(yan_sched_submit(s, whole, &err) == YAN_OK);
    wait_done(s, whole);
    CHECK(!whole->failed);
    yan_sched_release(s, whole, YAN_CANCEL_CLIENT);

    /* three jobs of 4 blocks each: two run at once, the third waits for one of them */
    yan_job *ab[3];
    for (int k = 0; k < 3; k++) {
        ab[k] = gen_job(prompt + k, 64 - k, 1, 1.0f, (uint64_t)k, 60);
        ab[k]->ignore_eos = true;
        CHECK(yan_sched_submit(s, ab[k], &err) == YAN_OK);
    }
    for (int k = 0; k < 3; k++) wait_done(s, ab[k]);
    for (int k = 0; k < 3; k++) CHECK(ab[k]->ch[0].n_gen == 60 && ab[k]->ch[0].finish == YAN_FIN_LENGTH);
    CHECK(ab[2]->t_first >= fmin(ab[0]->ch[0].t_last, ab[1]->ch[0].t_last));
    for (int k = 0; k < 3; k++) yan_sched_release(s, ab[k], YAN_CANCEL_CLIENT);

    /* a running job cancelled by its client frees its sequence at the next step */
    yan_job *c = gen_job(prompt, 8, 1, 1.0f, 3, 100);
    c->ignore_eos = true;
    CHECK(yan_sched_submit(s, c, &err) == YAN_OK);
    yan_sched_lock(s);
    while (c->ch[0].n_gen < 2 && c->phase != YAN_PHASE_DONE) yan_sched_wait(s, c, 1);
    yan_sched_unlock(s);
    yan_sched_release(s, c, YAN_CANCEL_CLIENT); /* the client leaves */
    yan_gauges g;
    for (int i = 0; i < 200; i++) {
        yan_sched_gauges(s, &g);
        if (g.running == 0 && g.seqs_used == 0) break;
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    CHECK(g.running == 0 && g.seqs_used == 0 && g.kv_blocks_used == 0);
    CHECK(mx.cancelled[YAN_CANCEL_CLIENT] == 1);

    /* shutdown: queued jobs fail with 503, new ones are refused */
    yan_sched_drain(s);
    yan_job *late = gen_job(prompt, 4, 1, 1.0f, 1, 2);
    CHECK(yan_sched_submit(s, late, &err) == YAN_ERR_INVALID_ARG && err.status == 503);
    yan_sched_release(s, late, YAN_CANCEL_CLIENT);
    CHECK(yan_sched_wait_idle(s, yan_now() + 5));
    yan_sched_free(s);
    yan_engine_free(e);
    yan_metrics_free(&mx);
    yan_model_free(m);
    wmodel_free(&w);
}

TEST(sched_embeddings) {
    wmodel w;
    yan_model *m = sched_model(&w, 128);
    if (!m) return;
    yan_engine *e = NULL;
    yan_sched *s = sched_start(m, 2, 32, 0, &e, NULL);
    yan_job *j = yan_job_new(YAN_JOB_EMBED, 2, 1);
    const yan_token t0[] = {116, 104, 101}, t1[] = {97, 98, 99, 100, 101};
    j->prompts[0] = yan_malloc(sizeof t0);
    memcpy(j->prompts[0], t0, sizeof t0);
    j->n_prompt[0] = 3;
    j->prompts[1] = yan_malloc(sizeof t1);
    memcpy(j->prompts[1], t1, sizeof t1);
    j->n_prompt[1] = 5;
    yan_api_error err;
    CHECK(yan_sched_submit(s, j, &err) == YAN_OK);
    wait_done(s, j);
    CHECK(!j->failed && j->emb);
    int C = yan_model_n_embd(m);
    float *ref = malloc((size_t)C * sizeof *ref);
    CHECK(yan_engine_embed(e, t1, 5, ref) == YAN_OK); /* the engine is idle now */
    double d = 0, norm = 0;
    for (int i = 0; i < C; i++) d = fmax(d, fabs(ref[i] - j->emb[C + i])), norm += (double)j->emb[i] * j->emb[i];
    CHECK(d < 1e-6);
    CHECK_NEAR(norm, 1.0, 1e-4);
    free(ref);
    yan_sched_release(s, j, YAN_CANCEL_CLIENT);
    yan_sched_free(s);
    yan_engine_free(e);
    yan_model_free(m);
    wmodel_free(&w);
}

/* ------------------------------------------- proxy output moderation */

static yan_moderator *pf_moderator(void) {
    yan_moderator_params p = yan_moderator_params_default();
    p.rules_text = "[violence]\nkill = 1.0\n";
    p.rules_len = strlen(p.rules_text);
    yan_moderator *m = NULL;
    CHECK(yan_moderator_new(&p, &m) == YAN_OK);
    return m;
}

typedef struct {
    int flagged, oversize;
    int64_t last_choice;
} pf_seen;

static void pf_note(void *ud, yan_pf_event ev, int64_t choice, const yan_moderation *res) {
    pf_seen *s = ud;
    if (ev == YAN_PF_OVERSIZE) {
        s->oversize++;
        return;
    }
    CHECK(res && res->flagged);
    s->flagged++;
    s->last_choice = choice;
}

/* Run in[] through a filter in pieces of `step` bytes; out gets all of it.
 * bad (may be NULL): text that must never appear in the output, checked
 * after every piece. */
static void pf_run(const yan_moderator *m, bool chat, bool sse, const char *in, size_t step, size_t json_max,
                   yan_buf *out, pf_seen *seen, const char *bad) {
    yan_pfilter_params pp = yan_pfilter_params_default();
    pp.chat = chat, pp.sse = sse, pp.json_max = json_max, pp.fn = pf_note, pp.ud = seen;
    yan_pfilter *f = NULL;
    CHECK(yan_pfilter_new(m, &pp, &f) == YAN_OK);
    if (!f) return;
    size_t n = strlen(in);
    for (size_t i = 0; i < n; i += step) {
        CHECK(yan_pfilter_feed(f, in + i, step < n - i ? step : n - i, out) == YAN_OK);
        if (bad && out->data) CHECK(!strstr(out->data, bad));
    }
    CHECK(yan_pfilter_finish(f, out) == YAN_OK);
    if (bad && out->data) CHECK(!strstr(out->data, bad));
    yan_pfilter_free(f);
}

/* What a client makes of a stream: per choice index (< 4) its text and
 * last finish_reason, usage chunks, [DONE] (and that it is last), events
 * that are not JSON. */
typedef struct {
    char text[4][256];
    char fin[4][32];
    int usage, done, n_events, n_raw;
    bool done_last;
} pf_sum;

static void pf_summary(const yan_buf *b, bool chat, pf_sum *r) {
    memset(r, 0, sizeof *r);
    yan_buf lf = {0}; /* CRLF framing read as LF */
    for (size_t i = 0; i < b->len; i++)
        if (b->data[i] != '\r') yan_buf_putc(&lf, b->data[i]);
    const char *p = lf.data ? lf.data : "";
    for (const char *e; *p; p = e + 2) {
        e = strstr(p, "\n\n");
        CHECK(e != NULL); /* every event ends with a blank line */
        if (!e) break;
        r->n_events++;
        r->done_last = false;
        if (strncmp(p, "data: ", 6)) continue; /* a comment */
        if (!strncmp(p + 6, "[DONE]", 6)) {
            r->done++;
            r->done_last = true;
            continue;
        }
        cJSON *o = cJSON_ParseWithLength(p + 6, (size_t)(e - p - 6));
        if (!o) {
            r->n_raw++;
            continue;
        }
        cJSON *u = cJSON_GetObjectItem(o, "usage");
        if (u && !cJSON_IsNull(u)) r->usage++;
        cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(o, "choices")) {
            int i = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(c, "index"));
            if (i < 0 || i >= 4) continue;
            cJSON *t = chat ? cJSON_GetObjectItem(cJSON_GetObjectItem(c, "delta"), "content")
                            : cJSON_GetObjectItem(c, "text");
            if (cJSON_IsString(t)) strncat(r->text[i], t->valuestring, sizeof r->text[i] - strlen(r->text[i]) - 1);
            cJSON *fr = cJSON_GetObjectItem(c, "finish_reason");
            if (cJSON_IsString(fr)) snprintf(r->fin[i], sizeof r->fin[i], "%s", fr->valuestring);
        }
        cJSON_Delete(o);
    }
    yan_buf_free(&lf);
}

TEST(proxy_filter_json_cuts_the_flagged_choice) {
    yan_moderator *m = pf_moderator();
    if (!m) return;
    const char *chat = "{\"id\":\"c1\",\"object\":\"chat.completion\",\"created\":1715000000,\"model\":\"up\",\"choices\":["
                       "{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"I will kill them all\"},"
                       "\"logprobs\":{\"content\":[{\"token\":\"I will \",\"logprob\":-1,\"bytes\":[73,32,119,105,108,108,32]},"
                       "{\"token\":\"kill\",\"logprob\":-2,\"bytes\":[107,105,108,108]}]},\"finish_reason\":\"stop\"},"
                       "{\"index\":1,\"message\":{\"role\":\"assistant\",\"content\":\"a fine day\"},"
                       "\"logprobs\":null,\"finish_reason\":\"length\"}],"
                       "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5,\"total_tokens\":8}}";
    for (size_t step = 1; step <= 4096; step *= 8) {
        yan_buf out = {0};
        pf_seen seen = {0};
        pf_run(m, true, false, chat, step, 0, &out, &seen, "kill");
        CHECK(seen.flagged == 1 && seen.last_choice == 0 && !seen.oversize);
        cJSON *o = cJSON_Parse(out.data ? out.data : "");
        CHECK(o != NULL);
        cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "choices"), 0);
        cJSON *c1 = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "choices"), 1);
        CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(c0, "message"), "content")), "I will "));
        CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(c0, "finish_reason")), "content_filter"));
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(c0, "logprobs"), "content")) == 1);
        CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(c1, "message"), "content")),
                      "a fine day"));
        CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(c1, "finish_reason")), "length"));
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "usage"), "total_tokens")) == 8);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(o, "created")) == 1715000000);
        cJSON_Delete(o);
        yan_buf_free(&out);
    }
    /* completions: choices[].text, cut at the very start */
    yan_buf out = {0};
    pf_seen seen = {0};
    pf_run(m, false, false, "{\"choices\":[{\"index\":0,\"text\":\"kill\",\"finish_reason\":\"stop\"}]}", 7, 0, &out,
           &seen, "kill");
    CHECK(seen.flagged == 1);
    CHECK(out.data && !strcmp(out.data, "{\"choices\":[{\"index\":0,\"text\":\"\",\"finish_reason\":\"content_filter\"}]}"));
    yan_buf_free(&out);
    /* clean, unparseable, error bodies and a body over the limit go byte for byte */
    const char *same[] = {"{ \"choices\" : [ {\"index\":0, \"text\":\"fine words\"} ] }\n", "{\"choices\":[{\"text\":\"kill",
                          "{\"error\":{\"message\":\"kill\"}}", "not json at all"};
    for (size_t i = 0; i < sizeof same / sizeof *same; i++) {
        yan_buf o2 = {0};
        pf_seen s2 = {0};
        pf_run(m, false, false, same[i], 5, 0, &o2, &s2, NULL);
        CHECK(o2.data && !strcmp(o2.data, same[i]) && !s2.flagged);
        yan_buf_free(&o2);
    }
    yan_buf o3 = {0};
    pf_seen s3 = {0};
    const char *big = "{\"choices\":[{\"index\":0,\"text\":\"I will kill\"}]}";
    pf_run(m, false, false, big, 4, 16, &o3, &s3, NULL);
    CHECK(o3.data && !strcmp(o3.data, big) && s3.oversize == 1 && !s3.flagged);
    yan_buf_free(&o3);
    yan_moderator_free(m);
}

#define CHUNK(body) "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"up\",\"choices\":[" body "]}\n\n"
#define DELTA(i, text) "{\"index\":" #i ",\"delta\":{\"content\":\"" text "\"},\"finish_reason\":null}"

TEST(proxy_filter_stream_never_sends_a_split_match) {
    yan_moderator *m = pf_moderator();
    if (!m) return;
    const char *in = CHUNK("{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}")
                     CHUNK(DELTA(0, "I will ")) CHUNK(DELTA(0, "ki")) CHUNK(DELTA(0, "ll")) CHUNK(DELTA(0, " them"))
                     CHUNK("{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}")
                     "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"total_tokens\":9}}\n\n"
                     "data: [DONE]\n\n";
    for (size_t step = 1; step <= 4096; step *= 4) {
        yan_buf out = {0};
        pf_seen seen = {0};
        pf_run(m, true, true, in, step, 0, &out, &seen, "ki");
        pf_sum r;
        pf_summary(&out, true, &r);
        CHECK(seen.flagged == 1 && seen.last_choice == 0);
        CHECK(!strcmp(r.text[0], "I will "));
        CHECK(!strcmp(r.fin[0], "content_filter")); /* the later "stop" is dropped with the choice */
        CHECK(r.usage == 1 && r.done == 1 && r.done_last && !r.n_raw);
        CHECK(out.data && strstr(out.data, "\"role\":\"assistant\"")); /* the role chunk went out */
        yan_buf_free(&out);
    }
    /* a clean stream's text comes out whole, in order, CRLF framing too */
    const char *clean = "data: {\"choices\":[" DELTA(0, "a skilled ") "]}\r\n\r\n"
                        "data: {\"choices\":[" DELTA(0, "hand") "]}\r\n\r\n"
                        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\r\n\r\n"
                        "data: [DONE]\r\n\r\n";
    yan_buf out = {0};
    pf_seen seen = {0};
    pf_run(m, true, true, clean, 3, 0, &out, &seen, NULL);
    pf_sum r;
    pf_summary(&out, true, &r);
    CHECK(!seen.flagged && !strcmp(r.text[0], "a skilled hand") && !strcmp(r.fin[0], "stop"));
    CHECK(out.data && strstr(out.data, "data: [DONE]\r\n\r\n")); /* untouched events go as they came */
    yan_buf_free(&out);
    yan_moderator_free(m);
}

TEST(proxy_filter_stream_cuts_one_choice_of_two) {
    yan_moderator *m = pf_moderator();
    if (!m) return;
    /* completions stream, n=2: choice 1 says the word, choice 0 goes on */
    const char *in = "data: {\"choices\":[{\"index\":0,\"text\":\"one \",\"finish_reason\":null},"
                     "{\"index\":1,\"text\":\"we kil\",\"finish_reason\":null}]}\n\n"
                     "data: {\"choices\":[{\"index\":1,\"text\":\"l all\",\"finish_reason\":null}]}\n\n"
                     "data: {\"choices\":[{\"index\":0,\"text\":\"two \",\"finish_reason\":null}]}\n\n"
                     "data: {\"choices\":[{\"index\":1,\"text\":\" and more\",\"finish_reason\":null}]}\n\n"
                     "data: {\"choices\":[{\"index\":0,\"text\":\"three\",\"finish_reason\":\"length\"},"
                     "{\"index\":1,\"text\":\"\",\"finish_reason\":\"length\"}]}\n\n"
                     "data: [DONE]\n\n";
    for (size_t step = 1; step <= 4096; step *= 16) {
        yan_buf out = {0};
        pf_seen seen = {0};
        pf_run(m, false, true, in, step, 0, &out, &seen, "kil");
        pf_sum r;
        pf_summary(&out, false, &r);
        CHECK(seen.flagged == 1 && seen.last_choice == 1);
        CHECK(!strcmp(r.text[0], "one two three") && !strcmp(r.fin[0], "length"));
        CHECK(!strcmp(r.text[1], "we ") && !strcmp(r.fin[1], "content_filter"));
        CHECK(out.data && !strstr(out.data, "more") && r.done == 1 && r.done_last);
        yan_buf_free(&out);
    }
    yan_moderator_free(m);
}

TEST(proxy_filter_stream_passes_what_it_cannot_read) {
    yan_moderator *m = pf_moderator();
    if (!m) return;
    /* comments, other fields, malformed JSON, errors: byte for byte; held text
     * goes out before [DONE] even without a finish_reason */
    const char *in = ": ping\n\n"
                     "event: x\nid: 7\ndata: {not json\n\n"
                     "data: {\"error\":{\"message\":\"kill\"}}\n\n"
                     "data: {\"choices\":[" DELTA(0, "no end") "]}\n\n"
                     "data: [DONE]\n\n";
    yan_buf out = {0};
    pf_seen seen = {0};
    pf_run(m, true, true, in, 2, 0, &out, &seen, NULL);
    const char *head = ": ping\n\nevent: x\nid: 7\ndata: {not json\n\ndata: {\"error\":{\"message\":\"kill\"}}\n\n";
    CHECK(out.data && !strncmp(out.data, head, strlen(head)));
    pf_sum r;
    pf_summary(&out, true, &r);
    CHECK(!seen.flagged && !strcmp(r.text[0], "no end") && r.done_last && r.n_events == 6);
    yan_buf_free(&out);
    /* a stream that just stops: its last event (no blank line) and the held
     * text are moderated all the same */
    yan_buf o2 = {0};
    pf_seen s2 = {0};
    pf_run(m, true, true, "data: {\"choices\":[" DELTA(0, "so ") "]}\n\ndata: {\"choices\":[" DELTA(0, "kill") "]}", 5,
           0, &o2, &s2, "kill");
    pf_summary(&o2, true, &r);
    CHECK(s2.flagged == 1 && !strcmp(r.text[0], "so ") && !strcmp(r.fin[0], "content_filter"));
    yan_buf_free(&o2);
    yan_moderator_free(m);
}
