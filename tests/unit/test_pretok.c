/* test_pretok.c — the hand-written pre-tokenizers against PCRE2 running the
 * reference regexes (the oracle), on real text (King James Bible via
 * `bible`, Chinese poems from fortunes-zh; skipped with a message when
 * absent) and on ~240k random strings weighted toward the tricky classes;
 * safe-split, invalid bytes, names and regex recognition.
 *
 * Oracle adjustments:
 *  - PCRE2's \s (with UCP) is Z + \t\n\v\f\r and misses U+0085, while the
 *    Rust regex crate's \s is White_Space; every \s / \S in the reference
 *    patterns is rewritten to an explicit White_Space class.
 *  - PCRE2 10.42 has Unicode 14 tables and yan has the Debian UCD (15.0):
 *    random code points are drawn only from those both classify alike
 *    (checked per code point through PCRE2 itself).
 *  - Only valid UTF-8 goes to PCRE2; invalid bytes are tested for coverage. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer/pretok.h"
#include "tokenizer/unicode.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- oracle */

static const char *const k_ref[YAN_PRE_COUNT] = {
    [YAN_PRE_GPT2] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
    [YAN_PRE_CL100K] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
                       "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    [YAN_PRE_O200K] = "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
                      "(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
                      "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
                      "(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
                      "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    [YAN_PRE_QWEN2] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
                      "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};

#define WS_SET "\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

/* Rewrite \s and \S to White_Space classes; returns a malloc'ed pattern. */
static char *rewrite_ws(const char *re) {
    size_t cap = strlen(re) * 8 + 64, o = 0;
    char *out = malloc(cap);
    int in_class = 0;
    for (const char *p = re; *p; p++) {
        if (p[0] == '\\' && (p[1] == 's' || p[1] == 'S')) {
            const char *rep = in_class ? WS_SET : p[1] == 's' ? "[" WS_SET "]" : "[^" WS_SET "]";
            memcpy(out + o, rep, strlen(rep));
            o += strlen(rep);
            p++;
            continue;
        }
        if (p[0] == '\\' && p[1]) { out[o++] = *p++; out[o++] = *p; continue; }
        if (*p == '[') in_class = 1;
        else if (*p == ']') in_class = 0;
        out[o++] = *p;
    }
    out[o] = 0;
    return out;
}

typedef struct {
    pcre2_code *re[YAN_PRE_COUNT];
    pcre2_match_data *md;
} oracle;

static pcre2_code *compile_re(const char *pattern) {
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        fprintf(stderr, "  pcre2: %s at %zu in %s\n", (char *)msg, (size_t)off, pattern);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

static bool oracle_init(oracle *o) {
    for (int i = 0; i < YAN_PRE_COUNT; i++) {
        char *p = rewrite_ws(k_ref[i]);
        o->re[i] = compile_re(p);
        free(p);
        if (!o->re[i]) return false;
    }
    o->md = pcre2_match_data_create(4, NULL);
    return true;
}

static void oracle_free(oracle *o) {
    for (int i = 0; i < YAN_PRE_COUNT; i++) pcre2_code_free(o->re[i]);
    pcre2_match_data_free(o->md);
}

/* Piece ends of s (valid UTF-8) by PCRE2 into ends[]; returns the count, or
 * -1 when a match does not start where the previous one ended. */
static long oracle_split(oracle *o, int id, const uint8_t *s, size_t n, size_t *ends, size_t cap) {
    size_t pos = 0;
    long k = 0;
    while (pos < n) {
        int rc = pcre2_match(o->re[id], (PCRE2_SPTR)s, n, pos, k ? PCRE2_NO_UTF_CHECK : 0, o->md, NULL);
        if (rc <= 0) return -1;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(o->md);
        if (ov[0] != pos || ov[1] <= pos) return -1;
        if ((size_t)k < cap) ends[k] = ov[1];
        k++;
        pos = ov[1];
    }
    return k;
}

static long yan_split(int id, const uint8_t *s, size_t n, size_t *ends, size_t cap) {
    size_t pos = 0;
    long k = 0;
    while (pos < n) {
        size_t e = yan_pretok_next(id, s, n, pos);
        if (e <= pos || e > n) return -1;
        if ((size_t)k < cap) ends[k] = e;
        k++;
        pos = e;
    }
    return k;
}

static void print_escaped(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7F && s[i] != '\\') fputc(s[i], stderr);
        else fprintf(stderr, "\\x%02X", s[i]);
    }
}

/* Compare both splits; on a mismatch print the first differing piece. */
static bool compare(oracle *o, int id, const uint8_t *s, size_t n, size_t *a, size_t *b, size_t cap, int *reports) {
    long na = yan_split(id, s, n, a, cap);
    long nb = oracle_split(o, id, s, n, b, cap);
    if (na == nb && na >= 0 && (size_t)na <= cap && memcmp(a, b, (size_t)na * sizeof *a) == 0) return true;
    if ((*reports)++ < 8) {
        size_t i = 0, start = 0;
        while ((long)i < na && (long)i < nb && i < cap && a[i] == b[i]) start = a[i++];
        fprintf(stderr, "  %s mismatch at byte %zu: yan ", yan_pre_name(id), start);
        if ((long)i < na && i < cap) print_escaped(s + start, a[i] - start);
        fprintf(stderr, " | pcre2 ");
        if ((long)i < nb && i < cap) print_escaped(s + start, b[i] - start);
        fprintf(stderr, " | text ");
        print_escaped(s + start, n - start < 40 ? n - start : 40);
        fprintf(stderr, "\n");
    }
    return false;
}

/* -------------------------------------------------------------- corpora */

static uint8_t *read_cmd(const char *cmd, size_t max, size_t *len) {
    FILE *f = popen(cmd, "r");
    if (!f) return NULL;
    uint8_t *buf = malloc(max + 1);
    size_t n = fread(buf, 1, max, f);
    pclose(f);
    *len = n;
    if (n == 0) { free(buf); return NULL; }
    return buf;
}

/* Drop ANSI escape sequences (ESC [ ... letter) in place. */
static size_t strip_ansi(uint8_t *s, size_t n) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == 0x1B && i + 1 < n && s[i + 1] == '[') {
            i += 2;
            while (i < n && !((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z'))) i++;
            continue;
        }
        s[o++] = s[i];
    }
    return o;
}

static uint8_t *read_corpus_kjv(size_t *len) {
    return read_cmd("bible -f Gen1:1-Rev22:21 2>/dev/null", 600000, len);
}

static uint8_t *read_corpus_zh(size_t *len) {
    const char *files[] = {"/usr/share/games/fortunes/tang300", "/usr/share/games/fortunes/song100",
                           "/usr/share/games/fortunes/chinese"};
    size_t cap = 2000000, n = 0;
    uint8_t *buf = malloc(cap);
    for (int i = 0; i < 3; i++) {
        FILE *f = fopen(files[i], "rb");
        if (!f) continue;
        n += fread(buf + n, 1, cap - n, f);
        fclose(f);
    }
    n = strip_ansi(buf, n);
    /* keep whole characters only (the oracle needs valid UTF-8) */
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        int32_t cp;
        int l = yan_utf8_decode(buf + i, n - i, &cp);
        if (cp >= 0) { memmove(buf + o, buf + i, (size_t)l); o += (size_t)l; }
        i += (size_t)l;
    }
    *len = o;
    if (o == 0) { free(buf); return NULL; }
    return buf;
}

TEST(pretok_real_text) {
    oracle o;
    if (!oracle_init(&o)) { CHECK(0); return; }
    for (int c = 0; c < 2; c++) {
        size_t n;
        uint8_t *s = c == 0 ? read_corpus_kjv(&n) : read_corpus_zh(&n);
        if (!s) {
            fprintf(stderr, "  skip: %s not available\n", c == 0 ? "bible (bible-kjv)" : "fortunes-zh");
            continue;
        }
        size_t cap = n + 1;
        size_t *a = malloc(cap * sizeof *a), *b = malloc(cap * sizeof *b);
        int reports = 0;
        for (int id = 0; id < YAN_PRE_COUNT; id++) CHECK(compare(&o, id, s, n, a, b, cap, &reports));
        fprintf(stderr, "  %s: %zu bytes, %d mismatching splitters\n", c == 0 ? "KJV" : "Chinese", n, reports);
        free(a);
        free(b);
        free(s);
    }
    oracle_free(&o);
}

/* --------------------------------------------------------- random text */

static uint64_t rng_next(uint64_t *st) {
    uint64_t x = (*st += 0x9E3779B97F4A7C15ULL);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}
static uint32_t rng_below(uint64_t *st, uint32_t n) { return (uint32_t)(rng_next(st) % n); }

/* Does PCRE2 classify cp as yan does (L sub-categories, M, N)? */
static bool pcre2_agrees(int32_t cp, pcre2_code *const *cat, pcre2_match_data *md) {
    uint8_t e[4];
    size_t el = (size_t)yan_utf8_encode((uint32_t)cp, e);
    static const uint16_t want[7] = {YAN_UC_LU, YAN_UC_LL, YAN_UC_LT, YAN_UC_LM, YAN_UC_LO, YAN_UC_M, YAN_UC_N};
    uint16_t f = yan_uc_flags(cp);
    for (int i = 0; i < 7; i++) {
        bool m = pcre2_match(cat[i], e, el, 0, 0, md, NULL) > 0;
        if (m != ((f & want[i]) != 0)) return false;
    }
    return true;
}

typedef struct {
    int32_t *cps;
    size_t n;
} cp_pool;

static const char *const k_atoms[] = {
    "'s", "'S", "'t", "'T", "'re", "'RE", "'rE", "'ve", "'Ve", "'m", "'M", "'ll", "'LL", "'lL", "'d", "'D",
    "'", "''", "'r", "'l", "'v", "'x", "'\xC5\xBF", "\xC5\xBF",
    " ", " ", " ", "  ", "   ", "\t", "\r", "\n", "\r\n", "\n\n", " \n", "\n ", "\t\t", " \t",
    "\xC2\xA0", "\xE2\x80\x83", "\xE3\x80\x80", "\xC2\x85", "\xE2\x80\xA8", "\xE2\x80\xA9", "\xE1\x9A\x80", "\x0B", "\x0C",
    "a", "b", "z", "A", "Z", "the", "The", "THE", "don", "DON", "Hello", "hELLO", "x",
    "0", "1", "12", "123", "1234", "12345", "9999999",
    "\xC3\xA9", "\xC3\x89", "\xC7\x85", "\xCA\xB0", "\xC2\xAA", "\xCE\xA9", "\xCF\x89", "\xD0\x96", "\xD0\xB6",
    "\xE4\xB8\xAD", "\xE6\x96\x87", "\xEA\xB0\x80", "\xD8\xB9", "\xE0\xA4\x95", "\xE0\xB8\x81", "\xE3\x81\x82",
    "\xCC\x81", "\xCC\x80", "\xE2\x83\x9D", "\xE0\xA4\x83", "\xE0\xA5\x8D", "\xE0\xA4\xBF",
    "\xC2\xB2", "\xC2\xBD", "\xE2\x85\xAB", "\xD9\xA3", "\xF0\x9D\x9F\x98",
    "\xF0\x9F\x98\x80", "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD", "\xE2\x80\x8D", "\xEF\xBF\xBD", "\xE2\x80\x8B",
    ".", ",", "!", "?", "(", ")", "\"", "/", "//", "-", "_", "\xC2\xAB", "\xE2\x80\x94", "\xE2\x80\xA6",
    "\xE3\x80\x81", "\xE3\x80\x82", "$", "<|", "{", "}", "#", "*", "\\",
};

/* Append one random element to buf; returns the new length. */
static size_t gen_piece(uint64_t *st, const cp_pool *pool, uint8_t *buf, size_t len) {
    uint32_t r = rng_below(st, 100);
    if (r < 80) {
        const char *a = k_atoms[rng_below(st, sizeof k_atoms / sizeof k_atoms[0])];
        size_t l = strlen(a);
        memcpy(buf + len, a, l);
        return len + l;
    }
    int32_t cp;
    if (r < 95) cp = pool->cps[rng_below(st, (uint32_t)pool->n)];
    else cp = (int32_t)rng_below(st, 0x80); /* any ASCII, incl. controls and NUL */
    return len + (size_t)yan_utf8_encode((uint32_t)cp, buf + len);
}

static bool build_pool(cp_pool *pool, long *dropped, bool report_skew) {
    const char *cats[7] = {"\\p{Lu}", "\\p{Ll}", "\\p{Lt}", "\\p{Lm}", "\\p{Lo}", "\\p{M}", "\\p{N}"};
    pcre2_code *cat[7];
    for (int i = 0; i < 7; i++) {
        cat[i] = compile_re(cats[i]);
        if (!cat[i]) return false;
    }
    pcre2_match_data *md = pcre2_match_data_create(2, NULL);
    uint64_t st = 42;
    pool->cps = malloc(20000 * sizeof(int32_t));
    pool->n = 0;
    *dropped = 0;
    while (pool->n < 20000) {
        int32_t cp;
        uint32_t r = rng_below(&st, 10);
        if (r < 5) cp = (int32_t)rng_below(&st, 0x3000);        /* scripts with marks and cases */
        else if (r < 7) cp = 0x3000 + (int32_t)rng_below(&st, 0xD000);
        else cp = (int32_t)rng_below(&st, 0x110000);
        if ((cp >= 0xD800 && cp <= 0xDFFF) || cp < 0x80) continue;
        if (!pcre2_agrees(cp, cat, md)) { (*dropped)++; continue; }
        pool->cps[pool->n++] = cp;
    }
    /* optionally check every code point, to report the version skew */
    long skew = 0;
    for (int32_t cp = 0; report_skew && cp < 0x110000; cp++)
        if (!(cp >= 0xD800 && cp <= 0xDFFF) && !pcre2_agrees(cp, cat, md)) skew++;
    if (report_skew)
        fprintf(stderr, "  PCRE2/yan category disagreements (Unicode 14 vs %s): %ld code points\n", yan_uc_version, skew);
    for (int i = 0; i < 7; i++) pcre2_code_free(cat[i]);
    pcre2_match_data_free(md);
    return true;
}

TEST(pretok_random_vs_pcre2) {
    oracle o;
    cp_pool pool;
    long dropped;
    if (!oracle_init(&o) || !build_pool(&pool, &dropped, true)) { CHECK(0); return; }
    uint64_t st = 0x5EED;
    uint8_t buf[1024];
    size_t a[1024], b[1024];
    int reports = 0;
    long strings = 0, bad = 0;
    for (int iter = 0; iter < 60000; iter++) {
        size_t len = 0, atoms = 1 + rng_below(&st, iter % 8 == 0 ? 120 : 24);
        for (size_t i = 0; i < atoms && len < 1000; i++) len = gen_piece(&st, &pool, buf, len);
        for (int id = 0; id < YAN_PRE_COUNT; id++) {
            strings++;
            if (!compare(&o, id, buf, len, a, b, 1024, &reports)) bad++;
        }
    }
    fprintf(stderr, "  random: %ld string/splitter pairs, %ld mismatches\n", strings, bad);
    CHECK(bad == 0);
    free(pool.cps);
    oracle_free(&o);
}

/* ------------------------------------------------------------ safe split */

static bool same_with_split(int id, const uint8_t *s, size_t n, size_t p, size_t *a, size_t *b, size_t cap) {
    long na = yan_split(id, s, n, a, cap);
    long nl = yan_split(id, s, p, b, cap);
    if (na < 0 || nl < 0 || (size_t)na > cap) return false;
    long nr = yan_split(id, s + p, n - p, b + nl, cap - (size_t)nl);
    if (nr < 0 || na != nl + nr) return false;
    for (long i = nl; i < na; i++) b[i] += p;
    return memcmp(a, b, (size_t)na * sizeof *a) == 0;
}

TEST(pretok_safe_split) {
    cp_pool pool;
    long dropped;
    if (!build_pool(&pool, &dropped, false)) { CHECK(0); return; }
    uint64_t st = 0xC0FFEE;
    uint8_t buf[2048];
    size_t a[2048], b[2048];
    long splits = 0, bad = 0, found = 0;
    for (int iter = 0; iter < 40000; iter++) {
        size_t len = 0, atoms = 1 + rng_below(&st, 60);
        int raw = iter % 5 == 0; /* some texts with random (often invalid) bytes */
        for (size_t i = 0; i < atoms && len < 1000; i++) {
            if (raw && rng_below(&st, 3) == 0) buf[len++] = (uint8_t)rng_next(&st);
            else len = gen_piece(&st, &pool, buf, len);
        }
        for (int id = 0; id < YAN_PRE_COUNT; id++) {
            size_t from = rng_below(&st, (uint32_t)len + 1);
            size_t p = yan_pretok_safe_split(id, buf, len, from);
            splits++;
            if (p < from || p > len || (p == from && from < len)) { bad++; continue; }
            if (p < len) found++;
            if (!same_with_split(id, buf, len, p, a, b, 2048)) {
                if (bad++ < 5) {
                    fprintf(stderr, "  %s unsafe split at %zu of ", yan_pre_name(id), p);
                    print_escaped(buf, len);
                    fprintf(stderr, "\n");
                }
            }
            /* and from the split point on, as a caller chains them */
            if (p < len && !same_with_split(id, buf + from, len - from, p - from, a, b, 2048)) bad++;
        }
    }
    fprintf(stderr, "  safe_split: %ld splits (%ld inside the text), %ld bad\n", splits, found, bad);
    CHECK(bad == 0);
    CHECK(found > splits / 4);
    /* CJK without spaces: a newline after a letter is a cut */
    const char *zh = "\xE4\xB8\xAD\xE6\x96\x87\n\xE4\xB8\xAD\xE6\x96\x87";
    CHECK(yan_pretok_safe_split(YAN_PRE_CL100K, (const uint8_t *)zh, strlen(zh), 0) == 6);
    /* nothing safe within 64 KiB: gives up with n */
    size_t big = 200000;
    uint8_t *d = malloc(big);
    memset(d, '7', big);
    CHECK(yan_pretok_safe_split(YAN_PRE_GPT2, d, big, 0) == big);
    CHECK(yan_pretok_safe_split(YAN_PRE_GPT2, d, big, big) == big);
    free(d);
    free(pool.cps);
}

/* -------------------------------------------------- invalid bytes, names */

TEST(pretok_invalid_bytes) {
    uint64_t st = 7;
    uint8_t buf[256];
    long bad = 0;
    for (int iter = 0; iter < 100000; iter++) {
        size_t n = 1 + rng_below(&st, 255);
        for (size_t i = 0; i < n; i++) {
            uint64_t r = rng_next(&st);
            /* mix of ASCII classes, continuation bytes, leads, apostrophes */
            static const uint8_t pick[] = {' ', '\n', '\r', '\'', 's', 'L', '1', '!', '/', 0x80, 0xBF, 0xC5, 0xE4, 0xF0};
            buf[i] = (r & 1) ? (uint8_t)(r >> 8) : pick[(r >> 8) % sizeof pick];
        }
        for (int id = 0; id < YAN_PRE_COUNT; id++) {
            size_t pos = 0;
            while (pos < n) {
                size_t e = yan_pretok_next(id, buf, n, pos);
                if (e <= pos || e > n) { bad++; break; }
                pos = e;
            }
        }
    }
    CHECK(bad == 0);
    /* one invalid byte is one symbol character */
    const uint8_t t[] = {'a', 0xFF, 'b', ' ', 0xFE, 0xFE};
    CHECK(yan_pretok_next(YAN_PRE_GPT2, t, 6, 0) == 1);
    CHECK(yan_pretok_next(YAN_PRE_GPT2, t, 6, 1) == 2);
    CHECK(yan_pretok_next(YAN_PRE_CL100K, t, 6, 1) == 3); /* symbol prefix + letters */
    CHECK(yan_pretok_next(YAN_PRE_GPT2, t, 6, 3) == 6);   /* " " + symbol run */
}

TEST(pretok_names) {
    CHECK(yan_pre_from_name("gpt2") == YAN_PRE_GPT2 && yan_pre_from_name("p50k_base") == YAN_PRE_GPT2);
    CHECK(yan_pre_from_name("r50k") == YAN_PRE_GPT2 && yan_pre_from_name("gpt-2") == YAN_PRE_GPT2);
    CHECK(yan_pre_from_name("llama-bpe") == YAN_PRE_CL100K && yan_pre_from_name("cl100k_base") == YAN_PRE_CL100K);
    CHECK(yan_pre_from_name("llama3") == YAN_PRE_CL100K && yan_pre_from_name("llama-v3") == YAN_PRE_CL100K);
    CHECK(yan_pre_from_name("gpt-4o") == YAN_PRE_O200K && yan_pre_from_name("o200k_base") == YAN_PRE_O200K);
    CHECK(yan_pre_from_name("qwen2") == YAN_PRE_QWEN2 && yan_pre_from_name("qwen3") == YAN_PRE_QWEN2);
    CHECK(yan_pre_from_name("nope") == -1 && yan_pre_from_name(NULL) == -1 && yan_pre_from_name("") == -1);
    for (int id = 0; id < YAN_PRE_COUNT; id++) {
        CHECK(yan_pre_from_name(yan_pre_name(id)) == id);
        CHECK(strstr(yan_pre_names(), yan_pre_name(id)) != NULL);
        CHECK(yan_pre_from_regex(k_ref[id], strlen(k_ref[id])) == id);
    }
    CHECK(yan_pre_name(-1) == NULL && yan_pre_name(YAN_PRE_COUNT) == NULL);
    const char *poss = "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}++|\\p{N}{1,3}+| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*+"
                       "|\\s++$|\\s*[\\r\\n]|\\s+(?!\\S)|\\s";
    CHECK(yan_pre_from_regex(poss, strlen(poss)) == YAN_PRE_CL100K);
    const char *qwen_cpp = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+"
                           "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    CHECK(yan_pre_from_regex(qwen_cpp, strlen(qwen_cpp)) == YAN_PRE_QWEN2);
    CHECK(yan_pre_from_regex(k_ref[0], strlen(k_ref[0]) - 1) == -1);
    CHECK(yan_pre_from_regex("\\s+", 3) == -1 && yan_pre_from_regex(NULL, 0) == -1);
}

/* The possessive r50k form that tiktoken ships is equivalent to GPT2. */
TEST(pretok_gpt2_possessive_equivalent) {
    char *p = rewrite_ws("'(?:[sdmt]|ll|ve|re)| ?\\p{L}++| ?\\p{N}++| ?[^\\s\\p{L}\\p{N}]++|\\s++$|\\s+(?!\\S)|\\s");
    oracle o;
    if (!oracle_init(&o)) { free(p); CHECK(0); return; }
    pcre2_code_free(o.re[YAN_PRE_GPT2]);
    o.re[YAN_PRE_GPT2] = compile_re(p);
    free(p);
    if (!o.re[YAN_PRE_GPT2]) { CHECK(0); oracle_free(&o); return; }
    uint64_t st = 99;
    uint8_t buf[1024];
    size_t a[1024], b[1024];
    int reports = 0;
    long bad = 0;
    cp_pool pool = {.cps = (int32_t[]){0xE9, 0x4E2D, 0x0301, 0x00BD, 0x3000}, .n = 5};
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = 0, atoms = 1 + rng_below(&st, 24);
        for (size_t i = 0; i < atoms; i++) len = gen_piece(&st, &pool, buf, len);
        if (!compare(&o, YAN_PRE_GPT2, buf, len, a, b, 1024, &reports)) bad++;
    }
    CHECK(bad == 0);
    oracle_free(&o);
}
