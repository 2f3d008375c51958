/* counting_polygons.c: Counting Polygons instances (spec 4.3): a circle layout, regular polygons and the two
 * numerals drawn at 512 x 512 over a procedural background, box-filtered to 128 x 128; numeral pair labels. */
#include <math.h>
#include <string.h>

#include "ipr/bench.h"
#include "ipr/common.h"
#include "ipr/rng.h"
#include "raster.h"

#define SIDE IPR_POLY_SIDE
#define BIG (IPR_POLY_SIDE * IPR_POLY_SUPER) /* 512: the supersampled drawing size */
#define TWO_PI 6.28318530717958647692

#if IPR_POLY_SUPER != IPR_RASTER_SS
#error "the rasterizer's supersampling must equal IPR_POLY_SUPER"
#endif

/* ---------------- numeral pair labels ----------------
 * spec 4.3: the classifier's `numbers_label` head has 35 classes, the unordered pairs {count, vertices}.
 * The order is the reference's (srmbench / spatialreasoners DatasetCountingPolygonsAmbiguousLabeler):
 * for vertices 3..7 (outer), for count 1..9 (inner), append (min, max) when first seen. The classifier's
 * class indices mean exactly this order, so a different one (e.g. sorted) would mis-score its predictions. */
static const uint8_t k_pairs[IPR_POLY_NUM_PAIRS][2] = {
    {1, 3}, {2, 3}, {3, 3}, {3, 4}, {3, 5}, {3, 6}, {3, 7}, {3, 8}, {3, 9}, /* vertices 3 */
    {1, 4}, {2, 4}, {4, 4}, {4, 5}, {4, 6}, {4, 7}, {4, 8}, {4, 9},         /* vertices 4 */
    {1, 5}, {2, 5}, {5, 5}, {5, 6}, {5, 7}, {5, 8}, {5, 9},                 /* vertices 5 */
    {1, 6}, {2, 6}, {6, 6}, {6, 7}, {6, 8}, {6, 9},                         /* vertices 6 */
    {1, 7}, {2, 7}, {7, 7}, {7, 8}, {7, 9},                                 /* vertices 7 */
};

int ipr_polygons_pair_index(int a, int b) {
    int lo = a < b ? a : b, hi = a < b ? b : a;
    for (int i = 0; i < IPR_POLY_NUM_PAIRS; ++i)
        if (k_pairs[i][0] == lo && k_pairs[i][1] == hi) return i;
    return -1; /* bench.h contract: not a {count 1..9, vertices 3..7} pair */
}

void ipr_polygons_pair_values(int index, int *a, int *b) {
    int ok = index >= 0 && index < IPR_POLY_NUM_PAIRS;
    *a = ok ? k_pairs[index][0] : 0; /* 0, 0 for an index outside 0..34: no pair has a 0 */
    *b = ok ? k_pairs[index][1] : 0;
}

/* ---------------- colours ---------------- */

/* PIL libImaging rgb2hsv_row, hue only: float arithmetic, fmod in double, truncation to uint8. */
uint8_t ipr_pil_hue_u8(uint8_t r, uint8_t g, uint8_t b) {
    uint8_t maxc = r > g ? (r > b ? r : b) : (g > b ? g : b);
    uint8_t minc = r < g ? (r < b ? r : b) : (g < b ? g : b);
    if (maxc == minc) return 0;
    float cr = (float)(maxc - minc);
    float rc = (float)(maxc - r) / cr, gc = (float)(maxc - g) / cr, bc = (float)(maxc - b) / cr;
    float h;
    if (r == maxc)
        h = bc - gc;
    else if (g == maxc)
        h = (float)(2.0 + rc - bc);
    else
        h = (float)(4.0 + gc - rc);
    h = (float)fmod(h / 6.0 + 1.0, 1.0);
    int v = (int)(h * 255.0);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Python colorsys.hsv_to_rgb on doubles in [0, 1]. */
static void hsv_to_rgb(double h, double s, double v, double rgb[3]) {
    int i = (int)(h * 6.0);
    double f = h * 6.0 - i, p = v * (1.0 - s), q = v * (1.0 - s * f), t = v * (1.0 - s * (1.0 - f));
    switch (((i % 6) + 6) % 6) {
    case 0: rgb[0] = v, rgb[1] = t, rgb[2] = p; break;
    case 1: rgb[0] = q, rgb[1] = v, rgb[2] = p; break;
    case 2: rgb[0] = p, rgb[1] = v, rgb[2] = t; break;
    case 3: rgb[0] = p, rgb[1] = q, rgb[2] = v; break;
    case 4: rgb[0] = t, rgb[1] = p, rgb[2] = v; break;
    default: rgb[0] = v, rgb[1] = p, rgb[2] = q; break;
    }
}

/* spec 4.3 / reference _get_color: PIL hue histogram (256 bins) of the background, circularly padded by
 * 127 and convolved with a 255-tap Gaussian (sigma 26 bins, taps -127..127, normalised), argmin (first),
 * hue = bin / 255, colorsys HSV -> RGB with S 1.0 and V 0.9, each channel int(x * 255). */
void ipr_polygons_shape_color(const uint8_t *rgb, int npix, uint8_t color[3], int *hue_bin) {
    enum { NB = 256, TAPS = 255, HALF = TAPS / 2 };
    const double sigma = 26.0;
    double hist[NB] = {0}, kernel[TAPS], ksum = 0.0;
    for (int i = 0; i < npix; ++i) hist[ipr_pil_hue_u8(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2])] += 1.0;
    for (int k = 0; k < TAPS; ++k) {
        kernel[k] = exp(-(double)((k - HALF) * (k - HALF)) / (2.0 * sigma * sigma));
        ksum += kernel[k];
    }
    int best = 0;
    double best_v = INFINITY;
    for (int i = 0; i < NB; ++i) {
        double v = 0.0;
        for (int k = 0; k < TAPS; ++k) v += hist[(i + k - HALF + NB) % NB] * (kernel[k] / ksum);
        if (v < best_v) best_v = v, best = i;
    }
    double c[3];
    hsv_to_rgb(best / 255.0, 1.0, 0.9, c);
    for (int k = 0; k < 3; ++k) color[k] = (uint8_t)(c[k] * 255.0);
    if (hue_bin) *hue_bin = best;
}

/* ---------------- procedural background ----------------
 * Not spec: the reference composites onto FFHQ faces, which cannot be shipped. Instead every instance gets
 * a smooth random picture from the IPR_RNG_POLY_BACKGROUND stream: a colour gradient, 2-6 soft elliptical
 * Gaussian colour blobs blended over it, and 1-3 low-frequency sinusoidal colour waves. The palette is drawn
 * around a base hue with a random spread (near-monochrome to rainbow), so the least frequent hue, and with it
 * the shape colour, varies across instances as it does over FFHQ. Saturation is capped at S <= 0.72 and
 * brightness lifted to V >= 0.1 (so rounding cannot push a dark pixel to S = 1): every background pixel stays
 * below S 0.85 in uint8, and whenever its brightest channel is within 40 of the shape colour's 229 its dimmest
 * is at least 47, so no background pixel passes for the shape colour (S 1 has a zero channel). */
#define BG_MAX_SAT 0.72
#define BG_MIN_VAL 0.10

static void palette_color(ipr_rng *r, double base_hue, double spread, double out[3]) {
    double h = base_hue + spread * (2.0 * ipr_rng_uniform(r) - 1.0);
    h -= floor(h);
    double s = 0.05 + 0.65 * ipr_rng_uniform(r), v = 0.15 + 0.8 * ipr_rng_uniform(r);
    hsv_to_rgb(h, s, v, out);
}

void ipr_polygons_background(uint64_t seed, ipr_split split, uint64_t index, uint8_t *rgb) {
    ipr_rng r;
    ipr_rng_init(&r, seed, IPR_RNG_POLY_BACKGROUND, index, (uint32_t)split);
    double base_hue = ipr_rng_uniform(&r), spread = 0.03 + 0.47 * ipr_rng_uniform(&r);

    /* gradient between two palette colours along a random direction */
    double g0[3], g1[3];
    palette_color(&r, base_hue, spread, g0);
    palette_color(&r, base_hue, spread, g1);
    double gang = TWO_PI * ipr_rng_uniform(&r), gscale = 0.5 + 1.5 * ipr_rng_uniform(&r);
    double gdx = cos(gang) * gscale / SIDE, gdy = sin(gang) * gscale / SIDE;

    enum { MAX_BLOBS = 6, MAX_WAVES = 3 };
    int nblobs = ipr_rng_range(&r, 2, MAX_BLOBS);
    double bcol[MAX_BLOBS][3], bx[MAX_BLOBS], by[MAX_BLOBS], bsx[MAX_BLOBS], bsy[MAX_BLOBS], bop[MAX_BLOBS];
    for (int b = 0; b < nblobs; ++b) {
        palette_color(&r, base_hue, spread, bcol[b]);
        bx[b] = SIDE * (1.2 * ipr_rng_uniform(&r) - 0.1);
        by[b] = SIDE * (1.2 * ipr_rng_uniform(&r) - 0.1);
        bsx[b] = SIDE * (0.08 + 0.3 * ipr_rng_uniform(&r));
        bsy[b] = SIDE * (0.08 + 0.3 * ipr_rng_uniform(&r));
        bop[b] = 0.4 + 0.6 * ipr_rng_uniform(&r);
    }
    int nwaves = ipr_rng_range(&r, 1, MAX_WAVES);
    double wkx[MAX_WAVES], wky[MAX_WAVES], wph[MAX_WAVES], wamp[MAX_WAVES][3];
    for (int w = 0; w < nwaves; ++w) {
        double ang = TWO_PI * ipr_rng_uniform(&r), cycles = 0.5 + 3.5 * ipr_rng_uniform(&r);
        wkx[w] = TWO_PI * cycles * cos(ang) / SIDE, wky[w] = TWO_PI * cycles * sin(ang) / SIDE;
        wph[w] = TWO_PI * ipr_rng_uniform(&r);
        for (int k = 0; k < 3; ++k) wamp[w][k] = 0.08 * ipr_rng_normal(&r);
    }

    for (int y = 0; y < SIDE; ++y)
        for (int x = 0; x < SIDE; ++x) {
            double px = x + 0.5, py = y + 0.5, c[3];
            double t = 0.5 + (px - 0.5 * SIDE) * gdx + (py - 0.5 * SIDE) * gdy;
            t = t < 0.0 ? 0.0 : t > 1.0 ? 1.0 : t;
            for (int k = 0; k < 3; ++k) c[k] = g0[k] + (g1[k] - g0[k]) * t;
            for (int b = 0; b < nblobs; ++b) {
                double dx = (px - bx[b]) / bsx[b], dy = (py - by[b]) / bsy[b];
                double wgt = bop[b] * exp(-0.5 * (dx * dx + dy * dy));
                for (int k = 0; k < 3; ++k) c[k] += (bcol[b][k] - c[k]) * wgt;
            }
            for (int w = 0; w < nwaves; ++w) {
                double s = sin(wkx[w] * px + wky[w] * py + wph[w]);
                for (int k = 0; k < 3; ++k) c[k] += wamp[w][k] * s;
            }
            double mx = 0.0, mn = 1.0;
            for (int k = 0; k < 3; ++k) {
                c[k] = c[k] < 0.0 ? 0.0 : c[k] > 1.0 ? 1.0 : c[k];
                mx = fmax(mx, c[k]), mn = fmin(mn, c[k]);
            }
            if (mx < BG_MIN_VAL) { /* lift V, keeping hue and saturation (a black pixel becomes grey) */
                for (int k = 0; k < 3; ++k) c[k] = mx > 0.0 ? c[k] * (BG_MIN_VAL / mx) : BG_MIN_VAL;
                mn = mx > 0.0 ? mn * (BG_MIN_VAL / mx) : BG_MIN_VAL;
                mx = BG_MIN_VAL;
            }
            double sat = (mx - mn) / mx;
            if (sat > BG_MAX_SAT) /* pull channels towards the max: hue and V stay, S becomes the cap */
                for (int k = 0; k < 3; ++k) c[k] = mx - (mx - c[k]) * (BG_MAX_SAT / sat);
            for (int k = 0; k < 3; ++k) rgb[3 * (y * SIDE + x) + k] = (uint8_t)floor(c[k] * 255.0 + 0.5);
        }
}

/* ---------------- circle layout ----------------
 * spec 4.3: radii U(0.07, 0.155) * 512 at the 512 scale, circles inside the image and not overlapping. The
 * reference ships layouts optimised with Adam; we use deterministic rejection sampling instead. An attempt
 * places the circles largest first, each at a uniform position inside the image (up to PLACE_TRIES
 * positions) that keeps a gap of GAP px (512 scale) to every circle already placed, so the polygons stay
 * separate connected components after the box filter. A failed attempt retries the positions; radii are
 * redrawn after POSITION_TRIES failed attempts (retrying positions first keeps the radii close to uniform:
 * redrawing at once would favour small radii in crowded images), and after SHRINK_EVERY failed attempts
 * the radii of later draws are scaled by SHRINK. Measured over 20,000 instances: the mean radius is within
 * 1.5% of the uniform mean (14.4 px at 128) up to 10 circles and 2.6% below it for 11; no draw was shrunk.
 * Finally the circles are shuffled into the slots, so the numeral circles are not always the smallest. */
#define R_LO 0.07
#define R_HI 0.155
#define GAP 8.0
#define PLACE_TRIES 200
#define POSITION_TRIES 4
#define SHRINK_EVERY 16
#define SHRINK 0.93
#define MAX_ATTEMPTS 400

static int place_circles(ipr_rng *r, int n, double *cx, double *cy, double *rad) {
    double scale = 1.0;
    double rr[IPR_POLY_MAX_CIRCLES], px[IPR_POLY_MAX_CIRCLES], py[IPR_POLY_MAX_CIRCLES];
    int order[IPR_POLY_MAX_CIRCLES];
    for (int attempt = 0; attempt < MAX_ATTEMPTS; ++attempt) {
        if (attempt % POSITION_TRIES == 0) { /* new radii, largest placed first (stable order) */
            if (attempt > 0 && attempt % SHRINK_EVERY == 0) scale *= SHRINK;
            for (int i = 0; i < n; ++i) {
                rr[i] = (R_LO + (R_HI - R_LO) * ipr_rng_uniform(r)) * BIG * scale;
                order[i] = i;
            }
            for (int i = 1; i < n; ++i)
                for (int j = i; j > 0 && rr[order[j - 1]] < rr[order[j]]; --j) {
                    int t = order[j];
                    order[j] = order[j - 1], order[j - 1] = t;
                }
        }
        int placed = 0;
        for (; placed < n; ++placed) {
            double ri = rr[order[placed]];
            int ok = 0;
            for (int t = 0; t < PLACE_TRIES && !ok; ++t) {
                double x = ri + (BIG - 2.0 * ri) * ipr_rng_uniform(r);
                double y = ri + (BIG - 2.0 * ri) * ipr_rng_uniform(r);
                ok = 1;
                for (int j = 0; j < placed && ok; ++j) {
                    double dx = x - px[j], dy = y - py[j], need = ri + rr[order[j]] + GAP;
                    ok = dx * dx + dy * dy >= need * need;
                }
                if (ok) px[placed] = x, py[placed] = y;
            }
            if (!ok) break;
        }
        if (placed < n) continue;
        uint32_t slot[IPR_POLY_MAX_CIRCLES];
        for (uint32_t i = 0; i < (uint32_t)n; ++i) slot[i] = i;
        ipr_rng_shuffle_u32(r, slot, (uint32_t)n);
        for (int i = 0; i < n; ++i) cx[slot[i]] = px[i], cy[slot[i]] = py[i], rad[slot[i]] = rr[order[i]];
        return IPR_OK;
    }
    IPR_FAIL("could not place %d circles in %d attempts", n, MAX_ATTEMPTS);
fail:
    return IPR_ERR;
}

/* ---------------- instances ---------------- */

int ipr_polygons_make(uint64_t seed, ipr_split split, uint64_t index, ipr_polygons_instance *out) {
    IPR_CHECK(out != NULL, "ipr_polygons_make: output instance is NULL");
    IPR_CHECK(split == IPR_SPLIT_TRAIN || split == IPR_SPLIT_TEST, "invalid split %d", (int)split);
    IPR_CHECK(index < (UINT64_C(1) << 48), "Counting Polygons index %llu does not fit in 48 bits",
              (unsigned long long)index);
    memset(out, 0, sizeof *out);

    /* spec 4.3: 1-9 polygons, 3-7 vertices each (the same for all), one rotation U(0, 2 pi) per polygon.
     * All nine rotations are drawn so the layout draws below do not depend on the count. */
    ipr_rng r;
    ipr_rng_init(&r, seed, IPR_RNG_POLY_LAYOUT, index, (uint32_t)split);
    out->num_polygons = ipr_rng_range(&r, 1, IPR_POLY_MAX_POLYGONS);
    out->num_vertices = ipr_rng_range(&r, 3, 7);
    out->num_circles = out->num_polygons + 2;
    double rot[IPR_POLY_MAX_POLYGONS];
    for (int i = 0; i < IPR_POLY_MAX_POLYGONS; ++i) rot[i] = TWO_PI * ipr_rng_uniform(&r);
    double cx[IPR_POLY_MAX_CIRCLES], cy[IPR_POLY_MAX_CIRCLES], rad[IPR_POLY_MAX_CIRCLES]; /* 512 scale */
    IPR_TRY(place_circles(&r, out->num_circles, cx, cy, rad));
    for (int i = 0; i < out->num_circles; ++i) {
        out->cx[i] = (float)(cx[i] / IPR_POLY_SUPER);
        out->cy[i] = (float)(cy[i] / IPR_POLY_SUPER);
        out->radius[i] = (float)(rad[i] / IPR_POLY_SUPER);
    }
    for (int i = 0; i < out->num_polygons; ++i) out->rotation[i] = (float)rot[i];
    out->pair_label = ipr_polygons_pair_index(out->num_polygons, out->num_vertices);

    ipr_polygons_background(seed, split, index, out->image);
    ipr_polygons_shape_color(out->image, SIDE * SIDE, out->color, NULL);

    /* Overlay at 512 x 512 (4 x 4 samples per output pixel), box-filtered to 128 x 128 by the coverage
     * count. The reference instead draws an RGBA overlay at 512 (aliased polygons, anti-aliased text) and
     * resizes it bicubically; the box filter has no ringing, so the shape colour stays exact inside shapes
     * and the edges blend monotonically into the background. */
    uint16_t bits[SIDE * SIDE];
    ipr_coverage cov = {SIDE, SIDE, bits};
    ipr_cov_clear(&cov);
    const int nv = out->num_vertices;
    for (int p = 0; p < out->num_polygons; ++p) {
        /* spec 4.3: regular, vertices on the circle at angles 2 pi k / n + rotation (y down, as PIL) */
        double xy[2 * 7];
        for (int k = 0; k < nv; ++k) {
            double a = TWO_PI * k / nv + rot[p];
            xy[2 * k] = cx[p] + rad[p] * cos(a);
            xy[2 * k + 1] = cy[p] + rad[p] * sin(a);
        }
        ipr_cov_polygon(&cov, xy, nv);
    }
    /* spec 4.3: numerals in the last two circles, font size = radius. Deviation: our glyph (ink height =
     * radius) is centred in its circle; PIL's top-left anchor at the centre puts the reference's partly
     * outside the circle, where it can touch a neighbour. */
    const int numerals[2] = {out->num_polygons, out->num_vertices};
    for (int k = 0; k < 2; ++k) {
        int c = out->num_polygons + k;
        IPR_TRY(ipr_font_digit(&cov, numerals[k], cx[c], cy[c], rad[c]));
    }
    ipr_cov_composite(&cov, out->color, out->image);
    return IPR_OK;
fail:
    return IPR_ERR;
}
