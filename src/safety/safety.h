/* safety.h — internals of the content-safety module (src/safety/): the text
 * normaliser, the rule language and its matcher, and the JSON writer the
 * server uses for /v1/moderations.
 *
 * Pipeline (one pass, online, bounded memory):
 *   bytes --utf8--> code points --fold--> units + gaps --Pike VM--> rule hits
 *  - fold (norm.c): drops invisible characters and combining marks, maps
 *    full-width ASCII, styled letters (circled, mathematical, squared),
 *    ligatures, accents and case to plain lowercase; see sf_fold.
 *  - units: every letter or digit is a "Latin" unit (any alphabetic script
 *    that separates words with spaces), every Han/kana/Hangul/Thai character a
 *    "CJK" unit; everything else (spaces, punctuation, symbols, emoji, invalid
 *    bytes) is a separator. Each unit records the gap of separators before it:
 *    NONE (adjacent), SOFT (a gap an evader inserts inside a word: one joiner
 *    character such as '.', '-', '_', '*' between letters; short gaps between
 *    single letters as in "k i l l"; short whitespace between CJK characters)
 *    or HARD. A Latin unit also carries an alternative reading (leetspeak
 *    digits, '@', '$', Cyrillic/Greek look-alikes), used only by matches that
 *    also contain a real Latin letter.
 *  - rules (rules.c) compile to a small program per rule; all rules run at
 *    once in a Pike VM over the unit stream (no backtracking: time is linear
 *    in the text times the number of live threads, memory is fixed by the
 *    program size). The stream keeps no text: partial matches live in the
 *    threads, so a match spanning feed boundaries is found without a window.
 *
 * Thread-safety: an sf_rules is immutable once sf_rules_finish has run and may
 * be shared; an sf_scan belongs to one thread at a time. */
#ifndef YAN_SAFETY_H
#define YAN_SAFETY_H

#include "base/base.h"
#include "safety/norm.h"

/* ------------------------------------------------------------ rule engine */

#define SF_MAX_CATS 32
#define SF_MAX_GAP 20        /* most words a "*N" gap may skip */
#define SF_MAX_LINE 4096     /* bytes per rules-file line */
#define SF_MAX_RULE_INSTS 8192

typedef struct {
    int32_t cat;        /* section index */
    float weight;       /* (0, 1] */
    int32_t line;       /* 1-based line in its source */
    uint32_t entry;     /* first instruction */
    uint32_t text;      /* offset of the pattern as written in the string pool */
    uint32_t src;       /* offset of the source name in the string pool */
} sf_rule;

typedef struct sf_inst sf_inst;
typedef struct sf_rules sf_rules;

/* A rule set whose sections are the names in cats (borrowed; must outlive the
 * rule set). Parse one or more texts into it, then finish it. */
yan_status sf_rules_new(const char *const *cats, int n_cats, sf_rules **out);
void sf_rules_free(sf_rules *rs);
/* Parse a rules text (format: data/safety/README.md). name labels
 * errors ("name:line: problem"). include_text, when non-NULL, is what an
 * "@include default" line pulls in (once). */
yan_status sf_rules_parse(sf_rules *rs, const char *text, size_t len, const char *name, const char *include_text);
/* Build the first-character index. No parse afterwards. */
yan_status sf_rules_finish(sf_rules *rs);

size_t sf_rules_count(const sf_rules *rs);
const sf_rule *sf_rules_get(const sf_rules *rs, size_t i);
const char *sf_rules_str(const sf_rules *rs, uint32_t off);
/* Threshold of a section (default 0.5 unless the file says otherwise). */
float sf_rules_threshold(const sf_rules *rs, int cat);
size_t sf_rules_prog_size(const sf_rules *rs);

/* Scan state: a stream of text bytes matched against a rule set. Each rule is
 * reported once, at its first match (start/end are absolute byte offsets from
 * the start of the stream, end exclusive). */
typedef void (*sf_hit_fn)(void *ud, uint32_t rule, uint64_t start, uint64_t end);
typedef struct sf_scan sf_scan;

yan_status sf_scan_new(const sf_rules *rs, sf_hit_fn fn, void *ud, sf_scan **out);
void sf_scan_free(sf_scan *s);
/* Forget the text and the hits; keep the memory. */
void sf_scan_reset(sf_scan *s);
/* Feed the next bytes. Matches whose end is decided (followed by a separator
 * or by a unit) are reported now; one that ends exactly at the last byte fed,
 * inside what may still be a word, waits for the next feed or finish. */
yan_status sf_scan_feed(sf_scan *s, const char *text, size_t len);
/* End of text: decide the pending matches. The scan then takes no more text
 * until reset. */
yan_status sf_scan_finish(sf_scan *s);
/* Bytes fed so far. */
uint64_t sf_scan_offset(const sf_scan *s);
/* Whether the rule has matched (and where) in this scan. */
bool sf_scan_hit(const sf_scan *s, uint32_t rule, uint64_t *start, uint64_t *end);

/* ------------------------------------------------------------- moderation */

/* Append the /v1/moderations response body for n results (injection results
 * may be NULL): {"id", "model", "results": [{"flagged", "categories",
 * "category_scores", "category_applied_input_types", "injection", "matches"}]}.
 * Returns false on allocation failure (b->oom set). */
bool yan_moderation_json(yan_buf *b, const char *id, const yan_moderation *res, const yan_injection_result *inj,
                         size_t n);

/* The built-in rule texts (default_rules.c, generated from data/safety/). */
extern const char yan_safety_default_rules[];
extern const size_t yan_safety_default_rules_len;
extern const char yan_safety_injection_rules[];
extern const size_t yan_safety_injection_rules_len;

/* The moderator's compiled injection rules (moderate.c), for injection.c. */
const sf_rules *yan_moderator_injection_rules(const yan_moderator *m);
/* Section names of the injection rules, in yan_injection_signal order. */
extern const char *const yan_injection_sections[];
extern const int yan_injection_n_sections;

#endif /* YAN_SAFETY_H */
