/* json.h: a growable text buffer with a JSON emitter (canonical numbers, escaped strings) and a small
 * reader for the flat JSON files the pipeline itself writes (run.json, status.json, journal lines). */
#ifndef IPR_PIPELINE_JSON_H
#define IPR_PIPELINE_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "ipr/common.h"

typedef struct {
    char *data; /* NUL-terminated */
    size_t len, cap;
    int failed; /* an allocation failed: the error is recorded, later appends are no-ops */
} pl_buf;

void pl_buf_init(pl_buf *b);
void pl_buf_free(pl_buf *b);
void pl_buf_clear(pl_buf *b);
void pl_buf_add(pl_buf *b, const char *s);
void pl_buf_addn(pl_buf *b, const char *s, size_t n);
void pl_buf_printf(pl_buf *b, const char *fmt, ...) IPR_PRINTF(2, 3);
/* A JSON string literal with quotes; control characters and non-ASCII bytes pass as \u escapes/UTF-8. */
void pl_buf_json_str(pl_buf *b, const char *s);
/* The shortest decimal that reads back as the same double, always with a '.' or an exponent so that
 * a float stays a float ("1.0", "0.25", "1e-06"). Non-finite values are written as null. */
void pl_buf_json_double(pl_buf *b, double v);
/* The same text into a fixed buffer. */
void pl_format_double(double v, char *out, size_t cap);
/* IPR_OK, or IPR_ERR if an allocation failed earlier (the error is recorded). */
int pl_buf_ok(const pl_buf *b);

/* ---- reading the pipeline's own JSON: top-level keys of one object, values found by key ---- */
/* Pointer to the value after "key": at the object's top nesting level, NULL when absent. */
const char *pl_json_find(const char *json, const char *key);
int pl_json_get_str(const char *json, const char *key, char *out, size_t cap);
int pl_json_get_double(const char *json, const char *key, double *out);
int pl_json_get_i64(const char *json, const char *key, int64_t *out);
/* Unescape a JSON string literal starting at `p` (which points at the opening quote); returns a pointer
 * just past the closing quote, or NULL if malformed. */
const char *pl_json_parse_str(const char *p, char *out, size_t cap);
/* Skip one JSON value (string, number, literal, object or array); NULL if malformed. */
const char *pl_json_skip_value(const char *p);

/* Flatten a JSON object into "a.b = value" lines (for key-level diffs of two configs). */
int pl_json_flatten(const char *json, char **lines);
/* Print the keys whose values differ between two canonical configs (their JSON text), one "key: old -> new" line
 * each (config_json.c). */
int pl_config_diff(const char *old_json, const char *new_json, char **text);

/* Whole-file helpers: read into a NUL-terminated buffer; write atomically (tmp, fsync, rename). */
int pl_read_file(const char *path, char **data, size_t *len);
int pl_write_file_atomic(const char *path, const char *data, size_t len);

#endif
