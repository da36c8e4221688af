/* cmd_data.c — `yan data prepare|info|cat`: tokenize text and JSONL corpora
 * into training shards (src/train/data.h), check a data directory, and turn
 * its shards back into text. */
#include "cmd.h"

#include "train/data.h"

#include <errno.h>
#include <signal.h>

static void usage(FILE *f) {
    fprintf(f, "usage: yan data <prepare|info|cat> ...\n\n"
               "  prepare --tokenizer FILE FILE... -o DIR   tokenize a corpus into training shards\n"
               "  info DIR                                  check a data directory's shards, print counts\n"
               "  cat DIR [--split train|val]               the text a split holds\n\n"
               "'yan data prepare --help' describes the options.\n");
}

static void prepare_usage(FILE *f) {
    fprintf(f,
            "usage: yan data prepare --tokenizer FILE [options] FILE... -o DIR\n\n"
            "Tokenizes plain-text files (one document each) and JSONL files (*.jsonl: one\n"
            "{\"text\": \"...\"} object per line, each a document; blank lines skipped) into DIR:\n"
            "tokenizer.gguf, train_NNNN.bin and val_NNNN.bin shards, and meta.json. Each\n"
            "document ends with the vocabulary's end-of-text token. Text files are cut into\n"
            "segments at line boundaries; segments and records go to validation by a hash of\n"
            "their position. The output does not depend on --threads. DIR keeps its old files\n"
            "until the new ones are complete.\n\n"
            "  --tokenizer FILE     vocabulary: GGUF, tokenizer.json, tiktoken, GPT-2 encoder.json (required)\n"
            "  -o, --output DIR     output directory, created if missing (required)\n"
            "  --val-fraction F     share of segments/records for validation, 0 <= F < 1 (default 0.01)\n"
            "  --threads N          tokenizer threads (default: all cores)\n"
            "  --shard-tokens N     tokens per shard file (default 100000000)\n"
            "  --segment-bytes N    size of the segments text files are cut into (default 1048576)\n"
            "  --pre NAME           pre-tokenizer, for rank files that do not name one (%s)\n"
            "  -q, --quiet          no progress line\n\n"
            "example: yan data prepare --tokenizer tokenizer.json books/*.txt web.jsonl -o data/run1\n",
            yan_pretokenizer_names());
}

static uint64_t parse_count(const char *opt, const char *val) {
    char *end;
    if (!val) {
        fprintf(stderr, "yan: %s needs a value\n", opt);
        exit(2);
    }
    errno = 0;
    unsigned long long v = strtoull(val, &end, 10);
    if (errno || *end || end == val || val[0] == '-' || v == 0) {
        fprintf(stderr, "yan: %s: '%s' is not a positive integer\n", opt, val);
        exit(2);
    }
    return (uint64_t)v;
}

typedef struct {
    bool quiet, shown;
    double last;
} progress_state;

/* Set by the first Ctrl-C: the run stops after the segment in hand and
 * removes its temporaries (a second Ctrl-C kills at once). */
static volatile sig_atomic_t g_interrupted;
static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
}

static void fmt_mb(char *buf, size_t cap, uint64_t bytes) { snprintf(buf, cap, "%.1f", (double)bytes / 1e6); }

/* One line on stderr, rewritten in place at most ~10 times a second. */
static bool on_progress(const yan_data_progress *p, void *ud) {
    progress_state *ps = ud;
    if (g_interrupted) return false;
    if (ps->quiet) return true;
    bool final = p->bytes_done >= p->bytes_total;
    if (ps->shown && !final && p->seconds - ps->last < 0.1) return true;
    ps->last = p->seconds;
    ps->shown = true;
    char done[32], total[32];
    fmt_mb(done, sizeof done, p->bytes_done);
    fmt_mb(total, sizeof total, p->bytes_total);
    double rate = p->seconds > 0 ? (double)p->bytes_done / 1e6 / p->seconds : 0;
    fprintf(stderr, "\r%s / %s MB  %.1f MB/s  %llu tokens  %llu documents   ", done, total, rate,
            (unsigned long long)p->tokens, (unsigned long long)p->docs);
    fflush(stderr);
    return true;
}

static int prepare(int argc, char **argv) {
    yan_data_prepare_params p = yan_data_prepare_params_default();
    progress_state ps = {0};
    const char **files = calloc((size_t)argc, sizeof *files);
    if (!files) return cmd_fail("data prepare", YAN_ERR_NOMEM);
    int nf = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cmd_is_help(a)) {
            prepare_usage(stdout);
            free(files);
            return 0;
        } else if (!strcmp(a, "--tokenizer") || !strcmp(a, "--vocab")) {
            if (!v) { fprintf(stderr, "yan: %s needs a value\n", a); free(files); return 2; }
            p.tokenizer = argv[++i];
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!v) { fprintf(stderr, "yan: %s needs a value\n", a); free(files); return 2; }
            p.out_dir = argv[++i];
        } else if (!strcmp(a, "--pre")) {
            if (!v) { fprintf(stderr, "yan: %s needs a value\n", a); free(files); return 2; }
            p.pre = argv[++i];
        } else if (!strcmp(a, "--val-fraction")) {
            p.val_fraction = cmd_float(a, v);
            i++;
            if (p.val_fraction >= 1) {
                fprintf(stderr, "yan: --val-fraction: '%s' must be below 1\n", v);
                free(files);
                return 2;
            }
        } else if (!strcmp(a, "--threads")) {
            p.n_threads = cmd_int(a, v);
            i++;
        } else if (!strcmp(a, "--shard-tokens")) {
            p.shard_tokens = parse_count(a, v);
            i++;
        } else if (!strcmp(a, "--segment-bytes")) {
            p.segment_bytes = (size_t)parse_count(a, v);
            i++;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            ps.quiet = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "yan data prepare: unknown option '%s'\n", a);
            prepare_usage(stderr);
            free(files);
            return 2;
        } else {
            files[nf++] = a;
        }
    }
    const char *missing = !p.tokenizer ? "--tokenizer FILE" : !p.out_dir ? "-o DIR" : !nf ? "input FILE" : NULL;
    if (missing) {
        fprintf(stderr, "yan data prepare: %s is required\n", missing);
        prepare_usage(stderr);
        free(files);
        return 2;
    }
    p.files = files;
    p.n_files = nf;
    p.progress = on_progress;
    p.progress_ud = &ps;
    yan_data_prepare_stats st;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = (int)SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    yan_status s = yan_data_prepare(&p, &st);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (ps.shown) fputc('\n', stderr);
    free(files);
    if (s == YAN_ERR_ABORTED && g_interrupted) {
        fprintf(stderr, "yan data prepare: interrupted; nothing was written to %s\n", p.out_dir);
        return 130;
    }
    if (s) return cmd_fail("data prepare", s);

    uint64_t tokens = st.tokens[0] + st.tokens[1], text = st.text_bytes[0] + st.text_bytes[1];
    printf("%s: %llu tokens, %llu documents, %.2f MB of text in %.2f s (%.1f MB/s, %.2f bytes/token)\n", p.out_dir,
           (unsigned long long)tokens, (unsigned long long)st.n_docs, (double)text / 1e6, st.seconds,
           st.seconds > 0 ? (double)st.input_bytes / 1e6 / st.seconds : 0.0,
           tokens ? (double)text / (double)tokens : 0.0);
    static const char *names[2] = {"train", "val"};
    for (int k = 0; k < 2; k++) {
        printf("  %-5s %12llu tokens  %8llu documents  %10.2f MB text  %d shard%s", names[k],
               (unsigned long long)st.tokens[k], (unsigned long long)st.docs[k], (double)st.text_bytes[k] / 1e6,
               st.shards[k], st.shards[k] == 1 ? "" : "s");
        if (st.shards[k] == 1) printf(" (%s_0000.bin)", names[k]);
        else if (st.shards[k] > 1) printf(" (%s_0000.bin .. %s_%04d.bin)", names[k], names[k], st.shards[k] - 1);
        printf("\n");
    }
    printf("  vocabulary %d (%s ids) in tokenizer.gguf; counts in meta.json\n", st.n_vocab,
           st.token_bytes == 2 ? "u16" : "u32");
    if (p.val_fraction > 0 && st.tokens[1] == 0)
        fprintf(stderr, "yan data prepare: note: nothing went to validation (the input is a single line)\n");
    return 0;
}

static int info(int argc, char **argv) {
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (cmd_is_help(argv[i])) {
            printf("usage: yan data info DIR\n\nOpens (and so checks) the train and val shards of DIR and prints"
                   " their counts.\n");
            return 0;
        }
        dir = argv[i];
    }
    if (!dir) {
        fprintf(stderr, "yan data info: DIR is required\n");
        return 2;
    }
    static const char *names[2] = {"train", "val"};
    int found = 0;
    for (int k = 0; k < 2; k++) {
        yan_shards *sh;
        yan_status s = yan_shards_open(dir, names[k], &sh);
        if (s == YAN_ERR_IO && k == 1 && found) {
            printf("%-5s none\n", names[k]);
            continue;
        }
        if (s) return cmd_fail("data info", s);
        found++;
        uint64_t n = yan_shards_n_tokens(sh), b = yan_shards_n_text_bytes(sh);
        printf("%-5s %llu tokens  %llu documents  %llu text bytes  %d shard%s  vocabulary %u  bos %d  eos %d"
               "  %.2f bytes/token\n",
               names[k], (unsigned long long)n, (unsigned long long)yan_shards_n_docs(sh), (unsigned long long)b,
               yan_shards_count(sh), yan_shards_count(sh) == 1 ? "" : "s", yan_shards_n_vocab(sh),
               yan_shards_bos(sh), yan_shards_eos(sh), n ? (double)b / (double)n : 0.0);
        yan_shards_close(sh);
    }
    return 0;
}

/* Decode a split's tokens to stdout. The separators are left out and each
 * document gets a fresh decoder (spm drops each document's space prefix). */
static int cat(int argc, char **argv) {
    const char *dir = NULL, *split = "train";
    for (int i = 1; i < argc; i++) {
        if (cmd_is_help(argv[i])) {
            printf("usage: yan data cat DIR [--split train|val]\n\nWrites the text of a split's shards (decoded"
                   " with DIR/tokenizer.gguf, without the\nend-of-text separators) to stdout.\n");
            return 0;
        } else if (!strcmp(argv[i], "--split") && i + 1 < argc) split = argv[++i];
        else if (argv[i][0] == '-') {
            fprintf(stderr, "yan data cat: unknown option '%s'\n", argv[i]);
            return 2;
        } else dir = argv[i];
    }
    if (!dir) {
        fprintf(stderr, "yan data cat: DIR is required\n");
        return 2;
    }
    size_t pl = strlen(dir) + 32;
    char *vpath = malloc(pl);
    if (!vpath) return cmd_fail("data cat", YAN_ERR_NOMEM);
    snprintf(vpath, pl, "%s/tokenizer.gguf", dir);
    yan_tokenizer *tok = NULL;
    yan_shards *sh = NULL;
    yan_decoder *dec = NULL;
    yan_tokenizer_params tp = yan_tokenizer_params_default();
    yan_status s = yan_tokenizer_load(vpath, &tp, &tok);
    free(vpath);
    if (s) return cmd_fail("data cat", s);
    s = yan_shards_open(dir, split, &sh);
    if (!s && yan_shards_n_vocab(sh) != (uint32_t)yan_tokenizer_n_vocab(tok)) {
        fprintf(stderr, "yan data cat: the shards' vocabulary (%u) is not tokenizer.gguf's (%d)\n",
                yan_shards_n_vocab(sh), yan_tokenizer_n_vocab(tok));
        yan_shards_close(sh);
        yan_tokenizer_free(tok);
        return 1;
    }
    if (!s) s = yan_decoder_new(tok, &dec);
    enum { CHUNK = 65536 };
    int32_t *ids = s ? NULL : malloc(CHUNK * sizeof *ids);
    size_t cap = 1 << 16;
    char *buf = s ? NULL : malloc(cap);
    if (!s && (!ids || !buf)) s = YAN_ERR_NOMEM;
    int rc = 0;
    if (!s) {
        int32_t bos = yan_shards_bos(sh), eos = yan_shards_eos(sh);
        int32_t sep = eos >= 0 ? eos : bos;
        uint64_t n = yan_shards_n_tokens(sh);
        for (uint64_t pos = 0; pos < n && !s; pos += CHUNK) {
            size_t m = n - pos < CHUNK ? (size_t)(n - pos) : CHUNK;
            s = yan_shards_read(sh, pos, m, ids);
            for (size_t k = 0; k < m && !s; k++) {
                int64_t w;
                if (ids[k] == sep) {
                    w = yan_decoder_flush(dec, buf, cap);
                    if (w > 0) fwrite(buf, 1, (size_t)w, stdout);
                    yan_decoder_free(dec);
                    dec = NULL;
                    s = yan_decoder_new(tok, &dec);
                    continue;
                }
                while ((w = yan_decoder_push(dec, ids[k], buf, cap)) < 0 && w != INT64_MIN) {
                    char *nb = realloc(buf, (size_t)-w);
                    if (!nb) break;
                    buf = nb;
                    cap = (size_t)-w;
                }
                if (w < 0) s = YAN_ERR_NOMEM;
                else fwrite(buf, 1, (size_t)w, stdout);
            }
        }
        if (!s) {
            int64_t w = yan_decoder_flush(dec, buf, cap);
            if (w > 0) fwrite(buf, 1, (size_t)w, stdout);
        }
    }
    if (s) rc = cmd_fail("data cat", s);
    if (fflush(stdout) != 0) rc = 1;
    free(ids);
    free(buf);
    yan_decoder_free(dec);
    yan_shards_close(sh);
    yan_tokenizer_free(tok);
    return rc;
}

int yan_cmd_data(int argc, char **argv) {
    if (argc < 2 || cmd_is_help(argv[1])) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "prepare")) return prepare(argc - 1, argv + 1);
    if (!strcmp(argv[1], "info")) return info(argc - 1, argv + 1);
    if (!strcmp(argv[1], "cat")) return cat(argc - 1, argv + 1);
    fprintf(stderr, "yan data: unknown subcommand '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
