/* log.c: the per-rank log of `ipr run` (one file per rank and session, line-buffered) and the wall clock of the
 * pipeline. The log is process state: one rank is one process, and every line names the rank and host. */
#define _POSIX_C_SOURCE 200809L
#include "pipeline/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "ipr/clock.h"

static FILE *g_log;
static int g_log_rank;
static char g_log_host[64];

double pl_now(void) { return ipr_clock_wall_s(); }

void pl_utc_stamp(int64_t epoch, char *out, size_t cap, int compact) { ipr_clock_utc_stamp(epoch, out, cap, compact); }

int pl_log_open_file(const char *path, int rank) {
    g_log_rank = rank;
    if (gethostname(g_log_host, sizeof g_log_host) != 0) snprintf(g_log_host, sizeof g_log_host, "unknown");
    g_log_host[sizeof g_log_host - 1] = '\0';
    g_log = fopen(path, "a");
    if (!g_log) {
        ipr_errno_set(__FILE__, __LINE__, path);
        return IPR_ERR;
    }
    setvbuf(g_log, NULL, _IOLBF, 0);
    return IPR_OK;
}

void pl_log_close(void) {
    if (g_log) fclose(g_log);
    g_log = NULL;
}

void pl_logf(ipr_log_level level, const char *fmt, ...) {
    static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    char msg[2048], stamp[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    double now = pl_now();
    pl_utc_stamp((int64_t)now, stamp, sizeof stamp, 0);
    if (g_log) fprintf(g_log, "%s %-5s r%d %s %s\n", stamp, names[level], g_log_rank, g_log_host, msg);
    if (level >= IPR_LOG_WARN || !g_log) fprintf(stderr, "%s %-5s r%d %s %s\n", stamp, names[level], g_log_rank, g_log_host, msg);
}
