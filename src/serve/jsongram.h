/* jsongram.h — a byte-level JSON grammar as a small pushdown state machine,
 * used to constrain sampling (response_format {"type":"json_object"}): every
 * token whose bytes would make the output invalid JSON is masked, and the
 * generation ends when the top-level object closes.
 *
 * The machine accepts exactly RFC 8259 JSON whose top-level value is an
 * object, with valid UTF-8 inside strings (and \u escapes that never leave a
 * lone UTF-16 surrogate), at most YAN_JG_MAX_DEPTH nested
 * containers and at most YAN_JG_MAX_WS consecutive whitespace bytes (so a
 * model cannot spend its budget on blanks). No leading whitespace.
 *
 * Budget: yan_jg_need() is the fewest bytes that complete the document from
 * the current state. A token is allowed only when, after it, the document
 * can still be completed with the tokens left (need <= tokens left, since a
 * single-byte token always exists for every closing byte), so a capped
 * generation still ends with a complete object.
 *
 * Pure functions over a value-type state; no allocation except the token
 * table (yan_jg_vocab). Thread-safe for distinct states. */
#ifndef YAN_SERVE_JSONGRAM_H
#define YAN_SERVE_JSONGRAM_H

#include "base/base.h"

#define YAN_JG_MAX_DEPTH 32
#define YAN_JG_MAX_WS 32

typedef struct {
    uint8_t st;                       /* state (jsongram.c) */
    uint8_t sub;                      /* digits left (\u), letters matched (literal), UTF-8 bytes left */
    uint8_t lit;                      /* which literal: 0 true, 1 false, 2 null */
    uint8_t lo, hi;                   /* allowed range of the next UTF-8 continuation byte */
    uint8_t ws;                       /* consecutive whitespace bytes */
    bool key;                         /* the string being read is an object key */
    bool low;                         /* the \u escape being read must be a low surrogate */
    uint16_t hexv;                    /* hex digits of the \u escape so far */
    uint8_t depth;                    /* open containers */
    char stack[YAN_JG_MAX_DEPTH];     /* '{' or '[' */
} yan_jg;

/* A fresh machine expecting a top-level object. */
void yan_jg_init(yan_jg *g);
/* Feed one byte; returns false (and leaves g unspecified) when the byte
 * cannot continue a valid document. */
bool yan_jg_byte(yan_jg *g, uint8_t c);
/* Feed n bytes; false when any is invalid (g is then unspecified). */
bool yan_jg_feed(yan_jg *g, const void *p, size_t n);
/* True when the top-level object has closed (nothing more is accepted). */
bool yan_jg_done(const yan_jg *g);
/* Fewest bytes that complete the document from here (0 when done). */
int yan_jg_need(const yan_jg *g);

/* Every token's bytes, laid out once per vocabulary for masking. */
typedef struct {
    int32_t n_vocab;
    uint32_t *off;     /* (V + 1) offsets into bytes */
    uint8_t *bytes;
    uint8_t *flags;    /* (V) bit 0: never allowed (empty piece or end-of-generation) */
} yan_jg_vocab;

/* Build the table from a tokenizer; eog[0..n_eog) are end-of-generation ids
 * (never allowed: the machine decides when the output ends). */
yan_status yan_jg_vocab_init(yan_jg_vocab *v, const yan_tokenizer *tok, const yan_token *eog, int n_eog);
void yan_jg_vocab_free(yan_jg_vocab *v);

/* Mask logits[0..V) in place: tokens that are invalid from g, or after which
 * the document needs more than tokens_left - 1 further bytes, get -inf.
 * Returns the number of tokens left allowed. */
int32_t yan_jg_mask(const yan_jg *g, const yan_jg_vocab *v, float *logits, int32_t tokens_left);

#endif /* YAN_SERVE_JSONGRAM_H */
