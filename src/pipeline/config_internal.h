/* config_internal.h: what the modules of the `ipr run` configuration share: the key table (config_schema.c), the
 * values read for each key (config_yaml.c), their resolution into pl_config (config_resolve.c) and the canonical
 * JSON (config_json.c). config.c strings them together. Not for use outside src/pipeline/config*.c. */
#ifndef IPR_PIPELINE_CONFIG_INTERNAL_H
#define IPR_PIPELINE_CONFIG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ipr/common.h"
#include "pipeline/config.h"

#define PL_CONFIG_KEYS 44 /* rows of the key table (checked where it is defined) */
#define MAX_ITEMS 1024

/* ---------------- the key table (config_schema.c) ---------------- */

extern const pl_key cfg_keys[PL_CONFIG_KEYS];
/* Index of a dotted key, or -1. */
int cfg_key_index(const char *name);
/* 1 when `name` is a section above some key ("ipr" of "ipr.fractions"). */
int cfg_is_prefix_of_key(const char *name);
/* " (did you mean 'ipr.fractions'?)" for a near miss, else "". */
void cfg_suggest(const char *name, char *out, size_t cap);
/* Keys computed from others, which a config may not set. */
int cfg_key_computed(const char *key);
/* Keys added after the first schema, left out of the canonical form while unset. */
int cfg_key_omit_unset(const char *key);

/* ---------------- parsed values ---------------- */

typedef struct {
    int64_t i;
    uint64_t u;
    double f;
    char *s; /* STR / ENUM / PATH: the text; PATH also `path` */
    char *path;
} val;

typedef struct {
    int set;          /* from file or --set (0: default) */
    int is_null;
    int n;            /* items (1 for scalars) */
    val *items;
    char source[PL_PATH_MAX + 32]; /* "default", "FILE:LINE", "--set" */
} slot;

typedef struct {
    const char *file;     /* for messages */
    char dir[PL_PATH_MAX]; /* relative paths of the file start here */
    slot slots[PL_CONFIG_KEYS];
} store;

void cfg_slot_clear(slot *s);
/* The slot of a key (it must exist). */
const slot *cfg_get(const store *st, const char *key);

/* ---------------- steps (config.c runs them in this order) ---------------- */

/* config_yaml.c: walk the document of `yaml` (the contents of `path`) into the store */
int cfg_read_yaml(store *st, const char *yaml, size_t len, const char *path);
/* config_yaml.c: one --set KEY=VALUE */
int cfg_apply_set(store *st, const char *set);
/* config_yaml.c: every key not set takes its default */
int cfg_apply_defaults(store *st);
/* config_resolve.c: the store into pl_config, with the cross-key checks */
int cfg_resolve(const store *st, pl_config *c);
/* config_resolve.c: instances.file read and checked whole; fills in what the canonical form records of it */
int cfg_resolve_instances(store *st, pl_config *c, int64_t limit);
/* config_json.c: nested, sorted canonical JSON. which: 1 semantic keys, 0 the others, 2 the sources of all keys */
int cfg_emit_json(const store *st, int which, char **out);

#endif
