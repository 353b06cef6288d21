/*
** Elasticsearch shard routing: which shard a document with a given _id /
** routing lands on. Leaf functions only (no allocation beyond Lua values),
** so they are safe in nginx workers.
*/
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core.h"
#include "base/luanum.h"
#include "murmur3.h"
#include "routing.h"

/* A routing value as text: strings as they are, integers in decimal. */
typedef struct route_text {
    const char *s;
    size_t len;
    char digits[24];
} route_text;

/* 1 when the value at idx is a usable routing value, 0 when it is nil. Raises otherwise. */
static int get_route_text(lua_State *L, int idx, route_text *t, const char *what)
{
    int64_t n;

    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return 0;
    case LUA_TSTRING:
        t->s = lua_tolstring(L, idx, &t->len);
        return 1;
    case LUA_TNUMBER:
        if (espipe_exact_integer(L, idx, &n)) {
            t->len = (size_t)snprintf(t->digits, sizeof t->digits, "%" PRId64, n);
            t->s = t->digits;
            return 1;
        }
        return luaL_error(L, "%s must be a string or an integer, got a non-integer number", what);
    default:
        return luaL_error(L, "%s must be a string or an integer, got %s", what, luaL_typename(L, idx));
    }
}

static int32_t floor_mod(int32_t a, int32_t m)
{
    int32_t r = a % m;
    return (r != 0 && (r < 0) != (m < 0)) ? r + m : r;
}

/* Java int addition: wraps modulo 2^32. */
static int32_t wrap_add(int32_t a, int32_t b)
{
    uint32_t u = (uint32_t)a + (uint32_t)b;
    return (u <= INT32_MAX) ? (int32_t)u : -(int32_t)(UINT32_MAX - u) - 1;
}

static int32_t shard_of_hash(const route_params *p, int32_t h)
{
    if (p->func == ROUTE_MODULO)
        return floor_mod(h, p->shards);
    return floor_mod(h, p->routing_shards) / p->routing_factor;
}

/* MetadataCreateIndexService.calculateNumRoutingShards for indices from 7.0 on. */
static int64_t default_routing_shards(int64_t n)
{
    int log2n = 0, splits;

    while (((int64_t)1 << log2n) < n)
        log2n++;
    splits = 10 - log2n;
    if (splits < 1)
        splits = 1;
    return n << splits;
}

static int64_t opt_int_field(lua_State *L, int t, const char *key, int64_t dflt,
                             int64_t min, int64_t max)
{
    int64_t v;

    lua_getfield(L, t, key);
    if (lua_type(L, -1) == LUA_TNIL) {
        lua_pop(L, 1);
        return dflt;
    }
    if (lua_type(L, -1) != LUA_TNUMBER || !espipe_exact_integer(L, -1, &v))
        return luaL_error(L, "%s must be an integer, got %s", key,
                          lua_type(L, -1) == LUA_TNUMBER ? "a non-integer number" : luaL_typename(L, -1));
    if (v < min || v > max)
        return luaL_error(L, "%s must be between %d and %d, got %f", key, (int)min, (int)max,
                          (lua_Number)v);
    lua_pop(L, 1);
    return v;
}

int espipe_route_params(lua_State *L, int t, route_params *p)
{
    int64_t es_major, rs;
    const char *fn;

    luaL_checktype(L, t, LUA_TTABLE);
    p->shards = (int32_t)opt_int_field(L, t, "shards", 0, 1, INT32_MAX);
    if (p->shards == 0)
        return luaL_error(L, "shards is required");
    es_major = opt_int_field(L, t, "es_major", 7, 0, 1000);
    p->partition_size = (int32_t)opt_int_field(L, t, "partition_size", 1, 1, INT32_MAX);

    lua_getfield(L, t, "func");
    switch (lua_type(L, -1)) {
    case LUA_TNIL: fn = "legacy"; break;
    case LUA_TSTRING: fn = lua_tostring(L, -1); break;
    default:
        return luaL_error(L, "func must be \"legacy\" or \"modulo\", got %s", luaL_typename(L, -1));
        return 0;
    }
    if (strcmp(fn, "legacy") == 0)
        p->func = ROUTE_LEGACY;
    else if (strcmp(fn, "modulo") == 0)
        p->func = ROUTE_MODULO;
    else
        return luaL_error(L, "func must be \"legacy\" or \"modulo\", got \"%s\"", fn);
    lua_pop(L, 1);

    if (p->func == ROUTE_MODULO) {
        /* Modulo indices ignore number_of_routing_shards; accept it so callers can pass settings as read. */
        rs = opt_int_field(L, t, "routing_shards", p->shards, 1, INT32_MAX);
        p->routing_shards = p->shards;
    } else {
        rs = opt_int_field(L, t, "routing_shards",
                           es_major >= 7 ? default_routing_shards(p->shards) : p->shards, 1, INT32_MAX);
        if (rs > INT32_MAX)
            return luaL_error(L, "the default routing_shards of %d shards overflows; pass routing_shards", (int)p->shards);
        p->routing_shards = (int32_t)rs;
    }
    if (rs < p->shards || rs % p->shards != 0)
        return luaL_error(L, "routing_shards (%d) must be a multiple of shards (%d)", (int)rs, (int)p->shards);
    p->routing_factor = p->routing_shards / p->shards;
    if (p->partition_size > 1 && p->partition_size >= p->routing_shards)
        return luaL_error(L, "partition_size (%d) must be less than the number of routing shards (%d)",
                          (int)p->partition_size, (int)p->routing_shards);
    return 0;
}

int espipe_route_shard(const route_params *p, const char *id, size_t id_len,
                       const char *routing, size_t routing_len, int32_t *shard, size_t *bad)
{
    int32_t h = 0, hid;

    if (p->partition_size > 1 ? (id == NULL || routing == NULL) : (id == NULL && routing == NULL))
        return ROUTE_MISSING;
    if (routing != NULL && es_routing_hash(routing, routing_len, &h, bad) != 0)
        return ROUTE_BAD_ROUTING;
    if (id != NULL && (p->partition_size > 1 || routing == NULL)) {
        if (es_routing_hash(id, id_len, &hid, bad) != 0)
            return ROUTE_BAD_ID;
        h = p->partition_size > 1 ? wrap_add(h, floor_mod(hid, p->partition_size)) : hid;
    }
    *shard = shard_of_hash(p, h);
    return ROUTE_OK;
}

/* The shard of one document; id_idx/routing_idx are stack slots (may hold nil). */
static int32_t route_one(lua_State *L, const route_params *p, int id_idx, int routing_idx,
                         const char *id_what, const char *routing_what)
{
    route_text id, routing;
    int has_id = get_route_text(L, id_idx, &id, id_what);
    int has_routing = get_route_text(L, routing_idx, &routing, routing_what);
    int32_t shard = 0;
    size_t bad = 0;

    switch (espipe_route_shard(p, has_id ? id.s : NULL, has_id ? id.len : 0,
                               has_routing ? routing.s : NULL, has_routing ? routing.len : 0, &shard, &bad)) {
    case ROUTE_MISSING:
        if (p->partition_size > 1)
            return luaL_error(L, "a partitioned index (partition_size %d) needs both %s and %s",
                              (int)p->partition_size, id_what, routing_what);
        return luaL_error(L, "%s or %s is required", id_what, routing_what);
    case ROUTE_BAD_ID:
        return luaL_error(L, "%s is not valid UTF-8 (byte offset %d)", id_what, (int)bad);
    case ROUTE_BAD_ROUTING:
        return luaL_error(L, "%s is not valid UTF-8 (byte offset %d)", routing_what, (int)bad);
    default:
        return shard;
    }
}

/* routing_hash(s) -> signed 32-bit hash */
static int l_hash(lua_State *L)
{
    route_text t;
    int32_t h;
    size_t bad;

    if (!get_route_text(L, 1, &t, "bad argument #1 to 'hash': the routing value"))
        return luaL_argerror(L, 1, "string or integer expected, got nil");
    if (es_routing_hash(t.s, t.len, &h, &bad) != 0)
        return luaL_error(L, "the routing value is not valid UTF-8 (byte offset %d)", (int)bad);
    lua_pushinteger(L, h);
    return 1;
}

/* routing_shard{ id=, routing=, shards=, ... } -> shard number */
static int l_shard(lua_State *L)
{
    route_params p;

    espipe_route_params(L, 1, &p);
    lua_getfield(L, 1, "id");
    lua_getfield(L, 1, "routing");
    lua_pushinteger(L, route_one(L, &p, -2, -1, "id", "routing"));
    return 1;
}

/* routing_shards_of(ids, params [, routings]) -> { shard, ... } in one call for a whole batch */
static int l_shards_of(lua_State *L)
{
    route_params p;
    size_t n, i;
    int has_routings;
    char id_what[48], routing_what[48];

    luaL_checktype(L, 1, LUA_TTABLE);
    espipe_route_params(L, 2, &p);
    has_routings = !lua_isnoneornil(L, 3);
    if (has_routings)
        luaL_checktype(L, 3, LUA_TTABLE);
    n = espipe_rawlen(L, 1);
    lua_settop(L, 3);
    lua_createtable(L, n > INT32_MAX ? 0 : (int)n, 0);
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, (int)i);
        if (has_routings)
            lua_rawgeti(L, 3, (int)i);
        else
            lua_pushnil(L);
        snprintf(id_what, sizeof id_what, "ids[%lu]", (unsigned long)i);
        snprintf(routing_what, sizeof routing_what, "routings[%lu]", (unsigned long)i);
        lua_pushinteger(L, route_one(L, &p, -2, -1, id_what, routing_what));
        lua_rawseti(L, 4, (int)i);
        lua_pop(L, 2);
    }
    return 1;
}

/* default_routing_shards(n [, es_major]) */
static int l_default_routing_shards(lua_State *L)
{
    int64_t n, major = 7;

    if (lua_type(L, 1) != LUA_TNUMBER || !espipe_exact_integer(L, 1, &n) || n < 1 || n > 1048576)
        return luaL_argerror(L, 1, "number of shards must be an integer from 1 to 1048576");
    if (!lua_isnoneornil(L, 2)
        && (lua_type(L, 2) != LUA_TNUMBER || !espipe_exact_integer(L, 2, &major) || major < 0))
        return luaL_argerror(L, 2, "es_major must be a non-negative integer");
    lua_pushinteger(L, (lua_Integer)(major >= 7 ? default_routing_shards(n) : n));
    return 1;
}

/* The same shape as every espipe_open_*: a table of this concern's functions (core.c). */
void espipe_open_routing(lua_State *L)
{
    static const luaL_Reg fns[] = {
        { "routing_hash", l_hash }, { "routing_shard", l_shard },
        { "routing_shards_of", l_shards_of },
        { "default_routing_shards", l_default_routing_shards },
        { NULL, NULL }
    };
    espipe_setfuncs(L, fns, 0);
}
