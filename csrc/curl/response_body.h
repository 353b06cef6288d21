/*
** A response body handed to Lua without a copy: the bytes curl wrote into
** the transfer's buffer, moved into a small userdata that owns them. Asked
** for per request (m:add's body_buffer), for consumers that read bodies in C
** (the Parquet writer's write_page) and would otherwise pay for a Lua string
** as large as the page: a copy, and fresh memory to fault in on every page.
**
**   #body, tostring(body) (a copy, as a string), body:release() (frees the
**   bytes now; reading a released body raises). __gc frees them too, but the
**   collector does not see their size: holders release when done.
** Other modules read the bytes through base/borrowed.h (the metatable lends them).
*/
#ifndef ESPIPE_RESPONSE_BODY_H
#define ESPIPE_RESPONSE_BODY_H

#include <stddef.h>

#include <lua.h>
#include <lauxlib.h>

#define ESPIPE_RESPONSE_BODY_MT "espipe.response_body"

typedef struct response_body {
    char *data;         /* malloc'd, NULL when empty or released */
    size_t len;
    int released;
} response_body;

#endif
