/* chunk.c — chunking by tokens at paragraph and sentence boundaries
 * (Chinese-aware), and the CJK segmentation for FTS5 (see chunk.h for the
 * rules). Dependencies: base (buffers, UTF-8), the Unicode tables of the
 * tokenizer (letters, marks, numbers). */
#include "rag/chunk.h"
#include "tokenizer/unicode.h"

#include <ctype.h>

/* ------------------------------------------------------------ characters */

bool yan_is_cjk(int32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) ||   /* CJK Unified Ideographs */
           (cp >= 0x3400 && cp <= 0x4DBF) ||   /* Extension A */
           (cp >= 0x20000 && cp <= 0x3134F) || /* Extensions B..G */
           (cp >= 0xF900 && cp <= 0xFAFF) ||   /* Compatibility Ideographs */
           cp == 0x3005 || cp == 0x3007 ||     /* 々 〇 */
           (cp >= 0x3040 && cp <= 0x30FF) ||   /* Hiragana, Katakana */
           (cp >= 0x31F0 && cp <= 0x31FF) || (cp >= 0xFF66 && cp <= 0xFF9F);
}

static inline int dec(const char *s, size_t n, int32_t *cp) {
    return yan_uc_decode((const uint8_t *)s, n, cp);
}

static bool is_space(int32_t cp) { return cp >= 0 && (yan_uc_flags(cp) & YAN_UC_WS); }
/* what FTS5's unicode61 keeps in a token: letters, marks, numbers */
static bool is_word(int32_t cp) { return cp >= 0 && (yan_uc_flags(cp) & (YAN_UC_L | YAN_UC_M | YAN_UC_N)); }

/* ASCII classes for the estimate: 0 space, 1 letter or digit, 2 other */
static const uint8_t ASCII_CLASS[128] = {
    2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2,
    2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2,
    2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2,
};

int64_t yan_chunk_estimate(void *ud, const char *s, size_t n) {
    (void)ud;
    int64_t t = 0;
    const uint8_t *u = (const uint8_t *)s;
    for (size_t i = 0; i < n;) {
        if (u[i] < 0x80) { /* the common case, without decoding */
            uint8_t c = ASCII_CLASS[u[i]];
            if (c == 0) {
                i++;
                continue;
            }
            if (c == 2) {
                t++;
                i++;
                continue;
            }
            size_t j = i + 1;
            while (j < n && u[j] < 0x80 && ASCII_CLASS[u[j]] == 1) j++;
            if (j == n || u[j] < 0x80) { /* a pure ASCII word */
                t += (int64_t)((j - i + 3) / 4);
                i = j;
                continue;
            }
            /* the word goes on in other letters: the general path */
        }
        int32_t cp;
        int l = dec(s + i, n - i, &cp);
        if (is_space(cp)) {
            i += (size_t)l;
        } else if (yan_is_cjk(cp) || !is_word(cp)) {
            t++;
            i += (size_t)l;
        } else {
            /* a word: Latin letters/digits count 1 per 4, other scripts 1 per 3 */
            size_t chars = 0;
            bool latin = true;
            while (i < n) {
                l = dec(s + i, n - i, &cp);
                if (!is_word(cp) || yan_is_cjk(cp)) break;
                latin = latin && cp < 0x250;
                chars++;
                i += (size_t)l;
            }
            size_t per = latin ? 4 : 3;
            t += (int64_t)((chars + per - 1) / per);
        }
    }
    return t;
}

/* --------------------------------------------------------------- units */

typedef struct {
    size_t start, end; /* contiguous: unit i + 1 starts where unit i ends */
    int64_t tokens;
    uint8_t para;      /* a paragraph break follows */
} unit;

typedef struct {
    unit *u;
    size_t n, cap;
    const char *t;
    const yan_chunk_params *p;
    bool oom;
} units;

static void push_unit(units *us, size_t a, size_t b, bool para, int64_t tok) {
    if (b <= a || us->oom) return;
    if (us->n == us->cap) {
        size_t cap = us->cap ? us->cap * 2 : 64;
        unit *nu = yan_realloc(us->u, cap * sizeof *nu);
        if (!nu) {
            us->oom = true;
            return;
        }
        us->u = nu;
        us->cap = cap;
    }
    if (tok < 0) tok = us->p->count(us->p->ud, us->t + a, b - a);
    us->u[us->n++] = (unit){a, b, tok < 0 ? 0 : tok, para};
}

static bool is_closer(int32_t cp) {
    return cp == '"' || cp == '\'' || cp == ')' || cp == ']' || cp == 0x201D || cp == 0x2019 || cp == 0xBB ||
           cp == 0x300D || cp == 0x300F || cp == 0xFF09 || cp == 0x3011 || cp == 0x300B || cp == 0x3009;
}

static bool is_cjk_stop(int32_t cp) { return cp == 0x3002 || cp == 0xFF01 || cp == 0xFF1F || cp == 0xFF1B; }

/* A cut inside t[a, b) no later than a + want bytes (and not before a + 1
 * character): the last line break, else clause mark, else space, else
 * character boundary in the window's second half. */
static size_t soft_cut(const char *t, size_t a, size_t b, size_t want) {
    size_t lim = a + want < b ? a + want : b;
    size_t lo = a + want / 2;
    size_t best[3] = {0, 0, 0}; /* newline, clause, space */
    size_t last_char = a;
    for (size_t i = a; i < lim;) {
        int32_t cp;
        int l = dec(t + i, b - i, &cp);
        size_t after = i + (size_t)l;
        if (after > lim) break;
        last_char = after;
        if (after >= lo) {
            if (cp == '\n') best[0] = after;
            else if (cp == ',' || cp == ';' || cp == ':' || cp == 0xFF0C || cp == 0x3001 || cp == 0xFF1A)
                best[1] = after;
            else if (is_space(cp)) best[2] = after;
        }
        i = after;
    }
    for (int k = 0; k < 3; k++)
        if (best[k] > a) return best[k];
    if (last_char > a) return last_char;
    /* want is smaller than one character: take one */
    int32_t cp;
    return a + (size_t)dec(t + a, b - a, &cp);
}

/* Unit [a, b) with more tokens than the chunk size: split into pieces of
 * at most size tokens (estimated from its bytes per token, then counted). */
static void push_long(units *us, size_t a, size_t b, int64_t tokens, bool para) {
    int size = us->p->size;
    double bpt = (double)(b - a) / (double)(tokens > 0 ? tokens : 1);
    while (a < b && !us->oom) {
        size_t want = (size_t)(bpt * size * 0.9);
        if (want < 1) want = 1;
        if (a + want >= b) {
            int64_t rest = us->p->count(us->p->ud, us->t + a, b - a);
            if (rest <= size) {
                push_unit(us, a, b, para, rest);
                return;
            }
            want = (b - a) * 9 / 10;
        }
        size_t cut = soft_cut(us->t, a, b, want);
        /* shrink until it fits (the estimate can be off for odd text) */
        int64_t tok = -1;
        for (int tries = 0; tries < 8 && cut - a > 1; tries++) {
            if ((tok = us->p->count(us->p->ud, us->t + a, cut - a)) <= size) break;
            size_t w = (cut - a) * 3 / 4;
            cut = soft_cut(us->t, a, b, w ? w : 1);
            tok = -1;
        }
        push_unit(us, a, cut, false, tok);
        a = cut;
    }
}

static void add_unit(units *us, size_t a, size_t b, bool para) {
    if (b <= a) return;
    bool blank = true;
    for (size_t i = a; i < b && blank; i++) blank = us->t[i] == ' ' || us->t[i] == '\t' || us->t[i] == '\n';
    if (blank) { /* whitespace (the break after a sentence) joins the unit before it */
        if (us->n && us->u[us->n - 1].end == a) {
            us->u[us->n - 1].end = b;
            us->u[us->n - 1].para |= para;
        }
        return;
    }
    int64_t tok = us->p->count(us->p->ud, us->t + a, b - a);
    if (tok > us->p->size) {
        push_long(us, a, b, tok, para);
        return;
    }
    push_unit(us, a, b, para, tok < 0 ? 0 : tok);
}

/* Cut t[a, b) into units at sentence ends and paragraph breaks. */
static void split_units(units *us, size_t a, size_t b) {
    const char *t = us->t;
    size_t start = a;
    for (size_t i = a; i < b;) {
        int32_t cp;
        int l = dec(t + i, b - i, &cp);
        size_t next = i + (size_t)l;
        if (cp == '\n') {
            size_t j = next;
            while (j < b && (t[j] == ' ' || t[j] == '\t')) j++;
            if (j < b && t[j] == '\n') {
                while (j < b && (t[j] == ' ' || t[j] == '\t' || t[j] == '\n')) j++;
                add_unit(us, start, j, true);
                start = i = j;
                continue;
            }
        } else if (cp == '.' || cp == '!' || cp == '?' || is_cjk_stop(cp)) {
            size_t j = next;
            for (;;) { /* closing quotes and brackets stay with the sentence */
                int32_t c2;
                if (j >= b) break;
                int l2 = dec(t + j, b - j, &c2);
                if (!is_closer(c2)) break;
                j += (size_t)l2;
            }
            bool end = is_cjk_stop(cp);
            if (!end) {
                int32_t c2 = ' ';
                if (j < b) dec(t + j, b - j, &c2);
                end = j >= b || is_space(c2);
            }
            if (end) {
                while (j < b && (t[j] == ' ' || t[j] == '\t')) j++; /* the space stays too */
                add_unit(us, start, j, false);
                start = i = j;
                continue;
            }
        }
        i = next;
    }
    add_unit(us, start, b, true);
}

/* ------------------------------------------------------------ chunking */

typedef struct {
    yan_chunk *c;
    size_t n, cap;
} chunk_list;

static bool emit(chunk_list *cl, const char *t, size_t a, size_t b, int32_t sec, int64_t tokens) {
    while (a < b && (t[a] == ' ' || t[a] == '\t' || t[a] == '\n')) a++;
    while (b > a && (t[b - 1] == ' ' || t[b - 1] == '\t' || t[b - 1] == '\n')) b--;
    if (b <= a) return true;
    if (cl->n == cl->cap) {
        size_t cap = cl->cap ? cl->cap * 2 : 32;
        yan_chunk *nc = yan_realloc(cl->c, cap * sizeof *nc);
        if (!nc) return false;
        cl->c = nc;
        cl->cap = cap;
    }
    cl->c[cl->n++] = (yan_chunk){a, b, sec, (int32_t)(tokens > INT32_MAX ? INT32_MAX : tokens)};
    return true;
}

yan_status yan_chunk_doc(const yan_doc *d, const yan_chunk_params *p, yan_chunk **out, size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    if (!p || p->size <= 0) return yan_fail(YAN_ERR_INVALID_ARG, "chunk size must be positive");
    yan_chunk_params pp = *p;
    if (!pp.count) pp.count = yan_chunk_estimate;
    if (pp.overlap < 0) pp.overlap = 0;
    if (pp.overlap >= pp.size) pp.overlap = pp.size / 2;
    const char *t = d->text.data ? d->text.data : "";
    units us = {.t = t, .p = &pp};
    chunk_list cl = {0};
    bool ok = true;
    for (size_t s = 0; s < d->n_sec && ok; s++) {
        size_t a = d->sec[s].start, b = s + 1 < d->n_sec ? d->sec[s + 1].start : d->text.len;
        if (b <= a) continue;
        us.n = 0;
        split_units(&us, a, b);
        if (us.oom) {
            ok = false;
            break;
        }
        const unit *u = us.u;
        size_t nu = us.n, i = 0;
        while (i < nu && ok) {
            int64_t sum = 0;
            size_t j = i;
            while (j < nu && (j == i || sum + u[j].tokens <= pp.size)) sum += u[j++].tokens;
            size_t cut = j - 1;
            if (j < nu) { /* prefer the last paragraph break in the second half */
                int64_t acc = 0;
                for (size_t m = i; m < j; m++) {
                    acc += u[m].tokens;
                    if (u[m].para && m < j - 1 && acc * 2 >= pp.size) cut = m;
                }
            }
            int64_t tok = 0;
            for (size_t m = i; m <= cut; m++) tok += u[m].tokens;
            ok = emit(&cl, t, u[i].start, u[cut].end, (int32_t)s, tok);
            if (cut + 1 >= nu) break;
            /* overlap: trailing units of this chunk, at most overlap tokens */
            size_t next = cut + 1;
            int64_t acc = 0;
            while (next - 1 > i && acc + u[next - 1].tokens <= pp.overlap) acc += u[--next].tokens;
            i = next;
        }
    }
    yan_free(us.u);
    if (!ok) {
        yan_free(cl.c);
        return yan_fail(YAN_ERR_NOMEM, "out of memory chunking");
    }
    *out = cl.c;
    *n_out = cl.n;
    return YAN_OK;
}

/* -------------------------------------------------------- segmentation */

const char *yan_seg_mode_name(yan_seg_mode m) {
    switch (m) {
    case YAN_SEG_BIGRAM: return "bigram";
    case YAN_SEG_UNIGRAM: return "unigram";
    case YAN_SEG_UNIBIGRAM: return "unibigram";
    case YAN_SEG_TRIGRAM: return "trigram";
    }
    return "bigram";
}

int yan_seg_mode_parse(const char *s) {
    for (int m = 0; m <= YAN_SEG_TRIGRAM; m++)
        if (s && !strcmp(s, yan_seg_mode_name((yan_seg_mode)m))) return m;
    return -1;
}

bool yan_segment(yan_buf *out, const char *s, size_t n, yan_seg_mode mode) {
    if (mode == YAN_SEG_TRIGRAM) return yan_buf_append(out, s, n) || n == 0;
    if (!yan_buf_reserve(out, n + n / 2 + 8)) return false;
    const bool uni = mode == YAN_SEG_UNIGRAM || mode == YAN_SEG_UNIBIGRAM;
    const bool bi = mode == YAN_SEG_BIGRAM || mode == YAN_SEG_UNIBIGRAM;
    for (size_t i = 0; i < n;) {
        int32_t cp;
        int l = dec(s + i, n - i, &cp);
        if (!yan_is_cjk(cp)) {
            size_t j = i + (size_t)l;
            while (j < n) { /* copy the non-CJK stretch at once */
                if ((uint8_t)s[j] < 0x80) {
                    j++;
                    continue;
                }
                int l2 = dec(s + j, n - j, &cp);
                if (yan_is_cjk(cp)) break;
                j += (size_t)l2;
            }
            yan_buf_append(out, s + i, j - i);
            i = j;
            continue;
        }
        /* a CJK run: characters and/or the bigrams ending at each one */
        size_t prev = SIZE_MAX, first = i, count = 0;
        yan_buf_putc(out, ' ');
        while (i < n) {
            l = dec(s + i, n - i, &cp);
            if (!yan_is_cjk(cp)) break;
            size_t end = i + (size_t)l;
            if (uni) yan_buf_append(out, s + i, (size_t)l), yan_buf_putc(out, ' ');
            if (bi && prev != SIZE_MAX) yan_buf_append(out, s + prev, end - prev), yan_buf_putc(out, ' ');
            prev = i;
            i = end;
            count++;
        }
        if (!uni && count == 1) yan_buf_append(out, s + first, i - first), yan_buf_putc(out, ' ');
    }
    return !out->oom;
}

/* ------------------------------------------------------------ queries */

static bool add_term(yan_buf *out, const char *w, size_t n, int *terms, int max_terms, const char *seen, size_t seen_n) {
    if (!n || *terms >= max_terms) return true;
    /* duplicates: a linear search of the quoted terms written so far */
    for (size_t i = 0; i + n + 2 <= seen_n; i++)
        if (seen[i] == '"' && (i == 0 || seen[i - 1] == ' ') && !memcmp(seen + i + 1, w, n) && seen[i + 1 + n] == '"')
            return true;
    if (*terms) yan_buf_puts(out, " OR ");
    yan_buf_putc(out, '"');
    for (size_t i = 0; i < n; i++) {
        if (w[i] == '"') yan_buf_putc(out, '"');
        yan_buf_putc(out, w[i]);
    }
    yan_buf_putc(out, '"');
    (*terms)++;
    return !out->oom;
}

/* English function words: in most chunks, so they add nothing to a BM25
 * ranking but cost a pass over most of the index. Sorted. */
static const char *const STOP[] = {
    "a",     "about", "after", "all",   "also",  "an",    "and",   "any",   "are",   "as",    "at",    "be",
    "been",  "being", "but",   "by",    "can",   "could", "did",   "do",    "does",  "for",   "from",  "had",
    "has",   "have",  "he",    "her",   "his",   "how",   "i",     "if",    "in",    "into",  "is",    "it",
    "its",   "me",    "my",    "no",    "not",   "of",    "on",    "or",    "our",   "she",   "should", "so",
    "some",  "such",  "than",  "that",  "the",   "their", "them",  "then",  "there", "these", "they",  "this",
    "those", "to",    "was",   "we",    "were",  "what",  "when",  "where", "which", "while", "who",   "whom",
    "why",   "will",  "with",  "would", "you",   "your"};

static bool is_stop(const char *w, size_t n) {
    if (n > 6) return false;
    char low[8];
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)w[i] >= 0x80) return false;
        low[i] = (char)tolower((unsigned char)w[i]);
    }
    low[n] = 0;
    size_t lo = 0, hi = sizeof STOP / sizeof STOP[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(STOP[mid], low);
        if (c == 0) return true;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return false;
}

static bool fts_query(yan_buf *out, const char *q, yan_seg_mode mode, int max_terms, bool drop_stop);

bool yan_fts_query(yan_buf *out, const char *q, yan_seg_mode mode, int max_terms) {
    /* without the function words, unless the query has nothing else */
    if (!fts_query(out, q, mode, max_terms, true)) return false;
    return out->len ? true : fts_query(out, q, mode, max_terms, false);
}

static bool fts_query(yan_buf *out, const char *q, yan_seg_mode mode, int max_terms, bool drop_stop) {
    out->len = 0;
    if (!yan_buf_reserve(out, 64)) return false;
    out->data[0] = 0;
    yan_buf seg = {0};
    size_t n = strlen(q);
    if (mode != YAN_SEG_TRIGRAM && !yan_segment(&seg, q, n, mode)) {
        yan_buf_free(&seg);
        return false;
    }
    const char *s = mode == YAN_SEG_TRIGRAM ? q : (seg.data ? seg.data : "");
    size_t sn = mode == YAN_SEG_TRIGRAM ? n : seg.len;
    int terms = 0;
    for (size_t i = 0; i < sn && !out->oom;) {
        int32_t cp;
        int l = dec(s + i, sn - i, &cp);
        if (!is_word(cp)) {
            i += (size_t)l;
            continue;
        }
        bool cjk = yan_is_cjk(cp);
        size_t j = i, chars = 0;
        size_t off[4] = {i, 0, 0, 0};
        while (j < sn) {
            int l2 = dec(s + j, sn - j, &cp);
            if (!is_word(cp) || (mode == YAN_SEG_TRIGRAM && yan_is_cjk(cp) != cjk)) break;
            j += (size_t)l2;
            chars++;
            if (mode == YAN_SEG_TRIGRAM && cjk) {
                /* overlapping trigrams of the CJK run */
                if (chars <= 3) off[chars] = j;
                else {
                    off[0] = off[1], off[1] = off[2], off[2] = off[3], off[3] = j;
                }
                if (chars >= 3) add_term(out, s + off[0], off[3] - off[0], &terms, max_terms, out->data, out->len);
            }
        }
        if (drop_stop && !cjk && is_stop(s + i, j - i)) {
            i = j;
            continue;
        }
        if (mode != YAN_SEG_TRIGRAM || (!cjk && chars >= 3) || (cjk && chars < 3))
            add_term(out, s + i, j - i, &terms, max_terms, out->data, out->len);
        i = j;
    }
    yan_buf_free(&seg);
    return !out->oom;
}
