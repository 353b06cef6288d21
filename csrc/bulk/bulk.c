/*
** espipe.bulk: builds _bulk NDJSON bodies in C. Table sources are encoded
** straight into the body; raw JSON strings are checked (one line, an object)
** and copied as they are. Every append either completes or leaves the buffer
** exactly as it was, then raises.
*/
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulk.h"
#include "core.h"
#include "json/reader.h"
#include "base/borrowed.h"
#include "base/luanum.h"
#include "routing/routing.h"
#include "time_id.h"

static const char *const op_names[] = { "index", "create", "update", "delete" };

/* Metadata keys Elasticsearch accepts on an action line, in output order. */
enum meta_key {
    M_INDEX, M_ID, M_ROUTING, M_PIPELINE, M_IF_SEQ_NO, M_IF_PRIMARY_TERM, M_VERSION,
    M_VERSION_TYPE, M_REQUIRE_ALIAS, M_RETRY_ON_CONFLICT, M_DYNAMIC_TEMPLATES, M_COUNT
};

static const char *const meta_names[M_COUNT] = {
    "_index", "_id", "routing", "pipeline", "if_seq_no", "if_primary_term", "version",
    "version_type", "require_alias", "retry_on_conflict", "dynamic_templates"
};

#define META_KNOWN "_index, _id, routing, pipeline, if_seq_no, if_primary_term, version, " \
                   "version_type, require_alias, retry_on_conflict, dynamic_templates"

/* Update-body keys, in output order. */
enum upd_key {
    U_DOC, U_DOC_AS_UPSERT, U_SCRIPT, U_LANG, U_PARAMS, U_SCRIPTED_UPSERT, U_UPSERT,
    U_DETECT_NOOP, U_SOURCE, U_COUNT
};

static const char *const upd_names[U_COUNT] = {
    "doc", "doc_as_upsert", "script", "lang", "params", "scripted_upsert", "upsert",
    "detect_noop", "_source"
};

#define UPD_KNOWN "doc, doc_as_upsert, script, lang, params, scripted_upsert, upsert, detect_noop, _source"

/* ---- writing ---------------------------------------------------------- */

#define PUTLIT(b, s) strbuf_append((b), (s), sizeof(s) - 1)

/*
** Strings that need no escaping are copied; the rest go through the JSON
** encoder (the rare path: it pushes the string for it).
*/
static int put_string_bytes(lua_State *L, bulk_buffer *b, const char *str, size_t len, char *err)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i;
    int rc;

    for (i = 0; i < len; i++)
        if (s[i] < 0x20 || s[i] >= 0x7f || s[i] == '"' || s[i] == '\\') {
            lua_pushlstring(L, str, len);
            rc = json_encode_with(L, -1, b->keys, &b->buf, &b->cfg, err);
            lua_pop(L, 1);
            return rc;
        }
    if (strbuf_reserve(&b->buf, len + 2) != 0)
        return -1;
    strbuf_putc_unsafe(&b->buf, '"');
    strbuf_append_unsafe(&b->buf, s, len);
    strbuf_putc_unsafe(&b->buf, '"');
    return 0;
}

/* The string at stack index idx. */
static int put_string(lua_State *L, bulk_buffer *b, int idx, char *err)
{
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);

    return put_string_bytes(L, b, s, len, err);
}

static int put_int(strbuf *out, int64_t v, int quoted)
{
    char tmp[24];
    char *p = tmp + sizeof tmp;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t n;

    if (quoted)
        *--p = '"';
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    if (quoted)
        *--p = '"';
    n = (size_t)(tmp + sizeof tmp - p);
    return strbuf_append(out, p, n);
}

/*
** A table must come out as a JSON object: an empty plain table may encode as
** [] and is rewritten to {}; anything else starting with '[' is an error.
*/
static int put_object(lua_State *L, bulk_buffer *b, int idx, const char *what, char *err)
{
    size_t start = b->buf.len;

    if (json_encode_with(L, idx, b->keys, &b->buf, &b->cfg, err) != 0)
        return -1;
    if (b->buf.data[start] == '{')
        return 0;
    if (b->buf.len - start == 2 && memcmp(b->buf.data + start, "[]", 2) == 0) {
        int marked = lua_getmetatable(L, idx);

        if (marked)
            lua_pop(L, 1);
        else {
            memcpy(b->buf.data + start, "{}", 2);
            return 0;
        }
    }
    snprintf(err, ESPIPE_JSON_ERRLEN, "%s must be a JSON object, but the table encodes as an array", what);
    return -1;
}

/*
** A raw JSON text becomes one NDJSON line as it is, so it may not hold a CR or
** LF byte (legal JSON never needs one outside strings, and inside strings
** they must be escaped) and must look like an object.
*/
static int check_raw_object(const char *s, size_t len, const char *what, char *err)
{
    const char *nl = memchr(s, '\n', len), *cr = memchr(s, '\r', len);
    size_t i, j;

    if (nl != NULL || cr != NULL) {
        const char *first = (nl == NULL) ? cr : (cr == NULL || nl < cr) ? nl : cr;
        snprintf(err, ESPIPE_JSON_ERRLEN, "%s holds a raw %s byte at byte offset %lu (NDJSON needs one line)",
                 what, *first == '\n' ? "newline (\\n)" : "carriage return (\\r)",
                 (unsigned long)(first - s));
        return -1;
    }
    for (i = 0; i < len && (s[i] == ' ' || s[i] == '\t'); i++)
        ;
    for (j = len; j > i && (s[j - 1] == ' ' || s[j - 1] == '\t'); j--)
        ;
    if (i == len) {
        snprintf(err, ESPIPE_JSON_ERRLEN, "%s is an empty string, not a JSON object", what);
        return -1;
    }
    if (s[i] != '{' || s[j - 1] != '}') {
        snprintf(err, ESPIPE_JSON_ERRLEN, "%s is not a JSON object (byte offset %lu is '%c')",
                 what, (unsigned long)(s[i] != '{' ? i : j - 1), s[i] != '{' ? s[i] : s[j - 1]);
        return -1;
    }
    return 0;
}

/* Table -> encoded object; string -> checked raw JSON object. */
static int put_object_or_raw(lua_State *L, bulk_buffer *b, int idx, const char *what, char *err)
{
    size_t len;
    const char *s;

    if (lua_type(L, idx) == LUA_TTABLE)
        return put_object(L, b, idx, what, err);
    s = lua_tolstring(L, idx, &len);
    if (check_raw_object(s, len, what, err) != 0)
        return -1;
    if (strbuf_append(&b->buf, s, len) != 0) {
        snprintf(err, ESPIPE_JSON_ERRLEN, "out of memory");
        return -1;
    }
    return 0;
}

/* ---- argument checks (before anything is written) ----------------------- */

static const char *type_label(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TNUMBER)
        return "a non-integer number";
    return luaL_typename(L, idx);
}

static int find_name(const char *const *names, int n, const char *k, size_t klen)
{
    int i;

    /* Names differ in their first two bytes or length, so this rarely reaches memcmp twice. */
    for (i = 0; i < n; i++)
        if (names[i][0] == k[0] && strlen(names[i]) == klen && memcmp(names[i], k, klen) == 0)
            return i;
    return -1;
}

/* The metadata key named k[0..klen), or -1; "id" and "index" are the client API's "_id" and "_index". */
static int meta_key(const char *k, size_t klen)
{
    int i;

    switch (klen) {
    case 2: return memcmp(k, "id", 2) == 0 ? M_ID : -1;
    case 5: return memcmp(k, "index", 5) == 0 ? M_INDEX : -1;
    case 3: i = M_ID; break;
    case 6: i = M_INDEX; break;
    case 7: i = k[0] == 'r' ? M_ROUTING : M_VERSION; break;
    case 8: i = M_PIPELINE; break;
    case 9: i = M_IF_SEQ_NO; break;
    case 12: i = M_VERSION_TYPE; break;
    case 13: i = M_REQUIRE_ALIAS; break;
    case 15: i = M_IF_PRIMARY_TERM; break;
    case 17: i = k[0] == 'r' ? M_RETRY_ON_CONFLICT : M_DYNAMIC_TEMPLATES; break;
    default: return -1;
    }
    return memcmp(k, meta_names[i], klen) == 0 ? i : -1;
}

/*
** The metadata of one action, read off the meta table: strings by address
** (the table, an argument, keeps them alive while the action is appended),
** numbers and booleans by value; only a dynamic_templates table stays on
** the stack.
*/
typedef struct meta_vals {
    int type[M_COUNT];        /* Lua type of each given value, LUA_TNONE = absent */
    const char *str[M_COUNT]; /* string values */
    size_t len[M_COUNT];
    int64_t num[M_COUNT];     /* integer values (and _id/routing given as integers), booleans */
    int templates;            /* stack index of dynamic_templates */
    int made_id;              /* str[M_ID] is a time id: URL-safe, written without the escape check */
} meta_vals;

#define HAS(m, k) ((m)->type[k] != LUA_TNONE)

static int int_in(lua_State *L, int idx, int64_t *out, int64_t min)
{
    return lua_type(L, idx) == LUA_TNUMBER && espipe_exact_integer(L, idx, out) && *out >= min;
}

/* Checks the value at idx given for key k and records it in m. */
static int take_meta_value(lua_State *L, const char *op, int k, int idx, meta_vals *m)
{
    const char *name = meta_names[k];
    int t = lua_type(L, idx);

    m->type[k] = t;
    switch (k) {
    case M_ID:
    case M_ROUTING:
        if (t == LUA_TSTRING) {
            m->str[k] = lua_tolstring(L, idx, &m->len[k]);
            if (m->len[k] == 0)
                return luaL_error(L, "bulk %s: %s must not be empty", op, name);
            return 0;
        }
        if (t == LUA_TNUMBER && espipe_exact_integer(L, idx, &m->num[k]))
            return 0;
        return luaL_error(L, "bulk %s: %s must be a non-empty string or an integer, got %s", op, name,
                          type_label(L, idx));
        return 0;
    case M_INDEX:
    case M_PIPELINE:
    case M_VERSION_TYPE:
        if (t == LUA_TSTRING)
            m->str[k] = lua_tolstring(L, idx, &m->len[k]);
        if (t != LUA_TSTRING || m->len[k] == 0)
            return luaL_error(L, "bulk %s: %s must be a non-empty string, got %s", op, name,
                              t == LUA_TSTRING ? "an empty string" : luaL_typename(L, idx));
        return 0;
    case M_IF_SEQ_NO:
    case M_VERSION:
    case M_RETRY_ON_CONFLICT:
        if (!int_in(L, idx, &m->num[k], 0))
            return luaL_error(L, "bulk %s: %s must be a non-negative integer, got %s", op, name,
                              t == LUA_TNUMBER ? "a negative or non-integer number" : luaL_typename(L, idx));
        return 0;
    case M_IF_PRIMARY_TERM:
        if (!int_in(L, idx, &m->num[k], 1))
            return luaL_error(L, "bulk %s: %s must be a positive integer, got %s", op, name,
                              t == LUA_TNUMBER ? "a non-positive or non-integer number" : luaL_typename(L, idx));
        return 0;
    case M_REQUIRE_ALIAS:
        if (t != LUA_TBOOLEAN)
            return luaL_error(L, "bulk %s: require_alias must be a boolean, got %s", op, luaL_typename(L, idx));
        m->num[k] = lua_toboolean(L, idx);
        return 0;
    case M_DYNAMIC_TEMPLATES:
        if (t != LUA_TTABLE)
            return luaL_error(L, "bulk %s: dynamic_templates must be a table (field -> template name), got %s",
                              op, luaL_typename(L, idx));
        return 0;
    }
    return 0;
}

/*
** Reads the metadata (one pass of lua_next) and checks the values and their
** combinations the way Elasticsearch would reject them.
*/
static int collect_meta(lua_State *L, int op, int meta, meta_vals *m)
{
    const char *opn = op_names[op];
    int k;

    for (k = 0; k < M_COUNT; k++)
        m->type[k] = LUA_TNONE;
    m->made_id = 0;
    if (lua_type(L, meta) == LUA_TNIL || lua_type(L, meta) == LUA_TNONE) {
        if (op == BULK_UPDATE || op == BULK_DELETE)
            return luaL_error(L, "bulk %s: metadata with _id is required", opn);
        return 0;
    }
    if (lua_type(L, meta) != LUA_TTABLE)
        return luaL_error(L, "bulk %s: metadata must be a table, got %s", opn, luaL_typename(L, meta));
    luaL_checkstack(L, 4, "bulk metadata");
    lua_pushnil(L);
    while (lua_next(L, meta) != 0) {
        size_t klen;
        const char *key;

        if (lua_type(L, -2) != LUA_TSTRING)
            return luaL_error(L, "bulk %s: metadata keys must be strings, got a %s key", opn, luaL_typename(L, -2));
        key = lua_tolstring(L, -2, &klen);
        k = meta_key(key, klen);
        if (k < 0)
            return luaL_error(L, "bulk %s: unknown metadata key '%s' (known: " META_KNOWN ")", opn, key);
        if (HAS(m, k))
            return luaL_error(L, "bulk %s: metadata has both %s and its alias", opn, meta_names[k]);
        take_meta_value(L, opn, k, lua_gettop(L), m);
        if (k == M_DYNAMIC_TEMPLATES) {
            lua_insert(L, -2); /* kept below the key, which lua_next needs on top */
            m->templates = lua_gettop(L) - 1;
        } else {
            lua_pop(L, 1);
        }
    }

    if ((op == BULK_UPDATE || op == BULK_DELETE) && !HAS(m, M_ID))
        return luaL_error(L, "bulk %s: _id is required", opn);
    if (op == BULK_UPDATE && (HAS(m, M_VERSION) || HAS(m, M_VERSION_TYPE)))
        return luaL_error(L, "bulk update: version/version_type are not supported on updates; "
                             "use if_seq_no and if_primary_term");
    if (op != BULK_UPDATE && HAS(m, M_RETRY_ON_CONFLICT))
        return luaL_error(L, "bulk %s: retry_on_conflict applies to update only", opn);
    if ((op == BULK_UPDATE || op == BULK_DELETE) && HAS(m, M_DYNAMIC_TEMPLATES))
        return luaL_error(L, "bulk %s: dynamic_templates applies to index and create only", opn);
    if (op == BULK_DELETE && HAS(m, M_PIPELINE))
        return luaL_error(L, "bulk delete: pipeline does not apply to delete");
    if (!HAS(m, M_IF_SEQ_NO) != !HAS(m, M_IF_PRIMARY_TERM))
        return luaL_error(L, "bulk %s: if_seq_no and if_primary_term must be given together", opn);
    if (HAS(m, M_VERSION_TYPE)) {
        /* a Lua string is NUL-terminated, so the C string functions apply */
        const char *vt = m->str[M_VERSION_TYPE];
        int internal = strcmp(vt, "internal") == 0;

        if (!internal && strcmp(vt, "external") != 0 && strcmp(vt, "external_gt") != 0
            && strcmp(vt, "external_gte") != 0)
            return luaL_error(L, "bulk %s: version_type must be internal, external, external_gt or "
                                 "external_gte, got '%s'", opn, vt);
        if (!internal && !HAS(m, M_VERSION))
            return luaL_error(L, "bulk %s: version_type %s needs a version", opn, vt);
        if (!internal && op == BULK_CREATE)
            return luaL_error(L, "bulk create: create supports only internal versioning; use index");
        if (internal && HAS(m, M_VERSION))
            return luaL_error(L, "bulk %s: internal versioning cannot be used for optimistic concurrency "
                                 "control; use if_seq_no and if_primary_term", opn);
    } else if (HAS(m, M_VERSION)) {
        return luaL_error(L, "bulk %s: version needs version_type external or external_gte "
                             "(internal versioning cannot be used for concurrency control)", opn);
    }
    if (HAS(m, M_VERSION) && HAS(m, M_IF_SEQ_NO))
        return luaL_error(L, "bulk %s: version and if_seq_no cannot be combined", opn);
    return 0;
}

typedef struct upd_vals {
    int slot[U_COUNT];
} upd_vals;

static int collect_update(lua_State *L, int body, upd_vals *u)
{
    int k;

    for (k = 0; k < U_COUNT; k++)
        u->slot[k] = 0;
    luaL_checkstack(L, U_COUNT + 4, "bulk update body");
    lua_pushnil(L);
    while (lua_next(L, body) != 0) {
        size_t klen;
        const char *key;
        int t = lua_type(L, -1), ok = 1;

        if (lua_type(L, -2) != LUA_TSTRING)
            return luaL_error(L, "bulk update: body keys must be strings, got a %s key", luaL_typename(L, -2));
        key = lua_tolstring(L, -2, &klen);
        k = find_name(upd_names, U_COUNT, key, klen);
        if (k < 0)
            return luaL_error(L, "bulk update: unknown body key '%s' (known: " UPD_KNOWN ")", key);
        switch (k) {
        case U_DOC: case U_UPSERT: ok = t == LUA_TTABLE || t == LUA_TSTRING; break;
        case U_DOC_AS_UPSERT: case U_SCRIPTED_UPSERT: case U_DETECT_NOOP: ok = t == LUA_TBOOLEAN; break;
        case U_SCRIPT: ok = t == LUA_TTABLE || t == LUA_TSTRING; break;
        case U_LANG: ok = t == LUA_TSTRING; break;
        case U_PARAMS: ok = t == LUA_TTABLE; break;
        case U_SOURCE: ok = t == LUA_TTABLE || t == LUA_TSTRING || t == LUA_TBOOLEAN; break;
        }
        if (!ok) {
            static const char *const want[U_COUNT] = {
                "a table or a raw JSON object string", "a boolean", "a string (the script source) or a table",
                "a string", "a table", "a boolean", "a table or a raw JSON object string", "a boolean",
                "a boolean, a string or a table"
            };
            return luaL_error(L, "bulk update: %s must be %s, got %s", upd_names[k], want[k], luaL_typename(L, -1));
        }
        lua_insert(L, -2);
        u->slot[k] = lua_gettop(L) - 1;
    }
    if (!u->slot[U_DOC] == !u->slot[U_SCRIPT])
        return luaL_error(L, "bulk update: the body needs exactly one of doc or script");
    if (u->slot[U_DOC_AS_UPSERT] && !u->slot[U_DOC])
        return luaL_error(L, "bulk update: doc_as_upsert needs doc");
    if (u->slot[U_SCRIPTED_UPSERT] && !u->slot[U_SCRIPT])
        return luaL_error(L, "bulk update: scripted_upsert needs script");
    if ((u->slot[U_LANG] || u->slot[U_PARAMS])
        && !(u->slot[U_SCRIPT] && lua_type(L, u->slot[U_SCRIPT]) == LUA_TSTRING))
        return luaL_error(L, "bulk update: lang and params go with a string script; "
                             "put them inside a script table instead");
    return 0;
}

/* ---- appending ---------------------------------------------------------- */

/*
** The methods carry the metatable as upvalue 1: comparing against it is
** cheaper than luaL_checkudata's registry lookup by name on every append.
*/
static bulk_buffer *check_self(lua_State *L, int idx)
{
    void *p = lua_touserdata(L, idx);

    if (p != NULL && lua_getmetatable(L, idx)) {
        int same = lua_rawequal(L, -1, lua_upvalueindex(1));

        lua_pop(L, 1);
        if (same)
            return (bulk_buffer *)p;
    }
    return bulk_check(L, idx); /* raises the usual "espipe.bulk expected" */
}

static int check_mutable(lua_State *L, bulk_buffer *b)
{
    if (b->pins > 0)
        return luaL_error(L, "bulk buffer is in flight (pinned by a transport); it cannot change until the request completes");
    return 0;
}

static int reserve_item(lua_State *L, bulk_buffer *b)
{
    if (bulk_reserve_item(b) != 0)
        return luaL_error(L, "bulk: out of memory");
    return 0;
}

static int write_action(lua_State *L, bulk_buffer *b, int op, const meta_vals *m, char *err)
{
    int first = 1, k;
    size_t oplen = strlen(op_names[op]);

    if (strbuf_reserve(&b->buf, oplen + 6) != 0)
        return -1;
    strbuf_append_unsafe(&b->buf, "{\"", 2);
    strbuf_append_unsafe(&b->buf, op_names[op], oplen);
    strbuf_append_unsafe(&b->buf, "\":{", 3);
    for (k = 0; k < M_COUNT; k++) {
        int rc = 0;

        if (k == M_INDEX + 1 && bulk_put_type(b, &first) != 0)
            return -1;
        if (!HAS(m, k))
            continue;
        if (bulk_put_key(&b->buf, meta_names[k], &first) != 0)
            return -1;
        /* LUA_TNONE (never the type of a given value) stands for a made id */
        switch (k == M_ID && m->made_id ? LUA_TNONE : m->type[k]) {
        case LUA_TNONE:
            rc = strbuf_reserve(&b->buf, ESPIPE_TIME_ID_LEN + 2);
            if (rc == 0) {
                strbuf_putc_unsafe(&b->buf, '"');
                strbuf_append_unsafe(&b->buf, m->str[k], ESPIPE_TIME_ID_LEN);
                strbuf_putc_unsafe(&b->buf, '"');
            }
            break;
        case LUA_TSTRING: rc = put_string_bytes(L, b, m->str[k], m->len[k], err); break;
        case LUA_TNUMBER: rc = put_int(&b->buf, m->num[k], k == M_ID || k == M_ROUTING); break;
        case LUA_TBOOLEAN: rc = m->num[k] ? PUTLIT(&b->buf, "true") : PUTLIT(&b->buf, "false"); break;
        default: rc = put_object(L, b, m->templates, "dynamic_templates", err); break;
        }
        if (rc != 0)
            return -1;
    }
    return PUTLIT(&b->buf, "}}\n");
}

static int write_update_body(lua_State *L, bulk_buffer *b, const upd_vals *u, char *err)
{
    int first = 1, k;

    if (strbuf_putc(&b->buf, '{') != 0)
        return -1;
    for (k = 0; k < U_COUNT; k++) {
        int idx = u->slot[k], rc;

        if (idx == 0 || k == U_LANG || k == U_PARAMS)
            continue;
        if (bulk_put_key(&b->buf, upd_names[k], &first) != 0)
            return -1;
        switch (k) {
        case U_DOC: case U_UPSERT:
            rc = put_object_or_raw(L, b, idx, upd_names[k], err);
            break;
        case U_SCRIPT:
            if (lua_type(L, idx) == LUA_TTABLE) {
                rc = put_object(L, b, idx, "script", err);
                break;
            }
            rc = PUTLIT(&b->buf, "{\"source\":");
            if (rc == 0) rc = put_string(L, b, idx, err);
            if (rc == 0 && u->slot[U_LANG]) {
                rc = PUTLIT(&b->buf, ",\"lang\":");
                if (rc == 0) rc = put_string(L, b, u->slot[U_LANG], err);
            }
            if (rc == 0 && u->slot[U_PARAMS]) {
                rc = PUTLIT(&b->buf, ",\"params\":");
                if (rc == 0) rc = put_object(L, b, u->slot[U_PARAMS], "params", err);
            }
            if (rc == 0) rc = strbuf_putc(&b->buf, '}');
            break;
        case U_SOURCE:
            if (lua_type(L, idx) == LUA_TBOOLEAN)
                rc = lua_toboolean(L, idx) ? PUTLIT(&b->buf, "true") : PUTLIT(&b->buf, "false");
            else if (lua_type(L, idx) == LUA_TSTRING)
                rc = put_string(L, b, idx, err);
            else
                rc = json_encode_with(L, idx, b->keys, &b->buf, &b->cfg, err);
            break;
        default: /* the booleans */
            rc = lua_toboolean(L, idx) ? PUTLIT(&b->buf, "true") : PUTLIT(&b->buf, "false");
            break;
        }
        if (rc != 0)
            return -1;
    }
    return strbuf_putc(&b->buf, '}');
}

/*
** add(b, op, meta, source): checks everything that can be checked up front,
** then writes; a failure while writing restores the saved length.
*/
static int append(lua_State *L, bulk_buffer *b, int op, int meta, int src)
{
    meta_vals m;
    upd_vals u;
    char err[ESPIPE_JSON_ERRLEN];
    char id[ESPIPE_TIME_ID_LEN];
    size_t start = b->buf.len, src_start = 0;
    int top, st, rc, auto_id = 0;
    bulk_item *it;

    /* A missing source becomes nil in its slot, so metadata values pushed later never alias it. */
    lua_settop(L, src);
    top = src;
    st = lua_type(L, src);
    check_mutable(L, b);
    collect_meta(L, op, meta, &m);
    if (op == BULK_DELETE) {
        if (st != LUA_TNONE && st != LUA_TNIL)
            return luaL_error(L, "bulk delete: takes no source");
    } else if (st != LUA_TTABLE && st != LUA_TSTRING) {
        return luaL_error(L, "bulk %s: %s must be a table or a raw JSON string, got %s", op_names[op],
                          op == BULK_UPDATE ? "the update body" : "the source", luaL_typename(L, src));
    } else if (op == BULK_UPDATE && st == LUA_TTABLE) {
        collect_update(L, src, &u);
    }
    reserve_item(L, b);
    if (b->auto_ids && (op == BULK_INDEX || op == BULK_CREATE) && !HAS(&m, M_ID)) {
        espipe_time_id(id);
        m.type[M_ID] = LUA_TSTRING;
        m.str[M_ID] = id;
        m.len[M_ID] = sizeof id;
        m.made_id = auto_id = 1;
    }

    err[0] = '\0';
    rc = write_action(L, b, op, &m, err);
    if (rc == 0 && op != BULK_DELETE) {
        src_start = b->buf.len;
        if (op == BULK_UPDATE && st == LUA_TTABLE)
            rc = write_update_body(L, b, &u, err);
        else
            rc = put_object_or_raw(L, b, src, op == BULK_UPDATE ? "the update body" : "the source", err);
        if (rc == 0)
            rc = strbuf_putc(&b->buf, '\n');
    }
    if (rc != 0) {
        b->buf.len = start;
        lua_settop(L, top);
        return luaL_error(L, "bulk %s: %s", op_names[op], err[0] ? err : "out of memory");
    }
    it = &b->items[b->count++];
    it->offset = start;
    it->op = op;
    it->auto_id = auto_id;
    if (op == BULK_DELETE) {
        it->action_len = b->buf.len - start;
        it->source_len = 0;
    } else {
        it->action_len = src_start - start;
        it->source_len = b->buf.len - src_start;
    }
    lua_settop(L, top);
    return 0;
}

static int l_index(lua_State *L)  { append(L, check_self(L, 1), BULK_INDEX, 2, 3); lua_settop(L, 1); return 1; }
static int l_create(lua_State *L) { append(L, check_self(L, 1), BULK_CREATE, 2, 3); lua_settop(L, 1); return 1; }
static int l_update(lua_State *L) { append(L, check_self(L, 1), BULK_UPDATE, 2, 3); lua_settop(L, 1); return 1; }
static int l_delete(lua_State *L) { append(L, check_self(L, 1), BULK_DELETE, 2, 3); lua_settop(L, 1); return 1; }

static int check_op(lua_State *L, int idx)
{
    size_t len;
    const char *s;
    int op;

    if (lua_type(L, idx) != LUA_TSTRING)
        return luaL_argerror(L, idx, "action must be index, create, update or delete");
    s = lua_tolstring(L, idx, &len);
    op = find_name(op_names, 4, s, len);
    if (op < 0)
        return luaL_error(L, "bulk: unknown action '%s' (index, create, update or delete)", s);
    return op;
}

/* b:add(action, meta, source) */
static int l_add(lua_State *L)
{
    bulk_buffer *b = check_self(L, 1);

    append(L, b, check_op(L, 2), 3, 4);
    lua_settop(L, 1);
    return 1;
}

static int push_size(lua_State *L, const bulk_buffer *b)
{
    lua_pushinteger(L, (lua_Integer)b->count);
    lua_pushinteger(L, (lua_Integer)b->buf.len);
    return 2;
}

/* b:put(action, meta, source) -> count, bytes: add() for a caller that batches by size */
static int l_put(lua_State *L)
{
    bulk_buffer *b = check_self(L, 1);

    append(L, b, check_op(L, 2), 3, 4);
    return push_size(L, b);
}

/* The action name of a pre-built action line: the first key of the object. */
static int raw_op(const char *s, size_t len)
{
    size_t i = 0, j;

    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i < len && s[i] == '{')
        i++;
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i >= len || s[i] != '"')
        return -1;
    for (j = ++i; j < len && s[j] != '"'; j++)
        ;
    return j < len ? find_name(op_names, 4, s + i, j - i) : -1;
}

/* "_id":"<id>", : the most an id adds to a raw action line */
#define RAW_ID_BYTES (7 + ESPIPE_TIME_ID_LEN + 2)

static size_t skip_blanks(const char *s, size_t i, size_t len)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return i;
}

/*
** Where an _id goes in a raw action line without one: just after the '{'
** of its metadata object; 0 when it has an "_id" already or its shape is
** not the plain {"op":{...}} (then the line is sent as it is).
*/
static size_t raw_id_slot(const char *s, size_t len)
{
    size_t i = skip_blanks(s, 0, len), k;

    if (i >= len || s[i] != '{')
        return 0;
    i = skip_blanks(s, i + 1, len);
    if (i >= len || s[i] != '"')
        return 0;
    for (i++; i < len && s[i] != '"'; i++)
        ;
    i = skip_blanks(s, i + 1, len);
    if (i >= len || s[i] != ':')
        return 0;
    i = skip_blanks(s, i + 1, len);
    if (i >= len || s[i] != '{')
        return 0;
    for (k = i; k + 5 <= len; k++)
        if (memcmp(s + k, "\"_id\"", 5) == 0)
            return 0;
    return i + 1;
}

/* Whether s (what follows the metadata object's '{') starts with its '}'. */
static int object_closes(const char *s, size_t len)
{
    size_t i = skip_blanks(s, 0, len);

    return i < len && s[i] == '}';
}

/*
** b:raw(action_line, [source]) -> count, bytes: a pre-built action line (one
** JSON object whose key is the action), then the source as for index/create.
*/
static int l_raw(lua_State *L)
{
    bulk_buffer *b = check_self(L, 1);
    char err[ESPIPE_JSON_ERRLEN];
    size_t alen, start = b->buf.len, src_start;
    const char *action;
    int op, st, rc;
    size_t idat;
    bulk_item *it;

    lua_settop(L, 3);
    check_mutable(L, b);
    if (lua_type(L, 2) != LUA_TSTRING)
        return luaL_error(L, "bulk raw: the action line must be a string, got %s", luaL_typename(L, 2));
    action = lua_tolstring(L, 2, &alen);
    if (check_raw_object(action, alen, "the action line", err) != 0)
        return luaL_error(L, "bulk raw: %s", err);
    op = raw_op(action, alen);
    if (op < 0)
        return luaL_error(L, "bulk raw: the action line must start with {\"index\", {\"create\", {\"update\" or {\"delete\"");
    st = lua_type(L, 3);
    if (op == BULK_DELETE && st != LUA_TNIL)
        return luaL_error(L, "bulk raw: a delete action takes no source");
    if (op != BULK_DELETE && st != LUA_TTABLE && st != LUA_TSTRING)
        return luaL_error(L, "bulk raw: the action %s needs a source (a table or a raw JSON string), got %s",
                          op_names[op], luaL_typename(L, 3));
    reserve_item(L, b);
    err[0] = '\0';
    idat = b->auto_ids && (op == BULK_INDEX || op == BULK_CREATE) ? raw_id_slot(action, alen) : 0;
    rc = strbuf_reserve(&b->buf, alen + 1 + (idat ? RAW_ID_BYTES : 0));
    if (rc == 0 && idat) {
        /* {"index":{  +  "_id":"<20>"  +  , (unless the object is empty)  +  the rest */
        strbuf_append_unsafe(&b->buf, action, idat);
        strbuf_append_unsafe(&b->buf, "\"_id\":\"", 7);
        espipe_time_id(b->buf.data + b->buf.len);
        b->buf.len += ESPIPE_TIME_ID_LEN;
        strbuf_putc_unsafe(&b->buf, '"');
        if (!object_closes(action + idat, alen - idat))
            strbuf_putc_unsafe(&b->buf, ',');
        strbuf_append_unsafe(&b->buf, action + idat, alen - idat);
        strbuf_putc_unsafe(&b->buf, '\n');
    } else if (rc == 0) {
        strbuf_append_unsafe(&b->buf, action, alen);
        strbuf_putc_unsafe(&b->buf, '\n');
    }
    src_start = b->buf.len;
    if (rc == 0 && op != BULK_DELETE) {
        rc = put_object_or_raw(L, b, 3, "the source", err);
        if (rc == 0)
            rc = strbuf_putc(&b->buf, '\n');
    }
    if (rc != 0) {
        b->buf.len = start;
        return luaL_error(L, "bulk raw: %s", err[0] ? err : "out of memory");
    }
    it = &b->items[b->count++];
    it->offset = start;
    it->op = op;
    it->auto_id = idat != 0;
    it->action_len = src_start - start;
    it->source_len = b->buf.len - src_start;
    return push_size(L, b);
}

/* ---- reading and reshaping ----------------------------------------------- */

static bulk_buffer *push_new(lua_State *L, const json_encode_cfg *cfg, int auto_ids)
{
    bulk_buffer *b = (bulk_buffer *)espipe_newuserdata(L, sizeof *b);

    strbuf_init(&b->buf);
    b->count = 0;
    b->items = NULL;
    b->items_cap = 0;
    b->pins = 0;
    b->auto_ids = auto_ids;
    b->cfg = *cfg;
    b->keys = json_context(L);
    b->doc_type_len = 0;
    luaL_getmetatable(L, ESPIPE_BULK_MT);
    lua_setmetatable(L, -2);
    return b;
}

/* A buffer made from b's items writes new actions as b does. */
static void same_type(bulk_buffer *nb, const bulk_buffer *b)
{
    memcpy(nb->doc_type, b->doc_type, b->doc_type_len);
    nb->doc_type_len = b->doc_type_len;
}

/* Appends item i (0-based) of src to dst; dst has room for it in items (nothing can fail after). */
static void copy_item(bulk_buffer *dst, const bulk_buffer *src, size_t i)
{
    const bulk_item *from = &src->items[i];
    bulk_item *to = &dst->items[dst->count++];

    *to = *from;
    to->offset = dst->buf.len;
    strbuf_append_unsafe(&dst->buf, src->buf.data + from->offset, from->action_len + from->source_len);
}

/* Room in dst for n more items of total size bytes, or raise (dst unchanged). */
static int reserve_copy(lua_State *L, bulk_buffer *dst, size_t n, size_t bytes)
{
    if (dst->items_cap - dst->count < n) {
        size_t cap = dst->count + n;
        bulk_item *p;

        p = cap > SIZE_MAX / sizeof *p ? NULL : realloc(dst->items, cap * sizeof *p);
        if (p == NULL)
            return luaL_error(L, "bulk: out of memory");
        dst->items = p;
        dst->items_cap = cap;
    }
    if (strbuf_reserve(&dst->buf, bytes) != 0)
        return luaL_error(L, "bulk: out of memory");
    return 0;
}

static size_t item_size(const bulk_buffer *b, size_t i)
{
    return b->items[i].action_len + b->items[i].source_len;
}

static size_t check_pos(lua_State *L, const bulk_buffer *b, int idx, const char *what)
{
    int64_t i = 0;

    if (lua_type(L, idx) != LUA_TNUMBER || !espipe_exact_integer(L, idx, &i))
        return luaL_error(L, "bulk: %s must be an integer, got %s", what, type_label(L, idx));
    if (i < 1 || (uint64_t)i > b->count)
        return luaL_error(L, "bulk: %s %d is out of range (the buffer holds %d actions)", what, (int)i, (int)b->count);
    return (size_t)(i - 1);
}

/* b:item(i) -> action line, source line (nil for delete), action name; lines without '\n' */
static int l_item(lua_State *L)
{
    bulk_buffer *b = check_self(L, 1);
    size_t i = check_pos(L, b, 2, "position");
    const bulk_item *it = &b->items[i];

    lua_pushlstring(L, b->buf.data + it->offset, it->action_len - 1);
    if (it->source_len)
        lua_pushlstring(L, b->buf.data + it->offset + it->action_len, it->source_len - 1);
    else
        lua_pushnil(L);
    lua_pushstring(L, op_names[it->op]);
    return 3;
}

/* b:auto_id(i) -> whether the builder made item i's _id (so a 409 on its create was our own earlier attempt) */
static int l_auto_id(lua_State *L)
{
    bulk_buffer *b = check_self(L, 1);
    size_t i = check_pos(L, b, 2, "position");

    lua_pushboolean(L, b->items[i].auto_id);
    return 1;
}

/* b:span(i) -> 0-based byte offset of item i in the body, its length (action + source lines) */
static int l_span(lua_State *L)
{
    bulk_buffer *b = check_self(L, 1);
    size_t i = check_pos(L, b, 2, "position");

    lua_pushinteger(L, (lua_Integer)b->items[i].offset);
    lua_pushinteger(L, (lua_Integer)item_size(b, i));
    return 2;
}

/* b:slice(i, j) -> new buffer with items i..j (inclusive) */
static int l_slice(lua_State *L)
{
    bulk_buffer *b = check_self(L, 1), *nb;
    size_t i = check_pos(L, b, 2, "start"), j = check_pos(L, b, 3, "end"), k;

    if (j < i)
        return luaL_error(L, "bulk: slice end %d is before start %d", (int)j + 1, (int)i + 1);
    nb = push_new(L, &b->cfg, b->auto_ids);
    same_type(nb, b);
    reserve_copy(L, nb, j - i + 1,
                 b->items[j].offset + item_size(b, j) - b->items[i].offset);
    for (k = i; k <= j; k++)
        copy_item(nb, b, k);
    return 1;
}

/* b:split() -> first half, second half (for a 413: each half is sent on its own) */
static int l_split(lua_State *L)
{
    bulk_buffer *b = check_self(L, 1), *half;
    size_t mid, k, lo, hi;
    int h;

    if (b->count < 2)
        return luaL_error(L, "bulk: cannot split a buffer of %d action(s)", (int)b->count);
    mid = b->count / 2;
    for (h = 0; h < 2; h++) {
        lo = h == 0 ? 0 : mid;
        hi = h == 0 ? mid : b->count;
        half = push_new(L, &b->cfg, b->auto_ids);
        same_type(half, b);
        reserve_copy(L, half, hi - lo,
                     (hi == b->count ? b->buf.len : b->items[hi].offset) - b->items[lo].offset);
        for (k = lo; k < hi; k++)
            copy_item(half, b, k);
    }
    return 2;
}

/* b:subset{ i, j, ... } -> new buffer with those items, in that order */
static int l_subset(lua_State *L)
{
    bulk_buffer *b = check_self(L, 1), *nb;
    size_t n, k, bytes = 0;

    luaL_checktype(L, 2, LUA_TTABLE);
    n = espipe_rawlen(L, 2);
    for (k = 1; k <= n; k++) {
        lua_rawgeti(L, 2, (int)k);
        bytes += item_size(b, check_pos(L, b, -1, "position"));
        lua_pop(L, 1);
    }
    nb = push_new(L, &b->cfg, b->auto_ids);
    same_type(nb, b);
    reserve_copy(L, nb, n, bytes);
    for (k = 1; k <= n; k++) {
        int64_t i = 0;

        lua_rawgeti(L, 2, (int)k);
        espipe_exact_integer(L, -1, &i);
        lua_pop(L, 1);
        copy_item(nb, b, (size_t)(i - 1));
    }
    return 1;
}

/* b:append_from(src, i) -> b, with item i of src appended (re-queueing a retryable item) */
static int l_append_from(lua_State *L)
{
    bulk_buffer *b = check_self(L, 1), *src = check_self(L, 2);
    size_t i = check_pos(L, src, 3, "position");

    check_mutable(L, b);
    reserve_copy(L, b, 1, item_size(src, i));
    copy_item(b, src, i);
    lua_settop(L, 1);
    return 1;
}

static int l_body(lua_State *L)
{
    bulk_buffer *b = check_self(L, 1);

    lua_pushlstring(L, b->buf.data ? b->buf.data : "", b->buf.len);
    return 1;
}

static int l_count(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)check_self(L, 1)->count);
    return 1;
}

static int l_bytes(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)check_self(L, 1)->buf.len);
    return 1;
}

/* b:capacity() -> bytes allocated for the body (kept across reset) */
static int l_capacity(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)check_self(L, 1)->buf.cap);
    return 1;
}

/* b:reset([release]) empties the buffer, keeping its memory unless release is true */
static int l_reset(lua_State *L)
{
    bulk_buffer *b = check_self(L, 1);

    check_mutable(L, b);
    b->buf.len = 0;
    b->count = 0;
    if (lua_toboolean(L, 2)) {
        strbuf_free(&b->buf);
        free(b->items);
        b->items = NULL;
        b->items_cap = 0;
    }
    lua_settop(L, 1);
    return 1;
}

static int l_gc(lua_State *L)
{
    bulk_buffer *b = (bulk_buffer *)luaL_checkudata(L, 1, ESPIPE_BULK_MT);

    strbuf_free(&b->buf);
    free(b->items);
    b->items = NULL;
    b->items_cap = b->count = 0;
    return 0;
}

static int l_tostring(lua_State *L)
{
    bulk_buffer *b = check_self(L, 1);

    lua_pushfstring(L, "espipe.bulk (%d actions, %d bytes)", (int)b->count, (int)b->buf.len);
    return 1;
}

/*
** b:sort_by_shard(params | shards, rotation [, want_order [, routing]]) -> distinct shards [, order]
**
** Reorders the items by destination shard with a counting sort of their
** positions (stable within a shard): params = { shards =, routing_shards =,
** func =, partition_size = } routes each item by the _id / routing of its
** action line (as espipe.routing does; routing: the value for an action
** without one, the request's default); shards = { s1, s2, ... } gives them
** (0-based, nil: unrouted). Shards come in ascending order starting at the
** (rotation mod count)-th one present, so workers given different rotations
** do not start on the same shard; unrouted items go last, in their order.
** With want_order, order[k] = the position item k had before (1-based), so
** a caller can carry what it keeps beside the positions along.
** Every check happens before the body moves: on failure the buffer is as
** it was.
*/
#define SORT_MAX_SHARDS 1048576

/* A value of the action line's metadata: a string's bytes between its quotes (esc: holds a backslash) or a number's text. */
typedef struct meta_text {
    const char *s;
    size_t len;
    int esc;
} meta_text;

/* The index just after the string opening at s[i], or len when it does not close. */
static size_t string_end(const char *s, size_t i, size_t len, int *esc)
{
    for (i++; i < len; i++) {
        if (s[i] == '\\')
            *esc = 1, i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return len;
}

/* The index just after the value starting at s[i] (a string, number, literal, object or array). */
static size_t value_end(const char *s, size_t i, size_t len)
{
    int depth = 0, esc = 0;

    while (i < len) {
        char c = s[i];

        if (c == '"') {
            i = string_end(s, i, len, &esc);
            if (depth == 0)
                return i;
            continue;
        }
        if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return i;
            if (--depth == 0)
                return i + 1;
        } else if (c == ',' && depth == 0) {
            return i;
        }
        i++;
    }
    return len;
}

static void take_meta_text(const char *s, size_t i, size_t end, meta_text *t)
{
    int esc = 0;

    if (s[i] == '"') {
        if (string_end(s, i, end, &esc) != end)
            return;   /* not a plain string value */
        t->s = s + i + 1, t->len = end - i - 2, t->esc = esc;
    } else if (s[i] == '-' || (s[i] >= '0' && s[i] <= '9')) {
        while (end > i && (s[end - 1] == ' ' || s[end - 1] == '\t'))
            end--;
        t->s = s + i, t->len = end - i, t->esc = 0;
    }
}

/* The _id, routing and _index of an action line {"op":{...}} (s->NULL when absent or null). */
static void action_meta(const char *s, size_t len, meta_text *id, meta_text *routing, meta_text *index)
{
    size_t i = skip_blanks(s, 0, len), k, end;
    int esc = 0;

    id->s = routing->s = index->s = NULL;
    if (i >= len || s[i] != '{')
        return;
    i = skip_blanks(s, i + 1, len);
    if (i >= len || s[i] != '"')
        return;
    i = skip_blanks(s, string_end(s, i, len, &esc), len);
    if (i >= len || s[i] != ':')
        return;
    i = skip_blanks(s, i + 1, len);
    if (i >= len || s[i] != '{')
        return;
    for (i = skip_blanks(s, i + 1, len); i < len && s[i] == '"'; i = skip_blanks(s, i + 1, len)) {
        k = i;
        i = skip_blanks(s, string_end(s, i, len, &esc), len);
        if (i >= len || s[i] != ':')
            return;
        i = skip_blanks(s, i + 1, len);
        end = value_end(s, i, len);
        if (i >= end)
            return;
        if (len - k >= 5 && memcmp(s + k, "\"_id\"", 5) == 0)
            take_meta_text(s, i, end, id);
        else if (len - k >= 9 && memcmp(s + k, "\"routing\"", 9) == 0)
            take_meta_text(s, i, end, routing);
        else if (len - k >= 8 && memcmp(s + k, "\"_index\"", 8) == 0)
            take_meta_text(s, i, end, index);
        i = skip_blanks(s, end, len);
        if (i >= len || s[i] != ',')
            return;
    }
}

/* An escaped string's bytes, decoded onto the Lua stack (popped by the caller's settop); 0, or -1 with err set. */
static int unescape_meta(lua_State *L, meta_text *t, char *err)
{
    json_decode_cfg cfg;
    size_t off = 0;

    if (t->s == NULL || !t->esc)
        return 0;
    json_decode_cfg_default(&cfg);
    if (json_decode_push(L, t->s - 1, t->len + 2, &cfg, err, &off) != 0)
        return -1;
    t->s = lua_tolstring(L, -1, &t->len);
    return 0;
}

/*
** The shard of item i by its action line (routing_default: the value for an
** action without one, may be NULL); one of enum route_status, ROUTE_BAD_META
** with err set when its _id or routing is not a valid JSON string, or
** ROUTE_OTHER_INDEX when own_index is given and the action names another
** index. Leaves decoded texts on the Lua stack: the caller restores its top.
*/
#define ROUTE_BAD_META (-3)
#define ROUTE_OTHER_INDEX (-4)
static int item_route(lua_State *L, const bulk_buffer *b, size_t i, const route_params *p,
                      const meta_text *routing_default, const meta_text *own_index, int32_t *shard, size_t *bad,
                      char *err, const char **what)
{
    const bulk_item *it = &b->items[i];
    meta_text id, routing, index;

    action_meta(b->buf.data + it->offset, it->action_len - 1, &id, &routing, &index);
    /* (an escaped name is taken for another one: such an item goes to any node) */
    if (own_index != NULL && index.s != NULL
        && (index.esc || index.len != own_index->len || memcmp(index.s, own_index->s, index.len) != 0))
        return ROUTE_OTHER_INDEX;
    if (routing.s == NULL && routing_default != NULL)
        routing = *routing_default;
    *what = "_id";
    if (unescape_meta(L, &id, err) != 0)
        return ROUTE_BAD_META;
    *what = "routing";
    if (unescape_meta(L, &routing, err) != 0)
        return ROUTE_BAD_META;
    return espipe_route_shard(p, id.s, id.s ? id.len : 0, routing.s, routing.s ? routing.len : 0, shard, bad);
}

/* The shard of item i by its action line (routing_default as in item_route), or -1 when the index needs a value the item lacks; raises on bad text. */
static int32_t item_shard(lua_State *L, const bulk_buffer *b, size_t i, const route_params *p,
                          const meta_text *routing_default)
{
    char err[ESPIPE_JSON_ERRLEN];
    const char *what = "";
    int32_t shard = -1;
    size_t bad = 0;
    int top = lua_gettop(L), rc;

    rc = item_route(L, b, i, p, routing_default, NULL, &shard, &bad, err, &what);
    lua_settop(L, top);
    if (rc == ROUTE_BAD_META)
        return luaL_error(L, "bulk sort_by_shard: item %d: the %s is not a valid JSON string: %s", (int)i + 1,
                          what, err);
    if (rc == ROUTE_BAD_ID || rc == ROUTE_BAD_ROUTING)
        return luaL_error(L, "bulk sort_by_shard: item %d: the %s is not valid UTF-8 (byte offset %d)",
                          (int)i + 1, rc == ROUTE_BAD_ID ? "_id" : "routing", (int)bad);
    return rc == ROUTE_OK ? shard : -1;
}

/* shards[i] of a list entry (nil: -1); raises on anything but an integer in 0 .. SORT_MAX_SHARDS-1. */
static int32_t listed_shard(lua_State *L, int list, size_t i)
{
    int64_t v = -1;
    int t;

    lua_rawgeti(L, list, (int)i + 1);
    t = lua_type(L, -1);
    if (t != LUA_TNIL && (t != LUA_TNUMBER || !espipe_exact_integer(L, -1, &v) || v < 0 || v >= SORT_MAX_SHARDS))
        return luaL_error(L, "bulk sort_by_shard: shards[%d] must be an integer from 0 to %d, got %s",
                          (int)i + 1, SORT_MAX_SHARDS - 1, type_label(L, -1));
    lua_pop(L, 1);
    return (int32_t)v;
}

/* The bytes of the sort's scratch memory for n items, or 0 when they overflow a size_t. */
static size_t sort_scratch_size(size_t n, size_t shards)
{
    size_t per_item = sizeof(int32_t) + sizeof(size_t) + sizeof(bulk_item);

    if (n > (SIZE_MAX / 2 - (shards + 1) * (sizeof(size_t) + sizeof(int32_t))) / per_item)
        return 0;
    return n * per_item + (shards + 1) * (sizeof(size_t) + sizeof(int32_t));
}

/*
** perm[k] = the position that goes k-th: buckets of shard[i] (-1: unrouted,
** bucket nshards) laid out from the (rotation mod present)-th present shard.
** Returns the number of distinct shards present.
*/
static size_t shard_permutation(const int32_t *shard, size_t n, size_t nshards, int64_t rotation,
                                size_t *perm, size_t *cursor, int32_t *present)
{
    size_t i, k, np = 0, at = 0, rot;

    memset(cursor, 0, (nshards + 1) * sizeof *cursor);
    for (i = 0; i < n; i++)
        cursor[shard[i] < 0 ? nshards : (size_t)shard[i]]++;
    for (k = 0; k < nshards; k++)
        if (cursor[k] > 0)
            present[np++] = (int32_t)k;
    rot = np ? (size_t)(((rotation % (int64_t)np) + (int64_t)np) % (int64_t)np) : 0;
    for (k = 0; k < np; k++) {
        size_t s = (size_t)present[(rot + k) % np], c = cursor[s];

        cursor[s] = at;
        at += c;
    }
    cursor[nshards] = at;
    for (i = 0; i < n; i++)
        perm[cursor[shard[i] < 0 ? nshards : (size_t)shard[i]]++] = i;
    return np;
}

/* Rewrites body and items in perm's order; 0, or raises with the buffer untouched when memory runs out. */
static int apply_permutation(lua_State *L, bulk_buffer *b, const size_t *perm, bulk_item *saved)
{
    size_t k, at = 0, n = b->count;
    char *body;

    for (k = 0; k < n && perm[k] == k; k++)
        ;
    if (k == n)
        return 0;   /* already in order */
    body = malloc(b->buf.cap);
    if (body == NULL)
        return luaL_error(L, "bulk: out of memory");
    memcpy(saved, b->items, n * sizeof *saved);
    for (k = 0; k < n; k++) {
        bulk_item *it = &b->items[k];
        size_t size;

        *it = saved[perm[k]];
        size = it->action_len + it->source_len;
        memcpy(body + at, b->buf.data + it->offset, size);
        it->offset = at;
        at += size;
    }
    free(b->buf.data);
    b->buf.data = body;
    return 0;
}

static int l_sort_by_shard(lua_State *L)
{
    bulk_buffer *b = check_self(L, 1);
    route_params p;
    size_t n = b->count, i, nshards = 0, total = 0, np, scratch;
    int64_t rotation = 0;
    int by_params, want_order = lua_toboolean(L, 4);
    meta_text dflt = { NULL, 0, 0 };
    bulk_item *saved;
    size_t *perm, *cursor;
    int32_t *shard;

    check_mutable(L, b);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (!lua_isnoneornil(L, 3) && (lua_type(L, 3) != LUA_TNUMBER || !espipe_exact_integer(L, 3, &rotation)))
        return luaL_error(L, "bulk sort_by_shard: rotation must be an integer, got %s", type_label(L, 3));
    if (!lua_isnoneornil(L, 5))
        dflt.s = luaL_checklstring(L, 5, &dflt.len);
    lua_settop(L, 5);
    lua_getfield(L, 2, "shards");
    by_params = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (by_params) {
        espipe_route_params(L, 2, &p);
        nshards = (size_t)p.shards;
    }
    for (i = 0; i < n; i++) {
        int32_t s = by_params ? 0 : listed_shard(L, 2, i);

        if (s >= 0 && (size_t)s >= nshards)
            nshards = (size_t)s + 1;
        total += item_size(b, i);
    }
    if (total != b->buf.len)
        return luaL_error(L, "bulk sort_by_shard: the items do not cover the body");
    scratch = sort_scratch_size(n, nshards);
    if (scratch == 0)
        return luaL_error(L, "bulk: out of memory");
    /* a userdata: collected even when a later step raises */
    saved = (bulk_item *)lua_newuserdata(L, scratch);
    perm = (size_t *)(saved + n);
    cursor = perm + n;
    shard = (int32_t *)(cursor + nshards + 1);
    for (i = 0; i < n; i++)
        shard[i] = by_params ? item_shard(L, b, i, &p, dflt.s ? &dflt : NULL) : listed_shard(L, 2, i);
    np = shard_permutation(shard, n, nshards, rotation, perm, cursor, shard + n);
    if (want_order) {
        lua_createtable(L, n > INT32_MAX ? 0 : (int)n, 0);
        for (i = 0; i < n; i++) {
            lua_pushinteger(L, (lua_Integer)perm[i] + 1);
            lua_rawseti(L, -2, (int)i + 1);
        }
    }
    apply_permutation(L, b, perm, saved);
    lua_pushinteger(L, (lua_Integer)np);
    if (want_order)
        lua_insert(L, -2);
    return want_order ? 2 : 1;
}

/* opts.doc_type (at stack index idx), checked: a name that needs no JSON
** escaping, so action lines can carry it as it is. Its length, 0 for none. */
static size_t check_doc_type(lua_State *L, int idx, char *out)
{
    size_t len, i;
    const char *s;

    if (lua_type(L, idx) == LUA_TNIL)
        return 0;
    if (lua_type(L, idx) != LUA_TSTRING)
        return (size_t)luaL_error(L, "bulk.new: doc_type must be a string");
    s = lua_tolstring(L, idx, &len);
    if (len == 0 || len > BULK_DOC_TYPE_MAX)
        return (size_t)luaL_error(L, "bulk.new: doc_type must be 1 to %d bytes", BULK_DOC_TYPE_MAX);
    for (i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == '"' || s[i] == '\\')
            return (size_t)luaL_error(L, "bulk.new: doc_type '%s' has a quote, backslash or control character", s);
    memcpy(out, s, len);
    return len;
}

/*
** b:distribute(params, hosts, bufs, from, max_docs, max_bytes [, routing [, index]])
**   -> host, next | nil | nil, message, from
**
** Shard-aware sending: moves b's items from position `from` (1-based), in
** order, into the open batch of the node holding each one's primary shard.
** params routes an item by the _id / routing of its action line (routing:
** the request's default for an action without one); hosts[shard] = the
** node's host index (0-based shards), bufs[host] = that node's batch, and
** bufs[0] takes the items that cannot be routed, whose shard has no host,
** or whose action names an index other than `index` (the one params is of).
** Stops after the item that fills its batch (max_docs items or max_bytes
** bytes) and returns that host and the next position; nil once all have
** moved. b is left as it is (the caller resets it). Everything is checked
** and reserved before any item moves: on memory failure nil, message and
** `from` come back with every batch as it was.
*/
typedef struct route_dest {
    bulk_buffer *buf;
    size_t items, bytes;   /* what this call adds to it */
} route_dest;

/* The bulk buffer at idx (an absolute index), or NULL for any other value (luaL_testudata is 5.2+). */
static bulk_buffer *test_bulk(lua_State *L, int idx)
{
    void *p = lua_touserdata(L, idx);
    int same;

    if (p == NULL || !lua_getmetatable(L, idx))
        return NULL;
    luaL_getmetatable(L, ESPIPE_BULK_MT);
    same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same ? (bulk_buffer *)p : NULL;
}

/* The batch of bufs[host] (a table at idx), checked once per call. */
static bulk_buffer *dest_buffer(lua_State *L, int bufs, lua_Integer host)
{
    bulk_buffer *d;

    lua_rawgeti(L, bufs, (int)host);
    d = test_bulk(L, lua_gettop(L));
    if (d == NULL) {
        luaL_error(L, "bulk distribute: bufs[%d] must be a bulk buffer", (int)host);
        return NULL;
    }
    lua_pop(L, 1);   /* the table keeps it alive */
    if (d->pins > 0) {
        luaL_error(L, "bulk distribute: bufs[%d] is being sent", (int)host);
        return NULL;
    }
    return d;
}

/* host[s] for every shard of p (0: any node), as the hosts table at idx gives them; the largest host in *top. */
static void read_hosts(lua_State *L, int idx, const route_params *p, lua_Integer *host, lua_Integer *top)
{
    int32_t s;

    *top = 0;
    for (s = 0; s < p->shards; s++) {
        int64_t h = 0;

        lua_rawgeti(L, idx, s);
        if (!lua_isnil(L, -1) && (lua_type(L, -1) != LUA_TNUMBER || !espipe_exact_integer(L, -1, &h) || h < 1
                                  || h > INT32_MAX))
            luaL_error(L, "bulk distribute: hosts[%d] must be a positive integer", (int)s);
        lua_pop(L, 1);
        host[s] = (lua_Integer)h;
        if (h > *top)
            *top = h;
    }
}

/* Reserves room in every destination for what this call adds: 0, or -1 (nothing moved, contents unchanged). */
static int reserve_dests(route_dest *dest, lua_Integer top)
{
    lua_Integer h;

    for (h = 0; h <= top; h++) {
        bulk_buffer *d = dest[h].buf;

        if (d == NULL || dest[h].items == 0)
            continue;
        if (d->items_cap - d->count < dest[h].items) {
            size_t cap = d->count + dest[h].items;
            bulk_item *q = cap > SIZE_MAX / sizeof *q ? NULL : realloc(d->items, cap * sizeof *q);

            if (q == NULL)
                return -1;
            d->items = q;
            d->items_cap = cap;
        }
        if (strbuf_reserve(&d->buf, dest[h].bytes) != 0)
            return -1;
    }
    return 0;
}

static int l_distribute(lua_State *L)
{
    bulk_buffer *b = check_self(L, 1);
    route_params p;
    meta_text dflt = { NULL, 0, 0 }, own = { NULL, 0, 0 };
    size_t from, i, stop, n = b->count;
    int64_t at = 0;
    lua_Number max_docs, max_bytes;
    lua_Integer top, *host, h;
    route_dest *dest;
    int32_t *item_host;
    int full = 0;

    espipe_route_params(L, 2, &p);
    luaL_checktype(L, 3, LUA_TTABLE);
    luaL_checktype(L, 4, LUA_TTABLE);
    if (lua_type(L, 5) != LUA_TNUMBER || !espipe_exact_integer(L, 5, &at) || at < 1 || (uint64_t)at > n + 1)
        return luaL_error(L, "bulk distribute: from must be an integer from 1 to %d", (int)n + 1);
    from = (size_t)(at - 1);
    max_docs = luaL_checknumber(L, 6);
    max_bytes = luaL_checknumber(L, 7);
    if (!lua_isnoneornil(L, 8))
        dflt.s = luaL_checklstring(L, 8, &dflt.len);
    if (!lua_isnoneornil(L, 9))
        own.s = luaL_checklstring(L, 9, &own.len);
    lua_settop(L, 9);
    if (from >= n) {
        lua_pushnil(L);
        return 1;
    }
    /* scratch as userdata: collected even when a later check raises */
    host = (lua_Integer *)lua_newuserdata(L, (size_t)p.shards * sizeof *host);
    read_hosts(L, 3, &p, host, &top);
    if ((size_t)top > (SIZE_MAX / 2 - n * sizeof *item_host) / sizeof *dest)
        return luaL_error(L, "bulk: out of memory");
    dest = (route_dest *)lua_newuserdata(L, ((size_t)top + 1) * sizeof *dest + (n - from) * sizeof *item_host);
    item_host = (int32_t *)(dest + top + 1);
    memset(dest, 0, ((size_t)top + 1) * sizeof *dest);
    dest[0].buf = dest_buffer(L, 4, 0);
    /* pass 1: where each item goes, up to the one that fills its batch (may raise; nothing has moved) */
    for (i = from, stop = n; i < n && !full; i++) {
        int32_t shard = -1;
        size_t bad = 0;
        const char *what;
        char err[ESPIPE_JSON_ERRLEN];
        int tos = lua_gettop(L);
        route_dest *d;

        h = item_route(L, b, i, &p, dflt.s ? &dflt : NULL, own.s ? &own : NULL, &shard, &bad, err, &what) == ROUTE_OK
            ? host[shard] : 0;
        lua_settop(L, tos);
        if (dest[h].buf == NULL)
            dest[h].buf = dest_buffer(L, 4, h);
        d = &dest[h];
        if (d->buf == b)
            return luaL_error(L, "bulk distribute: a batch cannot take its own items");
        item_host[i - from] = (int32_t)h;
        d->items++;
        d->bytes += item_size(b, i);
        if ((lua_Number)(d->buf->count + d->items) >= max_docs || (lua_Number)(d->buf->buf.len + d->bytes) >= max_bytes)
            full = 1, stop = i + 1;
    }
    if (reserve_dests(dest, top) != 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "bulk: out of memory");
        lua_pushinteger(L, (lua_Integer)from + 1);
        return 3;
    }
    /* pass 2: the moves, which cannot fail now */
    for (i = from; i < stop; i++)
        copy_item(dest[item_host[i - from]].buf, b, i);
    if (!full) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushinteger(L, item_host[stop - 1 - from]);
    lua_pushinteger(L, (lua_Integer)stop + 1);
    return 2;
}

/* bulk_new([opts]) with opts.max_depth and opts.utf8 = "error" | "replace" as for json.encode,
** opts.auto_ids = true: index/create actions without an _id get a time-based one,
** opts.doc_type = "_doc": every action line carries that _type (Elasticsearch 6.x) */
static int l_new(lua_State *L)
{
    json_encode_cfg cfg;
    int64_t v = 0;
    int auto_ids = 0;
    char doc_type[BULK_DOC_TYPE_MAX + 1] = "";
    size_t doc_type_len = 0;
    bulk_buffer *b;

    json_encode_cfg_default(&cfg);
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        lua_getfield(L, 1, "max_depth");
        if (lua_type(L, -1) != LUA_TNIL) {
            if (!int_in(L, -1, &v, 1) || v > 100000)
                return luaL_error(L, "bulk.new: max_depth must be an integer from 1 to 100000");
            cfg.max_depth = (int)v;
        }
        lua_getfield(L, 1, "utf8");
        if (lua_type(L, -1) != LUA_TNIL) {
            const char *mode = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
            if (strcmp(mode, "error") == 0)
                cfg.utf8 = JSON_UTF8_ERROR;
            else if (strcmp(mode, "replace") == 0)
                cfg.utf8 = JSON_UTF8_REPLACE;
            else
                return luaL_error(L, "bulk.new: utf8 must be \"error\" or \"replace\"");
        }
        lua_getfield(L, 1, "auto_ids");
        auto_ids = lua_toboolean(L, -1);
        lua_getfield(L, 1, "doc_type");
        doc_type_len = check_doc_type(L, -1, doc_type);
        lua_pop(L, 4);
    }
    b = push_new(L, &cfg, auto_ids);
    memcpy(b->doc_type, doc_type, doc_type_len);
    b->doc_type_len = doc_type_len;
    return 1;
}

/* The body lent to the curl transport in place (base/borrowed.h). */
static const char *lend_bytes(void *ud, size_t *len, const char **why)
{
    bulk_buffer *b = (bulk_buffer *)ud;
    (void)why;
    *len = b->buf.len;
    return b->buf.data != NULL ? b->buf.data : "";
}

static void lend_pin(void *ud, int delta)
{
    ((bulk_buffer *)ud)->pins += delta;
}

static const lender bulk_lender = { lend_bytes, lend_pin };

void espipe_open_bulk(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "index", l_index }, { "create", l_create }, { "update", l_update }, { "delete", l_delete },
        { "add", l_add }, { "put", l_put }, { "raw", l_raw }, { "body", l_body }, { "count", l_count }, { "bytes", l_bytes },
        { "capacity", l_capacity }, { "reset", l_reset }, { "item", l_item }, { "auto_id", l_auto_id }, { "span", l_span },
        { "slice", l_slice }, { "split", l_split }, { "subset", l_subset },
        { "append_from", l_append_from }, { "sort_by_shard", l_sort_by_shard },
        { "distribute", l_distribute }, { NULL, NULL }
    };
    static const luaL_Reg meta[] = {
        { "__gc", l_gc }, { "__len", l_count }, { "__tostring", l_tostring }, { NULL, NULL }
    };

    luaL_newmetatable(L, ESPIPE_BULK_MT);
    borrowed_lend(L, &bulk_lender);
    lua_pushvalue(L, -1);
    espipe_setfuncs(L, meta, 1);
    lua_newtable(L);
    lua_pushvalue(L, -2);
    espipe_setfuncs(L, methods, 1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_new);
    lua_setfield(L, -2, "bulk_new");
}
