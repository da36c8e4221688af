/* fuzz_proxy_filter.c — libFuzzer harness for the output moderation of
 * proxied answers (src/serve/proxy_filter.c), which parses whatever an
 * upstream server sends. The first byte picks chat or completions and SSE
 * or JSON, the second the size of the pieces the body is fed in; the rest
 * is the body. Any body goes through without a crash, leak or read out of
 * bounds, and a JSON body also goes through the one-shot form. */
#include "serve/proxy_filter.h"
#include "yan.h"

#include <stdlib.h>

static yan_moderator *g_mod;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    if (!g_mod) {
        yan_moderator_params mp = yan_moderator_params_default();
        if (yan_moderator_new(&mp, &g_mod)) abort();
    }
    yan_pfilter_params p = yan_pfilter_params_default();
    p.chat = data[0] & 1;
    p.sse = data[0] & 2;
    p.json_max = data[0] & 4 ? 256 : 0; /* small: the oversize path too */
    size_t piece = (size_t)data[1] + 1;
    const char *body = (const char *)data + 2;
    size_t len = size - 2;
    yan_pfilter *f = NULL;
    if (yan_pfilter_new(g_mod, &p, &f)) abort();
    yan_buf out = {0};
    bool ok = true;
    for (size_t off = 0; ok && off < len; off += piece)
        ok = yan_pfilter_feed(f, body + off, len - off < piece ? len - off : piece, &out) == YAN_OK;
    if (ok) (void)yan_pfilter_finish(f, &out);
    yan_pfilter_free(f);
    yan_buf_free(&out);
    if (!p.sse) {
        yan_status st = YAN_OK;
        (void)yan_pfilter_json(g_mod, p.chat, body, len, &out, NULL, NULL, &st);
        yan_buf_free(&out);
    }
    return 0;
}
