/*
** espipe.core: the leaf functions of the C core (JSON, bulk bodies, routing,
** bulk-response scanning). None of them blocks or calls back into Lua, so the
** same module serves standalone Lua and nginx workers.
*/
#include "base/compat.h"
#include "bulk/lines.h"
#include "core.h"
#include "search/page_position.h"

ESPIPE_EXPORT int luaopen_espipe_core(lua_State *L)
{
    lua_newtable(L);
    espipe_open_json(L);
    espipe_open_bulk(L);
    espipe_open_bulk_lines(L);
    espipe_open_routing(L);
    espipe_open_bulk_response(L);
    espipe_open_search_response(L);
    espipe_open_page_position(L);
    espipe_open_stream_codec(L);
    espipe_open_signals(L);
    espipe_open_raw_bytes(L);
    espipe_open_private_file(L);
    espipe_open_process(L);
    lua_pushliteral(L, "0.1.0");
    lua_setfield(L, -2, "version");
    return 1;
}
