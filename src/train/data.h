/* data.h — tokenized corpora for training: binary shards of token ids.
 *
 * A data directory (written by `yan data prepare`) holds
 *   tokenizer.gguf          the vocabulary used (metadata-only GGUF)
 *   train_0000.bin ...      training shards
 *   val_0000.bin ...        validation shards
 *   meta.json               counts: tokens, documents and text bytes per split,
 *                           the source files, the tokenizer's origin
 * A shard is a 64-byte little-endian header then the tokens:
 *   char magic[8] = "YANTOKS\0"; u32 version = 1; u32 token_bytes (2 or 4);
 *   u64 n_tokens; u64 n_docs; u64 n_text_bytes; u32 n_vocab; u32 bos, eos
 *   (0xFFFFFFFF when none); then zero padding to 64 bytes;
 * followed by n_tokens ids (u16 when n_vocab <= 65536, else u32). Each
 * document is its tokens followed by the end-of-text id (eos; when the
 * vocabulary has none, bos before each document instead).
 *
 * Reading: the shards of one split are mapped and seen as one stream of
 * tokens; a position is a token offset into that stream. A batch is B rows
 * of T + 1 consecutive tokens (inputs = the first T, targets = the last T)
 * taken from consecutive stretches starting at the position, which then
 * advances by B * T and wraps around at the end (so training is sequential
 * and resumable from a saved position). */
#ifndef YAN_DATA_H
#define YAN_DATA_H

#include "base/base.h"

typedef struct yan_shards yan_shards;

/* Open every <split>_NNNN.bin in dir ("train" or "val"). Errors: IO (no
 * shard), FORMAT (bad header, truncated file, ids >= n_vocab, shards that
 * disagree) with a message naming the file. */
yan_status yan_shards_open(const char *dir, const char *split, yan_shards **out);
void yan_shards_close(yan_shards *s); /* NULL is a no-op */

uint64_t yan_shards_n_tokens(const yan_shards *s);
uint64_t yan_shards_n_text_bytes(const yan_shards *s); /* bits per byte = loss * tokens / bytes / ln 2 */
uint32_t yan_shards_n_vocab(const yan_shards *s);

/* Fill inputs and targets (B * T ids each) from *pos and advance it
 * (wrapping). Needs n_tokens >= T + 1 (else INVALID_ARG). */
yan_status yan_shards_batch(const yan_shards *s, uint64_t *pos, int B, int T,
                            int32_t *inputs, int32_t *targets);

#endif /* YAN_DATA_H */
