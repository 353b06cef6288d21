/*
** A growable byte buffer. Growth failures are reported (-1), never fatal:
** callers restore a saved length and raise or return an error themselves.
*/
#ifndef ESPIPE_STRBUF_H
#define ESPIPE_STRBUF_H

#include <stddef.h>
#include <string.h>

typedef struct strbuf {
    char *data;
    size_t len;
    size_t cap;
} strbuf;

void strbuf_init(strbuf *b);
void strbuf_free(strbuf *b);
/* Make room for at least extra more bytes. 0 on success, -1 on overflow or OOM. */
int strbuf_grow(strbuf *b, size_t extra);

static inline int strbuf_reserve(strbuf *b, size_t extra)
{
    return (b->cap - b->len >= extra) ? 0 : strbuf_grow(b, extra);
}

static inline int strbuf_append(strbuf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;   /* p may be NULL then, and memcpy(NULL, ...) is undefined */
    if (strbuf_reserve(b, n) != 0)
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static inline int strbuf_putc(strbuf *b, char c)
{
    if (b->len == b->cap && strbuf_grow(b, 1) != 0)
        return -1;
    b->data[b->len++] = c;
    return 0;
}

/* The _unsafe variants assume a prior strbuf_reserve covered them. */
static inline void strbuf_append_unsafe(strbuf *b, const void *p, size_t n)
{
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static inline void strbuf_putc_unsafe(strbuf *b, char c)
{
    b->data[b->len++] = c;
}

#endif
