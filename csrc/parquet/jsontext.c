#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsontext.h"

#define ARRAY_MT "espipe.json.array"

size_t format_double(char *buf, size_t size, double d)
{
    int prec, n = 0;
    for (prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    return n > 0 ? (size_t)n : 0;
}

int utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c;
        size_t need;
        /* ASCII runs eight bytes at a time */
        while (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080u)
                break;
            i += 8;
        }
        if (i == n)
            break;
        c = s[i];
        unsigned cp, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) { need = 1; cp = c & 0x1F; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { need = 2; cp = c & 0x0F; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { need = 3; cp = c & 0x07; min = 0x10000; }
        else return 0;
        if (n - i <= need)
            return 0;
        {
            size_t k;
            for (k = 1; k <= need; k++) {
                if ((s[i + k] & 0xC0) != 0x80)
                    return 0;
                cp = (cp << 6) | (s[i + k] & 0x3F);
            }
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += need + 1;
    }
    return 1;
}

static int append_string(strbuf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;
    if (strbuf_reserve(out, n + 2) != 0 || strbuf_putc(out, '"') != 0)
        return -1;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[6];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default: break;
        }
        if (esc != NULL) {
            if (strbuf_append(out, esc, 2) != 0)
                return -1;
        } else if (c < 0x20) {
            u[0] = '\\'; u[1] = 'u'; u[2] = '0'; u[3] = '0';
            u[4] = hex[c >> 4]; u[5] = hex[c & 15];
            if (strbuf_append(out, u, 6) != 0)
                return -1;
        } else if (strbuf_putc(out, (char)c) != 0) {
            return -1;
        }
    }
    return strbuf_putc(out, '"');
}

int jsontext_is_array(lua_State *L, int idx)
{
    int arr = 0;
    size_t len, count = 0;
    idx = espipe_absindex(L, idx);
    if (lua_getmetatable(L, idx)) {
        luaL_getmetatable(L, ARRAY_MT);
        arr = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
        if (arr)
            return 1;
    }
    len = espipe_rawlen(L, idx);
    if (len == 0)
        return 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        count++;
        if (count > len) {
            lua_pop(L, 1);
            return 0;
        }
    }
    return count == len;
}

size_t number_text(lua_State *L, int idx, char *buf, size_t size)
{
    double d;
    size_t n;
#if ESPIPE_HAS_INTEGERS
    if (lua_isinteger(L, idx))
        return (size_t)snprintf(buf, size, "%lld", (long long)lua_tointeger(L, idx));
#endif
    d = lua_tonumber(L, idx);
    if (isnan(d) || isinf(d))
        return 0;
    n = format_double(buf, size, d);
#if ESPIPE_HAS_INTEGERS
    /* keep the float subtype visible, as espipe.json does */
    if (strpbrk(buf, ".e") == NULL && n + 2 < size) {
        buf[n++] = '.';
        buf[n++] = '0';
        buf[n] = '\0';
    }
#endif
    return n;
}

static int append_number(lua_State *L, int idx, strbuf *out, const char **why)
{
    char buf[64];
    size_t n = number_text(L, idx, buf, sizeof buf);
    if (n == 0) {
        *why = "NaN or infinity";
        return -1;
    }
    return strbuf_append(out, buf, n);
}

static int append_value(lua_State *L, int idx, strbuf *out, int depth, const char **why)
{
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return strbuf_append(out, "null", 4);
    case LUA_TBOOLEAN:
        return lua_toboolean(L, idx) ? strbuf_append(out, "true", 4) : strbuf_append(out, "false", 5);
    case LUA_TNUMBER:
        return append_number(L, idx, out, why);
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        if (!utf8_valid(s, n)) {
            *why = "invalid UTF-8";
            return -1;
        }
        return append_string(out, s, n);
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL)
            return strbuf_append(out, "null", 4);
        break;
    case LUA_TTABLE: {
        int first = 1;
        if (depth >= JSONTEXT_MAX_DEPTH) {
            *why = "nesting too deep";
            return -1;
        }
        if (!lua_checkstack(L, 4)) {
            *why = "Lua stack exhausted";
            return -1;
        }
        if (jsontext_is_array(L, idx)) {
            size_t i, len = espipe_rawlen(L, idx);
            if (strbuf_putc(out, '[') != 0)
                return -1;
            for (i = 1; i <= len; i++) {
                int rc;
                if (i > 1 && strbuf_putc(out, ',') != 0)
                    return -1;
                lua_rawgeti(L, idx, (int)i);
                rc = append_value(L, lua_gettop(L), out, depth + 1, why);
                lua_pop(L, 1);
                if (rc != 0)
                    return -1;
            }
            return strbuf_putc(out, ']');
        }
        if (strbuf_putc(out, '{') != 0)
            return -1;
        lua_pushnil(L);
        while (lua_next(L, idx) != 0) {
            int rc = 0, kt = lua_type(L, -2);
            if (!first)
                rc = strbuf_putc(out, ',');
            first = 0;
            if (rc == 0 && kt == LUA_TSTRING) {
                size_t kn;
                const char *k = lua_tolstring(L, -2, &kn);
                if (!utf8_valid(k, kn)) {
                    *why = "invalid UTF-8 in a key";
                    rc = -1;
                } else {
                    rc = append_string(out, k, kn);
                }
            } else if (rc == 0 && kt == LUA_TNUMBER) {
                /* keys must be strings: quote the number's text */
                strbuf tmp;
                strbuf_init(&tmp);
                rc = append_number(L, lua_gettop(L) - 1, &tmp, why);
                if (rc == 0)
                    rc = append_string(out, tmp.data, tmp.len);
                strbuf_free(&tmp);
            } else if (rc == 0) {
                *why = "a table key that is not a string or number";
                rc = -1;
            }
            if (rc == 0)
                rc = strbuf_putc(out, ':');
            if (rc == 0)
                rc = append_value(L, lua_gettop(L), out, depth + 1, why);
            lua_pop(L, 1);
            if (rc != 0) {
                lua_pop(L, 1);
                return -1;
            }
        }
        return strbuf_putc(out, '}');
    }
    default:
        break;
    }
    *why = "a value JSON cannot carry";
    return -1;
}

int jsontext_append(lua_State *L, int idx, strbuf *out, const char **why)
{
    *why = "out of memory";
    return append_value(L, espipe_absindex(L, idx), out, 0, why);
}
