/* device_sampler.c: the host side of the sampler's GPU image path (device_sampler.h): one device arena for the
 * slots' images, clue values and masks and the batch buffers, pinned staging for the per-pass arrays, one stream.
 * Ordering: the sampler's kernels run on its own stream and are waited for before the denoiser reads x;
 * ipr_denoiser_forward_resident returns once y is written. */
#include "device_sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ipr/common.h"

#ifdef IPR_HAVE_CUDA
#include <cuda_runtime.h>

#include "../engine/cuda_host.h" /* CU() */
#include "sampler_internal.h"

struct ipr_dsamp {
    ipr_denoiser *den;
    int device, slots, d_out, wants_tmap;
    ipr_dsamp_geom g;
    size_t chw, hw;
    cudaStream_t stream;
    unsigned char *arena;   /* device */
    size_t bytes;
    float *z, *clean;       /* (slots, C, H, W) */
    uint8_t *given;         /* (slots, R) */
    uint8_t *chosen;        /* (R) */
    float *x, *t, *y;       /* (slots, C, H, W), (slots, 1, H, W) where the denoiser reads it, (slots, d_out, H, W) */
    float *t_cur, *t_next, *sigma; /* (slots, R) */
    int *row_slot;          /* (slots) */
    ipr_dsamp_row *rows;    /* (slots) */
    /* pinned host staging */
    unsigned char *host;
    float *h_levels;        /* (2, slots, R): t_cur, t_next */
    float *h_sigma;         /* (slots, R) */
    int *h_row_slot;        /* (slots) */
    ipr_dsamp_row *h_rows;  /* (slots) */
};

static size_t up256(size_t n) { return (n + 255) & ~(size_t)255; }

ipr_dsamp *ipr_dsamp_new(ipr_denoiser *d, int slots, int C, int H, int W, int patch, int d_out) {
    ipr_dsamp *ds = NULL;
    IPR_CHECK(d && slots >= 1 && C >= 1 && H >= 1 && W >= 1 && patch >= 1 && H % patch == 0 && W % patch == 0 &&
                  d_out >= 3,
              "GPU sampler: bad geometry (%d slots, %d x %d x %d, patch %d, d_out %d)", slots, C, H, W, patch, d_out);
    const int device = ipr_denoiser_cuda_device(d);
    IPR_CHECK(device >= 0, "GPU sampler: the denoiser runs on the CPU");
    ds = ipr_calloc(1, sizeof *ds, "GPU sampler");
    if (!ds) goto fail;
    ds->den = d, ds->device = device, ds->slots = slots, ds->d_out = d_out;
    ds->wants_tmap = ipr_denoiser_wants_tmap(d);
    ds->g.C = C, ds->g.H = H, ds->g.W = W, ds->g.patch = patch, ds->g.R = (H / patch) * (W / patch);
    ds->hw = (size_t)H * W, ds->chw = (size_t)C * ds->hw;
    const size_t S = (size_t)slots, R = (size_t)ds->g.R;
    CU(cudaSetDevice(device));
    CU(cudaStreamCreateWithFlags(&ds->stream, cudaStreamNonBlocking));
    /* style habit 5: every device buffer planned here, one arena */
    const size_t img = up256(S * ds->chw * sizeof(float));
    size_t total = 3 * img + up256(S * R) + up256(R) + up256(S * (size_t)d_out * ds->hw * sizeof(float)) +
                   3 * up256(S * R * sizeof(float)) + up256(S * sizeof(int)) + up256(S * sizeof(ipr_dsamp_row));
    if (ds->wants_tmap) total += up256(S * ds->hw * sizeof(float));
    CU(cudaMalloc((void **)&ds->arena, total));
    ds->bytes = total;
    unsigned char *p = ds->arena;
#define TAKE(ptr, n)            \
    do {                        \
        (ptr) = (void *)p;      \
        p += up256(n);          \
    } while (0)
    TAKE(ds->z, S * ds->chw * sizeof(float));
    TAKE(ds->clean, S * ds->chw * sizeof(float));
    TAKE(ds->x, S * ds->chw * sizeof(float));
    TAKE(ds->given, S * R);
    TAKE(ds->chosen, R);
    TAKE(ds->y, S * (size_t)d_out * ds->hw * sizeof(float));
    TAKE(ds->t_cur, S * R * sizeof(float));
    TAKE(ds->t_next, S * R * sizeof(float));
    TAKE(ds->sigma, S * R * sizeof(float));
    TAKE(ds->row_slot, S * sizeof(int));
    TAKE(ds->rows, S * sizeof(ipr_dsamp_row));
    if (ds->wants_tmap) TAKE(ds->t, S * ds->hw * sizeof(float));
#undef TAKE
    CU(cudaMemset(ds->arena, 0, total));
    const size_t hbytes = up256(2 * S * R * sizeof(float)) + up256(S * R * sizeof(float)) + up256(S * sizeof(int)) +
                          up256(S * sizeof(ipr_dsamp_row));
    CU(cudaMallocHost((void **)&ds->host, hbytes));
    ds->h_levels = (float *)ds->host;
    ds->h_sigma = (float *)(ds->host + up256(2 * S * R * sizeof(float)));
    ds->h_row_slot = (int *)((unsigned char *)ds->h_sigma + up256(S * R * sizeof(float)));
    ds->h_rows = (ipr_dsamp_row *)((unsigned char *)ds->h_row_slot + up256(S * sizeof(int)));
    return ds;
fail:
    ipr_dsamp_free(ds);
    return NULL;
}

void ipr_dsamp_free(ipr_dsamp *ds) {
    if (!ds) return;
    cudaSetDevice(ds->device);
    if (ds->stream) cudaStreamSynchronize(ds->stream);
    cudaFree(ds->arena);
    cudaFreeHost(ds->host);
    if (ds->stream) cudaStreamDestroy(ds->stream);
    free(ds);
}

size_t ipr_dsamp_bytes(const ipr_dsamp *ds) { return ds ? ds->bytes : 0; }

static int check_slot(const ipr_dsamp *ds, int slot) {
    IPR_CHECK(slot >= 0 && slot < ds->slots, "GPU sampler: slot %d outside 0..%d", slot, ds->slots - 1);
    return IPR_OK;
fail:
    return IPR_ERR;
}

int ipr_dsamp_chain_start(ipr_dsamp *ds, int slot, const float *clean, const uint8_t *given, uint64_t seed,
                          uint64_t instance, int noise) {
    IPR_TRY(check_slot(ds, slot));
    float *dclean = ds->clean + (size_t)slot * ds->chw;
    uint8_t *dgiven = ds->given + (size_t)slot * ds->g.R;
    CU(cudaMemcpyAsync(dclean, clean, ds->chw * sizeof(float), cudaMemcpyHostToDevice, ds->stream));
    CU(cudaMemcpyAsync(dgiven, given, (size_t)ds->g.R, cudaMemcpyHostToDevice, ds->stream));
    IPR_TRY(ipr_cu_dsamp_init(ds->z + (size_t)slot * ds->chw, dclean, dgiven, &ds->g, seed, instance, noise,
                              (ipr_dsamp_stream)ds->stream));
    /* the host buffers may change once this returns */
    CU(cudaStreamSynchronize(ds->stream));
    return IPR_OK;
fail:
    return IPR_ERR;
}

int ipr_dsamp_renoise(ipr_dsamp *ds, int slot, const uint8_t *chosen, uint64_t seed, uint64_t instance, uint32_t k) {
    IPR_TRY(check_slot(ds, slot));
    CU(cudaMemcpyAsync(ds->chosen, chosen, (size_t)ds->g.R, cudaMemcpyHostToDevice, ds->stream));
    IPR_TRY(ipr_cu_dsamp_renoise(ds->z + (size_t)slot * ds->chw, ds->clean + (size_t)slot * ds->chw,
                                 ds->given + (size_t)slot * ds->g.R, ds->chosen, &ds->g, seed, instance, k,
                                 (ipr_dsamp_stream)ds->stream));
    CU(cudaStreamSynchronize(ds->stream));
    return IPR_OK;
fail:
    return IPR_ERR;
}

int ipr_dsamp_forward(ipr_dsamp *ds, const int *row_slot, const float *t_cur, int B, float *sigma) {
    IPR_CHECK(B >= 1 && B <= ds->slots, "GPU sampler: batch %d outside 1..%d", B, ds->slots);
    const size_t RB = (size_t)B * ds->g.R;
    memcpy(ds->h_row_slot, row_slot, (size_t)B * sizeof(int));
    memcpy(ds->h_levels, t_cur, RB * sizeof(float));
    CU(cudaMemcpyAsync(ds->row_slot, ds->h_row_slot, (size_t)B * sizeof(int), cudaMemcpyHostToDevice, ds->stream));
    IPR_TRY(ipr_cu_dsamp_gather(ds->x, ds->z, ds->row_slot, B, &ds->g, (ipr_dsamp_stream)ds->stream));
    if (ds->wants_tmap) {
        CU(cudaMemcpyAsync(ds->t_cur, ds->h_levels, RB * sizeof(float), cudaMemcpyHostToDevice, ds->stream));
        IPR_TRY(ipr_cu_dsamp_tmap(ds->t, ds->t_cur, B, &ds->g, (ipr_dsamp_stream)ds->stream));
    }
    CU(cudaStreamSynchronize(ds->stream));
    IPR_TRY(ipr_denoiser_forward_resident(ds->den, ds->x, t_cur, ds->t, B, ds->y));
    IPR_TRY(ipr_cu_dsamp_sigma(ds->sigma, ds->y, ds->d_out, B, &ds->g, (ipr_dsamp_stream)ds->stream));
    CU(cudaMemcpyAsync(ds->h_sigma, ds->sigma, RB * sizeof(float), cudaMemcpyDeviceToHost, ds->stream));
    CU(cudaStreamSynchronize(ds->stream));
    memcpy(sigma, ds->h_sigma, RB * sizeof(float));
    return IPR_OK;
fail:
    return IPR_ERR;
}

int ipr_dsamp_step(ipr_dsamp *ds, const ipr_dsamp_row *rows, const float *t_cur, const float *t_next, int B,
                   uint64_t seed, double alpha, double temperature) {
    IPR_CHECK(B >= 1 && B <= ds->slots, "GPU sampler: batch %d outside 1..%d", B, ds->slots);
    const size_t RB = (size_t)B * ds->g.R;
    for (int b = 0; b < B; ++b) IPR_TRY(check_slot(ds, rows[b].slot));
    memcpy(ds->h_rows, rows, (size_t)B * sizeof *rows);
    memcpy(ds->h_levels, t_cur, RB * sizeof(float));
    memcpy(ds->h_levels + RB, t_next, RB * sizeof(float));
    CU(cudaMemcpyAsync(ds->rows, ds->h_rows, (size_t)B * sizeof *rows, cudaMemcpyHostToDevice, ds->stream));
    CU(cudaMemcpyAsync(ds->t_cur, ds->h_levels, RB * sizeof(float), cudaMemcpyHostToDevice, ds->stream));
    CU(cudaMemcpyAsync(ds->t_next, ds->h_levels + RB, RB * sizeof(float), cudaMemcpyHostToDevice, ds->stream));
    const double std_floor = exp(0.5 * IPR_VAR_FLOOR_LOG);
    IPR_TRY(ipr_cu_dsamp_step(ds->z, ds->clean, ds->given, ds->y, ds->rows, ds->t_cur, ds->t_next, B, &ds->g,
                              ds->d_out, seed, alpha, temperature, std_floor, (ipr_dsamp_stream)ds->stream));
    /* the staging buffers are reused by the next call: wait for the copies (and the kernel, which the next
     * gather reads after) */
    CU(cudaStreamSynchronize(ds->stream));
    return IPR_OK;
fail:
    return IPR_ERR;
}

int ipr_dsamp_download(ipr_dsamp *ds, int slot, float *z) {
    IPR_TRY(check_slot(ds, slot));
    CU(cudaMemcpyAsync(z, ds->z + (size_t)slot * ds->chw, ds->chw * sizeof(float), cudaMemcpyDeviceToHost,
                       ds->stream));
    CU(cudaStreamSynchronize(ds->stream));
    return IPR_OK;
fail:
    return IPR_ERR;
}

int ipr_dsamp_upload(ipr_dsamp *ds, int slot, const float *z) {
    IPR_TRY(check_slot(ds, slot));
    CU(cudaMemcpyAsync(ds->z + (size_t)slot * ds->chw, z, ds->chw * sizeof(float), cudaMemcpyHostToDevice,
                       ds->stream));
    CU(cudaStreamSynchronize(ds->stream)); /* the host buffer may change once this returns */
    return IPR_OK;
fail:
    return IPR_ERR;
}

#else /* a build without the CUDA backend: a clear error, never a silent CPU substitute */

static ipr_dsamp *no_cuda(void) {
    ipr_error_set(__FILE__, __LINE__, "the GPU sampler needs the CUDA backend (rebuild with -DIPR_CUDA=ON)");
    return NULL;
}

ipr_dsamp *ipr_dsamp_new(ipr_denoiser *d, int slots, int C, int H, int W, int patch, int d_out) {
    (void)d, (void)slots, (void)C, (void)H, (void)W, (void)patch, (void)d_out;
    return no_cuda();
}

void ipr_dsamp_free(ipr_dsamp *ds) { (void)ds; }
size_t ipr_dsamp_bytes(const ipr_dsamp *ds) {
    (void)ds;
    return 0;
}

int ipr_dsamp_chain_start(ipr_dsamp *ds, int slot, const float *clean, const uint8_t *given, uint64_t seed,
                          uint64_t instance, int noise) {
    (void)ds, (void)slot, (void)clean, (void)given, (void)seed, (void)instance, (void)noise;
    no_cuda();
    return IPR_ERR;
}

int ipr_dsamp_renoise(ipr_dsamp *ds, int slot, const uint8_t *chosen, uint64_t seed, uint64_t instance, uint32_t k) {
    (void)ds, (void)slot, (void)chosen, (void)seed, (void)instance, (void)k;
    no_cuda();
    return IPR_ERR;
}

int ipr_dsamp_forward(ipr_dsamp *ds, const int *row_slot, const float *t_cur, int B, float *sigma) {
    (void)ds, (void)row_slot, (void)t_cur, (void)B, (void)sigma;
    no_cuda();
    return IPR_ERR;
}

int ipr_dsamp_step(ipr_dsamp *ds, const ipr_dsamp_row *rows, const float *t_cur, const float *t_next, int B,
                   uint64_t seed, double alpha, double temperature) {
    (void)ds, (void)rows, (void)t_cur, (void)t_next, (void)B, (void)seed, (void)alpha, (void)temperature;
    no_cuda();
    return IPR_ERR;
}

int ipr_dsamp_download(ipr_dsamp *ds, int slot, float *z) {
    (void)ds, (void)slot, (void)z;
    no_cuda();
    return IPR_ERR;
}

int ipr_dsamp_upload(ipr_dsamp *ds, int slot, const float *z) {
    (void)ds, (void)slot, (void)z;
    no_cuda();
    return IPR_ERR;
}

#endif
