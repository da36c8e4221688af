/* sse.c — SSE framing, UTF-8 sanitising, the stop-string filter and the
 * output moderation's hold-back rule (see sse.h). The stop filter keeps only the text that could still be the start
 * of a stop string: memory is bounded by the longest stop string plus one
 * piece. */
#include "serve/sse.h"

/* ------------------------------------------------------------------- SSE */

bool yan_sse_event(yan_buf *out, const char *p, size_t n) {
    for (size_t i = 0;;) {
        size_t j = i;
        while (j < n && p[j] != '\n' && p[j] != '\r') j++;
        yan_buf_append(out, "data: ", 6);
        yan_buf_append(out, p + i, j - i);
        yan_buf_putc(out, '\n');
        if (j >= n) break;
        if (p[j] == '\r' && j + 1 < n && p[j + 1] == '\n') j++; /* CRLF is one break */
        i = j + 1;
    }
    yan_buf_putc(out, '\n');
    return !out->oom;
}

bool yan_sse_comment(yan_buf *out, const char *text) {
    yan_buf_append(out, ": ", 2);
    for (const char *t = text; *t; t++)
        if (*t != '\n' && *t != '\r') yan_buf_putc(out, *t);
    yan_buf_append(out, "\n\n", 2);
    return !out->oom;
}

bool yan_sse_done(yan_buf *out) { return yan_buf_puts(out, "data: [DONE]\n\n"); }

/* ----------------------------------------------------------------- UTF-8 */

/* Length of the valid UTF-8 character at s[0..n), or 0 when invalid or cut
 * (NUL counts as invalid: C-string JSON writers cannot carry it). */
static size_t utf8_char(const uint8_t *s, size_t n) {
    uint8_t c = s[0];
    if (c < 0x80) return c != 0;
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) len = 3, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) len = 3;
    else if (c == 0xED) len = 3, hi = 0x9F;
    else if (c == 0xF0) len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) len = 4, hi = 0x8F;
    else return 0;
    if (n < len) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t k = 2; k < len; k++)
        if (s[k] < 0x80 || s[k] > 0xBF) return 0;
    return len;
}

bool yan_utf8_valid(const char *p, size_t n) {
    const uint8_t *s = (const uint8_t *)p;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_char(s + i, n - i);
        if (!l) return false;
        i += l;
    }
    return true;
}

bool yan_utf8_sanitize(yan_buf *out, const char *p, size_t n) {
    const uint8_t *s = (const uint8_t *)p;
    size_t i = 0, run = 0; /* s[run..i) is valid and not yet copied */
    while (i < n) {
        size_t l = utf8_char(s + i, n - i);
        if (l) {
            i += l;
            continue;
        }
        yan_buf_append(out, p + run, i - run);
        yan_buf_append(out, "\xEF\xBF\xBD", 3);
        i++;
        run = i;
    }
    yan_buf_append(out, p + run, n - run);
    return !out->oom;
}

/* ------------------------------------------------------------ stop strings */

size_t yan_stop_holdback(const char *const *stop, int n_stop, const char *s, size_t n) {
    size_t best = 0;
    for (int i = 0; i < n_stop; i++) {
        const char *st = stop[i];
        if (!st || !st[0]) continue;
        size_t sl = strlen(st);
        for (size_t k = (sl - 1 < n ? sl - 1 : n); k > best; k--)
            if (!memcmp(s + n - k, st, k)) {
                best = k;
                break;
            }
    }
    return best;
}

size_t yan_stop_find(const char *const *stop, int n_stop, const char *s, size_t n) {
    size_t first = n;
    for (int i = 0; i < n_stop; i++) {
        const char *st = stop[i];
        if (!st || !st[0]) continue;
        size_t sl = strlen(st);
        for (size_t j = 0; j + sl <= n && j < first; j++)
            if (!memcmp(s + j, st, sl)) {
                first = j;
                break;
            }
    }
    return first;
}

void yan_stopper_init(yan_stopper *s, const char *const *stop, int n_stop) {
    memset(s, 0, sizeof *s);
    s->stop = stop;
    s->n_stop = n_stop;
}

void yan_stopper_free(yan_stopper *s) {
    if (s) yan_buf_free(&s->pending);
}

/* Move pending[0..k) to out and keep the rest. */
static bool release(yan_stopper *s, size_t k, yan_buf *out) {
    if (k && !yan_buf_append(out, s->pending.data, k)) return false;
    memmove(s->pending.data, s->pending.data + k, s->pending.len - k);
    s->pending.len -= k;
    s->pending.data[s->pending.len] = 0;
    return true;
}

bool yan_stopper_push(yan_stopper *s, const char *p, size_t n, yan_buf *out) {
    if (s->stopped) return true;
    if (!yan_buf_append(&s->pending, p, n)) return false;
    if (!s->pending.data) return true; /* nothing held and nothing pushed */
    size_t at = yan_stop_find(s->stop, s->n_stop, s->pending.data, s->pending.len);
    if (at < s->pending.len) {
        bool ok = release(s, at, out);
        s->stopped = true;
        s->pending.len = 0;
        s->pending.data[0] = 0;
        return ok;
    }
    return release(s, s->pending.len - yan_stop_holdback(s->stop, s->n_stop, s->pending.data, s->pending.len), out);
}

bool yan_stopper_flush(yan_stopper *s, yan_buf *out) {
    if (s->stopped || !s->pending.len) return true;
    return release(s, s->pending.len, out);
}

/* ------------------------------------------------ moderation hold-back */

size_t yan_filter_release(const char *p, size_t len) {
    size_t n = len;
    while (n > 0) {
        unsigned char ch = (unsigned char)p[n - 1];
        if (ch <= ' ' || (ch < 0x80 && !((ch | 32) >= 'a' && (ch | 32) <= 'z') && !(ch >= '0' && ch <= '9'))) break;
        n--;
    }
    if (n == 0 && len > 64) {
        n = len - 16;
        while (n > 0 && ((unsigned char)p[n] & 0xC0) == 0x80) n--; /* a character boundary */
    }
    return n;
}
