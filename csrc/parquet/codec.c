#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include "codec.h"

int pq_codec_from_name(const char *name)
{
    if (strcmp(name, "none") == 0 || strcmp(name, "uncompressed") == 0)
        return PQ_UNCOMPRESSED;
    if (strcmp(name, "snappy") == 0)
        return PQ_SNAPPY;
    if (strcmp(name, "zstd") == 0)
        return PQ_ZSTD;
    if (strcmp(name, "gzip") == 0)
        return PQ_GZIP;
    return -1;
}

const char *pq_codec_name(enum pq_codec codec)
{
    switch (codec) {
    case PQ_SNAPPY: return "snappy";
    case PQ_GZIP: return "gzip";
    case PQ_ZSTD: return "zstd";
    default: return "none";
    }
}

void pq_compressor_init(pq_compressor *c, enum pq_codec codec, int level)
{
    c->codec = codec;
    c->level = level;
    c->zstd = NULL;
    c->zlib = NULL;
}

void pq_compressor_free(pq_compressor *c)
{
    if (c->zstd != NULL)
        ZSTD_freeCCtx((ZSTD_CCtx *)c->zstd);
    if (c->zlib != NULL) {
        deflateEnd((z_stream *)c->zlib);
        free(c->zlib);
    }
    c->zstd = NULL;
    c->zlib = NULL;
}

static int compress_snappy(const char *in, size_t n, strbuf *out)
{
    size_t cap = snappy_max_compressed_length(n);
    if (strbuf_reserve(out, cap) != 0)
        return -1;
    if (snappy_compress(in, n, out->data, &cap) != SNAPPY_OK)
        return -1;
    out->len = cap;
    return 0;
}

static int compress_zstd(pq_compressor *c, const char *in, size_t n, strbuf *out)
{
    size_t cap = ZSTD_compressBound(n), r;
    if (c->zstd == NULL && (c->zstd = ZSTD_createCCtx()) == NULL)
        return -1;
    if (strbuf_reserve(out, cap) != 0)
        return -1;
    r = ZSTD_compressCCtx((ZSTD_CCtx *)c->zstd, out->data, cap, in, n,
                          c->level > 0 ? c->level : 3);
    if (ZSTD_isError(r))
        return -1;
    out->len = r;
    return 0;
}

/* A gzip member (RFC 1952): zlib's deflate with windowBits 15 + 16. */
static int compress_gzip(pq_compressor *c, const char *in, size_t n, strbuf *out)
{
    z_stream *z = (z_stream *)c->zlib;
    uLong cap;
    int rc;

    if ((uInt)n != n)
        return -1;
    if (z == NULL) {
        z = calloc(1, sizeof *z);
        if (z == NULL)
            return -1;
        if (deflateInit2(z, c->level > 0 ? c->level : 6, Z_DEFLATED, 15 + 16, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK) {
            free(z);
            return -1;
        }
        c->zlib = z;
    } else if (deflateReset(z) != Z_OK) {
        return -1;
    }
    cap = deflateBound(z, (uLong)n) + 32;
    if ((uInt)cap != cap || strbuf_reserve(out, cap) != 0)
        return -1;
    z->next_in = (Bytef *)(uintptr_t)in;
    z->avail_in = (uInt)n;
    z->next_out = (Bytef *)out->data;
    z->avail_out = (uInt)cap;
    rc = deflate(z, Z_FINISH);
    if (rc != Z_STREAM_END)
        return -1;
    out->len = cap - z->avail_out;
    return 0;
}

int pq_compress(pq_compressor *c, const char *in, size_t n, strbuf *out)
{
    out->len = 0;
    switch (c->codec) {
    case PQ_SNAPPY: return compress_snappy(in, n, out);
    case PQ_ZSTD: return compress_zstd(c, in, n, out);
    case PQ_GZIP: return compress_gzip(c, in, n, out);
    default: return strbuf_append(out, in, n);
    }
}
