/* kb.h — a local knowledge base: documents, chunks, BM25 (SQLite FTS5) and
 * embedding vectors (HNSW) in one SQLite database, and retrieval over them.
 *
 * One knowledge base is one SQLite file (WAL mode) plus its vector index
 * saved beside it (<db>.hnsw, with a checksum; rebuilt from the stored
 * vectors when missing or stale). Tables: documents (path, content hash,
 * modified time, kind), chunks (document, ordinal, text, byte offsets, page or
 * heading path), an FTS5 index over the chunk text (with Chinese made
 * searchable), and vectors (chunk id, embedding model name, dim, floats).
 *
 * Ingest (yan_kb_add): plain text, Markdown (headings kept as context),
 * HTML (libxml2, scripts and styles dropped), PDF (poppler-glib, page
 * numbers kept); directories recursively. An unchanged file (same hash) is a
 * no-op, a changed one is re-indexed, a file that cannot be read is reported
 * by name and skipped. Each document is ingested in one transaction, so a
 * killed process leaves the database consistent.
 *
 * Retrieval (yan_kb_search): BM25 top-k, vector top-k (when the knowledge base
 * has an embedding model), and hybrid = reciprocal rank fusion (k = 60) of the
 * two; yan_kb_fuse fuses any number of ranked lists the same way (RAG-Fusion
 * fuses the lists of several rewrites of a question). */
#ifndef YAN_KB_H
#define YAN_KB_H

#include "yan.h"

typedef struct yan_kb yan_kb;

typedef struct {
    const char *embed_model;  /* GGUF embedding model (bert or a decoder); NULL = BM25 only */
    int chunk_tokens;         /* chunk size in tokens of the embedding model's (or a default) tokenizer; default 256 */
    int chunk_overlap;        /* tokens shared by consecutive chunks; default 32 */
    int n_threads;            /* 0 = all cores */
    bool progress;            /* progress bar on stderr for large ingests */
} yan_kb_params;

yan_kb_params yan_kb_params_default(void);

/* Open (creating when missing) the knowledge base at path. The embedding
 * model is recorded at creation; opening with another one is an error
 * (the vectors would not be comparable). */
yan_status yan_kb_open(const char *path, const yan_kb_params *p, yan_kb **out);
void yan_kb_close(yan_kb *kb);

typedef struct {
    int64_t added, updated, unchanged, failed, chunks;
} yan_kb_add_stats;

/* Add files or directories (recursively). Per-file errors are reported
 * through the log (yan_log, naming the file) and counted in failed; the call
 * fails only when the database itself cannot be written. */
yan_status yan_kb_add(yan_kb *kb, const char *const *paths, int n, yan_kb_add_stats *st);
/* Remove a document (by the path it was added with). NOT_FOUND if absent. */
yan_status yan_kb_remove(yan_kb *kb, const char *path);

typedef struct {
    int64_t doc_id;
    char *path;
    char *kind;             /* "text", "markdown", "html", "pdf" */
    int64_t n_chunks;
    int64_t bytes;
    int64_t mtime;
} yan_kb_doc;
/* All documents (free with yan_kb_docs_free). */
yan_status yan_kb_list(yan_kb *kb, yan_kb_doc **docs, int64_t *n);
void yan_kb_docs_free(yan_kb_doc *docs, int64_t n);

typedef enum { YAN_KB_BM25 = 0, YAN_KB_VECTOR = 1, YAN_KB_HYBRID = 2 } yan_kb_mode;

typedef struct {
    int64_t chunk_id;
    int64_t doc_id;
    char *path;             /* the document's path */
    int32_t page;           /* PDF page (1-based), 0 otherwise */
    char *heading;          /* Markdown/HTML heading path ("Install > Debian"), or NULL */
    char *text;             /* the chunk */
    int64_t start, end;     /* byte offsets in the document's extracted text */
    float score;            /* BM25 (higher is better), cosine, or fused RRF score */
} yan_kb_hit;

/* Top k chunks for the query. VECTOR and HYBRID need an embedding model
 * (without one, HYBRID falls back to BM25 and says so once through the log). */
yan_status yan_kb_search(yan_kb *kb, const char *query, yan_kb_mode mode, int k, yan_kb_hit **hits, int *n);
void yan_kb_hits_free(yan_kb_hit *hits, int n);

/* Reciprocal rank fusion of n_lists ranked lists (score = sum 1/(60 + rank),
 * rank from 1), top k by chunk id; the hits are copied. */
yan_status yan_kb_fuse(yan_kb_hit *const *lists, const int *lens, int n_lists, int k, yan_kb_hit **out, int *n_out);

/* Whether the knowledge base has an embedding model (and its name). */
const char *yan_kb_embed_model(const yan_kb *kb);

#endif /* YAN_KB_H */
