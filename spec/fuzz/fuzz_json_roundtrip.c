/*
** libFuzzer target for decode -> encode -> decode: whatever decodes must
** encode, and the text must decode to the same value (integer vs float,
** the sign of zero, array vs object, every key).
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/compat.h"
#include "json/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;

static int same_value(lua_State *Ls, int a, int b);

static int same_table(lua_State *Ls, int a, int b)
{
    int ma, mb, same = 1;
    size_t na = 0, nb = 0;

    ma = lua_getmetatable(Ls, a);
    mb = lua_getmetatable(Ls, b);
    if (ma != mb || (ma && !lua_rawequal(Ls, -1, -2)))
        same = 0;
    lua_pop(Ls, ma + mb);
    if (!same)
        return 0;
    if (!lua_checkstack(Ls, 4))
        abort();
    lua_pushnil(Ls);
    while (lua_next(Ls, a)) {
        na++;
        lua_pushvalue(Ls, -2);
        lua_rawget(Ls, b);
        if (!same_value(Ls, lua_gettop(Ls) - 1, lua_gettop(Ls))) {
            lua_pop(Ls, 3);
            return 0;
        }
        lua_pop(Ls, 2);
    }
    lua_pushnil(Ls);
    while (lua_next(Ls, b)) {
        nb++;
        lua_pop(Ls, 1);
    }
    return na == nb;
}

static int same_value(lua_State *Ls, int a, int b)
{
    int t = lua_type(Ls, a);

    if (t != lua_type(Ls, b))
        return 0;
    switch (t) {
    case LUA_TNUMBER: {
        lua_Number x = lua_tonumber(Ls, a), y = lua_tonumber(Ls, b);
        if (espipe_isinteger(Ls, a) != espipe_isinteger(Ls, b))
            return 0;
        if (espipe_isinteger(Ls, a))
            return lua_tointeger(Ls, a) == lua_tointeger(Ls, b);
        return memcmp(&x, &y, sizeof x) == 0;
    }
    case LUA_TTABLE:
        return same_table(Ls, a, b);
    default:
        return lua_rawequal(Ls, a, b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_decode_cfg dcfg;
    json_encode_cfg ecfg;
    char err[ESPIPE_JSON_ERRLEN];
    size_t offset;
    strbuf out;
    int top;

    if (L == NULL) {
        L = luaL_newstate();
        if (L == NULL)
            abort();
        lua_newtable(L);
        espipe_open_json(L);
        lua_pop(L, 1);
    }
    json_decode_cfg_default(&dcfg);
    json_encode_cfg_default(&ecfg);
    top = lua_gettop(L);
    if (json_decode_push(L, (const char *)data, size, &dcfg, err, &offset) != 0)
        return 0;
    strbuf_init(&out);
    if (json_encode_value(L, -1, &out, &ecfg, err) != 0) {
        fprintf(stderr, "decoded but cannot encode: %s\n", err);
        abort();
    }
    if (json_decode_push(L, out.data, out.len, &dcfg, err, &offset) != 0) {
        fprintf(stderr, "re-decode failed: %s at %zu of %.*s\n", err, offset,
                (int)out.len, out.data);
        abort();
    }
    if (!same_value(L, top + 1, top + 2)) {
        fprintf(stderr, "round trip changed the value: %.*s\n", (int)out.len, out.data);
        abort();
    }
    strbuf_free(&out);
    lua_settop(L, top);
    lua_gc(L, LUA_GCSTEP, 0);
    return 0;
}
