/* cuda_host.c: the host-side helpers of the CUDA engines (cuda_host.h). */
#include "cuda_host.h"

void *ipr_bump_take(ipr_bump *b, size_t bytes) {
    b->off = (b->off + 255) & ~(size_t)255;
    void *p = b->base ? b->base + b->off : NULL;
    b->off += bytes;
    return p;
}

int ipr_cuda_upload_floats(int device, float *dst, const float *src, size_t n) {
    CU(cudaSetDevice(device));
    CU(cudaMemcpy(dst, src, n * sizeof(float), cudaMemcpyHostToDevice));
    return IPR_OK;
fail:
    return IPR_ERR;
}

int ipr_cuda_stream_sync(cudaStream_t stream) {
    CU(cudaStreamSynchronize(stream));
    return IPR_OK;
fail:
    return IPR_ERR;
}
