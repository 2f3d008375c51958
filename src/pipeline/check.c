/* check.c: error recording for the MPI and libarchive checker macros (check.h). The message carries the
 * library's own description of the failure so a user sees why, not only where. */
#define _POSIX_C_SOURCE 200809L
#include "pipeline/check.h"

#include <archive.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

void pl_mpi_error_set(const char *file, int line, const char *expr, int code) {
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized || MPI_Error_string(code, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "code %d", code);
    ipr_error_set(file, line, "MPI call failed: %s (%s)", expr, text);
}

void pl_archive_error_set(const char *file, int line, const char *expr, struct archive *a) {
    const char *why = a ? archive_error_string(a) : NULL;
    const int e = a ? archive_errno(a) : 0;
    /* libarchive's own text can be a bare "Write error": add what the system said */
    if (e > 0 && (!why || !strstr(why, strerror(e))))
        ipr_error_set(file, line, "libarchive call failed: %s (%s: %s)", expr, why ? why : "no detail", strerror(e));
    else
        ipr_error_set(file, line, "libarchive call failed: %s (%s)", expr, why ? why : "no detail");
    ipr_error_note_errno(e);
}
