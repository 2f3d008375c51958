/* unet.h: the SRM denoiser U-Net (spec 1), CPU engine: checkpoint loading with both-way name/shape
 * checks, a forward pass with memory planned at load, and the spec 1.6 output post-processing. */
#ifndef IPR_UNET_H
#define IPR_UNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IPR_UNET_MAX_LEVELS 8
#define IPR_UNET_FORMAT "srm-unet-checkpoint"
#define IPR_UNET_FORMAT_VERSION 1

/* The architecture, as the checkpoint's root attributes state it (fixtures/README.md). Plain data. */
typedef struct {
    int n_levels;                           /* len(hid_dims) */
    int hid_dims[IPR_UNET_MAX_LEVELS];      /* channels per resolution level */
    int attention[IPR_UNET_MAX_LEVELS];     /* 1 = attention after every ResBlock of that level */
    int num_blocks[IPR_UNET_MAX_LEVELS];    /* encoder ResBlocks per level (the decoder runs one more) */
    int d_in, d_out;                        /* image channels in, raw output channels */
    int num_head_channels;                  /* attention heads = C / num_head_channels */
    int t_emb_dim;                          /* time-embedding width (512) */
    int d_emb;                              /* sinusoid width (256) */
    int patch_size;                         /* pixels per region side; 0 = image-level model */
    int image_size[2];                      /* [H, W] the model was trained at */
} ipr_unet_config;

/* Defaults of config/model/denoiser/unet.yaml (spec 1.2): num_blocks 2, num_head_channels 64, t_emb_dim
 * 512, d_emb 256; n_levels, hid_dims, attention, d_in, d_out, patch_size and image_size left zero. */
void ipr_unet_config_init(ipr_unet_config *cfg);
/* Everything the reference network can build: GroupNorm(32) needs C % 32 == 0, attention levels and
 * the bottleneck need C % num_head_channels == 0. */
int ipr_unet_config_validate(const ipr_unet_config *cfg);
/* Read and validate the root attributes (format, format_version, architecture) of a checkpoint. */
int ipr_unet_config_read(const char *ckpt_path, ipr_unet_config *cfg);

typedef struct ipr_unet ipr_unet;

/* Plan a network for batches of up to max_batch images of height x width (any size, odd included):
 * both arenas are allocated here and nothing is allocated by ipr_unet_forward. Weights start at zero.
 * temb_capacity: distinct noise levels the per-forward time-embedding table holds (0 = default); a
 * forward pass with more falls back to per-pixel evaluation (same numbers, slower). NULL on error. */
ipr_unet *ipr_unet_new(const ipr_unet_config *cfg, int max_batch, int height, int width, int temb_capacity);
/* Load /weights/<state_dict name> of a checkpoint whose architecture equals the net's. Every expected
 * tensor must be present with its exact shape and every tensor in the file must be expected; the shared
 * time-embedding MLP may appear under its aliases as hard links (or identical copies). On error the
 * message names every problem (the first four spelled out) and the net's weights are unspecified. */
int ipr_unet_load_weights(ipr_unet *net, const char *ckpt_path);
/* Config read + new + load weights. height/width <= 0: the checkpoint's image_size. NULL on error. */
ipr_unet *ipr_unet_load(const char *ckpt_path, int max_batch, int height, int width);
/* Write the net as a checkpoint (root attributes + /weights, aliases as hard links). */
int ipr_unet_save(const ipr_unet *net, const char *path);
/* Deterministic random weights (Philox, keyed by seed): conv/linear U(-1,1)/sqrt(fan_in), biases
 * U(-0.1,0.1), norm gains 1+U(-0.1,0.1). For tests of configurations no fixture covers. */
void ipr_unet_init_random(ipr_unet *net, uint64_t seed);
void ipr_unet_free(ipr_unet *net);

const ipr_unet_config *ipr_unet_get_config(const ipr_unet *net);
/* Bytes of the weight arena (shared MLP counted once) and of the activation arena. */
void ipr_unet_arena_bytes(const ipr_unet *net, size_t *weights, size_t *activations);
/* Distinct parameters (the shared MLP once) and state_dict entries (aliases included). */
int64_t ipr_unet_param_count(const ipr_unet *net);
int ipr_unet_tensor_count(const ipr_unet *net);

/* Cost of one sample's forward pass, multiply-adds counted as 2 FLOP: `network` = convolutions and
 * attention (what this engine computes, the embedding per distinct level being negligible);
 * `reference_embedding` = what the reference additionally spends on the per-pixel embedding MLP. */
void ipr_unet_flops(const ipr_unet *net, double *network, double *reference_embedding);

/* Debug hook: called after every module with its reference module path ("model.encoder.blocks.7.1",
 * "model.bottleneck.blocks.0", "model.decoder.blocks.2.2", "model.decoder.out") and its output
 * (B, C, H, W), valid only during the call. NULL switches it off. */
typedef void (*ipr_unet_stage_fn)(const char *name, const float *data, int B, int C, int H, int W, void *ctx);
void ipr_unet_set_stage_hook(ipr_unet *net, ipr_unet_stage_fn fn, void *ctx);

/* y (B, d_out, H, W) = network(x (B, d_in, H, W), t (B, 1, H, W)), 1 <= B <= max_batch. x, t, y must not
 * overlap. Not thread-safe on one net (the activation arena is shared). */
int ipr_unet_forward(ipr_unet *net, const float *x, const float *t, int B, float *y);

/* What the last forward did with the time embedding: distinct levels over all resolutions, and whether
 * it fell back to per-pixel evaluation because they exceeded the table. */
typedef struct {
    int n_distinct;   /* distinct levels (valid when !fallback) */
    int fallback;     /* 1 = table overflowed, per-pixel path used */
    int capacity;     /* table size planned at load */
} ipr_unet_temb_stats;
void ipr_unet_temb_stats_get(const ipr_unet *net, ipr_unet_temb_stats *stats);

/* The shared sinusoid + MLP embedding (spec 1.4) of n noise levels: emb (n, t_emb_dim). Uses the net's
 * scratch (not during a forward). */
int ipr_unet_time_embedding(ipr_unet *net, const double *t, int n, float *emb);

/* spec 1.6: from the raw output y (B, d_out, H, W), d = (d_out - 1) / 2 data channels:
 *   u (B, d, H, W) = y[0:d] (velocity), v (B, d, H, W) = (y[d:2d] + 1) / 2,
 *   sigma (B, 1, H, W) = exp(0.5 * mean of y[d_out-1] over each patch_size x patch_size region),
 *   broadcast back (avg_pool2d then nearest-exact, as the reference; patch_size 0: whole image),
 *   sigma_region (B, H / patch_size, W / patch_size) the pooled values.
 * Any output pointer may be NULL. */
int ipr_unet_split_output(const ipr_unet_config *cfg, const float *y, int B, int H, int W, float *u, float *v,
                          float *sigma, float *sigma_region);

#ifdef __cplusplus
}
#endif
#endif
