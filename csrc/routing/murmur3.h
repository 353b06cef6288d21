/*
** MurmurHash3 x86_32 and the routing hash Elasticsearch derives from it:
** the hash of a string's UTF-16 code units, each written little-endian.
** Pure functions: no allocation, no Lua.
*/
#ifndef ESPIPE_MURMUR3_H
#define ESPIPE_MURMUR3_H

#include <stddef.h>
#include <stdint.h>

uint32_t murmur3_x86_32(const void *data, size_t len, uint32_t seed);

/*
** Elasticsearch's Murmur3HashFunction.hash(String) of the UTF-8 text
** s[0..len): 0 and the signed hash in *out, or -1 when s is not valid
** UTF-8 (overlong forms, surrogates, > U+10FFFF, truncation), with the
** byte offset of the offending sequence in *bad_offset.
*/
int es_routing_hash(const char *s, size_t len, int32_t *out, size_t *bad_offset);

#endif
