/* wordpiece.h — WordPiece (BERT) tokenization: the BERT normaliser and
 * pre-tokenizer (yan_wpm_words) and greedy longest-match-first WordPiece
 * over a vocabulary in llama.cpp's GGUF form (yan_wpm_encode).
 *
 * The GGUF form (tokenizer.ggml.model = "bert", llama.cpp's "WPM"): the
 * converter rewrites Hugging Face's vocab.txt so that a word-initial piece
 * "play" is stored as "▁play" (U+2581 in front) and a continuation piece
 * "##ing" as "ing"; CONTROL tokens ([CLS], [SEP], ...) keep their text. A
 * word is then matched as "▁" + word, position by position, longest token
 * first — the same pieces Hugging Face's WordPiece picks with its "##"
 * prefix. tok.h's yan_tokenizer holds such a vocabulary with kind
 * YAN_TOK_WPM; tokenizer.c calls yan_wpm_encode for each stretch of text
 * between special tokens and adds [CLS] ... [SEP] (add_bos / add_sep).
 *
 * The character tables (punctuation, nonspacing marks, control/unassigned,
 * lowercase) are generated into wordpiece_data.c by
 * tools/gen_wordpiece_data.py. Everything here is thread-safe. */
#ifndef YAN_TOKENIZER_WORDPIECE_H
#define YAN_TOKENIZER_WORDPIECE_H

#include "tokenizer/tok.h"

#define YAN_WPM_SHIFT 7            /* stage-1 block size of the class table */
#define YAN_WPM_MAX_WORD_CHARS 100 /* longer words become [UNK] (Hugging Face's max_input_chars_per_word) */

/* Character classes of the generated table. */
enum { YAN_WPM_C_OTHER = 0, YAN_WPM_C_PUNCT = 1, YAN_WPM_C_MN = 2, YAN_WPM_C_CONTROL = 3 };

extern const char yan_wpm_unicode_version[];
extern const uint8_t yan_wpm_stage1[];
extern const uint8_t yan_wpm_stage2[];
extern const uint32_t yan_wpm_lower[][2];
extern const size_t yan_wpm_n_lower;

/* Class of a code point (YAN_WPM_C_*); outside U+0000..U+10FFFF: CONTROL. */
static inline unsigned yan_wpm_class(int32_t cp) {
    if ((uint32_t)cp >= 0x110000) return YAN_WPM_C_CONTROL;
    return yan_wpm_stage2[((unsigned)yan_wpm_stage1[cp >> YAN_WPM_SHIFT] << YAN_WPM_SHIFT) |
                          ((unsigned)cp & ((1u << YAN_WPM_SHIFT) - 1))];
}

/* Simple lowercase mapping (UnicodeData.txt); cp itself when it has none. */
int32_t yan_wpm_tolower(int32_t cp);

/* One word of normalised text: n bytes (valid UTF-8) of n_chars code points.
 * Return false to stop (yan_wpm_words then returns false too). */
typedef bool (*yan_wpm_word_fn)(const uint8_t *w, size_t n, size_t n_chars, void *ud);

/* BERT normalisation and pre-tokenization of s[0..n), calling fn for every
 * word in order:
 *  - U+0000, U+FFFD, invalid UTF-8 bytes and control/format/private-use/
 *    unassigned characters (general category C*) are dropped, except
 *    White_Space characters, which separate words;
 *  - strip_accents: each character is replaced by its full canonical
 *    decomposition and nonspacing marks (Mn) are dropped;
 *  - lowercase: simple lowercase mapping;
 *  - punctuation (P*, and ASCII symbols such as $ + < = > ^ ` | ~) and CJK
 *    ideographs become words of their own.
 * scratch holds the current word (reused; the caller frees it). Returns
 * false on allocation failure (scratch->oom) or when fn returns false. */
bool yan_wpm_words(const uint8_t *s, size_t n, bool lowercase, bool strip_accents, yan_buf *scratch,
                   yan_wpm_word_fn fn, void *ud);

typedef bool (*yan_wpm_push_fn)(void *ud, yan_token id);

/* Append to push the WordPiece ids of s[0..n) (ordinary text: no special
 * tokens are looked for) with t's normaliser flags. A word of more than
 * YAN_WPM_MAX_WORD_CHARS characters, or one that some position of cannot be
 * matched, becomes the one token t->special[YAN_SPECIAL_UNK]. t must be a
 * finalized YAN_TOK_WPM tokenizer. Returns false when push fails or on
 * allocation failure. */
bool yan_wpm_encode(const yan_tokenizer *t, const uint8_t *s, size_t n, yan_wpm_push_fn push, void *ud);

#endif /* YAN_TOKENIZER_WORDPIECE_H */
