/* runlock.c: the run directory's locks (runlock.h): fcntl(F_SETLK) on whole files, which works across the hosts of a
 * shared file system where flock(2) may not, and is released by the kernel when the holder dies. */
#define _POSIX_C_SOURCE 200809L
#include "pipeline/runlock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ipr/common.h"
#include "pipeline/limits.h"

void pl_run_lock_release(pl_run_lock *lk) {
    /* closing any descriptor of a file drops this process's fcntl locks on it */
    if (lk->fd >= 0) close(lk->fd);
    if (lk->shard_fd >= 0) close(lk->shard_fd);
    lk->fd = lk->shard_fd = -1;
}

enum { LOCK_OK = 0, LOCK_HELD = 1, LOCK_NONE = 2, LOCK_ERR = -1 };

/* Open `path` and lock it whole (F_RDLCK shared, F_WRLCK exclusive). LOCK_OK: *fd holds it; LOCK_HELD: another
 * process holds a conflicting lock; LOCK_NONE: the file system has no locks (warned); LOCK_ERR: error recorded. */
static int lock_whole(const char *path, short type, int *fd) {
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (*fd < 0) {
        ipr_errno_set(__FILE__, __LINE__, path);
        return LOCK_ERR;
    }
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET; /* l_start = l_len = 0: the whole file */
    if (fcntl(*fd, F_SETLK, &fl) == 0) return LOCK_OK;
    const int e = errno;
    close(*fd);
    *fd = -1;
    if (e == EACCES || e == EAGAIN) return LOCK_HELD;
    if (e == ENOLCK || e == EOPNOTSUPP || e == EINVAL) {
        ipr_log(IPR_LOG_WARN, "%s: this file system has no locks (%s): concurrent `ipr run`s of this directory are not "
                              "refused; run one at a time",
                path, strerror(e));
        return LOCK_NONE;
    }
    errno = e;
    ipr_errno_set(__FILE__, __LINE__, path);
    return LOCK_ERR;
}

/* the value of a "KEY VALUE" line of text, or "?" */
static void field(const char *text, const char *key, char *out, size_t cap) {
    snprintf(out, cap, "?");
    const size_t k = strlen(key);
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, key, k) == 0 && line[k] == ' ') {
            const char *v = line + k + 1;
            size_t n = strcspn(v, "\n");
            if (n >= cap) n = cap - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return;
        }
    }
}

/* 1 when a process holds a lock on `path` that conflicts with F_WRLCK; *out: "host H, PID P, started T" from the
 * file's text, the kernel's PID where the text says none */
static int holder(const char *path, char *out, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    struct flock q;
    memset(&q, 0, sizeof q);
    q.l_type = F_WRLCK;
    q.l_whence = SEEK_SET;
    const int held = fcntl(fd, F_GETLK, &q) == 0 && q.l_type != F_UNLCK;
    char text[512] = "", host[128], pid[32], started[64];
    const ssize_t n = pread(fd, text, sizeof text - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    close(fd);
    field(text, "host", host, sizeof host);
    field(text, "pid", pid, sizeof pid);
    field(text, "started", started, sizeof started);
    if (held && strcmp(pid, "?") == 0) snprintf(pid, sizeof pid, "%ld", (long)q.l_pid);
    snprintf(out, cap, "host %s, PID %s, started %s", host, pid, started);
    return held;
}

/* 1 when a shard lock of dir is held (an unsharded run meets the shards' read locks on run.lock): *out names it */
static int shard_holder(const char *dir, char *out, size_t cap) {
    int found = 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, "run-shard", 9) != 0 || n < 5 || strcmp(e->d_name + n - 5, ".lock") != 0) continue;
        char path[PL_PATH_MAX + 300], who[320];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (holder(path, who, sizeof who)) {
            snprintf(out, cap, "%.*s: %s", (int)(n - 5), e->d_name, who);
            found = 1;
            break;
        }
    }
    closedir(d);
    return found;
}

/* say who holds the file we write-locked, for the next one's message (the lock holds even if this cannot be written) */
static void note_holder(int fd, const char *path) {
    char host[128] = "unknown", stamp[32], text[400];
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    const time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    const int len = snprintf(text, sizeof text, "host %s\npid %ld\nstarted %s\n", host, (long)getpid(), stamp);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != len)
        ipr_log(IPR_LOG_WARN, "%s: cannot record the holder (%s); the lock holds", path, strerror(errno));
}

int pl_run_lock_take(const char *dir, int shard, int nshards, pl_run_lock *lk) {
    char path[PL_PATH_MAX + 32], shard_path[PL_PATH_MAX + 64], who[400];
    pl_run_lock_release(lk);
    snprintf(path, sizeof path, "%s/%s", dir, PL_RUN_LOCK_FILE);
    int rc = lock_whole(path, nshards > 0 ? F_RDLCK : F_WRLCK, &lk->fd);
    if (rc == LOCK_ERR) goto fail;
    if (rc == LOCK_HELD) {
        /* a shard's read lock (its own file names it) or an unsharded run's write lock (run.lock names it) */
        if (nshards > 0 || !shard_holder(dir, who, sizeof who)) holder(path, who, sizeof who);
        IPR_FAIL("%s is in use by another `ipr run` (%s): a run directory takes one run at a time (or one per "
                 "shard); wait for it to end, or stop it (SIGUSR1 drains it), then run again",
                 dir, who);
    }
    if (rc == LOCK_NONE || nshards == 0) {
        if (rc == LOCK_OK) note_holder(lk->fd, path);
        return IPR_OK;
    }
    snprintf(shard_path, sizeof shard_path, "%s/run-shard%dof%d.lock", dir, shard, nshards);
    rc = lock_whole(shard_path, F_WRLCK, &lk->shard_fd);
    if (rc == LOCK_ERR) goto fail;
    if (rc == LOCK_HELD) {
        holder(shard_path, who, sizeof who);
        IPR_FAIL("%s: shard %d/%d is in use by another `ipr run --shard %d/%d` (%s): wait for it to end, or stop it, "
                 "then run again",
                 dir, shard, nshards, shard, nshards, who);
    }
    if (rc == LOCK_OK) note_holder(lk->shard_fd, shard_path);
    return IPR_OK;
fail:
    pl_run_lock_release(lk);
    return IPR_ERR;
}
