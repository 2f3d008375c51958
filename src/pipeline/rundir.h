/* rundir.h: the run directory (run.json identity, config copies, model cards), per-rank logs and the
 * append-only journals that say which work units are done: a unit counts only once its segment was
 * renamed into place and a commit record with the segment's SHA-256 was fsync'ed. */
#ifndef IPR_PIPELINE_RUNDIR_H
#define IPR_PIPELINE_RUNDIR_H

#include <stdint.h>
#include <stdio.h>

#include "ipr/common.h"
#include "pipeline/log.h"
#include "pipeline/plan.h"

#define PL_RUN_FORMAT "ipr-run"
#define PL_SCHEMA_VERSION 1

typedef struct {
    char dir[PL_PATH_MAX];   /* absolute */
    char run_id[40];         /* UUIDv4 */
    char session[96];        /* this start or resume */
    int64_t created_epoch;   /* seconds; the bundle's default mtime */
    int resumed;             /* the directory held this run already */
    char model_sha256[PL_MAX_MODELS][65];
    char mnist_pool[32], mnist_pool_sha256[65]; /* sudoku: the MNIST pool's name and content hash (mnist.h); else "" */
    /* instances.file: its path (as resolved), the format read and its SHA-256; "" for the generator */
    char instances_file[PL_PATH_MAX], instances_format[16], instances_sha256[65];
} pl_run;

/* The config's own texts that a new run directory keeps in config/ (the plan holds everything else). */
typedef struct {
    const char *yaml;        /* input.yaml: the file's bytes */
    size_t yaml_len;
    char *const *sets;       /* overrides.txt: the --set options */
    int n_sets;
    const char *resolved_json, *operational_json, *sources_json; /* pl_config_load's canonical forms */
} pl_run_texts;

/* mkdir -p */
int pl_mkdirs(const char *path, int mode);
/* Rank 0: create or reopen RUN_DIR for a plan (pl_plan_build's: its config hash, checkpoints and their SHA-256, the
 * task's instances and MNIST pool). An existing run of another config is refused with a key-level diff (of
 * texts->resolved_json), unless force_new, which moves the old directory aside (RUN_DIR.replaced-TIMESTAMP). */
int pl_run_open(const char *dir, const pl_plan *plan, const pl_run_texts *texts, int force_new, const char *shard_tag,
                pl_run *out);
/* Read run.json of an existing run directory (status, merge, bundle). */
int pl_run_load(const char *dir, pl_run *out, char **run_json);
/* "DIR/rel" */
void pl_run_path(const pl_run *run, const char *rel, char *out, size_t cap);

/* ---- per-rank log (log.h): logs/<session>-rNNNNN.log; lines "UTC LEVEL rR host message" ---- */
int pl_log_open(const pl_run *run, int rank);

/* ---- journals ---- */
typedef struct {
    FILE *fp;
    char path[PL_PATH_MAX + 256];
} pl_journal;

int pl_journal_open(pl_journal *j, const pl_run *run, int rank);
/* Close it; IPR_ERR (errno recorded) when the close reports an I/O error. */
int pl_journal_close(pl_journal *j);
/* Append one record and fsync it. */
int pl_journal_commit(pl_journal *j, const char *segment_rel, const char *sha256, const uint64_t *unit_ids, int n,
                      uint64_t chains, double wall_s);
int pl_journal_fail(pl_journal *j, uint64_t unit_id, int attempt, const char *reason);

typedef struct {
    int n_units;
    int *seg;            /* per unit: index into seg_rel of its committed segment, -1 = not done */
    int *fails;          /* per unit: failure records */
    int n_segs;
    char (*seg_rel)[160];
    int *seg_hash, hash_cap;  /* open addressing: segment path -> index into seg_rel (pl_journal_segment) */
    int n_done, n_bad;   /* units done; commit records whose segment is missing or altered */
    int n_foreign;       /* records naming units of no unit of this plan */
    int n_corrupt;       /* lines that are no record: damage (a crash leaves at most a torn last line, which is
                            the start of a record and is ignored) */
    char first_bad[160];  /* the first missing or altered segment ("" if none) */
    char first_corrupt[PL_PATH_MAX + 32]; /* "journal/NAME.jsonl:LINE" of the first corrupt line ("" if none) */
} pl_journal_state;

/* Read every journal of the run (any session, any world size) against the plan. Segments are checked
 * against their recorded SHA-256 (each file once); a missing or altered segment does not count. */
int pl_journal_scan(const pl_run *run, const pl_plan *plan, pl_journal_state *st);
void pl_journal_state_free(pl_journal_state *st);
/* Index into st->seg_rel of a segment path relative to RUN_DIR, or -1. */
int pl_journal_segment(const pl_journal_state *st, const char *rel);
/* Move *.tmp* files and segments that no commit record names into RUN_DIR/quarantine/. */
int pl_quarantine(const pl_run *run, const pl_journal_state *st, int *moved);

/* A fresh UUIDv4 from /dev/urandom. */
int pl_uuid4(char out[40]);

#endif
