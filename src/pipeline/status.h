/* status.h: what rank 0 tells about a running `ipr run`: status.json (rewritten every progress interval, and a
 * snapshot the signal handler puts in place), the progress line, and the session's provenance record. The
 * coordinator keeps the counts; these functions only read them through a pl_progress view. */
#ifndef IPR_PIPELINE_STATUS_H
#define IPR_PIPELINE_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "pipeline/json.h"
#include "pipeline/rundir.h"

/* The coordinator's state as the status files show it; arrays have world_size entries. */
typedef struct {
    const pl_run *run;
    double t_start;              /* wall clock (pl_now) when the session started */
    double progress_interval;    /* run.progress_interval */
    int world_size, units_total, shard, nshards; /* nshards = 0: not sharded */
    int in_scope, done_before, done_now, failed, draining, own_busy;
    uint64_t chains_done;
    double nfe_done, nfe_left;   /* network passes of the units done this session / still to run */
    const double *last_seen;     /* wall clock of each rank's last message */
    const int *outstanding, *final, *units_by_rank, *chains_partial;
    char (*hosts)[64];
    char (*devices)[128];
} pl_progress;

/* status.json: `draining` is true while an interrupted run's batches finish and commit. */
void pl_status_render(const pl_progress *p, const char *state, int draining, pl_buf *b);
/* Write RUN_DIR/status.json atomically; with `snapshot`, also render what it would say if a signal stopped the
 * run now and hand that to the signal handler (pl_status_snapshot_arm). */
int pl_status_write(const pl_progress *p, const char *state, int draining, int snapshot);
/* "[ 42%] 21/50 units | 3.10 chains/s | ETA 1m05s | failed 0 | ranks 2" */
void pl_progress_line(const pl_progress *p, char *out, size_t cap);

/* The signal handler's status.json: buffers for world_size ranks, armed until disarmed. */
int pl_status_snapshot_arm(const pl_run *run, int world_size);
void pl_status_snapshot_disarm(void);
/* Put the latest snapshot in place (open/write/close/rename only: async-signal-safe); nothing when disarmed. */
void pl_status_snapshot_write(void);

/* provenance/session-SESSION.json: the world size, each rank's binding (bindings: world_size JSON objects,
 * `stride` bytes apart) and the launcher's environment. */
int pl_session_provenance_write(const pl_run *run, int world_size, double t_start, const char *bindings, size_t stride);

#endif
