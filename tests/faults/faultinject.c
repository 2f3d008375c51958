/* faultinject.c: an LD_PRELOAD shim that makes one chosen kind of I/O call fail with a chosen errno, for the fault
 * tests (cli_faults.sh): the Nth call (and the COUNT - 1 after it) of that kind on a file whose path holds a chosen
 * substring. Nothing is written, synced or renamed by a failed call; a failed close still closes (as Linux does).
 *
 *   IPR_FAULT_OP     write | fsync | rename | close   (write: write, pwrite, writev, fwrite, fputs, fflush;
 *                    fsync: fsync, fdatasync; rename: rename, renameat; close: close, fclose)
 *   IPR_FAULT_ERRNO  ENOSPC | EIO | EDQUOT | a number       (default ENOSPC)
 *   IPR_FAULT_PATH   substring of the file's path (for fds: /proc/self/fd/N; rename: either name)  (default: any)
 *   IPR_FAULT_NTH    the first call to fail, counting matching calls from 1                          (default 1)
 *   IPR_FAULT_COUNT  calls to fail from there; 0 = every one after (a disk that stays full)          (default 1)
 *   IPR_FAULT_WRITABLE  1: count only descriptors open for writing (not the reads of the same file)
 *   IPR_FAULT_RANK   only in the process whose OMPI_COMM_WORLD_RANK is this (unset: every process)
 *   IPR_FAULT_LOG    a file that gets one line per injected fault ("op errno path"), appended
 *
 * Not thread-safe beyond an atomic counter: ipr does its file I/O from one thread. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

enum { OP_NONE = 0, OP_WRITE, OP_FSYNC, OP_RENAME, OP_CLOSE };

static int g_init, g_op, g_errno = ENOSPC, g_count = 1, g_writable;
static long g_nth = 1;
static long g_seen; /* matching calls so far */
static const char *g_path, *g_log;

#define REAL(name) real_##name
#define DECLARE_REAL(ret, name, ...)                                       \
    static ret (*real_##name)(__VA_ARGS__);                                \
    static void load_##name(void) {                                        \
        if (!real_##name) *(void **)&real_##name = dlsym(RTLD_NEXT, #name);  \
    }

DECLARE_REAL(ssize_t, write, int, const void *, size_t)
DECLARE_REAL(ssize_t, pwrite, int, const void *, size_t, off_t)
DECLARE_REAL(ssize_t, pwrite64, int, const void *, size_t, off_t)
DECLARE_REAL(ssize_t, writev, int, const struct iovec *, int)
DECLARE_REAL(size_t, fwrite, const void *, size_t, size_t, FILE *)
DECLARE_REAL(int, fputs, const char *, FILE *)
DECLARE_REAL(int, fflush, FILE *)
DECLARE_REAL(int, fsync, int)
DECLARE_REAL(int, fdatasync, int)
DECLARE_REAL(int, rename, const char *, const char *)
DECLARE_REAL(int, renameat, int, const char *, int, const char *)
DECLARE_REAL(int, close, int)
DECLARE_REAL(int, fclose, FILE *)

static void init(void) {
    if (g_init) return;
    g_init = 1;
    const char *op = getenv("IPR_FAULT_OP");
    const char *rank = getenv("IPR_FAULT_RANK"), *mine = getenv("OMPI_COMM_WORLD_RANK");
    if (rank && *rank && (!mine || strcmp(rank, mine) != 0)) return; /* another process's fault */
    if (!op) return;
    if (!strcmp(op, "write")) g_op = OP_WRITE;
    else if (!strcmp(op, "fsync")) g_op = OP_FSYNC;
    else if (!strcmp(op, "rename")) g_op = OP_RENAME;
    else if (!strcmp(op, "close")) g_op = OP_CLOSE;
    const char *e = getenv("IPR_FAULT_ERRNO");
    if (e && !strcmp(e, "EIO")) g_errno = EIO;
    else if (e && !strcmp(e, "EDQUOT")) g_errno = EDQUOT;
    else if (e && !strcmp(e, "ENOSPC")) g_errno = ENOSPC;
    else if (e && *e) g_errno = atoi(e);
    const char *n = getenv("IPR_FAULT_NTH"), *c = getenv("IPR_FAULT_COUNT");
    if (n && *n) g_nth = atol(n);
    if (c && *c) g_count = atoi(c);
    const char *wr = getenv("IPR_FAULT_WRITABLE");
    g_writable = wr && !strcmp(wr, "1");
    g_path = getenv("IPR_FAULT_PATH");
    if (g_path && !*g_path) g_path = NULL;
    g_log = getenv("IPR_FAULT_LOG");
}

static int fd_path(int fd, char *out, size_t cap) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, cap - 1);
    if (n < 0) return -1;
    out[n] = '\0';
    return 0;
}

static void note(const char *call, const char *path) {
    if (!g_log) return;
    load_write();
    int fd = open(g_log, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0) return;
    char line[1200];
    int n = snprintf(line, sizeof line, "%s %s #%ld pid %ld %s\n", call, strerror(g_errno), g_seen, (long)getpid(),
                     path ? path : "?");
    if (n > 0) (void)REAL(write)(fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    load_close();
    REAL(close)(fd);
}

/* 1 when this call (of kind op, on path a or b) is to fail */
static int should_fail(int op, const char *call, const char *a, const char *b) {
    init();
    if (op != g_op) return 0;
    if (g_path && !(a && strstr(a, g_path)) && !(b && strstr(b, g_path))) return 0;
    long k = __atomic_add_fetch(&g_seen, 1, __ATOMIC_RELAXED);
    if (k < g_nth || (g_count > 0 && k >= g_nth + g_count)) return 0;
    note(call, a);
    return 1;
}

static int fd_fails(int op, const char *call, int fd) {
    init();
    if (op != g_op) return 0;
    if (g_writable) {
        const int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY) return 0;
    }
    char path[1024];
    if (fd_path(fd, path, sizeof path) != 0) return 0;
    return should_fail(op, call, path, NULL);
}

ssize_t write(int fd, const void *buf, size_t n) {
    load_write();
    if (fd > 2 && fd_fails(OP_WRITE, "write", fd)) {
        errno = g_errno;
        return -1;
    }
    return REAL(write)(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    load_pwrite();
    if (fd_fails(OP_WRITE, "pwrite", fd)) {
        errno = g_errno;
        return -1;
    }
    return REAL(pwrite)(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
    load_pwrite64();
    if (fd_fails(OP_WRITE, "pwrite64", fd)) {
        errno = g_errno;
        return -1;
    }
    return REAL(pwrite64)(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int n) {
    load_writev();
    if (fd > 2 && fd_fails(OP_WRITE, "writev", fd)) {
        errno = g_errno;
        return -1;
    }
    return REAL(writev)(fd, iov, n);
}

/* stdio writes reach write(2) inside libc, where no preload sees them: fail the stdio calls themselves */
size_t fwrite(const void *p, size_t size, size_t n, FILE *fp) {
    load_fwrite();
    if (fileno(fp) > 2 && fd_fails(OP_WRITE, "fwrite", fileno(fp))) {
        errno = g_errno;
        return 0;
    }
    return REAL(fwrite)(p, size, n, fp);
}

int fputs(const char *s, FILE *fp) {
    load_fputs();
    if (fileno(fp) > 2 && fd_fails(OP_WRITE, "fputs", fileno(fp))) {
        errno = g_errno;
        return EOF;
    }
    return REAL(fputs)(s, fp);
}

int fflush(FILE *fp) {
    load_fflush();
    if (fp && fileno(fp) > 2 && fd_fails(OP_WRITE, "fflush", fileno(fp))) {
        errno = g_errno;
        return EOF;
    }
    return REAL(fflush)(fp);
}

int fsync(int fd) {
    load_fsync();
    if (fd_fails(OP_FSYNC, "fsync", fd)) {
        errno = g_errno;
        return -1;
    }
    return REAL(fsync)(fd);
}

int fdatasync(int fd) {
    load_fdatasync();
    if (fd_fails(OP_FSYNC, "fdatasync", fd)) {
        errno = g_errno;
        return -1;
    }
    return REAL(fdatasync)(fd);
}

int rename(const char *from, const char *to) {
    load_rename();
    if (should_fail(OP_RENAME, "rename", from, to)) {
        errno = g_errno;
        return -1;
    }
    return REAL(rename)(from, to);
}

int renameat(int dfrom, const char *from, int dto, const char *to) {
    load_renameat();
    if (should_fail(OP_RENAME, "renameat", from, to)) {
        errno = g_errno;
        return -1;
    }
    return REAL(renameat)(dfrom, from, dto, to);
}

int close(int fd) {
    load_close();
    if (fd > 2 && fd_fails(OP_CLOSE, "close", fd)) {
        (void)REAL(close)(fd);
        errno = g_errno;
        return -1;
    }
    return REAL(close)(fd);
}

int fclose(FILE *fp) {
    load_fclose();
    if (fileno(fp) > 2 && fd_fails(OP_CLOSE, "fclose", fileno(fp))) {
        (void)REAL(fclose)(fp);
        errno = g_errno;
        return EOF;
    }
    return REAL(fclose)(fp);
}
