/* ops.c — the element-wise and reduction ops around the matmuls: RMSNorm,
 * LayerNorm, softmax, SwiGLU, GELU (tanh form), dot / axpy over f32 and f16
 * vectors (attention over an f32 or f16 KV cache) and rotary embeddings in
 * llama.cpp's two layouts. Each has a plain C form; dot and axpy, the ones on
 * the attention hot path, also have AVX-512 / AVX2 forms chosen at run time.
 * Blocked attention kernels (all scores of a query against a run of f16 keys,
 * softmax, the weighted sum of f16 values) pick their form once per process;
 * the AVX-512 forms give the per-key loops' results to the bit (gcc).
 * Reductions accumulate in double in the scalar forms (as ggml does for norms).
 * All functions are reentrant and allocate nothing. */
#include "tensor/tensor.h"

#include <immintrin.h>
#include <math.h>
#include <pthread.h>

/* ------------------------------------------------------------------ norms */

void yan_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
    if (w)
        for (int64_t i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
    else
        for (int64_t i = 0; i < n; i++) out[i] = x[i] * scale;
}

void yan_layernorm(float *out, const float *x, const float *w, const float *b, int64_t n, float eps) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    float mean = (float)(s / (double)n);
    double v = 0;
    for (int64_t i = 0; i < n; i++) v += (double)(x[i] - mean) * (x[i] - mean);
    float scale = (float)(1.0 / sqrt(v / (double)n + (double)eps));
    for (int64_t i = 0; i < n; i++) {
        float o = (x[i] - mean) * scale;
        if (w) o *= w[i];
        if (b) o += b[i];
        out[i] = o;
    }
}

/* ------------------------------------------------------------ activations */

void yan_softmax(float *x, int64_t n) {
    if (n <= 0) return;
    float max = x[0];
    for (int64_t i = 1; i < n; i++) max = fmaxf(max, x[i]);
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

void yan_silu_mul(float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) a[i] = a[i] / (1.f + expf(-a[i])) * b[i];
}

void yan_gelu(float *x, int64_t n) {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.f + tanhf(k * (v + 0.044715f * v * v * v)));
    }
}

/* ------------------------------------------------------------- dot / axpy */

__attribute__((target("avx512f"))) static float dot_f32_avx512(const float *a, const float *b, int64_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    if (i + 16 <= n) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        i += 16;
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

__attribute__((target("avx512f"))) static float dot_f16_avx512(const float *a, const uint16_t *b, int64_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(b + i))), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16),
                             _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(b + i + 16))), s1);
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    for (; i < n; i++) s += a[i] * yan_f16_to_f32(b[i]);
    return s;
}

__attribute__((target("avx512f"))) static void axpy_f32_avx512(float *y, float a, const float *x, int64_t n) {
    __m512 va = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

__attribute__((target("avx512f"))) static void axpy_f16_avx512(float *y, float a, const uint16_t *x, int64_t n) {
    __m512 va = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))),
                                                _mm512_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * yan_f16_to_f32(x[i]);
}

__attribute__((target("avx2,fma,f16c"))) static float dot_f16_avx2(const float *a, const uint16_t *b, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i))), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i + 8))), s1);
    }
    __m256 s = _mm256_add_ps(s0, s1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float r = _mm_cvtss_f32(h);
    for (; i < n; i++) r += a[i] * yan_f16_to_f32(b[i]);
    return r;
}

__attribute__((target("avx2,fma"))) static float dot_f32_avx2(const float *a, const float *b, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    __m256 s = _mm256_add_ps(s0, s1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float r = _mm_cvtss_f32(h);
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

float yan_dot_f32(const float *a, const float *b, int64_t n) {
    const yan_cpu *c = yan_cpu_get();
    if (c->avx512f) return dot_f32_avx512(a, b, n);
    if (c->avx2 && c->fma) return dot_f32_avx2(a, b, n);
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

float yan_dot_f16(const float *a, const uint16_t *b, int64_t n) {
    const yan_cpu *c = yan_cpu_get();
    if (c->avx512f) return dot_f16_avx512(a, b, n);
    if (c->avx2 && c->fma && c->f16c) return dot_f16_avx2(a, b, n);
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * yan_f16_to_f32(b[i]);
    return s;
}

void yan_axpy_f32(float *y, float a, const float *x, int64_t n) {
    if (yan_cpu_get()->avx512f) {
        axpy_f32_avx512(y, a, x, n);
        return;
    }
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

void yan_axpy_f16(float *y, float a, const uint16_t *x, int64_t n) {
    if (yan_cpu_get()->avx512f) {
        axpy_f16_avx512(y, a, x, n);
        return;
    }
    for (int64_t i = 0; i < n; i++) y[i] += a * yan_f16_to_f32(x[i]);
}

/* ------------------------------------------------------- attention blocks */

/* Blocked attention over a contiguous f16 KV run (one KV head): all scores of
 * one query, a vectorised softmax, and the weighted sum of value rows. The
 * kernel is chosen once (pthread_once); the scalar forms are the reference. */

static void attn_scores_f16_scalar(const float *q, const uint16_t *K, int64_t n_keys, int64_t hd, float scale,
                                   float *out) {
    for (int64_t j = 0; j < n_keys; j++) {
        const uint16_t *k = K + j * hd;
        float s = 0;
        for (int64_t i = 0; i < hd; i++) s += q[i] * yan_f16_to_f32(k[i]);
        out[j] = s * scale;
    }
}

static void attn_values_f16_scalar(float *out, const float *w, const uint16_t *V, int64_t n_keys, int64_t hdv) {
    for (int64_t i = 0; i < hdv; i++) out[i] = 0;
    for (int64_t j = 0; j < n_keys; j++) {
        const uint16_t *v = V + j * hdv;
        for (int64_t i = 0; i < hdv; i++) out[i] += w[j] * yan_f16_to_f32(v[i]);
    }
}

/* Sum each of 8 vectors' lanes: lane k of the result is the sum of a[k]. */
__attribute__((target("avx2,fma,f16c"))) static inline __m256 hsum8x8(__m256 a0, __m256 a1, __m256 a2, __m256 a3,
                                                                      __m256 a4, __m256 a5, __m256 a6, __m256 a7) {
    __m256 t0 = _mm256_hadd_ps(a0, a1), t1 = _mm256_hadd_ps(a2, a3);
    __m256 t2 = _mm256_hadd_ps(a4, a5), t3 = _mm256_hadd_ps(a6, a7);
    t0 = _mm256_hadd_ps(t0, t1);
    t2 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(t0, t2, 0x20), _mm256_permute2f128_ps(t0, t2, 0x31));
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c"))) static inline __m256 fold512(__m512 a) {
    return _mm256_add_ps(_mm512_castps512_ps256(a), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
}

/* Eight keys at a time, each summed exactly as dot_f16_avx512 sums one key
 * (two accumulators over 32-wide steps, then the halving order of gcc's
 * _mm512_reduce_add_ps, then the scalar tail), so the scores are bit-identical
 * to the per-key loop. */
__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c"))) static void attn_scores_f16_avx512(const float *q, const uint16_t *K,
                                                                                   int64_t n_keys, int64_t hd,
                                                                                   float scale, float *out) {
    const int64_t n32 = hd & ~(int64_t)31;
    const __m256 vs = _mm256_set1_ps(scale);
    int64_t j = 0;
    for (; j + 8 <= n_keys; j += 8) {
        const uint16_t *k = K + j * hd;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        __m512 b0 = a0, b1 = a0, b2 = a0, b3 = a0, b4 = a0, b5 = a0, b6 = a0, b7 = a0;
#define YAN_KCV(r, i) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(k + (r) * hd + (i))))
        for (int64_t i = 0; i < n32; i += 32) {
            __m512 q0 = _mm512_loadu_ps(q + i), q1 = _mm512_loadu_ps(q + i + 16);
            a0 = _mm512_fmadd_ps(q0, YAN_KCV(0, i), a0);
            b0 = _mm512_fmadd_ps(q1, YAN_KCV(0, i + 16), b0);
            a1 = _mm512_fmadd_ps(q0, YAN_KCV(1, i), a1);
            b1 = _mm512_fmadd_ps(q1, YAN_KCV(1, i + 16), b1);
            a2 = _mm512_fmadd_ps(q0, YAN_KCV(2, i), a2);
            b2 = _mm512_fmadd_ps(q1, YAN_KCV(2, i + 16), b2);
            a3 = _mm512_fmadd_ps(q0, YAN_KCV(3, i), a3);
            b3 = _mm512_fmadd_ps(q1, YAN_KCV(3, i + 16), b3);
            a4 = _mm512_fmadd_ps(q0, YAN_KCV(4, i), a4);
            b4 = _mm512_fmadd_ps(q1, YAN_KCV(4, i + 16), b4);
            a5 = _mm512_fmadd_ps(q0, YAN_KCV(5, i), a5);
            b5 = _mm512_fmadd_ps(q1, YAN_KCV(5, i + 16), b5);
            a6 = _mm512_fmadd_ps(q0, YAN_KCV(6, i), a6);
            b6 = _mm512_fmadd_ps(q1, YAN_KCV(6, i + 16), b6);
            a7 = _mm512_fmadd_ps(q0, YAN_KCV(7, i), a7);
            b7 = _mm512_fmadd_ps(q1, YAN_KCV(7, i + 16), b7);
        }
#undef YAN_KCV
        /* per key: 512 -> 256 (hi + lo), keys r and r+4 share a register */
        __m256 v0 = fold512(_mm512_add_ps(a0, b0)), v1 = fold512(_mm512_add_ps(a1, b1));
        __m256 v2 = fold512(_mm512_add_ps(a2, b2)), v3 = fold512(_mm512_add_ps(a3, b3));
        __m256 v4 = fold512(_mm512_add_ps(a4, b4)), v5 = fold512(_mm512_add_ps(a5, b5));
        __m256 v6 = fold512(_mm512_add_ps(a6, b6)), v7 = fold512(_mm512_add_ps(a7, b7));
        /* 256 -> 128 (hi + lo): [t0..t3 of key r | t0..t3 of key r+4] */
#define YAN_F128(x, y) _mm256_add_ps(_mm256_permute2f128_ps(x, y, 0x20), _mm256_permute2f128_ps(x, y, 0x31))
        __m256 w0 = YAN_F128(v0, v4), w1 = YAN_F128(v1, v5), w2 = YAN_F128(v2, v6), w3 = YAN_F128(v3, v7);
#undef YAN_F128
        /* (t0 + t2) + (t1 + t3) */
        w0 = _mm256_permute_ps(w0, 0xD8), w1 = _mm256_permute_ps(w1, 0xD8);
        w2 = _mm256_permute_ps(w2, 0xD8), w3 = _mm256_permute_ps(w3, 0xD8);
        __m256 r = _mm256_hadd_ps(_mm256_hadd_ps(w0, w1), _mm256_hadd_ps(w2, w3));
        if (n32 == hd) {
            _mm256_storeu_ps(out + j, _mm256_mul_ps(r, vs));
        } else {
            float t[8];
            _mm256_storeu_ps(t, r);
            for (int rr = 0; rr < 8; rr++) {
                float x = t[rr];
                for (int64_t i = n32; i < hd; i++) x += q[i] * yan_f16_to_f32(k[rr * hd + i]);
                out[j + rr] = x * scale;
            }
        }
    }
    for (; j < n_keys; j++) out[j] = dot_f16_avx512(q, K + j * hd, hd) * scale;
}

__attribute__((target("avx2,fma,f16c"))) static void attn_scores_f16_avx2(const float *q, const uint16_t *K,
                                                                         int64_t n_keys, int64_t hd, float scale,
                                                                         float *out) {
    const int64_t nf = hd & ~(int64_t)7;
    const __m256 vs = _mm256_set1_ps(scale);
    int64_t j = 0;
    for (; j + 8 <= n_keys; j += 8) {
        const uint16_t *k = K + j * hd;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
#define YAN_KCV(r, i) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + (r) * hd + (i))))
        for (int64_t i = 0; i < nf; i += 8) {
            __m256 vq = _mm256_loadu_ps(q + i);
            a0 = _mm256_fmadd_ps(vq, YAN_KCV(0, i), a0);
            a1 = _mm256_fmadd_ps(vq, YAN_KCV(1, i), a1);
            a2 = _mm256_fmadd_ps(vq, YAN_KCV(2, i), a2);
            a3 = _mm256_fmadd_ps(vq, YAN_KCV(3, i), a3);
            a4 = _mm256_fmadd_ps(vq, YAN_KCV(4, i), a4);
            a5 = _mm256_fmadd_ps(vq, YAN_KCV(5, i), a5);
            a6 = _mm256_fmadd_ps(vq, YAN_KCV(6, i), a6);
            a7 = _mm256_fmadd_ps(vq, YAN_KCV(7, i), a7);
        }
#undef YAN_KCV
        __m256 r = hsum8x8(a0, a1, a2, a3, a4, a5, a6, a7);
        _mm256_storeu_ps(out + j, _mm256_mul_ps(r, vs));
        if (nf < hd)
            for (int rr = 0; rr < 8; rr++) {
                float t = 0;
                for (int64_t i = nf; i < hd; i++) t += q[i] * yan_f16_to_f32(k[rr * hd + i]);
                out[j + rr] += t * scale;
            }
    }
    for (; j < n_keys; j++) {
        const uint16_t *k = K + j * hd;
        __m256 a = _mm256_setzero_ps();
        for (int64_t i = 0; i < nf; i += 8)
            a = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + i))), a);
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        float t = _mm_cvtss_f32(h);
        for (int64_t i = nf; i < hd; i++) t += q[i] * yan_f16_to_f32(k[i]);
        out[j] = t * scale;
    }
}

/* out[0..hdv) = sum_j w[j] * V_j, columns in tiles of 64 (4 registers), each
 * column summed in key order as the axpy_f16_avx512 loop does (full 16-wide
 * chunks by FMA, the ragged tail by multiply then add), bit-identical to it. */
__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c"))) static void attn_values_f16_avx512(float *out, const float *w,
                                                                                   const uint16_t *V, int64_t n_keys,
                                                                                   int64_t hdv) {
    int64_t c0 = 0;
    for (; c0 + 64 <= hdv; c0 += 64) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        const uint16_t *v = V + c0;
        for (int64_t j = 0; j < n_keys; j++, v += hdv) {
            __m512 wj = _mm512_set1_ps(w[j]);
            a0 = _mm512_fmadd_ps(wj, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(v + 0))), a0);
            a1 = _mm512_fmadd_ps(wj, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(v + 16))), a1);
            a2 = _mm512_fmadd_ps(wj, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(v + 32))), a2);
            a3 = _mm512_fmadd_ps(wj, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(v + 48))), a3);
        }
        _mm512_storeu_ps(out + c0, a0);
        _mm512_storeu_ps(out + c0 + 16, a1);
        _mm512_storeu_ps(out + c0 + 32, a2);
        _mm512_storeu_ps(out + c0 + 48, a3);
    }
    for (; c0 + 16 <= hdv; c0 += 16) {
        __m512 a0 = _mm512_setzero_ps();
        for (int64_t j = 0; j < n_keys; j++)
            a0 = _mm512_fmadd_ps(_mm512_set1_ps(w[j]),
                                 _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(V + j * hdv + c0))), a0);
        _mm512_storeu_ps(out + c0, a0);
    }
    if (c0 < hdv) {
        const __mmask16 m = (__mmask16)((1u << (hdv - c0)) - 1);
        __m512 a0 = _mm512_setzero_ps();
        for (int64_t j = 0; j < n_keys; j++)
            a0 = _mm512_add_ps(a0, _mm512_mul_ps(_mm512_set1_ps(w[j]),
                                                 _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, V + j * hdv + c0))));
        _mm512_mask_storeu_ps(out + c0, m, a0);
    }
}

__attribute__((target("avx2,fma,f16c"))) static void attn_values_f16_avx2(float *out, const float *w,
                                                                         const uint16_t *V, int64_t n_keys,
                                                                         int64_t hdv) {
    int64_t c0 = 0;
    for (; c0 + 32 <= hdv; c0 += 32) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        const uint16_t *v = V + c0;
        for (int64_t j = 0; j < n_keys; j++, v += hdv) {
            __m256 w0 = _mm256_set1_ps(w[j]);
            a0 = _mm256_fmadd_ps(w0, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + 0))), a0);
            a1 = _mm256_fmadd_ps(w0, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + 8))), a1);
            a2 = _mm256_fmadd_ps(w0, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + 16))), a2);
            a3 = _mm256_fmadd_ps(w0, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + 24))), a3);
        }
        _mm256_storeu_ps(out + c0, a0);
        _mm256_storeu_ps(out + c0 + 8, a1);
        _mm256_storeu_ps(out + c0 + 16, a2);
        _mm256_storeu_ps(out + c0 + 24, a3);
    }
    for (; c0 + 8 <= hdv; c0 += 8) {
        __m256 a0 = _mm256_setzero_ps();
        for (int64_t j = 0; j < n_keys; j++)
            a0 = _mm256_fmadd_ps(_mm256_set1_ps(w[j]),
                                 _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(V + j * hdv + c0))), a0);
        _mm256_storeu_ps(out + c0, a0);
    }
    for (; c0 < hdv; c0++) {
        float a = 0;
        for (int64_t j = 0; j < n_keys; j++) a += w[j] * yan_f16_to_f32(V[j * hdv + c0]);
        out[c0] = a;
    }
}

/* expf of 8 floats evaluated in double: 2^k * 2^r, k = round(x log2 e),
 * |r| <= 1/2, 2^r by its Taylor series to degree 10 (relative error ~2e-13),
 * then one rounding to float: the correctly rounded exp, which is what
 * glibc's expf returns but for the rarest of near-halfway cases. */
__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c"))) static inline __m256 exp8_pd(__m256 xf) {
    __m512d x = _mm512_max_pd(_mm512_cvtps_pd(xf), _mm512_set1_pd(-160.0));
    __m512d z = _mm512_mul_pd(x, _mm512_set1_pd(1.4426950408889634));
    __m512d k = _mm512_roundscale_pd(z, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512d r = _mm512_sub_pd(z, k);
    __m512d p = _mm512_set1_pd(7.054911620801121e-09);
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0178086009239696e-07));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.3215486790144305e-06));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.5252733804059838e-05));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(0.00015403530393381606));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(0.0013333558146428441));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(0.009618129107628477));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(0.055504108664821576));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(0.2402265069591007));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(0.6931471805599453));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0));
    return _mm512_cvtpd_ps(_mm512_scalef_pd(p, k));
}

/* yan_softmax vectorised: the same max, float x - max, exp as above, the
 * sum in double (another order) and one float reciprocal. */
__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c"))) static void attn_softmax_avx512(float *x, int64_t n) {
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(x + i));
    if (i < n) { /* masked load: never touches memory past x[n - 1] */
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        vmax = _mm512_mask_max_ps(vmax, m, vmax, _mm512_maskz_loadu_ps(m, x + i));
    }
    const __m256 mx = _mm256_set1_ps(_mm512_reduce_max_ps(vmax));
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = exp8_pd(_mm256_sub_ps(_mm256_loadu_ps(x + i), mx));
        _mm256_storeu_ps(x + i, e);
        if (i & 8) s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(e));
        else s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(e));
    }
    if (i < n) {
        __mmask8 m = (__mmask8)((1u << (n - i)) - 1);
        __m256 e = exp8_pd(_mm256_sub_ps(_mm256_maskz_loadu_ps(m, x + i), mx));
        _mm256_mask_storeu_ps(x + i, m, e);
        s1 = _mm512_mask_add_pd(s1, m, s1, _mm512_cvtps_pd(e));
    }
    const float inv = (float)(1.0 / _mm512_reduce_add_pd(_mm512_add_pd(s0, s1)));
    const __m512 vi = _mm512_set1_ps(inv);
    for (i = 0; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), vi));
    for (; i < n; i++) x[i] *= inv;
}

typedef void (*attn_scores_fn)(const float *, const uint16_t *, int64_t, int64_t, float, float *);
typedef void (*attn_values_fn)(float *, const float *, const uint16_t *, int64_t, int64_t);
typedef void (*attn_softmax_fn)(float *, int64_t);
static attn_scores_fn attn_scores_impl = attn_scores_f16_scalar;
static attn_values_fn attn_values_impl = attn_values_f16_scalar;
static attn_softmax_fn attn_softmax_impl = yan_softmax;
static pthread_once_t attn_once = PTHREAD_ONCE_INIT;

static void attn_resolve(void) {
    const yan_cpu *c = yan_cpu_get();
    if (c->avx512f && c->avx512bw && c->avx512vl && c->avx2 && c->fma && c->f16c) {
        attn_scores_impl = attn_scores_f16_avx512;
        attn_values_impl = attn_values_f16_avx512;
        attn_softmax_impl = attn_softmax_avx512;
    } else if (c->avx2 && c->fma && c->f16c) {
        attn_scores_impl = attn_scores_f16_avx2;
        attn_values_impl = attn_values_f16_avx2;
    }
}

void yan_attn_scores_f16(const float *q, const uint16_t *K, int64_t n_keys, int64_t head_dim, float scale,
                         float *out) {
    pthread_once(&attn_once, attn_resolve);
    attn_scores_impl(q, K, n_keys, head_dim, scale, out);
}

void yan_attn_values_f16(float *out, const float *w, const uint16_t *V, int64_t n_keys, int64_t head_dim_v) {
    pthread_once(&attn_once, attn_resolve);
    attn_values_impl(out, w, V, n_keys, head_dim_v);
}

void yan_attn_softmax(float *x, int64_t n) {
    pthread_once(&attn_once, attn_resolve);
    if (n > 0) attn_softmax_impl(x, n);
}

void yan_attn_scores_f16_ref(const float *q, const uint16_t *K, int64_t n_keys, int64_t head_dim, float scale,
                             float *out) {
    attn_scores_f16_scalar(q, K, n_keys, head_dim, scale, out);
}

void yan_attn_values_f16_ref(float *out, const float *w, const uint16_t *V, int64_t n_keys, int64_t head_dim_v) {
    attn_values_f16_scalar(out, w, V, n_keys, head_dim_v);
}

/* ------------------------------------------------------------------- rope */

/* theta for pair i is computed as ggml does it — a running product in float,
 * theta_base *= base^(-2/n_rot) — so angles agree with llama.cpp to the bit. */
void yan_rope(float *x, int64_t head_dim, int64_t n_rot, int64_t pos, float freq_base, float freq_scale, bool neox) {
    (void)head_dim;
    const float theta_scale = powf(freq_base, -2.0f / (float)n_rot);
    float theta_base = (float)pos;
    int64_t half = n_rot / 2;
    for (int64_t i = 0; i < half; i++) {
        float theta = freq_scale * theta_base;
        float c = cosf(theta), s = sinf(theta);
        int64_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
        float x0 = x[a], x1 = x[b];
        x[a] = x0 * c - x1 * s;
        x[b] = x0 * s + x1 * c;
        theta_base *= theta_scale;
    }
}
