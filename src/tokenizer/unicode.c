/* unicode.c — lookups over the generated Unicode tables (unicode_data.c) and
 * NFC normalisation (UAX #15): canonical decomposition (Hangul by arithmetic),
 * canonical ordering by combining class, canonical composition honouring
 * Full_Composition_Exclusion.
 *
 * NFC works segment by segment. A "boundary" character (ASCII, an invalid
 * byte, or NFC_QC=Yes with ccc=0) can neither be reordered nor combine with
 * what precedes it, so text between boundaries normalises independently. The
 * quick scan copies runs of boundary characters untouched; only a segment
 * around a non-boundary character (from the boundary before it up to the next
 * boundary) goes through decompose/reorder/compose. Plain English or Chinese
 * costs one table lookup per non-ASCII character.
 * Depends on base (yan_buf, yan_malloc, yan_utf8_encode). Thread-safe. */
#include "tokenizer/unicode.h"

const uint16_t yan_uc_class_flags[YAN_UC_NCLASS] = {
    [YAN_UC_C_OTHER] = 0,
    [YAN_UC_C_LU] = YAN_UC_L | YAN_UC_LU,
    [YAN_UC_C_LL] = YAN_UC_L | YAN_UC_LL,
    [YAN_UC_C_LT] = YAN_UC_L | YAN_UC_LT,
    [YAN_UC_C_LM] = YAN_UC_L | YAN_UC_LM,
    [YAN_UC_C_LO] = YAN_UC_L | YAN_UC_LO,
    [YAN_UC_C_M] = YAN_UC_M,
    [YAN_UC_C_N] = YAN_UC_N,
    [YAN_UC_C_WS] = YAN_UC_WS,
};

/* ---------------------------------------------------------------- Hangul */

enum {
    H_SBASE = 0xAC00, H_LBASE = 0x1100, H_VBASE = 0x1161, H_TBASE = 0x11A7,
    H_LCOUNT = 19, H_VCOUNT = 21, H_TCOUNT = 28,
    H_NCOUNT = H_VCOUNT * H_TCOUNT, H_SCOUNT = H_LCOUNT * H_NCOUNT,
};

/* --------------------------------------------------- decompose / compose */

size_t yan_uc_decompose(int32_t cp, uint32_t out[4]) {
    if (cp >= H_SBASE && cp < H_SBASE + H_SCOUNT) {
        uint32_t si = (uint32_t)(cp - H_SBASE);
        out[0] = H_LBASE + si / H_NCOUNT;
        out[1] = H_VBASE + (si % H_NCOUNT) / H_TCOUNT;
        if (si % H_TCOUNT == 0) return 2;
        out[2] = H_TBASE + si % H_TCOUNT;
        return 3;
    }
    if (cp < 0 || !yan_uc_nfc_info(cp)->decomp) {
        out[0] = (uint32_t)cp;
        return 1;
    }
    size_t lo = 0, hi = yan_uc_n_decomps;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (yan_uc_decomps[mid].cp < (uint32_t)cp) lo = mid + 1;
        else hi = mid;
    }
    YAN_ASSERT(lo < yan_uc_n_decomps && yan_uc_decomps[lo].cp == (uint32_t)cp);
    const yan_uc_decomp *d = &yan_uc_decomps[lo];
    for (size_t i = 0; i < d->len; i++) out[i] = yan_uc_decomp_pool[d->off + i];
    return d->len;
}

int32_t yan_uc_compose(int32_t a, int32_t b) {
    if (a < 0 || b < 0) return -1;
    if (yan_uc_nfc_info(b)->qc != 2) return -1; /* only NFC_QC=Maybe characters combine backwards */
    if (a >= H_LBASE && a < H_LBASE + H_LCOUNT && b >= H_VBASE && b < H_VBASE + H_VCOUNT)
        return H_SBASE + ((a - H_LBASE) * H_VCOUNT + (b - H_VBASE)) * H_TCOUNT;
    if (a >= H_SBASE && a < H_SBASE + H_SCOUNT && (a - H_SBASE) % H_TCOUNT == 0 &&
        b > H_TBASE && b < H_TBASE + H_TCOUNT)
        return a + (b - H_TBASE);
    uint64_t key = ((uint64_t)(uint32_t)a << 21) | (uint32_t)b;
    size_t lo = 0, hi = yan_uc_n_pairs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (yan_uc_pairs[mid].key < key) lo = mid + 1;
        else hi = mid;
    }
    if (lo < yan_uc_n_pairs && yan_uc_pairs[lo].key == key) return (int32_t)yan_uc_pairs[lo].cp;
    return -1;
}

/* ------------------------------------------------------------ quick scan */

static inline bool nfc_boundary(int32_t cp) {
    if (cp < 0x300) return true; /* ASCII, Latin-1, Latin Extended, invalid bytes (-1) */
    const yan_uc_nfc_rec *r = yan_uc_nfc_info(cp);
    return r->ccc == 0 && r->qc == 0;
}

/* Longest boundary-only prefix; *last = start of its last character (or the
 * prefix length when it is empty). */
static size_t quick_scan(const uint8_t *s, size_t n, size_t *last) {
    size_t i = 0, prev = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            /* run of ASCII, 8 bytes at a time */
            size_t j = i + 1;
            while (j + 8 <= n) {
                uint64_t v;
                memcpy(&v, s + j, 8);
                if (v & 0x8080808080808080ULL) break;
                j += 8;
            }
            while (j < n && s[j] < 0x80) j++;
            prev = j - 1;
            i = j;
            continue;
        }
        int32_t cp;
        int len = yan_uc_decode(s + i, n - i, &cp);
        if (!nfc_boundary(cp)) break;
        prev = i;
        i += (size_t)len;
    }
    *last = i == 0 ? 0 : prev;
    return i;
}

size_t yan_nfc_quick_prefix(const uint8_t *s, size_t n) {
    size_t last;
    return quick_scan(s, n, &last);
}

/* ------------------------------------------------------------------ NFC */

typedef struct {
    uint32_t *cp;  /* code points of the segment */
    uint8_t *cc;   /* their combining classes */
    size_t len, cap;
    uint32_t stack_cp[64];
    uint8_t stack_cc[64];
} seg_buf;

static bool seg_push(seg_buf *b, uint32_t cp) {
    if (b->len == b->cap) {
        size_t ncap = b->cap * 2;
        uint32_t *ncp = yan_malloc(ncap * sizeof *ncp);
        uint8_t *ncc = yan_malloc(ncap);
        if (!ncp || !ncc) { yan_free(ncp); yan_free(ncc); return false; }
        memcpy(ncp, b->cp, b->len * sizeof *ncp);
        memcpy(ncc, b->cc, b->len);
        if (b->cp != b->stack_cp) { yan_free(b->cp); yan_free(b->cc); }
        b->cp = ncp;
        b->cc = ncc;
        b->cap = ncap;
    }
    b->cp[b->len] = cp;
    b->cc[b->len] = (uint8_t)yan_uc_ccc((int32_t)cp);
    b->len++;
    return true;
}

/* Stable sort of cp[lo..hi) (all ccc != 0) by combining class. */
static bool sort_run(seg_buf *b, size_t lo, size_t hi) {
    size_t m = hi - lo;
    if (m <= 32) {
        for (size_t i = lo + 1; i < hi; i++) {
            uint32_t c = b->cp[i];
            uint8_t k = b->cc[i];
            size_t j = i;
            while (j > lo && b->cc[j - 1] > k) {
                b->cp[j] = b->cp[j - 1];
                b->cc[j] = b->cc[j - 1];
                j--;
            }
            b->cp[j] = c;
            b->cc[j] = k;
        }
        return true;
    }
    /* long runs (hostile input): counting sort, O(m) */
    uint32_t *tmp = yan_malloc(m * sizeof *tmp);
    if (!tmp) return false;
    size_t count[257] = {0};
    for (size_t i = lo; i < hi; i++) count[b->cc[i] + 1]++;
    for (int k = 1; k <= 256; k++) count[k] += count[k - 1];
    for (size_t i = lo; i < hi; i++) tmp[count[b->cc[i]]++] = b->cp[i];
    for (size_t i = 0; i < m; i++) {
        b->cp[lo + i] = tmp[i];
        b->cc[lo + i] = (uint8_t)yan_uc_ccc((int32_t)tmp[i]);
    }
    yan_free(tmp);
    return true;
}

/* Normalise the segment s[0..n) (valid UTF-8, no invalid bytes) and append it. */
static yan_status nfc_segment(const uint8_t *s, size_t n, yan_buf *out) {
    seg_buf b;
    b.cp = b.stack_cp;
    b.cc = b.stack_cc;
    b.len = 0;
    b.cap = 64;
    yan_status st = YAN_OK;
    /* decompose */
    for (size_t i = 0; i < n;) {
        int32_t cp;
        int len = yan_uc_decode(s + i, n - i, &cp);
        YAN_ASSERT(cp >= 0);
        uint32_t d[4];
        size_t nd = yan_uc_decompose(cp, d);
        for (size_t k = 0; k < nd; k++)
            if (!seg_push(&b, d[k])) { st = YAN_ERR_NOMEM; goto done; }
        i += (size_t)len;
    }
    /* canonical ordering */
    for (size_t i = 0; i < b.len;) {
        if (b.cc[i] == 0) { i++; continue; }
        size_t j = i;
        while (j < b.len && b.cc[j] != 0) j++;
        if (j - i > 1 && !sort_run(&b, i, j)) { st = YAN_ERR_NOMEM; goto done; }
        i = j;
    }
    /* canonical composition */
    if (b.len > 0) {
        size_t starter = 0, w = 1;
        int last_cc = b.cc[0] == 0 ? 0 : 256; /* a leading non-starter blocks */
        for (size_t i = 1; i < b.len; i++) {
            uint32_t c = b.cp[i];
            int cc = b.cc[i];
            if (last_cc < cc || last_cc == 0) {
                int32_t comp = yan_uc_compose((int32_t)b.cp[starter], (int32_t)c);
                if (comp >= 0 && last_cc != 256) {
                    b.cp[starter] = (uint32_t)comp;
                    continue;
                }
            }
            if (cc == 0) {
                starter = w;
                last_cc = 0;
            } else {
                last_cc = cc;
            }
            b.cp[w++] = c;
        }
        b.len = w;
    }
    /* encode */
    if (!yan_buf_reserve(out, b.len * 4)) { st = YAN_ERR_NOMEM; goto done; }
    for (size_t i = 0; i < b.len; i++) {
        uint8_t enc[4];
        int len = yan_utf8_encode(b.cp[i], enc);
        yan_buf_append(out, enc, (size_t)len);
    }
done:
    if (b.cp != b.stack_cp) { yan_free(b.cp); yan_free(b.cc); }
    if (st != YAN_OK) return yan_fail(st, "nfc: out of memory");
    return YAN_OK;
}

yan_status yan_nfc(const uint8_t *s, size_t n, yan_buf *out) {
    size_t pos = 0;
    while (pos < n) {
        size_t last;
        size_t q = pos + quick_scan(s + pos, n - pos, &last);
        if (q == n) {
            if (!yan_buf_append(out, s + pos, n - pos)) return yan_fail(YAN_ERR_NOMEM, "nfc: out of memory");
            break;
        }
        /* s[q] is not a boundary. The boundary character before it (if
         * valid) may be the first of a composition, so it joins the segment. */
        size_t start = q;
        if (q > pos) {
            int32_t cp;
            last += pos;
            yan_uc_decode(s + last, n - last, &cp);
            if (cp >= 0) start = last;
        }
        size_t end = q;
        int32_t cp;
        end += (size_t)yan_uc_decode(s + end, n - end, &cp);
        while (end < n) {
            int len = yan_uc_decode(s + end, n - end, &cp);
            if (nfc_boundary(cp)) break;
            end += (size_t)len;
        }
        if (!yan_buf_append(out, s + pos, start - pos)) return yan_fail(YAN_ERR_NOMEM, "nfc: out of memory");
        yan_status st = nfc_segment(s + start, end - start, out);
        if (st != YAN_OK) return st;
        pos = end;
    }
    if (out->oom) return yan_fail(YAN_ERR_NOMEM, "nfc: out of memory");
    return YAN_OK;
}
