/* chat.c — chat templates: turning a list of (role, content) messages into
 * the prompt text a chat model was trained on.
 *
 * Contract. yan does not run Jinja. It recognises the family of a model's
 * tokenizer.chat_template by distinctive markers (yan_chat_detect) and lays
 * the messages out with a fixed C formatter per family
 * (yan_chat_format_family). Families and their layouts, with S/U/A the
 * system, user and assistant contents:
 *
 *   chatml   <|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n
 *            ... opening: <|im_start|>assistant\n          (Qwen 1.5-3, SmolLM)
 *   llama3   <|start_header_id|>role<|end_header_id|>\n\nTRIM(C)<|eot_id|>
 *            ... opening: <|start_header_id|>assistant<|end_header_id|>\n\n
 *   llama2   [INST] <<SYS>>\nS\n<</SYS>>\n\nU [/INST] A </s><s>[INST] U2 [/INST]
 *            user turns are stripped as one string with the system block,
 *            assistant turns are " " + strip(A) + " </s>"; every [INST] but
 *            the first of the text is preceded by <s>.
 *   mistral  [INST] S\n\nU [/INST]A</s>[INST] U2 [/INST]   (no inner <s>)
 *   zephyr   <|system|>\nS</s>\n<|user|>\nU</s>\n ... opening: <|assistant|>\n
 *            (TinyLlama chat, Zephyr)
 *   phi3     <|system|>\nS<|end|>\n<|user|>\nU<|end|>\n ... opening: <|assistant|>\n
 *   gemma    <start_of_turn>user\nS\n\nTRIM(U)<end_of_turn>\n
 *            <start_of_turn>model\nTRIM(A)<end_of_turn>\n ... opening: <start_of_turn>model\n
 *
 * Rules common to all:
 *  - The text never begins with the BOS token's text (<s>, <|begin_of_text|>,
 *    <bos>): tokenizing with YAN_TOKENIZE_ADD_BOS adds it when the model asks.
 *    Inner markers stay (llama2's <s> before later turns) and the caller
 *    tokenizes with YAN_TOKENIZE_SPECIAL so markers become special tokens.
 *  - Families without a system turn (llama2, mistral, gemma) merge the
 *    pending system messages (joined by "\n\n") into the next user turn; a
 *    system message with no user turn after it becomes a user turn of its own.
 *  - llama2 and mistral end a prompt with "[/INST]", which is already the
 *    assistant's opening: add_assistant adds nothing there.
 *  - Templates' optional extras (default system prompts, date headers,
 *    tool descriptions, thinking blocks) are not reproduced.
 *  - Trimming (TRIM/strip) removes ASCII white space, as the templates of
 *    those families do with Jinja's trim / Python's strip.
 *
 * The exact strings are facts checked against the families' published
 * templates and llama.cpp's llama-chat.cpp; the code is yan's own.
 * No allocation; no state; thread-safe. Depends on base and the model's
 * yan_model_chat_template for the public wrappers.
 */
#include "model/chat.h"

#include "base/base.h"

/* ---------------------------------------------------------------- output */

/* Counts every byte; copies only when buf is set (second pass). */
typedef struct {
    char *buf;
    size_t len;
} out;

static void put(out *o, const char *s, size_t n) {
    if (o->buf && n) memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void puts_(out *o, const char *s) { put(o, s, strlen(s)); }

typedef struct {
    const char *p;
    size_t n;
} slice;

static slice sl(const char *s) { return (slice){s ? s : "", s ? strlen(s) : 0}; }

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

static slice trim(slice s, bool left, bool right) {
    if (left)
        while (s.n && is_ws(s.p[0])) s.p++, s.n--;
    if (right)
        while (s.n && is_ws(s.p[s.n - 1])) s.n--;
    return s;
}

static void put_sl(out *o, slice s) { put(o, s.p, s.n); }

static bool role_is(const yan_chat_message *m, const char *r) { return strcmp(m->role, r) == 0; }

/* ------------------------------------------------ pending system messages */

/* System messages waiting for the next user turn: those in msgs[from..to). */
typedef struct {
    const yan_chat_message *msgs;
    size_t from, to;
    bool any;
} pending;

static void pend_add(pending *ps, size_t i) {
    if (!ps->any) ps->from = i;
    ps->to = i + 1;
    ps->any = true;
}

static void pend_put(out *o, const pending *ps) {
    bool first = true;
    for (size_t i = ps->from; i < ps->to; i++) {
        if (!role_is(&ps->msgs[i], "system")) continue;
        if (!first) puts_(o, "\n\n");
        puts_(o, ps->msgs[i].content ? ps->msgs[i].content : "");
        first = false;
    }
}

/* -------------------------------------------------------------- families */

static void fmt_chatml(out *o, const yan_chat_message *m, size_t n, bool add) {
    for (size_t i = 0; i < n; i++) {
        puts_(o, "<|im_start|>");
        puts_(o, m[i].role);
        puts_(o, "\n");
        put_sl(o, sl(m[i].content));
        puts_(o, "<|im_end|>\n");
    }
    if (add) puts_(o, "<|im_start|>assistant\n");
}

static void fmt_llama3(out *o, const yan_chat_message *m, size_t n, bool add) {
    for (size_t i = 0; i < n; i++) {
        puts_(o, "<|start_header_id|>");
        puts_(o, m[i].role);
        puts_(o, "<|end_header_id|>\n\n");
        put_sl(o, trim(sl(m[i].content), true, true));
        puts_(o, "<|eot_id|>");
    }
    if (add) puts_(o, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

/* "<|role|>\ncontent" + end for every message (zephyr: </s>\n, phi3: <|end|>\n) */
static void fmt_pipe_roles(out *o, const yan_chat_message *m, size_t n, bool add, const char *end) {
    for (size_t i = 0; i < n; i++) {
        puts_(o, "<|");
        puts_(o, m[i].role);
        puts_(o, "|>\n");
        put_sl(o, sl(m[i].content));
        puts_(o, end);
    }
    if (add) puts_(o, "<|assistant|>\n");
}

static void fmt_zephyr(out *o, const yan_chat_message *m, size_t n, bool add) { fmt_pipe_roles(o, m, n, add, "</s>\n"); }
static void fmt_phi3(out *o, const yan_chat_message *m, size_t n, bool add) { fmt_pipe_roles(o, m, n, add, "<|end|>\n"); }

static void llama2_user(out *o, pending *ps, slice content) {
    if (o->len) puts_(o, "<s>");
    puts_(o, "[INST] ");
    if (ps->any) {
        /* strip() of "<<SYS>>\nS\n<</SYS>>\n\n" + U: only U's right end moves */
        puts_(o, "<<SYS>>\n");
        pend_put(o, ps);
        puts_(o, "\n<</SYS>>");
        slice c = trim(content, false, true);
        if (c.n) {
            puts_(o, "\n\n");
            put_sl(o, c);
        }
        ps->any = false;
    } else {
        put_sl(o, trim(content, true, true));
    }
    puts_(o, " [/INST]");
}

static void fmt_llama2(out *o, const yan_chat_message *m, size_t n, bool add) {
    (void)add;
    pending ps = {m, 0, 0, false};
    for (size_t i = 0; i < n; i++) {
        if (role_is(&m[i], "system")) {
            pend_add(&ps, i);
        } else if (role_is(&m[i], "assistant")) {
            puts_(o, " ");
            put_sl(o, trim(sl(m[i].content), true, true));
            puts_(o, " </s>");
        } else {
            llama2_user(o, &ps, sl(m[i].content));
        }
    }
    if (ps.any) llama2_user(o, &ps, sl(""));
}

static void mistral_user(out *o, pending *ps, slice content) {
    puts_(o, "[INST] ");
    if (ps->any) {
        pend_put(o, ps);
        if (content.n) puts_(o, "\n\n");
        ps->any = false;
    }
    put_sl(o, content);
    puts_(o, " [/INST]");
}

static void fmt_mistral(out *o, const yan_chat_message *m, size_t n, bool add) {
    (void)add;
    pending ps = {m, 0, 0, false};
    for (size_t i = 0; i < n; i++) {
        if (role_is(&m[i], "system")) {
            pend_add(&ps, i);
        } else if (role_is(&m[i], "assistant")) {
            put_sl(o, sl(m[i].content));
            puts_(o, "</s>");
        } else {
            mistral_user(o, &ps, sl(m[i].content));
        }
    }
    if (ps.any) mistral_user(o, &ps, sl(""));
}

static void gemma_turn(out *o, pending *ps, const char *role, slice content) {
    puts_(o, "<start_of_turn>");
    puts_(o, role);
    puts_(o, "\n");
    slice c = trim(content, true, true);
    if (ps && ps->any) {
        pend_put(o, ps);
        if (c.n) puts_(o, "\n\n");
        ps->any = false;
    }
    put_sl(o, c);
    puts_(o, "<end_of_turn>\n");
}

static void fmt_gemma(out *o, const yan_chat_message *m, size_t n, bool add) {
    pending ps = {m, 0, 0, false};
    for (size_t i = 0; i < n; i++) {
        if (role_is(&m[i], "system"))
            pend_add(&ps, i);
        else if (role_is(&m[i], "assistant") || role_is(&m[i], "model"))
            gemma_turn(o, NULL, "model", sl(m[i].content));
        else
            gemma_turn(o, &ps, m[i].role, sl(m[i].content));
    }
    if (ps.any) gemma_turn(o, &ps, "user", sl(""));
    if (add) puts_(o, "<start_of_turn>model\n");
}

typedef void (*fmt_fn)(out *o, const yan_chat_message *m, size_t n, bool add);

static const struct {
    const char *name;
    fmt_fn fn;
} families[] = {
    {"chatml", fmt_chatml}, {"llama2", fmt_llama2}, {"llama3", fmt_llama3}, {"zephyr", fmt_zephyr},
    {"mistral", fmt_mistral}, {"gemma", fmt_gemma}, {"phi3", fmt_phi3},
};
#define N_FAMILIES (sizeof families / sizeof families[0])

const char *yan_chat_family_names(void) { return "chatml, llama2, llama3, zephyr, mistral, gemma, phi3"; }

static fmt_fn family_fn(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < N_FAMILIES; i++)
        if (strcmp(families[i].name, name) == 0) return families[i].fn;
    return NULL;
}

bool yan_chat_family_known(const char *name) { return family_fn(name) != NULL; }

/* ------------------------------------------------------------ formatting */

int64_t yan_chat_format_family(const char *family, const yan_chat_message *msgs, size_t n, bool add_assistant,
                               char *buf, size_t cap) {
    fmt_fn fn = family_fn(family);
    if (!fn) {
        yan_fail(YAN_ERR_UNSUPPORTED, "unknown chat template '%s' (known: %s)", family ? family : "(null)",
                 yan_chat_family_names());
        return INT64_MIN;
    }
    if (n && !msgs) {
        yan_fail(YAN_ERR_INVALID_ARG, "chat: %zu messages but msgs is NULL", n);
        return INT64_MIN;
    }
    for (size_t i = 0; i < n; i++)
        if (!msgs[i].role) {
            yan_fail(YAN_ERR_INVALID_ARG, "chat: message %zu has no role", i);
            return INT64_MIN;
        }
    out o = {NULL, 0};
    fn(&o, msgs, n, add_assistant);
    const size_t need = o.len + 1;
    if (!buf || cap < need) return -(int64_t)need;
    out w = {buf, 0};
    fn(&w, msgs, n, add_assistant);
    YAN_ASSERT(w.len == o.len);
    buf[w.len] = 0;
    return (int64_t)w.len;
}

/* ------------------------------------------------------------- detection */

const char *yan_chat_detect(const char *t, bool *recognised) {
    const char *fam = NULL;
    if (t && *t) {
        if (strstr(t, "<|im_start|>"))
            fam = "chatml";
        else if (strstr(t, "<|start_header_id|>"))
            fam = "llama3";
        else if (strstr(t, "<start_of_turn>"))
            fam = "gemma";
        else if (strstr(t, "[INST]"))
            fam = strstr(t, "<<SYS>>") ? "llama2" : "mistral";
        else if (strstr(t, "<|user|>") || strstr(t, "<|assistant|>"))
            fam = strstr(t, "<|end|>") ? "phi3" : "zephyr";
    }
    if (recognised) *recognised = fam != NULL;
    return fam ? fam : "chatml";
}

/* ------------------------------------------------------------ public API */

int64_t yan_chat_format(const yan_model *m, const char *name, const yan_chat_message *msgs, size_t n,
                        bool add_assistant, char *buf, size_t cap) {
    const char *family = name ? name : yan_chat_detect(m ? yan_model_chat_template(m) : NULL, NULL);
    return yan_chat_format_family(family, msgs, n, add_assistant, buf, cap);
}

const char *yan_chat_template_family(const yan_model *m, bool *recognised) {
    return yan_chat_detect(m ? yan_model_chat_template(m) : NULL, recognised);
}
