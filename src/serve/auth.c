/* auth.c — keyring, constant-time key comparison and token-bucket rate
 * limits (contract in auth.h). */
#include "serve/auth.h"

#include <ctype.h>
#include <math.h>
#include <strings.h>

/* ---------------------------------------------------------------- keys */

yan_status yan_keyring_add(yan_keyring *kr, const char *id, const char *secret, size_t len) {
    if (len == 0) return yan_fail(YAN_ERR_INVALID_ARG, "an API key is empty");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)secret[i];
        if (c <= 0x20 || c == 0x7f)
            return yan_fail(YAN_ERR_INVALID_ARG, "an API key contains a space or a control character");
    }
    yan_api_key *nk = yan_realloc(kr->keys, ((size_t)kr->n + 1) * sizeof *nk);
    if (!nk) return yan_fail(YAN_ERR_NOMEM, "out of memory for API keys");
    kr->keys = nk;
    char idbuf[32];
    if (!id || !id[0]) {
        snprintf(idbuf, sizeof idbuf, "key%d", kr->n + 1);
        id = idbuf;
    }
    yan_api_key *k = &kr->keys[kr->n];
    k->id = yan_strdup(id);
    k->secret = yan_strndup(secret, len);
    k->len = len;
    if (!k->id || !k->secret) {
        yan_free(k->id);
        yan_free(k->secret);
        return yan_fail(YAN_ERR_NOMEM, "out of memory for API keys");
    }
    kr->n++;
    return YAN_OK;
}

yan_status yan_keyring_load(yan_keyring *kr, const char *path) {
    uint8_t *data = NULL;
    size_t len = 0;
    yan_status st = yan_read_file(path, &data, &len);
    if (st) return st;
    const char *p = (const char *)data, *end = p + len;
    int line = 0, added = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        line++;
        const char *a = p, *b = e;
        while (a < b && isspace((unsigned char)*a)) a++;
        while (b > a && isspace((unsigned char)b[-1])) b--;
        p = nl ? nl + 1 : end;
        if (a == b || *a == '#') continue;
        const char *colon = memchr(a, ':', (size_t)(b - a));
        char id[128] = {0};
        if (colon) {
            size_t il = (size_t)(colon - a);
            if (il == 0 || il >= sizeof id) {
                yan_free(data);
                return yan_fail(YAN_ERR_FORMAT, "%s:%d: the key id before ':' must have 1 to 127 bytes", path, line);
            }
            memcpy(id, a, il);
            a = colon + 1;
        }
        if ((st = yan_keyring_add(kr, colon ? id : NULL, a, (size_t)(b - a)))) {
            yan_free(data);
            if (st == YAN_ERR_NOMEM) return st;
            return yan_fail(YAN_ERR_FORMAT, "%s:%d: invalid API key (empty, or with a space or a control character)",
                            path, line);
        }
        added++;
    }
    yan_free(data);
    if (!added) return yan_fail(YAN_ERR_FORMAT, "%s: no API key in the file", path);
    return YAN_OK;
}

void yan_keyring_free(yan_keyring *kr) {
    if (!kr) return;
    for (int i = 0; i < kr->n; i++) {
        if (kr->keys[i].secret) memset(kr->keys[i].secret, 0, kr->keys[i].len);
        yan_free(kr->keys[i].secret);
        yan_free(kr->keys[i].id);
    }
    yan_free(kr->keys);
    kr->keys = NULL;
    kr->n = 0;
}

bool yan_ct_equal(const void *guess, size_t guess_len, const void *secret, size_t secret_len) {
    const volatile uint8_t *g = guess, *s = secret;
    /* every byte of the secret is read once; a guess byte is read at the same
     * index (or 0 past its end), so the loop's trip count and memory pattern
     * depend on secret_len alone */
    volatile uint8_t diff = (uint8_t)(guess_len != secret_len);
    for (size_t i = 0; i < secret_len; i++) {
        uint8_t gb = i < guess_len ? g[i] : 0;
        diff |= (uint8_t)(gb ^ s[i]);
    }
    return diff == 0;
}

int yan_keyring_match(const yan_keyring *kr, const char *authorization) {
    if (!authorization) return -1;
    const char *p = authorization;
    while (*p == ' ' || *p == '\t') p++;
    if (strncasecmp(p, "bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t')) return -1;
    p += 6;
    while (*p == ' ' || *p == '\t') p++;
    size_t n = strlen(p);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
    int found = -1;
    for (int i = 0; i < kr->n; i++) /* no early exit: all keys are compared */
        if (yan_ct_equal(p, n, kr->keys[i].secret, kr->keys[i].len) && found < 0) found = i;
    return found;
}

/* --------------------------------------------------------- token buckets */

void yan_bucket_init(yan_bucket *b, double per_minute, double now) {
    b->cap = per_minute > 0 ? per_minute : 0;
    b->level = b->cap;
    b->rate = b->cap / 60.0;
    b->t = now;
}

static void refill(yan_bucket *b, double now) {
    if (now > b->t) {
        b->level += (now - b->t) * b->rate;
        if (b->level > b->cap) b->level = b->cap;
    }
    b->t = now;
}

bool yan_bucket_take(yan_bucket *b, double now, double need, double take, double *retry_s) {
    if (b->cap <= 0) return true;
    refill(b, now);
    bool ok = need > 0 ? b->level >= need : b->level > 0;
    if (ok) {
        b->level -= take;
        return true;
    }
    if (retry_s) *retry_s = ((need > 0 ? need : 0) - b->level) / b->rate;
    return false;
}

void yan_bucket_charge(yan_bucket *b, double now, double n) {
    if (b->cap <= 0) return;
    refill(b, now);
    b->level -= n;
}

yan_status yan_limiter_init(yan_limiter *l, int n_keys, double rpm, double tpm, double now) {
    memset(l, 0, sizeof *l);
    l->n = n_keys + 1;
    l->rpm_limit = rpm;
    l->tpm_limit = tpm;
    l->rpm = yan_calloc((size_t)l->n, sizeof *l->rpm);
    l->tpm = yan_calloc((size_t)l->n, sizeof *l->tpm);
    if (!l->rpm || !l->tpm) {
        yan_free(l->rpm);
        yan_free(l->tpm);
        return yan_fail(YAN_ERR_NOMEM, "out of memory for rate limits");
    }
    for (int i = 0; i < l->n; i++) {
        yan_bucket_init(&l->rpm[i], rpm, now);
        yan_bucket_init(&l->tpm[i], tpm, now);
    }
    pthread_mutex_init(&l->mu, NULL);
    return YAN_OK;
}

void yan_limiter_free(yan_limiter *l) {
    if (!l || !l->rpm) return;
    pthread_mutex_destroy(&l->mu);
    yan_free(l->rpm);
    yan_free(l->tpm);
    l->rpm = l->tpm = NULL;
}

static int slot(const yan_limiter *l, int k) { return k >= 0 && k < l->n - 1 ? k : l->n - 1; }

bool yan_limiter_admit(yan_limiter *l, int k, double now, double *retry_s, const char **which) {
    if (l->rpm_limit <= 0 && l->tpm_limit <= 0) return true;
    int i = slot(l, k);
    double r = 0;
    bool ok = true;
    pthread_mutex_lock(&l->mu);
    if (!yan_bucket_take(&l->tpm[i], now, 0, 0, &r)) {
        ok = false;
        if (which) *which = "tokens";
    } else if (!yan_bucket_take(&l->rpm[i], now, 1, 1, &r)) {
        ok = false;
        if (which) *which = "requests";
    }
    pthread_mutex_unlock(&l->mu);
    if (!ok && retry_s) *retry_s = r < 1 ? 1 : ceil(r);
    return ok;
}

void yan_limiter_tokens(yan_limiter *l, int k, double now, double n) {
    if (l->tpm_limit <= 0 || n <= 0) return;
    pthread_mutex_lock(&l->mu);
    yan_bucket_charge(&l->tpm[slot(l, k)], now, n);
    pthread_mutex_unlock(&l->mu);
}
