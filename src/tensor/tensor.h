/* tensor.h — numeric kernels for inference and training: weight types (GGUF /
 * ggml block formats), conversions, quantization, the matrix multiply that
 * dominates every forward pass, and the small ops around it.
 *
 * Conventions
 *  - A weight matrix is stored as GGUF stores it: ne0 = in (contiguous, the
 *    reduction dimension), ne1 = out (rows). Row r is `row_bytes` bytes at
 *    data + r * row_bytes, encoded in blocks of the type.
 *  - Activations are f32, row-major (T, C): token t's vector at x + t * C.
 *  - Every kernel has a scalar reference (always built); fast paths (AVX2,
 *    AVX-512 with VNNI/BF16) are chosen at run time from yan_cpu_get() and are
 *    tested against the reference.
 *  - Nothing here allocates on the hot path: callers pass scratch.
 */
#ifndef YAN_TENSOR_H
#define YAN_TENSOR_H

#include "base/base.h"

/* ggml type ids (GGUF tensor types); append-only, ids never reused. */
typedef enum {
    YAN_T_F32 = 0,
    YAN_T_F16 = 1,
    YAN_T_Q4_0 = 2,
    YAN_T_Q4_1 = 3,
    YAN_T_Q5_0 = 6,
    YAN_T_Q5_1 = 7,
    YAN_T_Q8_0 = 8,
    YAN_T_Q8_1 = 9,
    YAN_T_Q2_K = 10,
    YAN_T_Q3_K = 11,
    YAN_T_Q4_K = 12,
    YAN_T_Q5_K = 13,
    YAN_T_Q6_K = 14,
    YAN_T_Q8_K = 15,
    YAN_T_BF16 = 30,
} yan_type;

/* ------------------------------------------------------------ conversions */

float yan_f16_to_f32(uint16_t h);
uint16_t yan_f32_to_f16(float f);          /* round to nearest even */
static inline float yan_bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}
uint16_t yan_f32_to_bf16(float f);         /* round to nearest even, NaN kept */
/* Whole rows (F16C when present; same results as the one-value forms). */
void yan_f16_to_f32_row(const uint16_t *src, float *dst, int64_t n);
void yan_f32_to_f16_row(const float *src, uint16_t *dst, int64_t n);
void yan_bf16_to_f32_row(const uint16_t *src, float *dst, int64_t n);
void yan_f32_to_bf16_row(const float *src, uint16_t *dst, int64_t n);

/* ----------------------------------------------------------- type traits */

/* true if yan can compute with weights of this type */
bool yan_type_supported(int type);
const char *yan_type_name(int type);       /* "q4_K", ...; "?" if unknown */
int yan_type_block(int type);              /* values per block (1 for f32/f16/bf16); 0 if unknown */
size_t yan_type_block_bytes(int type);     /* bytes per block; 0 if unknown */
/* bytes of one row of n values (n must be a multiple of the block size) */
size_t yan_type_row_bytes(int type, int64_t n);

/* Decode one row of n values to f32. */
void yan_dequantize_row(int type, const void *src, float *dst, int64_t n);
/* Encode one row of n f32 values (n a multiple of the block size). Supported
 * targets: f32, f16, bf16, q8_0, q4_0, q4_K, q5_K, q6_K, q8_K. Returns false for
 * other types. */
bool yan_quantize_row(int type, const float *src, void *dst, int64_t n);

/* ----------------------------------------------------------------- matmul */

typedef struct {
    int type;          /* yan_type */
    int64_t ne0;       /* in: values per row (reduction dimension) */
    int64_t ne1;       /* out: number of rows */
    size_t row_bytes;  /* stride between rows */
    const void *data;
} yan_mat;

/* Scratch for the activation side: quantized copies of x (per-type partner
 * format, e.g. q8_0 for q4_0/q8_0 weights, q8_K for k-quants). The caller
 * sizes it with yan_matmul_scratch_bytes and keeps it across calls. */
size_t yan_matmul_scratch_bytes(const yan_mat *w, int T);

/* Quantize the activations for w (x: (T, ne0) f32) into scratch. Done once per
 * matmul, by one thread or split across threads by token [t0, t1). */
void yan_matmul_prepare(const yan_mat *w, const float *x, int T, int t0, int t1, void *scratch);

/* y[t * ldy + r] = sum_c W[r, c] * x[t, c] for t in [0, T), rows r in [r0, r1).
 * scratch must hold the prepared activations. Thread-safe for disjoint row
 * ranges: the forward pass splits rows across its pool. ldy >= ne1. */
void yan_matmul_rows(const yan_mat *w, const void *scratch, const float *x, int T, float *y, int64_t ldy,
                     int64_t r0, int64_t r1);

/* Reference: the same computed by dequantizing each row to f32 (tests). */
void yan_matmul_ref(const yan_mat *w, const float *x, int T, float *y, int64_t ldy);

/* Name of the kernel path chosen for a type ("avx512vnni", "avx2", "scalar"). */
const char *yan_matmul_path(int type);
/* Tests and benchmarks: the path id a type dispatches to (2 = AVX-512,
 * 1 = AVX2, 0 = scalar), and yan_matmul_rows forced onto a path (a path the
 * CPU or type lacks falls back to scalar). */
int yan_matmul_path_id(int type);
void yan_matmul_rows_path(int path, const yan_mat *w, const void *scratch, const float *x, int T, float *y,
                          int64_t ldy, int64_t r0, int64_t r1);

/* -------------------------------------------------------------------- ops */

void yan_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps);   /* w may be NULL */
void yan_layernorm(float *out, const float *x, const float *w, const float *b, int64_t n, float eps);
void yan_softmax(float *x, int64_t n);                 /* in place, max-subtracted */
void yan_silu_mul(float *a, const float *b, int64_t n);/* a = silu(a) * b (SwiGLU) */
void yan_gelu(float *x, int64_t n);                     /* tanh approximation, as GPT-2 */
float yan_dot_f32(const float *a, const float *b, int64_t n);
void yan_axpy_f32(float *y, float a, const float *x, int64_t n); /* y += a * x */
/* The same against an f16 vector (an f16 KV cache row). */
float yan_dot_f16(const float *a, const uint16_t *b, int64_t n);
void yan_axpy_f16(float *y, float a, const uint16_t *x, int64_t n);
/* Blocked attention over one KV head's contiguous f16 rows (kernel chosen
 * once, AVX-512 / AVX2 / scalar). out[j] = scale * q . K_j for j < n_keys;
 * out[0..head_dim_v) = sum_j w[j] * V_j (overwritten); yan_attn_softmax: as
 * yan_softmax with a vectorised exp (in double, rounded once: expf but for
 * rare last-bit cases) and the sum in double. The _ref forms: the plain
 * per-key loops (tests). */
void yan_attn_scores_f16(const float *q, const uint16_t *K, int64_t n_keys, int64_t head_dim, float scale, float *out);
void yan_attn_values_f16(float *out, const float *w, const uint16_t *V, int64_t n_keys, int64_t head_dim_v);
void yan_attn_softmax(float *x, int64_t n);
void yan_attn_scores_f16_ref(const float *q, const uint16_t *K, int64_t n_keys, int64_t head_dim, float scale,
                             float *out);
void yan_attn_values_f16_ref(float *out, const float *w, const uint16_t *V, int64_t n_keys, int64_t head_dim_v);

/* Rotary embedding of one head vector in place, position pos.
 * neox = false: pairs (x[2i], x[2i+1]) (llama.cpp's NORM layout, Llama);
 * neox = true:  pairs (x[i], x[i + n_rot/2]) (NEOX, Qwen2/3, GPT-NeoX).
 * Only the first n_rot dims rotate; theta_i = pos * freq_scale * base^(-2i/n_rot). */
void yan_rope(float *x, int64_t head_dim, int64_t n_rot, int64_t pos, float freq_base, float freq_scale, bool neox);

#endif
