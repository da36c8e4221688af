/* sched.h — the continuous-batching scheduler: one engine thread that owns
 * the yan_engine and runs every generation and embedding request.
 *
 * Flow. A connection thread builds a yan_job (prompt tokens, sampling
 * parameters, stop strings, limits) and submits it: it joins the FIFO
 * waiting queue. The engine thread loops:
 *   1. reap: jobs whose client left, timed out or were cancelled by a
 *      shutdown lose their sequences at once (at this step boundary);
 *   2. admit from the head of the queue while the job's choices fit in free
 *      sequences and its worst case (prompt + max_tokens per choice) fits in
 *      the KV blocks not already promised to running sequences: a running
 *      sequence can never run out of cache;
 *   3. build one step: the next token of every decoding sequence first, then
 *      chunks of waiting prompts up to the per-step token budget (chunked
 *      prefill, oldest first), so a long prompt never stalls the streams;
 *      a new sequence first takes the cached blocks of its prompt's longest
 *      known prefix (yan_engine_seq_reuse); the n choices of one prompt
 *      start after the first has prefilled and share its blocks;
 *   4. run the step, then sample each sequence that has logits with its own
 *      seeded sampler (JSON-constrained when asked), decode to UTF-8, hold
 *      back text that may still become a stop string, and publish the new
 *      text, logprobs and finish reasons to the job under the lock;
 *      finished sequences are freed at once.
 * Requests join and leave only between steps; what a sequence generates
 * does not depend on what else is in the step (the engine's guarantee) nor
 * on the other sequences' samplers.
 *
 * Sharing. Jobs are reference counted: the submitting connection holds one
 * reference and the scheduler one while the job is queued or running. The
 * fields marked (shared) are read and written under the scheduler's mutex;
 * (engine) fields belong to the engine thread; the rest is set before
 * submission and read-only afterwards. A connection waits on job->cv.
 *
 * Dependencies: model/engine.h, the sampler and decoder of yan.h, sse.h
 * (stop strings), jsongram.h, metrics.h. */
#ifndef YAN_SERVE_SCHED_H
#define YAN_SERVE_SCHED_H

#include "model/engine.h"
#include "serve/jsongram.h"
#include "serve/metrics.h"
#include "serve/request.h"
#include "serve/sse.h"

#include <pthread.h>

typedef enum { YAN_JOB_GEN = 0, YAN_JOB_EMBED = 1 } yan_job_kind;
typedef enum { YAN_PHASE_QUEUED = 0, YAN_PHASE_RUNNING = 1, YAN_PHASE_DONE = 2 } yan_job_phase;
typedef enum {
    YAN_FIN_NONE = -1,
    YAN_FIN_STOP = 0,
    YAN_FIN_LENGTH = 1,
    YAN_FIN_CONTENT_FILTER = 2,
    YAN_FIN_CANCELLED = 3,
    YAN_FIN_ERROR = 4,
} yan_finish;

/* "stop", "length", "content_filter", ... */
const char *yan_finish_name(yan_finish f);

/* Output filter (streaming moderation), run by the engine thread on each
 * choice's text as it is generated, before any of it reaches the client.
 * open() makes a per-choice state; feed() gets every new piece in order
 * (final = the choice has ended) and returns true when the text must stop:
 * *cut is then the offset (from the start of the choice's text) of the
 * first byte that must never be released. Text after the last word break is
 * held back until the next piece decides it, so a match is caught before
 * its first byte goes out. */
typedef struct {
    void *(*open)(void *ud);
    bool (*feed)(void *ud, void *state, const char *p, size_t n, bool final, uint64_t *cut);
    void (*close)(void *ud, void *state);
    void *ud;
} yan_output_filter;

typedef struct {
    /* (shared) */
    yan_buf text;               /* text released so far */
    yan_token_logprob *lp;      /* (n_lp, logprobs + 1): chosen token first */
    size_t n_lp, cap_lp;
    int32_t n_gen;              /* tokens generated (end-of-generation tokens not counted) */
    yan_finish finish;
    /* (engine) */
    int state;                  /* sched.c */
    int32_t prompt;             /* index into the job's prompts */
    int32_t seq;                /* engine sequence, -1 = none */
    int32_t n_done;             /* prompt tokens in the sequence */
    int32_t n_sched;            /* prompt tokens in the current step */
    int32_t n_cached;           /* prompt tokens reused from the cache */
    int32_t max_tokens;         /* resolved: never past the context */
    yan_token last;             /* sampled, evaluated by the next step */
    yan_sampler *smp;
    yan_decoder *dec;
    yan_stopper stop;
    yan_jg jg;
    yan_buf fresh;              /* text decoded this step, not yet published */
    yan_buf held;               /* text the output filter has not cleared yet */
    uint64_t n_out;             /* bytes of text produced (released + held) */
    void *filter_state;
    yan_token_logprob *fresh_lp;
    size_t n_fresh_lp;
    double t_last;              /* time of the last token (per-token latency) */
} yan_choice;

typedef struct yan_job yan_job;
struct yan_job {
    yan_job_kind kind;
    /* inputs (owned; read-only once submitted) */
    yan_token **prompts;        /* (n_prompts) token arrays: prompts, or embedding inputs */
    int32_t *n_prompt;
    int32_t n_prompts;
    int32_t n_per_prompt;       /* choices per prompt (OpenAI n) */
    int32_t n_choices;          /* n_prompts * n_per_prompt */
    yan_sampler_params sp;      /* seed = that of choice 0 of a prompt; choice i uses seed + i */
    int32_t max_tokens;         /* -1 = until the context is full */
    char **stop;
    int n_stop;
    int32_t logprobs;           /* -1 = off, else alternatives per token */
    bool json_mode;
    bool ignore_eos;            /* generate past end-of-generation tokens */
    double t_arrival;           /* monotonic seconds */
    float *emb;                 /* embeddings: (n_prompts, n_embd) results */
    int32_t n_emb_done;         /* (engine) inputs embedded so far */
    const yan_output_filter *filter; /* output moderation (may be NULL) */
    /* (shared) */
    yan_job_phase phase;
    int cancel;                 /* 0, or 1 + yan_cancel */
    bool failed;
    yan_api_error err;          /* when failed */
    double t_first;             /* first token (0 = none yet) */
    yan_choice *ch;             /* (n_choices) */
    pthread_cond_t cv;
    int refs;
    yan_job *next;              /* queue link */
};

/* A job with room for n_prompts inputs and n_per_prompt choices each; the
 * caller fills prompts[i] (yan_malloc'ed, owned by the job) and the rest.
 * One reference (the caller's). NULL on OOM. */
yan_job *yan_job_new(yan_job_kind kind, int32_t n_prompts, int32_t n_per_prompt);
/* Set the stop strings (copied). */
bool yan_job_set_stop(yan_job *j, const char *const *stop, int n);

typedef struct {
    int32_t queue_max;          /* waiting jobs before new ones are refused (503) */
    yan_metrics *metrics;       /* may be NULL */
    const char *chat_eog_extra; /* unused; reserved */
} yan_sched_params;

typedef struct yan_sched yan_sched;

/* Start the engine thread. The scheduler borrows e and m (they must outlive
 * it). Errors: NOMEM, or the thread could not start. */
yan_status yan_sched_new(yan_engine *e, const yan_sched_params *p, yan_sched **out);
/* Cancel everything, stop and join the engine thread, free. NULL: no-op. */
void yan_sched_free(yan_sched *s);

/* Submit a job (takes a reference). Refused with err filled (503) while
 * shutting down or when the queue is full; 400 when the job can never fit
 * (more choices than sequences, or more KV blocks than the pool has). */
yan_status yan_sched_submit(yan_sched *s, yan_job *j, yan_api_error *err);
/* Drop the caller's reference; a job that has not finished is cancelled
 * first (why = YAN_CANCEL_CLIENT ...). */
void yan_sched_release(yan_sched *s, yan_job *j, yan_cancel why);

/* The scheduler's mutex, for reading (shared) fields and waiting. */
void yan_sched_lock(yan_sched *s);
void yan_sched_unlock(yan_sched *s);
/* With the lock held: wait on j->cv for at most ms milliseconds. */
void yan_sched_wait(yan_sched *s, yan_job *j, int ms);
/* With the lock held: cancel a job (it ends at the next step boundary; a
 * queued job leaves the queue). No-op when already done or cancelled. */
void yan_sched_cancel_locked(yan_sched *s, yan_job *j, yan_cancel why);

/* Shutdown, step 1: refuse new jobs and fail the queued ones (503). */
void yan_sched_drain(yan_sched *s);
/* Wait until nothing runs or the absolute monotonic deadline passes;
 * returns true when idle. */
bool yan_sched_wait_idle(yan_sched *s, double deadline);
/* Cancel every running job (shutdown). */
void yan_sched_cancel_all(yan_sched *s);
bool yan_sched_draining(yan_sched *s);

/* Gauges for /metrics (a consistent snapshot under the lock). */
void yan_sched_gauges(yan_sched *s, yan_gauges *g);

/* Monotonic clock, seconds. */
double yan_now(void);

#endif /* YAN_SERVE_SCHED_H */
