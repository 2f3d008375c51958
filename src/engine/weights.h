/* weights.h: the weight table every CPU network shares (U-Net, DiT, scorers): state_dict tensors with their
 * shapes in one 16-float-aligned arena, loaded from /weights/<name> with both-way name/shape checks, saved as
 * float32 with aliases as hard links, deterministic random init, and the root-attribute readers. Not installed. */
#ifndef IPR_WEIGHTS_H
#define IPR_WEIGHTS_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

/* longest state_dict name (the U-Net's deepest is 62 characters) */
#define IPR_WEIGHTS_NAME_CAP 112
/* most values an integer attribute read by ipr_attr_ints may hold */
#define IPR_ATTR_INTS_MAX 64

/* How ipr_weights_init_random draws a tensor. */
typedef enum {
    IPR_WEIGHTS_WEIGHT = 0, /* U(-1, 1) / sqrt(fan_in), fan_in = numel / shape[0] (torch's default scale) */
    IPR_WEIGHTS_BIAS = 1,   /* U(-0.1, 0.1) */
    IPR_WEIGHTS_GAIN = 2    /* 1 + U(-0.1, 0.1) (normalisation gains) */
} ipr_weights_kind;

/* One state_dict entry. */
typedef struct {
    char name[IPR_WEIGHTS_NAME_CAP];
    int rank;                /* 1..4 */
    int64_t shape[4];
    size_t numel;
    size_t offset;           /* floats into the arena (a multiple of 16); an alias has its target's */
    int alias_of;            /* index of the tensor this name is a hard link to; -1: owns its data */
    ipr_weights_kind kind;
    float **bind;            /* set to the tensor's address by ipr_weights_alloc (may be NULL) */
    float *data;             /* arena + offset once allocated */
} ipr_weights_tensor;

/* A float region of the arena that is not a tensor (derived constants: sinusoid frequencies, position
 * embeddings): zeroed at allocation, filled by the owner, never loaded, saved or counted as parameters. */
typedef struct {
    size_t n, offset;
    float **bind;
} ipr_weights_derived_region;

/* The table and its arena: tensors first (registration order), then the derived regions. */
typedef struct {
    int n, cap;                    /* tensors registered, table capacity */
    ipr_weights_tensor *t;         /* (cap) */
    int n_derived, cap_derived;
    ipr_weights_derived_region *derived;
    size_t floats;                 /* arena size in floats (each entry rounded up to 16) */
    float *arena;                  /* (floats), 64-byte aligned; NULL until ipr_weights_alloc */
    int64_t params;                /* distinct parameters (aliases and derived regions not counted) */
    const char *alias_what;        /* what an alias is, in messages ("the shared time-embedding MLP"); NULL:
                                      "the same tensor as" */
    int failed;                    /* a registration failed (name too long, out of memory): see alloc */
    char fail_msg[160];
} ipr_weights;

/* An empty table (no allocation). */
void ipr_weights_init(ipr_weights *w);
/* Register a tensor; its address is written to *bind (if not NULL) by ipr_weights_alloc. Returns its index,
 * or -1 (the failure is recorded and reported by ipr_weights_alloc). Not after ipr_weights_alloc. */
int ipr_weights_add(ipr_weights *w, const char *name, int rank, const int64_t *shape, ipr_weights_kind kind,
                    float **bind);
/* A second state_dict name for tensor `target` (an HDF5 hard link in files). Returns its index or -1. */
int ipr_weights_alias(ipr_weights *w, int target, const char *name);
/* Reserve n floats of derived constants in the arena, placed after every tensor. */
void ipr_weights_derived(ipr_weights *w, size_t n, float **bind);
/* Allocate the zeroed arena and bind every tensor and derived region; `what` names the network in messages.
 * Reports a failed registration here. */
int ipr_weights_alloc(ipr_weights *w, const char *what);
void ipr_weights_free(ipr_weights *w);
/* Values the registered tensors hold (aliases counted once, derived regions not): what a file must supply. */
int64_t ipr_weights_table_values(const ipr_weights *w);
/* Values a checkpoint's group holds: the sum over its datasets of their element counts, each counted only as far
 * as its stored bytes reach (a dataset declaring more elements than 64 per stored byte counts 64 per byte). A
 * loader compares it with ipr_weights_table_values before allocating, so that a file's attributes cannot ask for
 * an arena the file could never fill. A missing group is 0 (the load then names what is missing). */
int ipr_weights_h5_values(const char *path, const char *group, int64_t *out);
/* Before ipr_weights_alloc, for a checkpoint whose /weights holds file_values (ipr_weights_h5_values; < 0: no
 * file, no check): refuse a table that the file could never fill, more than twice its values and 16 Mi more, so that
 * edited root attributes cannot ask for an arena of any size. A table a little larger is left to the loader, which
 * names each missing or mis-shaped tensor. `what` names the network in the message. */
int ipr_weights_fit_file(const ipr_weights *w, int64_t file_values, const char *what);
/* Index of a tensor by name, -1 if none. */
int ipr_weights_find(const ipr_weights *w, const char *name);

/* Read the datasets of group `group` (e.g. "/weights") of an open file into the arena. Every name in the group
 * must be a registered tensor and every tensor present, with its exact shape, floating point (float32, float16,
 * bfloat16 or float64 storage: HDF5 converts on read); an alias must be the same object as its target or hold
 * the same values. On error the message counts every problem and spells out the first four. */
int ipr_weights_load_h5(ipr_weights *w, hid_t file, const char *group);
/* Write every tensor into an open group as float32; aliases become hard links to their targets. */
int ipr_weights_save_h5(const ipr_weights *w, hid_t group);
/* The end of writing a checkpoint: /weights (ipr_weights_save_h5) into the open file f (created at tmp, root
 * attributes already written), close it, and rename tmp onto path (ipr_commit_tmp). f is closed either way; on
 * failure tmp is removed, so no partial file stays behind. */
int ipr_weights_save_file(const ipr_weights *w, hid_t f, const char *tmp, const char *path);
/* Deterministic weights for tests: tensor k of the table draws from Philox stream (seed, purpose, k) by its
 * kind (aliases keep their target's values). */
void ipr_weights_init_random(ipr_weights *w, uint64_t seed, uint32_t purpose);

/* ---- root attributes of checkpoints ---- */

/* An integer attribute with one value in lo..hi. */
int ipr_attr_int(hid_t loc, const char *name, int lo, int hi, int *out);
/* An integer attribute of n values (n <= IPR_ATTR_INTS_MAX), each in lo..hi; with `broadcast`, a single value
 * stands for all n. */
int ipr_attr_ints(hid_t loc, const char *name, int n, int broadcast, int64_t lo, int64_t hi, int *out);
/* A scalar floating-point (or integer) attribute. */
int ipr_attr_f64(hid_t loc, const char *name, double *out);

#endif
