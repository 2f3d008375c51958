/* cmd_forward.c: `ipr forward`: one denoiser pass (U-Net or DiT, by the checkpoint's format) over the batch in an
 * HDF5 file, on the CPU or a GPU. Reads /input/x (B, d_in, H, W) and /input/t (B, 1, H, W); writes /output/y. */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "ipr/common.h"
#include "ipr/h5io.h"
#include "ipr/hash.h"
#include "ipr/dit_cuda.h"
#include "ipr/model.h"
#include "ipr/unet.h"
#include "ipr/unet_cuda.h"

static void usage(FILE *to) {
    fprintf(to,
            "usage: ipr forward --checkpoint CKPT.h5 --input IN.h5 --output OUT.h5 [options]\n\n"
            "Run the denoiser once over /input/x (B, d_in, H, W) and /input/t (B, 1, H, W), float32,\n"
            "and write the raw network output to /output/y (B, d_out, H, W). The checkpoint's `format`\n"
            "chooses the backbone: the SRM U-Net (any H, W, odd too) or the region-token DiT (its own\n"
            "image size; t constant on every region).\n\n"
            "  --device cpu|cuda[:N]    where to run (default cpu)\n"
            "  --precision fp32|tf32|bf16  GEMM precision on cuda (default fp32)\n"
            "  --batch N                images per pass (default: all of B at once, at most 64)\n"
            "  --force                  overwrite OUT.h5\n"
            "  -h, --help               this text\n");
}

int ipr_cmd_forward(int argc, char **argv) {
    static const struct option longopts[] = {
        {"checkpoint", required_argument, 0, 'c'}, {"input", required_argument, 0, 'i'},
        {"output", required_argument, 0, 'o'},     {"device", required_argument, 0, 'd'},
        {"precision", required_argument, 0, 'p'},  {"batch", required_argument, 0, 'b'},
        {"force", no_argument, 0, 'f'},            {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *ckpt = NULL, *in = NULL, *out = NULL, *device = "cpu";
    ipr_precision prec = IPR_PREC_FP32;
    uint64_t batch = 0;
    int force = 0;
    float *x = NULL, *t = NULL, *y = NULL;
    ipr_unet *net = NULL;
    ipr_unet_cuda *gpu = NULL;
    ipr_dit *dnet = NULL;
    ipr_dit_cuda *dgpu = NULL;
    hid_t fin = H5I_INVALID_HID, fout = H5I_INVALID_HID, g = H5I_INVALID_HID;
    char tmp[4096] = "";
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': ckpt = optarg; break;
        case 'i': in = optarg; break;
        case 'o': out = optarg; break;
        case 'd': device = optarg; break;
        case 'p': IPR_TRY(ipr_precision_from_name(optarg, &prec)); break;
        case 'b': IPR_TRY(ipr_parse_u64(optarg, 4096, "--batch", &batch)); break;
        case 'f': force = 1; break;
        case 'h': usage(stdout); return IPR_EXIT_OK;
        case ':': IPR_FAIL("option %s needs a value", argv[optind - 1]);
        default: IPR_FAIL("unknown option %s (see `ipr forward --help`)", argv[optind - 1]);
        }
    }
    IPR_CHECK(optind == argc, "unexpected argument '%s'", optind < argc ? argv[optind] : "");
    IPR_CHECK(ckpt && in && out, "--checkpoint, --input and --output are required");
    int use_cuda = 0, dev = 0;
    if (strcmp(device, "cpu") == 0) {
        IPR_CHECK(prec == IPR_PREC_FP32, "--precision %s needs --device cuda (the CPU path is float32)",
                  ipr_precision_name(prec));
    } else if (strncmp(device, "cuda", 4) == 0 && (device[4] == '\0' || device[4] == ':')) {
        use_cuda = 1;
        if (device[4] == ':') {
            uint64_t d;
            IPR_TRY(ipr_parse_u64(device + 5, 64, "--device cuda:N", &d));
            dev = (int)d;
        }
    } else {
        IPR_FAIL("unknown device '%s' (expected cpu or cuda[:N])", device);
    }
    struct stat st;
    IPR_CHECK(force || stat(out, &st) != 0, "%s exists (use --force to overwrite)", out);

    /* input, shapes checked against each other and the checkpoint */
    ipr_model_info cfg;
    IPR_TRY(ipr_model_info_read(ckpt, &cfg));
    IPR_TRY_ID(fin = ipr_h5_open_read(in));
    int rx, rt;
    hsize_t dx[8], dt[8];
    IPR_TRY(ipr_h5_read_alloc(fin, "input/x", H5T_NATIVE_FLOAT, 4, &rx, dx, (void **)&x));
    IPR_TRY(ipr_h5_read_alloc(fin, "input/t", H5T_NATIVE_FLOAT, 4, &rt, dt, (void **)&t));
    H5Fclose(fin);
    fin = H5I_INVALID_HID;
    IPR_CHECK((int)dx[1] == cfg.d_in, "%s: /input/x has %llu channels, the checkpoint's d_in is %d", in,
              (unsigned long long)dx[1], cfg.d_in);
    IPR_CHECK(dt[0] == dx[0] && dt[1] == 1 && dt[2] == dx[2] && dt[3] == dx[3],
              "%s: /input/t is [%llu, %llu, %llu, %llu], expected [%llu, 1, %llu, %llu] to match /input/x", in,
              (unsigned long long)dt[0], (unsigned long long)dt[1], (unsigned long long)dt[2],
              (unsigned long long)dt[3], (unsigned long long)dx[0], (unsigned long long)dx[2],
              (unsigned long long)dx[3]);
    const int B = (int)dx[0], H = (int)dx[2], W = (int)dx[3];
    IPR_CHECK(B >= 1 && H >= 1 && W >= 1, "%s: empty input", in);
    const size_t HWc = (size_t)H * W;
    for (size_t i = 0; i < (size_t)B * HWc; ++i)
        IPR_CHECK(t[i] >= 0.0f && t[i] <= 1.0f, "%s: /input/t[%zu, 0, %zu, %zu] holds %g, noise levels lie in [0, 1]",
                  in, i / HWc, i % HWc / (size_t)W, i % (size_t)W, t[i]);
    /* one NaN or infinity spreads through every convolution and GroupNorm to the whole batch: refuse it by index */
    for (size_t i = 0; i < (size_t)B * (size_t)cfg.d_in * HWc; ++i)
        IPR_CHECK(isfinite(x[i]), "%s: /input/x[%zu, %zu, %zu, %zu] is %g: inputs must be finite", in,
                  i / ((size_t)cfg.d_in * HWc), i / HWc % (size_t)cfg.d_in, i % HWc / (size_t)W, i % (size_t)W, x[i]);
    int mb = batch ? (int)batch : (B < 64 ? B : 64);
    if (mb > B) mb = B;

    size_t wb, ab;
    if (cfg.backbone == IPR_BACKBONE_DIT) {
        IPR_CHECK(H == cfg.image_size[0] && W == cfg.image_size[1],
                  "%s: /input/x is %d x %d; the DiT %s works on its own image size, %d x %d", in, H, W, ckpt,
                  cfg.image_size[0], cfg.image_size[1]);
        IPR_TRY_PTR(dnet = ipr_dit_load(ckpt, mb));
        ipr_dit_arena_bytes(dnet, &wb, &ab);
        ipr_log(IPR_LOG_INFO, "forward: %s (%s), %lld parameters, CPU arenas: weights %.1f MiB, activations %.1f MiB",
                ckpt, cfg.arch, (long long)ipr_dit_param_count(dnet), wb / 1048576.0, ab / 1048576.0);
        if (use_cuda) {
            IPR_TRY_PTR(dgpu = ipr_dit_cuda_new(dnet, dev, prec));
            ipr_dit_cuda_arena_bytes(dgpu, &wb, &ab);
            ipr_log(IPR_LOG_INFO, "forward: %s (%s), GPU arenas: weights %.1f MiB, activations %.1f MiB",
                    ipr_dit_cuda_device_name(dgpu), ipr_precision_name(prec), wb / 1048576.0, ab / 1048576.0);
        }
    } else {
        IPR_TRY_PTR(net = ipr_unet_load(ckpt, mb, H, W));
        ipr_unet_arena_bytes(net, &wb, &ab);
        ipr_log(IPR_LOG_INFO, "forward: %s, %lld parameters, CPU arenas: weights %.1f MiB, activations %.1f MiB", ckpt,
                (long long)ipr_unet_param_count(net), wb / 1048576.0, ab / 1048576.0);
        if (use_cuda) {
            IPR_TRY_PTR(gpu = ipr_unet_cuda_new(net, dev, prec));
            ipr_unet_cuda_arena_bytes(gpu, &wb, &ab);
            ipr_log(IPR_LOG_INFO, "forward: %s (%s), GPU arenas: weights %.1f MiB, activations %.1f MiB",
                    ipr_unet_cuda_device_name(gpu), ipr_precision_name(prec), wb / 1048576.0, ab / 1048576.0);
        }
    }
    const size_t HW = (size_t)H * W;
    y = ipr_malloc((size_t)B * cfg.d_out * HW * sizeof(float), "output");
    if (!y) goto fail;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int b0 = 0; b0 < B; b0 += mb) {
        int n = B - b0 < mb ? B - b0 : mb;
        const float *xb = x + (size_t)b0 * cfg.d_in * HW, *tb = t + (size_t)b0 * HW;
        float *yb = y + (size_t)b0 * cfg.d_out * HW;
        if (dgpu)
            IPR_TRY(ipr_dit_cuda_forward(dgpu, xb, tb, n, yb));
        else if (dnet)
            IPR_TRY(ipr_dit_forward(dnet, xb, tb, n, yb));
        else if (gpu)
            IPR_TRY(ipr_unet_cuda_forward(gpu, xb, tb, n, yb));
        else
            IPR_TRY(ipr_unet_forward(net, xb, tb, n, yb));
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double sec = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    ipr_log(IPR_LOG_INFO, "forward: %d images in %.3f s", B, sec);

    char sha[IPR_SHA256_HEX];
    IPR_TRY(ipr_sha256_file(ckpt, sha));
    IPR_TRY(ipr_tmp_path(tmp, sizeof tmp, out));
    IPR_TRY_ID(fout = ipr_h5_create(tmp));
    IPR_TRY(ipr_h5_attr_str(fout, "producer", "ipr " IPR_VERSION " (git " IPR_GIT_SHA ")"));
    IPR_TRY(ipr_h5_attr_str(fout, "checkpoint_sha256", sha));
    IPR_TRY(ipr_h5_attr_str(fout, "device", gpu ? ipr_unet_cuda_device_name(gpu) : dgpu ? ipr_dit_cuda_device_name(dgpu)
                                                                                           : "cpu"));
    IPR_TRY(ipr_h5_attr_str(fout, "architecture", cfg.arch));
    IPR_TRY(ipr_h5_attr_str(fout, "precision", ipr_precision_name(prec)));
    IPR_TRY_ID(g = ipr_h5_group(fout, "output"));
    hsize_t dy[4] = {(hsize_t)B, (hsize_t)cfg.d_out, (hsize_t)H, (hsize_t)W};
    IPR_TRY(ipr_h5_write(g, "y", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 4, dy, y));
    H5Gclose(g);
    g = H5I_INVALID_HID;
    IPR_TRY(ipr_h5_fclose(&fout));
    IPR_TRY(ipr_commit_tmp(tmp, out));
    printf("wrote /output/y [%d, %d, %d, %d] to %s\n", B, cfg.d_out, H, W, out);
    free(x), free(t), free(y);
    ipr_dit_cuda_free(dgpu);
    ipr_dit_free(dnet);
    ipr_unet_cuda_free(gpu);
    ipr_unet_free(net);
    return IPR_EXIT_OK;
fail:
    if (g >= 0) H5Gclose(g);
    if (fout >= 0) H5Fclose(fout);
    if (fin >= 0) H5Fclose(fin);
    if (tmp[0]) unlink(tmp);
    free(x), free(t), free(y);
    ipr_dit_cuda_free(dgpu);
    ipr_dit_free(dnet);
    ipr_unet_cuda_free(gpu);
    ipr_unet_free(net);
    return ipr_cli_fail("forward");
}
