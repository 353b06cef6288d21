/* Registration hooks of espipe.core: each adds its functions to the module table on top of the stack. */
#ifndef ESPIPE_CORE_H
#define ESPIPE_CORE_H

#include "base/compat.h"

ESPIPE_EXPORT int luaopen_espipe_core(lua_State *L);

void espipe_open_json(lua_State *L);
void espipe_open_bulk(lua_State *L);
void espipe_open_routing(lua_State *L);
void espipe_open_bulk_response(lua_State *L);
void espipe_open_search_response(lua_State *L);
void espipe_open_stream_codec(lua_State *L);
void espipe_open_signals(lua_State *L);
void espipe_open_raw_bytes(lua_State *L);
void espipe_open_private_file(lua_State *L);
void espipe_open_process(lua_State *L);

#endif
