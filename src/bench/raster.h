/* raster.h: the coverage rasterizer and stroke digit font behind the Counting Polygons overlay (spec 4.3),
 * plus the internal steps of an instance (background, shape colour) exposed for tests. Internal to libipr. */
#ifndef IPR_BENCH_RASTER_H
#define IPR_BENCH_RASTER_H

#include <stdint.h>

#include "ipr/bench.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Supersampling: shapes are drawn at side * IPR_RASTER_SS (512 for Counting Polygons) with one sample at
 * the centre of each supersampled pixel. The samples of one output pixel are kept as the 16 bits of a
 * uint16 (bit = sy * 4 + sx), so overlapping shapes (the strokes of a digit) combine by OR, and the box
 * filter down to the output size is a popcount. */
#define IPR_RASTER_SS 4

typedef struct {
    int w, h;       /* output size in pixels */
    uint16_t *bits; /* (h, w): sample mask of each output pixel */
} ipr_coverage;

/* All coordinates below are in supersampled pixels: x in [0, w * SS], sample (X, Y) sits at (X + 0.5, Y + 0.5). */
void ipr_cov_clear(ipr_coverage *c);
/* Even-odd fill of a closed polygon, xy = (n, 2) vertices; n >= 3. */
void ipr_cov_polygon(ipr_coverage *c, const double *xy, int n);
/* Filled disc. */
void ipr_cov_disc(ipr_coverage *c, double cx, double cy, double radius);
/* Round-capped stroke: samples within half_width of the segment (x0, y0)-(x1, y1). */
void ipr_cov_capsule(ipr_coverage *c, double x0, double y0, double x1, double y1, double half_width);
/* Covered fraction of output pixel i (0, 1/16, ..., 1). */
double ipr_cov_alpha(const ipr_coverage *c, int i);
/* rgb (h, w, 3) <- rgb * (1 - alpha) + color * alpha, rounded to nearest. */
void ipr_cov_composite(const ipr_coverage *c, const uint8_t color[3], uint8_t *rgb);

/* Stroke font (font.c): draw digit 0..9 with its ink box centred on (cx, cy), ink height `height`
 * (stroke included) and stroke width IPR_FONT_STROKE * height. IPR_ERR for a digit outside 0..9. */
#define IPR_FONT_STROKE 0.18
int ipr_font_digit(ipr_coverage *c, int digit, double cx, double cy, double height);

/* PIL's uint8 hue of RGB -> HSV (libImaging rgb2hsv_row): 0 for greys. */
uint8_t ipr_pil_hue_u8(uint8_t r, uint8_t g, uint8_t b);
/* The procedural background of instance (seed, split, index): (128, 128, 3) RGB. */
void ipr_polygons_background(uint64_t seed, ipr_split split, uint64_t index, uint8_t *rgb);
/* spec 4.3 shape colour of a background of npix RGB pixels: least frequent hue after a circular Gaussian
 * blur of the 256-bin hue histogram, S 1, V 0.9. Writes the chosen hue bin to *hue_bin if non-NULL. */
void ipr_polygons_shape_color(const uint8_t *rgb, int npix, uint8_t color[3], int *hue_bin);

#ifdef __cplusplus
}
#endif
#endif
