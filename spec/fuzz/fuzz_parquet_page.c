/*
** libFuzzer target for the Parquet page reader (w:write_page). For any input:
**  - reading a page fails exactly when the search response reader fails,
**    or when the input is a response the page reader cannot take (hits.hits
**    missing or holding a non-object), and then at an offset inside the input;
**  - a page read is written without failing, one row per hit;
**  - nothing leaks (ASan's leak check) and the writer closes cleanly.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/compat.h"
#include "lualib.h"
#include "core.h"
#include "json/json.h"
#include "parquet/page_reader.h"
#include "parquet/writer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;
static int fn_ref;

static const char *const segs_id[] = { "_id" };
static const char *const segs_s[] = { "_source", "s" };
static const char *const segs_host[] = { "_source", "host", "name" };
static const size_t lens_id[] = { 3 }, lens_s[] = { 7, 1 }, lens_host[] = { 7, 4, 4 };
static const pq_kind kinds[] = { PQ_STRING, PQ_INT64, PQ_TIMESTAMP, PQ_DOUBLE, PQ_BOOLEAN, PQ_JSON, PQ_STRING };

/* 1 when core.search_response reads the input. */
static int decoder_reads(const uint8_t *data, size_t size)
{
    int ok;
    lua_rawgeti(L, LUA_REGISTRYINDEX, fn_ref);
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 1, 0) != 0)
        abort();
    ok = lua_type(L, -1) == LUA_TTABLE;
    lua_pop(L, 1);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pq_page_reader *r;
    pq_writer w;
    pq_options opt;
    char err[ESPIPE_JSON_ERRLEN];
    size_t at = 0, i, ncols = sizeof kinds / sizeof kinds[0];
    FILE *fp;
    int rc;

    if (L == NULL) {
        L = luaL_newstate();
        luaL_openlibs(L);
        luaL_requiref(L, "espipe.core", luaopen_espipe_core, 0);
        lua_getfield(L, -1, "search_response");
        fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        lua_pop(L, 1);
    }
    r = pq_page_reader_new(ncols);
    if (r == NULL)
        abort();
    for (i = 0; i < ncols; i++) {
        int rc2;
        if (i == 0)
            rc2 = pq_page_reader_set_path(r, i, segs_id, lens_id, 1);
        else if (i == ncols - 1)
            rc2 = pq_page_reader_set_path(r, i, segs_host, lens_host, 3);
        else
            rc2 = pq_page_reader_set_path(r, i, segs_s, lens_s, 2);
        if (rc2 != 0)
            abort();
    }
    rc = pq_page_read(r, (const char *)data, size, err, &at);
    if (rc != 0) {
        if (at > size || err[0] == '\0')
            abort();
        /* a grammar error of the page is one the decoder sees too */
        if (strstr(err, "hits") == NULL && strstr(err, "a hit") == NULL &&
            strstr(err, "out of range") == NULL && decoder_reads(data, size))
            abort();
    } else {
        memset(&opt, 0, sizeof opt);
        opt.codec = PQ_UNCOMPRESSED;
        opt.row_group_bytes = 4096;
        opt.page_bytes = 512;
        opt.dictionary_bytes = 1024;
        opt.dictionary_entries = 64;
        fp = fopen("/dev/null", "wb");
        if (fp == NULL || pq_writer_init(&w, fp, &opt, ncols) != 0)
            abort();
        for (i = 0; i < ncols; i++)
            if (pq_writer_set_column(&w, i, "c", kinds[i]) != 0)
                abort();
        if (pq_page_write(r, &w) != 0)
            abort();
        if (w.rows + w.rg_rows != pq_page_hits(r))
            abort();
        if (pq_writer_finish(&w, NULL, NULL, NULL, NULL, 0, "fuzz") != 0)
            abort();
        pq_writer_free(&w);
    }
    pq_page_reader_free(r);
    return 0;
}
