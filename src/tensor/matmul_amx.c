/* matmul_amx.c — prompt-processing kernels for q4_0 / q8_0 weights on Intel
 * AMX (TDPBSSD: 16x16 int32 tiles of signed int8 dots), called by the
 * AVX-512 driver (matmul_avx512.c) for the full 16-row x 16-token tiles of a
 * matmul with T >= 16; everything else stays on the VNNI kernels.
 *
 * Numbers: for each 32-value block the tile computes the exact integer sum
 * of w * x (q4_0 nibbles made signed, nibble - 8; q8_0 as stored), so the
 * block's contribution d_w * d_x * sum is the one the VNNI and scalar kernels
 * add; only the float summation order over blocks differs.
 *
 * Layout: the a8g activation groups are read in place (tile A = 16 tokens x
 * 16 bytes, once for the first half of a block, xa, once for the second, xb,
 * row stride = the token stride). Weights are decoded once per call into B
 * tiles (4 rows of 64 bytes: for K-quad kr, weight row n's bytes 4kr..4kr+3
 * at 4n) for a panel of AMX_RB rows and AMX_KC blocks on the stack, then
 * reused by every 16-token tile.
 *
 * Linux hands out AMX tile state only after arch_prctl(ARCH_REQ_XCOMP_PERM,
 * XFEATURE_XTILEDATA); yan_amx_ok asks once (thread-safe: the request is
 * idempotent and process-wide) and says no when the CPU, the kernel or the
 * YAN_NO_AMX environment variable refuses. */
#include "tensor/blocks.h"

#include <immintrin.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#define YAN_HAVE_AMX 1
#endif

bool yan_amx_ok(void);
bool yan_mm_amx(const yan_mm_args *a, int64_t r0, int64_t r1, int T16);

#ifdef YAN_HAVE_AMX

#define TGT_AMX __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))

enum { AMX_RB = 64, AMX_KC = 32 }; /* rows per panel (4 tiles of 16), blocks per K chunk */
enum { KQ_KC = 4 };                  /* k-quant super-blocks per K chunk */

static bool amx_probe(void) {
    const char *e = getenv("YAN_NO_AMX");
    if (e && *e && *e != '0') return false;
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    if (!((d >> 24) & 1) || !((d >> 25) & 1)) return false; /* amx-tile, amx-int8 */
    if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1)) return false; /* osxsave */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    if (((lo >> 17) & 3) != 3) return false; /* XTILECFG, XTILEDATA enabled by the OS */
    /* ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 */
    return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}

bool yan_amx_ok(void) {
    static _Atomic int state; /* 0 unknown, 1 yes, -1 no (a cache of the process's state) */
    int s = atomic_load_explicit(&state, memory_order_acquire);
    if (s == 0) {
        s = amx_probe() ? 1 : -1;
        atomic_store_explicit(&state, s, memory_order_release);
    }
    return s > 0;
}

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_cfg;

/* tiles: 0-3 C (token tile x 16 rows of panel part p), 4 A (xa), 5 A (xb), 6 B (lo half), 7 B (hi half) */
/* kbytes: the K of one tdpbssd (16 for a8g halves, 32 for k-quant sub-blocks) */
TGT_AMX static void amx_config(int kbytes) {
    amx_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 4; i++) cfg.rows[i] = 16, cfg.colsb[i] = 64;
    cfg.rows[4] = cfg.rows[5] = 16, cfg.colsb[4] = cfg.colsb[5] = (uint16_t)kbytes;
    cfg.rows[6] = cfg.rows[7] = (uint8_t)(kbytes / 4), cfg.colsb[6] = cfg.colsb[7] = 64;
    /* as asm with a memory operand: gcc 12 can drop the stores to cfg ahead of the builtin */
    __asm__ volatile("ldtilecfg %0" : : "m"(cfg));
}

/* Transpose 16 rows of 16 bytes (v[n]) into a B tile: out[64*kr + 4n + j] = v[n][4kr + j]. */
TGT_AMX static inline void to_btile(const __m128i *v, int8_t *out) {
    static const int32_t idx[16] = {0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29};
    __m512i Z[4];
    for (int i = 0; i < 4; i++) {
        __m512i z = _mm512_castsi128_si512(v[4 * i]);
        z = _mm512_inserti32x4(z, v[4 * i + 1], 1);
        z = _mm512_inserti32x4(z, v[4 * i + 2], 2);
        Z[i] = _mm512_inserti32x4(z, v[4 * i + 3], 3);
    }
    __m512i ia = _mm512_loadu_si512(idx), ib = _mm512_add_epi32(ia, _mm512_set1_epi32(2));
    __m512i pa01 = _mm512_permutex2var_epi32(Z[0], ia, Z[1]), pa23 = _mm512_permutex2var_epi32(Z[2], ia, Z[3]);
    __m512i pb01 = _mm512_permutex2var_epi32(Z[0], ib, Z[1]), pb23 = _mm512_permutex2var_epi32(Z[2], ib, Z[3]);
    _mm512_storeu_si512(out, _mm512_shuffle_i64x2(pa01, pa23, 0x44));
    _mm512_storeu_si512(out + 64, _mm512_shuffle_i64x2(pa01, pa23, 0xEE));
    _mm512_storeu_si512(out + 128, _mm512_shuffle_i64x2(pb01, pb23, 0x44));
    _mm512_storeu_si512(out + 192, _mm512_shuffle_i64x2(pb01, pb23, 0xEE));
}

/* Decode blocks [k0, k0 + nk) of 16 rows starting at w (stride rb) into B
 * tiles bt (per block: 256 bytes lo half, 256 bytes hi half) and scales dw
 * (per block: 16 floats). */
TGT_AMX static void decode_panel(int type, const uint8_t *w, size_t rb, int64_t k0, int nk, int8_t *bt, float *dw) {
    const __m128i m4 = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
    for (int k = 0; k < nk; k++) {
        __m128i lo[16], hi[16];
        uint16_t d[16];
        for (int n = 0; n < 16; n++) {
            const uint8_t *row = w + (size_t)n * rb;
            if (type == YAN_T_Q4_0) {
                const yan_block_q4_0 *b = (const yan_block_q4_0 *)row + k0 + k;
                __m128i q = _mm_loadu_si128((const __m128i *)b->qs);
                lo[n] = _mm_sub_epi8(_mm_and_si128(q, m4), eight);
                hi[n] = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m4), eight);
                d[n] = b->d;
            } else {
                const yan_block_q8_0 *b = (const yan_block_q8_0 *)row + k0 + k;
                lo[n] = _mm_loadu_si128((const __m128i *)b->qs);
                hi[n] = _mm_loadu_si128((const __m128i *)(b->qs + 16));
                d[n] = b->d;
            }
        }
        to_btile(lo, bt + 512 * k);
        to_btile(hi, bt + 512 * k + 256);
        _mm512_storeu_ps(dw + 16 * k, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)d)));
    }
}

/* One 16-token tile (tokens t0..t0+15) against the decoded panel part p
 * (rows r..r+15), blocks k0..k0+nk: y += or y = (first) the float sums. */
TGT_AMX static void tile_run(const yan_mm_args *a, int t0, int64_t k0, int nk, const int8_t *bt, const float *dw,
                             int64_t r, bool first) {
    __m512 F[16];
    _Pragma("GCC unroll 16") for (int t = 0; t < 16; t++) F[t] = _mm512_setzero_ps();
    int32_t cbuf[256] __attribute__((aligned(64)));
    const size_t st = a->act_stride;
    const uint8_t *act0 = (const uint8_t *)a->act + (size_t)t0 * st;
    for (int k = 0; k < nk; k++) {
        int64_t kb = k0 + k;
        const yan_a8g *g = (const yan_a8g *)act0 + kb / 4;
        int kk = (int)(kb % 4);
        _tile_zero(0);
        _tile_loadd(4, g->xa + 16 * kk, st);
        _tile_loadd(5, g->xb + 16 * kk, st);
        _tile_loadd(6, bt + 512 * k, 64);
        _tile_loadd(7, bt + 512 * k + 256, 64);
        _tile_dpbssd(0, 4, 6);
        _tile_dpbssd(0, 5, 7);
        _tile_stored(0, cbuf, 64);
        __m512 dv = _mm512_loadu_ps(dw + 16 * k);
        const float *dx = g->d + 4 * kk;
        _Pragma("GCC unroll 16") for (int t = 0; t < 16; t++) {
            __m512 s = _mm512_mul_ps(dv, _mm512_set1_ps(*(const float *)((const uint8_t *)dx + (size_t)t * st)));
            F[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(cbuf + 16 * t)), s, F[t]);
        }
    }
    _Pragma("GCC unroll 16") for (int t = 0; t < 16; t++) {
        float *y = a->y + (int64_t)(t0 + t) * a->ldy + r;
        _mm512_storeu_ps(y, first ? F[t] : _mm512_add_ps(_mm512_loadu_ps(y), F[t]));
    }
}

/* ------------------------------------------------------------------ q4_K */

/* A q4_K panel of 16 rows, super-blocks [i0, i0 + ni): per super-block 8 B
 * tiles of K = 32 (sub-block j: nibbles of chunk j/2, low for even j), the
 * rows' 6-bit scales per sub-block (int32), mins as (m, m) int16 pairs, d, dmin. */
typedef struct {
    int8_t bt[KQ_KC][8][512];
    int32_t sc[KQ_KC][8][16];
    int32_t mp[KQ_KC][8][16];
    float d[KQ_KC][16], dmin[KQ_KC][16];
} kq_panel;

TGT_AMX static void decode_q4_K(const uint8_t *w, size_t rb, int64_t i0, int ni, kq_panel *P) {
    const __m128i m4 = _mm_set1_epi8(0x0F);
    for (int i = 0; i < ni; i++) {
        uint16_t d[16], dm[16];
        for (int c = 0; c < 4; c++) {
            __m128i lo0[16], lo1[16], hi0[16], hi1[16];
            for (int n = 0; n < 16; n++) {
                const yan_block_q4_K *b = (const yan_block_q4_K *)(w + (size_t)n * rb) + i0 + i;
                __m128i q0 = _mm_loadu_si128((const __m128i *)(b->qs + 32 * c));
                __m128i q1 = _mm_loadu_si128((const __m128i *)(b->qs + 32 * c + 16));
                lo0[n] = _mm_and_si128(q0, m4), lo1[n] = _mm_and_si128(q1, m4);
                hi0[n] = _mm_and_si128(_mm_srli_epi16(q0, 4), m4), hi1[n] = _mm_and_si128(_mm_srli_epi16(q1, 4), m4);
                if (c == 0) {
                    d[n] = b->d, dm[n] = b->dmin;
                    for (int j = 0; j < 8; j++) {
                        uint8_t sc, m;
                        yan_kq_scale_min(j, b->scales, &sc, &m);
                        P->sc[i][j][n] = sc;
                        P->mp[i][j][n] = (int32_t)((uint32_t)m | ((uint32_t)m << 16));
                    }
                }
            }
            to_btile(lo0, P->bt[i][2 * c]);
            to_btile(lo1, P->bt[i][2 * c] + 256);
            to_btile(hi0, P->bt[i][2 * c + 1]);
            to_btile(hi1, P->bt[i][2 * c + 1] + 256);
        }
        _mm512_storeu_ps(P->d[i], _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)d)));
        _mm512_storeu_ps(P->dmin[i], _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)dm)));
    }
}

TGT_AMX static void tile_q4_K(const yan_mm_args *a, int t0, int64_t i0, int ni, const kq_panel *P, int64_t r,
                              bool first) {
    __m512 F[16];
    _Pragma("GCC unroll 16") for (int t = 0; t < 16; t++) F[t] = _mm512_setzero_ps();
    int32_t cbuf[8][256] __attribute__((aligned(64)));
    const size_t st = a->act_stride;
    const uint8_t *act0 = (const uint8_t *)a->act + (size_t)t0 * st;
    for (int i = 0; i < ni; i++) {
        const yan_block_q8_K *x = (const yan_block_q8_K *)act0 + i0 + i;
        for (int h = 0; h < 2; h++) {
            /* sub-blocks 4h..4h+3 into C tiles 0..3 */
#define KQ_SUB(cT, j, aT, bT)                                                             \
    _tile_zero(cT);                                                                       \
    _tile_loadd(aT, x->qs + yan_q8k_perm(32 * (j)), st);                                  \
    _tile_loadd(bT, P->bt[i][j], 64);                                                     \
    _tile_dpbssd(cT, aT, bT);                                                             \
    _tile_stored(cT, cbuf[j], 64);
            KQ_SUB(0, 4 * h + 0, 4, 6)
            KQ_SUB(1, 4 * h + 1, 5, 7)
            KQ_SUB(2, 4 * h + 2, 4, 6)
            KQ_SUB(3, 4 * h + 3, 5, 7)
#undef KQ_SUB
        }
        __m512 dv = _mm512_loadu_ps(P->d[i]), dmv = _mm512_loadu_ps(P->dmin[i]);
        __m512i sc[8], mp[8];
        _Pragma("GCC unroll 8") for (int j = 0; j < 8; j++) {
            sc[j] = _mm512_loadu_si512(P->sc[i][j]);
            mp[j] = _mm512_loadu_si512(P->mp[i][j]);
        }
        _Pragma("GCC unroll 16") for (int t = 0; t < 16; t++) {
            const yan_block_q8_K *xt = (const yan_block_q8_K *)((const uint8_t *)x + (size_t)t * st);
            __m512i acc = _mm512_mullo_epi32(_mm512_load_si512(cbuf[0] + 16 * t), sc[0]);
            __m512i mm = _mm512_setzero_si512();
            _Pragma("GCC unroll 8") for (int j = 0; j < 8; j++) {
                if (j) acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(_mm512_load_si512(cbuf[j] + 16 * t), sc[j]));
                int32_t pr;
                memcpy(&pr, xt->bsums + 2 * j, 4);
                mm = _mm512_dpwssd_epi32(mm, _mm512_set1_epi32(pr), mp[j]);
            }
            __m512 dx = _mm512_set1_ps(xt->d);
            F[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(dv, dx), F[t]);
            F[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(mm), _mm512_mul_ps(dmv, dx), F[t]);
        }
    }
    _Pragma("GCC unroll 16") for (int t = 0; t < 16; t++) {
        float *y = a->y + (int64_t)(t0 + t) * a->ldy + r;
        _mm512_storeu_ps(y, first ? F[t] : _mm512_add_ps(_mm512_loadu_ps(y), F[t]));
    }
}

TGT_AMX static void amx_q4_K(const yan_mm_args *a, int64_t r0, int64_t r1, int T16) {
    enum { NP = 2 };
    kq_panel P[NP];
    int64_t nsb = a->w->ne0 / 256;
    const uint8_t *base = a->w->data;
    size_t rb = a->w->row_bytes;
    amx_config(32);
    for (int64_t rp = r0; rp < r1; rp += 16 * NP) {
        int np = (int)((r1 - rp < 16 * NP ? r1 - rp : 16 * NP) / 16);
        for (int64_t i0 = 0; i0 < nsb; i0 += KQ_KC) {
            int ni = (int)(nsb - i0 < KQ_KC ? nsb - i0 : KQ_KC);
            for (int p = 0; p < np; p++) decode_q4_K(base + (size_t)(rp + 16 * p) * rb, rb, i0, ni, &P[p]);
            for (int t0 = 0; t0 < T16; t0 += 16)
                for (int p = 0; p < np; p++) tile_q4_K(a, t0, i0, ni, &P[p], rp + 16 * p, i0 == 0);
        }
    }
    _tile_release();
}

/* ------------------------------------------------------------------ q6_K */

/* A q6_K panel of 16 rows: per super-block 16 B tiles of K = 16 (sub-block
 * j: codes q - 32 as s8), the rows' int8 scales per sub-block (int32), the
 * constant -128 * sum_j sc_j * sum(q - 32) that the +128 of the stored
 * activations adds (as the VNNI kernel's c0), and d. */
typedef struct {
    int8_t bt[KQ_KC][16][256];
    int32_t sc[KQ_KC][16][16];
    int32_t c0[KQ_KC][16];
    float d[KQ_KC][16];
} q6_panel;

TGT_AMX static void decode_q6_K(const uint8_t *w, size_t rb, int64_t i0, int ni, q6_panel *P) {
    const __m128i m4 = _mm_set1_epi8(0x0F), m2 = _mm_set1_epi8(3), off = _mm_set1_epi8(32);
    for (int i = 0; i < ni; i++) {
        uint16_t d[16];
        int32_t c0[16] = {0};
        for (int j = 0; j < 16; j++) {
            int h = j / 8, g = (j % 8) / 2, half = j % 2;
            __m128i v[16];
            for (int n = 0; n < 16; n++) {
                const yan_block_q6_K *b = (const yan_block_q6_K *)(w + (size_t)n * rb) + i0 + i;
                __m128i ql = _mm_loadu_si128((const __m128i *)(b->ql + 64 * h + 32 * (g & 1) + 16 * half));
                __m128i qh = _mm_loadu_si128((const __m128i *)(b->qh + 32 * h + 16 * half));
                __m128i lo = (g & 2) ? _mm_and_si128(_mm_srli_epi16(ql, 4), m4) : _mm_and_si128(ql, m4);
                __m128i hi = _mm_slli_epi16(_mm_and_si128(_mm_srl_epi16(qh, _mm_cvtsi32_si128(2 * g)), m2), 4);
                __m128i q = _mm_or_si128(lo, hi);
                __m128i sad = _mm_sad_epu8(q, _mm_setzero_si128());
                int sq = _mm_cvtsi128_si32(sad) + _mm_extract_epi16(sad, 4) - 16 * 32; /* sum(q - 32) */
                c0[n] += b->scales[j] * sq;
                v[n] = _mm_sub_epi8(q, off);
                P->sc[i][j][n] = b->scales[j];
                if (j == 0) d[n] = b->d;
            }
            to_btile(v, P->bt[i][j]);
        }
        for (int n = 0; n < 16; n++) P->c0[i][n] = -128 * c0[n];
        _mm512_storeu_ps(P->d[i], _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)d)));
    }
}

TGT_AMX static void tile_q6_K(const yan_mm_args *a, int t0, int64_t i0, int ni, const q6_panel *P, int64_t r,
                              bool first) {
    __m512 F[16];
    _Pragma("GCC unroll 16") for (int t = 0; t < 16; t++) F[t] = _mm512_setzero_ps();
    int32_t cbuf[16][256] __attribute__((aligned(64)));
    const size_t st = a->act_stride;
    const uint8_t *act0 = (const uint8_t *)a->act + (size_t)t0 * st;
    for (int i = 0; i < ni; i++) {
        const yan_block_q8_K *x = (const yan_block_q8_K *)act0 + i0 + i;
        for (int h = 0; h < 4; h++) {
#define Q6_SUB(cT, j, aT, bT)                                                             \
    _tile_zero(cT);                                                                       \
    _tile_loadd(aT, x->qs + 16 * (j), st);                                                \
    _tile_loadd(bT, P->bt[i][j], 64);                                                     \
    _tile_dpbusd(cT, aT, bT);                                                             \
    _tile_stored(cT, cbuf[j], 64);
            Q6_SUB(0, 4 * h + 0, 4, 6)
            Q6_SUB(1, 4 * h + 1, 5, 7)
            Q6_SUB(2, 4 * h + 2, 4, 6)
            Q6_SUB(3, 4 * h + 3, 5, 7)
#undef Q6_SUB
        }
        __m512 dv = _mm512_loadu_ps(P->d[i]);
        __m512i c0 = _mm512_loadu_si512(P->c0[i]);
        _Pragma("GCC unroll 16") for (int t = 0; t < 16; t++) {
            const yan_block_q8_K *xt = (const yan_block_q8_K *)((const uint8_t *)x + (size_t)t * st);
            __m512i acc = c0;
            _Pragma("GCC unroll 16") for (int j = 0; j < 16; j++)
                acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(_mm512_load_si512(cbuf[j] + 16 * t),
                                                               _mm512_loadu_si512(P->sc[i][j])));
            F[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(dv, _mm512_set1_ps(xt->d)), F[t]);
        }
    }
    _Pragma("GCC unroll 16") for (int t = 0; t < 16; t++) {
        float *y = a->y + (int64_t)(t0 + t) * a->ldy + r;
        _mm512_storeu_ps(y, first ? F[t] : _mm512_add_ps(_mm512_loadu_ps(y), F[t]));
    }
}

TGT_AMX static void amx_q6_K(const yan_mm_args *a, int64_t r0, int64_t r1, int T16) {
    enum { NP = 2 };
    q6_panel P[NP];
    int64_t nsb = a->w->ne0 / 256;
    const uint8_t *base = a->w->data;
    size_t rb = a->w->row_bytes;
    amx_config(16);
    for (int64_t rp = r0; rp < r1; rp += 16 * NP) {
        int np = (int)((r1 - rp < 16 * NP ? r1 - rp : 16 * NP) / 16);
        for (int64_t i0 = 0; i0 < nsb; i0 += KQ_KC) {
            int ni = (int)(nsb - i0 < KQ_KC ? nsb - i0 : KQ_KC);
            for (int p = 0; p < np; p++) decode_q6_K(base + (size_t)(rp + 16 * p) * rb, rb, i0, ni, &P[p]);
            for (int t0 = 0; t0 < T16; t0 += 16)
                for (int p = 0; p < np; p++) tile_q6_K(a, t0, i0, ni, &P[p], rp + 16 * p, i0 == 0);
        }
    }
    _tile_release();
}

/* Rows [r0, r1) (a multiple of 16 rows) x tokens [0, T16) (a multiple of 16). */
TGT_AMX bool yan_mm_amx(const yan_mm_args *a, int64_t r0, int64_t r1, int T16) {
    int type = a->w->type;
    if ((type != YAN_T_Q4_0 && type != YAN_T_Q8_0 && type != YAN_T_Q4_K && type != YAN_T_Q6_K) || !yan_amx_ok())
        return false;
    if (type == YAN_T_Q6_K) {
        amx_q6_K(a, r0, r1, T16);
        return true;
    }
    if (type == YAN_T_Q4_K) {
        amx_q4_K(a, r0, r1, T16);
        return true;
    }
    int64_t nb = a->w->ne0 / 32;
    if (nb % 4) return false; /* a8g groups are padded; keep it simple */
    int8_t bt[AMX_RB / 16][AMX_KC * 512] __attribute__((aligned(64)));
    float dw[AMX_RB / 16][AMX_KC * 16] __attribute__((aligned(64)));
    const uint8_t *base = a->w->data;
    size_t rb = a->w->row_bytes;
    amx_config(16);
    for (int64_t rp = r0; rp < r1; rp += AMX_RB) {
        int np = (int)((r1 - rp < AMX_RB ? r1 - rp : AMX_RB) / 16);
        for (int64_t k0 = 0; k0 < nb; k0 += AMX_KC) {
            int nk = (int)(nb - k0 < AMX_KC ? nb - k0 : AMX_KC);
            for (int p = 0; p < np; p++) decode_panel(type, base + (size_t)(rp + 16 * p) * rb, rb, k0, nk, bt[p], dw[p]);
            for (int t0 = 0; t0 < T16; t0 += 16)
                for (int p = 0; p < np; p++) tile_run(a, t0, k0, nk, bt[p], dw[p], rp + 16 * p, k0 == 0);
        }
    }
    _tile_release();
    return true;
}

#else

bool yan_amx_ok(void) { return false; }
bool yan_mm_amx(const yan_mm_args *a, int64_t r0, int64_t r1, int T16) {
    (void)a, (void)r0, (void)r1, (void)T16;
    return false;
}

#endif
