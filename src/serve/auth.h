/* auth.h — API keys and per-key rate limits for the server.
 *
 * Keys: a keyring holds (id, secret) pairs from --api-key (ids "key1",
 * "key2", ...) and --api-key-file (one key a line, "id:secret" or just the
 * secret; blank lines and lines starting with '#' are skipped). A request's
 * "Authorization: Bearer <secret>" is compared with every key in constant
 * time (the time depends on the secrets' lengths only, never on where a guess
 * differs, and every key is compared). Logs name a key by its id, never by
 * its secret.
 *
 * Rate limits: token buckets, one per key (plus one for requests without a
 * key when none are configured): requests per minute and tokens per minute
 * (prompt + completion). A request is let in when its key has a whole
 * request token and a positive token balance; tokens are charged as they
 * are used (the balance may go negative, which delays the next request).
 * The refusal says when to retry (the Retry-After header).
 *
 * Thread-safety: a keyring is read-only once the server starts; the limiter
 * has its own mutex. */
#ifndef YAN_SERVE_AUTH_H
#define YAN_SERVE_AUTH_H

#include "base/base.h"

#include <pthread.h>

typedef struct {
    char *id;
    char *secret;
    size_t len;
} yan_api_key;

typedef struct {
    yan_api_key *keys;
    int n;
} yan_keyring;

/* Add a key (copied). id NULL = "key<N>". Errors: INVALID_ARG (empty secret,
 * or one with whitespace or control bytes), NOMEM. */
yan_status yan_keyring_add(yan_keyring *kr, const char *id, const char *secret, size_t len);
/* Add the keys of a file (format above). Errors name the file and line. */
yan_status yan_keyring_load(yan_keyring *kr, const char *path);
void yan_keyring_free(yan_keyring *kr);

/* Constant-time equality of a guess with a secret: the time depends on
 * secret_len only. */
bool yan_ct_equal(const void *guess, size_t guess_len, const void *secret, size_t secret_len);

/* The index of the key an Authorization header value carries
 * ("Bearer <secret>", scheme case-insensitive), or -1. Every key is
 * compared, whatever matches. */
int yan_keyring_match(const yan_keyring *kr, const char *authorization);

typedef struct {
    double level;   /* tokens in the bucket (may go negative for debts) */
    double cap;     /* bucket size = the per-minute limit */
    double rate;    /* refill per second = cap / 60 */
    double t;       /* time of the last refill (seconds, monotonic) */
} yan_bucket;

/* A bucket with a per-minute limit (0 = unlimited), full at time now. */
void yan_bucket_init(yan_bucket *b, double per_minute, double now);
/* Refill to now; then, if the level is at least `need` (need > 0) or
 * positive (need == 0), take `take` and return true. Otherwise return false
 * and set *retry_s to the seconds until it would be. Unlimited buckets
 * always succeed. */
bool yan_bucket_take(yan_bucket *b, double now, double need, double take, double *retry_s);
/* Charge n more (a debt is allowed). */
void yan_bucket_charge(yan_bucket *b, double now, double n);

typedef struct {
    pthread_mutex_t mu;
    int n;                 /* buckets: one per key + one anonymous */
    yan_bucket *rpm, *tpm;
    double rpm_limit, tpm_limit;
} yan_limiter;

yan_status yan_limiter_init(yan_limiter *l, int n_keys, double rpm, double tpm, double now);
void yan_limiter_free(yan_limiter *l);
/* Admit one request of key k (-1 = anonymous). False with *retry_s (>= 1,
 * whole seconds) when a limit is reached; *which is "requests" or "tokens". */
bool yan_limiter_admit(yan_limiter *l, int k, double now, double *retry_s, const char **which);
/* Charge n tokens to key k. */
void yan_limiter_tokens(yan_limiter *l, int k, double now, double n);

#endif /* YAN_SERVE_AUTH_H */
