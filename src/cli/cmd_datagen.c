/* cmd_datagen.c: `ipr datagen`: write N instances of a benchmark to HDF5, deterministically.
 * Same arguments -> byte-identical file (no timestamps in the file; attributes hold only the inputs). */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "ipr/bench.h"
#include "ipr/common.h"
#include "ipr/h5io.h"
#include "ipr/hash.h"
#include "ipr/instances.h"
#include "ipr/mnist.h"

#define BLOCK 64 /* instances generated and written per HDF5 write */

typedef struct {
    ipr_bench_kind bench;
    ipr_split split;
    ipr_sudoku_difficulty difficulty;
    int difficulty_set;
    uint64_t count, seed, start;
    const char *output;
    const char *mnist_dir;
    int force, quiet;
    const char *from;                /* --from: a puzzle file instead of the generator */
    ipr_instances_format from_format;
    int have_count;
} datagen_opts;

static void usage(FILE *to) {
    fprintf(to,
            "usage: ipr datagen --benchmark NAME --count N --seed S --output FILE.h5 [options]\n"
            "       ipr datagen --from PUZZLES --output FILE.h5 [--format F] [--start I] [--count N] [--mnist-dir DIR]\n\n"
            "Write N instances of a benchmark to an HDF5 file. Instance i is a pure function of\n"
            "(seed, split, start + i[, difficulty]): the same arguments give a byte-identical file.\n\n"
            "  --benchmark NAME    sudoku | even_pixels | counting_polygons\n"
            "  --count N           number of instances (>= 1)\n"
            "  --seed S            run seed, 0 .. 2^63-1 (decimal or 0x hex)\n"
            "  --output FILE       HDF5 file to write (refused if it exists, unless --force)\n"
            "  --split NAME        train | test (default test)\n"
            "  --start I           index of the first instance (default 0)\n"
            "  --difficulty D      sudoku clue count: easy 54-80, medium 27-53, hard 0-26, any 0-80\n"
            "                      (default: hard for the test split, any for train)\n"
            "  --mnist-dir DIR     MNIST IDX files for sudoku (default $IPR_MNIST_DIR or the shipped\n"
            "                      datasets/mnist); the full MNIST release works too. A curation.txt\n"
            "                      there restricts the pools (datasets/mnist/README.md)\n"
            "  --from PUZZLES      write the Sudoku puzzles of a text or CSV file (README, 'Instance files')\n"
            "                      instead of generating: rows --start.. (default all), rendered as `ipr run`\n"
            "                      renders them (MNIST test pool, cell images keyed by the file's SHA-256)\n"
            "  --format F          of --from: auto (default) | text | csv\n"
            "  --force             overwrite FILE if it exists\n"
            "  --quiet             no progress lines\n"
            "  -h, --help          this text\n\n"
            "Layout: /images (N,H,W[,3]) uint8, /index (N) uint64, and per benchmark\n"
            "  sudoku: /solution /given /digit_image (N,9,9), /num_given (N)\n"
            "  even_pixels: /hue_offset (N), /mask (N,32,32)\n"
            "  counting_polygons: /num_polygons /num_vertices /pair_label (N), /circles (N,11,3),\n"
            "                     /rotation (N,9), /color (N,3)\n"
            "Root attributes hold the generator's parameters (see README, 'Datagen files').\n");
}

static int parse(int argc, char **argv, datagen_opts *o) {
    static const struct option longopts[] = {
        {"benchmark", required_argument, 0, 'b'}, {"count", required_argument, 0, 'n'},
        {"seed", required_argument, 0, 's'},      {"output", required_argument, 0, 'o'},
        {"split", required_argument, 0, 'p'},     {"start", required_argument, 0, 'i'},
        {"difficulty", required_argument, 0, 'd'}, {"mnist-dir", required_argument, 0, 'm'},
        {"force", no_argument, 0, 'f'},           {"quiet", no_argument, 0, 'q'},
        {"from", required_argument, 0, 'F'},      {"format", required_argument, 0, 'T'},
        {"help", no_argument, 0, 'h'},            {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->split = IPR_SPLIT_TEST;
    o->mnist_dir = ipr_mnist_default_dir();
    int have_bench = 0, have_count = 0, have_seed = 0, have_split = 0, have_format = 0;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': IPR_TRY(ipr_bench_from_name(optarg, &o->bench)); have_bench = 1; break;
        case 'n': IPR_TRY(ipr_parse_u64(optarg, UINT32_MAX, "--count", &o->count)); have_count = 1; break;
        case 's': IPR_TRY(ipr_parse_u64(optarg, INT64_MAX, "--seed", &o->seed)); have_seed = 1; break;
        case 'o': o->output = optarg; break;
        case 'p': IPR_TRY(ipr_split_from_name(optarg, &o->split)); have_split = 1; break;
        case 'i': IPR_TRY(ipr_parse_u64(optarg, (1ull << 47), "--start", &o->start)); break;
        case 'd':
            IPR_TRY(ipr_sudoku_difficulty_from_name(optarg, &o->difficulty));
            o->difficulty_set = 1;
            break;
        case 'm': o->mnist_dir = optarg; break;
        case 'f': o->force = 1; break;
        case 'q': o->quiet = 1; break;
        case 'F': o->from = optarg; break;
        case 'T':
            IPR_TRY(ipr_instances_format_from_name(optarg, &o->from_format));
            IPR_CHECK(o->from_format != IPR_INSTANCES_DATAGEN, "--format: --from reads puzzle files (text or csv)");
            have_format = 1;
            break;
        case 'h': usage(stdout); exit(IPR_EXIT_OK);
        case ':': IPR_FAIL("option %s needs a value", argv[optind - 1]);
        default: IPR_FAIL("unknown option %s (see `ipr datagen --help`)", argv[optind - 1]);
        }
    }
    IPR_CHECK(optind == argc, "unexpected argument '%s'", optind < argc ? argv[optind] : "");
    o->have_count = have_count;
    IPR_CHECK(o->from || !have_format, "--format describes --from, which is not given");
    if (o->from) { /* a puzzle file: the generator's options do not apply */
        IPR_CHECK(!have_bench || o->bench == IPR_BENCH_SUDOKU, "--from reads Sudoku puzzles; --benchmark must be sudoku");
        IPR_CHECK(!have_seed && !o->difficulty_set && !have_split,
                  "--seed, --difficulty and --split belong to the generator; --from renders the file's puzzles from the "
                  "MNIST test pool");
        IPR_CHECK(!have_count || o->count >= 1, "--count must be at least 1 (got 0)");
        IPR_CHECK(o->output && *o->output, "--output is required");
        o->bench = IPR_BENCH_SUDOKU;
        o->split = IPR_SPLIT_TEST;
        struct stat st0;
        IPR_CHECK(o->force || stat(o->output, &st0) != 0, "%s exists (use --force to overwrite)", o->output);
        return IPR_OK;
    }
    IPR_CHECK(have_bench, "--benchmark is required (sudoku, even_pixels or counting_polygons)");
    IPR_CHECK(have_count, "--count is required");
    IPR_CHECK(o->count >= 1, "--count must be at least 1 (got 0)");
    IPR_CHECK(have_seed, "--seed is required");
    IPR_CHECK(o->output && *o->output, "--output is required");
    IPR_CHECK(o->start + o->count <= (1ull << 48), "instance indices must stay below 2^48");
    IPR_CHECK(!o->difficulty_set || o->bench == IPR_BENCH_SUDOKU, "--difficulty applies to sudoku only");
    if (!o->difficulty_set) o->difficulty = o->split == IPR_SPLIT_TEST ? IPR_SUDOKU_HARD : IPR_SUDOKU_ANY;
    struct stat st;
    IPR_CHECK(o->force || stat(o->output, &st) != 0, "%s exists (use --force to overwrite)", o->output);
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* Per-benchmark row buffers for one block, and the datasets they go to. */
typedef struct {
    hid_t ds[8];
    int nds;
    uint8_t *images;
    uint64_t *index;
    uint8_t *u8a, *u8b, *u8c;   /* per-benchmark uint8 columns */
    uint32_t *u32a;
    float *f32a, *f32b;
} block_buf;

static void block_free(block_buf *b) {
    for (int i = 0; i < b->nds; ++i)
        if (b->ds[i] >= 0) H5Dclose(b->ds[i]);
    free(b->images), free(b->index), free(b->u8a), free(b->u8b), free(b->u8c), free(b->u32a);
    free(b->f32a), free(b->f32b);
    memset(b, 0, sizeof *b);
}

static hsize_t image_pixels(ipr_bench_kind k) {
    switch (k) {
    case IPR_BENCH_SUDOKU: return (hsize_t)IPR_SUDOKU_SIDE * IPR_SUDOKU_SIDE;
    case IPR_BENCH_EVEN_PIXELS: return (hsize_t)IPR_EP_PIXELS * 3;
    default: return (hsize_t)IPR_POLY_SIDE * IPR_POLY_SIDE * 3;
    }
}

static int create_datasets(hid_t f, const datagen_opts *o, block_buf *b) {
    hsize_t n = o->count;
    b->nds = 0;
    for (int i = 0; i < 8; ++i) b->ds[i] = H5I_INVALID_HID;
#define MK(name, type, rank, ...)                                                     \
    do {                                                                              \
        hsize_t d_[] = {n, __VA_ARGS__};                                              \
        IPR_TRY_ID(b->ds[b->nds] = ipr_h5_create_rows(f, name, type, rank, d_));          \
        b->nds++;                                                                     \
    } while (0)
    switch (o->bench) {
    case IPR_BENCH_SUDOKU:
        MK("images", H5T_STD_U8LE, 3, IPR_SUDOKU_SIDE, IPR_SUDOKU_SIDE);
        MK("index", H5T_STD_U64LE, 1, 0);
        MK("solution", H5T_STD_U8LE, 3, 9, 9);
        MK("given", H5T_STD_U8LE, 3, 9, 9);
        MK("digit_image", H5T_STD_U32LE, 3, 9, 9);
        MK("num_given", H5T_STD_U8LE, 1, 0);
        break;
    case IPR_BENCH_EVEN_PIXELS:
        MK("images", H5T_STD_U8LE, 4, IPR_EP_SIDE, IPR_EP_SIDE, 3);
        MK("index", H5T_STD_U64LE, 1, 0);
        MK("hue_offset", H5T_IEEE_F32LE, 1, 0);
        MK("mask", H5T_STD_U8LE, 3, IPR_EP_SIDE, IPR_EP_SIDE);
        break;
    default:
        MK("images", H5T_STD_U8LE, 4, IPR_POLY_SIDE, IPR_POLY_SIDE, 3);
        MK("index", H5T_STD_U64LE, 1, 0);
        MK("num_polygons", H5T_STD_U8LE, 1, 0);
        MK("num_vertices", H5T_STD_U8LE, 1, 0);
        MK("pair_label", H5T_STD_U8LE, 1, 0);
        MK("circles", H5T_IEEE_F32LE, 3, IPR_POLY_MAX_CIRCLES, 3);
        MK("rotation", H5T_IEEE_F32LE, 2, IPR_POLY_MAX_POLYGONS);
        MK("color", H5T_STD_U8LE, 2, 3);
        break;
    }
#undef MK
    b->images = ipr_malloc(BLOCK * image_pixels(o->bench), "image block");
    b->index = ipr_calloc(BLOCK, sizeof(uint64_t), "index block");
    b->u8a = ipr_calloc(BLOCK, 1024, "block");
    b->u8b = ipr_calloc(BLOCK, 1024, "block");
    b->u8c = ipr_calloc(BLOCK, 1024, "block");
    b->u32a = ipr_calloc(BLOCK, 81 * sizeof(uint32_t), "block");
    b->f32a = ipr_calloc(BLOCK, IPR_POLY_MAX_CIRCLES * 3 * sizeof(float), "block");
    b->f32b = ipr_calloc(BLOCK, IPR_POLY_MAX_POLYGONS * sizeof(float), "block");
    if (!b->images || !b->index || !b->u8a || !b->u8b || !b->u8c || !b->u32a || !b->f32a || !b->f32b) goto fail;
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* Generate instances [first, first + m) of the run into the block buffers, then write them. */
static int fill_block(const datagen_opts *o, const ipr_mnist_pool *pool, block_buf *b, uint64_t row, int m,
                      void *scratch, const ipr_instance_file *src) {
    hsize_t px = image_pixels(o->bench);
    for (int k = 0; k < m; ++k) {
        uint64_t idx = o->start + row + (uint64_t)k;
        b->index[k] = idx;
        switch (o->bench) {
        case IPR_BENCH_SUDOKU: {
            ipr_sudoku_instance *s = scratch;
            if (src) /* a puzzle file's row idx, as `ipr run` renders it */
                IPR_TRY(ipr_instance_file_sudoku(src, pool, idx, s, NULL));
            else
                IPR_TRY(ipr_sudoku_make(pool, o->seed, o->split, o->difficulty, idx, s));
            memcpy(b->images + (size_t)k * px, s->image, px);
            memcpy(b->u8a + k * 81, s->solution, 81);
            memcpy(b->u8b + k * 81, s->given, 81);
            memcpy(b->u32a + k * 81, s->digit_image, 81 * sizeof(uint32_t));
            b->u8c[k] = (uint8_t)s->num_given;
            break;
        }
        case IPR_BENCH_EVEN_PIXELS: {
            ipr_even_pixels_instance *e = scratch;
            IPR_TRY(ipr_even_pixels_make(o->seed, o->split, idx, e));
            memcpy(b->images + (size_t)k * px, e->image, px);
            b->f32a[k] = e->hue_offset;
            memcpy(b->u8a + (size_t)k * IPR_EP_PIXELS, e->mask, IPR_EP_PIXELS);
            break;
        }
        default: {
            ipr_polygons_instance *p = scratch;
            IPR_TRY(ipr_polygons_make(o->seed, o->split, idx, p));
            memcpy(b->images + (size_t)k * px, p->image, px);
            b->u8a[k] = (uint8_t)p->num_polygons;
            b->u8b[k] = (uint8_t)p->num_vertices;
            b->u8c[k] = (uint8_t)p->pair_label;
            float *circ = b->f32a + (size_t)k * IPR_POLY_MAX_CIRCLES * 3;
            for (int c = 0; c < IPR_POLY_MAX_CIRCLES; ++c) {
                int used = c < p->num_circles;
                circ[3 * c] = used ? p->cx[c] : 0.0f;
                circ[3 * c + 1] = used ? p->cy[c] : 0.0f;
                circ[3 * c + 2] = used ? p->radius[c] : 0.0f;
            }
            for (int c = 0; c < IPR_POLY_MAX_POLYGONS; ++c)
                b->f32b[(size_t)k * IPR_POLY_MAX_POLYGONS + c] = c < p->num_polygons ? p->rotation[c] : 0.0f;
            memcpy((uint8_t *)b->u32a + (size_t)k * 3, p->color, 3);
            break;
        }
        }
    }
    IPR_TRY(ipr_h5_write_rows(b->ds[0], H5T_NATIVE_UINT8, row, (hsize_t)m, b->images));
    IPR_TRY(ipr_h5_write_rows(b->ds[1], H5T_NATIVE_UINT64, row, (hsize_t)m, b->index));
    switch (o->bench) {
    case IPR_BENCH_SUDOKU:
        IPR_TRY(ipr_h5_write_rows(b->ds[2], H5T_NATIVE_UINT8, row, (hsize_t)m, b->u8a));
        IPR_TRY(ipr_h5_write_rows(b->ds[3], H5T_NATIVE_UINT8, row, (hsize_t)m, b->u8b));
        IPR_TRY(ipr_h5_write_rows(b->ds[4], H5T_NATIVE_UINT32, row, (hsize_t)m, b->u32a));
        IPR_TRY(ipr_h5_write_rows(b->ds[5], H5T_NATIVE_UINT8, row, (hsize_t)m, b->u8c));
        break;
    case IPR_BENCH_EVEN_PIXELS:
        IPR_TRY(ipr_h5_write_rows(b->ds[2], H5T_NATIVE_FLOAT, row, (hsize_t)m, b->f32a));
        IPR_TRY(ipr_h5_write_rows(b->ds[3], H5T_NATIVE_UINT8, row, (hsize_t)m, b->u8a));
        break;
    default:
        IPR_TRY(ipr_h5_write_rows(b->ds[2], H5T_NATIVE_UINT8, row, (hsize_t)m, b->u8a));
        IPR_TRY(ipr_h5_write_rows(b->ds[3], H5T_NATIVE_UINT8, row, (hsize_t)m, b->u8b));
        IPR_TRY(ipr_h5_write_rows(b->ds[4], H5T_NATIVE_UINT8, row, (hsize_t)m, b->u8c));
        IPR_TRY(ipr_h5_write_rows(b->ds[5], H5T_NATIVE_FLOAT, row, (hsize_t)m, b->f32a));
        IPR_TRY(ipr_h5_write_rows(b->ds[6], H5T_NATIVE_FLOAT, row, (hsize_t)m, b->f32b));
        IPR_TRY(ipr_h5_write_rows(b->ds[7], H5T_NATIVE_UINT8, row, (hsize_t)m, (uint8_t *)b->u32a));
        break;
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

static int write_attrs(hid_t f, const datagen_opts *o, const char *mnist_images, const char *mnist_hash,
                       const ipr_mnist_pool *pool, const ipr_instance_file *src) {
    IPR_TRY(ipr_h5_attr_str(f, "format", "ipr-datagen"));
    IPR_TRY(ipr_h5_attr_i64(f, "format_version", 1));
    IPR_TRY(ipr_h5_attr_str(f, "producer", "ipr " IPR_VERSION));
    IPR_TRY(ipr_h5_attr_str(f, "benchmark", ipr_bench_name(o->bench)));
    IPR_TRY(ipr_h5_attr_str(f, "split", ipr_split_name(o->split)));
    if (src) { /* --from: which file, by content; index = its row */
        IPR_TRY(ipr_h5_attr_str(f, "source_file", o->from));
        IPR_TRY(ipr_h5_attr_str(f, "source_format", ipr_instances_format_name(ipr_instance_file_format(src))));
        IPR_TRY(ipr_h5_attr_str(f, "source_sha256", ipr_instance_file_sha256(src)));
        IPR_TRY(ipr_h5_attr_i64(f, "source_rows", (int64_t)ipr_instance_file_rows(src)));
        IPR_TRY(ipr_h5_attr_i64(f, "solved", (int64_t)ipr_instance_file_solved(src)));
    } else {
        IPR_TRY(ipr_h5_attr_i64(f, "seed", (int64_t)o->seed));
    }
    IPR_TRY(ipr_h5_attr_i64(f, "start", (int64_t)o->start));
    IPR_TRY(ipr_h5_attr_i64(f, "count", (int64_t)o->count));
    IPR_TRY(ipr_h5_attr_str(f, "rng", src ? "philox4x32-10; key = the first 8 bytes of source_sha256; counter = (block, "
                                            "cell, row, purpose 7): the MNIST image of each known cell"
                                          : "philox4x32-10; key = seed; counter = (block, split, index, purpose)"));
    switch (o->bench) {
    case IPR_BENCH_SUDOKU: {
        if (!src) {
            int lo, hi;
            ipr_sudoku_difficulty_range(o->difficulty, &lo, &hi);
            IPR_TRY(ipr_h5_attr_str(f, "difficulty", ipr_sudoku_difficulty_name(o->difficulty)));
            int64_t range[2] = {lo, hi};
            IPR_TRY(ipr_h5_attr_i64_array(f, "given_range", range, 2));
        }
        IPR_TRY(ipr_h5_attr_i64(f, "cell_size", IPR_SUDOKU_CELL));
        IPR_TRY(ipr_h5_attr_str(f, "mnist_images", mnist_images));
        IPR_TRY(ipr_h5_attr_str(f, "mnist_images_sha256", mnist_hash));
        /* the digits the cells are drawn from: the curation's name (or "all") and the pool's content hash */
        IPR_TRY(ipr_h5_attr_str(f, "mnist_pool", pool->name));
        IPR_TRY(ipr_h5_attr_str(f, "mnist_pool_sha256", pool->sha256));
        IPR_TRY(ipr_h5_attr_str(f, "layout", src ? "images (N,252,252) uint8; given 1 = clue cell; solution 0 = unknown "
                                                   "(a puzzle without a solution: its non-clue cells are black)"
                                                 : "images (N,252,252) uint8; given 1 = clue cell"));
        break;
    }
    case IPR_BENCH_EVEN_PIXELS:
        IPR_TRY(ipr_h5_attr_f64(f, "saturation", 1.0));
        IPR_TRY(ipr_h5_attr_f64(f, "value", 0.7));
        IPR_TRY(ipr_h5_attr_i64(f, "patch_size", 4));
        IPR_TRY(ipr_h5_attr_str(f, "layout", "images (N,32,32,3) RGB uint8; mask 1 = hue h0 + 0.5"));
        break;
    default:
        IPR_TRY(ipr_h5_attr_i64(f, "supersample", IPR_POLY_SUPER));
        IPR_TRY(ipr_h5_attr_i64(f, "patch_size", 8));
        IPR_TRY(ipr_h5_attr_str(f, "background", "procedural (FFHQ is not redistributable)"));
        IPR_TRY(ipr_h5_attr_str(f, "layout",
                                "images (N,128,128,3) RGB uint8; circles (cx, cy, r) in pixels, "
                                "polygons first, then the count numeral, then the vertex numeral"));
        break;
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

int ipr_cmd_datagen(int argc, char **argv) {
    datagen_opts o;
    ipr_mnist_pool pool;
    memset(&pool, 0, sizeof pool);
    block_buf b;
    memset(&b, 0, sizeof b);
    hid_t f = H5I_INVALID_HID;
    char tmp[4096] = "";
    void *scratch = NULL;
    char mnist_images[4096] = "", mnist_hash[IPR_SHA256_HEX] = "";
    ipr_instance_file *src = NULL;

    IPR_TRY(parse(argc, argv, &o));
    if (o.from) { /* read and check the whole file first: nothing is written for a bad one */
        IPR_TRY_PTR(src = ipr_instance_file_open(o.from, o.from_format, IPR_BENCH_SUDOKU, o.start,
                                                 o.have_count ? o.count : UINT64_MAX));
        const uint64_t rows = ipr_instance_file_rows(src);
        IPR_CHECK(o.start < rows, "--start %llu: %s has %llu rows (0..%llu)", (unsigned long long)o.start, o.from,
                  (unsigned long long)rows, (unsigned long long)rows - 1);
        IPR_CHECK(!o.have_count || o.count <= rows - o.start, "--count %llu from row %llu: %s has %llu rows",
                  (unsigned long long)o.count, (unsigned long long)o.start, o.from, (unsigned long long)rows);
        ipr_instance_file_kept(src, NULL, &o.count);
    }
    if (o.bench == IPR_BENCH_SUDOKU) {
        IPR_TRY(ipr_mnist_pool_load(o.mnist_dir, o.split, &pool));
        /* provenance: which digit images, by content rather than by (machine-specific) path */
        const char *prefix = o.split == IPR_SPLIT_TRAIN ? "train" : "t10k";
        snprintf(mnist_images, sizeof mnist_images, "%s-images-idx3-ubyte", prefix);
        char path[4200];
        snprintf(path, sizeof path, "%s/%s.gz", o.mnist_dir, mnist_images);
        struct stat st;
        if (stat(path, &st) != 0) snprintf(path, sizeof path, "%s/%s", o.mnist_dir, mnist_images);
        IPR_TRY(ipr_sha256_file(path, mnist_hash));
    }
    scratch = ipr_malloc(sizeof(ipr_sudoku_instance) > sizeof(ipr_polygons_instance)
                             ? sizeof(ipr_sudoku_instance)
                             : sizeof(ipr_polygons_instance),
                         "instance");
    if (!scratch) goto fail;

    IPR_TRY(ipr_tmp_path(tmp, sizeof tmp, o.output));
    IPR_TRY_ID(f = ipr_h5_create(tmp));
    IPR_TRY(write_attrs(f, &o, mnist_images, mnist_hash, &pool, src));
    IPR_TRY(create_datasets(f, &o, &b));

    struct timespec t0, tl, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    tl = t0;
    for (uint64_t row = 0; row < o.count; row += BLOCK) {
        int m = (int)(o.count - row < BLOCK ? o.count - row : BLOCK);
        IPR_TRY(fill_block(&o, &pool, &b, row, m, scratch, src));
        clock_gettime(CLOCK_MONOTONIC, &now);
        double since = (double)(now.tv_sec - tl.tv_sec) + 1e-9 * (double)(now.tv_nsec - tl.tv_nsec);
        if (!o.quiet && since > 5.0) {
            double el = (double)(now.tv_sec - t0.tv_sec) + 1e-9 * (double)(now.tv_nsec - t0.tv_nsec);
            ipr_log(IPR_LOG_INFO, "datagen %s: %llu/%llu instances (%.0f/s)", ipr_bench_name(o.bench),
                    (unsigned long long)(row + (uint64_t)m), (unsigned long long)o.count,
                    (double)(row + (uint64_t)m) / el);
            tl = now;
        }
    }
    block_free(&b);
    IPR_TRY(ipr_h5_fclose(&f));
    IPR_TRY(ipr_commit_tmp(tmp, o.output));
    if (!o.quiet)
        printf("wrote %llu %s instances (%s) to %s\n", (unsigned long long)o.count, ipr_bench_name(o.bench),
               src ? "puzzle file rows, MNIST test pool" : o.split == IPR_SPLIT_TRAIN ? "train split" : "test split",
               o.output);
    free(scratch);
    ipr_mnist_pool_free(&pool);
    ipr_instance_file_free(src);
    return IPR_EXIT_OK;
fail:
    block_free(&b);
    if (f >= 0) H5Fclose(f);
    if (tmp[0]) unlink(tmp); /* nothing half-written is left behind */
    free(scratch);
    ipr_mnist_pool_free(&pool);
    ipr_instance_file_free(src);
    return ipr_cli_fail("datagen");
}
