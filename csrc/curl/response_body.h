/*
** A response body handed to Lua without a copy: the bytes curl wrote into
** the transfer's buffer, moved into a small userdata that owns them. Asked
** for per request (m:add's body_buffer), for consumers that read bodies in C
** (the Parquet writer's write_page) and would otherwise pay for a Lua string
** as large as the page: a copy, and fresh memory to fault in on every page.
**
**   #body, tostring(body) (a copy, as a string), body:release() (frees the
**   bytes now; reading a released body raises). __gc frees them too, but the
**   collector does not see their size: holders release when done.
*/
#ifndef ESPIPE_RESPONSE_BODY_H
#define ESPIPE_RESPONSE_BODY_H

#include <stddef.h>

#include <lua.h>
#include <lauxlib.h>

#define ESPIPE_RESPONSE_BODY_MT "espipe.response_body"

typedef struct response_body {
    char *data;         /* malloc'd, NULL when empty or released */
    size_t len;
    int released;
} response_body;

/*
** The bytes of the value at idx when it is a string or a response body
** (raising for a released one); NULL for anything else. Modules that read
** bodies use this; the metatable is only registered once curl_multi is
** loaded, and no body exists before that.
*/
static inline const char *response_body_bytes(lua_State *L, int idx, size_t *len)
{
    response_body *b;
    int is_body;

    if (lua_type(L, idx) == LUA_TSTRING)
        return lua_tolstring(L, idx, len);
    if (lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx))
        return NULL;
    luaL_getmetatable(L, ESPIPE_RESPONSE_BODY_MT);
    is_body = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (!is_body)
        return NULL;
    b = (response_body *)lua_touserdata(L, idx);
    if (b->released)
        luaL_error(L, "the response body was released");
    *len = b->len;
    return b->data != NULL ? b->data : "";
}

#endif
