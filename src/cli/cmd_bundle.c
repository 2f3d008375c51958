/* cmd_bundle.c: `ipr bundle RUN_DIR --output FILE` (a reproducible archive of a finished run) and
 * `ipr verify PATH` (a bundle, or a run directory: hashes, row counts, config hash, completeness). */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "ipr/common.h"
#include "pipeline/bundle.h"
#include "pipeline/merge.h"

static void usage_bundle(FILE *to) {
    fprintf(to,
            "usage: ipr bundle RUN_DIR --output FILE [--compression gzip|zstd|none] [--mtime EPOCH]\n"
            "                  [--include-segments] [--allow-incomplete] [--force]\n\n"
            "Write a reproducible archive of a verified, finished run: pax format, members sorted, mtime fixed\n"
            "(--mtime, else SOURCE_DATE_EPOCH, else the run's creation time), owner root, gzip without a\n"
            "timestamp or zstd (default from FILE's extension: .tar.zst, .tar, else gzip). It holds results.h5,\n"
            "the configs, journals, logs, model cards, provenance, summaries, manifest.json and MANIFEST.sha256\n"
            "(`sha256sum -c` in the extracted directory). Also writes FILE.sha256. Bundling the same run twice\n"
            "gives the same bytes. An existing FILE is refused unless --force.\n"
            "exit codes: 0 ok, 1 error, 4 the run failed verification, 5 writing failed (disk full, I/O error)\n");
}

static void usage_verify(FILE *to) {
    fprintf(to, "usage: ipr verify BUNDLE | RUN_DIR\n\n"
                "BUNDLE: read the whole archive, check every member against MANIFEST.sha256 (nothing unlisted),\n"
                "manifest.json against results/results.h5, and FILE.sha256 when present.\n"
                "RUN_DIR: every commit record's segment hash, the segments' tables against plan.h5, and results.h5\n"
                "against plan.h5 and DONE.  exit codes: 0 verified, 4 verification failed, 1 error\n");
}

int ipr_cmd_bundle(int argc, char **argv) {
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'},    {"compression", required_argument, 0, 'c'},
        {"mtime", required_argument, 0, 'm'},     {"include-segments", no_argument, 0, 's'},
        {"allow-incomplete", no_argument, 0, 'a'}, {"force", no_argument, 0, 'f'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    pl_bundle_opts o;
    memset(&o, 0, sizeof o);
    const char *out = NULL;
    int have_comp = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'c':
            have_comp = 1;
            if (!strcmp(optarg, "gzip")) o.compression = PL_BUNDLE_GZIP;
            else if (!strcmp(optarg, "zstd")) o.compression = PL_BUNDLE_ZSTD;
            else if (!strcmp(optarg, "none")) o.compression = PL_BUNDLE_NONE;
            else IPR_FAIL("--compression: '%s' is not gzip, zstd or none", optarg);
            break;
        case 'm': {
            uint64_t v;
            IPR_TRY(ipr_parse_u64(optarg, INT64_MAX, "--mtime", &v));
            o.has_mtime = 1;
            o.mtime = (int64_t)v;
            break;
        }
        case 's': o.include_segments = 1; break;
        case 'a': o.allow_incomplete = 1; break;
        case 'f': o.force = 1; break;
        case 'h': usage_bundle(stdout); return IPR_EXIT_OK;
        case ':': IPR_FAIL("option %s needs a value", argv[optind - 1]);
        default: IPR_FAIL("unknown option %s", argv[optind - 1]);
        }
    }
    IPR_CHECK(optind == argc - 1 && out, "expected RUN_DIR and --output FILE");
    if (!have_comp) o.compression = pl_bundle_compression_for(out);
    int problems = 0;
    if (pl_bundle_write(argv[optind], out, &o, &problems) != IPR_OK) {
        const int storage = ipr_error_is_storage();
        ipr_cli_fail("bundle");
        return problems > 0 ? IPR_EXIT_VERIFY : storage ? IPR_EXIT_STORAGE : IPR_EXIT_USAGE;
    }
    printf("ipr bundle: %s (and %s.sha256)\n", out, out);
    return IPR_EXIT_OK;
fail:
    return ipr_cli_usage_error("bundle");
}

int ipr_cmd_verify(int argc, char **argv) {
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage_verify(stdout);
        return IPR_EXIT_OK;
    }
    if (argc != 2) {
        ipr_error_set(__FILE__, __LINE__, "expected one BUNDLE or RUN_DIR");
        return ipr_cli_usage_error("verify");
    }
    struct stat sb;
    if (stat(argv[1], &sb) != 0) {
        ipr_errno_set(__FILE__, __LINE__, argv[1]);
        return ipr_cli_fail("verify");
    }
    int problems = 0;
    int rc = S_ISDIR(sb.st_mode) ? pl_verify_run_dir(argv[1], &problems) : pl_bundle_verify(argv[1], &problems);
    if (rc != IPR_OK) {
        ipr_cli_fail("verify");
        return IPR_EXIT_VERIFY;
    }
    if (problems > 0) {
        fprintf(stderr, "ipr verify: %s: FAILED (%d problem(s))\n", argv[1], problems);
        return IPR_EXIT_VERIFY;
    }
    printf("ipr verify: %s: OK\n", argv[1]);
    return IPR_EXIT_OK;
}
