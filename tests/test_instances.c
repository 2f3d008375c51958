/* test_instances.c: instance files (ipr/instances.h): the text and CSV puzzle formats read the same puzzles, rows
 * render from the MNIST test pool with per-(file hash, row, cell) keys whatever rows are loaded, every bad input is
 * refused naming the file and line, datagen files of each benchmark load as stored, and the task serves file rows. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ipr/bench.h"
#include "ipr/common.h"
#include "ipr/h5io.h"
#include "ipr/instances.h"
#include "ipr/mnist.h"
#include "ipr/rng.h"
#include "ipr/sampler.h"
#include "sampler/sampler_internal.h"
#include "test_util.h"

#define N_PUZ 5
#define UNSOLVED 3 /* the row written without a solution */

static ipr_mnist_pool g_pool;
static char g_dir[4096];
static ipr_sudoku_instance g_inst[N_PUZ]; /* the generator's puzzles the files hold */

static int setup(void **state) {
    (void)state;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/datasets/mnist", IPR_SOURCE_DIR);
    if (ipr_mnist_pool_load(dir, IPR_SPLIT_TEST, &g_pool) != IPR_OK) return -1;
    if (ipr_test_tmpdir(g_dir, sizeof g_dir, "test_instances") != 0) return -1;
    for (int i = 0; i < N_PUZ; ++i)
        if (ipr_sudoku_make(&g_pool, 99, IPR_SPLIT_TEST, i % 2 ? IPR_SUDOKU_HARD : IPR_SUDOKU_MEDIUM, (uint64_t)i,
                            &g_inst[i]) != IPR_OK)
            return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    ipr_mnist_pool_free(&g_pool);
    return ipr_test_rmtree(g_dir);
}

static void path_of(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", g_dir, name); }

static void write_file(const char *name, const char *text) {
    char p[4200];
    path_of(p, sizeof p, name);
    FILE *fp = fopen(p, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
    assert_int_equal(fclose(fp), 0);
}

/* 81 characters of instance i's clues (blank = '0' or '.') and of its solution */
static void puzzle_str(int i, char blank, char out[82]) {
    for (int c = 0; c < 81; ++c) out[c] = g_inst[i].given[c] ? (char)('0' + g_inst[i].solution[c]) : blank;
    out[81] = '\0';
}
static void solution_str(int i, char out[82]) {
    for (int c = 0; c < 81; ++c) out[c] = (char)('0' + g_inst[i].solution[c]);
    out[81] = '\0';
}

/* The same five puzzles as text (comments, blank lines, both blanks, both separators, CRLF, one without a
 * solution) and as two CSV dialects (extra columns, quotes, question/answer with odd case and spaces). */
static void write_puzzle_files(void) {
    char text[8192] = "# five puzzles\n\n", csv[8192] = "id,quizzes,solutions,rating\n",
         qa[8192] = "Question , ANSWER\n";
    for (int i = 0; i < N_PUZ; ++i) {
        char p[82], s[82], line[400];
        puzzle_str(i, i % 2 ? '.' : '0', p);
        solution_str(i, s);
        if (i == UNSOLVED)
            snprintf(line, sizeof line, "  %s\n", p);
        else
            snprintf(line, sizeof line, "%s%s%s%s", p, i == 1 ? " \t" : ",", s, i == 2 ? "\r\n" : "\n");
        strcat(text, line);
        if (i == 1) strcat(text, "# a comment between puzzles\n");
        snprintf(line, sizeof line, "%d,%s%s%s,%s,%d\n", i, i == 4 ? "\"" : "", p, i == 4 ? "\"" : "",
                 i == UNSOLVED ? "" : s, 3 * i);
        strcat(csv, line);
        snprintf(line, sizeof line, "%s , %s\n", p, i == UNSOLVED ? "" : s);
        strcat(qa, line);
    }
    write_file("p.txt", text);
    write_file("p.csv", csv);
    write_file("qa.csv", qa);
}

static ipr_instance_file *open_file(const char *name, ipr_instances_format fmt, ipr_bench_kind bench, uint64_t first,
                                    uint64_t count) {
    char p[4200];
    path_of(p, sizeof p, name);
    ipr_instance_file *f = ipr_instance_file_open(p, fmt, bench, first, count);
    if (!f) printf("  open %s: %s\n", name, ipr_error_message());
    return f;
}

static void test_formats_agree(void **state) {
    (void)state;
    write_puzzle_files();
    static const char *const names[] = {"p.txt", "p.csv", "qa.csv"};
    static const ipr_instances_format want[] = {IPR_INSTANCES_TEXT, IPR_INSTANCES_CSV, IPR_INSTANCES_CSV};
    static const uint64_t unsolved_line[] = {7, 5, 5}; /* the comment and the blank line count */
    for (int k = 0; k < 3; ++k) {
        ipr_instance_file *f = open_file(names[k], IPR_INSTANCES_AUTO, IPR_BENCH_SUDOKU, 0, UINT64_MAX);
        assert_non_null(f);
        assert_int_equal(ipr_instance_file_format(f), want[k]);
        assert_int_equal(ipr_instance_file_rows(f), N_PUZ);
        assert_int_equal(ipr_instance_file_solved(f), N_PUZ - 1);
        uint64_t row = 0, line = 0;
        assert_int_equal(ipr_instance_file_first_unsolved(f, &row, &line), 1);
        assert_int_equal(row, UNSOLVED);
        assert_int_equal(line, unsolved_line[k]);
        double mean = 0.0;
        for (int i = 0; i < N_PUZ; ++i) {
            ipr_sudoku_instance s;
            int solved = -1;
            assert_int_equal(ipr_instance_file_sudoku(f, &g_pool, (uint64_t)i, &s, &solved), IPR_OK);
            assert_int_equal(solved, i != UNSOLVED);
            assert_memory_equal(s.given, g_inst[i].given, 81);
            assert_int_equal(s.num_given, g_inst[i].num_given);
            for (int c = 0; c < 81; ++c)
                assert_int_equal(s.solution[c], (i != UNSOLVED || g_inst[i].given[c]) ? g_inst[i].solution[c] : 0);
            mean += s.num_given;
        }
        assert_true(ipr_instance_file_mean_given(f) == mean / N_PUZ);
        /* an explicit format reads the same */
        ipr_instance_file *g = open_file(names[k], want[k], IPR_BENCH_SUDOKU, 0, 2);
        assert_non_null(g);
        assert_string_equal(ipr_instance_file_sha256(g), ipr_instance_file_sha256(f));
        ipr_instance_file_free(g);
        ipr_instance_file_free(f);
    }
}

/* Known cells show a test-pool image of their digit, picked by the stream (file hash, row, cell); unknown cells are
 * black; a row renders the same whichever rows are loaded; another file (another hash) draws other images. */
static void test_render_keys(void **state) {
    (void)state;
    write_puzzle_files();
    ipr_instance_file *all = open_file("p.txt", IPR_INSTANCES_AUTO, IPR_BENCH_SUDOKU, 0, UINT64_MAX);
    ipr_instance_file *one = open_file("p.txt", IPR_INSTANCES_AUTO, IPR_BENCH_SUDOKU, 2, 1);
    ipr_instance_file *csv = open_file("p.csv", IPR_INSTANCES_AUTO, IPR_BENCH_SUDOKU, 0, UINT64_MAX);
    assert_non_null(all);
    assert_non_null(one);
    assert_non_null(csv);
    uint64_t first = 9, count = 9;
    ipr_instance_file_kept(one, &first, &count);
    assert_int_equal(first, 2);
    assert_int_equal(count, 1);
    ipr_sudoku_instance *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(ipr_instance_file_sudoku(all, &g_pool, 2, a, NULL), IPR_OK);
    assert_int_equal(ipr_instance_file_sudoku(one, &g_pool, 2, b, NULL), IPR_OK);
    assert_memory_equal(a->image, b->image, sizeof a->image);
    assert_memory_equal(a->digit_image, b->digit_image, sizeof a->digit_image);
    assert_int_equal(ipr_instance_file_sudoku(one, &g_pool, 1, b, NULL), IPR_ERR); /* not loaded */
    assert_non_null(strstr(ipr_error_message(), "row 1 was not loaded"));
    /* the key: the SHA-256's first 8 bytes */
    const char *sha = ipr_instance_file_sha256(all);
    uint64_t key = 0;
    for (int i = 0; i < 16; ++i) key = (key << 4) | (uint64_t)(sha[i] <= '9' ? sha[i] - '0' : sha[i] - 'a' + 10);
    int differs = 0;
    for (int r = 0; r < N_PUZ; ++r) {
        assert_int_equal(ipr_instance_file_sudoku(all, &g_pool, (uint64_t)r, a, NULL), IPR_OK);
        assert_int_equal(ipr_instance_file_sudoku(csv, &g_pool, (uint64_t)r, b, NULL), IPR_OK);
        for (int c = 0; c < 81; ++c) {
            const int d = a->solution[c];
            const int y0 = (c / 9) * IPR_SUDOKU_CELL, x0 = (c % 9) * IPR_SUDOKU_CELL;
            if (d == 0) {
                assert_int_equal(a->digit_image[c], 0);
                for (int y = 0; y < IPR_SUDOKU_CELL; ++y)
                    for (int x = 0; x < IPR_SUDOKU_CELL; ++x)
                        assert_int_equal(a->image[(size_t)(y0 + y) * IPR_SUDOKU_SIDE + (size_t)(x0 + x)], 0);
                continue;
            }
            ipr_rng rng;
            ipr_rng_init(&rng, key, IPR_RNG_SUDOKU_FILE_DIGITS, (uint64_t)r, (uint32_t)c);
            const uint32_t pick = g_pool.by_digit[d][ipr_rng_below(&rng, g_pool.n_by_digit[d])];
            assert_int_equal(a->digit_image[c], pick);
            assert_int_equal(g_pool.set.labels[pick], d);
            for (int y = 0; y < IPR_SUDOKU_CELL; ++y)
                assert_memory_equal(a->image + (size_t)(y0 + y) * IPR_SUDOKU_SIDE + (size_t)x0,
                                    g_pool.set.images + (size_t)pick * 784 + (size_t)y * IPR_SUDOKU_CELL,
                                    IPR_SUDOKU_CELL);
            differs += a->digit_image[c] != b->digit_image[c];
        }
    }
    assert_true(differs > 0);
    free(a);
    free(b);
    ipr_instance_file_free(all);
    ipr_instance_file_free(one);
    ipr_instance_file_free(csv);
}

typedef struct {
    const char *name, *text;
    ipr_instances_format format;
    const char *needle; /* appended to "NAME" in the expected message */
} bad_case;

static void test_bad_inputs(void **state) {
    (void)state;
    char p[82], s[82], p2[82], s2[82];
    puzzle_str(0, '.', p);
    solution_str(0, s);
    puzzle_str(1, '0', p2);
    solution_str(1, s2);
    /* variants of instance 0: a clue twice in a row / column / box, a solution out of line with the clues */
    char row_dup[82], col_dup[82], box_dup[82], bad_sol[82], mism_sol[82], zero_sol[82];
    memcpy(row_dup, p, 82), memcpy(col_dup, p, 82), memcpy(box_dup, p, 82);
    int clue = -1;
    for (int c = 0; c < 81 && clue < 0; ++c)
        if (g_inst[0].given[c]) clue = c;
    assert_true(clue >= 0);
    const int rr = clue / 9, cc = clue % 9;
    row_dup[rr * 9 + (cc + 4) % 9] = p[clue];          /* same row */
    col_dup[((rr + 4) % 9) * 9 + cc] = p[clue];        /* same column, another box */
    box_dup[(rr / 3 * 3 + (rr + 1) % 3) * 9 + cc / 3 * 3 + (cc + 1) % 3] = p[clue]; /* same box, other row/col */
    memcpy(bad_sol, s, 82), memcpy(mism_sol, s, 82), memcpy(zero_sol, s, 82);
    int free_cell = -1;
    for (int c = 0; c < 81 && free_cell < 0; ++c)
        if (!g_inst[0].given[c]) free_cell = c;
    bad_sol[free_cell] = (char)('1' + (s[free_cell] - '1' + 1) % 9); /* a repeat in its row */
    for (int c = 0; c < 81; ++c) mism_sol[c] = (char)('1' + (s[c] - '1' + 1) % 9); /* relabelled: valid, not these clues */
    zero_sol[free_cell] = '0';
    char t[64][512], zero_needle[96];
    int n = 0;
    snprintf(zero_needle, sizeof zero_needle, ":1: column %d: '0' in the solution is not a digit 1-9", free_cell + 83);
#define TXT(...) (snprintf(t[n], sizeof t[n], __VA_ARGS__), t[n++])
    const bad_case cases[] = {
        {"empty.txt", "", IPR_INSTANCES_AUTO, ": the file is empty"},
        {"comments.txt", "# nothing\n\n  \n", IPR_INSTANCES_AUTO, ": no puzzles"},
        {"short.txt", TXT("%.80s\n", p), IPR_INSTANCES_AUTO, ":1: the puzzle has 80 characters, expected 81"},
        {"long.txt", TXT("%s,%s\n%s1\n", p2, s2, p), IPR_INSTANCES_AUTO, ":2: the puzzle has 82 characters"},
        {"char.txt", TXT("%.4sx%s\n", p, p + 5), IPR_INSTANCES_AUTO, ":1: column 5: 'x' in the puzzle is not a digit or '.'"},
        {"row.txt", TXT("%s\n", row_dup), IPR_INSTANCES_AUTO, ":1: the clues contradict each other"},
        {"col.txt", TXT("%s\n", col_dup), IPR_INSTANCES_AUTO, ":1: the clues contradict each other"},
        {"box.txt", TXT("%s\n", box_dup), IPR_INSTANCES_AUTO, ":1: the clues contradict each other"},
        {"badsol.txt", TXT("%s,%s\n", p, bad_sol), IPR_INSTANCES_AUTO, ":1: the solution is not a valid grid"},
        {"mism.txt", TXT("%s,%s\n", p, mism_sol), IPR_INSTANCES_AUTO, ":1: the solution does not match the clues"},
        {"zero.txt", TXT("%s,%s\n", p, zero_sol), IPR_INSTANCES_AUTO, zero_needle},
        {"solen.txt", TXT("%s,%.80s\n", p, s), IPR_INSTANCES_AUTO, ":1: the solution has 80 characters"},
        {"extra.txt", TXT("%s,%s,hard\n", p, s), IPR_INSTANCES_AUTO, ":1: column 164: unexpected text after the solution"},
        {"third.txt", TXT("%s,%s\n\n%s\n", p2, s2, row_dup), IPR_INSTANCES_AUTO, ":3: the clues contradict"},
        {"nocol.csv", "id,rating\n1,2\n", IPR_INSTANCES_AUTO, ":1: the CSV header 'id,rating' names no puzzle column"},
        {"header.csv", "quizzes,solutions\n", IPR_INSTANCES_AUTO, ": no puzzles after the CSV header (line 1)"},
        {"fields.csv", TXT("quizzes,solutions\n%s,%s,7\n", p, s), IPR_INSTANCES_AUTO, ":2: 3 fields, but the header has 2"},
        {"quote.csv", TXT("puzzle\n\"%s\n", p), IPR_INSTANCES_CSV, ":2: column 1: a quoted field is not closed"},
        {"csvbad.csv", TXT("puzzle,answer\n%s,%s\n", p, bad_sol), IPR_INSTANCES_AUTO, ":2: the solution is not a valid grid"},
        {"astext.csv", TXT("quizzes,solutions\n%s,%s\n", p, s), IPR_INSTANCES_TEXT, ":1: column 1: 'q' in the puzzle"},
        {"nofile.txt", NULL, IPR_INSTANCES_AUTO, ": No such file"},
    };
#undef TXT
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        char path[4200], want[4400];
        path_of(path, sizeof path, cases[i].name);
        if (cases[i].text) write_file(cases[i].name, cases[i].text);
        ipr_instance_file *f = ipr_instance_file_open(path, cases[i].format, IPR_BENCH_SUDOKU, 0, UINT64_MAX);
        snprintf(want, sizeof want, "%s%s", path, cases[i].needle);
        printf("  %s -> %s\n", cases[i].name, ipr_error_message());
        if (f || !strstr(ipr_error_message(), want))
            fail_msg("%s: expected an error with '%s', got %s '%s'", cases[i].name, want, f ? "a file and" : "",
                     ipr_error_message());
    }
    /* a puzzle file is Sudoku */
    write_puzzle_files();
    assert_null(open_file("p.txt", IPR_INSTANCES_AUTO, IPR_BENCH_EVEN_PIXELS, 0, 1));
    assert_non_null(strstr(ipr_error_message(), "puzzle files (text, csv) hold Sudoku puzzles"));
}

/* An `ipr datagen`-layout file written here: images and masks of the rendered text rows (or of `bench`). */
static void write_datagen(const char *name, ipr_bench_kind bench, const char *bench_attr, int rows, int variant) {
    char p[4200];
    path_of(p, sizeof p, name);
    hid_t f = ipr_h5_create(p);
    assert_true(f >= 0);
    assert_int_equal(ipr_h5_attr_str(f, "format", variant == 1 ? "something-else" : "ipr-datagen"), IPR_OK);
    assert_int_equal(ipr_h5_attr_str(f, "benchmark", bench_attr), IPR_OK);
    if (bench == IPR_BENCH_SUDOKU) {
        ipr_instance_file *src = open_file("p.txt", IPR_INSTANCES_AUTO, IPR_BENCH_SUDOKU, 0, UINT64_MAX);
        assert_non_null(src);
        uint8_t *img = calloc((size_t)rows, (size_t)IPR_SUDOKU_SIDE * IPR_SUDOKU_SIDE), *given = calloc((size_t)rows, 81),
                *sol = calloc((size_t)rows, 81), *num = calloc((size_t)rows, 1);
        assert_non_null(img);
        ipr_sudoku_instance *s = malloc(sizeof *s);
        for (int r = 0; r < rows; ++r) {
            assert_int_equal(ipr_instance_file_sudoku(src, &g_pool, (uint64_t)r, s, NULL), IPR_OK);
            memcpy(img + (size_t)r * sizeof s->image, s->image, sizeof s->image);
            memcpy(given + r * 81, s->given, 81);
            memcpy(sol + r * 81, s->solution, 81);
            num[r] = (uint8_t)s->num_given;
        }
        if (variant == 2) given[5] = 2;                             /* not a mask */
        if (variant == 3) {                                          /* row 0: a solution with one cell unknown */
            for (int c = 0; c < 81; ++c)
                if (!given[c]) {
                    sol[c] = 0;
                    break;
                }
        }
        if (variant == 4) num[1] = (uint8_t)(num[1] + 1);
        const hsize_t di[3] = {(hsize_t)rows, variant == 5 ? 250 : IPR_SUDOKU_SIDE, IPR_SUDOKU_SIDE},
                      dg[3] = {(hsize_t)rows, 9, 9}, dn[1] = {(hsize_t)rows};
        assert_int_equal(ipr_h5_write(f, "images", H5T_NATIVE_UINT8, H5T_STD_U8LE, 3, di, img), IPR_OK);
        assert_int_equal(ipr_h5_write(f, "given", H5T_NATIVE_UINT8, H5T_STD_U8LE, 3, dg, given), IPR_OK);
        assert_int_equal(ipr_h5_write(f, "solution", H5T_NATIVE_UINT8, H5T_STD_U8LE, 3, dg, sol), IPR_OK);
        assert_int_equal(ipr_h5_write(f, "num_given", H5T_NATIVE_UINT8, H5T_STD_U8LE, 1, dn, num), IPR_OK);
        free(img), free(given), free(sol), free(num), free(s);
        ipr_instance_file_free(src);
    } else {
        uint8_t *img = malloc((size_t)rows * IPR_EP_PIXELS * 3);
        for (size_t i = 0; i < (size_t)rows * IPR_EP_PIXELS * 3; ++i) img[i] = (uint8_t)(i * 7);
        const hsize_t di[4] = {(hsize_t)rows, IPR_EP_SIDE, IPR_EP_SIDE, 3};
        assert_int_equal(ipr_h5_write(f, "images", H5T_NATIVE_UINT8, H5T_STD_U8LE, 4, di, img), IPR_OK);
        free(img);
    }
    assert_true(H5Fclose(f) >= 0);
}

static void test_datagen_files(void **state) {
    (void)state;
    write_puzzle_files();
    write_datagen("dg.h5", IPR_BENCH_SUDOKU, "sudoku", N_PUZ, 0);
    ipr_instance_file *txt = open_file("p.txt", IPR_INSTANCES_AUTO, IPR_BENCH_SUDOKU, 0, UINT64_MAX);
    ipr_instance_file *dg = open_file("dg.h5", IPR_INSTANCES_AUTO, IPR_BENCH_SUDOKU, 1, 3);
    assert_non_null(txt);
    assert_non_null(dg);
    assert_int_equal(ipr_instance_file_format(dg), IPR_INSTANCES_DATAGEN);
    assert_int_equal(ipr_instance_file_rows(dg), N_PUZ);
    assert_int_equal(ipr_instance_file_solved(dg), 2); /* rows 1..3, row 3 has only its clues */
    ipr_sudoku_instance *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    for (uint64_t r = 1; r <= 3; ++r) {
        int sa = -1, sb = -1;
        assert_int_equal(ipr_instance_file_sudoku(txt, &g_pool, r, a, &sa), IPR_OK);
        assert_int_equal(ipr_instance_file_sudoku(dg, NULL, r, b, &sb), IPR_OK); /* images as stored: no pool */
        assert_int_equal(sa, sb);
        assert_memory_equal(a->image, b->image, sizeof a->image);
        assert_memory_equal(a->given, b->given, 81);
        assert_memory_equal(a->solution, b->solution, 81);
    }
    free(a);
    free(b);
    ipr_instance_file_free(txt);
    ipr_instance_file_free(dg);

    write_datagen("ep.h5", IPR_BENCH_EVEN_PIXELS, "even_pixels", 3, 0);
    ipr_instance_file *ep = open_file("ep.h5", IPR_INSTANCES_DATAGEN, IPR_BENCH_EVEN_PIXELS, 0, UINT64_MAX);
    assert_non_null(ep);
    uint8_t img[IPR_EP_PIXELS * 3];
    assert_int_equal(ipr_instance_file_image(ep, 2, img), IPR_OK);
    for (size_t i = 0; i < sizeof img; ++i) assert_int_equal(img[i], (uint8_t)((2 * IPR_EP_PIXELS * 3 + i) * 7));
    ipr_instance_file_free(ep);

    static const struct {
        const char *name;
        ipr_bench_kind bench;
        const char *attr;
        int variant;
        ipr_bench_kind open_as;
        const char *needle;
    } bad[] = {
        {"other.h5", IPR_BENCH_EVEN_PIXELS, "even_pixels", 0, IPR_BENCH_SUDOKU, " holds even_pixels instances, but the benchmark is sudoku"},
        {"fmt.h5", IPR_BENCH_SUDOKU, "sudoku", 1, IPR_BENCH_SUDOKU, ": not an `ipr datagen` file"},
        {"mask.h5", IPR_BENCH_SUDOKU, "sudoku", 2, IPR_BENCH_SUDOKU, ": row 0: /given holds 2 at r1c6"},
        {"part.h5", IPR_BENCH_SUDOKU, "sudoku", 3, IPR_BENCH_SUDOKU, ": row 0: /solution gives"},
        {"num.h5", IPR_BENCH_SUDOKU, "sudoku", 4, IPR_BENCH_SUDOKU, ": row 1: /num_given is"},
        {"shape.h5", IPR_BENCH_SUDOKU, "sudoku", 5, IPR_BENCH_SUDOKU, ": /images has shape [5, 250, 252], expected [N, 252, 252] integers"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        char path[4200], want[4400];
        write_datagen(bad[i].name, bad[i].bench, bad[i].attr, N_PUZ, bad[i].variant);
        path_of(path, sizeof path, bad[i].name);
        ipr_instance_file *f = ipr_instance_file_open(path, IPR_INSTANCES_AUTO, bad[i].open_as, 0, UINT64_MAX);
        snprintf(want, sizeof want, "%s%s", path, bad[i].needle);
        printf("  %s -> %s\n", bad[i].name, ipr_error_message());
        if (f || !strstr(ipr_error_message(), want))
            fail_msg("%s: expected an error with '%s', got '%s'", bad[i].name, want, ipr_error_message());
    }
}

/* The task serves the rows it was asked for, knows their solutions, and refuses what it cannot serve. */
static void test_task_rows(void **state) {
    (void)state;
    write_puzzle_files();
    char path[4200];
    path_of(path, sizeof path, "p.txt");
    ipr_task_config tc;
    ipr_task_config_init(&tc);
    tc.bench = IPR_BENCH_SUDOKU;
    tc.instances_file = path;
    tc.instances_start = 1;
    tc.instances_count = 3;
    ipr_task *t = ipr_task_new(&tc);
    assert_non_null(t);
    assert_string_equal(ipr_task_instances_format(t), "text");
    assert_non_null(ipr_task_mnist_pool(t)); /* puzzle files are drawn from the test pool */
    assert_string_equal(ipr_task_mnist_pool(t)->sha256, g_pool.sha256);
    float *clean = malloc(sizeof(float) * IPR_SUDOKU_SIDE * IPR_SUDOKU_SIDE);
    uint8_t given[81], sol[81];
    for (uint64_t r = 1; r <= 3; ++r) {
        assert_int_equal(ipr_task_instance(t, 5, r, clean, given), IPR_OK);
        assert_memory_equal(given, g_inst[r].given, 81);
        assert_int_equal(ipr_task_solution(t, r, sol), r != UNSOLVED);
        if (r != UNSOLVED) assert_memory_equal(sol, g_inst[r].solution, 81);
    }
    assert_int_equal(ipr_task_instance(t, 5, 0, clean, given), IPR_ERR);
    assert_non_null(strstr(ipr_error_message(), "row 0 was not loaded"));
    ipr_task_free(t);
    /* rows past the end, a changed file, correction mode over a row without a solution */
    tc.instances_count = 5;
    assert_null(ipr_task_new(&tc));
    assert_non_null(strstr(ipr_error_message(), "has 5 rows; rows 1..5 were asked for"));
    tc.instances_count = 2;
    tc.instances_sha256 = "0000000000000000000000000000000000000000000000000000000000000000";
    assert_null(ipr_task_new(&tc));
    assert_non_null(strstr(ipr_error_message(), "changed: its SHA-256 is"));
    tc.instances_sha256 = NULL;
    tc.correction = 1;
    tc.instances_count = 3;
    assert_null(ipr_task_new(&tc));
    assert_non_null(strstr(ipr_error_message(), "p.txt:7: correction mode corrupts the solved grid, but this puzzle (row 3)"));
    tc.instances_count = 2; /* rows 1, 2: solved */
    t = ipr_task_new(&tc);
    assert_non_null(t);
    assert_int_equal(ipr_task_instance(t, 5, 2, clean, given), IPR_OK);
    for (int c = 0; c < 81; ++c) assert_int_equal(given[c], 0); /* correction: every cell refinable */
    ipr_task_free(t);
    free(clean);
}

int main(void) {
    ipr_h5_quiet();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats_agree),
        cmocka_unit_test(test_render_keys),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_datagen_files),
        cmocka_unit_test(test_task_rows),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
