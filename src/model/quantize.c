/* quantize.c — yan_model_quantize: rewrite a GGUF model with its weights in
 * another type, as llama.cpp's llama-quantize does, so that llama.cpp loads
 * the result.
 *
 * What it does
 *  - Copies every metadata key (in order, as encoded bytes), then sets
 *    general.file_type (llama_ftype) and general.quantization_version (2).
 *  - Converts each weight matrix: a tensor whose name ends in "weight", with
 *    2 or more dims, that is not a norm ("_norm.weight"), an expert router
 *    ("ffn_gate_inp.weight") or the learned positions ("position_embd.weight",
 *    GPT-2). Each row is decoded to f32 (yan_dequantize_row) and encoded in
 *    the chosen type (yan_quantize_row). Every other tensor (norms, biases,
 *    1-D tensors) is copied byte for byte, in its type.
 *  - Keeps the tensor order and the file's alignment.
 *
 * Type mixes (llama.cpp's llama_tensor_get_type rules for the types offered;
 * "more bits" layers are i < n/8, i >= 7n/8 and every third one between,
 * (i - n/8) % 3 == 2 — about half of the layers for small n):
 *  - q8_0, f16, bf16, f32: every weight in that type (no mix).
 *  - q4_0: every weight q4_0, except output.weight (or token_embd.weight
 *    when the output is tied to it) in q6_K.
 *  - q4_K_M: q4_K; output q6_K; attn_v and ffn_down q6_K in the "more bits"
 *    layers; a fused attn_qkv (GPT-2) q5_K.
 *  - q4_K_S (alias q4_K): q4_K; output q6_K; attn_v of layers 0-3 and
 *    ffn_down of the first n/8 layers q5_K.
 *  - q5_K_M: q5_K; output q6_K; attn_v and ffn_down q6_K in the "more bits"
 *    layers; attn_qkv q6_K.   q5_K_S (alias q5_K): q5_K; output q6_K.
 *  - q6_K: every weight q6_K.
 * A row length that is not a multiple of the chosen type's block falls back:
 * k-quants to q8_0 (llama.cpp uses q5_0/q5_1 for q4_K/q5_K, which yan does
 * not compute with), and to f16 when even q8_0's 32 does not divide it.
 *
 * What it does not do: importance matrices, splits, or keeping a file
 * smaller than memory — converted tensors are held in memory until the file
 * is written (atomically: the old file, if any, stays intact on failure).
 * Converting from a quantized type (requantizing) is allowed; the result is
 * not as good as converting from the original f16/bf16/f32 weights.
 * Dependencies: gguf (reader, writer), tensor (row codecs), base. */
#include "base/base.h"
#include "gguf/gguf.h"
#include "tensor/tensor.h"

#include <strings.h>
#include <stdlib.h>

/* ------------------------------------------------------------- file types */

/* llama.cpp's llama_ftype values (append-only enum in llama.h). */
enum {
    FTYPE_ALL_F32 = 0, FTYPE_F16 = 1, FTYPE_Q4_0 = 2, FTYPE_Q8_0 = 7,
    FTYPE_Q4_K_S = 14, FTYPE_Q4_K_M = 15, FTYPE_Q5_K_S = 16, FTYPE_Q5_K_M = 17,
    FTYPE_Q6_K = 18, FTYPE_BF16 = 32,
};
#define QNT_VERSION 2 /* ggml's GGML_QNT_VERSION */

typedef struct {
    const char *name;
    int ftype;
    int type; /* the default tensor type */
} qtype;

static const qtype k_qtypes[] = {
    {"q8_0", FTYPE_Q8_0, YAN_T_Q8_0},     {"q4_0", FTYPE_Q4_0, YAN_T_Q4_0},
    {"q4_K_M", FTYPE_Q4_K_M, YAN_T_Q4_K}, {"q4_K_S", FTYPE_Q4_K_S, YAN_T_Q4_K},
    {"q4_K", FTYPE_Q4_K_S, YAN_T_Q4_K},   {"q5_K_M", FTYPE_Q5_K_M, YAN_T_Q5_K},
    {"q5_K_S", FTYPE_Q5_K_S, YAN_T_Q5_K}, {"q5_K", FTYPE_Q5_K_S, YAN_T_Q5_K},
    {"q6_K", FTYPE_Q6_K, YAN_T_Q6_K},     {"f16", FTYPE_F16, YAN_T_F16},
    {"bf16", FTYPE_BF16, YAN_T_BF16},     {"f32", FTYPE_ALL_F32, YAN_T_F32},
};

static const qtype *find_qtype(const char *name) {
    for (size_t i = 0; i < sizeof k_qtypes / sizeof k_qtypes[0]; i++)
        if (strcasecmp(name, k_qtypes[i].name) == 0) return &k_qtypes[i];
    return NULL;
}

static bool is_quantized(int type) { return type != YAN_T_F32 && type != YAN_T_F16 && type != YAN_T_BF16; }

/* ------------------------------------------------------------ type choice */

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* Should this tensor be converted at all? (llama.cpp's rules for the
 * architectures yan runs.) */
static bool is_weight_matrix(const char *name, uint32_t n_dims) {
    if (!ends_with(name, "weight") || n_dims < 2) return false;
    if (strstr(name, "_norm.weight") || strstr(name, "ffn_gate_inp.weight")) return false;
    if (strcmp(name, "position_embd.weight") == 0 || strcmp(name, "token_types.weight") == 0) return false;
    return true;
}

static bool more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

static int layer_of(const char *name) {
    int l = -1;
    if (sscanf(name, "blk.%d.", &l) != 1) return -1;
    return l;
}

typedef struct {
    const qtype *q;
    bool has_output;  /* an output.weight exists (else token_embd is the output) */
    int n_attn_v;     /* attn_v / attn_qkv tensors */
    int n_layer;      /* blocks */
} mix_state;

/* The type for one weight matrix, before the block-size fallback. */
static int mix_type(const mix_state *ms, const char *name) {
    const int ft = ms->q->ftype;
    int t = ms->q->type;
    if (!is_quantized(t) || ft == FTYPE_Q8_0) return t;
    if (strcmp(name, "output.weight") == 0 || (!ms->has_output && strcmp(name, "token_embd.weight") == 0))
        return YAN_T_Q6_K;
    int l = layer_of(name);
    if (strstr(name, "attn_v.weight")) {
        if ((ft == FTYPE_Q4_K_M || ft == FTYPE_Q5_K_M) && l >= 0 && more_bits(l, ms->n_attn_v)) t = YAN_T_Q6_K;
        else if (ft == FTYPE_Q4_K_S && l >= 0 && l < 4) t = YAN_T_Q5_K;
    } else if (strstr(name, "ffn_down")) {
        if ((ft == FTYPE_Q4_K_M || ft == FTYPE_Q5_K_M) && l >= 0 && more_bits(l, ms->n_layer)) t = YAN_T_Q6_K;
        else if (ft == FTYPE_Q4_K_S && l >= 0 && l < ms->n_layer / 8) t = YAN_T_Q5_K;
    } else if (strstr(name, "attn_qkv.weight")) {
        if (ft == FTYPE_Q4_K_M) t = YAN_T_Q5_K;
        else if (ft == FTYPE_Q5_K_M) t = YAN_T_Q6_K;
    }
    return t;
}

/* A type whose block divides a row of ne0 values. */
static int fit_type(int t, uint64_t ne0) {
    if (ne0 % (uint64_t)yan_type_block(t) == 0) return t;
    if (t != YAN_T_Q8_0 && t != YAN_T_Q4_0 && ne0 % 32 == 0) return YAN_T_Q8_0;
    return YAN_T_F16;
}

/* ------------------------------------------------------ parallel convert */

typedef struct {
    int src_type, dst_type;
    int64_t ne0, n_rows;
    size_t src_rb, dst_rb;
    const uint8_t *src;
    uint8_t *dst;
    float *rowbuf;   /* n_tasks rows of ne0 floats */
    int n_tasks;
    int failed;      /* a task could not encode (set, never cleared) */
} convert_job;

/* One task: a contiguous range of rows, decoded and re-encoded one by one. */
static void convert_task(void *ud, int task) {
    convert_job *j = ud;
    int64_t r0 = j->n_rows * task / j->n_tasks, r1 = j->n_rows * (task + 1) / j->n_tasks;
    float *row = j->rowbuf + (size_t)task * (size_t)j->ne0;
    for (int64_t r = r0; r < r1; r++) {
        yan_dequantize_row(j->src_type, j->src + (size_t)r * j->src_rb, row, j->ne0);
        if (!yan_quantize_row(j->dst_type, row, j->dst + (size_t)r * j->dst_rb, j->ne0)) {
            __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
            return;
        }
    }
}

/* ---------------------------------------------------------------- driver */

typedef struct {
    yan_gguf *in;
    yan_gguf_writer *w;
    void **bufs;     /* converted tensor data, one per tensor (NULL = borrowed) */
    int64_t n_bufs;
    float *rowbuf;
} qctx;

static void qctx_free(qctx *c) {
    if (c->bufs)
        for (int64_t i = 0; i < c->n_bufs; i++) yan_free(c->bufs[i]);
    yan_free(c->bufs);
    yan_free(c->rowbuf);
    yan_gguf_writer_free(c->w);
    yan_gguf_close(c->in);
}

static yan_status copy_metadata(qctx *c, const qtype *q) {
    char key[65536 + 1];
    for (int64_t i = 0; i < yan_gguf_n_kv(c->in); i++) {
        size_t klen, vlen;
        const char *k = yan_gguf_key(c->in, i, &klen);
        if (klen >= sizeof key) return yan_fail(YAN_ERR_FORMAT, "metadata key %lld too long", (long long)i);
        memcpy(key, k, klen);
        key[klen] = 0;
        const uint8_t *v = yan_gguf_kv_raw(c->in, i, &vlen);
        yan_status s = yan_gguf_w_set_raw(c->w, key, yan_gguf_kv_type(c->in, i), v, vlen);
        if (s) return s;
    }
    yan_status s = yan_gguf_w_set_u32(c->w, "general.quantization_version", QNT_VERSION);
    if (!s) s = yan_gguf_w_set_u32(c->w, "general.file_type", (uint32_t)q->ftype);
    return s;
}

YAN_API yan_status yan_model_quantize(const char *in_path, const char *out_path, const char *type, int n_threads,
                                      yan_progress_fn progress, void *ud) {
    if (!in_path || !out_path || !type) return yan_fail(YAN_ERR_INVALID_ARG, "quantize: NULL argument");
    const qtype *q = find_qtype(type);
    if (!q)
        return yan_fail(YAN_ERR_INVALID_ARG,
                        "unknown type '%s' (known: q8_0, q4_0, q4_K_M, q4_K_S, q4_K, q5_K_M, q5_K_S, q5_K, q6_K, "
                        "f16, bf16, f32)", type);
    if (strcmp(in_path, out_path) == 0)
        return yan_fail(YAN_ERR_INVALID_ARG, "%s: the output must be a different file from the input", out_path);

    qctx c = {0};
    yan_status s = yan_gguf_open(in_path, &c.in);
    if (s) return s;
    const int64_t n_t = yan_gguf_n_tensors(c.in);
    if (n_t == 0) {
        s = yan_fail(YAN_ERR_FORMAT, "%s: no tensors: not a model file", in_path);
        goto done;
    }
    if ((s = yan_gguf_writer_new(&c.w))) goto done;
    c.n_bufs = n_t;
    if (!(c.bufs = yan_calloc((size_t)n_t, sizeof *c.bufs))) { s = yan_fail(YAN_ERR_NOMEM, "quantize: out of memory"); goto done; }
    if ((s = copy_metadata(&c, q))) goto done;

    /* first pass: what the mix rules need, total bytes, widest row */
    mix_state ms = {.q = q};
    uint64_t total = 0, max_ne0 = 1;
    for (int64_t i = 0; i < n_t; i++) {
        const yan_gguf_tensor *t = yan_gguf_tensor_at(c.in, i);
        char name[YAN_GGUF_MAX_NAME + 1];
        snprintf(name, sizeof name, "%.*s", (int)t->name_len, t->name);
        if (strcmp(name, "output.weight") == 0) ms.has_output = true;
        if (strstr(name, "attn_v.weight") || strstr(name, "attn_qkv.weight")) ms.n_attn_v++;
        int l = layer_of(name);
        if (l + 1 > ms.n_layer) ms.n_layer = l + 1;
        total += t->nbytes;
        if (t->ne[0] > max_ne0) max_ne0 = t->ne[0];
    }
    uint32_t nl;
    if (yan_gguf_find_key(c.in, "general.architecture") >= 0) {
        const char *arch;
        size_t alen;
        char key[128];
        if (yan_gguf_get_str(c.in, "general.architecture", &arch, &alen) == YAN_OK && alen < 64) {
            snprintf(key, sizeof key, "%.*s.block_count", (int)alen, arch);
            if (yan_gguf_get_u32(c.in, key, &nl) == YAN_OK && nl > 0 && nl < (1u << 20)) ms.n_layer = (int)nl;
        }
    }
    if (ms.n_attn_v == 0) ms.n_attn_v = ms.n_layer;

    const int threads = yan_threads_resolve(n_threads);
    const int max_tasks = threads * 4;
    if (!(c.rowbuf = yan_malloc((size_t)max_tasks * (size_t)max_ne0 * sizeof(float)))) {
        s = yan_fail(YAN_ERR_NOMEM, "quantize: out of memory for row buffers (%llu values)", (unsigned long long)max_ne0);
        goto done;
    }

    uint64_t done_bytes = 0;
    if (progress && !progress(0.0f, ud)) { s = yan_fail(YAN_ERR_ABORTED, "quantize: aborted"); goto done; }
    for (int64_t i = 0; i < n_t; i++) {
        const yan_gguf_tensor *t = yan_gguf_tensor_at(c.in, i);
        char name[YAN_GGUF_MAX_NAME + 1];
        snprintf(name, sizeof name, "%.*s", (int)t->name_len, t->name);
        int dst = (int)t->type;
        if (is_weight_matrix(name, t->n_dims)) dst = fit_type(mix_type(&ms, name), t->ne[0]);
        const void *data = t->data;
        if (dst != (int)t->type) {
            if (!yan_type_supported((int)t->type)) {
                s = yan_fail(YAN_ERR_UNSUPPORTED, "%s: tensor %s has type %s, which yan cannot convert from",
                             in_path, name, yan_type_name((int)t->type));
                goto done;
            }
            int64_t ne0 = (int64_t)t->ne[0];
            int64_t rows = (int64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
            size_t dst_rb = yan_type_row_bytes(dst, ne0), bytes;
            if (dst_rb == 0 || yan_mul_ovf(dst_rb, (size_t)rows, &bytes)) {
                s = yan_fail(YAN_ERR_FORMAT, "%s: tensor %s: size overflow", in_path, name);
                goto done;
            }
            if (!(c.bufs[i] = yan_malloc(bytes ? bytes : 1))) {
                s = yan_fail(YAN_ERR_NOMEM, "quantize: out of memory for tensor %s (%zu bytes)", name, bytes);
                goto done;
            }
            convert_job j = {
                .src_type = (int)t->type, .dst_type = dst, .ne0 = ne0, .n_rows = rows,
                .src_rb = rows ? t->nbytes / (size_t)rows : 0, .dst_rb = dst_rb,
                .src = t->data, .dst = c.bufs[i], .rowbuf = c.rowbuf,
                .n_tasks = (int)(rows < max_tasks ? rows : max_tasks),
            };
            if (j.n_tasks > 0) yan_parallel_for(threads, j.n_tasks, convert_task, &j);
            if (j.failed) {
                s = yan_fail(YAN_ERR_UNSUPPORTED, "quantize: cannot encode tensor %s as %s", name, yan_type_name(dst));
                goto done;
            }
            data = c.bufs[i];
        }
        if ((s = yan_gguf_w_add_tensor(c.w, name, (uint32_t)dst, t->n_dims, t->ne, data))) goto done;
        done_bytes += t->nbytes;
        if (progress && !progress(total ? (float)((double)done_bytes / (double)total) : 1.0f, ud)) {
            s = yan_fail(YAN_ERR_ABORTED, "quantize: aborted");
            goto done;
        }
    }
    s = yan_gguf_w_write(c.w, out_path);
done:
    qctx_free(&c);
    return s;
}
