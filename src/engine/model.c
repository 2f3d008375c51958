/* model.c: one table of the denoiser backbones by checkpoint `format` (ipr/model.h): how to read each one's
 * architecture into the shared ipr_model_info, and the spec 1.6 output split every backbone shares. */
#include "ipr/model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dit_internal.h"
#include "ipr/common.h"
#include "ipr/h5io.h"
#include "unet_internal.h"

static int read_unet(hid_t f, const char *path, ipr_model_info *m) {
    IPR_TRY(ipr_unet_config_read_h5(f, path, &m->unet));
    const ipr_unet_config *u = &m->unet;
    m->d_in = u->d_in, m->d_out = u->d_out, m->patch_size = u->patch_size;
    m->image_size[0] = u->image_size[0], m->image_size[1] = u->image_size[1];
    int n = snprintf(m->arch, sizeof m->arch, "unet hid_dims [");
    for (int l = 0; l < u->n_levels && n < (int)sizeof m->arch; ++l)
        n += snprintf(m->arch + n, sizeof m->arch - (size_t)n, "%s%d", l ? "," : "", u->hid_dims[l]);
    if (n < (int)sizeof m->arch) n += snprintf(m->arch + n, sizeof m->arch - (size_t)n, "] attention [");
    for (int l = 0; l < u->n_levels && n < (int)sizeof m->arch; ++l)
        n += snprintf(m->arch + n, sizeof m->arch - (size_t)n, "%s%d", l ? "," : "", u->attention[l]);
    if (n < (int)sizeof m->arch) snprintf(m->arch + n, sizeof m->arch - (size_t)n, "]");
    return IPR_OK;
fail:
    return IPR_ERR;
}

static int read_dit(hid_t f, const char *path, ipr_model_info *m) {
    IPR_TRY(ipr_dit_config_read_h5(f, path, &m->dit));
    const ipr_dit_config *c = &m->dit;
    m->d_in = c->d_in, m->d_out = c->d_out, m->patch_size = c->patch_size;
    m->image_size[0] = c->image_size[0], m->image_size[1] = c->image_size[1];
    if (c->parameterization == IPR_DIT_PARAM_X)
        snprintf(m->arch, sizeof m->arch, "dit d_hid %d depth %d heads %d mlp %d s %d x (t_min %g)", c->d_hid, c->depth,
                 c->num_heads, c->mlp_ratio, c->tokens_per_side, c->t_min);
    else
        snprintf(m->arch, sizeof m->arch, "dit d_hid %d depth %d heads %d mlp %d s %d u", c->d_hid, c->depth,
                 c->num_heads, c->mlp_ratio, c->tokens_per_side);
    if (c->input_scale != IPR_DIT_INPUT_NONE) {
        const size_t n = strlen(m->arch);
        snprintf(m->arch + n, sizeof m->arch - n, " input %s", ipr_dit_input_scale_name(c->input_scale));
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* The backbones, by the `format` root attribute of their checkpoints. */
static const struct {
    const char *format;
    ipr_backbone backbone;
    const char *name;
    int (*read)(hid_t f, const char *path, ipr_model_info *m);
} k_backbones[IPR_BACKBONE_COUNT] = {
    {IPR_UNET_FORMAT, IPR_BACKBONE_UNET, "unet", read_unet},
    {IPR_DIT_FORMAT, IPR_BACKBONE_DIT, "dit", read_dit},
};

const char *ipr_backbone_name(ipr_backbone b) {
    for (int i = 0; i < IPR_BACKBONE_COUNT; ++i)
        if (k_backbones[i].backbone == b) return k_backbones[i].name;
    return "unknown";
}

int ipr_model_info_read(const char *ckpt_path, ipr_model_info *info) {
    char fmt[128];
    memset(info, 0, sizeof *info);
    hid_t f = ipr_h5_open_read(ckpt_path);
    if (f < 0) return IPR_ERR;
    if (ipr_h5_read_attr_str(f, "format", fmt, sizeof fmt) != IPR_OK) {
        ipr_error_context("checkpoint %s (a denoiser checkpoint names its backbone in the root attribute 'format')",
                          ckpt_path);
        goto fail;
    }
    for (int i = 0; i < IPR_BACKBONE_COUNT; ++i) {
        if (strcmp(fmt, k_backbones[i].format) != 0) continue;
        info->backbone = k_backbones[i].backbone;
        info->format = k_backbones[i].format;
        if (k_backbones[i].read(f, ckpt_path, info) != IPR_OK) goto fail;
        H5Fclose(f);
        return IPR_OK;
    }
    IPR_FAIL("checkpoint %s: attribute 'format' is \"%s\"; this build reads \"%s\" (U-Net) and \"%s\" (DiT)", ckpt_path,
             fmt, IPR_UNET_FORMAT, IPR_DIT_FORMAT);
fail:
    H5Fclose(f);
    return IPR_ERR;
}

int ipr_model_info_json(const ipr_model_info *m, char *out, size_t cap) {
    int n;
    if (m->backbone == IPR_BACKBONE_DIT) {
        const ipr_dit_config *c = &m->dit;
        n = snprintf(out, cap,
                     "\"backbone\": \"dit\", \"format\": \"%s\", \"image_size\": [%d, %d], \"d_in\": %d, \"d_out\": %d, "
                     "\"patch_size\": %d, \"tokens_per_side\": %d, \"d_hid\": %d, \"depth\": %d, \"num_heads\": %d, "
                     "\"mlp_ratio\": %d, \"parameterization\": \"%s\", \"t_min\": %.17g",
                     IPR_DIT_FORMAT, c->image_size[0], c->image_size[1], c->d_in, c->d_out, c->patch_size,
                     c->tokens_per_side, c->d_hid, c->depth, c->num_heads, c->mlp_ratio,
                     ipr_dit_param_name(c->parameterization), c->t_min);
    } else {
        const ipr_unet_config *u = &m->unet;
        n = snprintf(out, cap,
                     "\"backbone\": \"unet\", \"format\": \"%s\", \"image_size\": [%d, %d], \"d_in\": %d, \"d_out\": %d, "
                     "\"patch_size\": %d, \"hid_dims\": [",
                     IPR_UNET_FORMAT, u->image_size[0], u->image_size[1], u->d_in, u->d_out, u->patch_size);
        for (int i = 0; i < u->n_levels && n >= 0 && (size_t)n < cap; ++i)
            n += snprintf(out + n, cap - (size_t)n, "%s%d", i ? ", " : "", u->hid_dims[i]);
        if (n >= 0 && (size_t)n < cap) n += snprintf(out + n, cap - (size_t)n, "], \"attention\": [");
        for (int i = 0; i < u->n_levels && n >= 0 && (size_t)n < cap; ++i)
            n += snprintf(out + n, cap - (size_t)n, "%s%s", i ? ", " : "", u->attention[i] ? "true" : "false");
        if (n >= 0 && (size_t)n < cap) n += snprintf(out + n, cap - (size_t)n, "], \"num_blocks\": [");
        for (int i = 0; i < u->n_levels && n >= 0 && (size_t)n < cap; ++i)
            n += snprintf(out + n, cap - (size_t)n, "%s%d", i ? ", " : "", u->num_blocks[i]);
        if (n >= 0 && (size_t)n < cap)
            n += snprintf(out + n, cap - (size_t)n, "], \"num_head_channels\": %d, \"t_emb_dim\": %d, \"d_emb\": %d",
                          u->num_head_channels, u->t_emb_dim, u->d_emb);
    }
    if (n < 0 || (size_t)n >= cap) {
        ipr_error_set(__FILE__, __LINE__, "model description does not fit %zu bytes", cap);
        return IPR_ERR;
    }
    return n;
}
