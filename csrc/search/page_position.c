#include <stdio.h>
#include <string.h>

#include "base/borrowed.h"
#include "page_position.h"

int page_text(lua_State *L, int idx, const char *fn, const char **body, size_t *len)
{
    const lender *from;
    const char *why;

    *body = borrowed_bytes(L, idx, len, &from, &why);
    if (*body != NULL)
        return 0;
    if (why != NULL)
        return luaL_error(L, "%s", why);
    return luaL_error(L, "%s: body must be a string or a response body, got %s", fn,
                      luaL_typename(L, idx));
}

/* Pushes the value at span v (nil when absent), sort values with big integers as text. */
static int push_span(lua_State *L, page_span v, int sort, const char *body, char *err, size_t *err_at)
{
    json_decoder d;
    json_decode_cfg cfg;
    int rc;

    if (v.start == NULL) {
        lua_pushnil(L);
        return 0;
    }
    json_decode_cfg_default(&cfg);
    if (sort)
        cfg.big = JSON_BIG_STRING;   /* search_after must resume at the very hit */
    luaL_newmetatable(L, ESPIPE_JSON_ARRAY_MT);
    d.L = L;
    d.start = (const unsigned char *)body;
    d.p = v.start;
    d.end = v.end;
    d.cfg = &cfg;
    d.err = err;
    d.err_at = 0;
    d.array_mt = lua_gettop(L);
    d.depth = 0;
    rc = json_dec_value(&d);
    if (rc != 0) {
        lua_pop(L, 1);
        *err_at = d.err_at;
        return -1;
    }
    lua_remove(L, d.array_mt);
    return 0;
}

int page_position_push(lua_State *L, const page_position *pos, const char *body)
{
    char err[ESPIPE_JSON_ERRLEN];
    size_t at = 0;

    luaL_checkstack(L, 8, "page position");
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, (lua_Integer)pos->hits);
    lua_setfield(L, -2, "hits");
    if (push_span(L, pos->pit_id, 0, body, err, &at) != 0)
        goto bad;
    lua_setfield(L, -2, "pit_id");
    if (push_span(L, pos->scroll_id, 0, body, err, &at) != 0)
        goto bad;
    lua_setfield(L, -2, "scroll_id");
    if (push_span(L, pos->last_sort, 1, body, err, &at) != 0)
        goto bad;
    lua_setfield(L, -2, "search_after");
    return 1;
bad:
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_pushstring(L, err);
    lua_pushinteger(L, (lua_Integer)at + 1);
    return 3;
}

/* ---- reading a page for its position alone ---- */

typedef struct position_reader {
    page_position pos;
    strbuf key;         /* a key with escapes, resolved */
    int saw_hits;
} position_reader;

static int position_key(void *ctx, json_decoder *d, const char **k, size_t *klen)
{
    int in_page;
    return page_key(d, &((position_reader *)ctx)->key, k, klen, &in_page);
}

/* Of a hit, only its own "sort" member is kept (the last one, as decode would). */
static void position_member(void *ctx, const char *k, size_t klen, page_span v)
{
    if (PAGE_KEY_IS(k, klen, "sort"))
        ((position_reader *)ctx)->pos.last_sort = v;
}

static int position_hit(position_reader *r, json_decoder *d)
{
    r->pos.last_sort.start = r->pos.last_sort.end = NULL;
    return envelope_hit_members(d, &r->key, position_member, r);
}

static int each_hit(void *ctx, json_decoder *d)
{
    position_reader *r = (position_reader *)ctx;
    if (position_hit(r, d) != 0)
        return -1;
    r->pos.hits++;
    return 0;
}

static int position_hits(void *ctx, json_decoder *d)
{
    position_reader *r = (position_reader *)ctx;

    r->pos.hits = 0;   /* a repeated "hits" member: the last one counts */
    r->pos.last_sort.start = r->pos.last_sort.end = NULL;
    r->saw_hits = 1;
    return envelope_each_hit(d, each_hit, r);
}

static int position_value(void *ctx, json_decoder *d, enum envelope_level lv, const char *k, size_t klen)
{
    position_reader *r = (position_reader *)ctx;
    return envelope_skip_member(d, lv, k, klen, &r->pos.pit_id, &r->pos.scroll_id);
}

static const envelope_hooks position_page = { NULL, position_key, position_hits, position_value, NULL };

/* The read, without Lua: 0, or -1 with err and *err_at set. */
static int read_position(position_reader *r, const char *body, size_t len, char *err, size_t *err_at)
{
    json_decoder d;
    json_decode_cfg cfg;
    const unsigned char *s = (const unsigned char *)body;

    memset(&d, 0, sizeof d);
    json_decode_cfg_default(&cfg);
    d.start = d.p = s;
    d.end = s + len;
    d.cfg = &cfg;
    d.err = err;
    err[0] = '\0';
    if (envelope_walk(&d, &position_page, r) != 0) {
        *err_at = d.err_at;
        return -1;
    }
    if (!r->saw_hits) {
        snprintf(err, ESPIPE_JSON_ERRLEN, "search response without hits.hits");
        *err_at = 0;
        return -1;
    }
    return 0;
}

static int l_page_position(lua_State *L)
{
    position_reader r;
    char err[ESPIPE_JSON_ERRLEN];
    const char *body;
    size_t len, at = 0;
    int rc;

    page_text(L, 1, "page_position", &body, &len);
    memset(&r, 0, sizeof r);
    strbuf_init(&r.key);
    rc = read_position(&r, body, len, err, &at);
    strbuf_free(&r.key);   /* before anything below may raise */
    if (rc != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        lua_pushinteger(L, (lua_Integer)at + 1);
        return 3;
    }
    return page_position_push(L, &r.pos, body);
}

void espipe_open_page_position(lua_State *L)
{
    lua_pushcfunction(L, l_page_position);
    lua_setfield(L, -2, "page_position");
}
