/* wordpiece.c — the BERT normaliser / pre-tokenizer and WordPiece matching
 * (contract in wordpiece.h).
 *
 * Reference behaviour: Hugging Face's BertNormalizer + BertPreTokenizer +
 * WordPiece (the tokenizer BERT-family embedding models are trained with),
 * on llama.cpp's GGUF vocabulary form. llama.cpp's own WPM tokenizer
 * (llama-vocab.cpp) gives the same ids on ordinary text; where it
 * simplifies, yan follows Hugging Face:
 *  - llama.cpp keeps only the FIRST code point of a character's canonical
 *    decomposition when stripping accents (a Hangul syllable loses its
 *    vowel and final consonant); yan uses the full decomposition;
 *  - llama.cpp drops every mark (M*) when stripping accents; yan drops only
 *    nonspacing marks (Mn), so spacing vowel signs (Mc) stay;
 *  - llama.cpp keeps unassigned code points (Cn); yan drops them with the
 *    other C* characters;
 *  - llama.cpp has no word-length limit; yan turns a word of more than 100
 *    characters into [UNK] (max_input_chars_per_word).
 * Lowercasing uses the simple (one code point) mapping, as llama.cpp does.
 *
 * Matching: "▁" + word, greedy: at each position the longest vocabulary
 * token that matches (lengths tried from t->max_tok_len bytes down, at
 * character boundaries); no match at some position turns the whole word
 * into [UNK]. */
#include "tokenizer/wordpiece.h"
#include "tokenizer/unicode.h"

/* ------------------------------------------------------------ characters */

int32_t yan_wpm_tolower(int32_t cp) {
    if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
    size_t lo = 0, hi = yan_wpm_n_lower;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (yan_wpm_lower[mid][0] < (uint32_t)cp) lo = mid + 1;
        else hi = mid;
    }
    return lo < yan_wpm_n_lower && yan_wpm_lower[lo][0] == (uint32_t)cp ? (int32_t)yan_wpm_lower[lo][1] : cp;
}

/* CJK ideographs that BERT splits one by one (the ranges of Hugging Face's
 * tokenizers, which llama.cpp copies, including 0x2B920 where the Unicode
 * block starts at 0x2B820). */
static bool is_cjk(int32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
           (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

/* ASCII punctuation and symbols: !"#$%&'()*+,-./ :;<=>?@ [\]^_` {|}~ */
static bool is_ascii_punct(int32_t cp) {
    return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126);
}

/* ------------------------------------------------------------------ words */

typedef struct {
    yan_buf *w;
    size_t n_chars;
    yan_wpm_word_fn fn;
    void *ud;
} words_state;

static bool flush_word(words_state *ws) {
    if (ws->w->len == 0) return true;
    bool ok = ws->fn((const uint8_t *)ws->w->data, ws->w->len, ws->n_chars, ws->ud);
    ws->w->len = 0;
    ws->n_chars = 0;
    return ok;
}

/* One normalised character: a word of its own, or part of the current one. */
static bool put_char(words_state *ws, int32_t cp) {
    uint8_t u[4];
    int k = yan_utf8_encode((uint32_t)cp, u);
    if (is_ascii_punct(cp) || (cp >= 0x80 && yan_wpm_class(cp) == YAN_WPM_C_PUNCT) || is_cjk(cp)) {
        if (!flush_word(ws)) return false;
        if (!yan_buf_append(ws->w, u, (size_t)k)) return false;
        ws->n_chars = 1;
        return flush_word(ws);
    }
    ws->n_chars++;
    return yan_buf_append(ws->w, u, (size_t)k);
}

bool yan_wpm_words(const uint8_t *s, size_t n, bool lowercase, bool strip_accents, yan_buf *scratch,
                   yan_wpm_word_fn fn, void *ud) {
    words_state ws = {scratch, 0, fn, ud};
    scratch->len = 0;
    for (size_t i = 0; i < n;) {
        int32_t cp;
        i += (size_t)yan_uc_decode(s + i, n - i, &cp);
        if (cp <= 0 || cp == 0xFFFD) continue; /* invalid byte, NUL, replacement character */
        if (yan_uc_flags(cp) & YAN_UC_WS) {
            if (!flush_word(&ws)) return false;
            continue;
        }
        if (cp >= 0x80 || cp < 0x20 || cp == 0x7F) {
            if (yan_wpm_class(cp) == YAN_WPM_C_CONTROL) continue;
        }
        uint32_t d[4];
        size_t nd = 1;
        d[0] = (uint32_t)cp;
        if (strip_accents && cp >= 0x80) nd = yan_uc_decompose(cp, d);
        for (size_t k = 0; k < nd; k++) {
            int32_t c = (int32_t)d[k];
            if (strip_accents && c >= 0x80 && yan_wpm_class(c) == YAN_WPM_C_MN) continue;
            if (lowercase) c = yan_wpm_tolower(c);
            if (!put_char(&ws, c)) return false;
        }
    }
    return flush_word(&ws) && !scratch->oom;
}

/* --------------------------------------------------------------- matching */

static const uint8_t PHANTOM[3] = {0xE2, 0x96, 0x81}; /* U+2581 "▁" */

typedef struct {
    const yan_tokenizer *t;
    yan_buf word;          /* "▁" + the word being matched */
    yan_token *ids;        /* the word's pieces until it is known to match */
    size_t n_ids, cap_ids;
    yan_wpm_push_fn push;
    void *ud;
    bool oom;
} enc_state;

static bool push_id(enc_state *e, yan_token id) {
    if (e->n_ids == e->cap_ids) {
        size_t cap = e->cap_ids ? 2 * e->cap_ids : 32;
        yan_token *v = yan_realloc(e->ids, cap * sizeof *v);
        if (!v) {
            e->oom = true;
            return false;
        }
        e->ids = v;
        e->cap_ids = cap;
    }
    e->ids[e->n_ids++] = id;
    return true;
}

static bool encode_word(const uint8_t *w, size_t n, size_t n_chars, void *ud) {
    enc_state *e = ud;
    const yan_tokenizer *t = e->t;
    const yan_token unk = t->special[YAN_SPECIAL_UNK];
    if (n_chars > YAN_WPM_MAX_WORD_CHARS) return e->push(e->ud, unk);
    e->word.len = 0;
    if (!yan_buf_append(&e->word, PHANTOM, 3) || !yan_buf_append(&e->word, w, n)) {
        e->oom = true;
        return false;
    }
    const uint8_t *s = (const uint8_t *)e->word.data;
    const size_t len = e->word.len, maxl = t->max_tok_len;
    e->n_ids = 0;
    for (size_t i = 0; i < len;) {
        size_t j = len - i > maxl ? i + maxl : len;
        int32_t id = -1;
        for (; j > i; j--) {
            if (j < len && (s[j] & 0xC0) == 0x80) continue; /* not a character boundary */
            if ((id = yan_tok_lookup(t, s + i, j - i)) >= 0) break;
        }
        if (id < 0) return e->push(e->ud, unk); /* one position matches nothing: the word is unknown */
        if (!push_id(e, id)) return false;
        i = j;
    }
    for (size_t k = 0; k < e->n_ids; k++)
        if (!e->push(e->ud, e->ids[k])) return false;
    return true;
}

bool yan_wpm_encode(const yan_tokenizer *t, const uint8_t *s, size_t n, yan_wpm_push_fn push, void *ud) {
    enc_state e = {.t = t, .push = push, .ud = ud};
    yan_buf scratch = {0};
    bool ok = yan_wpm_words(s, n, t->wpm_lowercase, t->wpm_strip_accents, &scratch, encode_word, &e);
    yan_buf_free(&scratch);
    yan_buf_free(&e.word);
    yan_free(e.ids);
    return ok && !e.oom;
}
