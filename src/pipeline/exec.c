/* exec.c: work-unit execution on one rank. The units of a batch (one model and seed) run through one IPR runner
 * (which keeps device.batch chains in flight), the selections and fractions of an instance block from one base
 * sample per instance; every draw is keyed by (seed, instance), so a unit's numbers do not depend on the batch it
 * shared nor on the units beside it (sampler.h). */
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

/* progress of one batch over several runner calls: the calls' counts offset into the batch's */
typedef struct {
    ipr_progress_fn fn;
    void *ctx;
    int offset, total;
} batch_progress;

static void call_progress(int done, int total, void *vctx) {
    (void)total;
    const batch_progress *bp = vctx;
    if (bp->fn) bp->fn(bp->offset + done, bp->total, bp->ctx);
}

/* a batch position with its sort key: batch positions ordered by (family, selection, fraction) put each family's
 * units in a run, its grid points in order */
typedef struct {
    int family, selection, fraction, pos;
} unit_key;

static int by_family_point(const void *pa, const void *pb) {
    const unit_key *u = pa, *v = pb;
    if (u->family != v->family) return u->family < v->family ? -1 : 1;
    if (u->selection != v->selection) return u->selection - v->selection;
    if (u->fraction != v->fraction) return u->fraction - v->fraction;
    return u->pos - v->pos;
}

/* 1 when the family runs order[a, a + len) and order[c, c + len) hold the same grid points */
static int same_points(const pl_plan *plan, const int *units, const int *order, int a, int c, int len) {
    for (int k = 0; k < len; ++k) {
        const pl_unit *u = &plan->units[units[order[a + k]]], *v = &plan->units[units[order[c + k]]];
        if (u->selection != v->selection || u->fraction != v->fraction) return 0;
    }
    return 1;
}

int pl_exec_run(pl_exec *x, const int *units, const int *attempts, int n, pl_rows *rows, pl_batch_info *info,
                ipr_progress_fn progress, void *ctx) {
    const pl_plan *plan = x->plan;
    const pl_unit *u0 = &plan->units[units[0]];
    const int K = plan->grid.iterations;
    uint64_t *inst = NULL;
    ipr_chain_result *res = NULL;
    ipr_runner *runner = NULL;
    unit_key *keys = NULL;
    int *order = NULL, *start = NULL, *done = NULL; /* (n) batch positions by family; (n + 1) family runs */
    ipr_chain_result **unit_res = NULL; /* (n) where each unit's results start */
    int total = 0, allocated = 0;
    IPR_CHECK(n >= 1 && n <= PL_MAX_CHUNK_UNITS, "internal: a batch of %d units", n);
    for (int i = 0; i < n; ++i) {
        const pl_unit *u = &plan->units[units[i]];
        IPR_CHECK(u->model == u0->model && u->replicate == u0->replicate, "internal: a batch mixes models or seeds");
        total += (int)u->count;
    }
    IPR_TRY_PTR(inst = ipr_malloc((size_t)total * sizeof *inst, "instance list"));
    IPR_TRY_PTR(res = ipr_calloc((size_t)total, sizeof *res, "chain results"));
    IPR_TRY_PTR(keys = ipr_calloc((size_t)n, sizeof *keys, "batch bookkeeping"));
    IPR_TRY_PTR(order = ipr_calloc((size_t)n, sizeof *order, "batch bookkeeping"));
    IPR_TRY_PTR(start = ipr_calloc((size_t)n + 1, sizeof *start, "batch bookkeeping"));
    IPR_TRY_PTR(done = ipr_calloc((size_t)n, sizeof *done, "batch bookkeeping"));
    IPR_TRY_PTR(unit_res = ipr_calloc((size_t)n, sizeof *unit_res, "batch bookkeeping"));
    size_t image_floats = plan->grid.keep_images ? (size_t)x->C * (size_t)x->H * (size_t)x->W : 0;
    for (; allocated < total; ++allocated) IPR_TRY(ipr_chain_result_alloc(&res[allocated], K, image_floats));
    ipr_denoiser *d = denoiser(x, u0->model);
    IPR_TRY_PTR(d);
    /* every grid point's settings differ only in the fraction and the selection (pl_plan_build): one runner, and
     * the grid points as its variants */
    ipr_sampler_config sc = x->rs->sampler[u0->selection][u0->fraction];
    sc.host_threads = x->bind.host_threads; /* results do not depend on it (sampler.h) */
    sc.gpu_sampler = x->rs->gpu_sampler && ipr_denoiser_cuda_device(d) >= 0; /* a CPU rank samples on the host */
    IPR_TRY(ipr_sampler_config_validate(&sc));
    IPR_TRY_PTR(runner = ipr_runner_new(d, x->task, &sc));
    info->wall_s = info->forward_s = 0.0;
    double images = 0.0, forwards = 0.0;
    batch_progress bp = {progress, ctx, 0, total};
    /* The units run in calls of whole rectangles: the families (instance blocks) that the batch holds under the same
     * grid points (usually every block under every selection and fraction), each block's base sample generated once
     * and shared by its grid points (ipr_runner_run_variants; the numbers are those of separate runs). */
    for (int i = 0; i < n; ++i) {
        const pl_unit *u = &plan->units[units[i]];
        keys[i] = (unit_key){u->family, u->selection, u->fraction, i};
    }
    qsort(keys, (size_t)n, sizeof *keys, by_family_point);
    for (int i = 0; i < n; ++i) order[i] = keys[i].pos;
    int nfam = 0;
    for (int k = 0; k < n; ++k)
        if (k == 0 || plan->units[units[order[k]]].family != plan->units[units[order[k - 1]]].family)
            start[nfam++] = k;
    start[nfam] = n;
    for (int lead = 0; lead < nfam; ++lead) {
        if (done[lead]) continue;
        const int nv = start[lead + 1] - start[lead];
        int fams[PL_MAX_CHUNK_UNITS], nb = 0; /* the families of this call */
        for (int f = lead; f < nfam; ++f)
            if (!done[f] && start[f + 1] - start[f] == nv && same_points(plan, units, order, start[lead], start[f], nv)) {
                fams[nb++] = f;
                done[f] = 1;
            }
        /* instances family by family, results variant-major (ipr_runner_run_variants) */
        int ninst = 0;
        for (int b = 0; b < nb; ++b) {
            const pl_unit *u = &plan->units[units[order[start[fams[b]]]]];
            for (uint32_t j = 0; j < u->count; ++j) inst[bp.offset + ninst++] = u->first + j;
        }
        ipr_variant vars[PL_MAX_SELECTIONS * PL_MAX_FRACTIONS];
        for (int v = 0; v < nv; ++v) {
            const pl_unit *u = &plan->units[units[order[start[lead] + v]]];
            vars[v].ipr_ratio = plan->grid.fractions[u->fraction];
            vars[v].selection = plan->grid.selections[u->selection];
        }
        ipr_chain_result *out = res + bp.offset;
        const double t0 = pl_now();
        IPR_TRY(ipr_runner_run_variants(runner, u0->seed, inst + bp.offset, ninst, vars, nv, out, call_progress, &bp));
        info->wall_s += pl_now() - t0;
        ipr_runner_stats rs;
        ipr_runner_get_stats(runner, &rs);
        info->forward_s += rs.forward_s;
        images += (double)rs.images;
        forwards += (double)rs.forwards;
        /* family b's unit of variant v holds results [v * ninst + (instances of the families before b), ...) */
        for (int b = 0, before = 0; b < nb; ++b) {
            for (int v = 0; v < nv; ++v) {
                const int pos = order[start[fams[b]] + v];
                unit_res[pos] = out + (size_t)v * ninst + before;
            }
            before += (int)plan->units[units[order[start[fams[b]]]]].count;
        }
        bp.offset += ninst * nv;
    }
    IPR_CHECK(bp.offset == total, "internal: a batch ran %d of its %d chains", bp.offset, total);
    info->mean_batch = forwards > 0 ? images / forwards : 0.0;
    info->device_name = x->device_name;
    info->batch_size = x->rs->denoiser.max_batch;
    for (int i = 0; i < n; ++i)
        IPR_TRY(pl_rows_add_unit(rows, &plan->grid, &plan->units[units[i]], unit_res[i], attempts[i], info,
                                 (uint64_t)total));
    ipr_runner_free(runner);
    for (int i = 0; i < allocated; ++i) ipr_chain_result_free(&res[i]);
    free(res), free(inst), free(keys), free(order), free(start), free(done), free(unit_res);
    return IPR_OK;
fail:
    if (runner) ipr_runner_free(runner);
    for (int i = 0; i < allocated; ++i) ipr_chain_result_free(&res[i]);
    free(res), free(inst), free(keys), free(order), free(start), free(done), free(unit_res);
    return IPR_ERR;
}
