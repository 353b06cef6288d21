/*
** libFuzzer target for the search response reader. For any input:
**  - reading with decoded sources succeeds only if reading with raw sources
**    does, and a raw failure is the decoder's failure (same message, same
**    offset) unless the decoder stopped first at a number beyond the double
**    range, which only it checks;
**  - every raw _source is a value with no surrounding whitespace that the
**    JSON decoder reads (it only may reject a number beyond the double range,
**    which the span check lets through);
**  - the Lua stack is as it was afterwards.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/compat.h"
#include "core.h"
#include "json/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;
static int fn_ref;

/* Call search_response(body, raw): 1 with the page pushed, or 0 with message and offset pushed. */
static int read_page(const uint8_t *data, size_t size, int raw)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, fn_ref);
    lua_pushlstring(L, (const char *)data, size);
    lua_pushboolean(L, raw);
    if (lua_pcall(L, 2, 3, 0) != 0)
        abort();
    if (lua_type(L, -3) == LUA_TNIL) {
        lua_remove(L, -3);
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TNUMBER)
            abort();
        if (lua_tonumber(L, -1) < 1 || lua_tonumber(L, -1) > (lua_Number)size + 1)
            abort();
        return 0;
    }
    if (lua_type(L, -3) != LUA_TTABLE)
        abort();
    lua_pop(L, 2);
    return 1;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Every hits.hits[i]._source of the page on top is a clean, decodable value. */
static void check_raw_sources(void)
{
    json_decode_cfg cfg;
    char err[ESPIPE_JSON_ERRLEN];
    size_t offset, len, i, n;
    const char *s;

    json_decode_cfg_default(&cfg);
    lua_getfield(L, -1, "hits");
    if (lua_type(L, -1) == LUA_TTABLE) {
        lua_getfield(L, -1, "hits");
        if (lua_type(L, -1) == LUA_TTABLE) {
            n = espipe_rawlen(L, -1);
            for (i = 1; i <= n; i++) {
                lua_rawgeti(L, -1, (lua_Integer)i);
                if (lua_type(L, -1) == LUA_TTABLE) {
                    lua_getfield(L, -1, "_source");
                    if (lua_type(L, -1) != LUA_TNIL) {
                        if (lua_type(L, -1) != LUA_TSTRING)
                            abort();
                        s = lua_tolstring(L, -1, &len);
                        if (len == 0 || is_space(s[0]) || is_space(s[len - 1]))
                            abort();
                        if (json_decode_push(L, s, len, &cfg, err, &offset) == 0)
                            lua_pop(L, 1);
                        else if (strcmp(err, "number out of range") != 0)
                            abort();
                    }
                    lua_pop(L, 1);
                }
                lua_pop(L, 1);
            }
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int top, raw_ok, decoded_ok;

    if (L == NULL) {
        L = luaL_newstate();
        if (L == NULL)
            abort();
        lua_newtable(L);
        espipe_open_json(L);
        espipe_open_search_response(L);
        lua_getfield(L, -1, "search_response");
        fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        lua_pop(L, 1);
    }
    top = lua_gettop(L);
    raw_ok = read_page(data, size, 1);
    if (raw_ok)
        check_raw_sources();
    decoded_ok = read_page(data, size, 0);
    if (decoded_ok && !raw_ok)
        abort();
    if (!raw_ok) {
        /* stack: raw message, raw offset, decoded message, decoded offset */
        if (decoded_ok)
            abort();
        if (strcmp(lua_tostring(L, -2), "number out of range") != 0 &&
            (!lua_rawequal(L, -4, -2) || !lua_rawequal(L, -3, -1)))
            abort();
    }
    lua_settop(L, top);
    lua_gc(L, LUA_GCSTEP, 0);
    return 0;
}
