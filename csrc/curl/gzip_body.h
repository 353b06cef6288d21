/* gzip request bodies (libcurl compresses responses only). */
#ifndef ESPIPE_GZIP_BODY_H
#define ESPIPE_GZIP_BODY_H

#include <stddef.h>
#include "base/strbuf.h"

/* Replace out's contents by the gzip member of in[0..len). 0, or -1 on OOM / zlib failure. */
int gzip_body(strbuf *out, const char *in, size_t len, int level);

#endif
