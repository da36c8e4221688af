/* jsongram.c — the JSON grammar state machine behind response_format
 * json_object (contract in jsongram.h). One state per position of the
 * grammar; a stack of the open containers; numbers and literals are read
 * byte by byte; strings check escapes and UTF-8 (the shortest-form and
 * surrogate rules of RFC 3629, as the decoder tables of every browser do). */
#include "serve/jsongram.h"

#include <math.h>

enum {
    S_TOP,        /* nothing yet: only '{' */
    S_VALUE,      /* a value is expected (after ':' or ',' in an array) */
    S_ARR_FIRST,  /* after '[': a value or ']' */
    S_OBJ_FIRST,  /* after '{': a key or '}' */
    S_OBJ_KEY,    /* after ',' in an object: a key */
    S_COLON,      /* after a key: ':' */
    S_AFTER,      /* after a value inside a container: ',' or its closer */
    S_STR,        /* inside a string */
    S_STR_ESC,    /* after a backslash */
    S_STR_HEX,    /* inside \uXXXX: sub digits left, hexv so far */
    S_STR_LOW_BS, /* after a high surrogate escape: '\\' of its low half */
    S_STR_LOW_U,  /* then 'u' */
    S_STR_UTF8,   /* inside a multi-byte character: sub bytes left in [lo, hi] */
    S_N_MINUS,    /* "-": a digit must follow */
    S_N_ZERO,     /* "0" (or "-0"): '.', 'e' or the end */
    S_N_INT,      /* integer digits */
    S_N_DOT,      /* "1.": a digit must follow */
    S_N_FRAC,     /* fraction digits */
    S_N_EXP,      /* "1e": sign or digit */
    S_N_EXP_SIGN, /* "1e+": a digit must follow */
    S_N_EXP_DIG,  /* exponent digits */
    S_LIT,        /* inside true / false / null: sub letters matched */
    S_DONE,       /* the top-level object has closed */
};

static const char *const LIT[3] = {"true", "false", "null"};
static const uint8_t LIT_LEN[3] = {4, 5, 4};

void yan_jg_init(yan_jg *g) {
    memset(g, 0, sizeof *g);
    g->st = S_TOP;
}

bool yan_jg_done(const yan_jg *g) { return g->st == S_DONE; }

static inline bool is_ws(uint8_t c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }
static inline bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
static inline bool is_hex(uint8_t c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

static void end_value(yan_jg *g) { g->st = g->depth == 0 ? S_DONE : S_AFTER; }

static bool push(yan_jg *g, char open) {
    if (g->depth >= YAN_JG_MAX_DEPTH) return false;
    g->stack[g->depth++] = open;
    g->st = open == '{' ? S_OBJ_FIRST : S_ARR_FIRST;
    return true;
}

/* c starts a value (any kind). */
static bool start_value(yan_jg *g, uint8_t c) {
    switch (c) {
    case '{': return push(g, '{');
    case '[': return push(g, '[');
    case '"': g->st = S_STR; g->key = false; return true;
    case '-': g->st = S_N_MINUS; return true;
    case '0': g->st = S_N_ZERO; return true;
    case 't': case 'f': case 'n':
        g->st = S_LIT;
        g->lit = c == 't' ? 0 : c == 'f' ? 1 : 2;
        g->sub = 1;
        return true;
    default:
        if (c >= '1' && c <= '9') { g->st = S_N_INT; return true; }
        return false;
    }
}

/* c closes the innermost container. */
static bool close_container(yan_jg *g, uint8_t c) {
    if (g->depth == 0) return false;
    char open = g->stack[g->depth - 1];
    if ((open == '{' && c != '}') || (open == '[' && c != ']')) return false;
    g->depth--;
    end_value(g);
    return true;
}

/* Whitespace where the grammar allows it, up to YAN_JG_MAX_WS in a row. */
static bool blank(yan_jg *g) {
    if (g->ws >= YAN_JG_MAX_WS) return false;
    g->ws++;
    return true;
}

/* The first byte of a UTF-8 character inside a string. */
static bool utf8_lead(yan_jg *g, uint8_t c) {
    if (c < 0x80) return true;
    uint8_t n, lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 1;
    else if (c == 0xE0) n = 2, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) n = 2;
    else if (c == 0xED) n = 2, hi = 0x9F; /* no UTF-16 surrogates */
    else if (c == 0xF0) n = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) n = 3;
    else if (c == 0xF4) n = 3, hi = 0x8F; /* <= U+10FFFF */
    else return false;
    g->st = S_STR_UTF8;
    g->sub = n;
    g->lo = lo;
    g->hi = hi;
    return true;
}

bool yan_jg_byte(yan_jg *g, uint8_t c) {
    switch (g->st) {
    case S_TOP:
        if (c != '{') return false;
        return push(g, '{');
    case S_VALUE:
    case S_ARR_FIRST:
        if (is_ws(c)) return blank(g);
        g->ws = 0;
        if (g->st == S_ARR_FIRST && c == ']') return close_container(g, c);
        return start_value(g, c);
    case S_OBJ_FIRST:
    case S_OBJ_KEY:
        if (is_ws(c)) return blank(g);
        g->ws = 0;
        if (c == '"') { g->st = S_STR; g->key = true; return true; }
        if (g->st == S_OBJ_FIRST && c == '}') return close_container(g, c);
        return false;
    case S_COLON:
        if (is_ws(c)) return blank(g);
        g->ws = 0;
        if (c != ':') return false;
        g->st = S_VALUE;
        return true;
    case S_AFTER:
        if (is_ws(c)) return blank(g);
        g->ws = 0;
        if (c == ',') {
            g->st = g->stack[g->depth - 1] == '{' ? S_OBJ_KEY : S_VALUE;
            return true;
        }
        return close_container(g, c);
    case S_STR:
        if (c == '"') {
            if (g->key) { g->key = false; g->st = S_COLON; }
            else end_value(g);
            return true;
        }
        if (c == '\\') { g->st = S_STR_ESC; return true; }
        if (c < 0x20) return false;
        return utf8_lead(g, c);
    case S_STR_ESC:
        if (c == 'u') { g->st = S_STR_HEX; g->sub = 4; g->hexv = 0; g->low = false; return true; }
        if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') {
            g->st = S_STR;
            return true;
        }
        return false;
    case S_STR_HEX: {
        if (!is_hex(c)) return false;
        unsigned d = c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 32) - 'a' + 10);
        g->hexv = (uint16_t)(g->hexv << 4 | d);
        g->sub--;
        /* the code units this escape can still become: [lo, hi] */
        unsigned lo = (unsigned)g->hexv << (4 * g->sub), hi = lo | ((1u << (4 * g->sub)) - 1);
        if (g->low ? (hi < 0xDC00 || lo > 0xDFFF) : (lo >= 0xDC00 && hi <= 0xDFFF)) return false;
        if (g->sub == 0) {
            if (!g->low && g->hexv >= 0xD800 && g->hexv <= 0xDBFF) g->st = S_STR_LOW_BS;
            else g->st = S_STR;
            g->low = false;
        }
        return true;
    }
    case S_STR_LOW_BS:
        if (c != '\\') return false;
        g->st = S_STR_LOW_U;
        return true;
    case S_STR_LOW_U:
        if (c != 'u') return false;
        g->st = S_STR_HEX;
        g->sub = 4;
        g->hexv = 0;
        g->low = true;
        return true;
    case S_STR_UTF8:
        if (c < g->lo || c > g->hi) return false;
        g->lo = 0x80;
        g->hi = 0xBF;
        if (--g->sub == 0) g->st = S_STR;
        return true;
    case S_N_MINUS:
        if (c == '0') { g->st = S_N_ZERO; return true; }
        if (c >= '1' && c <= '9') { g->st = S_N_INT; return true; }
        return false;
    case S_N_ZERO:
    case S_N_INT:
        if (g->st == S_N_INT && is_digit(c)) return true;
        if (c == '.') { g->st = S_N_DOT; return true; }
        if (c == 'e' || c == 'E') { g->st = S_N_EXP; return true; }
        end_value(g);
        return g->st != S_DONE && yan_jg_byte(g, c);
    case S_N_DOT:
        if (!is_digit(c)) return false;
        g->st = S_N_FRAC;
        return true;
    case S_N_FRAC:
        if (is_digit(c)) return true;
        if (c == 'e' || c == 'E') { g->st = S_N_EXP; return true; }
        end_value(g);
        return g->st != S_DONE && yan_jg_byte(g, c);
    case S_N_EXP:
        if (c == '+' || c == '-') { g->st = S_N_EXP_SIGN; return true; }
        if (is_digit(c)) { g->st = S_N_EXP_DIG; return true; }
        return false;
    case S_N_EXP_SIGN:
        if (!is_digit(c)) return false;
        g->st = S_N_EXP_DIG;
        return true;
    case S_N_EXP_DIG:
        if (is_digit(c)) return true;
        end_value(g);
        return g->st != S_DONE && yan_jg_byte(g, c);
    case S_LIT:
        if (c != (uint8_t)LIT[g->lit][g->sub]) return false;
        if (++g->sub == LIT_LEN[g->lit]) end_value(g);
        return true;
    case S_DONE:
    default:
        return false;
    }
}

bool yan_jg_feed(yan_jg *g, const void *p, size_t n) {
    const uint8_t *s = p;
    for (size_t i = 0; i < n; i++)
        if (!yan_jg_byte(g, s[i])) return false;
    return true;
}

int yan_jg_need(const yan_jg *g) {
    const int d = g->depth;
    const int key_tail = g->key ? 2 : 0; /* a key still needs ':' and a value */
    switch (g->st) {
    case S_TOP: return 2;
    case S_DONE: return 0;
    case S_VALUE: return 1 + d;
    case S_ARR_FIRST: case S_OBJ_FIRST: case S_AFTER: return d;
    case S_OBJ_KEY: return 4 + d;
    case S_COLON: return 2 + d;
    case S_STR: return 1 + key_tail + d;
    case S_STR_ESC: return 2 + key_tail + d;
    case S_STR_HEX: {
        /* a high surrogate already decided needs its low half (6 bytes) */
        unsigned lo = (unsigned)g->hexv << (4 * g->sub), hi = lo | ((1u << (4 * g->sub)) - 1);
        int pair = !g->low && lo >= 0xD800 && hi <= 0xDBFF ? 6 : 0;
        return g->sub + pair + 1 + key_tail + d;
    }
    case S_STR_LOW_BS: return 6 + 1 + key_tail + d;
    case S_STR_LOW_U: return 5 + 1 + key_tail + d;
    case S_STR_UTF8: return g->sub + 1 + key_tail + d;
    case S_N_MINUS: case S_N_DOT: case S_N_EXP: case S_N_EXP_SIGN: return 1 + d;
    case S_N_ZERO: case S_N_INT: case S_N_FRAC: case S_N_EXP_DIG: return d;
    case S_LIT: return LIT_LEN[g->lit] - g->sub + d;
    }
    return d;
}

/* ------------------------------------------------------------- the mask */

yan_status yan_jg_vocab_init(yan_jg_vocab *v, const yan_tokenizer *tok, const yan_token *eog, int n_eog) {
    memset(v, 0, sizeof *v);
    int32_t V = yan_tokenizer_n_vocab(tok);
    if (V <= 0) return yan_fail(YAN_ERR_INVALID_ARG, "json grammar: empty vocabulary");
    v->n_vocab = V;
    v->off = yan_malloc(((size_t)V + 1) * sizeof *v->off);
    v->flags = yan_calloc((size_t)V, 1);
    yan_buf b = {0};
    if (!v->off || !v->flags) goto oom;
    char piece[256];
    for (int32_t t = 0; t < V; t++) {
        v->off[t] = (uint32_t)b.len;
        int64_t n = yan_token_to_piece(tok, t, piece, sizeof piece);
        if (n < 0) n = 0; /* longer than any JSON token needs: never allowed */
        if (n == 0) v->flags[t] |= 1;
        if (n > 0 && !yan_buf_append(&b, piece, (size_t)n)) goto oom;
    }
    v->off[V] = (uint32_t)b.len;
    for (int i = 0; i < n_eog; i++)
        if (eog[i] >= 0 && eog[i] < V) v->flags[eog[i]] |= 1;
    if (!yan_buf_reserve(&b, 1)) goto oom;
    v->bytes = (uint8_t *)b.data;
    return YAN_OK;
oom:
    yan_buf_free(&b);
    yan_jg_vocab_free(v);
    return yan_fail(YAN_ERR_NOMEM, "json grammar: out of memory for the token table");
}

void yan_jg_vocab_free(yan_jg_vocab *v) {
    if (!v) return;
    yan_free(v->off);
    yan_free(v->bytes);
    yan_free(v->flags);
    memset(v, 0, sizeof *v);
}

int32_t yan_jg_mask(const yan_jg *g, const yan_jg_vocab *v, float *logits, int32_t tokens_left) {
    /* after this token, tokens_left - 1 tokens (one closing byte each at
     * worst) must be able to finish the document */
    const int budget = tokens_left - 1;
    bool ok1[256];
    int need1[256];
    for (int c = 0; c < 256; c++) {
        yan_jg t = *g;
        ok1[c] = yan_jg_byte(&t, (uint8_t)c);
        need1[c] = ok1[c] ? yan_jg_need(&t) : 0;
    }
    int32_t allowed = 0;
    for (int32_t id = 0; id < v->n_vocab; id++) {
        const uint8_t *p = v->bytes + v->off[id];
        const size_t n = v->off[id + 1] - v->off[id];
        bool ok = !(v->flags[id] & 1) && ok1[p[0]] && logits[id] != -INFINITY;
        if (ok) {
            if (n == 1) {
                ok = need1[p[0]] <= budget;
            } else {
                yan_jg t = *g;
                ok = yan_jg_feed(&t, p, n) && yan_jg_need(&t) <= budget;
            }
        }
        if (ok) allowed++;
        else logits[id] = -INFINITY;
    }
    return allowed;
}
