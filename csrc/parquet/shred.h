/*
** Record shredding (Dremel): a field's JSON value split into the entries of
** the leaf columns under it, each with its repetition and definition
** levels. The shape is the tree of the fields below the document: leaves
** (written with the rules of coerce.h), STRUCTs (objects, by member key),
** LISTs (arrays; a single value is a one-element list, [] an empty list,
** null or absent a null list), geo points (struct<lat, lon> from every form
** Elasticsearch accepts) and MAPs (an object's members as key/value pairs).
** Values already checked as JSON: from a page read whole, or the encoder.
*/
#ifndef ESPIPE_PARQUET_SHRED_H
#define ESPIPE_PARQUET_SHRED_H

#include <stddef.h>

#include "page_reader.h"
#include "writer.h"

enum pq_node_kind { PQ_NODE_LEAF, PQ_NODE_STRUCT, PQ_NODE_LIST, PQ_NODE_GEO, PQ_NODE_MAP };

/* Nodes are stored depth-first: a node's first child is the next node, its subtree ends at end. */
typedef struct pq_shred_node {
    int kind;              /* enum pq_node_kind */
    char *key;             /* the member key in the parent object */
    size_t klen;
    int def;               /* the definition level once this node holds a value */
    int rep;               /* LIST, MAP: the repetition level of its entries */
    size_t first_col;      /* the leaf columns under this node: first_col .. first_col+ncols-1 */
    size_t ncols;
    size_t end;            /* one past the last node of the subtree */
} pq_shred_node;

typedef struct pq_shape {
    pq_shred_node *nodes;
    size_t nnodes;
    size_t *roots;         /* the top-level fields, in page-reader column order */
    size_t nroots;
    pq_span *spans;        /* scratch, one per node: a struct's member values */
    strbuf key;            /* scratch: a key with escapes, resolved */
    strbuf text;           /* scratch: a value re-encoded (MAP values) */
} pq_shape;

/* NULL when out of memory. The nodes are filled in by the caller (then pq_shape_check). */
pq_shape *pq_shape_new(size_t nnodes, size_t nroots);
void pq_shape_free(pq_shape *s);
/* 0, or -1 with msg (256 bytes) when the levels disagree with the writer's columns. */
int pq_shape_check(const pq_shape *s, const pq_writer *w, char *msg);

/* Shreds v (start NULL: absent) into the columns of node; 0 or -1 with w->err set. */
int pq_shred(pq_shape *s, pq_page_reader *r, pq_writer *w, size_t node, pq_span v);

/* One row per hit of the page r just read, each root field shredded. */
int pq_shape_write_page(pq_shape *s, pq_page_reader *r, pq_writer *w);

#endif
