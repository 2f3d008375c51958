/* even_pixels.c: Even Pixels instances (spec 4.2) and the hue-histogram scorer.
 * Generation mirrors the reference: HSV floats * 255 truncated to uint8, then PIL's HSV -> RGB. */
#include <math.h>
#include <string.h>

#include "ipr/bench.h"
#include "ipr/common.h"
#include "ipr/rng.h"

/* PIL libImaging hsv2rgb, same arithmetic types (double expressions, float f and fs, int rounding). */
void ipr_hsv_to_rgb_u8(const uint8_t hsv[3], uint8_t rgb[3]) {
    uint8_t h = hsv[0], s = hsv[1], v = hsv[2];
    if (s == 0) {
        rgb[0] = rgb[1] = rgb[2] = v;
        return;
    }
    int i = (int)floor((float)h * 6.0 / 255.0);
    float f = (float)((float)h * 6.0 / 255.0 - (float)i);
    float fs = (float)(((float)s) / 255.0);
    int p = (int)round((float)v * (1.0 - fs));
    int q = (int)round((float)v * (1.0 - fs * f));
    int t = (int)round((float)v * (1.0 - fs * (1.0 - f)));
    uint8_t up = (uint8_t)(p < 0 ? 0 : p > 255 ? 255 : p);
    uint8_t uq = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
    uint8_t ut = (uint8_t)(t < 0 ? 0 : t > 255 ? 255 : t);
    switch (i % 6) {
    case 0: rgb[0] = v, rgb[1] = ut, rgb[2] = up; break;
    case 1: rgb[0] = uq, rgb[1] = v, rgb[2] = up; break;
    case 2: rgb[0] = up, rgb[1] = v, rgb[2] = ut; break;
    case 3: rgb[0] = up, rgb[1] = uq, rgb[2] = v; break;
    case 4: rgb[0] = ut, rgb[1] = up, rgb[2] = v; break;
    default: rgb[0] = v, rgb[1] = up, rgb[2] = uq; break;
    }
}

int ipr_even_pixels_make(uint64_t seed, ipr_split split, uint64_t index, ipr_even_pixels_instance *out) {
    ipr_rng r;
    ipr_rng_init(&r, seed, IPR_RNG_EVEN_PIXELS, index, (uint32_t)split);
    memset(out, 0, sizeof *out);
    double h0 = 0.5 * ipr_rng_uniform(&r); /* U(0, 0.5) */
    out->hue_offset = (float)h0;
    uint32_t perm[IPR_EP_PIXELS];
    for (uint32_t i = 0; i < IPR_EP_PIXELS; ++i) perm[i] = i < IPR_EP_PIXELS / 2;
    ipr_rng_shuffle_u32(&r, perm, IPR_EP_PIXELS);
    for (int i = 0; i < IPR_EP_PIXELS; ++i) {
        out->mask[i] = (uint8_t)perm[i];
        /* np.uint8(data * 255): truncation; S = 1.0 -> 255, V = 0.7 -> 178 */
        uint8_t hsv[3] = {(uint8_t)((perm[i] * 0.5 + h0) * 255.0), 255, (uint8_t)(0.7 * 255.0)};
        ipr_hsv_to_rgb_u8(hsv, out->image + 3 * i);
    }
    return IPR_OK;
}

/* matplotlib.colors.rgb_to_hsv hue, float32 arithmetic as numpy does it on float32 input. Later
 * assignments win: on ties blue beats green beats red. */
static float hue_of(float r, float g, float b) {
    float mx = fmaxf(r, fmaxf(g, b));
    float mn = fminf(r, fminf(g, b));
    float delta = mx - mn;
    float h = 0.0f;
    if (delta > 0.0f) {
        if (r == mx) h = (g - b) / delta;
        if (g == mx) h = 2.0f + (b - r) / delta;
        if (b == mx) h = 4.0f + (r - g) / delta;
    }
    h = h / 6.0f;
    /* numpy float modulo by 1.0: result takes the divisor's sign */
    float m = fmodf(h, 1.0f);
    if (m != 0.0f && m < 0.0f) m += 1.0f;
    if (m == 0.0f) m = 0.0f;
    return m;
}

/* spec 4.2 / reference even_pixels_evaluation: 256-bin hue histogram on [0, 1], peak and its opposite,
 * borders at the midpoints, pixels in [b_lo, b_hi) against half the image. */
static int score_hues(const int hist[256], int total) {
    const int nb = 256;
    int peak1 = 0;
    for (int i = 1; i < nb; ++i)
        if (hist[i] > hist[peak1]) peak1 = i; /* argmax: first maximum */
    int peak2 = peak1 + nb / 2;
    if (peak2 >= nb) peak2 -= nb;
    int p0 = peak1 < peak2 ? peak1 : peak2, p1 = peak1 < peak2 ? peak2 : peak1;
    int b1 = (p0 + p1) / 2, b2 = (p0 + p1 + nb) / 2;
    if (b2 > nb) b2 -= nb;
    int lo = b1 < b2 ? b1 : b2, hi = b1 < b2 ? b2 : b1;
    int count = 0;
    for (int i = lo; i < hi; ++i) count += hist[i];
    int err = count - total / 2;
    return err < 0 ? -err : err;
}

static void hist_add(int hist[256], float r, float g, float b) {
    float h = hue_of(r, g, b);
    int bin = (int)(h * 256.0f); /* exact: 256 is a power of two and the edges k/256 are floats */
    if (bin > 255) bin = 255;
    if (bin < 0) bin = 0;
    hist[bin]++;
}

static float to_unit(float x) {
    float v = (x + 1.0f) / 2.0f;
    return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
}

int ipr_even_pixels_error_chw(const float *img, int h, int w) {
    int hist[256] = {0};
    size_t plane = (size_t)h * (size_t)w;
    for (size_t i = 0; i < plane; ++i)
        hist_add(hist, to_unit(img[i]), to_unit(img[plane + i]), to_unit(img[2 * plane + i]));
    return score_hues(hist, h * w);
}

int ipr_even_pixels_error_u8(const uint8_t *rgb, int h, int w) {
    int hist[256] = {0};
    size_t n = (size_t)h * (size_t)w;
    for (size_t i = 0; i < n; ++i)
        hist_add(hist, rgb[3 * i] / 255.0f, rgb[3 * i + 1] / 255.0f, rgb[3 * i + 2] / 255.0f);
    return score_hues(hist, h * w);
}
