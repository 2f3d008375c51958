/* fuzz_journal.c: what `ipr status`, `ipr verify`, `ipr merge` and a resume read before any segment: the journals
 * (pl_journal_scan against the plan: which units are done, failed, foreign, which lines are damage), run.json
 * (pl_run_load) and status.json (the JSON getters `ipr status` uses). The input is cut at "\n--8<--\n" lines into
 * journal/a.jsonl, journal/b.jsonl, run.json and status.json. Tokens "@U0@".."@U7@" become the plan's unit ids and
 * "@SHA@" the SHA-256 of segments/s/r00000-000000.h5, so the seeds hold valid records of this run. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_pipeline_run.h"
#include "ipr/hash.h"
#include "pipeline/json.h"

static const char *g_dir;
static pl_plan g_plan;
static pl_run g_run;
static char g_sha[65];

/* the part with its tokens replaced */
static char *expand(const uint8_t *p, size_t n, size_t *out_len) {
    char *out = malloc(n * 13 + 1), *o = out; /* "@SHA@" (5 bytes) becomes 64 */
    if (!out) abort();
    for (size_t i = 0; i < n;) {
        if (n - i >= 4 && p[i] == '@' && p[i + 1] == 'U' && p[i + 2] >= '0' && p[i + 2] <= '7' && p[i + 3] == '@') {
            int u = (p[i + 2] - '0') % g_plan.n_units;
            o += sprintf(o, "%016llx", (unsigned long long)g_plan.units[u].id);
            i += 4;
        } else if (n - i >= 5 && memcmp(p + i, "@SHA@", 5) == 0) {
            memcpy(o, g_sha, 64);
            o += 64;
            i += 5;
        } else {
            *o++ = (char)p[i++];
        }
    }
    *o = '\0';
    *out_len = (size_t)(o - out);
    return out;
}

static void put(const char *rel, const uint8_t *p, size_t n, int present) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", g_dir, rel);
    if (!present) {
        unlink(path);
        return;
    }
    size_t len = 0;
    char *text = expand(p, n, &len);
    fuzz_write(g_dir, rel, text, len);
    free(text);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_h5_init();
    g_dir = fuzz_scratch_dir();
    fuzz_run_setup(g_dir, &g_plan, &g_run);
    static const char seg[] = "a committed segment";
    fuzz_write(g_dir, "segments/s/r00000-000000.h5", seg, sizeof seg - 1);
    ipr_sha256_hex(seg, sizeof seg - 1, g_sha);
    /* the harness's own check: a commit record of two units credits them (tokens expanded), a torn line is no damage */
    static const char good[] = "{\"ev\":\"commit\",\"segment\":\"segments/s/r00000-000000.h5\",\"sha256\":\"@SHA@\","
                               "\"chains\":4,\"wall_s\":1.0,\"units\":[\"@U0@\",\"@U1@\"]}\n{\"ev\":\"com";
    put("journal/a.jsonl", (const uint8_t *)good, sizeof good - 1, 1);
    put("journal/b.jsonl", NULL, 0, 0);
    pl_journal_state st;
    if (pl_journal_scan(&g_run, &g_plan, &st) != IPR_OK || st.n_done != 2 || st.n_corrupt != 0 || st.n_bad != 0) {
        ipr_error_print("fuzz: a good journal does not scan");
        abort();
    }
    pl_journal_state_free(&st);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *part[4] = {0};
    size_t len[4] = {0};
    int n = fuzz_split(data, size, part, len, 4);
    put("journal/a.jsonl", part[0], len[0], 1);
    put("journal/b.jsonl", part[1], len[1], n > 1);
    pl_journal_state st;
    if (pl_journal_scan(&g_run, &g_plan, &st) == IPR_OK) {
        int done = 0;
        for (int u = 0; u < st.n_units; ++u) done += st.seg[u] >= 0 && st.fails[u] >= 0;
        (void)done;
        (void)pl_journal_segment(&st, "segments/s/r00000-000000.h5");
        pl_journal_state_free(&st);
    }
    ipr_error_clear();
    if (n > 2) { /* run.json */
        put("run.json", part[2], len[2], 1);
        pl_run r;
        char *json = NULL;
        if (pl_run_load(g_dir, &r, &json) == IPR_OK) free(json);
        ipr_error_clear();
    }
    if (n > 3) { /* status.json, through the getters `ipr status` uses */
        size_t tl = 0;
        char *text = expand(part[3], len[3], &tl);
        static const char *strs[] = {"format", "run_id", "state", "session"};
        static const char *nums[] = {"updated_epoch", "chains_per_s", "progress_interval", "eta_s", "units_done"};
        char s[128];
        double d;
        int64_t i64;
        for (size_t k = 0; k < sizeof strs / sizeof strs[0]; ++k) (void)pl_json_get_str(text, strs[k], s, sizeof s);
        for (size_t k = 0; k < sizeof nums / sizeof nums[0]; ++k) {
            (void)pl_json_get_double(text, nums[k], &d);
            (void)pl_json_get_i64(text, nums[k], &i64);
        }
        (void)pl_json_find(text, "draining");
        const char *ranks = pl_json_find(text, "ranks");
        if (ranks) (void)pl_json_skip_value(ranks);
        free(text);
        ipr_error_clear();
    }
    return 0;
}
