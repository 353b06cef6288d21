/*
** Lua bindings of the JSON codec, registered into espipe.core as
** json_encode, json_decode, json_null and json_array_mt; lua/espipe/json.lua
** is the public face.
*/
#include <string.h>

#include "json.h"
#include "reader.h"

/* The scratch buffer is reused across calls; past this it is given back. */
#define SCRATCH_KEEP (1024 * 1024)
#define SCRATCH_MT "espipe.json.scratch"

/* encode's state: its output buffer, and the key cache of the encoder context. */
typedef struct scratch {
    strbuf buf;
    json_key_cache *keys;
} scratch;

static int scratch_gc(lua_State *L)
{
    scratch *s = (scratch *)lua_touserdata(L, 1);
    strbuf_free(&s->buf);
    return 0;
}

static void scratch_release(strbuf *b)
{
    if (b->cap > SCRATCH_KEEP)
        strbuf_free(b);
    else
        b->len = 0;
}

/* Raise msg located at the given call level (the caller of the public function). */
static int raise_at(lua_State *L, int level, const char *msg)
{
    luaL_where(L, level);
    lua_pushstring(L, msg);
    lua_concat(L, 2);
    return lua_error(L);
}

static int check_option_name(lua_State *L, int opts, const char *const *known, int level)
{
    lua_pushnil(L);
    while (lua_next(L, opts)) {
        int i, found = 0;
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *k = lua_tostring(L, -1);
            for (i = 0; known[i] != NULL; i++)
                if (strcmp(k, known[i]) == 0)
                    found = 1;
        }
        if (!found) {
            lua_pushfstring(L, "espipe.json: unknown option '%s'",
                            lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                          : luaL_typename(L, -1));
            return raise_at(L, level, lua_tostring(L, -1));
        }
    }
    return 0;
}

static int opt_depth(lua_State *L, int opts, int level)
{
    lua_Number d;
    int depth = ESPIPE_JSON_DEFAULT_DEPTH;

    lua_getfield(L, opts, "depth");
    if (lua_type(L, -1) != LUA_TNIL) {
        d = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || d != d || d < 1 || d > JSON_DEPTH_CEILING ||
            (lua_Number)(int)d != d) {
            lua_pushfstring(L, "espipe.json: option 'depth' must be an integer in 1..%d",
                            JSON_DEPTH_CEILING);
            return raise_at(L, level, lua_tostring(L, -1));
        }
        depth = (int)d;
    }
    lua_pop(L, 1);
    return depth;
}

/* Index of the option's value among choices (default 0). */
static int opt_choice(lua_State *L, int opts, const char *name,
                      const char *const *choices, int level)
{
    int i;

    lua_getfield(L, opts, name);
    if (lua_type(L, -1) == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (lua_type(L, -1) == LUA_TSTRING)
        for (i = 0; choices[i] != NULL; i++)
            if (strcmp(lua_tostring(L, -1), choices[i]) == 0) {
                lua_pop(L, 1);
                return i;
            }
    lua_pushfstring(L, "espipe.json: option '%s' must be one of", name);
    for (i = 0; choices[i] != NULL; i++)
        lua_pushfstring(L, "%s '%s'", i ? "," : "", choices[i]);
    lua_concat(L, i + 1);
    return raise_at(L, level, lua_tostring(L, -1));
}

static const char *const utf8_choices[] = { "error", "replace", NULL };
static const char *const big_choices[] = { "float", "string", "error", NULL };

/* Options table at index 2, if any. Raises at `level` on a bad one. */
static int check_opts_arg(lua_State *L, int level)
{
    int t = lua_type(L, 2);
    if (t == LUA_TNONE || t == LUA_TNIL)
        return 0;
    if (t != LUA_TTABLE) {
        lua_pushfstring(L, "espipe.json: options must be a table, got %s", lua_typename(L, t));
        return raise_at(L, level, lua_tostring(L, -1));
    }
    return 1;
}

static int l_encode(lua_State *L)
{
    static const char *const known[] = { "depth", "utf8", NULL };
    scratch *sc = (scratch *)lua_touserdata(L, lua_upvalueindex(1));
    strbuf *b = &sc->buf;
    json_encode_cfg cfg;
    char err[ESPIPE_JSON_ERRLEN];

    cfg.max_depth = ESPIPE_JSON_DEFAULT_DEPTH;
    cfg.utf8 = JSON_UTF8_ERROR;
    if (lua_gettop(L) != 1) {
        if (lua_gettop(L) == 0)
            return raise_at(L, 2, "espipe.json: encode expects a value");
        if (check_opts_arg(L, 2)) {
            check_option_name(L, 2, known, 2);
            cfg.max_depth = opt_depth(L, 2, 2);
            cfg.utf8 = opt_choice(L, 2, "utf8", utf8_choices, 2) ? JSON_UTF8_REPLACE
                                                                 : JSON_UTF8_ERROR;
        }
        lua_settop(L, 1);
    }
    b->len = 0;
    if (json_encode_with(L, 1, sc->keys, b, &cfg, err) != 0) {
        scratch_release(b);
        return raise_at(L, 2, err);
    }
    /* The buffer belongs to a userdata, so a memory error here cannot leak it. */
    lua_pushlstring(L, b->data ? b->data : "", b->len);
    scratch_release(b);
    return 1;
}

/* json_decode(text [, opts]) -> value | nil, message, offset (1-based byte). */
static int l_decode(lua_State *L)
{
    static const char *const known[] = { "depth", "utf8", "big", NULL };
    static const enum json_big_mode big_modes[] = { JSON_BIG_FLOAT, JSON_BIG_STRING, JSON_BIG_ERROR };
    json_decode_cfg cfg;
    char err[ESPIPE_JSON_ERRLEN];
    const char *text;
    size_t len, offset;

    json_decode_cfg_default(&cfg);
    if (lua_type(L, 1) != LUA_TSTRING) {
        lua_pushfstring(L, "espipe.json: decode expects a string, got %s", luaL_typename(L, 1));
        return raise_at(L, 3, lua_tostring(L, -1));
    }
    if (check_opts_arg(L, 3)) {
        check_option_name(L, 2, known, 3);
        cfg.max_depth = opt_depth(L, 2, 3);
        cfg.utf8 = opt_choice(L, 2, "utf8", utf8_choices, 3) ? JSON_UTF8_REPLACE : JSON_UTF8_ERROR;
        cfg.big = big_modes[opt_choice(L, 2, "big", big_choices, 3)];
    }
    text = lua_tolstring(L, 1, &len);
    lua_settop(L, 2);
    if (json_decode_push(L, text, len, &cfg, err, &offset) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        lua_pushinteger(L, (lua_Integer)offset + 1);
        return 3;
    }
    return 1;
}

void espipe_open_json(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        { "json_encode", l_encode },
        { "json_decode", l_decode },
        { NULL, NULL },
    };
    scratch *sc;

    sc = (scratch *)espipe_newuserdata(L, sizeof *sc);
    strbuf_init(&sc->buf);
    sc->keys = NULL;
    if (luaL_newmetatable(L, SCRATCH_MT)) {
        lua_pushcfunction(L, scratch_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    sc->keys = json_context(L);
    espipe_setfuncs(L, funcs, 1);

    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "json_null");
    luaL_newmetatable(L, ESPIPE_JSON_ARRAY_MT);
    lua_setfield(L, -2, "json_array_mt");
}
