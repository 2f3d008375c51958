/* merge.c: the consolidated results.h5 and its summaries, built only from plan.h5, the journals and the
 * segments they commit, so its contents do not depend on how many ranks ran or in which order. */
#define _POSIX_C_SOURCE 200809L
#include "pipeline/merge.h"

#include <archive.h>
#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "ipr/h5io.h"
#include "ipr/hash.h"
#include "pipeline/json.h"
#include "pipeline/plan.h"
#include "pipeline/rundir.h"
#include "pipeline/segment.h"

#define MAX_LABELS 4096

typedef struct {
    int n;
    char (*s)[128];
} labels;

static int label_code(labels *l, const char *s) {
    for (int i = 0; i < l->n; ++i)
        if (strcmp(l->s[i], s) == 0) return i;
    if (l->n == MAX_LABELS) return MAX_LABELS - 1;
    snprintf(l->s[l->n], 128, "%s", s);
    return l->n++;
}

static int write_labels(hid_t g, const char *name, const labels *l) {
    const char **v = malloc((size_t)(l->n ? l->n : 1) * sizeof *v);
    if (!v) {
        ipr_error_set(__FILE__, __LINE__, "out of memory");
        return IPR_ERR;
    }
    for (int i = 0; i < l->n; ++i) v[i] = l->s[i];
    int rc = pl_h5_write_strings(g, name, v, l->n);
    free(v);
    return rc;
}

/* {"file.json": <its contents>, ...} over RUN_DIR/provenance, sorted by name. */
static int provenance_json(const pl_run *run, char **out) {
    char dir[PL_PATH_MAX + 16];
    pl_buf b;
    pl_buf_init(&b);
    char *names[1024];
    int n = 0;
    pl_run_path(run, "provenance", dir, sizeof dir);
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL && n < 1024) {
            size_t L = strlen(e->d_name);
            if (L > 5 && strcmp(e->d_name + L - 5, ".json") == 0) names[n++] = strdup(e->d_name);
        }
        closedir(d);
    }
    for (int i = 1; i < n; ++i)
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; --j) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    pl_buf_add(&b, "{");
    for (int i = 0; i < n; ++i) {
        char path[PL_PATH_MAX + 300], *text = NULL;
        if (!names[i]) continue;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (pl_read_file(path, &text, NULL) == IPR_OK) {
            pl_buf_add(&b, i ? ",\n" : "\n");
            pl_buf_json_str(&b, names[i]);
            pl_buf_add(&b, ": ");
            size_t L = strlen(text);
            while (L && (text[L - 1] == '\n' || text[L - 1] == ' ')) text[--L] = '\0';
            pl_buf_add(&b, text[0] ? text : "null");
        }
        ipr_error_clear();
        free(text);
        free(names[i]);
    }
    pl_buf_add(&b, "\n}\n");
    if (pl_buf_ok(&b) != IPR_OK) {
        pl_buf_free(&b);
        return IPR_ERR;
    }
    *out = b.data;
    return IPR_OK;
}

/* ---------------- summaries ---------------- */

static void wilson(double k, double n, double *lo, double *hi) {
    /* Wilson score interval, 95% (z = 1.959963984540054) */
    const double z = 1.959963984540054;
    if (n <= 0) {
        *lo = 0.0;
        *hi = 1.0;
        return;
    }
    double p = k / n, z2 = z * z;
    double den = 1.0 + z2 / n;
    double centre = (p + z2 / (2.0 * n)) / den;
    double half = z * sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / den;
    *lo = centre - half < 0 ? 0.0 : centre - half;
    *hi = centre + half > 1 ? 1.0 : centre + half;
}

typedef struct {
    double n, valid, err, nfe;
} agg;

static int write_summaries(const pl_run *run, const pl_plan *plan, const pl_rows *rows, const pl_merge_report *rep,
                           char *md_path, size_t md_cap) {
    const pl_grid *g = &plan->grid;
    const int K = g->iterations;
    size_t n_groups = (size_t)g->n_models * g->n_selections * g->n_fractions;
    agg *a = NULL;
    pl_buf csv, md, js;
    pl_buf_init(&csv);
    pl_buf_init(&md);
    pl_buf_init(&js);
    IPR_TRY_PTR(a = ipr_calloc(n_groups * (size_t)(K + 1), sizeof(agg), "summary"));
    /* fraction index of each row: the float32 column matched against the grid's list */
    for (size_t r = 0; r < rows->results.n; ++r) {
        int m = (int)pl_get_u64(&rows->results, PL_R_MODEL, r);
        int s = (int)pl_get_u64(&rows->results, PL_R_SELECTION, r);
        float fr = pl_get_f32(&rows->results, PL_R_FRACTION, r);
        int f = 0;
        for (int i = 0; i < g->n_fractions; ++i)
            if ((float)g->fractions[i] == fr) f = i;
        int k = (int)pl_get_u64(&rows->results, PL_R_ITERATION, r);
        if (m >= g->n_models || s >= g->n_selections || k > K) continue;
        agg *x = &a[(((size_t)m * g->n_selections + (size_t)s) * g->n_fractions + (size_t)f) * (size_t)(K + 1) + (size_t)k];
        x->n += 1;
        x->valid += pl_get_u64(&rows->results, PL_R_VALID, r);
        x->err += pl_get_f32(&rows->results, PL_R_ERROR, r);
        x->nfe += (double)pl_get_u64(&rows->results, PL_R_NFE, r);
    }
    pl_buf_add(&csv, "model,selection,fraction,iteration,n,valid,rate,lo95,hi95,mean_error,mean_nfe\n");
    pl_buf_printf(&js, "{\n  \"run_id\": \"%s\",\n  \"config_sha256\": \"%s\",\n  \"benchmark\": \"%s\",\n", run->run_id,
                  g->config_sha256, ipr_bench_name(g->bench));
    pl_buf_printf(&js, "  \"complete\": %s,\n  \"limited\": %s,\n  \"iterations\": %d,\n", rep->complete ? "true" : "false",
                  g->limited ? "true" : "false", K);
    /* Sudoku: the final grids of chains whose instance has a known solution, against it */
    double match[IPR_SOLUTION_MATCH_CODES] = {0};
    for (size_t c = 0; c < rows->chains.n; ++c) {
        const uint64_t code = pl_get_u64(&rows->chains, PL_C_SOLUTION_MATCH, c);
        if (code < IPR_SOLUTION_MATCH_CODES) match[code] += 1;
    }
    const double known = match[IPR_SOLUTION_MATCH] + match[IPR_SOLUTION_OTHER] + match[IPR_SOLUTION_INVALID];
    pl_buf_printf(&js, "  \"units\": {\"total\": %d, \"ok\": %d, \"failed\": %d, \"missing\": %d},\n",
                  rep->n_units, rep->n_ok, rep->n_failed, rep->n_missing);
    pl_buf_printf(&js, "  \"solution_match\": {\"known\": %.0f, \"match\": %.0f, \"other\": %.0f, \"invalid\": %.0f},\n",
                  known, match[IPR_SOLUTION_MATCH], match[IPR_SOLUTION_OTHER], match[IPR_SOLUTION_INVALID]);
    pl_buf_add(&js, "  \"rows\": [");
    /* columns of the Markdown table: every k when K <= 6, else a few */
    int ks[16], nk = 0;
    if (K <= 6) {
        for (int k = 0; k <= K; ++k) ks[nk++] = k;
    } else {
        static const int pick[] = {0, 1, 2, 5, 10, 20, 30, 50, 100};
        for (size_t i = 0; i < sizeof pick / sizeof pick[0] && nk < 10; ++i)
            if (pick[i] < K) ks[nk++] = pick[i];
        ks[nk++] = K;
    }
    if (g->limited) pl_buf_add(&md, "**LIMITED RUN (--limit): a smoke test, not a result.**\n\n");
    pl_buf_printf(&md, "ipr run %s (%s, config %.12s): units %d ok, %d failed, %d missing of %d%s\n\n", run->run_id,
                  ipr_bench_name(g->bench), g->config_sha256, rep->n_ok, rep->n_failed, rep->n_missing, rep->n_units,
                  rep->complete ? "" : " (INCOMPLETE)");
    pl_buf_add(&md, "Valid rate after k IPR iterations (95% Wilson interval at k = K), chains per row = n\n\n");
    pl_buf_add(&md, "| model | selection | fraction | n |");
    for (int i = 0; i < nk; ++i) pl_buf_printf(&md, " k=%d |", ks[i]);
    pl_buf_add(&md, " 95% CI at K | passes at K |\n|---|---|---|---|");
    for (int i = 0; i < nk; ++i) pl_buf_add(&md, "---|");
    pl_buf_add(&md, "---|---|\n");
    int first_row = 1;
    for (int m = 0; m < g->n_models; ++m)
        for (int s = 0; s < g->n_selections; ++s)
            for (int f = 0; f < g->n_fractions; ++f) {
                const agg *row = &a[(((size_t)m * g->n_selections + (size_t)s) * g->n_fractions + (size_t)f) * (size_t)(K + 1)];
                char fr[32];
                pl_format_double(g->fractions[f], fr, sizeof fr);
                const char *sel = ipr_selection_name(g->selections[s]);
                for (int k = 0; k <= K; ++k) {
                    double lo, hi, n = row[k].n;
                    wilson(row[k].valid, n, &lo, &hi);
                    pl_buf_printf(&csv, "%s,%s,%s,%d,%.0f,%.0f,", g->model_name[m], sel, fr, k, n, row[k].valid);
                    pl_buf_printf(&js,
                                  "%s\n    {\"model\": \"%s\", \"selection\": \"%s\", \"fraction\": %s, \"iteration\": %d, "
                                  "\"n\": %.0f, \"valid\": %.0f, ",
                                  first_row ? "" : ",", g->model_name[m], sel, fr, k, n, row[k].valid);
                    if (n > 0) {
                        double rate = row[k].valid / n, me = row[k].err / n, mn = row[k].nfe / n;
                        pl_buf_printf(&csv, "%.6f,%.6f,%.6f,%.6f,%.3f\n", rate, lo, hi, me, mn);
                        pl_buf_printf(&js,
                                      "\"rate\": %.6f, \"lo95\": %.6f, \"hi95\": %.6f, \"mean_error\": %.6f, "
                                      "\"mean_nfe\": %.3f}",
                                      rate, lo, hi, me, mn);
                    } else { /* no chain (every unit failed, or missing in a partial merge): no rate, not 0 */
                        pl_buf_add(&csv, ",,,,\n");
                        pl_buf_add(&js, "\"rate\": null, \"lo95\": null, \"hi95\": null, \"mean_error\": null, "
                                        "\"mean_nfe\": null}");
                    }
                    first_row = 0;
                }
                pl_buf_printf(&md, "| %s | %s | %s | %.0f |", g->model_name[m], sel, fr, row[0].n);
                for (int i = 0; i < nk; ++i) {
                    double n = row[ks[i]].n;
                    if (n > 0)
                        pl_buf_printf(&md, " %.3f |", row[ks[i]].valid / n);
                    else
                        pl_buf_add(&md, " n/a |");
                }
                if (row[K].n > 0) {
                    double lo, hi;
                    wilson(row[K].valid, row[K].n, &lo, &hi);
                    pl_buf_printf(&md, " [%.3f, %.3f] | %.0f |\n", lo, hi, row[K].nfe / row[K].n);
                } else {
                    pl_buf_add(&md, " n/a | n/a |\n");
                }
            }
    if (known > 0)
        pl_buf_printf(&md,
                      "\nFinal grids of the %.0f chains whose puzzle has a known solution: %.0f valid and equal to it, "
                      "%.0f valid but another grid (the puzzle has several solutions), %.0f not valid.\n",
                      known, match[IPR_SOLUTION_MATCH], match[IPR_SOLUTION_OTHER], match[IPR_SOLUTION_INVALID]);
    pl_buf_add(&js, "\n  ]\n}\n");
    IPR_TRY(pl_buf_ok(&csv));
    IPR_TRY(pl_buf_ok(&md));
    IPR_TRY(pl_buf_ok(&js));
    char dir[PL_PATH_MAX + 16], path[PL_PATH_MAX + 64];
    pl_run_path(run, "summary", dir, sizeof dir);
    IPR_TRY(pl_mkdirs(dir, 0755));
    snprintf(path, sizeof path, "%s/summary.csv", dir);
    IPR_TRY(pl_write_file_atomic(path, csv.data, csv.len));
    snprintf(path, sizeof path, "%s/summary.json", dir);
    IPR_TRY(pl_write_file_atomic(path, js.data, js.len));
    snprintf(path, sizeof path, "%s/summary.md", dir);
    IPR_TRY(pl_write_file_atomic(path, md.data, md.len));
    snprintf(md_path, md_cap, "%s", path);
    free(a);
    pl_buf_free(&csv);
    pl_buf_free(&md);
    pl_buf_free(&js);
    return IPR_OK;
fail:
    free(a);
    pl_buf_free(&csv);
    pl_buf_free(&md);
    pl_buf_free(&js);
    return IPR_ERR;
}

/* ---------------- results.h5 ---------------- */

static int write_results(const pl_run *run, const pl_plan *plan, const pl_rows *rows, const pl_merge_report *rep,
                         const labels *hosts, const labels *sessions, const labels *devices, const char *path) {
    const pl_grid *g = &plan->grid;
    char tmp[PL_PATH_MAX + 64] = "", p[PL_PATH_MAX + 64];
    char *cfg_json = NULL, *op_json = NULL, *prov = NULL;
    hid_t f = H5I_INVALID_HID, mg = H5I_INVALID_HID, ds = H5I_INVALID_HID;
    pl_run_path(run, "config/resolved.json", p, sizeof p);
    IPR_TRY(pl_read_file(p, &cfg_json, NULL));
    pl_run_path(run, "config/operational.json", p, sizeof p);
    IPR_TRY(pl_read_file(p, &op_json, NULL));
    IPR_TRY(provenance_json(run, &prov));
    IPR_TRY(ipr_tmp_path(tmp, sizeof tmp, path));
    IPR_TRY_ID(f = ipr_h5_create(tmp));
    {
        unsigned maj, min, rel;
        char v[MPI_MAX_LIBRARY_VERSION_STRING] = "";
        int len = 0;
        IPR_H5(H5get_libversion(&maj, &min, &rel));
        char h5v[32];
        snprintf(h5v, sizeof h5v, "%u.%u.%u", maj, min, rel);
        if (MPI_Get_library_version(v, &len) != MPI_SUCCESS) snprintf(v, sizeof v, "unknown");
        char *nl = strchr(v, '\n');
        if (nl) *nl = '\0';
        char *comma = strchr(v, ',');
        if (comma) *comma = '\0';
        IPR_TRY(ipr_h5_attr_str(f, "format", "ipr-results"));
        IPR_TRY(ipr_h5_attr_i64(f, "schema_version", PL_SCHEMA_VERSION));
        IPR_TRY(ipr_h5_attr_str(f, "producer", "ipr " IPR_VERSION));
        IPR_TRY(ipr_h5_attr_str(f, "git_sha", IPR_GIT_SHA));
        IPR_TRY(ipr_h5_attr_str(f, "run_id", run->run_id));
        IPR_TRY(ipr_h5_attr_str(f, "config_sha256", g->config_sha256));
        IPR_TRY(ipr_h5_attr_str(f, "benchmark", ipr_bench_name(g->bench)));
        if (run->mnist_pool_sha256[0]) { /* sudoku: the digit images the instances show (run.json) */
            IPR_TRY(ipr_h5_attr_str(f, "mnist_pool", run->mnist_pool));
            IPR_TRY(ipr_h5_attr_str(f, "mnist_pool_sha256", run->mnist_pool_sha256));
        }
        if (run->instances_sha256[0]) { /* instances.file (run.json) */
            IPR_TRY(ipr_h5_attr_str(f, "instances_file", run->instances_file));
            IPR_TRY(ipr_h5_attr_str(f, "instances_format", run->instances_format));
            IPR_TRY(ipr_h5_attr_str(f, "instances_file_sha256", run->instances_sha256));
        }
        IPR_TRY(ipr_h5_attr_i64(f, "iterations", g->iterations));
        IPR_TRY(ipr_h5_attr_i64(f, "complete", rep->complete));
        IPR_TRY(ipr_h5_attr_i64(f, "limited", g->limited));
        IPR_TRY(ipr_h5_attr_i64(f, "n_units", rep->n_units));
        IPR_TRY(ipr_h5_attr_i64(f, "n_units_ok", rep->n_ok));
        IPR_TRY(ipr_h5_attr_i64(f, "n_units_failed", rep->n_failed));
        IPR_TRY(ipr_h5_attr_i64(f, "n_units_missing", rep->n_missing));
        IPR_TRY(ipr_h5_attr_str(f, "hdf5_version", h5v));
        IPR_TRY(ipr_h5_attr_str(f, "mpi_library_version", v));
        IPR_TRY(ipr_h5_attr_str(f, "libarchive_version", archive_version_string()));
        IPR_TRY(ipr_h5_attr_str(f, "libyaml_version", yaml_get_version_string()));
    }
    IPR_TRY_ID(mg = ipr_h5_group(f, "meta"));
    IPR_TRY(pl_h5_write_string(mg, "config_json", cfg_json));
    IPR_TRY(pl_h5_write_string(mg, "operational_json", op_json));
    IPR_TRY(pl_h5_write_string(mg, "provenance_json", prov));
    {
        const char *names[PL_MAX_MODELS], *shas[PL_MAX_MODELS], *sels[PL_MAX_SELECTIONS];
        for (int m = 0; m < g->n_models; ++m) {
            names[m] = g->model_name[m];
            shas[m] = g->model_sha256[m];
        }
        for (int s = 0; s < g->n_selections; ++s) sels[s] = ipr_selection_name(g->selections[s]);
        IPR_TRY(pl_h5_write_strings(mg, "model_names", names, g->n_models));
        IPR_TRY(pl_h5_write_strings(mg, "model_sha256", shas, g->n_models));
        IPR_TRY(pl_h5_write_strings(mg, "selection_names", sels, g->n_selections));
        const char *bench = ipr_bench_name(g->bench);
        IPR_TRY(pl_h5_write_strings(mg, "benchmark_names", &bench, 1));
        const char *match[IPR_SOLUTION_MATCH_CODES];
        for (int i = 0; i < IPR_SOLUTION_MATCH_CODES; ++i) match[i] = ipr_solution_match_name((ipr_solution_match)i);
        IPR_TRY(pl_h5_write_strings(mg, "solution_match_names", match, IPR_SOLUTION_MATCH_CODES));
        hsize_t nf = (hsize_t)g->n_fractions, ns = (hsize_t)g->n_seeds;
        IPR_TRY(ipr_h5_write(mg, "fractions", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, &nf, g->fractions));
        IPR_TRY(ipr_h5_write(mg, "seeds", H5T_NATIVE_UINT64, H5T_STD_U64LE, 1, &ns, g->seeds));
        IPR_TRY(write_labels(mg, "host_names", hosts));
        IPR_TRY(write_labels(mg, "session_names", sessions));
        IPR_TRY(write_labels(mg, "device_names", devices));
    }
    IPR_H5(H5Gclose(mg));
    mg = H5I_INVALID_HID;
    IPR_TRY(pl_table_write(&rows->units, f));
    IPR_TRY(pl_table_write(&rows->chains, f));
    IPR_TRY(pl_table_write(&rows->results, f));
    IPR_TRY(pl_table_write(&rows->timing, f));
    if (g->keep_images && rows->images && rows->chains.n > 0) {
        hsize_t dims[4] = {rows->chains.n, (hsize_t)g->H, (hsize_t)g->W, (hsize_t)g->C};
        IPR_TRY_ID(ds = ipr_h5_create_rows(f, "images/final", H5T_STD_U8LE, 4, dims));
        IPR_TRY(ipr_h5_write_rows(ds, H5T_NATIVE_UINT8, 0, rows->chains.n, rows->images));
        IPR_H5(H5Dclose(ds));
        ds = H5I_INVALID_HID;
    }
    IPR_TRY(ipr_h5_fclose(&f));
    IPR_TRY(ipr_commit_tmp(tmp, path));
    free(cfg_json);
    free(op_json);
    free(prov);
    return IPR_OK;
fail:
    ipr_error_context("writing %s", path);
    if (ds >= 0) H5Dclose(ds);
    if (mg >= 0) H5Gclose(mg);
    if (f >= 0) H5Fclose(f);
    if (tmp[0]) remove(tmp);
    free(cfg_json);
    free(op_json);
    free(prov);
    return IPR_ERR;
}

typedef struct {
    pl_rows rows;
    int loaded;
    char session[128], host[128], device[128];
} seg_cache;

static int read_seg_attrs(const char *path, seg_cache *c) {
    hid_t f = H5I_INVALID_HID;
    IPR_TRY_ID(f = ipr_h5_open_read(path));
    IPR_TRY(ipr_h5_read_attr_str(f, "session", c->session, sizeof c->session));
    IPR_TRY(ipr_h5_read_attr_str(f, "hostname", c->host, sizeof c->host));
    IPR_TRY(ipr_h5_read_attr_str(f, "device_name", c->device, sizeof c->device));
    IPR_TRY(ipr_h5_fclose(&f));
    return IPR_OK;
fail:
    if (f >= 0) H5Fclose(f);
    return IPR_ERR;
}

int pl_merge(const char *run_dir, const pl_merge_opts *opts, pl_merge_report *rep) {
    pl_run run;
    pl_plan plan;
    pl_journal_state st;
    pl_rows out;
    seg_cache *segs = NULL;
    labels hosts = {0, NULL}, sessions = {0, NULL}, devices = {0, NULL};
    char path[PL_PATH_MAX + 64];
    int have_plan = 0, have_st = 0, have_out = 0, rc = IPR_OK;
    memset(rep, 0, sizeof *rep);
    IPR_TRY(pl_run_load(run_dir, &run, NULL));
    pl_run_path(&run, "plan.h5", path, sizeof path);
    IPR_TRY(pl_plan_load(path, &plan));
    have_plan = 1;
    const pl_grid *g = &plan.grid;
    IPR_TRY(pl_journal_scan(&run, &plan, &st));
    have_st = 1;
    rep->n_units = plan.n_units;
    rep->limited = g->limited;
    for (int u = 0; u < plan.n_units; ++u) {
        if (st.seg[u] >= 0)
            rep->n_ok++;
        else if (st.fails[u] > 0)
            rep->n_failed++;
        else
            rep->n_missing++;
    }
    rep->complete = rep->n_missing == 0;
    if (!rep->complete && !opts->allow_partial) goto done;
    pl_rows_init(&out, g->C, g->H, g->W);
    have_out = 1;
    IPR_TRY_PTR(segs = ipr_calloc((size_t)(st.n_segs + 1), sizeof *segs, "segment cache"));
    IPR_TRY_PTR(hosts.s = ipr_calloc(MAX_LABELS, sizeof *hosts.s, "labels"));
    IPR_TRY_PTR(sessions.s = ipr_calloc(MAX_LABELS, sizeof *sessions.s, "labels"));
    IPR_TRY_PTR(devices.s = ipr_calloc(MAX_LABELS, sizeof *devices.s, "labels"));
    for (int u = 0; u < plan.n_units; ++u) {
        const pl_unit *un = &plan.units[u];
        int si = st.seg[u];
        if (si < 0) {
            size_t ur = pl_table_add(&out.units, 1), tr = pl_table_add(&out.timing, 1);
            if (ur == (size_t)-1 || tr == (size_t)-1) goto fail;
            pl_set_u64(&out.units, PL_U_UNIT_ID, ur, un->id);
            pl_set_u64(&out.units, PL_U_MODEL, ur, (uint64_t)un->model);
            pl_set_u64(&out.units, PL_U_SELECTION, ur, (uint64_t)un->selection);
            pl_set_f32(&out.units, PL_U_FRACTION, ur, (float)g->fractions[un->fraction]);
            pl_set_u64(&out.units, PL_U_REPLICATE, ur, (uint64_t)un->replicate);
            pl_set_u64(&out.units, PL_U_SEED, ur, un->seed);
            pl_set_u64(&out.units, PL_U_INSTANCE_START, ur, un->first);
            pl_set_u64(&out.units, PL_U_INSTANCE_COUNT, ur, un->count);
            pl_set_u64(&out.units, PL_U_STATUS, ur, st.fails[u] > 0 ? PL_STATUS_FAILED : PL_STATUS_MISSING);
            pl_set_u64(&out.units, PL_U_ATTEMPTS, ur, (uint64_t)st.fails[u]);
            continue;
        }
        seg_cache *c = &segs[si];
        if (!c->loaded) {
            pl_run_path(&run, st.seg_rel[si], path, sizeof path);
            pl_rows_init(&c->rows, g->C, g->H, g->W);
            IPR_TRY(pl_segment_read(path, &c->rows, g->keep_images));
            IPR_TRY(read_seg_attrs(path, c));
            c->loaded = 1;
        }
        size_t ur = (size_t)-1;
        for (size_t r = 0; r < c->rows.units.n; ++r)
            if (pl_get_u64(&c->rows.units, PL_U_UNIT_ID, r) == un->id) ur = r;
        IPR_CHECK(ur != (size_t)-1, "segment %s has no rows of unit %016llx its commit record names", st.seg_rel[si],
                  (unsigned long long)un->id);
        size_t before = out.chains.n;
        IPR_TRY(pl_rows_append_from(&out, &c->rows, ur, g->keep_images ? c->rows.images : NULL));
        IPR_CHECK(out.chains.n - before == un->count, "segment %s holds %zu chains of unit %016llx, expected %u",
                  st.seg_rel[si], out.chains.n - before, (unsigned long long)un->id, un->count);
        size_t tr = out.timing.n - 1;
        pl_set_u64(&out.timing, PL_T_HOST, tr, (uint64_t)label_code(&hosts, c->host));
        pl_set_u64(&out.timing, PL_T_SESSION, tr, (uint64_t)label_code(&sessions, c->session));
        pl_set_u64(&out.timing, PL_T_DEVICE, tr, (uint64_t)label_code(&devices, c->device));
    }
    rep->chains = out.chains.n;
    pl_run_path(&run, "results.h5", path, sizeof path);
    IPR_TRY(write_results(&run, &plan, &out, rep, &hosts, &sessions, &devices, path));
    rep->written = 1;
    IPR_TRY(write_summaries(&run, &plan, &out, rep, rep->summary_md_path, sizeof rep->summary_md_path));
    {
        /* the completion marker comes last (style habit 11) */
        char done[PL_PATH_MAX + 16], sha[65];
        pl_run_path(&run, "DONE", done, sizeof done);
        if (rep->complete) {
            IPR_TRY(ipr_sha256_file(path, sha));
            char text[256];
            snprintf(text, sizeof text, "%s  results.h5\n", sha);
            IPR_TRY(pl_write_file_atomic(done, text, strlen(text)));
        } else {
            remove(done);
        }
    }
done:
    if (segs)
        for (int i = 0; i < st.n_segs; ++i)
            if (segs[i].loaded) pl_rows_free(&segs[i].rows);
    free(segs);
    free(hosts.s);
    free(sessions.s);
    free(devices.s);
    if (have_out) pl_rows_free(&out);
    if (have_st) pl_journal_state_free(&st);
    if (have_plan) pl_plan_free(&plan);
    return rc;
fail:
    ipr_error_context("merging %s", run_dir);
    rc = IPR_ERR;
    goto done;
}

/* ---------------- verification of a run directory ---------------- */

void pl_problem(int *problems, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "verify: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    (*problems)++;
}

int pl_verify_run_dir(const char *run_dir, int *problems) {
    pl_run run;
    pl_plan plan;
    pl_journal_state st;
    int have_plan = 0, have_st = 0;
    char path[PL_PATH_MAX + 64];
    pl_rows rows;
    int have_rows = 0;
    char *used = NULL;
    *problems = 0;
    IPR_TRY(pl_run_load(run_dir, &run, NULL));
    pl_run_path(&run, "plan.h5", path, sizeof path);
    IPR_TRY(pl_plan_load(path, &plan));
    have_plan = 1;
    IPR_TRY(pl_journal_scan(&run, &plan, &st));
    have_st = 1;
    if (st.n_bad) {
        pl_problem(problems, "%d commit record(s) name a segment that is missing or whose SHA-256 differs (first: %s)",
                   st.n_bad, st.first_bad);
    }
    if (st.n_corrupt) {
        pl_problem(problems, "%d journal line(s) are not records: the journal is damaged (first at %s)", st.n_corrupt,
                   st.first_corrupt);
    }
    if (st.n_foreign) {
        pl_problem(problems, "%d journal record(s) name units that are not in plan.h5", st.n_foreign);
    }
    /* every committed segment's tables must agree with the plan */
    IPR_TRY_PTR(used = ipr_calloc((size_t)st.n_segs + 1, 1, "segment flags"));
    for (int u = 0; u < plan.n_units; ++u)
        if (st.seg[u] >= 0) used[st.seg[u]] = 1;
    for (int i = 0; i < st.n_segs; ++i) {
        if (!used[i]) continue;
        pl_run_path(&run, st.seg_rel[i], path, sizeof path);
        pl_rows_init(&rows, plan.grid.C, plan.grid.H, plan.grid.W);
        have_rows = 1;
        if (pl_segment_read(path, &rows, 0) != IPR_OK) {
            pl_problem(problems, "%s: %s", st.seg_rel[i], ipr_error_message());
        } else {
            for (size_t r = 0; r < rows.units.n; ++r) {
                int u = pl_plan_find(&plan, pl_get_u64(&rows.units, PL_U_UNIT_ID, r));
                if (u < 0) {
                    pl_problem(problems, "%s: a unit row is not in the plan", st.seg_rel[i]);
                    continue;
                }
                uint64_t chains = 0;
                for (size_t c = 0; c < rows.chains.n; ++c) chains += pl_get_u64(&rows.chains, PL_C_UNIT, c) == r;
                if (chains != plan.units[u].count)
                    pl_problem(problems, "%s: a unit has the wrong number of chains", st.seg_rel[i]);
            }
            if (rows.results.n != rows.chains.n * (size_t)(plan.grid.iterations + 1))
                pl_problem(problems, "%s: results rows do not match chains x (K + 1)", st.seg_rel[i]);
        }
        pl_rows_free(&rows);
        have_rows = 0;
    }
    pl_run_path(&run, "results.h5", path, sizeof path);
    struct stat sb;
    if (stat(path, &sb) == 0) {
        hid_t f = ipr_h5_open_read(path);
        if (f < 0) {
            pl_problem(problems, "results.h5: %s", ipr_error_message());
        } else {
            char sha[80] = "";
            int64_t nu = -1;
            if (ipr_h5_read_attr_str(f, "config_sha256", sha, sizeof sha) != IPR_OK ||
                strcmp(sha, plan.grid.config_sha256) != 0)
                pl_problem(problems, "results.h5: config_sha256 '%s' is not the plan's %s", sha,
                           plan.grid.config_sha256);
            if (ipr_h5_read_attr_i64(f, "n_units", &nu) != IPR_OK || nu != plan.n_units)
                pl_problem(problems, "results.h5: n_units differs from plan.h5");
            pl_rows_init(&rows, plan.grid.C, plan.grid.H, plan.grid.W);
            have_rows = 1;
            if (pl_table_read(&rows.units, f) != IPR_OK || pl_table_read(&rows.chains, f) != IPR_OK ||
                pl_table_read(&rows.results, f) != IPR_OK || pl_table_read(&rows.timing, f) != IPR_OK) {
                pl_problem(problems, "results.h5: %s", ipr_error_message());
            } else {
                if (rows.units.n != (size_t)plan.n_units || rows.timing.n != rows.units.n)
                    pl_problem(problems, "results.h5: /units or /timing has the wrong number of rows");
                if (rows.results.n != rows.chains.n * (size_t)(plan.grid.iterations + 1))
                    pl_problem(problems, "results.h5: /results rows do not match /chains x (K + 1)");
                for (size_t r = 0; r < rows.units.n && r < (size_t)plan.n_units; ++r)
                    if (pl_get_u64(&rows.units, PL_U_UNIT_ID, r) != plan.units[r].id) {
                        pl_problem(problems, "results.h5: /units is not in plan order");
                        break;
                    }
            }
            pl_rows_free(&rows);
            have_rows = 0;
            if (H5Fclose(f) < 0) pl_problem(problems, "results.h5: H5Fclose failed");
        }
        char done[PL_PATH_MAX + 16], *text = NULL, hex[65];
        pl_run_path(&run, "DONE", done, sizeof done);
        if (pl_read_file(done, &text, NULL) == IPR_OK) {
            if (ipr_sha256_file(path, hex) != IPR_OK || strncmp(text, hex, 64) != 0)
                pl_problem(problems, "DONE names another results.h5 than the one present (SHA-256 %s)", hex);
        }
        ipr_error_clear();
        free(text);
    }
    free(used);
    pl_journal_state_free(&st);
    pl_plan_free(&plan);
    return IPR_OK;
fail:
    free(used);
    if (have_rows) pl_rows_free(&rows);
    if (have_st) pl_journal_state_free(&st);
    if (have_plan) pl_plan_free(&plan);
    return IPR_ERR;
}
