/* sampler.cu: the sampler's per-pixel work on the GPU (issue 16, "the sampler on the GPU"): the counter-based
 * normal draws of src/rng.c, the spec 2.5 transition of src/sampler/transition.c, the clue paste, the IPR re-noise
 * and the pooled sigma of ipr_split_output. The arithmetic is the CPU path's, in double where it is in double, so
 * a pixel's new value differs from the CPU's only where CUDA's log / sin / cos round differently from the C
 * library's (a last-bit difference of a double before the float conversion); the pooled sigma sums in the CPU's
 * order. Images are (C, H, W) float32 per chain slot; a batch row b works on slot row_slot[b]. */
#include <math.h>
#include <stdint.h>

#include "../../engine/cuda/cuda_check.cuh"
#include "ipr/rng.h"
#include "../device_sampler_kernels.h"

#define THREADS 256

/* ---------------- Philox4x32-10 and the normal at an index (src/rng.c, the same bits) ---------------- */

static __device__ __forceinline__ void philox(uint32_t c[4], uint32_t k0, uint32_t k1) {
    for (int round = 0; round < 10; ++round) {
        const uint32_t hi0 = __umulhi(0xD2511F53u, c[0]), lo0 = 0xD2511F53u * c[0];
        const uint32_t hi1 = __umulhi(0xCD9E8D57u, c[2]), lo1 = 0xCD9E8D57u * c[2];
        const uint32_t n0 = hi1 ^ c[1] ^ k0, n2 = hi0 ^ c[3] ^ k1;
        c[0] = n0, c[1] = lo1, c[2] = n2, c[3] = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
}

/* ipr_rng_normal_at(seed, purpose, instance, step, index) */
static __device__ float normal_at(uint64_t seed, uint32_t purpose, uint64_t instance, uint32_t step, uint64_t index) {
    uint32_t c[4] = {(uint32_t)(index >> 2), step, (uint32_t)instance,
                     (purpose << 16) | (uint32_t)((instance >> 32) & 0xFFFFu)};
    philox(c, (uint32_t)seed, (uint32_t)(seed >> 32));
    const unsigned pair = (unsigned)((index >> 1) & 1u);
    const double u1 = ((double)c[2 * pair] + 0.5) * 0x1.0p-32;
    const double u2 = (double)c[2 * pair + 1] * 0x1.0p-32;
    const double rad = sqrt(-2.0 * log(u1));
    const double ang = 6.283185307179586476925 * u2;
    return (float)((index & 1u) ? rad * sin(ang) : rad * cos(ang));
}

/* ---------------- geometry ---------------- */

typedef struct {
    int C, H, W, patch, gw, R;
} geom;

static __device__ __forceinline__ int region_of(const geom g, int pix) {
    const int y = pix / g.W, x = pix - y * g.W;
    return (y / g.patch) * g.gw + x / g.patch;
}

static geom make_geom(const ipr_dsamp_geom *s) {
    geom g;
    g.C = s->C, g.H = s->H, g.W = s->W, g.patch = s->patch, g.gw = s->W / s->patch, g.R = s->R;
    return g;
}

/* ---------------- chain set-up ---------------- */

/* slot s: z = N(0, 1) on (seed, INIT_NOISE, instance, 0) where the region is not a clue, the clue values where
 * it is (chain_start: draw, then paste); `noise` 0 copies clean into z instead (correction mode). */
static __global__ void init_kernel(float *z, const float *clean, const uint8_t *given, geom g, uint64_t seed,
                                   uint64_t instance, int noise) {
    const int HW = g.H * g.W;
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= g.C * HW) return;
    const int reg = region_of(g, i % HW);
    z[i] = (!noise || given[reg]) ? clean[i] : normal_at(seed, IPR_RNG_INIT_NOISE, instance, 0, (uint64_t)i);
}

extern "C" int ipr_cu_dsamp_init(float *z, const float *clean, const uint8_t *given, const ipr_dsamp_geom *gs,
                                 uint64_t seed, uint64_t instance, int noise, ipr_dsamp_stream s) {
    const geom g = make_geom(gs);
    const int n = g.C * g.H * g.W;
    init_kernel<<<(n + THREADS - 1) / THREADS, THREADS, 0, (cudaStream_t)s>>>(z, clean, given, g, seed, instance,
                                                                               noise);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}

/* IPR iteration k (chain_begin_iteration): fresh N(0, 1) on (seed, IPR_NOISE, instance, k) in the chosen regions,
 * then the clue paste */
static __global__ void renoise_kernel(float *z, const float *clean, const uint8_t *given, const uint8_t *chosen,
                                      geom g, uint64_t seed, uint64_t instance, uint32_t k) {
    const int HW = g.H * g.W;
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= g.C * HW) return;
    const int reg = region_of(g, i % HW);
    if (chosen[reg]) z[i] = normal_at(seed, IPR_RNG_IPR_NOISE, instance, k, (uint64_t)i);
    if (given[reg]) z[i] = clean[i];
}

extern "C" int ipr_cu_dsamp_renoise(float *z, const float *clean, const uint8_t *given, const uint8_t *chosen,
                                    const ipr_dsamp_geom *gs, uint64_t seed, uint64_t instance, uint32_t k,
                                    ipr_dsamp_stream s) {
    const geom g = make_geom(gs);
    const int n = g.C * g.H * g.W;
    renoise_kernel<<<(n + THREADS - 1) / THREADS, THREADS, 0, (cudaStream_t)s>>>(z, clean, given, chosen, g, seed,
                                                                                  instance, k);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}

/* ---------------- around a pass ---------------- */

/* x row b = z of slot row_slot[b] */
static __global__ void gather_kernel(float *x, const float *z, const int *row_slot, int chw) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= chw) return;
    const int b = blockIdx.y;
    x[(size_t)b * chw + i] = z[(size_t)row_slot[b] * chw + i];
}

extern "C" int ipr_cu_dsamp_gather(float *x, const float *z, const int *row_slot, int B, const ipr_dsamp_geom *gs,
                                   ipr_dsamp_stream s) {
    const int chw = gs->C * gs->H * gs->W;
    gather_kernel<<<dim3((unsigned)((chw + THREADS - 1) / THREADS), (unsigned)B), THREADS, 0, (cudaStream_t)s>>>(
        x, z, row_slot, chw);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}

/* sigma (B, R) = exp(0.5 mean(log-variance over the region)), the sum in double in ipr_split_output's order
 * (rows of the region top to bottom, left to right), one thread per (row, region) */
static __global__ void sigma_kernel(float *sigma, const float *y, int d_out, geom g, int B) {
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= B * g.R) return;
    const int b = j / g.R, reg = j - b * g.R;
    const size_t HW = (size_t)g.H * g.W;
    const float *lv = y + ((size_t)b * d_out + (size_t)(d_out - 1)) * HW;
    const int gy = reg / g.gw, gx = reg - gy * g.gw;
    double acc = 0.0;
    for (int yy = gy * g.patch; yy < (gy + 1) * g.patch; ++yy)
        for (int xx = gx * g.patch; xx < (gx + 1) * g.patch; ++xx) acc += lv[(size_t)yy * g.W + xx];
    sigma[j] = (float)exp(0.5 * (acc / ((double)g.patch * g.patch)));
}

extern "C" int ipr_cu_dsamp_sigma(float *sigma, const float *y, int d_out, int B, const ipr_dsamp_geom *gs,
                                  ipr_dsamp_stream s) {
    const geom g = make_geom(gs);
    const int n = B * g.R;
    sigma_kernel<<<(n + THREADS - 1) / THREADS, THREADS, 0, (cudaStream_t)s>>>(sigma, y, d_out, g, B);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}

/* the per-region coefficients of spec 2.5 (transition.c's coefficients()) */
static __device__ void coefficients(double t, double tn, double alpha, double *gamma, double *log_lo, double *log_hi,
                                    int *learned) {
    *gamma = 0.0, *log_lo = 0.0, *log_hi = 0.0, *learned = 0;
    if (t == 0.0) return;
    if (tn == 1.0) {
        *gamma = tn;
        return;
    }
    const double r = ((1.0 - t) * tn) / ((1.0 - tn) * t);
    double one_r2 = 1.0 - r * r;
    if (one_r2 < 0.0) one_r2 = 0.0;
    *gamma = tn * sqrt(1.0 - alpha * alpha * one_r2);
    const double s_lo = alpha * tn * sqrt(one_r2), s_hi = alpha * t * sqrt(one_r2);
    if (s_lo > 0.0 && s_hi > 0.0) {
        *learned = 1;
        *log_lo = log(s_lo);
        *log_hi = log(s_hi);
    }
}

/* One pass's transition of every row (gen_after_pass after its block starts): where the region's t or t_next is
 * nonzero, z = mean + temperature * max(sigma, e^-15) * N(0, 1) on (seed, STEP_NOISE, instance, key) (t_next > 0)
 * or the mean (t_next = 0); clue regions get their clue values. */
static __global__ void step_kernel(float *z, const float *clean, const uint8_t *given, const float *y,
                                   const ipr_dsamp_row *rows, const float *t_cur, const float *t_next, geom g,
                                   int d_out, uint64_t seed, double alpha, double temperature, double std_floor) {
    const int HW = g.H * g.W, chw = g.C * HW;
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= chw) return;
    const int b = blockIdx.y;
    const ipr_dsamp_row row = rows[b];
    const int c = i / HW, pix = i - c * HW;
    const int reg = region_of(g, pix);
    float *zs = z + (size_t)row.slot * chw;
    if (given[(size_t)row.slot * g.R + reg]) {
        zs[i] = clean[(size_t)row.slot * chw + i];
        return;
    }
    const double tr = t_cur[(size_t)b * g.R + reg], tn = t_next[(size_t)b * g.R + reg];
    if (tr == 0.0 && tn == 0.0) return;
    double gamma, log_lo, log_hi;
    int learned;
    coefficients(tr, tn, alpha, &gamma, &log_lo, &log_hi, &learned);
    const float *yb = y + (size_t)b * d_out * HW;
    const double zi = zs[i], ui = yb[(size_t)c * HW + pix];
    const double x_hat = zi - tr * ui, e_hat = zi + (1.0 - tr) * ui;
    const double mean = (1.0 - tn) * x_hat + gamma * e_hat;
    if (tn > 0.0) {
        const double v = (double)((yb[(size_t)(g.C + c) * HW + pix] + 1.0f) / 2.0f);
        const double sigma = learned ? exp(v * log_hi + (1.0 - v) * log_lo) : 0.0;
        const double sd = sigma > std_floor ? sigma : std_floor;
        const float eps = normal_at(seed, IPR_RNG_STEP_NOISE, row.instance, row.key, (uint64_t)i);
        zs[i] = (float)(mean + temperature * sd * (double)eps);
    } else {
        zs[i] = (float)mean;
    }
}

extern "C" int ipr_cu_dsamp_step(float *z, const float *clean, const uint8_t *given, const float *y,
                                 const ipr_dsamp_row *rows, const float *t_cur, const float *t_next, int B,
                                 const ipr_dsamp_geom *gs, int d_out, uint64_t seed, double alpha, double temperature,
                                 double std_floor, ipr_dsamp_stream s) {
    const geom g = make_geom(gs);
    const int chw = g.C * g.H * g.W;
    step_kernel<<<dim3((unsigned)((chw + THREADS - 1) / THREADS), (unsigned)B), THREADS, 0, (cudaStream_t)s>>>(
        z, clean, given, y, rows, t_cur, t_next, g, d_out, seed, alpha, temperature, std_floor);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}

/* the per-pixel noise map (B, 1, H, W) from per-region levels (B, R): what the U-Net reads */
static __global__ void tmap_kernel(float *t, const float *levels, geom g) {
    const int HW = g.H * g.W;
    const int pix = blockIdx.x * blockDim.x + threadIdx.x;
    if (pix >= HW) return;
    const int b = blockIdx.y;
    t[(size_t)b * HW + pix] = levels[(size_t)b * g.R + region_of(g, pix)];
}

extern "C" int ipr_cu_dsamp_tmap(float *t, const float *levels, int B, const ipr_dsamp_geom *gs, ipr_dsamp_stream s) {
    const geom g = make_geom(gs);
    const int HW = g.H * g.W;
    tmap_kernel<<<dim3((unsigned)((HW + THREADS - 1) / THREADS), (unsigned)B), THREADS, 0, (cudaStream_t)s>>>(
        t, levels, g);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}
