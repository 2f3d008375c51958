/* settings.h: the sampler's settings, one row each (ipr_sampler_config's field, type, range, default, `ipr sample`
 * option and help, `ipr run` key): ipr_sampler_config_init/_set/_validate, `ipr sample` and the run schema read it. */
#ifndef IPR_SAMPLER_SETTINGS_H
#define IPR_SAMPLER_SETTINGS_H

#include <math.h>
#include <stddef.h>

#include "ipr/sampler.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------- ranges and defaults, as constant expressions ---------------- */

/* Each setting's range and default. They are macros because the `ipr run` schema (src/pipeline/config_schema.c) is a
 * static table, whose initialisers must be constants: its rows and ipr_sampler_settings[] both take them from here.
 * IPR_SAMPLER_SETTING_<field>(X) calls X(lo, hi, lo_open, hi_open, default): the range [lo, hi] (an open bound
 * excluded; ENUM: the values, BOOL: 0 and 1) and the default as YAML text. Defaults: the reference's MNIST Sudoku hard
 * settings (spec 3.3, ms_hard_test) with K = 0. */
#define IPR_SAMPLER_SETTING_order(X) X(0, IPR_ORDER_ADAPTIVE, 0, 0, "adaptive")
#define IPR_SAMPLER_SETTING_steps_per_region(X) X(1, IPR_SAMPLER_MAX_PASSES, 0, 0, "3")
#define IPR_SAMPLER_SETTING_overlap(X) X(0, 1, 0, 1, "0.0")
#define IPR_SAMPLER_SETTING_max_steps(X) X(0, IPR_SAMPLER_MAX_PASSES, 0, 0, "0")
#define IPR_SAMPLER_SETTING_alpha(X) X(0, 1, 0, 0, "0.5")
#define IPR_SAMPLER_SETTING_temperature(X) X(0, INFINITY, 0, 1, "1.0")
#define IPR_SAMPLER_SETTING_ipr_iterations(X) X(0, IPR_SAMPLER_MAX_ITERATIONS, 0, 0, "0")
#define IPR_SAMPLER_SETTING_ipr_ratio(X) X(0, 1, 1, 0, "0.25")
#define IPR_SAMPLER_SETTING_ipr_steps_per_region(X) X(1, IPR_SAMPLER_MAX_PASSES, 0, 0, "10")
#define IPR_SAMPLER_SETTING_ipr_overlap(X) X(0, 1, 0, 1, "0.8")
#define IPR_SAMPLER_SETTING_selection(X) X(0, IPR_SELECT_MIX, 0, 0, "uniform")
#define IPR_SAMPLER_SETTING_selection_mix(X) X(0, 1, 0, 0, "0.5")
#define IPR_SAMPLER_SETTING_early_stop(X) X(0, 1, 0, 0, "false")
#define IPR_SAMPLER_SETTING_keep_images(X) X(0, 1, 0, 0, "false")
#define IPR_SAMPLER_SETTING_skip_idle(X) X(0, 1, 0, 0, "false")
#define IPR_SAMPLER_SETTING_host_threads(X) X(0, IPR_SAMPLER_MAX_HOST_THREADS, 0, 0, "0")
#define IPR_SAMPLER_SETTING_gpu_sampler(X) X(0, 1, 0, 0, "false")

/* One column of a setting's row: IPR_SETTING_LO(overlap) is 0. DEF is a bare string literal, so that
 * "[" IPR_SETTING_DEF(ipr_ratio) "]" is the default of a list of them. */
#define IPR_SETTING_LO(field) IPR_SAMPLER_SETTING_##field(IPR_SETTING_LO_)
#define IPR_SETTING_HI(field) IPR_SAMPLER_SETTING_##field(IPR_SETTING_HI_)
#define IPR_SETTING_DEF(field) IPR_SAMPLER_SETTING_##field(IPR_SETTING_DEF_)
/* The range, or range and default, as designated initialisers of the members of those names (lo, hi, lo_open,
 * hi_open, def), which ipr_sampler_setting and the run schema's pl_key share. */
#define IPR_SETTING_RANGE(field) IPR_SAMPLER_SETTING_##field(IPR_SETTING_RANGE_)
#define IPR_SETTING_NUMBERS(field) IPR_SETTING_RANGE(field), .def = IPR_SETTING_DEF(field)

#define IPR_SETTING_LO_(lo_v, hi_v, lo_x, hi_x, def_v) (lo_v)
#define IPR_SETTING_HI_(lo_v, hi_v, lo_x, hi_x, def_v) (hi_v)
#define IPR_SETTING_DEF_(lo_v, hi_v, lo_x, hi_x, def_v) def_v
#define IPR_SETTING_RANGE_(lo_v, hi_v, lo_x, hi_x, def_v) \
    .lo = (lo_v), .hi = (hi_v), .lo_open = (lo_x), .hi_open = (hi_x)

/* ---------------- the table ---------------- */

typedef enum { IPR_SETTING_INT, IPR_SETTING_DOUBLE, IPR_SETTING_BOOL, IPR_SETTING_ENUM } ipr_setting_type;

/* Where `ipr sample --help` lists a setting. */
typedef enum { IPR_SETTING_BASE, IPR_SETTING_IPR, IPR_SETTING_DEVICE, IPR_SETTING_OUTPUT } ipr_setting_group;

typedef struct {
    const char *field;           /* the member of ipr_sampler_config, and ipr_sampler_config_set's key */
    size_t offset;               /* offsetof(ipr_sampler_config, field) */
    ipr_setting_type type;       /* INT, BOOL and ENUM fields are int-sized */
    const char *const *names;    /* ENUM: value i is names[i] */
    int (*from_name)(const char *text, int *value); /* ENUM: the parser (aliases, and a message naming the choices) */
    double lo, hi;               /* range (IPR_SAMPLER_SETTING_<field>) */
    int lo_open, hi_open;        /* 1: the bound itself is excluded */
    const char *def;             /* default, as YAML text */
    const char *yaml_key;        /* the `ipr run` key that sets it (ipr_ratio, selection: grid axes of lists) */
    /* ipr_sampler_config_validate's messages */
    const char *label;           /* the name they give, when not the field's */
    const char *noun;            /* ENUM: "<field> %d is not a known <noun>" */
    const char *note;            /* after a range message */
    /* `ipr sample` */
    const char *option;          /* --OPTION */
    const char *metavar;         /* its argument in --help; NULL: a flag without one, which sets 1 (BOOL) */
    ipr_setting_group group;
    const char *help;            /* after the option in --help; '\n' goes on at the help column */
    int help_range;              /* 1: --help adds "in [lo, hi)" */
    int help_default;            /* 1: --help adds "(default X)", X the default's value */
    const char *default_note;    /* inside that parenthesis, after X */
} ipr_sampler_setting;

#define IPR_SAMPLER_SETTINGS 17 /* rows: every member of ipr_sampler_config */
extern const ipr_sampler_setting ipr_sampler_settings[IPR_SAMPLER_SETTINGS];

/* The row of a field, NULL if there is none. */
const ipr_sampler_setting *ipr_sampler_setting_find(const char *field);
/* The setting's value in cfg as text: "%d", "%g" or the enum's name. */
void ipr_sampler_setting_format(const ipr_sampler_config *cfg, const ipr_sampler_setting *s, char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
