/* fuzz_serve_request.c — libFuzzer harness for what the server reads from
 * clients: the first byte picks an endpoint, the rest is its JSON body.
 *  - request parsing and validation must parse or fail with a 400/500
 *    yan_api_error (never crash, leak or read out of bounds); a parsed
 *    request must satisfy its documented bounds; the error JSON must render;
 *  - the JSON grammar machine (response_format json_object) is checked
 *    against the strict JSON parser: whatever the machine accepts as a
 *    complete document, the parser accepts as an object;
 *  - the SSE encoder frames the bytes as data lines only. */
#include "base/json.h"
#include "serve/jsongram.h"
#include "serve/request.h"
#include "serve/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const yan_rq_kind kind = (yan_rq_kind)(data[0] % 6);
    const char *body = (const char *)data + 1;
    const size_t len = size - 1;

    yan_arena a;
    yan_arena_init(&a, 4096);
    yan_api_req r;
    yan_api_error e;
    memset(&e, 0, sizeof e);
    yan_status st = yan_api_parse(kind, body, len, &a, &r, &e);
    if (st == YAN_OK) {
        if (r.n < 1 || r.n > YAN_RQ_MAX_N || r.n_stop < 0 || r.n_stop > YAN_RQ_MAX_STOP) __builtin_trap();
        if (r.logprobs < -1 || r.logprobs > YAN_RQ_MAX_TOP_LOGPROBS) __builtin_trap();
        if (r.max_tokens == 0 || r.max_tokens < -1) __builtin_trap();
        for (int i = 0; i < r.n_stop; i++)
            if (!r.stop[i] || !r.stop[i][0] || strlen(r.stop[i]) > YAN_RQ_MAX_STOP_LEN) __builtin_trap();
        if (kind == YAN_RQ_CHAT) {
            if (r.n_msgs == 0) __builtin_trap();
            for (size_t i = 0; i < r.n_msgs; i++)
                if (!r.msgs[i].role || !r.msgs[i].content) __builtin_trap();
        }
        if (kind == YAN_RQ_COMPLETION || kind == YAN_RQ_EMBED || kind == YAN_RQ_MODERATION || kind == YAN_RQ_TOKENIZE) {
            if (r.n_inputs < 1 || r.n_inputs > YAN_RQ_MAX_INPUTS) __builtin_trap();
            for (int32_t i = 0; i < r.n_inputs; i++) {
                if (r.inputs_are_tokens) {
                    for (int32_t t = 0; t < r.tok_lens[i]; t++)
                        if (r.toks[i][t] < 0) __builtin_trap();
                } else if (strlen(r.texts[i]) != r.text_lens[i]) {
                    __builtin_trap();
                }
            }
        }
    } else {
        if (st != YAN_ERR_INVALID_ARG || (e.status != 400 && e.status != 500) || !e.type || !e.message[0])
            __builtin_trap();
        yan_buf b = {0};
        yan_api_error_json(&e, &b);
        yan_json *root = NULL;
        if (!b.oom && (!b.data || yan_json_parse(b.data, b.len, &a, &root) != YAN_OK)) __builtin_trap();
        yan_buf_free(&b);
    }

    /* the grammar machine never accepts what a strict parser rejects */
    yan_jg g;
    yan_jg_init(&g);
    size_t fed = 0;
    while (fed < len && yan_jg_byte(&g, (uint8_t)body[fed])) {
        fed++;
        if (yan_jg_need(&g) < 0) __builtin_trap();
    }
    if (yan_jg_done(&g)) {
        yan_json *root = NULL;
        if (yan_json_parse(body, fed, &a, &root) != YAN_OK || !yan_json_is(root, YAN_JSON_OBJECT)) __builtin_trap();
        if (yan_jg_need(&g) != 0) __builtin_trap();
    } else if (yan_jg_need(&g) <= 0) {
        __builtin_trap();
    }

    /* SSE: only data lines and the closing blank line */
    yan_buf sse = {0};
    if (yan_sse_event(&sse, body, len)) {
        if (sse.len < 8 || memcmp(sse.data, "data: ", 6) != 0 || sse.data[sse.len - 1] != '\n' ||
            sse.data[sse.len - 2] != '\n')
            __builtin_trap();
        for (size_t i = 0; i + 2 < sse.len; i++)
            if (sse.data[i] == '\n' && memcmp(sse.data + i + 1, "data: ", 6) != 0) __builtin_trap();
        for (size_t i = 0; i < sse.len; i++)
            if (sse.data[i] == '\r') __builtin_trap();
    }
    yan_buf_free(&sse);
    yan_arena_free(&a);
    return 0;
}
