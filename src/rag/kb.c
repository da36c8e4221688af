/* kb.c — the knowledge base: one SQLite database (WAL) with documents,
 * chunks, an FTS5 index and embedding vectors: opening and creating it, the
 * embedding model, the vector index kept beside the database, removal,
 * listing, BM25, vector and hybrid (RRF) retrieval, the consistency check.
 * Adding files is ingest_add.c's (sharing kb_impl.h). The contract is in
 * kb.h; the schema and the reasons behind it are in docs/RAG.md.
 *
 * Durability: each document is written in one transaction (old version
 * deleted, document, chunks, FTS rows and vectors inserted, the vector
 * generation bumped), so a killed process leaves either the old or the new
 * version; the next add finds the file changed (or absent) and completes the
 * work. Readers (WAL) never wait for a writer and see whole documents.
 *
 * The vector index: "<db>.hnsw" is a yan_hnsw index (src/rag/hnsw.c; its
 * file carries a checksum) stamped with the generation of the vectors it
 * holds. Every change to the vectors bumps meta.vec_gen in the same
 * transaction; an index file whose stamp, dimension or count differs, that
 * fails to load, or that is missing is rebuilt from the stored vectors (and
 * saved again). An exhaustive scan of the stored vectors
 * (yan_kb_search_exact) is the oracle the index is tested against.
 *
 * BM25: a contentless FTS5 table over the chunk text with CJK runs rewritten
 * by chunk.c's segmenter (characters + bigrams by default: measured, see
 * docs/RAG.md); removing a chunk hands FTS5 the same segmented text again.
 *
 * Thread-safety: a yan_kb handle serialises its calls with a mutex; use one
 * handle per thread for parallel searches. Several processes may share a
 * knowledge base: writers take turns (SQLite's write lock, 30 s busy wait).
 *
 * Dependencies: SQLite 3 (FTS5), chunk.c (CJK segmentation, queries),
 * hnsw.c (the vector index), the model API (yan_embed) for vectors. */
#include "rag/kb_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KB_APP_ID 0x79616E6B       /* "yank" in PRAGMA application_id */
#define KB_SCHEMA_VERSION 1
#define KB_BUSY_MS 30000
#define KB_DEFAULT_MAX_FILE ((int64_t)128 << 20)
#define KB_RRF_K 60
#define KB_MAX_QUERY_TERMS 64

/* ========================================================= exact search */

static float dot(const float *a, const float *b, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Keep the k best (score, id) in descending score order (ties: smaller id
 * first); *m is the count so far. */
static void topk_push(int64_t *ids, float *scores, int *m, int k, int64_t id, float s) {
    if (*m == k && (s < scores[k - 1] || (s == scores[k - 1] && id > ids[k - 1]))) return;
    int j = *m < k ? (*m)++ : k - 1;
    while (j > 0 && (scores[j - 1] < s || (scores[j - 1] == s && ids[j - 1] > id))) {
        scores[j] = scores[j - 1];
        ids[j] = ids[j - 1];
        j--;
    }
    scores[j] = s;
    ids[j] = id;
}

/* ================================================================ handle */

yan_kb_params yan_kb_params_default(void) {
    yan_kb_params p;
    memset(&p, 0, sizeof p);
    p.chunk_tokens = 256;
    p.chunk_overlap = 32;
    return p;
}

const char *yan_kb_embed_model(const yan_kb *kb) { return kb ? kb->embed_path : NULL; }

/* ------------------------------------------------------------- sqlite */

yan_status yan_kbi_db_err(yan_kb *kb, const char *what) {
    int rc = sqlite3_errcode(kb->db);
    yan_status s = rc == SQLITE_NOMEM ? YAN_ERR_NOMEM
                   : (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) ? YAN_ERR_FORMAT
                                                                   : YAN_ERR_IO;
    const char *hint = rc == SQLITE_FULL ? " (disk full)" : rc == SQLITE_BUSY ? " (another process holds the lock)" : "";
    return yan_fail(s, "%s: %s: %s%s", kb->path, what, sqlite3_errmsg(kb->db), hint);
}

yan_status yan_kbi_exec(yan_kb *kb, const char *sql) {
    char *msg = NULL;
    if (sqlite3_exec(kb->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        yan_status s = yan_kbi_db_err(kb, sql);
        sqlite3_free(msg);
        return s;
    }
    return YAN_OK;
}

static const char *const SQL[S_COUNT] = {
    [S_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [S_META_SET] = "INSERT INTO meta(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    [S_DOC_BY_PATH] = "SELECT id, hash, size, mtime_ns FROM documents WHERE path = ?1",
    [S_DOC_INS] = "INSERT INTO documents(path, kind, hash, size, mtime_ns, text_bytes, pages, n_chunks, added) "
                  "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [S_DOC_DEL] = "DELETE FROM documents WHERE id = ?1",
    [S_DOC_TOUCH] = "UPDATE documents SET size = ?2, mtime_ns = ?3 WHERE id = ?1",
    [S_CHUNK_INS] = "INSERT INTO chunks(doc_id, ord, start, end, page, heading, tokens, text) "
                    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [S_FTS_INS] = "INSERT INTO chunks_fts(rowid, body) VALUES(?1, ?2)",
    [S_VEC_INS] = "INSERT INTO vectors(chunk_id, dim, vec) VALUES(?1, ?2, ?3)",
    [S_VEC_OF_DOC] = "SELECT v.chunk_id FROM vectors v JOIN chunks c ON c.id = v.chunk_id WHERE c.doc_id = ?1",
    [S_BM25] = "SELECT rowid, bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ?1 ORDER BY rank, rowid LIMIT ?2",
    [S_HIT] = "SELECT c.doc_id, d.path, c.page, c.heading, c.text, c.start, c.end "
              "FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id = ?1",
    [S_VEC_ALL] = "SELECT chunk_id, dim, vec FROM vectors",
    [S_MISSING_VEC] = "SELECT c.id, c.heading, c.text FROM chunks c WHERE c.id > ?1 AND "
                      "NOT EXISTS (SELECT 1 FROM vectors v WHERE v.chunk_id = c.id) ORDER BY c.id LIMIT ?2",
    [S_CHUNKS_OF_DOC] = "SELECT id, text FROM chunks WHERE doc_id = ?1",
    [S_FTS_DEL] = "INSERT INTO chunks_fts(chunks_fts, rowid, body) VALUES('delete', ?1, ?2)",
    [S_VEC_INS_IF] = "INSERT INTO vectors(chunk_id, dim, vec) SELECT ?1, ?2, ?3 "
                     "WHERE EXISTS (SELECT 1 FROM chunks WHERE id = ?1) ON CONFLICT(chunk_id) DO NOTHING",
};

/* A cached, reset statement; NULL with the error set on failure. */
sqlite3_stmt *yan_kbi_stmt(yan_kb *kb, int which) {
    if (!kb->st[which] &&
        sqlite3_prepare_v3(kb->db, SQL[which], -1, SQLITE_PREPARE_PERSISTENT, &kb->st[which], NULL) != SQLITE_OK) {
        yan_kbi_db_err(kb, "prepare");
        return NULL;
    }
    sqlite3_reset(kb->st[which]);
    sqlite3_clear_bindings(kb->st[which]);
    return kb->st[which];
}

yan_status yan_kbi_step(yan_kb *kb, sqlite3_stmt *s, const char *what) {
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        yan_status st = yan_kbi_db_err(kb, what);
        sqlite3_reset(s);
        return st;
    }
    sqlite3_reset(s);
    return YAN_OK;
}

/* meta value as text (a new string, NULL when absent) */
static yan_status meta_get(yan_kb *kb, const char *key, char **out) {
    *out = NULL;
    sqlite3_stmt *s = yan_kbi_stmt(kb, S_META_GET);
    if (!s) return yan_fail(YAN_ERR_IO, "%s", yan_last_error());
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    yan_status st = YAN_OK;
    if (rc == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(s, 0);
        if (v && !(*out = yan_strdup(v))) st = yan_fail(YAN_ERR_NOMEM, "out of memory");
    } else if (rc != SQLITE_DONE) {
        st = yan_kbi_db_err(kb, "read meta");
    }
    sqlite3_reset(s);
    return st;
}

static int64_t meta_int(yan_kb *kb, const char *key, int64_t def) {
    char *v = NULL;
    if (meta_get(kb, key, &v) || !v) return def;
    int64_t r = strtoll(v, NULL, 10);
    yan_free(v);
    return r;
}

static yan_status meta_set(yan_kb *kb, const char *key, const char *value) {
    sqlite3_stmt *s = yan_kbi_stmt(kb, S_META_SET);
    if (!s) return YAN_ERR_IO;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
    return yan_kbi_step(kb, s, "write meta");
}

yan_status yan_kbi_meta_set_int(yan_kb *kb, const char *key, int64_t v) {
    char b[32];
    snprintf(b, sizeof b, "%lld", (long long)v);
    return meta_set(kb, key, b);
}

yan_status yan_kbi_begin_write(yan_kb *kb) { return yan_kbi_exec(kb, "BEGIN IMMEDIATE"); }
yan_status yan_kbi_commit(yan_kb *kb) { return yan_kbi_exec(kb, "COMMIT"); }
void yan_kbi_rollback(yan_kb *kb) {
    if (!sqlite3_get_autocommit(kb->db)) sqlite3_exec(kb->db, "ROLLBACK", NULL, NULL, NULL);
}

/* -------------------------------------------------------------- schema */

static const char *const SCHEMA =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;"
    "CREATE TABLE documents("
    "  id INTEGER PRIMARY KEY,"
    "  path TEXT NOT NULL UNIQUE,"       /* absolute, as resolved when added */
    "  kind TEXT NOT NULL,"              /* text, markdown, html, pdf */
    "  hash TEXT NOT NULL,"              /* 128-bit content hash of the file, hex */
    "  size INTEGER NOT NULL,"           /* file bytes */
    "  mtime_ns INTEGER NOT NULL,"       /* modification time, ns since the epoch */
    "  text_bytes INTEGER NOT NULL,"     /* extracted text */
    "  pages INTEGER NOT NULL,"          /* PDF pages, else 0 */
    "  n_chunks INTEGER NOT NULL,"
    "  added INTEGER NOT NULL);"         /* unix seconds */
    "CREATE TABLE chunks("
    "  id INTEGER PRIMARY KEY,"
    "  doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,"
    "  ord INTEGER NOT NULL,"            /* 0.. within the document */
    "  start INTEGER NOT NULL,"          /* byte offsets in the extracted text */
    "  end INTEGER NOT NULL,"
    "  page INTEGER NOT NULL,"           /* PDF page (1-based), else 0 */
    "  heading TEXT,"                    /* heading path, or NULL */
    "  tokens INTEGER NOT NULL,"
    "  text TEXT NOT NULL,"
    "  UNIQUE(doc_id, ord));"
    "CREATE TABLE vectors("
    "  chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,"
    "  dim INTEGER NOT NULL,"
    "  vec BLOB NOT NULL);";             /* dim little-endian float32, L2-normalised */

/* FTS5 table, keyed by chunk id (rowid): the chunk text with CJK runs
 * rewritten by yan_segment (or, for the trigram experiment, the raw text).
 * Contentless: the text is stored once, in chunks; removing a chunk from the
 * index hands FTS5 the same segmented text again ('delete'), so the
 * segmentation must not change under an index: its version is in meta
 * (seg_version) and a change rebuilds the index at open. */
#define KB_SEG_VERSION 1
static const char *fts_sql(yan_seg_mode m) {
    return m == YAN_SEG_TRIGRAM ? "CREATE VIRTUAL TABLE chunks_fts USING fts5(body, content = '', tokenize = 'trigram')"
                                : "CREATE VIRTUAL TABLE chunks_fts USING fts5(body, content = '', tokenize = "
                                  "'porter unicode61 remove_diacritics 2')";
}

/* Take a document's chunks out of the BM25 index (before the document row
 * goes: the chunks and vectors follow it by ON DELETE CASCADE). */
yan_status yan_kbi_fts_delete_doc(yan_kb *kb, int64_t doc_id) {
    sqlite3_stmt *q = yan_kbi_stmt(kb, S_CHUNKS_OF_DOC);
    if (!q) return YAN_ERR_IO;
    sqlite3_bind_int64(q, 1, doc_id);
    yan_buf seg = {0};
    yan_status st = YAN_OK;
    int rc;
    while (!st && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(q, 1);
        int tl = sqlite3_column_bytes(q, 1);
        seg.len = 0;
        if (!yan_segment(&seg, t ? t : "", (size_t)tl, kb->seg)) {
            st = yan_fail(YAN_ERR_NOMEM, "out of memory");
            break;
        }
        sqlite3_stmt *d = yan_kbi_stmt(kb, S_FTS_DEL);
        if (!d) {
            st = YAN_ERR_IO;
            break;
        }
        sqlite3_bind_int64(d, 1, sqlite3_column_int64(q, 0));
        sqlite3_bind_text(d, 2, seg.data ? seg.data : "", (int)seg.len, SQLITE_STATIC);
        st = yan_kbi_step(kb, d, "unindex a chunk");
    }
    if (!st && rc != SQLITE_DONE) st = yan_kbi_db_err(kb, "read chunks");
    sqlite3_reset(q);
    yan_buf_free(&seg);
    return st;
}

/* Index every chunk again (a new segmentation version): in the caller's
 * write transaction. */
static yan_status fts_rebuild(yan_kb *kb) {
    yan_status st = yan_kbi_exec(kb, "INSERT INTO chunks_fts(chunks_fts) VALUES('delete-all')");
    sqlite3_stmt *q = NULL;
    if (!st && sqlite3_prepare_v2(kb->db, "SELECT id, text FROM chunks", -1, &q, NULL) != SQLITE_OK)
        st = yan_kbi_db_err(kb, "read chunks");
    yan_buf seg = {0};
    while (!st && sqlite3_step(q) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(q, 1);
        seg.len = 0;
        if (!yan_segment(&seg, t ? t : "", (size_t)sqlite3_column_bytes(q, 1), kb->seg)) {
            st = yan_fail(YAN_ERR_NOMEM, "out of memory");
            break;
        }
        sqlite3_stmt *w = yan_kbi_stmt(kb, S_FTS_INS);
        if (!w) {
            st = YAN_ERR_IO;
            break;
        }
        sqlite3_bind_int64(w, 1, sqlite3_column_int64(q, 0));
        sqlite3_bind_text(w, 2, seg.data ? seg.data : "", (int)seg.len, SQLITE_STATIC);
        st = yan_kbi_step(kb, w, "index a chunk");
    }
    sqlite3_finalize(q);
    yan_buf_free(&seg);
    if (!st) st = yan_kbi_meta_set_int(kb, "seg_version", KB_SEG_VERSION);
    return st;
}

/* ------------------------------------------------------------- embedding */

/* Identity of a model file: size and hashes of its first and last MiB. */
static yan_status model_fingerprint(const char *path, char out[64]) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return yan_fail(YAN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return yan_fail(YAN_ERR_IO, "%s: cannot stat", path);
    }
    enum { W = 1 << 20 };
    uint8_t *buf = yan_malloc(W);
    if (!buf) {
        close(fd);
        return yan_fail(YAN_ERR_NOMEM, "out of memory");
    }
    uint64_t h = 0x666970;
    off_t offs[2] = {0, sb.st_size > W ? sb.st_size - W : 0};
    for (int i = 0; i < 2; i++) {
        ssize_t r = pread(fd, buf, W, offs[i]);
        if (r < 0) r = 0;
        h = yan_hash_bytes(buf, (size_t)r, h);
    }
    yan_free(buf);
    close(fd);
    snprintf(out, 64, "%lld:%016llx", (long long)sb.st_size, (unsigned long long)h);
    return YAN_OK;
}

static void embed_unload(yan_kb *kb) {
    yan_context_free(kb->ctx);
    yan_model_free(kb->model);
    kb->ctx = NULL;
    kb->model = NULL;
}

/* Load a model and a context sized for a chunk (plus its heading). */
static yan_status embed_load(yan_kb *kb, const char *path) {
    yan_model_params mp = yan_model_params_default();
    yan_status st = yan_model_load(path, &mp, &kb->model);
    if (st) return st;
    yan_context_params cp = yan_context_params_default();
    int32_t want = kb->chunk_tokens * 2 > 512 ? kb->chunk_tokens * 2 : 512;
    int32_t train = yan_model_n_ctx_train(kb->model);
    cp.n_ctx = train > 0 && train < want ? train : want;
    cp.n_threads = kb->p.n_threads;
    cp.kv_type = YAN_KV_F32;
    st = yan_context_new(kb->model, &cp, &kb->ctx);
    if (st) {
        yan_error_prefix(path);
        embed_unload(kb);
    }
    return st;
}

/* The model is loaded on first need. False (after saying so once) when the
 * knowledge base has none or the recorded file cannot be loaded. */
bool yan_kbi_embed_ready(yan_kb *kb) {
    if (kb->model) return true;
    if (!kb->embed_path) return false;
    if (kb->embed_tried) return false;
    kb->embed_tried = true;
    yan_status st = embed_load(kb, kb->embed_path);
    if (st) {
        yan_log(YAN_LOG_WARN, "%s: embedding model %s cannot be loaded (%s): BM25 only until it is back",
                kb->path, kb->embed_path, yan_last_error());
        return false;
    }
    if (yan_model_n_embd(kb->model) != kb->embed_dim) {
        yan_log(YAN_LOG_WARN, "%s: embedding model %s now has %d dimensions, the knowledge base %d: BM25 only",
                kb->path, kb->embed_path, yan_model_n_embd(kb->model), kb->embed_dim);
        embed_unload(kb);
        return false;
    }
    return true;
}

/* Embedding of "heading\n\ntext" (the heading gives a chunk its context);
 * tokens beyond the context are dropped. */
yan_status yan_kbi_embed_text(yan_kb *kb, const char *heading, const char *text, size_t len, float *out) {
    yan_buf b = {0};
    if (heading && heading[0]) {
        yan_buf_puts(&b, heading);
        yan_buf_puts(&b, "\n\n");
    }
    yan_buf_append(&b, text, len);
    if (b.oom) {
        yan_buf_free(&b);
        return yan_fail(YAN_ERR_NOMEM, "out of memory");
    }
    const yan_tokenizer *tok = yan_model_tokenizer(kb->model);
    yan_token *ids = NULL;
    size_t n = 0;
    yan_status st = yan_tokenize_alloc(tok, b.data ? b.data : "", b.len, YAN_TOKENIZE_ADD_BOS, &ids, &n);
    yan_buf_free(&b);
    if (st) return st;
    int32_t n_ctx = yan_context_n_ctx(kb->ctx);
    if (n > (size_t)n_ctx) n = (size_t)n_ctx;
    if (n == 0) {
        /* nothing to embed (a text of only ignored bytes): a zero vector ranks last */
        memset(out, 0, (size_t)kb->embed_dim * sizeof *out);
    } else {
        st = yan_embed(kb->ctx, ids, n, out, (size_t)kb->embed_dim);
    }
    yan_free_tokens(ids);
    return st;
}

/* ------------------------------------------------------------ open/close */

static void kb_free(yan_kb *kb) {
    if (!kb) return;
    for (int i = 0; i < S_COUNT; i++) sqlite3_finalize(kb->st[i]);
    if (kb->db) sqlite3_close_v2(kb->db);
    embed_unload(kb);
    yan_hnsw_free(kb->hn);
    yan_free(kb->path);
    yan_free(kb->real);
    yan_free(kb->index_path);
    yan_free(kb->embed_path);
    pthread_mutex_destroy(&kb->mu);
    yan_free(kb);
}

char *yan_kbi_abs_path(const char *p) {
    char *r = realpath(p, NULL);
    if (!r) return NULL;
    char *d = yan_strdup(r);
    free(r);
    return d;
}

/* Create the schema in a fresh database (inside the caller's transaction). */
static yan_status create_schema(yan_kb *kb, const yan_kb_params *p, yan_seg_mode seg) {
    yan_status st = yan_kbi_exec(kb, SCHEMA);
    if (!st) st = yan_kbi_exec(kb, fts_sql(seg));
    char sql[96];
    snprintf(sql, sizeof sql, "PRAGMA application_id = %d; PRAGMA user_version = %d", KB_APP_ID, KB_SCHEMA_VERSION);
    if (!st) st = yan_kbi_exec(kb, sql);
    if (!st) st = yan_kbi_meta_set_int(kb, "schema_version", KB_SCHEMA_VERSION);
    if (!st) st = yan_kbi_meta_set_int(kb, "created", (int64_t)time(NULL));
    if (!st) st = yan_kbi_meta_set_int(kb, "chunk_tokens", p->chunk_tokens > 0 ? p->chunk_tokens : 256);
    if (!st) st = yan_kbi_meta_set_int(kb, "chunk_overlap", p->chunk_overlap >= 0 ? p->chunk_overlap : 32);
    if (!st) st = meta_set(kb, "cjk", yan_seg_mode_name(seg));
    if (!st) st = yan_kbi_meta_set_int(kb, "seg_version", KB_SEG_VERSION);
    if (!st) st = yan_kbi_meta_set_int(kb, "vec_gen", 0);
    return st;
}

/* Record (or check) the embedding model given at open. */
static yan_status reconcile_model(yan_kb *kb, const char *given) {
    char fp[64];
    char *apath = yan_kbi_abs_path(given);
    if (!apath) return yan_fail(YAN_ERR_IO, "%s: cannot open the embedding model: %s", given, strerror(errno));
    yan_status st = model_fingerprint(apath, fp);
    char *rec_fp = NULL;
    if (!st) st = meta_get(kb, "embed_fingerprint", &rec_fp);
    if (st) goto out;
    if (kb->embed_path && rec_fp && strcmp(rec_fp, fp) != 0) {
        st = yan_fail(YAN_ERR_INVALID_ARG,
                      "%s was created with the embedding model %s (%d dimensions); %s is another model "
                      "and its vectors would not be comparable (make a new knowledge base for it)",
                      kb->path, kb->embed_path, kb->embed_dim, given);
        goto out;
    }
    st = embed_load(kb, apath);
    kb->embed_tried = true;
    if (st) goto out;
    int dim = yan_model_n_embd(kb->model);
    if (kb->embed_path && dim != kb->embed_dim) {
        st = yan_fail(YAN_ERR_INVALID_ARG, "%s: the embedding model has %d dimensions, the knowledge base %d",
                      given, dim, kb->embed_dim);
        goto out;
    }
    if (!kb->embed_path || strcmp(kb->embed_path, apath) != 0) {
        /* a new model (vectors of existing chunks are filled by the next add),
         * or the same model moved to another path */
        if (kb->read_only) {
            st = yan_fail(YAN_ERR_IO, "%s: read-only: cannot record the embedding model", kb->path);
            goto out;
        }
        st = yan_kbi_begin_write(kb);
        if (!st) st = meta_set(kb, "embed_model", apath);
        if (!st) st = meta_set(kb, "embed_fingerprint", fp);
        if (!st) st = yan_kbi_meta_set_int(kb, "embed_dim", dim);
        if (!st) st = yan_kbi_commit(kb);
        if (st) {
            yan_kbi_rollback(kb);
            goto out;
        }
        yan_free(kb->embed_path);
        kb->embed_path = apath;
        apath = NULL;
        kb->embed_dim = dim;
    }
out:
    yan_free(apath);
    yan_free(rec_fp);
    return st;
}

static yan_status kb_setup(yan_kb *kb, const yan_kb_params *p) {
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (p->must_exist ? 0 : SQLITE_OPEN_CREATE);
    if (sqlite3_open_v2(kb->path, &kb->db, flags, NULL) != SQLITE_OK) {
        if (kb->db && p->must_exist) { /* read-only media: searching still works */
            sqlite3_close_v2(kb->db);
            kb->db = NULL;
            if (sqlite3_open_v2(kb->path, &kb->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK)
                kb->read_only = true;
        }
        if (!kb->read_only) return kb->db ? yan_kbi_db_err(kb, "open") : yan_fail(YAN_ERR_NOMEM, "out of memory");
    }
    sqlite3_busy_timeout(kb->db, KB_BUSY_MS);
    if (sqlite3_db_readonly(kb->db, "main") == 1) kb->read_only = true; /* a write-protected file */
    /* is it ours? (this read fails on a file that is not SQLite) */
    sqlite3_stmt *s = NULL;
    int n_tables = -1, app_id = 0;
    if (sqlite3_prepare_v2(kb->db, "SELECT (SELECT count(*) FROM sqlite_master), (SELECT * FROM pragma_application_id)",
                           -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
        n_tables = sqlite3_column_int(s, 0);
        app_id = sqlite3_column_int(s, 1);
    }
    sqlite3_finalize(s);
    if (n_tables < 0) {
        int rc = sqlite3_errcode(kb->db);
        if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT)
            return yan_fail(YAN_ERR_FORMAT, "%s: not a knowledge base (not an SQLite database)", kb->path);
        return yan_kbi_db_err(kb, "open");
    }
    if (n_tables > 0 && app_id != KB_APP_ID)
        return yan_fail(YAN_ERR_FORMAT, "%s: an SQLite database, but not a yan knowledge base", kb->path);
    yan_status st;
    if (!kb->read_only) {
        if ((st = yan_kbi_exec(kb, "PRAGMA journal_mode = WAL"))) return st;
        if ((st = yan_kbi_exec(kb, "PRAGMA synchronous = NORMAL"))) return st;
    }
    if ((st = yan_kbi_exec(kb, "PRAGMA foreign_keys = ON"))) return st;
    if (n_tables == 0) {
        if (kb->read_only) return yan_fail(YAN_ERR_FORMAT, "%s: empty database (read-only)", kb->path);
        int seg = p->cjk ? yan_seg_mode_parse(p->cjk) : YAN_SEG_DEFAULT;
        if (seg < 0)
            return yan_fail(YAN_ERR_INVALID_ARG, "unknown CJK indexing '%s' (unibigram, bigram, unigram, trigram)", p->cjk);
        if ((st = yan_kbi_begin_write(kb))) return st;
        /* another process may have created it meanwhile */
        int again = 0;
        if (sqlite3_prepare_v2(kb->db, "SELECT count(*) FROM sqlite_master", -1, &s, NULL) == SQLITE_OK &&
            sqlite3_step(s) == SQLITE_ROW)
            again = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
        st = again ? YAN_OK : create_schema(kb, p, (yan_seg_mode)seg);
        if (!st) st = yan_kbi_commit(kb);
        if (st) {
            yan_kbi_rollback(kb);
            return st;
        }
    }
    int64_t ver = meta_int(kb, "schema_version", -1);
    if (ver != KB_SCHEMA_VERSION)
        return yan_fail(YAN_ERR_UNSUPPORTED, "%s: knowledge base schema version %lld; this yan reads version %d",
                        kb->path, (long long)ver, KB_SCHEMA_VERSION);
    kb->chunk_tokens = (int)meta_int(kb, "chunk_tokens", 256);
    kb->chunk_overlap = (int)meta_int(kb, "chunk_overlap", 32);
    char *cjk = NULL;
    if ((st = meta_get(kb, "cjk", &cjk))) return st;
    int seg = cjk ? yan_seg_mode_parse(cjk) : YAN_SEG_DEFAULT;
    yan_free(cjk);
    kb->seg = seg < 0 ? YAN_SEG_DEFAULT : (yan_seg_mode)seg;
    if ((st = meta_get(kb, "embed_model", &kb->embed_path))) return st;
    kb->embed_dim = (int)meta_int(kb, "embed_dim", 0);
    if (kb->chunk_tokens <= 0 || kb->chunk_overlap < 0 || (kb->embed_path && kb->embed_dim <= 0))
        return yan_fail(YAN_ERR_FORMAT, "%s: damaged settings in the meta table", kb->path);
    if (meta_int(kb, "seg_version", 0) != KB_SEG_VERSION && !kb->read_only) {
        /* written by a yan that segmented CJK text differently */
        yan_log(YAN_LOG_INFO, "%s: rebuilding the BM25 index for this version's text segmentation", kb->path);
        if ((st = yan_kbi_begin_write(kb))) return st;
        if (meta_int(kb, "seg_version", 0) != KB_SEG_VERSION) st = fts_rebuild(kb);
        if (!st) st = yan_kbi_commit(kb);
        if (st) {
            yan_kbi_rollback(kb);
            return st;
        }
    }
    kb->real = yan_kbi_abs_path(kb->path);
    if (p->embed_model) return reconcile_model(kb, p->embed_model);
    return YAN_OK;
}

yan_status yan_kb_open(const char *path, const yan_kb_params *p, yan_kb **out) {
    if (!out) return yan_fail(YAN_ERR_INVALID_ARG, "yan_kb_open: no output");
    *out = NULL;
    yan_kb_params def = yan_kb_params_default();
    if (!p) p = &def;
    if (!path || !path[0]) return yan_fail(YAN_ERR_INVALID_ARG, "yan_kb_open: no path");
    if (p->chunk_tokens < 0 || p->chunk_overlap < 0 || (p->chunk_tokens > 0 && p->chunk_overlap >= p->chunk_tokens))
        return yan_fail(YAN_ERR_INVALID_ARG, "chunk overlap (%d) must be smaller than the chunk size (%d)",
                        p->chunk_overlap, p->chunk_tokens);
    struct stat sb;
    bool existed = stat(path, &sb) == 0;
    if (!existed) {
        if (p->must_exist) return yan_fail(YAN_ERR_NOT_FOUND, "%s: no such knowledge base", path);
    } else if (S_ISDIR(sb.st_mode)) {
        return yan_fail(YAN_ERR_INVALID_ARG, "%s is a directory; a knowledge base is one file (e.g. docs.kb)", path);
    }
    yan_kb *kb = yan_calloc(1, sizeof *kb);
    if (!kb) return yan_fail(YAN_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&kb->mu, NULL);
    kb->p = *p;
    kb->p.embed_model = NULL;
    kb->p.cjk = NULL;
    if (kb->p.max_file_bytes <= 0) kb->p.max_file_bytes = KB_DEFAULT_MAX_FILE;
    kb->path = yan_strdup(path);
    size_t pl = strlen(path);
    kb->index_path = yan_malloc(pl + 6);
    if (!kb->path || !kb->index_path) {
        kb_free(kb);
        return yan_fail(YAN_ERR_NOMEM, "out of memory");
    }
    memcpy(kb->index_path, path, pl);
    memcpy(kb->index_path + pl, ".hnsw", 6);
    yan_status st = kb_setup(kb, p);
    if (st) {
        kb_free(kb);
        if (!existed) { /* created by this call (e.g. the model failed to load): leave nothing behind */
            static const char *const SUFFIX[] = {"", "-wal", "-shm", ".hnsw"};
            char *f = yan_malloc(strlen(path) + 8);
            for (int i = 0; f && i < 4; i++) {
                snprintf(f, strlen(path) + 8, "%s%s", path, SUFFIX[i]);
                unlink(f);
            }
            yan_free(f);
        }
        return st;
    }
    *out = kb;
    return YAN_OK;
}

static yan_status index_save(yan_kb *kb);

void yan_kb_close(yan_kb *kb) {
    if (!kb) return;
    if (kb->vi_loaded && kb->vi_unsaved && !kb->read_only) index_save(kb);
    kb_free(kb);
}

/* ========================================================== vector index */

yan_status yan_kbi_read_gen(yan_kb *kb, int64_t *gen) {
    char *v = NULL;
    yan_status st = meta_get(kb, "vec_gen", &v);
    *gen = v ? strtoll(v, NULL, 10) : 0;
    yan_free(v);
    return st;
}

static yan_status new_index(yan_kb *kb, yan_hnsw **out) {
    yan_hnsw_params hp = yan_hnsw_params_default(kb->embed_dim);
    hp.metric = YAN_HNSW_IP; /* the vectors are unit vectors: distance 1 - cosine */
    return yan_hnsw_create(&hp, out);
}

/* Read the stored vectors, calling fn(ud, id, vec) for each of the right
 * size (in the caller's transaction). */
static yan_status each_vector(yan_kb *kb, bool (*fn)(void *ud, int64_t id, const float *v), void *ud) {
    sqlite3_stmt *s = yan_kbi_stmt(kb, S_VEC_ALL);
    if (!s) return YAN_ERR_IO;
    float *x = yan_malloc((size_t)kb->embed_dim * sizeof *x + 1);
    if (!x) return yan_fail(YAN_ERR_NOMEM, "out of memory");
    int rc;
    int64_t bad = 0;
    yan_status st = YAN_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int dim = sqlite3_column_int(s, 1);
        const void *blob = sqlite3_column_blob(s, 2);
        if (dim != kb->embed_dim || sqlite3_column_bytes(s, 2) != dim * (int)sizeof(float) || !blob) {
            bad++;
            continue;
        }
        memcpy(x, blob, (size_t)dim * sizeof(float));
        if (!fn(ud, sqlite3_column_int64(s, 0), x)) {
            st = yan_fail(YAN_ERR_NOMEM, "out of memory");
            break;
        }
    }
    if (!st && rc != SQLITE_DONE) st = yan_kbi_db_err(kb, "read vectors");
    sqlite3_reset(s);
    yan_free(x);
    if (bad) yan_log(YAN_LOG_WARN, "%s: %lld vectors of the wrong size ignored", kb->path, (long long)bad);
    return st;
}

typedef struct {
    int64_t *ids;
    float *vec;
    int64_t n, cap;
    int dim;
} vec_list;

static bool collect_vec(void *ud, int64_t id, const float *v) {
    vec_list *l = ud;
    if (l->n == l->cap) {
        int64_t cap = l->cap ? l->cap * 2 : 1024;
        size_t vb;
        if (yan_mul_ovf((size_t)cap, (size_t)l->dim * sizeof(float), &vb)) return false;
        int64_t *ni = yan_realloc(l->ids, (size_t)cap * sizeof *ni);
        if (!ni) return false;
        l->ids = ni;
        float *nv = yan_realloc(l->vec, vb);
        if (!nv) return false;
        l->vec = nv;
        l->cap = cap;
    }
    l->ids[l->n] = id;
    memcpy(l->vec + (size_t)l->n * (size_t)l->dim, v, (size_t)l->dim * sizeof(float));
    l->n++;
    return true;
}

/* Rebuild the index from the vectors table (in the caller's transaction,
 * so that it matches generation gen). */
static yan_status index_rebuild(yan_kb *kb, int64_t gen) {
    vec_list l = {.dim = kb->embed_dim};
    yan_hnsw *h = NULL;
    yan_status st = each_vector(kb, collect_vec, &l);
    if (!st) st = new_index(kb, &h);
    if (!st && l.n) st = yan_hnsw_add_batch(h, l.ids, l.vec, l.n, kb->p.n_threads);
    yan_free(l.ids);
    yan_free(l.vec);
    if (st) {
        yan_hnsw_free(h);
        return st;
    }
    yan_hnsw_free(kb->hn);
    kb->hn = h;
    kb->vi_loaded = true;
    kb->vi_gen = gen;
    kb->vi_unsaved = true;
    return YAN_OK;
}

/* Make the in-memory index match generation gen: keep it, load the file, or
 * rebuild from the stored vectors (saying why). Runs inside a transaction. */
yan_status yan_kbi_index_ensure(yan_kb *kb, int64_t gen) {
    if (kb->vi_loaded && kb->vi_gen == gen) return YAN_OK;
    yan_hnsw *h = NULL;
    yan_status st = YAN_OK;
    struct stat sb;
    if (stat(kb->index_path, &sb) != 0) {
        if (gen > 0) /* (a knowledge base that never had vectors has no index file yet) */
            yan_log(YAN_LOG_INFO, "%s: missing: rebuilding the vector index from the stored vectors", kb->index_path);
    } else if ((st = yan_hnsw_load(kb->index_path, YAN_HNSW_KERNEL_AUTO, &h)) != YAN_OK) {
        if (st == YAN_ERR_NOMEM) return st;
        yan_log(YAN_LOG_WARN, "%s: rebuilding the vector index from the stored vectors", yan_last_error());
    } else {
        int64_t stored = -1;
        sqlite3_stmt *s = NULL;
        if (sqlite3_prepare_v2(kb->db, "SELECT count(*) FROM vectors", -1, &s, NULL) == SQLITE_OK &&
            sqlite3_step(s) == SQLITE_ROW)
            stored = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        const yan_hnsw_params *hp = yan_hnsw_get_params(h);
        if (yan_hnsw_stamp(h) == (uint64_t)gen && hp->dim == kb->embed_dim && hp->metric == YAN_HNSW_IP &&
            yan_hnsw_count(h) == stored) {
            yan_hnsw_free(kb->hn);
            kb->hn = h;
            kb->vi_loaded = true;
            kb->vi_gen = gen;
            kb->vi_unsaved = false;
            return YAN_OK;
        }
        yan_log(YAN_LOG_INFO, "%s: stale (generation %llu, %lld vectors; the database: %lld, %lld): rebuilding",
                kb->index_path, (unsigned long long)yan_hnsw_stamp(h), (long long)yan_hnsw_count(h), (long long)gen,
                (long long)stored);
        yan_hnsw_free(h);
    }
    return index_rebuild(kb, gen);
}

static yan_status index_save(yan_kb *kb) {
    if (yan_hnsw_deleted_share(kb->hn) > 0.25 && yan_hnsw_compact(kb->hn, kb->p.n_threads) != YAN_OK)
        return yan_fail(YAN_ERR_NOMEM, "out of memory compacting the vector index");
    yan_hnsw_set_stamp(kb->hn, (uint64_t)kb->vi_gen);
    yan_status st = yan_hnsw_save(kb->hn, kb->index_path);
    if (st) {
        yan_log(YAN_LOG_WARN, "%s: cannot save the vector index: %s", kb->index_path, yan_last_error());
        return st;
    }
    kb->vi_unsaved = false;
    return YAN_OK;
}

/* After writes: bring the in-memory index to the current generation (a
 * concurrent writer may have changed vectors too) and save it. */
yan_status yan_kbi_index_sync(yan_kb *kb) {
    if (!kb->vi_loaded) return YAN_OK;
    int64_t gen = 0;
    yan_status st = yan_kbi_exec(kb, "BEGIN");
    if (!st) st = yan_kbi_read_gen(kb, &gen);
    if (!st && gen != kb->vi_gen) st = index_rebuild(kb, gen);
    yan_kbi_exec(kb, "COMMIT");
    if (st) return st;
    return kb->vi_unsaved ? index_save(kb) : YAN_OK;
}

/* ============================================================== remove */

/* The stored form of a path: resolved when it exists, else made absolute
 * and cleaned ("a/./b/../c" -> "/cwd/a/c"). A new string. */
static char *stored_path(const char *p) {
    char *r = yan_kbi_abs_path(p);
    if (r) return r;
    yan_buf b = {0};
    if (p[0] != '/') {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof cwd)) yan_buf_puts(&b, cwd);
    }
    const char *s = p;
    while (*s) {
        while (*s == '/') s++;
        const char *e = s;
        while (*e && *e != '/') e++;
        size_t n = (size_t)(e - s);
        if (n == 0 || (n == 1 && s[0] == '.')) {
        } else if (n == 2 && s[0] == '.' && s[1] == '.') {
            while (b.len && b.data[b.len - 1] != '/') b.len--;
            if (b.len) b.len--;
        } else {
            yan_buf_putc(&b, '/');
            yan_buf_append(&b, s, n);
        }
        s = e;
    }
    if (!b.len) yan_buf_putc(&b, '/');
    if (b.oom) {
        yan_buf_free(&b);
        return NULL;
    }
    b.data[b.len] = 0;
    return b.data;
}

yan_status yan_kbi_remove_locked(yan_kb *kb, const char *sp, bool sync) {
    /* the document itself, or every document under a folder */
    size_t sl = strlen(sp);
    char *prefix = yan_malloc(sl + 2);
    sqlite3_stmt *q = NULL, *s;
    int64_t n_docs = 0, n_vec = 0, gen0 = 0;
    yan_status st = prefix ? YAN_OK : yan_fail(YAN_ERR_NOMEM, "out of memory");
    if (!st) {
        memcpy(prefix, sp, sl);
        prefix[sl] = sl && sp[sl - 1] == '/' ? 0 : '/';
        prefix[sl + 1] = 0;
    }
    bool have_index = kb->embed_path && kb->vi_loaded;
    if (!st) st = yan_kbi_begin_write(kb);
    if (!st) st = yan_kbi_read_gen(kb, &gen0);
    if (!st && sqlite3_prepare_v2(kb->db, "SELECT id FROM documents WHERE path = ?1 OR substr(path, 1, length(?2)) = ?2",
                                  -1, &q, NULL) != SQLITE_OK)
        st = yan_kbi_db_err(kb, "find documents");
    int64_t *ids = NULL;
    size_t n_ids = 0, cap_ids = 0;
    if (!st) { /* the ids first: rows are not deleted under a running SELECT */
        sqlite3_bind_text(q, 1, sp, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, prefix, -1, SQLITE_STATIC);
        while (!st && sqlite3_step(q) == SQLITE_ROW) {
            if (n_ids == cap_ids) {
                cap_ids = cap_ids ? cap_ids * 2 : 16;
                int64_t *ni = yan_realloc(ids, cap_ids * sizeof *ni);
                if (!ni) {
                    st = yan_fail(YAN_ERR_NOMEM, "out of memory");
                    break;
                }
                ids = ni;
            }
            ids[n_ids++] = sqlite3_column_int64(q, 0);
        }
    }
    for (size_t i = 0; i < n_ids && !st; i++) {
        int64_t id = ids[i];
        if ((s = yan_kbi_stmt(kb, S_VEC_OF_DOC))) {
            sqlite3_bind_int64(s, 1, id);
            while (sqlite3_step(s) == SQLITE_ROW) {
                n_vec++;
                if (have_index && kb->vi_gen == gen0) yan_hnsw_delete(kb->hn, sqlite3_column_int64(s, 0));
            }
            sqlite3_reset(s);
        }
        if ((st = yan_kbi_fts_delete_doc(kb, id))) break;
        if (!(s = yan_kbi_stmt(kb, S_DOC_DEL))) st = YAN_ERR_IO;
        else {
            sqlite3_bind_int64(s, 1, id);
            st = yan_kbi_step(kb, s, "delete a document");
        }
        n_docs++;
    }
    yan_free(ids);
    sqlite3_finalize(q);
    if (!st && n_vec) st = yan_kbi_meta_set_int(kb, "vec_gen", gen0 + 1);
    if (!st && n_docs == 0) st = yan_fail(YAN_ERR_NOT_FOUND, "%s: not in the knowledge base %s", sp, kb->path);
    if (!st) st = yan_kbi_commit(kb);
    if (st) {
        yan_kbi_rollback(kb);
        if (have_index && n_vec) kb->vi_gen = -1; /* deletes were applied to memory: rebuild */
    } else if (n_vec && kb->vi_loaded) {
        kb->vi_gen = kb->vi_gen == gen0 ? gen0 + 1 : -1;
        kb->vi_unsaved = true;
    }
    if (sync && !st && n_vec && kb->vi_loaded) yan_kbi_index_sync(kb);
    yan_free(prefix);
    return st;
}

yan_status yan_kb_remove(yan_kb *kb, const char *path) {
    if (!kb || !path) return yan_fail(YAN_ERR_INVALID_ARG, "yan_kb_remove: bad arguments");
    if (kb->read_only) return yan_fail(YAN_ERR_IO, "%s: opened read-only", kb->path);
    char *sp = stored_path(path);
    if (!sp) return yan_fail(YAN_ERR_NOMEM, "out of memory");
    pthread_mutex_lock(&kb->mu);
    yan_status st = yan_kbi_remove_locked(kb, sp, true);
    pthread_mutex_unlock(&kb->mu);
    yan_free(sp);
    return st;
}

/* ================================================================ list */

yan_status yan_kb_list(yan_kb *kb, yan_kb_doc **docs, int64_t *n) {
    if (!kb || !docs || !n) return yan_fail(YAN_ERR_INVALID_ARG, "yan_kb_list: bad arguments");
    *docs = NULL;
    *n = 0;
    pthread_mutex_lock(&kb->mu);
    sqlite3_stmt *s = NULL;
    yan_status st = YAN_OK;
    yan_kb_doc *v = NULL;
    int64_t cnt = 0, cap = 0;
    if (sqlite3_prepare_v2(kb->db, "SELECT id, path, kind, n_chunks, size, mtime_ns FROM documents ORDER BY path", -1,
                           &s, NULL) != SQLITE_OK)
        st = yan_kbi_db_err(kb, "list");
    int rc = SQLITE_DONE;
    while (!st && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 64;
            yan_kb_doc *nv = yan_realloc(v, (size_t)cap * sizeof *nv);
            if (!nv) {
                st = yan_fail(YAN_ERR_NOMEM, "out of memory");
                break;
            }
            v = nv;
        }
        yan_kb_doc *d = &v[cnt];
        d->doc_id = sqlite3_column_int64(s, 0);
        d->path = yan_strdup((const char *)sqlite3_column_text(s, 1));
        d->kind = yan_strdup((const char *)sqlite3_column_text(s, 2));
        d->n_chunks = sqlite3_column_int64(s, 3);
        d->bytes = sqlite3_column_int64(s, 4);
        d->mtime = sqlite3_column_int64(s, 5) / 1000000000;
        cnt++;
        if (!d->path || !d->kind) st = yan_fail(YAN_ERR_NOMEM, "out of memory");
    }
    if (!st && rc != SQLITE_DONE) st = yan_kbi_db_err(kb, "list");
    sqlite3_finalize(s);
    pthread_mutex_unlock(&kb->mu);
    if (st) {
        yan_kb_docs_free(v, cnt);
        return st;
    }
    *docs = v;
    *n = cnt;
    return YAN_OK;
}

void yan_kb_docs_free(yan_kb_doc *docs, int64_t n) {
    if (!docs) return;
    for (int64_t i = 0; i < n; i++) {
        yan_free(docs[i].path);
        yan_free(docs[i].kind);
    }
    yan_free(docs);
}

/* ============================================================== search */

void yan_kb_hits_free(yan_kb_hit *hits, int n) {
    if (!hits) return;
    for (int i = 0; i < n; i++) {
        yan_free(hits[i].path);
        yan_free(hits[i].heading);
        yan_free(hits[i].text);
    }
    yan_free(hits);
}

static bool hit_copy(yan_kb_hit *dst, const yan_kb_hit *src) {
    *dst = *src;
    dst->path = src->path ? yan_strdup(src->path) : NULL;
    dst->heading = src->heading ? yan_strdup(src->heading) : NULL;
    dst->text = src->text ? yan_strdup(src->text) : NULL;
    return (!src->path || dst->path) && (!src->heading || dst->heading) && (!src->text || dst->text);
}

typedef struct {
    int64_t chunk_id;
    int list, rank;       /* rank from 1 */
} rrf_ent;

static int cmp_rrf_id(const void *a, const void *b) {
    const rrf_ent *x = a, *y = b;
    if (x->chunk_id != y->chunk_id) return x->chunk_id < y->chunk_id ? -1 : 1;
    if (x->rank != y->rank) return x->rank - y->rank;
    return x->list - y->list;
}

typedef struct {
    int64_t chunk_id;
    double score;
    int best_rank, list, idx; /* where the hit with the best rank sits */
} rrf_sum;

static int cmp_rrf_score(const void *a, const void *b) {
    const rrf_sum *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->best_rank != y->best_rank) return x->best_rank - y->best_rank;
    return x->chunk_id < y->chunk_id ? -1 : x->chunk_id > y->chunk_id;
}

yan_status yan_kb_fuse(yan_kb_hit *const *lists, const int *lens, int n_lists, int k, yan_kb_hit **out, int *n_out) {
    if (!out || !n_out || n_lists < 0 || (n_lists > 0 && (!lists || !lens)) || k < 0)
        return yan_fail(YAN_ERR_INVALID_ARG, "yan_kb_fuse: bad arguments");
    *out = NULL;
    *n_out = 0;
    size_t total = 0;
    for (int l = 0; l < n_lists; l++) {
        if (lens[l] < 0 || (lens[l] > 0 && !lists[l])) return yan_fail(YAN_ERR_INVALID_ARG, "yan_kb_fuse: bad list");
        total += (size_t)lens[l];
    }
    rrf_ent *e = yan_malloc((total ? total : 1) * sizeof *e);
    rrf_sum *sum = yan_malloc((total ? total : 1) * sizeof *sum);
    if (!e || !sum) {
        yan_free(e);
        yan_free(sum);
        return yan_fail(YAN_ERR_NOMEM, "out of memory");
    }
    size_t m = 0;
    for (int l = 0; l < n_lists; l++)
        for (int r = 0; r < lens[l]; r++) e[m++] = (rrf_ent){lists[l][r].chunk_id, l, r + 1};
    qsort(e, m, sizeof *e, cmp_rrf_id);
    size_t ns = 0;
    for (size_t i = 0; i < m;) {
        size_t j = i;
        double s = 0;
        while (j < m && e[j].chunk_id == e[i].chunk_id) {
            /* a chunk listed twice in one list counts once, at its best rank */
            bool dup = false;
            for (size_t q = i; q < j; q++) dup = dup || e[q].list == e[j].list;
            if (!dup) s += 1.0 / (KB_RRF_K + e[j].rank);
            j++;
        }
        /* e[i] has the best rank (sorted by id, then rank) */
        sum[ns++] = (rrf_sum){e[i].chunk_id, s, e[i].rank, e[i].list, e[i].rank - 1};
        i = j;
    }
    qsort(sum, ns, sizeof *sum, cmp_rrf_score);
    size_t keep = ns < (size_t)k ? ns : (size_t)k;
    yan_kb_hit *h = yan_calloc(keep ? keep : 1, sizeof *h);
    yan_status st = h ? YAN_OK : yan_fail(YAN_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < keep && !st; i++) {
        if (!hit_copy(&h[i], &lists[sum[i].list][sum[i].idx])) {
            yan_kb_hits_free(h, (int)i + 1);
            h = NULL;
            st = yan_fail(YAN_ERR_NOMEM, "out of memory");
            break;
        }
        h[i].score = (float)sum[i].score;
    }
    yan_free(e);
    yan_free(sum);
    if (st) return st;
    *out = h;
    *n_out = (int)keep;
    return YAN_OK;
}

/* Fill a hit's fields from the chunk and document tables; false when the
 * chunk no longer exists. */
static yan_status hydrate(yan_kb *kb, int64_t id, float score, yan_kb_hit *h, bool *found) {
    *found = false;
    sqlite3_stmt *s = yan_kbi_stmt(kb, S_HIT);
    if (!s) return YAN_ERR_IO;
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s);
    yan_status st = YAN_OK;
    if (rc == SQLITE_ROW) {
        memset(h, 0, sizeof *h);
        h->chunk_id = id;
        h->doc_id = sqlite3_column_int64(s, 0);
        h->path = yan_strdup((const char *)sqlite3_column_text(s, 1));
        h->page = sqlite3_column_int(s, 2);
        const char *hd = (const char *)sqlite3_column_text(s, 3);
        h->heading = hd ? yan_strdup(hd) : NULL;
        const char *tx = (const char *)sqlite3_column_text(s, 4);
        h->text = yan_strdup(tx ? tx : "");
        h->start = sqlite3_column_int64(s, 5);
        h->end = sqlite3_column_int64(s, 6);
        h->score = score;
        *found = true;
        if (!h->path || !h->text || (hd && !h->heading)) st = yan_fail(YAN_ERR_NOMEM, "out of memory");
    } else if (rc != SQLITE_DONE) {
        st = yan_kbi_db_err(kb, "read a chunk");
    }
    sqlite3_reset(s);
    return st;
}

/* Ranked chunk ids (and scores) into a hit list. */
static yan_status hits_of(yan_kb *kb, const int64_t *ids, const float *scores, int n, yan_kb_hit **out, int *n_out) {
    *out = NULL;
    *n_out = 0;
    yan_kb_hit *h = yan_calloc(n > 0 ? (size_t)n : 1, sizeof *h);
    if (!h) return yan_fail(YAN_ERR_NOMEM, "out of memory");
    int m = 0;
    yan_status st = YAN_OK;
    for (int i = 0; i < n && !st; i++) {
        bool found;
        st = hydrate(kb, ids[i], scores[i], &h[m], &found);
        if (found) m++;
    }
    if (st) {
        yan_kb_hits_free(h, m);
        return st;
    }
    *out = h;
    *n_out = m;
    return YAN_OK;
}

static yan_status bm25_ids(yan_kb *kb, const char *query, int depth, int64_t *ids, float *scores, int *n) {
    *n = 0;
    yan_buf q = {0};
    if (!yan_fts_query(&q, query, kb->seg, KB_MAX_QUERY_TERMS)) {
        yan_buf_free(&q);
        return yan_fail(YAN_ERR_NOMEM, "out of memory");
    }
    yan_status st = YAN_OK;
    if (q.len) {
        sqlite3_stmt *s = yan_kbi_stmt(kb, S_BM25);
        if (!s) {
            yan_buf_free(&q);
            return YAN_ERR_IO;
        }
        sqlite3_bind_text(s, 1, q.data, (int)q.len, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, depth);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW && *n < depth) {
            ids[*n] = sqlite3_column_int64(s, 0);
            scores[*n] = (float)-sqlite3_column_double(s, 1); /* FTS5's bm25 is lower-is-better */
            (*n)++;
        }
        if (rc != SQLITE_DONE && rc != SQLITE_ROW) st = yan_kbi_db_err(kb, "BM25 search");
        sqlite3_reset(s);
    }
    yan_buf_free(&q);
    return st;
}

yan_status yan_kb_search(yan_kb *kb, const char *query, yan_kb_mode mode, int k, yan_kb_hit **hits, int *n) {
    if (!hits || !n) return yan_fail(YAN_ERR_INVALID_ARG, "yan_kb_search: no output");
    *hits = NULL;
    *n = 0;
    if (!kb || !query || k <= 0 || (mode != YAN_KB_BM25 && mode != YAN_KB_VECTOR && mode != YAN_KB_HYBRID))
        return yan_fail(YAN_ERR_INVALID_ARG, "yan_kb_search: bad arguments (k must be positive)");
    if (k > 10000) k = 10000;
    pthread_mutex_lock(&kb->mu);
    yan_status st = YAN_OK;
    float *qv = NULL;
    bool vec = mode != YAN_KB_BM25;
    if (vec && !yan_kbi_embed_ready(kb)) {
        if (mode == YAN_KB_VECTOR) {
            st = kb->embed_path ? yan_fail(YAN_ERR_UNSUPPORTED, "%s: the embedding model %s cannot be loaded: "
                                           "vector search is unavailable (use bm25)", kb->path, kb->embed_path)
                                : yan_fail(YAN_ERR_UNSUPPORTED, "%s has no embedding model: vector search is "
                                           "unavailable (use bm25, or create it with an embedding model)", kb->path);
            pthread_mutex_unlock(&kb->mu);
            return st;
        }
        if (!kb->noted_bm25) {
            kb->noted_bm25 = true;
            yan_log(YAN_LOG_INFO, "%s: no embedding model available: hybrid search falls back to BM25", kb->path);
        }
        vec = false;
        mode = YAN_KB_BM25;
    }
    if (vec) { /* embed the query before taking the read snapshot */
        qv = yan_malloc((size_t)kb->embed_dim * sizeof *qv);
        if (!qv) st = yan_fail(YAN_ERR_NOMEM, "out of memory");
        if (!st) st = yan_kbi_embed_text(kb, NULL, query, strlen(query), qv);
    }
    int depth = mode == YAN_KB_HYBRID ? (k * 2 > 50 ? k * 2 : 50) : k;
    int64_t *ids = yan_malloc((size_t)depth * 2 * sizeof *ids);
    float *sc = yan_malloc((size_t)depth * 2 * sizeof *sc);
    if (!st && (!ids || !sc)) st = yan_fail(YAN_ERR_NOMEM, "out of memory");
    int nb = 0, nv = 0;
    bool began = false;
    if (!st) began = !(st = yan_kbi_exec(kb, "BEGIN"));
    if (!st && mode != YAN_KB_VECTOR) st = bm25_ids(kb, query, depth, ids, sc, &nb);
    if (!st && vec) {
        int64_t gen;
        st = yan_kbi_read_gen(kb, &gen);
        if (!st) st = yan_kbi_index_ensure(kb, gen);
        if (!st) st = yan_hnsw_search(kb->hn, qv, depth, depth * 2 > 64 ? depth * 2 : 64, ids + depth, sc + depth, &nv);
        for (int i = 0; i < nv; i++) sc[depth + i] = 1.0f - sc[depth + i]; /* distance -> cosine */
    }
    yan_kb_hit *lb = NULL, *lv = NULL;
    int nlb = 0, nlv = 0;
    if (!st && mode != YAN_KB_VECTOR) st = hits_of(kb, ids, sc, nb, &lb, &nlb);
    if (!st && vec) st = hits_of(kb, ids + depth, sc + depth, nv, &lv, &nlv);
    if (began) yan_kbi_exec(kb, "COMMIT");
    if (!st) {
        if (mode == YAN_KB_HYBRID) {
            yan_kb_hit *const lists[2] = {lv, lb};
            const int lens[2] = {nlv, nlb};
            st = yan_kb_fuse(lists, lens, 2, k, hits, n);
        } else {
            /* the single list, cut to k */
            yan_kb_hit **src = mode == YAN_KB_VECTOR ? &lv : &lb;
            int *ns = mode == YAN_KB_VECTOR ? &nlv : &nlb;
            for (int i = k; i < *ns; i++) {
                yan_free((*src)[i].path);
                yan_free((*src)[i].heading);
                yan_free((*src)[i].text);
            }
            *hits = *src;
            *n = *ns < k ? *ns : k;
            *src = NULL;
            *ns = 0;
        }
    }
    yan_kb_hits_free(lb, nlb);
    yan_kb_hits_free(lv, nlv);
    /* an index rebuilt for this search is saved for the next one */
    if (!st && vec && kb->vi_unsaved && !kb->read_only) index_save(kb);
    yan_free(ids);
    yan_free(sc);
    yan_free(qv);
    pthread_mutex_unlock(&kb->mu);
    return st;
}

typedef struct {
    const float *q;
    int dim, k, m;
    int64_t *ids;
    float *scores;
} exact_ctx;

static bool exact_one(void *ud, int64_t id, const float *v) {
    exact_ctx *e = ud;
    topk_push(e->ids, e->scores, &e->m, e->k, id, dot(e->q, v, e->dim));
    return true;
}

yan_status yan_kb_search_exact(yan_kb *kb, const char *query, int k, yan_kb_hit **hits, int *n) {
    if (!hits || !n) return yan_fail(YAN_ERR_INVALID_ARG, "yan_kb_search_exact: no output");
    *hits = NULL;
    *n = 0;
    if (!kb || !query || k <= 0) return yan_fail(YAN_ERR_INVALID_ARG, "yan_kb_search_exact: bad arguments");
    pthread_mutex_lock(&kb->mu);
    yan_status st = yan_kbi_embed_ready(kb) ? YAN_OK
                                    : yan_fail(YAN_ERR_UNSUPPORTED, "%s: no embedding model available", kb->path);
    float *qv = st ? NULL : yan_malloc((size_t)kb->embed_dim * sizeof *qv);
    int64_t *ids = yan_malloc((size_t)k * sizeof *ids);
    float *sc = yan_malloc((size_t)k * sizeof *sc);
    if (!st && (!qv || !ids || !sc)) st = yan_fail(YAN_ERR_NOMEM, "out of memory");
    if (!st) st = yan_kbi_embed_text(kb, NULL, query, strlen(query), qv);
    exact_ctx e = {qv, kb->embed_dim, k, 0, ids, sc};
    bool began = false;
    if (!st) began = !(st = yan_kbi_exec(kb, "BEGIN"));
    if (!st) st = each_vector(kb, exact_one, &e);
    if (!st) st = hits_of(kb, ids, sc, e.m, hits, n);
    if (began) yan_kbi_exec(kb, "COMMIT");
    yan_free(qv);
    yan_free(ids);
    yan_free(sc);
    pthread_mutex_unlock(&kb->mu);
    return st;
}

/* =============================================================== info */

static int64_t count_of(yan_kb *kb, const char *sql) {
    sqlite3_stmt *s = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(kb->db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

yan_status yan_kb_info_get(yan_kb *kb, yan_kb_info *info) {
    if (!kb || !info) return yan_fail(YAN_ERR_INVALID_ARG, "yan_kb_info_get: bad arguments");
    memset(info, 0, sizeof *info);
    pthread_mutex_lock(&kb->mu);
    yan_status st = yan_kbi_exec(kb, "BEGIN");
    if (!st) {
        info->documents = count_of(kb, "SELECT count(*) FROM documents");
        info->chunks = count_of(kb, "SELECT count(*) FROM chunks");
        info->vectors = count_of(kb, "SELECT count(*) FROM vectors");
        info->text_bytes = count_of(kb, "SELECT coalesce(sum(text_bytes), 0) FROM documents");
        yan_kbi_exec(kb, "COMMIT");
        if (info->documents < 0 || info->chunks < 0 || info->vectors < 0) st = yan_kbi_db_err(kb, "count");
    }
    info->chunk_tokens = kb->chunk_tokens;
    info->chunk_overlap = kb->chunk_overlap;
    info->embed_dim = kb->embed_path ? kb->embed_dim : 0;
    info->cjk = yan_seg_mode_name(kb->seg);
    if (kb->embed_path) {
        if (kb->model) info->embed_available = true;
        else if (!kb->embed_tried) info->embed_available = access(kb->embed_path, R_OK) == 0;
    }
    pthread_mutex_unlock(&kb->mu);
    return st;
}

/* ============================================================== check */

static yan_status check_locked(yan_kb *kb) {
    sqlite3_stmt *s = NULL;
    yan_status st = YAN_OK;
    /* SQLite's own check */
    if (sqlite3_prepare_v2(kb->db, "PRAGMA integrity_check", -1, &s, NULL) != SQLITE_OK) return yan_kbi_db_err(kb, "integrity_check");
    if (sqlite3_step(s) != SQLITE_ROW) st = yan_kbi_db_err(kb, "integrity_check");
    else {
        const char *r = (const char *)sqlite3_column_text(s, 0);
        if (!r || strcmp(r, "ok") != 0) st = yan_fail(YAN_ERR_FORMAT, "%s: integrity_check: %s", kb->path, r ? r : "?");
    }
    sqlite3_finalize(s);
    if (st) return st;
    if (count_of(kb, "SELECT count(*) FROM pragma_foreign_key_check") != 0)
        return yan_fail(YAN_ERR_FORMAT, "%s: chunks or vectors point at missing rows (foreign_key_check)", kb->path);
    /* FTS5's check compares the index with its stored text */
    if (!kb->read_only &&
        sqlite3_exec(kb->db, "INSERT INTO chunks_fts(chunks_fts) VALUES('integrity-check')", NULL, NULL, NULL) != SQLITE_OK)
        return yan_fail(YAN_ERR_FORMAT, "%s: the BM25 index is damaged: %s", kb->path, sqlite3_errmsg(kb->db));
    int64_t bad = count_of(kb, "SELECT count(*) FROM documents d WHERE n_chunks != "
                               "(SELECT count(*) FROM chunks c WHERE c.doc_id = d.id)");
    if (bad != 0) return yan_fail(YAN_ERR_FORMAT, "%s: %lld documents with a wrong chunk count", kb->path, (long long)bad);
    bad = count_of(kb, "SELECT count(*) FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM chunks_fts f WHERE f.rowid = c.id)");
    if (bad != 0) return yan_fail(YAN_ERR_FORMAT, "%s: %lld chunks missing from the BM25 index", kb->path, (long long)bad);
    int64_t nf = count_of(kb, "SELECT count(*) FROM chunks_fts"), nc = count_of(kb, "SELECT count(*) FROM chunks");
    if (nf != nc)
        return yan_fail(YAN_ERR_FORMAT, "%s: the BM25 index has %lld rows for %lld chunks", kb->path, (long long)nf,
                        (long long)nc);
    /* every posting in the index belongs to a chunk (a stale posting would be
     * a match that no chunk backs) */
    if (sqlite3_exec(kb->db, "CREATE VIRTUAL TABLE IF NOT EXISTS temp.kb_vocab USING fts5vocab(main, chunks_fts, instance)",
                     NULL, NULL, NULL) == SQLITE_OK) {
        bad = count_of(kb, "SELECT count(*) FROM (SELECT DISTINCT doc FROM temp.kb_vocab) v "
                           "WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.id = v.doc)");
        sqlite3_exec(kb->db, "DROP TABLE temp.kb_vocab", NULL, NULL, NULL);
        if (bad != 0)
            return yan_fail(YAN_ERR_FORMAT, "%s: the BM25 index holds %lld removed chunks", kb->path, (long long)bad);
    }
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM vectors WHERE dim != %d OR length(vec) != %d", kb->embed_dim,
             kb->embed_dim * (int)sizeof(float));
    bad = count_of(kb, sql);
    if (bad != 0) return yan_fail(YAN_ERR_FORMAT, "%s: %lld vectors of the wrong size", kb->path, (long long)bad);
    return YAN_OK;
}

yan_status yan_kb_check(yan_kb *kb) {
    if (!kb) return yan_fail(YAN_ERR_INVALID_ARG, "yan_kb_check: no knowledge base");
    pthread_mutex_lock(&kb->mu);
    yan_status st = kb->read_only ? yan_kbi_exec(kb, "BEGIN") : yan_kbi_begin_write(kb);
    if (!st) {
        st = check_locked(kb);
        yan_kbi_rollback(kb);
    }
    pthread_mutex_unlock(&kb->mu);
    return st;
}
