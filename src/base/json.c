/* json.c — strict RFC 8259 parser into an arena DOM, and the JSON string
 * escaper. Contract in json.h.
 *
 * Design: a recursive-descent parser (depth bounded by YAN_JSON_MAX_DEPTH)
 * that collects the children of open containers on one shared heap stack and
 * copies them into a single arena array when the container closes, so every
 * array/object is one contiguous allocation and the parse does O(1) arena
 * calls per container. Strings are validated and sized in one scan, then
 * copied (or unescaped) into the arena. Integers are converted inline; other
 * numbers go through strtod on a bounded copy. Line/column of an error are
 * computed only when an error happens. */
#include "base/json.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

/* ------------------------------------------------------------------ state */

typedef struct {
    const uint8_t *start, *p, *end;
    yan_arena *a;
    yan_json_member *stk; /* children of the open containers */
    size_t top, cap;
    int depth;
    yan_status st;        /* first error */
} jp;

static yan_status jp_error(jp *P, const uint8_t *at, const char *what) {
    if (P->st != YAN_OK) return P->st;
    size_t line = 1, col = 1;
    for (const uint8_t *q = P->start; q < at && q < P->end; q++) {
        if (*q == '\n') { line++; col = 1; } else col++;
    }
    if (at >= P->end)
        P->st = yan_fail(YAN_ERR_FORMAT, "line %zu col %zu: %s (at end of input)", line, col, what);
    else
        P->st = yan_fail(YAN_ERR_FORMAT, "line %zu col %zu: %s", line, col, what);
    return P->st;
}

static yan_status jp_nomem(jp *P) {
    if (P->st == YAN_OK) P->st = yan_fail(YAN_ERR_NOMEM, "out of memory while parsing JSON");
    return P->st;
}

static inline void skip_ws(jp *P) {
    const uint8_t *p = P->p, *e = P->end;
    while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    P->p = p;
}

/* ---------------------------------------------------------------- strings */

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0. */
static inline int utf8_seq(const uint8_t *p, const uint8_t *e) {
    uint8_t c = p[0];
    size_t left = (size_t)(e - p);
    if (c >= 0xC2 && c <= 0xDF) {
        return (left >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (left < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && p[1] < 0xA0) return 0;  /* overlong */
        if (c == 0xED && p[1] >= 0xA0) return 0; /* surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (left < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && p[1] < 0x90) return 0;  /* overlong */
        if (c == 0xF4 && p[1] >= 0x90) return 0; /* > U+10FFFF */
        return 4;
    }
    return 0;
}

static inline int hexval(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Four hex digits at p (bounds checked by the caller); -1 if not hex. */
static inline int32_t hex4(const uint8_t *p) {
    int a = hexval(p[0]), b = hexval(p[1]), c = hexval(p[2]), d = hexval(p[3]);
    if ((a | b | c | d) < 0) return -1;
    return (int32_t)((a << 12) | (b << 8) | (c << 4) | d);
}

static size_t put_utf8(uint32_t cp, char *o) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F)); return 4;
}

/* P->p is at the opening quote. On success (*s, *n) is the decoded string in
 * the arena and P->p is past the closing quote. */
static yan_status parse_string(jp *P, const char **s, size_t *n) {
    const uint8_t *open = P->p, *p = P->p + 1, *e = P->end;
    bool esc = false;
    /* pass 1: find the end, validate characters and UTF-8 */
    for (;;) {
        /* hot loop: plain ASCII */
        while (p < e && *p >= 0x20 && *p != '"' && *p != '\\' && *p < 0x80) p++;
        if (p >= e) return jp_error(P, open, "unterminated string");
        uint8_t c = *p;
        if (c == '"') break;
        if (c == '\\') {
            esc = true;
            if (p + 1 >= e) return jp_error(P, open, "unterminated string");
            p += 2; /* the escape itself is checked in pass 2 */
            continue;
        }
        if (c < 0x20) return jp_error(P, p, "control character in string (must be escaped)");
        int k = utf8_seq(p, e);
        if (k == 0) return jp_error(P, p, "invalid UTF-8 in string");
        p += k;
    }
    size_t raw = (size_t)(p - (open + 1));
    char *out = yan_arena_alloc(P->a, raw + 1);
    if (!out) return jp_nomem(P);
    if (!esc) {
        memcpy(out, open + 1, raw);
        out[raw] = 0;
        *s = out;
        *n = raw;
        P->p = p + 1;
        return YAN_OK;
    }
    /* pass 2: unescape (output is never longer than the input) */
    const uint8_t *q = open + 1, *qe = p;
    char *o = out;
    while (q < qe) {
        if (*q != '\\') { *o++ = (char)*q++; continue; }
        const uint8_t *at = q;
        q++;
        switch (*q++) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            if (qe - q < 4) return jp_error(P, at, "bad \\u escape (need 4 hex digits)");
            int32_t cp = hex4(q);
            if (cp < 0) return jp_error(P, at, "bad \\u escape (need 4 hex digits)");
            q += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return jp_error(P, at, "lone low surrogate in \\u escape");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (qe - q < 6 || q[0] != '\\' || q[1] != 'u')
                    return jp_error(P, at, "lone high surrogate in \\u escape");
                int32_t lo = hex4(q + 2);
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return jp_error(P, at, "lone high surrogate in \\u escape");
                q += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            o += put_utf8((uint32_t)cp, o);
            break;
        }
        default:
            return jp_error(P, at, "invalid escape in string");
        }
    }
    *o = 0;
    *s = out;
    *n = (size_t)(o - out);
    P->p = p + 1;
    return YAN_OK;
}

/* ---------------------------------------------------------------- numbers */

static yan_status parse_number(jp *P, yan_json *v) {
    const uint8_t *s = P->p, *p = s, *e = P->end;
    bool neg = false, frac = false;
    if (p < e && *p == '-') { neg = true; p++; }
    if (p >= e || *p < '0' || *p > '9') return jp_error(P, s, "invalid number");
    const uint8_t *ds = p;
    if (*p == '0') {
        p++;
        if (p < e && *p >= '0' && *p <= '9') return jp_error(P, s, "leading zero in number");
    } else {
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    const uint8_t *de = p;
    if (p < e && *p == '.') {
        frac = true;
        p++;
        if (p >= e || *p < '0' || *p > '9') return jp_error(P, p, "expected digit after '.'");
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        frac = true;
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || *p < '0' || *p > '9') return jp_error(P, p, "expected digit in exponent");
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    P->p = p;
    v->type = YAN_JSON_NUMBER;
    v->is_int = 0;
    if (!frac && de - ds <= 19) {
        /* exact integer path; 19 digits fit in uint64 */
        uint64_t m = 0;
        for (const uint8_t *q = ds; q < de; q++) m = m * 10 + (uint64_t)(*q - '0');
        if (!neg && m <= (uint64_t)INT64_MAX) {
            v->i = (int64_t)m; v->is_int = 1; v->u.num = (double)m; return YAN_OK;
        }
        if (neg && m <= (uint64_t)INT64_MAX + 1) {
            v->i = (m == (uint64_t)INT64_MAX + 1) ? INT64_MIN : -(int64_t)m;
            v->is_int = 1; v->u.num = -(double)m; return YAN_OK;
        }
    }
    size_t n = (size_t)(p - s);
    char small[64];
    char *buf = small;
    if (n >= sizeof small) {
        buf = yan_malloc(n + 1);
        if (!buf) return jp_nomem(P);
    }
    memcpy(buf, s, n);
    buf[n] = 0;
    double d = strtod(buf, NULL); /* grammar already checked; overflow gives +-HUGE_VAL */
    if (buf != small) yan_free(buf);
    v->u.num = d;
    if (d == floor(d) && fabs(d) <= 9007199254740992.0) { v->i = (int64_t)d; v->is_int = 1; }
    return YAN_OK;
}

/* ----------------------------------------------------------------- values */

static yan_status push_member(jp *P, const char *key, size_t klen, const yan_json *v) {
    if (P->top == P->cap) {
        size_t nc = P->cap ? P->cap * 2 : 64, bytes;
        if (yan_mul_ovf(nc, sizeof *P->stk, &bytes)) return jp_nomem(P);
        yan_json_member *ns = yan_realloc(P->stk, bytes);
        if (!ns) return jp_nomem(P);
        P->stk = ns;
        P->cap = nc;
    }
    yan_json_member *m = &P->stk[P->top++];
    m->key = key;
    m->key_len = klen;
    m->value = *v;
    return YAN_OK;
}

static yan_status parse_value(jp *P, yan_json *v);

static yan_status parse_array(jp *P, yan_json *v) {
    const uint8_t *open = P->p;
    size_t base = P->top;
    P->p++;
    skip_ws(P);
    if (P->p < P->end && *P->p == ']') {
        P->p++;
    } else {
        for (;;) {
            yan_json item;
            if (parse_value(P, &item) != YAN_OK) return P->st;
            if (push_member(P, NULL, 0, &item) != YAN_OK) return P->st;
            skip_ws(P);
            if (P->p >= P->end) return jp_error(P, open, "unterminated array (expected ',' or ']')");
            if (*P->p == ',') { P->p++; continue; }
            if (*P->p == ']') { P->p++; break; }
            return jp_error(P, P->p, "expected ',' or ']' in array");
        }
    }
    size_t n = P->top - base;
    v->type = YAN_JSON_ARRAY;
    v->n = n;
    v->u.items = NULL;
    if (n) {
        yan_json *items = yan_arena_alloc(P->a, n * sizeof *items); /* n*32 < stack bytes: no overflow */
        if (!items) return jp_nomem(P);
        for (size_t i = 0; i < n; i++) items[i] = P->stk[base + i].value;
        v->u.items = items;
    }
    P->top = base;
    return YAN_OK;
}

static yan_status parse_object(jp *P, yan_json *v) {
    const uint8_t *open = P->p;
    size_t base = P->top;
    P->p++;
    skip_ws(P);
    if (P->p < P->end && *P->p == '}') {
        P->p++;
    } else {
        for (;;) {
            if (P->p >= P->end || *P->p != '"')
                return jp_error(P, P->p, P->p >= P->end ? "unterminated object" : "expected '\"' (object key)");
            const char *key;
            size_t klen;
            if (parse_string(P, &key, &klen) != YAN_OK) return P->st;
            skip_ws(P);
            if (P->p >= P->end || *P->p != ':') return jp_error(P, P->p, "expected ':' after object key");
            P->p++;
            yan_json item;
            if (parse_value(P, &item) != YAN_OK) return P->st;
            if (push_member(P, key, klen, &item) != YAN_OK) return P->st;
            skip_ws(P);
            if (P->p >= P->end) return jp_error(P, open, "unterminated object (expected ',' or '}')");
            if (*P->p == ',') { P->p++; skip_ws(P); continue; }
            if (*P->p == '}') { P->p++; break; }
            return jp_error(P, P->p, "expected ',' or '}' in object");
        }
    }
    size_t n = P->top - base;
    v->type = YAN_JSON_OBJECT;
    v->n = n;
    v->u.members = NULL;
    if (n) {
        yan_json_member *ms = yan_arena_alloc(P->a, n * sizeof *ms);
        if (!ms) return jp_nomem(P);
        memcpy(ms, P->stk + base, n * sizeof *ms);
        v->u.members = ms;
    }
    P->top = base;
    return YAN_OK;
}

static bool lit(jp *P, const char *w, size_t n) {
    if ((size_t)(P->end - P->p) < n || memcmp(P->p, w, n) != 0) return false;
    P->p += n;
    return true;
}

static yan_status parse_value(jp *P, yan_json *v) {
    skip_ws(P);
    memset(v, 0, sizeof *v);
    if (P->p >= P->end) return jp_error(P, P->p, "expected a value");
    switch (*P->p) {
    case '{':
    case '[': {
        if (P->depth >= YAN_JSON_MAX_DEPTH) return jp_error(P, P->p, "nesting too deep (limit 512)");
        P->depth++;
        yan_status st = *P->p == '{' ? parse_object(P, v) : parse_array(P, v);
        P->depth--;
        return st;
    }
    case '"':
        v->type = YAN_JSON_STRING;
        return parse_string(P, &v->u.str, &v->n);
    case 't':
        if (!lit(P, "true", 4)) break;
        v->type = YAN_JSON_BOOL; v->b = 1; return YAN_OK;
    case 'f':
        if (!lit(P, "false", 5)) break;
        v->type = YAN_JSON_BOOL; v->b = 0; return YAN_OK;
    case 'n':
        if (!lit(P, "null", 4)) break;
        v->type = YAN_JSON_NULL; return YAN_OK;
    default:
        if (*P->p == '-' || (*P->p >= '0' && *P->p <= '9')) return parse_number(P, v);
        break;
    }
    return jp_error(P, P->p, "expected a value (object, array, string, number, true, false or null)");
}

yan_status yan_json_parse(const char *text, size_t len, yan_arena *a, yan_json **out) {
    *out = NULL;
    if (!text && len) return yan_fail(YAN_ERR_INVALID_ARG, "json: NULL text");
    jp P = {0};
    P.start = P.p = (const uint8_t *)(text ? text : "");
    P.end = P.start + len;
    P.a = a;
    if (len >= 3 && P.p[0] == 0xEF && P.p[1] == 0xBB && P.p[2] == 0xBF) P.p += 3;
    yan_json *root = yan_arena_alloc(a, sizeof *root);
    if (!root) { yan_free(P.stk); return yan_fail(YAN_ERR_NOMEM, "out of memory while parsing JSON"); }
    if (parse_value(&P, root) == YAN_OK) {
        skip_ws(&P);
        if (P.p != P.end) jp_error(&P, P.p, "unexpected data after the JSON value");
    }
    yan_free(P.stk);
    if (P.st != YAN_OK) return P.st;
    *out = root;
    return YAN_OK;
}

/* -------------------------------------------------------------- accessors */

const yan_json *yan_json_get_n(const yan_json *obj, const char *key, size_t key_len) {
    if (!obj || obj->type != YAN_JSON_OBJECT) return NULL;
    for (size_t i = 0; i < obj->n; i++) {
        const yan_json_member *m = &obj->u.members[i];
        if (m->key_len == key_len && memcmp(m->key, key, key_len) == 0) return &m->value;
    }
    return NULL;
}

const yan_json *yan_json_get(const yan_json *obj, const char *key) {
    return yan_json_get_n(obj, key, strlen(key));
}

size_t yan_json_len(const yan_json *v) {
    if (!v) return 0;
    if (v->type == YAN_JSON_ARRAY || v->type == YAN_JSON_OBJECT || v->type == YAN_JSON_STRING) return v->n;
    return 0;
}

const yan_json *yan_json_at(const yan_json *v, size_t i) {
    if (!v || i >= v->n) return NULL;
    if (v->type == YAN_JSON_ARRAY) return &v->u.items[i];
    if (v->type == YAN_JSON_OBJECT) return &v->u.members[i].value;
    return NULL;
}

const char *yan_json_key(const yan_json *obj, size_t i, size_t *len) {
    if (!obj || obj->type != YAN_JSON_OBJECT || i >= obj->n) return NULL;
    if (len) *len = obj->u.members[i].key_len;
    return obj->u.members[i].key;
}

const char *yan_json_str(const yan_json *v, size_t *len) {
    if (!v || v->type != YAN_JSON_STRING) return NULL;
    if (len) *len = v->n;
    return v->u.str;
}

bool yan_json_num(const yan_json *v, double *out) {
    if (!v || v->type != YAN_JSON_NUMBER) return false;
    *out = v->u.num;
    return true;
}

bool yan_json_int(const yan_json *v, int64_t *out) {
    if (!v || v->type != YAN_JSON_NUMBER || !v->is_int) return false;
    *out = v->i;
    return true;
}

bool yan_json_bool(const yan_json *v, bool *out) {
    if (!v || v->type != YAN_JSON_BOOL) return false;
    *out = v->b != 0;
    return true;
}

bool yan_json_str_eq(const yan_json *v, const char *lit_) {
    size_t n = strlen(lit_);
    return v && v->type == YAN_JSON_STRING && v->n == n && memcmp(v->u.str, lit_, n) == 0;
}

/* ----------------------------------------------------------------- writer */

bool yan_json_write_string(yan_buf *b, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    const uint8_t *p = (const uint8_t *)s, *e = p + len;
    /* common case: nothing to escape */
    size_t need;
    if (yan_add_ovf(len, 2, &need) || !yan_buf_reserve(b, need)) { b->oom = true; return false; }
    if (!yan_buf_putc(b, '"')) return false;
    while (p < e) {
        const uint8_t *run = p;
        while (p < e && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') p++;
        if (p > run && !yan_buf_append(b, run, (size_t)(p - run))) return false;
        if (p >= e) break;
        uint8_t c = *p;
        char tmp[8];
        size_t tn = 0;
        if (c >= 0x80) {
            int k = utf8_seq(p, e);
            if (k) {
                if (!yan_buf_append(b, p, (size_t)k)) return false;
                p += k;
                continue;
            }
            memcpy(tmp, "\xEF\xBF\xBD", 3); /* U+FFFD */
            tn = 3;
        } else if (c == '"' || c == '\\') {
            tmp[0] = '\\'; tmp[1] = (char)c; tn = 2;
        } else if (c == '\n') { memcpy(tmp, "\\n", 2); tn = 2; }
        else if (c == '\r') { memcpy(tmp, "\\r", 2); tn = 2; }
        else if (c == '\t') { memcpy(tmp, "\\t", 2); tn = 2; }
        else if (c == '\b') { memcpy(tmp, "\\b", 2); tn = 2; }
        else if (c == '\f') { memcpy(tmp, "\\f", 2); tn = 2; }
        else {
            memcpy(tmp, "\\u00", 4);
            tmp[4] = hex[c >> 4];
            tmp[5] = hex[c & 15];
            tn = 6;
        }
        if (!yan_buf_append(b, tmp, tn)) return false;
        p++;
    }
    return yan_buf_putc(b, '"');
}
