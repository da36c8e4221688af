/* model.h — internal representation of a loaded model and of a context.
 *
 * model.c fills yan_model from a GGUF file: hyper-parameters from the
 * `<arch>.*` keys, weight matrices as yan_mat views into the file mapping (no
 * copies), small vectors (norm weights, biases, rope factors) converted to f32
 * into one owned block, and the tokenizer. forward.c owns the forward pass
 * (yan_fwd: KV blocks, scratch, thread pool) and yan_context on top of it;
 * engine.c the continuous-batching engine on the same pass; generate.c the
 * sampling loop on a context.
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

typedef enum { YAN_ARCH_LLAMA = 0, YAN_ARCH_QWEN2 = 1, YAN_ARCH_QWEN3 = 2, YAN_ARCH_GPT2 = 3, YAN_ARCH_BERT = 4 } yan_arch;

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
    bool layernorm;       /* gpt2, bert: LayerNorm + GELU + learned positions */
    bool causal;          /* attention sees positions <= its own; false (bert): the whole input */
    bool post_norm;       /* bert: LayerNorm after the embeddings and after each residual add */
    yan_pooling pooling;  /* of yan_embed: <arch>.pooling_type, else MEAN */
    bool pooling_set;     /* the file names its pooling type */
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
    const float *b_up, *b_down;            /* gpt2, bert (FF), (C) */
    const float *attn_out_norm, *attn_out_norm_b; /* bert: LayerNorm after attention + residual (C) */
    const float *out_norm, *out_norm_b;    /* bert: LayerNorm after FFN + residual (C) */
} yan_layer;

#define YAN_MAX_EOG 16

struct yan_model {
    char *path;
    yan_mmap file_copy;        /* loaded by copy: the file's bytes in huge-page memory */
    bool copied;               /* YAN_LOAD_COPY (asked, or chosen by AUTO) */
    yan_gguf *gguf;            /* keeps the mapping alive */
    yan_arch arch;
    const char *arch_name;     /* static */
    char *name;                /* general.name or "" */
    char *chat_template;       /* NULL when absent */
    yan_hparams hp;
    yan_layer *layers;         /* (L) */
    yan_mat tok_embd;          /* (C -> V): row t is token t's embedding */
    yan_mat pos_embd;          /* gpt2, bert: (C -> n_ctx_train) */
    const float *type_embd;    /* bert: (C) row 0 of token_types (segment "A"); NULL when absent */
    const float *tok_norm, *tok_norm_b; /* bert: LayerNorm of the summed embeddings (C) */
    yan_mat output;            /* (C -> V); = tok_embd when tied; absent (data NULL) for bert */
    bool tied_output;
    const float *output_norm, *output_norm_b; /* (C); bert: the last layer's out_norm */
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

/* false for embedding models (bert): no output layer, no logits. */
static inline bool yan_model_has_lm_head(const yan_model *m) { return m->output.data != NULL; }

/* true when id ends a turn or the text (EOS, EOT, <|im_end|>, ...). */
bool yan_model_is_eog(const yan_model *m, yan_token id);

/* Largest yan_matmul_scratch_bytes over the model's matrices for T tokens. */
size_t yan_model_matmul_scratch(const yan_model *m, int T);

/* ------------------------------------------- the forward pass (forward.c)
 *
 * yan_fwd is the machine both yan_context (one sequence) and yan_engine (many,
 * src/model/engine.c) run the transformer on: the thread pool, the scratch
 * carved for n_batch tokens, and a KV cache in blocks. A step is a batch of
 * tokens, each with its own position and its own sequence's block table.
 *
 * KV blocks: block b holds kv_block positions of every layer at
 * kv + b * kv_block_bytes, laid out (L) x [K (NKV, kv_block, HD) |
 * V (NKV, kv_block, HDV)] in f16 or f32, so the keys of one head are
 * contiguous over the block's positions (attention streams them). Position p
 * of a sequence lives in block table[p / kv_block] at row p % kv_block. A
 * yan_context is one sequence in ONE block of n_ctx positions (kv_block =
 * n_ctx, table {0}): the same layout as a flat per-layer cache. The engine
 * uses blocks of YAN_KV_BLOCK positions. */

typedef struct {
    int32_t n_ctx;           /* longest sequence (positions 0..n_ctx-1) */
    int32_t n_batch;         /* most tokens in a step */
    int n_threads;
    yan_kv_type kv_type;
    size_t kv_elt;           /* 2 (f16) or 4 (f32) */
    int32_t kv_block;        /* positions per KV block */
    int64_t n_blocks;        /* KV blocks */
    size_t kv_layer_k;       /* bytes of one layer's K in a block: NKV * kv_block * HD * elt */
    size_t kv_layer_v;       /* NKV * kv_block * HDV * elt */
    size_t kv_block_bytes;   /* L * (kv_layer_k + kv_layer_v) */
    size_t kv_bytes;         /* n_blocks * kv_block_bytes */
    size_t scratch_bytes;    /* activations, matmul scratch, attention rows */
} yan_fwd_plan;

/* Check and size a forward machine. n_ctx >= 1 is the resolved context
 * length; n_batch 0 = 512 (clamped to n_ctx); a non-causal model (bert)
 * always gets n_batch = n_ctx, since its input must be evaluated in one
 * step; kv_block 0 = n_ctx (one block per sequence). Errors: INVALID_ARG
 * with the reason. */
yan_status yan_fwd_plan_make(const yan_model *m, int32_t n_ctx, int32_t n_batch, int n_threads, yan_kv_type kv_type,
                             int32_t kv_block, int64_t n_blocks, yan_fwd_plan *out);

typedef struct yan_fwd yan_fwd;

/* One step: T tokens of any sequences. The tokens of one sequence appear in
 * position order; a token attends to positions 0..pos[t] of its own table
 * (its own K/V included: they are stored before attention runs). Nothing is
 * checked: the caller validated ids, positions and tables. */
typedef struct {
    int T;                          /* 1..n_batch */
    const yan_token *tok;           /* (T) */
    const int32_t *pos;             /* (T) position of each token in its sequence */
    const int32_t *const *table;    /* (T) block table of each token's sequence */
    int n_out;                      /* tokens whose output is wanted, 0..T */
    const int32_t *out_tok;         /* (n_out) their indices in the step */
    float *logits;                  /* (n_out, V) logits out; NULL = hidden states only (yan_fwd_hidden) */
    int32_t kv_len;                 /* > 0: non-causal attention: every token attends to positions
                                       0..kv_len-1 of its table (one sequence whose positions are all
                                       in this step); 0 = causal (0..pos[t]) */
} yan_fwd_batch;

/* Errors: NOMEM (KV cache or scratch), INVALID_ARG from the plan. */
yan_status yan_fwd_new(yan_model *m, const yan_fwd_plan *plan, yan_fwd **out);
void yan_fwd_free(yan_fwd *f); /* NULL is a no-op */
const yan_fwd_plan *yan_fwd_plan_of(const yan_fwd *f);
/* Run one step on the machine's pool. Does not allocate. */
void yan_fwd_eval(yan_fwd *f, const yan_fwd_batch *b);
/* After a step with logits = NULL: the final hidden states (after the output
 * norm) of its n_out tokens, (n_out, C). Valid until the next step. */
const float *yan_fwd_hidden(const yan_fwd *f);
/* Bytes of KV block b (kv_block_bytes of them). */
uint8_t *yan_fwd_block(yan_fwd *f, int64_t b);

/* An embedding from the sum of n hidden-state rows (C doubles): the mean,
 * L2-normalised (a zero vector stays zero), into out (C floats). */
void yan_embed_finish(const double *sum, int32_t C, int64_t n, float *out);

/* The embedding of tokens[0..n) as ONE sequence at positions 0..n-1 of the
 * KV blocks listed in table (the caller's; they hold n positions): the
 * final hidden states pooled with `pooling` (YAN_POOLING_MODEL: the
 * model's) and L2-normalised into out (C floats). Shared by yan_embed and
 * yan_engine_embed. A causal model runs in steps of n_batch; a non-causal
 * one (bert) in one step with every token attending to all n, so n must be
 * <= n_batch. pos, tables, out_tok: caller scratch of n_batch entries,
 * overwritten. Ids and n <= n_ctx are the caller's to check. Errors:
 * INVALID_ARG (an unknown pooling, n > n_batch for a non-causal model),
 * NOMEM. */
yan_status yan_fwd_embed(yan_fwd *f, const yan_token *tokens, int32_t n, const int32_t *table, int32_t *pos,
                         const int32_t **tables, int32_t *out_tok, yan_pooling pooling, float *out);

/* The model a context was created for. */
const yan_model *yan_context_model(const yan_context *c);

#endif /* YAN_MODEL_H */
