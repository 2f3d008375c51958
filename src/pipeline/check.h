/* check.h: the pipeline's checker macros for MPI and libarchive, next to common.h's IPR_H5 / IPR_IO:
 * each records the expression, file, line and rank of a failed call and jumps to the caller's `fail:`. */
#ifndef IPR_PIPELINE_CHECK_H
#define IPR_PIPELINE_CHECK_H

#include "ipr/common.h"

struct archive;

/* MPI: every MPI_* call returns MPI_SUCCESS or an error code (MPI_ERRORS_RETURN is set on the world). */
void pl_mpi_error_set(const char *file, int line, const char *expr, int code);
#define IPR_MPI(expr)                                              \
    do {                                                           \
        int ipr_mpi_rc_ = (expr);                                  \
        if (ipr_mpi_rc_ != 0) {                                    \
            pl_mpi_error_set(__FILE__, __LINE__, #expr, ipr_mpi_rc_); \
            goto fail;                                             \
        }                                                          \
    } while (0)

/* libarchive: calls return ARCHIVE_OK (0) or ARCHIVE_WARN (-20) on success; ARCHIVE_FAILED / FATAL
 * below that. Writers of data return the byte count (>= 0). `a` supplies archive_error_string. */
void pl_archive_error_set(const char *file, int line, const char *expr, struct archive *a);
#define IPR_AR(a, expr)                                            \
    do {                                                           \
        if ((long)(expr) < -20L) {                                 \
            pl_archive_error_set(__FILE__, __LINE__, #expr, (a));  \
            goto fail;                                             \
        }                                                          \
    } while (0)

/* libarchive byte counts (archive_write_data, archive_read_data): negative on failure. */
#define IPR_AR_N(a, expr)                                          \
    do {                                                           \
        if ((long)(expr) < 0L) {                                   \
            pl_archive_error_set(__FILE__, __LINE__, #expr, (a));  \
            goto fail;                                             \
        }                                                          \
    } while (0)

#endif
