/* ingest.c — text extraction for the knowledge base: plain text (binary
 * detection, UTF-8 repair, Latin-1 fallback), Markdown (ATX and setext
 * headings become sections; fenced code is not mistaken for headings), HTML
 * (libxml2's forgiving HTML parser; script, style, noscript, template, svg
 * and the like dropped; h1..h6 become sections; block elements become line
 * and paragraph breaks) and PDF (poppler-glib; one section per page).
 *
 * What it deliberately does not do: OCR (a PDF without a text layer is an
 * error), decrypt PDFs (a password-protected PDF is an error), convert
 * UTF-16, or strip Markdown markup (the source is what gets indexed, so the
 * chunk offsets are offsets in the file's own text).
 *
 * Dependencies: libxml2 (HTML), poppler-glib (PDF), base (buffers, UTF-8). */
#include "rag/ingest.h"

#include <ctype.h>
#include <pthread.h>
#include <strings.h>

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <poppler.h>

/* ------------------------------------------------------------ basics */

const char *yan_doc_kind_name(yan_doc_kind k) {
    switch (k) {
    case YAN_DOC_TEXT: return "text";
    case YAN_DOC_MARKDOWN: return "markdown";
    case YAN_DOC_HTML: return "html";
    case YAN_DOC_PDF: return "pdf";
    }
    return "text";
}

static const char *const TEXT_EXT[] = {"txt", "text", "rst", "adoc", "asciidoc", "org", "tex", "csv", "tsv",
                                       "log", "json", "jsonl", "yaml", "yml", "toml", "ini", "cfg", "conf",
                                       "c", "h", "cc", "cpp", "hpp", "py", "sh", "js", "ts", "go", "rs",
                                       "java", "rb", "pl", "lua", "sql", "xml", "srt", "vtt", NULL};

yan_doc_kind yan_doc_kind_of(const char *path, yan_kind_how *how) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    *how = YAN_KIND_KNOWN;
    if (!dot || dot == base || !dot[1]) {
        *how = YAN_KIND_NOEXT;
        return YAN_DOC_TEXT;
    }
    const char *e = dot + 1;
    if (!strcasecmp(e, "pdf")) return YAN_DOC_PDF;
    if (!strcasecmp(e, "html") || !strcasecmp(e, "htm") || !strcasecmp(e, "xhtml")) return YAN_DOC_HTML;
    if (!strcasecmp(e, "md") || !strcasecmp(e, "markdown") || !strcasecmp(e, "mdown") || !strcasecmp(e, "mkd"))
        return YAN_DOC_MARKDOWN;
    for (int i = 0; TEXT_EXT[i]; i++)
        if (!strcasecmp(e, TEXT_EXT[i])) return YAN_DOC_TEXT;
    *how = YAN_KIND_UNKNOWN;
    return YAN_DOC_TEXT;
}

void yan_doc_free(yan_doc *d) {
    if (!d) return;
    yan_buf_free(&d->text);
    for (size_t i = 0; i < d->n_sec; i++) yan_free(d->sec[i].heading);
    yan_free(d->sec);
    memset(d, 0, sizeof *d);
}

/* Start a section at the current end of the text. A section that would
 * begin where the previous one begins replaces it (an empty section). */
static bool add_section(yan_doc *d, int32_t page, const char *heading) {
    size_t at = d->text.len;
    char *h = NULL;
    if (heading && heading[0] && !(h = yan_strdup(heading))) return false;
    if (d->n_sec && d->sec[d->n_sec - 1].start == at) {
        yan_free(d->sec[d->n_sec - 1].heading);
        d->sec[d->n_sec - 1].heading = h;
        d->sec[d->n_sec - 1].page = page;
        return true;
    }
    if (d->n_sec == d->cap_sec) {
        size_t cap = d->cap_sec ? d->cap_sec * 2 : 8;
        yan_doc_section *ns = yan_realloc(d->sec, cap * sizeof *ns);
        if (!ns) {
            yan_free(h);
            return false;
        }
        d->sec = ns;
        d->cap_sec = cap;
    }
    d->sec[d->n_sec++] = (yan_doc_section){at, page, h};
    return true;
}

/* ------------------------------------------------------------- text */

#define SNIFF_BYTES 65536

yan_status yan_text_sniff(const uint8_t *s, size_t n, bool *latin1) {
    *latin1 = false;
    if (n >= 2 && ((s[0] == 0xFF && s[1] == 0xFE) || (s[0] == 0xFE && s[1] == 0xFF)))
        return yan_fail(YAN_ERR_UNSUPPORTED, "UTF-16 text is not supported (convert it to UTF-8)");
    size_t m = n < SNIFF_BYTES ? n : SNIFF_BYTES;
    if (memchr(s, 0, m)) return yan_fail(YAN_ERR_FORMAT, "binary file (contains NUL bytes)");
    size_t invalid = 0, control = 0, chars = 0;
    for (size_t i = 0; i < m;) {
        int32_t cp;
        int l = yan_utf8_decode(s + i, m - i, &cp);
        if (cp < 0) {
            /* a sequence cut by the sniff window is not invalid */
            if (i + 4 > m && yan_utf8_complete_prefix(s + i, m - i) == 0) break;
            invalid++;
            if (s[i] < 0xA0) control++; /* C1 range: rare in Latin-1 text too */
        } else if (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r' && cp != '\f' && cp != '\v' && cp != 0x1B) {
            control++;
        }
        chars++;
        i += (size_t)l;
    }
    if (chars == 0) return YAN_OK;
    if (control * 100 > chars)
        return yan_fail(YAN_ERR_FORMAT, "binary file (%zu%% of the first %zu bytes are control bytes)",
                        control * 100 / chars, m);
    if (invalid * 100 > chars) *latin1 = true; /* not UTF-8; printable bytes: read as Latin-1 */
    return YAN_OK;
}

/* Append n bytes of text, cleaned: invalid UTF-8 becomes U+FFFD (or, with
 * latin1, each byte its Latin-1 character), "\r\n" and "\r" become "\n",
 * other control characters a space, NUL is dropped. */
static bool append_clean(yan_buf *b, const uint8_t *s, size_t n, bool latin1) {
    if (!yan_buf_reserve(b, n + n / 8 + 16)) return false;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && s[j] >= 0x20 && s[j] < 0x80) j++; /* plain ASCII run */
        if (j > i && !yan_buf_append(b, s + i, j - i)) return false;
        i = j;
        if (i >= n) break;
        uint8_t c = s[i];
        if (c < 0x80) {
            if (c == '\r') {
                if (!yan_buf_putc(b, '\n')) return false;
                i += (i + 1 < n && s[i + 1] == '\n') ? 2 : 1;
                continue;
            }
            if (c == '\n' || c == '\t') {
                if (!yan_buf_putc(b, (char)c)) return false;
            } else if (c == '\f') {
                if (!yan_buf_puts(b, "\n\n")) return false;
            } else if (c != 0 && c != 0x7F && !yan_buf_putc(b, ' ')) {
                return false;
            }
            i++;
            continue;
        }
        int32_t cp;
        int l = latin1 ? 1 : yan_utf8_decode(s + i, n - i, &cp);
        if (latin1) cp = c;
        uint8_t u[4];
        if (cp < 0) cp = 0xFFFD;
        if (cp >= 0x80 && cp < 0xA0) cp = ' '; /* C1 controls */
        int k = yan_utf8_encode((uint32_t)cp, u);
        if (!yan_buf_append(b, u, (size_t)k)) return false;
        i += (size_t)l;
    }
    return !b->oom;
}

static bool is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i])) return false;
    return true;
}

static yan_status extract_text(const uint8_t *data, size_t len, yan_doc *d) {
    bool latin1;
    yan_status st = yan_text_sniff(data, len, &latin1);
    if (st) return st;
    if (len >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF) data += 3, len -= 3;
    if (!add_section(d, 0, NULL) || !append_clean(&d->text, data, len, latin1))
        return yan_fail(YAN_ERR_NOMEM, "out of memory");
    return YAN_OK;
}

/* ---------------------------------------------------------- markdown */

/* Heading path: titles of levels 1..6; "A > B > C" of the levels set. */
typedef struct {
    char *title[7];
} heading_stack;

static void hs_free(heading_stack *h) {
    for (int i = 0; i < 7; i++) yan_free(h->title[i]), h->title[i] = NULL;
}

static bool hs_set(heading_stack *h, int level, const char *s, size_t n) {
    for (int i = level; i < 7; i++) yan_free(h->title[i]), h->title[i] = NULL;
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    if (!n) return true;
    if (n > 200) n = yan_utf8_complete_prefix((const uint8_t *)s, 200);
    return (h->title[level] = yan_strndup(s, n)) != NULL;
}

static bool hs_path(const heading_stack *h, yan_buf *out) {
    out->len = 0;
    if (out->data) out->data[0] = 0;
    for (int i = 1; i < 7; i++) {
        if (!h->title[i]) continue;
        if (out->len && !yan_buf_puts(out, " > ")) return false;
        if (!yan_buf_puts(out, h->title[i])) return false;
    }
    return yan_buf_reserve(out, 0);
}

/* ATX heading "## Title ##": level 1..6 and the title range, or 0. */
static int atx_heading(const char *s, size_t n, const char **title, size_t *tlen) {
    size_t i = 0;
    while (i < n && i < 3 && s[i] == ' ') i++;
    size_t h = 0;
    while (i + h < n && s[i + h] == '#') h++;
    if (h < 1 || h > 6) return 0;
    i += h;
    if (i < n && s[i] != ' ' && s[i] != '\t') return 0;
    size_t e = n;
    while (e > i && isspace((unsigned char)s[e - 1])) e--;
    size_t e2 = e;
    while (e2 > i && s[e2 - 1] == '#') e2--; /* closing sequence */
    if (e2 < e && (e2 == i || s[e2 - 1] == ' ' || s[e2 - 1] == '\t')) e = e2;
    *title = s + i;
    *tlen = e - i;
    return (int)h;
}

/* Setext underline "====" (1) or "----" (2), or 0. */
static int setext_level(const char *s, size_t n) {
    size_t i = 0;
    while (i < n && i < 3 && s[i] == ' ') i++;
    if (i >= n || (s[i] != '=' && s[i] != '-')) return 0;
    char c = s[i];
    while (i < n && s[i] == c) i++;
    while (i < n && isspace((unsigned char)s[i])) i++;
    return i == n ? (c == '=' ? 1 : 2) : 0;
}

static bool fence_line(const char *s, size_t n) {
    size_t i = 0;
    while (i < n && i < 3 && s[i] == ' ') i++;
    return n - i >= 3 && ((s[i] == '`' && s[i + 1] == '`' && s[i + 2] == '`') ||
                          (s[i] == '~' && s[i + 1] == '~' && s[i + 2] == '~'));
}

static yan_status extract_markdown(const uint8_t *data, size_t len, yan_doc *d) {
    yan_status st = extract_text(data, len, d);
    if (st) return st;
    /* sections are found on the cleaned text; rebuild them from scratch */
    for (size_t i = 0; i < d->n_sec; i++) yan_free(d->sec[i].heading);
    d->n_sec = 0;
    const char *t = d->text.data ? d->text.data : "";
    size_t n = d->text.len;
    heading_stack hs = {0};
    yan_buf path = {0};
    bool in_fence = false, ok = true;
    size_t prev_start = 0, prev_len = 0;
    bool prev_text = false; /* previous line is a non-blank paragraph line */
    typedef struct { size_t at; char *heading; } mark;
    mark *marks = NULL;
    size_t n_marks = 0, cap_marks = 0;
    for (size_t ls = 0; ls < n && ok;) {
        const char *nl = memchr(t + ls, '\n', n - ls);
        size_t le = nl ? (size_t)(nl - t) : n;
        const char *line = t + ls;
        size_t ll = le - ls;
        int level = 0;
        size_t at = ls;
        const char *title = NULL;
        size_t tlen = 0;
        if (fence_line(line, ll)) {
            in_fence = !in_fence;
            prev_text = false;
        } else if (!in_fence) {
            if ((level = atx_heading(line, ll, &title, &tlen)) > 0) {
                prev_text = false;
            } else if (prev_text && (level = setext_level(line, ll)) > 0) {
                title = t + prev_start;
                tlen = prev_len;
                at = prev_start;
                prev_text = false;
            } else {
                prev_text = !is_blank(line, ll);
                prev_start = ls;
                prev_len = ll;
            }
        }
        if (level > 0) {
            ok = hs_set(&hs, level, title, tlen) && hs_path(&hs, &path);
            if (ok && n_marks == cap_marks) {
                cap_marks = cap_marks ? cap_marks * 2 : 16;
                mark *nm = yan_realloc(marks, cap_marks * sizeof *nm);
                if (!nm) ok = false;
                else marks = nm;
            }
            if (ok) {
                char *h = path.len ? yan_strdup(path.data) : NULL;
                if (path.len && !h) ok = false;
                else marks[n_marks++] = (mark){at, h};
            }
        }
        ls = le + 1;
    }
    /* sections: [0, first heading) without a heading, then one per heading */
    if (ok) {
        size_t save = d->text.len;
        d->text.len = 0;
        ok = add_section(d, 0, NULL);
        for (size_t i = 0; i < n_marks && ok; i++) {
            d->text.len = marks[i].at;
            ok = add_section(d, 0, marks[i].heading);
        }
        d->text.len = save;
    }
    for (size_t i = 0; i < n_marks; i++) yan_free(marks[i].heading);
    yan_free(marks);
    hs_free(&hs);
    yan_buf_free(&path);
    return ok ? YAN_OK : yan_fail(YAN_ERR_NOMEM, "out of memory");
}

/* -------------------------------------------------------------- html */

static pthread_once_t g_xml_once = PTHREAD_ONCE_INIT;
static void xml_init(void) { xmlInitParser(); }

typedef struct {
    yan_doc *d;
    heading_stack hs;
    yan_buf path;
    char *title;     /* <title>, the heading of text before the first h1..h6 */
    int pre;         /* inside <pre> (whitespace kept) */
    bool ok;
} html_walk;

static bool tag_in(const char *name, const char *const *set) {
    for (int i = 0; set[i]; i++)
        if (!strcasecmp(name, set[i])) return true;
    return false;
}

static const char *const HTML_SKIP[] = {"script", "style", "noscript", "template", "svg", "math", "iframe",
                                        "object", "embed", "canvas", "head", "select", "button", NULL};
static const char *const HTML_PARA[] = {"p", "pre", "blockquote", "table", "ul", "ol", "dl", "section",
                                        "article", "header", "footer", "aside", "nav", "figure", "hr", "form",
                                        "main", "address", "details", "fieldset", "center", NULL};
static const char *const HTML_LINE[] = {"div", "li", "tr", "br", "dt", "dd", "caption", "figcaption",
                                        "summary", "legend", "option", "label", NULL};

/* End the text with at least k newlines (k = 1 line, 2 paragraph), dropping
 * trailing spaces; nothing at the very start. */
static void html_break(html_walk *w, int k) {
    yan_buf *b = &w->d->text;
    while (b->len && (b->data[b->len - 1] == ' ' || b->data[b->len - 1] == '\t')) b->len--;
    if (b->data) b->data[b->len] = 0;
    if (!b->len) return;
    int have = 0;
    while (have < k && have < (int)b->len && b->data[b->len - 1 - (size_t)have] == '\n') have++;
    for (; have < k; have++) w->ok = w->ok && yan_buf_putc(b, '\n');
}

static void html_text(html_walk *w, const char *s) {
    yan_buf *b = &w->d->text;
    if (w->pre) {
        w->ok = w->ok && append_clean(b, (const uint8_t *)s, strlen(s), false);
        return;
    }
    /* collapse whitespace; no space at a line start */
    for (const char *p = s; *p && w->ok;) {
        if (isspace((unsigned char)*p)) {
            while (isspace((unsigned char)*p)) p++;
            if (b->len && b->data[b->len - 1] != ' ' && b->data[b->len - 1] != '\n') w->ok = yan_buf_putc(b, ' ');
            continue;
        }
        const char *q = p;
        while (*q && !isspace((unsigned char)*q)) q++;
        w->ok = append_clean(b, (const uint8_t *)p, (size_t)(q - p), false);
        p = q;
    }
}

/* A heading or title as one line: cleaned like text (valid UTF-8, control
 * characters gone), whitespace runs collapsed to one space, trimmed, and cut
 * to at most max bytes (0: no limit) at a character boundary. */
static bool clean_heading(const char *s, size_t max, yan_buf *out) {
    yan_buf raw = {0};
    bool ok = append_clean(&raw, (const uint8_t *)s, strlen(s), false);
    bool sp = false;
    for (size_t i = 0; ok && i < raw.len; i++) {
        char ch = raw.data[i];
        if (isspace((unsigned char)ch)) {
            sp = out->len > 0;
            continue;
        }
        if (sp) ok = yan_buf_putc(out, ' ');
        sp = false;
        ok = ok && yan_buf_putc(out, ch);
    }
    yan_buf_free(&raw);
    if (ok && max && out->len > max) {
        out->len = yan_utf8_complete_prefix((const uint8_t *)out->data, max);
        out->data[out->len] = 0;
    }
    return ok && !out->oom;
}

static void html_node(html_walk *w, xmlNode *n);

static void html_children(html_walk *w, xmlNode *n) {
    for (xmlNode *c = n->children; c && w->ok; c = c->next) html_node(w, c);
}

static void html_node(html_walk *w, xmlNode *n) {
    if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
        if (n->content) html_text(w, (const char *)n->content);
        return;
    }
    if (n->type != XML_ELEMENT_NODE || !n->name) return;
    const char *name = (const char *)n->name;
    if (!strcasecmp(name, "title") && !w->title) {
        xmlChar *c = xmlNodeGetContent(n);
        if (c) {
            yan_buf t = {0};
            w->ok = clean_heading((const char *)c, 200, &t);
            if (w->ok && t.len && !(w->title = yan_strndup(t.data, t.len))) w->ok = false;
            yan_buf_free(&t);
            xmlFree(c);
        }
        return;
    }
    if (tag_in(name, HTML_SKIP)) {
        /* <head> is skipped as text but its first <title> is wanted (a
         * second one must not add text: this runs before section 0) */
        if (!strcasecmp(name, "head"))
            for (xmlNode *c = n->children; c && w->ok && !w->title; c = c->next)
                if (c->type == XML_ELEMENT_NODE && c->name && !strcasecmp((const char *)c->name, "title"))
                    html_node(w, c);
        return;
    }
    if ((name[0] == 'h' || name[0] == 'H') && name[1] >= '1' && name[1] <= '6' && !name[2]) {
        int level = name[1] - '0';
        html_break(w, 2);
        xmlChar *c = xmlNodeGetContent(n);
        if (c) {
            yan_buf t = {0};
            w->ok = w->ok && clean_heading((const char *)c, 0, &t);
            xmlFree(c);
            w->ok = w->ok && hs_set(&w->hs, level, t.data ? t.data : "", t.len) && hs_path(&w->hs, &w->path);
            yan_buf_free(&t);
            if (w->ok) w->ok = add_section(w->d, 0, w->path.len ? w->path.data : NULL);
        }
        html_children(w, n);
        html_break(w, 2);
        return;
    }
    if (!strcasecmp(name, "br")) {
        html_break(w, 1);
        return;
    }
    bool para = tag_in(name, HTML_PARA), line = !para && tag_in(name, HTML_LINE);
    bool pre = !strcasecmp(name, "pre") || !strcasecmp(name, "textarea");
    if (para) html_break(w, 2);
    else if (line) html_break(w, 1);
    else if (!strcasecmp(name, "td") || !strcasecmp(name, "th")) {
        yan_buf *b = &w->d->text;
        if (b->len && b->data[b->len - 1] != '\n' && b->data[b->len - 1] != ' ') w->ok = yan_buf_putc(b, ' ');
    }
    w->pre += pre;
    html_children(w, n);
    w->pre -= pre;
    if (para) html_break(w, 2);
    else if (line) html_break(w, 1);
}

static yan_status extract_html(const uint8_t *data, size_t len, yan_doc *d) {
    bool latin1;
    yan_status st = yan_text_sniff(data, len, &latin1);
    if (st) return st;
    if (len > INT32_MAX) return yan_fail(YAN_ERR_UNSUPPORTED, "HTML larger than 2 GiB");
    pthread_once(&g_xml_once, xml_init);
    htmlDocPtr doc = htmlReadMemory((const char *)data, (int)len, NULL, latin1 ? "ISO-8859-1" : NULL,
                                    HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
                                        HTML_PARSE_NONET | HTML_PARSE_NOBLANKS | HTML_PARSE_COMPACT);
    if (!doc) return yan_fail(YAN_ERR_FORMAT, "not parseable as HTML");
    xmlNode *root = xmlDocGetRootElement(doc);
    html_walk w = {.d = d, .ok = true};
    if (root) {
        /* the title is the heading of whatever precedes the first h1..h6 */
        for (xmlNode *c = root->children; c; c = c->next)
            if (c->type == XML_ELEMENT_NODE && c->name && !strcasecmp((const char *)c->name, "head")) html_node(&w, c);
        w.ok = w.ok && add_section(d, 0, w.title);
        if (w.ok) html_node(&w, root);
    }
    xmlFreeDoc(doc);
    hs_free(&w.hs);
    yan_buf_free(&w.path);
    yan_free(w.title);
    if (!w.ok) return yan_fail(YAN_ERR_NOMEM, "out of memory");
    if (!d->n_sec && !add_section(d, 0, NULL)) return yan_fail(YAN_ERR_NOMEM, "out of memory");
    return YAN_OK;
}

/* --------------------------------------------------------------- pdf */

static yan_status extract_pdf(const uint8_t *data, size_t len, yan_doc *d) {
    if (len < 5 || memcmp(data, "%PDF-", 5) != 0) {
        /* PDF readers accept a header within the first KiB */
        size_t m = len < 1024 ? len : 1024;
        bool found = false;
        for (size_t i = 0; i + 5 <= m && !found; i++) found = memcmp(data + i, "%PDF-", 5) == 0;
        if (!found) return yan_fail(YAN_ERR_FORMAT, "not a PDF (no %%PDF- header)");
    }
    GBytes *bytes = g_bytes_new_static(data, len);
    GError *err = NULL;
    PopplerDocument *doc = poppler_document_new_from_bytes(bytes, NULL, &err);
    if (!doc) {
        yan_status st;
        if (err && err->domain == POPPLER_ERROR && err->code == POPPLER_ERROR_ENCRYPTED)
            st = yan_fail(YAN_ERR_UNSUPPORTED, "encrypted PDF (needs a password; decrypt it first)");
        else
            st = yan_fail(YAN_ERR_FORMAT, "damaged PDF (%s)", err && err->message ? err->message : "unreadable");
        if (err) g_error_free(err);
        g_bytes_unref(bytes);
        return st;
    }
    int np = poppler_document_get_n_pages(doc);
    bool ok = true, any = false;
    for (int i = 0; i < np && ok; i++) {
        PopplerPage *page = poppler_document_get_page(doc, i);
        if (!page) continue;
        char *t = poppler_page_get_text(page);
        if (d->text.len) ok = yan_buf_puts(&d->text, "\n\n");
        ok = ok && add_section(d, i + 1, NULL);
        if (t && ok) {
            ok = append_clean(&d->text, (const uint8_t *)t, strlen(t), false);
            any = any || !is_blank(t, strlen(t));
        }
        g_free(t);
        g_object_unref(page);
    }
    d->n_pages = np;
    g_object_unref(doc);
    g_bytes_unref(bytes);
    if (!ok) return yan_fail(YAN_ERR_NOMEM, "out of memory");
    if (np <= 0) return yan_fail(YAN_ERR_FORMAT, "PDF without pages");
    if (!any) return yan_fail(YAN_ERR_FORMAT, "PDF without a text layer (%d pages; scanned? run OCR first)", np);
    return YAN_OK;
}

/* ------------------------------------------------------------- entry */

yan_status yan_doc_extract(yan_doc_kind kind, const uint8_t *data, size_t len, yan_doc *d) {
    memset(d, 0, sizeof *d);
    d->kind = kind;
    if (len == 0) return yan_fail(YAN_ERR_FORMAT, "empty file");
    yan_status st;
    switch (kind) {
    case YAN_DOC_MARKDOWN: st = extract_markdown(data, len, d); break;
    case YAN_DOC_HTML: st = extract_html(data, len, d); break;
    case YAN_DOC_PDF: st = extract_pdf(data, len, d); break;
    default: st = extract_text(data, len, d); break;
    }
    if (st) return st;
    if (!d->text.data && !yan_buf_reserve(&d->text, 0)) return yan_fail(YAN_ERR_NOMEM, "out of memory");
    if (is_blank(d->text.data, d->text.len)) return yan_fail(YAN_ERR_FORMAT, "no text");
    return YAN_OK;
}
