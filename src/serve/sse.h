/* sse.h — text on its way to a client: the Server-Sent Events encoder, the
 * stop-string filter that holds back text which could still become a stop
 * string, and a UTF-8 sanitiser for text that must go into JSON.
 *
 * SSE framing (WHATWG HTML, "server-sent events"): an event is one or more
 * "data: <line>" lines and a blank line; a payload containing a newline is
 * split into several data lines (the client joins them with '\n'); comment
 * lines start with ':' and keep a connection alive.
 *
 * All functions append to a yan_buf and report allocation failure through its
 * sticky oom flag (or a false return). No globals; thread-safe for distinct
 * buffers. */
#ifndef YAN_SERVE_SSE_H
#define YAN_SERVE_SSE_H

#include "base/base.h"

/* Append one event whose data is p[0..n) ("data: ...\n\n"; CR, LF and CRLF
 * in the payload start new data lines). */
bool yan_sse_event(yan_buf *out, const char *p, size_t n);
/* Append a comment line (": text\n\n"), e.g. a keep-alive. */
bool yan_sse_comment(yan_buf *out, const char *text);
/* Append the OpenAI end-of-stream event "data: [DONE]\n\n". */
bool yan_sse_done(yan_buf *out);

/* Append p[0..n) with every invalid or truncated UTF-8 sequence (and every
 * NUL byte) replaced by U+FFFD, so the text can go into JSON. */
bool yan_utf8_sanitize(yan_buf *out, const char *p, size_t n);
/* True when p[0..n) is valid UTF-8. */
bool yan_utf8_valid(const char *p, size_t n);

/* Stop-string filter: text goes in piece by piece; what comes out is the
 * text before the first occurrence of any stop string, released as soon as
 * no suffix of it could still begin a stop string. */
typedef struct {
    const char *const *stop; /* borrowed; empty strings are ignored */
    int n_stop;
    yan_buf pending;         /* text held back */
    bool stopped;            /* a stop string was found: nothing more comes out */
} yan_stopper;

void yan_stopper_init(yan_stopper *s, const char *const *stop, int n_stop);
void yan_stopper_free(yan_stopper *s);
/* Push text; append what may be released to out. Returns false on OOM.
 * Sets s->stopped when a stop string appears (the text from it on is dropped). */
bool yan_stopper_push(yan_stopper *s, const char *p, size_t n, yan_buf *out);
/* End of generation: release everything still held (unless stopped). */
bool yan_stopper_flush(yan_stopper *s, yan_buf *out);

/* Length of the longest proper prefix of a stop string that ends s[0..n). */
size_t yan_stop_holdback(const char *const *stop, int n_stop, const char *s, size_t n);
/* Earliest position of a stop string in s[0..n), or n when there is none. */
size_t yan_stop_find(const char *const *stop, int n_stop, const char *s, size_t n);

/* Output moderation's hold-back rule (the scheduler's output filter and the
 * proxy's, proxy_filter.h): how much of the held text p[0..n) may go out
 * before the moderator has seen what follows: up to the last word break
 * (whitespace or ASCII punctuation); a run of more than 64 bytes without one
 * (CJK text) keeps only its last 16 bytes, cut at a character boundary. */
size_t yan_filter_release(const char *p, size_t n);

#endif /* YAN_SERVE_SSE_H */
