/* matmul_avx2.c — the AVX2 (+FMA, F16C) kernels for CPUs without AVX-512,
 * chosen at run time by matmul.c and tested against its scalar kernels. They
 * read the same prepared activations as every other path (blocks.h: yan_a8g
 * for q4_0 / q8_0, q8_K permuted for q4_K / q5_K, q8_K stored +128 for q6_K,
 * a bf16 copy for bf16, f32 x for f32 / f16), so the integer sums equal the
 * scalar ones exactly and only the float summation order differs.
 *
 * Shape of every kernel: one weight row against a tile of up to NT_MAX tokens.
 * The row is walked in 32-byte chunks; each chunk is decoded once (nibbles
 * unpacked, scales widened) and then meets every token of the tile, whose
 * int32 / f32 accumulators stay in registers (16 ymm: NT_MAX = 4 leaves room
 * for the decoded chunk). The driver walks rows in blocks of 64 so a block's
 * weights stay in L2 while the token tiles pass over them; with T = 1 the same
 * code is a GEMV that streams each weight row once. Rows are not blocked: the
 * int8 paths are bound by vpmaddubsw / vpmaddwd, which blocking rows would not
 * reduce.
 *
 * Integer tricks (all exact):
 *  - vpmaddubsw wants an unsigned side. q4_0 and k-quant nibbles are unsigned
 *    as stored; q8_0 uses the sign trick |w| * (x * sign(w)), which cannot
 *    saturate because the activations lie in [-127, 127]; the a8g bias is
 *    used only for q4_0 (its -8 offset), as the scalar kernel does.
 *  - q6_K: activations are stored as x + 128 (u8) and the weights made signed
 *    (q - 32, s8); the weight-side constant 128 * sum(sc * (q - 32)) is
 *    subtracted once per super-block and token.
 *  - Sub-block scales multiply the int16 pair sums through vpmaddwd (a pair
 *    sum is at most 2 * 31 * 255 in magnitude, well inside int16).
 * Thread-safety: reentrant; writes only y rows [r0, r1). */
#include "tensor/blocks.h"

#include <immintrin.h>
#include <string.h>

#define TGT __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

enum { NT_MAX = 4, ROW_BLOCK = 64 };

/* ---------------------------------------------------------------- helpers */

TGT INLINE float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

TGT INLINE __m256i load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
TGT INLINE __m128i load128(const void *p) { return _mm_loadu_si128((const __m128i *)p); }

TGT INLINE float f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

INLINE const void *act_row(const yan_mm_args *a, int t) {
    return (const char *)a->act + (size_t)t * a->act_stride;
}

/* -------------------------------------------------------------- q4_0 / q8_0 */

/* Blocks are taken in pairs (2p, 2p+1): weight block 2p in the low 128-bit
 * lane, 2p+1 in the high one, so that the pair's activations are 32
 * contiguous bytes of a yan_a8g (xa for elements 0..15, xb for 16..31) and
 * its scales / biases 8 contiguous lanes. A row with an odd block count ends
 * with a half pair whose high lane is zero (the a8g padding is zero too). */

typedef struct { __m256i wa, wb; __m256 dw; } a8_pair;

TGT INLINE a8_pair dec_q4_0(const uint8_t *b, bool two) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m128i q1 = two ? load128(b + 20) : _mm_setzero_si128();
    __m256i Q = _mm256_inserti128_si256(_mm256_castsi128_si256(load128(b + 2)), q1, 1);
    a8_pair w;
    w.wa = _mm256_and_si256(Q, m4);
    w.wb = _mm256_and_si256(_mm256_srli_epi16(Q, 4), m4);
    w.dw = _mm256_set_m128(_mm_set1_ps(two ? f16(b + 18) : 0.f), _mm_set1_ps(f16(b)));
    return w;
}

TGT INLINE a8_pair dec_q8_0(const uint8_t *b, bool two) {
    __m128i a1 = two ? load128(b + 36) : _mm_setzero_si128(), b1 = two ? load128(b + 52) : _mm_setzero_si128();
    a8_pair w;
    w.wa = _mm256_inserti128_si256(_mm256_castsi128_si256(load128(b + 2)), a1, 1);
    w.wb = _mm256_inserti128_si256(_mm256_castsi128_si256(load128(b + 18)), b1, 1);
    w.dw = _mm256_set_m128(_mm_set1_ps(two ? f16(b + 34) : 0.f), _mm_set1_ps(f16(b)));
    return w;
}

/* int32 lanes of one token's pair: lanes 0-3 block 2p, 4-7 block 2p+1 */
TGT INLINE __m256i dot_q4_0_pair(const a8_pair *w, const int8_t *xa, const int8_t *xb, const int32_t *bias) {
    /* pair sums of nibble * int8 are at most 2 * 15 * 127: the sum of two fits int16 */
    __m256i s = _mm256_add_epi16(_mm256_maddubs_epi16(w->wa, load256(xa)), _mm256_maddubs_epi16(w->wb, load256(xb)));
    return _mm256_add_epi32(_mm256_madd_epi16(s, _mm256_set1_epi16(1)), load256(bias));
}

TGT INLINE __m256i dot_q8_0_pair(const a8_pair *w, const int8_t *xa, const int8_t *xb, const int32_t *bias) {
    (void)bias; /* the bias carries the +128 of the AVX-512 feed, unused here */
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i pa = _mm256_maddubs_epi16(_mm256_abs_epi8(w->wa), _mm256_sign_epi8(load256(xa), w->wa));
    __m256i pb = _mm256_maddubs_epi16(_mm256_abs_epi8(w->wb), _mm256_sign_epi8(load256(xb), w->wb));
    return _mm256_add_epi32(_mm256_madd_epi16(pa, ones), _mm256_madd_epi16(pb, ones));
}

#define A8_BODY(NAME, BB)                                                                                       \
    TGT INLINE void NAME##_body(const yan_mm_args *a, const uint8_t *w, int t0, const int NT, float *out) {     \
        int64_t nb = a->w->ne0 / 32;                                                                          \
        const uint8_t *xs[NT_MAX];                                                                            \
        __m256 F[NT_MAX];                                                                                     \
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {                                                \
            xs[t] = act_row(a, t0 + t);                                                                       \
            F[t] = _mm256_setzero_ps();                                                                       \
        }                                                                                                     \
        for (int64_t p = 0; p < (nb + 1) / 2; p++) {                                                          \
            a8_pair q = dec_##NAME(w + 2 * p * BB, 2 * p + 1 < nb);                                           \
            /* pair p sits in group p/2 at element offset 32 * (p % 2) */                                     \
            size_t go = (size_t)(p / 2) * sizeof(yan_a8g), e = (size_t)(p % 2) * 32;                          \
            _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {                                            \
                const yan_a8g *x = (const yan_a8g *)(xs[t] + go);                                             \
                __m256i acc = dot_##NAME##_pair(&q, x->xa + e, x->xb + e, x->bias + e / 4);                   \
                F[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), _mm256_mul_ps(q.dw, _mm256_loadu_ps(x->d + e / 4)), F[t]); \
            }                                                                                                 \
        }                                                                                                     \
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) out[t] = hsum_ps(F[t]);                          \
    }

A8_BODY(q4_0, 18)
A8_BODY(q8_0, 34)

/* ------------------------------------------------------------------ q4_K/q5_K */

/* 6-bit scales and mins of a q4_K/q5_K super-block: sc[0..7], m[0..7] */
INLINE void kq_scales(const uint8_t *s12, uint8_t sc[8], uint8_t m[8]) {
    uint32_t u0, u1, u2;
    memcpy(&u0, s12, 4), memcpy(&u1, s12 + 4, 4), memcpy(&u2, s12 + 8, 4);
    uint32_t v[4] = {u0 & 0x3f3f3f3f, (u2 & 0x0f0f0f0f) | ((u0 >> 2) & 0x30303030), u1 & 0x3f3f3f3f,
                     ((u2 >> 4) & 0x0f0f0f0f) | ((u1 >> 2) & 0x30303030)};
    memcpy(sc, v, 8), memcpy(m, v + 2, 8);
}

/* Offsets in the permuted q8_K (yan_q8k_perm) of sub-blocks 2c (low nibbles
 * of qs chunk c) and 2c+1 (high nibbles). */
static const int k_perm_lo[4] = {0, 32, 128, 160}, k_perm_hi[4] = {64, 96, 192, 224};

/* HIGH: q5_K's fifth bits (qh) or not (q4_K) */
TGT INLINE void kq_body(const yan_mm_args *a, const uint8_t *w, int t0, const int NT, float *out, const bool HIGH) {
    const size_t BB = HIGH ? sizeof(yan_block_q5_K) : sizeof(yan_block_q4_K);
    const __m256i m4 = _mm256_set1_epi8(0x0F), b4 = _mm256_set1_epi8(0x10);
    int64_t nsb = a->w->ne0 / 256;
    const yan_block_q8_K *xs[NT_MAX];
    __m256 F[NT_MAX];
    _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {
        xs[t] = act_row(a, t0 + t);
        F[t] = _mm256_setzero_ps();
    }
    for (int64_t i = 0; i < nsb; i++) {
        const uint8_t *b = w + (size_t)i * BB;
        const uint8_t *scales = b + 4, *qs = HIGH ? b + 48 : b + 16;
        uint8_t sc[8], m[8];
        kq_scales(scales, sc, m);
        __m256i acc[NT_MAX];
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_si256();
        __m256i H = HIGH ? load256(b + 16) : _mm256_setzero_si256();
        _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) {
            __m256i Q = load256(qs + 32 * c);
            __m256i lo = _mm256_and_si256(Q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(Q, 4), m4);
            if (HIGH) { /* bit 2c of qh[l] -> bit 4 of the low value, bit 2c+1 -> of the high one */
                lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(H, 4), b4));
                hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(H, 3), b4));
                H = _mm256_srli_epi16(H, 2);
            }
            __m256i slo = _mm256_set1_epi16(sc[2 * c]), shi = _mm256_set1_epi16(sc[2 * c + 1]);
            _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {
                __m256i pl = _mm256_maddubs_epi16(lo, load256(xs[t][i].qs + k_perm_lo[c]));
                __m256i ph = _mm256_maddubs_epi16(hi, load256(xs[t][i].qs + k_perm_hi[c]));
                acc[t] = _mm256_add_epi32(acc[t], _mm256_add_epi32(_mm256_madd_epi16(pl, slo), _mm256_madd_epi16(ph, shi)));
            }
        }
        /* mins: lane j of madd(bsums, (m0,m0,m1,m1,..)) = m_j * (bsums[2j] + bsums[2j+1]) */
        __m128i mv = _mm_loadl_epi64((const __m128i *)m);
        __m256i mpair = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mv, mv));
        float d = f16(b), dmin = f16(b + 2);
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {
            const yan_block_q8_K *x = &xs[t][i];
            __m256i mm = _mm256_madd_epi16(load256(x->bsums), mpair);
            F[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[t]), _mm256_set1_ps(d * x->d), F[t]);
            F[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mm), _mm256_set1_ps(dmin * x->d), F[t]);
        }
    }
    _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) out[t] = hsum_ps(F[t]);
}

TGT INLINE void q4_K_body(const yan_mm_args *a, const uint8_t *w, int t0, const int NT, float *out) {
    kq_body(a, w, t0, NT, out, false);
}
TGT INLINE void q5_K_body(const yan_mm_args *a, const uint8_t *w, int t0, const int NT, float *out) {
    kq_body(a, w, t0, NT, out, true);
}

/* ----------------------------------------------------------------------- q6_K */

/* Register r (0..7) of a super-block holds values 32r..32r+31 = half h = r/4,
 * quarter g = r%4: low 4 bits from ql[64h + 32(g&1) + l] (>> 4 if g&2), high 2
 * bits from bits 2g, 2g+1 of qh[32h + l]; sub-blocks 2r (int16 lanes 0-7 of a
 * pair sum) and 2r+1 (lanes 8-15). */
static const int8_t k_q6_sc_shuf[32] = {0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,
                                        2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3};

TGT INLINE void q6_K_body(const yan_mm_args *a, const uint8_t *w, int t0, const int NT, float *out) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x30), off = _mm256_set1_epi8(32);
    const __m256i ones8 = _mm256_set1_epi8(1), shuf = load256(k_q6_sc_shuf);
    int64_t nsb = a->w->ne0 / 256;
    const yan_block_q8_K *xs[NT_MAX];
    __m256 F[NT_MAX];
    _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {
        xs[t] = act_row(a, t0 + t);
        F[t] = _mm256_setzero_ps();
    }
    for (int64_t i = 0; i < nsb; i++) {
        const yan_block_q6_K *b = (const yan_block_q6_K *)(w + (size_t)i * sizeof(yan_block_q6_K));
        __m256i S = _mm256_cvtepi8_epi16(load128(b->scales)); /* int16 lanes: scale j at lane j */
        __m256i acc[NT_MAX], C = _mm256_setzero_si256();
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_si256();
        _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
            __m256i Q0 = load256(b->ql + 64 * h), Q1 = load256(b->ql + 64 * h + 32), Hb = load256(b->qh + 32 * h);
            _Pragma("GCC unroll 4") for (int g = 0; g < 4; g++) {
                int r = 4 * h + g;
                __m256i Q = (g & 1) ? Q1 : Q0;
                __m256i lo = (g & 2) ? _mm256_and_si256(_mm256_srli_epi16(Q, 4), m4) : _mm256_and_si256(Q, m4);
                __m256i hb = g == 0   ? _mm256_slli_epi16(Hb, 4)
                             : g == 1 ? _mm256_slli_epi16(Hb, 2)
                             : g == 2 ? Hb
                                      : _mm256_srli_epi16(Hb, 2);
                __m256i q = _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_and_si256(hb, m2)), off); /* q6 - 32 */
                /* scales 2r, 2r+1 (int16 pair = dword r) broadcast to lanes 0-7 / 8-15 */
                __m256i sv = _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(S, _mm256_set1_epi32(r)), shuf);
                C = _mm256_add_epi32(C, _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, q), sv));
                _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {
                    __m256i P = _mm256_maddubs_epi16(load256(xs[t][i].qs + 32 * r), q); /* (x+128) * (q-32) */
                    acc[t] = _mm256_add_epi32(acc[t], _mm256_madd_epi16(P, sv));
                }
            }
        }
        C = _mm256_slli_epi32(C, 7); /* 128 * sum(sc * (q - 32)) */
        float d = f16((const uint8_t *)&b->d);
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++)
            F[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(acc[t], C)), _mm256_set1_ps(d * xs[t][i].d), F[t]);
    }
    _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) out[t] = hsum_ps(F[t]);
}

/* ------------------------------------------------------------ f32 / f16 / bf16 */

/* w: the weight row; x: (for bf16) the bf16 copy in the scratch, else f32 x.
 * Two accumulators per token (16 values a step) hide the FMA latency at T = 1. */
TGT INLINE __m256 ld_f32(const void *p, int64_t i) { return _mm256_loadu_ps((const float *)p + i); }
TGT INLINE __m256 ld_f16(const void *p, int64_t i) { return _mm256_cvtph_ps(load128((const uint16_t *)p + i)); }
TGT INLINE __m256 ld_bf16(const void *p, int64_t i) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load128((const uint16_t *)p + i)), 16));
}
INLINE float s_f32(const void *p, int64_t i) { return ((const float *)p)[i]; }
INLINE float s_f16(const void *p, int64_t i) { return yan_f16_to_f32(((const uint16_t *)p)[i]); }
INLINE float s_bf16(const void *p, int64_t i) { return yan_bf16_to_f32(((const uint16_t *)p)[i]); }

#define F_BODY(NAME, LDW, LDX, SW, SX, XROW)                                                                  \
    TGT INLINE void NAME##_body(const yan_mm_args *a, const uint8_t *w, int t0, const int NT, float *out) {     \
        int64_t n = a->w->ne0, i = 0;                                                                         \
        const void *xs[NT_MAX];                                                                               \
        __m256 F0[NT_MAX], F1[NT_MAX];                                                                        \
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {                                                \
            xs[t] = XROW;                                                                                     \
            F0[t] = F1[t] = _mm256_setzero_ps();                                                              \
        }                                                                                                     \
        for (; i + 16 <= n; i += 16) {                                                                        \
            __m256 w0 = LDW(w, i), w1 = LDW(w, i + 8);                                                        \
            _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {                                            \
                F0[t] = _mm256_fmadd_ps(w0, LDX(xs[t], i), F0[t]);                                            \
                F1[t] = _mm256_fmadd_ps(w1, LDX(xs[t], i + 8), F1[t]);                                        \
            }                                                                                                 \
        }                                                                                                     \
        if (i + 8 <= n) {                                                                                     \
            __m256 w0 = LDW(w, i);                                                                            \
            _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) F0[t] = _mm256_fmadd_ps(w0, LDX(xs[t], i), F0[t]); \
            i += 8;                                                                                           \
        }                                                                                                     \
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {                                                \
            float s = hsum_ps(_mm256_add_ps(F0[t], F1[t]));                                                   \
            for (int64_t j = i; j < n; j++) s += SW(w, j) * SX(xs[t], j);                                     \
            out[t] = s;                                                                                       \
        }                                                                                                     \
    }

F_BODY(f32, ld_f32, ld_f32, s_f32, s_f32, a->x + (int64_t)(t0 + t) * n)
F_BODY(f16, ld_f16, ld_f32, s_f16, s_f32, a->x + (int64_t)(t0 + t) * n)
F_BODY(bf16, ld_bf16, ld_bf16, s_bf16, s_bf16, act_row(a, t0 + t))

/* ------------------------------------------------------------------- driver */

typedef void (*row_fn)(const yan_mm_args *a, const uint8_t *w, int t0, int nt, float *out);

#define ROW_FN(NAME)                                                                                \
    TGT static void NAME##_row(const yan_mm_args *a, const uint8_t *w, int t0, int nt, float *out) { \
        switch (nt) {                                                                               \
        case 1: NAME##_body(a, w, t0, 1, out); break;                                               \
        case 2: NAME##_body(a, w, t0, 2, out); break;                                               \
        case 3: NAME##_body(a, w, t0, 3, out); break;                                               \
        default: NAME##_body(a, w, t0, 4, out); break;                                              \
        }                                                                                           \
    }

ROW_FN(q4_0)
ROW_FN(q8_0)
ROW_FN(q4_K)
ROW_FN(q5_K)
ROW_FN(q6_K)
ROW_FN(f32)
ROW_FN(f16)
ROW_FN(bf16)

static row_fn pick_fn(int type) {
    const yan_cpu *c = yan_cpu_get();
    if (!(c->avx2 && c->fma && c->f16c)) return NULL;
    switch (type) {
    case YAN_T_Q4_0: return q4_0_row;
    case YAN_T_Q8_0: return q8_0_row;
    case YAN_T_Q4_K: return q4_K_row;
    case YAN_T_Q5_K: return q5_K_row;
    case YAN_T_Q6_K: return q6_K_row;
    case YAN_T_F32: return f32_row;
    case YAN_T_F16: return f16_row;
    case YAN_T_BF16: return bf16_row;
    default: return NULL;
    }
}

bool yan_mm_avx2_has(int type) { return pick_fn(type) != NULL; }

bool yan_mm_avx2(const yan_mm_args *a, int64_t r0, int64_t r1) {
    row_fn fn = pick_fn(a->w->type);
    if (!fn) return false;
    float out[NT_MAX];
    for (int64_t rb = r0; rb < r1; rb += ROW_BLOCK) {
        int64_t re = rb + ROW_BLOCK < r1 ? rb + ROW_BLOCK : r1;
        for (int t0 = 0; t0 < a->T; t0 += NT_MAX) {
            int nt = a->T - t0 < NT_MAX ? a->T - t0 : NT_MAX;
            for (int64_t r = rb; r < re; r++) {
                fn(a, (const uint8_t *)a->w->data + (size_t)r * a->w->row_bytes, t0, nt, out);
                for (int t = 0; t < nt; t++) a->y[(int64_t)(t0 + t) * a->ldy + r] = out[t];
            }
        }
    }
    return true;
}
