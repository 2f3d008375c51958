/* fuzz_ckpt.c: the checkpoint loaders under structure-aware HDF5 edits (fuzz_h5.h), built four times:
 * FUZZ_CKPT_KIND 0 = the U-Net and 1 = the DiT denoiser (ipr_denoiser_open, what `ipr run` and `ipr sample` use,
 * then one forward pass), 2 = the digit and 3 = the Counting Polygons classifier (the scorers, then one image).
 * The first input byte says whether to run the network too (bit 0); the rest are the edits. A load may fail with an
 * error; it must never crash, leak, read out of bounds or hit undefined behaviour. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_h5.h"
#include "ipr/classifier.h"
#include "ipr/common.h"
#include "ipr/dit.h"
#include "ipr/sampler.h"
#include "ipr/unet.h"

#ifndef FUZZ_CKPT_KIND
#error "FUZZ_CKPT_KIND: 0 unet, 1 dit, 2 digit classifier, 3 polygons classifier"
#endif

static fuzz_h5_seed g_seed;
static int load_and_use(int forward);
static float g_in[3 * 128 * 128], g_t[128 * 128], g_out[7 * 128 * 128]; /* x (C, H, W), t (1, H, W), y */

/* A denoiser seed as ipr_unet_save / ipr_dit_save write it: the Even Pixels geometry of the pipeline tests with
 * widths of 32 (tests/pipeline/cli_pipeline.sh's ep.h5; the DiT of cli_pipeline_dit.sh's size), random weights. */
static void make_denoiser_seed(char *path, size_t cap) {
    const char *td = getenv("TMPDIR");
    snprintf(path, cap, "%s/ipr-fuzz-seed-XXXXXX", td && *td ? td : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) abort();
    close(fd);
    if (FUZZ_CKPT_KIND == 0) {
        fuzz_write_unet(path);
        return;
    }
    int rc = IPR_ERR;
    {
        ipr_dit_config cfg;
        ipr_dit_config_init(&cfg);
        cfg.d_hid = 32, cfg.depth = 2, cfg.num_heads = 2;
        cfg.d_in = 3, cfg.d_out = 7, cfg.patch_size = 8;
        cfg.image_size[0] = cfg.image_size[1] = 32;
        ipr_dit *net = ipr_dit_config_validate(&cfg) == IPR_OK ? ipr_dit_new(&cfg, 1) : NULL;
        if (net) {
            ipr_dit_init_random(net, 7);
            rc = ipr_dit_save(net, path);
            ipr_dit_free(net);
        }
    }
    if (rc != IPR_OK) {
        ipr_error_print("fuzz seed");
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_h5_init();
    char path[512];
    if (FUZZ_CKPT_KIND <= 1) {
        make_denoiser_seed(path, sizeof path);
        fuzz_h5_seed_load(&g_seed, path);
        unlink(path);
    } else {
        snprintf(path, sizeof path, "%s/tests/fixtures/%s", IPR_SOURCE_DIR,
                 FUZZ_CKPT_KIND == 2 ? "classifier_digit_tiny.h5" : "classifier_polygons_deep.h5");
        fuzz_h5_seed_load(&g_seed, path);
    }
    for (size_t i = 0; i < sizeof g_in / sizeof g_in[0]; ++i) g_in[i] = (float)((int)(i * 7919 % 200) - 100) / 100.0f;
    for (size_t i = 0; i < sizeof g_t / sizeof g_t[0]; ++i) g_t[i] = (float)(i % 7) / 7.0f; /* noise levels in [0, 1) */
    /* the harness's own check: the seed, through the edit engine without edits, loads and runs */
    fuzz_h5_mutate(&g_seed, NULL, 0);
    if (!load_and_use(1)) {
        ipr_error_print("fuzz: the unedited seed does not load");
        abort();
    }
    ipr_error_clear();
    fuzz_h5_release();
    return 0;
}

/* Load the published image with the kind's loader and use it (one forward pass when `forward`): 1 if it loaded. */
static int load_and_use(int forward) {
    int loaded = 0;
    if (FUZZ_CKPT_KIND <= 1) {
        ipr_denoiser_config cfg;
        ipr_denoiser_config_init(&cfg);
        cfg.max_batch = 1;
        cfg.cpu_threads = 1;
        ipr_denoiser *d = ipr_denoiser_open(FUZZ_H5_PATH, &cfg);
        if (d) {
            loaded = 1;
            const ipr_model_info *mi = ipr_denoiser_model_info(d);
            /* the forward's input and output are sized from the checkpoint: run it only where the buffers fit */
            const size_t px = (size_t)mi->image_size[0] * (size_t)mi->image_size[1];
            if (forward && px <= sizeof g_t / sizeof g_t[0] && px * (size_t)mi->d_in <= sizeof g_in / sizeof g_in[0] &&
                px * (size_t)mi->d_out <= sizeof g_out / sizeof g_out[0])
                (void)ipr_denoiser_forward(d, g_in, g_t, 1, g_out);
            ipr_denoiser_free(d);
        }
    } else if (FUZZ_CKPT_KIND == 2) {
        ipr_digit_classifier *net = ipr_digit_classifier_load(FUZZ_H5_PATH, 1);
        loaded = net != NULL;
        if (net && forward) {
            float logits[10];
            (void)ipr_digit_classifier_logits(net, g_in, 1, logits);
            (void)ipr_sudoku_digit_from_logits(logits);
        }
        ipr_digit_classifier_free(net);
    } else {
        ipr_polygons_classifier *net = ipr_polygons_classifier_load(FUZZ_H5_PATH, 1);
        if (net) {
            loaded = 1;
            const ipr_polygons_classifier_config *c = ipr_polygons_classifier_get_config(net);
            ipr_polygons_prediction p;
            if (forward && (size_t)c->image_size * (size_t)c->image_size * 3 <= sizeof g_in / sizeof g_in[0])
                (void)ipr_polygons_score_images(net, g_in, 1, &p);
            ipr_polygons_classifier_free(net);
        }
    }
    if (getenv("IPR_FUZZ_DEBUG")) fprintf(stderr, "load: %s\n", loaded ? "ok" : ipr_error_message());
    return loaded;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* byte 0, bit 0: also run the network on one input (a third to half of the time per input goes there) */
    const int forward = size > 0 && (data[0] & 1);
    if (size > 0) data++, size--;
    fuzz_h5_mutate(&g_seed, data, size);
    (void)load_and_use(forward);
    ipr_error_clear();
    fuzz_h5_release();
    return 0;
}
