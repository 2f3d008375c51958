/* common.h: error reporting, logging and the checker macros every libipr file uses.
 * Errors are recorded in a thread-local buffer (what, file, line, rank) and propagated as int codes. */
#ifndef IPR_COMMON_H
#define IPR_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IPR_OK 0
#define IPR_ERR (-1)

#if defined(__GNUC__)
#define IPR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define IPR_PRINTF(a, b)
#endif

/* Record an error (replaces any earlier one). The message names what failed; file/line say where. */
void ipr_error_set(const char *file, int line, const char *fmt, ...) IPR_PRINTF(3, 4);
/* Prepend context ("reading FILE: ") to the recorded error as it propagates upwards. */
void ipr_error_context(const char *fmt, ...) IPR_PRINTF(1, 2);
/* The recorded message ("" if none) and its origin. */
const char *ipr_error_message(void);
const char *ipr_error_origin(void);
void ipr_error_clear(void);
/* 1 when the recorded error came from the storage under a file (ENOSPC, EDQUOT, EIO, EFBIG, EROFS: disk full, quota,
 * I/O error), as ipr_errno_set, ipr_h5_error_set and the libarchive checker see errno: the CLI's exit code 5. */
int ipr_error_is_storage(void);
/* Mark the recorded error as a storage error when errno value e is one (for checkers of other libraries). */
void ipr_error_note_errno(int e);

/* The rank that appears in log lines and error origins (set by the MPI driver; 0 otherwise). */
void ipr_set_rank(int rank);

typedef enum { IPR_LOG_DEBUG = 0, IPR_LOG_INFO = 1, IPR_LOG_WARN = 2, IPR_LOG_ERROR = 3 } ipr_log_level;
void ipr_log_set_level(ipr_log_level level);
/* One line on stderr: UTC timestamp, level, rank, message. */
void ipr_log(ipr_log_level level, const char *fmt, ...) IPR_PRINTF(2, 3);
/* fclose(*fp) with *fp set to NULL first (fclose releases the stream even when it fails: a second fclose is a double
 * free); a failure records errno against `what`. */
int ipr_fclose(FILE **fp, const char *what);
/* Print the recorded error as "ipr: error: MSG (at file:line, rank R)" on stderr. */
void ipr_error_print(const char *prefix);

/* ---- checker macros (style habit 4). Each function using them has a `fail:` label that cleans up
 * and returns IPR_ERR. */
#define IPR_FAIL(...)                                      \
    do {                                                   \
        ipr_error_set(__FILE__, __LINE__, __VA_ARGS__);    \
        goto fail;                                         \
    } while (0)

#define IPR_CHECK(cond, ...)                               \
    do {                                                   \
        if (!(cond)) IPR_FAIL(__VA_ARGS__);                \
    } while (0)

/* Propagate a libipr call that already recorded its error. */
#define IPR_TRY(expr)                                      \
    do {                                                   \
        if ((expr) != IPR_OK) goto fail;                   \
    } while (0)

/* Propagate a libipr call returning an id/handle (negative on failure, error already recorded). */
#define IPR_TRY_ID(expr)                                   \
    do {                                                   \
        if ((expr) < 0) goto fail;                         \
    } while (0)

/* Propagate a libipr constructor returning NULL on failure (error already recorded). */
#define IPR_TRY_PTR(expr)                                  \
    do {                                                   \
        if ((expr) == NULL) goto fail;                     \
    } while (0)

/* HDF5: every H5* call returns a negative value on failure. */
void ipr_h5_error_set(const char *file, int line, const char *expr);
#define IPR_H5(expr)                                       \
    do {                                                   \
        if ((expr) < 0) {                                  \
            ipr_h5_error_set(__FILE__, __LINE__, #expr);   \
            goto fail;                                     \
        }                                                  \
    } while (0)

/* libc I/O: a false condition is a failure with errno set. */
void ipr_errno_set(const char *file, int line, const char *what);
#define IPR_IO(cond, what)                                 \
    do {                                                   \
        if (!(cond)) {                                     \
            ipr_errno_set(__FILE__, __LINE__, (what));     \
            goto fail;                                     \
        }                                                  \
    } while (0)

/* Allocation that records an error instead of returning NULL silently. */
void *ipr_malloc(size_t bytes, const char *what);
void *ipr_calloc(size_t count, size_t size, const char *what);

/* Write a file atomically: data goes to PATH.tmp.PID, is fsync'ed, then renamed onto PATH. ipr_tmp_path also
 * registers the temporary path (ipr_commit_tmp and ipr_tmp_forget drop it) so that the handler of
 * ipr_tmp_cleanup_on_signals can remove it. */
int ipr_tmp_path(char *out, size_t cap, const char *path);
int ipr_fsync_path(const char *path);
int ipr_commit_tmp(const char *tmp, const char *path);
/* Drop a registered temporary path (after removing it, or when it was renamed by other means). */
void ipr_tmp_forget(const char *tmp);
/* SIGINT, SIGTERM, SIGHUP: unlink every registered temporary file (unlink only: async-signal-safe), then die of
 * the signal as before. For one-process commands that write one file (datagen, forward, sample, bundle, merge). */
void ipr_tmp_cleanup_on_signals(void);

/* fopen(path, mode) for reading, refusing a directory with "PATH is a directory, not a file" (on Linux fopen
 * opens one and only the first read fails, or ftell says 2^63 - 1). */
FILE *ipr_fopen_read(const char *path, const char *mode);

/* Parse a non-negative decimal or 0x-hex integer that fits in int64; error names `what`. */
int ipr_parse_u64(const char *text, uint64_t max, const char *what, uint64_t *out);
int ipr_parse_double(const char *text, const char *what, double *out);

#ifdef __cplusplus
}
#endif
#endif
