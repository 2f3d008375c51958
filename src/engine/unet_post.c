/* unet_post.c: spec 1.6, the raw network output (of either backbone) turned into what the samplers use: velocity
 * u, variance interpolation v and the per-region uncertainty sigma_theta (src/model/wrapper.py::forward). */
#include <math.h>
#include <stddef.h>

#include "ipr/common.h"
#include "ipr/model.h"
#include "ipr/unet.h"

int ipr_unet_split_output(const ipr_unet_config *cfg, const float *y, int B, int H, int W, float *u, float *v,
                          float *sigma, float *sigma_region) {
    if (!cfg) {
        ipr_error_set(__FILE__, __LINE__, "split output: bad arguments");
        return IPR_ERR;
    }
    return ipr_split_output(cfg->d_out, cfg->patch_size, y, B, H, W, u, v, sigma, sigma_region);
}

/* every backbone's output has the U-Net's layout (spec 1.6, spec dit.md "Interface") */
int ipr_split_output(int d_out, int patch_size, const float *y, int B, int H, int W, float *u, float *v,
                     float *sigma, float *sigma_region) {
    IPR_CHECK(y && B >= 1 && H >= 1 && W >= 1, "split output: bad arguments");
    IPR_CHECK(d_out >= 3 && d_out % 2 == 1,
              "split output: d_out %d is not 2 d + 1 (learned-range variance and a sigma head)", d_out);
    const int d = (d_out - 1) / 2, p = patch_size;
    /* image-level model (patch_size 0): one region, the whole image */
    const int ph = p > 0 ? p : H, pw = p > 0 ? p : W;
    const int gh = H / ph, gw = W / pw;
    IPR_CHECK(gh >= 1 && gw >= 1, "split output: %d x %d image smaller than a %d x %d region", H, W, ph, pw);
    const size_t HW = (size_t)H * W;
    for (int b = 0; b < B; ++b) {
        const float *yb = y + (size_t)b * d_out * HW;
        if (u)
            for (size_t i = 0; i < (size_t)d * HW; ++i) u[(size_t)b * d * HW + i] = yb[i];
        if (v)
            for (size_t i = 0; i < (size_t)d * HW; ++i) v[(size_t)b * d * HW + i] = (yb[(size_t)d * HW + i] + 1.0f) / 2.0f;
        if (!sigma && !sigma_region) continue;
        const float *lv = yb + (size_t)(d_out - 1) * HW;
        /* avg_pool2d(kernel = stride = patch, floor mode) in double, then exp(0.5 logvar); the gh x gw
         * values go to sigma_region and, compactly, to the front of this sample's sigma */
        float *sb = sigma ? sigma + (size_t)b * HW : NULL;
        for (int gy = 0; gy < gh; ++gy) {
            for (int gx = 0; gx < gw; ++gx) {
                double s = 0.0;
                for (int yy = gy * ph; yy < (gy + 1) * ph; ++yy)
                    for (int xx = gx * pw; xx < (gx + 1) * pw; ++xx) s += lv[(size_t)yy * W + xx];
                const float sg = (float)exp(0.5 * (s / ((double)ph * pw)));
                if (sigma_region) sigma_region[((size_t)b * gh + gy) * gw + gx] = sg;
                if (sb) sb[(size_t)gy * gw + gx] = sg;
            }
        }
        if (!sb) continue;
        /* back to H x W with interpolate(mode="nearest-exact"): src = floor((dst + 0.5) * in / out). In
         * place, last pixel first: its region index sy * gw + sx never exceeds the pixel index (gh <= H,
         * gw <= W give sy <= y, sx <= x), so every compact value is read before it is overwritten. */
        for (int yy = H - 1; yy >= 0; --yy) {
            int sy = (int)floor((yy + 0.5) * gh / H);
            if (sy > gh - 1) sy = gh - 1;
            for (int xx = W - 1; xx >= 0; --xx) {
                int sx = (int)floor((xx + 0.5) * gw / W);
                if (sx > gw - 1) sx = gw - 1;
                sb[(size_t)yy * W + xx] = sb[(size_t)sy * gw + sx];
            }
        }
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}
