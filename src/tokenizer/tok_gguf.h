/* tok_gguf.h — writing a tokenizer's vocabulary as GGUF tokenizer.ggml.*
 * metadata (save_gguf.c); the reader is yan_load_gguf_vocab in tok.h.
 * Separate from tok.h so that tokenizer code does not depend on gguf.h. */
#ifndef YAN_TOK_GGUF_H
#define YAN_TOK_GGUF_H

#include "gguf/gguf.h"
#include "tokenizer/tok.h"

/* general.architecture of a GGUF holding only a vocabulary. */
#define YAN_TOK_GGUF_ARCH "yan-tokenizer"

/* llama.cpp's tokenizer.ggml.pre name for a yan_pre_id ("gpt-2",
 * "llama-bpe", "gpt-4o", "qwen2"), or NULL. */
const char *yan_tok_gguf_pre_name(int pre);

/* Write the tokenizer.ggml.* keys of t into w (the inverse of
 * yan_load_gguf_vocab). BPE: model "gpt2", pre, tokens in the GPT-2 byte
 * alphabet (CONTROL/USER_DEFINED tokens as plain text, holes as "[PAD<id>]"
 * UNUSED), token_type, merges "a b" (derived for RANK vocabularies, see
 * save_gguf.c). SPM: model "llama", tokens as text, scores, token_type,
 * add_space_prefix. WPM: model "bert", tokens as text, token_type,
 * normalizer.lowercase / strip_accents. All: special ids, add_bos/add_eos;
 * BPE also the yan-specific yan.tokenizer.nfc / ignore_merges flags.
 * t should be finalized. Errors: NOMEM, UNSUPPORTED (no GGUF name for t->pre). */
yan_status yan_tok_save_gguf_kv(const yan_tokenizer *t, yan_gguf_writer *w);

/* yan_load_gguf_vocab over a GGUF image in memory (tests, fuzzing); name
 * is used in messages. */
yan_status yan_load_gguf_vocab_mem(yan_tokenizer *t, const uint8_t *buf, size_t len, const char *name);

/* Write a metadata-only GGUF (general.architecture = "yan-tokenizer",
 * general.name = t->name if set, no tensors) to path atomically. */
yan_status yan_tok_write_gguf(const yan_tokenizer *t, const char *path);

#endif /* YAN_TOK_GGUF_H */
