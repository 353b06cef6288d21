/*
** espipe.parquet_writer: the Lua face of the writer.
**
**   w, err = open(path, columns, options)
**     columns  array of { name = "host_name", type = "string"|"json"|"int64"|
**              "timestamp"|"double"|"boolean", path = { "host", "name" } }
**   w:write_rows(rows [, n])  rows: array of documents (tables); each column's
**              value is found by walking its path (a literal dotted key is
**              tried when a level is missing). Row-major in, columns built in C.
**   w:close([metadata]) -> { rows, bytes, row_groups, invalid = {}, coerced = {} }
**
** Runtime failures return nil, message, kind; wrong arguments raise.
*/
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "datetime.h"
#include "json.h"
#include "utf8.h"
#include "writer.h"

#define WRITER_MT "espipe.parquet_writer"

typedef struct col_path {
    int base;      /* first key in the keys table */
    int nsegs;     /* keys[base .. base+nsegs-1] are the path segments; after
                      them, nsegs-1 dotted remainders for literal "a.b" keys */
} col_path;

typedef struct lwriter {
    pq_writer *w;
    col_path *paths;
    int keys_ref;      /* registry ref to the keys table */
    int closed;
    strbuf text;       /* scratch for values turned into text */
    json_encode_cfg json;
    char json_err[ESPIPE_JSON_ERRLEN];
} lwriter;

/* ---- argument helpers (these raise: nothing malloc'd is held yet) ---- */

static size_t opt_size(lua_State *L, int opts, const char *key, size_t def, size_t min)
{
    lua_Number v;
    size_t r = def;
    lua_getfield(L, opts, key);
    if (lua_type(L, -1) == LUA_TNUMBER) {
        v = lua_tonumber(L, -1);
        if (!(v >= (lua_Number)min) || v > 1e15)
            luaL_error(L, "option %s must be a number >= %d", key, (int)min);
        r = (size_t)v;
    } else if (lua_type(L, -1) != LUA_TNIL) {
        luaL_error(L, "option %s must be a number, got %s", key, luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    return r;
}

static const char *opt_string(lua_State *L, int opts, const char *key, const char *def)
{
    const char *s = def;
    lua_getfield(L, opts, key);
    if (lua_type(L, -1) == LUA_TSTRING)
        s = lua_tostring(L, -1);
    else if (lua_type(L, -1) != LUA_TNIL)
        luaL_error(L, "option %s must be a string, got %s", key, luaL_typename(L, -1));
    lua_pop(L, 1);   /* still referenced by opts, so s stays valid */
    return s;
}

static lwriter *check_writer(lua_State *L)
{
    lwriter *u = (lwriter *)luaL_checkudata(L, 1, WRITER_MT);
    if (u->closed || u->w == NULL)
        luaL_error(L, "the Parquet writer is closed");
    return u;
}

static void release(lua_State *L, lwriter *u)
{
    if (u->w != NULL) {
        pq_writer_free(u->w);
        free(u->w);
        u->w = NULL;
    }
    free(u->paths);
    u->paths = NULL;
    strbuf_free(&u->text);
    if (u->keys_ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, u->keys_ref);
        u->keys_ref = LUA_NOREF;
    }
    u->closed = 1;
}

static int l_gc(lua_State *L)
{
    release(L, (lwriter *)luaL_checkudata(L, 1, WRITER_MT));
    return 0;
}

static int push_failure(lua_State *L, const char *msg, const char *kind)
{
    lua_pushnil(L);
    lua_pushstring(L, msg);
    lua_pushstring(L, kind);
    return 3;
}

/*
** Checks columns (arg 2) and builds the keys table on the stack top:
** the path segments of each column, then its dotted remainders.
*/
static void build_keys(lua_State *L, int cols, size_t ncols)
{
    size_t i;
    int k = 0, keys, col, path;
    lua_newtable(L);
    keys = lua_gettop(L);
    for (i = 1; i <= ncols; i++) {
        int nsegs, j, m;
        lua_rawgeti(L, cols, (int)i);
        col = lua_gettop(L);
        if (lua_type(L, col) != LUA_TTABLE)
            luaL_error(L, "columns[%d] must be a table, got %s", (int)i, luaL_typename(L, col));
        lua_getfield(L, col, "name");
        if (lua_type(L, -1) != LUA_TSTRING || espipe_rawlen(L, -1) == 0)
            luaL_error(L, "columns[%d].name must be a non-empty string", (int)i);
        lua_pop(L, 1);
        lua_getfield(L, col, "type");
        if (lua_type(L, -1) != LUA_TSTRING || pq_kind_from_name(lua_tostring(L, -1)) < 0)
            luaL_error(L, "columns[%d].type must be one of string, json, int64, timestamp, double, boolean", (int)i);
        lua_pop(L, 1);
        lua_getfield(L, col, "path");
        path = lua_gettop(L);
        if (lua_type(L, path) == LUA_TNIL) {
            lua_newtable(L);
            lua_replace(L, path);
            lua_getfield(L, col, "name");
            lua_rawseti(L, path, 1);
        } else if (lua_type(L, path) != LUA_TTABLE || espipe_rawlen(L, path) == 0) {
            luaL_error(L, "columns[%d].path must be a non-empty array of strings", (int)i);
        }
        nsegs = (int)espipe_rawlen(L, path);
        for (j = 1; j <= nsegs; j++) {
            lua_rawgeti(L, path, j);
            if (lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "columns[%d].path[%d] must be a string", (int)i, j);
            lua_rawseti(L, keys, ++k);
        }
        for (j = 1; j < nsegs; j++) {
            luaL_checkstack(L, 2 * (nsegs - j) + 2, "path too long");
            for (m = j; m <= nsegs; m++) {
                lua_rawgeti(L, path, m);
                if (m < nsegs)
                    lua_pushliteral(L, ".");
            }
            lua_concat(L, 2 * (nsegs - j) + 1);
            lua_rawseti(L, keys, ++k);
        }
        lua_settop(L, keys);
    }
}

static int l_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    const char *codec_name;
    size_t ncols, i;
    int keys, codec, k = 0;
    pq_options opt;
    lwriter *u;
    FILE *fp;

    luaL_checktype(L, 2, LUA_TTABLE);
    if (lua_isnoneornil(L, 3)) {
        lua_settop(L, 2);
        lua_newtable(L);
    }
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    ncols = espipe_rawlen(L, 2);
    if (ncols == 0)
        return luaL_argerror(L, 2, "at least one column is needed");
    if (ncols > 32767)
        return luaL_argerror(L, 2, "too many columns");
    codec_name = opt_string(L, 3, "codec", "snappy");
    codec = pq_codec_from_name(codec_name);
    if (codec < 0)
        return luaL_error(L, "option codec must be none, snappy, zstd or gzip, got '%s'", codec_name);
    (void)opt_string(L, 3, "created_by", "espipe");
    opt.codec = (enum pq_codec)codec;
    opt.level = (int)opt_size(L, 3, "level", 0, 0);
    if ((codec == PQ_GZIP && opt.level > 9) || (codec == PQ_ZSTD && opt.level > 22))
        return luaL_error(L, "option level %d is out of range for %s (gzip 1-9, zstd 1-22)",
                          opt.level, codec_name);
    opt.row_group_bytes = opt_size(L, 3, "row_group_bytes", (size_t)64 << 20, 1);
    opt.page_bytes = opt_size(L, 3, "page_bytes", (size_t)1 << 20, 1);
    opt.dictionary_bytes = opt_size(L, 3, "dictionary_bytes", (size_t)1 << 20, 0);
    opt.dictionary_entries = opt_size(L, 3, "dictionary_entries", 65535, 0);
    lua_getfield(L, 3, "metadata");
    if (lua_type(L, -1) != LUA_TNIL && lua_type(L, -1) != LUA_TTABLE)
        return luaL_error(L, "option metadata must be a table of strings");
    lua_pop(L, 1);

    build_keys(L, 2, ncols);               /* index 4 */
    keys = 4;
    /* the options table rides along in the keys table for close() */
    lua_pushvalue(L, 3);
    lua_setfield(L, keys, "options");

    u = (lwriter *)espipe_newuserdata(L, sizeof *u);   /* index 5 */
    memset(u, 0, sizeof *u);
    u->keys_ref = LUA_NOREF;
    strbuf_init(&u->text);
    json_encode_cfg_default(&u->json);
    luaL_getmetatable(L, WRITER_MT);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, keys);
    u->keys_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    /* from here on, everything malloc'd is owned by u (freed by __gc) */
    u->paths = calloc(ncols, sizeof *u->paths);
    u->w = calloc(1, sizeof *u->w);
    if (u->paths == NULL || u->w == NULL) {
        release(L, u);
        return push_failure(L, "out of memory", "memory");
    }
    fp = fopen(path, "wb");
    if (fp == NULL) {
        char msg[512];
        snprintf(msg, sizeof msg, "cannot open %s: %s", path, strerror(errno));
        release(L, u);
        return push_failure(L, msg, "io");
    }
    if (pq_writer_init(u->w, fp, &opt, ncols) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, u->w->err);
        lua_pushliteral(L, "io");
        release(L, u);
        return 3;
    }
    for (i = 0; i < ncols; i++) {
        int nsegs;
        lua_rawgeti(L, 2, (int)i + 1);
        lua_getfield(L, -1, "name");
        lua_getfield(L, -2, "type");
        lua_getfield(L, -3, "path");
        nsegs = lua_type(L, -1) == LUA_TTABLE ? (int)espipe_rawlen(L, -1) : 1;
        u->paths[i].base = k + 1;
        u->paths[i].nsegs = nsegs;
        k += 2 * nsegs - 1;
        if (pq_writer_set_column(u->w, i, lua_tostring(L, -3),
                                 (pq_kind)pq_kind_from_name(lua_tostring(L, -2))) != 0) {
            release(L, u);
            return push_failure(L, "out of memory", "memory");
        }
        lua_pop(L, 4);
    }
    lua_settop(L, 5);
    return 1;
}

/* ---- values ---- */

/* 1 when s[0..n) is well-formed UTF-8, as espipe.json requires of strings. */
static int utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, len, bad;
    while (i < n) {
        /* ASCII runs eight bytes at a time */
        while (n - i >= 8) {
            uint64_t word;
            memcpy(&word, s + i, 8);
            if (word & 0x8080808080808080u)
                break;
            i += 8;
        }
        if (i == n)
            break;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        len = utf8_sequence(s + i, n - i, &bad);
        if (len == 0)
            return 0;
        i += len;
    }
    return 1;
}

/*
** A table is a JSON array when it carries espipe.json's array metatable or
** its keys are exactly 1..n with n >= 1: the rule of the encoder itself.
*/
static int is_json_array(lua_State *L, int idx)
{
    size_t len, count = 0;
    if (lua_getmetatable(L, idx)) {
        int marked;
        lua_getfield(L, LUA_REGISTRYINDEX, ESPIPE_JSON_ARRAY_MT);
        marked = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
        if (marked)
            return 1;
    }
    len = espipe_rawlen(L, idx);
    if (len == 0)
        return 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_Number k;
        lua_pop(L, 1);
        k = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
        /* a border of {1, nil, 3, x = 1} is 3 with three keys: not dense */
        if (++count > len || !(k >= 1 && k <= (lua_Number)len && k == (lua_Number)(size_t)k)) {
            lua_pop(L, 1);
            return 0;
        }
    }
    return count == len;
}

/*
** The value's text by espipe.json's encoder into u->text; 0, or -1 for a
** value JSON cannot carry (NaN, invalid UTF-8, a function ...) or no memory.
*/
static int json_text(lua_State *L, lwriter *u, int vi)
{
    u->text.len = 0;
    return json_encode_value(L, vi, &u->text, &u->json, u->json_err);
}

static int put_invalid(pq_writer *w, pq_column *c)
{
    c->invalid++;
    return pq_put_null(w, c);
}

static int put_text(lwriter *u, pq_column *c, const char *s, size_t n)
{
    c->coerced++;
    return pq_put_bytes(u->w, c, s, n);
}

/* A plain decimal or decimal-with-fraction/exponent number, nothing else strtod takes. */
static int parse_number_text(const char *s, size_t n, double *out)
{
    size_t i;
    char *end;
    if (n == 0 || n > 64)
        return -1;
    for (i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '+' || ch == 'e' || ch == 'E'))
            return -1;
    }
    *out = strtod(s, &end);   /* Lua strings are NUL-terminated */
    return (end == s + n && isfinite(*out)) ? 0 : -1;
}

/* 2^63 as a double: the first value past the int64 range. */
#define TWO63 9223372036854775808.0

static int put_int64_from_double(pq_writer *w, pq_column *c, double d, int counted)
{
    double t;
    if (!isfinite(d) || d < -TWO63 || d >= TWO63)
        return put_invalid(w, c);
    {
        /* ES truncates a long's fraction; a date's epoch_millis counts back in time */
        int64_t v = (int64_t)d;   /* in range, so this truncates toward zero */
        t = (double)v;
        if (c->kind == PQ_TIMESTAMP && t > d)
            v--;
        if (counted || t != d)
            c->coerced++;
        return pq_put_int64(w, c, v);
    }
}

static int put_value(lua_State *L, lwriter *u, pq_column *c, int vi, int unwrapped);

static int put_array(lua_State *L, lwriter *u, pq_column *c, int vi, int unwrapped)
{
    size_t len = espipe_rawlen(L, vi);
    int rc;
    if (len == 0)
        return pq_put_null(u->w, c);       /* [] is "no value" to Elasticsearch */
    if (len == 1 && !unwrapped) {
        /* [x] means x */
        lua_rawgeti(L, vi, 1);
        rc = put_value(L, u, c, lua_gettop(L), 1);
        lua_pop(L, 1);
        return rc;
    }
    if (c->kind == PQ_STRING) {
        if (json_text(L, u, vi) != 0)
            return put_invalid(u->w, c);
        return put_text(u, c, u->text.data, u->text.len);
    }
    return put_invalid(u->w, c);
}

static int put_value(lua_State *L, lwriter *u, pq_column *c, int vi, int unwrapped)
{
    pq_writer *w = u->w;
    int t = lua_type(L, vi);
    size_t n;
    const char *s;

    if (t == LUA_TNIL || (t == LUA_TLIGHTUSERDATA && lua_touserdata(L, vi) == NULL))
        return pq_put_null(w, c);
    if (c->kind == PQ_JSON) {
        if (json_text(L, u, vi) != 0)
            return put_invalid(w, c);
        return pq_put_bytes(w, c, u->text.data, u->text.len);
    }
    if (t == LUA_TTABLE)
        return is_json_array(L, vi) ? put_array(L, u, c, vi, unwrapped) : put_invalid(w, c);

    switch (c->kind) {
    case PQ_STRING:
        if (t == LUA_TSTRING) {
            s = lua_tolstring(L, vi, &n);
            return utf8_valid(s, n) ? pq_put_bytes(w, c, s, n) : put_invalid(w, c);
        }
        if (t == LUA_TBOOLEAN)
            return lua_toboolean(L, vi) ? put_text(u, c, "true", 4) : put_text(u, c, "false", 5);
        if (t == LUA_TNUMBER) {
            /* the number's JSON text: what ES indexes for a keyword */
            if (json_text(L, u, vi) != 0)
                return put_invalid(w, c);
            return put_text(u, c, u->text.data, u->text.len);
        }
        return put_invalid(w, c);

    case PQ_INT64:
    case PQ_TIMESTAMP:
        if (t == LUA_TNUMBER) {
#if ESPIPE_HAS_INTEGERS
            if (lua_isinteger(L, vi))
                return pq_put_int64(w, c, (int64_t)lua_tointeger(L, vi));
#endif
            return put_int64_from_double(w, c, lua_tonumber(L, vi), 0);
        }
        if (t == LUA_TSTRING) {
            int64_t v;
            double d;
            s = lua_tolstring(L, vi, &n);
            if (c->kind == PQ_TIMESTAMP) {
                if (parse_es_date(s, n, &v) == 0)
                    return pq_put_int64(w, c, v);
                return put_invalid(w, c);
            }
            if (parse_epoch_millis(s, n, &v) == 0) {
                c->coerced++;
                return pq_put_int64(w, c, v);
            }
            if (parse_number_text(s, n, &d) == 0)
                return put_int64_from_double(w, c, d, 1);
        }
        return put_invalid(w, c);

    case PQ_DOUBLE:
        if (t == LUA_TNUMBER) {
            double d = lua_tonumber(L, vi);
            return isfinite(d) ? pq_put_double(w, c, d) : put_invalid(w, c);
        }
        if (t == LUA_TSTRING) {
            double d;
            s = lua_tolstring(L, vi, &n);
            if (parse_number_text(s, n, &d) == 0) {
                c->coerced++;
                return pq_put_double(w, c, d);
            }
        }
        return put_invalid(w, c);

    case PQ_BOOLEAN:
        if (t == LUA_TBOOLEAN)
            return pq_put_bool(w, c, lua_toboolean(L, vi));
        if (t == LUA_TSTRING) {
            s = lua_tolstring(L, vi, &n);
            if (n == 4 && memcmp(s, "true", 4) == 0) {
                c->coerced++;
                return pq_put_bool(w, c, 1);
            }
            if ((n == 5 && memcmp(s, "false", 5) == 0) || n == 0) {
                c->coerced++;
                return pq_put_bool(w, c, 0);
            }
        }
        return put_invalid(w, c);

    default:
        return put_invalid(w, c);
    }
}

/*
** Push table[path j..] (nil when absent). When the nested walk finds nothing,
** the literal dotted key "seg_j.seg_j+1..." is tried at that level, since a
** document may hold { "host.ip": ... } beside { host = { name = ... } }.
*/
static void push_path(lua_State *L, int table, int keys, const col_path *p, int j)
{
    lua_rawgeti(L, keys, p->base + j);
    lua_rawget(L, table);
    if (j + 1 == p->nsegs)
        return;
    if (lua_type(L, -1) == LUA_TTABLE) {
        int sub = lua_gettop(L);
        push_path(L, sub, keys, p, j + 1);
        lua_remove(L, sub);
        if (lua_type(L, -1) != LUA_TNIL)
            return;
    }
    lua_pop(L, 1);
    lua_rawgeti(L, keys, p->base + p->nsegs + j);
    lua_rawget(L, table);
}

static void push_field(lua_State *L, int row, int keys, const col_path *p)
{
    if (p->nsegs > LUA_MINSTACK / 2 && !lua_checkstack(L, p->nsegs * 2)) {
        lua_pushnil(L);
        return;
    }
    push_path(L, row, keys, p, 0);
}

static int l_write_rows(lua_State *L)
{
    lwriter *u = check_writer(L);
    pq_writer *w = u->w;
    size_t n, i, c;
    int keys, rows = 2;

    luaL_checktype(L, 2, LUA_TTABLE);
    if (lua_isnoneornil(L, 3)) {
        n = espipe_rawlen(L, 2);
    } else {
        lua_Number x = luaL_checknumber(L, 3);
        luaL_argcheck(L, x >= 0 && x <= 2147483647.0, 3, "row count out of range");
        n = (size_t)x;
    }
    lua_settop(L, 2);
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, rows, (int)i);
        if (lua_type(L, -1) != LUA_TTABLE)
            return luaL_error(L, "rows[%d] must be a table (a document), got %s",
                              (int)i, luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    if (w->failed)
        return push_failure(L, w->err, "io");
    lua_rawgeti(L, LUA_REGISTRYINDEX, u->keys_ref);
    keys = lua_gettop(L);
    for (i = 1; i <= n; i++) {
        int row;
        lua_rawgeti(L, rows, (int)i);
        row = lua_gettop(L);
        for (c = 0; c < w->ncols; c++) {
            push_field(L, row, keys, &u->paths[c]);
            if (put_value(L, u, &w->cols[c], row + 1, 0) != 0)
                return push_failure(L, w->err, "memory");
            lua_settop(L, row);
        }
        lua_settop(L, keys);
        if (pq_writer_end_row(w) != 0)
            return push_failure(L, w->err, "io");
    }
    lua_pushinteger(L, (lua_Integer)n);
    return 1;
}

static void push_count(lua_State *L, uint64_t n)
{
#if ESPIPE_HAS_INTEGERS
    lua_pushinteger(L, (lua_Integer)n);
#else
    lua_pushnumber(L, (lua_Number)n);
#endif
}

static void push_counts(lua_State *L, const pq_writer *w, int invalid)
{
    size_t i;
    lua_newtable(L);
    for (i = 0; i < w->ncols; i++) {
        uint64_t n = invalid ? w->cols[i].invalid : w->cols[i].coerced;
        if (n > 0) {
            push_count(L, n);
            lua_setfield(L, -2, w->cols[i].name);
        }
    }
}

static int l_counts(lua_State *L)
{
    lwriter *u = check_writer(L);
    lua_newtable(L);
    push_counts(L, u->w, 1);
    lua_setfield(L, -2, "invalid");
    push_counts(L, u->w, 0);
    lua_setfield(L, -2, "coerced");
    return 1;
}

/* Collects metadata pairs from the tables at t1 (open's) and t2 (close's); t2 wins. */
static int collect_metadata(lua_State *L, int t1, int t2)
{
    int merged, i;
    lua_newtable(L);
    merged = lua_gettop(L);
    for (i = 0; i < 2; i++) {
        int t = i == 0 ? t1 : t2;
        if (lua_type(L, t) != LUA_TTABLE)
            continue;
        lua_pushnil(L);
        while (lua_next(L, t) != 0) {
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "metadata keys and values must be strings");
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, merged);
        }
    }
    return merged;
}

static int l_close(lua_State *L)
{
    lwriter *u = check_writer(L);
    pq_writer *w = u->w;
    const char **keys = NULL, **vals = NULL, *created_by;
    size_t *klens = NULL, *vlens = NULL, nkv = 0, i;
    int meta, opts, rc;

    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, u->keys_ref);
    lua_getfield(L, -1, "options");
    opts = lua_gettop(L);
    lua_getfield(L, opts, "metadata");
    meta = collect_metadata(L, opts + 1, 2);   /* may raise: nothing malloc'd yet */
    lua_getfield(L, opts, "created_by");
    created_by = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "espipe";
    if (w->failed) {
        lua_pushnil(L);
        lua_pushstring(L, w->err);
        lua_pushliteral(L, "io");
        release(L, u);
        return 3;
    }
    lua_pushnil(L);
    while (lua_next(L, meta) != 0) {
        lua_pop(L, 1);
        nkv++;
    }
    if (nkv > 0) {
        keys = malloc(nkv * sizeof *keys);
        vals = malloc(nkv * sizeof *vals);
        klens = malloc(nkv * sizeof *klens);
        vlens = malloc(nkv * sizeof *vlens);
    }
    if (nkv > 0 && (keys == NULL || vals == NULL || klens == NULL || vlens == NULL)) {
        rc = -1;
        snprintf(w->err, sizeof w->err, "out of memory");
    } else {
        /* strings stay alive in meta, which is on the stack; no raising below */
        i = 0;
        lua_pushnil(L);
        while (lua_next(L, meta) != 0) {
            keys[i] = lua_tolstring(L, -2, &klens[i]);
            vals[i] = lua_tolstring(L, -1, &vlens[i]);
            i++;
            lua_pop(L, 1);
        }
        rc = pq_writer_finish(w, keys, klens, vals, vlens, nkv, created_by);
    }
    free(keys);
    free(vals);
    free(klens);
    free(vlens);
    if (rc != 0) {
        lua_pushnil(L);
        lua_pushstring(L, w->err);
        lua_pushliteral(L, "io");
        release(L, u);
        return 3;
    }
    lua_newtable(L);
    push_count(L, w->rows);
    lua_setfield(L, -2, "rows");
    push_count(L, w->offset);
    lua_setfield(L, -2, "bytes");
    push_count(L, w->row_groups);
    lua_setfield(L, -2, "row_groups");
    push_count(L, w->peak_buffered);
    lua_setfield(L, -2, "peak_buffered_bytes");
    push_counts(L, w, 1);
    lua_setfield(L, -2, "invalid");
    push_counts(L, w, 0);
    lua_setfield(L, -2, "coerced");
    release(L, u);
    return 1;
}

static int l_bytes_written(lua_State *L)
{
    push_count(L, check_writer(L)->w->offset);
    return 1;
}

static int l_buffered_bytes(lua_State *L)
{
    push_count(L, check_writer(L)->w->buffered);
    return 1;
}

static int l_peak_buffered_bytes(lua_State *L)
{
    push_count(L, check_writer(L)->w->peak_buffered);
    return 1;
}

static int l_rows(lua_State *L)
{
    pq_writer *w = check_writer(L)->w;
    push_count(L, (w->rows + w->rg_rows));
    return 1;
}

static int l_row_groups(lua_State *L)
{
    push_count(L, check_writer(L)->w->row_groups);
    return 1;
}

static void push_int64(lua_State *L, int64_t v)
{
#if ESPIPE_HAS_INTEGERS
    lua_pushinteger(L, (lua_Integer)v);
#else
    lua_pushnumber(L, (lua_Number)v);
#endif
}

/* parse_date(s) -> epoch milliseconds, or nil when s is not an ES default-format date. */
static int l_parse_date(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    int64_t ms;
    if (parse_es_date(s, n, &ms) != 0)
        return 0;
    push_int64(L, ms);
    return 1;
}

/* is_iso_date(s): what dynamic mapping's date_detection would call a date. */
static int l_is_iso_date(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    int64_t ms;
    lua_pushboolean(L, n >= 10 && parse_iso8601_ms(s, n, &ms) == 0);
    return 1;
}

static const luaL_Reg writer_methods[] = {
    { "write_rows", l_write_rows },
    { "close", l_close },
    { "counts", l_counts },
    { "bytes_written", l_bytes_written },
    { "buffered_bytes", l_buffered_bytes },
    { "peak_buffered_bytes", l_peak_buffered_bytes },
    { "rows", l_rows },
    { "row_groups", l_row_groups },
    { NULL, NULL }
};

static const luaL_Reg module_functions[] = {
    { "open", l_open },
    { "parse_date", l_parse_date },
    { "is_iso_date", l_is_iso_date },
    { NULL, NULL }
};

ESPIPE_EXPORT int luaopen_espipe_parquet_writer(lua_State *L);

ESPIPE_EXPORT int luaopen_espipe_parquet_writer(lua_State *L)
{
    if (luaL_newmetatable(L, WRITER_MT)) {
        espipe_newlib(L, writer_methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    espipe_newlib(L, module_functions);
    return 1;
}
