/* http.h — what the two halves of the server share (private to src/serve):
 * server.c (libmicrohttpd glue: routing, authentication, limits, GET routes,
 * request completion, logs, audit, the server's life cycle) and api.c (the
 * OpenAI endpoints: generation with SSE streaming, embeddings, tokenize,
 * moderation, the proxy). A request is one `conn`, used only by its
 * connection's thread. */
#ifndef YAN_SERVE_HTTP_H
#define YAN_SERVE_HTTP_H

#include "serve/serve.h"

#include "safety/safety.h"
#include "serve/log.h"
#include "serve/metrics.h"
#include "serve/proxy.h"
#include "serve/proxy_filter.h"
#include "serve/request.h"
#include "serve/sched.h"

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <stdatomic.h>

enum {
    R_NONE, R_WEB, R_HEALTH, R_MODELS, R_MODEL_ONE, R_METRICS, R_CHAT, R_COMPLETIONS, R_EMBEDDINGS,
    R_MODERATIONS, R_TOKENIZE, R_DETOKENIZE, R_KB_SEARCH, R_KB_DOCUMENTS
};

typedef struct hs_kb hs_kb;         /* kbapi.c: the server's knowledge base */
typedef struct hs_kb_req hs_kb_req; /* kbapi.c: a chat request's retrieval */

typedef struct {
    const char *path;
    int route;
    bool post;      /* POST (else GET) */
    bool prefix;    /* path is a prefix (models/{id}) */
    bool open;      /* no API key needed */
    yan_endpoint ep;
} route_def;

struct yan_server {
    yan_serve_params p;
    char *model_id;
    char *model_path_base;      /* file name without ".gguf" (accepted as a model name too) */
    yan_model *model;
    const yan_tokenizer *tok;
    yan_engine *engine;
    yan_sched *sched;
    yan_metrics mx;
    yan_slog log;
    yan_limiter lim;
    yan_proxy *proxy;
    yan_moderator *mod;
    int mod_mode;               /* 0 off, 1 flag, 2 block */
    yan_output_filter filter;
    hs_kb *kb;                  /* --kb, or NULL */
    struct MHD_Daemon *d;
    int port;
    long created;
    atomic_bool draining;
    atomic_bool stopping;
    atomic_uint_fast64_t n_req;
    atomic_int active;          /* requests between their first call and their completion */
    bool shut;
};

typedef struct {
    size_t text_sent, lp_sent;
    bool fin_sent;
} cstream;

typedef struct {
    yan_server *srv;
    struct MHD_Connection *mc;
    const route_def *rt;
    yan_endpoint ep;
    char rid[72];
    double t0;
    int key;                    /* index in the keyring, -1 = none */
    int fd;
    yan_buf body;
    bool has_early;
    yan_api_error early;
    char retry_after[24];       /* Retry-After of an early 429 */
    int status;
    char *origin;               /* allowed Origin to echo (CORS) */
    /* request */
    yan_arena arena;
    yan_api_req req;
    const char *model_name;     /* as answered */
    /* generation */
    yan_job *job;
    bool submitted;             /* the job went to the scheduler */
    bool chat;
    char id[96];
    long created;
    const char *echo_text;
    size_t echo_len;
    cstream *cs;
    yan_buf out;                /* SSE bytes not yet handed to MHD */
    size_t out_off;
    bool stream, stream_over, head_sent;
    double last_send, deadline, queue_deadline;
    /* accounting */
    int64_t prompt_tokens, completion_tokens, cached_tokens;
    const char *finish;
    const char *moderation;     /* "off", "pass", "flagged", "blocked" */
    bool injection;
    const char *cancel_reason;
    /* proxy */
    yan_upstream_call *up;
    yan_pfilter *pf;            /* output moderation of the upstream's answer (NULL = as it comes; uses out) */
    /* knowledge base (chat with "kb") */
    hs_kb_req *kbq;
} conn;


/* ------------------------------------------------------- shared helpers */

/* Queue a response with a copied body (and one extra header when h1 is set). */
enum MHD_Result hs_respond(conn *k, int status, const char *ctype, const char *body, size_t len, const char *h1,
                           const char *v1);
/* Queue o (deleted) as JSON. */
enum MHD_Result hs_respond_json(conn *k, int status, cJSON *o);
/* Queue OpenAI's error JSON for e (and one extra header). */
enum MHD_Result hs_respond_error_h(conn *k, const yan_api_error *e, const char *h, const char *v);
enum MHD_Result hs_respond_error(conn *k, const yan_api_error *e);
enum MHD_Result hs_fail(conn *k, int status, const char *type, const char *code, const char *param, const char *msg);
/* X-Request-Id and the CORS headers of an allowed origin. */
void hs_add_headers(conn *k, struct MHD_Response *r);
/* True when the client closed (or reset) its connection. */
bool hs_client_gone(int fd);
/* Print o unformatted and delete it; NULL on OOM. Free with cJSON_free. */
char *hs_json_print(cJSON *o);
uint64_t hs_random_seed(void);

/* ----------------------------------------------------- api.c endpoints */

enum MHD_Result hs_generate(conn *k);     /* chat and completions (k->rt says which) */
enum MHD_Result hs_embeddings(conn *k);
enum MHD_Result hs_moderations(conn *k);
enum MHD_Result hs_tokenize(conn *k);
enum MHD_Result hs_detokenize(conn *k);
enum MHD_Result hs_proxy(conn *k);        /* a model this server does not host */
/* Token counts and the first finish reason of k->job (done, or lock held). */
void hs_account(conn *k);
/* The output filter (streaming moderation) over a yan_moderator (ud). */
void *hs_filter_open(void *ud);
bool hs_filter_feed(void *ud, void *state, const char *p, size_t n, bool final, uint64_t *cut);
void hs_filter_close(void *ud, void *state);

/* ------------------------------------------- kbapi.c: the knowledge base */

/* Open s->p.kb_path into s->kb (errors name the file). */
yan_status hs_kb_open(yan_server *s);
void hs_kb_close(hs_kb *kb);
enum MHD_Result hs_kb_search(conn *k);    /* POST /v1/kb/search */
enum MHD_Result hs_kb_documents(conn *k); /* POST /v1/kb/documents */
/* A chat request that names the knowledge base: retrieve and put the
 * sources into k->req.msgs (returns false: generate as usual), or answer
 * at once (returns true with *ret: an error, or the not-found answer). */
bool hs_kb_chat(conn *k, enum MHD_Result *ret);
/* Add "citations" and "kb" to a chat.completion (o) of such a request, and
 * drop citations of unknown sources from its messages. */
void hs_kb_response(conn *k, cJSON *o);
/* The same for the last chunk of its stream. */
void hs_kb_stream_end(conn *k, cJSON *o);
void hs_kb_req_free(conn *k);

#endif /* YAN_SERVE_HTTP_H */
