/* norm.h — the safety module's text normaliser (norm.c): folding of code
 * points to their matching form and the online unitizer that turns bytes
 * into units separated by classified gaps. See safety.h for the model. */
#ifndef YAN_SAFETY_NORM_H
#define YAN_SAFETY_NORM_H

#include "base/base.h"

/* Fold one code point into at most 3 code points of its matching form;
 * returns how many (0 = ignore the character entirely). Lowercase; full-width
 * ASCII to ASCII; accents and other combining marks dropped; ligatures, sharp
 * s, small capitals, circled/parenthesized/squared/mathematical letters and
 * digits, super/subscript digits to plain letters and digits; invisible
 * characters (zero-width, bidi controls, soft hyphen, variation selectors,
 * tags) ignored; U+3000 to a space. */
int sf_fold(int32_t cp, int32_t out[3]);

typedef enum { SF_SEP = 0, SF_LATIN = 1, SF_CJK = 2, SF_SYM = 3 } sf_class;
/* Class of a folded code point: letters and digits of space-separated
 * scripts are LATIN; Han, kana, Hangul, Thai, Lao, Myanmar and Khmer are CJK
 * (matched as substrings); '@' and '$' are SYM (units with an alternative
 * reading that never glue the words around them together); the rest SEP. */
sf_class sf_classify(int32_t cp);
/* Alternative reading of a folded LATIN/SYM unit, 0 when none: the
 * leetspeak 0->o 1->i 3->e 4->a 5->s 7->t @->a $->s, and Cyrillic and Greek
 * letters that look like Latin ones (а->a, о->o, і->i, ρ->p, ...). */
int32_t sf_alt(int32_t cp);
/* Separators that count as an in-word joiner: . - _ * ' ` ~ + | / \ and
 * their typographic forms (·, hyphens and dashes, curly apostrophes, •). */
bool sf_is_joiner(int32_t cp);
bool sf_is_newline(int32_t cp);

typedef enum { SF_GAP_NONE = 0, SF_GAP_SOFT = 1, SF_GAP_HARD = 2 } sf_gap;

typedef struct {
    int32_t cp;         /* folded code point */
    int32_t alt;        /* alternative reading, 0 = none */
    uint64_t start;     /* byte span in the stream */
    uint64_t end;
    uint8_t cls;        /* SF_LATIN, SF_CJK or SF_SYM */
    uint8_t gap;        /* sf_gap of the separators before this unit */
} sf_unit;

typedef void (*sf_unit_fn)(void *ud, const sf_unit *u);

/* Unitizer state. A unit is handed on once the gap before it is classified,
 * which takes at most the next code point (whether a separator follows). */
typedef struct {
    sf_unit_fn fn;
    void *ud;
    uint8_t carry[4];   /* bytes of a character split across feeds */
    uint8_t n_carry;
    uint64_t off;       /* stream offset of carry[0] */
    uint64_t n_units;
    /* separators since the last unit */
    uint32_t gap_len;
    bool gap_nl, gap_joiner, gap_cjkj;
    /* the held unit and the gap before it */
    bool have_cur;
    sf_unit cur;
    uint32_t cur_gap_len;
    bool cur_gap_nl, cur_gap_joiner, cur_gap_cjkj;
    /* the unit handed on last */
    bool have_pred, pred_single;
    uint8_t pred_cls;
} sf_norm;

void sf_norm_init(sf_norm *n, sf_unit_fn fn, void *ud);
void sf_norm_feed(sf_norm *n, const uint8_t *p, size_t len);
/* End of text: a trailing partial character becomes separators, the held
 * unit is handed on. */
void sf_norm_finish(sf_norm *n);
/* All units are handed on and separators follow the last one. */
static inline bool sf_norm_trailing_gap(const sf_norm *n) { return !n->have_cur && n->gap_len > 0; }

#endif /* YAN_SAFETY_NORM_H */
