/* pretok.c — hand-written pre-tokenizers equal to the reference regexes
 * (see /work/shared/FORMATS.md; \s is White_Space, \p{..} general categories):
 *
 *  GPT2   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *  CL100K (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
 *         | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *  QWEN2  CL100K with \p{N} instead of \p{N}{1,3}
 *  O200K  P?U*W+C?|P?U+W*C?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *         with P = [^\r\n\p{L}\p{N}], U = [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}],
 *         W = [\p{Ll}\p{Lm}\p{Lo}\p{M}], C = (?i:'s|'t|'re|'ve|'m|'ll|'d)
 *
 * Each scanner decides, from the character classes at pos, which alternative
 * a backtracking engine would accept first and where its match ends. The
 * derivations that are not obvious:
 *  - \s+(?!\S) on a maximal space run [pos, e): if e is the end of text it
 *    takes the whole run; otherwise s[e] is \S, so it backs off one character
 *    and succeeds when the run has at least two; a single space is \s+.
 *  - \s*[\r\n]+ on a space run ends just after the run's last \r or \n
 *    (it fails when there is none).
 *  - (?i:...) also matches U+017F LATIN SMALL LETTER LONG S for 's' (its
 *    simple case folding is 's'; no other character folds to t r e v m l d).
 *  - o200k P?U*W+: U* grabs the maximal run of U characters; W+ then needs a
 *    W character. If the character after the run is Ll (W but not U), W+ takes
 *    the W run from there. Otherwise U* backs off to the last character that
 *    is in both U and W (Lm Lo M), which W+ takes alone; with none the
 *    alternative fails. The optional prefix is tried first, then (when the
 *    character at pos is a mark, which is in P and in U/W) without it.
 *
 * Invalid UTF-8 bytes are single characters of the "other" class. The
 * canonical cl100k form is implemented; tiktoken's newer possessive form
 * differs only at the very end of the text (\s++$ takes a trailing space run
 * that contains a newline whole, where \s*[\r\n]+ stops after the newline).
 * Depends on unicode.h. Thread-safe, no allocation. */
#include "tokenizer/pretok.h"

#include "tokenizer/unicode.h"

/* ------------------------------------------------------------ classes */

/* The unicode.h class ids plus one for "end of text". */
enum { C_EOT = YAN_UC_NCLASS };

#define BIT(c) (1u << (c))
#define M_L (BIT(YAN_UC_C_LU) | BIT(YAN_UC_C_LL) | BIT(YAN_UC_C_LT) | BIT(YAN_UC_C_LM) | BIT(YAN_UC_C_LO))
#define M_N BIT(YAN_UC_C_N)
#define M_WS BIT(YAN_UC_C_WS)
#define M_OTHER (BIT(YAN_UC_C_OTHER) | BIT(YAN_UC_C_M)) /* [^\s\p{L}\p{N}] */
#define M_U (BIT(YAN_UC_C_LU) | BIT(YAN_UC_C_LT) | BIT(YAN_UC_C_LM) | BIT(YAN_UC_C_LO) | BIT(YAN_UC_C_M))
#define M_W (BIT(YAN_UC_C_LL) | BIT(YAN_UC_C_LM) | BIT(YAN_UC_C_LO) | BIT(YAN_UC_C_M))
#define M_B (M_U & M_W)
#define IN(mask, c) (((mask) >> (c)) & 1u)

/* Class of the character at i (C_EOT at the end); *len = its byte length. */
static inline unsigned cls_at(const uint8_t *s, size_t n, size_t i, size_t *len) {
    if (i >= n) { *len = 0; return C_EOT; }
    uint8_t c = s[i];
    if (c < 0x80) { *len = 1; return yan_uc_cls_stage2[c]; }
    int32_t cp;
    *len = (size_t)yan_uc_decode(s + i, n - i, &cp);
    return yan_uc_class(cp);
}

/* End of the run of characters in mask starting at i. */
static inline size_t run(const uint8_t *s, size_t n, size_t i, unsigned mask) {
    for (;;) {
        while (i < n && s[i] < 0x80 && IN(mask, yan_uc_cls_stage2[s[i]])) i++;
        if (i >= n || s[i] < 0x80) return i;
        size_t len;
        if (!IN(mask, cls_at(s, n, i, &len))) return i;
        i += len;
    }
}

/* The common case of every scanner: an ASCII letter, or a space and an ASCII
 * letter, starts a piece that is a run of letters (for o200k the caller
 * checks first that no apostrophe or mark can follow). Returns 0 otherwise. */
#define ASCII_ALPHA(c) ((unsigned)(((c) | 0x20) - 'a') < 26u)
static inline size_t ascii_word(const uint8_t *s, size_t n, size_t pos) {
    size_t i = pos + (s[pos] == ' ');
    if (i >= n || !ASCII_ALPHA(s[i])) return 0;
    i++;
    while (i < n && ASCII_ALPHA(s[i])) i++;
    if (i < n && s[i] >= 0x80) return run(s, n, i, M_L);
    return i;
}

/* Length of 's 't 're 've 'm 'll 'd at i (case-insensitively when ci), or 0. */
static inline size_t contraction(const uint8_t *s, size_t n, size_t i, int ci) {
    if (i + 1 >= n || s[i] != '\'') return 0;
    unsigned a = s[i + 1];
    if (ci) {
        if (a == 0xC5 && i + 2 < n && s[i + 2] == 0xBF) return 3; /* 'ſ (U+017F) */
        if (a >= 'A' && a <= 'Z') a += 32;
    }
    unsigned b = i + 2 < n ? s[i + 2] : 0;
    if (ci && b >= 'A' && b <= 'Z') b += 32;
    switch (a) {
    case 's': case 't': case 'm': case 'd': return 2;
    case 'r': case 'v': return b == 'e' ? 3 : 0;
    case 'l': return b == 'l' ? 3 : 0;
    default: return 0;
    }
}

/* \s+(?!\S) | \s+ at pos (a space character): see the header comment. */
static inline size_t ws_lookahead(const uint8_t *s, size_t n, size_t pos) {
    size_t i = pos, last = pos;
    for (;;) {
        size_t len;
        if (cls_at(s, n, i, &len) != YAN_UC_C_WS) break;
        last = i;
        i += len;
    }
    if (i == n || last == pos) return i;
    return last;
}

/* \s*[\r\n]+ | \s+(?!\S) | \s+ at pos (a space character). */
static inline size_t ws_newline(const uint8_t *s, size_t n, size_t pos) {
    size_t i = pos, last = pos, nl = 0;
    for (;;) {
        uint8_t c = i < n ? s[i] : 0;
        if (c == '\n' || c == '\r') { last = i++; nl = i; continue; }
        size_t len;
        if (cls_at(s, n, i, &len) != YAN_UC_C_WS) break;
        last = i;
        i += len;
    }
    if (nl) return nl;
    if (i == n || last == pos) return i;
    return last;
}

/* ---------------------------------------------------------------- GPT-2 */

static size_t next_gpt2(const uint8_t *s, size_t n, size_t pos) {
    uint8_t c = s[pos];
    size_t len, i = pos;
    if ((len = ascii_word(s, n, pos))) return len;
    if (c == '\'') {
        size_t k = contraction(s, n, pos, 0);
        if (k) return pos + k;
    }
    unsigned k = cls_at(s, n, pos, &len);
    if (c == ' ') {
        size_t len2;
        unsigned k2 = cls_at(s, n, pos + 1, &len2);
        if (k2 != YAN_UC_C_WS && k2 != C_EOT) { i = pos + 1; k = k2; len = len2; }
    }
    if (IN(M_L, k)) return run(s, n, i + len, M_L);
    if (k == YAN_UC_C_N) return run(s, n, i + len, M_N);
    if (IN(M_OTHER, k)) return run(s, n, i + len, M_OTHER);
    return ws_lookahead(s, n, pos);
}

/* ------------------------------------------------------ cl100k / qwen2 */

static size_t next_cl100k(const uint8_t *s, size_t n, size_t pos, int max_digits) {
    uint8_t c = s[pos];
    size_t len;
    if ((len = ascii_word(s, n, pos))) return len;
    if (c == '\'') {
        size_t k = contraction(s, n, pos, 1);
        if (k) return pos + k;
    }
    unsigned k = cls_at(s, n, pos, &len);
    if (IN(M_L, k)) return run(s, n, pos + len, M_L);
    if (k == YAN_UC_C_N) {
        size_t i = pos + len;
        for (int d = 1; d < max_digits; d++) {
            if (cls_at(s, n, i, &len) != YAN_UC_C_N) break;
            i += len;
        }
        return i;
    }
    /* [^\r\n\p{L}\p{N}]?\p{L}+ with the prefix */
    size_t len2;
    unsigned k2 = cls_at(s, n, pos + len, &len2);
    if (c != '\r' && c != '\n' && IN(M_L, k2)) return run(s, n, pos + len + len2, M_L);
    /* ' ?[^\s\p{L}\p{N}]+[\r\n]*' */
    size_t i = 0;
    if (IN(M_OTHER, k)) i = run(s, n, pos + len, M_OTHER);
    else if (c == ' ' && IN(M_OTHER, k2)) i = run(s, n, pos + 1 + len2, M_OTHER);
    if (i) {
        while (i < n && (s[i] == '\r' || s[i] == '\n')) i++;
        return i;
    }
    return ws_newline(s, n, pos);
}

/* ---------------------------------------------------------------- o200k */

/* U*W+C? at p, or 0 when it does not match. */
static inline size_t o200k_lower(const uint8_t *s, size_t n, size_t p) {
    size_t i = p, last_b_end = 0, len;
    unsigned k;
    for (;;) {
        k = cls_at(s, n, i, &len);
        if (!IN(M_U, k)) break;
        i += len;
        if (IN(M_B, k)) last_b_end = i;
    }
    size_t e;
    if (k == YAN_UC_C_LL) e = run(s, n, i + len, M_W);
    else if (last_b_end) e = last_b_end;
    else return 0;
    return e + contraction(s, n, e, 1);
}

/* U+W*C? at p, or 0 when it does not match. */
static inline size_t o200k_upper(const uint8_t *s, size_t n, size_t p) {
    size_t len;
    if (!IN(M_U, cls_at(s, n, p, &len))) return 0;
    size_t e = run(s, n, run(s, n, p + len, M_U), M_W);
    return e + contraction(s, n, e, 1);
}

/* ASCII fast path: " "? [A-Z]* [a-z]* with at least one letter, ending at an
 * ASCII byte other than an apostrophe (which could start a contraction);
 * 0 when it does not apply. [A-Z]+[a-z]* is U*W+ or U+W*, and ASCII upper
 * case letters are not in W, so a lower-case run ends the piece. */
static inline size_t o200k_ascii(const uint8_t *s, size_t n, size_t pos) {
    size_t i = pos + (s[pos] == ' '), j = i, k;
    while (j < n && (unsigned)(s[j] - 'A') < 26u) j++;
    for (k = j; k < n && (unsigned)(s[k] - 'a') < 26u;) k++;
    if (k == i || (k < n && (s[k] >= 0x80 || s[k] == '\''))) return 0;
    return k;
}

static size_t next_o200k(const uint8_t *s, size_t n, size_t pos) {
    uint8_t c = s[pos];
    size_t len, e;
    if ((e = o200k_ascii(s, n, pos))) return e;
    unsigned k = cls_at(s, n, pos, &len);
    int prefix = !IN(M_L | M_N, k) && c != '\r' && c != '\n';
    int letter = IN(M_U | M_W, k);
    if (prefix && (e = o200k_lower(s, n, pos + len))) return e;
    if (letter && (e = o200k_lower(s, n, pos))) return e;
    if (prefix && (e = o200k_upper(s, n, pos + len))) return e;
    if (letter && (e = o200k_upper(s, n, pos))) return e;
    if (k == YAN_UC_C_N) {
        size_t i = pos + len;
        for (int d = 1; d < 3; d++) {
            if (cls_at(s, n, i, &len) != YAN_UC_C_N) break;
            i += len;
        }
        return i;
    }
    /* ' ?[^\s\p{L}\p{N}]+[\r\n/]*' */
    size_t i = 0, len2;
    if (IN(M_OTHER, k)) i = run(s, n, pos + len, M_OTHER);
    else if (c == ' ' && IN(M_OTHER, cls_at(s, n, pos + 1, &len2))) i = run(s, n, pos + 1 + len2, M_OTHER);
    if (i) {
        while (i < n && (s[i] == '\r' || s[i] == '\n' || s[i] == '/')) i++;
        return i;
    }
    return ws_newline(s, n, pos);
}

/* ------------------------------------------------------------- dispatch */

size_t yan_pretok_next(int id, const uint8_t *s, size_t n, size_t pos) {
    YAN_ASSERT(pos < n);
    switch (id) {
    case YAN_PRE_GPT2: return next_gpt2(s, n, pos);
    case YAN_PRE_CL100K: return next_cl100k(s, n, pos, 3);
    case YAN_PRE_QWEN2: return next_cl100k(s, n, pos, 1);
    case YAN_PRE_O200K: return next_o200k(s, n, pos);
    default: YAN_ASSERT(!"invalid pre-tokenizer id"); return n;
    }
}

/* ----------------------------------------------------------- safe split */

/* Why a cut at p is safe (same pieces as the whole) when s[p-1] is not a
 * space and s[p] is ' ', or s[p-1] is a letter/number and s[p] any space:
 *  - No alternative continues a piece that contains a non-space character
 *    with ' ': letter, number and symbol runs, U/W runs, contractions and the
 *    [\r\n]* / [\r\n/]* tails all exclude it (the " ?" and P? prefixes are at
 *    a piece's start only). Pieces containing a letter or number likewise end
 *    at any space character. So the piece holding s[p-1] ends at p.
 *  - Every test such a piece (or an earlier one) makes on s[p] is a class
 *    membership that a space fails exactly as the end of text does (a space
 *    run before p ends at the non-space s[p-1]). So s[pos..p) splits alike.
 *  - Matching at p reads only s[p..], so the right half splits alike.
 * Decoding starts at the first byte at or after pos that is not a
 * continuation byte (10xxxxxx): a decoder only ever steps over continuation
 * bytes (a valid sequence is a lead plus continuations, an invalid byte is
 * one byte), so every decoding of the text starts a character there, and
 * from there on the characters are those of the whole text even when pos
 * was in the middle of one. */
size_t yan_pretok_safe_split(int id, const uint8_t *s, size_t n, size_t pos) {
    (void)id; /* the rule above holds for all four */
    if (pos >= n) return n;
    size_t limit = n - pos > 65536 ? pos + 65536 : n;
    size_t i = pos;
    while (i < limit && (s[i] & 0xC0) == 0x80) i++;
    unsigned prev = C_EOT;
    while (i < limit) {
        size_t len;
        unsigned k = cls_at(s, n, i, &len);
        if (prev != C_EOT && i > pos) {
            if (s[i] == ' ' && prev != YAN_UC_C_WS) return i;
            if (k == YAN_UC_C_WS && IN(M_L | M_N, prev)) return i;
        }
        prev = k;
        i += len;
    }
    return n;
}

/* ---------------------------------------------------------------- names */

static const char *const k_names[YAN_PRE_COUNT] = { "gpt2", "cl100k", "o200k", "qwen2" };

static const struct { const char *alias; int id; } k_aliases[] = {
    {"gpt2", YAN_PRE_GPT2}, {"gpt-2", YAN_PRE_GPT2}, {"r50k", YAN_PRE_GPT2},
    {"r50k_base", YAN_PRE_GPT2}, {"p50k", YAN_PRE_GPT2}, {"p50k_base", YAN_PRE_GPT2},
    {"cl100k", YAN_PRE_CL100K}, {"cl100k_base", YAN_PRE_CL100K}, {"llama-bpe", YAN_PRE_CL100K},
    {"llama3", YAN_PRE_CL100K}, {"llama-v3", YAN_PRE_CL100K},
    {"o200k", YAN_PRE_O200K}, {"o200k_base", YAN_PRE_O200K}, {"gpt-4o", YAN_PRE_O200K},
    {"qwen2", YAN_PRE_QWEN2}, {"qwen", YAN_PRE_QWEN2}, {"qwen3", YAN_PRE_QWEN2},
};

int yan_pre_from_name(const char *name) {
    if (!name) return -1;
    for (size_t i = 0; i < sizeof k_aliases / sizeof k_aliases[0]; i++)
        if (strcmp(name, k_aliases[i].alias) == 0) return k_aliases[i].id;
    return -1;
}

const char *yan_pre_name(int id) { return id >= 0 && id < YAN_PRE_COUNT ? k_names[id] : NULL; }

const char *yan_pre_names(void) { return "gpt2, cl100k, o200k, qwen2"; }

/* ---------------------------------------------------------------- regex */

#define CONTR_CI "(?i:'s|'t|'re|'ve|'m|'ll|'d)"
#define CONTR_LLAMACPP "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define CL_TAIL " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define O200K_U "[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]"
#define O200K_W "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]"

static const struct { const char *re; int id; } k_regexes[] = {
    /* GPT-2 (tiktoken r50k/p50k, HF ByteLevel use_regex=true, llama.cpp gpt2) */
    {"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", YAN_PRE_GPT2},
    /* tiktoken's possessive r50k form: equivalent (\s++$ only takes a trailing run
     * that \s+(?!\S) takes as well) */
    {"'(?:[sdmt]|ll|ve|re)| ?\\p{L}++| ?\\p{N}++| ?[^\\s\\p{L}\\p{N}]++|\\s++$|\\s+(?!\\S)|\\s", YAN_PRE_GPT2},
    /* cl100k (tiktoken, HF Llama 3) */
    {CONTR_CI "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|" CL_TAIL, YAN_PRE_CL100K},
    /* tiktoken's possessive cl100k form (differs only at the end of text) */
    {"'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}++|\\p{N}{1,3}+| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*+"
     "|\\s++$|\\s*[\\r\\n]|\\s+(?!\\S)|\\s", YAN_PRE_CL100K},
    /* llama.cpp's case-expanded Llama 3 form */
    {CONTR_LLAMACPP "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|" CL_TAIL, YAN_PRE_CL100K},
    /* o200k (tiktoken, HF) */
    {"[^\\r\\n\\p{L}\\p{N}]?" O200K_U "*" O200K_W "+" CONTR_CI "?"
     "|[^\\r\\n\\p{L}\\p{N}]?" O200K_U "+" O200K_W "*" CONTR_CI "?"
     "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", YAN_PRE_O200K},
    /* Qwen2/Qwen3 tokenizer.json, and llama.cpp's case-expanded form */
    {CONTR_CI "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|" CL_TAIL, YAN_PRE_QWEN2},
    {CONTR_LLAMACPP "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|" CL_TAIL, YAN_PRE_QWEN2},
};

int yan_pre_from_regex(const char *pattern, size_t len) {
    if (!pattern) return -1;
    for (size_t i = 0; i < sizeof k_regexes / sizeof k_regexes[0]; i++) {
        const char *re = k_regexes[i].re;
        if (strlen(re) == len && memcmp(re, pattern, len) == 0) return k_regexes[i].id;
    }
    return -1;
}
