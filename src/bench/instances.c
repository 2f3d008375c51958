/* instances.c: instance files (instances.h): the Sudoku text and CSV puzzle formats, parsed and checked line by
 * line and rendered with MNIST digits keyed by the file's hash; `ipr datagen` HDF5 files of any benchmark, checked
 * when opened and read row by row. */
#define _POSIX_C_SOURCE 200809L
#include "ipr/instances.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ipr/common.h"
#include "ipr/h5io.h"
#include "ipr/mnist.h"
#include "ipr/rng.h"

typedef struct {
    uint8_t given[81]; /* 1 = clue cell */
    uint8_t digit[81]; /* 1-9 where known: every cell of a solved row, else the clues; 0 = unknown */
    uint8_t solved;    /* every digit known */
    uint64_t line;     /* 1-based line of the file (text, CSV); 0 for a datagen row */
} kept_row;

struct ipr_instance_file {
    char path[4096];
    ipr_instances_format format;
    ipr_bench_kind bench;
    char sha256[IPR_SHA256_HEX];
    uint64_t key;         /* Philox key of the cell images: the SHA-256's first 8 bytes, big-endian */
    uint64_t rows;        /* data rows of the file */
    uint64_t first;       /* kept rows: [first, first + count) */
    uint64_t count;       /* while parsing: the rows asked for; then the rows kept */
    kept_row *kept;       /* (count) sudoku rows */
    size_t kept_cap;
    hid_t h5, images;     /* datagen: the open file and its /images dataset, read by row */
    int img_rank;
    hsize_t img_dims[4];  /* (N, H, W[, 3]) */
};

static const char *const k_format_names[] = {"auto", "text", "csv", "datagen"};

const char *ipr_instances_format_name(ipr_instances_format f) {
    return (unsigned)f <= IPR_INSTANCES_DATAGEN ? k_format_names[f] : "unknown";
}

int ipr_instances_format_from_name(const char *name, ipr_instances_format *out) {
    for (int i = 0; name && i <= IPR_INSTANCES_DATAGEN; ++i)
        if (strcmp(name, k_format_names[i]) == 0) {
            *out = (ipr_instances_format)i;
            return IPR_OK;
        }
    ipr_error_set(__FILE__, __LINE__, "unknown instances format '%s' (expected auto, text, csv or datagen)",
                  name ? name : "");
    return IPR_ERR;
}

/* ---------------- checks shared by every format ---------------- */

static const char *const k_unit_names[] = {"row", "column", "box"};

/* The first digit that appears twice among the nonzero cells of g: in unit `kind` (0 row, 1 column, 2 box)
 * number *unit (0-8), at cells *a and *b. 0 when there is none. */
static int find_repeat(const uint8_t g[81], int *kind, int *unit, int *digit, int *a, int *b) {
    for (int k = 0; k < 3; ++k)
        for (int u = 0; u < 9; ++u) {
            int at[10];
            for (int d = 0; d < 10; ++d) at[d] = -1;
            for (int i = 0; i < 9; ++i) {
                const int cell = k == 0 ? u * 9 + i : k == 1 ? i * 9 + u : ((u / 3) * 3 + i / 3) * 9 + (u % 3) * 3 + i % 3;
                const int d = g[cell];
                if (d == 0) continue;
                if (at[d] >= 0) {
                    *kind = k, *unit = u, *digit = d, *a = at[d], *b = cell;
                    return 1;
                }
                at[d] = cell;
            }
        }
    return 0;
}

/* A puzzle (clue digits, 0 = blank) and its solution (NULL: none): clues that agree with each other, and a
 * solution that is a valid grid holding every clue. `where` is "FILE:LINE" or "FILE: row R". */
static int check_puzzle(const char *where, const uint8_t puzzle[81], const uint8_t *solution) {
    int kind, unit, digit, a, b;
    IPR_CHECK(!find_repeat(puzzle, &kind, &unit, &digit, &a, &b),
              "%s: the clues contradict each other: %d appears twice in %s %d (r%dc%d and r%dc%d)", where, digit,
              k_unit_names[kind], unit + 1, a / 9 + 1, a % 9 + 1, b / 9 + 1, b % 9 + 1);
    if (!solution) return IPR_OK;
    for (int c = 0; c < 81; ++c)
        IPR_CHECK(puzzle[c] == 0 || solution[c] == puzzle[c],
                  "%s: the solution does not match the clues: it has %d at r%dc%d, where the clue is %d", where,
                  solution[c], c / 9 + 1, c % 9 + 1, puzzle[c]);
    /* nine distinct digits 1-9 in every row, column and box: no repeat is enough, the cells are all 1-9 */
    IPR_CHECK(!find_repeat(solution, &kind, &unit, &digit, &a, &b),
              "%s: the solution is not a valid grid: %d appears twice in %s %d (r%dc%d and r%dc%d)", where, digit,
              k_unit_names[kind], unit + 1, a / 9 + 1, a % 9 + 1, b / 9 + 1, b % 9 + 1);
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* Record data row f->rows (checked already); keep it when it is in the requested range. */
static int add_row(ipr_instance_file *f, const uint8_t given[81], const uint8_t digit[81], int solved, uint64_t line) {
    const uint64_t row = f->rows++;
    if (row < f->first || row - f->first >= f->count) return IPR_OK;
    const size_t k = (size_t)(row - f->first);
    if (k >= f->kept_cap) {
        size_t cap = f->kept_cap ? 2 * f->kept_cap : 256;
        kept_row *p = realloc(f->kept, cap * sizeof *p);
        IPR_CHECK(p != NULL, "out of memory keeping %zu puzzles of %s", cap, f->path);
        f->kept = p;
        f->kept_cap = cap;
    }
    kept_row *r = &f->kept[k];
    memcpy(r->given, given, 81);
    memcpy(r->digit, digit, 81);
    r->solved = (uint8_t)solved;
    r->line = line;
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* ---------------- text and CSV ---------------- */

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

static int read_all(const char *path, char **data, size_t *len) {
    FILE *fp = NULL;
    char *buf = NULL;
    size_t n = 0, cap = 1 << 16;
    IPR_IO((fp = fopen(path, "rb")) != NULL, path);
    IPR_TRY_PTR(buf = ipr_malloc(cap + 1, "puzzle file"));
    for (;;) {
        if (n == cap) {
            cap *= 2;
            char *p = realloc(buf, cap + 1);
            IPR_CHECK(p != NULL, "out of memory reading %s (%zu bytes)", path, cap);
            buf = p;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0) {
            IPR_IO(!ferror(fp), path);
            break;
        }
    }
    IPR_TRY(ipr_fclose(&fp, path));
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return IPR_OK;
fail:
    if (fp) fclose(fp);
    free(buf);
    return IPR_ERR;
}

/* The 81 characters of a puzzle (1-9 a clue, 0 or '.' a blank) or of a solution (1-9 only) at p[0..n); col is
 * the 1-based column of p[0] on its line, for messages. */
static int parse_grid(const char *path, uint64_t line, const char *what, const char *p, size_t n, size_t col,
                      int solution, uint8_t out[81]) {
    for (size_t i = 0; i < n; ++i) {
        const char c = p[i];
        const int ok = solution ? (c >= '1' && c <= '9') : ((c >= '0' && c <= '9') || c == '.');
        if (ok) continue;
        if (c > ' ' && c < 127)
            IPR_FAIL("%s:%llu: column %zu: '%c' in the %s is not %s", path, (unsigned long long)line, col + i, c, what,
                     solution ? "a digit 1-9 (a solution fills every cell)" : "a digit or '.'");
        IPR_FAIL("%s:%llu: column %zu: byte 0x%02x in the %s is not %s", path, (unsigned long long)line, col + i,
                 (unsigned)(unsigned char)c, what, solution ? "a digit 1-9" : "a digit or '.'");
    }
    IPR_CHECK(n == 81, "%s:%llu: the %s has %zu characters, expected 81 (one per cell, row by row)", path,
              (unsigned long long)line, what, n);
    for (int i = 0; i < 81; ++i) out[i] = p[i] == '.' ? 0 : (uint8_t)(p[i] - '0');
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* One puzzle with an optional solution: check it and record it. */
static int add_puzzle(ipr_instance_file *f, uint64_t line, const uint8_t puzzle[81], const uint8_t *solution) {
    char where[4200];
    snprintf(where, sizeof where, "%s:%llu", f->path, (unsigned long long)line);
    IPR_TRY(check_puzzle(where, puzzle, solution));
    uint8_t given[81];
    for (int c = 0; c < 81; ++c) given[c] = puzzle[c] != 0;
    return add_row(f, given, solution ? solution : puzzle, solution != NULL, line);
fail:
    return IPR_ERR;
}

/* A text line s[0..n) (no newline), at 1-based column col0 of its line: PUZZLE [(,|whitespace) SOLUTION]. */
static int text_line(ipr_instance_file *f, uint64_t line, const char *s, size_t n, size_t col0) {
    uint8_t puzzle[81], solution[81];
    size_t i = 0;
    while (i < n && s[i] != ',' && !is_blank(s[i])) ++i;
    IPR_TRY(parse_grid(f->path, line, "puzzle", s, i, col0, 0, puzzle));
    size_t j = i;
    while (j < n && is_blank(s[j])) ++j;
    if (j < n && s[j] == ',')
        for (++j; j < n && is_blank(s[j]);) ++j;
    if (j == n) return add_puzzle(f, line, puzzle, NULL); /* "PUZZLE" or "PUZZLE," */
    size_t k = j;
    while (k < n && s[k] != ',' && !is_blank(s[k])) ++k;
    IPR_TRY(parse_grid(f->path, line, "solution", s + j, k - j, col0 + j, 1, solution));
    size_t m = k;
    while (m < n && is_blank(s[m])) ++m;
    IPR_CHECK(m == n, "%s:%llu: column %zu: unexpected text after the solution (a line is PUZZLE[,SOLUTION])", f->path,
              (unsigned long long)line, col0 + m);
    return add_puzzle(f, line, puzzle, solution);
fail:
    return IPR_ERR;
}

/* One CSV record s[0..n): fields separated by commas, each optionally double-quoted ("" inside a quoted field is
 * kept as it is: puzzle fields never hold quotes), spaces around a field ignored. off/len (cap) per field. */
static int csv_split(const char *path, uint64_t line, const char *s, size_t n, size_t *off, size_t *len, size_t cap,
                     size_t *nf) {
    size_t i = 0;
    *nf = 0;
    for (;;) {
        while (i < n && is_blank(s[i])) ++i;
        size_t start = i, end;
        if (i < n && s[i] == '"') {
            start = ++i;
            while (i < n && !(s[i] == '"' && !(i + 1 < n && s[i + 1] == '"'))) i += s[i] == '"' ? 2 : 1;
            IPR_CHECK(i < n, "%s:%llu: column %zu: a quoted field is not closed", path, (unsigned long long)line, start);
            end = i++;
            while (i < n && is_blank(s[i])) ++i;
            IPR_CHECK(i == n || s[i] == ',', "%s:%llu: column %zu: text after a quoted field", path,
                      (unsigned long long)line, i + 1);
        } else {
            while (i < n && s[i] != ',') ++i;
            end = i;
            while (end > start && is_blank(s[end - 1])) --end;
        }
        if (*nf < cap) off[*nf] = start, len[*nf] = end - start;
        ++*nf;
        if (i < n && s[i] == ',') {
            ++i;
            continue;
        }
        return IPR_OK;
    }
fail:
    return IPR_ERR;
}

static const char *const k_puzzle_cols[] = {"quizzes", "quiz", "puzzle", "puzzles", "question", "questions"};
static const char *const k_solution_cols[] = {"solutions", "solution", "answer", "answers"};

static int name_in(const char *s, size_t n, const char *const *names, size_t count) {
    for (size_t k = 0; k < count; ++k)
        if (strlen(names[k]) == n && strncasecmp(s, names[k], n) == 0) return 1;
    return 0;
}

typedef struct {
    int have_header;
    size_t n_fields, puzzle_col, solution_col;
    int has_solution_col;
    size_t *off, *len, cap;
} csv_state;

static int csv_line(ipr_instance_file *f, csv_state *cs, uint64_t line, const char *s, size_t n) {
    size_t nf = 0;
    IPR_TRY(csv_split(f->path, line, s, n, cs->off, cs->len, cs->cap, &nf));
    if (nf > cs->cap) { /* a wider record than any before: grow and split again */
        size_t *o = realloc(cs->off, nf * sizeof *o);
        IPR_CHECK(o != NULL, "out of memory reading %s", f->path);
        cs->off = o;
        size_t *l = realloc(cs->len, nf * sizeof *l);
        IPR_CHECK(l != NULL, "out of memory reading %s", f->path);
        cs->len = l;
        cs->cap = nf;
        IPR_TRY(csv_split(f->path, line, s, n, cs->off, cs->len, cs->cap, &nf));
    }
    if (!cs->have_header) {
        int found = 0;
        for (size_t k = 0; k < nf; ++k) {
            const char *name = s + cs->off[k];
            if (!found && name_in(name, cs->len[k], k_puzzle_cols, sizeof k_puzzle_cols / sizeof *k_puzzle_cols)) {
                cs->puzzle_col = k;
                found = 1;
            } else if (!cs->has_solution_col &&
                       name_in(name, cs->len[k], k_solution_cols, sizeof k_solution_cols / sizeof *k_solution_cols)) {
                cs->solution_col = k;
                cs->has_solution_col = 1;
            }
        }
        IPR_CHECK(found,
                  "%s:%llu: the CSV header '%.*s' names no puzzle column (expected one of quizzes, quiz, puzzle, "
                  "puzzles, question, questions; the solutions may be in solutions, solution, answer or answers)",
                  f->path, (unsigned long long)line, (int)(n > 200 ? 200 : n), s);
        cs->have_header = 1;
        cs->n_fields = nf;
        return IPR_OK;
    }
    IPR_CHECK(nf == cs->n_fields, "%s:%llu: %zu fields, but the header has %zu", f->path, (unsigned long long)line, nf,
              cs->n_fields);
    uint8_t puzzle[81], solution[81];
    const size_t pc = cs->puzzle_col, sc = cs->solution_col;
    IPR_TRY(parse_grid(f->path, line, "puzzle", s + cs->off[pc], cs->len[pc], cs->off[pc] + 1, 0, puzzle));
    if (cs->has_solution_col && cs->len[sc] > 0) {
        IPR_TRY(parse_grid(f->path, line, "solution", s + cs->off[sc], cs->len[sc], cs->off[sc] + 1, 1, solution));
        return add_puzzle(f, line, puzzle, solution);
    }
    return add_puzzle(f, line, puzzle, NULL);
fail:
    return IPR_ERR;
}

/* Parse a text or CSV file held in data[0..n). */
static int parse_puzzles(ipr_instance_file *f, const char *data, size_t n) {
    csv_state cs;
    memset(&cs, 0, sizeof cs);
    uint64_t line = 0, header_line = 0;
    size_t pos = 0;
    if (n >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0) pos = 3; /* a UTF-8 byte-order mark */
    IPR_CHECK(n > pos, "%s: the file is empty (no puzzles)", f->path);
    while (pos < n) {
        const char *s = data + pos;
        const char *nl = memchr(s, '\n', n - pos);
        size_t len = nl ? (size_t)(nl - s) : n - pos;
        pos += len + (nl ? 1 : 0);
        ++line;
        size_t lead = 0;
        while (lead < len && is_blank(s[lead])) ++lead;
        while (len > lead && is_blank(s[len - 1])) --len;
        if (len == lead || s[lead] == '#') continue; /* blank, or a comment */
        if (f->format == IPR_INSTANCES_AUTO) { /* a puzzle line starts with a cell; a CSV header with a name */
            const int cell = (s[lead] >= '0' && s[lead] <= '9') || s[lead] == '.';
            f->format = !cell && memchr(s + lead, ',', len - lead) ? IPR_INSTANCES_CSV : IPR_INSTANCES_TEXT;
        }
        if (f->format == IPR_INSTANCES_TEXT) {
            IPR_TRY(text_line(f, line, s + lead, len - lead, lead + 1));
        } else {
            if (!cs.have_header) header_line = line;
            IPR_TRY(csv_line(f, &cs, line, s, len));
        }
    }
    if (f->format == IPR_INSTANCES_CSV) {
        IPR_CHECK(cs.have_header, "%s: no CSV header and no puzzles (only blank or '#' comment lines)", f->path);
        IPR_CHECK(f->rows > 0, "%s: no puzzles after the CSV header (line %llu)", f->path,
                  (unsigned long long)header_line);
    } else
        IPR_CHECK(f->rows > 0, "%s: no puzzles (only blank or '#' comment lines)", f->path);
    free(cs.off);
    free(cs.len);
    return IPR_OK;
fail:
    free(cs.off);
    free(cs.len);
    return IPR_ERR;
}

/* ---------------- datagen HDF5 ---------------- */

/* Rows [first, first + n) of a dataset of `rank` dims (dims[0] rows) into out, as mem_type. */
static int read_rows(hid_t ds, int rank, const hsize_t *dims, hsize_t first, hsize_t n, hid_t mem_type, void *out) {
    hid_t fs = H5I_INVALID_HID, ms = H5I_INVALID_HID;
    hsize_t start[8] = {0}, count[8];
    start[0] = first;
    count[0] = n;
    for (int d = 1; d < rank; ++d) count[d] = dims[d];
    IPR_H5(fs = H5Dget_space(ds));
    IPR_H5(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL));
    IPR_H5(ms = H5Screate_simple(rank, count, NULL));
    IPR_H5(H5Dread(ds, mem_type, ms, fs, H5P_DEFAULT, out));
    IPR_H5(H5Sclose(ms));
    IPR_H5(H5Sclose(fs));
    return IPR_OK;
fail:
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return IPR_ERR;
}

/* Open dataset `name` and check its shape: (rows, d1, d2[, d3]) with rows = *n (or set *n when 0), integer. */
static hid_t open_table(ipr_instance_file *f, const char *name, int rank, hsize_t d1, hsize_t d2, hsize_t d3,
                        hsize_t *n, hsize_t dims[4]) {
    hid_t ds = H5I_INVALID_HID;
    int r = 0, is_float = 0;
    int64_t got[8];
    char want[96], have[96];
    IPR_CHECK(ipr_h5_exists(f->h5, name), "%s: no dataset %s (an `ipr datagen` file of %s has one)", f->path, name,
              ipr_bench_name(f->bench));
    IPR_H5(ds = H5Dopen2(f->h5, name, H5P_DEFAULT));
    IPR_TRY(ipr_h5_dataset_shape(ds, &r, got, &is_float));
    const hsize_t expect[4] = {*n, d1, d2, d3};
    int ok = r == rank && !is_float && (*n == 0 || (hsize_t)got[0] == *n);
    for (int d = 1; d < rank && ok; ++d) ok = (hsize_t)got[d] == expect[d];
    if (!ok) {
        const int64_t e[3] = {(int64_t)d1, (int64_t)d2, (int64_t)d3};
        int at = *n ? snprintf(want, sizeof want, "[%llu", (unsigned long long)*n) : snprintf(want, sizeof want, "[N");
        for (int d = 1; d < rank && at > 0 && (size_t)at < sizeof want; ++d)
            at += snprintf(want + at, sizeof want - (size_t)at, ", %lld", (long long)e[d - 1]);
        if (at > 0 && (size_t)at < sizeof want) snprintf(want + at, sizeof want - (size_t)at, "]");
        ipr_dims_str(have, sizeof have, got, r);
        IPR_FAIL("%s: %s has shape %s%s, expected %s integers%s", f->path, name, have, is_float ? " (float)" : "", want,
                 *n ? " (a row per row of /images)" : "");
    }
    if (*n == 0) *n = (hsize_t)got[0];
    for (int d = 0; d < 4; ++d) dims[d] = d < r ? (hsize_t)got[d] : 0;
    return ds;
fail:
    if (ds >= 0) H5Dclose(ds);
    return H5I_INVALID_HID;
}

#define DATAGEN_BLOCK 4096 /* rows of /given and /solution checked per read */

static int open_datagen(ipr_instance_file *f) {
    hid_t dg = H5I_INVALID_HID, dsol = H5I_INVALID_HID, dnum = H5I_INVALID_HID;
    uint8_t *given = NULL, *sol = NULL, *num = NULL;
    char attr[64];
    IPR_TRY(ipr_sha256_file(f->path, f->sha256));
    IPR_TRY_ID(f->h5 = ipr_h5_open_read(f->path));
    IPR_CHECK(ipr_h5_read_attr_str(f->h5, "format", attr, sizeof attr) == IPR_OK && strcmp(attr, "ipr-datagen") == 0,
              "%s: not an `ipr datagen` file (its root attribute format is not 'ipr-datagen')", f->path);
    IPR_CHECK(ipr_h5_read_attr_str(f->h5, "benchmark", attr, sizeof attr) == IPR_OK,
              "%s: no benchmark attribute", f->path);
    IPR_CHECK(strcmp(attr, ipr_bench_name(f->bench)) == 0, "%s holds %s instances, but the benchmark is %s", f->path,
              attr, ipr_bench_name(f->bench));
    hsize_t N = 0;
    switch (f->bench) {
    case IPR_BENCH_SUDOKU: f->images = open_table(f, "/images", 3, IPR_SUDOKU_SIDE, IPR_SUDOKU_SIDE, 0, &N, f->img_dims); break;
    case IPR_BENCH_EVEN_PIXELS: f->images = open_table(f, "/images", 4, IPR_EP_SIDE, IPR_EP_SIDE, 3, &N, f->img_dims); break;
    default: f->images = open_table(f, "/images", 4, IPR_POLY_SIDE, IPR_POLY_SIDE, 3, &N, f->img_dims); break;
    }
    IPR_TRY_ID(f->images);
    f->img_rank = f->bench == IPR_BENCH_SUDOKU ? 3 : 4;
    IPR_CHECK(N > 0, "%s: no instances (/images has 0 rows)", f->path);
    if (f->bench != IPR_BENCH_SUDOKU) {
        f->rows = N;
        return IPR_OK;
    }
    /* Sudoku: every row's clue mask and solution, checked as a puzzle file's are */
    hsize_t dims[4];
    IPR_TRY_ID(dg = open_table(f, "/given", 3, 9, 9, 0, &N, dims));
    IPR_TRY_ID(dsol = open_table(f, "/solution", 3, 9, 9, 0, &N, dims));
    if (ipr_h5_exists(f->h5, "/num_given")) IPR_TRY_ID(dnum = open_table(f, "/num_given", 1, 0, 0, 0, &N, dims));
    IPR_TRY_PTR(given = ipr_malloc((size_t)DATAGEN_BLOCK * 81, "datagen rows"));
    IPR_TRY_PTR(sol = ipr_malloc((size_t)DATAGEN_BLOCK * 81, "datagen rows"));
    IPR_TRY_PTR(num = ipr_malloc(DATAGEN_BLOCK, "datagen rows"));
    const hsize_t d99[3] = {N, 9, 9}, d1[1] = {N};
    for (hsize_t r0 = 0; r0 < N; r0 += DATAGEN_BLOCK) {
        const hsize_t m = N - r0 < DATAGEN_BLOCK ? N - r0 : DATAGEN_BLOCK;
        IPR_TRY(read_rows(dg, 3, d99, r0, m, H5T_NATIVE_UINT8, given));
        IPR_TRY(read_rows(dsol, 3, d99, r0, m, H5T_NATIVE_UINT8, sol));
        if (dnum >= 0) IPR_TRY(read_rows(dnum, 1, d1, r0, m, H5T_NATIVE_UINT8, num));
        for (hsize_t k = 0; k < m; ++k) {
            const uint8_t *g = given + k * 81, *s = sol + k * 81;
            char where[4200];
            snprintf(where, sizeof where, "%s: row %llu", f->path, (unsigned long long)(r0 + k));
            uint8_t puzzle[81];
            int n_given = 0, unknown = 0, free_cells = 0;
            for (int c = 0; c < 81; ++c) {
                IPR_CHECK(g[c] <= 1, "%s: /given holds %u at r%dc%d (expected 0 or 1)", where, g[c], c / 9 + 1, c % 9 + 1);
                IPR_CHECK(s[c] <= 9, "%s: /solution holds %u at r%dc%d (expected 0-9)", where, s[c], c / 9 + 1, c % 9 + 1);
                IPR_CHECK(!g[c] || s[c] >= 1, "%s: the clue cell r%dc%d has no digit in /solution", where, c / 9 + 1,
                          c % 9 + 1);
                puzzle[c] = g[c] ? s[c] : 0;
                n_given += g[c];
                free_cells += !g[c];
                unknown += !g[c] && s[c] == 0;
            }
            IPR_CHECK(unknown == 0 || unknown == free_cells,
                      "%s: /solution gives %d of the %d non-clue cells (0 = unknown): a row gives every digit or only "
                      "its clues",
                      where, free_cells - unknown, free_cells);
            IPR_CHECK(dnum < 0 || num[k] == n_given, "%s: /num_given is %u, but /given marks %d clue cells", where, num[k],
                      n_given);
            const int solved = unknown == 0;
            IPR_TRY(check_puzzle(where, puzzle, solved ? s : NULL));
            IPR_TRY(add_row(f, g, s, solved, 0));
        }
    }
    free(given), free(sol), free(num);
    H5Dclose(dg);
    H5Dclose(dsol);
    if (dnum >= 0) H5Dclose(dnum);
    return IPR_OK;
fail:
    free(given), free(sol), free(num);
    if (dg >= 0) H5Dclose(dg);
    if (dsol >= 0) H5Dclose(dsol);
    if (dnum >= 0) H5Dclose(dnum);
    return IPR_ERR;
}

/* ---------------- the file ---------------- */

ipr_instance_file *ipr_instance_file_open(const char *path, ipr_instances_format format, ipr_bench_kind bench,
                                          uint64_t keep_first, uint64_t keep_count) {
    ipr_instance_file *f = NULL;
    char *data = NULL;
    size_t len = 0;
    FILE *fp = NULL;
    IPR_CHECK(path && *path, "instances: no file named");
    IPR_CHECK((unsigned)format <= IPR_INSTANCES_DATAGEN, "instances: unknown format %d", (int)format);
    IPR_CHECK((unsigned)bench < IPR_BENCH_COUNT, "instances: unknown benchmark %d", (int)bench);
    IPR_TRY_PTR(f = ipr_calloc(1, sizeof *f, "instance file"));
    f->h5 = f->images = H5I_INVALID_HID;
    snprintf(f->path, sizeof f->path, "%s", path);
    f->format = format;
    f->bench = bench;
    f->first = keep_first;
    f->count = keep_count;
    if (format == IPR_INSTANCES_AUTO) { /* the HDF5 signature (a datagen file), else a puzzle file */
        static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
        unsigned char head[8] = {0};
        IPR_IO((fp = fopen(path, "rb")) != NULL, path);
        size_t got = fread(head, 1, sizeof head, fp);
        IPR_IO(!ferror(fp), path);
        fclose(fp);
        fp = NULL;
        if (got == sizeof head && memcmp(head, sig, sizeof sig) == 0) f->format = IPR_INSTANCES_DATAGEN;
    }
    if (f->format == IPR_INSTANCES_DATAGEN) {
        IPR_TRY(open_datagen(f));
    } else {
        IPR_CHECK(bench == IPR_BENCH_SUDOKU,
                  "%s: puzzle files (text, csv) hold Sudoku puzzles; for %s give an `ipr datagen` file", path,
                  ipr_bench_name(bench));
        IPR_TRY(read_all(path, &data, &len));
        ipr_sha256_hex(data, len, f->sha256);
        IPR_TRY(parse_puzzles(f, data, len));
        free(data);
        data = NULL;
    }
    for (int i = 0; i < 16; ++i) {
        const char c = f->sha256[i];
        f->key = (f->key << 4) | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    /* the rows kept: the range asked for, cut at the end of the file */
    if (f->first >= f->rows)
        f->count = 0;
    else if (f->count > f->rows - f->first)
        f->count = f->rows - f->first;
    return f;
fail:
    if (fp) fclose(fp);
    free(data);
    ipr_instance_file_free(f);
    return NULL;
}

void ipr_instance_file_free(ipr_instance_file *f) {
    if (!f) return;
    if (f->images >= 0) H5Dclose(f->images);
    if (f->h5 >= 0) H5Fclose(f->h5);
    free(f->kept);
    free(f);
}

uint64_t ipr_instance_file_rows(const ipr_instance_file *f) { return f->rows; }
ipr_instances_format ipr_instance_file_format(const ipr_instance_file *f) { return f->format; }
const char *ipr_instance_file_sha256(const ipr_instance_file *f) { return f->sha256; }

void ipr_instance_file_kept(const ipr_instance_file *f, uint64_t *first, uint64_t *count) {
    if (first) *first = f->first;
    if (count) *count = f->count;
}

uint64_t ipr_instance_file_solved(const ipr_instance_file *f) {
    uint64_t n = 0;
    if (f->bench == IPR_BENCH_SUDOKU)
        for (uint64_t k = 0; k < f->count; ++k) n += f->kept[k].solved;
    return n;
}

int ipr_instance_file_first_unsolved(const ipr_instance_file *f, uint64_t *row, uint64_t *line) {
    if (f->bench != IPR_BENCH_SUDOKU) return 0;
    for (uint64_t k = 0; k < f->count; ++k)
        if (!f->kept[k].solved) {
            *row = f->first + k;
            *line = f->kept[k].line;
            return 1;
        }
    return 0;
}

double ipr_instance_file_mean_given(const ipr_instance_file *f) {
    if (f->bench != IPR_BENCH_SUDOKU || f->count == 0) return 0.0;
    double s = 0.0;
    for (uint64_t k = 0; k < f->count; ++k)
        for (int c = 0; c < 81; ++c) s += f->kept[k].given[c];
    return s / (double)f->count;
}

static int check_kept(const ipr_instance_file *f, uint64_t row) {
    IPR_CHECK(row >= f->first && row - f->first < f->count, "%s: row %llu was not loaded (rows %llu..%llu of %llu are)",
              f->path, (unsigned long long)row, (unsigned long long)f->first,
              (unsigned long long)(f->first + f->count) - (f->count ? 1 : 0), (unsigned long long)f->rows);
    return IPR_OK;
fail:
    return IPR_ERR;
}

int ipr_instance_file_sudoku(const ipr_instance_file *f, const ipr_mnist_pool *pool, uint64_t row,
                             ipr_sudoku_instance *out, int *solved) {
    IPR_CHECK(f->bench == IPR_BENCH_SUDOKU, "%s: not a Sudoku instance file", f->path);
    IPR_TRY(check_kept(f, row));
    const kept_row *r = &f->kept[row - f->first];
    memset(out, 0, sizeof *out);
    memcpy(out->given, r->given, 81);
    memcpy(out->solution, r->digit, 81);
    for (int c = 0; c < 81; ++c) out->num_given += r->given[c];
    if (solved) *solved = r->solved;
    if (f->format == IPR_INSTANCES_DATAGEN) return ipr_instance_file_image(f, row, out->image);
    IPR_CHECK(pool && pool->set.images, "%s: rendering puzzles needs the MNIST test pool", f->path);
    for (int c = 0; c < 81; ++c) {
        const int d = r->digit[c];
        if (d == 0) continue; /* unknown digit: a black cell, which the sampler generates anyway */
        IPR_CHECK(pool->n_by_digit[d] > 0, "MNIST pool has no image of digit %d", d);
        ipr_rng rng;
        ipr_rng_init(&rng, f->key, IPR_RNG_SUDOKU_FILE_DIGITS, row, (uint32_t)c);
        const uint32_t pick = pool->by_digit[d][ipr_rng_below(&rng, pool->n_by_digit[d])];
        out->digit_image[c] = pick;
        const uint8_t *src = pool->set.images + (size_t)pick * 784;
        const int r0 = (c / 9) * IPR_SUDOKU_CELL, c0 = (c % 9) * IPR_SUDOKU_CELL;
        for (int y = 0; y < IPR_SUDOKU_CELL; ++y)
            memcpy(out->image + (size_t)(r0 + y) * IPR_SUDOKU_SIDE + c0, src + y * IPR_SUDOKU_CELL, IPR_SUDOKU_CELL);
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

int ipr_instance_file_image(const ipr_instance_file *f, uint64_t row, uint8_t *image) {
    IPR_CHECK(f->format == IPR_INSTANCES_DATAGEN, "%s: only datagen files store images", f->path);
    IPR_TRY(check_kept(f, row));
    if (read_rows(f->images, f->img_rank, f->img_dims, row, 1, H5T_NATIVE_UINT8, image) != IPR_OK) {
        ipr_error_context("%s: reading /images row %llu", f->path, (unsigned long long)row);
        return IPR_ERR;
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}
