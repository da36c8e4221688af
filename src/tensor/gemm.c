/* gemm.c — f32 GEMM (see gemm.h): the reference loops, a blocked, packed,
 * vectorised GEMM with three kernel families chosen once at run time
 * (AVX-512 14x32, AVX2+FMA 6x16, plain C 4x16), and the split of one product
 * over a thread pool.
 *
 * Blocking (the Goto / BLIS scheme; loops from outside in):
 *
 *   for jc in N step NC            B block: KC x NC, packed into NR-column
 *     for pc in K step KC            panels, stays in L2 (the K blocks: every
 *       pack op(B)[pc.., jc..]       element of C sees the same ones in order)
 *       for ic in M step MC        A block: MC x KC, packed into MR-row panels
 *         pack op(A)[ic.., pc..]
 *         for ir in MC step MR     one A micro-panel (KC x MR) stays in L1
 *           for jr in NC step NR   while the B micro-panels stream past it
 *             micro-kernel: C[MR x NR] (+)= Apanel (KC x MR) * Bpanel (KC x NR)
 *
 * (The other inner order, a B micro-panel held in L1 while A panels stream,
 * measured 4-10% slower here: the 14 x 32 kernel's B panel is 32 KB at
 * KC = 256 and shares the 48 KB L1 badly with the stream.)
 *
 * Packing copies op(A) and op(B) whatever ta/tb into the one layout the
 * micro-kernel reads: an A panel is, for each k, the MR values of column k of
 * op(A) (rows past M are zero); a B panel is, for each k, the NR values of
 * row k of op(B) (columns past N are zero). So the kernel reads both with
 * unit stride and the four ta/tb cases differ only in the packing routines
 * (a copy, or a transpose in 16 x 16 register tiles on AVX-512).
 *
 * Numerics: a micro-kernel sums a K block from zero in k order with one FMA
 * per product (one multiply and one add on the plain C path), then adds the
 * block's sum to C (beta = 0: the first block is stored). The K blocks depend
 * on K only, so every element of C is computed by the same operations
 * wherever its tile falls: results do not depend on the thread count or on
 * MC/NC. Against a double-precision sum the error is about 1e-7 of
 * sum_k |a||b| (measured up to K = 8192; yan_sgemm_ref's is as large or
 * larger, its single running sum being longer).
 *
 * Threads: yan_sgemm cuts C into one piece per thread along M (whole MR
 * panels) or along N (whole NR panels), whichever duplicates less packing,
 * and each thread runs the single-threaded blocked product on its piece with
 * its own pack buffers. Products under ~2 MFLOP stay on one thread.
 *
 * Memory: pack buffers come from a per-thread cache (grown to the largest
 * product seen, at most (MC + NC) x KC floats, 1.4 MB; freed at thread exit
 * by a pthread key destructor). It uses posix_memalign rather than
 * yan_malloc: it is a cache owned by the thread, not by a handle, and
 * counting it would show up as a leak in callers' accounting. When it cannot
 * grow, the product runs with MC = MR, NC = NR out of a 48 KB stack buffer
 * (same K blocks, so the same results, only slower). No allocation once the
 * cache is warm.
 *
 * Thread-safety: every function is reentrant; yan_sgemm_1 may run on many
 * threads at once (each uses its own cache). */
#include "tensor/gemm.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) /* (the kernels want x86-64's 16 / 32 vector registers) */
#include <immintrin.h>
#define YAN_GEMM_X86 1
#endif

#define INLINE static inline __attribute__((always_inline))

/* -------------------------------------------------------------- reference */

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

/* ------------------------------------------------------- kernel families */

/* Pack op(A)[0..m, 0..kc] (A points at op(A)'s element (0, 0) of the block)
 * into ceil(m / MR) panels of MR x kc, panel p at dst + p * MR * kc. */
typedef void (*pack_a_fn)(bool ta, const float *A, int64_t lda, int64_t m, int64_t kc, float *dst);
/* Pack op(B)[0..kc, 0..n] into ceil(n / NR) panels of kc x NR, panel q at
 * dst + q * NR * kc (64-byte aligned when dst is: NR is 16 or 32). */
typedef void (*pack_b_fn)(bool tb, const float *B, int64_t ldb, int64_t kc, int64_t n, float *dst);
/* C[0..m, 0..n] = (acc ? C : 0) + sum_k a[k*MR + r] * b[k*NR + j], with
 * 1 <= m <= MR, 1 <= n <= NR, a and b one packed panel each. */
typedef void (*kernel_fn)(int64_t kc, const float *a, const float *b, float *C, int64_t ldc, int m, int n,
                          bool acc);

typedef struct {
    const char *name;
    int path;            /* 0 plain C, 1 AVX2 + FMA, 2 AVX-512 */
    int mr, nr;          /* micro-tile of C */
    int64_t kc, mc, nc;  /* cache blocks: kc the K block (at most), mc and nc multiples of mr and nr */
    pack_a_fn pack_a;
    pack_b_fn pack_b;
    kernel_fn kernel;
} gemm_impl;

/* No family uses a larger K block or a larger mr + nr (they size the stack
 * fallback). */
enum { KC_MAX = 256, MR_NR_MAX = 48 };

/* ------------------------------------------------- generic packing (C) */

/* Written once, inlined into each family with its MR / NR as constants (and
 * its target, so the AVX2 family's copies get vectorised). */
INLINE void pack_a_generic(const int MR, bool ta, const float *A, int64_t lda, int64_t m, int64_t kc, float *dst) {
    for (int64_t i0 = 0; i0 < m; i0 += MR, dst += MR * kc) {
        int mp = m - i0 < MR ? (int)(m - i0) : MR;
        if (ta) {
            for (int64_t k = 0; k < kc; k++) {
                const float *s = A + k * lda + i0;
                for (int r = 0; r < MR; r++) dst[k * MR + r] = r < mp ? s[r] : 0.0f;
            }
        } else {
            for (int r = 0; r < MR; r++) {
                if (r < mp) {
                    const float *s = A + (i0 + r) * lda;
                    for (int64_t k = 0; k < kc; k++) dst[k * MR + r] = s[k];
                } else {
                    for (int64_t k = 0; k < kc; k++) dst[k * MR + r] = 0.0f;
                }
            }
        }
    }
}

INLINE void pack_b_generic(const int NR, bool tb, const float *B, int64_t ldb, int64_t kc, int64_t n, float *dst) {
    for (int64_t j0 = 0; j0 < n; j0 += NR, dst += NR * kc) {
        int np = n - j0 < NR ? (int)(n - j0) : NR;
        if (!tb) {
            for (int64_t k = 0; k < kc; k++) {
                const float *s = B + k * ldb + j0;
                for (int j = 0; j < NR; j++) dst[k * NR + j] = j < np ? s[j] : 0.0f;
            }
        } else {
            for (int j = 0; j < NR; j++) {
                if (j < np) {
                    const float *s = B + (j0 + j) * ldb;
                    for (int64_t k = 0; k < kc; k++) dst[k * NR + j] = s[k];
                } else {
                    for (int64_t k = 0; k < kc; k++) dst[k * NR + j] = 0.0f;
                }
            }
        }
    }
}

/* ------------------------------------------------ plain C family (4 x 16) */

enum { MR_C = 4, NR_C = 16 };

static void pack_a_c(bool ta, const float *A, int64_t lda, int64_t m, int64_t kc, float *dst) {
    pack_a_generic(MR_C, ta, A, lda, m, kc, dst);
}

static void pack_b_c(bool tb, const float *B, int64_t ldb, int64_t kc, int64_t n, float *dst) {
    pack_b_generic(NR_C, tb, B, ldb, kc, n, dst);
}

static void kernel_c(int64_t kc, const float *a, const float *b, float *C, int64_t ldc, int m, int n, bool acc) {
    float s[MR_C][NR_C] = {{0}};
    for (int64_t k = 0; k < kc; k++, a += MR_C, b += NR_C)
        for (int r = 0; r < MR_C; r++)
            for (int j = 0; j < NR_C; j++) s[r][j] += a[r] * b[j];
    for (int r = 0; r < m; r++) {
        float *c = C + r * ldc;
        for (int j = 0; j < n; j++) c[j] = acc ? c[j] + s[r][j] : s[r][j];
    }
}

static const gemm_impl k_impl_c = {"scalar", 0, MR_C, NR_C, KC_MAX, 64 * MR_C, 64 * NR_C, pack_a_c, pack_b_c, kernel_c};

#ifdef YAN_GEMM_X86

/* ---------------------------------------------- AVX2 + FMA family (6 x 16) */

/* Micro-kernel registers: 12 ymm accumulators c[r][h] = C[r, 8h .. 8h+8]
 * for r < 6, h < 2; per k two ymm of the B panel and one broadcast of
 * A[r, k] at a time: 15 of the 16 ymm registers, 12 FMAs per 8 loads. */
#define TGT2 __attribute__((target("avx2,fma")))
enum { MR_2 = 6, NR_2 = 16 };

TGT2 static void pack_a_avx2(bool ta, const float *A, int64_t lda, int64_t m, int64_t kc, float *dst) {
    pack_a_generic(MR_2, ta, A, lda, m, kc, dst);
}

TGT2 static void pack_b_avx2(bool tb, const float *B, int64_t ldb, int64_t kc, int64_t n, float *dst) {
    pack_b_generic(NR_2, tb, B, ldb, kc, n, dst);
}

/* lanes j < n of 8 set: load with k_mask8 + 8 - n */
static const int32_t k_mask8[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

TGT2 INLINE void kernel_avx2_body(const int MR, int64_t kc, const float *a, const float *b, float *C, int64_t ldc,
                                  int n, bool acc) {
    __m256 c0[MR_2], c1[MR_2];
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) c0[r] = c1[r] = _mm256_setzero_ps();
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
        _mm_prefetch((const char *)(C + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(C + r * ldc + n - 1), _MM_HINT_T0);
    }
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            __m256 ar = _mm256_broadcast_ss(a + r);
            c0[r] = _mm256_fmadd_ps(ar, b0, c0[r]);
            c1[r] = _mm256_fmadd_ps(ar, b1, c1[r]);
        }
        a += MR_2;
        b += NR_2;
    }
    if (n == NR_2) {
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            float *c = C + r * ldc;
            if (acc) {
                c0[r] = _mm256_add_ps(_mm256_loadu_ps(c), c0[r]);
                c1[r] = _mm256_add_ps(_mm256_loadu_ps(c + 8), c1[r]);
            }
            _mm256_storeu_ps(c, c0[r]);
            _mm256_storeu_ps(c + 8, c1[r]);
        }
    } else if (n > 8) {
        __m256i m1 = _mm256_loadu_si256((const __m256i *)(k_mask8 + 16 - n));
#pragma GCC unroll 6 /* (every loop over c unrolled, or c stays in memory) */
        for (int r = 0; r < MR; r++) {
            float *c = C + r * ldc;
            if (acc) {
                c0[r] = _mm256_add_ps(_mm256_loadu_ps(c), c0[r]);
                c1[r] = _mm256_add_ps(_mm256_maskload_ps(c + 8, m1), c1[r]);
            }
            _mm256_storeu_ps(c, c0[r]);
            _mm256_maskstore_ps(c + 8, m1, c1[r]);
        }
    } else {
        __m256i m0 = _mm256_loadu_si256((const __m256i *)(k_mask8 + 8 - n));
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            float *c = C + r * ldc;
            if (acc) c0[r] = _mm256_add_ps(_mm256_maskload_ps(c, m0), c0[r]);
            _mm256_maskstore_ps(c, m0, c0[r]);
        }
    }
}

TGT2 static void kernel_avx2(int64_t kc, const float *a, const float *b, float *C, int64_t ldc, int m, int n,
                             bool acc) {
    switch (m) { /* one copy per row count, so the short edge tiles run only their rows */
    case 6: kernel_avx2_body(6, kc, a, b, C, ldc, n, acc); break;
    case 5: kernel_avx2_body(5, kc, a, b, C, ldc, n, acc); break;
    case 4: kernel_avx2_body(4, kc, a, b, C, ldc, n, acc); break;
    case 3: kernel_avx2_body(3, kc, a, b, C, ldc, n, acc); break;
    case 2: kernel_avx2_body(2, kc, a, b, C, ldc, n, acc); break;
    default: kernel_avx2_body(1, kc, a, b, C, ldc, n, acc); break;
    }
}

/* sized for the smaller caches of AVX2-only machines: an A micro-panel of
 * 6 KB in a 32 KB L1, a B block of 192 KB in a 256 KB L2 */
static const gemm_impl k_impl_avx2 = {"avx2", 1, MR_2, NR_2, KC_MAX, 24 * MR_2, 12 * NR_2,
                                      pack_a_avx2, pack_b_avx2, kernel_avx2};

/* ------------------------------------------------ AVX-512 family (14 x 32) */

/* Micro-kernel registers: 28 zmm accumulators c0[r], c1[r] = C[r, 0..16],
 * C[r, 16..32] for r < 14; per k the two zmm of the B panel row and one
 * broadcast of A[r, k] at a time: 31 of the 32 zmm registers. Per k: 28
 * FMAs (14 cycles on two FMA ports) against 16 loads, so the FMA ports are
 * the limit (the loop runs at ~90% of their peak with its panels in L1);
 * the C tile is prefetched at the start and read and written once per K
 * block.
 *
 * Packing transposes with 16 x 16 register tiles: 16 rows of 16 floats are
 * loaded (masked at the edges, so nothing past the matrix is touched),
 * transposed in four shuffle stages, and each output vector is one k step
 * of a panel. */
#define TGT512 __attribute__((target("avx512f,fma")))
enum { MR_5 = 14, NR_5 = 32 };

TGT512 INLINE __mmask16 mask16(int64_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

/* r[i] = row i of a 16 x 16 tile -> r[j] = column j */
TGT512 INLINE void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 16; i += 2) { /* 32-bit interleave of row pairs */
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    /* 64-bit interleave within each group of 4 rows: u[4g + e] holds, in
     * each 128-bit lane L, column 4L + e of rows 4g .. 4g+3 */
    for (int g = 0; g < 16; g += 4) {
        __m512d t0 = _mm512_castps_pd(t[g]), t1 = _mm512_castps_pd(t[g + 1]);
        __m512d t2 = _mm512_castps_pd(t[g + 2]), t3 = _mm512_castps_pd(t[g + 3]);
        u[g] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
        u[g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
        u[g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
        u[g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
    }
    /* gather lane L of the four row groups: column 4L + e. 0x44 takes lanes
     * (0, 1) of each source, 0xEE lanes (2, 3); then 0x88 lanes (0, 2) and
     * 0xDD lanes (1, 3). */
    for (int e = 0; e < 4; e++) {
        __m512 x0 = _mm512_shuffle_f32x4(u[e], u[4 + e], 0x44);
        __m512 x1 = _mm512_shuffle_f32x4(u[e], u[4 + e], 0xEE);
        __m512 y0 = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0x44);
        __m512 y1 = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0xEE);
        r[e] = _mm512_shuffle_f32x4(x0, y0, 0x88);
        r[4 + e] = _mm512_shuffle_f32x4(x0, y0, 0xDD);
        r[8 + e] = _mm512_shuffle_f32x4(x1, y1, 0x88);
        r[12 + e] = _mm512_shuffle_f32x4(x1, y1, 0xDD);
    }
}

/* Transpose the nr x kc block at s (row stride ld; nr <= 16 rows of which
 * the first nv are real, the rest zero) into kc vectors of 16 written with
 * mask wm at dst + k * dstep. */
TGT512 INLINE void pack_transposed(const float *s, int64_t ld, int nv, int64_t kc, float *dst, int64_t dstep,
                                   __mmask16 wm) {
    for (int64_t k0 = 0; k0 < kc; k0 += 16) {
        __mmask16 lm = mask16(kc - k0);
        __m512 r[16];
        for (int i = 0; i < 16; i++)
            r[i] = i < nv ? _mm512_maskz_loadu_ps(lm, s + i * ld + k0) : _mm512_setzero_ps();
        transpose16(r);
        int kk = kc - k0 < 16 ? (int)(kc - k0) : 16;
        float *d = dst + k0 * dstep;
        if (wm == 0xFFFF)
            for (int t = 0; t < kk; t++) _mm512_store_ps(d + t * dstep, r[t]);
        else
            for (int t = 0; t < kk; t++) _mm512_mask_storeu_ps(d + t * dstep, wm, r[t]);
    }
}

TGT512 static void pack_a_avx512(bool ta, const float *A, int64_t lda, int64_t m, int64_t kc, float *dst) {
    const __mmask16 wm = (1u << MR_5) - 1;
    for (int64_t i0 = 0; i0 < m; i0 += MR_5, dst += MR_5 * kc) {
        int mp = m - i0 < MR_5 ? (int)(m - i0) : MR_5;
        if (ta) { /* column k of op(A) is row k of A: a masked copy */
            __mmask16 lm = mask16(mp);
            for (int64_t k = 0; k < kc; k++)
                _mm512_mask_storeu_ps(dst + k * MR_5, wm, _mm512_maskz_loadu_ps(lm, A + k * lda + i0));
        } else {
            pack_transposed(A + i0 * lda, lda, mp, kc, dst, MR_5, wm);
        }
    }
}

TGT512 static void pack_b_avx512(bool tb, const float *B, int64_t ldb, int64_t kc, int64_t n, float *dst) {
    for (int64_t j0 = 0; j0 < n; j0 += NR_5, dst += NR_5 * kc) {
        int np = n - j0 < NR_5 ? (int)(n - j0) : NR_5;
        if (!tb) { /* row k of op(B) is row k of B: a copy */
            __mmask16 m0 = mask16(np), m1 = mask16(np > 16 ? np - 16 : 0);
            const float *s = B + j0;
            for (int64_t k = 0; k < kc; k++, s += ldb) {
                _mm512_store_ps(dst + k * NR_5, _mm512_maskz_loadu_ps(m0, s));
                _mm512_store_ps(dst + k * NR_5 + 16, np > 16 ? _mm512_maskz_loadu_ps(m1, s + 16) : _mm512_setzero_ps());
            }
        } else { /* columns j0 .. j0+32 of op(B) are rows of B: two 16-row transposes */
            pack_transposed(B + j0 * ldb, ldb, np < 16 ? np : 16, kc, dst, NR_5, 0xFFFF);
            pack_transposed(B + (j0 + 16) * ldb, ldb, np > 16 ? np - 16 : 0, kc, dst + 16, NR_5, 0xFFFF);
        }
    }
}

TGT512 INLINE void kernel_avx512_body(const int MR, int64_t kc, const float *a, const float *b, float *C,
                                      int64_t ldc, int n, bool acc) {
    __m512 c0[MR_5], c1[MR_5];
#pragma GCC unroll 14
    for (int r = 0; r < MR; r++) c0[r] = c1[r] = _mm512_setzero_ps();
#pragma GCC unroll 14
    for (int r = 0; r < MR; r++) { /* the tile's first and last byte in each row */
        _mm_prefetch((const char *)(C + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(C + r * ldc + n - 1), _MM_HINT_T0);
    }
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 14
        for (int r = 0; r < MR; r++) {
            __m512 ar = _mm512_set1_ps(a[r]);
            c0[r] = _mm512_fmadd_ps(ar, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(ar, b1, c1[r]);
        }
        a += MR_5;
        b += NR_5;
    }
    if (n == NR_5) {
#pragma GCC unroll 14
        for (int r = 0; r < MR; r++) {
            float *c = C + r * ldc;
            if (acc) {
                c0[r] = _mm512_add_ps(_mm512_loadu_ps(c), c0[r]);
                c1[r] = _mm512_add_ps(_mm512_loadu_ps(c + 16), c1[r]);
            }
            _mm512_storeu_ps(c, c0[r]);
            _mm512_storeu_ps(c + 16, c1[r]);
        }
    } else if (n > 16) {
        __mmask16 m1 = mask16(n - 16);
#pragma GCC unroll 14 /* (every loop over c unrolled, or c stays in memory) */
        for (int r = 0; r < MR; r++) {
            float *c = C + r * ldc;
            if (acc) {
                c0[r] = _mm512_add_ps(_mm512_loadu_ps(c), c0[r]);
                c1[r] = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, c + 16), c1[r]);
            }
            _mm512_storeu_ps(c, c0[r]);
            _mm512_mask_storeu_ps(c + 16, m1, c1[r]);
        }
    } else {
        __mmask16 m0 = mask16(n);
#pragma GCC unroll 14
        for (int r = 0; r < MR; r++) {
            float *c = C + r * ldc;
            if (acc) c0[r] = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, c), c0[r]);
            _mm512_mask_storeu_ps(c, m0, c0[r]);
        }
    }
}

TGT512 static void kernel_avx512(int64_t kc, const float *a, const float *b, float *C, int64_t ldc, int m, int n,
                                 bool acc) {
    switch (m) { /* one copy per row count, so the short edge tiles run only their rows */
#define K(R) case R: kernel_avx512_body(R, kc, a, b, C, ldc, n, acc); break;
    K(14) K(13) K(12) K(11) K(10) K(9) K(8) K(7) K(6) K(5) K(4) K(3) K(2)
#undef K
    default: kernel_avx512_body(1, kc, a, b, C, ldc, n, acc); break;
    }
}

/* Tuned on a 2-core Xeon (48 KB L1D, 2 MB L2 per core): KC = 256 keeps an
 * A micro-panel (14 KB) in L1; NC = 1024 makes the B block 1 MB, half the
 * L2; MC = 24 panels (336 rows) only sets how much A is packed at once.
 * KC 192..512 and NC 384..1024 measured within 3% of this. */
static const gemm_impl k_impl_avx512 = {"avx512", 2, MR_5, NR_5, KC_MAX, 24 * MR_5, 32 * NR_5,
                                        pack_a_avx512, pack_b_avx512, kernel_avx512};

#endif /* YAN_GEMM_X86 */

/* ------------------------------------------------------------- dispatch */

/* family ids: 0 plain C, 1 AVX2 + FMA, 2 AVX-512 */
static const gemm_impl *impl_for(int path) {
#ifdef YAN_GEMM_X86
    const yan_cpu *c = yan_cpu_get();
    if (path == 2 && c->avx512f && c->fma) return &k_impl_avx512;
    if (path == 1 && c->avx2 && c->fma) return &k_impl_avx2;
#endif
    return path == 0 ? &k_impl_c : NULL;
}

static const gemm_impl *impl_default(void) {
    for (int path = 2; path > 0; path--) {
        const gemm_impl *im = impl_for(path);
        if (im) return im;
    }
    return &k_impl_c;
}

/* ------------------------------------------------- per-thread workspace */

/* The calling thread's pack buffer: cap floats at p (64-byte aligned). The
 * key's destructor frees it when the thread exits; a thread that never
 * exits (main) keeps it reachable through t_ws until the process ends. */
static _Thread_local struct {
    float *p;
    size_t cap;
} t_ws;
static pthread_key_t g_ws_key;
static bool g_ws_key_ok;
static pthread_once_t g_ws_once = PTHREAD_ONCE_INIT;

static void ws_destroy(void *p) {
    t_ws.p = NULL;
    t_ws.cap = 0;
    free(p);
}

static void ws_key_make(void) { g_ws_key_ok = pthread_key_create(&g_ws_key, ws_destroy) == 0; }

/* n floats, or NULL when they cannot be had (the caller falls back) */
static float *ws_get(size_t n) {
    if (t_ws.cap >= n) return t_ws.p;
    pthread_once(&g_ws_once, ws_key_make);
    if (!g_ws_key_ok) return NULL;
    void *p = NULL;
    if (posix_memalign(&p, 64, n * sizeof(float)) != 0) return NULL;
    if (pthread_setspecific(g_ws_key, p) != 0) {
        free(p);
        return NULL;
    }
    free(t_ws.p);
    t_ws.p = p;
    t_ws.cap = n;
    return p;
}

/* ------------------------------------------------------- blocked driver */

static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* The K block for a given K: the fewest blocks of at most im->kc, made
 * about equal (a multiple of 16 but the last), so no block is a sliver.
 * Depends on K only: that is what makes the results independent of how C
 * is cut between threads. */
static int64_t k_block(const gemm_impl *im, int64_t K) {
    int64_t nk = (K + im->kc - 1) / im->kc;
    return min64(round_up((K + nk - 1) / nk, 16), im->kc);
}

/* C[0..M, 0..N] on the calling thread, A, B, C pointing at the piece's
 * (0, 0). ws holds kc * (mc + nc) floats (mc, nc multiples of mr, nr). */
static void gemm_blocked(const gemm_impl *im, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                         const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                         int64_t ldc, float *ws, int64_t mc, int64_t nc) {
    const int64_t kc = k_block(im, K);
    float *bp = ws, *ap = ws + kc * nc;
    for (int64_t jc = 0; jc < N; jc += nc) {
        int64_t nb = min64(nc, N - jc);
        for (int64_t pc = 0; pc < K; pc += kc) {
            int64_t kb = min64(kc, K - pc);
            bool acc = pc > 0 || beta != 0.0f;
            im->pack_b(tb, tb ? B + jc * ldb + pc : B + pc * ldb + jc, ldb, kb, nb, bp);
            for (int64_t ic = 0; ic < M; ic += mc) {
                int64_t mb = min64(mc, M - ic);
                im->pack_a(ta, ta ? A + pc * lda + ic : A + ic * lda + pc, lda, mb, kb, ap);
                for (int64_t ir = 0; ir < mb; ir += im->mr) {
                    int m = (int)min64(im->mr, mb - ir);
                    for (int64_t jr = 0; jr < nb; jr += im->nr) {
                        int n = (int)min64(im->nr, nb - jr);
                        im->kernel(kb, ap + ir * kb, bp + jr * kb, C + (ic + ir) * ldc + jc + jr, ldc, m, n, acc);
                    }
                }
            }
        }
    }
}

/* One piece on the calling thread: pack buffers from the thread's cache,
 * or from the stack with the smallest blocks if the cache cannot grow (or
 * when a test asks for that path with stack). */
static void gemm_piece(const gemm_impl *im, bool stack, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                       const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                       int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (beta == 0.0f)
            for (int64_t i = 0; i < M; i++) memset(C + i * ldc, 0, (size_t)N * sizeof(float));
        return;
    }
    int64_t kc = k_block(im, K);
    int64_t mc = min64(im->mc, round_up(M, im->mr)), nc = min64(im->nc, round_up(N, im->nr));
    float *ws = stack ? NULL : ws_get((size_t)(kc * (mc + nc)));
    if (ws) {
        gemm_blocked(im, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, ws, mc, nc);
    } else {
        _Alignas(64) float small[KC_MAX * MR_NR_MAX];
        YAN_ASSERT(im->mr + im->nr <= MR_NR_MAX && kc <= KC_MAX);
        gemm_blocked(im, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, small, im->mr, im->nr);
    }
}

/* ------------------------------------------------------------- threads */

typedef struct {
    const gemm_impl *im;
    bool stack, ta, tb, split_m;
    int64_t M, N, K, step; /* step: rows (split_m) or columns per thread */
    const float *A, *B;
    int64_t lda, ldb, ldc;
    float beta;
    float *C;
} gemm_job;

/* thread ith computes rows (or columns) [ith * step, (ith + 1) * step) */
static void gemm_task(void *ud, int ith, int nth) {
    (void)nth;
    const gemm_job *j = ud;
    int64_t lo = j->step * ith;
    if (j->split_m) {
        if (lo >= j->M) return;
        const float *A = j->ta ? j->A + lo : j->A + lo * j->lda;
        gemm_piece(j->im, j->stack, j->ta, j->tb, min64(j->step, j->M - lo), j->N, j->K, A, j->lda, j->B, j->ldb,
                   j->beta, j->C + lo * j->ldc, j->ldc);
    } else {
        if (lo >= j->N) return;
        const float *B = j->tb ? j->B + lo * j->ldb : j->B + lo;
        gemm_piece(j->im, j->stack, j->ta, j->tb, j->M, min64(j->step, j->N - lo), j->K, j->A, j->lda, B, j->ldb,
                   j->beta, j->C + lo, j->ldc);
    }
}

/* Below this many multiply-adds a product stays on one thread (waking the
 * pool costs more than the second core gains). */
#define GEMM_MT_MIN (1 << 20)

static void gemm_run(const gemm_impl *im, bool stack, yan_pool *pool, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                     const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    int nth = pool ? yan_pool_size(pool) : 1;
    if (nth <= 1 || M <= 0 || N <= 0 || (double)M * (double)N * (double)K < GEMM_MT_MIN) {
        gemm_piece(im, stack, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    /* Cut along M, each thread packing all of op(B) (K x N), or along N,
     * each packing all of op(A) (M x K): the smaller duplicate wins. */
    gemm_job j = {im, stack, ta, tb, N <= M, M, N, K, 0, A, B, lda, ldb, ldc, beta, C};
    int64_t unit = j.split_m ? im->mr : im->nr, len = j.split_m ? M : N;
    int64_t units = (len + unit - 1) / unit;
    j.step = (units + nth - 1) / nth * unit;
    if (j.step >= len) {
        gemm_piece(im, stack, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    yan_pool_run(pool, gemm_task, &j);
}

/* ------------------------------------------------------------ interface */

void yan_sgemm_1(bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                 const float *A, int64_t lda, const float *B, int64_t ldb,
                 float beta, float *C, int64_t ldc) {
    gemm_piece(impl_default(), false, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

void yan_sgemm(yan_pool *pool, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
               const float *A, int64_t lda, const float *B, int64_t ldb,
               float beta, float *C, int64_t ldc) {
    gemm_run(impl_default(), false, pool, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

bool yan_sgemm_path(int path, yan_pool *pool, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                    const float *A, int64_t lda, const float *B, int64_t ldb,
                    float beta, float *C, int64_t ldc) {
    const gemm_impl *im = impl_for(path & 15);
    if (!im || (path & ~31)) return false;
    gemm_run(im, (path & 16) != 0, pool, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
    return true;
}

int yan_sgemm_path_id(void) {
    return impl_default()->path;
}

const char *yan_sgemm_path_name(int path) {
    const gemm_impl *im = impl_for(path);
    return im ? im->name : NULL;
}
