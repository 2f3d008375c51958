/* status.c: rank 0's reports on a running `ipr run`: status.json (and the snapshot the signal handler writes),
 * the progress line and the session's provenance; the scheduling loop (coord.c) only hands over its counts. */
#define _POSIX_C_SOURCE 200809L
#include "pipeline/status.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------- the signal handler's snapshot ---------------- */

/* Rank 0: status.json as it would read if the run stopped now (state "interrupted"), rendered with every status
 * write and put in place by the signal handler itself with open/write/close/rename, which are async-signal-safe.
 * Under mpirun a Ctrl-C or SIGTERM reaches the ranks as SIGTERM followed by SIGKILL one second later (Open MPI's
 * odls_base_sigkill_timeout), often before the coordinator gets back to writing status.json: without this it
 * would keep saying "running". Two buffers: the handler reads the published one while the next is rendered. */
static char *g_snap[2];
static size_t g_snap_cap;
static volatile sig_atomic_t g_snap_len[2];
static volatile sig_atomic_t g_snap_cur = -1; /* -1: disarmed */
static char g_snap_path[PL_PATH_MAX + 32], g_snap_tmp[PL_PATH_MAX + 48];

void pl_status_snapshot_write(void) {
    const int cur = g_snap_cur;
    if (cur < 0) return;
    const int saved = errno;
    int fd = open(g_snap_tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        const char *p = g_snap[cur];
        size_t left = (size_t)g_snap_len[cur];
        int ok = 1;
        while (left > 0) {
            ssize_t w = write(fd, p, left);
            if (w <= 0) {
                ok = 0;
                break;
            }
            p += w;
            left -= (size_t)w;
        }
        if (close(fd) != 0) ok = 0;
        if (ok)
            (void)rename(g_snap_tmp, g_snap_path);
        else
            (void)unlink(g_snap_tmp);
    }
    errno = saved;
}

int pl_status_snapshot_arm(const pl_run *run, int world_size) {
    g_snap_cap = 4096 + 512 * (size_t)world_size; /* a status.json: a header and one line per rank */
    for (int i = 0; i < 2; ++i) IPR_TRY_PTR(g_snap[i] = ipr_malloc(g_snap_cap, "status snapshot"));
    pl_run_path(run, "status.json", g_snap_path, sizeof g_snap_path);
    snprintf(g_snap_tmp, sizeof g_snap_tmp, "%s.tmp.signal", g_snap_path);
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* publish the next snapshot (armed by the first one) */
static void snapshot_publish(const pl_buf *b) {
    if (!g_snap[0] || b->len > g_snap_cap) return;
    const int next = g_snap_cur == 0 ? 1 : 0;
    memcpy(g_snap[next], b->data, b->len);
    g_snap_len[next] = (sig_atomic_t)b->len;
    g_snap_cur = next;
}

void pl_status_snapshot_disarm(void) {
    g_snap_cur = -1;
    for (int i = 0; i < 2; ++i) {
        free(g_snap[i]);
        g_snap[i] = NULL;
    }
}

/* ---------------- status.json and the progress line ---------------- */

static void fmt_duration(double s, char *out, size_t cap) {
    if (!isfinite(s) || s < 0) {
        snprintf(out, cap, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, cap, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60)
        snprintf(out, cap, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(out, cap, "%lds", t);
}

/* status.json: `draining` is true while an interrupted run's batches finish and commit */
void pl_status_render(const pl_progress *s, const char *state, int draining, pl_buf *b) {
    const pl_run *run = s->run;
    double t = pl_now(), el = t - s->t_start;
    double rate = el > 0 ? (double)(s->chains_done) / el : 0.0;
    double nrate = el > 0 ? s->nfe_done / el : 0.0;
    double eta = nrate > 0 ? s->nfe_left / nrate : -1.0;
    char stamp[32];
    pl_utc_stamp((int64_t)t, stamp, sizeof stamp, 0);
    pl_buf_printf(b, "{\n  \"format\": \"ipr-status\",\n  \"run_id\": \"%s\",\n  \"session\": \"%s\",\n  \"state\": \"%s\",\n",
                  run->run_id, run->session, state);
    pl_buf_printf(b, "  \"draining\": %s,\n", draining ? "true" : "false");
    pl_buf_printf(b, "  \"updated\": \"%s\",\n  \"updated_epoch\": %.3f,\n  \"started_epoch\": %.3f,\n", stamp, t,
                  s->t_start);
    pl_buf_printf(b, "  \"progress_interval\": %.3f,\n  \"world_size\": %d,\n  \"shard\": ", s->progress_interval,
                  s->world_size);
    if (s->nshards > 0)
        pl_buf_printf(b, "\"%d/%d\",\n", s->shard, s->nshards);
    else
        pl_buf_add(b, "null,\n");
    pl_buf_printf(b,
                  "  \"units_total\": %d,\n  \"units_in_scope\": %d,\n  \"units_done\": %d,\n  \"units_done_before\": %d,\n"
                  "  \"units_failed\": %d,\n  \"units_pending\": %d,\n",
                  s->units_total, s->in_scope, s->done_before + s->done_now, s->done_before, s->failed,
                  s->in_scope - s->done_before - s->done_now - s->failed);
    pl_buf_printf(b, "  \"chains_done\": %llu,\n  \"chains_per_s\": %.4f,\n  \"eta_s\": ", (unsigned long long)s->chains_done,
                  rate);
    if (eta >= 0)
        pl_buf_printf(b, "%.1f,\n", eta);
    else
        pl_buf_add(b, "null,\n");
    pl_buf_add(b, "  \"ranks\": [");
    for (int r = 0; r < s->world_size; ++r) {
        double seen = r == 0 ? t : s->last_seen[r];
        int busy = r == 0 ? s->own_busy > 0 : s->outstanding[r] > 0;
        int hang = busy && t - seen > 3.0 * s->progress_interval && r != 0;
        pl_buf_printf(b,
                      "%s\n    {\"rank\": %d, \"host\": \"%s\", \"device\": \"%s\", \"last_heartbeat_epoch\": %.3f, "
                      "\"units_done\": %d, \"busy\": %s, \"finished\": %s, \"suspect_hang\": %s}",
                      r ? "," : "", r, s->hosts[r], s->devices[r], seen, s->units_by_rank[r], busy ? "true" : "false",
                      (r && s->final[r]) ? "true" : "false", hang ? "true" : "false");
    }
    pl_buf_add(b, "\n  ]\n}\n");
}

int pl_status_write(const pl_progress *s, const char *state, int draining, int snapshot) {
    pl_buf b;
    pl_buf_init(&b);
    pl_status_render(s, state, draining, &b);
    int rc = IPR_ERR;
    if (pl_buf_ok(&b) == IPR_OK) {
        char path[PL_PATH_MAX + 32];
        pl_run_path(s->run, "status.json", path, sizeof path);
        rc = pl_write_file_atomic(path, b.data, b.len);
    }
    if (snapshot) { /* and what it would say if a signal stopped the run now */
        pl_buf_clear(&b);
        pl_status_render(s, "interrupted", 0, &b);
        if (pl_buf_ok(&b) == IPR_OK) snapshot_publish(&b);
    }
    pl_buf_free(&b);
    return rc;
}

void pl_progress_line(const pl_progress *s, char *out, size_t cap) {
    double el = pl_now() - s->t_start;
    int done = s->done_before + s->done_now;
    double pct = s->in_scope > 0 ? 100.0 * done / s->in_scope : 100.0;
    uint64_t partial = s->chains_done;
    for (int r = 0; r < s->world_size; ++r) partial += (uint64_t)s->chains_partial[r];
    double rate = el > 0 ? (double)partial / el : 0.0;
    double nrate = el > 0 ? s->nfe_done / el : 0.0;
    char eta[32];
    fmt_duration(nrate > 0 ? s->nfe_left / nrate : -1.0, eta, sizeof eta);
    snprintf(out, cap, "[%3.0f%%] %d/%d units | %.2f chains/s | ETA %s | failed %d | ranks %d%s", pct, done, s->in_scope,
             rate, eta, s->failed, s->world_size, s->draining ? " | draining" : "");
}

/* ---------------- provenance ---------------- */

int pl_session_provenance_write(const pl_run *run, int world_size, double t_start, const char *bindings, size_t stride) {
    pl_buf pb;
    pl_buf_init(&pb);
    pl_buf_printf(&pb, "{\n  \"session\": \"%s\",\n  \"world_size\": %d,\n  \"started_epoch\": %.0f,\n  \"ranks\": [",
                  run->session, world_size, t_start);
    for (int r = 0; r < world_size; ++r) pl_buf_printf(&pb, "%s\n    %s", r ? "," : "", bindings + (size_t)r * stride);
    const char *envs[] = {"SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_NNODES",
                          "SLURM_NTASKS", "SLURM_RESTART_COUNT", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS"};
    pl_buf_add(&pb, "\n  ],\n  \"env\": {");
    for (size_t i = 0; i < sizeof envs / sizeof envs[0]; ++i) {
        const char *v = getenv(envs[i]);
        pl_buf_printf(&pb, "%s\n    \"%s\": ", i ? "," : "", envs[i]);
        if (v)
            pl_buf_json_str(&pb, v);
        else
            pl_buf_add(&pb, "null");
    }
    pl_buf_add(&pb, "\n  }\n}\n");
    char path[PL_PATH_MAX + 160];
    snprintf(path, sizeof path, "%s/provenance/session-%s.json", run->dir, run->session);
    int rc = IPR_ERR;
    if (pl_buf_ok(&pb) == IPR_OK) rc = pl_write_file_atomic(path, pb.data, pb.len);
    pl_buf_free(&pb);
    return rc;
}
