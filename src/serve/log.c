/* log.c — JSON-line logs and the audit log (see log.h). */
#include "serve/log.h"

#include <stdarg.h>
#include <time.h>

void yan_iso_time(char *buf, size_t cap) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char base[24];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, cap, "%s.%03ldZ", base, ts.tv_nsec / 1000000L);
}

yan_status yan_slog_init(yan_slog *l, yan_log_level min, const char *audit_path, bool audit_text) {
    memset(l, 0, sizeof *l);
    l->out = stderr;
    l->min = min;
    l->audit_text = audit_text;
    if (audit_path) {
        l->audit = fopen(audit_path, "a");
        if (!l->audit) return yan_fail(YAN_ERR_IO, "%s: cannot open the audit log for appending", audit_path);
    }
    pthread_mutex_init(&l->mu, NULL);
    return YAN_OK;
}

void yan_slog_free(yan_slog *l) {
    if (!l) return;
    if (l->audit) fclose(l->audit);
    l->audit = NULL;
    pthread_mutex_destroy(&l->mu);
}

static const char *level_name(yan_log_level lv) {
    switch (lv) {
    case YAN_LOG_DEBUG: return "debug";
    case YAN_LOG_INFO: return "info";
    case YAN_LOG_WARN: return "warn";
    default: return "error";
    }
}

/* Print obj as one line to f with time (and level/event) in front. */
static void write_line(yan_slog *l, FILE *f, const char *level, const char *event, cJSON *obj) {
    char t[40];
    yan_iso_time(t, sizeof t);
    cJSON *line = cJSON_CreateObject();
    if (!line) return;
    cJSON_AddStringToObject(line, "time", t);
    if (level) cJSON_AddStringToObject(line, "level", level);
    if (event) cJSON_AddStringToObject(line, "event", event);
    if (obj) { /* move obj's members after the header fields */
        cJSON *it = obj->child;
        while (it) {
            cJSON *next = it->next;
            cJSON *d = cJSON_DetachItemViaPointer(obj, it);
            cJSON_AddItemToObject(line, d->string, d); /* takes the key along */
            it = next;
        }
    }
    char *s = cJSON_PrintUnformatted(line);
    cJSON_Delete(line);
    if (!s) return;
    pthread_mutex_lock(&l->mu);
    fputs(s, f);
    fputc('\n', f);
    fflush(f);
    pthread_mutex_unlock(&l->mu);
    cJSON_free(s);
}

void yan_slog_emit(yan_slog *l, yan_log_level level, const char *event, cJSON *obj) {
    if (level >= l->min) write_line(l, l->out, level_name(level), event, obj);
    cJSON_Delete(obj);
}

void yan_slog_msg(yan_slog *l, yan_log_level level, const char *event, const char *fmt, ...) {
    if (level < l->min) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    if (!o) return;
    cJSON_AddStringToObject(o, "msg", msg);
    yan_slog_emit(l, level, event, o);
}

void yan_slog_audit(yan_slog *l, cJSON *obj) {
    if (l->audit) write_line(l, l->audit, NULL, NULL, obj);
    cJSON_Delete(obj);
}

void yan_slog_sink(yan_log_level level, const char *msg, void *ud) {
    yan_slog *l = ud;
    cJSON *o = cJSON_CreateObject();
    if (!o) return;
    cJSON_AddStringToObject(o, "msg", msg);
    yan_slog_emit(l, level, "library", o);
}
