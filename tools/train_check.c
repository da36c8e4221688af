/* train_check.c — the training model (src/train/tmodel.c, adamw.c) against
 * PyTorch (tests/train/torch_ref.py), and a step-time benchmark.
 *
 *   train_check gen DIR [--dim N] [--layers N] [--heads N] [--kv-heads N]
 *                   [--ff N] [--ctx N] [--tied] [--vocab FILE] [--batch B]
 *                   [--seq T] [--batches N] [--mask P] [--steps N] [--lr X]
 *                   [--init-scale X] [--seed S]
 *       writes DIR/model.gguf (a random model, yan_tmodel_to_gguf) and
 *       DIR/batches.bin (token batches, some targets -1 with probability P,
 *       and the AdamW settings and learning rates).
 *   train_check run DIR OUT [--threads N]
 *       loads DIR/model.gguf with yan_tmodel_load_gguf; forward + backward on
 *       batch 0 (loss, logits, every gradient), then --steps AdamW steps
 *       (zero grad, forward, backward, clip at max_norm, step at that step's
 *       learning rate; batches in turn) and writes the records to OUT.
 *   train_check bench [--dim N] [--layers N] [--heads N] [--kv-heads N]
 *                     [--ff N] [--n-vocab V] [--tied] [--batch B] [--seq T]
 *                     [--threads N] [--steps N]
 *       times forward + backward + clip + AdamW steps on random tokens.
 *
 * The tokenizer of gen: --vocab FILE (any vocabulary yan_tokenizer_load
 * reads; V = its size) or a byte-level one built here (256 bytes, 3 merges,
 * 2 control tokens: V = 261).
 *
 * batches.bin (little-endian): "YANTBAT1", i32 B, T, n_batches, n_steps,
 * f32 max_norm, beta1, beta2, eps, weight_decay, f32 lr[n_steps],
 * i32 inputs[n_batches][B][T], i32 targets[n_batches][B][T].
 * Records file (also written by torch_ref.py): "YANTRES1", then records of
 * u32 name length, name, u64 count, f32 values[count]: loss, n_targets,
 * logits (B*T*V), grad.<tensor name> (GGUF layout, ne0 fastest),
 * adamw.loss and adamw.norm (n_steps each).
 * Dependencies: libyan internals (tmodel, adamw, GGUF writer, tokenizer). */
#include "base/base.h"
#include "gguf/gguf.h"
#include "tokenizer/pretok.h"
#include "tokenizer/tok.h"
#include "tokenizer/tok_gguf.h"
#include "train/adamw.h"
#include "train/tmodel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef struct {
    int dim, layers, heads, kv_heads, ff, ctx, batch, seq, batches, steps, threads, n_vocab;
    bool tied;
    const char *vocab;
    float mask, lr, init_scale;
    uint64_t seed;
} opts;

static void usage(void) {
    fprintf(stderr,
            "usage: train_check gen DIR [--dim N] [--layers N] [--heads N] [--kv-heads N] [--ff N] [--ctx N]\n"
            "                       [--tied] [--vocab FILE] [--batch B] [--seq T] [--batches N] [--mask P]\n"
            "                       [--steps N] [--lr X] [--init-scale X] [--seed S]\n"
            "       train_check run DIR OUT [--threads N]\n"
            "       train_check bench [--dim N] [--layers N] [--heads N] [--kv-heads N] [--ff N] [--n-vocab V]\n"
            "                         [--tied] [--batch B] [--seq T] [--threads N] [--steps N]\n"
            "example: train_check gen /tmp/tc --kv-heads 2 --mask 0.25 && train_check run /tmp/tc /tmp/tc/yan.bin\n");
}

static int parse(int argc, char **argv, int first, opts *o) {
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT_INT(name, field)                                                  \
    if (!strcmp(a, name) && v) { o->field = atoi(v); i++; continue; }
#define OPT_F(name, field)                                                    \
    if (!strcmp(a, name) && v) { o->field = strtof(v, NULL); i++; continue; }
        OPT_INT("--dim", dim) OPT_INT("--layers", layers) OPT_INT("--heads", heads) OPT_INT("--kv-heads", kv_heads)
        OPT_INT("--ff", ff) OPT_INT("--ctx", ctx) OPT_INT("--batch", batch) OPT_INT("--seq", seq)
        OPT_INT("--batches", batches) OPT_INT("--steps", steps) OPT_INT("--threads", threads)
        OPT_INT("--n-vocab", n_vocab) OPT_F("--mask", mask) OPT_F("--lr", lr) OPT_F("--init-scale", init_scale)
#undef OPT_INT
#undef OPT_F
        if (!strcmp(a, "--seed") && v) { o->seed = strtoull(v, NULL, 10); i++; continue; }
        if (!strcmp(a, "--vocab") && v) { o->vocab = v; i++; continue; }
        if (!strcmp(a, "--tied")) { o->tied = true; continue; }
        fprintf(stderr, "train_check: unknown or incomplete option '%s'\n", a);
        usage();
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------- helpers */

static uint64_t g_rng;
static uint64_t rnd64(void) {
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rnd_unit(void) { return (double)(rnd64() >> 11) / 9007199254740992.0; }

static int die(const char *what) {
    fprintf(stderr, "train_check: %s: %s\n", what, yan_last_error());
    return 1;
}

static yan_tokenizer *byte_tokenizer(void) {
    yan_tokenizer *t = yan_malloc(sizeof *t);
    if (!t) return NULL;
    yan_tok_init(t);
    t->pre = YAN_PRE_GPT2;
    for (int b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        yan_tok_set(t, b, &c, 1, YAN_TT_NORMAL, 0);
    }
    yan_tok_set(t, 256, "th", 2, YAN_TT_NORMAL, 0);
    yan_tok_set(t, 257, "the", 3, YAN_TT_NORMAL, 0);
    yan_tok_set(t, 258, " t", 2, YAN_TT_NORMAL, 0);
    yan_tok_add_merge(t, 't', 'h');
    yan_tok_add_merge(t, 256, 'e');
    yan_tok_add_merge(t, ' ', 't');
    yan_tok_set(t, 259, "<|endoftext|>", 13, YAN_TT_CONTROL, 0);
    yan_tok_set(t, 260, "<|im_end|>", 10, YAN_TT_CONTROL, 0);
    t->special[YAN_SPECIAL_EOS] = 259;
    if (yan_tok_finalize(t)) {
        yan_tokenizer_free(t);
        return NULL;
    }
    return t;
}

static yan_tconfig make_cfg(const opts *o, int V) {
    yan_tconfig c;
    yan_tconfig_default(&c);
    c.n_vocab = V;
    c.n_ctx = o->ctx > o->seq ? o->ctx : o->seq;
    c.n_embd = o->dim;
    c.n_layer = o->layers;
    c.n_head = o->heads;
    c.n_head_kv = o->kv_heads ? o->kv_heads : o->heads;
    c.n_ff = o->ff;
    c.tied_output = o->tied;
    return c;
}

/* --------------------------------------------------------------- gen */

static int cmd_gen(const char *dir, const opts *o) {
    mkdir(dir, 0755);
    yan_tokenizer *tok = NULL;
    if (o->vocab) {
        if (yan_tokenizer_load(o->vocab, NULL, &tok)) return die(o->vocab);
    } else if (!(tok = byte_tokenizer())) {
        return die("byte tokenizer");
    }
    const int V = yan_tokenizer_n_vocab(tok);
    yan_tconfig c = make_cfg(o, V);
    yan_tmodel *m;
    if (yan_tmodel_new(&c, 1, 1, 1, &m)) return die("model");
    yan_tmodel_init(m, o->seed);
    /* std 0.02 gives flat logits and tiny gradients: scale the matrices */
    for (int i = 0; i < m->n_tensors; i++) {
        const yan_tparam *t = &m->tensors[i];
        float *p = m->params + t->offset;
        int64_t n = t->ne0 * t->ne1;
        g_rng = o->seed * 31 + (uint64_t)i;
        if (t->decay)
            for (int64_t j = 0; j < n; j++) p[j] *= o->init_scale;
        else /* norms a little off 1, so that a wrong norm weight shows */
            for (int64_t j = 0; j < n; j++) p[j] = (float)(1.0 + 0.2 * (rnd_unit() - 0.5));
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/model.gguf", dir);
    yan_gguf_writer *w;
    if (yan_gguf_writer_new(&w) || yan_tmodel_to_gguf(m, tok, NULL, "train-check", w) || yan_gguf_w_write(w, path))
        return die(path);
    yan_gguf_writer_free(w);

    const int B = o->batch, T = o->seq, NB = o->batches;
    const size_t n = (size_t)NB * B * T;
    int32_t *in = malloc(n * 4), *tg = malloc(n * 4);
    float *lr = malloc((size_t)o->steps * 4);
    g_rng = o->seed ^ 0x5eed;
    for (size_t i = 0; i < n; i++) {
        in[i] = (int32_t)(rnd64() % (uint64_t)V);
        tg[i] = rnd_unit() < o->mask ? -1 : (int32_t)(rnd64() % (uint64_t)V);
    }
    if (o->mask > 0 && B > 1) /* a fully masked row in the first batch */
        for (int t = 0; t < T; t++) tg[(size_t)(B - 1) * T + t] = -1;
    for (int s = 0; s < o->steps; s++) { /* warm-up then cosine decay */
        double warm = (s + 1.0) / 3.0;
        lr[s] = (float)(o->lr * (warm < 1 ? warm : 1) * (0.55 + 0.45 * cos(3.141592653589793 * s / o->steps)));
    }
    snprintf(path, sizeof path, "%s/batches.bin", dir);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        return 1;
    }
    int32_t hdr[4] = {B, T, NB, o->steps};
    float hp[5] = {1.0f, 0.9f, 0.95f, 1e-8f, 0.1f};
    fwrite("YANTBAT1", 1, 8, f);
    fwrite(hdr, 4, 4, f);
    fwrite(hp, 4, 5, f);
    fwrite(lr, 4, (size_t)o->steps, f);
    fwrite(in, 4, n, f);
    fwrite(tg, 4, n, f);
    if (fclose(f)) {
        perror(path);
        return 1;
    }
    printf("wrote %s/model.gguf (V %d, C %d, L %d, NH %d, NKV %d, FF %d, %s) and batches.bin (%d x %d x %d)\n", dir,
           V, c.n_embd, c.n_layer, c.n_head, c.n_head_kv, c.n_ff, c.tied_output ? "tied" : "untied", NB, B, T);
    free(in);
    free(tg);
    free(lr);
    yan_tmodel_free(m);
    yan_tokenizer_free(tok);
    return 0;
}

/* --------------------------------------------------------------- run */

static void put_rec(FILE *f, const char *name, const float *v, uint64_t n) {
    uint32_t len = (uint32_t)strlen(name);
    fwrite(&len, 4, 1, f);
    fwrite(name, 1, len, f);
    fwrite(&n, 8, 1, f);
    fwrite(v, 4, n, f);
}

static int cmd_run(const char *dir, const char *out, const opts *o) {
    char path[4096];
    snprintf(path, sizeof path, "%s/batches.bin", dir);
    uint8_t *buf;
    size_t len;
    if (yan_read_file(path, &buf, &len)) return die(path);
    int32_t hdr[4];
    float hp[5];
    if (len < 44 || memcmp(buf, "YANTBAT1", 8)) {
        fprintf(stderr, "train_check: %s is not a batches file\n", path);
        return 1;
    }
    memcpy(hdr, buf + 8, 16);
    memcpy(hp, buf + 24, 20);
    const int B = hdr[0], T = hdr[1], NB = hdr[2], NS = hdr[3];
    const size_t n = (size_t)NB * B * T;
    if (len != 44 + (size_t)NS * 4 + 2 * n * 4) {
        fprintf(stderr, "train_check: %s has the wrong size\n", path);
        return 1;
    }
    const float *lr = (const float *)(buf + 44);
    const int32_t *in = (const int32_t *)(buf + 44 + (size_t)NS * 4), *tg = in + n;

    snprintf(path, sizeof path, "%s/model.gguf", dir);
    yan_tmodel *m;
    if (yan_tmodel_load_gguf(path, B, T, o->threads, &m, NULL, NULL)) return die(path);
    const int V = m->cfg.n_vocab;
    FILE *f = fopen(out, "wb");
    if (!f) {
        perror(out);
        return 1;
    }
    fwrite("YANTRES1", 1, 8, f);
    yan_tmodel_zero_grad(m);
    float loss = yan_tmodel_forward(m, in, tg, B, T), nt = (float)yan_tmodel_n_targets(m);
    put_rec(f, "loss", &loss, 1);
    put_rec(f, "n_targets", &nt, 1);
    put_rec(f, "logits", yan_tmodel_logits(m), (uint64_t)B * T * V);
    yan_tmodel_backward(m, 1.0f);
    for (int i = 0; i < m->n_tensors; i++) {
        const yan_tparam *t = &m->tensors[i];
        char name[80];
        snprintf(name, sizeof name, "grad.%s", t->name);
        put_rec(f, name, m->grads + t->offset, (uint64_t)(t->ne0 * t->ne1));
    }
    yan_adamw opt;
    if (yan_adamw_init(&opt, m)) return die("adamw");
    opt.beta1 = hp[1];
    opt.beta2 = hp[2];
    opt.eps = hp[3];
    opt.weight_decay = hp[4];
    float *losses = malloc((size_t)NS * 4), *norms = malloc((size_t)NS * 4);
    for (int s = 0; s < NS; s++) {
        const size_t b = (size_t)(s % NB) * B * T;
        yan_tmodel_zero_grad(m);
        losses[s] = yan_tmodel_forward(m, in + b, tg + b, B, T);
        yan_tmodel_backward(m, 1.0f);
        norms[s] = yan_grad_clip(m, hp[0]);
        yan_adamw_step(&opt, m, lr[s]);
    }
    put_rec(f, "adamw.loss", losses, (uint64_t)NS);
    put_rec(f, "adamw.norm", norms, (uint64_t)NS);
    if (fclose(f)) {
        perror(out);
        return 1;
    }
    printf("loss %.7f over %d targets; after %d AdamW steps %.7f (threads %d)\n", (double)loss, (int)nt, NS,
           (double)losses[NS - 1], yan_pool_size(m->pool));
    free(losses);
    free(norms);
    yan_adamw_free(&opt);
    yan_tmodel_free(m);
    yan_free(buf);
    return 0;
}

/* ------------------------------------------------------------- bench */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmd_bench(const opts *o) {
    yan_tconfig c = make_cfg(o, o->n_vocab);
    const int B = o->batch, T = o->seq;
    yan_tmodel *m;
    if (yan_tmodel_new(&c, B, T, o->threads, &m)) return die("model");
    yan_tmodel_init(m, o->seed);
    yan_adamw opt;
    if (yan_adamw_init(&opt, m)) return die("adamw");
    int32_t *in = malloc((size_t)B * T * 4), *tg = malloc((size_t)B * T * 4);
    g_rng = o->seed;
    for (int i = 0; i < B * T; i++) {
        in[i] = (int32_t)(rnd64() % (uint64_t)c.n_vocab);
        tg[i] = (int32_t)(rnd64() % (uint64_t)c.n_vocab);
    }
    double tf = 0, tb = 0, to = 0, best = 1e30;
    int counted = 0;
    for (int s = 0; s <= o->steps; s++) { /* step 0 warms up */
        double t0 = now_s();
        yan_tmodel_zero_grad(m);
        float loss = yan_tmodel_forward(m, in, tg, B, T);
        double t1 = now_s();
        yan_tmodel_backward(m, 1.0f);
        double t2 = now_s();
        yan_grad_clip(m, 1.0f);
        yan_adamw_step(&opt, m, 1e-3f);
        double t3 = now_s();
        if (!isfinite(loss)) {
            fprintf(stderr, "train_check: the loss is not finite\n");
            return 1;
        }
        if (s == 0) continue;
        tf += t1 - t0;
        tb += t2 - t1;
        to += t3 - t2;
        best = fmin(best, t3 - t0);
        counted++;
    }
    double step = (tf + tb + to) / counted;
    printf("config: V %d, C %d, L %d, NH %d, NKV %d, FF %d, %s; batch %d x %d; %d threads; %lld parameters\n",
           c.n_vocab, c.n_embd, c.n_layer, c.n_head, c.n_head_kv, c.n_ff, c.tied_output ? "tied" : "untied", B, T,
           yan_pool_size(m->pool), (long long)m->n_params);
    printf("step: %.1f ms (best %.1f ms; forward %.1f, backward %.1f, clip+adamw %.1f), %.0f tokens/s\n",
           1e3 * step, 1e3 * best, 1e3 * tf / counted, 1e3 * tb / counted, 1e3 * to / counted, B * T / step);
    free(in);
    free(tg);
    yan_adamw_free(&opt);
    yan_tmodel_free(m);
    return 0;
}

int main(int argc, char **argv) {
    opts o = {.dim = 64, .layers = 2, .heads = 4, .kv_heads = 0, .ff = 96, .ctx = 0, .batch = 2, .seq = 24,
              .batches = 3, .steps = 10, .threads = 0, .n_vocab = 4096, .mask = 0, .lr = 2e-3f,
              .init_scale = 5.0f, .seed = 1234};
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage();
        return argc < 2;
    }
    if (!strcmp(argv[1], "gen") && argc >= 3) {
        if (parse(argc, argv, 3, &o)) return 2;
        return cmd_gen(argv[2], &o);
    }
    if (!strcmp(argv[1], "run") && argc >= 4) {
        if (parse(argc, argv, 4, &o)) return 2;
        return cmd_run(argv[2], argv[3], &o);
    }
    if (!strcmp(argv[1], "bench")) {
        o.dim = 256, o.layers = 4, o.heads = 4, o.ff = 704, o.batch = 8, o.seq = 256, o.steps = 3, o.threads = 2;
        if (parse(argc, argv, 2, &o)) return 2;
        return cmd_bench(&o);
    }
    usage();
    return 2;
}
