#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json/reader.h"
#include "json/number.h"
#include "shred.h"

pq_shape *pq_shape_new(size_t nnodes, size_t nroots)
{
    pq_shape *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->nodes = calloc(nnodes ? nnodes : 1, sizeof *s->nodes);
    s->roots = calloc(nroots ? nroots : 1, sizeof *s->roots);
    s->spans = calloc(nnodes ? nnodes : 1, sizeof *s->spans);
    strbuf_init(&s->key);
    strbuf_init(&s->text);
    if (s->nodes == NULL || s->roots == NULL || s->spans == NULL) {
        pq_shape_free(s);
        return NULL;
    }
    s->nnodes = nnodes;
    s->nroots = nroots;
    return s;
}

void pq_shape_free(pq_shape *s)
{
    size_t i;
    if (s == NULL)
        return;
    strbuf_free(&s->key);
    strbuf_free(&s->text);
    for (i = 0; s->nodes != NULL && i < s->nnodes; i++)
        free(s->nodes[i].key);
    free(s->nodes);
    free(s->roots);
    free(s->spans);
    free(s);
}

int pq_shape_check(const pq_shape *s, const pq_writer *w, char *msg)
{
    size_t i;
    for (i = 0; i < s->nnodes; i++) {
        const pq_shred_node *n = &s->nodes[i];
        const pq_column *c = n->first_col < w->ncols ? &w->cols[n->first_col] : NULL;
        if (n->first_col + n->ncols > w->ncols || n->end <= i || n->end > s->nnodes) {
            snprintf(msg, 256, "shred node %zu is out of range", i);
            return -1;
        }
        if (n->kind == PQ_NODE_LEAF && (c == NULL || c->max_def != n->def)) {
            snprintf(msg, 256, "shred node %zu: definition level %d, column %d", i, n->def,
                     c ? c->max_def : -1);
            return -1;
        }
    }
    return 0;
}

static void decoder(json_decoder *d, pq_span v, char *err)
{
    static json_decode_cfg cfg;
    static int ready;
    if (!ready) {
        json_decode_cfg_default(&cfg);
        ready = 1;
    }
    memset(d, 0, sizeof *d);
    d->start = d->p = v.start;
    d->end = v.end;
    d->cfg = &cfg;
    d->err = err;
}

/* ---- walking values checked as JSON already ----
** A page read whole, or the encoder's text: strings and brackets only, no
** validation and no decoder state, never reading past the span's end (a
** value cut off there is malformed: -1 or NULL). */

static const unsigned char *past_space(const unsigned char *p, const unsigned char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* Past the string at p (a quote); NULL when it is cut off at end. Plain
   runs a word at a time; a non-ASCII byte stops the wide skip, not the string. */
static const unsigned char *past_string(const unsigned char *p, const unsigned char *end)
{
    for (p++; (p = json_skip_plain_wide(p, end)) < end; p++) {
        if (*p == '"')
            return p + 1;
        if (*p == '\\')
            p++;
    }
    return NULL;
}

/* Past the value at p; NULL when it is cut off at end. */
static const unsigned char *past_value(const unsigned char *p, const unsigned char *end)
{
    size_t depth = 0;
    if (p >= end)
        return NULL;
    if (*p == '"')
        return past_string(p, end);
    if (*p != '{' && *p != '[') {
        while (p < end && *p != ',' && *p != ']' && *p != '}' && *p != ' '
               && *p != '\n' && *p != '\r' && *p != '\t')
            p++;
        return p;
    }
    while (p != NULL && p < end) {
        if (*p == '"') {
            p = past_string(p, end);
            continue;
        }
        if (*p == '{' || *p == '[')
            depth++;
        else if ((*p == '}' || *p == ']') && --depth == 0)
            return p + 1;
        p++;
    }
    return NULL;
}

/* The members or elements of an object or array, one after the other. */
typedef struct items {
    const unsigned char *p, *end;
    unsigned char close;
} items;

/* Opens the container v: 0 when it is empty, else 1 with it->p on the first item. */
static int items_open(items *it, pq_span v)
{
    it->end = v.end;
    it->close = *v.start == '{' ? '}' : ']';
    it->p = past_space(v.start + 1, v.end);
    return !(it->p < it->end && *it->p == it->close);
}

/* The item's value (past the key of a member) in *e; 0 or -1. */
static int item_value(items *it, pq_span *e)
{
    e->start = it->p;
    if ((it->p = past_value(it->p, it->end)) == NULL)
        return -1;
    e->end = it->p;
    return 0;
}

/* After an item: 1 when another follows (it->p on it), 0 at the container's end, -1 otherwise. */
static int items_next(items *it)
{
    const unsigned char *p = past_space(it->p, it->end);
    if (p < it->end && *p == ',') {
        it->p = past_space(p + 1, it->end);
        return 1;
    }
    return p < it->end && *p == it->close ? 0 : -1;
}

/* The key of the member at it->p, resolved (escapes into s->key), and it->p on its value; 0 or -1. */
static int item_key(pq_shape *s, items *it, const char **k, size_t *klen)
{
    const unsigned char *q, *p, *end = it->end;
    if (it->p >= end || *it->p != '"')
        return -1;
    q = it->p + 1;
    p = json_skip_plain_wide(q, end);
    while (p < end && *p != '"' && *p != '\\')
        p++;
    if (p < end && *p == '"') {
        *k = (const char *)q;
        *klen = (size_t)(p - q);
        p++;
    } else {
        json_decoder d;
        char err[ESPIPE_JSON_ERRLEN];
        pq_span rest;
        rest.start = it->p;
        rest.end = end;
        decoder(&d, rest, err);
        s->key.len = 0;
        if (json_dec_unescape(&d, &s->key) != 0)
            return -1;
        *k = s->key.len ? s->key.data : "";
        *klen = s->key.len;
        p = d.p;
    }
    p = past_space(p, end);
    if (p >= end || *p != ':')
        return -1;
    it->p = past_space(p + 1, end);
    return 0;
}

/* Every column under n gets one entry with these levels. */
static int nulls(pq_writer *w, const pq_shred_node *n, int rep, int def)
{
    size_t i;
    for (i = n->first_col; i < n->first_col + n->ncols; i++)
        if (pq_put_level(w, &w->cols[i], rep, def) != 0)
            return -1;
    return 0;
}

/* A value that fits no column: null, counted on the node's first column. */
static int invalid(pq_writer *w, const pq_shred_node *n, int rep, int def)
{
    w->cols[n->first_col].invalid++;
    return nulls(w, n, rep, def);
}

static int is_null(pq_span v)
{
    return v.start == NULL || *v.start == 'n';
}

static int shred_at(pq_shape *s, pq_page_reader *r, pq_writer *w, size_t node, pq_span v,
                    int rep, int def);

static int leaf(pq_page_reader *r, pq_writer *w, const pq_shred_node *n, pq_span v, int rep, int def)
{
    pq_column *c = &w->cols[n->first_col];
    int rc;
    c->cur_rep = rep;
    c->null_def = def;
    rc = pq_page_put_value(r, w, c, v);
    c->cur_rep = 0;
    c->null_def = 0;
    return rc;
}

/* The child of node whose key is k, or 0. */
static size_t child_by_key(const pq_shape *s, size_t node, const char *k, size_t klen)
{
    size_t i;
    for (i = node + 1; i < s->nodes[node].end; i = s->nodes[i].end)
        if (s->nodes[i].klen == klen && (klen == 0 || (s->nodes[i].key[0] == k[0]
                                                      && memcmp(s->nodes[i].key, k, klen) == 0)))
            return i;
    return 0;
}

/* The members of the object v into s->spans of node's children (the last of a repeated key wins). */
static int collect_members(pq_shape *s, size_t node, pq_span v)
{
    items it;
    size_t i;
    int more;

    for (i = node + 1; i < s->nodes[node].end; i = s->nodes[i].end)
        s->spans[i].start = s->spans[i].end = NULL;
    if (!items_open(&it, v))
        return 0;
    do {
        const char *k;
        size_t klen, child;
        pq_span e;
        if (item_key(s, &it, &k, &klen) != 0 || item_value(&it, &e) != 0)
            return -1;
        if ((child = child_by_key(s, node, k, klen)) != 0)
            s->spans[child] = e;
    } while ((more = items_next(&it)) > 0);
    return more;
}

/* The elements of the array v into elem: the first at rep, the others at node's; -1 when
   malformed, -2 when writing failed. */
static int each_element(pq_shape *s, pq_page_reader *r, pq_writer *w, size_t node, pq_span v,
                        int rep, int def, size_t elem, size_t *count)
{
    items it;
    int more;

    *count = 0;
    if (!items_open(&it, v))
        return 0;
    do {
        pq_span e;
        if (item_value(&it, &e) != 0)
            return -1;
        if (shred_at(s, r, w, elem, e, *count == 0 ? rep : s->nodes[node].rep, def) != 0)
            return -2;
        (*count)++;
    } while ((more = items_next(&it)) > 0);
    return more;
}

/* The first byte of the array v's first element (']' when empty). */
static unsigned char first_element(pq_span v)
{
    const unsigned char *p = past_space(v.start + 1, v.end);
    return p < v.end ? *p : ']';
}

static int is_number_start(unsigned char c)
{
    return c == '-' || (c >= '0' && c <= '9');
}

/* An array holding exactly one value: that value in *one. */
static int single_element(pq_span v, pq_span *one)
{
    items it;
    return items_open(&it, v) && item_value(&it, one) == 0 && items_next(&it) == 0;
}

static int shred_struct(pq_shape *s, pq_page_reader *r, pq_writer *w, size_t node, pq_span v,
                        int rep, int def)
{
    const pq_shred_node *n = &s->nodes[node];
    pq_span one;
    size_t i;

    if (*v.start == '[') {
        /* an object field may hold [ {..} ] as Elasticsearch accepts: the object */
        if (single_element(v, &one) && *one.start == '{')
            return shred_struct(s, r, w, node, one, rep, def);
        if (first_element(v) == ']')
            return nulls(w, n, rep, def);   /* [] is no value */
        return invalid(w, n, rep, def);
    }
    if (*v.start != '{' || collect_members(s, node, v) != 0)
        return invalid(w, n, rep, def);
    for (i = node + 1; i < n->end; i = s->nodes[i].end)
        if (shred_at(s, r, w, i, s->spans[i], rep, n->def) != 0)
            return -1;
    return 0;
}

static int shred_list(pq_shape *s, pq_page_reader *r, pq_writer *w, size_t node, pq_span v,
                      int rep, int def)
{
    const pq_shred_node *n = &s->nodes[node];
    size_t elem = node + 1, count;
    int rc;
    (void)def;
    /* a single value is a one-element list; so is [lon, lat] in a list of points */
    if (*v.start != '[' || (s->nodes[elem].kind == PQ_NODE_GEO && is_number_start(first_element(v))))
        return shred_at(s, r, w, elem, v, rep, n->def + 1);   /* a single value: a one-element list */
    rc = each_element(s, r, w, node, v, rep, n->def + 1, elem, &count);
    if (rc == -2)
        return -1;
    if (rc != 0)
        return invalid(w, n, rep, def);
    if (count == 0)
        return nulls(w, n, rep, n->def);   /* [] : an empty list */
    return 0;
}

/* ---- geo points ---- */

static double span_number(pq_span v, int *ok)
{
    json_decoder d;
    json_num num;
    char err[ESPIPE_JSON_ERRLEN];
    double x = 0;
    *ok = 0;
    if (v.start == NULL)
        return 0;
    if (*v.start == '"') {
        /* "41.12" as Elasticsearch accepts numbers in strings */
        char buf[64], *end;
        size_t len = (size_t)(v.end - v.start) - 2;
        if (len == 0 || len >= sizeof buf)
            return 0;
        memcpy(buf, v.start + 1, len);
        buf[len] = '\0';
        x = strtod(buf, &end);
        *ok = *end == '\0' && isfinite(x);
        return x;
    }
    decoder(&d, v, err);
    if (json_dec_number(&d, &num) != 0)
        return 0;
    if (num.kind == JSON_NUM_INTEGER)
        x = (double)num.i;
    else if (num.kind == JSON_NUM_DOUBLE)
        x = num.d;
    else
        return 0;
    *ok = 1;
    return x;
}

static const char GEOHASH32[] = "0123456789bcdefghjkmnpqrstuvwxyz";

/* The centre of a geohash cell. */
static int geohash_point(const char *p, size_t n, double *lat, double *lon)
{
    double la[2] = { -90, 90 }, lo[2] = { -180, 180 };
    int even = 1;
    size_t i;
    if (n == 0 || n > 12)
        return -1;
    for (i = 0; i < n; i++) {
        const char *at = memchr(GEOHASH32, p[i] >= 'A' && p[i] <= 'Z' ? p[i] - 'A' + 'a' : p[i], 32);
        int bit, b;
        if (at == NULL)
            return -1;
        b = (int)(at - GEOHASH32);
        for (bit = 4; bit >= 0; bit--) {
            double *range = even ? lo : la;
            double mid = (range[0] + range[1]) / 2;
            range[(b >> bit) & 1 ? 0 : 1] = mid;
            even = !even;
        }
    }
    *lat = (la[0] + la[1]) / 2;
    *lon = (lo[0] + lo[1]) / 2;
    return 0;
}

/* "lat,lon", "POINT (lon lat)" or a geohash. */
static int text_point(const char *p, size_t n, double *lat, double *lon)
{
    char buf[128], *end, *comma;
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    if ((comma = strchr(buf, ',')) != NULL) {
        *lat = strtod(buf, &end);
        if (end == buf || end > comma)
            return -1;
        while (*end == ' ')
            end++;
        if (end != comma)
            return -1;
        *lon = strtod(comma + 1, &end);
        while (*end == ' ')
            end++;
        return end != comma + 1 && *end == '\0' ? 0 : -1;
    }
    if (n > 5 && (strncmp(buf, "POINT", 5) == 0 || strncmp(buf, "point", 5) == 0)) {
        char *q = buf + 5;
        while (*q == ' ')
            q++;
        if (*q++ != '(')
            return -1;
        *lon = strtod(q, &end);
        if (end == q)
            return -1;
        q = end;
        *lat = strtod(q, &end);
        if (end == q)
            return -1;
        strtod(end, &q);   /* an optional z */
        while (*q == ' ')
            q++;
        return *q == ')' && q[1] == '\0' ? 0 : -1;
    }
    return geohash_point(buf, n, lat, lon);
}

static int geo_point(pq_shape *s, size_t node, pq_span v, double *lat, double *lon)
{
    int ok1 = 0, ok2 = 0;
    if (*v.start == '{') {
        size_t i, la = 0, lo = 0;
        if (collect_members(s, node, v) != 0)
            return -1;
        for (i = node + 1; i < s->nodes[node].end; i = s->nodes[i].end) {
            if (s->nodes[i].klen == 3 && memcmp(s->nodes[i].key, "lat", 3) == 0)
                la = i;
            else if (s->nodes[i].klen == 3 && memcmp(s->nodes[i].key, "lon", 3) == 0)
                lo = i;
        }
        if (la == 0 || lo == 0)
            return -1;
        *lat = span_number(s->spans[la], &ok1);
        *lon = span_number(s->spans[lo], &ok2);
    } else if (*v.start == '[') {
        items it;
        pq_span a, b;
        if (!items_open(&it, v) || item_value(&it, &a) != 0 || items_next(&it) != 1
            || item_value(&it, &b) != 0)
            return -1;
        if (*a.start == '"' || *b.start == '"')
            return -1;
        *lon = span_number(a, &ok1);   /* GeoJSON order: [lon, lat] */
        *lat = span_number(b, &ok2);
    } else if (*v.start == '"') {
        if (memchr(v.start + 1, '\\', (size_t)(v.end - v.start) - 2) != NULL)
            return -1;
        if (text_point((const char *)v.start + 1, (size_t)(v.end - v.start) - 2, lat, lon) != 0)
            return -1;
        ok1 = ok2 = 1;
    }
    if (!ok1 || !ok2 || !(*lat >= -90 && *lat <= 90) || !(*lon >= -180 && *lon <= 180))
        return -1;
    return 0;
}

static int shred_geo(pq_shape *s, pq_writer *w, size_t node, pq_span v, int rep, int def)
{
    const pq_shred_node *n = &s->nodes[node];
    pq_column *lat = &w->cols[n->first_col], *lon = &w->cols[n->first_col + 1];
    double la, lo;
    pq_span one;

    if (*v.start == '[' && single_element(v, &one) && *one.start != '[' && !is_number_start(*one.start))
        v = one;   /* [point] is the point */
    if (geo_point(s, node, v, &la, &lo) != 0)
        return invalid(w, n, rep, def);
    lat->cur_rep = lon->cur_rep = rep;
    if (pq_put_double(w, lat, la) != 0 || pq_put_double(w, lon, lo) != 0)
        return -1;
    lat->cur_rep = lon->cur_rep = 0;
    return 0;
}

/* ---- maps ---- */

/* Each member of the object v: key, then the value (text as sent, strings unquoted). */
static int shred_map(pq_shape *s, pq_page_reader *r, pq_writer *w, size_t node, pq_span v,
                     int rep, int def)
{
    const pq_shred_node *n = &s->nodes[node];
    pq_column *key = &w->cols[n->first_col], *val = &w->cols[n->first_col + 1];
    items it;
    int first = 1;

    if (*v.start != '{')
        return invalid(w, n, rep, def);
    if (!items_open(&it, v))
        return nulls(w, n, rep, n->def);   /* {} : an empty map */
    do {
        const char *k;
        size_t klen;
        pq_span e;
        if (item_key(s, &it, &k, &klen) != 0)
            return -1;
        key->cur_rep = val->cur_rep = first ? rep : n->rep;
        if (pq_put_bytes(w, key, k, klen) != 0 || item_value(&it, &e) != 0)
            return -1;
        val->null_def = n->def + 1;
        if (is_null(e) ? pq_put_null(w, val) != 0
            : val->kind == PQ_STRING && *e.start != '"'
                ? pq_put_bytes(w, val, (const char *)e.start, (size_t)(e.end - e.start)) != 0
                : pq_page_put_value(r, w, val, e) != 0)
            return -1;
        first = 0;
    } while (items_next(&it) > 0);
    key->cur_rep = val->cur_rep = 0;
    val->null_def = 0;
    return 0;
}

static int shred_at(pq_shape *s, pq_page_reader *r, pq_writer *w, size_t node, pq_span v,
                    int rep, int def)
{
    const pq_shred_node *n = &s->nodes[node];
    if (n->kind == PQ_NODE_LEAF)
        return leaf(r, w, n, v, rep, def);
    if (is_null(v))
        return nulls(w, n, rep, def);
    switch (n->kind) {
    case PQ_NODE_STRUCT:
        return shred_struct(s, r, w, node, v, rep, def);
    case PQ_NODE_LIST:
        return shred_list(s, r, w, node, v, rep, def);
    case PQ_NODE_GEO:
        return shred_geo(s, w, node, v, rep, def);
    default:
        return shred_map(s, r, w, node, v, rep, def);
    }
}

int pq_shred(pq_shape *s, pq_page_reader *r, pq_writer *w, size_t node, pq_span v)
{
    return shred_at(s, r, w, node, v, 0, 0);
}

int pq_shape_write_page(pq_shape *s, pq_page_reader *r, pq_writer *w)
{
    size_t i, k;
    if (w->failed)
        return -1;
    for (i = 0; i < pq_page_hits(r); i++) {
        const pq_span *row = pq_page_row(r, i);
        for (k = 0; k < s->nroots; k++)
            if (shred_at(s, r, w, s->roots[k], row[k], 0, 0) != 0)
                return -1;
        if (pq_writer_end_row(w) != 0)
            return -1;
    }
    return 0;
}
