/*
** The bulk body builder: an NDJSON _bulk request body assembled in one
** growable buffer, plus where each action starts, so a batch can be re-sent
** in part (retryable items), split (413) or picked apart (dead letters).
**
** Other C modules (the curl transport, a separate .so) send the body without
** copying: the metatable lends buf.data[0..buf.len) through base/borrowed.h.
** While the bytes are in flight the borrower holds a reference to the
** userdata (so it is not collected) and a pin: every method that would move
** or change the bytes raises while pins > 0.
*/
#ifndef ESPIPE_BULK_H
#define ESPIPE_BULK_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/compat.h"
#include "json/json.h"
#include "base/strbuf.h"

#define ESPIPE_BULK_MT "espipe.bulk"

/* Elasticsearch caps type names like index names, at 255 bytes */
#define BULK_DOC_TYPE_MAX 255

enum bulk_op { BULK_INDEX, BULK_CREATE, BULK_UPDATE, BULK_DELETE };

typedef struct bulk_item {
    size_t offset;       /* first byte of the action line in buf */
    size_t action_len;   /* action line including its '\n' */
    size_t source_len;   /* source line including its '\n'; 0 for delete */
    int op;              /* enum bulk_op */
    int auto_id;         /* 1 when the builder made the _id (auto_ids) */
} bulk_item;

typedef struct bulk_buffer {
    strbuf buf;          /* the body; every line ends in '\n' as _bulk requires */
    size_t count;        /* actions in buf, = entries used in items */
    bulk_item *items;
    size_t items_cap;
    int pins;            /* > 0 while another module reads buf.data in place */
    int auto_ids;        /* give index/create actions without _id a time-based one */
    json_encode_cfg cfg;
    struct json_key_cache *keys;    /* the state's encoder context (json_context) */
    /* the _type every action line carries (Elasticsearch 6.x); empty: none.
    ** Checked at bulk.new to need no JSON escaping. */
    char doc_type[BULK_DOC_TYPE_MAX + 1];
    size_t doc_type_len;
} bulk_buffer;

static inline bulk_buffer *bulk_check(lua_State *L, int idx)
{
    return (bulk_buffer *)luaL_checkudata(L, idx, ESPIPE_BULK_MT);
}

/*
** Room for one more item (doubling, 64 at first), for the builder and the C
** line path alike; inline, since both call it once a document. 0, or -1 out
** of memory with the items as they were.
*/
static inline int bulk_reserve_item(bulk_buffer *b)
{
    size_t cap;
    bulk_item *p;

    if (b->count < b->items_cap)
        return 0;
    cap = b->items_cap ? b->items_cap * 2 : 64;
    p = cap > SIZE_MAX / sizeof *p ? NULL : realloc(b->items, cap * sizeof *p);
    if (p == NULL)
        return -1;
    b->items = p;
    b->items_cap = cap;
    return 0;
}

/*
** ',"name":' (without the comma for the first field of an object), for the
** action lines of the builder and of the C line path alike. Inline: strlen
** of the constant name folds at each call site. 0, or -1 out of memory with
** out as it was.
*/
static inline int bulk_put_key(strbuf *out, const char *name, int *first)
{
    size_t n = strlen(name);

    if (strbuf_reserve(out, n + 4) != 0)
        return -1;
    if (!*first)
        strbuf_putc_unsafe(out, ',');
    *first = 0;
    strbuf_putc_unsafe(out, '"');
    strbuf_append_unsafe(out, name, n);
    strbuf_putc_unsafe(out, '"');
    strbuf_putc_unsafe(out, ':');
    return 0;
}

/* "_type":"<doc_type>" when the buffer has one (right after _index, where
** 6.x clients put it); 0, or -1 out of memory. */
static inline int bulk_put_type(bulk_buffer *b, int *first)
{
    if (b->doc_type_len == 0)
        return 0;
    if (bulk_put_key(&b->buf, "_type", first) != 0 || strbuf_reserve(&b->buf, b->doc_type_len + 2) != 0)
        return -1;
    strbuf_putc_unsafe(&b->buf, '"');
    strbuf_append_unsafe(&b->buf, b->doc_type, b->doc_type_len);
    strbuf_putc_unsafe(&b->buf, '"');
    return 0;
}

void espipe_open_bulk(lua_State *L);

#endif
