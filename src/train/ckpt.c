/* ckpt.c — training checkpoints (trainer.h): one GGUF holding
 *   - the model exactly as yan_tmodel_to_gguf writes it (llama.* keys,
 *     tokenizer, chat template, every parameter as an f32 tensor),
 *   - the AdamW moments as 1-D f32 tensors yan.opt.m and yan.opt.v
 *     (n_params floats each, the parameter block's layout),
 *   - yan.train.* keys: format version, step, optimizer t, data position,
 *     sampling RNG, the training data's identity (path, token count, a
 *     fingerprint of sampled tokens), the
 *     configuration (model shape and every hyper-parameter that changes
 *     the numbers) and the loss history (yan.train.history.* arrays, one
 *     element per completed step).
 * Fine-tuning checkpoints hold the fine-tuned weights the same way (LoRA:
 * the adapters in llama.cpp's adapter format instead of the model), the
 * same yan.train.* keys (data_tokens / data_hash describe the tokenized
 * training conversations, data_pos counts conversations) and yan.ft.* keys:
 * the fine-tuning configuration and the base's identity (its size and a
 * hash of sampled blocks, compared on resume).
 * The file is written with yan_gguf_w_write (temp + fsync + rename), so the
 * previous checkpoint survives a crash at any point. Reading validates the
 * whole GGUF first (gguf.c) and then every key and tensor shape it uses;
 * errors name the file and what is wrong. */
#include "train/trainer.h"

#include <math.h>
#include <stddef.h>

/* ------------------------------------------------------- the config keys */

enum { K_I32, K_I64, K_U64, K_F32, K_BOOL, K_STR, K_U32 };

typedef struct {
    const char *key;
    int type;
    size_t off, size;
} cfg_key;

#define F(key, ty, field) {key, ty, offsetof(yan_train_config, field), sizeof(((yan_train_config *)0)->field)}
static const cfg_key CFG_KEYS[] = {
    F("yan.train.model.n_vocab", K_I32, model.n_vocab),
    F("yan.train.model.n_ctx", K_I32, model.n_ctx),
    F("yan.train.model.n_embd", K_I32, model.n_embd),
    F("yan.train.model.n_layer", K_I32, model.n_layer),
    F("yan.train.model.n_head", K_I32, model.n_head),
    F("yan.train.model.n_head_kv", K_I32, model.n_head_kv),
    F("yan.train.model.n_ff", K_I32, model.n_ff),
    F("yan.train.model.norm_eps", K_F32, model.norm_eps),
    F("yan.train.model.rope_base", K_F32, model.rope_base),
    F("yan.train.model.tied_output", K_BOOL, model.tied_output),
    F("yan.train.data_dir", K_STR, data_dir),
    F("yan.train.batch", K_I32, batch),
    F("yan.train.seq", K_I32, seq),
    F("yan.train.accum", K_I32, accum),
    F("yan.train.steps", K_I64, steps),
    F("yan.train.lr", K_F32, lr),
    F("yan.train.min_lr", K_F32, min_lr),
    F("yan.train.warmup", K_I64, warmup),
    F("yan.train.weight_decay", K_F32, weight_decay),
    F("yan.train.beta1", K_F32, beta1),
    F("yan.train.beta2", K_F32, beta2),
    F("yan.train.eps", K_F32, eps),
    F("yan.train.clip", K_F32, clip),
    F("yan.train.seed", K_U64, seed),
    F("yan.train.eval_every", K_I64, eval_every),
    F("yan.train.eval_batches", K_I32, eval_batches),
    F("yan.train.sample_every", K_I64, sample_every),
    F("yan.train.sample_tokens", K_I32, sample_tokens),
    F("yan.train.sample_temp", K_F32, sample_temp),
    F("yan.train.sample_prompt", K_STR, sample_prompt),
    F("yan.train.ckpt_every", K_I64, ckpt_every),
};
/* fine-tuning checkpoints only (present when yan.ft.base_path is) */
static const cfg_key FT_KEYS[] = {
    F("yan.ft.base_path", K_STR, base_path),
    F("yan.ft.data", K_STR, sft_data),
    F("yan.ft.val_data", K_STR, sft_val),
    F("yan.ft.chat_template", K_STR, chat_template),
    F("yan.ft.val_fraction", K_F32, val_fraction),
    F("yan.ft.epochs", K_I64, epochs),
    F("yan.ft.lora_rank", K_I32, lora.rank),
    F("yan.ft.lora_alpha", K_F32, lora.alpha),
    F("yan.ft.lora_targets", K_U32, lora.targets),
    F("yan.ft.exact_base", K_BOOL, exact_base),
};
#undef F

static yan_status put_keys(yan_gguf_writer *w, const yan_train_config *c, const cfg_key *keys, size_t n) {
    const char *base = (const char *)c;
    yan_status s = YAN_OK;
    for (size_t i = 0; i < n && !s; i++) {
        const cfg_key *k = &keys[i];
        const void *p = base + k->off;
        switch (k->type) {
        case K_I32: { int32_t v; memcpy(&v, p, 4); s = yan_gguf_w_set_i32(w, k->key, v); break; }
        case K_U32: { uint32_t v; memcpy(&v, p, 4); s = yan_gguf_w_set_u32(w, k->key, v); break; }
        case K_I64: { int64_t v; memcpy(&v, p, 8); s = yan_gguf_w_set_i64(w, k->key, v); break; }
        case K_U64: { uint64_t v; memcpy(&v, p, 8); s = yan_gguf_w_set_u64(w, k->key, v); break; }
        case K_F32: { float v; memcpy(&v, p, 4); s = yan_gguf_w_set_f32(w, k->key, v); break; }
        case K_BOOL: { bool v; memcpy(&v, p, sizeof v); s = yan_gguf_w_set_bool(w, k->key, v); break; }
        case K_STR: s = yan_gguf_w_set_str(w, k->key, (const char *)p, strnlen((const char *)p, k->size)); break;
        }
    }
    return s;
}

/* A missing key is a format error here (the getters leave NOT_FOUND silent). */
static yan_status need(yan_status s, const char *path, const char *key) {
    if (s == YAN_ERR_NOT_FOUND)
        return yan_fail(YAN_ERR_FORMAT, "%s: checkpoint key '%s' is missing (a damaged or foreign file?)", path, key);
    if (s) yan_error_prefix(path);
    return s;
}

static yan_status put_cfg(yan_gguf_writer *w, const yan_train_config *c) {
    yan_status s = put_keys(w, c, CFG_KEYS, sizeof CFG_KEYS / sizeof CFG_KEYS[0]);
    if (!s && c->base_path[0]) s = put_keys(w, c, FT_KEYS, sizeof FT_KEYS / sizeof FT_KEYS[0]);
    return s;
}

static yan_status get_keys(const yan_gguf *g, const char *path, yan_train_config *c, const cfg_key *keys, size_t nk) {
    char *base = (char *)c;
    for (size_t i = 0; i < nk; i++) {
        const cfg_key *k = &keys[i];
        void *p = base + k->off;
        yan_status s = YAN_OK;
        switch (k->type) {
        case K_I32: { int32_t v = 0; s = yan_gguf_get_i32(g, k->key, &v); memcpy(p, &v, 4); break; }
        case K_U32: { uint32_t v = 0; s = yan_gguf_get_u32(g, k->key, &v); memcpy(p, &v, 4); break; }
        case K_I64: { int64_t v = 0; s = yan_gguf_get_i64(g, k->key, &v); memcpy(p, &v, 8); break; }
        case K_U64: { uint64_t v = 0; s = yan_gguf_get_u64(g, k->key, &v); memcpy(p, &v, 8); break; }
        case K_F32: { float v = 0; s = yan_gguf_get_f32(g, k->key, &v); memcpy(p, &v, 4); break; }
        case K_BOOL: { bool v = false; s = yan_gguf_get_bool(g, k->key, &v); memcpy(p, &v, sizeof v); break; }
        case K_STR: {
            const char *str;
            size_t len;
            s = yan_gguf_get_str(g, k->key, &str, &len);
            if (!s && len >= k->size)
                return yan_fail(YAN_ERR_FORMAT, "%s: checkpoint key '%s' is too long (%zu bytes)", path, k->key, len);
            if (!s) {
                memcpy(p, str, len);
                ((char *)p)[len] = 0;
            }
            break;
        }
        }
        if (s) return need(s, path, k->key);
    }
    return YAN_OK;
}

static yan_status get_cfg(const yan_gguf *g, const char *path, yan_train_config *c) {
    yan_status s = get_keys(g, path, c, CFG_KEYS, sizeof CFG_KEYS / sizeof CFG_KEYS[0]);
    if (!s && yan_gguf_find_key(g, "yan.ft.base_path") >= 0)
        s = get_keys(g, path, c, FT_KEYS, sizeof FT_KEYS / sizeof FT_KEYS[0]);
    return s;
}

/* ------------------------------------------------------------ the history */

#define H_STEP "yan.train.history.step"
static const char *const H_KEYS[6] = {
    "yan.train.history.train_loss", "yan.train.history.val_loss", "yan.train.history.val_bpb",
    "yan.train.history.lr",         "yan.train.history.grad_norm", "yan.train.history.tokens_per_s",
};

static float *row_field(yan_train_row *r, int i) {
    switch (i) {
    case 0: return &r->train_loss;
    case 1: return &r->val_loss;
    case 2: return &r->val_bpb;
    case 3: return &r->lr;
    case 4: return &r->grad_norm;
    default: return &r->tok_s;
    }
}

static yan_status put_history(yan_gguf_writer *w, const yan_trainer *t) {
    size_t n = t->n_hist;
    int64_t *steps = yan_malloc((n ? n : 1) * sizeof *steps);
    float *col = yan_malloc((n ? n : 1) * sizeof *col);
    yan_status s = YAN_OK;
    if (!steps || !col) s = yan_fail(YAN_ERR_NOMEM, "checkpoint: out of memory");
    for (size_t i = 0; i < n && !s; i++) steps[i] = t->hist[i].step;
    if (!s) s = yan_gguf_w_set_arr(w, H_STEP, YAN_GGUF_INT64, steps, n);
    for (int f = 0; f < 6 && !s; f++) {
        for (size_t i = 0; i < n; i++) col[i] = *row_field(&t->hist[i], f);
        s = yan_gguf_w_set_arr(w, H_KEYS[f], YAN_GGUF_FLOAT32, col, n);
    }
    yan_free(steps);
    yan_free(col);
    return s;
}

static yan_status get_history(const yan_gguf *g, const char *path, yan_trainer *t) {
    yan_gguf_arr a;
    yan_status s = yan_gguf_get_arr(g, H_STEP, &a);
    if (s) return need(s, path, H_STEP);
    if (a.type != YAN_GGUF_INT64 || a.n > (uint64_t)t->step)
        return yan_fail(YAN_ERR_FORMAT, "%s: checkpoint key '%s' is not an int64 array of at most %lld steps", path,
                        H_STEP, (long long)t->step);
    size_t n = (size_t)a.n;
    yan_train_row *h = yan_calloc(n ? n : 1, sizeof *h);
    if (!h) return yan_fail(YAN_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) {
        h[i].step = yan_gguf_arr_int(&a, i);
        if (h[i].step < 1 || h[i].step > t->step || (i && h[i].step <= h[i - 1].step)) {
            yan_free(h);
            return yan_fail(YAN_ERR_FORMAT, "%s: checkpoint history: bad step number at row %zu", path, i);
        }
    }
    for (int f = 0; f < 6; f++) {
        yan_gguf_arr col;
        if ((s = yan_gguf_get_arr(g, H_KEYS[f], &col))) {
            yan_free(h);
            return need(s, path, H_KEYS[f]);
        }
        if (col.type != YAN_GGUF_FLOAT32 || col.n != a.n) {
            yan_free(h);
            return yan_fail(YAN_ERR_FORMAT, "%s: checkpoint key '%s' is not a float32 array of %zu values", path,
                            H_KEYS[f], n);
        }
        for (size_t i = 0; i < n; i++) *row_field(&h[i], f) = (float)yan_gguf_arr_float(&col, i);
    }
    yan_free(t->hist);
    t->hist = h;
    t->n_hist = t->cap_hist = n;
    return YAN_OK;
}

/* -------------------------------------------------------------------- save */

yan_status yan_ckpt_save(const yan_trainer *t, const char *path) {
    yan_gguf_writer *w = NULL;
    yan_status s = yan_gguf_writer_new(&w);
    if (s) return s;
    const uint64_t dims[1] = {(uint64_t)t->n_params};
    const uint64_t data_tokens = t->finetune ? (uint64_t)t->sft_train.n_tokens : yan_shards_n_tokens(t->train);
    if (t->finetune && t->m->lora.rank) s = yan_tmodel_adapter_to_gguf(t->m, "yan-finetune-checkpoint", w);
    else if (t->finetune)
        s = yan_tmodel_to_gguf(t->m, t->tok, t->chat_tmpl ? t->chat_tmpl : YAN_TRAIN_CHAT_TEMPLATE,
                               "yan-finetune-checkpoint", w);
    else s = yan_tmodel_to_gguf(t->m, t->tok, YAN_TRAIN_CHAT_TEMPLATE, "yan-train-checkpoint", w);
    if (!s && t->finetune) s = yan_gguf_w_set_u64(w, "yan.ft.base_size", t->base_size);
    if (!s && t->finetune) s = yan_gguf_w_set_u64(w, "yan.ft.base_hash", t->base_hash);
    if (!s && t->finetune) s = yan_gguf_w_set_str(w, "yan.ft.family", t->family, strlen(t->family));
    if (!s) s = yan_gguf_w_set_u32(w, "yan.train.version", YAN_TRAIN_CKPT_VERSION);
    if (!s) s = yan_gguf_w_set_i64(w, "yan.train.step", t->step);
    if (!s) s = yan_gguf_w_set_i64(w, "yan.train.opt_t", t->opt.t);
    if (!s) s = yan_gguf_w_set_u64(w, "yan.train.data_pos", t->data_pos);
    if (!s) s = yan_gguf_w_set_u64(w, "yan.train.rng", t->rng);
    if (!s) s = yan_gguf_w_set_u64(w, "yan.train.data_tokens", data_tokens);
    if (!s) s = yan_gguf_w_set_u64(w, "yan.train.data_hash", t->data_hash);
    if (!s) s = yan_gguf_w_set_i64(w, "yan.train.n_params", t->n_params);
    if (!s) s = put_cfg(w, &t->cfg);
    if (!s) s = put_history(w, t);
    if (!s) s = yan_gguf_w_add_tensor(w, "yan.opt.m", YAN_GGML_F32, 1, dims, t->opt.m);
    if (!s) s = yan_gguf_w_add_tensor(w, "yan.opt.v", YAN_GGML_F32, 1, dims, t->opt.v);
    if (!s) s = yan_gguf_w_write(w, path);
    yan_gguf_writer_free(w);
    return s;
}

/* -------------------------------------------------------------------- load */

static yan_status open_ckpt(const char *path, yan_gguf **g) {
    yan_status s = yan_gguf_open(path, g);
    if (s) return s;
    uint32_t ver = 0;
    s = yan_gguf_get_u32(*g, "yan.train.version", &ver);
    if (s == YAN_ERR_NOT_FOUND)
        s = yan_fail(YAN_ERR_FORMAT,
                     "%s: not a yan training checkpoint (no yan.train.version key)\n"
                     "---> HINT: resume from the OUT/ckpt.gguf that `yan train -o OUT` or `yan finetune -o OUT` writes",
                     path);
    else if (s) yan_error_prefix(path);
    else if (ver > YAN_TRAIN_CKPT_VERSION)
        s = yan_fail(YAN_ERR_UNSUPPORTED, "%s: checkpoint format version %u is newer than this yan reads (%d)", path,
                     ver, YAN_TRAIN_CKPT_VERSION);
    if (s) {
        yan_gguf_close(*g);
        *g = NULL;
    }
    return s;
}

yan_status yan_ckpt_read_config(const char *path, yan_train_config *c) {
    yan_gguf *g = NULL;
    yan_status s = open_ckpt(path, &g);
    if (s) return s;
    *c = yan_train_config_default();
    s = get_cfg(g, path, c);
    yan_gguf_close(g);
    if (s) return s;
    c->threads = 0;
    c->stop_after = 0;
    /* outputs go next to the checkpoint */
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 1;
    if (n == 0) n = 1; /* "/ckpt.gguf" */
    if (n >= sizeof c->out_dir) return yan_fail(YAN_ERR_INVALID_ARG, "%s: path too long", path);
    memcpy(c->out_dir, slash ? path : ".", n);
    c->out_dir[n] = 0;
    return YAN_OK;
}

static yan_status copy_tensor(const yan_gguf *g, const char *path, const char *name, int64_t ne0, int64_t ne1,
                              float *dst) {
    const yan_gguf_tensor *te = yan_gguf_find_tensor(g, name);
    if (!te) return yan_fail(YAN_ERR_FORMAT, "%s: checkpoint tensor '%s' is missing", path, name);
    uint64_t n = 1;
    for (uint32_t d = 0; d < te->n_dims; d++) n *= te->ne[d];
    if (te->type != YAN_GGML_F32 || te->ne[0] != (uint64_t)ne0 || n != (uint64_t)ne0 * (uint64_t)ne1)
        return yan_fail(YAN_ERR_FORMAT,
                        "%s: checkpoint tensor '%s' is %s [%llu x %llu], the model needs f32 [%lld x %lld] "
                        "(a checkpoint of another model?)",
                        path, name, yan_ggml_type(te->type) ? yan_ggml_type(te->type)->name : "?",
                        (unsigned long long)te->ne[0], (unsigned long long)(te->ne[0] ? n / te->ne[0] : 0),
                        (long long)ne0, (long long)ne1);
    memcpy(dst, te->data, (size_t)n * sizeof(float));
    return YAN_OK;
}

yan_status yan_ckpt_load(yan_trainer *t, const char *path) {
    yan_gguf *g = NULL;
    yan_status s = open_ckpt(path, &g);
    if (s) return s;
    yan_train_config c = yan_train_config_default();
    int64_t step = 0, opt_t = 0, n_params = 0;
    uint64_t pos = 0, rng = 0, data_tokens = 0, data_hash = 0;
    if ((s = get_cfg(g, path, &c))) goto out;
    if ((s = need(yan_gguf_get_i64(g, "yan.train.step", &step), path, "yan.train.step"))) goto out;
    if ((s = need(yan_gguf_get_i64(g, "yan.train.opt_t", &opt_t), path, "yan.train.opt_t"))) goto out;
    if ((s = need(yan_gguf_get_u64(g, "yan.train.data_pos", &pos), path, "yan.train.data_pos"))) goto out;
    if ((s = need(yan_gguf_get_u64(g, "yan.train.rng", &rng), path, "yan.train.rng"))) goto out;
    if ((s = need(yan_gguf_get_u64(g, "yan.train.data_tokens", &data_tokens), path, "yan.train.data_tokens")))
        goto out;
    if ((s = need(yan_gguf_get_i64(g, "yan.train.n_params", &n_params), path, "yan.train.n_params"))) goto out;
    if ((s = need(yan_gguf_get_u64(g, "yan.train.data_hash", &data_hash), path, "yan.train.data_hash"))) goto out;

    const yan_tconfig *a = &c.model, *b = &t->cfg.model;
    if (a->n_vocab != b->n_vocab || a->n_embd != b->n_embd || a->n_layer != b->n_layer || a->n_head != b->n_head ||
        a->n_head_kv != b->n_head_kv || a->n_ff != b->n_ff || a->tied_output != b->tied_output ||
        n_params != t->n_params) {
        s = yan_fail(YAN_ERR_FORMAT,
                     "%s: the checkpoint's model (vocab %d, dim %d, %d layers, %d heads, FF %d, %lld params) is not "
                     "the one configured (vocab %d, dim %d, %d layers, %d heads, FF %d, %lld params)",
                     path, a->n_vocab, a->n_embd, a->n_layer, a->n_head, a->n_ff, (long long)n_params, b->n_vocab,
                     b->n_embd, b->n_layer, b->n_head, b->n_ff, (long long)t->n_params);
        goto out;
    }
    if (t->finetune) {
        uint64_t bsize = 0, bhash = 0;
        if (yan_gguf_find_key(g, "yan.ft.base_path") < 0) {
            s = yan_fail(YAN_ERR_FORMAT, "%s: a pre-training checkpoint, not a fine-tuning one (resume it with yan train)",
                         path);
            goto out;
        }
        if ((s = need(yan_gguf_get_u64(g, "yan.ft.base_size", &bsize), path, "yan.ft.base_size"))) goto out;
        if ((s = need(yan_gguf_get_u64(g, "yan.ft.base_hash", &bhash), path, "yan.ft.base_hash"))) goto out;
        if (bsize != t->base_size || bhash != t->base_hash) {
            s = yan_fail(YAN_ERR_FORMAT,
                         "%s: the checkpoint was fine-tuned from another base than %s (%s differs): resuming needs "
                         "the same base file",
                         path, t->cfg.base_path, bsize != t->base_size ? "its size" : "its content");
            goto out;
        }
        if (c.lora.rank != t->cfg.lora.rank || c.lora.targets != t->cfg.lora.targets) {
            s = yan_fail(YAN_ERR_FORMAT, "%s: the checkpoint's LoRA settings are not the ones configured", path);
            goto out;
        }
        if (data_tokens != (uint64_t)t->sft_train.n_tokens || data_hash != t->data_hash) {
            s = yan_fail(YAN_ERR_FORMAT,
                         "%s: the conversations of %s (as tokenized with the %s template) are not those the "
                         "checkpoint was trained on: resuming needs the same data",
                         path, t->cfg.sft_data, t->family);
            goto out;
        }
    } else if (yan_gguf_find_key(g, "yan.ft.base_path") >= 0) {
        s = yan_fail(YAN_ERR_FORMAT, "%s: a fine-tuning checkpoint (resume it with yan finetune --resume)", path);
        goto out;
    } else if (data_tokens != yan_shards_n_tokens(t->train)) {
        s = yan_fail(YAN_ERR_FORMAT,
                     "%s: the checkpoint was trained on %llu tokens but the train split of %s has %llu: "
                     "resuming needs the same data",
                     path, (unsigned long long)data_tokens, t->cfg.data_dir,
                     (unsigned long long)yan_shards_n_tokens(t->train));
        goto out;
    }
    if (!t->finetune && data_hash != t->data_hash) {
        s = yan_fail(YAN_ERR_FORMAT,
                     "%s: the train split of %s is not the data the checkpoint was trained on (same size, other "
                     "tokens): resuming needs the same data",
                     path, t->cfg.data_dir);
        goto out;
    }
    if (step < 0 || opt_t < 0 || rng == 0 || (!t->finetune && pos > data_tokens)) {
        s = yan_fail(YAN_ERR_FORMAT, "%s: checkpoint state out of range (step %lld, t %lld, position %llu)", path,
                     (long long)step, (long long)opt_t, (unsigned long long)pos);
        goto out;
    }
    for (int i = 0; i < t->m->n_tensors; i++) {
        const yan_tparam *p = &t->m->tensors[i];
        if ((s = copy_tensor(g, path, p->name, p->ne0, p->ne1, t->m->params + p->offset))) goto out;
    }
    if ((s = copy_tensor(g, path, "yan.opt.m", t->n_params, 1, t->opt.m))) goto out;
    if ((s = copy_tensor(g, path, "yan.opt.v", t->n_params, 1, t->opt.v))) goto out;
    t->step = step;
    if ((s = get_history(g, path, t))) goto out;
    t->opt.t = opt_t;
    t->data_pos = pos;
    t->rng = rng;
    t->ckpt_step = step;
out:
    yan_gguf_close(g);
    return s;
}
