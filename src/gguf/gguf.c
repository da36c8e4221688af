/* gguf.c — GGUF v2/v3 reader (validate everything at open, then zero-copy
 * accessors over the mapping) and atomic writer. Contract in gguf.h.
 *
 * The reader walks the file once with a bounds-checked cursor. Array values
 * whose elements have variable size (strings, nested arrays) get an offset
 * table in the handle's arena, so element i is O(1); every allocation is
 * bounded by the file size because counts are checked against the bytes
 * left before anything is allocated. Keys and tensor names are indexed in
 * open-addressing hash tables, which also detect duplicates. */
#include "gguf/gguf.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf.c assumes a little-endian host"
#endif

/* -------------------------------------------------------------- type tables */

static const char *const k_type_names[YAN_GGUF_TYPE_COUNT] = {
    "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
    "bool", "string", "array", "uint64", "int64", "float64",
};
static const uint8_t k_type_sizes[YAN_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *yan_gguf_type_name(uint32_t t) { return t < YAN_GGUF_TYPE_COUNT ? k_type_names[t] : "?"; }
size_t yan_gguf_type_size(uint32_t t) { return t < YAN_GGUF_TYPE_COUNT ? k_type_sizes[t] : 0; }

/* ggml/src/ggml.c type_traits: block size and bytes per block. */
static const yan_ggml_type_info k_ggml[YAN_GGML_TYPE_COUNT] = {
    [YAN_GGML_F32] = {"f32", 1, 4},          [YAN_GGML_F16] = {"f16", 1, 2},
    [YAN_GGML_Q4_0] = {"q4_0", 32, 18},      [YAN_GGML_Q4_1] = {"q4_1", 32, 20},
    [YAN_GGML_Q5_0] = {"q5_0", 32, 22},      [YAN_GGML_Q5_1] = {"q5_1", 32, 24},
    [YAN_GGML_Q8_0] = {"q8_0", 32, 34},      [YAN_GGML_Q8_1] = {"q8_1", 32, 36},
    [YAN_GGML_Q2_K] = {"q2_K", 256, 84},     [YAN_GGML_Q3_K] = {"q3_K", 256, 110},
    [YAN_GGML_Q4_K] = {"q4_K", 256, 144},    [YAN_GGML_Q5_K] = {"q5_K", 256, 176},
    [YAN_GGML_Q6_K] = {"q6_K", 256, 210},    [YAN_GGML_Q8_K] = {"q8_K", 256, 292},
    [YAN_GGML_IQ2_XXS] = {"iq2_xxs", 256, 66}, [YAN_GGML_IQ2_XS] = {"iq2_xs", 256, 74},
    [YAN_GGML_IQ3_XXS] = {"iq3_xxs", 256, 98}, [YAN_GGML_IQ1_S] = {"iq1_s", 256, 50},
    [YAN_GGML_IQ4_NL] = {"iq4_nl", 32, 18},  [YAN_GGML_IQ3_S] = {"iq3_s", 256, 110},
    [YAN_GGML_IQ2_S] = {"iq2_s", 256, 82},   [YAN_GGML_IQ4_XS] = {"iq4_xs", 256, 136},
    [YAN_GGML_I8] = {"i8", 1, 1},            [YAN_GGML_I16] = {"i16", 1, 2},
    [YAN_GGML_I32] = {"i32", 1, 4},          [YAN_GGML_I64] = {"i64", 1, 8},
    [YAN_GGML_F64] = {"f64", 1, 8},          [YAN_GGML_IQ1_M] = {"iq1_m", 256, 56},
    [YAN_GGML_BF16] = {"bf16", 1, 2},        [YAN_GGML_TQ1_0] = {"tq1_0", 256, 54},
    [YAN_GGML_TQ2_0] = {"tq2_0", 256, 66},   [YAN_GGML_MXFP4] = {"mxfp4", 32, 17},
};

const yan_ggml_type_info *yan_ggml_type(uint32_t type) {
    if (type >= YAN_GGML_TYPE_COUNT || !k_ggml[type].name) return NULL;
    return &k_ggml[type];
}

bool yan_ggml_row_size(uint32_t type, uint64_t ne0, size_t *out) {
    const yan_ggml_type_info *ti = yan_ggml_type(type);
    if (!ti || ne0 % ti->blck_size != 0 || ne0 > SIZE_MAX) return false;
    return !yan_mul_ovf((size_t)(ne0 / ti->blck_size), ti->type_size, out);
}

bool yan_ggml_nbytes(uint32_t type, uint32_t n_dims, const uint64_t *dims, size_t *out) {
    if (n_dims > YAN_GGUF_MAX_DIMS) return false;
    size_t row, rows = 1;
    if (!yan_ggml_row_size(type, n_dims ? dims[0] : 1, &row)) return false;
    for (uint32_t d = 1; d < n_dims; d++) {
        if (dims[d] > SIZE_MAX || yan_mul_ovf(rows, (size_t)dims[d], &rows)) return false;
    }
    return !yan_mul_ovf(row, rows, out);
}

/* ------------------------------------------------------------------ reader */

typedef struct {
    const char *key;
    size_t klen;
    uint32_t type;
    const uint8_t *val; /* encoded value */
    size_t vlen;
    yan_gguf_arr *arr;  /* ARRAY values */
} gguf_kv;

struct yan_gguf {
    char *path;
    yan_mmap map;
    bool mapped;
    const uint8_t *data;
    size_t len;
    uint32_t version;
    size_t alignment, data_off;
    int64_t n_kv, n_tensors;
    gguf_kv *kvs;
    yan_gguf_tensor *ts;
    int64_t *kv_hash, *t_hash; /* index+1, 0 = empty; capacity = power of two */
    size_t kv_hcap, t_hcap;
    yan_arena arena;
};

typedef struct {
    yan_gguf *g;       /* for messages */
    const uint8_t *b;
    size_t len, pos;
    yan_arena *arena;  /* NULL: validate only */
} cursor;

static yan_status cur_fail(const cursor *c, yan_status st, size_t at, const char *what, const char *key,
                           size_t klen) {
    const char *path = c->g ? c->g->path : "<value>";
    if (key)
        return yan_fail(st, "%s: offset %zu: key '%.*s': %s", path, at, (int)(klen > 200 ? 200 : klen), key, what);
    return yan_fail(st, "%s: offset %zu: %s", path, at, what);
}

static bool rd(cursor *c, void *out, size_t n) {
    if (c->len - c->pos < n) return false;
    memcpy(out, c->b + c->pos, n);
    c->pos += n;
    return true;
}

/* Validate one value of type t at the cursor; build array descriptors when
 * c->arena is set (into *arr when t is ARRAY). */
static yan_status parse_val(cursor *c, uint32_t t, int depth, yan_gguf_arr *arr, const char *key, size_t klen) {
    size_t at = c->pos;
    if (t >= YAN_GGUF_TYPE_COUNT) return cur_fail(c, YAN_ERR_FORMAT, at, "unknown value type", key, klen);
    if (t == YAN_GGUF_STRING) {
        uint64_t n;
        if (!rd(c, &n, 8)) return cur_fail(c, YAN_ERR_FORMAT, at, "truncated string length", key, klen);
        if (n > c->len - c->pos) return cur_fail(c, YAN_ERR_FORMAT, at, "string runs past the end of the file", key, klen);
        c->pos += (size_t)n;
        return YAN_OK;
    }
    if (t != YAN_GGUF_ARRAY) {
        size_t sz = k_type_sizes[t];
        if (c->len - c->pos < sz) return cur_fail(c, YAN_ERR_FORMAT, at, "truncated value", key, klen);
        if (t == YAN_GGUF_BOOL && c->b[c->pos] > 1) return cur_fail(c, YAN_ERR_FORMAT, at, "bool value is not 0 or 1", key, klen);
        c->pos += sz;
        return YAN_OK;
    }
    uint32_t et;
    uint64_t n;
    if (!rd(c, &et, 4) || !rd(c, &n, 8)) return cur_fail(c, YAN_ERR_FORMAT, at, "truncated array header", key, klen);
    if (et >= YAN_GGUF_TYPE_COUNT) return cur_fail(c, YAN_ERR_FORMAT, at, "unknown array element type", key, klen);
    if (depth >= YAN_GGUF_MAX_NEST) return cur_fail(c, YAN_ERR_FORMAT, at, "arrays nested too deep", key, klen);
    size_t left = c->len - c->pos;
    if (arr) {
        memset(arr, 0, sizeof *arr);
        arr->type = et;
        arr->n = n;
        arr->data = c->b + c->pos;
    }
    if (et != YAN_GGUF_STRING && et != YAN_GGUF_ARRAY) {
        size_t sz = k_type_sizes[et];
        if (n > left / sz) return cur_fail(c, YAN_ERR_FORMAT, at, "array runs past the end of the file", key, klen);
        if (et == YAN_GGUF_BOOL) {
            for (size_t i = 0; i < n; i++)
                if (c->b[c->pos + i] > 1) return cur_fail(c, YAN_ERR_FORMAT, c->pos + i, "bool array element is not 0 or 1", key, klen);
        }
        c->pos += (size_t)n * sz;
        return YAN_OK;
    }
    size_t min = et == YAN_GGUF_STRING ? 8 : 12;
    if (n > left / min) return cur_fail(c, YAN_ERR_FORMAT, at, "array count larger than the file can hold", key, klen);
    uint64_t *offs = NULL;
    yan_gguf_arr *sub = NULL;
    if (arr && c->arena) {
        offs = yan_arena_alloc(c->arena, (size_t)n * sizeof *offs + 1);
        if (et == YAN_GGUF_ARRAY) sub = yan_arena_alloc(c->arena, (size_t)n * sizeof *sub + 1);
        if (!offs || (et == YAN_GGUF_ARRAY && !sub)) return yan_fail(YAN_ERR_NOMEM, "out of memory reading GGUF");
        arr->offs = offs;
        arr->sub = sub;
    }
    size_t base = c->pos;
    for (size_t i = 0; i < n; i++) {
        if (offs) offs[i] = c->pos - base;
        yan_status st = parse_val(c, et, depth + 1, sub ? &sub[i] : NULL, key, klen);
        if (st != YAN_OK) return st;
    }
    return YAN_OK;
}

static size_t hcap_for(int64_t n) {
    size_t cap = 16;
    while (cap < (size_t)n * 2) cap *= 2;
    return cap;
}

/* Insert index i with name (s, n) into table h; returns false if the name is already present. */
static bool hash_insert(int64_t *h, size_t cap, int64_t i, const char *s, size_t n,
                        const char *(*name_of)(const yan_gguf *, int64_t, size_t *), const yan_gguf *g) {
    size_t m = cap - 1, pos = (size_t)yan_hash_bytes(s, n, 0) & m;
    while (h[pos]) {
        size_t ln = 0;
        const char *o = name_of(g, h[pos] - 1, &ln);
        if (ln == n && memcmp(o, s, n) == 0) return false;
        pos = (pos + 1) & m;
    }
    h[pos] = i + 1;
    return true;
}

static int64_t hash_find(const int64_t *h, size_t cap, const char *s, size_t n,
                         const char *(*name_of)(const yan_gguf *, int64_t, size_t *), const yan_gguf *g) {
    if (!cap) return -1;
    size_t m = cap - 1, pos = (size_t)yan_hash_bytes(s, n, 0) & m;
    while (h[pos]) {
        size_t ln = 0;
        const char *o = name_of(g, h[pos] - 1, &ln);
        if (ln == n && memcmp(o, s, n) == 0) return h[pos] - 1;
        pos = (pos + 1) & m;
    }
    return -1;
}

static const char *tensor_name_of(const yan_gguf *g, int64_t i, size_t *len) {
    *len = g->ts[i].name_len;
    return g->ts[i].name;
}

const char *yan_gguf_key(const yan_gguf *g, int64_t i, size_t *len) {
    if (i < 0 || i >= g->n_kv) return NULL;
    if (len) *len = g->kvs[i].klen;
    return g->kvs[i].key;
}

static const char *key_name_of(const yan_gguf *g, int64_t i, size_t *len) { return yan_gguf_key(g, i, len); }

static yan_status parse_file(yan_gguf *g) {
    cursor c = {g, g->data, g->len, 0, &g->arena};
    uint32_t magic, version;
    uint64_t n_t, n_kv;
    if (!rd(&c, &magic, 4)) return yan_fail(YAN_ERR_FORMAT, "%s: not a GGUF file (shorter than the header)", g->path);
    if (magic != YAN_GGUF_MAGIC) return yan_fail(YAN_ERR_FORMAT, "%s: not a GGUF file (bad magic)", g->path);
    if (!rd(&c, &version, 4)) return yan_fail(YAN_ERR_FORMAT, "%s: offset 4: truncated header", g->path);
    if (version == 1)
        return yan_fail(YAN_ERR_UNSUPPORTED, "%s: GGUF v1 is not supported (re-convert with a current llama.cpp)", g->path);
    if (version != 2 && version != 3) {
        if ((version & 0xFFFF) == 0 && (version >> 24) >= 1 && (version >> 24) <= 3)
            return yan_fail(YAN_ERR_UNSUPPORTED, "%s: big-endian GGUF is not supported", g->path);
        return yan_fail(YAN_ERR_UNSUPPORTED, "%s: unsupported GGUF version %u (expected 2 or 3)", g->path, version);
    }
    g->version = version;
    if (!rd(&c, &n_t, 8) || !rd(&c, &n_kv, 8)) return yan_fail(YAN_ERR_FORMAT, "%s: offset 8: truncated header", g->path);
    /* each kv takes >= 13 bytes (key len, type, 1-byte value); each tensor info >= 24 */
    size_t left = c.len - c.pos;
    if (n_kv > left / 13 || n_kv > INT32_MAX)
        return yan_fail(YAN_ERR_FORMAT, "%s: offset 16: metadata count %llu cannot fit in the file", g->path,
                        (unsigned long long)n_kv);
    if (n_t > left / 24 || n_t > INT32_MAX)
        return yan_fail(YAN_ERR_FORMAT, "%s: offset 8: tensor count %llu cannot fit in the file", g->path,
                        (unsigned long long)n_t);
    g->n_kv = (int64_t)n_kv;
    g->n_tensors = (int64_t)n_t;
    g->kvs = yan_calloc((size_t)n_kv + 1, sizeof *g->kvs);
    g->ts = yan_calloc((size_t)n_t + 1, sizeof *g->ts);
    g->kv_hcap = hcap_for(g->n_kv);
    g->t_hcap = hcap_for(g->n_tensors);
    g->kv_hash = yan_calloc(g->kv_hcap, sizeof *g->kv_hash);
    g->t_hash = yan_calloc(g->t_hcap, sizeof *g->t_hash);
    if (!g->kvs || !g->ts || !g->kv_hash || !g->t_hash) return yan_fail(YAN_ERR_NOMEM, "out of memory reading GGUF");

    /* ---- metadata */
    for (int64_t i = 0; i < g->n_kv; i++) {
        gguf_kv *kv = &g->kvs[i];
        size_t at = c.pos;
        uint64_t kl;
        if (!rd(&c, &kl, 8)) return yan_fail(YAN_ERR_FORMAT, "%s: offset %zu: truncated key (kv %lld)", g->path, at, (long long)i);
        if (kl > c.len - c.pos) return yan_fail(YAN_ERR_FORMAT, "%s: offset %zu: key length runs past the end (kv %lld)", g->path, at, (long long)i);
        if (kl == 0) return yan_fail(YAN_ERR_FORMAT, "%s: offset %zu: empty key (kv %lld)", g->path, at, (long long)i);
        kv->key = (const char *)c.b + c.pos;
        kv->klen = (size_t)kl;
        c.pos += kv->klen;
        if (!hash_insert(g->kv_hash, g->kv_hcap, i, kv->key, kv->klen, key_name_of, g))
            return cur_fail(&c, YAN_ERR_FORMAT, at, "duplicate key", kv->key, kv->klen);
        size_t tat = c.pos;
        if (!rd(&c, &kv->type, 4)) return cur_fail(&c, YAN_ERR_FORMAT, tat, "truncated value type", kv->key, kv->klen);
        if (kv->type >= YAN_GGUF_TYPE_COUNT) return cur_fail(&c, YAN_ERR_FORMAT, tat, "unknown value type", kv->key, kv->klen);
        kv->val = c.b + c.pos;
        if (kv->type == YAN_GGUF_ARRAY) {
            kv->arr = yan_arena_alloc(&g->arena, sizeof *kv->arr);
            if (!kv->arr) return yan_fail(YAN_ERR_NOMEM, "out of memory reading GGUF");
        }
        size_t vs = c.pos;
        yan_status st = parse_val(&c, kv->type, 0, kv->arr, kv->key, kv->klen);
        if (st != YAN_OK) return st;
        kv->vlen = c.pos - vs;
    }

    /* ---- alignment */
    g->alignment = YAN_GGUF_DEFAULT_ALIGNMENT;
    int64_t ai = yan_gguf_find_key(g, "general.alignment");
    if (ai >= 0) {
        uint32_t a;
        if (g->kvs[ai].type != YAN_GGUF_UINT32)
            return yan_fail(YAN_ERR_FORMAT, "%s: general.alignment must be uint32, not %s", g->path, yan_gguf_type_name(g->kvs[ai].type));
        memcpy(&a, g->kvs[ai].val, 4);
        if (a == 0 || (a & (a - 1)) != 0 || a > YAN_GGUF_MAX_ALIGNMENT)
            return yan_fail(YAN_ERR_FORMAT, "%s: general.alignment %u is not a power of two up to %u", g->path, a, YAN_GGUF_MAX_ALIGNMENT);
        g->alignment = a;
    }

    /* ---- tensor infos */
    for (int64_t i = 0; i < g->n_tensors; i++) {
        yan_gguf_tensor *t = &g->ts[i];
        size_t at = c.pos;
        uint64_t nl;
        if (!rd(&c, &nl, 8)) return yan_fail(YAN_ERR_FORMAT, "%s: offset %zu: truncated tensor info %lld", g->path, at, (long long)i);
        if (nl > YAN_GGUF_MAX_NAME || nl > c.len - c.pos)
            return yan_fail(YAN_ERR_FORMAT, "%s: offset %zu: tensor %lld: name length %llu too long or past the end", g->path, at,
                            (long long)i, (unsigned long long)nl);
        t->name = (const char *)c.b + c.pos;
        t->name_len = (size_t)nl;
        c.pos += t->name_len;
        int nn = (int)t->name_len;
        if (!hash_insert(g->t_hash, g->t_hcap, i, t->name, t->name_len, tensor_name_of, g))
            return yan_fail(YAN_ERR_FORMAT, "%s: offset %zu: duplicate tensor name '%.*s'", g->path, at, nn, t->name);
        at = c.pos;
        if (!rd(&c, &t->n_dims, 4)) return yan_fail(YAN_ERR_FORMAT, "%s: offset %zu: tensor '%.*s': truncated", g->path, at, nn, t->name);
        if (t->n_dims > YAN_GGUF_MAX_DIMS)
            return yan_fail(YAN_ERR_FORMAT, "%s: offset %zu: tensor '%.*s': n_dims %u > 4", g->path, at, nn, t->name, t->n_dims);
        uint64_t prod = 1;
        for (uint32_t d = 0; d < YAN_GGUF_MAX_DIMS; d++) {
            t->ne[d] = 1;
            if (d >= t->n_dims) continue;
            if (!rd(&c, &t->ne[d], 8)) return yan_fail(YAN_ERR_FORMAT, "%s: tensor '%.*s': truncated dims", g->path, nn, t->name);
            if (t->ne[d] > (uint64_t)INT64_MAX || __builtin_mul_overflow(prod, t->ne[d], &prod) || prod > (uint64_t)INT64_MAX)
                return yan_fail(YAN_ERR_FORMAT, "%s: tensor '%.*s': dims overflow", g->path, nn, t->name);
        }
        at = c.pos;
        if (!rd(&c, &t->type, 4) || !rd(&c, &t->offset, 8))
            return yan_fail(YAN_ERR_FORMAT, "%s: offset %zu: tensor '%.*s': truncated", g->path, at, nn, t->name);
        if (!yan_ggml_type(t->type))
            return yan_fail(YAN_ERR_UNSUPPORTED, "%s: tensor '%.*s': unknown ggml type %u", g->path, nn, t->name, t->type);
        if (!yan_ggml_nbytes(t->type, YAN_GGUF_MAX_DIMS, t->ne, &t->nbytes))
            return yan_fail(YAN_ERR_FORMAT, "%s: tensor '%.*s': ne[0]=%llu is not a multiple of the %s block size %u (or size overflows)",
                            g->path, nn, t->name, (unsigned long long)t->ne[0], yan_ggml_type(t->type)->name,
                            yan_ggml_type(t->type)->blck_size);
        if (t->offset % g->alignment != 0)
            return yan_fail(YAN_ERR_FORMAT, "%s: tensor '%.*s': data offset %llu is not a multiple of the alignment %zu", g->path, nn,
                            t->name, (unsigned long long)t->offset, g->alignment);
    }

    /* ---- data section */
    size_t pad = (g->alignment - c.pos % g->alignment) % g->alignment;
    if (yan_add_ovf(c.pos, pad, &g->data_off)) return yan_fail(YAN_ERR_FORMAT, "%s: size overflow", g->path);
    for (int64_t i = 0; i < g->n_tensors; i++) {
        yan_gguf_tensor *t = &g->ts[i];
        size_t end;
        if (g->data_off > g->len || t->offset > g->len - g->data_off ||
            yan_add_ovf(g->data_off + (size_t)t->offset, t->nbytes, &end) || end > g->len)
            return yan_fail(YAN_ERR_FORMAT, "%s: tensor '%.*s': data (offset %llu, %zu bytes) runs past the end of the file (%zu bytes)%s",
                            g->path, (int)t->name_len, t->name, (unsigned long long)t->offset, t->nbytes, g->len,
                            " — the file may be truncated; download it again");
        t->data = g->data + g->data_off + t->offset;
    }
    return YAN_OK;
}

static yan_status open_common(yan_gguf *g, yan_gguf **out) {
    yan_status st = parse_file(g);
    if (st != YAN_OK) {
        yan_gguf_close(g);
        return st;
    }
    *out = g;
    return YAN_OK;
}

yan_status yan_gguf_open_memory(const uint8_t *data, size_t len, const char *name, yan_gguf **out) {
    *out = NULL;
    yan_gguf *g = yan_calloc(1, sizeof *g);
    if (!g) return yan_fail(YAN_ERR_NOMEM, "out of memory opening GGUF");
    yan_arena_init(&g->arena, 64 * 1024);
    g->path = yan_strdup(name ? name : "<memory>");
    if (!g->path) { yan_gguf_close(g); return yan_fail(YAN_ERR_NOMEM, "out of memory opening GGUF"); }
    g->data = data ? data : (const uint8_t *)"";
    g->len = data ? len : 0;
    return open_common(g, out);
}

yan_status yan_gguf_open(const char *path, yan_gguf **out) {
    *out = NULL;
    yan_gguf *g = yan_calloc(1, sizeof *g);
    if (!g) return yan_fail(YAN_ERR_NOMEM, "out of memory opening GGUF");
    yan_arena_init(&g->arena, 64 * 1024);
    g->path = yan_strdup(path);
    if (!g->path) { yan_gguf_close(g); return yan_fail(YAN_ERR_NOMEM, "out of memory opening GGUF"); }
    yan_status st = yan_mmap_open(path, &g->map);
    if (st != YAN_OK) { yan_gguf_close(g); return st; }
    g->mapped = true;
    g->data = g->map.data ? g->map.data : (const uint8_t *)"";
    g->len = g->map.len;
    return open_common(g, out);
}

void yan_gguf_close(yan_gguf *g) {
    if (!g) return;
    if (g->mapped) yan_mmap_close(&g->map);
    yan_arena_free(&g->arena);
    yan_free(g->kvs);
    yan_free(g->ts);
    yan_free(g->kv_hash);
    yan_free(g->t_hash);
    yan_free(g->path);
    yan_free(g);
}

const char *yan_gguf_path(const yan_gguf *g) { return g->path; }
uint32_t yan_gguf_version(const yan_gguf *g) { return g->version; }
size_t yan_gguf_alignment(const yan_gguf *g) { return g->alignment; }
size_t yan_gguf_data_offset(const yan_gguf *g) { return g->data_off; }
const uint8_t *yan_gguf_bytes(const yan_gguf *g, size_t *len) { *len = g->len; return g->data; }
int64_t yan_gguf_n_kv(const yan_gguf *g) { return g->n_kv; }

int64_t yan_gguf_find_key(const yan_gguf *g, const char *key) {
    return hash_find(g->kv_hash, g->kv_hcap, key, strlen(key), key_name_of, g);
}

uint32_t yan_gguf_kv_type(const yan_gguf *g, int64_t i) {
    return (i >= 0 && i < g->n_kv) ? g->kvs[i].type : YAN_GGUF_TYPE_COUNT;
}

const uint8_t *yan_gguf_kv_raw(const yan_gguf *g, int64_t i, size_t *len) {
    if (i < 0 || i >= g->n_kv) return NULL;
    *len = g->kvs[i].vlen;
    return g->kvs[i].val;
}

/* ----------------------------------------------------------------- getters */

/* Integer value at p of type t: sets *neg and the magnitude/bits. */
static bool read_int(uint32_t t, const uint8_t *p, int64_t *sv, uint64_t *uv, bool *neg) {
    *neg = false;
    switch (t) {
    case YAN_GGUF_UINT8: *uv = p[0]; break;
    case YAN_GGUF_UINT16: { uint16_t v; memcpy(&v, p, 2); *uv = v; break; }
    case YAN_GGUF_UINT32: { uint32_t v; memcpy(&v, p, 4); *uv = v; break; }
    case YAN_GGUF_UINT64: memcpy(uv, p, 8); break;
    case YAN_GGUF_INT8: *sv = (int8_t)p[0]; goto s;
    case YAN_GGUF_INT16: { int16_t v; memcpy(&v, p, 2); *sv = v; goto s; }
    case YAN_GGUF_INT32: { int32_t v; memcpy(&v, p, 4); *sv = v; goto s; }
    case YAN_GGUF_INT64: memcpy(sv, p, 8); goto s;
    default: return false;
    }
    *sv = *uv > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)*uv;
    return true;
s:
    *neg = *sv < 0;
    *uv = *neg ? 0 : (uint64_t)*sv;
    return true;
}

static const gguf_kv *kv_by_key(const yan_gguf *g, const char *key) {
    int64_t i = yan_gguf_find_key(g, key);
    return i < 0 ? NULL : &g->kvs[i];
}

static yan_status wrong_type(const yan_gguf *g, const char *key, uint32_t t, const char *want) {
    return yan_fail(YAN_ERR_FORMAT, "%s: key '%s' has type %s, expected %s", g->path, key, yan_gguf_type_name(t), want);
}

yan_status yan_gguf_get_u64(const yan_gguf *g, const char *key, uint64_t *out) {
    const gguf_kv *kv = kv_by_key(g, key);
    if (!kv) return YAN_ERR_NOT_FOUND;
    int64_t sv; uint64_t uv; bool neg;
    if (!read_int(kv->type, kv->val, &sv, &uv, &neg)) return wrong_type(g, key, kv->type, "an integer");
    if (neg) return yan_fail(YAN_ERR_FORMAT, "%s: key '%s' is negative (%lld)", g->path, key, (long long)sv);
    *out = uv;
    return YAN_OK;
}

yan_status yan_gguf_get_i64(const yan_gguf *g, const char *key, int64_t *out) {
    const gguf_kv *kv = kv_by_key(g, key);
    if (!kv) return YAN_ERR_NOT_FOUND;
    int64_t sv; uint64_t uv; bool neg;
    if (!read_int(kv->type, kv->val, &sv, &uv, &neg)) return wrong_type(g, key, kv->type, "an integer");
    if (!neg && uv > (uint64_t)INT64_MAX) return yan_fail(YAN_ERR_FORMAT, "%s: key '%s' is out of range", g->path, key);
    *out = sv;
    return YAN_OK;
}

yan_status yan_gguf_get_u32(const yan_gguf *g, const char *key, uint32_t *out) {
    uint64_t v;
    yan_status st = yan_gguf_get_u64(g, key, &v);
    if (st != YAN_OK) return st;
    if (v > UINT32_MAX) return yan_fail(YAN_ERR_FORMAT, "%s: key '%s' = %llu does not fit in 32 bits", g->path, key, (unsigned long long)v);
    *out = (uint32_t)v;
    return YAN_OK;
}

yan_status yan_gguf_get_i32(const yan_gguf *g, const char *key, int32_t *out) {
    int64_t v;
    yan_status st = yan_gguf_get_i64(g, key, &v);
    if (st != YAN_OK) return st;
    if (v > INT32_MAX || v < INT32_MIN) return yan_fail(YAN_ERR_FORMAT, "%s: key '%s' = %lld does not fit in 32 bits", g->path, key, (long long)v);
    *out = (int32_t)v;
    return YAN_OK;
}

yan_status yan_gguf_get_f64(const yan_gguf *g, const char *key, double *out) {
    const gguf_kv *kv = kv_by_key(g, key);
    if (!kv) return YAN_ERR_NOT_FOUND;
    if (kv->type == YAN_GGUF_FLOAT32) { float f; memcpy(&f, kv->val, 4); *out = f; return YAN_OK; }
    if (kv->type == YAN_GGUF_FLOAT64) { memcpy(out, kv->val, 8); return YAN_OK; }
    return wrong_type(g, key, kv->type, "float32");
}

yan_status yan_gguf_get_f32(const yan_gguf *g, const char *key, float *out) {
    double d;
    yan_status st = yan_gguf_get_f64(g, key, &d);
    if (st == YAN_OK) *out = (float)d;
    return st;
}

yan_status yan_gguf_get_bool(const yan_gguf *g, const char *key, bool *out) {
    const gguf_kv *kv = kv_by_key(g, key);
    if (!kv) return YAN_ERR_NOT_FOUND;
    if (kv->type != YAN_GGUF_BOOL) return wrong_type(g, key, kv->type, "bool");
    *out = kv->val[0] != 0;
    return YAN_OK;
}

yan_status yan_gguf_get_str(const yan_gguf *g, const char *key, const char **s, size_t *len) {
    const gguf_kv *kv = kv_by_key(g, key);
    if (!kv) return YAN_ERR_NOT_FOUND;
    if (kv->type != YAN_GGUF_STRING) return wrong_type(g, key, kv->type, "string");
    uint64_t n;
    memcpy(&n, kv->val, 8);
    *s = (const char *)kv->val + 8;
    *len = (size_t)n;
    return YAN_OK;
}

yan_status yan_gguf_get_arr(const yan_gguf *g, const char *key, yan_gguf_arr *out) {
    const gguf_kv *kv = kv_by_key(g, key);
    if (!kv) return YAN_ERR_NOT_FOUND;
    if (kv->type != YAN_GGUF_ARRAY) return wrong_type(g, key, kv->type, "array");
    *out = *kv->arr;
    return YAN_OK;
}

const char *yan_gguf_arr_str(const yan_gguf_arr *a, uint64_t i, size_t *len) {
    YAN_ASSERT(a->type == YAN_GGUF_STRING && i < a->n && a->offs);
    const uint8_t *p = a->data + a->offs[i];
    uint64_t n;
    memcpy(&n, p, 8);
    *len = (size_t)n;
    return (const char *)p + 8;
}

const yan_gguf_arr *yan_gguf_arr_sub(const yan_gguf_arr *a, uint64_t i) {
    YAN_ASSERT(a->type == YAN_GGUF_ARRAY && i < a->n && a->sub);
    return &a->sub[i];
}

int64_t yan_gguf_arr_int(const yan_gguf_arr *a, uint64_t i) {
    YAN_ASSERT(i < a->n);
    size_t sz = yan_gguf_type_size(a->type);
    int64_t sv = 0; uint64_t uv; bool neg;
    bool ok = sz && read_int(a->type, a->data + (size_t)i * sz, &sv, &uv, &neg);
    YAN_ASSERT(ok);
    return sv;
}

double yan_gguf_arr_float(const yan_gguf_arr *a, uint64_t i) {
    YAN_ASSERT(i < a->n && (a->type == YAN_GGUF_FLOAT32 || a->type == YAN_GGUF_FLOAT64));
    if (a->type == YAN_GGUF_FLOAT32) { float f; memcpy(&f, a->data + (size_t)i * 4, 4); return f; }
    double d;
    memcpy(&d, a->data + (size_t)i * 8, 8);
    return d;
}

int64_t yan_gguf_n_tensors(const yan_gguf *g) { return g->n_tensors; }

const yan_gguf_tensor *yan_gguf_tensor_at(const yan_gguf *g, int64_t i) {
    return (i >= 0 && i < g->n_tensors) ? &g->ts[i] : NULL;
}

const yan_gguf_tensor *yan_gguf_find_tensor(const yan_gguf *g, const char *name) {
    int64_t i = hash_find(g->t_hash, g->t_hcap, name, strlen(name), tensor_name_of, g);
    return i < 0 ? NULL : &g->ts[i];
}

/* ------------------------------------------------------------------ writer */

typedef struct {
    char *key;
    uint32_t type;
    yan_buf val; /* encoded value */
} wkv;

typedef struct {
    char *name;
    uint32_t type, n_dims;
    uint64_t ne[YAN_GGUF_MAX_DIMS];
    const void *data;
    size_t nbytes;
} wtensor;

struct yan_gguf_writer {
    wkv *kvs;
    size_t n_kv, cap_kv;
    wtensor *ts;
    size_t n_t, cap_t;
};

yan_status yan_gguf_writer_new(yan_gguf_writer **out) {
    *out = yan_calloc(1, sizeof **out);
    return *out ? YAN_OK : yan_fail(YAN_ERR_NOMEM, "out of memory creating a GGUF writer");
}

void yan_gguf_writer_free(yan_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        yan_free(w->kvs[i].key);
        yan_buf_free(&w->kvs[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++) yan_free(w->ts[i].name);
    yan_free(w->kvs);
    yan_free(w->ts);
    yan_free(w);
}

/* Slot for key (existing one emptied, or a new one); NULL + status on failure. */
static wkv *w_slot(yan_gguf_writer *w, const char *key, uint32_t type, yan_status *st) {
    size_t kl = key ? strlen(key) : 0;
    if (kl == 0 || kl > 65535) {
        *st = yan_fail(YAN_ERR_INVALID_ARG, "gguf writer: bad key '%s'", key ? key : "(null)");
        return NULL;
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, key) == 0) {
            w->kvs[i].val.len = 0;
            w->kvs[i].val.oom = false;
            w->kvs[i].type = type;
            return &w->kvs[i];
        }
    }
    if (w->n_kv == w->cap_kv) {
        size_t nc = w->cap_kv ? w->cap_kv * 2 : 16;
        wkv *n = yan_realloc(w->kvs, nc * sizeof *n);
        if (!n) { *st = yan_fail(YAN_ERR_NOMEM, "out of memory in GGUF writer"); return NULL; }
        w->kvs = n;
        w->cap_kv = nc;
    }
    char *k = yan_strdup(key);
    if (!k) { *st = yan_fail(YAN_ERR_NOMEM, "out of memory in GGUF writer"); return NULL; }
    wkv *s = &w->kvs[w->n_kv++];
    memset(s, 0, sizeof *s);
    s->key = k;
    s->type = type;
    return s;
}

/* Remove the last-touched key slot if its value failed to build. */
static yan_status w_done(yan_gguf_writer *w, wkv *s) {
    if (!s->val.oom) return YAN_OK;
    /* leave no half-written value behind */
    size_t i = (size_t)(s - w->kvs);
    yan_free(s->key);
    yan_buf_free(&s->val);
    memmove(&w->kvs[i], &w->kvs[i + 1], (w->n_kv - i - 1) * sizeof *w->kvs);
    w->n_kv--;
    return yan_fail(YAN_ERR_NOMEM, "out of memory in GGUF writer");
}

static yan_status w_scalar(yan_gguf_writer *w, const char *key, uint32_t type, const void *v) {
    yan_status st = YAN_OK;
    wkv *s = w_slot(w, key, type, &st);
    if (!s) return st;
    yan_buf_append(&s->val, v, k_type_sizes[type]);
    return w_done(w, s);
}

yan_status yan_gguf_w_set_u8(yan_gguf_writer *w, const char *key, uint8_t v) { return w_scalar(w, key, YAN_GGUF_UINT8, &v); }
yan_status yan_gguf_w_set_i8(yan_gguf_writer *w, const char *key, int8_t v) { return w_scalar(w, key, YAN_GGUF_INT8, &v); }
yan_status yan_gguf_w_set_u16(yan_gguf_writer *w, const char *key, uint16_t v) { return w_scalar(w, key, YAN_GGUF_UINT16, &v); }
yan_status yan_gguf_w_set_i16(yan_gguf_writer *w, const char *key, int16_t v) { return w_scalar(w, key, YAN_GGUF_INT16, &v); }
yan_status yan_gguf_w_set_u32(yan_gguf_writer *w, const char *key, uint32_t v) { return w_scalar(w, key, YAN_GGUF_UINT32, &v); }
yan_status yan_gguf_w_set_i32(yan_gguf_writer *w, const char *key, int32_t v) { return w_scalar(w, key, YAN_GGUF_INT32, &v); }
yan_status yan_gguf_w_set_f32(yan_gguf_writer *w, const char *key, float v) { return w_scalar(w, key, YAN_GGUF_FLOAT32, &v); }
yan_status yan_gguf_w_set_u64(yan_gguf_writer *w, const char *key, uint64_t v) { return w_scalar(w, key, YAN_GGUF_UINT64, &v); }
yan_status yan_gguf_w_set_i64(yan_gguf_writer *w, const char *key, int64_t v) { return w_scalar(w, key, YAN_GGUF_INT64, &v); }
yan_status yan_gguf_w_set_f64(yan_gguf_writer *w, const char *key, double v) { return w_scalar(w, key, YAN_GGUF_FLOAT64, &v); }
yan_status yan_gguf_w_set_bool(yan_gguf_writer *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    return w_scalar(w, key, YAN_GGUF_BOOL, &b);
}

static void put_str(yan_buf *b, const char *s, size_t n) {
    uint64_t l = n;
    yan_buf_append(b, &l, 8);
    yan_buf_append(b, s, n);
}

yan_status yan_gguf_w_set_str(yan_gguf_writer *w, const char *key, const char *s, size_t len) {
    yan_status st = YAN_OK;
    wkv *slot = w_slot(w, key, YAN_GGUF_STRING, &st);
    if (!slot) return st;
    put_str(&slot->val, s, len);
    return w_done(w, slot);
}

yan_status yan_gguf_w_set_arr(yan_gguf_writer *w, const char *key, uint32_t et, const void *data, size_t n) {
    size_t sz = yan_gguf_type_size(et), bytes;
    if (!sz) return yan_fail(YAN_ERR_INVALID_ARG, "gguf writer: key '%s': %s arrays need yan_gguf_w_set_arr_str/raw", key, yan_gguf_type_name(et));
    if (yan_mul_ovf(n, sz, &bytes)) return yan_fail(YAN_ERR_INVALID_ARG, "gguf writer: key '%s': array too large", key);
    if (et == YAN_GGUF_BOOL) {
        for (size_t i = 0; i < n; i++)
            if (((const uint8_t *)data)[i] > 1) return yan_fail(YAN_ERR_INVALID_ARG, "gguf writer: key '%s': bool element %zu is not 0/1", key, i);
    }
    yan_status st = YAN_OK;
    wkv *s = w_slot(w, key, YAN_GGUF_ARRAY, &st);
    if (!s) return st;
    uint64_t cnt = n;
    yan_buf_append(&s->val, &et, 4);
    yan_buf_append(&s->val, &cnt, 8);
    if (bytes) yan_buf_append(&s->val, data, bytes);
    return w_done(w, s);
}

yan_status yan_gguf_w_set_arr_str(yan_gguf_writer *w, const char *key, const char *const *strs, const size_t *lens, size_t n) {
    yan_status st = YAN_OK;
    wkv *s = w_slot(w, key, YAN_GGUF_ARRAY, &st);
    if (!s) return st;
    uint32_t et = YAN_GGUF_STRING;
    uint64_t cnt = n;
    yan_buf_append(&s->val, &et, 4);
    yan_buf_append(&s->val, &cnt, 8);
    for (size_t i = 0; i < n && !s->val.oom; i++) put_str(&s->val, strs[i], lens ? lens[i] : strlen(strs[i]));
    return w_done(w, s);
}

yan_status yan_gguf_w_set_raw(yan_gguf_writer *w, const char *key, uint32_t type, const void *value, size_t len) {
    cursor c = {NULL, value ? value : "", value ? len : 0, 0, NULL};
    yan_status st = parse_val(&c, type, 0, NULL, key, key ? strlen(key) : 0);
    if (st != YAN_OK) return st;
    if (c.pos != c.len) return yan_fail(YAN_ERR_FORMAT, "gguf writer: key '%s': %zu trailing bytes after the value", key, c.len - c.pos);
    wkv *s = w_slot(w, key, type, &st);
    if (!s) return st;
    if (len) yan_buf_append(&s->val, value, len);
    return w_done(w, s);
}

yan_status yan_gguf_w_add_tensor(yan_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                 const uint64_t *dims, const void *data) {
    size_t nl = name ? strlen(name) : 0;
    if (nl == 0 || nl >= YAN_GGUF_MAX_NAME)
        return yan_fail(YAN_ERR_INVALID_ARG, "gguf writer: tensor name '%s' is empty or longer than %d bytes", name ? name : "", YAN_GGUF_MAX_NAME - 1);
    if (n_dims < 1 || n_dims > YAN_GGUF_MAX_DIMS)
        return yan_fail(YAN_ERR_INVALID_ARG, "gguf writer: tensor '%s': n_dims %u not in 1..4", name, n_dims);
    wtensor t = {0};
    t.type = type;
    t.n_dims = n_dims;
    for (uint32_t d = 0; d < YAN_GGUF_MAX_DIMS; d++) t.ne[d] = d < n_dims ? dims[d] : 1;
    if (!yan_ggml_nbytes(type, YAN_GGUF_MAX_DIMS, t.ne, &t.nbytes))
        return yan_fail(YAN_ERR_INVALID_ARG, "gguf writer: tensor '%s': unknown type %u, or ne0 not a multiple of its block size", name, type);
    if (t.nbytes && !data) return yan_fail(YAN_ERR_INVALID_ARG, "gguf writer: tensor '%s': NULL data", name);
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->ts[i].name, name) == 0) return yan_fail(YAN_ERR_INVALID_ARG, "gguf writer: duplicate tensor '%s'", name);
    if (w->n_t == w->cap_t) {
        size_t nc = w->cap_t ? w->cap_t * 2 : 16;
        wtensor *n = yan_realloc(w->ts, nc * sizeof *n);
        if (!n) return yan_fail(YAN_ERR_NOMEM, "out of memory in GGUF writer");
        w->ts = n;
        w->cap_t = nc;
    }
    t.name = yan_strdup(name);
    if (!t.name) return yan_fail(YAN_ERR_NOMEM, "out of memory in GGUF writer");
    t.data = data;
    w->ts[w->n_t++] = t;
    return YAN_OK;
}

typedef yan_status (*sink_fn)(void *ud, const void *p, size_t n);

/* The data alignment the writer pads to: general.alignment when set, which
 * must then be what the reader accepts (a uint32 power of two up to
 * YAN_GGUF_MAX_ALIGNMENT); 0 when it is not. */
static size_t w_alignment(const yan_gguf_writer *w) {
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, "general.alignment") != 0) continue;
        uint32_t a = 0;
        if (w->kvs[i].type == YAN_GGUF_UINT32) memcpy(&a, w->kvs[i].val.data, 4);
        return a && (a & (a - 1)) == 0 && a <= YAN_GGUF_MAX_ALIGNMENT ? a : 0;
    }
    return YAN_GGUF_DEFAULT_ALIGNMENT;
}

static yan_status emit(const yan_gguf_writer *w, sink_fn sink, void *ud) {
    static const uint8_t zeros[64] = {0};
    size_t align = w_alignment(w), pos = 0;
    yan_status st;
    if (!align)
        return yan_fail(YAN_ERR_INVALID_ARG, "gguf writer: general.alignment must be a uint32 power of two up to %u", YAN_GGUF_MAX_ALIGNMENT);
#define PUT(p, n) do { if ((st = sink(ud, (p), (n))) != YAN_OK) return st; pos += (n); } while (0)
#define PAD() do { size_t pad_ = (align - pos % align) % align; \
                   while (pad_) { size_t k_ = pad_ < sizeof zeros ? pad_ : sizeof zeros; PUT(zeros, k_); pad_ -= k_; } } while (0)
    uint32_t magic = YAN_GGUF_MAGIC, version = YAN_GGUF_VERSION;
    uint64_t nt = w->n_t, nkv = w->n_kv;
    PUT(&magic, 4);
    PUT(&version, 4);
    PUT(&nt, 8);
    PUT(&nkv, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        const wkv *kv = &w->kvs[i];
        uint64_t kl = strlen(kv->key);
        PUT(&kl, 8);
        PUT(kv->key, (size_t)kl);
        PUT(&kv->type, 4);
        if (kv->val.len) PUT(kv->val.data, kv->val.len);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->ts[i];
        uint64_t nl = strlen(t->name);
        PUT(&nl, 8);
        PUT(t->name, (size_t)nl);
        PUT(&t->n_dims, 4);
        PUT(t->ne, 8 * (size_t)t->n_dims);
        PUT(&t->type, 4);
        PUT(&off, 8);
        off += t->nbytes + (align - t->nbytes % align) % align;
    }
    PAD();
    for (size_t i = 0; i < w->n_t; i++) {
        if (w->ts[i].nbytes) PUT(w->ts[i].data, w->ts[i].nbytes);
        PAD();
    }
#undef PUT
#undef PAD
    return YAN_OK;
}

static yan_status sink_buf(void *ud, const void *p, size_t n) {
    return yan_buf_append(ud, p, n) ? YAN_OK : yan_fail(YAN_ERR_NOMEM, "out of memory writing GGUF");
}

static yan_status sink_file(void *ud, const void *p, size_t n) { return yan_afile_write(ud, p, n); }

yan_status yan_gguf_w_to_buf(const yan_gguf_writer *w, yan_buf *out) { return emit(w, sink_buf, out); }

yan_status yan_gguf_w_write(const yan_gguf_writer *w, const char *path) {
    yan_afile af;
    yan_status st = yan_afile_open(&af, path);
    if (st != YAN_OK) return st;
    st = emit(w, sink_file, &af);
    if (st != YAN_OK) {
        yan_afile_abort(&af);
        return st;
    }
    return yan_afile_commit(&af);
}
