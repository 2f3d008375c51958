/* coord.c: master/worker scheduling over MPI (pipeline-notes 7): a central queue in LPT order on rank 0,
 * batches handed out on request with one request kept in flight per worker, retries, drain on signals, and the
 * final merge. What rank 0 reports meanwhile (status.json, progress lines, provenance) is status.c's. */
#define _POSIX_C_SOURCE 200809L
#include "pipeline/coord.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pipeline/check.h"
#include "pipeline/json.h"
#include "pipeline/merge.h"
#include "pipeline/segment.h"
#include "pipeline/status.h"

enum { TAG_REQ = 1, TAG_DONE = 2, TAG_BEAT = 3, TAG_FINAL = 4, TAG_ASSIGN = 10, TAG_DRAIN = 11, TAG_BYE = 12 };
/* ST_IOERR: the batch ran but its segment or journal record could not be written (the run directory's storage) */
enum { ST_OK = 0, ST_FAILED = 1, ST_RETURNED = 2, ST_IOERR = 3 };
enum { U_PENDING = 0, U_ASSIGNED = 1, U_DONE = 2, U_FAILED = 3, U_OUT = 4 };

#define MAX_CHUNK PL_MAX_CHUNK_UNITS
/* Batches a worker asks for ahead of the one it runs. Rank 0 answers requests only between its own
 * chains, so a worker keeps PREFETCH requests in flight to ride out one of rank 0's batches. */
#define PREFETCH 2

/* ---------------- signals ---------------- */

static volatile sig_atomic_t g_signal;

static void on_signal(int sig) {
    g_signal = sig;
    pl_status_snapshot_write(); /* async-signal-safe: status.json says "interrupted" at once */
}

void pl_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND; /* a second signal takes the default action: stop at once */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

int pl_signal_received(void) { return (int)g_signal; }

int pl_under_launcher(void) { return getenv("OMPI_COMM_WORLD_SIZE") != NULL || getenv("PMI_SIZE") != NULL; }

/* ---------------- shared rank state ---------------- */

typedef struct {
    const pl_coord_opts *o;
    pl_exec *x;
    const pl_binding *b;
    MPI_Comm comm;
    int rank, size;
    pl_journal journal;
    int seq;                 /* segments written by this rank */
    double last_beat;
    int chunk_chains_done;   /* progress inside the running batch */
    /* rank 0 only */
    int *ustate, *attempt, *session_tries;
    int *retry, n_retry;
    int *queue, q_head, q_len;
    int *outstanding, *waiting, *final, *units_by_rank, *busy; /* waiting: unanswered requests per rank */
    double *last_seen;
    int *chains_partial;
    char (*hosts)[64];
    char (*devices)[128];
    int in_scope, done_before, done_now, failed, pending;
    uint64_t chains_done;
    double nfe_done, nfe_left;
    int draining, stopping, interrupted;
    int own_busy;            /* units in rank 0's own running batch */
    double t_start, last_tick, last_status, last_line;
    int tty;
    int io_failed;           /* a commit (segment, journal) failed: this rank stops; rank 0 drains, exit 5 */
    int snapshots;           /* rank 0 keeps the signal handler's status.json snapshot current */
    int chunk_max;
} rank_state;

/* ---------------- rank 0: queue ---------------- */

/* Units of one batch share the model and the seed (exec.c runs the selections and fractions of an instance block
 * from one base sample): the key a chunk keeps. */
static int share_key(const pl_plan *p, int u) { return p->units[u].model * PL_MAX_SEEDS + p->units[u].replicate; }

static int take_chunk(rank_state *s, int *units, int *attempts, int max) {
    const pl_plan *p = s->o->plan;
    int n = 0, group = -1;
    /* retries first, one (model, seed) at a time */
    for (int i = s->n_retry - 1; i >= 0 && n < max; --i) {
        int u = s->retry[i];
        if (group >= 0 && share_key(p, u) != group) continue;
        group = share_key(p, u);
        units[n] = u;
        attempts[n] = ++s->attempt[u];
        s->session_tries[u]++;
        n++;
        memmove(&s->retry[i], &s->retry[i + 1], (size_t)(s->n_retry - i - 1) * sizeof(int));
        s->n_retry--;
    }
    if (n > 0) goto out;
    while (s->q_head < s->q_len && s->ustate[s->queue[s->q_head]] != U_PENDING) s->q_head++;
    if (s->q_head == s->q_len) return 0;
    /* the head, then units of the same (model, seed) close behind it in the hand-out order, which keeps each family
     * (the selections and fractions of one instance block) together */
    int window = s->q_head + 8 * max + 64;
    if (window > s->q_len) window = s->q_len;
    for (int i = s->q_head; i < window && n < max; ++i) {
        int u = s->queue[i];
        if (s->ustate[u] != U_PENDING) continue;
        if (group >= 0 && share_key(p, u) != group) continue;
        group = share_key(p, u);
        units[n] = u;
        attempts[n] = ++s->attempt[u];
        s->session_tries[u]++;
        n++;
    }
out:
    for (int i = 0; i < n; ++i) {
        s->ustate[units[i]] = U_ASSIGNED;
        s->pending--;
    }
    return n;
}

static int has_work(const rank_state *s) { return s->pending > 0; }

/* With several ranks and no run.units_per_request, a request holds at most a quarter of a rank's share of the units
 * to run, in whole families (the selections and fractions of one instance block, which share a base sample), at
 * least one family: the default (one device batch of every family) handed a 256-unit grid out in two requests, so
 * that two of four GPUs had nothing to do. Batch composition moves no result on the CPU (README
 * "Reproducibility"); on GPUs it is one of the rounding differences between rank counts already documented. */
static void cap_chunk(rank_state *s) {
    const pl_resolved *rs = s->o->plan->resolved;
    if (rs->chunk_explicit || s->size < 2 || s->pending < 1) return;
    const int fam = rs->family_units > 0 ? rs->family_units : 1;
    int want = (s->pending + 4 * s->size - 1) / (4 * s->size);
    want = (want + fam - 1) / fam * fam;
    if (want < s->chunk_max) {
        pl_logf(IPR_LOG_INFO, "at most %d units a request (a quarter of a rank's share; %d for one device batch of "
                "every family; run.units_per_request sets it)", want, s->chunk_max);
        s->chunk_max = want;
    }
}

static void unit_finished(rank_state *s, int u, int status) {
    const pl_resolved *rs = s->o->plan->resolved;
    const pl_unit *un = &s->o->plan->units[u];
    if (status == ST_OK) {
        s->ustate[u] = U_DONE;
        s->done_now++;
        s->chains_done += un->count;
        s->nfe_done += un->nfe;
        s->nfe_left -= un->nfe;
        return;
    }
    if (status == ST_RETURNED || status == ST_IOERR) { /* given back: not started, or run but not committed */
        if (status == ST_IOERR) s->io_failed = 1;
        s->ustate[u] = U_PENDING;
        s->attempt[u]--;
        s->session_tries[u]--;
        s->retry[s->n_retry++] = u;
        s->pending++;
        return;
    }
    if (s->session_tries[u] <= rs->retries) {
        s->ustate[u] = U_PENDING;
        s->retry[s->n_retry++] = u;
        s->pending++;
        pl_logf(IPR_LOG_WARN, "unit %016llx failed (attempt %d); retrying", (unsigned long long)un->id, s->attempt[u]);
        return;
    }
    s->ustate[u] = U_FAILED;
    s->failed++;
    s->nfe_left -= un->nfe;
    pl_logf(IPR_LOG_ERROR, "unit %016llx failed %d time(s); giving up on it", (unsigned long long)un->id,
            s->session_tries[u]);
    if (rs->has_max_failures && s->failed > rs->max_failures && !s->stopping) {
        s->stopping = 1;
        pl_logf(IPR_LOG_ERROR, "%d failed units exceed run.max_failures = %d: handing out no more work", s->failed,
                rs->max_failures);
    }
}

/* ---------------- progress and status.json ---------------- */

/* The counts as status.c reports them. */
static pl_progress progress_of(const rank_state *s) {
    pl_progress p = {
        .run = s->o->run,
        .t_start = s->t_start,
        .progress_interval = s->o->plan->resolved->progress_interval,
        .world_size = s->size,
        .units_total = s->o->plan->n_units,
        .shard = s->o->shard,
        .nshards = s->o->nshards,
        .in_scope = s->in_scope,
        .done_before = s->done_before,
        .done_now = s->done_now,
        .failed = s->failed,
        .draining = s->draining,
        .own_busy = s->own_busy,
        .chains_done = s->chains_done,
        .nfe_done = s->nfe_done,
        .nfe_left = s->nfe_left,
        .last_seen = s->last_seen,
        .outstanding = s->outstanding,
        .final = s->final,
        .units_by_rank = s->units_by_rank,
        .chains_partial = s->chains_partial,
        .hosts = s->hosts,
        .devices = s->devices,
    };
    return p;
}

static int write_status(const rank_state *s, const char *state, int draining) {
    const pl_progress p = progress_of(s);
    return pl_status_write(&p, state, draining, s->snapshots);
}

static void progress_line(const rank_state *s, char *out, size_t cap) {
    const pl_progress p = progress_of(s);
    pl_progress_line(&p, out, cap);
}

static void tick(rank_state *s, int force) {
    double t = pl_now();
    if (s->o->progress != PL_PROGRESS_NONE) {
        char line[256];
        if (s->tty && (force || t - s->last_line >= 0.5)) {
            progress_line(s, line, sizeof line);
            fprintf(stdout, "\r%s\033[K", line);
            fflush(stdout);
            s->last_line = t;
        } else if (!s->tty && (force || t - s->last_line >= s->o->plan->resolved->progress_interval)) {
            progress_line(s, line, sizeof line);
            fprintf(stdout, "%s\n", line);
            fflush(stdout);
            s->last_line = t;
        }
    }
    if (force || t - s->last_status >= s->o->plan->resolved->progress_interval) {
        if (write_status(s, s->draining ? "interrupted" : "running", s->draining) != IPR_OK) {
            pl_logf(IPR_LOG_WARN, "status.json: %s", ipr_error_message());
            ipr_error_clear();
        }
        char line[256];
        progress_line(s, line, sizeof line);
        pl_logf(IPR_LOG_INFO, "%s", line);
        s->last_status = t;
    }
}

/* ---------------- rank 0: servicing messages ---------------- */

static int send_assign(rank_state *s, int w, const int *units, const int *attempts, int n) {
    int64_t buf[1 + 2 * MAX_CHUNK];
    buf[0] = n;
    for (int i = 0; i < n; ++i) {
        buf[1 + 2 * i] = units[i];
        buf[2 + 2 * i] = attempts[i];
    }
    IPR_MPI(MPI_Send(buf, 1 + 2 * n, MPI_INT64_T, w, TAG_ASSIGN, s->comm));
    s->outstanding[w] += n;
    return IPR_OK;
fail:
    return IPR_ERR;
}

static int may_get_work(const rank_state *s) {
    if (s->draining || s->stopping) return 0;
    if (has_work(s)) return 1;
    /* failures of units still running elsewhere could come back as retries */
    if (s->own_busy > 0) return 1;
    for (int r = 1; r < s->size; ++r)
        if (s->outstanding[r] > 0) return 1;
    return 0;
}

static int service(rank_state *s) {
    int64_t buf[3 + 2 * MAX_CHUNK];
    int units[MAX_CHUNK], attempts[MAX_CHUNK];
    if ((pl_signal_received() || s->io_failed) && !s->draining) {
        s->draining = 1;
        s->interrupted = pl_signal_received() != 0;
        if (s->interrupted)
            pl_logf(IPR_LOG_WARN, "signal %d: draining (running batches finish and commit; run again to resume)",
                    pl_signal_received());
        else
            pl_logf(IPR_LOG_ERROR, "a batch could not be committed to the run directory: draining (running batches "
                                   "finish and commit; free space or fix the storage, then run again to resume)");
        for (int r = 1; r < s->size; ++r)
            if (!s->final[r]) {
                int64_t z = 0;
                IPR_MPI(MPI_Send(&z, 1, MPI_INT64_T, r, TAG_DRAIN, s->comm));
            }
        tick(s, 1);
    }
    for (;;) {
        int flag = 0, count = 0;
        MPI_Status stt;
        IPR_MPI(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, s->comm, &flag, &stt));
        if (!flag) break;
        IPR_MPI(MPI_Get_count(&stt, MPI_INT64_T, &count));
        IPR_CHECK(count >= 1 && count <= (int)(sizeof buf / sizeof buf[0]), "bad message of %d values", count);
        int w = stt.MPI_SOURCE;
        IPR_MPI(MPI_Recv(buf, count, MPI_INT64_T, w, stt.MPI_TAG, s->comm, MPI_STATUS_IGNORE));
        s->last_seen[w] = pl_now();
        switch (stt.MPI_TAG) {
        case TAG_REQ:
            s->waiting[w]++;
            break;
        case TAG_DONE: {
            int n = (int)buf[0];
            s->chains_partial[w] = 0;
            for (int i = 0; i < n; ++i) {
                int u = (int)buf[3 + 2 * i], st = (int)buf[4 + 2 * i];
                unit_finished(s, u, st);
                if (st == ST_OK) s->units_by_rank[w]++;
            }
            s->outstanding[w] -= n;
            break;
        }
        case TAG_BEAT:
            s->chains_partial[w] = (int)buf[0];
            break;
        case TAG_FINAL: {
            int64_t z = 0;
            if (buf[0] != 0) s->io_failed = 1; /* the worker could not close its journal */
            s->final[w] = 1;
            s->waiting[w] = 0;
            IPR_MPI(MPI_Send(&z, 1, MPI_INT64_T, w, TAG_BYE, s->comm));
            break;
        }
        default: IPR_FAIL("unexpected message tag %d from rank %d", stt.MPI_TAG, w);
        }
    }
    /* answer waiting requests: work, or stop once no more can appear (a request for more work is deferred
     * while batches elsewhere may fail and come back as retries) */
    for (int w = 1; w < s->size; ++w) {
        while (s->waiting[w] > 0) {
            if (!s->draining && !s->stopping && has_work(s)) {
                int n = take_chunk(s, units, attempts, s->chunk_max);
                IPR_TRY(send_assign(s, w, units, attempts, n));
            } else if (!may_get_work(s)) {
                IPR_TRY(send_assign(s, w, units, attempts, 0));
            } else {
                break;
            }
            s->waiting[w]--;
        }
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* ---------------- running a batch (any rank) ---------------- */

static void on_chain(int done, int total, void *ctx) {
    rank_state *s = ctx;
    (void)total;
    s->chunk_chains_done = done;
    if (s->rank == 0) {
        s->chains_partial[0] = done;
        if (service(s) != IPR_OK) {
            pl_logf(IPR_LOG_ERROR, "coordinator: %s", ipr_error_message());
            ipr_error_clear();
        }
        tick(s, 0);
        return;
    }
    double t = pl_now();
    if (t - s->last_beat >= 0.5 * s->o->plan->resolved->progress_interval || t - s->last_beat >= 5.0) {
        int64_t v = done;
        if (MPI_Send(&v, 1, MPI_INT64_T, 0, TAG_BEAT, s->comm) != MPI_SUCCESS) pl_logf(IPR_LOG_WARN, "heartbeat failed");
        s->last_beat = t;
    }
}

/* Run a batch, commit its segment and journal record (or journal its failure). status[i] per unit. */
static void run_batch(rank_state *s, const int *units, const int *attempts, int n, int *status, uint64_t *chains,
                      double *wall) {
    const pl_plan *plan = s->o->plan;
    pl_rows rows;
    pl_rows_init(&rows, plan->grid.C, plan->grid.H, plan->grid.W);
    pl_batch_info info;
    memset(&info, 0, sizeof info);
    info.rank = s->rank;
    info.world_size = s->size;
    info.hostname = s->b->hostname;
    info.session = s->o->run->session;
    info.run_id = s->o->run->run_id;
    info.config_sha256 = plan->grid.config_sha256;
    info.device_name = pl_exec_device_name(s->x);
    s->chunk_chains_done = 0;
    *chains = 0;
    *wall = 0;
    char rel[PL_PATH_MAX], sha[65];
    const int ran = pl_exec_run(s->x, units, attempts, n, &rows, &info, on_chain, s) == IPR_OK;
    int ok = ran && pl_segment_write(s->o->run, &rows, &info, s->seq, rel, sizeof rel, sha) == IPR_OK;
    if (ok) {
        uint64_t ids[MAX_CHUNK];
        for (int i = 0; i < n; ++i) ids[i] = plan->units[units[i]].id;
        ok = pl_journal_commit(&s->journal, rel, sha, ids, n, rows.chains.n, info.wall_s) == IPR_OK;
    }
    s->seq++;
    if (ok) {
        for (int i = 0; i < n; ++i) status[i] = ST_OK;
        *chains = rows.chains.n;
        *wall = info.wall_s;
        pl_logf(IPR_LOG_INFO, "committed %s: %d unit(s), %llu chains in %.2f s", rel, n, (unsigned long long)rows.chains.n,
                info.wall_s);
    } else if (ran) {
        /* the storage under the run directory failed (disk full, I/O error), not the units: no fail record (their
         * attempts stay as they were, and the disk may be full), they go back to the queue, and the run drains and
         * ends with exit 5. A resume runs them again; a segment renamed without its record goes to quarantine/. */
        pl_logf(IPR_LOG_ERROR, "cannot commit a batch of %d unit(s): %s (at %s)", n, ipr_error_message(),
                ipr_error_origin());
        ipr_error_clear();
        for (int i = 0; i < n; ++i) status[i] = ST_IOERR;
        s->io_failed = 1;
    } else {
        char reason[1024];
        snprintf(reason, sizeof reason, "%s (at %s)", ipr_error_message(), ipr_error_origin());
        pl_logf(IPR_LOG_ERROR, "batch of %d unit(s) failed: %s", n, reason);
        ipr_error_clear();
        for (int i = 0; i < n; ++i) {
            status[i] = ST_FAILED;
            if (pl_journal_fail(&s->journal, plan->units[units[i]].id, attempts[i], reason) != IPR_OK) {
                pl_logf(IPR_LOG_ERROR, "journal: %s", ipr_error_message());
                ipr_error_clear();
            }
        }
    }
    pl_rows_free(&rows);
}

/* ---------------- worker ---------------- */

static int recv_assign(rank_state *s, int *units, int *attempts, int *n, int *drained) {
    int64_t buf[1 + 2 * MAX_CHUNK];
    for (;;) {
        MPI_Status stt;
        IPR_MPI(MPI_Recv(buf, (int)(sizeof buf / sizeof buf[0]), MPI_INT64_T, 0, MPI_ANY_TAG, s->comm, &stt));
        if (stt.MPI_TAG == TAG_DRAIN) {
            *drained = 1;
            continue;
        }
        IPR_CHECK(stt.MPI_TAG == TAG_ASSIGN, "worker: unexpected message tag %d", stt.MPI_TAG);
        *n = (int)buf[0];
        for (int i = 0; i < *n; ++i) {
            units[i] = (int)buf[1 + 2 * i];
            attempts[i] = (int)buf[2 + 2 * i];
        }
        return IPR_OK;
    }
fail:
    return IPR_ERR;
}

static int send_done(rank_state *s, const int *units, const int *status, int n, uint64_t chains, double wall) {
    int64_t buf[3 + 2 * MAX_CHUNK];
    buf[0] = n;
    buf[1] = (int64_t)chains;
    buf[2] = (int64_t)(wall * 1000.0);
    for (int i = 0; i < n; ++i) {
        buf[3 + 2 * i] = units[i];
        buf[4 + 2 * i] = status[i];
    }
    IPR_MPI(MPI_Send(buf, 3 + 2 * n, MPI_INT64_T, 0, TAG_DONE, s->comm));
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* A worker's batches received ahead of time, first in first out. */
typedef struct {
    int n[PREFETCH + 1];
    int units[PREFETCH + 1][MAX_CHUNK], attempts[PREFETCH + 1][MAX_CHUNK];
    int head, len;
} batch_queue;

/* append a received batch of n units at the tail */
static void queue_push(batch_queue *q, const int *units, const int *attempts, int n) {
    const int slot = (q->head + q->len) % (PREFETCH + 1);
    q->n[slot] = n;
    memcpy(q->units[slot], units, (size_t)n * sizeof(int));
    memcpy(q->attempts[slot], attempts, (size_t)n * sizeof(int));
    q->len++;
}

/* Receive the answer to one outstanding request: a batch goes to the queue's tail, an empty one (the
 * coordinator's "stop") sets *stopped. tmp_u / tmp_a are scratch of MAX_CHUNK. */
static int take_assign(rank_state *s, batch_queue *q, int *tmp_u, int *tmp_a, int *asked, int *stopped,
                       int *drained) {
    int n = 0;
    IPR_TRY(recv_assign(s, tmp_u, tmp_a, &n, drained));
    (*asked)--;
    if (n == 0)
        *stopped = 1;
    else
        queue_push(q, tmp_u, tmp_a, n);
    return IPR_OK;
fail:
    return IPR_ERR;
}

static int worker_loop(rank_state *s) {
    static batch_queue q;
    static int cur[MAX_CHUNK], cur_att[MAX_CHUNK], status[MAX_CHUNK], tmp_u[MAX_CHUNK], tmp_a[MAX_CHUNK];
    int asked = 0, stopped = 0, drained = 0;
    int64_t z = 0;
    memset(&q, 0, sizeof q);
    for (; asked < PREFETCH; ++asked) IPR_MPI(MPI_Send(&z, 1, MPI_INT64_T, 0, TAG_REQ, s->comm));
    for (;;) {
        /* wait for a batch, or for every request to be answered with "stop" */
        while (q.len == 0 && asked > 0) IPR_TRY(take_assign(s, &q, tmp_u, tmp_a, &asked, &stopped, &drained));
        if (q.len == 0) break;
        int n = q.n[q.head];
        memcpy(cur, q.units[q.head], (size_t)n * sizeof(int));
        memcpy(cur_att, q.attempts[q.head], (size_t)n * sizeof(int));
        q.head = (q.head + 1) % (PREFETCH + 1);
        q.len--;
        if (drained || pl_signal_received()) {
            /* give back every batch not started, including those still to arrive */
            for (int i = 0; i < n; ++i) status[i] = ST_RETURNED;
            IPR_TRY(send_done(s, cur, status, n, 0, 0.0));
            continue;
        }
        if (!stopped) { /* keep PREFETCH requests in flight */
            IPR_MPI(MPI_Send(&z, 1, MPI_INT64_T, 0, TAG_REQ, s->comm));
            asked++;
        }
        uint64_t chains = 0;
        double wall = 0;
        run_batch(s, cur, cur_att, n, status, &chains, &wall);
        IPR_TRY(send_done(s, cur, status, n, chains, wall));
        if (s->io_failed) drained = 1; /* no more commits from here: give back what comes */
        /* take in batches that arrived meanwhile, so that a DRAIN behind them is seen before the next one */
        for (;;) {
            int flag = 0;
            IPR_MPI(MPI_Iprobe(0, MPI_ANY_TAG, s->comm, &flag, MPI_STATUS_IGNORE));
            if (!flag || asked == 0 || q.len == PREFETCH + 1) break;
            IPR_TRY(take_assign(s, &q, tmp_u, tmp_a, &asked, &stopped, &drained));
        }
    }
    /* leave: close the journal (a failed close is a storage error, told in FINAL), FINAL, then wait for BYE (a DRAIN
     * sent meanwhile is received on the way) */
    if (pl_journal_close(&s->journal) != IPR_OK) {
        pl_logf(IPR_LOG_ERROR, "journal: %s", ipr_error_message());
        ipr_error_clear();
        z = 1;
    }
    IPR_MPI(MPI_Send(&z, 1, MPI_INT64_T, 0, TAG_FINAL, s->comm));
    for (;;) {
        int64_t v;
        MPI_Status stt;
        IPR_MPI(MPI_Recv(&v, 1, MPI_INT64_T, 0, MPI_ANY_TAG, s->comm, &stt));
        if (stt.MPI_TAG == TAG_BYE) break;
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* ---------------- rank 0 ---------------- */

static int coordinator_loop(rank_state *s) {
    static int units[MAX_CHUNK], attempts[MAX_CHUNK], status[MAX_CHUNK];
    for (;;) {
        IPR_TRY(service(s));
        tick(s, 0);
        if (!s->draining && !s->stopping && has_work(s)) {
            int n = take_chunk(s, units, attempts, s->chunk_max);
            s->own_busy = n;
            uint64_t chains = 0;
            double wall = 0;
            run_batch(s, units, attempts, n, status, &chains, &wall);
            s->own_busy = 0;
            s->chains_partial[0] = 0;
            for (int i = 0; i < n; ++i) {
                unit_finished(s, units[i], status[i]);
                if (status[i] == ST_OK) s->units_by_rank[0]++;
            }
            continue;
        }
        int all_final = 1;
        for (int r = 1; r < s->size; ++r) all_final &= s->final[r];
        if (all_final && !may_get_work(s)) break;
        struct timespec ts = {0, 2000000}; /* 2 ms between polls while only others work */
        nanosleep(&ts, NULL);
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

static int init_rank0(rank_state *s) {
    const pl_plan *plan = s->o->plan;
    const pl_run *run = s->o->run;
    pl_journal_state st;
    int *shard_of = NULL;
    int n = plan->n_units;
    IPR_TRY_PTR(s->ustate = ipr_calloc((size_t)n, sizeof(int), "unit states"));
    IPR_TRY_PTR(s->attempt = ipr_calloc((size_t)n, sizeof(int), "unit attempts"));
    IPR_TRY_PTR(s->session_tries = ipr_calloc((size_t)n, sizeof(int), "unit tries"));
    IPR_TRY_PTR(s->retry = ipr_calloc((size_t)n + 1, sizeof(int), "retry stack"));
    IPR_TRY_PTR(s->queue = ipr_calloc((size_t)n + 1, sizeof(int), "queue"));
    IPR_TRY(pl_journal_scan(run, plan, &st));
    if (s->o->nshards > 0) {
        IPR_TRY_PTR(shard_of = ipr_calloc((size_t)n, sizeof(int), "shard map"));
        pl_plan_shards(plan, s->o->nshards, shard_of);
    } else if (st.n_bad || run->resumed) {
        int moved = 0;
        if (pl_quarantine(run, &st, &moved) != IPR_OK) {
            pl_logf(IPR_LOG_WARN, "quarantine: %s", ipr_error_message());
            ipr_error_clear();
        } else if (moved) {
            pl_logf(IPR_LOG_WARN, "moved %d temporary or uncommitted segment file(s) to quarantine/", moved);
        }
    }
    if (st.n_bad)
        pl_logf(IPR_LOG_WARN, "%d commit record(s) name a missing or altered segment (first: %s): their units run again",
                st.n_bad, st.first_bad);
    if (st.n_corrupt)
        pl_logf(IPR_LOG_WARN, "%d journal line(s) are not records (first at %s): skipped; units they may have named run again",
                st.n_corrupt, st.first_corrupt);
    s->nfe_left = 0;
    for (int j = 0; j < n; ++j) {
        int u = plan->handout[j];
        s->attempt[u] = st.fails[u] + (st.seg[u] >= 0 ? 1 : 0);
        if (shard_of && shard_of[u] != s->o->shard) {
            s->ustate[u] = U_OUT;
            continue;
        }
        s->in_scope++;
        if (st.seg[u] >= 0) {
            s->ustate[u] = U_DONE;
            s->done_before++;
            continue;
        }
        s->ustate[u] = U_PENDING;
        s->queue[s->q_len++] = u;
        s->pending++;
        s->nfe_left += plan->units[u].nfe;
    }
    pl_journal_state_free(&st);
    free(shard_of);
    return IPR_OK;
fail:
    free(shard_of);
    return IPR_ERR;
}

static void free_rank0(rank_state *s) {
    free(s->ustate);
    free(s->attempt);
    free(s->session_tries);
    free(s->retry);
    free(s->queue);
}

int pl_coord_run(const pl_coord_opts *o, pl_exec *x, const pl_binding *b, pl_coord_result *res) {
    rank_state s;
    memset(&s, 0, sizeof s);
    memset(res, 0, sizeof *res);
    s.o = o;
    s.x = x;
    s.b = b;
    s.comm = MPI_COMM_NULL;
    int ok = 1, all_ok = 1, have_journal = 0, rc = IPR_ERR;
    int64_t shared[4] = {0, 0, 0, 0};
    char *bind_all = NULL;
    IPR_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &s.comm));
    IPR_MPI(MPI_Comm_set_errhandler(s.comm, MPI_ERRORS_RETURN));
    IPR_MPI(MPI_Comm_rank(s.comm, &s.rank));
    IPR_MPI(MPI_Comm_size(s.comm, &s.size));
    s.chunk_max = o->plan->resolved->chunk_units;
    if (s.chunk_max > MAX_CHUNK) s.chunk_max = MAX_CHUNK;
    s.t_start = s.last_tick = s.last_beat = pl_now();
    s.last_line = s.t_start;
    s.last_status = 0;
    /* one updating line only on a user's terminal: under a launcher rank 0's stdout is Open MPI's pseudo-terminal,
     * copied into mpirun's output (a batch log as often as not), so isatty() is no evidence of a person */
    s.tty = o->progress == PL_PROGRESS_AUTO && isatty(STDOUT_FILENO) && !pl_under_launcher();

    /* every rank: its journal; rank 0: the queue and the others' bindings */
    if (pl_journal_open(&s.journal, o->run, s.rank) != IPR_OK) ok = 0;
    else have_journal = 1;
    IPR_TRY_PTR(s.outstanding = ipr_calloc((size_t)s.size, sizeof(int), "rank table"));
    IPR_TRY_PTR(s.waiting = ipr_calloc((size_t)s.size, sizeof(int), "rank table"));
    IPR_TRY_PTR(s.final = ipr_calloc((size_t)s.size, sizeof(int), "rank table"));
    IPR_TRY_PTR(s.units_by_rank = ipr_calloc((size_t)s.size, sizeof(int), "rank table"));
    IPR_TRY_PTR(s.chains_partial = ipr_calloc((size_t)s.size, sizeof(int), "rank table"));
    IPR_TRY_PTR(s.last_seen = ipr_calloc((size_t)s.size, sizeof(double), "rank table"));
    IPR_TRY_PTR(s.hosts = ipr_calloc((size_t)s.size, sizeof *s.hosts, "rank table"));
    IPR_TRY_PTR(s.devices = ipr_calloc((size_t)s.size, sizeof *s.devices, "rank table"));
    IPR_TRY_PTR(bind_all = ipr_calloc((size_t)s.size, 1024, "bindings"));
    {
        char mine[1024];
        pl_binding_json(b, s.rank, mine, sizeof mine);
        IPR_MPI(MPI_Gather(mine, 1024, MPI_CHAR, bind_all, 1024, MPI_CHAR, 0, s.comm));
        IPR_MPI(MPI_Gather(b->hostname, 64, MPI_CHAR, s.hosts, 64, MPI_CHAR, 0, s.comm));
        IPR_MPI(MPI_Gather(b->device_name, 128, MPI_CHAR, s.devices, 128, MPI_CHAR, 0, s.comm));
    }
    if (s.rank == 0) {
        for (int r = 0; r < s.size; ++r) s.last_seen[r] = s.t_start;
        if (ok && init_rank0(&s) != IPR_OK) ok = 0;
        if (ok && pl_session_provenance_write(o->run, s.size, s.t_start, bind_all, 1024) != IPR_OK) ok = 0;
    }
    if (!ok) ipr_error_print("ipr run");
    IPR_MPI(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, s.comm));
    IPR_CHECK(all_ok, "could not start the run (see the messages above)");

    if (s.rank == 0) {
        pl_logf(IPR_LOG_INFO, "session %s: %d ranks, %d of %d units in scope, %d done before, %d to run", o->run->session,
                s.size, s.in_scope, o->plan->n_units, s.done_before, s.pending);
        cap_chunk(&s);
        s.snapshots = pl_status_snapshot_arm(o->run, s.size) == IPR_OK;
        write_status(&s, "running", 0);
        ipr_error_clear();
        tick(&s, 1);
        IPR_TRY(coordinator_loop(&s));
        if (s.tty) fputc('\n', stdout);
        if (have_journal && pl_journal_close(&s.journal) != IPR_OK) {
            pl_logf(IPR_LOG_ERROR, "journal: %s", ipr_error_message());
            ipr_error_clear();
            s.io_failed = 1;
        }
        res->units_in_scope = s.in_scope;
        res->done_before = s.done_before;
        res->done_now = s.done_now;
        res->failed = s.failed;
        res->missing = s.in_scope - s.done_before - s.done_now - s.failed;
        res->exit_code = res->missing > 0 && (s.interrupted || s.draining) ? 3 : (s.failed > 0 || res->missing > 0) ? 2 : 0;
        if (s.io_failed) res->exit_code = 5; /* README "Exit codes": the storage failed; resume once fixed */
        const char *state = res->exit_code == 3 ? "interrupted" : res->exit_code == 0 ? "merging" : "failed";
        s.snapshots = 0;
        pl_status_snapshot_disarm(); /* from here on status.json tells the end, not a snapshot */
        write_status(&s, state, 0);
        ipr_error_clear();
        if (res->missing == 0 && !s.io_failed) {
            pl_merge_opts mo = {0};
            pl_merge_report rep;
            if (pl_merge(o->run->dir, &mo, &rep) != IPR_OK) {
                res->exit_code = ipr_error_is_storage() ? 5 : 2;
                ipr_error_print("ipr run: merge");
            } else if (rep.written) {
                res->merged = 1;
                snprintf(res->summary_md, sizeof res->summary_md, "%s", rep.summary_md_path);
                if (rep.n_failed > 0) res->exit_code = 2;
            }
        }
        write_status(&s, res->exit_code == 0 ? "done" : res->exit_code == 3 ? "interrupted" : "failed", 0);
        ipr_error_clear();
        shared[0] = res->exit_code;
        shared[1] = res->merged;
        shared[2] = res->done_now;
        shared[3] = res->failed;
    } else {
        IPR_TRY(worker_loop(&s));
    }
    IPR_MPI(MPI_Bcast(shared, 4, MPI_INT64_T, 0, s.comm));
    res->exit_code = (int)shared[0];
    res->merged = (int)shared[1];
    IPR_MPI(MPI_Comm_free(&s.comm)); /* sets s.comm to MPI_COMM_NULL */
    rc = IPR_OK;
fail:
    if (s.snapshots) pl_status_snapshot_disarm();
    if (have_journal) pl_journal_close(&s.journal);
    free_rank0(&s);
    free(s.outstanding);
    free(s.waiting);
    free(s.final);
    free(s.units_by_rank);
    free(s.chains_partial);
    free(s.last_seen);
    free(s.hosts);
    free(s.devices);
    free(bind_all);
    if (s.comm != MPI_COMM_NULL) MPI_Comm_free(&s.comm);
    return rc;
}
