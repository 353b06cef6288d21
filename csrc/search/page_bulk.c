/*
** espipe.core search_bulk_append: the hits of a raw search page appended to a
** bulk buffer as index (or create) actions, each with the hit's _id, its
** _routing and its _source bytes as the server sent them, without a Lua
** value per hit: reindex's passthrough.
**
**   core.search_bulk_append(buf, max_docs, max_bytes, body, at, index, op)
**     -> next_at, pos, docs_added, stop
** (buf and the limits first: the bulk indexer's fill() passes them.)
**
** at nil: the whole page is read (checked as page_position checks it) and pos
** is its position, the table page_position returns; at = a next_at of an
** earlier call on the same page: the hits from there (pos false). Hits are
** appended until the buffer holds max_docs items or max_bytes bytes, then
** only walked. stop:
**   "end"   every hit from at was appended (next_at nil);
**   "full"  the buffer is full: next_at is the first hit not appended;
**   "hit"   the hit at next_at is one the builder would write differently or
**           refuse (an _id or _routing that is not a plain printable ASCII
**           string, a _source that is not a one-line object, ...): it and
**           the hits after it are left to the caller's decoded path, which
**           is always right, only slower;
**   "bad"   the page is not a search response: pos is the message (with its
**           byte offset), nothing of the page was appended.
** What it writes is byte for byte what bulk:index(source, { _index = index,
** _id = hit._id, routing = hit._routing }) writes for the decoded hit.
*/
#include <stdio.h>
#include <string.h>

#include "bulk/bulk.h"
#include "core.h"
#include "page_position.h"

enum { STOP_END, STOP_FULL, STOP_HIT, STOP_BAD };
static const char *const stop_names[] = { "end", "full", "hit", "bad" };

/* The members of one hit that make its action and source. */
typedef struct hit_spans {
    page_span id, routing, source;
} hit_spans;

typedef struct page_bulk {
    bulk_buffer *b;
    double max_docs, max_bytes;
    const char *index;
    size_t index_len;
    int op;                 /* BULK_INDEX or BULK_CREATE */
    int index_plain;        /* the index name is copied as it is */
    int appending;          /* 0 once the buffer is full or a hit was left to Lua */
    int stop;
    const unsigned char *next;  /* the first hit not appended */
    strbuf key;             /* a key with escapes, resolved */
    page_position pos;
    int saw_hits;
    int oom;                /* the buffer could not grow */
    hit_spans hit;          /* the hit being read */
} page_bulk;

/* A JSON string the builder copies as it is: quoted, non-empty, printable ASCII, no escape. */
static int plain_string(page_span v)
{
    const unsigned char *p;

    if (v.start == NULL || v.end - v.start < 3 || *v.start != '"')
        return 0;
    for (p = v.start + 1; p < v.end - 1; p++)
        if (*p < 0x20 || *p >= 0x7f || *p == '\\')
            return 0;
    return 1;
}

static int plain_bytes(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '"' || s[i] == '\\')
            return 0;
    return n > 0;
}

/* What the builder would write as it is (else the hit is left to Lua). */
static int usual_hit(const page_bulk *r, const hit_spans *h)
{
    size_t n;

    if (!r->index_plain || !plain_string(h->id))
        return 0;
    if (h->routing.start != NULL && !plain_string(h->routing))
        return 0;
    if (h->source.start == NULL || *h->source.start != '{')
        return 0;
    n = (size_t)(h->source.end - h->source.start);
    return memchr(h->source.start, '\n', n) == NULL && memchr(h->source.start, '\r', n) == NULL;
}

static void put_span(strbuf *out, page_span v)
{
    strbuf_append_unsafe(out, v.start, (size_t)(v.end - v.start));
}

/* One hit's two lines; -1 out of memory with the buffer as it was. */
static int append_hit(page_bulk *r, const hit_spans *h)
{
    bulk_buffer *b = r->b;
    strbuf *out = &b->buf;
    size_t start = out->len, src_start;
    size_t need = r->index_len + (size_t)(h->id.end - h->id.start) + (size_t)(h->source.end - h->source.start) + 64;
    bulk_item *it;

    if (h->routing.start != NULL)
        need += (size_t)(h->routing.end - h->routing.start);
    if (bulk_reserve_item(b) != 0 || strbuf_reserve(out, need) != 0)
        return -1;
    if (r->op == BULK_CREATE)
        strbuf_append_unsafe(out, "{\"create\":{\"_index\":\"", 21);
    else
        strbuf_append_unsafe(out, "{\"index\":{\"_index\":\"", 20);
    strbuf_append_unsafe(out, r->index, r->index_len);
    strbuf_append_unsafe(out, "\",\"_id\":", 8);
    put_span(out, h->id);
    if (h->routing.start != NULL) {
        strbuf_append_unsafe(out, ",\"routing\":", 11);
        put_span(out, h->routing);
    }
    strbuf_append_unsafe(out, "}}\n", 3);
    src_start = out->len;
    put_span(out, h->source);
    strbuf_putc_unsafe(out, '\n');
    it = &b->items[b->count++];
    it->offset = start;
    it->action_len = src_start - start;
    it->source_len = out->len - src_start;
    it->op = r->op;
    it->auto_id = 0;
    return 0;
}

/* A member of the hit being read: its spans, and the last sort values for the position. */
static void bulk_member(void *ctx, const char *k, size_t klen, page_span v)
{
    page_bulk *r = (page_bulk *)ctx;

    /* (a repeated member: the last one counts, as in a decoded hit) */
    if (PAGE_KEY_IS(k, klen, "_id"))
        r->hit.id = v;
    else if (PAGE_KEY_IS(k, klen, "_routing"))
        r->hit.routing = v;
    else if (PAGE_KEY_IS(k, klen, "_source"))
        r->hit.source = v;
    else if (PAGE_KEY_IS(k, klen, "sort"))
        r->pos.last_sort = v;
}

/* Reads the hit at d->p ('{') into r->hit. */
static int read_hit(page_bulk *r, json_decoder *d)
{
    memset(&r->hit, 0, sizeof r->hit);
    r->pos.last_sort.start = r->pos.last_sort.end = NULL;
    return envelope_hit_members(d, &r->key, bulk_member, r);
}

/* A hit read: appended while the batch has room and the hit is usual. */
static int take_hit(page_bulk *r, const unsigned char *at, const hit_spans *h)
{
    if (!r->appending)
        return 0;
    if (!usual_hit(r, h)) {
        r->appending = 0;
        r->stop = STOP_HIT;
        r->next = at;
        return 0;
    }
    if (append_hit(r, h) != 0)
        return -1;
    if ((double)r->b->count >= r->max_docs || (double)r->b->buf.len >= r->max_bytes) {
        r->appending = 0;
        r->stop = STOP_FULL;
    }
    return 0;
}

/*
** Hits from d->p (a hit's '{') to the end of the array; -1 with d->err set,
** or with r->oom when the buffer could not grow.
*/
static int walk_hits(page_bulk *r, json_decoder *d)
{
    for (;;) {
        const unsigned char *at;
        int was_full = r->stop == STOP_FULL;

        json_dec_space(d);
        if (d->p >= d->end || *d->p != '{')
            return json_dec_expected(d, "a hit (an object)");
        at = d->p;
        if (read_hit(r, d) != 0)
            return -1;
        r->pos.hits++;
        if (take_hit(r, at, &r->hit) != 0) {
            r->oom = 1;
            return -1;
        }
        const int more = json_dec_next(d, ']');
        if (r->stop == STOP_FULL && !was_full) {
            /* full at the last hit: all of them went in */
            if (more == 1)
                r->next = d->p;
            else
                r->stop = STOP_END;
        }
        if (more <= 0)
            return more;
    }
}

static int envelope_hits(void *ctx, json_decoder *d)
{
    page_bulk *r = (page_bulk *)ctx;

    r->pos.hits = 0;   /* a repeated "hits" member: the last one counts */
    r->pos.last_sort.start = r->pos.last_sort.end = NULL;
    r->saw_hits = 1;
    if (json_dec_enter(d) != 0)
        return -1;
    if (json_dec_closes(d, ']'))
        return 0;
    return walk_hits(r, d);
}

static int envelope_key(void *ctx, json_decoder *d, const char **k, size_t *klen)
{
    int in_page;
    return page_key(d, &((page_bulk *)ctx)->key, k, klen, &in_page);
}

static int envelope_value(void *ctx, json_decoder *d, enum envelope_level lv, const char *k, size_t klen)
{
    page_bulk *r = (page_bulk *)ctx;
    return envelope_skip_member(d, lv, k, klen, &r->pos.pit_id, &r->pos.scroll_id);
}

static const envelope_hooks bulk_page = { NULL, envelope_key, envelope_hits, envelope_value, NULL };

static void decoder_on(json_decoder *d, json_decode_cfg *cfg, char *err, const char *body, size_t len,
                       size_t from)
{
    memset(d, 0, sizeof *d);
    json_decode_cfg_default(cfg);
    d->start = (const unsigned char *)body;
    d->p = d->start + from;
    d->end = d->start + len;
    d->cfg = cfg;
    d->err = err;
    err[0] = '\0';
}

/* The whole page; STOP_BAD with err set when it is not a page of hits. */
static int read_page(page_bulk *r, const char *body, size_t len, char *err, size_t *err_at)
{
    json_decoder d;
    json_decode_cfg cfg;
    int rc;

    decoder_on(&d, &cfg, err, body, len, 0);
    rc = envelope_walk(&d, &bulk_page, r);
    if (rc != 0 && r->oom)
        return -2;
    if (rc != 0) {
        *err_at = d.err_at;
        return STOP_BAD;
    }
    if (!r->saw_hits) {
        snprintf(err, ESPIPE_JSON_ERRLEN, "search response without hits.hits");
        *err_at = 0;
        return STOP_BAD;
    }
    return 0;
}

/* The hits from byte at of a page read whole before (so it is known to be valid). */
static int read_rest(page_bulk *r, const char *body, size_t len, size_t at, char *err)
{
    json_decoder d;
    json_decode_cfg cfg;

    decoder_on(&d, &cfg, err, body, len, at);
    d.depth = 3;   /* the top object, hits, hits.hits */
    return walk_hits(r, &d) != 0 && r->oom ? -2 : 0;
}

static int check_args(lua_State *L, page_bulk *r, size_t len, size_t *at)
{
    const char *op;

    r->b = bulk_check(L, 1);
    r->max_docs = luaL_checknumber(L, 2);
    r->max_bytes = luaL_checknumber(L, 3);
    if (!(r->max_docs >= 1) || !(r->max_bytes >= 1))
        return luaL_error(L, "search_bulk_append: max_docs and max_bytes must be positive");
    if (!lua_isnoneornil(L, 5)) {
        lua_Integer pos = luaL_checkinteger(L, 5);
        if (pos < 1 || (size_t)(pos - 1) > len)
            return luaL_error(L, "search_bulk_append: at %d is outside the page", (int)pos);
        *at = (size_t)(pos - 1);
    }
    r->index = luaL_checklstring(L, 6, &r->index_len);
    op = luaL_optstring(L, 7, "index");
    if (strcmp(op, "index") != 0 && strcmp(op, "create") != 0)
        return luaL_error(L, "search_bulk_append: op must be index or create");
    r->op = op[0] == 'c' ? BULK_CREATE : BULK_INDEX;
    r->index_plain = plain_bytes(r->index, r->index_len);
    if (r->b->pins > 0)
        return luaL_error(L, "bulk buffer is in flight (pinned by a transport); it cannot change until the request completes");
    return 0;
}

static int l_search_bulk_append(lua_State *L)
{
    page_bulk r;
    char err[ESPIPE_JSON_ERRLEN];
    const char *body;
    size_t len, at = 0, err_at = 0, len0, count0;
    int first, rc;

    page_text(L, 4, "search_bulk_append", &body, &len);
    memset(&r, 0, sizeof r);
    first = lua_isnoneornil(L, 5);
    check_args(L, &r, len, &at);
    r.appending = 1;
    r.stop = STOP_END;
    len0 = r.b->buf.len;
    count0 = r.b->count;
    strbuf_init(&r.key);
    rc = first ? read_page(&r, body, len, err, &err_at) : read_rest(&r, body, len, at, err);
    strbuf_free(&r.key);   /* before anything below may raise */
    if (rc != 0) {
        r.b->buf.len = len0;   /* nothing of a page that cannot be read whole */
        r.b->count = count0;
        if (rc == -2)
            return luaL_error(L, "search_bulk_append: out of memory");
        lua_pushnil(L);
        lua_pushfstring(L, "%s (at byte %d)", err, (int)err_at + 1);
        lua_pushinteger(L, 0);
        lua_pushstring(L, stop_names[STOP_BAD]);
        return 4;
    }
    if (r.stop == STOP_END)
        lua_pushnil(L);
    else
        lua_pushinteger(L, (lua_Integer)(r.next - (const unsigned char *)body) + 1);
    if (first) {
        if (page_position_push(L, &r.pos, body) != 1)
            return luaL_error(L, "search_bulk_append: %s", lua_tostring(L, -2));
    } else {
        lua_pushboolean(L, 0);
    }
    lua_pushinteger(L, (lua_Integer)(r.b->count - count0));
    lua_pushstring(L, stop_names[r.stop]);
    return 4;
}

void espipe_open_search_bulk(lua_State *L)
{
    lua_pushcfunction(L, l_search_bulk_append);
    lua_setfield(L, -2, "search_bulk_append");
}
