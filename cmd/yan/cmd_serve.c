/* cmd_serve.c — `yan serve MODEL [options]`: the OpenAI-compatible HTTP
 * server (src/serve/serve.h). Parses the options, blocks SIGTERM/SIGINT so
 * that only this thread takes them, starts the server and waits for a
 * signal; then shuts down gracefully and exits 0. */
#include "cmd.h"

#include "serve/serve.h"

#include <pthread.h>
#include <signal.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: yan serve MODEL.gguf [options]\n\n"
            "An OpenAI-compatible API server with continuous batching: /v1/chat/completions,\n"
            "/v1/completions, /v1/embeddings, /v1/models, /v1/moderations, /tokenize,\n"
            "/detokenize, /health, /metrics (Prometheus) and a chat page at /.\n"
            "Logs are JSON lines on stderr. SIGTERM or SIGINT stops it gracefully.\n\n"
            "network:\n"
            "  --host ADDR            address to bind (default 127.0.0.1: this machine only;\n"
            "                         0.0.0.0 or :: to serve the network - set API keys)\n"
            "  --port N               port (default 8080; 0 = any free port, logged)\n"
            "  --max-connections N    open connections at once (default 256)\n"
            "  --cors-origin ORIGIN   allow browser requests from ORIGIN ('*' = any);\n"
            "                         repeatable\n"
            "  --no-web               do not serve the chat page at /\n"
            "model and engine:\n"
            "  --model-name NAME      the model's id in /v1/models (default: the file name)\n"
            "  --ctx N                longest sequence in tokens (default: the model's, at\n"
            "                         most 4096)\n"
            "  --parallel N           sequences generated at once (default 4)\n"
            "  --batch N              most tokens per engine step: decode tokens of every\n"
            "                         running sequence plus prompt chunks (default 512)\n"
            "  --kv-blocks N          KV cache pool in blocks of 32 positions (default: enough\n"
            "                         for --parallel full sequences)\n"
            "  --kv-type f16|f32      KV cache precision (default f16)\n"
            "  --threads N, -t N      threads (default: all cores)\n"
            "  --no-mmap, --mmap      copy the weights into huge-page memory, or map the file;\n"
            "                         default: copy when it takes at most half of the free memory\n"
            "  --chat-template NAME   chatml, llama2, llama3, zephyr, mistral, gemma or phi3\n"
            "                         instead of the model's own template\n"
            "request defaults (a request's own fields win):\n"
            "%s"
            "security and limits:\n"
            "  --api-key KEY          require 'Authorization: Bearer KEY' on every endpoint\n"
            "                         except /health and the page; repeatable (ids key1, ...)\n"
            "  --api-key-file FILE    keys, one a line: 'KEY' or 'ID:KEY' ('#' comments)\n"
            "  --rate-limit-rpm N     requests per minute per key (0 = no limit)\n"
            "  --rate-limit-tpm N     tokens (prompt + completion) per minute per key\n"
            "  --max-body BYTES       largest request body (default 8388608; 413 beyond)\n"
            "  --queue-max N          requests waiting for a slot before 503 (default 64)\n"
            "  --queue-timeout S      seconds a request may wait for a slot (default 30; 503)\n"
            "  --timeout S            seconds a request may take in all (default 600)\n"
            "  --shutdown-timeout S   seconds running requests get on SIGTERM (default 10)\n"
            "content safety:\n"
            "  --moderation MODE      block (default): inputs that break the rules get 400\n"
            "                         (type content_filter); flag: they are logged and\n"
            "                         counted but served; off. Outputs are checked as they\n"
            "                         stream unless off: a match ends the choice with\n"
            "                         finish_reason content_filter before its text is sent.\n"
            "  --moderation-rules FILE  rules file instead of the built-in set\n"
            "  --reject-injection     refuse user messages the prompt-injection screen flags\n"
            "                         (400; they are always logged and counted)\n"
            "  --audit-log FILE       append one JSON line per API request (time, request id,\n"
            "                         key id, model, endpoint, tokens, moderation, status)\n"
            "  --audit-log-text       also write the request body to the audit log\n"
            "knowledge base (docs/RAG.md):\n"
            "  --kb FILE              serve a knowledge base (made by yan kb add):\n"
            "                         POST /v1/kb/search, POST /v1/kb/documents (uploads go to\n"
            "                         uploads-FILE/ beside it), and chat requests with\n"
            "                         \"kb\": true answered from it with citations\n"
            "  --kb-embed-model FILE  the knowledge base's embedding model, when it must be named\n"
            "upstream proxy:\n"
            "  --upstream URL         forward requests for other models to this\n"
            "                         OpenAI-compatible base URL (e.g. http://host:8081/v1)\n"
            "  --upstream-key-file F  the upstream's API key (first line of F)\n"
            "logging:\n"
            "  --log-level L          debug, info (default), warn or error\n\n"
            "Docs: docs/SERVING.md.\n\n"
            "example: yan serve tinyllama-q4_K_M.gguf --port 8080 --parallel 8 --api-key sk-local\n",
            cmd_sampler_help());
}

static double opt_seconds(const char *opt, const char *v) { return cmd_float(opt, v); }

int yan_cmd_serve(int argc, char **argv) {
    yan_serve_params p = yan_serve_params_default();
    const char **cors = calloc((size_t)argc + 1, sizeof *cors);
    if (!cors) return cmd_fail("serve", YAN_ERR_NOMEM);
    int rc = 2;
    yan_status st;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cmd_is_help(a)) { usage(stdout); rc = 0; goto out; }
        else if (cmd_sampler_option(argc, argv, &i, &p.sp, &p.seeded)) continue;
        else if (!strcmp(a, "--host") && v) { p.host = v; i++; }
        else if (!strcmp(a, "--port")) { p.port = cmd_int(a, v); i++; }
        else if (!strcmp(a, "--model-name") && v) { p.model_name = v; i++; }
        else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) { p.ep.n_ctx = cmd_int(a, v); i++; }
        else if (!strcmp(a, "--parallel") || !strcmp(a, "-np")) { p.ep.n_seq_max = cmd_int(a, v); i++; }
        else if (!strcmp(a, "--batch") || !strcmp(a, "-b")) { p.ep.n_batch = cmd_int(a, v); i++; }
        else if (!strcmp(a, "--kv-blocks")) { p.ep.n_blocks = cmd_int(a, v); i++; }
        else if (!strcmp(a, "--kv-type")) { cmd_kv_type(a, v, &p.kv_type); i++; }
        else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) { p.ep.n_threads = cmd_int(a, v); i++; }
        else if (!strcmp(a, "--no-mmap")) p.load = YAN_LOAD_COPY;
        else if (!strcmp(a, "--mmap")) p.load = YAN_LOAD_MMAP;
        else if (!strcmp(a, "--chat-template") && v) { p.chat_template = v; i++; }
        else if (!strcmp(a, "--api-key") && v) {
            if ((st = yan_keyring_add(&p.keys, NULL, v, strlen(v)))) { cmd_fail("--api-key", st); goto out; }
            i++;
        } else if (!strcmp(a, "--api-key-file") && v) {
            if ((st = yan_keyring_load(&p.keys, v))) { cmd_fail("--api-key-file", st); goto out; }
            i++;
        }
        else if (!strcmp(a, "--rate-limit-rpm")) { p.rate_rpm = cmd_float(a, v); i++; }
        else if (!strcmp(a, "--rate-limit-tpm")) { p.rate_tpm = cmd_float(a, v); i++; }
        else if (!strcmp(a, "--cors-origin") && v) { cors[p.n_cors++] = v; i++; }
        else if (!strcmp(a, "--max-body")) { p.max_body = (size_t)cmd_int(a, v); i++; }
        else if (!strcmp(a, "--queue-max")) { p.queue_max = cmd_int(a, v); i++; }
        else if (!strcmp(a, "--queue-timeout")) { p.queue_timeout = opt_seconds(a, v); i++; }
        else if (!strcmp(a, "--timeout")) { p.timeout = opt_seconds(a, v); i++; }
        else if (!strcmp(a, "--shutdown-timeout")) { p.shutdown_timeout = opt_seconds(a, v); i++; }
        else if (!strcmp(a, "--max-connections")) { p.max_connections = cmd_int(a, v); i++; }
        else if (!strcmp(a, "--audit-log") && v) { p.audit_log = v; i++; }
        else if (!strcmp(a, "--audit-log-text")) p.audit_text = true;
        else if (!strcmp(a, "--moderation") && v) {
            if (strcmp(v, "off") && strcmp(v, "flag") && strcmp(v, "block")) {
                fprintf(stderr, "yan serve: --moderation must be off, flag or block, not '%s'\n", v);
                goto out;
            }
            p.moderation = v;
            i++;
        }
        else if (!strcmp(a, "--moderation-rules") && v) { p.rules = v; i++; }
        else if (!strcmp(a, "--reject-injection")) p.reject_injection = true;
        else if (!strcmp(a, "--kb") && v) { p.kb_path = v; i++; }
        else if (!strcmp(a, "--kb-embed-model") && v) { p.kb_embed_model = v; i++; }
        else if (!strcmp(a, "--upstream") && v) { p.upstream = v; i++; }
        else if (!strcmp(a, "--upstream-key-file") && v) { p.upstream_key_file = v; i++; }
        else if (!strcmp(a, "--no-web")) p.web = false;
        else if (!strcmp(a, "--log-level") && v) {
            if (!strcmp(v, "debug")) p.log_level = YAN_LOG_DEBUG;
            else if (!strcmp(v, "info")) p.log_level = YAN_LOG_INFO;
            else if (!strcmp(v, "warn")) p.log_level = YAN_LOG_WARN;
            else if (!strcmp(v, "error")) p.log_level = YAN_LOG_ERROR;
            else {
                fprintf(stderr, "yan serve: --log-level must be debug, info, warn or error\n");
                goto out;
            }
            i++;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "yan serve: unknown option '%s' (or it needs a value)\n", a);
            usage(stderr);
            goto out;
        } else if (!p.model_path) p.model_path = a;
        else {
            fprintf(stderr, "yan serve: unexpected argument '%s'\n", a);
            goto out;
        }
    }
    if (!p.model_path) {
        fprintf(stderr, "yan serve: MODEL is required\n");
        usage(stderr);
        goto out;
    }
    if (p.port > 65535) {
        fprintf(stderr, "yan serve: --port must be at most 65535\n");
        goto out;
    }
    if (p.ep.n_seq_max == 0 || p.max_body == 0) {
        fprintf(stderr, "yan serve: --parallel and --max-body must be at least 1\n");
        goto out;
    }
    p.cors = cors;

    /* signals: this thread alone takes them (threads inherit the mask) */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    yan_server *srv = NULL;
    if ((st = yan_server_start(&p, &srv))) {
        cmd_fail("serve", st);
        rc = 1;
        goto out;
    }
    int sig = 0;
    sigwait(&set, &sig);
    yan_server_shutdown(srv);
    yan_server_free(srv);
    rc = 0;
out:
    yan_keyring_free(&p.keys);
    free(cors);
    return rc;
}
