/* exec.c: work-unit execution on one rank. Units of one grid point run as one batch through the IPR runner
 * (which keeps device.batch chains in flight); every draw is keyed by (seed, instance), so a unit's numbers
 * do not depend on the batch it shared (sampler.h). */
#define _POSIX_C_SOURCE 200809L
#include "pipeline/exec.h"

#include <stdlib.h>
#include <string.h>

#include "pipeline/rundir.h"

struct pl_exec {
    const pl_plan *plan;
    const pl_resolved *rs; /* plan->resolved */
    pl_binding bind;
    ipr_task *task;
    ipr_denoiser *den[PL_MAX_MODELS];
    char device_name[128];
    int C, H, W;
};

pl_exec *pl_exec_new(const pl_plan *plan, const pl_binding *b) {
    pl_exec *x = NULL;
    IPR_CHECK(plan->resolved != NULL, "internal: the executor needs a built plan, not one read from plan.h5");
    IPR_TRY_PTR(x = ipr_calloc(1, sizeof *x, "executor"));
    x->plan = plan;
    x->rs = plan->resolved;
    x->bind = *b;
    snprintf(x->device_name, sizeof x->device_name, "%s", b->device_name);
    x->task = ipr_task_new(&x->rs->task);
    if (!x->task) {
        ipr_error_context("opening the %s task", ipr_bench_name(plan->grid.bench));
        goto fail;
    }
    int patch = 0, regions = 0;
    ipr_task_shape(x->task, &x->C, &x->H, &x->W, &patch, &regions);
    IPR_CHECK(x->C == plan->grid.C && x->H == plan->grid.H && x->W == plan->grid.W,
              "the task's images are (%d, %d, %d), the plan expected (%d, %d, %d)", x->C, x->H, x->W, plan->grid.C,
              plan->grid.H, plan->grid.W);
    return x;
fail:
    pl_exec_free(x);
    return NULL;
}

void pl_exec_free(pl_exec *x) {
    if (!x) return;
    for (int m = 0; m < PL_MAX_MODELS; ++m) ipr_denoiser_free(x->den[m]);
    ipr_task_free(x->task);
    free(x);
}

const char *pl_exec_device_name(const pl_exec *x) { return x->device_name; }

static ipr_denoiser *denoiser(pl_exec *x, int m) {
    if (x->den[m]) return x->den[m];
    const pl_model *pm = &x->rs->model[m];
    ipr_denoiser_config dc = x->rs->denoiser; /* the plan's template, on this rank's device */
    dc.device = x->bind.kind;
    dc.gpu = x->bind.gpu;
    /* the configured precision is the CUDA GEMM mode: a rank that fell back to the CPU computes in float32 */
    if (dc.device == IPR_DEVICE_CPU && dc.precision != IPR_PREC_FP32) {
        pl_logf(IPR_LOG_INFO, "device.precision %s applies to CUDA; this rank runs on the CPU in float32",
                ipr_precision_name(dc.precision));
        dc.precision = IPR_PREC_FP32;
    }
    dc.cpu_threads = x->bind.cpu_threads;
    x->den[m] = ipr_denoiser_open(pm->path, &dc);
    if (!x->den[m]) {
        ipr_error_context("opening checkpoint %s", pm->path);
        return NULL;
    }
    snprintf(x->device_name, sizeof x->device_name, "%s", ipr_denoiser_device_name(x->den[m]));
    pl_logf(IPR_LOG_INFO, "opened %s on %s (batch %d)", x->plan->grid.model_name[m], x->device_name, dc.max_batch);
    return x->den[m];
}

int pl_exec_run(pl_exec *x, const int *units, const int *attempts, int n, pl_rows *rows, pl_batch_info *info,
                ipr_progress_fn progress, void *ctx) {
    const pl_plan *plan = x->plan;
    const pl_unit *u0 = &plan->units[units[0]];
    const int K = plan->grid.iterations;
    uint64_t *inst = NULL;
    ipr_chain_result *res = NULL;
    ipr_runner *runner = NULL;
    int total = 0, allocated = 0;
    for (int i = 0; i < n; ++i) {
        const pl_unit *u = &plan->units[units[i]];
        IPR_CHECK(u->group == u0->group, "internal: a batch mixes grid points");
        total += (int)u->count;
    }
    IPR_TRY_PTR(inst = ipr_malloc((size_t)total * sizeof *inst, "instance list"));
    IPR_TRY_PTR(res = ipr_calloc((size_t)total, sizeof *res, "chain results"));
    for (int i = 0, k = 0; i < n; ++i) {
        const pl_unit *u = &plan->units[units[i]];
        for (uint32_t j = 0; j < u->count; ++j) inst[k++] = u->first + j;
    }
    size_t image_floats = plan->grid.keep_images ? (size_t)x->C * (size_t)x->H * (size_t)x->W : 0;
    for (; allocated < total; ++allocated) IPR_TRY(ipr_chain_result_alloc(&res[allocated], K, image_floats));
    ipr_denoiser *d = denoiser(x, u0->model);
    IPR_TRY_PTR(d);
    ipr_sampler_config sc = x->rs->sampler[u0->selection][u0->fraction];
    sc.host_threads = x->bind.host_threads; /* results do not depend on it (sampler.h) */
    sc.gpu_sampler = x->rs->gpu_sampler && ipr_denoiser_cuda_device(d) >= 0; /* a CPU rank samples on the host */
    IPR_TRY(ipr_sampler_config_validate(&sc));
    IPR_TRY_PTR(runner = ipr_runner_new(d, x->task, &sc));
    double t0 = pl_now();
    IPR_TRY(ipr_runner_run(runner, u0->seed, inst, total, res, progress, ctx));
    info->wall_s = pl_now() - t0;
    ipr_runner_stats rs;
    ipr_runner_get_stats(runner, &rs);
    info->forward_s = rs.forward_s;
    info->mean_batch = rs.forwards ? (double)rs.images / (double)rs.forwards : 0.0;
    info->device_name = x->device_name;
    info->batch_size = x->rs->denoiser.max_batch;
    for (int i = 0, k = 0; i < n; ++i) {
        const pl_unit *u = &plan->units[units[i]];
        IPR_TRY(pl_rows_add_unit(rows, &plan->grid, u, res + k, attempts[i], info, (uint64_t)total));
        k += (int)u->count;
    }
    ipr_runner_free(runner);
    for (int i = 0; i < allocated; ++i) ipr_chain_result_free(&res[i]);
    free(res);
    free(inst);
    return IPR_OK;
fail:
    if (runner) ipr_runner_free(runner);
    for (int i = 0; i < allocated; ++i) ipr_chain_result_free(&res[i]);
    free(res);
    free(inst);
    return IPR_ERR;
}
