/* injection.c — a heuristic prompt-injection screen for user input: text
 * that tries to override the system prompt. Signals, each with a weight,
 * summed into a score in [0, 1] and compared with a threshold:
 *  - override, persona, reveal: phrases matched with the rule engine
 *    (data/safety/injection.rules: "ignore (all) previous instructions",
 *    "you are now DAN", "print your system prompt", and Chinese forms);
 *  - role_marker: chat-template tokens and role headers inside user content
 *    ("<|im_start|>system", "[INST]", "<<SYS>>", "### System:", "system:" at
 *    a line start), found on the raw bytes;
 *  - encoded: a base64 block whose decoding shows one of the above.
 * A screen, not a proof: it catches the common, literal attacks and explains
 * what fired; paraphrases get through. Benign text that merely mentions
 * ignoring something ("please ignore the typo above") does not fire, because
 * the override rules need an object such as "instructions" or "rules". */
#include "safety/safety.h"

#include <math.h>

const char *const yan_injection_sections[] = {"override", "persona", "reveal", "role_marker", "encoded"};
const int yan_injection_n_sections = YAN_INJ_COUNT;

const char *yan_injection_signal_name(int s) { return s >= 0 && s < YAN_INJ_COUNT ? yan_injection_sections[s] : NULL; }

#define INJ_B64_MIN 20            /* shortest base64 run worth decoding */
#define INJ_B64_BUDGET (64 << 10) /* most decoded bytes per check */

typedef struct {
    const sf_rules *rs;
    const char *text; /* for excerpts */
    size_t len;
    double sum[YAN_INJ_COUNT];
    bool have[YAN_INJ_COUNT];
    char ev[YAN_INJ_COUNT][96]; /* evidence: an excerpt of what fired first */
} iacc;

/* Copy at most 60 bytes of s[0..n) as a one-line excerpt, cut at a character
 * boundary. */
static void excerpt(char *dst, size_t cap, const char *s, size_t n) {
    if (n > 60) {
        n = 60;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    }
    if (n > cap - 1) n = cap - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[i] = c < 0x20 || c == 0x7F ? ' ' : (char)c;
    }
    dst[n] = 0;
}

static void fire(iacc *a, int sig, double w, const char *s, size_t n) {
    a->sum[sig] += w;
    if (!a->have[sig]) {
        a->have[sig] = true;
        excerpt(a->ev[sig], sizeof a->ev[sig], s, n);
    }
}

static void on_hit(void *ud, uint32_t r, uint64_t start, uint64_t end) {
    iacc *a = ud;
    const sf_rule *ru = sf_rules_get(a->rs, r);
    if (start > a->len) start = a->len;
    if (end > a->len || end < start) end = a->len;
    fire(a, ru->cat, ru->weight, a->text + start, (size_t)(end - start));
}

/* --------------------------------------------------------- role markers */

static const struct {
    const char *tok;
    float w;
} MARKERS[] = {
    {"<|im_start|>system", 0.3f}, /* on top of <|im_start|> */
    {"<|im_start|>", 0.6f},       {"<|im_end|>", 0.4f},          {"<|system|>", 0.7f},
    {"<|assistant|>", 0.4f},      {"<|start_header_id|>", 0.7f}, {"<|end_header_id|>", 0.4f},
    {"<|eot_id|>", 0.4f},         {"<|begin_of_text|>", 0.4f},   {"<|endoftext|>", 0.4f},
    {"<<sys>>", 0.8f},            {"<</sys>>", 0.6f},            {"[inst]", 0.5f},
    {"[/inst]", 0.4f},            {"<start_of_turn>", 0.5f},     {"<end_of_turn>", 0.3f},
};

static bool ieq_prefix(const char *s, size_t n, const char *lit) {
    size_t k = strlen(lit);
    if (n < k) return false;
    for (size_t i = 0; i < k; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c + 32);
        if (c != lit[i]) return false;
    }
    return true;
}

/* Role headers at a line start: "### System:", "[system]", "system:", ... */
static void line_markers(iacc *a, const char *t, size_t len, uint32_t *seen) {
    static const struct { const char *word; float w_hash, w_plain; uint32_t bit; } ROLES[] = {
        {"system prompt", 0.5f, 0.4f, 1u << 20}, {"system", 0.5f, 0.35f, 1u << 21},
        {"instructions", 0.5f, 0.2f, 1u << 22},  {"instruction", 0.5f, 0.2f, 1u << 22},
        {"developer", 0.5f, 0.35f, 1u << 23},     {"assistant", 0.3f, 0.25f, 1u << 24},
    };
    size_t i = 0;
    while (i < len) {
        size_t ls = i, le = i;
        while (le < len && t[le] != '\n') le++;
        size_t p = ls;
        while (p < le && (t[p] == ' ' || t[p] == '\t')) p++;
        int hashes = 0;
        while (p < le && t[p] == '#') { hashes++; p++; }
        while (p < le && (t[p] == ' ' || t[p] == '\t' || t[p] == '*')) p++;
        char open = 0;
        if (p < le && (t[p] == '[' || t[p] == '<')) open = t[p++];
        for (size_t r = 0; r < sizeof ROLES / sizeof ROLES[0]; r++) {
            if (!ieq_prefix(t + p, le - p, ROLES[r].word)) continue;
            size_t q = p + strlen(ROLES[r].word);
            while (q < le && (t[q] == ' ' || t[q] == '*')) q++;
            bool ok = open == '[' ? (q < le && t[q] == ']') : open == '<' ? (q < le && t[q] == '>')
                                                                             : (q < le && t[q] == ':');
            if (ok) {
                uint32_t bit = ROLES[r].bit << (hashes ? 5 : 0);
                if (!(*seen & bit)) {
                    *seen |= bit;
                    fire(a, YAN_INJ_ROLE_MARKER, hashes ? ROLES[r].w_hash : ROLES[r].w_plain, t + ls, q + 1 - ls);
                }
            }
            break;
        }
        i = le + 1;
    }
}

static void role_markers(iacc *a, const char *t, size_t len) {
    uint32_t seen = 0;
    for (size_t i = 0; i < len; i++) {
        if (t[i] != '<' && t[i] != '[') continue;
        for (size_t k = 0; k < sizeof MARKERS / sizeof MARKERS[0]; k++) {
            if (seen & (1u << k) || !ieq_prefix(t + i, len - i, MARKERS[k].tok)) continue;
            seen |= 1u << k;
            fire(a, YAN_INJ_ROLE_MARKER, MARKERS[k].w, t + i, strlen(MARKERS[k].tok));
        }
    }
    line_markers(a, t, len, &seen);
}

/* --------------------------------------------------------------- base64 */

/* Mostly printable text (ASCII or valid UTF-8). */
static bool looks_like_text(const uint8_t *s, size_t n) {
    size_t good = 0;
    for (size_t i = 0; i < n;) {
        int32_t cp;
        int k = yan_utf8_decode(s + i, n - i, &cp);
        if (cp >= 0x20 ? cp != 0x7F : (cp == '\n' || cp == '\r' || cp == '\t')) good += (size_t)k;
        i += (size_t)k;
    }
    return n >= 8 && good * 100 >= n * 90;
}

static yan_status check_text(const sf_rules *rs, iacc *a, const char *t, size_t len);

static yan_status encoded(const sf_rules *rs, iacc *a, const char *t, size_t len) {
    size_t budget = INJ_B64_BUDGET;
    uint8_t *dec = NULL;
    yan_status st = YAN_OK;
    for (size_t i = 0; i < len && budget > 0;) {
        if (yan_base64_value((unsigned char)t[i], true) < 0) { i++; continue; }
        /* one run; line breaks inside a long run are part of it */
        size_t j = i, nchars = 0;
        while (j < len) {
            if (yan_base64_value((unsigned char)t[j], true) >= 0) { j++; nchars++; continue; }
            if ((t[j] == '\n' || t[j] == '\r') && nchars >= 16 && j + 1 < len &&
                (yan_base64_value((unsigned char)t[j + 1], true) >= 0 || t[j + 1] == '\n')) { j++; continue; }
            break;
        }
        size_t run_end = j;
        while (j < len && t[j] == '=') j++;
        if (nchars >= INJ_B64_MIN) {
            size_t cap = nchars / 4 * 3 + 3;
            if (cap > budget) cap = budget;
            if (!dec && !(dec = yan_malloc(INJ_B64_BUDGET + 4))) return yan_fail(YAN_ERR_NOMEM, "injection: out of memory");
            size_t n = 0;
            uint32_t acc = 0;
            int bits = 0;
            for (size_t k = i; k < run_end && n < cap; k++) {
                int v = yan_base64_value((unsigned char)t[k], true);
                if (v < 0) continue;
                acc = (acc << 6) | (uint32_t)v;
                bits += 6;
                if (bits >= 8) {
                    bits -= 8;
                    dec[n++] = (uint8_t)(acc >> bits);
                }
            }
            budget -= n;
            if (looks_like_text(dec, n)) {
                iacc sub = {.rs = rs};
                if ((st = check_text(rs, &sub, (const char *)dec, n))) break;
                double w = 0;
                int best = -1;
                for (int s = 0; s < YAN_INJ_ENCODED; s++) {
                    w += sub.sum[s];
                    if (sub.have[s] && best < 0) best = s;
                }
                if (best >= 0) {
                    char what[128];
                    snprintf(what, sizeof what, "base64 of \"%s\"", sub.ev[best]);
                    fire(a, YAN_INJ_ENCODED, w < 0.6 ? 0.6 : w, what, strlen(what));
                }
            }
        }
        i = j > i ? j : i + 1;
    }
    yan_free(dec);
    return st;
}

/* Phrases and markers of one text (no base64). */
static yan_status check_text(const sf_rules *rs, iacc *a, const char *t, size_t len) {
    a->rs = rs;
    a->text = t;
    a->len = len;
    sf_scan *s;
    yan_status st = sf_scan_new(rs, on_hit, a, &s);
    if (st) return st;
    if (!(st = sf_scan_feed(s, t, len))) st = sf_scan_finish(s);
    sf_scan_free(s);
    if (st) return st;
    role_markers(a, t, len);
    return YAN_OK;
}

yan_status yan_injection_check(const yan_moderator *m, const char *text, size_t len, yan_injection_result *res) {
    if ((!text && len) || !res) return yan_fail(YAN_ERR_INVALID_ARG, "yan_injection_check: NULL argument");
    memset(res, 0, sizeof *res);
    sf_rules *own = NULL;
    const sf_rules *rs;
    yan_status st;
    if (m) {
        rs = yan_moderator_injection_rules(m);
    } else {
        if ((st = sf_rules_new(yan_injection_sections, yan_injection_n_sections, &own)) ||
            (st = sf_rules_parse(own, yan_safety_injection_rules, yan_safety_injection_rules_len, "<injection>",
                                 NULL)) ||
            (st = sf_rules_finish(own))) {
            sf_rules_free(own);
            return st;
        }
        rs = own;
    }
    iacc a;
    memset(&a, 0, sizeof a);
    st = check_text(rs, &a, text ? text : "", len);
    if (!st) st = encoded(rs, &a, text ? text : "", len);
    res->threshold = sf_rules_threshold(rs, -1);
    sf_rules_free(own);
    if (st) return st;
    double total = 0;
    size_t o = 0;
    for (int s = 0; s < YAN_INJ_COUNT; s++) {
        if (!a.have[s]) continue;
        double v = a.sum[s] > 1 ? 1 : a.sum[s];
        res->signal_scores[s] = (float)v;
        res->signals |= 1u << s;
        total += v;
        if (o < sizeof res->reason - 1) {
            int k = snprintf(res->reason + o, sizeof res->reason - o, "%s%s: \"%s\"", o ? "; " : "",
                             yan_injection_sections[s], a.ev[s]);
            if (k > 0) o += (size_t)k;
            if (o >= sizeof res->reason) o = sizeof res->reason - 1;
        }
    }
    /* a truncated reason must not end inside a UTF-8 character */
    if (o == sizeof res->reason - 1) {
        size_t n = yan_utf8_complete_prefix((const uint8_t *)res->reason, o);
        res->reason[n] = 0;
    }
    res->score = (float)(total > 1 ? 1 : total);
    res->flagged = res->score >= res->threshold - 1e-6f;
    return YAN_OK;
}
