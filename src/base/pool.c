/* pool.c — the persistent thread pool of pool.h: a job generation counter
 * that workers spin on (then sleep on a condvar), a completion counter the
 * caller spins on, and a sense-reversing barrier. */
#include "base/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

/* Pauses a worker spins for a new job before sleeping (roughly 0.1-1 ms),
 * and pauses a barrier spins before yielding the core (helps when the
 * machine is oversubscribed). */
#define IDLE_SPINS 20000
#define YIELD_SPINS 2000

struct yan_pool {
    int n;
    int n_started;           /* workers created (n - 1 unless creation failed) */
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    yan_pool_fn fn;          /* current job (written before gen is bumped) */
    void *ud;
    _Atomic unsigned gen;    /* job generation; bumped to start a run */
    _Atomic int n_sleeping;
    _Atomic int n_done;      /* workers finished with the current run */
    _Atomic bool quit;
    /* padding keeps the barrier words on their own cache lines (the struct
     * comes from yan_calloc, so _Alignas cannot be relied on) */
    char pad0[64];
    _Atomic int bar_count;
    char pad1[64];
    _Atomic unsigned bar_phase;
    char pad2[64];
};

typedef struct {
    yan_pool *p;
    int ith;
} worker_arg;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void wait_for_job(yan_pool *p, unsigned seen) {
    for (int i = 0; i < IDLE_SPINS; i++) {
        if (atomic_load_explicit(&p->gen, memory_order_acquire) != seen) return;
        cpu_relax();
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->n_sleeping, 1);
    while (atomic_load(&p->gen) == seen) pthread_cond_wait(&p->cv, &p->mu);
    atomic_fetch_sub(&p->n_sleeping, 1);
    pthread_mutex_unlock(&p->mu);
}

static void *worker_main(void *arg) {
    yan_pool *p = ((worker_arg *)arg)->p;
    int ith = ((worker_arg *)arg)->ith;
    yan_free(arg);
    unsigned seen = 0;
    for (;;) {
        wait_for_job(p, seen);
        seen = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (atomic_load(&p->quit)) break;
        p->fn(p->ud, ith, p->n);
        atomic_fetch_add_explicit(&p->n_done, 1, memory_order_acq_rel);
    }
    return NULL;
}

yan_status yan_pool_new(int n_threads, yan_pool **out) {
    *out = NULL;
    int n = yan_threads_resolve(n_threads);
    yan_pool *p = yan_calloc(1, sizeof *p);
    if (!p) return yan_fail(YAN_ERR_NOMEM, "out of memory creating a thread pool");
    p->n = n;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        yan_free(p);
        return yan_fail(YAN_ERR_NOMEM, "cannot create a mutex for the thread pool");
    }
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        yan_free(p);
        return yan_fail(YAN_ERR_NOMEM, "cannot create a condition variable for the thread pool");
    }
    if (n > 1) {
        p->th = yan_calloc((size_t)(n - 1), sizeof *p->th);
        if (!p->th) {
            yan_pool_free(p);
            return yan_fail(YAN_ERR_NOMEM, "out of memory creating a thread pool");
        }
    }
    for (int i = 1; i < n; i++) {
        worker_arg *a = yan_malloc(sizeof *a);
        if (!a) break;
        a->p = p;
        a->ith = i;
        if (pthread_create(&p->th[p->n_started], NULL, worker_main, a) != 0) {
            yan_free(a);
            break;
        }
        p->n_started++;
    }
    p->n = p->n_started + 1;  /* ids 1..n_started are the workers */
    *out = p;
    return YAN_OK;
}

void yan_pool_free(yan_pool *p) {
    if (!p) return;
    if (p->n_started) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->quit, true);
        atomic_fetch_add(&p->gen, 1);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < p->n_started; i++) pthread_join(p->th[i], NULL);
    }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    yan_free(p->th);
    yan_free(p);
}

int yan_pool_size(const yan_pool *p) { return p->n; }

void yan_pool_run(yan_pool *p, yan_pool_fn fn, void *ud) {
    if (p->n == 1) {
        fn(ud, 0, 1);
        return;
    }
    p->fn = fn;
    p->ud = ud;
    atomic_store_explicit(&p->n_done, 0, memory_order_relaxed);
    /* seq_cst bump, then a seq_cst read of n_sleeping: a worker either sees
     * the new generation before sleeping or is counted and woken here. */
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->n_sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    fn(ud, 0, p->n);
    for (int i = 0; atomic_load_explicit(&p->n_done, memory_order_acquire) != p->n - 1; i++) {
        if (i < YIELD_SPINS) cpu_relax();
        else sched_yield();
    }
}

void yan_pool_barrier(yan_pool *p) {
    if (p->n == 1) return;
    unsigned phase = atomic_load_explicit(&p->bar_phase, memory_order_acquire);
    if (atomic_fetch_add_explicit(&p->bar_count, 1, memory_order_acq_rel) == p->n - 1) {
        atomic_store_explicit(&p->bar_count, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&p->bar_phase, 1, memory_order_release);
        return;
    }
    for (int i = 0; atomic_load_explicit(&p->bar_phase, memory_order_acquire) == phase; i++) {
        if (i < YIELD_SPINS) cpu_relax();
        else sched_yield();
    }
}
