/* settings.c: the sampler's settings table (settings.h) and what reads it: ipr_sampler_config_init, _set and
 * _validate, and the names of the order and selection enums. */
#define _POSIX_C_SOURCE 200809L
#include "settings.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipr/common.h"

/* INT, BOOL and ENUM fields are read and written as int through their offsets */
_Static_assert(sizeof(ipr_order) == sizeof(int) && sizeof(ipr_selection) == sizeof(int), "enum fields are int-sized");

/* ================================ enum names ================================ */

static const char *const k_order_names[] = {"parallel", "random", "graph", "adaptive"};
static const char *const k_selection_names[] = {"uniform", "uncertainty", "mix"};

const char *ipr_order_name(ipr_order order) {
    return (unsigned)order <= IPR_ORDER_ADAPTIVE ? k_order_names[order] : "unknown";
}

int ipr_order_from_name(const char *name, ipr_order *out) {
    if (name && strcmp(name, "fixed") == 0) { /* the reference's name for the parallel sampler */
        *out = IPR_ORDER_PARALLEL;
        return IPR_OK;
    }
    for (int i = 0; name && i <= IPR_ORDER_ADAPTIVE; ++i)
        if (strcmp(name, k_order_names[i]) == 0) {
            *out = (ipr_order)i;
            return IPR_OK;
        }
    ipr_error_set(__FILE__, __LINE__, "unknown order '%s' (expected parallel (or fixed), random, graph or adaptive)",
                  name ? name : "");
    return IPR_ERR;
}

const char *ipr_selection_name(ipr_selection selection) {
    return (unsigned)selection <= IPR_SELECT_MIX ? k_selection_names[selection] : "unknown";
}

int ipr_selection_from_name(const char *name, ipr_selection *out) {
    for (int i = 0; name && i <= IPR_SELECT_MIX; ++i)
        if (strcmp(name, k_selection_names[i]) == 0) {
            *out = (ipr_selection)i;
            return IPR_OK;
        }
    ipr_error_set(__FILE__, __LINE__, "unknown selection '%s' (expected uniform, uncertainty or mix)",
                  name ? name : "");
    return IPR_ERR;
}

static int order_from_name(const char *text, int *value) {
    ipr_order o;
    IPR_TRY(ipr_order_from_name(text, &o));
    *value = (int)o;
    return IPR_OK;
fail:
    return IPR_ERR;
}

static int selection_from_name(const char *text, int *value) {
    ipr_selection s;
    IPR_TRY(ipr_selection_from_name(text, &s));
    *value = (int)s;
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* ================================ the table ================================ */

/* A row's field, offset, range and default (IPR_SAMPLER_SETTING_<field> in settings.h). */
#define ROW(f) .field = #f, .offset = offsetof(ipr_sampler_config, f), IPR_SETTING_NUMBERS(f)

/* In the order of ipr_sampler_config, which is the order ipr_sampler_config_validate checks them in. The messages'
 * labels and notes are those of the checks the table replaced (tests and scripts match them). */
const ipr_sampler_setting ipr_sampler_settings[IPR_SAMPLER_SETTINGS] = {
    /* base generation (spec 2.6, 3.1) */
    {ROW(order), .type = IPR_SETTING_ENUM, .names = k_order_names, .from_name = order_from_name,
     .yaml_key = "sampler.order", .noun = "order", .option = "order", .metavar = "NAME", .group = IPR_SETTING_BASE,
     .help = "adaptive | random | graph | parallel (alias fixed)", .help_default = 1},
    {ROW(steps_per_region), .type = IPR_SETTING_INT, .yaml_key = "sampler.steps_per_region",
     .option = "steps-per-region", .metavar = "P", .group = IPR_SETTING_BASE, .help = "", .help_default = 1},
    {ROW(overlap), .type = IPR_SETTING_DOUBLE, .yaml_key = "sampler.overlap", .note = " (1 would never advance)",
     .option = "overlap", .metavar = "O", .group = IPR_SETTING_BASE, .help = "", .help_range = 1, .help_default = 1},
    {ROW(max_steps), .type = IPR_SETTING_INT, .yaml_key = "sampler.max_steps", .note = " (0 = derived)",
     .option = "max-steps", .metavar = "M", .group = IPR_SETTING_BASE,
     .help = "total passes for the base generation; 0 = from P and O", .help_default = 1},
    {ROW(alpha), .type = IPR_SETTING_DOUBLE, .yaml_key = "sampler.alpha", .label = "alpha (stochasticity)",
     .option = "alpha", .metavar = "A", .group = IPR_SETTING_BASE, .help = "stochasticity", .help_range = 1,
     .help_default = 1},
    {ROW(temperature), .type = IPR_SETTING_DOUBLE, .yaml_key = "sampler.temperature", .option = "temperature",
     .metavar = "T", .group = IPR_SETTING_BASE, .help = "", .help_default = 1},
    /* IPR (spec 3.2) */
    {ROW(ipr_iterations), .type = IPR_SETTING_INT, .yaml_key = "ipr.iterations", .option = "ipr-iterations",
     .metavar = "K", .group = IPR_SETTING_IPR, .help = "", .help_default = 1},
    {ROW(ipr_ratio), .type = IPR_SETTING_DOUBLE, .yaml_key = "ipr.fractions", .option = "ipr-ratio", .metavar = "R",
     .group = IPR_SETTING_IPR, .help = "fraction of refinable regions re-noised,", .help_range = 1,
     .help_default = 1},
    {ROW(ipr_steps_per_region), .type = IPR_SETTING_INT, .yaml_key = "ipr.steps_per_region",
     .option = "ipr-steps-per-region", .metavar = "P", .group = IPR_SETTING_IPR, .help = "", .help_default = 1},
    {ROW(ipr_overlap), .type = IPR_SETTING_DOUBLE, .yaml_key = "ipr.overlap", .option = "ipr-overlap",
     .metavar = "O", .group = IPR_SETTING_IPR, .help = "", .help_range = 1, .help_default = 1},
    {ROW(selection), .type = IPR_SETTING_ENUM, .names = k_selection_names, .from_name = selection_from_name,
     .yaml_key = "ipr.selection", .noun = "rule", .option = "selection", .metavar = "NAME", .group = IPR_SETTING_IPR,
     .help = "uniform | uncertainty | mix", .help_default = 1, .default_note = ", the reference"},
    {ROW(selection_mix), .type = IPR_SETTING_DOUBLE, .yaml_key = "ipr.selection_mix", .option = "selection-mix",
     .metavar = "F", .group = IPR_SETTING_IPR, .help = "with mix: fraction chosen by uncertainty", .help_default = 1},
    {ROW(early_stop), .type = IPR_SETTING_BOOL, .yaml_key = "ipr.early_stop", .option = "early-stop",
     .group = IPR_SETTING_IPR, .help = "stop a chain when an iteration changes no region's decoded content"},
    /* operational: results do not depend on them */
    {ROW(keep_images), .type = IPR_SETTING_BOOL, .yaml_key = "output.keep_images", .option = "save-images",
     .group = IPR_SETTING_OUTPUT, .help = "also write each chain's final image to /images"},
    {ROW(skip_idle), .type = IPR_SETTING_BOOL, .yaml_key = "sampler.skip_idle", .option = "skip-idle",
     .group = IPR_SETTING_BASE, .help = "end a generation at its first all-clean pass (the reference runs it)"},
    {ROW(host_threads), .type = IPR_SETTING_INT, .yaml_key = "device.host_threads", .option = "host-threads",
     .metavar = "N", .group = IPR_SETTING_DEVICE,
     .help = "threads for noise, transitions and scoring (default: CPUs, <= 16)"},
    /* the run config says where the chains live as device.sampler: host | gpu */
    {ROW(gpu_sampler), .type = IPR_SETTING_BOOL, .yaml_key = "device.sampler", .option = "gpu-sampler",
     .group = IPR_SETTING_DEVICE,
     .help = "with --device cuda: keep the chains on the GPU (noise, transitions and\n"
             "clue paste as kernels; the same numbers up to the rounding of CUDA's\n"
             "log/sin/cos)"},
};
#undef ROW

const ipr_sampler_setting *ipr_sampler_setting_find(const char *field) {
    for (int i = 0; field && i < IPR_SAMPLER_SETTINGS; ++i)
        if (strcmp(ipr_sampler_settings[i].field, field) == 0) return &ipr_sampler_settings[i];
    return NULL;
}

static int get_int(const ipr_sampler_config *cfg, const ipr_sampler_setting *s) {
    int v;
    memcpy(&v, (const char *)cfg + s->offset, sizeof v);
    return v;
}

static void put_int(ipr_sampler_config *cfg, const ipr_sampler_setting *s, int v) {
    memcpy((char *)cfg + s->offset, &v, sizeof v);
}

static double get_double(const ipr_sampler_config *cfg, const ipr_sampler_setting *s) {
    double v;
    memcpy(&v, (const char *)cfg + s->offset, sizeof v);
    return v;
}

void ipr_sampler_setting_format(const ipr_sampler_config *cfg, const ipr_sampler_setting *s, char *out, size_t cap) {
    const int v = s->type == IPR_SETTING_DOUBLE ? 0 : get_int(cfg, s);
    if (s->type == IPR_SETTING_DOUBLE)
        snprintf(out, cap, "%g", get_double(cfg, s));
    else if (s->type == IPR_SETTING_ENUM && v >= s->lo && v <= s->hi)
        snprintf(out, cap, "%s", s->names[v]);
    else
        snprintf(out, cap, "%d", v);
}

/* ================================ init, set, validate ================================ */

void ipr_sampler_config_init(ipr_sampler_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    /* every default parses: test_sampler's test_settings checks the values */
    for (int i = 0; i < IPR_SAMPLER_SETTINGS; ++i) {
        const ipr_sampler_setting *s = &ipr_sampler_settings[i];
        if (s->type == IPR_SETTING_BOOL)
            put_int(cfg, s, strcmp(s->def, "true") == 0);
        else
            (void)ipr_sampler_config_set(cfg, s->field, s->def);
    }
}

size_t ipr_sampler_config_size(void) { return sizeof(ipr_sampler_config); }

static int parse_int(const char *key, const char *value, int *out) {
    char *end = NULL;
    errno = 0;
    long v = value ? strtol(value, &end, 10) : 0;
    IPR_CHECK(value && *value && errno == 0 && end && *end == '\0' && v >= -2147483647L && v <= 2147483647L,
              "%s: '%s' is not an integer", key, value ? value : "");
    *out = (int)v;
    return IPR_OK;
fail:
    return IPR_ERR;
}

int ipr_sampler_config_set(ipr_sampler_config *cfg, const char *key, const char *value) {
    IPR_CHECK(cfg && key, "sampler config set: NULL argument");
    const ipr_sampler_setting *s = ipr_sampler_setting_find(key);
    IPR_CHECK(s, "unknown sampler setting '%s'", key);
    int v = 0;
    if (s->type == IPR_SETTING_DOUBLE) {
        double x;
        IPR_TRY(ipr_parse_double(value, key, &x));
        memcpy((char *)cfg + s->offset, &x, sizeof x);
        return IPR_OK;
    }
    if (s->type == IPR_SETTING_ENUM)
        IPR_TRY(s->from_name(value, &v));
    else /* INT, and BOOL as an integer: validate says what is not 0 or 1 */
        IPR_TRY(parse_int(key, value, &v));
    put_int(cfg, s, v);
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* One setting's range check, with the message of its kind. */
static int check_setting(const ipr_sampler_config *cfg, const ipr_sampler_setting *s) {
    const char *name = s->label ? s->label : s->field;
    const char *note = s->note ? s->note : "";
    if (s->type == IPR_SETTING_DOUBLE) {
        const double x = get_double(cfg, s);
        if (isinf(s->hi)) { /* no upper bound, but a number */
            IPR_CHECK(x >= s->lo && isfinite(x), "%s %g must be finite and >= %g%s", name, x, s->lo, note);
            return IPR_OK;
        }
        const int below = s->lo_open ? !(x > s->lo) : !(x >= s->lo); /* NaN is both */
        const int above = s->hi_open ? !(x < s->hi) : !(x <= s->hi);
        IPR_CHECK(!below && !above, "%s %g outside %s%g, %g%s%s", name, x, s->lo_open ? "(" : "[", s->lo, s->hi,
                  s->hi_open ? ")" : "]", note);
        return IPR_OK;
    }
    const int v = get_int(cfg, s);
    switch (s->type) {
    case IPR_SETTING_ENUM: IPR_CHECK(v >= s->lo && v <= s->hi, "%s %d is not a known %s", name, v, s->noun); break;
    case IPR_SETTING_BOOL: IPR_CHECK(v == 0 || v == 1, "%s %d is not 0 or 1", name, v); break;
    default:
        if (s->lo >= 1) { /* a count: which bound it broke */
            IPR_CHECK(v >= s->lo, "%s %d must be >= %d%s", name, v, (int)s->lo, note);
            IPR_CHECK(v <= s->hi, "%s %d exceeds %d%s", name, v, (int)s->hi, note);
        } else {
            IPR_CHECK(v >= s->lo && v <= s->hi, "%s %d outside %d..%d%s", name, v, (int)s->lo, (int)s->hi, note);
        }
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

int ipr_sampler_config_validate(const ipr_sampler_config *cfg) {
    IPR_CHECK(cfg != NULL, "sampler config: NULL");
    for (int i = 0; i < IPR_SAMPLER_SETTINGS; ++i) IPR_TRY(check_setting(cfg, &ipr_sampler_settings[i]));
    return IPR_OK;
fail:
    return IPR_ERR;
}
