/* data.c — token shards for training (contract in data.h): the reader
 * (mapped shards seen as one stream, strict validation, batches), the writer
 * (shards as fsynced temporaries, renamed at commit), and the pipeline of
 * `yan data prepare` (inputs -> segments -> parallel tokenization -> ordered
 * writes -> tokenizer.gguf + shards + meta.json).
 *
 * meta.json (format "yan-data", version 1):
 *   {"format": "yan-data", "version": 1,
 *    "tokenizer": {"source": PATH, "file": "tokenizer.gguf", "kind": "bpe",
 *                  "pre": "cl100k", "n_vocab": N, "bos": ID|-1, "eos": ID|-1},
 *    "separator": "eos"|"bos"|"none", "token_bytes": 2|4,
 *    "shard_tokens": N, "segment_bytes": N, "val_fraction": F,
 *    "documents": N, "input_bytes": N,
 *    "train": {"tokens": N, "documents": N, "text_bytes": N, "files": [NAME...]},
 *    "val":   {... the same ...},
 *    "inputs": [{"path": PATH, "format": "text"|"jsonl", "bytes": N}, ...]}
 * It holds nothing that depends on the thread count or the clock.
 *
 * Pipeline. A sequential scan maps every input and cuts it into tasks of
 * about segment_bytes at line boundaries (preferring a newline followed by a
 * non-space, where pre-tokenizers split anyway, so that segments tokenize as
 * the whole file would). A text file's tasks are its segments, the units of
 * the train/val split; a JSONL file's tasks are runs of lines, and each
 * record is a unit. The scan also decides every unit's split (so that "at
 * least one unit per split" can be enforced before any work). Workers
 * (yan_parallel_for) take tasks in order and tokenize them; whoever finishes
 * the oldest unwritten task writes every finished task in order, so the
 * output does not depend on the thread count. A task may start only when it
 * is within `window` of the oldest unwritten one, which bounds memory to
 * window tasks' tokens (results live in a ring of that size).
 *
 * Not here: shuffling (the trainer reads sequentially), deduplication,
 * compression. Depends on base (mmap, atomic files, threads, JSON) and the
 * tokenizer (tok.h for spm's space prefix, tok_gguf.h for tokenizer.gguf). */
#include "train/data.h"

#include "base/json.h"
#include "tokenizer/tok.h"
#include "tokenizer/tok_gguf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ================================================================ header */

/* byte offsets in the 64-byte header */
enum {
    H_MAGIC = 0,
    H_VERSION = 8,
    H_TOKEN_BYTES = 12,
    H_N_TOKENS = 16,
    H_N_DOCS = 24,
    H_N_TEXT = 32,
    H_N_VOCAB = 40,
    H_BOS = 44,
    H_EOS = 48,
    H_END = 52, /* zero padding from here to 64 */
};
_Static_assert(H_END <= YAN_SHARD_HEADER_BYTES, "shard header fields overflow 64 bytes");
_Static_assert(sizeof(YAN_SHARD_MAGIC) == 8, "the magic is 8 bytes with its NUL");

typedef struct {
    uint32_t version, token_bytes;
    uint64_t n_tokens, n_docs, n_text_bytes;
    uint32_t n_vocab, bos, eos;
} shard_header;

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

/* u16 ids when they fit, else u32 */
static int width_for(uint32_t n_vocab) { return n_vocab <= 65536 ? 2 : 4; }

static void header_encode(const shard_header *h, uint8_t out[YAN_SHARD_HEADER_BYTES]) {
    memset(out, 0, YAN_SHARD_HEADER_BYTES);
    memcpy(out + H_MAGIC, YAN_SHARD_MAGIC, 8);
    put32(out + H_VERSION, h->version);
    put32(out + H_TOKEN_BYTES, h->token_bytes);
    put64(out + H_N_TOKENS, h->n_tokens);
    put64(out + H_N_DOCS, h->n_docs);
    put64(out + H_N_TEXT, h->n_text_bytes);
    put32(out + H_N_VOCAB, h->n_vocab);
    put32(out + H_BOS, h->bos);
    put32(out + H_EOS, h->eos);
}

/* Decode and check a shard image of len bytes: everything but the ids. */
static yan_status header_check(const uint8_t *p, size_t len, const char *path, shard_header *h) {
    if (len < YAN_SHARD_HEADER_BYTES)
        return yan_fail(YAN_ERR_FORMAT, "%s: truncated: %zu bytes, shorter than the 64-byte header", path, len);
    if (memcmp(p + H_MAGIC, YAN_SHARD_MAGIC, 8) != 0)
        return yan_fail(YAN_ERR_FORMAT, "%s: not a yan token shard (bad magic)", path);
    h->version = get32(p + H_VERSION);
    h->token_bytes = get32(p + H_TOKEN_BYTES);
    h->n_tokens = get64(p + H_N_TOKENS);
    h->n_docs = get64(p + H_N_DOCS);
    h->n_text_bytes = get64(p + H_N_TEXT);
    h->n_vocab = get32(p + H_N_VOCAB);
    h->bos = get32(p + H_BOS);
    h->eos = get32(p + H_EOS);
    if (h->version != YAN_SHARD_VERSION)
        return yan_fail(YAN_ERR_FORMAT, "%s: shard version %u, this yan reads version %d", path, h->version,
                        YAN_SHARD_VERSION);
    for (size_t i = H_END; i < YAN_SHARD_HEADER_BYTES; i++)
        if (p[i]) return yan_fail(YAN_ERR_FORMAT, "%s: non-zero header padding at byte %zu", path, i);
    if (h->n_vocab == 0 || h->n_vocab > (uint32_t)INT32_MAX)
        return yan_fail(YAN_ERR_FORMAT, "%s: bad vocabulary size %u", path, h->n_vocab);
    if (h->token_bytes != 2 && h->token_bytes != 4)
        return yan_fail(YAN_ERR_FORMAT, "%s: token width %u bytes (must be 2 or 4)", path, h->token_bytes);
    if ((int)h->token_bytes != width_for(h->n_vocab))
        return yan_fail(YAN_ERR_FORMAT, "%s: token width %u bytes does not match vocabulary size %u (expected %d)",
                        path, h->token_bytes, h->n_vocab, width_for(h->n_vocab));
    if (h->bos != YAN_SHARD_NONE && h->bos >= h->n_vocab)
        return yan_fail(YAN_ERR_FORMAT, "%s: bos id %u out of range (vocabulary %u)", path, h->bos, h->n_vocab);
    if (h->eos != YAN_SHARD_NONE && h->eos >= h->n_vocab)
        return yan_fail(YAN_ERR_FORMAT, "%s: eos id %u out of range (vocabulary %u)", path, h->eos, h->n_vocab);
    size_t body, want;
    if (h->n_tokens > SIZE_MAX || yan_mul_ovf((size_t)h->n_tokens, h->token_bytes, &body) ||
        yan_add_ovf(body, YAN_SHARD_HEADER_BYTES, &want) || want != len)
        return yan_fail(YAN_ERR_FORMAT, "%s: size %zu bytes, but the header says %llu tokens of %u bytes (%s)", path,
                        len, (unsigned long long)h->n_tokens, h->token_bytes,
                        h->n_tokens > (len - YAN_SHARD_HEADER_BYTES) / h->token_bytes ? "truncated?"
                                                                                     : "trailing bytes");
    return YAN_OK;
}

/* Ids are little-endian u16/u32; these compile to plain loads. */
static inline uint32_t load_id(const uint8_t *p, int tb) {
    return tb == 2 ? (uint32_t)p[0] | (uint32_t)p[1] << 8 : get32(p);
}

/* Index of the first id >= n_vocab among n ids at p, or n. */
static uint64_t first_bad_id(const uint8_t *p, uint64_t n, int tb, uint32_t n_vocab) {
    if (tb == 2 && n_vocab >= 65536) return n;
    const uint64_t blk = 4096;
    for (uint64_t i = 0; i < n; i += blk) {
        uint64_t e = i + blk < n ? i + blk : n;
        uint32_t mx = 0;
        for (uint64_t k = i; k < e; k++) {
            uint32_t v = load_id(p + k * (uint64_t)tb, tb);
            mx = v > mx ? v : mx;
        }
        if (mx >= n_vocab)
            for (uint64_t k = i; k < e; k++)
                if (load_id(p + k * (uint64_t)tb, tb) >= n_vocab) return k;
    }
    return n;
}

void yan_shard_name(char *buf, size_t cap, const char *split, int index) {
    snprintf(buf, cap, "%s_%04d.bin", split, index);
}

static char *path_join(const char *dir, const char *name) {
    yan_buf b = {0};
    yan_buf_printf(&b, "%s/%s", dir, name);
    if (b.oom) {
        yan_buf_free(&b);
        return NULL;
    }
    return b.data;
}

/* If name is "<split>_NNNN.bin" (canonical: at least 4 digits, no extra
 * leading zeros), return its index, else -1. */
static int shard_index(const char *name, const char *split) {
    size_t sl = strlen(split), nl = strlen(name);
    if (nl < sl + 1 + 4 + 4 || strncmp(name, split, sl) != 0 || name[sl] != '_') return -1;
    if (strcmp(name + nl - 4, ".bin") != 0) return -1;
    size_t nd = nl - 4 - (sl + 1);
    if (nd < 4 || nd > 9) return -1;
    int v = 0;
    for (size_t i = 0; i < nd; i++) {
        char c = name[sl + 1 + i];
        if (c < '0' || c > '9') return -1;
        v = v * 10 + (c - '0');
    }
    char canon[64];
    yan_shard_name(canon, sizeof canon, split, v);
    return strcmp(canon, name) == 0 ? v : -1;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Sorted indices of the shards of split found in dir. */
static yan_status list_shards(const char *dir, const char *split, int **out, int *n_out) {
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d) return yan_fail(YAN_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    int *v = NULL, n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int k = shard_index(e->d_name, split);
        if (k < 0) continue;
        if (n == cap) {
            int nc = cap ? cap * 2 : 16;
            int *nv = yan_realloc(v, (size_t)nc * sizeof *nv);
            if (!nv) {
                closedir(d);
                yan_free(v);
                return yan_fail(YAN_ERR_NOMEM, "%s: out of memory listing shards", dir);
            }
            v = nv;
            cap = nc;
        }
        v[n++] = k;
    }
    closedir(d);
    if (n) qsort(v, (size_t)n, sizeof *v, cmp_int);
    *out = v;
    *n_out = n;
    return YAN_OK;
}

/* ================================================================ reader */

struct yan_shards {
    int n;              /* shard files */
    yan_mmap *maps;     /* (n) */
    uint64_t *start;    /* (n + 1) stream offset of each shard's first token; start[n] = n_tokens */
    int tb;             /* bytes per id */
    uint32_t n_vocab, bos, eos;
    uint64_t n_tokens, n_docs, n_text_bytes;
};

void yan_shards_close(yan_shards *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) yan_mmap_close(&s->maps[i]);
    yan_free(s->maps);
    yan_free(s->start);
    yan_free(s);
}

yan_status yan_shards_open(const char *dir, const char *split, yan_shards **out) {
    *out = NULL;
    if (!dir || !split || !*split) return yan_fail(YAN_ERR_INVALID_ARG, "yan_shards_open: no directory or split");
    int *idx, n;
    yan_status st = list_shards(dir, split, &idx, &n);
    if (st) return st;
    if (n == 0) return yan_fail(YAN_ERR_IO, "%s: no %s_NNNN.bin shards", dir, split);
    for (int i = 0; i < n; i++) {
        if (idx[i] != i) {
            char want[64], got[64];
            yan_shard_name(want, sizeof want, split, i);
            yan_shard_name(got, sizeof got, split, idx[i]);
            yan_free(idx);
            return yan_fail(YAN_ERR_FORMAT, "%s/%s: missing (but %s exists): the shards must be numbered without gaps",
                            dir, want, got);
        }
    }
    yan_free(idx);
    yan_shards *s = yan_calloc(1, sizeof *s);
    if (s) s->maps = yan_calloc((size_t)n, sizeof *s->maps);
    if (s) s->start = yan_calloc((size_t)n + 1, sizeof *s->start);
    if (!s || !s->maps || !s->start) {
        yan_shards_close(s);
        return yan_fail(YAN_ERR_NOMEM, "%s: out of memory opening %d shards", dir, n);
    }
    for (int i = 0; i < n && !st; i++) {
        char name[64];
        yan_shard_name(name, sizeof name, split, i);
        char *path = path_join(dir, name);
        if (!path) {
            st = yan_fail(YAN_ERR_NOMEM, "out of memory");
            break;
        }
        shard_header h = {0};
        st = yan_mmap_open(path, &s->maps[i]);
        if (!st) s->n = i + 1;
        if (!st) st = header_check(s->maps[i].data, s->maps[i].len, path, &h);
        if (!st && i == 0) {
            s->tb = (int)h.token_bytes;
            s->n_vocab = h.n_vocab;
            s->bos = h.bos;
            s->eos = h.eos;
        }
        if (!st && (h.n_vocab != s->n_vocab || h.bos != s->bos || h.eos != s->eos)) {
            st = yan_fail(YAN_ERR_FORMAT,
                          "%s: vocabulary %u, bos %d, eos %d, but %s_0000.bin has vocabulary %u, bos %d, eos %d", path,
                          h.n_vocab, (int32_t)h.bos, (int32_t)h.eos, split, s->n_vocab, (int32_t)s->bos,
                          (int32_t)s->eos);
        }
        if (!st) {
            const uint8_t *ids = s->maps[i].data + YAN_SHARD_HEADER_BYTES;
            uint64_t bad = first_bad_id(ids, h.n_tokens, s->tb, s->n_vocab);
            if (bad < h.n_tokens)
                st = yan_fail(YAN_ERR_FORMAT, "%s: token %llu has id %u, outside the vocabulary of %u", path,
                              (unsigned long long)bad, load_id(ids + bad * (uint64_t)s->tb, s->tb), s->n_vocab);
        }
        if (!st) {
            s->start[i] = s->n_tokens;
            s->n_tokens += h.n_tokens;
            s->n_docs += h.n_docs;
            s->n_text_bytes += h.n_text_bytes;
        }
        yan_free(path);
    }
    if (st) {
        yan_shards_close(s);
        return st;
    }
    s->start[n] = s->n_tokens;
    *out = s;
    return YAN_OK;
}

uint64_t yan_shards_n_tokens(const yan_shards *s) { return s->n_tokens; }
uint64_t yan_shards_n_text_bytes(const yan_shards *s) { return s->n_text_bytes; }
uint64_t yan_shards_n_docs(const yan_shards *s) { return s->n_docs; }
uint32_t yan_shards_n_vocab(const yan_shards *s) { return s->n_vocab; }
int yan_shards_count(const yan_shards *s) { return s->n; }
int32_t yan_shards_bos(const yan_shards *s) { return s->bos == YAN_SHARD_NONE ? -1 : (int32_t)s->bos; }
int32_t yan_shards_eos(const yan_shards *s) { return s->eos == YAN_SHARD_NONE ? -1 : (int32_t)s->eos; }

/* (a + b) mod m for a, b < m, without overflow. */
static inline uint64_t add_mod(uint64_t a, uint64_t b, uint64_t m) { return a >= m - b ? a - (m - b) : a + b; }

/* The hot loop: copy n ids from stream position pos (< n_tokens), wrapping
 * at the end, converting to int32. Empty shards are skipped: the shard
 * holding pos is the last one whose start is <= pos. */
static void fetch(const yan_shards *s, uint64_t pos, size_t n, int32_t *dst) {
    int lo = 0, hi = s->n - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (s->start[mid] <= pos) lo = mid;
        else hi = mid - 1;
    }
    int i = lo;
    const int tb = s->tb;
    while (n) {
        uint64_t avail = s->start[i + 1] - pos;
        size_t m = avail < n ? (size_t)avail : n;
        const uint8_t *p = s->maps[i].data + YAN_SHARD_HEADER_BYTES + (pos - s->start[i]) * (uint64_t)tb;
        if (tb == 2)
            for (size_t k = 0; k < m; k++) dst[k] = (int32_t)((uint32_t)p[2 * k] | (uint32_t)p[2 * k + 1] << 8);
        else
            for (size_t k = 0; k < m; k++) dst[k] = (int32_t)get32(p + 4 * k);
        dst += m;
        n -= m;
        pos += m;
        if (pos == s->n_tokens) {
            pos = 0;
            i = 0;
        }
        while (s->start[i + 1] <= pos) i++;
    }
}

yan_status yan_shards_read(const yan_shards *s, uint64_t pos, size_t n, int32_t *out) {
    if (s->n_tokens == 0) return yan_fail(YAN_ERR_INVALID_ARG, "the shards hold no tokens");
    fetch(s, pos % s->n_tokens, n, out);
    return YAN_OK;
}

yan_status yan_shards_batch(const yan_shards *s, uint64_t *pos, int B, int T, int32_t *inputs, int32_t *targets) {
    if (B < 1 || T < 1)
        return yan_fail(YAN_ERR_INVALID_ARG, "batch of %d x %d tokens: both must be at least 1", B, T);
    uint64_t N = s->n_tokens;
    if (N < (uint64_t)T + 1)
        return yan_fail(YAN_ERR_INVALID_ARG, "the shards hold %llu tokens, fewer than one row of T + 1 = %d",
                        (unsigned long long)N, T + 1);
    uint64_t p0 = *pos % N, step = (uint64_t)T % N;
    uint64_t row = p0;
    for (int b = 0; b < B; b++) {
        fetch(s, row, (size_t)T, inputs + (size_t)b * (size_t)T);
        fetch(s, add_mod(row, 1 % N, N), (size_t)T, targets + (size_t)b * (size_t)T);
        row = add_mod(row, step, N);
    }
    *pos = row; /* = p0 + B*T mod N */
    return YAN_OK;
}

/* ================================================================ writer */

#define WBUF_TOKENS 65536

struct yan_shard_writer {
    char *dir, *split;
    uint32_t n_vocab, bos, eos;
    int tb;
    uint64_t shard_tokens;
    FILE *f;                    /* the open shard (the last of tmp), or NULL */
    shard_header cur;           /* its header so far */
    char **tmp;                 /* (n_shards) temporary paths, in order */
    int n_shards, cap_shards;
    uint64_t n_tokens, n_docs, n_text_bytes;     /* totals */
    uint64_t pending_docs, pending_bytes;        /* given with no ids before any shard was open */
    uint8_t *buf;               /* (WBUF_TOKENS * tb) encoded ids */
    bool failed;
};

yan_status yan_shard_writer_open(const char *dir, const char *split, int32_t n_vocab, int32_t bos, int32_t eos,
                                 uint64_t shard_tokens, yan_shard_writer **out) {
    *out = NULL;
    if (!dir || !split || !*split || n_vocab <= 0 || bos >= n_vocab || eos >= n_vocab)
        return yan_fail(YAN_ERR_INVALID_ARG, "shard writer: bad arguments (vocabulary %d, bos %d, eos %d)", n_vocab,
                        bos, eos);
    yan_shard_writer *w = yan_calloc(1, sizeof *w);
    if (!w) return yan_fail(YAN_ERR_NOMEM, "out of memory");
    w->dir = yan_strdup(dir);
    w->split = yan_strdup(split);
    w->n_vocab = (uint32_t)n_vocab;
    w->bos = bos < 0 ? YAN_SHARD_NONE : (uint32_t)bos;
    w->eos = eos < 0 ? YAN_SHARD_NONE : (uint32_t)eos;
    w->tb = width_for(w->n_vocab);
    w->shard_tokens = shard_tokens ? shard_tokens : YAN_SHARD_TOKENS_DEFAULT;
    w->buf = yan_malloc((size_t)WBUF_TOKENS * (size_t)w->tb);
    if (!w->dir || !w->split || !w->buf) {
        yan_shard_writer_abort(w);
        return yan_fail(YAN_ERR_NOMEM, "out of memory");
    }
    *out = w;
    return YAN_OK;
}

static yan_status writer_failed(yan_shard_writer *w, yan_status st) {
    w->failed = true;
    return st;
}

/* Complete the open shard: final header, flush, fsync, close. */
static yan_status close_shard(yan_shard_writer *w) {
    if (!w->f) return YAN_OK;
    uint8_t h[YAN_SHARD_HEADER_BYTES];
    header_encode(&w->cur, h);
    const char *path = w->tmp[w->n_shards - 1];
    int bad = fseek(w->f, 0, SEEK_SET) != 0 || fwrite(h, 1, sizeof h, w->f) != sizeof h || fflush(w->f) != 0 ||
              fsync(fileno(w->f)) != 0;
    int e = errno;
    if (fclose(w->f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    w->f = NULL;
    if (bad) return writer_failed(w, yan_fail(YAN_ERR_IO, "%s: write failed: %s", path, strerror(e)));
    return YAN_OK;
}

static yan_status open_shard(yan_shard_writer *w) {
    yan_status st = close_shard(w);
    if (st) return st;
    if (w->n_shards == w->cap_shards) {
        int nc = w->cap_shards ? w->cap_shards * 2 : 8;
        char **nt = yan_realloc(w->tmp, (size_t)nc * sizeof *nt);
        if (!nt) return writer_failed(w, yan_fail(YAN_ERR_NOMEM, "out of memory"));
        w->tmp = nt;
        w->cap_shards = nc;
    }
    char name[64];
    yan_shard_name(name, sizeof name, w->split, w->n_shards);
    yan_buf b = {0};
    yan_buf_printf(&b, "%s/%s.tmp.%ld", w->dir, name, (long)getpid());
    if (b.oom) return writer_failed(w, yan_fail(YAN_ERR_NOMEM, "out of memory"));
    w->f = fopen(b.data, "wb");
    if (!w->f) {
        yan_status e = yan_fail(YAN_ERR_IO, "%s/%s: cannot create %s: %s", w->dir, name, b.data, strerror(errno));
        yan_buf_free(&b);
        return writer_failed(w, e);
    }
    w->tmp[w->n_shards++] = b.data;
    memset(&w->cur, 0, sizeof w->cur);
    w->cur.version = YAN_SHARD_VERSION;
    w->cur.token_bytes = (uint32_t)w->tb;
    w->cur.n_vocab = w->n_vocab;
    w->cur.bos = w->bos;
    w->cur.eos = w->eos;
    w->cur.n_docs = w->pending_docs;
    w->cur.n_text_bytes = w->pending_bytes;
    w->pending_docs = w->pending_bytes = 0;
    uint8_t h[YAN_SHARD_HEADER_BYTES];
    header_encode(&w->cur, h); /* a placeholder until close_shard */
    if (fwrite(h, 1, sizeof h, w->f) != sizeof h)
        return writer_failed(w, yan_fail(YAN_ERR_IO, "%s: write failed: %s", b.data, strerror(errno)));
    return YAN_OK;
}

/* floor(total * k / n), the share of total that the first k of n tokens carry */
static uint64_t share(uint64_t total, uint64_t k, uint64_t n) {
    return (uint64_t)((unsigned __int128)total * k / n);
}

yan_status yan_shard_writer_append(yan_shard_writer *w, const int32_t *ids, size_t n, uint64_t n_docs,
                                   uint64_t n_text_bytes) {
    if (w->failed) return yan_fail(YAN_ERR_IO, "%s/%s shards: an earlier write failed", w->dir, w->split);
    for (size_t i = 0; i < n; i++)
        if ((uint32_t)ids[i] >= w->n_vocab)
            return yan_fail(YAN_ERR_INVALID_ARG, "shard writer: id %d at %zu outside the vocabulary of %u", ids[i], i,
                            w->n_vocab);
    w->n_tokens += n;
    w->n_docs += n_docs;
    w->n_text_bytes += n_text_bytes;
    if (n == 0) {
        if (w->f) {
            w->cur.n_docs += n_docs;
            w->cur.n_text_bytes += n_text_bytes;
        } else {
            w->pending_docs += n_docs;
            w->pending_bytes += n_text_bytes;
        }
        return YAN_OK;
    }
    size_t done = 0;
    while (done < n) {
        if (!w->f || w->cur.n_tokens >= w->shard_tokens) {
            yan_status st = open_shard(w);
            if (st) return st;
        }
        uint64_t room = w->shard_tokens - w->cur.n_tokens;
        size_t m = (uint64_t)(n - done) < room ? n - done : (size_t)room;
        if (done == 0) w->cur.n_docs += n_docs;
        w->cur.n_text_bytes += share(n_text_bytes, done + m, n) - share(n_text_bytes, done, n);
        for (size_t k = 0; k < m;) {
            size_t c = m - k < WBUF_TOKENS ? m - k : WBUF_TOKENS;
            const int32_t *src = ids + done + k;
            if (w->tb == 2) {
                for (size_t q = 0; q < c; q++) {
                    w->buf[2 * q] = (uint8_t)src[q];
                    w->buf[2 * q + 1] = (uint8_t)((uint32_t)src[q] >> 8);
                }
            } else {
                for (size_t q = 0; q < c; q++) put32(w->buf + 4 * q, (uint32_t)src[q]);
            }
            if (fwrite(w->buf, (size_t)w->tb, c, w->f) != c)
                return writer_failed(w, yan_fail(YAN_ERR_IO, "%s: write failed: %s", w->tmp[w->n_shards - 1],
                                                 strerror(errno)));
            k += c;
        }
        w->cur.n_tokens += m;
        done += m;
    }
    return YAN_OK;
}

yan_status yan_shard_writer_finish(yan_shard_writer *w) {
    if (w->failed) return yan_fail(YAN_ERR_IO, "%s/%s shards: an earlier write failed", w->dir, w->split);
    return close_shard(w);
}

uint64_t yan_shard_writer_n_tokens(const yan_shard_writer *w) { return w->n_tokens; }
int yan_shard_writer_n_shards(const yan_shard_writer *w) { return w->n_shards; }

static void fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static void writer_free(yan_shard_writer *w) {
    for (int i = 0; i < w->n_shards; i++) yan_free(w->tmp[i]);
    yan_free(w->tmp);
    yan_free(w->buf);
    yan_free(w->dir);
    yan_free(w->split);
    yan_free(w);
}

void yan_shard_writer_abort(yan_shard_writer *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    for (int i = 0; i < w->n_shards; i++)
        if (w->tmp[i]) unlink(w->tmp[i]);
    writer_free(w);
}

yan_status yan_shard_writer_commit(yan_shard_writer *w) {
    yan_status st = yan_shard_writer_finish(w);
    if (st) {
        yan_shard_writer_abort(w);
        return st;
    }
    for (int i = 0; i < w->n_shards && !st; i++) {
        char name[64];
        yan_shard_name(name, sizeof name, w->split, i);
        char *path = path_join(w->dir, name);
        if (!path) st = yan_fail(YAN_ERR_NOMEM, "out of memory");
        else if (rename(w->tmp[i], path) != 0)
            st = yan_fail(YAN_ERR_IO, "%s: rename failed: %s", path, strerror(errno));
        else {
            yan_free(w->tmp[i]);
            w->tmp[i] = NULL; /* renamed: no longer ours to remove */
        }
        yan_free(path);
    }
    if (!st) {
        /* shards an earlier, longer run left behind would join the stream */
        int *idx, n;
        if (list_shards(w->dir, w->split, &idx, &n) == YAN_OK) {
            for (int i = 0; i < n; i++) {
                if (idx[i] < w->n_shards) continue;
                char name[64];
                yan_shard_name(name, sizeof name, w->split, idx[i]);
                char *path = path_join(w->dir, name);
                if (path && unlink(path) != 0 && errno != ENOENT)
                    st = yan_fail(YAN_ERR_IO, "%s: cannot remove an old shard: %s", path, strerror(errno));
                yan_free(path);
            }
            yan_free(idx);
        }
        fsync_dir(w->dir);
    }
    yan_shard_writer_abort(w); /* removes what was not renamed */
    return st;
}

/* =============================================================== prepare */

yan_data_prepare_params yan_data_prepare_params_default(void) {
    yan_data_prepare_params p = {0};
    p.val_fraction = 0.01;
    p.shard_tokens = YAN_SHARD_TOKENS_DEFAULT;
    p.segment_bytes = (size_t)1 << 20;
    return p;
}

enum { SPLIT_LINES = 2 }; /* a lone unit: its last lines go to validation */

typedef struct {
    const char *path;
    yan_mmap map;
    bool jsonl;
} in_file;

typedef struct {
    size_t a, b;       /* byte range of the file */
    uint64_t line0;    /* JSONL: 0-based index of the first line */
    uint64_t unit;     /* text: segment index within the file */
    int file;
    uint8_t split;     /* text: YAN_SPLIT_TRAIN, YAN_SPLIT_VAL or SPLIT_LINES */
    uint8_t first;     /* text: bit s set when the document's text in split s begins here */
    uint8_t last;      /* text: bit s set when it ends here */
} seg;

typedef struct {
    int32_t *v;
    size_t n, cap;
} ivec;

/* one task's result, waiting to be written */
typedef struct {
    ivec out[2];
    uint64_t docs[2], bytes[2];
    uint64_t docs_in;  /* documents of the input that begin here */
    bool done;
} seg_out;

typedef struct {
    double u;          /* the unit's hash in [0, 1) */
    int file;
    uint64_t unit;
    int64_t seg;       /* text: its task; JSONL: -1 */
} unit_ref;

typedef struct {
    const yan_tokenizer *tok;   /* for text at a document's start */
    const yan_tokenizer *cont;  /* for text that continues a document (spm: no space prefix) */
    in_file *files;
    seg *segs;
    int n_segs;
    double fraction;
    int32_t bos_sep, eos_sep;   /* the separator added (at most one is >= 0) */
    int force_file;             /* JSONL record whose split the hash does not decide (-1: none) */
    uint64_t force_line;
    int force_split;

    yan_shard_writer *w[2];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    seg_out *ring;              /* (window) results of tasks next_commit .. next_commit + window - 1 */
    int window;
    int next_commit;            /* oldest task not yet written */
    int err_seg;                /* earliest failed task, -1 = none */
    yan_status err;
    char err_msg[1024];

    uint64_t tokens[2], docs[2], bytes[2], docs_in;
    yan_data_prepare_params p;
    yan_data_progress prog;
    struct timespec t0;
} prep_job;

static double now_since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) * 1e-9;
}

static double unit_hash(int file, uint64_t unit) {
    uint64_t h = yan_hash_u64(yan_hash_u64((uint64_t)(uint32_t)file * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull) ^
                              (unit + 1) * 0xD6E8FEB86659FD93ull);
    return (double)(h >> 11) * 0x1p-53;
}

static bool is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

/* End of the piece of s[0..n) that starts at a and holds about want bytes:
 * just after a newline (so never inside a line or a UTF-8 sequence). Prefer
 * a newline followed by a non-space in the second half of the target, then
 * the last newline there, then the first newline after the target, then the
 * last one before its half; n when there is none. */
static size_t cut_at_line(const uint8_t *s, size_t n, size_t a, size_t want) {
    if (n - a <= want) return n;
    size_t target = a + want, fallback = 0;
    size_t floor_pref = a + want / 2;
    const uint8_t *lo = s + a, *p = s + target;
    while (p > lo) {
        const uint8_t *nl = memrchr(lo, '\n', (size_t)(p - lo));
        if (!nl) break;
        size_t at = (size_t)(nl - s) + 1;
        if (!fallback) fallback = at;
        if (at < n && !is_space(s[at])) return at;
        if (at <= floor_pref) break;
        p = nl;
    }
    if (fallback > floor_pref) return fallback;
    const uint8_t *nl = memchr(s + target, '\n', n - target);
    size_t after = nl ? (size_t)(nl - s) + 1 : n;
    return fallback && after - target > want / 2 ? fallback : after;
}

/* Offset where the last lines of s[0..n) that go to validation begin:
 * ceil(fraction * lines) of them, at least 1, at most lines - 1; n when
 * there are fewer than two lines. */
static size_t lines_cut(const uint8_t *s, size_t n, double fraction) {
    uint64_t lines = 0;
    for (const uint8_t *p = s, *e = s + n; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++) lines++;
    if (n && s[n - 1] != '\n') lines++;
    if (lines < 2) return n;
    double want = ceil(fraction * (double)lines);
    uint64_t k = want < 1 ? 1 : want > (double)(lines - 1) ? lines - 1 : (uint64_t)want;
    size_t end = s[n - 1] == '\n' ? n - 1 : n;
    uint64_t seen = 0;
    for (size_t i = end; i > 0; i--)
        if (s[i - 1] == '\n' && ++seen == k) return i;
    return n;
}

static bool iv_push(ivec *v, const int32_t *ids, size_t n) {
    if (v->n + n > v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 4096;
        while (nc < v->n + n) nc *= 2;
        int32_t *nv = yan_realloc(v->v, nc * sizeof *nv);
        if (!nv) return false;
        v->v = nv;
        v->cap = nc;
    }
    if (n) memcpy(v->v + v->n, ids, n * sizeof *ids);
    v->n += n;
    return true;
}

/* Tokenize one stretch of a document into split s of o. first/last: the
 * document's text in that split begins/ends here (separators go there);
 * start: the stretch begins the document (spm adds its space prefix). */
static yan_status emit_text(prep_job *j, seg_out *o, int s, const uint8_t *text, size_t n, bool first, bool last,
                            bool start) {
    if (!n) return YAN_OK;
    bool ok = true;
    if (first && j->bos_sep >= 0) ok = iv_push(&o->out[s], &j->bos_sep, 1);
    yan_token *ids = NULL;
    size_t cnt = 0;
    yan_status st = yan_tokenize_alloc(start ? j->tok : j->cont, (const char *)text, n, 0, &ids, &cnt);
    if (st) return st;
    ok = ok && iv_push(&o->out[s], ids, cnt);
    yan_free_tokens(ids);
    if (ok && last && j->eos_sep >= 0) ok = iv_push(&o->out[s], &j->eos_sep, 1);
    if (!ok) return yan_fail(YAN_ERR_NOMEM, "out of memory holding the tokens of %zu bytes", n);
    o->docs[s] += first;
    o->bytes[s] += n;
    return YAN_OK;
}

/* Split of one JSONL record. */
static int record_split(const prep_job *j, int file, uint64_t line) {
    if (file == j->force_file && line == j->force_line) return j->force_split;
    return unit_hash(file, line) < j->fraction ? YAN_SPLIT_VAL : YAN_SPLIT_TRAIN;
}

/* A document that goes to one split, or, as a lone unit, to both. */
static yan_status emit_doc(prep_job *j, seg_out *o, int split, const uint8_t *text, size_t n) {
    if (split != SPLIT_LINES) return emit_text(j, o, split, text, n, true, true, true);
    size_t cut = lines_cut(text, n, j->fraction);
    yan_status st = emit_text(j, o, YAN_SPLIT_TRAIN, text, cut, true, true, true);
    if (!st) st = emit_text(j, o, YAN_SPLIT_VAL, text + cut, n - cut, true, true, cut == 0);
    return st;
}

static yan_status process_jsonl(prep_job *j, const seg *sg, seg_out *o) {
    const in_file *f = &j->files[sg->file];
    const uint8_t *s = f->map.data;
    yan_arena arena;
    yan_arena_init(&arena, (size_t)64 << 10);
    yan_status st = YAN_OK;
    uint64_t line = sg->line0;
    for (size_t a = sg->a; a < sg->b && !st; line++) {
        const uint8_t *nl = memchr(s + a, '\n', sg->b - a);
        size_t e = nl ? (size_t)(nl - s) : sg->b;
        size_t k = a;
        while (k < e && is_space(s[k])) k++;
        if (k < e) {
            yan_arena_reset(&arena);
            yan_json *root;
            st = yan_json_parse((const char *)s + a, e - a, &arena, &root);
            if (st == YAN_ERR_FORMAT) {
                const char *m = yan_last_error();
                if (!strncmp(m, "line 1 ", 7)) m += 7;
                char msg[512];
                snprintf(msg, sizeof msg, "%s", m);
                st = yan_fail(YAN_ERR_FORMAT, "%s:%llu: not valid JSON: %s", f->path, (unsigned long long)line + 1,
                              msg);
            } else if (st == YAN_OK) {
                const yan_json *t = yan_json_get(root, "text");
                size_t len;
                const char *text = yan_json_str(t, &len);
                if (!yan_json_is(root, YAN_JSON_OBJECT))
                    st = yan_fail(YAN_ERR_FORMAT, "%s:%llu: not a JSON object (want {\"text\": \"...\"})", f->path,
                                  (unsigned long long)line + 1);
                else if (!t)
                    st = yan_fail(YAN_ERR_FORMAT, "%s:%llu: no \"text\" field", f->path, (unsigned long long)line + 1);
                else if (!text)
                    st = yan_fail(YAN_ERR_FORMAT, "%s:%llu: \"text\" is not a string", f->path,
                                  (unsigned long long)line + 1);
                else if (len) {
                    o->docs_in++;
                    st = emit_doc(j, o, record_split(j, sg->file, line), (const uint8_t *)text, len);
                }
            }
        }
        a = e + 1;
    }
    yan_arena_free(&arena);
    return st;
}

static yan_status process_seg(prep_job *j, int k, seg_out *o) {
    const seg *sg = &j->segs[k];
    const in_file *f = &j->files[sg->file];
    if (f->jsonl) return process_jsonl(j, sg, o);
    const uint8_t *text = f->map.data + sg->a;
    size_t n = sg->b - sg->a;
    if (sg->a == 0) o->docs_in = 1;
    if (sg->split == SPLIT_LINES) return emit_doc(j, o, SPLIT_LINES, text, n);
    int s = sg->split;
    return emit_text(j, o, s, text, n, (sg->first >> s) & 1, (sg->last >> s) & 1, sg->a == 0);
}

static void iv_free(ivec *v) {
    yan_free(v->v);
    memset(v, 0, sizeof *v);
}

/* Record task k's failure (caller holds mu); the earliest failure wins so
 * that the message does not depend on timing. */
static void seg_fail(prep_job *j, int k, yan_status st) {
    if (j->err_seg >= 0 && j->err_seg <= k) return;
    j->err_seg = k;
    j->err = st;
    snprintf(j->err_msg, sizeof j->err_msg, "%s", yan_last_error());
}

/* Write task k (caller holds mu). */
static yan_status commit_seg(prep_job *j, int k) {
    seg_out *o = &j->ring[k % j->window];
    yan_status st = YAN_OK;
    for (int s = 0; s < 2 && !st; s++) {
        if (o->out[s].n || o->docs[s] || o->bytes[s])
            st = yan_shard_writer_append(j->w[s], o->out[s].v, o->out[s].n, o->docs[s], o->bytes[s]);
        j->tokens[s] += o->out[s].n;
        j->docs[s] += o->docs[s];
        j->bytes[s] += o->bytes[s];
        iv_free(&o->out[s]);
    }
    j->docs_in += o->docs_in;
    j->prog.bytes_done += j->segs[k].b - j->segs[k].a;
    j->prog.tokens = j->tokens[0] + j->tokens[1];
    j->prog.docs = j->docs_in;
    memset(o, 0, sizeof *o);
    if (!st && j->p.progress) {
        j->prog.seconds = now_since(&j->t0);
        if (!j->p.progress(&j->prog, j->p.progress_ud))
            st = yan_fail(YAN_ERR_ABORTED, "stopped by the progress callback; nothing was written");
    }
    return st;
}

static void prep_task(void *ud, int k) {
    prep_job *j = ud;
    pthread_mutex_lock(&j->mu);
    while (j->err_seg < 0 && k >= j->next_commit + j->window) pthread_cond_wait(&j->cv, &j->mu);
    /* after a failure only earlier tasks still run (to report the earliest
     * failure); they are all within the window, so their slots are free */
    bool run = j->err_seg < 0 || k < j->err_seg;
    pthread_mutex_unlock(&j->mu);
    if (!run) return;

    seg_out *o = &j->ring[k % j->window]; /* ours alone until marked done */
    yan_status st = process_seg(j, k, o);

    pthread_mutex_lock(&j->mu);
    if (st) seg_fail(j, k, st);
    o->done = true;
    while (j->err_seg < 0 && j->next_commit < j->n_segs && j->ring[j->next_commit % j->window].done) {
        st = commit_seg(j, j->next_commit);
        if (st) seg_fail(j, j->next_commit, st);
        j->next_commit++;
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* mkdir -p; *created tells whether dir itself is new */
static yan_status make_dirs(const char *dir, bool *created) {
    *created = false;
    char *p = yan_strdup(dir);
    if (!p) return yan_fail(YAN_ERR_NOMEM, "out of memory");
    size_t n = strlen(p);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != 0) continue;
        char c = p[i];
        p[i] = 0;
        if (mkdir(p, 0777) == 0) *created = i >= n - (p[n - 1] == '/');
        else if (errno != EEXIST) {
            yan_status st = yan_fail(YAN_ERR_IO, "%s: cannot create directory %s: %s", dir, p, strerror(errno));
            yan_free(p);
            return st;
        }
        p[i] = c;
    }
    yan_free(p);
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) return yan_fail(YAN_ERR_IO, "%s: not a directory", dir);
    return YAN_OK;
}

static bool ends_with_ci(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    if (n < m) return false;
    for (size_t i = 0; i < m; i++) {
        char a = s[n - m + i], b = suffix[i];
        if (a >= 'A' && a <= 'Z') a = (char)(a - 'A' + 'a');
        if (a != b) return false;
    }
    return true;
}

/* growable array of tasks */
typedef struct {
    seg *v;
    size_t n, cap;
} seg_list;

static bool seg_add(seg_list *l, seg s) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 256;
        seg *nv = yan_realloc(l->v, nc * sizeof *nv);
        if (!nv) return false;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = s;
    return true;
}

typedef struct {
    uint64_t n, n_val;
    unit_ref lo, hi; /* lowest and highest hash */
} unit_census;

static void census_add(unit_census *c, double fraction, int file, uint64_t unit, int64_t seg_index) {
    double u = unit_hash(file, unit);
    unit_ref r = {u, file, unit, seg_index};
    if (c->n == 0 || u < c->lo.u) c->lo = r;
    if (c->n == 0 || u > c->hi.u) c->hi = r;
    c->n++;
    c->n_val += u < fraction;
}

/* Cut every input into tasks, count the units and decide their splits. */
static yan_status scan_inputs(prep_job *j, int n_files, size_t seg_bytes, seg_list *out, unit_census *c) {
    for (int fi = 0; fi < n_files; fi++) {
        const in_file *f = &j->files[fi];
        const uint8_t *s = f->map.data;
        size_t n = f->map.len;
        uint64_t line = 0, unit = 0;
        for (size_t a = 0; a < n;) {
            size_t b = cut_at_line(s, n, a, seg_bytes);
            seg sg = {a, b, line, unit, fi, YAN_SPLIT_TRAIN, 0, 0};
            if (f->jsonl) {
                for (size_t p = a; p < b; line++) {
                    const uint8_t *nl = memchr(s + p, '\n', b - p);
                    size_t e = nl ? (size_t)(nl - s) : b;
                    size_t k = p;
                    while (k < e && is_space(s[k])) k++;
                    if (k < e) census_add(c, j->fraction, fi, line, -1);
                    p = e + 1;
                }
            } else {
                census_add(c, j->fraction, fi, unit, (int64_t)out->n);
                sg.split = unit_hash(fi, unit) < j->fraction ? YAN_SPLIT_VAL : YAN_SPLIT_TRAIN;
                unit++;
            }
            if (!seg_add(out, sg)) return yan_fail(YAN_ERR_NOMEM, "out of memory listing segments");
            a = b;
        }
    }
    if (out->n > (size_t)INT32_MAX / 2)
        return yan_fail(YAN_ERR_INVALID_ARG, "%zu segments: too many (raise --segment-bytes)", out->n);
    return YAN_OK;
}

/* Move one unit to another split. */
static void force_unit(prep_job *j, seg_list *segs, const unit_ref *r, int split) {
    if (r->seg >= 0) {
        segs->v[r->seg].split = (uint8_t)split;
    } else {
        j->force_file = r->file;
        j->force_line = r->unit;
        j->force_split = split;
    }
}

/* Bits first/last of every text segment: where each document's text in
 * each split begins and ends. */
static void mark_doc_edges(seg_list *segs) {
    for (size_t i = 0; i < segs->n;) {
        size_t e = i;
        while (e < segs->n && segs->v[e].file == segs->v[i].file) e++;
        for (int s = 0; s < 2; s++) {
            size_t first = SIZE_MAX, last = SIZE_MAX;
            for (size_t k = i; k < e; k++) {
                if (segs->v[k].split != s && segs->v[k].split != SPLIT_LINES) continue;
                if (first == SIZE_MAX) first = k;
                last = k;
            }
            if (first != SIZE_MAX) {
                segs->v[first].first |= (uint8_t)(1u << s);
                segs->v[last].last |= (uint8_t)(1u << s);
            }
        }
        i = e;
    }
}

static void json_split(yan_buf *b, const char *name, const prep_job *j, int s, int n_shards) {
    yan_buf_printf(b, "  \"%s\": {\"tokens\": %llu, \"documents\": %llu, \"text_bytes\": %llu, \"files\": [", name,
                   (unsigned long long)j->tokens[s], (unsigned long long)j->docs[s], (unsigned long long)j->bytes[s]);
    for (int i = 0; i < n_shards; i++) {
        char fn[64];
        yan_shard_name(fn, sizeof fn, name, i);
        yan_buf_printf(b, "%s\"%s\"", i ? ", " : "", fn);
    }
    yan_buf_puts(b, "]},\n");
}

static yan_status write_meta(const prep_job *j, const yan_tokenizer *tok, int n_files, const int n_shards[2],
                             const char *path) {
    const yan_data_prepare_params *p = &j->p;
    yan_buf b = {0};
    int32_t bos = yan_tokenizer_special(tok, YAN_SPECIAL_BOS), eos = yan_tokenizer_special(tok, YAN_SPECIAL_EOS);
    yan_buf_puts(&b, "{\n  \"format\": \"yan-data\",\n  \"version\": 1,\n  \"tokenizer\": {\"source\": ");
    yan_json_write_string(&b, p->tokenizer, strlen(p->tokenizer));
    yan_buf_printf(&b, ", \"file\": \"tokenizer.gguf\", \"kind\": \"%s\", \"pre\": \"%s\", \"n_vocab\": %d, "
                       "\"bos\": %d, \"eos\": %d},\n",
                   yan_tokenizer_kind(tok), yan_tokenizer_pre(tok), yan_tokenizer_n_vocab(tok), bos, eos);
    yan_buf_printf(&b, "  \"separator\": \"%s\",\n  \"token_bytes\": %d,\n",
                   j->eos_sep >= 0 ? "eos" : j->bos_sep >= 0 ? "bos" : "none",
                   width_for((uint32_t)yan_tokenizer_n_vocab(tok)));
    yan_buf_printf(&b, "  \"shard_tokens\": %llu,\n  \"segment_bytes\": %zu,\n  \"val_fraction\": %.17g,\n",
                   (unsigned long long)p->shard_tokens, p->segment_bytes, p->val_fraction);
    uint64_t in_bytes = 0;
    for (int i = 0; i < n_files; i++) in_bytes += j->files[i].map.len;
    yan_buf_printf(&b, "  \"documents\": %llu,\n  \"input_bytes\": %llu,\n", (unsigned long long)j->docs_in,
                   (unsigned long long)in_bytes);
    json_split(&b, "train", j, YAN_SPLIT_TRAIN, n_shards[0]);
    json_split(&b, "val", j, YAN_SPLIT_VAL, n_shards[1]);
    yan_buf_puts(&b, "  \"inputs\": [");
    for (int i = 0; i < n_files; i++) {
        yan_buf_puts(&b, i ? ",\n    {\"path\": " : "\n    {\"path\": ");
        yan_json_write_string(&b, j->files[i].path, strlen(j->files[i].path));
        yan_buf_printf(&b, ", \"format\": \"%s\", \"bytes\": %zu}", j->files[i].jsonl ? "jsonl" : "text",
                       j->files[i].map.len);
    }
    yan_buf_puts(&b, "\n  ]\n}\n");
    if (b.oom) {
        yan_buf_free(&b);
        return yan_fail(YAN_ERR_NOMEM, "out of memory writing %s", path);
    }
    yan_status st = yan_write_atomic(path, b.data, b.len);
    yan_buf_free(&b);
    return st;
}

yan_status yan_data_prepare(const yan_data_prepare_params *p, yan_data_prepare_stats *stats) {
    if (stats) memset(stats, 0, sizeof *stats);
    if (!p || !p->tokenizer || !p->out_dir || !p->files || p->n_files < 1)
        return yan_fail(YAN_ERR_INVALID_ARG,
                        "data prepare: a tokenizer, input files and an output directory are needed");
    if (!(p->val_fraction >= 0 && p->val_fraction < 1))
        return yan_fail(YAN_ERR_INVALID_ARG, "validation fraction %g: must be at least 0 and below 1", p->val_fraction);
    prep_job j;
    memset(&j, 0, sizeof j);
    j.p = *p;
    if (!j.p.shard_tokens) j.p.shard_tokens = YAN_SHARD_TOKENS_DEFAULT;
    if (!j.p.segment_bytes) j.p.segment_bytes = (size_t)1 << 20;
    j.fraction = p->val_fraction;
    j.force_file = -1;
    j.err_seg = -1;
    clock_gettime(CLOCK_MONOTONIC, &j.t0);

    yan_tokenizer *tok = NULL;
    yan_tokenizer cont_copy;
    seg_list segs = {0};
    char *staged = NULL, *gguf_path = NULL, *meta_path = NULL;
    bool mu_init = false, created_dir = false;
    uint64_t in_bytes = 0;
    unit_census census = {0};
    int n_shards[2] = {0, 0}, nt;
    yan_buf sb = {0};
    yan_status st;

    yan_tokenizer_params tp = yan_tokenizer_params_default();
    tp.pre = p->pre;
    tp.n_threads = 1; /* the pipeline's workers are the parallelism */
    st = yan_tokenizer_load(p->tokenizer, &tp, &tok);
    if (st) return st;
    j.tok = j.cont = tok;
    if (tok->kind == YAN_TOK_SPM && tok->add_space_prefix) {
        cont_copy = *tok; /* a read-only view sharing tok's tables */
        cont_copy.add_space_prefix = false;
        j.cont = &cont_copy;
    }
    int32_t bos = yan_tokenizer_special(tok, YAN_SPECIAL_BOS), eos = yan_tokenizer_special(tok, YAN_SPECIAL_EOS);
    j.eos_sep = eos;
    j.bos_sep = eos >= 0 ? -1 : bos;
    int32_t n_vocab = yan_tokenizer_n_vocab(tok);

    j.files = yan_calloc((size_t)p->n_files, sizeof *j.files);
    if (!j.files) {
        st = yan_fail(YAN_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < p->n_files; i++) {
        j.files[i].path = p->files[i];
        j.files[i].jsonl = ends_with_ci(p->files[i], ".jsonl");
        st = yan_mmap_open(p->files[i], &j.files[i].map);
        if (st) goto done;
        in_bytes += j.files[i].map.len;
    }

    st = scan_inputs(&j, p->n_files, j.p.segment_bytes, &segs, &census);
    if (st) goto done;
    if (census.n == 0) {
        st = p->n_files == 1 ? yan_fail(YAN_ERR_FORMAT, "%s: no text (the input is empty)", p->files[0])
                             : yan_fail(YAN_ERR_FORMAT, "no text in any of the %d input files (all empty)", p->n_files);
        goto done;
    }
    if (j.fraction > 0) {
        if (census.n == 1) force_unit(&j, &segs, &census.lo, SPLIT_LINES);
        else if (census.n_val == 0) force_unit(&j, &segs, &census.lo, YAN_SPLIT_VAL);
        else if (census.n_val == census.n) force_unit(&j, &segs, &census.hi, YAN_SPLIT_TRAIN);
    }
    mark_doc_edges(&segs);
    j.segs = segs.v;
    j.n_segs = (int)segs.n;

    /* the directory, and the vocabulary staged beside it (fails early, e.g.
     * for a vocabulary GGUF cannot describe, before the long part) */
    st = make_dirs(p->out_dir, &created_dir);
    if (st) goto done;
    yan_buf_printf(&sb, "%s/tokenizer.gguf.tmp.%ld", p->out_dir, (long)getpid());
    staged = sb.data;
    gguf_path = path_join(p->out_dir, "tokenizer.gguf");
    meta_path = path_join(p->out_dir, "meta.json");
    if (sb.oom || !gguf_path || !meta_path) {
        st = yan_fail(YAN_ERR_NOMEM, "out of memory");
        goto done;
    }
    st = yan_tok_write_gguf(tok, staged);
    if (st) {
        yan_error_prefix(gguf_path);
        goto done;
    }
    st = yan_shard_writer_open(p->out_dir, "train", n_vocab, bos, eos, j.p.shard_tokens, &j.w[0]);
    if (!st) st = yan_shard_writer_open(p->out_dir, "val", n_vocab, bos, eos, j.p.shard_tokens, &j.w[1]);
    if (st) goto done;

    nt = yan_threads_resolve(p->n_threads);
    j.window = nt * 4 < 8 ? 8 : nt * 4;
    j.ring = yan_calloc((size_t)j.window, sizeof *j.ring);
    if (!j.ring) {
        st = yan_fail(YAN_ERR_NOMEM, "out of memory");
        goto done;
    }
    pthread_mutex_init(&j.mu, NULL);
    pthread_cond_init(&j.cv, NULL);
    mu_init = true;
    j.prog.bytes_total = in_bytes;
    yan_parallel_for(nt, j.n_segs, prep_task, &j);
    if (j.err_seg >= 0) {
        st = yan_fail(j.err, "%s", j.err_msg);
        goto done;
    }
    if (j.bytes[0] + j.bytes[1] == 0) {
        st = p->n_files == 1 ? yan_fail(YAN_ERR_FORMAT, "%s: no text (every record's \"text\" is empty)", p->files[0])
                             : yan_fail(YAN_ERR_FORMAT, "no text in any of the %d input files", p->n_files);
        goto done;
    }

    /* every new file is complete and fsynced: now swap them in, meta.json last */
    st = yan_shard_writer_finish(j.w[0]);
    if (!st) st = yan_shard_writer_finish(j.w[1]);
    if (st) goto done;
    n_shards[0] = yan_shard_writer_n_shards(j.w[0]);
    n_shards[1] = yan_shard_writer_n_shards(j.w[1]);
    if (rename(staged, gguf_path) != 0) {
        st = yan_fail(YAN_ERR_IO, "%s: rename failed: %s", gguf_path, strerror(errno));
        goto done;
    }
    yan_free(staged);
    staged = NULL;
    for (int s = 0; s < 2; s++) {
        yan_shard_writer *w = j.w[s];
        j.w[s] = NULL;
        if (!st) st = yan_shard_writer_commit(w);
        else yan_shard_writer_abort(w);
    }
    if (!st) st = write_meta(&j, tok, p->n_files, n_shards, meta_path);
    if (!st && stats) {
        for (int s = 0; s < 2; s++) {
            stats->tokens[s] = j.tokens[s];
            stats->docs[s] = j.docs[s];
            stats->text_bytes[s] = j.bytes[s];
            stats->shards[s] = n_shards[s];
        }
        stats->n_docs = j.docs_in;
        stats->input_bytes = in_bytes;
        stats->n_units = census.n;
        stats->n_vocab = n_vocab;
        stats->token_bytes = width_for((uint32_t)n_vocab);
        stats->seconds = now_since(&j.t0);
    }

done:
    yan_shard_writer_abort(j.w[0]);
    yan_shard_writer_abort(j.w[1]);
    if (staged) unlink(staged);
    if (st && created_dir) rmdir(p->out_dir); /* ours and empty: leave no trace */
    if (j.ring)
        for (int i = 0; i < j.window; i++) {
            iv_free(&j.ring[i].out[0]);
            iv_free(&j.ring[i].out[1]);
        }
    yan_free(j.ring);
    if (mu_init) {
        pthread_mutex_destroy(&j.mu);
        pthread_cond_destroy(&j.cv);
    }
    if (j.files)
        for (int i = 0; i < p->n_files; i++) yan_mmap_close(&j.files[i].map);
    yan_free(j.files);
    yan_free(segs.v);
    yan_free(staged);
    yan_free(gguf_path);
    yan_free(meta_path);
    yan_tokenizer_free(tok);
    return st;
}
