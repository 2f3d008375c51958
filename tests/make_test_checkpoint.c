/* make_test_checkpoint.c: writes a random-weight SRM U-Net checkpoint of any geometry with tiny widths, so
 * sampler tests at benchmark image sizes stay fast on a CPU. Not a test itself; the CLI tests call it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipr/common.h"
#include "ipr/h5io.h"
#include "ipr/unet.h"

int main(int argc, char **argv) {
    if (argc < 8) {
        fprintf(stderr,
                "usage: make_test_checkpoint OUT.h5 C H W PATCH SEED WIDTH [WIDTH ...]\n"
                "  a U-Net with d_in C, d_out 2C + 1, levels of the given widths (multiples of 32), no attention\n"
                "  but the bottleneck's (32 channels per head), random weights keyed by SEED\n");
        return 1;
    }
    ipr_h5_quiet();
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
