/* matmul.c — y = W x for every weight type: activation preparation (quantize
 * x once per matmul into the partner format), the scalar reference kernels,
 * a dequantize-and-dot fallback for the types without integer kernels, and
 * the run-time dispatch to the AVX-512 / AVX2 kernels (matmul_avx512.c,
 * matmul_avx2.c), which must agree with the scalar kernels here up to float
 * summation order (tests/unit/test_matmul.c).
 *
 * Activation formats (blocks.h): q4_0, q8_0 -> a8g (groups of 4 blocks);
 * q6_K -> q8_K stored +128; q4_K, q5_K -> q8_K with permuted values; bf16 -> a bf16 copy of x (for vdpbf16ps);
 * f32, f16 and the fallback types read the f32 x directly.
 * Thread-safety: all functions are reentrant; rows [r0, r1) of y are written
 * only by the call that owns them. Nothing allocates except yan_matmul_ref
 * and, once per thread, the f16 tile buffer of the GEMM path.
 *
 * Many tokens (prompt processing) with f32 or f16 weights go through the f32
 * GEMM (gemm.h) instead of row dots: f32 rows directly, f16 rows converted
 * GEMM_ROWS at a time into a per-thread f32 tile (the conversion is paid once
 * per row for all T tokens). */
#include "tensor/blocks.h"
#include "tensor/gemm.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>

/* ------------------------------------------------------------ activations */

yan_act_kind yan_act_for(int type) {
    switch (type) {
    case YAN_T_Q4_0: return YAN_ACT_A8_Q4;
    case YAN_T_Q8_0: return YAN_ACT_A8_Q8;
    case YAN_T_Q4_K:
    case YAN_T_Q5_K: return YAN_ACT_Q8K_P;
    case YAN_T_Q6_K: return YAN_ACT_Q8K_U;
    case YAN_T_BF16: return YAN_ACT_BF16;
    default: return YAN_ACT_F32;
    }
}

size_t yan_act_row_bytes(int type, int64_t ne0) {
    size_t b;
    switch (yan_act_for(type)) {
    case YAN_ACT_A8_Q4:
    case YAN_ACT_A8_Q8: b = (size_t)((ne0 / 32 + 3) / 4) * sizeof(yan_a8g); break;
    case YAN_ACT_Q8K:
    case YAN_ACT_Q8K_U:
    case YAN_ACT_Q8K_P: b = (size_t)(ne0 / 256) * sizeof(yan_block_q8_K); break;
    case YAN_ACT_BF16: b = (size_t)ne0 * 2; break;
    default: return 0;
    }
    return (b + 63) & ~(size_t)63; /* rows start on cache lines */
}

size_t yan_matmul_scratch_bytes(const yan_mat *w, int T) {
    return yan_act_row_bytes(w->type, w->ne0) * (size_t)(T > 0 ? T : 0);
}

void yan_matmul_prepare(const yan_mat *w, const float *x, int T, int t0, int t1, void *scratch) {
    (void)T;
    size_t stride = yan_act_row_bytes(w->type, w->ne0);
    yan_act_kind k = yan_act_for(w->type);
    for (int t = t0; t < t1; t++) {
        const float *xt = x + (int64_t)t * w->ne0;
        void *dst = (char *)scratch + (size_t)t * stride;
        if (yan_prepare_avx512(k, xt, dst, w->ne0)) continue;
        switch (k) {
        case YAN_ACT_A8_Q4: yan_quantize_row_a8g(xt, dst, w->ne0, 8); break;
        case YAN_ACT_A8_Q8: yan_quantize_row_a8g(xt, dst, w->ne0, 128); break;
        case YAN_ACT_Q8K: yan_quantize_row_q8_K(xt, dst, w->ne0); break;
        case YAN_ACT_Q8K_P: yan_quantize_row_q8_K_perm(xt, dst, w->ne0); break;
        case YAN_ACT_Q8K_U: {
            yan_block_q8_K *b = dst;
            yan_quantize_row_q8_K(xt, b, w->ne0);
            for (int64_t i = 0; i < w->ne0 / 256; i++)
                for (int j = 0; j < 256; j++) b[i].qs[j] = (int8_t)((uint8_t)b[i].qs[j] ^ 0x80);
            break;
        }
        case YAN_ACT_BF16: yan_f32_to_bf16_row(xt, dst, w->ne0); break;
        default: break;
        }
    }
}

/* ------------------------------------------------------ scalar dot products */

/* One weight row (n values) against one prepared activation row. These are
 * the reference the SIMD kernels are tested against: integer sums per block,
 * then one float multiply-add per block. */

static float dot_q4_0(const void *wr, const void *ar, int64_t n) {
    const yan_block_q4_0 *w = wr;
    const yan_a8g *a = ar;
    float s = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        const yan_a8g *g = &a[i / 4];
        int k = (int)(i % 4), acc = g->bias[4 * k]; /* -8 * sum of the block's int8s */
        for (int j = 0; j < 16; j++)
            acc += (w[i].qs[j] & 0xF) * g->xa[16 * k + j] + (w[i].qs[j] >> 4) * g->xb[16 * k + j];
        s += yan_f16_to_f32(w[i].d) * g->d[4 * k] * (float)acc;
    }
    return s;
}

static float dot_q8_0(const void *wr, const void *ar, int64_t n) {
    const yan_block_q8_0 *w = wr;
    const yan_a8g *a = ar;
    float s = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        const yan_a8g *g = &a[i / 4];
        int k = (int)(i % 4), acc = 0;
        for (int j = 0; j < 16; j++) acc += w[i].qs[j] * g->xa[16 * k + j] + w[i].qs[j + 16] * g->xb[16 * k + j];
        s += yan_f16_to_f32(w[i].d) * g->d[4 * k] * (float)acc;
    }
    return s;
}

static float dot_q4_K(const void *wr, const void *ar, int64_t n) {
    const yan_block_q4_K *w = wr;
    const yan_block_q8_K *a = ar;
    float s = 0;
    for (int64_t i = 0; i < n / 256; i++) {
        int sumq = 0, summ = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            yan_kq_scale_min(j, w[i].scales, &sc, &m);
            const uint8_t *q = w[i].qs + 32 * (j / 2);
            const int8_t *x = a[i].qs + yan_q8k_perm(32 * j); /* permuted activations */
            int acc = 0;
            for (int l = 0; l < 32; l++) acc += ((j & 1) ? (q[l] >> 4) : (q[l] & 0xF)) * x[l];
            sumq += sc * acc;
            summ += m * (a[i].bsums[2 * j] + a[i].bsums[2 * j + 1]);
        }
        s += a[i].d * (yan_f16_to_f32(w[i].d) * (float)sumq - yan_f16_to_f32(w[i].dmin) * (float)summ);
    }
    return s;
}

static float dot_q5_K(const void *wr, const void *ar, int64_t n) {
    const yan_block_q5_K *w = wr;
    const yan_block_q8_K *a = ar;
    float s = 0;
    for (int64_t i = 0; i < n / 256; i++) {
        int sumq = 0, summ = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            yan_kq_scale_min(j, w[i].scales, &sc, &m);
            const uint8_t *q = w[i].qs + 32 * (j / 2);
            const int8_t *x = a[i].qs + yan_q8k_perm(32 * j);
            int acc = 0;
            for (int l = 0; l < 32; l++) {
                int v = ((j & 1) ? (q[l] >> 4) : (q[l] & 0xF)) | (((w[i].qh[l] >> j) & 1) << 4);
                acc += v * x[l];
            }
            sumq += sc * acc;
            summ += m * (a[i].bsums[2 * j] + a[i].bsums[2 * j + 1]);
        }
        s += a[i].d * (yan_f16_to_f32(w[i].d) * (float)sumq - yan_f16_to_f32(w[i].dmin) * (float)summ);
    }
    return s;
}

static float dot_q6_K(const void *wr, const void *ar, int64_t n) {
    const yan_block_q6_K *w = wr;
    const yan_block_q8_K *a = ar;
    float s = 0;
    for (int64_t i = 0; i < n / 256; i++) {
        int sumq = 0;
        for (int j = 0; j < 16; j++) {
            /* value v = 16j + k: half h = v/128, within-half index u = v%128,
             * quarter g = u/32, lane l = u%32 */
            int acc = 0;
            for (int k = 0; k < 16; k++) {
                int v = 16 * j + k, h = v / 128, g = (v % 128) / 32, l = v % 32;
                const uint8_t *ql = w[i].ql + 64 * h, *qh = w[i].qh + 32 * h;
                int lo = (g & 1) ? ql[l + 32] : ql[l];
                lo = (g & 2) ? lo >> 4 : lo & 0xF;
                int q = lo | (((qh[l] >> (2 * g)) & 3) << 4);
                acc += q * ((uint8_t)a[i].qs[v] - 128); /* stored biased */
            }
            sumq += w[i].scales[j] * (acc - 32 * a[i].bsums[j]);
        }
        s += a[i].d * yan_f16_to_f32(w[i].d) * (float)sumq;
    }
    return s;
}

static float dot_f32(const void *wr, const void *ar, int64_t n) {
    const float *w = wr, *x = ar;
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += w[i] * x[i];
    return s;
}

static float dot_f16(const void *wr, const void *ar, int64_t n) {
    const uint16_t *w = wr;
    const float *x = ar;
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += yan_f16_to_f32(w[i]) * x[i];
    return s;
}

static float dot_bf16(const void *wr, const void *ar, int64_t n) {
    const uint16_t *w = wr, *x = ar; /* x: the bf16 copy, as the fast path uses */
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += yan_bf16_to_f32(w[i]) * yan_bf16_to_f32(x[i]);
    return s;
}

/* Any other dequantizable type: decode 256 values at a time, dot with f32 x. */
static float dot_generic(int type, const void *wr, const float *x, int64_t n) {
    float buf[256];
    int blk = yan_type_block(type);
    int64_t chunk = 256 / blk * blk;
    size_t cb = yan_type_row_bytes(type, chunk);
    float s = 0;
    for (int64_t i = 0; i < n; i += chunk) {
        int64_t m = n - i < chunk ? n - i : chunk;
        yan_dequantize_row(type, (const char *)wr + (size_t)(i / chunk) * cb, buf, m);
        for (int64_t j = 0; j < m; j++) s += buf[j] * x[i + j];
    }
    return s;
}

static void mm_scalar(const yan_mm_args *a, int64_t r0, int64_t r1) {
    const yan_mat *w = a->w;
    float (*dot)(const void *, const void *, int64_t) = NULL;
    switch (w->type) {
    case YAN_T_Q4_0: dot = dot_q4_0; break;
    case YAN_T_Q8_0: dot = dot_q8_0; break;
    case YAN_T_Q4_K: dot = dot_q4_K; break;
    case YAN_T_Q5_K: dot = dot_q5_K; break;
    case YAN_T_Q6_K: dot = dot_q6_K; break;
    case YAN_T_F32: dot = dot_f32; break;
    case YAN_T_F16: dot = dot_f16; break;
    case YAN_T_BF16: dot = dot_bf16; break;
    default: break;
    }
    for (int64_t r = r0; r < r1; r++) {
        const void *wr = (const char *)w->data + (size_t)r * w->row_bytes;
        for (int t = 0; t < a->T; t++) {
            float v;
            if (!dot)
                v = dot_generic(w->type, wr, a->x + (int64_t)t * w->ne0, w->ne0);
            else if (a->act)
                v = dot(wr, (const char *)a->act + (size_t)t * a->act_stride, w->ne0);
            else
                v = dot(wr, a->x + (int64_t)t * w->ne0, w->ne0);
            a->y[(int64_t)t * a->ldy + r] = v;
        }
    }
}

/* --------------------------------------------------------------- dispatch */

/* The kernel family a call would use: 2 = AVX-512, 1 = AVX2, 0 = scalar.
 * YAN_MATMUL_SCALAR-style overrides are the tests' business: they call
 * yan_matmul_rows_scalar directly. */
static int pick(int type) {
    const yan_cpu *c = yan_cpu_get();
    if (c->avx512f && c->avx512bw && c->avx512vl && yan_mm_avx512_has(type)) return 2;
    if (c->avx2 && c->fma && c->f16c && yan_mm_avx2_has(type)) return 1;
    return 0;
}

static yan_mm_args make_args(const yan_mat *w, const void *scratch, const float *x, int T, float *y, int64_t ldy) {
    yan_mm_args a = {w, NULL, 0, x, T, y, ldy};
    if (yan_act_for(w->type) != YAN_ACT_F32) {
        a.act = scratch;
        a.act_stride = yan_act_row_bytes(w->type, w->ne0);
    }
    return a;
}

/* ------------------------------------------------------------- GEMM path */

#define GEMM_MIN_T 32   /* tokens from which f32/f16 weights use the GEMM */
#define GEMM_ROWS 64    /* f16 rows converted per tile */

/* The calling thread's f16 tile buffer (freed when the thread exits). */
typedef struct { size_t cap; float *data; } tile_buf;
static pthread_key_t g_tile_key;
static pthread_once_t g_tile_once = PTHREAD_ONCE_INIT;
static void tile_free(void *p) {
    tile_buf *b = p;
    free(b->data);
    free(b);
}
static void tile_key_init(void) {
    if (pthread_key_create(&g_tile_key, tile_free) != 0) abort();
}
static float *tile_get(size_t floats) {
    pthread_once(&g_tile_once, tile_key_init);
    tile_buf *b = pthread_getspecific(g_tile_key);
    if (!b) {
        if (!(b = calloc(1, sizeof *b))) return NULL;
        if (pthread_setspecific(g_tile_key, b) != 0) {
            free(b);
            return NULL;
        }
    }
    if (b->cap < floats) {
        void *p = NULL;
        if (posix_memalign(&p, 64, floats * sizeof(float)) != 0) return NULL;
        free(b->data);
        b->data = p;
        b->cap = floats;
    }
    return b->data;
}

/* Rows [r0, r1) of y for many tokens through the GEMM; false if this call is
 * not for it (type, token count, no AVX-512/AVX2, no tile memory). */
static bool mm_gemm(const yan_mat *w, const float *x, int T, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    if (T < GEMM_MIN_T || (w->type != YAN_T_F32 && w->type != YAN_T_F16)) return false;
    const yan_cpu *c = yan_cpu_get();
    if (!(c->avx512f || (c->avx2 && c->fma))) return false;
    const int64_t K = w->ne0;
    if (w->type == YAN_T_F32) {
        yan_sgemm_1(false, true, T, r1 - r0, K, x, K, (const float *)((const char *)w->data + (size_t)r0 * w->row_bytes),
                    (int64_t)(w->row_bytes / sizeof(float)), 0.0f, y + r0, ldy);
        return true;
    }
    float *tile = tile_get((size_t)GEMM_ROWS * (size_t)K);
    if (!tile) return false;
    for (int64_t r = r0; r < r1; r += GEMM_ROWS) {
        int64_t n = r1 - r < GEMM_ROWS ? r1 - r : GEMM_ROWS;
        for (int64_t i = 0; i < n; i++)
            yan_f16_to_f32_row((const uint16_t *)((const char *)w->data + (size_t)(r + i) * w->row_bytes), tile + i * K, K);
        yan_sgemm_1(false, true, T, n, K, x, K, tile, K, 0.0f, y + r, ldy);
    }
    return true;
}

void yan_matmul_rows(const yan_mat *w, const void *scratch, const float *x, int T, float *y, int64_t ldy,
                     int64_t r0, int64_t r1) {
    if (r0 >= r1 || T <= 0) return;
    if (mm_gemm(w, x, T, y, ldy, r0, r1)) return;
    yan_mm_args a = make_args(w, scratch, x, T, y, ldy);
    switch (pick(w->type)) {
    case 2:
        if (yan_mm_avx512(&a, r0, r1)) return;
        break;
    case 1:
        if (yan_mm_avx2(&a, r0, r1)) return;
        break;
    default: break;
    }
    mm_scalar(&a, r0, r1);
}

void yan_matmul_rows_path(int path, const yan_mat *w, const void *scratch, const float *x, int T, float *y,
                          int64_t ldy, int64_t r0, int64_t r1) {
    if (r0 >= r1 || T <= 0) return;
    yan_mm_args a = make_args(w, scratch, x, T, y, ldy);
    if (path == 2 && yan_mm_avx512(&a, r0, r1)) return;
    if (path == 1 && yan_mm_avx2(&a, r0, r1)) return;
    mm_scalar(&a, r0, r1);
}

int yan_matmul_path_id(int type) { return pick(type); }

const char *yan_matmul_path(int type) {
    switch (pick(type)) {
    case 2:
        switch (type) {
        case YAN_T_F32:
        case YAN_T_F16: return "avx512";
        case YAN_T_BF16: return "avx512bf16";
        default: return "avx512vnni";
        }
    case 1: return "avx2";
    default: return "scalar";
    }
}

/* -------------------------------------------------------------- reference */

void yan_matmul_ref(const yan_mat *w, const float *x, int T, float *y, int64_t ldy) {
    float *row = yan_malloc((size_t)w->ne0 * sizeof(float));
    YAN_ASSERT(row != NULL);
    for (int64_t r = 0; r < w->ne1; r++) {
        yan_dequantize_row(w->type, (const char *)w->data + (size_t)r * w->row_bytes, row, w->ne0);
        for (int t = 0; t < T; t++) {
            const float *xt = x + (int64_t)t * w->ne0;
            double s = 0;
            for (int64_t c = 0; c < w->ne0; c++) s += (double)row[c] * xt[c];
            y[(int64_t)t * ldy + r] = (float)s;
        }
    }
    yan_free(row);
}
