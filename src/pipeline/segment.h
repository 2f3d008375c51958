/* segment.h: the rows one batch of work units produced (units, chains, per-iteration results, timing and
 * optional final images) and their segment file: written once to a temporary name, fsync'ed, renamed. */
#ifndef IPR_PIPELINE_SEGMENT_H
#define IPR_PIPELINE_SEGMENT_H

#include <stdint.h>

#include "ipr/sampler.h"
#include "pipeline/plan.h"
#include "pipeline/rundir.h"
#include "pipeline/table.h"

typedef struct {
    pl_table units, chains, results, timing;
    int C, H, W;          /* image shape; images only with keep_images */
    uint8_t *images;      /* (chains, H, W, C) uint8, row-aligned with `chains` */
    size_t images_cap;    /* chains the buffer holds */
} pl_rows;

void pl_rows_init(pl_rows *r, int C, int H, int W);
void pl_rows_free(pl_rows *r);

/* Where a batch ran: copied into the timing rows and the segment's attributes. */
typedef struct {
    int rank, world_size;
    int batch_size;
    double wall_s;          /* the whole batch */
    double forward_s;       /* of which in the denoiser */
    double mean_batch;      /* images per forward pass */
    const char *hostname, *session, *device_name, *run_id, *config_sha256;
} pl_batch_info;

/* Append unit u's rows: res[0..u->count) are its chains (instances u->first...). */
int pl_rows_add_unit(pl_rows *r, const pl_grid *g, const pl_unit *u, const ipr_chain_result *res, int attempt,
                     const pl_batch_info *info, uint64_t batch_chains);
/* Append the rows of a unit of another table set (merge): unit row ur of src with its chains. */
int pl_rows_append_from(pl_rows *dst, const pl_rows *src, size_t ur, const uint8_t *src_images);

/* Write RUN_DIR/segments/<session>/rRRRRR-SSSSSS.h5 atomically; rel gets the path relative to RUN_DIR and
 * sha256 the file's hash (for the journal record). */
int pl_segment_write(const pl_run *run, const pl_rows *r, const pl_batch_info *info, int seq, char *rel,
                     size_t rel_cap, char sha256[65]);
/* Read a segment's tables (images too when with_images and present). */
int pl_segment_read(const char *path, pl_rows *r, int with_images);

/* [-1, 1] floats (C, H, W) -> uint8 (H, W, C), round half up, clamped (as datagen stores images). */
void pl_image_to_u8(const float *chw, int C, int H, int W, uint8_t *hwc);

#endif
