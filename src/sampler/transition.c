/* transition.c: one step of SRM's mixed-noise sampler (spec 2.5): rectified flow with velocity output,
 * stochasticity alpha, temperature and the learned-range sigma, region by region, with the variance floor. */
#include <math.h>
#include <stddef.h>

#include "sampler_internal.h"

/* Per-region coefficients of spec 2.5 for the step t -> tn (tn <= t), alpha = stochasticity. */
typedef struct {
    double gamma;          /* weight of eps_hat in the mean */
    double log_lo, log_hi; /* ln s_lo, ln s_hi */
    int learned;           /* both bounds nonzero: sigma = exp(v ln s_hi + (1 - v) ln s_lo) */
} step_coef;

static step_coef coefficients(double t, double tn, double alpha) {
    step_coef c = {0.0, 0.0, 0.0, 0};
    if (t == 0.0) return c; /* gamma = 0, s_lo = s_hi = 0 */
    if (tn == 1.0) {        /* gamma = t* (= 1), s_lo = s_hi = 0 */
        c.gamma = tn;
        return c;
    }
    /* r = a_t b_t* / (a_t* b_t) = (1 - t) t* / ((1 - t*) t); t* <= t gives r <= 1 (the clamp only guards
     * rounding) */
    const double r = ((1.0 - t) * tn) / ((1.0 - tn) * t);
    double one_r2 = 1.0 - r * r;
    if (one_r2 < 0.0) one_r2 = 0.0;
    c.gamma = tn * sqrt(1.0 - alpha * alpha * one_r2);
    const double s_lo = alpha * tn * sqrt(one_r2), s_hi = alpha * t * sqrt(one_r2);
    if (s_lo > 0.0 && s_hi > 0.0) {
        c.learned = 1;
        c.log_lo = log(s_lo);
        c.log_hi = log(s_hi);
    }
    return c;
}

void ipr_transition(float *z, const float *y, const float *noise, const float *t, const float *t_next, int C, int H,
                    int W, int patch, double alpha, double temperature) {
    const int gw = W / patch, gh = H / patch;
    const size_t HW = (size_t)H * W;
    const double std_floor = exp(0.5 * IPR_VAR_FLOOR_LOG); /* e^-15 */
    for (int gy = 0; gy < gh; ++gy) {
        for (int gx = 0; gx < gw; ++gx) {
            const int reg = gy * gw + gx;
            const double tr = t[reg], tn = t_next[reg];
            /* spec 2.5: t* = t = 0 leaves the region exactly as it is (the formula would give z - 0 u,
             * which can flip the sign of a zero or carry a NaN of u) */
            if (tr == 0.0 && tn == 0.0) continue;
            const step_coef k = coefficients(tr, tn, alpha);
            for (int c = 0; c < C; ++c) {
                const float *u = y + (size_t)c * HW;            /* velocity u_hat, channel c */
                const float *vr = y + (size_t)(C + c) * HW;     /* raw variance interpolation */
                float *zc = z + (size_t)c * HW;
                const float *nc = noise ? noise + (size_t)c * HW : NULL;
                for (int yy = gy * patch; yy < (gy + 1) * patch; ++yy) {
                    for (int xx = gx * patch; xx < (gx + 1) * patch; ++xx) {
                        const size_t i = (size_t)yy * W + xx;
                        const double zi = zc[i], ui = u[i];
                        /* spec 2.1: x_hat = z - t u, eps_hat = z + (1 - t) u */
                        const double x_hat = zi - tr * ui, e_hat = zi + (1.0 - tr) * ui;
                        const double mean = (1.0 - tn) * x_hat + k.gamma * e_hat;
                        if (tn > 0.0) {
                            /* spec 1.6: v = (raw + 1) / 2, float32 as the wrapper computes it */
                            const double v = (double)((vr[i] + 1.0f) / 2.0f);
                            const double sigma = k.learned ? exp(v * k.log_hi + (1.0 - v) * k.log_lo) : 0.0;
                            /* spec 9b: variance >= e^-30 inside the reference's Gaussian */
                            const double sd = sigma > std_floor ? sigma : std_floor;
                            zc[i] = (float)(mean + temperature * sd * (double)nc[i]);
                        } else {
                            zc[i] = (float)mean;
                        }
                    }
                }
            }
        }
    }
}
