/* test_unicode.c — category spot checks, the inline decoder against
 * yan_utf8_decode, and NFC against the whole of the UCD's
 * NormalizationTest.txt (read through bzcat; skipped with a message when the
 * file or bzcat is missing). */
#include "tokenizer/unicode.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

TEST(unicode_categories) {
    CHECK(yan_uc_flags('A') == (YAN_UC_L | YAN_UC_LU));
    CHECK(yan_uc_flags('z') == (YAN_UC_L | YAN_UC_LL));
    CHECK(yan_uc_flags('7') == YAN_UC_N);
    CHECK(yan_uc_flags(' ') == YAN_UC_WS);
    CHECK(yan_uc_flags('\t') == YAN_UC_WS && yan_uc_flags('\n') == YAN_UC_WS);
    CHECK(yan_uc_flags(0x0B) == YAN_UC_WS && yan_uc_flags(0x0C) == YAN_UC_WS && yan_uc_flags('\r') == YAN_UC_WS);
    CHECK(yan_uc_flags('!') == 0 && yan_uc_flags('\'') == 0 && yan_uc_flags(0) == 0);
    CHECK(yan_uc_flags(-1) == 0 && yan_uc_flags(0x110000) == 0 && yan_uc_flags(INT32_MIN) == 0);
    CHECK(yan_uc_flags(0x00C9) == (YAN_UC_L | YAN_UC_LU));  /* É */
    CHECK(yan_uc_flags(0x00DF) == (YAN_UC_L | YAN_UC_LL));  /* ß */
    CHECK(yan_uc_flags(0x01C5) == (YAN_UC_L | YAN_UC_LT));  /* ǅ */
    CHECK(yan_uc_flags(0x02B0) == (YAN_UC_L | YAN_UC_LM));  /* ʰ */
    CHECK(yan_uc_flags(0x00AA) == (YAN_UC_L | YAN_UC_LO));  /* ª */
    CHECK(yan_uc_flags(0x4E2D) == (YAN_UC_L | YAN_UC_LO));  /* 中 */
    CHECK(yan_uc_flags(0xAC00) == (YAN_UC_L | YAN_UC_LO));  /* 가 (range entry) */
    CHECK(yan_uc_flags(0x0301) == YAN_UC_M);                /* Mn */
    CHECK(yan_uc_flags(0x0903) == YAN_UC_M);                /* Mc */
    CHECK(yan_uc_flags(0x20DD) == YAN_UC_M);                /* Me */
    CHECK(yan_uc_flags(0x00BD) == YAN_UC_N);                /* ½ No */
    CHECK(yan_uc_flags(0x2167) == YAN_UC_N);                /* Ⅷ Nl */
    CHECK(yan_uc_flags(0x0663) == YAN_UC_N);                /* ٣ Nd */
    CHECK(yan_uc_flags(0x1D7D8) == YAN_UC_N);               /* 𝟘 */
    CHECK(yan_uc_flags(0x0085) == YAN_UC_WS);               /* NEL: White_Space, not Z */
    CHECK(yan_uc_flags(0x00A0) == YAN_UC_WS && yan_uc_flags(0x1680) == YAN_UC_WS);
    CHECK(yan_uc_flags(0x2003) == YAN_UC_WS && yan_uc_flags(0x2028) == YAN_UC_WS);
    CHECK(yan_uc_flags(0x2029) == YAN_UC_WS && yan_uc_flags(0x202F) == YAN_UC_WS);
    CHECK(yan_uc_flags(0x205F) == YAN_UC_WS && yan_uc_flags(0x3000) == YAN_UC_WS);
    CHECK(yan_uc_flags(0x200B) == 0 && yan_uc_flags(0xFEFF) == 0 && yan_uc_flags(0x180E) == 0);
    CHECK(yan_uc_flags(0x1F600) == 0);                      /* 😀 So */
    CHECK(yan_uc_flags(0xFFFD) == 0 && yan_uc_flags(0xD800) == 0 && yan_uc_flags(0x10FFFF) == 0);
    CHECK(yan_uc_flags(0x1E030) == (YAN_UC_L | YAN_UC_LM)); /* new in 15.0 */
    CHECK(yan_uc_flags(0x31350) == (YAN_UC_L | YAN_UC_LO)); /* CJK Ext. H, 15.0 */
    CHECK(strcmp(yan_uc_version, "15.0.0") >= 0);
    CHECK(yan_uc_ccc(0x0301) == 230 && yan_uc_ccc(0x0316) == 220 && yan_uc_ccc('a') == 0);
    CHECK(yan_uc_ccc(-1) == 0);
    CHECK(yan_uc_compose('e', 0x0301) == 0xE9);
    CHECK(yan_uc_compose(0x1100, 0x1161) == 0xAC00);
    CHECK(yan_uc_compose(0xAC00, 0x11A8) == 0xAC01);
    CHECK(yan_uc_compose(0x0915, 0x093C) == -1); /* क़ U+0958 is excluded */
    uint32_t d[4];
    CHECK(yan_uc_decompose(0x1E69, d) == 3 && d[0] == 's' && d[1] == 0x0323 && d[2] == 0x0307);
    CHECK(yan_uc_decompose(0xD4DB, d) == 3 && d[0] == 0x1111 && d[1] == 0x1171 && d[2] == 0x11B6);
    CHECK(yan_uc_decompose('x', d) == 1 && d[0] == 'x');
}

TEST(unicode_decode_matches_base) {
    uint64_t st = 0x9E3779B97F4A7C15ULL;
    uint8_t b[8];
    for (int iter = 0; iter < 500000; iter++) {
        for (int i = 0; i < 8; i++) {
            st = st * 6364136223846793005ULL + 1442695040888963407ULL;
            uint8_t v = (uint8_t)(st >> 56);
            /* bias toward lead/continuation bytes */
            b[i] = (i > 0 && (st & 0x300)) ? (uint8_t)(0x80 | (v & 0x3F)) : v;
        }
        size_t n = 1 + (size_t)((st >> 20) % 8);
        int32_t c1, c2;
        int l1 = yan_uc_decode(b, n, &c1);
        int l2 = yan_utf8_decode(b, n, &c2);
        if (l1 != l2 || c1 != c2) {
            CHECK(l1 == l2 && c1 == c2);
            break;
        }
    }
}

/* ----------------------------------------------------------------- NFC */

static size_t parse_hex_seq(const char *f, uint8_t *out) {
    size_t n = 0;
    while (*f) {
        char *end;
        unsigned long cp = strtoul(f, &end, 16);
        if (end == f) break;
        n += (size_t)yan_utf8_encode((uint32_t)cp, out + n);
        f = end;
        while (*f == ' ') f++;
    }
    return n;
}

static bool nfc_equals(const uint8_t *s, size_t n, const uint8_t *want, size_t wn) {
    yan_buf b = {0};
    bool ok = yan_nfc(s, n, &b) == YAN_OK && b.len == wn && memcmp(b.data ? b.data : "", want, wn) == 0;
    yan_buf_free(&b);
    return ok;
}

TEST(unicode_nfc_basics) {
    const char *cases[][2] = {
        {"", ""},
        {"hello", "hello"},
        {"e\xCC\x81", "\xC3\xA9"},                        /* e + acute -> é */
        {"\xC3\xA9", "\xC3\xA9"},
        {"a\xCC\xA3\xCC\x87", "\xE1\xBA\xA1\xCC\x87"},      /* a + dot below + dot above */
        {"a\xCC\x87\xCC\xA3", "\xE1\xBA\xA1\xCC\x87"},      /* reordered first */
        {"\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8", "\xEA\xB0\x81"}, /* L V T -> 각 */
        {"\xE2\x84\xAB", "\xC3\x85"},                       /* Angstrom sign -> Å */
        {"\xE0\xA5\x98", "\xE0\xA4\x95\xE0\xA4\xBC"},       /* U+0958 excluded */
        {"\xFF\xCC\x81", "\xFF\xCC\x81"},                   /* invalid byte passes, blocks */
        {"e\xFF\xCC\x81", "e\xFF\xCC\x81"},
        {"e\xCC", "e\xCC"},                                 /* truncated sequence */
        {"\xCC\x81" "e", "\xCC\x81" "e"},                   /* leading non-starter */
        {"\xE4\xB8\xAD\xE6\x96\x87 ok", "\xE4\xB8\xAD\xE6\x96\x87 ok"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool ok = nfc_equals((const uint8_t *)cases[i][0], strlen(cases[i][0]),
                             (const uint8_t *)cases[i][1], strlen(cases[i][1]));
        if (!ok) fprintf(stderr, "  nfc case %zu\n", i);
        CHECK(ok);
    }
    CHECK(yan_nfc_is_quick((const uint8_t *)"plain text \xE4\xB8\xAD", 14));
    CHECK(!yan_nfc_is_quick((const uint8_t *)"e\xCC\x81", 3));
    CHECK(yan_nfc_quick_prefix((const uint8_t *)"abe\xCC\x81", 5) == 3);

    /* hostile: one starter and 100000 combining marks in descending classes */
    size_t m = 100000;
    uint8_t *s = malloc(1 + 2 * m);
    s[0] = 'a';
    for (size_t i = 0; i < m; i++) {
        /* alternate U+0301 (ccc 230) and U+0316 (ccc 220) */
        s[1 + 2 * i] = 0xCC;
        s[2 + 2 * i] = (i & 1) ? 0x96 : 0x81;
    }
    yan_buf b = {0};
    CHECK(yan_nfc(s, 1 + 2 * m, &b) == YAN_OK);
    /* reordered to 0316 x m/2, 0301 x m/2; then a + the first 0301 composes to
     * á because the 0316 marks between them have a lower class (not blocking) */
    CHECK(b.len == 2 * m);
    if (b.len == 2 * m) {
        CHECK((uint8_t)b.data[0] == 0xC3 && (uint8_t)b.data[1] == 0xA1);
        CHECK((uint8_t)b.data[3] == 0x96 && (uint8_t)b.data[1 + m] == 0x96);
        CHECK((uint8_t)b.data[3 + m] == 0x81 && (uint8_t)b.data[b.len - 1] == 0x81);
    }
    yan_buf_free(&b);
    free(s);
}

TEST(unicode_nfc_conformance) {
    FILE *f = popen("bzcat /usr/share/unicode/NormalizationTest.txt.bz2 2>/dev/null", "r");
    if (!f) { fprintf(stderr, "  skip: cannot run bzcat\n"); return; }
    char line[4096];
    uint8_t col[5][512];
    size_t len[5];
    uint8_t *part1 = calloc(0x110000, 1);
    int part = -1;
    long n_lines = 0, n_bad = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        if (line[0] == '@') { part = atoi(line + 5); continue; }
        char *fields[5];
        char *p = line;
        int nf = 0;
        for (; nf < 5; nf++) {
            fields[nf] = p;
            char *semi = strchr(p, ';');
            if (!semi) break;
            *semi = 0;
            p = semi + 1;
        }
        if (nf < 5) continue;
        for (int i = 0; i < 5; i++) len[i] = parse_hex_seq(fields[i], col[i]);
        if (part == 1) {
            int32_t cp;
            yan_utf8_decode(col[0], len[0], &cp);
            if (cp >= 0) part1[cp] = 1;
        }
        n_lines++;
        /* c2 == NFC(c1) == NFC(c2) == NFC(c3); c4 == NFC(c4) == NFC(c5) */
        bool ok = nfc_equals(col[0], len[0], col[1], len[1]) && nfc_equals(col[1], len[1], col[1], len[1]) &&
                  nfc_equals(col[2], len[2], col[1], len[1]) && nfc_equals(col[3], len[3], col[3], len[3]) &&
                  nfc_equals(col[4], len[4], col[3], len[3]);
        /* the quick check never claims a non-NFC text is NFC */
        if (yan_nfc_is_quick(col[0], len[0]) && (len[0] != len[1] || memcmp(col[0], col[1], len[0]))) ok = false;
        if (yan_nfc_is_quick(col[2], len[2]) && (len[2] != len[1] || memcmp(col[2], col[1], len[2]))) ok = false;
        if (!ok && n_bad++ < 5) fprintf(stderr, "  NFC mismatch: %s;%s;%s\n", fields[0], fields[1], fields[2]);
    }
    int rc = pclose(f);
    if (n_lines == 0) {
        fprintf(stderr, "  skip: NormalizationTest.txt.bz2 not readable (rc %d)\n", rc);
        free(part1);
        return;
    }
    CHECK(n_lines > 18000);
    CHECK(n_bad == 0);
    /* every code point not in part 1 is its own NFC */
    long bad1 = 0;
    for (int32_t cp = 0; cp < 0x110000; cp++) {
        if (part1[cp] || (cp >= 0xD800 && cp <= 0xDFFF)) continue;
        uint8_t e[4];
        size_t el = (size_t)yan_utf8_encode((uint32_t)cp, e);
        if (!nfc_equals(e, el, e, el) && bad1++ < 5) fprintf(stderr, "  NFC(U+%04X) changed\n", (unsigned)cp);
    }
    CHECK(bad1 == 0);
    free(part1);
    fprintf(stderr, "  NormalizationTest: %ld lines, %ld mismatches\n", n_lines, n_bad);
}
