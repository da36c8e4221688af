/* rag_eval.c — retrieval evaluation of a knowledge base (src/rag/kb.h,
 * answer.h): for each question of a JSONL file ({"question", "docs": [the
 * documents that answer it, relative paths]}), the documents ranked by each
 * retrieval method, and over all questions recall@K (the share of questions
 * with an answering document among the first K distinct documents) and MRR
 * (mean of 1 / the rank of the first answering document; 0 when it is not
 * among the first --depth chunks).
 *
 *   rag_eval --kb KB --questions Q.jsonl [--add DIR ...] [--embed-model M]
 *            [--methods bm25,vector,hybrid,fusion-bm25,fusion-hybrid] [--k 5] [--depth 50]
 *            [--fusion N] [--fusion-mode M] [--model M] [--limit N]
 *            [--threads N] [--json] [--verbose]
 *
 * --add ingests files or folders first (yan_kb_add; a new knowledge base is
 * created with --embed-model, when given, as its embedding model).
 *
 * Documents are ranked, not chunks: a hit's document is the first of the
 * question's docs that its path ends with ("/" + doc); each document counts
 * once, at its best chunk. "fusion" is RAG-Fusion as `yan kb ask --fusion N`
 * does it (yan_rag_retrieve): the model (--model, a chat GGUF) writes N
 * rewrites, the question and the rewrites are each searched with
 * --fusion-mode (default hybrid) and the lists are fused by RRF.
 * Output: a table, or with --json one object per method
 * {"method", "recall", "mrr", "k", "questions"} on one line each. */
#include "base/base.h"
#include "base/json.h"
#include "rag/answer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    char *question;
    char **docs;
    int n_docs;
} question;

static void die(const char *what) {
    fprintf(stderr, "rag_eval: %s: %s\n", what, yan_last_error());
    exit(1);
}

static question *load_questions(const char *path, int *n_out) {
    uint8_t *text = NULL;
    size_t len = 0;
    if (yan_read_file(path, &text, &len)) die(path);
    question *qs = NULL;
    int n = 0, cap = 0, line_no = 0;
    yan_arena a;
    yan_arena_init(&a, 1 << 16);
    for (char *p = (char *)text, *end = (char *)text + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
        line_no++;
        const yan_json *o = NULL;
        if (l > 0 && p[0] != '#') {
            yan_arena_reset(&a);
            yan_json *root;
            if (yan_json_parse(p, l, &a, &root)) {
                fprintf(stderr, "rag_eval: %s:%d: %s\n", path, line_no, yan_last_error());
                exit(1);
            }
            o = root;
        }
        p += l + 1;
        if (!o) continue;
        const char *q = yan_json_str(yan_json_get(o, "question"), NULL);
        const yan_json *docs = yan_json_get(o, "docs");
        if (!q || !yan_json_is(docs, YAN_JSON_ARRAY) || yan_json_len(docs) == 0) {
            fprintf(stderr, "rag_eval: %s:%d: needs \"question\" and a non-empty \"docs\" array\n", path, line_no);
            exit(1);
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            qs = realloc(qs, (size_t)cap * sizeof *qs);
            if (!qs) exit(1);
        }
        question *x = &qs[n++];
        x->question = strdup(q);
        x->n_docs = (int)yan_json_len(docs);
        x->docs = calloc((size_t)x->n_docs, sizeof *x->docs);
        for (int i = 0; i < x->n_docs; i++) {
            const char *d = yan_json_str(yan_json_at(docs, (size_t)i), NULL);
            x->docs[i] = strdup(d ? d : "");
        }
    }
    yan_arena_free(&a);
    yan_free(text);
    *n_out = n;
    return qs;
}

static bool ends_with_doc(const char *path, const char *doc) {
    size_t pl = strlen(path), dl = strlen(doc);
    if (pl < dl || strcmp(path + pl - dl, doc)) return false;
    return pl == dl || path[pl - dl - 1] == '/';
}

/* 1-based rank of the first answering document among the distinct
 * documents of hits, 0 when none. */
static int doc_rank(const question *q, const yan_kb_hit *hits, int n) {
    int64_t seen[256];
    int n_seen = 0;
    for (int i = 0; i < n; i++) {
        bool dup = false;
        for (int j = 0; j < n_seen && !dup; j++) dup = seen[j] == hits[i].doc_id;
        if (dup) continue;
        if (n_seen < 256) seen[n_seen++] = hits[i].doc_id;
        for (int d = 0; d < q->n_docs; d++)
            if (hits[i].path && ends_with_doc(hits[i].path, q->docs[d])) return n_seen;
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *kb_path = NULL, *qpath = NULL, *methods = "bm25,vector,hybrid,fusion", *model_path = NULL;
    const char *embed = NULL, *adds[16];
    int n_add = 0;
    int K = 5, depth = 50, fusion = 3, limit = 0, threads = 0;
    yan_kb_mode fusion_mode = YAN_KB_HYBRID;
    bool json = false, verbose = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--kb") && v) kb_path = v, i++;
        else if (!strcmp(a, "--questions") && v) qpath = v, i++;
        else if (!strcmp(a, "--methods") && v) methods = v, i++;
        else if (!strcmp(a, "--model") && v) model_path = v, i++;
        else if (!strcmp(a, "--embed-model") && v) embed = v, i++;
        else if (!strcmp(a, "--add") && v && n_add < 16) adds[n_add++] = v, i++;
        else if (!strcmp(a, "--k") && v) K = atoi(v), i++;
        else if (!strcmp(a, "--depth") && v) depth = atoi(v), i++;
        else if (!strcmp(a, "--fusion") && v) fusion = atoi(v), i++;
        else if (!strcmp(a, "--fusion-mode") && v) {
            if (!yan_rag_mode_parse(v, &fusion_mode)) {
                fprintf(stderr, "rag_eval: --fusion-mode must be bm25, vector or hybrid\n");
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--limit") && v) limit = atoi(v), i++;
        else if (!strcmp(a, "--threads") && v) threads = atoi(v), i++;
        else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) verbose = true;
        else {
            fprintf(stderr,
                    "usage: rag_eval --kb KB --questions Q.jsonl [--add DIR ...] [--embed-model M]\n"
                    "                [--methods bm25,vector,hybrid,fusion] [--k 5]\n"
                    "                [--depth 50] [--fusion N] [--fusion-mode M] [--model M] [--limit N]\n"
                    "                [--threads N] [--json] [--verbose]\n");
            return 2;
        }
    }
    if (!kb_path || !qpath || K < 1 || depth < K || fusion < 1 || fusion > YAN_RAG_MAX_FUSION) {
        fprintf(stderr, "rag_eval: --kb and --questions are required (and 1 <= k <= depth, 1 <= fusion <= 16)\n");
        return 2;
    }
    int n_all = 0;
    question *qs = load_questions(qpath, &n_all);
    int nq = limit > 0 && limit < n_all ? limit : n_all;
    yan_kb *kb = NULL;
    yan_kb_params kp = yan_kb_params_default();
    kp.n_threads = threads;
    kp.embed_model = embed;
    if (yan_kb_open(kb_path, &kp, &kb)) die(kb_path);
    if (n_add) {
        yan_kb_add_stats st;
        if (yan_kb_add(kb, adds, n_add, &st)) die("add");
        fprintf(stderr, "rag_eval: added %lld, updated %lld, unchanged %lld, failed %lld documents; %lld chunks\n",
                (long long)st.added, (long long)st.updated, (long long)st.unchanged, (long long)st.failed,
                (long long)st.chunks);
    }
    const char *em = yan_kb_embed_model(kb);

    yan_model *m = NULL;
    yan_context *ctx = NULL;
    yan_rag_ctx_llm cl = {0};
    yan_rag_llm llm = {0};
    if (strstr(methods, "fusion")) {
        if (!model_path) {
            fprintf(stderr, "rag_eval: the fusion method needs --model\n");
            return 2;
        }
        yan_model_params mp = yan_model_params_default();
        if (yan_model_load(model_path, &mp, &m)) die(model_path);
        yan_context_params cp = yan_context_params_default();
        int32_t t = yan_model_n_ctx_train(m);
        cp.n_ctx = t > 0 && t < 2048 ? t : 2048;
        cp.n_threads = threads;
        if (yan_context_new(m, &cp, &ctx)) die("context");
        cl = (yan_rag_ctx_llm){m, ctx, NULL, 1};
        llm = yan_rag_llm_context(&cl);
    }
    if (!json)
        printf("%-14s %8s%-2d %7s %9s %8s  (embedding model: %s)\n", "method", "recall@", K, "MRR", "questions",
               "seconds", em ? em : "none");
    char *list = strdup(methods), *save = NULL;
    for (char *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        /* bm25 | vector | hybrid | fusion (over --fusion-mode) | fusion-bm25 | fusion-vector | fusion-hybrid */
        int mi = -1;
        yan_kb_mode fmode = fusion_mode;
        yan_kb_mode pm;
        if (yan_rag_mode_parse(name, &pm)) {
            mi = (int)pm;
        } else {
            if (!strcmp(name, "fusion")) mi = 3;
            else if (!strncmp(name, "fusion-", 7) && yan_rag_mode_parse(name + 7, &fmode)) mi = 3;
            else {
                fprintf(stderr, "rag_eval: unknown method '%s'\n", name);
                return 2;
            }
        }
        bool needs_vec = mi == 1 || mi == 2 || (mi == 3 && fmode != YAN_KB_BM25);
        if (needs_vec && !em) {
            if (!json) printf("%-14s %10s %7s %9s  (no embedding model in the knowledge base)\n", name, "-", "-", "-");
            continue;
        }
        double hits_at_k = 0, rr = 0;
        struct timespec ts0, ts1;
        clock_gettime(CLOCK_MONOTONIC, &ts0);
        for (int i = 0; i < nq; i++) {
            yan_kb_hit *hits = NULL;
            int n = 0;
            yan_rag_result r;
            memset(&r, 0, sizeof r);
            if (mi < 3) {
                if (yan_kb_search(kb, qs[i].question, (yan_kb_mode)mi, depth, &hits, &n)) die("search");
            } else {
                yan_rag_params rp = yan_rag_params_default();
                rp.mode = fmode;
                rp.k = K;
                rp.candidates = depth;
                rp.fusion = fusion;
                if (yan_rag_retrieve(kb, &llm, qs[i].question, &rp, &r, &hits, &n)) die("retrieve");
            }
            int rank = doc_rank(&qs[i], hits, n);
            if (rank > 0 && rank <= K) hits_at_k += 1;
            if (rank > 0) rr += 1.0 / rank;
            if (verbose) {
                printf("%s\t%d\t%d\t%s\t%s", name, i + 1, rank, qs[i].docs[0], qs[i].question);
                for (int q = 1; q < r.n_queries; q++) printf("\t| %s", r.queries[q]);
                printf("\t-> %s\n", n ? hits[0].path : "(nothing)");
            }
            yan_kb_hits_free(hits, n);
            yan_rag_result_free(&r);
        }
        clock_gettime(CLOCK_MONOTONIC, &ts1);
        double secs = (double)(ts1.tv_sec - ts0.tv_sec) + 1e-9 * (double)(ts1.tv_nsec - ts0.tv_nsec);
        double recall = nq ? hits_at_k / nq : 0, mrr = nq ? rr / nq : 0;
        if (json)
            printf("{\"method\":\"%s\",\"recall\":%.4f,\"mrr\":%.4f,\"k\":%d,\"questions\":%d,"
                   "\"seconds\":%.2f}\n", name,
                   recall, mrr, K, nq, secs);
        else
            printf("%-14s %10.3f %7.3f %9d %8.1f\n", name, recall, mrr, nq, secs);
        fflush(stdout);
    }
    free(list);
    yan_context_free(ctx);
    yan_model_free(m);
    yan_kb_close(kb);
    for (int i = 0; i < n_all; i++) {
        free(qs[i].question);
        for (int d = 0; d < qs[i].n_docs; d++) free(qs[i].docs[d]);
        free(qs[i].docs);
    }
    free(qs);
    return 0;
}
