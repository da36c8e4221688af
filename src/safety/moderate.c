/* moderate.c — the public moderation API: a moderator (compiled category
 * rules plus the built-in prompt-injection rules), one-shot and streaming
 * moderation, scoring, and the /v1/moderations JSON.
 *
 * Scoring: each category's score is 1 - prod(1 - weight) over the distinct
 * rules of that category that matched (a noisy-OR: one strong phrase or
 * several weak ones); a parent category (harassment, hate, illicit,
 * self-harm, sexual, violence) takes at least the scores of its
 * subcategories. A category is flagged when its score reaches its threshold
 * (0.5 unless the rules say otherwise). Deliberately simple and explainable:
 * every score traces back to named rules at known lines. */
#include "safety/safety.h"

#include "base/json.h"

#include <math.h>

static const char *const CAT_NAMES[YAN_MOD_COUNT] = {
    "harassment", "harassment/threatening", "hate",     "hate/threatening",       "illicit",
    "illicit/violent", "self-harm",         "self-harm/intent", "self-harm/instructions", "sexual",
    "sexual/minors",   "violence",          "violence/graphic",
};
static const int8_t PARENT[YAN_MOD_COUNT] = {-1, 0, -1, 2, -1, 4, -1, 6, 6, -1, 9, -1, 11};

const char *yan_mod_category_name(int c) { return c >= 0 && c < YAN_MOD_COUNT ? CAT_NAMES[c] : NULL; }

int yan_mod_category_find(const char *name) {
    if (!name) return -1;
    for (int c = 0; c < YAN_MOD_COUNT; c++)
        if (strcasecmp(name, CAT_NAMES[c]) == 0) return c;
    return -1;
}

/* ------------------------------------------------------------ moderator */

struct yan_moderator {
    sf_rules *rules; /* sections: CAT_NAMES */
    sf_rules *inj;   /* sections: yan_injection_sections */
};

yan_moderator_params yan_moderator_params_default(void) { return (yan_moderator_params){NULL, NULL, 0}; }

const char *yan_moderator_default_rules(size_t *len) {
    if (len) *len = yan_safety_default_rules_len;
    return yan_safety_default_rules;
}

const sf_rules *yan_moderator_injection_rules(const yan_moderator *m) { return m->inj; }

size_t yan_moderator_n_rules(const yan_moderator *m) { return m ? sf_rules_count(m->rules) : 0; }

void yan_moderator_free(yan_moderator *m) {
    if (!m) return;
    sf_rules_free(m->rules);
    sf_rules_free(m->inj);
    yan_free(m);
}

yan_status yan_moderator_new(const yan_moderator_params *p, yan_moderator **out) {
    *out = NULL;
    yan_moderator_params d = yan_moderator_params_default();
    if (!p) p = &d;
    yan_moderator *m = yan_calloc(1, sizeof *m);
    if (!m) return yan_fail(YAN_ERR_NOMEM, "moderator: out of memory");
    uint8_t *file = NULL;
    const char *text = yan_safety_default_rules, *name = "<default>";
    size_t len = yan_safety_default_rules_len;
    yan_status st;
    if (p->rules_path) {
        size_t n;
        st = yan_read_file(p->rules_path, &file, &n);
        if (st) goto fail;
        text = (const char *)file;
        len = n;
        name = p->rules_path;
    } else if (p->rules_text) {
        text = p->rules_text;
        len = p->rules_len;
        name = "<rules>";
    }
    bool builtin = text == yan_safety_default_rules;
    if ((st = sf_rules_new(CAT_NAMES, YAN_MOD_COUNT, &m->rules)) ||
        (st = sf_rules_parse(m->rules, text, len, name, builtin ? NULL : yan_safety_default_rules)) ||
        (st = sf_rules_finish(m->rules)))
        goto fail;
    if ((st = sf_rules_new(yan_injection_sections, yan_injection_n_sections, &m->inj)) ||
        (st = sf_rules_parse(m->inj, yan_safety_injection_rules, yan_safety_injection_rules_len, "<injection>",
                             NULL)) ||
        (st = sf_rules_finish(m->inj)))
        goto fail;
    yan_free(file);
    *out = m;
    return YAN_OK;
fail:
    yan_free(file);
    yan_moderator_free(m);
    return st;
}

/* ------------------------------------------------------------- scoring */

typedef struct {
    const sf_rules *rs;
    double keep[YAN_MOD_COUNT]; /* prod(1 - weight) */
    int32_t first[YAN_MOD_COUNT];
    uint64_t first_start[YAN_MOD_COUNT], first_end[YAN_MOD_COUNT];
    int32_t n_matched;
} acc;

static void acc_init(acc *a, const sf_rules *rs) {
    a->rs = rs;
    for (int c = 0; c < YAN_MOD_COUNT; c++) {
        a->keep[c] = 1.0;
        a->first[c] = -1;
        a->first_start[c] = a->first_end[c] = 0;
    }
    a->n_matched = 0;
}

static bool earlier(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2) { return s1 < s2 || (s1 == s2 && e1 < e2); }

static void on_hit(void *ud, uint32_t r, uint64_t start, uint64_t end) {
    acc *a = ud;
    const sf_rule *ru = sf_rules_get(a->rs, r);
    int c = ru->cat;
    a->keep[c] *= 1.0 - ru->weight;
    a->n_matched++;
    if (a->first[c] < 0 || earlier(start, end, a->first_start[c], a->first_end[c])) {
        a->first[c] = (int32_t)r;
        a->first_start[c] = start;
        a->first_end[c] = end;
    }
}

static void set_match(const sf_rules *rs, int32_t r, uint64_t start, uint64_t end, yan_mod_match *mm) {
    const sf_rule *ru = sf_rules_get(rs, (size_t)r);
    *mm = (yan_mod_match){sf_rules_str(rs, ru->text), sf_rules_str(rs, ru->src), ru->line,
                          (yan_mod_category)ru->cat, ru->weight, start, end};
}

static void acc_fill(const acc *a, yan_moderation *res) {
    memset(res, 0, sizeof *res);
    res->n_matched = a->n_matched;
    for (int c = 0; c < YAN_MOD_COUNT; c++) {
        double sc = 1.0 - a->keep[c];
        res->scores[c] = (float)(sc < 0 ? 0 : sc > 1 ? 1 : sc);
        if (a->first[c] >= 0) set_match(a->rs, a->first[c], a->first_start[c], a->first_end[c], &res->matches[c]);
    }
    for (int c = 0; c < YAN_MOD_COUNT; c++) {
        int p = PARENT[c];
        if (p < 0) continue;
        if (res->scores[c] > res->scores[p]) res->scores[p] = res->scores[c];
        const yan_mod_match *cm = &res->matches[c], *pm = &res->matches[p];
        if (cm->rule && (!pm->rule || earlier(cm->start, cm->end, pm->start, pm->end))) res->matches[p] = *cm;
    }
    const yan_mod_match *first = NULL, *first_any = NULL;
    for (int c = 0; c < YAN_MOD_COUNT; c++) {
        float thr = sf_rules_threshold(a->rs, c);
        res->categories[c] = res->scores[c] > 0 && res->scores[c] >= thr - 1e-6f;
        res->flagged |= res->categories[c];
        const yan_mod_match *mm = &res->matches[c];
        if (!mm->rule) continue;
        if (!first_any || earlier(mm->start, mm->end, first_any->start, first_any->end)) first_any = mm;
        if (res->categories[c] && (!first || earlier(mm->start, mm->end, first->start, first->end))) first = mm;
    }
    if (!first) first = first_any;
    if (first) res->first = *first;
}

yan_status yan_moderate(const yan_moderator *m, const char *text, size_t len, yan_moderation *res) {
    if (!m || (!text && len) || !res) return yan_fail(YAN_ERR_INVALID_ARG, "yan_moderate: NULL argument");
    acc a;
    acc_init(&a, m->rules);
    sf_scan *s;
    yan_status st = sf_scan_new(m->rules, on_hit, &a, &s);
    if (st) return st;
    if (!(st = sf_scan_feed(s, text, len))) st = sf_scan_finish(s);
    sf_scan_free(s);
    if (st) return st;
    acc_fill(&a, res);
    return YAN_OK;
}

/* ------------------------------------------------------------ streaming */

struct yan_moderate_stream {
    const yan_moderator *m;
    sf_scan *scan;
    acc a;
};

yan_status yan_moderate_stream_new(const yan_moderator *m, yan_moderate_stream **out) {
    *out = NULL;
    if (!m) return yan_fail(YAN_ERR_INVALID_ARG, "yan_moderate_stream_new: NULL moderator");
    yan_moderate_stream *s = yan_calloc(1, sizeof *s);
    if (!s) return yan_fail(YAN_ERR_NOMEM, "moderator: out of memory");
    s->m = m;
    acc_init(&s->a, m->rules);
    yan_status st = sf_scan_new(m->rules, on_hit, &s->a, &s->scan);
    if (st) {
        yan_free(s);
        return st;
    }
    *out = s;
    return YAN_OK;
}

void yan_moderate_stream_free(yan_moderate_stream *s) {
    if (!s) return;
    sf_scan_free(s->scan);
    yan_free(s);
}

void yan_moderate_stream_reset(yan_moderate_stream *s) {
    sf_scan_reset(s->scan);
    acc_init(&s->a, s->m->rules);
}

yan_status yan_moderate_stream_feed(yan_moderate_stream *s, const char *text, size_t len, yan_moderation *res) {
    if (!text && len) return yan_fail(YAN_ERR_INVALID_ARG, "yan_moderate_stream_feed: NULL text");
    yan_status st = sf_scan_feed(s->scan, text, len);
    if (res) acc_fill(&s->a, res);
    return st;
}

yan_status yan_moderate_stream_finish(yan_moderate_stream *s, yan_moderation *res) {
    yan_status st = sf_scan_finish(s->scan);
    if (res) acc_fill(&s->a, res);
    return st;
}

/* ----------------------------------------------------------------- JSON */

static void put_num(yan_buf *b, double v) {
    if (!isfinite(v)) v = 0;
    yan_buf_printf(b, "%.6g", v);
}

static void put_injection(yan_buf *b, const yan_injection_result *r) {
    yan_buf_printf(b, "{\"flagged\":%s,\"score\":", r->flagged ? "true" : "false");
    put_num(b, r->score);
    yan_buf_puts(b, ",\"threshold\":");
    put_num(b, r->threshold);
    yan_buf_puts(b, ",\"signals\":[");
    bool comma = false;
    for (int i = 0; i < YAN_INJ_COUNT; i++)
        if (r->signals & (1u << i)) {
            yan_buf_printf(b, "%s\"%s\"", comma ? "," : "", yan_injection_signal_name(i));
            comma = true;
        }
    yan_buf_puts(b, "],\"signal_scores\":{");
    for (int i = 0; i < YAN_INJ_COUNT; i++) {
        yan_buf_printf(b, "%s\"%s\":", i ? "," : "", yan_injection_signal_name(i));
        put_num(b, r->signal_scores[i]);
    }
    yan_buf_puts(b, "},\"reason\":");
    size_t rl = strnlen(r->reason, sizeof r->reason);
    yan_json_write_string(b, r->reason, rl);
    yan_buf_putc(b, '}');
}

static void put_result(yan_buf *b, const yan_moderation *r, const yan_injection_result *inj) {
    yan_buf_printf(b, "{\"flagged\":%s,\"categories\":{", r->flagged ? "true" : "false");
    for (int c = 0; c < YAN_MOD_COUNT; c++)
        yan_buf_printf(b, "%s\"%s\":%s", c ? "," : "", CAT_NAMES[c], r->categories[c] ? "true" : "false");
    yan_buf_puts(b, "},\"category_scores\":{");
    for (int c = 0; c < YAN_MOD_COUNT; c++) {
        yan_buf_printf(b, "%s\"%s\":", c ? "," : "", CAT_NAMES[c]);
        put_num(b, r->scores[c]);
    }
    yan_buf_puts(b, "},\"category_applied_input_types\":{");
    for (int c = 0; c < YAN_MOD_COUNT; c++) yan_buf_printf(b, "%s\"%s\":[\"text\"]", c ? "," : "", CAT_NAMES[c]);
    yan_buf_putc(b, '}');
    if (inj) {
        yan_buf_puts(b, ",\"injection\":");
        put_injection(b, inj);
    }
    yan_buf_puts(b, ",\"matches\":[");
    bool comma = false;
    for (int c = 0; c < YAN_MOD_COUNT; c++) {
        const yan_mod_match *mm = &r->matches[c];
        if (!mm->rule || (int)mm->category != c) continue; /* a parent's entry repeats its subcategory's */
        yan_buf_printf(b, "%s{\"category\":\"%s\",\"rule\":", comma ? "," : "", CAT_NAMES[c]);
        yan_json_write_string(b, mm->rule, strlen(mm->rule));
        yan_buf_puts(b, ",\"source\":");
        yan_json_write_string(b, mm->source, strlen(mm->source));
        yan_buf_printf(b, ",\"line\":%d,\"weight\":", (int)mm->line);
        put_num(b, mm->weight);
        yan_buf_printf(b, ",\"start\":%llu,\"end\":%llu}", (unsigned long long)mm->start,
                       (unsigned long long)mm->end);
        comma = true;
    }
    yan_buf_puts(b, "]}");
}

bool yan_moderation_json(yan_buf *b, const char *id, const yan_moderation *res, const yan_injection_result *inj,
                         size_t n) {
    yan_buf_puts(b, "{\"id\":");
    const char *i = id ? id : "modr-0";
    yan_json_write_string(b, i, strlen(i));
    yan_buf_puts(b, ",\"model\":\"yan-moderation\",\"results\":[");
    for (size_t k = 0; k < n; k++) {
        if (k) yan_buf_putc(b, ',');
        put_result(b, &res[k], inj ? &inj[k] : NULL);
    }
    yan_buf_puts(b, "]}");
    return !b->oom;
}

int64_t yan_moderation_to_json(const char *id, const yan_moderation *res, const yan_injection_result *inj,
                               size_t n, char *buf, size_t cap) {
    yan_buf b = {0};
    if ((!res && n) || !yan_moderation_json(&b, id, res, inj, n)) {
        yan_buf_free(&b);
        return INT64_MIN;
    }
    int64_t out;
    if (b.len + 1 > cap || !buf) {
        out = -(int64_t)(b.len + 1);
    } else {
        memcpy(buf, b.data, b.len + 1);
        out = (int64_t)b.len;
    }
    yan_buf_free(&b);
    return out;
}
