/*
** The exact JSON codec shared by espipe.json, the bulk builder and the
** response scanners.
**
** Conventions on the Lua side:
**   null  = lightuserdata NULL (the same value as cjson.null and ngx.null)
**   array = a table whose metatable is the registry's ESPIPE_JSON_ARRAY_MT;
**           decode marks every array it makes so decode -> encode keeps [].
*/
#ifndef ESPIPE_JSON_H
#define ESPIPE_JSON_H

#include <stddef.h>

#include "base/compat.h"
#include "base/strbuf.h"

#define ESPIPE_JSON_ARRAY_MT "espipe.json.array"
#define ESPIPE_JSON_DEFAULT_DEPTH 1000
#define ESPIPE_JSON_ERRLEN 256

enum json_utf8_mode { JSON_UTF8_ERROR, JSON_UTF8_REPLACE };
/* What decode does with an integer it cannot hold exactly. */
enum json_big_mode { JSON_BIG_FLOAT, JSON_BIG_STRING, JSON_BIG_ERROR };

typedef struct json_encode_cfg {
    int max_depth;
    enum json_utf8_mode utf8;
} json_encode_cfg;

typedef struct json_decode_cfg {
    int max_depth;
    enum json_utf8_mode utf8;
    enum json_big_mode big;
} json_decode_cfg;

void json_encode_cfg_default(json_encode_cfg *cfg);
void json_decode_cfg_default(json_decode_cfg *cfg);

/*
** Append the JSON text of the value at stack index idx to out.
** Returns 0, or -1 with a NUL-terminated message in err (ESPIPE_JSON_ERRLEN
** bytes). It never raises, so callers may hold the buffer; on error out->len
** is unspecified and the caller restores the length it saved.
*/
int json_encode_value(lua_State *L, int idx, strbuf *out,
                      const json_encode_cfg *cfg, char *err);

/*
** Decode text[0..len) and push the value. Returns 0, or -1 with nothing
** pushed, a message in err and the byte offset of the problem in *offset.
** It may raise only on Lua memory errors.
*/
int json_decode_push(lua_State *L, const char *text, size_t len,
                     const json_decode_cfg *cfg, char *err, size_t *offset);

/* Register encode/decode/null/array helpers into the table on top of the stack. */
void espipe_open_json(lua_State *L);

#endif
