/* metrics.c — counters, histograms and their Prometheus text rendering (see
 * metrics.h). Metric names follow Prometheus conventions: a yan_ prefix,
 * base units (seconds), _total for counters. */
#include "serve/metrics.h"

#include <time.h>

static const char *const EP_NAMES[YAN_EP_COUNT] = {
    "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models", "/v1/moderations",
    "/tokenize", "/detokenize", "/health", "/metrics", "/", "other", "/v1/kb/search", "/v1/kb/documents",
};

const char *yan_endpoint_name(yan_endpoint ep) { return (unsigned)ep < YAN_EP_COUNT ? EP_NAMES[ep] : "other"; }

void yan_hist_init(yan_hist *h, const double *le, int n) {
    memset(h, 0, sizeof *h);
    h->n = n < YAN_HIST_MAX ? n : YAN_HIST_MAX;
    for (int i = 0; i < h->n; i++) h->le[i] = le[i];
}

void yan_hist_add(yan_hist *h, double v) {
    int i = 0;
    while (i < h->n && v > h->le[i]) i++;
    h->count[i]++;
    h->sum += v;
    h->total++;
}

void yan_metrics_init(yan_metrics *m) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    static const double ttft[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
    static const double tpot[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
    static const double dur[] = {0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
    yan_hist_init(&m->ttft, ttft, (int)(sizeof ttft / sizeof ttft[0]));
    yan_hist_init(&m->tpot, tpot, (int)(sizeof tpot / sizeof tpot[0]));
    yan_hist_init(&m->duration, dur, (int)(sizeof dur / sizeof dur[0]));
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    m->started = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void yan_metrics_free(yan_metrics *m) {
    if (m) pthread_mutex_destroy(&m->mu);
}

void yan_metrics_request(yan_metrics *m, yan_endpoint ep, int status, double seconds) {
    if ((unsigned)ep >= YAN_EP_COUNT) ep = YAN_EP_OTHER;
    if (status < 100 || status > 599) status = 500;
    pthread_mutex_lock(&m->mu);
    m->requests[ep][status]++;
    if (ep == YAN_EP_CHAT || ep == YAN_EP_COMPLETIONS || ep == YAN_EP_EMBEDDINGS) yan_hist_add(&m->duration, seconds);
    pthread_mutex_unlock(&m->mu);
}

void yan_metrics_tokens(yan_metrics *m, uint64_t prompt, uint64_t completion, uint64_t cached) {
    pthread_mutex_lock(&m->mu);
    m->prompt_tokens += prompt;
    m->completion_tokens += completion;
    m->cached_tokens += cached;
    pthread_mutex_unlock(&m->mu);
}

void yan_metrics_ttft(yan_metrics *m, double s) {
    pthread_mutex_lock(&m->mu);
    yan_hist_add(&m->ttft, s);
    pthread_mutex_unlock(&m->mu);
}

void yan_metrics_tpot(yan_metrics *m, double s) {
    pthread_mutex_lock(&m->mu);
    yan_hist_add(&m->tpot, s);
    pthread_mutex_unlock(&m->mu);
}

void yan_metrics_reject(yan_metrics *m, yan_reject why) {
    if ((unsigned)why >= YAN_REJ_COUNT) return;
    pthread_mutex_lock(&m->mu);
    m->rejected[why]++;
    pthread_mutex_unlock(&m->mu);
}

void yan_metrics_cancel(yan_metrics *m, yan_cancel why) {
    if ((unsigned)why >= YAN_CANCEL_COUNT) return;
    pthread_mutex_lock(&m->mu);
    m->cancelled[why]++;
    pthread_mutex_unlock(&m->mu);
}

void yan_metrics_safety(yan_metrics *m, int in, int out, int inj) {
    pthread_mutex_lock(&m->mu);
    m->flagged_input += (uint64_t)in;
    m->flagged_output += (uint64_t)out;
    m->injections += (uint64_t)inj;
    pthread_mutex_unlock(&m->mu);
}

static void head(yan_buf *b, const char *name, const char *type, const char *help) {
    yan_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void hist(yan_buf *b, const char *name, const char *help, const yan_hist *h) {
    head(b, name, "histogram", help);
    uint64_t cum = 0;
    for (int i = 0; i < h->n; i++) {
        cum += h->count[i];
        yan_buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, h->le[i], (unsigned long long)cum);
    }
    cum += h->count[h->n];
    yan_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name, (unsigned long long)cum, name,
                   h->sum, name, (unsigned long long)h->total);
}

bool yan_metrics_render(yan_metrics *m, const yan_gauges *g, yan_buf *b) {
    pthread_mutex_lock(&m->mu);
    head(b, "yan_requests_total", "counter", "HTTP requests by endpoint and status.");
    for (int e = 0; e < YAN_EP_COUNT; e++)
        for (int s = 100; s < 600; s++)
            if (m->requests[e][s])
                yan_buf_printf(b, "yan_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n", EP_NAMES[e], s,
                               (unsigned long long)m->requests[e][s]);
    head(b, "yan_prompt_tokens_total", "counter", "Prompt tokens of finished requests.");
    yan_buf_printf(b, "yan_prompt_tokens_total %llu\n", (unsigned long long)m->prompt_tokens);
    head(b, "yan_prompt_tokens_cached_total", "counter", "Prompt tokens taken from the KV cache (prefix reuse).");
    yan_buf_printf(b, "yan_prompt_tokens_cached_total %llu\n", (unsigned long long)m->cached_tokens);
    head(b, "yan_completion_tokens_total", "counter", "Generated tokens.");
    yan_buf_printf(b, "yan_completion_tokens_total %llu\n", (unsigned long long)m->completion_tokens);
    static const char *const rej[YAN_REJ_COUNT] = {"queue", "rate_limit", "moderation", "prompt_injection"};
    head(b, "yan_requests_rejected_total", "counter", "Requests refused before running, by reason.");
    for (int i = 0; i < YAN_REJ_COUNT; i++)
        yan_buf_printf(b, "yan_requests_rejected_total{reason=\"%s\"} %llu\n", rej[i], (unsigned long long)m->rejected[i]);
    static const char *const can[YAN_CANCEL_COUNT] = {"client_disconnect", "timeout", "shutdown"};
    head(b, "yan_requests_cancelled_total", "counter", "Requests stopped before they finished, by reason.");
    for (int i = 0; i < YAN_CANCEL_COUNT; i++)
        yan_buf_printf(b, "yan_requests_cancelled_total{reason=\"%s\"} %llu\n", can[i],
                       (unsigned long long)m->cancelled[i]);
    head(b, "yan_moderation_flagged_total", "counter", "Texts the moderation rules flagged.");
    yan_buf_printf(b, "yan_moderation_flagged_total{direction=\"input\"} %llu\n", (unsigned long long)m->flagged_input);
    yan_buf_printf(b, "yan_moderation_flagged_total{direction=\"output\"} %llu\n", (unsigned long long)m->flagged_output);
    head(b, "yan_prompt_injection_total", "counter", "User messages the prompt-injection screen flagged.");
    yan_buf_printf(b, "yan_prompt_injection_total %llu\n", (unsigned long long)m->injections);
    hist(b, "yan_time_to_first_token_seconds", "Time from a request's arrival to its first generated token.", &m->ttft);
    hist(b, "yan_time_per_output_token_seconds", "Time between two generated tokens of one sequence.", &m->tpot);
    hist(b, "yan_request_duration_seconds", "Duration of generation and embedding requests.", &m->duration);
    pthread_mutex_unlock(&m->mu);
    if (g) {
        head(b, "yan_queue_depth", "gauge", "Requests waiting to be admitted.");
        yan_buf_printf(b, "yan_queue_depth %lld\n", (long long)g->queue_depth);
        head(b, "yan_running_requests", "gauge", "Requests being generated.");
        yan_buf_printf(b, "yan_running_requests %lld\n", (long long)g->running);
        head(b, "yan_sequences_used", "gauge", "Engine sequences in use (of yan_sequences_max).");
        yan_buf_printf(b, "yan_sequences_used %lld\n", (long long)g->seqs_used);
        head(b, "yan_sequences_max", "gauge", "Engine sequences (--parallel).");
        yan_buf_printf(b, "yan_sequences_max %lld\n", (long long)g->seqs_max);
        head(b, "yan_kv_blocks_used", "gauge", "KV cache blocks held by live sequences.");
        yan_buf_printf(b, "yan_kv_blocks_used %lld\n", (long long)g->kv_blocks_used);
        head(b, "yan_kv_blocks_total", "gauge", "KV cache blocks in the pool.");
        yan_buf_printf(b, "yan_kv_blocks_total %lld\n", (long long)g->kv_blocks_total);
        head(b, "yan_kv_blocks_cached", "gauge", "Free KV blocks still indexed for prefix reuse.");
        yan_buf_printf(b, "yan_kv_blocks_cached %lld\n", (long long)g->kv_blocks_cached);
        head(b, "yan_engine_steps_total", "counter", "Batched engine steps.");
        yan_buf_printf(b, "yan_engine_steps_total %llu\n", (unsigned long long)g->steps);
        head(b, "yan_engine_step_tokens_total", "counter", "Tokens evaluated by engine steps (prefill + decode).");
        yan_buf_printf(b, "yan_engine_step_tokens_total %llu\n", (unsigned long long)g->step_tokens);
    }
    return !b->oom;
}
