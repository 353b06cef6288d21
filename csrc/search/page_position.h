/*
** Where a raw search page ends, for a scan that resumes after it without
** decoding the page into Lua: the number of hits, pit_id, _scroll_id and
** the last hit's sort values (search_after).
**
**   page_position(body) -> { hits =, pit_id =, scroll_id =, search_after = }
**                        | nil, message, offset
**   body: a string, or bytes another module lends (an espipe.response_body)
**
** espipe.core and espipe.parquet_writer (whose write_page returns the same
** table for the page it wrote) both carry it.
*/
#ifndef ESPIPE_PAGE_POSITION_H
#define ESPIPE_PAGE_POSITION_H

#include <stddef.h>

#include "base/compat.h"
#include "page_envelope.h"

typedef struct page_position {
    size_t hits;
    page_span pit_id, scroll_id, last_sort;
} page_position;

/* The page at idx (a string or lent bytes) in *body, *len; fn names the caller when it raises. */
int page_text(lua_State *L, int idx, const char *fn, const char **body, size_t *len);

/* pos as the Lua table above, pushed (1); or nil, message, offset (3). */
int page_position_push(lua_State *L, const page_position *pos, const char *body);

/* Adds page_position to the table on top of the stack. */
void espipe_open_page_position(lua_State *L);

#endif
