/* font.c: a small supersampled coverage rasterizer (polygons, discs, round-capped strokes) and a stroke
 * font for the digits 0-9, used to draw the Counting Polygons numerals (spec 4.3) without font files. */
#include <math.h>
#include <string.h>

#include "ipr/common.h"
#include "raster.h"

#define SS IPR_RASTER_SS

void ipr_cov_clear(ipr_coverage *c) { memset(c->bits, 0, (size_t)c->w * (size_t)c->h * sizeof *c->bits); }

static void set_sample(ipr_coverage *c, int sx, int sy) {
    size_t px = (size_t)(sy / SS) * (size_t)c->w + (size_t)(sx / SS);
    c->bits[px] |= (uint16_t)(1u << ((sy % SS) * SS + sx % SS));
}

/* Samples of row sy whose centres lie in [xa, xb): X + 0.5 >= xa  <=>  X >= ceil(xa - 0.5). */
static void fill_span(ipr_coverage *c, int sy, double xa, double xb) {
    int w = c->w * SS;
    double lo = ceil(xa - 0.5), hi = ceil(xb - 0.5);
    int x0 = lo < 0.0 ? 0 : lo > w ? w : (int)lo;
    int x1 = hi < 0.0 ? 0 : hi > w ? w : (int)hi;
    for (int x = x0; x < x1; ++x) set_sample(c, x, sy);
}

/* Rows whose sample centre lies in [ya, yb], clipped to the image. */
static void row_range(const ipr_coverage *c, double ya, double yb, int *y0, int *y1) {
    int h = c->h * SS;
    double lo = floor(ya - 0.5), hi = ceil(yb - 0.5);
    *y0 = lo < 0.0 ? 0 : lo > h ? h : (int)lo;
    *y1 = hi < 0.0 ? 0 : hi > h ? h : (int)hi;
}

/* Scanline even-odd fill: each edge counts on the rows whose centre is in [min y, max y) of the edge,
 * so a vertex shared by two edges is counted once and horizontal edges never. */
void ipr_cov_polygon(ipr_coverage *c, const double *xy, int n) {
    if (n < 3) return;
    double ymin = xy[1], ymax = xy[1];
    for (int i = 1; i < n; ++i) {
        ymin = fmin(ymin, xy[2 * i + 1]);
        ymax = fmax(ymax, xy[2 * i + 1]);
    }
    int y0, y1;
    row_range(c, ymin, ymax, &y0, &y1);
    enum { MAX_CROSS = 64 };
    double xs[MAX_CROSS];
    for (int sy = y0; sy < y1; ++sy) {
        double yc = sy + 0.5;
        int nx = 0;
        for (int i = 0; i < n && nx < MAX_CROSS; ++i) {
            double ax = xy[2 * i], ay = xy[2 * i + 1];
            double bx = xy[2 * ((i + 1) % n)], by = xy[2 * ((i + 1) % n) + 1];
            if ((ay <= yc) == (by <= yc)) continue;
            xs[nx++] = ax + (yc - ay) * (bx - ax) / (by - ay);
        }
        for (int i = 1; i < nx; ++i) /* insertion sort: nx is the vertex count at most */
            for (int j = i; j > 0 && xs[j - 1] > xs[j]; --j) {
                double t = xs[j];
                xs[j] = xs[j - 1], xs[j - 1] = t;
            }
        for (int i = 0; i + 1 < nx; i += 2) fill_span(c, sy, xs[i], xs[i + 1]);
    }
}

void ipr_cov_disc(ipr_coverage *c, double cx, double cy, double radius) {
    int y0, y1;
    row_range(c, cy - radius, cy + radius, &y0, &y1);
    for (int sy = y0; sy < y1; ++sy) {
        double dy = sy + 0.5 - cy, d2 = radius * radius - dy * dy;
        if (d2 <= 0.0) continue;
        double dx = sqrt(d2);
        fill_span(c, sy, cx - dx, cx + dx);
    }
}

void ipr_cov_capsule(ipr_coverage *c, double x0, double y0, double x1, double y1, double half_width) {
    double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy, r2 = half_width * half_width;
    int ya, yb;
    row_range(c, fmin(y0, y1) - half_width, fmax(y0, y1) + half_width, &ya, &yb);
    int w = c->w * SS;
    double lo = floor(fmin(x0, x1) - half_width - 0.5), hi = ceil(fmax(x0, x1) + half_width - 0.5);
    int xa = lo < 0.0 ? 0 : lo > w ? w : (int)lo, xb = hi < 0.0 ? 0 : hi > w ? w : (int)hi;
    for (int sy = ya; sy < yb; ++sy)
        for (int sx = xa; sx < xb; ++sx) {
            double px = sx + 0.5 - x0, py = sy + 0.5 - y0;
            /* distance to the segment: project onto it and clamp to the end points */
            double t = len2 > 0.0 ? (px * dx + py * dy) / len2 : 0.0;
            t = t < 0.0 ? 0.0 : t > 1.0 ? 1.0 : t;
            double ex = px - t * dx, ey = py - t * dy;
            if (ex * ex + ey * ey < r2) set_sample(c, sx, sy);
        }
}

double ipr_cov_alpha(const ipr_coverage *c, int i) {
    unsigned v = c->bits[i], n = 0;
    for (; v; v &= v - 1) ++n;
    return n / (double)(SS * SS);
}

void ipr_cov_composite(const ipr_coverage *c, const uint8_t color[3], uint8_t *rgb) {
    int n = c->w * c->h;
    for (int i = 0; i < n; ++i) {
        if (!c->bits[i]) continue;
        double a = ipr_cov_alpha(c, i);
        for (int k = 0; k < 3; ++k) {
            double v = rgb[3 * i + k] + (color[k] - rgb[3 * i + k]) * a;
            rgb[3 * i + k] = (uint8_t)floor(v + 0.5);
        }
    }
}

/* ---- stroke font ----
 * Each digit is a set of centre-line strokes in a box 0.55 wide and 1 tall (y down), in the spirit of a
 * Hershey font. MOVE starts a stroke; LINE continues it; ARC continues it (a straight piece to the arc's
 * start, then the arc); ELLIPSE is a closed stroke of its own. Arcs are elliptical: centre, radii, start and
 * end angle in degrees, measured from +x towards +y (clockwise on screen). Strokes are drawn as round-capped
 * capsules, so joins and ends are round. The shapes follow the common sans-serif digits. */
enum { G_END = 0, G_MOVE, G_LINE, G_ARC, G_ELLIPSE };
typedef struct {
    uint8_t op;
    float a[6];
} glyph_op;

#define MAXOPS 6
static const glyph_op k_digits[10][MAXOPS] = {
    /* 0: one ellipse */
    {{G_ELLIPSE, {0.275f, 0.5f, 0.275f, 0.5f}}},
    /* 1: flag and stem */
    {{G_MOVE, {0.08f, 0.22f}}, {G_LINE, {0.34f, 0.0f}}, {G_LINE, {0.34f, 1.0f}}},
    /* 2: top bowl, diagonal, base */
    {{G_ARC, {0.275f, 0.27f, 0.265f, 0.27f, -165.0f, 25.0f}}, {G_LINE, {0.0f, 1.0f}}, {G_LINE, {0.55f, 1.0f}}},
    /* 3: two right-open bowls; the lower one starts with a short middle bar */
    {{G_ARC, {0.26f, 0.25f, 0.24f, 0.25f, -155.0f, 90.0f}},
     {G_MOVE, {0.14f, 0.5f}},
     {G_ARC, {0.265f, 0.75f, 0.285f, 0.25f, -90.0f, 155.0f}}},
    /* 4: stem, diagonal, cross bar */
    {{G_MOVE, {0.42f, 1.0f}}, {G_LINE, {0.42f, 0.0f}}, {G_LINE, {0.0f, 0.7f}}, {G_LINE, {0.55f, 0.7f}}},
    /* 5: top bar, down stroke, bowl */
    {{G_MOVE, {0.52f, 0.0f}},
     {G_LINE, {0.09f, 0.0f}},
     {G_LINE, {0.05f, 0.46f}},
     {G_ARC, {0.27f, 0.68f, 0.28f, 0.32f, -140.0f, 150.0f}}},
    /* 6: closed lower bowl and a tail sweeping up to the right */
    {{G_ELLIPSE, {0.275f, 0.7f, 0.275f, 0.3f}},
     {G_MOVE, {0.0f, 0.7f}},
     {G_ARC, {0.55f, 0.7f, 0.55f, 0.7f, -180.0f, -105.0f}}},
    /* 7: top bar and diagonal */
    {{G_MOVE, {0.0f, 0.0f}}, {G_LINE, {0.55f, 0.0f}}, {G_LINE, {0.17f, 1.0f}}},
    /* 8: two stacked ellipses, the lower one wider */
    {{G_ELLIPSE, {0.275f, 0.245f, 0.235f, 0.245f}}, {G_ELLIPSE, {0.275f, 0.735f, 0.275f, 0.265f}}},
    /* 9: the 6 turned by 180 degrees */
    {{G_ELLIPSE, {0.275f, 0.3f, 0.275f, 0.3f}}, {G_MOVE, {0.55f, 0.3f}}, {G_ARC, {0.0f, 0.3f, 0.55f, 0.7f, 0.0f, 75.0f}}},
};

/* A digit's strokes as polylines: points (n, 2) and the index where each stroke starts. */
#define MAXPTS 256
#define MAXSTROKES 8
typedef struct {
    double xy[2 * MAXPTS];
    int start[MAXSTROKES + 1];
    int nstrokes, npts;
} polylines;

static void pl_point(polylines *p, double x, double y, int new_stroke) {
    if (p->npts >= MAXPTS) return;
    if (new_stroke || p->nstrokes == 0) {
        if (p->nstrokes >= MAXSTROKES) return;
        p->start[p->nstrokes++] = p->npts;
    }
    p->xy[2 * p->npts] = x, p->xy[2 * p->npts + 1] = y;
    p->npts++;
}

/* Elliptical arc from d0 to d1 degrees in pieces of at most 10 degrees; the first point starts a new
 * stroke if `new_stroke`. */
static void pl_arc(polylines *p, const float *a, double d0, double d1, int new_stroke) {
    const double deg = 3.14159265358979323846 / 180.0;
    int nseg = (int)ceil(fabs(d1 - d0) / 10.0);
    if (nseg < 1) nseg = 1;
    for (int k = 0; k <= nseg; ++k) {
        double t = (d0 + (d1 - d0) * k / nseg) * deg;
        pl_point(p, a[0] + a[2] * cos(t), a[1] + a[3] * sin(t), new_stroke && k == 0);
    }
}

static void expand_glyph(const glyph_op *ops, polylines *p) {
    memset(p, 0, sizeof *p);
    int open = 0; /* a stroke is open and LINE / ARC continue it */
    for (int i = 0; i < MAXOPS && ops[i].op != G_END; ++i) {
        const float *a = ops[i].a;
        switch (ops[i].op) {
        case G_MOVE: pl_point(p, a[0], a[1], 1), open = 1; break;
        case G_LINE: pl_point(p, a[0], a[1], !open), open = 1; break;
        case G_ARC: pl_arc(p, a, a[4], a[5], !open), open = 1; break;
        default: pl_arc(p, a, 0.0, 360.0, 1), open = 0; break; /* G_ELLIPSE */
        }
    }
    p->start[p->nstrokes] = p->npts;
}

int ipr_font_digit(ipr_coverage *c, int digit, double cx, double cy, double height) {
    IPR_CHECK(digit >= 0 && digit <= 9, "the stroke font has digits 0-9 only, not %d", digit);
    IPR_CHECK(height > 0.0, "digit height must be positive, got %g", height);
    polylines p;
    expand_glyph(k_digits[digit], &p);
    /* The centre-line box is 1 tall; the stroke adds half a width above and below, so the ink is `height`
     * tall. Centre the centre lines' bounding box (= the ink box, the stroke being uniform) on (cx, cy). */
    double sw = IPR_FONT_STROKE * height, scale = height - sw;
    double xmin = p.xy[0], xmax = p.xy[0], ymin = p.xy[1], ymax = p.xy[1];
    for (int i = 1; i < p.npts; ++i) {
        xmin = fmin(xmin, p.xy[2 * i]), xmax = fmax(xmax, p.xy[2 * i]);
        ymin = fmin(ymin, p.xy[2 * i + 1]), ymax = fmax(ymax, p.xy[2 * i + 1]);
    }
    double ox = cx - 0.5 * (xmin + xmax) * scale, oy = cy - 0.5 * (ymin + ymax) * scale;
    for (int s = 0; s < p.nstrokes; ++s) {
        int a = p.start[s], b = p.start[s + 1];
        if (b - a == 1) /* a dot */
            ipr_cov_disc(c, ox + p.xy[2 * a] * scale, oy + p.xy[2 * a + 1] * scale, 0.5 * sw);
        for (int i = a; i + 1 < b; ++i)
            ipr_cov_capsule(c, ox + p.xy[2 * i] * scale, oy + p.xy[2 * i + 1] * scale,
                            ox + p.xy[2 * i + 2] * scale, oy + p.xy[2 * i + 3] * scale, 0.5 * sw);
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}
