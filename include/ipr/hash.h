/* hash.h: SHA-256 (through nettle) of memory and files, as lowercase hex. Used for provenance:
 * input files, model checkpoints, configs and bundle members. */
#ifndef IPR_HASH_H
#define IPR_HASH_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IPR_SHA256_HEX 65 /* 64 hex digits + NUL */

void ipr_sha256_hex(const void *data, size_t n, char out[IPR_SHA256_HEX]);
int ipr_sha256_file(const char *path, char out[IPR_SHA256_HEX]);

#ifdef __cplusplus
}
#endif
#endif
