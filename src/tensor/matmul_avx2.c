/* matmul_avx2.c — the AVX2 kernel family for CPUs without AVX-512. Not
 * written yet: every type reports "no kernel" here and matmul.c runs its
 * scalar kernels on such CPUs (correct, slow). The AVX-512 family
 * (matmul_avx512.c) serves the target machine. */
#include "tensor/blocks.h"

bool yan_mm_avx2_has(int type) {
    (void)type;
    return false;
}

bool yan_mm_avx2(const yan_mm_args *a, int64_t r0, int64_t r1) {
    (void)a, (void)r0, (void)r1;
    return false;
}
