/*
** The floor of any encoder built on Lua's public C API: walk(doc) visits a
** document the way an encoder must (one lua_getmetatable per table, lua_next
** over it, lua_type on every key and value, lua_tolstring on string keys
** and values, lua_isinteger/lua_tointeger or lua_tonumber on numbers) and
** writes nothing; walk_push(doc) also pushes a string as long as the JSON
** text would be (the result any encoder returns). Built and used by
** bench/json/floor.sh; not part of espipe.
*/
#include <lauxlib.h>
#include <lua.h>

typedef struct sink {
    size_t bytes;
    double nums;
} sink;

static void walk(lua_State *L, int idx, sink *s)
{
    if (lua_getmetatable(L, idx))
        lua_pop(L, 1);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        size_t n;
        int vt;
        if (lua_type(L, -2) == LUA_TSTRING) {
            lua_tolstring(L, -2, &n);
            s->bytes += n;
        }
        vt = lua_type(L, -1);
        if (vt == LUA_TSTRING) {
            lua_tolstring(L, -1, &n);
            s->bytes += n;
        } else if (vt == LUA_TTABLE) {
            walk(L, lua_gettop(L), s);
        } else if (vt == LUA_TNUMBER) {
#if LUA_VERSION_NUM >= 503
            if (lua_isinteger(L, -1))
                s->nums += (double)lua_tointeger(L, -1);
            else
#endif
                s->nums += lua_tonumber(L, -1);
        }
        lua_pop(L, 1);
    }
}

static int l_walk(lua_State *L)
{
    sink s = { 0, 0 };
    luaL_checktype(L, 1, LUA_TTABLE);
    walk(L, 1, &s);
    lua_pushinteger(L, (lua_Integer)s.bytes);
    return 1;
}

/* The walk, then a string of the JSON text's length (arg 2) like encode's result. */
static int l_walk_push(lua_State *L)
{
    static char text[65536];
    sink s = { 0, 0 };
    size_t len = (size_t)luaL_checkinteger(L, 2);
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_argcheck(L, len <= sizeof text, 2, "too long");
    walk(L, 1, &s);
    text[0] = (char)s.bytes;
    lua_pushlstring(L, text, len);
    return 1;
}

int luaopen_walk_floor(lua_State *L);
int luaopen_walk_floor(lua_State *L)
{
    lua_newtable(L);
    lua_pushcfunction(L, l_walk);
    lua_setfield(L, -2, "walk");
    lua_pushcfunction(L, l_walk_push);
    lua_setfield(L, -2, "walk_push");
    return 1;
}
