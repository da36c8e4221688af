/* dist.h — data-parallel training across processes: the few collectives the
 * trainer needs. Built with -DYAN_MPI (make MPI=1) these use MPI over
 * MPI_COMM_WORLD; built without it, or run as one process, every call is the
 * identity (rank 0 of 1) and nothing here touches the network.
 *
 * Every rank must make the same collective calls in the same order (the
 * trainer's loop is identical on all ranks). An error on one rank cannot be
 * reported to the others: callers end the whole job with yan_dist_abort.
 * The handle is plain data; MPI itself is process-global, so init/finalize
 * happen once per process. Not thread-safe: call from one thread. */
#ifndef YAN_DIST_H
#define YAN_DIST_H

#include "base/base.h"

typedef struct {
    int rank;     /* 0 .. size - 1 */
    int size;     /* processes in the job (1 without MPI) */
    bool mpi;     /* MPI was initialised by yan_dist_init */
} yan_dist;

/* True when this build has MPI support. */
bool yan_dist_available(void);

/* Start MPI (when built with it; argc/argv may be NULL) and fill *d.
 * Errors: UNSUPPORTED (MPI failed to start). */
yan_status yan_dist_init(int *argc, char ***argv, yan_dist *d);
/* Finish MPI; safe on a handle that never started it. */
void yan_dist_finalize(yan_dist *d);
/* End every process of the job with exit status code (exit(code) alone
 * without MPI). Does not return. */
void yan_dist_abort(const yan_dist *d, int code);

/* In-place element-wise sum over all ranks; every rank gets bit-identical
 * results (reduce at rank 0, then broadcast). n may exceed INT_MAX (sent in chunks). Errors: IO (MPI failed). */
yan_status yan_dist_sum_f32(const yan_dist *d, float *x, size_t n);
yan_status yan_dist_sum_f64(const yan_dist *d, double *x, size_t n);
/* Wait for every rank. */
void yan_dist_barrier(const yan_dist *d);

#endif /* YAN_DIST_H */
