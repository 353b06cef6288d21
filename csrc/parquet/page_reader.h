/*
** Rows straight from the bytes of a search response page: the envelope
** walked by search/page_envelope.h, hits.hits[*] read by the core's JSON
** grammar (json/reader.h) without Lua values, each
** column's value located by its path inside the hit, then written with the
** rules of coerce.h. A page is read whole before any row is written, so a
** malformed page writes nothing.
*/
#ifndef ESPIPE_PARQUET_PAGE_READER_H
#define ESPIPE_PARQUET_PAGE_READER_H

#include <stddef.h>
#include <stdint.h>

#include "json/json.h"
#include "search/page_envelope.h"
#include "base/strbuf.h"
#include "writer.h"

typedef page_span pq_span;   /* start == NULL: absent */

typedef struct pq_page_reader pq_page_reader;

/* NULL when out of memory. */
pq_page_reader *pq_page_reader_new(size_t ncols);
void pq_page_reader_free(pq_page_reader *r);

/*
** Column col's path: nsegs segments; a literal dotted key joining the
** segments from any level on matches too, after the nested walk (the rule
** of write_rows). 0 or -1 (out of memory).
*/
int pq_page_reader_set_path(pq_page_reader *r, size_t col, const char *const *segs,
                            const size_t *lens, int nsegs);

/*
** Reads one page. 0, or -1 with err (ESPIPE_JSON_ERRLEN bytes) and *err_at
** (0-based byte offset) set. The spans point into body, which must outlive
** their use.
*/
int pq_page_read(pq_page_reader *r, const char *body, size_t len, char *err, size_t *err_at);

size_t pq_page_hits(const pq_page_reader *r);
/* The page's pit_id, _scroll_id and the last hit's sort values, as JSON text spans. */
pq_span pq_page_pit_id(const pq_page_reader *r);
pq_span pq_page_scroll_id(const pq_page_reader *r);
pq_span pq_page_last_sort(const pq_page_reader *r);

/* The value spans of hit i of the page just read, one per column path. */
const pq_span *pq_page_row(const pq_page_reader *r, size_t i);

/* One value (start NULL: absent) into a leaf column, with the rules of coerce.h. */
int pq_page_put_value(pq_page_reader *r, pq_writer *w, pq_column *c, pq_span v);

/* Writes one row per hit of the page just read. 0, or -1 with w->err set. */
int pq_page_write(pq_page_reader *r, pq_writer *w);

#endif
