/* json.c: the text buffer and JSON emitter/reader of json.h. Numbers are written in the shortest form
 * that round-trips, so the canonical config (and its SHA-256) never depends on printf's defaults. */
#define _POSIX_C_SOURCE 200809L
#include "pipeline/json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void pl_buf_init(pl_buf *b) { memset(b, 0, sizeof *b); }

void pl_buf_free(pl_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

void pl_buf_clear(pl_buf *b) {
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

static int buf_reserve(pl_buf *b, size_t extra) {
    if (b->failed) return IPR_ERR;
    if (b->len + extra + 1 <= b->cap) return IPR_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        ipr_error_set(__FILE__, __LINE__, "out of memory growing a text buffer to %zu bytes", cap);
        b->failed = 1;
        return IPR_ERR;
    }
    b->data = p;
    b->cap = cap;
    return IPR_OK;
}

void pl_buf_addn(pl_buf *b, const char *s, size_t n) {
    if (buf_reserve(b, n) != IPR_OK) return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void pl_buf_add(pl_buf *b, const char *s) { pl_buf_addn(b, s, strlen(s)); }

void pl_buf_printf(pl_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n) != IPR_OK) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void pl_buf_json_str(pl_buf *b, const char *s) {
    pl_buf_add(b, "\"");
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; ++p) {
        switch (*p) {
        case '"': pl_buf_add(b, "\\\""); break;
        case '\\': pl_buf_add(b, "\\\\"); break;
        case '\n': pl_buf_add(b, "\\n"); break;
        case '\r': pl_buf_add(b, "\\r"); break;
        case '\t': pl_buf_add(b, "\\t"); break;
        default:
            if (*p < 0x20)
                pl_buf_printf(b, "\\u%04x", *p);
            else
                pl_buf_addn(b, (const char *)p, 1);
        }
    }
    pl_buf_add(b, "\"");
}

void pl_format_double(double v, char *out, size_t cap) {
    if (!isfinite(v)) {
        snprintf(out, cap, "null");
        return;
    }
    for (int prec = 1; prec <= 17; ++prec) {
        snprintf(out, cap, "%.*g", prec, v);
        if (strtod(out, NULL) == v) break;
    }
    if (!strpbrk(out, ".eEn")) { /* keep floats floats: "1" -> "1.0" */
        size_t n = strlen(out);
        if (n + 3 <= cap) memcpy(out + n, ".0", 3);
    }
}

void pl_buf_json_double(pl_buf *b, double v) {
    char tmp[64];
    pl_format_double(v, tmp, sizeof tmp);
    pl_buf_add(b, tmp);
}

int pl_buf_ok(const pl_buf *b) { return b->failed ? IPR_ERR : IPR_OK; }

/* ---------------- reader ---------------- */

static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') ++p;
    return p;
}

const char *pl_json_parse_str(const char *p, char *out, size_t cap) {
    size_t n = 0;
    if (*p != '"') return NULL;
    ++p;
    while (*p && *p != '"') {
        char c = *p++;
        if (c == '\\') {
            char e = *p++;
            switch (e) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': {
                unsigned v = 0;
                for (int i = 0; i < 4; ++i) {
                    char h = *p++;
                    v <<= 4;
                    if (h >= '0' && h <= '9') v |= (unsigned)(h - '0');
                    else if (h >= 'a' && h <= 'f') v |= (unsigned)(h - 'a' + 10);
                    else if (h >= 'A' && h <= 'F') v |= (unsigned)(h - 'A' + 10);
                    else return NULL;
                }
                c = v < 0x80 ? (char)v : '?'; /* the pipeline only escapes control characters */
                break;
            }
            case '\0': return NULL;
            default: c = e;
            }
        }
        if (out && n + 1 < cap) out[n] = c;
        ++n;
    }
    if (*p != '"') return NULL;
    if (out && cap) out[n < cap ? n : cap - 1] = '\0';
    return p + 1;
}

const char *pl_json_skip_value(const char *p) {
    p = skip_ws(p);
    if (*p == '"') return pl_json_parse_str(p, NULL, 0);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = skip_ws(p + 1);
        if (*p == close) return p + 1;
        for (;;) {
            if (close == '}') {
                p = pl_json_parse_str(skip_ws(p), NULL, 0);
                if (!p) return NULL;
                p = skip_ws(p);
                if (*p != ':') return NULL;
                ++p;
            }
            p = pl_json_skip_value(p);
            if (!p) return NULL;
            p = skip_ws(p);
            if (*p == ',') {
                ++p;
                continue;
            }
            if (*p == close) return p + 1;
            return NULL;
        }
    }
    const char *start = p;
    while (*p && !strchr(",}] \t\r\n", *p)) ++p;
    return p > start ? p : NULL;
}

const char *pl_json_find(const char *json, const char *key) {
    const char *p = skip_ws(json);
    if (*p != '{') return NULL;
    p = skip_ws(p + 1);
    char name[256];
    while (*p == '"') {
        p = pl_json_parse_str(p, name, sizeof name);
        if (!p) return NULL;
        p = skip_ws(p);
        if (*p != ':') return NULL;
        p = skip_ws(p + 1);
        if (strcmp(name, key) == 0) return p;
        p = pl_json_skip_value(p);
        if (!p) return NULL;
        p = skip_ws(p);
        if (*p == ',') p = skip_ws(p + 1);
    }
    return NULL;
}

int pl_json_get_str(const char *json, const char *key, char *out, size_t cap) {
    const char *v = pl_json_find(json, key);
    if (!v || *v != '"' || !pl_json_parse_str(v, out, cap)) {
        ipr_error_set(__FILE__, __LINE__, "JSON key \"%s\" missing or not a string", key);
        return IPR_ERR;
    }
    return IPR_OK;
}

int pl_json_get_double(const char *json, const char *key, double *out) {
    const char *v = pl_json_find(json, key);
    char *end = NULL;
    double d = v ? strtod(v, &end) : 0.0;
    if (!v || end == v) {
        ipr_error_set(__FILE__, __LINE__, "JSON key \"%s\" missing or not a number", key);
        return IPR_ERR;
    }
    *out = d;
    return IPR_OK;
}

int pl_json_get_i64(const char *json, const char *key, int64_t *out) {
    const char *v = pl_json_find(json, key);
    char *end = NULL;
    errno = 0;
    long long d = v ? strtoll(v, &end, 10) : 0;
    if (!v || end == v || errno) {
        ipr_error_set(__FILE__, __LINE__, "JSON key \"%s\" missing or not an integer", key);
        return IPR_ERR;
    }
    *out = d;
    return IPR_OK;
}

int pl_read_file(const char *path, char **data, size_t *len) {
    FILE *fp = NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    struct stat sb;
    *data = NULL;
    /* a directory is refused by name (fopen opens one and ftell says 2^63 - 1); pipes and other non-regular
     * files (`ipr plan <(...)`) are read to their end, without trusting a size */
    IPR_TRY_PTR(fp = ipr_fopen_read(path, "rb"));
    IPR_IO(fstat(fileno(fp), &sb) == 0, path);
    cap = S_ISREG(sb.st_mode) && sb.st_size > 0 ? (size_t)sb.st_size + 1 : 4096;
    IPR_TRY_PTR(buf = ipr_malloc(cap, path));
    for (;;) {
        if (n + 1 == cap) {
            char *bigger = realloc(buf, 2 * cap);
            IPR_CHECK(bigger != NULL, "out of memory reading %s (%zu bytes so far)", path, n);
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, fp);
        n += got;
        if (got == 0) {
            IPR_IO(!ferror(fp), path);
            break;
        }
    }
    buf[n] = '\0';
    IPR_TRY(ipr_fclose(&fp, path));
    *data = buf;
    if (len) *len = n;
    return IPR_OK;
fail:
    free(buf);
    if (fp) fclose(fp);
    return IPR_ERR;
}

int pl_write_file_atomic(const char *path, const char *data, size_t len) {
    char tmp[4096] = "";
    FILE *fp = NULL;
    IPR_TRY(ipr_tmp_path(tmp, sizeof tmp, path));
    IPR_IO((fp = fopen(tmp, "wb")) != NULL, tmp);
    IPR_IO(fwrite(data, 1, len, fp) == len, tmp);
    IPR_IO(fflush(fp) == 0, tmp);
    IPR_TRY(ipr_fclose(&fp, tmp));
    IPR_TRY(ipr_commit_tmp(tmp, path));
    return IPR_OK;
fail:
    if (fp) fclose(fp);
    if (tmp[0]) remove(tmp);
    return IPR_ERR;
}
