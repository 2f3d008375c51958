/* pool.c: persistent worker threads for the sampler's per-chain host work (noise, transitions, scoring): created
 * once with the runner, woken per job, items taken from a shared counter, the caller working alongside. */
#define _POSIX_C_SOURCE 200809L
#include "pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipr/common.h"

typedef struct {
    struct ipr_pool *p;
    int id;                 /* 1..threads-1 (0 is the caller of ipr_pool_run) */
} pool_worker;

struct ipr_pool {
    int threads;            /* including the caller */
    pthread_t *tid;         /* (threads - 1) workers */
    pool_worker *who;       /* (threads - 1) their ids */
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    /* the current job, guarded by mu */
    ipr_pool_fn fn;
    void *ctx;
    int n, next, finished, busy;
    unsigned generation;    /* bumped per job so a worker never runs one twice */
    int quit;
    int failed;
    char err[512];
};

/* Take items until none is left, as worker `id`; record the first failure. */
static void drain(ipr_pool *p, int id) {
    for (;;) {
        pthread_mutex_lock(&p->mu);
        const int i = p->next < p->n ? p->next++ : -1;
        ipr_pool_fn fn = p->fn;
        void *ctx = p->ctx;
        pthread_mutex_unlock(&p->mu);
        if (i < 0) return;
        const int rc = fn(ctx, i, id);
        pthread_mutex_lock(&p->mu);
        if (rc != IPR_OK && !p->failed) {
            p->failed = 1;
            snprintf(p->err, sizeof p->err, "%s", ipr_error_message());
        }
        if (++p->finished == p->n) pthread_cond_broadcast(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
}

static void *worker(void *arg) {
    const pool_worker *w = arg;
    ipr_pool *p = w->p;
    unsigned seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->generation == seen) pthread_cond_wait(&p->wake, &p->mu);
        if (p->quit) break;
        seen = p->generation;
        p->busy++;
        pthread_mutex_unlock(&p->mu);
        drain(p, w->id);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0) pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

ipr_pool *ipr_pool_new(int threads) {
    ipr_pool *p = NULL;
    IPR_CHECK(threads >= 1 && threads <= 1024, "thread pool: %d threads", threads);
    p = ipr_calloc(1, sizeof *p, "thread pool");
    if (!p) goto fail;
    p->threads = 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    if (threads > 1) {
        p->tid = ipr_calloc((size_t)threads - 1, sizeof *p->tid, "thread pool");
        p->who = ipr_calloc((size_t)threads - 1, sizeof *p->who, "thread pool");
        if (!p->tid || !p->who) goto fail;
        for (int i = 0; i < threads - 1; ++i) {
            p->who[i].p = p;
            p->who[i].id = i + 1;
            IPR_CHECK(pthread_create(&p->tid[i], NULL, worker, &p->who[i]) == 0, "thread pool: cannot start thread %d",
                      i + 1);
            p->threads++;
        }
    }
    return p;
fail:
    ipr_pool_free(p);
    return NULL;
}

void ipr_pool_free(ipr_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->threads - 1; ++i) pthread_join(p->tid[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->tid);
    free(p->who);
    free(p);
}

int ipr_pool_threads(const ipr_pool *p) { return p->threads; }

int ipr_pool_run(ipr_pool *p, ipr_pool_fn fn, void *ctx, int n) {
    if (n <= 0) return IPR_OK;
    if (p->threads == 1 || n == 1) {
        for (int i = 0; i < n; ++i)
            if (fn(ctx, i, 0) != IPR_OK) return IPR_ERR;
        return IPR_OK;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn, p->ctx = ctx, p->n = n, p->next = 0, p->finished = 0, p->failed = 0;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    drain(p, 0);
    /* every item finished and no worker still inside drain (so the next job's fields are safe to set) */
    pthread_mutex_lock(&p->mu);
    while (p->finished < p->n || p->busy > 0) pthread_cond_wait(&p->done, &p->mu);
    const int failed = p->failed;
    char err[512];
    memcpy(err, p->err, sizeof err);
    pthread_mutex_unlock(&p->mu);
    if (failed) {
        ipr_error_set(__FILE__, __LINE__, "%s", err);
        return IPR_ERR;
    }
    return IPR_OK;
}
