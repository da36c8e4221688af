/* test_matmul.c — yan_matmul_rows against yan_matmul_ref for every weight
 * type, on random data at odd shapes (rows not a multiple of any tile, T = 1,
 * 2, 3, 7, 64), on every kernel path this CPU has (scalar, AVX2, AVX-512),
 * and split into row ranges as threads split it.
 *
 * Bounds (stated as max |y - ref| / max |ref| over the output):
 *  - a SIMD path vs the scalar path: 1e-4 (same integer dot products, only
 *    the float summation order differs);
 *  - any path vs the f32 reference: 1e-5 for f32/f16 weights, 2e-2 where the
 *    activations are quantized to 8 bits (a8, q8_K) or rounded to bf16. */
#include "tensor/blocks.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}
static float rng_unit(uint64_t *s) { return (float)((double)(rng_next(s) >> 11) / 9007199254740992.0) * 2.f - 1.f; }

typedef struct {
    yan_mat w;
    void *data;
    float *x;
} mm_case;

static mm_case make_case(int type, int64_t ne0, int64_t ne1, int T, uint64_t seed) {
    mm_case c;
    c.w.type = type, c.w.ne0 = ne0, c.w.ne1 = ne1;
    c.w.row_bytes = yan_type_row_bytes(type, ne0);
    c.data = malloc(c.w.row_bytes * (size_t)ne1);
    c.w.data = c.data;
    float *row = malloc(sizeof(float) * (size_t)ne0);
    uint64_t s = seed;
    for (int64_t r = 0; r < ne1; r++) {
        float scale = 0.02f * (1 + (float)(r % 5)); /* rows of different magnitude */
        for (int64_t i = 0; i < ne0; i++) row[i] = rng_unit(&s) * scale + (i % 37 == 0 ? 0.05f : 0.f);
        if (type == YAN_T_Q4_1 || type == YAN_T_Q5_0 || type == YAN_T_Q5_1) {
            /* no encoder for these: write plausible random blocks */
            for (size_t b = 0; b < c.w.row_bytes; b++) ((uint8_t *)c.data)[(size_t)r * c.w.row_bytes + b] = (uint8_t)rng_next(&s);
            size_t bs = yan_type_block_bytes(type);
            for (size_t b = 0; b < c.w.row_bytes; b += bs) {
                uint16_t *h = (uint16_t *)((uint8_t *)c.data + (size_t)r * c.w.row_bytes + b);
                h[0] = yan_f32_to_f16(0.01f);
                if (type != YAN_T_Q5_0) h[1] = yan_f32_to_f16(-0.1f);
            }
        } else {
            CHECK(yan_quantize_row(type, row, (uint8_t *)c.data + (size_t)r * c.w.row_bytes, ne0));
        }
    }
    free(row);
    c.x = malloc(sizeof(float) * (size_t)(ne0 * T));
    for (int64_t i = 0; i < ne0 * T; i++) c.x[i] = rng_unit(&s);
    return c;
}

static double max_rel(const float *y, const float *ref, int64_t n) {
    double md = 0, mr = 0;
    for (int64_t i = 0; i < n; i++) {
        md = fmax(md, fabs((double)y[i] - ref[i]));
        mr = fmax(mr, fabs((double)ref[i]));
    }
    return mr > 0 ? md / mr : md;
}

static const int k_types[] = {YAN_T_F32, YAN_T_F16, YAN_T_BF16, YAN_T_Q8_0, YAN_T_Q4_0, YAN_T_Q4_K,
                              YAN_T_Q5_K, YAN_T_Q6_K, YAN_T_Q4_1, YAN_T_Q5_0, YAN_T_Q5_1};

static void run_case(int type, int64_t ne0, int64_t ne1, int T) {
    mm_case c = make_case(type, ne0, ne1, T, 1234 + (uint64_t)type * 77 + (uint64_t)T);
    float *ref = malloc(sizeof(float) * (size_t)(ne1 * T));
    float *y0 = malloc(sizeof(float) * (size_t)(ne1 * T));
    float *y = malloc(sizeof(float) * (size_t)(ne1 * T));
    size_t sb = yan_matmul_scratch_bytes(&c.w, T);
    void *scratch = malloc(sb ? sb : 1);
    yan_matmul_prepare(&c.w, c.x, T, 0, T, scratch);
    yan_matmul_ref(&c.w, c.x, T, ref, ne1);
    yan_matmul_rows_path(0, &c.w, scratch, c.x, T, y0, ne1, 0, ne1);
    bool exact_act = yan_act_for(type) == YAN_ACT_F32;
    double e0 = max_rel(y0, ref, ne1 * T), b0 = exact_act ? 1e-5 : 2e-2;
    if (!(e0 <= b0)) fprintf(stderr, "  %s T=%d scalar vs ref: %.3g\n", yan_type_name(type), T, e0);
    CHECK(e0 <= b0);
    for (int path = 1; path <= 2; path++) {
        const yan_cpu *cpu = yan_cpu_get();
        if (path == 1 && !(cpu->avx2 && cpu->fma && cpu->f16c)) continue;
        if (path == 2 && !(cpu->avx512f && cpu->avx512bw && cpu->avx512vl)) continue;
        /* split rows in uneven ranges, as threads do */
        int64_t cut1 = ne1 / 3, cut2 = ne1 / 3 + 5 < ne1 ? ne1 / 3 + 5 : ne1;
        memset(y, 0xFF, sizeof(float) * (size_t)(ne1 * T));
        yan_matmul_rows_path(path, &c.w, scratch, c.x, T, y, ne1, 0, cut1);
        yan_matmul_rows_path(path, &c.w, scratch, c.x, T, y, ne1, cut1, cut2);
        yan_matmul_rows_path(path, &c.w, scratch, c.x, T, y, ne1, cut2, ne1);
        double e = max_rel(y, y0, ne1 * T);
        if (!(e <= 1e-4)) fprintf(stderr, "  %s T=%d path %d vs scalar: %.3g\n", yan_type_name(type), T, path, e);
        CHECK(e <= 1e-4);
    }
    /* the dispatched entry point */
    yan_matmul_rows(&c.w, scratch, c.x, T, y, ne1, 0, ne1);
    CHECK(max_rel(y, y0, ne1 * T) <= 1e-4);
    free(ref), free(y0), free(y), free(scratch), free(c.data), free(c.x);
}

TEST(matmul_all_types_odd_shapes) {
    int Ts[] = {1, 2, 3, 7, 64};
    for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; i++)
        for (size_t t = 0; t < sizeof Ts / sizeof Ts[0]; t++) {
            int64_t ne1 = Ts[t] == 64 ? 29 : 37;
            run_case(k_types[i], 512, ne1, Ts[t]);
        }
}

TEST(matmul_wide_rows) {
    /* ne0 = 2816 (11 super-blocks), rows not a multiple of 4 or 16 */
    for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; i++) run_case(k_types[i], 2816, 19, 5);
    /* a q4_0/q8_0/f16 row of 32*3 values (not a multiple of 256) */
    run_case(YAN_T_Q4_0, 96, 21, 3);
    run_case(YAN_T_Q8_0, 96, 21, 9);
    run_case(YAN_T_F16, 40, 21, 2);
    run_case(YAN_T_F32, 17, 5, 3);
    run_case(YAN_T_BF16, 48, 5, 3);
}

TEST(matmul_ldy_and_paths) {
    /* ldy > ne1: y rows are strided and the gap is untouched */
    mm_case c = make_case(YAN_T_Q4_0, 256, 10, 2, 5);
    float y[2 * 16];
    for (int i = 0; i < 32; i++) y[i] = -7;
    size_t sb = yan_matmul_scratch_bytes(&c.w, 2);
    void *scratch = malloc(sb);
    yan_matmul_prepare(&c.w, c.x, 2, 0, 1, scratch);
    yan_matmul_prepare(&c.w, c.x, 2, 1, 2, scratch); /* split preparation by token */
    yan_matmul_rows(&c.w, scratch, c.x, 2, y, 16, 0, 10);
    float ref[2 * 16];
    yan_matmul_ref(&c.w, c.x, 2, ref, 16);
    for (int t = 0; t < 2; t++) {
        for (int r = 0; r < 10; r++) CHECK_NEAR(y[16 * t + r], ref[16 * t + r], 0.02 * 3);
        for (int r = 10; r < 16; r++) CHECK(y[16 * t + r] == -7);
    }
    CHECK(strcmp(yan_matmul_path(YAN_T_Q2_K), "scalar") == 0);
    const char *p = yan_matmul_path(YAN_T_Q4_0);
    CHECK(!strcmp(p, "scalar") || !strcmp(p, "avx2") || !strcmp(p, "avx512vnni"));
    CHECK(yan_matmul_scratch_bytes(&(yan_mat){YAN_T_F32, 64, 4, 256, NULL}, 8) == 0);
    free(scratch), free(c.data), free(c.x);
}

TEST(matmul_prepare_matches_scalar_quantizers) {
    /* the vectorised preparation must write the very bytes the scalar quantizers write */
    enum { N = 768 };
    float x[N];
    uint64_t s = 77;
    for (int i = 0; i < N; i++) x[i] = rng_unit(&s) * (i % 100 == 0 ? 5.f : 1.f);
    for (int i = 256; i < 288; i++) x[i] = 0; /* an all-zero block */
    x[5] = 0.5f * 3.f / 127.f;                /* near a rounding tie */
    int types[] = {YAN_T_Q4_0, YAN_T_Q8_0, YAN_T_Q4_K, YAN_T_Q5_K, YAN_T_Q6_K};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        yan_mat w = {types[k], N, 1, yan_type_row_bytes(types[k], N), NULL};
        size_t sb = yan_matmul_scratch_bytes(&w, 1);
        uint8_t *a = calloc(1, sb), *b = calloc(1, sb);
        yan_matmul_prepare(&w, x, 1, 0, 1, a);
        switch (yan_act_for(types[k])) {
        case YAN_ACT_A8_Q4: yan_quantize_row_a8g(x, (yan_a8g *)b, N, 8); break;
        case YAN_ACT_A8_Q8: yan_quantize_row_a8g(x, (yan_a8g *)b, N, 128); break;
        case YAN_ACT_Q8K_P: yan_quantize_row_q8_K_perm(x, (yan_block_q8_K *)b, N); break;
        default:
            yan_quantize_row_q8_K(x, (yan_block_q8_K *)b, N);
            for (int i = 0; i < N / 256; i++)
                for (int j = 0; j < 256; j++) ((yan_block_q8_K *)b)[i].qs[j] ^= (int8_t)0x80;
        }
        CHECK(memcmp(a, b, sb) == 0);
        free(a), free(b);
    }
}

/* ------------------------------------------------------------ AVX2 path */

/* The AVX2 kernels forced (path 1), as a CPU without AVX-512 runs them: each
 * type with an AVX-512 kernel must have one, must really run (yan_mm_avx2
 * returns true rather than falling back), and must match the scalar kernels
 * at shapes that hit every edge: rows crossing the 64-row block, tiles of 1..4
 * tokens plus a remainder, an odd count of 32-blocks (half pair), row lengths
 * not a multiple of 8 or 16 for the float types, and extreme int8 values
 * (saturation of the u8*s8 pair sums would show there). */
static void run_avx2_case(int type, int64_t ne0, int64_t ne1, int T, bool extreme) {
    mm_case c = make_case(type, ne0, ne1, T, 4321 + (uint64_t)type * 31 + (uint64_t)ne0 + (uint64_t)T);
    if (extreme) { /* |x| all equal (int8 +-127 after quantization); weights at the ends of their range */
        float *row = malloc(sizeof(float) * (size_t)ne0);
        uint64_t s = 9;
        for (int64_t r = 0; r < ne1; r++) {
            for (int64_t i = 0; i < ne0; i++) row[i] = (rng_next(&s) & 1) ? 1.f : (r & 1 ? -1.f : -0.999f);
            CHECK(yan_quantize_row(type, row, (uint8_t *)c.data + (size_t)r * c.w.row_bytes, ne0));
        }
        for (int64_t i = 0; i < ne0 * T; i++) c.x[i] = (rng_next(&s) & 1) ? 1.f : -1.f;
        free(row);
    }
    size_t n = (size_t)(ne1 * T);
    float *ref = malloc(sizeof(float) * n), *y0 = malloc(sizeof(float) * n), *y1 = malloc(sizeof(float) * n);
    size_t sb = yan_matmul_scratch_bytes(&c.w, T);
    void *scratch = malloc(sb ? sb : 1);
    yan_matmul_prepare(&c.w, c.x, T, 0, T, scratch);
    yan_matmul_ref(&c.w, c.x, T, ref, ne1);
    yan_matmul_rows_path(0, &c.w, scratch, c.x, T, y0, ne1, 0, ne1);
    memset(y1, 0xFF, sizeof(float) * n);
    yan_mm_args a = {&c.w, NULL, 0, c.x, T, y1, ne1};
    if (yan_act_for(type) != YAN_ACT_F32) a.act = scratch, a.act_stride = yan_act_row_bytes(type, ne0);
    CHECK(yan_mm_avx2(&a, 0, ne1 / 2));                         /* ran, did not fall back */
    yan_matmul_rows_path(1, &c.w, scratch, c.x, T, y1, ne1, ne1 / 2, ne1);
    double e = max_rel(y1, y0, (int64_t)n), er = max_rel(y1, ref, (int64_t)n);
    double br = yan_act_for(type) == YAN_ACT_F32 ? 1e-5 : extreme ? 3e-2 : 2e-2;
    if (!(e <= 1e-4) || !(er <= br))
        fprintf(stderr, "  %s ne0=%lld ne1=%lld T=%d%s avx2 vs scalar %.3g, vs ref %.3g\n", yan_type_name(type),
                (long long)ne0, (long long)ne1, T, extreme ? " extreme" : "", e, er);
    CHECK(e <= 1e-4);
    CHECK(er <= br);
    free(ref), free(y0), free(y1), free(scratch), free(c.data), free(c.x);
}

TEST(matmul_avx2_forced) {
    const yan_cpu *cpu = yan_cpu_get();
    if (!(cpu->avx2 && cpu->fma && cpu->f16c)) return; /* nothing to force */
    static const int types[] = {YAN_T_F32, YAN_T_F16, YAN_T_BF16, YAN_T_Q8_0, YAN_T_Q4_0, YAN_T_Q4_K, YAN_T_Q5_K, YAN_T_Q6_K};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        int type = types[k];
        CHECK(yan_mm_avx2_has(type));
        /* default dispatch: AVX-512 where it has the type, else AVX2 */
        bool has512 = cpu->avx512f && cpu->avx512bw && cpu->avx512vl && yan_mm_avx512_has(type);
        CHECK(yan_matmul_path_id(type) == (has512 ? 2 : 1));
        if (!has512) CHECK(strcmp(yan_matmul_path(type), "avx2") == 0);
        int blk = yan_type_block(type) == 1 ? 1 : yan_type_block(type);
        int64_t ne0s[4];
        if (blk == 1) ne0s[0] = 7, ne0s[1] = 24, ne0s[2] = 100, ne0s[3] = 513;
        else if (blk == 32) ne0s[0] = 32, ne0s[1] = 96, ne0s[2] = 160, ne0s[3] = 32 * 129;
        else ne0s[0] = 256, ne0s[1] = 768, ne0s[2] = 1280, ne0s[3] = 256 * 9;
        int Ts[] = {1, 2, 3, 4, 5, 9, 64};
        for (int s = 0; s < 4; s++)
            for (size_t t = 0; t < sizeof Ts / sizeof Ts[0]; t++) run_avx2_case(type, ne0s[s], Ts[t] > 9 ? 7 : 67, Ts[t], false);
        run_avx2_case(type, blk == 256 ? 512 : 96, 5, 3, true);
    }
    CHECK(!yan_mm_avx2_has(YAN_T_Q2_K)); /* no kernel: the caller runs the scalar one */
}
