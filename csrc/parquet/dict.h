/*
** A byte-string dictionary for one column chunk: entries keep their PLAIN
** encoding (u32 length + bytes) back to back, ready to be the dictionary page.
*/
#ifndef ESPIPE_PARQUET_DICT_H
#define ESPIPE_PARQUET_DICT_H

#include <stddef.h>
#include <stdint.h>

#include "base/strbuf.h"

/*
** One hash slot is the whole entry: a lookup reads the slot, then the value's
** bytes, and nothing else (large dictionaries miss the cache on every
** structure a lookup touches).
*/
typedef struct pq_dict_slot {
    uint32_t hash;
    uint32_t len;
    uint32_t offset;   /* of the bytes (after the length) in plain */
    uint32_t index1;   /* entry index + 1, 0 = empty */
} pq_dict_slot;

typedef struct pq_dict {
    strbuf plain;
    size_t count;
    pq_dict_slot *slots;   /* open addressing, load factor under 1/2 */
    size_t nslots;
    size_t memory;         /* what pq_dict_memory reports */
} pq_dict;

void pq_dict_init(pq_dict *d);
void pq_dict_free(pq_dict *d);
void pq_dict_clear(pq_dict *d);   /* keeps allocations for the next chunk */
/*
** Index of s, inserting it when new. PQ_DICT_FULL when s is new but adding it
** would pass max_bytes (PLAIN size) or max_entries; PQ_DICT_NOMEM on
** allocation failure.
*/
#define PQ_DICT_FULL (-1)
#define PQ_DICT_NOMEM (-2)
long pq_dict_intern(pq_dict *d, const char *s, size_t n, size_t max_bytes, size_t max_entries);
/* The entries in no particular order: visit the slots with index1 != 0. */
static inline const char *pq_dict_slot_bytes(const pq_dict *d, const pq_dict_slot *slot)
{
    return d->plain.data + slot->offset;
}
/*
** Hints for a lookup of s coming soon, so its cache misses overlap other
** work: _slot fetches the hash slot, _bytes (issued later, once the slot is
** in) the entry's bytes. Nothing is changed; small dictionaries, which stay
** in the cache anyway, are skipped.
*/
/* Below this the slots are likely still cached from the previous rows. */
#define PQ_DICT_PREFETCH_MIN_SLOTS 8192
static inline int pq_dict_worth_prefetching(const pq_dict *d)
{
    return d->nslots >= PQ_DICT_PREFETCH_MIN_SLOTS;
}
void pq_dict_prefetch_slot(const pq_dict *d, const char *s, size_t n);
void pq_dict_prefetch_bytes(const pq_dict *d, const char *s, size_t n);

/* Bytes the dictionary holds (its PLAIN page size plus the index structures), kept up to date by every change. */
static inline size_t pq_dict_memory(const pq_dict *d)
{
    return d->memory;
}

#endif
