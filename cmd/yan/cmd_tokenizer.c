/* cmd_tokenizer.c — `yan tokenizer info|train`: inspect and build vocabularies. */
#include "cmd.h"

static void usage(FILE *f) {
    fprintf(f, "usage: yan tokenizer <info|train> ...\n\n"
               "  info FILE [--pre NAME]   kind, pre-tokenizer, size and special tokens of a vocabulary\n"
               "  train ...                learn a byte-level BPE vocabulary ('yan tokenizer train --help')\n");
}

static int info(int argc, char **argv) {
    yan_tokenizer_params tp = yan_tokenizer_params_default();
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (cmd_is_help(argv[i])) {
            printf("usage: yan tokenizer info FILE [--pre NAME]\n\nexample: yan tokenizer info tokenizer.json\n");
            return 0;
        } else if (!strcmp(argv[i], "--pre") && i + 1 < argc) tp.pre = argv[++i];
        else path = argv[i];
    }
    if (!path) {
        fprintf(stderr, "yan tokenizer info: FILE is required\n");
        return 2;
    }
    yan_tokenizer *tok;
    yan_status s = yan_tokenizer_load(path, &tp, &tok);
    if (s) return cmd_fail("cannot load vocabulary", s);
    printf("file:          %s\nkind:          %s\npre-tokenizer: %s\nvocab size:    %d\n", path,
           yan_tokenizer_kind(tok), yan_tokenizer_pre(tok), yan_tokenizer_n_vocab(tok));
    static const char *names[YAN_SPECIAL_COUNT] = {"bos", "eos", "eot", "unk", "pad", "sep", "cls", "mask"};
    for (int k = 0; k < YAN_SPECIAL_COUNT; k++) {
        yan_token id = yan_tokenizer_special(tok, (yan_special)k);
        if (id < 0) continue;
        char piece[256];
        int64_t n = yan_token_to_piece(tok, id, piece, sizeof piece - 1);
        piece[n > 0 ? n : 0] = 0;
        printf("%-14s %d %s\n", names[k], id, piece);
    }
    yan_tokenizer_free(tok);
    return 0;
}

int yan_cmd_tokenizer(int argc, char **argv) {
    if (argc < 2 || cmd_is_help(argv[1])) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "info")) return info(argc - 1, argv + 1);
    if (!strcmp(argv[1], "train")) return yan_cmd_tokenizer_train(argc - 1, argv + 1);
    fprintf(stderr, "yan tokenizer: unknown subcommand '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
