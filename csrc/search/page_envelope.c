#include "page_envelope.h"

/* The top object (ENVELOPE_TOP) or its "hits" object (ENVELOPE_HITS), at d->p. */
static int walk_object(json_decoder *d, const envelope_hooks *h, void *ctx, enum envelope_level lv)
{
    const char *k;
    size_t klen;
    int rc, empty;

    if (json_dec_enter(d) != 0)
        return -1;
    if (h->open != NULL && h->open(ctx, lv) != 0)
        return -1;
    empty = json_dec_closes(d, '}');
    if (empty)
        return 0;
    for (;;) {
        if (d->p >= d->end || *d->p != '"')
            return json_dec_expected(d, "a string key");
        if (h->key(ctx, d, &k, &klen) != 0 || json_dec_colon(d) != 0)
            return -1;
        json_dec_space(d);
        if (d->p >= d->end)
            return json_dec_expected(d, "a value");
        if (lv == ENVELOPE_TOP && *d->p == '{' && PAGE_KEY_IS(k, klen, "hits"))
            rc = walk_object(d, h, ctx, ENVELOPE_HITS);
        else if (lv == ENVELOPE_HITS && *d->p == '[' && PAGE_KEY_IS(k, klen, "hits"))
            rc = h->hits(ctx, d);
        else
            rc = h->value(ctx, d, lv, k, klen);
        if (rc != 0)
            return -1;
        if (h->member_done != NULL)
            h->member_done(ctx);
        const int more = json_dec_next(d, '}');
        if (more <= 0)
            return more;
    }
}

int envelope_walk(json_decoder *d, const envelope_hooks *h, void *ctx)
{
    json_dec_space(d);
    if (d->p >= d->end || *d->p != '{')
        return json_dec_expected(d, "'{' (a search response object)");
    if (walk_object(d, h, ctx, ENVELOPE_TOP) != 0)
        return -1;
    json_dec_space(d);
    if (d->p != d->end)
        return json_dec_expected(d, "end of input");
    return 0;
}

int envelope_each_hit(json_decoder *d, int (*hit)(void *ctx, json_decoder *d), void *ctx)
{
    if (json_dec_enter(d) != 0)
        return -1;
    if (json_dec_closes(d, ']'))
        return 0;
    for (;;) {
        json_dec_space(d);
        if (d->p >= d->end || *d->p != '{')
            return json_dec_expected(d, "a hit (an object)");
        if (hit(ctx, d) != 0)
            return -1;
        const int more = json_dec_next(d, ']');
        if (more <= 0)
            return more;
    }
}

int envelope_hit_members(json_decoder *d, strbuf *scratch,
                         void (*member)(void *ctx, const char *k, size_t klen, page_span v), void *ctx)
{
    const char *k;
    size_t klen;
    page_span v;
    int in_page, more;

    if (json_dec_enter(d) != 0)
        return -1;
    more = !json_dec_closes(d, '}');
    while (more > 0) {
        if (d->p >= d->end || *d->p != '"')
            return json_dec_expected(d, "a string key");
        if (page_key(d, scratch, &k, &klen, &in_page) != 0 || json_dec_colon(d) != 0)
            return -1;
        json_dec_space(d);
        v.start = d->p;
        if (json_dec_skip(d) != 0)
            return -1;
        v.end = d->p;
        member(ctx, k, klen, v);
        more = json_dec_next(d, '}');
    }
    return more;
}

int envelope_skip_member(json_decoder *d, enum envelope_level lv, const char *k, size_t klen,
                         page_span *pit_id, page_span *scroll_id)
{
    const unsigned char *vs = d->p;

    if (json_dec_skip(d) != 0)
        return -1;
    if (lv == ENVELOPE_TOP && PAGE_KEY_IS(k, klen, "pit_id")) {
        pit_id->start = vs;
        pit_id->end = d->p;
    } else if (lv == ENVELOPE_TOP && PAGE_KEY_IS(k, klen, "_scroll_id")) {
        scroll_id->start = vs;
        scroll_id->end = d->p;
    }
    return 0;
}
