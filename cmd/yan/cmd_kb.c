/* cmd_kb.c — `yan kb`: a local knowledge base (one SQLite file) of text,
 * Markdown, HTML and PDF documents, searched by BM25, vectors or both
 * (reciprocal rank fusion). add / ls / rm / search / check, each a thin
 * shell over src/rag/kb.h; `ask` is cmd_kb_ask.c's. Exit status: 0 ok, 1 an error or (add) some files
 * failed while the others landed, 2 usage. */
#include "cmd.h"

#include "base/base.h"
#include "base/json.h"
#include "rag/kb.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

/* cmd_kb_ask.c: `yan kb ask`, reached from here with argv[0] = "ask" */
int yan_cmd_kb_ask(int argc, char **argv);

static void usage(FILE *f) {
    fprintf(f,
            "usage: yan kb add KB PATH...      add files and folders (recursively)\n"
            "       yan kb ls KB               list the documents\n"
            "       yan kb rm KB PATH...       remove documents (a folder: all under it)\n"
            "       yan kb search KB QUERY     the chunks that best match QUERY\n"
            "       yan kb check KB            consistency check of the database\n"
            "       yan kb ask KB QUESTION     an answer with citations (yan kb ask --help)\n\n"
            "KB is one file (SQLite, e.g. docs.kb), created by the first add; the vector\n"
            "index is kept beside it (KB.hnsw). Text, Markdown, HTML and PDF are read;\n"
            "a file added again unchanged is skipped, a changed one re-indexed, and a file\n"
            "that cannot be read is reported by name while the others are added.\n\n"
            "add options:\n"
            "  --embed-model MODEL  GGUF embedding model for vector search, recorded when the\n"
            "                       knowledge base is created (later adds and searches use it);\n"
            "                       without one the knowledge base is BM25 only\n"
            "  --chunk-tokens N     chunk size in tokens, at creation (default 256)\n"
            "  --chunk-overlap N    tokens shared by neighbouring chunks, at creation (default 32)\n"
            "  --max-file-size SIZE larger files are refused (default 128M; K, M, G suffixes)\n"
            "  --cjk MODE           Chinese/Japanese BM25 indexing at creation: unibigram\n"
            "                       (characters + bigrams, default), bigram, unigram, trigram\n"
            "  --threads N          threads for reading and embedding (default: all cores)\n"
            "  -v, --verbose        a line per file      -q, --quiet   no progress bar or notes\n"
            "search options:\n"
            "  --mode MODE          bm25, vector or hybrid (default hybrid: bm25 + vector fused\n"
            "                       by reciprocal rank; bm25 alone without an embedding model)\n"
            "  -k N                 number of chunks (default 5)\n"
            "  --full               the whole chunk text (default: the first 240 bytes)\n"
            "common: --json (add, ls, search, check print JSON)\n\n"
            "example: yan kb add docs.kb ~/manuals notes.md --embed-model bge-small.gguf\n"
            "         yan kb search docs.kb \"how do I reset the password\" -k 3\n");
}

typedef struct {
    bool json, quiet, verbose, full;
    const char *embed_model, *cjk, *mode;
    int chunk_tokens, chunk_overlap, threads, k;
    int64_t max_file;
    const char *kb;
    char **args;
    int n_args;
} kb_opts;

static int64_t parse_size(const char *opt, const char *v) {
    if (!v) {
        fprintf(stderr, "yan: %s needs a value\n", opt);
        exit(2);
    }
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    double mul = 1;
    if (*end == 'k' || *end == 'K') mul = 1024, end++;
    else if (*end == 'm' || *end == 'M') mul = 1024.0 * 1024, end++;
    else if (*end == 'g' || *end == 'G') mul = 1024.0 * 1024 * 1024, end++;
    if (*end == 'i' && end[-1] != *v) end++;
    if (*end == 'B' || *end == 'b') end++;
    if (errno || *end || !(x > 0) || x * mul > 9e18) {
        fprintf(stderr, "yan: %s: '%s' is not a size (e.g. 500K, 64M, 2G)\n", opt, v);
        exit(2);
    }
    return (int64_t)(x * mul);
}

/* Options anywhere after the subcommand; the rest are KB then arguments. */
static int parse(int argc, char **argv, kb_opts *o) {
    memset(o, 0, sizeof *o);
    o->chunk_tokens = 0;
    o->chunk_overlap = -1;
    o->k = 5;
    o->args = calloc((size_t)argc + 1, sizeof *o->args);
    if (!o->args) return 1;
    int n = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cmd_is_help(a)) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--json")) o->json = true;
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) o->quiet = true;
        else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) o->verbose = true;
        else if (!strcmp(a, "--full")) o->full = true;
        else if (!strcmp(a, "--embed-model") || !strcmp(a, "--cjk") || !strcmp(a, "--mode")) {
            if (!v) {
                fprintf(stderr, "yan: %s needs a value\n", a);
                return 2;
            }
            if (!strcmp(a, "--embed-model")) o->embed_model = v;
            else if (!strcmp(a, "--cjk")) o->cjk = v;
            else o->mode = v;
            i++;
        } else if (!strcmp(a, "--chunk-tokens")) o->chunk_tokens = cmd_int(a, v), i++;
        else if (!strcmp(a, "--chunk-overlap")) o->chunk_overlap = cmd_int(a, v), i++;
        else if (!strcmp(a, "--threads")) o->threads = cmd_int(a, v), i++;
        else if (!strcmp(a, "-k")) o->k = cmd_int(a, v), i++;
        else if (!strcmp(a, "--max-file-size")) o->max_file = parse_size(a, v), i++;
        else if (!strcmp(a, "--")) {
            for (i++; i < argc; i++) o->args[n++] = argv[i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "yan: kb: unknown option '%s' (see yan kb --help)\n", a);
            return 2;
        } else {
            o->args[n++] = argv[i];
        }
    }
    if (n < 1) {
        fprintf(stderr, "yan: kb: which knowledge base? (see yan kb --help)\n");
        return 2;
    }
    o->kb = o->args[0];
    o->args++;
    o->n_args = n - 1;
    return 0;
}

/* Library notes (BM25 only, index rebuilt, ...) and per-file warnings. */
static void log_sink(yan_log_level level, const char *msg, void *ud) {
    (void)ud;
    fprintf(stderr, "yan: %s%s\n", level >= YAN_LOG_WARN ? "warning: " : "", msg);
}

static yan_status open_kb(const kb_opts *o, bool create, yan_kb_params *p, yan_kb **kb) {
    if (!p->chunk_tokens) *p = yan_kb_params_default();
    p->embed_model = o->embed_model;
    if (o->chunk_tokens > 0) p->chunk_tokens = o->chunk_tokens;
    if (o->chunk_overlap >= 0) p->chunk_overlap = o->chunk_overlap;
    else if (p->chunk_overlap >= p->chunk_tokens) p->chunk_overlap = p->chunk_tokens / 8;
    p->n_threads = o->threads;
    p->max_file_bytes = o->max_file;
    p->cjk = o->cjk;
    p->must_exist = !create;
    return yan_kb_open(o->kb, p, kb);
}

/* ------------------------------------------------------------------ add */

typedef struct {
    const kb_opts *o;
    yan_buf failures; /* JSON array members */
} add_ud;

static const char *const RESULT_NAME[] = {"added", "updated", "unchanged", "failed", "skipped", "removed"};

static void on_file(const char *path, yan_kb_file_result r, yan_status st, const char *detail, void *ud) {
    add_ud *a = ud;
    if (r == YAN_KB_FILE_FAILED) {
        if (!a->o->json) fprintf(stderr, "yan: kb add: %s: %s\n", path, detail[0] ? detail : yan_status_str(st));
        if (a->failures.len) yan_buf_putc(&a->failures, ',');
        yan_buf_puts(&a->failures, "{\"path\":");
        yan_json_write_string(&a->failures, path, strlen(path));
        yan_buf_puts(&a->failures, ",\"error\":");
        const char *e = detail[0] ? detail : yan_status_str(st);
        yan_json_write_string(&a->failures, e, strlen(e));
        yan_buf_putc(&a->failures, '}');
    } else if (a->o->verbose && !a->o->json) {
        fprintf(stderr, "%-9s %s%s%s\n", RESULT_NAME[r], path, detail[0] ? " : " : "", detail);
    }
}

static int cmd_add(const kb_opts *o) {
    if (o->n_args < 1) {
        fprintf(stderr, "yan: kb add: nothing to add (yan kb add KB PATH...)\n");
        return 2;
    }
    add_ud ud = {o, {0}};
    yan_kb_params p = yan_kb_params_default();
    p.progress = !o->quiet && !o->json && isatty(2);
    p.on_file = on_file;
    p.file_ud = &ud;
    yan_kb *kb;
    yan_status st = open_kb(o, true, &p, &kb);
    if (st) return cmd_fail("kb add", st);
    yan_kb_add_stats s;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    st = yan_kb_add(kb, (const char *const *)o->args, o->n_args, &s);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    const char *model = yan_kb_embed_model(kb);
    yan_kb_info info;
    yan_status ist = yan_kb_info_get(kb, &info);
    int rc = 0;
    if (st) rc = cmd_fail("kb add", st);
    else if (s.failed) rc = 1;
    if (o->json) {
        printf("{\"added\":%lld,\"updated\":%lld,\"unchanged\":%lld,\"failed\":%lld,\"skipped\":%lld,"
               "\"removed\":%lld,\"chunks\":%lld,\"embedded\":%lld,\"seconds\":%.3f,\"embed_model\":",
               (long long)s.added, (long long)s.updated, (long long)s.unchanged, (long long)s.failed,
               (long long)s.skipped, (long long)s.removed, (long long)s.chunks, (long long)s.embedded, secs);
        yan_buf b = {0};
        if (model) yan_json_write_string(&b, model, strlen(model));
        printf("%s,\"failures\":[%s]}\n", model ? b.data : "null", ud.failures.data ? ud.failures.data : "");
        yan_buf_free(&b);
    } else {
        printf("added %lld, updated %lld, unchanged %lld, failed %lld", (long long)s.added, (long long)s.updated,
               (long long)s.unchanged, (long long)s.failed);
        if (s.skipped) printf(", skipped %lld", (long long)s.skipped);
        if (s.removed) printf(", removed %lld (files gone)", (long long)s.removed);
        printf(" (%lld chunks", (long long)s.chunks);
        if (s.embedded) printf(", %lld embedded", (long long)s.embedded);
        printf(") in %.2f s\n", secs);
        if (!ist)
            printf("%s: %lld documents, %lld chunks, %lld vectors\n", o->kb, (long long)info.documents,
                   (long long)info.chunks, (long long)info.vectors);
    }
    yan_buf_free(&ud.failures);
    yan_kb_close(kb);
    return rc;
}

/* ------------------------------------------------------------------- ls */

static int cmd_ls(const kb_opts *o) {
    yan_kb_params p = yan_kb_params_default();
    yan_kb *kb;
    yan_status st = open_kb(o, false, &p, &kb);
    if (st) return cmd_fail("kb ls", st);
    yan_kb_doc *d = NULL;
    int64_t n = 0;
    yan_kb_info info;
    st = yan_kb_list(kb, &d, &n);
    if (!st) st = yan_kb_info_get(kb, &info);
    if (st) {
        yan_kb_close(kb);
        return cmd_fail("kb ls", st);
    }
    const char *model = yan_kb_embed_model(kb);
    if (o->json) {
        yan_buf b = {0};
        yan_buf_puts(&b, "{\"documents\":[");
        for (int64_t i = 0; i < n; i++) {
            yan_buf_printf(&b, "%s{\"id\":%lld,\"path\":", i ? "," : "", (long long)d[i].doc_id);
            yan_json_write_string(&b, d[i].path, strlen(d[i].path));
            yan_buf_printf(&b, ",\"kind\":\"%s\",\"chunks\":%lld,\"bytes\":%lld,\"mtime\":%lld}", d[i].kind,
                           (long long)d[i].n_chunks, (long long)d[i].bytes, (long long)d[i].mtime);
        }
        yan_buf_printf(&b, "],\"chunks\":%lld,\"vectors\":%lld,\"chunk_tokens\":%d,\"chunk_overlap\":%d,"
                           "\"cjk\":\"%s\",\"embed_dim\":%d,\"embed_model\":",
                       (long long)info.chunks, (long long)info.vectors, info.chunk_tokens, info.chunk_overlap,
                       info.cjk, info.embed_dim);
        if (model) yan_json_write_string(&b, model, strlen(model));
        else yan_buf_puts(&b, "null");
        yan_buf_puts(&b, "}");
        puts(b.data ? b.data : "{}");
        yan_buf_free(&b);
    } else {
        if (n) printf("%-8s %7s %11s  %-16s  %s\n", "kind", "chunks", "bytes", "modified", "path");
        for (int64_t i = 0; i < n; i++) {
            char when[32];
            time_t t = (time_t)d[i].mtime;
            struct tm tm;
            strftime(when, sizeof when, "%Y-%m-%d %H:%M", localtime_r(&t, &tm));
            printf("%-8s %7lld %11lld  %-16s  %s\n", d[i].kind, (long long)d[i].n_chunks, (long long)d[i].bytes, when,
                   d[i].path);
        }
        printf("%lld documents, %lld chunks (%d tokens, overlap %d), %lld vectors; ", (long long)n,
               (long long)info.chunks, info.chunk_tokens, info.chunk_overlap, (long long)info.vectors);
        if (model) printf("embedding model %s (%d dimensions%s)\n", model, info.embed_dim,
                          info.embed_available ? "" : "; NOT FOUND: BM25 only");
        else printf("no embedding model (BM25 only)\n");
    }
    yan_kb_docs_free(d, n);
    yan_kb_close(kb);
    return 0;
}

/* ------------------------------------------------------------------- rm */

static int cmd_rm(const kb_opts *o) {
    if (o->n_args < 1) {
        fprintf(stderr, "yan: kb rm: which documents? (yan kb rm KB PATH...)\n");
        return 2;
    }
    yan_kb_params p = yan_kb_params_default();
    yan_kb *kb;
    yan_status st = open_kb(o, false, &p, &kb);
    if (st) return cmd_fail("kb rm", st);
    int rc = 0;
    for (int i = 0; i < o->n_args; i++) {
        st = yan_kb_remove(kb, o->args[i]);
        if (st) rc = cmd_fail("kb rm", st);
        else if (!o->quiet) printf("removed %s\n", o->args[i]);
    }
    yan_kb_close(kb);
    return rc;
}

/* --------------------------------------------------------------- search */

static void put_line(const char *s, size_t max) {
    size_t n = strlen(s);
    bool cut = n > max;
    if (cut) n = yan_utf8_complete_prefix((const uint8_t *)s, max);
    bool sp = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n' || c == '\t' || c == '\r' || c == ' ') {
            sp = true;
            continue;
        }
        if (sp) putchar(' ');
        sp = false;
        putchar(c);
    }
    if (cut) fputs(" …", stdout);
}

static int cmd_search(const kb_opts *o) {
    if (o->n_args < 1) {
        fprintf(stderr, "yan: kb search: what to search for? (yan kb search KB QUERY)\n");
        return 2;
    }
    yan_kb_mode mode = YAN_KB_HYBRID;
    if (o->mode) {
        if (!strcmp(o->mode, "bm25")) mode = YAN_KB_BM25;
        else if (!strcmp(o->mode, "vector")) mode = YAN_KB_VECTOR;
        else if (!strcmp(o->mode, "hybrid")) mode = YAN_KB_HYBRID;
        else {
            fprintf(stderr, "yan: kb search: --mode '%s': use bm25, vector or hybrid\n", o->mode);
            return 2;
        }
    }
    if (o->k <= 0) {
        fprintf(stderr, "yan: kb search: -k must be at least 1\n");
        return 2;
    }
    /* the query: the arguments joined by spaces */
    yan_buf q = {0};
    for (int i = 0; i < o->n_args; i++) {
        if (i) yan_buf_putc(&q, ' ');
        yan_buf_puts(&q, o->args[i]);
    }
    yan_kb_params p = yan_kb_params_default();
    yan_kb *kb;
    yan_status st = open_kb(o, false, &p, &kb);
    if (st) {
        yan_buf_free(&q);
        return cmd_fail("kb search", st);
    }
    if (!o->mode && !yan_kb_embed_model(kb)) { /* the default mode of a BM25-only knowledge base */
        mode = YAN_KB_BM25;
        if (!o->quiet && !o->json) fprintf(stderr, "note: %s has no embedding model: BM25 search\n", o->kb);
    }
    yan_kb_hit *h = NULL;
    int n = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    st = yan_kb_search(kb, q.data ? q.data : "", mode, o->k, &h, &n);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-6;
    if (st) {
        yan_buf_free(&q);
        yan_kb_close(kb);
        return cmd_fail("kb search", st);
    }
    static const char *const MODE[] = {"bm25", "vector", "hybrid"};
    if (o->json) {
        yan_buf b = {0};
        yan_buf_puts(&b, "{\"query\":");
        yan_json_write_string(&b, q.data ? q.data : "", q.len);
        yan_buf_printf(&b, ",\"mode\":\"%s\",\"ms\":%.3f,\"hits\":[", MODE[mode], ms);
        for (int i = 0; i < n; i++) {
            yan_buf_printf(&b, "%s{\"rank\":%d,\"score\":%.6g,\"chunk_id\":%lld,\"doc_id\":%lld,\"path\":", i ? "," : "",
                           i + 1, (double)h[i].score, (long long)h[i].chunk_id, (long long)h[i].doc_id);
            yan_json_write_string(&b, h[i].path, strlen(h[i].path));
            yan_buf_printf(&b, ",\"page\":%d,\"heading\":", (int)h[i].page);
            if (h[i].heading) yan_json_write_string(&b, h[i].heading, strlen(h[i].heading));
            else yan_buf_puts(&b, "null");
            yan_buf_printf(&b, ",\"start\":%lld,\"end\":%lld,\"text\":", (long long)h[i].start, (long long)h[i].end);
            yan_json_write_string(&b, h[i].text, strlen(h[i].text));
            yan_buf_putc(&b, '}');
        }
        yan_buf_puts(&b, "]}");
        puts(b.data);
        yan_buf_free(&b);
    } else {
        if (!n) printf("no match for \"%s\"\n", q.data ? q.data : "");
        for (int i = 0; i < n; i++) {
            printf("%d. [%.4g] %s", i + 1, (double)h[i].score, h[i].path);
            if (h[i].page) printf("  p. %d", (int)h[i].page);
            if (h[i].heading) printf("  § %s", h[i].heading);
            printf("\n   ");
            put_line(h[i].text, o->full ? SIZE_MAX / 2 : 240);
            printf("\n");
        }
        if (!o->quiet) fprintf(stderr, "%s: %d hits in %.1f ms\n", MODE[mode], n, ms);
    }
    yan_kb_hits_free(h, n);
    yan_buf_free(&q);
    yan_kb_close(kb);
    return 0;
}

/* ---------------------------------------------------------------- check */

static int cmd_check(const kb_opts *o) {
    yan_kb_params p = yan_kb_params_default();
    yan_kb *kb;
    yan_status st = open_kb(o, false, &p, &kb);
    if (st) return cmd_fail("kb check", st);
    st = yan_kb_check(kb);
    yan_kb_info info;
    yan_status ist = st ? st : yan_kb_info_get(kb, &info);
    if (o->json) {
        yan_buf b = {0};
        yan_buf_printf(&b, "{\"ok\":%s", st ? "false" : "true");
        if (st) {
            yan_buf_puts(&b, ",\"error\":");
            yan_json_write_string(&b, yan_last_error(), strlen(yan_last_error()));
        } else if (!ist) {
            yan_buf_printf(&b, ",\"documents\":%lld,\"chunks\":%lld,\"vectors\":%lld", (long long)info.documents,
                           (long long)info.chunks, (long long)info.vectors);
        }
        yan_buf_putc(&b, '}');
        puts(b.data);
        yan_buf_free(&b);
    } else if (st) {
        cmd_fail("kb check", st);
    } else if (!ist) {
        printf("ok: %lld documents, %lld chunks, %lld vectors\n", (long long)info.documents, (long long)info.chunks,
               (long long)info.vectors);
    }
    yan_kb_close(kb);
    return st ? 1 : 0;
}

int yan_cmd_kb(int argc, char **argv) {
    if (argc < 2 || cmd_is_help(argv[1])) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "ask")) return yan_cmd_kb_ask(argc - 1, argv + 1);
    kb_opts o;
    int rc = parse(argc - 1, argv + 1, &o);
    if (rc) {
        free(o.args);
        return rc;
    }
    yan_log_set(log_sink, NULL, o.quiet || o.json ? YAN_LOG_WARN : YAN_LOG_INFO);
    if (!strcmp(sub, "add")) rc = cmd_add(&o);
    else if (!strcmp(sub, "ls") || !strcmp(sub, "list")) rc = cmd_ls(&o);
    else if (!strcmp(sub, "rm") || !strcmp(sub, "remove")) rc = cmd_rm(&o);
    else if (!strcmp(sub, "search")) rc = cmd_search(&o);
    else if (!strcmp(sub, "check")) rc = cmd_check(&o);
    else {
        fprintf(stderr, "yan: kb: unknown subcommand '%s' (add, ls, rm, search, check, ask)\n", sub);
        rc = 2;
    }
    free(o.args - (o.kb ? 1 : 0));
    return rc;
}
