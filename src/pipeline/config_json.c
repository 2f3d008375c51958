/* config_json.c: the canonical JSON of a configuration (nested, sorted keys, shortest round-trip floats), whose
 * SHA-256 names it, and the key-level diff of two canonical forms (flattened to "a.b = value" lines). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/config_internal.h"
#include "pipeline/json.h"

/* ---------------- canonical JSON ---------------- */

static void emit_value(pl_buf *b, const pl_key *k, const slot *s) {
    if (s->is_null) {
        pl_buf_add(b, "null");
        return;
    }
    if (k->list) pl_buf_add(b, "[");
    for (int i = 0; i < s->n; ++i) {
        if (i) pl_buf_add(b, ", ");
        const val *v = &s->items[i];
        switch (k->type) {
        case PL_T_STR:
        case PL_T_ENUM:
        case PL_T_PATH: pl_buf_json_str(b, v->s); break;
        case PL_T_BOOL: pl_buf_add(b, v->i ? "true" : "false"); break;
        case PL_T_INT: pl_buf_printf(b, "%lld", (long long)v->i); break;
        case PL_T_U64: pl_buf_printf(b, "%llu", (unsigned long long)v->u); break;
        case PL_T_FLOAT: pl_buf_json_double(b, v->f); break;
        }
    }
    if (k->list) pl_buf_add(b, "]");
}

static int cmp_key(const void *a, const void *b) {
    return strcmp(cfg_keys[*(const int *)a].key, cfg_keys[*(const int *)b].key);
}

/* Nested, sorted, two-space indented, one leaf per line. which: 1 semantic keys, 0 the others,
 * 2 the sources of all keys. */
int cfg_emit_json(const store *st, int which, char **out) {
    int order[PL_CONFIG_KEYS], n = 0;
    for (int i = 0; i < PL_CONFIG_KEYS; ++i)
        if ((which == 2 || cfg_keys[i].semantic == which) &&
            !(which == 1 && cfg_key_omit_unset(cfg_keys[i].key) && !st->slots[i].set))
            order[n++] = i;
    qsort(order, (size_t)n, sizeof order[0], cmp_key);
    pl_buf b;
    pl_buf_init(&b);
    pl_buf_add(&b, "{");
    char open[8][64];
    int depth = 0, first = 1;
    for (int j = 0; j <= n; ++j) {
        char parts[8][64];
        int np = 0;
        const char *leaf_name = NULL;
        if (j < n) {
            char tmp[256];
            snprintf(tmp, sizeof tmp, "%s", cfg_keys[order[j]].key);
            for (char *tok = strtok(tmp, "."); tok && np < 8; tok = strtok(NULL, ".")) snprintf(parts[np++], 64, "%s", tok);
            leaf_name = parts[np - 1];
        }
        int common = 0;
        while (common < depth && common < np - 1 && strcmp(open[common], parts[common]) == 0) ++common;
        while (depth > common) {
            --depth;
            pl_buf_add(&b, "\n");
            for (int d = 0; d <= depth; ++d) pl_buf_add(&b, "  ");
            pl_buf_add(&b, "}");
        }
        if (j == n) break;
        for (; depth < np - 1; ++depth) {
            pl_buf_add(&b, first ? "\n" : ",\n");
            first = 0;
            for (int d = 0; d <= depth; ++d) pl_buf_add(&b, "  ");
            pl_buf_json_str(&b, parts[depth]);
            pl_buf_add(&b, ": {");
            snprintf(open[depth], 64, "%s", parts[depth]);
            first = 1;
        }
        pl_buf_add(&b, first ? "\n" : ",\n");
        first = 0;
        for (int d = 0; d <= depth; ++d) pl_buf_add(&b, "  ");
        pl_buf_json_str(&b, leaf_name);
        pl_buf_add(&b, ": ");
        if (which == 2)
            pl_buf_json_str(&b, st->slots[order[j]].source);
        else
            emit_value(&b, &cfg_keys[order[j]], &st->slots[order[j]]);
    }
    pl_buf_add(&b, "\n}\n");
    if (pl_buf_ok(&b) != IPR_OK) {
        pl_buf_free(&b);
        return IPR_ERR;
    }
    *out = b.data;
    return IPR_OK;
}

/* ---------------- flatten and diff ---------------- */

static const char *skip_sp(const char *p) {
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') ++p;
    return p;
}

static const char *flatten_obj(const char *p, const char *prefix, pl_buf *out) {
    p = skip_sp(p);
    if (*p != '{') return NULL;
    p = skip_sp(p + 1);
    if (*p == '}') return p + 1;
    for (;;) {
        char name[256], path[512];
        p = pl_json_parse_str(skip_sp(p), name, sizeof name);
        if (!p) return NULL;
        p = skip_sp(p);
        if (*p != ':') return NULL;
        p = skip_sp(p + 1);
        snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", name);
        if (*p == '{') {
            p = flatten_obj(p, path, out);
        } else {
            const char *end = pl_json_skip_value(p);
            if (!end) return NULL;
            pl_buf_printf(out, "%s = %.*s\n", path, (int)(end - p), p);
            p = end;
        }
        if (!p) return NULL;
        p = skip_sp(p);
        if (*p == ',') {
            ++p;
            continue;
        }
        if (*p == '}') return p + 1;
        return NULL;
    }
}

int pl_json_flatten(const char *json, char **lines) {
    pl_buf b;
    pl_buf_init(&b);
    pl_buf_add(&b, "");
    if (!flatten_obj(json, "", &b) || pl_buf_ok(&b) != IPR_OK) {
        pl_buf_free(&b);
        ipr_error_set(__FILE__, __LINE__, "malformed JSON");
        return IPR_ERR;
    }
    *lines = b.data;
    return IPR_OK;
}

static int line_in(const char *line, size_t n, const char *text) {
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, line, n) == 0) return 1;
        p = e ? e + 1 : p + len;
    }
    return 0;
}

int pl_config_diff(const char *old_json, const char *new_json, char **text) {
    char *a = NULL, *b = NULL;
    pl_buf out;
    pl_buf_init(&out);
    pl_buf_add(&out, "");
    IPR_TRY(pl_json_flatten(old_json, &a));
    IPR_TRY(pl_json_flatten(new_json, &b));
    for (int pass = 0; pass < 2; ++pass) {
        const char *from = pass ? b : a, *other = pass ? a : b;
        for (const char *p = from; *p;) {
            const char *e = strchr(p, '\n');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            if (!line_in(p, len, other)) pl_buf_printf(&out, "  %s %.*s\n", pass ? "now:" : "was:", (int)len, p);
            p = e ? e + 1 : p + len;
        }
    }
    free(a);
    free(b);
    IPR_TRY(pl_buf_ok(&out));
    *text = out.data;
    return IPR_OK;
fail:
    free(a);
    free(b);
    pl_buf_free(&out);
    return IPR_ERR;
}

