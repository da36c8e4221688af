/* model.c — loading a GGUF model: architecture and hyper-parameters from the
 * `<arch>.*` keys, every tensor llama.cpp's loader expects for that
 * architecture found by name and checked (shape against the hyper-parameters,
 * type against what the kernels compute), weight matrices kept as views into
 * the mapping, small vectors converted to f32, the tokenizer loaded from the
 * same file. Also the model accessors, yan_model_describe and the context
 * memory plan.
 *
 * Not here: the forward pass (forward.c), generation (generate.c), kernels
 * (src/tensor/). Errors are one message naming the file and the key or tensor.
 * Dependencies: gguf.h, tensor.h, tokenizer/tok.h + tok_gguf.h. */
#include "model/model.h"

#include <math.h>
#include <sys/stat.h>

#include "tokenizer/tok_gguf.h"

/* ------------------------------------------------------------- defaults */

yan_model_params yan_model_params_default(void) {
    yan_model_params p = {0};
    p.load = YAN_LOAD_AUTO;
    return p;
}

/* ------------------------------------------------------ hyper-parameters */

typedef struct {
    yan_model *m;
    const yan_gguf *g;
    const char *path;
    const yan_model_params *p;
    /* f32 vectors to convert once every tensor is checked */
    struct pend { const yan_gguf_tensor *t; const float **dst; } *pend;
    size_t n_pend, cap_pend;
    size_t n_vec_floats;
    int64_t n_done, n_total;   /* progress over tensors */
} loader;

static yan_status get_int(loader *ld, const char *suffix, bool required, int64_t def, int64_t lo, int64_t hi,
                          int32_t *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", ld->m->arch_name, suffix);
    int64_t v;
    yan_status st = yan_gguf_get_i64(ld->g, key, &v);
    if (st == YAN_ERR_NOT_FOUND) {
        if (required) return yan_fail(YAN_ERR_FORMAT, "%s: missing required key '%s'", ld->path, key);
        v = def;
    } else if (st) {
        yan_error_prefix(ld->path);
        return st;
    } else if (v < lo || v > hi) {
        return yan_fail(YAN_ERR_FORMAT, "%s: key '%s' = %lld is out of range [%lld, %lld]", ld->path, key,
                        (long long)v, (long long)lo, (long long)hi);
    }
    *out = (int32_t)v;
    return YAN_OK;
}

static yan_status get_float(loader *ld, const char *suffix, bool required, float def, float *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", ld->m->arch_name, suffix);
    yan_status st = yan_gguf_get_f32(ld->g, key, out);
    if (st == YAN_ERR_NOT_FOUND) {
        if (required) return yan_fail(YAN_ERR_FORMAT, "%s: missing required key '%s'", ld->path, key);
        *out = def;
        return YAN_OK;
    }
    if (st) {
        yan_error_prefix(ld->path);
        return st;
    }
    if (!isfinite(*out)) return yan_fail(YAN_ERR_FORMAT, "%s: key '%s' is not a finite number", ld->path, key);
    return YAN_OK;
}

/* <arch>.attention.causal (default: every architecture but bert) and
 * <arch>.pooling_type (llama.cpp's enum: 0 none, 1 mean, 2 cls, 3 last,
 * 4 rank; none and absent mean MEAN here, rank is a reranker head). */
static yan_status read_embedding_keys(loader *ld) {
    yan_model *m = ld->m;
    yan_hparams *hp = &m->hp;
    char key[128];
    snprintf(key, sizeof key, "%s.attention.causal", m->arch_name);
    yan_status st = yan_gguf_get_bool(ld->g, key, &hp->causal);
    if (st == YAN_ERR_NOT_FOUND) hp->causal = m->arch != YAN_ARCH_BERT;
    else if (st) {
        yan_error_prefix(ld->path);
        return st;
    }
    int32_t pt;
    if ((st = get_int(ld, "pooling_type", false, -1, 0, 4, &pt))) return st;
    if (pt == 4)
        return yan_fail(YAN_ERR_UNSUPPORTED, "%s: %s.pooling_type 4 (rank: a reranker's classification head) is not supported",
                        ld->path, m->arch_name);
    hp->pooling_set = pt >= 0;
    hp->pooling = pt == 2 ? YAN_POOLING_CLS : pt == 3 ? YAN_POOLING_LAST : YAN_POOLING_MEAN;
    return YAN_OK;
}

static yan_status read_hparams(loader *ld) {
    yan_model *m = ld->m;
    yan_hparams *hp = &m->hp;
    yan_status st;
    bool gpt2 = m->arch == YAN_ARCH_GPT2, bert = m->arch == YAN_ARCH_BERT;
    if ((st = get_int(ld, "context_length", true, 0, 1, 1 << 24, &hp->n_ctx_train))) return st;
    if ((st = get_int(ld, "embedding_length", true, 0, 1, 1 << 16, &hp->n_embd))) return st;
    if ((st = get_int(ld, "block_count", true, 0, 1, 4096, &hp->n_layer))) return st;
    if ((st = get_int(ld, "feed_forward_length", true, 0, 1, 1 << 20, &hp->n_ff))) return st;
    if ((st = get_int(ld, "attention.head_count", true, 0, 1, 4096, &hp->n_head))) return st;
    if ((st = get_int(ld, "attention.head_count_kv", false, hp->n_head, 1, 4096, &hp->n_head_kv))) return st;
    if (hp->n_head % hp->n_head_kv)
        return yan_fail(YAN_ERR_FORMAT, "%s: head_count %d is not a multiple of head_count_kv %d", ld->path,
                        hp->n_head, hp->n_head_kv);
    int32_t hd_def = hp->n_embd / hp->n_head;
    if ((st = get_int(ld, "attention.key_length", false, hd_def, 1, 4096, &hp->head_dim))) return st;
    if ((st = get_int(ld, "attention.value_length", false, hp->head_dim, 1, 4096, &hp->head_dim_v))) return st;
    if ((st = read_embedding_keys(ld))) return st;
    if (bert) {
        if (hp->n_embd % hp->n_head || hp->head_dim != hd_def || hp->head_dim_v != hp->head_dim)
            return yan_fail(YAN_ERR_FORMAT, "%s: bert needs embedding_length %d divisible by head_count %d and equal key "
                            "and value lengths", ld->path, hp->n_embd, hp->n_head);
        if ((st = get_float(ld, "attention.layer_norm_epsilon", false, 1e-12f, &hp->eps))) return st;
        hp->layernorm = hp->post_norm = true;
        hp->n_rot = 0;
        hp->rope_base = 10000.0f;
        hp->rope_freq_scale = 1.0f;
        return YAN_OK;
    }
    if (gpt2) {
        if (hp->n_embd % hp->n_head || hp->head_dim != hd_def || hp->n_head_kv != hp->n_head)
            return yan_fail(YAN_ERR_FORMAT, "%s: gpt2 needs embedding_length %d divisible by head_count %d and no GQA",
                            ld->path, hp->n_embd, hp->n_head);
        if ((st = get_float(ld, "attention.layer_norm_epsilon", false, 1e-5f, &hp->eps))) return st;
        hp->layernorm = true;
        hp->n_rot = 0;
        hp->rope_base = 10000.0f;
        hp->rope_freq_scale = 1.0f;
        return YAN_OK;
    }
    if (hp->head_dim_v != hp->head_dim)
        return yan_fail(YAN_ERR_UNSUPPORTED, "%s: key_length %d != value_length %d is not supported", ld->path,
                        hp->head_dim, hp->head_dim_v);
    if ((st = get_float(ld, "attention.layer_norm_rms_epsilon", false, 1e-5f, &hp->eps))) return st;
    if ((st = get_int(ld, "rope.dimension_count", false, hp->head_dim, 0, hp->head_dim, &hp->n_rot))) return st;
    if (hp->n_rot % 2) return yan_fail(YAN_ERR_FORMAT, "%s: rope.dimension_count %d is odd", ld->path, hp->n_rot);
    if ((st = get_float(ld, "rope.freq_base", false, 10000.0f, &hp->rope_base))) return st;
    if (hp->rope_base <= 0) return yan_fail(YAN_ERR_FORMAT, "%s: rope.freq_base must be positive", ld->path);
    /* scaling: rope.scaling.type ("none", "linear"; others unsupported) with
     * rope.scaling.factor, or the older rope.scale_linear */
    float factor = 1.0f;
    char key[128];
    const char *s;
    size_t n;
    snprintf(key, sizeof key, "%s.rope.scaling.type", m->arch_name);
    st = yan_gguf_get_str(ld->g, key, &s, &n);
    bool linear = false;
    if (st == YAN_OK) {
        if (n == 6 && !memcmp(s, "linear", 6)) linear = true;
        else if (!(n == 4 && !memcmp(s, "none", 4)))
            return yan_fail(YAN_ERR_UNSUPPORTED, "%s: %s '%.*s' is not supported (supported: none, linear)", ld->path,
                            key, (int)(n > 32 ? 32 : n), s);
    } else if (st != YAN_ERR_NOT_FOUND) {
        yan_error_prefix(ld->path);
        return st;
    }
    if (linear || st == YAN_ERR_NOT_FOUND) {
        if ((st = get_float(ld, "rope.scaling.factor", false, 0.0f, &factor))) return st;
        if (factor == 0.0f && (st = get_float(ld, "rope.scale_linear", false, 1.0f, &factor))) return st;
        if (factor == 0.0f) factor = 1.0f;
    }
    if (!(factor > 0)) return yan_fail(YAN_ERR_FORMAT, "%s: rope scaling factor must be positive", ld->path);
    hp->rope_freq_scale = 1.0f / factor;
    hp->rope_neox = m->arch != YAN_ARCH_LLAMA;
    return YAN_OK;
}

/* -------------------------------------------------------------- tensors */

static void account(yan_model *m, const yan_gguf_tensor *t) {
    uint64_t n = 1;
    for (uint32_t i = 0; i < t->n_dims; i++) n *= t->ne[i];
    m->n_params += n;
    m->weight_bytes += t->nbytes;
    if (t->type < YAN_GGML_TYPE_COUNT) {
        m->type_count[t->type]++;
        m->type_bytes[t->type] += t->nbytes;
    }
}

static yan_status progress(loader *ld) {
    ld->n_done++;
    if (ld->p->progress && !ld->p->progress((float)ld->n_done / (float)(ld->n_total + 1), ld->p->progress_ud))
        return yan_fail(YAN_ERR_ABORTED, "%s: loading aborted by the progress callback", ld->path);
    return YAN_OK;
}

static yan_status check_finite(loader *ld, const char *name, const yan_gguf_tensor *t, int64_t ne0, int64_t rows) {
    float *row = yan_malloc((size_t)ne0 * sizeof(float));
    if (!row) return yan_fail(YAN_ERR_NOMEM, "%s: out of memory checking tensor '%s'", ld->path, name);
    size_t rb = yan_type_row_bytes((int)t->type, ne0);
    for (int64_t r = 0; r < rows; r++) {
        yan_dequantize_row((int)t->type, t->data + (size_t)r * rb, row, ne0);
        for (int64_t i = 0; i < ne0; i++)
            if (!isfinite(row[i])) {
                yan_free(row);
                return yan_fail(YAN_ERR_FORMAT, "%s: tensor '%s' has a non-finite value at row %lld, column %lld",
                                ld->path, name, (long long)r, (long long)i);
            }
    }
    yan_free(row);
    return YAN_OK;
}

static yan_status unsupported_type(loader *ld, const char *name, const yan_gguf_tensor *t) {
    char list[256] = "";
    size_t n = 0;
    for (int i = 0; i < YAN_GGML_TYPE_COUNT && n < sizeof list - 16; i++)
        if (yan_type_supported(i)) n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "", yan_type_name(i));
    return yan_fail(YAN_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s, which yan cannot compute with (supported: %s)",
                    ld->path, name, yan_ggml_type(t->type) ? yan_ggml_type(t->type)->name : "?", list);
}

/* Find tensor `name`, check it is 2-D [ne0, ne1] of a computable type, and
 * fill *out. Absent and !required: *out zeroed, YAN_OK. */
static yan_status get_mat(loader *ld, const char *name, int64_t ne0, int64_t ne1, bool required, yan_mat *out) {
    memset(out, 0, sizeof *out);
    const yan_gguf_tensor *t = yan_gguf_find_tensor(ld->g, name);
    if (!t) {
        if (!required) return YAN_OK;
        return yan_fail(YAN_ERR_FORMAT, "%s: missing tensor '%s' (needed by the %s architecture)", ld->path, name,
                        ld->m->arch_name);
    }
    if (t->n_dims < 1 || t->n_dims > 2 || (int64_t)t->ne[0] != ne0 || (int64_t)t->ne[1] != ne1 || t->ne[2] != 1 ||
        t->ne[3] != 1)
        return yan_fail(YAN_ERR_FORMAT, "%s: tensor '%s' has shape [%llu, %llu, %llu, %llu], expected [%lld, %lld]",
                        ld->path, name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                        (unsigned long long)t->ne[2], (unsigned long long)t->ne[3], (long long)ne0, (long long)ne1);
    if (!yan_type_supported((int)t->type)) return unsupported_type(ld, name, t);
    out->type = (int)t->type;
    out->ne0 = ne0;
    out->ne1 = ne1;
    out->row_bytes = yan_type_row_bytes((int)t->type, ne0);
    out->data = t->data;
    account(ld->m, t);
    yan_status st;
    if (ld->p->check_tensors && (st = check_finite(ld, name, t, ne0, ne1))) return st;
    return progress(ld);
}

/* A 1-D vector of n values (any computable type), converted to f32 later.
 * row0: the tensor may be a matrix [n, rows >= 1]; its first row is taken. */
static yan_status get_vec_ex(loader *ld, const char *name, int64_t n, bool required, bool row0, const float **dst) {
    *dst = NULL;
    const yan_gguf_tensor *t = yan_gguf_find_tensor(ld->g, name);
    if (!t) {
        if (!required) return YAN_OK;
        return yan_fail(YAN_ERR_FORMAT, "%s: missing tensor '%s' (needed by the %s architecture)", ld->path, name,
                        ld->m->arch_name);
    }
    uint64_t total = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    if ((int64_t)t->ne[0] != n || (row0 ? (t->n_dims > 2 || t->ne[1] < 1) : total != (uint64_t)n))
        return yan_fail(YAN_ERR_FORMAT, "%s: tensor '%s' has %llu x %llu values, expected a vector of %lld", ld->path,
                        name, (unsigned long long)t->ne[0], (unsigned long long)(total / (t->ne[0] ? t->ne[0] : 1)),
                        (long long)n);
    if (!yan_type_supported((int)t->type)) return unsupported_type(ld, name, t);
    if (ld->n_pend == ld->cap_pend) {
        size_t cap = ld->cap_pend ? ld->cap_pend * 2 : 64;
        void *p = yan_realloc(ld->pend, cap * sizeof *ld->pend);
        if (!p) return yan_fail(YAN_ERR_NOMEM, "%s: out of memory", ld->path);
        ld->pend = p;
        ld->cap_pend = cap;
    }
    ld->pend[ld->n_pend].t = t;
    ld->pend[ld->n_pend].dst = dst;
    ld->n_pend++;
    ld->n_vec_floats += ((size_t)n + 15) & ~(size_t)15;
    account(ld->m, t);
    yan_status st;
    if (ld->p->check_tensors && (st = check_finite(ld, name, t, n, 1))) return st;
    return progress(ld);
}

static yan_status get_vec(loader *ld, const char *name, int64_t n, bool required, const float **dst) {
    return get_vec_ex(ld, name, n, required, false, dst);
}

static yan_status convert_vecs(loader *ld) {
    yan_model *m = ld->m;
    m->vecs = yan_malloc(ld->n_vec_floats ? ld->n_vec_floats * sizeof(float) : 1);
    if (!m->vecs) return yan_fail(YAN_ERR_NOMEM, "%s: out of memory", ld->path);
    float *p = m->vecs;
    for (size_t i = 0; i < ld->n_pend; i++) {
        const yan_gguf_tensor *t = ld->pend[i].t;
        yan_dequantize_row((int)t->type, t->data, p, (int64_t)t->ne[0]);
        *ld->pend[i].dst = p;
        p += ((size_t)t->ne[0] + 15) & ~(size_t)15;
    }
    return YAN_OK;
}

#define BLK(buf, l, what) (snprintf(buf, sizeof buf, "blk.%d." what, l), buf)

/* bert (llama.cpp's names): token_types (segment embeddings; row 0 is
 * added to every token), token_embd_norm, per layer q/k/v (or fused
 * attn_qkv) with optional biases, attn_output, attn_output_norm (after the
 * attention residual), ffn_up/ffn_down with optional biases (GELU, no gate)
 * and layer_output_norm (after the FFN residual); no output_norm and no
 * output matrix (cls.* classifier heads are not read). */
static yan_status load_bert_tensors(loader *ld) {
    yan_model *m = ld->m;
    const yan_hparams *hp = &m->hp;
    const int64_t C = hp->n_embd, FF = hp->n_ff, QD = (int64_t)hp->n_head * hp->head_dim,
                  KD = (int64_t)hp->n_head_kv * hp->head_dim, VD = (int64_t)hp->n_head_kv * hp->head_dim_v;
    yan_status st;
    if ((st = get_vec_ex(ld, "token_types.weight", C, false, true, &m->type_embd))) return st;
    if ((st = get_vec(ld, "token_embd_norm.weight", C, true, &m->tok_norm))) return st;
    if ((st = get_vec(ld, "token_embd_norm.bias", C, true, &m->tok_norm_b))) return st;
    m->layers = yan_calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) return yan_fail(YAN_ERR_NOMEM, "%s: out of memory", ld->path);
    char b[96];
    for (int l = 0; l < hp->n_layer; l++) {
        yan_layer *y = &m->layers[l];
        if ((st = get_mat(ld, BLK(b, l, "attn_qkv.weight"), C, QD + KD + VD, false, &y->wqkv))) return st;
        if (y->wqkv.data) {
            if ((st = get_vec(ld, BLK(b, l, "attn_qkv.bias"), QD + KD + VD, false, &y->bqkv))) return st;
        } else {
            if ((st = get_mat(ld, BLK(b, l, "attn_q.weight"), C, QD, true, &y->wq))) return st;
            if ((st = get_mat(ld, BLK(b, l, "attn_k.weight"), C, KD, true, &y->wk))) return st;
            if ((st = get_mat(ld, BLK(b, l, "attn_v.weight"), C, VD, true, &y->wv))) return st;
            if ((st = get_vec(ld, BLK(b, l, "attn_q.bias"), QD, false, &y->bq))) return st;
            if ((st = get_vec(ld, BLK(b, l, "attn_k.bias"), KD, false, &y->bk))) return st;
            if ((st = get_vec(ld, BLK(b, l, "attn_v.bias"), VD, false, &y->bv))) return st;
        }
        if ((st = get_mat(ld, BLK(b, l, "attn_output.weight"), QD, C, true, &y->wo))) return st;
        if ((st = get_vec(ld, BLK(b, l, "attn_output.bias"), C, false, &y->bo))) return st;
        if ((st = get_vec(ld, BLK(b, l, "attn_output_norm.weight"), C, true, &y->attn_out_norm))) return st;
        if ((st = get_vec(ld, BLK(b, l, "attn_output_norm.bias"), C, true, &y->attn_out_norm_b))) return st;
        if ((st = get_mat(ld, BLK(b, l, "ffn_up.weight"), C, FF, true, &y->w_up))) return st;
        if ((st = get_vec(ld, BLK(b, l, "ffn_up.bias"), FF, false, &y->b_up))) return st;
        if ((st = get_mat(ld, BLK(b, l, "ffn_down.weight"), FF, C, true, &y->w_down))) return st;
        if ((st = get_vec(ld, BLK(b, l, "ffn_down.bias"), C, false, &y->b_down))) return st;
        if ((st = get_vec(ld, BLK(b, l, "layer_output_norm.weight"), C, true, &y->out_norm))) return st;
        if ((st = get_vec(ld, BLK(b, l, "layer_output_norm.bias"), C, true, &y->out_norm_b))) return st;
    }
    if ((st = convert_vecs(ld))) return st;
    /* the hidden states the embeddings pool are the last layer's output */
    m->output_norm = m->layers[hp->n_layer - 1].out_norm;
    m->output_norm_b = m->layers[hp->n_layer - 1].out_norm_b;
    return YAN_OK;
}

static yan_status load_tensors(loader *ld) {
    yan_model *m = ld->m;
    const yan_hparams *hp = &m->hp;
    yan_status st;
    const int64_t C = hp->n_embd, HD = hp->head_dim, HDV = hp->head_dim_v, NH = hp->n_head, NKV = hp->n_head_kv,
                  FF = hp->n_ff;
    ld->n_total = yan_gguf_n_tensors(ld->g);

    /* the vocabulary size comes from the embedding table */
    const yan_gguf_tensor *te = yan_gguf_find_tensor(ld->g, "token_embd.weight");
    if (!te) return yan_fail(YAN_ERR_FORMAT, "%s: missing tensor 'token_embd.weight'", ld->path);
    if (te->ne[1] < 1 || te->ne[1] > (1u << 24))
        return yan_fail(YAN_ERR_FORMAT, "%s: tensor 'token_embd.weight' has %llu rows (vocabulary size out of range)",
                        ld->path, (unsigned long long)te->ne[1]);
    m->hp.n_vocab = (int32_t)te->ne[1];
    const int64_t V = hp->n_vocab;
    const bool bert = m->arch == YAN_ARCH_BERT;
    if ((st = get_mat(ld, "token_embd.weight", C, V, true, &m->tok_embd))) return st;
    if ((m->arch == YAN_ARCH_GPT2 || bert) &&
        (st = get_mat(ld, "position_embd.weight", C, hp->n_ctx_train, true, &m->pos_embd)))
        return st;
    if (bert) return load_bert_tensors(ld);
    if ((st = get_vec(ld, "output_norm.weight", C, true, &m->output_norm))) return st;
    if ((st = get_vec(ld, "output_norm.bias", C, m->arch == YAN_ARCH_GPT2, &m->output_norm_b))) return st;
    if ((st = get_mat(ld, "output.weight", C, V, false, &m->output))) return st;
    if (!m->output.data) {
        m->output = m->tok_embd;
        m->tied_output = true;
    }
    if (m->arch == YAN_ARCH_LLAMA && hp->n_rot > 0 &&
        (st = get_vec(ld, "rope_freqs.weight", hp->n_rot / 2, false, &m->rope_freqs)))
        return st;

    m->layers = yan_calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) return yan_fail(YAN_ERR_NOMEM, "%s: out of memory", ld->path);
    char b[96];
    for (int l = 0; l < hp->n_layer; l++) {
        yan_layer *y = &m->layers[l];
        if ((st = get_vec(ld, BLK(b, l, "attn_norm.weight"), C, true, &y->attn_norm))) return st;
        if ((st = get_vec(ld, BLK(b, l, "ffn_norm.weight"), C, true, &y->ffn_norm))) return st;
        if (m->arch == YAN_ARCH_GPT2) {
            if ((st = get_vec(ld, BLK(b, l, "attn_norm.bias"), C, true, &y->attn_norm_b))) return st;
            if ((st = get_vec(ld, BLK(b, l, "ffn_norm.bias"), C, true, &y->ffn_norm_b))) return st;
            if ((st = get_mat(ld, BLK(b, l, "attn_qkv.weight"), C, 3 * C, true, &y->wqkv))) return st;
            if ((st = get_vec(ld, BLK(b, l, "attn_qkv.bias"), 3 * C, true, &y->bqkv))) return st;
            if ((st = get_mat(ld, BLK(b, l, "attn_output.weight"), C, C, true, &y->wo))) return st;
            if ((st = get_vec(ld, BLK(b, l, "attn_output.bias"), C, true, &y->bo))) return st;
            if ((st = get_mat(ld, BLK(b, l, "ffn_up.weight"), C, FF, true, &y->w_up))) return st;
            if ((st = get_vec(ld, BLK(b, l, "ffn_up.bias"), FF, true, &y->b_up))) return st;
            if ((st = get_mat(ld, BLK(b, l, "ffn_down.weight"), FF, C, true, &y->w_down))) return st;
            if ((st = get_vec(ld, BLK(b, l, "ffn_down.bias"), C, true, &y->b_down))) return st;
            continue;
        }
        bool qwen2 = m->arch == YAN_ARCH_QWEN2;
        if ((st = get_mat(ld, BLK(b, l, "attn_q.weight"), C, NH * HD, true, &y->wq))) return st;
        if ((st = get_mat(ld, BLK(b, l, "attn_k.weight"), C, NKV * HD, true, &y->wk))) return st;
        if ((st = get_mat(ld, BLK(b, l, "attn_v.weight"), C, NKV * HDV, true, &y->wv))) return st;
        if ((st = get_vec(ld, BLK(b, l, "attn_q.bias"), NH * HD, qwen2, &y->bq))) return st;
        if ((st = get_vec(ld, BLK(b, l, "attn_k.bias"), NKV * HD, qwen2, &y->bk))) return st;
        if ((st = get_vec(ld, BLK(b, l, "attn_v.bias"), NKV * HDV, qwen2, &y->bv))) return st;
        if (m->arch == YAN_ARCH_QWEN3) {
            if ((st = get_vec(ld, BLK(b, l, "attn_q_norm.weight"), HD, true, &y->q_norm))) return st;
            if ((st = get_vec(ld, BLK(b, l, "attn_k_norm.weight"), HD, true, &y->k_norm))) return st;
        }
        if ((st = get_mat(ld, BLK(b, l, "attn_output.weight"), NH * HDV, C, true, &y->wo))) return st;
        if ((st = get_vec(ld, BLK(b, l, "attn_output.bias"), C, false, &y->bo))) return st;
        if ((st = get_mat(ld, BLK(b, l, "ffn_gate.weight"), C, FF, true, &y->w_gate))) return st;
        if ((st = get_mat(ld, BLK(b, l, "ffn_up.weight"), C, FF, true, &y->w_up))) return st;
        if ((st = get_mat(ld, BLK(b, l, "ffn_down.weight"), FF, C, true, &y->w_down))) return st;
    }
    return convert_vecs(ld);
}

/* ------------------------------------------------------------ tokenizer */

static bool is_eog_text(const uint8_t *s, size_t n) {
    static const char *const names[] = {"<|im_end|>", "<|eot_id|>", "<|endoftext|>", "</s>", "<|end|>",
                                        "<end_of_turn>", "<|end_of_text|>", "<|eom_id|>", "<|return|>"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == n && !memcmp(names[i], s, n)) return true;
    return false;
}

static void add_eog(yan_model *m, yan_token id) {
    if (id < 0 || id >= m->tok->n_vocab) return;
    for (int i = 0; i < m->n_eog; i++)
        if (m->eog[i] == id) return;
    if (m->n_eog < YAN_MAX_EOG) m->eog[m->n_eog++] = id;
}

static yan_status load_tokenizer(loader *ld) {
    yan_model *m = ld->m;
    m->tok = yan_malloc(sizeof *m->tok);
    if (!m->tok) return yan_fail(YAN_ERR_NOMEM, "%s: out of memory", ld->path);
    yan_tok_init(m->tok);
    m->tok->path = yan_strdup(ld->path);
    if (!m->tok->path) return yan_fail(YAN_ERR_NOMEM, "%s: out of memory", ld->path);
    size_t len;
    const uint8_t *bytes = yan_gguf_bytes(ld->g, &len);
    yan_status st = yan_load_gguf_vocab_mem(m->tok, bytes, len, ld->path);
    if (!st) st = yan_tok_finalize(m->tok);
    if (st) return st;
    if (m->tok->n_vocab > m->hp.n_vocab)
        return yan_fail(YAN_ERR_FORMAT, "%s: the vocabulary has %d tokens but token_embd.weight only %d rows", ld->path,
                        m->tok->n_vocab, m->hp.n_vocab);
    add_eog(m, m->tok->special[YAN_SPECIAL_EOS]);
    add_eog(m, m->tok->special[YAN_SPECIAL_EOT]);
    for (int32_t i = 0; i < m->tok->n_vocab; i++) {
        if (m->tok->tok_type[i] != YAN_TT_CONTROL) continue;
        size_t n;
        const uint8_t *s = yan_tok_bytes(m->tok, i, &n);
        if (is_eog_text(s, n)) add_eog(m, i);
    }
    return YAN_OK;
}

bool yan_model_is_eog(const yan_model *m, yan_token id) {
    for (int i = 0; i < m->n_eog; i++)
        if (m->eog[i] == id) return true;
    return false;
}

/* ----------------------------------------------------------------- load */

static const struct { const char *name; yan_arch arch; } k_archs[] = {
    {"llama", YAN_ARCH_LLAMA}, {"qwen2", YAN_ARCH_QWEN2}, {"qwen3", YAN_ARCH_QWEN3}, {"gpt2", YAN_ARCH_GPT2},
    {"bert", YAN_ARCH_BERT}};

static char *dup_str_key(const yan_gguf *g, const char *key, bool *oom) {
    const char *s;
    size_t n;
    if (yan_gguf_get_str(g, key, &s, &n) != YAN_OK) return NULL;
    char *r = yan_strndup(s, n);
    if (!r) *oom = true;
    return r;
}

yan_status yan_model_load(const char *path, const yan_model_params *p, yan_model **out) {
    if (!out) return yan_fail(YAN_ERR_INVALID_ARG, "yan_model_load: out is NULL");
    *out = NULL;
    if (!path) return yan_fail(YAN_ERR_INVALID_ARG, "yan_model_load: no path given");
    yan_model_params dp = yan_model_params_default();
    if (!p) p = &dp;
    yan_model *m = yan_calloc(1, sizeof *m);
    if (!m) return yan_fail(YAN_ERR_NOMEM, "%s: out of memory", path);
    loader ld = {m, NULL, path, p, NULL, 0, 0, 0, 0, 0};
    yan_status st;
    bool oom = false;
    if (!(m->path = yan_strdup(path))) { st = yan_fail(YAN_ERR_NOMEM, "%s: out of memory", path); goto fail; }
    bool copy = p->load == YAN_LOAD_COPY;
    if (p->load == YAN_LOAD_AUTO) {
        struct stat sb;
        copy = stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && yan_copy_fits((size_t)sb.st_size);
    }
    m->copied = copy;
    if (!copy) {
        if ((st = yan_gguf_open(path, &m->gguf))) goto fail;
    } else {
        if ((st = yan_mmap_copy(path, &m->file_copy))) goto fail;
        if ((st = yan_gguf_open_memory(m->file_copy.data, m->file_copy.len, path, &m->gguf))) goto fail;
    }
    ld.g = m->gguf;
    const char *a;
    size_t an;
    st = yan_gguf_get_str(ld.g, "general.architecture", &a, &an);
    if (st == YAN_ERR_NOT_FOUND) {
        st = yan_fail(YAN_ERR_FORMAT, "%s: missing key 'general.architecture'", path);
        goto fail;
    } else if (st) {
        yan_error_prefix(path);
        goto fail;
    }
    m->arch_name = NULL;
    for (size_t i = 0; i < sizeof k_archs / sizeof k_archs[0]; i++)
        if (strlen(k_archs[i].name) == an && !memcmp(k_archs[i].name, a, an)) {
            m->arch = k_archs[i].arch;
            m->arch_name = k_archs[i].name;
        }
    if (!m->arch_name) {
        st = yan_fail(YAN_ERR_UNSUPPORTED, "%s: architecture '%.*s' is not supported (supported: llama, qwen2, qwen3, gpt2, bert)",
                      path, (int)(an > 64 ? 64 : an), a);
        goto fail;
    }
    if ((st = read_hparams(&ld))) goto fail;
    if ((st = load_tensors(&ld))) goto fail;
    if ((st = load_tokenizer(&ld))) goto fail;
    m->name = dup_str_key(ld.g, "general.name", &oom);
    if (!m->name && !oom) m->name = yan_strdup("");
    if (!m->name) oom = true;
    m->chat_template = dup_str_key(ld.g, "tokenizer.chat_template", &oom);
    if (oom) { st = yan_fail(YAN_ERR_NOMEM, "%s: out of memory", path); goto fail; }
    if (p->progress && !p->progress(1.0f, p->progress_ud)) {
        st = yan_fail(YAN_ERR_ABORTED, "%s: loading aborted by the progress callback", path);
        goto fail;
    }
    yan_free(ld.pend);
    *out = m;
    return YAN_OK;
fail:
    yan_free(ld.pend);
    yan_model_free(m);
    return st;
}

void yan_model_free(yan_model *m) {
    if (!m) return;
    if (m->tok) {
        yan_tok_release(m->tok);
        yan_free(m->tok);
    }
    yan_free(m->layers);
    yan_free(m->vecs);
    for (int i = 0; i < m->n_lora; i++) yan_free(m->lora_bufs[i]);
    yan_free(m->lora_bufs);
    yan_free(m->name);
    yan_free(m->chat_template);
    yan_gguf_close(m->gguf);
    yan_mmap_close(&m->file_copy);
    yan_free(m->path);
    yan_free(m);
}

/* ------------------------------------------------------------ accessors */

const yan_tokenizer *yan_model_tokenizer(const yan_model *m) { return m->tok; }
const char *yan_model_arch(const yan_model *m) { return m->arch_name; }
const char *yan_model_name(const yan_model *m) { return m->name; }
int32_t yan_model_n_ctx_train(const yan_model *m) { return m->hp.n_ctx_train; }
int32_t yan_model_n_embd(const yan_model *m) { return m->hp.n_embd; }
int32_t yan_model_n_layer(const yan_model *m) { return m->hp.n_layer; }
int32_t yan_model_n_vocab(const yan_model *m) { return m->hp.n_vocab; }
uint64_t yan_model_n_params(const yan_model *m) { return m->n_params; }
uint64_t yan_model_weight_bytes(const yan_model *m) { return m->weight_bytes; }
const char *yan_model_chat_template(const yan_model *m) { return m->chat_template; }
yan_pooling yan_model_pooling(const yan_model *m) { return m->hp.pooling; }

const char *yan_pooling_name(yan_pooling p) {
    switch (p) {
    case YAN_POOLING_MEAN: return "mean";
    case YAN_POOLING_CLS: return "cls";
    case YAN_POOLING_LAST: return "last";
    default: return NULL;
    }
}

int64_t yan_model_describe(const yan_model *m, char *buf, size_t cap) {
    const yan_hparams *hp = &m->hp;
    yan_buf b = {0};
    yan_buf_printf(&b, "architecture: %s\n", m->arch_name);
    if (m->name && m->name[0]) yan_buf_printf(&b, "name: %s\n", m->name);
    yan_buf_printf(&b, "parameters: %llu (%.2f B)\n", (unsigned long long)m->n_params, (double)m->n_params / 1e9);
    yan_buf_printf(&b, "weights: %llu bytes (%.1f MiB), %.2f bits per weight\n", (unsigned long long)m->weight_bytes,
                   (double)m->weight_bytes / 1048576.0,
                   m->n_params ? 8.0 * (double)m->weight_bytes / (double)m->n_params : 0.0);
    yan_buf_printf(&b, "vocab: %d (tokenizer %d, %s)\n", hp->n_vocab, m->tok->n_vocab, yan_tokenizer_kind(m->tok));
    yan_buf_printf(&b, "context (train): %d\n", hp->n_ctx_train);
    yan_buf_printf(&b, "embedding: %d, layers: %d, ffn: %d\n", hp->n_embd, hp->n_layer, hp->n_ff);
    yan_buf_printf(&b, "heads: %d, kv heads: %d, head dim: %d\n", hp->n_head, hp->n_head_kv, hp->head_dim);
    if (!hp->layernorm)
        yan_buf_printf(&b, "rope: %s, dims %d, base %g, freq scale %g%s\n", hp->rope_neox ? "neox" : "norm", hp->n_rot,
                       (double)hp->rope_base, (double)hp->rope_freq_scale, m->rope_freqs ? ", freq factors" : "");
    yan_buf_printf(&b, "norm: %s, eps %g\n", hp->layernorm ? "layernorm" : "rmsnorm", (double)hp->eps);
    if (!yan_model_has_lm_head(m))
        yan_buf_printf(&b, "output: none (an embedding model: %s attention, %s pooling)\n",
                       hp->causal ? "causal" : "bidirectional", yan_pooling_name(hp->pooling));
    else
        yan_buf_printf(&b, "output: %s\n", m->tied_output ? "tied to token_embd" : "separate");
    if (yan_model_has_lm_head(m) && (hp->pooling_set || !hp->causal))
        yan_buf_printf(&b, "embeddings: %s attention, %s pooling\n", hp->causal ? "causal" : "bidirectional",
                       yan_pooling_name(hp->pooling));
    yan_buf_puts(&b, "tensor types:");
    for (int t = 0; t < YAN_GGML_TYPE_COUNT; t++)
        if (m->type_count[t])
            yan_buf_printf(&b, " %s x%u (%.1f MiB)", yan_ggml_type((uint32_t)t) ? yan_ggml_type((uint32_t)t)->name : "?",
                           m->type_count[t], (double)m->type_bytes[t] / 1048576.0);
    yan_buf_puts(&b, "\n");
    if (b.oom) {
        yan_buf_free(&b);
        yan_fail(YAN_ERR_NOMEM, "out of memory");
        return INT64_MIN;
    }
    int64_t r;
    if (b.len + 1 > cap) r = -(int64_t)(b.len + 1);
    else {
        memcpy(buf, b.data, b.len + 1);
        r = (int64_t)b.len;
    }
    yan_buf_free(&b);
    return r;
}

/* ----------------------------------------------------------- memory plan */

static void max_scr(size_t *mx, const yan_mat *w, int T) {
    if (!w->data) return;
    size_t s = yan_matmul_scratch_bytes(w, T);
    if (s > *mx) *mx = s;
}

size_t yan_model_matmul_scratch(const yan_model *m, int T) {
    size_t mx = 0;
    max_scr(&mx, &m->output, T);
    for (int l = 0; l < m->hp.n_layer; l++) {
        const yan_layer *y = &m->layers[l];
        max_scr(&mx, &y->wq, T);
        max_scr(&mx, &y->wk, T);
        max_scr(&mx, &y->wv, T);
        max_scr(&mx, &y->wqkv, T);
        max_scr(&mx, &y->wo, T);
        max_scr(&mx, &y->w_gate, T);
        max_scr(&mx, &y->w_up, T);
        max_scr(&mx, &y->w_down, T);
    }
    return mx;
}
