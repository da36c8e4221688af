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
 * LoRA mode (yan_tmodel_new_lora, yan_tmodel_load_lora): the llama weights
 * are a frozen base and the only trainable parameters are low-rank adapters
 * on chosen matrices W (out x in): A (r x in) and B (out x r), with
 *   y = x W^T + (alpha / r) (x A^T) B^T.
 * params / grads then hold only the adapters, named as llama.cpp's adapter
 * files name them: "<W name>.lora_a" (ne0 = in, ne1 = r) and
 * "<W name>.lora_b" (ne0 = r, ne1 = out), per layer in the target order
 * q, k, v, o, gate, up, down (each tensor 64-byte aligned), so AdamW,
 * clipping and checkpoints work on them unchanged. The base is either
 *  - f32: one frozen block in the full-training layout (base, n_base floats),
 *    used exactly as full training uses params; or
 *  - mapped (QLoRA-style, chosen by the loader when any matrix of the file is
 *    not f32): every matrix stays in its GGUF type inside the file mapping and
 *    is never dequantized as a whole. The forward y = x W^T runs yan's
 *    inference kernels on it (yan_matmul, the activations quantized to 8
 *    bits on the fly, as `yan run` computes) where they take the matrix
 *    whole: q8_0 / q4_0 rows of a multiple of 128 values and k-quants
 *    (measured 3-8x faster there than f32 GEMM on dequantized weights at
 *    training batch sizes; for other types and short rows, 20x slower: those
 *    use the tiles below).
 *    The backward dx = dy W dequantizes a tile of at most
 *    YAN_TMODEL_TILE_FLOATS floats (whole rows) at a time into f32 and sums
 *    yan_sgemm products over the tiles; so the gradient is that of the
 *    dequantized weights at the forward's activations (yan_tmodel_set_mapped_
 *    forward switches the forward to the same tiles: then it is the exact
 *    gradient of the dequantized model). The norms live in base (f32).
 * The backward of LoRA mode computes no base gradient (no dW, no norm or
 * embedding gradients), only dx through the base and the adapters' dA, dB.
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

typedef struct yan_tact yan_tact; /* activations; private to tmodel.c and tlora.c (tmodel_impl.h) */

/* ------------------------------------------------------------ LoRA */

/* LoRA targets: bits of yan_tlora.targets; the tensor each adapts. */
enum {
    YAN_LORA_Q = 1 << 0,    /* attn_q */
    YAN_LORA_K = 1 << 1,    /* attn_k */
    YAN_LORA_V = 1 << 2,    /* attn_v */
    YAN_LORA_O = 1 << 3,    /* attn_output */
    YAN_LORA_GATE = 1 << 4, /* ffn_gate */
    YAN_LORA_UP = 1 << 5,   /* ffn_up */
    YAN_LORA_DOWN = 1 << 6, /* ffn_down */
    YAN_LORA_ALL = 0x7f
};
#define YAN_LORA_N_TARGETS 7
/* Floats of the dequantization tile of a mapped base (4 MiB). */
#define YAN_TMODEL_TILE_FLOATS (1 << 20)

typedef struct {
    int32_t rank;         /* r >= 1 (0 = no LoRA) */
    float alpha;          /* the adapter output is scaled by alpha / r */
    uint32_t targets;     /* YAN_LORA_* bits, at least one */
} yan_tlora;

/* "q,k,v,o,gate,up,down" (any subset, any order; "all" = every one) into
 * YAN_LORA_* bits. Errors: INVALID_ARG naming the unknown name and listing
 * the known ones; an empty list. */
yan_status yan_tlora_parse_targets(const char *list, uint32_t *out);
/* The short name ("q", ..., "down") and the tensor ("attn_q", ...,
 * "ffn_down") of target i (0..6). */
const char *yan_tlora_target_name(int i);
const char *yan_tlora_target_tensor(int i);
/* "q,k,v" for targets into buf (always NUL-terminated). */
void yan_tlora_targets_str(uint32_t targets, char *buf, size_t cap);

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
    /* LoRA mode (lora.rank > 0); all zero / NULL in full training */
    yan_tlora lora;
    float *base;          /* frozen f32 weights, 64-byte aligned: the full
                           * layout, or only the norms when mapped */
    int64_t n_base;       /* floats in base */
    yan_tparam *base_tensors; /* the llama tensor table of the base; offset -1
                           * = a matrix held in the file mapping */
    int n_base_tensors;
    bool mapped;          /* the base matrices stay in their GGUF types */
    yan_gguf *map;        /* mapped: the open base file (owned) */
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

/* A LoRA-mode model: adapters for lora (zeroed) on an f32 base block
 * (zeroed; fill it through yan_tmodel_find_base). Errors: INVALID_ARG (a bad
 * rank, alpha or target set), NOMEM. */
yan_status yan_tmodel_new_lora(const yan_tconfig *cfg, const yan_tlora *lora, int B, int T, int n_threads,
                               yan_tmodel **out);

/* Seeded initialisation (same seed, same weights on any machine):
 * matrices and embeddings N(0, 0.02), the residual output projections
 * (attn_output, ffn_down) N(0, 0.02 / sqrt(2 L)), norms 1. In LoRA mode the
 * adapters only, as PEFT does: A uniform in [-1/sqrt(in), 1/sqrt(in)] (torch's
 * kaiming_uniform_ with a = sqrt(5)), B zero, so training starts at the
 * base model. */
void yan_tmodel_init(yan_tmodel *m, uint64_t seed);

/* The parameter named name, or NULL. */
const yan_tparam *yan_tmodel_find(const yan_tmodel *m, const char *name);
/* LoRA mode: the base tensor named name, or NULL (its floats are
 * m->base + offset when offset >= 0). */
const yan_tparam *yan_tmodel_find_base(const yan_tmodel *m, const char *name);

/* Load a `llama` GGUF (any weight type yan reads, dequantized to f32) as a
 * trainable model; also its tokenizer into *tok (may be NULL) and its chat
 * template into *chat_template (malloc'ed, NULL when absent; may be NULL).
 * Errors: IO, FORMAT, UNSUPPORTED (another architecture, biases, ...) with a
 * message naming the file. */
yan_status yan_tmodel_load_gguf(const char *path, int B, int T, int n_threads,
                                yan_tmodel **out, yan_tokenizer **tok, char **chat_template);

/* The same in LoRA mode with adapters for lora (zeroed; yan_tmodel_init
 * gives them their starting values). The base is f32 in a block when every
 * matrix of the file is f32, else mapped (see the top of this file): the
 * file stays open and mapped as long as the model lives. Errors as
 * yan_tmodel_load_gguf, and INVALID_ARG for a bad LoRA setting. */
yan_status yan_tmodel_load_lora(const char *path, const yan_tlora *lora, int B, int T, int n_threads,
                                yan_tmodel **out, yan_tokenizer **tok, char **chat_template);

/* Add to w what makes a normal `llama` GGUF that yan and llama.cpp load:
 * general.architecture, llama.* hyper-parameters, general.name (name may be
 * NULL), the tokenizer's tokenizer.ggml.* keys, tokenizer.chat_template
 * (when not NULL), and every parameter as an f32 tensor (borrowed from
 * m->params: keep m alive until w is written). */
yan_status yan_tmodel_to_gguf(const yan_tmodel *m, const yan_tokenizer *tok,
                              const char *chat_template, const char *name, yan_gguf_writer *w);

/* LoRA mode: add to w llama.cpp's LoRA adapter format: general.architecture
 * = llama, general.type = adapter, adapter.type = lora, adapter.lora.alpha
 * (f32), general.name (when not NULL) and every adapter tensor in f32
 * (borrowed from m->params). yan_model_apply_lora, yan_lora_merge and
 * llama.cpp load it. Errors: INVALID_ARG when m is not in LoRA mode. */
yan_status yan_tmodel_adapter_to_gguf(const yan_tmodel *m, const char *name, yan_gguf_writer *w);

/* LoRA mode: read the adapter file path (that format, any tensor type yan
 * decodes) into m->params. It must hold exactly m's adapter tensors with
 * their shapes and m's alpha. Errors: IO, FORMAT naming the file and the
 * tensor or key; m's adapters are unchanged on error. */
yan_status yan_tmodel_adapter_load(yan_tmodel *m, const char *path);

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

/* Tests: a mapped base dequantizes at most rows rows per tile (clamped to
 * [1, the tile allocated]); no effect otherwise. */
void yan_tmodel_set_tile_rows(yan_tmodel *m, int64_t rows);
/* A mapped base's forward products: quantized = true (the default) runs the
 * inference kernels (yan_matmul: activations quantized on the fly, as `yan
 * run` does; 2-4x faster than f32 GEMM here), false the dequantized tiles
 * with yan_sgemm (the exact f32 product of the dequantized weights, as the
 * backward uses). No effect on other models. */
void yan_tmodel_set_mapped_forward(yan_tmodel *m, bool quantized);

#endif /* YAN_TMODEL_H */
