/* make_test_checkpoint.c: writes a random-weight SRM U-Net or region-token DiT checkpoint of any geometry with tiny
 * widths, so sampler tests at benchmark image sizes stay fast on a CPU. Not a test itself; the CLI tests call it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipr/common.h"
#include "ipr/dit.h"
#include "ipr/h5io.h"
#include "ipr/unet.h"

static void usage(void) {
    fprintf(stderr,
            "usage: make_test_checkpoint OUT.h5 C H W PATCH SEED WIDTH [WIDTH ...]\n"
            "  a U-Net with d_in C, d_out 2C + 1, levels of the given widths (multiples of 32), no attention\n"
            "  but the bottleneck's (32 channels per head), random weights keyed by SEED\n"
            "usage: make_test_checkpoint --dit OUT.h5 --channels C --size H[xW] --patch P [--tokens-per-side S]\n"
            "         [--d-hid D] [--depth L] [--heads N] [--mlp-ratio R] [--param u|x] [--t-min T] [--seed SEED]\n"
            "  a region-token DiT (spec dit.md), d_out 2C + 1, random weights keyed by SEED (ipr_dit_init_random);\n"
            "  defaults: s 1, d_hid 32, depth 2, heads 2, mlp_ratio 4, param x, t_min 0.05, seed 1\n");
}

/* --dit OUT.h5 [flags]: a random-weight DiT checkpoint (ipr_dit_new + ipr_dit_init_random + ipr_dit_save) */
static int make_dit(int argc, char **argv) {
    static const struct option longopts[] = {
        {"channels", required_argument, 0, 'c'}, {"size", required_argument, 0, 'z'},
        {"patch", required_argument, 0, 'p'},    {"tokens-per-side", required_argument, 0, 's'},
        {"d-hid", required_argument, 0, 'd'},    {"depth", required_argument, 0, 'l'},
        {"heads", required_argument, 0, 'n'},    {"mlp-ratio", required_argument, 0, 'm'},
        {"param", required_argument, 0, 'x'},    {"t-min", required_argument, 0, 't'},
        {"seed", required_argument, 0, 'r'},     {"dit", no_argument, 0, 'D'},
        {0, 0, 0, 0}};
    ipr_dit_config cfg;
    ipr_dit_config_init(&cfg);
    cfg.d_hid = 32, cfg.depth = 2, cfg.num_heads = 2;
    unsigned long long seed = 1;
    const char *out = NULL;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': cfg.d_in = atoi(optarg); break;
        case 'z':
            if (sscanf(optarg, "%dx%d", &cfg.image_size[0], &cfg.image_size[1]) != 2)
                cfg.image_size[0] = cfg.image_size[1] = atoi(optarg);
            break;
        case 'p': cfg.patch_size = atoi(optarg); break;
        case 's': cfg.tokens_per_side = atoi(optarg); break;
        case 'd': cfg.d_hid = atoi(optarg); break;
        case 'l': cfg.depth = atoi(optarg); break;
        case 'n': cfg.num_heads = atoi(optarg); break;
        case 'm': cfg.mlp_ratio = atoi(optarg); break;
        case 'x':
            if (strcmp(optarg, "u") == 0) {
                cfg.parameterization = IPR_DIT_PARAM_U;
            } else if (strcmp(optarg, "x") == 0) {
                cfg.parameterization = IPR_DIT_PARAM_X;
            } else {
                fprintf(stderr, "make_test_checkpoint: --param %s (u or x)\n", optarg);
                return 1;
            }
            break;
        case 't': cfg.t_min = atof(optarg); break;
        case 'r': seed = strtoull(optarg, NULL, 10); break;
        case 'D': break;
        default: usage(); return 1;
        }
    }
    /* exactly one positional argument: OUT.h5 (getopt_long moves it behind the options) */
    for (int i = optind; i < argc; ++i) {
        if (out) {
            usage();
            return 1;
        }
        out = argv[i];
    }
    if (!out) {
        usage();
        return 1;
    }
    cfg.d_out = 2 * cfg.d_in + 1;
    ipr_dit *net = NULL;
    if (ipr_dit_config_validate(&cfg) != IPR_OK || !(net = ipr_dit_new(&cfg, 1))) {
        ipr_error_print("make_test_checkpoint");
        return 1;
    }
    ipr_dit_init_random(net, (uint64_t)seed);
    const int rc = ipr_dit_save(net, out);
    if (rc != IPR_OK) ipr_error_print("make_test_checkpoint");
    ipr_dit_free(net);
    return rc == IPR_OK ? 0 : 1;
}

int main(int argc, char **argv) {
    ipr_h5_quiet();
    for (int i = 1; i < argc; ++i)
        if (strcmp(argv[i], "--dit") == 0) return make_dit(argc, argv);
    if (argc < 8) {
        usage();
        return 1;
    }
    ipr_unet_config cfg;
    ipr_unet_config_init(&cfg);
    const int C = atoi(argv[2]), H = atoi(argv[3]), W = atoi(argv[4]), patch = atoi(argv[5]);
    const unsigned long long seed = strtoull(argv[6], NULL, 10);
    cfg.n_levels = argc - 7;
    if (cfg.n_levels > IPR_UNET_MAX_LEVELS) {
        fprintf(stderr, "make_test_checkpoint: at most %d levels\n", IPR_UNET_MAX_LEVELS);
        return 1;
    }
    for (int l = 0; l < cfg.n_levels; ++l) cfg.hid_dims[l] = atoi(argv[7 + l]);
    cfg.num_head_channels = 32;
    cfg.d_in = C;
    cfg.d_out = 2 * C + 1;
    cfg.patch_size = patch;
    cfg.image_size[0] = H;
    cfg.image_size[1] = W;
    ipr_unet *net = NULL;
    if (ipr_unet_config_validate(&cfg) != IPR_OK || !(net = ipr_unet_new(&cfg, 1, H, W, 0))) {
        ipr_error_print("make_test_checkpoint");
        return 1;
    }
    ipr_unet_init_random(net, (uint64_t)seed);
    if (ipr_unet_save(net, argv[1]) != IPR_OK) {
        ipr_error_print("make_test_checkpoint");
        ipr_unet_free(net);
        return 1;
    }
    ipr_unet_free(net);
    return 0;
}
