/* classifier.h: the scorer networks of spec 4.1 (the MNIST Sudoku digit classifier) and spec 4.3 (a small
 * Counting Polygons classifier with four heads) on the CPU engine, with the Sudoku and polygon metrics. */
#ifndef IPR_CLASSIFIER_H
#define IPR_CLASSIFIER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Checkpoint format (train/classifiers.py writes it): HDF5 root attributes `format` = IPR_CLASSIFIER_FORMAT,
 * `format_version` = IPR_CLASSIFIER_FORMAT_VERSION, `kind` = one of the kinds below, the architecture
 * numbers of that kind (listed at each network), and /weights/<state_dict name> float tensors with
 * PyTorch's shapes (conv (out, in, k, k), linear (out, in), norm (C)). Loading checks the names and shapes
 * both ways: a missing, unexpected or mis-shaped tensor is an error naming what was expected and found. */
#define IPR_CLASSIFIER_FORMAT "ipr-classifier"
#define IPR_CLASSIFIER_FORMAT_VERSION 2 /* version 2 added the polygons classifier's `strides`; 1 still loads */
#define IPR_CLASSIFIER_KIND_DIGIT "mnist_digit"
#define IPR_CLASSIFIER_KIND_POLYGONS "counting_polygons"

/* ================= MNIST Sudoku digit classifier (spec 4.1) =================
 * The reference's MNISTClassifier (srmbench mnist_sudoku_evaluation.py / SRM src/misc/mnist_classifier.py),
 * same parameter names: conv1 = Conv2d(1, 32, 3, padding 1), ReLU, MaxPool2d(2); conv2 = Conv2d(32, 64, 3,
 * padding 1), ReLU, MaxPool2d(2); flatten (64*7*7 = 3136, channel-major); fc1 = Linear(3136, 128), ReLU;
 * fc2 = Linear(128, 10). Dropout is the identity at evaluation. Architecture attributes (checked to be
 * exactly these): channels = [32, 64], hidden = 128, image_size = 28, num_classes = 10. */
#define IPR_DIGIT_SIDE 28
#define IPR_DIGIT_CLASSES 10

typedef struct ipr_digit_classifier ipr_digit_classifier;

/* Load a checkpoint of kind "mnist_digit" and plan the scratch for max_batch cells (>= 1); calls with more
 * cells run in chunks of max_batch. NULL on error (the recorded error says why). */
ipr_digit_classifier *ipr_digit_classifier_load(const char *path, int max_batch);
/* A second net on the same weights (shared, only read) with a scratch arena of its own and the same max_batch: one
 * per thread lets threads score at once, with the numbers of the original bit for bit. Free every clone
 * (ipr_digit_classifier_free) before the net it was cloned from. NULL on error. */
ipr_digit_classifier *ipr_digit_classifier_clone(const ipr_digit_classifier *net);
void ipr_digit_classifier_free(ipr_digit_classifier *net);
int ipr_digit_classifier_max_batch(const ipr_digit_classifier *net);
/* Bytes of the weight arena and of the scratch arena (the only two allocations of a net; a clone owns no
 * weights: 0). */
void ipr_digit_classifier_arena_bytes(const ipr_digit_classifier *net, size_t *weights, size_t *scratch);

/* logits (N, 10) of cells (N, 1, 28, 28), fed as they are (spec 7 pitfall 7: the generated image in
 * [-1, 1], no renormalisation). N >= 0. Not thread-safe on one net (the scratch is shared): a clone per thread. */
int ipr_digit_classifier_logits(ipr_digit_classifier *net, const float *cells, int N, float *logits);

/* The reference reading rule on one cell's logits (10): the top-1 class, and if that is 0 the top-2 class.
 * Ties go to the lowest index (a NaN counts as the largest value, as torch.argmax). Returns 1..9 (the
 * rule can never return 0). */
int ipr_sudoku_digit_from_logits(const float *logits);

/* digits (B, 81) row-major (cell r*9 + c is rows 28r.., columns 28c..) read from images (B, 1, 252, 252)
 * in [-1, 1] with the rule above. */
int ipr_sudoku_read_digits(ipr_digit_classifier *net, const float *images, int B, uint8_t *digits);

/* Per image the spec 4.1 distance of the digits read (ipr_sudoku_distance) and valid = (distance == 0).
 * digits (B, 81) receives the digits read, or may be NULL; distance (B) and valid (B) may be NULL. */
int ipr_sudoku_score_images(ipr_digit_classifier *net, const float *images, int B, uint8_t *digits,
                            int *distance, uint8_t *valid);

/* ================= Counting Polygons classifier (spec 4.3) =================
 * Not the reference's ResNet-50 (spec 4.3; its weights cannot be used here): a plain convolutional network of
 * this project, trained by train/train_polygons.py. L = 1..IPR_POLYCLS_MAX_LAYERS 3x3 convolutions (padding 1,
 * stride 1 or 2 each), each followed by GroupNorm(norm_groups) (none when norm_groups = 0) and ReLU, a global
 * average pool, fc1 = Linear(C_L, hidden) + ReLU, and four linear heads named as the reference's
 * MultiHeadLayer keys:
 *   conv1..convL (Conv2d), norm1..normL (GroupNorm), fc1, heads.num_polygons (9 classes: 1..9 polygons),
 *   heads.num_vertices (5: 3..7 vertices), heads.is_uniform (2: 1 = every polygon has the same vertex count),
 *   heads.numbers_label (35: the unordered numeral pair, index order of ipr_polygons_pair_index).
 * Architecture attributes: in_channels = 3, image_size (square side), channels (L values), strides (L values,
 * each 1 or 2; format version 2; a version-1 file has none and means 4 layers of stride 2), hidden,
 * norm_groups, num_classes = [9, 5, 2, 35]. */
#define IPR_POLYCLS_MAX_LAYERS 16
#define IPR_POLYCLS_NP 9  /* num_polygons classes: 1..9 */
#define IPR_POLYCLS_NV 5  /* num_vertices classes: 3..7 */
#define IPR_POLYCLS_NU 2  /* is_uniform classes */
#define IPR_POLYCLS_NL 35 /* numbers_label classes (IPR_POLY_NUM_PAIRS) */

typedef struct {
    int image_size;                        /* input side (128 for the benchmark) */
    int layers;                            /* convolutions, 1..IPR_POLYCLS_MAX_LAYERS */
    int channels[IPR_POLYCLS_MAX_LAYERS];  /* conv widths (the first `layers` entries; the rest 0) */
    int strides[IPR_POLYCLS_MAX_LAYERS];   /* conv strides, 1 or 2 (the rest 0) */
    int hidden;                            /* fc1 width */
    int norm_groups;                       /* GroupNorm groups after every conv; 0 = no norm */
} ipr_polygons_classifier_config;

/* The version-1 defaults (train/classifiers.py): image_size 128, 4 layers, channels 32, 64, 128, 128, strides 2,
 * hidden 128, norm_groups 8. */
void ipr_polygons_classifier_config_init(ipr_polygons_classifier_config *cfg);

typedef struct ipr_polygons_classifier ipr_polygons_classifier;

/* Load a checkpoint of kind "counting_polygons" (its architecture from the root attributes) with scratch
 * for max_batch images (>= 1). NULL on error. */
ipr_polygons_classifier *ipr_polygons_classifier_load(const char *path, int max_batch);
/* As ipr_digit_classifier_clone: shared weights, scratch of its own; free it before net. */
ipr_polygons_classifier *ipr_polygons_classifier_clone(const ipr_polygons_classifier *net);
void ipr_polygons_classifier_free(ipr_polygons_classifier *net);
const ipr_polygons_classifier_config *ipr_polygons_classifier_get_config(const ipr_polygons_classifier *net);

/* The logits of the four heads for images (N, 3, S, S) in [-1, 1] (S = image_size): num_polygons (N, 9),
 * num_vertices (N, 5), is_uniform (N, 2), numbers_label (N, 35); any output may be NULL. N >= 0.
 * Not thread-safe on one net. */
int ipr_polygons_classifier_logits(ipr_polygons_classifier *net, const float *images, int N, float *num_polygons,
                                   float *num_vertices, float *is_uniform, float *numbers_label);

/* One image's predictions and the spec 4.3 metrics. */
typedef struct {
    int num_polygons;       /* 1..9: argmax of the num_polygons head + 1 */
    int num_vertices;       /* 3..7: argmax of the num_vertices head + 3 */
    int is_uniform;         /* argmax of is_uniform (1 = uniform): the metric are_vertices_uniform */
    int numbers_label;      /* 0..34: argmax of numbers_label */
    int numbers[2];         /* the pair that label denotes (ipr_polygons_pair_values), numbers[0] <= numbers[1] */
    int numbers_consistent; /* {numbers} == {num_polygons, num_vertices}: are_numbers_consistent */
    int valid;              /* is_uniform && numbers_consistent: IPR's checker */
} ipr_polygons_prediction;

/* Fill a prediction from the four decoded classes (num_polygons 1..9, num_vertices 3..7, is_uniform 0/1,
 * numbers_label 0..34; values outside make numbers_consistent / valid 0) and compute the metrics. */
void ipr_polygons_prediction_make(int num_polygons, int num_vertices, int is_uniform, int numbers_label,
                                  ipr_polygons_prediction *out);
/* The same from one image's head logits (9, 5, 2, 35): argmax each, ties to the lowest index. */
void ipr_polygons_prediction_from_logits(const float *num_polygons, const float *num_vertices,
                                         const float *is_uniform, const float *numbers_label,
                                         ipr_polygons_prediction *out);
/* Predictions and metrics of images (N, 3, S, S) in [-1, 1]. */
int ipr_polygons_score_images(ipr_polygons_classifier *net, const float *images, int N, ipr_polygons_prediction *out);

#ifdef __cplusplus
}
#endif
#endif
