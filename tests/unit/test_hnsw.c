/* test_hnsw.c — the HNSW vector index (src/rag/hnsw.c, hnsw_kernels.c): the SIMD distance
 * kernels against the scalar one and a double-precision sum; recall against
 * brute force for IP, L2 and COS on small random sets (dims that are and are
 * not multiples of 16); deletes never returned, replaced ids, compaction;
 * save/load round trips giving identical answers (and identical growth
 * afterwards); corrupt, truncated and foreign files rejected by name;
 * growth far beyond the initial capacity; determinism for a seed; parallel
 * inserts; argument errors; and allocation failures at every step of an
 * insert leaving the index unchanged. */
#include "base/base.h"
#include "rag/hnsw.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}
static float rng_unit(uint64_t *s) { return (float)((double)(rng_next(s) >> 11) / 9007199254740992.0) * 2.f - 1.f; }

/* n vectors of dim around 8 centres (so neighbourhoods are not flat noise). */
static float *make_set(int n, int dim, uint64_t seed) {
    float *v = malloc(sizeof(float) * (size_t)n * (size_t)dim);
    float cen[8][64];
    uint64_t s = seed;
    for (int c = 0; c < 8; c++)
        for (int j = 0; j < dim && j < 64; j++) cen[c][j] = rng_unit(&s);
    for (int i = 0; i < n; i++) {
        int c = (int)(rng_next(&s) % 8);
        for (int j = 0; j < dim; j++) v[(size_t)i * dim + j] = (j < 64 ? cen[c][j] : 0) + 0.6f * rng_unit(&s);
    }
    return v;
}

static double dist_ref(yan_hnsw_metric m, const float *a, const float *b, int dim) {
    double s = 0, na = 0, nb = 0;
    for (int j = 0; j < dim; j++) {
        if (m == YAN_HNSW_L2) s += ((double)a[j] - b[j]) * ((double)a[j] - b[j]);
        else s += (double)a[j] * b[j];
        na += (double)a[j] * a[j];
        nb += (double)b[j] * b[j];
    }
    if (m == YAN_HNSW_IP) return 1 - s;
    if (m == YAN_HNSW_COS) return 1 - s / sqrt(na * nb);
    return s;
}

/* Exact top k of q among the rows of v whose live[] flag is set (NULL = all). */
static void brute(yan_hnsw_metric m, const float *v, int n, int dim, const bool *live, const float *q, int k,
                  int64_t *out) {
    double *bd = malloc(sizeof(double) * (size_t)k);
    int cnt = 0;
    for (int i = 0; i < n; i++) {
        if (live && !live[i]) continue;
        double d = dist_ref(m, q, v + (size_t)i * dim, dim);
        if (cnt == k && d >= bd[k - 1]) continue;
        int p = cnt < k ? cnt++ : k - 1;
        while (p > 0 && bd[p - 1] > d) {
            bd[p] = bd[p - 1];
            out[p] = out[p - 1];
            p--;
        }
        bd[p] = d;
        out[p] = i;
    }
    for (int i = cnt; i < k; i++) out[i] = -1;
    free(bd);
}

/* recall@k of the index over nq queries drawn like the data. */
static double recall(const yan_hnsw *h, yan_hnsw_metric m, const float *v, int n, int dim, const bool *live, int k,
                     int ef, int nq, uint64_t seed) {
    float *q = make_set(nq, dim, seed);
    int64_t *want = malloc(sizeof(int64_t) * (size_t)k), *got = malloc(sizeof(int64_t) * (size_t)k);
    long hit = 0, tot = 0;
    for (int i = 0; i < nq; i++) {
        brute(m, v, n, dim, live, q + (size_t)i * dim, k, want);
        int ng = 0;
        CHECK(yan_hnsw_search(h, q + (size_t)i * dim, k, ef, got, NULL, &ng) == YAN_OK);
        for (int a = 0; a < k; a++) {
            if (want[a] < 0) continue;
            tot++;
            for (int b = 0; b < ng; b++) hit += got[b] == want[a];
        }
    }
    free(q), free(want), free(got);
    return tot ? (double)hit / (double)tot : 1.0;
}

static bool g_sq8; /* build() makes sq8 indexes */

static yan_hnsw *build(yan_hnsw_metric m, const float *v, int n, int dim, int64_t cap, uint64_t seed) {
    yan_hnsw_params p = yan_hnsw_params_default(dim);
    p.sq8 = g_sq8;
    p.metric = m;
    p.capacity = cap;
    p.seed = seed;
    p.ef_construction = 100;
    yan_hnsw *h = NULL;
    CHECK(yan_hnsw_create(&p, &h) == YAN_OK);
    if (!h) return NULL;
    for (int i = 0; i < n; i++) CHECK(yan_hnsw_add(h, i, v + (size_t)i * dim) == YAN_OK);
    return h;
}

TEST(hnsw_kernels_match_scalar) {
    uint64_t s = 7;
    float a[400], b[400];
    yan_hnsw_kernel ks[] = {YAN_HNSW_KERNEL_AUTO, YAN_HNSW_KERNEL_AVX2, YAN_HNSW_KERNEL_AVX512};
    int tested = 0;
    for (int n = 0; n <= 400; n += (n < 70 ? 1 : 37)) {
        for (int i = 0; i < n; i++) a[i] = rng_unit(&s), b[i] = rng_unit(&s);
        for (int mi = 0; mi < 2; mi++) {
            yan_hnsw_metric m = mi ? YAN_HNSW_L2 : YAN_HNSW_IP;
            double ref = dist_ref(m, a, b, n);
            float sc = yan_hnsw_distance(YAN_HNSW_KERNEL_SCALAR, m, a, b, n);
            CHECK_NEAR(sc, ref, 1e-5 * (1 + n));
            for (int k = 0; k < 3; k++) {
                float d = yan_hnsw_distance(ks[k], m, a, b, n);
                if (isnan(d)) continue; /* the CPU lacks it */
                tested++;
                CHECK_NEAR(d, sc, 1e-5 * (1 + n));
            }
        }
    }
    CHECK(tested > 0);
    CHECK(isnan(yan_hnsw_distance(YAN_HNSW_KERNEL_SCALAR, YAN_HNSW_IP, a, b, -1)));
}

TEST(hnsw_int8_kernels_exact) {
    uint64_t s = 9;
    int8_t a[400], b[400];
    yan_hnsw_kernel ks[] = {YAN_HNSW_KERNEL_SCALAR, YAN_HNSW_KERNEL_AUTO, YAN_HNSW_KERNEL_AVX2, YAN_HNSW_KERNEL_AVX512};
    for (int n = 0; n <= 400; n += (n < 140 ? 1 : 53)) {
        for (int i = 0; i < n; i++) {
            /* the extremes too: every code lies in [-127, 127] */
            a[i] = (int8_t)(i % 17 == 0 ? 127 : (int)(rng_next(&s) % 255) - 127);
            b[i] = (int8_t)(i % 13 == 0 ? -127 : (int)(rng_next(&s) % 255) - 127);
        }
        int32_t want = 0;
        for (int i = 0; i < n; i++) want += a[i] * b[i];
        for (int k = 0; k < 4; k++) {
            int32_t got = yan_hnsw_dot_i8(ks[k], a, b, n);
            if (got == INT32_MIN) continue; /* the CPU lacks it */
            CHECK(got == want);
        }
    }
    for (int i = 0; i < 384; i++) a[i] = 127, b[i] = -127; /* the largest sum a 384-dim code gives */
    CHECK(yan_hnsw_dot_i8(YAN_HNSW_KERNEL_AUTO, a, b, 384) == -127 * 127 * 384);
}

static void check_recall(yan_hnsw_metric m, int dim, yan_hnsw_kernel kernel, bool sq8) {
    enum { N = 2000 };
    float *v = make_set(N, dim, 11 + (uint64_t)dim);
    if (m == YAN_HNSW_IP) /* inner product search is meant for unit vectors (embeddings) */
        for (int i = 0; i < N; i++) {
            double ss = 0;
            for (int j = 0; j < dim; j++) ss += (double)v[(size_t)i * dim + j] * v[(size_t)i * dim + j];
            for (int j = 0; j < dim; j++) v[(size_t)i * dim + j] /= (float)sqrt(ss);
        }
    yan_hnsw_params p = yan_hnsw_params_default(dim);
    p.metric = m;
    p.kernel = kernel;
    p.ef_construction = 100;
    p.sq8 = sq8;
    yan_hnsw *h = NULL;
    yan_status st = yan_hnsw_create(&p, &h);
    if (st == YAN_ERR_UNSUPPORTED) { /* the CPU lacks this kernel */
        free(v);
        return;
    }
    CHECK(st == YAN_OK);
    int64_t *ids = malloc(sizeof(int64_t) * N);
    for (int i = 0; i < N; i++) ids[i] = i;
    CHECK(yan_hnsw_add_batch(h, ids, v, N, 1) == YAN_OK);
    CHECK(yan_hnsw_count(h) == N);
    double r = recall(h, m, v, N, dim, NULL, 10, 128, 50, 99);
    if (r < 0.95) fprintf(stderr, "  recall %.3f (metric %d, dim %d, kernel %d, sq8 %d)\n", r, (int)m, dim, (int)kernel, sq8);
    CHECK(r >= 0.95);
    /* distances are the metric's, nearest first */
    float q[64];
    memcpy(q, v + 5 * dim, sizeof(float) * (size_t)dim);
    int64_t got[5];
    float gd[5];
    int ng;
    CHECK(yan_hnsw_search(h, q, 5, 0, got, gd, &ng) == YAN_OK && ng == 5);
    CHECK(got[0] == 5);
    for (int i = 0; i < ng; i++) CHECK_NEAR(gd[i], dist_ref(m, q, v + (size_t)got[i] * dim, dim), 1e-4);
    for (int i = 1; i < ng; i++) CHECK(gd[i] >= gd[i - 1]);
    free(ids);
    free(v);
    yan_hnsw_free(h);
}

TEST(hnsw_recall_ip_l2_cos) {
    check_recall(YAN_HNSW_IP, 32, YAN_HNSW_KERNEL_AUTO, false);
    check_recall(YAN_HNSW_L2, 32, YAN_HNSW_KERNEL_AUTO, false);
    check_recall(YAN_HNSW_COS, 33, YAN_HNSW_KERNEL_AUTO, false);
    check_recall(YAN_HNSW_L2, 7, YAN_HNSW_KERNEL_SCALAR, false);
    check_recall(YAN_HNSW_IP, 48, YAN_HNSW_KERNEL_AVX2, false);
    check_recall(YAN_HNSW_L2, 20, YAN_HNSW_KERNEL_AVX512, false);
}

/* the int8 walk with f32 ranking: same recall, exact distances */
TEST(hnsw_recall_sq8) {
    check_recall(YAN_HNSW_IP, 32, YAN_HNSW_KERNEL_AUTO, true);
    check_recall(YAN_HNSW_L2, 32, YAN_HNSW_KERNEL_AUTO, true);
    check_recall(YAN_HNSW_COS, 33, YAN_HNSW_KERNEL_AUTO, true);
    check_recall(YAN_HNSW_L2, 7, YAN_HNSW_KERNEL_SCALAR, true);
    check_recall(YAN_HNSW_IP, 64, YAN_HNSW_KERNEL_AVX2, true);
    check_recall(YAN_HNSW_L2, 20, YAN_HNSW_KERNEL_AVX512, true);
}

TEST(hnsw_empty_and_edges) {
    yan_hnsw_params p = yan_hnsw_params_default(8);
    yan_hnsw *h = NULL;
    CHECK(yan_hnsw_create(&p, &h) == YAN_OK);
    float q[8] = {1, 0, 0, 0, 0, 0, 0, 0};
    int64_t ids[4];
    float ds[4];
    int n = -1;
    CHECK(yan_hnsw_search(h, q, 4, 0, ids, ds, &n) == YAN_OK && n == 0);
    CHECK(yan_hnsw_add(h, 42, q) == YAN_OK);
    CHECK(yan_hnsw_search(h, q, 4, 0, ids, ds, &n) == YAN_OK && n == 1 && ids[0] == 42);
    CHECK_NEAR(ds[0], 0, 1e-6);
    CHECK(yan_hnsw_search(h, q, 0, 0, ids, ds, &n) == YAN_OK && n == 0);
    CHECK(yan_hnsw_search(h, q, -1, 0, ids, ds, &n) == YAN_ERR_INVALID_ARG);
    float bad[8] = {0, NAN, 0, 0, 0, 0, 0, 0};
    CHECK(yan_hnsw_add(h, 43, bad) == YAN_ERR_INVALID_ARG);
    CHECK(yan_hnsw_count(h) == 1);
    CHECK(yan_hnsw_delete(h, 7) == YAN_ERR_NOT_FOUND);
    float out[8];
    CHECK(yan_hnsw_get(h, 42, out) == YAN_OK && out[0] == 1);
    CHECK(yan_hnsw_get(h, 43, out) == YAN_ERR_NOT_FOUND);
    CHECK(strcmp(yan_hnsw_kernel_name(h), "") != 0);
    CHECK(yan_hnsw_memory(h) > 0);
    yan_hnsw_free(h);
    yan_hnsw_free(NULL);

    p.dim = 0;
    CHECK(yan_hnsw_create(&p, &h) == YAN_ERR_INVALID_ARG && h == NULL);
    p = yan_hnsw_params_default(8);
    p.M = 1;
    CHECK(yan_hnsw_create(&p, &h) == YAN_ERR_INVALID_ARG);
    p = yan_hnsw_params_default(8);
    p.metric = (yan_hnsw_metric)9;
    CHECK(yan_hnsw_create(&p, &h) == YAN_ERR_INVALID_ARG);
}

static void deletes_never_returned(void) {
    enum { N = 1500, DIM = 24, K = 10 };
    float *v = make_set(N, DIM, 3);
    yan_hnsw *h = build(YAN_HNSW_L2, v, N, DIM, 0, 1);
    bool live[N];
    uint64_t s = 5;
    int ndel = 0;
    for (int i = 0; i < N; i++) live[i] = true;
    for (int i = 0; i < N / 3; i++) {
        int d = (int)(rng_next(&s) % N);
        if (!live[d]) continue;
        CHECK(yan_hnsw_delete(h, d) == YAN_OK);
        CHECK(yan_hnsw_delete(h, d) == YAN_ERR_NOT_FOUND);
        CHECK(!yan_hnsw_contains(h, d));
        live[d] = false;
        ndel++;
    }
    CHECK(yan_hnsw_count(h) == N - ndel);
    CHECK(yan_hnsw_n_deleted(h) == ndel);
    CHECK(yan_hnsw_deleted_share(h) > 0.2);
    /* searching for every deleted vector itself: never returned */
    for (int i = 0; i < N; i++) {
        if (live[i]) continue;
        int64_t got[K];
        int ng;
        CHECK(yan_hnsw_search(h, v + (size_t)i * DIM, K, 20, got, NULL, &ng) == YAN_OK);
        CHECK(ng == K);
        for (int j = 0; j < ng; j++) CHECK(live[got[j]]);
    }
    CHECK(recall(h, YAN_HNSW_L2, v, N, DIM, live, K, 64, 50, 77) >= 0.95); /* 0.992 here */

    /* compaction keeps exactly the live ids and their answers */
    CHECK(yan_hnsw_compact(h, 1) == YAN_OK);
    CHECK(yan_hnsw_n_deleted(h) == 0 && yan_hnsw_count(h) == N - ndel);
    for (int i = 0; i < N; i++) CHECK(yan_hnsw_contains(h, i) == live[i]);
    CHECK(recall(h, YAN_HNSW_L2, v, N, DIM, live, K, 64, 50, 77) >= 0.95); /* 0.992 here */
    /* a deleted id can come back */
    int back = 0;
    while (live[back]) back++;
    CHECK(yan_hnsw_add(h, back, v + (size_t)back * DIM) == YAN_OK);
    int64_t got[1];
    int ng;
    CHECK(yan_hnsw_search(h, v + (size_t)back * DIM, 1, 0, got, NULL, &ng) == YAN_OK && ng == 1 && got[0] == back);
    free(v);
    yan_hnsw_free(h);
}

TEST(hnsw_deletes_never_returned) {
    g_sq8 = false;
    deletes_never_returned();
    g_sq8 = true;
    deletes_never_returned();
    g_sq8 = false;
}

TEST(hnsw_replace_id) {
    enum { DIM = 16 };
    float *v = make_set(300, DIM, 21);
    yan_hnsw *h = build(YAN_HNSW_IP, v, 200, DIM, 0, 1);
    /* id 5 gets row 250's vector */
    CHECK(yan_hnsw_add(h, 5, v + 250 * DIM) == YAN_OK);
    CHECK(yan_hnsw_count(h) == 200);
    CHECK(yan_hnsw_n_deleted(h) == 1);
    float out[DIM];
    CHECK(yan_hnsw_get(h, 5, out) == YAN_OK && memcmp(out, v + 250 * DIM, sizeof out) == 0);
    int64_t got[200];
    int ng;
    CHECK(yan_hnsw_search(h, v + 5 * DIM, 200, 400, got, NULL, &ng) == YAN_OK && ng == 200);
    int seen5 = 0;
    for (int i = 0; i < ng; i++) seen5 += got[i] == 5;
    CHECK(seen5 == 1);
    free(v);
    yan_hnsw_free(h);
}

static void search_all(const yan_hnsw *h, const float *q, int nq, int dim, int k, int64_t *ids, float *ds) {
    for (int i = 0; i < nq; i++) {
        int ng;
        CHECK(yan_hnsw_search(h, q + (size_t)i * dim, k, 32, ids + (size_t)i * k, ds + (size_t)i * k, &ng) == YAN_OK);
        for (int j = ng; j < k; j++) ids[(size_t)i * k + j] = -1, ds[(size_t)i * k + j] = 0;
    }
}

static char *tmp_path(const char *name) {
    static char buf[4][512];
    static int next;
    char *b = buf[next++ & 3];
    snprintf(b, sizeof buf[0], "%s/%s", yan_test_tmp_dir(), name);
    return b;
}

static void save_load_round_trip(void) {
    enum { N = 1200, DIM = 20, NQ = 40, K = 8 };
    float *v = make_set(N + 50, DIM, 8), *q = make_set(NQ, DIM, 9);
    yan_hnsw *h = build(YAN_HNSW_COS, v, N, DIM, 100, 4);
    for (int i = 0; i < 50; i++) CHECK(yan_hnsw_delete(h, i * 7) == YAN_OK);
    yan_hnsw_set_stamp(h, 0x1234567890ULL);
    const char *path = tmp_path("rt.hnsw");
    CHECK(yan_hnsw_save(h, path) == YAN_OK);
    yan_hnsw *g = NULL;
    CHECK(yan_hnsw_load(path, YAN_HNSW_KERNEL_AUTO, &g) == YAN_OK);
    if (!g) goto out;
    CHECK(yan_hnsw_stamp(g) == 0x1234567890ULL);
    CHECK(yan_hnsw_count(g) == yan_hnsw_count(h) && yan_hnsw_n_deleted(g) == 50);
    const yan_hnsw_params *pa = yan_hnsw_get_params(h), *pb = yan_hnsw_get_params(g);
    CHECK(pa->dim == pb->dim && pa->metric == pb->metric && pa->M == pb->M &&
          pa->ef_construction == pb->ef_construction && pa->seed == pb->seed && pa->sq8 == pb->sq8 && pb->sq8 == g_sq8);
    int64_t ia[NQ * K], ib[NQ * K];
    float da[NQ * K], db[NQ * K];
    search_all(h, q, NQ, DIM, K, ia, da);
    search_all(g, q, NQ, DIM, K, ib, db);
    CHECK(memcmp(ia, ib, sizeof ia) == 0 && memcmp(da, db, sizeof da) == 0);
    /* both grow the same way afterwards (the level RNG is saved) */
    for (int i = N; i < N + 50; i++) {
        CHECK(yan_hnsw_add(h, i, v + (size_t)i * DIM) == YAN_OK);
        CHECK(yan_hnsw_add(g, i, v + (size_t)i * DIM) == YAN_OK);
    }
    search_all(h, q, NQ, DIM, K, ia, da);
    search_all(g, q, NQ, DIM, K, ib, db);
    CHECK(memcmp(ia, ib, sizeof ia) == 0 && memcmp(da, db, sizeof da) == 0);
    /* saving again gives the same bytes from both */
    const char *p2 = tmp_path("rt2.hnsw"), *p3 = tmp_path("rt3.hnsw");
    CHECK(yan_hnsw_save(h, p2) == YAN_OK && yan_hnsw_save(g, p3) == YAN_OK);
    uint8_t *b2 = NULL, *b3 = NULL;
    size_t l2 = 0, l3 = 1; /* unequal until both are read */
    CHECK(yan_read_file(p2, &b2, &l2) == YAN_OK && yan_read_file(p3, &b3, &l3) == YAN_OK);
    CHECK(l2 == l3 && memcmp(b2, b3, l2) == 0);
    yan_free(b2), yan_free(b3);
    /* an empty index round-trips too */
    yan_hnsw *e = NULL, *e2 = NULL;
    yan_hnsw_params pe = yan_hnsw_params_default(5);
    pe.sq8 = g_sq8;
    CHECK(yan_hnsw_create(&pe, &e) == YAN_OK && yan_hnsw_save(e, p2) == YAN_OK);
    CHECK(yan_hnsw_load(p2, YAN_HNSW_KERNEL_SCALAR, &e2) == YAN_OK && e2 && yan_hnsw_count(e2) == 0);
    yan_hnsw_free(e), yan_hnsw_free(e2);
out:
    free(v), free(q);
    yan_hnsw_free(h);
    yan_hnsw_free(g);
}

TEST(hnsw_save_load_round_trip) {
    g_sq8 = false;
    save_load_round_trip();
    g_sq8 = true;
    save_load_round_trip();
    g_sq8 = false;
}

static bool write_bytes(const char *path, const uint8_t *b, size_t n) { return yan_write_atomic(path, b, n) == YAN_OK; }

/* A load of path fails with want, and the message names the file. */
static void expect_load_fails(const char *path, yan_status want) {
    yan_hnsw *g = (yan_hnsw *)1;
    yan_status st = yan_hnsw_load(path, YAN_HNSW_KERNEL_AUTO, &g);
    if (st != want) fprintf(stderr, "  load %s: %d (%s), want %d\n", path, (int)st, yan_last_error(), (int)want);
    CHECK(st == want);
    CHECK(g == NULL);
    CHECK(strstr(yan_last_error(), path) != NULL);
    if (st == YAN_OK) yan_hnsw_free(g);
}

TEST(hnsw_corrupt_files_rejected) {
    enum { N = 300, DIM = 12 };
    float *v = make_set(N, DIM, 12);
    yan_hnsw *h = build(YAN_HNSW_L2, v, N, DIM, 0, 2);
    const char *path = tmp_path("c.hnsw"), *bad = tmp_path("bad.hnsw");
    CHECK(yan_hnsw_save(h, path) == YAN_OK);
    uint8_t *b;
    size_t len;
    CHECK(yan_read_file(path, &b, &len) == YAN_OK);
    CHECK(len > 128);
    if (len <= 128) {
        yan_free(b), free(v), yan_hnsw_free(h);
        return;
    }
    /* one flipped bit anywhere: header fields, checksum, ids, vectors, lists, last byte */
    size_t offs[] = {0, 12, 20, 60, 100, 120, 128, 128 + 8 * N + 3, len / 2, len - 70, len - 1};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        b[offs[i]] ^= 0x10;
        CHECK(write_bytes(bad, b, len));
        expect_load_fails(bad, YAN_ERR_FORMAT);
        b[offs[i]] ^= 0x10;
    }
    /* truncated at several lengths, and one byte too many */
    size_t cuts[] = {0, 7, 64, 127, 128, 500, len / 2, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        CHECK(write_bytes(bad, b, cuts[i]));
        expect_load_fails(bad, YAN_ERR_FORMAT);
    }
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, b, len);
    longer[len] = 0;
    CHECK(write_bytes(bad, longer, len + 1));
    expect_load_fails(bad, YAN_ERR_FORMAT);
    free(longer);
    /* a newer version is reported as such */
    b[8] = 2;
    CHECK(write_bytes(bad, b, len));
    expect_load_fails(bad, YAN_ERR_UNSUPPORTED);
    b[8] = 1;
    expect_load_fails(tmp_path("missing.hnsw"), YAN_ERR_IO);
    /* the intact file still loads */
    CHECK(write_bytes(bad, b, len));
    yan_hnsw *g = NULL;
    CHECK(yan_hnsw_load(bad, YAN_HNSW_KERNEL_AUTO, &g) == YAN_OK && g && yan_hnsw_count(g) == N);
    yan_hnsw_free(g);
    yan_free(b);
    free(v);
    yan_hnsw_free(h);
}

TEST(hnsw_growth_beyond_capacity) {
    enum { N = 3000, DIM = 16 };
    float *v = make_set(N, DIM, 31);
    for (int sq8 = 0; sq8 < 2; sq8++) {
        g_sq8 = sq8;
        yan_hnsw *h = build(YAN_HNSW_L2, v, N, DIM, 1, 6); /* capacity 1: grows many times */
        CHECK(yan_hnsw_count(h) == N);
        for (int i = 0; i < N; i += 97) CHECK(yan_hnsw_contains(h, i));
        CHECK(recall(h, YAN_HNSW_L2, v, N, DIM, NULL, 10, 128, 40, 5) >= 0.95);
        yan_hnsw_free(h);
    }
    g_sq8 = false;
    free(v);
}

TEST(hnsw_deterministic_for_a_seed) {
    enum { N = 800, DIM = 16 };
    float *v = make_set(N, DIM, 41);
    yan_hnsw *a = build(YAN_HNSW_IP, v, N, DIM, 0, 77), *b = build(YAN_HNSW_IP, v, N, DIM, 500, 77),
             *c = build(YAN_HNSW_IP, v, N, DIM, 0, 78);
    const char *pa = tmp_path("da.hnsw"), *pb = tmp_path("db.hnsw"), *pc = tmp_path("dc.hnsw");
    CHECK(yan_hnsw_save(a, pa) == YAN_OK && yan_hnsw_save(b, pb) == YAN_OK && yan_hnsw_save(c, pc) == YAN_OK);
    uint8_t *ba = NULL, *bb = NULL, *bc = NULL;
    size_t la = 0, lb = 1, lc = 2; /* unequal until read */
    CHECK(yan_read_file(pa, &ba, &la) == YAN_OK && yan_read_file(pb, &bb, &lb) == YAN_OK &&
          yan_read_file(pc, &bc, &lc) == YAN_OK);
    CHECK(la == lb && memcmp(ba, bb, la) == 0); /* same seed, any capacity: same bytes */
    CHECK(la != lc || memcmp(ba, bc, la) != 0); /* another seed: another graph */
    yan_free(ba), yan_free(bb), yan_free(bc);
    free(v);
    yan_hnsw_free(a), yan_hnsw_free(b), yan_hnsw_free(c);
}

TEST(hnsw_parallel_build) {
    enum { N = 3000, DIM = 24 };
    float *v = make_set(N, DIM, 51);
    int64_t *ids = malloc(sizeof(int64_t) * N);
    for (int i = 0; i < N; i++) ids[i] = 1000 + i;
    yan_hnsw_params p = yan_hnsw_params_default(DIM);
    p.metric = YAN_HNSW_L2;
    p.ef_construction = 100;
    yan_hnsw *h = NULL;
    CHECK(yan_hnsw_create(&p, &h) == YAN_OK);
    CHECK(yan_hnsw_add_batch(h, ids, v, N, 4) == YAN_OK);
    CHECK(yan_hnsw_count(h) == N);
    /* recall, with ids offset by 1000 */
    float *q = make_set(40, DIM, 52);
    long hit = 0;
    for (int i = 0; i < 40; i++) {
        int64_t want[10], got[10];
        int ng;
        brute(YAN_HNSW_L2, v, N, DIM, NULL, q + (size_t)i * DIM, 10, want);
        CHECK(yan_hnsw_search(h, q + (size_t)i * DIM, 10, 200, got, NULL, &ng) == YAN_OK && ng == 10);
        for (int a = 0; a < 10; a++)
            for (int b = 0; b < 10; b++) hit += got[b] == want[a] + 1000;
    }
    if (hit < 390) fprintf(stderr, "  parallel build: %ld of 400 found\n", hit);
    CHECK(hit >= 390); /* a single-threaded build finds 398 */
    free(q), free(ids), free(v);
    yan_hnsw_free(h);
}

static void alloc_failures(void) {
    enum { N = 200, DIM = 16 };
    float *v = make_set(N + 40, DIM, 61);
    yan_hnsw *h = build(YAN_HNSW_L2, v, N, DIM, 0, 3);
    int failures = 0;
    for (long k = 1; k <= 40; k++) {
        int64_t before = yan_hnsw_count(h);
        int64_t ids[40];
        for (int i = 0; i < 40; i++) ids[i] = N + i;
        /* a batch large enough to grow every structure, on a fresh searcher */
        yan_alloc_fail_after(k);
        yan_status st = yan_hnsw_add_batch(h, ids, v + (size_t)N * DIM, 40, 1);
        yan_alloc_fail_after(0);
        if (st == YAN_OK) {
            for (int i = 0; i < 40; i++) CHECK(yan_hnsw_delete(h, N + i) == YAN_OK);
            CHECK(yan_hnsw_compact(h, 1) == YAN_OK);
            continue;
        }
        failures++;
        CHECK(st == YAN_ERR_NOMEM);
        CHECK(yan_hnsw_count(h) == before);
        CHECK(!yan_hnsw_contains(h, N));
    }
    CHECK(failures > 0);
    /* creation and loading fail cleanly too */
    const char *path = tmp_path("af.hnsw");
    CHECK(yan_hnsw_save(h, path) == YAN_OK);
    for (long k = 1; k <= 12; k++) {
        yan_hnsw *g = NULL;
        yan_alloc_fail_after(k);
        yan_status st = yan_hnsw_load(path, YAN_HNSW_KERNEL_AUTO, &g);
        yan_alloc_fail_after(0);
        CHECK(st == YAN_OK ? g != NULL : g == NULL);
        yan_hnsw_free(g);
    }
    CHECK(recall(h, YAN_HNSW_L2, v, N, DIM, NULL, 5, 128, 20, 3) >= 0.95);
    free(v);
    yan_hnsw_free(h);
}

TEST(hnsw_alloc_failures_leave_index_unchanged) {
    g_sq8 = false;
    alloc_failures();
    g_sq8 = true;
    alloc_failures();
    g_sq8 = false;
}
