/* log.h — the server's structured logs: one JSON object per line on stderr
 * ({"time":"2024-05-01T12:00:00.123Z","level":"info","event":"request",
 * "request_id":...}) and the audit log (--audit-log FILE: one JSON line per
 * API request: time, request id, key id, model, endpoint, token counts,
 * moderation result, status; prompt and completion text only with
 * --audit-log-text). API key secrets are never written: only their ids.
 *
 * Lines are built as cJSON objects and written whole under a mutex, so lines
 * from many threads never interleave. */
#ifndef YAN_SERVE_LOG_H
#define YAN_SERVE_LOG_H

#include "base/base.h"

#include <cjson/cJSON.h>
#include <pthread.h>

typedef struct {
    pthread_mutex_t mu;
    FILE *out;              /* stderr */
    yan_log_level min;      /* lines below are dropped */
    FILE *audit;            /* NULL = no audit log */
    bool audit_text;
} yan_slog;

/* Open the audit log (appending) when path is non-NULL. */
yan_status yan_slog_init(yan_slog *l, yan_log_level min, const char *audit_path, bool audit_text);
void yan_slog_free(yan_slog *l);

/* Write obj (adding "time", "level" and "event" first) and delete it. */
void yan_slog_emit(yan_slog *l, yan_log_level level, const char *event, cJSON *obj);
/* A line with just a message. */
void yan_slog_msg(yan_slog *l, yan_log_level level, const char *event, const char *fmt, ...) YAN_PRINTF(4, 5);
/* Write obj to the audit log (adding "time") and delete it. */
void yan_slog_audit(yan_slog *l, cJSON *obj);

/* Library log sink (yan_log_set) that writes through a yan_slog. */
void yan_slog_sink(yan_log_level level, const char *msg, void *ud);

/* ISO 8601 UTC time with milliseconds into buf[32]. */
void yan_iso_time(char *buf, size_t cap);

#endif /* YAN_SERVE_LOG_H */
