/* quant.c — the weight types: traits (names, block sizes), dequantization of
 * every supported block format to f32, quantization of f32 rows into them,
 * and the activation quantizers (a8, q8_K) the integer matmul kernels use.
 *
 * Byte layouts are ggml's (blocks.h), so blocks written here load in
 * llama.cpp and blocks from real GGUF files decode here. The k-quant encoders
 * choose each sub-block's scale (and min) by a small search over candidate
 * scales with a weighted least-squares refit, then quantize the sub-block
 * scales against the super-block scale and requantize the values with the
 * scales as stored. Deliberately not here: importance matrices, the i-quants,
 * q2_K/q3_K. Scalar code only; it is not on the per-token hot path except for
 * the activation quantizers, which are O(T * ne0) against the matmul's
 * O(T * ne0 * ne1). */
#include "tensor/blocks.h"

#include <math.h>

/* ----------------------------------------------------------------- traits */

typedef struct {
    const char *name;
    int block;
    size_t bytes;
    bool compute; /* yan can run matmuls with it */
} type_info;

static const type_info *info(int type) {
    static const type_info t[31] = {
        [YAN_T_F32] = {"f32", 1, 4, true},
        [YAN_T_F16] = {"f16", 1, 2, true},
        [YAN_T_Q4_0] = {"q4_0", 32, sizeof(yan_block_q4_0), true},
        [YAN_T_Q4_1] = {"q4_1", 32, sizeof(yan_block_q4_1), true},
        [YAN_T_Q5_0] = {"q5_0", 32, sizeof(yan_block_q5_0), true},
        [YAN_T_Q5_1] = {"q5_1", 32, sizeof(yan_block_q5_1), true},
        [YAN_T_Q8_0] = {"q8_0", 32, sizeof(yan_block_q8_0), true},
        [YAN_T_Q8_1] = {"q8_1", 32, 36, false},
        [YAN_T_Q2_K] = {"q2_K", 256, 84, false},
        [YAN_T_Q3_K] = {"q3_K", 256, 110, false},
        [YAN_T_Q4_K] = {"q4_K", 256, sizeof(yan_block_q4_K), true},
        [YAN_T_Q5_K] = {"q5_K", 256, sizeof(yan_block_q5_K), true},
        [YAN_T_Q6_K] = {"q6_K", 256, sizeof(yan_block_q6_K), true},
        [YAN_T_Q8_K] = {"q8_K", 256, sizeof(yan_block_q8_K), true},
        [YAN_T_BF16] = {"bf16", 1, 2, true},
    };
    if (type < 0 || type >= 31 || !t[type].name) return NULL;
    return &t[type];
}

bool yan_type_supported(int type) {
    const type_info *i = info(type);
    return i && i->compute;
}
const char *yan_type_name(int type) {
    const type_info *i = info(type);
    return i ? i->name : "?";
}
int yan_type_block(int type) {
    const type_info *i = info(type);
    return i ? i->block : 0;
}
size_t yan_type_block_bytes(int type) {
    const type_info *i = info(type);
    return i ? i->bytes : 0;
}
size_t yan_type_row_bytes(int type, int64_t n) {
    const type_info *i = info(type);
    if (!i || n < 0) return 0;
    return (size_t)(n / i->block) * i->bytes;
}

/* ---------------------------------------------------------- dequantization */

static void deq_q4_0(const yan_block_q4_0 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        float d = yan_f16_to_f32(b[i].d);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((b[i].qs[j] & 0xF) - 8) * d;
            y[j + 16] = (float)((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void deq_q4_1(const yan_block_q4_1 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        float d = yan_f16_to_f32(b[i].d), m = yan_f16_to_f32(b[i].m);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)(b[i].qs[j] & 0xF) * d + m;
            y[j + 16] = (float)(b[i].qs[j] >> 4) * d + m;
        }
    }
}

static uint32_t load_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void deq_q5(const uint8_t *qh4, const uint8_t *qs, float d, float m, int off, float *y) {
    uint32_t qh = load_u32(qh4);
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4);
        int hi = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
        y[j] = (float)(lo - off) * d + m;
        y[j + 16] = (float)(hi - off) * d + m;
    }
}

static void deq_q8_0(const yan_block_q8_0 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        float d = yan_f16_to_f32(b[i].d);
        for (int j = 0; j < 32; j++) y[j] = (float)b[i].qs[j] * d;
    }
}

static void deq_q4_K(const yan_block_q4_K *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = yan_f16_to_f32(b[i].d), dmin = yan_f16_to_f32(b[i].dmin);
        const uint8_t *q = b[i].qs;
        for (int c = 0; c < 4; c++, q += 32, y += 64) {
            uint8_t sc, m;
            yan_kq_scale_min(2 * c, b[i].scales, &sc, &m);
            float d1 = d * sc, m1 = dmin * m;
            yan_kq_scale_min(2 * c + 1, b[i].scales, &sc, &m);
            float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++) {
                y[l] = d1 * (float)(q[l] & 0xF) - m1;
                y[l + 32] = d2 * (float)(q[l] >> 4) - m2;
            }
        }
    }
}

static void deq_q5_K(const yan_block_q5_K *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = yan_f16_to_f32(b[i].d), dmin = yan_f16_to_f32(b[i].dmin);
        const uint8_t *q = b[i].qs, *qh = b[i].qh;
        for (int c = 0; c < 4; c++, q += 32, y += 64) {
            uint8_t sc, m;
            yan_kq_scale_min(2 * c, b[i].scales, &sc, &m);
            float d1 = d * sc, m1 = dmin * m;
            yan_kq_scale_min(2 * c + 1, b[i].scales, &sc, &m);
            float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++) {
                int lo = (q[l] & 0xF) + (((qh[l] >> (2 * c)) & 1) << 4);
                int hi = (q[l] >> 4) + (((qh[l] >> (2 * c + 1)) & 1) << 4);
                y[l] = d1 * (float)lo - m1;
                y[l + 32] = d2 * (float)hi - m2;
            }
        }
    }
}

static void deq_q6_K(const yan_block_q6_K *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = yan_f16_to_f32(b[i].d);
        const uint8_t *ql = b[i].ql, *qh = b[i].qh;
        const int8_t *sc = b[i].scales;
        for (int n = 0; n < 2; n++, ql += 64, qh += 32, sc += 8, y += 128) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * (float)sc[is] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
        }
    }
}

static void deq_q8_K(const yan_block_q8_K *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 256)
        for (int j = 0; j < 256; j++) y[j] = b[i].d * (float)b[i].qs[j];
}

void yan_dequantize_row(int type, const void *src, float *dst, int64_t n) {
    int64_t nb = yan_type_block(type) ? n / yan_type_block(type) : 0;
    switch (type) {
    case YAN_T_F32: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case YAN_T_F16: yan_f16_to_f32_row(src, dst, n); break;
    case YAN_T_BF16: yan_bf16_to_f32_row(src, dst, n); break;
    case YAN_T_Q4_0: deq_q4_0(src, dst, nb); break;
    case YAN_T_Q4_1: deq_q4_1(src, dst, nb); break;
    case YAN_T_Q5_0: {
        const yan_block_q5_0 *b = src;
        for (int64_t i = 0; i < nb; i++) deq_q5(b[i].qh, b[i].qs, yan_f16_to_f32(b[i].d), 0, 16, dst + 32 * i);
        break;
    }
    case YAN_T_Q5_1: {
        const yan_block_q5_1 *b = src;
        for (int64_t i = 0; i < nb; i++)
            deq_q5(b[i].qh, b[i].qs, yan_f16_to_f32(b[i].d), yan_f16_to_f32(b[i].m), 0, dst + 32 * i);
        break;
    }
    case YAN_T_Q8_0: deq_q8_0(src, dst, nb); break;
    case YAN_T_Q4_K: deq_q4_K(src, dst, nb); break;
    case YAN_T_Q5_K: deq_q5_K(src, dst, nb); break;
    case YAN_T_Q6_K: deq_q6_K(src, dst, nb); break;
    case YAN_T_Q8_K: deq_q8_K(src, dst, nb); break;
    default: YAN_ASSERT(!"yan_dequantize_row: unsupported type");
    }
}

/* ------------------------------------------------------------ quantization */

static inline int nearest(float x) { return (int)lrintf(x); }
static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static void quant_q8_0(const float *x, yan_block_q8_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.f, id = d ? 1.f / d : 0.f;
        y[i].d = yan_f32_to_f16(d);
        for (int j = 0; j < 32; j++) y[i].qs[j] = (int8_t)nearest(x[j] * id);
    }
}

static void quant_q4_0(const float *x, yan_block_q4_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++)
            if (fabsf(x[j]) > amax) amax = fabsf(x[j]), max = x[j];
        float d = max / -8.f, id = d ? 1.f / d : 0.f;
        y[i].d = yan_f32_to_f16(d);
        for (int j = 0; j < 16; j++) {
            int a = clampi((int)(x[j] * id + 8.5f), 0, 15), b = clampi((int)(x[j + 16] * id + 8.5f), 0, 15);
            y[i].qs[j] = (uint8_t)(a | (b << 4));
        }
    }
}

/* Fit x[i] ~ scale * q[i] - mn with q in [0, nmax], scale >= 0, mn >= 0, by
 * trying candidate inverse scales and refitting (scale, mn) by weighted least
 * squares for each; returns the best scale and writes *mn. */
static float fit_scale_min(int n, const float *x, const float *w, int nmax, float *mn) {
    float lo = x[0], hi = x[0];
    for (int i = 1; i < n; i++) lo = fminf(lo, x[i]), hi = fmaxf(hi, x[i]);
    if (lo > 0) lo = 0;
    if (hi <= lo) {
        *mn = -lo;
        return 0;
    }
    float best_s = (hi - lo) / (float)nmax, best_m = lo, best_err = INFINITY;
    for (int k = -12; k <= 12; k++) {
        float is = ((float)nmax + 0.1f * (float)k) / (hi - lo);
        float sw = 0, sq = 0, sqq = 0, sx = 0, sqx = 0;
        int q[256];
        for (int i = 0; i < n; i++) {
            q[i] = clampi(nearest(is * (x[i] - lo)), 0, nmax);
            sw += w[i], sq += w[i] * (float)q[i], sqq += w[i] * (float)(q[i] * q[i]);
            sx += w[i] * x[i], sqx += w[i] * (float)q[i] * x[i];
        }
        float det = sw * sqq - sq * sq, s, m;
        if (det <= 0) continue;
        s = (sw * sqx - sq * sx) / det;
        m = (sqq * sx - sq * sqx) / det;
        if (m > 0) m = 0, s = sqq > 0 ? sqx / sqq : 0;
        if (s < 0) continue;
        float err = 0;
        for (int i = 0; i < n; i++) {
            float e = s * (float)q[i] + m - x[i];
            err += w[i] * e * e;
        }
        if (err < best_err) best_err = err, best_s = s, best_m = m;
    }
    *mn = -best_m;
    return best_s;
}

/* Fit x[i] ~ scale * q[i] with q in [-nmax, nmax - 1] (signed scale). */
static float fit_scale_sym(int n, const float *x, const float *w, int nmax) {
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), max = x[i];
    if (amax == 0) return 0;
    float best_s = max / -(float)nmax, best_err = INFINITY;
    for (int k = -9; k <= 9; k++) {
        float is = -((float)nmax + 0.1f * (float)k) / max;
        float sqq = 0, sqx = 0;
        int q[256];
        for (int i = 0; i < n; i++) {
            q[i] = clampi(nearest(is * x[i]), -nmax, nmax - 1);
            sqq += w[i] * (float)(q[i] * q[i]), sqx += w[i] * (float)q[i] * x[i];
        }
        if (sqq <= 0) continue;
        float s = sqx / sqq, err = 0;
        for (int i = 0; i < n; i++) {
            float e = s * (float)q[i] - x[i];
            err += w[i] * e * e;
        }
        if (err < best_err) best_err = err, best_s = s;
    }
    return best_s;
}

/* Importance weights of one super-block: bigger values matter more in dots. */
static void kq_weights(const float *x, float *w, int n) {
    float s2 = 0;
    for (int i = 0; i < n; i++) s2 += x[i] * x[i];
    float sigma = sqrtf(s2 / (float)n);
    for (int i = 0; i < n; i++) w[i] = sigma + fabsf(x[i]);
}

/* Shared by q4_K / q5_K: sub-block 6-bit scales and mins packed in scales[12];
 * returns the values' codes in L[256] (0..nmax). */
static void kq_encode_scales(const float *x, int nmax, uint16_t *pd, uint16_t *pdmin, uint8_t *scales, uint8_t *L) {
    float w[256], sc[8], mn[8], max_sc = 0, max_mn = 0;
    kq_weights(x, w, 256);
    for (int j = 0; j < 8; j++) {
        sc[j] = fit_scale_min(32, x + 32 * j, w + 32 * j, nmax, &mn[j]);
        max_sc = fmaxf(max_sc, sc[j]), max_mn = fmaxf(max_mn, mn[j]);
    }
    float d = max_sc / 63.f, dmin = max_mn / 63.f;
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; j++) {
        ls[j] = (uint8_t)clampi(d > 0 ? nearest(sc[j] / d) : 0, 0, 63);
        lm[j] = (uint8_t)clampi(dmin > 0 ? nearest(mn[j] / dmin) : 0, 0, 63);
    }
    for (int j = 0; j < 4; j++) {
        scales[j] = (uint8_t)(ls[j] | ((ls[j + 4] >> 4) << 6));
        scales[j + 4] = (uint8_t)(lm[j] | ((lm[j + 4] >> 4) << 6));
        scales[j + 8] = (uint8_t)((ls[j + 4] & 0xF) | ((lm[j + 4] & 0xF) << 4));
    }
    *pd = yan_f32_to_f16(d);
    *pdmin = yan_f32_to_f16(dmin);
    float dq = yan_f16_to_f32(*pd), dmq = yan_f16_to_f32(*pdmin);
    for (int j = 0; j < 8; j++) {
        uint8_t s, m;
        yan_kq_scale_min(j, scales, &s, &m);
        float ds = dq * s, dm = dmq * m;
        for (int i = 0; i < 32; i++)
            L[32 * j + i] = (uint8_t)(ds > 0 ? clampi(nearest((x[32 * j + i] + dm) / ds), 0, nmax) : 0);
    }
}

static void quant_q4_K(const float *x, yan_block_q4_K *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 256) {
        uint8_t L[256];
        kq_encode_scales(x, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) y[i].qs[32 * c + l] = (uint8_t)(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
    }
}

static void quant_q5_K(const float *x, yan_block_q5_K *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 256) {
        uint8_t L[256];
        kq_encode_scales(x, 31, &y[i].d, &y[i].dmin, y[i].scales, L);
        memset(y[i].qh, 0, 32);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                int a = L[64 * c + l], b = L[64 * c + 32 + l];
                y[i].qs[32 * c + l] = (uint8_t)((a & 0xF) | ((b & 0xF) << 4));
                y[i].qh[l] |= (uint8_t)(((a >> 4) << (2 * c)) | ((b >> 4) << (2 * c + 1)));
            }
    }
}

static void quant_q6_K(const float *x, yan_block_q6_K *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 256) {
        float w[256], sc[16], amax = 0, max = 0;
        kq_weights(x, w, 256);
        for (int j = 0; j < 16; j++) {
            sc[j] = fit_scale_sym(16, x + 16 * j, w + 16 * j, 32);
            if (fabsf(sc[j]) > amax) amax = fabsf(sc[j]), max = sc[j];
        }
        uint8_t L[256];
        if (amax == 0) {
            memset(y[i].ql, 0x88, sizeof y[i].ql); /* code 32 everywhere = value 0 */
            memset(y[i].qh, 0xAA, sizeof y[i].qh);
            memset(y[i].scales, 0, sizeof y[i].scales);
            y[i].d = 0;
            continue;
        }
        float is = -128.f / max;
        for (int j = 0; j < 16; j++) y[i].scales[j] = (int8_t)clampi(nearest(is * sc[j]), -128, 127);
        y[i].d = yan_f32_to_f16(1.f / is);
        float d = yan_f16_to_f32(y[i].d);
        for (int j = 0; j < 16; j++) {
            float ds = d * (float)y[i].scales[j];
            for (int k = 0; k < 16; k++)
                L[16 * j + k] = (uint8_t)(ds != 0 ? clampi(nearest(x[16 * j + k] / ds), -32, 31) + 32 : 32);
        }
        for (int n = 0; n < 2; n++)
            for (int l = 0; l < 32; l++) {
                int q1 = L[128 * n + l], q2 = L[128 * n + l + 32], q3 = L[128 * n + l + 64], q4 = L[128 * n + l + 96];
                y[i].ql[64 * n + l] = (uint8_t)((q1 & 0xF) | ((q3 & 0xF) << 4));
                y[i].ql[64 * n + l + 32] = (uint8_t)((q2 & 0xF) | ((q4 & 0xF) << 4));
                y[i].qh[32 * n + l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
    }
}

void yan_quantize_row_q8_K(const float *x, yan_block_q8_K *y, int64_t n) {
    for (int64_t i = 0; i < n / 256; i++, x += 256) {
        /* as llama.cpp's q8_K: the element of largest magnitude (first one)
         * maps to -127, so scale and values carry its opposite sign */
        float amax = 0, max = 0;
        for (int j = 0; j < 256; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        float id = amax ? -127.f / max : 0.f;
        y[i].d = amax ? 1.f / id : 0.f;
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int j = 16 * g; j < 16 * g + 16; j++) {
                int q = nearest(x[j] * id);
                if (q > 127) q = 127;
                y[i].qs[j] = (int8_t)q;
                s += q;
            }
            y[i].bsums[g] = (int16_t)s;
        }
    }
}

void yan_quantize_row_q8_K_perm(const float *x, yan_block_q8_K *y, int64_t n) {
    yan_quantize_row_q8_K(x, y, n);
    for (int64_t i = 0; i < n / 256; i++) {
        int8_t q[256];
        for (int v = 0; v < 256; v++) q[yan_q8k_perm(v)] = y[i].qs[v];
        memcpy(y[i].qs, q, 256);
    }
}

void yan_quantize_row_a8g(const float *x, yan_a8g *y, int64_t n, int off) {
    int64_t nb = n / 32;
    for (int64_t g = 0; g < (nb + 3) / 4; g++) {
        memset(&y[g], 0, sizeof y[g]);
        for (int k = 0; k < 4 && 4 * g + k < nb; k++) {
            const float *xb = x + 32 * (4 * g + k);
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(xb[j]));
            /* as llama.cpp's q8_0 activations: the scale is stored in f16,
             * the values are rounded with 127/amax */
            float d = yan_f16_to_f32(yan_f32_to_f16(amax / 127.f)), id = amax ? 127.f / amax : 0.f;
            int s = 0;
            for (int j = 0; j < 16; j++) {
                int a = nearest(xb[j] * id), b = nearest(xb[j + 16] * id);
                y[g].xa[16 * k + j] = (int8_t)a;
                y[g].xb[16 * k + j] = (int8_t)b;
                s += a + b;
            }
            for (int l = 0; l < 4; l++) y[g].d[4 * k + l] = d;
            y[g].bias[4 * k] = -off * s;
        }
    }
}

bool yan_quantize_row(int type, const float *src, void *dst, int64_t n) {
    int blk = yan_type_block(type);
    if (!blk || n % blk) return false;
    int64_t nb = n / blk;
    switch (type) {
    case YAN_T_F32: memcpy(dst, src, (size_t)n * sizeof(float)); return true;
    case YAN_T_F16: yan_f32_to_f16_row(src, dst, n); return true;
    case YAN_T_BF16: yan_f32_to_bf16_row(src, dst, n); return true;
    case YAN_T_Q8_0: quant_q8_0(src, dst, nb); return true;
    case YAN_T_Q4_0: quant_q4_0(src, dst, nb); return true;
    case YAN_T_Q4_K: quant_q4_K(src, dst, nb); return true;
    case YAN_T_Q5_K: quant_q5_K(src, dst, nb); return true;
    case YAN_T_Q6_K: quant_q6_K(src, dst, nb); return true;
    case YAN_T_Q8_K: yan_quantize_row_q8_K(src, dst, n); return true;
    default: return false;
    }
}
