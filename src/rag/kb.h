/* kb.h — a local knowledge base: documents, chunks, BM25 (SQLite FTS5) and
 * embedding vectors (HNSW) in one SQLite database, and retrieval over them.
 *
 * One knowledge base is one SQLite file (WAL mode) plus its vector index
 * saved beside it (<db>.hnsw: yan_hnsw's file with its checksum, stamped
 * with the generation of the vectors it holds; rebuilt from the stored
 * vectors when missing, damaged or stale). Tables (docs/RAG.md has the
 * schema): meta (settings, fixed at creation: chunk size and overlap, CJK
 * indexing, embedding model path/fingerprint/dim, the vector generation),
 * documents (absolute path, kind, content hash, size, modified time, pages),
 * chunks (document, ordinal, text, byte offsets in the extracted text, page,
 * heading path, tokens), chunks_fts (a contentless FTS5 index over the chunk
 * text, CJK runs rewritten as characters + bigrams so that Chinese is
 * searchable; porter + unicode61 for the rest) and vectors (chunk id, dim,
 * float32 blob; the model is the knowledge base's).
 *
 * Ingest (yan_kb_add): plain text, Markdown (headings kept as context),
 * HTML (libxml2, scripts and styles dropped), PDF (poppler-glib, page
 * numbers kept); directories recursively (hidden entries and unknown
 * extensions passed over). An unchanged file (same size and time, or same
 * content hash) is a no-op, a changed one is re-indexed, a file that cannot
 * be read (binary, empty, too large, damaged, encrypted, gone) is reported by
 * name and skipped. Each document is written in one transaction (after its
 * chunks are embedded), so a killed process leaves the database consistent
 * and the next add completes the work; readers (WAL) see whole documents.
 *
 * Retrieval (yan_kb_search): BM25 top-k, vector top-k (when the knowledge base
 * has an embedding model), and hybrid = reciprocal rank fusion (k = 60) of the
 * two; yan_kb_fuse fuses any number of ranked lists the same way (RAG-Fusion
 * fuses the lists of several rewrites of a question).
 *
 * Without an embedding model (none given at creation, or the recorded file
 * cannot be loaded) the knowledge base works with BM25 alone and says so once
 * through the log; chunks added meanwhile get their vectors on a later add.
 *
 * Thread-safety: each call on a handle holds the handle's mutex (one search or
 * add at a time per handle; open a handle per thread for parallel searches).
 * Many processes may open one knowledge base: writers take turns (SQLite's
 * write lock, waiting up to 30 s), readers never wait. */
#ifndef YAN_KB_H
#define YAN_KB_H

#include "yan.h"

typedef struct yan_kb yan_kb;

/* Progress of an ingest (yan_kb_add): files and bytes done of the total,
 * chunks written so far, the file at hand. phase is "ingest" while files are
 * read and written, "embed" while chunks added without vectors (an earlier
 * run without the model, or a model attached later) are embedded. */
typedef struct {
    int64_t files_done, files_total;
    int64_t bytes_done, bytes_total;
    int64_t chunks;
    const char *path;       /* may be NULL */
    const char *phase;
} yan_kb_progress;
/* Return false to stop: documents already written stay; yan_kb_add returns ABORTED. */
typedef bool (*yan_kb_progress_fn)(const yan_kb_progress *pr, void *ud);

typedef enum {
    YAN_KB_FILE_ADDED = 0,
    YAN_KB_FILE_UPDATED = 1,   /* changed since it was added: re-indexed */
    YAN_KB_FILE_UNCHANGED = 2, /* same size and time, or same content hash: nothing written */
    YAN_KB_FILE_FAILED = 3,    /* unreadable, binary, empty, too large, damaged, encrypted ... */
    YAN_KB_FILE_SKIPPED = 4,   /* in a directory walk: an unknown extension or a binary file without one */
    YAN_KB_FILE_REMOVED = 5,   /* under a directory being added, indexed before, gone from the disk now */
} yan_kb_file_result;
/* One call per file of a yan_kb_add; detail is the reason of a failure ("" otherwise). */
typedef void (*yan_kb_file_fn)(const char *path, yan_kb_file_result r, yan_status st, const char *detail, void *ud);

typedef struct {
    const char *embed_model;  /* GGUF embedding model (bert or a decoder); NULL = BM25 only, or the
                                 model recorded at creation */
    int chunk_tokens;         /* chunk size in tokens of the embedding model's (or a default) tokenizer; default 256 */
    int chunk_overlap;        /* tokens shared by consecutive chunks; default 32 */
    int n_threads;            /* 0 = all cores */
    bool progress;            /* progress bar on stderr for large ingests (when on_progress is NULL) */
    /* fields added after the first version of this header */
    int64_t max_file_bytes;   /* a larger file is refused as "too large"; 0 = 128 MiB */
    const char *cjk;          /* Chinese/Japanese BM25 indexing, fixed at creation: NULL = "unibigram"
                                 (characters and bigrams: the best measured recall, see docs/RAG.md);
                                 "bigram", "unigram", "trigram" (FTS5's trigram tokenizer) */
    bool must_exist;          /* NOT_FOUND instead of creating a missing knowledge base */
    yan_kb_progress_fn on_progress; /* may be NULL */
    void *progress_ud;
    yan_kb_file_fn on_file;   /* may be NULL: failures then go to the log (WARN, naming the file) */
    void *file_ud;
} yan_kb_params;

yan_kb_params yan_kb_params_default(void);

/* Open (creating when missing, unless p->must_exist) the knowledge base at
 * path (p may be NULL: defaults). The embedding model is recorded at creation
 * (a knowledge base created without one gets it on the first open that names
 * one); opening with another model is INVALID_ARG (the vectors would not be
 * comparable); the same model file moved elsewhere is accepted and recorded.
 * Chunk size, overlap and CJK indexing are the knowledge base's from its
 * creation on: later values in p are ignored. Errors: NOT_FOUND (must_exist),
 * FORMAT (not SQLite, or another application's database), UNSUPPORTED (a
 * newer schema), IO, and the model's load errors; a file this call created
 * is removed again on failure. */
yan_status yan_kb_open(const char *path, const yan_kb_params *p, yan_kb **out);
/* Close (NULL is a no-op); a vector index changed in memory and not yet
 * saved is saved first. */
void yan_kb_close(yan_kb *kb);

typedef struct {
    int64_t added, updated, unchanged, failed, chunks;
    int64_t skipped;         /* files a directory walk passed over */
    int64_t removed;         /* documents under an added directory whose files are gone */
    int64_t embedded;        /* chunks embedded (new ones and backfilled ones) */
} yan_kb_add_stats;

/* Add files or directories (recursively): adding a directory again also
 * removes the documents under it whose files were deleted. Per-file results go to
 * p->on_file (or, for failures without it, to the log at WARN, naming the
 * file) and are counted in st; the call fails only when the database itself
 * cannot be written (IO, NOMEM) or on_progress asked to stop (ABORTED: the
 * documents written so far stay). Chunks without vectors are embedded too
 * when the model is available, and the vector index is saved. */
yan_status yan_kb_add(yan_kb *kb, const char *const *paths, int n, yan_kb_add_stats *st);
/* Remove a document (by the path it was added with, relative paths resolved
 * as when adding), or every document under a folder. NOT_FOUND if none. */
yan_status yan_kb_remove(yan_kb *kb, const char *path);

typedef struct {
    int64_t doc_id;
    char *path;
    char *kind;             /* "text", "markdown", "html", "pdf" */
    int64_t n_chunks;
    int64_t bytes;
    int64_t mtime;
} yan_kb_doc;
/* All documents in path order (free with yan_kb_docs_free; bytes is the
 * file's size, mtime its modification time in unix seconds). */
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

/* Top k chunks for the query (k in 1..10000), best first, in one read
 * snapshot (a concurrent writer's half-done document is never seen). BM25:
 * the query's words (CJK segmented as indexed) ORed, FTS5 syntax taken as
 * words. VECTOR: the query embedded by the knowledge base's model, HNSW top
 * k by cosine. HYBRID: RRF of the vector and BM25 lists, each max(2k, 50)
 * deep. VECTOR without a loadable model is UNSUPPORTED; HYBRID then falls
 * back to BM25 and says so once through the log. An empty query (no words)
 * gives no hits. Free the hits with yan_kb_hits_free. */
yan_status yan_kb_search(yan_kb *kb, const char *query, yan_kb_mode mode, int k, yan_kb_hit **hits, int *n);
void yan_kb_hits_free(yan_kb_hit *hits, int n);

/* Vector search by an exhaustive scan of the stored vectors: exact cosine
 * top k (the oracle the HNSW index is tested against). UNSUPPORTED without
 * an embedding model. */
yan_status yan_kb_search_exact(yan_kb *kb, const char *query, int k, yan_kb_hit **hits, int *n);

/* Reciprocal rank fusion of n_lists ranked lists (score = sum 1/(60 + rank),
 * rank from 1), top k by chunk id; the hits are copied. A chunk twice in one
 * list counts once (at its best rank); ties go to the better single rank,
 * then the smaller chunk id. The copies keep the fields of the chunk's
 * best-ranked appearance, with score the fused one. */
yan_status yan_kb_fuse(yan_kb_hit *const *lists, const int *lens, int n_lists, int k, yan_kb_hit **out, int *n_out);

/* The recorded embedding model (its absolute path), or NULL for a BM25-only
 * knowledge base. Valid while the handle lives. */
const char *yan_kb_embed_model(const yan_kb *kb);

/* Counts and settings of a knowledge base. */
typedef struct {
    int64_t documents, chunks, vectors;
    int64_t text_bytes;       /* extracted text of all documents */
    int32_t chunk_tokens, chunk_overlap;
    int32_t embed_dim;        /* 0 without an embedding model */
    bool embed_available;     /* the recorded model file can be loaded */
    const char *cjk;          /* "unibigram", ... (static) */
} yan_kb_info;
yan_status yan_kb_info_get(yan_kb *kb, yan_kb_info *info);

/* Consistency check: SQLite's integrity_check and foreign_key_check, FTS5's
 * integrity-check, every document's chunk count, every chunk in the BM25
 * index and no posting of a removed one, every vector of the recorded
 * dimension. Takes the write lock briefly. FORMAT with the first
 * problem found in yan_last_error(), else OK. */
yan_status yan_kb_check(yan_kb *kb);

#endif /* YAN_KB_H */
