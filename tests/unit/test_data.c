/* test_data.c — token shards (src/train/data.h): writer + reader round trips,
 * batches that wrap across shard boundaries and the end, u16/u32 widths,
 * strict rejection of corrupt, truncated and inconsistent shards, allocation
 * failures, and yan_data_prepare (text + JSONL, splits, thread-count
 * independence, errors that name the file and line, atomic replacement). */
#include "test.h"

#include "base/json.h"
#include "train/data.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define KJV_VOCAB "models/kjv-8k.tokenizer.json"

/* ---------------------------------------------------------------- helpers */

/* A fresh directory under the run's temporary folder. */
static const char *fresh_dir(const char *name) {
    static char paths[8][512];
    static int k;
    char *p = paths[k++ % 8];
    snprintf(p, 512, "%s/%s", yan_test_tmp_dir(), name);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
    if (system(cmd) != 0) fprintf(stderr, "  cannot clear %s\n", p);
    mkdir(p, 0777);
    return p;
}

static void file_path(char *out, size_t cap, const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    if (a + 1 + b + 1 > cap) {
        fprintf(stderr, "  path too long: %s/%s\n", dir, name);
        exit(2);
    }
    memcpy(out, dir, a);
    out[a] = '/';
    memcpy(out + a + 1, name, b + 1);
}

static bool write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

static bool write_str(const char *path, const char *s) { return write_bytes(path, s, strlen(s)); }

/* Whole file in a malloc'ed buffer (free with free). */
static uint8_t *slurp(const char *path, size_t *n) {
    uint8_t *b = NULL;
    if (yan_read_file(path, &b, n) != YAN_OK) return NULL;
    uint8_t *c = malloc(*n + 1);
    memcpy(c, b, *n + 1);
    yan_free(b);
    return c;
}

static bool err_has(const char *s) {
    bool ok = strstr(yan_last_error(), s) != NULL;
    if (!ok) fprintf(stderr, "  error message lacks '%s': %s\n", s, yan_last_error());
    return ok;
}

/* Names in dir, sorted, as one string "a,b,c". */
static void list_dir(const char *dir, char *out, size_t cap) {
    char names[64][256];
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL && n < 64) {
        if (e->d_name[0] == '.') continue;
        snprintf(names[n++], 256, "%s", e->d_name);
    }
    if (d) closedir(d);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp(names[j], names[i]) < 0) {
                char t[256];
                memcpy(t, names[i], 256);
                memcpy(names[i], names[j], 256);
                memcpy(names[j], t, 256);
            }
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s%s", i ? "," : "", names[i]);
    }
}

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Write ids as shards of split into dir through the writer, in appends of
 * irregular sizes (one per 1 + k % 37 ids), one document per append. */
static yan_status write_split(const char *dir, const char *split, int32_t n_vocab, int32_t bos, int32_t eos,
                              uint64_t shard_tokens, const int32_t *ids, size_t n) {
    yan_shard_writer *w;
    yan_status st = yan_shard_writer_open(dir, split, n_vocab, bos, eos, shard_tokens, &w);
    if (st) return st;
    size_t done = 0;
    for (int k = 0; done < n && !st; k++) {
        size_t m = 1 + (size_t)k % 37;
        if (m > n - done) m = n - done;
        st = yan_shard_writer_append(w, ids + done, m, 1, 3 * m + 1);
        done += m;
    }
    if (st) {
        yan_shard_writer_abort(w);
        return st;
    }
    return yan_shard_writer_commit(w);
}

static int32_t *make_ids(size_t n, int32_t n_vocab, uint64_t seed) {
    int32_t *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = (int32_t)(rng_next(&seed) % (uint64_t)n_vocab);
    return v;
}

/* ------------------------------------------------------- writer + reader */

TEST(data_shard_roundtrip) {
    const char *dir = fresh_dir("rt");
    const size_t n = 1000;
    int32_t *ids = make_ids(n, 8000, 42);
    size_t before = yan_alloc_used();
    CHECK(write_split(dir, "train", 8000, -1, 7999, 64, ids, n) == YAN_OK);
    CHECK(yan_alloc_used() == before);
    yan_shards *s = NULL;
    CHECK(yan_shards_open(dir, "train", &s) == YAN_OK);
    if (!s) {
        free(ids);
        return;
    }
    CHECK(yan_shards_n_tokens(s) == n);
    CHECK(yan_shards_count(s) == 16); /* ceil(1000 / 64) */
    CHECK(yan_shards_n_vocab(s) == 8000);
    CHECK(yan_shards_eos(s) == 7999 && yan_shards_bos(s) == -1);
    /* appends of 1 + k % 37 ids, each one document of 3m + 1 bytes */
    uint64_t docs = 0, bytes = 0;
    for (size_t done = 0, k = 0; done < n; k++) {
        size_t m = 1 + k % 37;
        if (m > n - done) m = n - done;
        docs++;
        bytes += 3 * m + 1;
        done += m;
    }
    CHECK(yan_shards_n_docs(s) == docs);
    CHECK(yan_shards_n_text_bytes(s) == bytes); /* spread over shards, never lost */
    int32_t *back = malloc(n * sizeof *back);
    CHECK(yan_shards_read(s, 0, n, back) == YAN_OK);
    CHECK(memcmp(back, ids, n * sizeof *ids) == 0);
    yan_shards_close(s);
    yan_shards_close(NULL);

    char p[600];
    struct stat sb;
    file_path(p, sizeof p, dir, "train_0000.bin");
    CHECK(stat(p, &sb) == 0 && sb.st_size == 64 + 64 * 2);
    file_path(p, sizeof p, dir, "train_0015.bin");
    CHECK(stat(p, &sb) == 0 && sb.st_size == 64 + (1000 - 15 * 64) * 2);
    char names[4096];
    list_dir(dir, names, sizeof names);
    CHECK(strstr(names, ".tmp") == NULL);
    free(back);
    free(ids);
}

/* stream[(pos + k) mod N] for the check below */
static void expect_row(const int32_t *stream, uint64_t N, uint64_t pos, int T, int32_t *out) {
    for (int i = 0; i < T; i++) out[i] = stream[(pos + (uint64_t)i) % N];
}

TEST(data_batch_wraps_across_shards) {
    const char *dir = fresh_dir("batch");
    const size_t N = 203; /* shards of 10: the last holds 3 */
    int32_t *ids = make_ids(N, 300, 7);
    CHECK(write_split(dir, "train", 300, 0, -1, 10, ids, N) == YAN_OK);
    yan_shards *s = NULL;
    CHECK(yan_shards_open(dir, "train", &s) == YAN_OK);
    if (!s) {
        free(ids);
        return;
    }
    CHECK(yan_shards_count(s) == 21);
    static const int shapes[][2] = {{1, 1}, {3, 4}, {2, 9}, {4, 17}, {5, 202}, {7, 50}};
    static const uint64_t starts[] = {0, 1, 9, 10, 11, 199, 200, 202, 203, 1000, UINT64_MAX};
    int32_t *in = malloc(7 * 202 * sizeof *in), *tg = malloc(7 * 202 * sizeof *tg), *want = malloc(202 * sizeof *want);
    for (size_t a = 0; a < sizeof shapes / sizeof shapes[0]; a++) {
        int B = shapes[a][0], T = shapes[a][1];
        YAN_TESTCASE(T + 1 == (int)N); /* {5, 202}: a row is the whole stream */
        for (size_t b = 0; b < sizeof starts / sizeof starts[0]; b++) {
            uint64_t pos = starts[b], p0 = pos % N;
            CHECK(yan_shards_batch(s, &pos, B, T, in, tg) == YAN_OK);
            CHECK(pos == (p0 + (uint64_t)B * (uint64_t)T) % N);
            for (int r = 0; r < B; r++) {
                uint64_t row = (p0 + (uint64_t)r * (uint64_t)T) % N;
                expect_row(ids, N, row, T, want);
                CHECK(memcmp(in + (size_t)r * (size_t)T, want, (size_t)T * sizeof *want) == 0);
                expect_row(ids, N, row + 1, T, want);
                CHECK(memcmp(tg + (size_t)r * (size_t)T, want, (size_t)T * sizeof *want) == 0);
            }
        }
    }
    /* sequential batches walk the stream: B*T = 12 tokens a step */
    uint64_t pos = 195;
    for (int step = 0; step < 40; step++) {
        uint64_t before = pos;
        CHECK(yan_shards_batch(s, &pos, 3, 4, in, tg) == YAN_OK);
        CHECK(in[0] == ids[before % N] && pos == (before + 12) % N);
    }
    /* a row needs T + 1 tokens */
    pos = 0;
    CHECK(yan_shards_batch(s, &pos, 1, 203, in, tg) == YAN_ERR_INVALID_ARG);
    CHECK(yan_shards_batch(s, &pos, 0, 4, in, tg) == YAN_ERR_INVALID_ARG);
    CHECK(yan_shards_batch(s, &pos, 2, 0, in, tg) == YAN_ERR_INVALID_ARG);
    /* read wraps as well */
    CHECK(yan_shards_read(s, 200, 10, want) == YAN_OK);
    CHECK(want[0] == ids[200] && want[3] == ids[0] && want[9] == ids[6]);
    yan_shards_close(s);
    free(in);
    free(tg);
    free(want);
    free(ids);
}

TEST(data_shards_u16_u32) {
    static const struct {
        int32_t n_vocab;
        int width;
    } cases[] = {{256, 2}, {65536, 2}, {65537, 4}, {200000, 4}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char name[32];
        snprintf(name, sizeof name, "width%zu", c);
        const char *dir = fresh_dir(name);
        int32_t V = cases[c].n_vocab;
        int32_t ids[6] = {0, 1, V - 1, V / 2, V - 2, 255};
        CHECK(write_split(dir, "val", V, V - 1, -1, 0, ids, 6) == YAN_OK);
        char p[600];
        struct stat sb;
        file_path(p, sizeof p, dir, "val_0000.bin");
        CHECK(stat(p, &sb) == 0 && sb.st_size == 64 + 6 * cases[c].width);
        size_t len;
        uint8_t *raw = slurp(p, &len);
        CHECK(raw && len >= 16 && raw[12] == cases[c].width);
        free(raw);
        yan_shards *s = NULL;
        CHECK(yan_shards_open(dir, "val", &s) == YAN_OK);
        int32_t back[6] = {0};
        if (s) CHECK(yan_shards_read(s, 0, 6, back) == YAN_OK);
        CHECK(memcmp(back, ids, sizeof ids) == 0);
        if (s) CHECK(yan_shards_bos(s) == V - 1 && yan_shards_eos(s) == -1);
        yan_shards_close(s);
    }
}

/* A one-shard directory "train_0000.bin" made from a valid shard image with
 * bytes changed; returns the status of opening it. */
static yan_status open_patched(const uint8_t *img, size_t len, size_t off, const void *patch, size_t plen,
                               size_t new_len) {
    const char *dir = fresh_dir("corrupt");
    uint8_t *b = calloc(1, new_len + 1);
    memcpy(b, img, len < new_len ? len : new_len);
    if (patch) memcpy(b + off, patch, plen);
    char p[600];
    file_path(p, sizeof p, dir, "train_0000.bin");
    CHECK(write_bytes(p, b, new_len));
    free(b);
    yan_shards *s = NULL;
    yan_status st = yan_shards_open(dir, "train", &s);
    CHECK((st == YAN_OK) == (s != NULL));
    yan_shards_close(s);
    return st;
}

TEST(data_shards_reject_corrupt) {
    const char *dir = fresh_dir("good");
    int32_t ids[40];
    for (int i = 0; i < 40; i++) ids[i] = i * 199;
    CHECK(write_split(dir, "train", 8000, -1, 7999, 0, ids, 40) == YAN_OK);
    char p[600];
    file_path(p, sizeof p, dir, "train_0000.bin");
    size_t len;
    uint8_t *img = slurp(p, &len);
    CHECK(img && len == 64 + 80);
    if (!img) return;
    CHECK(open_patched(img, len, 0, NULL, 0, len) == YAN_OK);

    CHECK(open_patched(img, len, 0, NULL, 0, len - 1) == YAN_ERR_FORMAT);
    CHECK(err_has("train_0000.bin") && err_has("truncated"));
    CHECK(open_patched(img, len, 0, NULL, 0, len + 2) == YAN_ERR_FORMAT);
    CHECK(err_has("trailing"));
    CHECK(open_patched(img, len, 0, NULL, 0, 30) == YAN_ERR_FORMAT);
    CHECK(err_has("shorter than the 64-byte header"));
    CHECK(open_patched(img, len, 0, NULL, 0, 0) == YAN_ERR_FORMAT);
    CHECK(open_patched(img, len, 0, "YANTOKZ", 8, len) == YAN_ERR_FORMAT);
    CHECK(err_has("magic"));
    uint8_t v2[4] = {2, 0, 0, 0};
    CHECK(open_patched(img, len, 8, v2, 4, len) == YAN_ERR_FORMAT);
    CHECK(err_has("version 2"));
    uint8_t w4[4] = {4, 0, 0, 0};
    CHECK(open_patched(img, len, 12, w4, 4, len) == YAN_ERR_FORMAT); /* u32 ids for a u16 vocabulary */
    CHECK(err_has("width"));
    uint8_t w3[4] = {3, 0, 0, 0};
    CHECK(open_patched(img, len, 12, w3, 4, len) == YAN_ERR_FORMAT);
    uint8_t big_n[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    CHECK(open_patched(img, len, 16, big_n, 8, len) == YAN_ERR_FORMAT); /* size overflow */
    uint8_t v0[4] = {0, 0, 0, 0};
    CHECK(open_patched(img, len, 40, v0, 4, len) == YAN_ERR_FORMAT); /* vocabulary 0 */
    uint8_t eos_big[4] = {0x40, 0x1f, 0, 0};                        /* eos 8000 */
    CHECK(open_patched(img, len, 48, eos_big, 4, len) == YAN_ERR_FORMAT);
    CHECK(err_has("eos"));
    uint8_t one = 1;
    CHECK(open_patched(img, len, 60, &one, 1, len) == YAN_ERR_FORMAT);
    CHECK(err_has("padding"));
    /* ids at the edge of the vocabulary: 7999 fits, 8000 does not */
    uint8_t id7999[2] = {0x3f, 0x1f}, id8000[2] = {0x40, 0x1f};
    CHECK(open_patched(img, len, 64 + 2 * 39, id7999, 2, len) == YAN_OK);
    CHECK(open_patched(img, len, 64 + 2 * 39, id8000, 2, len) == YAN_ERR_FORMAT);
    CHECK(err_has("token 39 has id 8000"));
    CHECK(open_patched(img, len, 64 + 2 * 5, id8000, 2, len) == YAN_ERR_FORMAT);
    CHECK(err_has("token 5 "));
    free(img);
}

TEST(data_shards_reject_inconsistent_sets) {
    int32_t ids[30];
    for (int i = 0; i < 30; i++) ids[i] = i;
    /* shards that disagree on the vocabulary */
    const char *a = fresh_dir("mix_a"), *b = fresh_dir("mix_b");
    CHECK(write_split(a, "train", 100, -1, 99, 10, ids, 30) == YAN_OK);
    CHECK(write_split(b, "train", 120, -1, 99, 10, ids, 30) == YAN_OK);
    char from[600], to[600];
    file_path(from, sizeof from, b, "train_0001.bin");
    file_path(to, sizeof to, a, "train_0001.bin");
    CHECK(rename(from, to) == 0);
    yan_shards *s = NULL;
    CHECK(yan_shards_open(a, "train", &s) == YAN_ERR_FORMAT && !s);
    CHECK(err_has("train_0001.bin") && err_has("vocabulary 120"));
    /* a gap in the numbering */
    file_path(to, sizeof to, a, "train_0001.bin");
    CHECK(unlink(to) == 0);
    CHECK(yan_shards_open(a, "train", &s) == YAN_ERR_FORMAT);
    CHECK(err_has("train_0001.bin: missing"));
    /* non-canonical names are not shards; no shard at all is IO */
    const char *c = fresh_dir("none");
    file_path(to, sizeof to, c, "train_1.bin");
    CHECK(write_str(to, "x"));
    file_path(to, sizeof to, c, "train_0000.bin.tmp.1");
    CHECK(write_str(to, "x"));
    CHECK(yan_shards_open(c, "train", &s) == YAN_ERR_IO);
    CHECK(err_has("no train_NNNN.bin shards"));
    CHECK(yan_shards_open(c, "val", &s) == YAN_ERR_IO);
    file_path(to, sizeof to, c, "missing-dir");
    CHECK(yan_shards_open(to, "train", &s) == YAN_ERR_IO);
    CHECK(err_has("missing-dir"));
}

TEST(data_writer_checks_and_cleans_up) {
    const char *dir = fresh_dir("writer");
    yan_shard_writer *w = NULL;
    CHECK(yan_shard_writer_open(dir, "train", 0, -1, -1, 0, &w) == YAN_ERR_INVALID_ARG && !w);
    CHECK(yan_shard_writer_open(dir, "train", 100, 100, -1, 0, &w) == YAN_ERR_INVALID_ARG && !w);
    /* out-of-range ids: refused whole, nothing written */
    CHECK(yan_shard_writer_open(dir, "train", 100, -1, 99, 4, &w) == YAN_OK);
    int32_t good[5] = {1, 2, 3, 4, 5}, bad1[3] = {1, 100, 2}, bad2[2] = {-1, 0};
    CHECK(yan_shard_writer_append(w, bad1, 3, 1, 3) == YAN_ERR_INVALID_ARG);
    CHECK(yan_shard_writer_append(w, bad2, 2, 1, 3) == YAN_ERR_INVALID_ARG);
    CHECK(yan_shard_writer_n_tokens(w) == 0 && yan_shard_writer_n_shards(w) == 0);
    CHECK(yan_shard_writer_append(w, good, 5, 1, 5) == YAN_OK);
    CHECK(yan_shard_writer_n_shards(w) == 2);
    char names[4096];
    list_dir(dir, names, sizeof names);
    CHECK(strstr(names, "train_0000.bin.tmp.") && !strstr(names, "train_0000.bin,")); /* not yet renamed */
    yan_shard_writer_abort(w);
    yan_shard_writer_abort(NULL);
    list_dir(dir, names, sizeof names);
    CHECK(strcmp(names, "") == 0);

    /* a shorter second run removes the shards the first left beyond it */
    int32_t ids[12] = {0};
    CHECK(write_split(dir, "train", 100, -1, 99, 4, ids, 12) == YAN_OK);
    CHECK(write_split(dir, "val", 100, -1, 99, 4, ids, 5) == YAN_OK);
    list_dir(dir, names, sizeof names);
    CHECK(strcmp(names, "train_0000.bin,train_0001.bin,train_0002.bin,val_0000.bin,val_0001.bin") == 0);
    CHECK(write_split(dir, "train", 100, -1, 99, 4, ids, 5) == YAN_OK);
    CHECK(write_split(dir, "val", 100, -1, 99, 4, ids, 0) == YAN_OK); /* empty: no shard at all */
    list_dir(dir, names, sizeof names);
    CHECK(strcmp(names, "train_0000.bin,train_0001.bin") == 0);
    yan_shards *s = NULL;
    CHECK(yan_shards_open(dir, "train", &s) == YAN_OK && yan_shards_n_tokens(s) == 5);
    yan_shards_close(s);
    char n1[64];
    yan_shard_name(n1, sizeof n1, "val", 12345);
    CHECK(strcmp(n1, "val_12345.bin") == 0);
}

TEST(data_shards_open_nomem) {
    const char *dir = fresh_dir("nomem");
    int32_t ids[50] = {0};
    CHECK(write_split(dir, "train", 100, -1, 99, 7, ids, 50) == YAN_OK);
    size_t before = yan_alloc_used();
    int ok = 0;
    for (long k = 1; k < 40; k++) {
        yan_alloc_fail_after(k);
        yan_shards *s = NULL;
        yan_status st = yan_shards_open(dir, "train", &s);
        yan_alloc_fail_after(0);
        CHECK(st == YAN_OK || st == YAN_ERR_NOMEM);
        ok += st == YAN_OK;
        yan_shards_close(s);
        CHECK(yan_alloc_used() == before);
    }
    CHECK(ok > 0);
    for (long k = 1; k < 20; k++) {
        yan_alloc_fail_after(k);
        yan_status st = write_split(dir, "val", 100, -1, 99, 7, ids, 50);
        yan_alloc_fail_after(0);
        CHECK(st == YAN_OK || st == YAN_ERR_NOMEM);
        CHECK(yan_alloc_used() == before);
    }
}

/* ---------------------------------------------------------------- prepare */

static yan_tokenizer *kjv_vocab(void) {
    yan_tokenizer_params p = yan_tokenizer_params_default();
    p.n_threads = 1;
    yan_tokenizer *t = NULL;
    if (yan_tokenizer_load(KJV_VOCAB, &p, &t) != YAN_OK) {
        fprintf(stderr, "  (skipped: %s not loadable from the working directory)\n", KJV_VOCAB);
        return NULL;
    }
    return t;
}

/* All ids of a split (malloc'ed), or NULL when it has no shards. */
static int32_t *read_split(const char *dir, const char *split, size_t *n) {
    yan_shards *s = NULL;
    *n = 0;
    if (yan_shards_open(dir, split, &s) != YAN_OK) return NULL;
    *n = (size_t)yan_shards_n_tokens(s);
    int32_t *v = malloc(*n * sizeof *v + 1);
    yan_shards_read(s, 0, *n, v);
    yan_shards_close(s);
    return v;
}

/* Text of ids with the separator (eos) dropped, into a new NUL-terminated string. */
static char *decode_without(const yan_tokenizer *t, const int32_t *ids, size_t n, int32_t sep, size_t *len) {
    int32_t *keep = malloc(n * sizeof *keep + 1);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] != sep) keep[m++] = ids[i];
    int64_t need = yan_detokenize(t, keep, m, NULL, 0, false);
    size_t cap = need < 0 ? (size_t)-need : 1;
    char *out = malloc(cap);
    int64_t got = yan_detokenize(t, keep, m, out, cap, false);
    free(keep);
    *len = got >= 0 ? (size_t)got : 0;
    return out;
}

static const char *TEXT_A = "In the beginning God created the heaven and the earth.\n"
                            "And the earth was without form, and void.\n"
                            "天地玄黄，宇宙洪荒。日月盈昃，辰宿列张。\n"
                            "Broken bytes: \xff\xfe and a cut \xe4\xb8 sequence.\n"
                            "And God said, Let there be light: and there was light.\r\n"
                            "床前明月光，疑是地上霜。\n"
                            "Last line without a newline";

static const char *JSONL_B = "{\"text\": \"first record\\nwith two lines\"}\n"
                             "\n"
                             "   \r\n"
                             "{\"id\": 7, \"text\": \"\\u4e2d\\u6587 and \\\"quotes\\\"\"}\r\n"
                             "{\"text\": \"\"}\n"
                             "{\"text\": \"last\"}";

static yan_data_prepare_params prep_params(const char *const *files, int n, const char *out) {
    yan_data_prepare_params p = yan_data_prepare_params_default();
    p.tokenizer = KJV_VOCAB;
    p.files = files;
    p.n_files = n;
    p.out_dir = out;
    p.n_threads = 1;
    return p;
}

TEST(data_prepare_roundtrip) {
    yan_tokenizer *t = kjv_vocab();
    if (!t) return;
    const char *in = fresh_dir("prep_in");
    char a[600], b[600];
    file_path(a, sizeof a, in, "a.txt");
    file_path(b, sizeof b, in, "b.JSONL");
    CHECK(write_str(a, TEXT_A) && write_str(b, JSONL_B));
    const char *files[2] = {a, b};
    char out[600];
    file_path(out, sizeof out, in, "out/nested");
    yan_data_prepare_params p = prep_params(files, 2, out);
    p.val_fraction = 0;
    p.segment_bytes = 40; /* many segments */
    yan_data_prepare_stats st;
    CHECK(yan_data_prepare(&p, &st) == YAN_OK);
    CHECK(st.n_docs == 4); /* the text file + 3 non-empty records */
    CHECK(st.docs[0] == 4 && st.docs[1] == 0 && st.shards[1] == 0 && st.shards[0] == 1);
    CHECK(st.input_bytes == strlen(TEXT_A) + strlen(JSONL_B));
    CHECK(st.n_vocab == 8000 && st.token_bytes == 2);

    /* the stream is each document's own tokens followed by eos */
    const char *docs[4] = {TEXT_A, "first record\nwith two lines", "中文 and \"quotes\"", "last"};
    int32_t eos = yan_tokenizer_special(t, YAN_SPECIAL_EOS);
    size_t n = 0, want_n = 0;
    int32_t *got = read_split(out, "train", &n);
    int32_t *want = malloc(100000 * sizeof *want);
    uint64_t bytes = 0;
    for (int d = 0; d < 4; d++) {
        int64_t k = yan_tokenize(t, docs[d], strlen(docs[d]), want + want_n, 100000 - want_n, 0);
        CHECK(k > 0);
        want_n += (size_t)k;
        want[want_n++] = eos;
        bytes += strlen(docs[d]);
    }
    CHECK(got && n == want_n && memcmp(got, want, n * sizeof *got) == 0);
    CHECK(st.tokens[0] == n && st.text_bytes[0] == bytes);
    free(got);

    /* meta.json agrees */
    char mp[700];
    file_path(mp, sizeof mp, out, "meta.json");
    size_t ml;
    uint8_t *meta = slurp(mp, &ml);
    yan_arena ar;
    yan_arena_init(&ar, 4096);
    yan_json *root = NULL;
    CHECK(meta && yan_json_parse((const char *)meta, ml, &ar, &root) == YAN_OK);
    int64_t v = -1;
    CHECK(yan_json_int(yan_json_get(yan_json_get(root, "train"), "tokens"), &v) && (uint64_t)v == n);
    CHECK(yan_json_int(yan_json_get(yan_json_get(root, "train"), "text_bytes"), &v) && (uint64_t)v == bytes);
    CHECK(yan_json_int(yan_json_get(root, "documents"), &v) && v == 4);
    CHECK(yan_json_str_eq(yan_json_get(yan_json_at(yan_json_get(root, "inputs"), 1), "format"), "jsonl"));
    CHECK(yan_json_len(yan_json_get(yan_json_get(root, "val"), "files")) == 0);
    yan_arena_free(&ar);
    free(meta);

    /* tokenizer.gguf loads and is the same vocabulary */
    char gp[700];
    file_path(gp, sizeof gp, out, "tokenizer.gguf");
    yan_tokenizer *g = NULL;
    yan_tokenizer_params tp = yan_tokenizer_params_default();
    CHECK(yan_tokenizer_load(gp, &tp, &g) == YAN_OK);
    if (g) {
        int32_t x[200], y[200];
        int64_t nx = yan_tokenize(g, TEXT_A, strlen(TEXT_A), x, 200, 0);
        int64_t ny = yan_tokenize(t, TEXT_A, strlen(TEXT_A), y, 200, 0);
        CHECK(nx > 0 && nx == ny && memcmp(x, y, (size_t)nx * sizeof *x) == 0);
        CHECK(yan_tokenizer_n_vocab(g) == 8000 && yan_tokenizer_special(g, YAN_SPECIAL_EOS) == eos);
        yan_tokenizer_free(g);
    }
    free(want);
    yan_tokenizer_free(t);
}

/* Every file of dir a equals the one of the same name in b. */
static bool same_dirs(const char *a, const char *b) {
    char na[4096], nb[4096];
    list_dir(a, na, sizeof na);
    list_dir(b, nb, sizeof nb);
    if (strcmp(na, nb) != 0) return false;
    bool ok = true;
    for (char *name = strtok(na, ","); name && ok; name = strtok(NULL, ",")) {
        char pa[700], pb[700];
        file_path(pa, sizeof pa, a, name);
        file_path(pb, sizeof pb, b, name);
        size_t la, lb;
        uint8_t *x = slurp(pa, &la), *y = slurp(pb, &lb);
        ok = x && y && la == lb && memcmp(x, y, la) == 0;
        if (!ok) fprintf(stderr, "  %s differs\n", name);
        free(x);
        free(y);
    }
    return ok;
}

TEST(data_prepare_split_and_threads) {
    yan_tokenizer *t = kjv_vocab();
    if (!t) return;
    const char *in = fresh_dir("split_in");
    /* 400 lines of text and 200 records */
    yan_buf txt = {0}, jl = {0};
    for (int i = 0; i < 400; i++) yan_buf_printf(&txt, "Line %d of the text, 第%d行。\n", i, i);
    size_t jl_text = 0;
    for (int i = 0; i < 200; i++) {
        size_t before = jl.len;
        yan_buf_printf(&jl, "{\"text\": \"record %d\"}\n", i);
        jl_text += jl.len - before - strlen("{\"text\": \"\"}\n");
    }
    char a[600], b[600];
    file_path(a, sizeof a, in, "a.md");
    file_path(b, sizeof b, in, "b.jsonl");
    CHECK(write_bytes(a, txt.data, txt.len) && write_bytes(b, jl.data, jl.len));
    const char *files[2] = {a, b};
    char o1[600], o3[600];
    file_path(o1, sizeof o1, in, "t1");
    file_path(o3, sizeof o3, in, "t3");
    yan_data_prepare_params p = prep_params(files, 2, o1);
    p.val_fraction = 0.2;
    p.segment_bytes = 500;
    p.shard_tokens = 1000;
    yan_data_prepare_stats s1, s3;
    CHECK(yan_data_prepare(&p, &s1) == YAN_OK);
    p.out_dir = o3;
    p.n_threads = 3;
    CHECK(yan_data_prepare(&p, &s3) == YAN_OK);
    CHECK(same_dirs(o1, o3));
    CHECK(s1.tokens[1] > 0 && s1.tokens[0] > s1.tokens[1]);
    CHECK(s1.docs[1] >= 2 && s1.n_docs == 201 && s1.shards[0] > 1);
    CHECK(s1.n_units > 200 + 10); /* records + segments */
    /* all the text is there, once: bytes of both splits add up */
    CHECK(s1.text_bytes[0] + s1.text_bytes[1] == txt.len + jl_text);
    yan_buf_free(&txt);
    yan_buf_free(&jl);
    yan_tokenizer_free(t);
}

TEST(data_prepare_split_rules) {
    yan_tokenizer *t = kjv_vocab();
    if (!t) return;
    int32_t eos = yan_tokenizer_special(t, YAN_SPECIAL_EOS);
    const char *in = fresh_dir("rules");
    char a[600], out[600];
    file_path(a, sizeof a, in, "ten.txt");
    file_path(out, sizeof out, in, "out");
    const char *ten = "l0\nl1\nl2\nl3\nl4\nl5\nl6\nl7\nl8\nl9\n";
    CHECK(write_str(a, ten));
    const char *files[1] = {a};
    yan_data_prepare_params p = prep_params(files, 1, out);
    yan_data_prepare_stats st;
    /* one segment: its last ceil(0.25 * 10) = 3 lines go to validation */
    p.val_fraction = 0.25;
    CHECK(yan_data_prepare(&p, &st) == YAN_OK);
    size_t n, len;
    int32_t *ids = read_split(out, "val", &n);
    char *text = ids ? decode_without(t, ids, n, eos, &len) : NULL;
    CHECK(text && len == 9 && memcmp(text, "l7\nl8\nl9\n", 9) == 0);
    CHECK(ids && ids[n - 1] == eos);
    free(text);
    free(ids);
    ids = read_split(out, "train", &n);
    text = ids ? decode_without(t, ids, n, eos, &len) : NULL;
    CHECK(text && len == 21 && memcmp(text, ten, 21) == 0);
    CHECK(ids && ids[n - 1] == eos);
    CHECK(st.docs[0] == 1 && st.docs[1] == 1 && st.n_docs == 1);
    free(text);
    free(ids);
    /* at least one line even for a tiny fraction */
    p.val_fraction = 1e-9;
    CHECK(yan_data_prepare(&p, &st) == YAN_OK);
    CHECK(st.text_bytes[1] == 3);
    /* one line cannot be split: all training, and old val shards go away */
    CHECK(write_str(a, "just one line\n"));
    CHECK(yan_data_prepare(&p, &st) == YAN_OK);
    CHECK(st.tokens[1] == 0 && st.shards[1] == 0 && st.text_bytes[0] == 14);
    yan_shards *s = NULL;
    CHECK(yan_shards_open(out, "val", &s) == YAN_ERR_IO);

    /* many segments and a tiny fraction: exactly one goes to validation */
    yan_buf big = {0};
    for (int i = 0; i < 300; i++) yan_buf_printf(&big, "Verse %d: and it was so.\n", i);
    CHECK(write_bytes(a, big.data, big.len));
    p.segment_bytes = 100;
    CHECK(yan_data_prepare(&p, &st) == YAN_OK);
    CHECK(st.n_units > 50 && st.tokens[1] > 0 && st.docs[1] == 1 && st.text_bytes[1] <= 200);
    /* the same with a fraction near 1: at least one stays for training */
    p.val_fraction = 0.999999;
    CHECK(yan_data_prepare(&p, &st) == YAN_OK);
    CHECK(st.tokens[0] > 0 && st.text_bytes[0] <= 200 && st.text_bytes[0] + st.text_bytes[1] == big.len);
    /* every segment ends at a line end: decoding both splits gives whole lines */
    ids = read_split(out, "train", &n);
    text = ids ? decode_without(t, ids, n, eos, &len) : NULL;
    CHECK(text && len > 0 && text[len - 1] == '\n');
    free(text);
    free(ids);
    yan_buf_free(&big);
    yan_tokenizer_free(t);
}

TEST(data_prepare_errors) {
    const char *in = fresh_dir("errs");
    char good[600], bad[600], out[600], empty[600], blank[600], p2[600];
    file_path(good, sizeof good, in, "good.txt");
    file_path(out, sizeof out, in, "out");
    CHECK(write_str(good, "Some good text.\nAnother line.\n"));
    const char *files[2] = {good, NULL};
    yan_data_prepare_params p = prep_params(files, 1, out);
    yan_data_prepare_stats st;
    if (yan_data_prepare(&p, &st) != YAN_OK) {
        fprintf(stderr, "  (skipped: %s)\n", yan_last_error());
        return;
    }
    char before[4096], after[4096];
    list_dir(out, before, sizeof before);
    char mp[700];
    file_path(mp, sizeof mp, out, "meta.json");
    size_t ml0, ml1;
    uint8_t *meta0 = slurp(mp, &ml0);

    struct {
        const char *name, *content, *expect;
        yan_status st;
    } cases[] = {
        {"bad1.jsonl", "{\"text\": \"ok\"}\n\n{\"text\": \"oops\"\n", "bad1.jsonl:3: not valid JSON", YAN_ERR_FORMAT},
        {"bad2.jsonl", "{\"text\": \"ok\"}\n{\"body\": \"x\"}\n", "bad2.jsonl:2: no \"text\" field", YAN_ERR_FORMAT},
        {"bad3.jsonl", "{\"text\": 12}\n", "bad3.jsonl:1: \"text\" is not a string", YAN_ERR_FORMAT},
        {"bad4.jsonl", "[\"text\"]\n", "bad4.jsonl:1: not a JSON object", YAN_ERR_FORMAT},
        {"bad5.jsonl", "{\"text\": \"a\xff\"}\n", "bad5.jsonl:1: not valid JSON", YAN_ERR_FORMAT},
        {"empty.txt", "", "empty.txt: no text", YAN_ERR_FORMAT},
        {"blank.jsonl", "\n  \n\r\n", "blank.jsonl: no text", YAN_ERR_FORMAT},
        {"nothing.jsonl", "{\"text\": \"\"}\n", "no text", YAN_ERR_FORMAT},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        file_path(bad, sizeof bad, in, cases[c].name);
        CHECK(write_str(bad, cases[c].content));
        files[0] = bad;
        yan_status s = yan_data_prepare(&p, &st);
        CHECK(s == cases[c].st);
        CHECK(err_has(cases[c].expect));
    }
    /* the error of the earliest bad line wins, whatever the threads */
    yan_buf many = {0};
    for (int i = 0; i < 3000; i++)
        yan_buf_printf(&many, i == 2500 || i == 1200 ? "{oops}\n" : "{\"text\": \"r%d\"}\n", i);
    file_path(bad, sizeof bad, in, "many.jsonl");
    CHECK(write_bytes(bad, many.data, many.len));
    yan_buf_free(&many);
    p.segment_bytes = 64;
    p.n_threads = 4;
    CHECK(yan_data_prepare(&p, &st) == YAN_ERR_FORMAT);
    CHECK(err_has("many.jsonl:1201:"));
    p.n_threads = 1;
    p.segment_bytes = 0;
    /* a directory the failed run created is not left behind */
    char fresh[700];
    file_path(fresh, sizeof fresh, in, "new-out");
    p.out_dir = fresh;
    CHECK(yan_data_prepare(&p, &st) == YAN_ERR_FORMAT);
    struct stat sb;
    CHECK(stat(fresh, &sb) != 0);
    p.out_dir = out;

    files[0] = good;
    file_path(p2, sizeof p2, in, "no-such-file.txt");
    files[1] = p2;
    p.n_files = 2;
    CHECK(yan_data_prepare(&p, &st) == YAN_ERR_IO);
    CHECK(err_has("no-such-file.txt"));
    files[1] = in; /* a directory */
    CHECK(yan_data_prepare(&p, &st) == YAN_ERR_IO);
    CHECK(err_has("not a regular file"));
    file_path(empty, sizeof empty, in, "e1.txt");
    file_path(blank, sizeof blank, in, "e2.jsonl");
    CHECK(write_str(empty, "") && write_str(blank, "\n"));
    files[0] = empty;
    files[1] = blank;
    CHECK(yan_data_prepare(&p, &st) == YAN_ERR_FORMAT);
    CHECK(err_has("no text in any of the 2 input files"));
    files[0] = good;
    p.n_files = 1;
    p.tokenizer = p2;
    CHECK(yan_data_prepare(&p, &st) == YAN_ERR_IO);
    CHECK(err_has("no-such-file.txt"));
    p.tokenizer = good; /* not a vocabulary */
    CHECK(yan_data_prepare(&p, &st) != YAN_OK);
    CHECK(err_has("good.txt"));
    p.tokenizer = KJV_VOCAB;
    p.val_fraction = 1;
    CHECK(yan_data_prepare(&p, &st) == YAN_ERR_INVALID_ARG);
    p.val_fraction = -0.5;
    CHECK(yan_data_prepare(&p, &st) == YAN_ERR_INVALID_ARG);
    file_path(p2, sizeof p2, good, "sub");
    p.val_fraction = 0.01;
    p.out_dir = p2; /* below a regular file */
    CHECK(yan_data_prepare(&p, &st) == YAN_ERR_IO);

    /* none of this touched the earlier output */
    list_dir(out, after, sizeof after);
    CHECK(strcmp(before, after) == 0);
    uint8_t *meta1 = slurp(mp, &ml1);
    CHECK(meta0 && meta1 && ml0 == ml1 && memcmp(meta0, meta1, ml0) == 0);
    free(meta0);
    free(meta1);
}

static bool abort_after_two(const yan_data_progress *p, void *ud) {
    int *calls = ud;
    CHECK(p->bytes_done <= p->bytes_total);
    return ++*calls < 2;
}

TEST(data_prepare_abort_keeps_old_output) {
    const char *in = fresh_dir("abort");
    char a[600], out[600];
    file_path(a, sizeof a, in, "a.txt");
    file_path(out, sizeof out, in, "out");
    yan_buf txt = {0};
    for (int i = 0; i < 200; i++) yan_buf_printf(&txt, "line %d\n", i);
    CHECK(write_bytes(a, txt.data, txt.len));
    yan_buf_free(&txt);
    const char *files[1] = {a};
    yan_data_prepare_params p = prep_params(files, 1, out);
    p.segment_bytes = 100;
    p.shard_tokens = 50;
    yan_data_prepare_stats st;
    if (yan_data_prepare(&p, &st) != YAN_OK) {
        fprintf(stderr, "  (skipped: %s)\n", yan_last_error());
        return;
    }
    char before[4096], after[4096];
    list_dir(out, before, sizeof before);
    int calls = 0;
    p.progress = abort_after_two;
    p.progress_ud = &calls;
    p.shard_tokens = 7; /* different shards, had it finished */
    size_t used = yan_alloc_used();
    CHECK(yan_data_prepare(&p, &st) == YAN_ERR_ABORTED);
    CHECK(yan_alloc_used() == used);
    CHECK(calls == 2);
    list_dir(out, after, sizeof after);
    CHECK(strcmp(before, after) == 0); /* no temporaries, no new shards */
}

/* Allocation failures anywhere in prepare (loading, scanning, tokenizing,
 * writing) give an error, leak nothing and leave the directory as it was. */
TEST(data_prepare_nomem) {
    const char *in = fresh_dir("prep_nomem");
    char a[600], b[600], out[600];
    file_path(a, sizeof a, in, "a.txt");
    file_path(b, sizeof b, in, "b.jsonl");
    file_path(out, sizeof out, in, "out");
    CHECK(write_str(a, TEXT_A) && write_str(b, JSONL_B));
    const char *files[2] = {a, b};
    yan_data_prepare_params p = prep_params(files, 2, out);
    p.segment_bytes = 50;
    p.shard_tokens = 20;
    p.val_fraction = 0.3;
    yan_data_prepare_stats st;
    if (yan_data_prepare(&p, &st) != YAN_OK) {
        fprintf(stderr, "  (skipped: %s)\n", yan_last_error());
        return;
    }
    char before[4096], after[4096];
    list_dir(out, before, sizeof before);
    size_t used = yan_alloc_used();
    int fails = 0;
    for (long k = 1;; k += k / 3 + 1) {
        yan_alloc_fail_after(k);
        yan_status s = yan_data_prepare(&p, &st);
        yan_alloc_fail_after(0);
        CHECK(yan_alloc_used() == used);
        list_dir(out, after, sizeof after);
        CHECK(strcmp(before, after) == 0);
        if (s == YAN_OK) break;
        fails++;
        if (k > 100000000) break;
    }
    CHECK(fails > 10);
}
