/*
** A byte-string dictionary for one column chunk: entries keep their PLAIN
** encoding (u32 length + bytes) back to back, ready to be the dictionary page.
*/
#ifndef ESPIPE_PARQUET_DICT_H
#define ESPIPE_PARQUET_DICT_H

#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

typedef struct pq_dict_entry {
    size_t offset;     /* of the bytes (after the length) in plain */
    uint32_t len;
    uint32_t hash;
} pq_dict_entry;

typedef struct pq_dict {
    strbuf plain;
    pq_dict_entry *entries;
    size_t count, cap;
    uint32_t *slots;   /* open addressing: entry index + 1, 0 = empty */
    size_t nslots;
    size_t memory;     /* what pq_dict_memory reports */
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
static inline const char *pq_dict_bytes(const pq_dict *d, size_t i)
{
    return d->plain.data + d->entries[i].offset;
}
/* Bytes the dictionary holds (its PLAIN page size plus the index structures), kept up to date by every change. */
static inline size_t pq_dict_memory(const pq_dict *d)
{
    return d->memory;
}

#endif
