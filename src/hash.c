/* hash.c: SHA-256 of buffers and files with nettle (a libarchive dependency on Debian already).
 * Files are streamed in 1 MiB blocks so checkpoints of any size hash in constant memory. */
#include "ipr/hash.h"

#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>

#include "ipr/common.h"

static void to_hex(const uint8_t *digest, char out[IPR_SHA256_HEX]) {
    static const char hexd[] = "0123456789abcdef";
    for (int i = 0; i < SHA256_DIGEST_SIZE; ++i) {
        out[2 * i] = hexd[digest[i] >> 4];
        out[2 * i + 1] = hexd[digest[i] & 15];
    }
    out[64] = '\0';
}

void ipr_sha256_hex(const void *data, size_t n, char out[IPR_SHA256_HEX]) {
    struct sha256_ctx ctx;
    uint8_t digest[SHA256_DIGEST_SIZE];
    sha256_init(&ctx);
    sha256_update(&ctx, n, data);
    sha256_digest(&ctx, SHA256_DIGEST_SIZE, digest);
    to_hex(digest, out);
}

int ipr_sha256_file(const char *path, char out[IPR_SHA256_HEX]) {
    FILE *fp = NULL;
    uint8_t *buf = NULL;
    struct sha256_ctx ctx;
    uint8_t digest[SHA256_DIGEST_SIZE];
    IPR_TRY_PTR(fp = ipr_fopen_read(path, "rb"));
    buf = ipr_malloc(1u << 20, "hash buffer");
    if (!buf) goto fail;
    sha256_init(&ctx);
    for (;;) {
        size_t got = fread(buf, 1, 1u << 20, fp);
        if (got > 0) sha256_update(&ctx, got, buf);
        if (got < (1u << 20)) {
            IPR_IO(!ferror(fp), path);
            break;
        }
    }
    sha256_digest(&ctx, SHA256_DIGEST_SIZE, digest);
    to_hex(digest, out);
    free(buf);
    fclose(fp);
    return IPR_OK;
fail:
    free(buf);
    if (fp) fclose(fp);
    return IPR_ERR;
}
