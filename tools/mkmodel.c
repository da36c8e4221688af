/* mkmodel.c — write a random-weight GGUF model that llama.cpp and yan load.
 *
 *   mkmodel --arch llama|qwen2|qwen3|gpt2 --dim N --layers N --heads N
 *           [--kv-heads N] --ff N [--ctx N] --type T --vocab FILE [--pre NAME]
 *           [--n-vocab N] [--seed S] [--std 0.02] [--scale-out X] [--tied]
 *           [--rope-base B] [--pure] -o out.gguf
 *
 * T: f32 f16 bf16 q8_0 q4_0 q4_K (q4_K_S) q4_K_M q5_K (q5_K_S) q6_K.
 *
 * What it writes (names, shapes and keys as llama.cpp's loader reads them;
 * GGUF dims are ne0-first, so a PyTorch [out, in] weight is dims {in, out}):
 *  - general.architecture / name / alignment (32) / file_type, and
 *    general.quantization_version = 2 when any tensor is quantized;
 *  - <arch>.context_length, embedding_length, block_count,
 *    feed_forward_length, attention.head_count, attention.head_count_kv,
 *    attention.layer_norm_rms_epsilon (1e-5 llama, 1e-6 qwen) or
 *    attention.layer_norm_epsilon (gpt2, 1e-5), rope.freq_base,
 *    rope.dimension_count, vocab_size; qwen3 also attention.key_length and
 *    attention.value_length;
 *  - the tokenizer.ggml.* keys of the vocabulary (yan_tok_save_gguf_kv);
 *  - token_embd {C, V}; output_norm {C}; output {C, V} (absent with --tied,
 *    except gpt2, which llama.cpp requires it for: there it is a copy of
 *    token_embd); per block blk.N.: attn_norm {C}, attn_q {C, C},
 *    attn_k/attn_v {C, KV*HD}, attn_output {C, C}, ffn_norm {C},
 *    ffn_gate/ffn_up {C, FF}, ffn_down {FF, C}; qwen2 adds attn_q/k/v.bias;
 *    qwen3 adds attn_q_norm/attn_k_norm {HD}; gpt2 has position_embd
 *    {C, ctx}, attn_qkv {C, 3C} (+bias), .bias on every norm and matrix and
 *    no ffn_gate.
 *
 * Values: matrices N(0, std²); norm weights 1 + N(0, 0.1²) (so that a wrong
 * norm would show); biases N(0, std²). Random weights give almost flat
 * logits: --scale-out X multiplies the output matrix (token_embd when tied
 * and there is no output) so the next-token distribution has signal.
 * Generation is deterministic in --seed whatever the thread count: every row
 * has its own generator seeded from (seed, tensor, row).
 *
 * Tensor types (what llama.cpp's llama-quantize does by default):
 *  - 1-D tensors (norms, biases) are f32;
 *  - other matrices take the main type, and output takes q6_K whenever the
 *    main type is a 4-6 bit one (q4_0, q4_K*, q5_K, q6_K; --pure keeps the
 *    main type everywhere);
 *  - q4_K_M ("mostly q4_K, medium"): q4_K everywhere except attn_v and
 *    ffn_down of the layers where use_more_bits(i, L) holds — i < L/8, or
 *    i >= 7L/8, or (i - L/8) % 3 == 2 — which are q6_K; gpt2's fused
 *    attn_qkv is q5_K; output q6_K;
 *  - a k-quant needs rows that are multiples of 256 values: a matrix whose
 *    ne0 is not falls back to q8_0 (llama.cpp would use q5_0/q5_1/q8_0);
 *    a note is printed.
 *
 * --n-vocab N pads the vocabulary to N tokens with unused tokens (the GGUF
 * writer names them [PAD<id>]), for benchmark shapes such as vocab 32000.
 *
 * Dependencies: libyan internals (GGUF writer, tokenizer, yan_quantize_row). */
#include "base/base.h"
#include "gguf/gguf.h"
#include "tensor/tensor.h"
#include "tokenizer/tok.h"
#include "tokenizer/tok_gguf.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ================================================================ options */

typedef struct {
    const char *arch, *vocab, *pre, *out, *type;
    int dim, layers, heads, kv_heads, ff, ctx, n_vocab, threads;
    uint64_t seed;
    float std, scale_out, rope_base;
    bool tied, pure;
} opts;

static void usage(void) {
    fprintf(stderr,
            "usage: mkmodel --arch llama|qwen2|qwen3|gpt2 --dim N --layers N --heads N [--kv-heads N]\n"
            "               --ff N [--ctx N] --type f32|f16|bf16|q8_0|q4_0|q4_K|q4_K_M|q5_K|q6_K\n"
            "               --vocab FILE [--pre NAME] [--n-vocab N] [--seed S] [--std 0.02]\n"
            "               [--scale-out X] [--tied] [--rope-base B] [--pure] [--threads N] -o out.gguf\n");
}

/* ==================================================================== rng */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Fill n values with N(0, std²) (Box-Muller) from a generator seeded by key. */
static void fill_normal(float *x, int64_t n, float std, uint64_t key) {
    uint64_t s = key;
    for (int64_t i = 0; i < n; i += 2) {
        double u1 = ((double)(splitmix64(&s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
        double u2 = (double)(splitmix64(&s) >> 11) * (1.0 / 9007199254740992.0);
        double r = sqrt(-2.0 * log(u1)) * std;
        x[i] = (float)(r * cos(6.283185307179586 * u2));
        if (i + 1 < n) x[i + 1] = (float)(r * sin(6.283185307179586 * u2));
    }
}

static uint64_t row_key(uint64_t seed, uint64_t tensor, uint64_t row) {
    uint64_t s = seed ^ (tensor * 0xD1B54A32D192ED03ull) ^ (row * 0x8CB92BA72F3D8DD7ull);
    return splitmix64(&s);
}

/* ================================================================ tensors */

enum { V_MATRIX, V_NORM, V_BIAS };

typedef struct {
    char name[YAN_GGUF_MAX_NAME + 1];
    int type;            /* ggml type on disk */
    int64_t ne0, ne1;    /* ne1 = 1 for 1-D */
    int n_dims;
    int kind;            /* V_* */
    float scale;         /* extra factor on matrix values (--scale-out) */
    uint64_t id;         /* seeds the rows */
    const char *copy_of; /* write the data of another tensor (gpt2 tied output) */
    void *data;
    size_t nbytes;
} tensor;

typedef struct {
    tensor *t;
    uint64_t seed;
    float std;
    int64_t r0, r1;
    bool ok;
} job;

static void *gen_rows(void *arg) {
    job *j = arg;
    tensor *t = j->t;
    float *row = malloc((size_t)t->ne0 * sizeof *row);
    if (!row) { j->ok = false; return NULL; }
    size_t rb = yan_type_row_bytes(t->type, t->ne0);
    j->ok = true;
    for (int64_t r = j->r0; r < j->r1; r++) {
        uint64_t key = row_key(j->seed, t->id, (uint64_t)r);
        if (t->kind == V_NORM) {
            fill_normal(row, t->ne0, 0.1f, key);
            for (int64_t i = 0; i < t->ne0; i++) row[i] += 1.0f;
        } else {
            fill_normal(row, t->ne0, j->std * t->scale, key);
        }
        if (!yan_quantize_row(t->type, row, (char *)t->data + (size_t)r * rb, t->ne0)) { j->ok = false; break; }
    }
    free(row);
    return NULL;
}

/* Generate and encode t->data with n_threads threads over rows. */
static bool generate(tensor *t, uint64_t seed, float std, int n_threads) {
    size_t rb = yan_type_row_bytes(t->type, t->ne0);
    t->nbytes = rb * (size_t)t->ne1;
    t->data = malloc(t->nbytes ? t->nbytes : 1);
    if (!t->data) return false;
    if (n_threads > t->ne1) n_threads = (int)t->ne1;
    if (n_threads < 1) n_threads = 1;
    job jobs[64];
    pthread_t th[64];
    if (n_threads > 64) n_threads = 64;
    for (int i = 0; i < n_threads; i++) {
        jobs[i] = (job){t, seed, std, t->ne1 * i / n_threads, t->ne1 * (i + 1) / n_threads, false};
        if (i > 0 && pthread_create(&th[i], NULL, gen_rows, &jobs[i]) != 0) return false;
    }
    gen_rows(&jobs[0]);
    bool ok = jobs[0].ok;
    for (int i = 1; i < n_threads; i++) {
        pthread_join(th[i], NULL);
        ok = ok && jobs[i].ok;
    }
    return ok;
}

/* ================================================================= types */

typedef struct {
    const char *name;
    int base;       /* type of most matrices */
    int file_type;  /* general.file_type (llama_ftype) */
    bool m_mix;     /* q4_K_M mix */
} type_spec;

static const type_spec TYPES[] = {
    {"f32", YAN_T_F32, 0, false},     {"f16", YAN_T_F16, 1, false},
    {"bf16", YAN_T_BF16, 32, false},  {"q8_0", YAN_T_Q8_0, 7, false},
    {"q4_0", YAN_T_Q4_0, 2, false},   {"q4_K", YAN_T_Q4_K, 14, false},
    {"q4_K_S", YAN_T_Q4_K, 14, false}, {"q4_K_M", YAN_T_Q4_K, 15, true},
    {"q5_K", YAN_T_Q5_K, 16, false},  {"q5_K_S", YAN_T_Q5_K, 16, false},
    {"q6_K", YAN_T_Q6_K, 18, false},
};

static const type_spec *find_type(const char *s) {
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (!strcasecmp(TYPES[i].name, s)) return &TYPES[i];
    return NULL;
}

static bool is_kquant(int t) { return t == YAN_T_Q4_K || t == YAN_T_Q5_K || t == YAN_T_Q6_K; }
static bool is_low_bit(int t) { return t == YAN_T_Q4_0 || is_kquant(t); }

/* llama.cpp's "use more bits" layer pattern for the _M k-quant mixes. */
static bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

/* Type of matrix `what` ("attn_v", "ffn_down", "output", ...) in layer il. */
static int matrix_type(const type_spec *ts, const opts *o, const char *what, int il) {
    int t = ts->base;
    if (!o->pure) {
        if (!strcmp(what, "output") && is_low_bit(ts->base)) t = YAN_T_Q6_K;
        if (ts->m_mix) {
            if ((!strcmp(what, "attn_v") || !strcmp(what, "ffn_down")) && use_more_bits(il, o->layers)) t = YAN_T_Q6_K;
            if (!strcmp(what, "attn_qkv")) t = YAN_T_Q5_K;
        }
    }
    return t;
}

/* =================================================================== main */

typedef struct {
    tensor *v;
    size_t n, cap;
} tlist;

static tensor *add(tlist *l, int kind, int type, int64_t ne0, int64_t ne1, int n_dims, const char *fmt, ...)
    YAN_PRINTF(7, 8);
static tensor *add(tlist *l, int kind, int type, int64_t ne0, int64_t ne1, int n_dims, const char *fmt, ...) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        if (!l->v) { fprintf(stderr, "mkmodel: out of memory\n"); exit(1); }
    }
    tensor *t = &l->v[l->n];
    memset(t, 0, sizeof *t);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    if (kind != V_MATRIX) type = YAN_T_F32;
    if (is_kquant(type) && ne0 % 256 != 0) {
        fprintf(stderr, "mkmodel: note: %s has rows of %lld values (not a multiple of 256): q8_0 instead of %s\n",
                t->name, (long long)ne0, yan_type_name(type));
        type = YAN_T_Q8_0;
    }
    t->type = type;
    t->kind = kind;
    t->ne0 = ne0;
    t->ne1 = ne1;
    t->n_dims = n_dims;
    t->scale = 1.0f;
    t->id = l->n + 1;
    l->n++;
    return t;
}

static void check(yan_status s, const char *what) {
    if (s != YAN_OK) {
        fprintf(stderr, "mkmodel: %s: %s (%s)\n", what, yan_last_error(), yan_status_str(s));
        exit(1);
    }
}

static int arg_int(const char *s, const char *flag) {
    char *e;
    long v = strtol(s, &e, 10);
    if (*e || v < 0 || v > (1L << 30)) { fprintf(stderr, "mkmodel: bad value for %s: %s\n", flag, s); exit(2); }
    return (int)v;
}

int main(int argc, char **argv) {
    opts o = {.kv_heads = -1, .ctx = 2048, .seed = 1234, .std = 0.02f, .scale_out = 1.0f, .rope_base = 10000.0f};
    bool rope_set = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--tied")) { o.tied = true; continue; }
        if (!strcmp(a, "--pure")) { o.pure = true; continue; }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); return 0; }
        if (i + 1 >= argc) { usage(); return 2; }
        const char *v = argv[++i];
        if (!strcmp(a, "--arch")) o.arch = v;
        else if (!strcmp(a, "--dim")) o.dim = arg_int(v, a);
        else if (!strcmp(a, "--layers")) o.layers = arg_int(v, a);
        else if (!strcmp(a, "--heads")) o.heads = arg_int(v, a);
        else if (!strcmp(a, "--kv-heads")) o.kv_heads = arg_int(v, a);
        else if (!strcmp(a, "--ff")) o.ff = arg_int(v, a);
        else if (!strcmp(a, "--ctx")) o.ctx = arg_int(v, a);
        else if (!strcmp(a, "--n-vocab")) o.n_vocab = arg_int(v, a);
        else if (!strcmp(a, "--threads")) o.threads = arg_int(v, a);
        else if (!strcmp(a, "--type")) o.type = v;
        else if (!strcmp(a, "--vocab")) o.vocab = v;
        else if (!strcmp(a, "--pre")) o.pre = v;
        else if (!strcmp(a, "--seed")) o.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--std")) o.std = strtof(v, NULL);
        else if (!strcmp(a, "--scale-out")) o.scale_out = strtof(v, NULL);
        else if (!strcmp(a, "--rope-base")) { o.rope_base = strtof(v, NULL); rope_set = true; }
        else if (!strcmp(a, "-o") || !strcmp(a, "--out")) o.out = v;
        else { fprintf(stderr, "mkmodel: unknown option %s\n", a); usage(); return 2; }
    }
    if (!o.arch || !o.dim || !o.layers || !o.heads || !o.ff || !o.type || !o.vocab || !o.out) {
        usage();
        return 2;
    }
    int arch = !strcmp(o.arch, "llama") ? 0 : !strcmp(o.arch, "qwen2") ? 1 : !strcmp(o.arch, "qwen3") ? 2
             : !strcmp(o.arch, "gpt2") ? 3 : -1;
    if (arch < 0) { fprintf(stderr, "mkmodel: unknown --arch %s (llama, qwen2, qwen3, gpt2)\n", o.arch); return 2; }
    const type_spec *ts = find_type(o.type);
    if (!ts) { fprintf(stderr, "mkmodel: unknown --type %s\n", o.type); return 2; }
    if (o.kv_heads < 0) o.kv_heads = o.heads;
    if (arch == 3) o.kv_heads = o.heads; /* gpt2 has no GQA */
    if (o.dim % o.heads || o.kv_heads == 0 || o.heads % o.kv_heads) {
        fprintf(stderr, "mkmodel: --dim must divide by --heads and --heads by --kv-heads\n");
        return 2;
    }
    if (!rope_set && arch != 0 && arch != 3) o.rope_base = 1000000.0f; /* Qwen's usual base */
    if (o.threads <= 0) o.threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    const int64_t C = o.dim, HD = o.dim / o.heads, KV = (int64_t)o.kv_heads * HD, FF = o.ff;

    /* ---- vocabulary */
    yan_tokenizer_params tp = yan_tokenizer_params_default();
    tp.pre = o.pre;
    yan_tokenizer *tok = NULL;
    check(yan_tokenizer_load(o.vocab, &tp, &tok), o.vocab);
    if (o.n_vocab > tok->n_vocab) {
        /* pad: define the last id; the ids between become unused holes */
        char pad[32];
        int len = snprintf(pad, sizeof pad, "[PAD%d]", o.n_vocab - 1);
        check(yan_tok_set(tok, o.n_vocab - 1, pad, (size_t)len, YAN_TT_UNUSED, 0.0f), "padding the vocabulary");
        check(yan_tok_finalize(tok), "padding the vocabulary");
    }
    const int64_t V = tok->n_vocab;

    /* ---- metadata */
    yan_gguf_writer *w = NULL;
    check(yan_gguf_writer_new(&w), "writer");
    const char *A = o.arch;
    char key[128], name[128];
#define K(s) (snprintf(key, sizeof key, "%s.%s", A, s), key)
    snprintf(name, sizeof name, "yan random %s %s", A, ts->name);
    check(yan_gguf_w_set_str(w, "general.architecture", A, strlen(A)), "metadata");
    check(yan_gguf_w_set_str(w, "general.name", name, strlen(name)), "metadata");
    check(yan_gguf_w_set_u32(w, "general.alignment", 32), "metadata");
    check(yan_gguf_w_set_u32(w, "general.file_type", (uint32_t)ts->file_type), "metadata");
    check(yan_gguf_w_set_u32(w, K("context_length"), (uint32_t)o.ctx), "metadata");
    check(yan_gguf_w_set_u32(w, K("embedding_length"), (uint32_t)C), "metadata");
    check(yan_gguf_w_set_u32(w, K("block_count"), (uint32_t)o.layers), "metadata");
    check(yan_gguf_w_set_u32(w, K("feed_forward_length"), (uint32_t)FF), "metadata");
    check(yan_gguf_w_set_u32(w, K("attention.head_count"), (uint32_t)o.heads), "metadata");
    check(yan_gguf_w_set_u32(w, K("attention.head_count_kv"), (uint32_t)o.kv_heads), "metadata");
    if (arch == 3) {
        check(yan_gguf_w_set_f32(w, K("attention.layer_norm_epsilon"), 1e-5f), "metadata");
    } else {
        check(yan_gguf_w_set_f32(w, K("attention.layer_norm_rms_epsilon"), arch == 0 ? 1e-5f : 1e-6f), "metadata");
        check(yan_gguf_w_set_f32(w, K("rope.freq_base"), o.rope_base), "metadata");
        check(yan_gguf_w_set_u32(w, K("rope.dimension_count"), (uint32_t)HD), "metadata");
    }
    if (arch == 2) {
        check(yan_gguf_w_set_u32(w, K("attention.key_length"), (uint32_t)HD), "metadata");
        check(yan_gguf_w_set_u32(w, K("attention.value_length"), (uint32_t)HD), "metadata");
    }
    check(yan_gguf_w_set_u32(w, K("vocab_size"), (uint32_t)V), "metadata");
#undef K
    check(yan_tok_save_gguf_kv(tok, w), "tokenizer metadata");

    /* ---- tensors */
    tlist L = {0};
    const bool has_output = !o.tied || arch == 3;
    tensor *emb = add(&L, V_MATRIX, matrix_type(ts, &o, "token_embd", 0), C, V, 2, "token_embd.weight");
    if (!has_output) emb->scale = o.scale_out;
    if (arch == 3) add(&L, V_MATRIX, matrix_type(ts, &o, "position_embd", 0), C, o.ctx, 2, "position_embd.weight");
    for (int il = 0; il < o.layers; il++) {
        add(&L, V_NORM, 0, C, 1, 1, "blk.%d.attn_norm.weight", il);
        if (arch == 3) {
            add(&L, V_BIAS, 0, C, 1, 1, "blk.%d.attn_norm.bias", il);
            add(&L, V_MATRIX, matrix_type(ts, &o, "attn_qkv", il), C, 3 * C, 2, "blk.%d.attn_qkv.weight", il);
            add(&L, V_BIAS, 0, 3 * C, 1, 1, "blk.%d.attn_qkv.bias", il);
            add(&L, V_MATRIX, matrix_type(ts, &o, "attn_output", il), C, C, 2, "blk.%d.attn_output.weight", il);
            add(&L, V_BIAS, 0, C, 1, 1, "blk.%d.attn_output.bias", il);
            add(&L, V_NORM, 0, C, 1, 1, "blk.%d.ffn_norm.weight", il);
            add(&L, V_BIAS, 0, C, 1, 1, "blk.%d.ffn_norm.bias", il);
            add(&L, V_MATRIX, matrix_type(ts, &o, "ffn_up", il), C, FF, 2, "blk.%d.ffn_up.weight", il);
            add(&L, V_BIAS, 0, FF, 1, 1, "blk.%d.ffn_up.bias", il);
            add(&L, V_MATRIX, matrix_type(ts, &o, "ffn_down", il), FF, C, 2, "blk.%d.ffn_down.weight", il);
            add(&L, V_BIAS, 0, C, 1, 1, "blk.%d.ffn_down.bias", il);
            continue;
        }
        add(&L, V_MATRIX, matrix_type(ts, &o, "attn_q", il), C, C, 2, "blk.%d.attn_q.weight", il);
        add(&L, V_MATRIX, matrix_type(ts, &o, "attn_k", il), C, KV, 2, "blk.%d.attn_k.weight", il);
        add(&L, V_MATRIX, matrix_type(ts, &o, "attn_v", il), C, KV, 2, "blk.%d.attn_v.weight", il);
        if (arch == 1) {
            add(&L, V_BIAS, 0, C, 1, 1, "blk.%d.attn_q.bias", il);
            add(&L, V_BIAS, 0, KV, 1, 1, "blk.%d.attn_k.bias", il);
            add(&L, V_BIAS, 0, KV, 1, 1, "blk.%d.attn_v.bias", il);
        }
        if (arch == 2) {
            add(&L, V_NORM, 0, HD, 1, 1, "blk.%d.attn_q_norm.weight", il);
            add(&L, V_NORM, 0, HD, 1, 1, "blk.%d.attn_k_norm.weight", il);
        }
        add(&L, V_MATRIX, matrix_type(ts, &o, "attn_output", il), C, C, 2, "blk.%d.attn_output.weight", il);
        add(&L, V_NORM, 0, C, 1, 1, "blk.%d.ffn_norm.weight", il);
        add(&L, V_MATRIX, matrix_type(ts, &o, "ffn_gate", il), C, FF, 2, "blk.%d.ffn_gate.weight", il);
        add(&L, V_MATRIX, matrix_type(ts, &o, "ffn_up", il), C, FF, 2, "blk.%d.ffn_up.weight", il);
        add(&L, V_MATRIX, matrix_type(ts, &o, "ffn_down", il), FF, C, 2, "blk.%d.ffn_down.weight", il);
    }
    add(&L, V_NORM, 0, C, 1, 1, "output_norm.weight");
    if (arch == 3) add(&L, V_BIAS, 0, C, 1, 1, "output_norm.bias");
    if (has_output) {
        tensor *out = add(&L, V_MATRIX, matrix_type(ts, &o, "output", 0), C, V, 2, "output.weight");
        out->scale = o.scale_out;
        if (o.tied) { /* gpt2: the output is the embedding */
            out->type = L.v[0].type;
            out->copy_of = L.v[0].name;
            L.v[0].scale = o.scale_out;
        }
    }

    uint64_t total = 0, n_params = 0;
    for (size_t i = 0; i < L.n; i++) {
        tensor *t = &L.v[i];
        if (t->copy_of) {
            tensor *src = &L.v[0];
            t->data = src->data;
            t->nbytes = src->nbytes;
        } else if (!generate(t, o.seed, o.std, o.threads)) {
            fprintf(stderr, "mkmodel: cannot encode %s as %s (out of memory or type not supported by yan_quantize_row)\n",
                    t->name, yan_type_name(t->type));
            return 1;
        }
        uint64_t dims[2] = {(uint64_t)t->ne0, (uint64_t)t->ne1};
        check(yan_gguf_w_add_tensor(w, t->name, (uint32_t)t->type, (uint32_t)t->n_dims, dims, t->data), t->name);
        total += t->nbytes;
        n_params += (uint64_t)(t->ne0 * t->ne1);
    }
    bool quantized = false;
    for (size_t i = 0; i < L.n; i++)
        quantized |= L.v[i].type != YAN_T_F32 && L.v[i].type != YAN_T_F16 && L.v[i].type != YAN_T_BF16;
    if (quantized) check(yan_gguf_w_set_u32(w, "general.quantization_version", 2), "metadata");
    check(yan_gguf_w_write(w, o.out), o.out);

    int counts[64] = {0};
    for (size_t i = 0; i < L.n; i++) counts[L.v[i].type & 63]++;
    fprintf(stderr, "mkmodel: %s: %s %s, %lld params, %.1f MiB of tensors, vocab %lld;", o.out, A, ts->name,
            (long long)n_params, (double)total / 1048576.0, (long long)V);
    for (int t = 0; t < 64; t++)
        if (counts[t]) fprintf(stderr, " %s:%d", yan_type_name(t), counts[t]);
    fprintf(stderr, "\n");

    for (size_t i = 0; i < L.n; i++)
        if (!L.v[i].copy_of) free(L.v[i].data);
    free(L.v);
    yan_gguf_writer_free(w);
    yan_tokenizer_free(tok);
    return 0;
}
