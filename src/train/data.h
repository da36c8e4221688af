/* data.h — tokenized corpora for training: binary shards of token ids.
 *
 * A data directory (written by `yan data prepare`) holds
 *   tokenizer.gguf          the vocabulary used (metadata-only GGUF)
 *   train_0000.bin ...      training shards
 *   val_0000.bin ...        validation shards (none when the split is empty)
 *   meta.json               counts: tokens, documents and text bytes per split,
 *                           the source files, the tokenizer's origin
 * A shard is a 64-byte little-endian header then the tokens:
 *   char magic[8] = "YANTOKS\0"; u32 version = 1; u32 token_bytes (2 or 4);
 *   u64 n_tokens; u64 n_docs; u64 n_text_bytes; u32 n_vocab; u32 bos, eos
 *   (0xFFFFFFFF when none); then zero padding to 64 bytes;
 * followed by n_tokens ids (u16 when n_vocab <= 65536, else u32). Each
 * document is its tokens followed by the end-of-text id (eos; when the
 * vocabulary has none, bos before each document instead; when it has
 * neither, nothing). n_docs counts the documents whose text begins in the
 * shard; n_text_bytes the bytes of text its tokens stand for.
 *
 * Reading: the shards of one split are mapped and seen as one stream of
 * tokens; a position is a token offset into that stream. A batch is B rows
 * of T + 1 consecutive tokens (inputs = the first T, targets = the last T)
 * taken from consecutive stretches starting at the position, which then
 * advances by B * T and wraps around at the end (so training is sequential
 * and resumable from a saved position).
 *
 * Writing: yan_shard_writer cuts a stream of ids into shards of a fixed
 * number of tokens, each written to a temporary file and fsynced; the shards
 * take their names only at commit (two-phase, so that a directory keeps its
 * previous contents until every new file is complete). yan_data_prepare is
 * the whole pipeline behind `yan data prepare`: text and JSONL files ->
 * parallel tokenization -> train/val shards + tokenizer.gguf + meta.json. */
#ifndef YAN_DATA_H
#define YAN_DATA_H

#include "base/base.h"

#define YAN_SHARD_MAGIC "YANTOKS"    /* 8 bytes with the NUL */
#define YAN_SHARD_VERSION 1
#define YAN_SHARD_HEADER_BYTES 64
#define YAN_SHARD_NONE 0xFFFFFFFFu   /* bos/eos absent */
#define YAN_SHARD_TOKENS_DEFAULT 100000000ull

/* ----------------------------------------------------------------- reading */

typedef struct yan_shards yan_shards;

/* Open every <split>_NNNN.bin in dir ("train" or "val"); they must be
 * numbered 0000, 0001, ... without gaps. Every header is checked (magic,
 * version, token width for n_vocab, file size = 64 + n_tokens * width, zero
 * padding), every id is checked < n_vocab (one linear scan), and the shards
 * must agree on n_vocab, bos and eos. Errors: IO (no directory, no shard,
 * cannot map), FORMAT (bad header, truncated file, ids >= n_vocab, a gap in
 * the numbering, shards that disagree) with a message naming the file. */
yan_status yan_shards_open(const char *dir, const char *split, yan_shards **out);
void yan_shards_close(yan_shards *s); /* NULL is a no-op */

uint64_t yan_shards_n_tokens(const yan_shards *s);
uint64_t yan_shards_n_text_bytes(const yan_shards *s); /* bits per byte = loss * tokens / bytes / ln 2 */
uint64_t yan_shards_n_docs(const yan_shards *s);
uint32_t yan_shards_n_vocab(const yan_shards *s);
int yan_shards_count(const yan_shards *s);             /* shard files */
int32_t yan_shards_bos(const yan_shards *s);           /* -1 when none */
int32_t yan_shards_eos(const yan_shards *s);           /* -1 when none */

/* Fill inputs and targets (B * T ids each, row-major (B, T)) from *pos and
 * advance it (wrapping): row b holds the tokens at pos + b*T + [0, T) and
 * targets the tokens one further. Needs B, T >= 1 and n_tokens >= T + 1
 * (else INVALID_ARG, nothing written). No allocation; a *pos past the end is
 * taken modulo n_tokens. Thread-safe for distinct outputs. */
yan_status yan_shards_batch(const yan_shards *s, uint64_t *pos, int B, int T,
                            int32_t *inputs, int32_t *targets);

/* Copy n tokens of the stream starting at pos (modulo n_tokens), wrapping
 * around at the end, into out. INVALID_ARG when the stream is empty. */
yan_status yan_shards_read(const yan_shards *s, uint64_t pos, size_t n, int32_t *out);

/* ----------------------------------------------------------------- writing */

typedef struct yan_shard_writer yan_shard_writer;

/* Start the shards <split>_0000.bin, _0001.bin, ... of dir (which must
 * exist): a new shard every shard_tokens tokens (0 = the default, 100M).
 * bos, eos: the vocabulary's ids, -1 = none (written to every header).
 * Nothing is created until ids arrive. Errors: INVALID_ARG, NOMEM. */
yan_status yan_shard_writer_open(const char *dir, const char *split, int32_t n_vocab, int32_t bos, int32_t eos,
                                 uint64_t shard_tokens, yan_shard_writer **out);

/* Append n ids (every id must be in [0, n_vocab): else INVALID_ARG and
 * nothing is written). n_docs documents begin in these ids (counted in the
 * shard that gets the first of them); n_text_bytes of text stand behind them
 * (spread over the shards they fall in, in proportion to tokens). A shard is
 * fsynced and closed when the next one begins. Errors: IO (the writer is
 * then failed: every later call fails too), INVALID_ARG. */
yan_status yan_shard_writer_append(yan_shard_writer *w, const int32_t *ids, size_t n, uint64_t n_docs,
                                   uint64_t n_text_bytes);

/* Complete the last shard (header, fsync, close); the shards still have
 * their temporary names. Idempotent. */
yan_status yan_shard_writer_finish(yan_shard_writer *w);

/* Finish, then rename every shard to its real name, remove the
 * <split>_NNNN.bin an earlier run left beyond the new count, and fsync dir.
 * Frees w whether it succeeds or not (on failure before any rename, every
 * temporary is removed). */
yan_status yan_shard_writer_commit(yan_shard_writer *w);

/* Remove every temporary and free w; NULL is a no-op. */
void yan_shard_writer_abort(yan_shard_writer *w);

/* Totals so far. */
uint64_t yan_shard_writer_n_tokens(const yan_shard_writer *w);
int yan_shard_writer_n_shards(const yan_shard_writer *w);

/* The file name of shard index of split ("train_0003.bin") into buf. */
void yan_shard_name(char *buf, size_t cap, const char *split, int index);

/* ----------------------------------------------------------------- prepare */

enum { YAN_SPLIT_TRAIN = 0, YAN_SPLIT_VAL = 1 };

typedef struct {
    uint64_t bytes_done, bytes_total; /* input bytes */
    uint64_t tokens;                  /* tokens written (both splits) */
    uint64_t docs;                    /* documents completed */
    double seconds;                   /* since the start */
} yan_data_progress;

/* Called after each segment is written, in order, from whichever worker
 * thread wrote it (never two at once). Return false to abort. */
typedef bool (*yan_data_progress_fn)(const yan_data_progress *p, void *ud);

typedef struct {
    const char *tokenizer;        /* vocabulary: GGUF, tokenizer.json, tiktoken, encoder.json */
    const char *pre;              /* pre-tokenizer for rank files that do not name one; NULL = from the file */
    const char *const *files;     /* inputs: *.jsonl = JSON lines with a "text" string, else plain text */
    int n_files;
    const char *out_dir;          /* created when missing */
    double val_fraction;          /* share of segments/records for validation, in [0, 1); default 0.01 */
    int n_threads;                /* 0 = all cores */
    uint64_t shard_tokens;        /* tokens per shard; 0 = 100M */
    size_t segment_bytes;         /* text files are cut into segments of about this size at line
                                     boundaries; 0 = 1 MiB */
    yan_data_progress_fn progress;/* may be NULL */
    void *progress_ud;
} yan_data_prepare_params;

typedef struct {
    uint64_t tokens[2];           /* [YAN_SPLIT_TRAIN], [YAN_SPLIT_VAL] */
    uint64_t docs[2];             /* documents with text in the split */
    uint64_t text_bytes[2];
    int shards[2];
    uint64_t n_docs;              /* documents in the input */
    uint64_t input_bytes;         /* bytes of the input files */
    uint64_t n_units;             /* segments + records the split chose among */
    int32_t n_vocab;
    int token_bytes;
    double seconds;
} yan_data_prepare_stats;

yan_data_prepare_params yan_data_prepare_params_default(void);

/* Tokenize the files into out_dir: tokenizer.gguf, <split>_NNNN.bin and
 * meta.json (format in the file comment of data.c), all written atomically
 * and meta.json last; the directory's previous files stay as they were until
 * every new file is complete, and nothing new is left behind on failure.
 * The output bytes do not depend on n_threads.
 *
 * Documents: each JSONL record; each text file (cut into segments for
 * parallelism and for the split). The end-of-text id follows a document's
 * last stretch in each split it has text in (bos precedes its first stretch
 * when the vocabulary has no eos). Each segment/record goes to validation
 * when a hash of (file index, segment or line index) falls below
 * val_fraction; with a non-zero fraction and at least two units, at least
 * one goes to each split; a single unit gives its last lines (at least one,
 * about val_fraction of them) to validation, unless it is one line.
 * Errors (yan_last_error() names the file and, for JSONL, the line): IO
 * (missing or unreadable file, cannot write), FORMAT (invalid JSON, no
 * string "text", no text at all), the tokenizer loader's errors, NOMEM,
 * INVALID_ARG, ABORTED (progress returned false). stats may be NULL. */
yan_status yan_data_prepare(const yan_data_prepare_params *p, yan_data_prepare_stats *stats);

#endif /* YAN_DATA_H */
