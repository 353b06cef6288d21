/*
** Lua 5.1 / 5.2 / 5.3 / 5.4 / LuaJIT compatibility for espipe's C core.
** Helpers are prefixed (espipe_*) so a .so built against LuaJIT headers never
** references luaL_setfuncs, which PUC 5.1 does not export.
*/
#ifndef ESPIPE_COMPAT_H
#define ESPIPE_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM == 501
#define espipe_rawlen(L, i) lua_objlen((L), (i))
void espipe_setfuncs(lua_State *L, const luaL_Reg *l, int nup);
int espipe_absindex(lua_State *L, int i);
#else
#define espipe_rawlen(L, i) lua_rawlen((L), (i))
#define espipe_setfuncs(L, l, n) luaL_setfuncs((L), (l), (n))
#define espipe_absindex(L, i) lua_absindex((L), (i))
#endif

/* On 5.3+ numbers carry an integer subtype; before that every number is a double. */
#if LUA_VERSION_NUM >= 503
#define ESPIPE_HAS_INTEGERS 1
#define espipe_isinteger(L, i) lua_isinteger((L), (i))
#else
#define ESPIPE_HAS_INTEGERS 0
#define espipe_isinteger(L, i) 0
#endif

/* A new module/method table filled with l (no globals set, on every version). */
#define espipe_newlib(L, l) (lua_newtable(L), espipe_setfuncs((L), (l), 0))

#if LUA_VERSION_NUM < 504
#define espipe_newuserdata(L, sz) lua_newuserdata((L), (sz))
#else
#define espipe_newuserdata(L, sz) lua_newuserdatauv((L), (sz), 1)
#endif

/* A runtime failure as Lua sees it: pushes nil, message, code; returns 3. */
int espipe_push_failure(lua_State *L, const char *message, const char *code);

#define ESPIPE_EXPORT __attribute__((visibility("default")))

#endif
