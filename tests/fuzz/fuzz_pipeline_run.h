/* fuzz_pipeline_run.h: a small run directory for the pipeline harnesses (journal, segment): the pipeline tests'
 * tiny Even Pixels config (8 instances in 4 units of 2, K = 2, fractions 0.25 and 0.5) and its plan, built once in
 * the scratch directory with ep.h5 beside it. Header-only helper of the harnesses (one translation unit each). */
#ifndef IPR_FUZZ_PIPELINE_RUN_H
#define IPR_FUZZ_PIPELINE_RUN_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_h5.h"
#include "ipr/common.h"
#include "pipeline/config.h"
#include "pipeline/plan.h"
#include "pipeline/rundir.h"

static const char k_fuzz_run_yaml[] =
    "name: fuzz\n"
    "benchmark: even_pixels\n"
    "instances: {count: 8, per_unit: 2}\n"
    "model: {checkpoint: ep.h5}\n"
    "device: {kind: cpu, batch: 4, cpu_threads: 1}\n"
    "sampler: {steps_per_region: 1, overlap: 0.9}\n"
    "ipr: {iterations: 2, fractions: [0.25, 0.5], steps_per_region: 1, overlap: 0.9}\n"
    "seeds: [11]\n"
    "output: {keep_images: true}\n";

/* Build the config and plan in DIR (which gets ep.h5, config/, journal/, segments/). Exits on failure. */
static void fuzz_run_setup(const char *dir, pl_plan *plan, pl_run *run) {
    char p[700];
    snprintf(p, sizeof p, "%s/ep.h5", dir);
    fuzz_write_unet(p);
    snprintf(p, sizeof p, "%s/journal", dir);
    if (pl_mkdirs(p, 0755) != IPR_OK) exit(1);
    snprintf(p, sizeof p, "%s/segments/s", dir);
    if (pl_mkdirs(p, 0755) != IPR_OK) exit(1);
    snprintf(p, sizeof p, "%s/fuzz.yaml", dir);
    pl_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg || pl_config_load(p, k_fuzz_run_yaml, sizeof k_fuzz_run_yaml - 1, NULL, 0, 0, cfg) != IPR_OK ||
        pl_plan_build(cfg, plan) != IPR_OK) {
        ipr_error_print("fuzz: run setup");
        exit(1);
    }
    pl_config_free(cfg);
    free(cfg);
    memset(run, 0, sizeof *run);
    snprintf(run->dir, sizeof run->dir, "%s", dir);
    snprintf(run->run_id, sizeof run->run_id, "00000000-0000-4000-8000-000000000000");
    snprintf(run->session, sizeof run->session, "s");
}

#endif
