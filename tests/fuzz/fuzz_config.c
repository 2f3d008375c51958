/* fuzz_config.c: the config reader and schema as `ipr run` / `ipr plan` use them: pl_config_load on the bytes
 * (YAML through libyaml against the schema table, `--set` overrides), then pl_config_check_files and
 * pl_plan_build. Lines "#set KEY=VALUE" of the input (YAML comments) are also passed as --set options, so the
 * override parser is fuzzed with the file. The config's directory holds ep.h5 (the pipeline tests' tiny U-Net)
 * and p.txt (two Sudoku puzzles) for configs that name them. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_h5.h"
#include "ipr/common.h"
#include "pipeline/config.h"
#include "pipeline/plan.h"

static char g_yaml_path[600];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_h5_init();
    const char *dir = fuzz_scratch_dir();
    char p[600];
    snprintf(p, sizeof p, "%s/ep.h5", dir);
    fuzz_write_unet(p);
    static const char puzzles[] =
        "# two puzzles\n"
        "530070000600195000098000060800060003400803001700020006060000280000419005000080079\n"
        "..3.2.6..9..3.5..1..18.64....81.29..7.......8..67.82....26.95..8..2.3..9..5.1.3..\n";
    fuzz_write(dir, "p.txt", puzzles, sizeof puzzles - 1);
    snprintf(g_yaml_path, sizeof g_yaml_path, "%s/fuzz.yaml", dir);
    /* the harness's own check: a good config (the pipeline tests') loads, names its files and plans */
    static const char good[] = "name: t\nbenchmark: even_pixels\ninstances: {count: 8, per_unit: 2}\n"
                               "model: {checkpoint: ep.h5}\nipr: {iterations: 2, fractions: [0.25, 0.5]}\nseeds: [11]\n";
    pl_config *cfg = calloc(1, sizeof *cfg);
    pl_plan plan;
    if (!cfg || pl_config_load(g_yaml_path, good, sizeof good - 1, NULL, 0, 0, cfg) != IPR_OK ||
        pl_config_check_files(cfg) != IPR_OK || pl_plan_build(cfg, &plan) != IPR_OK || plan.n_units != 8) {
        ipr_error_print("fuzz: a good config does not load");
        abort();
    }
    pl_plan_free(&plan);
    pl_config_free(cfg);
    free(cfg);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *yaml = malloc(size + 1);
    char *sets[4];
    int n_sets = 0;
    if (!yaml) return 0;
    memcpy(yaml, data, size);
    yaml[size] = '\0';
    /* "#set KEY=VALUE" lines: copies, so the YAML bytes stay as given */
    char *copy = strndup(yaml, size);
    for (char *line = copy; line && n_sets < 4;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        if (strncmp(line, "#set ", 5) == 0) sets[n_sets++] = line + 5;
        line = nl ? nl + 1 : NULL;
    }
    pl_config *cfg = calloc(1, sizeof *cfg);
    if (cfg && pl_config_load(g_yaml_path, yaml, size, sets, n_sets, (int64_t)(size % 3 == 0 ? 5 : 0), cfg) == IPR_OK) {
        pl_plan plan;
        char *flat = NULL, *diff = NULL;
        if (pl_config_check_files(cfg) == IPR_OK && pl_plan_build(cfg, &plan) == IPR_OK) {
            (void)pl_plan_chunk_units(cfg);
            pl_plan_free(&plan);
        }
        if (pl_json_flatten(cfg->resolved_json, &flat) == IPR_OK) free(flat);
        if (pl_config_diff(cfg->resolved_json, cfg->operational_json, &diff) == IPR_OK) free(diff);
        pl_config_free(cfg);
    }
    ipr_error_clear();
    free(cfg);
    free(copy);
    free(yaml);
    return 0;
}
