/* pretok.h — regex-free pre-tokenizers: split text into the pieces that the
 * reference regexes of GPT-2, cl100k_base (also Llama 3), o200k_base and
 * Qwen2 produce (leftmost-first alternation, greedy quantifiers, the
 * \s+(?!\S) lookahead), each as a hand-written scanner over the Unicode
 * category tables of unicode.h.
 *
 * Input is any bytes: each invalid UTF-8 byte counts as one character that
 * is no letter, number, mark or space (a symbol, like U+FFFD). All functions
 * are pure, thread-safe and allocation-free. */
#ifndef YAN_TOKENIZER_PRETOK_H
#define YAN_TOKENIZER_PRETOK_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    YAN_PRE_GPT2 = 0,   /* r50k / p50k / gpt2 */
    YAN_PRE_CL100K = 1, /* cl100k_base, Llama 3 "llama-bpe" */
    YAN_PRE_O200K = 2,  /* o200k_base */
    YAN_PRE_QWEN2 = 3,  /* cl100k with single digits */
    YAN_PRE_COUNT
} yan_pre_id;

/* Id for a name or alias (case-sensitive), or -1 if unknown. */
int yan_pre_from_name(const char *name);
/* Canonical name of an id ("gpt2", "cl100k", "o200k", "qwen2"), or NULL. */
const char *yan_pre_name(int id);
/* "gpt2, cl100k, o200k, qwen2" — for error messages. */
const char *yan_pre_names(void);

/* Id whose reference regex the pattern pattern[0..len) is (the exact strings
 * of tiktoken, Hugging Face tokenizer.json and llama.cpp), or -1. */
int yan_pre_from_regex(const char *pattern, size_t len);

/* End (> pos) of the piece of s[0..n) that starts at pos (pos < n). The
 * pieces of a text are pos = 0, then repeatedly pos = yan_pretok_next(...).
 * id must be a valid yan_pre_id. This is the tokenizer's hot path. */
size_t yan_pretok_next(int id, const uint8_t *s, size_t n, size_t pos);

/* A position p in (pos, n] such that pre-tokenizing s[pos..p) and s[p..n)
 * separately yields exactly the pieces of s[pos..n); searches at most 64 KiB
 * past pos and returns n when it finds none (or when pos >= n). For any
 * valid id. The cut is before a space that follows a non-space, or before any
 * White_Space character that follows a letter or number. */
size_t yan_pretok_safe_split(int id, const uint8_t *s, size_t n, size_t pos);

#endif /* YAN_TOKENIZER_PRETOK_H */
