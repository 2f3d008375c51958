/* device_sampler_kernels.h: the C ABI of src/sampler/cuda/sampler.cu (the sampler's per-pixel work on the GPU),
 * used by device_sampler.c. Launchers take outputs first and the stream last; every launch is checked. Device
 * pointers throughout; images (C, H, W) float32, one per chain slot; per-region arrays (rows or slots, R). */
#ifndef IPR_DEVICE_SAMPLER_KERNELS_H
#define IPR_DEVICE_SAMPLER_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct CUstream_st *ipr_dsamp_stream;

typedef struct {
    int C, H, W, patch, R; /* R = (H / patch) * (W / patch) */
} ipr_dsamp_geom;

/* what the step kernel needs of a batch row besides its levels */
typedef struct {
    uint64_t instance;
    uint32_t key;  /* step-noise key: (iteration << IPR_SAMPLER_STEP_BITS) | pass */
    int32_t slot;  /* chain slot of the row */
} ipr_dsamp_row;

/* z = N(0, 1) on (seed, INIT_NOISE, instance, 0) outside the clue regions, clean inside; noise 0: z = clean */
int ipr_cu_dsamp_init(float *z, const float *clean, const uint8_t *given, const ipr_dsamp_geom *g, uint64_t seed,
                      uint64_t instance, int noise, ipr_dsamp_stream s);
/* z = N(0, 1) on (seed, IPR_NOISE, instance, k) in the chosen regions, clean in the clue regions */
int ipr_cu_dsamp_renoise(float *z, const float *clean, const uint8_t *given, const uint8_t *chosen,
                         const ipr_dsamp_geom *g, uint64_t seed, uint64_t instance, uint32_t k, ipr_dsamp_stream s);
/* x (B, C, H, W): row b = the image of slot row_slot[b] of z (slots, C, H, W) */
int ipr_cu_dsamp_gather(float *x, const float *z, const int *row_slot, int B, const ipr_dsamp_geom *g,
                        ipr_dsamp_stream s);
/* sigma (B, R) pooled from the last channel of y (B, d_out, H, W) as ipr_split_output does */
int ipr_cu_dsamp_sigma(float *sigma, const float *y, int d_out, int B, const ipr_dsamp_geom *g, ipr_dsamp_stream s);
/* the spec 2.5 transition of every row from t_cur to t_next (B, R), noise drawn in the kernel, clues pasted;
 * z, clean (slots, C, H, W) and given (slots, R) are indexed by rows[b].slot, y (B, d_out, H, W) by b */
int ipr_cu_dsamp_step(float *z, const float *clean, const uint8_t *given, const float *y, const ipr_dsamp_row *rows,
                      const float *t_cur, const float *t_next, int B, const ipr_dsamp_geom *g, int d_out,
                      uint64_t seed, double alpha, double temperature, double std_floor, ipr_dsamp_stream s);
/* t (B, 1, H, W) from per-region levels (B, R) */
int ipr_cu_dsamp_tmap(float *t, const float *levels, int B, const ipr_dsamp_geom *g, ipr_dsamp_stream s);

#ifdef __cplusplus
}
#endif

#endif
