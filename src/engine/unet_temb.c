/* unet_temb.c: the per-pixel time embedding (spec 1.4) evaluated once per distinct noise level.
 * The bilinear-resized noise map takes few distinct values (reference-throughput.md), so the shared
 * sinusoid + MLP runs once per distinct level of the whole forward pass (all resolutions), and each
 * ResBlock's SiLU + Linear once per distinct level of its resolution; pixels then gather their row.
 * Every level goes through the same routine whichever way it is reached, so this is exact. */
#include <math.h>
#include <string.h>

#include "ipr/common.h"
#include "unet_internal.h"

/* Every GEMM here has the same shape whatever the number of rows that are real: a chunk of te->chunk rows,
 * the unused rows zeroed. A row's result then depends on its level alone, never on how many other levels
 * share the call (BLAS kernels pick their blocking from M), so a sample's output is bitwise the same in
 * any batch, and the per-pixel fallback gives the table's numbers. */

/* out (n, t_emb_dim) = mlp.2(SiLU(mlp.0(sinusoid(t)))) */
void ipr_unet_temb_mlp(ipr_unet *net, const double *t, int n, float *out) {
    ipr_unet_temb *te = &net->temb;
    const int T = net->cfg.t_emb_dim, D = net->cfg.d_emb, R = te->chunk;
    for (int j0 = 0; j0 < n; j0 += R) {
        const int m = j0 + R <= n ? R : n - j0;
        ipr_cpu_sinusoid(te->sin, t + j0, m, D, net->freqs);
        if (m < R) memset(te->sin + (size_t)m * D, 0, sizeof(float) * (size_t)(R - m) * D);
        ipr_cpu_linear(te->hid, te->sin, net->temb1.w, net->temb1.b, R, D, T);
        ipr_cpu_silu(te->hid, te->hid, (size_t)R * T);
        ipr_cpu_linear(te->out, te->hid, net->temb2.w, net->temb2.b, R, T, T);
        memcpy(out + (size_t)j0 * T, te->out, sizeof(float) * (size_t)m * T);
    }
}

int ipr_unet_time_embedding(ipr_unet *net, const double *t, int n, float *emb) {
    IPR_CHECK(net != NULL && n >= 0 && (n == 0 || (t != NULL && emb != NULL)), "time embedding: bad arguments");
    ipr_unet_temb_mlp(net, t, n, emb);
    return IPR_OK;
fail:
    return IPR_ERR;
}

static inline uint64_t mix64(uint64_t z) {
    /* splitmix64 finaliser */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void ipr_unet_temb_prepare(ipr_unet *net, const float *t, int B) {
    ipr_unet_temb *te = &net->temb;
    const size_t HW = (size_t)net->H * net->W;
    te->B = B;
    te->fallback = 0;
    te->n_distinct = 0;

    /* interpolate(t, size=(h_l, w_l), mode="bilinear") for every level, from the full-resolution map */
    for (int l = 0; l < net->L; ++l) {
        const size_t hw = (size_t)net->lh[l] * net->lw[l];
        double *base = te->tmap + (size_t)net->max_batch * net->loff[l];
        for (int b = 0; b < B; ++b)
            ipr_cpu_resize_bilinear(base + (size_t)b * hw, t + (size_t)b * HW, net->H, net->W, net->lh[l], net->lw[l]);
    }

    /* distinct levels over all resolutions: open addressing on the bit pattern */
    const uint32_t mask = (uint32_t)te->hcap - 1;
    for (int i = 0; i < te->hcap; ++i) te->hvals[i] = -1;
    int U = 0;
    for (int l = 0; l < net->L; ++l) {
        const size_t n = (size_t)B * net->lh[l] * net->lw[l];
        const double *tm = te->tmap + (size_t)net->max_batch * net->loff[l];
        int32_t *ix = te->idx + (size_t)net->max_batch * net->loff[l];
        for (size_t p = 0; p < n; ++p) {
            uint64_t key;
            memcpy(&key, &tm[p], sizeof key);
            uint32_t s = (uint32_t)mix64(key) & mask;
            while (te->hvals[s] >= 0 && te->hkeys[s] != key) s = (s + 1) & mask;
            if (te->hvals[s] < 0) {
                if (U == te->cap) {
                    /* more distinct levels than the table holds: per-pixel evaluation instead */
                    te->fallback = 1;
                    return;
                }
                te->hkeys[s] = key;
                te->hvals[s] = U;
                te->gval[U++] = tm[p];
            }
            ix[p] = te->hvals[s];
        }
    }
    te->n_distinct = U;

    /* the shared MLP once per distinct level */
    ipr_unet_temb_mlp(net, te->gval, U, te->E);

    /* per level: the distinct levels it holds (level-local rows), pixels re-indexed to them */
    for (int l = 0; l < net->L; ++l) {
        const size_t n = (size_t)B * net->lh[l] * net->lw[l];
        int32_t *ix = te->idx + (size_t)net->max_batch * net->loff[l];
        int32_t *list = te->list[l];
        int m = 0;
        for (size_t p = 0; p < n; ++p) {
            const int32_t g = ix[p];
            if (te->loc[g] < 0) {
                te->loc[g] = m;
                list[m++] = g;
            }
            ix[p] = te->loc[g];
        }
        for (int j = 0; j < m; ++j) te->loc[list[j]] = -1;
        te->n_level[l] = m;
    }
}

/* G (chunk, T) = SiLU(rows of E), rows past m zeroed */
static void silu_rows(ipr_unet_temb *te, const int32_t *rows, int m, int T) {
    for (int j = 0; j < m; ++j) ipr_cpu_silu(te->G + (size_t)j * T, te->E + (size_t)rows[j] * T, (size_t)T);
    if (m < te->chunk) memset(te->G + (size_t)m * T, 0, sizeof(float) * (size_t)(te->chunk - m) * T);
}

void ipr_unet_temb_project(ipr_unet *net, const ipr_linear_w *emb, int level) {
    ipr_unet_temb *te = &net->temb;
    if (te->fallback) return;
    const int T = net->cfg.t_emb_dim, n = te->n_level[level], R = te->chunk;
    /* embedding_layer = SiLU, Linear(T -> C_out), once per distinct level of this resolution; P holds
     * whole chunks (pcap is a multiple of the chunk) */
    for (int j0 = 0; j0 < n; j0 += R) {
        const int m = j0 + R <= n ? R : n - j0;
        silu_rows(te, te->list[level] + j0, m, T);
        ipr_cpu_linear(te->P + (size_t)j0 * emb->out, te->G, emb->w, emb->b, R, T, emb->out);
    }
}

void ipr_unet_temb_add(ipr_unet *net, const ipr_linear_w *emb, int level, int b, float *u) {
    ipr_unet_temb *te = &net->temb;
    const size_t hw = (size_t)net->lh[level] * net->lw[level];
    const size_t base = (size_t)net->max_batch * net->loff[level] + (size_t)b * hw;
    const int C = emb->out, T = net->cfg.t_emb_dim, R = te->chunk;
    if (!te->fallback) {
        ipr_cpu_add_indexed(u, te->P, te->idx + base, C, (int)hw);
        return;
    }
    /* fallback: the same routines per pixel, a chunk at a time (E's first chunk is scratch here) */
    for (size_t p0 = 0; p0 < hw; p0 += (size_t)R) {
        const int m = p0 + (size_t)R <= hw ? R : (int)(hw - p0);
        ipr_unet_temb_mlp(net, te->tmap + base + p0, m, te->E);
        ipr_cpu_silu(te->G, te->E, (size_t)m * T);
        if (m < R) memset(te->G + (size_t)m * T, 0, sizeof(float) * (size_t)(R - m) * T);
        ipr_cpu_linear(te->P, te->G, emb->w, emb->b, R, T, C);
        for (int p = 0; p < m; ++p)
            for (int c = 0; c < C; ++c) u[(size_t)c * hw + p0 + p] += te->P[(size_t)p * C + c];
    }
}
