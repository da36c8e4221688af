/* api.c — the OpenAI endpoints of `yan serve` (see http.h, server.c):
 * chat and text completions (non-streaming answers and SSE streams, with
 * logprobs, n choices, echo, usage), embeddings, tokenize / detokenize,
 * moderations, the input checks (moderation, prompt-injection screen), the
 * output filter hooks the scheduler runs, and the upstream proxy (its chat
 * and completions answers go through the output moderation of
 * proxy_filter.h). Each handler runs on its connection's thread and blocks
 * while it waits for the engine, watching the client's socket and the
 * request's deadlines. */
#include "serve/http.h"

#include "model/model.h"
#include "serve/sse.h"

#include <math.h>
#include <time.h>

#define SSE_PING_S 15.0 /* a comment line keeps an idle stream alive */
#define WAIT_MS 50      /* how often a waiting request looks at its client */

/* -------------------------------------------------------- tokenize & co */

static enum MHD_Result bad_token(conn *k, const char *param, int32_t i, yan_token t) {
    char msg[200];
    snprintf(msg, sizeof msg, "token id %d (item %d) is outside the vocabulary of %d tokens", (int)t, (int)i,
             (int)yan_tokenizer_n_vocab(k->srv->tok));
    return hs_fail(k, 400, "invalid_request_error", NULL, param, msg);
}

enum MHD_Result hs_tokenize(conn *k) {
    const yan_tokenizer *tok = k->srv->tok;
    uint32_t flags = (k->req.add_special ? YAN_TOKENIZE_ADD_BOS : 0) | (k->req.parse_special ? YAN_TOKENIZE_SPECIAL : 0);
    yan_token *ids = NULL;
    size_t n = 0;
    if (yan_tokenize_alloc(tok, k->req.texts[0], k->req.text_lens[0], flags, &ids, &n))
        return hs_fail(k, 500, "server_error", NULL, NULL, yan_last_error());
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "tokens");
    char piece[512];
    for (size_t i = 0; i < n; i++) {
        if (!k->req.with_pieces) {
            cJSON_AddItemToArray(arr, cJSON_CreateNumber(ids[i]));
            continue;
        }
        cJSON *t = cJSON_CreateObject();
        cJSON_AddNumberToObject(t, "id", ids[i]);
        int64_t pl = yan_token_to_piece(tok, ids[i], piece, sizeof piece);
        yan_buf pb = {0};
        if (pl > 0) yan_utf8_sanitize(&pb, piece, (size_t)pl);
        cJSON_AddStringToObject(t, "piece", pb.data ? pb.data : "");
        yan_buf_free(&pb);
        cJSON_AddItemToArray(arr, t);
    }
    yan_free_tokens(ids);
    return hs_respond_json(k, 200, o);
}

/* The text of n token ids, NUL-terminated in the request's arena (its
 * length, which may include NUL bytes of byte tokens, in *len), or NULL when
 * out of memory. */
static char *detok_arena(conn *k, const yan_token *ids, size_t n, size_t *len) {
    const yan_tokenizer *tok = k->srv->tok;
    int64_t need = yan_detokenize(tok, ids, n, NULL, 0, false);
    size_t cap = need < 0 ? (size_t)-need : (size_t)need + 1;
    char *t = yan_arena_alloc(&k->arena, cap);
    int64_t got = t ? yan_detokenize(tok, ids, n, t, cap, false) : -1;
    if (got < 0) return NULL;
    *len = (size_t)got;
    return t;
}

enum MHD_Result hs_detokenize(conn *k) {
    const yan_tokenizer *tok = k->srv->tok;
    const yan_token *ids = k->req.toks[0];
    int32_t n = k->req.tok_lens[0];
    int32_t V = yan_tokenizer_n_vocab(tok);
    for (int32_t i = 0; i < n; i++)
        if (ids[i] >= V) return bad_token(k, "tokens", i, ids[i]);
    size_t got = 0;
    const char *buf = detok_arena(k, ids, (size_t)n, &got);
    if (!buf) return hs_fail(k, 500, "server_error", NULL, NULL, "out of memory");
    yan_buf t = {0};
    if (got > 0) yan_utf8_sanitize(&t, buf, got);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "content", t.data ? t.data : "");
    yan_buf_free(&t);
    return hs_respond_json(k, 200, o);
}

/* --------------------------------------------------------------- safety */

void *hs_filter_open(void *ud) {
    yan_moderate_stream *st = NULL;
    if (yan_moderate_stream_new((const yan_moderator *)ud, &st)) return NULL;
    return st;
}

bool hs_filter_feed(void *ud, void *state, const char *p, size_t n, bool final, uint64_t *cut) {
    (void)ud;
    yan_moderation res;
    yan_status st = yan_moderate_stream_feed(state, p, n, &res);
    if (!st && final) st = yan_moderate_stream_finish(state, &res);
    if (st || !res.flagged) return false;
    *cut = res.first.rule ? res.first.start : 0;
    return true;
}

void hs_filter_close(void *ud, void *state) {
    (void)ud;
    yan_moderate_stream_free(state);
}

/* Moderate the request's input texts; returns true when it must be refused. */
static bool moderate_input(conn *k, const char **texts, const size_t *lens, size_t n, yan_api_error *err) {
    yan_server *s = k->srv;
    if (!s->mod || s->mod_mode == 0) {
        k->moderation = "off";
        return false;
    }
    k->moderation = "pass";
    for (size_t i = 0; i < n; i++) {
        yan_moderation res;
        if (yan_moderate(s->mod, texts[i], lens[i], &res) || !res.flagged) continue;
        k->moderation = "flagged";
        yan_metrics_safety(&s->mx, 1, 0, 0);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "request_id", k->rid);
        cJSON_AddStringToObject(o, "category", yan_mod_category_name((int)res.first.category));
        cJSON_AddStringToObject(o, "rule", res.first.rule ? res.first.rule : "");
        cJSON_AddStringToObject(o, "action", s->mod_mode == 2 ? "block" : "flag");
        yan_slog_emit(&s->log, YAN_LOG_WARN, "moderation", o);
        if (s->mod_mode == 2) {
            k->moderation = "blocked";
            yan_metrics_reject(&s->mx, YAN_REJ_MODERATION);
            yan_api_error_set(err, 400, "content_filter", "content_policy_violation", NULL,
                              "the input was rejected by the content policy (category: %s)",
                              yan_mod_category_name((int)res.first.category));
            return true;
        }
        return false;
    }
    return false;
}

/* Screen user text for prompt injection: logged and counted; refused with
 * --reject-injection. */
static bool screen_injection(conn *k, const char *text, size_t len, yan_api_error *err) {
    yan_server *s = k->srv;
    if (!s->mod) return false;
    yan_injection_result r;
    if (yan_injection_check(s->mod, text, len, &r) || !r.flagged) return false;
    k->injection = true;
    yan_metrics_safety(&s->mx, 0, 0, 1);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "request_id", k->rid);
    cJSON_AddNumberToObject(o, "score", r.score);
    cJSON_AddStringToObject(o, "reason", r.reason);
    cJSON_AddStringToObject(o, "action", s->p.reject_injection ? "reject" : "flag");
    yan_slog_emit(&s->log, YAN_LOG_WARN, "prompt_injection", o);
    if (!s->p.reject_injection) return false;
    yan_metrics_reject(&s->mx, YAN_REJ_INJECTION);
    yan_api_error_set(err, 400, "content_filter", "prompt_injection", "messages",
                      "the input looks like a prompt-injection attempt and was rejected");
    return true;
}

/* Token-id inputs get the same input checks as text: they are turned back
 * into text (in the request's arena) and screened and moderated. True when
 * the request must be refused (err set). */
static bool check_token_inputs(conn *k, yan_api_error *err) {
    yan_server *s = k->srv;
    yan_api_req *r = &k->req;
    if (!s->mod || !r->inputs_are_tokens || r->n_inputs <= 0) return false;
    const char **texts = yan_arena_alloc(&k->arena, (size_t)r->n_inputs * sizeof *texts);
    size_t *lens = yan_arena_alloc(&k->arena, (size_t)r->n_inputs * sizeof *lens);
    if (!texts || !lens) {
        yan_api_error_set(err, 500, "server_error", NULL, NULL, "out of memory");
        return true;
    }
    for (int32_t i = 0; i < r->n_inputs; i++) {
        if (!(texts[i] = detok_arena(k, r->toks[i], (size_t)r->tok_lens[i], &lens[i]))) {
            yan_api_error_set(err, 500, "server_error", NULL, NULL, "out of memory");
            return true;
        }
        if (screen_injection(k, texts[i], lens[i], err)) return true;
    }
    return moderate_input(k, texts, lens, (size_t)r->n_inputs, err);
}

enum MHD_Result hs_moderations(conn *k) {
    yan_server *s = k->srv;
    if (!s->mod) return hs_fail(k, 501, "not_supported_error", NULL, NULL, "moderation is off (--moderation off)");
    int32_t n = k->req.n_inputs;
    yan_moderation *res = yan_calloc((size_t)n, sizeof *res);
    yan_injection_result *inj = yan_calloc((size_t)n, sizeof *inj);
    if (!res || !inj) {
        yan_free(res);
        yan_free(inj);
        return hs_fail(k, 500, "server_error", NULL, NULL, "out of memory");
    }
    for (int32_t i = 0; i < n; i++) {
        if (yan_moderate(s->mod, k->req.texts[i], k->req.text_lens[i], &res[i]) ||
            yan_injection_check(s->mod, k->req.texts[i], k->req.text_lens[i], &inj[i])) {
            yan_free(res);
            yan_free(inj);
            return hs_fail(k, 500, "server_error", NULL, NULL, yan_last_error());
        }
    }
    char id[96];
    snprintf(id, sizeof id, "modr-%s", k->rid);
    yan_buf b = {0};
    bool ok = yan_moderation_json(&b, id, res, inj, (size_t)n);
    int flagged = 0;
    for (int32_t i = 0; i < n; i++) flagged += res[i].flagged;
    k->moderation = flagged ? "flagged" : "pass";
    yan_free(res);
    yan_free(inj);
    if (!ok) {
        yan_buf_free(&b);
        return hs_fail(k, 500, "server_error", NULL, NULL, "out of memory");
    }
    /* the model field: what the client asked for, or ours */
    enum MHD_Result r = hs_respond(k, 200, "application/json", b.data, b.len, NULL, NULL);
    yan_buf_free(&b);
    return r;
}

/* ----------------------------------------------------------- embeddings */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void base64(yan_buf *b, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        char q[4] = {B64[v >> 18 & 63], B64[v >> 12 & 63], i + 1 < n ? B64[v >> 6 & 63] : '=', i + 2 < n ? B64[v & 63] : '='};
        yan_buf_append(b, q, 4);
    }
}

/* ------------------------------------------------- waiting for the engine */

enum { WT_OK, WT_QUEUE, WT_TIMEOUT, WT_GONE, WT_FAILED };

/* Wait until the job reaches `target` (RUNNING or DONE). Lock not held. */
static int wait_job(conn *k, yan_job_phase target) {
    yan_sched *sc = k->srv->sched;
    yan_job *j = k->job;
    int why = WT_OK;
    yan_sched_lock(sc);
    while (j->phase < target) {
        double now = yan_now();
        if (j->phase == YAN_PHASE_QUEUED && now > k->queue_deadline) {
            why = WT_QUEUE;
            break;
        }
        if (now > k->deadline) {
            why = WT_TIMEOUT;
            break;
        }
        if (hs_client_gone(k->fd)) {
            why = WT_GONE;
            break;
        }
        yan_sched_wait(sc, j, WAIT_MS);
    }
    if (why == WT_OK && j->phase == YAN_PHASE_DONE && j->failed) why = WT_FAILED;
    if (why == WT_QUEUE || why == WT_TIMEOUT || why == WT_GONE) {
        if (!j->cancel)
            yan_metrics_cancel(&k->srv->mx, why == WT_GONE ? YAN_CANCEL_CLIENT : YAN_CANCEL_TIMEOUT);
        yan_sched_cancel_locked(sc, j, why == WT_GONE ? YAN_CANCEL_CLIENT : YAN_CANCEL_TIMEOUT);
        k->cancel_reason = why == WT_GONE ? "client_disconnect" : why == WT_TIMEOUT ? "timeout" : "queue_timeout";
    }
    yan_sched_unlock(sc);
    if (why == WT_QUEUE) yan_metrics_reject(&k->srv->mx, YAN_REJ_QUEUE);
    return why;
}

static enum MHD_Result respond_wait_error(conn *k, int why) {
    switch (why) {
    case WT_QUEUE:
        return hs_respond_error_h(k,
                               &(yan_api_error){503, "server_error", "queue_timeout", "",
                                                "the server is busy: no slot became free within --queue-timeout; "
                                                "retry later"},
                               "Retry-After", "1");
    case WT_TIMEOUT:
        return hs_fail(k, 504, "server_error", "timeout", NULL, "the request took longer than the server's --timeout");
    case WT_GONE:
        k->status = 499;
        return MHD_NO; /* nobody to answer */
    default:
        return hs_respond_error(k, &k->job->err);
    }
}

/* --------------------------------------------------- generation: output */

static cJSON *token_bytes(const char *p, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((uint8_t)p[i]));
    return a;
}

/* The text of a token for logprobs: its piece, invalid UTF-8 replaced. */
static size_t piece_of(const yan_tokenizer *tok, yan_token t, char *raw, size_t cap, yan_buf *clean) {
    int64_t n = t >= 0 ? yan_token_to_piece(tok, t, raw, cap) : 0;
    if (n < 0) n = 0;
    clean->len = 0;
    yan_utf8_sanitize(clean, raw, (size_t)n);
    return (size_t)n;
}

/* Chat logprobs {"content":[...],"refusal":null} for lp[0..n) (k + 1 per token). */
static cJSON *chat_logprobs(conn *k, const yan_token_logprob *lp, size_t n) {
    const yan_tokenizer *tok = k->srv->tok;
    size_t K = (size_t)k->req.logprobs + 1;
    cJSON *o = cJSON_CreateObject();
    cJSON *content = cJSON_AddArrayToObject(o, "content");
    char raw[256];
    yan_buf clean = {0};
    for (size_t i = 0; i < n; i++) {
        const yan_token_logprob *e = lp + i * K;
        cJSON *item = cJSON_CreateObject();
        size_t rl = piece_of(tok, e[0].token, raw, sizeof raw, &clean);
        cJSON_AddStringToObject(item, "token", clean.data ? clean.data : "");
        cJSON_AddNumberToObject(item, "logprob", isfinite(e[0].logprob) ? e[0].logprob : -9999.0);
        cJSON_AddItemToObject(item, "bytes", token_bytes(raw, rl));
        cJSON *tops = cJSON_AddArrayToObject(item, "top_logprobs");
        for (size_t t = 1; t < K; t++) {
            if (e[t].token < 0) continue;
            cJSON *ti = cJSON_CreateObject();
            size_t tl = piece_of(tok, e[t].token, raw, sizeof raw, &clean);
            cJSON_AddStringToObject(ti, "token", clean.data ? clean.data : "");
            cJSON_AddNumberToObject(ti, "logprob", isfinite(e[t].logprob) ? e[t].logprob : -9999.0);
            cJSON_AddItemToObject(ti, "bytes", token_bytes(raw, tl));
            cJSON_AddItemToArray(tops, ti);
        }
        cJSON_AddItemToArray(content, item);
    }
    cJSON_AddNullToObject(o, "refusal");
    yan_buf_free(&clean);
    return o;
}

/* Completions logprobs {"tokens","token_logprobs","top_logprobs","text_offset"}. */
static cJSON *completion_logprobs(conn *k, const yan_token_logprob *lp, size_t n, size_t *offset) {
    const yan_tokenizer *tok = k->srv->tok;
    size_t K = (size_t)k->req.logprobs + 1;
    cJSON *o = cJSON_CreateObject();
    cJSON *toks = cJSON_AddArrayToObject(o, "tokens");
    cJSON *tlp = cJSON_AddArrayToObject(o, "token_logprobs");
    cJSON *tops = cJSON_AddArrayToObject(o, "top_logprobs");
    cJSON *offs = cJSON_AddArrayToObject(o, "text_offset");
    char raw[256];
    yan_buf clean = {0};
    for (size_t i = 0; i < n; i++) {
        const yan_token_logprob *e = lp + i * K;
        size_t rl = piece_of(tok, e[0].token, raw, sizeof raw, &clean);
        cJSON_AddItemToArray(toks, cJSON_CreateString(clean.data ? clean.data : ""));
        cJSON_AddItemToArray(tlp, cJSON_CreateNumber(isfinite(e[0].logprob) ? e[0].logprob : -9999.0));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)*offset));
        *offset += rl;
        cJSON *m = cJSON_CreateObject();
        for (size_t t = 1; t < K; t++) {
            if (e[t].token < 0) continue;
            piece_of(tok, e[t].token, raw, sizeof raw, &clean);
            if (!cJSON_GetObjectItemCaseSensitive(m, clean.data ? clean.data : ""))
                cJSON_AddNumberToObject(m, clean.data ? clean.data : "", isfinite(e[t].logprob) ? e[t].logprob : -9999.0);
        }
        cJSON_AddItemToArray(tops, m);
    }
    yan_buf_free(&clean);
    return o;
}

static cJSON *usage_obj(conn *k) {
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)k->prompt_tokens);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)k->completion_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(k->prompt_tokens + k->completion_tokens));
    cJSON *d = cJSON_AddObjectToObject(u, "prompt_tokens_details");
    cJSON_AddNumberToObject(d, "cached_tokens", (double)k->cached_tokens);
    return u;
}

static cJSON *chunk_head(conn *k) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", k->id);
    cJSON_AddStringToObject(o, "object", k->chat ? "chat.completion.chunk" : "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)k->created);
    cJSON_AddStringToObject(o, "model", k->model_name);
    cJSON_AddStringToObject(o, "system_fingerprint", "yan-" YAN_VERSION_STRING);
    return o;
}

/* Totals once the job is done (lock held or job done). */
void hs_account(conn *k) {
    yan_job *j = k->job;
    k->prompt_tokens = k->completion_tokens = k->cached_tokens = 0;
    for (int32_t i = 0; i < j->n_prompts; i++) k->prompt_tokens += j->n_prompt[i];
    for (int32_t i = 0; i < j->n_choices; i++) {
        k->completion_tokens += j->ch[i].n_gen;
        if (i % j->n_per_prompt == 0) k->cached_tokens += j->ch[i].n_cached;
    }
    if (j->n_choices) k->finish = yan_finish_name(j->ch[0].finish);
}

static const char *finish_str(yan_finish f) {
    return f == YAN_FIN_LENGTH ? "length" : f == YAN_FIN_CONTENT_FILTER ? "content_filter" : "stop";
}

static enum MHD_Result respond_generation(conn *k) {
    yan_job *j = k->job;
    hs_account(k);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", k->id);
    cJSON_AddStringToObject(o, "object", k->chat ? "chat.completion" : "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)k->created);
    cJSON_AddStringToObject(o, "model", k->model_name);
    cJSON_AddStringToObject(o, "system_fingerprint", "yan-" YAN_VERSION_STRING);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    for (int32_t i = 0; i < j->n_choices; i++) {
        yan_choice *c = &j->ch[i];
        cJSON *ch = cJSON_CreateObject();
        cJSON_AddNumberToObject(ch, "index", i);
        const char *text = c->text.data ? c->text.data : "";
        if (k->chat) {
            cJSON *msg = cJSON_AddObjectToObject(ch, "message");
            cJSON_AddStringToObject(msg, "role", "assistant");
            cJSON_AddStringToObject(msg, "content", text);
            cJSON_AddNullToObject(msg, "refusal");
            if (k->req.logprobs >= 0) cJSON_AddItemToObject(ch, "logprobs", chat_logprobs(k, c->lp, c->n_lp));
            else cJSON_AddNullToObject(ch, "logprobs");
        } else {
            yan_buf t = {0};
            if (k->req.echo) yan_buf_append(&t, k->echo_text, k->echo_len);
            yan_buf_append(&t, text, c->text.len);
            cJSON_AddStringToObject(ch, "text", t.data ? t.data : "");
            yan_buf_free(&t);
            size_t off = k->req.echo ? k->echo_len : 0;
            if (k->req.logprobs >= 0) cJSON_AddItemToObject(ch, "logprobs", completion_logprobs(k, c->lp, c->n_lp, &off));
            else cJSON_AddNullToObject(ch, "logprobs");
        }
        cJSON_AddStringToObject(ch, "finish_reason", finish_str(c->finish));
        cJSON_AddItemToArray(choices, ch);
    }
    cJSON_AddItemToObject(o, "usage", usage_obj(k));
    if (k->chat) hs_kb_response(k, o);
    return hs_respond_json(k, 200, o);
}

/* ---------------------------------------------------- generation: stream */

static void sse_json(conn *k, cJSON *o) {
    char *s = hs_json_print(o);
    if (!s) return;
    yan_sse_event(&k->out, s, strlen(s));
    cJSON_free(s);
}

/* Under no lock: format the chunks for new text of choice i. */
static void chunk_text(conn *k, int32_t i, const char *text, size_t len, const yan_token_logprob *lp, size_t n_lp,
                       size_t *offset) {
    cJSON *o = chunk_head(k);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    cJSON *ch = cJSON_CreateObject();
    cJSON_AddNumberToObject(ch, "index", i);
    yan_buf t = {0};
    yan_buf_append(&t, text, len);
    if (k->chat) {
        cJSON *d = cJSON_AddObjectToObject(ch, "delta");
        cJSON_AddStringToObject(d, "content", t.data ? t.data : "");
        if (k->req.logprobs >= 0) cJSON_AddItemToObject(ch, "logprobs", chat_logprobs(k, lp, n_lp));
        else cJSON_AddNullToObject(ch, "logprobs");
    } else {
        cJSON_AddStringToObject(ch, "text", t.data ? t.data : "");
        if (k->req.logprobs >= 0) cJSON_AddItemToObject(ch, "logprobs", completion_logprobs(k, lp, n_lp, offset));
        else cJSON_AddNullToObject(ch, "logprobs");
    }
    yan_buf_free(&t);
    cJSON_AddNullToObject(ch, "finish_reason");
    cJSON_AddItemToArray(choices, ch);
    sse_json(k, o);
}

static void chunk_finish(conn *k, int32_t i, yan_finish f) {
    cJSON *o = chunk_head(k);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    cJSON *ch = cJSON_CreateObject();
    cJSON_AddNumberToObject(ch, "index", i);
    if (k->chat) cJSON_AddObjectToObject(ch, "delta");
    else cJSON_AddStringToObject(ch, "text", "");
    cJSON_AddNullToObject(ch, "logprobs");
    cJSON_AddStringToObject(ch, "finish_reason", finish_str(f));
    cJSON_AddItemToArray(choices, ch);
    sse_json(k, o);
}

static void stream_head(conn *k) {
    yan_job *j = k->job;
    for (int32_t i = 0; i < j->n_choices; i++) {
        cJSON *o = chunk_head(k);
        cJSON *choices = cJSON_AddArrayToObject(o, "choices");
        cJSON *ch = cJSON_CreateObject();
        cJSON_AddNumberToObject(ch, "index", i);
        if (k->chat) {
            cJSON *d = cJSON_AddObjectToObject(ch, "delta");
            cJSON_AddStringToObject(d, "role", "assistant");
            cJSON_AddStringToObject(d, "content", "");
        } else {
            yan_buf t = {0};
            if (k->req.echo) yan_buf_append(&t, k->echo_text, k->echo_len);
            cJSON_AddStringToObject(ch, "text", t.data ? t.data : "");
            yan_buf_free(&t);
        }
        cJSON_AddNullToObject(ch, "logprobs");
        cJSON_AddNullToObject(ch, "finish_reason");
        cJSON_AddItemToArray(choices, ch);
        sse_json(k, o);
    }
    k->head_sent = true;
}

static void stream_error(conn *k, const yan_api_error *e) {
    yan_buf b = {0};
    yan_api_error_json(e, &b);
    if (b.data) yan_sse_event(&k->out, b.data, b.len);
    yan_buf_free(&b);
}

/* Collect what is new in the job into SSE bytes in k->out. Returns true
 * when the stream is over (everything formatted). */
static bool stream_collect(conn *k, bool *any) {
    yan_sched *sc = k->srv->sched;
    yan_job *j = k->job;
    typedef struct {
        yan_buf text;
        yan_token_logprob *lp;
        size_t n_lp;
        yan_finish fin;
    } delta;
    delta *d = yan_calloc((size_t)j->n_choices, sizeof *d);
    if (!d) return false;
    size_t K = (size_t)(k->req.logprobs + 1);
    bool done, failed, cancelled;
    yan_api_error err;
    yan_sched_lock(sc);
    for (int32_t i = 0; i < j->n_choices; i++) {
        yan_choice *c = &j->ch[i];
        cstream *cs = &k->cs[i];
        d[i].fin = YAN_FIN_NONE;
        if (c->text.len > cs->text_sent) {
            yan_buf_append(&d[i].text, c->text.data + cs->text_sent, c->text.len - cs->text_sent);
            cs->text_sent = c->text.len;
        }
        if (k->req.logprobs >= 0 && c->n_lp > cs->lp_sent) {
            d[i].n_lp = c->n_lp - cs->lp_sent;
            d[i].lp = yan_malloc(d[i].n_lp * K * sizeof *d[i].lp);
            if (d[i].lp) memcpy(d[i].lp, c->lp + cs->lp_sent * K, d[i].n_lp * K * sizeof *d[i].lp);
            else d[i].n_lp = 0;
            cs->lp_sent = c->n_lp;
        }
        if (c->finish != YAN_FIN_NONE && !cs->fin_sent) {
            d[i].fin = c->finish;
            cs->fin_sent = true;
        }
    }
    done = j->phase == YAN_PHASE_DONE;
    failed = j->failed;
    cancelled = j->cancel != 0;
    int cancel_why = j->cancel;
    err = j->err;
    if (done) hs_account(k);
    yan_sched_unlock(sc);

    *any = false;
    for (int32_t i = 0; i < j->n_choices; i++) {
        if (d[i].text.len || d[i].n_lp) {
            size_t off = 0;
            chunk_text(k, i, d[i].text.data ? d[i].text.data : "", d[i].text.len, d[i].lp, d[i].n_lp, &off);
            *any = true;
        }
        if (d[i].fin != YAN_FIN_NONE && d[i].fin != YAN_FIN_CANCELLED && d[i].fin != YAN_FIN_ERROR) {
            chunk_finish(k, i, d[i].fin);
            *any = true;
        }
        yan_buf_free(&d[i].text);
        yan_free(d[i].lp);
    }
    yan_free(d);
    if (!done) return false;
    if (failed || cancelled) {
        yan_api_error e = err;
        if (!failed) {
            bool timeout = cancel_why == 1 + YAN_CANCEL_TIMEOUT;
            yan_api_error_set(&e, timeout ? 504 : 503, "server_error", timeout ? "timeout" : "server_shutting_down",
                              NULL, timeout ? "the request took longer than the server's --timeout"
                                            : "the server is shutting down; the request was cancelled");
        }
        stream_error(k, &e);
        *any = true;
        return true;
    }
    if (k->kbq) { /* the citations of a knowledge-base answer */
        cJSON *o = chunk_head(k);
        cJSON_AddArrayToObject(o, "choices");
        hs_kb_stream_end(k, o);
        sse_json(k, o);
    }
    if (k->req.include_usage) {
        cJSON *o = chunk_head(k);
        cJSON_AddArrayToObject(o, "choices");
        cJSON_AddItemToObject(o, "usage", usage_obj(k));
        sse_json(k, o);
    }
    yan_sse_done(&k->out);
    *any = true;
    return true;
}

/* Up to max bytes of k->out not yet sent, into buf (0: none left). */
static size_t drain_out(conn *k, char *buf, size_t max) {
    size_t n = k->out.len - k->out_off;
    if (n > max) n = max;
    memcpy(buf, k->out.data + k->out_off, n);
    k->out_off += n;
    if (k->out_off == k->out.len) k->out_off = k->out.len = 0;
    return n;
}

/* MHD content callback of a streaming response: blocks (this is the
 * connection's own thread) until there is something to send. */
static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    conn *k = cls;
    for (;;) {
        if (k->out_off < k->out.len) {
            k->last_send = yan_now();
            return (ssize_t)drain_out(k, buf, max);
        }
        if (k->stream_over) return MHD_CONTENT_READER_END_OF_STREAM;
        if (!k->head_sent) {
            stream_head(k);
            continue;
        }
        bool any = false;
        k->stream_over = stream_collect(k, &any);
        if (any || k->stream_over) continue;
        /* nothing new: wait for the engine, watching the client and the clock */
        yan_sched *sc = k->srv->sched;
        yan_sched_lock(sc);
        yan_job *j = k->job;
        double now = yan_now();
        if (j->phase != YAN_PHASE_DONE) {
            if (hs_client_gone(k->fd)) {
                if (!j->cancel) yan_metrics_cancel(&k->srv->mx, YAN_CANCEL_CLIENT);
                yan_sched_cancel_locked(sc, j, YAN_CANCEL_CLIENT);
                k->cancel_reason = "client_disconnect";
                yan_sched_unlock(sc);
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
            if (now > k->deadline && !j->cancel) {
                yan_metrics_cancel(&k->srv->mx, YAN_CANCEL_TIMEOUT);
                yan_sched_cancel_locked(sc, j, YAN_CANCEL_TIMEOUT);
                k->cancel_reason = "timeout";
            }
            yan_sched_wait(sc, j, WAIT_MS);
        }
        yan_sched_unlock(sc);
        if (now - k->last_send > SSE_PING_S) yan_sse_comment(&k->out, "ping");
    }
}

/* ----------------------------------------------------- generation: input */

/* Tokenize a text prompt; BOS is added when the model asks for it and not
 * doubled when a chat template already wrote it. */
static yan_status tokenize_prompt(const yan_tokenizer *tok, const char *text, size_t len, bool special,
                                  yan_token **ids, size_t *n) {
    uint32_t flags = YAN_TOKENIZE_ADD_BOS | (special ? YAN_TOKENIZE_SPECIAL : 0);
    yan_status st = yan_tokenize_alloc(tok, text, len, flags, ids, n);
    if (st) return st;
    yan_token bos = yan_tokenizer_special(tok, YAN_SPECIAL_BOS);
    if (*n >= 2 && bos >= 0 && (*ids)[0] == bos && (*ids)[1] == bos) memmove(*ids, *ids + 1, --*n * sizeof **ids);
    return YAN_OK;
}

static yan_sampler_params request_sampler(conn *k) {
    const yan_api_req *r = &k->req;
    yan_sampler_params sp = k->srv->p.sp;
    if (r->has_temperature) sp.temperature = r->temperature;
    if (r->has_top_p) sp.top_p = r->top_p;
    if (r->has_top_k) sp.top_k = r->top_k;
    if (r->has_min_p) sp.min_p = r->min_p;
    if (r->has_repeat_penalty) sp.repeat_penalty = r->repeat_penalty;
    if (r->presence_penalty != 0) sp.presence_penalty = r->presence_penalty;
    if (r->frequency_penalty != 0) sp.frequency_penalty = r->frequency_penalty;
    /* OpenAI's penalties count every generated token, not a recent window */
    if (sp.presence_penalty != 0 || sp.frequency_penalty != 0) sp.repeat_last_n = yan_engine_n_ctx(k->srv->engine);
    if (r->has_seed) sp.seed = r->seed;
    else if (!k->srv->p.seeded) sp.seed = hs_random_seed();
    return sp;
}

enum MHD_Result hs_generate(conn *k) {
    yan_server *s = k->srv;
    yan_api_req *r = &k->req;
    yan_api_error err;
    k->chat = k->rt->route == R_CHAT;
    /* the prompts */
    int32_t n_prompts = k->chat ? 1 : r->n_inputs;
    yan_job *j = yan_job_new(YAN_JOB_GEN, n_prompts, r->n);
    if (!j) return hs_fail(k, 500, "server_error", NULL, NULL, "out of memory");
    k->job = j;
    if (k->chat) {
        for (size_t i = 0; i < r->n_msgs; i++)
            if (!strcmp(r->msgs[i].role, "user") &&
                screen_injection(k, r->msgs[i].content, strlen(r->msgs[i].content), &err))
                return hs_respond_error(k, &err);
        const char **texts = yan_arena_alloc(&k->arena, r->n_msgs * sizeof *texts);
        size_t *lens = yan_arena_alloc(&k->arena, r->n_msgs * sizeof *lens);
        if (!texts || !lens) return hs_fail(k, 500, "server_error", NULL, NULL, "out of memory");
        for (size_t i = 0; i < r->n_msgs; i++) texts[i] = r->msgs[i].content, lens[i] = strlen(texts[i]);
        if (moderate_input(k, texts, lens, r->n_msgs, &err)) return hs_respond_error(k, &err);
        enum MHD_Result kb_ret;
        if (hs_kb_chat(k, &kb_ret)) return kb_ret; /* a knowledge-base request answered at once */
        int64_t need = yan_chat_format(s->model, s->p.chat_template, r->msgs, r->n_msgs, true, NULL, 0);
        if (need == INT64_MIN) return hs_fail(k, 500, "server_error", NULL, NULL, yan_last_error());
        size_t cap = need < 0 ? (size_t)-need : (size_t)need + 1;
        char *text = yan_arena_alloc(&k->arena, cap);
        if (!text || yan_chat_format(s->model, s->p.chat_template, r->msgs, r->n_msgs, true, text, cap) < 0)
            return hs_fail(k, 500, "server_error", NULL, NULL, "out of memory");
        size_t n = 0;
        if (tokenize_prompt(s->tok, text, strlen(text), true, &j->prompts[0], &n))
            return hs_fail(k, 500, "server_error", NULL, NULL, yan_last_error());
        j->n_prompt[0] = (int32_t)n;
    } else if (r->inputs_are_tokens) {
        int32_t V = yan_tokenizer_n_vocab(s->tok);
        for (int32_t i = 0; i < r->n_inputs; i++) {
            for (int32_t t = 0; t < r->tok_lens[i]; t++)
                if (r->toks[i][t] >= V) return bad_token(k, "prompt", t, r->toks[i][t]);
            j->prompts[i] = yan_malloc(((size_t)r->tok_lens[i] + 1) * sizeof(yan_token));
            if (!j->prompts[i]) return hs_fail(k, 500, "server_error", NULL, NULL, "out of memory");
            memcpy(j->prompts[i], r->toks[i], (size_t)r->tok_lens[i] * sizeof(yan_token));
            j->n_prompt[i] = r->tok_lens[i];
        }
        if (check_token_inputs(k, &err)) return hs_respond_error(k, &err);
    } else {
        for (int32_t i = 0; i < r->n_inputs; i++)
            if (screen_injection(k, r->texts[i], r->text_lens[i], &err)) return hs_respond_error(k, &err);
        if (moderate_input(k, r->texts, r->text_lens, (size_t)r->n_inputs, &err)) return hs_respond_error(k, &err);
        for (int32_t i = 0; i < r->n_inputs; i++) {
            size_t n = 0;
            if (tokenize_prompt(s->tok, r->texts[i], r->text_lens[i], false, &j->prompts[i], &n))
                return hs_fail(k, 500, "server_error", NULL, NULL, yan_last_error());
            j->n_prompt[i] = (int32_t)n;
        }
    }
    if (!k->chat && r->echo) { /* echo: the prompt text (the first prompt's, for each choice) */
        if (r->inputs_are_tokens) {
            size_t got = 0;
            const char *t = detok_arena(k, j->prompts[0], (size_t)j->n_prompt[0], &got);
            k->echo_text = t ? t : "";
            k->echo_len = t ? got : 0;
        } else {
            k->echo_text = r->texts[0];
            k->echo_len = r->text_lens[0];
        }
    }
    for (int32_t i = 0; i < n_prompts; i++)
        if (j->n_prompt[i] == 0) return hs_fail(k, 400, "invalid_request_error", NULL, k->chat ? "messages" : "prompt",
                                              "the prompt is empty (and the model adds no BOS token)");
    j->sp = request_sampler(k);
    j->max_tokens = r->max_tokens;
    j->logprobs = r->logprobs;
    j->json_mode = r->json_mode;
    j->ignore_eos = r->ignore_eos;
    j->t_arrival = k->t0;
    if (s->mod && s->mod_mode) j->filter = &s->filter;
    if (!yan_job_set_stop(j, r->stop, r->n_stop)) return hs_fail(k, 500, "server_error", NULL, NULL, "out of memory");
    k->prompt_tokens = 0;
    for (int32_t i = 0; i < n_prompts; i++) k->prompt_tokens += j->n_prompt[i];


    k->created = (long)time(NULL);
    snprintf(k->id, sizeof k->id, "%s-%s", k->chat ? "chatcmpl" : "cmpl", k->rid);
    k->queue_deadline = k->t0 + s->p.queue_timeout;
    k->deadline = k->t0 + s->p.timeout;
    if (yan_sched_submit(s->sched, j, &err)) return hs_respond_error_h(k, &err, err.status == 503 ? "Retry-After" : NULL, "1");
    k->submitted = true;
    if (!r->stream) {
        int why = wait_job(k, YAN_PHASE_DONE);
        if (why != WT_OK) return respond_wait_error(k, why);
        return respond_generation(k);
    }
    int why = wait_job(k, YAN_PHASE_RUNNING);
    if (why != WT_OK) return respond_wait_error(k, why);
    k->cs = yan_calloc((size_t)j->n_choices, sizeof *k->cs);
    if (!k->cs) return hs_fail(k, 500, "server_error", NULL, NULL, "out of memory");
    k->stream = true;
    k->last_send = yan_now();
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_reader, k, NULL);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    hs_add_headers(k, resp);
    k->status = 200;
    enum MHD_Result ret = MHD_queue_response(k->mc, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result hs_embeddings(conn *k) {
    yan_server *s = k->srv;
    yan_api_req *r = &k->req;
    yan_api_error err;
    int32_t C = yan_model_n_embd(s->model);
    if (r->dimensions && r->dimensions != C) {
        char msg[160];
        snprintf(msg, sizeof msg, "this model's embeddings have %d dimensions; 'dimensions' cannot change that",
                 (int)C);
        return hs_fail(k, 400, "invalid_request_error", NULL, "dimensions", msg);
    }
    yan_job *j = yan_job_new(YAN_JOB_EMBED, r->n_inputs, 1);
    if (!j) return hs_fail(k, 500, "server_error", NULL, NULL, "out of memory");
    k->job = j;
    int32_t V = yan_tokenizer_n_vocab(s->tok);
    for (int32_t i = 0; i < r->n_inputs; i++) {
        if (r->inputs_are_tokens) {
            for (int32_t t = 0; t < r->tok_lens[i]; t++)
                if (r->toks[i][t] >= V) return bad_token(k, "input", t, r->toks[i][t]);
            j->prompts[i] = yan_malloc((size_t)r->tok_lens[i] * sizeof(yan_token));
            if (!j->prompts[i]) return hs_fail(k, 500, "server_error", NULL, NULL, "out of memory");
            memcpy(j->prompts[i], r->toks[i], (size_t)r->tok_lens[i] * sizeof(yan_token));
            j->n_prompt[i] = r->tok_lens[i];
        } else {
            size_t n = 0;
            if (yan_tokenize_alloc(s->tok, r->texts[i], r->text_lens[i], YAN_TOKENIZE_ADD_BOS, &j->prompts[i], &n))
                return hs_fail(k, 500, "server_error", NULL, NULL, yan_last_error());
            j->n_prompt[i] = (int32_t)n;
            if (n == 0) return hs_fail(k, 400, "invalid_request_error", NULL, "input", "an input has no tokens");
        }
        k->prompt_tokens += j->n_prompt[i];
    }
    if (r->inputs_are_tokens ? check_token_inputs(k, &err)
                             : moderate_input(k, r->texts, r->text_lens, (size_t)r->n_inputs, &err))
        return hs_respond_error(k, &err);
    j->t_arrival = k->t0;
    k->queue_deadline = k->t0 + s->p.queue_timeout;
    k->deadline = k->t0 + s->p.timeout;
    if (yan_sched_submit(s->sched, j, &err)) return hs_respond_error(k, &err);
    k->submitted = true;
    int why = wait_job(k, YAN_PHASE_DONE);
    if (why != WT_OK) return respond_wait_error(k, why);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(o, "data");
    yan_buf b64 = {0};
    for (int32_t i = 0; i < j->n_prompts; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "object", "embedding");
        cJSON_AddNumberToObject(e, "index", i);
        const float *v = j->emb + (size_t)i * (size_t)C;
        if (r->base64) {
            b64.len = 0;
            base64(&b64, (const uint8_t *)v, (size_t)C * sizeof(float)); /* little-endian float32, as OpenAI */
            cJSON_AddStringToObject(e, "embedding", b64.data ? b64.data : "");
        } else {
            cJSON *arr = cJSON_AddArrayToObject(e, "embedding");
            for (int32_t d = 0; d < C; d++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(v[d]));
        }
        cJSON_AddItemToArray(data, e);
    }
    yan_buf_free(&b64);
    cJSON_AddStringToObject(o, "model", k->model_name);
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)k->prompt_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", (double)k->prompt_tokens);
    return hs_respond_json(k, 200, o);
}

/* ---------------------------------------------------------------- proxy */

/* Output moderation of a proxied answer (proxy_filter.h): count and log
 * each cut choice like the local output filter; warn about an answer too
 * big to moderate. */
static void proxy_moderated(void *ud, yan_pf_event ev, int64_t choice, const yan_moderation *res) {
    conn *k = ud;
    yan_server *s = k->srv;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "request_id", k->rid);
    cJSON_AddStringToObject(o, "direction", "output");
    cJSON_AddStringToObject(o, "upstream", yan_proxy_url(s->proxy));
    if (ev == YAN_PF_OVERSIZE) {
        cJSON_AddStringToObject(o, "action", "skipped");
        cJSON_AddStringToObject(o, "msg", "the upstream's answer (or one of its events) is over 64 MiB: "
                                          "it goes through without output moderation");
        yan_slog_emit(&s->log, YAN_LOG_WARN, "moderation", o);
        return;
    }
    yan_metrics_safety(&s->mx, 0, 1, 0);
    k->finish = "content_filter";
    cJSON_AddNumberToObject(o, "choice", (double)choice);
    cJSON_AddStringToObject(o, "category", yan_mod_category_name((int)res->first.category));
    cJSON_AddStringToObject(o, "rule", res->first.rule ? res->first.rule : "");
    cJSON_AddStringToObject(o, "action", "cut");
    yan_slog_emit(&s->log, YAN_LOG_WARN, "moderation", o);
}

/* MHD content callback of a proxied answer: the upstream's bytes as they
 * come, or through the output filter (k->pf) and k->out. */
static ssize_t proxy_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    conn *k = cls;
    for (;;) {
        if (k->out_off < k->out.len) return (ssize_t)drain_out(k, buf, max);
        if (k->stream_over) return MHD_CONTENT_READER_END_OF_STREAM;
        if (atomic_load(&k->srv->stopping)) return MHD_CONTENT_READER_END_WITH_ERROR;
        ssize_t n = yan_upstream_read(k->up, buf, max, 100);
        if (n > 0) {
            if (!k->pf) return n;
            if (yan_pfilter_feed(k->pf, buf, (size_t)n, &k->out)) return MHD_CONTENT_READER_END_WITH_ERROR;
            continue;
        }
        if (n == -1) {
            if (!k->pf) return MHD_CONTENT_READER_END_OF_STREAM;
            if (yan_pfilter_finish(k->pf, &k->out)) return MHD_CONTENT_READER_END_WITH_ERROR;
            k->stream_over = true;
            continue;
        }
        if (n == -2) return MHD_CONTENT_READER_END_WITH_ERROR;
        if (hs_client_gone(k->fd)) {
            k->cancel_reason = "client_disconnect";
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (yan_now() > k->deadline) {
            k->cancel_reason = "timeout";
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
}

enum MHD_Result hs_proxy(conn *k) {
    yan_server *s = k->srv;
    yan_api_error err;
    /* the same input checks as a local request */
    if (k->rt->route == R_CHAT) {
        const char **texts = yan_arena_alloc(&k->arena, (k->req.n_msgs + 1) * sizeof *texts);
        size_t *lens = yan_arena_alloc(&k->arena, (k->req.n_msgs + 1) * sizeof *lens);
        if (!texts || !lens) return hs_fail(k, 500, "server_error", NULL, NULL, "out of memory");
        for (size_t i = 0; i < k->req.n_msgs; i++) {
            texts[i] = k->req.msgs[i].content;
            lens[i] = strlen(texts[i]);
            if (!strcmp(k->req.msgs[i].role, "user") && screen_injection(k, texts[i], lens[i], &err))
                return hs_respond_error(k, &err);
        }
        if (moderate_input(k, texts, lens, k->req.n_msgs, &err)) return hs_respond_error(k, &err);
    } else if (!k->req.inputs_are_tokens && k->req.n_inputs > 0) {
        /* token ids are the upstream model's: they cannot be read back here */
        if (moderate_input(k, k->req.texts, k->req.text_lens, (size_t)k->req.n_inputs, &err))
            return hs_respond_error(k, &err);
    }
    const char *path = k->rt->path;
    if (!strncmp(path, "/v1/", 4)) path += 3;
    k->deadline = k->t0 + s->p.timeout;
    k->up = yan_upstream_start(s->proxy, "POST", path, k->body.data, k->body.len, k->rid);
    if (!k->up) return hs_fail(k, 500, "server_error", NULL, NULL, "out of memory");
    char ct[128], msg[300];
    int st = yan_upstream_headers(k->up, k->deadline, ct, sizeof ct, msg, sizeof msg);
    if (st < 0) {
        char m2[400];
        snprintf(m2, sizeof m2, "the upstream did not answer: %s", msg);
        return hs_fail(k, 502, "server_error", "upstream_error", NULL, m2);
    }
    /* the answers of chat and completions get the local output moderation */
    bool sse = strstr(ct, "event-stream") != NULL;
    if (st == 200 && s->mod && s->mod_mode && (k->rt->route == R_CHAT || k->rt->route == R_COMPLETIONS) &&
        (sse || !ct[0] || strstr(ct, "json"))) {
        yan_pfilter_params pp = yan_pfilter_params_default();
        pp.chat = k->rt->route == R_CHAT;
        pp.sse = sse;
        pp.fn = proxy_moderated;
        pp.ud = k;
        if (yan_pfilter_new(s->mod, &pp, &k->pf)) return hs_fail(k, 500, "server_error", NULL, NULL, "out of memory");
    }
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, proxy_reader, k, NULL);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", ct[0] ? ct : "application/json");
    if (sse) {
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    }
    hs_add_headers(k, resp);
    k->status = st;
    enum MHD_Result ret = MHD_queue_response(k->mc, (unsigned)st, resp);
    MHD_destroy_response(resp);
    return ret;
}

