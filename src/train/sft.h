/* sft.h — supervised fine-tuning data: chat conversations in OpenAI's
 * `messages` JSONL format rendered with a chat template, tokenized, and
 * marked so that only the assistant's tokens are trained.
 *
 * Input: one JSON object per line, {"messages": [{"role": "system"|"user"|
 * "assistant", "content": "..."}, ...]}; blank lines are skipped. Every
 * conversation needs at least one assistant turn.
 *
 * Masking: for each assistant turn i the template is rendered twice — the
 * conversation before it with the assistant opening (P_i) and the
 * conversation up to and including it (Q_i). P_i must be a prefix of Q_i;
 * the bytes Q_i \ P_i (the reply and the template's end-of-turn marker) are
 * the trained span. The conversation is tokenized piece by piece (untrained
 * text, trained span, untrained text, ...), with BOS first when the
 * vocabulary asks for it and special tokens recognised, so that the mask
 * falls on token boundaries. A target is trained when the token it predicts
 * belongs to a trained span. */
#ifndef YAN_SFT_H
#define YAN_SFT_H

#include "yan.h"
#include "base/base.h"

typedef struct {
    int32_t *tokens;      /* every example's tokens, one after another */
    uint8_t *trained;     /* per token: 1 when it is predicted in training */
    int64_t *start;       /* example i is tokens[start[i] .. start[i + 1]) */
    int64_t n_examples;
    int64_t n_tokens;
    int64_t n_trained;    /* tokens with trained = 1 */
    int64_t n_truncated;  /* examples cut to max_len tokens */
} yan_sft_data;

/* Read path, render with the chat template family ("chatml", "llama3", ...;
 * see yan_chat_format), tokenize with tok, cut every example to at most
 * max_len tokens (0 = no limit). Errors: IO, FORMAT naming the file and line
 * (invalid JSON, no messages array, a role or content that is not a string,
 * no assistant turn, nothing trained left after the cut, a template whose
 * renders are not prefixes of one another), UNSUPPORTED (unknown family),
 * NOMEM. On error *out is left empty. */
yan_status yan_sft_load(const char *path, const yan_tokenizer *tok, const char *family, int max_len,
                        yan_sft_data *out);
void yan_sft_free(yan_sft_data *d);

/* A batch of B rows: row b holds example (pos + b) mod n_examples in the
 * order perm (NULL = file order), its first T tokens as inputs (padded with
 * pad) and, as targets, the next token where it is trained, else -1. *pos
 * advances by B (mod n_examples). */
void yan_sft_batch(const yan_sft_data *d, const int64_t *perm, uint64_t *pos, int B, int T, int32_t pad,
                   int32_t *inputs, int32_t *targets);

/* The examples i of d with keep[i] set, in order, into *out (a new set;
 * free it with yan_sft_free). Errors: NOMEM (*out left empty). */
yan_status yan_sft_select(const yan_sft_data *d, const uint8_t *keep, yan_sft_data *out);

/* A seeded permutation of 0..n-1 (Fisher-Yates over splitmix64); the caller
 * frees it with yan_free. NULL on NOMEM. */
int64_t *yan_sft_shuffle(int64_t n, uint64_t seed);

#endif /* YAN_SFT_H */
