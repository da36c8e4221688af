/* tmodel.h — a trainable `llama` model: parameters, gradients, the training
 * forward pass that keeps its activations, and the backward pass.
 *
 * Architecture (the `llama` of src/model, so that `yan run` and llama.cpp
 * load what training writes): token embedding -> L x [RMSNorm -> attention
 * (q, k, v, o projections, no biases, GQA with NKV kv heads, RoPE in
 * llama.cpp's NORM layout: adjacent pairs (2i, 2i+1) rotated by
 * pos * base^(-2i/HD), causal softmax(q k^T / sqrt(HD))) -> residual ->
 * RMSNorm -> SwiGLU MLP (down(silu(gate x) * up x)) -> residual] -> RMSNorm ->
 * output projection (tied to the embedding or not) -> cross-entropy.
 *
 * Memory: ONE contiguous f32 block for all parameters (params) and one of the
 * same layout for their gradients (grads); AdamW keeps its moments in blocks
 * of that layout too. Tensors are GGUF-shaped: ne0 = in (contiguous), ne1 =
 * rows (out); the same bytes as PyTorch's nn.Linear weight [out][in].
 * The tensor table names every parameter with its GGUF name, in a fixed
 * order: token_embd.weight, then per layer blk.N.attn_norm.weight,
 * blk.N.attn_q.weight, blk.N.attn_k.weight, blk.N.attn_v.weight,
 * blk.N.attn_output.weight, blk.N.ffn_norm.weight, blk.N.ffn_gate.weight,
 * blk.N.ffn_up.weight, blk.N.ffn_down.weight; then output_norm.weight and
 * (untied only) output.weight.
 *
 * Threads: every entry point runs on the calling thread and spreads its work
 * over the model's pool. Results do not depend on the number of threads. */
#ifndef YAN_TMODEL_H
#define YAN_TMODEL_H

#include "base/base.h"
#include "base/pool.h"
#include "gguf/gguf.h"
#include "tokenizer/tok.h"

typedef struct {
    int32_t n_vocab;      /* V */
    int32_t n_ctx;        /* longest sequence (written as llama.context_length) */
    int32_t n_embd;       /* C */
    int32_t n_layer;      /* L */
    int32_t n_head;       /* NH; HD = C / NH, even */
    int32_t n_head_kv;    /* NKV; NH % NKV == 0 */
    int32_t n_ff;         /* FF */
    float norm_eps;       /* RMSNorm epsilon (1e-5) */
    float rope_base;      /* 10000 */
    bool tied_output;     /* output projection = token_embd */
} yan_tconfig;

typedef struct {
    char name[64];        /* GGUF tensor name */
    int64_t ne0, ne1;     /* ne0 = in (contiguous); ne1 = rows (1 for a vector) */
    int64_t offset;       /* first float in params / grads */
    bool decay;           /* AdamW weight decay applies (not for norms) */
} yan_tparam;

typedef struct yan_tact yan_tact; /* activations; private to tmodel.c */

typedef struct yan_tmodel {
    yan_tconfig cfg;
    int64_t n_params;     /* floats in params (= in grads), with the zero
                           * padding that aligns tensors to 64 bytes */
    float *params;        /* 64-byte aligned */
    float *grads;         /* 64-byte aligned, same layout */
    yan_tparam *tensors;
    int n_tensors;
    int B, T;             /* largest batch the activations are sized for */
    yan_pool *pool;
    yan_tact *act;
} yan_tmodel;

/* Fill *c with a small default (dim 256, 4 layers, 4 heads, ...) and
 * validate a config: every count positive, C % NH == 0, HD even,
 * NH % NKV == 0. Errors: INVALID_ARG naming the field. */
void yan_tconfig_default(yan_tconfig *c);
yan_status yan_tconfig_check(const yan_tconfig *c);

/* A model with parameters zeroed and activations for up to B sequences of
 * up to T tokens (T <= cfg->n_ctx). n_threads 0 = all cores.
 * Errors: INVALID_ARG, NOMEM. */
yan_status yan_tmodel_new(const yan_tconfig *cfg, int B, int T, int n_threads, yan_tmodel **out);
void yan_tmodel_free(yan_tmodel *m); /* NULL is a no-op */

/* Seeded initialisation (same seed, same weights on any machine):
 * matrices and embeddings N(0, 0.02), the residual output projections
 * (attn_output, ffn_down) N(0, 0.02 / sqrt(2 L)), norms 1. */
void yan_tmodel_init(yan_tmodel *m, uint64_t seed);

/* The parameter named name, or NULL. */
const yan_tparam *yan_tmodel_find(const yan_tmodel *m, const char *name);

/* Load a `llama` GGUF (any weight type yan reads, dequantized to f32) as a
 * trainable model; also its tokenizer into *tok (may be NULL) and its chat
 * template into *chat_template (malloc'ed, NULL when absent; may be NULL).
 * Errors: IO, FORMAT, UNSUPPORTED (another architecture, biases, ...) with a
 * message naming the file. */
yan_status yan_tmodel_load_gguf(const char *path, int B, int T, int n_threads,
                                yan_tmodel **out, yan_tokenizer **tok, char **chat_template);

/* Add to w what makes a normal `llama` GGUF that yan and llama.cpp load:
 * general.architecture, llama.* hyper-parameters, general.name (name may be
 * NULL), the tokenizer's tokenizer.ggml.* keys, tokenizer.chat_template
 * (when not NULL), and every parameter as an f32 tensor (borrowed from
 * m->params: keep m alive until w is written). */
yan_status yan_tmodel_to_gguf(const yan_tmodel *m, const yan_tokenizer *tok,
                              const char *chat_template, const char *name, yan_gguf_writer *w);

/* Forward over B x T tokens (B <= m->B, T <= m->T): inputs[b*T + t] are the
 * token ids, targets[b*T + t] the id to predict at that position or -1 to
 * leave it out of the loss (targets NULL: logits only, no loss). Keeps every
 * activation for yan_tmodel_backward. Returns the mean cross-entropy (nats)
 * over the counted targets (0 when none). Ids must be < V (checked by the
 * caller). */
float yan_tmodel_forward(yan_tmodel *m, const int32_t *inputs, const int32_t *targets, int B, int T);

/* Logits of the last forward: (B*T) rows of V floats. yan_tmodel_backward
 * reuses this buffer for their gradient: read the logits before it. */
const float *yan_tmodel_logits(const yan_tmodel *m);

/* Number of targets counted by the last forward. */
int64_t yan_tmodel_n_targets(const yan_tmodel *m);

/* Backward of the last forward (which must have had targets; once per
 * forward): grads += scale * d(mean loss)/d(params). scale lets gradient
 * accumulation over k micro-batches use 1/k. */
void yan_tmodel_backward(yan_tmodel *m, float scale);

void yan_tmodel_zero_grad(yan_tmodel *m);

#endif /* YAN_TMODEL_H */
