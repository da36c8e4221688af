/* tokenize.c — the smallest use of the yan SDK: load a vocabulary, encode a
 * text, print the ids and pieces, decode it back.
 *   cc examples/tokenize.c $(pkg-config --cflags --libs yan) -o tokenize
 *   ./tokenize models/kjv-8k.tokenizer.json "In the beginning"            */
#include <yan.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s VOCAB TEXT\n", argv[0]);
        return 2;
    }
    yan_tokenizer *tok;
    if (yan_tokenizer_load(argv[1], NULL, &tok) != YAN_OK) {
        fprintf(stderr, "%s\n", yan_last_error());
        return 1;
    }
    const char *text = argv[2];
    /* ask for the size first, then encode into a buffer of that size */
    int64_t need = yan_tokenize(tok, text, strlen(text), NULL, 0, 0);
    size_t cap = need < 0 ? (size_t)-need : 1;
    yan_token *ids = malloc(cap * sizeof *ids);
    int64_t n = yan_tokenize(tok, text, strlen(text), ids, cap, 0);
    for (int64_t i = 0; i < n; i++) {
        char piece[256];
        int64_t k = yan_token_to_piece(tok, ids[i], piece, sizeof piece);
        printf("%d\t'%.*s'\n", ids[i], (int)(k > 0 ? k : 0), piece);
    }
    char back[4096];
    if (yan_detokenize(tok, ids, (size_t)n, back, sizeof back, false) >= 0) printf("decoded: %s\n", back);
    free(ids);
    yan_tokenizer_free(tok);
    return 0;
}
