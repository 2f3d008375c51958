/* runlock.c: the run directory's lock (runlock.h): fcntl(F_SETLK) on RUN_DIR/run.lock, which works across the hosts
 * of a shared file system where flock(2) may not, and is released by the kernel when the holder dies. */
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
#include "pipeline/config.h"

void pl_run_lock_release(pl_run_lock *lk) {
    if (lk->fd >= 0) close(lk->fd); /* closing any descriptor of the file drops this process's fcntl locks */
    lk->fd = -1;
}

/* the value of "KEY VALUE" lines of the holder's text, or "?" */
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

/* With the lock held no other run writes here: the atomic-write temporaries (NAME.tmp.PID, src/common.c) that a run
 * killed mid-write left at the top of the directory (status.json is rewritten every few seconds) are removed. */
static void remove_stale_temps(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *t = strstr(e->d_name, ".tmp.");
        if (!t || t == e->d_name || t[5] == '\0' || strspn(t + 5, "0123456789") != strlen(t + 5)) continue;
        char path[PL_PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) == 0) ipr_log(IPR_LOG_INFO, "removed %s, left by a run that was killed while writing it", path);
    }
    closedir(d);
}

int pl_run_lock_take(const char *dir, pl_run_lock *lk) {
    char path[PL_PATH_MAX + 32];
    pl_run_lock_release(lk);
    snprintf(path, sizeof path, "%s/%s", dir, PL_RUN_LOCK_FILE);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    IPR_IO(fd >= 0, path);
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET; /* l_start = l_len = 0: the whole file */
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        const int e = errno;
        if (e == ENOLCK || e == EOPNOTSUPP || e == EINVAL) {
            ipr_log(IPR_LOG_WARN, "%s: this file system has no locks (%s): a second `ipr run` of this directory is not "
                                  "refused; run one at a time",
                    path, strerror(e));
            close(fd);
            return IPR_OK;
        }
        if (e != EACCES && e != EAGAIN) {
            close(fd);
            errno = e;
            IPR_IO(0, path);
        }
        /* held: name the holder from what it wrote, and the kernel's PID where the text is missing */
        char text[512] = "", host[128], pid[32], started[64];
        ssize_t n = pread(fd, text, sizeof text - 1, 0);
        text[n > 0 ? n : 0] = '\0';
        struct flock q;
        memset(&q, 0, sizeof q);
        q.l_type = F_WRLCK;
        q.l_whence = SEEK_SET;
        const int have_q = fcntl(fd, F_GETLK, &q) == 0 && q.l_type != F_UNLCK;
        close(fd);
        field(text, "host", host, sizeof host);
        field(text, "pid", pid, sizeof pid);
        field(text, "started", started, sizeof started);
        if (strcmp(pid, "?") == 0 && have_q) snprintf(pid, sizeof pid, "%ld", (long)q.l_pid);
        IPR_FAIL("%s is in use by another `ipr run` (host %s, PID %s, started %s): a run directory takes one run at a "
                 "time; wait for it to end, or stop it (SIGUSR1 drains it), then run again",
                 dir, host, pid, started);
    }
    /* ours: say who holds it, for the next one's message (the lock holds even if this text cannot be written) */
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
    lk->fd = fd;
    remove_stale_temps(dir);
    return IPR_OK;
fail:
    return IPR_ERR;
}
