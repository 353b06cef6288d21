/* Page compression: the codecs Parquet readers commonly support. */
#ifndef ESPIPE_PARQUET_CODEC_H
#define ESPIPE_PARQUET_CODEC_H

#include <stddef.h>

#include "base/strbuf.h"

/* Values are parquet.thrift CompressionCodec ids. */
enum pq_codec { PQ_UNCOMPRESSED = 0, PQ_SNAPPY = 1, PQ_GZIP = 2, PQ_ZSTD = 6 };

typedef struct pq_compressor {
    enum pq_codec codec;
    int level;
    void *zstd;   /* ZSTD_CCtx, reused across pages */
    void *zlib;   /* z_stream, reused across pages */
} pq_compressor;

/* Name ("none"|"uncompressed"|"snappy"|"zstd"|"gzip") to codec; -1 if unknown. */
int pq_codec_from_name(const char *name);
const char *pq_codec_name(enum pq_codec codec);

void pq_compressor_init(pq_compressor *c, enum pq_codec codec, int level);
void pq_compressor_free(pq_compressor *c);
/* Replace out's contents by the compressed form of in[0..n). 0 or -1. */
int pq_compress(pq_compressor *c, const char *in, size_t n, strbuf *out);

#endif
