/* task.c: a benchmark as the sampler sees it: image geometry and regions, each instance's clues (or the
 * corrupted grid of the correction mode, spec 3.2), and the scorer (spec 4.1-4.3) with per-region decoding. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ipr/bench.h"
#include "ipr/classifier.h"
#include "ipr/common.h"
#include "ipr/instances.h"
#include "ipr/mnist.h"
#include "ipr/rng.h"
#include "ipr/sampler.h"
#include "sampler_internal.h"

struct ipr_task {
    ipr_task_config cfg;
    int custom;                          /* test geometry: no instances, no scorer */
    int C, H, W, patch, gh, gw, R;
    ipr_mnist_pool pool;                 /* Sudoku digit images */
    int have_pool;
    ipr_sudoku_instance *sudoku;         /* scratch for one Sudoku instance */
    ipr_instance_file *file;             /* the instance file, or NULL for the generator */
    uint64_t last_index;                 /* the instance ipr_task_instance made last, and its solved grid */
    int last_solved;                     /* 1: last_solution holds every digit; 0: nothing known */
    uint8_t last_solution[81];
    ipr_digit_classifier *digit_net;     /* Sudoku scorer */
    ipr_polygons_classifier *poly_net;   /* Counting Polygons scorer */
};

void ipr_task_config_init(ipr_task_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->bench = IPR_BENCH_SUDOKU;
    cfg->split = IPR_SPLIT_TEST;
    cfg->difficulty = IPR_SUDOKU_HARD;
    cfg->data_seed = 0;
    cfg->mnist_dir = NULL;
    cfg->scorer_path = NULL;
    cfg->correction = 0;
    cfg->correction_swaps = 5; /* ms_corrupted_test.yaml (spec 3.2) */
    cfg->instances_file = NULL;
    cfg->instances_format = IPR_INSTANCES_AUTO;
    cfg->instances_start = 0;
    cfg->instances_count = 0;
    cfg->instances_sha256 = NULL;
}

const char *ipr_solution_match_name(ipr_solution_match m) {
    static const char *const names[IPR_SOLUTION_MATCH_CODES] = {"unknown", "match", "other", "invalid"};
    return (unsigned)m < IPR_SOLUTION_MATCH_CODES ? names[m] : "?";
}

/* The instance file's rows [start, start + count): present, of this benchmark, and in correction mode solved. */
static int task_open_file(ipr_task *t, const ipr_task_config *cfg) {
    const char *path = cfg->instances_file;
    IPR_CHECK(cfg->instances_count >= 1, "instances file %s: no rows asked for (instances_count 0)", path);
    IPR_CHECK((unsigned)cfg->instances_format <= IPR_INSTANCES_DATAGEN, "instances file %s: unknown format %d", path,
              cfg->instances_format);
    IPR_TRY_PTR(t->file = ipr_instance_file_open(path, (ipr_instances_format)cfg->instances_format, cfg->bench,
                                                  cfg->instances_start, cfg->instances_count));
    const uint64_t rows = ipr_instance_file_rows(t->file);
    IPR_CHECK(cfg->instances_start < rows && cfg->instances_count <= rows - cfg->instances_start,
              "%s has %llu rows; rows %llu..%llu were asked for", path, (unsigned long long)rows,
              (unsigned long long)cfg->instances_start,
              (unsigned long long)(cfg->instances_start + cfg->instances_count - 1));
    IPR_CHECK(!cfg->instances_sha256 || strcmp(cfg->instances_sha256, ipr_instance_file_sha256(t->file)) == 0,
              "%s changed: its SHA-256 is %.12s..., the run recorded %.12s...", path, ipr_instance_file_sha256(t->file),
              cfg->instances_sha256);
    uint64_t row = 0, line = 0;
    if (cfg->correction && ipr_instance_file_first_unsolved(t->file, &row, &line)) {
        if (line)
            IPR_FAIL("%s:%llu: correction mode corrupts the solved grid, but this puzzle (row %llu) has no solution",
                     path, (unsigned long long)line, (unsigned long long)row);
        IPR_FAIL("%s: row %llu: correction mode corrupts the solved grid, but this row has no solution", path,
                 (unsigned long long)row);
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

static void task_geometry(ipr_task *t, int C, int H, int W, int patch) {
    t->C = C, t->H = H, t->W = W, t->patch = patch;
    t->gh = H / patch, t->gw = W / patch;
    t->R = t->gh * t->gw;
}

ipr_task *ipr_task_new(const ipr_task_config *cfg) {
    ipr_task *t = NULL;
    IPR_CHECK(cfg != NULL, "task: NULL config");
    IPR_CHECK((unsigned)cfg->bench < IPR_BENCH_COUNT, "task: unknown benchmark %d", (int)cfg->bench);
    IPR_CHECK(cfg->split == IPR_SPLIT_TRAIN || cfg->split == IPR_SPLIT_TEST, "task: unknown split %d",
              (int)cfg->split);
    IPR_CHECK((unsigned)cfg->difficulty <= IPR_SUDOKU_ANY, "task: unknown Sudoku difficulty %d",
              (int)cfg->difficulty);
    IPR_CHECK(!cfg->correction || cfg->bench == IPR_BENCH_SUDOKU,
              "task: correction mode applies to sudoku only (spec 3.2), not %s", ipr_bench_name(cfg->bench));
    IPR_CHECK(!cfg->correction || (cfg->correction_swaps >= 0 && cfg->correction_swaps <= 1000),
              "task: correction_swaps %d outside 0..1000", cfg->correction_swaps);
    IPR_CHECK(cfg->bench != IPR_BENCH_EVEN_PIXELS || cfg->scorer_path == NULL,
              "task: even_pixels is scored by its rule; it takes no scorer checkpoint");
    t = ipr_calloc(1, sizeof *t, "task");
    if (!t) goto fail;
    t->cfg = *cfg;
    t->cfg.mnist_dir = NULL, t->cfg.scorer_path = NULL; /* not owned: never kept */
    t->cfg.instances_file = NULL, t->cfg.instances_sha256 = NULL;
    switch (cfg->bench) {
    case IPR_BENCH_SUDOKU: {
        task_geometry(t, 1, IPR_SUDOKU_SIDE, IPR_SUDOKU_SIDE, IPR_SUDOKU_CELL);
        if (cfg->instances_file) IPR_TRY(task_open_file(t, cfg));
        /* the digits of the cells: the split's pool for the generator, the TEST pool for puzzle files; a datagen
         * file's images are used as stored */
        if (!t->file || ipr_instance_file_format(t->file) != IPR_INSTANCES_DATAGEN) {
            const char *dir = cfg->mnist_dir ? cfg->mnist_dir : ipr_mnist_default_dir();
            if (ipr_mnist_pool_load(dir, t->file ? IPR_SPLIT_TEST : cfg->split, &t->pool) != IPR_OK) {
                ipr_error_context("sudoku task");
                goto fail;
            }
            t->have_pool = 1;
        }
        t->sudoku = ipr_malloc(sizeof *t->sudoku, "Sudoku instance");
        if (!t->sudoku) goto fail;
        if (cfg->scorer_path) IPR_TRY_PTR(t->digit_net = ipr_digit_classifier_load(cfg->scorer_path, 81));
        break;
    }
    case IPR_BENCH_EVEN_PIXELS:
        task_geometry(t, 3, IPR_EP_SIDE, IPR_EP_SIDE, 4);
        if (cfg->instances_file) IPR_TRY(task_open_file(t, cfg));
        break;
    default:
        task_geometry(t, 3, IPR_POLY_SIDE, IPR_POLY_SIDE, 8);
        if (cfg->instances_file) IPR_TRY(task_open_file(t, cfg));
        if (cfg->scorer_path) {
            IPR_TRY_PTR(t->poly_net = ipr_polygons_classifier_load(cfg->scorer_path, 1));
            const ipr_polygons_classifier_config *pc = ipr_polygons_classifier_get_config(t->poly_net);
            IPR_CHECK(pc->image_size == IPR_POLY_SIDE, "task: polygons scorer %s takes %d x %d images, not %d x %d",
                      cfg->scorer_path, pc->image_size, pc->image_size, IPR_POLY_SIDE, IPR_POLY_SIDE);
        }
        break;
    }
    return t;
fail:
    ipr_task_free(t);
    return NULL;
}

ipr_task *ipr_task_new_custom(int C, int H, int W, int patch) {
    ipr_task *t = NULL;
    IPR_CHECK(C >= 1 && patch >= 1 && H >= patch && W >= patch && H % patch == 0 && W % patch == 0,
              "custom task: %d x %d x %d image with %d-pixel regions does not tile", C, H, W, patch);
    IPR_CHECK((H / patch) * (W / patch) <= IPR_MAX_REGIONS, "custom task: more than %d regions", IPR_MAX_REGIONS);
    t = ipr_calloc(1, sizeof *t, "task");
    if (!t) goto fail;
    ipr_task_config_init(&t->cfg);
    t->cfg.bench = IPR_BENCH_COUNT; /* none */
    t->custom = 1;
    task_geometry(t, C, H, W, patch);
    return t;
fail:
    return NULL;
}

void ipr_task_free(ipr_task *t) {
    if (!t) return;
    if (t->have_pool) ipr_mnist_pool_free(&t->pool);
    ipr_instance_file_free(t->file);
    free(t->sudoku);
    ipr_digit_classifier_free(t->digit_net);
    ipr_polygons_classifier_free(t->poly_net);
    free(t);
}

void ipr_task_shape(const ipr_task *t, int *C, int *H, int *W, int *patch, int *regions) {
    if (C) *C = t->C;
    if (H) *H = t->H;
    if (W) *W = t->W;
    if (patch) *patch = t->patch;
    if (regions) *regions = t->R;
}

int ipr_task_conditional(const ipr_task *t) { return !t->custom && t->cfg.bench == IPR_BENCH_SUDOKU; }
int ipr_task_correction(const ipr_task *t) { return !t->custom && t->cfg.correction; }

const struct ipr_mnist_pool *ipr_task_mnist_pool(const ipr_task *t) { return t && t->have_pool ? &t->pool : NULL; }

const char *ipr_task_instances_sha256(const ipr_task *t) {
    return t && t->file ? ipr_instance_file_sha256(t->file) : NULL;
}

const char *ipr_task_instances_format(const ipr_task *t) {
    return t && t->file ? ipr_instances_format_name(ipr_instance_file_format(t->file)) : NULL;
}

int ipr_task_solution(const ipr_task *t, uint64_t index, uint8_t solution[81]) {
    if (!t || t->custom || t->cfg.bench != IPR_BENCH_SUDOKU || !t->last_solved || t->last_index != index) return 0;
    memcpy(solution, t->last_solution, 81);
    return 1;
}

int ipr_task_reads_digits(const ipr_task *t) { return t && t->digit_net != NULL; }

int ipr_task_has_scorer(const ipr_task *t) {
    if (t->custom) return 0;
    return t->cfg.bench == IPR_BENCH_EVEN_PIXELS || t->digit_net != NULL || t->poly_net != NULL;
}

/* uint8 -> [-1, 1]: ToTensor then Normalize(0.5, 0.5) (spec 2.1) */
static float from_u8(uint8_t v) { return (float)v / 255.0f * 2.0f - 1.0f; }

/* Correction mode (spec 3.2): `swaps` exchanges of two cells in different rows and columns, each pair drawn
 * uniformly (rejection) from the stream (seed, IPR_RNG_CORRUPT_SWAPS, index). Swaps the 28 x 28 images. */
static void corrupt(uint8_t *img, int swaps, uint64_t seed, uint64_t index) {
    ipr_rng r;
    ipr_rng_init(&r, seed, IPR_RNG_CORRUPT_SWAPS, index, 0);
    for (int s = 0; s < swaps; ++s) {
        uint32_t a, b;
        do {
            a = ipr_rng_below(&r, 81);
            b = ipr_rng_below(&r, 81);
        } while (a / 9 == b / 9 || a % 9 == b % 9);
        const int ra = (int)(a / 9) * IPR_SUDOKU_CELL, ca = (int)(a % 9) * IPR_SUDOKU_CELL;
        const int rb = (int)(b / 9) * IPR_SUDOKU_CELL, cb = (int)(b % 9) * IPR_SUDOKU_CELL;
        for (int y = 0; y < IPR_SUDOKU_CELL; ++y) {
            uint8_t *pa = img + (size_t)(ra + y) * IPR_SUDOKU_SIDE + ca;
            uint8_t *pb = img + (size_t)(rb + y) * IPR_SUDOKU_SIDE + cb;
            for (int x = 0; x < IPR_SUDOKU_CELL; ++x) {
                const uint8_t tmp = pa[x];
                pa[x] = pb[x];
                pb[x] = tmp;
            }
        }
    }
}

int ipr_task_instance(ipr_task *t, uint64_t seed, uint64_t index, float *clean, uint8_t *given) {
    IPR_CHECK(t && clean && given, "task instance: NULL argument");
    IPR_CHECK(index < (1ull << 48), "task instance: index %llu is not below 2^48", (unsigned long long)index);
    const size_t n = (size_t)t->C * t->H * t->W;
    if (t->custom) {
        memset(clean, 0, n * sizeof *clean);
        memset(given, 0, (size_t)t->R);
        return IPR_OK;
    }
    switch (t->cfg.bench) {
    case IPR_BENCH_SUDOKU: {
        ipr_sudoku_instance *s = t->sudoku;
        int solved = 1;
        t->last_solved = 0;
        if (t->file)
            IPR_TRY(ipr_instance_file_sudoku(t->file, t->have_pool ? &t->pool : NULL, index, s, &solved));
        else
            IPR_TRY(ipr_sudoku_make(&t->pool, t->cfg.data_seed, t->cfg.split, t->cfg.difficulty, index, s));
        IPR_CHECK(solved || !t->cfg.correction, "instance %llu has no solution to corrupt (correction mode)",
                  (unsigned long long)index);
        t->last_index = index;
        t->last_solved = solved;
        memcpy(t->last_solution, s->solution, 81);
        if (t->cfg.correction) {
            /* the solved grid (every cell rendered) with swaps; nothing given, all 81 refinable */
            corrupt(s->image, t->cfg.correction_swaps, seed, index);
            memset(given, 0, 81);
        } else {
            memcpy(given, s->given, 81);
        }
        for (size_t i = 0; i < n; ++i) clean[i] = from_u8(s->image[i]);
        break;
    }
    case IPR_BENCH_EVEN_PIXELS: {
        ipr_even_pixels_instance e;
        if (t->file)
            IPR_TRY(ipr_instance_file_image(t->file, index, e.image));
        else
            IPR_TRY(ipr_even_pixels_make(t->cfg.data_seed, t->cfg.split, index, &e));
        const size_t HW = (size_t)t->H * t->W;
        for (int c = 0; c < 3; ++c)
            for (size_t i = 0; i < HW; ++i) clean[c * HW + i] = from_u8(e.image[3 * i + (size_t)c]);
        memset(given, 0, (size_t)t->R);
        break;
    }
    default: {
        ipr_polygons_instance *p = ipr_malloc(sizeof *p, "polygons instance");
        if (!p) goto fail;
        if ((t->file ? ipr_instance_file_image(t->file, index, p->image)
                     : ipr_polygons_make(t->cfg.data_seed, t->cfg.split, index, p)) != IPR_OK) {
            free(p);
            goto fail;
        }
        const size_t HW = (size_t)t->H * t->W;
        for (int c = 0; c < 3; ++c)
            for (size_t i = 0; i < HW; ++i) clean[c * HW + i] = from_u8(p->image[3 * i + (size_t)c]);
        free(p);
        memset(given, 0, (size_t)t->R);
        break;
    }
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

int ipr_task_check_model(const ipr_task *t, const ipr_model_info *u) {
    /* the checkpoint must be a model of this benchmark's images and regions */
    IPR_CHECK(u->image_size[0] == t->H && u->image_size[1] == t->W,
              "checkpoint images are %d x %d, the benchmark's are %d x %d", u->image_size[0], u->image_size[1], t->H,
              t->W);
    IPR_CHECK(u->d_in == t->C, "checkpoint takes %d channels (d_in), the benchmark's images have %d", u->d_in, t->C);
    IPR_CHECK(u->d_out == 2 * t->C + 1,
              "checkpoint has d_out %d; the sampler needs 2 x %d + 1 (velocity, learned-range v, sigma: spec 1.2)",
              u->d_out, t->C);
    IPR_CHECK(u->patch_size == t->patch, "checkpoint regions are %d pixels wide, the benchmark's are %d",
              u->patch_size, t->patch);
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* ---------------- scoring and decoding ---------------- */

size_t ipr_task_decoded_bytes(const ipr_task *t) {
    if (t->digit_net) return 81;
    return (size_t)t->C * t->H * t->W;
}

/* round((x + 1) * 127.5) clamped to 0..255: the pixel as an 8-bit image would store it */
static uint8_t to_u8(float x) {
    const float v = (x + 1.0f) * 127.5f;
    if (!(v > 0.0f)) return 0; /* NaN too */
    if (v >= 255.0f) return 255;
    return (uint8_t)lrintf(v);
}

struct ipr_task_scorer {
    const ipr_task *task;
    ipr_digit_classifier *digit_net;   /* clones of the task's nets: its weights, scratch of their own */
    ipr_polygons_classifier *poly_net;
};

ipr_task_scorer *ipr_task_scorer_new(const ipr_task *t) {
    ipr_task_scorer *s = NULL;
    IPR_CHECK(t != NULL, "task scorer: NULL task");
    s = ipr_calloc(1, sizeof *s, "task scorer");
    if (!s) goto fail;
    s->task = t;
    if (t->digit_net) IPR_TRY_PTR(s->digit_net = ipr_digit_classifier_clone(t->digit_net));
    if (t->poly_net) IPR_TRY_PTR(s->poly_net = ipr_polygons_classifier_clone(t->poly_net));
    return s;
fail:
    ipr_task_scorer_free(s);
    return NULL;
}

void ipr_task_scorer_free(ipr_task_scorer *s) {
    if (!s) return;
    ipr_digit_classifier_free(s->digit_net);
    ipr_polygons_classifier_free(s->poly_net);
    free(s);
}

/* ipr_task_score_decode with the given nets (the task's own, or a scorer's clones of them); reads nothing else of
 * the task that ever changes. */
static int score_decode(const ipr_task *t, ipr_digit_classifier *digit_net, ipr_polygons_classifier *poly_net,
                        const float *image, uint8_t *valid, float *error, uint8_t *decoded) {
    *valid = 0;
    *error = NAN;
    if (digit_net) {
        /* one image (81 cells) per call, so the numbers never depend on other chains */
        uint8_t digits[81];
        int dist = 0;
        IPR_TRY(ipr_sudoku_score_images(digit_net, image, 1, digits, &dist, valid));
        *error = (float)dist;
        if (decoded) memcpy(decoded, digits, 81);
        return IPR_OK;
    }
    if (decoded) {
        const size_t n = (size_t)t->C * t->H * t->W;
        for (size_t i = 0; i < n; ++i) decoded[i] = to_u8(image[i]);
    }
    if (t->custom) return IPR_OK;
    if (t->cfg.bench == IPR_BENCH_EVEN_PIXELS) {
        const int e = ipr_even_pixels_error_chw(image, t->H, t->W);
        *error = (float)e;
        *valid = e == 0;
    } else if (poly_net) {
        ipr_polygons_prediction pr;
        IPR_TRY(ipr_polygons_score_images(poly_net, image, 1, &pr));
        /* IPR's checker (spec 4.3): valid when the vertices are uniform and the numerals match the counts;
         * error = how many of the two fail */
        *valid = (uint8_t)pr.valid;
        *error = (float)((pr.is_uniform ? 0 : 1) + (pr.numbers_consistent ? 0 : 1));
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

int ipr_task_score_decode(ipr_task *t, const float *image, uint8_t *valid, float *error, uint8_t *decoded) {
    return score_decode(t, t->digit_net, t->poly_net, image, valid, error, decoded);
}

int ipr_task_scorer_score_decode(ipr_task_scorer *s, const float *image, uint8_t *valid, float *error,
                                 uint8_t *decoded) {
    return score_decode(s->task, s->digit_net, s->poly_net, image, valid, error, decoded);
}

int ipr_task_decoded_changed(const ipr_task *t, const uint8_t *a, const uint8_t *b) {
    if (t->digit_net) {
        int n = 0;
        for (int i = 0; i < 81; ++i) n += a[i] != b[i];
        return n;
    }
    const size_t HW = (size_t)t->H * t->W;
    int n = 0;
    for (int gy = 0; gy < t->gh; ++gy)
        for (int gx = 0; gx < t->gw; ++gx) {
            int diff = 0;
            for (int c = 0; c < t->C && !diff; ++c)
                for (int y = gy * t->patch; y < (gy + 1) * t->patch && !diff; ++y) {
                    const size_t o = (size_t)c * HW + (size_t)y * t->W + (size_t)gx * t->patch;
                    diff = memcmp(a + o, b + o, (size_t)t->patch) != 0;
                }
            n += diff;
        }
    return n;
}

int ipr_task_score(ipr_task *t, const float *images, int n, uint8_t *valid, float *error) {
    IPR_CHECK(t && n >= 0 && (n == 0 || (images && valid && error)), "task score: bad arguments");
    const size_t img = (size_t)t->C * t->H * t->W;
    for (int i = 0; i < n; ++i) IPR_TRY(ipr_task_score_decode(t, images + (size_t)i * img, valid + i, error + i, NULL));
    return IPR_OK;
fail:
    return IPR_ERR;
}
