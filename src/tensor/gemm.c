/* gemm.c — f32 GEMM (see gemm.h). Reference loops for now; the blocked,
 * vectorised, threaded kernels replace the bodies of yan_sgemm and
 * yan_sgemm_1 behind the same interface. */
#include "tensor/gemm.h"

#include <string.h>

void yan_sgemm_ref(bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                   const float *A, int64_t lda, const float *B, int64_t ldb,
                   float beta, float *C, int64_t ldc) {
    for (int64_t i = 0; i < M; i++) {
        float *c = C + i * ldc;
        if (beta == 0.0f) memset(c, 0, (size_t)N * sizeof(float));
        for (int64_t k = 0; k < K; k++) {
            float a = ta ? A[k * lda + i] : A[i * lda + k];
            if (tb)
                for (int64_t j = 0; j < N; j++) c[j] += a * B[j * ldb + k];
            else
                for (int64_t j = 0; j < N; j++) c[j] += a * B[k * ldb + j];
        }
    }
}

void yan_sgemm_1(bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                 const float *A, int64_t lda, const float *B, int64_t ldb,
                 float beta, float *C, int64_t ldc) {
    yan_sgemm_ref(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

void yan_sgemm(yan_pool *pool, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
               const float *A, int64_t lda, const float *B, int64_t ldb,
               float beta, float *C, int64_t ldc) {
    (void)pool;
    yan_sgemm_ref(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}
