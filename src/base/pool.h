/* pool.h — a persistent thread pool for the forward pass.
 *
 * n threads in all: the caller of yan_pool_run is thread 0 and n - 1 workers
 * live as long as the pool. yan_pool_run(p, fn, ud) runs fn(ud, ith, n) on
 * every thread at once and returns when all have returned; inside fn the
 * threads synchronise phases with yan_pool_barrier (a spinning,
 * sense-reversing barrier: no system call on the hot path). Between runs the
 * workers spin briefly, then sleep on a condition variable, so an idle pool
 * costs no CPU.
 *
 * One thread drives a pool at a time (the context that owns it); fn must not
 * call yan_pool_run recursively. The pool does not allocate during a run.
 * Dependencies: pthreads, C11 atomics. */
#ifndef YAN_POOL_H
#define YAN_POOL_H

#include "base/base.h"

typedef struct yan_pool yan_pool;
typedef void (*yan_pool_fn)(void *ud, int ith, int nth);

/* Create a pool of n_threads (0 = all cores; clamped to [1, 256]). When a
 * worker cannot be started the pool keeps the ones that did (at least the
 * caller): yan_pool_size says how many. Errors: NOMEM. */
yan_status yan_pool_new(int n_threads, yan_pool **out);
/* Stop and join the workers; NULL is a no-op. */
void yan_pool_free(yan_pool *p);
int yan_pool_size(const yan_pool *p);

/* Run fn(ud, ith, nth) on all nth threads (the caller is ith = 0); blocks
 * until every thread has returned. */
void yan_pool_run(yan_pool *p, yan_pool_fn fn, void *ud);

/* Inside fn: wait until all nth threads of the run have reached the barrier.
 * Every thread must call it the same number of times. Memory written before
 * the barrier by any thread is visible after it to all (acquire/release). */
void yan_pool_barrier(yan_pool *p);

#endif /* YAN_POOL_H */
