/* sampler.c — choosing the next token from a row of logits.
 *
 * Contract. A yan_sampler owns everything one sampling step needs, sized at
 * creation for n_vocab, so yan_sampler_sample never allocates. One step runs
 * the chain llama.cpp runs by default, in this order:
 *
 *   penalties -> top_k -> top_p -> min_p -> temperature -> softmax -> draw
 *
 *  - penalties look at the last repeat_last_n accepted tokens (prompt tokens
 *    too, through yan_sampler_accept). For each distinct token t seen c times
 *    there: logit /= repeat_penalty when positive, *= repeat_penalty when not;
 *    then logit -= c * frequency_penalty + presence_penalty.
 *  - top_k keeps the k highest logits (ties: lower id first) by a bounded
 *    heap, O(n log k) worst case and about one compare per logit in practice.
 *  - top_p keeps the smallest set of highest candidates whose probability
 *    (softmax of the surviving candidates at temperature 1) reaches p. It
 *    never sorts the vocabulary: without a top_k in front, one vectorised
 *    pass finds the mass within 1, 2, 4 .. 64 logits of the top and only the
 *    tokens inside the bound that reaches p become candidates; candidates are
 *    bucketed by logit, the buckets above the one where the mass crosses p
 *    are kept whole, and only that bucket is resolved (recursively, then by
 *    a sort of <= 64). A flat distribution keeps most of the vocabulary and
 *    costs a few linear passes.
 *  - min_p keeps candidates with p >= min_p * p_max, i.e. logit >= max + log(min_p).
 *  - temperature divides the logits; softmax over the survivors; one draw
 *    from the sampler's own seeded RNG (splitmix64): same seed and same
 *    inputs, same choices.
 *  - temperature <= 0 is greedy: argmax of the penalised logits, no filters,
 *    no RNG draw; ties go to the lowest id.
 *
 * Hostile logits: NaN counts as -inf, +inf as FLT_MAX, so a NaN is never
 * chosen and an infinite logit takes all the mass. When every logit is NaN or
 * -inf the lowest id is returned.
 *
 * Logprobs are the log-softmax of the raw logits (before penalties and
 * filters): the chosen token first, then the n_top - 1 most likely tokens.
 *
 * Speed: the top_k path reads the logits once without copying them (the
 * penalised tokens are fixed up afterwards); the exp loops use four-lane
 * vectors through the compiler's vector extension (e^x to < 3e-7 relative).
 *
 * Not thread-safe: one thread uses a sampler at a time. Depends on base only.
 */
#include "base/base.h"

#include <float.h>
#include <math.h>

#define YAN_SAMPLER_DEFAULT_SEED 42u

/* One candidate token: its (penalised) logit, a weight proportional to its
 * probability when one has been computed, and its id. */
typedef struct {
    float v;
    float w;
    int32_t id;
} cand;

struct yan_sampler {
    yan_sampler_params p;
    int32_t n_vocab;      /* V */
    uint64_t rng;         /* splitmix64 state */
    float *work;          /* (V) sanitised, penalised logits (full-vocabulary paths) */
    float *prob;          /* (V) unnormalised probabilities (full-vocabulary paths) */
    cand *cand;           /* (V) candidates */
    cand *tmp;            /* (V) scratch for the top_p partition */
    int32_t *count;       /* (V) occurrences of each token in the history window */
    yan_token *hist;      /* (repeat_last_n) ring of the last accepted tokens */
    int32_t hist_cap, hist_len, hist_head;
    bool penalties;       /* any penalty is active */
};

/* ------------------------------------------------------------------ params */

yan_sampler_params yan_sampler_params_default(void) {
    yan_sampler_params p;
    memset(&p, 0, sizeof p);
    p.temperature = 0.8f;
    p.top_k = 40;
    p.top_p = 0.95f;
    p.min_p = 0.05f;
    p.repeat_penalty = 1.0f;
    p.repeat_last_n = 64;
    p.presence_penalty = 0.0f;
    p.frequency_penalty = 0.0f;
    p.seed = YAN_SAMPLER_DEFAULT_SEED;
    return p;
}

/* --------------------------------------------------------------------- rng */

static uint64_t rng_next(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* uniform in [0, 1) with 53 random bits */
static double rng_uniform(uint64_t *state) { return (double)(rng_next(state) >> 11) * 0x1.0p-53; }

/* ------------------------------------------------------------ life cycle */

yan_status yan_sampler_new(const yan_sampler_params *pp, int32_t n_vocab, yan_sampler **out) {
    if (!out) return yan_fail(YAN_ERR_INVALID_ARG, "sampler: out is NULL");
    *out = NULL;
    yan_sampler_params p = pp ? *pp : yan_sampler_params_default();
    if (n_vocab <= 0) return yan_fail(YAN_ERR_INVALID_ARG, "sampler: n_vocab must be > 0 (got %d)", (int)n_vocab);
    if (!(p.repeat_penalty > 0.0f) || !isfinite(p.repeat_penalty))
        return yan_fail(YAN_ERR_INVALID_ARG, "sampler: repeat_penalty must be a finite number > 0 (got %g; 1 = off)",
                        (double)p.repeat_penalty);
    if (p.repeat_last_n < 0)
        return yan_fail(YAN_ERR_INVALID_ARG, "sampler: repeat_last_n must be >= 0 (got %d; 0 = no history)",
                        (int)p.repeat_last_n);
    if (isnan(p.temperature) || isnan(p.top_p) || isnan(p.min_p) || !isfinite(p.presence_penalty) ||
        !isfinite(p.frequency_penalty))
        return yan_fail(YAN_ERR_INVALID_ARG, "sampler: a parameter is NaN or infinite");

    yan_sampler *s = yan_calloc(1, sizeof *s);
    if (!s) return yan_fail(YAN_ERR_NOMEM, "sampler: out of memory");
    s->p = p;
    s->n_vocab = n_vocab;
    s->hist_cap = p.repeat_last_n;
    s->penalties = p.repeat_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f;
    size_t V = (size_t)n_vocab;
    s->work = yan_malloc(V * sizeof *s->work);
    s->prob = yan_malloc(V * sizeof *s->prob);
    s->cand = yan_malloc(V * sizeof *s->cand);
    s->tmp = yan_malloc(V * sizeof *s->tmp);
    s->count = yan_calloc(V, sizeof *s->count);
    s->hist = s->hist_cap ? yan_malloc((size_t)s->hist_cap * sizeof *s->hist) : NULL;
    if (!s->work || !s->prob || !s->cand || !s->tmp || !s->count || (s->hist_cap && !s->hist)) {
        yan_sampler_free(s);
        return yan_fail(YAN_ERR_NOMEM, "sampler: out of memory for a vocabulary of %d", (int)n_vocab);
    }
    s->rng = p.seed;
    *out = s;
    return YAN_OK;
}

void yan_sampler_free(yan_sampler *s) {
    if (!s) return;
    yan_free(s->work);
    yan_free(s->prob);
    yan_free(s->cand);
    yan_free(s->tmp);
    yan_free(s->count);
    yan_free(s->hist);
    yan_free(s);
}

void yan_sampler_reset(yan_sampler *s, uint64_t seed) {
    if (!s) return;
    for (int32_t i = 0; i < s->hist_len; i++) s->count[s->hist[i]] = 0;
    s->hist_len = s->hist_head = 0;
    s->rng = seed;
}

void yan_sampler_accept(yan_sampler *s, yan_token t) {
    if (!s || s->hist_cap == 0 || t < 0 || t >= s->n_vocab) return;
    if (s->hist_len == s->hist_cap)
        s->count[s->hist[s->hist_head]]--;
    else
        s->hist_len++;
    s->hist[s->hist_head] = t;
    s->count[t]++;
    s->hist_head = s->hist_head + 1 == s->hist_cap ? 0 : s->hist_head + 1;
}

/* ------------------------------------------------------------- penalties */

static inline float sanitise(float x) {
    if (x != x) return -INFINITY;
    if (x == INFINITY) return FLT_MAX;
    return x;
}

/* The penalised value of token t whose (sanitised) logit is x; c = its count. */
static inline float penalised(const yan_sampler_params *p, float x, int32_t c) {
    if (p->repeat_penalty != 1.0f) x = x > 0.0f ? x / p->repeat_penalty : x * p->repeat_penalty;
    return x - (float)c * p->frequency_penalty - p->presence_penalty;
}

static bool penalties_apply(const yan_sampler *s) { return s->penalties && s->hist_len > 0; }

/* Penalise w[] in place. Each distinct token of the window is done once: its
 * count is negated while it is done and restored afterwards. */
static void apply_penalties(yan_sampler *s, float *w) {
    if (!penalties_apply(s)) return;
    for (int32_t i = 0; i < s->hist_len; i++) {
        yan_token t = s->hist[i];
        int32_t c = s->count[t];
        if (c <= 0) continue;
        w[t] = penalised(&s->p, w[t], c);
        s->count[t] = -c;
    }
    for (int32_t i = 0; i < s->hist_len; i++) {
        yan_token t = s->hist[i];
        if (s->count[t] < 0) s->count[t] = -s->count[t];
    }
}

/* ------------------------------------------------------------ vector exp */

/* Four-lane vectors (SSE2 / NEON baseline) through the compiler's vector
 * extension, so the exp loops vectorise at -O2 without target flags. */
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

static inline v4f v4_select(v4i mask, v4f a, v4f b) { /* mask ? a : b */
    v4i ai, bi;
    memcpy(&ai, &a, 16);
    memcpy(&bi, &b, 16);
    v4i r = (mask & ai) | (~mask & bi);
    v4f o;
    memcpy(&o, &r, 16);
    return o;
}

/* e^x for x in [-87, 0] (callers clamp): Cody-Waite reduction by ln 2 and a
 * degree-6 Taylor polynomial; relative error < 3e-7. */
static inline v4f v4_exp(v4f x) {
    v4f t = x * 1.44269504f + 12582912.0f; /* round(x / ln 2) in the low bits */
    v4f k = t - 12582912.0f;
    v4i ki;
    memcpy(&ki, &t, 16);
    ki -= 0x4B400000;
    v4f r = x - k * 0.693145752f - k * 1.42860677e-6f;
    v4f poly = 1.0f + r * (1.0f + r * (0.5f + r * (0.166666672f + r * (0.0416666679f + r * (0.00833333377f + r * 0.00138888889f)))));
    v4i bits = (ki + 127) << 23;
    v4f scale;
    memcpy(&scale, &bits, 16);
    return poly * scale;
}

/* w[0..n) = sanitise(x[0..n)), four lanes at a time. */
static void copy_sanitised(const float *x, float *w, size_t n) {
    const v4f big = {FLT_MAX, FLT_MAX, FLT_MAX, FLT_MAX}, ninf = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        v4f v;
        memcpy(&v, x + i, 16);
        v = v4_select(v == v, v, ninf);
        v = v4_select(v > big, big, v);
        memcpy(w + i, &v, 16);
    }
    for (; i < n; i++) w[i] = sanitise(x[i]);
}

/* The largest of w[0..n) (no NaN in w), four lanes at a time. */
static float max_of(const float *w, size_t n) {
    v4f mx = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        v4f v;
        memcpy(&v, w + i, 16);
        mx = v4_select(v > mx, v, mx);
    }
    float m = mx[0];
    for (int j = 1; j < 4; j++) m = mx[j] > m ? mx[j] : m;
    for (; i < n; i++) m = w[i] > m ? w[i] : m;
    return m;
}

/* Sum of e^((x[i] - sub) * mul) over x[0..n), written to out[i] when out is
 * set. NaN counts as -inf and the exponent is clamped to [-87, 0]. */
static double exp_sum(const float *x, size_t n, float sub, float mul, float *out) {
    const v4f lo = {-87.0f, -87.0f, -87.0f, -87.0f}, zero = {0, 0, 0, 0};
    double total = 0.0;
    size_t i = 0;
    for (; i + 4 <= n;) {
        v4f acc = zero;
        size_t end = i + 1024 < n ? i + 1024 : n; /* float lanes for a block, double across blocks */
        for (; i + 4 <= end; i += 4) {
            v4f v;
            memcpy(&v, x + i, 16);
            v4i ok = v == v;
            v = (v - sub) * mul;
            v = v4_select(v > zero, zero, v);
            v = v4_select(ok & (v > lo), v, lo);
            v4f e = v4_exp(v);
            if (out) memcpy(out + i, &e, 16);
            acc += e;
        }
        total += (double)acc[0] + acc[1] + acc[2] + acc[3];
    }
    for (; i < n; i++) {
        float v = x[i] != x[i] ? -87.0f : (x[i] - sub) * mul;
        v = v > 0.0f ? 0.0f : v < -87.0f ? -87.0f : v;
        float e = expf(v);
        if (out) out[i] = e;
        total += e;
    }
    return total;
}

/* ------------------------------------------------------------- selection */

/* a ranks before b: higher logit, then lower id */
static inline bool cand_before(const cand *a, const cand *b) {
    return a->v > b->v || (a->v == b->v && a->id < b->id);
}

/* min-heap on rank: h[0] is the candidate that ranks last */
static void heap_down(cand *h, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && cand_before(&h[m], &h[l])) m = l;
        if (r < n && cand_before(&h[m], &h[r])) m = r;
        if (m == i) return;
        cand t = h[i]; h[i] = h[m]; h[m] = t;
        i = m;
    }
}

static void heap_up(cand *h, size_t i) {
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!cand_before(&h[parent], &h[i])) return;
        cand t = h[i]; h[i] = h[parent]; h[parent] = t;
        i = parent;
    }
}

static inline void heap_offer(cand *h, size_t k, float v, size_t i, float *floor_v) {
    if (!(v > *floor_v)) return; /* also drops NaN; later ids lose ties */
    h[0] = (cand){sanitise(v), 0.0f, (int32_t)i};
    heap_down(h, k, 0);
    *floor_v = h[0].v;
}

/* The k highest of vals[0..n) (sanitised on the fly) into out[0..k), sorted
 * best first; returns min(k, n). The hot loop of a default step: blocks of
 * four with nothing above the heap's floor are skipped with one compare. */
static size_t select_top_k(const float *vals, size_t n, size_t k, cand *out) {
    if (k > n) k = n;
    if (k == 0) return 0;
    for (size_t m = 0; m < k; m++) {
        out[m] = (cand){sanitise(vals[m]), 0.0f, (int32_t)m};
        heap_up(out, m);
    }
    float floor_v = out[0].v;
    size_t i = k;
    for (; i + 4 <= n; i += 4) {
        v4f v;
        memcpy(&v, vals + i, 16);
        v4i gt = v > floor_v;
        if (YAN_LIKELY(!(gt[0] | gt[1] | gt[2] | gt[3]))) continue;
        for (size_t j = 0; j < 4; j++) heap_offer(out, k, vals[i + j], i + j, &floor_v);
    }
    for (; i < n; i++) heap_offer(out, k, vals[i], i, &floor_v);
    for (size_t e = k; e > 1; e--) { /* heap sort: pop the last-ranked to the end */
        cand t = out[0]; out[0] = out[e - 1]; out[e - 1] = t;
        heap_down(out, e - 1, 0);
    }
    return k;
}

/* Sort c[0..m) best first, in place (heap sort: no allocation, unlike
 * some qsort implementations). */
static void sort_cands(cand *c, size_t m) {
    for (size_t i = m / 2; i-- > 0;) heap_down(c, m, i);
    for (size_t e = m; e > 1; e--) {
        cand t = c[0]; c[0] = c[e - 1]; c[e - 1] = t;
        heap_down(c, e - 1, 0);
    }
}

/* The k best tokens by penalised logit into s->cand, sorted; returns the
 * count. Reads the raw logits without copying them: the penalised tokens
 * (P distinct) can only move, so the k best are among the raw k + P best and
 * the penalised tokens themselves. */
static size_t select_top_k_penalised(yan_sampler *s, const float *logits, size_t k) {
    const size_t n = (size_t)s->n_vocab;
    if (!penalties_apply(s)) return select_top_k(logits, n, k, s->cand);
    size_t P = 0; /* distinct tokens of the window, counted by negating their counts */
    for (int32_t i = 0; i < s->hist_len; i++) {
        int32_t *cnt = &s->count[s->hist[i]];
        if (*cnt > 0) P++, *cnt = -*cnt;
    }
    for (int32_t i = 0; i < s->hist_len; i++)
        if (s->count[s->hist[i]] < 0) s->count[s->hist[i]] *= -1;
    cand *c = s->cand;
    size_t m = select_top_k(logits, n, k + P, c);
    /* re-value the penalised ones already selected, append the others */
    for (size_t j = 0; j < m; j++) {
        int32_t cnt = s->count[c[j].id];
        if (cnt > 0) {
            c[j].v = penalised(&s->p, c[j].v, cnt);
            s->count[c[j].id] = -cnt;
        }
    }
    for (int32_t i = 0; i < s->hist_len; i++) {
        yan_token t = s->hist[i];
        int32_t cnt = s->count[t];
        if (cnt <= 0) continue;
        c[m++] = (cand){penalised(&s->p, sanitise(logits[t]), cnt), 0.0f, t};
        s->count[t] = -cnt;
    }
    for (int32_t i = 0; i < s->hist_len; i++)
        if (s->count[s->hist[i]] < 0) s->count[s->hist[i]] *= -1;
    sort_cands(c, m);
    return m < k ? m : k;
}

#define TOPP_BUCKETS 256
#define TOPP_SORT_MAX 64

/* Reorder c[0..n) so that the smallest set of best-ranked candidates whose
 * weights (c[i].w, already computed) sum to at least target comes first;
 * returns its size (>= 1 when n >= 1). tmp holds n candidates. The order
 * inside the kept set is not sorted. */
static size_t top_p_select(cand *c, size_t n, double target, cand *tmp) {
    size_t kept = 0, m = n; /* c[0..kept) are in; c[kept..kept+m) undecided */
    double t = target;
    for (int round = 0; m > 0; round++) {
        cand *r = c + kept;
        float hi = r[0].v, lo = r[0].v;
        for (size_t i = 1; i < m; i++) {
            if (r[i].v > hi) hi = r[i].v;
            if (r[i].v < lo) lo = r[i].v;
        }
        if (m <= TOPP_SORT_MAX || hi == lo || round >= 8) {
            sort_cands(r, m);
            double acc = 0.0;
            size_t i = 0;
            do acc += r[i++].w; while (i < m && acc < t);
            return kept + i;
        }
        /* bucket 0 holds the highest logits */
        double mass[TOPP_BUCKETS] = {0};
        size_t cnt[TOPP_BUCKETS] = {0};
        const double scale = TOPP_BUCKETS / ((double)hi - (double)lo);
        for (size_t i = 0; i < m; i++) {
            size_t b = (size_t)(((double)hi - (double)r[i].v) * scale);
            if (b >= TOPP_BUCKETS) b = TOPP_BUCKETS - 1;
            mass[b] += r[i].w;
            cnt[b]++;
        }
        size_t B = 0, n_before = 0;
        double m_before = 0.0;
        for (;; B++) {
            if (B == TOPP_BUCKETS - 1 || m_before + mass[B] >= t) break;
            m_before += mass[B];
            n_before += cnt[B];
        }
        /* the buckets before B are in whole; B is undecided; the rest go */
        size_t ia = 0, ib = n_before;
        for (size_t i = 0; i < m; i++) {
            size_t b = (size_t)(((double)hi - (double)r[i].v) * scale);
            if (b >= TOPP_BUCKETS) b = TOPP_BUCKETS - 1;
            if (b < B) tmp[ia++] = r[i];
            else if (b == B) tmp[ib++] = r[i];
        }
        memcpy(r, tmp, ib * sizeof *r);
        kept += n_before;
        m = cnt[B];
        t -= m_before;
        if (t <= 0.0 && kept > 0) return kept;
    }
    return kept;
}

/* Full-vocabulary top_p (no top_k in front). The mass of every token is
 * needed, but only tokens near the top become candidates:
 *  1. one vectorised pass computes e[i] = e^(w[i] - vmax), the total, and the
 *     mass within D = 1, 2, 4, ... 64 logits of vmax; the smallest D whose
 *     mass reaches the target bounds the kept set (D = inf when none does);
 *  2. tokens within D (blocks of four entirely below are skipped with one
 *     compare) are bucketed by logit over (vmax - D, vmax];
 *  3. the buckets up to the one where the mass crosses the target are
 *     gathered as candidates and top_p_select resolves the exact cut.
 * floor_v: tokens below it are not wanted anyway (min_p). */
#define FULL_LEVELS 7
static size_t gather_top_p(yan_sampler *s, const float *w, float vmax, float floor_v) {
    const size_t n = (size_t)s->n_vocab;
    float *e = s->prob;
    static const float level_d[FULL_LEVELS] = {1, 2, 4, 8, 16, 32, 64};
    v4f lv[FULL_LEVELS];
    for (int j = 0; j < FULL_LEVELS; j++) lv[j] = (v4f){0, 0, 0, 0};
    const v4f lo = {-87.0f, -87.0f, -87.0f, -87.0f}, zero = {0, 0, 0, 0};
    double total = 0.0, level[FULL_LEVELS] = {0};
    size_t i = 0;
    while (i + 4 <= n) { /* blocks of 1024 summed in float lanes, then in double */
        v4f acc = zero;
        size_t end = i + 1024 < n ? i + 1024 : n;
        for (; i + 4 <= end; i += 4) {
            v4f v;
            memcpy(&v, w + i, 16);
            v = v - vmax;
            v = v4_select(v > lo, v, lo);
            v4f ev = v4_exp(v);
            memcpy(e + i, &ev, 16);
            acc += ev;
            for (int j = 0; j < FULL_LEVELS; j++) lv[j] += v4_select(v > -level_d[j], ev, zero);
        }
        total += (double)acc[0] + acc[1] + acc[2] + acc[3];
        for (int j = 0; j < FULL_LEVELS; j++) {
            level[j] += (double)lv[j][0] + lv[j][1] + lv[j][2] + lv[j][3];
            lv[j] = zero;
        }
    }
    for (; i < n; i++) {
        float v = w[i] - vmax;
        e[i] = v > -87.0f ? expf(v) : 0.0f;
        total += e[i];
        for (int j = 0; j < FULL_LEVELS; j++) level[j] += v > -level_d[j] ? e[i] : 0.0f;
    }
    const double target = (double)s->p.top_p * total;
    float D = INFINITY;
    for (int j = 0; j < FULL_LEVELS; j++)
        if (level[j] >= target) { D = level_d[j]; break; }
    /* wanted: (w - vmax) > -D, as the levels counted it, and w >= floor_v */
    const float skip_below = floor_v > vmax - D ? floor_v : vmax - D;
    cand *c = s->cand;
    size_t m = 0;
    for (i = 0; i < n; i++) {
        if ((i & 3) == 0 && i + 4 <= n) { /* skip a block of four with nothing near the top */
            v4f v;
            memcpy(&v, w + i, 16);
            v4i near = v >= skip_below;
            if (YAN_LIKELY(!(near[0] | near[1] | near[2] | near[3]))) {
                i += 3;
                continue;
            }
        }
        const float x = w[i];
        if (x == vmax || ((x - vmax) > -D && x >= floor_v)) c[m++] = (cand){x, e[i], (int32_t)i};
    }
    return top_p_select(c, m, target, s->tmp);
}

/* One draw from c[0..m) with weights c[i].w summing to total. */
static yan_token draw(yan_sampler *s, const cand *c, size_t m, double total) {
    const double r = rng_uniform(&s->rng) * total;
    double acc = 0.0;
    size_t last = 0;
    for (size_t i = 0; i < m; i++) {
        if (c[i].w <= 0.0f) continue;
        acc += c[i].w;
        last = i;
        if (r < acc) return c[i].id;
    }
    return c[last].id; /* rounding at the top end */
}

/* The sampling path: candidates, filters, temperature, one draw. */
static yan_token sample_filtered(yan_sampler *s, const float *logits) {
    const size_t n = (size_t)s->n_vocab;
    const yan_sampler_params *p = &s->p;
    const float inv_t = 1.0f / p->temperature;
    cand *c = s->cand;
    size_t m;
    float vmax;
    bool top_p_done = false;
    if (p->top_k > 0 && (size_t)p->top_k < n) {
        m = select_top_k_penalised(s, logits, (size_t)p->top_k);
        while (m > 1 && c[m - 1].v == -INFINITY) m--;
        vmax = c[0].v;
        if (vmax == -INFINITY) return c[0].id;
    } else {
        float *w = s->work;
        copy_sanitised(logits, w, n);
        apply_penalties(s, w);
        vmax = max_of(w, n);
        if (vmax == -INFINITY) return 0;
        const float floor_v = p->min_p > 0.0f ? vmax + logf(p->min_p) : -INFINITY;
        if (p->top_p < 1.0f) {
            m = gather_top_p(s, w, vmax, floor_v);
            top_p_done = true;
        } else if (p->min_p > 0.0f) {
            m = 0;
            for (size_t i = 0; i < n; i++)
                if (w[i] >= floor_v || w[i] == vmax) c[m++] = (cand){w[i], 0.0f, (int32_t)i};
        } else { /* no filter at all: draw straight from the vocabulary */
            float *e = s->prob;
            const double total = exp_sum(w, n, vmax, inv_t, e);
            const double r = rng_uniform(&s->rng) * total;
            double acc = 0.0;
            size_t last = 0;
            for (size_t i = 0; i < n; i++) {
                if (w[i] == -INFINITY) continue;
                acc += e[i];
                if (w[i] == vmax) last = i;
                if (r < acc) return (yan_token)i;
            }
            return (yan_token)last;
        }
    }

    if (p->top_p < 1.0f && m > 1 && !top_p_done) {
        double total = 0.0;
        for (size_t i = 0; i < m; i++) {
            c[i].w = expf(c[i].v - vmax);
            total += c[i].w;
        }
        m = top_p_select(c, m, (double)p->top_p * total, s->tmp);
    }
    if (p->min_p > 0.0f && m > 1) {
        const float thr = vmax + logf(p->min_p);
        size_t j = 0;
        for (size_t i = 0; i < m; i++)
            if (c[i].v >= thr || c[i].v == vmax) c[j++] = c[i];
        m = j;
    }
    double total = 0.0;
    for (size_t i = 0; i < m; i++) {
        c[i].w = expf((c[i].v - vmax) * inv_t);
        total += c[i].w;
    }
    return draw(s, c, m, total);
}

/* ------------------------------------------------------------- logprobs */

static void fill_logprobs(yan_sampler *s, const float *logits, yan_token chosen, yan_token_logprob *top, int n_top) {
    const size_t n = (size_t)s->n_vocab;
    float lmax = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        float v = sanitise(logits[i]);
        if (v > lmax) lmax = v;
    }
    const float lse = lmax == -INFINITY ? INFINITY : lmax + (float)log(exp_sum(logits, n, lmax, 1.0f, NULL));
    top[0].token = chosen;
    top[0].logprob = sanitise(logits[chosen]) - lse;
    size_t want = (size_t)(n_top - 1);
    size_t got = select_top_k(logits, n, want, s->cand);
    for (size_t i = 0; i < got; i++) {
        top[1 + i].token = s->cand[i].id;
        top[1 + i].logprob = s->cand[i].v - lse;
    }
    for (size_t i = got; i < want; i++) {
        top[1 + i].token = -1;
        top[1 + i].logprob = -INFINITY;
    }
}

/* ------------------------------------------------------------------ step */

yan_token yan_sampler_sample(yan_sampler *s, const float *logits, yan_token_logprob *top, int n_top) {
    YAN_ASSERT(s && logits);
    yan_token tok;
    if (!(s->p.temperature > 0.0f))
        tok = select_top_k_penalised(s, logits, 1) ? s->cand[0].id : 0; /* greedy */
    else
        tok = sample_filtered(s, logits);
    if (top && n_top > 0) fill_logprobs(s, logits, tok, top, n_top);
    yan_sampler_accept(s, tok);
    return tok;
}
