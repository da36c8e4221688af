/* sched.c — the engine thread: queue, admission, batched steps, sampling and
 * publishing (contract and flow in sched.h).
 *
 * Locking: one mutex (s->mu) guards the queue, the running list, every job's
 * (shared) fields and the gauges. The engine thread holds it while it reaps,
 * admits and publishes, and releases it for the step and the sampling, which
 * touch only (engine) fields. Connection threads take it briefly to read new
 * text or to cancel. */
#include "serve/sched.h"

#include <errno.h>
#include <math.h>
#include <time.h>

/* choice states (engine) */
enum { CH_NEW, CH_SHARE, CH_PREFILL, CH_DECODE, CH_DONE };

#define MAX_RUNNING 256

struct yan_sched {
    yan_engine *e;
    const yan_model *m;
    const yan_tokenizer *tok;
    yan_sched_params p;
    int32_t n_vocab, n_ctx, n_batch, n_seq_max, n_embd;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* the engine thread waits here for work */
    pthread_cond_t cv_idle;     /* shutdown waits here for the running list to empty */
    bool stop, draining;
    yan_job *q_head, *q_tail;   /* waiting jobs (FIFO) */
    int32_t q_len;
    yan_job *running[MAX_RUNNING];
    int32_t n_running;
    int32_t seqs_used;
    yan_gauges gauges;
    /* engine-thread scratch */
    yan_engine_tok *toks;       /* (n_batch) */
    yan_choice **row_ch;        /* (n_batch) the choice whose logits a token carries */
    yan_job **row_job;
    float *masked;              /* (V) logits after the JSON mask */
    yan_jg_vocab jgv;
    bool jgv_ready;
    yan_token_logprob *top;     /* (YAN_RQ_MAX_TOP_LOGPROBS + 1) */
    char piece[256];
};

double yan_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *yan_finish_name(yan_finish f) {
    switch (f) {
    case YAN_FIN_STOP: return "stop";
    case YAN_FIN_LENGTH: return "length";
    case YAN_FIN_CONTENT_FILTER: return "content_filter";
    case YAN_FIN_CANCELLED: return "cancelled";
    case YAN_FIN_ERROR: return "error";
    default: return "null";
    }
}

/* ------------------------------------------------------------------ jobs */

yan_job *yan_job_new(yan_job_kind kind, int32_t n_prompts, int32_t n_per_prompt) {
    if (n_prompts <= 0 || n_per_prompt <= 0) return NULL;
    yan_job *j = yan_calloc(1, sizeof *j);
    if (!j) return NULL;
    j->kind = kind;
    j->n_prompts = n_prompts;
    j->n_per_prompt = n_per_prompt;
    j->n_choices = kind == YAN_JOB_GEN ? n_prompts * n_per_prompt : 0;
    j->prompts = yan_calloc((size_t)n_prompts, sizeof *j->prompts);
    j->n_prompt = yan_calloc((size_t)n_prompts, sizeof *j->n_prompt);
    j->ch = j->n_choices ? yan_calloc((size_t)j->n_choices, sizeof *j->ch) : NULL;
    j->sp = yan_sampler_params_default();
    j->max_tokens = -1;
    j->logprobs = -1;
    j->refs = 1;
    if (!j->prompts || !j->n_prompt || (j->n_choices && !j->ch)) {
        yan_free(j->prompts);
        yan_free(j->n_prompt);
        yan_free(j->ch);
        yan_free(j);
        return NULL;
    }
    for (int32_t i = 0; i < j->n_choices; i++) {
        j->ch[i].finish = YAN_FIN_NONE;
        j->ch[i].seq = -1;
        j->ch[i].prompt = i / n_per_prompt;
    }
    pthread_cond_init(&j->cv, NULL);
    return j;
}

bool yan_job_set_stop(yan_job *j, const char *const *stop, int n) {
    if (n <= 0) return true;
    j->stop = yan_calloc((size_t)n, sizeof *j->stop);
    if (!j->stop) return false;
    for (int i = 0; i < n; i++)
        if (!(j->stop[i] = yan_strdup(stop[i]))) return false;
    j->n_stop = n;
    return true;
}

/* Engine-private resources of a choice (sampler, decoder, buffers, filter). */
static void choice_release(const yan_job *j, yan_choice *c) {
    if (c->filter_state && j->filter && j->filter->close) j->filter->close(j->filter->ud, c->filter_state);
    c->filter_state = NULL;
    yan_sampler_free(c->smp);
    c->smp = NULL;
    yan_decoder_free(c->dec);
    c->dec = NULL;
    yan_stopper_free(&c->stop);
    yan_buf_free(&c->fresh);
    yan_buf_free(&c->held);
    yan_free(c->fresh_lp);
    c->fresh_lp = NULL;
    c->n_fresh_lp = 0;
}

static void job_free(yan_job *j) {
    for (int32_t i = 0; i < j->n_prompts; i++) yan_free(j->prompts[i]);
    yan_free(j->prompts);
    yan_free(j->n_prompt);
    for (int32_t i = 0; i < j->n_choices; i++) {
        choice_release(j, &j->ch[i]);
        yan_buf_free(&j->ch[i].text);
        yan_free(j->ch[i].lp);
    }
    yan_free(j->ch);
    for (int i = 0; i < j->n_stop; i++) yan_free(j->stop[i]);
    yan_free(j->stop);
    yan_free(j->emb);
    pthread_cond_destroy(&j->cv);
    yan_free(j);
}

/* With s->mu held. */
static void unref(yan_job *j) {
    if (--j->refs == 0) job_free(j);
}

/* ------------------------------------------------------------- life cycle */

static void *engine_main(void *arg);

yan_status yan_sched_new(yan_engine *e, const yan_sched_params *p, yan_sched **out) {
    *out = NULL;
    yan_sched *s = yan_calloc(1, sizeof *s);
    if (!s) return yan_fail(YAN_ERR_NOMEM, "scheduler: out of memory");
    s->e = e;
    s->m = yan_engine_model(e);
    s->tok = yan_model_tokenizer(s->m);
    if (p) s->p = *p;
    if (s->p.queue_max <= 0) s->p.queue_max = 64;
    s->n_vocab = yan_model_n_vocab(s->m);
    s->n_ctx = yan_engine_n_ctx(e);
    s->n_batch = yan_engine_n_batch(e);
    s->n_seq_max = yan_engine_n_seq_max(e);
    s->n_embd = yan_model_n_embd(s->m);
    if (s->n_seq_max > MAX_RUNNING) s->n_seq_max = MAX_RUNNING;
    s->toks = yan_malloc((size_t)s->n_batch * sizeof *s->toks);
    s->row_ch = yan_malloc((size_t)s->n_batch * sizeof *s->row_ch);
    s->row_job = yan_malloc((size_t)s->n_batch * sizeof *s->row_job);
    s->masked = yan_malloc((size_t)s->n_vocab * sizeof *s->masked);
    s->top = yan_malloc((YAN_RQ_MAX_TOP_LOGPROBS + 1) * sizeof *s->top);
    if (!s->toks || !s->row_ch || !s->row_job || !s->masked || !s->top) {
        yan_sched_free(s);
        return yan_fail(YAN_ERR_NOMEM, "scheduler: out of memory");
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_cond_init(&s->cv_idle, NULL);
    s->gauges.seqs_max = s->n_seq_max;
    s->gauges.kv_blocks_total = yan_engine_blocks_total(e);
    if (pthread_create(&s->thread, NULL, engine_main, s) != 0) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        pthread_cond_destroy(&s->cv_idle);
        yan_free(s->toks);
        yan_free(s->row_ch);
        yan_free(s->row_job);
        yan_free(s->masked);
        yan_free(s->top);
        yan_free(s);
        return yan_fail(YAN_ERR_IO, "scheduler: cannot start the engine thread");
    }
    s->started = true;
    *out = s;
    return YAN_OK;
}

void yan_sched_free(yan_sched *s) {
    if (!s) return;
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        s->draining = true;
        for (yan_job *j = s->q_head; j; j = j->next)
            if (!j->cancel) j->cancel = 1 + YAN_CANCEL_SHUTDOWN;
        for (int32_t i = 0; i < s->n_running; i++)
            if (!s->running[i]->cancel) s->running[i]->cancel = 1 + YAN_CANCEL_SHUTDOWN;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        pthread_cond_destroy(&s->cv_idle);
    }
    yan_jg_vocab_free(&s->jgv);
    yan_free(s->toks);
    yan_free(s->row_ch);
    yan_free(s->row_job);
    yan_free(s->masked);
    yan_free(s->top);
    yan_free(s);
}

void yan_sched_lock(yan_sched *s) { pthread_mutex_lock(&s->mu); }
void yan_sched_unlock(yan_sched *s) { pthread_mutex_unlock(&s->mu); }

void yan_sched_wait(yan_sched *s, yan_job *j, int ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_cond_timedwait(&j->cv, &s->mu, &ts);
}

/* ------------------------------------------------------------ submission */

static int64_t blocks_for(int32_t positions) { return (positions + YAN_KV_BLOCK - 1) / YAN_KV_BLOCK; }

/* Positions a choice may come to hold: its prompt and max_tokens. */
static int32_t final_len(const yan_job *j, const yan_choice *c) { return j->n_prompt[c->prompt] + c->max_tokens; }

/* Blocks a job may need at worst: every choice grown to its prompt plus
 * max_tokens in blocks of its own (shared prefix blocks are counted once per
 * choice, which only overestimates; sequences only take whole cached blocks
 * and are never truncated, so no copy of a shared block is ever needed). */
static int64_t job_blocks(const yan_job *j) {
    if (j->kind == YAN_JOB_EMBED) {
        int32_t mx = 0;
        for (int32_t i = 0; i < j->n_prompts; i++) mx = j->n_prompt[i] > mx ? j->n_prompt[i] : mx;
        return blocks_for(mx);
    }
    int64_t b = 0;
    for (int32_t i = 0; i < j->n_choices; i++) b += blocks_for(final_len(j, &j->ch[i]));
    return b;
}

yan_status yan_sched_submit(yan_sched *s, yan_job *j, yan_api_error *err) {
    if (j->kind == YAN_JOB_GEN) {
        if (j->n_choices > s->n_seq_max)
            return yan_api_error_set(err, 400, "invalid_request_error", NULL, "n",
                                     "the request asks for %d sequences at once; this server runs at most %d "
                                     "(--parallel)", (int)j->n_choices, (int)s->n_seq_max);
        for (int32_t i = 0; i < j->n_choices; i++) {
            yan_choice *c = &j->ch[i];
            int32_t np = j->n_prompt[c->prompt];
            c->max_tokens = j->max_tokens > 0 ? j->max_tokens : s->n_ctx - np;
            if (np <= 0 || np + c->max_tokens > s->n_ctx)
                return yan_api_error_set(err, 400, "exceed_context_size_error", "context_length_exceeded", "messages",
                                         "the prompt (%d tokens) and max_tokens (%d) do not fit the context of %d "
                                         "tokens", (int)np, (int)c->max_tokens, (int)s->n_ctx);
        }
    } else {
        for (int32_t i = 0; i < j->n_prompts; i++)
            if (j->n_prompt[i] <= 0 || j->n_prompt[i] > s->n_ctx)
                return yan_api_error_set(err, 400, "exceed_context_size_error", "context_length_exceeded", "input",
                                         "input %d has %d tokens; the context holds %d", (int)i, (int)j->n_prompt[i],
                                         (int)s->n_ctx);
    }
    if (job_blocks(j) > yan_engine_blocks_total(s->e))
        return yan_api_error_set(err, 400, "exceed_context_size_error", "context_length_exceeded", NULL,
                                 "the request needs up to %lld KV cache blocks; the server has %lld (--kv-blocks); "
                                 "lower max_tokens or n", (long long)job_blocks(j),
                                 (long long)yan_engine_blocks_total(s->e));
    if (j->json_mode && !s->jgv_ready) {
        /* built once, on the connection thread, before the engine can use it */
        pthread_mutex_lock(&s->mu);
        if (!s->jgv_ready) {
            const yan_model *m = s->m;
            yan_status st = yan_jg_vocab_init(&s->jgv, s->tok, m->eog, m->n_eog);
            if (st) {
                pthread_mutex_unlock(&s->mu);
                return yan_api_error_set(err, 500, "server_error", NULL, NULL, "%s", yan_last_error());
            }
            s->jgv_ready = true;
        }
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_lock(&s->mu);
    if (s->draining) {
        pthread_mutex_unlock(&s->mu);
        return yan_api_error_set(err, 503, "server_error", "server_shutting_down", NULL, "the server is shutting down");
    }
    if (s->q_len >= s->p.queue_max) {
        pthread_mutex_unlock(&s->mu);
        if (s->p.metrics) yan_metrics_reject(s->p.metrics, YAN_REJ_QUEUE);
        return yan_api_error_set(err, 503, "server_error", "server_overloaded", NULL,
                                 "the server is busy: %d requests are waiting (--queue-max); retry later",
                                 (int)s->q_len);
    }
    j->refs++;
    j->phase = YAN_PHASE_QUEUED;
    j->next = NULL;
    if (s->q_tail) s->q_tail->next = j;
    else s->q_head = j;
    s->q_tail = j;
    s->q_len++;
    s->gauges.queue_depth = s->q_len;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return YAN_OK;
}

void yan_sched_cancel_locked(yan_sched *s, yan_job *j, yan_cancel why) {
    if (j->phase == YAN_PHASE_DONE || j->cancel) return;
    j->cancel = 1 + (int)why;
    pthread_cond_signal(&s->cv);
}

void yan_sched_release(yan_sched *s, yan_job *j, yan_cancel why) {
    if (!j) return;
    pthread_mutex_lock(&s->mu);
    if (j->phase != YAN_PHASE_DONE && j->refs > 1) {
        if (!j->cancel && s->p.metrics) yan_metrics_cancel(s->p.metrics, why);
        yan_sched_cancel_locked(s, j, why);
    }
    unref(j);
    pthread_mutex_unlock(&s->mu);
}

void yan_sched_drain(yan_sched *s) {
    pthread_mutex_lock(&s->mu);
    s->draining = true;
    for (yan_job *j = s->q_head; j; j = j->next)
        if (!j->cancel) j->cancel = 1 + YAN_CANCEL_SHUTDOWN;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

bool yan_sched_draining(yan_sched *s) {
    pthread_mutex_lock(&s->mu);
    bool d = s->draining;
    pthread_mutex_unlock(&s->mu);
    return d;
}

bool yan_sched_wait_idle(yan_sched *s, double deadline) {
    pthread_mutex_lock(&s->mu);
    while (s->n_running > 0 || s->q_len > 0) {
        double left = deadline - yan_now();
        if (left <= 0) break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double w = left < 0.2 ? left : 0.2;
        ts.tv_nsec += (long)(w * 1e9);
        while (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&s->cv_idle, &s->mu, &ts);
    }
    bool idle = s->n_running == 0 && s->q_len == 0;
    pthread_mutex_unlock(&s->mu);
    return idle;
}

void yan_sched_cancel_all(yan_sched *s) {
    pthread_mutex_lock(&s->mu);
    for (yan_job *j = s->q_head; j; j = j->next)
        if (!j->cancel) j->cancel = 1 + YAN_CANCEL_SHUTDOWN;
    for (int32_t i = 0; i < s->n_running; i++)
        if (!s->running[i]->cancel) {
            s->running[i]->cancel = 1 + YAN_CANCEL_SHUTDOWN;
            if (s->p.metrics) yan_metrics_cancel(s->p.metrics, YAN_CANCEL_SHUTDOWN);
        }
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void yan_sched_gauges(yan_sched *s, yan_gauges *g) {
    pthread_mutex_lock(&s->mu);
    *g = s->gauges;
    g->queue_depth = s->q_len;
    g->running = s->n_running;
    g->seqs_used = s->seqs_used;
    pthread_mutex_unlock(&s->mu);
}

/* ---------------------------------------------------- engine thread: jobs */

/* With s->mu held: the job is over; free its sequences and tell its waiter. */
static void job_finish(yan_sched *s, yan_job *j, yan_finish why) {
    uint64_t prompt = 0, gen = 0, cached = 0;
    for (int32_t i = 0; i < j->n_prompts; i++) prompt += (uint64_t)j->n_prompt[i];
    for (int32_t i = 0; i < j->n_choices; i++) {
        yan_choice *c = &j->ch[i];
        if (c->seq >= 0) {
            yan_engine_seq_free(s->e, c->seq);
            c->seq = -1;
        }
        if (j->phase == YAN_PHASE_RUNNING && c->state != CH_DONE) s->seqs_used--; /* its slot, held since admission */
        if (c->finish == YAN_FIN_NONE) c->finish = why;
        c->state = CH_DONE;
        gen += (uint64_t)c->n_gen;
        if (i % j->n_per_prompt == 0) cached += (uint64_t)c->n_cached;
        choice_release(j, c);
    }
    if (s->p.metrics && j->kind == YAN_JOB_GEN) yan_metrics_tokens(s->p.metrics, prompt, gen, cached);
    if (s->p.metrics && j->kind == YAN_JOB_EMBED && !j->failed) yan_metrics_tokens(s->p.metrics, prompt, 0, 0);
    j->phase = YAN_PHASE_DONE;
    pthread_cond_broadcast(&j->cv);
}

static void running_remove(yan_sched *s, int32_t i) {
    yan_job *j = s->running[i];
    memmove(&s->running[i], &s->running[i + 1], (size_t)(s->n_running - i - 1) * sizeof s->running[0]);
    s->n_running--;
    unref(j);
    if (s->n_running == 0) pthread_cond_broadcast(&s->cv_idle);
}

static void job_fail(yan_job *j, int status, const char *type, const char *fmt, const char *detail) {
    j->failed = true;
    yan_api_error_set(&j->err, status, type, NULL, NULL, fmt, detail);
}

/* With s->mu held: drop cancelled jobs from the queue and the running list. */
static void reap(yan_sched *s) {
    yan_job **pp = &s->q_head, *prev = NULL;
    while (*pp) {
        yan_job *j = *pp;
        if (j->cancel) {
            *pp = j->next;
            if (s->q_tail == j) s->q_tail = prev;
            s->q_len--;
            if (j->cancel == 1 + YAN_CANCEL_SHUTDOWN)
                yan_api_error_set(&j->err, 503, "server_error", "server_shutting_down", NULL,
                                  "the server is shutting down");
            j->failed = j->cancel == 1 + YAN_CANCEL_SHUTDOWN;
            job_finish(s, j, YAN_FIN_CANCELLED);
            unref(j);
            continue;
        }
        prev = j;
        pp = &j->next;
    }
    for (int32_t i = 0; i < s->n_running;) {
        yan_job *j = s->running[i];
        if (j->cancel) {
            if (j->cancel == 1 + YAN_CANCEL_SHUTDOWN && !j->failed) { /* its waiter answers 503 */
                j->failed = true;
                yan_api_error_set(&j->err, 503, "server_error", "server_shutting_down", NULL,
                                  "the server is shutting down; the request was cancelled");
            }
            job_finish(s, j, YAN_FIN_CANCELLED);
            running_remove(s, i);
        } else {
            i++;
        }
    }
    s->gauges.queue_depth = s->q_len;
}

/* With s->mu held: the engine's numbers for /metrics. */
static void update_gauges(yan_sched *s) {
    s->gauges.kv_blocks_total = yan_engine_blocks_total(s->e);
    s->gauges.kv_blocks_cached = yan_engine_blocks_cached(s->e);
    s->gauges.kv_blocks_used = s->gauges.kv_blocks_total - yan_engine_blocks_free(s->e);
    s->gauges.queue_depth = s->q_len;
}

/* With s->mu held: KV blocks promised to running choices. */
static int64_t reserved_blocks(yan_sched *s) {
    int64_t r = 0;
    for (int32_t i = 0; i < s->n_running; i++) {
        yan_job *j = s->running[i];
        if (j->kind != YAN_JOB_GEN) continue;
        for (int32_t k = 0; k < j->n_choices; k++) {
            yan_choice *c = &j->ch[k];
            if (c->state == CH_DONE) continue;
            if (c->seq >= 0) {
                int64_t nb = yan_engine_blocks_needed(s->e, c->seq, final_len(j, c));
                r += nb > 0 ? nb : 0;
            } else {
                r += blocks_for(final_len(j, c));
            }
        }
    }
    return r;
}

/* With s->mu held: move jobs from the queue head to the running list while
 * they fit. Embedding jobs run one at a time, when nothing else is queued
 * ahead of them. */
static void admit(yan_sched *s) {
    while (s->q_head && s->n_running < MAX_RUNNING) {
        yan_job *j = s->q_head;
        int64_t free_blocks = yan_engine_blocks_free(s->e) - reserved_blocks(s);
        if (j->kind == YAN_JOB_GEN && s->seqs_used + j->n_choices > s->n_seq_max) break;
        if (job_blocks(j) > free_blocks) break;
        s->q_head = j->next;
        if (!s->q_head) s->q_tail = NULL;
        s->q_len--;
        j->next = NULL;
        j->phase = YAN_PHASE_RUNNING;
        for (int32_t i = 0; i < j->n_choices; i++) j->ch[i].state = i % j->n_per_prompt == 0 ? CH_NEW : CH_SHARE;
        s->running[s->n_running++] = j;
        if (j->kind == YAN_JOB_GEN) s->seqs_used += j->n_choices; /* counted from admission */
        pthread_cond_broadcast(&j->cv);
    }
    s->gauges.queue_depth = s->q_len;
}

/* -------------------------------------------------- engine thread: choices */

/* Sampler and decoder for a choice; false on OOM. */
static bool choice_setup(yan_sched *s, yan_job *j, int32_t i) {
    yan_choice *c = &j->ch[i];
    yan_sampler_params sp = j->sp;
    sp.seed = j->sp.seed + (uint64_t)(i % j->n_per_prompt);
    if (yan_sampler_new(&sp, s->n_vocab, &c->smp)) return false;
    if (yan_decoder_new(s->tok, &c->dec)) return false;
    yan_stopper_init(&c->stop, (const char *const *)j->stop, j->n_stop);
    yan_jg_init(&c->jg);
    return true;
}

/* Start the sequence of a choice: a new engine sequence holding the cached
 * blocks of its prompt's longest known prefix. */
static bool choice_start(yan_sched *s, yan_job *j, int32_t i) {
    yan_choice *c = &j->ch[i];
    if (!choice_setup(s, j, i)) return false;
    if (yan_engine_seq_new(s->e, &c->seq)) {
        c->seq = -1;
        return false;
    }
    c->n_cached = yan_engine_seq_reuse(s->e, c->seq, j->prompts[c->prompt], j->n_prompt[c->prompt]);
    c->n_done = c->n_cached;
    c->state = CH_PREFILL;
    return true;
}

/* Decode token bytes of a sampled token into c->fresh through the stopper. */
static bool choice_text(yan_sched *s, yan_choice *c, yan_token tok) {
    char buf[256];
    int64_t n = tok >= 0 ? yan_decoder_push(c->dec, tok, buf, sizeof buf) : yan_decoder_flush(c->dec, buf, sizeof buf);
    if (n < 0 && n != INT64_MIN) { /* a very long piece */
        char *big = yan_malloc((size_t)-n);
        if (!big) return false;
        int64_t m = tok >= 0 ? yan_decoder_push(c->dec, tok, big, (size_t)-n)
                             : yan_decoder_flush(c->dec, big, (size_t)-n);
        bool ok = m >= 0 && yan_stopper_push(&c->stop, big, (size_t)m, &c->fresh);
        yan_free(big);
        return ok;
    }
    if (n == INT64_MIN) return false;
    (void)s;
    return yan_stopper_push(&c->stop, buf, (size_t)n, &c->fresh);
}

/* End of a choice's text: flush the decoder and the stopper. */
static void choice_flush(yan_sched *s, yan_choice *c) {
    if (!c->stop.stopped) choice_text(s, c, -1);
    yan_stopper_flush(&c->stop, &c->fresh);
}

/* Sample the next token of a choice from the logits of the last step; sets
 * c->finish when it ends. Engine thread, lock not held. */
static void choice_sample(yan_sched *s, yan_job *j, yan_choice *c, const float *logits, double now) {
    const yan_model *m = s->m;
    if (j->json_mode) {
        memcpy(s->masked, logits, (size_t)s->n_vocab * sizeof *logits);
        int32_t left = c->max_tokens - c->n_gen;
        if (yan_jg_mask(&c->jg, &s->jgv, s->masked, left) == 0) {
            choice_flush(s, c);
            c->finish = YAN_FIN_LENGTH;
            return;
        }
        logits = s->masked;
    }
    const int n_top = j->logprobs >= 0 ? j->logprobs + 1 : 0;
    yan_token tok = yan_sampler_sample(c->smp, logits, n_top ? s->top : NULL, n_top);
    if (c->n_gen > 0 && c->t_last > 0 && s->p.metrics) yan_metrics_tpot(s->p.metrics, now - c->t_last);
    c->t_last = now;
    if (!j->json_mode && !j->ignore_eos && yan_model_is_eog(m, tok)) {
        choice_flush(s, c);
        c->finish = YAN_FIN_STOP;
        return;
    }
    c->n_gen++;
    if (n_top) {
        yan_token_logprob *nl = yan_realloc(c->fresh_lp, (c->n_fresh_lp + 1) * (size_t)n_top * sizeof *nl);
        if (nl) {
            c->fresh_lp = nl;
            memcpy(nl + c->n_fresh_lp * (size_t)n_top, s->top, (size_t)n_top * sizeof *nl);
            c->n_fresh_lp++;
        }
    }
    if (j->json_mode) {
        int64_t pn = yan_token_to_piece(s->tok, tok, s->piece, sizeof s->piece);
        if (pn > 0) (void)yan_jg_feed(&c->jg, s->piece, (size_t)pn); /* valid: the mask allowed it */
    }
    if (!choice_text(s, c, tok)) {
        c->finish = YAN_FIN_ERROR;
        return;
    }
    if (c->stop.stopped) {
        c->finish = YAN_FIN_STOP;
        return;
    }
    if (j->json_mode && yan_jg_done(&c->jg)) {
        choice_flush(s, c);
        c->finish = YAN_FIN_STOP;
        return;
    }
    if (c->n_gen >= c->max_tokens || yan_engine_seq_len(s->e, c->seq) >= s->n_ctx) {
        choice_flush(s, c);
        c->finish = YAN_FIN_LENGTH;
        return;
    }
    c->last = tok;
    c->state = CH_DECODE;
}

/* Engine thread, lock not held: run the output filter over the fresh text
 * and move what it clears from c->held to c->fresh (the text to publish). */
static void choice_filter(yan_sched *s, yan_job *j, yan_choice *c) {
    const yan_output_filter *f = j->filter;
    const bool final = c->finish != YAN_FIN_NONE;
    if (!f) return;
    uint64_t released = c->n_out - c->held.len; /* offset of held[0] in the choice's text */
    if (c->fresh.len) {
        yan_buf_append(&c->held, c->fresh.data, c->fresh.len);
        c->n_out += c->fresh.len;
    }
    if (!c->filter_state && f->open) c->filter_state = f->open(f->ud);
    uint64_t cut = 0;
    bool flagged = c->filter_state && f->feed(f->ud, c->filter_state, c->fresh.data ? c->fresh.data : "",
                                               c->fresh.len, final, &cut);
    c->fresh.len = 0;
    size_t go;
    if (flagged) {
        go = cut > released ? (size_t)(cut - released) : 0;
        if (go > c->held.len) go = c->held.len;
        c->finish = YAN_FIN_CONTENT_FILTER;
        if (s->p.metrics) yan_metrics_safety(s->p.metrics, 0, 1, 0);
    } else {
        go = final ? c->held.len : yan_filter_release(c->held.data, c->held.len);
    }
    yan_buf_append(&c->fresh, c->held.data, go);
    if (flagged) c->held.len = 0;
    else {
        memmove(c->held.data, c->held.data + go, c->held.len - go);
        c->held.len -= go;
    }
}

/* With s->mu held: publish what the choice produced this step. */
static void choice_publish(yan_sched *s, yan_job *j, yan_choice *c) {
    (void)s;
    if (c->fresh.len) {
        yan_utf8_sanitize(&c->text, c->fresh.data, c->fresh.len);
        c->fresh.len = 0;
    }
    if (c->n_fresh_lp) {
        size_t k = (size_t)j->logprobs + 1;
        if (c->n_lp + c->n_fresh_lp > c->cap_lp) {
            size_t cap = (c->n_lp + c->n_fresh_lp) * 2;
            yan_token_logprob *nl = yan_realloc(c->lp, cap * k * sizeof *nl);
            if (nl) c->lp = nl, c->cap_lp = cap;
        }
        if (c->n_lp + c->n_fresh_lp <= c->cap_lp) {
            memcpy(c->lp + c->n_lp * k, c->fresh_lp, c->n_fresh_lp * k * sizeof *c->lp);
            c->n_lp += c->n_fresh_lp;
        }
        c->n_fresh_lp = 0;
    }
}

/* ------------------------------------------------------ engine thread: run */

/* Embedding job, lock not held: inputs are embedded until about one step's
 * worth of tokens (n_batch) is done, so that running streams are not held
 * up by a long list of inputs; the rest waits for the next loop. */
static void run_embed(yan_sched *s, yan_job *j) {
    size_t C = (size_t)s->n_embd;
    if (!j->emb) j->emb = yan_malloc((size_t)j->n_prompts * C * sizeof *j->emb);
    if (!j->emb) {
        job_fail(j, 500, "server_error", "%s", "out of memory for the embeddings");
        return;
    }
    int32_t tokens = 0;
    while (j->n_emb_done < j->n_prompts && (tokens == 0 || tokens < s->n_batch)) {
        int32_t i = j->n_emb_done;
        yan_status st = yan_engine_embed(s->e, j->prompts[i], j->n_prompt[i], j->emb + (size_t)i * C);
        if (st) {
            job_fail(j, st == YAN_ERR_CONTEXT_FULL || st == YAN_ERR_INVALID_ARG ? 400 : 503,
                     st == YAN_ERR_CONTEXT_FULL ? "exceed_context_size_error"
                     : st == YAN_ERR_INVALID_ARG ? "invalid_request_error" : "server_error",
                     "embedding failed: %s", yan_last_error());
            return;
        }
        tokens += j->n_prompt[i];
        j->n_emb_done++;
    }
}

/* Build one step from the running jobs (lock not held; the running list
 * only changes under the lock, on this thread). Returns the token count. */
static int32_t build_step(yan_sched *s, yan_job **jobs, int32_t n_jobs) {
    int32_t n = 0;
    /* decode tokens first: every running stream advances each step */
    for (int32_t a = 0; a < n_jobs; a++) {
        yan_job *j = jobs[a];
        for (int32_t i = 0; i < j->n_choices && n < s->n_batch; i++) {
            yan_choice *c = &j->ch[i];
            if (c->state != CH_DECODE || c->finish != YAN_FIN_NONE) continue;
            s->toks[n] = (yan_engine_tok){c->seq, c->last, true};
            s->row_ch[n] = c;
            s->row_job[n] = j;
            n++;
        }
    }
    /* then prompt chunks, oldest job first */
    for (int32_t a = 0; a < n_jobs && n < s->n_batch; a++) {
        yan_job *j = jobs[a];
        for (int32_t i = 0; i < j->n_choices && n < s->n_batch; i++) {
            yan_choice *c = &j->ch[i];
            c->n_sched = 0;
            if (c->finish != YAN_FIN_NONE) continue;
            if (c->state == CH_NEW) {
                if (!choice_start(s, j, i)) {
                    c->finish = YAN_FIN_ERROR;
                    job_fail(j, 503, "server_error", "%s", "cannot start a sequence (out of memory)");
                    continue;
                }
            } else if (c->state == CH_SHARE) {
                /* wait for the first choice of this prompt to prefill: its
                 * blocks then serve this one */
                const yan_choice *lead = &j->ch[i - i % j->n_per_prompt];
                if (lead->state == CH_PREFILL || lead->state == CH_NEW) continue;
                if (!choice_start(s, j, i)) {
                    c->finish = YAN_FIN_ERROR;
                    job_fail(j, 503, "server_error", "%s", "cannot start a sequence (out of memory)");
                    continue;
                }
            }
            if (c->state != CH_PREFILL) continue;
            const yan_token *p = j->prompts[c->prompt];
            const int32_t np = j->n_prompt[c->prompt];
            int32_t take = np - c->n_done;
            if (take > s->n_batch - n) take = s->n_batch - n;
            for (int32_t t = 0; t < take; t++) {
                int32_t pos = c->n_done + t;
                s->toks[n] = (yan_engine_tok){c->seq, p[pos], pos == np - 1};
                s->row_ch[n] = c;
                s->row_job[n] = j;
                n++;
            }
            c->n_sched = take;
        }
    }
    return n;
}

static void *engine_main(void *arg) {
    yan_sched *s = arg;
    yan_job *jobs[MAX_RUNNING];
    pthread_mutex_lock(&s->mu);
    for (;;) {
        reap(s);
        update_gauges(s);
        if (s->stop && s->n_running == 0 && s->q_len == 0) break;
        admit(s);
        if (s->n_running == 0) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        int32_t n_jobs = s->n_running;
        memcpy(jobs, s->running, (size_t)n_jobs * sizeof *jobs);
        for (int32_t a = 0; a < n_jobs; a++) jobs[a]->refs++; /* held across the unlocked part */
        pthread_mutex_unlock(&s->mu);

        /* embeddings: one job at a time, between steps */
        for (int32_t a = 0; a < n_jobs; a++)
            if (jobs[a]->kind == YAN_JOB_EMBED && jobs[a]->n_emb_done < jobs[a]->n_prompts && !jobs[a]->failed)
                run_embed(s, jobs[a]);

        int32_t n = build_step(s, jobs, n_jobs);
        yan_status st = YAN_OK;
        double now = yan_now();
        if (n > 0) {
            st = yan_engine_step(s->e, s->toks, n);
            now = yan_now();
            if (st) {
                const char *why = yan_last_error();
                for (int32_t r = 0; r < n; r++) {
                    yan_job *j = s->row_job[r];
                    if (!j->failed)
                        job_fail(j, st == YAN_ERR_NOMEM ? 503 : 500, "server_error", "the engine step failed: %s", why);
                    s->row_ch[r]->finish = YAN_FIN_ERROR;
                }
            } else {
                for (int32_t r = 0; r < n; r++) {
                    yan_choice *c = s->row_ch[r];
                    yan_job *j = s->row_job[r];
                    if (c->state == CH_PREFILL) {
                        if (!s->toks[r].logits) continue;
                        /* the last prompt token of this choice */
                        c->n_done += c->n_sched;
                        c->n_sched = 0;
                    } else if (c->state != CH_DECODE) {
                        continue;
                    }
                    const float *lg = yan_engine_logits(s->e, r);
                    if (lg) choice_sample(s, j, c, lg, now);
                }
                /* prompt chunks that did not reach their last token */
                for (int32_t r = 0; r < n; r++) {
                    yan_choice *c = s->row_ch[r];
                    if (c->state == CH_PREFILL && c->n_sched) {
                        c->n_done += c->n_sched;
                        c->n_sched = 0;
                    }
                }
            }
        }

        /* output moderation over what this step produced */
        for (int32_t a = 0; a < n_jobs; a++)
            for (int32_t i = 0; i < jobs[a]->n_choices; i++) {
                yan_choice *c = &jobs[a]->ch[i];
                if (c->state != CH_DONE && (c->fresh.len || c->finish != YAN_FIN_NONE)) choice_filter(s, jobs[a], c);
            }

        pthread_mutex_lock(&s->mu);
        s->gauges.steps += n > 0;
        s->gauges.step_tokens += (uint64_t)n;
        for (int32_t a = 0; a < n_jobs; a++) {
            yan_job *j = jobs[a];
            bool all_done = true, any_token = false;
            for (int32_t i = 0; i < j->n_choices; i++) {
                yan_choice *c = &j->ch[i];
                if (c->state == CH_DONE) continue;
                choice_publish(s, j, c);
                if (c->n_gen > 0 || c->finish != YAN_FIN_NONE) any_token = true;
                if (c->finish != YAN_FIN_NONE) {
                    if (c->seq >= 0) {
                        yan_engine_seq_free(s->e, c->seq);
                        c->seq = -1;
                    }
                    s->seqs_used--;
                    c->state = CH_DONE;
                    choice_release(j, c);
                } else {
                    all_done = false;
                }
            }
            if (j->kind == YAN_JOB_GEN && any_token && !j->t_first) {
                j->t_first = now;
                if (s->p.metrics) yan_metrics_ttft(s->p.metrics, now - j->t_arrival);
            }
            if (j->kind == YAN_JOB_EMBED) all_done = j->n_emb_done == j->n_prompts || j->failed;
            if (j->failed) all_done = true;
            if (all_done && j->phase != YAN_PHASE_DONE) {
                job_finish(s, j, j->failed ? YAN_FIN_ERROR : YAN_FIN_STOP);
                for (int32_t i = 0; i < s->n_running; i++)
                    if (s->running[i] == j) {
                        running_remove(s, i);
                        break;
                    }
            } else if (j->phase != YAN_PHASE_DONE) {
                pthread_cond_broadcast(&j->cv);
            }
        }
        update_gauges(s);
        for (int32_t a = 0; a < n_jobs; a++) unref(jobs[a]);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}
