/*
** One pass over a search (or scroll) response page, decoded as espipe.json
** would decode it, with two differences on the path hits.hits[*]:
**   _source  with raw_source, the exact bytes of the value as the server
**            sent them, checked against the JSON grammar but never decoded,
**            for pipelines that pass documents through unchanged;
**   sort     integers too big to hold exactly come back as their decimal
**            text rather than a rounded float, so search_after resumes at
**            the very hit (Elasticsearch reads numeric sort values from
**            strings too).
** Everything else (pit_id, _scroll_id, hits.total, _id, _routing ...) is
** decoded normally, so a caller finds it where the decoded page has it.
**
**   core.search_response(body [, raw_source]) -> page | nil, message, offset
*/
#include <string.h>

#include "core.h"
#include "json/json.h"
#include "json/reader.h"
#include "page_envelope.h"

/*
** The keys of a page's hits and of their _source objects: the same few in
** every hit, so each is made a Lua string once per page and pushed from
** the anchor table after that (a lookup instead of an interning).
*/
#define KEY_SLOTS 64
#define KEY_MAX 32

typedef struct key_slot {
    unsigned char len;      /* 0: empty */
    char text[KEY_MAX];
} key_slot;

typedef struct reader {
    json_decoder d;
    json_decode_cfg sort_cfg;
    int raw_source;
    int source_fields;  /* members of the last decoded _source object */
    int anchor;         /* stack index of the table holding slot i's string at [i + 1] */
    key_slot keys[KEY_SLOTS];
} reader;

/* The member key at d->p (a quote), pushed; a plain short key from the page's cache. */
static int read_key(reader *r)
{
    json_decoder *d = &r->d;
    const unsigned char *q = d->p, *p = json_skip_plain_wide(q + 1, d->end);
    size_t len = (size_t)(p - q - 1), i;
    key_slot *k;
    unsigned slot;

    if (p >= d->end || *p != '"' || len == 0 || len > KEY_MAX)
        return json_dec_string(d);
    slot = (unsigned)len;
    for (i = 1; i <= len; i++)
        slot = slot * 33u + q[i];
    slot %= KEY_SLOTS;
    k = &r->keys[slot];
    d->p = p + 1;
    if (k->len == len && memcmp(k->text, q + 1, len) == 0) {
        lua_rawgeti(d->L, r->anchor, (lua_Integer)slot + 1);
        return 0;
    }
    lua_pushlstring(d->L, (const char *)q + 1, len);
    lua_pushvalue(d->L, -1);
    lua_rawseti(d->L, r->anchor, (lua_Integer)slot + 1);
    k->len = (unsigned char)len;
    memcpy(k->text, q + 1, len);
    return 0;
}

static int read_object(reader *r, int nrec, int (*member)(reader *r), int *count);

/* The key just pushed is `name`? */
static int key_equals(lua_State *L, const char *name, size_t n)
{
    size_t len;
    const char *k = lua_tolstring(L, -1, &len);
    return len == n && memcmp(k, name, n) == 0;
}

#define KEY_IS(L, lit) key_equals((L), (lit), sizeof(lit) - 1)

static int plain_member(reader *r)
{
    return json_dec_value(&r->d);
}

/*
** A decoded _source: its table sized for the members of the one before
** (the documents of a page mostly share their shape) and one more, for the
** field a transform adds, so neither the decode nor that field resizes it.
*/
static int read_source(reader *r)
{
    return read_object(r, r->source_fields + 1, plain_member, &r->source_fields);
}

/* The value of the hit member whose key is on top of the stack, pushed. */
static int read_hit_member(reader *r)
{
    json_decoder *d = &r->d;
    lua_State *L = d->L;
    const unsigned char *start;
    const json_decode_cfg *saved;
    int rc;

    json_dec_space(d);
    if (d->p >= d->end)
        return json_dec_expected(d, "a value");
    if (KEY_IS(L, "_source")) {
        if (!r->raw_source)
            return *d->p == '{' ? read_source(r) : json_dec_value(d);
        start = d->p;
        if (json_dec_skip(d) != 0)
            return -1;
        lua_pushlstring(L, (const char *)start, (size_t)(d->p - start));
        return 0;
    }
    if (KEY_IS(L, "sort")) {
        saved = d->cfg;
        d->cfg = &r->sort_cfg;
        rc = json_dec_value(d);
        d->cfg = saved;
        return rc;
    }
    return json_dec_value(d);
}

/*
** json/decoder.c's parse_object with the member's value read by member and
** the table made for nrec members; *count: how many it had.
*/
static int read_object(reader *r, int nrec, int (*member)(reader *r), int *count)
{
    json_decoder *d = &r->d;
    lua_State *L = d->L;
    int n = 0;

    if (json_dec_enter(d) != 0)
        return -1;
    lua_createtable(L, 0, nrec);
    *count = 0;
    if (json_dec_closes(d, '}'))
        return 0;
    for (;;) {
        if (d->p >= d->end || *d->p != '"')
            return json_dec_expected(d, "a string key");
        if (read_key(r) != 0)
            return -1;
        if (json_dec_colon(d) != 0)
            return -1;
        if (member(r) != 0)
            return -1;
        lua_rawset(L, -3);
        *count = ++n;
        const int more = json_dec_next(d, '}');
        if (more <= 0)
            return more;
    }
}

/* A hit: an object whose members read_hit_member reads. */
static int read_hit(reader *r)
{
    int count;
    return read_object(r, 8, read_hit_member, &count);
}

/* hits.hits: an array whose objects are hits. */
static int read_hits(void *ctx, json_decoder *d)
{
    reader *r = (reader *)ctx;
    lua_State *L = d->L;
    lua_Integer i = 0;
    int rc;

    if (json_dec_enter(d) != 0)
        return -1;
    lua_createtable(L, 16, 0);
    lua_pushvalue(L, d->array_mt);
    lua_setmetatable(L, -2);
    if (json_dec_closes(d, ']'))
        return 0;
    for (;;) {
        json_dec_space(d);
        if (d->p < d->end && *d->p == '{')
            rc = read_hit(r);
        else
            rc = json_dec_value(d);
        if (rc != 0)
            return -1;
        lua_rawseti(L, -2, ++i);
        const int more = json_dec_next(d, ']');
        if (more <= 0)
            return more;
    }
}

/* The envelope's objects and members become Lua tables and values, as decode makes them. */
static int open_table(void *ctx, enum envelope_level lv)
{
    (void)lv;
    lua_createtable(((reader *)ctx)->d.L, 0, 4);
    return 0;
}

static int push_key(void *ctx, json_decoder *d, const char **k, size_t *klen)
{
    (void)ctx;
    if (json_dec_string(d) != 0)
        return -1;
    *k = lua_tolstring(d->L, -1, klen);
    return 0;
}

static int push_value(void *ctx, json_decoder *d, enum envelope_level lv, const char *k, size_t klen)
{
    (void)ctx;
    (void)lv;
    (void)k;
    (void)klen;
    return json_dec_value(d);
}

static void set_member(void *ctx)
{
    lua_rawset(((reader *)ctx)->d.L, -3);
}

static const envelope_hooks lua_page = { open_table, push_key, read_hits, push_value, set_member };

/* search_response(body [, raw_source]) -> page | nil, message, offset (1-based). */
static int l_search_response(lua_State *L)
{
    reader r;
    json_decode_cfg cfg;
    char err[ESPIPE_JSON_ERRLEN];
    const char *text;
    size_t len;
    int top;

    if (lua_type(L, 1) != LUA_TSTRING)
        return luaL_error(L, "search_response: body must be a string, got %s",
                          luaL_typename(L, 1));
    if (lua_type(L, 2) != LUA_TNONE && lua_type(L, 2) != LUA_TNIL &&
        lua_type(L, 2) != LUA_TBOOLEAN)
        return luaL_error(L, "search_response: raw_source must be a boolean, got %s",
                          luaL_typename(L, 2));
    text = lua_tolstring(L, 1, &len);
    lua_settop(L, 2);
    json_decode_cfg_default(&cfg);
    r.sort_cfg = cfg;
    r.sort_cfg.big = JSON_BIG_STRING;
    r.raw_source = lua_toboolean(L, 2);
    r.source_fields = 0;
    memset(r.keys, 0, sizeof r.keys);
    luaL_checkstack(L, 8, "search_response");
    lua_createtable(L, KEY_SLOTS, 0);
    r.anchor = lua_gettop(L);
    lua_getfield(L, LUA_REGISTRYINDEX, ESPIPE_JSON_ARRAY_MT);
    top = lua_gettop(L);
    r.d.L = L;
    r.d.start = r.d.p = (const unsigned char *)text;
    r.d.end = r.d.start + len;
    r.d.cfg = &cfg;
    r.d.err = err;
    r.d.err_at = 0;
    r.d.array_mt = top;
    r.d.depth = 0;
    err[0] = '\0';

    if (envelope_walk(&r.d, &lua_page, &r) == 0)
        return 1;
    lua_settop(L, top);
    lua_pushnil(L);
    lua_pushstring(L, err);
    lua_pushinteger(L, (lua_Integer)r.d.err_at + 1);
    return 3;
}

void espipe_open_search_response(lua_State *L)
{
    lua_pushcfunction(L, l_search_response);
    lua_setfield(L, -2, "search_response");
}
