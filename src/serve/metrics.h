/* metrics.h — the server's counters and histograms, rendered in the
 * Prometheus text exposition format (version 0.0.4) at GET /metrics.
 *
 * Counters: requests by endpoint and HTTP status, prompt and completion
 * tokens, cancelled requests (client gone, timeout, shutdown), rejected
 * requests by reason (queue, rate limit, moderation). Histograms:
 * time-to-first-token, time per output token (between two tokens of one
 * sequence), request duration. Gauges (queue depth, running requests, KV
 * blocks) are read from the scheduler when rendering and passed in.
 *
 * One mutex; every call is thread-safe. No allocation after creation except
 * in render (the output buffer). */
#ifndef YAN_SERVE_METRICS_H
#define YAN_SERVE_METRICS_H

#include "base/base.h"

#include <pthread.h>

typedef enum {
    YAN_EP_CHAT, YAN_EP_COMPLETIONS, YAN_EP_EMBEDDINGS, YAN_EP_MODELS, YAN_EP_MODERATIONS, YAN_EP_TOKENIZE,
    YAN_EP_DETOKENIZE, YAN_EP_HEALTH, YAN_EP_METRICS, YAN_EP_WEB, YAN_EP_OTHER, YAN_EP_KB_SEARCH,
    YAN_EP_KB_DOCUMENTS, YAN_EP_COUNT
} yan_endpoint;

/* Route label of an endpoint ("/v1/chat/completions", ...). */
const char *yan_endpoint_name(yan_endpoint ep);

#define YAN_HIST_MAX 16
typedef struct {
    int n;                         /* finite bucket bounds */
    double le[YAN_HIST_MAX];       /* upper bounds, seconds */
    uint64_t count[YAN_HIST_MAX + 1]; /* per bucket (last = +Inf), not cumulative */
    double sum;
    uint64_t total;
} yan_hist;

typedef enum { YAN_REJ_QUEUE, YAN_REJ_RATE, YAN_REJ_MODERATION, YAN_REJ_INJECTION, YAN_REJ_COUNT } yan_reject;
typedef enum { YAN_CANCEL_CLIENT, YAN_CANCEL_TIMEOUT, YAN_CANCEL_SHUTDOWN, YAN_CANCEL_COUNT } yan_cancel;

typedef struct {
    pthread_mutex_t mu;
    uint64_t requests[YAN_EP_COUNT][600]; /* by HTTP status (100..599) */
    uint64_t prompt_tokens, completion_tokens, cached_tokens;
    uint64_t rejected[YAN_REJ_COUNT];
    uint64_t cancelled[YAN_CANCEL_COUNT];
    uint64_t flagged_input, flagged_output, injections;
    yan_hist ttft, tpot, duration;
    double started;                /* wall-clock start time */
} yan_metrics;

/* Gauges the scheduler knows. */
typedef struct {
    int64_t queue_depth, running, seqs_used, seqs_max;
    int64_t kv_blocks_used, kv_blocks_total, kv_blocks_cached;
    uint64_t steps, step_tokens;
} yan_gauges;

void yan_metrics_init(yan_metrics *m);
void yan_metrics_free(yan_metrics *m);
void yan_metrics_request(yan_metrics *m, yan_endpoint ep, int status, double seconds);
void yan_metrics_tokens(yan_metrics *m, uint64_t prompt, uint64_t completion, uint64_t cached);
void yan_metrics_ttft(yan_metrics *m, double seconds);
void yan_metrics_tpot(yan_metrics *m, double seconds);
void yan_metrics_reject(yan_metrics *m, yan_reject why);
void yan_metrics_cancel(yan_metrics *m, yan_cancel why);
void yan_metrics_safety(yan_metrics *m, int flagged_input, int flagged_output, int injections);
/* Append the exposition text. */
bool yan_metrics_render(yan_metrics *m, const yan_gauges *g, yan_buf *out);

/* Histogram helpers (exposed for tests). */
void yan_hist_init(yan_hist *h, const double *le, int n);
void yan_hist_add(yan_hist *h, double v);

#endif /* YAN_SERVE_METRICS_H */
