/* bundle.h: a run as one reproducible archive (libarchive, pax, sorted members, fixed mtime, owner 0,
 * gzip without timestamp or zstd) with a SHA-256 manifest of every member, and its verifier. */
#ifndef IPR_PIPELINE_BUNDLE_H
#define IPR_PIPELINE_BUNDLE_H

#include <stdint.h>

typedef enum { PL_BUNDLE_GZIP = 0, PL_BUNDLE_ZSTD = 1, PL_BUNDLE_NONE = 2 } pl_bundle_compression;

typedef struct {
    pl_bundle_compression compression;
    int has_mtime;
    int64_t mtime;          /* default: SOURCE_DATE_EPOCH, else the run's creation time */
    int include_segments;   /* also every segment (the merged results.h5 holds the same rows) */
    int allow_incomplete;   /* bundle a run without DONE */
    int force;              /* overwrite an existing FILE (refused otherwise, as datagen, forward and sample do) */
} pl_bundle_opts;

/* Compression from the file name: .tar.zst/.tzst -> zstd, .tar -> none, else gzip. */
pl_bundle_compression pl_bundle_compression_for(const char *path);
/* Write `out_path` (via a temporary file, fsync, rename) and `out_path`.sha256. The run directory is
 * verified first; *problems > 0 means it was not bundled. */
int pl_bundle_write(const char *run_dir, const char *out_path, const pl_bundle_opts *o, int *problems);
/* Check a bundle: archive integrity, every member against MANIFEST.sha256 (and nothing unlisted),
 * manifest.json against results/results.h5, and the sidecar FILE.sha256 when present. */
int pl_bundle_verify(const char *path, int *problems);

#endif
