/* upload.c — parsing of document uploads; see upload.h. */
#include "serve/upload.h"

#include <ctype.h>
#include <strings.h>

static const char *const KB_EXT[] = {".txt", ".text", ".md", ".markdown", ".html", ".htm", ".pdf"};

bool yan_upload_safe_name(const char *in, size_t n, char *out, size_t cap, const char **why) {
    size_t b = n;
    while (b > 0 && in[b - 1] != '/' && in[b - 1] != '\\') b--;
    in += b, n -= b;
    if (n == 0 || n > YAN_UPLOAD_MAX_NAME || n + 1 > cap) {
        *why = "'name' must be a file name of 1 to 128 bytes";
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        out[i] = (char)(isalnum(c) || c == '.' || c == '_' || c == '-' || c == '+' ? c : '_');
    }
    out[n] = 0;
    if (out[0] == '.') out[0] = '_';
    const char *dot = strrchr(out, '.');
    for (size_t i = 0; dot && i < sizeof KB_EXT / sizeof KB_EXT[0]; i++)
        if (!strcasecmp(dot, KB_EXT[i])) return true;
    *why = "the file name must end in .txt, .md, .markdown, .html, .htm or .pdf";
    return false;
}

bool yan_upload_b64_decode(const char *s, yan_buf *out) {
    uint32_t acc = 0;
    int bits = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '=' || isspace(c)) continue;
        int v = yan_base64_value(c, true);
        if (v < 0) return false;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            yan_buf_putc(out, (char)(acc >> bits & 0xFF));
        }
    }
    return !out->oom;
}

static const char *find_mem(const char *h, size_t hn, const char *needle, size_t nn) {
    if (nn == 0 || hn < nn) return NULL;
    return memmem(h, hn, needle, nn);
}

/* The first delimiter "--boundary" at or after p that starts a line of the
 * body (its first byte or after a '\n'), or NULL. */
static const char *next_delim(const char *body, const char *p, const char *end, const char *delim, size_t dl) {
    for (const char *q = p; q < end;) {
        const char *d = find_mem(q, (size_t)(end - q), delim, dl);
        if (!d) return NULL;
        if (d == body || d[-1] == '\n') return d;
        q = d + 1;
    }
    return NULL;
}

bool yan_upload_multipart_file(const char *ctype, const char *body, size_t len, const char **name, size_t *name_len,
                               const char **data, size_t *data_len) {
    const char *bp = strcasestr(ctype, "boundary=");
    if (!bp) return false;
    bp += 9;
    char delim[80]; /* "--" and a boundary of at most 70 characters (RFC 2046) */
    size_t dl = 0;
    bool quoted = *bp == '"';
    if (quoted) bp++;
    delim[dl++] = '-', delim[dl++] = '-';
    while (*bp && (quoted ? *bp != '"' : (*bp != ';' && !isspace((unsigned char)*bp)))) {
        if (dl == sizeof delim - 1) return false;
        delim[dl++] = *bp++;
    }
    delim[dl] = 0;
    if (dl <= 2) return false;
    const char *end = body + len;
    const char *p = next_delim(body, body, end, delim, dl);
    while (p) {
        p += dl;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') return false; /* the closing delimiter */
        const char *hdr_end = find_mem(p, (size_t)(end - p), "\r\n\r\n", 4);
        size_t hl = 4;
        const char *lf = find_mem(p, (size_t)(end - p), "\n\n", 2);
        if (lf && (!hdr_end || lf < hdr_end)) hdr_end = lf, hl = 2;
        if (!hdr_end) return false;
        const char *content = hdr_end + hl;
        const char *next = next_delim(body, content, end, delim, dl);
        if (!next) return false;
        const char *cend = next - 1; /* drop the line break before the delimiter */
        if (cend > content && cend[-1] == '\r') cend--;
        if (cend < content) cend = content;
        /* filename="..." in this part's headers */
        const char *fn = NULL;
        for (const char *h = p; h + 10 <= hdr_end; h++)
            if (!strncasecmp(h, "filename=\"", 10)) {
                fn = h + 10;
                break;
            }
        if (fn) {
            const char *fe = memchr(fn, '"', (size_t)(hdr_end - fn));
            if (fe) {
                *name = fn, *name_len = (size_t)(fe - fn);
                *data = content, *data_len = (size_t)(cend - content);
                return true;
            }
        }
        p = next;
    }
    return false;
}
