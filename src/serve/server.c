/* server.c — the HTTP side of `yan serve` (contract in serve.h): the
 * libmicrohttpd glue, routing, authentication, limits, the GET routes,
 * request completion (logs, metrics, audit) and the server's life cycle.
 * The OpenAI endpoints are in api.c; sched.c runs the model.
 *
 * A request's life (one connection thread, MHD's access handler):
 *  1. first call (headers only): route and method (404 / 405), CORS
 *     preflight, authentication (401), rate limits (429 + Retry-After),
 *     declared body size (413); GET endpoints answer at once;
 *  2. body calls: the body accumulates up to --max-body (413 beyond; an
 *     early error discards the body and answers after it);
 *  3. last call: parse and validate (400), pick the model (local, proxied,
 *     or 404), then the endpoint (api.c): tokenize, context check (400
 *     exceed_context_size_error), moderation and the injection screen, a job
 *     submitted to the scheduler and a wait for a slot (503 after
 *     --queue-timeout); a non-streaming request waits for its result, a
 *     streaming one gets a 200 with a content callback that waits for new
 *     text and writes SSE chunks. Waits poll the socket, so a client that
 *     leaves cancels its job at once (its sequence is freed at the next step
 *     boundary);
 *  4. request completed (MHD's notification): log line, metrics, audit,
 *     rate-limit tokens, job released. */
#include "serve/http.h"

#include "model/model.h"
#include "serve/sse.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

extern const char yan_web_index_html[];
extern const size_t yan_web_index_html_len;

/* --------------------------------------------------------------- routes */

static const route_def ROUTES[] = {
    {"/", R_WEB, false, false, true, YAN_EP_WEB},
    {"/index.html", R_WEB, false, false, true, YAN_EP_WEB},
    {"/health", R_HEALTH, false, false, true, YAN_EP_HEALTH},
    {"/v1/health", R_HEALTH, false, false, true, YAN_EP_HEALTH},
    {"/metrics", R_METRICS, false, false, false, YAN_EP_METRICS},
    {"/v1/models", R_MODELS, false, false, false, YAN_EP_MODELS},
    {"/models", R_MODELS, false, false, false, YAN_EP_MODELS},
    {"/v1/models/", R_MODEL_ONE, false, true, false, YAN_EP_MODELS},
    {"/v1/chat/completions", R_CHAT, true, false, false, YAN_EP_CHAT},
    {"/chat/completions", R_CHAT, true, false, false, YAN_EP_CHAT},
    {"/v1/completions", R_COMPLETIONS, true, false, false, YAN_EP_COMPLETIONS},
    {"/completions", R_COMPLETIONS, true, false, false, YAN_EP_COMPLETIONS},
    {"/v1/embeddings", R_EMBEDDINGS, true, false, false, YAN_EP_EMBEDDINGS},
    {"/embeddings", R_EMBEDDINGS, true, false, false, YAN_EP_EMBEDDINGS},
    {"/v1/moderations", R_MODERATIONS, true, false, false, YAN_EP_MODERATIONS},
    {"/tokenize", R_TOKENIZE, true, false, false, YAN_EP_TOKENIZE},
    {"/detokenize", R_DETOKENIZE, true, false, false, YAN_EP_DETOKENIZE},
    {"/v1/kb/search", R_KB_SEARCH, true, false, false, YAN_EP_KB_SEARCH},
    {"/v1/kb/documents", R_KB_DOCUMENTS, true, false, false, YAN_EP_KB_DOCUMENTS},
};

/* ------------------------------------------------------------- helpers */

static void rand_hex(char *out, size_t nbytes) {
    uint8_t b[32];
    if (nbytes > sizeof b) nbytes = sizeof b;
    if (getrandom(b, nbytes, 0) != (ssize_t)nbytes) {
        static atomic_uint_fast64_t ctr;
        uint64_t x = yan_hash_u64((uint64_t)time(NULL) ^ (uint64_t)getpid() << 20 ^ atomic_fetch_add(&ctr, 1));
        for (size_t i = 0; i < nbytes; i++) b[i] = (uint8_t)(x >> (8 * (i % 8))), x = i % 8 == 7 ? yan_hash_u64(x) : x;
    }
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hx[b[i] >> 4];
        out[2 * i + 1] = hx[b[i] & 15];
    }
    out[2 * nbytes] = 0;
}

uint64_t hs_random_seed(void) {
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, 0) != (ssize_t)sizeof s) s = yan_hash_u64((uint64_t)time(NULL) ^ (uint64_t)clock());
    return s;
}

/* A client-supplied request id is kept when it is short and plain. */
static bool plain_id(const char *s) {
    if (!s || !s[0] || strlen(s) > 64) return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.') return false;
    return true;
}

bool hs_client_gone(int fd) {
    if (fd < 0) return false;
    struct pollfd p = {fd, POLLRDHUP, 0};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

char *hs_json_print(cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* ------------------------------------------------------------ responses */

void hs_add_headers(conn *k, struct MHD_Response *r) {
    MHD_add_response_header(r, "X-Request-Id", k->rid);
    if (k->origin) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", k->origin);
        if (strcmp(k->origin, "*") != 0) MHD_add_response_header(r, "Vary", "Origin");
        MHD_add_response_header(r, "Access-Control-Expose-Headers", "X-Request-Id, Retry-After");
    }
}

/* Queue a response with a copied body. */
enum MHD_Result hs_respond(conn *k, int status, const char *ctype, const char *body, size_t len,
                               const char *h1, const char *v1) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    if (ctype) MHD_add_response_header(r, "Content-Type", ctype);
    if (h1) MHD_add_response_header(r, h1, v1);
    hs_add_headers(k, r);
    k->status = status;
    enum MHD_Result ret = MHD_queue_response(k->mc, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result hs_respond_json(conn *k, int status, cJSON *o) {
    char *s = hs_json_print(o);
    if (!s) return hs_respond(k, 500, "text/plain", "out of memory\n", 14, NULL, NULL);
    enum MHD_Result r = hs_respond(k, status, "application/json", s, strlen(s), NULL, NULL);
    cJSON_free(s);
    return r;
}

enum MHD_Result hs_respond_error_h(conn *k, const yan_api_error *e, const char *h, const char *v) {
    yan_buf b = {0};
    yan_api_error_json(e, &b);
    enum MHD_Result r = hs_respond(k, e->status, "application/json", b.data ? b.data : "{}", b.data ? b.len : 2, h, v);
    yan_buf_free(&b);
    return r;
}

enum MHD_Result hs_respond_error(conn *k, const yan_api_error *e) { return hs_respond_error_h(k, e, NULL, NULL); }

enum MHD_Result hs_fail(conn *k, int status, const char *type, const char *code, const char *param,
                            const char *msg) {
    yan_api_error e;
    yan_api_error_set(&e, status, type, code, param, "%s", msg);
    return hs_respond_error(k, &e);
}

/* ---------------------------------------------------------- GET routes */

static enum MHD_Result do_health(conn *k) {
    yan_server *s = k->srv;
    cJSON *o = cJSON_CreateObject();
    bool dr = atomic_load(&s->draining);
    cJSON_AddStringToObject(o, "status", dr ? "shutting_down" : "ok");
    cJSON_AddStringToObject(o, "model", s->model_id);
    return hs_respond_json(k, dr ? 503 : 200, o);
}

static cJSON *model_obj(const yan_server *s) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", s->model_id);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)s->created);
    cJSON_AddStringToObject(m, "owned_by", "yan");
    cJSON *meta = cJSON_AddObjectToObject(m, "meta");
    cJSON_AddStringToObject(meta, "arch", yan_model_arch(s->model));
    cJSON_AddNumberToObject(meta, "n_ctx", yan_engine_n_ctx(s->engine));
    cJSON_AddNumberToObject(meta, "n_ctx_train", yan_model_n_ctx_train(s->model));
    cJSON_AddNumberToObject(meta, "n_embd", yan_model_n_embd(s->model));
    cJSON_AddNumberToObject(meta, "n_vocab", yan_model_n_vocab(s->model));
    cJSON_AddNumberToObject(meta, "n_params", (double)yan_model_n_params(s->model));
    return m;
}

/* The upstream's model list (best effort, 3 s). */
static void upstream_models(yan_server *s, conn *k, cJSON *data) {
    yan_upstream_call *c = yan_upstream_start(s->proxy, "GET", "/models", NULL, 0, k->rid);
    if (!c) return;
    char ct[128], err[256];
    int st = yan_upstream_headers(c, yan_now() + 3, ct, sizeof ct, err, sizeof err);
    yan_buf b = {0};
    char tmp[4096];
    double until = yan_now() + 3;
    while (st == 200 && yan_now() < until) {
        ssize_t n = yan_upstream_read(c, tmp, sizeof tmp, 100);
        if (n < 0) break;
        if (n > 0) yan_buf_append(&b, tmp, (size_t)n);
        if (b.len > (1u << 20)) break;
    }
    yan_upstream_free(c);
    cJSON *r = b.data ? cJSON_ParseWithLength(b.data, b.len) : NULL;
    yan_buf_free(&b);
    const cJSON *d = r ? cJSON_GetObjectItemCaseSensitive(r, "data") : NULL;
    for (const cJSON *m = d && cJSON_IsArray(d) ? d->child : NULL; m; m = m->next) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "id");
        if (!cJSON_IsString(id) || !strcmp(id->valuestring, s->model_id)) continue;
        cJSON_AddItemToArray(data, cJSON_Duplicate(m, true));
    }
    cJSON_Delete(r);
}

static bool model_is_local(const yan_server *s, const char *name) {
    if (!name || !name[0]) return true;
    return !strcmp(name, s->model_id) || !strcmp(name, s->p.model_path) ||
           (s->model_path_base && !strcmp(name, s->model_path_base));
}

static enum MHD_Result do_models(conn *k) {
    yan_server *s = k->srv;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(o, "data");
    cJSON_AddItemToArray(data, model_obj(s));
    if (s->proxy) upstream_models(s, k, data);
    return hs_respond_json(k, 200, o);
}

static enum MHD_Result do_model_one(conn *k, const char *url) {
    yan_server *s = k->srv;
    const char *name = url + strlen("/v1/models/");
    if (model_is_local(s, name) && name[0]) return hs_respond_json(k, 200, model_obj(s));
    char msg[300];
    snprintf(msg, sizeof msg, "The model '%.200s' does not exist", name);
    return hs_fail(k, 404, "invalid_request_error", "model_not_found", "model", msg);
}

static enum MHD_Result do_metrics(conn *k) {
    yan_gauges g;
    yan_sched_gauges(k->srv->sched, &g);
    yan_buf b = {0};
    yan_metrics_render(&k->srv->mx, &g, &b);
    if (b.oom) {
        yan_buf_free(&b);
        return hs_fail(k, 500, "server_error", NULL, NULL, "out of memory");
    }
    enum MHD_Result r = hs_respond(k, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len, NULL, NULL);
    yan_buf_free(&b);
    return r;
}

static enum MHD_Result do_web(conn *k) {
    if (!k->srv->p.web) return hs_fail(k, 404, "not_found_error", NULL, NULL, "the web page is disabled (--no-web)");
    return hs_respond(k, 200, "text/html; charset=utf-8", yan_web_index_html, yan_web_index_html_len,
                   "Cache-Control", "no-cache");
}

/* True when the key is over its rate limit: k->early is then the 429. */
static bool rate_limited(conn *k) {
    double retry = 1;
    const char *which = "requests";
    if (yan_limiter_admit(&k->srv->lim, k->key, yan_now(), &retry, &which)) return false;
    yan_metrics_reject(&k->srv->mx, YAN_REJ_RATE);
    snprintf(k->retry_after, sizeof k->retry_after, "%.0f", retry);
    k->has_early = true;
    yan_api_error_set(&k->early, 429, which, "rate_limit_exceeded", NULL,
                      "Rate limit reached on %s per minute for this key; retry in %.0f s", which, retry);
    return true;
}

/* ------------------------------------------------------------- dispatch */

static const route_def *find_route(const char *url, bool *path_known) {
    *path_known = false;
    for (size_t i = 0; i < sizeof ROUTES / sizeof ROUTES[0]; i++) {
        const route_def *r = &ROUTES[i];
        bool match = r->prefix ? !strncmp(url, r->path, strlen(r->path)) && url[strlen(r->path)] : !strcmp(url, r->path);
        if (match) {
            *path_known = true;
            return r;
        }
    }
    return NULL;
}

static bool origin_allowed(const yan_server *s, const char *origin) {
    for (int i = 0; i < s->p.n_cors; i++)
        if (!strcmp(s->p.cors[i], "*") || !strcasecmp(s->p.cors[i], origin)) return true;
    return false;
}

static enum MHD_Result do_post(conn *k) {
    yan_server *s = k->srv;
    if (k->has_early) {
        if (k->early.status == 429) return hs_respond_error_h(k, &k->early, "Retry-After", k->retry_after);
        return hs_respond_error(k, &k->early);
    }
    if (atomic_load(&s->draining))
        return hs_respond_error_h(k,
                               &(yan_api_error){503, "server_error", "server_shutting_down", "",
                                                "the server is shutting down"},
                               "Connection", "close");
    if (k->rt->route == R_KB_SEARCH) return hs_kb_search(k);
    if (k->rt->route == R_KB_DOCUMENTS) return hs_kb_documents(k);
    static const yan_rq_kind KIND[] = {
        [R_CHAT] = YAN_RQ_CHAT, [R_COMPLETIONS] = YAN_RQ_COMPLETION, [R_EMBEDDINGS] = YAN_RQ_EMBED,
        [R_MODERATIONS] = YAN_RQ_MODERATION, [R_TOKENIZE] = YAN_RQ_TOKENIZE, [R_DETOKENIZE] = YAN_RQ_DETOKENIZE,
    };
    yan_api_error err;
    if (yan_api_parse(KIND[k->rt->route], k->body.data, k->body.len, &k->arena, &k->req, &err))
        return hs_respond_error(k, &err);
    k->model_name = s->model_id;
    if (k->rt->route == R_CHAT || k->rt->route == R_COMPLETIONS || k->rt->route == R_EMBEDDINGS) {
        if (!model_is_local(s, k->req.model)) {
            if (s->proxy) {
                k->model_name = k->req.model;
                return hs_proxy(k);
            }
            char msg[300];
            snprintf(msg, sizeof msg, "The model '%.200s' does not exist; this server hosts '%s'", k->req.model,
                     s->model_id);
            return hs_fail(k, 404, "invalid_request_error", "model_not_found", "model", msg);
        }
    }
    switch (k->rt->route) {
    case R_CHAT:
    case R_COMPLETIONS: return hs_generate(k);
    case R_EMBEDDINGS: return hs_embeddings(k);
    case R_MODERATIONS: return hs_moderations(k);
    case R_TOKENIZE: return hs_tokenize(k);
    case R_DETOKENIZE: return hs_detokenize(k);
    default: return hs_fail(k, 404, "not_found_error", NULL, NULL, "not found");
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    yan_server *s = cls;
    conn *k = *con_cls;
    if (!k) {
        k = yan_calloc(1, sizeof *k);
        if (!k) return MHD_NO;
        *con_cls = k;
        k->srv = s;
        k->mc = mc;
        k->t0 = yan_now();
        k->key = -1;
        k->status = 0;
        yan_arena_init(&k->arena, 16384);
        const char *hid = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "X-Request-Id");
        if (plain_id(hid)) snprintf(k->rid, sizeof k->rid, "%s", hid);
        else rand_hex(k->rid, 12);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        k->fd = ci ? ci->connect_fd : -1;
        atomic_fetch_add(&s->n_req, 1);
        atomic_fetch_add(&s->active, 1);
        const char *origin = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Origin");
        if (origin && origin_allowed(s, origin)) k->origin = yan_strdup(origin);

        bool known = false;
        k->rt = find_route(url, &known);
        k->ep = k->rt ? k->rt->ep : YAN_EP_OTHER;
        bool is_post = !strcmp(method, "POST"), is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
        if (!strcmp(method, "OPTIONS")) { /* CORS preflight */
            struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
            if (!r) return MHD_NO;
            if (k->origin) {
                MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
                const char *rh = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Access-Control-Request-Headers");
                MHD_add_response_header(r, "Access-Control-Allow-Headers", rh ? rh : "Authorization, Content-Type");
                MHD_add_response_header(r, "Access-Control-Max-Age", "600");
            }
            MHD_add_response_header(r, "Allow", k->rt ? (k->rt->post ? "POST, OPTIONS" : "GET, HEAD, OPTIONS") : "OPTIONS");
            hs_add_headers(k, r);
            k->status = k->rt ? 204 : 404;
            enum MHD_Result ret = MHD_queue_response(mc, (unsigned)k->status, r);
            MHD_destroy_response(r);
            return ret;
        }
        if (!k->rt) {
            char msg[300];
            snprintf(msg, sizeof msg, "no route for %.16s %.200s", method, url);
            return hs_fail(k, 404, "not_found_error", NULL, NULL, msg);
        }
        if ((k->rt->post && !is_post) || (!k->rt->post && !is_get)) {
            char msg[300];
            snprintf(msg, sizeof msg, "%.16s is not allowed on %.200s (use %s)", method, url,
                     k->rt->post ? "POST" : "GET");
            yan_api_error e;
            yan_api_error_set(&e, 405, "invalid_request_error", "method_not_allowed", NULL, "%s", msg);
            return hs_respond_error_h(k, &e, "Allow", k->rt->post ? "POST, OPTIONS" : "GET, HEAD, OPTIONS");
        }
        /* authentication */
        if (!k->rt->open && s->p.keys.n > 0) {
            const char *auth = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Authorization");
            k->key = yan_keyring_match(&s->p.keys, auth);
            if (k->key < 0) {
                k->has_early = true;
                yan_api_error_set(&k->early, 401, "authentication_error", "invalid_api_key", NULL,
                                  auth ? "Incorrect API key provided" : "Missing API key: send 'Authorization: Bearer <key>'");
            }
        }
        /* rate limits: every API call but monitoring */
        if (!k->has_early && !k->rt->open && k->rt->route != R_METRICS) rate_limited(k);
        if (is_get) {
            if (k->has_early)
                return hs_respond_error_h(k, &k->early, k->early.status == 429 ? "Retry-After" : NULL, k->retry_after);
            switch (k->rt->route) {
            case R_WEB: return do_web(k);
            case R_HEALTH: return do_health(k);
            case R_MODELS: return do_models(k);
            case R_MODEL_ONE: return do_model_one(k, url);
            case R_METRICS: return do_metrics(k);
            default: return hs_fail(k, 404, "not_found_error", NULL, NULL, "not found");
            }
        }
        /* body size */
        const char *cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Content-Length");
        if (cl) {
            unsigned long long len = strtoull(cl, NULL, 10);
            if (len > s->p.max_body) {
                if (len > 64ull << 20) { /* do not read that: answer now and close */
                    char msg[200];
                    snprintf(msg, sizeof msg, "the request body (%llu bytes) is larger than the limit of %zu bytes",
                             len, s->p.max_body);
                    return hs_fail(k, 413, "invalid_request_error", "request_too_large", NULL, msg);
                }
                if (!k->has_early) {
                    k->has_early = true;
                    yan_api_error_set(&k->early, 413, "invalid_request_error", "request_too_large", NULL,
                                      "the request body (%llu bytes) is larger than the limit of %zu bytes", len,
                                      s->p.max_body);
                }
            }
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!k->has_early) {
            if (k->body.len + *upload_size > k->srv->p.max_body) {
                k->has_early = true;
                yan_api_error_set(&k->early, 413, "invalid_request_error", "request_too_large", NULL,
                                  "the request body is larger than the limit of %zu bytes", k->srv->p.max_body);
                yan_buf_free(&k->body);
            } else if (!yan_buf_append(&k->body, upload, *upload_size)) {
                k->has_early = true;
                yan_api_error_set(&k->early, 500, "server_error", NULL, NULL, "out of memory for the request body");
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    return do_post(k);
}

/* ---------------------------------------------------------- completion */

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)mc;
    yan_server *s = cls;
    conn *k = *con_cls;
    if (!k) return;
    *con_cls = NULL;
    double dt = yan_now() - k->t0;
    bool aborted = toe != MHD_REQUEST_TERMINATED_COMPLETED_OK;
    if (k->job) {
        yan_sched_lock(s->sched);
        bool done = k->job->phase == YAN_PHASE_DONE;
        if (done) hs_account(k);
        yan_sched_unlock(s->sched);
        if (k->submitted && !done && !k->cancel_reason) k->cancel_reason = aborted ? "client_disconnect" : "cancelled";
        yan_sched_release(s->sched, k->job, YAN_CANCEL_CLIENT);
        k->job = NULL;
    }
    if (aborted && k->stream && !k->stream_over && k->status == 200) k->status = 499;
    if (k->status == 0) k->status = aborted ? 499 : 500;
    yan_metrics_request(&s->mx, k->ep, k->status, dt);
    if (k->prompt_tokens + k->completion_tokens > 0)
        yan_limiter_tokens(&s->lim, k->key, yan_now(), (double)(k->prompt_tokens + k->completion_tokens));

    const char *key_id = k->key >= 0 ? s->p.keys.keys[k->key].id : NULL;
    bool api = k->rt && !k->rt->open && k->rt->route != R_METRICS && k->rt->route != R_MODELS &&
               k->rt->route != R_MODEL_ONE;
    if (k->ep != YAN_EP_HEALTH && k->ep != YAN_EP_METRICS) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "request_id", k->rid);
        cJSON_AddStringToObject(o, "endpoint", yan_endpoint_name(k->ep));
        cJSON_AddNumberToObject(o, "status", k->status);
        cJSON_AddNumberToObject(o, "ms", round(dt * 1e4) / 10);
        if (key_id) cJSON_AddStringToObject(o, "key_id", key_id);
        if (k->prompt_tokens) cJSON_AddNumberToObject(o, "prompt_tokens", (double)k->prompt_tokens);
        if (k->completion_tokens) cJSON_AddNumberToObject(o, "completion_tokens", (double)k->completion_tokens);
        if (k->cached_tokens) cJSON_AddNumberToObject(o, "cached_tokens", (double)k->cached_tokens);
        if (k->finish) cJSON_AddStringToObject(o, "finish", k->finish);
        if (k->stream) cJSON_AddBoolToObject(o, "stream", true);
        if (k->up) cJSON_AddStringToObject(o, "upstream", yan_proxy_url(s->proxy));
        if (k->cancel_reason) cJSON_AddStringToObject(o, "cancelled", k->cancel_reason);
        yan_slog_emit(&s->log, k->status >= 500 ? YAN_LOG_WARN : YAN_LOG_INFO, "request", o);
    }
    if (api && s->log.audit) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "request_id", k->rid);
        if (key_id) cJSON_AddStringToObject(a, "key_id", key_id);
        else cJSON_AddNullToObject(a, "key_id");
        cJSON_AddStringToObject(a, "model", k->model_name ? k->model_name : s->model_id);
        cJSON_AddStringToObject(a, "endpoint", yan_endpoint_name(k->ep));
        cJSON_AddNumberToObject(a, "prompt_tokens", (double)k->prompt_tokens);
        cJSON_AddNumberToObject(a, "completion_tokens", (double)k->completion_tokens);
        cJSON_AddStringToObject(a, "moderation", k->moderation ? k->moderation : "none");
        cJSON_AddBoolToObject(a, "prompt_injection", k->injection);
        if (k->finish) cJSON_AddStringToObject(a, "finish", k->finish);
        cJSON_AddNumberToObject(a, "status", k->status);
        if (s->log.audit_text && k->body.data) {
            yan_buf t = {0};
            yan_utf8_sanitize(&t, k->body.data, k->body.len);
            cJSON_AddStringToObject(a, "request_body", t.data ? t.data : "");
            yan_buf_free(&t);
        }
        yan_slog_audit(&s->log, a);
    }
    yan_upstream_free(k->up);
    yan_pfilter_free(k->pf);
    hs_kb_req_free(k);
    yan_buf_free(&k->body);
    yan_buf_free(&k->out);
    yan_arena_free(&k->arena);
    yan_free(k->cs);
    yan_free(k->origin);
    yan_free(k);
    atomic_fetch_sub(&s->active, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    yan_server *s = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = 0;
    yan_slog_msg(&s->log, YAN_LOG_WARN, "http", "%s", msg);
}

/* ------------------------------------------------------------ lifecycle */

yan_serve_params yan_serve_params_default(void) {
    yan_serve_params p;
    memset(&p, 0, sizeof p);
    p.host = "127.0.0.1";
    p.port = 8080;
    p.ep = yan_engine_params_default();
    p.ep.n_seq_max = 4;
    p.load = YAN_LOAD_AUTO;
    p.sp = yan_sampler_params_default();
    p.max_body = 8u << 20;
    p.queue_max = 64;
    p.queue_timeout = 30;
    p.timeout = 600;
    p.shutdown_timeout = 10;
    p.max_connections = 256;
    p.moderation = "block";
    p.web = true;
    p.log_level = YAN_LOG_INFO;
    return p;
}

static char *file_name(const char *path, bool strip_ext) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    if (strip_ext && n > 5 && !strcmp(b + n - 5, ".gguf")) n -= 5;
    return yan_strndup(b, n);
}

yan_status yan_server_start(yan_serve_params *pp, yan_server **out) {
    *out = NULL;
    yan_server *s = yan_calloc(1, sizeof *s);
    if (!s) return yan_fail(YAN_ERR_NOMEM, "out of memory");
    s->p = *pp;
    memset(&pp->keys, 0, sizeof pp->keys); /* ours now */
    s->created = (long)time(NULL);
    cJSON_Hooks hooks = {yan_malloc, yan_free};
    cJSON_InitHooks(&hooks);
    yan_status st = yan_slog_init(&s->log, s->p.log_level, s->p.audit_log, s->p.audit_text);
    if (st) {
        yan_keyring_free(&s->p.keys);
        yan_free(s);
        return st;
    }
    yan_metrics_init(&s->mx);
    yan_limiter_init(&s->lim, s->p.keys.n, s->p.rate_rpm, s->p.rate_tpm, yan_now());
    yan_log_set(yan_slog_sink, &s->log, YAN_LOG_WARN);

    const char *mm = s->p.moderation ? s->p.moderation : "block";
    s->mod_mode = !strcmp(mm, "off") ? 0 : !strcmp(mm, "flag") ? 1 : 2;
    if (s->mod_mode || s->p.reject_injection) {
        yan_moderator_params mp = yan_moderator_params_default();
        mp.rules_path = s->p.rules;
        if ((st = yan_moderator_new(&mp, &s->mod))) goto fail;
        s->filter = (yan_output_filter){hs_filter_open, hs_filter_feed, hs_filter_close, s->mod};
    }
    if (s->p.upstream && (st = yan_proxy_new(s->p.upstream, s->p.upstream_key_file, s->p.timeout, &s->proxy)))
        goto fail;

    yan_model_params mp = yan_model_params_default();
    mp.load = s->p.load;
    if ((st = yan_model_load(s->p.model_path, &mp, &s->model))) goto fail;
    s->tok = yan_model_tokenizer(s->model);
    s->model_id = s->p.model_name ? yan_strdup(s->p.model_name) : file_name(s->p.model_path, false);
    s->model_path_base = file_name(s->p.model_path, true);
    if (!s->model_id || !s->model_path_base) {
        st = yan_fail(YAN_ERR_NOMEM, "out of memory");
        goto fail;
    }
    yan_engine_params ep = s->p.ep;
    ep.kv_type = s->p.kv_type;
    if ((st = yan_engine_new(s->model, &ep, &s->engine))) goto fail;
    if (yan_engine_n_batch(s->engine) < yan_engine_n_seq_max(s->engine)) {
        /* every running sequence takes one token of each step */
        st = yan_fail(YAN_ERR_INVALID_ARG, "--batch (%d) must be at least --parallel (%d)",
                      (int)yan_engine_n_batch(s->engine), (int)yan_engine_n_seq_max(s->engine));
        goto fail;
    }
    yan_sched_params sp = {.queue_max = s->p.queue_max, .metrics = &s->mx};
    if ((st = yan_sched_new(s->engine, &sp, &s->sched))) goto fail;
    if (s->p.kb_path && (st = hs_kb_open(s))) goto fail;

    /* listen */
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof port, "%d", s->p.port);
    int gai = getaddrinfo(s->p.host, port, &hints, &ai);
    if (gai || !ai) {
        st = yan_fail(YAN_ERR_INVALID_ARG, "--host %s: %s", s->p.host, gai_strerror(gai));
        goto fail;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
                     MHD_USE_ITC | MHD_USE_TURBO;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                            MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)(s->p.max_connections > 0 ? s->p.max_connections : 256),
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256 * 1024),
                            MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
                            MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->d) {
        st = yan_fail(YAN_ERR_IO, "cannot listen on %s:%d (in use, or not an address of this machine)", s->p.host,
                      s->p.port);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? (int)di->port : s->p.port;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "host", s->p.host);
    cJSON_AddNumberToObject(o, "port", s->port);
    cJSON_AddStringToObject(o, "model", s->model_id);
    cJSON_AddNumberToObject(o, "n_ctx", yan_engine_n_ctx(s->engine));
    cJSON_AddNumberToObject(o, "parallel", yan_engine_n_seq_max(s->engine));
    cJSON_AddNumberToObject(o, "batch", yan_engine_n_batch(s->engine));
    cJSON_AddNumberToObject(o, "kv_blocks", (double)yan_engine_blocks_total(s->engine));
    cJSON_AddNumberToObject(o, "api_keys", s->p.keys.n);
    cJSON_AddStringToObject(o, "moderation", mm);
    if (s->proxy) cJSON_AddStringToObject(o, "upstream", yan_proxy_url(s->proxy));
    yan_slog_emit(&s->log, YAN_LOG_INFO, "listening", o);
    bool loopback = !strncmp(s->p.host, "127.", 4) || !strcmp(s->p.host, "::1") || !strcmp(s->p.host, "localhost");
    if (!loopback && s->p.keys.n == 0)
        yan_slog_msg(&s->log, YAN_LOG_WARN, "security",
                     "listening on %s without API keys: anyone who can reach this address can use the model "
                     "(set --api-key or --api-key-file)", s->p.host);
    *out = s;
    return YAN_OK;
fail:
    yan_server_free(s);
    return st;
}

int yan_server_port(const yan_server *s) { return s->port; }

void yan_server_shutdown(yan_server *s) {
    if (!s || s->shut) return;
    s->shut = true;
    yan_slog_msg(&s->log, YAN_LOG_INFO, "shutdown", "stopping: no new connections; %.0f s for running requests",
                 s->p.shutdown_timeout);
    atomic_store(&s->draining, true);
    if (s->d) {
        MHD_socket ls = MHD_quiesce_daemon(s->d);
        if (ls != MHD_INVALID_SOCKET) close(ls);
    }
    double deadline = yan_now() + s->p.shutdown_timeout;
    if (s->sched) {
        yan_sched_drain(s->sched);
        bool idle = yan_sched_wait_idle(s->sched, deadline);
        if (!idle) {
            yan_slog_msg(&s->log, YAN_LOG_WARN, "shutdown", "cancelling the requests still running");
            yan_sched_cancel_all(s->sched);
            yan_sched_wait_idle(s->sched, yan_now() + 5);
        }
    }
    /* let the connections finish writing what they have (the end of a
     * stream, a proxied answer) before they are closed */
    double until = deadline > yan_now() + 2 ? deadline : yan_now() + 2;
    while (atomic_load(&s->active) > 0 && yan_now() < until) {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&s->stopping, true);
    if (s->d) {
        MHD_stop_daemon(s->d);
        s->d = NULL;
    }
    yan_slog_msg(&s->log, YAN_LOG_INFO, "shutdown", "stopped after %llu requests",
                 (unsigned long long)atomic_load(&s->n_req));
}

void yan_server_free(yan_server *s) {
    if (!s) return;
    if (s->d) yan_server_shutdown(s); /* (a failed start has nothing to drain) */
    yan_sched_free(s->sched);
    hs_kb_close(s->kb);
    yan_engine_free(s->engine);
    yan_model_free(s->model);
    yan_proxy_free(s->proxy);
    yan_moderator_free(s->mod);
    yan_limiter_free(&s->lim);
    yan_metrics_free(&s->mx);
    yan_log_set(NULL, NULL, YAN_LOG_WARN);
    yan_slog_free(&s->log);
    yan_keyring_free(&s->p.keys);
    yan_free(s->model_id);
    yan_free(s->model_path_base);
    yan_free(s);
}
