/* denoiser.c: the SRM U-Net behind one host-buffer forward, on the CPU engine or one CUDA GPU
 * (ipr_unet_cuda_forward), so the sampler never needs to know where the network runs. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipr/common.h"
#include "ipr/sampler.h"

struct ipr_denoiser {
    ipr_denoiser_config cfg;
    ipr_unet *net;       /* the CPU net (also holds the plan the CUDA net shares) */
    ipr_unet_cuda *gpu;  /* NULL on the CPU path */
};

void ipr_denoiser_config_init(ipr_denoiser_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->device = IPR_DEVICE_CPU;
    cfg->gpu = 0;
    cfg->precision = IPR_PREC_FP32;
    cfg->max_batch = 1;
    cfg->cpu_threads = 0;
}

ipr_denoiser *ipr_denoiser_open(const char *ckpt_path, const ipr_denoiser_config *cfg) {
    ipr_denoiser *d = NULL;
    IPR_CHECK(ckpt_path && cfg, "denoiser: NULL argument");
    IPR_CHECK(cfg->device == IPR_DEVICE_CPU || cfg->device == IPR_DEVICE_CUDA, "denoiser: unknown device %d",
              (int)cfg->device);
    IPR_CHECK(cfg->max_batch >= 1 && cfg->max_batch <= 4096, "denoiser: max_batch %d outside 1..4096", cfg->max_batch);
    IPR_CHECK(cfg->device == IPR_DEVICE_CUDA || cfg->precision == IPR_PREC_FP32,
              "denoiser: precision %s needs the CUDA device (the CPU path is float32)",
              ipr_precision_name(cfg->precision));
    IPR_CHECK(cfg->cpu_threads >= 0, "denoiser: cpu_threads %d is negative", cfg->cpu_threads);
    d = ipr_calloc(1, sizeof *d, "denoiser");
    if (!d) goto fail;
    d->cfg = *cfg;
    if (cfg->cpu_threads > 0) openblas_set_num_threads(cfg->cpu_threads);
    IPR_TRY_PTR(d->net = ipr_unet_load(ckpt_path, cfg->max_batch, 0, 0));
    if (cfg->device == IPR_DEVICE_CUDA) IPR_TRY_PTR(d->gpu = ipr_unet_cuda_new(d->net, cfg->gpu, cfg->precision));
    return d;
fail:
    ipr_denoiser_free(d);
    return NULL;
}

void ipr_denoiser_free(ipr_denoiser *d) {
    if (!d) return;
    ipr_unet_cuda_free(d->gpu);
    ipr_unet_free(d->net);
    free(d);
}

const ipr_unet_config *ipr_denoiser_unet_config(const ipr_denoiser *d) { return ipr_unet_get_config(d->net); }
int ipr_denoiser_max_batch(const ipr_denoiser *d) { return d->cfg.max_batch; }

const char *ipr_denoiser_device_name(const ipr_denoiser *d) {
    return d->gpu ? ipr_unet_cuda_device_name(d->gpu) : "cpu";
}

int ipr_denoiser_forward(ipr_denoiser *d, const float *x, const float *t, int B, float *y) {
    IPR_CHECK(d != NULL, "denoiser forward: NULL denoiser");
    if (d->gpu) return ipr_unet_cuda_forward(d->gpu, x, t, B, y);
    return ipr_unet_forward(d->net, x, t, B, y);
fail:
    return IPR_ERR;
}
