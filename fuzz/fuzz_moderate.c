/* fuzz_moderate.c — libFuzzer harness for the safety module. The first byte
 * picks what the rest is:
 *   even: rules text, a NUL, then text: the rules must load or fail with a
 *         "<rules>:LINE:" message; when they load, the text is moderated in
 *         one piece and in chunks cut by the input, and both must agree;
 *   odd:  text for the built-in moderator and the injection screen; the
 *         /v1/moderations JSON of the result must parse back. */
#include "base/json.h"
#include "safety/safety.h"

#include <stdlib.h>

static bool same(const yan_moderation *a, const yan_moderation *b) {
    if (a->flagged != b->flagged || a->n_matched != b->n_matched) return false;
    for (int c = 0; c < YAN_MOD_COUNT; c++) {
        if (a->categories[c] != b->categories[c] || a->scores[c] != b->scores[c]) return false;
        if (a->matches[c].start != b->matches[c].start || a->matches[c].end != b->matches[c].end) return false;
    }
    return true;
}

static void check_result(const yan_moderation *r, size_t len) {
    for (int c = 0; c < YAN_MOD_COUNT; c++)
        if (!(r->scores[c] >= 0 && r->scores[c] <= 1)) __builtin_trap();
    if (r->first.rule && !(r->first.start < r->first.end && r->first.end <= len)) __builtin_trap();
}

static void rules_and_text(const uint8_t *data, size_t size, uint8_t cut) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t rl = nul ? (size_t)(nul - data) : size;
    const char *text = nul ? (const char *)nul + 1 : "";
    size_t tl = nul ? size - rl - 1 : 0;
    yan_moderator_params p = yan_moderator_params_default();
    p.rules_text = (const char *)data;
    p.rules_len = rl;
    yan_moderator *m = NULL;
    yan_status st = yan_moderator_new(&p, &m);
    if (st != YAN_OK) {
        if (m || (st == YAN_ERR_FORMAT && !strstr(yan_last_error(), "<rules>:"))) __builtin_trap();
        return;
    }
    yan_moderation one, chunked;
    if (yan_moderate(m, text, tl, &one) != YAN_OK) __builtin_trap();
    check_result(&one, tl);
    yan_moderate_stream *s;
    if (yan_moderate_stream_new(m, &s) == YAN_OK) {
        size_t step = 1 + cut % 11;
        for (size_t i = 0; i < tl; i += step)
            if (yan_moderate_stream_feed(s, text + i, tl - i < step ? tl - i : step, NULL) != YAN_OK) __builtin_trap();
        if (yan_moderate_stream_finish(s, &chunked) != YAN_OK || !same(&one, &chunked)) __builtin_trap();
        yan_moderate_stream_free(s);
    }
    yan_moderator_free(m);
}

static void builtin(const uint8_t *data, size_t size) {
    static yan_moderator *m; /* built once, kept for the whole run */
    if (!m && yan_moderator_new(NULL, &m) != YAN_OK) __builtin_trap();
    yan_moderation r;
    yan_injection_result inj;
    if (yan_moderate(m, (const char *)data, size, &r) != YAN_OK) __builtin_trap();
    check_result(&r, size);
    if (yan_injection_check(m, (const char *)data, size, &inj) != YAN_OK) __builtin_trap();
    if (!(inj.score >= 0 && inj.score <= 1) || strnlen(inj.reason, sizeof inj.reason) >= sizeof inj.reason)
        __builtin_trap();
    yan_buf b = {0};
    if (yan_moderation_json(&b, "modr-fuzz", &r, &inj, 1)) {
        yan_arena a;
        yan_arena_init(&a, 4096);
        yan_json *root = NULL;
        if (yan_json_parse(b.data, b.len, &a, &root) != YAN_OK) __builtin_trap();
        yan_arena_free(&a);
    }
    yan_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    if (data[0] & 1) builtin(data + 1, size - 1);
    else rules_and_text(data + 1, size - 1, data[0]);
    return 0;
}
