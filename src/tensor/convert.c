/* convert.c — IEEE half (f16) and bfloat16 conversions, one value at a time in
 * portable C (subnormals, inf and NaN handled; round to nearest even), and
 * whole rows with F16C / AVX-512 where the CPU has them. Used by the f16/bf16
 * weight paths, the f16 KV cache and the quantizers (block scales are f16). */
#include "tensor/tensor.h"

#include <immintrin.h>

/* ------------------------------------------------------------- one value */

static inline uint32_t f2u(float f) {
    union { float f; uint32_t u; } v = {f};
    return v.u;
}
static inline float u2f(uint32_t u) {
    union { uint32_t u; float f; } v = {u};
    return v.f;
}

float yan_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF;
    if (exp == 0x1F) return u2f(sign | 0x7F800000u | (man << 13)); /* inf / nan */
    if (exp == 0) {
        if (man == 0) return u2f(sign);
        /* subnormal: man * 2^-24 is exact in f32 */
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return u2f(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t yan_f32_to_f16(float f) {
    uint32_t x = f2u(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7FFFFFFFu;
    if (ax >= 0x7F800000u) /* inf or nan (keep a quiet nan) */
        return (uint16_t)(sign | 0x7C00 | (ax > 0x7F800000u ? 0x200 | ((ax >> 13) & 0x3FF) : 0));
    if (ax >= 0x477FF000u) return (uint16_t)(sign | 0x7C00); /* rounds to >= 65520: inf */
    if (ax < 0x38800000u) {                                  /* below 2^-14: subnormal or zero */
        if (ax < 0x33000000u) return sign;                    /* < 2^-25: rounds to 0 */
        uint32_t e = ax >> 23, m = (ax & 0x7FFFFF) | 0x800000;
        uint32_t shift = 126 - e; /* value = m * 2^(e-150); half subnormal unit = 2^-24 */
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t e = (ax >> 23) - 112, m = ax & 0x7FFFFF;
    uint32_t q = (e << 10) | (m >> 13), rem = m & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (q & 1))) q++; /* carry into exponent is right */
    return (uint16_t)(sign | q);
}

uint16_t yan_f32_to_bf16(float f) {
    uint32_t x = f2u(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet nan */
    x += 0x7FFF + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

/* ------------------------------------------------------------------ rows */

__attribute__((target("avx2,f16c"))) static void f16_to_f32_f16c(const uint16_t *s, float *d, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
    for (; i < n; i++) d[i] = yan_f16_to_f32(s[i]);
}

__attribute__((target("avx2,f16c"))) static void f32_to_f16_f16c(const float *s, uint16_t *d, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(d + i), _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) d[i] = yan_f32_to_f16(s[i]);
}

void yan_f16_to_f32_row(const uint16_t *src, float *dst, int64_t n) {
    const yan_cpu *c = yan_cpu_get();
    if (c->f16c && c->avx2) {
        f16_to_f32_f16c(src, dst, n);
        return;
    }
    for (int64_t i = 0; i < n; i++) dst[i] = yan_f16_to_f32(src[i]);
}

void yan_f32_to_f16_row(const float *src, uint16_t *dst, int64_t n) {
    const yan_cpu *c = yan_cpu_get();
    if (c->f16c && c->avx2) {
        f32_to_f16_f16c(src, dst, n);
        return;
    }
    for (int64_t i = 0; i < n; i++) dst[i] = yan_f32_to_f16(src[i]);
}

void yan_bf16_to_f32_row(const uint16_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = yan_bf16_to_f32(src[i]);
}

void yan_f32_to_bf16_row(const float *src, uint16_t *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = yan_f32_to_bf16(src[i]);
}
