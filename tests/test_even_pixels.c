/* test_even_pixels.c: generated Even Pixels images follow spec 4.2 exactly and score valid; the
 * scorer detects single-pixel violations; PIL's HSV->RGB conversion on known values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ipr/bench.h"

static void test_hsv_to_rgb_known_values(void **state) {
    (void)state;
    /* worked by hand from libImaging hsv2rgb: i = floor(6h/255), f = 6h/255 - i, p/q/t rounded */
    const uint8_t cases[][6] = {
        {0, 255, 178, 178, 0, 0},     {42, 255, 178, 178, 176, 0}, {85, 255, 178, 0, 178, 0},
        {128, 255, 178, 0, 176, 178}, {170, 255, 178, 0, 0, 178}, {213, 255, 178, 178, 0, 176},
        {0, 0, 99, 99, 99, 99},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        uint8_t rgb[3];
        ipr_hsv_to_rgb_u8(cases[i], rgb);
        assert_int_equal(rgb[0], cases[i][3]);
        assert_int_equal(rgb[1], cases[i][4]);
        assert_int_equal(rgb[2], cases[i][5]);
    }
}

static void test_instances_follow_spec_and_score_valid(void **state) {
    (void)state;
    ipr_even_pixels_instance e, e2;
    for (uint64_t i = 0; i < 2000; ++i) {
        ipr_split split = (i & 1) ? IPR_SPLIT_TEST : IPR_SPLIT_TRAIN;
        assert_int_equal(ipr_even_pixels_make(17, split, i, &e), 0);
        assert_true(e.hue_offset >= 0.0f && e.hue_offset < 0.5f);
        int ones = 0;
        for (int p = 0; p < IPR_EP_PIXELS; ++p) ones += e.mask[p];
        assert_int_equal(ones, 512);
        /* exactly two colours, split by the mask */
        const uint8_t *a = NULL, *b = NULL;
        for (int p = 0; p < IPR_EP_PIXELS; ++p) {
            const uint8_t *px = e.image + 3 * p;
            const uint8_t **ref = e.mask[p] ? &b : &a;
            if (!*ref) *ref = px;
            assert_memory_equal(px, *ref, 3);
        }
        assert_memory_not_equal(a, b, 3);
        /* V = 178 (0.7 * 255 truncated): the brightest channel of each colour */
        assert_int_equal(a[0] > a[1] ? (a[0] > a[2] ? a[0] : a[2]) : (a[1] > a[2] ? a[1] : a[2]), 178);
        assert_int_equal(ipr_even_pixels_error_u8(e.image, 32, 32), 0);
        /* and through the float path the pipeline uses, from [-1, 1] CHW */
        float chw[3 * 1024];
        for (int p = 0; p < 1024; ++p)
            for (int c = 0; c < 3; ++c) chw[c * 1024 + p] = e.image[3 * p + c] / 255.0f * 2.0f - 1.0f;
        assert_int_equal(ipr_even_pixels_error_chw(chw, 32, 32), 0);
        /* deterministic */
        assert_int_equal(ipr_even_pixels_make(17, split, i, &e2), 0);
        assert_memory_equal(e.image, e2.image, sizeof e.image);
    }
}

static void test_single_pixel_violation(void **state) {
    (void)state;
    ipr_even_pixels_instance e;
    for (uint64_t i = 0; i < 200; ++i) {
        assert_int_equal(ipr_even_pixels_make(3, IPR_SPLIT_TEST, i, &e), 0);
        int p0 = -1, p1 = -1;
        for (int p = 0; p < IPR_EP_PIXELS && (p0 < 0 || p1 < 0); ++p) {
            if (!e.mask[p] && p0 < 0) p0 = p;
            if (e.mask[p] && p1 < 0) p1 = p;
        }
        uint8_t img[3 * 1024];
        memcpy(img, e.image, sizeof img);
        memcpy(img + 3 * p0, e.image + 3 * p1, 3); /* one pixel takes the other colour: 511 vs 513 */
        assert_int_equal(ipr_even_pixels_error_u8(img, 32, 32), 1);
        /* an all-one-colour image is maximally wrong */
        for (int p = 0; p < 1024; ++p) memcpy(img + 3 * p, e.image + 3 * p0, 3);
        assert_int_equal(ipr_even_pixels_error_u8(img, 32, 32), 512);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hsv_to_rgb_known_values),
        cmocka_unit_test(test_instances_follow_spec_and_score_valid),
        cmocka_unit_test(test_single_pixel_violation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
