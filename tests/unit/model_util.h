/* model_util.h — tiny random-weight GGUF models for the model and engine
 * tests: a writer (weights drawn from a fixed-seed generator, quantized to
 * the asked type and kept dequantized for the reference), a naive f32/f64
 * reference forward pass (no KV cache, plain loops over the dequantized
 * weights, independent of src/model), and small comparison helpers. */
#ifndef YAN_TEST_MODEL_UTIL_H
#define YAN_TEST_MODEL_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "yan.h"
#include "tokenizer/tok.h"

typedef struct {
    char name[64];
    int type;
    int64_t ne0, ne1; /* ne1 = 1 for vectors */
    int n_dims;
    float *f;         /* dequantized values (what the file holds) */
    void *q;          /* encoded bytes written to the file */
} tw;

typedef struct {
    const char *arch;
    int C, L, NH, NKV, HD, FF, ctx_train;
    int wtype;            /* 2-D matrices (not token_embd) */
    int embd_type;
    bool tied, rope_freqs;
    float rope_factor;    /* 0 = no scaling keys */
    float rope_base;
    int n_rot;            /* 0 = head dim */
    const char *omit;     /* tensor left out */
    const char *bad_shape;/* tensor written with one row too many */
    const char *q41;      /* tensor written as q4_1 (unsupported) */
    const char *arch_name;/* general.architecture override */
    int eos_id;           /* >= 0: override tokenizer.ggml.eos_token_id */
    bool zero_out_norm;   /* output_norm.weight = 0 */
} spec;

typedef struct {
    spec s;
    int V;
    tw t[256];
    int n;
} wmodel;

extern uint64_t g_rng;
float frand(void); /* uniform in [-1, 1), from g_rng */
/* 256 bytes, merges th, the, " t", then two CONTROL tokens (V = 261). */
void make_tok(yan_tokenizer *t);

tw *find_w(wmodel *w, const char *name);
void wmodel_free(wmodel *w);
/* Build the weights of s in w and write the GGUF to path. */
void write_model(const spec *s, wmodel *w, const char *path);
/* C 64, 2 layers, 4 heads (2 KV; gpt2 4), HD 16 (qwen3 32), FF 96, ctx 64, f32. */
spec base_spec(const char *arch);

/* Reference forward of tokens[0..n) at positions 0..n-1: logits (n, V) and/or
 * (when non-NULL) the final hidden states after the output norm (n, C). */
void ref_forward(wmodel *w, const yan_token *tokens, int n, float *logits);
void ref_forward_ex(wmodel *w, const yan_token *tokens, int n, float *logits, float *hidden);

const char *tmp_path(const char *name); /* under the run's temp folder; 8 rotating buffers */
float range_of(const float *x, int n);
int argmax(const float *x, int n);
/* max |a - b| over n values, relative to the range of b (at least 1) */
double rel_diff(const float *a, const float *b, int n);

#define N_TOKS 18
extern const yan_token k_toks[N_TOKS];

yan_context *new_ctx(yan_model *m, int n_ctx, int n_batch, int n_threads, yan_kv_type kv);

#endif /* YAN_TEST_MODEL_UTIL_H */
