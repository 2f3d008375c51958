/* schedule.c: when each region is denoised: the reference's float32 block arithmetic (spec 3.1, 9a), the
 * parallel level schedule, the random and Sudoku-graph orders (spec 2.6) and the IPR subset (spec 3.2). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ipr/common.h"
#include "ipr/rng.h"
#include "sampler_internal.h"

/* ---------------- block arithmetic ---------------- */

/* Every product and sum below is one float32 operation in the reference's order (spec 9a); C11 without
 * FP contraction (the project builds with -std=c11, which turns it off) rounds each one to float. */
static int derived_steps(int B, int p, float omo) {
    const float span = (float)(B - 1) * omo;  /* (B - 1) * (1 - o) */
    const float pf = (float)p;
    const float total = pf + span * pf;       /* p + ((B - 1) * (1 - o)) * p */
    return (int)ceilf(total);
}

int ipr_block_plan_make(int B, int p, double o, int max_steps, int floor_length, ipr_block_plan *plan,
                        int *starts) {
    IPR_CHECK(B >= 1, "block plan: %d regions (need >= 1)", B);
    IPR_CHECK(max_steps > 0 || p >= 1, "block plan: steps per region %d (need >= 1)", p);
    IPR_CHECK(o >= 0.0 && o < 1.0, "block plan: overlap %g outside [0, 1)", o);
    /* (1 - o) in double, rounded once to float32: 0.8 gives 0.2f = 0.20000000298 (spec 9a) */
    const float omo = (float)(1.0 - o);
    const int ms = max_steps > 0 ? max_steps : derived_steps(B, p, omo);
    IPR_CHECK(ms >= 1 && ms < IPR_MAX_PASSES, "block plan: %d passes for %d regions (limit %d)", ms, B,
              IPR_MAX_PASSES - 1);
    /* max_steps / x on a tensor is torch's __rtruediv__: reciprocal(x) * max_steps, two roundings (this is
     * what gives B = 17 its ramp of 11 at p = 10, o = 0.8) */
    const float inv = 1.0f / ((float)(B - 1) * omo + 1.0f);
    const float L_ideal = (float)ms * inv;
    int L = floor_length ? (int)floorf(L_ideal) : (int)ceilf(L_ideal);
    if (L < 1) L = 1;
    plan->regions = B;
    plan->max_steps = ms;
    plan->L_ideal = L_ideal;
    plan->L = L;
    plan->ramp = IPR_RAMP_LINEAR;
    for (int k = 0; k < B; ++k) {
        /* adaptive: floor((k * L_ideal) * (1 - o)); graph_sequential: floor(k * L * (1 - o)) */
        const float a = floor_length ? (float)k * (float)L : (float)k * L_ideal;
        int s = (int)floorf(a * omo);
        /* float rounding may put a start past the last pass; the schedule still has to run it */
        if (s > ms - 1) s = ms - 1;
        if (s < 0) s = 0;
        starts[k] = s;
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

int ipr_block_plan_parallel(int B, int p, double o, int max_steps, ipr_block_plan *plan, int *starts) {
    IPR_CHECK(B >= 1, "block plan: %d regions (need >= 1)", B);
    IPR_CHECK(max_steps > 0 || p >= 1, "block plan: steps per region %d (need >= 1)", p);
    IPR_CHECK(o >= 0.0 && o < 1.0, "block plan: overlap %g outside [0, 1)", o);
    /* with no max_steps the parallel sampler gets the sequential one's budget, so both cost the same */
    const int ms = max_steps > 0 ? max_steps : derived_steps(B, p, (float)(1.0 - o));
    IPR_CHECK(ms >= 1 && ms < IPR_MAX_PASSES, "block plan: %d passes (limit %d)", ms, IPR_MAX_PASSES - 1);
    plan->regions = B;
    plan->max_steps = ms;
    plan->L_ideal = (float)ms;
    plan->L = ms;
    plan->ramp = IPR_RAMP_LINSPACE;
    for (int k = 0; k < B; ++k) starts[k] = 0;
    return IPR_OK;
fail:
    return IPR_ERR;
}

float ipr_block_level(const ipr_block_plan *plan, int start, int s) {
    if (s >= plan->max_steps) return 0.0f;  /* every generation ends clean */
    const int j = s - start;
    if (j < 0) return 1.0f;
    if (j >= plan->L) return 0.0f;
    if (plan->ramp == IPR_RAMP_LINEAR) return (float)(plan->L - j) / (float)plan->L; /* (L - j) / L, float32 */
    /* torch.linspace(1, 0, n + 1) in float32 as its CUDA kernel (and the CPU kernel's scalar path) computes
     * it: from the start for the first half, from the end for the second (spec 2.6 'fixed'). The CPU
     * kernel's vectorised path differs by an ulp in places; the reference samples on GPUs. */
    const int n = plan->max_steps + 1;
    const float step = (0.0f - 1.0f) / (float)(n - 1);
    if (j < n / 2) return 1.0f + step * (float)j;
    return 0.0f - step * (float)(n - j - 1);
}

/* ---------------- orders ---------------- */

int ipr_order_random(uint64_t seed, uint64_t instance, uint32_t iteration, const uint8_t *unknown, int R,
                     uint16_t *order) {
    uint32_t list[IPR_MAX_REGIONS];
    int n = 0;
    for (int r = 0; r < R && r < IPR_MAX_REGIONS; ++r)
        if (unknown[r]) list[n++] = (uint32_t)r;
    ipr_rng rng;
    ipr_rng_init(&rng, seed, IPR_RNG_ORDER, instance, iteration);
    ipr_rng_shuffle_u32(&rng, list, (uint32_t)n);
    for (int i = 0; i < n; ++i) order[i] = (uint16_t)list[i];
    return n;
}

int ipr_order_graph(uint64_t seed, uint64_t instance, uint32_t iteration, const uint8_t *unknown, int gh, int gw,
                    uint16_t *order) {
    int b = 1;
    while ((b + 1) * (b + 1) <= gw) ++b;
    IPR_CHECK(gh == gw && b * b == gw && b >= 2 && gw <= 16,
              "graph order needs a Sudoku grid of n x n regions with n = b * b (4, 9 or 16), got %d x %d", gh, gw);
    const int R = gh * gw;
    uint8_t known[256];
    uint16_t cand[256];
    int n_unknown = 0;
    for (int r = 0; r < R; ++r) {
        known[r] = unknown[r] ? 0 : 1;
        n_unknown += unknown[r] ? 1 : 0;
    }
    ipr_rng rng;
    ipr_rng_init(&rng, seed, IPR_RNG_TIE_BREAK, instance, iteration);
    for (int k = 0; k < n_unknown; ++k) {
        /* spec 2.6: certainty = knowledge (I + 0.5 A / rowsum); every cell has the same number of peers, so
         * among unknown cells it orders by the count of known peers. Integers: ties are exact. */
        int best = -1, nc = 0;
        for (int r = 0; r < R; ++r) {
            if (known[r]) continue;
            const int row = r / gw, col = r % gw, box_r = row / b, box_c = col / b;
            int peers = 0;
            for (int q = 0; q < R; ++q) {
                if (q == r || !known[q]) continue;
                const int qr = q / gw, qc = q % gw;
                if (qr == row || qc == col || (qr / b == box_r && qc / b == box_c)) ++peers;
            }
            if (peers > best) {
                best = peers;
                nc = 0;
            }
            if (peers == best) cand[nc++] = (uint16_t)r;
        }
        const uint16_t pick = cand[ipr_rng_below(&rng, (uint32_t)nc)];
        order[k] = pick;
        known[pick] = 1;
    }
    return n_unknown;
fail:
    return -1;
}

/* ---------------- IPR subsets ---------------- */

int ipr_subset_size(int n, double ratio) {
    if (n <= 0) return 0;
    int m = (int)floor((double)n * ratio); /* int(len(R) * ratio) in the reference */
    if (m < 1) m = 1;
    if (m > n) m = n;
    return m;
}

static int cmp_u16(const void *a, const void *b) {
    const uint16_t x = *(const uint16_t *)a, y = *(const uint16_t *)b;
    return (x > y) - (x < y);
}

void ipr_subset_choose(uint64_t seed, uint64_t instance, uint32_t iteration, const uint16_t *refinable, int n,
                       int m, ipr_selection selection, double mix, const float *sigma, uint16_t *chosen) {
    uint32_t list[IPR_MAX_REGIONS];
    uint8_t taken[IPR_MAX_REGIONS];
    if (m <= 0 || n <= 0 || n > IPR_MAX_REGIONS) return;
    if (m > n) m = n;
    int n_unc = 0;
    if (selection != IPR_SELECT_UNIFORM && sigma) {
        int finite = 0;
        for (int i = 0; i < n; ++i) finite += isfinite(sigma[refinable[i]]) ? 1 : 0;
        if (finite > 0) n_unc = selection == IPR_SELECT_UNCERTAINTY ? m : (int)floor(mix * m + 0.5);
    }
    if (n_unc > m) n_unc = m;
    if (n_unc < 0) n_unc = 0;
    memset(taken, 0, (size_t)n);
    /* highest sigma first, ties to the lowest region index; NAN counts as lowest */
    for (int k = 0; k < n_unc; ++k) {
        int best = -1;
        for (int i = 0; i < n; ++i) {
            if (taken[i]) continue;
            const float s = sigma[refinable[i]];
            if (best < 0) {
                best = i;
                continue;
            }
            const float bs = sigma[refinable[best]];
            if (isfinite(s) && (!isfinite(bs) || s > bs)) best = i;
        }
        taken[best] = 1;
        chosen[k] = refinable[best];
    }
    /* the rest uniformly: the remaining list (ascending) shuffled, its first m - n_unc */
    int nl = 0;
    for (int i = 0; i < n; ++i)
        if (!taken[i]) list[nl++] = refinable[i];
    if (m > n_unc) {
        ipr_rng rng;
        ipr_rng_init(&rng, seed, IPR_RNG_IPR_SUBSET, instance, iteration);
        ipr_rng_shuffle_u32(&rng, list, (uint32_t)nl);
        for (int k = n_unc; k < m; ++k) chosen[k] = (uint16_t)list[k - n_unc];
    }
    qsort(chosen, (size_t)m, sizeof *chosen, cmp_u16);
}
