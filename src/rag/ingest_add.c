/* ingest_add.c — yan_kb_add: files and folders into the knowledge base.
 *
 * The pipeline, in batches of 4 x threads files (or 256 MiB):
 *  1. look up (sequential): stat, size limit, the stored document; same size
 *     and modification time = unchanged, nothing read;
 *  2. prepare (parallel, yan_parallel_for): read, hash (same hash = only the
 *     time is updated), sniff, extract (ingest.c), chunk and segment
 *     (chunk.c) — no database access;
 *  3. write (sequential): embed the chunks, then one transaction per
 *     document (the old version out, the new one in, vec_gen bumped), the
 *     in-memory vector index following when it was current.
 * Then chunks without vectors are embedded (backfill) and the index saved.
 * A file that fails at any step is reported by name and skipped; the call
 * fails only when the database cannot be written.
 *
 * Dependencies: kb.c (kb_impl.h: the handle, database helpers, embedding,
 * index), ingest.c, chunk.c, base (threads, allocation). */
#include "rag/kb_impl.h"
#include "rag/ingest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int64_t count_tokens(void *ud, const char *s, size_t n) {
    const yan_tokenizer *tok = ud;
    int64_t r = yan_tokenize(tok, s, n, NULL, 0, 0);
    if (r == INT64_MIN) return yan_chunk_estimate(NULL, s, n);
    return r < 0 ? -r : r;
}

/* ------------------------------------------------------------- files */

typedef enum { J_PENDING, J_UNCHANGED, J_TOUCH, J_INGEST, J_FAILED, J_SKIP } jstate;

typedef struct {
    char *path;
    bool named;            /* given by the caller (not found by a walk) */
    yan_doc_kind kind;
    yan_kind_how how;
    int64_t old_id, old_size, old_mtime;
    char old_hash[40];
    int64_t size, mtime_ns;
    jstate state;
    yan_status err;
    char *msg;
    char hash[40];
    yan_doc doc;
    yan_chunk *ch;
    size_t n_ch;
    yan_buf seg;           /* segmented bodies, one after the other */
    size_t *seg_off;       /* (n_ch + 1) */
} job;

typedef struct {
    yan_kb *kb;
    yan_kb_add_stats *st;
    job *jobs;
    size_t n, cap;
    int64_t bytes_total, bytes_done, files_done;
    double t0, last_draw;
    bool bar_drawn, aborted;
    char **dirs;           /* the directories given (resolved) */
    size_t n_dirs;
} add_ctx;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void job_clear(job *j) {
    yan_free(j->msg);
    j->msg = NULL;
    yan_doc_free(&j->doc);
    yan_free(j->ch);
    j->ch = NULL;
    yan_buf_free(&j->seg);
    yan_free(j->seg_off);
    j->seg_off = NULL;
}

static void report(add_ctx *ac, const char *path, yan_kb_file_result r, yan_status s, const char *msg) {
    yan_kb *kb = ac->kb;
    switch (r) {
    case YAN_KB_FILE_ADDED: ac->st->added++; break;
    case YAN_KB_FILE_UPDATED: ac->st->updated++; break;
    case YAN_KB_FILE_UNCHANGED: ac->st->unchanged++; break;
    case YAN_KB_FILE_FAILED: ac->st->failed++; break;
    case YAN_KB_FILE_SKIPPED: ac->st->skipped++; break;
    case YAN_KB_FILE_REMOVED: ac->st->removed++; break;
    }
    if (kb->p.on_file) kb->p.on_file(path, r, s, msg ? msg : "", kb->p.file_ud);
    else if (r == YAN_KB_FILE_FAILED) yan_log(YAN_LOG_WARN, "%s: %s", path, msg ? msg : yan_status_str(s));
}

static void fail_job(job *j, yan_status s, const char *msg) {
    j->state = J_FAILED;
    j->err = s;
    yan_free(j->msg);
    j->msg = yan_strdup(msg && msg[0] ? msg : yan_status_str(s));
}

static bool add_job(add_ctx *ac, const char *path, bool named) {
    if (ac->n == ac->cap) {
        size_t cap = ac->cap ? ac->cap * 2 : 64;
        job *nj = yan_realloc(ac->jobs, cap * sizeof *nj);
        if (!nj) return false;
        ac->jobs = nj;
        ac->cap = cap;
    }
    job *j = &ac->jobs[ac->n];
    memset(j, 0, sizeof *j);
    if (!(j->path = yan_strdup(path))) return false;
    j->named = named;
    j->kind = yan_doc_kind_of(path, &j->how);
    ac->n++;
    return true;
}

/* The knowledge base's own files: the database, SQLite's -wal, -shm and
 * -journal, the index and the temporaries of atomic writes. */
static bool own_file(const yan_kb *kb, const char *path) {
    if (!kb->real) return false;
    size_t n = strlen(kb->real);
    if (strncmp(path, kb->real, n) != 0) return false;
    const char *rest = path + n;
    return !*rest || !strcmp(rest, "-wal") || !strcmp(rest, "-shm") || !strcmp(rest, "-journal") ||
           !strncmp(rest, ".hnsw", 5) || !strncmp(rest, ".tmp.", 5);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Files under dir, recursively, in name order; hidden entries and symbolic
 * links to directories (cycles) are passed over. */
static bool walk(add_ctx *ac, const char *dir, int depth) {
    if (depth > 64) return true;
    DIR *d = opendir(dir);
    if (!d) {
        char msg[256];
        snprintf(msg, sizeof msg, "cannot read the directory: %s", strerror(errno));
        report(ac, dir, YAN_KB_FILE_FAILED, YAN_ERR_IO, msg);
        return true;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    bool ok = true;
    struct dirent *e;
    while (ok && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **nn = yan_realloc(names, cap * sizeof *nn);
            if (!nn) {
                ok = false;
                break;
            }
            names = nn;
        }
        if (!(names[n] = yan_strdup(e->d_name))) ok = false;
        else n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    yan_buf p = {0};
    for (size_t i = 0; i < n && ok; i++) {
        p.len = 0;
        yan_buf_puts(&p, dir);
        if (p.len && p.data[p.len - 1] != '/') yan_buf_putc(&p, '/');
        yan_buf_puts(&p, names[i]);
        if (p.oom) {
            ok = false;
            break;
        }
        struct stat ls, sb;
        if (lstat(p.data, &ls) != 0) continue; /* gone already */
        if (stat(p.data, &sb) != 0) {
            if (S_ISLNK(ls.st_mode)) continue; /* dangling link */
            continue;
        }
        if (S_ISDIR(sb.st_mode)) {
            if (!S_ISLNK(ls.st_mode)) ok = walk(ac, p.data, depth + 1);
        } else if (S_ISREG(sb.st_mode) && !own_file(ac->kb, p.data)) {
            yan_kind_how how;
            yan_doc_kind_of(p.data, &how);
            if (how == YAN_KIND_UNKNOWN) report(ac, p.data, YAN_KB_FILE_SKIPPED, YAN_OK, "unknown extension");
            else ok = add_job(ac, p.data, false);
        }
    }
    yan_buf_free(&p);
    for (size_t i = 0; i < n; i++) yan_free(names[i]);
    yan_free(names);
    return ok;
}

/* "812 bytes", "3.4 KiB", "1.0 GiB" */
static const char *human_size(int64_t n, char out[32]) {
    static const char *const U[] = {"KiB", "MiB", "GiB", "TiB"};
    if (n < 1024) {
        snprintf(out, 32, "%lld bytes", (long long)n);
        return out;
    }
    double v = (double)n / 1024;
    int u = 0;
    while (v >= 1024 && u < 3) v /= 1024, u++;
    snprintf(out, 32, "%.1f %s", v, U[u]);
    return out;
}

/* Read a whole regular file of at most max bytes. */
static yan_status read_whole(const char *path, int64_t max, uint8_t **out, size_t *len, int64_t *mtime_ns) {
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return yan_fail(YAN_ERR_IO, "cannot open: %s", strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return yan_fail(YAN_ERR_IO, "not a regular file");
    }
    if (sb.st_size > max) {
        char a[32], b[32];
        close(fd);
        return yan_fail(YAN_ERR_UNSUPPORTED, "too large (%s; the limit is %s)", human_size(sb.st_size, a),
                        human_size(max, b));
    }
    *mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
    size_t cap = (size_t)sb.st_size + 1;
    uint8_t *buf = yan_malloc(cap);
    if (!buf) {
        close(fd);
        return yan_fail(YAN_ERR_NOMEM, "out of memory for %lld bytes", (long long)sb.st_size);
    }
    size_t n = 0;
    for (;;) {
        if (n == cap - 1) break; /* the file grew: take what it had when opened */
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            yan_free(buf);
            return yan_fail(YAN_ERR_IO, "read error: %s", strerror(e));
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *out = buf;
    *len = n;
    return YAN_OK;
}

static void hash_hex(const uint8_t *d, size_t n, char out[40]) {
    uint64_t a = yan_hash_bytes(d, n, 0x6b62a), b = yan_hash_bytes(d, n, 0x51ed27);
    snprintf(out, 40, "%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
}

typedef struct {
    add_ctx *ac;
    job *jobs;
    const yan_tokenizer *tok;
} prep_ctx;

/* Phase B of a batch (any thread): read, hash, extract, chunk, segment. */
static void prep_job(void *ud, int i) {
    prep_ctx *pc = ud;
    job *j = &pc->jobs[i];
    yan_kb *kb = pc->ac->kb;
    if (j->state != J_PENDING) return;
    uint8_t *data = NULL;
    size_t len = 0;
    yan_status st = read_whole(j->path, kb->p.max_file_bytes, &data, &len, &j->mtime_ns);
    if (st) {
        fail_job(j, st, yan_last_error());
        return;
    }
    j->size = (int64_t)len;
    hash_hex(data, len, j->hash);
    if (j->old_id && !strcmp(j->hash, j->old_hash)) {
        j->state = J_TOUCH;
        yan_free(data);
        return;
    }
    if (j->how == YAN_KIND_NOEXT && !j->named) {
        bool latin1;
        if (len == 0 || yan_text_sniff(data, len, &latin1)) { /* a binary file without an extension */
            j->state = J_SKIP;
            yan_free(data);
            return;
        }
    }
    st = yan_doc_extract(j->kind, data, len, &j->doc);
    yan_free(data);
    if (st) {
        fail_job(j, st, yan_last_error());
        return;
    }
    yan_chunk_params cp = {kb->chunk_tokens, kb->chunk_overlap, pc->tok ? count_tokens : NULL, (void *)pc->tok};
    st = yan_chunk_doc(&j->doc, &cp, &j->ch, &j->n_ch);
    if (!st && j->n_ch == 0) st = yan_fail(YAN_ERR_FORMAT, "no text");
    if (!st && !(j->seg_off = yan_malloc((j->n_ch + 1) * sizeof *j->seg_off)))
        st = yan_fail(YAN_ERR_NOMEM, "out of memory");
    for (size_t c = 0; !st && c < j->n_ch; c++) {
        j->seg_off[c] = j->seg.len;
        if (!yan_segment(&j->seg, j->doc.text.data + j->ch[c].start, j->ch[c].end - j->ch[c].start, kb->seg))
            st = yan_fail(YAN_ERR_NOMEM, "out of memory");
    }
    if (st) {
        fail_job(j, st, yan_last_error());
        return;
    }
    j->seg_off[j->n_ch] = j->seg.len;
    j->state = J_INGEST;
}

/* ----------------------------------------------------------- progress */

static bool progress(add_ctx *ac, const char *phase, const char *path, bool final) {
    yan_kb *kb = ac->kb;
    yan_kb_progress pr = {ac->files_done, (int64_t)ac->n, ac->bytes_done, ac->bytes_total, ac->st->chunks, path,
                          phase};
    if (kb->p.on_progress) {
        if (!kb->p.on_progress(&pr, kb->p.progress_ud)) ac->aborted = true;
        return !ac->aborted;
    }
    if (!kb->p.progress) return true;
    double t = now_s();
    /* large ingests only: after half a second, ten times a second */
    if (!final && (t - ac->t0 < 0.5 || t - ac->last_draw < 0.1)) return true;
    if (final && !ac->bar_drawn) return true;
    ac->last_draw = t;
    ac->bar_drawn = true;
    double f = !strcmp(phase, "embed") ? (pr.files_total ? (double)pr.files_done / (double)pr.files_total : 1)
                                      : (pr.bytes_total ? (double)pr.bytes_done / (double)pr.bytes_total : 1);
    if (f > 1) f = 1;
    char bar[31];
    int w = (int)(f * 30);
    for (int i = 0; i < 30; i++) bar[i] = i < w ? '=' : i == w ? '>' : ' ';
    bar[30] = 0;
    const char *name = path ? strrchr(path, '/') : NULL;
    name = name ? name + 1 : path ? path : "";
    fprintf(stderr, "\r%s [%s] %3d%% %lld/%lld %s  %.1f MB  %lld chunks  %-24.24s", phase, bar, (int)(f * 100),
            (long long)pr.files_done, (long long)pr.files_total, !strcmp(phase, "embed") ? "chunks" : "files",
            (double)pr.bytes_done / 1e6, (long long)pr.chunks, final ? "" : name);
    if (final) fputc('\n', stderr);
    fflush(stderr);
    return true;
}

/* ------------------------------------------------------------- writing */

/* Phase C: one document in one transaction. Embeddings are computed before
 * the transaction (the write lock is held only while writing). */
static yan_status write_job(add_ctx *ac, job *j) {
    yan_kb *kb = ac->kb;
    yan_status st = YAN_OK;
    float *vec = NULL;
    int dim = kb->embed_dim;
    if (yan_kbi_embed_ready(kb)) {
        size_t nb;
        if (yan_mul_ovf(j->n_ch, (size_t)dim * sizeof(float), &nb) || !(vec = yan_malloc(nb ? nb : 1)))
            return yan_fail(YAN_ERR_NOMEM, "out of memory");
        for (size_t c = 0; c < j->n_ch && !st; c++) {
            const yan_doc_section *sec = &j->doc.sec[j->ch[c].section];
            st = yan_kbi_embed_text(kb, sec->heading, j->doc.text.data + j->ch[c].start, j->ch[c].end - j->ch[c].start,
                            vec + c * (size_t)dim);
        }
        if (st) { /* the model failed on this text: the document goes in without vectors */
            yan_log(YAN_LOG_WARN, "%s: embedding failed (%s): added for BM25 only", j->path, yan_last_error());
            yan_free(vec);
            vec = NULL;
            st = YAN_OK;
        }
    }
    int64_t *del = NULL, *add = NULL;
    size_t n_del = 0, cap_del = 0;
    if (vec && !(add = yan_malloc((j->n_ch + 1) * sizeof *add))) {
        yan_free(vec);
        return yan_fail(YAN_ERR_NOMEM, "out of memory");
    }
    int64_t gen0 = 0;
    sqlite3_stmt *s;
    if ((st = yan_kbi_begin_write(kb))) goto out;
    if ((st = yan_kbi_read_gen(kb, &gen0))) goto out;
    /* the old version (looked up again: another writer may have replaced it) */
    int64_t old = 0;
    if (!(s = yan_kbi_stmt(kb, S_DOC_BY_PATH))) { st = YAN_ERR_IO; goto out; }
    sqlite3_bind_text(s, 1, j->path, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW) old = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (old) {
        if (!(s = yan_kbi_stmt(kb, S_VEC_OF_DOC))) { st = YAN_ERR_IO; goto out; }
        sqlite3_bind_int64(s, 1, old);
        while (sqlite3_step(s) == SQLITE_ROW) {
            if (n_del == cap_del) {
                cap_del = cap_del ? cap_del * 2 : 64;
                int64_t *nd = yan_realloc(del, cap_del * sizeof *nd);
                if (!nd) {
                    sqlite3_reset(s);
                    st = yan_fail(YAN_ERR_NOMEM, "out of memory");
                    goto out;
                }
                del = nd;
            }
            del[n_del++] = sqlite3_column_int64(s, 0);
        }
        sqlite3_reset(s);
        if ((st = yan_kbi_fts_delete_doc(kb, old))) goto out;
        if (!(s = yan_kbi_stmt(kb, S_DOC_DEL))) { st = YAN_ERR_IO; goto out; }
        sqlite3_bind_int64(s, 1, old);
        if ((st = yan_kbi_step(kb, s, "delete the old version"))) goto out;
    }
    if (!(s = yan_kbi_stmt(kb, S_DOC_INS))) { st = YAN_ERR_IO; goto out; }
    sqlite3_bind_text(s, 1, j->path, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, yan_doc_kind_name(j->kind), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, j->hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, j->size);
    sqlite3_bind_int64(s, 5, j->mtime_ns);
    sqlite3_bind_int64(s, 6, (int64_t)j->doc.text.len);
    sqlite3_bind_int64(s, 7, j->doc.n_pages);
    sqlite3_bind_int64(s, 8, (int64_t)j->n_ch);
    sqlite3_bind_int64(s, 9, (int64_t)time(NULL));
    if ((st = yan_kbi_step(kb, s, "insert the document"))) goto out;
    int64_t doc_id = sqlite3_last_insert_rowid(kb->db);
    for (size_t c = 0; c < j->n_ch; c++) {
        const yan_chunk *ch = &j->ch[c];
        const yan_doc_section *sec = &j->doc.sec[ch->section];
        if (!(s = yan_kbi_stmt(kb, S_CHUNK_INS))) { st = YAN_ERR_IO; goto out; }
        sqlite3_bind_int64(s, 1, doc_id);
        sqlite3_bind_int64(s, 2, (int64_t)c);
        sqlite3_bind_int64(s, 3, (int64_t)ch->start);
        sqlite3_bind_int64(s, 4, (int64_t)ch->end);
        sqlite3_bind_int(s, 5, sec->page);
        if (sec->heading) sqlite3_bind_text(s, 6, sec->heading, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 7, ch->tokens);
        sqlite3_bind_text(s, 8, j->doc.text.data + ch->start, (int)(ch->end - ch->start), SQLITE_STATIC);
        if ((st = yan_kbi_step(kb, s, "insert a chunk"))) goto out;
        int64_t cid = sqlite3_last_insert_rowid(kb->db);
        if (!(s = yan_kbi_stmt(kb, S_FTS_INS))) { st = YAN_ERR_IO; goto out; }
        sqlite3_bind_int64(s, 1, cid);
        sqlite3_bind_text(s, 2, j->seg.data + j->seg_off[c], (int)(j->seg_off[c + 1] - j->seg_off[c]), SQLITE_STATIC);
        if ((st = yan_kbi_step(kb, s, "index a chunk"))) goto out;
        if (vec) {
            if (!(s = yan_kbi_stmt(kb, S_VEC_INS))) { st = YAN_ERR_IO; goto out; }
            sqlite3_bind_int64(s, 1, cid);
            sqlite3_bind_int(s, 2, dim);
            sqlite3_bind_blob(s, 3, vec + c * (size_t)dim, dim * (int)sizeof(float), SQLITE_STATIC);
            if ((st = yan_kbi_step(kb, s, "insert a vector"))) goto out;
            add[c] = cid;
        }
    }
    bool vec_changed = vec || n_del;
    if (vec_changed && (st = yan_kbi_meta_set_int(kb, "vec_gen", gen0 + 1))) goto out;
    if ((st = yan_kbi_commit(kb))) goto out;
    ac->st->chunks += (int64_t)j->n_ch;
    if (vec) ac->st->embedded += (int64_t)j->n_ch;
    /* the in-memory index follows when it was current; else it is rebuilt later */
    if (vec_changed && kb->vi_loaded) {
        if (kb->vi_gen == gen0) {
            for (size_t i = 0; i < n_del; i++) yan_hnsw_delete(kb->hn, del[i]);
            bool ok = !vec || yan_hnsw_add_batch(kb->hn, add, vec, (int64_t)j->n_ch, kb->p.n_threads) == YAN_OK;
            kb->vi_gen = ok ? gen0 + 1 : -1;
        } else {
            kb->vi_gen = -1;
        }
        kb->vi_unsaved = true;
    }
out:
    if (st) yan_kbi_rollback(kb);
    yan_free(vec);
    yan_free(add);
    yan_free(del);
    return st;
}

/* Chunks without vectors (added while the model was unavailable, or before
 * it was attached) get them now, in transactions of 64. */
static yan_status backfill(add_ctx *ac) {
    yan_kb *kb = ac->kb;
    sqlite3_stmt *s = NULL;
    int64_t missing = 0;
    if (sqlite3_prepare_v2(kb->db, "SELECT count(*) FROM chunks c WHERE NOT EXISTS "
                                   "(SELECT 1 FROM vectors v WHERE v.chunk_id = c.id)", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        missing = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    if (missing == 0 || !yan_kbi_embed_ready(kb)) return YAN_OK;
    int dim = kb->embed_dim;
    enum { B = 64 };
    int64_t ids[B], last = 0, done = 0;
    float *vec = yan_malloc((size_t)B * (size_t)dim * sizeof(float));
    if (!vec) return yan_fail(YAN_ERR_NOMEM, "out of memory");
    yan_status st = YAN_OK;
    int64_t saved_done = ac->files_done, saved_total = (int64_t)ac->n;
    while (!st && !ac->aborted) {
        if (!(s = yan_kbi_stmt(kb, S_MISSING_VEC))) { st = YAN_ERR_IO; break; }
        sqlite3_bind_int64(s, 1, last);
        sqlite3_bind_int(s, 2, B);
        int n = 0, rc;
        while (!st && (rc = sqlite3_step(s)) == SQLITE_ROW) {
            ids[n] = sqlite3_column_int64(s, 0);
            const char *h = (const char *)sqlite3_column_text(s, 1);
            const char *t = (const char *)sqlite3_column_text(s, 2);
            int tl = sqlite3_column_bytes(s, 2);
            st = yan_kbi_embed_text(kb, h, t ? t : "", (size_t)tl, vec + (size_t)n * (size_t)dim);
            n++;
        }
        sqlite3_reset(s);
        if (st || n == 0) break;
        last = ids[n - 1];
        int64_t gen0;
        if ((st = yan_kbi_begin_write(kb)) || (st = yan_kbi_read_gen(kb, &gen0))) break;
        for (int i = 0; i < n && !st; i++) {
            if (!(s = yan_kbi_stmt(kb, S_VEC_INS_IF))) { st = YAN_ERR_IO; break; }
            sqlite3_bind_int64(s, 1, ids[i]);
            sqlite3_bind_int(s, 2, dim);
            sqlite3_bind_blob(s, 3, vec + (size_t)i * (size_t)dim, dim * (int)sizeof(float), SQLITE_STATIC);
            st = yan_kbi_step(kb, s, "insert a vector");
        }
        if (!st) st = yan_kbi_meta_set_int(kb, "vec_gen", gen0 + 1);
        if (!st) st = yan_kbi_commit(kb);
        if (st) {
            yan_kbi_rollback(kb);
            break;
        }
        ac->st->embedded += n;
        done += n;
        if (kb->vi_loaded) {
            /* a chunk deleted meanwhile would be missing from the table, not
             * from the index: rebuild rather than guess */
            kb->vi_gen = -1;
            kb->vi_unsaved = true;
        }
        ac->files_done = done;
        ac->n = (size_t)missing;
        progress(ac, "embed", NULL, false);
        ac->files_done = saved_done;
        ac->n = (size_t)saved_total;
    }
    yan_free(vec);
    return st;
}

/* Remove the documents stored under dir whose files no longer exist (a
 * file that exists but cannot be read stays: it may come back). */
static yan_status prune(add_ctx *ac, const char *dir) {
    yan_kb *kb = ac->kb;
    yan_buf prefix = {0}, gone = {0}; /* gone: NUL-separated paths */
    yan_buf_puts(&prefix, dir);
    if (!prefix.len || prefix.data[prefix.len - 1] != '/') yan_buf_putc(&prefix, '/');
    if (prefix.oom) return yan_fail(YAN_ERR_NOMEM, "out of memory");
    sqlite3_stmt *q = NULL;
    yan_status st = YAN_OK;
    if (sqlite3_prepare_v2(kb->db, "SELECT path FROM documents WHERE substr(path, 1, length(?1)) = ?1", -1, &q, NULL) != SQLITE_OK)
        st = yan_kbi_db_err(kb, "find documents");
    if (!st) {
        sqlite3_bind_text(q, 1, prefix.data, (int)prefix.len, SQLITE_STATIC);
        while (sqlite3_step(q) == SQLITE_ROW) {
            const char *p = (const char *)sqlite3_column_text(q, 0);
            struct stat sb;
            if (p && lstat(p, &sb) != 0 && (errno == ENOENT || errno == ENOTDIR)) {
                yan_buf_puts(&gone, p);
                yan_buf_putc(&gone, 0);
            }
        }
        if (gone.oom) st = yan_fail(YAN_ERR_NOMEM, "out of memory");
    }
    sqlite3_finalize(q);
    for (size_t off = 0; !st && off < gone.len; off += strlen(gone.data + off) + 1) {
        const char *p = gone.data + off;
        st = yan_kbi_remove_locked(kb, p, false); /* the index is saved once, at the end of the add */
        if (st == YAN_ERR_NOT_FOUND) st = YAN_OK; /* removed by another writer meanwhile */
        else if (!st) report(ac, p, YAN_KB_FILE_REMOVED, YAN_OK, "the file is gone");
    }
    yan_buf_free(&prefix);
    yan_buf_free(&gone);
    return st;
}

yan_status yan_kb_add(yan_kb *kb, const char *const *paths, int n, yan_kb_add_stats *stats) {
    yan_kb_add_stats dummy;
    if (!stats) stats = &dummy;
    memset(stats, 0, sizeof *stats);
    if (!kb || (n > 0 && !paths) || n < 0) return yan_fail(YAN_ERR_INVALID_ARG, "yan_kb_add: bad arguments");
    if (kb->read_only) return yan_fail(YAN_ERR_IO, "%s: opened read-only", kb->path);
    pthread_mutex_lock(&kb->mu);
    add_ctx ac = {.kb = kb, .st = stats, .t0 = now_s()};
    yan_status st = YAN_OK;
    /* 1. the files */
    for (int i = 0; i < n && !st; i++) {
        char *rp = yan_kbi_abs_path(paths[i]);
        struct stat sb;
        if (!rp || stat(rp, &sb) != 0) {
            char msg[256];
            snprintf(msg, sizeof msg, "cannot access: %s", strerror(errno));
            report(&ac, paths[i], YAN_KB_FILE_FAILED, YAN_ERR_IO, msg);
        } else if (S_ISDIR(sb.st_mode)) {
            char **nd = yan_realloc(ac.dirs, (ac.n_dirs + 1) * sizeof *nd);
            if (nd) ac.dirs = nd;
            if (!nd || !(ac.dirs[ac.n_dirs] = yan_strdup(rp))) st = yan_fail(YAN_ERR_NOMEM, "out of memory");
            else ac.n_dirs++;
            if (!st && !walk(&ac, rp, 0)) st = yan_fail(YAN_ERR_NOMEM, "out of memory listing files");
        } else if (!S_ISREG(sb.st_mode)) {
            report(&ac, paths[i], YAN_KB_FILE_FAILED, YAN_ERR_IO, "not a regular file");
        } else if (own_file(kb, rp)) {
            report(&ac, paths[i], YAN_KB_FILE_FAILED, YAN_ERR_INVALID_ARG, "the knowledge base's own file");
        } else if (!add_job(&ac, rp, true)) {
            st = yan_fail(YAN_ERR_NOMEM, "out of memory");
        }
        yan_free(rp);
    }
    /* a path given twice (or inside two given folders) is taken once */
    for (size_t i = 0; i < ac.n && !st; i++)
        for (size_t k = i + 1; k < ac.n; k++)
            if (ac.jobs[k].state == J_PENDING && !strcmp(ac.jobs[i].path, ac.jobs[k].path)) ac.jobs[k].state = J_SKIP;
    for (size_t i = 0; i < ac.n; i++) {
        struct stat sb;
        if (ac.jobs[i].state == J_PENDING && stat(ac.jobs[i].path, &sb) == 0) ac.bytes_total += sb.st_size;
    }
    /* 2. the model (its tokenizer also counts chunk tokens) and the index */
    bool emb = !st && yan_kbi_embed_ready(kb);
    if (!emb && kb->embed_path == NULL && !kb->noted_bm25 && ac.n) {
        kb->noted_bm25 = true;
        yan_log(YAN_LOG_INFO, "note: %s has no embedding model: BM25 search only (create it with an embedding model, "
                              "e.g. yan kb add --embed-model MODEL, for vector and hybrid search)", kb->path);
    }
    if (emb) {
        int64_t gen;
        st = yan_kbi_exec(kb, "BEGIN");
        if (!st) st = yan_kbi_read_gen(kb, &gen);
        if (!st) st = yan_kbi_index_ensure(kb, gen);
        yan_kbi_exec(kb, "COMMIT");
    }
    const yan_tokenizer *tok = emb ? yan_model_tokenizer(kb->model) : NULL;
    /* 3. batches: look up (sequential), prepare (parallel), write (sequential) */
    int threads = yan_threads_resolve(kb->p.n_threads);
    size_t batch_files = (size_t)threads * 4;
    const int64_t batch_bytes = (int64_t)256 << 20;
    for (size_t b0 = 0; b0 < ac.n && !st && !ac.aborted;) {
        size_t b1 = b0;
        int64_t bytes = 0;
        while (b1 < ac.n && (b1 == b0 || (b1 - b0 < batch_files && bytes < batch_bytes))) {
            job *j = &ac.jobs[b1++];
            if (j->state != J_PENDING) continue;
            struct stat sb;
            if (stat(j->path, &sb) != 0) {
                char msg[256];
                snprintf(msg, sizeof msg, "cannot access: %s", strerror(errno));
                fail_job(j, YAN_ERR_IO, msg);
                continue;
            }
            if (sb.st_size > kb->p.max_file_bytes) {
                char msg[160], a[32], b[32];
                snprintf(msg, sizeof msg, "too large (%s; the limit is %s)", human_size(sb.st_size, a),
                         human_size(kb->p.max_file_bytes, b));
                fail_job(j, YAN_ERR_UNSUPPORTED, msg);
                continue;
            }
            bytes += sb.st_size;
            sqlite3_stmt *s = yan_kbi_stmt(kb, S_DOC_BY_PATH);
            if (!s) {
                st = YAN_ERR_IO;
                break;
            }
            sqlite3_bind_text(s, 1, j->path, -1, SQLITE_STATIC);
            if (sqlite3_step(s) == SQLITE_ROW) {
                j->old_id = sqlite3_column_int64(s, 0);
                const char *h = (const char *)sqlite3_column_text(s, 1);
                snprintf(j->old_hash, sizeof j->old_hash, "%s", h ? h : "");
                j->old_size = sqlite3_column_int64(s, 2);
                j->old_mtime = sqlite3_column_int64(s, 3);
                int64_t mt = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
                if (j->old_size == (int64_t)sb.st_size && j->old_mtime == mt) j->state = J_UNCHANGED;
            }
            sqlite3_reset(s);
        }
        if (st) break;
        prep_ctx pc = {&ac, ac.jobs + b0, tok};
        yan_parallel_for(threads, (int)(b1 - b0), prep_job, &pc);
        for (size_t i = b0; i < b1 && !st; i++) {
            job *j = &ac.jobs[i];
            struct stat sb;
            int64_t fsize = stat(j->path, &sb) == 0 ? sb.st_size : 0;
            switch (j->state) {
            case J_UNCHANGED: report(&ac, j->path, YAN_KB_FILE_UNCHANGED, YAN_OK, NULL); break;
            case J_SKIP: report(&ac, j->path, YAN_KB_FILE_SKIPPED, YAN_OK, "binary"); break;
            case J_FAILED: report(&ac, j->path, YAN_KB_FILE_FAILED, j->err, j->msg); break;
            case J_TOUCH: {
                sqlite3_stmt *s = yan_kbi_stmt(kb, S_DOC_TOUCH);
                if (!s) {
                    st = YAN_ERR_IO;
                    break;
                }
                sqlite3_bind_int64(s, 1, j->old_id);
                sqlite3_bind_int64(s, 2, j->size);
                sqlite3_bind_int64(s, 3, j->mtime_ns);
                st = yan_kbi_step(kb, s, "update a document's time");
                if (!st) report(&ac, j->path, YAN_KB_FILE_UNCHANGED, YAN_OK, NULL);
                break;
            }
            case J_INGEST:
                st = write_job(&ac, j);
                if (!st) report(&ac, j->path, j->old_id ? YAN_KB_FILE_UPDATED : YAN_KB_FILE_ADDED, YAN_OK, NULL);
                break;
            case J_PENDING: break;
            }
            ac.files_done++;
            ac.bytes_done += fsize;
            job_clear(j);
            if (!st) progress(&ac, "ingest", j->path, false);
        }
        for (size_t i = b0; i < b1; i++) job_clear(&ac.jobs[i]);
        b0 = b1;
    }
    /* 4. documents under the given directories whose files are gone */
    for (size_t i = 0; i < ac.n_dirs && !st && !ac.aborted; i++) st = prune(&ac, ac.dirs[i]);
    /* 5. vectors for chunks that have none, then the index on disk */
    if (!st && emb && !ac.aborted) st = backfill(&ac);
    if (emb || kb->vi_loaded) {
        yan_status s2 = yan_kbi_index_sync(kb);
        if (!st && s2 == YAN_ERR_NOMEM) st = s2;
    }
    progress(&ac, "ingest", NULL, true);
    for (size_t i = 0; i < ac.n; i++) {
        job_clear(&ac.jobs[i]);
        yan_free(ac.jobs[i].path);
    }
    yan_free(ac.jobs);
    for (size_t i = 0; i < ac.n_dirs; i++) yan_free(ac.dirs[i]);
    yan_free(ac.dirs);
    if (!st && ac.aborted) st = yan_fail(YAN_ERR_ABORTED, "ingest stopped by the caller");
    pthread_mutex_unlock(&kb->mu);
    return st;
}
