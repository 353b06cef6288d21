/*
** The Parquet file writer, free of Lua: leaf columns buffered for one row
** group at a time, then written out as pages (dictionary page first when
** used, v1 data pages), with the FileMetaData footer on close. Columns are
** flat OPTIONAL leaves unless a schema tree (pq_writer_set_schema) puts them
** under STRUCT and LIST groups; then each buffered entry carries its
** repetition and definition levels (Dremel record shredding, see shred.h).
*/
#ifndef ESPIPE_PARQUET_WRITER_H
#define ESPIPE_PARQUET_WRITER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "codec.h"
#include "dict.h"
#include "base/strbuf.h"

typedef enum pq_kind {
    PQ_STRING, PQ_JSON, PQ_INT64, PQ_TIMESTAMP, PQ_DOUBLE, PQ_BOOLEAN,
    PQ_TIMESTAMP_NS,        /* INT64 TIMESTAMP(NANOS, UTC) */
    PQ_DECIMAL              /* DECIMAL(20,0) as 9-byte big-endian BYTE_ARRAY: unsigned_long */
} pq_kind;

#define PQ_DECIMAL_BYTES 9

/* Kind from its name ("string", "json", "int64", "timestamp", "double", "boolean",
   "timestamp_ns", "decimal"); -1 if unknown. */
int pq_kind_from_name(const char *name);
const char *pq_kind_name(pq_kind kind);

enum pq_repetition { PQ_REQUIRED = 0, PQ_OPTIONAL = 1, PQ_REPEATED = 2 };
enum pq_group { PQ_GROUP_PLAIN = 0, PQ_GROUP_LIST = 1, PQ_GROUP_MAP = 2 };

/* One SchemaElement below the root, depth-first: a group (nchildren > 0) or a leaf. */
typedef struct pq_schema_elem {
    char *name;
    int repetition;         /* enum pq_repetition */
    int nchildren;          /* > 0: a group */
    int kind;               /* leaf: pq_kind */
    int group;              /* group: enum pq_group (the LIST / MAP annotation) */
} pq_schema_elem;

typedef struct pq_options {
    enum pq_codec codec;
    int level;                  /* codec level, 0 = the codec's default */
    size_t row_group_bytes;     /* flush a row group when buffered data would pass this */
    size_t page_bytes;          /* cut a data page once its values reach this */
    size_t dictionary_bytes;    /* per column chunk; past it the rest of the chunk is PLAIN */
    size_t dictionary_entries;
} pq_options;

typedef struct pq_column {
    char *name;             /* for counts and messages: the field path */
    pq_kind kind;
    char **path;            /* path_in_schema */
    int npath;
    int max_def, max_rep;   /* flat columns: 1 and 0 */
    int cur_rep;            /* the repetition level of the next entry (set by the shredder) */
    int null_def;           /* the definition level a null gets here (set by the shredder) */
    strbuf defs;            /* one definition level per buffered entry; max_def: a value */
    strbuf reps;            /* one repetition level per entry, when max_rep > 0 */
    strbuf values;          /* PLAIN values (8-byte LE / 1 byte per bool / u32 len + bytes) */
    strbuf indices;         /* uint32 dictionary index per dictionary-encoded value */
    pq_dict dict;
    int dict_full;          /* the dictionary stopped growing in this chunk */
    size_t dict_values;     /* non-null values encoded through the dictionary */
    size_t nonnull;         /* non-null values buffered */
    uint64_t invalid;       /* values written as null because they did not fit (whole file) */
    uint64_t coerced;       /* values converted the way Elasticsearch coerces (whole file) */
} pq_column;

typedef struct pq_writer {
    FILE *fp;
    int failed;
    int measuring;          /* pq_writer_measure: pages are encoded and counted, not written */
    char err[256];
    pq_options opt;
    pq_compressor comp;
    pq_column *cols;
    size_t ncols;
    size_t rg_rows;         /* rows buffered in the current row group */
    size_t buffered;        /* bytes buffered for the current row group */
    size_t peak_buffered;
    size_t max_row_bytes;
    size_t row_start;       /* buffered when the current row began */
    uint64_t rows;          /* rows flushed so far */
    uint64_t flushed;       /* buffered bytes of the row groups flushed so far */
    uint64_t offset;        /* bytes written to the file */
    uint32_t row_groups;
    strbuf rg_meta;         /* the RowGroup structs written so far, Thrift-encoded */
    strbuf page, packed, header, scratch;  /* reused page assembly buffers */
    pq_schema_elem *schema; /* NULL: the columns as flat OPTIONAL leaves */
    size_t nschema;
    uint32_t *ranks;        /* dictionary entry -> rank in byte order */
    size_t ranks_cap;
} pq_writer;

/* 0, or -1 with w->err set. The writer owns fp from now on (even on failure). */
/* A malloc'd copy of s (the schema's names), NULL when out of memory. */
char *pq_copy_string(const char *s);

int pq_writer_init(pq_writer *w, FILE *fp, const pq_options *opt, size_t ncols);
int pq_writer_set_column(pq_writer *w, size_t i, const char *name, pq_kind kind);
/*
** Or, instead of pq_writer_set_column: the whole schema below the root, whose
** leaves (in order) become the ncols columns, their levels derived from the
** tree. Copied. 0, or -1 with w->err set (a malformed tree, no memory).
*/
int pq_writer_set_schema(pq_writer *w, const pq_schema_elem *elems, size_t n);
void pq_writer_free(pq_writer *w);   /* closes fp if still open */

/*
** Appending one row: one call per column (per entry of a repeated column,
** each at c->cur_rep), then pq_writer_end_row. 0 or -1 (out of memory).
** pq_put_null is an entry at c->null_def; pq_put_level one at def.
*/
int pq_put_null(pq_writer *w, pq_column *c);
int pq_put_level(pq_writer *w, pq_column *c, int rep, int def);
int pq_put_int64(pq_writer *w, pq_column *c, int64_t v);
int pq_put_double(pq_writer *w, pq_column *c, double v);
int pq_put_bool(pq_writer *w, pq_column *c, int v);
int pq_put_bytes(pq_writer *w, pq_column *c, const char *s, size_t n);
/* Ends the row; may write a row group. 0 or -1 with w->failed and w->err set. */
int pq_writer_end_row(pq_writer *w);

/* Writes the buffered rows as a row group now. 0, or -1 with w->err set. */
int pq_writer_flush(pq_writer *w);
/*
** The bytes the buffered rows would add to the file as a row group (pages
** and footer entry), by encoding and compressing them without writing; the
** buffers stay as they are. 0, or -1 with w->err set.
*/
int pq_writer_measure(pq_writer *w, uint64_t *bytes);

/*
** The footer's size if the file were finished now, less its key/value
** metadata and the row group still buffered (0 when out of memory).
*/
size_t pq_writer_footer_size(pq_writer *w, const char *created_by);

/* Flush, write the footer, close the file. kv: nkv key/value pairs. 0 or -1. */
int pq_writer_finish(pq_writer *w, const char *const *keys, const size_t *klens,
                     const char *const *vals, const size_t *vlens, size_t nkv,
                     const char *created_by);

#endif
