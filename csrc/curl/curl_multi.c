/*
** espipe.curl_multi: many HTTP requests in flight on one libcurl multi
** handle, driven from Lua. Lua adds requests and polls for completions; C
** never calls back into Lua while it waits on the network, so the same
** client code can run over OpenResty cosockets instead.
**
**   m = curl_multi.new{ max_inflight =, connect_timeout =, ca_file =, ca_dir =,
**                       cert =, key =, insecure =, username =, password =,
**                       auth_header =, max_response_bytes = }
**   ok, msg, code = m:add(id, url, method, headers, body, timeout, gzip_level, body_buffer)
**   done = m:poll(timeout)   -- { { id, status, headers, body, code, message, sent, elapsed }, ... }
**     body: a string; with body_buffer, a 2xx body is an espipe.response_body
**     instead (response_body.h): the received bytes themselves, no copy
**   m:inflight(), m:capacity(), m:close()
**   curl_multi.now(), curl_multi.sleep(seconds), curl_multi.version()
*/
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "base/borrowed.h"
#include "base/compat.h"
#include "base/strbuf.h"
#include "transfer.h"
#include "curl_codes.h"
#include "response_body.h"

#define MULTI_MT "espipe.curl_multi"
#define DEFAULT_MAX_RESPONSE_BYTES ((size_t)256 << 20)

typedef struct multi {
    CURLM *handle;              /* NULL once closed */
    transfer *slots;            /* capacity of them: memory is fixed at creation */
    int capacity;
    int inflight;
    transfer *free_list;
    transfer_config cfg;
} multi;

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Credentials should not linger in freed memory. */
static void free_secret(char **s)
{
    if (*s != NULL) {
        volatile char *p = *s;
        while (*p != '\0')
            *p++ = '\0';
        free(*s);
        *s = NULL;
    }
}

static void unpin(lua_State *L, transfer *t)
{
    if (t->pinned_by != NULL)
        t->pinned_by->pin(t->pinned, -1);
    t->pinned = NULL;
    t->pinned_by = NULL;
    luaL_unref(L, LUA_REGISTRYINDEX, t->body_ref);
    t->body_ref = LUA_NOREF;
}

static void release_slot(lua_State *L, multi *m, transfer *t)
{
    unpin(L, t);
    transfer_reset(t);
    t->next_free = m->free_list;
    m->free_list = t;
    m->inflight--;
}

static int multi_close(lua_State *L)
{
    multi *m = luaL_checkudata(L, 1, MULTI_MT);
    int i;

    if (m->slots != NULL) {
        for (i = 0; i < m->capacity; i++) {
            transfer *t = &m->slots[i];
            if (t->state == TRANSFER_RUNNING && m->handle != NULL)
                curl_multi_remove_handle(m->handle, t->easy);
            unpin(L, t);
            transfer_destroy(t);
        }
        free(m->slots);
        m->slots = NULL;
    }
    if (m->handle != NULL)
        curl_multi_cleanup(m->handle);
    m->handle = NULL;
    m->free_list = NULL;
    m->inflight = 0;
    free(m->cfg.ca_file);
    free(m->cfg.ca_dir);
    free(m->cfg.cert);
    free(m->cfg.key);
    m->cfg.ca_file = m->cfg.ca_dir = m->cfg.cert = m->cfg.key = NULL;
    free_secret(&m->cfg.username);
    free_secret(&m->cfg.password);
    free_secret(&m->cfg.auth_header);
    return 0;
}

static int raise_closed(lua_State *L)
{
    return luaL_error(L, "curl_multi: the transport is closed");
}

static multi *check_open(lua_State *L)
{
    multi *m = luaL_checkudata(L, 1, MULTI_MT);

    if (m->handle == NULL)
        (void)raise_closed(L);   /* does not return */
    return m;
}

/* Option readers for new{}: raising is safe, the userdata's __gc owns every allocation. */
static int opt_string(lua_State *L, int opts, const char *name, char **out)
{
    char *copy = NULL;
    size_t len;
    const char *s;

    lua_getfield(L, opts, name);
    switch (lua_type(L, -1)) {
    case LUA_TNIL:
        break;
    case LUA_TSTRING:
        s = lua_tolstring(L, -1, &len);
        if (strlen(s) != len)
            return luaL_error(L, "curl_multi.new: option '%s' contains a NUL byte", name);
        copy = malloc(len + 1);
        if (copy == NULL)
            return luaL_error(L, "curl_multi.new: out of memory");
        memcpy(copy, s, len + 1);
        break;
    default:
        return luaL_error(L, "curl_multi.new: option '%s' must be a string, got %s", name, luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    *out = copy;
    return 0;
}

static double opt_number(lua_State *L, int opts, const char *name, double dflt, double min, double max)
{
    double v = dflt;

    lua_getfield(L, opts, name);
    if (lua_type(L, -1) == LUA_TNUMBER) {
        v = (double)lua_tonumber(L, -1);
        if (!(v >= min && v <= max))
            return luaL_error(L, "curl_multi.new: option '%s' must be between %f and %f", name, min, max);
    } else if (lua_type(L, -1) != LUA_TNIL) {
        return luaL_error(L, "curl_multi.new: option '%s' must be a number, got %s", name, luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    return v;
}

static long seconds_to_ms(double s)
{
    /* curl treats 0 as "no timeout": a positive timeout never rounds down to it. */
    long ms = (long)(s * 1000.0 + 0.5);
    return (s > 0 && ms == 0) ? 1 : ms;
}

static int multi_new(lua_State *L)
{
    multi *m;
    int i;

    luaL_checktype(L, 1, LUA_TTABLE);
    m = espipe_newuserdata(L, sizeof *m);
    memset(m, 0, sizeof *m);
    luaL_getmetatable(L, MULTI_MT);
    lua_setmetatable(L, -2);

    m->capacity = (int)opt_number(L, 1, "max_inflight", 8, 1, 4096);
    m->cfg.connect_timeout_ms = seconds_to_ms(opt_number(L, 1, "connect_timeout", 5, 0, 86400));
    m->cfg.max_response_bytes = (size_t)opt_number(L, 1, "max_response_bytes",
                                                   (double)DEFAULT_MAX_RESPONSE_BYTES, 1, 1e15);
    opt_string(L, 1, "ca_file", &m->cfg.ca_file);
    opt_string(L, 1, "ca_dir", &m->cfg.ca_dir);
    opt_string(L, 1, "cert", &m->cfg.cert);
    opt_string(L, 1, "key", &m->cfg.key);
    opt_string(L, 1, "username", &m->cfg.username);
    opt_string(L, 1, "password", &m->cfg.password);
    opt_string(L, 1, "auth_header", &m->cfg.auth_header);
    lua_getfield(L, 1, "insecure");
    m->cfg.insecure = lua_toboolean(L, -1);
    lua_pop(L, 1);

    m->slots = calloc((size_t)m->capacity, sizeof *m->slots);
    if (m->slots == NULL)
        return luaL_error(L, "curl_multi.new: out of memory");
    for (i = m->capacity - 1; i >= 0; i--) {
        transfer_init(&m->slots[i]);
        m->slots[i].next_free = m->free_list;
        m->free_list = &m->slots[i];
    }
    m->handle = curl_multi_init();
    if (m->handle == NULL)
        return luaL_error(L, "curl_multi.new: cannot create a curl multi handle");
    /* One connection per request in flight per host; curl keeps them alive between requests. */
    if (curl_multi_setopt(m->handle, CURLMOPT_MAX_HOST_CONNECTIONS, (long)m->capacity) != CURLM_OK
        || curl_multi_setopt(m->handle, CURLMOPT_MAXCONNECTS, (long)m->capacity * 4) != CURLM_OK)
        return luaL_error(L, "curl_multi.new: cannot configure the multi handle");
    return 1;
}

/*
** The body's bytes, without a copy: nil (none), a Lua string, or bytes lent
** by another module (an espipe.bulk buffer), whose lender *from is returned
** so the caller can pin them. 0, or raises.
*/
static int body_bytes(lua_State *L, int idx, const char **p, size_t *len, const lender **from)
{
    const char *why;

    *from = NULL;
    if (lua_isnil(L, idx)) {
        *p = NULL;
        *len = 0;
        return 0;
    }
    *p = borrowed_bytes(L, idx, len, from, &why);
    if (*p != NULL)
        return 0;
    if (why != NULL)
        return luaL_error(L, "curl_multi add: %s", why);
    return luaL_error(L, "curl_multi add: body must be nil, a string or an espipe.bulk buffer, got %s",
                      luaL_typename(L, idx));
}

/* m:add(id, url, method, headers, body, timeout, gzip_level, body_buffer) -> true | nil, message, code */
static int multi_add(lua_State *L)
{
    multi *m = check_open(L);
    lua_Integer id = luaL_checkinteger(L, 2);
    transfer_request req;
    transfer *t;
    const char *why = NULL;
    const lender *lent;
    int i, n, ref, as_buffer;
    CURLMcode mc;

    req.url = luaL_checkstring(L, 3);
    req.method = luaL_checkstring(L, 4);
    luaL_checktype(L, 5, LUA_TTABLE);
    body_bytes(L, 6, &req.body, &req.body_len, &lent);
    req.timeout_ms = seconds_to_ms(luaL_optnumber(L, 7, 0));
    req.gzip_level = (int)luaL_optinteger(L, 8, 0);
    luaL_argcheck(L, req.gzip_level >= 0 && req.gzip_level <= 9, 8, "gzip level must be 0..9");
    as_buffer = lua_toboolean(L, 9);
    n = (int)espipe_rawlen(L, 5);
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, 5, i);
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "curl_multi add: header %d must be a string", i);
        lua_pop(L, 1);
    }
    if (m->free_list == NULL)
        return espipe_push_failure(L, "too many requests in flight", "busy");

    /* Pin the body first: luaL_ref may raise, and nothing is held yet. */
    lua_pushvalue(L, 6);
    ref = luaL_ref(L, LUA_REGISTRYINDEX);

    t = m->free_list;
    m->free_list = t->next_free;
    m->inflight++;
    t->body_ref = ref;
    t->id = id;
    /* While pinned the buffer refuses every change, so curl's pointer stays valid. */
    if (lent != NULL) {
        t->pinned = lua_touserdata(L, 6);
        t->pinned_by = lent;
        lent->pin(t->pinned, 1);
    }
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, 5, i);
        if (transfer_add_header(t, lua_tostring(L, -1)) != 0)
            why = "out of memory";
        lua_pop(L, 1);
        if (why != NULL)
            break;
    }
    if (why == NULL && transfer_prepare(t, &m->cfg, &req, &why) == 0) {
        mc = curl_multi_add_handle(m->handle, t->easy);
        if (mc == CURLM_OK) {
            t->state = TRANSFER_RUNNING;
            t->body_buffer = as_buffer;
            t->started = now_seconds();
            lua_pushboolean(L, 1);
            return 1;
        }
        why = curl_multi_strerror(mc);
    }
    release_slot(L, m, t);
    return espipe_push_failure(L, why, "setup");
}

/* Header lines into a table of lowercased names; repeated names are joined with ", ". */
static void push_headers(lua_State *L, const strbuf *head)
{
    const char *p = head->data, *end = head->data + head->len;

    lua_newtable(L);
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol != NULL ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(line_end - p));
        const char *v, *ve;
        luaL_Buffer name;

        if (colon != NULL && colon > p && memcmp(p, "HTTP/", 5) != 0) {
            const char *c;
            luaL_buffinit(L, &name);
            for (c = p; c < colon; c++)
                luaL_addchar(&name, (*c >= 'A' && *c <= 'Z') ? (char)(*c + 32) : *c);
            luaL_pushresult(&name);
            for (v = colon + 1; v < line_end && (*v == ' ' || *v == '\t'); v++)
                ;
            for (ve = line_end; ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'); ve--)
                ;
            lua_pushvalue(L, -1);
            lua_rawget(L, -3);
            if (lua_type(L, -1) == LUA_TSTRING) {
                lua_pushliteral(L, ", ");
                lua_pushlstring(L, v, (size_t)(ve - v));
                lua_concat(L, 3);
            } else {
                lua_pop(L, 1);
                lua_pushlstring(L, v, (size_t)(ve - v));
            }
            lua_rawset(L, -3);
        }
        p = line_end + 1;
    }
}

/*
** The completion table of t, pushed. A body delivered as a response_body is
** returned still empty: deliver() moves the bytes in once nothing can raise
** any more, so a slot re-delivered after a memory error still has them.
*/
static response_body *push_completion(lua_State *L, transfer *t, double now)
{
    long status = 0;
    curl_off_t sent = 0;
    response_body *b = NULL;

    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(t->easy, CURLINFO_REQUEST_SIZE, &sent);
    lua_createtable(L, 0, 8);
    lua_pushinteger(L, t->id);
    lua_setfield(L, -2, "id");
    lua_pushinteger(L, (lua_Integer)status);
    lua_setfield(L, -2, "status");
    push_headers(L, &t->head);
    lua_setfield(L, -2, "headers");
    if (t->body_buffer && t->result == CURLE_OK && status >= 200 && status < 300) {
        b = (response_body *)espipe_newuserdata(L, sizeof *b);
        b->data = NULL;
        b->len = 0;
        b->released = 0;
        luaL_getmetatable(L, ESPIPE_RESPONSE_BODY_MT);
        lua_setmetatable(L, -2);
    } else {
        lua_pushlstring(L, t->body.data != NULL ? t->body.data : "", t->body.len);
    }
    lua_setfield(L, -2, "body");
    lua_pushnumber(L, (lua_Number)(now - t->started));
    lua_setfield(L, -2, "elapsed");
    /* Whether request bytes reached the socket: tells a refused/unreachable host from a slow one. */
    lua_pushboolean(L, sent > 0);
    lua_setfield(L, -2, "sent");
    if (t->result != CURLE_OK) {
        const char *code = t->too_large ? "too_large" : curl_code_name(t->result);
        lua_pushstring(L, code);
        lua_setfield(L, -2, "code");
        if (t->too_large)
            lua_pushliteral(L, "response larger than max_response_bytes");
        else if (t->errbuf[0] != '\0')
            lua_pushstring(L, t->errbuf);
        else
            lua_pushstring(L, curl_easy_strerror(t->result));
        lua_setfield(L, -2, "message");
    }
    return b;
}

/* Move finished transfers out of curl, then hand every finished one to Lua. */
static int deliver(lua_State *L, multi *m)
{
    CURLMsg *msg;
    int left, i, n = 0;
    double now = now_seconds();

    while ((msg = curl_multi_info_read(m->handle, &left)) != NULL) {
        transfer *t = NULL;
        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        t->result = msg->data.result;
        t->state = TRANSFER_DONE;
        curl_multi_remove_handle(m->handle, t->easy);
    }
    /*
    ** DONE slots survive a memory error raised while building their tables:
    ** the next poll delivers them again.
    */
    for (i = 0; i < m->capacity; i++) {
        transfer *t = &m->slots[i];
        if (t->state != TRANSFER_DONE)
            continue;
        response_body *b = push_completion(L, t, now);
        lua_rawseti(L, -2, ++n);
        if (b != NULL) {
            /* the bytes move; the transfer's next response starts a new buffer */
            b->data = t->body.data;
            b->len = t->body.len;
            strbuf_init(&t->body);
        }
        release_slot(L, m, t);
    }
    return n;
}

/* m:poll(timeout) -> array of completions; waits at most timeout seconds for one. */
static int multi_poll(lua_State *L)
{
    multi *m = check_open(L);
    double timeout = luaL_optnumber(L, 2, 0);
    double deadline;
    int running;

    luaL_argcheck(L, timeout >= 0, 2, "timeout must be >= 0");
    deadline = now_seconds() + timeout;
    lua_newtable(L);
    for (;;) {
        double left;
        CURLMcode mc = curl_multi_perform(m->handle, &running);
        if (mc != CURLM_OK)
            return luaL_error(L, "curl_multi_perform: %s", curl_multi_strerror(mc));
        if (deliver(L, m) > 0 || m->inflight == 0)
            break;
        left = deadline - now_seconds();
        if (left <= 0)
            break;
        /* Cap each wait: curl's own timers (connect, timeout) are honoured inside perform. */
        mc = curl_multi_poll(m->handle, NULL, 0, (int)(left > 1.0 ? 1000 : left * 1000.0 + 1), NULL);
        if (mc != CURLM_OK)
            return luaL_error(L, "curl_multi_poll: %s", curl_multi_strerror(mc));
    }
    return 1;
}

static int multi_inflight(lua_State *L)
{
    multi *m = luaL_checkudata(L, 1, MULTI_MT);

    lua_pushinteger(L, m->inflight);
    return 1;
}

static int multi_capacity(lua_State *L)
{
    multi *m = luaL_checkudata(L, 1, MULTI_MT);

    lua_pushinteger(L, m->capacity);
    return 1;
}

static int multi_tostring(lua_State *L)
{
    multi *m = luaL_checkudata(L, 1, MULTI_MT);

    if (m->handle == NULL)
        lua_pushliteral(L, "espipe.curl_multi (closed)");
    else
        lua_pushfstring(L, "espipe.curl_multi (%d of %d in flight)", m->inflight, m->capacity);
    return 1;
}

static int cm_now(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)now_seconds());
    return 1;
}

/* A plain wait for backoff when nothing is in flight: no busy loop on the clock. */
static int cm_sleep(lua_State *L)
{
    double seconds = luaL_checknumber(L, 1);
    struct timespec ts;

    if (seconds <= 0)
        return 0;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0)
        ;   /* EINTR: sleep the rest */
    return 0;
}

static int cm_version(lua_State *L)
{
    lua_pushstring(L, curl_version());
    return 1;
}

/* ---- espipe.response_body ---- */

static response_body *check_body(lua_State *L)
{
    return (response_body *)luaL_checkudata(L, 1, ESPIPE_RESPONSE_BODY_MT);
}

static int body_release(lua_State *L)
{
    response_body *b = check_body(L);
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->released = 1;
    return 0;
}

static int body_gc(lua_State *L)
{
    response_body *b = check_body(L);
    free(b->data);
    b->data = NULL;
    return 0;
}

/* The body's bytes, lent to other modules too (base/borrowed.h). */
static const char *body_bytes_of(void *ud, size_t *len, const char **why)
{
    const response_body *b = (const response_body *)ud;
    if (b->released) {
        *why = "the response body was released";
        return NULL;
    }
    *len = b->len;
    return b->data != NULL ? b->data : "";
}

/* A body never changes until released: nothing to pin. */
static void body_pin(void *ud, int delta)
{
    (void)ud;
    (void)delta;
}

static const lender body_lender = { body_bytes_of, body_pin };

static int body_len(lua_State *L)
{
    size_t len = 0;
    const char *why = NULL;
    if (body_bytes_of(check_body(L), &len, &why) == NULL)
        return luaL_error(L, "%s", why);
    lua_pushinteger(L, (lua_Integer)len);
    return 1;
}

static int body_tostring(lua_State *L)
{
    size_t len = 0;
    const char *why = NULL;
    const char *p = body_bytes_of(check_body(L), &len, &why);
    if (p == NULL)
        return luaL_error(L, "%s", why);
    lua_pushlstring(L, p, len);
    return 1;
}

static const luaL_Reg body_methods[] = {
    { "release", body_release },
    { NULL, NULL }
};

static const luaL_Reg multi_methods[] = {
    { "add", multi_add },
    { "poll", multi_poll },
    { "inflight", multi_inflight },
    { "capacity", multi_capacity },
    { "close", multi_close },
    { NULL, NULL }
};

static const luaL_Reg multi_meta[] = {
    { "__gc", multi_close },
    { "__close", multi_close },
    { "__tostring", multi_tostring },
    { NULL, NULL }
};

static const luaL_Reg body_meta[] = {
    { "__gc", body_gc },
    { "__len", body_len },
    { "__tostring", body_tostring },
    { NULL, NULL }
};

/* A userdata type: its metatable (meta, methods as __index, lending through l unless NULL). */
static void new_class(lua_State *L, const char *name, const luaL_Reg *methods,
                      const luaL_Reg *meta, const lender *l)
{
    if (luaL_newmetatable(L, name)) {
        espipe_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        espipe_setfuncs(L, meta, 0);
        if (l != NULL)
            borrowed_lend(L, l);
    }
    lua_pop(L, 1);
}

static const luaL_Reg module_functions[] = {
    { "new", multi_new },
    { "now", cm_now },
    { "sleep", cm_sleep },
    { "version", cm_version },
    { NULL, NULL }
};

ESPIPE_EXPORT int luaopen_espipe_curl_multi(lua_State *L);

int luaopen_espipe_curl_multi(lua_State *L)
{
    static int curl_ready = 0;

    if (!curl_ready) {
        CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
        if (rc != CURLE_OK)
            return luaL_error(L, "curl_global_init: %s", curl_easy_strerror(rc));
        curl_ready = 1;
    }
    new_class(L, MULTI_MT, multi_methods, multi_meta, NULL);
    new_class(L, ESPIPE_RESPONSE_BODY_MT, body_methods, body_meta, &body_lender);
    espipe_newlib(L, module_functions);
    return 1;
}
