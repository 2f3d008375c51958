/* runlock.h: one `ipr run` per run directory at a time, or one per shard: rank 0 holds fcntl locks for the whole
 * session. An unsharded run write-locks RUN_DIR/run.lock; shard I of N (job arrays run them side by side) read-locks
 * run.lock (shared with the other shards, exclusive of an unsharded run) and write-locks run-shardIofN.lock. The
 * file a holder write-locks names it (host, PID, start time) for the next one's message. The locks, not the files,
 * decide: the OS drops them when the process ends however it ends, so files left by a killed run block nothing. */
#ifndef IPR_PIPELINE_RUNLOCK_H
#define IPR_PIPELINE_RUNLOCK_H

#define PL_RUN_LOCK_FILE "run.lock"

typedef struct {
    int fd;       /* run.lock, -1: not held */
    int shard_fd; /* run-shardIofN.lock of a shard, -1: none */
} pl_run_lock;

/* Take DIR's locks for shard `shard` of `nshards` (nshards 0: an unsharded run). When another process holds a
 * conflicting one: IPR_ERR, the message naming its host and PID. Where the file system has no locks (ENOLCK,
 * EOPNOTSUPP) a warning, and IPR_OK without them. Releases whatever lk held before. */
int pl_run_lock_take(const char *dir, int shard, int nshards, pl_run_lock *lk);
/* Release them (also done by the OS at exit). */
void pl_run_lock_release(pl_run_lock *lk);

#endif
