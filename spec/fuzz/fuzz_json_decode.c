/*
** libFuzzer target for the JSON decoder: any input either decodes to exactly
** one pushed value or fails with a message, an in-range offset and the Lua
** stack as it was.
*/
#include <stdint.h>
#include <stdlib.h>

#include "base/compat.h"
#include "json/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_decode_cfg cfg;
    char err[ESPIPE_JSON_ERRLEN];
    size_t offset = 0;
    int top;

    if (L == NULL) {
        L = luaL_newstate();
        if (L == NULL)
            abort();
        lua_newtable(L);
        espipe_open_json(L);
        lua_pop(L, 1);
    }
    json_decode_cfg_default(&cfg);
    /* Exercise both modes: the first byte picks. */
    if (size > 0 && (data[0] & 1))
        cfg.utf8 = JSON_UTF8_REPLACE;
    if (size > 0 && (data[0] & 2))
        cfg.big = JSON_BIG_STRING;
    top = lua_gettop(L);
    if (json_decode_push(L, (const char *)data, size, &cfg, err, &offset) == 0) {
        if (lua_gettop(L) != top + 1)
            abort();
    } else if (lua_gettop(L) != top || offset > size || err[0] == '\0') {
        abort();
    }
    lua_settop(L, top);
    lua_gc(L, LUA_GCSTEP, 0);
    return 0;
}
