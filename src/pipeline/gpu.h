/* gpu.h: which device a rank uses. Ranks of one node are numbered by MPI_Comm_split_type; rank i of a node
 * takes GPU i (or GPU 0 when a launcher left it one), no two ranks share a GPU unless allowed, and a node
 * without GPUs runs on the CPU with its cores divided between its ranks. */
#ifndef IPR_PIPELINE_GPU_H
#define IPR_PIPELINE_GPU_H

#include <mpi.h>

#include "pipeline/plan.h"

typedef struct {
    ipr_device_kind kind;  /* CPU or CUDA (never AUTO) */
    int gpu;               /* CUDA device index */
    int cpu_threads;       /* BLAS threads on the CPU path */
    int host_threads;      /* the sampler's host threads (noise, transitions, scoring between passes) */
    int local_rank, local_size;
    char hostname[64];
    char gpu_uuid[48];     /* "GPU-xxxxxxxx-..." or "" */
    char device_name[128]; /* "cpu" or the GPU's name */
    char pci_bus[32];
} pl_binding;

/* Bind this rank as the plan's device settings ask (pl_resolved: device.kind, threads, GPU sharing). Collective over
 * `world`: every rank returns the same status (IPR_ERR everywhere if one rank failed). */
int pl_bind_device(const pl_resolved *rs, MPI_Comm world, pl_binding *b);
/* One JSON object describing the binding (provenance). */
void pl_binding_json(const pl_binding *b, int rank, char *out, size_t cap);

#endif
