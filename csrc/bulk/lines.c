/*
** espipe.core bulk_lines: NDJSON lines appended to a bulk buffer as they are,
** their action lines built from a few top-level fields read off the text
** (an id, the dates of an index pattern), without decoding the document.
**
**   local lines = core.bulk_lines_new{ op = "index"|"create", index = NAME, id_field = F, routing_field = R,
**                                      pattern = { "logs-", { field =, fmt = }, ... },
**                                      check = "object"|"json", max_line = N }
**   core.bulk_lines_append(buf, max_docs, max_bytes, lines, chunk, pos, indices)
**     -> next_pos, lines_consumed, docs_added, stop
** (buf and the limits first: the bulk indexer's fill() passes them.)
**
** append takes the complete lines of chunk from pos (1-based) and stops:
**   "end"    at the first line without its newline (or past the end);
**   "full"   once the buffer holds max_docs items or max_bytes bytes;
**   "line"   before a line it does not take: next_pos is that line's first
**            byte, for the caller's own reader (the Lua path of load, which
**            decides whether it is a bad line and says why);
**   "memory" when the buffer cannot grow (nothing half-written is kept).
** Blank lines are consumed and add nothing. indices[name] counts the
** documents appended for each index of a pattern (added to what it holds).
**
** It takes a line only when the Lua path would accept it and build the very
** same bytes; anything unusual is left to Lua ("line"), which is always
** right, only slower. check "object" is load's cheap check (a '{' ... '}'
** line of valid UTF-8); check "json" (any field wanted, or strict) walks the
** whole line with the decoder's own grammar pieces: strings, escapes, UTF-8
** and the number range as json.decode has them, duplicate keys resolved as
** a decode into a table does (the last one counts).
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulk.h"
#include "lines.h"
#include "json/reader.h"
#include "time_id.h"

#define BL_MAX_PIECES 32
#define BL_MAX_SEGS 8
#define BL_DEPTH 128        /* deeper lines go to Lua, whose decoder allows 1000 */
#define BL_NAME_CACHE 8
#define BL_NAME_MAX 255     /* Elasticsearch's longest index name, in bytes */
#define BL_EPOCH_LIMIT 1000000000000000LL   /* |epoch ms| below 1e15: exact as doubles */

enum { CHECK_OBJECT, CHECK_JSON };
enum { STOP_END, STOP_FULL, STOP_LINE, STOP_MEMORY };
static const char *const stop_names[] = { "end", "full", "line", "memory" };

/* A field of the index pattern: its whole path and, when dotted, its segments. */
typedef struct bl_path {
    char *text;
    size_t len;
    int nseg;
    size_t seg_at[BL_MAX_SEGS], seg_len[BL_MAX_SEGS];
} bl_path;

typedef struct bl_piece {
    char *text;         /* the literal, or the field's format */
    size_t len;
    int path;           /* index into paths, or -1 for a literal */
} bl_piece;

typedef struct bl_name {
    size_t len;
    lua_Integer pending;    /* documents not yet added to indices[name] */
    char text[BL_NAME_MAX];
} bl_name;

typedef struct bulk_lines {
    int op;
    int check;
    size_t max_line;
    char *index;        /* a fixed destination, or NULL */
    size_t index_len;
    char *id_field;     /* NULL when ids are not taken from the documents */
    size_t id_len;
    char *routing_field;    /* NULL when there is no per-document routing */
    size_t routing_len;
    int npieces, npaths;
    bl_piece pieces[BL_MAX_PIECES];
    bl_path paths[BL_MAX_PIECES];
    strbuf scratch;     /* unescaped keys and values */
    strbuf name;        /* the index name being built */
    bl_name seen[BL_NAME_CACHE];    /* recent names and their uncounted documents */
    int next_seen;
    const char *unsupported;        /* why the C path cannot take this configuration */
} bulk_lines;

/* A value's text in the line: [at, end). */
typedef struct bl_span {
    const unsigned char *at, *end;
} bl_span;

/* The keys looked for in one object, and where the last of each was. */
#define BL_MAX_WANT (2 + 2 * BL_MAX_PIECES)
typedef struct bl_want {
    int n;
    const char *key[BL_MAX_WANT];
    size_t len[BL_MAX_WANT];
    bl_span got[BL_MAX_WANT];
} bl_want;

/* ---- walking a line the way json.decode reads it ----------------------- */

static int walk_value(json_decoder *d, strbuf *scratch, bl_want *want);

/*
** The key at d->p (a quote), escapes resolved: in place when it has none.
** search/page_envelope.h's page_key is this with a wide plain-byte skip
** first and an in_page flag; kept apart because this runs for every key of
** every line loaded and the wide skip does not pay on short keys.
*/
static int read_key(json_decoder *d, strbuf *scratch, const char **k, size_t *klen)
{
    const unsigned char *q = d->p, *p = json_skip_clean(q + 1, d->end);

    if (p < d->end && *p == '"') {
        *k = (const char *)q + 1;
        *klen = (size_t)(p - q - 1);
        d->p = p + 1;
        return 0;
    }
    scratch->len = 0;
    if (json_dec_unescape(d, scratch) != 0)
        return -1;
    *k = scratch->data != NULL ? scratch->data : "";
    *klen = scratch->len;
    return 0;
}

static void note_member(bl_want *want, const char *k, size_t klen, const unsigned char *at,
                        const unsigned char *end)
{
    int i;

    for (i = 0; i < want->n; i++)
        if (want->len[i] == klen && memcmp(want->key[i], k, klen) == 0) {
            want->got[i].at = at;   /* a later duplicate replaces it, as in a decoded table */
            want->got[i].end = end;
        }
}

/* d->p past '{'. want: the keys to note at this level, or NULL. */
static int walk_object(json_decoder *d, strbuf *scratch, bl_want *want)
{
    const char *k;
    size_t klen;
    const unsigned char *at;
    int more;

    if (json_dec_closes(d, '}'))
        return 0;
    do {
        if (d->p >= d->end || *d->p != '"')
            return -1;
        if (want == NULL) {
            if (json_dec_skip(d) != 0)
                return -1;
        } else if (read_key(d, scratch, &k, &klen) != 0) {
            return -1;
        }
        if (json_dec_colon(d) != 0)
            return -1;
        json_dec_space(d);
        at = d->p;
        if (walk_value(d, scratch, NULL) != 0)
            return -1;
        if (want != NULL)
            note_member(want, k, klen, at, d->p);
        more = json_dec_next(d, '}');
    } while (more > 0);
    return more;
}

static int walk_array(json_decoder *d, strbuf *scratch)
{
    int more;

    if (json_dec_closes(d, ']'))
        return 0;
    do {
        if (walk_value(d, scratch, NULL) != 0)
            return -1;
        more = json_dec_next(d, ']');
    } while (more > 0);
    return more;
}

/*
** Checks the value at d->p as json.decode would take it (json_dec_skip does
** not range-check numbers, so they are read here; integers too long for
** int64 are left to Lua). want: the keys to note if it is an object.
*/
static int walk_value(json_decoder *d, strbuf *scratch, bl_want *want)
{
    json_num num;

    json_dec_space(d);
    if (d->p >= d->end)
        return -1;
    switch (*d->p) {
    case '{':
        if (json_dec_enter(d) != 0)
            return -1;
        return walk_object(d, scratch, want);
    case '[':
        if (json_dec_enter(d) != 0)
            return -1;
        return walk_array(d, scratch);
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        if (json_dec_number(d, &num) != 0 || num.kind == JSON_NUM_BIG)
            return -1;
        return 0;
    default:
        return json_dec_skip(d);    /* a string or a literal */
    }
}

static void decoder_on(json_decoder *d, json_decode_cfg *cfg, char *err,
                       const unsigned char *at, const unsigned char *end)
{
    json_decode_cfg_default(cfg);
    cfg->max_depth = BL_DEPTH;
    memset(d, 0, sizeof *d);
    d->L = NULL;
    d->p = d->start = at;
    d->end = end;
    d->cfg = cfg;
    d->err = err;
}

/* The whole line as one JSON object, noting want's keys at its top level. */
static int walk_line(const unsigned char *s, size_t len, strbuf *scratch, bl_want *want)
{
    json_decoder d;
    json_decode_cfg cfg;
    char err[ESPIPE_JSON_ERRLEN];

    decoder_on(&d, &cfg, err, s, s + len);
    json_dec_space(&d);
    if (d.p >= d.end || *d.p != '{' || walk_value(&d, scratch, want) != 0)
        return -1;
    json_dec_space(&d);
    return d.p == d.end ? 0 : -1;
}

/* The member key of an object span already walked (so it is valid JSON). */
static int member_of(bl_span obj, const char *key, size_t klen, strbuf *scratch, bl_span *out)
{
    bl_want want;

    if (obj.at == NULL || *obj.at != '{')
        return -1;
    want.n = 1;
    want.key[0] = key;
    want.len[0] = klen;
    want.got[0].at = NULL;
    if (walk_line(obj.at, (size_t)(obj.end - obj.at), scratch, &want) != 0 || want.got[0].at == NULL)
        return -1;
    *out = want.got[0];
    return 0;
}

/* ---- values as the Lua path reads them -------------------------------- */

/* A string value's text with its escapes resolved (in place when it has none). */
static int string_value(bl_span v, strbuf *scratch, const char **s, size_t *len)
{
    json_decoder d;
    json_decode_cfg cfg;
    char err[ESPIPE_JSON_ERRLEN];

    if (v.at == NULL || *v.at != '"')
        return -1;
    decoder_on(&d, &cfg, err, v.at, v.end);
    return read_key(&d, scratch, s, len);
}

/*
** A number value that is an integer, as the Lua path holds it: an integer,
** or a float with an integral value within +-2^53 (what 5.1 and LuaJIT read
** any JSON integer as, and what 1.0 or 1e3 decode to).
*/
static int integer_value(bl_span v, int64_t *out)
{
    json_decoder d;
    json_decode_cfg cfg;
    char err[ESPIPE_JSON_ERRLEN];
    json_num num;

    if (v.at == NULL || !(*v.at == '-' || (*v.at >= '0' && *v.at <= '9')))
        return -1;
    decoder_on(&d, &cfg, err, v.at, v.end);
    if (json_dec_number(&d, &num) != 0)
        return -1;
    if (num.kind == JSON_NUM_INTEGER) {
        *out = num.i;
        return 0;
    }
    if (num.kind == JSON_NUM_DOUBLE && num.d >= -9007199254740992.0 && num.d <= 9007199254740992.0 &&
        num.d == (double)(int64_t)num.d) {
        *out = (int64_t)num.d;
        return 0;
    }
    return -1;
}

/* ---- dates of the index pattern (index_pattern.lua's date_parts) ------- */

typedef struct bl_date {
    int64_t y, m, d, h;
} bl_date;

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Howard Hinnant's civil-from-days, with the floor divisions of the Lua code. */
static void days_to_civil(int64_t z, bl_date *out)
{
    int64_t era, doe, yoe, y, doy, mp;

    z += 719468;
    era = floor_div(z >= 0 ? z : z - 146096, 146097);
    doe = z - era * 146097;
    yoe = floor_div(doe - floor_div(doe, 1460) + floor_div(doe, 36524) - floor_div(doe, 146096), 365);
    y = yoe + era * 400;
    doy = doe - (365 * yoe + floor_div(yoe, 4) - floor_div(yoe, 100));
    mp = floor_div(5 * doy + 2, 153);
    out->d = doy - floor_div(153 * mp + 2, 5) + 1;
    out->m = mp < 10 ? mp + 3 : mp - 9;
    out->y = out->m <= 2 ? y + 1 : y;
}

static int epoch_millis(int64_t v, bl_date *out)
{
    int64_t secs, days;

    if (v <= -BL_EPOCH_LIMIT || v >= BL_EPOCH_LIMIT)
        return -1;
    secs = floor_div(v, 1000);
    days = floor_div(secs, 86400);
    days_to_civil(days, out);
    out->h = floor_div(secs - days * 86400, 3600);
    return 0;
}

#define DIGIT(c) ((unsigned)((unsigned char)(c) - '0') < 10u)

static int64_t digits_at(const char *s, int n)
{
    int64_t v = 0;
    int i;

    for (i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

/* "YYYY-MM-DD..." (the hour after a T or a space), or all digits: epoch millis. */
static int string_date(const char *s, size_t len, bl_date *out)
{
    size_t i;

    if (len >= 10 && DIGIT(s[0]) && DIGIT(s[1]) && DIGIT(s[2]) && DIGIT(s[3]) && s[4] == '-' &&
        DIGIT(s[5]) && DIGIT(s[6]) && s[7] == '-' && DIGIT(s[8]) && DIGIT(s[9])) {
        out->y = digits_at(s, 4);
        out->m = digits_at(s + 5, 2);
        out->d = digits_at(s + 8, 2);
        out->h = len >= 13 && (s[10] == 'T' || s[10] == ' ') && DIGIT(s[11]) && DIGIT(s[12])
            ? digits_at(s + 11, 2) : 0;
        return 0;
    }
    if (len == 0)
        return -1;
    for (i = 0; i < len; i++)
        if (!DIGIT(s[i]))
            return -1;
    for (i = 0; i + 1 < len && s[i] == '0'; i++)
        ;
    if (len - i > 15)
        return -1;
    return epoch_millis(digits_at(s + i, (int)(len - i)), out);
}

static int value_date(bl_span v, strbuf *scratch, bl_date *out)
{
    const char *s;
    size_t len;
    int64_t ms;

    if (string_value(v, scratch, &s, &len) == 0)
        return string_date(s, len, out);
    if (integer_value(v, &ms) == 0)
        return epoch_millis(ms, out);
    return -1;
}

/* v as printf's %0<width>lld would write it. */
static int put_padded(strbuf *out, int64_t v, int width)
{
    char tmp[24];
    int n;

    if (v >= 0 && v < 10000) {
        int k = v >= 1000 ? 4 : v >= 100 ? 3 : v >= 10 ? 2 : 1;
        n = k > width ? k : width;
        for (k = n - 1; k >= 0; k--, v /= 10)
            tmp[k] = (char)('0' + v % 10);
    } else {
        n = snprintf(tmp, sizeof tmp, "%0*lld", width, (long long)v);
        if (n < 0)
            return -1;
    }
    return strbuf_append(out, tmp, (size_t)n);
}

/* fmt with %Y %m %d %H %% expanded, as index_pattern.lua's gsub does. */
static int put_date(strbuf *out, const char *fmt, size_t len, const bl_date *t)
{
    size_t i;
    int rc;

    for (i = 0; i < len; i++) {
        if (fmt[i] != '%' || i + 1 == len) {
            if (strbuf_putc(out, fmt[i]) != 0)
                return -1;
            continue;
        }
        switch (fmt[++i]) {
        case 'Y': rc = put_padded(out, t->y, 4); break;
        case 'm': rc = put_padded(out, t->m, 2); break;
        case 'd': rc = put_padded(out, t->d, 2); break;
        case 'H': rc = put_padded(out, t->h, 2); break;
        case '%': rc = strbuf_putc(out, '%'); break;
        default: rc = strbuf_putc(out, '%') == 0 ? strbuf_putc(out, fmt[i]) : -1; break;
        }
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* ---- one line -------------------------------------------------------- */

enum { LINE_OK, LINE_LUA, LINE_MEMORY };

/*
** A JSON string for an action line the way the bulk builder writes it:
** plain bytes copied between quotes, anything else through the encoder
** (which, should it refuse, leaves the line to Lua and its own error).
*/
static int put_text(lua_State *L, bulk_buffer *b, const char *s, size_t len)
{
    char err[ESPIPE_JSON_ERRLEN];
    size_t i, start = b->buf.len;
    int rc;

    for (i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '"' || s[i] == '\\')
            break;
    if (i < len) {
        lua_pushlstring(L, s, len);
        err[0] = '\0';
        rc = json_encode_with(L, -1, b->keys, &b->buf, &b->cfg, err);
        lua_pop(L, 1);
        b->buf.len = rc == 0 ? b->buf.len : start;
        return rc == 0 ? LINE_OK : LINE_LUA;
    }
    if (strbuf_reserve(&b->buf, len + 2) != 0)
        return LINE_MEMORY;
    strbuf_putc_unsafe(&b->buf, '"');
    strbuf_append_unsafe(&b->buf, s, len);
    strbuf_putc_unsafe(&b->buf, '"');
    return LINE_OK;
}

static int put_lit(strbuf *out, const char *s)
{
    return strbuf_append(out, s, strlen(s));
}

/* An id or routing field's value as the bulk builder writes a string or integer _id or routing. */
static int put_id(lua_State *L, bulk_lines *bl, bulk_buffer *b, bl_span v)
{
    const char *s;
    size_t len;
    int64_t n;
    char tmp[24];

    if (string_value(v, &bl->scratch, &s, &len) == 0) {
        if (len == 0)
            return LINE_LUA;    /* the builder refuses an empty one: Lua says so */
        return put_text(L, b, s, len);
    }
    if (integer_value(v, &n) != 0)
        return LINE_LUA;
    snprintf(tmp, sizeof tmp, "\"%lld\"", (long long)n);
    return put_lit(&b->buf, tmp) == 0 ? LINE_OK : LINE_MEMORY;
}

/* The value of a pattern field: doc[path] first, else down its segments. */
static int path_value(bulk_lines *bl, const bl_path *p, const bl_want *want, int slot, bl_span *out)
{
    bl_span v = want->got[slot];
    int i;

    if (v.at != NULL || p->nseg < 2) {
        *out = v;
        return v.at != NULL ? 0 : -1;
    }
    v = want->got[slot + 1];
    for (i = 1; i < p->nseg; i++)
        if (member_of(v, p->text + p->seg_at[i], p->seg_len[i], &bl->scratch, &v) != 0)
            return -1;
    *out = v;
    return 0;
}

/* The index name of the pattern for this line, into bl->name. */
static int build_name(bulk_lines *bl, const bl_want *want)
{
    int i, slot = (bl->id_field != NULL) + (bl->routing_field != NULL);

    bl->name.len = 0;
    for (i = 0; i < bl->npieces; i++) {
        const bl_piece *pc = &bl->pieces[i];
        bl_span v;
        bl_date t;

        if (pc->path < 0) {
            if (strbuf_append(&bl->name, pc->text, pc->len) != 0)
                return LINE_MEMORY;
            continue;
        }
        if (path_value(bl, &bl->paths[pc->path], want, slot + 2 * pc->path, &v) != 0 ||
            value_date(v, &bl->scratch, &t) != 0)
            return LINE_LUA;
        if (put_date(&bl->name, pc->text, pc->len, &t) != 0)
            return LINE_MEMORY;
    }
    return LINE_OK;
}

/* indices[name] += n (a count of documents sent to each index). */
static void add_count(lua_State *L, int indices, const char *name, size_t len, lua_Integer n)
{
    lua_Integer have;

    lua_pushlstring(L, name, len);
    lua_pushvalue(L, -1);
    lua_rawget(L, indices);
    have = lua_isnumber(L, -1) ? lua_tointeger(L, -1) : 0;
    lua_pop(L, 1);
    lua_pushinteger(L, have + n);
    lua_rawset(L, indices);
}

/* Every recent name's uncounted documents into indices (end of an append). */
static void flush_counts(lua_State *L, bulk_lines *bl, int indices)
{
    int i;

    for (i = 0; i < BL_NAME_CACHE; i++)
        if (bl->seen[i].pending > 0) {
            add_count(L, indices, bl->seen[i].text, bl->seen[i].len, bl->seen[i].pending);
            bl->seen[i].pending = 0;
        }
}

/* One more document for name: counted in the cache of recent names, which
** reaches the Lua table once per append call (or when a slot is reused).
** Called once the item is complete, so a Lua error here cannot leave a
** half-written item. */
static void note_index(lua_State *L, bulk_lines *bl, int indices, const char *name, size_t len)
{
    int i;
    bl_name *slot;

    for (i = 0; i < BL_NAME_CACHE; i++)
        if (bl->seen[i].len == len && memcmp(bl->seen[i].text, name, len) == 0) {
            bl->seen[i].pending++;
            return;
        }
    if (len == 0 || len > BL_NAME_MAX) {
        add_count(L, indices, name, len, 1);
        return;
    }
    slot = &bl->seen[bl->next_seen];
    if (slot->pending > 0)
        add_count(L, indices, slot->text, slot->len, slot->pending);
    memcpy(slot->text, name, len);
    slot->len = len;
    slot->pending = 1;
    bl->next_seen = (bl->next_seen + 1) % BL_NAME_CACHE;
}

static void want_keys(const bulk_lines *bl, bl_want *want)
{
    int i;

    want->n = 0;
    if (bl->id_field != NULL) {
        want->key[want->n] = bl->id_field;
        want->len[want->n++] = bl->id_len;
    }
    if (bl->routing_field != NULL) {
        want->key[want->n] = bl->routing_field;
        want->len[want->n++] = bl->routing_len;
    }
    for (i = 0; i < bl->npaths; i++) {
        const bl_path *p = &bl->paths[i];
        want->key[want->n] = p->text;           /* doc[path] */
        want->len[want->n++] = p->len;
        want->key[want->n] = p->text;           /* its first segment */
        want->len[want->n++] = p->nseg > 1 ? p->seg_len[0] : p->len;
    }
    for (i = 0; i < want->n; i++)
        want->got[i].at = NULL;
}

/* The first byte at or after i that is not ASCII: eight at a time. */
static size_t skip_ascii(const unsigned char *s, size_t i, size_t len)
{
    while (len - i >= 8) {
        uint64_t v;
        memcpy(&v, s + i, 8);
        if ((v & 0x8080808080808080ull) != 0)
            break;
        i += 8;
    }
    while (i < len && s[i] < 0x80)
        i++;
    return i;
}

static int valid_utf8(const unsigned char *s, size_t len)
{
    size_t i = 0, n, bad;

    while ((i = skip_ascii(s, i, len)) < len) {
        if ((n = utf8_sequence(s + i, len - i, &bad)) == 0)
            return 0;
        i += n;
    }
    return 1;
}

/*
** load's cheap check, '{' ... '}' with blanks around, and no CR inside (the
** builder refuses one). Without the JSON walk, valid UTF-8 too (the walk
** checks it in strings, and outside them the grammar allows only ASCII).
*/
static int plain_object(const unsigned char *s, size_t len, int check)
{
    size_t i = 0, j = len;

    while (i < j && (s[i] == ' ' || s[i] == '\t'))
        i++;
    while (j > i && (s[j - 1] == ' ' || s[j - 1] == '\t'))
        j--;
    if (j - i < 2 || s[i] != '{' || s[j - 1] != '}' || memchr(s, '\r', len) != NULL)
        return 0;
    return check == CHECK_JSON || valid_utf8(s, len);
}

/* ',"key":' (no comma for the first member) */
static int put_member(strbuf *out, const char *key, int *first)
{
    return bulk_put_key(out, key, first) == 0 ? LINE_OK : LINE_MEMORY;
}

/* The action line, in the bulk builder's key order: _index, _type, _id, routing. */
static int put_action(lua_State *L, bulk_lines *bl, bulk_buffer *b, const bl_want *want, int auto_id)
{
    static const char *const opener[] = { "{\"index\":{", "{\"create\":{" };
    int first = 1, rc = LINE_OK;

    if (put_lit(&b->buf, opener[bl->op == BULK_CREATE]) != 0)
        return LINE_MEMORY;
    if (bl->npieces > 0 || bl->index != NULL) {
        const char *name = bl->npieces > 0 ? bl->name.data : bl->index;
        size_t nlen = bl->npieces > 0 ? bl->name.len : bl->index_len;
        if (nlen == 0)
            return LINE_LUA;    /* the builder refuses an empty _index: Lua says so */
        if ((rc = put_member(&b->buf, "_index", &first)) != LINE_OK ||
            (rc = put_text(L, b, name, nlen)) != LINE_OK)
            return rc;
    }
    if (bulk_put_type(b, &first) != 0)
        return LINE_MEMORY;
    if (auto_id) {
        if (put_member(&b->buf, "_id", &first) != LINE_OK || strbuf_reserve(&b->buf, ESPIPE_TIME_ID_LEN + 2) != 0)
            return LINE_MEMORY;
        strbuf_putc_unsafe(&b->buf, '"');
        espipe_time_id(b->buf.data + b->buf.len);
        b->buf.len += ESPIPE_TIME_ID_LEN;
        strbuf_putc_unsafe(&b->buf, '"');
    } else if (bl->id_field != NULL &&
               ((rc = put_member(&b->buf, "_id", &first)) != LINE_OK || (rc = put_id(L, bl, b, want->got[0])) != LINE_OK)) {
        return rc;
    }
    if (bl->routing_field != NULL &&
        ((rc = put_member(&b->buf, "routing", &first)) != LINE_OK ||
         (rc = put_id(L, bl, b, want->got[bl->id_field != NULL])) != LINE_OK))
        return rc;
    return put_lit(&b->buf, "}}\n") == 0 ? LINE_OK : LINE_MEMORY;
}

/* Appends one document line (chomped, not blank); nothing is kept unless LINE_OK. */
static int append_line(lua_State *L, bulk_lines *bl, bulk_buffer *b, int indices,
                       const unsigned char *s, size_t len)
{
    bl_want want;
    size_t start = b->buf.len, src_start;
    int rc, auto_id = bl->id_field == NULL && b->auto_ids;
    bulk_item *it;

    if (!plain_object(s, len, bl->check))
        return LINE_LUA;
    want_keys(bl, &want);
    if (bl->check == CHECK_JSON && walk_line(s, len, &bl->scratch, &want) != 0)
        return LINE_LUA;
    if ((bl->id_field != NULL && want.got[0].at == NULL) ||
        (bl->routing_field != NULL && want.got[bl->id_field != NULL].at == NULL))
        return LINE_LUA;
    if (bl->npieces > 0 && (rc = build_name(bl, &want)) != LINE_OK)
        return rc;
    if (bulk_reserve_item(b) != 0)
        return LINE_MEMORY;
    if ((rc = put_action(L, bl, b, &want, auto_id)) != LINE_OK) {
        b->buf.len = start;
        return rc;
    }
    src_start = b->buf.len;
    if (strbuf_reserve(&b->buf, len + 1) != 0) {
        b->buf.len = start;
        return LINE_MEMORY;
    }
    strbuf_append_unsafe(&b->buf, s, len);
    strbuf_putc_unsafe(&b->buf, '\n');
    it = &b->items[b->count++];
    it->offset = start;
    it->action_len = src_start - start;
    it->source_len = b->buf.len - src_start;
    it->op = bl->op;
    it->auto_id = auto_id;
    if (bl->npieces > 0)
        note_index(L, bl, indices, bl->name.data, bl->name.len);
    return LINE_OK;
}

static int blank(const unsigned char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if (!(s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r')))
            return 0;
    return 1;
}

/* core.bulk_lines_append(buf, max_docs, max_bytes, lines, chunk, pos, indices) */
static int l_append(lua_State *L)
{
    bulk_buffer *b = bulk_check(L, 1);
    lua_Number max_docs = luaL_checknumber(L, 2);
    lua_Number max_bytes = luaL_checknumber(L, 3);
    bulk_lines *bl = (bulk_lines *)luaL_checkudata(L, 4, ESPIPE_BULK_LINES_MT);
    size_t clen, at, count0, lines = 0;
    const unsigned char *chunk = (const unsigned char *)luaL_checklstring(L, 5, &clen);
    lua_Integer pos = luaL_checkinteger(L, 6);
    int stop = STOP_END;

    luaL_checktype(L, 7, LUA_TTABLE);
    if (pos < 1 || (size_t)(pos - 1) > clen)
        return luaL_error(L, "bulk_lines append: pos %d is outside the chunk", (int)pos);
    if (!(max_docs >= 1) || !(max_bytes >= 1))
        return luaL_error(L, "bulk_lines append: max_docs and max_bytes must be positive");
    if (b->pins > 0)
        return luaL_error(L, "bulk buffer is in flight (pinned by a transport); it cannot change until the request completes");
    at = (size_t)(pos - 1);
    count0 = b->count;
    while (at < clen) {
        const unsigned char *s = chunk + at;
        const unsigned char *nl = memchr(s, '\n', clen - at);
        size_t len;
        int rc;

        if (nl == NULL)
            break;
        len = (size_t)(nl - s);
        if (len > bl->max_line) {
            stop = STOP_LINE;
            break;
        }
        if (len > 0 && s[len - 1] == '\r')
            len--;
        if (!blank(s, len)) {
            rc = append_line(L, bl, b, 7, s, len);
            if (rc != LINE_OK) {
                stop = rc == LINE_LUA ? STOP_LINE : STOP_MEMORY;
                break;
            }
        }
        at = (size_t)(nl - chunk) + 1;
        lines++;
        if ((lua_Number)b->count >= max_docs || (lua_Number)b->buf.len >= max_bytes) {
            stop = STOP_FULL;
            break;
        }
    }
    flush_counts(L, bl, 7);
    lua_pushinteger(L, (lua_Integer)at + 1);
    lua_pushinteger(L, (lua_Integer)lines);
    lua_pushinteger(L, (lua_Integer)(b->count - count0));
    lua_pushstring(L, stop_names[stop]);
    return 4;
}

/* ---- the appender ---------------------------------------------------- */

static void free_lines(bulk_lines *bl)
{
    int i;

    free(bl->index);
    free(bl->id_field);
    free(bl->routing_field);
    for (i = 0; i < bl->npieces; i++)
        free(bl->pieces[i].text);
    for (i = 0; i < bl->npaths; i++)
        free(bl->paths[i].text);
    strbuf_free(&bl->scratch);
    strbuf_free(&bl->name);
    bl->index = bl->id_field = bl->routing_field = NULL;
    bl->npieces = bl->npaths = 0;
}

static int l_gc(lua_State *L)
{
    free_lines((bulk_lines *)luaL_checkudata(L, 1, ESPIPE_BULK_LINES_MT));
    return 0;
}

/* *out = a copy of the string at idx (NULL when nil); 0, or raises on anything else. */
static int copy_string(lua_State *L, int idx, const char *what, char **out, size_t *len)
{
    const char *s;

    *out = NULL;
    if (lua_isnil(L, idx))
        return 0;
    if (lua_type(L, idx) != LUA_TSTRING)
        return luaL_error(L, "bulk_lines_new: %s must be a string, got %s", what, luaL_typename(L, idx));
    s = lua_tolstring(L, idx, len);
    *out = (char *)malloc(*len + 1);
    if (*out == NULL)
        return luaL_error(L, "bulk_lines_new: out of memory");
    memcpy(*out, s, *len + 1);
    return 0;
}

static int string_field(lua_State *L, int t, const char *key, char **out, size_t *len)
{
    lua_getfield(L, t, key);
    copy_string(L, -1, key, out, len);
    lua_pop(L, 1);
    return 0;
}

/* 0, or -1 when the path has more segments than the C path holds. */
static int split_path(lua_State *L, bl_path *p)
{
    size_t i = 0;

    p->nseg = 0;
    while (i < p->len) {
        size_t j = i;
        while (j < p->len && p->text[j] != '.')
            j++;
        if (j > i) {
            if (p->nseg == BL_MAX_SEGS)
                return -1;
            p->seg_at[p->nseg] = i;
            p->seg_len[p->nseg++] = j - i;
        }
        i = j + 1;
    }
    if (p->nseg == 0)
        return luaL_error(L, "bulk_lines_new: a pattern field must name a field");
    return 0;
}

/* cfg.pattern: literal strings and { field =, fmt = } tables, in order; 0 or raises. */
static int read_pattern(lua_State *L, bulk_lines *bl)
{
    int n, i;

    lua_getfield(L, 1, "pattern");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    luaL_checktype(L, -1, LUA_TTABLE);
    n = (int)espipe_rawlen(L, -1);
    if (n > BL_MAX_PIECES) {
        bl->unsupported = "a pattern of more than 32 pieces";
        lua_pop(L, 1);
        return 0;
    }
    for (i = 1; i <= n; i++) {
        bl_piece *pc = &bl->pieces[bl->npieces];
        lua_rawgeti(L, -1, i);
        if (lua_type(L, -1) == LUA_TSTRING) {
            pc->path = -1;
            copy_string(L, -1, "a pattern literal", &pc->text, &pc->len);
            bl->npieces++;
        } else if (lua_type(L, -1) == LUA_TTABLE) {
            bl_path *p = &bl->paths[bl->npaths];
            pc->path = -1;
            string_field(L, -1, "fmt", &pc->text, &pc->len);
            bl->npieces++;      /* owned now, freed by __gc whatever follows */
            string_field(L, -1, "field", &p->text, &p->len);
            if (pc->text == NULL || p->text == NULL) {
                free(p->text);
                p->text = NULL;
                return luaL_error(L, "bulk_lines_new: pattern piece %d needs field and fmt", i);
            }
            bl->npaths++;
            pc->path = bl->npaths - 1;
            if (split_path(L, p) != 0)
                bl->unsupported = "a pattern field of more than 8 segments";
        } else {
            return luaL_error(L, "bulk_lines_new: pattern piece %d must be a string or a table", i);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return 0;
}

/* cfg into bl; 0 or raises (__gc frees what was copied). */
static int read_config(lua_State *L, bulk_lines *bl)
{
    const char *op, *check;
    lua_Integer max_line;

    lua_getfield(L, 1, "op");
    op = luaL_optstring(L, -1, "index");
    if (strcmp(op, "index") != 0 && strcmp(op, "create") != 0)
        return luaL_error(L, "bulk_lines_new: op must be index or create, got %s", op);
    bl->op = op[0] == 'c' ? BULK_CREATE : BULK_INDEX;
    lua_getfield(L, 1, "check");
    check = luaL_optstring(L, -1, "object");
    if (strcmp(check, "object") != 0 && strcmp(check, "json") != 0)
        return luaL_error(L, "bulk_lines_new: check must be object or json, got %s", check);
    lua_getfield(L, 1, "max_line");
    max_line = luaL_optinteger(L, -1, (lua_Integer)100 * 1024 * 1024);
    if (max_line < 1)
        return luaL_error(L, "bulk_lines_new: max_line must be positive");
    bl->max_line = (size_t)max_line;
    lua_pop(L, 3);
    string_field(L, 1, "index", &bl->index, &bl->index_len);
    string_field(L, 1, "id_field", &bl->id_field, &bl->id_len);
    string_field(L, 1, "routing_field", &bl->routing_field, &bl->routing_len);
    read_pattern(L, bl);
    /* any wanted field needs the whole line read as JSON */
    bl->check = strcmp(check, "json") == 0 || bl->id_field != NULL || bl->routing_field != NULL || bl->npieces > 0
        ? CHECK_JSON : CHECK_OBJECT;
    return 0;
}

/*
** core.bulk_lines_new(cfg) -> appender | nil, why (a pattern beyond the C
** path's fixed limits: the caller's Lua path takes every line then)
*/
static int l_new(lua_State *L)
{
    bulk_lines *bl;

    luaL_checktype(L, 1, LUA_TTABLE);
    bl = (bulk_lines *)espipe_newuserdata(L, sizeof *bl);
    memset(bl, 0, sizeof *bl);
    strbuf_init(&bl->scratch);
    strbuf_init(&bl->name);
    luaL_getmetatable(L, ESPIPE_BULK_LINES_MT);
    lua_setmetatable(L, -2);
    read_config(L, bl);     /* may raise: __gc frees what was copied */
    if (bl->unsupported != NULL) {
        lua_pushnil(L);
        lua_pushstring(L, bl->unsupported);
        return 2;
    }
    return 1;
}

void espipe_open_bulk_lines(lua_State *L)
{
    if (luaL_newmetatable(L, ESPIPE_BULK_LINES_MT)) {
        lua_pushcfunction(L, l_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_new);
    lua_setfield(L, -2, "bulk_lines_new");
    lua_pushcfunction(L, l_append);
    lua_setfield(L, -2, "bulk_lines_append");
}
