#include <stdlib.h>
#include <string.h>

#include "dict.h"
#include "encoding.h"

static void recount(pq_dict *d)
{
    d->memory = d->plain.len + d->nslots * sizeof(pq_dict_slot);
}

void pq_dict_init(pq_dict *d)
{
    strbuf_init(&d->plain);
    d->count = 0;
    d->slots = NULL;
    d->nslots = 0;
    d->memory = 0;
}

void pq_dict_free(pq_dict *d)
{
    strbuf_free(&d->plain);
    free(d->slots);
    pq_dict_init(d);
}

void pq_dict_clear(pq_dict *d)
{
    d->plain.len = 0;
    d->count = 0;
    if (d->slots != NULL)
        memset(d->slots, 0, d->nslots * sizeof *d->slots);
    recount(d);
}

/* The first min(n, 8) bytes as one zero-padded word, read without a
** variable-length copy (which costs a store-forwarding stall per value). */
static uint64_t head_of(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    uint64_t k;
    uint32_t lo, hi;
    if (n >= 8) {
        memcpy(&k, s, 8);
        return k;
    }
    if (n >= 4) {
        memcpy(&lo, s, 4);
        memcpy(&hi, s + n - 4, 4);
        return (uint64_t)lo << 32 | hi;   /* the two words overlap: every byte counts */
    }
    if (n == 0)
        return 0;
    return (uint64_t)u[0] | (uint64_t)u[n >> 1] << 8 | (uint64_t)u[n - 1] << 16;
}

/* Eight bytes per step: a multiply-xorshift mix, plenty for a hash table. */
static uint32_t hash_bytes(const char *s, size_t n, uint64_t head)
{
    uint64_t h = 0x9E3779B97F4A7C15u ^ n, k = head;
    if (n > 8) {
        const char *last = s + n - 8;
        while (s < last) {
            memcpy(&k, s, 8);
            h = (h ^ k) * 0xBF58476D1CE4E5B9u;
            h ^= h >> 29;
            s += 8;
        }
        memcpy(&k, last, 8);   /* the tail, overlapping the last full word */
    }
    /* the full splitmix64 finish: the slot is the low bits, which one
    ** multiply leaves depending on the low input bytes only (ids sharing a
    ** prefix, "u-48520", then pile up in a few slots) */
    h = (h ^ k) * 0x94D049BB133111EBu;
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9u;
    h ^= h >> 32;
    return (uint32_t)h;
}

static int rehash(pq_dict *d, size_t nslots)
{
    pq_dict_slot *slots = calloc(nslots, sizeof *slots);
    size_t i;
    if (slots == NULL)
        return -1;
    for (i = 0; i < d->nslots; i++) {
        size_t j;
        if (d->slots[i].index1 == 0)
            continue;
        j = d->slots[i].hash & (nslots - 1);
        while (slots[j].index1 != 0)
            j = (j + 1) & (nslots - 1);
        slots[j] = d->slots[i];
    }
    free(d->slots);
    d->slots = slots;
    d->nslots = nslots;
    return 0;
}

/* Whether slot holds s[0..n), whose first bytes are head (see head_of). */
static int same(const pq_dict *d, const pq_dict_slot *slot, const char *s, size_t n, uint64_t head)
{
    const char *b = pq_dict_slot_bytes(d, slot);
    uint64_t x, y;
    if (n <= 8)
        return head_of(b, n) == head;
    if (n <= 16) {
        /* two words each, the second overlapping the first: no call */
        memcpy(&x, b, 8);
        memcpy(&y, b + n - 8, 8);
        if (x != head)
            return 0;
        memcpy(&x, s + n - 8, 8);
        return x == y;
    }
    return memcmp(b, s, n) == 0;
}

#if defined(__GNUC__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif

void pq_dict_prefetch_slot(const pq_dict *d, const char *s, size_t n)
{
    if (d->nslots >= PQ_DICT_PREFETCH_MIN_SLOTS)
        PREFETCH(&d->slots[hash_bytes(s, n, head_of(s, n)) & (d->nslots - 1)]);
}

void pq_dict_prefetch_bytes(const pq_dict *d, const char *s, size_t n)
{
    const pq_dict_slot *slot;
    uint32_t h;
    if (d->nslots < PQ_DICT_PREFETCH_MIN_SLOTS)
        return;
    h = hash_bytes(s, n, head_of(s, n));
    slot = &d->slots[h & (d->nslots - 1)];
    if (slot->index1 != 0 && slot->hash == h)
        PREFETCH(pq_dict_slot_bytes(d, slot));
}

long pq_dict_intern(pq_dict *d, const char *s, size_t n, size_t max_bytes, size_t max_entries)
{
    uint64_t head = head_of(s, n);
    uint32_t h = hash_bytes(s, n, head);
    size_t j;
    unsigned char len4[4];

    if (n > UINT32_MAX - 4 || d->count >= UINT32_MAX - 1)
        return PQ_DICT_FULL;
    /* keep the load factor under 1/2 */
    if ((d->count + 1) * 2 > d->nslots) {
        if (rehash(d, d->nslots ? d->nslots * 2 : 64) != 0)
            return PQ_DICT_NOMEM;
        recount(d);
    }
    j = h & (d->nslots - 1);
    while (d->slots[j].index1 != 0) {
        const pq_dict_slot *slot = &d->slots[j];
        if (slot->hash == h && slot->len == n && same(d, slot, s, n, head))
            return (long)(slot->index1 - 1);
        j = (j + 1) & (d->nslots - 1);
    }
    /* offsets are 32-bit: a dictionary page past 4 GB is not worth having */
    if (d->count + 1 > max_entries || d->plain.len + n + 4 > max_bytes
        || d->plain.len + n + 4 > UINT32_MAX)
        return PQ_DICT_FULL;
    put_le32(len4, (uint32_t)n);
    if (strbuf_reserve(&d->plain, n + 4) != 0)
        return PQ_DICT_NOMEM;
    strbuf_append_unsafe(&d->plain, len4, 4);
    d->slots[j].hash = h;
    d->slots[j].len = (uint32_t)n;
    d->slots[j].offset = (uint32_t)d->plain.len;
    d->slots[j].index1 = (uint32_t)(d->count + 1);
    strbuf_append_unsafe(&d->plain, s, n);
    d->count++;
    recount(d);
    return (long)(d->count - 1);
}
