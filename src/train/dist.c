/* dist.c — the collectives of dist.h: MPI when compiled with YAN_MPI, the
 * identity otherwise (and for a job of one process, where the MPI calls are
 * skipped so that a one-process MPI run is bit-identical to a plain one). */
#include "train/dist.h"

#include <stdlib.h>

#ifdef YAN_MPI
#include <mpi.h>
#endif

bool yan_dist_available(void) {
#ifdef YAN_MPI
    return true;
#else
    return false;
#endif
}

yan_status yan_dist_init(int *argc, char ***argv, yan_dist *d) {
    *d = (yan_dist){.rank = 0, .size = 1, .mpi = false};
#ifdef YAN_MPI
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init(argc, argv) != MPI_SUCCESS) return yan_fail(YAN_ERR_UNSUPPORTED, "MPI_Init failed");
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    d->mpi = !inited; /* finalize only what we started */
#else
    (void)argc;
    (void)argv;
#endif
    return YAN_OK;
}

void yan_dist_finalize(yan_dist *d) {
#ifdef YAN_MPI
    if (d->mpi) MPI_Finalize();
#endif
    d->mpi = false;
}

void yan_dist_abort(const yan_dist *d, int code) {
#ifdef YAN_MPI
    if (d->size > 1) MPI_Abort(MPI_COMM_WORLD, code);
#else
    (void)d;
#endif
    exit(code);
}

#ifdef YAN_MPI
static yan_status sum_chunks(int rank, void *x, size_t n, size_t elt, MPI_Datatype type) {
    const size_t chunk = (size_t)1 << 28;
    for (size_t i = 0; i < n; i += chunk) {
        size_t m = n - i < chunk ? n - i : chunk;
        void *p = (char *)x + i * elt;
        /* reduce at rank 0, then broadcast: every rank gets the very same bits
         * (MPI_Allreduce does not promise that), so replicas never drift */
        int rc = rank == 0 ? MPI_Reduce(MPI_IN_PLACE, p, (int)m, type, MPI_SUM, 0, MPI_COMM_WORLD)
                           : MPI_Reduce(p, NULL, (int)m, type, MPI_SUM, 0, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS || MPI_Bcast(p, (int)m, type, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
            return yan_fail(YAN_ERR_IO, "MPI reduce/broadcast of %zu values failed", m);
    }
    return YAN_OK;
}
#endif

yan_status yan_dist_sum_f32(const yan_dist *d, float *x, size_t n) {
    if (d->size <= 1) return YAN_OK;
#ifdef YAN_MPI
    return sum_chunks(d->rank, x, n, sizeof *x, MPI_FLOAT);
#else
    (void)x;
    (void)n;
    return YAN_OK;
#endif
}

yan_status yan_dist_sum_f64(const yan_dist *d, double *x, size_t n) {
    if (d->size <= 1) return YAN_OK;
#ifdef YAN_MPI
    return sum_chunks(d->rank, x, n, sizeof *x, MPI_DOUBLE);
#else
    (void)x;
    (void)n;
    return YAN_OK;
#endif
}

void yan_dist_barrier(const yan_dist *d) {
#ifdef YAN_MPI
    if (d->size > 1) MPI_Barrier(MPI_COMM_WORLD);
#else
    (void)d;
#endif
}
