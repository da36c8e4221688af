/* fuzz_extract.c — libFuzzer harness for the knowledge base's text
 * extractors. The first byte picks the kind (modulo 3: text, Markdown,
 * HTML), the rest is the document. Extraction succeeds or fails cleanly;
 * what it returns must keep yan_doc's promises: valid UTF-8 with no NUL,
 * "\n" line ends, sections in increasing start order beginning at 0 and
 * inside the text, headings valid UTF-8. (PDF goes through poppler, which
 * is fuzzed upstream.) */
#include "rag/ingest.h"

static void check_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        int32_t cp;
        int l = yan_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        if (cp < 0 || l <= 0 || cp == 0 || cp == '\r') __builtin_trap();
        i += (size_t)l;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    yan_doc_kind kind = (yan_doc_kind)(data[0] % 3);
    yan_doc d;
    yan_status st = yan_doc_extract(kind, data + 1, size - 1, &d);
    if (st == YAN_OK) {
        if (d.kind != kind || d.n_sec == 0 || d.sec[0].start != 0) __builtin_trap();
        check_utf8(d.text.data ? d.text.data : "", d.text.len);
        for (size_t i = 0; i < d.n_sec; i++) {
            if (d.sec[i].start > d.text.len) __builtin_trap();
            if (i && d.sec[i].start <= d.sec[i - 1].start) __builtin_trap();
            if (d.sec[i].heading) check_utf8(d.sec[i].heading, strlen(d.sec[i].heading));
            if (d.sec[i].page != 0) __builtin_trap();
        }
    } else if (st != YAN_ERR_FORMAT && st != YAN_ERR_UNSUPPORTED) {
        __builtin_trap();
    }
    yan_doc_free(&d);
    return 0;
}
