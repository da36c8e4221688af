/* gemm.h — f32 general matrix multiply, the kernel under training (forward,
 * backward) and f32 prompt processing.
 *
 *   C = beta * C + op(A) * op(B)          all matrices row-major
 *
 * op(A) is M x K: A itself (M rows of K, row stride lda >= K) or, when ta,
 * A is stored K x M (lda >= M) and used transposed. op(B) is K x N: B itself
 * (K rows of N, ldb >= N) or, when tb, B is stored N x K (ldb >= K).
 * beta is 0 or 1: with 0, C is only written (it may hold garbage or NaN).
 * M, N or K of 0 is a no-op for C when beta = 1 (C = 0 when beta = 0 and K = 0).
 *
 * The three training products of a linear layer y = x W^T (x: T x in,
 * W: out x in as GGUF stores it):
 *   forward   y  = x W^T   yan_sgemm(p, false, true,  T, out, in, x, in, W, in, 0, y, out)
 *   dx        dx = dy W    yan_sgemm(p, false, false, T, in, out, dy, out, W, in, 0, dx, in)
 *   dW       dW += dy^T x  yan_sgemm(p, true,  false, out, in, T, dy, out, x, in, 1, dW, in)
 *
 * yan_sgemm splits the work over the pool's threads (pool NULL: the calling
 * thread only) and must not be called from inside a yan_pool_run.
 * yan_sgemm_1 runs on the calling thread only and may be called from inside a
 * pool run (many small products at once, e.g. one per attention head).
 * Fast paths (AVX-512, AVX2+FMA) are chosen at run time; yan_sgemm_ref is the
 * plain reference they are tested against. Results of the fast paths do not
 * depend on the number of threads (bit for bit). Each thread that runs a
 * product keeps its own pack buffers (up to 1.4 MB, freed when the thread
 * exits), so neither call allocates once warm and both are reentrant. */
#ifndef YAN_GEMM_H
#define YAN_GEMM_H

#include "base/base.h"
#include "base/pool.h"

void yan_sgemm(yan_pool *pool, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
               const float *A, int64_t lda, const float *B, int64_t ldb,
               float beta, float *C, int64_t ldc);
void yan_sgemm_1(bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                 const float *A, int64_t lda, const float *B, int64_t ldb,
                 float beta, float *C, int64_t ldc);
void yan_sgemm_ref(bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                   const float *A, int64_t lda, const float *B, int64_t ldb,
                   float beta, float *C, int64_t ldc);

/* Tests and benchmarks. yan_sgemm_path: the product of yan_sgemm on one
 * kernel family, 0 = plain C, 1 = AVX2 + FMA, 2 = AVX-512 (+ 16: with the
 * smallest cache blocks, packed on the stack, the fallback for when the
 * per-thread pack buffer cannot grow); returns false and does nothing when
 * this CPU lacks the family. yan_sgemm_path_id: the family
 * yan_sgemm and yan_sgemm_1 use here; yan_sgemm_path_name: "scalar",
 * "avx2", "avx512", or NULL where the CPU lacks it. */
bool yan_sgemm_path(int path, yan_pool *pool, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                    const float *A, int64_t lda, const float *B, int64_t ldb,
                    float beta, float *C, int64_t ldc);
int yan_sgemm_path_id(void);
const char *yan_sgemm_path_name(int path);

#endif /* YAN_GEMM_H */
