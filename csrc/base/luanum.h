/* Reading Lua numbers that must be exact integers, on every Lua version. */
#ifndef ESPIPE_LUANUM_H
#define ESPIPE_LUANUM_H

#include <math.h>
#include <stdint.h>

#include "compat.h"

/*
** 1 and the value in *out when the number at idx is an integer, or a float
** holding one exactly inside the int64 range (5.1/5.2/LuaJIT have only
** floats); 0 otherwise. The caller has checked lua_type == LUA_TNUMBER.
*/
static inline int espipe_exact_integer(lua_State *L, int idx, int64_t *out)
{
    double d;

#if ESPIPE_HAS_INTEGERS
    if (lua_isinteger(L, idx)) {
        *out = (int64_t)lua_tointeger(L, idx);
        return 1;
    }
#endif
    d = (double)lua_tonumber(L, idx);
    /* -2^63 is exact; 2^63 is the first double outside the range. */
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != floor(d))
        return 0;
    *out = (int64_t)d;
    return 1;
}

#endif
