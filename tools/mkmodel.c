/* mkmodel.c — write a random-weight GGUF model that llama.cpp and yan load.
 *
 *   mkmodel --arch llama|qwen2|qwen3|gpt2|bert --dim N --layers N --heads N
 *           [--kv-heads N] --ff N [--ctx N] --type T --vocab FILE [--pre NAME]
 *           [--n-vocab N] [--seed S] [--std 0.02] [--scale-out X] [--tied]
 *           [--rope-base B] [--pure] [--pooling mean|cls|last|none] -o out.gguf
 *   bert: --wordpiece TEXT [--wp-size N] [--cased] instead of --vocab
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
 * --pooling writes <arch>.pooling_type (llama.cpp's numbers: none 0, mean 1,
 * cls 2, last 3), the pooling embeddings use.
 *
 * bert (a BERT-family embedding model as llama.cpp's converter writes it):
 * bert.attention.layer_norm_epsilon 1e-12, bert.attention.causal = false,
 * bert.pooling_type (default mean), tokenizer.ggml.token_type_count = 2;
 * tensors token_embd {C, V}, token_types {C, 2} and position_embd {C, ctx}
 * (both always f32, as llama.cpp's converter writes them),
 * token_embd_norm.weight/.bias {C}, per block attn_q/attn_k/attn_v {C, C} and
 * attn_output {C, C} each with a .bias, attn_output_norm.weight/.bias,
 * ffn_up {C, FF} + bias, ffn_down {FF, C} + bias,
 * layer_output_norm.weight/.bias; no output_norm, no output. The vocabulary
 * is either --vocab (a GGUF holding a "bert" vocabulary) or built from the
 * text --wordpiece TEXT the way BERT's pre-tokenizer splits it (lowercased
 * and accent-stripped unless --cased): [PAD] [UNK] [CLS] [SEP] [MASK]
 * (ids 0-4), then every character seen as a word-initial piece ("▁c") and as
 * a continuation ("c", BERT's "##c"), then the most frequent words ("▁word")
 * and continuation suffixes of 2-3 characters, in the proportion 3:1, up to
 * --wp-size tokens (default 2000).
 *
 * Dependencies: libyan internals (GGUF writer, tokenizer, yan_quantize_row). */
#include "base/base.h"
#include "gguf/gguf.h"
#include "tensor/tensor.h"
#include "tokenizer/tok.h"
#include "tokenizer/tok_gguf.h"
#include "tokenizer/wordpiece.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ================================================================ options */

typedef struct {
    const char *arch, *vocab, *pre, *out, *type, *wordpiece, *pooling;
    int dim, layers, heads, kv_heads, ff, ctx, n_vocab, threads, wp_size;
    uint64_t seed;
    float std, scale_out, rope_base;
    bool tied, pure, cased;
} opts;

static void usage(void) {
    fprintf(stderr,
            "usage: mkmodel --arch llama|qwen2|qwen3|gpt2|bert --dim N --layers N --heads N [--kv-heads N]\n"
            "               --ff N [--ctx N] --type f32|f16|bf16|q8_0|q4_0|q4_K|q4_K_M|q5_K|q6_K\n"
            "               --vocab FILE [--pre NAME] [--n-vocab N] [--seed S] [--std 0.02]\n"
            "               [--scale-out X] [--tied] [--rope-base B] [--pure] [--threads N]\n"
            "               [--pooling mean|cls|last|none] -o out.gguf\n"
            "       bert: --wordpiece TEXT [--wp-size N] [--cased] instead of --vocab\n");
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

/* ============================================================== wordpiece */

static void check(yan_status s, const char *what);

typedef struct {
    char *s;
    size_t len;
    uint64_t count;
} wcount;

typedef struct {
    wcount *v;
    size_t n, cap;
} wlist;

static void wl_add(wlist *l, const void *s, size_t len, uint64_t count) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 4096;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        if (!l->v) { fprintf(stderr, "mkmodel: out of memory\n"); exit(1); }
    }
    char *c = malloc(len + 1);
    if (!c) { fprintf(stderr, "mkmodel: out of memory\n"); exit(1); }
    memcpy(c, s, len);
    c[len] = 0;
    l->v[l->n++] = (wcount){c, len, count};
}

static int cmp_bytes(const void *a, const void *b) {
    const wcount *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static int cmp_count_desc(const void *a, const void *b) {
    const wcount *x = a, *y = b;
    if (x->count != y->count) return x->count < y->count ? 1 : -1;
    return cmp_bytes(a, b);
}

/* Sort by bytes and merge equal entries, summing their counts. */
static void wl_unique(wlist *l) {
    if (!l->n) return;
    qsort(l->v, l->n, sizeof *l->v, cmp_bytes);
    size_t k = 0;
    for (size_t i = 1; i < l->n; i++) {
        if (!cmp_bytes(&l->v[k], &l->v[i])) {
            l->v[k].count += l->v[i].count;
            free(l->v[i].s);
        } else {
            l->v[++k] = l->v[i];
        }
    }
    l->n = k + 1;
}

static void wl_free(wlist *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i].s);
    free(l->v);
}

static bool collect_word(const uint8_t *w, size_t n, size_t n_chars, void *ud) {
    (void)n_chars;
    wl_add(ud, w, n, 1);
    return true;
}

static size_t n_chars_of(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* Byte offset of the k-th character from the end of s[0..n) (valid UTF-8). */
static size_t tail_chars(const char *s, size_t n, int k) {
    size_t i = n;
    while (k-- > 0 && i > 0) {
        i--;
        while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
    }
    return i;
}

/* A WordPiece vocabulary built from the words of a text (see the header). */
static yan_tokenizer *build_wordpiece(const char *path, int size, bool cased) {
    uint8_t *text;
    size_t len;
    check(yan_read_file(path, &text, &len), path);
    wlist words = {0}, chars = {0}, suf = {0};
    yan_buf scratch = {0};
    if (!yan_wpm_words(text, len, !cased, !cased, &scratch, collect_word, &words)) {
        fprintf(stderr, "mkmodel: out of memory splitting %s\n", path);
        exit(1);
    }
    yan_buf_free(&scratch);
    yan_free(text);
    wl_unique(&words);
    for (size_t i = 0; i < words.n; i++) {
        const wcount *w = &words.v[i];
        for (size_t j = 0; j < w->len;) {
            int32_t cp;
            int k = yan_utf8_decode((const uint8_t *)w->s + j, w->len - j, &cp);
            wl_add(&chars, w->s + j, (size_t)k, w->count);
            j += (size_t)k;
        }
        const size_t nc = n_chars_of(w->s, w->len);
        for (int k = 2; k <= 3; k++) {
            if (nc < (size_t)k + 2) continue; /* a suffix of a word of at least k + 2 characters */
            size_t at = tail_chars(w->s, w->len, k);
            wl_add(&suf, w->s + at, w->len - at, w->count);
        }
    }
    wl_unique(&chars);
    wl_unique(&suf);
    qsort(words.v, words.n, sizeof *words.v, cmp_count_desc);
    qsort(suf.v, suf.n, sizeof *suf.v, cmp_count_desc);

    yan_tokenizer *t = yan_malloc(sizeof *t); /* freed by yan_tokenizer_free */
    if (!t) { fprintf(stderr, "mkmodel: out of memory\n"); exit(1); }
    yan_tok_init(t);
    t->kind = YAN_TOK_WPM;
    t->merge_mode = YAN_MERGE_RANK;
    t->wpm_lowercase = t->wpm_strip_accents = !cased;
    t->add_bos = t->add_sep = true;
    static const char *const specials[5] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    int32_t id = 0;
    for (int i = 0; i < 5; i++, id++)
        check(yan_tok_set(t, id, specials[i], strlen(specials[i]), YAN_TT_CONTROL, 0.0f), "vocabulary");
    t->special[YAN_SPECIAL_PAD] = 0;
    t->special[YAN_SPECIAL_UNK] = 1;
    t->special[YAN_SPECIAL_BOS] = t->special[YAN_SPECIAL_CLS] = 2;
    t->special[YAN_SPECIAL_SEP] = 3;
    t->special[YAN_SPECIAL_MASK] = 4;
    char buf[1024];
    for (size_t i = 0; i < chars.n; i++) {
        int k = snprintf(buf, sizeof buf, "\xE2\x96\x81%s", chars.v[i].s);
        check(yan_tok_set(t, id++, buf, (size_t)k, YAN_TT_NORMAL, 0.0f), "vocabulary");
        check(yan_tok_set(t, id++, chars.v[i].s, chars.v[i].len, YAN_TT_NORMAL, 0.0f), "vocabulary");
    }
    size_t wi = 0, si = 0;
    while (id < size && (wi < words.n || si < suf.n)) {
        /* three words, then one suffix */
        bool take_word = wi < words.n && (si >= suf.n || (id % 4) != 3);
        if (take_word) {
            const wcount *w = &words.v[wi++];
            if (n_chars_of(w->s, w->len) < 2 || w->len + 4 > sizeof buf) continue; /* one character: already in */
            int k = snprintf(buf, sizeof buf, "\xE2\x96\x81%s", w->s);
            check(yan_tok_set(t, id++, buf, (size_t)k, YAN_TT_NORMAL, 0.0f), "vocabulary");
        } else {
            const wcount *w = &suf.v[si++];
            check(yan_tok_set(t, id++, w->s, w->len, YAN_TT_NORMAL, 0.0f), "vocabulary");
        }
    }
    wl_free(&words);
    wl_free(&chars);
    wl_free(&suf);
    check(yan_tok_finalize(t), "vocabulary");
    return t;
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
    opts o = {.kv_heads = -1, .ctx = 2048, .seed = 1234, .std = 0.02f, .scale_out = 1.0f, .rope_base = 10000.0f,
              .wp_size = 2000};
    bool rope_set = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--tied")) { o.tied = true; continue; }
        if (!strcmp(a, "--pure")) { o.pure = true; continue; }
        if (!strcmp(a, "--cased")) { o.cased = true; continue; }
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
        else if (!strcmp(a, "--wordpiece")) o.wordpiece = v;
        else if (!strcmp(a, "--wp-size")) o.wp_size = arg_int(v, a);
        else if (!strcmp(a, "--pooling")) o.pooling = v;
        else if (!strcmp(a, "--seed")) o.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--std")) o.std = strtof(v, NULL);
        else if (!strcmp(a, "--scale-out")) o.scale_out = strtof(v, NULL);
        else if (!strcmp(a, "--rope-base")) { o.rope_base = strtof(v, NULL); rope_set = true; }
        else if (!strcmp(a, "-o") || !strcmp(a, "--out")) o.out = v;
        else { fprintf(stderr, "mkmodel: unknown option %s\n", a); usage(); return 2; }
    }
    if (!o.arch || !o.dim || !o.layers || !o.heads || !o.ff || !o.type || !(o.vocab || o.wordpiece) || !o.out) {
        usage();
        return 2;
    }
    int arch = !strcmp(o.arch, "llama") ? 0 : !strcmp(o.arch, "qwen2") ? 1 : !strcmp(o.arch, "qwen3") ? 2
             : !strcmp(o.arch, "gpt2") ? 3 : !strcmp(o.arch, "bert") ? 4 : -1;
    if (arch < 0) { fprintf(stderr, "mkmodel: unknown --arch %s (llama, qwen2, qwen3, gpt2, bert)\n", o.arch); return 2; }
    const bool bert = arch == 4;
    if (o.wordpiece && !bert) { fprintf(stderr, "mkmodel: --wordpiece is for --arch bert\n"); return 2; }
    int pooling = -1; /* llama.cpp's llama_pooling_type; -1 = no key */
    if (o.pooling) {
        pooling = !strcmp(o.pooling, "none") ? 0 : !strcmp(o.pooling, "mean") ? 1 : !strcmp(o.pooling, "cls") ? 2
                : !strcmp(o.pooling, "last") ? 3 : -2;
        if (pooling < -1) { fprintf(stderr, "mkmodel: unknown --pooling %s (mean, cls, last, none)\n", o.pooling); return 2; }
    } else if (bert) {
        pooling = 1;
    }
    const type_spec *ts = find_type(o.type);
    if (!ts) { fprintf(stderr, "mkmodel: unknown --type %s\n", o.type); return 2; }
    if (o.kv_heads < 0) o.kv_heads = o.heads;
    if (arch == 3 || bert) o.kv_heads = o.heads; /* gpt2 and bert have no GQA */
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
    if (o.wordpiece) tok = build_wordpiece(o.wordpiece, o.wp_size, o.cased);
    else check(yan_tokenizer_load(o.vocab, &tp, &tok), o.vocab);
    if (bert != (tok->kind == YAN_TOK_WPM)) {
        fprintf(stderr, "mkmodel: %s needs %s vocabulary\n", o.arch,
                bert ? "a WordPiece (--wordpiece TEXT, or a GGUF \"bert\")" : "a BPE or SentencePiece");
        return 2;
    }
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
    if (arch == 3 || bert) {
        check(yan_gguf_w_set_f32(w, K("attention.layer_norm_epsilon"), bert ? 1e-12f : 1e-5f), "metadata");
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
    if (bert) check(yan_gguf_w_set_bool(w, K("attention.causal"), false), "metadata");
    if (pooling >= 0) check(yan_gguf_w_set_u32(w, K("pooling_type"), (uint32_t)pooling), "metadata");
#undef K
    check(yan_tok_save_gguf_kv(tok, w), "tokenizer metadata");
    if (bert) check(yan_gguf_w_set_u32(w, "tokenizer.ggml.token_type_count", 2), "metadata");

    /* ---- tensors */
    tlist L = {0};
    const bool has_output = (!o.tied || arch == 3) && !bert;
    tensor *emb = add(&L, V_MATRIX, matrix_type(ts, &o, "token_embd", 0), C, V, 2, "token_embd.weight");
    if (!has_output) emb->scale = o.scale_out;
    /* bert: position and segment embeddings stay f32, as llama.cpp's converter and quantizer keep them */
    if (arch == 3 || bert)
        add(&L, V_MATRIX, bert ? YAN_T_F32 : matrix_type(ts, &o, "position_embd", 0), C, o.ctx, 2, "position_embd.weight");
    if (bert) {
        add(&L, V_MATRIX, YAN_T_F32, C, 2, 2, "token_types.weight");
        add(&L, V_NORM, 0, C, 1, 1, "token_embd_norm.weight");
        add(&L, V_BIAS, 0, C, 1, 1, "token_embd_norm.bias");
    }
    for (int il = 0; il < o.layers && bert; il++) {
        static const char *const qkvo[4] = {"attn_q", "attn_k", "attn_v", "attn_output"};
        for (int i = 0; i < 4; i++) {
            add(&L, V_MATRIX, matrix_type(ts, &o, qkvo[i], il), C, C, 2, "blk.%d.%s.weight", il, qkvo[i]);
            add(&L, V_BIAS, 0, C, 1, 1, "blk.%d.%s.bias", il, qkvo[i]);
        }
        add(&L, V_NORM, 0, C, 1, 1, "blk.%d.attn_output_norm.weight", il);
        add(&L, V_BIAS, 0, C, 1, 1, "blk.%d.attn_output_norm.bias", il);
        add(&L, V_MATRIX, matrix_type(ts, &o, "ffn_up", il), C, FF, 2, "blk.%d.ffn_up.weight", il);
        add(&L, V_BIAS, 0, FF, 1, 1, "blk.%d.ffn_up.bias", il);
        add(&L, V_MATRIX, matrix_type(ts, &o, "ffn_down", il), FF, C, 2, "blk.%d.ffn_down.weight", il);
        add(&L, V_BIAS, 0, C, 1, 1, "blk.%d.ffn_down.bias", il);
        add(&L, V_NORM, 0, C, 1, 1, "blk.%d.layer_output_norm.weight", il);
        add(&L, V_BIAS, 0, C, 1, 1, "blk.%d.layer_output_norm.bias", il);
    }
    for (int il = 0; il < o.layers && !bert; il++) {
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
    if (!bert) add(&L, V_NORM, 0, C, 1, 1, "output_norm.weight");
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
