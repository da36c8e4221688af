/* kb_impl.h — what kb.c (the store, retrieval) and ingest_add.c (yan_kb_add:
 * files and folders into the store) share: the handle and the database
 * helpers. Private to src/rag; the contract is kb.h. Every function here is
 * called with the handle's mutex held. */
#ifndef YAN_RAG_KB_IMPL_H
#define YAN_RAG_KB_IMPL_H

#include "rag/chunk.h"
#include "rag/hnsw.h"
#include "rag/kb.h"
#include "base/base.h"

#include <pthread.h>
#include <sqlite3.h>

enum { /* cached statements (kb.c's SQL[]) */
    S_META_GET, S_META_SET, S_DOC_BY_PATH, S_DOC_INS, S_DOC_DEL, S_DOC_TOUCH, S_CHUNK_INS, S_FTS_INS, S_VEC_INS,
    S_VEC_OF_DOC, S_BM25, S_HIT, S_VEC_ALL, S_MISSING_VEC, S_VEC_INS_IF, S_CHUNKS_OF_DOC, S_FTS_DEL, S_COUNT
};

struct yan_kb {
    pthread_mutex_t mu;
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT];
    char *path;           /* as given */
    char *real;           /* realpath of the database (its own files are never ingested) */
    char *index_path;     /* <path>.hnsw */
    bool read_only;
    yan_kb_params p;      /* callbacks and limits; strings are not kept */
    int chunk_tokens, chunk_overlap;
    yan_seg_mode seg;
    /* embedding */
    char *embed_path;     /* recorded model path; NULL = BM25 only */
    int embed_dim;
    yan_model *model;
    yan_context *ctx;
    bool embed_tried;     /* a load was attempted (successful when model != NULL) */
    bool noted_bm25;      /* "BM25 only" said once */
    /* vector index (in memory) */
    yan_hnsw *hn;
    bool vi_loaded;
    int64_t vi_gen;       /* generation the in-memory index reflects */
    bool vi_unsaved;      /* differs from the file */
};


/* realpath as a yan_strdup'ed string; NULL (errno set) when it fails. */
char *yan_kbi_abs_path(const char *p);
/* "file: what: sqlite's message" as a yan_status (IO, FORMAT, NOMEM). */
yan_status yan_kbi_db_err(yan_kb *kb, const char *what);
/* Run SQL without results. */
yan_status yan_kbi_exec(yan_kb *kb, const char *sql);
/* A cached statement, reset and unbound; NULL (error set) on failure. */
sqlite3_stmt *yan_kbi_stmt(yan_kb *kb, int which);
/* Step a statement to its end (rows are ignored) and reset it. */
yan_status yan_kbi_step(yan_kb *kb, sqlite3_stmt *s, const char *what);
yan_status yan_kbi_meta_set_int(yan_kb *kb, const char *key, int64_t v);
yan_status yan_kbi_begin_write(yan_kb *kb); /* BEGIN IMMEDIATE: the write lock now */
yan_status yan_kbi_commit(yan_kb *kb);
void yan_kbi_rollback(yan_kb *kb);          /* when a transaction is open */
/* meta.vec_gen: bumped by every transaction that changes vectors. */
yan_status yan_kbi_read_gen(yan_kb *kb, int64_t *gen);
/* Take a document's chunks out of the contentless FTS5 index (before the
 * document row is deleted). */
yan_status yan_kbi_fts_delete_doc(yan_kb *kb, int64_t doc_id);
/* The embedding model loaded on first need; false (said once) without one. */
bool yan_kbi_embed_ready(yan_kb *kb);
/* embed_dim floats for "heading\n\ntext" (heading may be NULL). */
yan_status yan_kbi_embed_text(yan_kb *kb, const char *heading, const char *text, size_t len, float *out);
/* The in-memory index at generation gen (kept, loaded or rebuilt); in a transaction. */
yan_status yan_kbi_index_ensure(yan_kb *kb, int64_t gen);
/* After writes: the index brought to the current generation and saved. */
yan_status yan_kbi_index_sync(yan_kb *kb);
/* yan_kb_remove with kb->mu held and sp already the stored form of the path
 * (a document, or every document under a folder): one transaction. sync:
 * save the vector index afterwards (false when the caller saves it once
 * after many removals, as yan_kb_add does). */
yan_status yan_kbi_remove_locked(yan_kb *kb, const char *sp, bool sync);

#endif /* YAN_RAG_KB_IMPL_H */
