/* config_yaml.c: libyaml's document tree walked against the key table into typed values with ranges and the
 * FILE:LINE each came from, --set KEY=VALUE overrides (YAML flow syntax) and the defaults. YAML's implicit typing
 * is never consulted: a scalar is read as its key's type. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "pipeline/config_internal.h"
#include "pipeline/json.h"

void cfg_slot_clear(slot *s) {
    if (s->items) {
        for (int i = 0; i < s->n; ++i) {
            free(s->items[i].s);
            free(s->items[i].path);
        }
        free(s->items);
    }
    memset(s, 0, sizeof *s);
}

static int is_null_text(const char *t) {
    return t[0] == '\0' || strcmp(t, "~") == 0 || strcmp(t, "null") == 0 || strcmp(t, "Null") == 0 ||
           strcmp(t, "NULL") == 0;
}

static void join_path(const char *dir, const char *p, char *out, size_t cap) {
    if (p[0] == '/' || !dir[0])
        snprintf(out, cap, "%s", p);
    else
        snprintf(out, cap, "%s/%s", dir, p);
}

/* Convert one scalar's text to the key's type and check its range. `where` is "FILE:LINE" or "--set". */
static int convert(const pl_key *k, const char *text, int plain, const char *where, const char *dir, val *v) {
    char shown[96];
    snprintf(shown, sizeof shown, "%s", text);
    switch (k->type) {
    case PL_T_STR:
        IPR_CHECK(text[0] != '\0', "%s: key '%s': empty string", where, k->key);
        IPR_TRY_PTR(v->s = strdup(text));
        return IPR_OK;
    case PL_T_PATH:
        IPR_CHECK(text[0] != '\0', "%s: key '%s': empty path", where, k->key);
        IPR_TRY_PTR(v->s = strdup(text));
        IPR_TRY_PTR(v->path = ipr_malloc(PL_PATH_MAX, "path"));
        join_path(dir, text, v->path, PL_PATH_MAX);
        return IPR_OK;
    case PL_T_ENUM: {
        const char *c = k->choices;
        size_t n = strlen(text);
        while (c && *c) {
            const char *bar = strchr(c, '|');
            size_t len = bar ? (size_t)(bar - c) : strlen(c);
            if (len == n && strncmp(c, text, n) == 0) {
                IPR_TRY_PTR(v->s = strdup(text));
                return IPR_OK;
            }
            c = bar ? bar + 1 : NULL;
        }
        if (strcmp(k->key, "benchmark") == 0 && strcmp(text, "mnist_sudoku") == 0) {
            IPR_TRY_PTR(v->s = strdup("sudoku"));
            return IPR_OK;
        }
        IPR_FAIL("%s: key '%s': '%s' is not one of %s", where, k->key, shown, k->choices);
    }
    case PL_T_BOOL:
        if (!strcmp(text, "true") || !strcmp(text, "True") || !strcmp(text, "TRUE")) {
            v->i = 1;
            return IPR_OK;
        }
        if (!strcmp(text, "false") || !strcmp(text, "False") || !strcmp(text, "FALSE")) {
            v->i = 0;
            return IPR_OK;
        }
        IPR_FAIL("%s: key '%s': '%s' is not a boolean (write true or false)", where, k->key, shown);
    case PL_T_INT: {
        char *end = NULL;
        errno = 0;
        long long x = strtoll(text, &end, 10);
        IPR_CHECK(errno == 0 && end != text && *end == '\0' && !strpbrk(text, ".eE"),
                  "%s: key '%s': '%s' is not an integer", where, k->key, shown);
        IPR_CHECK(!(text[0] == '0' && text[1] != '\0'), "%s: key '%s': '%s' has a leading zero (octal is not read)",
                  where, k->key, shown);
        IPR_CHECK((double)x >= k->lo && (double)x <= k->hi, "%s: key '%s': %lld is outside [%.0f, %.0f]", where,
                  k->key, x, k->lo, k->hi);
        v->i = x;
        return IPR_OK;
    }
    case PL_T_U64: {
        char what[128];
        snprintf(what, sizeof what, "%s: key '%s'", where, k->key);
        uint64_t x = 0;
        IPR_TRY(ipr_parse_u64(text, (uint64_t)INT64_MAX, what, &x));
        v->u = x;
        return IPR_OK;
    }
    case PL_T_FLOAT: {
        char *end = NULL;
        errno = 0;
        double x = strtod(text, &end);
        IPR_CHECK(errno == 0 && end != text && *end == '\0' && isfinite(x) && !strpbrk(text, "xXnN"),
                  "%s: key '%s': '%s' is not a number", where, k->key, shown);
        int below = k->lo_open ? !(x > k->lo) : !(x >= k->lo);
        int above = k->hi_open ? !(x < k->hi) : !(x <= k->hi);
        if (below || above) {
            char lo[32], hi[32];
            pl_format_double(k->lo, lo, sizeof lo);
            pl_format_double(k->hi, hi, sizeof hi);
            IPR_FAIL("%s: key '%s': %s is outside %s%s, %s%s", where, k->key, shown, k->lo_open ? "(" : "[", lo, hi,
                     k->hi_open ? ")" : "]");
        }
        v->f = x;
        return IPR_OK;
    }
    }
    IPR_FAIL("internal: key '%s' has no type", k->key);
fail:
    (void)plain;
    return IPR_ERR;
}

/* Assign a YAML node (scalar or sequence of scalars) to key `ki`. */
static int assign(store *st, yaml_document_t *doc, yaml_node_t *node, int ki, const char *where, const char *dir,
                  int from_set) {
    const pl_key *k = &cfg_keys[ki];
    slot *s = &st->slots[ki];
    cfg_slot_clear(s);
    snprintf(s->source, sizeof s->source, "%s", where);
    s->set = from_set ? 2 : 1;
    IPR_TRY_PTR(s->items = ipr_calloc(MAX_ITEMS, sizeof(val), "config values"));
    if (node->type == YAML_SCALAR_NODE) {
        const char *text = (const char *)node->data.scalar.value;
        int plain = node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        if (plain && is_null_text(text)) {
            IPR_CHECK(k->nullable, "%s: key '%s' cannot be null", where, k->key);
            s->is_null = 1;
            return IPR_OK;
        }
        IPR_TRY(convert(k, text, plain, where, dir, &s->items[0]));
        s->n = 1;
        return IPR_OK;
    }
    if (node->type == YAML_SEQUENCE_NODE) {
        IPR_CHECK(k->list, "%s: key '%s' takes one value, not a list", where, k->key);
        for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; ++it) {
            yaml_node_t *e = yaml_document_get_node(doc, *it);
            IPR_CHECK(e && e->type == YAML_SCALAR_NODE, "%s: key '%s': list items must be plain values", where, k->key);
            IPR_CHECK(s->n < k->max_items && s->n < MAX_ITEMS, "%s: key '%s': more than %d items", where, k->key,
                      k->max_items);
            int plain = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            IPR_CHECK(!(plain && is_null_text((const char *)e->data.scalar.value)),
                      "%s: key '%s': item %d is null", where, k->key, s->n);
            IPR_TRY(convert(k, (const char *)e->data.scalar.value, plain, where, dir, &s->items[s->n]));
            s->n++;
        }
        IPR_CHECK(s->n >= 1, "%s: key '%s': the list is empty", where, k->key);
        return IPR_OK;
    }
    IPR_FAIL("%s: key '%s' takes a value, not a mapping", where, k->key);
fail:
    return IPR_ERR;
}

static int walk_mapping(store *st, yaml_document_t *doc, yaml_node_t *map, const char *prefix, const char *file,
                        const char *dir) {
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; ++p) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(doc, p->value);
        int line = kn ? (int)kn->start_mark.line + 1 : 0;
        IPR_CHECK(kn && kn->type == YAML_SCALAR_NODE, "%s:%d: keys must be plain names", file, line);
        char name[256];
        snprintf(name, sizeof name, "%s%s%s", prefix, prefix[0] ? "." : "", (const char *)kn->data.scalar.value);
        char where[PL_PATH_MAX + 32];
        snprintf(where, sizeof where, "%s:%d", file, line);
        int ki = cfg_key_index(name);
        if (ki < 0 && vn && vn->type == YAML_MAPPING_NODE && cfg_is_prefix_of_key(name)) {
            IPR_TRY(walk_mapping(st, doc, vn, name, file, dir));
            continue;
        }
        if (ki < 0) {
            char hint[128];
            cfg_suggest(name, hint, sizeof hint);
            IPR_FAIL("%s: unknown key '%s'%s", where, name, hint);
        }
        IPR_CHECK(!cfg_key_computed(name), "%s: key '%s' is computed (from instances.file); a config cannot set it", where,
                  name);
        IPR_CHECK(st->slots[ki].set == 0, "%s: key '%s' appears twice (first at %s)", where, name,
                  st->slots[ki].source);
        IPR_TRY(assign(st, doc, vn, ki, where, dir, 0));
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* Parse YAML text into a document; errors carry the file (or "--set KEY") and line. */
static int load_doc(const char *text, size_t len, const char *what, yaml_document_t *doc) {
    yaml_parser_t parser;
    IPR_CHECK(yaml_parser_initialize(&parser), "%s: cannot initialise the YAML parser", what);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, doc)) {
        ipr_error_set(__FILE__, __LINE__, "%s:%d: YAML syntax error: %s%s%s", what, (int)parser.problem_mark.line + 1,
                      parser.problem ? parser.problem : "unknown", parser.context ? " " : "",
                      parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return IPR_ERR;
    }
    yaml_parser_delete(&parser);
    return IPR_OK;
fail:
    return IPR_ERR;
}

int cfg_apply_set(store *st, const char *set) {
    yaml_document_t doc;
    int have_doc = 0;
    char name[256];
    const char *eq = strchr(set, '=');
    IPR_CHECK(eq && eq != set && (size_t)(eq - set) < sizeof name, "--set '%s': expected KEY=VALUE", set);
    memcpy(name, set, (size_t)(eq - set));
    name[eq - set] = '\0';
    int ki = cfg_key_index(name);
    if (ki < 0) {
        char hint[128];
        cfg_suggest(name, hint, sizeof hint);
        IPR_FAIL("--set: unknown key '%s'%s", name, hint);
    }
    IPR_CHECK(!cfg_key_computed(name), "--set: key '%s' is computed (from instances.file); it cannot be set", name);
    char what[300];
    snprintf(what, sizeof what, "--set %s", name);
    const char *value = eq + 1;
    /* "key=" (an empty value) is null, as an empty YAML value is */
    IPR_TRY(load_doc(value[0] ? value : "~", value[0] ? strlen(value) : 1, what, &doc));
    have_doc = 1;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    IPR_CHECK(root != NULL, "%s: no value", what);
    /* relative paths given on the command line start at the working directory */
    IPR_TRY(assign(st, &doc, root, ki, what, "", 1));
    yaml_document_delete(&doc);
    return IPR_OK;
fail:
    if (have_doc) yaml_document_delete(&doc);
    return IPR_ERR;
}

int cfg_apply_defaults(store *st) {
    for (int i = 0; i < PL_CONFIG_KEYS; ++i) {
        if (st->slots[i].set) continue;
        const pl_key *k = &cfg_keys[i];
        if (!k->def) continue; /* required: checked later */
        yaml_document_t doc;
        IPR_TRY(load_doc(k->def, strlen(k->def), "default", &doc));
        int rc = assign(st, &doc, yaml_document_get_root_node(&doc), i, "default", "", 0);
        yaml_document_delete(&doc);
        IPR_TRY(rc);
        st->slots[i].set = 0;
        snprintf(st->slots[i].source, sizeof st->slots[i].source, "default");
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

int cfg_read_yaml(store *st, const char *yaml, size_t len, const char *path) {
    yaml_document_t doc;
    int have_doc = 0;
    IPR_TRY(load_doc(yaml, len, path, &doc));
    have_doc = 1;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    IPR_CHECK(root != NULL, "%s: the config is empty", path);
    IPR_CHECK(root->type == YAML_MAPPING_NODE, "%s:%d: the config must be a mapping of keys to values", path,
              (int)root->start_mark.line + 1);
    IPR_TRY(walk_mapping(st, &doc, root, "", path, st->dir));
    yaml_document_delete(&doc);
    return IPR_OK;
fail:
    if (have_doc) yaml_document_delete(&doc);
    return IPR_ERR;
}
