/* bundle.c: reproducible run archives following pipeline-notes 4: entries built by hand (no
 * archive_read_disk, which copies atime/ctime/xattrs), sorted bytewise, ASCII names, mtime fixed, uid/gid 0,
 * gzip with "!timestamp" or zstd; the verifier re-hashes every member. */
#define _POSIX_C_SOURCE 200809L
#include "pipeline/bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "ipr/h5io.h"
#include "ipr/hash.h"
#include "pipeline/check.h"
#include "pipeline/json.h"
#include "pipeline/merge.h"
#include "pipeline/rundir.h"

#define BLOCK (1 << 16)

typedef struct {
    char name[512];      /* relative to the bundle's top directory */
    char src[PL_PATH_MAX + 600]; /* file on disk, or "" for an in-memory member */
    const char *mem;     /* in-memory contents */
    size_t size;
    char sha[65];
    int is_dir;
} member;

typedef struct {
    member *m;
    int n, cap;
} member_list;

static member *add_member(member_list *l) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        member *p = realloc(l->m, (size_t)cap * sizeof *p);
        if (!p) {
            ipr_error_set(__FILE__, __LINE__, "out of memory listing bundle members");
            return NULL;
        }
        l->m = p;
        l->cap = cap;
    }
    member *m = &l->m[l->n++];
    memset(m, 0, sizeof *m);
    return m;
}

/* Add an in-memory member holding b's bytes (b stays owned by the caller and must outlive the list). */
static int add_buffer(member_list *l, const char *name, const pl_buf *b) {
    IPR_TRY(pl_buf_ok(b));
    member *m = add_member(l);
    IPR_TRY_PTR(m);
    snprintf(m->name, sizeof m->name, "%s", name);
    m->mem = b->data;
    m->size = b->len;
    ipr_sha256_hex(b->data, b->len, m->sha);
    return IPR_OK;
fail:
    return IPR_ERR;
}

static int safe_name(const char *s) {
    for (; *s; ++s)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '.' ||
              *s == '_' || *s == '-' || *s == '/'))
            return 0;
    return 1;
}

/* Add a file (name in the bundle, path on disk). */
static int add_file(member_list *l, const char *name, const char *src) {
    struct stat sb;
    if (stat(src, &sb) != 0 || !S_ISREG(sb.st_mode)) return IPR_OK; /* optional members */
    IPR_CHECK(safe_name(name), "bundle member name '%s' is not plain ASCII [A-Za-z0-9._/-] (pipeline-notes 4)", name);
    member *m = add_member(l);
    IPR_TRY_PTR(m);
    snprintf(m->name, sizeof m->name, "%s", name);
    snprintf(m->src, sizeof m->src, "%s", src);
    m->size = (size_t)sb.st_size;
    IPR_TRY(ipr_sha256_file(src, m->sha));
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* Every regular file of run_dir/sub (recursively, depth 2) under the same relative name. */
static int add_tree(member_list *l, const char *run_dir, const char *sub, int depth) {
    char path[PL_PATH_MAX + 600];
    snprintf(path, sizeof path, "%s/%s", run_dir, sub);
    DIR *d = opendir(path);
    if (!d) return IPR_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (strstr(e->d_name, ".tmp")) continue; /* never a temporary file */
        char rel[1024], full[PL_PATH_MAX + 1200];
        snprintf(rel, sizeof rel, "%s/%s", sub, e->d_name);
        snprintf(full, sizeof full, "%s/%s", run_dir, rel);
        struct stat sb;
        if (stat(full, &sb) != 0) continue;
        if (S_ISDIR(sb.st_mode)) {
            if (depth > 0 && add_tree(l, run_dir, rel, depth - 1) != IPR_OK) {
                closedir(d);
                return IPR_ERR;
            }
        } else if (add_file(l, rel, full) != IPR_OK) {
            closedir(d);
            return IPR_ERR;
        }
    }
    closedir(d);
    return IPR_OK;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const member *)a)->name, ((const member *)b)->name);
}

pl_bundle_compression pl_bundle_compression_for(const char *path) {
    size_t n = strlen(path);
    if ((n > 8 && strcmp(path + n - 8, ".tar.zst") == 0) || (n > 5 && strcmp(path + n - 5, ".tzst") == 0))
        return PL_BUNDLE_ZSTD;
    if (n > 4 && strcmp(path + n - 4, ".tar") == 0) return PL_BUNDLE_NONE;
    return PL_BUNDLE_GZIP;
}

static int write_entry(struct archive *a, const char *top, const member *m, int64_t mtime) {
    struct archive_entry *e = archive_entry_new();
    FILE *fp = NULL;
    char *buf = NULL;
    IPR_CHECK(e != NULL, "out of memory (archive entry)");
    char name[1024];
    if (m->name[0])
        snprintf(name, sizeof name, "%s/%s%s", top, m->name, m->is_dir ? "/" : "");
    else
        snprintf(name, sizeof name, "%s/", top); /* the top directory itself */
    archive_entry_copy_pathname(e, name);
    archive_entry_set_filetype(e, m->is_dir ? AE_IFDIR : AE_IFREG);
    archive_entry_set_perm(e, m->is_dir ? 0755 : 0644);
    archive_entry_set_size(e, m->is_dir ? 0 : (la_int64_t)m->size);
    archive_entry_set_mtime(e, (time_t)mtime, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    archive_entry_copy_uname(e, "root");
    archive_entry_copy_gname(e, "root");
    IPR_AR(a, archive_write_header(a, e));
    if (!m->is_dir) {
        if (m->mem) {
            if (m->size) IPR_AR_N(a, archive_write_data(a, m->mem, m->size));
        } else {
            IPR_TRY_PTR(buf = ipr_malloc(BLOCK, "copy buffer"));
            IPR_IO((fp = fopen(m->src, "rb")) != NULL, m->src);
            size_t left = m->size;
            while (left > 0) {
                size_t want = left < BLOCK ? left : BLOCK;
                size_t got = fread(buf, 1, want, fp);
                IPR_IO(got == want, m->src); /* the file shrank since it was hashed */
                IPR_AR_N(a, archive_write_data(a, buf, got));
                left -= got;
            }
            IPR_TRY(ipr_fclose(&fp, m->src));
        }
    }
    archive_entry_free(e);
    free(buf);
    return IPR_OK;
fail:
    ipr_error_context("adding %s", m->name);
    if (fp) fclose(fp);
    free(buf);
    if (e) archive_entry_free(e);
    return IPR_ERR;
}

int pl_bundle_write(const char *run_dir, const char *out_path, const pl_bundle_opts *o, int *problems) {
    pl_run run;
    member_list l = {NULL, 0, 0};
    pl_buf manifest, sums;
    struct archive *a = NULL;
    char tmp[PL_PATH_MAX + 32] = "", path[PL_PATH_MAX + 64], *run_json = NULL;
    char side[PL_PATH_MAX + 16] = ""; /* FILE.sha256 once written: removed again if FILE is not committed */
    int committed = 0, fd = -1;
    pl_buf_init(&manifest);
    pl_buf_init(&sums);
    *problems = 0;
    {
        /* the output first, before minutes of verification: never overwritten without force, and its directory
         * must exist (else the first error would be about FILE.tmp.PID) */
        struct stat ob;
        char parent[PL_PATH_MAX];
        snprintf(parent, sizeof parent, "%s", out_path);
        char *slash = strrchr(parent, '/');
        if (!slash)
            snprintf(parent, sizeof parent, ".");
        else if (slash == parent)
            parent[1] = '\0';
        else
            *slash = '\0';
        IPR_CHECK(o->force || stat(out_path, &ob) != 0, "%s exists (use --force to overwrite it)", out_path);
        IPR_CHECK(stat(parent, &ob) == 0 && S_ISDIR(ob.st_mode), "cannot write %s: directory %s does not exist",
                  out_path, parent);
        IPR_CHECK(stat(out_path, &ob) != 0 || !S_ISDIR(ob.st_mode), "%s is a directory", out_path);
    }
    IPR_TRY(pl_run_load(run_dir, &run, &run_json));
    pl_run_path(&run, "DONE", path, sizeof path);
    struct stat sb;
    IPR_CHECK(o->allow_incomplete || stat(path, &sb) == 0,
              "%s is not complete (no DONE marker): finish or resume the run, or `ipr merge` it (--allow-incomplete "
              "bundles it anyway)",
              run.dir);
    IPR_TRY(pl_verify_run_dir(run.dir, problems));
    if (*problems > 0) {
        ipr_error_set(__FILE__, __LINE__, "%s failed verification (%d problem(s)); not bundled", run.dir, *problems);
        goto fail;
    }
    /* members */
    static const char *files[] = {"run.json", "plan.h5", "status.json", "DONE"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; ++i) {
        pl_run_path(&run, files[i], path, sizeof path);
        IPR_TRY(add_file(&l, files[i], path));
    }
    pl_run_path(&run, "results.h5", path, sizeof path);
    IPR_TRY(add_file(&l, "results/results.h5", path));
    static const char *trees[] = {"config", "journal", "logs", "models", "provenance", "summary"};
    for (size_t i = 0; i < sizeof trees / sizeof trees[0]; ++i) IPR_TRY(add_tree(&l, run.dir, trees[i], 0));
    if (o->include_segments) IPR_TRY(add_tree(&l, run.dir, "segments", 1));
    qsort(l.m, (size_t)l.n, sizeof *l.m, by_name);

    char config_sha[65] = "", git[64] = "", created[40] = "";
    IPR_TRY(pl_json_get_str(run_json, "config_sha256", config_sha, sizeof config_sha));
    IPR_TRY(pl_json_get_str(run_json, "git_sha", git, sizeof git));
    IPR_TRY(pl_json_get_str(run_json, "created", created, sizeof created));
    pl_buf_printf(&manifest,
                  "{\n  \"format\": \"ipr-bundle\",\n  \"schema_version\": %d,\n  \"run_id\": \"%s\",\n"
                  "  \"config_sha256\": \"%s\",\n  \"git_sha\": \"%s\",\n  \"created\": \"%s\",\n  \"files\": [",
                  PL_SCHEMA_VERSION, run.run_id, config_sha, git, created);
    for (int i = 0; i < l.n; ++i)
        pl_buf_printf(&manifest, "%s\n    {\"path\": \"%s\", \"size\": %zu, \"sha256\": \"%s\"}", i ? "," : "",
                      l.m[i].name, l.m[i].size, l.m[i].sha);
    pl_buf_add(&manifest, "\n  ]\n}\n");
    IPR_TRY(add_buffer(&l, "manifest.json", &manifest));
    qsort(l.m, (size_t)l.n, sizeof *l.m, by_name);
    for (int i = 0; i < l.n; ++i) pl_buf_printf(&sums, "%s  %s\n", l.m[i].sha, l.m[i].name);
    IPR_TRY(add_buffer(&l, "MANIFEST.sha256", &sums));
    /* directory entries for every parent, so extraction recreates them with fixed metadata */
    int nfiles = l.n;
    for (int i = 0; i < nfiles; ++i) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s", l.m[i].name);
        for (char *slash = strchr(dir, '/'); slash; slash = strchr(slash + 1, '/')) {
            *slash = '\0';
            int seen = 0;
            for (int j = nfiles; j < l.n && !seen; ++j) seen = strcmp(l.m[j].name, dir) == 0;
            if (!seen) {
                member *d = add_member(&l);
                IPR_TRY_PTR(d);
                snprintf(d->name, sizeof d->name, "%s", dir);
                d->is_dir = 1;
            }
            *slash = '/';
        }
    }
    /* sort by the archive path (directories carry a trailing '/') */
    for (int i = 0; i < l.n; ++i)
        if (l.m[i].is_dir) strncat(l.m[i].name, "/", sizeof l.m[i].name - strlen(l.m[i].name) - 1);
    qsort(l.m, (size_t)l.n, sizeof *l.m, by_name);
    for (int i = 0; i < l.n; ++i)
        if (l.m[i].is_dir) l.m[i].name[strlen(l.m[i].name) - 1] = '\0';

    int64_t mtime = run.created_epoch;
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (o->has_mtime) {
        mtime = o->mtime;
    } else if (sde && *sde) {
        uint64_t v;
        IPR_TRY(ipr_parse_u64(sde, INT64_MAX, "SOURCE_DATE_EPOCH", &v));
        mtime = (int64_t)v;
    }
    char top[80];
    snprintf(top, sizeof top, "ipr-%s", run.run_id);

    IPR_TRY(ipr_tmp_path(tmp, sizeof tmp, out_path));
    a = archive_write_new();
    IPR_CHECK(a != NULL, "out of memory (archive)");
    if (o->compression == PL_BUNDLE_GZIP) {
        IPR_AR(a, archive_write_add_filter_gzip(a));
        /* gzip stores the time unless told not to (archive_write_set_options(3): "timestamp ... enabled by default") */
        IPR_AR(a, archive_write_set_options(a, "gzip:!timestamp"));
    } else if (o->compression == PL_BUNDLE_ZSTD) {
        IPR_AR(a, archive_write_add_filter_zstd(a));
    }
    IPR_AR(a, archive_write_set_format_pax_restricted(a));
    /* our descriptor, not archive_write_open_filename's: libarchive ignores what close(2) says, we check it (and the
     * fsync before it). Same bytes: a regular file's last block is not padded either way. */
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    IPR_IO(fd >= 0, tmp);
    IPR_AR(a, archive_write_open_fd(a, fd));
    {
        static member top_dir; /* zeroed: name "" = the top directory */
        top_dir.is_dir = 1;
        IPR_TRY(write_entry(a, top, &top_dir, mtime));
    }
    for (int i = 0; i < l.n; ++i) IPR_TRY(write_entry(a, top, &l.m[i], mtime));
    IPR_AR(a, archive_write_close(a));
    IPR_AR(a, archive_write_free(a));
    a = NULL;
    IPR_IO(fsync(fd) == 0, tmp);
    {
        const int f = fd;
        fd = -1;
        IPR_IO(close(f) == 0, tmp);
    }
    {
        /* FILE.sha256 first, then FILE: a failure anywhere leaves neither (a FILE without its sidecar would make
         * the rerun refuse to overwrite it) */
        char sha[65], line[PL_PATH_MAX + 100], name[PL_PATH_MAX + 16];
        IPR_TRY(ipr_sha256_file(tmp, sha));
        const char *base = strrchr(out_path, '/');
        base = base ? base + 1 : out_path;
        snprintf(line, sizeof line, "%s  %s\n", sha, base);
        snprintf(name, sizeof name, "%s.sha256", out_path);
        IPR_TRY(pl_write_file_atomic(name, line, strlen(line)));
        memcpy(side, name, sizeof side);
    }
    committed = 1;
    IPR_TRY(ipr_commit_tmp(tmp, out_path));
    tmp[0] = '\0';
    free(l.m);
    free(run_json);
    pl_buf_free(&manifest);
    pl_buf_free(&sums);
    return IPR_OK;
fail:
    ipr_error_context("bundling %s", run_dir);
    if (a) archive_write_free(a);
    if (fd >= 0) close(fd);
    /* renamed, but the directory's fsync failed (the temporary file is gone): not a bundle to vouch for */
    if (committed && tmp[0] && access(tmp, F_OK) != 0) remove(out_path);
    if (tmp[0]) remove(tmp);
    if (side[0]) remove(side);
    free(l.m);
    free(run_json);
    pl_buf_free(&manifest);
    pl_buf_free(&sums);
    return IPR_ERR;
}

/* ---------------- verify ---------------- */

typedef struct {
    char name[512];
    char sha[65];
    int listed;
    int hash_ok; /* listed in MANIFEST.sha256 with this SHA-256 */
} seen_member;

static int check_results(const char *h5path, const char *manifest, int *problems) {
    hid_t f = ipr_h5_open_read(h5path);
    if (f < 0) {
        pl_problem(problems, "results/results.h5: %s", ipr_error_message());
        ipr_error_clear();
        return IPR_OK;
    }
    char fmt[64] = "", sha[80] = "", want[80] = "";
    int64_t n_units = -1, rows = -1;
    if (ipr_h5_read_attr_str(f, "format", fmt, sizeof fmt) != IPR_OK || strcmp(fmt, "ipr-results") != 0)
        pl_problem(problems, "results/results.h5 is not an ipr results file");
    if (ipr_h5_read_attr_str(f, "config_sha256", sha, sizeof sha) != IPR_OK ||
        pl_json_get_str(manifest, "config_sha256", want, sizeof want) != IPR_OK || strcmp(sha, want) != 0)
        pl_problem(problems, "results/results.h5 config_sha256 %s is not the manifest's %s", sha, want);
    hid_t g = H5I_INVALID_HID;
    if (ipr_h5_read_attr_i64(f, "n_units", &n_units) != IPR_OK || (g = H5Gopen2(f, "/units", H5P_DEFAULT)) < 0 ||
        ipr_h5_read_attr_i64(g, "n_rows", &rows) != IPR_OK || rows != n_units)
        pl_problem(problems, "results/results.h5: /units holds %lld rows, n_units says %lld", (long long)rows,
                   (long long)n_units);
    if (g >= 0 && H5Gclose(g) < 0) pl_problem(problems, "results/results.h5: H5Gclose failed");
    if (H5Fclose(f) < 0) pl_problem(problems, "results/results.h5: H5Fclose failed");
    ipr_error_clear();
    return IPR_OK;
}

/* libarchive's gzip reader does not check the trailer (CRC-32 and length); zlib's gzread does. */
static int check_gzip(const char *path, char *buf, int *problems) {
    unsigned char magic[2] = {0, 0};
    FILE *fp = fopen(path, "rb");
    IPR_IO(fp != NULL, path);
    size_t got = fread(magic, 1, 2, fp);
    IPR_TRY(ipr_fclose(&fp, path));
    if (got != 2 || magic[0] != 0x1f || magic[1] != 0x8b) return IPR_OK;
    gzFile gz = gzopen(path, "rb");
    IPR_CHECK(gz != NULL, "%s: cannot open as gzip", path);
    int n;
    while ((n = gzread(gz, buf, BLOCK)) > 0) {
    }
    if (n < 0) {
        int err = 0;
        const char *msg = gzerror(gz, &err);
        pl_problem(problems, "%s: gzip stream is damaged (%s)", path, msg ? msg : "read error");
    }
    gzclose(gz);
    return IPR_OK;
fail:
    return IPR_ERR;
}

int pl_bundle_verify(const char *path, int *problems) {
    struct archive *a = NULL;
    struct archive_entry *e;
    seen_member *seen = NULL;
    int n_seen = 0, cap = 0;
    char *sums = NULL, *manifest = NULL, *buf = NULL;
    size_t sums_len = 0, manifest_len = 0;
    char top[600] = "", h5tmp[PL_PATH_MAX] = "";
    FILE *h5fp = NULL;
    *problems = 0;
    struct stat sb;
    IPR_IO(stat(path, &sb) == 0, path);
    /* the sidecar covers the archive's every byte, compression headers included */
    {
        char side[PL_PATH_MAX + 16], *text = NULL, sha[65];
        snprintf(side, sizeof side, "%s.sha256", path);
        if (pl_read_file(side, &text, NULL) == IPR_OK) {
            IPR_TRY(ipr_sha256_file(path, sha));
            if (strncmp(text, sha, 64) != 0) pl_problem(problems, "%s: SHA-256 %s differs from %s", path, sha, side);
        }
        ipr_error_clear();
        free(text);
    }
    IPR_TRY_PTR(buf = ipr_malloc(BLOCK, "read buffer"));
    IPR_TRY(check_gzip(path, buf, problems));
    a = archive_read_new();
    IPR_CHECK(a != NULL, "out of memory (archive)");
    IPR_AR(a, archive_read_support_filter_all(a));
    IPR_AR(a, archive_read_support_format_all(a));
    IPR_AR(a, archive_read_open_filename(a, path, BLOCK));
    for (;;) {
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF) break;
        /* a bundle we wrote reads without warnings; RETRY means a damaged header was skipped */
        const char *name = r == ARCHIVE_OK ? archive_entry_pathname(e) : NULL;
        if (!name) {
            pl_problem(problems, "%s: damaged archive (%s)", path,
                       archive_error_string(a) ? archive_error_string(a) : "unreadable header");
            goto done;
        }
        const char *slash = strchr(name, '/');
        size_t toplen = slash ? (size_t)(slash - name) : strlen(name);
        if (!top[0]) snprintf(top, sizeof top, "%.*s", (int)toplen, name);
        if (strlen(top) != toplen || strncmp(name, top, toplen) != 0) {
            pl_problem(problems, "member %s is outside the top directory %s", name, top);
            continue;
        }
        if (archive_entry_filetype(e) == AE_IFDIR) continue;
        if (archive_entry_filetype(e) != AE_IFREG) {
            pl_problem(problems, "member %s is not a regular file", name);
            continue;
        }
        const char *rel = slash ? slash + 1 : "";
        int is_sums = strcmp(rel, "MANIFEST.sha256") == 0, is_manifest = strcmp(rel, "manifest.json") == 0;
        int is_results = strcmp(rel, "results/results.h5") == 0;
        /* a member twice is damage (we write each once), and its second copy is not read: it would replace the
         * kept MANIFEST or manifest text, or a second temporary results.h5, of the first (found by fuzz_bundle:
         * the first MANIFEST leaked) */
        int twice = (is_sums && sums) || (is_manifest && manifest) || (is_results && h5tmp[0]);
        for (int i = 0; i < n_seen && !twice; ++i) twice = strcmp(seen[i].name, rel) == 0;
        if (twice) {
            pl_problem(problems, "member %s appears more than once", name);
            continue;
        }
        if (is_results) {
            const char *td = getenv("TMPDIR");
            snprintf(h5tmp, sizeof h5tmp, "%s/ipr-verify-XXXXXX", td && *td ? td : "/tmp");
            int fd = mkstemp(h5tmp);
            IPR_IO(fd >= 0, h5tmp);
            IPR_IO((h5fp = fdopen(fd, "wb")) != NULL, h5tmp);
        }
        struct sha256_ctx ctx;
        sha256_init(&ctx);
        size_t total = 0;
        pl_buf keep;
        pl_buf_init(&keep);
        for (;;) {
            la_ssize_t got = archive_read_data(a, buf, BLOCK);
            if (got < 0) {
                pl_problem(problems, "%s: member %s is damaged (%s)", path, name, archive_error_string(a));
                pl_buf_free(&keep);
                if (h5fp) fclose(h5fp);
                h5fp = NULL;
                goto done;
            }
            if (got == 0) break;
            sha256_update(&ctx, (size_t)got, (const uint8_t *)buf);
            total += (size_t)got;
            if (is_sums || is_manifest) pl_buf_addn(&keep, buf, (size_t)got);
            if (h5fp) IPR_IO(fwrite(buf, 1, (size_t)got, h5fp) == (size_t)got, h5tmp);
        }
        if (h5fp) {
            IPR_TRY(ipr_fclose(&h5fp, h5tmp));
        }
        if (is_sums) {
            sums = keep.data ? keep.data : strdup("");
            sums_len = total;
        } else if (is_manifest) {
            manifest = keep.data ? keep.data : strdup("");
            manifest_len = total;
        } else {
            pl_buf_free(&keep);
        }
        if (is_sums) continue;
        uint8_t dig[SHA256_DIGEST_SIZE];
        sha256_digest(&ctx, SHA256_DIGEST_SIZE, dig);
        if (n_seen == cap) {
            cap = cap ? 2 * cap : 64;
            seen_member *p = realloc(seen, (size_t)cap * sizeof *p);
            IPR_CHECK(p != NULL, "out of memory");
            seen = p;
        }
        seen_member *s = &seen[n_seen++];
        memset(s, 0, sizeof *s);
        snprintf(s->name, sizeof s->name, "%s", rel);
        for (int i = 0; i < SHA256_DIGEST_SIZE; ++i) snprintf(s->sha + 2 * i, 3, "%02x", dig[i]);
    }
    (void)manifest_len;
    if (!sums) {
        pl_problem(problems, "%s holds no MANIFEST.sha256", path);
        goto done;
    }
    (void)sums_len;
    /* every line of MANIFEST.sha256 names a member with that hash; every member is listed */
    for (char *line = sums; *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        if (strlen(line) > 66 && line[64] == ' ' && line[65] == ' ') {
            const char *rel = line + 66;
            int found = 0;
            for (int i = 0; i < n_seen; ++i)
                if (strcmp(seen[i].name, rel) == 0) {
                    found = 1;
                    seen[i].listed = 1;
                    if (strncmp(seen[i].sha, line, 64) != 0)
                        pl_problem(problems, "%s: SHA-256 %s, MANIFEST.sha256 says %.64s", rel, seen[i].sha, line);
                    else
                        seen[i].hash_ok = 1;
                }
            if (!found) pl_problem(problems, "%s is listed in MANIFEST.sha256 but not in the archive", rel);
        } else if (line[0]) {
            pl_problem(problems, "MANIFEST.sha256: malformed line '%.80s'", line);
        }
        if (!nl) break;
        line = nl + 1;
    }
    for (int i = 0; i < n_seen; ++i)
        if (!seen[i].listed) pl_problem(problems, "%s is in the archive but not in MANIFEST.sha256", seen[i].name);
    if (!manifest) {
        pl_problem(problems, "%s holds no manifest.json", path);
    } else {
        char run_id[64] = "";
        if (pl_json_get_str(manifest, "run_id", run_id, sizeof run_id) != IPR_OK ||
            strcmp(top + (strncmp(top, "ipr-", 4) == 0 ? 4 : 0), run_id) != 0)
            pl_problem(problems, "manifest.json run_id '%s' does not match the top directory %s", run_id, top);
        ipr_error_clear();
        /* libhdf5 reads only the bytes MANIFEST.sha256 vouches for: a damaged results.h5 is a problem already (its
         * hash), and a library's parser is no place for bytes of unknown origin */
        int results_hash_ok = 0;
        for (int i = 0; i < n_seen; ++i)
            if (strcmp(seen[i].name, "results/results.h5") == 0) results_hash_ok = seen[i].hash_ok;
        if (h5tmp[0] && results_hash_ok)
            IPR_TRY(check_results(h5tmp, manifest, problems));
        else if (!h5tmp[0])
            pl_problem(problems, "%s holds no results/results.h5", path);
    }
done:
    if (a) archive_read_free(a);
    if (h5tmp[0]) remove(h5tmp);
    free(seen);
    free(sums);
    free(manifest);
    free(buf);
    return IPR_OK;
fail:
    if (h5fp) fclose(h5fp);
    if (a) archive_read_free(a);
    if (h5tmp[0]) remove(h5tmp);
    free(seen);
    free(sums);
    free(manifest);
    free(buf);
    return IPR_ERR;
}
