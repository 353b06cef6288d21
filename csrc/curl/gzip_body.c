#include <stdint.h>
#include <zlib.h>

#include "gzip_body.h"

/* zlib counts in uInt: feed huge bodies in slices it can address. */
#define SLICE ((size_t)1 << 30)

int gzip_body(strbuf *out, const char *in, size_t len, int level)
{
    z_stream zs;
    uLong bound;
    int rc = Z_OK;

    memset(&zs, 0, sizeof zs);
    /* windowBits 15 + 16 asks zlib for a gzip wrapper rather than zlib's own. */
    if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    bound = deflateBound(&zs, (uLong)len);
    out->len = 0;
    if (bound < len || strbuf_reserve(out, (size_t)bound) != 0) {
        deflateEnd(&zs);
        return -1;
    }
    zs.next_in = (Bytef *)(uintptr_t)in;
    do {
        size_t in_left = len - (size_t)((const char *)zs.next_in - in);
        size_t out_left = out->cap - out->len;
        int flush = in_left <= SLICE ? Z_FINISH : Z_NO_FLUSH;

        if (out_left == 0 && strbuf_grow(out, 4096) != 0)
            break;
        out_left = out->cap - out->len;
        zs.avail_in = (uInt)(in_left <= SLICE ? in_left : SLICE);
        zs.next_out = (Bytef *)out->data + out->len;
        zs.avail_out = (uInt)(out_left <= SLICE ? out_left : SLICE);
        rc = deflate(&zs, flush);
        out->len = (size_t)((char *)zs.next_out - out->data);
    } while (rc == Z_OK || rc == Z_BUF_ERROR);
    deflateEnd(&zs);
    return rc == Z_STREAM_END ? 0 : -1;
}
