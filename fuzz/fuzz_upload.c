/* fuzz_upload.c — libFuzzer harness for the upload parsers of
 * POST /v1/kb/documents (src/serve/upload.c). The first byte picks:
 *   0: a Content-Type boundary (up to the first '\n') and a multipart body:
 *      a found file part lies inside the body; and the rest, wrapped as the
 *      file part of a well-formed body, comes back byte for byte unless it
 *      holds a delimiter line itself;
 *   1: base64 text: decodes or fails; what decodes re-encodes and decodes
 *      to the same bytes;
 *   2: a client's file name: a safe name has only [A-Za-z0-9._+-], no
 *      leading dot, at most YAN_UPLOAD_MAX_NAME bytes. */
#include "serve/upload.h"

#include <stdlib.h>

static void multipart(const uint8_t *data, size_t size) {
    const uint8_t *nl = memchr(data, '\n', size);
    size_t bl = nl ? (size_t)(nl - data) : 0;
    char ctype[256];
    snprintf(ctype, sizeof ctype, "multipart/form-data; boundary=%.*s", (int)(bl < 200 ? bl : 200), (const char *)data);
    if (memchr(ctype, 0, strlen(ctype) + 1) != ctype + strlen(ctype)) __builtin_trap();
    const char *body = (const char *)data + (nl ? bl + 1 : 0);
    size_t len = size - (nl ? bl + 1 : 0);
    const char *name, *d;
    size_t nlen, dlen;
    if (yan_upload_multipart_file(ctype, body, len, &name, &nlen, &d, &dlen)) {
        if (name < body || name + nlen > body + len || d < body || d + dlen > body + len) __builtin_trap();
        if (memchr(name, '"', nlen)) __builtin_trap();
    }
    /* round trip of arbitrary bytes as a file part */
    static const char head[] = "--yanB0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n"
                               "Content-Type: text/plain\r\n\r\n";
    static const char tail[] = "\r\n--yanB0undary--\r\n";
    yan_buf b = {0};
    yan_buf_append(&b, head, sizeof head - 1);
    yan_buf_append(&b, data, size);
    yan_buf_append(&b, tail, sizeof tail - 1);
    if (b.oom) abort();
    bool has_delim = false;
    for (size_t i = 0; i + 13 <= size && !has_delim; i++)
        has_delim = (i == 0 || data[i - 1] == '\n') && !memcmp(data + i, "--yanB0undary", 13);
    if (!yan_upload_multipart_file("multipart/form-data; boundary=\"yanB0undary\"", b.data, b.len, &name, &nlen, &d, &dlen)) {
        if (!has_delim) __builtin_trap();
    } else if (!has_delim && (nlen != 5 || memcmp(name, "a.txt", 5) || dlen != size || memcmp(d, data, size))) {
        __builtin_trap();
    }
    yan_buf_free(&b);
}

static void b64(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = 0;
    yan_buf out = {0};
    if (yan_upload_b64_decode(s, &out)) {
        if (out.len > strlen(s) * 3 / 4 + 1) __builtin_trap();
        static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        yan_buf enc = {0}, back = {0};
        for (size_t i = 0; i < out.len; i += 3) {
            uint32_t v = (uint32_t)(uint8_t)out.data[i] << 16;
            if (i + 1 < out.len) v |= (uint32_t)(uint8_t)out.data[i + 1] << 8;
            if (i + 2 < out.len) v |= (uint8_t)out.data[i + 2];
            yan_buf_putc(&enc, A[v >> 18 & 63]);
            yan_buf_putc(&enc, A[v >> 12 & 63]);
            yan_buf_putc(&enc, i + 1 < out.len ? A[v >> 6 & 63] : '=');
            yan_buf_putc(&enc, i + 2 < out.len ? A[v & 63] : '=');
        }
        if (!yan_upload_b64_decode(enc.data ? enc.data : "", &back)) __builtin_trap();
        if (back.len != out.len || (out.len && memcmp(back.data, out.data, out.len))) __builtin_trap();
        yan_buf_free(&enc);
        yan_buf_free(&back);
    }
    yan_buf_free(&out);
    free(s);
}

static void name(const uint8_t *data, size_t size) {
    char out[YAN_UPLOAD_MAX_NAME + 1];
    const char *why = NULL;
    if (yan_upload_safe_name((const char *)data, size, out, sizeof out, &why)) {
        size_t n = strlen(out);
        if (n == 0 || n > YAN_UPLOAD_MAX_NAME || out[0] == '.') __builtin_trap();
        for (size_t i = 0; i < n; i++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-", out[i])) __builtin_trap();
    } else if (!why) {
        __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    switch (data[0] % 3) {
    case 0: multipart(data + 1, size - 1); break;
    case 1: b64(data + 1, size - 1); break;
    default: name(data + 1, size - 1); break;
    }
    return 0;
}
