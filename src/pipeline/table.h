/* table.h: the result tables as columns (struct of arrays): in memory, written to HDF5 as one 1-D dataset
 * per column (no compound types, so h5py and pandas read them plainly), and read back from segments. */
#ifndef IPR_PIPELINE_TABLE_H
#define IPR_PIPELINE_TABLE_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { PL_COL_U8, PL_COL_U16, PL_COL_U32, PL_COL_U64, PL_COL_F32 } pl_col_type;

typedef struct {
    const char *name;
    pl_col_type type;
    const char *doc; /* README schema table */
} pl_col_def;

#define PL_MAX_COLS 16

typedef struct {
    const char *group; /* "units", "chains", "results", "timing" */
    int n_cols;
    pl_col_def cols[PL_MAX_COLS];
    const char *doc;
    int n_first;       /* columns [n_first, n_cols) came later: a file written before them reads them as 0 */
} pl_table_def;

/* Column indices of each table (same order as the defs in table.c). */
enum { PL_U_UNIT_ID, PL_U_MODEL, PL_U_SELECTION, PL_U_FRACTION, PL_U_REPLICATE, PL_U_SEED, PL_U_INSTANCE_START,
       PL_U_INSTANCE_COUNT, PL_U_STATUS, PL_U_ATTEMPTS, PL_U_NFE, PL_U_NCOLS };
enum { PL_C_UNIT, PL_C_INSTANCE, PL_C_MODEL, PL_C_SELECTION, PL_C_FRACTION, PL_C_REPLICATE, PL_C_SEED,
       PL_C_ITERATIONS_RUN, PL_C_VALID, PL_C_ERROR, PL_C_NFE, PL_C_SOLUTION_MATCH, PL_C_NCOLS };
enum { PL_R_CHAIN, PL_R_INSTANCE, PL_R_MODEL, PL_R_SELECTION, PL_R_FRACTION, PL_R_REPLICATE, PL_R_SEED,
       PL_R_ITERATION, PL_R_VALID, PL_R_ERROR, PL_R_NFE, PL_R_CHANGED, PL_R_NCOLS };
enum { PL_T_WALL_S, PL_T_CHAINS_PER_S, PL_T_FORWARD_S, PL_T_MEAN_BATCH, PL_T_RANK, PL_T_HOST, PL_T_SESSION, PL_T_DEVICE, PL_T_BATCH_SIZE,
       PL_T_NCOLS };

enum { PL_P_UNIT_ID, PL_P_MODEL, PL_P_SELECTION, PL_P_FRACTION_INDEX, PL_P_REPLICATE, PL_P_SEED, PL_P_FIRST,
       PL_P_COUNT, PL_P_GROUP, PL_P_NFE, PL_P_NCOLS };

/* unit status */
enum { PL_STATUS_OK = 0, PL_STATUS_FAILED = 1, PL_STATUS_MISSING = 3 };

extern const pl_table_def pl_units_def, pl_chains_def, pl_results_def, pl_timing_def;
/* plan.h5: the work units of a run as planned (written once at creation) */
extern const pl_table_def pl_plan_def;

typedef struct {
    const pl_table_def *def;
    size_t n, cap;
    void *col[PL_MAX_COLS];
} pl_table;

void pl_table_init(pl_table *t, const pl_table_def *def);
void pl_table_free(pl_table *t);
/* Append k zeroed rows; returns the first new row or (size_t)-1 on allocation failure. */
size_t pl_table_add(pl_table *t, size_t k);
/* Copy row `sr` of src (same def) to row `dr` of dst. */
void pl_table_copy_row(pl_table *dst, size_t dr, const pl_table *src, size_t sr);

void pl_set_u64(pl_table *t, int c, size_t r, uint64_t v);
void pl_set_f32(pl_table *t, int c, size_t r, float v);
uint64_t pl_get_u64(const pl_table *t, int c, size_t r);
float pl_get_f32(const pl_table *t, int c, size_t r);

/* Write as group /<def->group> with one dataset per column (shuffle + deflate(4), chunks of up to 64 Ki
 * rows, no timestamps) and the attribute n_rows. */
int pl_table_write(const pl_table *t, hid_t file);
/* Read /<def->group> of a file written by pl_table_write (all columns, equal lengths). */
int pl_table_read(pl_table *t, hid_t file);

/* A variable-length UTF-8 string dataset: scalar (n < 0) or 1-D list of n strings. */
int pl_h5_write_strings(hid_t loc, const char *name, const char *const *values, int n);
int pl_h5_write_string(hid_t loc, const char *name, const char *value);

#endif
