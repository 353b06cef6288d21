#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coerce.h"
#include "json/reader.h"
#include "json/number.h"
#include "page_reader.h"
#include "base/utf8.h"

/*
** The column paths as a tree of keys below the hit object. While a hit is
** read, each node matched records where its value is (stamped with the hit's
** number); a column then takes the first of its candidate nodes stamped for
** this hit.
*/
/* A member key met at some position of an object, and the child it is. */
typedef struct seen_key {
    uint64_t head, tail;
    size_t klen;
    int child;             /* -1: no column below this key */
} seen_key;

/* Positions remembered per object: documents of one index list their keys in one order. */
#define SEEN_MAX 64

typedef struct node {
    char *key;
    size_t klen;
    uint64_t head, tail;   /* see key_words: a key of up to 16 bytes is matched by these alone */
    int parent, first_child, next_sibling;   /* -1: none */
    uint32_t stamp;
    pq_span value;
    seen_key *seen;        /* the keys of the last object read at this node, by position */
    size_t nseen;          /* valid entries of seen (SEEN_MAX allocated, or none) */
} node;

struct pq_page_reader {
    node *nodes;
    size_t nnodes, cap_nodes;
    int *table;            /* (parent, key) -> node, open addressing; -1 empty */
    size_t table_mask;
    int table_stale;       /* nodes were added since it was built */
    size_t ncols;
    int *cands;            /* per column, its candidate nodes, best first */
    size_t *cand_start;    /* ncols + 1 offsets into cands */
    size_t ncands;
    uint32_t stamp;
    json_decode_cfg cfg;
    strbuf key;            /* a key with escapes, resolved */
    strbuf text;           /* a string value with escapes, resolved */
    pq_span *rows;         /* hits x ncols value spans of the page read */
    size_t nhits, cap_hits;
    size_t *ahead;         /* ncols: the columns worth prefetching for, this page */
    pq_span pit_id, scroll_id, sort, hit_sort;
    int saw_hits;
};

/*
** Two words that, with the length, identify a key of up to 16 bytes: its
** first min(n, 8) bytes and its last min(n, 8) bytes, each as a
** little-endian number (zero-padded). Longer keys compare their middle too.
*/
static uint64_t le_word(const unsigned char *p, size_t n)
{
    uint64_t w = 0;
    while (n-- > 0)
        w = w << 8 | p[n];
    return w;
}

static void key_words(const char *key, size_t n, uint64_t *head, uint64_t *tail)
{
    const unsigned char *u = (const unsigned char *)key;
    *head = le_word(u, n < 8 ? n : 8);
    *tail = n <= 8 ? *head : le_word(u + n - 8, 8);
}

/*
** The same for a key inside the page, whose bytes up to end may be read:
** whole-word loads, masked, with no branch on the length when eight bytes
** can be read from the key's start.
*/
static void page_key_words(const char *key, size_t n, const unsigned char *end,
                           uint64_t *head, uint64_t *tail)
{
#if JSON_LITTLE_ENDIAN_WORDS
    if ((const unsigned char *)key + 8 <= end) {
        uint64_t w;
        size_t m = n < 8 ? n : 8;
        memcpy(&w, key, 8);
        *head = m == 0 ? 0 : w & (~(uint64_t)0 >> (64 - 8 * m));
        if (n <= 8) {
            *tail = *head;
        } else {
            memcpy(&w, key + n - 8, 8);
            *tail = w;
        }
        return;
    }
#endif
    (void)end;
    key_words(key, n, head, tail);
}

static int key_matches(const node *n, const char *k, size_t klen, uint64_t head, uint64_t tail)
{
    return n->klen == klen && n->head == head && n->tail == tail
           && (klen <= 16 || memcmp(n->key + 8, k + 8, klen - 16) == 0);
}

static int find_child(const pq_page_reader *r, int parent, const char *k, size_t klen)
{
    uint64_t head, tail;
    int i;
    key_words(k, klen, &head, &tail);
    for (i = r->nodes[parent].first_child; i >= 0; i = r->nodes[i].next_sibling)
        if (key_matches(&r->nodes[i], k, klen, head, tail))
            return i;
    return -1;
}

static size_t slot_of(int parent, size_t klen, uint64_t head, uint64_t tail)
{
    uint64_t x = head ^ (tail << 1) ^ ((uint64_t)klen << 48) ^ ((uint64_t)(unsigned)parent << 56);
    return (size_t)((x * 0x9E3779B97F4A7C15u) >> 40);   /* the well-mixed high bits */
}

/* The key lookup of the read, one probe instead of a walk over the siblings. */
static int build_table(pq_page_reader *r)
{
    size_t size = 16, i;
    int *t;
    while (size < r->nnodes * 4)
        size *= 2;
    t = malloc(size * sizeof *t);
    if (t == NULL)
        return -1;
    for (i = 0; i < size; i++)
        t[i] = -1;
    for (i = 1; i < r->nnodes; i++) {
        const node *n = &r->nodes[i];
        size_t j = slot_of(n->parent, n->klen, n->head, n->tail) & (size - 1);
        while (t[j] >= 0)
            j = (j + 1) & (size - 1);
        t[j] = (int)i;
    }
    free(r->table);
    for (i = 0; i < r->nnodes; i++)
        r->nodes[i].nseen = 0;   /* children were added: what was seen may be stale */
    r->table = t;
    r->table_mask = size - 1;
    r->table_stale = 0;
    return 0;
}

static int lookup_child(const pq_page_reader *r, int parent, const char *k, size_t klen,
                        uint64_t head, uint64_t tail)
{
    size_t j;
    int i;
    for (j = slot_of(parent, klen, head, tail) & r->table_mask; (i = r->table[j]) >= 0;
         j = (j + 1) & r->table_mask)
        if (r->nodes[i].parent == parent && key_matches(&r->nodes[i], k, klen, head, tail))
            return i;
    return -1;
}

/*
** The child of node at for the m-th member's key: what the last object read
** there had at position m when the key is the same (compared whole: keys up
** to 16 bytes), else a table lookup, remembered for the next object.
*/
static int child_at(pq_page_reader *r, int at, size_t m, const char *k, size_t klen,
                    const unsigned char *kend)
{
    node *n = &r->nodes[at];
    uint64_t head, tail;
    int child;

    page_key_words(k, klen, kend, &head, &tail);
    if (m < n->nseen) {
        const seen_key *e = &n->seen[m];
        if (e->klen == klen && e->head == head && e->tail == tail && klen <= 16)
            return e->child;
    }
    child = lookup_child(r, at, k, klen, head, tail);
    if (klen <= 16 && m < SEEN_MAX && m <= n->nseen) {
        /* best effort: without the memory the table lookup is all there is */
        if (n->seen == NULL)
            n->seen = malloc(SEEN_MAX * sizeof *n->seen);
        if (n->seen != NULL) {
            n->seen[m].head = head;
            n->seen[m].tail = tail;
            n->seen[m].klen = klen;
            n->seen[m].child = child;
            if (m == n->nseen)
                n->nseen++;
        }
    }
    return child;
}

static int add_node(pq_page_reader *r, int parent, const char *key, size_t klen)
{
    node *n;
    int i;
    if (parent >= 0 && (i = find_child(r, parent, key, klen)) >= 0)
        return i;
    if (r->nnodes == r->cap_nodes) {
        size_t cap = r->cap_nodes ? r->cap_nodes * 2 : 16;
        node *grown = realloc(r->nodes, cap * sizeof *grown);
        if (grown == NULL)
            return -1;
        r->nodes = grown;
        r->cap_nodes = cap;
    }
    n = &r->nodes[r->nnodes];
    memset(n, 0, sizeof *n);
    n->first_child = n->next_sibling = -1;
    n->parent = parent;
    n->seen = NULL;
    n->nseen = 0;
    r->table_stale = 1;
    n->key = malloc(klen + 1);
    if (n->key == NULL)
        return -1;
    memcpy(n->key, key, klen);
    n->key[klen] = '\0';
    n->klen = klen;
    key_words(key, klen, &n->head, &n->tail);
    i = (int)r->nnodes++;
    if (parent >= 0) {
        r->nodes[i].next_sibling = r->nodes[parent].first_child;
        r->nodes[parent].first_child = i;
    }
    return i;
}

pq_page_reader *pq_page_reader_new(size_t ncols)
{
    pq_page_reader *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->ncols = ncols;
    r->cand_start = calloc(ncols + 1, sizeof *r->cand_start);
    r->ahead = calloc(ncols + 1, sizeof *r->ahead);
    json_decode_cfg_default(&r->cfg);
    strbuf_init(&r->key);
    strbuf_init(&r->text);
    if (r->cand_start == NULL || r->ahead == NULL || add_node(r, -1, "", 0) != 0) {
        pq_page_reader_free(r);
        return NULL;
    }
    return r;
}

void pq_page_reader_free(pq_page_reader *r)
{
    size_t i;
    if (r == NULL)
        return;
    for (i = 0; i < r->nnodes; i++) {
        free(r->nodes[i].key);
        free(r->nodes[i].seen);
    }
    free(r->nodes);
    free(r->table);
    free(r->cands);
    free(r->cand_start);
    free(r->ahead);
    free(r->rows);
    strbuf_free(&r->key);
    strbuf_free(&r->text);
    free(r);
}

/*
** Candidates in the order write_rows tries them: the nested path first, then
** at each level from the deepest up, the rest of the path as one dotted key.
** Columns must be set in order 0, 1, 2 ...
*/
int pq_page_reader_set_path(pq_page_reader *r, size_t col, const char *const *segs,
                            const size_t *lens, int nsegs)
{
    int j, k, at, *grown;
    strbuf dotted;

    if (col != 0 && r->cand_start[col] == 0 && r->ncands != 0)
        return -1;
    grown = realloc(r->cands, (r->ncands + (size_t)nsegs) * sizeof *grown);
    if (grown == NULL)
        return -1;
    r->cands = grown;
    r->cand_start[col] = r->ncands;
    strbuf_init(&dotted);
    for (j = nsegs - 1; j >= 0; j--) {
        at = 0;
        for (k = 0; k < j; k++)
            if ((at = add_node(r, at, segs[k], lens[k])) < 0)
                goto nomem;
        dotted.len = 0;
        for (k = j; k < nsegs; k++) {
            if ((k > j && strbuf_putc(&dotted, '.') != 0) ||
                strbuf_append(&dotted, segs[k], lens[k]) != 0)
                goto nomem;
        }
        if ((at = add_node(r, at, dotted.len ? dotted.data : "", dotted.len)) < 0)
            goto nomem;
        r->cands[r->ncands++] = at;
    }
    r->cand_start[col + 1] = r->ncands;
    strbuf_free(&dotted);
    return 0;
nomem:
    strbuf_free(&dotted);
    return -1;
}

size_t pq_page_hits(const pq_page_reader *r) { return r->nhits; }
pq_span pq_page_pit_id(const pq_page_reader *r) { return r->pit_id; }
pq_span pq_page_scroll_id(const pq_page_reader *r) { return r->scroll_id; }
pq_span pq_page_last_sort(const pq_page_reader *r) { return r->sort; }

/* ---- reading ---- */

/*
** The key at d->p (a quote), see page_key; *kend is how far past the key's
** start bytes may be read (see page_key_words).
*/
static int read_key(pq_page_reader *r, json_decoder *d, const char **k, size_t *klen,
                    const unsigned char **kend)
{
    int in_page;
    if (page_key(d, &r->key, k, klen, &in_page) != 0)
        return -1;
    *kend = in_page ? d->end : (const unsigned char *)*k + *klen;
    return 0;
}

/* A key met twice in one object: the last value wins, so forget the first's. */
static void forget_below(pq_page_reader *r, int at)
{
    int i;
    for (i = r->nodes[at].first_child; i >= 0; i = r->nodes[i].next_sibling) {
        r->nodes[i].stamp = 0;
        forget_below(r, i);
    }
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/*
** Past what follows an array element (close ']'): 1 when another follows
** (d->p on it), 0 when the array ended, -1 when malformed. ',' and the close
** with no space before them are taken here (read_object has the same
** shortcut inline, its hot loop); anything else goes to json_dec_next,
** which gives the same result and the errors.
*/
static int next_item(json_decoder *d, unsigned char close)
{
    const unsigned char c = d->p < d->end ? *d->p : 0;
    if (c != ',' && c != close)
        return json_dec_next(d, close);   /* a space first, or malformed */
    d->p++;
    if (c == close) {
        d->depth--;
        return 0;
    }
    if (d->p < d->end && is_space(*d->p))
        json_dec_space(d);
    return 1;
}

static int read_object(pq_page_reader *r, json_decoder *d, int at);
static int skip_array(pq_page_reader *r, json_decoder *d);

/*
** The value at d->p (no space before it) checked and passed. A string of
** plain bytes (no escape, control or non-ASCII byte) is found here, one word
** at a time, and objects and arrays are walked with the same shortcuts (a
** struct or list column's value is checked here, then split by the
** shredder); anything else goes to the core's full rules.
*/
static int skip_value(pq_page_reader *r, json_decoder *d)
{
    const unsigned char *p = d->p;
    if (p < d->end && *p == '"') {
        p = json_skip_plain_wide(p + 1, d->end);
        if (p < d->end && *p == '"') {
            d->p = p + 1;
            return 0;
        }
    }
    if (d->p < d->end && *d->p == '{')
        return read_object(r, d, -1);
    if (d->p < d->end && *d->p == '[')
        return skip_array(r, d);
    return json_dec_skip(d);
}

/* The array at d->p (a '['), checked; the punctuation as in read_object. */
static int skip_array(pq_page_reader *r, json_decoder *d)
{
    if (json_dec_enter(d) != 0)
        return -1;
    if (json_dec_closes(d, ']'))
        return 0;
    for (;;) {
        if (skip_value(r, d) != 0)
            return -1;
        const int more = next_item(d, ']');
        if (more <= 0)
            return more;
    }
}

/*
** Members of the object at d->p (a '{') below tree node at; at == 0 is the
** hit, at == -1 an object outside the tree (only checked). The common
** punctuation (':' and ',' with no space around) is taken here; anything
** else goes to json_dec_colon / json_dec_next, which give the same result
** and the errors.
*/
static int read_object(pq_page_reader *r, json_decoder *d, int at)
{
    const char *k;
    size_t klen;
    const unsigned char *vs, *kend;
    int child, is_sort;
    size_t m = 0;

    if (json_dec_enter(d) != 0)
        return -1;
    if (json_dec_closes(d, '}'))
        return 0;
    for (;;) {
        if (d->p >= d->end || *d->p != '"')
            return json_dec_expected(d, "a string key");
        if (read_key(r, d, &k, &klen, &kend) != 0)
            return -1;
        child = at >= 0 && r->nodes[at].first_child >= 0 ? child_at(r, at, m++, k, klen, kend) : -1;
        is_sort = at == 0 && PAGE_KEY_IS(k, klen, "sort");
        if (d->p < d->end && *d->p == ':')
            d->p++;
        else if (json_dec_colon(d) != 0)
            return -1;
        if (d->p < d->end && is_space(*d->p))
            json_dec_space(d);
        vs = d->p;
        if (child >= 0 && r->nodes[child].stamp == r->stamp)
            forget_below(r, child);
        if (child >= 0 && r->nodes[child].first_child >= 0 && d->p < d->end && *d->p == '{') {
            if (read_object(r, d, child) != 0)
                return -1;
        } else if (skip_value(r, d) != 0) {
            return -1;
        }
        if (child >= 0) {
            r->nodes[child].stamp = r->stamp;
            r->nodes[child].value.start = vs;
            r->nodes[child].value.end = d->p;
        }
        if (is_sort) {
            r->hit_sort.start = vs;
            r->hit_sort.end = d->p;
        }
        if (d->p < d->end && *d->p == ',') {
            d->p++;
            if (d->p < d->end && is_space(*d->p))
                json_dec_space(d);
            continue;
        }
        if (d->p < d->end && *d->p == '}') {
            d->p++;
            d->depth--;
            return 0;
        }
        const int more = json_dec_next(d, '}');
        if (more <= 0)
            return more;
    }
}

static int read_hit(pq_page_reader *r, json_decoder *d)
{
    pq_span *row;
    size_t c, i;

    if (r->nhits == r->cap_hits) {
        size_t cap = r->cap_hits ? r->cap_hits * 2 : 64;
        pq_span *grown = realloc(r->rows, cap * (r->ncols ? r->ncols : 1) * sizeof *grown);
        if (grown == NULL) {
            snprintf(d->err, ESPIPE_JSON_ERRLEN, "out of memory reading a page");
            d->err_at = (size_t)(d->p - d->start);
            return -1;
        }
        r->rows = grown;
        r->cap_hits = cap;
    }
    if (++r->stamp == 0) {
        /* the hit counter wrapped: no old stamp may look current */
        for (i = 0; i < r->nnodes; i++)
            r->nodes[i].stamp = 0;
        r->stamp = 1;
    }
    r->hit_sort.start = r->hit_sort.end = NULL;
    if (read_object(r, d, 0) != 0)
        return -1;
    r->sort = r->hit_sort;
    row = r->rows + r->nhits * r->ncols;
    for (c = 0; c < r->ncols; c++) {
        row[c].start = row[c].end = NULL;
        for (i = r->cand_start[c]; i < r->cand_start[c + 1]; i++) {
            const node *n = &r->nodes[r->cands[i]];
            if (n->stamp == r->stamp) {
                row[c] = n->value;
                break;
            }
        }
    }
    r->nhits++;
    return 0;
}

static int each_hit(void *ctx, json_decoder *d)
{
    return read_hit((pq_page_reader *)ctx, d);
}

static int read_hit_array(pq_page_reader *r, json_decoder *d)
{
    r->nhits = 0;   /* a repeated "hits" member: the last one counts */
    r->sort.start = r->sort.end = NULL;
    r->saw_hits = 1;
    return envelope_each_hit(d, each_hit, r);
}

/* The envelope (search/page_envelope.h): hits.hits read into rows, pit_id and _scroll_id kept as spans. */
static int envelope_key(void *ctx, json_decoder *d, const char **k, size_t *klen)
{
    const unsigned char *kend;
    return read_key((pq_page_reader *)ctx, d, k, klen, &kend);
}

static int envelope_hits(void *ctx, json_decoder *d)
{
    return read_hit_array((pq_page_reader *)ctx, d);
}

static int envelope_value(void *ctx, json_decoder *d, enum envelope_level lv, const char *k, size_t klen)
{
    pq_page_reader *r = (pq_page_reader *)ctx;
    return envelope_skip_member(d, lv, k, klen, &r->pit_id, &r->scroll_id);
}

static const envelope_hooks span_page = { NULL, envelope_key, envelope_hits, envelope_value, NULL };

static void decoder_init(pq_page_reader *r, json_decoder *d, const unsigned char *start,
                         const unsigned char *p, const unsigned char *end, char *err)
{
    d->L = NULL;
    d->start = start;
    d->p = p;
    d->end = end;
    d->cfg = &r->cfg;
    d->err = err;
    d->err_at = 0;
    d->array_mt = 0;
    d->depth = 0;
}

int pq_page_read(pq_page_reader *r, const char *body, size_t len, char *err, size_t *err_at)
{
    json_decoder d;
    const unsigned char *s = (const unsigned char *)body;
    int rc;

    r->nhits = 0;
    r->saw_hits = 0;
    r->pit_id.start = r->pit_id.end = NULL;
    r->scroll_id.start = r->scroll_id.end = NULL;
    r->sort.start = r->sort.end = NULL;
    err[0] = '\0';
    if (r->table_stale && build_table(r) != 0) {
        snprintf(err, ESPIPE_JSON_ERRLEN, "out of memory reading a page");
        *err_at = 0;
        return -1;
    }
    decoder_init(r, &d, s, s, s + len, err);
    rc = envelope_walk(&d, &span_page, r);
    if (rc == 0 && !r->saw_hits) {
        snprintf(err, ESPIPE_JSON_ERRLEN, "search response without hits.hits");
        d.err_at = 0;
        rc = -1;
    }
    if (rc != 0) {
        r->nhits = 0;
        *err_at = d.err_at;
        return -1;
    }
    return 0;
}

/* ---- writing ---- */

static int put_span(pq_page_reader *r, pq_writer *w, pq_column *c, pq_span v, int unwrapped);

/* [] is no value, [x] is x, longer arrays are text in string columns (as write_rows). */
static int put_array(pq_page_reader *r, pq_writer *w, pq_column *c, pq_span v, int unwrapped)
{
    json_decoder d;
    char err[ESPIPE_JSON_ERRLEN];
    pq_span first;

    decoder_init(r, &d, v.start, v.start, v.end, err);
    if (json_dec_enter(&d) != 0)
        return pq_put_invalid(w, c);
    json_dec_space(&d);
    if (d.p < d.end && *d.p == ']')
        return pq_put_null(w, c);
    first.start = d.p;
    if (json_dec_skip(&d) != 0)
        return pq_put_invalid(w, c);
    first.end = d.p;
    json_dec_space(&d);
    if (d.p < d.end && *d.p == ']' && !unwrapped)
        return put_span(r, w, c, first, 1);
    if (c->kind == PQ_STRING)
        return pq_put_coerced_text(w, c, (const char *)v.start, (size_t)(v.end - v.start));
    return pq_put_invalid(w, c);
}

static int put_number(pq_page_reader *r, pq_writer *w, pq_column *c, pq_span v)
{
    json_decoder d;
    json_num n;
    char err[ESPIPE_JSON_ERRLEN];
    double x;

    if (c->kind == PQ_DECIMAL)   /* unsigned_long: the digits, exactly */
        return pq_put_decimal_text(w, c, (const char *)v.start, (size_t)(v.end - v.start));
    decoder_init(r, &d, v.start, v.start, v.end, err);
    if (json_dec_number(&d, &n) != 0)
        return pq_put_invalid(w, c);   /* beyond the double range */
    switch (n.kind) {
    case JSON_NUM_INTEGER:
        return pq_put_number_value(w, c, 1, n.i, 0);
    case JSON_NUM_DOUBLE:
        return pq_put_number_value(w, c, 0, 0, n.d);
    default:
        /* the decoder's default for big integers: the nearest double */
        if (json_strtod((const char *)n.start, (size_t)(n.end - n.start), &x) != 0) {
            snprintf(w->err, sizeof w->err, "out of memory");
            w->failed = 1;
            return -1;
        }
        if (x - x != 0)
            return pq_put_invalid(w, c);
        return pq_put_number_value(w, c, 0, 0, x);
    }
}

static int put_string(pq_page_reader *r, pq_writer *w, pq_column *c, pq_span v)
{
    const char *s = (const char *)v.start + 1;
    size_t n = (size_t)(v.end - v.start) - 2;
    json_decoder d;
    char err[ESPIPE_JSON_ERRLEN];

    if (memchr(s, '\\', n) != NULL) {
        decoder_init(r, &d, v.start, v.start, v.end, err);
        r->text.len = 0;
        if (json_dec_unescape(&d, &r->text) != 0) {
            snprintf(w->err, sizeof w->err, "%s", err);
            w->failed = 1;
            return -1;
        }
        s = r->text.len ? r->text.data : "";
        n = r->text.len;
        return pq_put_string_value(w, c, s, n);
    }
    /* without escapes these are the page's bytes, whose UTF-8 the read checked */
    return pq_put_utf8_value(w, c, s, n);
}

static int put_span(pq_page_reader *r, pq_writer *w, pq_column *c, pq_span v, int unwrapped)
{
    if (v.start == NULL || *v.start == 'n')
        return pq_put_null(w, c);
    if (c->kind == PQ_JSON)   /* the value's bytes as the server sent them */
        return pq_put_bytes(w, c, (const char *)v.start, (size_t)(v.end - v.start));
    switch (*v.start) {
    case '"':
        return put_string(r, w, c, v);
    case 't':
        return pq_put_bool_value(w, c, 1);
    case 'f':
        return pq_put_bool_value(w, c, 0);
    case '[':
        return put_array(r, w, c, v, unwrapped);
    case '{':
        return pq_put_invalid(w, c);
    default:
        return put_number(r, w, c, v);
    }
}

const pq_span *pq_page_row(const pq_page_reader *r, size_t i)
{
    return r->rows + i * r->ncols;
}

int pq_page_put_value(pq_page_reader *r, pq_writer *w, pq_column *c, pq_span v)
{
    return put_span(r, w, c, v, 0);
}

/* Rows ahead whose dictionary slots, then bytes, are fetched early. */
#define AHEAD_SLOT 8
#define AHEAD_BYTES 4

/* The prefetch hints for row i, in the columns of r->ahead (see pq_dict_prefetch_slot). */
static void prefetch_row(const pq_page_reader *r, const pq_writer *w, size_t nahead, size_t i, int bytes)
{
    const pq_span *row = r->rows + i * r->ncols;
    size_t k;
    for (k = 0; k < nahead; k++) {
        const pq_dict *dict = &w->cols[r->ahead[k]].dict;
        pq_span v = row[r->ahead[k]];
        if (v.start == NULL || *v.start != '"')
            continue;
        if (bytes)
            pq_dict_prefetch_bytes(dict, (const char *)v.start + 1, (size_t)(v.end - v.start) - 2);
        else
            pq_dict_prefetch_slot(dict, (const char *)v.start + 1, (size_t)(v.end - v.start) - 2);
    }
}

int pq_page_write(pq_page_reader *r, pq_writer *w)
{
    size_t i, c, nahead = 0;
    const pq_span *row = r->rows;

    if (w->failed)
        return -1;
    /* only dictionaries too large to stay cached; one growing past that mid-page waits a page */
    for (c = 0; c < w->ncols; c++)
        if (w->cols[c].kind == PQ_STRING && !w->cols[c].dict_full && pq_dict_worth_prefetching(&w->cols[c].dict))
            r->ahead[nahead++] = c;
    for (i = 0; i < r->nhits; i++, row += r->ncols) {
        if (nahead > 0 && i + AHEAD_SLOT < r->nhits)
            prefetch_row(r, w, nahead, i + AHEAD_SLOT, 0);
        if (nahead > 0 && i + AHEAD_BYTES < r->nhits)
            prefetch_row(r, w, nahead, i + AHEAD_BYTES, 1);
        for (c = 0; c < w->ncols; c++)
            if (put_span(r, w, &w->cols[c], row[c], 0) != 0)
                return -1;
        if (pq_writer_end_row(w) != 0)
            return -1;
    }
    return 0;
}
