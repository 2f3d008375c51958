/* runlock.h: one `ipr run` per run directory at a time. Rank 0 holds an fcntl write lock on RUN_DIR/run.lock for the
 * whole run; the file names the holder (host, PID, start time) for the next one's message. The lock, not the file,
 * decides: the OS drops it when the process ends however it ends, so a file left by a killed run blocks nothing. */
#ifndef IPR_PIPELINE_RUNLOCK_H
#define IPR_PIPELINE_RUNLOCK_H

#define PL_RUN_LOCK_FILE "run.lock"

typedef struct {
    int fd; /* -1: not held */
} pl_run_lock;

/* Take DIR's lock. When another process holds it: IPR_ERR, the message naming its host and PID. Where the file
 * system has no locks (ENOLCK, EOPNOTSUPP) a warning, and IPR_OK without one. Releases any lock lk held before. */
int pl_run_lock_take(const char *dir, pl_run_lock *lk);
/* Release it (also done by the OS at exit). */
void pl_run_lock_release(pl_run_lock *lk);

#endif
