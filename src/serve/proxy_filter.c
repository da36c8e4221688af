/* proxy_filter.c — output moderation of proxied answers (see
 * proxy_filter.h): the JSON rewriter, the SSE event splitter and the
 * per-choice hold-back state, the same rule as sched.c's choice_filter. */
#include "serve/proxy_filter.h"

#include "serve/sse.h"

#include <cjson/cJSON.h>

#define PF_MAX_CHOICES 1024 /* distinct choice indexes tracked in a stream; text of further ones is dropped */

typedef struct {
    int64_t index;
    yan_moderate_stream *ms;
    yan_buf held;        /* text the moderator has not cleared yet */
    uint64_t n_out;      /* bytes fed to the moderator (released + held) */
    bool cut;            /* flagged: its later deltas are dropped */
    bool ended;          /* its finish_reason went out */
} pf_choice;

struct yan_pfilter {
    const yan_moderator *m;
    yan_pfilter_params p;
    bool pass;           /* gave up (oversize): bytes go through as they come */
    yan_buf body;        /* JSON: the body so far */
    /* SSE */
    yan_buf in;          /* bytes not yet split into lines */
    yan_buf ev;          /* raw bytes of the event being read */
    yan_buf data;        /* its data lines' values, joined with '\n' */
    yan_buf other;       /* its other lines (comments, event:, id:), each + '\n' */
    bool has_data;
    cJSON *head;         /* id, object, created, model, system_fingerprint of the first chunk */
    pf_choice *ch;
    size_t n_ch, cap_ch;
    pf_choice spill;     /* the choices past PF_MAX_CHOICES (cut from the start) */
};

yan_pfilter_params yan_pfilter_params_default(void) {
    return (yan_pfilter_params){.chat = true, .sse = false, .json_max = 0, .fn = NULL, .ud = NULL};
}

yan_status yan_pfilter_new(const yan_moderator *m, const yan_pfilter_params *p, yan_pfilter **out) {
    *out = NULL;
    yan_pfilter *f = yan_calloc(1, sizeof *f);
    if (!f) return yan_fail(YAN_ERR_NOMEM, "out of memory");
    f->m = m;
    f->p = p ? *p : yan_pfilter_params_default();
    if (!f->p.json_max) f->p.json_max = YAN_PF_JSON_MAX;
    f->spill.cut = true;
    f->spill.index = -1;
    *out = f;
    return YAN_OK;
}

void yan_pfilter_free(yan_pfilter *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n_ch; i++) {
        yan_moderate_stream_free(f->ch[i].ms);
        yan_buf_free(&f->ch[i].held);
    }
    yan_free(f->ch);
    cJSON_Delete(f->head);
    yan_buf_free(&f->body);
    yan_buf_free(&f->in);
    yan_buf_free(&f->ev);
    yan_buf_free(&f->data);
    yan_buf_free(&f->other);
    yan_free(f);
}

static void emit(const yan_pfilter *f, yan_pf_event ev, int64_t choice, const yan_moderation *res) {
    if (f->p.fn) f->p.fn(f->p.ud, ev, choice, res);
}

/* ------------------------------------------------------------ JSON edits */

static cJSON *get(const cJSON *o, const char *key) {
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

/* Set o[key] to v (replacing what is there). False on OOM (v is freed). */
static bool set(cJSON *o, const char *key, cJSON *v) {
    if (!v) return false;
    if (cJSON_GetObjectItemCaseSensitive(o, key)) return cJSON_ReplaceItemInObjectCaseSensitive(o, key, v);
    if (!cJSON_AddItemToObject(o, key, v)) {
        cJSON_Delete(v);
        return false;
    }
    return true;
}

/* The object that holds a choice's text (message / delta for chat, the
 * choice itself for completions), created when make is set; NULL if none. */
static cJSON *text_holder(cJSON *c, bool chat, bool stream, bool make) {
    if (!chat) return c;
    const char *name = stream ? "delta" : "message";
    cJSON *h = get(c, name);
    if (cJSON_IsObject(h) || !make) return cJSON_IsObject(h) ? h : NULL;
    h = cJSON_CreateObject();
    return set(c, name, h) ? h : NULL;
}

/* Drop the logprobs entries of a cut choice whose token reaches past the
 * cut (byte offset in its text). */
static void trim_logprobs(cJSON *c, bool chat, uint64_t cut) {
    cJSON *lp = get(c, "logprobs");
    if (chat) {
        cJSON *content = get(lp, "content");
        if (!cJSON_IsArray(content)) return;
        uint64_t at = 0;
        int keep = 0, n = cJSON_GetArraySize(content);
        for (cJSON *e = content->child; e; e = e->next, keep++) {
            cJSON *bytes = get(e, "bytes"), *tok = get(e, "token");
            uint64_t len = cJSON_IsArray(bytes) ? (uint64_t)cJSON_GetArraySize(bytes)
                           : cJSON_IsString(tok) ? strlen(tok->valuestring) : 0;
            if (at + len > cut) break;
            at += len;
        }
        for (int i = n - 1; i >= keep; i--) cJSON_DeleteItemFromArray(content, i);
        return;
    }
    cJSON *toks = get(lp, "tokens"), *offs = get(lp, "text_offset");
    if (!cJSON_IsArray(toks)) return;
    uint64_t at = 0;
    int keep = 0;
    for (cJSON *t = toks->child; t; t = t->next, keep++) {
        cJSON *off = cJSON_GetArrayItem(offs, keep);
        uint64_t start = cJSON_IsNumber(off) && off->valuedouble >= 0 && off->valuedouble < 1e18 ? (uint64_t)off->valuedouble : at;
        uint64_t len = cJSON_IsString(t) ? strlen(t->valuestring) : 0;
        if (start + len > cut) break;
        at = start + len;
    }
    static const char *const ARRAYS[] = {"tokens", "token_logprobs", "top_logprobs", "text_offset"};
    for (size_t a = 0; a < sizeof ARRAYS / sizeof *ARRAYS; a++) {
        cJSON *arr = get(lp, ARRAYS[a]);
        if (!cJSON_IsArray(arr)) continue;
        for (int i = cJSON_GetArraySize(arr) - 1; i >= keep; i--) cJSON_DeleteItemFromArray(arr, i);
    }
}

/* A choice's "index" (its position when it has none; -1 when it is not
 * a sane one). */
static int64_t choice_index(const cJSON *c, int pos) {
    const cJSON *ix = get(c, "index");
    if (!ix) return pos;
    return cJSON_IsNumber(ix) && ix->valuedouble >= 0 && ix->valuedouble < 1e15 ? (int64_t)ix->valuedouble : -1;
}

/* Feed text to a fresh verdict: the whole text when final. */
static yan_status moderate(yan_moderate_stream *ms, const char *p, size_t n, bool final, yan_moderation *res) {
    yan_status st = yan_moderate_stream_feed(ms, p, n, res);
    if (!st && final) st = yan_moderate_stream_finish(ms, res);
    return st;
}

static uint64_t cut_of(const yan_moderation *res) {
    return res->first.rule ? res->first.start : 0;
}

/* ------------------------------------------------------------- JSON body */

bool yan_pfilter_json(const yan_moderator *m, bool chat, const char *body, size_t len, yan_buf *out,
                      yan_pf_fn fn, void *ud, yan_status *st) {
    *st = YAN_OK;
    cJSON *root = body ? cJSON_ParseWithLength(body, len) : NULL;
    cJSON *choices = get(root, "choices");
    if (!cJSON_IsArray(choices)) {
        cJSON_Delete(root);
        return false;
    }
    yan_moderate_stream *ms = NULL;
    if ((*st = yan_moderate_stream_new(m, &ms))) {
        cJSON_Delete(root);
        return false;
    }
    bool any = false;
    int pos = 0;
    for (cJSON *c = choices->child; c; c = c->next, pos++) {
        cJSON *h = text_holder(c, chat, false, false);
        const char *key = chat ? "content" : "text";
        cJSON *t = get(h, key);
        if (!cJSON_IsString(t)) continue;
        size_t n = strlen(t->valuestring);
        yan_moderation res;
        yan_moderate_stream_reset(ms);
        if ((*st = moderate(ms, t->valuestring, n, true, &res))) break;
        if (!res.flagged) continue;
        uint64_t cut = cut_of(&res);
        if (cut > n) cut = n;
        yan_buf kept = {0};
        yan_buf_append(&kept, t->valuestring, (size_t)cut);
        bool ok = !kept.oom && set(h, key, cJSON_CreateString(kept.data ? kept.data : "")) &&
                  set(c, "finish_reason", cJSON_CreateString("content_filter"));
        yan_buf_free(&kept);
        if (!ok) {
            *st = YAN_ERR_NOMEM;
            break;
        }
        trim_logprobs(c, chat, cut);
        if (fn) fn(ud, YAN_PF_FLAGGED, choice_index(c, pos), &res);
        any = true;
    }
    yan_moderate_stream_free(ms);
    if (!*st && any) {
        char *s = cJSON_PrintUnformatted(root);
        if (!s || !yan_buf_puts(out, s)) *st = YAN_ERR_NOMEM;
        cJSON_free(s);
    }
    cJSON_Delete(root);
    return !*st && any;
}

static yan_status json_feed(yan_pfilter *f, const char *p, size_t n, yan_buf *out) {
    if (f->pass) return yan_buf_append(out, p, n) ? YAN_OK : YAN_ERR_NOMEM;
    if (f->body.len + n > f->p.json_max) { /* too big to hold: it goes as it is */
        f->pass = true;
        emit(f, YAN_PF_OVERSIZE, -1, NULL);
        bool ok = yan_buf_append(out, f->body.data, f->body.len) && yan_buf_append(out, p, n);
        yan_buf_free(&f->body);
        return ok ? YAN_OK : YAN_ERR_NOMEM;
    }
    return yan_buf_append(&f->body, p, n) ? YAN_OK : YAN_ERR_NOMEM;
}

static yan_status json_finish(yan_pfilter *f, yan_buf *out) {
    if (f->pass) return YAN_OK;
    yan_status st;
    if (yan_pfilter_json(f->m, f->p.chat, f->body.data, f->body.len, out, f->p.fn, f->p.ud, &st)) return YAN_OK;
    if (st) return st;
    return yan_buf_append(out, f->body.data, f->body.len) ? YAN_OK : YAN_ERR_NOMEM;
}

/* ------------------------------------------------------ stream: choices */

/* The state of choice `index` (made on first sight); NULL on OOM. */
static pf_choice *choice_get(yan_pfilter *f, int64_t index) {
    for (size_t i = 0; i < f->n_ch; i++)
        if (f->ch[i].index == index) return &f->ch[i];
    if (f->n_ch == PF_MAX_CHOICES) return &f->spill;
    if (f->n_ch == f->cap_ch) {
        size_t cap = f->cap_ch ? f->cap_ch * 2 : 4;
        pf_choice *nc = yan_realloc(f->ch, cap * sizeof *nc);
        if (!nc) return NULL;
        f->ch = nc, f->cap_ch = cap;
    }
    pf_choice *c = &f->ch[f->n_ch];
    memset(c, 0, sizeof *c);
    c->index = index;
    if (yan_moderate_stream_new(f->m, &c->ms)) return NULL;
    f->n_ch++;
    return c;
}

/* Take n bytes of new text for choice c (final: its finish_reason came) and
 * work out what goes out: kept gets the released text; *flagged and res
 * say whether the moderator stopped it. */
static yan_status choice_step(pf_choice *c, const char *p, size_t n, bool final, yan_buf *kept, bool *flagged,
                              yan_moderation *res) {
    uint64_t released = c->n_out - c->held.len; /* offset of held[0] in the choice's text */
    if (!yan_buf_append(&c->held, p, n)) return YAN_ERR_NOMEM;
    c->n_out += n;
    yan_status st = moderate(c->ms, p, n, final, res);
    if (st) return st;
    size_t go;
    *flagged = res->flagged;
    if (*flagged) {
        uint64_t cut = cut_of(res);
        go = cut > released ? (size_t)(cut - released) : 0;
        if (go > c->held.len) go = c->held.len;
    } else {
        go = final ? c->held.len : yan_filter_release(c->held.data, c->held.len);
    }
    kept->len = 0;
    if (!yan_buf_append(kept, c->held.data ? c->held.data : "", go)) return YAN_ERR_NOMEM;
    if (*flagged || final) c->held.len = 0;
    else {
        memmove(c->held.data, c->held.data + go, c->held.len - go);
        c->held.len -= go;
    }
    if (*flagged) c->cut = true;
    if (final) c->ended = true;
    return YAN_OK;
}

/* True when o has a key outside the allowed list, or one of them that is
 * not null/empty is "logprobs". */
static bool has_more(const cJSON *o, const char *const *allowed, size_t n_allowed) {
    for (const cJSON *e = o ? o->child : NULL; e; e = e->next) {
        bool known = false;
        for (size_t i = 0; i < n_allowed; i++) known |= !strcmp(e->string, allowed[i]);
        if (!known) return true;
        if (!strcmp(e->string, "logprobs") && !cJSON_IsNull(e)) return true;
    }
    return false;
}

/* Rewrite one parsed chunk. *changed: the chunk differs from what came;
 * *send: it has something to say (false only when changed). */
static yan_status chunk_rewrite(yan_pfilter *f, cJSON *root, bool *changed, bool *send) {
    *changed = false;
    *send = true;
    cJSON *choices = get(root, "choices");
    if (!cJSON_IsArray(choices)) return YAN_OK;
    const bool chat = f->p.chat;
    if (!f->head) { /* the fields a chunk of our own needs */
        static const char *const HEAD[] = {"id", "object", "created", "model", "system_fingerprint"};
        f->head = cJSON_CreateObject();
        if (!f->head) return YAN_ERR_NOMEM;
        for (size_t i = 0; i < sizeof HEAD / sizeof *HEAD; i++) {
            cJSON *v = get(root, HEAD[i]);
            if (v && !set(f->head, HEAD[i], cJSON_Duplicate(v, true))) return YAN_ERR_NOMEM;
        }
    }
    cJSON *usage = get(root, "usage");
    bool say = !choices->child || (usage && !cJSON_IsNull(usage));
    yan_buf kept = {0};
    yan_status st = YAN_OK;
    int pos = 0;
    for (cJSON *c = choices->child, *next; c; c = next, pos++) {
        next = c->next;
        if (!cJSON_IsObject(c)) {
            say = true;
            continue;
        }
        int64_t index = choice_index(c, pos);
        pf_choice *pc = choice_get(f, index);
        if (!pc) {
            st = YAN_ERR_NOMEM;
            break;
        }
        if (pc->cut) { /* stopped by the moderator: nothing more of it goes out */
            cJSON_Delete(cJSON_DetachItemViaPointer(choices, c));
            *changed = true;
            continue;
        }
        const char *key = chat ? "content" : "text";
        cJSON *h = text_holder(c, chat, true, false);
        cJSON *t = get(h, key);
        cJSON *fr = get(c, "finish_reason");
        bool has_text = cJSON_IsString(t), fin = cJSON_IsString(fr);
        if (!has_text && !fin) { /* role, tool calls...: as it is */
            say = true;
            continue;
        }
        if (pc->ended) { /* text after its end (not OpenAI's way): a new text */
            yan_moderate_stream_reset(pc->ms);
            pc->n_out = pc->held.len = 0;
            pc->ended = false;
        }
        const char *tx = has_text ? t->valuestring : "";
        size_t tn = strlen(tx);
        bool flagged = false;
        yan_moderation res;
        if ((st = choice_step(pc, tx, tn, fin, &kept, &flagged, &res))) break;
        bool same = has_text && kept.len == tn && (!tn || !memcmp(kept.data, tx, tn));
        if (!same && (has_text || kept.len)) {
            if (!(h = text_holder(c, chat, true, true)) || !set(h, key, cJSON_CreateString(kept.data ? kept.data : ""))) {
                st = YAN_ERR_NOMEM;
                break;
            }
            *changed = true;
        }
        if (flagged) {
            if (!set(c, "finish_reason", cJSON_CreateString("content_filter")) ||
                (get(c, "logprobs") && !set(c, "logprobs", cJSON_CreateNull()))) {
                st = YAN_ERR_NOMEM;
                break;
            }
            *changed = true;
            emit(f, YAN_PF_FLAGGED, index, &res);
        }
        static const char *const CHOICE[] = {"index", "delta", "text", "logprobs", "finish_reason"};
        static const char *const DELTA[] = {"content"};
        bool bare = !kept.len && !fin && !flagged && !has_more(c, CHOICE, sizeof CHOICE / sizeof *CHOICE) &&
                    (!chat || !has_more(h, DELTA, 1));
        if (!bare) say = true;
    }
    yan_buf_free(&kept);
    if (*changed && !say) *send = false;
    return st;
}

/* Release the text still held (the stream ended without the choices'
 * finish_reason): a chunk of our own, moderated to the end. */
static yan_status flush_held(yan_pfilter *f, yan_buf *out) {
    cJSON *o = NULL, *choices = NULL;
    yan_buf kept = {0};
    yan_status st = YAN_OK;
    for (size_t i = 0; i < f->n_ch && !st; i++) {
        pf_choice *pc = &f->ch[i];
        if (pc->cut || pc->ended || !pc->held.len) continue;
        bool flagged = false;
        yan_moderation res;
        if ((st = choice_step(pc, "", 0, true, &kept, &flagged, &res))) break;
        if (!o) {
            o = f->head ? cJSON_Duplicate(f->head, true) : cJSON_CreateObject();
            choices = o ? cJSON_AddArrayToObject(o, "choices") : NULL;
            if (!choices) {
                st = YAN_ERR_NOMEM;
                break;
            }
        }
        cJSON *c = cJSON_CreateObject();
        if (!c || !cJSON_AddItemToArray(choices, c)) {
            cJSON_Delete(c);
            st = YAN_ERR_NOMEM;
            break;
        }
        cJSON_AddNumberToObject(c, "index", (double)pc->index);
        cJSON *h = f->p.chat ? cJSON_AddObjectToObject(c, "delta") : c;
        if (!h || !cJSON_AddStringToObject(h, f->p.chat ? "content" : "text", kept.data ? kept.data : "")) {
            st = YAN_ERR_NOMEM;
            break;
        }
        cJSON_AddNullToObject(c, "logprobs");
        if (flagged) {
            cJSON_AddStringToObject(c, "finish_reason", "content_filter");
            emit(f, YAN_PF_FLAGGED, pc->index, &res);
        } else {
            cJSON_AddNullToObject(c, "finish_reason");
        }
    }
    yan_buf_free(&kept);
    if (o && !st) {
        char *s = cJSON_PrintUnformatted(o);
        if (!s || !yan_sse_event(out, s, strlen(s))) st = YAN_ERR_NOMEM;
        cJSON_free(s);
    }
    cJSON_Delete(o);
    return st;
}

/* ------------------------------------------------------- stream: events */

static void event_reset(yan_pfilter *f) {
    f->ev.len = f->data.len = f->other.len = 0;
    f->has_data = false;
}

/* A whole event (f->ev, f->data, f->other) is in: send it on. */
static yan_status event_done(yan_pfilter *f, yan_buf *out) {
    yan_status st = YAN_OK;
    bool raw = true;
    if (f->has_data && f->data.len == 6 && !memcmp(f->data.data, "[DONE]", 6)) {
        st = flush_held(f, out);
    } else if (f->has_data) {
        cJSON *root = cJSON_ParseWithLength(f->data.data, f->data.len);
        if (cJSON_IsObject(root)) {
            bool changed = false, send = true;
            st = chunk_rewrite(f, root, &changed, &send);
            if (!st && changed) {
                raw = false;
                if (send) {
                    char *s = cJSON_PrintUnformatted(root);
                    if (!s || !yan_buf_append(out, f->other.data, f->other.len) || !yan_sse_event(out, s, strlen(s)))
                        st = YAN_ERR_NOMEM;
                    cJSON_free(s);
                }
            }
        }
        cJSON_Delete(root);
    }
    if (!st && raw && !yan_buf_append(out, f->ev.data, f->ev.len)) st = YAN_ERR_NOMEM;
    event_reset(f);
    return st;
}

/* One line of the stream: text p[0..n) (without its end), raw[0..rn) as it
 * came (with its end). */
static yan_status event_line(yan_pfilter *f, const char *p, size_t n, const char *raw, size_t rn, yan_buf *out) {
    if (!yan_buf_append(&f->ev, raw, rn)) return YAN_ERR_NOMEM;
    if (n == 0) return event_done(f, out);
    const char *colon = memchr(p, ':', n);
    size_t name = colon ? (size_t)(colon - p) : n;
    if (name == 4 && !memcmp(p, "data", 4)) {
        size_t v = colon ? name + 1 : n;
        if (v < n && p[v] == ' ') v++;
        if (f->has_data && !yan_buf_putc(&f->data, '\n')) return YAN_ERR_NOMEM;
        f->has_data = true;
        return yan_buf_append(&f->data, p + v, n - v) ? YAN_OK : YAN_ERR_NOMEM;
    }
    return yan_buf_append(&f->other, p, n) && yan_buf_putc(&f->other, '\n') ? YAN_OK : YAN_ERR_NOMEM;
}

/* Split f->in into lines (LF, CRLF or CR); at eof a line without its end
 * counts as one. */
static yan_status sse_lines(yan_pfilter *f, yan_buf *out, bool eof) {
    const char *s = f->in.data;
    size_t i = 0, len = f->in.len;
    yan_status st = YAN_OK;
    while (i < len && !st) {
        size_t j = i;
        while (j < len && s[j] != '\n' && s[j] != '\r') j++;
        if (j == len) break; /* a partial line */
        size_t end = j + 1;
        if (s[j] == '\r') {
            if (end == len && !eof) break; /* its LF may come next */
            if (end < len && s[end] == '\n') end++;
        }
        st = event_line(f, s + i, j - i, s + i, end - i, out);
        i = end;
    }
    if (i) {
        memmove(f->in.data, f->in.data + i, len - i);
        f->in.len = len - i;
        f->in.data[f->in.len] = 0;
    }
    return st;
}

static yan_status sse_feed(yan_pfilter *f, const char *p, size_t n, yan_buf *out) {
    if (f->pass) return yan_buf_append(out, p, n) ? YAN_OK : YAN_ERR_NOMEM;
    if (!yan_buf_append(&f->in, p, n)) return YAN_ERR_NOMEM;
    yan_status st = sse_lines(f, out, false);
    if (st || f->ev.len + f->in.len <= f->p.json_max) return st;
    /* an event too big to hold: the held text goes (moderated), then all as it comes */
    f->pass = true;
    emit(f, YAN_PF_OVERSIZE, -1, NULL);
    if ((st = flush_held(f, out))) return st;
    bool ok = yan_buf_append(out, f->ev.data, f->ev.len) && yan_buf_append(out, f->in.data, f->in.len);
    event_reset(f);
    f->in.len = 0;
    return ok ? YAN_OK : YAN_ERR_NOMEM;
}

static yan_status sse_finish(yan_pfilter *f, yan_buf *out) {
    if (f->pass) return YAN_OK;
    yan_status st = sse_lines(f, out, true);
    /* an event cut short by the end of the body is completed and handled like the others */
    if (!st && f->in.len) {
        if (!yan_buf_putc(&f->in, '\n')) return YAN_ERR_NOMEM;
        st = sse_lines(f, out, true);
    }
    if (!st && f->ev.len) st = event_line(f, "", 0, "\n", 1, out);
    if (!st) st = flush_held(f, out);
    return st;
}

/* ----------------------------------------------------------------- API */

yan_status yan_pfilter_feed(yan_pfilter *f, const char *p, size_t n, yan_buf *out) {
    return f->p.sse ? sse_feed(f, p, n, out) : json_feed(f, p, n, out);
}

yan_status yan_pfilter_finish(yan_pfilter *f, yan_buf *out) {
    return f->p.sse ? sse_finish(f, out) : json_finish(f, out);
}
