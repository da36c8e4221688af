/* blocks.h — internal to src/tensor: the on-disk block layouts of the ggml
 * quantized types (byte-exact, static_assert'ed), the activation-side block
 * formats the integer dot products use, and the table of matmul kernels each
 * ISA file (matmul.c scalar, matmul_avx2.c, matmul_avx512.c) provides.
 *
 * Weight blocks match ggml-common.h byte for byte so real GGUF files decode.
 * Activation blocks are yan's own (never written to disk):
 *  - yan_a8g       : groups of 4 blocks of 32 int8 with f32 scales and the
 *                    block sums folded into a bias (partner of q4_0 / q8_0; the
 *                    bias carries q4_0's -8 offset and the +128 used to feed
 *                    signed q8_0 weights to u8*s8 dots).
 *  - yan_block_q8_K: 256 int8 + f32 scale + int16 sums of each 16 (partner of
 *                    the k-quants; the sums fold k-quant mins and q6_K's -32);
 *                    for q4_K / q5_K the int8s are stored permuted (yan_q8k_perm).
 */
#ifndef YAN_TENSOR_BLOCKS_H
#define YAN_TENSOR_BLOCKS_H

#include "tensor/tensor.h"

#include <assert.h>

#define YAN_QK 32    /* values per block of q4_0, q8_0, ... */
#define YAN_QK_K 256 /* values per super-block of the k-quants */

typedef struct { uint16_t d; uint8_t qs[16]; } yan_block_q4_0;          /* x = d * (nibble - 8) */
typedef struct { uint16_t d, m; uint8_t qs[16]; } yan_block_q4_1;       /* x = d * nibble + m */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } yan_block_q5_0;   /* x = d * (q5 - 16) */
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } yan_block_q5_1; /* x = d * q5 + m */
typedef struct { uint16_t d; int8_t qs[32]; } yan_block_q8_0;           /* x = d * q */
/* q4_K: 8 sub-blocks of 32; x = d*sc*q - dmin*m with 6-bit sc, m packed in scales[12];
 * qs: 4 chunks of 32 bytes, low nibbles = values 0..31 of the chunk's 64, high = 32..63 */
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } yan_block_q4_K;
/* q5_K: as q4_K plus the fifth bit of value 64*c + 32*h + l in bit 2c+h of qh[l] */
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } yan_block_q5_K;
/* q6_K: 16 sub-blocks of 16 with int8 scales; x = d * sc * (q6 - 32) */
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; } yan_block_q6_K;
/* q8_K: x = d * q; bsums[j] = sum of qs[16j .. 16j+15] */
typedef struct { float d; int8_t qs[256]; int16_t bsums[16]; } yan_block_q8_K;

static_assert(sizeof(yan_block_q4_0) == 18, "q4_0 block is 18 bytes");
static_assert(sizeof(yan_block_q4_1) == 20, "q4_1 block is 20 bytes");
static_assert(sizeof(yan_block_q5_0) == 22, "q5_0 block is 22 bytes");
static_assert(sizeof(yan_block_q5_1) == 24, "q5_1 block is 24 bytes");
static_assert(sizeof(yan_block_q8_0) == 34, "q8_0 block is 34 bytes");
static_assert(sizeof(yan_block_q4_K) == 144, "q4_K block is 144 bytes");
static_assert(sizeof(yan_block_q5_K) == 176, "q5_K block is 176 bytes");
static_assert(sizeof(yan_block_q6_K) == 210, "q6_K block is 210 bytes");
static_assert(sizeof(yan_block_q8_K) == 292, "q8_K block is 292 bytes");

/* Activation partner of q4_0 / q8_0: a group of 4 blocks of 32 values laid
 * out for 512-bit integer dots. xa holds elements 0..15 of block k at 16k..,
 * xb elements 16..31; d[4k..4k+3] = block k's scale; bias[4k] = -off * (sum
 * of block k's int8s), other lanes 0, where off is the weight's zero offset
 * as the SIMD kernels see it (8 for q4_0's nibbles, 128 for q8_0's int8s fed
 * as unsigned). A row's last group is zero-padded. */
typedef struct { int8_t xa[64]; int8_t xb[64]; float d[16]; int32_t bias[16]; } yan_a8g;
static_assert(sizeof(yan_a8g) == 256, "a8 group is 256 bytes");

/* Position of natural value v (0..255) of a super-block in the permuted q8_K
 * order that q4_K / q5_K kernels read: sub-blocks 0,2,1,3 then 4,6,5,7, so a
 * 64-byte load of qs nibbles meets its activations contiguously. */
static inline int yan_q8k_perm(int v) {
    int s = v / 32;
    return (s / 4) * 128 + (((s & 1) << 1) | ((s >> 1) & 1)) * 32 + v % 32;
}

/* Decode the 6-bit scale and min of sub-block j (0..7) of q4_K / q5_K. */
static inline void yan_kq_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* The activation format a weight type's integer kernels consume. */
typedef enum { YAN_ACT_F32, YAN_ACT_BF16, YAN_ACT_A8_Q4, YAN_ACT_A8_Q8, YAN_ACT_Q8K, YAN_ACT_Q8K_P, YAN_ACT_Q8K_U } yan_act_kind;
/* YAN_ACT_Q8K_U (q6_K's partner): q8_K in natural order with each int8 stored as
 * the byte q + 128 (unsigned), so signed 6-bit weights can sit on the s8 side. */
yan_act_kind yan_act_for(int type);
/* Bytes of one token's prepared activations for weights of `type` and ne0 values. */
size_t yan_act_row_bytes(int type, int64_t ne0);

/* Activation quantizers (scalar; deterministic, so every path sees the same ints). */
void yan_quantize_row_a8g(const float *x, yan_a8g *y, int64_t n, int off); /* n: multiple of 32 */
void yan_quantize_row_q8_K(const float *x, yan_block_q8_K *y, int64_t n);
void yan_quantize_row_q8_K_perm(const float *x, yan_block_q8_K *y, int64_t n); /* yan_q8k_perm order */

/* A kernel: same contract as yan_matmul_rows, `act` = the token rows of the
 * prepared activations (stride act_stride bytes) or NULL for f32 types. */
typedef struct {
    const yan_mat *w;
    const void *act;    /* prepared activations, T rows of act_stride bytes */
    size_t act_stride;
    const float *x;     /* f32 activations (T, ne0) */
    int T;
    float *y;
    int64_t ldy;
} yan_mm_args;

/* Each returns false when it has no kernel for the weight type (the caller
 * then falls through to the next path). r0..r1 as in yan_matmul_rows. */
bool yan_mm_avx512(const yan_mm_args *a, int64_t r0, int64_t r1);
bool yan_mm_avx2(const yan_mm_args *a, int64_t r0, int64_t r1);
bool yan_mm_avx512_has(int type);
/* Vectorised activation preparation (same bytes as the scalar one); false if unavailable. */
bool yan_prepare_avx512(int kind, const float *x, void *dst, int64_t n);
bool yan_mm_avx2_has(int type);

#endif
