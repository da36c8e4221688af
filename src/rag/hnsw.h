/* hnsw.h — the knowledge base's vector index: a Hierarchical Navigable Small
 * World graph (Malkov & Yashunin, 2016) over f32 vectors, keyed by the
 * caller's int64 ids.
 *
 * Distances (smaller is nearer): IP 1 - <a, b>; COS 1 - cos(a, b) (vectors
 * and queries are normalised on the way in, so the stored vectors are unit
 * vectors); L2 the squared Euclidean distance.
 *
 * Deletes mark a node: it is never returned again but keeps routing searches
 * through the graph, until yan_hnsw_compact rebuilds the graph from the live
 * vectors (worth it once yan_hnsw_deleted_share passes ~0.25).
 *
 * Saved files (yan_hnsw_save) are written atomically and carry a checksum
 * over every byte; yan_hnsw_load rejects a corrupt, truncated or foreign file
 * with an error naming it, and the caller then rebuilds from its own copy of
 * the vectors. A caller-defined 64-bit stamp travels with the file so the
 * caller can tell a stale index (e.g. the database changed since) from a
 * current one.
 *
 * Memory per vector: the vector (dim padded to 16 floats) and 8M bytes of
 * level-0 links in one cache-aligned block, about 30 bytes of bookkeeping
 * and upper levels; with sq8, also an int8 copy (dim padded to 64, +16).
 * bench/hnsw.sh measures build time, memory and queries/s against hnswlib.
 *
 * Thread-safety: yan_hnsw_search, _count, _contains, _get and _save may run
 * concurrently with each other on one index; everything that modifies the
 * index (add, delete, compact, set_stamp) needs exclusive access.
 * yan_hnsw_add_batch with n_threads > 1 inserts in parallel internally (the
 * graph then depends on thread timing; single-threaded builds are
 * deterministic for a given seed and insertion order). */
#ifndef YAN_HNSW_H
#define YAN_HNSW_H

#include "yan.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct yan_hnsw yan_hnsw;

/* Append-only: the values are stored in saved files. */
typedef enum { YAN_HNSW_IP = 0, YAN_HNSW_L2 = 1, YAN_HNSW_COS = 2 } yan_hnsw_metric;

/* Distance kernel: AUTO picks the best the CPU has; the others force one
 * (tests, benchmarks). Forcing one the CPU lacks is YAN_ERR_UNSUPPORTED. */
typedef enum {
    YAN_HNSW_KERNEL_AUTO = 0,
    YAN_HNSW_KERNEL_SCALAR = 1,
    YAN_HNSW_KERNEL_AVX2 = 2,   /* AVX2 + FMA */
    YAN_HNSW_KERNEL_AVX512 = 3, /* AVX-512F (FMA) */
} yan_hnsw_kernel;

typedef struct {
    int dim;               /* vector length, 1..65536 (required) */
    yan_hnsw_metric metric;
    int M;                 /* links per node on the upper levels (level 0 has 2M); default 16, 2..100 */
    int ef_construction;   /* candidate list size while inserting; default 200 */
    int ef_search;         /* candidate list size of a search that passes ef = 0; default 64 */
    uint64_t seed;         /* level draws; default 100 */
    int64_t capacity;      /* nodes allocated up front (the index grows past it); default 1024 */
    yan_hnsw_kernel kernel;
    bool sq8;              /* also keep an int8 copy of each vector (per-vector scale) and walk
                            * the graph on it, ranking the candidates found with the f32
                            * vectors: faster searches for dim + ~16 more bytes per vector.
                            * Default false. Saved with the index. */
} yan_hnsw_params;

/* Defaults for vectors of length dim (metric IP). */
yan_hnsw_params yan_hnsw_params_default(int dim);

/* Create an empty index. Errors: INVALID_ARG (a parameter out of range),
 * UNSUPPORTED (a forced kernel the CPU lacks), NOMEM. */
yan_status yan_hnsw_create(const yan_hnsw_params *p, yan_hnsw **out);
/* Free the index; NULL is a no-op. */
void yan_hnsw_free(yan_hnsw *h);

/* Insert vec (dim floats, copied) under id. An id that is already present
 * is replaced (the old node is deleted, the new vector inserted).
 * Errors: INVALID_ARG (a non-finite component), NOMEM (the index is
 * unchanged). */
yan_status yan_hnsw_add(yan_hnsw *h, int64_t id, const float *vec);
/* Insert n vectors (row-major, (n, dim)) under ids[0..n) on up to n_threads
 * threads (0 = all cores, 1 = this thread, deterministic; batches under 256
 * vectors always use this thread). All or nothing: on error (INVALID_ARG,
 * NOMEM) none is inserted. */
yan_status yan_hnsw_add_batch(yan_hnsw *h, const int64_t *ids, const float *vecs, int64_t n, int n_threads);

/* Mark id deleted. Errors: NOT_FOUND. */
yan_status yan_hnsw_delete(yan_hnsw *h, int64_t id);
/* Rebuild the graph from the live vectors (same parameters and seed),
 * dropping the deleted nodes. On error (NOMEM) the index is unchanged. */
yan_status yan_hnsw_compact(yan_hnsw *h, int n_threads);

/* The k nearest live vectors to q (dim floats), nearest first: ids[i] and
 * dists[i] (dists may be NULL) for i < *n_found, where *n_found <=
 * min(k, count). ef is the candidate list size (0 = the index's
 * ef_search; raised to k when smaller): larger is slower and more exact.
 * The distances are exact f32 ones (with sq8 too: the int8 codes only
 * steer the walk).
 * Errors: INVALID_ARG, NOMEM (scratch for a new concurrent searcher). */
yan_status yan_hnsw_search(const yan_hnsw *h, const float *q, int k, int ef, int64_t *ids, float *dists,
                           int *n_found);

int64_t yan_hnsw_count(const yan_hnsw *h);     /* live vectors */
int64_t yan_hnsw_n_deleted(const yan_hnsw *h); /* deleted nodes still in the graph */
double yan_hnsw_deleted_share(const yan_hnsw *h);
bool yan_hnsw_contains(const yan_hnsw *h, int64_t id);
/* Copy id's stored vector (normalised for COS) into out[dim]. NOT_FOUND. */
yan_status yan_hnsw_get(const yan_hnsw *h, int64_t id, float *out);
const yan_hnsw_params *yan_hnsw_get_params(const yan_hnsw *h);
/* Bytes held by the index (vectors, graph, id map, search scratch). */
size_t yan_hnsw_memory(const yan_hnsw *h);
/* Name of the distance kernel in use: "avx512", "avx2" or "scalar". */
const char *yan_hnsw_kernel_name(const yan_hnsw *h);

/* Caller-defined 64-bit value saved with the index (0 in a new one). */
void yan_hnsw_set_stamp(yan_hnsw *h, uint64_t stamp);
uint64_t yan_hnsw_stamp(const yan_hnsw *h);

/* Write the index to path atomically (temporary, fsync, rename). Errors: IO,
 * NOMEM; the old file is untouched on failure. */
yan_status yan_hnsw_save(const yan_hnsw *h, const char *path);
/* Read an index saved by yan_hnsw_save. Errors: IO (cannot read), FORMAT
 * (not an index, truncated, checksum mismatch, inconsistent contents),
 * UNSUPPORTED (a newer format version), NOMEM; the message names the file.
 * p_kernel picks the distance kernel (AUTO for the best). */
yan_status yan_hnsw_load(const char *path, yan_hnsw_kernel p_kernel, yan_hnsw **out);

/* One distance with a given kernel over n floats (any n >= 0); NAN when the
 * CPU lacks the kernel. For tests of the SIMD kernels against the scalar one
 * (COS is computed as IP: the index normalises before it measures). */
float yan_hnsw_distance(yan_hnsw_kernel k, yan_hnsw_metric m, const float *a, const float *b, int n);
/* The int8 dot product of the sq8 walk, sum a[i] * b[i] over n values in
 * [-127, 127], with a given kernel (AVX512 means VNNI where the CPU has it);
 * INT32_MIN when the CPU lacks the kernel. For tests. */
int32_t yan_hnsw_dot_i8(yan_hnsw_kernel k, const int8_t *a, const int8_t *b, int n);

#endif /* YAN_HNSW_H */
