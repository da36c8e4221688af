/* bench/hnsw.c — the HNSW index (src/rag/hnsw.c) on synthetic embedding
 * sets, the C side of bench/hnsw.sh (the peers are in bench/hnsw_peer.py).
 *
 *   bench_hnsw gen --set easy|hard [--n N] [--nq Q] [--dim D] --out FILE
 *       Generate a data set deterministically and its exact top-100 by
 *       brute force; write it to FILE (format below) for both sides to read.
 *   bench_hnsw run --data FILE [--M 16] [--efc 200] [--ef 10,16,32,...]
 *                  [--reps 3] [--threads 1] [--kernel auto|avx512|avx2|scalar]
 *                  [--sq8 0|1] [--save FILE | --load FILE]
 *       Build the index single-threaded (or on --threads; or load a saved
 *       one, then "build" is the load time), then for each ef
 *       search every query once per rep, one at a time on this thread, and
 *       print the best rep. Output lines (parsed by hnsw.sh):
 *         build <seconds> rss_mb <resident growth> index_mb <yan_hnsw_memory> kernel <name> cpu <seconds>
 *         ef <ef> recall <recall@10> qps <queries per second> cpu_qps <per second of thread CPU time>
 *
 * Sets (unit vectors, inner product = cosine; the nearest neighbours are
 * the same as in L2):
 *   easy: 1000 Gaussian clusters: centre c ~ N(0, I/d), point
 *         normalize(c + g), g ~ N(0, I/d): within a cluster points have
 *         cosine ~0.5, between clusters ~0, so each neighbourhood sits
 *         inside one cluster (the set).
 *   hard: 10 wide clusters (10,000 points each at n = 100,000) whose spread
 *         follows a power-law spectrum, variance of coordinate i ~ 1/(i+1)
 *         scaled to twice the centre's norm: a neighbourhood is a small part of a
 *         large, anisotropic cloud, as with text embeddings, and the graph
 *         must route within the cloud rather than just find the cluster.
 * Queries are fresh draws from the same mixture.
 *
 * File: "YHNSWDS1", u32 n, nq, dim, gt_k, then base (n x dim f32), queries
 * (nq x dim f32), ground truth (nq x gt_k int32 ids, nearest first). */
#include "base/base.h"
#include "rag/hnsw.h"

#include <math.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

enum { GT_K = 100, RECALL_K = 10 };

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double proc_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double rss_mb(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2) res = 0;
        fclose(f);
    }
    return (double)res * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

static void die(const char *msg) {
    fprintf(stderr, "bench_hnsw: %s\n", msg);
    exit(1);
}

/* ------------------------------------------------------------- generation */

static uint64_t rng_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static double rng_unit(uint64_t *s) { return ((double)(rng_u64(s) >> 11) + 0.5) / 9007199254740992.0; }
static double rng_gauss(uint64_t *s) { return sqrt(-2.0 * log(rng_unit(s))) * cos(6.283185307179586 * rng_unit(s)); }

static void normalize(float *x, int d) {
    double ss = 0;
    for (int i = 0; i < d; i++) ss += (double)x[i] * x[i];
    float inv = (float)(1.0 / sqrt(ss));
    for (int i = 0; i < d; i++) x[i] *= inv;
}

typedef struct {
    int clusters;
    float *centre;  /* (clusters, dim) */
    float *scale;   /* (dim) per-coordinate noise scale */
    int dim;
} mixture;

static void mixture_init(mixture *m, const char *set, int dim, uint64_t *rng) {
    bool hard = strcmp(set, "hard") == 0;
    if (!hard && strcmp(set, "easy") != 0) die("--set is easy or hard");
    m->dim = dim;
    m->clusters = hard ? 10 : 1000;
    m->centre = malloc(sizeof(float) * (size_t)m->clusters * (size_t)dim);
    m->scale = malloc(sizeof(float) * (size_t)dim);
    if (!m->centre || !m->scale) die("out of memory");
    double sd = 1.0 / sqrt(dim);
    for (size_t i = 0; i < (size_t)m->clusters * (size_t)dim; i++) m->centre[i] = (float)(rng_gauss(rng) * sd);
    if (!hard) {
        for (int i = 0; i < dim; i++) m->scale[i] = (float)sd;
    } else {
        double tot = 0;
        for (int i = 0; i < dim; i++) tot += 1.0 / (i + 1);
        for (int i = 0; i < dim; i++) m->scale[i] = (float)(2.0 * sqrt(1.0 / (i + 1) / tot));
    }
}

static void mixture_draw(const mixture *m, float *x, uint64_t *rng) {
    int c = (int)(rng_u64(rng) % (uint64_t)m->clusters);
    const float *ce = m->centre + (size_t)c * (size_t)m->dim;
    for (int i = 0; i < m->dim; i++) x[i] = ce[i] + (float)rng_gauss(rng) * m->scale[i];
    normalize(x, m->dim);
}

typedef struct {
    const float *base, *q;
    int n, nq, dim;
    int32_t *gt;
} gt_job;

/* Exact top GT_K for 8 queries per task, the base walked in blocks that
 * stay in cache while the 8 queries pass over them. */
static void gt_task(void *ud, int task) {
    gt_job *j = ud;
    enum { QB = 8, BB = 256 };
    int q0 = task * QB, q1 = q0 + QB < j->nq ? q0 + QB : j->nq;
    float bd[QB][GT_K];
    int32_t bi[QB][GT_K];
    int cnt[QB] = {0};
    for (int b0 = 0; b0 < j->n; b0 += BB) {
        int b1 = b0 + BB < j->n ? b0 + BB : j->n;
        for (int qi = q0; qi < q1; qi++) {
            int t = qi - q0;
            const float *q = j->q + (size_t)qi * (size_t)j->dim;
            for (int b = b0; b < b1; b++) {
                float d = yan_hnsw_distance(YAN_HNSW_KERNEL_AUTO, YAN_HNSW_IP, q, j->base + (size_t)b * (size_t)j->dim, j->dim);
                if (cnt[t] == GT_K && d >= bd[t][GT_K - 1]) continue;
                int p = cnt[t] < GT_K ? cnt[t]++ : GT_K - 1;
                while (p > 0 && bd[t][p - 1] > d) {
                    bd[t][p] = bd[t][p - 1];
                    bi[t][p] = bi[t][p - 1];
                    p--;
                }
                bd[t][p] = d;
                bi[t][p] = b;
            }
        }
    }
    for (int qi = q0; qi < q1; qi++) memcpy(j->gt + (size_t)qi * GT_K, bi[qi - q0], sizeof bi[0]);
}

static int cmd_gen(const char *set, int n, int nq, int dim, const char *out) {
    if (!out) die("gen needs --out");
    uint64_t rng = strcmp(set, "hard") == 0 ? 0x4841524400000001ULL : 0x4541535900000001ULL;
    mixture m;
    mixture_init(&m, set, dim, &rng);
    float *base = malloc(sizeof(float) * (size_t)n * (size_t)dim), *q = malloc(sizeof(float) * (size_t)nq * (size_t)dim);
    int32_t *gt = malloc(sizeof(int32_t) * (size_t)nq * GT_K);
    if (!base || !q || !gt) die("out of memory");
    for (int i = 0; i < n; i++) mixture_draw(&m, base + (size_t)i * (size_t)dim, &rng);
    for (int i = 0; i < nq; i++) mixture_draw(&m, q + (size_t)i * (size_t)dim, &rng);
    double t0 = now();
    gt_job j = {base, q, n, nq, dim, gt};
    yan_parallel_for(0, (nq + 7) / 8, gt_task, &j);
    fprintf(stderr, "bench_hnsw: %s set, %d x %d, %d queries, ground truth in %.1f s\n", set, n, dim, nq, now() - t0);
    char magic[8] = {'Y', 'H', 'N', 'S', 'W', 'D', 'S', '1'};
    uint32_t hd[4] = {(uint32_t)n, (uint32_t)nq, (uint32_t)dim, GT_K};
    yan_afile af;
    if (yan_afile_open(&af, out) || yan_afile_write(&af, magic, 8) || yan_afile_write(&af, hd, sizeof hd) ||
        yan_afile_write(&af, base, sizeof(float) * (size_t)n * (size_t)dim) ||
        yan_afile_write(&af, q, sizeof(float) * (size_t)nq * (size_t)dim) ||
        yan_afile_write(&af, gt, sizeof(int32_t) * (size_t)nq * GT_K) || yan_afile_commit(&af))
        die(yan_last_error());
    free(base), free(q), free(gt), free(m.centre), free(m.scale);
    return 0;
}

/* -------------------------------------------------------------------- run */

typedef struct {
    uint8_t *raw;
    size_t len;
    int n, nq, dim, gt_k;
    const float *base, *q;
    const int32_t *gt;
} dataset;

static void dataset_load(dataset *d, const char *path) {
    if (yan_read_file(path, &d->raw, &d->len)) die(yan_last_error());
    uint32_t hd[4];
    if (d->len < 24 || memcmp(d->raw, "YHNSWDS1", 8) != 0) die("not a data set file (bench_hnsw gen)");
    memcpy(hd, d->raw + 8, sizeof hd);
    d->n = (int)hd[0], d->nq = (int)hd[1], d->dim = (int)hd[2], d->gt_k = (int)hd[3];
    size_t need = 24 + 4 * ((size_t)d->n * (size_t)d->dim + (size_t)d->nq * (size_t)d->dim + (size_t)d->nq * (size_t)d->gt_k);
    if (d->len != need || d->gt_k < RECALL_K) die("data set file has the wrong size");
    d->base = (const float *)(d->raw + 24);
    d->q = d->base + (size_t)d->n * (size_t)d->dim;
    d->gt = (const int32_t *)(d->q + (size_t)d->nq * (size_t)d->dim);
}

static int cmd_run(const char *data, int M, int efc, const char *ef_list, int reps, int threads, const char *kernel,
                   const char *save, const char *load, bool sq8) {
    if (!data) die("run needs --data");
    dataset ds;
    dataset_load(&ds, data);
    yan_hnsw_params p = yan_hnsw_params_default(ds.dim);
    p.metric = YAN_HNSW_IP;
    p.M = M;
    p.ef_construction = efc;
    p.capacity = ds.n;
    p.sq8 = sq8;
    p.kernel = !strcmp(kernel, "avx512") ? YAN_HNSW_KERNEL_AVX512
             : !strcmp(kernel, "avx2")   ? YAN_HNSW_KERNEL_AVX2
             : !strcmp(kernel, "scalar") ? YAN_HNSW_KERNEL_SCALAR
                                         : YAN_HNSW_KERNEL_AUTO;
    int64_t *ids = malloc(sizeof(int64_t) * (size_t)ds.n);
    if (!ids) die("out of memory");
    for (int i = 0; i < ds.n; i++) ids[i] = i;
    double rss0 = rss_mb();
    double t0 = now(), bc0 = proc_cpu();
    yan_hnsw *h;
    if (load) {
        if (yan_hnsw_load(load, p.kernel, &h)) die(yan_last_error());
    } else if (yan_hnsw_create(&p, &h) || yan_hnsw_add_batch(h, ids, ds.base, ds.n, threads)) {
        die(yan_last_error());
    }
    double build = now() - t0, build_cpu = proc_cpu() - bc0;
    printf("build %.3f rss_mb %.1f index_mb %.1f kernel %s%s cpu %.3f\n", build, rss_mb() - rss0,
           (double)yan_hnsw_memory(h) / (1024.0 * 1024.0), yan_hnsw_kernel_name(h), p.sq8 ? "+sq8" : "", build_cpu);
    fflush(stdout);
    if (save && yan_hnsw_save(h, save)) die(yan_last_error());

    int64_t *res = malloc(sizeof(int64_t) * (size_t)ds.nq * RECALL_K);
    if (!res) die("out of memory");
    char *list = yan_strdup(ef_list), *save_p = NULL;
    for (char *tok = strtok_r(list, ",", &save_p); tok; tok = strtok_r(NULL, ",", &save_p)) {
        int ef = atoi(tok);
        if (ef < 1) continue;
        double best = 1e30, best_cpu = 1e30;
        for (int r = 0; r < reps; r++) {
            double s0 = now(), c0 = cpu_now();
            for (int qi = 0; qi < ds.nq; qi++) {
                int got;
                if (yan_hnsw_search(h, ds.q + (size_t)qi * (size_t)ds.dim, RECALL_K, ef, res + (size_t)qi * RECALL_K, NULL, &got))
                    die(yan_last_error());
                for (int k = got; k < RECALL_K; k++) res[(size_t)qi * RECALL_K + k] = -1;
            }
            double el = now() - s0, cel = cpu_now() - c0;
            if (el < best) best = el;
            if (cel < best_cpu) best_cpu = cel;
        }
        long hit = 0;
        for (int qi = 0; qi < ds.nq; qi++)
            for (int a = 0; a < RECALL_K; a++)
                for (int b = 0; b < RECALL_K; b++)
                    hit += res[(size_t)qi * RECALL_K + a] == ds.gt[(size_t)qi * (size_t)ds.gt_k + b];
        printf("ef %d recall %.4f qps %.0f cpu_qps %.0f\n", ef, (double)hit / ((double)ds.nq * RECALL_K), ds.nq / best,
               ds.nq / best_cpu);
        fflush(stdout);
    }
    yan_free(list);
    free(res);
    free(ids);
    yan_hnsw_free(h);
    yan_free(ds.raw);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) die("usage: bench_hnsw gen|run [options] (see bench/hnsw.c)");
    const char *cmd = argv[1], *set = "easy", *out = NULL, *data = NULL, *ef = "10,12,14,16,20,24,32,48,64,96,128";
    const char *kernel = "auto", *save = NULL, *load = NULL;
    int n = 100000, nq = 1000, dim = 384, M = 16, efc = 200, reps = 3, threads = 1, sq8 = 0;
    for (int i = 2; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) die("option without a value");
        if (!strcmp(a, "--set")) set = v;
        else if (!strcmp(a, "--n")) n = atoi(v);
        else if (!strcmp(a, "--nq")) nq = atoi(v);
        else if (!strcmp(a, "--dim")) dim = atoi(v);
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--M")) M = atoi(v);
        else if (!strcmp(a, "--efc")) efc = atoi(v);
        else if (!strcmp(a, "--ef")) ef = v;
        else if (!strcmp(a, "--reps")) reps = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--kernel")) kernel = v;
        else if (!strcmp(a, "--save")) save = v;
        else if (!strcmp(a, "--load")) load = v;
        else if (!strcmp(a, "--sq8")) sq8 = atoi(v);
        else die("unknown option");
    }
    if (n < GT_K || nq < 1 || dim < 1 || reps < 1) die("bad sizes");
    if (!strcmp(cmd, "gen")) return cmd_gen(set, n, nq, dim, out);
    if (!strcmp(cmd, "run")) return cmd_run(data, M, efc, ef, reps, threads, kernel, save, load, sq8 != 0);
    die("unknown command (gen or run)");
    return 1;
}
