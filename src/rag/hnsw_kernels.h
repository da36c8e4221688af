/* hnsw_kernels.h — the distance kernels of the HNSW index (hnsw_kernels.c),
 * as the index (hnsw.c) calls them: through function pointers chosen once
 * per index. Private to src/rag; the public contract is hnsw.h. Also the
 * platform macros both files use. */
#ifndef YAN_RAG_HNSW_KERNELS_H
#define YAN_RAG_HNSW_KERNELS_H

#include "rag/hnsw.h"

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HNSW_X86 1
#define PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)
#define CPU_PAUSE() _mm_pause()
#else
#define HNSW_X86 0
#define PREFETCH(p) __builtin_prefetch(p)
#define CPU_PAUSE() ((void)0)
#endif

#define INLINE static inline __attribute__((always_inline))

/* An f32 distance over n floats: 1 - dot for inner product (and cosine,
 * whose vectors the index normalizes), the squared distance for L2. The
 * four-at-a-time form measures b[0..3] against one query q into out[0..3].
 * Inside the index n is a multiple of 16. */
typedef float (*dist_fn)(const float *a, const float *b, size_t n);
typedef void (*dist4_fn)(const float *q, const float *const *b, size_t n, float *out);

/* The exact integer dot product of an int8 query qc (with its unsigned
 * form qu = qc + 128) and an int8 code x of n bytes, xsum the sum of x;
 * the four-at-a-time form measures x[0..3] into out[0..3]. Inside the index
 * n is a multiple of 64. */
typedef int32_t (*q8dot_fn)(const int8_t *qc, const uint8_t *qu, const int8_t *x, size_t n, int32_t xsum);
typedef void (*q8dot4_fn)(const int8_t *qc, const uint8_t *qu, const int8_t *const *x, size_t n, const int32_t *xsum,
                          int32_t *out);

/* Whether this CPU (and build) can run kernel k; AUTO always can. */
bool yan_hnswk_available(yan_hnsw_kernel k);

/* AUTO to the best available kernel; any other k is returned as is. */
yan_hnsw_kernel yan_hnswk_resolve(yan_hnsw_kernel k);

/* The f32 kernels of a resolved kernel k for metric m. */
void yan_hnswk_pick(yan_hnsw_kernel k, yan_hnsw_metric m, dist_fn *d1, dist4_fn *d4);

/* The int8 kernels of a resolved f32 kernel k (VNNI, else AVX2, else
 * scalar). */
void yan_hnswk_pick_q8(yan_hnsw_kernel k, q8dot_fn *d1, q8dot4_fn *d4);

#endif /* YAN_RAG_HNSW_KERNELS_H */
