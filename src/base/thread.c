/* thread.c — yan_parallel_for: a fork-join over tasks handed out through an
 * atomic counter. Threads are created per call, which costs tens of
 * microseconds: callers use it for work of milliseconds or more (large
 * tokenizer inputs, corpus counting). The inference engine keeps its own pool. */
#include "base/base.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct {
    void (*fn)(void *ud, int task);
    void *ud;
    int n_tasks;
    _Atomic int next;
} pf_job;

static void *pf_worker(void *arg) {
    pf_job *j = arg;
    for (;;) {
        int t = atomic_fetch_add(&j->next, 1);
        if (t >= j->n_tasks) break;
        j->fn(j->ud, t);
    }
    return NULL;
}

int yan_threads_resolve(int n_threads) {
    if (n_threads <= 0) n_threads = yan_cpu_count();
    if (n_threads > 256) n_threads = 256;
    return n_threads;
}

void yan_parallel_for(int n_threads, int n_tasks, void (*fn)(void *ud, int task), void *ud) {
    if (n_tasks <= 0) return;
    n_threads = yan_threads_resolve(n_threads);
    if (n_threads > n_tasks) n_threads = n_tasks;
    pf_job j = {fn, ud, n_tasks, 0};
    pthread_t th[256];
    int started = 0;
    for (int i = 1; i < n_threads; i++) {
        if (pthread_create(&th[started], NULL, pf_worker, &j) != 0) break;
        started++;
    }
    pf_worker(&j);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
}
