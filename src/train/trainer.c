/* trainer.c — the training loop of trainer.h: configuration and schedule,
 * batches split over ranks, the step (accumulate, reduce, clip, AdamW),
 * validation, samples from the training model, the run loop with its
 * checkpoints and output files (loss.csv, loss.svg, model.gguf).
 * Checkpoint (de)serialisation lives in ckpt.c, the SVG chart in plot.c.
 * Fine-tuning (trainer.h) swaps the model and the batch source (ft_open,
 * read_sft_batch, sft_eval) and keeps everything else.
 * Nothing here prints; progress goes to the caller's event callback. */
#include "train/trainer.h"

#include "model/chat.h"
#include "train/plot.h"

#include <stdio.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

/* ------------------------------------------------------------ configuration */

yan_train_config yan_train_config_default(void) {
    yan_train_config c;
    memset(&c, 0, sizeof c);
    yan_tconfig_default(&c.model);
    c.model.n_vocab = 0;
    c.model.n_ctx = 0;
    (void)yan_train_preset(&c, "tiny");
    c.batch = 8;
    c.seq = 128;
    c.accum = 1;
    c.steps = 1000;
    c.lr = 1e-3f;
    c.min_lr = -1;
    c.warmup = -1;
    c.weight_decay = 0.1f;
    c.beta1 = 0.9f;
    c.beta2 = 0.95f;
    c.eps = 1e-8f;
    c.clip = 1.0f;
    c.seed = 1337;
    c.eval_every = 100;
    c.eval_batches = 8;
    c.sample_every = 0;
    c.sample_tokens = 48;
    c.sample_temp = 0.8f;
    c.ckpt_every = 100;
    c.val_fraction = 0.05f;
    return c;
}

int32_t yan_train_ff_for(int32_t dim) {
    int64_t ff = (8 * (int64_t)dim + 2) / 3;
    ff = (ff + 63) / 64 * 64;
    return (int32_t)ff;
}

yan_status yan_train_preset(yan_train_config *c, const char *name) {
    static const struct {
        const char *name;
        int32_t layers, dim, heads;
    } P[] = {{"tiny", 2, 128, 4}, {"s", 4, 256, 4}, {"m", 6, 384, 6}};
    for (size_t i = 0; i < sizeof P / sizeof P[0]; i++)
        if (name && !strcmp(name, P[i].name)) {
            c->model.n_layer = P[i].layers;
            c->model.n_embd = P[i].dim;
            c->model.n_head = P[i].heads;
            c->model.n_head_kv = P[i].heads;
            c->model.n_ff = yan_train_ff_for(P[i].dim);
            return YAN_OK;
        }
    return yan_fail(YAN_ERR_INVALID_ARG, "unknown preset '%s' (known: tiny, s, m)", name ? name : "");
}

/* Fill in what "automatic" values stand for. */
static void resolve(yan_train_config *c) {
    if (c->min_lr < 0) c->min_lr = c->lr / 10;
    if (c->warmup < 0) {
        c->warmup = c->steps / 20;
        if (c->warmup > 1000) c->warmup = 1000;
    }
    if (c->model.n_ctx <= 0) c->model.n_ctx = c->seq;
}

yan_status yan_train_config_check(const yan_train_config *c, int n_ranks) {
#define BAD(...) return yan_fail(YAN_ERR_INVALID_ARG, __VA_ARGS__)
    const bool ft = c->base_path[0] != 0;
    if (c->batch < 1) BAD("--batch must be at least 1");
    if (ft ? c->seq < 0 : c->seq < 1) BAD(ft ? "--seq must not be negative" : "--seq must be at least 1");
    if (c->accum < 1) BAD("--accum must be at least 1");
    if (ft && c->epochs < 0) BAD("--epochs must not be negative");
    if (ft ? c->steps < 1 && c->epochs < 1 : c->steps < 1)
        BAD(ft ? "--steps or --epochs must be at least 1" : "--steps must be at least 1");
    if (n_ranks > 1 && c->batch % n_ranks)
        BAD("--batch %d is not divisible by the %d processes (each takes batch / processes rows)", c->batch, n_ranks);
    if (!(c->lr > 0) || !isfinite(c->lr)) BAD("--lr must be a positive number");
    /* negative min_lr and warmup stand for "automatic" (resolved by yan_trainer_new) */
    if (isnan(c->min_lr) || c->min_lr > c->lr) BAD("--min-lr must be between 0 and --lr");
    if (!(c->weight_decay >= 0) || !isfinite(c->weight_decay)) BAD("--wd must be a non-negative number");
    if (!(c->beta1 >= 0 && c->beta1 < 1)) BAD("beta1 must be in [0, 1)");
    if (!(c->beta2 >= 0 && c->beta2 < 1)) BAD("--beta2 must be in [0, 1)");
    if (!(c->eps > 0)) BAD("eps must be positive");
    if (!(c->clip >= 0) || !isfinite(c->clip)) BAD("--clip must be a non-negative number (0 = off)");
    if (c->eval_every < 0 || c->sample_every < 0 || c->ckpt_every < 0 || c->stop_after < 0)
        BAD("--eval-every, --sample-every, --ckpt-every and --stop-after must not be negative");
    if (c->eval_every > 0 && c->eval_batches < 1) BAD("--eval-batches must be at least 1");
    if (c->sample_every > 0 && c->sample_tokens < 1) BAD("--sample-tokens must be at least 1");
    if (!(c->sample_temp >= 0) || !isfinite(c->sample_temp)) BAD("--sample-temp must be a non-negative number");
    if (c->threads < 0) BAD("--threads must not be negative");
    if (ft) {
        if (!c->sft_data[0]) BAD("no conversations given (--data FILE.jsonl)");
        if (!c->out_dir[0]) BAD("no output directory given (-o OUT)");
        if (c->sample_every > 0) BAD("samples (--sample-every) are not made while fine-tuning");
        if (!(c->val_fraction >= 0 && c->val_fraction < 1)) BAD("--val-fraction must be in [0, 1)");
        if (c->lora.rank < 0 || c->lora.rank > 65536) BAD("--lora-rank must be in [0, 65536] (0 = full fine-tuning)");
        if (c->lora.rank > 0 && (!(c->lora.alpha > 0) || !isfinite(c->lora.alpha)))
            BAD("--lora-alpha must be a positive number");
        if (c->lora.rank > 0 && (!c->lora.targets || (c->lora.targets & ~(uint32_t)YAN_LORA_ALL)))
            BAD("--lora-targets: no targets");
        if (c->chat_template[0] && !yan_chat_family_known(c->chat_template))
            BAD("unknown chat template '%s' (known: %s)", c->chat_template, yan_chat_family_names());
        if (n_ranks > 1 && c->batch % n_ranks)
            BAD("--batch %d is not divisible by the %d processes", c->batch, n_ranks);
        return YAN_OK; /* the model's shape is the base's */
    }
    if (!c->data_dir[0]) BAD("no data directory given (--data DIR, made by `yan data prepare`)");
    if (!c->out_dir[0]) BAD("no output directory given (-o OUT)");
    if (c->model.n_ctx > 0 && c->seq > c->model.n_ctx)
        BAD("--seq %d is longer than the model's context --ctx %d", c->seq, c->model.n_ctx);
#undef BAD
    yan_tconfig mc = c->model;
    if (mc.n_vocab <= 0) mc.n_vocab = 1; /* filled from the tokenizer later */
    if (mc.n_ctx <= 0) mc.n_ctx = c->seq;
    return yan_tconfig_check(&mc);
}

float yan_train_lr_at(const yan_train_config *c, int64_t step) {
    double lr = c->lr, lo = c->min_lr < 0 ? c->lr / 10 : c->min_lr;
    int64_t warm = c->warmup < 0 ? 0 : c->warmup;
    if (step < 0) step = 0;
    if (step < warm) return (float)(lr * (double)(step + 1) / (double)warm);
    int64_t span = c->steps - warm - 1;
    double p = span > 0 ? (double)(step - warm) / (double)span : step > warm ? 1.0 : 0.0;
    if (p > 1) p = 1;
    return (float)(lo + (lr - lo) * 0.5 * (1.0 + cos(M_PI * p)));
}

/* ------------------------------------------------------------ small helpers */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* xorshift64* (state never 0) */
static uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static uint64_t rng_seed(uint64_t seed) {
    uint64_t s = yan_hash_u64(seed ^ 0x9E3779B97F4A7C15ULL);
    return s ? s : 1;
}

static yan_status mkdir_p(const char *dir) {
    char buf[YAN_TRAIN_PATH_MAX];
    size_t n = strlen(dir);
    if (n >= sizeof buf) return yan_fail(YAN_ERR_INVALID_ARG, "%s: path too long", dir);
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char c = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return yan_fail(YAN_ERR_IO, "cannot create the output directory %s: %s", buf, strerror(errno));
        buf[i] = c;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return yan_fail(YAN_ERR_IO, "%s: not a directory", dir);
    return YAN_OK;
}

yan_status yan_trainer_path(const yan_trainer *t, const char *name, char *buf, size_t cap) {
    int n = snprintf(buf, cap, "%s/%s", t->cfg.out_dir, name);
    if (n < 0 || (size_t)n >= cap) return yan_fail(YAN_ERR_INVALID_ARG, "%s: output path too long", t->cfg.out_dir);
    return YAN_OK;
}

static void fmt_count(char *buf, size_t cap, double n) {
    if (n >= 1e6) snprintf(buf, cap, "%.2fM", n / 1e6);
    else snprintf(buf, cap, "%.1fK", n / 1e3);
}

void yan_trainer_describe(const yan_trainer *t, char *buf, size_t cap) {
    char ps[32];
    fmt_count(ps, sizeof ps, (double)t->n_weights);
    if (t->m && t->m->lora.rank) {
        double nb = 0;
        for (int i = 0; i < t->m->n_base_tensors; i++) nb += (double)(t->m->base_tensors[i].ne0 * t->m->base_tensors[i].ne1);
        char bs[32], tg[64];
        fmt_count(bs, sizeof bs, nb);
        yan_tlora_targets_str(t->m->lora.targets, tg, sizeof tg);
        snprintf(buf, cap, "%d layers, dim %d, %s params + LoRA r %d on %s: %s trainable", t->cfg.model.n_layer,
                 t->cfg.model.n_embd, bs, t->m->lora.rank, tg, ps);
        return;
    }
    snprintf(buf, cap, "%d layers, dim %d, %s params", t->cfg.model.n_layer, t->cfg.model.n_embd, ps);
}

/* --------------------------------------------------------------- creation */

/* Hash of 64 stretches of 64 tokens spread over the stream: tells data that
 * changed under a checkpoint from the same data moved elsewhere. */
static yan_status data_fingerprint(const yan_shards *s, uint64_t *out) {
    int32_t buf[64];
    uint64_t n = yan_shards_n_tokens(s), h = n;
    for (uint64_t i = 0; i < 64; i++) {
        yan_status st = yan_shards_read(s, n / 64 * i, 64, buf);
        if (st) return st;
        h = yan_hash_bytes(buf, sizeof buf, h);
    }
    *out = h;
    return YAN_OK;
}


void yan_trainer_free(yan_trainer *t) {
    if (!t) return;
    yan_adamw_free(&t->opt);
    yan_tmodel_free(t->m);
    yan_tokenizer_free(t->tok);
    yan_shards_close(t->train);
    yan_shards_close(t->val);
    yan_free(t->hist);
    yan_free(t->inputs);
    yan_free(t->targets);
    yan_free(t->skip_in);
    yan_free(t->skip_tg);
    yan_sft_free(&t->sft_train);
    yan_sft_free(&t->sft_val);
    yan_free(t->perm);
    yan_free(t->chat_tmpl);
    yan_free(t);
}

static yan_status open_data(yan_trainer *t) {
    const yan_train_config *c = &t->cfg;
    struct stat st;
    if (stat(c->data_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return yan_fail(YAN_ERR_IO, "%s: no such data directory (make one with `yan data prepare`)", c->data_dir);
    char path[YAN_TRAIN_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/tokenizer.gguf", c->data_dir);
    if (stat(path, &st) != 0)
        return yan_fail(YAN_ERR_IO, "%s: no tokenizer.gguf: not a data directory made by `yan data prepare`",
                        c->data_dir);
    yan_tokenizer_params tp = yan_tokenizer_params_default();
    tp.n_threads = 1;
    yan_status s = yan_tokenizer_load(path, &tp, &t->tok);
    if (s) return s;
    if ((s = yan_shards_open(c->data_dir, "train", &t->train))) return s;
    int32_t V = yan_tokenizer_n_vocab(t->tok);
    if (yan_shards_n_vocab(t->train) > (uint32_t)V)
        return yan_fail(YAN_ERR_FORMAT, "%s: the shards have ids up to %u but tokenizer.gguf has %d tokens",
                        c->data_dir, yan_shards_n_vocab(t->train), V);
    if (yan_shards_n_tokens(t->train) < (uint64_t)c->seq + 1)
        return yan_fail(YAN_ERR_INVALID_ARG, "%s: the train split has %llu tokens; --seq %d needs at least %d",
                        c->data_dir, (unsigned long long)yan_shards_n_tokens(t->train), c->seq, c->seq + 1);
    if ((s = data_fingerprint(t->train, &t->data_hash))) return s;
    if (c->eval_every > 0) {
        if ((s = yan_shards_open(c->data_dir, "val", &t->val))) {
            yan_error_prefix("validation split (or train with --eval-every 0)");
            return s;
        }
        if (yan_shards_n_tokens(t->val) < (uint64_t)c->seq + 1)
            return yan_fail(YAN_ERR_INVALID_ARG,
                            "%s: the val split has %llu tokens; --seq %d needs at least %d (or --eval-every 0)",
                            c->data_dir, (unsigned long long)yan_shards_n_tokens(t->val), c->seq, c->seq + 1);
    }
    return YAN_OK;
}

/* ------------------------------------------------------------ fine-tuning */

/* Size and a hash of the first 64 KiB and of 64 blocks of 4 KiB spread over
 * the file: tells another base (or a changed one) from the same file. */
static yan_status file_identity(const char *path, uint64_t *size, uint64_t *hash) {
    FILE *f = fopen(path, "rb");
    if (!f) return yan_fail(YAN_ERR_IO, "%s: %s", path, strerror(errno));
    uint8_t *buf = yan_malloc(65536);
    yan_status s = YAN_OK;
    if (!buf) {
        fclose(f);
        return yan_fail(YAN_ERR_NOMEM, "out of memory");
    }
    if (fseeko(f, 0, SEEK_END) != 0) s = yan_fail(YAN_ERR_IO, "%s: cannot seek", path);
    uint64_t n = s ? 0 : (uint64_t)ftello(f), h = n;
    for (int i = -1; i < 64 && !s; i++) {
        uint64_t at = i < 0 ? 0 : n / 64 * (uint64_t)i;
        size_t want = i < 0 ? 65536 : 4096;
        if (fseeko(f, (off_t)at, SEEK_SET) != 0) s = yan_fail(YAN_ERR_IO, "%s: cannot seek", path);
        size_t got = s ? 0 : fread(buf, 1, want, f);
        h = yan_hash_bytes(buf, got, h);
    }
    fclose(f);
    yan_free(buf);
    *size = n;
    *hash = h;
    return s;
}

static uint64_t sft_hash(const yan_sft_data *d) {
    uint64_t h = yan_hash_bytes(d->tokens, (size_t)d->n_tokens * sizeof *d->tokens, (uint64_t)d->n_examples);
    h = yan_hash_bytes(d->trained, (size_t)d->n_tokens, h);
    return yan_hash_bytes(d->start, (size_t)(d->n_examples + 1) * sizeof *d->start, h);
}

static int64_t sft_longest(const yan_sft_data *d) {
    int64_t mx = 0;
    for (int64_t i = 0; i < d->n_examples; i++)
        if (d->start[i + 1] - d->start[i] > mx) mx = d->start[i + 1] - d->start[i];
    return mx;
}

/* The base's tokenizer, template and identity, the conversations (and the
 * held-out split), the sequence length and steps, then the model. */
static yan_status ft_open(yan_trainer *t) {
    yan_train_config *c = &t->cfg;
    const char *base = c->base_path;
    yan_gguf *g = NULL;
    yan_sft_data all;
    memset(&all, 0, sizeof all);
    uint8_t *keep = NULL;
    int64_t *order = NULL;
    yan_status s = yan_gguf_open(base, &g);
    if (s) return s;
    int64_t nctx = 0;
    const char *str;
    size_t n;
    if (yan_gguf_get_i64(g, "llama.context_length", &nctx) != YAN_OK || nctx < 1) nctx = 1 << 20; /* load says why */
    if (nctx > INT_MAX) nctx = INT_MAX;
    if (yan_gguf_get_str(g, "tokenizer.chat_template", &str, &n) == YAN_OK && !(t->chat_tmpl = yan_strndup(str, n))) {
        s = yan_fail(YAN_ERR_NOMEM, "out of memory");
        goto out;
    }
    yan_gguf_close(g);
    g = NULL;
    if ((s = file_identity(base, &t->base_size, &t->base_hash))) goto out;
    yan_tokenizer_params tp = yan_tokenizer_params_default();
    tp.n_threads = 1;
    if ((s = yan_tokenizer_load(base, &tp, &t->tok))) goto out;
    snprintf(t->family, sizeof t->family, "%s",
             c->chat_template[0] ? c->chat_template : yan_chat_detect(t->chat_tmpl, NULL));
    /* the conversations */
    const int max_len = c->seq > 0 ? c->seq : (int)nctx;
    if ((s = yan_sft_load(c->sft_data, t->tok, t->family, max_len, &all))) goto out;
    t->n_cut = all.n_truncated;
    if (c->sft_val[0]) {
        if ((s = yan_sft_load(c->sft_val, t->tok, t->family, max_len, &t->sft_val))) goto out;
        t->n_cut += t->sft_val.n_truncated;
        t->sft_train = all;
        memset(&all, 0, sizeof all);
    } else if (c->eval_every > 0 && c->val_fraction > 0) {
        int64_t ne = all.n_examples, nv = (int64_t)ceil((double)c->val_fraction * (double)ne);
        if (ne < 2) {
            s = yan_fail(YAN_ERR_INVALID_ARG,
                         "%s: %lld conversation%s: too few to hold some out for validation (give --val-data FILE, "
                         "--val-fraction 0 or --eval-every 0)", c->sft_data, (long long)ne, ne == 1 ? "" : "s");
            goto out;
        }
        if (nv >= ne) nv = ne - 1;
        keep = yan_calloc((size_t)ne, 1);
        order = yan_sft_shuffle(ne, yan_hash_u64(c->seed ^ 0x76616C2D686F6C64ull));
        if (!keep || !order) {
            s = yan_fail(YAN_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (int64_t i = 0; i < nv; i++) keep[order[i]] = 1;
        if ((s = yan_sft_select(&all, keep, &t->sft_val))) goto out;
        for (int64_t i = 0; i < ne; i++) keep[i] ^= 1;
        if ((s = yan_sft_select(&all, keep, &t->sft_train))) goto out;
    } else {
        t->sft_train = all;
        memset(&all, 0, sizeof all);
    }
    /* the sequence length and the steps */
    if (c->seq == 0) {
        int64_t lg = sft_longest(&t->sft_train), lv = sft_longest(&t->sft_val);
        c->seq = (int32_t)(lg > lv ? lg : lv);
        if (c->seq > nctx) c->seq = (int32_t)nctx;
    }
    if (c->epochs > 0) {
        const double per_step = (double)c->batch * c->accum;
        c->steps = (int64_t)ceil((double)c->epochs * (double)t->sft_train.n_examples / per_step);
        if (c->steps < 1) c->steps = 1;
    }
    /* the model */
    const int Bl = c->batch / t->dist.size;
    if (c->lora.rank) {
        if ((s = yan_tmodel_load_lora(base, &c->lora, Bl, c->seq, c->threads, &t->m, NULL, NULL))) goto out;
        yan_tmodel_init(t->m, c->seed);
        if (c->exact_base) yan_tmodel_set_mapped_forward(t->m, false);
    } else if ((s = yan_tmodel_load_gguf(base, Bl, c->seq, c->threads, &t->m, NULL, NULL))) {
        goto out;
    }
    c->model = t->m->cfg;
    yan_token eos = yan_tokenizer_special(t->tok, YAN_SPECIAL_EOS);
    t->pad = eos >= 0 && eos < c->model.n_vocab ? eos : 0;
    t->data_hash = sft_hash(&t->sft_train);
out:
    yan_gguf_close(g);
    yan_sft_free(&all);
    yan_free(keep);
    yan_free(order);
    return s;
}

/* Row k of the training stream: conversation k mod n of the seeded order of
 * epoch k / n. */
static yan_status sft_row(yan_trainer *t, uint64_t k, int32_t *in, int32_t *tg) {
    const uint64_t n = (uint64_t)t->sft_train.n_examples, epoch = k / n;
    if (!t->perm || t->perm_epoch != epoch) {
        int64_t *p = yan_sft_shuffle((int64_t)n, yan_hash_u64(t->cfg.seed ^ (epoch * 0x9E3779B97F4A7C15ull + 1)));
        if (!p) return yan_fail(YAN_ERR_NOMEM, "out of memory");
        yan_free(t->perm);
        t->perm = p;
        t->perm_epoch = epoch;
    }
    uint64_t pos = k % n;
    yan_sft_batch(&t->sft_train, t->perm, &pos, 1, t->cfg.seq, t->pad, in, tg);
    return YAN_OK;
}

/* A micro-batch of cfg.batch conversations from *pos, rows split over the
 * ranks as read_batch does. */
static yan_status read_sft_batch(yan_trainer *t, uint64_t *pos) {
    const int B = t->cfg.batch, T = t->cfg.seq, R = t->dist.size, r = t->dist.rank;
    for (int b = 0; b < B; b++) {
        if (b % R != r) continue;
        yan_status s = sft_row(t, *pos + (uint64_t)b, t->inputs + (size_t)(b / R) * T, t->targets + (size_t)(b / R) * T);
        if (s) return s;
    }
    *pos += (uint64_t)B;
    return YAN_OK;
}

/* Token-weighted mean loss over every validation conversation. */
static yan_status sft_eval(yan_trainer *t, float *loss) {
    const yan_sft_data *d = &t->sft_val;
    const int B = t->cfg.batch, T = t->cfg.seq, R = t->dist.size, r = t->dist.rank, Bl = B / R;
    double acc[2] = {0, 0};
    for (int64_t e0 = 0; e0 < d->n_examples; e0 += B) {
        for (int b = 0; b < B; b++) {
            if (b % R != r) continue;
            int32_t *in = t->inputs + (size_t)(b / R) * T, *tg = t->targets + (size_t)(b / R) * T;
            uint64_t pos = (uint64_t)(e0 + b);
            if (e0 + b < d->n_examples) {
                yan_sft_batch(d, NULL, &pos, 1, T, t->pad, in, tg);
            } else {
                for (int i = 0; i < T; i++) in[i] = t->pad, tg[i] = -1;
            }
        }
        float l = yan_tmodel_forward(t->m, t->inputs, t->targets, Bl, T);
        double nt = (double)yan_tmodel_n_targets(t->m);
        acc[0] += (double)l * nt;
        acc[1] += nt;
    }
    yan_status s = yan_dist_sum_f64(&t->dist, acc, 2);
    if (s) return s;
    *loss = acc[1] > 0 ? (float)(acc[0] / acc[1]) : NAN;
    return YAN_OK;
}

yan_status yan_trainer_new(const yan_train_config *c, const yan_dist *d, yan_trainer **out) {
    *out = NULL;
    yan_trainer *t = yan_calloc(1, sizeof *t);
    if (!t) return yan_fail(YAN_ERR_NOMEM, "trainer: out of memory");
    t->cfg = *c;
    t->dist = d ? *d : (yan_dist){.rank = 0, .size = 1, .mpi = false};
    t->ckpt_step = -1;
    t->finetune = c->base_path[0] != 0;
    yan_train_config *cfg = &t->cfg;
    yan_status s;
    if (t->finetune) {
        if ((s = yan_train_config_check(cfg, t->dist.size))) goto fail;
        if ((s = ft_open(t))) goto fail;
        resolve(cfg);
    } else {
        resolve(cfg);
        if ((s = yan_train_config_check(cfg, t->dist.size))) goto fail;
        if ((s = open_data(t))) goto fail;
        int32_t V = yan_tokenizer_n_vocab(t->tok);
        if (cfg->model.n_vocab > 0 && cfg->model.n_vocab != V) {
            s = yan_fail(YAN_ERR_FORMAT, "%s: tokenizer.gguf has %d tokens but the model has %d", cfg->data_dir, V,
                         cfg->model.n_vocab);
            goto fail;
        }
        cfg->model.n_vocab = V;
        if ((s = yan_tconfig_check(&cfg->model))) goto fail;
        if ((s = yan_tmodel_new(&cfg->model, cfg->batch / t->dist.size, cfg->seq, cfg->threads, &t->m))) goto fail;
        yan_tmodel_init(t->m, cfg->seed);
    }
    t->n_params = t->m->n_params;
    for (int i = 0; i < t->m->n_tensors; i++) t->n_weights += t->m->tensors[i].ne0 * t->m->tensors[i].ne1;
    if ((s = yan_adamw_init(&t->opt, t->m))) goto fail;
    t->opt.beta1 = cfg->beta1;
    t->opt.beta2 = cfg->beta2;
    t->opt.eps = cfg->eps;
    t->opt.weight_decay = cfg->weight_decay;

    const int Bl = cfg->batch / t->dist.size, T = cfg->seq;
    size_t nrow = (size_t)Bl * (size_t)T;
    t->inputs = yan_malloc(nrow * sizeof *t->inputs);
    t->targets = yan_malloc(nrow * sizeof *t->targets);
    t->skip_in = yan_malloc((size_t)T * sizeof *t->skip_in);
    t->skip_tg = yan_malloc((size_t)T * sizeof *t->skip_tg);
    if (!t->inputs || !t->targets || !t->skip_in || !t->skip_tg) {
        s = yan_fail(YAN_ERR_NOMEM, "trainer: out of memory");
        goto fail;
    }
    t->rng = rng_seed(cfg->seed);
    *out = t;
    return YAN_OK;
fail:
    yan_trainer_free(t);
    return s;
}

/* ------------------------------------------------------------------ batches */

/* One global micro-batch of cfg.batch rows read one after another from *pos;
 * this rank keeps rows rank, rank + R, ... in order. Every rank reads every
 * row (cheap copies) so that all ranks advance *pos alike. */
static yan_status read_batch(yan_trainer *t, const yan_shards *sh, uint64_t *pos) {
    const int B = t->cfg.batch, T = t->cfg.seq, R = t->dist.size, r = t->dist.rank;
    for (int b = 0; b < B; b++) {
        bool mine = b % R == r;
        int32_t *in = mine ? t->inputs + (size_t)(b / R) * T : t->skip_in;
        int32_t *tg = mine ? t->targets + (size_t)(b / R) * T : t->skip_tg;
        yan_status s = yan_shards_batch(sh, pos, 1, T, in, tg);
        if (s) return s;
    }
    return YAN_OK;
}

/* ------------------------------------------------------------------- step */

yan_status yan_trainer_step(yan_trainer *t, float *loss, float *grad_norm, float *lr) {
    const yan_train_config *c = &t->cfg;
    const int R = t->dist.size, Bl = c->batch / R, T = c->seq, k = c->accum;
    const float scale = 1.0f / (float)(k * R);
    yan_status s;
    yan_tmodel_zero_grad(t->m);
    double lsum = 0;
    for (int j = 0; j < k; j++) {
        if ((s = t->finetune ? read_sft_batch(t, &t->data_pos) : read_batch(t, t->train, &t->data_pos))) return s;
        lsum += yan_tmodel_forward(t->m, t->inputs, t->targets, Bl, T);
        yan_tmodel_backward(t->m, scale);
    }
    if ((s = yan_dist_sum_f32(&t->dist, t->m->grads, (size_t)t->m->n_params))) return s;
    if ((s = yan_dist_sum_f64(&t->dist, &lsum, 1))) return s;
    float l = (float)(lsum / (double)(k * R));
    float rate = yan_train_lr_at(c, t->step);
    *loss = l;
    *lr = rate;
    *grad_norm = NAN;
    if (!isfinite(l))
        return yan_fail(YAN_ERR_ABORTED, "step %lld: the loss is %s: training diverged (try a lower --lr)",
                        (long long)(t->step + 1), isnan(l) ? "NaN" : "infinite");
    float gn = yan_grad_clip(t->m, c->clip);
    *grad_norm = gn;
    if (!isfinite(gn))
        return yan_fail(YAN_ERR_ABORTED, "step %lld: the gradient norm is %s: training diverged (try a lower --lr)",
                        (long long)(t->step + 1), isnan(gn) ? "NaN" : "infinite");
    yan_adamw_step(&t->opt, t->m, rate);
    t->step++;
    return YAN_OK;
}

/* ------------------------------------------------------------- validation */

yan_status yan_trainer_eval(yan_trainer *t, float *loss, float *bpb) {
    const yan_train_config *c = &t->cfg;
    *loss = *bpb = NAN;
    if (t->finetune) {
        if (!t->sft_val.n_examples) return yan_fail(YAN_ERR_INVALID_ARG, "no validation conversations");
        return sft_eval(t, loss);
    }
    if (!t->val) return yan_fail(YAN_ERR_INVALID_ARG, "no validation split open (eval_every is 0)");
    const int R = t->dist.size, Bl = c->batch / R, T = c->seq;
    uint64_t pos = 0;
    double sum = 0;
    yan_status s;
    for (int i = 0; i < c->eval_batches; i++) {
        if ((s = read_batch(t, t->val, &pos))) return s;
        sum += yan_tmodel_forward(t->m, t->inputs, t->targets, Bl, T);
    }
    if ((s = yan_dist_sum_f64(&t->dist, &sum, 1))) return s;
    double l = sum / ((double)c->eval_batches * R);
    *loss = (float)l;
    uint64_t bytes = yan_shards_n_text_bytes(t->val);
    if (bytes)
        *bpb = (float)(l * (double)yan_shards_n_tokens(t->val) / (double)bytes / M_LN2);
    return YAN_OK;
}

/* ----------------------------------------------------------------- samples */

static int32_t pick(const float *logits, int32_t V, float temp, uint64_t *rng) {
    int32_t best = 0;
    for (int32_t i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    if (temp <= 0) return best;
    double z = 0;
    for (int32_t i = 0; i < V; i++) z += exp((double)(logits[i] - logits[best]) / temp);
    double u = (double)(rng_next(rng) >> 11) * 0x1.0p-53 * z, acc = 0;
    for (int32_t i = 0; i < V; i++) {
        acc += exp((double)(logits[i] - logits[best]) / temp);
        if (acc > u) return i;
    }
    return best;
}

yan_status yan_trainer_sample(yan_trainer *t, char **text) {
    const yan_train_config *c = &t->cfg;
    if (t->finetune) return yan_fail(YAN_ERR_UNSUPPORTED, "samples are not made while fine-tuning");
    const yan_tokenizer *tok = t->tok;
    const int32_t V = c->model.n_vocab, T = c->seq;
    *text = NULL;
    /* the separators the data uses (data.h) */
    yan_token eos = yan_shards_eos(t->train), bos = yan_shards_bos(t->train);
    yan_token *prompt = NULL;
    size_t n_prompt = 0;
    yan_status s;
    if (c->sample_prompt[0]) {
        if ((s = yan_tokenize_alloc(tok, c->sample_prompt, strlen(c->sample_prompt), YAN_TOKENIZE_ADD_BOS, &prompt,
                                    &n_prompt)))
            return s;
    }
    size_t cap = n_prompt + (size_t)c->sample_tokens + 1;
    int32_t *ids = yan_malloc(cap * sizeof *ids);
    if (!ids) {
        yan_free_tokens(prompt);
        return yan_fail(YAN_ERR_NOMEM, "sample: out of memory");
    }
    size_t n = 0, first_gen;
    if (n_prompt) {
        memcpy(ids, prompt, n_prompt * sizeof *ids);
        n = n_prompt;
    } else {
        /* a document starts after the end-of-text id (data.h), else after BOS */
        ids[n++] = eos >= 0 ? eos : bos >= 0 ? bos : 0;
    }
    yan_free_tokens(prompt);
    first_gen = n_prompt ? 0 : 1; /* the lone separator is not shown */
    for (int i = 0; i < c->sample_tokens; i++) {
        size_t w = n < (size_t)T ? n : (size_t)T; /* the last T tokens are the context */
        yan_tmodel_forward(t->m, ids + n - w, NULL, 1, (int)w);
        const float *lg = yan_tmodel_logits(t->m) + (w - 1) * (size_t)V;
        int32_t next = pick(lg, V, c->sample_temp, &t->rng);
        if (next == eos) break;
        ids[n++] = next;
    }
    int64_t need = yan_detokenize(tok, ids + first_gen, n - first_gen, NULL, 0, true);
    size_t bytes = need < 0 ? (size_t)-need : (size_t)need + 1;
    char *buf = need == INT64_MIN ? NULL : yan_malloc(bytes);
    if (!buf || yan_detokenize(tok, ids + first_gen, n - first_gen, buf, bytes, true) < 0) {
        yan_free(buf);
        yan_free(ids);
        return yan_fail(YAN_ERR_NOMEM, "sample: cannot decode the sample");
    }
    yan_free(ids);
    *text = buf;
    return YAN_OK;
}

/* ----------------------------------------------------------- report files */

static void fmt_float(yan_buf *b, float v) {
    if (isfinite(v)) yan_buf_printf(b, "%.9g", (double)v);
}

yan_status yan_train_csv(const yan_train_row *rows, size_t n, yan_buf *out) {
    yan_buf_puts(out, "step,train_loss,val_loss,val_bpb,lr,grad_norm,tokens_per_s\n");
    for (size_t i = 0; i < n; i++) {
        const yan_train_row *r = &rows[i];
        yan_buf_printf(out, "%lld,", (long long)r->step);
        fmt_float(out, r->train_loss);
        yan_buf_putc(out, ',');
        fmt_float(out, r->val_loss);
        yan_buf_putc(out, ',');
        fmt_float(out, r->val_bpb);
        yan_buf_putc(out, ',');
        fmt_float(out, r->lr);
        yan_buf_putc(out, ',');
        fmt_float(out, r->grad_norm);
        yan_buf_printf(out, ",%.0f\n", isfinite(r->tok_s) ? (double)r->tok_s : 0.0);
    }
    return out->oom ? yan_fail(YAN_ERR_NOMEM, "loss.csv: out of memory") : YAN_OK;
}

yan_status yan_train_svg(const yan_train_row *rows, size_t n, const char *title, yan_buf *out) {
    double *xs = yan_malloc((n ? n : 1) * sizeof *xs), *tr = yan_malloc((n ? n : 1) * sizeof *tr),
           *va = yan_malloc((n ? n : 1) * sizeof *va);
    yan_status s;
    if (!xs || !tr || !va) {
        s = yan_fail(YAN_ERR_NOMEM, "loss.svg: out of memory");
    } else {
        for (size_t i = 0; i < n; i++) {
            xs[i] = (double)rows[i].step;
            tr[i] = rows[i].train_loss;
            va[i] = rows[i].val_loss;
        }
        yan_plot_series ser[2] = {
            {.name = "train loss", .color = "#1f77b4", .x = xs, .y = tr, .n = n},
            {.name = "val loss", .color = "#ff7f0e", .x = xs, .y = va, .n = n, .markers = true},
        };
        yan_plot_params pp = {.title = title, .xlabel = "step", .ylabel = "loss (nats per token)"};
        s = yan_plot_svg(&pp, ser, 2, out);
    }
    yan_free(xs);
    yan_free(tr);
    yan_free(va);
    return s;
}

yan_status yan_trainer_write_logs(const yan_trainer *t) {
    if (t->dist.rank != 0) return YAN_OK;
    char path[YAN_TRAIN_PATH_MAX + 32], desc[128], title[192];
    yan_buf b = {0};
    yan_status s;
    if ((s = yan_trainer_path(t, "loss.csv", path, sizeof path))) return s;
    if ((s = yan_train_csv(t->hist, t->n_hist, &b)) || (s = yan_write_atomic(path, b.data, b.len))) goto out;
    b.len = 0;
    yan_trainer_describe(t, desc, sizeof desc);
    snprintf(title, sizeof title, "yan %s: %s", t->finetune ? "finetune" : "train", desc);
    if ((s = yan_trainer_path(t, "loss.svg", path, sizeof path))) goto out;
    if ((s = yan_train_svg(t->hist, t->n_hist, title, &b)) || (s = yan_write_atomic(path, b.data, b.len))) goto out;
out:
    yan_buf_free(&b);
    return s;
}

const char *yan_trainer_model_name(const yan_trainer *t) {
    return t->finetune && t->cfg.lora.rank ? "adapter.gguf" : "model.gguf";
}

/* The chat template written with a fine-tuned model: the base's, else
 * ChatML's when the data were rendered as ChatML, else none. */
static const char *ft_template(const yan_trainer *t) {
    if (t->chat_tmpl) return t->chat_tmpl;
    return !strcmp(t->family, "chatml") ? YAN_TRAIN_CHAT_TEMPLATE : NULL;
}

yan_status yan_trainer_write_model(const yan_trainer *t, const char *path) {
    if (t->dist.rank != 0) return YAN_OK;
    yan_gguf_writer *w = NULL;
    char name[64];
    double np = (double)t->n_weights;
    if (t->finetune) snprintf(name, sizeof name, t->cfg.lora.rank ? "yan-lora" : "yan-sft");
    else if (np >= 1e6) snprintf(name, sizeof name, "yan-%.1fM", np / 1e6);
    else snprintf(name, sizeof name, "yan-%.0fK", np / 1e3);
    yan_status s = yan_gguf_writer_new(&w);
    if (!s && t->finetune && t->cfg.lora.rank) s = yan_tmodel_adapter_to_gguf(t->m, name, w);
    else if (!s) s = yan_tmodel_to_gguf(t->m, t->tok, t->finetune ? ft_template(t) : YAN_TRAIN_CHAT_TEMPLATE, name, w);
    if (!s) s = yan_gguf_w_write(w, path);
    yan_gguf_writer_free(w);
    return s;
}

/* --------------------------------------------------------------- the loop */

static yan_status push_row(yan_trainer *t, const yan_train_row *r) {
    if (t->n_hist == t->cap_hist) {
        size_t cap = t->cap_hist ? t->cap_hist * 2 : 256;
        yan_train_row *h = yan_realloc(t->hist, cap * sizeof *h);
        if (!h) return yan_fail(YAN_ERR_NOMEM, "trainer: out of memory");
        t->hist = h;
        t->cap_hist = cap;
    }
    t->hist[t->n_hist++] = *r;
    return YAN_OK;
}

static bool emit(yan_train_event_fn fn, void *ud, yan_train_event *ev) { return fn ? fn(ev, ud) : true; }

static yan_status checkpoint(yan_trainer *t, yan_train_event_fn fn, void *ud, double t0) {
    char path[YAN_TRAIN_PATH_MAX + 32];
    yan_status s = yan_trainer_path(t, "ckpt.gguf", path, sizeof path);
    if (!s && t->dist.rank == 0) s = yan_ckpt_save(t, path);
    if (!s) s = yan_trainer_write_logs(t);
    if (s) return s;
    t->ckpt_step = t->step;
    yan_train_event ev = {.kind = YAN_TRAIN_EV_CKPT, .step = t->step, .steps = t->cfg.steps, .text = path,
                          .elapsed_s = now_s() - t0};
    emit(fn, ud, &ev);
    return YAN_OK;
}

yan_status yan_trainer_run(yan_trainer *t, yan_train_event_fn fn, void *ud) {
    const yan_train_config *c = &t->cfg;
    const bool lead = t->dist.rank == 0;
    int64_t end = c->steps;
    if (c->stop_after > 0 && c->stop_after < end) end = c->stop_after;
    yan_status s;
    if (lead && (s = mkdir_p(c->out_dir))) return s;
    /* drop history past the resumed step (a checkpoint holds exactly step rows) */
    while (t->n_hist && t->hist[t->n_hist - 1].step > t->step) t->n_hist--;

    const double tok_per_step = (double)c->accum * c->batch * c->seq;
    char desc[1024];
    char mdesc[256];
    yan_trainer_describe(t, mdesc, sizeof mdesc);
    if (t->finetune) {
        const yan_sft_data *tr = &t->sft_train, *va = &t->sft_val;
        const double per_step = (double)c->accum * c->batch;
        char cut[64] = "";
        if (t->n_cut) snprintf(cut, sizeof cut, " (%lld cut to %d tokens)", (long long)t->n_cut, c->seq);
        snprintf(desc, sizeof desc,
                 "model: %s (%d heads, %d kv heads, FF %d, vocab %d, ctx %d)%s%s\n"
                 "data: %lld conversations (%lld trained tokens) for training, %lld for validation%s; chat template "
                 "%s%s; %.0f conversations per step (batch %d x accum %d, seq %d) on %d process%s; %.2f epochs in "
                 "%lld steps",
                 mdesc, c->model.n_head, c->model.n_head_kv, c->model.n_ff, c->model.n_vocab, c->model.n_ctx,
                 t->m->mapped ? "; base kept quantized (" : "", t->m->mapped ? "mapped, frozen)" : "",
                 (long long)tr->n_examples, (long long)tr->n_trained, (long long)va->n_examples, cut, t->family,
                 c->chat_template[0] ? " (--chat-template)" : t->chat_tmpl ? " (the base's)" : " (the base has none)",
                 per_step, c->batch, c->accum, c->seq, t->dist.size, t->dist.size == 1 ? "" : "es",
                 per_step * (double)c->steps / (double)tr->n_examples, (long long)c->steps);
    } else {
        snprintf(desc, sizeof desc,
                 "model: %s (%d heads, %d kv heads, FF %d, vocab %d, ctx %d)\n"
                 "data: %llu training tokens, %llu validation tokens; %.0f tokens per step (batch %d x seq %d x "
                 "accum %d) on %d process%s; %.2f epochs in %lld steps",
                 mdesc, c->model.n_head, c->model.n_head_kv, c->model.n_ff, c->model.n_vocab, c->model.n_ctx,
                 (unsigned long long)yan_shards_n_tokens(t->train),
                 (unsigned long long)(t->val ? yan_shards_n_tokens(t->val) : 0),
                 tok_per_step, c->batch, c->seq, c->accum, t->dist.size, t->dist.size == 1 ? "" : "es",
                 tok_per_step * (double)c->steps / (double)yan_shards_n_tokens(t->train), (long long)c->steps);
    }
    const double t0 = now_s();
    yan_train_event ev = {.kind = YAN_TRAIN_EV_START, .step = t->step, .steps = c->steps, .text = desc};
    emit(fn, ud, &ev);

    /* a resumed run's loss.csv drops the rows past the checkpoint right away */
    if ((s = yan_trainer_write_logs(t))) return s;
    const int64_t first = t->step;
    double last_log = t0;
    bool stop = false;
    while (t->step < end && !stop) {
        double ts = now_s();
        yan_train_row row = {.val_loss = NAN, .val_bpb = NAN};
        s = yan_trainer_step(t, &row.train_loss, &row.grad_norm, &row.lr);
        if (s) {
            if (s == YAN_ERR_ABORTED) {
                /* keep what is known; the last checkpoint stays as it is */
                char msg[512];
                snprintf(msg, sizeof msg, "%s", yan_last_error());
                (void)yan_trainer_write_logs(t);
                yan_fail(YAN_ERR_ABORTED, "%s", msg);
            }
            return s;
        }
        double dt = now_s() - ts;
        row.step = t->step;
        row.tok_s = dt > 0 ? (float)(tok_per_step / dt) : 0;
        if ((s = push_row(t, &row))) return s;
        double el = now_s() - t0;
        ev = (yan_train_event){.kind = YAN_TRAIN_EV_STEP, .step = t->step, .steps = c->steps,
                               .row = &t->hist[t->n_hist - 1], .elapsed_s = el,
                               .eta_s = el / (double)(t->step - first) * (double)(end - t->step)};
        bool go_on = emit(fn, ud, &ev);

        bool wrote_logs = false;
        /* not at stop_after: a stopped-and-resumed run logs exactly what an uninterrupted one does */
        if (c->eval_every > 0 && (t->step % c->eval_every == 0 || t->step == c->steps)) {
            yan_train_row *r = &t->hist[t->n_hist - 1];
            if ((s = yan_trainer_eval(t, &r->val_loss, &r->val_bpb))) return s;
            ev.kind = YAN_TRAIN_EV_EVAL;
            ev.row = r;
            go_on &= emit(fn, ud, &ev);
            if ((s = yan_trainer_write_logs(t))) return s;
            wrote_logs = true;
        }
        if (c->sample_every > 0 && t->step % c->sample_every == 0 && lead) {
            char *text = NULL;
            if ((s = yan_trainer_sample(t, &text))) return s;
            ev.kind = YAN_TRAIN_EV_SAMPLE;
            ev.text = text;
            go_on &= emit(fn, ud, &ev);
            yan_free(text);
        }
        /* every rank must agree on stopping */
        double want_stop = go_on ? 0 : 1;
        if ((s = yan_dist_sum_f64(&t->dist, &want_stop, 1))) return s;
        stop = want_stop > 0;
        if (c->ckpt_every > 0 && t->step % c->ckpt_every == 0 && t->step < end && !stop) {
            if ((s = checkpoint(t, fn, ud, t0))) return s;
            last_log = now_s();
        } else if (!wrote_logs && now_s() - last_log > 2.0) {
            if ((s = yan_trainer_write_logs(t))) return s;
            last_log = now_s();
        } else if (wrote_logs) {
            last_log = now_s();
        }
    }

    /* a checkpoint writes the logs too */
    s = t->step != t->ckpt_step ? checkpoint(t, fn, ud, t0) : yan_trainer_write_logs(t);
    if (s) return s;
    char path[YAN_TRAIN_PATH_MAX + 32];
    if ((s = yan_trainer_path(t, yan_trainer_model_name(t), path, sizeof path))) return s;
    if ((s = yan_trainer_write_model(t, path))) return s;
    ev = (yan_train_event){.kind = YAN_TRAIN_EV_DONE, .step = t->step, .steps = c->steps, .text = path,
                           .elapsed_s = now_s() - t0, .row = t->n_hist ? &t->hist[t->n_hist - 1] : NULL};
    emit(fn, ud, &ev);
    return YAN_OK;
}
