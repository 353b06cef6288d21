/*
** Bytes one C module reads in place from another module's userdata, without
** a copy and without knowing its layout: the curl transport sends a bulk
** buffer (bulk/bulk.c), the Parquet writer reads a response body
** (curl/curl_multi.c). The modules are separate .so files, so the contract
** is this header alone.
**
** A lender puts a pointer to its `lender` under ESPIPE_LENDER_KEY in its
** metatable (borrowed_lend). A borrower asks borrowed_bytes for the bytes of
** a string or of any lender's userdata. One that keeps reading after it
** returns to Lua (curl, while the request is in flight) holds a reference to
** the value and a pin (lender->pin(ud, +1) ... (ud, -1)): while pinned the
** lender refuses every change that would move or alter the bytes.
*/
#ifndef ESPIPE_BORROWED_H
#define ESPIPE_BORROWED_H

#include <stddef.h>

#include "compat.h"

#define ESPIPE_LENDER_KEY "__espipe_lender"

typedef struct lender {
    /* The bytes of ud now ("" when empty); NULL with *why when none can be lent. */
    const char *(*bytes)(void *ud, size_t *len, const char **why);
    /* +1: a borrower reads the bytes in place from now on; -1: it is done. */
    void (*pin)(void *ud, int delta);
} lender;

/* Marks the metatable on top of the stack as lending through l (static storage). */
static inline void borrowed_lend(lua_State *L, const lender *l)
{
    lua_pushlightuserdata(L, (void *)l);
    lua_setfield(L, -2, ESPIPE_LENDER_KEY);
}

/* The lender of the userdata at idx, or NULL when it lends nothing. */
static inline const lender *borrowed_lender(lua_State *L, int idx)
{
    const lender *l;

    if (lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx))
        return NULL;
    lua_pushliteral(L, ESPIPE_LENDER_KEY);
    lua_rawget(L, -2);
    l = (const lender *)lua_touserdata(L, -1);
    lua_pop(L, 2);
    return l;
}

/*
** The bytes of the string or lender's userdata at idx; *from is its lender
** (NULL for a string). NULL for anything else, and NULL with *why set when
** a lender has none to lend (a released response body): the caller raises.
*/
static inline const char *borrowed_bytes(lua_State *L, int idx, size_t *len,
                                         const lender **from, const char **why)
{
    *from = NULL;
    *why = NULL;
    if (lua_type(L, idx) == LUA_TSTRING)
        return lua_tolstring(L, idx, len);
    if ((*from = borrowed_lender(L, idx)) == NULL)
        return NULL;
    return (*from)->bytes(lua_touserdata(L, idx), len, why);
}

#endif
