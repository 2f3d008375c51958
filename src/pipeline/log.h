/* log.h: the pipeline's per-rank log file (lines "UTC LEVEL rR host message", warnings also on stderr) and the
 * wall clock its timestamps, journals and status files use. */
#ifndef IPR_PIPELINE_LOG_H
#define IPR_PIPELINE_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "ipr/common.h"

/* Append this rank's lines to `path` (rundir.h's pl_log_open names it inside the run directory). */
int pl_log_open_file(const char *path, int rank);
void pl_log_close(void);
/* One line in the log; a warning or an error (or any line while no log is open) also on stderr. */
void pl_logf(ipr_log_level level, const char *fmt, ...) IPR_PRINTF(2, 3);

/* Wall-clock seconds since the epoch (ipr_clock_wall_s). */
double pl_now(void);
/* "2024-05-01T12:00:00Z" (compact: "20240501T120000Z") */
void pl_utc_stamp(int64_t epoch, char *out, size_t cap, int compact);

#endif
