/* common.c: thread-local error records, the log line format, checked allocation and atomic file commits.
 * Everything that fails in libipr ends up here so that a CLI can print one precise message. */
#define _POSIX_C_SOURCE 200809L
#include "ipr/common.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <libgen.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ipr/clock.h"

#define IPR_ERR_CAP 2048

static _Thread_local char g_err_msg[IPR_ERR_CAP];
static _Thread_local char g_err_origin[256];
static _Thread_local int g_err_storage; /* the recorded error is a storage error (ipr_error_is_storage) */
static int g_rank = 0;
static ipr_log_level g_log_level = IPR_LOG_INFO;

void ipr_set_rank(int rank) { g_rank = rank; }
void ipr_log_set_level(ipr_log_level level) { g_log_level = level; }

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

void ipr_error_set(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err_msg, sizeof g_err_msg, fmt, ap);
    va_end(ap);
    snprintf(g_err_origin, sizeof g_err_origin, "%s:%d, rank %d", base_name(file), line, g_rank);
    g_err_storage = 0;
}

int ipr_error_is_storage(void) { return g_err_storage; }

void ipr_error_note_errno(int e) {
    if (e == ENOSPC || e == EDQUOT || e == EIO || e == EFBIG || e == EROFS) g_err_storage = 1;
}

void ipr_error_context(const char *fmt, ...) {
    char joined[2 * IPR_ERR_CAP + 4];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(joined, IPR_ERR_CAP, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    size_t at = strlen(joined);
    memcpy(joined + at, ": ", 3);
    memcpy(joined + at + 2, g_err_msg, strlen(g_err_msg) + 1);
    memcpy(g_err_msg, joined, IPR_ERR_CAP - 1);
    g_err_msg[IPR_ERR_CAP - 1] = '\0';
}

const char *ipr_error_message(void) { return g_err_msg; }
const char *ipr_error_origin(void) { return g_err_origin; }
void ipr_error_clear(void) {
    g_err_msg[0] = '\0';
    g_err_origin[0] = '\0';
    g_err_storage = 0;
}

void ipr_error_print(const char *prefix) {
    fprintf(stderr, "%s: error: %s", prefix ? prefix : "ipr",
            g_err_msg[0] ? g_err_msg : "unknown failure (no error recorded)");
    if (g_err_origin[0]) fprintf(stderr, " (at %s)", g_err_origin);
    fputc('\n', stderr);
}

void ipr_log(ipr_log_level level, const char *fmt, ...) {
    static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    if (level < g_log_level) return;
    char stamp[32];
    ipr_clock_utc_stamp((int64_t)ipr_clock_wall_s(), stamp, sizeof stamp, 0);
    char msg[IPR_ERR_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s %-5s r%d %s\n", stamp, names[level], g_rank, msg);
}

/* Walk the HDF5 error stack and keep its innermost description: "unable to open file", "truncated
 * file: eof = ...", which is what tells a user why their file is bad. */
static herr_t h5_walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
    char *out = data;
    if (n == 0 && e && e->desc) snprintf(out, 512, "%s", e->desc);
    return 0;
}

void ipr_h5_error_set(const char *file, int line, const char *expr) {
    const int e = errno; /* what the failed call's last system call said (HDF5 leaves it alone) */
    char detail[512] = "";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_walk_cb, detail);
    H5Eclear2(H5E_DEFAULT);
    if (detail[0])
        ipr_error_set(file, line, "HDF5 call failed: %s (%s)", expr, detail);
    else
        ipr_error_set(file, line, "HDF5 call failed: %s", expr);
    ipr_error_note_errno(e);
}

void ipr_errno_set(const char *file, int line, const char *what) {
    int e = errno;
    ipr_error_set(file, line, "%s: %s", what, e ? strerror(e) : "failed");
    ipr_error_note_errno(e);
}

void *ipr_malloc(size_t bytes, const char *what) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) ipr_error_set(__FILE__, __LINE__, "out of memory allocating %zu bytes for %s", bytes, what);
    return p;
}

void *ipr_calloc(size_t count, size_t size, const char *what) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        ipr_error_set(__FILE__, __LINE__, "out of memory allocating %zu x %zu bytes for %s", count, size,
                      what);
    return p;
}

/* ---- temporary files removed on SIGINT/SIGTERM/SIGHUP ----
 * A fixed table (no allocation) of the paths ipr_tmp_path handed out and not yet committed or forgotten. A slot
 * is claimed with a compare-and-swap (FREE -> WRITING), filled, then published (LIVE); the handler only reads
 * LIVE slots and calls unlink(), which is async-signal-safe. */
#define IPR_TMP_SLOTS 32
enum { TMP_FREE = 0, TMP_WRITING = 1, TMP_LIVE = 2 };
static atomic_int g_tmp_state[IPR_TMP_SLOTS];
static char g_tmp_paths[IPR_TMP_SLOTS][4096];

static void tmp_register(const char *tmp) {
    if (strlen(tmp) >= sizeof g_tmp_paths[0]) return;
    for (int i = 0; i < IPR_TMP_SLOTS; ++i) {
        int expected = TMP_FREE;
        if (atomic_compare_exchange_strong(&g_tmp_state[i], &expected, TMP_WRITING)) {
            memcpy(g_tmp_paths[i], tmp, strlen(tmp) + 1);
            atomic_store(&g_tmp_state[i], TMP_LIVE);
            return;
        }
    }
    /* a full table (32 files being written at once) leaves this one to the caller's own cleanup */
}

void ipr_tmp_forget(const char *tmp) {
    for (int i = 0; i < IPR_TMP_SLOTS; ++i)
        if (atomic_load(&g_tmp_state[i]) == TMP_LIVE && strcmp(g_tmp_paths[i], tmp) == 0) {
            int expected = TMP_LIVE;
            atomic_compare_exchange_strong(&g_tmp_state[i], &expected, TMP_FREE);
        }
}

static void tmp_on_signal(int sig) {
    int saved = errno;
    for (int i = 0; i < IPR_TMP_SLOTS; ++i)
        if (atomic_load(&g_tmp_state[i]) == TMP_LIVE) (void)unlink(g_tmp_paths[i]);
    errno = saved;
    /* die of the signal, as without the handler (the exit status tells the shell which) */
    signal(sig, SIG_DFL);
    raise(sig);
}

void ipr_tmp_cleanup_on_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = tmp_on_signal;
    sigfillset(&sa.sa_mask); /* one handler at a time */
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; ++i) {
        struct sigaction old;
        /* a signal ignored by whoever started us (nohup, a background job) stays ignored */
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        sigaction(sigs[i], &sa, NULL);
    }
}

int ipr_tmp_path(char *out, size_t cap, const char *path) {
    int n = snprintf(out, cap, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= cap) {
        ipr_error_set(__FILE__, __LINE__, "path too long: %s", path);
        return IPR_ERR;
    }
    tmp_register(out);
    return IPR_OK;
}

FILE *ipr_fopen_read(const char *path, const char *mode) {
    struct stat sb;
    FILE *fp = fopen(path, mode);
    if (!fp) {
        ipr_errno_set(__FILE__, __LINE__, path);
        return NULL;
    }
    if (fstat(fileno(fp), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fclose(fp);
        ipr_error_set(__FILE__, __LINE__, "%s is a directory, not a file", path);
        return NULL;
    }
    return fp;
}

int ipr_fclose(FILE **fp, const char *what) {
    FILE *f = *fp;
    *fp = NULL;
    if (f && fclose(f) != 0) {
        ipr_errno_set(__FILE__, __LINE__, what);
        return IPR_ERR;
    }
    return IPR_OK;
}

int ipr_fsync_path(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        ipr_errno_set(__FILE__, __LINE__, path);
        return IPR_ERR;
    }
    int rc = fsync(fd);
    int e = errno;
    /* a failed close after a good fsync is still an I/O error the storage reported: not ignored */
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    if (rc != 0) {
        errno = e;
        ipr_errno_set(__FILE__, __LINE__, path);
        return IPR_ERR;
    }
    return IPR_OK;
}

int ipr_commit_tmp(const char *tmp, const char *path) {
    if (ipr_fsync_path(tmp) != IPR_OK) return IPR_ERR;
    if (rename(tmp, path) != 0) {
        ipr_errno_set(__FILE__, __LINE__, path);
        return IPR_ERR;
    }
    ipr_tmp_forget(tmp);
    /* fsync the directory so the rename itself survives a power loss; a file system that cannot sync directories
     * (EINVAL) is no error, an I/O error is */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    const char *d = dirname(dir);
    int fd = open(d, O_RDONLY);
    if (fd >= 0) {
        int rc = fsync(fd), e = errno;
        if (close(fd) != 0 && rc == 0) rc = -1, e = errno;
        if (rc != 0 && e != EINVAL && e != ENOTSUP) {
            errno = e;
            ipr_errno_set(__FILE__, __LINE__, d);
            return IPR_ERR;
        }
    }
    return IPR_OK;
}

int ipr_parse_u64(const char *text, uint64_t max, const char *what, uint64_t *out) {
    if (!text || !*text) {
        ipr_error_set(__FILE__, __LINE__, "%s: empty value", what);
        return IPR_ERR;
    }
    if (text[0] == '-') {
        ipr_error_set(__FILE__, __LINE__, "%s must not be negative (got '%s')", what, text);
        return IPR_ERR;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 0);
    if (errno != 0 || !end || *end != '\0' || (text[0] == '0' && text[1] != 'x' && text[1] != 'X' &&
                                               text[1] != '\0')) {
        ipr_error_set(__FILE__, __LINE__, "%s: '%s' is not an integer (decimal or 0x hex)", what, text);
        return IPR_ERR;
    }
    if (v > max) {
        ipr_error_set(__FILE__, __LINE__, "%s: %s exceeds the maximum %llu", what, text,
                      (unsigned long long)max);
        return IPR_ERR;
    }
    *out = (uint64_t)v;
    return IPR_OK;
}

int ipr_parse_double(const char *text, const char *what, double *out) {
    char *end = NULL;
    errno = 0;
    double v = text ? strtod(text, &end) : 0.0;
    if (!text || !*text || errno != 0 || !end || *end != '\0') {
        ipr_error_set(__FILE__, __LINE__, "%s: '%s' is not a number", what, text ? text : "");
        return IPR_ERR;
    }
    *out = v;
    return IPR_OK;
}
