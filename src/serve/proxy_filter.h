/* proxy_filter.h — output moderation of an upstream's answers (the proxy,
 * proxy.h) on their way to the client: a pure rewriter, bytes in and bytes
 * out, with the same rule as the local output filter (sched.h): a choice's
 * text stops right before the first byte a rule matches and the choice ends
 * with finish_reason "content_filter".
 *
 * Two forms, for the answers of /v1/chat/completions (chat: the text is
 * choices[].message.content, in streams choices[].delta.content) and of
 * /v1/completions (choices[].text):
 *  - JSON: the whole body is read (up to json_max bytes; a longer one goes
 *    through unmoderated, reported as YAN_PF_OVERSIZE), each choice's text
 *    is moderated whole, and a body with a cut choice is re-serialised
 *    (cut choices also lose the logprobs of their cut tokens). Bodies that
 *    do not parse, or have nothing to cut, go out byte for byte.
 *  - SSE: events are parsed as they come (they end at a blank line; "data:"
 *    lines carry JSON chunks; comments, "[DONE]" and chunks that do not
 *    parse pass unchanged). Per choice index, the delta text joins a held
 *    buffer fed to a yan_moderate_stream and only the text up to the last
 *    word break goes out (yan_filter_release, sse.h), so no byte of a match
 *    is ever sent; a chunk with the choice's finish_reason releases the
 *    rest. When the moderator flags, the chunk carries the text up to the
 *    match and finish_reason "content_filter" (its logprobs become null),
 *    and the choice's later deltas are dropped; the other choices go on.
 *    A chunk left with nothing to say (no text, no finish_reason, no other
 *    delta field, no usage) is not sent. Held text still there at "[DONE]"
 *    or at the end of the body goes out (moderated) in a chunk of its own.
 *    Known limit, as in the local path: logprobs ride with their chunk, so
 *    those of text still held go out before the text does.
 *
 * Not thread-safe: one filter per proxied request, used by its connection's
 * thread. Dependencies: the safety module (yan_moderator), cJSON, sse.h. */
#ifndef YAN_SERVE_PROXY_FILTER_H
#define YAN_SERVE_PROXY_FILTER_H

#include "base/base.h"

#define YAN_PF_JSON_MAX ((size_t)64 << 20) /* default json_max: 64 MiB */

typedef struct yan_pfilter yan_pfilter;

typedef enum {
    YAN_PF_FLAGGED = 0,  /* a choice was cut (res: the moderator's verdict) */
    YAN_PF_OVERSIZE = 1, /* a body (or an SSE event) over json_max went through unmoderated */
} yan_pf_event;

/* Called as things happen (from feed or finish); choice is the choice's
 * index (-1 for OVERSIZE), res is NULL for OVERSIZE. */
typedef void (*yan_pf_fn)(void *ud, yan_pf_event ev, int64_t choice, const yan_moderation *res);

typedef struct {
    bool chat;          /* chat completions (else text completions) */
    bool sse;           /* an event stream (else one JSON body) */
    size_t json_max;    /* bytes of a JSON body or of one SSE event; 0 = YAN_PF_JSON_MAX */
    yan_pf_fn fn;       /* may be NULL */
    void *ud;
} yan_pfilter_params;

yan_pfilter_params yan_pfilter_params_default(void);

/* A filter over the moderator m (borrowed: it must outlive the filter).
 * Errors: NOMEM. */
yan_status yan_pfilter_new(const yan_moderator *m, const yan_pfilter_params *p, yan_pfilter **out);
/* NULL: no-op. */
void yan_pfilter_free(yan_pfilter *f);

/* Upstream bytes p[0..n) in (split anywhere); what may go to the client is
 * appended to out. Errors: NOMEM (the filter must not be used further). */
yan_status yan_pfilter_feed(yan_pfilter *f, const char *p, size_t n, yan_buf *out);
/* End of the upstream body: the rest is appended to out (the whole body of
 * a JSON answer; a truncated last event of a stream goes out as it came,
 * after the held text). */
yan_status yan_pfilter_finish(yan_pfilter *f, yan_buf *out);

/* One-shot form for a JSON body: moderate each choice's text; when one is
 * cut, out gets the rewritten body and the result is true, else out is left
 * alone and the body is to go as it is. Errors (false, *st set): NOMEM. */
bool yan_pfilter_json(const yan_moderator *m, bool chat, const char *body, size_t len, yan_buf *out,
                      yan_pf_fn fn, void *ud, yan_status *st);

#endif /* YAN_SERVE_PROXY_FILTER_H */
