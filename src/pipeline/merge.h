/* merge.h: committed segments -> RUN_DIR/results.h5 (one self-contained file, same layout as a segment
 * with concatenated tables, units in plan order) and the summaries; also the run-directory verifier. */
#ifndef IPR_PIPELINE_MERGE_H
#define IPR_PIPELINE_MERGE_H

#include <stdint.h>

#include "ipr/common.h"

typedef struct {
    int allow_partial; /* write results.h5 (complete = 0) even when units are missing */
} pl_merge_opts;

typedef struct {
    int n_units, n_ok, n_failed, n_missing;
    int complete;           /* every unit has a row: ok or failed after its retries */
    int written;            /* results.h5 was (re)written */
    int limited;
    uint64_t chains;
    char summary_md_path[4200];
} pl_merge_report;

int pl_merge(const char *run_dir, const pl_merge_opts *opts, pl_merge_report *rep);

/* Check a run directory: run.json, plan.h5, every commit record's segment hash, the segments' tables
 * against the plan, and results.h5 (when present) against the plan and DONE. *problems counts failures;
 * each is logged on stderr. */
int pl_verify_run_dir(const char *run_dir, int *problems);
/* One verification finding: "verify: ..." on stderr, *problems counted up (run directories and bundles). */
void pl_problem(int *problems, const char *fmt, ...) IPR_PRINTF(2, 3);

#endif
