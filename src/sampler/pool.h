/* pool.h: a fixed set of worker threads that run one job over n independent items at a time (the sampler's
 * per-chain host work between forward passes). Items never share data, so results do not depend on threads. */
#ifndef IPR_SAMPLER_POOL_H
#define IPR_SAMPLER_POOL_H

typedef struct ipr_pool ipr_pool;

/* Item i of a job, run by thread `worker` of the pool (0 = the caller of ipr_pool_run, 1..threads-1 the pool's
 * own): a job may keep per-thread scratch indexed by it, since a worker runs one item at a time. Returns IPR_OK or
 * IPR_ERR (the pool keeps the first error's message). */
typedef int (*ipr_pool_fn)(void *ctx, int item, int worker);

/* threads >= 1 in total (the caller's thread is one of them); NULL on error. */
ipr_pool *ipr_pool_new(int threads);
void ipr_pool_free(ipr_pool *p);
int ipr_pool_threads(const ipr_pool *p);
/* Run fn(ctx, 0..n-1, worker) over the pool and wait. On failure the first error is recorded on the calling thread. */
int ipr_pool_run(ipr_pool *p, ipr_pool_fn fn, void *ctx, int n);

#endif
