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
 *                     [--lora-rank R [--lora-targets LIST] [--quant TYPE]
 *                      [--exact-forward]]
 *       times forward + backward + clip + AdamW steps on random tokens;
 *       with --lora-rank, of LoRA adapters on a random base written to a
 *       temporary GGUF (quantized to TYPE with yan_model_quantize: a mapped
 *       base; --exact-forward: its forward on dequantized tiles too), and
 *       prints the memory the base takes.
 *   train_check logprobs MODEL IDS OUT.bin [--lora ADAPTER] [--threads N]
 *       yan's inference engine (public API: yan_model_load, then
 *       yan_model_apply_lora when --lora is given) on the token ids of IDS
 *       from position 0: the log-softmax of every position (n_ids x n_vocab
 *       float32) to OUT.bin, as tests/peers/llama_peer.mjs writes it.
 *
 * LoRA (gen --lora-rank R [--lora-alpha A] [--lora-targets LIST]): gen also
 * writes DIR/adapter.gguf, random adapters on the targets (A uniform in
 * +-1/sqrt(in), B uniform in +-0.5/sqrt(r): non-zero so that A gets a
 * gradient). run then loads the model as a frozen base with those adapters
 * (yan_tmodel_load_lora + yan_tmodel_adapter_load) and records the adapter
 * gradients (grad.<adapter tensor>) and the AdamW steps over the adapters
 * (all decayed).
 * SFT batches (gen --sft FILE.jsonl [--chat-template NAME]): the batches are
 * made by yan_sft_load + yan_sft_batch (one conversation per row, padded,
 * targets -1 outside the assistant replies, rows in yan_sft_shuffle order)
 * instead of random tokens; use it with --vocab.
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
#include "train/sft.h"
#include "train/tmodel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int dim, layers, heads, kv_heads, ff, ctx, batch, seq, batches, steps, threads, n_vocab, lora_rank;
    bool tied, exact_forward;
    const char *vocab, *lora_targets, *sft, *chat, *quant, *lora;
    float mask, lr, init_scale, lora_alpha;
    uint64_t seed;
} opts;

static void usage(void) {
    fprintf(stderr,
            "usage: train_check gen DIR [--dim N] [--layers N] [--heads N] [--kv-heads N] [--ff N] [--ctx N]\n"
            "                       [--tied] [--vocab FILE] [--batch B] [--seq T] [--batches N] [--mask P]\n"
            "                       [--steps N] [--lr X] [--init-scale X] [--seed S]\n"
            "                       [--lora-rank R] [--lora-alpha A] [--lora-targets LIST]\n"
            "                       [--sft FILE.jsonl] [--chat-template NAME]\n"
            "       train_check run DIR OUT [--threads N]\n"
            "       train_check bench [--dim N] [--layers N] [--heads N] [--kv-heads N] [--ff N] [--n-vocab V]\n"
            "                         [--tied] [--batch B] [--seq T] [--threads N] [--steps N]\n"
            "                         [--lora-rank R] [--lora-targets LIST] [--quant TYPE] [--exact-forward]\n"
            "       train_check logprobs MODEL IDS OUT.bin [--lora ADAPTER] [--threads N]\n"
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
        OPT_INT("--lora-rank", lora_rank) OPT_F("--lora-alpha", lora_alpha)
#undef OPT_INT
#undef OPT_F
        if (!strcmp(a, "--seed") && v) { o->seed = strtoull(v, NULL, 10); i++; continue; }
        if (!strcmp(a, "--vocab") && v) { o->vocab = v; i++; continue; }
        if (!strcmp(a, "--lora-targets") && v) { o->lora_targets = v; i++; continue; }
        if (!strcmp(a, "--sft") && v) { o->sft = v; i++; continue; }
        if (!strcmp(a, "--chat-template") && v) { o->chat = v; i++; continue; }
        if (!strcmp(a, "--quant") && v) { o->quant = v; i++; continue; }
        if (!strcmp(a, "--lora") && v) { o->lora = v; i++; continue; }
        if (!strcmp(a, "--exact-forward")) { o->exact_forward = true; continue; }
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
    if (o->lora_rank > 0) { /* random adapters, B non-zero */
        yan_tlora lo = {.rank = o->lora_rank, .alpha = o->lora_alpha > 0 ? o->lora_alpha : (float)o->lora_rank};
        if (yan_tlora_parse_targets(o->lora_targets ? o->lora_targets : "all", &lo.targets)) return die("--lora-targets");
        yan_tmodel *ml;
        if (yan_tmodel_new_lora(&c, &lo, 1, 1, 1, &ml)) return die("LoRA model");
        g_rng = o->seed * 77 + 5;
        for (int i = 0; i < ml->n_tensors; i++) {
            const yan_tparam *t = &ml->tensors[i];
            const bool is_b = strstr(t->name, ".lora_b") != NULL;
            const double bound = is_b ? 0.5 / sqrt((double)lo.rank) : 1.0 / sqrt((double)t->ne0);
            for (int64_t j = 0; j < t->ne0 * t->ne1; j++)
                ml->params[t->offset + j] = (float)(bound * (2 * rnd_unit() - 1));
        }
        snprintf(path, sizeof path, "%s/adapter.gguf", dir);
        if (yan_gguf_writer_new(&w) || yan_tmodel_adapter_to_gguf(ml, "train-check", w) || yan_gguf_w_write(w, path))
            return die(path);
        yan_gguf_writer_free(w);
        printf("wrote %s (rank %d, alpha %g, %d tensors)\n", path, lo.rank, (double)lo.alpha, ml->n_tensors);
        yan_tmodel_free(ml);
    }

    const int B = o->batch, T = o->seq, NB = o->batches;
    const size_t n = (size_t)NB * B * T;
    int32_t *in = malloc(n * 4), *tg = malloc(n * 4);
    float *lr = malloc((size_t)o->steps * 4);
    g_rng = o->seed ^ 0x5eed;
    if (o->sft) { /* one conversation per row, as yan finetune makes them */
        yan_sft_data d;
        if (yan_sft_load(o->sft, tok, o->chat ? o->chat : "chatml", T, &d)) return die(o->sft);
        int64_t *perm = yan_sft_shuffle(d.n_examples, o->seed);
        yan_token pad = yan_tokenizer_special(tok, YAN_SPECIAL_EOS);
        uint64_t pos = 0;
        for (int b = 0; b < NB; b++)
            yan_sft_batch(&d, perm, &pos, B, T, pad >= 0 ? pad : 0, in + (size_t)b * B * T, tg + (size_t)b * B * T);
        int64_t nt = 0;
        for (size_t i = 0; i < n; i++) nt += tg[i] >= 0;
        printf("SFT batches from %s: %lld conversations, %lld trained targets of %zu positions\n", o->sft,
               (long long)d.n_examples, (long long)nt, n);
        yan_free(perm);
        yan_sft_free(&d);
    } else {
        for (size_t i = 0; i < n; i++) {
            in[i] = (int32_t)(rnd64() % (uint64_t)V);
            tg[i] = rnd_unit() < o->mask ? -1 : (int32_t)(rnd64() % (uint64_t)V);
        }
        if (o->mask > 0 && B > 1) /* a fully masked row in the first batch */
            for (int t = 0; t < T; t++) tg[(size_t)(B - 1) * T + t] = -1;
    }
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

/* rank, alpha and targets of an adapter file */
static int adapter_settings(const char *path, yan_tlora *lo) {
    yan_gguf *g;
    if (yan_gguf_open(path, &g)) return die(path);
    memset(lo, 0, sizeof *lo);
    if (yan_gguf_get_f32(g, "adapter.lora.alpha", &lo->alpha)) {
        yan_gguf_close(g);
        return die(path);
    }
    for (int64_t i = 0; i < yan_gguf_n_tensors(g); i++) {
        const yan_gguf_tensor *t = yan_gguf_tensor_at(g, i);
        for (int k = 0; k < YAN_LORA_N_TARGETS; k++) {
            char want[64];
            int n = snprintf(want, sizeof want, ".%s.weight.lora_a", yan_tlora_target_tensor(k));
            if (t->name_len > (size_t)n && !memcmp(t->name + t->name_len - n, want, (size_t)n)) {
                lo->targets |= 1u << k;
                lo->rank = (int32_t)t->ne[1];
            }
        }
    }
    yan_gguf_close(g);
    return 0;
}

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
    char apath[4096];
    snprintf(apath, sizeof apath, "%s/adapter.gguf", dir);
    struct stat sb;
    if (stat(apath, &sb) == 0) { /* LoRA: the model is the frozen base */
        yan_tlora lo;
        if (adapter_settings(apath, &lo)) return 1;
        if (yan_tmodel_load_lora(path, &lo, B, T, o->threads, &m, NULL, NULL)) return die(path);
        if (yan_tmodel_adapter_load(m, apath)) return die(apath);
    } else if (yan_tmodel_load_gguf(path, B, T, o->threads, &m, NULL, NULL)) {
        return die(path);
    }
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
    char path[4096] = "", qpath[4096] = "", mem[256] = "";
    if (o->lora_rank > 0) { /* adapters on a random base written to a file */
        yan_tlora lo = {.rank = o->lora_rank, .alpha = o->lora_alpha > 0 ? o->lora_alpha : (float)o->lora_rank};
        if (yan_tlora_parse_targets(o->lora_targets ? o->lora_targets : "all", &lo.targets)) return die("--lora-targets");
        yan_tmodel *full;
        if (yan_tmodel_new(&c, 1, 1, 1, &full)) return die("model");
        yan_tmodel_init(full, o->seed);
        const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(path, sizeof path, "%s/train_check_bench_%d.gguf", tmp, (int)getpid());
        yan_gguf_writer *w;
        if (yan_gguf_writer_new(&w) || yan_tmodel_to_gguf(full, NULL, NULL, "bench", w) || yan_gguf_w_write(w, path))
            return die(path);
        yan_gguf_writer_free(w);
        yan_tmodel_free(full);
        const char *load_path = path;
        if (o->quant) {
            snprintf(qpath, sizeof qpath, "%s/train_check_bench_%d-%s.gguf", tmp, (int)getpid(), o->quant);
            if (yan_model_quantize(path, qpath, o->quant, o->threads, NULL, NULL)) return die(qpath);
            load_path = qpath;
        }
        if (yan_tmodel_load_lora(load_path, &lo, B, T, o->threads, &m, NULL, NULL)) return die(load_path);
        yan_tmodel_init(m, o->seed);
        for (int i = 0; i < m->n_tensors; i++) /* B non-zero, as after some training */
            if (strstr(m->tensors[i].name, "lora_b"))
                for (int64_t j = 0; j < m->tensors[i].ne0 * m->tensors[i].ne1; j++)
                    m->params[m->tensors[i].offset + j] = 1e-3f * (float)(j % 7);
        if (o->exact_forward) yan_tmodel_set_mapped_forward(m, false);
        struct stat sb;
        double mapped_mb = m->mapped && stat(load_path, &sb) == 0 ? (double)sb.st_size / 1048576.0 : 0;
        char tg[64];
        yan_tlora_targets_str(lo.targets, tg, sizeof tg);
        snprintf(mem, sizeof mem,
                 "LoRA rank %d on %s: %lld trainable floats; base %s: %.1f MiB f32 in memory%s%.1f MiB mapped",
                 lo.rank, tg, (long long)m->n_params, m->mapped ? o->quant : "f32",
                 (double)m->n_base * 4 / 1048576.0, m->mapped ? " (norms) + " : " + ", mapped_mb);
        unlink(path); /* a mapping outlives the name */
        if (qpath[0]) unlink(qpath);
    } else if (yan_tmodel_new(&c, B, T, o->threads, &m)) {
        return die("model");
    } else {
        yan_tmodel_init(m, o->seed);
    }
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
    if (mem[0]) printf("%s%s\n", mem, o->exact_forward && m->mapped ? "; exact (dequantized) forward" : "");
    printf("step: %.1f ms (best %.1f ms; forward %.1f, backward %.1f, clip+adamw %.1f), %.0f tokens/s\n",
           1e3 * step, 1e3 * best, 1e3 * tf / counted, 1e3 * tb / counted, 1e3 * to / counted, B * T / step);
    free(in);
    free(tg);
    yan_adamw_free(&opt);
    yan_tmodel_free(m);
    return 0;
}

/* ---------------------------------------------------------- logprobs */

static int cmd_logprobs(const char *model, const char *ids_path, const char *out, const opts *o) {
    uint8_t *text;
    size_t len;
    if (yan_read_file(ids_path, &text, &len)) return die(ids_path);
    size_t n = 0, cap = 64;
    yan_token *ids = malloc(cap * sizeof *ids);
    char *p = (char *)text, *end = (char *)text + len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')) p++;
        if (p >= end) break;
        char *e;
        long v = strtol(p, &e, 10);
        if (e == p || v < 0) {
            fprintf(stderr, "train_check: %s: not a list of token ids\n", ids_path);
            return 1;
        }
        if (n == cap) ids = realloc(ids, (cap *= 2) * sizeof *ids);
        ids[n++] = (yan_token)v;
        p = e;
    }
    yan_free(text);
    yan_model *m;
    yan_model_params mp = yan_model_params_default();
    if (yan_model_load(model, &mp, &m)) return die(model);
    if (o->lora && yan_model_apply_lora(m, o->lora, 1.0f)) return die(o->lora);
    yan_context_params cp = yan_context_params_default();
    cp.kv_type = YAN_KV_F32;
    cp.n_ctx = (int32_t)n + 8;
    cp.n_threads = o->threads;
    yan_context *ctx;
    if (yan_context_new(m, &cp, &ctx)) return die("context");
    if (yan_eval(ctx, ids, n, true)) return die("eval");
    const int32_t V = yan_model_n_vocab(m);
    FILE *f = fopen(out, "wb");
    if (!f) {
        perror(out);
        return 1;
    }
    float *row = malloc((size_t)V * sizeof *row);
    for (size_t i = 0; i < n; i++) {
        const float *lg = yan_logits(ctx, (int32_t)i);
        double mx = lg[0], z = 0;
        for (int32_t v = 1; v < V; v++) mx = lg[v] > mx ? lg[v] : mx;
        for (int32_t v = 0; v < V; v++) z += exp((double)lg[v] - mx);
        for (int32_t v = 0; v < V; v++) row[v] = (float)((double)lg[v] - mx - log(z));
        fwrite(row, sizeof *row, (size_t)V, f);
    }
    free(row);
    free(ids);
    if (fclose(f)) {
        perror(out);
        return 1;
    }
    printf("{\"n_vocab\":%d,\"n_ids\":%zu}\n", V, n);
    yan_context_free(ctx);
    yan_model_free(m);
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
    if (!strcmp(argv[1], "logprobs") && argc >= 5) {
        o.threads = 2;
        if (parse(argc, argv, 5, &o)) return 2;
        return cmd_logprobs(argv[2], argv[3], argv[4], &o);
    }
    if (!strcmp(argv[1], "bench")) {
        o.dim = 256, o.layers = 4, o.heads = 4, o.ff = 704, o.batch = 8, o.seq = 256, o.steps = 3, o.threads = 2;
        if (parse(argc, argv, 2, &o)) return 2;
        return cmd_bench(&o);
    }
    usage();
    return 2;
}
