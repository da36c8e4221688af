/* model.h — internal representation of a loaded model and of a context.
 *
 * model.c fills yan_model from a GGUF file: hyper-parameters from the
 * `<arch>.*` keys, weight matrices as yan_mat views into the file mapping (no
 * copies), small vectors (norm weights, biases, rope factors) converted to f32
 * into one owned block, and the tokenizer. forward.c owns yan_context (KV
 * cache, scratch, thread pool) and the forward pass; generate.c the sampling
 * loop on top of it.
 *
 * Dimension vocabulary: C = n_embd, HD = head_dim (key), HDV = head_dim_v,
 * NH = n_head, NKV = n_head_kv, FF = n_ff, V = n_vocab, L = n_layer,
 * T = tokens in a step, NCTX = context length. Matrices are GGUF-shaped:
 * (ne0 = in, ne1 = out); "(in -> out)" below. */
#ifndef YAN_MODEL_H
#define YAN_MODEL_H

#include "base/base.h"
#include "base/pool.h"
#include "gguf/gguf.h"
#include "tensor/tensor.h"
#include "tokenizer/tok.h"

typedef enum { YAN_ARCH_LLAMA = 0, YAN_ARCH_QWEN2 = 1, YAN_ARCH_QWEN3 = 2, YAN_ARCH_GPT2 = 3 } yan_arch;

typedef struct {
    int32_t n_vocab;      /* rows of token_embd / output */
    int32_t n_ctx_train;
    int32_t n_embd;       /* C */
    int32_t n_layer;      /* L */
    int32_t n_ff;         /* FF */
    int32_t n_head;       /* NH */
    int32_t n_head_kv;    /* NKV; NH % NKV == 0 */
    int32_t head_dim;     /* HD (attention.key_length; default C / NH) */
    int32_t head_dim_v;   /* HDV (attention.value_length; default HD) */
    int32_t n_rot;        /* rotated dims per head (rope.dimension_count; default HD); even, <= HD */
    float eps;            /* rms or layer norm epsilon */
    float rope_base;      /* rope.freq_base */
    float rope_freq_scale;/* 1 / rope.scaling.factor (linear) */
    bool rope_neox;       /* NEOX pairs (qwen2/3) vs NORM adjacent pairs (llama) */
    bool layernorm;       /* gpt2: LayerNorm + GELU + learned positions */
} yan_hparams;

typedef struct {
    const float *attn_norm, *attn_norm_b;  /* (C); _b gpt2 only */
    yan_mat wq;                            /* (C -> NH*HD) */
    yan_mat wk;                            /* (C -> NKV*HD) */
    yan_mat wv;                            /* (C -> NKV*HDV) */
    yan_mat wqkv;                          /* gpt2: (C -> 3C), rows q | k | v */
    const float *bq, *bk, *bv;             /* optional (NH*HD), (NKV*HD), (NKV*HDV) */
    const float *bqkv;                     /* gpt2 (3C) */
    const float *q_norm, *k_norm;          /* qwen3 (HD) */
    yan_mat wo;                            /* (NH*HDV -> C) */
    const float *bo;                       /* optional (C) */
    const float *ffn_norm, *ffn_norm_b;    /* (C) */
    yan_mat w_gate;                        /* (C -> FF); absent (data NULL) for gpt2 */
    yan_mat w_up;                          /* (C -> FF) */
    yan_mat w_down;                        /* (FF -> C) */
    const float *b_up, *b_down;            /* gpt2 (FF), (C) */
} yan_layer;

#define YAN_MAX_EOG 16

struct yan_model {
    char *path;
    yan_mmap file_copy;        /* use_mmap = false: the file's bytes in huge-page memory */
    yan_gguf *gguf;            /* keeps the mapping alive */
    yan_arch arch;
    const char *arch_name;     /* static */
    char *name;                /* general.name or "" */
    char *chat_template;       /* NULL when absent */
    yan_hparams hp;
    yan_layer *layers;         /* (L) */
    yan_mat tok_embd;          /* (C -> V): row t is token t's embedding */
    yan_mat pos_embd;          /* gpt2: (C -> n_ctx_train) */
    yan_mat output;            /* (C -> V); = tok_embd when tied */
    bool tied_output;
    const float *output_norm, *output_norm_b; /* (C) */
    const float *rope_freqs;   /* optional (n_rot / 2): theta divisors (Llama 3) */
    float *vecs;               /* owned block holding every f32 vector above */
    yan_tokenizer *tok;        /* owned */
    yan_token eog[YAN_MAX_EOG];/* end-of-generation ids */
    int n_eog;
    uint64_t n_params, weight_bytes;
    uint32_t type_count[YAN_GGML_TYPE_COUNT]; /* tensors per ggml type */
    uint64_t type_bytes[YAN_GGML_TYPE_COUNT];
    float **lora_bufs;         /* f32 matrices made by yan_model_apply_lora (lora.c) */
    int n_lora;
};

/* true when id ends a turn or the text (EOS, EOT, <|im_end|>, ...). */
bool yan_model_is_eog(const yan_model *m, yan_token id);

/* Largest yan_matmul_scratch_bytes over the model's matrices for T tokens. */
size_t yan_model_matmul_scratch(const yan_model *m, int T);

/* KV cache + scratch layout, shared by yan_context_bytes and yan_context_new. */
typedef struct {
    int32_t n_ctx, n_batch;
    int n_threads;
    size_t kv_elt;           /* 2 (f16) or 4 (f32) */
    size_t kv_layer_k;       /* bytes of one layer's K: NKV * NCTX * HD * elt */
    size_t kv_layer_v;
    size_t kv_bytes;         /* all layers, K and V */
    size_t scratch_bytes;    /* activations, matmul scratch, scores, one logits row */
} yan_ctx_plan;

/* The model a context was created for. */
const yan_model *yan_context_model(const yan_context *c);

yan_status yan_ctx_plan_make(const yan_model *m, const yan_context_params *p, yan_ctx_plan *out);

#endif /* YAN_MODEL_H */
