/* rules.c — the safety rule language: parser, pattern compiler, first-
 * character index, and the matcher (a Pike VM run online over the units of
 * norm.c). Used by the moderator (13 OpenAI categories as sections) and by
 * the prompt-injection screen (its signals as sections).
 *
 * Rules text (full description in data/safety/README.md):
 *   # comment                      ('#' at a line start or after a space)
 *   @threshold 0.5                 before any section: default for all; in a section: its own
 *   @weight 0.4                    default weight of the entries that follow
 *   @include default               the built-in rules, once
 *   [violence]                     a section
 *   i will kill you = 0.9          an entry: a pattern and an optional weight in (0, 1]
 * Patterns: words (whole words for Latin, substrings for CJK), "kill*" / "*cide"
 * / "f*ck" (any letters inside a word), "*" or "*N" standing alone (a gap of up
 * to 4 or N words; one CJK character counts as a word), "(a|b c|)" alternatives
 * (an empty one makes the group optional), nesting at most 8 deep.
 *
 * The matcher never backtracks: every rule is a small program, all programs run
 * at once as threads of a Pike VM, one step per unit; threads are deduplicated
 * per instruction, so time is O(units x live threads) and memory is fixed by the
 * program size. Each rule reports its first match only. */
#include "safety/safety.h"

#include "tokenizer/unicode.h"

#include <math.h>
#include <stdlib.h>

/* ---------------------------------------------------------- the program */

enum { OP_CHAR = 0, OP_ANY, OP_JMP, OP_SPLIT, OP_BOUND, OP_INWORD, OP_MATCH };
enum { A_IN = 1, A_LATIN = 2 }; /* arg bits: in-word join (no hard gap before); Latin units only */

struct sf_inst {
    uint8_t op;
    uint8_t arg;
    int32_t c;     /* CHAR: code point; MATCH: rule index */
    uint32_t x, y; /* JMP: x; SPLIT: x (preferred), y */
};

typedef struct {
    int32_t cp;
    uint32_t off, n; /* range of seeds[] */
} seed_key;

typedef struct {
    uint32_t pc, rule;
} sf_seed;

struct sf_rules {
    const char *const *cats;
    int n_cats;
    float thr[SF_MAX_CATS]; /* NAN = the default */
    float thr_default;
    sf_rule *rules;
    size_t n_rules, cap_rules;
    sf_inst *prog;
    size_t n_prog, cap_prog;
    yan_buf pool;
    bool finished, included;
    /* first-character index: the consuming instructions a match can begin
     * with (the entry closure, which does not depend on the position) */
    uint32_t ascii_off[128], ascii_n[128];
    seed_key *keys;
    size_t n_keys;
    sf_seed *seeds;       /* CHAR instructions, grouped by code point */
    sf_seed *any_seeds;   /* ANY instructions: tried at every word start */
    size_t n_any_seeds;
};

yan_status sf_rules_new(const char *const *cats, int n_cats, sf_rules **out) {
    *out = NULL;
    if (n_cats < 1 || n_cats > SF_MAX_CATS) return yan_fail(YAN_ERR_INVALID_ARG, "safety: %d sections", n_cats);
    sf_rules *rs = yan_calloc(1, sizeof *rs);
    if (!rs) return yan_fail(YAN_ERR_NOMEM, "safety: out of memory");
    rs->cats = cats;
    rs->n_cats = n_cats;
    for (int i = 0; i < SF_MAX_CATS; i++) rs->thr[i] = NAN;
    rs->thr_default = 0.5f;
    if (!yan_buf_putc(&rs->pool, 0)) { /* offset 0 = "" */
        sf_rules_free(rs);
        return yan_fail(YAN_ERR_NOMEM, "safety: out of memory");
    }
    *out = rs;
    return YAN_OK;
}

void sf_rules_free(sf_rules *rs) {
    if (!rs) return;
    yan_free(rs->rules);
    yan_free(rs->prog);
    yan_buf_free(&rs->pool);
    yan_free(rs->keys);
    yan_free(rs->seeds);
    yan_free(rs->any_seeds);
    yan_free(rs);
}

size_t sf_rules_count(const sf_rules *rs) { return rs->n_rules; }
const sf_rule *sf_rules_get(const sf_rules *rs, size_t i) { return i < rs->n_rules ? &rs->rules[i] : NULL; }
const char *sf_rules_str(const sf_rules *rs, uint32_t off) { return rs->pool.data + off; }
size_t sf_rules_prog_size(const sf_rules *rs) { return rs->n_prog; }
float sf_rules_threshold(const sf_rules *rs, int cat) {
    if (cat < 0 || cat >= rs->n_cats || isnan(rs->thr[cat])) return rs->thr_default;
    return rs->thr[cat];
}

static bool emit(sf_rules *rs, uint8_t op, uint8_t arg, int32_t c, uint32_t x, uint32_t y) {
    if (rs->n_prog == rs->cap_prog) {
        size_t cap = rs->cap_prog ? rs->cap_prog * 2 : 256;
        if (cap > UINT32_MAX / 2) return false;
        sf_inst *p = yan_realloc(rs->prog, cap * sizeof *p);
        if (!p) return false;
        rs->prog = p;
        rs->cap_prog = cap;
    }
    rs->prog[rs->n_prog++] = (sf_inst){op, arg, c, x, y};
    return true;
}

static uint32_t pos(const sf_rules *rs) { return (uint32_t)rs->n_prog; }

/* ------------------------------------------------------ pattern compiler */

enum { PT_CHAR = 0, PT_SEP, PT_STAR, PT_GAP, PT_LP, PT_BAR, PT_RP };
#define SF_DEFAULT_GAP 4
#define SF_MAX_DEPTH 8

typedef struct {
    uint8_t t, cls;
    int32_t v; /* CHAR: code point; GAP: words */
} ptok;

typedef struct {
    sf_rules *rs;
    const ptok *t;
    const char *err; /* static message */
} cctx;

static bool is_latin_tok(const ptok *p) { return p->t == PT_CHAR && p->cls == SF_LATIN; }
static bool is_digit_tok(const ptok *p) { return p->t == PT_CHAR && p->v >= '0' && p->v <= '9'; }

/* Pattern text -> tokens. Operators are recognised before folding. */
static size_t tokenize(const char *s, size_t len, ptok *t, const char **err) {
    size_t n = 0, i = 0;
    while (i < len) {
        int32_t cp;
        int k = yan_uc_decode((const uint8_t *)s + i, len - i, &cp);
        if (cp < 0) { *err = "invalid UTF-8"; return 0; }
        i += (size_t)k;
        if (cp == '*') { t[n++] = (ptok){PT_STAR, 0, 0}; continue; }
        if (cp == '(') { t[n++] = (ptok){PT_LP, 0, 0}; continue; }
        if (cp == '|') { t[n++] = (ptok){PT_BAR, 0, 0}; continue; }
        if (cp == ')') { t[n++] = (ptok){PT_RP, 0, 0}; continue; }
        int32_t f[3];
        int m = sf_fold(cp, f);
        for (int j = 0; j < m; j++) {
            sf_class c = sf_classify(f[j]);
            if (c == SF_LATIN || c == SF_CJK) t[n++] = (ptok){PT_CHAR, (uint8_t)c, f[j]};
            else if (n == 0 || t[n - 1].t != PT_SEP) t[n++] = (ptok){PT_SEP, 0, 0};
        }
    }
    /* resolve '*': in-word wildcard or a gap of N words */
    size_t o = 0;
    for (size_t a = 0; a < n; a++) {
        ptok p = t[a];
        if (p.t != PT_STAR) { t[o++] = p; continue; }
        /* after a letter, or after a group that ends with one: "kill*", "(kill|shoot)*" */
        bool prev_word = o > 0 && (is_latin_tok(&t[o - 1]) ||
                                   (t[o - 1].t == PT_RP && o > 1 && is_latin_tok(&t[o - 2])));
        size_t d = a + 1;
        while (d < n && d < a + 3 && is_digit_tok(&t[d])) d++;
        bool counted = d > a + 1 && (d == n || !is_latin_tok(&t[d]));
        if (!prev_word && counted) {
            int v = 0;
            for (size_t q = a + 1; q < d; q++) v = v * 10 + (t[q].v - '0');
            if (v < 1 || v > SF_MAX_GAP) { *err = "a gap '*N' needs N from 1 to 20"; return 0; }
            t[o++] = (ptok){PT_GAP, 0, v};
            a = d - 1;
        } else if (prev_word || (a + 1 < n && (is_latin_tok(&t[a + 1]) || t[a + 1].t == PT_LP))) {
            t[o++] = (ptok){PT_STAR, 0, 0};
        } else {
            t[o++] = (ptok){PT_GAP, 0, SF_DEFAULT_GAP};
        }
    }
    return o;
}

/* Index of the ')' matching the '(' at b, or e. */
static size_t match_paren(const ptok *t, size_t b, size_t e) {
    int d = 0;
    for (size_t i = b; i < e; i++) {
        if (t[i].t == PT_LP) d++;
        else if (t[i].t == PT_RP && --d == 0) return i;
    }
    return e;
}

static bool compile_alt(cctx *c, size_t b, size_t e, bool ws, bool *ws_out, int depth);

static bool compile_chars(cctx *c, size_t b, size_t e, bool ws) {
    sf_rules *rs = c->rs;
    size_t i = b;
    while (i < e) {
        int32_t cp = c->t[i].v;
        bool latin = c->t[i].cls == SF_LATIN;
        size_t j = i;
        while (j < e && c->t[j].v == cp) j++;
        if (!latin) j = i + 1;
        for (size_t k = i; k < j; k++) {
            if (!emit(rs, OP_CHAR, ws ? 0 : A_IN, cp, 0, 0)) return false;
            ws = false;
        }
        if (latin) { /* a run of r letters matches r or more: c{r} (c)* */
            uint32_t l = pos(rs);
            if (!emit(rs, OP_SPLIT, 0, 0, l + 1, l + 3) || !emit(rs, OP_CHAR, A_IN, cp, 0, 0) ||
                !emit(rs, OP_JMP, 0, 0, l, 0))
                return false;
        }
        i = j;
    }
    return true;
}

/* Any letters inside a word. At a word start the word may also begin with
 * them ("*cide"): then the letters that follow must continue the same word. */
static bool compile_star(cctx *c, bool ws) {
    sf_rules *rs = c->rs;
    uint32_t s = pos(rs);
    if (ws) {
        return emit(rs, OP_SPLIT, 0, 0, s + 1, s + 6) && emit(rs, OP_ANY, A_LATIN, 0, 0, 0) &&
               emit(rs, OP_SPLIT, 0, 0, s + 3, s + 5) && emit(rs, OP_ANY, A_LATIN | A_IN, 0, 0, 0) &&
               emit(rs, OP_JMP, 0, 0, s + 2, 0) && emit(rs, OP_INWORD, 0, 0, 0, 0);
    }
    return emit(rs, OP_SPLIT, 0, 0, s + 1, s + 3) && emit(rs, OP_ANY, A_LATIN | A_IN, 0, 0, 0) &&
           emit(rs, OP_JMP, 0, 0, s, 0);
}

/* Up to n whole words (a CJK character is one word). */
static bool compile_gap(cctx *c, int n) {
    sf_rules *rs = c->rs;
    uint32_t splits[SF_MAX_GAP];
    for (int k = 0; k < n; k++) {
        uint32_t s = pos(rs);
        splits[k] = s;
        if (!emit(rs, OP_SPLIT, 0, 0, s + 1, 0) || !emit(rs, OP_BOUND, 0, 0, 0, 0) ||
            !emit(rs, OP_ANY, 0, 0, 0, 0) || !emit(rs, OP_SPLIT, 0, 0, s + 4, s + 6) ||
            !emit(rs, OP_ANY, A_LATIN | A_IN, 0, 0, 0) || !emit(rs, OP_JMP, 0, 0, s + 3, 0) ||
            !emit(rs, OP_BOUND, 0, 0, 0, 0))
            return false;
    }
    for (int k = 0; k < n; k++) rs->prog[splits[k]].y = pos(rs);
    return true;
}

static bool compile_seq(cctx *c, size_t b, size_t e, bool ws, bool *ws_out, int depth) {
    size_t i = b;
    while (i < e) {
        const ptok *p = &c->t[i];
        switch (p->t) {
        case PT_SEP:
            ws = true;
            i++;
            break;
        case PT_CHAR: {
            size_t j = i;
            while (j < e && c->t[j].t == PT_CHAR) j++;
            if (!compile_chars(c, i, j, ws)) return false;
            ws = false;
            i = j;
            break;
        }
        case PT_STAR:
            if (!compile_star(c, ws)) return false;
            i++;
            break;
        case PT_GAP:
            if (!compile_gap(c, p->v)) return false;
            ws = true;
            i++;
            break;
        case PT_LP: {
            if (depth >= SF_MAX_DEPTH) { c->err = "groups nested too deep (at most 8)"; return false; }
            size_t k = match_paren(c->t, i, e);
            if (!compile_alt(c, i + 1, k, ws, &ws, depth + 1)) return false;
            i = k + 1;
            break;
        }
        default:
            c->err = "misplaced '|' or ')'";
            return false;
        }
    }
    *ws_out = ws;
    return true;
}

static bool compile_alt(cctx *c, size_t b, size_t e, bool ws, bool *ws_out, int depth) {
    sf_rules *rs = c->rs;
    /* top-level bars */
    size_t bars[256];
    size_t nb = 0;
    int d = 0;
    for (size_t i = b; i < e; i++) {
        if (c->t[i].t == PT_LP) d++;
        else if (c->t[i].t == PT_RP) d--;
        else if (c->t[i].t == PT_BAR && d == 0) {
            if (nb == sizeof bars / sizeof bars[0]) { c->err = "too many alternatives in one group (at most 256)"; return false; }
            bars[nb++] = i;
        }
    }
    if (nb == 0) return compile_seq(c, b, e, ws, ws_out, depth);
    uint32_t jmps[257];
    bool out = false;
    size_t ab = b;
    for (size_t k = 0; k <= nb; k++) {
        size_t ae = k < nb ? bars[k] : e;
        uint32_t sp = pos(rs);
        if (k < nb && !emit(rs, OP_SPLIT, 0, 0, sp + 1, 0)) return false;
        bool w;
        if (!compile_seq(c, ab, ae, ws, &w, depth)) return false;
        out |= w;
        if (k < nb) {
            jmps[k] = pos(rs);
            if (!emit(rs, OP_JMP, 0, 0, 0, 0)) return false;
            rs->prog[sp].y = pos(rs);
        }
        ab = ae + 1;
    }
    for (size_t k = 0; k < nb; k++) rs->prog[jmps[k]].x = pos(rs);
    *ws_out = out;
    return true;
}

/* Walk the epsilon closure of entry (at a word boundary): the consuming
 * instructions a match can begin with, and whether it can match nothing. */
typedef struct {
    uint32_t *pcs;
    size_t n, cap;
    bool nullable;
} first_info;

static bool first_set(const sf_rules *rs, uint32_t entry, uint32_t end, first_info *fi) {
    size_t span = end - entry;
    uint8_t *seen = yan_calloc(span ? span : 1, 1);
    uint32_t *stk = yan_malloc((span + 1) * sizeof *stk);
    if (!seen || !stk) { yan_free(seen); yan_free(stk); return false; }
    size_t ns = 0;
    stk[ns++] = entry;
    seen[0] = 1;
    bool ok = true;
    fi->n = 0;
    fi->nullable = false;
    while (ns && ok) {
        uint32_t pc = stk[--ns];
        const sf_inst *in = &rs->prog[pc];
        uint32_t next[2];
        int nn = 0;
        switch (in->op) {
        case OP_CHAR:
        case OP_ANY:
            if (fi->n == fi->cap) {
                size_t cap = fi->cap ? fi->cap * 2 : 16;
                uint32_t *k = yan_realloc(fi->pcs, cap * sizeof *k);
                if (!k) { ok = false; break; }
                fi->pcs = k;
                fi->cap = cap;
            }
            fi->pcs[fi->n++] = pc;
            break;
        case OP_MATCH: fi->nullable = true; break;
        case OP_JMP: next[nn++] = in->x; break;
        case OP_SPLIT: next[nn++] = in->x; next[nn++] = in->y; break;
        case OP_INWORD: break; /* never before the first unit: nothing follows it here */
        default: next[nn++] = pc + 1; break; /* BOUND holds where matches are seeded */
        }
        for (int i = 0; i < nn; i++) {
            if (next[i] < entry || next[i] >= end) continue;
            if (!seen[next[i] - entry]) {
                seen[next[i] - entry] = 1;
                stk[ns++] = next[i];
            }
        }
    }
    yan_free(seen);
    yan_free(stk);
    return ok;
}

/* Compile one pattern into rule index ri. On a pattern error returns
 * YAN_ERR_FORMAT with *msg set (static text). */
static yan_status compile_pattern(sf_rules *rs, const char *s, size_t len, uint32_t ri, const char **msg) {
    *msg = NULL;
    ptok *t = yan_malloc((3 * len + 2) * sizeof *t);
    if (!t) return YAN_ERR_NOMEM;
    size_t n = tokenize(s, len, t, msg);
    yan_status st = YAN_OK;
    size_t b = 0, e = n;
    while (b < e && t[b].t == PT_SEP) b++;
    while (e > b && t[e - 1].t == PT_SEP) e--;
    if (*msg) { st = YAN_ERR_FORMAT; goto done; }
    if (b == e) { *msg = "empty pattern"; st = YAN_ERR_FORMAT; goto done; }
    if (t[b].t == PT_GAP || t[e - 1].t == PT_GAP) {
        *msg = "a pattern cannot begin or end with a gap '*'";
        st = YAN_ERR_FORMAT;
        goto done;
    }
    int d = 0;
    for (size_t i = b; i < e; i++) {
        if (t[i].t == PT_LP) d++;
        else if (t[i].t == PT_RP && --d < 0) break;
    }
    if (d != 0) { *msg = "unbalanced parentheses"; st = YAN_ERR_FORMAT; goto done; }
    uint32_t entry = pos(rs);
    cctx c = {rs, t, NULL};
    bool ws;
    if (!emit(rs, OP_BOUND, 0, 0, 0, 0) || !compile_alt(&c, b, e, true, &ws, 0) || !emit(rs, OP_BOUND, 0, 0, 0, 0) ||
        !emit(rs, OP_MATCH, 0, (int32_t)ri, 0, 0)) {
        rs->n_prog = entry;
        if (c.err) { *msg = c.err; st = YAN_ERR_FORMAT; }
        else st = YAN_ERR_NOMEM;
        goto done;
    }
    if (pos(rs) - entry > SF_MAX_RULE_INSTS) {
        rs->n_prog = entry;
        *msg = "pattern too large (use fewer or shorter alternatives and gaps)";
        st = YAN_ERR_FORMAT;
        goto done;
    }
    first_info fi = {0};
    if (!first_set(rs, entry, pos(rs), &fi)) {
        yan_free(fi.pcs);
        rs->n_prog = entry;
        st = YAN_ERR_NOMEM;
        goto done;
    }
    yan_free(fi.pcs);
    if (fi.nullable) {
        rs->n_prog = entry;
        *msg = "pattern can match empty text";
        st = YAN_ERR_FORMAT;
        goto done;
    }
done:
    yan_free(t);
    return st;
}

/* ------------------------------------------------------------- parser */

typedef struct {
    sf_rules *rs;
    const char *name;
    uint32_t src;
    int cat;
    float weight_global, weight_sec;
    const char *include_text;
} pstate;

static bool is_sp(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v'; }

static void trim(const char **s, size_t *n) {
    while (*n && is_sp(**s)) { (*s)++; (*n)--; }
    while (*n && is_sp((*s)[*n - 1])) (*n)--;
}

/* A number in [lo, hi] (lo exclusive when open_lo) from s[0..n). */
static bool parse_num(const char *s, size_t n, double lo, double hi, bool open_lo, float *out) {
    char tmp[64];
    if (n == 0 || n >= sizeof tmp) return false;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    char *end;
    double v = strtod(tmp, &end);
    if (*end || !isfinite(v) || v > hi || v < lo || (open_lo && v == lo)) return false;
    for (size_t i = 0; i < n; i++)
        if (!((tmp[i] >= '0' && tmp[i] <= '9') || tmp[i] == '.')) return false;
    *out = (float)v;
    return true;
}

static bool word_is(const char *s, size_t n, const char *w) {
    size_t k = strlen(w);
    if (n != k) return false;
    for (size_t i = 0; i < k; i++)
        if ((s[i] | 0x20) != w[i]) return false;
    return true;
}

static bool pool_add(sf_rules *rs, const char *s, size_t n, uint32_t *off) {
    if (rs->pool.len > UINT32_MAX - n - 1) return false;
    *off = (uint32_t)rs->pool.len;
    return yan_buf_append(&rs->pool, s, n) && yan_buf_putc(&rs->pool, 0);
}

static yan_status parse_text(pstate *ps, const char *text, size_t len);

static yan_status parse_line(pstate *ps, const char *s, size_t n, int line) {
    sf_rules *rs = ps->rs;
    /* comments: '#' at the start or after a space */
    for (size_t i = 0; i < n; i++)
        if (s[i] == '#' && (i == 0 || is_sp(s[i - 1]))) { n = i; break; }
    trim(&s, &n);
    if (n == 0) return YAN_OK;
    if (s[0] == '[') {
        if (s[n - 1] != ']') return yan_fail(YAN_ERR_FORMAT, "%s:%d: a section line is '[name]'", ps->name, line);
        const char *nm = s + 1;
        size_t nl = n - 2;
        trim(&nm, &nl);
        for (int c = 0; c < rs->n_cats; c++)
            if (strlen(rs->cats[c]) == nl && strncasecmp(rs->cats[c], nm, nl) == 0) {
                ps->cat = c;
                ps->weight_sec = ps->weight_global;
                return YAN_OK;
            }
        char list[512];
        size_t o = 0;
        list[0] = 0;
        for (int c = 0; c < rs->n_cats && o < sizeof list - 64; c++)
            o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", c ? ", " : "", rs->cats[c]);
        return yan_fail(YAN_ERR_FORMAT, "%s:%d: unknown section '%.*s' (expected one of: %s)", ps->name, line,
                        (int)(nl > 80 ? 80 : nl), nm, list);
    }
    if (s[0] == '@') {
        size_t w = 1;
        while (w < n && !is_sp(s[w])) w++;
        const char *arg = s + w;
        size_t an = n - w;
        trim(&arg, &an);
        if (word_is(s + 1, w - 1, "threshold")) {
            float v;
            if (!parse_num(arg, an, 0, 1, true, &v))
                return yan_fail(YAN_ERR_FORMAT, "%s:%d: @threshold needs a number in (0, 1]", ps->name, line);
            if (ps->cat < 0) rs->thr_default = v;
            else rs->thr[ps->cat] = v;
            return YAN_OK;
        }
        if (word_is(s + 1, w - 1, "weight")) {
            float v;
            if (!parse_num(arg, an, 0, 1, true, &v))
                return yan_fail(YAN_ERR_FORMAT, "%s:%d: @weight needs a number in (0, 1]", ps->name, line);
            if (ps->cat < 0) ps->weight_global = ps->weight_sec = v;
            else ps->weight_sec = v;
            return YAN_OK;
        }
        if (word_is(s + 1, w - 1, "include")) {
            if (!word_is(arg, an, "default"))
                return yan_fail(YAN_ERR_FORMAT, "%s:%d: only '@include default' is supported", ps->name, line);
            if (!ps->include_text)
                return yan_fail(YAN_ERR_FORMAT, "%s:%d: '@include default' is not available here", ps->name, line);
            if (rs->included)
                return yan_fail(YAN_ERR_FORMAT, "%s:%d: the default rules are already included", ps->name, line);
            rs->included = true;
            pstate sub = {rs, "<default>", 0, -1, 0.5f, 0.5f, NULL};
            if (!pool_add(rs, sub.name, strlen(sub.name), &sub.src))
                return yan_fail(YAN_ERR_NOMEM, "safety: out of memory");
            return parse_text(&sub, ps->include_text, strlen(ps->include_text));
        }
        return yan_fail(YAN_ERR_FORMAT, "%s:%d: unknown directive '%.*s' (expected @threshold, @weight, @include)",
                        ps->name, line, (int)(w > 40 ? 40 : w), s);
    }
    if (ps->cat < 0)
        return yan_fail(YAN_ERR_FORMAT, "%s:%d: an entry before any [section]", ps->name, line);
    float weight = ps->weight_sec;
    const char *eq = NULL;
    for (size_t i = n; i-- > 0;)
        if (s[i] == '=') { eq = s + i; break; }
    if (eq) {
        const char *ws = eq + 1;
        size_t wn = (size_t)(s + n - ws);
        trim(&ws, &wn);
        if (!parse_num(ws, wn, 0, 1, true, &weight))
            return yan_fail(YAN_ERR_FORMAT, "%s:%d: weight '%.*s' is not a number in (0, 1]", ps->name, line,
                            (int)(wn > 40 ? 40 : wn), ws);
        n = (size_t)(eq - s);
        trim(&s, &n);
    }
    if (rs->n_rules == rs->cap_rules) {
        size_t cap = rs->cap_rules ? rs->cap_rules * 2 : 64;
        sf_rule *r = yan_realloc(rs->rules, cap * sizeof *r);
        if (!r) return yan_fail(YAN_ERR_NOMEM, "safety: out of memory");
        rs->rules = r;
        rs->cap_rules = cap;
    }
    if (rs->n_rules >= INT32_MAX) return yan_fail(YAN_ERR_FORMAT, "%s:%d: too many rules", ps->name, line);
    uint32_t ri = (uint32_t)rs->n_rules;
    uint32_t entry = pos(rs);
    const char *msg;
    yan_status st = compile_pattern(rs, s, n, ri, &msg);
    if (st == YAN_ERR_NOMEM) return yan_fail(YAN_ERR_NOMEM, "safety: out of memory");
    if (st) return yan_fail(st, "%s:%d: %s: '%.*s'", ps->name, line, msg, (int)(n > 80 ? 80 : n), s);
    uint32_t toff;
    if (!pool_add(rs, s, n, &toff)) return yan_fail(YAN_ERR_NOMEM, "safety: out of memory");
    rs->rules[rs->n_rules++] = (sf_rule){ps->cat, weight, line, entry, toff, ps->src};
    return YAN_OK;
}

static yan_status parse_text(pstate *ps, const char *text, size_t len) {
    int line = 0;
    size_t i = 0;
    while (i < len) {
        line++;
        size_t j = i;
        while (j < len && text[j] != '\n') j++;
        if (j - i > SF_MAX_LINE) return yan_fail(YAN_ERR_FORMAT, "%s:%d: line longer than %d bytes", ps->name, line, SF_MAX_LINE);
        if (memchr(text + i, 0, j - i)) return yan_fail(YAN_ERR_FORMAT, "%s:%d: NUL byte", ps->name, line);
        yan_status st = parse_line(ps, text + i, j - i, line);
        if (st) return st;
        i = j + 1;
    }
    return YAN_OK;
}

yan_status sf_rules_parse(sf_rules *rs, const char *text, size_t len, const char *name, const char *include_text) {
    if (rs->finished) return yan_fail(YAN_ERR_INVALID_ARG, "safety: rules already finished");
    pstate ps = {rs, name ? name : "<rules>", 0, -1, 0.5f, 0.5f, include_text};
    if (!pool_add(rs, ps.name, strlen(ps.name), &ps.src)) return yan_fail(YAN_ERR_NOMEM, "safety: out of memory");
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) { text += 3; len -= 3; } /* BOM */
    return parse_text(&ps, text, len);
}

/* --------------------------------------------------------------- index */

typedef struct {
    int32_t cp;
    sf_seed seed;
} pair;

static int pair_cmp(const void *a, const void *b) {
    const pair *x = a, *y = b;
    if (x->cp != y->cp) return x->cp < y->cp ? -1 : 1;
    return x->seed.pc < y->seed.pc ? -1 : x->seed.pc > y->seed.pc;
}

static bool push_pair(pair **v, size_t *n, size_t *cap, pair p) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        pair *q = yan_realloc(*v, nc * sizeof *q);
        if (!q) return false;
        *v = q;
        *cap = nc;
    }
    (*v)[(*n)++] = p;
    return true;
}

yan_status sf_rules_finish(sf_rules *rs) {
    if (rs->finished) return YAN_OK;
    pair *chars = NULL, *anys = NULL;
    size_t nc = 0, capc = 0, na = 0, capa = 0;
    first_info fi = {0};
    for (size_t r = 0; r < rs->n_rules; r++) {
        uint32_t end = r + 1 < rs->n_rules ? rs->rules[r + 1].entry : pos(rs);
        if (!first_set(rs, rs->rules[r].entry, end, &fi)) goto oom;
        for (size_t k = 0; k < fi.n; k++) {
            const sf_inst *in = &rs->prog[fi.pcs[k]];
            pair p = {in->op == OP_CHAR ? in->c : 0, {fi.pcs[k], (uint32_t)r}};
            if (!(in->op == OP_CHAR ? push_pair(&chars, &nc, &capc, p) : push_pair(&anys, &na, &capa, p))) goto oom;
        }
    }
    yan_free(fi.pcs);
    fi.pcs = NULL;
    if (nc) qsort(chars, nc, sizeof *chars, pair_cmp);
    rs->seeds = yan_malloc((nc + 1) * sizeof *rs->seeds);
    rs->keys = yan_malloc((nc + 1) * sizeof *rs->keys);
    rs->any_seeds = yan_malloc((na + 1) * sizeof *rs->any_seeds);
    if (!rs->seeds || !rs->keys || !rs->any_seeds) goto oom;
    for (size_t i = 0; i < nc;) {
        size_t j = i;
        while (j < nc && chars[j].cp == chars[i].cp) { rs->seeds[j] = chars[j].seed; j++; }
        if (chars[i].cp >= 0 && chars[i].cp < 128) {
            rs->ascii_off[chars[i].cp] = (uint32_t)i;
            rs->ascii_n[chars[i].cp] = (uint32_t)(j - i);
        } else {
            rs->keys[rs->n_keys++] = (seed_key){chars[i].cp, (uint32_t)i, (uint32_t)(j - i)};
        }
        i = j;
    }
    for (size_t i = 0; i < na; i++) rs->any_seeds[i] = anys[i].seed;
    rs->n_any_seeds = na;
    yan_free(chars);
    yan_free(anys);
    rs->finished = true;
    return YAN_OK;
oom:
    yan_free(fi.pcs);
    yan_free(chars);
    yan_free(anys);
    return yan_fail(YAN_ERR_NOMEM, "safety: out of memory");
}

static const sf_seed *seeds_for(const sf_rules *rs, int32_t cp, uint32_t *n) {
    if (cp >= 0 && cp < 128) {
        *n = rs->ascii_n[cp];
        return rs->seeds + rs->ascii_off[cp];
    }
    size_t lo = 0, hi = rs->n_keys;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (rs->keys[mid].cp < cp) lo = mid + 1;
        else hi = mid;
    }
    if (lo < rs->n_keys && rs->keys[lo].cp == cp) {
        *n = rs->keys[lo].n;
        return rs->seeds + rs->keys[lo].off;
    }
    *n = 0;
    return NULL;
}

/* ------------------------------------------------------------- matcher */

enum { F_ALT = 1, F_LATIN = 2 }; /* a match that used an alternative reading needs a real Latin letter */

typedef struct {
    uint32_t pc, flags;
    uint64_t start;
} sf_thread;

typedef struct {
    sf_thread *v;
    size_t n, cap;
} tlist;

struct sf_scan {
    const sf_rules *rs;
    sf_norm norm;
    tlist act, pend, stk;
    uint32_t *stamp; /* per instruction: the generation that reached it */
    uint32_t gen;
    bool prev_valid, prev_cjk, peeked, finished;
    uint64_t prev_end;
    uint8_t *matched; /* per rule */
    uint64_t *hits;   /* per rule: start, end */
    sf_hit_fn fn;
    void *ud;
    yan_status err;
};

static void on_unit(void *ud, const sf_unit *u);

yan_status sf_scan_new(const sf_rules *rs, sf_hit_fn fn, void *ud, sf_scan **out) {
    *out = NULL;
    if (!rs->finished) return yan_fail(YAN_ERR_INVALID_ARG, "safety: rules not finished");
    sf_scan *s = yan_calloc(1, sizeof *s);
    if (!s) return yan_fail(YAN_ERR_NOMEM, "safety: out of memory");
    s->rs = rs;
    s->fn = fn;
    s->ud = ud;
    s->stamp = yan_calloc(rs->n_prog + 1, sizeof *s->stamp);
    s->matched = yan_calloc(rs->n_rules + 1, 1);
    s->hits = yan_calloc(2 * rs->n_rules + 2, sizeof *s->hits);
    if (!s->stamp || !s->matched || !s->hits) {
        sf_scan_free(s);
        return yan_fail(YAN_ERR_NOMEM, "safety: out of memory");
    }
    sf_scan_reset(s);
    *out = s;
    return YAN_OK;
}

void sf_scan_free(sf_scan *s) {
    if (!s) return;
    yan_free(s->act.v);
    yan_free(s->pend.v);
    yan_free(s->stk.v);
    yan_free(s->stamp);
    yan_free(s->matched);
    yan_free(s->hits);
    yan_free(s);
}

void sf_scan_reset(sf_scan *s) {
    sf_norm_init(&s->norm, on_unit, s);
    s->act.n = s->pend.n = s->stk.n = 0;
    s->prev_valid = s->prev_cjk = s->peeked = s->finished = false;
    s->prev_end = 0;
    memset(s->matched, 0, s->rs->n_rules);
    s->err = YAN_OK;
}

uint64_t sf_scan_offset(const sf_scan *s) { return s->norm.off + s->norm.n_carry; }

bool sf_scan_hit(const sf_scan *s, uint32_t rule, uint64_t *start, uint64_t *end) {
    if (rule >= s->rs->n_rules || !s->matched[rule]) return false;
    if (start) *start = s->hits[2 * rule];
    if (end) *end = s->hits[2 * rule + 1];
    return true;
}

static bool tgrow(sf_scan *s, tlist *l) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    sf_thread *v = yan_realloc(l->v, cap * sizeof *v);
    if (!v) {
        s->err = YAN_ERR_NOMEM;
        return false;
    }
    l->v = v;
    l->cap = cap;
    return true;
}

static inline bool tpush(sf_scan *s, tlist *l, uint32_t pc, uint32_t flags, uint64_t start) {
    if (YAN_UNLIKELY(l->n == l->cap) && !tgrow(s, l)) return false;
    l->v[l->n++] = (sf_thread){pc, flags, start};
    return true;
}

static void next_gen(sf_scan *s) {
    if (++s->gen == 0) {
        memset(s->stamp, 0, (s->rs->n_prog + 1) * sizeof *s->stamp);
        s->gen = 1;
    }
}

/* Follow the epsilon edges from pc at the current position; consuming
 * instructions land in act, MATCH reports. */
static void add_thread(sf_scan *s, uint32_t pc0, uint32_t flags, uint64_t start, bool boundary, bool inword) {
    const sf_inst *prog = s->rs->prog;
    if (s->stamp[pc0] == s->gen) return;
    s->stamp[pc0] = s->gen;
    s->stk.n = 0;
    if (!tpush(s, &s->stk, pc0, flags, start)) return;
    while (s->stk.n) {
        sf_thread t = s->stk.v[--s->stk.n];
        const sf_inst *in = &prog[t.pc];
        uint32_t nx[2];
        int nn = 0;
        switch (in->op) {
        case OP_JMP: nx[nn++] = in->x; break;
        case OP_SPLIT: nx[nn++] = in->y; nx[nn++] = in->x; break;
        case OP_BOUND: if (boundary) nx[nn++] = t.pc + 1; break;
        case OP_INWORD: if (inword) nx[nn++] = t.pc + 1; break;
        case OP_MATCH: {
            uint32_t r = (uint32_t)in->c;
            if (!s->matched[r] && (!(t.flags & F_ALT) || (t.flags & F_LATIN))) {
                s->matched[r] = 1;
                s->hits[2 * r] = t.start;
                s->hits[2 * r + 1] = s->prev_end;
                if (s->fn) s->fn(s->ud, r, t.start, s->prev_end);
            }
            break;
        }
        default: tpush(s, &s->act, t.pc, t.flags, t.start); break;
        }
        for (int i = 0; i < nn; i++) {
            if (s->stamp[nx[i]] == s->gen) continue;
            s->stamp[nx[i]] = s->gen;
            if (!tpush(s, &s->stk, nx[i], t.flags, t.start)) return;
        }
    }
}

/* Start matches at this unit: threads go straight to the first consuming
 * instructions that can take it (the entry closure is precomputed). */
static void seed_list(sf_scan *s, const sf_seed *v, uint32_t n, uint64_t start) {
    for (uint32_t i = 0; i < n; i++) {
        if (s->matched[v[i].rule] || s->stamp[v[i].pc] == s->gen) continue;
        s->stamp[v[i].pc] = s->gen;
        if (!tpush(s, &s->act, v[i].pc, 0, start)) return;
    }
}

/* The hot loop: advance every live thread over one unit. */
static void step(sf_scan *s, const sf_unit *u) {
    const sf_inst *prog = s->rs->prog;
    bool letter = u->cp >= 'a' && u->cp <= 'z';
    for (size_t i = 0; i < s->act.n; i++) {
        const sf_thread *t = &s->act.v[i];
        const sf_inst *in = &prog[t->pc];
        uint32_t f = t->flags;
        if ((in->arg & A_IN) && u->gap == SF_GAP_HARD) continue;
        if (in->op == OP_CHAR) {
            if (u->cp == in->c) f |= letter ? F_LATIN : 0;
            else if (u->alt && u->alt == in->c) f |= F_ALT;
            else continue;
        } else { /* OP_ANY */
            if ((in->arg & A_LATIN) && (u->cls == SF_CJK || ((in->arg & A_IN) && s->prev_cjk))) continue;
            f |= letter ? F_LATIN : 0;
        }
        if (!tpush(s, &s->pend, t->pc + 1, f, t->start)) return;
    }
    s->act.n = 0;
}

static void on_unit(void *ud, const sf_unit *u) {
    sf_scan *s = ud;
    if (s->err) return;
    bool boundary = !s->prev_valid || u->gap != SF_GAP_NONE || u->cls == SF_CJK || s->prev_cjk;
    bool inword = s->prev_valid && u->gap != SF_GAP_HARD;
    next_gen(s);
    s->act.n = 0;
    for (size_t i = 0; i < s->pend.n; i++) {
        const sf_thread *t = &s->pend.v[i];
        add_thread(s, t->pc, t->flags, t->start, boundary, inword);
    }
    s->pend.n = 0;
    if (boundary) { /* every rule begins with a word boundary */
        uint32_t n;
        const sf_seed *v = seeds_for(s->rs, u->cp, &n);
        seed_list(s, v, n, u->start);
        if (u->alt) {
            v = seeds_for(s->rs, u->alt, &n);
            seed_list(s, v, n, u->start);
        }
        seed_list(s, s->rs->any_seeds, (uint32_t)s->rs->n_any_seeds, u->start);
    }
    step(s, u);
    s->prev_valid = true;
    s->prev_cjk = u->cls == SF_CJK;
    s->prev_end = u->end;
    s->peeked = false;
}

/* Decide the matches that end here when a boundary is known to follow
 * (separators were seen, or the text ended). The pending threads are kept:
 * the next unit continues from them. */
static void closure_at_boundary(sf_scan *s) {
    next_gen(s);
    s->act.n = 0;
    for (size_t i = 0; i < s->pend.n; i++) {
        const sf_thread *t = &s->pend.v[i];
        add_thread(s, t->pc, t->flags, t->start, true, false);
    }
    s->act.n = 0;
}

yan_status sf_scan_feed(sf_scan *s, const char *text, size_t len) {
    if (s->finished) return yan_fail(YAN_ERR_INVALID_ARG, "safety: text fed after the end of the stream");
    if (s->err) return yan_fail(s->err, "safety: out of memory");
    if (len) sf_norm_feed(&s->norm, (const uint8_t *)text, len);
    if (!s->err && !s->peeked && s->prev_valid && sf_norm_trailing_gap(&s->norm)) {
        closure_at_boundary(s);
        s->peeked = true;
    }
    if (s->err) return yan_fail(s->err, "safety: out of memory");
    return YAN_OK;
}

yan_status sf_scan_finish(sf_scan *s) {
    if (s->finished) return YAN_OK;
    if (s->err) return yan_fail(s->err, "safety: out of memory");
    sf_norm_finish(&s->norm);
    if (!s->err && s->prev_valid) closure_at_boundary(s);
    s->pend.n = 0;
    s->finished = true;
    if (s->err) return yan_fail(s->err, "safety: out of memory");
    return YAN_OK;
}
