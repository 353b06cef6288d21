/*
** The envelope of a search (or scroll) response page, walked once for every
** reader of pages: the top object, its "hits" object, and hits.hits handed
** to the reader whole. search_response.c builds Lua values from it; the
** Parquet page reader (parquet/page_reader.c) and page_position.c read
** spans of the bytes. What a reader does with a member is its hooks'.
*/
#ifndef ESPIPE_PAGE_ENVELOPE_H
#define ESPIPE_PAGE_ENVELOPE_H

#include <stddef.h>

#include "base/strbuf.h"
#include "json/reader.h"

/* A value's bytes inside the page; start == NULL: absent. */
typedef struct page_span {
    const unsigned char *start, *end;
} page_span;

enum envelope_level { ENVELOPE_TOP, ENVELOPE_HITS };

typedef struct envelope_hooks {
    /* An object of the envelope starts (its '{' passed); NULL: nothing to do. */
    int (*open)(void *ctx, enum envelope_level lv);
    /* Reads the member key at d->p (a quote) into *k, *klen; 0 or -1. */
    int (*key)(void *ctx, json_decoder *d, const char **k, size_t *klen);
    /* hits.hits at d->p ('['), read whole; 0 or -1. */
    int (*hits)(void *ctx, json_decoder *d);
    /* Any other member's value at d->p (no space before it); 0 or -1. */
    int (*value)(void *ctx, json_decoder *d, enum envelope_level lv, const char *k, size_t klen);
    /* A member was read (its value, nested object included); NULL: nothing to do. */
    void (*member_done)(void *ctx);
} envelope_hooks;

/*
** The whole page text d->start..d->end (d->p at its start): an object, then
** nothing but space. 0, or -1 with d->err / d->err_at set.
*/
int envelope_walk(json_decoder *d, const envelope_hooks *h, void *ctx);

/*
** hits.hits at d->p ('['): hit(ctx, d) for each element, which must be an
** object (d->p at its '{'). 0, or -1 with d->err set.
*/
int envelope_each_hit(json_decoder *d, int (*hit)(void *ctx, json_decoder *d), void *ctx);

/*
** The hit at d->p ('{'), its members checked and passed: member(ctx, k,
** klen, v) for each, v the value's bytes (keys with escapes resolved in
** scratch). 0, or -1 with d->err set.
*/
int envelope_hit_members(json_decoder *d, strbuf *scratch,
                         void (*member)(void *ctx, const char *k, size_t klen, page_span v), void *ctx);

/*
** The value of a member at d->p checked and passed; at ENVELOPE_TOP, where
** pit_id or _scroll_id is kept as a span. 0 or -1.
*/
int envelope_skip_member(json_decoder *d, enum envelope_level lv, const char *k, size_t klen,
                         page_span *pit_id, page_span *scroll_id);

/*
** A key's bytes for readers without Lua: the page's own bytes when it has
** no escape, else resolved into scratch. *in_page tells which. bulk/lines.c's
** read_key is the same read without the flag, tuned for short keys.
*/
static inline int page_key(json_decoder *d, strbuf *scratch, const char **k, size_t *klen,
                           int *in_page)
{
    const unsigned char *q = d->p, *p = q + 1, *end = d->end;
    p = json_skip_plain_wide(p, end);
    if (p < end && *p != '"')
        p = json_skip_clean(p, end);
    if (p < end && *p == '"') {
        *k = (const char *)q + 1;
        *klen = (size_t)(p - q - 1);
        *in_page = 1;
        d->p = p + 1;
        return 0;
    }
    scratch->len = 0;
    if (json_dec_unescape(d, scratch) != 0)
        return -1;
    *k = scratch->len ? scratch->data : "";
    *klen = scratch->len;
    *in_page = 0;
    return 0;
}

#define PAGE_KEY_IS(k, n, lit) ((n) == sizeof(lit) - 1 && memcmp((k), (lit), (n)) == 0)

#endif
