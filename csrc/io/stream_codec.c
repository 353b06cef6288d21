/*
** Streaming gzip and zstd for espipe's input files and export output.
**
**   core.detect_compression(bytes)   -> "gzip" | "zstd" | nil (by magic bytes)
**   d = core.decoder("gzip"|"zstd")
**   d:push(chunk)                    -- queue compressed input
**   d:pull(max) -> out               -- up to max bytes; "" means "push more"
**               -> nil, msg, offset  -- corrupt input (offset into the compressed stream)
**   d:finish()  -> true | nil, msg, offset   -- at end of input: was the stream complete?
**   e = core.encoder("gzip"|"zstd"[, level])
**   e:compress(data) -> out   e:finish() -> out
**
** Memory is bounded by the caller: pull never returns more than max bytes, so
** a highly compressed input cannot expand into one huge string, and push is
** meant to be called only after pull returned "" (pending input stays small).
** Every buffer lives in the userdata and is released by __gc, so raising on a
** wrong argument or on OOM never leaks.
*/
#include <stdint.h>
#include <string.h>

#include <zlib.h>
#include <zstd.h>

#include "base/compat.h"
#include "core.h"
#include "base/strbuf.h"

#define DECODER_MT "espipe.decoder"
#define ENCODER_MT "espipe.encoder"

enum codec { CODEC_GZIP, CODEC_ZSTD };

typedef struct decoder {
    enum codec codec;
    int ready;          /* stream state initialised (and must be released) */
    int member_end;     /* the last gzip member / zstd frame ended cleanly */
    z_stream z;
    ZSTD_DStream *zd;
    strbuf in;          /* pending compressed input: in.data[in_pos .. in.len) */
    size_t in_pos;
    uint64_t total_in;  /* compressed bytes consumed so far, for error offsets */
    strbuf out;
} decoder;

typedef struct encoder {
    enum codec codec;
    int ready;
    int finished;
    z_stream z;
    ZSTD_CStream *zc;
    strbuf out;
} encoder;

static int check_codec(lua_State *L, int arg)
{
    static const char *const names[] = { "gzip", "zstd", NULL };
    return luaL_checkoption(L, arg, NULL, names);
}

static int l_detect_compression(lua_State *L)
{
    size_t n;
    const unsigned char *p = (const unsigned char *)luaL_checklstring(L, 1, &n);

    if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b)
        lua_pushliteral(L, "gzip");
    else if (n >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd)
        lua_pushliteral(L, "zstd");
    else
        lua_pushnil(L);
    return 1;
}

/* ---- decoder ---------------------------------------------------------- */

static decoder *check_decoder(lua_State *L)
{
    return (decoder *)luaL_checkudata(L, 1, DECODER_MT);
}

static int l_decoder_new(lua_State *L)
{
    int codec = check_codec(L, 1);
    decoder *d = (decoder *)espipe_newuserdata(L, sizeof(*d));

    memset(d, 0, sizeof(*d));
    strbuf_init(&d->in);
    strbuf_init(&d->out);
    d->codec = (enum codec)codec;
    luaL_getmetatable(L, DECODER_MT);
    lua_setmetatable(L, -2);
    if (d->codec == CODEC_GZIP) {
        /* 16 + 15: gzip wrapper only, 32 KB window */
        if (inflateInit2(&d->z, 16 + 15) != Z_OK)
            return luaL_error(L, "decoder: cannot initialise zlib (out of memory)");
    } else {
        d->zd = ZSTD_createDStream();
        if (d->zd == NULL)
            return luaL_error(L, "decoder: cannot create a zstd stream (out of memory)");
        ZSTD_initDStream(d->zd);
    }
    d->ready = 1;
    return 1;
}

static int l_decoder_push(lua_State *L)
{
    decoder *d = check_decoder(L);
    size_t n;
    const char *p = luaL_checklstring(L, 2, &n);

    if (d->in_pos > 0) {
        memmove(d->in.data, d->in.data + d->in_pos, d->in.len - d->in_pos);
        d->in.len -= d->in_pos;
        d->in_pos = 0;
    }
    if (strbuf_append(&d->in, p, n) != 0)
        return luaL_error(L, "decoder: out of memory queueing %d bytes", (int)n);
    return 0;
}

static int decode_error(lua_State *L, decoder *d, const char *what)
{
    lua_pushnil(L);
    lua_pushfstring(L, "corrupt %s input: %s", d->codec == CODEC_GZIP ? "gzip" : "zstd", what);
    lua_pushinteger(L, (lua_Integer)d->total_in);
    return 3;
}

static int pull_gzip(lua_State *L, decoder *d, size_t max)
{
    while (d->out.len < max) {
        size_t pending = d->in.len - d->in_pos, room = max - d->out.len;
        size_t consumed, produced;
        int rc;

        if (d->member_end) {
            /* a concatenated gzip file carries further members */
            if (pending == 0)
                break;
            inflateReset(&d->z);
            d->member_end = 0;
        }
        d->z.next_in = (Bytef *)(d->in.data ? d->in.data + d->in_pos : NULL);
        d->z.avail_in = (uInt)(pending > UINT32_MAX ? UINT32_MAX : pending);
        d->z.next_out = (Bytef *)(d->out.data + d->out.len);
        d->z.avail_out = (uInt)(room > UINT32_MAX ? UINT32_MAX : room);
        rc = inflate(&d->z, Z_NO_FLUSH);
        consumed = (size_t)((pending > UINT32_MAX ? UINT32_MAX : pending) - d->z.avail_in);
        produced = (size_t)((room > UINT32_MAX ? UINT32_MAX : room) - d->z.avail_out);
        d->in_pos += consumed;
        d->total_in += consumed;
        d->out.len += produced;
        if (rc == Z_STREAM_END) {
            d->member_end = 1;
            continue;
        }
        if (rc == Z_BUF_ERROR || (rc == Z_OK && consumed == 0 && produced == 0))
            break;
        if (rc != Z_OK)
            return decode_error(L, d, d->z.msg ? d->z.msg : "inflate failed");
    }
    return 0;
}

static int pull_zstd(lua_State *L, decoder *d, size_t max)
{
    while (d->out.len < max) {
        ZSTD_inBuffer in;
        ZSTD_outBuffer out;
        size_t rc;

        in.src = d->in.data ? d->in.data + d->in_pos : NULL;
        in.size = d->in.len - d->in_pos;
        in.pos = 0;
        out.dst = d->out.data + d->out.len;
        out.size = max - d->out.len;
        out.pos = 0;
        rc = ZSTD_decompressStream(d->zd, &out, &in);
        if (ZSTD_isError(rc)) {
            d->total_in += in.pos;
            return decode_error(L, d, ZSTD_getErrorName(rc));
        }
        d->in_pos += in.pos;
        d->total_in += in.pos;
        d->out.len += out.pos;
        if (in.pos == 0 && out.pos == 0)
            break;
        d->member_end = (rc == 0);
    }
    return 0;
}

static int l_decoder_pull(lua_State *L)
{
    decoder *d = check_decoder(L);
    lua_Integer max = luaL_optinteger(L, 2, 65536);
    int nret;

    if (max < 1)
        return luaL_argerror(L, 2, "max must be a positive byte count");
    if (!d->ready)
        return luaL_error(L, "decoder: already finished");
    d->out.len = 0;
    if (strbuf_reserve(&d->out, (size_t)max) != 0)
        return luaL_error(L, "decoder: out of memory for a %d byte output", (int)max);
    nret = d->codec == CODEC_GZIP ? pull_gzip(L, d, (size_t)max) : pull_zstd(L, d, (size_t)max);
    if (nret > 0)
        return nret;
    lua_pushlstring(L, d->out.data, d->out.len);
    d->out.len = 0;
    return 1;
}

/* encoder_release is its twin: each direction has its own end call and stream type. */
static void decoder_release(decoder *d)
{
    if (d->ready) {
        if (d->codec == CODEC_GZIP)
            inflateEnd(&d->z);
        else
            ZSTD_freeDStream(d->zd);
        d->zd = NULL;
        d->ready = 0;
    }
    strbuf_free(&d->in);
    strbuf_free(&d->out);
}

static int l_decoder_finish(lua_State *L)
{
    decoder *d = check_decoder(L);
    int complete = d->member_end && d->in_pos == d->in.len;
    uint64_t at = d->total_in;

    decoder_release(d);
    if (complete) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushnil(L);
    lua_pushstring(L, at == 0 ? "empty compressed input" : "truncated compressed input");
    lua_pushinteger(L, (lua_Integer)at);
    return 3;
}

static int l_decoder_gc(lua_State *L)
{
    decoder_release(check_decoder(L));
    return 0;
}

/* ---- encoder ---------------------------------------------------------- */

static encoder *check_encoder(lua_State *L)
{
    return (encoder *)luaL_checkudata(L, 1, ENCODER_MT);
}

static int l_encoder_new(lua_State *L)
{
    int codec = check_codec(L, 1);
    lua_Integer level;
    encoder *e;

    if (codec == CODEC_GZIP) {
        level = luaL_optinteger(L, 2, 6);
        luaL_argcheck(L, level >= 1 && level <= 9, 2, "gzip level must be 1..9");
    } else {
        level = luaL_optinteger(L, 2, 3);
        luaL_argcheck(L, level >= 1 && level <= ZSTD_maxCLevel(), 2, "zstd level out of range");
    }
    e = (encoder *)espipe_newuserdata(L, sizeof(*e));
    memset(e, 0, sizeof(*e));
    strbuf_init(&e->out);
    e->codec = (enum codec)codec;
    luaL_getmetatable(L, ENCODER_MT);
    lua_setmetatable(L, -2);
    if (e->codec == CODEC_GZIP) {
        if (deflateInit2(&e->z, (int)level, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return luaL_error(L, "encoder: cannot initialise zlib (out of memory)");
    } else {
        e->zc = ZSTD_createCStream();
        if (e->zc == NULL)
            return luaL_error(L, "encoder: cannot create a zstd stream (out of memory)");
        if (ZSTD_isError(ZSTD_initCStream(e->zc, (int)level))) {
            ZSTD_freeCStream(e->zc);
            e->zc = NULL;
            return luaL_error(L, "encoder: cannot initialise zstd level %d", (int)level);
        }
    }
    e->ready = 1;
    return 1;
}

/* Run the compressor over p[0..n) (finish: flush and end the stream) into e->out. */
static int encode(encoder *e, const char *p, size_t n, int finish)
{
    const size_t step = 65536;

    if (e->codec == CODEC_GZIP) {
        int rc;
        e->z.next_in = (Bytef *)p;
        e->z.avail_in = (uInt)n;
        do {
            if (strbuf_reserve(&e->out, step) != 0)
                return -1;
            e->z.next_out = (Bytef *)(e->out.data + e->out.len);
            e->z.avail_out = (uInt)step;
            rc = deflate(&e->z, finish ? Z_FINISH : Z_NO_FLUSH);
            e->out.len += step - e->z.avail_out;
            if (rc == Z_STREAM_ERROR)
                return -1;
        } while (e->z.avail_out == 0 || e->z.avail_in > 0 || (finish && rc != Z_STREAM_END));
    } else {
        ZSTD_inBuffer in;
        size_t remaining;
        in.src = p;
        in.size = n;
        in.pos = 0;
        do {
            ZSTD_outBuffer out;
            if (strbuf_reserve(&e->out, step) != 0)
                return -1;
            out.dst = e->out.data + e->out.len;
            out.size = step;
            out.pos = 0;
            remaining = ZSTD_compressStream2(e->zc, &out, &in, finish ? ZSTD_e_end : ZSTD_e_continue);
            if (ZSTD_isError(remaining))
                return -1;
            e->out.len += out.pos;
        } while (in.pos < in.size || (finish && remaining != 0));
    }
    return 0;
}

/* decoder_release's twin: zlib and zstd end each direction with its own call. */
static void encoder_release(encoder *e)
{
    if (e->ready) {
        if (e->codec == CODEC_GZIP)
            deflateEnd(&e->z);
        else
            ZSTD_freeCStream(e->zc);
        e->zc = NULL;
        e->ready = 0;
    }
    strbuf_free(&e->out);
}

static int encoder_step(lua_State *L, int finish)
{
    encoder *e = check_encoder(L);
    size_t n = 0;
    const char *p = finish ? "" : luaL_checklstring(L, 2, &n);

    if (!e->ready || e->finished)
        return luaL_error(L, "encoder: already finished");
    e->out.len = 0;
    if (encode(e, p, n, finish) != 0)
        return luaL_error(L, "encoder: compression failed (out of memory?)");
    lua_pushlstring(L, e->out.data ? e->out.data : "", e->out.len);
    e->out.len = 0;
    if (finish) {
        e->finished = 1;
        encoder_release(e);
    }
    return 1;
}

static int l_encoder_compress(lua_State *L)
{
    return encoder_step(L, 0);
}

static int l_encoder_finish(lua_State *L)
{
    return encoder_step(L, 1);
}

static int l_encoder_gc(lua_State *L)
{
    encoder_release(check_encoder(L));
    return 0;
}

static void new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc)
{
    luaL_newmetatable(L, name);
    lua_newtable(L);
    espipe_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
}

void espipe_open_stream_codec(lua_State *L)
{
    static const luaL_Reg decoder_methods[] = {
        { "push", l_decoder_push },
        { "pull", l_decoder_pull },
        { "finish", l_decoder_finish },
        { NULL, NULL },
    };
    static const luaL_Reg encoder_methods[] = {
        { "compress", l_encoder_compress },
        { "finish", l_encoder_finish },
        { NULL, NULL },
    };
    static const luaL_Reg funcs[] = {
        { "detect_compression", l_detect_compression },
        { "decoder", l_decoder_new },
        { "encoder", l_encoder_new },
        { NULL, NULL },
    };

    new_class(L, DECODER_MT, decoder_methods, l_decoder_gc);
    new_class(L, ENCODER_MT, encoder_methods, l_encoder_gc);
    espipe_setfuncs(L, funcs, 0);
}
