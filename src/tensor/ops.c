/* ops.c — the element-wise and reduction ops around the matmuls: RMSNorm,
 * LayerNorm, softmax, SwiGLU, GELU (tanh form), dot / axpy over f32 and f16
 * vectors (attention over an f32 or f16 KV cache) and rotary embeddings in
 * llama.cpp's two layouts. Each has a plain C form; dot and axpy, the ones on
 * the attention hot path, also have AVX-512 / AVX2 forms chosen at run time.
 * Reductions accumulate in double in the scalar forms (as ggml does for norms).
 * All functions are reentrant and allocate nothing. */
#include "tensor/tensor.h"

#include <immintrin.h>
#include <math.h>

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
