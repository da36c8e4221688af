/* test_quant.c — weight types: f16/bf16 conversion (exhaustive round trip,
 * edge cases, F16C rows agree with the portable form), exact block sizes,
 * hand-built blocks decoding to known values, and quantize/dequantize round
 * trips within stated error bounds per type. */
#include "tensor/blocks.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}
static float rng_gauss(uint64_t *s) {
    double u1 = ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
    double u2 = ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
    return (float)(sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
}

TEST(f16_known_values) {
    CHECK(yan_f32_to_f16(1.0f) == 0x3C00);
    CHECK(yan_f32_to_f16(-2.0f) == 0xC000);
    CHECK(yan_f32_to_f16(65504.f) == 0x7BFF);
    CHECK(yan_f32_to_f16(65519.f) == 0x7BFF);
    CHECK(yan_f32_to_f16(65520.f) == 0x7C00);
    CHECK(yan_f32_to_f16(INFINITY) == 0x7C00);
    CHECK(yan_f32_to_f16(-INFINITY) == 0xFC00);
    CHECK((yan_f32_to_f16(NAN) & 0x7FFF) > 0x7C00);
    CHECK(yan_f32_to_f16(5.9604644775390625e-8f) == 0x0001); /* 2^-24 */
    CHECK(yan_f32_to_f16(2.98023223876953125e-8f) == 0x0000); /* 2^-25: tie to even = 0 */
    CHECK(yan_f32_to_f16(3.0e-8f) == 0x0001);
    CHECK(yan_f32_to_f16(-0.0f) == 0x8000);
    CHECK(yan_f32_to_f16(1.0f + 1.0f / 2048) == 0x3C00); /* tie to even */
    CHECK(yan_f32_to_f16(1.0f + 3.0f / 2048) == 0x3C02);
    CHECK(yan_f16_to_f32(0x0001) == 5.9604644775390625e-8f);
    CHECK(yan_f16_to_f32(0x03FF) == 6.097555160522461e-5f);
    CHECK(yan_f16_to_f32(0x3555) == 0.333251953125f);
    CHECK(isinf(yan_f16_to_f32(0x7C00)));
    CHECK(isnan(yan_f16_to_f32(0x7E00)));
}

TEST(f16_round_trip_all_values) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = yan_f16_to_f32((uint16_t)h);
        if (isnan(f)) continue;
        if (yan_f32_to_f16(f) != h) bad++;
    }
    CHECK(bad == 0);
}

TEST(f16_rows_match_scalar) {
    uint64_t s = 7;
    enum { N = 1003 };
    float x[N], back[N];
    uint16_t h[N];
    for (int i = 0; i < N; i++) x[i] = rng_gauss(&s) * (i % 3 == 0 ? 1e-5f : i % 3 == 1 ? 1.f : 3e4f);
    yan_f32_to_f16_row(x, h, N);
    int bad = 0;
    for (int i = 0; i < N; i++) bad += h[i] != yan_f32_to_f16(x[i]);
    yan_f16_to_f32_row(h, back, N);
    for (int i = 0; i < N; i++) bad += back[i] != yan_f16_to_f32(h[i]);
    CHECK(bad == 0);
}

TEST(bf16_conversion) {
    CHECK(yan_f32_to_bf16(1.0f) == 0x3F80);
    CHECK(yan_bf16_to_f32(0x3F80) == 1.0f);
    CHECK(yan_f32_to_bf16(1.00390625f) == 0x3F80); /* 1 + 2^-8: tie to even */
    CHECK(yan_f32_to_bf16(1.01171875f) == 0x3F82); /* 1 + 3*2^-8: tie to even, up */
    CHECK((yan_f32_to_bf16(NAN) & 0x7FFF) > 0x7F80);
    CHECK(yan_f32_to_bf16(-INFINITY) == 0xFF80);
}

TEST(block_sizes) {
    CHECK(yan_type_block_bytes(YAN_T_Q4_0) == 18 && yan_type_block(YAN_T_Q4_0) == 32);
    CHECK(yan_type_block_bytes(YAN_T_Q8_0) == 34 && yan_type_block(YAN_T_Q8_0) == 32);
    CHECK(yan_type_block_bytes(YAN_T_Q4_1) == 20);
    CHECK(yan_type_block_bytes(YAN_T_Q5_0) == 22);
    CHECK(yan_type_block_bytes(YAN_T_Q5_1) == 24);
    CHECK(yan_type_block_bytes(YAN_T_Q4_K) == 144 && yan_type_block(YAN_T_Q4_K) == 256);
    CHECK(yan_type_block_bytes(YAN_T_Q5_K) == 176);
    CHECK(yan_type_block_bytes(YAN_T_Q6_K) == 210);
    CHECK(yan_type_block_bytes(YAN_T_Q8_K) == 292);
    CHECK(yan_type_block_bytes(YAN_T_BF16) == 2 && yan_type_block(YAN_T_F16) == 1);
    CHECK(yan_type_row_bytes(YAN_T_Q4_K, 2048) == 8 * 144);
    CHECK(yan_type_row_bytes(YAN_T_F32, 10) == 40);
    CHECK(strcmp(yan_type_name(YAN_T_Q6_K), "q6_K") == 0);
    CHECK(strcmp(yan_type_name(YAN_T_BF16), "bf16") == 0);
    CHECK(strcmp(yan_type_name(99), "?") == 0 && yan_type_block(99) == 0);
    CHECK(yan_type_supported(YAN_T_Q4_K) && yan_type_supported(YAN_T_F16));
    CHECK(!yan_type_supported(YAN_T_Q2_K) && !yan_type_supported(20) && !yan_type_supported(-1));
}

TEST(hand_built_blocks) {
    float y[256];
    /* q4_0: d = 1.0, qs[0] = 0x9F -> y[0] = 15 - 8 = 7, y[16] = 9 - 8 = 1 */
    yan_block_q4_0 b4 = {0x3C00, {0}};
    memset(b4.qs, 0x88, 16);
    b4.qs[0] = 0x9F;
    yan_dequantize_row(YAN_T_Q4_0, &b4, y, 32);
    CHECK(y[0] == 7 && y[16] == 1 && y[1] == 0 && y[31] == 0);
    /* q8_0: d = 0.5, qs[3] = -3 -> -1.5 */
    yan_block_q8_0 b8 = {0x3800, {0}};
    b8.qs[3] = -3;
    yan_dequantize_row(YAN_T_Q8_0, &b8, y, 32);
    CHECK(y[3] == -1.5f && y[0] == 0);
    /* q4_1: d = 2, m = -1: nibble 3 -> 5 */
    yan_block_q4_1 b41 = {0x4000, 0xBC00, {0}};
    b41.qs[2] = 0x30;
    yan_dequantize_row(YAN_T_Q4_1, &b41, y, 32);
    CHECK(y[2] == -1 && y[18] == 5);
    /* q5_0: d = 1, value 17 has its fifth bit in qh bit 17: nibble 2 | 16 -> 18 - 16 = 2 */
    yan_block_q5_0 b50 = {0x3C00, {0, 0, 2, 0}, {0}};
    b50.qs[1] = 0x20;
    yan_dequantize_row(YAN_T_Q5_0, &b50, y, 32);
    CHECK(y[17] == 2 && y[1] == -16);
    /* q4_K: d = 1, dmin = 0.5; sub-block 0: sc 2, m 3; sub-block 5: sc 17 (0x11), m 33 (0x21) */
    yan_block_q4_K bk;
    memset(&bk, 0, sizeof bk);
    bk.d = 0x3C00, bk.dmin = 0x3800;
    bk.scales[0] = 2, bk.scales[4] = 3;
    bk.scales[9] = 0x11 & 0xF, bk.scales[9] |= (0x21 & 0xF) << 4; /* j = 5: low bits in scales[9] */
    bk.scales[1] |= (0x11 >> 4) << 6;                              /* high bits of sc5 in scales[1] */
    bk.scales[5] |= (0x21 >> 4) << 6;                              /* high bits of m5 in scales[5] */
    bk.qs[0] = 0x5A;      /* value 0 = 10, value 32 = 5 */
    bk.qs[64 + 3] = 0x70; /* chunk 2: value 128+3 low nibble 0; value 160+3 = 7 (sub-block 5) */
    yan_dequantize_row(YAN_T_Q4_K, &bk, y, 256);
    CHECK(y[0] == 2 * 10 - 1.5f);
    CHECK(y[32] == 0 * 5 - 0.f); /* sub-block 1 has sc = m = 0 */
    CHECK(y[163] == 17 * 7 - 0.5f * 33);
    CHECK(y[131] == 0); /* sub-block 4: sc = scales[8]&0xF = 0 */
    /* q5_K: same scales; qh bit 2c+h of byte l adds 16 to value 64c + 32h + l */
    yan_block_q5_K b5;
    memset(&b5, 0, sizeof b5);
    b5.d = 0x3C00, b5.dmin = 0x3800;
    memcpy(b5.scales, bk.scales, 12);
    b5.qs[64 + 3] = 0x70;
    b5.qh[3] = 1 << 5; /* c = 2, h = 1 -> value 163 */
    yan_dequantize_row(YAN_T_Q5_K, &b5, y, 256);
    CHECK(y[163] == 17 * 23 - 0.5f * 33);
    /* q6_K: d = 1; value 0: ql low nibble 5, qh bits 0-1 = 1 -> 21 - 32 = -11, scale 2 -> -22;
     * value 96+16+1 = 113 (g = 3, l = 17): ql[17+32] high nibble, qh[17] bits 6-7; scale index 7 */
    yan_block_q6_K b6;
    memset(&b6, 0, sizeof b6);
    b6.d = 0x3C00;
    b6.scales[0] = 2, b6.scales[7] = -3;
    b6.ql[0] = 0x05, b6.qh[0] = 0x01;
    b6.ql[49] = 0xF0, b6.qh[17] = 0x80; /* 15 | (2 << 4) = 47 -> 15 */
    yan_dequantize_row(YAN_T_Q6_K, &b6, y, 256);
    CHECK(y[0] == -22);
    CHECK(y[113] == -3 * 15);
    CHECK(y[1] == -64); /* code 0 -> -32 * 2 */
}

static double rel_rmse(const float *a, const float *b, int n) {
    double e = 0, s = 0;
    for (int i = 0; i < n; i++) e += (double)(a[i] - b[i]) * (a[i] - b[i]), s += (double)a[i] * a[i];
    return sqrt(e / s);
}

static double round_trip(int type, const float *x, int n) {
    float *y = malloc(sizeof(float) * (size_t)n);
    void *q = malloc(yan_type_row_bytes(type, n));
    CHECK(yan_quantize_row(type, x, q, n));
    yan_dequantize_row(type, q, y, n);
    double r = rel_rmse(x, y, n);
    free(y), free(q);
    return r;
}

TEST(quant_round_trip_bounds) {
    enum { N = 256 * 64 };
    float *x = malloc(sizeof(float) * N);
    uint64_t s = 42;
    for (int i = 0; i < N; i++) x[i] = rng_gauss(&s) * 0.02f * (i % 512 < 256 ? 1.f : 3.f) + (i % 97 == 0 ? 0.1f : 0);
    struct { int type; double bound; } cases[] = {
        {YAN_T_F32, 0},       {YAN_T_F16, 1e-3},    {YAN_T_BF16, 5e-3},  {YAN_T_Q8_0, 0.01}, {YAN_T_Q4_0, 0.12},
        {YAN_T_Q4_K, 0.08},   {YAN_T_Q5_K, 0.04},   {YAN_T_Q6_K, 0.03},  {YAN_T_Q8_K, 0.01},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double r = round_trip(cases[i].type, x, N);
        if (!(r <= cases[i].bound)) fprintf(stderr, "  %s: rel rmse %.4f > %.4f\n", yan_type_name(cases[i].type), r, cases[i].bound);
        CHECK(r <= cases[i].bound);
    }
    /* the k-quant search must beat a naive fit: q4_K noticeably better than q4_0 */
    CHECK(round_trip(YAN_T_Q4_K, x, N) < round_trip(YAN_T_Q4_0, x, N));
    CHECK(round_trip(YAN_T_Q6_K, x, N) < round_trip(YAN_T_Q5_K, x, N));
    CHECK(!yan_quantize_row(YAN_T_Q2_K, x, x, 256));
    CHECK(!yan_quantize_row(YAN_T_Q4_0, x, x, 33));
    free(x);
}

TEST(quant_zero_and_constant_rows) {
    float x[256] = {0}, y[256];
    int types[] = {YAN_T_Q8_0, YAN_T_Q4_0, YAN_T_Q4_K, YAN_T_Q5_K, YAN_T_Q6_K, YAN_T_Q8_K};
    uint8_t buf[512];
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        CHECK(yan_quantize_row(types[t], x, buf, 256));
        yan_dequantize_row(types[t], buf, y, 256);
        int bad = 0;
        for (int i = 0; i < 256; i++) bad += y[i] != 0;
        CHECK(bad == 0);
    }
    for (int i = 0; i < 256; i++) x[i] = 0.5f; /* all positive: k-quant min must be 0 */
    int kt[] = {YAN_T_Q4_K, YAN_T_Q5_K, YAN_T_Q6_K};
    for (size_t t = 0; t < 3; t++) {
        yan_quantize_row(kt[t], x, buf, 256);
        yan_dequantize_row(kt[t], buf, y, 256);
        CHECK_NEAR(y[0], 0.5, 0.01);
        CHECK_NEAR(y[255], 0.5, 0.01);
    }
}

TEST(activation_quantizers) {
    float x[512];
    uint64_t s = 3;
    for (int i = 0; i < 512; i++) x[i] = rng_gauss(&s);
    yan_block_q8_K k[2];
    yan_quantize_row_q8_K(x, k, 512);
    int bad = 0;
    for (int b = 0; b < 2; b++)
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int j = 0; j < 16; j++) sum += k[b].qs[16 * g + j];
            bad += sum != k[b].bsums[g];
        }
    CHECK(bad == 0);
    yan_a8g a[4];
    yan_quantize_row_a8g(x, a, 512, 8);
    float y[512];
    for (int b = 0; b < 16; b++) {
        const yan_a8g *g = &a[b / 4];
        int kk = b % 4, sum = 0;
        for (int j = 0; j < 16; j++) {
            sum += g->xa[16 * kk + j] + g->xb[16 * kk + j];
            y[32 * b + j] = g->d[4 * kk] * g->xa[16 * kk + j];
            y[32 * b + 16 + j] = g->d[4 * kk] * g->xb[16 * kk + j];
        }
        bad += -8 * sum != g->bias[4 * kk] || g->bias[4 * kk + 1] != 0 || g->d[4 * kk + 3] != g->d[4 * kk];
    }
    CHECK(bad == 0);
    /* q4_K/q5_K order: a permutation of 0..255 */
    int seen[256] = {0};
    for (int v = 0; v < 256; v++) seen[yan_q8k_perm(v)]++;
    for (int v = 0; v < 256; v++) bad += seen[v] != 1;
    CHECK(yan_q8k_perm(32) == 64 && yan_q8k_perm(64) == 32 && yan_q8k_perm(130) == 130);
    CHECK(rel_rmse(x, y, 512) < 0.01);
}
