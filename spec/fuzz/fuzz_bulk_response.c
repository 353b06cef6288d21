/*
** libFuzzer target for the bulk-response scanner: any input must either be
** rejected with a message and an in-range offset, or yield counts that add
** up (ok + failed == count, one failure record per failed item).
** Build: clang -fsanitize=fuzzer,address,undefined -Icsrc -I/usr/include/lua5.4 \
**        spec/fuzz/fuzz_bulk_response.c csrc/bulk/bulk_response.c, the .c files of
**        csrc/base and csrc/json, -llua5.4
*/
#include <stdint.h>
#include <stdlib.h>

#include "base/compat.h"
#include "core.h"

static lua_State *L;

static lua_Integer field_int(lua_State *Ls, int idx, const char *name)
{
    lua_Integer v;
    lua_getfield(Ls, idx, name);
    v = lua_tointeger(Ls, -1);
    lua_pop(Ls, 1);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!L) {
        L = luaL_newstate();
        if (!L)
            abort();
        lua_newtable(L);
        espipe_open_bulk_response(L);
        lua_getfield(L, -1, "bulk_response");
        lua_setglobal(L, "bulk_response");
        lua_pop(L, 1);
    }
    lua_getglobal(L, "bulk_response");
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 3, 0) != 0)
        abort(); /* a string argument must never raise */
    if (lua_isnil(L, -3)) {
        lua_Integer off = lua_tointeger(L, -1);
        if (lua_type(L, -2) != LUA_TSTRING || off < 0 || (size_t)off > size)
            abort();
    } else {
        lua_Integer count = field_int(L, -3, "count");
        lua_Integer ok = field_int(L, -3, "ok");
        lua_Integer failed = field_int(L, -3, "failed");
        lua_Integer kinds = field_int(L, -3, "created") + field_int(L, -3, "updated")
            + field_int(L, -3, "deleted") + field_int(L, -3, "noop")
            + field_int(L, -3, "not_found");
        lua_getfield(L, -3, "failures");
        if (ok + failed != count || kinds != ok || (lua_Integer)espipe_rawlen(L, -1) != failed)
            abort();
        lua_pop(L, 1);
    }
    lua_settop(L, 0);
    return 0;
}
