/* gguf.h — GGUF container: a strict reader over a read-only mapping and an
 * atomic writer. Little-endian GGUF v2 and v3 (both use 64-bit counts; v1 and
 * big-endian files are rejected with a hint). Format facts: shared/FORMATS.md.
 *
 * Reader: yan_gguf_open maps the file (yan_gguf_open_memory borrows a caller
 * buffer, for tests and fuzzing) and validates EVERYTHING up front, so later
 * accessors never fail on bounds: magic, version, counts that cannot fit in
 * the file, string lengths, value types (unknown ones rejected), BOOL values
 * other than 0/1, array nesting (at most YAN_GGUF_MAX_NEST levels), duplicate
 * keys and tensor names, general.alignment (UINT32, a power of two; default
 * 32), tensor infos (name <= 64 bytes, n_dims <= 4, element count overflow,
 * ne0 divisible by the type's block size, known ggml type, offset aligned,
 * data inside the file). Errors are YAN_ERR_FORMAT (YAN_ERR_UNSUPPORTED for a
 * version/endianness/ggml type we do not know) with the file name, the byte
 * offset and the key or tensor involved.
 * Values are never copied: strings and arrays point into the mapping, which
 * lives until yan_gguf_close. Numeric array data may be UNALIGNED: read it
 * with memcpy or the yan_gguf_arr_* helpers. Strings are NOT NUL-terminated.
 * A yan_gguf is immutable after open: readers on many threads are fine.
 *
 * Writer: collect metadata (any type, including string arrays and nested
 * arrays given as encoded bytes) and tensors (borrowed data pointers), then
 * write the whole file atomically. Layout is exactly llama.cpp's
 * gguf_write_to_buf: header, kvs in insertion order, tensor infos with
 * offsets, zero padding to the alignment, tensor data each padded to the
 * alignment. */
#ifndef YAN_GGUF_H
#define YAN_GGUF_H

#include "base/base.h"

#define YAN_GGUF_MAGIC 0x46554747u /* "GGUF" read as a little-endian u32 */
#define YAN_GGUF_VERSION 3
#define YAN_GGUF_DEFAULT_ALIGNMENT 32
#define YAN_GGUF_MAX_ALIGNMENT (1u << 20) /* general.alignment: a power of two up to 1 MiB */
#define YAN_GGUF_MAX_DIMS 4
#define YAN_GGUF_MAX_NAME 64  /* tensor name bytes */
#define YAN_GGUF_MAX_NEST 8   /* array-of-array levels */

/* Metadata value types (on-disk ids). */
typedef enum {
    YAN_GGUF_UINT8 = 0, YAN_GGUF_INT8 = 1, YAN_GGUF_UINT16 = 2, YAN_GGUF_INT16 = 3,
    YAN_GGUF_UINT32 = 4, YAN_GGUF_INT32 = 5, YAN_GGUF_FLOAT32 = 6, YAN_GGUF_BOOL = 7,
    YAN_GGUF_STRING = 8, YAN_GGUF_ARRAY = 9, YAN_GGUF_UINT64 = 10, YAN_GGUF_INT64 = 11,
    YAN_GGUF_FLOAT64 = 12, YAN_GGUF_TYPE_COUNT = 13
} yan_gguf_type;

/* Name of a value type ("uint32", "string", ...) or "?" */
const char *yan_gguf_type_name(uint32_t t);
/* Byte size of a fixed-size value type, 0 for STRING/ARRAY/unknown. */
size_t yan_gguf_type_size(uint32_t t);

/* ------------------------------------------------------------ ggml types */

enum {
    YAN_GGML_F32 = 0, YAN_GGML_F16 = 1, YAN_GGML_Q4_0 = 2, YAN_GGML_Q4_1 = 3,
    YAN_GGML_Q5_0 = 6, YAN_GGML_Q5_1 = 7, YAN_GGML_Q8_0 = 8, YAN_GGML_Q8_1 = 9,
    YAN_GGML_Q2_K = 10, YAN_GGML_Q3_K = 11, YAN_GGML_Q4_K = 12, YAN_GGML_Q5_K = 13,
    YAN_GGML_Q6_K = 14, YAN_GGML_Q8_K = 15, YAN_GGML_IQ2_XXS = 16, YAN_GGML_IQ2_XS = 17,
    YAN_GGML_IQ3_XXS = 18, YAN_GGML_IQ1_S = 19, YAN_GGML_IQ4_NL = 20, YAN_GGML_IQ3_S = 21,
    YAN_GGML_IQ2_S = 22, YAN_GGML_IQ4_XS = 23, YAN_GGML_I8 = 24, YAN_GGML_I16 = 25,
    YAN_GGML_I32 = 26, YAN_GGML_I64 = 27, YAN_GGML_F64 = 28, YAN_GGML_IQ1_M = 29,
    YAN_GGML_BF16 = 30, YAN_GGML_TQ1_0 = 34, YAN_GGML_TQ2_0 = 35, YAN_GGML_MXFP4 = 39,
    YAN_GGML_TYPE_COUNT = 40
};

typedef struct {
    const char *name;   /* "q4_K", ...; NULL for unknown/removed ids */
    uint32_t blck_size; /* elements per block */
    uint32_t type_size; /* bytes per block */
} yan_ggml_type_info;

/* Info for a ggml type id, or NULL if the id is unknown or removed. */
const yan_ggml_type_info *yan_ggml_type(uint32_t type);
/* Bytes of a row of ne0 elements / of a whole tensor. Return false when the
 * type is unknown, ne0 is not a multiple of the block size, or on overflow. */
bool yan_ggml_row_size(uint32_t type, uint64_t ne0, size_t *out);
bool yan_ggml_nbytes(uint32_t type, uint32_t n_dims, const uint64_t *dims, size_t *out);

/* ---------------------------------------------------------------- reader */

typedef struct yan_gguf yan_gguf;

/* An array value. For fixed-size element types data points at n packed
 * little-endian elements (maybe unaligned); for STRING and ARRAY elements use
 * the accessors. Valid while the yan_gguf is open. */
typedef struct yan_gguf_arr {
    uint32_t type;        /* element type */
    uint64_t n;           /* element count */
    const uint8_t *data;  /* first element, in the mapping */
    const uint64_t *offs; /* STRING/ARRAY elements: offset of element i from data */
    const struct yan_gguf_arr *sub; /* ARRAY elements: n descriptors */
} yan_gguf_arr;

typedef struct {
    const char *name;     /* not NUL-terminated */
    size_t name_len;
    uint32_t n_dims;
    uint64_t ne[YAN_GGUF_MAX_DIMS]; /* ne[0] fastest; unused dims are 1 */
    uint32_t type;        /* ggml type */
    uint64_t offset;      /* relative to the data section */
    size_t nbytes;
    const uint8_t *data;  /* in the mapping */
} yan_gguf_tensor;

/* Open and validate a file. On error *out is NULL. */
yan_status yan_gguf_open(const char *path, yan_gguf **out);
/* Same over a caller buffer that must outlive the handle; name is used in
 * messages (NULL = "<memory>"). */
yan_status yan_gguf_open_memory(const uint8_t *data, size_t len, const char *name, yan_gguf **out);
/* NULL is a no-op. */
void yan_gguf_close(yan_gguf *g);

const char *yan_gguf_path(const yan_gguf *g);
uint32_t yan_gguf_version(const yan_gguf *g);
size_t yan_gguf_alignment(const yan_gguf *g);
size_t yan_gguf_data_offset(const yan_gguf *g); /* file offset of the tensor data section */
const uint8_t *yan_gguf_bytes(const yan_gguf *g, size_t *len); /* the whole file */

/* Metadata by index. */
int64_t yan_gguf_n_kv(const yan_gguf *g);
int64_t yan_gguf_find_key(const yan_gguf *g, const char *key); /* -1 if absent */
const char *yan_gguf_key(const yan_gguf *g, int64_t i, size_t *len); /* not NUL-terminated */
uint32_t yan_gguf_kv_type(const yan_gguf *g, int64_t i);
/* Encoded value bytes of kv i (for copying metadata with yan_gguf_w_set_raw). */
const uint8_t *yan_gguf_kv_raw(const yan_gguf *g, int64_t i, size_t *len);

/* Typed getters by key. All return YAN_ERR_NOT_FOUND if the key is absent
 * (no message set, so callers can apply defaults), YAN_ERR_FORMAT with a
 * message naming the key if the type does not fit:
 *  - get_u64/u32/i64/i32 accept ANY integer value type whose value fits;
 *  - get_f32 accepts FLOAT32 and FLOAT64 (narrowed) ;
 *  - get_str gives a pointer into the mapping (not NUL-terminated);
 *  - get_arr accepts only arrays. */
yan_status yan_gguf_get_u64(const yan_gguf *g, const char *key, uint64_t *out);
yan_status yan_gguf_get_i64(const yan_gguf *g, const char *key, int64_t *out);
yan_status yan_gguf_get_u32(const yan_gguf *g, const char *key, uint32_t *out);
yan_status yan_gguf_get_i32(const yan_gguf *g, const char *key, int32_t *out);
yan_status yan_gguf_get_f32(const yan_gguf *g, const char *key, float *out);
yan_status yan_gguf_get_f64(const yan_gguf *g, const char *key, double *out);
yan_status yan_gguf_get_bool(const yan_gguf *g, const char *key, bool *out);
yan_status yan_gguf_get_str(const yan_gguf *g, const char *key, const char **s, size_t *len);
yan_status yan_gguf_get_arr(const yan_gguf *g, const char *key, yan_gguf_arr *out);

/* Array elements (i < a->n, element type must match; checked by assert). */
const char *yan_gguf_arr_str(const yan_gguf_arr *a, uint64_t i, size_t *len);
const yan_gguf_arr *yan_gguf_arr_sub(const yan_gguf_arr *a, uint64_t i);
/* Integer element of any integer type as int64 (UINT64 above INT64_MAX
 * saturates), float element of FLOAT32/FLOAT64. */
int64_t yan_gguf_arr_int(const yan_gguf_arr *a, uint64_t i);
double yan_gguf_arr_float(const yan_gguf_arr *a, uint64_t i);

/* Tensors. */
int64_t yan_gguf_n_tensors(const yan_gguf *g);
const yan_gguf_tensor *yan_gguf_tensor_at(const yan_gguf *g, int64_t i);
const yan_gguf_tensor *yan_gguf_find_tensor(const yan_gguf *g, const char *name); /* NULL if absent */

/* ---------------------------------------------------------------- writer */

typedef struct yan_gguf_writer yan_gguf_writer;

yan_status yan_gguf_writer_new(yan_gguf_writer **out);
void yan_gguf_writer_free(yan_gguf_writer *w); /* NULL is a no-op */

/* Set a metadata key (replaces an earlier value of the same key in place,
 * keeping its position). general.alignment set as UINT32 power of two
 * changes the file's alignment. Errors: NOMEM, INVALID_ARG (bad key). */
yan_status yan_gguf_w_set_u8(yan_gguf_writer *w, const char *key, uint8_t v);
yan_status yan_gguf_w_set_i8(yan_gguf_writer *w, const char *key, int8_t v);
yan_status yan_gguf_w_set_u16(yan_gguf_writer *w, const char *key, uint16_t v);
yan_status yan_gguf_w_set_i16(yan_gguf_writer *w, const char *key, int16_t v);
yan_status yan_gguf_w_set_u32(yan_gguf_writer *w, const char *key, uint32_t v);
yan_status yan_gguf_w_set_i32(yan_gguf_writer *w, const char *key, int32_t v);
yan_status yan_gguf_w_set_f32(yan_gguf_writer *w, const char *key, float v);
yan_status yan_gguf_w_set_bool(yan_gguf_writer *w, const char *key, bool v);
yan_status yan_gguf_w_set_u64(yan_gguf_writer *w, const char *key, uint64_t v);
yan_status yan_gguf_w_set_i64(yan_gguf_writer *w, const char *key, int64_t v);
yan_status yan_gguf_w_set_f64(yan_gguf_writer *w, const char *key, double v);
yan_status yan_gguf_w_set_str(yan_gguf_writer *w, const char *key, const char *s, size_t len);
/* Array of a fixed-size type: n packed elements in host (little-endian) order.
 * BOOL elements must be 0/1. */
yan_status yan_gguf_w_set_arr(yan_gguf_writer *w, const char *key, uint32_t elem_type,
                              const void *data, size_t n);
/* Array of strings; lens may be NULL (then each s[i] is NUL-terminated). */
yan_status yan_gguf_w_set_arr_str(yan_gguf_writer *w, const char *key, const char *const *s,
                                  const size_t *lens, size_t n);
/* Any value given as its encoded bytes (as yan_gguf_kv_raw returns them;
 * e.g. nested arrays); validated, YAN_ERR_FORMAT if malformed. */
yan_status yan_gguf_w_set_raw(yan_gguf_writer *w, const char *key, uint32_t type,
                              const void *value, size_t len);

/* Add a tensor; data (nbytes computed from type and dims) is borrowed until
 * the file is written. Errors: INVALID_ARG (name too long or duplicate, bad
 * dims or type), NOMEM. */
yan_status yan_gguf_w_add_tensor(yan_gguf_writer *w, const char *name, uint32_t ggml_type,
                                 uint32_t n_dims, const uint64_t *dims, const void *data);

/* Serialize into a buffer (appends) or write to path atomically (yan_afile). */
yan_status yan_gguf_w_to_buf(const yan_gguf_writer *w, yan_buf *out);
yan_status yan_gguf_w_write(const yan_gguf_writer *w, const char *path);

#endif /* YAN_GGUF_H */
