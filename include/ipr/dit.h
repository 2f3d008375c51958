/* dit.h: the region-token DiT backbone for SRM (../shared/spec/dit.md), CPU engine: checkpoint loading with
 * both-way name/shape checks, a forward pass with memory planned at load, the same interface as the U-Net
 * (x (B, C, H, W), t (B, 1, H, W) constant on regions -> y (B, 2C + 1, H, W)). */
#ifndef IPR_DIT_H
#define IPR_DIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IPR_DIT_FORMAT "srm-dit-checkpoint"
#define IPR_DIT_FORMAT_VERSION 1
/* LayerNorm eps of spec dit.md (no affine parameters) */
#define IPR_DIT_LN_EPS 1e-6
/* width of the noise-level sinusoid (spec 1.4, shared with the U-Net) */
#define IPR_DIT_SINUSOID 256
/* t_min of the x parameterization when a checkpoint names none (spec dit.md) */
#define IPR_DIT_T_MIN_DEFAULT 0.05

/* What the first output block of a token is (spec dit.md "Parameterization"). */
typedef enum {
    IPR_DIT_PARAM_U = 0, /* the velocity u itself (spatialreasoners) */
    IPR_DIT_PARAM_X = 1  /* the clean token x_hat; u = (z - x_hat) / max(t, t_min) */
} ipr_dit_param;

/* How a token's features enter the patch embedding (root attribute `input_scale`; absent = none, the network of
 * spec dit.md). A departure of ours (models/sudoku_dit.md, docs/dit-input-scale.md): with "wiener" the token z at
 * level t is multiplied by c(t) = (1 - t) / ((1 - t)^2 + t^2) (the linear least-squares estimate of a unit-variance
 * x from z = (1 - t) x + t eps), so c(0) = 1 (clean tokens unchanged) and c(1) = 0 (a pure-noise token enters as
 * the patch bias plus its position, like a mask token). The velocity still uses the unscaled z. */
typedef enum {
    IPR_DIT_INPUT_NONE = 0,
    IPR_DIT_INPUT_WIENER = 1
} ipr_dit_input_scale;

/* The architecture, as the checkpoint's root attributes state it. Plain data. */
typedef struct {
    int d_in, d_out;            /* image channels C, raw outputs 2C + 1 */
    int image_size[2];          /* [H, W] */
    int patch_size;             /* region side in pixels (spec 2.4) */
    int tokens_per_side;        /* s: s^2 tokens per region (1 or 2 in use; any divisor works) */
    int d_hid, depth, num_heads, mlp_ratio;
    ipr_dit_param parameterization;
    double t_min;               /* x parameterization only */
    ipr_dit_input_scale input_scale;
} ipr_dit_config;

/* Zeroes, tokens_per_side 1, mlp_ratio 4, parameterization x, t_min 0.05, input_scale none. */
void ipr_dit_config_init(ipr_dit_config *cfg);
/* Everything the network can build: H, W multiples of patch_size, C p^2 a multiple of s^2, d_hid a multiple
 * of num_heads and of 4 (the 2-D position embedding), d_out = 2 d_in + 1, t_min in (0, 1]. */
int ipr_dit_config_validate(const ipr_dit_config *cfg);
/* Read and validate the root attributes (format, format_version, architecture) of a checkpoint. */
int ipr_dit_config_read(const char *ckpt_path, ipr_dit_config *cfg);
const char *ipr_dit_param_name(ipr_dit_param p);
const char *ipr_dit_input_scale_name(ipr_dit_input_scale m);
/* c(t) of an input scale (1 for none), in double; train/srm_dit.py input_factor computes the same in float32 */
double ipr_dit_input_factor(ipr_dit_input_scale m, double t);

/* Token geometry: gh x gw regions, N = gh gw s^2 tokens of f = C p^2 / s^2 features. Any pointer may be NULL. */
void ipr_dit_geometry(const ipr_dit_config *cfg, int *gh, int *gw, int *tokens, int *features);

typedef struct ipr_dit ipr_dit;

/* Plan a network for batches of up to max_batch images of the config's image_size: both arenas are
 * allocated here and nothing is allocated by ipr_dit_forward. Weights start at zero. NULL on error. */
ipr_dit *ipr_dit_new(const ipr_dit_config *cfg, int max_batch);
/* Load /weights/<state_dict name> of a checkpoint whose architecture equals the net's; every expected tensor
 * present with its exact shape, every tensor in the file expected (float32, float16 or bfloat16 storage). On
 * error the message names every problem (the first four spelled out). */
int ipr_dit_load_weights(ipr_dit *net, const char *ckpt_path);
/* Config read + new + load weights. NULL on error. */
ipr_dit *ipr_dit_load(const char *ckpt_path, int max_batch);
/* Write the net as a checkpoint (root attributes + /weights float32), atomically. */
int ipr_dit_save(const ipr_dit *net, const char *path);
/* Deterministic random weights (Philox, keyed by seed): linears U(-1, 1) / sqrt(fan_in), biases U(-0.1, 0.1).
 * For tests of configurations no fixture covers. */
void ipr_dit_init_random(ipr_dit *net, uint64_t seed);
void ipr_dit_free(ipr_dit *net);

const ipr_dit_config *ipr_dit_get_config(const ipr_dit *net);
/* Bytes of the weight arena and of the activation arena. */
void ipr_dit_arena_bytes(const ipr_dit *net, size_t *weights, size_t *activations);
int64_t ipr_dit_param_count(const ipr_dit *net);
/* Multiply-adds x 2 of one sample's forward pass: `per_token` = what the reference formulation computes (the
 * modulation MLPs at every token), `distinct` = with the modulation computed once per distinct noise level
 * (what the engines do) assuming `levels` distinct levels in the image. */
void ipr_dit_flops(const ipr_dit_config *cfg, int levels, double *per_token, double *distinct);

/* Debug hook: called after "tokens" (B, N, f), "t_emb" (B, N, d) (before SiLU), "embed" (B, N, d) (patch
 * embedding + position), "blocks.{i}" (B, N, d) and "out_layer" (B, N, 2f + 1), with the data valid during the
 * call only; names equal the /stages datasets of the fixtures (train/srm_dit.py). NULL switches it off. */
typedef void (*ipr_dit_stage_fn)(const char *name, const float *data, int B, int N, int D, void *ctx);
void ipr_dit_set_stage_hook(ipr_dit *net, ipr_dit_stage_fn fn, void *ctx);

/* y (B, 2C + 1, H, W) = network(x (B, C, H, W), t (B, 1, H, W)), 1 <= B <= max_batch; t must be constant on
 * every region (an error otherwise). Row-deterministic: image i's output is bitwise the same in any batch.
 * Not thread-safe on one net. */
int ipr_dit_forward(ipr_dit *net, const float *x, const float *t, int B, float *y);

#ifdef __cplusplus
}
#endif
#endif
