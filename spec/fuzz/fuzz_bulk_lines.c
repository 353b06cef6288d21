/*
** libFuzzer target for load's C line path (csrc/bulk_lines.c): the input's
** first byte picks a configuration, the rest is a chunk of NDJSON. The chunk
** is fed the way load feeds it (a line left to Lua is skipped past its
** newline, a full batch is reset) and every item C appends must be exactly
** what the Lua path builds for that line (json.decode, the index pattern's
** Lua formatter and the bulk builder's put), with the lines and bytes
** consumed adding up. Runs from the checkout (the Lua modules under lua/).
** Build: see spec/support/run_check.sh (every C file of csrc, -llua5.4).
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lualib.h>

#include "base/compat.h"
#include "core.h"

static const char oracle[] =
    "package.path = 'lua/?.lua;lua/?/init.lua;' .. package.path\n"
    "local core = require 'espipe.core'\n"
    "local json = require 'espipe.json'\n"
    "local bulk = require 'espipe.bulk'\n"
    "local index_pattern = require 'espipe.pipeline.index_pattern'\n"
    "local configs = { { index = 'i' }, { index = 'i', strict = true }, { index = 'i', id_field = 'id' },\n"
    "  { id_field = 'id', index_pattern = 'l-{t:%Y.%m.%d}-{a.b:%H%%}' }, { index_pattern = '{t:%Y}', op = 'create' },\n"
    "  { index = 'r', routing_field = 't' } }\n"
    "for _, cfg in ipairs(configs) do\n"
    "  local pieces\n"
    "  if cfg.index_pattern then cfg.name_of, _, pieces = index_pattern.compile(cfg.index_pattern) end\n"
    "  cfg.c = core.bulk_lines_new { op = cfg.op, index = cfg.index, id_field = cfg.id_field, pattern = pieces,\n"
    "                                routing_field = cfg.routing_field,\n"
    "                                check = cfg.strict and 'json' or 'object', max_line = 200 }\n"
    "end\n"
    "local function lua_path(line, cfg)\n"
    "  if not (line:find('^[ \\t]*{') and line:find('}[ \\t]*$')) or line:find('\\r') then return nil end\n"
    "  local meta = { _index = cfg.index }\n"
    "  if cfg.id_field or cfg.routing_field or cfg.name_of or cfg.strict then\n"
    "    local doc = json.decode(line)\n"
    "    if type(doc) ~= 'table' or json.is_array(doc) then return nil end\n"
    "    if cfg.name_of then meta._index = cfg.name_of(doc) if not meta._index then return nil end end\n"
    "    if cfg.id_field then\n"
    "      local id = doc[cfg.id_field]\n"
    "      if type(id) ~= 'string' and type(id) ~= 'number' then return nil end\n"
    "      meta._id = id\n"
    "    end\n"
    "    if cfg.routing_field then\n"
    "      local r = doc[cfg.routing_field]\n"
    "      if type(r) ~= 'string' and type(r) ~= 'number' then return nil end\n"
    "      meta.routing = r\n"
    "    end\n"
    "  elseif core.utf8_invalid(line) then return nil end\n"
    "  local b = bulk.new()\n"
    "  if not pcall(b.put, b, cfg.op or 'index', meta, line) then return nil end\n"
    "  return b:body()\n"
    "end\n"
    "return function(data)\n"
    "  local cfg = configs[(data:byte(1) or 0) % #configs + 1]\n"
    "  local chunk, pos, b, indices = data:sub(2), 1, bulk.new(), {}\n"
    "  while pos <= #chunk do\n"
    "    local before = #b\n"
    "    local next_pos, n, docs, stop = core.bulk_lines_append(b, 5, 2048, cfg.c, chunk, pos, indices)\n"
    "    local _, newlines = chunk:sub(pos, next_pos - 1):gsub('\\n', '')\n"
    "    assert(next_pos >= pos and newlines == n and docs == #b - before and docs <= n, 'counts')\n"
    "    for i = before + 1, #b do\n"
    "      local action, source = b:item(i)\n"
    "      local want = lua_path(source, cfg)\n"
    "      assert(want == action .. '\\n' .. source .. '\\n', 'C built ' .. action .. ' for ' .. source\n"
    "        .. ', Lua ' .. tostring(want))\n"
    "      if cfg.name_of then assert(indices[json.decode(action)[cfg.op or 'index']._index], 'indices') end\n"
    "    end\n"
    "    if stop == 'full' then b:reset() pos = next_pos\n"
    "    elseif stop == 'line' then\n"
    "      local nl = chunk:find('\\n', next_pos, true)\n"
    "      if not nl then error('a line left to Lua without its newline') end\n"
    "      pos = nl + 1\n"
    "    else assert(stop == 'end', stop) break end\n"
    "  end\n"
    "end\n";

static lua_State *L;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!L) {
        L = luaL_newstate();
        if (!L)
            abort();
        luaL_openlibs(L);
        lua_getglobal(L, "package");
        lua_getfield(L, -1, "preload");
        lua_pushcfunction(L, luaopen_espipe_core);
        lua_setfield(L, -2, "espipe.core");
        lua_pop(L, 2);
        if (luaL_loadstring(L, oracle) != 0 || lua_pcall(L, 0, 1, 0) != 0) {
            fprintf(stderr, "fuzz_bulk_lines setup: %s\n", lua_tostring(L, -1));
            abort();
        }
        lua_setglobal(L, "check");
    }
    lua_getglobal(L, "check");
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 0, 0) != 0) {
        fprintf(stderr, "fuzz_bulk_lines: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_settop(L, 0);
    if (lua_gc(L, LUA_GCCOUNT, 0) > 64 * 1024)
        lua_gc(L, LUA_GCCOLLECT, 0);
    return 0;
}
