/* test_kb.c — the knowledge base (src/rag/kb.c, ingest.c, chunk.c):
 *  - chunking: sentence and paragraph boundaries (English and Chinese), the
 *    size limit (exactly at it, over it), overlap, long sentences split at
 *    spaces or between CJK characters, coverage of the text;
 *  - extraction: Markdown heading paths (ATX, setext, not inside code
 *    fences), HTML without scripts and styles, a hand-written two-page PDF,
 *    an encrypted and a damaged PDF, binary/Latin-1/UTF-16 sniffing;
 *  - the database: re-adding an unchanged file is a no-op, a touched file is
 *    recognised by its hash, a changed file is re-indexed, removing files and
 *    folders, bad files reported while the rest lands, too large files,
 *    aborting through the progress callback and completing afterwards;
 *  - retrieval: BM25 ranks, RRF arithmetic, HNSW vector search against the
 *    exhaustive scan, the index file rebuilt when missing, damaged or stale,
 *    a model attached later fills in vectors, another model is refused;
 *  - a reader handle searching while a writer adds;
 *  - the measurement behind the CJK indexing choice (recall of bigram,
 *    unigram, unibigram and FTS5 trigram on a Chinese retrieval set built
 *    from the fortunes-zh corpus; skipped when it is not installed). */
#include "test.h"
#include "model_util.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "rag/chunk.h"
#include "rag/ingest.h"
#include "rag/kb.h"

/* ------------------------------------------------------------- helpers */

static void write_file(const char *path, const char *s, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fwrite(s, 1, n, f);
    fclose(f);
}
static void write_str(const char *path, const char *s) { write_file(path, s, strlen(s)); }

/* a fresh folder under the run's temporary folder */
static const char *tdir(const char *name) {
    static char buf[8][512];
    static int r;
    char *p = buf[r++ & 7];
    snprintf(p, 512, "%s/%s", yan_test_tmp_dir(), name);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
    if (system(cmd) != 0) fprintf(stderr, "  rm failed\n");
    mkdir(p, 0755);
    return p;
}

static const char *pjoin(const char *a, const char *b) {
    static char buf[8][1024];
    static int r;
    char *p = buf[r++ & 7];
    snprintf(p, 1024, "%s/%s", a, b);
    return p;
}

static bool valid_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        int32_t cp;
        int l = yan_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        if (cp < 0) return false;
        i += (size_t)l;
    }
    return true;
}

static yan_doc text_doc(const char *s) {
    yan_doc d;
    CHECK(yan_doc_extract(YAN_DOC_TEXT, (const uint8_t *)s, strlen(s), &d) == YAN_OK);
    return d;
}

static bool ends_sentence(const char *t, size_t end) {
    const char *stops[] = {".", "!", "?", "。", "！", "？", "；", ".\"", NULL};
    for (int i = 0; stops[i]; i++) {
        size_t l = strlen(stops[i]);
        if (end >= l && !memcmp(t + end - l, stops[i], l)) return true;
    }
    return false;
}

/* ------------------------------------------------------------ chunking */

TEST(kb_chunk_sentences_en) {
    const char *s =
        "The first sentence is here. The second one follows it! Is this the third?\n\n"
        "A new paragraph starts. It has two sentences.\n\n"
        "Mr. Smith wrote 3.14 and e.g. more text without a stop at the end of the line\n"
        "which continues here. Last one.";
    yan_doc d = text_doc(s);
    yan_chunk_params p = {20, 8, NULL, NULL};
    yan_chunk *c = NULL;
    size_t n = 0;
    CHECK(yan_chunk_doc(&d, &p, &c, &n) == YAN_OK);
    CHECK(n >= 5);
    const char *t = d.text.data;
    int overlapping = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK(c[i].tokens <= 20);
        CHECK(c[i].tokens >= 1);
        CHECK(ends_sentence(t, c[i].end));
        CHECK(t[c[i].start] != ' ' && t[c[i].start] != '\n');
        if (i) CHECK(c[i].start > c[i - 1].start);
        if (i) CHECK(c[i].start <= c[i - 1].end + 2); /* overlapping or adjacent */
        if (i) overlapping += c[i].start < c[i - 1].end;
    }
    CHECK(overlapping >= 2);
    /* everything is covered */
    CHECK(c[0].start == 0);
    CHECK(c[n - 1].end == d.text.len);
    for (size_t i = 1; i < n; i++) CHECK(c[i].start <= c[i - 1].end + 2);
    yan_free(c);
    /* no overlap: chunks tile the text */
    p.overlap = 0;
    CHECK(yan_chunk_doc(&d, &p, &c, &n) == YAN_OK);
    for (size_t i = 1; i < n; i++) CHECK(c[i].start >= c[i - 1].end);
    yan_free(c);
    /* "3.14" and "e.g." do not end sentences: no chunk ends inside them */
    p.size = 1000;
    CHECK(yan_chunk_doc(&d, &p, &c, &n) == YAN_OK);
    CHECK(n == 1);
    yan_free(c);
    yan_doc_free(&d);
}

TEST(kb_chunk_paragraph_preferred) {
    /* paragraphs of 8, 8 and 3 x 4 tokens: size 20 would fit the first two
     * and one sentence of the third; the chunk ends at the paragraph break */
    const char *s = "Aaa bbb ccc ddd eee fff ggg.\n\nHhh iii jjj kkk lll mmm nnn.\n\nRho sig tau. Ups phi chi. Psi ome alp.";
    yan_doc d = text_doc(s);
    yan_chunk_params p = {20, 0, NULL, NULL};
    yan_chunk *c = NULL;
    size_t n = 0;
    CHECK(yan_chunk_doc(&d, &p, &c, &n) == YAN_OK);
    CHECK(n >= 2);
    if (n >= 2) CHECK(!memcmp(d.text.data + c[0].end - 4, "nnn.", 4) && c[0].tokens == 16);
    yan_free(c);
    yan_doc_free(&d);
}

TEST(kb_chunk_chinese) {
    const char *s = "知识库把文档切成小块。每一块大约有相同的长度！检索时先找到最相关的块？"
                    "然后把它们交给模型；模型据此回答问题。\n\n"
                    "第二段讲的是中文分词。中文没有空格，所以按字符计数。";
    yan_doc d = text_doc(s);
    yan_chunk_params p = {20, 5, NULL, NULL};
    yan_chunk *c = NULL;
    size_t n = 0;
    CHECK(yan_chunk_doc(&d, &p, &c, &n) == YAN_OK);
    CHECK(n >= 3);
    for (size_t i = 0; i < n; i++) {
        CHECK(c[i].tokens <= 20);
        CHECK(ends_sentence(d.text.data, c[i].end));
        CHECK(valid_utf8(d.text.data + c[i].start, c[i].end - c[i].start));
    }
    CHECK(c[n - 1].end == d.text.len);
    yan_free(c);
    yan_doc_free(&d);
}

TEST(kb_chunk_long_units) {
    /* one sentence of 400 words without punctuation: split at spaces */
    yan_buf b = {0};
    for (int i = 0; i < 400; i++) yan_buf_printf(&b, "word%d ", i);
    yan_doc d = text_doc(b.data);
    yan_chunk_params p = {50, 10, NULL, NULL};
    yan_chunk *c = NULL;
    size_t n = 0;
    CHECK(yan_chunk_doc(&d, &p, &c, &n) == YAN_OK);
    CHECK(n >= 16);
    for (size_t i = 0; i < n; i++) {
        CHECK(c[i].tokens <= 50);
        CHECK(yan_chunk_estimate(NULL, d.text.data + c[i].start, c[i].end - c[i].start) <= 50);
        CHECK(d.text.data[c[i].end - 1] != ' ');
        CHECK(c[i].end == d.text.len || d.text.data[c[i].end] == ' '); /* cut at a space */
    }
    yan_free(c);
    yan_doc_free(&d);
    yan_buf_free(&b);
    /* 3000 Han characters in one run: split between characters */
    b = (yan_buf){0};
    for (int i = 0; i < 3000; i++) yan_buf_puts(&b, i % 2 ? "文" : "字");
    d = text_doc(b.data);
    CHECK(yan_chunk_doc(&d, &p, &c, &n) == YAN_OK);
    CHECK(n >= 60);
    size_t covered = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK(c[i].tokens <= 50);
        CHECK(valid_utf8(d.text.data + c[i].start, c[i].end - c[i].start));
        if (c[i].end > covered) covered = c[i].end;
    }
    CHECK(covered == d.text.len);
    yan_free(c);
    yan_doc_free(&d);
    yan_buf_free(&b);
}

TEST(kb_chunk_exact_size) {
    /* sentences of 6, 6 and 2 estimated tokens ("aaaa" and "." one each):
     * size 12 is met exactly by the first two */
    const char *s = "aaaa bbbb cccc dddd eeee. ffff gggg hhhh iiii jjjj. kkkk.";
    yan_doc d = text_doc(s);
    CHECK(yan_chunk_estimate(NULL, "aaaa bbbb cccc dddd eeee. ", 26) == 6); /* 5 words + '.' */
    yan_chunk_params p = {12, 0, NULL, NULL};
    yan_chunk *c = NULL;
    size_t n = 0;
    CHECK(yan_chunk_doc(&d, &p, &c, &n) == YAN_OK);
    YAN_TESTCASE(c[0].tokens == 12); /* a chunk exactly at the size limit */
    CHECK(n == 2);
    if (n == 2) {
        CHECK(c[0].tokens == 12);
        CHECK(!memcmp(d.text.data + c[0].end - 5, "jjjj.", 5));
    }
    yan_free(c);
    p.size = 11;
    CHECK(yan_chunk_doc(&d, &p, &c, &n) == YAN_OK);
    CHECK(n == 2);
    if (n == 2) CHECK(c[0].tokens == 6 && !memcmp(d.text.data + c[0].end - 5, "eeee.", 5));
    yan_free(c);
    yan_doc_free(&d);
}

TEST(kb_segment_and_query) {
    yan_buf b = {0};
    CHECK(yan_segment(&b, "搜索中文 and English 的", strlen("搜索中文 and English 的"), YAN_SEG_BIGRAM));
    CHECK(strstr(b.data, " 搜索 索中 中文 ") != NULL);
    CHECK(strstr(b.data, " and English ") != NULL);
    CHECK(strstr(b.data, " 的 ") != NULL); /* a lone character stays */
    b.len = 0;
    CHECK(yan_segment(&b, "中文", 6, YAN_SEG_UNIGRAM));
    CHECK(!strcmp(b.data, " 中 文 "));
    b.len = 0;
    CHECK(yan_segment(&b, "中文", 6, YAN_SEG_UNIBIGRAM));
    CHECK(!strcmp(b.data, " 中 文 中文 "));
    CHECK(yan_fts_query(&b, "中文 \"hack\" OR 中文 NEAR(x)", YAN_SEG_BIGRAM, 64));
    CHECK(!strcmp(b.data, "\"中文\" OR \"hack\" OR \"NEAR\" OR \"x\"")); /* "or" is a function word */
    CHECK(yan_fts_query(&b, "How do I install THE package?", YAN_SEG_BIGRAM, 64));
    CHECK(!strcmp(b.data, "\"install\" OR \"package\""));
    CHECK(yan_fts_query(&b, "to be or not to be", YAN_SEG_BIGRAM, 64)); /* nothing else: kept */
    CHECK(!strcmp(b.data, "\"to\" OR \"be\" OR \"or\" OR \"not\""));
    CHECK(yan_fts_query(&b, "长安春天 ab", YAN_SEG_TRIGRAM, 64));
    CHECK(!strcmp(b.data, "\"长安春\" OR \"安春天\""));
    CHECK(yan_fts_query(&b, "  ,.!  ", YAN_SEG_BIGRAM, 64));
    CHECK(b.len == 0);
    yan_buf_free(&b);
}

/* ---------------------------------------------------------- extraction */

TEST(kb_extract_markdown) {
    const char *md = "Intro line.\n\n# Install\n\nText.\n\n## Debian ##\n\nUse apt.\n\n```\n# not a heading\n```\n\n"
                     "Usage\n=====\n\nRun it.\n\n### Flags\nmore\n";
    yan_doc d;
    CHECK(yan_doc_extract(YAN_DOC_MARKDOWN, (const uint8_t *)md, strlen(md), &d) == YAN_OK);
    CHECK(d.n_sec == 5);
    if (d.n_sec == 5) {
        CHECK(d.sec[0].heading == NULL && d.sec[0].start == 0);
        CHECK(!strcmp(d.sec[1].heading, "Install"));
        CHECK(!strcmp(d.sec[2].heading, "Install > Debian"));
        CHECK(!strcmp(d.sec[3].heading, "Usage")); /* setext level 1 resets the path */
        CHECK(!strcmp(d.sec[4].heading, "Usage > Flags"));
        CHECK(!memcmp(d.text.data + d.sec[1].start, "# Install", 9));
        CHECK(!memcmp(d.text.data + d.sec[3].start, "Usage\n===", 9));
        /* the fenced "# not a heading" stays in the Debian section */
        const char *code = strstr(d.text.data, "# not a heading");
        CHECK(code && code > d.text.data + d.sec[2].start && code < d.text.data + d.sec[3].start);
    }
    /* chunks carry their section's heading */
    yan_chunk_params p = {256, 0, NULL, NULL};
    yan_chunk *c;
    size_t n;
    CHECK(yan_chunk_doc(&d, &p, &c, &n) == YAN_OK);
    CHECK(n == 5);
    if (n == 5) CHECK(c[4].section == 4 && strstr(d.text.data + c[4].start, "more"));
    yan_free(c);
    yan_doc_free(&d);
}

TEST(kb_extract_html) {
    const char *html =
        "<!DOCTYPE html><html><head><title>The Manual</title><style>body { color: red }</style>"
        "<script>var secret = 'SCRIPTTEXT';</script></head><body>"
        "<p>Before the first heading &amp; more.</p>"
        "<h1>Chapter  One</h1><p>Para one<br>line two</p><noscript>NOSCRIPT</noscript>"
        "<h2>Section <em>A</em></h2><ul><li>item 1</li><li>item 2</li></ul>"
        "<pre>  keep   spaces\n  here</pre><script>alert('x')</script>"
        "<h1>Chapter Two</h1><table><tr><td>a</td><td>b</td></tr></table><svg><text>SVGTEXT</text></svg>"
        "</body></html>";
    yan_doc d;
    CHECK(yan_doc_extract(YAN_DOC_HTML, (const uint8_t *)html, strlen(html), &d) == YAN_OK);
    const char *t = d.text.data;
    CHECK(strstr(t, "SCRIPTTEXT") == NULL);
    CHECK(strstr(t, "alert") == NULL);
    CHECK(strstr(t, "color: red") == NULL);
    CHECK(strstr(t, "NOSCRIPT") == NULL);
    CHECK(strstr(t, "SVGTEXT") == NULL);
    CHECK(strstr(t, "Before the first heading & more.") != NULL);
    CHECK(strstr(t, "Para one\nline two") != NULL);
    CHECK(strstr(t, "  keep   spaces\n  here") != NULL);
    CHECK(strstr(t, "item 1\nitem 2") != NULL);
    CHECK(strstr(t, "a b") != NULL);
    CHECK(d.n_sec == 4);
    if (d.n_sec == 4) {
        CHECK(!strcmp(d.sec[0].heading, "The Manual"));
        CHECK(!strcmp(d.sec[1].heading, "Chapter One"));
        CHECK(!strcmp(d.sec[2].heading, "Chapter One > Section A"));
        CHECK(!strcmp(d.sec[3].heading, "Chapter Two"));
        CHECK(!memcmp(t + d.sec[1].start, "Chapter One", 11));
    }
    yan_doc_free(&d);
    /* a title over several lines becomes one line; a second <head> or
     * <title> adds no text before section 0 (found by fuzz_extract) */
    const char *two = "<html><head><title>\n  Two\r\n\tLines </title></head><head><title>Again</title>"
                      "</head><body><p>Body text.</p></body></html>";
    CHECK(yan_doc_extract(YAN_DOC_HTML, (const uint8_t *)two, strlen(two), &d) == YAN_OK);
    CHECK(d.n_sec == 1 && d.sec[0].start == 0 && !strcmp(d.sec[0].heading, "Two Lines"));
    CHECK(!strcmp(d.text.data, "Body text.\n\n") || !strcmp(d.text.data, "Body text."));
    yan_doc_free(&d);
    /* no markup at all, and bytes that are not HTML */
    CHECK(yan_doc_extract(YAN_DOC_HTML, (const uint8_t *)"just text", 9, &d) == YAN_OK);
    CHECK(!strncmp(d.text.data, "just text", 9));
    yan_doc_free(&d);
    CHECK(yan_doc_extract(YAN_DOC_HTML, (const uint8_t *)"<html>\0\0\0", 9, &d) == YAN_ERR_FORMAT);
    yan_doc_free(&d);
}

/* A minimal valid PDF: one Helvetica text object per page (lines with the
 * ' operator), a correct xref table; with encrypt, an /Encrypt dictionary
 * whose /U entry no empty password matches (so a reader asks for one). */
static void make_pdf(yan_buf *out, const char *const *pages, int n, bool encrypt) {
    size_t off[64];
    int no = 0;
    out->len = 0;
    yan_buf_puts(out, "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n");
    yan_buf kids = {0};
    for (int i = 0; i < n; i++) yan_buf_printf(&kids, "%s%d 0 R", i ? " " : "", 4 + 2 * i);
    off[no++] = out->len;
    yan_buf_printf(out, "1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
    off[no++] = out->len;
    yan_buf_printf(out, "2 0 obj\n<< /Type /Pages /Kids [%s] /Count %d >>\nendobj\n", kids.data, n);
    off[no++] = out->len;
    yan_buf_printf(out, "3 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>\nendobj\n");
    for (int i = 0; i < n; i++) {
        off[no++] = out->len;
        yan_buf_printf(out,
                       "%d 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R "
                       ">> >> /Contents %d 0 R >>\nendobj\n",
                       4 + 2 * i, 5 + 2 * i);
        yan_buf s = {0};
        yan_buf_puts(&s, "BT /F1 12 Tf 72 720 Td 14 TL");
        for (const char *p = pages[i]; *p;) {
            const char *e = strchr(p, '\n');
            size_t l = e ? (size_t)(e - p) : strlen(p);
            yan_buf_puts(&s, " (");
            for (size_t k = 0; k < l; k++) {
                if (p[k] == '(' || p[k] == ')' || p[k] == '\\') yan_buf_putc(&s, '\\');
                yan_buf_putc(&s, p[k]);
            }
            yan_buf_puts(&s, ") '");
            p += l + (e ? 1 : 0);
        }
        yan_buf_puts(&s, " ET");
        off[no++] = out->len;
        yan_buf_printf(out, "%d 0 obj\n<< /Length %zu >>\nstream\n%s\nendstream\nendobj\n", 5 + 2 * i, s.len, s.data);
        yan_buf_free(&s);
    }
    int enc = 0;
    if (encrypt) {
        enc = no + 1;
        off[no++] = out->len;
        yan_buf_printf(out, "%d 0 obj\n<< /Filter /Standard /V 1 /R 2 /O <", enc);
        for (int i = 0; i < 32; i++) yan_buf_puts(out, "11");
        yan_buf_puts(out, "> /U <");
        for (int i = 0; i < 32; i++) yan_buf_puts(out, "22");
        yan_buf_puts(out, "> /P -4 >>\nendobj\n");
    }
    size_t xref = out->len;
    yan_buf_printf(out, "xref\n0 %d\n0000000000 65535 f \n", no + 1);
    for (int i = 0; i < no; i++) yan_buf_printf(out, "%010zu 00000 n \n", off[i]);
    yan_buf_printf(out, "trailer\n<< /Size %d /Root 1 0 R", no + 1);
    if (encrypt)
        yan_buf_printf(out, " /Encrypt %d 0 R /ID [<0123456789abcdef0123456789abcdef> "
                            "<0123456789abcdef0123456789abcdef>]", enc);
    yan_buf_printf(out, " >>\nstartxref\n%zu\n%%%%EOF\n", xref);
    yan_buf_free(&kids);
}

TEST(kb_extract_pdf) {
    const char *pages[] = {"Hello from page one.\nA second line (with parens).", "Page two is about zebras."};
    yan_buf pdf = {0};
    make_pdf(&pdf, pages, 2, false);
    yan_doc d;
    CHECK(yan_doc_extract(YAN_DOC_PDF, (const uint8_t *)pdf.data, pdf.len, &d) == YAN_OK);
    CHECK(d.n_pages == 2);
    CHECK(d.n_sec == 2);
    if (d.n_sec == 2) {
        CHECK(d.sec[0].page == 1 && d.sec[1].page == 2);
        CHECK(strstr(d.text.data, "Hello from page one.") != NULL);
        CHECK(strstr(d.text.data, "(with parens)") != NULL);
        CHECK(strstr(d.text.data + d.sec[1].start, "zebras") != NULL);
        CHECK(strstr(d.text.data, "zebras") > d.text.data + d.sec[1].start - 1);
    }
    yan_doc_free(&d);
    /* encrypted: a clear UNSUPPORTED */
    make_pdf(&pdf, pages, 1, true);
    CHECK(yan_doc_extract(YAN_DOC_PDF, (const uint8_t *)pdf.data, pdf.len, &d) == YAN_ERR_UNSUPPORTED);
    CHECK(strstr(yan_last_error(), "encrypted") != NULL);
    yan_doc_free(&d);
    /* damaged: garbage after the header; not a PDF at all */
    const char *bad = "%PDF-1.4\nthis is not a pdf body\n";
    CHECK(yan_doc_extract(YAN_DOC_PDF, (const uint8_t *)bad, strlen(bad), &d) == YAN_ERR_FORMAT);
    CHECK(strstr(yan_last_error(), "damaged") != NULL);
    yan_doc_free(&d);
    CHECK(yan_doc_extract(YAN_DOC_PDF, (const uint8_t *)"hello", 5, &d) == YAN_ERR_FORMAT);
    yan_doc_free(&d);
    /* truncated to half: poppler may repair or refuse; never a crash */
    make_pdf(&pdf, pages, 2, false);
    yan_status st = yan_doc_extract(YAN_DOC_PDF, (const uint8_t *)pdf.data, pdf.len / 2, &d);
    CHECK(st == YAN_OK || st == YAN_ERR_FORMAT);
    yan_doc_free(&d);
    /* a page without text: FORMAT "without a text layer" */
    const char *blank[] = {""};
    make_pdf(&pdf, blank, 1, false);
    CHECK(yan_doc_extract(YAN_DOC_PDF, (const uint8_t *)pdf.data, pdf.len, &d) == YAN_ERR_FORMAT);
    CHECK(strstr(yan_last_error(), "text layer") != NULL);
    yan_doc_free(&d);
    yan_buf_free(&pdf);
}

TEST(kb_text_sniff) {
    bool latin1;
    CHECK(yan_text_sniff((const uint8_t *)"hello\0world", 11, &latin1) == YAN_ERR_FORMAT);
    CHECK(yan_text_sniff((const uint8_t *)"\xff\xfeh\0i\0", 6, &latin1) == YAN_ERR_UNSUPPORTED);
    uint8_t rnd[4096];
    uint64_t s = 7;
    for (size_t i = 0; i < sizeof rnd; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        rnd[i] = (uint8_t)(s >> 56) | 1; /* no NUL: the control-byte share must catch it */
    }
    CHECK(yan_text_sniff(rnd, sizeof rnd, &latin1) == YAN_ERR_FORMAT);
    const char *zh = "中文文本，完全合法。";
    CHECK(yan_text_sniff((const uint8_t *)zh, strlen(zh), &latin1) == YAN_OK && !latin1);
    const char *l1 = "caf\xe9 cr\xe8me br\xfbl\xe9" "e, na\xef" "ve fa\xe7" "ade";
    CHECK(yan_text_sniff((const uint8_t *)l1, strlen(l1), &latin1) == YAN_OK && latin1);
    yan_doc d;
    CHECK(yan_doc_extract(YAN_DOC_TEXT, (const uint8_t *)l1, strlen(l1), &d) == YAN_OK);
    CHECK(strstr(d.text.data, "café crème") != NULL);
    yan_doc_free(&d);
    /* CRLF and a stray invalid byte in otherwise UTF-8 text */
    const char *crlf = "line one\r\nline two \xc3\xa9t\xe9\r\nend";
    CHECK(yan_doc_extract(YAN_DOC_TEXT, (const uint8_t *)crlf, strlen(crlf), &d) == YAN_OK);
    CHECK(valid_utf8(d.text.data, d.text.len));
    CHECK(strstr(d.text.data, "line one\nline two") != NULL);
    yan_doc_free(&d);
    CHECK(yan_doc_extract(YAN_DOC_TEXT, (const uint8_t *)"", 0, &d) == YAN_ERR_FORMAT);
    yan_doc_free(&d);
    CHECK(yan_doc_extract(YAN_DOC_TEXT, (const uint8_t *)" \n\t\n ", 5, &d) == YAN_ERR_FORMAT);
    yan_doc_free(&d);
}

/* ------------------------------------------------------------ database */

typedef struct {
    int n[YAN_KB_FILE_REMOVED + 1];
    char failed[16][256];
    int n_failed;
} file_log;

static void on_file(const char *path, yan_kb_file_result r, yan_status st, const char *detail, void *ud) {
    (void)st;
    file_log *l = ud;
    l->n[r]++;
    if (r == YAN_KB_FILE_FAILED && l->n_failed < 16) {
        const char *b = strrchr(path, '/');
        snprintf(l->failed[l->n_failed++], 256, "%s: %s", b ? b + 1 : path, detail);
    }
}

static bool failed_has(const file_log *l, const char *needle) {
    for (int i = 0; i < l->n_failed; i++)
        if (strstr(l->failed[i], needle)) return true;
    return false;
}

static yan_kb *open_kb(const char *path, const char *model, file_log *log) {
    yan_kb_params p = yan_kb_params_default();
    p.embed_model = model;
    p.chunk_tokens = 64;
    p.chunk_overlap = 8;
    p.n_threads = 2;
    p.on_file = on_file;
    p.file_ud = log;
    yan_kb *kb = NULL;
    yan_status st = yan_kb_open(path, &p, &kb);
    if (st) fprintf(stderr, "  open: %s\n", yan_last_error());
    CHECK(st == YAN_OK);
    return kb;
}

static int add1(yan_kb *kb, const char *path, yan_kb_add_stats *s) {
    yan_status st = yan_kb_add(kb, &path, 1, s);
    if (st) fprintf(stderr, "  add: %s\n", yan_last_error());
    return st;
}

/* rank (1-based) of the first hit whose path ends with name, 0 if none */
static int rank_of(const yan_kb_hit *h, int n, const char *name) {
    size_t l = strlen(name);
    for (int i = 0; i < n; i++) {
        size_t pl = strlen(h[i].path);
        if (pl >= l && !strcmp(h[i].path + pl - l, name)) return i + 1;
    }
    return 0;
}

static int search_rank(yan_kb *kb, const char *q, yan_kb_mode m, int k, const char *name) {
    yan_kb_hit *h = NULL;
    int n = 0;
    yan_status st = yan_kb_search(kb, q, m, k, &h, &n);
    if (st) fprintf(stderr, "  search: %s\n", yan_last_error());
    CHECK(st == YAN_OK);
    int r = rank_of(h, n, name);
    yan_kb_hits_free(h, n);
    return r;
}

static void set_mtime(const char *path, time_t t) {
    struct timespec ts[2] = {{t, 0}, {t, 0}};
    CHECK(utimensat(AT_FDCWD, path, ts, 0) == 0);
}

TEST(kb_add_readd_change_remove) {
    char d[512];
    snprintf(d, sizeof d, "%s", tdir("kb1"));
    write_str(pjoin(d, "a.txt"), "Zebras live in Africa. They have stripes.");
    write_str(pjoin(d, "b.md"), "# Lions\n\nLions are big cats that live in prides.\n");
    mkdir(pjoin(d, "sub"), 0755);
    write_str(pjoin(d, "sub/c.txt"), "Penguins cannot fly but swim very well.");
    write_str(pjoin(d, "sub/d.bin"), "unknown extension");
    write_str(pjoin(d, ".hidden.txt"), "hidden file");
    char db[600];
    snprintf(db, sizeof db, "%s/%s", yan_test_tmp_dir(), "kb1.kb");
    unlink(db);
    file_log log = {0};
    yan_kb *kb = open_kb(db, NULL, &log);
    if (!kb) return;
    yan_kb_add_stats s;
    CHECK(add1(kb, d, &s) == YAN_OK);
    CHECK(s.added == 3 && s.failed == 0 && s.unchanged == 0 && s.skipped == 1);
    CHECK(yan_kb_embed_model(kb) == NULL);
    CHECK(search_rank(kb, "zebras", YAN_KB_BM25, 5, "a.txt") == 1);
    CHECK(search_rank(kb, "hidden", YAN_KB_BM25, 5, "hidden.txt") == 0);
    /* porter stemming: "swimming" finds "swim" */
    CHECK(search_rank(kb, "swimming penguin", YAN_KB_BM25, 5, "c.txt") == 1);
    /* hybrid without a model: BM25; vector: a clear error */
    CHECK(search_rank(kb, "lions", YAN_KB_HYBRID, 5, "b.md") == 1);
    yan_kb_hit *h = NULL;
    int n = 0;
    CHECK(yan_kb_search(kb, "lions", YAN_KB_VECTOR, 5, &h, &n) == YAN_ERR_UNSUPPORTED);
    CHECK(strstr(yan_last_error(), "no embedding model") != NULL);
    /* heading kept with the chunk */
    CHECK(yan_kb_search(kb, "prides", YAN_KB_BM25, 1, &h, &n) == YAN_OK && n == 1);
    if (n == 1) {
        CHECK(h[0].heading && !strcmp(h[0].heading, "Lions"));
        CHECK(h[0].page == 0);
        CHECK(strstr(h[0].text, "prides") != NULL);
        CHECK(h[0].end > h[0].start);
    }
    yan_kb_hits_free(h, n);

    /* unchanged: a no-op */
    CHECK(add1(kb, d, &s) == YAN_OK);
    CHECK(s.unchanged == 3 && s.added == 0 && s.updated == 0 && s.chunks == 0);
    /* touched (same bytes, new time): recognised by the hash */
    set_mtime(pjoin(d, "a.txt"), time(NULL) - 1000);
    CHECK(add1(kb, pjoin(d, "a.txt"), &s) == YAN_OK);
    CHECK(s.unchanged == 1 && s.updated == 0);
    /* changed: re-indexed; the old text is gone */
    write_str(pjoin(d, "a.txt"), "Giraffes have long necks. Nothing about striped animals any more.");
    set_mtime(pjoin(d, "a.txt"), time(NULL) + 5);
    CHECK(add1(kb, d, &s) == YAN_OK);
    CHECK(s.updated == 1 && s.unchanged == 2);
    CHECK(search_rank(kb, "zebras", YAN_KB_BM25, 5, "a.txt") == 0);
    CHECK(search_rank(kb, "giraffes", YAN_KB_BM25, 5, "a.txt") == 1);
    yan_kb_doc *docs;
    int64_t nd;
    CHECK(yan_kb_list(kb, &docs, &nd) == YAN_OK && nd == 3);
    if (nd == 3) {
        CHECK(!strcmp(docs[0].kind, "text") && strstr(docs[0].path, "/kb1/a.txt"));
        CHECK(!strcmp(docs[1].kind, "markdown"));
        CHECK(docs[0].n_chunks >= 1 && docs[0].bytes > 0 && docs[0].mtime > 0);
    }
    yan_kb_docs_free(docs, nd);
    CHECK(yan_kb_check(kb) == YAN_OK);

    /* remove a file (by a relative-looking path too), then a folder */
    CHECK(yan_kb_remove(kb, pjoin(d, "b.md")) == YAN_OK);
    CHECK(yan_kb_remove(kb, pjoin(d, "b.md")) == YAN_ERR_NOT_FOUND);
    CHECK(search_rank(kb, "lions", YAN_KB_BM25, 5, "b.md") == 0);
    CHECK(yan_kb_remove(kb, pjoin(d, "sub")) == YAN_OK);
    CHECK(search_rank(kb, "penguins", YAN_KB_BM25, 5, "c.txt") == 0);
    CHECK(yan_kb_remove(kb, pjoin(d, "nonexistent.txt")) == YAN_ERR_NOT_FOUND);
    CHECK(yan_kb_list(kb, &docs, &nd) == YAN_OK && nd == 1);
    yan_kb_docs_free(docs, nd);
    /* a removed file that still exists is added again */
    CHECK(add1(kb, d, &s) == YAN_OK);
    CHECK(s.added == 2 && s.unchanged == 1);
    CHECK(yan_kb_check(kb) == YAN_OK);
    yan_kb_info info;
    CHECK(yan_kb_info_get(kb, &info) == YAN_OK);
    CHECK(info.documents == 3 && info.chunks >= 3 && info.vectors == 0 && info.chunk_tokens == 64);
    CHECK(!strcmp(info.cjk, "unibigram"));
    /* files deleted from a folder are removed when the folder is added
     * again; a file that exists but no longer reads stays */
    CHECK(unlink(pjoin(d, "sub/c.txt")) == 0);
    CHECK(add1(kb, pjoin(d, "sub"), &s) == YAN_OK);
    CHECK(s.removed == 1 && s.added == 0 && s.unchanged == 0);
    CHECK(search_rank(kb, "penguins", YAN_KB_BM25, 5, "c.txt") == 0);
    CHECK(add1(kb, d, &s) == YAN_OK && s.removed == 0 && s.unchanged == 2);
    CHECK(yan_kb_info_get(kb, &info) == YAN_OK && info.documents == 2);
    CHECK(yan_kb_check(kb) == YAN_OK);
    yan_kb_close(kb);

    /* settings are the knowledge base's: reopening with others keeps them */
    yan_kb_params p = yan_kb_params_default();
    p.chunk_tokens = 500;
    p.must_exist = true;
    CHECK(yan_kb_open(db, &p, &kb) == YAN_OK);
    CHECK(yan_kb_info_get(kb, &info) == YAN_OK && info.chunk_tokens == 64);
    yan_kb_close(kb);
    CHECK(yan_kb_open(pjoin(d, "none.kb"), &p, &kb) == YAN_ERR_NOT_FOUND);
    CHECK(yan_kb_open(pjoin(d, "a.txt"), &p, &kb) == YAN_ERR_FORMAT); /* not SQLite */
    CHECK(strstr(yan_last_error(), "not a knowledge base") != NULL);
    CHECK(yan_kb_open(d, &p, &kb) == YAN_ERR_INVALID_ARG);            /* a folder */
}

TEST(kb_bad_files) {
    char d[512];
    snprintf(d, sizeof d, "%s", tdir("kb_bad"));
    const char *pages[] = {"Valid PDF text about astronomy."};
    yan_buf pdf = {0};
    make_pdf(&pdf, pages, 1, false);
    write_file(pjoin(d, "good.pdf"), pdf.data, pdf.len);
    make_pdf(&pdf, pages, 1, true);
    write_file(pjoin(d, "locked.pdf"), pdf.data, pdf.len);
    write_str(pjoin(d, "broken.pdf"), "%PDF-1.7\ngarbage garbage\n");
    write_file(pjoin(d, "binary.txt"), "\x7f" "ELF\x02\x01\x01\0\0\0\0\0", 12);
    write_str(pjoin(d, "empty.md"), "");
    write_str(pjoin(d, "good.txt"), "A good text file about geology.");
    yan_buf big = {0};
    for (int i = 0; i < 100; i++) yan_buf_puts(&big, "This file is larger than the limit the test sets. ");
    write_str(pjoin(d, "big.txt"), big.data);
    yan_buf_free(&big);
    write_file(pjoin(d, "README"), "\x01\x02\x03\x04\x05\x06", 6); /* binary without extension: skipped */
    yan_buf_free(&pdf);
    char db[600];
    snprintf(db, sizeof db, "%s/%s", yan_test_tmp_dir(), "kb_bad.kb");
    unlink(db);
    file_log log = {0};
    yan_kb_params p = yan_kb_params_default();
    p.max_file_bytes = 4000;
    p.on_file = on_file;
    p.file_ud = &log;
    yan_kb *kb = NULL;
    CHECK(yan_kb_open(db, &p, &kb) == YAN_OK);
    if (!kb) return;
    const char *paths[] = {d, pjoin(d, "missing.txt")};
    yan_kb_add_stats s;
    CHECK(yan_kb_add(kb, paths, 2, &s) == YAN_OK);
    CHECK(s.added == 2);
    CHECK(s.failed == 6);
    CHECK(s.skipped == 1);
    CHECK(failed_has(&log, "locked.pdf: encrypted"));
    CHECK(failed_has(&log, "broken.pdf: damaged"));
    CHECK(failed_has(&log, "binary.txt: binary"));
    CHECK(failed_has(&log, "empty.md: empty"));
    CHECK(failed_has(&log, "big.txt: too large"));
    CHECK(failed_has(&log, "missing.txt: cannot access"));
    CHECK(search_rank(kb, "astronomy", YAN_KB_BM25, 3, "good.pdf") == 1);
    CHECK(search_rank(kb, "geology", YAN_KB_BM25, 3, "good.txt") == 1);
    yan_kb_hit *h;
    int n;
    CHECK(yan_kb_search(kb, "astronomy", YAN_KB_BM25, 3, &h, &n) == YAN_OK && n == 1);
    if (n == 1) CHECK(h[0].page == 1);
    yan_kb_hits_free(h, n);
    CHECK(yan_kb_check(kb) == YAN_OK);
    yan_kb_close(kb);
}

TEST(kb_bm25_ranks) {
    char d[512];
    snprintf(d, sizeof d, "%s", tdir("kb_rank"));
    write_str(pjoin(d, "many.txt"), "Quantum physics. Quantum states are quantum. Quantum computing uses quantum bits.");
    write_str(pjoin(d, "once.txt"), "This long text mentions quantum only once among many other words about "
                                    "cooking recipes, gardening tips, and the weather in spring and autumn.");
    write_str(pjoin(d, "none.txt"), "Nothing relevant here at all.");
    char db[600];
    snprintf(db, sizeof db, "%s/%s", yan_test_tmp_dir(), "kb_rank.kb");
    unlink(db);
    file_log log = {0};
    yan_kb *kb = open_kb(db, NULL, &log);
    if (!kb) return;
    yan_kb_add_stats s;
    CHECK(add1(kb, d, &s) == YAN_OK && s.added == 3);
    yan_kb_hit *h;
    int n;
    CHECK(yan_kb_search(kb, "quantum", YAN_KB_BM25, 10, &h, &n) == YAN_OK);
    CHECK(n == 2);
    CHECK(rank_of(h, n, "many.txt") == 1 && rank_of(h, n, "once.txt") == 2);
    if (n == 2) CHECK(h[0].score > h[1].score && h[1].score > 0);
    yan_kb_hits_free(h, n);
    /* k cuts the list; an empty or punctuation-only query finds nothing */
    CHECK(yan_kb_search(kb, "quantum", YAN_KB_BM25, 1, &h, &n) == YAN_OK && n == 1);
    yan_kb_hits_free(h, n);
    CHECK(yan_kb_search(kb, "?!", YAN_KB_BM25, 5, &h, &n) == YAN_OK && n == 0);
    yan_kb_hits_free(h, n);
    /* FTS5 syntax in the query is taken as words */
    CHECK(yan_kb_search(kb, "quantum AND NOT \"(", YAN_KB_BM25, 5, &h, &n) == YAN_OK && n >= 2);
    yan_kb_hits_free(h, n);
    CHECK(yan_kb_search(kb, "quantum", YAN_KB_BM25, 0, &h, &n) == YAN_ERR_INVALID_ARG);
    yan_kb_close(kb);
}

TEST(kb_rrf_fuse) {
    yan_kb_hit a[3] = {{.chunk_id = 1, .path = "p1", .text = "t1"},
                       {.chunk_id = 2, .path = "p2", .text = "t2"},
                       {.chunk_id = 3, .path = "p3", .text = "t3"}};
    yan_kb_hit b[2] = {{.chunk_id = 3, .path = "p3", .text = "t3"}, {.chunk_id = 1, .path = "p1", .text = "t1"}};
    yan_kb_hit *const lists[2] = {a, b};
    const int lens[2] = {3, 2};
    yan_kb_hit *h;
    int n;
    CHECK(yan_kb_fuse(lists, lens, 2, 10, &h, &n) == YAN_OK);
    CHECK(n == 3);
    if (n == 3) {
        /* 1: 1/61 + 1/62; 3: 1/63 + 1/61; 2: 1/62 */
        CHECK(h[0].chunk_id == 1 && h[1].chunk_id == 3 && h[2].chunk_id == 2);
        CHECK_NEAR(h[0].score, 1.0 / 61 + 1.0 / 62, 1e-7);
        CHECK_NEAR(h[1].score, 1.0 / 63 + 1.0 / 61, 1e-7);
        CHECK_NEAR(h[2].score, 1.0 / 62, 1e-7);
        CHECK(!strcmp(h[1].path, "p3") && h[1].path != b[0].path); /* copied */
    }
    yan_kb_hits_free(h, n);
    /* top k; ties broken by the best rank */
    yan_kb_hit c[1] = {{.chunk_id = 9, .path = "p9", .text = "t9"}};
    yan_kb_hit d[1] = {{.chunk_id = 8, .path = "p8", .text = "t8"}};
    yan_kb_hit *const l2[2] = {c, d};
    const int n2[2] = {1, 1};
    CHECK(yan_kb_fuse(l2, n2, 2, 1, &h, &n) == YAN_OK && n == 1);
    if (n == 1) CHECK(h[0].chunk_id == 8 && fabs(h[0].score - 1.0 / 61) < 1e-7);
    yan_kb_hits_free(h, n);
    CHECK(yan_kb_fuse(NULL, NULL, 0, 5, &h, &n) == YAN_OK && n == 0);
    yan_kb_hits_free(h, n);
    /* the same chunk twice in one list counts once */
    yan_kb_hit e[2] = {{.chunk_id = 5, .path = "p", .text = "t"}, {.chunk_id = 5, .path = "p", .text = "t"}};
    yan_kb_hit *const l3[1] = {e};
    const int n3[1] = {2};
    CHECK(yan_kb_fuse(l3, n3, 1, 5, &h, &n) == YAN_OK && n == 1);
    if (n == 1) CHECK_NEAR(h[0].score, 1.0 / 61, 1e-7);
    yan_kb_hits_free(h, n);
}

/* ---------------------------------------------------------- vectors */

static const char *kb_model(void) {
    static char path[600];
    if (!path[0]) {
        snprintf(path, sizeof path, "%s", tmp_path("kb_embed.gguf"));
        spec s = base_spec("llama");
        s.ctx_train = 128;
        wmodel w;
        write_model(&s, &w, path);
        wmodel_free(&w);
    }
    return path;
}

static const char *kb_model2(void) {
    static char path[600];
    if (!path[0]) {
        snprintf(path, sizeof path, "%s", tmp_path("kb_embed2.gguf"));
        spec s = base_spec("qwen2");
        s.ctx_train = 128;
        wmodel w;
        write_model(&s, &w, path);
        wmodel_free(&w);
    }
    return path;
}

/* n small documents with varied words */
static void make_corpus(const char *d, int n, uint64_t seed) {
    static const char *const W[] = {"river", "mountain", "engine", "piano", "orbit", "garden", "winter", "copper",
                                    "violin", "desert", "harbor", "signal", "forest", "planet", "bridge", "candle",
                                    "lantern", "meadow", "canyon", "glacier", "thunder", "marble", "silver", "falcon"};
    for (int i = 0; i < n; i++) {
        char name[64], text[512];
        snprintf(name, sizeof name, "doc%03d.txt", i);
        int len = 0;
        for (int w = 0; w < 12; w++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            len += snprintf(text + len, sizeof text - (size_t)len, "%s%s", w ? " " : "", W[(seed >> 33) % 24]);
        }
        snprintf(text + len, sizeof text - (size_t)len, " number %d.", i);
        write_str(pjoin(d, name), text);
    }
}

TEST(kb_vector_hnsw_vs_exact) {
    char d[512];
    snprintf(d, sizeof d, "%s", tdir("kb_vec"));
    make_corpus(d, 300, 1);
    char db[600];
    snprintf(db, sizeof db, "%s/%s", yan_test_tmp_dir(), "kb_vec.kb");
    unlink(db);
    char idx[700];
    snprintf(idx, sizeof idx, "%s.hnsw", db);
    unlink(idx);
    file_log log = {0};
    yan_kb *kb = open_kb(db, kb_model(), &log);
    if (!kb) return;
    CHECK(yan_kb_embed_model(kb) != NULL);
    yan_kb_add_stats s;
    CHECK(add1(kb, d, &s) == YAN_OK);
    CHECK(s.added == 300 && s.embedded == s.chunks && s.chunks >= 300);
    struct stat sb;
    CHECK(stat(idx, &sb) == 0); /* saved beside the database */
    const char *queries[] = {"river mountain", "piano violin", "orbit planet", "winter glacier", "silver falcon",
                             "harbor bridge", "candle lantern", "copper engine", "thunder canyon", "meadow forest"};
    int hit = 0, total = 0;
    for (int q = 0; q < 10; q++) {
        yan_kb_hit *a = NULL, *b = NULL;
        int na = 0, nb = 0;
        CHECK(yan_kb_search(kb, queries[q], YAN_KB_VECTOR, 10, &a, &na) == YAN_OK);
        CHECK(yan_kb_search_exact(kb, queries[q], 10, &b, &nb) == YAN_OK);
        CHECK(na == 10 && nb == 10);
        for (int i = 0; i < nb; i++) {
            total++;
            for (int j = 0; j < na; j++)
                if (a[j].chunk_id == b[i].chunk_id) {
                    hit++;
                    break;
                }
        }
        if (na && nb) CHECK_NEAR(a[0].score, b[0].score, 1e-3); /* cosine either way */
        for (int i = 1; i < na; i++) CHECK(a[i].score <= a[i - 1].score + 1e-6f);
        yan_kb_hits_free(a, na);
        yan_kb_hits_free(b, nb);
    }
    printf("  HNSW recall@10 against the exhaustive scan: %d/%d\n", hit, total);
    CHECK(hit * 100 >= total * 95);
    /* hybrid: fused scores are RRF sums, at most 2/61 */
    yan_kb_hit *h;
    int n;
    CHECK(yan_kb_search(kb, "river number 7", YAN_KB_HYBRID, 5, &h, &n) == YAN_OK && n == 5);
    for (int i = 0; i < n; i++) CHECK(h[i].score > 0 && h[i].score <= 2.0f / 61 + 1e-6f);
    yan_kb_hits_free(h, n);
    /* deletes: a removed document is never returned */
    CHECK(yan_kb_remove(kb, pjoin(d, "doc000.txt")) == YAN_OK);
    for (int q = 0; q < 10; q++) {
        CHECK(yan_kb_search(kb, queries[q], YAN_KB_VECTOR, 50, &h, &n) == YAN_OK);
        CHECK(rank_of(h, n, "doc000.txt") == 0);
        yan_kb_hits_free(h, n);
    }
    CHECK(yan_kb_check(kb) == YAN_OK);
    yan_kb_close(kb);
}

static void index_search_ok(const char *db, const char *idx, const char *what) {
    file_log log = {0};
    yan_kb *kb = open_kb(db, NULL, &log);
    if (!kb) return;
    yan_kb_hit *h;
    int n;
    yan_status st = yan_kb_search(kb, "piano violin", YAN_KB_VECTOR, 5, &h, &n);
    if (st || n != 5) fprintf(stderr, "  %s: %s\n", what, yan_last_error());
    CHECK(st == YAN_OK && n == 5);
    yan_kb_hits_free(h, n);
    yan_kb_close(kb);
    struct stat sb;
    CHECK(stat(idx, &sb) == 0 && sb.st_size > 100); /* written again */
}

TEST(kb_index_rebuilt) {
    char d[512];
    snprintf(d, sizeof d, "%s", tdir("kb_idx"));
    make_corpus(d, 40, 2);
    char db[600];
    snprintf(db, sizeof db, "%s/%s", yan_test_tmp_dir(), "kb_idx.kb");
    char idx[700], saved[720];
    snprintf(idx, sizeof idx, "%s.hnsw", db);
    snprintf(saved, sizeof saved, "%s.old", idx);
    unlink(db);
    unlink(idx);
    file_log log = {0};
    yan_kb *kb = open_kb(db, kb_model(), &log);
    if (!kb) return;
    yan_kb_add_stats s;
    CHECK(add1(kb, d, &s) == YAN_OK && s.added == 40);
    yan_kb_close(kb);
    /* keep a copy of this (soon stale) index */
    size_t len;
    uint8_t *bytes;
    CHECK(yan_read_file(idx, &bytes, &len) == YAN_OK);
    write_file(saved, (const char *)bytes, len);
    /* missing */
    unlink(idx);
    index_search_ok(db, idx, "missing");
    /* damaged: one byte flipped in the middle, then truncated */
    uint8_t *b2;
    size_t l2;
    CHECK(yan_read_file(idx, &b2, &l2) == YAN_OK);
    b2[l2 / 2] ^= 0x40;
    write_file(idx, (const char *)b2, l2);
    index_search_ok(db, idx, "flipped");
    write_file(idx, (const char *)b2, l2 / 3);
    index_search_ok(db, idx, "truncated");
    yan_free(b2);
    /* stale: more documents, then the old index put back */
    make_corpus(d, 45, 2); /* doc040..doc044 are new; the others rewritten unchanged */
    kb = open_kb(db, NULL, &log);
    CHECK(add1(kb, d, &s) == YAN_OK && s.added == 5 && s.unchanged == 40);
    yan_kb_close(kb);
    write_file(idx, (const char *)bytes, len);
    kb = open_kb(db, NULL, &log);
    yan_kb_hit *h;
    int n;
    /* the new documents are found by vector search: the stale index was rebuilt */
    int found = 0;
    for (int i = 40; i < 45; i++) {
        char q[64];
        snprintf(q, sizeof q, "number %d.", i);
        CHECK(yan_kb_search(kb, q, YAN_KB_VECTOR, 1000, &h, &n) == YAN_OK);
        char name[32];
        snprintf(name, sizeof name, "doc%03d.txt", i);
        found += rank_of(h, n, name) > 0;
        yan_kb_hits_free(h, n);
    }
    CHECK(found == 5);
    yan_kb_close(kb);
    yan_free(bytes);
}

TEST(kb_model_attach_and_mismatch) {
    char d[512];
    snprintf(d, sizeof d, "%s", tdir("kb_attach"));
    make_corpus(d, 12, 3);
    char db[600];
    snprintf(db, sizeof db, "%s/%s", yan_test_tmp_dir(), "kb_attach.kb");
    unlink(db);
    file_log log = {0};
    yan_kb *kb = open_kb(db, NULL, &log);
    if (!kb) return;
    yan_kb_add_stats s;
    CHECK(add1(kb, d, &s) == YAN_OK && s.added == 12 && s.embedded == 0);
    yan_kb_close(kb);
    /* attach a model: the next add embeds every chunk */
    kb = open_kb(db, kb_model(), &log);
    CHECK(add1(kb, d, &s) == YAN_OK);
    CHECK(s.unchanged == 12 && s.embedded >= 12);
    yan_kb_info info;
    CHECK(yan_kb_info_get(kb, &info) == YAN_OK && info.vectors == info.chunks && info.embed_dim == 64);
    CHECK(search_rank(kb, "number 3.", YAN_KB_VECTOR, 12, "doc003.txt") > 0);
    yan_kb_close(kb);
    /* another model is refused */
    yan_kb_params p = yan_kb_params_default();
    p.embed_model = kb_model2();
    CHECK(yan_kb_open(db, &p, &kb) == YAN_ERR_INVALID_ARG);
    CHECK(strstr(yan_last_error(), "not be comparable") != NULL);
    /* the recorded model disappears: BM25 still works, vector says why */
    char moved[700];
    snprintf(moved, sizeof moved, "%s.moved", kb_model());
    CHECK(rename(kb_model(), moved) == 0);
    kb = open_kb(db, NULL, &log);
    CHECK(search_rank(kb, "number", YAN_KB_HYBRID, 3, ".txt") > 0);
    yan_kb_hit *h;
    int n;
    CHECK(yan_kb_search(kb, "number", YAN_KB_VECTOR, 3, &h, &n) == YAN_ERR_UNSUPPORTED);
    CHECK(strstr(yan_last_error(), "cannot be loaded") != NULL);
    yan_kb_close(kb);
    CHECK(rename(moved, kb_model()) == 0);
    /* the same model under another path is accepted (and recorded) */
    snprintf(moved, sizeof moved, "%s/copy.gguf", d);
    uint8_t *mb;
    size_t ml;
    CHECK(yan_read_file(kb_model(), &mb, &ml) == YAN_OK);
    write_file(moved, (const char *)mb, ml);
    yan_free(mb);
    p.embed_model = moved;
    CHECK(yan_kb_open(db, &p, &kb) == YAN_OK);
    CHECK(kb && strstr(yan_kb_embed_model(kb), "copy.gguf") != NULL);
    yan_kb_close(kb);
}

static bool abort_after(const yan_kb_progress *pr, void *ud) {
    int *calls = ud;
    (void)pr;
    return ++*calls < 5;
}

TEST(kb_abort_and_resume) {
    char d[512];
    snprintf(d, sizeof d, "%s", tdir("kb_abort"));
    make_corpus(d, 30, 4);
    char db[600];
    snprintf(db, sizeof db, "%s/%s", yan_test_tmp_dir(), "kb_abort.kb");
    unlink(db);
    int calls = 0;
    yan_kb_params p = yan_kb_params_default();
    p.on_progress = abort_after;
    p.progress_ud = &calls;
    p.n_threads = 1;
    yan_kb *kb = NULL;
    CHECK(yan_kb_open(db, &p, &kb) == YAN_OK);
    yan_kb_add_stats s;
    CHECK(add1(kb, d, &s) == YAN_ERR_ABORTED);
    CHECK(s.added >= 1 && s.added < 30);
    int64_t first = s.added;
    CHECK(yan_kb_check(kb) == YAN_OK);
    yan_kb_close(kb);
    file_log log = {0};
    kb = open_kb(db, NULL, &log);
    CHECK(add1(kb, d, &s) == YAN_OK);
    CHECK(s.unchanged == first && s.added == 30 - first);
    CHECK(yan_kb_check(kb) == YAN_OK);
    yan_kb_close(kb);
}

/* ------------------------------------------------------- concurrency */

typedef struct {
    const char *db;
    volatile int stop;
    int searches, errors, inconsistent;
} reader_ctx;

static void *reader(void *ud) {
    reader_ctx *r = ud;
    yan_kb_params p = yan_kb_params_default();
    p.must_exist = true;
    yan_kb *kb = NULL;
    if (yan_kb_open(r->db, &p, &kb)) {
        r->errors++;
        return NULL;
    }
    while (!r->stop) {
        yan_kb_hit *h;
        int n;
        if (yan_kb_search(kb, "everywhere", YAN_KB_BM25, 1000, &h, &n)) {
            r->errors++;
            continue;
        }
        /* each document has exactly two chunks, each saying "everywhere":
         * a reader sees both or neither */
        for (int i = 0; i < n; i++) {
            int same = 0;
            for (int j = 0; j < n; j++) same += h[j].doc_id == h[i].doc_id;
            if (same != 2) r->inconsistent++;
        }
        yan_kb_hits_free(h, n);
        r->searches++;
    }
    yan_kb_close(kb);
    return NULL;
}

TEST(kb_reader_during_ingest) {
    char d[512];
    snprintf(d, sizeof d, "%s", tdir("kb_conc"));
    for (int i = 0; i < 150; i++) {
        char name[32], text[600];
        snprintf(name, sizeof name, "f%03d.txt", i);
        snprintf(text, sizeof text,
                 "First paragraph of file %d says everywhere once and has quite a few more words to fill it up well.\n\n"
                 "Second paragraph of file %d says everywhere again, with more words after it to make it long.", i, i);
        write_str(pjoin(d, name), text);
    }
    char db[600];
    snprintf(db, sizeof db, "%s/%s", yan_test_tmp_dir(), "kb_conc.kb");
    unlink(db);
    yan_kb_params p = yan_kb_params_default();
    p.chunk_tokens = 40;
    p.chunk_overlap = 0;
    yan_kb *kb = NULL;
    CHECK(yan_kb_open(db, &p, &kb) == YAN_OK);
    if (!kb) return;
    reader_ctx r = {.db = db};
    pthread_t th;
    pthread_create(&th, NULL, reader, &r);
    yan_kb_add_stats s;
    CHECK(add1(kb, d, &s) == YAN_OK && s.added == 150 && s.chunks == 300);
    r.stop = 1;
    pthread_join(th, NULL);
    printf("  reader: %d searches during the ingest, %d errors, %d inconsistent\n", r.searches, r.errors,
           r.inconsistent);
    CHECK(r.errors == 0 && r.inconsistent == 0 && r.searches > 0);
    yan_kb_close(kb);
}

/* ----------------------------------------------- Chinese BM25 measurement */

/* Open-addressing counts of n-grams (up to 3 code points packed in 63 bits):
 * in how many documents each occurs. */
typedef struct {
    uint64_t *key;
    uint32_t *df, *last;
    size_t cap;
} ngram_df;

static void df_add(ngram_df *t, uint64_t k, uint32_t doc) {
    size_t i = (size_t)(yan_hash_u64(k) & (t->cap - 1));
    while (t->key[i] && t->key[i] != k) i = (i + 1) & (t->cap - 1);
    if (!t->key[i]) t->key[i] = k;
    if (t->last[i] != doc + 1) t->df[i]++, t->last[i] = doc + 1;
}

static uint32_t df_get(const ngram_df *t, uint64_t k) {
    size_t i = (size_t)(yan_hash_u64(k) & (t->cap - 1));
    while (t->key[i] && t->key[i] != k) i = (i + 1) & (t->cap - 1);
    return t->key[i] ? t->df[i] : 0;
}

typedef struct {
    int32_t *cp;   /* the document's CJK characters in order; -1 between runs */
    int n;
} cjk_seq;

static cjk_seq cjk_of(const char *s) {
    cjk_seq q = {yan_malloc((strlen(s) + 1) * sizeof(int32_t)), 0};
    for (size_t i = 0; s[i];) {
        int32_t cp;
        int l = yan_utf8_decode((const uint8_t *)s + i, strlen(s + i), &cp);
        if (yan_is_cjk(cp)) q.cp[q.n++] = cp;
        else if (q.n && q.cp[q.n - 1] != -1) q.cp[q.n++] = -1;
        i += (size_t)l;
    }
    return q;
}

static uint64_t key_of(const int32_t *cp, int n) {
    uint64_t k = (uint64_t)n << 62;
    for (int i = 0; i < n; i++) k |= (uint64_t)(uint32_t)cp[i] << (21 * i);
    return k;
}

static void put_cps(yan_buf *b, const int32_t *cp, int n) {
    for (int i = 0; i < n; i++) {
        uint8_t u[4];
        yan_buf_append(b, u, (size_t)yan_utf8_encode((uint32_t)cp[i], u));
    }
}

/* A random n-gram of the document (within one run) occurring in at most
 * max_df documents (the rarest of 12 tries); false when none. */
static bool pick(const cjk_seq *q, const ngram_df *df, int len, uint32_t max_df, uint64_t *rng, int32_t *out) {
    uint32_t best = UINT32_MAX;
    for (int t = 0; t < 12; t++) {
        *rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
        if (q->n < len) return false;
        int at = (int)((*rng >> 33) % (uint64_t)(q->n - len + 1));
        bool ok = true;
        for (int i = 0; i < len; i++) ok = ok && q->cp[at + i] >= 0;
        if (!ok) continue;
        uint32_t f = df_get(df, key_of(q->cp + at, len));
        if (f < best) {
            best = f;
            memcpy(out, q->cp + at, (size_t)len * sizeof *out);
        }
    }
    return best <= max_df;
}

static void strip_ansi(char *s) {
    char *w = s;
    for (char *r = s; *r;) {
        if (r[0] == 0x1b && r[1] == '[') {
            r += 2;
            while (*r && !((*r >= 'A' && *r <= 'Z') || (*r >= 'a' && *r <= 'z'))) r++;
            if (*r) r++;
            continue;
        }
        *w++ = *r++;
    }
    *w = 0;
}

enum { QT_WORD, QT_TERM3, QT_PHRASE4, QT_TWO, QT_QUESTION, QT_N };
static const char *const QT_NAME[QT_N] = {"word2", "term3", "phrase4", "2words", "question"};

TEST(kb_cjk_recall) {
    const char *files[] = {"/usr/share/games/fortunes/tang300", "/usr/share/games/fortunes/song100",
                           "/usr/share/games/fortunes/chinese"};
    struct stat sb;
    if (stat(files[2], &sb) != 0) {
        printf("  SKIP: fortunes-zh is not installed (scripts/deps.sh test)\n");
        return;
    }
    /* documents: every poem, and every EVERY-th entry of the prose collection;
     * YAN_KB_CJK_EVERY and YAN_KB_CJK_TARGETS make the set larger (the numbers
     * in docs/RAG.md are from EVERY=1, TARGETS=400) */
    const char *ev = getenv("YAN_KB_CJK_EVERY"), *tg = getenv("YAN_KB_CJK_TARGETS");
    int every = ev ? atoi(ev) : 4, targets = tg ? atoi(tg) : 100;
    if (every < 1) every = 1;
    if (targets < 10 || targets > 1000) targets = 100;
    char d[512];
    snprintf(d, sizeof d, "%s", tdir("kb_cjk"));
    char **docs = yan_calloc(8000, sizeof *docs);
    if (!docs) return;
    int nd = 0;
    for (int f = 0; f < 3; f++) {
        uint8_t *data;
        size_t len;
        if (yan_read_file(files[f], &data, &len)) continue;
        int entry = 0;
        for (char *p = (char *)data; *p && nd < 8000;) {
            char *e = strstr(p, "\n%\n");
            if (e) *e = 0;
            if (f < 2 || entry % every == 0) {
                strip_ansi(p);
                cjk_seq q = cjk_of(p);
                if (q.n >= 24) docs[nd++] = yan_strdup(p);
                yan_free(q.cp);
            }
            entry++;
            if (!e) break;
            p = e + 3;
        }
        yan_free(data);
    }
    for (int i = 0; i < nd; i++) {
        char name[32];
        snprintf(name, sizeof name, "d%04d.txt", i);
        write_str(pjoin(d, name), docs[i]);
    }
    /* document frequencies of bigrams and trigrams */
    ngram_df df = {.cap = (size_t)1 << 22};
    df.key = yan_calloc(df.cap, sizeof *df.key);
    df.df = yan_calloc(df.cap, sizeof *df.df);
    df.last = yan_calloc(df.cap, sizeof *df.last);
    for (int i = 0; i < nd; i++) {
        cjk_seq q = cjk_of(docs[i]);
        for (int len = 2; len <= 3; len++)
            for (int a = 0; a + len <= q.n; a++) {
                bool ok = true;
                for (int k = 0; k < len; k++) ok = ok && q.cp[a + k] >= 0;
                if (ok) df_add(&df, key_of(q.cp + a, len), (uint32_t)i);
            }
        yan_free(q.cp);
    }
    /* queries: per target document, one of each type */
    enum { TARGETS = 1000 };
    static char *qs[TARGETS][QT_N];
    static int tgt[TARGETS];
    uint64_t rng = 12345;
    int nt = 0;
    for (int tries = 0; nt < targets && tries < 50000; tries++) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        int t = (int)((rng >> 33) % (uint64_t)nd);
        cjk_seq q = cjk_of(docs[t]);
        int32_t w1[4], w2[4], t3[4], p4[4];
        bool ok = pick(&q, &df, 2, 20, &rng, w1) && pick(&q, &df, 2, 20, &rng, w2) && pick(&q, &df, 3, 10, &rng, t3) &&
                  pick(&q, &df, 4, 1000000, &rng, p4) && memcmp(w1, w2, sizeof(int32_t) * 2) != 0;
        if (ok) {
            yan_buf b[QT_N] = {{0}};
            put_cps(&b[QT_WORD], w1, 2);
            put_cps(&b[QT_TERM3], t3, 3);
            put_cps(&b[QT_PHRASE4], p4, 4);
            put_cps(&b[QT_TWO], w1, 2), yan_buf_putc(&b[QT_TWO], ' '), put_cps(&b[QT_TWO], w2, 2);
            yan_buf_puts(&b[QT_QUESTION], "请问");
            put_cps(&b[QT_QUESTION], w1, 2);
            yan_buf_puts(&b[QT_QUESTION], "和");
            put_cps(&b[QT_QUESTION], w2, 2);
            yan_buf_puts(&b[QT_QUESTION], "有什么关系？");
            for (int k = 0; k < QT_N; k++) qs[nt][k] = b[k].data;
            tgt[nt++] = t;
        }
        yan_free(q.cp);
    }
    printf("  Chinese BM25: %d documents, %d targets x %d query types; recall@5 per type, all, MRR@10\n", nd, nt,
           QT_N);
    printf("  %-10s %6s %6s %7s %6s %8s %6s %6s %8s %7s %8s\n", "mode", QT_NAME[0], QT_NAME[1], QT_NAME[2], QT_NAME[3],
           QT_NAME[4], "all", "MRR", "db MiB", "add s", "query ms");
    double all_recall[4] = {0};
    for (int mode = 0; mode < 4; mode++) {
        char db[700];
        snprintf(db, sizeof db, "%s/kb_cjk_%d.kb", yan_test_tmp_dir(), mode);
        unlink(db);
        yan_kb_params p = yan_kb_params_default();
        p.cjk = yan_seg_mode_name((yan_seg_mode)mode);
        p.n_threads = 2;
        yan_kb *kb = NULL;
        CHECK(yan_kb_open(db, &p, &kb) == YAN_OK);
        if (!kb) continue;
        struct timespec t0, t1, t2;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        yan_kb_add_stats s;
        CHECK(add1(kb, d, &s) == YAN_OK && s.added == nd);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        int found[QT_N] = {0};
        double mrr = 0;
        for (int i = 0; i < nt; i++) {
            char name[32];
            snprintf(name, sizeof name, "d%04d.txt", tgt[i]);
            for (int k = 0; k < QT_N; k++) {
                int r = search_rank(kb, qs[i][k], YAN_KB_BM25, 10, name);
                if (r >= 1 && r <= 5) found[k]++;
                if (r) mrr += 1.0 / r;
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &t2);
        yan_kb_close(kb);
        stat(db, &sb);
        int total = 0;
        for (int k = 0; k < QT_N; k++) total += found[k];
        all_recall[mode] = (double)total / (nt * QT_N);
        printf("  %-10s", yan_seg_mode_name((yan_seg_mode)mode));
        for (int k = 0; k < QT_N; k++) printf(" %*.3f", k == 2 ? 7 : k == 4 ? 8 : 6, (double)found[k] / nt);
        printf(" %6.3f %6.3f %8.1f %7.2f %8.3f\n", all_recall[mode], mrr / (nt * QT_N), (double)sb.st_size / 1048576.0,
               (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9,
               ((double)(t2.tv_sec - t1.tv_sec) * 1e3 + (double)(t2.tv_nsec - t1.tv_nsec) * 1e-6) / (nt * QT_N));
    }
    /* the default must be the best measured, within noise */
    for (int m = 0; m < 4; m++) CHECK(all_recall[YAN_SEG_DEFAULT] >= all_recall[m] - 0.01);
    for (int i = 0; i < nt; i++)
        for (int k = 0; k < QT_N; k++) yan_free(qs[i][k]);
    for (int i = 0; i < nd; i++) yan_free(docs[i]);
    yan_free(docs);
    yan_free(df.key);
    yan_free(df.df);
    yan_free(df.last);
}
