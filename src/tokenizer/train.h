/* train.h — internals of the byte-level BPE trainer (train.c), shared with
 * the unit tests and the `yan tokenizer train` command (for its summary).
 *
 * The trainer has two halves:
 *  - yan_bpe_learn: merges on a table of distinct words with frequencies; it
 *    knows nothing about files, pre-tokenizers or JSON;
 *  - yan_tokenizer_train_ex: reads and pre-tokenizes the corpus into that
 *    table (in parallel), calls yan_bpe_learn, and writes tokenizer.json. */
#ifndef YAN_TRAIN_H
#define YAN_TRAIN_H

#include "base/base.h"

/* ------------------------------------------------------------- learner */

/* What yan_bpe_learn produces. Token ids 0..255 are the single bytes in byte
 * order; learned tokens follow. A merge may produce a token that already
 * exists (e.g. "the" both from "t"+"he" and "th"+"e"): it then reuses that
 * id, so n_merges >= n_tok - 256. */
typedef struct {
    int32_t n_tok;          /* 256 + distinct learned tokens */
    uint8_t *blob;          /* bytes of all tokens */
    size_t *tok_off;        /* (n_tok) offset into blob */
    uint32_t *tok_len;      /* (n_tok) byte length */

    size_t n_merges;
    int32_t *merges;        /* (n_merges, 3): left id, right id, result id; rank = row */
    int64_t *merge_count;   /* (n_merges) frequency of the pair when it was merged */

    /* Final segmentation of every input word (the state the trainer ended
     * in): word w is seg[seg_off[w] .. seg_off[w] + seg_len[w]). */
    size_t n_words;
    int32_t *seg;
    size_t *seg_off;        /* (n_words) */
    uint32_t *seg_len;      /* (n_words) */
} yan_bpe;

/* Learn merges over n_words distinct words (bytes words[w][0..lens[w]),
 * frequency freqs[w] >= 1) until n_tok reaches max_tok or the most frequent
 * pair occurs fewer than min_freq times. The most frequent adjacent pair is
 * merged first; ties go to the smaller (left id, right id), which makes the
 * result a function of the word table only. Each word always holds exactly
 * what a PAIRS-mode BPE encoder (lowest merge rank first, leftmost on ties)
 * produces from its bytes with the merges learned so far.
 * progress (may be NULL) gets fractions in [p0, p1]; when it returns false
 * learning stops with YAN_ERR_ABORTED. The input is not referenced after
 * return. On error *out is zeroed. Not thread-safe on one out; reentrant. */
yan_status yan_bpe_learn(const uint8_t *const *words, const uint32_t *lens, const uint64_t *freqs,
                         size_t n_words, int32_t max_tok, int64_t min_freq,
                         yan_progress_fn progress, void *progress_ud, float p0, float p1,
                         yan_bpe *out);
/* Free what yan_bpe_learn allocated; a zeroed or freed b is fine. */
void yan_bpe_free(yan_bpe *b);

/* ------------------------------------------------------------- trainer */

typedef struct {
    size_t chunk_bytes;     /* corpus split unit for the counting threads; 0 = 1 MiB */
} yan_train_opts;

typedef yan_train_tokenizer_stats yan_train_stats; /* public in yan.h */

/* yan_tokenizer_train with tuning knobs and statistics; opts and stats may be
 * NULL. */
yan_status yan_tokenizer_train_ex(const char *const *files, int n_files,
                                  const yan_train_tokenizer_params *p, const char *out_path,
                                  const yan_train_opts *opts, yan_train_stats *stats);

#endif
