/* device_sampler.h: the sampler's images on the GPU (issue 16): the runner (runner.c) keeps every decision on the
 * host (schedules, block starts, subsets, scoring), and this module holds each chain slot's image, clue values and
 * clue mask in device memory, draws the noise and runs the transition there, and feeds the denoiser from device
 * buffers. Per pass only small arrays cross: the per-region levels and row keys up, the pooled sigma down; a
 * chain's image comes down once per generation, to be scored. Not installed. */
#ifndef IPR_DEVICE_SAMPLER_H
#define IPR_DEVICE_SAMPLER_H

#include <stdint.h>

#include "device_sampler_kernels.h"
#include "ipr/sampler.h"

typedef struct ipr_dsamp ipr_dsamp;

/* For `slots` chains of (C, H, W) images with `patch` x `patch` regions on the denoiser's GPU, batches of up to
 * `slots` rows and d_out output channels. NULL (error set) without CUDA or when d is on the CPU. */
ipr_dsamp *ipr_dsamp_new(ipr_denoiser *d, int slots, int C, int H, int W, int patch, int d_out);
void ipr_dsamp_free(ipr_dsamp *ds);
/* Device bytes held. */
size_t ipr_dsamp_bytes(const ipr_dsamp *ds);

/* A chain starts in `slot`: its clue values clean (C, H, W) and clue mask given (R) go up; z = the initial noise
 * on (seed, INIT_NOISE, instance, 0) with the clues pasted, or (noise 0, correction mode) z = clean. */
int ipr_dsamp_chain_start(ipr_dsamp *ds, int slot, const float *clean, const uint8_t *given, uint64_t seed,
                          uint64_t instance, int noise);
/* IPR iteration k of the chain in `slot`: fresh noise on (seed, IPR_NOISE, instance, k) in the regions with
 * chosen[r] != 0 (R), clues pasted. */
int ipr_dsamp_renoise(ipr_dsamp *ds, int slot, const uint8_t *chosen, uint64_t seed, uint64_t instance, uint32_t k);
/* One forward over B rows, row b = the image of slot row_slot[b] at per-region levels t_cur (B, R) (host);
 * sigma (B, R) (host) gets the pooled sigma of each row's output. The output stays on the device for the step. */
int ipr_dsamp_forward(ipr_dsamp *ds, const int *row_slot, const float *t_cur, int B, float *sigma);
/* The transition of the last forward's rows from t_cur to t_next (B, R, host), rows[b] naming slot, instance and
 * noise key; clues pasted. */
int ipr_dsamp_step(ipr_dsamp *ds, const ipr_dsamp_row *rows, const float *t_cur, const float *t_next, int B,
                   uint64_t seed, double alpha, double temperature);
/* The image of `slot` (C, H, W) into host memory. */
int ipr_dsamp_download(ipr_dsamp *ds, int slot, float *z);
/* Host image z (C, H, W) into `slot` (a chain that resumes from a parked base sample, after its chain_start). */
int ipr_dsamp_upload(ipr_dsamp *ds, int slot, const float *z);

#endif
