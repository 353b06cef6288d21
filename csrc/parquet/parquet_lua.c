/*
** espipe.parquet_writer: the Lua face of the writer.
**
**   w, err = open(path, columns, options)
**     columns  array of { name = "host_name", type = "string"|"json"|"int64"|
**              "timestamp"|"double"|"boolean", path = { "host", "name" } }
**   w:write_rows(rows [, n])  rows: array of documents (tables); each column's
**              value is found by walking its path (a literal dotted key is
**              tried when a level is missing). Row-major in, columns built in C.
**   w:write_page(body) -> n, position | nil, message, kind, offset
**              body: one search (or scroll) response, a string or an
**              espipe.response_body (curl/response_body.h); one row per hit of
**              hits.hits, each column's path read inside the hit object
**              straight from the bytes (see page_reader.h), with the rules of
**              write_rows (coerce.h), except that JSON text (json columns,
**              arrays in string columns) is the value's bytes as sent.
**              position = { hits = n, pit_id =, scroll_id =, search_after = }
**              (search_after: the last hit's sort values, big integers as text)
**   page_position(body) -> position | nil, message, offset: the same reading
**              without columns, for a scan that hands pages on unread
**   w:close([metadata]) -> { rows, bytes, row_groups, invalid = {}, coerced = {} }
**
** Runtime failures return nil, message, kind; wrong arguments raise.
*/
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "coerce.h"
#include "base/compat.h"
#include "datetime.h"
#include "json/reader.h"
#include "page_reader.h"
#include "search/page_position.h"
#include "json/json.h"
#include "shred.h"
#include "base/utf8.h"
#include "writer.h"

#define WRITER_MT "espipe.parquet_writer"

typedef struct col_path {
    int base;      /* first key in the keys table */
    int nsegs;     /* keys[base .. base+nsegs-1] are the path segments; after
                      them, nsegs-1 dotted remainders for literal "a.b" keys */
} col_path;

typedef struct lwriter {
    pq_writer *w;
    pq_page_reader *page;   /* built on the first write_page (at open for a nested shape) */
    pq_shape *shape;        /* NULL: every field is a flat leaf column */
    size_t nfields;         /* the top-level fields (the columns argument) */
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
            return luaL_error(L, "option %s must be a number >= %d", key, (int)min);
        r = (size_t)v;
    } else if (lua_type(L, -1) != LUA_TNIL) {
        return luaL_error(L, "option %s must be a number, got %s", key, luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    return r;
}

static int opt_string(lua_State *L, int opts, const char *key, const char *def, const char **out)
{
    const char *s = def;
    lua_getfield(L, opts, key);
    if (lua_type(L, -1) == LUA_TSTRING)
        s = lua_tostring(L, -1);
    else if (lua_type(L, -1) != LUA_TNIL)
        return luaL_error(L, "option %s must be a string, got %s", key, luaL_typename(L, -1));
    lua_pop(L, 1);   /* still referenced by opts, so s stays valid */
    *out = s;
    return 0;
}

static int raise_closed(lua_State *L)
{
    return luaL_error(L, "the Parquet writer is closed");
}

static lwriter *check_writer(lua_State *L)
{
    lwriter *u = (lwriter *)luaL_checkudata(L, 1, WRITER_MT);
    if (u->closed || u->w == NULL)
        (void)raise_closed(L);   /* does not return */
    return u;
}

static void release(lua_State *L, lwriter *u)
{
    if (u->w != NULL) {
        pq_writer_free(u->w);
        free(u->w);
        u->w = NULL;
    }
    pq_page_reader_free(u->page);
    u->page = NULL;
    pq_shape_free(u->shape);
    u->shape = NULL;
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

static int field_form(const char *type);
static pq_page_reader *page_reader(lua_State *L, lwriter *u, int keys);

/*
** Checks columns (arg 2) and builds the keys table on the stack top:
** the path segments of each column, then its dotted remainders.
*/
static int build_keys(lua_State *L, int cols, size_t ncols)
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
            return luaL_error(L, "columns[%d] must be a table, got %s", (int)i, luaL_typename(L, col));
        lua_getfield(L, col, "name");
        if (lua_type(L, -1) != LUA_TSTRING || espipe_rawlen(L, -1) == 0)
            return luaL_error(L, "columns[%d].name must be a non-empty string", (int)i);
        lua_pop(L, 1);
        lua_getfield(L, col, "type");
        if (lua_type(L, -1) != LUA_TSTRING || field_form(lua_tostring(L, -1)) < 0)
            return luaL_error(L, "columns[%d].type must be one of string, json, int64, timestamp, "
                              "timestamp_ns, double, boolean, struct, list, geo_point, map", (int)i);
        lua_pop(L, 1);
        lua_getfield(L, col, "path");
        path = lua_gettop(L);
        if (lua_type(L, path) == LUA_TNIL) {
            lua_newtable(L);
            lua_replace(L, path);
            lua_getfield(L, col, "name");
            lua_rawseti(L, path, 1);
        } else if (lua_type(L, path) != LUA_TTABLE || espipe_rawlen(L, path) == 0) {
            return luaL_error(L, "columns[%d].path must be a non-empty array of strings", (int)i);
        }
        nsegs = (int)espipe_rawlen(L, path);
        for (j = 1; j <= nsegs; j++) {
            lua_rawgeti(L, path, j);
            if (lua_type(L, -1) != LUA_TSTRING)
                return luaL_error(L, "columns[%d].path[%d] must be a string", (int)i, j);
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
    return 0;
}

/* ---- nested fields: the schema tree and the shredding shape ---- */

#define NEST_MAX 32
enum { F_LEAF, F_STRUCT, F_LIST, F_GEO, F_MAP };

static int field_form(const char *type)
{
    if (strcmp(type, "struct") == 0) return F_STRUCT;
    if (strcmp(type, "list") == 0) return F_LIST;
    if (strcmp(type, "geo_point") == 0) return F_GEO;
    if (strcmp(type, "map") == 0) return F_MAP;
    return pq_kind_from_name(type) >= 0 ? F_LEAF : -1;
}

typedef struct tree_counts {
    size_t elems, leaves, nodes;
    int nested;
} tree_counts;

/* The form of the field spec at idx, checked (raises); counts what it adds. */
static int count_field(lua_State *L, int idx, const char *where, int depth, int named, tree_counts *n)
{
    int form, i, len;
    const char *type;
    if (depth > NEST_MAX)
        return luaL_error(L, "%s: nested deeper than %d", where, NEST_MAX);
    luaL_checkstack(L, 6, "nested fields");
    if (lua_type(L, idx) != LUA_TTABLE)
        return luaL_error(L, "%s must be a table, got %s", where, luaL_typename(L, idx));
    lua_getfield(L, idx, "type");
    type = lua_tostring(L, -1);
    form = lua_type(L, -1) == LUA_TSTRING ? field_form(type) : -1;
    if (form < 0)
        return luaL_error(L, "%s.type must be one of string, json, int64, timestamp, timestamp_ns, "
                          "double, boolean, struct, list, geo_point, map", where);
    lua_pop(L, 1);
    if (named) {
        lua_getfield(L, idx, "name");
        if (lua_type(L, -1) != LUA_TSTRING || espipe_rawlen(L, -1) == 0)
            return luaL_error(L, "%s.name must be a non-empty string", where);
        lua_pop(L, 1);
    }
    n->nodes++;
    switch (form) {
    case F_LEAF:
        n->elems++;
        n->leaves++;
        break;
    case F_GEO:
        n->elems += 3;
        n->leaves += 2;
        n->nodes += 2;
        n->nested = 1;
        break;
    case F_MAP:
        lua_getfield(L, idx, "value");
        if (!lua_isnil(L, -1) && !(lua_type(L, -1) == LUA_TSTRING
                                   && (strcmp(lua_tostring(L, -1), "string") == 0
                                       || strcmp(lua_tostring(L, -1), "json") == 0)))
            return luaL_error(L, "%s.value must be string or json", where);
        lua_pop(L, 1);
        n->elems += 4;
        n->leaves += 2;
        n->nested = 1;
        break;
    case F_LIST:
        n->elems += 2;
        n->nested = 1;
        lua_getfield(L, idx, "element");
        lua_pushfstring(L, "%s.element", where);
        count_field(L, lua_gettop(L) - 1, lua_tostring(L, -1), depth + 1, 0, n);
        lua_pop(L, 2);
        break;
    default:
        n->elems++;
        n->nested = 1;
        lua_getfield(L, idx, "fields");
        len = lua_type(L, -1) == LUA_TTABLE ? (int)espipe_rawlen(L, -1) : 0;
        if (len == 0)
            return luaL_error(L, "%s.fields must be a non-empty array of fields", where);
        for (i = 1; i <= len; i++) {
            lua_rawgeti(L, -1, i);
            lua_pushfstring(L, "%s.fields[%d]", where, i);
            count_field(L, lua_gettop(L) - 1, lua_tostring(L, -1), depth + 1, 1, n);
            lua_pop(L, 2);
        }
        lua_pop(L, 1);
    }
    return form;
}

typedef struct tree_build {
    pq_schema_elem *elems;
    size_t nelems, ncols;
    pq_shape *shape;
    size_t nnodes;
    int failed;
} tree_build;

static char *dup_lua_string(lua_State *L, int idx, const char *field, const char *def)
{
    const char *v;
    size_t n;
    char *p;
    lua_getfield(L, idx, field);
    v = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : (n = strlen(def), def);
    p = malloc(n + 1);
    if (p != NULL) {
        memcpy(p, v, n);
        p[n] = '\0';
    }
    lua_pop(L, 1);
    return p;
}

static void add_elem(tree_build *b, char *name, int repetition, int nchildren, int kind, int group)
{
    pq_schema_elem *e = &b->elems[b->nelems++];
    if (name == NULL)
        b->failed = 1;
    e->name = name;
    e->repetition = repetition;
    e->nchildren = nchildren;
    e->kind = kind;
    e->group = group;
}

static pq_shred_node *add_node(tree_build *b, int kind, char *key, int def, int rep, size_t ncols)
{
    pq_shred_node *n = &b->shape->nodes[b->nnodes++];
    n->kind = kind;
    n->key = key;
    n->klen = key ? strlen(key) : 0;
    n->def = def;
    n->rep = rep;
    n->first_col = b->ncols;
    n->ncols = ncols;
    n->end = b->nnodes;
    if (key == NULL)
        b->failed = 1;
    return n;
}

/* The field spec at idx (checked by count_field) into schema elements and shape nodes. */
static void build_field(lua_State *L, int idx, tree_build *b, const char *name_override,
                        int def, int rep)
{
    char *name, *key;
    const char *type;
    size_t node = b->nnodes, i, len, col0 = b->ncols;
    int form;

    lua_getfield(L, idx, "type");
    type = lua_tostring(L, -1);
    form = field_form(type);
    name = name_override ? pq_copy_string(name_override) : dup_lua_string(L, idx, "name", "");
    lua_getfield(L, idx, "name");
    key = dup_lua_string(L, idx, "key", lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "");
    lua_pop(L, 1);
    switch (form) {
    case F_LEAF:
        add_elem(b, name, PQ_OPTIONAL, 0, pq_kind_from_name(type), 0);
        add_node(b, PQ_NODE_LEAF, key, def + 1, rep, 1);
        b->ncols++;
        break;
    case F_GEO:
        add_elem(b, name, PQ_OPTIONAL, 2, 0, PQ_GROUP_PLAIN);
        add_elem(b, pq_copy_string("lat"), PQ_OPTIONAL, 0, PQ_DOUBLE, 0);
        add_elem(b, pq_copy_string("lon"), PQ_OPTIONAL, 0, PQ_DOUBLE, 0);
        add_node(b, PQ_NODE_GEO, key, def + 1, rep, 2);
        add_node(b, PQ_NODE_LEAF, pq_copy_string("lat"), def + 2, rep, 1);
        b->ncols++;
        add_node(b, PQ_NODE_LEAF, pq_copy_string("lon"), def + 2, rep, 1);
        b->ncols++;
        break;
    case F_MAP: {
        const char *vt;
        lua_getfield(L, idx, "value");
        vt = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "string";
        add_elem(b, name, PQ_OPTIONAL, 1, 0, PQ_GROUP_MAP);
        add_elem(b, pq_copy_string("key_value"), PQ_REPEATED, 2, 0, PQ_GROUP_PLAIN);
        add_elem(b, pq_copy_string("key"), PQ_REQUIRED, 0, PQ_STRING, 0);
        add_elem(b, pq_copy_string("value"), PQ_OPTIONAL, 0, pq_kind_from_name(vt), 0);
        lua_pop(L, 1);
        add_node(b, PQ_NODE_MAP, key, def + 1, rep + 1, 2);
        b->ncols += 2;
        break;
    }
    case F_LIST:
        add_elem(b, name, PQ_OPTIONAL, 1, 0, PQ_GROUP_LIST);
        add_elem(b, pq_copy_string("list"), PQ_REPEATED, 1, 0, PQ_GROUP_PLAIN);
        add_node(b, PQ_NODE_LIST, key, def + 1, rep + 1, 0);
        lua_getfield(L, idx, "element");
        build_field(L, lua_gettop(L), b, "element", def + 2, rep + 1);
        lua_pop(L, 1);
        break;
    default:
        lua_getfield(L, idx, "fields");
        len = espipe_rawlen(L, -1);
        add_elem(b, name, PQ_OPTIONAL, (int)len, 0, PQ_GROUP_PLAIN);
        add_node(b, PQ_NODE_STRUCT, key, def + 1, rep, 0);
        for (i = 1; i <= len; i++) {
            lua_rawgeti(L, -1, (int)i);
            build_field(L, lua_gettop(L), b, NULL, def + 1, rep);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);   /* type */
    b->shape->nodes[node].ncols = b->ncols - col0;
    b->shape->nodes[node].end = b->nnodes;
}

/* The schema tree and shape of the fields (arg 2), set on u; 0, or -1 with msg set. */
static int build_tree(lua_State *L, lwriter *u, const tree_counts *n, char *msg)
{
    tree_build b;
    size_t i;
    int rc = -1;

    memset(&b, 0, sizeof b);
    b.elems = calloc(n->elems, sizeof *b.elems);
    b.shape = pq_shape_new(n->nodes, u->nfields);
    if (b.elems == NULL || b.shape == NULL) {
        snprintf(msg, 256, "out of memory");
        goto done;
    }
    for (i = 0; i < u->nfields; i++) {
        b.shape->roots[i] = b.nnodes;
        lua_rawgeti(L, 2, (int)i + 1);
        build_field(L, lua_gettop(L), &b, NULL, 0, 0);
        lua_pop(L, 1);
    }
    if (b.failed) {
        snprintf(msg, 256, "out of memory");
        goto done;
    }
    if (pq_writer_set_schema(u->w, b.elems, b.nelems) != 0) {
        snprintf(msg, 256, "%s", u->w->err);
        goto done;
    }
    if (pq_shape_check(b.shape, u->w, msg) != 0)
        goto done;
    u->shape = b.shape;
    b.shape = NULL;
    rc = 0;
done:
    for (i = 0; b.elems != NULL && i < b.nelems; i++)
        free(b.elems[i].name);
    free(b.elems);
    pq_shape_free(b.shape);
    return rc;
}

static int l_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    const char *codec_name, *created_by;
    size_t ncols, i;
    int keys, codec, k = 0;
    pq_options opt;
    tree_counts counts;
    char tree_msg[256];
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
    memset(&counts, 0, sizeof counts);
    for (i = 1; i <= ncols; i++) {
        lua_rawgeti(L, 2, (int)i);
        lua_pushfstring(L, "columns[%d]", (int)i);
        count_field(L, lua_gettop(L) - 1, lua_tostring(L, -1), 0, 0, &counts);
        lua_pop(L, 2);
    }
    opt_string(L, 3, "codec", "snappy", &codec_name);
    codec = pq_codec_from_name(codec_name);
    if (codec < 0)
        return luaL_error(L, "option codec must be none, snappy, zstd or gzip, got '%s'", codec_name);
    opt_string(L, 3, "created_by", "espipe", &created_by);   /* checked only: the footer names espipe */
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
        return espipe_push_failure(L, "out of memory", "memory");
    }
    fp = fopen(path, "wb");
    if (fp == NULL) {
        char msg[512];
        snprintf(msg, sizeof msg, "cannot open %s: %s", path, strerror(errno));
        release(L, u);
        return espipe_push_failure(L, msg, "io");
    }
    u->nfields = ncols;
    if (pq_writer_init(u->w, fp, &opt, counts.leaves) != 0) {
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
        if (!counts.nested && pq_writer_set_column(u->w, i, lua_tostring(L, -3),
                                                   (pq_kind)pq_kind_from_name(lua_tostring(L, -2))) != 0) {
            release(L, u);
            return espipe_push_failure(L, "out of memory", "memory");
        }
        lua_pop(L, 4);
    }
    if (counts.nested && build_tree(L, u, &counts, tree_msg) != 0) {
        release(L, u);
        return espipe_push_failure(L, tree_msg, "memory");
    }
    if (counts.nested && page_reader(L, u, 4) == NULL) {
        release(L, u);
        return espipe_push_failure(L, "out of memory", "memory");
    }
    lua_settop(L, 5);
    return 1;
}

/* ---- values ---- */

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
            return pq_put_invalid(u->w, c);
        return pq_put_coerced_text(u->w, c, u->text.data, u->text.len);
    }
    return pq_put_invalid(u->w, c);
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
            return pq_put_invalid(w, c);
        return pq_put_bytes(w, c, u->text.data, u->text.len);
    }
    if (t == LUA_TTABLE)
        return is_json_array(L, vi) ? put_array(L, u, c, vi, unwrapped) : pq_put_invalid(w, c);

    switch (t) {
    case LUA_TSTRING:
        s = lua_tolstring(L, vi, &n);
        return pq_put_string_value(w, c, s, n);
    case LUA_TBOOLEAN:
        return pq_put_bool_value(w, c, lua_toboolean(L, vi));
    case LUA_TNUMBER:
#if ESPIPE_HAS_INTEGERS
        if (lua_isinteger(L, vi))
            return pq_put_number_value(w, c, 1, (int64_t)lua_tointeger(L, vi), 0);
#endif
        return pq_put_number_value(w, c, 0, 0, (double)lua_tonumber(L, vi));
    default:
        return pq_put_invalid(w, c);
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

/* Field c's value at vi: a flat leaf directly, a nested field shredded from its JSON text. */
static int put_field(lua_State *L, lwriter *u, size_t c, int vi)
{
    const pq_shred_node *n;
    pq_span v;
    int t;
    if (u->shape == NULL)
        return put_value(L, u, &u->w->cols[c], vi, 0);
    n = &u->shape->nodes[u->shape->roots[c]];
    if (n->kind == PQ_NODE_LEAF)
        return put_value(L, u, &u->w->cols[n->first_col], vi, 0);
    t = lua_type(L, vi);
    if (t == LUA_TNIL || (t == LUA_TLIGHTUSERDATA && lua_touserdata(L, vi) == NULL)) {
        v.start = v.end = NULL;
    } else if (json_text(L, u, vi) != 0) {
        u->w->cols[n->first_col].invalid++;
        v.start = v.end = NULL;
    } else {
        v.start = (const unsigned char *)u->text.data;
        v.end = v.start + u->text.len;
    }
    return pq_shred(u->shape, u->page, u->w, u->shape->roots[c], v);
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
        return espipe_push_failure(L, w->err, "io");
    lua_rawgeti(L, LUA_REGISTRYINDEX, u->keys_ref);
    keys = lua_gettop(L);
    for (i = 1; i <= n; i++) {
        int row;
        lua_rawgeti(L, rows, (int)i);
        row = lua_gettop(L);
        for (c = 0; c < u->nfields; c++) {
            push_field(L, row, keys, &u->paths[c]);
            if (put_field(L, u, c, row + 1) != 0)
                return espipe_push_failure(L, w->err, "memory");
            lua_settop(L, row);
        }
        lua_settop(L, keys);
        if (pq_writer_end_row(w) != 0)
            return espipe_push_failure(L, w->err, "io");
    }
    lua_pushinteger(L, (lua_Integer)n);
    return 1;
}

/* The page reader for u's columns, from the keys table at index keys. NULL: no memory. */
static pq_page_reader *page_reader(lua_State *L, lwriter *u, int keys)
{
    const char **segs;
    size_t *lens, c;
    int maxsegs = 1, j, ok = 1;
    pq_page_reader *r;

    if (u->page != NULL)
        return u->page;
    for (c = 0; c < u->nfields; c++)
        if (u->paths[c].nsegs > maxsegs)
            maxsegs = u->paths[c].nsegs;
    r = pq_page_reader_new(u->nfields);
    segs = malloc((size_t)maxsegs * sizeof *segs);
    lens = malloc((size_t)maxsegs * sizeof *lens);
    /* nothing below raises: the key strings are already in the keys table */
    if (r == NULL || segs == NULL || lens == NULL)
        ok = 0;
    for (c = 0; ok && c < u->nfields; c++) {
        const col_path *p = &u->paths[c];
        for (j = 0; j < p->nsegs; j++) {
            lua_rawgeti(L, keys, p->base + j);
            segs[j] = lua_tolstring(L, -1, &lens[j]);
            lua_pop(L, 1);
        }
        ok = pq_page_reader_set_path(r, c, segs, lens, p->nsegs) == 0;
    }
    free(segs);
    free(lens);
    if (!ok) {
        pq_page_reader_free(r);
        return NULL;
    }
    u->page = r;
    return r;
}

/* The position of the page r just read (search/page_position.h), pushed: 1, or 3 on failure. */
static int push_position(lua_State *L, const pq_page_reader *r, const char *body)
{
    page_position pos;

    pos.hits = pq_page_hits(r);
    pos.pit_id = pq_page_pit_id(r);
    pos.scroll_id = pq_page_scroll_id(r);
    pos.last_sort = pq_page_last_sort(r);
    return page_position_push(L, &pos, body);
}

static int l_write_page(lua_State *L)
{
    lwriter *u = check_writer(L);
    pq_writer *w = u->w;
    pq_page_reader *r;
    char err[ESPIPE_JSON_ERRLEN];
    const char *body;
    size_t len, at = 0;

    page_text(L, 2, "write_page", &body, &len);
    lua_settop(L, 2);
    if (w->failed)
        return espipe_push_failure(L, w->err, "io");
    lua_rawgeti(L, LUA_REGISTRYINDEX, u->keys_ref);
    r = page_reader(L, u, 3);
    if (r == NULL)
        return espipe_push_failure(L, "out of memory", "memory");
    if (pq_page_read(r, body, len, err, &at) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        lua_pushliteral(L, "parse");
        lua_pushinteger(L, (lua_Integer)at + 1);
        return 4;
    }
    /* the position first: a page whose sort values cannot be read writes nothing */
    if (push_position(L, r, body) != 1) {
        lua_pushliteral(L, "parse");
        lua_insert(L, -2);
        return 4;
    }
    if ((u->shape ? pq_shape_write_page(u->shape, r, w) : pq_page_write(r, w)) != 0)
        return espipe_push_failure(L, w->err, "io");
    lua_pushinteger(L, (lua_Integer)pq_page_hits(r));
    lua_insert(L, -2);
    return 2;
}

static void push_int64(lua_State *L, int64_t v)
{
#if ESPIPE_HAS_INTEGERS
    lua_pushinteger(L, (lua_Integer)v);
#else
    lua_pushnumber(L, (lua_Number)v);
#endif
}

/* A counter as push_int64: no count comes near 2^63. */
static void push_count(lua_State *L, uint64_t n)
{
    push_int64(L, (int64_t)n);
}

/* The writer's counters: a method each, and close's result (the names differ for history). */
enum { C_ROWS, C_BYTES, C_ROW_GROUPS, C_FLUSHED, C_METADATA, C_PEAK_BUFFERED, C_BUFFERED };

static const struct {
    const char *method, *result;   /* result NULL: not in close's result */
    int which;
} counters[] = {
    { "rows", "rows", C_ROWS },
    { "bytes_written", "bytes", C_BYTES },
    { "row_groups", "row_groups", C_ROW_GROUPS },
    { "flushed_bytes", "data_bytes", C_FLUSHED },
    /* the footer's row group entries so far: what each row group adds to it */
    { "metadata_bytes", "metadata_bytes", C_METADATA },
    { "peak_buffered_bytes", "peak_buffered_bytes", C_PEAK_BUFFERED },
    { "buffered_bytes", NULL, C_BUFFERED },
};

static uint64_t counter_value(const pq_writer *w, int which)
{
    switch (which) {
    case C_ROWS: return w->rows + w->rg_rows;
    case C_BYTES: return w->offset;
    case C_ROW_GROUPS: return w->row_groups;
    case C_FLUSHED: return w->flushed;
    case C_METADATA: return w->rg_meta.len;
    case C_PEAK_BUFFERED: return w->peak_buffered;
    default: return w->buffered;
    }
}

/* A counter method: its upvalue says which counter. */
static int l_counter(lua_State *L)
{
    push_count(L, counter_value(check_writer(L)->w, (int)lua_tointeger(L, lua_upvalueindex(1))));
    return 1;
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
                return luaL_error(L, "metadata keys and values must be strings");
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, merged);
        }
    }
    return merged;
}

static int key_less(const char *a, size_t an, const char *b, size_t bn)
{
    int r = memcmp(a, b, an < bn ? an : bn);
    return r < 0 || (r == 0 && an < bn);
}

/* By key, so the footer is the same bytes for the same metadata (insertion sort: a few keys). */
static void sort_metadata(const char **keys, size_t *klens, const char **vals, size_t *vlens, size_t n)
{
    size_t i, j;
    for (i = 1; i < n; i++) {
        const char *k = keys[i], *v = vals[i];
        size_t kl = klens[i], vl = vlens[i];
        for (j = i; j > 0 && key_less(k, kl, keys[j - 1], klens[j - 1]); j--) {
            keys[j] = keys[j - 1];
            klens[j] = klens[j - 1];
            vals[j] = vals[j - 1];
            vlens[j] = vlens[j - 1];
        }
        keys[j] = k;
        klens[j] = kl;
        vals[j] = v;
        vlens[j] = vl;
    }
}

/* close's nil, err, "io": the message is copied before the writer it lives in goes. */
static int close_failed(lua_State *L, lwriter *u)
{
    espipe_push_failure(L, u->w->err, "io");
    release(L, u);
    return 3;
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
        return close_failed(L, u);
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
        sort_metadata(keys, klens, vals, vlens, nkv);
        rc = pq_writer_finish(w, keys, klens, vals, vlens, nkv, created_by);
    }
    free(keys);
    free(vals);
    free(klens);
    free(vlens);
    if (rc != 0) {
        return close_failed(L, u);
    }
    lua_newtable(L);
    for (i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        if (counters[i].result != NULL) {
            push_count(L, counter_value(w, counters[i].which));
            lua_setfield(L, -2, counters[i].result);
        }
    }
    push_counts(L, w, 1);
    lua_setfield(L, -2, "invalid");
    push_counts(L, w, 0);
    lua_setfield(L, -2, "coerced");
    release(L, u);
    return 1;
}

static int l_flush(lua_State *L)
{
    pq_writer *w = check_writer(L)->w;
    if (pq_writer_flush(w) != 0)
        return espipe_push_failure(L, w->err, "io");
    lua_pushboolean(L, 1);
    return 1;
}

static int l_measure(lua_State *L)
{
    pq_writer *w = check_writer(L)->w;
    uint64_t n;
    if (pq_writer_measure(w, &n) != 0)
        return espipe_push_failure(L, w->err, "io");
    push_count(L, n);
    return 1;
}

/* The footer if the file were closed now (with open's metadata), less the buffered row group. */
static int l_footer_bytes(lua_State *L)
{
    lwriter *u = check_writer(L);
    size_t n, kv = 0, kl, vl;
    const char *created_by;
    lua_settop(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, u->keys_ref);
    lua_getfield(L, 2, "options");
    lua_getfield(L, 3, "created_by");
    created_by = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "espipe";
    lua_getfield(L, 3, "metadata");
    if (lua_type(L, -1) == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, 5) != 0) {
            /* a KeyValue: two field headers, two lengths, the bytes, a stop */
            if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
                (void)lua_tolstring(L, -2, &kl);
                (void)lua_tolstring(L, -1, &vl);
                kv += kl + vl + 2 * 5 + 3;
            }
            lua_pop(L, 1);
        }
    }
    n = pq_writer_footer_size(u->w, created_by);
    push_count(L, n + kv + 5);
    return 1;
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
    { "write_page", l_write_page },
    { "close", l_close },
    { "counts", l_counts },
    { "footer_bytes", l_footer_bytes },
    { "flush", l_flush },
    { "measure", l_measure },
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
        size_t i;
        espipe_newlib(L, writer_methods);
        for (i = 0; i < sizeof counters / sizeof counters[0]; i++) {
            lua_pushinteger(L, counters[i].which);
            lua_pushcclosure(L, l_counter, 1);
            lua_setfield(L, -2, counters[i].method);
        }
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    espipe_newlib(L, module_functions);
    espipe_open_page_position(L);   /* the scan's reader, from search/ (also in espipe.core) */
    return 1;
}
