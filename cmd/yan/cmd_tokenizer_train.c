/* cmd_tokenizer_train.c — `yan tokenizer train`: learn a byte-level BPE
 * vocabulary from text files and write it as tokenizer.json. A thin shell
 * over yan_tokenizer_train (through its internal _ex form, for the summary);
 * draws a progress bar on stderr when stderr is a terminal or with
 * --progress. */
#include "cmd.h"


#include <time.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: yan tokenizer train --vocab-size N [options] FILES...\n"
            "\n"
            "Learn a byte-level BPE vocabulary (256 byte tokens + merges + special tokens)\n"
            "from text files and write a Hugging Face tokenizer.json.\n"
            "\n"
            "  --vocab-size N      total vocabulary size, including the 256 bytes and the specials\n"
            "  --pre NAME          pre-tokenizer splitting the text: %s (default cl100k)\n"
            "  --special TOK       add a special token (repeatable); ids follow the learned tokens\n"
            "  --min-frequency N   stop when the best pair occurs fewer than N times (default 2)\n"
            "  --threads N         threads for reading and counting (default: all cores)\n"
            "  -o, --output FILE   output path (default tokenizer.json); a name ending in .gguf\n"
            "                      writes GGUF tokenizer metadata instead\n"
            "  --progress          draw the progress bar even when stderr is not a terminal\n"
            "  -h, --help          this text\n"
            "\n"
            "example: yan tokenizer train --vocab-size 32000 --special '<|endoftext|>' -o tok.json corpus/*.txt\n",
            yan_pretokenizer_names());
}

typedef struct {
    int last;  /* last drawn permille, -1 = none */
} progress_bar;

static bool draw_progress(float fraction, void *ud) {
    progress_bar *b = ud;
    int pm = (int)(fraction * 1000.0f + 0.5f);
    if (pm < 0) pm = 0;
    if (pm > 1000) pm = 1000;
    if (pm == b->last) return true;
    b->last = pm;
    char bar[41];
    int fill = pm * 40 / 1000;
    for (int i = 0; i < 40; i++) bar[i] = i < fill ? '#' : ' ';
    bar[40] = 0;
    fprintf(stderr, "\r[%s] %5.1f%%", bar, pm / 10.0);
    fflush(stderr);
    return true;
}

int yan_cmd_tokenizer_train(int argc, char **argv) {
    yan_train_tokenizer_params p = yan_train_tokenizer_params_default();
    p.vocab_size = -1;
    const char *out = "tokenizer.json";
    bool force_progress = false;
    const char **files = calloc((size_t)argc + 1, sizeof *files);
    const char **special = calloc((size_t)argc + 1, sizeof *special);
    int n_files = 0, rc = 2;
    if (!files || !special) {
        fprintf(stderr, "yan tokenizer train: out of memory\n");
        goto done;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (cmd_is_help(a)) {
            usage(stdout);
            rc = 0;
            goto done;
        } else if (!strcmp(a, "--progress")) {
            force_progress = true;
        } else if (!strcmp(a, "--") ) {
            while (++i < argc) files[n_files++] = argv[i];
        } else if (a[0] == '-' && a[1] && !has_val &&
                   (!strcmp(a, "--vocab-size") || !strcmp(a, "--pre") || !strcmp(a, "--special") ||
                    !strcmp(a, "--min-frequency") || !strcmp(a, "--threads") || !strcmp(a, "-o") ||
                    !strcmp(a, "--output"))) {
            fprintf(stderr, "yan tokenizer train: %s needs a value\n", a);
            goto done;
        } else if (!strcmp(a, "--vocab-size")) {
            p.vocab_size = cmd_int(a, argv[++i]);
        } else if (!strcmp(a, "--pre")) {
            p.pre = argv[++i];
        } else if (!strcmp(a, "--special")) {
            special[p.n_special++] = argv[++i];
        } else if (!strcmp(a, "--min-frequency")) {
            p.min_frequency = cmd_int(a, argv[++i]);
        } else if (!strcmp(a, "--threads")) {
            p.n_threads = cmd_int(a, argv[++i]);
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            out = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "yan tokenizer train: unknown option '%s' (see --help)\n", a);
            goto done;
        } else {
            files[n_files++] = a;
        }
    }
    if (p.vocab_size < 0) {
        fprintf(stderr, "yan tokenizer train: --vocab-size N is required (see --help)\n");
        goto done;
    }
    if (n_files == 0) {
        fprintf(stderr, "yan tokenizer train: no input FILES (see --help)\n");
        goto done;
    }
    p.special = special;
    progress_bar bar = {-1};
    bool show = force_progress || isatty(2);
    if (show) {
        p.progress = draw_progress;
        p.progress_ud = &bar;
    }
    yan_train_tokenizer_stats st;
    p.stats = &st;
    yan_status s = yan_tokenizer_train(files, n_files, &p, out);
    if (show && bar.last >= 0) fputc('\n', stderr);
    if (s) {
        rc = cmd_fail("training failed", s);
        goto done;
    }
    printf("wrote %s: vocab %d (256 bytes + %d learned + %d special), %zu merges\n", out, (int)st.n_vocab,
           (int)st.n_learned, p.n_special, st.n_merges);
    if (st.n_vocab < p.vocab_size)
        printf("stopped early: no pair occurs %d times or more (--min-frequency)\n",
               p.min_frequency > 0 ? (int)p.min_frequency : 2);
    printf("corpus: %d file%s, %.2f MB, %llu pieces, %zu distinct\n", n_files, n_files == 1 ? "" : "s",
           (double)st.n_bytes / 1e6, (unsigned long long)st.n_pieces, st.n_words);
    if (st.n_skipped)
        printf("skipped %llu bytes in pieces longer than 64 KiB\n", (unsigned long long)st.n_skipped);
    if (st.n_tokens)
        printf("training text: %llu tokens, %.3f bytes/token\n", (unsigned long long)st.n_tokens,
               (double)(st.n_bytes - st.n_skipped) / (double)st.n_tokens);
    printf("time: %.2f s (read+count %.2f s, merges %.2f s, write %.2f s)\n", st.seconds_total,
           st.seconds_count, st.seconds_learn, st.seconds_total - st.seconds_count - st.seconds_learn);
    rc = 0;
done:
    free(files);
    free(special);
    return rc;
}
