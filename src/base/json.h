/* json.h — a strict RFC 8259 JSON parser into an arena-backed DOM, and a
 * string escaper for writers.
 *
 * Parsing: yan_json_parse builds a tree whose nodes, arrays, keys and strings
 * all live in the caller's yan_arena; free the arena to free the tree. The
 * input text is not referenced afterwards. Strict means:
 *  - exactly one value surrounded by optional whitespace (a leading UTF-8 BOM
 *    is skipped, as RFC 8259 §8.1 permits);
 *  - no comments, no trailing commas, no single quotes, no NaN/Infinity, no
 *    leading zeros or '+'; control characters (< 0x20) in strings rejected;
 *  - the text must be valid UTF-8 (overlongs, surrogates, > U+10FFFF rejected);
 *  - \uXXXX escapes decode to UTF-8; a surrogate pair combines into one code
 *    point; a LONE surrogate is an error (it has no UTF-8 form);
 *  - \u0000 is kept: strings carry explicit lengths (and are also
 *    NUL-terminated for convenience);
 *  - nesting deeper than YAN_JSON_MAX_DEPTH is an error;
 *  - duplicate object keys are kept in order; yan_json_get returns the first.
 * Numbers are stored as a double (strtod; assumes the C locale for
 * LC_NUMERIC — the library never calls setlocale) and, when the value is an
 * integer that fits, also as an exact int64 (written without fraction or
 * exponent, or an integral double within +-2^53).
 * Errors are returned as YAN_ERR_FORMAT with "line L col C: <problem>" (col
 * counts bytes, 1-based) in yan_last_error(); YAN_ERR_NOMEM on OOM.
 * Thread-safety: parse is reentrant; a parsed tree is immutable and may be
 * read from many threads.
 *
 * Writing: yan_json_write_string appends a quoted, escaped JSON string.
 *
 * Object lookup by key is a linear scan (objects keep their order); iterate
 * large objects with yan_json_len / yan_json_key / yan_json_at. */
#ifndef YAN_JSON_H
#define YAN_JSON_H

#include "base/base.h"

#define YAN_JSON_MAX_DEPTH 512

typedef enum {
    YAN_JSON_NULL = 0,
    YAN_JSON_BOOL = 1,
    YAN_JSON_NUMBER = 2,
    YAN_JSON_STRING = 3,
    YAN_JSON_ARRAY = 4,
    YAN_JSON_OBJECT = 5,
} yan_json_type;

typedef struct yan_json yan_json;
typedef struct yan_json_member yan_json_member;

/* A node. Read it through the accessors below; the layout is visible only so
 * that hot loops may iterate arrays/objects directly. */
struct yan_json {
    uint8_t type;    /* yan_json_type */
    uint8_t is_int;  /* NUMBER: i holds the exact integer value */
    uint8_t b;       /* BOOL */
    size_t n;        /* STRING: bytes; ARRAY: elements; OBJECT: members */
    union {
        const char *str;          /* STRING (NUL-terminated, may contain NUL) */
        yan_json *items;          /* ARRAY: n nodes */
        yan_json_member *members; /* OBJECT: n members, in document order */
        double num;               /* NUMBER */
    } u;
    int64_t i;       /* NUMBER with is_int */
};

struct yan_json_member {
    const char *key; /* NUL-terminated, may contain NUL */
    size_t key_len;
    yan_json value;
};

/* Parse len bytes of text. On success *out is the root (allocated in a).
 * On failure *out is NULL, the error message says where and what; memory
 * already taken from the arena stays there until the arena is reset/freed. */
yan_status yan_json_parse(const char *text, size_t len, yan_arena *a, yan_json **out);

/* Type of v; a NULL v (e.g. a missing key) reads as YAN_JSON_NULL. */
static inline yan_json_type yan_json_typeof(const yan_json *v) {
    return v ? (yan_json_type)v->type : YAN_JSON_NULL;
}
static inline bool yan_json_is(const yan_json *v, yan_json_type t) { return v && v->type == t; }

/* Object member value by key (first match), or NULL if v is not an object or
 * has no such key. _n takes an explicit key length. */
const yan_json *yan_json_get(const yan_json *obj, const char *key);
const yan_json *yan_json_get_n(const yan_json *obj, const char *key, size_t key_len);

/* Elements of an array, members of an object, bytes of a string; 0 otherwise. */
size_t yan_json_len(const yan_json *v);
/* i-th element of an array or i-th member value of an object; NULL if out of range. */
const yan_json *yan_json_at(const yan_json *v, size_t i);
/* i-th key of an object (length in *len, may be NULL); NULL if out of range. */
const char *yan_json_key(const yan_json *obj, size_t i, size_t *len);

/* String bytes (NUL-terminated) and length, or NULL if v is not a string. */
const char *yan_json_str(const yan_json *v, size_t *len);
/* True and *out set when v is a number (any) / an integer that fits int64 / a bool. */
bool yan_json_num(const yan_json *v, double *out);
bool yan_json_int(const yan_json *v, int64_t *out);
bool yan_json_bool(const yan_json *v, bool *out);
/* Convenience: string value of obj[key] compared with lit. */
bool yan_json_str_eq(const yan_json *v, const char *lit);

/* Append s[0..len) to b as a quoted JSON string. Escapes '"', '\\', and
 * control characters (\b \f \n \r \t, else \u00XX). Invalid UTF-8 bytes are
 * replaced by U+FFFD so the output is always valid JSON text. Returns false
 * if an allocation failed (b->oom is then set too). */
bool yan_json_write_string(yan_buf *b, const char *s, size_t len);

#endif /* YAN_JSON_H */
