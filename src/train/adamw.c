/* adamw.c — AdamW over a yan_tmodel's parameter block, computed as
 * torch.optim.AdamW (PyTorch 1.13, foreach=False) computes it, operation by
 * operation in float:
 *   p *= 1 - lr wd                        (1 - lr wd rounded once to float)
 *   m = m b1 + (1 - b1) g
 *   v = v b2 + (1 - b2) g g
 *   p += (-lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * with the bias corrections in double and rounded to float, as the Python
 * scalars are. The step is split over the pool in contiguous ranges of the
 * block; every float is updated alone, so the thread count changes nothing.
 *
 * yan_grad_clip is torch.nn.utils.clip_grad_norm_: the 2-norm of all
 * gradients; when max_norm / (norm + 1e-6) < 1 every gradient is multiplied
 * by that factor. The norm is summed in double over fixed chunks of the block
 * (their size depends only on the block's size), and the chunk sums are added
 * in chunk order: the result does not depend on the thread count.
 * Dependencies: tmodel.h, pool.h. */
#include "train/adamw.h"

#include <math.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define MAX_CHUNKS 4096

yan_status yan_adamw_init(yan_adamw *o, const yan_tmodel *m) {
    memset(o, 0, sizeof *o);
    o->beta1 = 0.9f;
    o->beta2 = 0.95f;
    o->eps = 1e-8f;
    o->weight_decay = 0.1f;
    o->n = m->n_params;
    size_t bytes;
    if (yan_mul_ovf((size_t)m->n_params, 2 * sizeof(float), &bytes))
        return yan_fail(YAN_ERR_NOMEM, "AdamW: %lld parameters are too many", (long long)m->n_params);
    /* one block: m then v (n_params is a multiple of 16 floats, so v stays aligned) */
    o->m = yan_malloc64(bytes);
    if (!o->m) return yan_fail(YAN_ERR_NOMEM, "out of memory for the AdamW moments (%zu bytes)", bytes);
    memset(o->m, 0, bytes);
    o->v = o->m + o->n;
    return YAN_OK;
}

void yan_adamw_free(yan_adamw *o) {
    if (!o) return;
    yan_free64(o->m);
    o->m = o->v = NULL;
}

/* ------------------------------------------------------------------ step */

typedef struct {
    yan_adamw *o;
    yan_tmodel *m;
    float decay_mul;   /* 1 - lr wd */
    float step_size;   /* lr / (1 - b1^t) */
    float bc2_sqrt;    /* sqrt(1 - b2^t) */
    float one_m_b1, one_m_b2;
} step_job;

/* The hot loop: one contiguous range of one tensor. The AVX2 form does the
 * same operations in the same order (no FMA; sqrt and division are correctly
 * rounded in both), so it gives the scalar loop's bits. */
#if defined(__x86_64__)
__attribute__((target("avx2"))) static int64_t update_avx2(const step_job *j, int64_t a, int64_t b, float dm) {
    float *p = j->m->params, *g = j->m->grads, *mm = j->o->m, *vv = j->o->v;
    const __m256 b1 = _mm256_set1_ps(j->o->beta1), b2 = _mm256_set1_ps(j->o->beta2);
    const __m256 eps = _mm256_set1_ps(j->o->eps), ss = _mm256_set1_ps(-j->step_size);
    const __m256 bc2 = _mm256_set1_ps(j->bc2_sqrt), vdm = _mm256_set1_ps(dm);
    const __m256 c1 = _mm256_set1_ps(j->one_m_b1), c2 = _mm256_set1_ps(j->one_m_b2);
    int64_t i = a;
    for (; i + 8 <= b; i += 8) {
        __m256 gi = _mm256_loadu_ps(g + i);
        __m256 pi = _mm256_mul_ps(_mm256_loadu_ps(p + i), vdm);
        __m256 mi = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(mm + i), b1), _mm256_mul_ps(c1, gi));
        __m256 vi = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(vv + i), b2), _mm256_mul_ps(_mm256_mul_ps(c2, gi), gi));
        _mm256_storeu_ps(mm + i, mi);
        _mm256_storeu_ps(vv + i, vi);
        __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), bc2), eps);
        _mm256_storeu_ps(p + i, _mm256_add_ps(pi, _mm256_div_ps(_mm256_mul_ps(ss, mi), denom)));
    }
    return i;
}
#endif

static void update(const step_job *j, int64_t a, int64_t b, bool decay) {
    float *p = j->m->params, *g = j->m->grads, *mm = j->o->m, *vv = j->o->v;
    const float b1 = j->o->beta1, b2 = j->o->beta2, eps = j->o->eps, ss = -j->step_size, bc2 = j->bc2_sqrt;
    const float dm = decay ? j->decay_mul : 1.0f, c1 = j->one_m_b1, c2 = j->one_m_b2;
#if defined(__x86_64__)
    if (yan_cpu_get()->avx2) a = update_avx2(j, a, b, dm);
#endif
    for (int64_t i = a; i < b; i++) {
        float gi = g[i];
        float pi = p[i] * dm;
        float mi = mm[i] * b1 + c1 * gi;
        float vi = vv[i] * b2 + c2 * gi * gi;
        mm[i] = mi;
        vv[i] = vi;
        float denom = sqrtf(vi) / bc2 + eps;
        p[i] = pi + ss * mi / denom;
    }
}

static void step_worker(void *ud, int ith, int nth) {
    const step_job *j = ud;
    const yan_tmodel *m = j->m;
    const int64_t n = m->n_params;
    int64_t lo = n * ith / nth, hi = n * (ith + 1) / nth;
    for (int i = 0; i < m->n_tensors; i++) {
        const yan_tparam *t = &m->tensors[i];
        int64_t a = t->offset, b = t->offset + t->ne0 * t->ne1;
        if (a < lo) a = lo;
        if (b > hi) b = hi;
        if (a < b) update(j, a, b, t->decay);
    }
}

void yan_adamw_step(yan_adamw *o, yan_tmodel *m, float lr) {
    YAN_ASSERT(o->n == m->n_params);
    o->t++;
    const double bc1 = 1.0 - pow((double)o->beta1, (double)o->t);
    const double bc2 = 1.0 - pow((double)o->beta2, (double)o->t);
    step_job j = {
        .o = o,
        .m = m,
        .decay_mul = (float)(1.0 - (double)lr * (double)o->weight_decay),
        .step_size = (float)((double)lr / bc1),
        .bc2_sqrt = (float)sqrt(bc2),
        .one_m_b1 = (float)(1.0 - (double)o->beta1),
        .one_m_b2 = (float)(1.0 - (double)o->beta2),
    };
    yan_pool_run(m->pool, step_worker, &j);
}

/* ------------------------------------------------------------ grad clip */

typedef struct {
    yan_tmodel *m;
    int64_t chunk;     /* floats per chunk */
    int n_chunks;
    double *sums;      /* (n_chunks) */
    float coef;        /* scale phase: multiply every gradient by coef */
} clip_job;

static double sumsq(const float *g, int64_t n) {
    /* eight partial sums in a fixed pattern: fast, and the same on any thread */
    double s[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) s[k] += (double)g[i + k] * g[i + k];
    for (; i < n; i++) s[0] += (double)g[i] * g[i];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

static void norm_worker(void *ud, int ith, int nth) {
    clip_job *j = ud;
    const int64_t n = j->m->n_params;
    for (int c = ith; c < j->n_chunks; c += nth) {
        int64_t a = (int64_t)c * j->chunk, b = a + j->chunk < n ? a + j->chunk : n;
        j->sums[c] = sumsq(j->m->grads + a, b - a);
    }
}

static void scale_worker(void *ud, int ith, int nth) {
    clip_job *j = ud;
    const int64_t n = j->m->n_params;
    float *g = j->m->grads;
    const float c = j->coef;
    for (int64_t i = n * ith / nth, e = n * (ith + 1) / nth; i < e; i++) g[i] *= c;
}

float yan_grad_clip(yan_tmodel *m, float max_norm) {
    double sums[MAX_CHUNKS];
    int64_t n = m->n_params;
    int64_t chunk = 1 << 16;
    if ((n + chunk - 1) / chunk > MAX_CHUNKS) chunk = (n + MAX_CHUNKS - 1) / MAX_CHUNKS;
    clip_job j = {.m = m, .chunk = chunk, .n_chunks = (int)((n + chunk - 1) / chunk), .sums = sums};
    yan_pool_run(m->pool, norm_worker, &j);
    double total = 0;
    for (int c = 0; c < j.n_chunks; c++) total += sums[c];
    const float norm = (float)sqrt(total);
    if (max_norm > 0) {
        const float coef = max_norm / (norm + 1e-6f);
        if (coef < 1.0f) {
            j.coef = coef;
            yan_pool_run(m->pool, scale_worker, &j);
        }
    }
    return norm;
}
