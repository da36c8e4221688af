/* chunk.h — cutting extracted text into chunks, and the CJK segmentation that
 * makes Chinese and Japanese searchable by FTS5 (private to src/rag).
 *
 * Chunking: each section of a yan_doc (a PDF page, a Markdown/HTML heading)
 * is cut into units at sentence ends (". ! ?" before a space, and the CJK
 * "。！？；") and paragraph breaks (a blank line); a unit longer than the
 * chunk size is split at line breaks, clause marks (", ， 、 ; :"), spaces or,
 * for CJK, between characters. Units are packed greedily into chunks of at
 * most `size` tokens (counted unit by unit), ending at the last paragraph
 * break when one falls in the second half of the chunk, else at the last
 * sentence that fits. The next chunk starts with the trailing units of the
 * previous one that total at most `overlap` tokens. Chunks never cross a
 * section, so each has one page and one heading path.
 *
 * Segmentation: FTS5's unicode61 tokenizer takes a run of Han characters as
 * one token, so "知识库的检索" could only be found by exactly that run. The
 * segmenter rewrites each run of Han/kana characters as single characters
 * and overlapping bigrams (the default, measured best: docs/RAG.md), bigrams
 * alone, or characters alone; other text is copied unchanged.
 *
 * Thread-safety: all functions are reentrant. */
#ifndef YAN_RAG_CHUNK_H
#define YAN_RAG_CHUNK_H

#include "rag/ingest.h"

/* Tokens in s[0..n): the embedding model's tokenizer or yan_chunk_estimate. */
typedef int64_t (*yan_count_fn)(void *ud, const char *s, size_t n);

/* Token estimate without a tokenizer: one per CJK character or other symbol,
 * one per 4 letters or digits of a Latin word (rounded up), one per 3 of
 * other scripts; whitespace is free. */
int64_t yan_chunk_estimate(void *ud, const char *s, size_t n);

typedef struct {
    int size;           /* most tokens in a chunk (> 0) */
    int overlap;        /* tokens repeated from the previous chunk (< size) */
    yan_count_fn count; /* NULL = yan_chunk_estimate */
    void *ud;
} yan_chunk_params;

typedef struct {
    size_t start, end;  /* bytes of the document text, trimmed of whitespace */
    int32_t section;    /* index into the document's sections */
    int32_t tokens;     /* tokens counted unit by unit */
} yan_chunk;

/* Cut d's text into chunks (a new array, free with yan_free). A document of
 * only whitespace gives none. Errors: NOMEM, INVALID_ARG (size <= 0). */
yan_status yan_chunk_doc(const yan_doc *d, const yan_chunk_params *p, yan_chunk **out, size_t *n_out);

/* CJK segmentation modes (stored in the knowledge base at creation). */
typedef enum {
    YAN_SEG_BIGRAM = 0,    /* overlapping bigrams; a lone character stays itself */
    YAN_SEG_UNIGRAM = 1,   /* one token per character */
    YAN_SEG_UNIBIGRAM = 2, /* both (the default) */
    YAN_SEG_TRIGRAM = 3,   /* no rewriting: FTS5's trigram tokenizer indexes the raw text */
} yan_seg_mode;
#define YAN_SEG_DEFAULT YAN_SEG_UNIBIGRAM

/* "bigram", "unigram", "unibigram", "trigram"; parse returns -1 when unknown. */
const char *yan_seg_mode_name(yan_seg_mode m);
int yan_seg_mode_parse(const char *s);

/* True for Han ideographs (all blocks), the iteration mark and kana. */
bool yan_is_cjk(int32_t cp);

/* Append s[0..n) to out with every CJK run rewritten for mode, set off by
 * spaces. TRIGRAM copies unchanged. Returns false on OOM. */
bool yan_segment(yan_buf *out, const char *s, size_t n, yan_seg_mode mode);

/* An FTS5 MATCH expression for a user query: the query's words (after the
 * same segmentation; for TRIGRAM, overlapping trigrams of CJK runs and
 * words of 3 or more characters) as quoted strings joined by OR, at most
 * max_terms of them, duplicates dropped; English function words ("the",
 * "of", "how", ...) are left out unless the query has no other words.
 * Empty when the query has no words.
 * Returns false on OOM. */
bool yan_fts_query(yan_buf *out, const char *q, yan_seg_mode mode, int max_terms);

#endif /* YAN_RAG_CHUNK_H */
