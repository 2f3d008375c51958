/* coord.h: the MPI coordinator. Rank 0 keeps the queue of work units (most expensive first), hands out
 * batches on request and works on its own batches in between, servicing requests after every chain;
 * every rank writes its own segments and journal. Only small host buffers cross MPI. */
#ifndef IPR_PIPELINE_COORD_H
#define IPR_PIPELINE_COORD_H

#include "pipeline/exec.h"
#include "pipeline/gpu.h"
#include "pipeline/plan.h"
#include "pipeline/rundir.h"

typedef enum { PL_PROGRESS_AUTO = 0, PL_PROGRESS_LINE = 1, PL_PROGRESS_NONE = 2 } pl_progress_mode;

typedef struct {
    const pl_plan *plan;         /* pl_plan_build's: its resolved settings give retries, failures, chunk, progress */
    const pl_run *run;
    int shard, nshards;          /* nshards = 0: all units; else only shard `shard` of the LPT shard map */
    pl_progress_mode progress;
} pl_coord_opts;

typedef struct {
    int exit_code;               /* 0 ok, 2 failed units, 3 interrupted (resumable) */
    int units_in_scope, done_before, done_now, failed, missing;
    int merged;                  /* results.h5 written */
    char summary_md[4200];
} pl_coord_result;

/* Collective over MPI_COMM_WORLD; every rank gets the same exit code. */
int pl_coord_run(const pl_coord_opts *o, pl_exec *x, const pl_binding *b, pl_coord_result *res);

/* Set by SIGTERM / SIGUSR1 / SIGINT while pl_coord_run runs: drain, commit, exit 3. On rank 0 the handler also
 * writes status.json with state "interrupted" at once (a launcher may SIGKILL the ranks a second later). */
void pl_signals_install(void);
int pl_signal_received(void);
/* 1 when an MPI launcher started this process (Open MPI's mpirun: OMPI_COMM_WORLD_SIZE; Hydra/PMI: PMI_SIZE):
 * its stdout is then no user's terminal, whatever isatty() says. */
int pl_under_launcher(void);

#endif
