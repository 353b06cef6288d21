/*
** Bulk response scanning: one pass over the JSON of a _bulk response that
** counts item outcomes and reports every failed item exactly (position, op,
** status, _id, error type and reason, and the raw error JSON).
**
** The scanner validates the whole body as JSON, so a truncated or garbled
** response is an error, never a success. It allocates nothing outside the
** Lua stack: a malformed body resets the stack and returns nil, msg, offset.
** A body whose items are all successes creates no per-item Lua values.
*/
#include <string.h>

#include "base/compat.h"
#include "base/utf8.h"
#include "json/reader.h"
#include "core.h"

#define BR_MAX_DEPTH 512
#define BR_KEY_MAX 16 /* longer keys cannot be one we look for */

typedef struct scanner {
    const char *start;
    const char *p;
    const char *end;
    const char *err;     /* static message, or NULL */
    const char *err_at;  /* where the problem is */
} scanner;

typedef struct span {
    const char *s;
    size_t len;
    int escaped; /* contains a backslash escape */
} span;

static int fail(scanner *sc, const char *msg, const char *at)
{
    if (!sc->err) {
        sc->err = msg;
        sc->err_at = at;
    }
    return -1;
}

static void skip_ws(scanner *sc)
{
    while (sc->p < sc->end) {
        char c = *sc->p;
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t')
            break;
        sc->p++;
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    int i;
    for (i = 0; i < 4; i++) {
        int h = hexval(s[i]);
        if (h < 0)
            return -1;
        v = (v << 4) | (unsigned)h;
    }
    *out = v;
    return 0;
}

/* sc->p is at the opening quote. Records the content span (without quotes). */
static int scan_string(scanner *sc, span *out)
{
    const unsigned char *p = (const unsigned char *)sc->p + 1;
    const unsigned char *end = (const unsigned char *)sc->end;
    out->escaped = 0;
    while (p < end) {
        unsigned char c;
        p = json_skip_plain_wide(p, end);   /* stops at high bytes too: passed below */
        if (p >= end)
            break;
        c = *p;
        if (c >= 0x80) {   /* not checked as UTF-8 here: Elasticsearch wrote it */
            while (p < end && *p >= 0x80)
                p++;
            continue;
        }
        if (c == '"') {
            out->s = sc->p + 1;
            out->len = (size_t)((const char *)p - out->s);
            sc->p = (const char *)p + 1;
            return 0;
        }
        if (c < 0x20)
            return fail(sc, "control character in string", (const char *)p);
        if (c == '\\') {
            out->escaped = 1;
            if (p + 1 >= end)
                break;
            switch (p[1]) {
            case '"': case '\\': case '/': case 'b':
            case 'f': case 'n': case 'r': case 't':
                p += 2;
                continue;
            case 'u': {
                unsigned cp;
                if (end - p < 6 || hex4((const char *)p + 2, &cp) != 0)
                    return fail(sc, "invalid \\u escape", (const char *)p);
                p += 6;
                continue;
            }
            default:
                return fail(sc, "invalid escape in string", (const char *)p);
            }
        }
        p++;
    }
    return fail(sc, "unterminated string", sc->p);
}

/*
** Decode one escape at s (s[0] == '\\', already validated by scan_string)
** into dst (>= 4 bytes). Returns the bytes written; *used = input consumed.
** A lone surrogate becomes U+FFFD.
*/
static size_t unescape_one(const char *s, const char *end, char *dst, size_t *used)
{
    unsigned cp, lo;
    *used = 2;
    switch (s[1]) {
    case 'b': dst[0] = '\b'; return 1;
    case 'f': dst[0] = '\f'; return 1;
    case 'n': dst[0] = '\n'; return 1;
    case 'r': dst[0] = '\r'; return 1;
    case 't': dst[0] = '\t'; return 1;
    case 'u': break;
    default: dst[0] = s[1]; return 1;
    }
    *used = 6;
    (void)hex4(s + 2, &cp);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (end - s >= 12 && s[6] == '\\' && s[7] == 'u' && hex4(s + 8, &lo) == 0
            && lo >= 0xDC00 && lo <= 0xDFFF) {
            *used = 12;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else {
            cp = 0xFFFD;
        }
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        cp = 0xFFFD;
    }
    return utf8_put(dst, cp);
}

/* Push the decoded text of a string span. */
static void push_span(lua_State *L, const span *sp)
{
    luaL_Buffer b;
    const char *s = sp->s, *end = sp->s + sp->len;
    if (!sp->escaped) {
        lua_pushlstring(L, sp->s, sp->len);
        return;
    }
    luaL_buffinit(L, &b);
    while (s < end) {
        const char *bs = memchr(s, '\\', (size_t)(end - s));
        if (!bs) {
            luaL_addlstring(&b, s, (size_t)(end - s));
            break;
        }
        if (bs > s)
            luaL_addlstring(&b, s, (size_t)(bs - s));
        {
            char tmp[4];
            size_t used, n = unescape_one(bs, end, tmp, &used);
            luaL_addlstring(&b, tmp, n);
            s = bs + used;
        }
    }
    luaL_pushresult(&b);
}

/* Does the (possibly escaped) key equal the NUL-terminated name? */
static int key_is_slow(const span *k, const char *name)
{
    char buf[BR_KEY_MAX + 4];
    size_t n = 0;
    const char *s = k->s, *end = k->s + k->len;
    size_t nlen = strlen(name);
    if (!k->escaped)
        return k->len == nlen && memcmp(k->s, name, nlen) == 0;
    while (s < end) {
        if (n > BR_KEY_MAX)
            return 0;
        if (*s == '\\') {
            size_t used;
            n += unescape_one(s, end, buf + n, &used);
            s += used;
        } else {
            buf[n++] = *s++;
        }
    }
    return n == nlen && memcmp(buf, name, nlen) == 0;
}

/* name is a string literal: its length is known at compile time. */
#define key_is(k, name) \
    ((k)->escaped ? key_is_slow((k), (name)) \
                  : (k)->len == sizeof(name) - 1 && memcmp((k)->s, (name), sizeof(name) - 1) == 0)

static int expect_literal(scanner *sc, const char *lit, size_t n)
{
    if ((size_t)(sc->end - sc->p) < n || memcmp(sc->p, lit, n) != 0)
        return fail(sc, "invalid literal", sc->p);
    sc->p += n;
    return 0;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* JSON number grammar; *is_int tells whether it had no fraction/exponent. */
static int scan_number(scanner *sc, int *is_int)
{
    const char *p = sc->p, *e = sc->end;
    *is_int = 1;
    if (p < e && *p == '-')
        p++;
    if (p >= e || !is_digit(*p))
        return fail(sc, "invalid number", sc->p);
    if (*p == '0')
        p++;
    else
        while (p < e && is_digit(*p))
            p++;
    if (p < e && *p == '.') {
        *is_int = 0;
        p++;
        if (p >= e || !is_digit(*p))
            return fail(sc, "invalid number", sc->p);
        while (p < e && is_digit(*p))
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        *is_int = 0;
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        if (p >= e || !is_digit(*p))
            return fail(sc, "invalid number", sc->p);
        while (p < e && is_digit(*p))
            p++;
    }
    sc->p = p;
    return 0;
}

static int skip_value(scanner *sc, int depth);

/* Walk an object or array whose opening bracket is at sc->p. */
static int skip_container(scanner *sc, int depth)
{
    char close = (*sc->p == '{') ? '}' : ']';
    int is_obj = (close == '}');
    span k;
    if (depth >= BR_MAX_DEPTH)
        return fail(sc, "nesting too deep", sc->p);
    sc->p++;
    skip_ws(sc);
    if (sc->p < sc->end && *sc->p == close) {
        sc->p++;
        return 0;
    }
    for (;;) {
        if (is_obj) {
            skip_ws(sc);
            if (sc->p >= sc->end || *sc->p != '"')
                return fail(sc, "expected object key", sc->p);
            if (scan_string(sc, &k) != 0)
                return -1;
            skip_ws(sc);
            if (sc->p >= sc->end || *sc->p != ':')
                return fail(sc, "expected ':'", sc->p);
            sc->p++;
        }
        if (skip_value(sc, depth + 1) != 0)
            return -1;
        skip_ws(sc);
        if (sc->p >= sc->end)
            return fail(sc, "unexpected end of input", sc->p);
        if (*sc->p == ',') {
            sc->p++;
            continue;
        }
        if (*sc->p == close) {
            sc->p++;
            return 0;
        }
        return fail(sc, is_obj ? "expected ',' or '}'" : "expected ',' or ']'", sc->p);
    }
}

static int skip_value(scanner *sc, int depth)
{
    span s;
    int is_int;
    skip_ws(sc);
    if (sc->p >= sc->end)
        return fail(sc, "unexpected end of input", sc->p);
    switch (*sc->p) {
    case '{': case '[': return skip_container(sc, depth);
    case '"': return scan_string(sc, &s);
    case 't': return expect_literal(sc, "true", 4);
    case 'f': return expect_literal(sc, "false", 5);
    case 'n': return expect_literal(sc, "null", 4);
    default: return scan_number(sc, &is_int);
    }
}

/* Start of an object member loop: after '{'. Returns 1 when the object is empty. */
static int object_open(scanner *sc)
{
    sc->p++;
    skip_ws(sc);
    if (sc->p < sc->end && *sc->p == '}') {
        sc->p++;
        return 1;
    }
    return 0;
}

/* Read `"key" :` into k. */
static int member_key(scanner *sc, span *k)
{
    skip_ws(sc);
    if (sc->p >= sc->end || *sc->p != '"')
        return fail(sc, "expected object key", sc->p);
    if (scan_string(sc, k) != 0)
        return -1;
    skip_ws(sc);
    if (sc->p >= sc->end || *sc->p != ':')
        return fail(sc, "expected ':'", sc->p);
    sc->p++;
    skip_ws(sc);
    if (sc->p >= sc->end)
        return fail(sc, "unexpected end of input", sc->p);
    return 0;
}

/* After a member value: 1 = another member follows, 0 = object closed. */
static int member_next(scanner *sc)
{
    skip_ws(sc);
    if (sc->p < sc->end && *sc->p == ',') {
        sc->p++;
        return 1;
    }
    if (sc->p < sc->end && *sc->p == '}') {
        sc->p++;
        return 0;
    }
    return fail(sc, "expected ',' or '}'", sc->p);
}

/* A plain non-negative integer value (statuses, took). */
static int scan_int(scanner *sc, long long *out, int *ok)
{
    const char *p = sc->p;
    int is_int;
    long long v = 0;
    if (scan_number(sc, &is_int) != 0)
        return -1;
    *ok = 0;
    if (!is_int || *p == '-' || sc->p - p > 15)
        return 0;
    for (; p < sc->p; p++)
        v = v * 10 + (*p - '0');
    *out = v;
    *ok = 1;
    return 0;
}

typedef struct item {
    span op;
    long long status;
    int has_status;
    int has_error;
    const char *err_s; /* raw error JSON */
    size_t err_len;
    int has_type, has_reason;
    span type, reason;
    int has_result;
    span result;
    int has_id;
    span id;
} item;

typedef struct counts {
    lua_Integer count, ok, created, updated, deleted, noop, not_found, failed;
} counts;

/* The error value: raw span, plus top-level type/reason when it is an object. */
static int scan_error(scanner *sc, item *it, int depth)
{
    const char *start = sc->p;
    span k;
    it->has_error = 1;
    if (*sc->p == '{') {
        if (depth >= BR_MAX_DEPTH)
            return fail(sc, "nesting too deep", sc->p);
        if (!object_open(sc)) {
            int more;
            do {
                if (member_key(sc, &k) != 0)
                    return -1;
                if (*sc->p == '"' && key_is(&k, "type")) {
                    if (scan_string(sc, &it->type) != 0)
                        return -1;
                    it->has_type = 1;
                } else if (*sc->p == '"' && key_is(&k, "reason")) {
                    if (scan_string(sc, &it->reason) != 0)
                        return -1;
                    it->has_reason = 1;
                } else if (skip_value(sc, depth + 1) != 0) {
                    return -1;
                }
                if ((more = member_next(sc)) < 0)
                    return -1;
            } while (more);
        }
    } else if (*sc->p == '"') {
        if (scan_string(sc, &it->reason) != 0)
            return -1;
        it->has_reason = 1;
    } else if (skip_value(sc, depth) != 0) {
        return -1;
    }
    it->err_s = start;
    it->err_len = (size_t)(sc->p - start);
    return 0;
}

/* The body of one item: {"status":..,"error":..,"result":..,"_id":..,...} */
static int scan_item_body(scanner *sc, item *it)
{
    span k;
    int more;
    if (*sc->p != '{')
        return fail(sc, "item action is not an object", sc->p);
    if (object_open(sc))
        return 0;
    do {
        if (member_key(sc, &k) != 0)
            return -1;
        if (key_is(&k, "status")) {
            int ok;
            const char *at = sc->p;
            if (*at != '-' && !is_digit(*at))
                return fail(sc, "item status is not an integer", at);
            if (scan_int(sc, &it->status, &ok) != 0)
                return -1;
            if (!ok)
                return fail(sc, "item status is not an integer", at);
            it->has_status = 1;
        } else if (key_is(&k, "error")) {
            if (scan_error(sc, it, 3) != 0)
                return -1;
        } else if (key_is(&k, "result") && *sc->p == '"') {
            if (scan_string(sc, &it->result) != 0)
                return -1;
            it->has_result = 1;
        } else if (key_is(&k, "_id") && *sc->p == '"') {
            if (scan_string(sc, &it->id) != 0)
                return -1;
            it->has_id = 1;
        } else if (skip_value(sc, 3) != 0) {
            return -1;
        }
        if ((more = member_next(sc)) < 0)
            return -1;
    } while (more);
    return 0;
}

static void set_span(lua_State *L, const char *field, const span *sp)
{
    push_span(L, sp);
    lua_setfield(L, -2, field);
}

/* Append a failure record to the table at failures_idx. */
static void push_failure(lua_State *L, int failures_idx, lua_Integer n,
                         lua_Integer pos, const item *it)
{
    lua_createtable(L, 0, 7);
    lua_pushinteger(L, pos);
    lua_setfield(L, -2, "pos");
    set_span(L, "op", &it->op);
    lua_pushinteger(L, (lua_Integer)it->status);
    lua_setfield(L, -2, "status");
    if (it->has_id)
        set_span(L, "id", &it->id);
    if (it->has_type)
        set_span(L, "type", &it->type);
    if (it->has_reason) {
        set_span(L, "reason", &it->reason);
    } else if (!it->has_error) {
        lua_pushfstring(L, "status %d without an error object", (int)it->status);
        lua_setfield(L, -2, "reason");
    }
    if (it->has_error) {
        lua_pushlstring(L, it->err_s, it->err_len);
        lua_setfield(L, -2, "error");
    }
    lua_rawseti(L, failures_idx, (int)n);
}

static void count_success(counts *c, const item *it)
{
    c->ok++;
    if (it->has_result) {
        const span *r = &it->result;
        if (key_is(r, "created")) { c->created++; return; }
        if (key_is(r, "updated")) { c->updated++; return; }
        if (key_is(r, "deleted")) { c->deleted++; return; }
        if (key_is(r, "noop")) { c->noop++; return; }
        if (key_is(r, "not_found")) { c->not_found++; return; }
    }
    /* Filtered responses may lack result: infer from status and action. */
    if (it->status == 201)
        c->created++;
    else if (key_is(&it->op, "delete") && it->status == 404)
        c->not_found++;
    else if (key_is(&it->op, "delete"))
        c->deleted++;
    else
        c->updated++;
}

static int scan_items(lua_State *L, scanner *sc, counts *c, int failures_idx)
{
    if (sc->p >= sc->end || *sc->p != '[')
        return fail(sc, "items is not an array", sc->p);
    sc->p++;
    skip_ws(sc);
    if (sc->p < sc->end && *sc->p == ']') {
        sc->p++;
        return 0;
    }
    for (;;) {
        item it;
        const char *item_at;
        int failed;
        memset(&it, 0, sizeof it);
        skip_ws(sc);
        item_at = sc->p;
        if (sc->p >= sc->end || *sc->p != '{')
            return fail(sc, "item is not an object", sc->p);
        if (object_open(sc))
            return fail(sc, "item has no action", item_at);
        if (member_key(sc, &it.op) != 0 || scan_item_body(sc, &it) != 0)
            return -1;
        skip_ws(sc);
        if (sc->p >= sc->end || *sc->p != '}')
            return fail(sc, "item has more than one action", sc->p);
        sc->p++;
        if (!it.has_status)
            return fail(sc, "item has no status", item_at);
        c->count++;
        failed = it.has_error
            || (it.status >= 300 && !(it.status == 404 && key_is(&it.op, "delete")));
        if (failed) {
            c->failed++;
            push_failure(L, failures_idx, c->failed, c->count, &it);
        } else {
            count_success(c, &it);
        }
        skip_ws(sc);
        if (sc->p < sc->end && *sc->p == ',') {
            sc->p++;
            continue;
        }
        if (sc->p < sc->end && *sc->p == ']') {
            sc->p++;
            return 0;
        }
        return fail(sc, "expected ',' or ']'", sc->p);
    }
}

static void set_int(lua_State *L, const char *field, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, field);
}

/*
** core.bulk_response(body) -> summary | nil, message, offset
** summary = { errors=bool|nil, took=int|nil, count, ok, created, updated,
**             deleted, noop, not_found, failed,
**             failures = { {pos, op, status, id, type, reason, error}, ... } }
*/
static int l_bulk_response(lua_State *L)
{
    size_t len;
    const char *body;
    scanner sc;
    counts c;
    int base, result_idx, failures_idx, more, seen_items = 0;
    span k;

    if (lua_type(L, 1) != LUA_TSTRING)
        return luaL_argerror(L, 1, "bulk response body (string) expected");
    body = lua_tolstring(L, 1, &len);
    memset(&sc, 0, sizeof sc);
    memset(&c, 0, sizeof c);
    sc.start = sc.p = body;
    sc.end = body + len;

    base = lua_gettop(L);
    lua_createtable(L, 0, 12);
    result_idx = lua_gettop(L);
    lua_newtable(L);
    failures_idx = lua_gettop(L);

    skip_ws(&sc);
    if (sc.p >= sc.end || *sc.p != '{') {
        fail(&sc, "response is not a JSON object", sc.p);
        goto bad;
    }
    if (!object_open(&sc)) {
        do {
            if (member_key(&sc, &k) != 0)
                goto bad;
            if (key_is(&k, "items")) {
                if (scan_items(L, &sc, &c, failures_idx) != 0)
                    goto bad;
                seen_items = 1;
            } else if (key_is(&k, "errors") && (*sc.p == 't' || *sc.p == 'f')) {
                int v = (*sc.p == 't');
                if (expect_literal(&sc, v ? "true" : "false", v ? 4 : 5) != 0)
                    goto bad;
                lua_pushboolean(L, v);
                lua_setfield(L, result_idx, "errors");
            } else if (key_is(&k, "took") && *sc.p != '"') {
                long long took;
                int ok;
                if (scan_int(&sc, &took, &ok) != 0)
                    goto bad;
                if (ok) {
                    lua_pushinteger(L, (lua_Integer)took);
                    lua_setfield(L, result_idx, "took");
                }
            } else if (skip_value(&sc, 1) != 0) {
                goto bad;
            }
            if ((more = member_next(&sc)) < 0)
                goto bad;
        } while (more);
    }
    skip_ws(&sc);
    if (sc.p != sc.end) {
        fail(&sc, "trailing data after the response", sc.p);
        goto bad;
    }
    if (!seen_items) {
        fail(&sc, "response has no items", body);
        goto bad;
    }
    lua_pushvalue(L, failures_idx);
    lua_setfield(L, result_idx, "failures");
    lua_settop(L, result_idx);
    set_int(L, "count", c.count);
    set_int(L, "ok", c.ok);
    set_int(L, "created", c.created);
    set_int(L, "updated", c.updated);
    set_int(L, "deleted", c.deleted);
    set_int(L, "noop", c.noop);
    set_int(L, "not_found", c.not_found);
    set_int(L, "failed", c.failed);
    return 1;

bad:
    lua_settop(L, base);
    lua_pushnil(L);
    lua_pushstring(L, sc.err ? sc.err : "malformed response");
    lua_pushinteger(L, sc.err_at ? (lua_Integer)(sc.err_at - body) : 0);
    return 3;
}

void espipe_open_bulk_response(lua_State *L)
{
    lua_pushcfunction(L, l_bulk_response);
    lua_setfield(L, -2, "bulk_response");
}
