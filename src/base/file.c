/* file.c — whole-file reads, read-only mappings and atomic writes.
 * Atomic write protocol: write "<path>.tmp.<pid>.<n>", fflush, fsync, rename
 * over the target, fsync the directory. A failure at any step removes the
 * temporary and leaves the old file untouched. */
#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

yan_status yan_read_file(const char *path, uint8_t **out, size_t *len) {
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return yan_fail(YAN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    yan_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (!yan_buf_append(&b, chunk, n)) break;
    bool err = ferror(f) != 0;
    fclose(f);
    if (b.oom) {
        yan_buf_free(&b);
        return yan_fail(YAN_ERR_NOMEM, "%s: out of memory reading the file", path);
    }
    if (err) {
        yan_buf_free(&b);
        return yan_fail(YAN_ERR_IO, "%s: read error", path);
    }
    if (!b.data && !yan_buf_reserve(&b, 0)) return yan_fail(YAN_ERR_NOMEM, "%s: out of memory", path);
    b.data[b.len] = 0;
    *out = (uint8_t *)b.data;
    *len = b.len;
    return YAN_OK;
}

/* Open a regular file for reading: *fd and its size. An empty file is
 * answered here (m becomes a valid empty view, *fd = -1). */
static yan_status open_regular(const char *path, yan_mmap *m, int *fd_out, size_t *len) {
    m->data = NULL;
    m->len = 0;
    m->map_len = 0;
    *fd_out = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return yan_fail(YAN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return yan_fail(YAN_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return yan_fail(YAN_ERR_IO, "%s: not a regular file", path);
    }
    *len = (size_t)st.st_size;
    if (*len == 0) {
        close(fd);
        m->data = (const uint8_t *)"";
        return YAN_OK;
    }
    *fd_out = fd;
    return YAN_OK;
}

yan_status yan_mmap_open(const char *path, yan_mmap *m) {
    int fd;
    size_t len;
    yan_status s = open_regular(path, m, &fd, &len);
    if (s || fd < 0) return s;
    void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return yan_fail(YAN_ERR_IO, "%s: cannot map: %s", path, strerror(e));
    m->data = p;
    m->len = len;
    return YAN_OK;
}

/* The copy is read by several threads at once (from the page cache, one
 * thread alone does not reach memory bandwidth), in CHUNK pieces. */
#define COPY_CHUNK ((size_t)32 << 20)
typedef struct {
    int fd;
    uint8_t *p;
    size_t len;
    _Atomic int err; /* first errno seen (EIO for a short file) */
    _Atomic size_t err_off;
} copy_job;

static void copy_chunk(void *ud, int i) {
    copy_job *j = ud;
    size_t off = (size_t)i * COPY_CHUNK, end = off + COPY_CHUNK < j->len ? off + COPY_CHUNK : j->len;
    while (off < end && !atomic_load_explicit(&j->err, memory_order_relaxed)) {
        ssize_t r = pread(j->fd, j->p + off, end - off, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int zero = 0;
            if (atomic_compare_exchange_strong(&j->err, &zero, r < 0 ? errno : EIO)) atomic_store(&j->err_off, off);
            return;
        }
        off += (size_t)r;
    }
}

/* Bytes of free memory in blocks of 2 MiB or more (/proc/buddyinfo, orders
 * 9 and up of 4 KiB pages): huge pages that can be had without compacting
 * memory, which can stall a fault for seconds. 0 when unknown. */
static size_t free_huge_bytes(void) {
    FILE *f = fopen("/proc/buddyinfo", "r");
    if (!f) return 0;
    char line[512];
    size_t bytes = 0;
    while (fgets(line, sizeof line, f)) {
        char *p = strstr(line, "zone");
        if (!p) continue;
        p += 4;
        while (*p == ' ') p++;
        while (*p && *p != ' ') p++; /* the zone's name */
        for (int order = 0;; order++) {
            char *end;
            unsigned long long n = strtoull(p, &end, 10);
            if (end == p) break;
            if (order >= 9 && order < 40) bytes += (size_t)n << (order + 12);
            p = end;
        }
    }
    fclose(f);
    return bytes;
}

yan_status yan_mmap_copy(const char *path, yan_mmap *m) {
    int fd;
    size_t len;
    yan_status s = open_regular(path, m, &fd, &len);
    if (s || fd < 0) return s;
    /* 2 MiB-aligned anonymous memory, advised for huge pages before it is
     * touched (so that the reads fault in whole huge pages) when the free
     * memory holds enough of them; else ordinary pages, which stream about
     * as fast from fresh memory but fault in more slowly */
    const size_t huge = (size_t)2 << 20;
    size_t map_len = (len + huge - 1) / huge * huge, total = map_len + huge;
    uint8_t *raw = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) {
        close(fd);
        return yan_fail(YAN_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, len);
    }
    uint8_t *p = (uint8_t *)(((uintptr_t)raw + huge - 1) & ~(uintptr_t)(huge - 1));
    if (p > raw) munmap(raw, (size_t)(p - raw));
    if (raw + total > p + map_len) munmap(p + map_len, (size_t)(raw + total - (p + map_len)));
    if (free_huge_bytes() >= map_len) madvise(p, map_len, MADV_HUGEPAGE);
    copy_job j = {fd, p, len, 0, 0};
    size_t chunks = (len + COPY_CHUNK - 1) / COPY_CHUNK;
    int threads = yan_threads_resolve(0);
    if (threads > 4) threads = 4;
    yan_parallel_for(threads, (int)chunks, copy_chunk, &j);
    close(fd);
    if (j.err) {
        munmap(p, map_len);
        return yan_fail(YAN_ERR_IO, "%s: read failed at byte %zu: %s", path, (size_t)j.err_off, strerror(j.err));
    }
    mprotect(p, map_len, PROT_READ);
    m->data = p;
    m->len = len;
    m->map_len = map_len;
    return YAN_OK;
}

bool yan_copy_fits(size_t len) {
    /* transparent huge pages off: the copy brings nothing */
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (f) {
        char line[128] = "";
        bool never = fgets(line, sizeof line, f) && strstr(line, "[never]");
        fclose(f);
        if (never) return false;
    }
    f = fopen("/proc/meminfo", "r");
    if (!f) return false;
    char line[256];
    unsigned long long kb = 0;
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) found = sscanf(line, "MemAvailable: %llu kB", &kb) == 1;
    fclose(f);
    return found && (unsigned long long)len / 1024 <= kb / 2;
}

void yan_mmap_close(yan_mmap *m) {
    if (m->data && m->len) munmap((void *)m->data, m->map_len ? m->map_len : m->len);
    m->data = NULL;
    m->len = 0;
    m->map_len = 0;
}

static _Atomic unsigned g_tmp_seq; /* uniqueness of temporary names only */

static void fsync_dir_of(const char *path) {
    char *copy = yan_strdup(path);
    if (!copy) return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    yan_free(copy);
}

yan_status yan_afile_open(yan_afile *af, const char *path) {
    memset(af, 0, sizeof *af);
    yan_buf tmp = {0};
    yan_buf_printf(&tmp, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&g_tmp_seq, 1));
    af->path = yan_strdup(path);
    if (tmp.oom || !af->path) {
        yan_buf_free(&tmp);
        yan_free(af->path);
        af->path = NULL;
        return yan_fail(YAN_ERR_NOMEM, "%s: out of memory", path);
    }
    af->tmp = tmp.data;
    af->f = fopen(af->tmp, "wb");
    if (!af->f) {
        yan_status s = yan_fail(YAN_ERR_IO, "%s: cannot create %s: %s", path, af->tmp, strerror(errno));
        yan_free(af->tmp);
        yan_free(af->path);
        memset(af, 0, sizeof *af);
        return s;
    }
    return YAN_OK;
}

yan_status yan_afile_write(yan_afile *af, const void *p, size_t n) {
    if (af->failed) return YAN_ERR_IO;
    if (n && fwrite(p, 1, n, af->f) != n) {
        af->failed = true;
        return yan_fail(YAN_ERR_IO, "%s: write failed: %s", af->path, strerror(errno));
    }
    return YAN_OK;
}

void yan_afile_abort(yan_afile *af) {
    if (af->f) fclose(af->f);
    if (af->tmp) unlink(af->tmp);
    yan_free(af->tmp);
    yan_free(af->path);
    memset(af, 0, sizeof *af);
}

yan_status yan_afile_commit(yan_afile *af) {
    if (!af->f) return yan_fail(YAN_ERR_INVALID_ARG, "atomic file is not open");
    yan_status s = YAN_OK;
    if (af->failed) s = YAN_ERR_IO;
    else if (fflush(af->f) != 0 || fsync(fileno(af->f)) != 0)
        s = yan_fail(YAN_ERR_IO, "%s: flush failed: %s", af->path, strerror(errno));
    if (fclose(af->f) != 0 && s == YAN_OK) s = yan_fail(YAN_ERR_IO, "%s: close failed: %s", af->path, strerror(errno));
    af->f = NULL;
    if (s == YAN_OK && rename(af->tmp, af->path) != 0)
        s = yan_fail(YAN_ERR_IO, "%s: rename failed: %s", af->path, strerror(errno));
    if (s == YAN_OK) fsync_dir_of(af->path);
    else unlink(af->tmp);
    yan_free(af->tmp);
    yan_free(af->path);
    memset(af, 0, sizeof *af);
    return s;
}

yan_status yan_write_atomic(const char *path, const void *data, size_t len) {
    yan_afile af;
    yan_status s = yan_afile_open(&af, path);
    if (s) return s;
    if ((s = yan_afile_write(&af, data, len)) != YAN_OK) {
        yan_afile_abort(&af);
        return s;
    }
    return yan_afile_commit(&af);
}
