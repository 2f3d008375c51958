/* test_rng.c: Philox4x32-10 against the Random123 known-answer vectors, and the properties the
 * reproducibility contract rests on (streams independent of call order, counter-indexed normals). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <cmocka.h>

#include "ipr/rng.h"

static void test_philox_known_answers(void **state) {
    (void)state;
    /* Random123 kat_vectors: philox4x32 10 rounds */
    const uint32_t ctr0[4] = {0, 0, 0, 0}, key0[2] = {0, 0};
    const uint32_t exp0[4] = {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u};
    const uint32_t ctr1[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
    const uint32_t key1[2] = {0xffffffffu, 0xffffffffu};
    const uint32_t exp1[4] = {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu};
    const uint32_t ctr2[4] = {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u};
    const uint32_t key2[2] = {0xa4093822u, 0x299f31d0u};
    const uint32_t exp2[4] = {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u};
    uint32_t out[4];
    ipr_philox4x32_10(ctr0, key0, out);
    for (int i = 0; i < 4; ++i) assert_int_equal(out[i], exp0[i]);
    ipr_philox4x32_10(ctr1, key1, out);
    for (int i = 0; i < 4; ++i) assert_int_equal(out[i], exp1[i]);
    ipr_philox4x32_10(ctr2, key2, out);
    for (int i = 0; i < 4; ++i) assert_int_equal(out[i], exp2[i]);
}

static void test_streams_are_addressed(void **state) {
    (void)state;
    ipr_rng a, b;
    ipr_rng_init(&a, 42, IPR_RNG_INIT_NOISE, 7, 3);
    ipr_rng_init(&b, 42, IPR_RNG_INIT_NOISE, 7, 3);
    for (int i = 0; i < 100; ++i) assert_int_equal(ipr_rng_u32(&a), ipr_rng_u32(&b));
    /* any coordinate changes the stream */
    uint32_t base[4];
    ipr_rng_init(&a, 42, IPR_RNG_INIT_NOISE, 7, 3);
    for (int i = 0; i < 4; ++i) base[i] = ipr_rng_u32(&a);
    const uint64_t seeds[] = {43, 42, 42, 42, 42 | (1ull << 40)};
    const uint32_t purposes[] = {IPR_RNG_INIT_NOISE, IPR_RNG_STEP_NOISE, IPR_RNG_INIT_NOISE, IPR_RNG_INIT_NOISE,
                                 IPR_RNG_INIT_NOISE};
    const uint64_t inst[] = {7, 7, 7 + (1ull << 32), 7, 7};
    const uint32_t steps[] = {3, 3, 3, 4, 3};
    for (int v = 0; v < 5; ++v) {
        ipr_rng_init(&b, seeds[v], purposes[v], inst[v], steps[v]);
        int same = 1;
        for (int i = 0; i < 4; ++i) same &= ipr_rng_u32(&b) == base[i];
        assert_false(same);
    }
}

static void test_normal_at_matches_fill_and_moments(void **state) {
    (void)state;
    enum { N = 200000 };
    static float buf[N];
    ipr_rng_fill_normal(9, IPR_RNG_STEP_NOISE, 11, 5, buf, N);
    double s = 0, s2 = 0;
    for (int i = 0; i < N; ++i) {
        s += buf[i];
        s2 += (double)buf[i] * buf[i];
    }
    double mean = s / N, var = s2 / N - mean * mean;
    /* 5 sigma bounds for N = 2e5: mean sd 0.0022, variance sd ~0.0032 */
    assert_true(fabs(mean) < 0.012);
    assert_true(fabs(var - 1.0) < 0.016);
    /* element i does not depend on how many were drawn before it */
    for (int i = 0; i < 50; ++i) {
        uint64_t j = (uint64_t)i * 3989u % N;
        assert_true(ipr_rng_normal_at(9, IPR_RNG_STEP_NOISE, 11, 5, j) == buf[j]);
    }
}

static void test_below_is_uniform_and_in_range(void **state) {
    (void)state;
    ipr_rng r;
    ipr_rng_init(&r, 1, IPR_RNG_ORDER, 0, 0);
    int counts[7] = {0};
    for (int i = 0; i < 70000; ++i) {
        uint32_t x = ipr_rng_below(&r, 7);
        assert_true(x < 7);
        counts[x]++;
    }
    for (int i = 0; i < 7; ++i) assert_true(counts[i] > 9500 && counts[i] < 10500);
    for (int i = 0; i < 1000; ++i) {
        double u = ipr_rng_uniform(&r);
        assert_true(u >= 0.0 && u < 1.0);
        int32_t k = ipr_rng_range(&r, -3, 3);
        assert_true(k >= -3 && k <= 3);
    }
}

static void test_shuffle_is_a_permutation(void **state) {
    (void)state;
    ipr_rng r;
    ipr_rng_init(&r, 5, IPR_RNG_IPR_SUBSET, 1, 1);
    uint32_t v[81];
    for (uint32_t i = 0; i < 81; ++i) v[i] = i;
    ipr_rng_shuffle_u32(&r, v, 81);
    int seen[81] = {0}, moved = 0;
    for (uint32_t i = 0; i < 81; ++i) {
        assert_true(v[i] < 81);
        seen[v[i]]++;
        moved += v[i] != i;
    }
    for (int i = 0; i < 81; ++i) assert_int_equal(seen[i], 1);
    assert_true(moved > 40);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_known_answers),
        cmocka_unit_test(test_streams_are_addressed),
        cmocka_unit_test(test_normal_at_matches_fill_and_moments),
        cmocka_unit_test(test_below_is_uniform_and_in_range),
        cmocka_unit_test(test_shuffle_is_a_permutation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
