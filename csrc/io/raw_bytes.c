/*
** Bytes that may not be text: where input stops being UTF-8, and base64 so a
** rejected input line can be kept exactly in a JSON dead-letter record.
**
**   core.utf8_invalid(s)  -> nil (valid UTF-8) | 1-based position of the first bad byte
**   core.base64_encode(s) -> standard base64 (RFC 4648, with padding)
*/
#include <stdint.h>

#include "base/compat.h"
#include "core.h"
#include "base/utf8.h"

static int l_utf8_invalid(lua_State *L)
{
    size_t n, i = 0, bad;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);

    while (i < n) {
        size_t len;

        if (s[i] < 0x80) {
            i++;
            continue;
        }
        len = utf8_sequence(s + i, n - i, &bad);
        if (len == 0) {
            lua_pushinteger(L, (lua_Integer)(i + 1));
            return 1;
        }
        i += len;
    }
    lua_pushnil(L);
    return 1;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int l_base64_encode(lua_State *L)
{
    size_t n, i, o = 0;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
    char *out;

    if (n > (SIZE_MAX / 4) * 3 - 2)
        return luaL_error(L, "base64_encode: input too large");
    /* scratch memory owned by the Lua GC: nothing leaks if pushlstring raises */
    out = espipe_newuserdata(L, (n + 2) / 3 * 4 + 1);
    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = ((uint32_t)s[i] << 16) | ((uint32_t)s[i + 1] << 8) | s[i + 2];
        out[o++] = B64[(v >> 18) & 63];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = B64[(v >> 6) & 63];
        out[o++] = B64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)s[i + 1] << 8;
        out[o++] = B64[(v >> 18) & 63];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = i + 1 < n ? B64[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    lua_pushlstring(L, out, o);
    return 1;
}

void espipe_open_raw_bytes(lua_State *L)
{
    static const luaL_Reg fns[] = {
        { "utf8_invalid", l_utf8_invalid },
        { "base64_encode", l_base64_encode },
        { NULL, NULL }
    };
    espipe_setfuncs(L, fns, 0);
}
