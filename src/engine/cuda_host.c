/* cuda_host.c: the host-side helpers of the CUDA engines (cuda_host.h). */
#include "cuda_host.h"

#include <string.h>

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

static ipr_graph_entry *find_entry(ipr_graph_cache *c, const int *key) {
    for (int i = 0; i < c->n; ++i)
        if (memcmp(c->e[i].key, key, (size_t)c->key_len * sizeof(int)) == 0) return &c->e[i];
    return NULL;
}

int ipr_graph_cache_run(ipr_graph_cache *c, cudaStream_t stream, const int *key, int (*body)(void *ctx), void *ctx,
                        const char *what) {
    IPR_CHECK(c->cap >= 1 && c->cap <= IPR_GRAPH_CACHE_MAX && c->key_len >= 1 && c->key_len <= IPR_GRAPH_KEY_MAX,
              "%s: graph cache of %d entries, keys of %d ints", what, c->cap, c->key_len);
    if (!c->on) return body(ctx);
    ipr_graph_entry *e = find_entry(c, key);
    if (!e) {
        cudaGraph_t graph = NULL;
        cudaGraphExec_t exec = NULL;
        if (cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed) != cudaSuccess) {
            cudaGetLastError();
            ipr_log(IPR_LOG_WARN, "%s: cannot capture a CUDA graph; running without graphs", what);
            c->on = 0;
            return body(ctx);
        }
        const int rc = body(ctx);
        const cudaError_t ce = cudaStreamEndCapture(stream, &graph);
        if (rc != IPR_OK || ce != cudaSuccess || !graph || cudaGraphInstantiate(&exec, graph, 0) != cudaSuccess) {
            if (graph) cudaGraphDestroy(graph);
            cudaGetLastError();
            ipr_log(IPR_LOG_WARN, "%s: graph capture failed (%s); running without graphs", what,
                    rc != IPR_OK ? ipr_error_message() : cudaGetErrorString(ce));
            c->on = 0;
            return body(ctx);
        }
        cudaGraphDestroy(graph);
        if (c->n == c->cap) { /* evict the least recently used */
            int old = 0;
            for (int i = 1; i < c->n; ++i)
                if (c->e[i].used < c->e[old].used) old = i;
            cudaGraphExecDestroy(c->e[old].exec);
            c->e[old] = c->e[--c->n];
        }
        e = &c->e[c->n++];
        memset(e, 0, sizeof *e);
        memcpy(e->key, key, (size_t)c->key_len * sizeof(int));
        e->exec = exec;
        c->captures++;
    }
    e->used = ++c->tick;
    CU(cudaGraphLaunch(e->exec, stream));
    return IPR_OK;
fail:
    return IPR_ERR;
}

void ipr_graph_cache_clear(ipr_graph_cache *c) {
    for (int i = 0; i < c->n; ++i) cudaGraphExecDestroy(c->e[i].exec);
    c->n = 0;
}
