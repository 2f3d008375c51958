/* rng.c: Philox4x32-10 (Salmon et al., SC'11) and the draws built on it.
 * Written from the published round function; checked against the Random123 known-answer vectors. */
#include "ipr/rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void ipr_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; ++round) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t)p0;
        c0 = n0, c1 = n1, c2 = n2, c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

static void set_counter(uint32_t ctr[4], uint32_t block, uint32_t purpose, uint64_t instance, uint32_t step) {
    ctr[0] = block;
    ctr[1] = step;
    ctr[2] = (uint32_t)instance;
    ctr[3] = (purpose << 16) | (uint32_t)((instance >> 32) & 0xFFFFu);
}

void ipr_rng_init(ipr_rng *r, uint64_t seed, uint32_t purpose, uint64_t instance, uint32_t step) {
    r->key[0] = (uint32_t)seed;
    r->key[1] = (uint32_t)(seed >> 32);
    set_counter(r->ctr, 0, purpose, instance, step);
    r->pos = 4;
    r->has_spare = 0;
    r->spare = 0.0;
}

uint32_t ipr_rng_u32(ipr_rng *r) {
    if (r->pos >= 4) {
        ipr_philox4x32_10(r->ctr, r->key, r->buf);
        r->ctr[0]++;
        r->pos = 0;
    }
    return r->buf[r->pos++];
}

uint64_t ipr_rng_u64(ipr_rng *r) {
    uint64_t hi = ipr_rng_u32(r);
    return (hi << 32) | ipr_rng_u32(r);
}

double ipr_rng_uniform(ipr_rng *r) { return (double)(ipr_rng_u64(r) >> 11) * 0x1.0p-53; }

uint32_t ipr_rng_below(ipr_rng *r, uint32_t n) {
    if (n <= 1) return 0;
    /* reject the top partial copy of [0, n) so every value is equally likely */
    uint32_t limit = (uint32_t)(0x100000000ull - (0x100000000ull % n));
    for (;;) {
        uint32_t x = ipr_rng_u32(r);
        if (limit == 0 || x < limit) return x % n;
    }
}

int32_t ipr_rng_range(ipr_rng *r, int32_t lo, int32_t hi) {
    return lo + (int32_t)ipr_rng_below(r, (uint32_t)(hi - lo + 1));
}

double ipr_rng_normal(ipr_rng *r) {
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    uint32_t a = ipr_rng_u32(r), b = ipr_rng_u32(r);
    double u1 = ((double)a + 0.5) * 0x1.0p-32; /* (0, 1): log is finite */
    double u2 = (double)b * 0x1.0p-32;
    double rad = sqrt(-2.0 * log(u1));
    double ang = 6.283185307179586476925 * u2;
    r->spare = rad * sin(ang);
    r->has_spare = 1;
    return rad * cos(ang);
}

void ipr_rng_shuffle_u32(ipr_rng *r, uint32_t *v, uint32_t n) {
    for (uint32_t i = n; i > 1; --i) {
        uint32_t j = ipr_rng_below(r, i);
        uint32_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

float ipr_rng_normal_at(uint64_t seed, uint32_t purpose, uint64_t instance, uint32_t step, uint64_t index) {
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    uint32_t ctr[4], out[4];
    set_counter(ctr, (uint32_t)(index >> 2), purpose, instance, step);
    ipr_philox4x32_10(ctr, key, out);
    unsigned pair = (unsigned)((index >> 1) & 1u);
    double u1 = ((double)out[2 * pair] + 0.5) * 0x1.0p-32;
    double u2 = (double)out[2 * pair + 1] * 0x1.0p-32;
    double rad = sqrt(-2.0 * log(u1));
    double ang = 6.283185307179586476925 * u2;
    return (float)((index & 1u) ? rad * sin(ang) : rad * cos(ang));
}

void ipr_rng_fill_normal(uint64_t seed, uint32_t purpose, uint64_t instance, uint32_t step, float *out,
                         uint64_t n) {
    ipr_rng_fill_normal_range(seed, purpose, instance, step, 0, out, n);
}

void ipr_rng_fill_normal_range(uint64_t seed, uint32_t purpose, uint64_t instance, uint32_t step, uint64_t first,
                               float *out, uint64_t n) {
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    uint32_t ctr[4], blk[4];
    uint64_t have = UINT64_MAX; /* block index held in blk */
    for (uint64_t i = 0; i < n; ++i) {
        const uint64_t index = first + i;
        if ((index >> 2) != have) {
            have = index >> 2;
            set_counter(ctr, (uint32_t)have, purpose, instance, step);
            ipr_philox4x32_10(ctr, key, blk);
        }
        /* the same arithmetic as ipr_rng_normal_at, so both give the same bits */
        const unsigned pair = (unsigned)((index >> 1) & 1u);
        const double u1 = ((double)blk[2 * pair] + 0.5) * 0x1.0p-32;
        const double u2 = (double)blk[2 * pair + 1] * 0x1.0p-32;
        const double rad = sqrt(-2.0 * log(u1));
        const double ang = 6.283185307179586476925 * u2;
        out[i] = (float)((index & 1u) ? rad * sin(ang) : rad * cos(ang));
    }
}
