/* cmd_merge.c: `ipr merge RUN_DIR`: the committed segments of every session, rank and shard into one
 * results.h5 plus summaries. Use it after --shard job arrays, or to look at a partial run (--partial). */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ipr/common.h"
#include "pipeline/json.h"
#include "pipeline/merge.h"

static void usage(FILE *to) {
    fprintf(to, "usage: ipr merge RUN_DIR [--partial] [--quiet]\n\n"
                "Write RUN_DIR/results.h5 and RUN_DIR/summary/ from the committed segments (any session, world size\n"
                "or shard). A run with units not yet done is refused (exit 3) unless --partial, which writes\n"
                "results.h5 with complete = 0 and those units' status = 3 (missing).\n"
                "exit codes: 0 complete, 2 complete with failed units, 3 units missing, 1 error,\n"
                "            5 writing failed (disk full, I/O error): run it again once fixed\n");
}

int ipr_cmd_merge(int argc, char **argv) {
    static const struct option longopts[] = {{"partial", no_argument, 0, 'p'}, {"quiet", no_argument, 0, 'q'},
                                             {"help", no_argument, 0, 'h'},    {0, 0, 0, 0}};
    pl_merge_opts mo = {0};
    int quiet = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "hq", longopts, NULL)) != -1) {
        if (c == 'p') mo.allow_partial = 1;
        else if (c == 'q') quiet = 1;
        else if (c == 'h') { usage(stdout); return IPR_EXIT_OK; }
        else { ipr_error_set(__FILE__, __LINE__, "unknown option %s", argv[optind - 1]); return ipr_cli_usage_error("merge"); }
    }
    if (optind != argc - 1) {
        ipr_error_set(__FILE__, __LINE__, "expected one RUN_DIR");
        return ipr_cli_usage_error("merge");
    }
    pl_merge_report rep;
    if (pl_merge(argv[optind], &mo, &rep) != IPR_OK) {
        const int storage = ipr_error_is_storage();
        ipr_cli_fail("merge");
        return storage ? IPR_EXIT_STORAGE : IPR_EXIT_USAGE;
    }
    if (rep.written && !quiet) {
        char *md = NULL;
        if (pl_read_file(rep.summary_md_path, &md, NULL) == IPR_OK) {
            fputs(md, stdout);
            free(md);
        }
        ipr_error_clear();
    }
    printf("ipr merge: %d units: %d ok, %d failed, %d missing%s\n", rep.n_units, rep.n_ok, rep.n_failed, rep.n_missing,
           rep.written ? (rep.complete ? "; results.h5 written" : "; results.h5 written with complete = 0")
                       : "; results.h5 not written (units missing: resume the run, or --partial)");
    if (rep.n_missing > 0) return IPR_EXIT_INTERRUPTED;
    return rep.n_failed > 0 ? IPR_EXIT_FAILED : IPR_EXIT_OK;
}
