/* exec.h: a rank's execution of work units: one denoiser per checkpoint (opened on first use), the task
 * (instances and scorer), and one runner call per batch of units that share a grid point. */
#ifndef IPR_PIPELINE_EXEC_H
#define IPR_PIPELINE_EXEC_H

#include "ipr/sampler.h"
#include "pipeline/gpu.h"
#include "pipeline/plan.h"
#include "pipeline/segment.h"

typedef struct pl_exec pl_exec;

/* Open the plan's task (scorer, MNIST) now; its checkpoints are opened on first use. The plan must be pl_plan_build's
 * (its resolved settings) and outlive the executor. NULL on error. */
pl_exec *pl_exec_new(const pl_plan *plan, const pl_binding *b);
void pl_exec_free(pl_exec *x);
/* "cpu" or the GPU's name, as the denoiser reports it once one is open. */
const char *pl_exec_device_name(const pl_exec *x);

/* Run units[0..n) (one group: same model, selection, fraction and seed) as one runner call and append
 * their rows. progress(done, total, ctx) is called after every finished chain. info->wall_s is set. */
int pl_exec_run(pl_exec *x, const int *units, const int *attempts, int n, pl_rows *rows, pl_batch_info *info,
                ipr_progress_fn progress, void *ctx);

#endif
