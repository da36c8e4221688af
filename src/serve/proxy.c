/* proxy.c — upstream calls over libcurl, one thread each (see proxy.h). The
 * curl callbacks and the reader meet in a byte buffer under a mutex: the
 * write callback appends (waiting while 1 MiB is unread), the reader takes;
 * the transfer's progress callback aborts it once the reader has gone. */
#include "serve/proxy.h"

#include <curl/curl.h>
#include <ctype.h>
#include <pthread.h>
#include <strings.h>
#include <time.h>

#define UNREAD_MAX (1u << 20)

struct yan_proxy {
    char *base;      /* without a trailing '/' */
    char *auth;      /* "Authorization: Bearer ..." or NULL */
    double timeout;  /* seconds for a whole transfer */
};

struct yan_upstream_call {
    yan_proxy *p;
    CURL *curl;
    struct curl_slist *hdrs;
    char *url;
    char *body;
    size_t body_len;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    yan_buf buf;           /* unread body bytes from off on */
    size_t off;
    bool headers_done, finished, aborted;
    int status;
    char ctype[128];
    char err[CURL_ERROR_SIZE + 64];
    CURLcode rc;
};

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

yan_status yan_proxy_new(const char *base_url, const char *key_file, double timeout_s, yan_proxy **out) {
    *out = NULL;
    if (!base_url || (strncmp(base_url, "http://", 7) && strncmp(base_url, "https://", 8)))
        return yan_fail(YAN_ERR_INVALID_ARG, "--upstream must be an http:// or https:// URL (got '%s')",
                        base_url ? base_url : "");
    pthread_once(&g_curl_once, curl_init_once);
    yan_proxy *p = yan_calloc(1, sizeof *p);
    if (!p) return yan_fail(YAN_ERR_NOMEM, "out of memory");
    p->base = yan_strdup(base_url);
    p->timeout = timeout_s > 0 ? timeout_s : 600;
    if (!p->base) goto oom;
    size_t bl = strlen(p->base);
    while (bl && p->base[bl - 1] == '/') p->base[--bl] = 0;
    if (key_file) {
        uint8_t *data = NULL;
        size_t len = 0;
        yan_status st = yan_read_file(key_file, &data, &len);
        if (st) {
            yan_proxy_free(p);
            return st;
        }
        const char *a = (const char *)data, *end = a + len;
        while (a < end && isspace((unsigned char)*a)) a++;
        const char *b = a;
        while (b < end && !isspace((unsigned char)*b)) b++;
        if (a == b) {
            yan_free(data);
            yan_proxy_free(p);
            return yan_fail(YAN_ERR_FORMAT, "%s: no key in the upstream key file", key_file);
        }
        yan_buf h = {0};
        yan_buf_printf(&h, "Authorization: Bearer %.*s", (int)(b - a), a);
        memset(data, 0, len);
        yan_free(data);
        if (h.oom) goto oom;
        p->auth = h.data;
    }
    *out = p;
    return YAN_OK;
oom:
    yan_proxy_free(p);
    return yan_fail(YAN_ERR_NOMEM, "out of memory");
}

void yan_proxy_free(yan_proxy *p) {
    if (!p) return;
    if (p->auth) memset(p->auth, 0, strlen(p->auth));
    yan_free(p->auth);
    yan_free(p->base);
    yan_free(p);
}

const char *yan_proxy_url(const yan_proxy *p) { return p->base; }

/* ------------------------------------------------------------ callbacks */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
    yan_upstream_call *c = ud;
    size_t n = size * nmemb;
    pthread_mutex_lock(&c->mu);
    while (!c->aborted && c->buf.len - c->off > UNREAD_MAX) pthread_cond_wait(&c->cv, &c->mu);
    if (c->aborted) {
        pthread_mutex_unlock(&c->mu);
        return 0; /* makes curl fail the transfer */
    }
    if (c->off == c->buf.len) c->off = c->buf.len = 0;
    bool ok = yan_buf_append(&c->buf, ptr, n);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return ok ? n : 0;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud) {
    yan_upstream_call *c = ud;
    size_t n = size * nmemb;
    if (n >= 13 && !strncasecmp(ptr, "content-type:", 13)) {
        const char *v = ptr + 13;
        size_t vl = n - 13;
        while (vl && isspace((unsigned char)*v)) v++, vl--;
        while (vl && isspace((unsigned char)v[vl - 1])) vl--;
        if (vl >= sizeof c->ctype) vl = sizeof c->ctype - 1;
        pthread_mutex_lock(&c->mu);
        memcpy(c->ctype, v, vl);
        c->ctype[vl] = 0;
        pthread_mutex_unlock(&c->mu);
    } else if (n <= 2 && (ptr[0] == '\r' || ptr[0] == '\n')) { /* end of a header block */
        long code = 0;
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 200) {
            pthread_mutex_lock(&c->mu);
            c->status = (int)code;
            c->headers_done = true;
            pthread_cond_broadcast(&c->cv);
            pthread_mutex_unlock(&c->mu);
        }
    }
    return n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
    (void)dt, (void)dn, (void)ut, (void)un;
    yan_upstream_call *c = ud;
    pthread_mutex_lock(&c->mu);
    bool stop = c->aborted;
    pthread_mutex_unlock(&c->mu);
    return stop;
}

static void *call_main(void *arg) {
    yan_upstream_call *c = arg;
    CURLcode rc = curl_easy_perform(c->curl);
    long code = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
    pthread_mutex_lock(&c->mu);
    c->rc = rc;
    if (rc != CURLE_OK && !c->err[0]) snprintf(c->err, sizeof c->err, "%s", curl_easy_strerror(rc));
    if (!c->headers_done && rc == CURLE_OK) {
        c->status = (int)code;
        c->headers_done = true;
    }
    c->finished = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ------------------------------------------------------------------ calls */

yan_upstream_call *yan_upstream_start(yan_proxy *p, const char *method, const char *path, const char *body,
                                      size_t len, const char *request_id) {
    yan_upstream_call *c = yan_calloc(1, sizeof *c);
    if (!c) return NULL;
    c->p = p;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    yan_buf u = {0};
    yan_buf_printf(&u, "%s%s", p->base, path);
    c->url = u.data;
    if (body && len) {
        c->body = yan_malloc(len);
        if (c->body) memcpy(c->body, body, len);
        c->body_len = len;
    }
    c->curl = curl_easy_init();
    if (u.oom || !c->curl || (len && !c->body)) goto fail;
    CURL *h = c->curl;
    curl_easy_setopt(h, CURLOPT_URL, c->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(p->timeout * 1000));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->err);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    if (!strcmp(method, "POST")) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body ? c->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
    }
    c->hdrs = curl_slist_append(c->hdrs, "Content-Type: application/json");
    c->hdrs = curl_slist_append(c->hdrs, "Expect:");
    if (p->auth) c->hdrs = curl_slist_append(c->hdrs, p->auth);
    if (request_id) {
        char rid[128];
        snprintf(rid, sizeof rid, "X-Request-Id: %s", request_id);
        c->hdrs = curl_slist_append(c->hdrs, rid);
    }
    if (!c->hdrs) goto fail;
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->hdrs);
    if (pthread_create(&c->thread, NULL, call_main, c) != 0) goto fail;
    c->started = true;
    return c;
fail:
    yan_upstream_free(c);
    return NULL;
}

static void deadline_ts(struct timespec *ts, int ms) {
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) ts->tv_sec++, ts->tv_nsec -= 1000000000L;
}

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int yan_upstream_headers(yan_upstream_call *c, double deadline, char *ctype, size_t ctype_cap, char *err,
                         size_t err_cap) {
    pthread_mutex_lock(&c->mu);
    while (!c->headers_done && !c->finished && mono() < deadline) {
        struct timespec ts;
        deadline_ts(&ts, 100);
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    int st = c->headers_done && c->status > 0 ? c->status : -1;
    if (st < 0) snprintf(err, err_cap, "%s", c->err[0] ? c->err : "no answer from the upstream in time");
    snprintf(ctype, ctype_cap, "%s", c->ctype);
    pthread_mutex_unlock(&c->mu);
    return st;
}

ssize_t yan_upstream_read(yan_upstream_call *c, char *buf, size_t max, int ms) {
    pthread_mutex_lock(&c->mu);
    if (c->off == c->buf.len && !c->finished) {
        struct timespec ts;
        deadline_ts(&ts, ms);
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    ssize_t r;
    if (c->off < c->buf.len) {
        size_t n = c->buf.len - c->off;
        if (n > max) n = max;
        memcpy(buf, c->buf.data + c->off, n);
        c->off += n;
        r = (ssize_t)n;
        pthread_cond_broadcast(&c->cv);
    } else if (c->finished) {
        r = c->rc == CURLE_OK ? -1 : -2;
    } else {
        r = 0;
    }
    pthread_mutex_unlock(&c->mu);
    return r;
}

void yan_upstream_free(yan_upstream_call *c) {
    if (!c) return;
    if (c->started) {
        pthread_mutex_lock(&c->mu);
        c->aborted = true;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->thread, NULL);
    }
    if (c->curl) curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->hdrs);
    yan_buf_free(&c->buf);
    yan_free(c->url);
    yan_free(c->body);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    yan_free(c);
}
