/* main.c: the `ipr` command: dispatches argv[1] to a subcommand, prints --help and --version.
 * Every subcommand reports failures as one line naming what and where, with a non-zero exit. */
#define _POSIX_C_SOURCE 200809L
#include <archive.h>
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>
#include <zlib.h>

#include "cli.h"
#include "ipr/common.h"
#include "ipr/h5io.h"

typedef int (*ipr_cmd_fn)(int argc, char **argv);

static const struct {
    const char *name;
    ipr_cmd_fn fn;
    const char *summary;
} k_commands[] = {
    {"datagen", ipr_cmd_datagen, "write benchmark instances (images, labels, clues) to an HDF5 file"},
    {"forward", ipr_cmd_forward, "run the SRM U-Net once over a batch in an HDF5 file (CPU or CUDA)"},
    {"bench", ipr_cmd_bench, "U-Net forward passes per second on the CPU and the GPU (a benchmark, not a test)"},
    {"sample", ipr_cmd_sample, "SRM generation + IPR refinement of benchmark instances, scores per iteration"},
    {"run", ipr_cmd_run, "evaluate IPR over a config's grid (MPI, resumable); results.h5 and summaries"},
    {"plan", ipr_cmd_plan, "print the work units, network passes and estimated time of a config (dry run)"},
    {"show-config", ipr_cmd_plan, "print a config resolved (canonical JSON) and its SHA-256"},
    {"status", ipr_cmd_status, "progress of a run directory (safe while it runs)"},
    {"merge", ipr_cmd_merge, "merge a run's committed segments into results.h5 (after --shard job arrays)"},
    {"bundle", ipr_cmd_bundle, "write a reproducible archive of a finished run"},
    {"verify", ipr_cmd_verify, "check a bundle or a run directory (exit 4 when it fails)"},
};
#define NUM_COMMANDS (sizeof k_commands / sizeof k_commands[0])

int ipr_cli_fail(const char *cmd) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "ipr %s", cmd);
    ipr_error_print(prefix);
    return IPR_EXIT_USAGE;
}

int ipr_cli_usage_error(const char *cmd) {
    ipr_cli_fail(cmd);
    fprintf(stderr, "see `ipr %s --help`\n", cmd);
    return IPR_EXIT_USAGE;
}

static void print_version(void) {
    unsigned maj, min, rel;
    H5get_libversion(&maj, &min, &rel);
    printf("ipr %s (git %s)\n", IPR_VERSION, IPR_GIT_SHA);
    printf("  HDF5 %u.%u.%u, zlib %s\n", maj, min, rel, zlibVersion());
    /* the evaluation pipeline's libraries (MPI_Get_library_version may be called before MPI_Init) */
    char mpi[MPI_MAX_LIBRARY_VERSION_STRING] = "unknown";
    int len = 0;
    if (MPI_Get_library_version(mpi, &len) == MPI_SUCCESS) mpi[strcspn(mpi, ",\n")] = '\0';
    printf("  %s, %s, libyaml %s\n", mpi, archive_version_string(), yaml_get_version_string());
}

static void print_help(void) {
    printf("usage: ipr COMMAND [OPTIONS]\n\n"
           "Evaluate Iterative Partial Refinement (IPR) on SRM diffusion models.\n\ncommands:\n");
    for (size_t i = 0; i < NUM_COMMANDS; ++i) printf("  %-12s %s\n", k_commands[i].name, k_commands[i].summary);
    printf("\n`ipr COMMAND --help` describes a command. `ipr --version` prints versions.\n"
           "exit codes: 0 ok, 1 usage/config/input error, 2 finished with failed units,\n"
           "            3 interrupted (resumable), 4 verification failed.\n");
}

int main(int argc, char **argv) {
    /* No H5_term_library at exit (before the first HDF5 call, which would install it): libhdf5 1.10 keeps the id of
     * a file whose H5Fclose failed in close(2) (EIO, ENOSPC on a network file system) while freeing the file, and
     * its exit-time cleanup then walks freed memory (tests/faults/cli_faults.sh "segment close"). Every file ipr
     * writes is closed before exit; its handles are just not torn down. */
    H5dont_atexit();
    ipr_h5_quiet();
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_help();
        return argc < 2 ? IPR_EXIT_USAGE : IPR_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        print_version();
        return IPR_EXIT_OK;
    }
    for (size_t i = 0; i < NUM_COMMANDS; ++i)
        if (strcmp(argv[1], k_commands[i].name) == 0) {
            /* an interrupted command leaves no FILE.tmp.PID behind; `ipr run` drains on signals instead
             * (src/pipeline/coord.c) and quarantines what a killed run left */
            if (k_commands[i].fn != ipr_cmd_run) ipr_tmp_cleanup_on_signals();
            return k_commands[i].fn(argc - 1, argv + 1);
        }
    fprintf(stderr, "ipr: error: unknown command '%s' (run `ipr --help` for the list)\n", argv[1]);
    return IPR_EXIT_USAGE;
}
