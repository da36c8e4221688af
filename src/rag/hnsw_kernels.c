/* hnsw_kernels.c — the distance kernels of the HNSW index (hnsw.c): f32
 * inner-product and L2 distances, one vector or four against one query,
 * and the int8 dot products of the sq8 walk; the choice of kernel for a
 * CPU; and the public yan_hnsw_distance / yan_hnsw_dot_i8 (hnsw.h), which
 * let the tests call one kernel directly.
 *
 * Each form has a scalar kernel, always built, and x86 SIMD ones behind
 * target attributes (AVX2+FMA, AVX-512F, AVX-512 VNNI for int8), picked at
 * run time from the CPU's features. The scalar kernels are the reference:
 * the SIMD ones agree with them up to float summation order, and the int8
 * ones exactly (tests/unit/test_hnsw.c). The index calls the kernels
 * through the pointers yan_hnswk_pick / yan_hnswk_pick_q8 return.
 *
 * Dependencies: base (allocation, CPU features). */
#include "rag/hnsw_kernels.h"

#include "base/base.h"

#include <math.h>

/* Scalar reference: the SIMD kernels must agree with these up to float
 * summation order (tests/unit/test_hnsw.c). */
static float dot_scalar(const float *a, const float *b, size_t n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static float l2_scalar(const float *a, const float *b, size_t n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float d0 = a[i] - b[i], d1 = a[i + 1] - b[i + 1], d2 = a[i + 2] - b[i + 2], d3 = a[i + 3] - b[i + 3];
        s0 += d0 * d0;
        s1 += d1 * d1;
        s2 += d2 * d2;
        s3 += d3 * d3;
    }
    for (; i < n; i++) s0 += (a[i] - b[i]) * (a[i] - b[i]);
    return (s0 + s1) + (s2 + s3);
}

static float ip_dist_scalar(const float *a, const float *b, size_t n) { return 1.f - dot_scalar(a, b, n); }

static void ip_dist4_scalar(const float *q, const float *const *b, size_t n, float *out) {
    for (int j = 0; j < 4; j++) out[j] = 1.f - dot_scalar(q, b[j], n);
}
static void l2_dist4_scalar(const float *q, const float *const *b, size_t n, float *out) {
    for (int j = 0; j < 4; j++) out[j] = l2_scalar(q, b[j], n);
}

#if HNSW_X86
#define TGT2 __attribute__((target("avx2,fma")))
#define TGT512 __attribute__((target("avx512f,fma")))

TGT2 INLINE float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

TGT2 static float dot_avx2(const float *a, const float *b, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

TGT2 static float l2_avx2(const float *a, const float *b, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
        __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
        s2 = _mm256_fmadd_ps(d2, d2, s2);
        s3 = _mm256_fmadd_ps(d3, d3, s3);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_fmadd_ps(d, d, s0);
    }
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) s += (a[i] - b[i]) * (a[i] - b[i]);
    return s;
}

TGT2 static float ip_dist_avx2(const float *a, const float *b, size_t n) { return 1.f - dot_avx2(a, b, n); }

/* Four vectors against one query: the query is loaded once per 8 floats and
 * the four streams of loads are in flight together. n is a multiple of 16
 * inside the index; the scalar tail serves the general case. */
TGT2 static void ip_dist4_avx2(const float *q, const float *const *b, size_t n, float *out) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    const float *b0 = b[0], *b1 = b[1], *b2 = b[2], *b3 = b[3];
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(q + i);
        s0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b0 + i), s0);
        s1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b1 + i), s1);
        s2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b2 + i), s2);
        s3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b3 + i), s3);
    }
    float r[4] = {hsum256(s0), hsum256(s1), hsum256(s2), hsum256(s3)};
    for (; i < n; i++) r[0] += q[i] * b0[i], r[1] += q[i] * b1[i], r[2] += q[i] * b2[i], r[3] += q[i] * b3[i];
    for (int j = 0; j < 4; j++) out[j] = 1.f - r[j];
}

TGT2 static void l2_dist4_avx2(const float *q, const float *const *b, size_t n, float *out) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    const float *b0 = b[0], *b1 = b[1], *b2 = b[2], *b3 = b[3];
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(q + i);
        __m256 d0 = _mm256_sub_ps(x, _mm256_loadu_ps(b0 + i)), d1 = _mm256_sub_ps(x, _mm256_loadu_ps(b1 + i));
        __m256 d2 = _mm256_sub_ps(x, _mm256_loadu_ps(b2 + i)), d3 = _mm256_sub_ps(x, _mm256_loadu_ps(b3 + i));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
        s2 = _mm256_fmadd_ps(d2, d2, s2);
        s3 = _mm256_fmadd_ps(d3, d3, s3);
    }
    float r[4] = {hsum256(s0), hsum256(s1), hsum256(s2), hsum256(s3)};
    for (; i < n; i++) {
        float d0 = q[i] - b0[i], d1 = q[i] - b1[i], d2 = q[i] - b2[i], d3 = q[i] - b3[i];
        r[0] += d0 * d0, r[1] += d1 * d1, r[2] += d2 * d2, r[3] += d3 * d3;
    }
    for (int j = 0; j < 4; j++) out[j] = r[j];
}

TGT512 static float dot_avx512(const float *a, const float *b, size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

TGT512 static float l2_avx512(const float *a, const float *b, size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
        __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
        s2 = _mm512_fmadd_ps(d2, d2, s2);
        s3 = _mm512_fmadd_ps(d3, d3, s3);
    }
    for (; i + 16 <= n; i += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s0 = _mm512_fmadd_ps(d, d, s0);
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        s1 = _mm512_fmadd_ps(d, d, s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

TGT512 static float ip_dist_avx512(const float *a, const float *b, size_t n) { return 1.f - dot_avx512(a, b, n); }

/* Two accumulators per vector (even and odd 16-float steps): eight
 * independent FMA chains cover the FMA latency. */
TGT512 static void ip_dist4_avx512(const float *q, const float *const *b, size_t n, float *out) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    __m512 c0 = _mm512_setzero_ps(), c1 = _mm512_setzero_ps(), c2 = _mm512_setzero_ps(), c3 = _mm512_setzero_ps();
    const float *b0 = b[0], *b1 = b[1], *b2 = b[2], *b3 = b[3];
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 x = _mm512_loadu_ps(q + i), y = _mm512_loadu_ps(q + i + 16);
        a0 = _mm512_fmadd_ps(x, _mm512_loadu_ps(b0 + i), a0);
        a1 = _mm512_fmadd_ps(x, _mm512_loadu_ps(b1 + i), a1);
        a2 = _mm512_fmadd_ps(x, _mm512_loadu_ps(b2 + i), a2);
        a3 = _mm512_fmadd_ps(x, _mm512_loadu_ps(b3 + i), a3);
        c0 = _mm512_fmadd_ps(y, _mm512_loadu_ps(b0 + i + 16), c0);
        c1 = _mm512_fmadd_ps(y, _mm512_loadu_ps(b1 + i + 16), c1);
        c2 = _mm512_fmadd_ps(y, _mm512_loadu_ps(b2 + i + 16), c2);
        c3 = _mm512_fmadd_ps(y, _mm512_loadu_ps(b3 + i + 16), c3);
    }
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(m, q + i);
        a0 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(m, b0 + i), a0);
        a1 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(m, b1 + i), a1);
        a2 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(m, b2 + i), a2);
        a3 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(m, b3 + i), a3);
    }
    out[0] = 1.f - _mm512_reduce_add_ps(_mm512_add_ps(a0, c0));
    out[1] = 1.f - _mm512_reduce_add_ps(_mm512_add_ps(a1, c1));
    out[2] = 1.f - _mm512_reduce_add_ps(_mm512_add_ps(a2, c2));
    out[3] = 1.f - _mm512_reduce_add_ps(_mm512_add_ps(a3, c3));
}

TGT512 static void l2_dist4_avx512(const float *q, const float *const *b, size_t n, float *out) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    __m512 c0 = _mm512_setzero_ps(), c1 = _mm512_setzero_ps(), c2 = _mm512_setzero_ps(), c3 = _mm512_setzero_ps();
    const float *b0 = b[0], *b1 = b[1], *b2 = b[2], *b3 = b[3];
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 x = _mm512_loadu_ps(q + i), y = _mm512_loadu_ps(q + i + 16);
        __m512 d0 = _mm512_sub_ps(x, _mm512_loadu_ps(b0 + i)), d1 = _mm512_sub_ps(x, _mm512_loadu_ps(b1 + i));
        __m512 d2 = _mm512_sub_ps(x, _mm512_loadu_ps(b2 + i)), d3 = _mm512_sub_ps(x, _mm512_loadu_ps(b3 + i));
        a0 = _mm512_fmadd_ps(d0, d0, a0);
        a1 = _mm512_fmadd_ps(d1, d1, a1);
        a2 = _mm512_fmadd_ps(d2, d2, a2);
        a3 = _mm512_fmadd_ps(d3, d3, a3);
        __m512 e0 = _mm512_sub_ps(y, _mm512_loadu_ps(b0 + i + 16)), e1 = _mm512_sub_ps(y, _mm512_loadu_ps(b1 + i + 16));
        __m512 e2 = _mm512_sub_ps(y, _mm512_loadu_ps(b2 + i + 16)), e3 = _mm512_sub_ps(y, _mm512_loadu_ps(b3 + i + 16));
        c0 = _mm512_fmadd_ps(e0, e0, c0);
        c1 = _mm512_fmadd_ps(e1, e1, c1);
        c2 = _mm512_fmadd_ps(e2, e2, c2);
        c3 = _mm512_fmadd_ps(e3, e3, c3);
    }
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(m, q + i);
        __m512 d0 = _mm512_sub_ps(x, _mm512_maskz_loadu_ps(m, b0 + i)), d1 = _mm512_sub_ps(x, _mm512_maskz_loadu_ps(m, b1 + i));
        __m512 d2 = _mm512_sub_ps(x, _mm512_maskz_loadu_ps(m, b2 + i)), d3 = _mm512_sub_ps(x, _mm512_maskz_loadu_ps(m, b3 + i));
        a0 = _mm512_fmadd_ps(d0, d0, a0);
        a1 = _mm512_fmadd_ps(d1, d1, a1);
        a2 = _mm512_fmadd_ps(d2, d2, a2);
        a3 = _mm512_fmadd_ps(d3, d3, a3);
    }
    out[0] = _mm512_reduce_add_ps(_mm512_add_ps(a0, c0));
    out[1] = _mm512_reduce_add_ps(_mm512_add_ps(a1, c1));
    out[2] = _mm512_reduce_add_ps(_mm512_add_ps(a2, c2));
    out[3] = _mm512_reduce_add_ps(_mm512_add_ps(a3, c3));
}
#endif /* HNSW_X86 */

/* int8 dot products for the sq8 walk: the exact integer sum of qc[i] * x[i]
 * over n bytes (codes lie in [-127, 127]). The VNNI form multiplies the
 * unsigned qu = qc + 128 by x (vpdpbusd) and subtracts 128 * xsum, xsum
 * being the sum of x; the others read qc. Every form gives the same integer,
 * so the kernels agree exactly. Inside the index n is a multiple of 64. */

static int32_t q8dot_scalar(const int8_t *qc, const uint8_t *qu, const int8_t *x, size_t n, int32_t xsum) {
    (void)qu, (void)xsum;
    int32_t s = 0;
    for (size_t i = 0; i < n; i++) s += (int32_t)qc[i] * x[i];
    return s;
}

#if HNSW_X86
#define TGTVNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

/* |x| * (qc * sign(x)) = qc * x through vpmaddubsw: a pair sums to at most
 * 2 * 127 * 127, inside int16. */
TGT2 static int32_t q8dot_avx2(const int8_t *qc, const uint8_t *qu, const int8_t *x, size_t n, int32_t xsum) {
    (void)qu, (void)xsum;
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256(), ones = _mm256_set1_epi16(1);
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m256i a0 = _mm256_loadu_si256((const __m256i *)(qc + i)), b0 = _mm256_loadu_si256((const __m256i *)(x + i));
        __m256i a1 = _mm256_loadu_si256((const __m256i *)(qc + i + 32)), b1 = _mm256_loadu_si256((const __m256i *)(x + i + 32));
        __m256i p0 = _mm256_maddubs_epi16(_mm256_abs_epi8(b0), _mm256_sign_epi8(a0, b0));
        __m256i p1 = _mm256_maddubs_epi16(_mm256_abs_epi8(b1), _mm256_sign_epi8(a1, b1));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(p0, ones));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(p1, ones));
    }
    __m256i a = _mm256_add_epi32(acc0, acc1);
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
    int32_t s = _mm_cvtsi128_si32(t);
    for (; i < n; i++) s += (int32_t)qc[i] * x[i];
    return s;
}

TGTVNNI static int32_t q8dot_vnni(const int8_t *qc, const uint8_t *qu, const int8_t *x, size_t n, int32_t xsum) {
    __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512(qu + i), _mm512_loadu_si512(x + i));
        a1 = _mm512_dpbusd_epi32(a1, _mm512_loadu_si512(qu + i + 64), _mm512_loadu_si512(x + i + 64));
    }
    for (; i + 64 <= n; i += 64) a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512(qu + i), _mm512_loadu_si512(x + i));
    int32_t s = _mm512_reduce_add_epi32(_mm512_add_epi32(a0, a1));
    int32_t head = 0; /* the sum of x over [0, i): the correction covers what went through vpdpbusd */
    if (i == n) {
        head = xsum;
    } else {
        for (size_t j = 0; j < i; j++) head += x[j];
        for (; i < n; i++) s += (int32_t)qc[i] * x[i];
    }
    return s - 128 * head;
}

/* Four code vectors against one query: the query bytes are loaded once. */
TGTVNNI static void q8dot4_vnni(const int8_t *qc, const uint8_t *qu, const int8_t *const *x, size_t n,
                                const int32_t *xsum, int32_t *out) {
    (void)qc;
    __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512(), a2 = _mm512_setzero_si512(),
            a3 = _mm512_setzero_si512();
    for (size_t i = 0; i < n; i += 64) {
        __m512i q = _mm512_loadu_si512(qu + i);
        a0 = _mm512_dpbusd_epi32(a0, q, _mm512_loadu_si512(x[0] + i));
        a1 = _mm512_dpbusd_epi32(a1, q, _mm512_loadu_si512(x[1] + i));
        a2 = _mm512_dpbusd_epi32(a2, q, _mm512_loadu_si512(x[2] + i));
        a3 = _mm512_dpbusd_epi32(a3, q, _mm512_loadu_si512(x[3] + i));
    }
    out[0] = _mm512_reduce_add_epi32(a0) - 128 * xsum[0];
    out[1] = _mm512_reduce_add_epi32(a1) - 128 * xsum[1];
    out[2] = _mm512_reduce_add_epi32(a2) - 128 * xsum[2];
    out[3] = _mm512_reduce_add_epi32(a3) - 128 * xsum[3];
}
#endif

#define Q8DOT4_FROM(name, one)                                                                                   \
    static void name(const int8_t *qc, const uint8_t *qu, const int8_t *const *x, size_t n, const int32_t *xsum, \
                     int32_t *out) {                                                                             \
        for (int j = 0; j < 4; j++) out[j] = one(qc, qu, x[j], n, xsum[j]);                                      \
    }
Q8DOT4_FROM(q8dot4_scalar, q8dot_scalar)
#if HNSW_X86
Q8DOT4_FROM(q8dot4_avx2, q8dot_avx2)
#endif

bool yan_hnswk_available(yan_hnsw_kernel k) {
    const yan_cpu *c = yan_cpu_get();
    switch (k) {
    case YAN_HNSW_KERNEL_AUTO:
    case YAN_HNSW_KERNEL_SCALAR: return true;
    case YAN_HNSW_KERNEL_AVX2: return HNSW_X86 && c->avx2 && c->fma;
    case YAN_HNSW_KERNEL_AVX512: return HNSW_X86 && c->avx512f && c->fma;
    }
    return false;
}

/* The int8 kernels of a resolved f32 kernel: VNNI needs more than AVX-512F,
 * so an AVX-512 CPU without it uses the AVX2 ones. */
void yan_hnswk_pick_q8(yan_hnsw_kernel k, q8dot_fn *d1, q8dot4_fn *d4) {
    *d1 = q8dot_scalar;
    *d4 = q8dot4_scalar;
#if HNSW_X86
    const yan_cpu *c = yan_cpu_get();
    if (k == YAN_HNSW_KERNEL_AVX512 && c->avx512bw && c->avx512vnni) {
        *d1 = q8dot_vnni;
        *d4 = q8dot4_vnni;
    } else if (k != YAN_HNSW_KERNEL_SCALAR && c->avx2) {
        *d1 = q8dot_avx2;
        *d4 = q8dot4_avx2;
    }
#endif
}

yan_hnsw_kernel yan_hnswk_resolve(yan_hnsw_kernel k) {
    if (k != YAN_HNSW_KERNEL_AUTO) return k;
    if (yan_hnswk_available(YAN_HNSW_KERNEL_AVX512)) return YAN_HNSW_KERNEL_AVX512;
    if (yan_hnswk_available(YAN_HNSW_KERNEL_AVX2)) return YAN_HNSW_KERNEL_AVX2;
    return YAN_HNSW_KERNEL_SCALAR;
}

void yan_hnswk_pick(yan_hnsw_kernel k, yan_hnsw_metric m, dist_fn *d1, dist4_fn *d4) {
    bool l2 = m == YAN_HNSW_L2;
    *d1 = l2 ? l2_scalar : ip_dist_scalar;
    *d4 = l2 ? l2_dist4_scalar : ip_dist4_scalar;
#if HNSW_X86
    if (k == YAN_HNSW_KERNEL_AVX512) {
        *d1 = l2 ? l2_avx512 : ip_dist_avx512;
        *d4 = l2 ? l2_dist4_avx512 : ip_dist4_avx512;
    } else if (k == YAN_HNSW_KERNEL_AVX2) {
        *d1 = l2 ? l2_avx2 : ip_dist_avx2;
        *d4 = l2 ? l2_dist4_avx2 : ip_dist4_avx2;
    }
#endif
}

int32_t yan_hnsw_dot_i8(yan_hnsw_kernel k, const int8_t *a, const int8_t *b, int n) {
    if (n < 0 || !yan_hnswk_available(k)) return INT32_MIN;
    q8dot_fn d1;
    q8dot4_fn d4;
    yan_hnswk_pick_q8(yan_hnswk_resolve(k), &d1, &d4);
    (void)d4;
    uint8_t *au = yan_malloc((size_t)n + 1);
    if (!au) return INT32_MIN;
    int32_t bsum = 0;
    for (int i = 0; i < n; i++) au[i] = (uint8_t)(a[i] + 128), bsum += b[i];
    int32_t r = d1(a, au, b, (size_t)n, bsum);
    yan_free(au);
    return r;
}

float yan_hnsw_distance(yan_hnsw_kernel k, yan_hnsw_metric m, const float *a, const float *b, int n) {
    if (n < 0 || !yan_hnswk_available(k)) return NAN;
    dist_fn d1;
    dist4_fn d4;
    yan_hnswk_pick(yan_hnswk_resolve(k), m, &d1, &d4);
    (void)d4;
    return d1(a, b, (size_t)n);
}

