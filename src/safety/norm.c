/* norm.c — the text normaliser of the safety module: folding of code points
 * to a matching form (case, width, accents, compatibility letters, invisible
 * characters) and the online "unitizer" that turns a byte stream into units
 * and classified gaps (see safety.h for the model).
 *
 * Deliberately not done: full NFKC (only the compatibility characters that
 * are used to disguise Latin letters and digits are folded), Traditional to
 * Simplified Chinese (rules list both forms where it matters), word
 * segmentation of CJK (CJK is matched as substrings). */
#include "safety/norm.h"

#include "tokenizer/unicode.h"

/* ------------------------------------------------------------------ fold */

static bool is_ignorable(int32_t cp) {
    if (cp < 0xAD) return false;
    return cp == 0x00AD || cp == 0x034F || cp == 0x061C || cp == 0x115F || cp == 0x1160 || cp == 0x17B4 ||
           cp == 0x17B5 || (cp >= 0x180B && cp <= 0x180F) || (cp >= 0x200B && cp <= 0x200F) ||
           (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x206F) || cp == 0x3164 ||
           (cp >= 0xFE00 && cp <= 0xFE0F) || cp == 0xFEFF || cp == 0xFFA0 || (cp >= 0x1BCA0 && cp <= 0x1BCA3) ||
           (cp >= 0x1D173 && cp <= 0x1D17A) || (cp >= 0xE0000 && cp <= 0xE0FFF);
}

/* Small capitals and other letter-like look-alikes with no decomposition. */
static const struct { uint16_t cp; char to; } SMALL_CAPS[] = {
    {0x0262, 'g'}, {0x026A, 'i'}, {0x0274, 'n'}, {0x0280, 'r'}, {0x028F, 'y'}, {0x0299, 'b'},
    {0x029C, 'h'}, {0x029F, 'l'}, {0x1D00, 'a'}, {0x1D04, 'c'}, {0x1D05, 'd'}, {0x1D07, 'e'},
    {0x1D0A, 'j'}, {0x1D0B, 'k'}, {0x1D0D, 'm'}, {0x1D0F, 'o'}, {0x1D18, 'p'}, {0x1D1B, 't'},
    {0x1D1C, 'u'}, {0x1D20, 'v'}, {0x1D21, 'w'}, {0x1D22, 'z'}, {0xA730, 'f'}, {0xA731, 's'},
};

/* Letters that expand or have no canonical decomposition to a Latin base. */
static int fold_special(int32_t cp, int32_t out[3]) {
    const char *s = NULL;
    switch (cp) {
    case 0x00DF: case 0x1E9E: s = "ss"; break;
    case 0x00C6: case 0x00E6: s = "ae"; break;
    case 0x0152: case 0x0153: s = "oe"; break;
    case 0x0132: case 0x0133: s = "ij"; break;
    case 0x00DE: case 0x00FE: s = "th"; break;
    case 0x00D8: case 0x00F8: s = "o"; break;
    case 0x00D0: case 0x00F0: case 0x0110: case 0x0111: s = "d"; break;
    case 0x0126: case 0x0127: s = "h"; break;
    case 0x0131: s = "i"; break;
    case 0x013F: case 0x0140: case 0x0141: case 0x0142: s = "l"; break;
    case 0x014A: case 0x014B: s = "n"; break;
    case 0x0166: case 0x0167: s = "t"; break;
    case 0x017F: s = "s"; break;
    case 0xFB00: s = "ff"; break;
    case 0xFB01: s = "fi"; break;
    case 0xFB02: s = "fl"; break;
    case 0xFB03: s = "ffi"; break;
    case 0xFB04: s = "ffl"; break;
    case 0xFB05: case 0xFB06: s = "st"; break;
    case 0x00B9: s = "1"; break;
    case 0x00B2: s = "2"; break;
    case 0x00B3: s = "3"; break;
    case 0x2070: s = "0"; break;
    case 0x24EA: s = "0"; break;
    default: break;
    }
    if (s) {
        int n = 0;
        while (s[n]) { out[n] = (unsigned char)s[n]; n++; }
        return n;
    }
    return 0;
}

/* Styled Latin letters and digits (enclosed, mathematical, squared,
 * super/subscript): the plain lowercase letter or digit, or 0. */
static int32_t fold_styled(int32_t cp) {
    if (cp >= 0x2074 && cp <= 0x2079) return '4' + (cp - 0x2074);
    if (cp >= 0x2080 && cp <= 0x2089) return '0' + (cp - 0x2080);
    if (cp >= 0x2460 && cp <= 0x2468) return '1' + (cp - 0x2460);           /* circled 1-9 */
    if (cp >= 0x249C && cp <= 0x24B5) return 'a' + (cp - 0x249C);           /* parenthesized a-z */
    if (cp >= 0x24B6 && cp <= 0x24CF) return 'a' + (cp - 0x24B6);           /* circled A-Z */
    if (cp >= 0x24D0 && cp <= 0x24E9) return 'a' + (cp - 0x24D0);           /* circled a-z */
    if (cp >= 0x2776 && cp <= 0x277E) return '1' + (cp - 0x2776);           /* dingbat circled digits */
    if (cp >= 0x2780 && cp <= 0x2788) return '1' + (cp - 0x2780);
    if (cp >= 0x278A && cp <= 0x2792) return '1' + (cp - 0x278A);
    if (cp >= 0x1D400 && cp <= 0x1D6A3) {                                  /* mathematical A-Z a-z */
        int k = (cp - 0x1D400) % 52;
        return 'a' + (k < 26 ? k : k - 26);
    }
    if (cp >= 0x1D7CE && cp <= 0x1D7FF) return '0' + (cp - 0x1D7CE) % 10; /* mathematical digits */
    if (cp >= 0x1F130 && cp <= 0x1F149) return 'a' + (cp - 0x1F130);       /* squared */
    if (cp >= 0x1F150 && cp <= 0x1F169) return 'a' + (cp - 0x1F150);       /* negative circled */
    if (cp >= 0x1F170 && cp <= 0x1F189) return 'a' + (cp - 0x1F170);       /* negative squared */
    if (cp >= 0x1F1E6 && cp <= 0x1F1FF) return 'a' + (cp - 0x1F1E6);       /* regional indicators */
    if (cp >= 0x1FBF0 && cp <= 0x1FBF9) return '0' + (cp - 0x1FBF0);       /* segmented digits */
    return 0;
}

static int32_t lower(int32_t cp) {
    if (cp >= 'A' && cp <= 'Z') return cp + 32;
    if (cp < 0xC0) return cp;
    if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) return cp + 32;
    if (cp >= 0x0100 && cp <= 0x0137) return cp | 1;
    if (cp >= 0x0139 && cp <= 0x0148) return cp + ((cp & 1) ? 1 : 0);
    if (cp >= 0x014A && cp <= 0x0177) return cp | 1;
    if (cp == 0x0178) return 0xFF;
    if (cp >= 0x0179 && cp <= 0x017E) return cp + ((cp & 1) ? 1 : 0);
    if (cp >= 0x0391 && cp <= 0x03A9 && cp != 0x03A2) return cp + 32;
    if (cp == 0x03C2) return 0x03C3; /* final sigma */
    if (cp >= 0x0400 && cp <= 0x040F) return cp + 80;
    if (cp >= 0x0410 && cp <= 0x042F) return cp + 32;
    return cp;
}

static bool decomposable_range(int32_t cp) {
    return (cp >= 0xC0 && cp <= 0x24F) || (cp >= 0x370 && cp <= 0x4FF) || (cp >= 0x1E00 && cp <= 0x1FFF);
}

int sf_fold(int32_t cp, int32_t out[3]) {
    if (cp < 0x80) {
        out[0] = cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
        return 1;
    }
    if (cp < 0) { out[0] = cp; return 1; } /* an invalid byte: a separator */
    if (is_ignorable(cp)) return 0;
    if (yan_uc_flags(cp) & YAN_UC_M) return 0; /* combining marks go with their base */
    if (cp >= 0xFF01 && cp <= 0xFF5E) cp -= 0xFEE0; /* full-width ASCII */
    else if (cp == 0x3000) cp = ' ';
    if (cp < 0x80) {
        out[0] = cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
        return 1;
    }
    int n = fold_special(cp, out);
    if (n) return n;
    for (size_t i = 0; i < sizeof SMALL_CAPS / sizeof SMALL_CAPS[0]; i++)
        if (SMALL_CAPS[i].cp == cp) { out[0] = SMALL_CAPS[i].to; return 1; }
    int32_t st = fold_styled(cp);
    if (st) { out[0] = st; return 1; }
    if (decomposable_range(cp)) {
        uint32_t d[4];
        if (yan_uc_decompose(cp, d) > 1) {
            cp = (int32_t)d[0]; /* the rest are marks */
            n = fold_special(cp, out);
            if (n) return n;
        }
    }
    out[0] = lower(cp);
    return 1;
}

/* ------------------------------------------------------------- classes */

static bool is_substring_script(int32_t cp) {
    return (cp >= 0x2E80 && cp <= 0x2FDF) || (cp >= 0x3005 && cp <= 0x3007) || (cp >= 0x3021 && cp <= 0x3029) ||
           (cp >= 0x3041 && cp <= 0x30FA) || (cp >= 0x30FC && cp <= 0x30FF) || (cp >= 0x31F0 && cp <= 0x31FF) ||
           (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xF900 && cp <= 0xFAFF) ||
           (cp >= 0xFF66 && cp <= 0xFF9F) || (cp >= 0x20000 && cp <= 0x3FFFF) || (cp >= 0x1100 && cp <= 0x11FF) ||
           (cp >= 0x3131 && cp <= 0x318E) || (cp >= 0xAC00 && cp <= 0xD7AF) ||
           ((cp >= 0x0E00 && cp <= 0x0EFF) && (yan_uc_flags(cp) & YAN_UC_L)) || /* Thai, Lao */
           ((cp >= 0x1000 && cp <= 0x109F) && (yan_uc_flags(cp) & YAN_UC_L)) || /* Myanmar */
           ((cp >= 0x1780 && cp <= 0x17FF) && (yan_uc_flags(cp) & YAN_UC_L));   /* Khmer */
}

sf_class sf_classify(int32_t cp) {
    if (cp < 0x80) {
        if ((cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9') || (cp >= 'A' && cp <= 'Z')) return SF_LATIN;
        if (cp == '@' || cp == '$') return SF_SYM;
        return SF_SEP;
    }
    if (is_substring_script(cp)) return SF_CJK;
    if (yan_uc_flags(cp) & (YAN_UC_L | YAN_UC_N)) return SF_LATIN;
    return SF_SEP;
}

int32_t sf_alt(int32_t cp) {
    switch (cp) {
    case '0': return 'o';
    case '1': return 'i';
    case '3': return 'e';
    case '4': return 'a';
    case '5': return 's';
    case '7': return 't';
    case '@': return 'a';
    case '$': return 's';
    /* Cyrillic */
    case 0x0430: return 'a';
    case 0x0432: return 'b';
    case 0x0435: return 'e';
    case 0x043A: return 'k';
    case 0x043C: return 'm';
    case 0x043D: return 'h';
    case 0x043E: return 'o';
    case 0x0440: return 'p';
    case 0x0441: return 'c';
    case 0x0442: return 't';
    case 0x0443: return 'y';
    case 0x0445: return 'x';
    case 0x0455: return 's';
    case 0x0456: return 'i';
    case 0x0458: return 'j';
    case 0x04BB: return 'h';
    case 0x04CF: return 'l';
    case 0x0501: return 'd';
    case 0x051B: return 'q';
    case 0x051D: return 'w';
    /* Greek */
    case 0x03B1: return 'a';
    case 0x03B2: return 'b';
    case 0x03B3: return 'y';
    case 0x03B5: return 'e';
    case 0x03B7: return 'n';
    case 0x03B9: return 'i';
    case 0x03BA: return 'k';
    case 0x03BD: return 'v';
    case 0x03BF: return 'o';
    case 0x03C1: return 'p';
    case 0x03C4: return 't';
    case 0x03C5: return 'u';
    case 0x03C7: return 'x';
    default: return 0;
    }
}

bool sf_is_joiner(int32_t cp) {
    switch (cp) {
    case '.': case '-': case '_': case '*': case '\'': case '`': case '~': case '+': case '|': case '/':
    case '\\': case 0xB7: case 0x2010: case 0x2011: case 0x2012: case 0x2013: case 0x2014: case 0x2018:
    case 0x2019: case 0x2022: case 0x2027:
        return true;
    default:
        return false;
    }
}

bool sf_is_newline(int32_t cp) {
    return (cp >= 0x0A && cp <= 0x0D) || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

/* ----------------------------------------------------------- unitizer */

void sf_norm_init(sf_norm *n, sf_unit_fn fn, void *ud) {
    memset(n, 0, sizeof *n);
    n->fn = fn;
    n->ud = ud;
    n->gap_joiner = n->gap_cjkj = true;
}

static void gap_reset(sf_norm *n) {
    n->gap_len = 0;
    n->gap_nl = false;
    n->gap_joiner = n->gap_cjkj = true;
}

/* Classify the gap before the held unit, now that we know whether a gap
 * follows it, and hand it on. */
static void release(sf_norm *n, bool followed_by_gap) {
    sf_unit *u = &n->cur;
    bool first = !n->have_pred;
    bool single = u->cls == SF_LATIN && (n->cur_gap_len > 0 || first) && followed_by_gap;
    uint8_t gap;
    if (first) gap = n->cur_gap_len ? SF_GAP_HARD : SF_GAP_NONE;
    else if (n->cur_gap_len == 0) gap = SF_GAP_NONE;
    else if (n->pred_cls == SF_CJK || u->cls == SF_CJK)
        gap = n->cur_gap_len <= 3 && !n->cur_gap_nl && n->cur_gap_cjkj ? SF_GAP_SOFT : SF_GAP_HARD;
    else if ((n->cur_gap_len == 1 && n->cur_gap_joiner) ||
             (n->cur_gap_len <= 3 && !n->cur_gap_nl && n->pred_single && single))
        gap = SF_GAP_SOFT;
    else gap = SF_GAP_HARD;
    if (gap == SF_GAP_NONE && !first && (n->pred_cls == SF_SYM || u->cls == SF_SYM)) gap = SF_GAP_SOFT;
    u->gap = gap;
    n->have_cur = false;
    n->have_pred = true;
    n->pred_cls = u->cls;
    n->pred_single = single;
    n->n_units++;
    n->fn(n->ud, u);
}

static void put_cp(sf_norm *n, int32_t cp, uint64_t start, uint64_t end) {
    int32_t f[3];
    int k = sf_fold(cp, f);
    for (int i = 0; i < k; i++) {
        sf_class cls = sf_classify(f[i]);
        if (cls == SF_SEP) {
            if (n->have_cur) release(n, true);
            if (n->gap_len < UINT32_MAX) n->gap_len++;
            if (sf_is_newline(f[i])) n->gap_nl = true;
            bool j = sf_is_joiner(f[i]);
            if (!j) n->gap_joiner = false;
            bool ws = (yan_uc_flags(f[i]) & YAN_UC_WS) != 0;
            if (!(ws || (f[i] < 0x80 && j))) n->gap_cjkj = false;
            continue;
        }
        if (n->have_cur) release(n, false);
        n->cur = (sf_unit){.cp = f[i], .alt = cls == SF_CJK ? 0 : sf_alt(f[i]), .start = start, .end = end,
                           .cls = (uint8_t)cls};
        n->cur_gap_len = n->gap_len;
        n->cur_gap_nl = n->gap_nl;
        n->cur_gap_joiner = n->gap_joiner;
        n->cur_gap_cjkj = n->gap_cjkj;
        n->have_cur = true;
        gap_reset(n);
    }
}

/* Whether the character starting at s[0] can be decoded now exactly as it
 * would be with the whole text at hand: it is complete, or already invalid. */
static bool decidable(const uint8_t *s, size_t n) {
    uint8_t c = s[0];
    size_t need = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3
                : (c >= 0xF0 && c <= 0xF4) ? 4 : 1;
    if (n >= need) return true;
    for (size_t j = 1; j < n; j++)
        if ((s[j] & 0xC0) != 0x80) return true;
    return false;
}

static size_t decode_one(sf_norm *n, const uint8_t *p, size_t len) {
    int32_t cp;
    int k = yan_uc_decode(p, len, &cp);
    put_cp(n, cp, n->off, n->off + (size_t)k);
    n->off += (size_t)k;
    return (size_t)k;
}

void sf_norm_feed(sf_norm *n, const uint8_t *p, size_t len) {
    size_t i = 0;
    /* a character split across feeds: top the carried bytes up until it can be decoded */
    while (n->n_carry) {
        while (!decidable(n->carry, n->n_carry) && i < len) n->carry[n->n_carry++] = p[i++];
        if (!decidable(n->carry, n->n_carry)) return;
        size_t k = decode_one(n, n->carry, n->n_carry);
        memmove(n->carry, n->carry + k, n->n_carry - k);
        n->n_carry = (uint8_t)(n->n_carry - k);
    }
    while (i < len) {
        if (len - i < 4 && !decidable(p + i, len - i)) {
            memcpy(n->carry, p + i, len - i);
            n->n_carry = (uint8_t)(len - i);
            return;
        }
        i += decode_one(n, p + i, len - i);
    }
}

void sf_norm_finish(sf_norm *n) {
    while (n->n_carry) { /* the text ends inside a character: its bytes are invalid */
        size_t k = decode_one(n, n->carry, n->n_carry);
        memmove(n->carry, n->carry + k, n->n_carry - k);
        n->n_carry = (uint8_t)(n->n_carry - k);
    }
    if (n->have_cur) release(n, true);
}
