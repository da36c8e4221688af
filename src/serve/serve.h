/* serve.h — `yan serve`: an OpenAI-compatible HTTP server over one model,
 * with continuous batching (sched.h), API keys and rate limits (auth.h),
 * moderation, metrics, an upstream proxy and a web chat page.
 *
 * Threads: libmicrohttpd runs one thread per connection (it blocks while a
 * request waits for the engine or streams its tokens: a connection is a
 * thread, bounded by --max-connections); the scheduler runs one engine
 * thread; each proxied request runs one libcurl thread. The caller's thread
 * only starts and stops the server (signals are the caller's business: block
 * SIGTERM/SIGINT before yan_server_start so that no server thread takes
 * them, then wait for one and call yan_server_shutdown).
 *
 * Docs: docs/SERVING.md. */
#ifndef YAN_SERVE_H
#define YAN_SERVE_H

#include "model/engine.h"
#include "serve/auth.h"

typedef struct {
    const char *model_path;
    const char *model_name;     /* id in /v1/models; NULL = the file name */
    const char *host;           /* bind address (default 127.0.0.1) */
    int port;                   /* 0 = any free port (yan_server_port tells) */
    yan_engine_params ep;
    yan_kv_type kv_type;
    yan_load_mode load;         /* how the weights are loaded (YAN_LOAD_AUTO) */
    yan_sampler_params sp;      /* defaults for requests that do not say */
    bool seeded;                /* sp.seed is the default seed (else a random one per request) */
    const char *chat_template;  /* family name; NULL = the model's */
    yan_keyring keys;           /* empty = no authentication */
    double rate_rpm, rate_tpm;  /* per key; 0 = unlimited */
    const char *const *cors;    /* allowed origins ("*" = any) */
    int n_cors;
    size_t max_body;            /* bytes (413 beyond) */
    int queue_max;              /* waiting requests before 503 */
    double queue_timeout;       /* seconds a request may wait for a slot (503 after) */
    double timeout;             /* seconds per request (504 / stream error after) */
    double shutdown_timeout;    /* seconds running requests get to finish on shutdown */
    int max_connections;
    const char *audit_log;
    bool audit_text;
    const char *moderation;     /* "off", "flag" (default), "block" */
    const char *rules;          /* moderation rules file; NULL = built-in */
    bool reject_injection;
    const char *upstream, *upstream_key_file;
    bool web;                   /* serve the chat page at / (default true) */
    yan_log_level log_level;
    const char *kb_path;        /* knowledge base (src/rag/kb.h): /v1/kb/... and chat with "kb"; NULL = none */
    const char *kb_embed_model; /* its embedding model, when it must be named */
} yan_serve_params;

yan_serve_params yan_serve_params_default(void);

typedef struct yan_server yan_server;

/* Load the model, start the engine and listen. Takes ownership of p->keys
 * (cleared in *p). Errors name what failed (model file, address in use...). */
yan_status yan_server_start(yan_serve_params *p, yan_server **out);
int yan_server_port(const yan_server *s);
/* Graceful stop: stop accepting, refuse new requests, give running ones
 * shutdown_timeout seconds, cancel the rest (streams end with an error
 * event), close every connection. */
void yan_server_shutdown(yan_server *s);
/* Shutdown (if not done) and free everything. NULL: no-op. */
void yan_server_free(yan_server *s);

#endif /* YAN_SERVE_H */
