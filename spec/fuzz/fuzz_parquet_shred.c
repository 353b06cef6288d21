/*
** libFuzzer target for record shredding (csrc/parquet/shred.c): any page the
** page reader takes is shredded into a schema of lists, structs, a list of
** structs holding a list, a geo point and a map. For any input:
**  - shredding never fails and never reads outside the page;
**  - every leaf column starts each row exactly once (one entry at
**    repetition level 0 per hit), and no level passes the column's maximum;
**  - the file is finished cleanly and nothing leaks (ASan's leak check).
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "parquet/page_reader.h"
#include "parquet/shred.h"
#include "parquet/writer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* _source.tags list<string>, _source.user struct<name string, n int64,
   inner struct<k list<double>>>, _source.geo geo_point,
   _source.items list<struct<sku string, q list<int64>>>, _source.m map<string, json> */
static const pq_schema_elem SCHEMA[] = {
    { "tags", PQ_OPTIONAL, 1, 0, PQ_GROUP_LIST }, { "list", PQ_REPEATED, 1, 0, 0 },
    { "element", PQ_OPTIONAL, 0, PQ_STRING, 0 },
    { "user", PQ_OPTIONAL, 3, 0, 0 }, { "name", PQ_OPTIONAL, 0, PQ_STRING, 0 },
    { "n", PQ_OPTIONAL, 0, PQ_INT64, 0 }, { "inner", PQ_OPTIONAL, 1, 0, 0 },
    { "k", PQ_OPTIONAL, 1, 0, PQ_GROUP_LIST }, { "list", PQ_REPEATED, 1, 0, 0 },
    { "element", PQ_OPTIONAL, 0, PQ_DOUBLE, 0 },
    { "geo", PQ_OPTIONAL, 2, 0, 0 }, { "lat", PQ_OPTIONAL, 0, PQ_DOUBLE, 0 },
    { "lon", PQ_OPTIONAL, 0, PQ_DOUBLE, 0 },
    { "items", PQ_OPTIONAL, 1, 0, PQ_GROUP_LIST }, { "list", PQ_REPEATED, 1, 0, 0 },
    { "element", PQ_OPTIONAL, 2, 0, 0 }, { "sku", PQ_OPTIONAL, 0, PQ_STRING, 0 },
    { "q", PQ_OPTIONAL, 1, 0, PQ_GROUP_LIST }, { "list", PQ_REPEATED, 1, 0, 0 },
    { "element", PQ_OPTIONAL, 0, PQ_INT64, 0 },
    { "m", PQ_OPTIONAL, 1, 0, PQ_GROUP_MAP }, { "key_value", PQ_REPEATED, 2, 0, 0 },
    { "key", PQ_REQUIRED, 0, PQ_STRING, 0 }, { "value", PQ_OPTIONAL, 0, PQ_JSON, 0 },
};
#define NLEAVES 10

/* The shape, depth-first: kind, key, def, rep, first column, columns, end. */
static const struct { int kind; const char *key; int def, rep; size_t col, ncols, end; } NODES[] = {
    { PQ_NODE_LIST, "tags", 1, 1, 0, 1, 2 },
    { PQ_NODE_LEAF, "", 3, 1, 0, 1, 2 },
    { PQ_NODE_STRUCT, "user", 1, 0, 1, 3, 8 },
    { PQ_NODE_LEAF, "name", 2, 0, 1, 1, 4 },
    { PQ_NODE_LEAF, "n", 2, 0, 2, 1, 5 },
    { PQ_NODE_STRUCT, "inner", 2, 0, 3, 1, 8 },
    { PQ_NODE_LIST, "k", 3, 1, 3, 1, 8 },
    { PQ_NODE_LEAF, "", 5, 1, 3, 1, 8 },
    { PQ_NODE_GEO, "geo", 1, 0, 4, 2, 11 },
    { PQ_NODE_LEAF, "lat", 2, 0, 4, 1, 10 },
    { PQ_NODE_LEAF, "lon", 2, 0, 5, 1, 11 },
    { PQ_NODE_LIST, "items", 1, 1, 6, 2, 16 },
    { PQ_NODE_STRUCT, "", 3, 1, 6, 2, 16 },
    { PQ_NODE_LEAF, "sku", 4, 1, 6, 1, 14 },
    { PQ_NODE_LIST, "q", 4, 2, 7, 1, 16 },
    { PQ_NODE_LEAF, "", 6, 2, 7, 1, 16 },
    { PQ_NODE_MAP, "m", 1, 1, 8, 2, 17 },
};
static const size_t ROOTS[] = { 0, 2, 8, 11, 16 };

static const char *const seg_src = "_source";
static const char *const field_names[] = { "tags", "user", "geo", "items", "m" };

static pq_shape *make_shape(void)
{
    size_t nnodes = sizeof NODES / sizeof NODES[0], nroots = sizeof ROOTS / sizeof ROOTS[0], i;
    pq_shape *s = pq_shape_new(nnodes, nroots);
    if (s == NULL)
        abort();
    for (i = 0; i < nnodes; i++) {
        pq_shred_node *n = &s->nodes[i];
        size_t klen = strlen(NODES[i].key);
        n->kind = NODES[i].kind;
        n->key = malloc(klen + 1);
        if (n->key == NULL)
            abort();
        memcpy(n->key, NODES[i].key, klen + 1);
        n->klen = klen;
        n->def = NODES[i].def;
        n->rep = NODES[i].rep;
        n->first_col = NODES[i].col;
        n->ncols = NODES[i].ncols;
        n->end = NODES[i].end;
    }
    for (i = 0; i < nroots; i++)
        s->roots[i] = ROOTS[i];
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t nroots = sizeof ROOTS / sizeof ROOTS[0], i, e;
    pq_page_reader *r = pq_page_reader_new(nroots);
    char err[ESPIPE_JSON_ERRLEN], msg[256];
    pq_options opt;
    pq_shape *s;
    pq_writer w;
    size_t at = 0;
    FILE *fp;

    if (r == NULL)
        abort();
    for (i = 0; i < nroots; i++) {
        const char *segs[2] = { seg_src, field_names[i] };
        size_t lens[2] = { 7, strlen(field_names[i]) };
        if (pq_page_reader_set_path(r, i, segs, lens, 2) != 0)
            abort();
    }
    if (pq_page_read(r, (const char *)data, size, err, &at) != 0) {
        pq_page_reader_free(r);
        return 0;
    }
    memset(&opt, 0, sizeof opt);
    opt.codec = PQ_UNCOMPRESSED;
    opt.row_group_bytes = (size_t)1 << 30;   /* one row group: the levels are checked below */
    opt.page_bytes = 256;
    opt.dictionary_bytes = 1024;
    opt.dictionary_entries = 64;
    fp = fopen("/dev/null", "wb");
    if (fp == NULL || pq_writer_init(&w, fp, &opt, NLEAVES) != 0
        || pq_writer_set_schema(&w, SCHEMA, sizeof SCHEMA / sizeof SCHEMA[0]) != 0)
        abort();
    s = make_shape();
    if (pq_shape_check(s, &w, msg) != 0)
        abort();
    if (pq_shape_write_page(s, r, &w) != 0)
        abort();
    for (i = 0; i < NLEAVES; i++) {
        const pq_column *c = &w.cols[i];
        size_t starts = 0;
        for (e = 0; e < c->defs.len; e++) {
            int rep = c->max_rep > 0 ? (unsigned char)c->reps.data[e] : 0;
            if ((unsigned char)c->defs.data[e] > c->max_def || rep > c->max_rep)
                abort();
            starts += rep == 0;
        }
        if (starts != pq_page_hits(r))
            abort();
    }
    if (pq_writer_finish(&w, NULL, NULL, NULL, NULL, 0, "fuzz") != 0)
        abort();
    pq_writer_free(&w);
    pq_shape_free(s);
    pq_page_reader_free(r);
    return 0;
}
