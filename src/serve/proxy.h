/* proxy.h — forwarding requests for models this server does not host to an
 * OpenAI-compatible upstream (--upstream URL, --upstream-key-file FILE), with
 * the upstream's own key; the server's keys, limits, moderation and metrics
 * stay in front.
 *
 * One call = one thread running a libcurl transfer. The response status and
 * content type are available once the upstream's headers have arrived; the
 * body is then read piece by piece as it comes (server-sent events pass
 * through unchanged). The transfer is aborted when the caller frees the call
 * early (client gone). Bounded memory: the transfer waits while more than
 * 1 MiB is unread.
 *
 * The upstream base URL includes its version prefix, as OpenAI clients'
 * base_url does: "http://127.0.0.1:8081/v1" + "/chat/completions". */
#ifndef YAN_SERVE_PROXY_H
#define YAN_SERVE_PROXY_H

#include "base/base.h"

#include <sys/types.h>

typedef struct yan_proxy yan_proxy;
typedef struct yan_upstream_call yan_upstream_call;

/* base_url: http:// or https://; key_file: first non-empty line is the key
 * (may be NULL: no Authorization header). Errors name the file. */
yan_status yan_proxy_new(const char *base_url, const char *key_file, double timeout_s, yan_proxy **out);
void yan_proxy_free(yan_proxy *p);
const char *yan_proxy_url(const yan_proxy *p);

/* Start a request: method "GET" or "POST", path relative to the base URL
 * ("/chat/completions"), body (copied; may be NULL). NULL on OOM. */
yan_upstream_call *yan_upstream_start(yan_proxy *p, const char *method, const char *path, const char *body,
                                      size_t len, const char *request_id);
/* Wait for the response headers until the monotonic deadline. Returns the
 * HTTP status, or -1 with err filled (connection failed, timeout). ctype
 * gets the Content-Type ("" when none). */
int yan_upstream_headers(yan_upstream_call *c, double deadline, char *ctype, size_t ctype_cap, char *err,
                         size_t err_cap);
/* Read body bytes: waits up to ms. Returns > 0 bytes, 0 when nothing came
 * in time, -1 at the end of the body, -2 when the transfer failed. */
ssize_t yan_upstream_read(yan_upstream_call *c, char *buf, size_t max, int ms);
/* Abort the transfer if it is still running, wait for its thread, free. */
void yan_upstream_free(yan_upstream_call *c);

#endif /* YAN_SERVE_PROXY_H */
