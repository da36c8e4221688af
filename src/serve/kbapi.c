/* kbapi.c — the knowledge base in `yan serve MODEL --kb KB` (see http.h):
 *  - POST /v1/kb/search {"query", "k", "mode", "fusion"} -> ranked chunks
 *    with path, page, heading, score, text and the injection screen's verdict;
 *  - POST /v1/kb/documents: an upload, as JSON {"name", "content"} or
 *    {"name", "content_base64"}, or as multipart/form-data (the first part
 *    with a filename), stored in the folder "uploads-<KB file name>" beside
 *    the knowledge base and ingested;
 *  - chat completions that name the knowledge base ("kb": true or an object
 *    of options, or "knowledge_base": "<name>") are answered from it: the
 *    last user message is the question, the retrieved sources (screened,
 *    delimited, marked as data: src/rag/answer.h) join the system rules and
 *    that message, and the response carries "citations" (the sources the
 *    answer cites as [n]) and "kb" (every source given, flagged chunks, the
 *    queries searched). Nothing relevant: the not-found sentence, without a
 *    model call.
 * The kb handle serialises its own calls (kb.h); a mutex here makes an
 * upload's file and its ingest one step. RAG-Fusion rewrites and the rerank's
 * judgements run as ordinary jobs on the scheduler. */
#include "serve/http.h"

#include "rag/answer.h"
#include "serve/sse.h"
#include "serve/upload.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#define KB_MAX_QUERY 4096  /* bytes of a search query */
#define KB_MAX_K 100
#define KB_WAIT_MS 50

struct hs_kb {
    yan_kb *kb;
    char *path;
    char *name;            /* the file name without its extension: "knowledge_base" matches it */
    char *docs_dir;        /* uploads: "uploads-<file name>" beside the knowledge base */
    char last_fail[256];   /* why the last file failed to ingest (on_file) */
    yan_moderator *own_mod; /* injection rules when the server has no moderator */
    pthread_mutex_t mu;
};

struct hs_kb_req {
    yan_rag_result r;      /* sources, flags, queries of this chat request */
};

/* ---------------------------------------------------------- life cycle */

/* Called by yan_kb_add for each file (under hs_kb.mu: uploads add one file). */
static void on_file(const char *path, yan_kb_file_result r, yan_status st, const char *detail, void *ud) {
    (void)path;
    hs_kb *h = ud;
    if (r == YAN_KB_FILE_FAILED)
        snprintf(h->last_fail, sizeof h->last_fail, "%s%s%s", yan_status_str(st), detail && detail[0] ? ": " : "",
                 detail ? detail : "");
}

yan_status hs_kb_open(yan_server *s) {
    hs_kb *h = yan_calloc(1, sizeof *h);
    if (!h) return yan_fail(YAN_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&h->mu, NULL);
    s->kb = h;
    const char *path = s->p.kb_path;
    h->path = yan_strdup(path);
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    const char *dot = strrchr(b, '.');
    h->name = yan_strndup(b, dot && dot != b ? (size_t)(dot - b) : strlen(b));
    yan_buf d = {0};
    yan_buf_printf(&d, "%.*suploads-%s", (int)(b - path), path, b);
    h->docs_dir = d.data;
    if (!h->path || !h->name || !h->docs_dir) return yan_fail(YAN_ERR_NOMEM, "out of memory");
    yan_kb_params kp = yan_kb_params_default();
    kp.embed_model = s->p.kb_embed_model;
    kp.n_threads = s->p.ep.n_threads;
    kp.on_file = on_file;
    kp.file_ud = h;
    yan_status st = yan_kb_open(path, &kp, &h->kb);
    if (st) {
        yan_error_prefix("--kb");
        return st;
    }
    if (!s->mod) {
        yan_moderator_params mp = yan_moderator_params_default();
        if ((st = yan_moderator_new(&mp, &h->own_mod))) return st;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kb", path);
    cJSON_AddStringToObject(o, "name", h->name);
    const char *em = yan_kb_embed_model(h->kb);
    if (em) cJSON_AddStringToObject(o, "embed_model", em);
    else cJSON_AddNullToObject(o, "embed_model");
    yan_slog_emit(&s->log, YAN_LOG_INFO, "kb_open", o);
    return YAN_OK;
}

void hs_kb_close(hs_kb *h) {
    if (!h) return;
    yan_kb_close(h->kb);
    yan_moderator_free(h->own_mod);
    pthread_mutex_destroy(&h->mu);
    yan_free(h->path);
    yan_free(h->name);
    yan_free(h->docs_dir);
    yan_free(h);
}

void hs_kb_req_free(conn *k) {
    if (!k->kbq) return;
    yan_rag_result_free(&k->kbq->r);
    yan_free(k->kbq);
    k->kbq = NULL;
}

static const yan_moderator *kb_moderator(const yan_server *s) { return s->mod ? s->mod : s->kb->own_mod; }

static enum MHD_Result no_kb(conn *k) {
    return hs_fail(k, 404, "invalid_request_error", "kb_not_configured", NULL,
                   "this server has no knowledge base (start it with --kb FILE)");
}

/* --------------------------------------------------- the LLM as jobs */

/* yan_rag_llm over the scheduler: one job per call, waited for on the
 * connection's thread (the client and the deadline are watched). */
/* Run msgs as one job and wait for it: *out is the finished job (release it
 * with yan_sched_release), logprobs = alternatives per token (-1 = off). */
static yan_status run_job(conn *k, const yan_chat_message *msgs, size_t n, int32_t max_tokens, float temperature,
                          int32_t logprobs, yan_job **out) {
    yan_server *s = k->srv;
    *out = NULL;
    int64_t need = yan_chat_format(s->model, s->p.chat_template, msgs, n, true, NULL, 0);
    if (need == INT64_MIN) return YAN_ERR_INVALID_ARG;
    size_t cap = need < 0 ? (size_t)-need : (size_t)need + 1;
    char *text = yan_malloc(cap);
    if (!text) return yan_fail(YAN_ERR_NOMEM, "out of memory");
    yan_chat_format(s->model, s->p.chat_template, msgs, n, true, text, cap);
    yan_job *j = yan_job_new(YAN_JOB_GEN, 1, 1);
    size_t nt = 0;
    yan_status st = j ? yan_tokenize_alloc(s->tok, text, strlen(text), YAN_TOKENIZE_SPECIAL | YAN_TOKENIZE_ADD_BOS,
                                           &j->prompts[0], &nt)
                      : yan_fail(YAN_ERR_NOMEM, "out of memory");
    yan_free(text);
    static const char *const TURN_END[] = {"<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "</s>"};
    if (!st && !yan_job_set_stop(j, TURN_END, 5)) st = yan_fail(YAN_ERR_NOMEM, "out of memory");
    if (st) {
        yan_sched_release(s->sched, j, YAN_CANCEL_CLIENT);
        return st;
    }
    yan_token bos = yan_tokenizer_special(s->tok, YAN_SPECIAL_BOS);
    if (nt >= 2 && bos >= 0 && j->prompts[0][0] == bos && j->prompts[0][1] == bos)
        memmove(j->prompts[0], j->prompts[0] + 1, --nt * sizeof(yan_token));
    j->n_prompt[0] = (int32_t)nt;
    j->sp.temperature = temperature;
    j->sp.seed = hs_random_seed();
    j->logprobs = logprobs;
    int32_t room = yan_engine_n_ctx(s->engine) - (int32_t)nt;
    j->max_tokens = max_tokens > 0 && max_tokens < room ? max_tokens : room;
    j->t_arrival = yan_now();
    yan_api_error err;
    if (yan_sched_submit(s->sched, j, &err)) {
        yan_sched_release(s->sched, j, YAN_CANCEL_CLIENT);
        return yan_fail(err.status == 503 ? YAN_ERR_ABORTED : YAN_ERR_CONTEXT_FULL, "%s", err.message);
    }
    yan_sched_lock(s->sched);
    while (j->phase != YAN_PHASE_DONE) {
        if (hs_client_gone(k->fd) || yan_now() > k->deadline) {
            yan_sched_cancel_locked(s->sched, j, YAN_CANCEL_CLIENT);
            st = yan_fail(YAN_ERR_ABORTED, "the client left or the request timed out");
            break;
        }
        yan_sched_wait(s->sched, j, KB_WAIT_MS);
    }
    if (!st && j->failed) st = yan_fail(YAN_ERR_INVALID_ARG, "%s", j->err.message);
    yan_sched_unlock(s->sched);
    if (st) {
        yan_sched_release(s->sched, j, YAN_CANCEL_CLIENT);
        return st;
    }
    *out = j; /* done: its fields are stable */
    return YAN_OK;
}

/* yan_rag_llm over the scheduler: one job per call, waited for on the
 * connection's thread (the client and the deadline are watched). */
static yan_status job_chat(void *ud, const yan_chat_message *msgs, size_t n, int32_t max_tokens, float temperature,
                           yan_text_fn on_text, void *text_ud, yan_buf *out, int32_t *n_prompt, int32_t *n_gen) {
    conn *k = ud;
    yan_job *j = NULL;
    yan_status st = run_job(k, msgs, n, max_tokens, temperature, -1, &j);
    if (st) return st;
    yan_choice *c = &j->ch[0];
    if (c->text.len) yan_buf_append(out, c->text.data, c->text.len);
    if (n_prompt) *n_prompt = j->n_prompt[0];
    if (n_gen) *n_gen = c->n_gen;
    yan_sched_release(k->srv->sched, j, YAN_CANCEL_CLIENT);
    if (out->oom) return yan_fail(YAN_ERR_NOMEM, "out of memory");
    if (on_text && out->len) on_text(out->data, out->len, text_ud);
    return YAN_OK;
}

/* The rerank's judge: the first token's 20 most likely alternatives, and
 * P(yes) / (P(yes) + P(no)) over the spellings of the two words found
 * among them (0.5 when neither is). */
static yan_status job_judge(void *ud, const yan_chat_message *msgs, size_t n, float *p_yes) {
    conn *k = ud;
    *p_yes = 0.5f;
    yan_job *j = NULL;
    yan_status st = run_job(k, msgs, n, 1, 0.0f, YAN_RQ_MAX_TOP_LOGPROBS, &j);
    if (st) return st;
    static const char *const FORMS[2][5] = {{"yes", "Yes", " yes", " Yes", "YES"}, {"no", "No", " no", " No", "NO"}};
    double sum[2] = {0, 0};
    yan_choice *c = &j->ch[0];
    for (int w = 0; w < 2 && c->n_lp > 0; w++) {
        yan_token seen[5];
        int n_seen = 0;
        for (int f = 0; f < 5; f++) {
            yan_token t[8];
            if (yan_tokenize(k->srv->tok, FORMS[w][f], strlen(FORMS[w][f]), t, 8, 0) < 1) continue;
            bool dup = false;
            for (int q = 0; q < n_seen; q++) dup |= seen[q] == t[0];
            if (dup) continue;
            seen[n_seen++] = t[0];
            /* lp[1..K]: the alternatives of the first token (lp[0] is the one chosen) */
            for (int a = 1; a <= YAN_RQ_MAX_TOP_LOGPROBS; a++)
                if (c->lp[a].token == t[0]) sum[w] += exp((double)c->lp[a].logprob);
        }
    }
    if (sum[0] + sum[1] > 0) *p_yes = (float)(sum[0] / (sum[0] + sum[1]));
    yan_sched_release(k->srv->sched, j, YAN_CANCEL_CLIENT);
    return YAN_OK;
}

/* --------------------------------------------------------- JSON helpers */

static cJSON *snippet(const char *s, size_t max) {
    yan_buf b = {0};
    size_t n = strlen(s);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    }
    yan_utf8_sanitize(&b, s, n);
    cJSON *o = cJSON_CreateString(b.data ? b.data : "");
    yan_buf_free(&b);
    return o;
}

static cJSON *source_obj(const yan_rag_source *s, bool full) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "index", s->index);
    cJSON_AddItemToObject(o, "path", snippet(s->path, 4096));
    if (s->page > 0) cJSON_AddNumberToObject(o, "page", s->page);
    else cJSON_AddNullToObject(o, "page");
    if (s->heading) cJSON_AddItemToObject(o, "heading", snippet(s->heading, 1024));
    else cJSON_AddNullToObject(o, "heading");
    cJSON_AddNumberToObject(o, "chunk_id", (double)s->chunk_id);
    cJSON_AddNumberToObject(o, "doc_id", (double)s->doc_id);
    cJSON_AddNumberToObject(o, "score", s->score);
    cJSON_AddItemToObject(o, "snippet", snippet(s->text, 300));
    if (full) {
        cJSON_AddBoolToObject(o, "cited", s->cited);
        cJSON_AddBoolToObject(o, "neutralised", s->neutralised);
    }
    return o;
}

static cJSON *kb_info(const yan_rag_result *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON *src = cJSON_AddArrayToObject(o, "sources");
    for (int i = 0; i < r->n_sources; i++) cJSON_AddItemToArray(src, source_obj(&r->sources[i], true));
    cJSON *fl = cJSON_AddArrayToObject(o, "flagged");
    for (int i = 0; i < r->n_flags; i++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "chunk_id", (double)r->flags[i].chunk_id);
        cJSON_AddItemToObject(x, "path", snippet(r->flags[i].path ? r->flags[i].path : "", 4096));
        cJSON_AddNumberToObject(x, "score", r->flags[i].score);
        cJSON_AddItemToObject(x, "reason", snippet(r->flags[i].reason, 256));
        cJSON_AddStringToObject(x, "action", r->flags[i].dropped ? "dropped" : "neutralised");
        cJSON_AddItemToArray(fl, x);
    }
    cJSON *q = cJSON_AddArrayToObject(o, "queries");
    for (int i = 0; i < r->n_queries; i++) cJSON_AddItemToArray(q, snippet(r->queries[i], 1024));
    cJSON_AddBoolToObject(o, "found", r->found);
    return o;
}

/* -------------------------------------------------------------- search */

enum MHD_Result hs_kb_search(conn *k) {
    yan_server *s = k->srv;
    if (!s->kb) return no_kb(k);
    cJSON *root = cJSON_ParseWithLength(k->body.data ? k->body.data : "", k->body.len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return hs_fail(k, 400, "invalid_request_error", NULL, NULL, "the body must be a JSON object");
    }
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(root, "query");
    const cJSON *kk = cJSON_GetObjectItemCaseSensitive(root, "k");
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(root, "mode");
    const cJSON *fu = cJSON_GetObjectItemCaseSensitive(root, "fusion");
    yan_rag_params rp = yan_rag_params_default();
    const char *bad = NULL, *param = NULL;
    if (!cJSON_IsString(q) || !q->valuestring[0]) bad = "'query' must be a non-empty string", param = "query";
    else if (strlen(q->valuestring) > KB_MAX_QUERY) bad = "'query' is longer than 4096 bytes", param = "query";
    else if (kk && !cJSON_IsNull(kk) && (!cJSON_IsNumber(kk) || kk->valuedouble < 1 || kk->valuedouble > KB_MAX_K ||
                                         kk->valuedouble != (int)kk->valuedouble))
        bad = "'k' must be an integer from 1 to 100", param = "k";
    else if (mode && !cJSON_IsNull(mode) && (!cJSON_IsString(mode) || !yan_rag_mode_parse(mode->valuestring, &rp.mode)))
        bad = "'mode' must be \"bm25\", \"vector\" or \"hybrid\"", param = "mode";
    else if (fu && !cJSON_IsNull(fu) &&
             (!cJSON_IsNumber(fu) || fu->valuedouble < 0 || fu->valuedouble > YAN_RAG_MAX_FUSION ||
              fu->valuedouble != (int)fu->valuedouble))
        bad = "'fusion' must be an integer from 0 to 16", param = "fusion";
    if (bad) {
        cJSON_Delete(root);
        return hs_fail(k, 400, "invalid_request_error", NULL, param, bad);
    }
    rp.k = cJSON_IsNumber(kk) ? (int)kk->valuedouble : 5;
    rp.candidates = rp.k;
    rp.fusion = cJSON_IsNumber(fu) ? (int)fu->valuedouble : 0;
    rp.rerank = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "rerank"));
    if (rp.rerank) rp.candidates = rp.k > 20 ? rp.k : 20; /* rerank a deeper list, return k */
    k->deadline = k->t0 + s->p.timeout;
    yan_rag_llm llm = {job_chat, job_judge, NULL, yan_engine_n_ctx(s->engine), k};
    yan_rag_result r;
    memset(&r, 0, sizeof r);
    yan_kb_hit *hits = NULL;
    int n = 0;
    /* the kb handle serialises its own calls; the model runs between them */
    yan_status st = yan_rag_retrieve(s->kb->kb, &llm, q->valuestring, &rp, &r, &hits, &n);
    if (st) {
        cJSON_Delete(root);
        yan_rag_result_free(&r);
        return hs_fail(k, 500, "server_error", NULL, NULL, yan_last_error());
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON_AddItemToObject(o, "query", snippet(q->valuestring, KB_MAX_QUERY));
    cJSON_AddStringToObject(o, "mode", yan_rag_mode_name(rp.mode));
    cJSON *qs = cJSON_AddArrayToObject(o, "queries");
    for (int i = 0; i < r.n_queries; i++) cJSON_AddItemToArray(qs, snippet(r.queries[i], 1024));
    cJSON *data = cJSON_AddArrayToObject(o, "data");
    for (int i = 0; i < n && i < rp.k; i++) {
        const yan_kb_hit *h = &hits[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "object", "kb.hit");
        cJSON_AddNumberToObject(x, "rank", i + 1);
        cJSON_AddNumberToObject(x, "chunk_id", (double)h->chunk_id);
        cJSON_AddNumberToObject(x, "doc_id", (double)h->doc_id);
        cJSON_AddItemToObject(x, "path", snippet(h->path ? h->path : "", 4096));
        if (h->page > 0) cJSON_AddNumberToObject(x, "page", h->page);
        else cJSON_AddNullToObject(x, "page");
        if (h->heading && h->heading[0]) cJSON_AddItemToObject(x, "heading", snippet(h->heading, 1024));
        else cJSON_AddNullToObject(x, "heading");
        cJSON_AddNumberToObject(x, "score", h->score);
        cJSON_AddItemToObject(x, "text", snippet(h->text ? h->text : "", 1 << 20));
        yan_injection_result ir;
        bool flagged = h->text && !yan_injection_check(kb_moderator(s), h->text, strlen(h->text), &ir) && ir.flagged;
        cJSON_AddBoolToObject(x, "injection_flagged", flagged);
        if (flagged) cJSON_AddItemToObject(x, "injection_reason", snippet(ir.reason, 256));
        cJSON_AddItemToArray(data, x);
    }
    yan_kb_hits_free(hits, n);
    yan_rag_result_free(&r);
    cJSON_Delete(root);
    return hs_respond_json(k, 200, o);
}

/* ------------------------------------------------------------- upload */

enum MHD_Result hs_kb_documents(conn *k) {
    yan_server *s = k->srv;
    if (!s->kb) return no_kb(k);
    const char *ctype = MHD_lookup_connection_value(k->mc, MHD_HEADER_KIND, "Content-Type");
    const char *name = NULL, *data = NULL, *why = NULL;
    size_t name_len = 0, data_len = 0;
    yan_buf dec = {0};
    cJSON *root = NULL;
    if (ctype && !strncasecmp(ctype, "multipart/form-data", 19)) {
        if (!yan_upload_multipart_file(ctype, k->body.data ? k->body.data : "", k->body.len, &name, &name_len, &data, &data_len))
            return hs_fail(k, 400, "invalid_request_error", NULL, "file",
                           "the multipart body has no file part (a part with a filename)");
    } else {
        root = cJSON_ParseWithLength(k->body.data ? k->body.data : "", k->body.len);
        const cJSON *nm = root ? cJSON_GetObjectItemCaseSensitive(root, "name") : NULL;
        const cJSON *ct = root ? cJSON_GetObjectItemCaseSensitive(root, "content") : NULL;
        const cJSON *cb = root ? cJSON_GetObjectItemCaseSensitive(root, "content_base64") : NULL;
        const char *param = NULL;
        if (!root || !cJSON_IsObject(root)) why = "the body must be a JSON object (or multipart/form-data)";
        else if (!cJSON_IsString(nm)) why = "'name' must be a string", param = "name";
        else if (cJSON_IsString(ct)) data = ct->valuestring, data_len = strlen(ct->valuestring);
        else if (cJSON_IsString(cb)) {
            if (!yan_upload_b64_decode(cb->valuestring, &dec)) why = "'content_base64' is not base64", param = "content_base64";
            data = dec.data ? dec.data : "", data_len = dec.len;
        } else why = "give the document as 'content' (text) or 'content_base64'", param = "content";
        if (why) {
            cJSON_Delete(root);
            yan_buf_free(&dec);
            return hs_fail(k, 400, "invalid_request_error", NULL, param, why);
        }
        name = nm->valuestring, name_len = strlen(nm->valuestring);
    }
    char fname[YAN_UPLOAD_MAX_NAME + 1];
    enum MHD_Result ret;
    if (!yan_upload_safe_name(name, name_len, fname, sizeof fname, &why)) {
        ret = hs_fail(k, 400, "invalid_request_error", "unsupported_file", "name", why);
        goto out;
    }
    if (data_len == 0) {
        ret = hs_fail(k, 400, "invalid_request_error", NULL, "content", "the document is empty");
        goto out;
    }
    if (mkdir(s->kb->docs_dir, 0755) != 0 && errno != EEXIST) {
        char msg[512];
        snprintf(msg, sizeof msg, "cannot create the upload folder %s: %s", s->kb->docs_dir, strerror(errno));
        ret = hs_fail(k, 500, "server_error", NULL, NULL, msg);
        goto out;
    }
    yan_buf path = {0};
    yan_buf_printf(&path, "%s/%s", s->kb->docs_dir, fname);
    yan_kb_add_stats ast = {0};
    pthread_mutex_lock(&s->kb->mu); /* the file and its index change together */
    yan_status st = path.oom ? yan_fail(YAN_ERR_NOMEM, "out of memory") : yan_write_atomic(path.data, data, data_len);
    char fail_why[256] = "";
    if (!st) {
        const char *paths[1] = {path.data};
        s->kb->last_fail[0] = 0;
        st = yan_kb_add(s->kb->kb, paths, 1, &ast);
        if (!st && (ast.failed || ast.skipped)) remove(path.data);
        snprintf(fail_why, sizeof fail_why, "%s", s->kb->last_fail);
    }
    pthread_mutex_unlock(&s->kb->mu);
    if (st) {
        ret = hs_fail(k, 500, "server_error", NULL, NULL, yan_last_error());
    } else if (ast.failed || ast.skipped || ast.added + ast.updated + ast.unchanged == 0) {
        char msg[400];
        snprintf(msg, sizeof msg, "the document could not be read%s%s; it was not added", fail_why[0] ? ": " : "",
                 fail_why[0] ? fail_why : " (not text, Markdown, HTML or PDF)");
        ret = hs_fail(k, 422, "invalid_request_error", "unreadable_document", "content", msg);
    } else {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "object", "kb.document");
        cJSON_AddStringToObject(o, "name", fname);
        cJSON_AddItemToObject(o, "path", snippet(path.data, 4096));
        cJSON_AddNumberToObject(o, "bytes", (double)data_len);
        cJSON_AddStringToObject(o, "status", ast.added ? "added" : ast.updated ? "updated" : "unchanged");
        cJSON_AddNumberToObject(o, "chunks", (double)ast.chunks);
        cJSON *l = cJSON_CreateObject();
        cJSON_AddStringToObject(l, "request_id", k->rid);
        cJSON_AddStringToObject(l, "path", path.data);
        cJSON_AddNumberToObject(l, "bytes", (double)data_len);
        cJSON_AddNumberToObject(l, "chunks", (double)ast.chunks);
        yan_slog_emit(&s->log, YAN_LOG_INFO, "kb_upload", l);
        ret = hs_respond_json(k, ast.added ? 201 : 200, o);
    }
    yan_buf_free(&path);
out:
    cJSON_Delete(root);
    yan_buf_free(&dec);
    return ret;
}

/* ------------------------------------------------- chat with the kb */

/* The request's kb options: false when it names none. */
static bool kb_options(conn *k, yan_rag_params *rp, const char **bad, const char **param) {
    if (!k->body.data || (!memmem(k->body.data, k->body.len, "\"kb\"", 4) &&
                          !memmem(k->body.data, k->body.len, "\"knowledge_base\"", 16)))
        return false;
    cJSON *root = cJSON_ParseWithLength(k->body.data ? k->body.data : "", k->body.len);
    if (!root) return false;
    const cJSON *kb = cJSON_GetObjectItemCaseSensitive(root, "kb");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "knowledge_base");
    bool on = false;
    if (cJSON_IsTrue(kb) || cJSON_IsObject(kb)) on = true;
    else if (kb && !cJSON_IsNull(kb) && !cJSON_IsFalse(kb)) *bad = "'kb' must be a boolean or an object", *param = "kb";
    if (name && !cJSON_IsNull(name)) {
        if (!cJSON_IsString(name)) *bad = "'knowledge_base' must be a string", *param = "knowledge_base";
        else on = true;
        if (cJSON_IsString(name) && k->srv->kb && strcmp(name->valuestring, k->srv->kb->name) &&
            strcmp(name->valuestring, k->srv->kb->path))
            *bad = "no such knowledge base on this server", *param = "knowledge_base";
    }
    if (cJSON_IsObject(kb)) {
        const cJSON *v;
        if ((v = cJSON_GetObjectItemCaseSensitive(kb, "k")) && !cJSON_IsNull(v)) {
            if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 20)
                *bad = "'kb.k' must be 1 to 20", *param = "kb.k";
            else rp->k = (int)v->valuedouble;
        }
        if ((v = cJSON_GetObjectItemCaseSensitive(kb, "mode")) && !cJSON_IsNull(v) &&
            (!cJSON_IsString(v) || !yan_rag_mode_parse(v->valuestring, &rp->mode)))
            *bad = "'kb.mode' must be \"bm25\", \"vector\" or \"hybrid\"", *param = "kb.mode";
        if ((v = cJSON_GetObjectItemCaseSensitive(kb, "fusion")) && !cJSON_IsNull(v)) {
            if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > YAN_RAG_MAX_FUSION)
                *bad = "'kb.fusion' must be 0 to 16", *param = "kb.fusion";
            else rp->fusion = (int)v->valuedouble;
        }
        if ((v = cJSON_GetObjectItemCaseSensitive(kb, "min_score")) && !cJSON_IsNull(v)) {
            if (!cJSON_IsNumber(v)) *bad = "'kb.min_score' must be a number", *param = "kb.min_score";
            else rp->min_score = (float)v->valuedouble;
        }
        if ((v = cJSON_GetObjectItemCaseSensitive(kb, "term_check")) && cJSON_IsBool(v))
            rp->term_check = cJSON_IsTrue(v);
        if ((v = cJSON_GetObjectItemCaseSensitive(kb, "rerank")) && cJSON_IsBool(v)) rp->rerank = cJSON_IsTrue(v);
    }
    cJSON_Delete(root);
    return on || *bad;
}

typedef struct {
    conn *k;
    const yan_chat_message *msgs;  /* the client's messages */
    size_t n;
    size_t last_user;
} measure_ud;

/* The messages sent to the model: the rules (+ the client's system
 * message), the client's turns, the last user turn replaced by the
 * sources and the question. In k's arena. */
static yan_chat_message *augmented(conn *k, const yan_chat_message *msgs, size_t n, size_t last_user,
                                   const char *sys, const char *user, size_t *n_out) {
    yan_chat_message *m = yan_arena_alloc(&k->arena, (n + 1) * sizeof *m);
    if (!m) return NULL;
    size_t o = 0, i = 0;
    if (n && !strcmp(msgs[0].role, "system")) {
        size_t a = strlen(sys), b = strlen(msgs[0].content);
        char *t = yan_arena_alloc(&k->arena, a + b + 3);
        if (!t) return NULL;
        memcpy(t, sys, a);
        memcpy(t + a, "\n\n", 2);
        memcpy(t + a + 2, msgs[0].content, b + 1);
        m[o++] = (yan_chat_message){"system", t};
        i = 1;
    } else {
        m[o++] = (yan_chat_message){"system", sys};
    }
    for (; i < n; i++) m[o++] = i == last_user ? (yan_chat_message){"user", user} : msgs[i];
    *n_out = o;
    return m;
}

static int64_t measure_chat(void *ud, const char *sys, const char *user) {
    measure_ud *mu = ud;
    conn *k = mu->k;
    yan_chat_message stack[64];
    if (mu->n + 1 > 64) return (int64_t)(strlen(sys) + strlen(user)) / 2; /* a long history: a coarse bound */
    yan_buf merged = {0};
    size_t o = 0, i = 0;
    if (mu->n && !strcmp(mu->msgs[0].role, "system")) {
        yan_buf_printf(&merged, "%s\n\n%s", sys, mu->msgs[0].content);
        if (merged.oom) return -1;
        stack[o++] = (yan_chat_message){"system", merged.data};
        i = 1;
    } else {
        stack[o++] = (yan_chat_message){"system", sys};
    }
    for (; i < mu->n; i++) stack[o++] = i == mu->last_user ? (yan_chat_message){"user", user} : mu->msgs[i];
    int64_t t = -1, need = yan_chat_format(k->srv->model, k->srv->p.chat_template, stack, o, true, NULL, 0);
    size_t cap = need < 0 ? (size_t)-need : (size_t)need + 1;
    char *text = need == INT64_MIN ? NULL : yan_malloc(cap);
    if (text && yan_chat_format(k->srv->model, k->srv->p.chat_template, stack, o, true, text, cap) >= 0)
        t = yan_tokenize(k->srv->tok, text, strlen(text), NULL, 0, YAN_TOKENIZE_SPECIAL | YAN_TOKENIZE_ADD_BOS);
    yan_free(text);
    yan_buf_free(&merged);
    if (t == INT64_MIN || t == -1) return -1;
    return (t < 0 ? -t : t) + 8;
}

/* The not-found answer, without the model: a chat.completion, or its SSE
 * stream. */
static enum MHD_Result respond_not_found(conn *k) {
    const yan_rag_result *r = &k->kbq->r;
    long created = (long)time(NULL);
    char id[96];
    snprintf(id, sizeof id, "chatcmpl-%s", k->rid);
    k->finish = "stop";
    if (!k->req.stream) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", id);
        cJSON_AddStringToObject(o, "object", "chat.completion");
        cJSON_AddNumberToObject(o, "created", (double)created);
        cJSON_AddStringToObject(o, "model", k->model_name);
        cJSON_AddStringToObject(o, "system_fingerprint", "yan-" YAN_VERSION_STRING);
        cJSON *choices = cJSON_AddArrayToObject(o, "choices");
        for (int32_t i = 0; i < k->req.n; i++) {
            cJSON *ch = cJSON_CreateObject();
            cJSON_AddNumberToObject(ch, "index", i);
            cJSON *msg = cJSON_AddObjectToObject(ch, "message");
            cJSON_AddStringToObject(msg, "role", "assistant");
            cJSON_AddStringToObject(msg, "content", YAN_RAG_NOT_FOUND);
            cJSON_AddNullToObject(msg, "refusal");
            cJSON_AddNullToObject(ch, "logprobs");
            cJSON_AddStringToObject(ch, "finish_reason", "stop");
            cJSON_AddItemToArray(choices, ch);
        }
        cJSON_AddArrayToObject(o, "citations");
        cJSON_AddItemToObject(o, "kb", kb_info(r));
        cJSON *u = cJSON_AddObjectToObject(o, "usage");
        cJSON_AddNumberToObject(u, "prompt_tokens", 0);
        cJSON_AddNumberToObject(u, "completion_tokens", 0);
        cJSON_AddNumberToObject(u, "total_tokens", 0);
        return hs_respond_json(k, 200, o);
    }
    yan_buf b = {0};
    for (int step = 0; step < 4; step++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", id);
        cJSON_AddStringToObject(o, "object", "chat.completion.chunk");
        cJSON_AddNumberToObject(o, "created", (double)created);
        cJSON_AddStringToObject(o, "model", k->model_name);
        cJSON_AddStringToObject(o, "system_fingerprint", "yan-" YAN_VERSION_STRING);
        cJSON *choices = cJSON_AddArrayToObject(o, "choices");
        for (int32_t i = 0; step < 3 && i < k->req.n; i++) {
            cJSON *ch = cJSON_CreateObject();
            cJSON_AddNumberToObject(ch, "index", i);
            cJSON *d = cJSON_AddObjectToObject(ch, "delta");
            if (step == 0) cJSON_AddStringToObject(d, "role", "assistant");
            cJSON_AddStringToObject(d, "content", step == 1 ? YAN_RAG_NOT_FOUND : "");
            cJSON_AddNullToObject(ch, "logprobs");
            if (step == 2) cJSON_AddStringToObject(ch, "finish_reason", "stop");
            else cJSON_AddNullToObject(ch, "finish_reason");
            cJSON_AddItemToArray(choices, ch);
        }
        if (step == 3) {
            cJSON_AddArrayToObject(o, "citations");
            cJSON_AddItemToObject(o, "kb", kb_info(r));
        }
        char *t = hs_json_print(o);
        if (t) yan_sse_event(&b, t, strlen(t));
        cJSON_free(t);
    }
    yan_sse_done(&b);
    if (b.oom) {
        yan_buf_free(&b);
        return hs_fail(k, 500, "server_error", NULL, NULL, "out of memory");
    }
    k->stream = true;
    k->stream_over = true;
    enum MHD_Result ret = hs_respond(k, 200, "text/event-stream", b.data, b.len, "Cache-Control", "no-cache");
    yan_buf_free(&b);
    return ret;
}

bool hs_kb_chat(conn *k, enum MHD_Result *ret) {
    yan_server *s = k->srv;
    yan_rag_params rp = yan_rag_params_default();
    const char *bad = NULL, *param = NULL;
    if (!kb_options(k, &rp, &bad, &param)) return false;
    if (!s->kb) {
        *ret = no_kb(k);
        return true;
    }
    if (bad) {
        *ret = hs_fail(k, 400, "invalid_request_error", NULL, param, bad);
        return true;
    }
    yan_api_req *r = &k->req;
    size_t last_user = r->n_msgs;
    for (size_t i = 0; i < r->n_msgs; i++)
        if (!strcmp(r->msgs[i].role, "user")) last_user = i;
    if (last_user == r->n_msgs || !r->msgs[last_user].content[0]) {
        *ret = hs_fail(k, 400, "invalid_request_error", NULL, "messages",
                       "a knowledge-base request needs a user message (the question)");
        return true;
    }
    const char *question = r->msgs[last_user].content;
    k->kbq = yan_calloc(1, sizeof *k->kbq);
    if (!k->kbq) {
        *ret = hs_fail(k, 500, "server_error", NULL, NULL, "out of memory");
        return true;
    }
    yan_rag_result *res = &k->kbq->r;
    rp.moderator = kb_moderator(s);
    k->deadline = k->t0 + s->p.timeout;
    yan_rag_llm llm = {job_chat, job_judge, NULL, yan_engine_n_ctx(s->engine), k};
    yan_kb_hit *hits = NULL;
    int n_hits = 0;
    yan_status st = yan_rag_retrieve(s->kb->kb, &llm, question, &rp, res, &hits, &n_hits);
    if (!st) st = yan_rag_select(hits, n_hits, &rp, res);
    yan_kb_hits_free(hits, n_hits);
    if (st) {
        *ret = hs_fail(k, 500, "server_error", NULL, NULL, yan_last_error());
        return true;
    }
    cJSON *lo = cJSON_CreateObject();
    cJSON_AddStringToObject(lo, "request_id", k->rid);
    cJSON_AddNumberToObject(lo, "candidates", res->n_candidates);
    cJSON_AddNumberToObject(lo, "sources", res->n_sources);
    cJSON_AddNumberToObject(lo, "flagged", res->n_flags);
    cJSON_AddNumberToObject(lo, "queries", res->n_queries);
    cJSON_AddBoolToObject(lo, "found", res->found);
    yan_slog_emit(&s->log, res->n_flags ? YAN_LOG_WARN : YAN_LOG_INFO, "kb_retrieve", lo);
    if (!res->found) {
        *ret = respond_not_found(k);
        return true;
    }
    int32_t n_ctx = yan_engine_n_ctx(s->engine);
    int32_t max_tokens = r->max_tokens > 0 ? r->max_tokens : (n_ctx / 4 < 256 ? n_ctx / 4 : 256);
    yan_buf sys = {0}, user = {0};
    measure_ud mu = {k, r->msgs, r->n_msgs, last_user};
    st = yan_rag_fit(question, res, rp.source_bytes, n_ctx, &max_tokens, measure_chat, &mu, &sys, &user);
    size_t n_new = 0;
    yan_chat_message *m = NULL;
    if (!st) { /* the messages live as long as the request: in its arena */
        const char *sa = yan_arena_strndup(&k->arena, sys.data, sys.len);
        const char *ua = yan_arena_strndup(&k->arena, user.data, user.len);
        m = sa && ua ? augmented(k, r->msgs, r->n_msgs, last_user, sa, ua, &n_new) : NULL;
    }
    yan_buf_free(&sys);
    yan_buf_free(&user);
    if (st == YAN_ERR_CONTEXT_FULL) {
        *ret = hs_fail(k, 400, "exceed_context_size_error", "context_length_exceeded", "messages", yan_last_error());
        return true;
    }
    if (st || !m) {
        *ret = hs_fail(k, 500, "server_error", NULL, NULL, st ? yan_last_error() : "out of memory");
        return true;
    }
    if (r->max_tokens > 0 && max_tokens < r->max_tokens) r->max_tokens = max_tokens;
    r->msgs = m;
    r->n_msgs = n_new;
    return false; /* generate as usual, with these messages */
}

/* Cited sources of one answer, and the answer without citations of
 * unknown sources. */
static cJSON *citations_of(const yan_rag_result *base, const char *text, size_t len, char **clean) {
    yan_rag_result r = *base; /* sources shared read-only; cited flags on a copy */
    yan_rag_source *src = yan_calloc((size_t)base->n_sources + 1, sizeof *src);
    cJSON *a = cJSON_CreateArray();
    *clean = NULL;
    if (!src) return a;
    memcpy(src, base->sources, (size_t)base->n_sources * sizeof *src);
    for (int i = 0; i < base->n_sources; i++) src[i].cited = false;
    r.sources = src;
    r.answer = NULL;
    r.cited = NULL;
    r.n_cited = 0;
    if (!yan_rag_cite(text, len, &r)) {
        for (int i = 0; i < r.n_cited; i++) cJSON_AddItemToArray(a, source_obj(&src[r.cited[i] - 1], false));
        *clean = r.answer;
    } else {
        yan_free(r.answer);
    }
    yan_free(r.cited);
    yan_free(src);
    return a;
}

void hs_kb_response(conn *k, cJSON *o) {
    if (!k->kbq) return;
    cJSON *choices = cJSON_GetObjectItemCaseSensitive(o, "choices");
    cJSON *first = NULL;
    for (cJSON *ch = choices ? choices->child : NULL; ch; ch = ch->next) {
        cJSON *msg = cJSON_GetObjectItemCaseSensitive(ch, "message");
        cJSON *content = msg ? cJSON_GetObjectItemCaseSensitive(msg, "content") : NULL;
        if (!cJSON_IsString(content)) continue;
        char *clean = NULL;
        cJSON *cit = citations_of(&k->kbq->r, content->valuestring, strlen(content->valuestring), &clean);
        if (clean) {
            cJSON_ReplaceItemInObjectCaseSensitive(msg, "content", cJSON_CreateString(clean));
            yan_free(clean);
        }
        if (!first) first = cJSON_Duplicate(cit, true);
        cJSON_AddItemToObject(ch, "citations", cit);
    }
    cJSON_AddItemToObject(o, "citations", first ? first : cJSON_CreateArray());
    cJSON_AddItemToObject(o, "kb", kb_info(&k->kbq->r));
}

void hs_kb_stream_end(conn *k, cJSON *o) {
    if (!k->kbq || !k->job) return;
    yan_sched_lock(k->srv->sched);
    yan_choice *c = k->job->n_choices ? &k->job->ch[0] : NULL;
    char *text = c && c->text.len ? yan_strndup(c->text.data, c->text.len) : NULL;
    size_t len = text ? strlen(text) : 0;
    yan_sched_unlock(k->srv->sched);
    char *clean = NULL;
    cJSON_AddItemToObject(o, "citations", citations_of(&k->kbq->r, text ? text : "", len, &clean));
    cJSON_AddItemToObject(o, "kb", kb_info(&k->kbq->r));
    yan_free(clean);
    yan_free(text);
}
