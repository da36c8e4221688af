/* tok.h — the tokenizer's internal representation, shared by the core
 * (tokenizer.c: BPE encode/decode) and the vocabulary loaders
 * (load_tiktoken.c, load_gpt2.c, load_hf.c, load_gguf.c).
 *
 * A loader fills a yan_tokenizer through yan_tok_set / yan_tok_add_merge and
 * the plain fields, then calls yan_tok_finalize, which validates it and builds
 * the lookup tables. Token text is stored as RAW BYTES: loaders undo GPT-2's
 * byte-to-unicode alphabet, base64, and for spm map "▁" stays as is (the spm
 * encoder works in that alphabet). */
#ifndef YAN_TOK_H
#define YAN_TOK_H

#include "base/base.h"

/* Token types, numbered as GGUF's tokenizer.ggml.token_type. */
enum {
    YAN_TT_UNDEFINED = 0,
    YAN_TT_NORMAL = 1,
    YAN_TT_UNKNOWN = 2,
    YAN_TT_CONTROL = 3,      /* special token: <|endoftext|>, <s>, ... */
    YAN_TT_USER_DEFINED = 4, /* added token matched in text as a whole */
    YAN_TT_UNUSED = 5,       /* holes in the id space */
    YAN_TT_BYTE = 6,         /* spm byte-fallback token <0xAB> */
};

enum { YAN_TOK_BPE = 0, YAN_TOK_SPM = 1, YAN_TOK_WPM = 2 /* WordPiece (wordpiece.h) */ };

/* How BPE picks the next merge among adjacent parts:
 *  RANK:  the pair whose concatenated bytes is the token of lowest id (tiktoken);
 *  PAIRS: the pair with the lowest index in the merges list (GPT-2, HF, GGUF gpt2);
 *  SCORE: the pair whose concatenation is the token of highest score (spm). */
enum { YAN_MERGE_RANK = 0, YAN_MERGE_PAIRS = 1, YAN_MERGE_SCORE = 2 };

typedef struct yan_tok_tables yan_tok_tables; /* built by yan_tok_finalize */

struct yan_tokenizer {
    int kind;          /* YAN_TOK_* */
    int pre;           /* yan_pre_id; -1 for spm */
    int merge_mode;    /* YAN_MERGE_* */
    char *path;        /* file it came from (for messages) */
    char *name;        /* encoding name if known ("cl100k_base", ...), else NULL */

    /* vocabulary: token id -> bytes */
    int32_t n_vocab;
    int32_t cap_vocab;
    uint32_t *tok_off;  /* (n_vocab) offset into blob */
    uint32_t *tok_len;  /* (n_vocab) byte length */
    uint8_t *tok_type;  /* (n_vocab) YAN_TT_* */
    float *tok_score;   /* (n_vocab) spm scores; NULL when unused */
    yan_buf blob;       /* all token bytes */

    /* merges (PAIRS mode): merges[2*r], merges[2*r+1] = left, right ids of rank r */
    int32_t *merges;
    size_t n_merges, cap_merges;

    int32_t special[YAN_SPECIAL_COUNT]; /* -1 = none */
    bool add_bos, add_eos;
    bool add_space_prefix;  /* spm: prepend "▁" */
    bool byte_fallback;     /* spm: unknown bytes -> <0xAB> tokens */
    bool nfc;               /* normalise input to NFC first (Qwen) */
    bool ignore_merges;     /* a piece that is itself a token encodes to it directly */
    bool add_sep;           /* wpm: append SEP after the text (with YAN_TOKENIZE_ADD_BOS) */
    bool wpm_lowercase;     /* wpm: lowercase the text (tokenizer.ggml.normalizer.lowercase) */
    bool wpm_strip_accents; /* wpm: decompose and drop nonspacing marks */
    uint32_t max_tok_len;   /* bytes of the longest token (set by yan_tok_finalize) */

    int n_threads;
    size_t heap_from;       /* pieces of at least this many parts use the heap merge; 0 = default (tests) */
    yan_tok_tables *tables;
};

/* Initialise an empty tokenizer (all ids -1, kind BPE, mode PAIRS). */
void yan_tok_init(yan_tokenizer *t);
/* Free everything the tokenizer owns (not t itself). */
void yan_tok_release(yan_tokenizer *t);

/* Define token id with the given bytes, type and score. Ids may come in any
 * order; holes left at finalize become YAN_TT_UNUSED. Setting an id twice is a
 * YAN_ERR_FORMAT error ("duplicate id N"). */
yan_status yan_tok_set(yan_tokenizer *t, int32_t id, const void *bytes, size_t len,
                       int type, float score);
/* Append the next merge (rank = current count). */
yan_status yan_tok_add_merge(yan_tokenizer *t, int32_t left, int32_t right);
/* Bytes of token id (no bounds check). */
static inline const uint8_t *yan_tok_bytes(const yan_tokenizer *t, int32_t id, size_t *len) {
    *len = t->tok_len[id];
    return (const uint8_t *)t->blob.data + t->tok_off[id];
}
/* Look up the id of a token by its bytes among ids already set (works before
 * finalize too, through a temporary index); -1 if absent. */
int32_t yan_tok_lookup(const yan_tokenizer *t, const void *bytes, size_t len);
/* Build that temporary index now, so that a later -1 from yan_tok_lookup
 * means "absent" and not "out of memory". Loaders call it before resolving
 * merges. */
yan_status yan_tok_index(yan_tokenizer *t);

/* Validate and build lookup tables. Errors name t->path. */
yan_status yan_tok_finalize(yan_tokenizer *t);

/* GPT-2 byte<->unicode alphabet: decode a token string written in that
 * alphabet into raw bytes (out must hold len bytes); returns the byte count or
 * -1 if a character is outside the alphabet. */
long yan_gpt2_unbyte(const char *s, size_t len, uint8_t *out);
/* Encode raw bytes into the alphabet (out must hold 2*len bytes); returns length. */
size_t yan_gpt2_byte(const uint8_t *s, size_t len, char *out);

/* Loaders: fill t (already yan_tok_init'ed) from the file's bytes. path is for
 * messages and for finding sibling files. They do not call finalize. */
yan_status yan_load_tiktoken(yan_tokenizer *t, const uint8_t *buf, size_t len, const char *path);
yan_status yan_load_gpt2(yan_tokenizer *t, const uint8_t *buf, size_t len, const char *path);
/* The same from both files' bytes (encoder.json, vocab.bpe). */
yan_status yan_load_gpt2_parts(yan_tokenizer *t, const uint8_t *enc, size_t enc_len, const uint8_t *merges,
                              size_t merges_len, const char *path, const char *merges_path);
yan_status yan_load_hf(yan_tokenizer *t, const uint8_t *buf, size_t len, const char *path);
yan_status yan_load_gguf_vocab(yan_tokenizer *t, const char *path);

#endif
