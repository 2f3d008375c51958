/* config.c: the `ipr run` configuration loaded: the YAML file read against the key table (config_yaml.c), --set
 * overrides, defaults, resolution and checks (config_resolve.c), and the canonical JSON and its hash (config_json.c). */
#define _POSIX_C_SOURCE 200809L
#include "pipeline/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipr/hash.h"
#include "pipeline/config_internal.h"
#include "pipeline/json.h"

int pl_config_load(const char *path, const char *yaml, size_t len, char *const *sets, int n_sets, int64_t limit,
                   pl_config *out) {
    store *st = NULL;
    char *owned = NULL;
    memset(out, 0, sizeof *out);
    snprintf(out->file, sizeof out->file, "%s", path);
    IPR_TRY_PTR(st = ipr_calloc(1, sizeof *st, "config store"));
    st->file = path;
    {
        char tmp[PL_PATH_MAX];
        snprintf(tmp, sizeof tmp, "%s", path);
        char *slash = strrchr(tmp, '/');
        if (slash) {
            *slash = '\0';
            snprintf(st->dir, sizeof st->dir, "%s", tmp[0] ? tmp : "/");
        }
    }
    if (!yaml) {
        if (pl_read_file(path, &owned, &len) != IPR_OK) {
            ipr_error_context("reading the config");
            goto fail;
        }
        yaml = owned;
    }
    IPR_TRY(cfg_read_yaml(st, yaml, len, path));
    for (int i = 0; i < n_sets; ++i) IPR_TRY(cfg_apply_set(st, sets[i]));
    IPR_TRY(cfg_apply_defaults(st));
    IPR_TRY(cfg_resolve(st, out));
    IPR_TRY(cfg_resolve_instances(st, out, limit));
    if (limit > 0 && limit < out->instance_count) {
        out->instance_count = limit;
        slot *s = &st->slots[cfg_key_index("instances.count")];
        s->items[0].i = limit;
        snprintf(s->source, sizeof s->source, "--limit");
        out->limited = 1;
    }
    IPR_TRY(cfg_emit_json(st, 1, &out->resolved_json));
    IPR_TRY(cfg_emit_json(st, 0, &out->operational_json));
    IPR_TRY(cfg_emit_json(st, 2, &out->sources_json));
    ipr_sha256_hex(out->resolved_json, strlen(out->resolved_json), out->sha256);
    for (int i = 0; i < PL_CONFIG_KEYS; ++i) cfg_slot_clear(&st->slots[i]);
    free(st);
    free(owned);
    return IPR_OK;
fail:
    if (st) {
        for (int i = 0; i < PL_CONFIG_KEYS; ++i) cfg_slot_clear(&st->slots[i]);
        free(st);
    }
    free(owned);
    pl_config_free(out);
    return IPR_ERR;
}

void pl_config_free(pl_config *cfg) {
    free(cfg->resolved_json);
    free(cfg->operational_json);
    free(cfg->sources_json);
    cfg->resolved_json = cfg->operational_json = cfg->sources_json = NULL;
}

