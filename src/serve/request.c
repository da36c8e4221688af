/* request.c — OpenAI request bodies to yan_api_req (contract in request.h).
 * One function per endpoint over a few typed getters; a JSON null counts as
 * an absent field, as OpenAI's API treats it. */
#include "serve/request.h"

#include "serve/sse.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>

/* ----------------------------------------------------------------- errors */

yan_status yan_api_error_set(yan_api_error *e, int status, const char *type, const char *code, const char *param,
                             const char *fmt, ...) {
    e->status = status;
    e->type = type;
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return YAN_ERR_INVALID_ARG;
}

bool yan_api_error_json(const yan_api_error *e, yan_buf *out) {
    cJSON *root = cJSON_CreateObject(), *o = cJSON_CreateObject();
    if (!root || !o) {
        cJSON_Delete(root);
        cJSON_Delete(o);
        return false;
    }
    cJSON_AddItemToObject(root, "error", o);
    /* messages may quote the client's bytes: keep the JSON valid UTF-8 */
    yan_buf m = {0}, p = {0};
    yan_utf8_sanitize(&m, e->message, strlen(e->message));
    yan_utf8_sanitize(&p, e->param, strlen(e->param));
    cJSON_AddStringToObject(o, "message", m.data ? m.data : "");
    cJSON_AddStringToObject(o, "type", e->type ? e->type : "server_error");
    if (e->param[0]) cJSON_AddStringToObject(o, "param", p.data ? p.data : "");
    else cJSON_AddNullToObject(o, "param");
    yan_buf_free(&m);
    yan_buf_free(&p);
    if (e->code) cJSON_AddStringToObject(o, "code", e->code);
    else cJSON_AddNullToObject(o, "code");
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!s) return false;
    bool ok = yan_buf_puts(out, s);
    cJSON_free(s);
    return ok;
}

/* -------------------------------------------------------------- getters */

typedef struct {
    yan_arena *a;
    yan_api_error *err;
} pctx;

#define BAD(pc, param, ...) yan_api_error_set((pc)->err, 400, "invalid_request_error", NULL, param, __VA_ARGS__)

static yan_status oom(pctx *pc) {
    return yan_api_error_set(pc->err, 500, "server_error", NULL, NULL, "out of memory while reading the request");
}

static const cJSON *field(const cJSON *obj, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static yan_status get_bool(pctx *pc, const cJSON *obj, const char *name, bool *out) {
    const cJSON *v = field(obj, name);
    if (!v) return YAN_OK;
    if (!cJSON_IsBool(v)) return BAD(pc, name, "'%s' must be a boolean", name);
    *out = cJSON_IsTrue(v);
    return YAN_OK;
}

static yan_status get_num(pctx *pc, const cJSON *obj, const char *name, double lo, double hi, float *out, bool *has) {
    const cJSON *v = field(obj, name);
    if (!v) return YAN_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return BAD(pc, name, "'%s' must be a number", name);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return BAD(pc, name, "'%s' must be between %g and %g (got %g)", name, lo, hi, v->valuedouble);
    *out = (float)v->valuedouble;
    if (has) *has = true;
    return YAN_OK;
}

static bool is_int(const cJSON *v) {
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble == floor(v->valuedouble);
}

static yan_status get_int(pctx *pc, const cJSON *obj, const char *name, double lo, double hi, int64_t *out, bool *has) {
    const cJSON *v = field(obj, name);
    if (!v) return YAN_OK;
    if (!is_int(v)) return BAD(pc, name, "'%s' must be an integer", name);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return BAD(pc, name, "'%s' must be between %.0f and %.0f (got %.0f)", name, lo, hi, v->valuedouble);
    *out = (int64_t)v->valuedouble;
    if (has) *has = true;
    return YAN_OK;
}

static const char *dup(pctx *pc, const char *s) { return yan_arena_strndup(pc->a, s, strlen(s)); }

static yan_status get_str(pctx *pc, const cJSON *obj, const char *name, const char **out) {
    const cJSON *v = field(obj, name);
    if (!v) return YAN_OK;
    if (!cJSON_IsString(v)) return BAD(pc, name, "'%s' must be a string", name);
    if (!(*out = dup(pc, v->valuestring))) return oom(pc);
    return YAN_OK;
}

#define TRY(x)                                                                                                         \
    do {                                                                                                               \
        yan_status s_ = (x);                                                                                           \
        if (s_) return s_;                                                                                             \
    } while (0)

/* ------------------------------------------------------- shared pieces */

/* Sampling and generation fields common to chat and completions. */
static yan_status parse_sampling(pctx *pc, const cJSON *root, yan_api_req *r) {
    TRY(get_bool(pc, root, "stream", &r->stream));
    const cJSON *so = field(root, "stream_options");
    if (so) {
        if (!cJSON_IsObject(so)) return BAD(pc, "stream_options", "'stream_options' must be an object");
        const cJSON *iu = field(so, "include_usage");
        if (iu && !cJSON_IsBool(iu))
            return BAD(pc, "stream_options.include_usage", "'stream_options.include_usage' must be a boolean");
        r->include_usage = iu && cJSON_IsTrue(iu);
    }
    int64_t v = -1;
    bool has = false;
    TRY(get_int(pc, root, "max_tokens", 1, INT32_MAX, &v, &has));
    if (r->kind == YAN_RQ_CHAT) {
        bool has2 = false;
        int64_t v2 = -1;
        TRY(get_int(pc, root, "max_completion_tokens", 1, INT32_MAX, &v2, &has2));
        if (has2) v = v2, has = true;
    }
    r->max_tokens = has ? (int32_t)v : -1;
    int64_t n = 1;
    TRY(get_int(pc, root, "n", 1, YAN_RQ_MAX_N, &n, NULL));
    r->n = (int32_t)n;
    TRY(get_num(pc, root, "temperature", 0, 2, &r->temperature, &r->has_temperature));
    TRY(get_num(pc, root, "top_p", 0, 1, &r->top_p, &r->has_top_p));
    TRY(get_num(pc, root, "min_p", 0, 1, &r->min_p, &r->has_min_p));
    TRY(get_num(pc, root, "repeat_penalty", 0.01, 100, &r->repeat_penalty, &r->has_repeat_penalty));
    TRY(get_num(pc, root, "presence_penalty", -2, 2, &r->presence_penalty, NULL));
    TRY(get_num(pc, root, "frequency_penalty", -2, 2, &r->frequency_penalty, NULL));
    int64_t k = 0;
    TRY(get_int(pc, root, "top_k", 0, 1e9, &k, &r->has_top_k));
    r->top_k = (int32_t)k;
    const cJSON *seed = field(root, "seed");
    if (seed) {
        if (!is_int(seed) || fabs(seed->valuedouble) > 9.2e18) return BAD(pc, "seed", "'seed' must be an integer");
        r->seed = (uint64_t)(int64_t)seed->valuedouble;
        r->has_seed = true;
    }
    const cJSON *stop = field(root, "stop");
    if (stop) {
        const cJSON *one[1] = {stop};
        int cnt = 1;
        if (cJSON_IsArray(stop)) {
            cnt = cJSON_GetArraySize(stop);
            if (cnt > YAN_RQ_MAX_STOP)
                return BAD(pc, "stop", "'stop' has %d strings; at most %d are allowed", cnt, YAN_RQ_MAX_STOP);
        } else if (!cJSON_IsString(stop)) {
            return BAD(pc, "stop", "'stop' must be a string or an array of strings");
        }
        for (int i = 0; i < cnt; i++) {
            const cJSON *s = cJSON_IsArray(stop) ? cJSON_GetArrayItem(stop, i) : one[0];
            if (!cJSON_IsString(s)) return BAD(pc, "stop", "'stop[%d]' must be a string", i);
            size_t sl = strlen(s->valuestring);
            if (sl > YAN_RQ_MAX_STOP_LEN)
                return BAD(pc, "stop", "'stop' strings may have at most %d bytes", YAN_RQ_MAX_STOP_LEN);
            if (!sl) continue; /* an empty stop string would stop everything: ignored */
            if (!(r->stop[r->n_stop++] = dup(pc, s->valuestring))) return oom(pc);
        }
    }
    TRY(get_str(pc, root, "user", &r->user));
    TRY(get_bool(pc, root, "ignore_eos", &r->ignore_eos));
    const cJSON *rf = field(root, "response_format");
    if (rf) {
        const cJSON *t = cJSON_IsObject(rf) ? field(rf, "type") : NULL;
        if (!t || !cJSON_IsString(t))
            return BAD(pc, "response_format", "'response_format' must be an object with a string 'type'");
        if (!strcmp(t->valuestring, "json_object")) r->json_mode = true;
        else if (strcmp(t->valuestring, "text") != 0)
            return BAD(pc, "response_format.type",
                       "response_format type '%.64s' is not supported (use \"text\" or \"json_object\")", t->valuestring);
    }
    const cJSON *tools = field(root, "tools");
    if (tools && (!cJSON_IsArray(tools) || cJSON_GetArraySize(tools) > 0))
        return BAD(pc, "tools", "'tools' (function calling) is not supported by this server");
    const cJSON *fns = field(root, "functions");
    if (fns && (!cJSON_IsArray(fns) || cJSON_GetArraySize(fns) > 0))
        return BAD(pc, "functions", "'functions' (function calling) is not supported by this server");
    return YAN_OK;
}

/* One input of token ids: an array of non-negative int32. */
static yan_status parse_token_array(pctx *pc, const cJSON *arr, const char *param, const yan_token **out,
                                    int32_t *n_out) {
    int n = cJSON_GetArraySize(arr);
    yan_token *t = yan_arena_alloc(pc->a, (size_t)(n ? n : 1) * sizeof *t);
    if (!t) return oom(pc);
    int i = 0;
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        if (!is_int(e) || e->valuedouble < 0 || e->valuedouble > INT32_MAX)
            return BAD(pc, param, "'%s' must hold token ids (non-negative integers); item %d is not one", param, i);
        t[i] = (yan_token)e->valuedouble;
    }
    *out = t;
    *n_out = n;
    return YAN_OK;
}

/* string | [string] | [int] | [[int]] into r's inputs. */
static yan_status parse_inputs(pctx *pc, const cJSON *v, const char *param, yan_api_req *r, bool allow_tokens) {
    if (!v) return BAD(pc, param, "'%s' is required", param);
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 1;
    if (cJSON_IsArray(v) && n == 0) return BAD(pc, param, "'%s' must not be an empty array", param);
    if (n > YAN_RQ_MAX_INPUTS) return BAD(pc, param, "'%s' has %d items; at most %d are allowed", param, n, YAN_RQ_MAX_INPUTS);
    if (cJSON_IsString(v)) {
        r->texts = yan_arena_alloc(pc->a, sizeof *r->texts);
        r->text_lens = yan_arena_alloc(pc->a, sizeof *r->text_lens);
        if (!r->texts || !r->text_lens || !(r->texts[0] = dup(pc, v->valuestring))) return oom(pc);
        r->text_lens[0] = strlen(v->valuestring);
        r->n_inputs = 1;
        return YAN_OK;
    }
    if (!cJSON_IsArray(v))
        return BAD(pc, param, allow_tokens ? "'%s' must be a string, an array of strings or an array of token ids"
                                           : "'%s' must be a string or an array of strings", param);
    const cJSON *first = v->child;
    if (allow_tokens && cJSON_IsNumber(first)) { /* one token array */
        r->toks = yan_arena_alloc(pc->a, sizeof *r->toks);
        r->tok_lens = yan_arena_alloc(pc->a, sizeof *r->tok_lens);
        if (!r->toks || !r->tok_lens) return oom(pc);
        TRY(parse_token_array(pc, v, param, &r->toks[0], &r->tok_lens[0]));
        r->n_inputs = 1;
        r->inputs_are_tokens = true;
        return YAN_OK;
    }
    if (allow_tokens && cJSON_IsArray(first)) { /* several token arrays */
        r->toks = yan_arena_alloc(pc->a, (size_t)n * sizeof *r->toks);
        r->tok_lens = yan_arena_alloc(pc->a, (size_t)n * sizeof *r->tok_lens);
        if (!r->toks || !r->tok_lens) return oom(pc);
        int i = 0;
        for (const cJSON *e = v->child; e; e = e->next, i++) {
            char p[64];
            snprintf(p, sizeof p, "%s[%d]", param, i);
            if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) == 0)
                return BAD(pc, p, "'%s' must be a non-empty array of token ids", p);
            TRY(parse_token_array(pc, e, p, &r->toks[i], &r->tok_lens[i]));
        }
        r->n_inputs = n;
        r->inputs_are_tokens = true;
        return YAN_OK;
    }
    r->texts = yan_arena_alloc(pc->a, (size_t)n * sizeof *r->texts);
    r->text_lens = yan_arena_alloc(pc->a, (size_t)n * sizeof *r->text_lens);
    if (!r->texts || !r->text_lens) return oom(pc);
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        const char *s = NULL;
        if (cJSON_IsString(e)) s = e->valuestring;
        else if (r->kind == YAN_RQ_MODERATION && cJSON_IsObject(e)) { /* multimodal form: text parts only */
            const cJSON *t = field(e, "type"), *tx = field(e, "text");
            if (t && cJSON_IsString(t) && !strcmp(t->valuestring, "text") && tx && cJSON_IsString(tx)) s = tx->valuestring;
            else {
                char p[64];
                snprintf(p, sizeof p, "%s[%d]", param, i);
                return BAD(pc, p, "only text inputs are supported ('%s' is not {\"type\":\"text\",\"text\":...})", p);
            }
        }
        if (!s) {
            char p[64];
            snprintf(p, sizeof p, "%s[%d]", param, i);
            return BAD(pc, p, allow_tokens ? "'%s' must be a string (items of '%s' must all be strings or all token arrays)"
                                           : "'%s' must be a string", p, param);
        }
        if (!(r->texts[i] = dup(pc, s))) return oom(pc);
        r->text_lens[i] = strlen(s);
    }
    r->n_inputs = n;
    return YAN_OK;
}

/* ------------------------------------------------------------ endpoints */

static yan_status parse_content(pctx *pc, const cJSON *c, int i, const char **out) {
    char p[64];
    snprintf(p, sizeof p, "messages[%d].content", i);
    if (!c) {
        *out = "";
        return YAN_OK;
    }
    if (cJSON_IsString(c)) {
        if (!(*out = dup(pc, c->valuestring))) return oom(pc);
        return YAN_OK;
    }
    if (!cJSON_IsArray(c)) return BAD(pc, p, "'%s' must be a string or an array of content parts", p);
    yan_buf b = {0};
    int j = 0;
    for (const cJSON *part = c->child; part; part = part->next, j++) {
        const cJSON *t = cJSON_IsObject(part) ? field(part, "type") : NULL;
        const cJSON *tx = cJSON_IsObject(part) ? field(part, "text") : NULL;
        if (!t || !cJSON_IsString(t)) {
            yan_buf_free(&b);
            return BAD(pc, p, "'%s[%d]' must be an object with a string 'type'", p, j);
        }
        if (strcmp(t->valuestring, "text") != 0) {
            yan_buf_free(&b);
            return BAD(pc, p, "content parts of type '%.32s' are not supported (only \"text\")", t->valuestring);
        }
        if (!tx || !cJSON_IsString(tx)) {
            yan_buf_free(&b);
            return BAD(pc, p, "'%s[%d].text' must be a string", p, j);
        }
        if (j) yan_buf_putc(&b, '\n');
        yan_buf_puts(&b, tx->valuestring);
    }
    if (b.oom) {
        yan_buf_free(&b);
        return oom(pc);
    }
    *out = b.data ? yan_arena_strndup(pc->a, b.data, b.len) : "";
    yan_buf_free(&b);
    return *out ? YAN_OK : oom(pc);
}

static yan_status parse_chat(pctx *pc, const cJSON *root, yan_api_req *r) {
    const cJSON *msgs = field(root, "messages");
    if (!msgs) return BAD(pc, "messages", "'messages' is required");
    if (!cJSON_IsArray(msgs)) return BAD(pc, "messages", "'messages' must be an array of message objects");
    int n = cJSON_GetArraySize(msgs);
    if (n == 0) return BAD(pc, "messages", "'messages' must not be empty");
    r->msgs = yan_arena_alloc(pc->a, (size_t)n * sizeof *r->msgs);
    if (!r->msgs) return oom(pc);
    int i = 0;
    for (const cJSON *m = msgs->child; m; m = m->next, i++) {
        char p[64];
        snprintf(p, sizeof p, "messages[%d]", i);
        if (!cJSON_IsObject(m)) return BAD(pc, p, "'%s' must be an object with 'role' and 'content'", p);
        const cJSON *role = field(m, "role");
        snprintf(p, sizeof p, "messages[%d].role", i);
        if (!role || !cJSON_IsString(role)) return BAD(pc, p, "'%s' must be a string", p);
        const char *rs = role->valuestring;
        if (!strcmp(rs, "developer")) rs = "system";
        if (strcmp(rs, "system") && strcmp(rs, "user") && strcmp(rs, "assistant"))
            return BAD(pc, p, "'%s' must be \"system\", \"developer\", \"user\" or \"assistant\" (got \"%.32s\")", p,
                       role->valuestring);
        const cJSON *tc = field(m, "tool_calls");
        if (tc && (!cJSON_IsArray(tc) || cJSON_GetArraySize(tc) > 0)) {
            snprintf(p, sizeof p, "messages[%d].tool_calls", i);
            return BAD(pc, p, "tool calls are not supported by this server");
        }
        const char *content = NULL;
        TRY(parse_content(pc, field(m, "content"), i, &content));
        if (!(r->msgs[i].role = dup(pc, rs))) return oom(pc);
        r->msgs[i].content = content;
    }
    r->n_msgs = (size_t)n;
    TRY(parse_sampling(pc, root, r));
    bool lp = false;
    TRY(get_bool(pc, root, "logprobs", &lp));
    int64_t top = 0;
    bool has_top = false;
    TRY(get_int(pc, root, "top_logprobs", 0, YAN_RQ_MAX_TOP_LOGPROBS, &top, &has_top));
    if (has_top && !lp) return BAD(pc, "top_logprobs", "'top_logprobs' needs 'logprobs': true");
    r->logprobs = lp ? (int32_t)top : -1;
    return YAN_OK;
}

static yan_status parse_completion(pctx *pc, const cJSON *root, yan_api_req *r) {
    TRY(parse_inputs(pc, field(root, "prompt"), "prompt", r, true));
    TRY(parse_sampling(pc, root, r));
    if (r->n_inputs * r->n > YAN_RQ_MAX_N)
        return BAD(pc, "n", "%d prompts x n = %d choices; at most %d are allowed", (int)r->n_inputs,
                   (int)(r->n_inputs * r->n), YAN_RQ_MAX_N);
    int64_t lp = -1;
    bool has = false;
    TRY(get_int(pc, root, "logprobs", 0, 5, &lp, &has));
    r->logprobs = has ? (int32_t)lp : -1;
    TRY(get_bool(pc, root, "echo", &r->echo));
    const char *suffix = NULL;
    TRY(get_str(pc, root, "suffix", &suffix));
    if (suffix && suffix[0]) return BAD(pc, "suffix", "'suffix' (insertion) is not supported by this server");
    int64_t best_of = 1;
    bool has_best = false;
    TRY(get_int(pc, root, "best_of", 1, YAN_RQ_MAX_N, &best_of, &has_best));
    if (has_best && best_of != 1 && best_of != r->n)
        return BAD(pc, "best_of", "'best_of' other than 1 or n is not supported by this server");
    return YAN_OK;
}

static yan_status parse_embed(pctx *pc, const cJSON *root, yan_api_req *r) {
    TRY(parse_inputs(pc, field(root, "input"), "input", r, true));
    for (int32_t i = 0; i < r->n_inputs; i++)
        if (r->inputs_are_tokens ? r->tok_lens[i] == 0 : r->text_lens[i] == 0)
            return BAD(pc, "input", "'input' must not contain empty strings");
    const char *fmt = NULL;
    TRY(get_str(pc, root, "encoding_format", &fmt));
    if (fmt && strcmp(fmt, "float") && strcmp(fmt, "base64"))
        return BAD(pc, "encoding_format", "'encoding_format' must be \"float\" or \"base64\"");
    r->base64 = fmt && !strcmp(fmt, "base64");
    int64_t d = 0;
    TRY(get_int(pc, root, "dimensions", 1, 1e6, &d, NULL));
    r->dimensions = (int32_t)d;
    TRY(get_str(pc, root, "user", &r->user));
    return YAN_OK;
}

static yan_status parse_tokenize(pctx *pc, const cJSON *root, yan_api_req *r) {
    const cJSON *c = field(root, "content");
    if (!c) return BAD(pc, "content", "'content' is required");
    if (!cJSON_IsString(c)) return BAD(pc, "content", "'content' must be a string");
    TRY(parse_inputs(pc, c, "content", r, false));
    r->parse_special = true;
    TRY(get_bool(pc, root, "add_special", &r->add_special));
    TRY(get_bool(pc, root, "parse_special", &r->parse_special));
    TRY(get_bool(pc, root, "with_pieces", &r->with_pieces));
    return YAN_OK;
}

static yan_status parse_detokenize(pctx *pc, const cJSON *root, yan_api_req *r) {
    const cJSON *t = field(root, "tokens");
    if (!t) return BAD(pc, "tokens", "'tokens' is required");
    if (!cJSON_IsArray(t)) return BAD(pc, "tokens", "'tokens' must be an array of token ids");
    r->toks = yan_arena_alloc(pc->a, sizeof *r->toks);
    r->tok_lens = yan_arena_alloc(pc->a, sizeof *r->tok_lens);
    if (!r->toks || !r->tok_lens) return oom(pc);
    TRY(parse_token_array(pc, t, "tokens", &r->toks[0], &r->tok_lens[0]));
    r->n_inputs = 1;
    r->inputs_are_tokens = true;
    return YAN_OK;
}

static yan_status parse_moderation(pctx *pc, const cJSON *root, yan_api_req *r) {
    return parse_inputs(pc, field(root, "input"), "input", r, false);
}

yan_status yan_api_parse(yan_rq_kind kind, const char *body, size_t len, yan_arena *a, yan_api_req *out,
                         yan_api_error *err) {
    pctx pc = {a, err};
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->max_tokens = -1;
    out->n = 1;
    out->logprobs = -1;
    if (!body || len == 0) return BAD(&pc, NULL, "the request body is empty; a JSON object is expected");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (!root) {
        size_t at = end && end >= body && end <= body + len ? (size_t)(end - body) : 0;
        return BAD(&pc, NULL, "the request body is not valid JSON (near byte %zu)", at);
    }
    /* only whitespace may follow the value */
    for (const char *p = end; p && p < body + len; p++)
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
            cJSON_Delete(root);
            return BAD(&pc, NULL, "the request body is not valid JSON (extra data at byte %zu)", (size_t)(p - body));
        }
    yan_status st = YAN_OK;
    if (!cJSON_IsObject(root)) {
        st = BAD(&pc, NULL, "the request body must be a JSON object");
        goto done;
    }
    const cJSON *model = field(root, "model");
    if (model) {
        if (!cJSON_IsString(model)) {
            st = BAD(&pc, "model", "'model' must be a string");
            goto done;
        }
        if (!(out->model = dup(&pc, model->valuestring))) {
            st = oom(&pc);
            goto done;
        }
    }
    switch (kind) {
    case YAN_RQ_CHAT: st = parse_chat(&pc, root, out); break;
    case YAN_RQ_COMPLETION: st = parse_completion(&pc, root, out); break;
    case YAN_RQ_EMBED: st = parse_embed(&pc, root, out); break;
    case YAN_RQ_TOKENIZE: st = parse_tokenize(&pc, root, out); break;
    case YAN_RQ_DETOKENIZE: st = parse_detokenize(&pc, root, out); break;
    case YAN_RQ_MODERATION: st = parse_moderation(&pc, root, out); break;
    default: st = BAD(&pc, NULL, "unknown endpoint");
    }
done:
    cJSON_Delete(root);
    return st;
}
