/* test_polygons.c: Counting Polygons instances follow spec 4.3 (layout, colour, labels) and what is drawn
 * agrees with the labels (connected components of the shape colour); pair labels, rasterizer and font. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bench/raster.h"
#include "ipr/bench.h"
#include "ipr/common.h"

#define SIDE IPR_POLY_SIDE
#define N_PER_SPLIT 200
#define SEED 20240501u
/* A pixel belongs to a shape if no channel is further than this from the shape colour. The background
 * never comes this close (its S <= 0.72 leaves a channel >= 47 above the shape colour's zero channel
 * wherever the brightest channel is within 40 of the shape's 229), and fully or mostly covered shape pixels
 * always do. */
#define COLOR_TOL 40

/* ---- pair labels ---- */

static void test_pair_labels(void **state) {
    (void)state;
    /* the reference labeler's order, rebuilt here: vertices 3..7 outer, count 1..9 inner, first seen */
    int seen[10][10] = {{0}}, next = 0;
    for (int v = 3; v <= 7; ++v)
        for (int n = 1; n <= 9; ++n) {
            int lo = n < v ? n : v, hi = n < v ? v : n;
            if (seen[lo][hi]) continue;
            seen[lo][hi] = 1;
            assert_int_equal(ipr_polygons_pair_index(lo, hi), next);
            assert_int_equal(ipr_polygons_pair_index(hi, lo), next);
            int a = -1, b = -1;
            ipr_polygons_pair_values(next, &a, &b);
            assert_int_equal(a, lo);
            assert_int_equal(b, hi);
            next++;
        }
    assert_int_equal(next, IPR_POLY_NUM_PAIRS);
    /* every (count, vertices) maps to a pair holding exactly those two numbers */
    for (int n = 1; n <= 9; ++n)
        for (int v = 3; v <= 7; ++v) {
            int i = ipr_polygons_pair_index(n, v), a, b;
            assert_in_range(i, 0, IPR_POLY_NUM_PAIRS - 1);
            ipr_polygons_pair_values(i, &a, &b);
            assert_true((a == n && b == v) || (a == v && b == n));
        }
    /* impossible pairs: neither number can be a vertex count, or out of range */
    const int bad[][2] = {{1, 1}, {1, 2}, {2, 2}, {8, 8}, {9, 9}, {8, 9}, {1, 8}, {0, 3}, {3, 10}, {-1, 5}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i)
        assert_int_equal(ipr_polygons_pair_index(bad[i][0], bad[i][1]), -1);
    int a = 7, b = 7;
    ipr_polygons_pair_values(IPR_POLY_NUM_PAIRS, &a, &b);
    assert_int_equal(a, 0);
    assert_int_equal(b, 0);
    ipr_polygons_pair_values(-1, &a, &b);
    assert_int_equal(a + b, 0);
}

static void test_errors(void **state) {
    (void)state;
    static ipr_polygons_instance p;
    ipr_error_clear();
    assert_int_equal(ipr_polygons_make(1, IPR_SPLIT_TEST, 0, NULL), IPR_ERR);
    assert_non_null(strstr(ipr_error_message(), "NULL"));
    ipr_error_clear();
    assert_int_equal(ipr_polygons_make(1, IPR_SPLIT_TEST, UINT64_C(1) << 48, &p), IPR_ERR);
    assert_non_null(strstr(ipr_error_message(), "48 bits"));
    ipr_error_clear();
    assert_int_equal(ipr_polygons_make(1, (ipr_split)7, 0, &p), IPR_ERR);
    assert_int_equal(ipr_polygons_make(1, IPR_SPLIT_TEST, (UINT64_C(1) << 48) - 1, &p), IPR_OK);
    uint16_t bits[16];
    ipr_coverage c = {4, 4, bits};
    ipr_cov_clear(&c);
    assert_int_equal(ipr_font_digit(&c, 10, 8, 8, 8), IPR_ERR);
    assert_int_equal(ipr_font_digit(&c, -1, 8, 8, 8), IPR_ERR);
}

/* ---- rasterizer and font ---- */

static int covered_samples(const ipr_coverage *c) {
    int n = 0;
    for (int i = 0; i < c->w * c->h; ++i) n += (int)lround(ipr_cov_alpha(c, i) * 16.0);
    return n;
}

static void test_raster_areas(void **state) {
    (void)state;
    enum { W = 64 };
    static uint16_t bits[W * W];
    ipr_coverage c = {W, W, bits};
    const double pi = 3.14159265358979323846, cx = 130.3, cy = 121.7, r = 90.0;
    /* a sample-counted area is exact to within the perimeter's worth of boundary samples; 1% is ~5x that */
    for (int n = 3; n <= 7; ++n) {
        double xy[14];
        for (int k = 0; k < n; ++k) {
            xy[2 * k] = cx + r * cos(2 * pi * k / n + 0.3);
            xy[2 * k + 1] = cy + r * sin(2 * pi * k / n + 0.3);
        }
        ipr_cov_clear(&c);
        ipr_cov_polygon(&c, xy, n);
        double area = 0.5 * n * r * r * sin(2 * pi / n);
        assert_true(fabs(covered_samples(&c) - area) < 0.01 * area);
    }
    ipr_cov_clear(&c);
    ipr_cov_disc(&c, cx, cy, r);
    assert_true(fabs(covered_samples(&c) - pi * r * r) < 0.01 * pi * r * r);
    /* capsule: rectangle plus two half discs */
    ipr_cov_clear(&c);
    ipr_cov_capsule(&c, 40.2, 60.1, 200.7, 150.3, 12.0);
    double len = hypot(200.7 - 40.2, 150.3 - 60.1), area = len * 24.0 + pi * 144.0;
    assert_true(fabs(covered_samples(&c) - area) < 0.01 * area);
    /* partial clipping at the image border keeps the rasterizer inside the buffer */
    ipr_cov_clear(&c);
    ipr_cov_disc(&c, -10.0, 250.0, 40.0);
    assert_true(covered_samples(&c) > 0);
}

static void test_font_digits(void **state) {
    (void)state;
    enum { W = 40 };
    static uint16_t bits[10][W * W];
    const double cx = 80.5, cy = 79.25, height = 100.0;
    for (int d = 0; d <= 9; ++d) {
        ipr_coverage c = {W, W, bits[d]};
        ipr_cov_clear(&c);
        assert_int_equal(ipr_font_digit(&c, d, cx, cy, height), IPR_OK);
        /* ink box: `height` tall, centred on (cx, cy), narrower than tall (fits in a circle of radius height) */
        int xmin = 1 << 20, xmax = -1, ymin = 1 << 20, ymax = -1;
        for (int y = 0; y < W * 4; ++y)
            for (int x = 0; x < W * 4; ++x)
                if (bits[d][(y / 4) * W + x / 4] & (1u << ((y % 4) * 4 + x % 4))) {
                    xmin = x < xmin ? x : xmin, xmax = x > xmax ? x : xmax;
                    ymin = y < ymin ? y : ymin, ymax = y > ymax ? y : ymax;
                }
        assert_true(fabs((ymax + 1 - ymin) - height) <= 2.0);
        assert_true(fabs(0.5 * (ymin + ymax + 1) - cy) <= 1.5);
        assert_true(fabs(0.5 * (xmin + xmax + 1) - cx) <= 1.5);
        assert_true(xmax + 1 - xmin < 0.75 * height);
        assert_true(hypot(xmax + 1 - xmin, ymax + 1 - ymin) < 2.0 * height);
        /* strokes, not blobs: ink covers a modest fraction of the box */
        int ink = covered_samples(&c);
        assert_true(ink > 0.15 * (xmax + 1 - xmin) * (ymax + 1 - ymin));
        assert_true(ink < 0.75 * (xmax + 1 - xmin) * (ymax + 1 - ymin));
        /* every digit looks different from every other one */
        for (int e = 0; e < d; ++e) {
            int diff = 0;
            for (int i = 0; i < W * W; ++i) diff += bits[d][i] != bits[e][i];
            assert_true(diff > 20);
        }
    }
}

/* ---- instances ---- */

static int within_tol(const uint8_t *px, const uint8_t color[3]) {
    for (int k = 0; k < 3; ++k)
        if (abs((int)px[k] - (int)color[k]) > COLOR_TOL) return 0;
    return 1;
}

/* 8-connected components of the pixels near `color`: count and centroids (128-px units, pixel centres). */
enum { MAX_COMP = 256 };
typedef struct {
    int n;
    double x[MAX_COMP], y[MAX_COMP];
    int size[MAX_COMP];
} components;

static void find_components(const uint8_t *rgb, const uint8_t color[3], components *out) {
    static int label[SIDE * SIDE], stack[SIDE * SIDE];
    memset(out, 0, sizeof *out);
    for (int i = 0; i < SIDE * SIDE; ++i) label[i] = within_tol(rgb + 3 * i, color) ? 0 : -1;
    for (int seed = 0; seed < SIDE * SIDE; ++seed) {
        if (label[seed] != 0) continue;
        assert_true(out->n < MAX_COMP);
        int id = ++out->n, top = 0;
        double sx = 0, sy = 0;
        int size = 0;
        label[seed] = id;
        stack[top++] = seed;
        while (top) {
            int p = stack[--top], x = p % SIDE, y = p / SIDE;
            sx += x + 0.5, sy += y + 0.5, size++;
            for (int dy = -1; dy <= 1; ++dy)
                for (int dx = -1; dx <= 1; ++dx) {
                    int nx = x + dx, ny = y + dy;
                    if (nx < 0 || ny < 0 || nx >= SIDE || ny >= SIDE) continue;
                    int q = ny * SIDE + nx;
                    if (label[q] == 0) label[q] = id, stack[top++] = q;
                }
        }
        out->x[id - 1] = sx / size, out->y[id - 1] = sy / size, out->size[id - 1] = size;
    }
}

static int inside_circle(const ipr_polygons_instance *p, int c, double x, double y) {
    return hypot(x - p->cx[c], y - p->cy[c]) < p->radius[c];
}

/* Independent of the library's loop: blurred histogram value at bin i, weights exp(-d^2 / (2 26^2)) for
 * circular offsets d = -127..127 (spec 4.3). */
static double blurred_at(const int hist[256], int i) {
    double v = 0.0;
    for (int d = -127; d <= 127; ++d) v += hist[(i + d + 256) % 256] * exp(-d * d / (2.0 * 26.0 * 26.0));
    return v;
}

static void check_instance(const ipr_polygons_instance *p, uint64_t seed, ipr_split split, uint64_t index) {
    /* labels (spec 4.3) */
    assert_in_range(p->num_polygons, 1, 9);
    assert_in_range(p->num_vertices, 3, 7);
    assert_int_equal(p->num_circles, p->num_polygons + 2);
    assert_int_equal(p->pair_label, ipr_polygons_pair_index(p->num_polygons, p->num_vertices));
    assert_in_range(p->pair_label, 0, IPR_POLY_NUM_PAIRS - 1);
    for (int i = 0; i < p->num_polygons; ++i) assert_true(p->rotation[i] >= 0.0f && p->rotation[i] < 6.2832f);

    /* circles: radii U(0.07, 0.155) * 128 (a shrunk fallback may go below; never by half), inside the image,
     * 2 px (128 scale) apart */
    for (int i = 0; i < p->num_circles; ++i) {
        float r = p->radius[i];
        assert_true(r <= 0.155f * SIDE + 1e-3f && r >= 0.5f * 0.07f * SIDE);
        assert_true(p->cx[i] - r >= -1e-3f && p->cx[i] + r <= SIDE + 1e-3f);
        assert_true(p->cy[i] - r >= -1e-3f && p->cy[i] + r <= SIDE + 1e-3f);
        for (int j = 0; j < i; ++j)
            assert_true(hypot(p->cx[i] - p->cx[j], p->cy[i] - p->cy[j]) >= p->radius[i] + p->radius[j] + 1.99);
    }

    /* colour: S 1, V 0.9 -> one channel int(0.9 * 255) = 229, one 0; its hue is a least frequent background
     * hue after the blur; the background stays below saturation 0.85 */
    static uint8_t bg[SIDE * SIDE * 3];
    ipr_polygons_background(seed, split, index, bg);
    uint8_t mx = p->color[0], mn = p->color[0];
    for (int k = 1; k < 3; ++k) {
        mx = p->color[k] > mx ? p->color[k] : mx;
        mn = p->color[k] < mn ? p->color[k] : mn;
    }
    assert_int_equal(mx, 229);
    assert_int_equal(mn, 0);
    int hist[256] = {0};
    for (int i = 0; i < SIDE * SIDE; ++i) {
        const uint8_t *px = bg + 3 * i;
        int bmx = px[0] > px[1] ? (px[0] > px[2] ? px[0] : px[2]) : (px[1] > px[2] ? px[1] : px[2]);
        int bmn = px[0] < px[1] ? (px[0] < px[2] ? px[0] : px[2]) : (px[1] < px[2] ? px[1] : px[2]);
        assert_true(bmx > 0 && (bmx - bmn) < 0.85 * bmx);
        hist[ipr_pil_hue_u8(px[0], px[1], px[2])]++;
    }
    int bin = -1;
    uint8_t again[3];
    ipr_polygons_shape_color(bg, SIDE * SIDE, again, &bin);
    assert_memory_equal(again, p->color, 3);
    double chosen = blurred_at(hist, bin);
    for (int i = 0; i < 256; ++i) assert_true(chosen <= blurred_at(hist, i) * (1.0 + 1e-9));

    /* what is drawn agrees with the labels: one component of the shape colour per polygon circle, at least one
     * per numeral circle, none outside the circles */
    static components comp;
    find_components(p->image, p->color, &comp);
    int per_circle[IPR_POLY_MAX_CIRCLES] = {0};
    for (int k = 0; k < comp.n; ++k) {
        int owner = -1;
        for (int c = 0; c < p->num_circles; ++c)
            if (inside_circle(p, c, comp.x[k], comp.y[k])) owner = c;
        assert_true(owner >= 0);
        per_circle[owner]++;
    }
    int polygon_components = 0;
    for (int c = 0; c < p->num_polygons; ++c) {
        assert_int_equal(per_circle[c], 1);
        polygon_components += per_circle[c];
    }
    assert_int_equal(polygon_components, p->num_polygons);
    assert_true(per_circle[p->num_polygons] >= 1);
    assert_true(per_circle[p->num_polygons + 1] >= 1);

    /* outside every circle the image is the untouched background */
    for (int y = 0; y < SIDE; ++y)
        for (int x = 0; x < SIDE; ++x) {
            int in = 0;
            for (int c = 0; c < p->num_circles && !in; ++c) in = hypot(x + 0.5 - p->cx[c], y + 0.5 - p->cy[c]) < p->radius[c] + 1.0;
            if (!in) assert_memory_equal(p->image + 3 * (y * SIDE + x), bg + 3 * (y * SIDE + x), 3);
        }
}

static void test_instances(void **state) {
    (void)state;
    static ipr_polygons_instance p;
    int count_hist[10] = {0}, vert_hist[8] = {0};
    for (int s = 0; s < 2; ++s) {
        ipr_split split = s ? IPR_SPLIT_TEST : IPR_SPLIT_TRAIN;
        for (uint64_t i = 0; i < N_PER_SPLIT; ++i) {
            assert_int_equal(ipr_polygons_make(SEED, split, i, &p), IPR_OK);
            check_instance(&p, SEED, split, i);
            count_hist[p.num_polygons]++, vert_hist[p.num_vertices]++;
        }
    }
    /* every count and vertex number occurs (expected 44 and 80 of 400; P(miss) < 1e-9) */
    for (int n = 1; n <= 9; ++n) assert_true(count_hist[n] > 10);
    for (int v = 3; v <= 7; ++v) assert_true(vert_hist[v] > 30);
}

/* A mismatch the component check must catch: recolouring one polygon circle's pixels to background
 * removes a component. */
static void test_component_check_detects_missing_polygon(void **state) {
    (void)state;
    static ipr_polygons_instance p;
    static uint8_t bg[SIDE * SIDE * 3];
    static components comp;
    assert_int_equal(ipr_polygons_make(SEED, IPR_SPLIT_TEST, 3, &p), IPR_OK);
    ipr_polygons_background(SEED, IPR_SPLIT_TEST, 3, bg);
    find_components(p.image, p.color, &comp);
    int before = comp.n;
    for (int y = 0; y < SIDE; ++y)
        for (int x = 0; x < SIDE; ++x)
            if (hypot(x + 0.5 - p.cx[0], y + 0.5 - p.cy[0]) < p.radius[0] + 1.0)
                memcpy(p.image + 3 * (y * SIDE + x), bg + 3 * (y * SIDE + x), 3);
    find_components(p.image, p.color, &comp);
    assert_int_equal(comp.n, before - 1);
}

static void test_determinism(void **state) {
    (void)state;
    static ipr_polygons_instance a, b;
    for (uint64_t i = 0; i < 20; ++i) {
        assert_int_equal(ipr_polygons_make(SEED, IPR_SPLIT_TRAIN, i, &a), IPR_OK);
        assert_int_equal(ipr_polygons_make(SEED, IPR_SPLIT_TRAIN, i, &b), IPR_OK);
        assert_memory_equal(&a, &b, sizeof a);
        assert_int_equal(ipr_polygons_make(SEED, IPR_SPLIT_TRAIN, i + 1, &b), IPR_OK);
        assert_memory_not_equal(a.image, b.image, sizeof a.image);
        assert_int_equal(ipr_polygons_make(SEED, IPR_SPLIT_TEST, i, &b), IPR_OK);
        assert_memory_not_equal(a.image, b.image, sizeof a.image);
        assert_int_equal(ipr_polygons_make(SEED + 1, IPR_SPLIT_TRAIN, i, &b), IPR_OK);
        assert_memory_not_equal(a.image, b.image, sizeof a.image);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pair_labels),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_raster_areas),
        cmocka_unit_test(test_font_digits),
        cmocka_unit_test(test_instances),
        cmocka_unit_test(test_component_check_detects_missing_polygon),
        cmocka_unit_test(test_determinism),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
