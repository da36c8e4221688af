/* engine.h — batched evaluation of many sequences at once over a paged KV
 * cache: the core of continuous batching (src/serve drives it).
 *
 * A step evaluates tokens that belong to any number of live sequences, each
 * token appended at its sequence's current length; the weight matrices are
 * read once for the whole step (that is where batching pays), attention runs
 * per token over its own sequence's cache. Prompts are prefilled in chunks
 * by passing some of their tokens per step next to the decode tokens of
 * running sequences.
 *
 * KV cache: a pool of blocks of YAN_KV_BLOCK positions (all layers, K and V,
 * in f16 or f32). A sequence owns a table of block ids; blocks are taken from
 * the pool as it grows and returned when it is freed, so memory follows the
 * actual lengths. Full blocks are also indexed by the hash of the whole token
 * prefix they end (with a check of the tokens), so a new sequence whose
 * prompt starts with the same tokens as an earlier one (a shared system
 * prompt, a conversation that continues) takes those blocks by reference
 * instead of recomputing them (yan_engine_seq_reuse). Reference-counted
 * blocks are never written; freed blocks stay indexed (and reusable) until
 * the pool needs them back (least recently used first).
 *
 * Numbers: a sequence evaluated through the engine gives the same logits as
 * the same tokens through a yan_context, whatever else is in the step
 * (tested); batching changes nothing but speed.
 *
 * Threads: one thread drives an engine (the serving loop); each step runs on
 * the engine's own pool. */
#ifndef YAN_ENGINE_H
#define YAN_ENGINE_H

#include "yan.h"
#include "model/model.h"

#define YAN_KV_BLOCK 32 /* positions per KV block */

typedef struct yan_engine yan_engine;

typedef struct {
    int32_t n_ctx;       /* longest sequence (0 = the model's training context, at most 4096) */
    int32_t n_seq_max;   /* live sequences at once (default 16; 0 = 16) */
    int32_t n_batch;     /* most tokens in one step (default 512; 0 = 512; at most n_ctx) */
    int64_t n_blocks;    /* KV pool in blocks (0 = enough for n_seq_max full sequences) */
    int n_threads;       /* 0 = all cores */
    yan_kv_type kv_type; /* default f16 */
} yan_engine_params;

yan_engine_params yan_engine_params_default(void);

/* p NULL = the defaults. The KV pool (n_blocks blocks, each holding
 * YAN_KV_BLOCK positions of every layer's K and V; layout in model.h) and
 * all scratch are allocated here; steps do not allocate, except to grow the
 * logits buffer when a step asks for more rows than any before. Errors:
 * INVALID_ARG, NOMEM (with the bytes asked for). */
yan_status yan_engine_new(yan_model *m, const yan_engine_params *p, yan_engine **out);
void yan_engine_free(yan_engine *e); /* NULL is a no-op */

const yan_model *yan_engine_model(const yan_engine *e);
int32_t yan_engine_n_ctx(const yan_engine *e);
int32_t yan_engine_n_batch(const yan_engine *e);   /* most tokens in one step (n_batch, at most n_ctx) */
int32_t yan_engine_n_seq_max(const yan_engine *e);
int64_t yan_engine_blocks_total(const yan_engine *e);
int64_t yan_engine_blocks_free(const yan_engine *e);   /* unused + reclaimable cached blocks */
int64_t yan_engine_blocks_cached(const yan_engine *e); /* freed but still indexed for reuse */

/* A new empty sequence (ids are 0..n_seq_max-1, the lowest free one first);
 * YAN_ERR_CONTEXT_FULL when n_seq_max are live. */
yan_status yan_engine_seq_new(yan_engine *e, int32_t *seq);
/* Release a sequence and its blocks (full blocks stay cached, the prefix's
 * first blocks the longest). A dead id is a no-op. */
void yan_engine_seq_free(yan_engine *e, int32_t seq);
/* Positions held; -1 for a dead sequence. */
int32_t yan_engine_seq_len(const yan_engine *e, int32_t seq);
/* Drop the positions from n on (n <= length); shared blocks are not touched
 * (a partly kept shared block is copied first). Errors: INVALID_ARG (dead
 * sequence, n out of range), NOMEM (no block to copy into; nothing changed). */
yan_status yan_engine_seq_truncate(yan_engine *e, int32_t seq, int32_t n);
/* For an EMPTY sequence: take the cached blocks that hold the longest prefix
 * of tokens[0..n) in whole blocks, leaving at least one token to evaluate
 * (so the caller always gets logits for the last prompt token). Returns the
 * number of positions now in the sequence (a multiple of YAN_KV_BLOCK); 0
 * also for a dead or non-empty sequence (nothing done). Blocks still held
 * by live sequences are shared; cached ones leave the LRU (blocks_free drops
 * by their number, and the step needs that many fewer). */
int32_t yan_engine_seq_reuse(yan_engine *e, int32_t seq, const yan_token *tokens, int32_t n);
/* Blocks the sequence would need to grow to n positions (0 if it has them);
 * -1 for a dead sequence or n < 0. Admission: a step succeeds when the sum
 * over its sequences is at most yan_engine_blocks_free. */
int64_t yan_engine_blocks_needed(const yan_engine *e, int32_t seq, int32_t n);

typedef struct {
    int32_t seq;       /* a live sequence */
    yan_token token;   /* appended at the sequence's current length */
    bool logits;       /* keep the logits after this token */
} yan_engine_tok;

/* Evaluate n tokens (1 <= n <= n_batch; a sequence may appear several
 * times, in position order). Everything is checked before anything runs:
 * bad ids, dead sequences (INVALID_ARG), a sequence past n_ctx
 * (CONTEXT_FULL), not enough free blocks (YAN_ERR_NOMEM with nothing
 * changed; the last step's logits stay available), an embedding-only model
 * (bert: UNSUPPORTED). Blocks that fill are indexed for reuse at the end of
 * the step. */
yan_status yan_engine_step(yan_engine *e, const yan_engine_tok *toks, int32_t n);
/* Logits (n_vocab floats) of the i-th token of the last step (it must have
 * had logits = true); NULL otherwise. Valid until the next step. */
const float *yan_engine_logits(const yan_engine *e, int32_t i);

/* Embedding of a text's tokens: the final hidden states (after the output
 * norm) pooled as the model says (yan_model_pooling) and L2-normalised,
 * n_embd floats into out (as yan_embed, by the same code: yan_fwd_embed). Uses a temporary sequence of its own (it does not
 * count against n_seq_max) whose blocks go straight back to the free list
 * (not cached); the last step's logits stay available. Errors: INVALID_ARG,
 * CONTEXT_FULL (n > n_ctx), NOMEM (fewer than ceil(n / YAN_KV_BLOCK) free
 * blocks; nothing changed). */
yan_status yan_engine_embed(yan_engine *e, const yan_token *tokens, int32_t n, float *out);

#endif /* YAN_ENGINE_H */
