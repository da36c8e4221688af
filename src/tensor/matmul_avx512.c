/* matmul_avx512.c — the AVX-512 kernels (VNNI integer dots, VBMI byte
 * permutes, BF16 dots), chosen at run time by matmul.c and tested against its
 * scalar kernels.
 *
 * Shape of every kernel: one weight row against a tile of up to 8 tokens.
 * The row's blocks are decoded once into registers (nibbles unpacked, scales
 * widened) and reused by each token of the tile; per token the hot loop is a
 * few vpdpbusd / vpdpwssd / FMA. The driver walks rows in blocks of 64 so a
 * block's weights stay in L2 while every token tile passes over them.
 * T = 1 (decode) has its own GEMV kernels: 4 rows at once, prefetching the
 * weight stream ahead into L2. For T >= 16 the full 16 x 16 tiles of q4_0,
 * q8_0, q4_K and q6_K go to AMX when the CPU and kernel allow it
 * (matmul_amx.c); the rest of the rows and tokens stay here.
 *
 * Integer tricks (all exact):
 *  - u8*s8 dots want an unsigned side: q4_0 nibbles and k-quant nibbles are
 *    unsigned as stored; q8_0 weights are fed as w+128 (xor 0x80) and the
 *    activation bias (-128 * block sum) cancels it; q6_K's 6-bit codes are
 *    made signed (q-32) and the activations are stored as x+128 (u8) with the
 *    weight-side constant 128 * sum(sc * (q-32)) folded into the accumulator.
 *  - Sub-block scales of the k-quants multiply the per-lane int32 partial
 *    sums through vpdpwssd (a lane sum of 4 products fits in int16).
 * Needs AVX-512 F/BW/VL/DQ + VNNI + VBMI for the integer types and BF16 for
 * bf16 weights; yan_mm_avx512_has() says which. */
#include "tensor/blocks.h"

#include <immintrin.h>
#include <math.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512vbmi,fma,f16c")))
#define TGT_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

enum { NT_MAX = 8, ROW_BLOCK = 64 };

/* ------------------------------------------------------------ constants */

/* q4_0 group of 4 blocks (72 bytes): block k's qs at 18k+2 .. 18k+17, d at word 9k */
static const uint8_t k_idx_q4_0[64] = {
#define R(k) 18 * k + 2, 18 * k + 3, 18 * k + 4, 18 * k + 5, 18 * k + 6, 18 * k + 7, 18 * k + 8, 18 * k + 9, \
             18 * k + 10, 18 * k + 11, 18 * k + 12, 18 * k + 13, 18 * k + 14, 18 * k + 15, 18 * k + 16, 18 * k + 17
    R(0), R(1), R(2), R(3)
#undef R
};
static const uint16_t k_idxd_q4_0[32] = {0, 0, 0, 0, 9, 9, 9, 9, 18, 18, 18, 18, 27, 27, 27, 27};
/* q8_0 group (136 bytes): first halves at 34k+2.. from (p, p+64); second
 * halves at 34k+18.. from (p+8, p+72); d at word 17k */
static const uint8_t k_idxa_q8_0[64] = {
#define R(k, o) 34 * k + o, 34 * k + o + 1, 34 * k + o + 2, 34 * k + o + 3, 34 * k + o + 4, 34 * k + o + 5, \
                34 * k + o + 6, 34 * k + o + 7, 34 * k + o + 8, 34 * k + o + 9, 34 * k + o + 10, 34 * k + o + 11, \
                34 * k + o + 12, 34 * k + o + 13, 34 * k + o + 14, 34 * k + o + 15
    R(0, 2), R(1, 2), R(2, 2), R(3, 2)};
static const uint8_t k_idxb_q8_0[64] = {R(0, 10), R(1, 10), R(2, 10), R(3, 10)
#undef R
};
static const uint16_t k_idxd_q8_0[32] = {0, 0, 0, 0, 17, 17, 17, 17, 34, 34, 34, 34, 51, 51, 51, 51};
/* k-quant scale lanes: q4_K/q5_K zmm z covers sub-blocks (a, b) in lanes 0-7 / 8-15 */
static const int32_t k_idx_kq[4][16] = {
    {0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2}, {1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3},
    {4, 4, 4, 4, 4, 4, 4, 4, 6, 6, 6, 6, 6, 6, 6, 6}, {5, 5, 5, 5, 5, 5, 5, 5, 7, 7, 7, 7, 7, 7, 7, 7}};
/* q6_K zmm z covers sub-blocks 4z..4z+3, 4 lanes each */
static const int32_t k_idx_q6[4][16] = {
    {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3}, {4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7},
    {8, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 10, 11, 11, 11, 11}, {12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15}};

/* per-16-bit-lane shifts: low 256 bits by s0, high 256 bits by s1 */
TGT INLINE __m512i shifts2(int s0, int s1) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16((short)s0)), _mm256_set1_epi16((short)s1), 1);
}

INLINE const void *act_row(const yan_mm_args *a, int t) {
    return (const char *)a->act + (size_t)t * a->act_stride;
}

/* -------------------------------------------------------------- q4_0 / q8_0 */

typedef struct { __m512i wa, wb; __m512 dw; } a8_w;

TGT INLINE a8_w dec_q4_0(const uint8_t *p) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512i A = _mm512_loadu_si512(p), B = _mm512_maskz_loadu_epi8(0xFF, p + 64);
    __m512i Q = _mm512_permutex2var_epi8(A, _mm512_loadu_si512(k_idx_q4_0), B);
    a8_w w;
    w.wa = _mm512_and_si512(Q, m4);
    w.wb = _mm512_and_si512(_mm512_srli_epi16(Q, 4), m4);
    w.dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(_mm512_loadu_si512(k_idxd_q4_0), A)));
    return w;
}

TGT INLINE a8_w dec_q8_0(const uint8_t *p) {
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    __m512i A = _mm512_loadu_si512(p), B = _mm512_loadu_si512(p + 64);
    __m512i A2 = _mm512_loadu_si512(p + 8), B2 = _mm512_loadu_si512(p + 72);
    a8_w w;
    w.wa = _mm512_xor_si512(_mm512_permutex2var_epi8(A, _mm512_loadu_si512(k_idxa_q8_0), B), bias);
    w.wb = _mm512_xor_si512(_mm512_permutex2var_epi8(A2, _mm512_loadu_si512(k_idxb_q8_0), B2), bias);
    w.dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi16(A, _mm512_loadu_si512(k_idxd_q8_0), B)));
    return w;
}

/* leftover blocks of a row whose block count is not a multiple of 4 */
static float tail_a8(int type, const uint8_t *wb, const yan_a8g *g, int nblk) {
    float s = 0;
    for (int k = 0; k < nblk; k++) {
        int acc = 0;
        float dw;
        if (type == YAN_T_Q4_0) {
            const yan_block_q4_0 *b = (const yan_block_q4_0 *)wb + k;
            acc = g->bias[4 * k];
            for (int j = 0; j < 16; j++) acc += (b->qs[j] & 0xF) * g->xa[16 * k + j] + (b->qs[j] >> 4) * g->xb[16 * k + j];
            dw = yan_f16_to_f32(b->d);
        } else {
            const yan_block_q8_0 *b = (const yan_block_q8_0 *)wb + k;
            for (int j = 0; j < 16; j++) acc += b->qs[j] * g->xa[16 * k + j] + b->qs[j + 16] * g->xb[16 * k + j];
            dw = yan_f16_to_f32(b->d);
        }
        s += dw * g->d[4 * k] * (float)acc;
    }
    return s;
}

#define A8_BODY(NAME, DEC, GB, TYPE)                                                                          \
    TGT INLINE void NAME##_body(const yan_mm_args *a, const uint8_t *w, int t0, const int NT, float *out) {    \
        int64_t nb = a->w->ne0 / 32, ng = nb / 4;                                                            \
        const yan_a8g *xs[NT_MAX];                                                                           \
        __m512 F[NT_MAX];                                                                                    \
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {                                               \
            xs[t] = act_row(a, t0 + t);                                                                      \
            F[t] = _mm512_setzero_ps();                                                                      \
        }                                                                                                    \
        for (int64_t g = 0; g < ng; g++) {                                                                   \
            a8_w q = DEC(w + g * GB);                                                                        \
            _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {                                           \
                const yan_a8g *x = xs[t] + g;                                                                \
                __m512i acc = _mm512_dpbusd_epi32(_mm512_loadu_si512(x->bias), q.wa, _mm512_loadu_si512(x->xa)); \
                acc = _mm512_dpbusd_epi32(acc, q.wb, _mm512_loadu_si512(x->xb));                             \
                F[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(q.dw, _mm512_loadu_ps(x->d)), F[t]); \
            }                                                                                                \
        }                                                                                                    \
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {                                               \
            out[t] = _mm512_reduce_add_ps(F[t]);                                                             \
            if (nb % 4) out[t] += tail_a8(TYPE, w + ng * GB, xs[t] + ng, (int)(nb % 4));                     \
        }                                                                                                    \
    }

A8_BODY(q4_0, dec_q4_0, 72, YAN_T_Q4_0)
A8_BODY(q8_0, dec_q8_0, 136, YAN_T_Q8_0)

/* ------------------------------------------------------------------ q4_K/q5_K */

typedef struct { __m512i q[4], sc[4]; __m256i mpair; __m512 d, dmin; } kq_w;

/* 6-bit scales and mins of a q4_K/q5_K super-block as int32 lanes: sc 0..7, m 8..15 */
TGT INLINE __m512i kq_scales(const uint8_t *s12) {
    uint32_t u0, u1, u2;
    memcpy(&u0, s12, 4), memcpy(&u1, s12 + 4, 4), memcpy(&u2, s12 + 8, 4);
    uint32_t sc03 = u0 & 0x3f3f3f3f, m03 = u1 & 0x3f3f3f3f;
    uint32_t sc47 = (u2 & 0x0f0f0f0f) | ((u0 >> 2) & 0x30303030);
    uint32_t m47 = ((u2 >> 4) & 0x0f0f0f0f) | ((u1 >> 2) & 0x30303030);
    return _mm512_cvtepu8_epi32(_mm_set_epi32((int)m47, (int)m03, (int)sc47, (int)sc03));
}

TGT INLINE void kq_scale_vectors(kq_w *w, __m512i S) {
    for (int z = 0; z < 4; z++) w->sc[z] = _mm512_permutexvar_epi32(_mm512_loadu_si512(k_idx_kq[z]), S);
    w->mpair = _mm512_extracti32x8_epi32(_mm512_or_si512(S, _mm512_slli_epi32(S, 16)), 1);
}

TGT INLINE kq_w dec_q4_K(const uint8_t *p) {
    const yan_block_q4_K *b = (const yan_block_q4_K *)p;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    kq_w w;
    kq_scale_vectors(&w, kq_scales(b->scales));
    for (int h = 0; h < 2; h++) {
        __m512i Q = _mm512_loadu_si512(b->qs + 64 * h);
        w.q[2 * h] = _mm512_and_si512(Q, m4);
        w.q[2 * h + 1] = _mm512_and_si512(_mm512_srli_epi16(Q, 4), m4);
    }
    w.d = _mm512_set1_ps(_cvtsh_ss(b->d));
    w.dmin = _mm512_set1_ps(_cvtsh_ss(b->dmin));
    return w;
}

TGT INLINE kq_w dec_q5_K(const uint8_t *p) {
    const yan_block_q5_K *b = (const yan_block_q5_K *)p;
    const __m512i m4 = _mm512_set1_epi8(0x0F), one = _mm512_set1_epi8(1);
    kq_w w;
    kq_scale_vectors(&w, kq_scales(b->scales));
    __m512i H = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)b->qh));
    for (int h = 0; h < 2; h++) {
        __m512i Q = _mm512_loadu_si512(b->qs + 64 * h);
        /* chunk c = 2h (bytes 0..31) and 2h+1 (32..63): low nibble bit 2c, high bit 2c+1 */
        __m512i hl = _mm512_and_si512(_mm512_srlv_epi16(H, shifts2(4 * h, 4 * h + 2)), one);
        __m512i hh = _mm512_and_si512(_mm512_srlv_epi16(H, shifts2(4 * h + 1, 4 * h + 3)), one);
        w.q[2 * h] = _mm512_or_si512(_mm512_and_si512(Q, m4), _mm512_slli_epi16(hl, 4));
        w.q[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(Q, 4), m4), _mm512_slli_epi16(hh, 4));
    }
    w.d = _mm512_set1_ps(_cvtsh_ss(b->d));
    w.dmin = _mm512_set1_ps(_cvtsh_ss(b->dmin));
    return w;
}

#define KQ_BODY(NAME, DEC, BB)                                                                                \
    TGT INLINE void NAME##_body(const yan_mm_args *a, const uint8_t *w, int t0, const int NT, float *out) {    \
        int64_t nsb = a->w->ne0 / 256;                                                                       \
        const yan_block_q8_K *xs[NT_MAX];                                                                    \
        __m512 F[NT_MAX];                                                                                    \
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {                                               \
            xs[t] = act_row(a, t0 + t);                                                                      \
            F[t] = _mm512_setzero_ps();                                                                      \
        }                                                                                                    \
        for (int64_t i = 0; i < nsb; i++) {                                                                  \
            kq_w q = DEC(w + i * BB);                                                                        \
            _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {                                           \
                const yan_block_q8_K *x = xs[t] + i;                                                         \
                __m512i acc = _mm512_setzero_si512();                                                        \
                _Pragma("GCC unroll 4") for (int z = 0; z < 4; z++) {                                        \
                    __m512i P = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q.q[z],                          \
                                                    _mm512_loadu_si512(x->qs + 64 * z));                     \
                    acc = _mm512_dpwssd_epi32(acc, P, q.sc[z]);                                              \
                }                                                                                            \
                __m256i mm = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)x->bsums), q.mpair);      \
                __m512 dx = _mm512_set1_ps(x->d);                                                            \
                F[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(q.d, dx), F[t]);               \
                F[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(_mm512_zextsi256_si512(mm)), _mm512_mul_ps(q.dmin, dx), F[t]); \
            }                                                                                                \
        }                                                                                                    \
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) out[t] = _mm512_reduce_add_ps(F[t]);            \
    }

KQ_BODY(q4_K, dec_q4_K, 144)
KQ_BODY(q5_K, dec_q5_K, 176)

/* ----------------------------------------------------------------------- q6_K */

typedef struct { __m512i q[4], sc[4], c0; __m512 d; } q6_w;

TGT INLINE q6_w dec_q6_K(const uint8_t *p) {
    const yan_block_q6_K *b = (const yan_block_q6_K *)p;
    const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(3), off = _mm512_set1_epi8(32);
    q6_w w;
    for (int n = 0; n < 2; n++) {
        __m512i Q = _mm512_loadu_si512(b->ql + 64 * n);
        __m512i H = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b->qh + 32 * n)));
        __m512i hl = _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(H, shifts2(0, 2)), m2), 4);
        __m512i hh = _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(H, shifts2(4, 6)), m2), 4);
        w.q[2 * n] = _mm512_sub_epi8(_mm512_or_si512(_mm512_and_si512(Q, m4), hl), off);
        w.q[2 * n + 1] = _mm512_sub_epi8(_mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(Q, 4), m4), hh), off);
    }
    __m512i S = _mm512_and_si512(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)b->scales)), _mm512_set1_epi32(0xFFFF));
    __m512i C = _mm512_setzero_si512();
    const __m512i ones = _mm512_set1_epi8(1);
    for (int z = 0; z < 4; z++) {
        w.sc[z] = _mm512_permutexvar_epi32(_mm512_loadu_si512(k_idx_q6[z]), S);
        C = _mm512_dpwssd_epi32(C, _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, w.q[z]), w.sc[z]);
    }
    w.c0 = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(C, 7)); /* -128 * sum(sc * (q - 32)) */
    w.d = _mm512_set1_ps(_cvtsh_ss(b->d));
    return w;
}

TGT INLINE void q6_K_body(const yan_mm_args *a, const uint8_t *w, int t0, const int NT, float *out) {
    int64_t nsb = a->w->ne0 / 256;
    const yan_block_q8_K *xs[NT_MAX];
    __m512 F[NT_MAX];
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
        xs[t] = act_row(a, t0 + t);
        F[t] = _mm512_setzero_ps();
    }
    for (int64_t i = 0; i < nsb; i++) {
        q6_w q = dec_q6_K(w + i * 210);
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
            const yan_block_q8_K *x = xs[t] + i;
            __m512i acc = q.c0;
            _Pragma("GCC unroll 4") for (int z = 0; z < 4; z++) {
                __m512i P = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_loadu_si512(x->qs + 64 * z), q.q[z]);
                acc = _mm512_dpwssd_epi32(acc, P, q.sc[z]);
            }
            F[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(q.d, _mm512_set1_ps(x->d)), F[t]);
        }
    }
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) out[t] = _mm512_reduce_add_ps(F[t]);
}

/* ------------------------------------------------------------- f32 / f16 */

TGT INLINE __m512 load_w_f32(const void *w, int64_t i, __mmask16 m) { return _mm512_maskz_loadu_ps(m, (const float *)w + i); }
TGT INLINE __m512 load_w_f16(const void *w, int64_t i, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)w + i));
}

#define F_BODY(NAME, LOADW)                                                                                   \
    TGT INLINE void NAME##_body(const yan_mm_args *a, const uint8_t *w, int t0, const int NT, float *out) {    \
        int64_t n = a->w->ne0;                                                                               \
        const float *xs[NT_MAX];                                                                             \
        __m512 F[NT_MAX];                                                                                    \
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {                                               \
            xs[t] = a->x + (int64_t)(t0 + t) * n;                                                            \
            F[t] = _mm512_setzero_ps();                                                                      \
        }                                                                                                    \
        int64_t i = 0;                                                                                       \
        for (; i + 16 <= n; i += 16) {                                                                       \
            __m512 wv = LOADW(w, i, 0xFFFF);                                                                 \
            _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) F[t] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(xs[t] + i), F[t]); \
        }                                                                                                    \
        if (i < n) {                                                                                         \
            __mmask16 m = (__mmask16)((1u << (n - i)) - 1);                                                  \
            __m512 wv = LOADW(w, i, m);                                                                      \
            _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) F[t] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, xs[t] + i), F[t]); \
        }                                                                                                    \
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) out[t] = _mm512_reduce_add_ps(F[t]);            \
    }

F_BODY(f32, load_w_f32)
F_BODY(f16, load_w_f16)

/* ---------------------------------------------------------------------- bf16 */

/* x is the bf16 copy in the scratch; 32 values per vdpbf16ps */
TGT_BF16 INLINE void bf16_body(const yan_mm_args *a, const uint8_t *w, int t0, const int NT, float *out) {
    int64_t n = a->w->ne0;
    const uint16_t *wv = (const uint16_t *)w;
    const uint16_t *xs[NT_MAX];
    __m512 F[NT_MAX];
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
        xs[t] = act_row(a, t0 + t);
        F[t] = _mm512_setzero_ps();
    }
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512bh W = (__m512bh)_mm512_loadu_si512(wv + i);
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) F[t] = _mm512_dpbf16_ps(F[t], W, (__m512bh)_mm512_loadu_si512(xs[t] + i));
    }
    if (i < n) {
        __mmask32 m = (__mmask32)((1ull << (n - i)) - 1);
        __m512bh W = (__m512bh)_mm512_maskz_loadu_epi16(m, wv + i);
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) F[t] = _mm512_dpbf16_ps(F[t], W, (__m512bh)_mm512_maskz_loadu_epi16(m, xs[t] + i));
    }
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) out[t] = _mm512_reduce_add_ps(F[t]);
}

/* ------------------------------------------------------------ GEMV (T = 1) */

/* Decode: each weight byte is read once and used once, so the kernels are
 * bound by instructions per byte. These walk NR rows at once against the one
 * token: the activation loads are shared by the rows, the rows' float chains
 * are independent, and the rows' streams run in parallel (memory-level
 * parallelism). Same per-block arithmetic as the tiled bodies above. */
/* GEMV_PF: prefetch distance in bytes, into L2 (T1): prefetches into L1 tie
 * up its few fill buffers and measured slower from DRAM */
enum { GEMV_NR = 4, GEMV_PF = 8192 };

/* The NR rows are one contiguous range; while a step consumes `bytes` of it
 * (spread over the rows), prefetch as many bytes GEMV_PF further along it, as
 * one linear stream. */
TGT INLINE void prefetch_ahead(const uint8_t *w0, int64_t done, int64_t bytes) { /* past the end: harmless, never faults */
    for (int64_t o = 0; o < bytes; o += 64) _mm_prefetch((const char *)w0 + GEMV_PF + done + o, _MM_HINT_T1);
}

#define GEMV_A8(NAME, DEC, GB, TYPE)                                                                         \
    TGT INLINE void NAME##_gemv_rows(const yan_mm_args *a, const uint8_t *w0, size_t rb, const int NR, float *out) { \
        int64_t nb = a->w->ne0 / 32, ng = nb / 4;                                                            \
        const yan_a8g *x = act_row(a, 0);                                                                    \
        const uint8_t *w[GEMV_NR];                                                                           \
        __m512 F[GEMV_NR];                                                                                   \
        _Pragma("GCC unroll 4") for (int r = 0; r < NR; r++) {                                               \
            w[r] = w0 + (size_t)r * rb;                                                                      \
            F[r] = _mm512_setzero_ps();                                                                      \
        }                                                                                                    \
        for (int64_t g = 0; g < ng; g++, x++) {                                                              \
            __m512i xa = _mm512_loadu_si512(x->xa), xb = _mm512_loadu_si512(x->xb);                          \
            __m512i bias = _mm512_loadu_si512(x->bias);                                                      \
            __m512 xd = _mm512_loadu_ps(x->d);                                                               \
            if (GEMV_PF) prefetch_ahead(w0, g * NR * GB, NR * GB);                                        \
            _Pragma("GCC unroll 4") for (int r = 0; r < NR; r++) {                                           \
                a8_w q = DEC(w[r] + g * GB);                                                                 \
                __m512i acc = _mm512_dpbusd_epi32(bias, q.wa, xa);                                           \
                acc = _mm512_dpbusd_epi32(acc, q.wb, xb);                                                    \
                F[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(q.dw, xd), F[r]);              \
            }                                                                                                \
        }                                                                                                    \
        _Pragma("GCC unroll 4") for (int r = 0; r < NR; r++) {                                               \
            out[r] = _mm512_reduce_add_ps(F[r]);                                                             \
            if (nb % 4) out[r] += tail_a8(TYPE, w[r] + ng * GB, x, (int)(nb % 4));                           \
        }                                                                                                    \
    }

GEMV_A8(q4_0, dec_q4_0, 72, YAN_T_Q4_0)
GEMV_A8(q8_0, dec_q8_0, 136, YAN_T_Q8_0)

#define GEMV_KQ(NAME, DEC, BB)                                                                               \
    TGT INLINE void NAME##_gemv_rows(const yan_mm_args *a, const uint8_t *w0, size_t rb, const int NR, float *out) { \
        int64_t nsb = a->w->ne0 / 256;                                                                       \
        const yan_block_q8_K *x = act_row(a, 0);                                                             \
        const uint8_t *w[GEMV_NR];                                                                           \
        __m512 F[GEMV_NR];                                                                                   \
        _Pragma("GCC unroll 4") for (int r = 0; r < NR; r++) {                                               \
            w[r] = w0 + (size_t)r * rb;                                                                      \
            F[r] = _mm512_setzero_ps();                                                                      \
        }                                                                                                    \
        for (int64_t i = 0; i < nsb; i++, x++) {                                                             \
            __m512i xq[4];                                                                                   \
            _Pragma("GCC unroll 4") for (int z = 0; z < 4; z++) xq[z] = _mm512_loadu_si512(x->qs + 64 * z);  \
            __m256i bs = _mm256_loadu_si256((const __m256i *)x->bsums);                                      \
            __m512 dx = _mm512_set1_ps(x->d);                                                                \
            if (GEMV_PF) prefetch_ahead(w0, i * NR * BB, NR * BB);                                           \
            _Pragma("GCC unroll 4") for (int r = 0; r < NR; r++) {                                           \
                kq_w q = DEC(w[r] + i * BB);                                                                 \
                __m512i acc = _mm512_setzero_si512();                                                        \
                _Pragma("GCC unroll 4") for (int z = 0; z < 4; z++)                                          \
                    acc = _mm512_dpwssd_epi32(acc, _mm512_dpbusd_epi32(_mm512_setzero_si512(), q.q[z], xq[z]), q.sc[z]); \
                __m256i mm = _mm256_madd_epi16(bs, q.mpair);                                                 \
                F[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(q.d, dx), F[r]);               \
                F[r] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(_mm512_zextsi256_si512(mm)), _mm512_mul_ps(q.dmin, dx), F[r]); \
            }                                                                                                \
        }                                                                                                    \
        _Pragma("GCC unroll 4") for (int r = 0; r < NR; r++) out[r] = _mm512_reduce_add_ps(F[r]);            \
    }

GEMV_KQ(q4_K, dec_q4_K, 144)
GEMV_KQ(q5_K, dec_q5_K, 176)

/* For one token the +128 correction of q6_K is cheaper on the activation
 * side: x = stored ^ 0x80 is signed, and the signed products (q - 32) * x are
 * fed to u8*s8 dots as |x| * (sign(x) * (q - 32)), so no constant needs
 * removing and the lanes hold small partial sums (no float cancellation). */
TGT INLINE void q6_K_gemv_rows(const yan_mm_args *a, const uint8_t *w0, size_t rb, const int NR, float *out) {
    int64_t nsb = a->w->ne0 / 256;
    const yan_block_q8_K *x = act_row(a, 0);
    const uint8_t *w[GEMV_NR];
    __m512 F[GEMV_NR];
    _Pragma("GCC unroll 4") for (int r = 0; r < NR; r++) {
        w[r] = w0 + (size_t)r * rb;
        F[r] = _mm512_setzero_ps();
    }
    const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(3), flip = _mm512_set1_epi8((char)0x80);
    const __m512i off = _mm512_set1_epi8(32), zero = _mm512_setzero_si512();
    for (int64_t i = 0; i < nsb; i++, x++) {
        __m512i xq[4];
        __mmask64 neg[4];
        _Pragma("GCC unroll 4") for (int z = 0; z < 4; z++) {
            __m512i v = _mm512_xor_si512(_mm512_loadu_si512(x->qs + 64 * z), flip);
            neg[z] = _mm512_movepi8_mask(v);
            xq[z] = _mm512_abs_epi8(v);
        }
        __m512 dx = _mm512_set1_ps(x->d);
        if (GEMV_PF) prefetch_ahead(w0, i * NR * 210, NR * 210);
        _Pragma("GCC unroll 4") for (int r = 0; r < NR; r++) {
            const yan_block_q6_K *b = (const yan_block_q6_K *)(w[r] + i * 210);
            __m512i q[4];
            _Pragma("GCC unroll 2") for (int n = 0; n < 2; n++) {
                __m512i Q = _mm512_loadu_si512(b->ql + 64 * n);
                __m512i H = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b->qh + 32 * n)));
                __m512i hl = _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(H, shifts2(0, 2)), m2), 4);
                __m512i hh = _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(H, shifts2(4, 6)), m2), 4);
                q[2 * n] = _mm512_sub_epi8(_mm512_or_si512(_mm512_and_si512(Q, m4), hl), off);
                q[2 * n + 1] = _mm512_sub_epi8(_mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(Q, 4), m4), hh), off);
            }
            __m128i sc8 = _mm_loadu_si128((const __m128i *)b->scales);
            __m512i S = _mm512_and_si512(_mm512_cvtepi8_epi32(sc8), _mm512_set1_epi32(0xFFFF));
            __m512i acc = _mm512_setzero_si512();
            _Pragma("GCC unroll 4") for (int z = 0; z < 4; z++) {
                __m512i sc = _mm512_permutexvar_epi32(_mm512_loadu_si512(k_idx_q6[z]), S);
                __m512i ws = _mm512_mask_sub_epi8(q[z], neg[z], zero, q[z]);
                acc = _mm512_dpwssd_epi32(acc, _mm512_dpbusd_epi32(zero, xq[z], ws), sc);
            }
            F[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(b->d)), dx), F[r]);
        }
    }
    _Pragma("GCC unroll 4") for (int r = 0; r < NR; r++) out[r] = _mm512_reduce_add_ps(F[r]);
}

typedef void (*gemv_fn)(const yan_mm_args *a, int64_t r0, int64_t r1);

#define GEMV_FN(NAME)                                                                                        \
    TGT static void NAME##_gemv(const yan_mm_args *a, int64_t r0, int64_t r1) {                              \
        const uint8_t *base = a->w->data;                                                                    \
        size_t rb = a->w->row_bytes;                                                                         \
        float out[GEMV_NR];                                                                                  \
        int64_t r = r0;                                                                                      \
        for (; r + GEMV_NR <= r1; r += GEMV_NR) {                                                            \
            NAME##_gemv_rows(a, base + (size_t)r * rb, rb, GEMV_NR, out);                                    \
            for (int i = 0; i < GEMV_NR; i++) a->y[r + i] = out[i];                                          \
        }                                                                                                    \
        for (; r < r1; r++) {                                                                                \
            NAME##_gemv_rows(a, base + (size_t)r * rb, rb, 1, out);                                          \
            a->y[r] = out[0];                                                                                \
        }                                                                                                    \
    }

GEMV_FN(q4_0)
GEMV_FN(q8_0)
GEMV_FN(q4_K)
GEMV_FN(q5_K)
GEMV_FN(q6_K)

static gemv_fn pick_gemv(int type) {
    switch (type) {
    case YAN_T_Q4_0: return q4_0_gemv;
    case YAN_T_Q8_0: return q8_0_gemv;
    case YAN_T_Q4_K: return q4_K_gemv;
    case YAN_T_Q5_K: return q5_K_gemv;
    case YAN_T_Q6_K: return q6_K_gemv;
    default: return NULL;
    }
}

/* ------------------------------------------------------------------- driver */

typedef void (*row_fn)(const yan_mm_args *a, const uint8_t *w, int t0, int nt, float *out);

#define ROW_FN(NAME, ATTR)                                                                   \
    ATTR static void NAME##_row(const yan_mm_args *a, const uint8_t *w, int t0, int nt, float *out) { \
        switch (nt) {                                                                        \
        case 1: NAME##_body(a, w, t0, 1, out); break;                                        \
        case 2: NAME##_body(a, w, t0, 2, out); break;                                        \
        case 3: NAME##_body(a, w, t0, 3, out); break;                                        \
        case 4: NAME##_body(a, w, t0, 4, out); break;                                        \
        case 5: NAME##_body(a, w, t0, 5, out); break;                                        \
        case 6: NAME##_body(a, w, t0, 6, out); break;                                        \
        case 7: NAME##_body(a, w, t0, 7, out); break;                                        \
        default: NAME##_body(a, w, t0, 8, out); break;                                       \
        }                                                                                    \
    }

ROW_FN(q4_0, TGT)
ROW_FN(q8_0, TGT)
ROW_FN(q4_K, TGT)
ROW_FN(q5_K, TGT)
ROW_FN(q6_K, TGT)
ROW_FN(f32, TGT)
ROW_FN(f16, TGT)
ROW_FN(bf16, TGT_BF16)

static row_fn pick_fn(int type) {
    const yan_cpu *c = yan_cpu_get();
    if (!(c->avx512f && c->avx512bw && c->avx512vl && c->fma && c->f16c)) return NULL;
    bool vnni = c->avx512vnni && c->avx512vbmi;
    switch (type) {
    case YAN_T_Q4_0: return vnni ? q4_0_row : NULL;
    case YAN_T_Q8_0: return vnni ? q8_0_row : NULL;
    case YAN_T_Q4_K: return vnni ? q4_K_row : NULL;
    case YAN_T_Q5_K: return vnni ? q5_K_row : NULL;
    case YAN_T_Q6_K: return vnni ? q6_K_row : NULL;
    case YAN_T_F32: return f32_row;
    case YAN_T_F16: return f16_row;
    case YAN_T_BF16: return c->avx512bf16 ? bf16_row : NULL;
    default: return NULL;
    }
}

bool yan_mm_avx512_has(int type) { return pick_fn(type) != NULL; }

/* rows [r0, r1) x tokens [tb, te) with the tiled row kernels */
static void tiles(const yan_mm_args *a, row_fn fn, int64_t r0, int64_t r1, int tb, int te) {
    float out[NT_MAX];
    for (int64_t rb = r0; rb < r1; rb += ROW_BLOCK) {
        int64_t re = rb + ROW_BLOCK < r1 ? rb + ROW_BLOCK : r1;
        for (int t0 = tb; t0 < te; t0 += NT_MAX) {
            int nt = te - t0 < NT_MAX ? te - t0 : NT_MAX;
            for (int64_t r = rb; r < re; r++) {
                fn(a, (const uint8_t *)a->w->data + (size_t)r * a->w->row_bytes, t0, nt, out);
                for (int t = 0; t < nt; t++) a->y[(int64_t)(t0 + t) * a->ldy + r] = out[t];
            }
        }
    }
}

/* matmul_amx.c */
bool yan_mm_amx(const yan_mm_args *a, int64_t r0, int64_t r1, int T16);

bool yan_mm_avx512(const yan_mm_args *a, int64_t r0, int64_t r1) {
    row_fn fn = pick_fn(a->w->type);
    if (!fn) return false;
    if (a->T == 1) {
        gemv_fn g = pick_gemv(a->w->type);
        if (g) {
            g(a, r0, r1);
            return true;
        }
    }
    /* prompts: the 16-row x 16-token tiles go to AMX where it is there */
    int T16 = a->T / 16 * 16;
    int64_t rA = r0 + (r1 - r0) / 16 * 16;
    if (T16 > 0 && rA > r0 && yan_mm_amx(a, r0, rA, T16)) {
        tiles(a, fn, r0, rA, T16, a->T);
        tiles(a, fn, rA, r1, 0, a->T);
        return true;
    }
    tiles(a, fn, r0, r1, 0, a->T);
    return true;
}

/* ------------------------------------------------------ activation quantizers */

/* Same numbers as the scalar quantizers in quant.c / matmul.c (amax, d =
 * amax/127, q = round-to-nearest-even(x * (1/d))), 16 values per instruction. */

TGT static void quant_a8g(const float *x, yan_a8g *y, int64_t n, int off) {
    int64_t nb = n / 32;
    const __m512 sign = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
    for (int64_t g = 0; g < (nb + 3) / 4; g++) {
        memset(&y[g], 0, sizeof y[g]);
        for (int k = 0; k < 4 && 4 * g + k < nb; k++) {
            const float *xb = x + 32 * (4 * g + k);
            __m512 x0 = _mm512_loadu_ps(xb), x1 = _mm512_loadu_ps(xb + 16);
            float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(x0, sign), _mm512_and_ps(x1, sign)));
            float d = yan_f16_to_f32(yan_f32_to_f16(amax / 127.f)), id = amax ? 127.f / amax : 0.f;
            __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, _mm512_set1_ps(id)));
            __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, _mm512_set1_ps(id)));
            _mm_storeu_si128((__m128i *)(y[g].xa + 16 * k), _mm512_cvtepi32_epi8(q0));
            _mm_storeu_si128((__m128i *)(y[g].xb + 16 * k), _mm512_cvtepi32_epi8(q1));
            for (int l = 0; l < 4; l++) y[g].d[4 * k + l] = d;
            y[g].bias[4 * k] = -off * _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
        }
    }
}

/* mode 0: natural order; 1: yan_q8k_perm order; 2: natural, stored +128 */
TGT static void quant_q8K(const float *x, yan_block_q8_K *y, int64_t n, int mode) {
    const __m512 sign = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
    for (int64_t i = 0; i < n / 256; i++, x += 256) {
        __m512 m = _mm512_setzero_ps();
        for (int j = 0; j < 16; j++) m = _mm512_max_ps(m, _mm512_and_ps(_mm512_loadu_ps(x + 16 * j), sign));
        float amax = _mm512_reduce_max_ps(m), max = 0;
        for (int j = 0; j < 256; j++) /* the first element of largest magnitude, with its sign */
            if (fabsf(x[j]) == amax) {
                max = x[j];
                break;
            }
        float id = amax ? -127.f / max : 0.f;
        y[i].d = amax ? 1.f / id : 0.f;
        __m512 vid = _mm512_set1_ps(id);
        const __m512i lim = _mm512_set1_epi32(127);
        for (int j = 0; j < 16; j++) {
            __m512i q = _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * j), vid)), lim);
            y[i].bsums[j] = (int16_t)_mm512_reduce_add_epi32(q);
            __m128i b = _mm512_cvtepi32_epi8(q);
            int pos = 16 * j;
            if (mode == 1) pos = yan_q8k_perm(16 * j);
            if (mode == 2) b = _mm_xor_si128(b, _mm_set1_epi8((char)0x80));
            _mm_storeu_si128((__m128i *)(y[i].qs + pos), b);
        }
    }
}

bool yan_prepare_avx512(int kind, const float *x, void *dst, int64_t n) {
    const yan_cpu *c = yan_cpu_get();
    if (!(c->avx512f && c->avx512bw && c->avx512vl && c->avx512vnni && c->avx512vbmi && c->fma && c->f16c)) return false;
    switch (kind) {
    case YAN_ACT_A8_Q4: quant_a8g(x, dst, n, 8); return true;
    case YAN_ACT_A8_Q8: quant_a8g(x, dst, n, 128); return true;
    case YAN_ACT_Q8K: quant_q8K(x, dst, n, 0); return true;
    case YAN_ACT_Q8K_P: quant_q8K(x, dst, n, 1); return true;
    case YAN_ACT_Q8K_U: quant_q8K(x, dst, n, 2); return true;
    default: return false;
    }
}
