/* denoiser.c: a denoiser checkpoint of any backbone (the SRM U-Net or the region-token DiT, ipr/model.h) behind one
 * host-buffer forward, on the CPU engine or one CUDA GPU, so the sampler never needs to know which network runs or
 * where. The backbone is chosen once, from the checkpoint's `format`, through a table of operations. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/ops_cpu.h"
#include "ipr/common.h"
#include "ipr/dit_cuda.h"
#include "ipr/sampler.h"

/* What one backbone provides. `net` / `gpu` are the backbone's own CPU and CUDA objects. */
typedef struct {
    ipr_backbone backbone;
    int (*open)(ipr_denoiser *d, const char *path);
    int (*forward)(ipr_denoiser *d, const float *x, const float *t, int B, float *y);
    /* device buffers x, y; levels (B, R) on the host; t (B, 1, H, W) on the device, filled from the levels by the
     * caller where wants_tmap; returns when y is written (CUDA only) */
    int (*forward_resident)(ipr_denoiser *d, const float *x, const float *levels, const float *t, int B, float *y);
    int wants_tmap;
    const char *(*device_name)(const ipr_denoiser *d);
    void (*free)(ipr_denoiser *d);
} denoiser_ops;

struct ipr_denoiser {
    ipr_denoiser_config cfg;
    ipr_model_info info;
    const denoiser_ops *ops;
    void *net; /* ipr_unet * / ipr_dit *: the CPU net (also the plan the CUDA one shares) */
    void *gpu; /* ipr_unet_cuda * / ipr_dit_cuda *, NULL on the CPU path */
};

/* ---------------- the U-Net ---------------- */

static int unet_open(ipr_denoiser *d, const char *path) {
    IPR_TRY_PTR(d->net = ipr_unet_load(path, d->cfg.max_batch, 0, 0));
    if (d->cfg.device == IPR_DEVICE_CUDA) IPR_TRY_PTR(d->gpu = ipr_unet_cuda_new(d->net, d->cfg.gpu, d->cfg.precision));
    return IPR_OK;
fail:
    return IPR_ERR;
}

static int unet_forward(ipr_denoiser *d, const float *x, const float *t, int B, float *y) {
    if (d->gpu) return ipr_unet_cuda_forward(d->gpu, x, t, B, y);
    return ipr_unet_forward(d->net, x, t, B, y);
}

static int unet_forward_resident(ipr_denoiser *d, const float *x, const float *levels, const float *t, int B,
                                 float *y) {
    (void)levels;
    IPR_TRY(ipr_unet_cuda_forward_device(d->gpu, x, t, B, y));
    return ipr_unet_cuda_synchronize(d->gpu);
fail:
    return IPR_ERR;
}

static const char *unet_device_name(const ipr_denoiser *d) {
    return d->gpu ? ipr_unet_cuda_device_name(d->gpu) : "cpu";
}

static void unet_free(ipr_denoiser *d) {
    ipr_unet_cuda_free(d->gpu);
    ipr_unet_free(d->net);
}

/* ---------------- the DiT ---------------- */

static int dit_open(ipr_denoiser *d, const char *path) {
    IPR_TRY_PTR(d->net = ipr_dit_load(path, d->cfg.max_batch));
    if (d->cfg.device == IPR_DEVICE_CUDA) IPR_TRY_PTR(d->gpu = ipr_dit_cuda_new(d->net, d->cfg.gpu, d->cfg.precision));
    return IPR_OK;
fail:
    return IPR_ERR;
}

static int dit_forward(ipr_denoiser *d, const float *x, const float *t, int B, float *y) {
    if (d->gpu) return ipr_dit_cuda_forward(d->gpu, x, t, B, y);
    return ipr_dit_forward(d->net, x, t, B, y);
}

static int dit_forward_resident(ipr_denoiser *d, const float *x, const float *levels, const float *t, int B,
                                float *y) {
    (void)t;
    IPR_TRY(ipr_dit_cuda_forward_levels(d->gpu, x, levels, B, y));
    return ipr_dit_cuda_synchronize(d->gpu);
fail:
    return IPR_ERR;
}

static const char *dit_device_name(const ipr_denoiser *d) { return d->gpu ? ipr_dit_cuda_device_name(d->gpu) : "cpu"; }

static void dit_free(ipr_denoiser *d) {
    ipr_dit_cuda_free(d->gpu);
    ipr_dit_free(d->net);
}

static const denoiser_ops k_ops[IPR_BACKBONE_COUNT] = {
    {IPR_BACKBONE_UNET, unet_open, unet_forward, unet_forward_resident, 1, unet_device_name, unet_free},
    {IPR_BACKBONE_DIT, dit_open, dit_forward, dit_forward_resident, 0, dit_device_name, dit_free},
};

/* ---------------- the interface ---------------- */

/* by ipr_device_kind */
static const char *const k_device_names[] = {"cpu", "cuda", "auto"};

const char *ipr_device_name(ipr_device_kind d) {
    return (unsigned)d <= IPR_DEVICE_AUTO ? k_device_names[d] : "unknown";
}

int ipr_device_from_name(const char *name, ipr_device_kind *out) {
    for (int i = 0; i <= IPR_DEVICE_AUTO; ++i)
        if (name && strcmp(name, k_device_names[i]) == 0) {
            *out = (ipr_device_kind)i;
            return IPR_OK;
        }
    ipr_error_set(__FILE__, __LINE__, "unknown device '%s' (expected cpu, cuda or auto)", name ? name : "");
    return IPR_ERR;
}

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
    IPR_CHECK(cfg->max_batch >= 1 && cfg->max_batch <= IPR_DENOISER_MAX_BATCH, "denoiser: max_batch %d outside 1..%d",
              cfg->max_batch, IPR_DENOISER_MAX_BATCH);
    IPR_CHECK(cfg->device == IPR_DEVICE_CUDA || cfg->precision == IPR_PREC_FP32,
              "denoiser: precision %s needs the CUDA device (the CPU path is float32)",
              ipr_precision_name(cfg->precision));
    IPR_CHECK(cfg->cpu_threads >= 0, "denoiser: cpu_threads %d is negative", cfg->cpu_threads);
    d = ipr_calloc(1, sizeof *d, "denoiser");
    if (!d) goto fail;
    d->cfg = *cfg;
    IPR_TRY(ipr_model_info_read(ckpt_path, &d->info));
    for (int i = 0; i < IPR_BACKBONE_COUNT; ++i)
        if (k_ops[i].backbone == d->info.backbone) d->ops = &k_ops[i];
    IPR_CHECK(d->ops != NULL, "denoiser: no operations for backbone %s", ipr_backbone_name(d->info.backbone));
    if (cfg->cpu_threads > 0) ipr_cpu_set_threads(cfg->cpu_threads);
    IPR_TRY(d->ops->open(d, ckpt_path));
    return d;
fail:
    ipr_denoiser_free(d);
    return NULL;
}

void ipr_denoiser_free(ipr_denoiser *d) {
    if (!d) return;
    if (d->ops) d->ops->free(d);
    free(d);
}

const ipr_model_info *ipr_denoiser_model_info(const ipr_denoiser *d) { return &d->info; }
int ipr_denoiser_max_batch(const ipr_denoiser *d) { return d->cfg.max_batch; }
const char *ipr_denoiser_device_name(const ipr_denoiser *d) { return d->ops->device_name(d); }

int ipr_denoiser_forward(ipr_denoiser *d, const float *x, const float *t, int B, float *y) {
    IPR_CHECK(d != NULL, "denoiser forward: NULL denoiser");
    return d->ops->forward(d, x, t, B, y);
fail:
    return IPR_ERR;
}

int ipr_denoiser_cuda_device(const ipr_denoiser *d) { return d && d->gpu ? d->cfg.gpu : -1; }

int ipr_denoiser_wants_tmap(const ipr_denoiser *d) { return d->ops->wants_tmap; }

int ipr_denoiser_forward_resident(ipr_denoiser *d, const float *x, const float *levels, const float *t, int B,
                                  float *y) {
    IPR_CHECK(d != NULL && d->gpu != NULL, "denoiser: a resident forward needs the CUDA device");
    IPR_CHECK(B >= 1 && B <= d->cfg.max_batch, "denoiser: batch %d outside 1..%d", B, d->cfg.max_batch);
    return d->ops->forward_resident(d, x, levels, t, B, y);
fail:
    return IPR_ERR;
}
