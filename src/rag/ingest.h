/* ingest.h — text extraction for the knowledge base (private to src/rag).
 *
 * A document's bytes become one UTF-8 text plus a list of sections: where a
 * PDF page or a Markdown/HTML heading begins, so that every chunk cut from
 * the text can say which page or heading it came from. The extractors take
 * (buf, len) and never read files themselves; kb.c reads, checks sizes and
 * names the file in messages. Errors are yan_status with a message that does
 * not name the file ("binary file (contains NUL bytes)").
 *
 * Thread-safety: every function here may run on many threads at once on
 * different documents (libxml2 is initialised once, poppler documents are
 * per call). */
#ifndef YAN_RAG_INGEST_H
#define YAN_RAG_INGEST_H

#include "base/base.h"

typedef enum { YAN_DOC_TEXT = 0, YAN_DOC_MARKDOWN = 1, YAN_DOC_HTML = 2, YAN_DOC_PDF = 3 } yan_doc_kind;

/* How a file name maps to a kind (yan_doc_kind_of). */
typedef enum {
    YAN_KIND_KNOWN = 0,   /* a known extension (.txt .md .html .pdf ...) */
    YAN_KIND_NOEXT = 1,   /* no extension (README, COPYING): sniffed as text */
    YAN_KIND_UNKNOWN = 2, /* another extension (.gz .png .o): skipped in directory walks */
} yan_kind_how;

typedef struct {
    size_t start;     /* byte offset in text where the section begins */
    int32_t page;     /* PDF page, 1-based; 0 otherwise */
    char *heading;    /* heading path "Install > Debian", or NULL */
} yan_doc_section;

typedef struct {
    yan_doc_kind kind;
    yan_buf text;            /* extracted UTF-8 text (valid UTF-8, no NUL, "\n" line ends) */
    yan_doc_section *sec;    /* n_sec sections in increasing start order; sec[0].start == 0 */
    size_t n_sec, cap_sec;
    int32_t n_pages;         /* PDF pages; 0 otherwise */
} yan_doc;

/* "text", "markdown", "html", "pdf". */
const char *yan_doc_kind_name(yan_doc_kind k);
/* Kind from the file name's extension (case-insensitive). */
yan_doc_kind yan_doc_kind_of(const char *path, yan_kind_how *how);

/* Extract len bytes of a document of the given kind into d (initialised
 * here; free with yan_doc_free even on failure). Errors: FORMAT for binary,
 * empty, damaged or text-less input; UNSUPPORTED for encrypted PDFs and
 * UTF-16 text; NOMEM. */
yan_status yan_doc_extract(yan_doc_kind kind, const uint8_t *data, size_t len, yan_doc *d);
void yan_doc_free(yan_doc *d);

/* Whether data looks like text: FORMAT ("binary file (...)") when it holds
 * NUL bytes or when more than 1 % of its first 64 KiB is neither valid UTF-8
 * nor Latin-1-like text (control bytes); UNSUPPORTED for a UTF-16 BOM. Sets
 * *latin1 when the bytes are not UTF-8 but read as Latin-1 text. */
yan_status yan_text_sniff(const uint8_t *data, size_t len, bool *latin1);

#endif /* YAN_RAG_INGEST_H */
