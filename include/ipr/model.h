/* model.h: what a denoiser checkpoint is, whatever its backbone: the SRM U-Net (srm-unet-checkpoint, spec 1) or the
 * region-token DiT (srm-dit-checkpoint, spec dit.md). The root attribute `format` selects the backbone through one
 * table (src/engine/model.c); callers see the shared interface: image size, channels, region size, and a one-line
 * description of the architecture for provenance. */
#ifndef IPR_MODEL_H
#define IPR_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "ipr/dit.h"
#include "ipr/unet.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { IPR_BACKBONE_UNET = 0, IPR_BACKBONE_DIT = 1, IPR_BACKBONE_COUNT = 2 } ipr_backbone;

const char *ipr_backbone_name(ipr_backbone b);

/* A checkpoint's architecture (root attributes only; no weights read). */
typedef struct {
    ipr_backbone backbone;
    const char *format;       /* the `format` attribute it was read as (static string) */
    int d_in, d_out;          /* image channels, raw outputs (2 d_in + 1 for every sampler-ready model) */
    int patch_size;           /* region side in pixels (0: an image-level U-Net) */
    int image_size[2];        /* [H, W] */
    char arch[256];           /* one line, e.g. "dit d_hid 192 depth 8 heads 6 mlp 4 s 1 x (t_min 0.05)" */
    ipr_unet_config unet;     /* backbone == IPR_BACKBONE_UNET */
    ipr_dit_config dit;       /* backbone == IPR_BACKBONE_DIT */
} ipr_model_info;

/* Read and validate the root attributes of a denoiser checkpoint of any backbone. An unknown `format` is an error
 * that lists the known ones. */
int ipr_model_info_read(const char *ckpt_path, ipr_model_info *info);

/* The architecture as a JSON object's members (no braces), e.g. "\"backbone\": \"dit\", \"d_hid\": 192, ...",
 * for run.json and model cards. Returns the length written (truncated to cap - 1) or IPR_ERR. */
int ipr_model_info_json(const ipr_model_info *info, char *out, size_t cap);

/* spec 1.6 for any backbone: from the raw output y (B, d_out, H, W), d = (d_out - 1) / 2 data channels: u (B, d, H,
 * W) = y[0:d], v = (y[d:2d] + 1) / 2, sigma (B, 1, H, W) = exp(0.5 mean of y[d_out - 1] over each patch_size
 * region) broadcast back, sigma_region (B, H / patch, W / patch). Any output pointer may be NULL. */
int ipr_split_output(int d_out, int patch_size, const float *y, int B, int H, int W, float *u, float *v,
                     float *sigma, float *sigma_region);

#ifdef __cplusplus
}
#endif
#endif
