/* rundir.c: run directory creation and identity checks, per-rank logs, journals and their scan on resume.
 * Everything a crash can interrupt is written to a temporary name, fsync'ed and renamed (pipeline-notes 3, 5). */
#define _POSIX_C_SOURCE 200809L
#include "pipeline/rundir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ipr/hash.h"
#include "ipr/instances.h"
#include "ipr/mnist.h"
#include "ipr/model.h"
#include "pipeline/json.h"

int pl_uuid4(char out[40]) {
    unsigned char b[16];
    FILE *fp = NULL;
    IPR_IO((fp = fopen("/dev/urandom", "rb")) != NULL, "/dev/urandom");
    IPR_IO(fread(b, 1, 16, fp) == 16, "/dev/urandom");
    IPR_TRY(ipr_fclose(&fp, "/dev/urandom"));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
             b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return IPR_OK;
fail:
    if (fp) fclose(fp);
    return IPR_ERR;
}

int pl_mkdirs(const char *path, int mode) {
    char buf[PL_PATH_MAX];
    const size_t n = strlen(path);
    /* a truncated copy would create directories the caller never named */
    IPR_CHECK(n < sizeof buf, "directory path of %zu bytes is longer than %d: %.64s...", n, PL_PATH_MAX - 1, path);
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1;; ++p) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST) {
                ipr_errno_set(__FILE__, __LINE__, buf);
                return IPR_ERR;
            }
            *p = c;
            if (c == '\0') break;
        }
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

void pl_run_path(const pl_run *run, const char *rel, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s", run->dir, rel);
}

static int write_text(const char *dir, const char *rel, const char *text) {
    char path[PL_PATH_MAX + 256];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return pl_write_file_atomic(path, text, strlen(text));
}

static int abs_path(const char *dir, char *out, size_t cap) {
    if (dir[0] == '/') {
        snprintf(out, cap, "%s", dir);
    } else {
        char cwd[PL_PATH_MAX];
        IPR_IO(getcwd(cwd, sizeof cwd) != NULL, "getcwd");
        int n = snprintf(out, cap, "%s/%s", cwd, dir);
        IPR_CHECK(n > 0 && (size_t)n < cap, "path too long: %s/%s", cwd, dir);
    }
    size_t n = strlen(out);
    while (n > 1 && out[n - 1] == '/') out[--n] = '\0';
    return IPR_OK;
fail:
    return IPR_ERR;
}

static int dir_is_empty(const char *path) {
    DIR *d = opendir(path);
    if (!d) return 0;
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            empty = 0;
            break;
        }
    closedir(d);
    return empty;
}

/* A model card: what the checkpoint is (either backbone), without its weights; as the plan read it. */
static int model_card(const pl_plan *plan, int m, pl_buf *b) {
    const pl_model *pm = &plan->resolved->model[m];
    char arch[1024];
    if (ipr_model_info_json(&pm->info, arch, sizeof arch) < 0) goto fail;
    pl_buf_add(b, "{\n  \"name\": ");
    pl_buf_json_str(b, plan->grid.model_name[m]);
    pl_buf_add(b, ",\n  \"path\": ");
    pl_buf_json_str(b, pm->path);
    pl_buf_printf(b, ",\n  \"sha256\": \"%s\",\n  \"size_bytes\": %lld,\n", plan->grid.model_sha256[m],
                  (long long)pm->size_bytes);
    pl_buf_printf(b, "  \"benchmark\": \"%s\",\n  \"architecture\": \"%s\",\n  %s\n}\n",
                  ipr_bench_name(plan->grid.bench), pm->info.arch, arch);
    return pl_buf_ok(b);
fail:
    return IPR_ERR;
}

static int parse_model_shas(const char *json, pl_run *out) {
    const char *p = pl_json_find(json, "model_sha256");
    IPR_CHECK(p && *p == '[', "run.json: model_sha256 missing");
    ++p;
    for (int i = 0; i < PL_MAX_MODELS; ++i) {
        while (*p == ' ' || *p == ',' || *p == '\n') ++p;
        if (*p != '"') break;
        p = pl_json_parse_str(p, out->model_sha256[i], 65);
        IPR_CHECK(p != NULL, "run.json: malformed model_sha256");
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

int pl_run_load(const char *dir, pl_run *out, char **run_json) {
    char path[PL_PATH_MAX + 32];
    char *json = NULL, fmt[64];
    memset(out, 0, sizeof *out);
    IPR_TRY(abs_path(dir, out->dir, sizeof out->dir));
    snprintf(path, sizeof path, "%s/run.json", out->dir);
    if (pl_read_file(path, &json, NULL) != IPR_OK) {
        ipr_error_context("%s is not an ipr run directory (no readable run.json)", out->dir);
        goto fail;
    }
    IPR_TRY(pl_json_get_str(json, "format", fmt, sizeof fmt));
    IPR_CHECK(strcmp(fmt, PL_RUN_FORMAT) == 0, "format is '%s', not '%s'", fmt, PL_RUN_FORMAT);
    IPR_TRY(pl_json_get_str(json, "run_id", out->run_id, sizeof out->run_id));
    IPR_TRY(pl_json_get_i64(json, "created_epoch", &out->created_epoch));
    IPR_TRY(parse_model_shas(json, out));
    if (pl_json_find(json, "mnist_pool_sha256")) { /* sudoku runs since the curated pools */
        IPR_TRY(pl_json_get_str(json, "mnist_pool", out->mnist_pool, sizeof out->mnist_pool));
        IPR_TRY(pl_json_get_str(json, "mnist_pool_sha256", out->mnist_pool_sha256, sizeof out->mnist_pool_sha256));
    }
    if (pl_json_find(json, "instances_file_sha256")) { /* runs of an instance file (instances.file) */
        IPR_TRY(pl_json_get_str(json, "instances_file", out->instances_file, sizeof out->instances_file));
        IPR_TRY(pl_json_get_str(json, "instances_format", out->instances_format, sizeof out->instances_format));
        IPR_TRY(pl_json_get_str(json, "instances_file_sha256", out->instances_sha256, sizeof out->instances_sha256));
    }
    if (run_json)
        *run_json = json;
    else
        free(json);
    return IPR_OK;
fail:
    /* name the file: "JSON key ... missing" alone does not say which of a run's files is damaged */
    if (json) ipr_error_context("%s is damaged", path);
    free(json);
    return IPR_ERR;
}

static int create_run(const char *final_dir, const pl_plan *plan, const pl_run_texts *texts, pl_run *run,
                      int *lost_race) {
    const pl_grid *g = &plan->grid;
    char tmp[PL_PATH_MAX + 64], path[PL_PATH_MAX + 128];
    pl_buf b;
    pl_buf_init(&b);
    *lost_race = 0;
    snprintf(tmp, sizeof tmp, "%s.creating.%ld", final_dir, (long)getpid());
    static const char *subdirs[] = {"config", "journal", "logs", "segments", "models", "provenance"};
    for (size_t i = 0; i < sizeof subdirs / sizeof subdirs[0]; ++i) {
        snprintf(path, sizeof path, "%s/%s", tmp, subdirs[i]);
        IPR_TRY(pl_mkdirs(path, 0755));
    }
    snprintf(path, sizeof path, "%s/config/input.yaml", tmp);
    IPR_TRY(pl_write_file_atomic(path, texts->yaml, texts->yaml_len));
    IPR_TRY(write_text(tmp, "config/resolved.json", texts->resolved_json));
    IPR_TRY(write_text(tmp, "config/operational.json", texts->operational_json));
    IPR_TRY(write_text(tmp, "config/sources.json", texts->sources_json));
    for (int i = 0; i < texts->n_sets; ++i) pl_buf_printf(&b, "%s\n", texts->sets[i]);
    pl_buf_add(&b, "");
    IPR_TRY(pl_buf_ok(&b));
    IPR_TRY(write_text(tmp, "config/overrides.txt", b.data));
    for (int m = 0; m < g->n_models; ++m) {
        char rel[128];
        pl_buf_clear(&b);
        IPR_TRY(model_card(plan, m, &b));
        snprintf(rel, sizeof rel, "models/%s.json", g->model_name[m]);
        IPR_TRY(write_text(tmp, rel, b.data));
    }
    IPR_TRY(pl_uuid4(run->run_id));
    run->created_epoch = (int64_t)time(NULL);
    char stamp[32];
    pl_utc_stamp(run->created_epoch, stamp, sizeof stamp, 0);
    pl_buf_clear(&b);
    pl_buf_printf(&b, "{\n  \"format\": \"%s\",\n  \"schema_version\": %d,\n  \"run_id\": \"%s\",\n  \"name\": ",
                  PL_RUN_FORMAT, PL_SCHEMA_VERSION, run->run_id);
    pl_buf_json_str(&b, plan->resolved->name);
    pl_buf_printf(&b, ",\n  \"config_sha256\": \"%s\",\n  \"model_sha256\": [", g->config_sha256);
    for (int m = 0; m < g->n_models; ++m) pl_buf_printf(&b, "%s\"%s\"", m ? ", " : "", run->model_sha256[m]);
    pl_buf_add(&b, "]");
    if (run->mnist_pool_sha256[0])
        pl_buf_printf(&b, ",\n  \"mnist_pool\": \"%s\",\n  \"mnist_pool_sha256\": \"%s\"", run->mnist_pool,
                      run->mnist_pool_sha256);
    if (run->instances_sha256[0]) {
        pl_buf_add(&b, ",\n  \"instances_file\": ");
        pl_buf_json_str(&b, run->instances_file);
        pl_buf_printf(&b, ",\n  \"instances_format\": \"%s\",\n  \"instances_file_sha256\": \"%s\"",
                      run->instances_format, run->instances_sha256);
    }
    pl_buf_printf(&b, ",\n  \"created\": \"%s\",\n  \"created_epoch\": %lld,\n  \"limited\": %s,\n", stamp,
                  (long long)run->created_epoch, g->limited ? "true" : "false");
    pl_buf_printf(&b, "  \"producer\": \"ipr %s\",\n  \"git_sha\": \"%s\"\n}\n", IPR_VERSION, IPR_GIT_SHA);
    IPR_TRY(pl_buf_ok(&b));
    IPR_TRY(write_text(tmp, "run.json", b.data));
    /* publish: rename onto the (absent or empty) RUN_DIR; a concurrent shard may have won the race */
    if (rename(tmp, final_dir) != 0) {
        if (errno == ENOTEMPTY || errno == EEXIST) {
            *lost_race = 1;
            char cmd_path[PL_PATH_MAX + 64];
            snprintf(cmd_path, sizeof cmd_path, "%s", tmp);
            /* remove our unpublished copy (files we just wrote, two levels deep) */
            for (size_t i = 0; i < sizeof subdirs / sizeof subdirs[0]; ++i) {
                snprintf(path, sizeof path, "%s/%s", cmd_path, subdirs[i]);
                DIR *d = opendir(path);
                if (d) {
                    struct dirent *e;
                    while ((e = readdir(d)) != NULL) {
                        char f[PL_PATH_MAX + 400];
                        if (e->d_name[0] == '.') continue;
                        snprintf(f, sizeof f, "%s/%s", path, e->d_name);
                        remove(f);
                    }
                    closedir(d);
                }
                remove(path);
            }
            snprintf(path, sizeof path, "%s/run.json", cmd_path);
            remove(path);
            remove(cmd_path);
            pl_buf_free(&b);
            return IPR_OK;
        }
        IPR_IO(0, final_dir);
    }
    pl_buf_free(&b);
    return IPR_OK;
fail:
    ipr_error_context("creating run directory %s", final_dir);
    pl_buf_free(&b);
    return IPR_ERR;
}

int pl_run_open(const char *dir, const pl_plan *plan, const pl_run_texts *texts, int force_new, const char *shard_tag,
                pl_run *out) {
    char *stored = NULL, *old_cfg = NULL, *diff = NULL;
    char path[PL_PATH_MAX + 64];
    const pl_grid *g = &plan->grid;
    const ipr_task_config *tc = NULL;
    memset(out, 0, sizeof *out);
    IPR_CHECK(plan->resolved != NULL, "internal: a run directory opens for a built plan, not one read from plan.h5");
    tc = &plan->resolved->task;
    IPR_TRY(abs_path(dir, out->dir, sizeof out->dir));
    memcpy(out->model_sha256, g->model_sha256, sizeof out->model_sha256); /* the plan hashed each checkpoint */
    if (tc->instances_file) { /* the instances, by content (also in config_sha256) */
        snprintf(out->instances_file, sizeof out->instances_file, "%s", tc->instances_file);
        snprintf(out->instances_format, sizeof out->instances_format, "%s",
                 ipr_instances_format_name((ipr_instances_format)tc->instances_format));
        snprintf(out->instances_sha256, sizeof out->instances_sha256, "%s", tc->instances_sha256);
    }
    /* the digit images the instances show, by content; a datagen file's images are its own (its hash above) */
    if (g->bench == IPR_BENCH_SUDOKU && !(tc->instances_file && tc->instances_format == IPR_INSTANCES_DATAGEN)) {
        ipr_mnist_pool pool;
        /* puzzle files are drawn from the test pool, whatever `split` says (it does not apply to them) */
        if (ipr_mnist_pool_load(tc->mnist_dir ? tc->mnist_dir : ipr_mnist_default_dir(),
                                tc->instances_file ? IPR_SPLIT_TEST : tc->split, &pool) != IPR_OK) {
            ipr_error_context("key 'mnist_dir'");
            goto fail;
        }
        snprintf(out->mnist_pool, sizeof out->mnist_pool, "%s", pool.name);
        memcpy(out->mnist_pool_sha256, pool.sha256, sizeof out->mnist_pool_sha256);
        ipr_mnist_pool_free(&pool);
    }
    for (int attempt = 0; attempt < 3; ++attempt) {
        struct stat sb;
        snprintf(path, sizeof path, "%s/run.json", out->dir);
        if (stat(path, &sb) == 0) {
            pl_run old;
            IPR_TRY(pl_run_load(out->dir, &old, &stored));
            char old_sha[65] = "";
            IPR_TRY(pl_json_get_str(stored, "config_sha256", old_sha, sizeof old_sha));
            int same = strcmp(old_sha, g->config_sha256) == 0;
            int model_changed = -1;
            for (int m = 0; m < g->n_models && same; ++m)
                if (strcmp(old.model_sha256[m], out->model_sha256[m]) != 0) {
                    same = 0;
                    model_changed = m;
                }
            /* a run recorded before the pools had hashes has none to compare */
            const int pool_changed = same && old.mnist_pool_sha256[0] &&
                                     strcmp(old.mnist_pool_sha256, out->mnist_pool_sha256) != 0;
            if (pool_changed) same = 0;
            /* the config hash covers the file's SHA-256 already; this names the cause */
            const int file_changed = old.instances_sha256[0] && out->instances_sha256[0] &&
                                     strcmp(old.instances_sha256, out->instances_sha256) != 0;
            if (same) {
                memcpy(out->run_id, old.run_id, sizeof out->run_id);
                out->created_epoch = old.created_epoch;
                out->resumed = 1;
                break;
            }
            if (!force_new) {
                char cpath[PL_PATH_MAX + 64];
                snprintf(cpath, sizeof cpath, "%s/config/resolved.json", out->dir);
                if (model_changed >= 0) {
                    IPR_FAIL("%s holds a run whose checkpoint %s had another SHA-256 (%.12s..., now %.12s...): the model "
                             "file changed. Use --force-new to start over (the old directory is kept aside) or "
                             "another --output",
                             out->dir, g->model_name[model_changed], old.model_sha256[model_changed],
                             out->model_sha256[model_changed]);
                }
                if (file_changed)
                    IPR_FAIL("%s holds a run whose instances file %s had another SHA-256 (%.12s..., now %.12s...): the file "
                             "changed. Use --force-new to start over (the old directory is kept aside) or another "
                             "--output",
                             out->dir, out->instances_file, old.instances_sha256, out->instances_sha256);
                if (pool_changed)
                    IPR_FAIL("%s holds a run whose Sudoku instances were drawn from another MNIST pool (%s %.12s..., now "
                             "%s %.12s...). Use --force-new to start over (the old directory is kept aside) or another "
                             "--output",
                             out->dir, old.mnist_pool, old.mnist_pool_sha256, out->mnist_pool, out->mnist_pool_sha256);
                if (pl_read_file(cpath, &old_cfg, NULL) == IPR_OK && pl_config_diff(old_cfg, texts->resolved_json, &diff) == IPR_OK)
                    IPR_FAIL("%s holds a run of another config (config_sha256 %.12s..., now %.12s...); changed keys:\n%s"
                             "Use --force-new to start over (the old directory is kept aside) or another --output",
                             out->dir, old_sha, g->config_sha256, diff);
                IPR_FAIL("%s holds a run of another config (config_sha256 %.12s..., now %.12s...). Use --force-new",
                         out->dir, old_sha, g->config_sha256);
            }
            char stamp[32], aside[PL_PATH_MAX + 64];
            pl_utc_stamp((int64_t)time(NULL), stamp, sizeof stamp, 1);
            snprintf(aside, sizeof aside, "%s.replaced-%s", out->dir, stamp);
            IPR_IO(rename(out->dir, aside) == 0, out->dir);
            ipr_log(IPR_LOG_WARN, "--force-new: the earlier run was moved to %s", aside);
            free(stored);
            stored = NULL;
            force_new = 0;
            continue;
        }
        if (stat(out->dir, &sb) == 0) {
            IPR_CHECK(S_ISDIR(sb.st_mode), "%s exists and is not a directory", out->dir);
            IPR_CHECK(dir_is_empty(out->dir),
                      "%s exists, is not empty and holds no run.json: not an ipr run directory; choose another --output",
                      out->dir);
        } else {
            char parent[PL_PATH_MAX];
            snprintf(parent, sizeof parent, "%s", out->dir);
            char *slash = strrchr(parent, '/');
            if (slash && slash != parent) {
                *slash = '\0';
                IPR_TRY(pl_mkdirs(parent, 0755));
            }
        }
        int lost = 0;
        IPR_TRY(create_run(out->dir, plan, texts, out, &lost));
        if (!lost) break;
        /* another process created it first: loop and check it like an existing run */
    }
    IPR_CHECK(out->run_id[0], "could not create or open %s", out->dir);
    {
        char stamp[32];
        pl_utc_stamp((int64_t)time(NULL), stamp, sizeof stamp, 1);
        snprintf(out->session, sizeof out->session, "s%s-p%ld%s%s", stamp, (long)getpid(), shard_tag ? "-" : "",
                 shard_tag ? shard_tag : "");
    }
    free(stored);
    free(old_cfg);
    free(diff);
    return IPR_OK;
fail:
    free(stored);
    free(old_cfg);
    free(diff);
    return IPR_ERR;
}

/* ---------------- per-rank log (log.c) ---------------- */

int pl_log_open(const pl_run *run, int rank) {
    char path[PL_PATH_MAX + 160];
    snprintf(path, sizeof path, "%s/logs/%s-r%05d.log", run->dir, run->session, rank);
    return pl_log_open_file(path, rank);
}

/* ---------------- journals ---------------- */

int pl_journal_open(pl_journal *j, const pl_run *run, int rank) {
    memset(j, 0, sizeof *j);
    snprintf(j->path, sizeof j->path, "%s/journal/%s-r%05d.jsonl", run->dir, run->session, rank);
    j->fp = fopen(j->path, "a");
    if (!j->fp) {
        ipr_errno_set(__FILE__, __LINE__, j->path);
        return IPR_ERR;
    }
    return IPR_OK;
}

int pl_journal_close(pl_journal *j) {
    int rc = IPR_OK;
    if (j->fp && fclose(j->fp) != 0) {
        ipr_errno_set(__FILE__, __LINE__, j->path);
        rc = IPR_ERR;
    }
    j->fp = NULL;
    return rc;
}

/* One record: write(2) straight to the file (O_APPEND), no stdio buffer, so a failed append leaves nothing queued
 * that a later flush could add behind the error; then fsync. A short write continues where it stopped. */
static int journal_append(pl_journal *j, const pl_buf *b) {
    IPR_TRY(pl_buf_ok(b));
    const int fd = fileno(j->fp);
    for (size_t done = 0; done < b->len;) {
        ssize_t w = write(fd, b->data + done, b->len - done);
        if (w < 0 && errno == EINTR) continue;
        IPR_IO(w > 0, j->path);
        done += (size_t)w;
    }
    IPR_IO(fsync(fd) == 0, j->path);
    return IPR_OK;
fail:
    return IPR_ERR;
}

int pl_journal_commit(pl_journal *j, const char *segment_rel, const char *sha256, const uint64_t *unit_ids, int n,
                      uint64_t chains, double wall_s) {
    pl_buf b;
    pl_buf_init(&b);
    pl_buf_add(&b, "{\"ev\":\"commit\",\"segment\":");
    pl_buf_json_str(&b, segment_rel);
    pl_buf_printf(&b, ",\"sha256\":\"%s\",\"chains\":%llu,\"wall_s\":%.3f,\"units\":[", sha256,
                  (unsigned long long)chains, wall_s);
    for (int i = 0; i < n; ++i) pl_buf_printf(&b, "%s\"%016llx\"", i ? "," : "", (unsigned long long)unit_ids[i]);
    pl_buf_add(&b, "]}\n");
    int rc = journal_append(j, &b);
    pl_buf_free(&b);
    return rc;
}

int pl_journal_fail(pl_journal *j, uint64_t unit_id, int attempt, const char *reason) {
    pl_buf b;
    pl_buf_init(&b);
    pl_buf_printf(&b, "{\"ev\":\"fail\",\"unit\":\"%016llx\",\"attempt\":%d,\"reason\":", (unsigned long long)unit_id,
                  attempt);
    pl_buf_json_str(&b, reason);
    pl_buf_add(&b, "}\n");
    int rc = journal_append(j, &b);
    pl_buf_free(&b);
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int parse_hex_id(const char *s, uint64_t *out) {
    uint64_t v = 0;
    for (int i = 0; i < 16; ++i) {
        char c = s[i];
        int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (d < 0) return IPR_ERR;
        v = (v << 4) | (uint64_t)d;
    }
    if (s[16] != '\0') return IPR_ERR;
    *out = v;
    return IPR_OK;
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; ++s) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

int pl_journal_segment(const pl_journal_state *st, const char *rel) {
    if (!st->hash_cap) return -1;
    for (size_t k = (size_t)(fnv1a(rel) & (uint64_t)(st->hash_cap - 1));; k = (k + 1) & (size_t)(st->hash_cap - 1)) {
        int i = st->seg_hash[k];
        if (i < 0) return -1;
        if (strcmp(st->seg_rel[i], rel) == 0) return i;
    }
}

/* Index of `rel` among the state's segments, adding it (and checking its hash) on first sight.
 * *good = the file exists and matches sha. */
static int segment_slot(pl_journal_state *st, const pl_run *run, const char *rel, const char *sha, int *good,
                        char (*sha_of)[65], int *ok_of, int *cap) {
    int found = pl_journal_segment(st, rel);
    if (found >= 0) {
        *good = ok_of[found] && strcmp(sha_of[found], sha) == 0;
        return found;
    }
    if (st->n_segs == *cap) return -1;
    int i = st->n_segs++;
    snprintf(st->seg_rel[i], sizeof st->seg_rel[i], "%s", rel);
    size_t k = (size_t)(fnv1a(st->seg_rel[i]) & (uint64_t)(st->hash_cap - 1));
    while (st->seg_hash[k] >= 0) k = (k + 1) & (size_t)(st->hash_cap - 1);
    st->seg_hash[k] = i;
    char path[PL_PATH_MAX + 200];
    pl_run_path(run, rel, path, sizeof path);
    ok_of[i] = ipr_sha256_file(path, sha_of[i]) == IPR_OK;
    ipr_error_clear();
    *good = ok_of[i] && strcmp(sha_of[i], sha) == 0;
    return i;
}

/* 1 when `s` (n bytes, no newline) can be the start of a record that a crash cut short: records are
 * {"ev":"...",...} in printable text (UTF-8 allowed in strings), so random bytes almost never pass. */
static int torn_record(const char *s, size_t n) {
    static const char head[] = "{\"ev\":\"";
    const size_t h = sizeof head - 1;
    if (memcmp(s, head, n < h ? n : h) != 0) return 0;
    for (size_t i = 0; i < n; ++i)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f) return 0;
    return 1;
}

static void note_corrupt(pl_journal_state *st, const char *name, int line) {
    if (st->n_corrupt++ == 0) snprintf(st->first_corrupt, sizeof st->first_corrupt, "journal/%s:%d", name, line);
}

int pl_journal_scan(const pl_run *run, const pl_plan *plan, pl_journal_state *st) {
    char dir[PL_PATH_MAX + 16];
    DIR *d = NULL;
    char **names = NULL;
    int n_names = 0, cap_names = 0, cap_segs = 0;
    char *text = NULL;
    char (*sha_of)[65] = NULL;
    int *ok_of = NULL;
    memset(st, 0, sizeof *st);
    st->n_units = plan->n_units;
    IPR_TRY_PTR(st->seg = ipr_malloc((size_t)plan->n_units * sizeof(int), "journal state"));
    IPR_TRY_PTR(st->fails = ipr_calloc((size_t)plan->n_units, sizeof(int), "journal state"));
    for (int i = 0; i < plan->n_units; ++i) st->seg[i] = -1;
    pl_run_path(run, "journal", dir, sizeof dir);
    d = opendir(dir);
    IPR_IO(d != NULL, dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t L = strlen(e->d_name);
        if (L < 7 || strcmp(e->d_name + L - 6, ".jsonl") != 0) continue;
        if (n_names == cap_names) {
            cap_names = cap_names ? 2 * cap_names : 64;
            char **p = realloc(names, (size_t)cap_names * sizeof *names);
            IPR_CHECK(p != NULL, "out of memory listing journals");
            names = p;
        }
        IPR_TRY_PTR(names[n_names] = strdup(e->d_name));
        n_names++;
    }
    closedir(d);
    d = NULL;
    qsort(names, (size_t)n_names, sizeof *names, cmp_str);
    /* at most one segment per commit record: size the segment table from the line count */
    for (int f = 0; f < n_names; ++f) {
        char path[PL_PATH_MAX + 300];
        size_t len = 0;
        snprintf(path, sizeof path, "%s/%s", dir, names[f]);
        IPR_TRY(pl_read_file(path, &text, &len));
        for (size_t i = 0; i < len; ++i)
            if (text[i] == '\n') cap_segs++;
        free(text);
        text = NULL;
    }
    if (cap_segs < 1) cap_segs = 1;
    IPR_TRY_PTR(st->seg_rel = ipr_calloc((size_t)cap_segs, sizeof *st->seg_rel, "segment list"));
    IPR_TRY_PTR(sha_of = ipr_calloc((size_t)cap_segs, sizeof *sha_of, "segment hashes"));
    IPR_TRY_PTR(ok_of = ipr_calloc((size_t)cap_segs, sizeof *ok_of, "segment checks"));
    for (st->hash_cap = 2; st->hash_cap < 2 * cap_segs; st->hash_cap *= 2) {
    }
    IPR_TRY_PTR(st->seg_hash = ipr_malloc((size_t)st->hash_cap * sizeof(int), "segment index"));
    for (int i = 0; i < st->hash_cap; ++i) st->seg_hash[i] = -1;
    for (int f = 0; f < n_names; ++f) {
        char path[PL_PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", dir, names[f]);
        size_t len = 0;
        IPR_TRY(pl_read_file(path, &text, &len));
        char *line = text, *end = text + len;
        for (int lineno = 1; line < end; ++lineno) {
            char *nl = memchr(line, '\n', (size_t)(end - line));
            if (!nl) {
                /* a torn last line (no newline) was never fsync'ed as a record: ignore it, unless it is not
                 * even the start of one */
                if (!torn_record(line, (size_t)(end - line))) note_corrupt(st, names[f], lineno);
                break;
            }
            *nl = '\0';
            char ev[16] = "";
            if (memchr(line, '\0', (size_t)(nl - line)) != NULL || pl_json_get_str(line, "ev", ev, sizeof ev) != IPR_OK ||
                (strcmp(ev, "commit") != 0 && strcmp(ev, "fail") != 0)) {
                ipr_error_clear();
                note_corrupt(st, names[f], lineno);
                line = nl + 1;
                continue;
            }
            if (strcmp(ev, "commit") == 0) {
                char rel[160], sha[65];
                const char *u = pl_json_find(line, "units");
                if (pl_json_get_str(line, "segment", rel, sizeof rel) == IPR_OK &&
                    pl_json_get_str(line, "sha256", sha, sizeof sha) == IPR_OK && u && *u == '[') {
                    int good = 0;
                    int si = segment_slot(st, run, rel, sha, &good, sha_of, ok_of, &cap_segs);
                    if (!good && st->n_bad++ == 0) snprintf(st->first_bad, sizeof st->first_bad, "%s", rel);
                    if (u && *u == '[') {
                        ++u;
                        for (;;) {
                            while (*u == ' ' || *u == ',') ++u;
                            if (*u != '"') break;
                            char hex[32];
                            u = pl_json_parse_str(u, hex, sizeof hex);
                            if (!u) break;
                            uint64_t id;
                            int k = parse_hex_id(hex, &id) == IPR_OK ? pl_plan_find(plan, id) : -1;
                            if (k < 0) {
                                st->n_foreign++;
                                continue;
                            }
                            if (good && si >= 0 && st->seg[k] < 0) {
                                st->seg[k] = si;
                                st->n_done++;
                            }
                        }
                    }
                } else {
                    note_corrupt(st, names[f], lineno);
                }
                ipr_error_clear();
            } else if (strcmp(ev, "fail") == 0) {
                char hex[32];
                uint64_t id;
                if (pl_json_get_str(line, "unit", hex, sizeof hex) == IPR_OK && parse_hex_id(hex, &id) == IPR_OK) {
                    int k = pl_plan_find(plan, id);
                    if (k >= 0)
                        st->fails[k]++;
                    else
                        st->n_foreign++;
                } else {
                    note_corrupt(st, names[f], lineno);
                }
                ipr_error_clear();
            }
            line = nl + 1;
        }
        free(text);
        text = NULL;
    }
    for (int f = 0; f < n_names; ++f) free(names[f]);
    free(names);
    free(sha_of);
    free(ok_of);
    return IPR_OK;
fail:
    if (d) closedir(d);
    for (int f = 0; f < n_names; ++f) free(names[f]);
    free(names);
    free(text);
    free(sha_of);
    free(ok_of);
    pl_journal_state_free(st);
    return IPR_ERR;
}

void pl_journal_state_free(pl_journal_state *st) {
    free(st->seg);
    free(st->fails);
    free(st->seg_rel);
    free(st->seg_hash);
    memset(st, 0, sizeof *st);
}

/* 1 when `name` is a temporary file (NAME.tmp.PID, status.json.tmp.signal) that no live process is writing */
static int stale_tmp(const char *name) {
    const char *t = strstr(name, ".tmp.");
    if (!t) return 0;
    char *end = NULL;
    const long pid = strtol(t + 5, &end, 10);
    if (end == t + 5 || *end != '\0') return 1; /* no PID: the signal handler's status.json.tmp.signal */
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Move dir/name to quarantine/sub/name (created as needed) and count it. */
static int quarantine_file(const pl_run *run, const char *sub, const char *dir, const char *name, int *moved) {
    char qdir[PL_PATH_MAX + 400], from[PL_PATH_MAX + 700], to[PL_PATH_MAX + 700];
    snprintf(qdir, sizeof qdir, "%s/quarantine/%s", run->dir, sub);
    IPR_TRY(pl_mkdirs(qdir, 0755));
    snprintf(from, sizeof from, "%s/%s", dir, name);
    snprintf(to, sizeof to, "%s/%s", qdir, name);
    IPR_IO(rename(from, to) == 0, from);
    (*moved)++;
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* Temporary files a killed process left outside segments/ (status.json, results.h5, summaries, DONE, provenance,
 * plan.h5: each written to NAME.tmp.PID and renamed) go to quarantine/ too. Only unsharded sessions call this: they
 * hold the directory alone (runlock.h); a temporary file of a live process (an `ipr merge` beside) stays. */
static int quarantine_tmp(const pl_run *run, int *moved) {
    static const char *dirs[] = {"", "summary", "provenance", "config", "models"};
    DIR *d = NULL;
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; ++i) {
        char dir[PL_PATH_MAX + 32];
        snprintf(dir, sizeof dir, "%s%s%s", run->dir, dirs[i][0] ? "/" : "", dirs[i]);
        d = opendir(dir);
        if (!d) continue;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.' || !stale_tmp(e->d_name)) continue;
            IPR_TRY(quarantine_file(run, dirs[i][0] ? dirs[i] : "top", dir, e->d_name, moved));
        }
        closedir(d);
        d = NULL;
    }
    return IPR_OK;
fail:
    if (d) closedir(d);
    return IPR_ERR;
}

int pl_quarantine(const pl_run *run, const pl_journal_state *st, int *moved) {
    char segdir[PL_PATH_MAX + 16];
    DIR *d = NULL, *sd = NULL;
    int *credited = NULL;
    *moved = 0;
    pl_run_path(run, "segments", segdir, sizeof segdir);
    IPR_TRY(quarantine_tmp(run, moved));
    d = opendir(segdir);
    if (!d) return IPR_OK;
    IPR_TRY_PTR(credited = ipr_calloc((size_t)(st->n_segs + 1), sizeof(int), "segment flags"));
    for (int u = 0; u < st->n_units; ++u)
        if (st->seg[u] >= 0) credited[st->seg[u]] = 1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char sub[PL_PATH_MAX + 300];
        snprintf(sub, sizeof sub, "%s/%s", segdir, e->d_name);
        sd = opendir(sub);
        if (!sd) continue;
        struct dirent *f;
        while ((f = readdir(sd)) != NULL) {
            if (f->d_name[0] == '.') continue;
            char rel[600];
            snprintf(rel, sizeof rel, "segments/%s/%s", e->d_name, f->d_name);
            int referenced = 0;
            /* keep a segment when a commit record names it and some unit is credited to it */
            if (!strstr(f->d_name, ".tmp")) {
                int i = pl_journal_segment(st, rel);
                referenced = i >= 0 && credited[i];
            }
            if (referenced) continue;
            IPR_TRY(quarantine_file(run, e->d_name, sub, f->d_name, moved));
        }
        closedir(sd);
        sd = NULL;
    }
    closedir(d);
    free(credited);
    return IPR_OK;
fail:
    if (sd) closedir(sd);
    if (d) closedir(d);
    free(credited);
    return IPR_ERR;
}
