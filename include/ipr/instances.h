/* instances.h: instance files, the source of a run's instances besides the generators (issue 18): Sudoku
 * puzzle files (one puzzle per line, or CSV with a header) and `ipr datagen` HDF5 files of any benchmark.
 * A file is read and checked whole when opened; instance i is data row i of the file (0-based). */
#ifndef IPR_INSTANCES_H
#define IPR_INSTANCES_H

#include <stdint.h>

#include "ipr/bench.h"
#include "ipr/hash.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ipr_mnist_pool;

typedef enum {
    IPR_INSTANCES_AUTO = 0,    /* detect: the HDF5 signature -> datagen; a first line (blank and '#' lines skipped)
                                  that starts with neither a digit nor '.' and holds a comma -> csv; else text */
    IPR_INSTANCES_TEXT = 1,    /* one puzzle per line: 81 characters (1-9 clue, 0 or '.' blank), optionally a comma
                                  or whitespace and the 81-digit solution; blank lines and '#' lines are skipped */
    IPR_INSTANCES_CSV = 2,     /* a header naming a puzzle column (quizzes, quiz, puzzle, puzzles, question,
                                  questions) and optionally a solution column (solutions, solution, answer, answers),
                                  any other columns ignored; an empty solution field = none */
    IPR_INSTANCES_DATAGEN = 3  /* an `ipr datagen` HDF5 file (README "Datagen files") of the run's benchmark */
} ipr_instances_format;

const char *ipr_instances_format_name(ipr_instances_format f);
int ipr_instances_format_from_name(const char *name, ipr_instances_format *out);

typedef struct ipr_instance_file ipr_instance_file;

/* Open PATH as instances of `bench` (text and CSV: sudoku only), check every row, and keep rows
 * [keep_first, keep_first + keep_count) that exist (keep_count 0 keeps none: check and count only).
 * Every problem is an error naming the file and the line (text, CSV) or row (datagen): a wrong length, a
 * character other than a digit or '.', clues that contradict each other (a digit twice in a row, column or
 * box), a solution that is not a valid grid or disagrees with a clue, an empty file, a CSV without a puzzle
 * column, a datagen file of another benchmark or shape. NULL on error. */
ipr_instance_file *ipr_instance_file_open(const char *path, ipr_instances_format format, ipr_bench_kind bench,
                                          uint64_t keep_first, uint64_t keep_count);
void ipr_instance_file_free(ipr_instance_file *f);

uint64_t ipr_instance_file_rows(const ipr_instance_file *f);            /* data rows of the file */
ipr_instances_format ipr_instance_file_format(const ipr_instance_file *f); /* as read (never AUTO) */
const char *ipr_instance_file_sha256(const ipr_instance_file *f);       /* hex SHA-256 of the file's bytes */
/* The rows kept: first, count (the requested range cut at the end of the file). */
void ipr_instance_file_kept(const ipr_instance_file *f, uint64_t *first, uint64_t *count);
/* Sudoku: kept rows whose solution is known; the first kept row without one (*line: its line, 0 for a datagen
 * row), returning 0 when every kept row has one; the mean clue count of the kept rows. */
uint64_t ipr_instance_file_solved(const ipr_instance_file *f);
int ipr_instance_file_first_unsolved(const ipr_instance_file *f, uint64_t *row, uint64_t *line);
double ipr_instance_file_mean_given(const ipr_instance_file *f);

/* Sudoku row `row` (a kept row) as the benchmark shows it. Puzzle files: each cell whose digit is known (a clue,
 * or any cell when the row has a solution) shows an image of its digit drawn uniformly from `pool` (the MNIST
 * TEST pool) by the Philox stream keyed by the file's SHA-256 (its first 8 bytes) and addressed by
 * (IPR_RNG_SUDOKU_FILE_DIGITS, row, cell), so a row's image never depends on the other rows; a cell of unknown
 * digit is black (0) and its solution digit 0. Datagen files: their images, clue masks and solutions as stored
 * (pool unused, may be NULL; digit_image 0). *solved = 1 when every solution digit is known. */
int ipr_instance_file_sudoku(const ipr_instance_file *f, const struct ipr_mnist_pool *pool, uint64_t row,
                             ipr_sudoku_instance *out, int *solved);
/* A kept datagen row's image as stored: (H, W) uint8 for sudoku, (H, W, 3) RGB for the others. */
int ipr_instance_file_image(const ipr_instance_file *f, uint64_t row, uint8_t *image);

#ifdef __cplusplus
}
#endif
#endif
