/* upload.h — what a client's document upload (POST /v1/kb/documents) is
 * parsed with: the file part of a multipart/form-data body, base64 content,
 * and the file name it is stored under. Pure functions over bytes, no
 * globals, thread-safe; fuzzed by fuzz/fuzz_upload.c. */
#ifndef YAN_SERVE_UPLOAD_H
#define YAN_SERVE_UPLOAD_H

#include "base/base.h"

#define YAN_UPLOAD_MAX_NAME 128 /* bytes of an uploaded file's name */

/* The first part of a multipart/form-data body (RFC 7578) that has a
 * filename="...": its name and bytes, pointing into body. ctype is the
 * Content-Type header (NUL-terminated) with the boundary parameter, quoted
 * or not. Parts end at CRLF "--boundary" (a bare LF is accepted too); part
 * headers end at a blank line. False when there is no such part or the body
 * is malformed. */
bool yan_upload_multipart_file(const char *ctype, const char *body, size_t len, const char **name, size_t *name_len,
                               const char **data, size_t *data_len);

/* Decode standard or URL-safe base64 (whitespace ignored, padding optional)
 * from the NUL-terminated s, appending to out. False on a character outside
 * the alphabet or when out ran out of memory. */
bool yan_upload_b64_decode(const char *s, yan_buf *out);

/* A safe file name from a client's: its last path component ('/' or '\\'),
 * characters outside [A-Za-z0-9._+-] as '_', no leading dot, and one of the
 * extensions the knowledge base reads (.txt .text .md .markdown .html .htm
 * .pdf). out must hold cap >= YAN_UPLOAD_MAX_NAME + 1 bytes. Returns false
 * with *why set to a message for the client. */
bool yan_upload_safe_name(const char *in, size_t n, char *out, size_t cap, const char **why);

#endif /* YAN_SERVE_UPLOAD_H */
