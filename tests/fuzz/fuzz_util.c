/* fuzz_util.c: helpers the harnesses share: in-memory files (memfd), a scratch directory removed at exit, the
 * pipeline tests' tiny U-Net as a seed, and inputs cut into several files at a separator line. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_h5.h"
#include "ipr/common.h"
#include "ipr/unet.h"

const char *fuzz_memfile(int slot, const uint8_t *data, size_t size) {
    static int fds[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
    static char paths[8][64];
    if (slot < 0 || slot >= 8) abort();
    if (fds[slot] < 0) {
        fds[slot] = memfd_create("ipr-fuzz", 0);
        if (fds[slot] < 0) abort();
        snprintf(paths[slot], sizeof paths[slot], "/proc/self/fd/%d", fds[slot]);
    }
    if (ftruncate(fds[slot], 0) != 0) abort();
    size_t done = 0;
    while (done < size) {
        ssize_t w = pwrite(fds[slot], data + done, size - done, (off_t)done);
        if (w <= 0) abort();
        done += (size_t)w;
    }
    return paths[slot];
}

static char g_scratch[512];

static void remove_tree(const char *dir, int depth) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode) && depth > 0)
            remove_tree(p, depth - 1);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void remove_scratch(void) {
    if (g_scratch[0]) remove_tree(g_scratch, 3);
}

const char *fuzz_scratch_dir(void) {
    if (g_scratch[0]) return g_scratch;
    struct stat sb;
    const char *td = getenv("TMPDIR");
    const char *base = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0
                           ? "/dev/shm"
                           : (td && *td ? td : "/tmp");
    snprintf(g_scratch, sizeof g_scratch, "%s/ipr-fuzz-XXXXXX", base);
    if (!mkdtemp(g_scratch)) abort();
    atexit(remove_scratch);
    return g_scratch;
}

void fuzz_write(const char *dir, const char *rel, const void *data, size_t size) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    FILE *fp = fopen(p, "wb");
    if (!fp || fwrite(data, 1, size, fp) != size || fclose(fp) != 0) {
        fprintf(stderr, "fuzz: cannot write %s\n", p);
        exit(1);
    }
}

void fuzz_write_unet(const char *path) {
    ipr_unet_config cfg;
    ipr_unet_config_init(&cfg);
    cfg.n_levels = 2;
    cfg.hid_dims[0] = cfg.hid_dims[1] = 32;
    cfg.num_head_channels = 32;
    cfg.d_in = 3, cfg.d_out = 7, cfg.patch_size = 4;
    cfg.image_size[0] = cfg.image_size[1] = 32;
    /* time embedding and blocks smaller than the defaults (512, 256, 2 blocks): a seed of ~250 KiB, not 3.3 MiB */
    cfg.t_emb_dim = 64, cfg.d_emb = 32;
    for (int l = 0; l < cfg.n_levels; ++l) cfg.num_blocks[l] = 1;
    ipr_unet *net = ipr_unet_config_validate(&cfg) == IPR_OK ? ipr_unet_new(&cfg, 1, 32, 32, 0) : NULL;
    if (net) ipr_unet_init_random(net, 7);
    if (!net || ipr_unet_save(net, path) != IPR_OK) {
        ipr_error_print("fuzz: seed U-Net");
        exit(1);
    }
    ipr_unet_free(net);
}

int fuzz_split(const uint8_t *data, size_t size, const uint8_t **part, size_t *len, int max) {
    const size_t sep = sizeof FUZZ_SEP - 1;
    int n = 0;
    while (n < max - 1) {
        const uint8_t *at = memmem(data, size, FUZZ_SEP, sep);
        if (!at) break;
        part[n] = data;
        len[n++] = (size_t)(at - data);
        size -= (size_t)(at - data) + sep;
        data = at + sep;
    }
    part[n] = data;
    len[n++] = size;
    return n;
}
