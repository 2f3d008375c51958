/* gpu.c: device binding by node-local rank (pipeline-notes 7) and the duplicate-GPU check; the CUDA
 * runtime is asked directly for the UUID and PCI bus so that two ranks on one GPU are caught by identity. */
#define _POSIX_C_SOURCE 200809L
#include "pipeline/gpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipr/unet_cuda.h"
#include "pipeline/check.h"

#ifdef IPR_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

static void gpu_identity(int dev, pl_binding *b) {
#ifdef IPR_HAVE_CUDA
    struct cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, dev) == cudaSuccess) {
        const unsigned char *u = (const unsigned char *)p.uuid.bytes;
        snprintf(b->gpu_uuid, sizeof b->gpu_uuid,
                 "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3],
                 u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
        snprintf(b->device_name, sizeof b->device_name, "%.127s", p.name);
        snprintf(b->pci_bus, sizeof b->pci_bus, "%04x:%02x:%02x", p.pciDomainID, p.pciBusID, p.pciDeviceID);
        return;
    }
#endif
    snprintf(b->gpu_uuid, sizeof b->gpu_uuid, "device-%d", dev);
    snprintf(b->device_name, sizeof b->device_name, "cuda:%d", dev);
}

int pl_bind_device(const pl_resolved *rs, MPI_Comm world, pl_binding *b) {
    MPI_Comm node = MPI_COMM_NULL;
    char *all = NULL;
    int ok = 1, all_ok = 0, rank = 0;
    memset(b, 0, sizeof *b);
    IPR_MPI(MPI_Comm_rank(world, &rank));
    IPR_MPI(MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node));
    IPR_MPI(MPI_Comm_rank(node, &b->local_rank));
    IPR_MPI(MPI_Comm_size(node, &b->local_size));
    if (gethostname(b->hostname, sizeof b->hostname) != 0) snprintf(b->hostname, sizeof b->hostname, "unknown");
    b->hostname[sizeof b->hostname - 1] = '\0';

    int ngpu = 0;
    int have = rs->device != IPR_DEVICE_CPU && ipr_cuda_available(&ngpu) && ngpu > 0;
    ipr_error_clear();
    if (rs->device == IPR_DEVICE_CUDA && !have) {
        ipr_error_set(__FILE__, __LINE__, "device.kind is cuda but rank %d on %s sees no CUDA device", rank, b->hostname);
        ok = 0;
    } else if (have) {
        b->kind = IPR_DEVICE_CUDA;
        if (ngpu == 1) {
            b->gpu = 0; /* a launcher (Slurm --gpus-per-task, a wrapper) narrowed visibility to one device */
        } else if (b->local_size <= ngpu) {
            b->gpu = b->local_rank;
        } else if (rs->allow_gpu_sharing) {
            b->gpu = b->local_rank % ngpu;
        } else {
            ipr_error_set(__FILE__, __LINE__,
                          "%d ranks run on %s but it has %d GPUs: start at most one rank per GPU "
                          "(or set device.allow_gpu_sharing: true)",
                          b->local_size, b->hostname, ngpu);
            ok = 0;
        }
        if (ok) gpu_identity(b->gpu, b);
    } else {
        b->kind = IPR_DEVICE_CPU;
        snprintf(b->device_name, sizeof b->device_name, "cpu");
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    b->cpu_threads = rs->cpu_threads > 0 ? rs->cpu_threads : (int)(cores / (b->local_size > 0 ? b->local_size : 1));
    if (b->cpu_threads < 1) b->cpu_threads = 1;
    /* the host work shares the node's cores too (the sampler would take them all per rank) */
    b->host_threads = rs->host_threads > 0 ? rs->host_threads : (int)(cores / (b->local_size > 0 ? b->local_size : 1));
    if (b->host_threads < 1) b->host_threads = 1;
    if (b->host_threads > 16) b->host_threads = 16;

    /* no two ranks of a node on one GPU, caught by identity rather than index (complaint #9) */
    IPR_TRY_PTR(all = ipr_calloc((size_t)b->local_size, 48, "GPU identities"));
    IPR_MPI(MPI_Allgather(b->gpu_uuid, 48, MPI_CHAR, all, 48, MPI_CHAR, node));
    if (ok && b->kind == IPR_DEVICE_CUDA && !rs->allow_gpu_sharing)
        for (int i = 0; i < b->local_size; ++i)
            if (i != b->local_rank && strcmp(all + (size_t)i * 48, b->gpu_uuid) == 0) {
                ipr_error_set(__FILE__, __LINE__,
                              "node-local ranks %d and %d on %s would share GPU %s (%s); check CUDA_VISIBLE_DEVICES "
                              "and the launcher's GPU binding, or set device.allow_gpu_sharing: true",
                              i, b->local_rank, b->hostname, b->gpu_uuid, b->device_name);
                ok = 0;
                break;
            }
    IPR_MPI(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, world));
    free(all);
    all = NULL;
    IPR_MPI(MPI_Comm_free(&node));
    if (!ok) return IPR_ERR;
    if (!all_ok) {
        ipr_error_set(__FILE__, __LINE__, "another rank could not bind a device (see its message)");
        return IPR_ERR;
    }
    return IPR_OK;
fail:
    free(all);
    if (node != MPI_COMM_NULL) MPI_Comm_free(&node);
    return IPR_ERR;
}

void pl_binding_json(const pl_binding *b, int rank, char *out, size_t cap) {
    const char *cvd = getenv("CUDA_VISIBLE_DEVICES"), *slurm = getenv("SLURM_LOCALID"),
               *ompi = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    char gpu[16] = "null";
    if (b->kind == IPR_DEVICE_CUDA) snprintf(gpu, sizeof gpu, "%d", b->gpu);
    snprintf(out, cap,
             "{\"rank\": %d, \"host\": \"%s\", \"local_rank\": %d, \"local_size\": %d, \"device\": \"%s\", "
             "\"device_name\": \"%s\", \"gpu\": %s, \"gpu_uuid\": \"%s\", \"pci_bus\": \"%s\", \"cpu_threads\": %d, \"host_threads\": %d, "
             "\"CUDA_VISIBLE_DEVICES\": \"%s\", \"SLURM_LOCALID\": \"%s\", \"OMPI_COMM_WORLD_LOCAL_RANK\": \"%s\"}",
             rank, b->hostname, b->local_rank, b->local_size, ipr_device_name(b->kind), b->device_name, gpu, b->gpu_uuid, b->pci_bus, b->cpu_threads, b->host_threads, cvd ? cvd : "",
             slurm ? slurm : "", ompi ? ompi : "");
}
