/* limits.h: the pipeline's fixed sizes (grid axes, paths, names), shared by the config, the plan and the units
 * that read the plan, so that none of them needs the config's header for a constant. */
#ifndef IPR_PIPELINE_LIMITS_H
#define IPR_PIPELINE_LIMITS_H

#define PL_MAX_MODELS 16
#define PL_MAX_FRACTIONS 64
#define PL_MAX_SELECTIONS 3
#define PL_MAX_SEEDS 1024
#define PL_PATH_MAX 4096
#define PL_NAME_MAX 64
/* most work units in one request (one batch of a rank) */
#define PL_MAX_CHUNK_UNITS 4096

#endif
