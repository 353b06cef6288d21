#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "encoding.h"
#include "thrift.h"
#include "writer.h"

/* parquet.thrift enum values used below */
enum { T_BOOLEAN = 0, T_INT64 = 2, T_DOUBLE = 5, T_BYTE_ARRAY = 6 };
enum { ENC_PLAIN = 0, ENC_RLE = 3, ENC_RLE_DICTIONARY = 8 };
enum { PAGE_DATA = 0, PAGE_DICTIONARY = 2 };
enum { CT_UTF8 = 0, CT_MAP = 1, CT_LIST = 3, CT_DECIMAL = 5, CT_TIMESTAMP_MILLIS = 9, CT_JSON = 19 };

/* Values seen before a chunk judges whether its dictionary pays off. */
#define DICT_PROBE_VALUES 16384

/* Longer string bounds are left out of the statistics rather than truncated. */
#define STATS_MAX_BYTES 512

static const char *const kind_names[] = {
    "string", "json", "int64", "timestamp", "double", "boolean", "timestamp_ns", "decimal"
};

int pq_kind_from_name(const char *name)
{
    size_t i;
    for (i = 0; i < sizeof kind_names / sizeof kind_names[0]; i++)
        if (strcmp(name, kind_names[i]) == 0)
            return (int)i;
    return -1;
}

const char *pq_kind_name(pq_kind kind)
{
    return kind_names[kind];
}

static int physical_type(pq_kind k)
{
    switch (k) {
    case PQ_INT64: case PQ_TIMESTAMP: case PQ_TIMESTAMP_NS: return T_INT64;
    case PQ_DOUBLE: return T_DOUBLE;
    case PQ_BOOLEAN: return T_BOOLEAN;
    default: return T_BYTE_ARRAY;
    }
}

static int is_bytes(pq_kind k)
{
    return k == PQ_STRING || k == PQ_JSON || k == PQ_DECIMAL;
}

static int fail(pq_writer *w, const char *fmt, ...)
{
    va_list ap;
    if (!w->failed) {
        va_start(ap, fmt);
        vsnprintf(w->err, sizeof w->err, fmt, ap);
        va_end(ap);
        w->failed = 1;
    }
    return -1;
}

static void column_init(pq_column *c)
{
    memset(c, 0, sizeof *c);
    strbuf_init(&c->defs);
    strbuf_init(&c->reps);
    strbuf_init(&c->values);
    c->max_def = 1;
    strbuf_init(&c->indices);
    pq_dict_init(&c->dict);
}

static void free_path(pq_column *c)
{
    int i;
    for (i = 0; c->path != NULL && i < c->npath; i++)
        free(c->path[i]);
    free(c->path);
    c->path = NULL;
    c->npath = 0;
}

static void column_free(pq_column *c)
{
    free(c->name);
    free_path(c);
    strbuf_free(&c->defs);
    strbuf_free(&c->reps);
    strbuf_free(&c->values);
    strbuf_free(&c->indices);
    pq_dict_free(&c->dict);
}

static void column_reset(pq_column *c)
{
    c->defs.len = c->reps.len = c->values.len = c->indices.len = 0;
    pq_dict_clear(&c->dict);
    c->dict_full = 0;
    c->dict_values = 0;
    c->nonnull = 0;
}

static int flush_row_group(pq_writer *w);

static int write_bytes(pq_writer *w, const void *p, size_t n)
{
    if (w->measuring) {
        w->offset += n;
        return 0;
    }
    if (n > 0 && fwrite(p, 1, n, w->fp) != n)
        return fail(w, "write failed after %llu bytes: %s",
                    (unsigned long long)w->offset, strerror(errno));
    w->offset += n;
    return 0;
}

int pq_writer_init(pq_writer *w, FILE *fp, const pq_options *opt, size_t ncols)
{
    size_t i;
    memset(w, 0, sizeof *w);
    w->fp = fp;
    w->opt = *opt;
    pq_compressor_init(&w->comp, opt->codec, opt->level);
    strbuf_init(&w->rg_meta);
    strbuf_init(&w->page);
    strbuf_init(&w->packed);
    strbuf_init(&w->header);
    strbuf_init(&w->scratch);
    w->cols = calloc(ncols ? ncols : 1, sizeof *w->cols);
    if (w->cols == NULL)
        return fail(w, "out of memory");
    w->ncols = ncols;
    for (i = 0; i < ncols; i++)
        column_init(&w->cols[i]);
    return write_bytes(w, "PAR1", 4);
}

char *pq_copy_string(const char *s)
{
    size_t n = strlen(s);
    char *p = malloc(n + 1);
    if (p != NULL)
        memcpy(p, s, n + 1);
    return p;
}

int pq_writer_set_column(pq_writer *w, size_t i, const char *name, pq_kind kind)
{
    pq_column *c = &w->cols[i];
    free(c->name);
    free_path(c);
    c->name = pq_copy_string(name);
    c->path = malloc(sizeof *c->path);
    if (c->name == NULL || c->path == NULL || (c->path[0] = pq_copy_string(name)) == NULL)
        return fail(w, "out of memory");
    c->npath = 1;
    c->kind = kind;
    return 0;
}

/* The dotted field path of a leaf: its ancestors' names, less LIST/MAP's inner levels. */
static char *display_name(const pq_schema_elem *e, const int *stack, int depth)
{
    strbuf b;
    int i;
    strbuf_init(&b);
    for (i = 0; i < depth; i++) {
        const pq_schema_elem *x = &e[stack[i]];
        int parent = i > 0 ? e[stack[i - 1]].group : PQ_GROUP_PLAIN;
        int grandparent = i > 1 ? e[stack[i - 2]].group : PQ_GROUP_PLAIN;
        /* LIST's "list" and "element", MAP's "key_value" */
        if (parent != PQ_GROUP_PLAIN || grandparent == PQ_GROUP_LIST)
            continue;
        if ((b.len > 0 && strbuf_putc(&b, '.') != 0) || strbuf_append(&b, x->name, strlen(x->name)) != 0) {
            strbuf_free(&b);
            return NULL;
        }
    }
    if (strbuf_putc(&b, '\0') != 0) {
        strbuf_free(&b);
        return NULL;
    }
    return b.data;
}

/* Leaf column k from the schema path stack[0..depth): its path and levels. */
static int leaf_column(pq_writer *w, size_t k, const int *stack, int depth)
{
    const pq_schema_elem *leaf = &w->schema[stack[depth - 1]];
    pq_column *c = &w->cols[k];
    int i;
    free(c->name);
    free_path(c);
    c->kind = (pq_kind)leaf->kind;
    c->max_def = c->max_rep = 0;
    c->path = calloc((size_t)depth, sizeof *c->path);
    if (c->path == NULL || (c->name = display_name(w->schema, stack, depth)) == NULL)
        return fail(w, "out of memory");
    c->npath = depth;
    for (i = 0; i < depth; i++) {
        const pq_schema_elem *x = &w->schema[stack[i]];
        if ((c->path[i] = pq_copy_string(x->name)) == NULL)
            return fail(w, "out of memory");
        if (x->repetition != PQ_REQUIRED)
            c->max_def++;
        if (x->repetition == PQ_REPEATED)
            c->max_rep++;
    }
    if (c->max_def > 255 || c->max_rep > 255)
        return fail(w, "column %s is nested too deep", c->name);
    return 0;
}

#define SCHEMA_MAX_DEPTH 64

int pq_writer_set_schema(pq_writer *w, const pq_schema_elem *elems, size_t n)
{
    int stack[SCHEMA_MAX_DEPTH], left[SCHEMA_MAX_DEPTH], depth = 0;
    size_t i, k = 0;

    w->schema = calloc(n ? n : 1, sizeof *w->schema);
    if (w->schema == NULL)
        return fail(w, "out of memory");
    w->nschema = n;
    for (i = 0; i < n; i++) {
        w->schema[i] = elems[i];
        if ((w->schema[i].name = pq_copy_string(elems[i].name)) == NULL)
            return fail(w, "out of memory");
    }
    /* depth-first: left[d] counts the children still expected at depth d (the root: all tops) */
    left[0] = -1;
    for (i = 0; i < n; i++) {
        const pq_schema_elem *e = &w->schema[i];
        if (depth >= SCHEMA_MAX_DEPTH - 1)
            return fail(w, "the schema is nested deeper than %d", SCHEMA_MAX_DEPTH);
        stack[depth] = (int)i;
        if (e->nchildren > 0) {
            left[++depth] = e->nchildren;
            continue;
        }
        if (k >= w->ncols)
            return fail(w, "the schema has more leaves than the %zu columns", w->ncols);
        if (leaf_column(w, k++, stack, depth + 1) != 0)
            return -1;
        while (depth > 0 && --left[depth] == 0)
            depth--;
    }
    if (depth != 0 || k != w->ncols)
        return fail(w, "the schema tree does not match its %zu leaf columns", w->ncols);
    return 0;
}

void pq_writer_free(pq_writer *w)
{
    size_t i;
    if (w->fp != NULL)
        fclose(w->fp);
    w->fp = NULL;
    for (i = 0; w->cols != NULL && i < w->ncols; i++)
        column_free(&w->cols[i]);
    for (i = 0; w->schema != NULL && i < w->nschema; i++)
        free(w->schema[i].name);
    free(w->schema);
    w->schema = NULL;
    free(w->cols);
    w->cols = NULL;
    w->ncols = 0;
    pq_compressor_free(&w->comp);
    strbuf_free(&w->rg_meta);
    strbuf_free(&w->page);
    strbuf_free(&w->packed);
    strbuf_free(&w->header);
    strbuf_free(&w->scratch);
    free(w->ranks);
    w->ranks = NULL;
}

/* ---- appending values ---- */

/* The levels of one entry: both reserved before either is written. */
static inline int put_levels(pq_writer *w, pq_column *c, int rep, int def)
{
    if (c->max_rep == 0) {   /* flat and struct leaves: definition levels only */
        if (strbuf_putc(&c->defs, (char)def) != 0)
            return fail(w, "out of memory");
        w->buffered += 1;
        return 0;
    }
    if (strbuf_reserve(&c->defs, 1) != 0 || strbuf_reserve(&c->reps, 1) != 0)
        return fail(w, "out of memory");
    strbuf_putc_unsafe(&c->defs, (char)def);
    strbuf_putc_unsafe(&c->reps, (char)rep);
    w->buffered += 2;
    return 0;
}

int pq_put_level(pq_writer *w, pq_column *c, int rep, int def)
{
    return put_levels(w, c, rep, def);
}

int pq_put_null(pq_writer *w, pq_column *c)
{
    return put_levels(w, c, c->cur_rep, c->null_def);
}

static int put_fixed(pq_writer *w, pq_column *c, uint64_t bits)
{
    unsigned char b[8];
    if (strbuf_reserve(&c->values, 8) != 0 || put_levels(w, c, c->cur_rep, c->max_def) != 0)
        return fail(w, "out of memory");
    put_le64(b, bits);
    strbuf_append_unsafe(&c->values, b, 8);
    c->nonnull++;
    w->buffered += 8;
    return 0;
}

int pq_put_int64(pq_writer *w, pq_column *c, int64_t v)
{
    return put_fixed(w, c, (uint64_t)v);
}

int pq_put_double(pq_writer *w, pq_column *c, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, 8);
    return put_fixed(w, c, bits);
}

int pq_put_bool(pq_writer *w, pq_column *c, int v)
{
    if (strbuf_reserve(&c->values, 1) != 0 || put_levels(w, c, c->cur_rep, c->max_def) != 0)
        return fail(w, "out of memory");
    strbuf_putc_unsafe(&c->values, v ? 1 : 0);
    c->nonnull++;
    w->buffered += 1;
    return 0;
}

static int put_plain_bytes(pq_writer *w, pq_column *c, const char *s, size_t n)
{
    unsigned char len4[4];
    if (strbuf_reserve(&c->values, n + 4) != 0)
        return fail(w, "out of memory");
    put_le32(len4, (uint32_t)n);
    strbuf_append_unsafe(&c->values, len4, 4);
    strbuf_append_unsafe(&c->values, s, n);
    w->buffered += n + 4;
    return 0;
}

int pq_put_bytes(pq_writer *w, pq_column *c, const char *s, size_t n)
{
    size_t before;
    long idx;
    uint32_t ix;

    if (n > UINT32_MAX - 64)
        return fail(w, "a value of %zu bytes in column %s is too large for Parquet", n, c->name);
    if (put_levels(w, c, c->cur_rep, c->max_def) != 0)
        return -1;
    c->nonnull++;
    /* Once the dictionary is full, the rest of the chunk stays PLAIN. */
    if (c->dict_full)
        return put_plain_bytes(w, c, s, n);
    /* Mostly-distinct values (messages, ids) gain nothing from a dictionary:
       stop hashing them early instead of filling it up to the limit. */
    if (c->dict_values >= DICT_PROBE_VALUES && c->dict.count * 20 > c->dict_values * 19) {
        c->dict_full = 1;
        return put_plain_bytes(w, c, s, n);
    }
    before = pq_dict_memory(&c->dict);
    idx = pq_dict_intern(&c->dict, s, n, w->opt.dictionary_bytes, w->opt.dictionary_entries);
    if (idx == PQ_DICT_NOMEM)
        return fail(w, "out of memory");
    if (idx == PQ_DICT_FULL) {
        c->dict_full = 1;
        w->buffered += pq_dict_memory(&c->dict) - before;
        return put_plain_bytes(w, c, s, n);
    }
    ix = (uint32_t)idx;
    if (strbuf_append(&c->indices, &ix, sizeof ix) != 0)
        return fail(w, "out of memory");
    c->dict_values++;
    w->buffered += sizeof ix + (pq_dict_memory(&c->dict) - before);
    return 0;
}

int pq_writer_end_row(pq_writer *w)
{
    size_t row = w->buffered - w->row_start;
    int rc = 0;
    if (row > w->max_row_bytes)
        w->max_row_bytes = row;
    if (w->buffered > w->peak_buffered)
        w->peak_buffered = w->buffered;
    w->rg_rows++;
    /* Flush when one more row like the largest seen could pass the limit. */
    if (w->buffered + w->max_row_bytes > w->opt.row_group_bytes)
        rc = flush_row_group(w);
    w->row_start = w->buffered;
    return rc;
}

/* ---- statistics ---- */

typedef struct stats {
    uint64_t nulls;
    int has;                  /* min/max below are set */
    int64_t imin, imax;       /* INT64, TIMESTAMP, BOOLEAN */
    double dmin, dmax;
    const char *smin, *smax;  /* byte strings, pointing into the chunk's buffers */
    size_t sminlen, smaxlen;
} stats;

static int bytes_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int r;
    /* most comparisons (page statistics, the dictionary sort) end at the first byte */
    if (an > 0 && bn > 0 && a[0] != b[0])
        return (unsigned char)a[0] < (unsigned char)b[0] ? -1 : 1;
    r = memcmp(a, b, an < bn ? an : bn);   /* memcmp compares as unsigned char */
    if (r != 0)
        return r;
    return an < bn ? -1 : an > bn;
}

/* Widens a running min/max pair to v: one body for the int64 and the double
   bounds (C99 has no generic functions). */
#define WIDEN_BOUNDS(s, v, lo, hi)      \
    do {                                \
        if (!(s)->has) {                \
            (s)->lo = (s)->hi = (v);    \
            (s)->has = 1;               \
        } else if ((v) < (s)->lo) {     \
            (s)->lo = (v);              \
        } else if ((v) > (s)->hi) {     \
            (s)->hi = (v);              \
        }                               \
    } while (0)

static void stats_int(stats *s, int64_t v)
{
    WIDEN_BOUNDS(s, v, imin, imax);
}

static void stats_double(stats *s, double v)
{
    WIDEN_BOUNDS(s, v, dmin, dmax);
}

static void stats_bytes(stats *s, const char *p, size_t n)
{
    if (!s->has) {
        s->smin = s->smax = p;
        s->sminlen = s->smaxlen = n;
        s->has = 1;
    } else if (bytes_cmp(p, n, s->smin, s->sminlen) < 0) {
        s->smin = p;
        s->sminlen = n;
    } else if (bytes_cmp(p, n, s->smax, s->smaxlen) > 0) {
        s->smax = p;
        s->smaxlen = n;
    }
}

static void stats_merge(stats *into, const stats *s, pq_kind kind)
{
    into->nulls += s->nulls;
    if (!s->has)
        return;
    switch (kind) {
    case PQ_DOUBLE:
        stats_double(into, s->dmin);
        stats_double(into, s->dmax);
        break;
    case PQ_STRING: case PQ_JSON: case PQ_DECIMAL:
        stats_bytes(into, s->smin, s->sminlen);
        stats_bytes(into, s->smax, s->smaxlen);
        break;
    default:
        stats_int(into, s->imin);
        stats_int(into, s->imax);
    }
}

static void write_stats(tc_writer *tc, int16_t id, const stats *s, pq_kind kind)
{
    unsigned char lo[8], hi[8];
    const void *minp = lo, *maxp = hi;
    size_t minn = 8, maxn = 8;
    int bounds = s->has;

    switch (kind) {
    case PQ_DOUBLE: {
        /* a zero bound is written as -0.0 (min) and +0.0 (max) */
        double mn = s->dmin == 0.0 ? -0.0 : s->dmin, mx = s->dmax == 0.0 ? 0.0 : s->dmax;
        uint64_t b;
        memcpy(&b, &mn, 8);
        put_le64(lo, b);
        memcpy(&b, &mx, 8);
        put_le64(hi, b);
        break;
    }
    case PQ_BOOLEAN:
        lo[0] = (unsigned char)s->imin;
        hi[0] = (unsigned char)s->imax;
        minn = maxn = 1;
        break;
    case PQ_STRING: case PQ_JSON: case PQ_DECIMAL:
        /* decimals: fixed-length, non-negative, so byte order is numeric order */
        minp = s->smin;
        maxp = s->smax;
        minn = s->sminlen;
        maxn = s->smaxlen;
        if (minn > STATS_MAX_BYTES || maxn > STATS_MAX_BYTES)
            bounds = 0;
        break;
    default:
        put_le64(lo, (uint64_t)s->imin);
        put_le64(hi, (uint64_t)s->imax);
    }
    tc_struct(tc, id);
    /* the deprecated signed-order fields, only where signed order is right */
    if (bounds && (kind == PQ_INT64 || kind == PQ_TIMESTAMP || kind == PQ_TIMESTAMP_NS
                   || kind == PQ_BOOLEAN)) {
        tc_binary(tc, 1, maxp, maxn);
        tc_binary(tc, 2, minp, minn);
    }
    tc_i64(tc, 3, (int64_t)s->nulls);
    if (bounds) {
        tc_binary(tc, 5, maxp, maxn);
        tc_binary(tc, 6, minp, minn);
    }
    tc_end(tc);
}

/* ---- pages and column chunks ---- */

typedef struct chunk_totals {
    uint64_t uncompressed, compressed;
} chunk_totals;

static int write_page(pq_writer *w, int type, const strbuf *body, int32_t num_values,
                      int encoding, const stats *st, pq_kind kind, chunk_totals *t)
{
    const char *out = body->data;
    size_t outn = body->len;
    tc_writer tc;

    if (w->opt.codec != PQ_UNCOMPRESSED) {
        if (pq_compress(&w->comp, body->data, body->len, &w->packed) != 0)
            return fail(w, "%s compression of a %zu-byte page failed",
                        pq_codec_name(w->opt.codec), body->len);
        out = w->packed.data;
        outn = w->packed.len;
    }
    if (body->len > INT32_MAX || outn > INT32_MAX)
        return fail(w, "a page of %zu bytes is too large", body->len);
    w->header.len = 0;
    tc_begin(&tc, &w->header);
    tc_i32(&tc, 1, type);
    tc_i32(&tc, 2, (int32_t)body->len);
    tc_i32(&tc, 3, (int32_t)outn);
    if (type == PAGE_DATA) {
        tc_struct(&tc, 5);
        tc_i32(&tc, 1, num_values);
        tc_i32(&tc, 2, encoding);
        tc_i32(&tc, 3, ENC_RLE);
        tc_i32(&tc, 4, ENC_RLE);
        if (st != NULL) /* statistics are optional in a data page header */
            write_stats(&tc, 5, st, kind);
        tc_end(&tc);
    } else {
        tc_struct(&tc, 7);
        tc_i32(&tc, 1, num_values);
        tc_i32(&tc, 2, ENC_PLAIN);
        tc_end(&tc);
    }
    tc_end(&tc);
    if (tc.failed)
        return fail(w, "out of memory");
    if (write_bytes(w, w->header.data, w->header.len) != 0 || write_bytes(w, out, outn) != 0)
        return -1;
    t->uncompressed += w->header.len + body->len;
    t->compressed += w->header.len + outn;
    return 0;
}

typedef struct ranked {
    const char *p;
    uint32_t len, index;
} ranked;

static int ranked_cmp(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    return bytes_cmp(x->p, x->len, y->p, y->len);
}

/* The least and greatest entries of the dictionary, in one pass over its PLAIN page. */
static void dictionary_bounds(const pq_column *c, stats *s)
{
    const unsigned char *p = (const unsigned char *)c->dict.plain.data;
    const unsigned char *end = p + c->dict.plain.len;
    while (p < end) {
        uint32_t len = get_le32(p);
        stats_bytes(s, (const char *)p + 4, len);
        p += 4 + (size_t)len;
    }
}

/* Sort the dictionary once so page bounds are a min/max over integer ranks. */
static ranked *rank_dictionary(pq_writer *w, pq_column *c)
{
    size_t n = c->dict.count, i, k;
    ranked *sorted;
    w->scratch.len = 0;
    if (strbuf_reserve(&w->scratch, n * sizeof(ranked)) != 0)
        return NULL;
    if (w->ranks_cap < n) {
        uint32_t *r = realloc(w->ranks, n * sizeof *r);
        if (r == NULL)
            return NULL;
        w->ranks = r;
        w->ranks_cap = n;
    }
    sorted = (ranked *)(void *)w->scratch.data;
    for (i = 0, k = 0; i < c->dict.nslots; i++) {
        const pq_dict_slot *slot = &c->dict.slots[i];
        if (slot->index1 == 0)
            continue;
        sorted[k].p = pq_dict_slot_bytes(&c->dict, slot);
        sorted[k].len = slot->len;
        sorted[k].index = slot->index1 - 1;
        k++;
    }
    qsort(sorted, n, sizeof *sorted, ranked_cmp);
    for (i = 0; i < n; i++)
        w->ranks[sorted[i].index] = (uint32_t)i;
    return sorted;
}

/* One level stream of a v1 page: its 4-byte length, then the RLE hybrid. */
static int append_levels(strbuf *page, const unsigned char *levels, size_t n, int max)
{
    size_t at = page->len;
    if (strbuf_append(page, "\0\0\0\0", 4) != 0)
        return -1;
    if (rle_hybrid_u8(page, levels, n, bit_width_for((uint32_t)max)) != 0)
        return -1;
    put_le32((unsigned char *)page->data + at, (uint32_t)(page->len - at - 4));
    return 0;
}

/* Repetition levels (repeated columns only), then definition levels. */
static int build_levels(pq_writer *w, const pq_column *c, size_t e0, size_t n)
{
    w->page.len = 0;
    if (c->max_rep > 0
        && append_levels(&w->page, (const unsigned char *)c->reps.data + e0, n, c->max_rep) != 0)
        return -1;
    return append_levels(&w->page, (const unsigned char *)c->defs.data + e0, n, c->max_def);
}

static int write_chunk(pq_writer *w, pq_column *c, tc_writer *rg, uint64_t *chunk_unc)
{
    const unsigned char *defs = (const unsigned char *)c->defs.data;
    const unsigned char *vals = (const unsigned char *)c->values.data;
    const unsigned char *reps = c->max_rep > 0 ? (const unsigned char *)c->reps.data : NULL;
    const uint32_t *idx = (const uint32_t *)(void *)c->indices.data;
    const unsigned char present = (unsigned char)c->max_def;
    size_t nrows = c->defs.len, r = 0, v = 0, pos = 0;   /* r: entries (rows when flat) */
    uint64_t dict_off = 0, data_off;
    int used_dict = is_bytes(c->kind) && c->dict.count > 0;
    int bw = used_dict ? bit_width_for((uint32_t)(c->dict.count - 1)) : 0;
    ranked *sorted = NULL;
    chunk_totals t = { 0, 0 };
    stats chunk, whole;   /* whole: the dictionary's bounds, when not ranked */
    int k;

    memset(&chunk, 0, sizeof chunk);
    memset(&whole, 0, sizeof whole);
    /* When the first page holds every dictionary-encoded value (2 bytes of
       estimate each), its bounds are the whole dictionary's: no sort. */
    if (used_dict && c->dict_values < w->opt.page_bytes / 2)
        dictionary_bounds(c, &whole);
    else if (used_dict && (sorted = rank_dictionary(w, c)) == NULL)
        return fail(w, "out of memory");
    if (used_dict) {
        dict_off = w->offset;
        if (write_page(w, PAGE_DICTIONARY, &c->dict.plain, (int32_t)c->dict.count,
                       ENC_PLAIN, NULL, c->kind, &t) != 0)
            return -1;
    }
    data_off = w->offset;
    do {
        size_t r0 = r, v0 = v, pos0 = pos, est = 0;
        int dict_mode = used_dict && v < c->dict_values;
        uint32_t rmin = UINT32_MAX, rmax = 0;
        stats ps;

        memset(&ps, 0, sizeof ps);
        /* a page of a repeated column ends at a row's first entry */
        while (r < nrows && (est < w->opt.page_bytes || (reps != NULL && reps[r] != 0))) {
            if (defs[r] != present) {
                ps.nulls++;
                r++;
                continue;
            }
            if (dict_mode) {
                uint32_t rk;
                if (v == c->dict_values)
                    break;
                if (sorted != NULL) {
                    rk = w->ranks[idx[v]];
                    if (rk < rmin) rmin = rk;
                    if (rk > rmax) rmax = rk;
                }
                est += 2;
            } else if (c->kind == PQ_DOUBLE) {
                uint64_t b = get_le64(vals + v * 8);
                double d;
                memcpy(&d, &b, 8);
                stats_double(&ps, d);
                est += 8;
            } else if (c->kind == PQ_BOOLEAN) {
                stats_int(&ps, vals[v]);
                est += 1;
            } else if (is_bytes(c->kind)) {
                uint32_t len = get_le32(vals + pos);
                stats_bytes(&ps, (const char *)vals + pos + 4, len);
                pos += 4 + (size_t)len;
                est += 4 + (size_t)len;
            } else {
                stats_int(&ps, (int64_t)get_le64(vals + v * 8));
                est += 8;
            }
            v++;
            r++;
        }
        if (dict_mode && v > v0 && sorted == NULL) {
            ps.has = 1;
            ps.smin = whole.smin;
            ps.sminlen = whole.sminlen;
            ps.smax = whole.smax;
            ps.smaxlen = whole.smaxlen;
        } else if (dict_mode && v > v0) {
            ps.has = 1;
            ps.smin = sorted[rmin].p;
            ps.sminlen = sorted[rmin].len;
            ps.smax = sorted[rmax].p;
            ps.smaxlen = sorted[rmax].len;
        }
        if (build_levels(w, c, r0, r - r0) != 0)
            return fail(w, "out of memory");
        if (dict_mode) {
            if (strbuf_putc(&w->page, (char)bw) != 0
                || rle_hybrid_u32(&w->page, idx + v0, v - v0, bw) != 0)
                return fail(w, "out of memory");
        } else if (v == v0) {
            /* a page of nulls: no values (and vals may be NULL) */
        } else if (c->kind == PQ_BOOLEAN) {
            if (bitpack_bools(&w->page, vals + v0, v - v0) != 0)
                return fail(w, "out of memory");
        } else if (is_bytes(c->kind)) {
            if (strbuf_append(&w->page, vals + pos0, pos - pos0) != 0)
                return fail(w, "out of memory");
        } else if (strbuf_append(&w->page, vals + v0 * 8, (v - v0) * 8) != 0) {
            return fail(w, "out of memory");
        }
        if (r - r0 > INT32_MAX)
            return fail(w, "too many rows in one page");
        if (write_page(w, PAGE_DATA, &w->page, (int32_t)(r - r0),
                       dict_mode ? ENC_RLE_DICTIONARY : ENC_PLAIN, &ps, c->kind, &t) != 0)
            return -1;
        stats_merge(&chunk, &ps, c->kind);
    } while (r < nrows);

    /* ColumnChunk */
    tc_elem_struct(rg);
    tc_i64(rg, 2, 0);
    tc_struct(rg, 3);
    tc_i32(rg, 1, physical_type(c->kind));
    if (used_dict) {
        tc_list(rg, 2, TC_I32, 3);
        tc_elem_i32(rg, ENC_PLAIN);
        tc_elem_i32(rg, ENC_RLE);
        tc_elem_i32(rg, ENC_RLE_DICTIONARY);
    } else {
        tc_list(rg, 2, TC_I32, 2);
        tc_elem_i32(rg, ENC_PLAIN);
        tc_elem_i32(rg, ENC_RLE);
    }
    tc_list(rg, 3, TC_BINARY, (size_t)c->npath);
    for (k = 0; k < c->npath; k++)
        tc_elem_binary(rg, c->path[k], strlen(c->path[k]));
    tc_i32(rg, 4, (int32_t)w->opt.codec);
    tc_i64(rg, 5, (int64_t)nrows);
    tc_i64(rg, 6, (int64_t)t.uncompressed);
    tc_i64(rg, 7, (int64_t)t.compressed);
    tc_i64(rg, 9, (int64_t)data_off);
    if (used_dict)
        tc_i64(rg, 11, (int64_t)dict_off);
    write_stats(rg, 12, &chunk, c->kind);
    tc_end(rg);
    tc_end(rg);
    *chunk_unc = t.uncompressed;
    return rg->failed ? fail(w, "out of memory") : 0;
}

/* The buffered rows' column chunks and RowGroup entry, leaving the buffers as they are. */
static int write_row_group(pq_writer *w)
{
    uint64_t start = w->offset, total = 0;
    size_t i, saved = w->rg_meta.len;
    tc_writer rg;

    if (w->row_groups >= INT16_MAX)
        return fail(w, "more than %d row groups in one file", INT16_MAX);
    tc_begin(&rg, &w->rg_meta);
    tc_elem_struct(&rg);
    tc_list(&rg, 1, TC_STRUCT, w->ncols);
    for (i = 0; i < w->ncols; i++) {
        uint64_t unc = 0;
        if (write_chunk(w, &w->cols[i], &rg, &unc) != 0) {
            w->rg_meta.len = saved;
            return -1;
        }
        total += unc;
    }
    tc_i64(&rg, 2, (int64_t)total);
    tc_i64(&rg, 3, (int64_t)w->rg_rows);
    tc_i64(&rg, 5, (int64_t)start);
    tc_i64(&rg, 6, (int64_t)(w->offset - start));
    tc_i16(&rg, 7, (int16_t)w->row_groups);
    tc_end(&rg);
    if (rg.failed) {
        w->rg_meta.len = saved;
        return fail(w, "out of memory");
    }
    return 0;
}

static int flush_row_group(pq_writer *w)
{
    size_t i;
    if (w->failed)
        return -1;
    if (w->rg_rows == 0)
        return 0;
    if (write_row_group(w) != 0)
        return -1;
    w->rows += w->rg_rows;
    w->flushed += w->buffered;
    w->row_groups++;
    w->rg_rows = 0;
    w->buffered = 0;
    w->row_start = 0;
    for (i = 0; i < w->ncols; i++)
        column_reset(&w->cols[i]);
    return 0;
}

/* A SchemaElement's converted type and its LogicalType, a union member with no fields. */
static void annotation(tc_writer *tc, int converted, int16_t logical)
{
    tc_i32(tc, 6, converted);
    tc_struct(tc, 10);
    tc_struct(tc, logical);
    tc_end(tc);
    tc_end(tc);
}

static void schema_leaf(tc_writer *tc, const char *name, pq_kind kind, int repetition)
{
    tc_elem_struct(tc);
    tc_i32(tc, 1, physical_type(kind));
    tc_i32(tc, 3, repetition);
    tc_binary(tc, 4, name, strlen(name));
    switch (kind) {
    case PQ_STRING:
        annotation(tc, CT_UTF8, 1);    /* STRING {} */
        break;
    case PQ_JSON:
        annotation(tc, CT_JSON, 12);   /* JSON {} */
        break;
    case PQ_TIMESTAMP:
    case PQ_TIMESTAMP_NS:
        /* NANOS has no converted type */
        if (kind == PQ_TIMESTAMP)
            tc_i32(tc, 6, CT_TIMESTAMP_MILLIS);
        tc_struct(tc, 10);
        tc_struct(tc, 8);       /* TIMESTAMP { isAdjustedToUTC, unit: MILLIS {} | NANOS {} } */
        tc_bool(tc, 1, 1);
        tc_struct(tc, 2);
        tc_struct(tc, kind == PQ_TIMESTAMP ? 1 : 3);
        tc_end(tc);
        tc_end(tc);
        tc_end(tc);
        tc_end(tc);
        break;
    case PQ_DECIMAL:
        tc_i32(tc, 6, CT_DECIMAL);
        tc_i32(tc, 7, 0);       /* scale */
        tc_i32(tc, 8, 20);      /* precision */
        tc_struct(tc, 10);
        tc_struct(tc, 5);       /* DECIMAL { scale, precision } */
        tc_i32(tc, 1, 0);
        tc_i32(tc, 2, 20);
        tc_end(tc);
        tc_end(tc);
        break;
    default:
        break;
    }
    tc_end(tc);
}

static void schema_group(tc_writer *tc, const pq_schema_elem *e)
{
    tc_elem_struct(tc);
    tc_i32(tc, 3, e->repetition);
    tc_binary(tc, 4, e->name, strlen(e->name));
    tc_i32(tc, 5, e->nchildren);
    if (e->group == PQ_GROUP_LIST)
        annotation(tc, CT_LIST, 3);   /* LIST {} */
    else if (e->group != PQ_GROUP_PLAIN)
        annotation(tc, CT_MAP, 2);    /* MAP {} */
    tc_end(tc);
}

/* The SchemaElements: the root, then the tree (or the flat columns). */
static void write_schema(tc_writer *tc, const pq_writer *w)
{
    size_t i, tops = 0;
    for (i = 0; w->schema != NULL && i < w->nschema; ) {
        /* count the root's children: skip each top-level subtree */
        size_t pending = 1;
        tops++;
        while (pending > 0 && i < w->nschema)
            pending += (size_t)w->schema[i++].nchildren - 1;
    }
    tc_list(tc, 2, TC_STRUCT, (w->schema ? w->nschema : w->ncols) + 1);
    tc_elem_struct(tc);
    tc_binary(tc, 4, "schema", 6);
    tc_i32(tc, 5, (int32_t)(w->schema ? tops : w->ncols));
    tc_end(tc);
    if (w->schema == NULL) {
        for (i = 0; i < w->ncols; i++)
            schema_leaf(tc, w->cols[i].name, w->cols[i].kind, PQ_OPTIONAL);
        return;
    }
    for (i = 0; i < w->nschema; i++) {
        const pq_schema_elem *e = &w->schema[i];
        if (e->nchildren > 0)
            schema_group(tc, e);
        else
            schema_leaf(tc, e->name, (pq_kind)e->kind, e->repetition);
    }
}

/* The FileMetaData; without_row_groups: as if none were written yet. 0, or -1 (no memory). */
static int encode_footer(pq_writer *w, strbuf *footer, const char *const *keys, const size_t *klens,
                         const char *const *vals, const size_t *vlens, size_t nkv,
                         const char *created_by, int without_row_groups)
{
    tc_writer tc;
    size_t i;

    tc_begin(&tc, footer);
    tc_i32(&tc, 1, 1);
    write_schema(&tc, w);
    tc_i64(&tc, 3, (int64_t)w->rows);
    if (without_row_groups) {
        tc_list(&tc, 4, TC_STRUCT, 0);
    } else {
        tc_list(&tc, 4, TC_STRUCT, w->row_groups);
        tc_raw(&tc, w->rg_meta.data, w->rg_meta.len);
    }
    if (nkv > 0) {
        tc_list(&tc, 5, TC_STRUCT, nkv);
        for (i = 0; i < nkv; i++) {
            tc_elem_struct(&tc);
            tc_binary(&tc, 1, keys[i], klens[i]);
            tc_binary(&tc, 2, vals[i], vlens[i]);
            tc_end(&tc);
        }
    }
    tc_binary(&tc, 6, created_by, strlen(created_by));
    tc_list(&tc, 7, TC_STRUCT, w->ncols);
    for (i = 0; i < w->ncols; i++) {
        tc_elem_struct(&tc);
        tc_struct(&tc, 1);      /* TYPE_ORDER {} */
        tc_end(&tc);
        tc_end(&tc);
    }
    tc_end(&tc);
    return tc.failed ? -1 : 0;
}

int pq_writer_flush(pq_writer *w)
{
    return flush_row_group(w);
}

int pq_writer_measure(pq_writer *w, uint64_t *bytes)
{
    uint64_t offset = w->offset;
    size_t meta = w->rg_meta.len;
    int rc;
    *bytes = 0;
    if (w->failed)
        return -1;
    if (w->rg_rows == 0)
        return 0;
    w->measuring = 1;
    rc = write_row_group(w);
    w->measuring = 0;
    *bytes = (w->offset - offset) + (w->rg_meta.len - meta);
    w->offset = offset;
    w->rg_meta.len = meta;
    return rc;
}

size_t pq_writer_footer_size(pq_writer *w, const char *created_by)
{
    size_t n;
    w->scratch.len = 0;
    if (encode_footer(w, &w->scratch, NULL, NULL, NULL, NULL, 0, created_by, 1) != 0)
        return 0;
    n = w->scratch.len;
    w->scratch.len = 0;
    return n + w->rg_meta.len + 8;   /* + its length and "PAR1" */
}

int pq_writer_finish(pq_writer *w, const char *const *keys, const size_t *klens,
                     const char *const *vals, const size_t *vlens, size_t nkv,
                     const char *created_by)
{
    strbuf footer;
    unsigned char len4[4];
    int rc;

    if (flush_row_group(w) != 0)
        return -1;
    strbuf_init(&footer);
    if (encode_footer(w, &footer, keys, klens, vals, vlens, nkv, created_by, 0) != 0
        || footer.len > UINT32_MAX) {
        strbuf_free(&footer);
        return fail(w, "out of memory");
    }
    put_le32(len4, (uint32_t)footer.len);
    rc = write_bytes(w, footer.data, footer.len);
    strbuf_free(&footer);
    if (rc != 0 || write_bytes(w, len4, 4) != 0 || write_bytes(w, "PAR1", 4) != 0)
        return -1;
    rc = fclose(w->fp);
    w->fp = NULL;
    if (rc != 0)
        return fail(w, "closing the file failed: %s", strerror(errno));
    return 0;
}
