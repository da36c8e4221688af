/* error.c — status names, the per-thread last-error message, the log sink and
 * the assertion handler. The message buffer is thread-local so that any thread
 * may call the library and read its own failure detail. */
#include "base/base.h"

#include <stdlib.h>

static _Thread_local char t_err[1024];

const char *yan_status_str(yan_status s) {
    switch (s) {
    case YAN_OK: return "ok";
    case YAN_ERR_NOMEM: return "out of memory";
    case YAN_ERR_IO: return "i/o error";
    case YAN_ERR_FORMAT: return "malformed input";
    case YAN_ERR_UNSUPPORTED: return "unsupported";
    case YAN_ERR_CONTEXT_FULL: return "context full";
    case YAN_ERR_ABORTED: return "aborted";
    case YAN_ERR_INVALID_ARG: return "invalid argument";
    case YAN_ERR_TOO_SMALL: return "buffer too small";
    case YAN_ERR_NOT_FOUND: return "not found";
    }
    return "unknown status";
}

const char *yan_last_error(void) { return t_err; }
const char *yan_version(void) { return YAN_VERSION_STRING; }
void yan_error_clear(void) { t_err[0] = 0; }

yan_status yan_fail(yan_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t_err, sizeof t_err, fmt, ap);
    va_end(ap);
    return s;
}

void yan_error_prefix(const char *prefix) {
    char tmp[sizeof t_err];
    size_t p = strlen(prefix), e = strlen(t_err);
    if (p > sizeof tmp - 3) p = sizeof tmp - 3;
    if (e > sizeof tmp - 3 - p) e = sizeof tmp - 3 - p;
    memcpy(tmp, prefix, p);
    memcpy(tmp + p, ": ", 2);
    memcpy(tmp + p + 2, t_err, e);
    tmp[p + 2 + e] = 0;
    memcpy(t_err, tmp, sizeof t_err);
}

/* The log sink is process-wide configuration, set once at start-up (like
 * llama_log_set); it is not mutated while the library runs. */
static yan_log_fn g_log_fn;
static void *g_log_ud;
static yan_log_level g_log_min = YAN_LOG_INFO;

void yan_log_set(yan_log_fn fn, void *ud, yan_log_level min_level) {
    g_log_fn = fn;
    g_log_ud = ud;
    g_log_min = min_level;
}

void yan_log(yan_log_level level, const char *fmt, ...) {
    if (!g_log_fn || level < g_log_min) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    g_log_fn(level, msg, g_log_ud);
}

void yan_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "yan: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}
